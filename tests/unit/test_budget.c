/* test_budget.c: unit tests of budget.c: calls within a window pass, the
 * next waits for the window's end, names are separate, 0 means no budget.
 * Not for: the hubs that use budgets (test_hf_mount.py). */
#include "build_config.h"

#include <errno.h>
#include <time.h>

#include "budget.h"
#include "tap.h"

int main(void)
{
	struct budgets *budgets = NULL;
	double wait = -1;
	int ok = 1;

	tap_ok(budgets_new(&budgets) == 0, "budgets made");
	for (int i = 0; i < 3; i++)
		ok &= budgets_take(budgets, "https://hub:443 api", 3, 60, &wait) == 0 && wait == 0;
	tap_ok(ok, "three calls of a budget of three pass at once");
	tap_ok(budgets_take(budgets, "https://hub:443 api", 3, 60, &wait) == -EAGAIN && wait > 0 &&
		       wait <= 60,
	       "the fourth waits for the window's end");
	tap_ok(budgets_take(budgets, "https://other:443 api", 3, 60, &wait) == 0,
	       "another name has a budget of its own");
	ok = 1;
	for (int i = 0; i < 1000; i++)
		ok &= budgets_take(budgets, "unpaced", 0, 60, &wait) == 0 && wait == 0;
	tap_ok(ok, "a limit of 0 never waits");
	/* The window is a whole window from its first call, to the fraction:
	 * a whole-second clock ended it up to 1 s early. */
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	tap_ok(budgets_take(budgets, "exact", 1, 1, &wait) == 0, "the first call of 1 per second");
	int rc = budgets_take(budgets, "exact", 1, 1, &wait);
	tap_ok(rc == -EAGAIN && wait > 0.5 && wait <= 1.0,
	       "the second waits for the rest of the second (%.3f s)", wait);
	struct timespec nap = { 0, (long)(wait * 1e9) };
	nanosleep(&nap, NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	tap_ok(budgets_take(budgets, "exact", 1, 1, &wait) == 0 &&
		       (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >=
			       1.0,
	       "it passes once the window has ended, a whole second after the first");
	budgets_free(budgets);
	return tap_done();
}
