/* transfer.c: one transfer per blob, shared by every reader: pieces fetched
 * over several connections at once and written in place, hashed in order as
 * the prefix fills, retried, resumed, and shared with other processes
 * through the blob store's locks. Not for: HTTP details (fetch.c), the
 * on-disk layout (blob.c), or FUSE (fs.c).
 *
 * Threads: the engine thread alone drives curl (starts, receives, retries)
 * and fires most callbacks; the hasher thread hashes each blob's contiguous
 * prefix from disk and completes or drops it. engine->lock guards every
 * field of every transfer, call and waiter unless a comment says otherwise;
 * t->partial.state is written only by the engine thread (under the lock,
 * or without it while t->restarting keeps every other thread off it), so
 * that thread reads it without the lock to save the sidecar. The lock
 * order is in transfer.h. */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bitmap.h"
#include "blob.h"
#include "fetch.h"
#include "full_io.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "prefix_hash.h"
#include "transfer.h"
#include "wait_result.h"

/* Received bytes are written in blocks this large (fewer system calls than
 * one per TLS record), and at the end of every round of the engine. */
#define CALL_BUFFER_BYTES (256u << 10)
/* The hasher gives other blobs a turn after this many bytes. */
#define HASH_SLICE_BYTES (64ull << 20)
/* How often a follower reads the writer's sidecar. */
#define FOLLOW_INTERVAL_MS 100
#define BACKOFF_BASE_MS 250.0
#define BACKOFF_CAP_MS 30000.0
/* A file that keeps changing under us is given up. */
#define MAX_RESTARTS 3u
/* A mirror that could not be reached is not asked again for this long. */
#define MIRROR_DOWN_MS 60000.0
#define WAITER_BUCKETS 256
/* Git LFS stores this in place of a file that was never uploaded (or that
 * the host no longer serves). */
#define LFS_POINTER_PREFIX "version https://git-lfs.github.com/spec/v1"

enum transfer_state {
	STATE_RUNNING,   /* we write it */
	STATE_FOLLOWING, /* another process writes it */
	STATE_DONE,      /* complete and verified */
	STATE_FAILED,
};

enum wait_kind {
	WAIT_COMPLETE,
	WAIT_RANGE,
};

struct waiter {
	uint64_t id;
	enum wait_kind kind;
	uint64_t offset, end; /* WAIT_RANGE: [offset, end) */
	transfer_wait_fn fn;
	void *ctx;
	struct transfer *transfer; /* a reference, dropped after fn ran */
	int rc;                    /* what fn gets, once ready */
	struct waiter *next;       /* in transfer->waiters or a ready list */
	struct waiter *hash_next;  /* in engine->by_id while pending */
};

/* A function to run on the engine's thread. */
struct deferred {
	void (*fn)(void *ctx);
	void *ctx;
	struct deferred *next;
};

/* One request in flight: a piece, or the rest of one. Owned by its
 * transfer's list; only the engine thread touches it. */
struct call {
	struct transfer *transfer;
	size_t piece;       /* the first piece it covers */
	uint64_t start;     /* first byte asked for */
	uint64_t end;       /* last byte asked for (inclusive) */
	uint64_t pos;       /* next byte to land on disk */
	bool to_hub;        /* asked the hub's URL rather than a resolved one */
	int mirror;         /* the mirror asked (its index), -1: the hub */
	bool checked;       /* the response was accepted */
	struct timespec started;
	unsigned char *buf; /* received, not yet written; owned */
	size_t buffered;
	struct fetch_response resp;
	struct fetch_call *handle;
	struct call *next;
};

struct transfer {
	struct transfer_engine *engine;
	struct transfer *next; /* in engine->transfers */
	unsigned refs;
	bool released;         /* refs reached 0: the engine frees it */
	char *label;           /* owned */
	char *url;             /* owned: the hub's URL */
	char *auth_header;     /* owned, NULL when none: the credential for url
				  (never logged) */
	char *auth_origin;     /* owned, NULL when none: where it may go */
	char *resolved_url;    /* owned: where it redirected; NULL until known or
				  after it expired */
	struct digest_spec digest;
	uint64_t size;
	enum transfer_state state;
	int error;             /* STATE_FAILED: why */
	struct blob_partial partial; /* the data file and its sidecar */
	int done_fd;           /* STATE_DONE when opened as a complete blob */
	uint64_t piece_size;
	size_t npieces;
	unsigned char *inflight; /* owned: per piece, a call covers it */
	uint64_t *landed;      /* owned: per piece, bytes from its start on disk
				  (resume point of a broken request) */
	struct bitmap wanted;  /* pieces readers hinted at (stream mode) */
	bool want_all;
	unsigned calls_inflight;
	unsigned max_calls;    /* connections for this blob (1 without ranges) */
	bool no_ranges;        /* the server ignores Range: whole responses */
	struct call *calls;    /* engine thread only */
	unsigned failures;     /* rounds of failed requests since the last
				  progress (the backoff's exponent): requests
				  that fail together count once */
	struct timespec failed_at; /* when the last round began */
	bool failing;          /* failed since the last byte landed */
	struct timespec failing_since; /* the first failure since then: the
				  retry_time budget counts from it */
	unsigned char *tries;  /* owned: per piece, tries in a row that moved
				  no byte (capped at 255) */
	unsigned restarts;
	struct timespec not_before; /* no new request before (backoff) */
	struct timespec next_follow;
	uint64_t generation;   /* bumped when the content starts over */
	bool hashing;          /* the hasher is on it: it may not be freed */
	struct prefix_hash *hash; /* the hasher's; owned */
	uint64_t hash_generation; /* the generation hash is of */
	uint64_t streamed;     /* bytes handed to stream readers unverified */
	struct timespec started;
	uint64_t fetched;      /* bytes received over the network */
	uint64_t from[METRICS_FROM_COUNT]; /* of them, by where they came from */
	bool shared;           /* another process wrote (some of) it */
	bool was_there;        /* complete when it began */
	char *mirror_urls[MIRROR_MAX]; /* owned: the blob on each mirror */
	size_t nmirrors;
	size_t mirror;         /* the mirror asked now; nmirrors: the hub */
	bool mirror_proven;    /* it answered with the blob: ask in parallel */
	bool mirror_bytes;     /* this generation has bytes from a mirror */
	unsigned mirrors_used; /* bit i: mirror i sent some of them */
	bool refetch;          /* those bytes hashed wrong: start over from
				  the hub (the engine thread does it) */
	struct waiter *waiters;
	bool save_due;         /* a request ended: the engine thread saves the
				  sidecar, outside engine->lock */
	struct transfer *save_next; /* in the engine thread's list of saves */
	/* A start over (the file changed on the server, or a mirror's bytes
	 * hashed wrong) is due: the engine thread truncates the partial and
	 * saves its sidecar outside engine->lock. */
	bool restart_due;
	char *restart_validator; /* owned: the ETag to start over with */
	/* From restart_due until the start over is published: no byte of it
	 * counts as present, nothing is asked or hashed, and no thread but the
	 * engine's reads t->partial.state (it is being replaced). */
	bool restarting;
	/* It failed: the engine thread discards the partial (fail_drop) or
	 * saves its sidecar, then lets go of its write lock, outside
	 * engine->lock; until then a new transfer of the blob waits (it could
	 * not write the partial yet). */
	bool fail_io;
	bool fail_drop;
	bool fail_keep;        /* a shutdown: an empty partial stays too */
	struct transfer *io_next; /* in the engine thread's list of such I/O */
	bool io_restart, io_fail; /* what that list's turn does (taken under
				  engine->lock, done without it) */
	int io_rc;
	/* Orders the partial's files (sidecar saves, completion, discard,
	 * release) between the engine thread and the hasher; taken after
	 * engine->lock when both are held, never the other way. */
	pthread_mutex_t io_lock;
};

struct transfer_engine {
	struct fetcher *fetcher;     /* borrowed */
	struct blob_store *store;    /* borrowed */
	struct metrics *metrics;     /* borrowed; NULL: none (set before use) */
	struct transfer_options options;
	struct fetch_multi *multi;   /* engine thread only */
	/* Serializes starting transfers, so that a partial blob is opened (disk
	 * I/O) without engine->lock and no blob gets two transfers. Taken
	 * before engine->lock. */
	pthread_mutex_t create_lock;
	pthread_mutex_t lock;
	pthread_cond_t hash_cond;    /* the hasher has work, or must stop */
	pthread_cond_t io_cond;      /* a failed transfer's partial was let go */
	struct transfer *transfers;
	struct waiter *by_id[WAITER_BUCKETS];
	uint64_t next_id;
	struct waiter *ready;        /* to fire on the engine thread */
	struct deferred *deferred;
	unsigned calls_inflight;
	unsigned calls_max;          /* memory_max / TRANSFER_CALL_BYTES, >= 1:
					more requests than this only queue */
	size_t turn;                 /* round robin: the transfer (by its place
					in transfers) asked first next pass */
	/* Until when each mirror is taken for down (it could not be reached):
	 * transfers starting meanwhile do not wait on it. */
	struct timespec mirror_down_until[MIRROR_MAX];
	/* What the last transfers to end did, for status: a ring. */
	struct transfer_status recent[TRANSFER_RECENT];
	size_t recent_next;
	bool stopping;
	bool stopped;                /* the threads have exited */
	pthread_t engine_thread, hash_thread;
	bool threads_started;
};

/* ---- small helpers ---- */

static void now_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static double ms_until(const struct timespec *when)
{
	struct timespec now;

	now_mono(&now);
	return (double)(when->tv_sec - now.tv_sec) * 1e3 + (double)(when->tv_nsec - now.tv_nsec) / 1e6;
}

static void after_ms(struct timespec *ts, double ms)
{
	now_mono(ts);
	ts->tv_sec += (time_t)(ms / 1e3);
	ts->tv_nsec += (long)((ms - (double)(long)(ms / 1e3) * 1e3) * 1e6);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static double seconds_since(const struct timespec *start)
{
	return -ms_until(start) / 1e3;
}

static uint64_t piece_start(const struct transfer *t, size_t piece)
{
	return (uint64_t)piece * t->piece_size;
}

static uint64_t piece_end(const struct transfer *t, size_t piece) /* exclusive */
{
	uint64_t end = piece_start(t, piece) + t->piece_size;
	return end < t->size ? end : t->size;
}

static bool strong_validator(const char *etag)
{
	return etag[0] && strncmp(etag, "W/", 2) != 0;
}

static void wake_engine(struct transfer_engine *engine)
{
	if (engine->multi)
		fetch_multi_wakeup(engine->multi);
}

/* ---- waiters ---- */

static size_t id_bucket(uint64_t id)
{
	return (size_t)(id % WAITER_BUCKETS);
}

static void unhash_waiter_locked(struct transfer_engine *engine, struct waiter *w)
{
	for (struct waiter **p = &engine->by_id[id_bucket(w->id)]; *p; p = &(*p)->hash_next) {
		if (*p == w) {
			*p = w->hash_next;
			break;
		}
	}
}

/* Moves w from its transfer to the ready list with rc. */
static void ready_waiter_locked(struct transfer_engine *engine, struct waiter *w, int rc)
{
	struct transfer *t = w->transfer;

	for (struct waiter **p = &t->waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	unhash_waiter_locked(engine, w);
	w->rc = rc;
	w->next = engine->ready;
	engine->ready = w;
}

static void put_locked(struct transfer *t);

/* Runs the callbacks of a detached list, without the lock. */
static void fire(struct transfer_engine *engine, struct waiter *list)
{
	while (list) {
		struct waiter *next = list->next;
		list->fn(list->ctx, list->rc);
		pthread_mutex_lock(&engine->lock);
		put_locked(list->transfer);
		pthread_mutex_unlock(&engine->lock);
		free(list);
		list = next;
	}
}

static struct waiter *take_ready_locked(struct transfer_engine *engine)
{
	struct waiter *list = engine->ready, *reversed = NULL;

	engine->ready = NULL;
	while (list) { /* oldest first */
		struct waiter *next = list->next;
		list->next = reversed;
		reversed = list;
		list = next;
	}
	return reversed;
}

static int add_waiter_locked(struct transfer *t, enum wait_kind kind, uint64_t offset,
			     uint64_t end, transfer_wait_fn fn, void *ctx, uint64_t *id)
{
	struct transfer_engine *engine = t->engine;
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->id = ++engine->next_id;
	w->kind = kind;
	w->offset = offset;
	w->end = end;
	w->fn = fn;
	w->ctx = ctx;
	w->transfer = t;
	t->refs++;
	w->next = t->waiters;
	t->waiters = w;
	w->hash_next = engine->by_id[id_bucket(w->id)];
	engine->by_id[id_bucket(w->id)] = w;
	if (id)
		*id = w->id;
	return 0;
}

/* Whether [offset, end) is on disk: whole pieces, or bytes a request in
 * flight has written. */
static bool range_present_locked(const struct transfer *t, uint64_t offset, uint64_t end)
{
	if (t->state == STATE_DONE)
		return true;
	if (t->restarting)
		return false;
	if (end > t->size)
		end = t->size;
	while (offset < end) {
		size_t piece = (size_t)(offset / t->piece_size);
		uint64_t upto = piece_end(t, piece) < end ? piece_end(t, piece) : end;
		bool ok = bitmap_get(&t->partial.state.pieces, piece);

		for (const struct call *c = t->calls; c && !ok; c = c->next)
			ok = c->checked && c->start <= offset && c->pos >= upto;
		if (!ok && t->landed && piece_start(t, piece) + t->landed[piece] >= upto)
			ok = true;
		if (!ok)
			return false;
		offset = upto;
	}
	return true;
}

/* Readies every waiter whose condition now holds. */
static void check_waiters_locked(struct transfer *t)
{
	struct waiter *w = t->waiters;

	/* A failure is told once its partial is dealt with (finish_fail_io):
	 * a reader that got EIO finds the cache as the failure leaves it. A
	 * stopping engine answers at once: its I/O is done at the join. */
	if (t->state == STATE_FAILED && t->fail_io && !t->engine->stopping)
		return;
	while (w) {
		struct waiter *next = w->next;
		if (t->state == STATE_FAILED)
			ready_waiter_locked(t->engine, w, t->error);
		else if (t->state == STATE_DONE ||
			 (w->kind == WAIT_RANGE && range_present_locked(t, w->offset, w->end))) {
			if (w->kind == WAIT_RANGE && t->state != STATE_DONE)
				t->streamed += w->end - w->offset;
			ready_waiter_locked(t->engine, w, 0);
		}
		w = next;
	}
}

/* ---- ending a transfer ---- */

static void abort_calls_locked(struct transfer *t)
{
	while (t->calls) {
		struct call *c = t->calls;
		t->calls = c->next;
		fetch_multi_remove(t->engine->multi, c->handle);
		for (size_t p = c->piece; p < t->npieces && piece_start(t, p) <= c->end; p++)
			t->inflight[p] = 0;
		t->engine->calls_inflight--;
		t->calls_inflight--;
		free(c->buf);
		free(c);
	}
}

static void fail_locked(struct transfer *t, int rc, bool drop_partial)
{
	if (t->state == STATE_FAILED || t->state == STATE_DONE)
		return;
	/* Its requests are the engine thread's to end (curl is not ours to
	 * touch from the hasher): it ends them at its next round, and does the
	 * partial's I/O (finish_fail_io) outside engine->lock. A shutdown
	 * keeps even an empty partial: nothing is lost by it. */
	t->fail_io = true;
	t->fail_drop = drop_partial;
	t->fail_keep = rc == -EINTR;
	wake_engine(t->engine);
	t->state = STATE_FAILED;
	t->error = rc;
	if (rc != -EINTR) /* a shutdown fails nothing: it resumes next time */
		metrics_add(t->engine->metrics, METRICS_DOWNLOADS_FAILED, 1);
	check_waiters_locked(t);
}

static void transfer_free(struct transfer *t)
{
	if (t->partial.writer && t->state != STATE_DONE && t->state != STATE_FAILED)
		blob_partial_save(t->engine->store, &t->partial);
	blob_partial_close(&t->partial);
	if (t->done_fd >= 0)
		close(t->done_fd);
	bitmap_free(&t->wanted);
	prefix_hash_free(t->hash);
	free(t->inflight);
	free(t->landed);
	free(t->tries);
	free(t->label);
	free(t->url);
	if (t->auth_header) /* a token lingers in freed memory otherwise */
		explicit_bzero(t->auth_header, strlen(t->auth_header));
	free(t->auth_header);
	free(t->auth_origin);
	free(t->resolved_url);
	free(t->restart_validator);
	for (size_t i = 0; i < t->nmirrors; i++)
		free(t->mirror_urls[i]);
	pthread_mutex_destroy(&t->io_lock);
	free(t);
}

/* Drops a reference; at zero the engine thread unlinks and frees it (its
 * requests belong to that thread's curl handle), or we do once stopped. */
static void put_locked(struct transfer *t)
{
	if (--t->refs > 0)
		return;
	t->released = true;
	if (t->engine->stopped) {
		struct transfer **p;
		for (p = &t->engine->transfers; *p && *p != t; p = &(*p)->next)
			;
		if (*p)
			*p = t->next;
		transfer_free(t);
		return;
	}
	wake_engine(t->engine);
}

static void snapshot_locked(const struct transfer *t, struct transfer_status *s);

/* Keeps what a transfer that ended did, for status (the oldest goes). */
static void remember_locked(struct transfer_engine *engine, const struct transfer *t)
{
	struct transfer_status *slot = &engine->recent[engine->recent_next];
	char *label;

	if (t->state != STATE_DONE && t->state != STATE_FAILED)
		return;
	if (!(label = strdup(t->label)))
		return;
	free(slot->label);
	snapshot_locked(t, slot);
	slot->label = label;
	slot->ended = true;
	engine->recent_next = (engine->recent_next + 1) % TRANSFER_RECENT;
}

/* Unlinks the transfers nobody uses into a list for free_reaped: freeing
 * saves a sidecar and closes files, which waits for no lock of ours. */
static struct transfer *reap_locked(struct transfer_engine *engine)
{
	struct transfer **p = &engine->transfers, *reaped = NULL;

	while (*p) {
		struct transfer *t = *p;
		if (!t->released || t->hashing) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		abort_calls_locked(t);
		remember_locked(engine, t);
		t->next = reaped;
		reaped = t;
	}
	return reaped;
}

/* Without engine->lock: no other thread can reach these any more. */
static void free_reaped(struct transfer *list)
{
	while (list) {
		struct transfer *next = list->next;
		transfer_free(list);
		list = next;
	}
}

/* ---- responses and bytes ---- */

/* Starts t over with validator: what it had counts no more at once; the
 * engine thread truncates the partial and saves the new sidecar outside
 * engine->lock (take_io_locked, do_io), then publishes it. */
static int mark_restart_locked(struct transfer *t, const char *validator)
{
	char *copy = strdup(validator);

	if (!copy)
		return -ENOMEM;
	free(t->restart_validator);
	t->restart_validator = copy;
	t->restart_due = true;
	t->restarting = true;
	memset(t->landed, 0, t->npieces * sizeof(*t->landed));
	memset(t->tries, 0, t->npieces);
	t->generation++; /* a hash of the old content is dropped */
	t->failures = 0;
	t->failing = false;
	wake_engine(t->engine);
	return 0;
}

/* The file on the server is not the one our pieces came from: start over. */
static void restart_locked(struct transfer *t, const char *validator)
{
	abort_calls_locked(t);
	if (++t->restarts > MAX_RESTARTS) {
		log_error("%s: the file keeps changing on the server: giving up", t->label);
		fail_locked(t, -EIO, true);
		return;
	}
	log_warn("%s: the file changed on the server (ETag %s, was %s): starting over", t->label,
		 validator[0] ? validator : "none", t->partial.state.validator);
	if (mark_restart_locked(t, validator) != 0)
		fail_locked(t, -ENOMEM, false);
}

/* A mirror's answer: the range asked of a blob of the size expected. Its
 * ETag is its own, not the hub's: the digest alone says the bytes are
 * right, so no validator is kept from it. */
static int check_mirror_response_locked(struct call *c)
{
	struct transfer *t = c->transfer;
	const struct fetch_response *resp = &c->resp;

	if (resp->status == 206 && resp->has_content_range && resp->range_start == c->start &&
	    resp->range_total == t->size) {
		if ((size_t)c->mirror == t->mirror)
			t->mirror_proven = true;
		return 0;
	}
	if (resp->status == 206)
		snprintf(c->resp.error, sizeof(c->resp.error),
			 "it sent bytes %" PRIu64 "- of %" PRIu64 ", not %" PRIu64 "- of %" PRIu64,
			 resp->range_start, resp->range_total, c->start, t->size);
	else
		snprintf(c->resp.error, sizeof(c->resp.error),
			 "HTTP %ld to a range request, not 206", resp->status);
	return -EPROTO;
}

/* Bytes from a mirror hashed wrong: every byte goes (which piece was
 * wrong is not known), and the hub alone serves the blob. */
static void refetch_from_hub_locked(struct transfer *t)
{
	t->refetch = false;
	if (t->state != STATE_RUNNING)
		return;
	abort_calls_locked(t);
	if (mark_restart_locked(t, "") != 0) {
		fail_locked(t, -ENOMEM, false);
		return;
	}
	t->mirror = t->nmirrors;
	t->mirror_proven = false;
	t->mirror_bytes = false;
	t->mirrors_used = 0;
}

/* Called at the first body bytes: is this the content we asked for? */
static int check_response_locked(struct call *c, const void *data, size_t len)
{
	struct transfer *t = c->transfer;
	const struct fetch_response *resp = &c->resp;
	const char *validator = t->partial.state.validator;
	const size_t lfs_len = sizeof(LFS_POINTER_PREFIX) - 1;

	if (c->start == 0 && len >= lfs_len && memcmp(data, LFS_POINTER_PREFIX, lfs_len) == 0 &&
	    (resp->status == 200 || resp->range_total != t->size)) {
		snprintf(c->resp.error, sizeof(c->resp.error),
			 "the server sent a Git LFS pointer, not the file");
		return -EPROTO;
	}
	if (c->mirror >= 0)
		return check_mirror_response_locked(c);
	if (strong_validator(validator) && resp->etag[0] && strcmp(resp->etag, validator) != 0)
		return -ESTALE; /* changed: If-Range gave us the new file */
	if (resp->status == 206) {
		if (!resp->has_content_range || resp->range_start != c->start ||
		    resp->range_total != t->size) {
			snprintf(c->resp.error, sizeof(c->resp.error),
				 "the server sent bytes %" PRIu64 "-%" PRIu64 " of %" PRIu64
				 ", not %" PRIu64 "- of %" PRIu64,
				 resp->range_start, resp->range_end, resp->range_total, c->start,
				 t->size);
			return -EPROTO;
		}
	} else if (resp->status == 200) {
		/* A whole body to a Range request: the file changed (If-Range),
		 * or the server ignores ranges. */
		if (strong_validator(validator) && strcmp(resp->etag, validator) != 0)
			return -ESTALE;
		if (!t->no_ranges) {
			log_info("%s: the server ignores ranges: one connection", t->label);
			t->no_ranges = true;
			t->max_calls = 1;
		}
		if (c->start != 0)
			return -ENOTSUP; /* asked again from 0 */
		c->end = t->size - 1;
	}
	if (!validator[0] && resp->etag[0]) {
		char *copy = strdup(resp->etag);
		if (copy) {
			free(t->partial.state.validator);
			t->partial.state.validator = copy;
		}
	}
	if (c->to_hub && resp->final_url[0]) {
		free(t->resolved_url);
		t->resolved_url = strdup(resp->final_url);
	}
	return 0;
}

/* Marks the pieces the call has now written whole. */
static void mark_pieces_locked(struct call *c)
{
	struct transfer *t = c->transfer;

	while (c->piece < t->npieces && piece_end(t, c->piece) <= c->pos &&
	       piece_start(t, c->piece) <= c->end) {
		bitmap_set(&t->partial.state.pieces, c->piece);
		t->inflight[c->piece] = 0;
		t->landed[c->piece] = piece_end(t, c->piece) - piece_start(t, c->piece);
		c->piece++;
	}
	if (c->piece < t->npieces && c->pos > piece_start(t, c->piece))
		t->landed[c->piece] = c->pos - piece_start(t, c->piece);
}

/* Writes what a call has buffered; engine thread, without the lock. */
static int flush_call(struct call *c)
{
	struct transfer *t = c->transfer;
	ssize_t n;
	bool live;

	pthread_mutex_lock(&t->engine->lock);
	live = t->state == STATE_RUNNING;
	pthread_mutex_unlock(&t->engine->lock);
	if (!live) { /* failed: the partial may be another transfer's now */
		c->buffered = 0;
		return 0;
	}
	n = full_io_pwrite(t->partial.fd, c->buf, c->buffered, (off_t)c->pos);
	if (n < 0)
		return (int)n;
	/* Writeback starts now, so the fsync at the end has little left. */
	sync_file_range(t->partial.fd, (off_t)c->pos, (off_t)c->buffered, SYNC_FILE_RANGE_WRITE);
	pthread_mutex_lock(&t->engine->lock);
	size_t prefix_before = bitmap_prefix(&t->partial.state.pieces);
	c->pos += c->buffered;
	t->fetched += c->buffered;
	enum metrics_from from = c->mirror >= 0      ? METRICS_FROM_MIRROR
				 : c->resp.via_proxy ? METRICS_FROM_PROXY
						     : METRICS_FROM_HUB;
	t->from[from] += c->buffered;
	t->mirror_bytes |= from == METRICS_FROM_MIRROR;
	if (c->mirror >= 0)
		t->mirrors_used |= 1u << c->mirror;
	metrics_bytes_from(t->engine->metrics, from, c->buffered);
	c->buffered = 0;
	mark_pieces_locked(c);
	if (bitmap_prefix(&t->partial.state.pieces) != prefix_before)
		pthread_cond_signal(&t->engine->hash_cond);
	pthread_mutex_unlock(&t->engine->lock);
	return 0;
}

static int call_write(void *ctx, const void *data, size_t len)
{
	struct call *c = ctx;
	struct transfer *t = c->transfer;
	int rc;

	if (!c->checked) {
		pthread_mutex_lock(&t->engine->lock);
		rc = t->state == STATE_RUNNING ? check_response_locked(c, data, len) : -ECANCELED;
		c->checked = rc == 0;
		pthread_mutex_unlock(&t->engine->lock);
		if (rc)
			return rc;
	}
	if (len > c->end + 1 - (c->pos + c->buffered)) {
		snprintf(c->resp.error, sizeof(c->resp.error), "the server sent more than asked");
		return -EPROTO;
	}
	while (len > 0) {
		size_t n = CALL_BUFFER_BYTES - c->buffered;
		n = n < len ? n : len;
		memcpy(c->buf + c->buffered, data, n);
		c->buffered += n;
		data = (const char *)data + n;
		len -= n;
		if (c->buffered == CALL_BUFFER_BYTES && (rc = flush_call(c)) != 0) {
			/* The disk's failure, not the network's: its log line
			 * says which file could not be written. */
			snprintf(c->resp.error, sizeof(c->resp.error), "cannot write %s: %s",
				 t->partial.rel, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Seconds left of the retry_time budget of t's current failures. */
static double budget_left_locked(const struct transfer *t)
{
	return (double)t->engine->options.retry_seconds -
	       (t->failing ? seconds_since(&t->failing_since) : 0.0);
}

/* Sets when t may ask again; false (and a log line) when the wait asked
 * for (Retry-After) would end past the retry_time budget: give up now. */
static bool backoff_locked(struct transfer *t, const struct fetch_response *resp, const char *why,
			   unsigned tries)
{
	const double left = budget_left_locked(t);
	unsigned char r;
	double ms;

	if (resp->retry_after >= 0) {
		if ((double)resp->retry_after > left) {
			log_error("%s: %s: %s; the server asks to wait %ld s, past the %ld s "
				  "retry_time budget (%.0f s left): giving up",
				  t->label, resp->url_for_log, why, resp->retry_after,
				  t->engine->options.retry_seconds, left > 0 ? left : 0.0);
			return false;
		}
		ms = 1e3 * (double)resp->retry_after;
	} else {
		ms = BACKOFF_BASE_MS;
		for (unsigned i = 1; i < t->failures && ms < BACKOFF_CAP_MS; i++)
			ms *= 2;
		if (ms > BACKOFF_CAP_MS)
			ms = BACKOFF_CAP_MS;
		/* Equal jitter: half fixed, half random, so many clients that
		 * failed together do not return together. */
		if (getrandom(&r, 1, 0) != 1)
			r = 128;
		ms = ms / 2 + ms / 2 * (double)r / 255.0;
	}
	if (ms > 1e3 * left)
		ms = left > 0 ? 1e3 * left : 0;
	after_ms(&t->not_before, ms);
	/* A rate limit names itself (RateLimit: "resolvers";r=0;t=60). */
	log_warn("%s: %s: %s%s%s%s; retrying in %.1f s (try %u without progress; "
		 "%.0f s left of retry_time)",
		 t->label, resp->url_for_log, why, resp->ratelimit[0] ? " (RateLimit: " : "",
		 resp->ratelimit, resp->ratelimit[0] ? ")" : "", ms / 1e3, tries + 1, left);
	return true;
}

/* A failed request: counts it (once per round of requests that failed
 * together, and per piece only when it moved no byte), and whether the
 * piece may be tried again: the failures since the last progress within
 * retry_time, which is what gives up by default (a count of fast failures
 * gives up on a blip of a few seconds), and its tries in a row without
 * progress within retries, a bound a user may lower. */
static bool count_failure_locked(struct transfer *t, const struct call *c, unsigned *tries)
{
	/* Progress is more than a stalled connection moves before it is
	 * given up: a trickle is no progress. */
	const long stall = t->engine->options.stall_seconds > 0 ? t->engine->options.stall_seconds
								: TRANSFER_STALL_SECONDS_DEFAULT;
	const bool moved = c->pos - c->start >= (uint64_t)(FETCH_STALL_BYTES_PER_SECOND * stall);
	size_t piece = c->piece < t->npieces ? c->piece : t->npieces - 1;

	if (moved)
		t->failing = false; /* the retry_time budget starts afresh */
	if (!t->failing) {
		t->failing = true;
		now_mono(&t->failing_since);
	}
	if (moved) {
		t->tries[piece] = 0;
		t->failures = 0;
	} else if (t->tries[piece] < 255) {
		t->tries[piece]++;
	}
	/* A request started before the last round failed belongs to it. */
	if (!moved && (t->failures == 0 || c->started.tv_sec > t->failed_at.tv_sec ||
		       (c->started.tv_sec == t->failed_at.tv_sec &&
			c->started.tv_nsec > t->failed_at.tv_nsec))) {
		t->failures++;
		now_mono(&t->failed_at);
	}
	*tries = t->tries[piece];
	return t->tries[piece] <= t->engine->options.retries && budget_left_locked(t) > 0;
}

/* The first mirror from t->mirror on that is not taken for down. */
static void next_live_mirror_locked(struct transfer *t)
{
	while (t->mirror < t->nmirrors && ms_until(&t->engine->mirror_down_until[t->mirror]) > 0)
		t->mirror++;
}

/* The mirror asked now failed this blob: the next one, or the hub, gets
 * it. Pieces it served stay: the digest judges them at the end. When it
 * could not be reached at all, no transfer asks it for a while. */
static void skip_mirror_locked(struct transfer *t, const char *url_for_log, const char *why,
			       bool unreachable)
{
	t->mirror++;
	next_live_mirror_locked(t);
	log_warn("%s: mirror %s: %s; %s%s", t->label, url_for_log, why,
		 t->mirror < t->nmirrors ? "trying the next mirror" : "fetching it from the hub",
		 unreachable ? " (and not asking that mirror for 60 s)" : "");
	t->mirror_proven = false;
	t->failures = 0;
}

static void call_done(void *done_ctx, void *call_ctx, int rc)
{
	struct transfer_engine *engine = done_ctx;
	struct call *c = call_ctx;
	struct transfer *t = c->transfer;
	int flushed = c->buffered ? flush_call(c) : 0;
	unsigned tries = 0;
	bool retry = false;

	if (rc == 0 && flushed)
		rc = flushed;
	pthread_mutex_lock(&engine->lock);
	for (struct call **p = &t->calls; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	for (size_t p = c->piece; p < t->npieces && piece_start(t, p) <= c->end; p++)
		t->inflight[p] = 0;
	engine->calls_inflight--;
	t->calls_inflight--;
	if (rc == 0 && c->pos != c->end + 1 && c->resp.status == 206 &&
	    c->resp.has_content_range && c->resp.range_end < c->end &&
	    c->pos == c->resp.range_end + 1) {
		/* A legal 206 of less than asked: the rest is asked next (from
		 * landed), with no failure counted. */
	} else if (rc == 0 && c->pos != c->end + 1) {
		rc = -ECONNRESET;
		snprintf(c->resp.error, sizeof(c->resp.error),
			 "the response ended after %" PRIu64 " of %" PRIu64 " bytes",
			 c->pos - c->start, c->end + 1 - c->start);
	}
	if (t->state != STATE_RUNNING || t->released) {
		/* failed or restarted meanwhile: nothing to add */
	} else if (rc == 0) {
		t->failures = 0;
		t->failing = false;
		if (c->piece < t->npieces)
			t->tries[c->piece] = 0;
		/* With every piece here the hasher may have completed the blob
		 * and removed its state already (it does so outside the lock):
		 * saving then would leave a stale .state beside the blob. */
		if (!bitmap_full(&t->partial.state.pieces))
			t->save_due = true; /* by the engine thread, outside the lock */
	} else if (c->mirror >= 0) {
		/* Skipped once, at the first of its requests to fail: the
		 * others end as they may. */
		bool unreachable = (rc == -ECONNRESET || rc == -ETIMEDOUT) && c->resp.status == 0;
		if (unreachable)
			after_ms(&engine->mirror_down_until[c->mirror], MIRROR_DOWN_MS);
		if ((size_t)c->mirror == t->mirror)
			skip_mirror_locked(t, c->resp.url_for_log,
					   c->resp.error[0] ? c->resp.error : strerror(-rc),
					   unreachable);
	} else if (rc == -ESTALE) {
		restart_locked(t, c->resp.etag);
	} else if (rc == -ENOTSUP) {
		/* Asked again from the start, alone: see check_response_locked. */
	} else if ((rc == -EACCES || rc == -ENOENT) && !c->to_hub &&
		   count_failure_locked(t, c, &tries)) {
		/* A signed CDN URL expires: ask the hub again (unless a request
		 * refused alongside this one already did). */
		if (t->resolved_url) {
			log_info("%s: %s: %s: resolving the file's URL again", t->label,
				 c->resp.url_for_log, c->resp.error);
			free(t->resolved_url);
			t->resolved_url = NULL;
		}
		metrics_add(engine->metrics, METRICS_RETRIES, 1);
	} else if (fetch_error_retryable(rc) && (retry = count_failure_locked(t, c, &tries)) &&
		   backoff_locked(t, &c->resp, c->resp.error, tries)) {
		metrics_add(engine->metrics, METRICS_RETRIES, 1);
	} else {
		/* Tries exhausted, or an error no try mends: EIO but for what
		 * tools know better (no such file, no access, a full disk). */
		int reader_rc = rc == -ENOENT || rc == -EACCES || rc == -ENOSPC || rc == -EDQUOT
					? rc
					: -EIO;
		if (fetch_error_retryable(rc) && !retry && budget_left_locked(t) <= 0)
			log_error("%s: %s: %s; giving up: no progress for the %ld s of "
				  "retry_time (%u tries)",
				  t->label, c->resp.url_for_log, c->resp.error,
				  engine->options.retry_seconds, tries);
		else if (fetch_error_retryable(rc) && !retry)
			log_error("%s: %s: %s; giving up after %u tries without progress "
				  "(retries=%u; %.0f s of retry_time left)",
				  t->label, c->resp.url_for_log, c->resp.error, tries,
				  engine->options.retries, budget_left_locked(t));
		else if (fetch_error_retryable(rc))
			; /* backoff_locked said why */
		else
			log_error("%s: %s: %s", t->label, c->resp.url_for_log,
				  c->resp.error[0] ? c->resp.error : strerror(-rc));
		fail_locked(t, reader_rc, rc == -ENOSPC || rc == -EDQUOT);
	}
	check_waiters_locked(t);
	pthread_mutex_unlock(&engine->lock);
	free(c->buf);
	free(c);
}

/* ---- scheduling ---- */

static bool piece_free(const struct transfer *t, size_t piece)
{
	return piece < t->npieces && !t->inflight[piece] &&
	       !bitmap_get(&t->partial.state.pieces, piece);
}

/* The next piece to ask for: what a reader waits for first, then the
 * whole file in order (default mode) or what readers hinted at. */
static bool pick_piece(const struct transfer *t, size_t *out)
{
	for (const struct waiter *w = t->waiters; w; w = w->next) {
		if (w->kind != WAIT_RANGE)
			continue;
		/* Every piece the range touches: from its first byte's piece
		 * (stepping from an offset inside a piece would skip the
		 * last one a short range ends in). */
		uint64_t end = w->end < t->size ? w->end : t->size;
		for (uint64_t off = w->offset - w->offset % t->piece_size; off < end;
		     off += t->piece_size) {
			size_t piece = (size_t)(off / t->piece_size);
			if (piece_free(t, piece)) {
				*out = piece;
				return true;
			}
		}
	}
	for (size_t p = bitmap_next_clear(&t->partial.state.pieces, 0); p < t->npieces;
	     p = bitmap_next_clear(&t->partial.state.pieces, p + 1)) {
		if (piece_free(t, p) && (t->want_all || bitmap_get(&t->wanted, p))) {
			*out = p;
			return true;
		}
	}
	return false;
}

static int start_call_locked(struct transfer *t, size_t piece)
{
	struct transfer_engine *engine = t->engine;
	const char *validator = t->partial.state.validator;
	struct fetch_request req = { 0 };
	struct call *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c || !(c->buf = malloc(CALL_BUFFER_BYTES))) {
		free(c);
		return -ENOMEM;
	}
	c->transfer = t;
	c->piece = piece;
	c->start = t->no_ranges ? 0 : piece_start(t, piece) + t->landed[piece];
	c->end = t->no_ranges ? t->size - 1 : piece_end(t, piece) - 1;
	if (t->no_ranges)
		c->piece = piece = 0;
	c->pos = c->start;
	now_mono(&c->started);
	c->mirror = t->mirror < t->nmirrors ? (int)t->mirror : -1;
	req.has_range = !t->no_ranges;
	req.range_start = c->start;
	req.range_end = c->end;
	if (c->mirror >= 0) {
		/* No credential and no validator: a mirror is not the hub, and
		 * the digest names what it must send. */
		req.url = t->mirror_urls[c->mirror];
	} else {
		c->to_hub = t->resolved_url == NULL;
		req.url = c->to_hub ? t->url : t->resolved_url;
		req.if_range = strong_validator(validator) ? validator : NULL;
		/* On every request: fetch sends it only where the URL is on its
		 * origin (the hub's URL, or a resolved URL the hub serves). */
		req.auth_header = t->auth_header;
		req.auth_origin = t->auth_origin;
	}
	req.stall_seconds = engine->options.stall_seconds;
	rc = fetch_multi_add(engine->multi, &req, call_write, c, &c->resp, &c->handle);
	if (rc) {
		free(c->buf);
		free(c);
		return rc;
	}
	t->inflight[piece] = 1;
	c->next = t->calls;
	t->calls = c;
	t->calls_inflight++;
	engine->calls_inflight++;
	return 0;
}

/* Whether a reader waits on t for a byte range (a read in stream mode):
 * its pieces go before any read-ahead. */
static bool range_waiter_locked(const struct transfer *t)
{
	for (const struct waiter *w = t->waiters; w; w = w->next)
		if (w->kind == WAIT_RANGE)
			return true;
	return false;
}

/* Starts a request of t if it may have one now: true when it did. */
static bool schedule_one_locked(struct transfer *t, double *wait_ms)
{
	size_t piece;
	double ms;

	if (t->state != STATE_RUNNING || t->released || t->restarting ||
	    t->calls_inflight >= t->max_calls)
		return false;
	if ((ms = ms_until(&t->not_before)) > 0) {
		*wait_ms = ms < *wait_ms ? ms : *wait_ms;
		return false;
	}
	/* One request first: it learns where the hub redirects, or whether
	 * the mirror has the blob. */
	if (t->calls_inflight > 0 && (t->mirror < t->nmirrors ? !t->mirror_proven : !t->resolved_url))
		return false;
	if (!pick_piece(t, &piece))
		return false;
	if (start_call_locked(t, piece) != 0) {
		fail_locked(t, -ENOMEM, false);
		return false;
	}
	return true;
}

/* Starts what may start, within calls_max across every transfer (the
 * memory_max bound); returns ms until something else may. Fair: a request
 * per blob per pass, each pass starting one blob further on, so no blob
 * takes every slot while others wait; blobs a reader waits on for a range
 * have their pass first. */
static double schedule_locked(struct transfer_engine *engine)
{
	double wait_ms = 1000;
	size_t count = 0;

	for (struct transfer *t = engine->transfers; t; t = t->next)
		count++;
	for (int urgent = 1; urgent >= 0 && count; urgent--) {
		bool progress = true;

		while (progress && engine->calls_inflight < engine->calls_max) {
			const size_t at = engine->turn % count;
			struct transfer *t = engine->transfers;

			progress = false;
			for (size_t skip = at; skip > 0; skip--)
				t = t->next;
			for (size_t i = 0; i < count && engine->calls_inflight < engine->calls_max;
			     i++, t = t->next ? t->next : engine->transfers) {
				if (urgent && !range_waiter_locked(t))
					continue;
				if (schedule_one_locked(t, &wait_ms)) {
					progress = true;
					/* The next pass begins after it. */
					engine->turn = (at + i + 1) % count;
				}
			}
		}
	}
	return wait_ms;
}

/* Followers watch the writer's sidecar; the complete blob ends the wait. */
static double follow_locked(struct transfer_engine *engine)
{
	double wait_ms = 1000;

	for (struct transfer *t = engine->transfers; t; t = t->next) {
		int fd;

		if (t->state != STATE_FOLLOWING || t->released)
			continue;
		if (ms_until(&t->next_follow) > 0) {
			wait_ms = FOLLOW_INTERVAL_MS;
			continue;
		}
		after_ms(&t->next_follow, FOLLOW_INTERVAL_MS);
		wait_ms = FOLLOW_INTERVAL_MS;
		if (blob_open(engine->store, &t->digest, t->size, &fd) == 0) {
			t->done_fd = fd;
			t->state = STATE_DONE;
			metrics_file_from(engine->metrics, METRICS_FROM_SHARED);
			log_info("%s: completed by another process", t->label);
		} else if (blob_partial_follow(engine->store, &t->partial)) {
			t->state = STATE_RUNNING;
			memset(t->landed, 0, t->npieces * sizeof(*t->landed));
			for (size_t p = 0; p < t->npieces; p++)
				if (bitmap_get(&t->partial.state.pieces, p))
					t->landed[p] = piece_end(t, p) - piece_start(t, p);
			t->generation++;
			pthread_cond_signal(&engine->hash_cond);
		}
		check_waiters_locked(t);
	}
	return wait_ms;
}

static void run_deferred(struct deferred *list)
{
	while (list) {
		struct deferred *next = list->next;
		list->fn(list->ctx);
		free(list);
		list = next;
	}
}

/* Takes a reference on each transfer whose sidecar is due, in a list. */
static struct transfer *take_saves_locked(struct transfer_engine *engine)
{
	struct transfer *list = NULL;

	for (struct transfer *t = engine->transfers; t; t = t->next) {
		if (!t->save_due || t->state != STATE_RUNNING || t->released || t->restarting)
			continue;
		t->save_due = false;
		t->refs++;
		t->save_next = list;
		list = t;
	}
	return list;
}

/* Saves the sidecars of the list, without engine->lock: pieces a crash
 * would otherwise fetch again. A transfer that ended meanwhile has
 * released (or completed) its partial, and is skipped. */
static void save_sidecars(struct transfer_engine *engine, struct transfer *list)
{
	for (struct transfer *t = list; t; t = t->save_next) {
		pthread_mutex_lock(&t->io_lock);
		if (t->partial.writer)
			blob_partial_save(engine->store, &t->partial);
		pthread_mutex_unlock(&t->io_lock);
	}
	pthread_mutex_lock(&engine->lock);
	while (list) {
		struct transfer *next = list->save_next;
		put_locked(list);
		list = next;
	}
	pthread_mutex_unlock(&engine->lock);
}

/* Takes a reference on each transfer whose partial has I/O due (a start
 * over, a failure's discard or last save), in a list for do_io. */
static struct transfer *take_io_locked(struct transfer_engine *engine)
{
	struct transfer *list = NULL;

	for (struct transfer *t = engine->transfers; t; t = t->next) {
		t->io_restart = t->restart_due;
		t->io_fail = t->fail_io;
		if (!t->io_restart && !t->io_fail)
			continue;
		t->refs++;
		t->io_next = list;
		list = t;
	}
	return list;
}

/* A failed transfer's partial: discarded, or its sidecar saved for a
 * resume; then its write lock let go, so that a new transfer can write.
 * Under t->io_lock, on the engine thread (which alone writes
 * t->partial.state), without engine->lock. */
static void finish_fail_io(struct transfer_engine *engine, struct transfer *t)
{
	/* Nothing received is nothing to resume. */
	bool drop = t->fail_drop || (!t->fail_keep && t->partial.state.pieces.count == 0);

	if (drop)
		blob_partial_discard(engine->store, &t->partial);
	else if (t->partial.writer)
		blob_partial_save(engine->store, &t->partial);
	blob_partial_release(&t->partial);
}

/* Does the partial I/O of take_io_locked's list without engine->lock, then
 * publishes it: a start over counts from now on (or fails the transfer),
 * and a new transfer of a failed blob may start. */
static void do_io(struct transfer_engine *engine, struct transfer *list)
{
	for (struct transfer *t = list; t; t = t->io_next) {
		pthread_mutex_lock(&t->io_lock);
		t->io_rc = 0;
		if (t->io_restart && t->partial.writer)
			t->io_rc = blob_partial_restart(engine->store, &t->partial,
							t->restart_validator);
		if (t->io_fail)
			finish_fail_io(engine, t);
		pthread_mutex_unlock(&t->io_lock);
	}
	pthread_mutex_lock(&engine->lock);
	while (list) {
		struct transfer *t = list, *next = list->io_next;

		if (t->io_restart) {
			t->restart_due = false;
			t->restarting = false;
			if (t->io_rc) {
				log_error("%s: cannot start %s over: %s", t->label, t->partial.rel,
					  strerror(-t->io_rc));
				fail_locked(t, -EIO, true);
			}
			check_waiters_locked(t);
		}
		if (t->io_fail) {
			t->fail_io = false; /* fail_locked sets it once: none came since */
			pthread_cond_broadcast(&engine->io_cond);
			check_waiters_locked(t); /* the failure, told now */
		}
		put_locked(t);
		list = next;
	}
	pthread_mutex_unlock(&engine->lock);
}

static void *engine_main(void *arg)
{
	struct transfer_engine *engine = arg;

	pthread_mutex_lock(&engine->lock);
	while (!engine->stopping) {
		for (struct transfer *t = engine->transfers; t; t = t->next) {
			if (t->state != STATE_RUNNING && t->calls)
				abort_calls_locked(t);
			if (t->refetch && !t->hashing)
				refetch_from_hub_locked(t);
		}
		double wait_ms = schedule_locked(engine), follow_ms = follow_locked(engine);
		struct deferred *deferred = engine->deferred;
		struct transfer *saves, *reaped, *io;
		struct waiter *ready;

		engine->deferred = NULL;
		reaped = reap_locked(engine);
		ready = take_ready_locked(engine);
		saves = take_saves_locked(engine);
		io = take_io_locked(engine);
		pthread_mutex_unlock(&engine->lock);
		free_reaped(reaped);
		/* Saves before a failure's discard (both are this thread's), and
		 * both before callbacks, which may open the blob again. */
		if (saves)
			save_sidecars(engine, saves);
		if (io)
			do_io(engine, io);
		fire(engine, ready);
		run_deferred(deferred);
		wait_ms = follow_ms < wait_ms ? follow_ms : wait_ms;
		fetch_multi_run(engine->multi, wait_ms < 1 ? 1 : (int)wait_ms, call_done, engine);
		pthread_mutex_lock(&engine->lock);
		/* What arrived this round reaches the disk, and its readers. */
		for (struct transfer *t = engine->transfers; t; t = t->next) {
			for (struct call *c = t->calls; c && t->state == STATE_RUNNING; c = c->next) {
				if (c->buffered) {
					pthread_mutex_unlock(&engine->lock);
					int rc = flush_call(c);
					pthread_mutex_lock(&engine->lock);
					if (rc) {
						log_error("%s: cannot write %s: %s", t->label,
							  t->partial.rel, strerror(-rc));
						fail_locked(t, rc == -ENOSPC || rc == -EDQUOT ? rc : -EIO,
							    true);
						break;
					}
				}
			}
			check_waiters_locked(t);
		}
	}
	/* Stopping: every request ends now, its progress saved. */
	for (struct transfer *t = engine->transfers; t; t = t->next) {
		for (struct call *c = t->calls; c; c = c->next) {
			if (c->buffered) {
				pthread_mutex_unlock(&engine->lock);
				flush_call(c);
				pthread_mutex_lock(&engine->lock);
			}
		}
		if (t->state == STATE_RUNNING || t->state == STATE_FOLLOWING)
			fail_locked(t, -EINTR, false);
		abort_calls_locked(t);
	}
	for (size_t b = 0; b < WAITER_BUCKETS; b++)
		while (engine->by_id[b])
			ready_waiter_locked(engine, engine->by_id[b], -EINTR);
	struct deferred *deferred = engine->deferred;
	engine->deferred = NULL;
	struct waiter *ready = take_ready_locked(engine);
	struct transfer *io = take_io_locked(engine);
	pthread_mutex_unlock(&engine->lock);
	if (io)
		do_io(engine, io);
	fire(engine, ready);
	run_deferred(deferred);
	return NULL;
}

/* Where most of t's bytes came from; before the first byte, where they
 * are asked for (a mirror, while one is asked), not the hub by default. */
static enum metrics_from source_of_locked(const struct transfer *t)
{
	enum metrics_from most = METRICS_FROM_HUB;

	if (t->was_there)
		return METRICS_FROM_LOCAL;
	for (enum metrics_from f = METRICS_FROM_HUB; f < METRICS_FROM_COUNT; f++)
		if (t->from[f] > t->from[most])
			most = f;
	if (t->from[most] == 0 && t->shared)
		return METRICS_FROM_SHARED;
	if (t->from[most] == 0 && t->mirror < t->nmirrors)
		return METRICS_FROM_MIRROR;
	return most;
}

/* ---- hashing ---- */

/* The digest of a complete prefix: keep the blob, or drop it. */
static void finish_hash(struct transfer *t, struct prefix_hash *hash)
{
	struct transfer_engine *engine = t->engine;
	char actual[DIGEST_HEX_MAX], expected[DIGEST_HEX_MAX + 32];
	int rc = prefix_hash_final(hash, actual);

	digest_spec_format(&t->digest, expected, sizeof(expected));
	if (rc)
		log_error("%s: cannot finish its %s: %s", t->label,
			  digest_algo_name(t->digest.algo), strerror(-rc));
	else if (!digest_spec_matches(&t->digest, actual)) {
		metrics_add(engine->metrics, METRICS_DIGEST_FAILURES, 1);
		pthread_mutex_lock(&engine->lock);
		uint64_t streamed = t->streamed;
		if (t->mirror_bytes) {
			/* A mirror need not be trusted: its bytes go, and the hub
			 * serves the blob (the engine thread starts it over). */
			char used[1024] = "", base[512];
			for (size_t i = 0; i < t->nmirrors; i++) {
				if (!(t->mirrors_used & (1u << i)))
					continue;
				/* Never its user:password@ in a log. */
				fetch_url_for_log(engine->options.mirrors->bases[i], base,
						  sizeof(base));
				snprintf(used + strlen(used), sizeof(used) - strlen(used),
					 "%s%s", used[0] ? ", " : "", base);
			}
			log_warn("%s: %s mismatch in bytes from a mirror (%s): expected %s, got %s; "
				 "fetching it from the hub%s",
				 t->label, digest_algo_name(t->digest.algo), used, expected, actual,
				 streamed ? " (bytes already read in stream mode were wrong)" : "");
			t->refetch = true;
			wake_engine(engine);
			pthread_mutex_unlock(&engine->lock);
			return;
		}
		pthread_mutex_unlock(&engine->lock);
		if (streamed)
			log_error("%s: %s mismatch: expected %s, got %s; %" PRIu64
				  " bytes already read from it in stream mode were wrong",
				  t->label, digest_algo_name(t->digest.algo), expected, actual,
				  streamed);
		else
			log_error("%s: %s mismatch: expected %s, got %s", t->label,
				  digest_algo_name(t->digest.algo), expected, actual);
		rc = -EIO;
	} else if (rc == 0) {
		pthread_mutex_lock(&t->io_lock);
		rc = blob_partial_complete(engine->store, &t->partial);
		pthread_mutex_unlock(&t->io_lock);
		if (rc)
			log_error("%s: cannot install %s: %s", t->label, t->partial.rel,
				  strerror(-rc));
	}
	pthread_mutex_lock(&engine->lock);
	if (rc == 0) {
		const char *from = metrics_from_name(source_of_locked(t));

		t->state = STATE_DONE;
		metrics_add(engine->metrics, METRICS_DOWNLOADS_COMPLETED, 1);
		metrics_file_from(engine->metrics, source_of_locked(t));
		if (digest_spec_verifies(&t->digest))
			log_info("%s: %" PRIu64 " bytes, %" PRIu64 " fetched from the %s in %.3f s, "
				 "%s verified",
				 t->label, t->size, t->fetched, from, seconds_since(&t->started),
				 expected);
		else
			log_warn("%s: %" PRIu64 " bytes, %" PRIu64 " fetched from the %s in %.3f s, "
				 "NOT verified (no digest published); it is %s:%s",
				 t->label, t->size, t->fetched, from, seconds_since(&t->started),
				 digest_algo_name(t->digest.algo), actual);
		check_waiters_locked(t);
	} else {
		fail_locked(t, rc == -ENOSPC ? rc : -EIO, true);
	}
	struct waiter *ready = take_ready_locked(engine);
	pthread_mutex_unlock(&engine->lock);
	fire(engine, ready);
}

/* Whether the hasher has something to do for t: bytes past its position,
 * or a whole blob to finish. */
static bool hash_due_locked(const struct transfer *t)
{
	uint64_t hashed, prefix;

	if (t->state != STATE_RUNNING || t->hashing || t->released || t->refetch || t->restarting)
		return false;
	hashed = t->hash && t->hash_generation == t->generation ? prefix_hash_position(t->hash) : 0;
	prefix = (uint64_t)bitmap_prefix(&t->partial.state.pieces) * t->piece_size;
	if (prefix > t->size)
		prefix = t->size;
	return prefix > hashed || (prefix == t->size && bitmap_full(&t->partial.state.pieces));
}

static void *hash_main(void *arg)
{
	struct transfer_engine *engine = arg;

	pthread_mutex_lock(&engine->lock);
	while (!engine->stopping) {
		struct transfer *t;
		struct bitmap present;
		uint64_t generation;
		bool done;
		int rc;

		for (t = engine->transfers; t && !hash_due_locked(t); t = t->next)
			;
		if (!t) {
			pthread_cond_wait(&engine->hash_cond, &engine->lock);
			continue;
		}
		if (!t->hash || t->hash_generation != t->generation) {
			/* New, or the content started over. */
			prefix_hash_free(t->hash);
			t->hash = NULL;
			t->hash_generation = t->generation;
			rc = prefix_hash_new(&t->hash, t->digest.algo, t->size, t->piece_size);
			if (rc) {
				fail_locked(t, -ENOMEM, false);
				continue;
			}
		}
		if (bitmap_copy(&present, &t->partial.state.pieces) != 0) {
			fail_locked(t, -ENOMEM, false);
			continue;
		}
		t->hashing = true;
		generation = t->generation;
		pthread_mutex_unlock(&engine->lock);

		rc = prefix_hash_advance(t->hash, t->partial.fd, &present, HASH_SLICE_BYTES);
		bitmap_free(&present);
		done = rc == 0 && prefix_hash_done(t->hash);

		pthread_mutex_lock(&engine->lock);
		if (rc && generation != t->generation) {
			/* The content started over while we read (the partial file
			 * was truncated under us): the next round hashes afresh. */
		} else if (rc) {
			log_error("%s: cannot read back %s: %s", t->label, t->partial.rel, strerror(-rc));
			fail_locked(t, -EIO, false);
		} else if (done && generation == t->generation && t->state == STATE_RUNNING &&
			   bitmap_full(&t->partial.state.pieces)) {
			pthread_mutex_unlock(&engine->lock);
			finish_hash(t, t->hash);
			pthread_mutex_lock(&engine->lock);
		}
		t->hashing = false;
		if (t->released)
			wake_engine(engine); /* it waited for us to reap it */
		struct waiter *ready = take_ready_locked(engine);
		if (ready) {
			pthread_mutex_unlock(&engine->lock);
			fire(engine, ready);
			pthread_mutex_lock(&engine->lock);
		}
	}
	pthread_mutex_unlock(&engine->lock);
	return NULL;
}

/* ---- the public side ---- */

/* What transfer_engine_new made, its threads ended (or never started). */
static void engine_destroy(struct transfer_engine *engine)
{
	fetch_multi_free(engine->multi);
	pthread_cond_destroy(&engine->hash_cond);
	pthread_cond_destroy(&engine->io_cond);
	pthread_mutex_destroy(&engine->lock);
	pthread_mutex_destroy(&engine->create_lock);
	free(engine);
}

int transfer_engine_new(struct transfer_engine **out, struct fetcher *fetcher,
			struct blob_store *store, const struct transfer_options *options)
{
	struct transfer_engine *engine = calloc(1, sizeof(*engine));
	int rc;

	*out = NULL;
	if (!engine)
		return -ENOMEM;
	engine->fetcher = fetcher;
	engine->store = store;
	engine->options = *options;
	if (engine->options.retry_seconds <= 0)
		engine->options.retry_seconds = TRANSFER_RETRY_SECONDS_DEFAULT;
	if (engine->options.memory_max == 0)
		engine->options.memory_max = TRANSFER_MEMORY_MAX_DEFAULT;
	engine->calls_max = engine->options.memory_max / TRANSFER_CALL_BYTES > UINT_MAX
				    ? UINT_MAX
				    : (unsigned)(engine->options.memory_max / TRANSFER_CALL_BYTES);
	if (engine->calls_max == 0)
		engine->calls_max = 1; /* at least one request, or nothing moves */
	pthread_mutex_init(&engine->create_lock, NULL);
	pthread_mutex_init(&engine->lock, NULL);
	pthread_cond_init(&engine->hash_cond, NULL);
	pthread_cond_init(&engine->io_cond, NULL);
	rc = fetch_multi_new(fetcher, &engine->multi);
	if (rc)
		goto fail;
	rc = -pthread_create(&engine->engine_thread, NULL, engine_main, engine);
	if (rc)
		goto fail;
	rc = -pthread_create(&engine->hash_thread, NULL, hash_main, engine);
	if (rc) {
		pthread_mutex_lock(&engine->lock);
		engine->stopping = true;
		pthread_mutex_unlock(&engine->lock);
		wake_engine(engine);
		pthread_join(engine->engine_thread, NULL);
		goto fail;
	}
	engine->threads_started = true;
	*out = engine;
	return 0;
fail:
	engine_destroy(engine);
	return rc;
}

void transfer_engine_set_metrics(struct transfer_engine *engine, struct metrics *metrics)
{
	engine->metrics = metrics;
}

void transfer_engine_shutdown(struct transfer_engine *engine)
{
	if (!engine || !engine->threads_started)
		return;
	pthread_mutex_lock(&engine->lock);
	engine->stopping = true;
	pthread_cond_broadcast(&engine->hash_cond);
	pthread_cond_broadcast(&engine->io_cond);
	pthread_mutex_unlock(&engine->lock);
	wake_engine(engine);
	pthread_join(engine->engine_thread, NULL);
	pthread_join(engine->hash_thread, NULL);
	pthread_mutex_lock(&engine->lock);
	struct transfer *io = take_io_locked(engine);
	pthread_mutex_unlock(&engine->lock);
	if (io) /* the hasher may have failed one after the engine thread ended */
		do_io(engine, io);
	pthread_mutex_lock(&engine->lock);
	engine->threads_started = false;
	engine->stopped = true;
	struct transfer *reaped = reap_locked(engine);
	pthread_mutex_unlock(&engine->lock);
	free_reaped(reaped);
}

void transfer_engine_free(struct transfer_engine *engine)
{
	if (!engine)
		return;
	transfer_engine_shutdown(engine);
	while (engine->transfers) { /* references nobody put: free them anyway */
		struct transfer *t = engine->transfers;
		engine->transfers = t->next;
		transfer_free(t);
	}
	for (size_t i = 0; i < TRANSFER_RECENT; i++)
		free(engine->recent[i].label);
	engine_destroy(engine);
}

void transfer_engine_set_limits(struct transfer_engine *engine,
				const struct transfer_options *options)
{
	/* create_lock: transfer_new reads connections under it alone. */
	pthread_mutex_lock(&engine->create_lock);
	pthread_mutex_lock(&engine->lock);
	engine->options.connections = options->connections;
	engine->options.retries = options->retries;
	engine->options.retry_seconds = options->retry_seconds > 0
						? options->retry_seconds
						: TRANSFER_RETRY_SECONDS_DEFAULT;
	engine->options.stall_seconds = options->stall_seconds;
	pthread_mutex_unlock(&engine->lock);
	pthread_mutex_unlock(&engine->create_lock);
}

int transfer_engine_defer(struct transfer_engine *engine, void (*fn)(void *ctx), void *ctx)
{
	struct deferred *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->ctx = ctx;
	pthread_mutex_lock(&engine->lock);
	if (engine->stopped) {
		pthread_mutex_unlock(&engine->lock);
		free(d);
		return -ECANCELED;
	}
	d->next = engine->deferred;
	engine->deferred = d;
	pthread_mutex_unlock(&engine->lock);
	wake_engine(engine);
	return 0;
}

/* Records in the sidecar the file the blob is fetched for, so omnihub
 * cache ls can put a partial with its model before the file has a name.
 * Only a writer writes it, before the transfer is in the engine's list (no
 * other thread sees t yet). Best effort: the bytes do not depend on it. */
static void record_path(struct transfer_engine *engine, struct transfer *t, const char *path)
{
	const char *had = t->partial.state.path;

	if (!path || (had && strcmp(had, path) == 0))
		goto out;
	if (sidecar_set_path(&t->partial.state, path) != 0 ||
	    blob_partial_save(engine->store, &t->partial) != 0)
		log_warn("%s: cannot record its file in %s: omnihub cache ls lists the partial "
			 "apart",
			 t->label, t->partial.state_rel);
out:
	return;
}

/* A new transfer, its partial blob opened: disk I/O, so without
 * engine->lock (under create_lock); not yet in the engine's list. */
static int transfer_new(struct transfer_engine *engine, const struct transfer_source *src,
			const char *label, struct transfer **out)
{
	struct transfer *t = calloc(1, sizeof(*t));
	char stored_url[4096];
	int rc = -ENOMEM;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->io_lock, NULL);
	t->engine = engine;
	t->done_fd = -1;
	t->partial.fd = -1;
	t->digest = src->digest;
	t->size = src->size;
	t->label = strdup(label);
	t->url = strdup(src->url);
	now_mono(&t->started);
	if (!t->label || !t->url)
		goto fail;
	if (src->auth_header && src->auth_origin) {
		t->auth_header = strdup(src->auth_header);
		t->auth_origin = strdup(src->auth_origin);
		if (!t->auth_header || !t->auth_origin)
			goto fail;
	}
	if (engine->options.mirrors && mirror_serves(&src->digest)) {
		const struct mirror_list *mirrors = engine->options.mirrors;
		for (; t->nmirrors < mirrors->count; t->nmirrors++) {
			rc = mirror_blob_url(mirrors->bases[t->nmirrors], &src->digest,
					     &t->mirror_urls[t->nmirrors]);
			if (rc)
				goto fail;
		}
	}
	/* The sidecar is world-readable: no credential of the URL goes in it. */
	rc = fetch_url_redact(src->url, NULL, stored_url, sizeof(stored_url));
	if (rc && rc != -EINVAL) { /* -EINVAL: stored_url has the log's form */
		log_error("%s: its URL is not one to keep (%s)", label, strerror(-rc));
		goto fail;
	}
	rc = blob_partial_open(engine->store, &src->digest, src->size, engine->options.piece_size,
			       stored_url, &t->partial);
	if (rc == -EEXIST) {
		rc = blob_open(engine->store, &src->digest, src->size, &t->done_fd);
		if (rc) {
			log_error("%s: its blob is in the cache but cannot be served: %s", label,
				  rc == -ESTALE ? "no record vouches for it" : strerror(-rc));
			goto fail;
		}
		t->state = STATE_DONE;
		t->was_there = true;
		*out = t;
		return 0;
	}
	if (rc) {
		log_error("%s: cannot start its partial blob in the cache: %s", label, strerror(-rc));
		goto fail;
	}
	if (t->partial.writer)
		record_path(engine, t, src->cache_path);
	t->piece_size = t->partial.state.piece_size; /* a resumed one keeps its own */
	t->npieces = t->partial.state.pieces.nbits;
	t->inflight = calloc(t->npieces ? t->npieces : 1, 1);
	t->landed = calloc(t->npieces ? t->npieces : 1, sizeof(*t->landed));
	t->tries = calloc(t->npieces ? t->npieces : 1, 1);
	rc = bitmap_init(&t->wanted, t->npieces);
	if (!t->inflight || !t->landed || !t->tries || rc) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t p = 0; p < t->npieces; p++)
		if (bitmap_get(&t->partial.state.pieces, p))
			t->landed[p] = piece_end(t, p) - piece_start(t, p);
	t->max_calls = src->connections ? src->connections : engine->options.connections;
	t->state = t->partial.writer ? STATE_RUNNING : STATE_FOLLOWING;
	if (!t->partial.writer) {
		t->shared = true;
		log_info("%s: another process is downloading it: following", label);
	}
	*out = t;
	return 0;
fail:
	transfer_free(t);
	return rc;
}

/* A failed transfer stays with the readers that hold it (they get its
 * error), but a new reader gets a new transfer: the hub may have healed,
 * and the new one starts with the retry rules afresh. */
static bool reusable_locked(const struct transfer *t)
{
	return !t->released && t->state != STATE_FAILED;
}

int transfer_get(struct transfer_engine *engine, const struct transfer_source *src,
		 const char *label, struct transfer **out)
{
	struct transfer *t;
	bool created = false;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&engine->create_lock);
	pthread_mutex_lock(&engine->lock);
	for (;;) {
		bool letting_go = false;

		for (t = engine->transfers; t; t = t->next) {
			if (!digest_spec_same(&t->digest, &src->digest) || t->size != src->size)
				continue;
			if (reusable_locked(t))
				break;
			letting_go |= t->fail_io;
		}
		/* A failed transfer of the blob has not let go of its partial
		 * yet (the engine thread does it, outside engine->lock): a new
		 * one could not write it, and might open a file about to go.
		 * The engine thread itself does not wait for itself. */
		if (t || !letting_go || engine->stopping ||
		    (engine->threads_started && pthread_equal(pthread_self(), engine->engine_thread)))
			break;
		pthread_cond_wait(&engine->io_cond, &engine->lock);
	}
	if (t)
		t->refs++;
	else if (engine->stopping)
		rc = -EINTR;
	pthread_mutex_unlock(&engine->lock);
	if (t || rc)
		goto out;
	/* A new blob: room for it, and its partial opened, without
	 * engine->lock (both touch the disk); create_lock keeps a second
	 * transfer of it from starting meanwhile. */
	blob_store_make_room(engine->store, src->size);
	rc = transfer_new(engine, src, label, &t);
	if (rc)
		goto out;
	pthread_mutex_lock(&engine->lock);
	if (engine->stopping) {
		pthread_mutex_unlock(&engine->lock);
		transfer_free(t);
		t = NULL;
		rc = -EINTR;
		goto out;
	}
	next_live_mirror_locked(t);
	t->next = engine->transfers;
	engine->transfers = t;
	t->refs++;
	created = true;
	pthread_cond_signal(&engine->hash_cond); /* a resumed one may be whole */
	pthread_mutex_unlock(&engine->lock);
out:
	pthread_mutex_unlock(&engine->create_lock);
	*out = t;
	if (created)
		wake_engine(engine);
	return rc;
}

void transfer_put(struct transfer *t)
{
	struct transfer_engine *engine;

	if (!t)
		return;
	engine = t->engine; /* t may be freed by put_locked */
	pthread_mutex_lock(&engine->lock);
	put_locked(t);
	pthread_mutex_unlock(&engine->lock);
}

void transfer_want_all(struct transfer *t)
{
	pthread_mutex_lock(&t->engine->lock);
	bool wake = !t->want_all;
	t->want_all = true;
	pthread_mutex_unlock(&t->engine->lock);
	if (wake)
		wake_engine(t->engine);
}

void transfer_hint(struct transfer *t, uint64_t offset, uint64_t length)
{
	bool wake = false;

	uint64_t end = length > t->size - (offset < t->size ? offset : t->size) ? t->size
										  : offset + length;

	pthread_mutex_lock(&t->engine->lock);
	if (t->state == STATE_RUNNING || t->state == STATE_FOLLOWING) {
		/* From the piece of its first byte, as pick_piece. */
		for (uint64_t off = offset - offset % t->piece_size; off < end;
		     off += t->piece_size) {
			size_t piece = (size_t)(off / t->piece_size);
			if (!bitmap_get(&t->wanted, piece)) {
				bitmap_set(&t->wanted, piece);
				wake = true;
			}
		}
	}
	pthread_mutex_unlock(&t->engine->lock);
	if (wake)
		wake_engine(t->engine);
}

static int wait_common(struct transfer *t, enum wait_kind kind, uint64_t offset, uint64_t end,
		       transfer_wait_fn fn, void *ctx, uint64_t *id)
{
	struct transfer_engine *engine = t->engine;
	int rc, now = 1; /* 1: still pending */

	if (id)
		*id = 0;
	pthread_mutex_lock(&engine->lock);
	if (t->state == STATE_FAILED) {
		if (!t->fail_io || engine->stopping)
			now = t->error; /* else told with the others (check_waiters_locked) */
	} else if (t->state == STATE_DONE ||
		 (kind == WAIT_RANGE && range_present_locked(t, offset, end)))
		now = 0;
	if (now == 0 && kind == WAIT_RANGE && t->state != STATE_DONE)
		t->streamed += end - offset;
	rc = now == 1 ? add_waiter_locked(t, kind, offset, end, fn, ctx, id) : 0;
	if (rc == 0 && now == 1 && kind == WAIT_COMPLETE)
		t->want_all = true; /* whoever waits for the whole needs every piece */
	pthread_mutex_unlock(&engine->lock);
	if (rc)
		return rc;
	if (now != 1)
		fn(ctx, now);
	else
		wake_engine(engine);
	return 0;
}

int transfer_wait_complete(struct transfer *t, transfer_wait_fn fn, void *ctx, uint64_t *id)
{
	return wait_common(t, WAIT_COMPLETE, 0, t->size, fn, ctx, id);
}

int transfer_wait_range(struct transfer *t, uint64_t offset, uint64_t length,
			transfer_wait_fn fn, void *ctx, uint64_t *id)
{
	uint64_t end = offset + length;

	if (end > t->size || end < offset)
		end = t->size;
	if (offset > end)
		offset = end;
	return wait_common(t, WAIT_RANGE, offset, end, fn, ctx, id);
}

void transfer_wait_cancel(struct transfer_engine *engine, uint64_t id)
{
	bool found = false;

	pthread_mutex_lock(&engine->lock);
	for (struct waiter *w = engine->by_id[id_bucket(id)]; w; w = w->hash_next) {
		if (w->id == id) {
			ready_waiter_locked(engine, w, -EINTR);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&engine->lock);
	if (found)
		wake_engine(engine);
}

int transfer_wait_complete_sync(struct transfer *t)
{
	struct wait_result w;
	int rc;

	wait_result_init(&w);
	rc = transfer_wait_complete(t, wait_result_deliver, &w, NULL);
	if (rc == 0)
		rc = wait_result_take(&w);
	wait_result_destroy(&w);
	return rc;
}

int transfer_fd(const struct transfer *t)
{
	return t->done_fd >= 0 ? t->done_fd : t->partial.fd;
}

int transfer_error(struct transfer *t)
{
	int rc;

	pthread_mutex_lock(&t->engine->lock);
	rc = t->state == STATE_FAILED ? t->error : 0;
	pthread_mutex_unlock(&t->engine->lock);
	return rc;
}

/* ---- status ---- */

/* Bytes of t on disk: what this process landed, or (following) what the
 * writer's sidecar says is complete. */
static uint64_t bytes_present_locked(const struct transfer *t)
{
	uint64_t done = 0;

	if (t->state == STATE_DONE)
		return t->size;
	if (t->restarting)
		return 0; /* t->partial.state is the engine thread's meanwhile */
	for (size_t p = 0; p < t->npieces; p++) {
		uint64_t piece = piece_end(t, p) - piece_start(t, p);
		uint64_t landed = t->landed ? t->landed[p] : 0;

		if (bitmap_get(&t->partial.state.pieces, p))
			landed = piece;
		done += landed < piece ? landed : piece;
	}
	return done;
}

static const char *state_name(enum transfer_state state)
{
	switch (state) {
	case STATE_RUNNING: return "running";
	case STATE_FOLLOWING: return "following";
	case STATE_DONE: return "done";
	case STATE_FAILED: break;
	}
	return "failed";
}

/* All but the label, which the caller copies. */
static void snapshot_locked(const struct transfer *t, struct transfer_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = state_name(t->state);
	s->digest = t->digest;
	s->size = t->size;
	s->present = bytes_present_locked(t);
	s->fetched = t->fetched;
	s->seconds = seconds_since(&t->started);
	s->connections = t->calls_inflight;
	for (const struct waiter *w = t->waiters; w; w = w->next)
		s->waiters++;
	s->source = source_of_locked(t);
	memcpy(s->bytes, t->from, sizeof(s->bytes));
}

/* Appends a copy of s (its label copied too) to *list, grown as needed. */
static int status_append(struct transfer_status **list, size_t *n, size_t *cap,
			 const struct transfer_status *s)
{
	if (*n == *cap) {
		size_t grown_cap = *cap ? 2 * *cap : 8;
		struct transfer_status *grown = realloc(*list, grown_cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		*list = grown;
		*cap = grown_cap;
	}
	(*list)[*n] = *s;
	if (!((*list)[*n].label = strdup(s->label)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int transfer_engine_list(struct transfer_engine *engine, struct transfer_status **out,
			 size_t *count)
{
	struct transfer_status *list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	pthread_mutex_lock(&engine->lock);
	for (struct transfer *t = engine->transfers; t && rc == 0; t = t->next) {
		struct transfer_status s;

		if (t->released)
			continue;
		snapshot_locked(t, &s);
		s.label = t->label;
		rc = status_append(&list, &n, &cap, &s);
	}
	/* Then the ones that ended, newest first. */
	for (size_t i = 1; i <= TRANSFER_RECENT && rc == 0; i++) {
		const struct transfer_status *r =
			&engine->recent[(engine->recent_next + TRANSFER_RECENT - i) % TRANSFER_RECENT];
		if (r->label)
			rc = status_append(&list, &n, &cap, r);
	}
	pthread_mutex_unlock(&engine->lock);
	if (rc) {
		transfer_status_free(list, n);
		return rc;
	}
	*out = list;
	*count = n;
	return 0;
}

size_t transfer_status_live(const struct transfer_status *list, size_t count)
{
	size_t live = 0;

	for (size_t i = 0; i < count; i++)
		live += !list[i].ended;
	return live;
}

void transfer_status_free(struct transfer_status *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i].label);
	free(list);
}
