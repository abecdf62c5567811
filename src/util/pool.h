/* pool.h: a fixed set of worker threads, started once, running queued
 * tasks in order: bounded work, however many files or requests wait.
 * Not for: waiting on a transfer (chain from its callback instead). */
#ifndef OMNIHUB_POOL_H
#define OMNIHUB_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct pool;

/* A task: run once on a worker. cancelled: the pool is stopping and the
 * task never started; it must only answer whoever waits (EINTR) and free
 * ctx, quickly, without new work. */
typedef void (*pool_fn)(void *ctx, bool cancelled);

/* Starts nthreads workers; name (at most 15 characters with the number)
 * names them in /proc/<pid>/task/<tid>/comm. key_limit: at most that many
 * tasks of one key (pool_submit_keyed) run at once, 0 for no limit. */
int pool_new(struct pool **out, unsigned nthreads, unsigned key_limit, const char *name);
/* Queues fn(ctx): 0, -ENOMEM, or -ESHUTDOWN once the pool stops (fn is
 * then never called). Never blocks on a task. */
int pool_submit(struct pool *pool, pool_fn fn, void *ctx);
/* The same, for a task of key (what it waits on, e.g. a hub; NULL: none):
 * while key_limit tasks of that key run, it waits and later tasks of
 * other keys pass it, so one stalled source never holds every worker. */
int pool_submit_keyed(struct pool *pool, const void *key, pool_fn fn, void *ctx);
/* Runs every task still queued as cancelled, waits for the running ones
 * to return, and joins the workers; later submits fail. Idempotent. */
void pool_stop(struct pool *pool);
/* Stops if needed; frees. NULL is ignored. */
void pool_free(struct pool *pool);
/* How many workers it has. */
unsigned pool_threads(const struct pool *pool);
/* Tasks queued, not yet started (for status and tests). */
size_t pool_queued(struct pool *pool);

#endif
