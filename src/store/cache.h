/* cache.h: the backing store: a plain directory tree a person can read, with
 * files that appear under their final names only once complete and verified.
 * Not for: deciding what to fetch (download.c) or how paths are named (hubs). */
#ifndef OMNIHUB_CACHE_H
#define OMNIHUB_CACHE_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "digest.h"

/* Where indexes are kept, beside the hubs' folders (a hub's name never
 * starts with a dot, so this cannot collide with one). */
#define CACHE_INDEX_DIR ".index"
/* Where planted entries are moved aside (cache_heal): never deleted, since
 * a person may have put them there; no sweep, eviction or gc walks it. */
#define CACHE_QUARANTINE_DIR ".quarantine"
#define CACHE_SIZE_ANY UINT64_MAX
/* The blob store's folder (blob.h's BLOB_DIR): its records are named
 * differently. */
#define CACHE_BLOB_DIR "blobs"

struct cache;

/* Creates root if needed. On failure *why says what went wrong. */
int cache_open(struct cache **out, const char *root, const char **why);
void cache_close(struct cache *cache);
/* Absolute path of the root, and a descriptor open on it. */
const char *cache_root(const struct cache *cache);
int cache_root_fd(const struct cache *cache);

/* Paths beneath the root. Every rel below is relative to the root and
 * untrusted, whoever built it: it is checked (cache_check_rel), and no
 * symbolic link in any of its components is followed, so nothing planted
 * in the cache leads a read or a write out of it. A link where a directory
 * should be gives -ELOOP and a log line naming it; a link as the last
 * component is treated as itself (stat, readlink, unlink, rename over it),
 * never followed. */

/* 0 when rel is not empty, not absolute, under PATH_MAX, and made of
 * components that are not "." or ".." or empty, hold no control character
 * and fit NAME_MAX; else -EINVAL with a log line naming it. */
int cache_check_rel(const char *rel);
/* openat(2) beneath the root (openat2 with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS, else a walk with O_NOFOLLOW at each step). O_NOFOLLOW
 * and O_CLOEXEC are added. A descriptor, or -errno. */
int cache_openat(struct cache *cache, const char *rel, int flags, mode_t mode);
/* fstatat(AT_SYMLINK_NOFOLLOW): a link at rel is described, not followed. */
int cache_lstat(struct cache *cache, const char *rel, struct stat *st);
/* The target of the link at rel, NUL-terminated in buf: its length, or
 * -errno (-ENAMETOOLONG when it does not fit). */
ssize_t cache_readlink(struct cache *cache, const char *rel, char *buf, size_t size);
int cache_mkdir(struct cache *cache, const char *rel, mode_t mode);
/* Makes rel and the directories above it ("" is the root: nothing to do). */
int cache_mkdirs(struct cache *cache, const char *rel);
/* renameat2(2) with its flags (0, RENAME_EXCHANGE, RENAME_NOREPLACE). */
int cache_rename(struct cache *cache, const char *from, const char *to, unsigned flags);
/* A hard link to the file at from (a link there is linked, not followed). */
int cache_link(struct cache *cache, const char *from, const char *to);
/* unlinkat(2) with its flags (AT_REMOVEDIR). */
int cache_unlink(struct cache *cache, const char *rel, int flags);
/* For tests: resolve by the walk only, as under a seccomp filter that
 * refuses openat2. */
void cache_resolve_by_walking(struct cache *cache);

/* A file on its way into the cache: a hidden temporary beside its final
 * path ("." + name + ".<maker>.<pid>-XXXXXX.tmp"), so a crash never leaves a file
 * that looks complete, and a sweep knows whose it is. */
struct cache_tmp {
	int fd;        /* open read-write; -1 once installed or discarded */
	char *rel;     /* final path below the root; owned */
	char *tmp_rel; /* the temporary's path below the root; owned */
	uint64_t written;   /* bytes appended by cache_tmp_write */
	uint64_t submitted; /* of which writeback was started */
};

int cache_tmp_create(struct cache *cache, const char *rel, struct cache_tmp *out);
/* Appends len bytes, starting their writeback as they come so the fsync
 * at install does not wait for all of them; -errno (ENOSPC...) on failure. */
int cache_tmp_write(struct cache_tmp *tmp, const void *data, size_t len);
/* fsync, make read-only, rename into place, record the digest the content
 * was checked against (as it was written), fsync the directory. Consumes tmp whatever the outcome. */
int cache_tmp_install(struct cache *cache, struct cache_tmp *tmp, const struct digest_spec *digest);
/* Removes the temporary; safe on a consumed or zeroed tmp. */
void cache_tmp_discard(struct cache *cache, struct cache_tmp *tmp);

/* Complete files are read-only (0444): an edit is refused before it
 * reaches them, and a change that gets through (root, a chmod) is caught by
 * the record below. */
#define CACHE_COMPLETE_MODE 0444

/* Verification records. A file the store checked has a record beside it,
 * "<hex>.ok" in the blob store (CACHE_BLOB_DIR), ".<name>.ok" elsewhere
 * (CACHE_RECORD_SUFFIX), holding the digest and the file's
 * size, mtime, inode and exact ctime after the store's last change to it,
 * and the coarse-clock moment after which the store trusted it. A record
 * vouches for the file only while all of these match and that ctime is
 * strictly older than that moment (else it is "racy": a change within the
 * same clock tick would keep the ctime). The file itself is never written
 * to record it (an xattr there sets its ctime: older versions' stamps are
 * never trusted). Only a verification writes a record. */
#define CACHE_RECORD_SUFFIX ".ok"
/* The record's path for rel; *out is the caller's. */
int cache_record_rel(const char *rel, char **out);

/* Opens rel read-only (never blocking: a FIFO there is not a file) if it is
 * a regular file of the given size (any with CACHE_SIZE_ANY: a made file's)
 * whose record vouches for it as it is now, for this digest.
 * -ENOENT when absent; -ESTALE when present but not known to be right (it
 * must be hashed, see cache_verify_begin, or replaced). */
int cache_open_verified(struct cache *cache, const char *rel, const struct digest_spec *digest,
			uint64_t size, int *fd_out);
/* Before hashing the file open as fd: fstat into *st, then waits until the
 * coarse clock is past its ctime (a tick at most), so that any change from
 * then on gets a later ctime than *st's. */
int cache_verify_begin(struct cache *cache, int fd, struct stat *st);
/* Writes the record of rel, open as fd, checked to hold digest. since: the
 * fstat from cache_verify_begin before the hash (-ESTALE and no record when
 * the file changed since); NULL when the content was hashed as it was
 * written, and fd's last change was the store's own (a rename, a chmod).
 * Call it after the store's last change to the file. When the record
 * cannot be written (-EROFS, -EACCES, -EPERM, -ENOSPC, -EDQUOT), this
 * process still takes the file as verified, as it is now. */
int cache_mark_verified(struct cache *cache, const char *rel, int fd,
			const struct digest_spec *digest, const struct stat *since);
/* Removes the record of rel (the file went, or is to be hashed again). */
void cache_forget(struct cache *cache, const char *rel);
/* The digest the record of rel names, else an older version's stamp on the
 * file, whether or not the file changed since (for omnihub verify, which
 * hashes it): 0, or -ENODATA when nothing says. */
int cache_record_digest(struct cache *cache, const char *rel, struct digest_spec *out);
/* A planted entry at rel (a symbolic link, directory, FIFO, socket or
 * device where the store keeps a file) is moved aside, whole and untouched,
 * to CACHE_QUARANTINE_DIR/<UTC time>-<pid>-<n>-<rel with '/' as '+'>, with
 * a log line naming it, its kind and where it went: 1 when one was (or it
 * went meanwhile), 0 when rel is a regular file or absent, or -errno (it
 * stays where it is). */
int cache_heal(struct cache *cache, const char *rel);

/* The in-process memo of records (tests): its bound, size, and whether it
 * holds rel. */
void cache_memo_limit(struct cache *cache, size_t max);
size_t cache_memo_count(struct cache *cache);
bool cache_memo_holds(struct cache *cache, const char *rel);

/* A directory on its way into the cache (archive extraction): created empty
 * and hidden; *tmp_rel_out is the caller's. */
int cache_tmpdir_create(struct cache *cache, const char *rel, char **tmp_rel_out);
/* Stamps the finished tree with the digest of what it was made from and
 * renames it into place, replacing an outdated tree there. On failure the
 * temporary tree is removed. */
int cache_tmpdir_install(struct cache *cache, const char *tmp_rel, const char *rel,
			 const struct digest_spec *digest);
/* 0 if rel is a directory staged from content with this digest; -ENOENT if
 * absent; -ESTALE if it was staged from something else. */
int cache_dir_verified(struct cache *cache, const char *rel, const struct digest_spec *digest);
/* The digest a staged directory at rel was made from (its stamp), whatever
 * it holds now (omnihub cache ls and rm: which archive blob it came from):
 * 0, or -ENODATA when it has none. */
int cache_dir_digest(struct cache *cache, const char *rel, struct digest_spec *out);
/* Removes rel, a file or a whole tree, without following a link in it. */
int cache_remove_tree(struct cache *cache, const char *rel);
/* Removes the directories above rel that are left empty (after a failed
 * download), up to the root. */
void cache_prune(struct cache *cache, const char *rel);

/* A directory stream on rel ("" for the root), not following a link; NULL
 * with errno set. */
DIR *cache_opendir(struct cache *cache, const char *rel);

/* Removes the temporaries left by processes that died (outside blobs/),
 * with a log line each; returns how many. */
unsigned cache_sweep_temporaries(struct cache *cache);
/* Whether name, in directory dir_rel, is such a temporary. Its name says
 * which machine (host, PID namespace and boot) and process made it: one of
 * ours whose process is gone is left over; another machine's (a cache
 * shared over NFS) only once it is CACHE_FOREIGN_TEMP_SECONDS old, since
 * its process cannot be asked. */
#define CACHE_FOREIGN_TEMP_SECONDS 3600
bool cache_is_orphan_temporary(struct cache *cache, const char *dir_rel, const char *name);

/* Small whole files (indexes): read refuses more than max bytes (-EFBIG),
 * never blocks, and removes a planted entry (not a regular file) there,
 * with a log line, answering -ENOENT as if absent;
 * data is NUL-terminated and the caller's. write replaces atomically. */
int cache_read_small(struct cache *cache, const char *rel, size_t max, char **data, size_t *len,
		     time_t *mtime);
int cache_write_small(struct cache *cache, const char *rel, const void *data, size_t len);
/* The same without fsync, for state the next step can rebuild. */
int cache_write_small_nosync(struct cache *cache, const char *rel, const void *data, size_t len);

#endif
