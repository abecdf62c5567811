/* conffile.h: the syntax of omnihub's config files (omnihub.conf(5)):
 * comments, [sections], key = value lines, quoted values. Not for: what a
 * key means or whether its value is good (config.c). */
#ifndef OMNIHUB_CONFFILE_H
#define OMNIHUB_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>

/* Called for each [section] line (key and value NULL) and each key = value
 * line (section NULL before the first [section]); value is unquoted. Returns
 * 0, or -errno with a sentence in why: the parser puts "FILE:LINE: " before
 * it. */
typedef int (*conffile_fn)(void *ctx, const char *section, const char *key, const char *value,
                           unsigned line, char *why, size_t why_size);

/* Reads the file at path, calling fn line by line. A file that does not
 * exist is no error (*found is false). Returns 0, -EINVAL for a bad line
 * ("PATH:LINE: what is wrong" in why), or -errno when it cannot be read
 * ("cannot read PATH: cause"). */
int conffile_parse(const char *path, conffile_fn fn, void *ctx, bool *found, char *why,
                   size_t why_size);

/* Called with each bad line's sentence ("PATH:LINE: what is wrong"). */
typedef void (*conffile_problem_fn)(void *ctx, const char *sentence);

/* As conffile_parse, but a bad line (its syntax, or fn's -EINVAL) goes to
 * problem, and the lines after it are read too: `omnihub config --check`
 * reports every one. Returns 0 unless the file cannot be read or memory
 * runs out. */
int conffile_parse_all(const char *path, conffile_fn fn, void *ctx, conffile_problem_fn problem,
                       bool *found, char *why, size_t why_size);

/* Whether name can be a section's: [a-z0-9][a-z0-9_.-]*, at most 64
 * characters, as a hub's name is. */
bool conffile_section_name_ok(const char *name);

#endif
