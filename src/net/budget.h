/* budget.h: request budgets in fixed windows ("500 calls per 5 minutes to
 * this host"), shared by every hub of a mount, so that together they stay
 * under a server's published rate limit instead of running into its 429s.
 * Not for: retrying what a server refused (fetch.c, transfer.c, the hubs). */
#ifndef OMNIHUB_BUDGET_H
#define OMNIHUB_BUDGET_H

struct budgets;

int budgets_new(struct budgets **out);
void budgets_free(struct budgets *budgets);

/* Takes one call of the budget called name (limit calls per window
 * seconds, a window starting at the first call after the last one ended;
 * a name's first take sets them): 0, or -EAGAIN with *wait the seconds
 * (fractions too) until its window ends. limit 0 means no budget. */
int budgets_take(struct budgets *budgets, const char *name, unsigned limit, unsigned window,
		 double *wait);

#endif
