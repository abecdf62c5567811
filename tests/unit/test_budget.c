/* test_budget.c: unit tests of budget.c: calls within a window pass, the
 * next waits for the window's end, names are separate, 0 means no budget.
 * Not for: the hubs that use budgets (test_hf_mount.py). */
#include "build_config.h"

#include <errno.h>

#include "budget.h"
#include "tap.h"

int main(void)
{
	struct budgets *budgets = NULL;
	time_t wait = -1;
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
	budgets_free(budgets);
	return tap_done();
}
