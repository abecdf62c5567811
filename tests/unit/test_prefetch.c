/* test_prefetch.c: unit tests of prefetch.c: the window grows on sequential
 * reads (out of order and small steps back included), is dropped by a seek,
 * grows again after a run, and never asks past the file.
 * Not for: what the transfer fetches (test_transfers.py). */
#include "build_config.h"

#include "prefetch.h"
#include "tap.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* The bytes asked ahead of the read's end. */
static uint64_t ahead(struct prefetch *p, uint64_t offset, uint64_t length)
{
	uint64_t off, len;

	prefetch_read(p, offset, length, &off, &len);
	return off + len > offset + length ? off + len - (offset + length) : 0;
}

static void test_sequential_grows_to_max(void)
{
	struct prefetch p;
	uint64_t got, off = 0, len;
	int grew = 1;

	prefetch_init(&p, 4 * GiB);
	got = ahead(&p, 0, MiB);
	tap_ok(got == PREFETCH_WINDOW_FIRST, "a first read at 0 asks the first window ahead (%llu)",
	       (unsigned long long)got);
	for (uint64_t want = 2 * PREFETCH_WINDOW_FIRST; want <= PREFETCH_WINDOW_MAX; want *= 2) {
		off += MiB;
		got = ahead(&p, off, MiB);
		grew &= got == want;
	}
	tap_ok(grew, "each sequential read doubles it up to the most");
	got = ahead(&p, off + MiB, MiB);
	tap_ok(got == PREFETCH_WINDOW_MAX, "and it stays there (%llu)", (unsigned long long)got);
	prefetch_read(&p, 0, MiB, &off, &len);
	tap_ok(off == 0, "the hint starts at the read");
}

static void test_out_of_order_and_back_step_keep_it(void)
{
	struct prefetch p;
	uint64_t before, got;

	prefetch_init(&p, 4 * GiB);
	for (uint64_t off = 0; off < 4 * MiB; off += MiB)
		ahead(&p, off, MiB);
	before = p.window;
	/* The kernel's parallel read-ahead: 6 MiB arrives before 5 MiB. */
	ahead(&p, 6 * MiB, MiB);
	got = ahead(&p, 4 * MiB + 512 * 1024, 512 * 1024);
	tap_ok(got > 0 && p.window > before, "reads out of order within the back window keep growing it");
	got = ahead(&p, 7 * MiB - 4096, 4096);
	tap_ok(got > 0 && p.run >= PREFETCH_RUN_TO_GROW, "a step back of 4 KiB is no seek");
	got = ahead(&p, p.high + PREFETCH_SKIP_BYTES, MiB);
	tap_ok(got > 0, "a forward skip of %llu MiB is no seek",
	       (unsigned long long)(PREFETCH_SKIP_BYTES / MiB));
}

static void test_seek_drops_it_until_a_run(void)
{
	struct prefetch p;
	uint64_t got, off, len;

	prefetch_init(&p, 4 * GiB);
	for (uint64_t o = 0; o < 8 * MiB; o += MiB)
		ahead(&p, o, MiB);
	got = ahead(&p, 3 * GiB, 4096);
	tap_ok(got == 0, "a seek forward asks only what it reads (%llu ahead)", (unsigned long long)got);
	prefetch_read(&p, 3 * GiB + 4096, 4096, &off, &len);
	tap_ok(off == 3 * GiB + 4096 && len == PREFETCH_WINDOW_FIRST + 4096,
	       "the second read of a run asks the first window again (%llu)", (unsigned long long)len);
	ahead(&p, 3 * GiB + 8192, 4096); /* a window of 16 MiB */
	got = ahead(&p, 3 * GiB - 20 * MiB, 4096);
	tap_ok(got == 0, "a seek back past the window drops it");
	/* Random reads: none asks ahead. */
	int quiet = 1;
	for (uint64_t i = 1; i <= 50; i++)
		quiet &= ahead(&p, (i * 7919 % 1000) * 3 * MiB + (i % 2 ? 0 : 40 * MiB), 4096) == 0;
	tap_ok(quiet, "50 random reads ask for nothing beyond themselves");
	prefetch_init(&p, 4 * GiB);
	got = ahead(&p, 4 * GiB - 65536, 65536);
	tap_ok(got == 0, "a first read at the end (a zip's directory) asks nothing ahead");
}

static void test_never_past_the_file(void)
{
	struct prefetch p;
	uint64_t off, len;

	prefetch_init(&p, 3 * MiB);
	prefetch_read(&p, 0, MiB, &off, &len);
	tap_ok(off == 0 && len == 3 * MiB, "a small file: the window stops at its end (%llu)",
	       (unsigned long long)len);
	prefetch_read(&p, 2 * MiB, 2 * MiB, &off, &len);
	tap_ok(off + len == 3 * MiB, "a read past the end is cut at it");
	prefetch_read(&p, 5 * MiB, MiB, &off, &len);
	tap_ok(len == 0, "a read wholly past the end asks nothing");
	prefetch_init(&p, UINT64_MAX - 10);
	prefetch_read(&p, UINT64_MAX - 20, 100, &off, &len);
	tap_ok(off + len == UINT64_MAX - 10, "no overflow near the largest size");
}

int main(void)
{
	test_sequential_grows_to_max();
	test_out_of_order_and_back_step_keep_it();
	test_seek_drops_it_until_a_run();
	test_never_past_the_file();
	return tap_done();
}
