/* pool.c: a fixed set of worker threads, started once, running queued
 * tasks in order. Not for: waiting on a transfer (chain from its callback). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/* A worker's stack: its deepest work (libarchive, libcurl, a hash) needs
 * far less, and a fixed size keeps the address space a worker costs small
 * and known (the daemon may run under ulimit -v); glibc's default is the
 * stack limit, 8 MiB. */
#define POOL_STACK_BYTES (2u << 20)

struct task {
	pool_fn fn;
	void *ctx;
	const void *key; /* NULL: none */
	struct task *next;
};

/* How many tasks of a key run now; a slot with running 0 is free. */
struct key_count {
	const void *key;
	unsigned running;
};

struct pool {
	pthread_t *threads;   /* owned; nthreads, the first started of them */
	unsigned nthreads;
	unsigned started;
	unsigned key_limit;       /* 0: none */
	struct key_count *keys;   /* owned; nthreads slots, at most one per
				     running task */
	pthread_mutex_t lock; /* guards the queue and stopping */
	pthread_cond_t work;  /* signalled when a task is queued or on stop */
	struct task *head;    /* owned; the queue, oldest first */
	struct task *tail;
	size_t queued;
	bool stopping;
	bool joined;
};

/* Under the lock: the slot counting key's running tasks, or a free one
 * (there is always one for a worker that asks: a slot per worker). */
static struct key_count *key_slot(struct pool *pool, const void *key)
{
	struct key_count *free_slot = NULL;

	for (unsigned i = 0; i < pool->nthreads; i++) {
		if (pool->keys[i].running && pool->keys[i].key == key)
			return &pool->keys[i];
		if (!pool->keys[i].running && !free_slot)
			free_slot = &pool->keys[i];
	}
	if (free_slot)
		free_slot->key = key;
	return free_slot;
}

/* Under the lock: whether t may start now. A stopping pool runs every
 * task (cancelled, quickly), limits or not. */
static bool task_may_run(struct pool *pool, const struct task *t)
{
	const struct key_count *slot;

	if (!t->key || !pool->key_limit || pool->stopping)
		return true;
	slot = key_slot(pool, t->key);
	return !slot || slot->running < pool->key_limit;
}

/* Under the lock: unlinks and returns the oldest task that may start, or
 * NULL. A walk of the queue: it is as long as the requests the kernel has
 * in flight, and a held key's tasks are passed, never reordered. */
static struct task *task_take(struct pool *pool)
{
	struct task *prev = NULL, *t;

	for (t = pool->head; t && !task_may_run(pool, t); t = t->next)
		prev = t;
	if (!t)
		return NULL;
	if (prev)
		prev->next = t->next;
	else
		pool->head = t->next;
	if (pool->tail == t)
		pool->tail = prev;
	pool->queued--;
	return t;
}

static void *worker_main(void *arg)
{
	struct pool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct task *t = task_take(pool);
		if (!t) {
			if (pool->stopping && !pool->head)
				break;
			pthread_cond_wait(&pool->work, &pool->lock);
			continue;
		}
		struct key_count *slot = t->key ? key_slot(pool, t->key) : NULL;
		if (slot)
			slot->running++;
		/* A task queued before the stop still runs, cancelled: its
		 * waiter is answered either way. */
		bool cancelled = pool->stopping;
		pthread_mutex_unlock(&pool->lock);
		t->fn(t->ctx, cancelled);
		free(t);
		pthread_mutex_lock(&pool->lock);
		if (slot && --slot->running < pool->key_limit && pool->head)
			pthread_cond_broadcast(&pool->work); /* a passed task may start */
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int pool_new(struct pool **out, unsigned nthreads, unsigned key_limit, const char *name)
{
	struct pool *pool;
	pthread_attr_t attr;
	int rc = -ENOMEM;

	*out = NULL;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POOL_STACK_BYTES);
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		goto out;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pool->nthreads = nthreads ? nthreads : 1;
	pool->key_limit = key_limit;
	pool->threads = calloc(pool->nthreads, sizeof(*pool->threads));
	pool->keys = calloc(pool->nthreads, sizeof(*pool->keys));
	if (!pool->threads || !pool->keys)
		goto out;
	for (; pool->started < pool->nthreads; pool->started++) {
		char comm[16];
		rc = -pthread_create(&pool->threads[pool->started], &attr, worker_main, pool);
		if (rc)
			goto out;
		snprintf(comm, sizeof(comm), "%.10s%u", name, pool->started);
		pthread_setname_np(pool->threads[pool->started], comm);
	}
	*out = pool;
	pool = NULL;
	rc = 0;
out:
	pthread_attr_destroy(&attr);
	pool_free(pool);
	return rc;
}

int pool_submit(struct pool *pool, pool_fn fn, void *ctx)
{
	return pool_submit_keyed(pool, NULL, fn, ctx);
}

int pool_submit_keyed(struct pool *pool, const void *key, pool_fn fn, void *ctx)
{
	struct task *t = malloc(sizeof(*t));
	int rc = 0;

	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->ctx = ctx;
	t->key = key;
	t->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping) {
		rc = -ESHUTDOWN;
		goto out;
	}
	if (pool->tail)
		pool->tail->next = t;
	else
		pool->head = t;
	pool->tail = t;
	pool->queued++;
	t = NULL;
	pthread_cond_signal(&pool->work);
out:
	pthread_mutex_unlock(&pool->lock);
	free(t);
	return rc;
}

void pool_stop(struct pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work);
	bool join = !pool->joined;
	pool->joined = true;
	pthread_mutex_unlock(&pool->lock);
	if (!join)
		return;
	for (unsigned i = 0; i < pool->started; i++)
		pthread_join(pool->threads[i], NULL);
	/* No worker started (a failed pool_new): nothing can be queued. */
}

void pool_free(struct pool *pool)
{
	if (!pool)
		return;
	pool_stop(pool);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool->keys);
	free(pool);
}

unsigned pool_threads(const struct pool *pool)
{
	return pool->nthreads;
}

size_t pool_queued(struct pool *pool)
{
	size_t n;

	pthread_mutex_lock(&pool->lock);
	n = pool->queued;
	pthread_mutex_unlock(&pool->lock);
	return n;
}
