/* tap.h: the Test Anything Protocol for unit tests, read by automake's
 * tap-driver.sh. Not for: anything but tests. */
#ifndef OMNIHUB_TAP_H
#define OMNIHUB_TAP_H

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

static int tap_count;
static int tap_failed;

__attribute__((format(printf, 2, 3))) static void tap_ok(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", pass ? "ok" : "not ok", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass)
		tap_failed++;
}

/* Prints the plan; the exit status says whether all passed. */
static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

/* nftw callback: removes each entry, children before their directory. */
static inline int tap_remove_one(const char *path, const struct stat *st, int flag,
				 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a test's temporary tree; 0 only when it is really gone, so a
 * test can check its own cleanup. */
static inline int tap_remove_tree(const char *dir)
{
	struct stat st;

	if (nftw(dir, tap_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return -1;
	return stat(dir, &st) == -1 && errno == ENOENT ? 0 : -1;
}

#endif
