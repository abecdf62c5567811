/* blob.c: the content-addressed store under the cache: complete blobs named
 * by their digest, partial blobs with the sidecar that lets any process
 * resume them, the locks that make one process their writer and pin open
 * blobs, links into the readable tree, the start-up sweep and eviction.
 * Not for: fetching (transfer.c) or hub names (hubs). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "log.h"

/* Uses remembered by this process, for eviction order (atime alone moves
 * at most once a day under relatime). */
#define USE_BUCKETS 1024
/* The running total of the store's bytes is counted from its directories
 * again after this long. */
#define USED_RECOUNT_SECONDS 60

struct use {
	char name[sizeof(BLOB_DIR) + 16 + DIGEST_HEX_MAX]; /* "<dir>/<name>" */
	struct timespec when;
	struct use *next;
};

struct blob_store {
	struct cache *cache; /* borrowed */
	_Atomic uint64_t cache_max; /* a reload may change it (blob_store_set_max) */
	/* Lock order: evict_lock, then uses_lock, then the cache's memo lock.
	 * evict_lock serialises eviction, gc and removal, which read
	 * directories and remove files under it; cache-hit opens never take
	 * it. uses_lock guards uses, used and used_known, and is held for
	 * memory only (no file I/O): cache-hit opens take it (touch). */
	pthread_mutex_t evict_lock;
	pthread_mutex_t uses_lock;
	struct use *uses[USE_BUCKETS]; /* owns the entries */
	uint64_t used;   /* bytes in the store, kept as blobs come and go */
	bool used_known; /* false until a scan counted them, and after gc */
	time_t counted;  /* when a scan last counted them (CLOCK_MONOTONIC) */
};

int blob_store_open(struct blob_store **out, struct cache *cache, uint64_t cache_max)
{
	struct blob_store *store = calloc(1, sizeof(*store));

	*out = NULL;
	if (!store)
		return -ENOMEM;
	store->cache = cache;
	store->cache_max = cache_max;
	pthread_mutex_init(&store->evict_lock, NULL);
	pthread_mutex_init(&store->uses_lock, NULL);
	*out = store;
	return 0;
}

void blob_store_close(struct blob_store *store)
{
	if (!store)
		return;
	for (size_t i = 0; i < USE_BUCKETS; i++) {
		struct use *u = store->uses[i];
		while (u) {
			struct use *next = u->next;
			free(u);
			u = next;
		}
	}
	pthread_mutex_destroy(&store->evict_lock);
	pthread_mutex_destroy(&store->uses_lock);
	free(store);
}

/* The directory of the store a blob is in: its algorithm's, or one for
 * blobs named by a key (see struct digest_spec). */
#define KEYED_DIR "keyed"
static const char *const blob_dirs[] = { "sha256", "sha1", "git-sha1", "md5", "adler32",
					 KEYED_DIR };

static const char *dir_of(const struct digest_spec *digest)
{
	return digest->key[0] ? KEYED_DIR : digest_algo_name(digest->algo);
}

static const char *name_of(const struct digest_spec *digest)
{
	return digest->key[0] ? digest->key : digest->hex;
}

int blob_rel(const struct digest_spec *digest, const char *suffix, char **out)
{
	if (asprintf(out, BLOB_DIR "/%s/%s%s", dir_of(digest), name_of(digest), suffix) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* An open-file-description lock on the whole file: it belongs to the open
 * file, not the process, so two opens in one process conflict like two
 * processes do, and it goes through NFS's lock manager. */
static int ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static bool lock_busy(int rc)
{
	return rc == -EAGAIN || rc == -EACCES;
}

static int mkdirs(struct blob_store *store, const struct digest_spec *digest)
{
	char dir[64];

	snprintf(dir, sizeof(dir), BLOB_DIR "/%s", dir_of(digest));
	return cache_mkdirs(store->cache, dir);
}

static size_t use_bucket(const char *name)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % USE_BUCKETS);
}

void blob_store_touch(struct blob_store *store, const struct digest_spec *digest)
{
	char name[sizeof(((struct use *)0)->name)];
	struct use *u;
	size_t b;

	snprintf(name, sizeof(name), "%s/%s", dir_of(digest), name_of(digest));
	b = use_bucket(name);
	pthread_mutex_lock(&store->uses_lock);
	for (u = store->uses[b]; u; u = u->next)
		if (strcmp(u->name, name) == 0)
			break;
	if (!u && (u = calloc(1, sizeof(*u))) != NULL) {
		snprintf(u->name, sizeof(u->name), "%s", name);
		u->next = store->uses[b];
		store->uses[b] = u;
	}
	if (u)
		clock_gettime(CLOCK_REALTIME, &u->when);
	pthread_mutex_unlock(&store->uses_lock);
}

/* Last use of a blob ("<dir>/<name>"): this process's memory, else the
 * file's atime. */
static struct timespec last_use_locked(struct blob_store *store, const char *name,
				       const struct stat *st)
{
	for (struct use *u = store->uses[use_bucket(name)]; u; u = u->next)
		if (strcmp(u->name, name) == 0 && u->when.tv_sec >= st->st_atim.tv_sec)
			return u->when;
	return st->st_atim;
}

int blob_open(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
	      int *fd_out)
{
	char *rel = NULL;
	int rc = blob_rel(digest, "", &rel);

	*fd_out = -1;
	if (rc)
		return rc;
	rc = cache_open_verified(store->cache, rel, digest, size, fd_out);
	if (rc == 0 && lock_busy(ofd_lock(*fd_out, F_RDLCK))) {
		/* Being evicted right now: as good as gone. */
		close(*fd_out);
		*fd_out = -1;
		rc = -ENOENT;
	}
	if (rc == 0)
		blob_store_touch(store, digest);
	free(rel);
	return rc;
}

/* How many times blob_check hashes a blob that keeps changing under it. */
#define BLOB_CHECK_TRIES 3

int blob_check(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
	       const char *label, int *fd_out)
{
	char actual[DIGEST_HEX_MAX];
	char *rel = NULL;
	struct stat st;
	int fd = -1, rc;

	*fd_out = -1;
	rc = blob_rel(digest, "", &rel);
	if (rc)
		return rc;
	/* A link, FIFO, directory... planted there: moved aside, fetched again. */
	if (cache_heal(store->cache, rel) > 0) {
		rc = -ENOENT;
		goto out;
	}
	fd = cache_openat(store->cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0) {
		rc = -ENOENT; /* gone, or replaced meanwhile: the download replaces it */
		goto out;
	}
	/* Hashed again when it changed while it was hashed: a link made to it
	 * meanwhile (blob_link, the readable name) changes its ctime as a
	 * write would, and only a hash tells them apart. */
	for (int tries = 0; tries < BLOB_CHECK_TRIES; tries++) {
		rc = -ENOENT;
		if (cache_verify_begin(store->cache, fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size != size)
			goto bad;
		rc = digest_fd(fd, digest->algo, size, actual);
		if (rc) {
			log_error("%s: cannot read %s/%s to hash it: %s", label,
				  cache_root(store->cache), rel, strerror(-rc));
			goto out;
		}
		if (!digest_spec_matches(digest, actual))
			goto bad;
		/* Records it only if it did not change while it was hashed. */
		rc = cache_mark_verified(store->cache, rel, fd, digest, &st);
		if (rc != -ESTALE)
			break;
	}
	if (rc == -ESTALE)
		log_error("%s: %s/%s changed each time it was hashed (%d times): not served",
			  label, cache_root(store->cache), rel, BLOB_CHECK_TRIES);
	else if (rc == -EROFS || rc == -EACCES || rc == -EPERM || rc == -ENOSPC || rc == -EDQUOT) {
		/* A read-only or full cache: the blob is right and did not change
		 * while it was hashed, so it is served; the process's memo vouches
		 * for it, and the next process hashes it again. */
		log_warn("%s: %s/%s is verified, but its record cannot be written (%s): served, "
			 "and hashed again by the next mount",
			 label, cache_root(store->cache), rel, strerror(-rc));
		rc = 0;
	} else if (rc) {
		log_error("%s: cannot record that %s/%s is verified: %s", label,
			  cache_root(store->cache), rel, strerror(-rc));
	}
	if (rc == 0 && lock_busy(ofd_lock(fd, F_RDLCK)))
		rc = -ENOENT;
	if (rc == 0) {
		log_info("%s: found in the cache, %s verified", label,
			 digest_algo_name(digest->algo));
		*fd_out = fd;
		fd = -1;
	}
	goto out;
bad:
	rc = cache_unlink(store->cache, rel, 0);
	cache_forget(store->cache, rel);
	if (rc && rc != -ENOENT) {
		/* Left there, it would stop the download that replaces it. */
		log_error("%s: the cached %s/%s is not what the index says (changed by hand or "
			  "on disk), and cannot be removed: %s",
			  label, cache_root(store->cache), rel, strerror(-rc));
		goto out;
	}
	log_warn("%s: the cached %s/%s is not what the index says (changed by hand or on "
		 "disk): removed, fetching it again",
		 label, cache_root(store->cache), rel);
	rc = -ENOENT;
out:
	if (fd >= 0)
		close(fd);
	free(rel);
	return rc;
}

void blob_link(struct blob_store *store, const struct digest_spec *digest, const char *rel)
{
	char *blob = NULL, tmp[PATH_MAX];
	struct stat have, want;
	int fd = -1, rc;

	if (blob_rel(digest, "", &blob) != 0)
		return;
	if (cache_lstat(store->cache, blob, &want) != 0)
		goto out;
	if (cache_lstat(store->cache, rel, &have) == 0 && have.st_ino == want.st_ino &&
	    have.st_dev == want.st_dev)
		goto out; /* already the blob */
	/* Only a blob its record vouches for is linked, and the record is
	 * renewed after the link (which changes the blob's ctime) only then. */
	if (cache_open_verified(store->cache, blob, digest, (uint64_t)want.st_size, &fd) != 0)
		goto out;
	cache_heal(store->cache, rel); /* a directory planted at the name */
	/* A temporary link renamed over the name: never a moment without it. */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct cache_tmp probe;
		/* cache_tmp_create makes the parent directories and a unique
		 * name; we only want the name. */
		rc = cache_tmp_create(store->cache, rel, &probe);
		if (rc)
			goto fail;
		snprintf(tmp, sizeof(tmp), "%s", probe.tmp_rel);
		cache_tmp_discard(store->cache, &probe);
		rc = cache_link(store->cache, blob, tmp);
		if (rc == 0)
			break;
		if (rc != -EEXIST && rc != -ENOENT)
			goto fail;
	}
	if (rc)
		goto fail;
	rc = cache_rename(store->cache, tmp, rel, 0);
	if (rc) {
		cache_unlink(store->cache, tmp, 0);
		goto fail;
	}
	cache_unlink(store->cache, tmp, 0); /* rename leaves both if they were one file */
	/* The link changed the blob's ctime: record it again. */
	cache_mark_verified(store->cache, blob, fd, digest, NULL);
	goto out;
fail:
	log_warn("cache: cannot link %s/%s to its blob: %s (served from the blob)",
	         cache_root(store->cache), rel, strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	free(blob);
}

/* ---- partial blobs ---- */

static int read_state(struct blob_store *store, const char *state_rel, struct sidecar *out,
		      char *why, size_t why_size)
{
	char *text = NULL;
	size_t len = 0;
	time_t mtime;
	int rc = cache_read_small(store->cache, state_rel, SIDECAR_MAX_BYTES, &text, &len, &mtime);

	if (rc) {
		snprintf(why, why_size, "%s", strerror(-rc));
		return rc;
	}
	rc = sidecar_parse(text, len, out, why, why_size);
	free(text);
	return rc;
}

/* Sizes a partial blob to size bytes, all of them reserved on disk where
 * the filesystem can (fallocate), so a full disk says so before any byte is
 * fetched; without fallocate (EOPNOTSUPP) it is sparse. */
static int reserve(int fd, uint64_t size)
{
	int rc = 0;

	if (ftruncate(fd, 0) != 0)
		return -errno;
	if (size > 0 && fallocate(fd, 0, 0, (off_t)size) != 0) {
		rc = -errno;
		if (rc == -EOPNOTSUPP || rc == -ENOSYS)
			rc = ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
		else
			(void)!ftruncate(fd, 0); /* give back what was reserved */
	}
	return rc;
}

/* A fresh state, no piece present; the file it is for (the sidecar's path)
 * stays: starting the bytes over does not change whose they are. */
static int state_reinit(struct blob_partial *p, const char *url, const char *validator,
			uint64_t size, uint64_t piece_size)
{
	char *path = p->state.path;
	int rc;

	p->state.path = NULL;
	sidecar_free(&p->state);
	rc = sidecar_init(&p->state, url, validator, size, piece_size);
	if (rc == 0)
		p->state.path = path;
	else
		free(path);
	return rc;
}

/* The writer's view after taking the lock: the saved state if it fits the
 * data file and this blob, else a fresh start. */
static int load_or_reset(struct blob_store *store, struct blob_partial *p, uint64_t size,
			 uint64_t piece_size, const char *url)
{
	struct sidecar saved = { 0 };
	char why[256];
	struct stat st;
	int rc;

	if (fstat(p->fd, &st) != 0)
		return -errno;
	rc = read_state(store, p->state_rel, &saved, why, sizeof(why));
	if (rc == 0 && saved.size == size && (uint64_t)st.st_size == size) {
		/* Resume: the URL may have changed (a mirror); the bytes are
		 * named by their digest, and checked at the end. */
		sidecar_free(&p->state);
		p->state = saved;
		if (p->state.pieces.count > 0)
			log_info("cache: resuming %s/%s: %zu of %zu pieces present",
				 cache_root(store->cache), p->rel, p->state.pieces.count,
				 p->state.pieces.nbits);
		return 0;
	}
	if (rc == 0 || rc != -ENOENT)
		log_warn("cache: %s/%s cannot be resumed (%s): starting over",
			 cache_root(store->cache), p->state_rel,
			 rc ? why : "its size does not match");
	sidecar_free(&saved);
	rc = state_reinit(p, url, "", size, piece_size);
	if (rc)
		return rc;
	rc = reserve(p->fd, size);
	if (rc == -ENOSPC)
		log_error("cache: no room for %s/%s (%" PRIu64 " bytes): not fetching it",
			  cache_root(store->cache), p->rel, size);
	return rc ? rc : blob_partial_save(store, p);
}

static bool same_file(struct blob_store *store, int fd, const char *rel)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && cache_lstat(store->cache, rel, &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* Whether an existing file may be written by the store: a regular file of
 * its owner with no other name (a hard link would carry the writes to a file
 * outside the cache). */
static bool ours_to_write(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_uid == geteuid();
}

/* The partial at rel open read-write: created fresh, or an existing one to
 * resume if it is ours_to_write. A planted one is moved aside, a hard link or
 * another user's file unlinked (-EAGAIN: try again). A descriptor, or
 * -errno. */
static int open_partial(struct blob_store *store, const char *rel)
{
	struct stat st, got;
	int fd = cache_openat(store->cache, rel, O_RDWR | O_CREAT | O_EXCL, 0644);

	if (fd != -EEXIST)
		return fd;
	if (cache_lstat(store->cache, rel, &st) != 0)
		return -EAGAIN; /* gone meanwhile (completed, or removed) */
	if (ours_to_write(&st)) {
		fd = cache_openat(store->cache, rel, O_RDWR | O_NONBLOCK, 0);
		if (fd == -ENOENT || fd == -ELOOP)
			return -EAGAIN; /* replaced meanwhile: look again */
		if (fd < 0)
			return fd;
		if (fstat(fd, &got) == 0 && ours_to_write(&got) && got.st_ino == st.st_ino &&
		    got.st_dev == st.st_dev)
			return fd;
		close(fd);
		return -EAGAIN;
	}
	if (!S_ISREG(st.st_mode)) {
		/* A link, FIFO, directory... may be a person's: moved aside
		 * (cache_heal logs it), never deleted. */
		int rc = cache_heal(store->cache, rel);
		return rc < 0 ? rc : -EAGAIN;
	}
	log_warn("cache: %s/%s is %s: removed, never written", cache_root(store->cache), rel,
		 st.st_nlink != 1 ? "a file with another name (a hard link)"
				  : "another user's file");
	cache_unlink(store->cache, rel, 0); /* a name only: the file lives on elsewhere */
	return -EAGAIN;
}

int blob_partial_open(struct blob_store *store, const struct digest_spec *digest, uint64_t size,
		      uint64_t piece_size, const char *url, struct blob_partial *out)
{
	char *blob = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->digest = *digest;
	if (store->cache_max && size > store->cache_max) {
		/* Keeping it would break the limit, or evict the whole store. */
		log_error("cache: a file of %" PRIu64 " bytes is larger than cache_max (%" PRIu64
			  " bytes): not fetching it (ENOSPC)",
			  size, store->cache_max);
		return -ENOSPC;
	}
	rc = mkdirs(store, digest);
	if (rc == 0)
		rc = blob_rel(digest, ".partial", &out->rel);
	if (rc == 0)
		rc = blob_rel(digest, ".state", &out->state_rel);
	if (rc == 0)
		rc = blob_rel(digest, "", &blob);
	if (rc)
		goto out;
	for (int attempt = 0; attempt < 16; attempt++) {
		struct stat st;
		/* A planted entry at the blob's name is moved aside: fetched again. */
		cache_heal(store->cache, blob);
		if (cache_lstat(store->cache, blob, &st) == 0) {
			rc = -EEXIST;
			goto out;
		}
		rc = open_partial(store, out->rel);
		if (rc == -EAGAIN)
			continue; /* a planted one, removed */
		if (rc < 0)
			goto out;
		out->fd = rc;
		rc = ofd_lock(out->fd, F_WRLCK);
		if (rc == 0 && !same_file(store, out->fd, out->rel)) {
			/* Completed or removed between our open and our lock. */
			close(out->fd);
			out->fd = -1;
			continue;
		}
		if (rc == 0) {
			out->writer = true;
			rc = load_or_reset(store, out, size, piece_size, url);
			goto out;
		}
		if (!lock_busy(rc))
			goto out;
		/* Another process writes it: follow its sidecar. */
		rc = sidecar_init(&out->state, url, "", size, piece_size);
		if (rc == 0)
			blob_partial_follow(store, out);
		goto out;
	}
	rc = -EAGAIN;
out:
	if (rc == -ENOSPC && out->writer)
		blob_partial_discard(store, out); /* nothing left behind */
	if (rc)
		blob_partial_close(out);
	free(blob);
	return rc;
}

bool blob_partial_follow(struct blob_store *store, struct blob_partial *p)
{
	struct sidecar saved = { 0 };
	char why[256];

	if (!p->writer && ofd_lock(p->fd, F_WRLCK) == 0) {
		if (same_file(store, p->fd, p->rel)) {
			uint64_t size = p->state.size, piece_size = p->state.piece_size;
			char *url = strdup(p->state.url);
			int rc = url ? 0 : -ENOMEM;
			p->writer = true;
			if (rc == 0)
				rc = load_or_reset(store, p, size, piece_size, url);
			free(url);
			if (rc == 0) {
				log_info("cache: %s/%s: the process writing it has gone: taking over",
					 cache_root(store->cache), p->rel);
				return true;
			}
			p->writer = false;
		}
		/* Completed and renamed (or removed): let go of the old file. */
		ofd_lock(p->fd, F_UNLCK);
		return false;
	}
	if (p->writer)
		return false;
	if (read_state(store, p->state_rel, &saved, why, sizeof(why)) == 0 &&
	    saved.size == p->state.size && saved.piece_size == p->state.piece_size) {
		sidecar_free(&p->state);
		p->state = saved;
	} else {
		sidecar_free(&saved);
	}
	return false;
}

int blob_partial_save(struct blob_store *store, struct blob_partial *p)
{
	char *text = NULL;
	size_t len = 0;
	int rc = sidecar_format(&p->state, &text, &len);

	/* No fsync: the digest at the end catches pieces a power loss took;
	 * a crash of the process alone loses nothing written. */
	if (rc == 0)
		rc = cache_write_small_nosync(store->cache, p->state_rel, text, len);
	/* Completed meanwhile by another thread (its rename comes before its
	 * removal of the sidecar): this sidecar would outlive its data. */
	if (rc == 0 && !same_file(store, p->fd, p->rel))
		cache_unlink(store->cache, p->state_rel, 0);
	free(text);
	return rc;
}

int blob_partial_restart(struct blob_store *store, struct blob_partial *p, const char *validator)
{
	uint64_t size = p->state.size, piece_size = p->state.piece_size;
	char *url = strdup(p->state.url);
	int rc = url ? 0 : -ENOMEM;

	if (rc == 0)
		rc = state_reinit(p, url, validator, size, piece_size);
	free(url);
	if (rc == 0)
		rc = reserve(p->fd, size);
	if (rc == 0)
		rc = blob_partial_save(store, p);
	return rc;
}

int blob_partial_complete(struct blob_store *store, struct blob_partial *p)
{
	char *blob = NULL;
	int rc = blob_rel(&p->digest, "", &blob);

	if (rc)
		return rc;
	/* Read-only from now on (see CACHE_COMPLETE_MODE). */
	if (fsync(p->fd) != 0 || fchmod(p->fd, CACHE_COMPLETE_MODE) != 0) {
		rc = -errno;
		goto out;
	}
	rc = cache_rename(store->cache, p->rel, blob, 0);
	if (rc)
		goto out;
	cache_unlink(store->cache, p->state_rel, 0);
	/* After the store's last change to it (the rename). */
	rc = cache_mark_verified(store->cache, blob, p->fd, &p->digest, NULL);
	/* Pinned while this process serves it, like any open blob. */
	ofd_lock(p->fd, F_RDLCK);
	p->writer = false;
	blob_store_touch(store, &p->digest);
out:
	free(blob);
	return rc;
}

void blob_partial_discard(struct blob_store *store, struct blob_partial *p)
{
	if (!p->writer)
		return;
	cache_unlink(store->cache, p->rel, 0);
	cache_unlink(store->cache, p->state_rel, 0);
}

void blob_partial_release(struct blob_partial *p)
{
	if (p->writer)
		ofd_lock(p->fd, F_UNLCK);
	p->writer = false;
}

void blob_partial_close(struct blob_partial *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->writer = false;
	sidecar_free(&p->state);
	free(p->rel);
	free(p->state_rel);
	p->rel = p->state_rel = NULL;
}

/* ---- the start-up sweep ---- */

static bool has_suffix(const char *name, const char *suffix, size_t *stem_len)
{
	size_t n = strlen(name), m = strlen(suffix);

	if (n <= m || strcmp(name + n - m, suffix) != 0)
		return false;
	*stem_len = n - m;
	return true;
}

static void drop(struct blob_store *store, const char *rel, const char *why)
{
	struct stat st;
	int rc;

	/* What the store never makes (a link, FIFO, directory...) may be a
	 * person's: moved aside, with cache_heal's log line, never deleted. */
	if (cache_lstat(store->cache, rel, &st) == 0 && !S_ISREG(st.st_mode)) {
		cache_heal(store->cache, rel);
	} else {
		rc = cache_unlink(store->cache, rel, 0);
		if (rc == 0 || rc == -ENOENT)
			log_info("cache: removed %s/%s: %s", cache_root(store->cache), rel, why);
		else
			log_warn("cache: cannot remove %s/%s (%s): %s", cache_root(store->cache),
			         rel, why, strerror(-rc));
	}
}

/* A .partial and its .state, seen with no process writing them. */
static void sweep_partial(struct blob_store *store, const char *dir, const char *stem)
{
	char rel[PATH_MAX], state_rel[PATH_MAX], why[256];
	struct sidecar state = { 0 };
	struct stat st;
	int fd, rc;

	snprintf(rel, sizeof(rel), "%s/%s.partial", dir, stem);
	snprintf(state_rel, sizeof(state_rel), "%s/%s.state", dir, stem);
	if (cache_lstat(store->cache, rel, &st) != 0)
		return;
	if (!ours_to_write(&st)) {
		drop(store, rel, "not a file the cache may write (a link, or another user's)");
		return;
	}
	fd = cache_openat(store->cache, rel, O_RDWR | O_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (lock_busy(ofd_lock(fd, F_WRLCK)))
		goto out; /* another process is writing it */
	rc = read_state(store, state_rel, &state, why, sizeof(why));
	if (rc == -ENOENT) {
		drop(store, rel, "partial data without its sidecar");
	} else if (rc) {
		drop(store, rel, "its sidecar is unreadable");
		drop(store, state_rel, why);
	} else if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != state.size) {
		drop(store, rel, "its size does not match its sidecar");
		drop(store, state_rel, "its data file does not match it");
	} else {
		log_info("cache: keeping %s/%s for resumption (%zu of %zu pieces)",
			 cache_root(store->cache), rel, state.pieces.count, state.pieces.nbits);
	}
out:
	sidecar_free(&state);
	close(fd); /* releases the lock */
}

static void sweep_algo_dir(struct blob_store *store, const char *dir)
{
	struct dirent *d;
	DIR *stream;

	stream = cache_opendir(store->cache, dir);
	if (!stream)
		return;
	while ((d = readdir(stream)) != NULL) {
		char stem[NAME_MAX + 1], other[PATH_MAX], rel[PATH_MAX];
		struct stat st;
		size_t n;

		snprintf(rel, sizeof(rel), "%s/%s", dir, d->d_name);
		if (d->d_name[0] == '.') {
			/* A temporary: ".<hex>.state.<pid>-XXXXXX.tmp" and the like. */
			if (cache_is_orphan_temporary(store->cache, dir, d->d_name))
				drop(store, rel, "a leftover temporary");
			continue;
		}
		if (has_suffix(d->d_name, ".partial", &n)) {
			snprintf(stem, sizeof(stem), "%.*s", (int)n, d->d_name);
			sweep_partial(store, dir, stem);
		} else if (has_suffix(d->d_name, ".state", &n)) {
			snprintf(other, sizeof(other), "%s/%.*s.partial", dir, (int)n, d->d_name);
			if (cache_lstat(store->cache, other, &st) != 0)
				drop(store, rel, "a sidecar without partial data");
		} else if (has_suffix(d->d_name, CACHE_RECORD_SUFFIX, &n)) {
			snprintf(other, sizeof(other), "%s/%.*s", dir, (int)n, d->d_name);
			if (cache_lstat(store->cache, other, &st) != 0)
				drop(store, rel, "a verification record without its blob");
		}
		/* A link, FIFO... at a blob's name stays for omnihub verify to
		 * report; an open moves it aside (blob_check). */
	}
	closedir(stream);
}

void blob_store_sweep(struct blob_store *store)
{
	char dir[64];

	for (size_t i = 0; i < sizeof(blob_dirs) / sizeof(blob_dirs[0]); i++) {
		snprintf(dir, sizeof(dir), BLOB_DIR "/%s", blob_dirs[i]);
		sweep_algo_dir(store, dir);
	}
	cache_sweep_temporaries(store->cache);
}

/* ---- eviction ---- */

static int compare_use(const void *a, const void *b)
{
	const struct blob_info *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
	return 0;
}

/* Removes every name in the readable tree that is a link to (dev, ino). */
static void unlink_tree_names(struct blob_store *store, const char *rel, dev_t dev, ino_t ino,
			      unsigned depth)
{
	struct dirent *d;
	DIR *stream;

	if (depth > 64)
		return;
	stream = cache_opendir(store->cache, rel);
	if (!stream)
		return;
	while ((d = readdir(stream)) != NULL) {
		char child[PATH_MAX];
		struct stat st;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 ||
		    (depth == 0 && (strcmp(d->d_name, BLOB_DIR) == 0 ||
				    strcmp(d->d_name, CACHE_INDEX_DIR) == 0 ||
				    strcmp(d->d_name, CACHE_QUARANTINE_DIR) == 0)))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", d->d_name) >=
		    (int)sizeof(child))
			continue;
		if (d->d_type == DT_DIR) {
			unlink_tree_names(store, child, dev, ino, depth + 1);
		} else if ((d->d_type == DT_REG || d->d_type == DT_UNKNOWN) &&
		           cache_lstat(store->cache, child, &st) == 0 && st.st_ino == ino &&
		           st.st_dev == dev) {
			cache_unlink(store->cache, child, 0);
		}
	}
	closedir(stream);
}

/* The blob at rel open read-write, for the write lock that says nobody has
 * it open. Complete blobs are read-only (0444): a store not run as root
 * makes it writable for that, and read-only again if it stays. */
static int open_to_evict(struct blob_store *store, const char *rel)
{
	int fd = cache_openat(store->cache, rel, O_RDWR | O_NONBLOCK, 0), ro;

	if (fd != -EACCES)
		return fd;
	ro = cache_openat(store->cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (ro < 0)
		return ro;
	if (fchmod(ro, 0644) == 0) {
		fd = cache_openat(store->cache, rel, O_RDWR | O_NONBLOCK, 0);
		if (fd >= 0 && lock_busy(ofd_lock(fd, F_WRLCK))) {
			/* Open in a reader: stays. Its record goes stale (the
			 * chmod): hashed again at its next open. */
			fchmod(ro, CACHE_COMPLETE_MODE);
			ofd_lock(fd, F_UNLCK);
		}
	}
	close(ro);
	return fd;
}

/* The file at rel (a complete blob, or a .partial when !complete) open
 * read-write under the write lock that says no process has it open: a
 * complete blob's readers hold shared locks, a partial's writer the write
 * lock. Holding it keeps a new reader or writer from starting until the
 * file is gone. Taken under evict_lock (blob.h's lock order). 0 with
 * *fd_out the caller's (closing it releases the lock), or -EBUSY, -ENOENT
 * (it went, or another file took its name), -errno, with *fd_out -1. */
static int lock_to_remove(struct blob_store *store, const char *rel, bool complete, int *fd_out)
{
	int fd, rc;

	*fd_out = -1;
	fd = complete ? open_to_evict(store, rel)
		      : cache_openat(store->cache, rel, O_RDWR | O_NONBLOCK, 0);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	rc = ofd_lock(fd, F_WRLCK);
	if (lock_busy(rc))
		rc = -EBUSY;
	else if (rc == 0 && !same_file(store, fd, rel))
		rc = -ENOENT;
	if (rc)
		close(fd);
	else
		*fd_out = fd;
out:
	return rc;
}

/* Removes one blob unless it is pinned: 0, -EBUSY, or -ENOENT. why ends
 * the log line ("least recently used"). */
static int evict(struct blob_store *store, const struct blob_info *v, bool dry_run,
		 const char *why)
{
	char rel[PATH_MAX];
	int fd, rc;

	snprintf(rel, sizeof(rel), BLOB_DIR "/%s", v->name);
	if (v->planted) {
		/* Not a blob: nobody has it open as one. */
		rc = dry_run ? 0 : cache_heal(store->cache, rel);
		return rc < 0 ? rc : 0;
	}
	rc = lock_to_remove(store, rel, true, &fd);
	if (rc == 0 && !dry_run) {
		unlink_tree_names(store, "", v->dev, v->ino, 0);
		rc = cache_unlink(store->cache, rel, 0);
		cache_forget(store->cache, rel);
		if (rc == 0)
			log_info("cache: evicted %s/%s (%" PRIu64 " bytes, %s)",
				 cache_root(store->cache), rel, v->size, why);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Calls fn for every entry of one directory of the store (not its
 * temporaries and records), with its name and lstat. */
static void scan_blob_dir(struct blob_store *store, const char *dir_name,
			  void (*fn)(void *ctx, const char *name, const struct stat *st), void *ctx)
{
	char dir[64];
	struct dirent *d;
	DIR *stream;
	int fd;

	snprintf(dir, sizeof(dir), BLOB_DIR "/%s", dir_name);
	stream = cache_opendir(store->cache, dir);
	if (!stream)
		return;
	fd = dirfd(stream);
	while ((d = readdir(stream)) != NULL) {
		struct stat st;

		if (d->d_name[0] != '.' && fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			fn(ctx, d->d_name, &st);
	}
	closedir(stream);
}

struct victims {
	struct blob_store *store;
	const char *dir_name;
	struct blob_info *list;
	size_t count, cap;
	bool with_planted; /* list planted entries too (verify) */
	uint64_t used; /* every byte of the store, partial blobs too */
};

/* scan_blob_dir's fn: a complete blob becomes a victim. */
static void add_victim(void *ctx, const char *name, const struct stat *st)
{
	struct victims *all = ctx;
	struct blob_info *v;
	size_t n;

	if (!S_ISREG(st->st_mode) && !all->with_planted)
		return;
	/* Records are the store's bookkeeping, not its bytes. */
	if (S_ISREG(st->st_mode) && !has_suffix(name, CACHE_RECORD_SUFFIX, &n))
		all->used += (uint64_t)st->st_size;
	if (has_suffix(name, ".partial", &n) || has_suffix(name, ".state", &n) ||
	    has_suffix(name, CACHE_RECORD_SUFFIX, &n) || strlen(name) >= DIGEST_HEX_MAX)
		return;
	if (all->count == all->cap) {
		size_t grown_cap = all->cap ? 2 * all->cap : 64;
		struct blob_info *grown = realloc(all->list, grown_cap * sizeof(*grown));
		if (!grown)
			return;
		all->list = grown;
		all->cap = grown_cap;
	}
	v = &all->list[all->count++];
	snprintf(v->name, sizeof(v->name), "%s/%s", all->dir_name, name);
	v->size = (uint64_t)st->st_size;
	pthread_mutex_lock(&all->store->uses_lock);
	v->used = last_use_locked(all->store, v->name, st);
	pthread_mutex_unlock(&all->store->uses_lock);
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->planted = !S_ISREG(st->st_mode);
}

/* Every complete blob, least recently used first, with evict_lock held;
 * *used counts every byte of the store (partial blobs too). */
static int collect_all_locked(struct blob_store *store, struct blob_info **out, size_t *count,
			      uint64_t *used, bool with_planted)
{
	struct victims all = { .store = store, .with_planted = with_planted };

	for (size_t i = 0; i < sizeof(blob_dirs) / sizeof(blob_dirs[0]); i++) {
		all.dir_name = blob_dirs[i];
		scan_blob_dir(store, blob_dirs[i], add_victim, &all);
	}
	if (all.count)
		qsort(all.list, all.count, sizeof(*all.list), compare_use);
	*out = all.list;
	*count = all.count;
	*used = all.used;
	return 0;
}

void blob_store_make_room(struct blob_store *store, uint64_t need)
{
	struct blob_info *victims = NULL;
	struct timespec now;
	size_t count = 0;
	uint64_t used = 0;
	bool fits;

	/* A blob larger than the limit evicts nothing for its own sake:
	 * blob_partial_open refuses it. */
	if (store->cache_max == 0 || need > store->cache_max)
		return;
	pthread_mutex_lock(&store->evict_lock);
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&store->uses_lock);
	/* Counted again now and then: other processes sharing the cache add
	 * blobs this total does not see. */
	fits = store->used_known && now.tv_sec - store->counted < USED_RECOUNT_SECONDS &&
	       store->used + need <= store->cache_max;
	if (fits)
		store->used += need; /* the running total: no scan */
	pthread_mutex_unlock(&store->uses_lock);
	if (fits)
		goto out;
	collect_all_locked(store, &victims, &count, &used, false);
	for (size_t i = 0; i < count && used + need > store->cache_max; i++)
		if (evict(store, &victims[i], false, "least recently used") == 0)
			used -= victims[i].size;
	if (used + need > store->cache_max)
		log_warn("cache: %" PRIu64 " bytes in use and %" PRIu64
			 " more needed, over cache_max (%" PRIu64 "): the rest is in use",
			 used, need, store->cache_max);
	pthread_mutex_lock(&store->uses_lock);
	store->used = used + need;
	store->used_known = true;
	store->counted = now.tv_sec;
	pthread_mutex_unlock(&store->uses_lock);
out:
	pthread_mutex_unlock(&store->evict_lock);
	free(victims);
}

/* After gc or a removal by request: counted again at the next need. */
static void used_unknown(struct blob_store *store)
{
	pthread_mutex_lock(&store->uses_lock);
	store->used_known = false;
	pthread_mutex_unlock(&store->uses_lock);
}

int blob_store_list(struct blob_store *store, struct blob_info **out, size_t *count)
{
	uint64_t used;
	int rc;

	pthread_mutex_lock(&store->evict_lock);
	rc = collect_all_locked(store, out, count, &used, true);
	pthread_mutex_unlock(&store->evict_lock);
	return rc;
}

int blob_store_remove(struct blob_store *store, const struct blob_info *blob, bool dry_run)
{
	int rc;

	pthread_mutex_lock(&store->evict_lock);
	rc = evict(store, blob, dry_run, "removed on request");
	pthread_mutex_unlock(&store->evict_lock);
	used_unknown(store);
	return rc;
}

static void fill_info(struct blob_store *store, struct blob_info *info, const char *name,
		      const struct stat *st)
{
	snprintf(info->name, sizeof(info->name), "%s", name);
	info->size = (uint64_t)st->st_size;
	pthread_mutex_lock(&store->uses_lock);
	info->used = last_use_locked(store, info->name, st);
	pthread_mutex_unlock(&store->uses_lock);
	info->dev = st->st_dev;
	info->ino = st->st_ino;
	info->planted = !S_ISREG(st->st_mode);
}

int blob_store_find(struct blob_store *store, const struct digest_spec *digest,
		    struct blob_info *out)
{
	char name[sizeof(out->name)], rel[PATH_MAX];
	struct stat st;

	memset(out, 0, sizeof(*out));
	snprintf(name, sizeof(name), "%s/%s", dir_of(digest), name_of(digest));
	snprintf(rel, sizeof(rel), BLOB_DIR "/%s", name);
	if (cache_lstat(store->cache, rel, &st) != 0)
		return -ENOENT;
	fill_info(store, out, name, &st);
	return 0;
}

int blob_expected_digest(struct blob_store *store, const struct blob_info *blob,
			 struct digest_spec *out)
{
	static const enum digest_algo algos[] = { DIGEST_SHA256, DIGEST_SHA1, DIGEST_GIT_BLOB_SHA1,
						  DIGEST_MD5, DIGEST_ADLER32 };
	const char *slash = strchr(blob->name, '/');
	char rel[PATH_MAX];
	size_t dir_len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!slash)
		return -ENODATA;
	dir_len = (size_t)(slash - blob->name);
	if (dir_len == strlen(KEYED_DIR) && strncmp(blob->name, KEYED_DIR, dir_len) == 0) {
		/* The name is a key over the source: only the stamp knows. */
		snprintf(rel, sizeof(rel), BLOB_DIR "/%s", blob->name);
		rc = cache_record_digest(store->cache, rel, out);
		if (rc == 0 && strcmp(out->key, slash + 1) != 0)
			rc = -ENODATA;
		return rc;
	}
	for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
		const char *dir = digest_algo_name(algos[i]);
		if (strlen(dir) == dir_len && strncmp(blob->name, dir, dir_len) == 0)
			return digest_spec_set(out, algos[i], slash + 1) == 0 ? 0 : -ENODATA;
	}
	return -ENODATA;
}

int blob_rehash(struct blob_store *store, const struct blob_info *blob,
		const struct digest_spec *expected, char actual[DIGEST_HEX_MAX])
{
	char rel[PATH_MAX];
	struct stat st;
	int fd, rc;

	actual[0] = '\0';
	if (blob->planted)
		return -EBADMSG;
	snprintf(rel, sizeof(rel), BLOB_DIR "/%s", blob->name);
	fd = cache_openat(store->cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ELOOP)
		return -EBADMSG; /* replaced by a link meanwhile */
	if (fd < 0)
		return fd;
	/* Pinned while read: not evicted under us; busy means being evicted. */
	rc = ofd_lock(fd, F_RDLCK);
	if (lock_busy(rc))
		rc = -ENOENT;
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EBADMSG;
	if (rc == 0)
		rc = digest_fd(fd, expected->algo, (uint64_t)st.st_size, actual);
	if (rc == 0 && !digest_spec_matches(expected, actual))
		rc = -EBADMSG;
	close(fd);
	return rc;
}

int blob_store_gc(struct blob_store *store, const struct blob_gc *gc, uint64_t *freed,
		  uint64_t *left)
{
	struct blob_info *blobs = NULL;
	size_t count = 0;
	uint64_t used = 0;

	*freed = 0;
	pthread_mutex_lock(&store->evict_lock);
	collect_all_locked(store, &blobs, &count, &used, false);
	for (size_t i = 0; i < count; i++) {
		struct blob_info *b = &blobs[i];
		bool old = gc->unused_before && b->used.tv_sec <= gc->unused_before;
		int rc;

		if (!old && used <= gc->max)
			continue;
		rc = evict(store, b, gc->dry_run, old ? "unused for long" : "over the limit");
		if (rc == -ENOENT)
			continue; /* gone meanwhile */
		if (rc == 0) {
			used -= b->size;
			*freed += b->size;
		}
		if (gc->report)
			gc->report(gc->ctx, b, rc);
	}
	pthread_mutex_unlock(&store->evict_lock);
	used_unknown(store);
	free(blobs);
	*left = used;
	return 0;
}

/* ---- removal by name (omnihub cache rm) ---- */

int blob_store_unname(struct blob_store *store, const struct blob_info *blob,
		      char *const *names, size_t count, bool dry_run, bool *blob_gone)
{
	struct digest_spec digest;
	char rel[PATH_MAX];
	size_t ours = 0;
	bool vouched = false;
	struct stat st;
	int fd = -1, vfd = -1, rc;

	*blob_gone = false;
	if (blob->planted)
		return -EINVAL;
	snprintf(rel, sizeof(rel), BLOB_DIR "/%s", blob->name);
	pthread_mutex_lock(&store->evict_lock);
	/* Whether its record vouches for it now: unlinking a name changes its
	 * ctime, after which the record is written again (as blob_link does). */
	if (blob_expected_digest(store, blob, &digest) == 0 &&
	    cache_open_verified(store->cache, rel, &digest, blob->size, &vfd) == 0)
		vouched = true;
	rc = lock_to_remove(store, rel, true, &fd);
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (rc)
		goto out;
	for (size_t i = 0; i < count; i++) {
		struct stat name_st;
		if (cache_lstat(store->cache, names[i], &name_st) == 0 &&
		    name_st.st_ino == st.st_ino && name_st.st_dev == st.st_dev)
			ours++;
	}
	/* The blob's own name is one link; any link beyond it and ours is a
	 * name something else still uses. */
	*blob_gone = st.st_nlink <= 1 + ours;
	if (!dry_run) {
		for (size_t i = 0; i < count; i++) {
			struct stat name_st;
			if (cache_lstat(store->cache, names[i], &name_st) == 0 &&
			    name_st.st_ino == st.st_ino && name_st.st_dev == st.st_dev)
				cache_unlink(store->cache, names[i], 0);
		}
		if (*blob_gone) {
			rc = cache_unlink(store->cache, rel, 0);
			cache_forget(store->cache, rel);
			if (rc == 0)
				log_info("cache: removed %s/%s (%" PRIu64 " bytes, removed on request)",
					 cache_root(store->cache), rel, blob->size);
			goto out;
		}
	}
	/* It stays: read-only again (open_to_evict may have made it
	 * writable), and its record renewed after the store's own change. */
	if ((st.st_mode & 07777) != CACHE_COMPLETE_MODE)
		fchmod(fd, CACHE_COMPLETE_MODE);
	if (vouched && !dry_run)
		cache_mark_verified(store->cache, rel, fd, &digest, NULL);
out:
	if (fd >= 0)
		close(fd);
	if (vfd >= 0)
		close(vfd);
	pthread_mutex_unlock(&store->evict_lock);
	used_unknown(store);
	return rc;
}

/* ---- partial blobs as omnihub cache ls sees them ---- */

struct partial_scan {
	struct blob_store *store;
	const char *dir_name;
	struct blob_partial_info *list;
	size_t count, cap;
	int rc;
};

/* scan_blob_dir's fn: a .partial becomes an entry. */
static void add_partial(void *ctx, const char *name, const struct stat *st)
{
	struct partial_scan *scan = ctx;
	struct blob_partial_info *p;
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	char rel[PATH_MAX], why[128];
	struct sidecar sc = { 0 };
	size_t stem;
	int fd;

	if (!S_ISREG(st->st_mode) || !has_suffix(name, ".partial", &stem) || scan->rc)
		return;
	if (scan->count == scan->cap) {
		size_t cap = scan->cap ? 2 * scan->cap : 16;
		struct blob_partial_info *grown = realloc(scan->list, cap * sizeof(*grown));
		if (!grown) {
			scan->rc = -ENOMEM;
			return;
		}
		scan->list = grown;
		scan->cap = cap;
	}
	p = &scan->list[scan->count++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s/%.*s", scan->dir_name, (int)stem, name);
	snprintf(rel, sizeof(rel), BLOB_DIR "/%s.state", p->name);
	if (read_state(scan->store, rel, &sc, why, sizeof(why)) == 0) {
		/* The pieces its sidecar has: what a resume keeps (the file's
		 * blocks say nothing: it is reserved whole at the start). */
		for (size_t i = 0; i < sc.pieces.nbits; i++) {
			uint64_t at = (uint64_t)i * sc.piece_size;
			if (bitmap_get(&sc.pieces, i))
				p->bytes += sc.size - at < sc.piece_size ? sc.size - at : sc.piece_size;
		}
		p->url = strdup(sc.url);
		p->path = sc.path; /* taken: NULL when the sidecar has none */
		sc.path = NULL;
		p->size = sc.size;
		sidecar_free(&sc);
	}
	/* Its writer holds a write lock (a follower only reads): asked
	 * without taking any. */
	snprintf(rel, sizeof(rel), BLOB_DIR "/%s.partial", p->name);
	fd = cache_openat(scan->store->cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd >= 0) {
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			p->in_progress = true;
		close(fd);
	}
}

int blob_store_partials(struct blob_store *store, struct blob_partial_info **out, size_t *count)
{
	struct partial_scan scan = { .store = store };

	for (size_t i = 0; i < sizeof(blob_dirs) / sizeof(blob_dirs[0]); i++) {
		scan.dir_name = blob_dirs[i];
		scan_blob_dir(store, blob_dirs[i], add_partial, &scan);
	}
	if (scan.rc) {
		blob_partial_infos_free(scan.list, scan.count);
		scan.list = NULL;
		scan.count = 0;
	}
	*out = scan.list;
	*count = scan.count;
	return scan.rc;
}

int blob_store_remove_partial(struct blob_store *store, const char *name, bool dry_run)
{
	char rel[PATH_MAX], state_rel[PATH_MAX];
	int fd, rc;

	snprintf(rel, sizeof(rel), BLOB_DIR "/%s.partial", name);
	snprintf(state_rel, sizeof(state_rel), BLOB_DIR "/%s.state", name);
	pthread_mutex_lock(&store->evict_lock);
	rc = lock_to_remove(store, rel, false, &fd);
	if (rc == 0 && !dry_run) {
		cache_unlink(store->cache, state_rel, 0);
		rc = cache_unlink(store->cache, rel, 0);
		if (rc == 0)
			log_info("cache: removed %s/%s (left over, removed on request)",
				 cache_root(store->cache), rel);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&store->evict_lock);
	return rc;
}

void blob_partial_infos_free(struct blob_partial_info *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(list[i].url);
		free(list[i].path);
	}
	free(list);
}

/* ---- use ---- */

/* scan_blob_dir's fn: counts a complete or a partial blob. */
static void add_usage(void *ctx, const char *name, const struct stat *st)
{
	struct blob_usage *usage = ctx;
	size_t n;

	if (!S_ISREG(st->st_mode))
		return;
	if (has_suffix(name, ".partial", &n)) {
		/* Sparse while it fills: the blocks say what is there. */
		usage->partial_bytes += (uint64_t)st->st_blocks * 512;
		usage->partials++;
	} else if (!has_suffix(name, ".state", &n) && !has_suffix(name, CACHE_RECORD_SUFFIX, &n)) {
		usage->bytes += (uint64_t)st->st_size;
		usage->blobs++;
	}
}

void blob_store_set_max(struct blob_store *store, uint64_t cache_max)
{
	store->cache_max = cache_max;
}

void blob_store_usage(struct blob_store *store, struct blob_usage *usage)
{
	memset(usage, 0, sizeof(*usage));
	usage->max = store->cache_max;
	for (size_t i = 0; i < sizeof(blob_dirs) / sizeof(blob_dirs[0]); i++)
		scan_blob_dir(store, blob_dirs[i], add_usage, usage);
}
