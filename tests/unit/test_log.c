/* test_log.c: unit tests of log.c's ring of recent lines: kept in order,
 * whole lines only, the oldest dropped by count and by bytes, from several
 * threads at once; the program's name; repeats muted. Not for: stderr or
 * syslog (the integration tests). */
#include "build_config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static void *log_many(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < 200; i++)
		log_info("thread %d line %d", id, i);
	return NULL;
}

int main(void)
{
	char *text = NULL, big[1500];
	size_t len = 0;
	bool ok;

	/* Quiet: stderr is not what this tests. */
	if (!freopen("/dev/null", "w", stderr))
		return 1;
	log_setup(LOG_LEVEL_INFO, false);

	tap_ok(log_recent(&text, &len) == 0 && text && len == 0 && text[0] == '\0',
	       "empty at first");
	free(text);

	log_info("first %s", "one");
	log_debug("not kept: above the level");
	log_error("second: %d", 2);
	tap_ok(log_recent(&text, &len) == 0 && len == strlen(text) && count_lines(text) == 2,
	       "two lines kept");
	tap_ok(strstr(text, "info: first one\n") && strstr(text, "error: second: 2\n") &&
	           strstr(text, "info: first one") < strstr(text, "second"),
	       "as stderr shows them, oldest first");
	tap_ok(!strstr(text, "not kept"), "a level not logged is not kept");
	free(text);

	for (int i = 0; i < 1500; i++)
		log_info("numbered %d", i);
	log_recent(&text, &len);
	tap_ok(count_lines(text) == LOG_RING_LINES, "at most %u lines (%zu)", LOG_RING_LINES,
	       count_lines(text));
	tap_ok(!strstr(text, "numbered 499\n") && strstr(text, "numbered 500\n") &&
	           strstr(text, "numbered 1499\n"),
	       "the newest kept, the oldest dropped");
	free(text);

	/* Long lines: bytes are the limit before lines are. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 400; i++)
		log_info("big %03d %s", i, big);
	log_recent(&text, &len);
	ok = len <= LOG_RING_BYTES && len > LOG_RING_BYTES - 2000 && strstr(text, "big 399 ") &&
	     !strstr(text, "big 000 ");
	tap_ok(ok, "at most %u bytes (%zu), newest kept", LOG_RING_BYTES, len);
	/* The ring wrapped: what comes out still starts a line and ends one. */
	tap_ok(text[len - 1] == '\n' && strncmp(text, "20", 2) == 0 && !strstr(text, "\n\n"),
	       "whole lines only");
	free(text);

	pthread_t threads[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, log_many, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	log_recent(&text, &len);
	ok = count_lines(text) >= 800;
	/* 800 lines fit: each thread's are all there, in its order. */
	for (int t = 0; t < 4 && ok; t++) {
		const char *last = text;
		for (int i = 0; i < 200 && ok; i++) {
			char want[64];
			snprintf(want, sizeof(want), "info: thread %d line %d\n", t, i);
			const char *at = strstr(text, want);
			ok = at && at >= last;
			last = at;
		}
	}
	tap_ok(ok, "four threads at once: every line there, in order, %zu lines",
	       count_lines(text));
	free(text);

	/* The daemon's name by default; the omnihub command sets its own. */
	log_warn("prefix default");
	log_set_program("omnihub");
	log_warn("prefix set");
	log_recent(&text, &len);
	tap_ok(strstr(text, " omnihub-fuse: warning: prefix default\n") &&
	           strstr(text, " omnihub: warning: prefix set\n"),
	       "lines carry the program's name");
	free(text);

	/* Warnings told before are logged at debug level, and counted. */
	log_repeats_begin(false);
	log_warn("counted warning");
	tap_ok(log_repeats_end() == 1, "warnings counted");
	log_repeats_begin(true);
	log_warn("repeated warning");
	log_error("an error is never muted");
	log_warn("another repeated warning");
	unsigned muted = log_repeats_end();
	log_warn("after the repeats");
	log_recent(&text, &len);
	tap_ok(muted == 2, "two warnings muted (%u)", muted);
	tap_ok(strstr(text, "warning: counted warning\n") && !strstr(text, "repeated warning") && strstr(text, "error: an error is never muted\n") &&
	           strstr(text, "warning: after the repeats\n"),
	       "muted warnings are not logged at the warning level; others are");
	free(text);
	return tap_done();
}
