/* hub_state.h: whether a hub of the mount serves now (up, retried in the
 * background, offline, disabled), why not, and when it is tried again.
 * Not for: opening hubs or the retry thread (core.c), or showing it (status.c). */
#ifndef OMNIHUB_HUB_STATE_H
#define OMNIHUB_HUB_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* A hub that cannot open is tried again after HUB_RETRY_FIRST_SECONDS,
 * the wait doubling at each failure up to HUB_RETRY_MAX_SECONDS: a hub down
 * for a minute comes back within seconds, one down for a day costs a
 * request every five minutes. Each wait is moved by up to
 * HUB_RETRY_JITTER of itself either way, so that mounts restarted together
 * (a fleet after an outage) do not ask the hub in step. */
#define HUB_RETRY_FIRST_SECONDS 5.0
#define HUB_RETRY_MAX_SECONDS 300.0
#define HUB_RETRY_JITTER 0.2
/* For tests only (documented so): the first wait, in seconds, instead of
 * HUB_RETRY_FIRST_SECONDS. */
#define HUB_RETRY_FIRST_ENV "OMNIHUB_HUB_RETRY_FIRST"

enum hub_state_kind {
	HUB_STATE_UNOPENED, /* not asked for yet (the command opens on use) */
	HUB_STATE_UP,       /* open: it serves */
	HUB_STATE_RETRYING, /* could not open; tried again in the background */
	HUB_STATE_OFFLINE,  /* offline, with no usable cached index: never tried again */
	HUB_STATE_DISABLED, /* its settings refuse it: never tried again */
};

/* One hub's state; the core's, lent to the hub (hub->state). The hub's
 * functions are called only once hub_state_check says it is up: the lock
 * orders what open wrote before every later call. */
struct hub_state {
	pthread_mutex_t lock; /* guards everything below */
	enum hub_state_kind kind;
	time_t since;     /* the state began (wall clock) */
	time_t next_try;  /* RETRYING: the next try (wall clock) */
	double next_mono; /* the same on CLOCK_MONOTONIC, for the retry thread */
	unsigned tries;   /* opens tried in all */
	unsigned failures; /* failures in a row: the backoff's step */
	char error[512];  /* the last failure's sentence; "" when none */
};

/* What a status shows of one hub: a copy, taken under the lock. */
struct hub_state_view {
	const char *name; /* borrowed from the core */
	enum hub_state_kind kind;
	time_t since;
	time_t next_try;
	unsigned tries;
	char error[512];
};

void hub_state_init(struct hub_state *st);
void hub_state_destroy(struct hub_state *st);

/* 0 when the hub serves; -EAGAIN while it is retried; -ENOENT when it will
 * not serve (offline, disabled, or never opened). */
int hub_state_check(struct hub_state *st);

/* Records an open that succeeded (now is the wall clock). Returns whether
 * the state changed (for the caller's log line). */
bool hub_state_set_up(struct hub_state *st, time_t now);
/* Records an open that failed with why; kind is what follows (RETRYING,
 * OFFLINE or DISABLED). For RETRYING, the next try is set after the wait
 * hub_retry_delay gives (first: the first wait; jitter in [0, 1)). Returns
 * whether the log should say so: the state or its reason changed. */
bool hub_state_set_failed(struct hub_state *st, enum hub_state_kind kind, const char *why,
			  time_t now, double now_mono, double first, double jitter);

/* A hub in state from (OFFLINE, once a reload turns offline off) is to be
 * tried again at once: RETRYING, due now, its backoff started afresh (the
 * last error stays). Returns whether it was in state from. */
bool hub_state_retry_now(struct hub_state *st, enum hub_state_kind from, time_t now,
			 double now_mono);

void hub_state_view(struct hub_state *st, const char *name, struct hub_state_view *out);

/* "up", "retrying", "offline", "disabled", "unopened". */
const char *hub_state_name(enum hub_state_kind kind);

/* The wait before try number failures + 1, after failures failures in a
 * row (>= 1): first doubled failures - 1 times, at most
 * HUB_RETRY_MAX_SECONDS, then moved by (2 * jitter - 1) * HUB_RETRY_JITTER
 * of itself; jitter is a draw in [0, 1). */
double hub_retry_delay(double first, unsigned failures, double jitter);

/* The first wait: HUB_RETRY_FIRST_ENV when it is set to seconds > 0,
 * else HUB_RETRY_FIRST_SECONDS. */
double hub_retry_first(void);

/* Of the hubs' states (core_hub_states), those whose settings the hub
 * refused: disabled (when disabled_is_refused: a mount, where only a
 * refusal disables), or failed with a sentence naming a set option (an
 * offline hub is left out before it is judged; a command disables a hub
 * whatever failed). Each refusal is written once to err as "PROGRAM:
 * WHERE: what" (config_locate_refusal). Returns how many hubs refused. */
struct config;
size_t hub_state_report_refusals(const struct config *cfg, const struct hub_state_view *views,
				 size_t n, bool disabled_is_refused, const char *program,
				 FILE *err);

#endif
