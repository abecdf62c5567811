/* wait_result.h: one result a thread blocks on until a callback delivers it: how a
 * thread that may block (a job, a lookup) uses the callback-based waits.
 * Not for: FUSE requests, which must never block on these (fs.c). */
#ifndef OMNIHUB_WAIT_RESULT_H
#define OMNIHUB_WAIT_RESULT_H

#include <pthread.h>
#include <stdbool.h>

struct wait_result {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
};

void wait_result_init(struct wait_result *w);
/* The callback: ctx is the struct wait_result. */
void wait_result_deliver(void *ctx, int rc);
/* Blocks until delivered; returns the result. */
int wait_result_take(struct wait_result *w);
void wait_result_destroy(struct wait_result *w);

#endif
