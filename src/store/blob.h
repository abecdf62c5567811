/* blob.h: the content-addressed store under the cache: complete blobs named
 * by their digest (blobs/<algorithm>/<hex>), partial blobs with the sidecar
 * that lets any process resume them, the locks that make one process their
 * writer and pin open blobs, links into the readable tree, the start-up
 * sweep and eviction. Not for: fetching (transfer.c) or hub names (hubs). */
#ifndef OMNIHUB_BLOB_H
#define OMNIHUB_BLOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "digest.h"
#include "sidecar.h"

#define BLOB_DIR "blobs"

/* Locks, in the order they are taken (never the other way):
 *  1. blob_store.evict_lock: serialises eviction, gc and removal by request;
 *     held while they read the store's directories, walk the readable tree
 *     for a victim's names and unlink files. Cache-hit opens never take it.
 *  2. blob_store.uses_lock: the uses remembered for eviction order and the
 *     running total of bytes; memory only, no file I/O under it. Taken by
 *     every cache-hit open (blob_store_touch).
 *  3. cache.memo_lock (cache.c): the memo of verification records; memory
 *     only. Taken by every cache-hit open.
 * cache.root_lock (cache.c) is taken alone, only after an ENOENT, to see
 * whether the cache directory was deleted (an fstat) and make it again.
 * Between processes: an open-file-description lock on each file (a write
 * lock on a .partial: its writer; shared locks on a complete blob: its
 * readers, which eviction's write lock respects). */

struct cache;
struct blob_store;

/* cache_max: bytes of blobs to keep at most (0: no limit). */
int blob_store_open(struct blob_store **out, struct cache *cache, uint64_t cache_max);
/* A reload's new limit: the next room made for a download evicts down to
 * it; nothing is evicted at once. */
void blob_store_set_max(struct blob_store *store, uint64_t cache_max);
void blob_store_close(struct blob_store *store);

/* At start-up: keeps partial blobs that can be resumed, removes orphans
 * (a sidecar without data, data without a sidecar, an inconsistent pair,
 * leftover temporaries) with a log line each. */
void blob_store_sweep(struct blob_store *store);

/* "blobs/<algorithm>/<hex><suffix>"; *out is the caller's. */
int blob_rel(const struct digest_spec *digest, const char *suffix, char **out);

/* Opens the complete blob read-only and pins it (a shared lock that
 * eviction respects, in any process). 0; -ENOENT when absent; -ESTALE when
 * present but not known to be right (hash it: blob_check). */
int blob_open(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
	      int *fd_out);
/* Hashes a complete blob that blob_open called -ESTALE: 0 and *fd_out when
 * it is right (stamped from now on); a wrong one is removed (-ENOENT).
 * Any other -errno (a wrong blob that cannot be removed, a read or the
 * stamp failing) is logged here, naming label. */
int blob_check(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
	       const char *label, int *fd_out);

/* Makes rel (in the readable tree) a hard link to the complete blob,
 * unless it already is one. Failure is logged and otherwise harmless: the
 * mount serves the blob itself. */
void blob_link(struct blob_store *store, const struct digest_spec *digest, const char *rel);

/* A partial blob, open for the process that writes it or follows it. */
struct blob_partial {
	int fd;              /* the .partial data file; -1 once closed */
	bool writer;         /* holds the write lock: only this process writes */
	struct sidecar state; /* the writer's own, or the last one read */
	struct digest_spec digest;
	char *rel;           /* owned: blobs/<algorithm>/<hex>.partial */
	char *state_rel;     /* owned: ....state */
};

/* Opens (creating if needed) the partial blob for digest. As its writer it
 * resumes from the sidecar when that matches url's size, else starts
 * afresh; as a follower (another process writes) it reads the sidecar.
 * -EEXIST when the blob became complete meanwhile (open it instead). */
int blob_partial_open(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
		      uint64_t piece_size, const char *url, struct blob_partial *out);
/* Follower: takes over as writer if the writer has gone (true), and
 * re-reads the sidecar either way. */
bool blob_partial_follow(struct blob_store *store, struct blob_partial *partial);
/* Writer: saves the sidecar atomically. */
int blob_partial_save(struct blob_store *store, struct blob_partial *partial);
/* Writer: starts over (the file changed on the server). */
int blob_partial_restart(struct blob_store *store, struct blob_partial *partial,
			 const char *validator);
/* Writer, once the digest matched: makes it the complete blob (fsync,
 * rename, stamp) and gives up the write lock for a pin. The fd stays open
 * on the complete blob. */
int blob_partial_complete(struct blob_store *store, struct blob_partial *partial);
/* Writer: removes the data and the sidecar (a digest mismatch, a full
 * disk). */
void blob_partial_discard(struct blob_store *store, struct blob_partial *partial);
/* Writer that gave up (a failed transfer): lets the next writer, in this
 * process or another, take the partial over; the fd stays open. */
void blob_partial_release(struct blob_partial *partial);
/* Closes the file (releasing its lock) and frees the state; the files stay. */
void blob_partial_close(struct blob_partial *partial);

/* Makes room for need more bytes under cache_max, evicting complete blobs
 * least recently used first, never a pinned one. */
void blob_store_make_room(struct blob_store *store, uint64_t need);
/* Records a use, for eviction order. */
void blob_store_touch(struct blob_store *store, const struct digest_spec *digest);

/* One complete blob, as eviction, gc and verify see it. */
struct blob_info {
	char name[sizeof(BLOB_DIR) + 16 + DIGEST_HEX_MAX]; /* "<dir>/<name>" below blobs/ */
	uint64_t size;
	struct timespec used; /* last use: this process's memory, else the atime */
	dev_t dev;
	ino_t ino;
	bool planted; /* not a regular file (a link, FIFO, directory...): bad */
};

/* Every complete blob in the store (any process's), least recently used
 * first, and every planted entry at a blob's name (planted); *out is the
 * caller's (free). */
int blob_store_list(struct blob_store *store, struct blob_info **out, size_t *count);
/* Removes one blob (or planted entry) and its names in the readable tree, unless it is open
 * (pinned) in some process: 0, -EBUSY when pinned, -ENOENT when gone. With
 * dry_run, only says whether it would go. */
int blob_store_remove(struct blob_store *store, const struct blob_info *blob, bool dry_run);

/* The complete blob named by digest (or a planted entry there): 0, or
 * -ENOENT. */
int blob_store_find(struct blob_store *store, const struct digest_spec *digest,
		    struct blob_info *out);
/* The digest a complete blob must have: its name says it (blobs/sha256/
 * <hex>), or for a keyed blob the stamp it was verified with: 0, or
 * -ENODATA when nothing says. */
int blob_expected_digest(struct blob_store *store, const struct blob_info *blob,
			 struct digest_spec *out);
/* Hashes a complete blob again, pinned while it is read: 0 when it holds
 * expected, -EBADMSG when it does not or is planted (actual says what it
 * holds, "" when it is no file), never writing its record;
 * -ENOENT when it went meanwhile. */
int blob_rehash(struct blob_store *store, const struct blob_info *blob,
		const struct digest_spec *expected, char actual[DIGEST_HEX_MAX]);

/* Removes names (paths below the root, in the readable tree) that are
 * hard links to blob, and the blob itself when no other name links it any
 * more, unless the blob is open (pinned) in some process: then nothing is
 * removed (-EBUSY). A name that is no longer a link to it is left alone.
 * Under the eviction lock, as gc. *blob_gone: whether the blob went (would
 * go, with dry_run). 0, -EBUSY, -ENOENT when the blob went meanwhile, or
 * -errno. */
int blob_store_unname(struct blob_store *store, const struct blob_info *blob,
		      char *const *names, size_t count, bool dry_run, bool *blob_gone);

/* One partial blob (a download in progress or left over), as omnihub
 * cache ls sees it. */
struct blob_partial_info {
	char name[sizeof(BLOB_DIR) + 16 + DIGEST_HEX_MAX]; /* "<dir>/<name>" below blobs/, no
							      suffix */
	char *url;        /* owned; from its sidecar, NULL when that is unreadable */
	char *path;       /* owned; the file it is for, below the store's root, from its
			     sidecar; NULL when not recorded (an older sidecar) */
	uint64_t size;    /* of the whole blob (its sidecar's); 0 when unknown */
	uint64_t bytes;   /* so far: the whole pieces its sidecar has */
	bool in_progress; /* some process holds its write lock: being written */
};
/* Every partial blob of the store (any process's); *out is the caller's
 * (blob_partial_infos_free). 0 or -ENOMEM. */
int blob_store_partials(struct blob_store *store, struct blob_partial_info **out, size_t *count);
void blob_partial_infos_free(struct blob_partial_info *list, size_t count);
/* Removes a partial blob left over (name as in blob_partial_info), its data
 * and its sidecar, unless a process writes it (-EBUSY). Under the eviction
 * lock. With dry_run, only says whether it would go. 0, -EBUSY, -errno. */
int blob_store_remove_partial(struct blob_store *store, const char *name, bool dry_run);

/* What blob_store_gc removes: complete blobs, never a pinned one. */
struct blob_gc {
	uint64_t max;          /* least recently used first, down to this many
				  bytes; UINT64_MAX: no limit */
	time_t unused_before;  /* and every one last used at or before this; 0: none */
	bool dry_run;          /* only say what would go */
	/* Called for each blob chosen: rc 0 when it went (would go), -EBUSY
	 * when pinned and kept. NULL: nobody listens. */
	void (*report)(void *ctx, const struct blob_info *blob, int rc);
	void *ctx;
};
/* 0 or -errno; *freed and *left are the bytes removed and those left. */
int blob_store_gc(struct blob_store *store, const struct blob_gc *gc, uint64_t *freed,
		  uint64_t *left);

/* What the store holds now, counted from the directory (any process's). */
struct blob_usage {
	uint64_t bytes;         /* complete blobs */
	uint64_t blobs;
	uint64_t partial_bytes; /* on disk in partial blobs */
	uint64_t partials;
	uint64_t max;           /* cache_max; 0: no limit */
};
void blob_store_usage(struct blob_store *store, struct blob_usage *usage);

#endif
