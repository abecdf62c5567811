/* hub_state.c: whether a hub of the mount serves now (up, retried in the
 * background, offline, disabled), why not, and when it is tried again.
 * And which hubs refused their settings, said where each was set. Not for:
 * opening hubs or the retry thread (core.c), or showing it (status.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hub_state.h"

void hub_state_init(struct hub_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	st->kind = HUB_STATE_UNOPENED;
}

void hub_state_destroy(struct hub_state *st)
{
	pthread_mutex_destroy(&st->lock);
}

int hub_state_check(struct hub_state *st)
{
	int rc;

	if (!st) /* a hub the core did not make (tests): it serves */
		return 0;
	pthread_mutex_lock(&st->lock);
	if (st->kind == HUB_STATE_UP)
		rc = 0;
	else if (st->kind == HUB_STATE_RETRYING)
		rc = -EAGAIN;
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

bool hub_state_set_up(struct hub_state *st, time_t now)
{
	bool changed;

	pthread_mutex_lock(&st->lock);
	changed = st->kind != HUB_STATE_UP;
	if (changed)
		st->since = now;
	st->kind = HUB_STATE_UP;
	st->next_try = 0;
	st->tries++;
	st->failures = 0;
	/* The last error stays: the status shows what the hub came back from. */
	pthread_mutex_unlock(&st->lock);
	return changed;
}

bool hub_state_retry_now(struct hub_state *st, enum hub_state_kind from, time_t now,
			 double now_mono)
{
	bool changed;

	pthread_mutex_lock(&st->lock);
	changed = st->kind == from;
	if (changed) {
		st->kind = HUB_STATE_RETRYING;
		st->since = now;
		st->failures = 0;
		st->next_mono = now_mono;
		st->next_try = now;
	}
	pthread_mutex_unlock(&st->lock);
	return changed;
}

bool hub_state_set_failed(struct hub_state *st, enum hub_state_kind kind, const char *why,
			  time_t now, double now_mono, double first, double jitter)
{
	bool changed;

	pthread_mutex_lock(&st->lock);
	changed = st->kind != kind || strcmp(st->error, why) != 0;
	if (st->kind != kind)
		st->since = now;
	st->kind = kind;
	st->tries++;
	st->failures++;
	snprintf(st->error, sizeof(st->error), "%s", why);
	if (kind == HUB_STATE_RETRYING) {
		double wait = hub_retry_delay(first, st->failures, jitter);
		st->next_mono = now_mono + wait;
		st->next_try = now + (time_t)(wait + 0.999); /* not before it */
	} else {
		st->next_try = 0;
	}
	pthread_mutex_unlock(&st->lock);
	return changed;
}

void hub_state_view(struct hub_state *st, const char *name, struct hub_state_view *out)
{
	pthread_mutex_lock(&st->lock);
	out->name = name;
	out->kind = st->kind;
	out->since = st->since;
	out->next_try = st->next_try;
	out->tries = st->tries;
	memcpy(out->error, st->error, sizeof(out->error));
	pthread_mutex_unlock(&st->lock);
}

const char *hub_state_name(enum hub_state_kind kind)
{
	switch (kind) {
	case HUB_STATE_UP:
		return "up";
	case HUB_STATE_RETRYING:
		return "retrying";
	case HUB_STATE_OFFLINE:
		return "offline";
	case HUB_STATE_DISABLED:
		return "disabled";
	case HUB_STATE_UNOPENED:
		break;
	}
	return "unopened";
}

double hub_retry_delay(double first, unsigned failures, double jitter)
{
	double wait = first > 0 ? first : HUB_RETRY_FIRST_SECONDS;

	/* Doubling stops at the cap: no overflow whatever the count. */
	for (unsigned i = 1; i < failures && wait < HUB_RETRY_MAX_SECONDS; i++)
		wait *= 2;
	if (wait > HUB_RETRY_MAX_SECONDS)
		wait = HUB_RETRY_MAX_SECONDS;
	if (jitter < 0)
		jitter = 0;
	if (jitter >= 1)
		jitter = 1;
	return wait * (1.0 + (2.0 * jitter - 1.0) * HUB_RETRY_JITTER);
}

double hub_retry_first(void)
{
	const char *text = getenv(HUB_RETRY_FIRST_ENV);
	char *end = NULL;
	double first;

	if (!text || !*text)
		return HUB_RETRY_FIRST_SECONDS;
	first = strtod(text, &end);
	if (*end || !(first > 0) || first > HUB_RETRY_MAX_SECONDS)
		return HUB_RETRY_FIRST_SECONDS;
	return first;
}

static bool refused(const struct config *cfg, const struct hub_state_view *view,
		    bool disabled_is_refused)
{
	char located[8];

	if (view->kind == HUB_STATE_DISABLED && disabled_is_refused)
		return true;
	return (view->kind == HUB_STATE_DISABLED || view->kind == HUB_STATE_OFFLINE) &&
	       config_locate_refusal(cfg, view->error, located, sizeof(located)) == 0;
}

size_t hub_state_report_refusals(const struct config *cfg, const struct hub_state_view *views,
				 size_t n, bool disabled_is_refused, const char *program,
				 FILE *err)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		char located[1200];
		bool again = false;

		if (!refused(cfg, &views[i], disabled_is_refused))
			continue;
		count++;
		/* The models and datasets hubs refuse the same hf_repos once each. */
		for (size_t j = 0; j < i && !again; j++)
			again = refused(cfg, &views[j], disabled_is_refused) &&
				strcmp(views[j].error, views[i].error) == 0;
		if (again)
			continue;
		config_locate_refusal(cfg, views[i].error, located, sizeof(located));
		fprintf(err, "%s: %s\n", program, located);
	}
	return count;
}
