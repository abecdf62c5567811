/* cache.c: the backing store: a plain directory tree a person can read, with
 * files that appear under their final names only once complete and verified.
 * Not for: deciding what to fetch (download.c) or how paths are named (hubs). */
#include "build_config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "full_io.h"
#include "log.h"
#include "names.h"

/* Older versions' stamp on the file itself: read only to learn which
 * digest to hash a keyed blob against, never trusted (see records below);
 * staged trees still carry it (a directory's content is not hashed). */
#define STAMP_XATTR "user.omnihub.digest"
#define MEMO_BUCKETS 4096
/* Deleted roots whose descriptors are kept until cache_close (a thread may
 * still use one); past this many, the oldest are kept open for good. */
#define RETIRED_MAX 16
/* At most this many records remembered; the least recently used go. */
#define MEMO_MAX 16384
/* Start writeback of a temporary every this many bytes. */
#define WRITEBACK_CHUNK (8u << 20)

/* A record this process wrote or read (see "verification records"), so a
 * cache hit need not read the record file again. */
struct memo {
	char *rel;
	struct stat st;   /* the file as the record vouches for it */
	int64_t written;  /* the record's moment; st's ctime must be older */
	struct digest_spec digest;
	struct memo *next;           /* in its bucket */
	struct memo *newer, *older;  /* in the use order */
};

struct cache {
	char *root;   /* absolute; owned */
	/* Owned; replaced (atomically, under root_lock) when the directory
	 * is deleted under us and made again: read it with root_fd_of(). */
	int root_fd;
	pthread_mutex_t root_lock; /* serialises remaking the root; taken first */
	int retired[RETIRED_MAX];  /* owned: descriptors of deleted roots, which
				      other threads may still hold */
	size_t nretired;
	/* Set once openat2 is missing (ENOSYS), or by a test; read and
	 * written with atomic builtins, from any thread. */
	int walk_only;
	pthread_mutex_t memo_lock; /* guards memo to memo_max; taken last */
	struct memo *memo[MEMO_BUCKETS]; /* owns the entries */
	struct memo *memo_newest, *memo_oldest;
	size_t memo_count, memo_max;
	char maker[9]; /* this machine, PID namespace and boot, in temporaries'
			  names: whose pids they carry */
	/* Entries moved aside so far, in their quarantine names; atomic
	 * builtins, from any thread. */
	unsigned long quarantined;
};

/* Eight hex digits naming where a pid means something: the host name, the
 * PID namespace and the boot (FNV-1a of the three). */
static void maker_tag(char out[9])
{
	char text[512] = "", host[256] = "", ns[64] = "", boot[64] = "";
	uint32_t hash = 2166136261u;
	ssize_t n;
	int fd;

	gethostname(host, sizeof(host) - 1);
	n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, boot, sizeof(boot) - 1);
		boot[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	snprintf(text, sizeof(text), "%s\n%s\n%s", host, ns, boot);
	for (const char *p = text; *p; p++)
		hash = (hash ^ (unsigned char)*p) * 16777619u;
	snprintf(out, 9, "%08x", hash);
}

/* Only for the root itself: its path is the user's, links and all. */
static int mkdirs_at(int dirfd, const char *rel)
{
	char path[PATH_MAX];
	size_t len = strlen(rel);

	if (len == 0)
		return 0;
	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, rel, len + 1);
	for (char *p = path + 1;; p++) {
		if ((*p == '/' && p[-1] != '/') || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdirat(dirfd, path, 0755) != 0 && errno != EEXIST)
				return -errno;
			*p = saved;
			if (saved == '\0')
				return 0;
		}
	}
}

int cache_open(struct cache **out, const char *root, const char **why)
{
	struct cache *cache = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	*why = "out of memory";
	cache = calloc(1, sizeof(*cache));
	if (!cache)
		goto out;
	cache->root_fd = -1;
	pthread_mutex_init(&cache->memo_lock, NULL);
	pthread_mutex_init(&cache->root_lock, NULL);
	cache->memo_max = MEMO_MAX;
	maker_tag(cache->maker);
	if (root[0] != '/') {
		*why = "the cache directory must be an absolute path";
		rc = -EINVAL;
		goto out;
	}
	rc = mkdirs_at(AT_FDCWD, root);
	if (rc) {
		*why = strerror(-rc);
		goto out;
	}
	cache->root = realpath(root, NULL);
	if (!cache->root) {
		rc = -errno;
		*why = strerror(errno);
		goto out;
	}
	cache->root_fd = open(cache->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cache->root_fd < 0) {
		rc = -errno;
		*why = strerror(errno);
		goto out;
	}
	if (faccessat(cache->root_fd, ".", W_OK, AT_EACCESS) != 0) {
		rc = -errno;
		*why = "the cache directory is not writable";
		goto out;
	}
	*out = cache;
	cache = NULL;
	*why = NULL;
	rc = 0;
out:
	cache_close(cache);
	return rc;
}

static void memo_remove_locked(struct cache *cache, struct memo *m);

void cache_close(struct cache *cache)
{
	if (!cache)
		return;
	while (cache->memo_oldest)
		memo_remove_locked(cache, cache->memo_oldest);
	pthread_mutex_destroy(&cache->memo_lock);
	pthread_mutex_destroy(&cache->root_lock);
	for (size_t i = 0; i < cache->nretired; i++)
		close(cache->retired[i]);
	if (cache->root_fd >= 0)
		close(cache->root_fd);
	free(cache->root);
	free(cache);
}

const char *cache_root(const struct cache *cache)
{
	return cache->root;
}

static int root_fd_of(const struct cache *cache)
{
	return __atomic_load_n(&cache->root_fd, __ATOMIC_ACQUIRE);
}

int cache_root_fd(const struct cache *cache)
{
	return root_fd_of(cache);
}

/* When the root the caller used (before) was deleted (its descriptor has
 * no link left), makes it again and opens that: true if the root is another
 * one now, so the caller may try again. */
static bool revive(struct cache *cache, int before)
{
	struct stat st;
	bool revived = false;
	int fd;

	pthread_mutex_lock(&cache->root_lock);
	if (root_fd_of(cache) != before) {
		revived = true; /* made again by another thread meanwhile */
		goto out;
	}
	if (fstat(before, &st) != 0 || st.st_nlink != 0)
		goto out; /* not deleted: an ordinary ENOENT */
	if (mkdirs_at(AT_FDCWD, cache->root) != 0)
		goto out;
	fd = open(cache->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (cache->nretired < RETIRED_MAX)
		cache->retired[cache->nretired++] = root_fd_of(cache);
	__atomic_store_n(&cache->root_fd, fd, __ATOMIC_RELEASE);
	log_warn("cache: %s was deleted while in use: made again (what it held is fetched "
		 "again)",
		 cache->root);
	revived = true;
out:
	pthread_mutex_unlock(&cache->root_lock);
	return revived;
}

/* Splits rel into its directory (possibly "") and its last component. */
static int split_rel(const char *rel, char *dir, size_t dir_size, const char **base)
{
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;

	if (n >= dir_size)
		return -ENAMETOOLONG;
	memcpy(dir, rel, n);
	dir[n] = '\0';
	*base = slash ? slash + 1 : rel;
	return 0;
}

/* ---- paths beneath the root ----
 * Every relative path the cache is handed is checked, and opened without
 * following a symbolic link in any component: a link planted in the cache
 * (by a person, another program, or a name from the network) must never
 * send a write, or a read, outside the tree. */

int cache_check_rel(const char *rel)
{
	char component[NAME_MAX + 2], shown[160];
	const char *why = NULL, *start = rel;
	size_t len = strlen(rel);

	if (len == 0)
		why = "empty path";
	else if (rel[0] == '/')
		why = "absolute path";
	else if (len >= PATH_MAX)
		why = "path too long";
	while (!why) {
		const char *slash = strchr(start, '/');
		size_t n = slash ? (size_t)(slash - start) : strlen(start);

		/* One byte over NAME_MAX is enough for the check to refuse. */
		if (n > NAME_MAX)
			n = NAME_MAX + 1;
		memcpy(component, start, n);
		component[n] = '\0';
		if (names_check_component(component, &why) != 0 || !slash)
			break;
		start = slash + 1;
	}
	if (!why)
		return 0;
	log_warn("cache: refusing the path \"%s\": %s", names_for_log(rel, shown, sizeof(shown)),
	         why);
	return -EINVAL;
}

void cache_resolve_by_walking(struct cache *cache)
{
	__atomic_store_n(&cache->walk_only, 1, __ATOMIC_RELAXED);
}

/* What went wrong opening name in dirfd: a symbolic link in the way is
 * named in the log and given as -ELOOP, whatever the kernel said (ENOTDIR
 * when O_DIRECTORY met it). shown is the path up to name. */
static int refused(struct cache *cache, int dirfd, const char *name, const char *shown, int rc)
{
	struct stat st;

	if ((rc == -ELOOP || rc == -ENOTDIR) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
		log_warn("cache: %s/%s is a symbolic link: not following it", cache->root, shown);
		rc = -ELOOP;
	}
	return rc;
}

/* Opens rel (checked) one component at a time, each directory with
 * O_NOFOLLOW: what openat2 does in one call, for kernels and sandboxes
 * (seccomp) without it. O_NOFOLLOW applies to the last component too. */
static int walk_beneath(struct cache *cache, const char *rel, int flags, mode_t mode)
{
	char path[PATH_MAX];
	char *name = path, *slash;
	const int root_fd = root_fd_of(cache);
	int dirfd = root_fd, fd;

	snprintf(path, sizeof(path), "%s", rel);
	while ((slash = strchr(name, '/')) != NULL) {
		*slash = '\0';
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fd = refused(cache, dirfd, name, path, -errno);
		if (dirfd != root_fd)
			close(dirfd);
		if (fd < 0)
			return fd;
		dirfd = fd;
		*slash = '/';
		name = slash + 1;
	}
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		fd = refused(cache, dirfd, name, path, -errno);
	if (dirfd != root_fd)
		close(dirfd);
	return fd;
}

/* Opens rel (checked) beneath the root: openat2 refuses a link anywhere
 * (RESOLVE_NO_SYMLINKS) and any way out (RESOLVE_BENEATH). A refusal is
 * walked again by hand, which names the link in the log. */
static int open_beneath_once(struct cache *cache, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	long fd;

	if (__atomic_load_n(&cache->walk_only, __ATOMIC_RELAXED))
		return walk_beneath(cache, rel, flags, mode);
	fd = syscall(SYS_openat2, root_fd_of(cache), rel, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	switch (errno) {
	case ENOSYS: /* before Linux 5.6 */
		__atomic_store_n(&cache->walk_only, 1, __ATOMIC_RELAXED);
		return walk_beneath(cache, rel, flags, mode);
	case EPERM: /* a seccomp filter that does not know openat2 */
	case ELOOP:
	case EXDEV:
	case ENOTDIR:
		return walk_beneath(cache, rel, flags, mode);
	default:
		return -errno;
	}
}

/* open_beneath_once, again once the root is made again if it was deleted. */
static int open_beneath(struct cache *cache, const char *rel, int flags, mode_t mode)
{
	int before = root_fd_of(cache);
	int fd = open_beneath_once(cache, rel, flags, mode);

	if (fd == -ENOENT && revive(cache, before))
		fd = open_beneath_once(cache, rel, flags, mode);
	return fd;
}

int cache_openat(struct cache *cache, const char *rel, int flags, mode_t mode)
{
	int rc = cache_check_rel(rel);

	return rc ? rc : open_beneath(cache, rel, flags, mode);
}

/* The directory that holds rel's last component, as a path descriptor the
 * caller closes, and that component in *base (pointing into rel). */
static int open_parent(struct cache *cache, const char *rel, const char **base)
{
	char dir[PATH_MAX];
	int rc = cache_check_rel(rel);

	if (rc == 0)
		rc = split_rel(rel, dir, sizeof(dir), base);
	if (rc)
		return rc;
	if (dir[0] == '\0') {
		int fd = fcntl(root_fd_of(cache), F_DUPFD_CLOEXEC, 0);
		return fd >= 0 ? fd : -errno;
	}
	return open_beneath(cache, dir, O_PATH | O_DIRECTORY, 0);
}

int cache_lstat(struct cache *cache, const char *rel, struct stat *st)
{
	const char *base;
	int fd = open_parent(cache, rel, &base), rc;

	if (fd < 0)
		return fd;
	rc = fstatat(fd, base, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

ssize_t cache_readlink(struct cache *cache, const char *rel, char *buf, size_t size)
{
	const char *base;
	int fd = open_parent(cache, rel, &base);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = size > 1 ? readlinkat(fd, base, buf, size - 1) : 0;
	if (n < 0)
		n = -errno;
	else if ((size_t)n + 1 >= size)
		n = -ENAMETOOLONG; /* maybe cut short */
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

int cache_mkdir(struct cache *cache, const char *rel, mode_t mode)
{
	const char *base;
	int fd = open_parent(cache, rel, &base), rc;

	if (fd < 0)
		return fd;
	rc = mkdirat(fd, base, mode) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int cache_mkdirs(struct cache *cache, const char *rel)
{
	char path[PATH_MAX];
	char *name = path, *slash;
	int root_fd, dirfd, fd, rc;

	if (rel[0] == '\0')
		return 0;
	rc = cache_check_rel(rel);
	if (rc)
		return rc;
	/* Most often it is there already: one call. */
	fd = open_beneath(cache, rel, O_PATH | O_DIRECTORY, 0);
	if (fd >= 0 || fd != -ENOENT) {
		if (fd >= 0)
			close(fd);
		return fd >= 0 ? 0 : fd;
	}
	snprintf(path, sizeof(path), "%s", rel);
	root_fd = root_fd_of(cache);
	dirfd = root_fd;
	for (;;) {
		slash = strchr(name, '/');
		if (slash)
			*slash = '\0';
		if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
			fd = -errno;
		else if ((fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		         0)
			fd = refused(cache, dirfd, name, path, -errno);
		if (dirfd != root_fd)
			close(dirfd);
		if (fd < 0 || !slash)
			break;
		dirfd = fd;
		*slash = '/';
		name = slash + 1;
	}
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : fd;
}

int cache_rename(struct cache *cache, const char *from, const char *to, unsigned flags)
{
	const char *from_base, *to_base;
	int from_fd = open_parent(cache, from, &from_base), to_fd = -1, rc;

	if (from_fd < 0)
		return from_fd;
	to_fd = open_parent(cache, to, &to_base);
	if (to_fd < 0) {
		rc = to_fd;
		goto out;
	}
	rc = renameat2(from_fd, from_base, to_fd, to_base, flags) == 0 ? 0 : -errno;
out:
	if (to_fd >= 0)
		close(to_fd);
	close(from_fd);
	return rc;
}

int cache_link(struct cache *cache, const char *from, const char *to)
{
	const char *from_base, *to_base;
	int from_fd = open_parent(cache, from, &from_base), to_fd = -1, rc;

	if (from_fd < 0)
		return from_fd;
	to_fd = open_parent(cache, to, &to_base);
	if (to_fd < 0) {
		rc = to_fd;
		goto out;
	}
	/* No AT_SYMLINK_FOLLOW: a link in from's place is linked, not its target. */
	rc = linkat(from_fd, from_base, to_fd, to_base, 0) == 0 ? 0 : -errno;
out:
	if (to_fd >= 0)
		close(to_fd);
	close(from_fd);
	return rc;
}

int cache_unlink(struct cache *cache, const char *rel, int flags)
{
	const char *base;
	int fd = open_parent(cache, rel, &base), rc;

	if (fd < 0)
		return fd;
	rc = unlinkat(fd, base, flags) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* A fresh hidden name beside rel: "<dir>/.<base>.<maker>.<pid>-<6
 * random>.tmp"; the maker and pid tell a sweep whether it still runs. The
 * base is cut short so the name stays within NAME_MAX. */
static int temp_name(const struct cache *cache, const char *rel, char **out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	char dir[PATH_MAX];
	unsigned char random_bytes[6];
	char suffix[7];
	const char *base;
	int rc;

	*out = NULL;
	rc = split_rel(rel, dir, sizeof(dir), &base);
	if (rc)
		return rc;
	if (getrandom(random_bytes, sizeof(random_bytes), 0) != (ssize_t)sizeof(random_bytes))
		return -EIO;
	for (size_t i = 0; i < sizeof(random_bytes); i++)
		suffix[i] = alphabet[random_bytes[i] % (sizeof(alphabet) - 1)];
	suffix[6] = '\0';
	if (asprintf(out, "%s%s.%.200s.%s.%ld-%s.tmp", dir, dir[0] ? "/" : "", base, cache->maker,
		     (long)getpid(), suffix) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int ensure_parent(struct cache *cache, const char *rel)
{
	char dir[PATH_MAX];
	const char *base;
	int rc = split_rel(rel, dir, sizeof(dir), &base);

	return rc ? rc : cache_mkdirs(cache, dir);
}

static int fsync_parent(struct cache *cache, const char *rel)
{
	char dir[PATH_MAX];
	const char *base;
	int fd, rc = split_rel(rel, dir, sizeof(dir), &base);

	if (rc)
		return rc;
	if (dir[0] == '\0')
		return fsync(root_fd_of(cache)) == 0 ? 0 : -errno;
	fd = cache_openat(cache, dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int cache_tmp_write(struct cache_tmp *tmp, const void *data, size_t len)
{
	ssize_t n = full_io_write(tmp->fd, data, len);

	if (n < 0)
		return (int)n;
	tmp->written += (uint64_t)n;
	/* Without this a large download leaves gigabytes dirty for the final
	 * fsync, and the kernel throttles writers meanwhile anyway. */
	if (tmp->written - tmp->submitted >= WRITEBACK_CHUNK) {
		sync_file_range(tmp->fd, (off_t)tmp->submitted,
				(off_t)(tmp->written - tmp->submitted), SYNC_FILE_RANGE_WRITE);
		tmp->submitted = tmp->written;
	}
	return 0;
}

int cache_tmp_create(struct cache *cache, const char *rel, struct cache_tmp *out)
{
	int rc;

	*out = (struct cache_tmp){ .fd = -1 };
	rc = cache_check_rel(rel); /* here, so that the log names rel, not a part */
	if (rc)
		return rc;
	out->rel = strdup(rel);
	if (!out->rel)
		return -ENOMEM;
	for (int attempt = 0; attempt < 16; attempt++) {
		/* Again on each attempt: cache_prune() may remove the directory
		 * between our mkdir and our open. */
		rc = ensure_parent(cache, rel);
		if (rc)
			goto out;
		free(out->tmp_rel);
		rc = temp_name(cache, rel, &out->tmp_rel);
		if (rc)
			goto out;
		rc = cache_openat(cache, out->tmp_rel, O_RDWR | O_CREAT | O_EXCL, 0644);
		if (rc >= 0) {
			out->fd = rc;
			rc = 0;
		}
		if (rc != -EEXIST && rc != -ENOENT)
			break;
	}
out:
	if (rc) {
		free(out->rel);
		free(out->tmp_rel);
		out->rel = out->tmp_rel = NULL;
	}
	return rc;
}

void cache_tmp_discard(struct cache *cache, struct cache_tmp *tmp)
{
	if (tmp->fd >= 0)
		close(tmp->fd);
	if (tmp->tmp_rel)
		cache_unlink(cache, tmp->tmp_rel, 0);
	free(tmp->rel);
	free(tmp->tmp_rel);
	tmp->fd = -1;
	tmp->rel = tmp->tmp_rel = NULL;
}

/* ---- verification records ----
 * A record says which digest a file was checked against, and how the file
 * looked (fstat) after the store's last change to it: size, mtime, inode
 * and the exact ctime. It is a small file beside the file, ".<name>.ok",
 * written without touching the file: an xattr on the file itself (what
 * older versions kept) sets the file's ctime as it is written, so a stamp
 * there cannot be told apart from a change made just after it (git's
 * "racily clean" problem). Before a record is trusted-to-be, the store waits
 * until the coarse clock, the one the kernel stamps ctimes with, has passed
 * the ctime it recorded: any change after that gets a later ctime. The
 * record holds that moment; one whose ctime is not strictly older than it
 * is racy and not trusted (the file is hashed again). */
#define RECORD_HEADER "omnihub-record 1"
#define RECORD_MAX_BYTES 1024
/* How long to wait for the coarse clock to pass a ctime; a ctime further
 * ahead (a clock set back) leaves the file without a record: hashed next
 * time. */
#define RECORD_WAIT_NS 200000000LL

static int64_t ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static bool xattrs_unsupported(int err)
{
	return err == ENOTSUP || err == EOPNOTSUPP || err == EPERM;
}

/* What a record vouches for: "<algorithm>:<hex>[@<key>] <size> <mtime>
 * <inode> <ctime>", times in nanoseconds. */
static void format_identity(char *out, size_t out_size, const struct digest_spec *digest,
			    const struct stat *st)
{
	snprintf(out, out_size, "%s:%s%s%s %" PRId64 " %" PRId64 " %" PRIu64 " %" PRId64,
		 digest_algo_name(digest->algo), digest->hex, digest->key[0] ? "@" : "",
		 digest->key, (int64_t)st->st_size, ns_of(&st->st_mtim), (uint64_t)st->st_ino,
		 ns_of(&st->st_ctim));
}

static bool same_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mode == b->st_mode && a->st_nlink == b->st_nlink &&
	       ns_of(&a->st_mtim) == ns_of(&b->st_mtim) && ns_of(&a->st_ctim) == ns_of(&b->st_ctim);
}

int cache_record_rel(const char *rel, char **out)
{
	char dir[PATH_MAX];
	const char *base;
	int rc = split_rel(rel, dir, sizeof(dir), &base);

	*out = NULL;
	if (rc)
		return rc;
	/* In the blob store, "<hex>.ok" beside "<hex>.partial" and "<hex>.state"
	 * (a mirror serves only names of hex digits); elsewhere hidden. */
	if (asprintf(out, "%s%s%s%s" CACHE_RECORD_SUFFIX, dir, dir[0] ? "/" : "",
		     strncmp(rel, CACHE_BLOB_DIR "/", sizeof(CACHE_BLOB_DIR)) == 0 ? "" : ".",
		     base) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- the memo: records this process wrote or read, least recently used
 * dropped first beyond memo_max ---- */

static size_t memo_bucket(const char *rel)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % MEMO_BUCKETS);
}

static void lru_unlink_locked(struct cache *cache, struct memo *m)
{
	if (m->newer)
		m->newer->older = m->older;
	else
		cache->memo_newest = m->older;
	if (m->older)
		m->older->newer = m->newer;
	else
		cache->memo_oldest = m->newer;
	m->newer = m->older = NULL;
}

static void lru_push_locked(struct cache *cache, struct memo *m)
{
	m->older = cache->memo_newest;
	m->newer = NULL;
	if (cache->memo_newest)
		cache->memo_newest->newer = m;
	cache->memo_newest = m;
	if (!cache->memo_oldest)
		cache->memo_oldest = m;
}

static struct memo *memo_find_locked(struct cache *cache, const char *rel)
{
	for (struct memo *m = cache->memo[memo_bucket(rel)]; m; m = m->next)
		if (strcmp(m->rel, rel) == 0)
			return m;
	return NULL;
}

static void memo_remove_locked(struct cache *cache, struct memo *m)
{
	struct memo **link = &cache->memo[memo_bucket(m->rel)];

	while (*link != m)
		link = &(*link)->next;
	*link = m->next;
	lru_unlink_locked(cache, m);
	cache->memo_count--;
	free(m->rel);
	free(m);
}

static void memo_put(struct cache *cache, const char *rel, const struct stat *st,
		     const struct digest_spec *digest, int64_t written)
{
	struct memo *m;

	pthread_mutex_lock(&cache->memo_lock);
	m = memo_find_locked(cache, rel);
	if (m) {
		lru_unlink_locked(cache, m);
	} else {
		m = calloc(1, sizeof(*m));
		if (m && !(m->rel = strdup(rel))) {
			free(m);
			m = NULL;
		}
		if (m) {
			size_t b = memo_bucket(rel);
			m->next = cache->memo[b];
			cache->memo[b] = m;
			cache->memo_count++;
		}
	}
	if (m) { /* on ENOMEM we only forget, and check again next time */
		m->st = *st;
		m->digest = *digest;
		m->written = written;
		lru_push_locked(cache, m);
	}
	while (cache->memo_count > cache->memo_max && cache->memo_oldest)
		memo_remove_locked(cache, cache->memo_oldest);
	pthread_mutex_unlock(&cache->memo_lock);
}

/* Whether this process recorded or read a record for the file as it is
 * now, and the record is not racy. */
static bool memo_has(struct cache *cache, const char *rel, const struct stat *st,
		     const struct digest_spec *digest)
{
	struct memo *m;
	bool found = false;

	pthread_mutex_lock(&cache->memo_lock);
	m = memo_find_locked(cache, rel);
	if (m) {
		found = same_state(&m->st, st) && ns_of(&st->st_ctim) < m->written &&
			digest_spec_same(&m->digest, digest);
		lru_unlink_locked(cache, m);
		lru_push_locked(cache, m);
	}
	pthread_mutex_unlock(&cache->memo_lock);
	return found;
}

static void memo_forget(struct cache *cache, const char *rel)
{
	struct memo *m;

	pthread_mutex_lock(&cache->memo_lock);
	m = memo_find_locked(cache, rel);
	if (m)
		memo_remove_locked(cache, m);
	pthread_mutex_unlock(&cache->memo_lock);
}

void cache_memo_limit(struct cache *cache, size_t max)
{
	pthread_mutex_lock(&cache->memo_lock);
	cache->memo_max = max;
	while (cache->memo_count > cache->memo_max && cache->memo_oldest)
		memo_remove_locked(cache, cache->memo_oldest);
	pthread_mutex_unlock(&cache->memo_lock);
}

size_t cache_memo_count(struct cache *cache)
{
	size_t n;

	pthread_mutex_lock(&cache->memo_lock);
	n = cache->memo_count;
	pthread_mutex_unlock(&cache->memo_lock);
	return n;
}

bool cache_memo_holds(struct cache *cache, const char *rel)
{
	bool held;

	pthread_mutex_lock(&cache->memo_lock);
	held = memo_find_locked(cache, rel) != NULL;
	pthread_mutex_unlock(&cache->memo_lock);
	return held;
}

/* ---- records on disk ---- */

int cache_verify_begin(struct cache *cache, int fd, struct stat *st)
{
	struct timespec now;
	int64_t waited = 0;

	(void)cache;
	if (fstat(fd, st) != 0)
		return -errno;
	/* Past this, any change to the file gets a ctime after st's. */
	for (;;) {
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (ns_of(&now) > ns_of(&st->st_ctim) || waited > RECORD_WAIT_NS)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
		waited += 1000000;
	}
	return 0;
}

int cache_mark_verified(struct cache *cache, const char *rel, int fd,
			const struct digest_spec *digest, const struct stat *since)
{
	char identity[320], text[400], *record = NULL;
	struct timespec now;
	struct stat before, st;
	int rc;

	if (!since) {
		rc = cache_verify_begin(cache, fd, &before);
		if (rc)
			return rc;
		since = &before;
	}
	if (fstat(fd, &st) != 0)
		return -errno;
	/* Changed while it was hashed, or since the caller's last change. */
	if (!same_state(since, &st))
		return -ESTALE;
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	memo_forget(cache, rel);
	if (ns_of(&now) <= ns_of(&st.st_ctim))
		return 0; /* a ctime in the future: no record, hashed next time */
	rc = cache_record_rel(rel, &record);
	if (rc)
		return rc;
	format_identity(identity, sizeof(identity), digest, &st);
	snprintf(text, sizeof(text), RECORD_HEADER "\n%s %" PRId64 "\n", identity, ns_of(&now));
	/* No fsync: a record lost in a power cut only costs a hash. */
	rc = cache_write_small_nosync(cache, record, text, strlen(text));
	/* A cache this process cannot write (read-only, full) keeps the
	 * verification in its memo alone: the next process hashes again. */
	if (rc == 0 || rc == -EROFS || rc == -EACCES || rc == -EPERM || rc == -ENOSPC ||
	    rc == -EDQUOT)
		memo_put(cache, rel, &st, digest, ns_of(&now));
	free(record);
	return rc;
}

/* The record of rel: its text's second line, NUL-terminated in *line (the
 * caller's), or -errno (-ENOENT when there is none). */
static int record_read(struct cache *cache, const char *rel, char **line)
{
	char *record = NULL, *text = NULL, *nl;
	size_t len = 0;
	time_t mtime;
	int rc;

	*line = NULL;
	rc = cache_record_rel(rel, &record);
	if (rc == 0)
		rc = cache_read_small(cache, record, RECORD_MAX_BYTES, &text, &len, &mtime);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (strncmp(text, RECORD_HEADER "\n", sizeof(RECORD_HEADER)) != 0)
		goto out;
	nl = strchr(text + sizeof(RECORD_HEADER), '\n');
	if (!nl || nl[1] != '\0' || strlen(text) != len)
		goto out;
	*nl = '\0';
	*line = strdup(text + sizeof(RECORD_HEADER));
	rc = *line ? 0 : -ENOMEM;
out:
	free(text);
	free(record);
	return rc;
}

/* Whether the record of rel vouches for the file as st shows it now: the
 * same identity, and a ctime strictly older than the moment recorded. */
static bool record_matches(struct cache *cache, const char *rel, const struct digest_spec *digest,
			   const struct stat *st, int64_t *written)
{
	char want[320], *line = NULL, *end;
	bool ok = false;
	size_t n;

	if (record_read(cache, rel, &line) != 0)
		goto out;
	format_identity(want, sizeof(want), digest, st);
	n = strlen(want);
	if (strncmp(line, want, n) != 0 || line[n] != ' ' || !isdigit((unsigned char)line[n + 1]))
		goto out;
	errno = 0;
	*written = strtoll(line + n + 1, &end, 10);
	ok = errno == 0 && *end == '\0' && ns_of(&st->st_ctim) < *written;
out:
	free(line);
	return ok;
}

void cache_forget(struct cache *cache, const char *rel)
{
	char *record = NULL;

	memo_forget(cache, rel);
	if (cache_record_rel(rel, &record) == 0)
		cache_unlink(cache, record, 0);
	free(record);
}

int cache_tmp_install(struct cache *cache, struct cache_tmp *tmp, const struct digest_spec *digest)
{
	struct stat st;
	int rc;

	/* Complete files are read-only: an editor or a stray write is refused
	 * before it reaches them (a record would catch it anyway). Not a file
	 * that is another's too (a client's copy hard-linked in): that one's
	 * mode is not ours to change. */
	if (fsync(tmp->fd) != 0 || fstat(tmp->fd, &st) != 0 ||
	    (st.st_nlink == 1 && fchmod(tmp->fd, CACHE_COMPLETE_MODE) != 0)) {
		rc = -errno;
		goto out;
	}
	rc = cache_rename(cache, tmp->tmp_rel, tmp->rel, 0);
	if (rc)
		goto out;
	free(tmp->tmp_rel);
	tmp->tmp_rel = NULL; /* renamed: nothing left to remove */
	/* After the rename, which sets the ctime the record must match. */
	rc = cache_mark_verified(cache, tmp->rel, tmp->fd, digest, NULL);
	if (rc == 0)
		rc = fsync_parent(cache, tmp->rel);
out:
	cache_tmp_discard(cache, tmp);
	return rc;
}

static const char *planted_kind(const struct stat *st)
{
	return S_ISLNK(st->st_mode)    ? "a symbolic link"
	       : S_ISDIR(st->st_mode)  ? "a directory"
	       : S_ISFIFO(st->st_mode) ? "a FIFO"
	       : S_ISSOCK(st->st_mode) ? "a socket"
	       : S_ISCHR(st->st_mode)  ? "a character device"
	       : S_ISBLK(st->st_mode)  ? "a block device"
				       : "an entry of unknown kind";
}

/* A fresh name in the quarantine for rel: "<UTC time>-<pid>-<n>-<rel with
 * '/' as '+'>". One '/' only (after the folder) and never "." or "..", so
 * it cannot leave the folder; the time, pid and count keep it apart from
 * any other (and the rename refuses to replace one that is there). A rel
 * too long for NAME_MAX keeps its end, the part that names the file. */
static void quarantine_name(struct cache *cache, const char *rel, char *out, size_t size)
{
	char prefix[64], stamp[32];
	size_t len = strlen(rel), room;
	unsigned long n = __atomic_fetch_add(&cache->quarantined, 1, __ATOMIC_RELAXED);
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	snprintf(prefix, sizeof(prefix), "%s-%ld-%lu-", stamp, (long)getpid(), n);
	room = NAME_MAX - strlen(prefix);
	if (len > room)
		rel += len - room;
	snprintf(out, size, CACHE_QUARANTINE_DIR "/%s%s", prefix, rel);
	for (char *p = out + sizeof(CACHE_QUARANTINE_DIR); *p; p++)
		if (*p == '/')
			*p = '+';
}

/* A planted entry where a file of ours should be: moved aside whole (a
 * person may have put it there: a directory's files are theirs), never
 * following a link, with a log line naming it, its kind and where it went. */
static int move_aside(struct cache *cache, const char *rel, const struct stat *st)
{
	char to[sizeof(CACHE_QUARANTINE_DIR) + NAME_MAX + 1];
	int rc = cache_mkdirs(cache, CACHE_QUARANTINE_DIR);

	/* A name taken (by another process's entry) is tried again with the
	 * next count, never replaced. */
	for (int attempt = 0; rc == 0 && attempt < 8; attempt++) {
		quarantine_name(cache, rel, to, sizeof(to));
		rc = cache_rename(cache, rel, to, RENAME_NOREPLACE);
		if (rc != -EEXIST)
			break;
	}
	if (rc == 0)
		log_warn("cache: %s/%s is not a file the cache made (%s): moved aside to %s/%s",
			 cache->root, rel, planted_kind(st), cache->root, to);
	else if (rc != -ENOENT)
		log_warn("cache: %s/%s is not a file the cache made (%s), and cannot be moved "
			 "aside to %s/" CACHE_QUARANTINE_DIR ": %s",
			 cache->root, rel, planted_kind(st), cache->root, strerror(-rc));
	return rc;
}

int cache_heal(struct cache *cache, const char *rel)
{
	struct stat st;
	int rc = cache_lstat(cache, rel, &st);

	if (rc)
		return rc == -ENOENT ? 0 : rc;
	if (S_ISREG(st.st_mode))
		return 0;
	rc = move_aside(cache, rel, &st);
	cache_forget(cache, rel);
	/* -ENOENT: it went meanwhile, which is as good. */
	return rc == 0 || rc == -ENOENT ? 1 : rc;
}

int cache_open_verified(struct cache *cache, const char *rel, const struct digest_spec *digest,
			uint64_t size, int *fd_out)
{
	struct stat st;
	int64_t written;
	int fd, rc;

	*fd_out = -1;
	/* Not blocking on a FIFO planted there; a link or a socket (open gives
	 * ENXIO) at rel itself is stale: the download moves it aside. */
	fd = cache_openat(cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return fd == -ENOENT || fd == -ENOTDIR ? -ENOENT
		       : fd == -ELOOP || fd == -ENXIO  ? -ESTALE
						       : fd;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	rc = -ESTALE;
	if (!S_ISREG(st.st_mode) || (size != CACHE_SIZE_ANY && (uint64_t)st.st_size != size))
		goto out;
	if (memo_has(cache, rel, &st, digest)) {
		rc = 0;
		goto out;
	}
	/* An old xattr stamp is never read here: such a file is hashed. */
	if (record_matches(cache, rel, digest, &st, &written)) {
		memo_put(cache, rel, &st, digest, written);
		rc = 0;
	}
out:
	if (rc == 0)
		*fd_out = fd;
	else
		close(fd);
	return rc;
}

/* "<algorithm>:<hex>[@<key>]" at the start of text (cut there) into out. */
static int parse_digest_text(char *text, struct digest_spec *out)
{
	static const enum digest_algo algos[] = { DIGEST_SHA256, DIGEST_SHA1, DIGEST_MD5,
						  DIGEST_GIT_BLOB_SHA1, DIGEST_ADLER32 };
	enum digest_algo algo = DIGEST_NONE;
	char *colon, *at, *end;
	const char *key = "";
	int rc;

	memset(out, 0, sizeof(*out));
	end = strchr(text, ' ');
	colon = strchr(text, ':');
	if (!end || !colon || colon > end)
		return -ENODATA;
	*end = '\0';
	*colon = '\0';
	at = strchr(colon + 1, '@');
	if (at) {
		*at = '\0';
		key = at + 1;
	}
	for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
		if (strcmp(text, digest_algo_name(algos[i])) == 0)
			algo = algos[i];
	if (algo == DIGEST_NONE || strlen(key) >= sizeof(out->key))
		return -ENODATA;
	if (colon[1] == '\0') {
		digest_spec_set_none(out, algo);
		rc = 0;
	} else {
		rc = digest_spec_set_prefix(out, algo, colon + 1);
	}
	if (rc)
		return -ENODATA;
	snprintf(out->key, sizeof(out->key), "%s", key);
	return 0;
}

int cache_record_digest(struct cache *cache, const char *rel, struct digest_spec *out)
{
	char stamp[320], *line = NULL;
	ssize_t n;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (record_read(cache, rel, &line) == 0) {
		rc = parse_digest_text(line, out);
		free(line);
		if (rc == 0)
			return 0;
	}
	/* An older version's stamp names the digest just as well: the caller
	 * hashes the file against it, never trusts it. */
	fd = cache_openat(cache, rel, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return -ENODATA;
	n = fgetxattr(fd, STAMP_XATTR, stamp, sizeof(stamp) - 1);
	close(fd);
	if (n <= 0)
		return -ENODATA;
	stamp[n] = '\0';
	return parse_digest_text(stamp, out);
}

int cache_tmpdir_create(struct cache *cache, const char *rel, char **tmp_rel_out)
{
	char *tmp_rel = NULL;
	int rc;

	*tmp_rel_out = NULL;
	rc = cache_check_rel(rel);
	if (rc)
		return rc;
	for (int attempt = 0; attempt < 16; attempt++) {
		rc = ensure_parent(cache, rel); /* again each time: see cache_tmp_create */
		if (rc)
			break;
		free(tmp_rel);
		tmp_rel = NULL;
		rc = temp_name(cache, rel, &tmp_rel);
		if (rc)
			break;
		rc = cache_mkdir(cache, tmp_rel, 0755);
		if (rc != -EEXIST && rc != -ENOENT)
			break;
	}
	if (rc) {
		free(tmp_rel);
		return rc;
	}
	*tmp_rel_out = tmp_rel;
	return 0;
}

/* A staged tree's stamp: what it was made from. */
static void format_dir_stamp(char *out, size_t out_size, const struct digest_spec *digest)
{
	snprintf(out, out_size, "%s:%s%s%s", digest_algo_name(digest->algo), digest->hex,
		 digest->key[0] ? "@" : "", digest->key);
}

static int dir_stamp_set(struct cache *cache, const char *rel, const struct digest_spec *digest)
{
	char stamp[160];
	int fd, rc = 0;

	format_dir_stamp(stamp, sizeof(stamp), digest);
	fd = cache_openat(cache, rel, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	if (fsetxattr(fd, STAMP_XATTR, stamp, strlen(stamp), 0) != 0 && !xattrs_unsupported(errno))
		rc = -errno;
	close(fd);
	return rc;
}

int cache_dir_digest(struct cache *cache, const char *rel, struct digest_spec *out)
{
	char stamp[160];
	ssize_t n;
	int fd, rc = -ENODATA;

	memset(out, 0, sizeof(*out));
	fd = cache_openat(cache, rel, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		goto out;
	n = fgetxattr(fd, STAMP_XATTR, stamp, sizeof(stamp) - 2);
	if (n > 0) {
		/* The stamp is a record's first field: parsed as one. */
		stamp[n] = ' ';
		stamp[n + 1] = '\0';
		rc = parse_digest_text(stamp, out);
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int cache_dir_verified(struct cache *cache, const char *rel, const struct digest_spec *digest)
{
	char stamp[160], want[160];
	ssize_t n;
	int fd, rc;

	fd = cache_openat(cache, rel, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd == -ENOENT ? -ENOENT : -ESTALE;
	format_dir_stamp(want, sizeof(want), digest);
	n = fgetxattr(fd, STAMP_XATTR, stamp, sizeof(stamp) - 1);
	if (n < 0)
		/* Without xattrs a tree can only be trusted because it was
		 * renamed into place whole. */
		rc = xattrs_unsupported(errno) ? 0 : -ESTALE;
	else {
		stamp[n] = '\0';
		rc = strcmp(stamp, want) == 0 ? 0 : -ESTALE;
	}
	close(fd);
	return rc;
}

/* Deeper than any tree extraction accepts (NAMES_PATH_MAX bytes of path
 * name at least two bytes a level): the bound only stops a loop. */
#define REMOVE_DEPTH_MAX (NAMES_PATH_MAX / 2 + 1)

/* Empties the directory open as fd (consumed), descending into
 * subdirectories by descriptor, never through a link. */
static int empty_dir(int fd, unsigned depth)
{
	struct dirent *d;
	DIR *stream;
	int rc = 0;

	if (depth > REMOVE_DEPTH_MAX) {
		close(fd);
		return -ELOOP;
	}
	stream = fdopendir(fd);
	if (!stream) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((d = readdir(stream)) != NULL) {
		int child, r = 0;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(stream), d->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR) {
			r = -errno;
		} else {
			child = openat(dirfd(stream), d->d_name,
			               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = child >= 0 ? empty_dir(child, depth + 1) : -errno;
			if (r == 0 && unlinkat(dirfd(stream), d->d_name, AT_REMOVEDIR) != 0)
				r = -errno;
		}
		if (rc == 0)
			rc = r;
	}
	closedir(stream);
	return rc;
}

void cache_prune(struct cache *cache, const char *rel)
{
	char dir[PATH_MAX];
	const char *base;

	if (cache_check_rel(rel) != 0 || split_rel(rel, dir, sizeof(dir), &base) != 0)
		return;
	/* rmdir refuses a directory that holds anything: only empty ones go. */
	while (dir[0] && cache_unlink(cache, dir, AT_REMOVEDIR) == 0) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
}

int cache_remove_tree(struct cache *cache, const char *rel)
{
	const char *base;
	int parent = open_parent(cache, rel, &base), fd, rc;

	if (parent < 0)
		return parent;
	rc = unlinkat(parent, base, 0) == 0 ? 0 : -errno;
	if (rc == -EISDIR) {
		fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd >= 0 ? empty_dir(fd, 0) : -errno;
		if (rc == 0 && unlinkat(parent, base, AT_REMOVEDIR) != 0)
			rc = -errno;
	}
	close(parent);
	return rc;
}

int cache_tmpdir_install(struct cache *cache, const char *tmp_rel, const char *rel,
			 const struct digest_spec *digest)
{
	int rc = dir_stamp_set(cache, tmp_rel, digest);

	if (rc)
		goto out;
	/* Extraction wrote many files without fsync: flush them all before the
	 * tree becomes visible. */
	if (syncfs(root_fd_of(cache)) != 0) {
		rc = -errno;
		goto out;
	}
	rc = cache_rename(cache, tmp_rel, rel, 0);
	if (rc) {
		if (rc != -ENOTEMPTY && rc != -EEXIST)
			goto out;
		/* An outdated tree is in the way: swap, then remove it. */
		rc = cache_rename(cache, tmp_rel, rel, RENAME_EXCHANGE);
		if (rc)
			goto out;
	}
	rc = fsync_parent(cache, rel);
out:
	cache_remove_tree(cache, tmp_rel); /* ours on failure, the old tree after a swap */
	return rc;
}

int cache_read_small(struct cache *cache, const char *rel, size_t max, char **data, size_t *len,
		     time_t *mtime)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, rc;

	*data = NULL;
	*len = 0;
	/* O_NONBLOCK: a FIFO planted there must not hang the reader. */
	fd = cache_openat(cache, rel, O_RDONLY | O_NONBLOCK, 0);
	/* A link or a socket (ENXIO) planted there: moved aside, as if absent. */
	if ((fd == -ELOOP || fd == -ENXIO) && cache_heal(cache, rel) > 0)
		fd = -ENOENT;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		fd = -1;
		rc = cache_heal(cache, rel) > 0 ? -ENOENT : -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = full_io_read(fd, buf, (size_t)st.st_size);
	if (n < 0 || n < st.st_size) { /* it shrank since fstat */
		rc = n < 0 ? (int)n : -EIO;
		goto out;
	}
	buf[n] = '\0';
	*data = buf;
	*len = (size_t)n;
	*mtime = st.st_mtim.tv_sec;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int write_small(struct cache *cache, const char *rel, const void *data, size_t len,
		       bool durable)
{
	struct cache_tmp tmp;
	int rc = cache_tmp_create(cache, rel, &tmp);

	if (rc)
		return rc;
	rc = cache_tmp_write(&tmp, data, len);
	if (rc == 0 && durable && fsync(tmp.fd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = cache_rename(cache, tmp.tmp_rel, tmp.rel, 0);
	if (rc == 0) {
		free(tmp.tmp_rel);
		tmp.tmp_rel = NULL;
		if (durable)
			rc = fsync_parent(cache, rel);
	}
	cache_tmp_discard(cache, &tmp);
	return rc;
}

int cache_write_small(struct cache *cache, const char *rel, const void *data, size_t len)
{
	return write_small(cache, rel, data, len, true);
}

int cache_write_small_nosync(struct cache *cache, const char *rel, const void *data, size_t len)
{
	return write_small(cache, rel, data, len, false);
}

static bool is_maker_tag(const char *text, size_t len)
{
	if (len != 8)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)text[i]) || isupper((unsigned char)text[i]))
			return false;
	return true;
}

/* Whether name is one of our temporaries nobody will finish: an old-style
 * ".<base>.XXXXXX.partial", or ".<base>[.<maker>].<pid>-XXXXXX.tmp" whose
 * process is gone (see cache.h). */
bool cache_is_orphan_temporary(struct cache *cache, const char *dir_rel, const char *name)
{
	size_t len = strlen(name);
	const char *dot, *dash, *tag;
	struct timespec now;
	struct stat st;
	char rel[PATH_MAX];
	char *end;
	long pid;

	if (name[0] != '.')
		return false;
	if (len > 15 && strcmp(name + len - 8, ".partial") == 0 && name[len - 15] == '.')
		return true;
	if (len < 12 || strcmp(name + len - 4, ".tmp") != 0)
		return false;
	dash = name + len - 11; /* "-XXXXXX.tmp" */
	if (*dash != '-')
		return false;
	for (dot = dash - 1; dot > name && *dot != '.'; dot--)
		;
	if (dot == name)
		return false;
	errno = 0;
	pid = strtol(dot + 1, &end, 10);
	if (errno || end != dash || pid <= 0)
		return false;
	for (tag = dot - 1; tag > name && *tag != '.'; tag--)
		;
	/* Without a maker (an older version's name), it is this machine's. */
	if (!is_maker_tag(tag + 1, (size_t)(dot - tag - 1)) ||
	    strncmp(tag + 1, cache->maker, 8) == 0)
		return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
	if (snprintf(rel, sizeof(rel), "%s%s%s", dir_rel, dir_rel[0] ? "/" : "", name) >=
		    (int)sizeof(rel) ||
	    cache_lstat(cache, rel, &st) != 0)
		return false;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - st.st_mtime > CACHE_FOREIGN_TEMP_SECONDS;
}

DIR *cache_opendir(struct cache *cache, const char *rel)
{
	int fd = rel[0] ? cache_openat(cache, rel, O_RDONLY | O_DIRECTORY, 0)
	                : openat(root_fd_of(cache), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (fd < 0) {
		if (rel[0])
			errno = -fd;
		return NULL;
	}
	dir = fdopendir(fd);
	if (!dir) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return dir;
}

static void sweep_dir(struct cache *cache, const char *rel, unsigned depth, unsigned *removed)
{
	struct dirent *d;
	DIR *dir;

	if (depth > 64)
		return;
	dir = cache_opendir(cache, rel);
	if (!dir)
		return;
	while ((d = readdir(dir)) != NULL) {
		char child[PATH_MAX];

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (depth == 0 && strcmp(d->d_name, "blobs") == 0)
			continue; /* the blob store sweeps its own */
		if (depth == 0 && strcmp(d->d_name, CACHE_QUARANTINE_DIR) == 0)
			continue; /* what is there is kept as it was put */
		if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", d->d_name) >=
		    (int)sizeof(child))
			continue;
		if (cache_is_orphan_temporary(cache, rel, d->d_name)) {
			int rc = cache_remove_tree(cache, child);
			if (rc == 0)
				(*removed)++;
			log_info("cache: %s the leftover temporary %s/%s",
				 rc == 0 ? "removed" : "cannot remove", cache->root, child);
			continue;
		}
		if (d->d_type == DT_DIR)
			sweep_dir(cache, child, depth + 1, removed);
	}
	closedir(dir);
}

unsigned cache_sweep_temporaries(struct cache *cache)
{
	unsigned removed = 0;

	sweep_dir(cache, "", 0, &removed);
	return removed;
}
