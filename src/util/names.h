/* names.h: what an untrusted name from an index or an archive may be, and
 * how a hub's display name becomes a file name. Not for: building cache
 * paths (cache.c) or URLs (fetch.c). */
#ifndef OMNIHUB_NAMES_H
#define OMNIHUB_NAMES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest relative path taken from an index or an archive: leaves room under
 * PATH_MAX for the cache root and a temporary suffix. */
#define NAMES_PATH_MAX 1024

/* 0 when path is a relative path made only of ordinary components (not
 * empty, no "." or "..", no empty component, no control character, each at
 * most NAME_MAX bytes, all within NAMES_PATH_MAX); otherwise -EINVAL and
 * *why says what is wrong. */
int names_check_relpath(const char *path, const char **why);

/* The same for one component. */
int names_check_component(const char *name, const char **why);

/* A directory name for a display name: Latin letters with diacritics
 * spelt in ASCII (Ü u, é e, ß ss), ASCII letters lower-cased, every other
 * character outside [a-z0-9._-] (a whole UTF-8 sequence counts as one)
 * replaced by '-', and what would begin the name with '-' or '.' left out
 * (cd takes "-x" for an option; ".x" is hidden). -EINVAL (and *why) when
 * nothing is left or the result is longer than NAME_MAX. */
int names_to_dirname(const char *display, char out[NAME_MAX + 1], const char **why);

/* Copies at most out_size-1 bytes of an untrusted string for a log line,
 * with control characters shown as '?', so a name cannot forge log lines. */
const char *names_for_log(const char *in, char *out, size_t out_size);

#endif
