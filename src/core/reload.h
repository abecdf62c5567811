/* reload.h: what SIGHUP does to a running mount: the settings read again
 * and checked, compared with those in use, the hubs of the catalogs as
 * they are now added to the mount, one log line saying what changed. Not
 * for: the signal handler (main.c) or applying the other settings (the
 * core keeps those it started with). */
#ifndef OMNIHUB_RELOAD_H
#define OMNIHUB_RELOAD_H

struct config;
struct config_options;
struct core;

struct reload;

/* Starts the thread that reloads on request. opts (the command line's),
 * in_use and core are borrowed and must outlive it. 0 or -errno. */
int reload_start(struct reload **out, const struct config_options *opts,
		 const struct config *in_use, struct core *core);
/* The descriptor a signal handler writes one byte to, to ask for a reload
 * (write(2) is async-signal-safe). */
int reload_request_fd(const struct reload *r);
/* Stops the thread (a reload under way ends first) and frees r; NULL is
 * fine. */
void reload_stop(struct reload *r);

#endif
