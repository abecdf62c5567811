/* convert.h: finding a converter by name and running a converter command
 * on a staged file, in its own process group, with a timeout, its output
 * to the log. Not for: choosing what to convert or installing the output
 * (download.c, cache.c). */
#ifndef OMNIHUB_CONVERT_H
#define OMNIHUB_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

/* The installed converters; configure passes $(libexecdir)'s. */
#ifndef CONVERTERDIR
#define CONVERTERDIR "/usr/local/libexec/omnihub/converters"
#endif

/* One run; every string is the caller's. */
struct convert_job {
	const char *command;      /* run as /bin/sh -c COMMAND sh INPUT OUTPUT */
	const char *input;        /* $1 and OMNIHUB_INPUT */
	const char *output;       /* $2 and OMNIHUB_OUTPUT; if relative, to workdir */
	const char *workdir;      /* its working directory; NULL: the daemon's */
	unsigned timeout_seconds; /* then its process group is killed; 0: none */
	const char *label;        /* begins its log lines, e.g. the entry's path */
};

/* Runs the command with stdin /dev/null, stdout and stderr into one pipe
 * (the last 4 KiB are logged line by line: warnings when it fails, at most
 * 20 info lines when it succeeds), the daemon's environment plus
 * OMNIHUB_INPUT and OMNIHUB_OUTPUT, and no other descriptor. Returns 0 when
 * it exits 0 leaving output a non-empty regular file (not a symlink);
 * -ETIMEDOUT when it outlives the timeout; -EIO when it fails otherwise;
 * -errno when it cannot start (workdir missing...). why receives a sentence.
 * Nothing it started in its process group outlives it, and it leaves no
 * zombie and no descriptor behind. */
int convert_run(const struct convert_job *job, char *why, size_t why_size);

/* Whether a convert COMMAND is a converter's name rather than a shell
 * command: one word of [A-Za-z0-9_.+-], no slash. Such a name is looked up
 * in folders, never in $PATH. */
bool convert_is_name(const char *command);

/* The folders a name is looked up in, in order: dir (-o converters=; NULL:
 * none), then the installed converters (CONVERTERDIR). */
#define CONVERT_MAX_DIRS 2

/* Seconds a converter may run unless a hub's setting says otherwise. */
#define CONVERT_TIMEOUT_DEFAULT 600u
size_t convert_dirs(const char *dir, const char *out[CONVERT_MAX_DIRS]);

/* Finds the converter `name` (convert_is_name) as an executable regular
 * file in convert_dirs(dir) and gives the shell command that runs it, in
 * *command (the caller's, free()): its absolute path with "$1" "$2", and
 * OMNIHUB_CONVERTER_VERSION set to its version: the value of a line
 * "# omnihub-converter-version: V" in its first 4 KiB, else "sha256:" and
 * the digest of the file. The command is part of what a made file is
 * stamped with, so a new version makes the file again. -ENOENT when no
 * folder holds it (why names the folders searched). */
int convert_resolve(const char *name, const char *dir, char **command, char *why,
		    size_t why_size);

/* command with OMNIHUB_META set to meta_json (a catalog entry's meta, or
 * NULL: "{}") for it and every process it starts, in *out (the caller's,
 * free()). */
int convert_with_meta(const char *command, const char *meta_json, char **out);

#endif
