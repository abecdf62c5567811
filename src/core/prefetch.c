/* prefetch.c: the read-ahead window of one open file, grown by sequential
 * reads and dropped by seeks. Not for: fetching or locking (prefetch.h). */
#include "build_config.h"

#include "prefetch.h"

void prefetch_init(struct prefetch *p, uint64_t size)
{
	p->size = size;
	p->high = 0;
	p->window = 0;
	/* One short of a run: a first read at 0 starts one at once, since
	 * nearly every loader reads a file from its start. */
	p->run = PREFETCH_RUN_TO_GROW - 1;
}

void prefetch_read(struct prefetch *p, uint64_t offset, uint64_t length, uint64_t *hint_offset,
		   uint64_t *hint_length)
{
	uint64_t end = offset + length, until;
	/* Behind the furthest read: within the back window, or within what
	 * the window already asked for (the kernel's reads in flight land
	 * out of order by up to its read-ahead). */
	uint64_t back = p->window > PREFETCH_BACK_BYTES ? p->window : PREFETCH_BACK_BYTES;
	bool sequential = offset <= p->high + PREFETCH_SKIP_BYTES && offset + back >= p->high;

	if (end < offset || end > p->size)
		end = p->size; /* past the end: the caller answers it short */
	if (sequential) {
		if (p->run < PREFETCH_RUN_TO_GROW)
			p->run++;
		if (p->run >= PREFETCH_RUN_TO_GROW)
			p->window = !p->window ? PREFETCH_WINDOW_FIRST
				    : p->window >= PREFETCH_WINDOW_MAX / 2 ? PREFETCH_WINDOW_MAX
									   : p->window * 2;
		if (end > p->high)
			p->high = end;
	} else {
		/* A seek: what it reads is all it gets until a run shows. */
		p->run = 1;
		p->window = 0;
		p->high = end;
	}
	until = p->high + p->window;
	if (until < p->high || until > p->size)
		until = p->size;
	*hint_offset = offset < p->size ? offset : p->size;
	*hint_length = until > *hint_offset ? until - *hint_offset : 0;
}
