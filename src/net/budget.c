/* budget.c: request budgets in fixed windows, shared by every hub of a
 * mount. Not for: retrying what a server refused. */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"

/* A mount talks to a handful of hosts. */
#define BUDGETS_MAX 16

struct budget {
	char name[320];
	unsigned limit;
	unsigned window;
	double start; /* of the current window, CLOCK_MONOTONIC seconds: a
			 whole-second clock would end a window up to 1 s early */
	unsigned used;
};

struct budgets {
	pthread_mutex_t lock; /* guards all below */
	struct budget items[BUDGETS_MAX];
	size_t count;
};

int budgets_new(struct budgets **out)
{
	struct budgets *budgets = calloc(1, sizeof(*budgets));

	*out = budgets;
	if (!budgets)
		return -ENOMEM;
	pthread_mutex_init(&budgets->lock, NULL);
	return 0;
}

void budgets_free(struct budgets *budgets)
{
	if (!budgets)
		return;
	pthread_mutex_destroy(&budgets->lock);
	free(budgets);
}

static double monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int budgets_take(struct budgets *budgets, const char *name, unsigned limit, unsigned window,
		 double *wait)
{
	struct budget *b = NULL;
	const double now = monotonic_seconds();
	int rc = 0;

	*wait = 0;
	if (limit == 0 || window == 0)
		return 0;
	pthread_mutex_lock(&budgets->lock);
	for (size_t i = 0; i < budgets->count && !b; i++)
		if (strcmp(budgets->items[i].name, name) == 0)
			b = &budgets->items[i];
	if (!b && budgets->count < BUDGETS_MAX) {
		b = &budgets->items[budgets->count++];
		snprintf(b->name, sizeof(b->name), "%s", name);
		b->limit = limit;
		b->window = window;
		b->start = now;
	}
	if (!b)
		goto out; /* more hosts than budgets: unpaced, as before */
	if (now - b->start >= (double)b->window) {
		b->start = now;
		b->used = 0;
	}
	if (b->used < b->limit) {
		b->used++;
	} else {
		*wait = b->start + (double)b->window - now;
		rc = -EAGAIN;
	}
out:
	pthread_mutex_unlock(&budgets->lock);
	return rc;
}
