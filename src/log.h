/* log.h: one line per event, on stderr in the foreground or to syslog once
 * daemonized. Not for: usage errors at start-up, which main.c prints itself. */
#ifndef OMNIHUB_LOG_H
#define OMNIHUB_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Called once by main() before any thread starts; until then messages of
 * level INFO and above go to stderr. */
void log_setup(enum log_level max_level, bool use_syslog);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
