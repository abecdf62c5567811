/* transfer.h: one transfer per blob, shared by every reader: pieces fetched
 * over several connections at once and written in place, hashed in order as
 * the prefix fills, retried, resumed, and shared with other processes
 * through the blob store's locks. Readers wait for the whole blob or for a
 * byte range, by callback, so no thread is held while they wait. Not for:
 * HTTP details (fetch.c), the on-disk layout (blob.c), or FUSE (fs.c). */
#ifndef OMNIHUB_TRANSFER_H
#define OMNIHUB_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "metrics.h"

struct blob_store;
struct mirror_list;
struct fetcher;
struct metrics;

struct transfer_options {
	unsigned connections;  /* requests in flight per blob */
	uint64_t piece_size;   /* bytes per piece */
	unsigned retries;      /* tries of a piece in a row that move no byte,
				  after the first (a try that moves bytes
				  starts the count again) */
	long retry_seconds;    /* retry_time: failures with no byte moved are
				  retried (with exponential backoff, or the
				  server's Retry-After) for this long, then
				  the transfer fails */
	long stall_seconds;    /* a connection under 1 KiB/s this long is
				  given up and retried */
	uint64_t memory_max;   /* memory_max: requests in flight across all
				  transfers are held to this many bytes of
				  buffers (TRANSFER_CALL_BYTES each, at least
				  one request); 0: the default */
	/* Blob mirrors, asked in order before the hub for a blob whose
	 * digest names its bytes (borrowed: it outlives the engine; NULL or
	 * empty: none). A mirror that fails, or whose bytes do not hash
	 * right, is skipped for that blob with one log line. */
	const struct mirror_list *mirrors;
};

#define TRANSFER_CONNECTIONS_DEFAULT 8u
#define TRANSFER_PIECE_SIZE_DEFAULT (4ull << 20)
#define TRANSFER_RETRIES_DEFAULT 100u /* the time budget gives up first */
#define TRANSFER_STALL_SECONDS_DEFAULT 30L
#define TRANSFER_RETRY_SECONDS_DEFAULT 120L
/* What one request in flight costs the daemon at most: its write buffer
 * (256 KiB), libcurl's receive buffer (512 KiB) and the connection's TLS
 * state and socket, rounded up (measured: see memory_max in
 * omnihub-fuse(1)). */
#define TRANSFER_CALL_BYTES (1ull << 20)
#define TRANSFER_MEMORY_MAX_DEFAULT (64ull << 20)

/* What a transfer fetches; strings are copied. */
struct transfer_source {
	const char *url;
	struct digest_spec digest;
	uint64_t size;
	unsigned connections; /* requests in flight for it; 0: the engine's */
	/* A credential for url, sent on every request whose URL is on
	 * auth_origin (the hub's, and a resolve again after a signed URL
	 * expired); never to where it redirects. NULL when none. */
	const char *auth_header;
	const char *auth_origin;
	/* The file it is fetched for, below the store's root (a source's
	 * cache_path), recorded in the partial blob's sidecar so omnihub
	 * cache ls can say whose it is; NULL: none recorded. */
	const char *cache_path;
};

struct transfer_engine;
struct transfer;

/* Locks, in the order they are taken (a thread holding one takes only
 * those below it):
 *   1. engine->create_lock  transfer_get while it starts a transfer: the
 *                           partial blob is opened under it alone
 *   2. engine->lock         every transfer's fields, waiters, calls; never
 *                           held across disk I/O of a request's path
 *                           (sidecar saves, partial opens, freeing a
 *                           transfer that ended) nor a callback
 *   3. transfer->io_lock    the partial's files: sidecar save, completion,
 *                           discard, release
 *   4. the blob store's and the fetcher's own locks (leaves)
 * Waiter callbacks (transfer_wait_fn) and deferred functions run with none
 * of these held. A start over's truncation (a file that changed on the
 * server) and a failure's discard or last save are done by the engine
 * thread under io_lock alone: the transfer is marked restarting (no byte
 * present, nothing asked) or failed under engine->lock first, and the
 * result published under it after; a new transfer of a failed blob waits
 * in transfer_get until the old one has let go of the partial. */

int transfer_engine_new(struct transfer_engine **out, struct fetcher *fetcher,
			struct blob_store *store, const struct transfer_options *options);
/* A reload's new limits (SIGHUP): connections, retries, retry_seconds and
 * stall_seconds of options; the other fields are kept. A running transfer
 * keeps its connections; its next retries and stalls are judged by the new
 * limits. */
void transfer_engine_set_limits(struct transfer_engine *engine,
				const struct transfer_options *options);
/* Counts retries, digest failures, and downloads completed and failed into
 * metrics (borrowed; NULL: none). Set before the first transfer. */
void transfer_engine_set_metrics(struct transfer_engine *engine, struct metrics *metrics);
/* Stops every transfer at once (partial state is kept for resumption) and
 * fails every waiter with -EINTR; then new transfers fail with -EINTR. */
void transfer_engine_shutdown(struct transfer_engine *engine);
/* Shuts down if needed; every transfer must have been put. */
void transfer_engine_free(struct transfer_engine *engine);
/* Runs fn(ctx) on the engine's thread soon (never in the caller's). */
int transfer_engine_defer(struct transfer_engine *engine, void (*fn)(void *ctx), void *ctx);

/* Finds the transfer of src's blob or starts one; it is the caller's
 * reference until transfer_put. label names the file in log lines. */
int transfer_get(struct transfer_engine *engine, const struct transfer_source *src,
		 const char *label, struct transfer **out);
void transfer_put(struct transfer *transfer);

/* Fetch every piece (default mode): without it only the pieces readers
 * wait for or hint at are fetched (stream mode). */
void transfer_want_all(struct transfer *transfer);
/* A reader will soon want these bytes (read-ahead). */
void transfer_hint(struct transfer *transfer, uint64_t offset, uint64_t length);

/* Called once, on the engine's thread (or the hasher's), with no lock
 * held: 0 when what was waited for is there, else -errno (-EINTR for a
 * cancelled wait or a shutdown; the transfer's error otherwise). */
typedef void (*transfer_wait_fn)(void *ctx, int rc);

/* Waits for the blob to be complete and verified. *id names the wait for
 * transfer_wait_cancel. */
int transfer_wait_complete(struct transfer *transfer, transfer_wait_fn fn, void *ctx,
			   uint64_t *id);
/* Waits for [offset, offset + length) to be on disk (stream reads); the
 * callback may run before this returns when the bytes are already there. */
int transfer_wait_range(struct transfer *transfer, uint64_t offset, uint64_t length,
			transfer_wait_fn fn, void *ctx, uint64_t *id);
/* Ends a wait early: its callback runs with -EINTR on the engine's thread,
 * unless it has run already. Safe from any thread, at any time. */
void transfer_wait_cancel(struct transfer_engine *engine, uint64_t id);
/* Blocks the calling thread until the blob is complete: 0 or -errno. */
int transfer_wait_complete_sync(struct transfer *transfer);

/* The descriptor of the blob's data (partial or complete), valid while the
 * reference is held; reads of it are right only for bytes waited for. */
int transfer_fd(const struct transfer *transfer);
/* 0 while running or complete, else the -errno it failed with. */
int transfer_error(struct transfer *transfer);

/* One transfer as status shows it: a snapshot. */
struct transfer_status {
	char *label;         /* owned: the file it is for, as the mount names it */
	const char *state;   /* "running", "following" (another process
				writes it), "done" or "failed" */
	struct digest_spec digest;
	uint64_t size;
	uint64_t present;    /* bytes on disk */
	uint64_t fetched;    /* bytes this process received */
	double seconds;      /* since it started */
	unsigned connections; /* requests in flight */
	unsigned waiters;    /* readers waiting for it */
	/* Where its bytes came from: bytes[METRICS_FROM_HUB...] those this
	 * process received; source names the most of them, or "shared"
	 * (another process wrote it) or "local" (it was there) when none. */
	enum metrics_from source;
	uint64_t bytes[METRICS_FROM_COUNT];
	bool ended; /* one of the last that ended, no longer in use */
};

/* How many of list are in use (not ended). */
size_t transfer_status_live(const struct transfer_status *list, size_t count);

/* Snapshots every transfer alive (in use by a reader or a job), then the
 * last TRANSFER_RECENT that ended ("done" or "failed"), newest first; *out
 * is the caller's, freed with transfer_status_free. */
#define TRANSFER_RECENT 16
int transfer_engine_list(struct transfer_engine *engine, struct transfer_status **out,
			 size_t *count);
void transfer_status_free(struct transfer_status *list, size_t count);

#endif
