/* tap.h: the Test Anything Protocol for unit tests, read by automake's
 * tap-driver.sh. Not for: anything but tests. */
#ifndef OMNIHUB_TAP_H
#define OMNIHUB_TAP_H

#include <stdarg.h>
#include <stdio.h>

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

#endif
