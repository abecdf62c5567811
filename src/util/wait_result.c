/* wait_result.c: one result a thread blocks on until a callback delivers it: how a
 * thread that may block (a job, a lookup) uses the callback-based waits.
 * Not for: FUSE requests, which must never block on these (fs.c). */
#include "build_config.h"

#include "wait_result.h"

void wait_result_init(struct wait_result *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = false;
	w->rc = 0;
}

void wait_result_deliver(void *ctx, int rc)
{
	struct wait_result *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int wait_result_take(struct wait_result *w)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	rc = w->rc;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void wait_result_destroy(struct wait_result *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
