/* monotonic.h: waits timed on CLOCK_MONOTONIC, which a change of the wall
 * clock does not move. Not for: timestamps shown to people (time(2)). */
#ifndef OMNIHUB_MONOTONIC_H
#define OMNIHUB_MONOTONIC_H

#include <pthread.h>
#include <time.h>

/* Initialises cond so that pthread_cond_timedwait takes deadlines on
 * CLOCK_MONOTONIC (monotonic_deadline's); 0 or -errno. */
int monotonic_cond_init(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC time seconds (>= 0) from now, for such a wait. */
void monotonic_deadline(struct timespec *out, double seconds);

#endif
