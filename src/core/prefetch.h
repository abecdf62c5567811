/* prefetch.h: how far ahead of a reader of one open file to fetch: a window
 * that grows while reads stay sequential (out-of-order reads of the kernel's
 * parallel read-ahead, a short forward skip and a small step back included)
 * and is dropped by any other seek, so random access fetches only what it
 * reads. Not for: fetching (transfer.c) or locking: the caller serializes
 * the calls of one handle. */
#ifndef OMNIHUB_PREFETCH_H
#define OMNIHUB_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

/* The first window of a sequential reader, and the most a handle asks
 * ahead (hf-mount starts at 8 MiB too; mountpoint-s3 at ~1 MiB and grows
 * to 2 GiB, a size our piece queue would not drain in time). */
#define PREFETCH_WINDOW_FIRST (8ull << 20)
#define PREFETCH_WINDOW_MAX (256ull << 20)
/* A read that starts this far behind the furthest byte read (or within
 * the window, when that is larger) still counts as sequential: the kernel
 * sends read-ahead in parallel, out of order, and loaders step back over a
 * header. */
#define PREFETCH_BACK_BYTES (1ull << 20)
/* Nor does a forward skip up to this far past it reset (a loader skipping
 * a tensor it does not need). */
#define PREFETCH_SKIP_BYTES (16ull << 20)
/* After a seek, this many sequential reads in a row give a window again. */
#define PREFETCH_RUN_TO_GROW 2u

struct prefetch {
	uint64_t size;   /* the file's */
	uint64_t high;   /* the end of the furthest read so far */
	uint64_t window; /* bytes asked ahead of high; 0 while reads are random */
	unsigned run;    /* sequential reads in a row since the last seek */
};

/* A new handle: a read at 0 is the start of a sequential reader. */
void prefetch_init(struct prefetch *p, uint64_t size);

/* Notes a read of [offset, offset + length) and says which bytes to ask
 * for now: [*hint_offset, *hint_offset + *hint_length), the read's own
 * and those ahead of it, within the file. */
void prefetch_read(struct prefetch *p, uint64_t offset, uint64_t length, uint64_t *hint_offset,
		   uint64_t *hint_length);

#endif
