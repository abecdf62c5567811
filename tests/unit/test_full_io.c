/* test_full_io.c: unit tests of full_io.c: reads and writes that come back
 * short (a pipe fed or drained in pieces), interrupted by a signal without
 * SA_RESTART, the end of a file, and errors. Not for: the callers' own
 * handling of a short file (their tests). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "full_io.h"
#include "tap.h"

enum { BIG = 1 << 20 }; /* more than a pipe holds, so writes come back short */

static atomic_int signals_seen;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_seen, 1);
}

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* What a peer thread does at the other end of a pipe. */
struct peer {
	int fd;
	pthread_t target;  /* the thread in full_io, signalled while it waits */
	int signals;       /* how many signals to send it before acting */
	size_t piece;      /* bytes per write or read */
	size_t total;      /* bytes to write, or to read and check */
	size_t got;        /* reading: bytes read */
	bool good;         /* reading: all matched the pattern */
};

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + i / 251);
}

static void signal_target(const struct peer *p)
{
	for (int i = 0; i < p->signals; i++) {
		pause_ms(20);
		pthread_kill(p->target, SIGUSR1);
	}
}

/* Writes the pattern in pieces, with pauses, after the signals; closes. */
static void *feed(void *arg)
{
	struct peer *p = arg;
	unsigned char *buf = malloc(p->total);

	for (size_t i = 0; buf && i < p->total; i++)
		buf[i] = pattern(i);
	signal_target(p);
	for (size_t done = 0; buf && done < p->total;) {
		size_t n = p->total - done < p->piece ? p->total - done : p->piece;
		ssize_t w = write(p->fd, buf + done, n);

		if (w <= 0)
			break;
		done += (size_t)w;
		pause_ms(1);
	}
	free(buf);
	close(p->fd);
	return NULL;
}

/* Reads in pieces, after the signals, checking the pattern; closes. */
static void *drain(void *arg)
{
	struct peer *p = arg;
	unsigned char *buf = malloc(p->piece);

	p->good = buf != NULL;
	signal_target(p);
	while (buf) {
		ssize_t n = read(p->fd, buf, p->piece);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(p->got + (size_t)i))
				p->good = false;
		p->got += (size_t)n;
		pause_ms(1);
	}
	free(buf);
	close(p->fd);
	return NULL;
}

static void test_read_short_and_interrupted(void)
{
	struct peer p = { .piece = 4096 + 17, .total = 200000, .signals = 3 };
	unsigned char *buf = malloc(p.total + 100);
	int fds[2];
	pthread_t t;
	ssize_t n, end;
	bool good = buf != NULL;

	if (!buf || pipe(fds) != 0) {
		tap_ok(0, "read: set up");
		free(buf);
		return;
	}
	atomic_store(&signals_seen, 0);
	p.fd = fds[1];
	p.target = pthread_self();
	pthread_create(&t, NULL, feed, &p);
	n = full_io_read(fds[0], buf, p.total + 100);
	/* Only after the end was read does a second read not wait. */
	end = n == (ssize_t)p.total ? full_io_read(fds[0], buf + p.total, 10) : -1;
	close(fds[0]); /* a feeder still writing fails rather than hang */
	pthread_join(t, NULL);
	for (size_t i = 0; good && n > 0 && i < (size_t)n; i++)
		good = buf[i] == pattern(i);
	tap_ok(atomic_load(&signals_seen) == 3, "read: the signals arrived while it waited (%d)",
	       atomic_load(&signals_seen));
	tap_ok(n == (ssize_t)p.total && good,
	       "read: a pipe fed in pieces, interrupted, is read whole up to its end (%zd of %zu)",
	       n, p.total);
	tap_ok(end == 0, "read: at the end it returns 0 (%zd)", end);
	free(buf);
}

static void test_write_short_and_interrupted(void)
{
	struct peer p = { .piece = 3000, .signals = 3, .total = BIG };
	unsigned char *buf = malloc(BIG);
	int fds[2];
	pthread_t t;
	ssize_t n;

	if (!buf || pipe(fds) != 0) {
		tap_ok(0, "write: set up");
		free(buf);
		return;
	}
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern(i);
	atomic_store(&signals_seen, 0);
	p.fd = fds[0];
	p.target = pthread_self();
	pthread_create(&t, NULL, drain, &p);
	n = full_io_write(fds[1], buf, BIG);
	close(fds[1]);
	pthread_join(t, NULL);
	tap_ok(atomic_load(&signals_seen) == 3, "write: the signals arrived while it waited (%d)",
	       atomic_load(&signals_seen));
	tap_ok(n == BIG, "write: all of a buffer larger than the pipe is written (%zd)", n);
	tap_ok(p.got == BIG && p.good, "write: the reader got every byte in order (%zu)", p.got);
	free(buf);
}

static void test_file(void)
{
	char path[] = "/tmp/test_full_io.XXXXXX";
	char buf[64];
	int fd = mkstemp(path);
	ssize_t n;

	if (fd < 0) {
		tap_ok(0, "file: mkstemp");
		return;
	}
	unlink(path);
	n = full_io_pwrite(fd, "0123456789", 10, 5);
	tap_ok(n == 10, "pwrite: writes at its offset (%zd)", n);
	tap_ok(lseek(fd, 0, SEEK_CUR) == 0, "pwrite: the file offset is left alone");
	n = full_io_pread(fd, buf, sizeof(buf), 0);
	tap_ok(n == 15 && memcmp(buf, "\0\0\0\0\0" "0123456789", 15) == 0,
	       "pread: a file shorter than asked is read to its end (%zd)", n);
	n = full_io_pread(fd, buf, 4, 13);
	tap_ok(n == 2 && memcmp(buf, "89", 2) == 0, "pread: near the end, what there is (%zd)", n);
	n = full_io_pread(fd, buf, 4, 100);
	tap_ok(n == 0, "pread: past the end, 0 (%zd)", n);
	tap_ok(lseek(fd, 0, SEEK_CUR) == 0, "pread: the file offset is left alone");
	n = full_io_write(fd, "ab", 2);
	tap_ok(n == 2 && lseek(fd, 0, SEEK_CUR) == 2, "write: at the file offset, moving it");
	n = full_io_read(fd, buf, 4);
	tap_ok(n == 4 && memcmp(buf, "\0\0\0" "0", 4) == 0, "read: from the file offset (%zd)", n);
	n = full_io_read(fd, buf, 0);
	tap_ok(n == 0, "read: nothing asked, nothing read (%zd)", n);
	tap_ok(full_io_pread(fd, buf, 1, -1) == -EINVAL, "pread: a negative offset is -EINVAL");
	tap_ok(full_io_pwrite(fd, "x", 1, -1) == -EINVAL, "pwrite: a negative offset is -EINVAL");
	close(fd);
}

static void test_errors(void)
{
	char buf[8];
	int fds[2];

	tap_ok(full_io_read(-1, buf, sizeof(buf)) == -EBADF, "read: a bad descriptor is -EBADF");
	tap_ok(full_io_write(-1, "x", 1) == -EBADF, "write: a bad descriptor is -EBADF");
	if (pipe(fds) != 0) {
		tap_ok(0, "errors: pipe");
		return;
	}
	tap_ok(full_io_pread(fds[0], buf, 1, 0) == -ESPIPE, "pread: a pipe is -ESPIPE");
	tap_ok(full_io_pwrite(fds[1], "x", 1, 0) == -ESPIPE, "pwrite: a pipe is -ESPIPE");
	close(fds[0]);
	tap_ok(full_io_write(fds[1], "x", 1) == -EPIPE, "write: a pipe nobody reads is -EPIPE");
	close(fds[1]);
}

int main(void)
{
	struct sigaction sa;

	/* No SA_RESTART: an interrupted read or write fails with EINTR, or
	 * returns short, and full_io must go on. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	test_read_short_and_interrupted();
	test_write_short_and_interrupted();
	test_file();
	test_errors();
	return tap_done();
}
