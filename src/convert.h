/* convert.h: running a converter command the user configured on a staged
 * file, in its own process group, with a timeout, its output to the log.
 * Not for: choosing what to convert or installing the output (download.c,
 * cache.c). */
#ifndef OMNIHUB_CONVERT_H
#define OMNIHUB_CONVERT_H

#include <stddef.h>

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

#endif
