/* test_monotonic.c: unit tests of monotonic.c: a condition's timed wait
 * lasts until a monotonic_deadline, and deadlines carry their nanoseconds.
 * Not for: the waits that use them (fetch, core, pull). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "monotonic.h"
#include "tap.h"

static double seconds_of(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

int main(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	struct timespec before, until, after;
	int rc;

	tap_ok(monotonic_cond_init(&cond) == 0, "monotonic_cond_init");
	clock_gettime(CLOCK_MONOTONIC, &before);
	monotonic_deadline(&until, 1.75);
	tap_ok(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L,
	       "the deadline's nanoseconds are within a second (%ld)", until.tv_nsec);
	tap_ok(seconds_of(&until) - seconds_of(&before) >= 1.75 &&
		       seconds_of(&until) - seconds_of(&before) < 60,
	       "the deadline is 1.75 s on (%.3f)", seconds_of(&until) - seconds_of(&before));
	monotonic_deadline(&until, 0.2);
	pthread_mutex_lock(&lock);
	do
		rc = pthread_cond_timedwait(&cond, &lock, &until);
	while (rc == 0); /* a spurious wake-up */
	pthread_mutex_unlock(&lock);
	clock_gettime(CLOCK_MONOTONIC, &after);
	/* On another clock than the deadline's the wait would end at once,
	 * or after years. */
	tap_ok(rc == ETIMEDOUT, "the wait ends by its deadline (%d)", rc);
	tap_ok(seconds_of(&after) >= seconds_of(&until),
	       "not before it: %.3f s short", seconds_of(&until) - seconds_of(&after));
	pthread_cond_destroy(&cond);
	return tap_done();
}
