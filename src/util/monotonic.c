/* monotonic.c: waits timed on CLOCK_MONOTONIC, which a change of the wall
 * clock does not move. Not for: timestamps shown to people (time(2)). */
#include "build_config.h"

#include "monotonic.h"

int monotonic_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = -pthread_condattr_init(&attr);

	if (rc)
		goto out;
	rc = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = -pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
out:
	return rc;
}

void monotonic_deadline(struct timespec *out, double seconds)
{
	time_t whole = (time_t)seconds;

	clock_gettime(CLOCK_MONOTONIC, out);
	out->tv_sec += whole;
	out->tv_nsec += (long)((seconds - (double)whole) * 1e9);
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}
