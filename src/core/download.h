/* download.h: making a hub file present and verified in the cache, once
 * however many readers ask: a blob already there (hashed again when its
 * stamp no longer holds), another client's copy, or a transfer; then its
 * name in the readable tree, or its archive extracted. Not for: HTTP
 * (fetch.c), pieces and resumption (transfer.c), the layout (blob.c). */
#ifndef OMNIHUB_DOWNLOAD_H
#define OMNIHUB_DOWNLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "convert.h"
#include "source.h"
#include "stage.h"
#include "transfer.h"

struct blob_store;
struct cache;
struct download_set;
struct metrics;
struct pool;
struct transfer_engine;

struct download_options {
	bool offline;                /* the cache and other clients' copies only */
	struct stage_limits limits;  /* for archives and decompression */
	unsigned convert_timeout;    /* seconds a converter may run */
};

#define DOWNLOAD_CONVERT_TIMEOUT_DEFAULT CONVERT_TIMEOUT_DEFAULT

/* Jobs run as steps on pool (borrowed; it must run until the set is
 * drained): a step never waits on a transfer or another job, it ends and
 * their callback queues the next. */
int download_set_new(struct download_set **out, struct cache *cache, struct blob_store *store,
		     struct transfer_engine *engine, struct pool *pool,
		     const struct download_options *options);
/* A reload's options: the jobs' next steps use them. */
void download_set_set_options(struct download_set *set, const struct download_options *options);
/* Counts cache hits and misses (a file present, or another client's copy,
 * against one to download), digest failures of those copies, and how long
 * each reader waited, into metrics (borrowed; NULL: none). Set before the
 * first download. */
void download_set_set_metrics(struct download_set *set, struct metrics *metrics);
/* Waits for every job to end and answer its readers (shut the engine down
 * first to hurry them). */
void download_set_drain(struct download_set *set);
/* Drains, then frees. */
void download_set_free(struct download_set *set);

/* Called once, never in the caller's thread: 0, or ENOENT, EACCES,
 * ETIMEDOUT, ENOSPC, EDQUOT, EINTR (cancelled) or EIO, negated. */
typedef void (*download_done_fn)(void *ctx, int rc);

/* Starts (or joins) the job that makes src present: for SOURCE_FILE the
 * complete blob and its name at src->cache_path, for SOURCE_ARCHIVE the
 * extracted tree there. *id names the wait for download_cancel. label
 * names the file in log lines; every failure is logged once, by the job. */
int download_start(struct download_set *set, const struct source *src, const char *label,
		   download_done_fn done, void *ctx, uint64_t *id);
/* Ends a wait early: done runs with -EINTR on another thread, unless it has
 * run already; the job goes on for other readers. Safe from any thread. */
void download_cancel(struct download_set *set, uint64_t id);
/* What a transfer of src's bytes fetches; its strings are src's. */
struct transfer_source download_transfer_source(const struct source *src);

/* download_start, waiting in the calling thread. */
int download_ensure(struct download_set *set, const struct source *src, const char *label);

/* SOURCE_MADE: opens the made file if it is there and was made from src as
 * it is now: 0, else -ENOENT. */
int download_open_made(struct download_set *set, const struct source *src, int *fd);
/* Whether what src makes present is there now (the blob, the extracted
 * tree, the made file), judged without fetching or hashing anything. */
bool download_is_present(struct download_set *set, const struct source *src);

#endif
