/* log.c: one line per event, on stderr in the foreground or to syslog once
 * daemonized, and the recent lines kept for the mount's .omnihub/log.
 * Not for: usage errors at start-up, which main.c prints itself. */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

/* Set once by log_setup() before the FUSE loop starts threads; read-only
 * afterwards, so no lock. */
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_to_syslog;
static const char *log_program = PACKAGE_NAME;

/* Per thread, so that one thread's reading an index again mutes no other
 * thread's warnings. */
static _Thread_local bool repeats_counted, repeats_muted;
static _Thread_local unsigned repeats_count;

/* The recent lines: the one piece of mutable state a logger may keep for
 * the whole process (STYLE), since every thread of every module logs. A
 * byte ring of whole lines, the oldest dropped first; ring_lock guards
 * the three below and the ring. */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char ring[LOG_RING_BYTES];
static size_t ring_start; /* offset of the oldest byte */
static size_t ring_len;   /* bytes held */
static size_t ring_lines; /* lines held */

/* Drops the oldest line; under ring_lock. */
static void ring_drop_oldest_locked(void)
{
	while (ring_len > 0) {
		char c = ring[ring_start];
		ring_start = (ring_start + 1) % LOG_RING_BYTES;
		ring_len--;
		if (c == '\n')
			break;
	}
	ring_lines--;
}

/* Keeps line (with its '\n'); one longer than the ring keeps its end. */
static void ring_add(const char *line, size_t len)
{
	if (len > LOG_RING_BYTES) {
		line += len - LOG_RING_BYTES;
		len = LOG_RING_BYTES;
	}
	pthread_mutex_lock(&ring_lock);
	while (ring_lines > 0 && (ring_len + len > LOG_RING_BYTES || ring_lines >= LOG_RING_LINES))
		ring_drop_oldest_locked();
	if (ring_len + len > LOG_RING_BYTES) { /* a partial line only: gone */
		ring_len = 0;
		ring_lines = 0;
	}
	size_t at = (ring_start + ring_len) % LOG_RING_BYTES;
	size_t first = len < LOG_RING_BYTES - at ? len : LOG_RING_BYTES - at;
	memcpy(ring + at, line, first);
	memcpy(ring, line + first, len - first);
	ring_len += len;
	ring_lines++;
	pthread_mutex_unlock(&ring_lock);
}

int log_recent(char **out, size_t *len)
{
	char *copy;

	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&ring_lock);
	copy = malloc(ring_len + 1);
	if (copy) {
		size_t first =
		    ring_len < LOG_RING_BYTES - ring_start ? ring_len : LOG_RING_BYTES - ring_start;
		memcpy(copy, ring + ring_start, first);
		memcpy(copy + first, ring, ring_len - first);
		copy[ring_len] = '\0';
		*len = ring_len;
	}
	pthread_mutex_unlock(&ring_lock);
	if (!copy)
		return -ENOMEM;
	*out = copy;
	return 0;
}

void log_setup(enum log_level max_level, bool use_syslog)
{
	log_max_level = max_level;
	log_to_syslog = use_syslog;
	if (use_syslog)
		openlog(log_program, LOG_PID, LOG_DAEMON);
}

void log_set_program(const char *name)
{
	log_program = name;
}

void log_repeats_begin(bool mute)
{
	repeats_counted = true;
	repeats_muted = mute;
	repeats_count = 0;
}

unsigned log_repeats_end(void)
{
	repeats_counted = false;
	repeats_muted = false;
	return repeats_count;
}

static int syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return LOG_ERR;
	case LOG_LEVEL_WARN: return LOG_WARNING;
	case LOG_LEVEL_INFO: return LOG_INFO;
	case LOG_LEVEL_DEBUG: break;
	}
	return LOG_DEBUG;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return "error";
	case LOG_LEVEL_WARN: return "warning";
	case LOG_LEVEL_INFO: return "info";
	case LOG_LEVEL_DEBUG: break;
	}
	return "debug";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (repeats_counted && level == LOG_LEVEL_WARN) {
		repeats_count++;
		if (repeats_muted)
			level = LOG_LEVEL_DEBUG;
	}
	if (level > log_max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	struct timespec now;
	struct tm tm;
	char stamp[32], full[2200];
	int n;
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(full, sizeof(full), "%s.%03ld %s: %s: %s\n", stamp, now.tv_nsec / 1000000,
	             log_program, level_name(level), line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(full)) { /* cut, but still one line */
		n = (int)sizeof(full) - 1;
		full[n - 1] = '\n';
	}
	ring_add(full, (size_t)n);

	if (log_to_syslog)
		syslog(syslog_priority(level), "%s", line);
	else /* one write per line so concurrent threads never interleave */
		fputs(full, stderr);
}
