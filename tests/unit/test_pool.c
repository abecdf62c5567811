/* test_pool.c: unit tests of pool.c: every task runs once, on no more
 * threads than the pool has, and a stop runs the queued ones cancelled.
 * A key's limit lets other keys' tasks pass a held one.
 * Not for: the pools' use by downloads or FUSE (integration tests). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "pool.h"
#include "tap.h"

struct counts {
	atomic_int ran;
	atomic_int cancelled;
	atomic_int running;
	atomic_int most; /* the most tasks that ran at once */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	bool gate_open; /* tasks wait until it opens */
};

static void task(void *ctx, bool cancelled)
{
	struct counts *c = ctx;
	int now;

	if (cancelled) {
		atomic_fetch_add(&c->cancelled, 1);
		return;
	}
	now = atomic_fetch_add(&c->running, 1) + 1;
	for (int most = atomic_load(&c->most); now > most;)
		if (atomic_compare_exchange_weak(&c->most, &most, now))
			break;
	pthread_mutex_lock(&c->gate_lock);
	while (!c->gate_open)
		pthread_cond_wait(&c->gate_cond, &c->gate_lock);
	pthread_mutex_unlock(&c->gate_lock);
	usleep(1000);
	atomic_fetch_sub(&c->running, 1);
	atomic_fetch_add(&c->ran, 1);
}

static void counts_init(struct counts *c, bool open)
{
	atomic_init(&c->ran, 0);
	atomic_init(&c->cancelled, 0);
	atomic_init(&c->running, 0);
	atomic_init(&c->most, 0);
	pthread_mutex_init(&c->gate_lock, NULL);
	pthread_cond_init(&c->gate_cond, NULL);
	c->gate_open = open;
}

static void gate_open(struct counts *c)
{
	pthread_mutex_lock(&c->gate_lock);
	c->gate_open = true;
	pthread_cond_broadcast(&c->gate_cond);
	pthread_mutex_unlock(&c->gate_lock);
}

static void test_bounded_and_all_run(void)
{
	struct pool *pool = NULL;
	struct counts c;
	int rc = pool_new(&pool, 4, 0, "test");

	counts_init(&c, false);
	tap_ok(rc == 0 && pool_threads(pool) == 4, "a pool of 4 threads starts");
	for (int i = 0; i < 200 && rc == 0; i++)
		rc = pool_submit(pool, task, &c);
	tap_ok(rc == 0, "200 tasks queued without waiting for any");
	while (atomic_load(&c.running) < 4)
		usleep(1000);
	tap_ok(pool_queued(pool) == 196, "4 run, 196 wait in the queue (%zu)", pool_queued(pool));
	gate_open(&c);
	while (atomic_load(&c.ran) < 200)
		usleep(1000);
	tap_ok(atomic_load(&c.most) == 4, "never more than 4 at once (%d)", atomic_load(&c.most));
	pool_free(pool);
	tap_ok(atomic_load(&c.ran) == 200 && atomic_load(&c.cancelled) == 0,
	       "every task ran once");
}

static void *stopper(void *arg)
{
	pool_stop(arg);
	return NULL;
}

static void test_stop_cancels_queued(void)
{
	struct pool *pool = NULL;
	struct counts c, probes;
	pthread_t thread;
	int rc = pool_new(&pool, 2, 0, "test"), queued = 0;

	counts_init(&c, false);
	counts_init(&probes, true);
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = pool_submit(pool, task, &c);
	while (atomic_load(&c.running) < 2)
		usleep(1000);
	/* The stop begins while two tasks run and eight wait; the submits
	 * that still get in before it queue probes, cancelled as well. */
	pthread_create(&thread, NULL, stopper, pool);
	while (pool_submit(pool, task, &probes) == 0) {
		queued++;
		usleep(100);
	}
	gate_open(&c);
	pthread_join(thread, NULL);
	tap_ok(atomic_load(&c.ran) == 2 && atomic_load(&c.cancelled) == 8,
	       "a stop runs the queued tasks cancelled (%d ran, %d cancelled)",
	       atomic_load(&c.ran), atomic_load(&c.cancelled));
	tap_ok(atomic_load(&probes.cancelled) == queued && atomic_load(&probes.ran) == 0,
	       "and those queued while it stops (%d)", queued);
	tap_ok(pool_submit(pool, task, &c) == -ESHUTDOWN, "a submit after the stop fails");
	pool_free(pool);
}

/* Four workers, at most two per key: ten tasks of a stalled key take two,
 * and the tasks of another key queued after them run on the other two. */
static void test_key_limit_lets_others_pass(void)
{
	struct pool *pool = NULL;
	struct counts stalled, other, unkeyed;
	static const char key_stalled = 's', key_other = 'o';
	int rc = pool_new(&pool, 4, 2, "test");

	counts_init(&stalled, false);
	counts_init(&other, false);
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = pool_submit_keyed(pool, &key_stalled, task, &stalled);
	for (int i = 0; i < 6 && rc == 0; i++)
		rc = pool_submit_keyed(pool, &key_other, task, &other);
	tap_ok(rc == 0, "16 tasks of two keys queued");
	/* Bounded: without the limit the other key never gets two workers. */
	for (int ms = 0; ms < 5000 && (atomic_load(&stalled.running) < 2 ||
				       atomic_load(&other.running) < 2); ms++)
		usleep(1000);
	usleep(20000); /* a third of either would start now if it could */
	tap_ok(atomic_load(&stalled.running) == 2 && atomic_load(&other.running) == 2,
	       "two of each key run, past the stalled key's queued ones (%d, %d)",
	       atomic_load(&stalled.running), atomic_load(&other.running));
	gate_open(&other);
	for (int ms = 0; ms < 5000 && atomic_load(&other.ran) < 6; ms++)
		usleep(1000);
	tap_ok(atomic_load(&other.ran) == 6 && atomic_load(&stalled.ran) == 0,
	       "the other key's six ran while the first stalls");
	tap_ok(atomic_load(&stalled.most) == 2 && atomic_load(&other.most) == 2,
	       "never more than two of a key at once (%d, %d)", atomic_load(&stalled.most),
	       atomic_load(&other.most));
	gate_open(&stalled);
	while (atomic_load(&stalled.ran) < 10)
		usleep(1000);
	tap_ok(pool_queued(pool) == 0, "the stalled key's ten ran once it moved");
	/* Unkeyed tasks are not limited. */
	counts_init(&unkeyed, false);
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = pool_submit(pool, task, &unkeyed);
	while (atomic_load(&unkeyed.running) < 4)
		usleep(1000);
	tap_ok(atomic_load(&unkeyed.most) == 4, "four unkeyed tasks run at once");
	gate_open(&unkeyed);
	pool_free(pool);
}

int main(void)
{
	test_bounded_and_all_run();
	test_stop_cancels_queued();
	test_key_limit_lets_others_pass();
	return tap_done();
}
