/* core.h: one session over the hubs, shared by the mount (fs.c) and the
 * omnihub command: the cache and its blob store, the fetcher, the
 * transfers, the downloads and the hubs of the registry, each hub opened only
 * when first asked for. Not for: FUSE (fs.c) or a command line (main.c,
 * omnihub.c). */
#ifndef OMNIHUB_CORE_H
#define OMNIHUB_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hub.h"
#include "hub_state.h"

struct blob_store;
struct cache;
struct config;
struct download_set;
struct metrics;
struct pool;
struct transfer_engine;

/* The session's worker threads, started once by core_new (man page,
 * THREADS): besides them a mount has FUSE's (main.c), two per cache's
 * transfer engine and the fs's notifier, whatever it is asked. */
#define CORE_REQUEST_THREADS 8u /* FUSE requests that need a hub's remote
				   work: a listing, a size, an archive */
#define CORE_REQUEST_HUB_LIMIT 6u /* of them, at most this many for one hub:
				     a stalled hub leaves the others two */
#define CORE_JOB_THREADS 8u     /* download steps: checking, importing,
				   extracting, converting; never waiting
				   on a transfer (they chain from it) */

struct core;

/* LOCK ORDER. A thread holding one of these mutexes takes only those below
 * it, never one above; keep it so when adding a lock or a call under one.
 *   1. core.c   core->hubs_lock      (a hub opens under it: 2, and the
 *                                     fetcher's, budgets' and log's; taken
 *                                     by hub_env.peer, which the views call
 *                                     holding none)
 *   2. a hub's own lock              (hub_hf.c, hub_onnx.c, hub_catalog.c:
 *                                     released around requests and around
 *                                     hub_env.index_changed)
 *   3. fs.c     fs->notify_lock      (released around each revalidation)
 *   4. tree.c   the tree's lock      (taken by fs.c with none of 1-3 held)
 *   5. download.c set->lock          (takes 6 to queue a job's first step,
 *                                     7 to defer a cancelled reader's answer)
 *   6. pool.c   pool->lock           (no task runs under it)
 *   7. transfer.c engine->lock       (takes 8 only through blob.c calls)
 *   8. blob.c   store->lock          (eviction, uses)
 *   9. leaves, which take nothing: fs.c fs->handles_lock and a handle's
 *      lock; wait_result.c's; the fetcher's share locks; metrics'; log.c's ring.
 * No callback (a download's done, a transfer's wait, a pool task, a FUSE
 * interrupt) is called with any of 1-8 held by its caller. */

/* Opens every store (sweeping what a crash left), the transfers and what
 * the registry's entries load to name their hubs (hub_ops.load): local
 * files only, no hub and no request. On failure writes one
 * sentence to why. cfg must outlive the core. */
int core_new(struct core **out, const struct config *cfg, char *why, size_t why_size);
/* Stops every transfer (their partial state kept) and answers every
 * waiter with EINTR, then waits for the jobs. */
void core_shutdown(struct core *core);
/* Shuts down if needed; frees everything, closing the hubs. */
void core_free(struct core *core);

/* One cache directory and what works on it: the general cache, and one
 * per directory a [hub] section names of its own (config_hub_cache); hubs
 * naming the same directory share it. Everything in it is the core's, and
 * never moves while the core lives (the hubs hold &env). */
struct core_store {
	char *dir;      /* owned; the directory as the config names it */
	uint64_t max;   /* its cache_max; 0: no limit */
	struct cache *cache;
	struct blob_store *blobs;
	struct transfer_engine *engine;
	struct download_set *downloads;
	struct hub_env env; /* lent to the hubs of this store: their index is
			       kept under env.cache */
};

/* The settings in use (the mount's, or the last reload's). */
const struct config *core_config(const struct core *core);
/* A reload's settings (SIGHUP), taken (freed with the core) and used from
 * now on: each store's cache_max, its transfers' connections, retries,
 * stall_timeout and retry_time, its downloads' offline and unpack limits,
 * each hub's offline and index_ttl, and what is read from the settings per
 * request (stream, a [hub]'s offline and connections). Not applied: what
 * was opened with the mount (cache directories, cacert, proxy, mirrors,
 * piece_size, memory_max, the hubs' own options). 0 or -ENOMEM (cfg is
 * then still the caller's). */
int core_apply_config(struct core *core, struct config *cfg);
/* The stores, the general one first (i == 0); each one once. */
size_t core_store_count(const struct core *core);
struct core_store *core_store(struct core *core, size_t i);
/* The store of a hub (opened or not, by name); the general one for NULL or
 * a name no hub has. */
struct core_store *core_store_of(struct core *core, const struct hub *hub);
struct core_store *core_store_named(struct core *core, const char *hub);
/* The general store's. */
struct cache *core_cache(struct core *core);
struct blob_store *core_blobs(struct core *core);
struct transfer_engine *core_engine(struct core *core);
struct download_set *core_downloads(struct core *core);
/* The pool FUSE requests that need a hub's remote work run on (fs.c):
 * its tasks may block on the network; stopped by core_shutdown, which
 * runs the ones still queued as cancelled. */
struct pool *core_requests(struct core *core);
/* What the session counted (metrics.h): requests, bytes, retries, cache
 * hits and misses, downloads, latencies. */
struct metrics *core_metrics(struct core *core);

/* The hubs of the registry (those hub_ops.load names included), opened or not, in the order
 * of the mount's root. */
size_t core_hub_count(const struct core *core);
const char *core_hub_name(const struct core *core, size_t i);

/* How many hubs the core may ever have: core_hub_count and those reloads
 * may add (core_add_catalog_hubs); what an array per hub is sized by. */
size_t core_hub_capacity(const struct core *core);

/* Called with the new core_hub_count each time a reload added a hub, from
 * the reloading thread, before the hub is served; set before the mount. */
void core_on_hubs_added(struct core *core, void (*fn)(void *ctx, size_t count), void *ctx);

/* What core_add_catalog_hubs says of each hub it added: why is NULL when
 * it is up, else why it cannot open yet (it is retried in the background,
 * or left out when its settings refuse it). */
typedef void (*core_added_fn)(void *ctx, const char *name, const char *why);

/* A reload (SIGHUP) of a mount: the hubs the catalogs of cfg name (the
 * settings just read again) that the mount does not serve are added, each
 * at the end of the root, with the settings in use (its own section of
 * cfg applies from the next mount), in a store the mount has open (a hub
 * whose own cache directory is not open waits for the next mount, with a
 * log line). Each is opened now, in the calling thread, or retried in
 * the background, and served from then on; added is told of each. Hubs
 * the catalogs no longer name are kept until the next mount (their files
 * may be open), and told to gone (why NULL). Call after core_open_all,
 * from one thread at a time. 0, or -errno with the sentence in why (a
 * setting the catalogs refuse: nothing more is added). */
int core_add_catalog_hubs(struct core *core, const struct config *cfg, core_added_fn added,
			  core_added_fn gone, void *ctx, char *why, size_t why_size);

/* Called after a hub's refresh replaced its index (hub_env.index_changed);
 * set before any hub opens. */
void core_on_index_changed(struct core *core, void (*fn)(void *ctx, struct hub *hub),
			   void *ctx);

/* The hub of that name, opened on first use (its index loaded, from the
 * cache when fresh). -ENOENT for a name no hub has; -EIO when it cannot
 * open, with the sentence in why (and again on every later call). */
int core_hub(struct core *core, const char *name, struct hub **out, char *why,
	     size_t why_size);
/* The mount: opens every hub at once. One that cannot is left out (with a
 * log line) when it is offline or its settings refuse it, and otherwise
 * opened again by a thread of the core's, after waits growing from
 * hub_retry_first() (hub_state.h), until it opens; index_changed is then
 * called for it. *hubs is an array of every hub, opened or not, in the
 * order of the root, owned by the core: call a hub's functions only while
 * hub_state_check(hub->state) says it is up. Fails only when no hub is up
 * or retried. Call before any core_hub. */
int core_open_all(struct core *core, struct hub **hubs, size_t *nhubs, char *why,
		  size_t why_size);
/* Copies the state of the first max hubs into out; returns how many. */
size_t core_hub_states(struct core *core, struct hub_state_view *out, size_t max);

/* Splits "onnx/resnet18/model.onnx" (no leading or trailing '/') into its
 * hub, opened, and the path in it ("" for the hub's root). */
int core_resolve(struct core *core, const char *path, struct hub **hub, const char **rest,
		 char *why, size_t why_size);

/* The hub's source of path, with the hub's own settings of the config
 * applied (offline, connections); *out is the caller's (source_clear). */
int core_source(struct core *core, struct hub *hub, const char *path, struct source *out);

/* Makes what the hub's path names present and verified in the cache
 * (download, check, stage), waiting in the calling thread; a download
 * another process runs is joined, not repeated. 0 or -errno (ENOENT,
 * EACCES, ETIMEDOUT, ENOSPC, EIO, EINTR...); every failure is logged. */
int core_ensure(struct core *core, struct hub *hub, const char *path);
/* core_ensure without the wait: starts (or joins) the work and returns;
 * done(ctx, rc) is called once, never in the calling thread, with what
 * core_ensure would return. The source is learnt in the calling thread. */
int core_start(struct core *core, struct hub *hub, const char *path,
	       void (*done)(void *ctx, int rc), void *ctx);
/* Whether it is present now, judged without any request or hashing; and
 * where, as an absolute path (*where is the caller's; NULL when absent). */
int core_cached(struct core *core, struct hub *hub, const char *path, bool *present,
		char **where);

/* Whether a list (list true) or a lookup, source or readlink of path in
 * hub would make a request or wait for one now (hub_ops.would_block);
 * answered from memory, at once: a FUSE thread asks it before it calls
 * the hub, and hands the call to a worker when true. */
bool core_would_block(struct hub *hub, const char *path, bool list);

/* ---- the read path (core_read.c): the mount and the command both ---- */

struct cache;
struct core_stream;
struct core_wait;
struct digest_spec;
struct stat;
struct statvfs;

/* Called once, never in the thread that started the wait, when the job an
 * open waits on ends: rc 0, or -errno (ENOENT, EACCES, ETIMEDOUT, ENOSPC,
 * EDQUOT, EINTR, EIO); then core_wait_fd opens the file. wait is the
 * callee's, to free (core_wait_free). */
typedef void (*core_wait_fn)(void *ctx, struct core_wait *wait, int rc);

/* What an open of a hub file gets. */
struct core_open {
	enum {
		CORE_OPEN_FD,     /* fd: the verified file, here now (a blob, a
				     made file): a hit */
		CORE_OPEN_STREAM, /* stream: read as it arrives (stream mode,
				     no copy here or in a client's cache) */
		CORE_OPEN_WAIT,   /* a job makes it present (a download, a
				     client's copy linked or copied, a file
				     made): done is called when it ends */
	} kind;
	int fd;                     /* CORE_OPEN_FD: the caller's */
	struct core_stream *stream; /* CORE_OPEN_STREAM: the caller's */
	uint64_t wait_id;           /* CORE_OPEN_WAIT: for core_open_cancel */
	uint64_t size;              /* as the hub says now */
};

/* The one decision of what an open of hub's path gets. digest and size:
 * what the caller's name stands for; -ESTALE when the hub's index now
 * says otherwise (digest NULL: whatever it says). Asks the hub for the
 * source, which may take a request (core_would_block first, from a FUSE
 * thread). 0 or -errno (ESTALE, EMFILE logged, ENOSPC...). */
int core_open(struct core *core, struct hub *hub, const char *path,
	      const struct digest_spec *digest, uint64_t size, core_wait_fn done, void *ctx,
	      struct core_open *out);
/* Ends a CORE_OPEN_WAIT early: its done runs with -EINTR on another
 * thread, unless it ran; the job goes on. Safe from any thread, by id. */
void core_open_cancel(struct core *core, struct hub *hub, uint64_t wait_id);
/* In done, after rc 0: the file, verified, open read-only. */
int core_wait_fd(struct core_wait *wait, int *fd);
void core_wait_free(struct core_wait *wait);

/* A stream's reads: a hint of what a reader wants soon; a wait for
 * [offset, offset + length) to be on disk, or with whole for the entire
 * file verified (fn called once, maybe before this returns; *id names the
 * wait for core_stream_cancel, which makes fn run with -EINTR); the
 * descriptor the bytes waited for are read from; the end of the stream. */
void core_stream_hint(struct core_stream *s, uint64_t offset, uint64_t length);
int core_stream_wait(struct core_stream *s, uint64_t offset, uint64_t length, bool whole,
		     void (*fn)(void *ctx, int rc), void *ctx, uint64_t *id);
void core_stream_cancel(struct core_stream *s, uint64_t id);
int core_stream_fd(const struct core_stream *s);
void core_stream_put(struct core_stream *s);

/* A made file's attributes when it is there (-ENOENT when not yet). */
int core_made_stat(struct core *core, struct hub *hub, const char *path, struct stat *st);
/* Makes an archive's tree present (extracted, verified) and gives where,
 * below the cache root (*cache_path is the caller's). Without may_wait,
 * -EWOULDBLOCK when that takes a download. */
int core_stage(struct core *core, struct hub *hub, const char *path, bool may_wait,
	       char **cache_path);
/* A staged file or link in cache (an archive's tree, tree_node_cache). */
int core_staged_open(struct cache *cache, const char *rel);
ssize_t core_staged_readlink(struct cache *cache, const char *rel, char *buf, size_t size);
/* Runs fn(ctx) soon on another of the core's threads; 0 or -errno (after
 * core_shutdown). */
int core_defer(struct core *core, void (*fn)(void *ctx), void *ctx);
/* The space the general cache has left. */
int core_statvfs(struct core *core, struct statvfs *st);
/* A status file's content (.omnihub/status, metrics, log), made now;
 * uptime: seconds the mount has run. *out is the caller's. */
int core_status_text(struct core *core, const char *which, double uptime, char **out,
		     size_t *len);

/* Where a file's bytes come from, without credentials in it (*url is the
 * caller's); it may take a request for a file whose size is unknown. */
int core_url(struct hub *hub, const char *path, char **url);
/* A file's metadata as a JSON object ("{}" when its hub has none). */
int core_meta(struct hub *hub, const char *path, char **json);

#endif
