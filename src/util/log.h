/* log.h: one line per event, on stderr in the foreground or to syslog once
 * daemonized, and the recent lines kept for the mount's .omnihub/log.
 * Not for: usage errors at start-up, which main.c prints itself. */
#ifndef OMNIHUB_LOG_H
#define OMNIHUB_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* The recent lines kept in memory: at most this many, in this many bytes. */
#define LOG_RING_LINES 1000u
#define LOG_RING_BYTES (256u << 10)

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Called once by main() before any thread starts; until then messages of
 * level INFO and above go to stderr. */
void log_setup(enum log_level max_level, bool use_syslog);

/* The program name each line carries ("omnihub"), set by a main() other
 * than the daemon's before log_setup; PACKAGE_NAME ("omnihub-fuse") when
 * never set. name must outlive the process's logging (a literal). */
void log_set_program(const char *name);

/* Between these two, the warnings this thread logs are counted, and with
 * mute logged at debug level instead: they were told once already (an
 * index read again, see hub_index_load). log_repeats_end returns how many
 * there were. Not nested. */
void log_repeats_begin(bool mute);
unsigned log_repeats_end(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A copy of the recent lines, oldest first, each as stderr shows it
 * (time, level, message, '\n'), whatever the destination: *out is the
 * caller's (free()), NUL-terminated, *len bytes. Safe from any thread. */
int log_recent(char **out, size_t *len);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
