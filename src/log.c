/* log.c: one line per event, on stderr in the foreground or to syslog once
 * daemonized. Not for: usage errors at start-up, which main.c prints itself. */
#include "build_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

/* Set once by log_setup() before the FUSE loop starts threads; read-only
 * afterwards, so no lock. */
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_to_syslog;

void log_setup(enum log_level max_level, bool use_syslog)
{
	log_max_level = max_level;
	log_to_syslog = use_syslog;
	if (use_syslog)
		openlog(PACKAGE_NAME, LOG_PID, LOG_DAEMON);
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

	if (level > log_max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	if (log_to_syslog) {
		syslog(syslog_priority(level), "%s", line);
		return;
	}

	/* One fprintf per line so concurrent threads never interleave. */
	struct timespec now;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s: %s: %s\n", stamp, now.tv_nsec / 1000000,
		PACKAGE_NAME, level_name(level), line);
}
