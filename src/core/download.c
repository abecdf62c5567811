/* download.c: making a hub file present and verified in the cache, once
 * however many readers ask: a blob already there (hashed again when its
 * stamp no longer holds), another client's copy, or a transfer; then its
 * name in the readable tree, or its archive extracted. Not for: HTTP
 * (fetch.c), pieces and resumption (transfer.c), the layout (blob.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "convert.h"
#include "digest.h"
#include "download.h"
#include "fetch.h"
#include "full_io.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "stage.h"
#include "transfer.h"
#include "wait_result.h"

struct wait {
	uint64_t id;
	download_done_fn done;
	void *ctx;
	int rc;
	struct timespec started; /* for the time it waited */
	struct wait *next;
};

struct job {
	struct download_set *set;
	struct source src; /* owned copy */
	char *label;       /* owned */
	struct wait *waits; /* under set->lock */
	struct job *next;   /* in set->jobs while running */
	/* Its steps run on the pool one after another, never two at once: a
	 * step that must wait (a transfer, an archive it is made from) ends,
	 * and the callback queues the next. */
	struct transfer *transfer; /* a reference while the transfer runs */
	int waited_rc;             /* what the wait ended with */
	struct digest_spec made;   /* SOURCE_MADE: the made file's stamp */
};

struct download_set {
	struct cache *cache;             /* borrowed */
	struct blob_store *store;        /* borrowed */
	struct transfer_engine *engine;  /* borrowed */
	struct pool *pool;               /* borrowed: the core's job pool */
	struct metrics *metrics;         /* borrowed; NULL: none */
	struct download_options options; /* under lock: a reload changes them */
	pthread_mutex_t lock;   /* guards options, jobs, running, next_id and
				   every job's waits */
	pthread_cond_t idle;    /* signalled when running reaches 0 */
	struct job *jobs;       /* running jobs, one per cache path */
	size_t running;
	uint64_t next_id;
};

/* What a failure means to a reader. */
/* The options as they are now (a reload may change them meanwhile). */
static struct download_options options_now(struct download_set *set)
{
	struct download_options now;

	pthread_mutex_lock(&set->lock);
	now = set->options;
	pthread_mutex_unlock(&set->lock);
	return now;
}

static int reader_errno(int rc)
{
	switch (rc) {
	case 0:
	case -ENOENT:
	case -EACCES:
	case -ETIMEDOUT:
	case -ENOSPC:
	case -EDQUOT:
	case -ENOMEM:
	case -EINTR:
		return rc;
	default:
		return -EIO;
	}
}

/* How another client's copy became our blob, for the log. */
enum import_way {
	IMPORT_REFLINK, /* shares its extents, copy on write: nothing to copy */
	IMPORT_LINK,    /* the same inode (the same filesystem) */
	IMPORT_COPY,
};

static const char *const import_way_names[] = { "reflinked", "hard-linked", "copied" };

/* Makes tmp's name a hard link to the file open as fd (found at path), and
 * tmp->fd a descriptor of it. That client's file is never written: but our
 * digest stamp is an xattr on the inode we then share, so only a file we
 * may write gets linked (a stamp that fails would leave a blob no process
 * could vouch for). -errno when it cannot be; tmp is then to discard. */
static int link_into(struct cache *cache, struct cache_tmp *tmp, int fd, const char *path)
{
	const int root_fd = cache_root_fd(cache);
	struct stat want, got;
	int linked;

	if (fstat(fd, &want) != 0)
		return -errno;
	if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0)
		return -EACCES;
	/* The name is ours alone (pid and random letters), as in blob_link. */
	if (unlinkat(root_fd, tmp->tmp_rel, 0) != 0)
		return -errno;
	if (linkat(AT_FDCWD, path, root_fd, tmp->tmp_rel, AT_SYMLINK_FOLLOW) != 0)
		return -errno;
	linked = openat(root_fd, tmp->tmp_rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (linked < 0)
		return -errno;
	/* path may have been replaced since we opened it: link only what we
	 * looked at. */
	if (fstat(linked, &got) != 0 || got.st_ino != want.st_ino || got.st_dev != want.st_dev) {
		close(linked);
		return -ESTALE;
	}
	close(tmp->fd);
	tmp->fd = linked;
	return 0;
}

/* Copies fd into tmp, hashing as it goes. */
static int copy_hashing(int fd, struct cache_tmp *tmp, const struct source *src,
			char actual[DIGEST_HEX_MAX])
{
	enum { CHUNK = 1 << 20 };
	unsigned char *buf = malloc(CHUNK);
	struct digest *dg = NULL;
	uint64_t copied = 0;
	int rc = buf ? digest_new(&dg, src->digest.algo, src->size) : -ENOMEM;

	while (rc == 0 && copied < src->size) {
		size_t want = src->size - copied < CHUNK ? (size_t)(src->size - copied) : CHUNK;
		ssize_t n = full_io_pread(fd, buf, want, (off_t)copied);

		if (n < 0 || (size_t)n < want) {
			rc = n < 0 ? (int)n : -EIO; /* the file shrank */
			break;
		}
		rc = cache_tmp_write(tmp, buf, (size_t)n);
		if (rc == 0)
			rc = digest_update(dg, buf, (size_t)n);
		copied += (uint64_t)n;
	}
	if (rc == 0)
		rc = digest_final_hex(dg, actual);
	digest_free(dg);
	free(buf);
	return rc;
}

/* Makes another client's file our blob if its digest is right: a reflink
 * when the filesystem can, else a hard link when it is the same filesystem,
 * else a copy; always into a temporary beside the blob, hashed before it
 * is renamed into place. That client's file is only read (and, linked,
 * stamped). The partial blob's write lock keeps other processes from
 * fetching it meanwhile. */
static int import_local(struct download_set *set, struct job *job, const char *path)
{
	const struct source *src = &job->src;
	struct blob_partial partial = { .fd = -1 };
	struct cache_tmp tmp = { .fd = -1 };
	enum import_way way = IMPORT_COPY;
	char actual[DIGEST_HEX_MAX];
	char *rel = NULL;
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	rc = -ESTALE;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != src->size) {
		log_info("%s: ignoring %s: not a file of %" PRIu64 " bytes", job->label, path,
			 src->size);
		goto out;
	}
	rc = blob_partial_open(set->store, &src->digest, src->size, src->size ? src->size : 1,
			       src->url, &partial);
	if (rc == 0 && !partial.writer)
		rc = -EBUSY; /* another process fetches it: join that instead */
	if (rc == 0)
		rc = blob_rel(&src->digest, "", &rel);
	if (rc == 0)
		rc = cache_tmp_create(set->cache, rel, &tmp);
	if (rc)
		goto out;
	if (ioctl(tmp.fd, FICLONE, fd) == 0) {
		way = IMPORT_REFLINK;
	} else if (link_into(set->cache, &tmp, fd, path) == 0) {
		way = IMPORT_LINK;
	} else {
		cache_tmp_discard(set->cache, &tmp);
		rc = cache_tmp_create(set->cache, rel, &tmp);
	}
	if (rc == 0)
		rc = way == IMPORT_COPY ? copy_hashing(fd, &tmp, src, actual)
					: digest_fd(tmp.fd, src->digest.algo, src->size, actual);
	if (rc == 0 && !digest_spec_matches(&src->digest, actual)) {
		log_warn("%s: ignoring %s: %s is %s, the index says %s", job->label, path,
			 digest_algo_name(src->digest.algo), actual, src->digest.hex);
		metrics_add(set->metrics, METRICS_DIGEST_FAILURES, 1);
		rc = -ESTALE;
	}
	if (rc == 0)
		rc = cache_tmp_install(set->cache, &tmp, &src->digest);
	if (rc == 0) {
		blob_store_touch(set->store, &src->digest);
		log_info("%s: %s from %s, %s verified", job->label, import_way_names[way], path,
			 digest_algo_name(src->digest.algo));
	} else if (rc != -ESTALE) {
		log_warn("%s: cannot use %s: %s", job->label, path, strerror(-rc));
	}
out:
	cache_tmp_discard(set->cache, &tmp); /* only our temporary name, if left */
	/* Done, or never begun: no partial blob to keep (one a download left
	 * half done stays for it to resume). */
	if (rc == 0 || partial.state.pieces.count == 0)
		blob_partial_discard(set->store, &partial);
	blob_partial_close(&partial);
	free(rel);
	close(fd);
	return rc;
}

struct transfer_source download_transfer_source(const struct source *src)
{
	return (struct transfer_source){ .url = src->url,
					 .digest = src->digest,
					 .size = src->size,
					 .connections = src->connections,
					 .auth_header = src->auth_header,
					 .auth_origin = src->auth_origin,
					 .cache_path = src->cache_path };
}

/* The complete blob of src open as *fd, verified: by its record, else
 * hashed again (a link made to it since it was recorded, as blob_link
 * does for another reader, leaves the record behind a moment). */
static int open_blob(struct download_set *set, struct job *job, int *fd)
{
	const struct source *src = &job->src;
	int rc = blob_open(set->store, &src->digest, src->size, fd);

	if (rc == -ESTALE)
		rc = blob_check(set->store, &src->digest, src->size, job->label, fd);
	else if (rc && rc != -ENOENT)
		log_error("%s: cannot open its blob in the cache: %s", job->label, strerror(-rc));
	return rc;
}

/* The verified blob of src open as *fd, from this machine: -EAGAIN when
 * only a transfer can bring it (obtain_remote). */
static int obtain_local(struct download_set *set, struct job *job, int *fd)
{
	const struct source *src = &job->src;
	int rc;

	rc = open_blob(set, job, fd);
	if (rc == 0) {
		metrics_add(set->metrics, METRICS_CACHE_HITS, 1);
		metrics_file_from(set->metrics, METRICS_FROM_LOCAL);
	}
	if (rc != -ENOENT)
		return rc == 0 ? 0 : reader_errno(rc);
	/* Another client's copy costs no download: a hit too. */
	for (size_t i = 0; i < src->nlocal; i++) {
		if (import_local(set, job, src->local[i]) == 0) {
			metrics_add(set->metrics, METRICS_CACHE_HITS, 1);
			metrics_file_from(set->metrics, METRICS_FROM_CLIENT);
			return reader_errno(open_blob(set, job, fd));
		}
	}
	metrics_add(set->metrics, METRICS_CACHE_MISSES, 1);
	if (options_now(set).offline || src->offline) {
		log_error("%s: offline, and not in the cache", job->label);
		return -EIO;
	}
	return -EAGAIN;
}

static void job_step_after(void *ctx, bool cancelled);
static void job_end(struct job *job, int rc);

/* transfer_wait_fn, on the engine's thread: the next step goes to the
 * pool (the engine's thread must not extract or hash). */
static void job_transferred(void *ctx, int rc)
{
	struct job *job = ctx;

	job->waited_rc = rc;
	if (pool_submit(job->set->pool, job_step_after, job) != 0)
		job_step_after(job, true); /* stopping: end it here */
}

/* Starts the transfer of src's blob; the job goes on in job_step_after
 * once it is complete, without a worker held meanwhile. */
static int obtain_remote(struct download_set *set, struct job *job)
{
	struct transfer_source tsrc = download_transfer_source(&job->src);
	uint64_t id;
	int rc = transfer_get(set->engine, &tsrc, job->label, &job->transfer);

	if (rc == 0) {
		transfer_want_all(job->transfer);
		rc = transfer_wait_complete(job->transfer, job_transferred, job, &id);
	}
	if (rc) {
		transfer_put(job->transfer);
		job->transfer = NULL;
	}
	return reader_errno(rc);
}

static int file_from_blob(struct download_set *set, struct job *job, int fd)
{
	blob_link(set->store, &job->src.digest, job->src.cache_path);
	close(fd);
	return 0;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* The check after staging: every path the hub expects is in the tree. */
static int check_expected(struct download_set *set, const struct source *src, const char *dir_rel,
			  char *why, size_t why_size)
{
	for (size_t i = 0; i < src->nexpect; i++) {
		char rel[PATH_MAX];
		struct stat st;

		if (snprintf(rel, sizeof(rel), "%s/%s", dir_rel, src->expect[i]) >= (int)sizeof(rel) ||
		    cache_lstat(set->cache, rel, &st) != 0) {
			snprintf(why, why_size, "it has no %s, which its catalog expects",
				 src->expect[i]);
			return -EIO;
		}
	}
	return 0;
}

/* Copies the tree open as src_fd (consumed) into the cache at dest_rel, an
 * existing directory: folders and regular files only, never through a
 * link; anything else refuses the whole copy (-EINVAL). */
static int copy_tree(struct download_set *set, int src_fd, const char *dest_rel, unsigned depth)
{
	DIR *stream = fdopendir(src_fd);
	struct dirent *d;
	int rc = 0;

	if (!stream) {
		close(src_fd);
		return -errno;
	}
	if (depth > 64)
		rc = -ELOOP;
	while (rc == 0 && (d = readdir(stream)) != NULL) {
		char rel[PATH_MAX];
		struct stat st;
		int in, out;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (snprintf(rel, sizeof(rel), "%s/%s", dest_rel, d->d_name) >= (int)sizeof(rel) ||
		    fstatat(dirfd(stream), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			in = openat(dirfd(stream), d->d_name,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rc = in < 0 ? -errno : cache_mkdir(set->cache, rel, 0755);
			if (rc == 0)
				rc = copy_tree(set, in, rel, depth + 1);
			else if (in >= 0)
				close(in);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = -EINVAL;
			break;
		}
		in = openat(dirfd(stream), d->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0) {
			rc = -errno;
			break;
		}
		out = cache_openat(set->cache, rel, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (out < 0)
			rc = out;
		for (off_t done = 0; rc == 0 && done < st.st_size;) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(st.st_size - done), 0);
			if (n <= 0)
				rc = n < 0 ? -errno : -EIO;
			else
				done += n;
		}
		if (out >= 0)
			close(out);
		close(in);
	}
	closedir(stream);
	return rc;
}

/* An archive's tree from another client's cache (tensorflow_hub's keeps
 * the extracted model): used only when whole (no lock file beside it) and
 * holding every path the hub expects; copied, never modified. There is no
 * archive to hash, so only a source without a digest takes one. */
static int import_local_tree(struct download_set *set, struct job *job, const char *path)
{
	const struct source *src = &job->src;
	char lock[PATH_MAX], expected[PATH_MAX];
	char *dir_rel = NULL;
	struct stat st;
	int fd, rc;

	if (digest_spec_verifies(&src->digest) || src->nexpect == 0)
		return -ENOENT;
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock) ||
	    stat(lock, &st) == 0)
		return -ENOENT;
	for (size_t i = 0; i < src->nexpect; i++)
		if (snprintf(expected, sizeof(expected), "%s/%s", path, src->expect[i]) >=
			    (int)sizeof(expected) ||
		    stat(expected, &st) != 0)
			return -ENOENT;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	rc = cache_tmpdir_create(set->cache, src->cache_path, &dir_rel);
	if (rc) {
		close(fd);
		return rc;
	}
	rc = copy_tree(set, fd, dir_rel, 0);
	if (rc == 0)
		rc = cache_tmpdir_install(set->cache, dir_rel, src->cache_path, &src->digest);
	else
		cache_remove_tree(set->cache, dir_rel);
	if (rc == 0)
		log_info("%s: copied from %s (its client's cache)", job->label, path);
	else
		log_warn("%s: cannot use %s: %s", job->label, path, strerror(-rc));
	free(dir_rel);
	return rc;
}

/* 0: the extracted tree is there; -EAGAIN: it must be made from the
 * archive's blob. */
static int archive_present(struct download_set *set, struct job *job)
{
	const struct source *src = &job->src;

	if (cache_dir_verified(set->cache, src->cache_path, &src->digest) == 0)
		return 0;
	for (size_t i = 0; i < src->nlocal; i++)
		if (import_local_tree(set, job, src->local[i]) == 0)
			return 0;
	return -EAGAIN;
}

/* Extracts the archive's blob (fd, taken) into place. */
static int archive_from_blob(struct download_set *set, struct job *job, int fd)
{
	const struct source *src = &job->src;
	char dest[PATH_MAX], why[512];
	char *dir_rel = NULL;
	struct timespec start;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = cache_tmpdir_create(set->cache, src->cache_path, &dir_rel);
	if (rc) {
		log_error("%s: cannot create a directory in the cache: %s", job->label,
			  strerror(-rc));
		goto out;
	}
	if (snprintf(dest, sizeof(dest), "%s/%s", cache_root(set->cache), dir_rel) >=
	    (int)sizeof(dest)) {
		log_error("%s: the cache path of its directory is too long", job->label);
		rc = -ENAMETOOLONG;
		goto out;
	}
	const struct download_options options = options_now(set);
	rc = stage_extract(fd, src->size, dest, &options.limits, why, sizeof(why));
	if (rc == 0)
		rc = check_expected(set, src, dir_rel, why, sizeof(why));
	if (rc) {
		char url[512];
		fetch_url_for_log(src->url, url, sizeof(url));
		log_error("%s: cannot extract %s: %s", job->label, url, why);
		cache_remove_tree(set->cache, dir_rel);
		goto out;
	}
	rc = cache_tmpdir_install(set->cache, dir_rel, src->cache_path, &src->digest);
	if (rc)
		log_error("%s: cannot install %s in the cache: %s", job->label, src->cache_path,
			  strerror(-rc));
	else
		log_info("%s: extracted in %.3f s", job->label, seconds_since(&start));
out:
	if (rc)
		rc = reader_errno(rc);
	close(fd);
	free(dir_rel);
	return rc;
}

/* ---- files made from a download ---- */

/* What a made file is stamped with: a key over the step and what it was
 * made from, so another step, command or download makes it again. */
static int made_spec(const struct source *src, struct digest_spec *out)
{
	char from[DIGEST_HEX_MAX + 32], *origin = NULL;
	const char *step = src->step == SOURCE_STEP_GUNZIP   ? "gunzip"
			   : src->step == SOURCE_STEP_MEMBER ? "member"
							     : "convert";
	const char *arg = src->step == SOURCE_STEP_MEMBER    ? src->member
			  : src->step == SOURCE_STEP_CONVERT ? src->command
							     : "";
	int rc;

	digest_spec_format(&src->digest, from, sizeof(from));
	if (asprintf(&origin, "%s %s\n%s@%s\n%s\n%s", step, arg ? arg : "", from, src->digest.key,
		     src->url, src->input_tree ? src->input_tree : "") < 0)
		return -ENOMEM;
	digest_spec_set_none(out, DIGEST_SHA256);
	rc = digest_spec_set_key(out, origin);
	free(origin);
	return rc;
}

int download_open_made(struct download_set *set, const struct source *src, int *fd)
{
	struct digest_spec made;
	int rc = made_spec(src, &made);

	*fd = -1;
	if (rc == 0)
		rc = cache_open_verified(set->cache, src->cache_path, &made, CACHE_SIZE_ANY, fd);
	return rc == 0 ? 0 : -ENOENT;
}

bool download_is_present(struct download_set *set, const struct source *src)
{
	struct stat st;
	char *rel = NULL;
	bool present = false;
	int fd;

	switch (src->kind) {
	case SOURCE_ARCHIVE:
		return cache_dir_verified(set->cache, src->cache_path, &src->digest) == 0;
	case SOURCE_MADE:
		if (download_open_made(set, src, &fd) != 0)
			return false;
		close(fd);
		return true;
	case SOURCE_FILE:
		break;
	}
	if (blob_rel(&src->digest, "", &rel) == 0)
		present = cache_lstat(set->cache, rel, &st) == 0 && S_ISREG(st.st_mode) &&
			  (uint64_t)st.st_size == src->size;
	free(rel);
	return present;
}

/* Runs the source's converter on the verified download (blob_fd): its
 * input is a link to the blob named as the hub names the file, in a fresh
 * directory beside the result, where its output goes too; the output is
 * then moved into tmp. */
static int convert_into(struct download_set *set, struct job *job, struct cache_tmp *tmp)
{
	const struct source *src = &job->src;
	const int root_fd = cache_root_fd(set->cache);
	char in_rel[PATH_MAX], out_rel[PATH_MAX], why[512];
	char *dir_rel = NULL, *blob = NULL, *input = NULL, *output = NULL, *workdir = NULL;
	const char *in_name, *out_name;
	size_t in_len;
	int rc, fd;

	rc = src->input_tree ? 0 : blob_rel(&src->digest, "", &blob);
	if (rc == 0)
		rc = cache_tmpdir_create(set->cache, src->cache_path, &dir_rel);
	if (rc) {
		log_error("%s: cannot create the converter's directory in the cache: %s",
			  job->label, strerror(-rc));
		goto out;
	}
	/* The input keeps the name of the file it is: converters go by it. */
	in_name = strrchr(src->url, '/');
	in_name = in_name ? in_name + 1 : src->url;
	in_len = strcspn(in_name, "?#");
	if (in_len == 0 || in_len > NAME_MAX || memchr(in_name, '\0', in_len) ||
	    strncmp(in_name, "..", in_len) == 0 || strncmp(in_name, ".", in_len) == 0)
		in_name = "input", in_len = 5;
	out_name = strrchr(src->cache_path, '/');
	out_name = out_name ? out_name + 1 : src->cache_path;
	/* A cut path would name another file: too long is an error. */
	if (snprintf(in_rel, sizeof(in_rel), "%s/%.*s", dir_rel, (int)in_len, in_name) >=
		    (int)sizeof(in_rel) ||
	    snprintf(out_rel, sizeof(out_rel), "%s/%s", dir_rel, out_name) >=
		    (int)sizeof(out_rel) ||
	    (strcmp(in_rel, out_rel) == 0 &&
	     snprintf(in_rel, sizeof(in_rel), "%s/input", dir_rel) >= (int)sizeof(in_rel)) ||
	    (src->input_tree &&
	     snprintf(in_rel, sizeof(in_rel), "%s", src->input_tree) >= (int)sizeof(in_rel))) {
		log_error("%s: a path of its conversion is too long", job->label);
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (!src->input_tree && linkat(root_fd, blob, root_fd, in_rel, 0) != 0 &&
	    snprintf(in_rel, sizeof(in_rel), "%s", blob) >= (int)sizeof(in_rel)) {
		log_error("%s: the path of its blob is too long", job->label); /* the blob itself */
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (asprintf(&workdir, "%s/%s", cache_root(set->cache), dir_rel) < 0 ||
	    asprintf(&input, "%s/%s", cache_root(set->cache), in_rel) < 0 ||
	    asprintf(&output, "%s/%s", cache_root(set->cache), out_rel) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	struct convert_job cj = { .command = src->command,
				  .input = input,
				  .output = output,
				  .workdir = workdir,
				  .timeout_seconds = options_now(set).convert_timeout,
				  .label = job->label };
	rc = convert_run(&cj, why, sizeof(why));
	if (rc) {
		log_error("%s: cannot convert: %s", job->label, why);
		goto out;
	}
	if (renameat(root_fd, out_rel, root_fd, tmp->tmp_rel) != 0) {
		rc = -errno;
		log_error("%s: cannot move the converter's output into the cache: %s",
			  job->label, strerror(-rc));
		goto out;
	}
	fd = openat(root_fd, tmp->tmp_rel, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_error("%s: cannot open the converter's output: %s", job->label,
			  strerror(-rc));
		goto out;
	}
	close(tmp->fd);
	tmp->fd = fd;
out:
	if (dir_rel)
		cache_remove_tree(set->cache, dir_rel);
	free(dir_rel);
	free(blob);
	free(workdir);
	free(input);
	free(output);
	return rc;
}

/* Makes the made file from its download's blob (fd, taken). */
static int made_from_blob(struct download_set *set, struct job *job, int fd)
{
	const struct source *src = &job->src;
	struct cache_tmp tmp = { .fd = -1 };
	struct timespec start;
	char why[512] = "";
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = cache_tmp_create(set->cache, src->cache_path, &tmp);
	if (rc) {
		log_error("%s: cannot create a file in the cache: %s", job->label, strerror(-rc));
		goto out;
	}
	const struct download_options options = options_now(set);
	switch (src->step) {
	case SOURCE_STEP_GUNZIP:
		rc = stage_gunzip(fd, src->size, tmp.fd, &options.limits, why, sizeof(why));
		break;
	case SOURCE_STEP_MEMBER:
		rc = stage_extract_member(fd, src->size, src->member, tmp.fd, &options.limits,
					  why, sizeof(why));
		break;
	case SOURCE_STEP_CONVERT:
		rc = convert_into(set, job, &tmp);
		/* A converter that timed out failed like any other: EIO. */
		if (rc && rc != -ENOSPC && rc != -EDQUOT && rc != -ENOMEM)
			rc = -EIO;
		break;
	}
	if (rc && why[0])
		log_error("%s: cannot make it from its download: %s", job->label, why);
	if (rc == 0) {
		rc = cache_tmp_install(set->cache, &tmp, &job->made);
		if (rc)
			log_error("%s: cannot install it in the cache: %s", job->label,
				  strerror(-rc));
		else
			log_info("%s: made in %.3f s", job->label, seconds_since(&start));
	}
out:
	cache_tmp_discard(set->cache, &tmp);
	close(fd);
	return reader_errno(rc);
}

static void job_free(struct job *job)
{
	source_clear(&job->src);
	free(job->label);
	free(job);
}

/* The job's result to its readers; then it is gone. Runs on a worker or,
 * while the pool stops, on the thread that ended the last wait. */
static void job_end(struct job *job, int rc)
{
	struct download_set *set = job->set;
	struct wait *waits;

	if (rc)
		cache_prune(set->cache, job->src.cache_path); /* no empty folders left behind */
	pthread_mutex_lock(&set->lock);
	for (struct job **p = &set->jobs; *p; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			break;
		}
	}
	waits = job->waits;
	job->waits = NULL;
	pthread_mutex_unlock(&set->lock);
	/* Readers hear the result without our lock held. */
	while (waits) {
		struct wait *next = waits->next;
		metrics_observe(set->metrics, METRICS_OPEN_WAIT, seconds_since(&waits->started));
		waits->done(waits->ctx, rc);
		free(waits);
		waits = next;
	}
	job_free(job);
	pthread_mutex_lock(&set->lock);
	if (--set->running == 0)
		pthread_cond_broadcast(&set->idle);
	pthread_mutex_unlock(&set->lock);
}

/* What the job makes, from its blob (fd, taken). */
static int job_from_blob(struct download_set *set, struct job *job, int fd)
{
	switch (job->src.kind) {
	case SOURCE_ARCHIVE: return archive_from_blob(set, job, fd);
	case SOURCE_MADE: return made_from_blob(set, job, fd);
	case SOURCE_FILE:
	default: return file_from_blob(set, job, fd);
	}
}

/* The step after the transfer: the blob is complete, or the wait failed. */
static void job_step_after(void *ctx, bool cancelled)
{
	struct job *job = ctx;
	int fd = -1, rc = cancelled ? -EINTR : job->waited_rc;

	transfer_put(job->transfer);
	job->transfer = NULL;
	if (rc == 0)
		rc = open_blob(job->set, job, &fd);
	if (rc == 0)
		rc = job_from_blob(job->set, job, fd);
	job_end(job, reader_errno(rc));
}

/* The blob, from here or else by a transfer; then what the job makes. */
static void job_obtain(struct download_set *set, struct job *job)
{
	int fd = -1, rc = obtain_local(set, job, &fd);

	if (rc == 0)
		rc = job_from_blob(set, job, fd);
	else if (rc == -EAGAIN && (rc = obtain_remote(set, job)) == 0)
		return; /* job_transferred goes on */
	job_end(job, reader_errno(rc));
}

static void job_step_obtain(void *ctx, bool cancelled)
{
	struct job *job = ctx;

	if (cancelled)
		job_end(job, -EINTR);
	else if (job->waited_rc)
		job_end(job, reader_errno(job->waited_rc));
	else
		job_obtain(job->set, job);
}

/* download_done_fn of the archive a made file is made from. */
static void job_tree_done(void *ctx, int rc)
{
	struct job *job = ctx;

	job->waited_rc = rc;
	if (pool_submit(job->set->pool, job_step_obtain, job) != 0)
		job_step_obtain(job, true);
}

/* The first step: what is there already ends the job at once. */
static void job_step_begin(void *ctx, bool cancelled)
{
	struct job *job = ctx;
	struct download_set *set = job->set;
	uint64_t id;
	int fd = -1, rc = cancelled ? -EINTR : 0;

	if (rc == 0 && job->src.kind == SOURCE_ARCHIVE) {
		rc = archive_present(set, job);
		if (rc == -EAGAIN)
			rc = 0;
		else if (rc == 0)
			goto end;
	} else if (rc == 0 && job->src.kind == SOURCE_MADE) {
		if (download_open_made(set, &job->src, &fd) == 0) {
			close(fd);
			goto end;
		}
		rc = made_spec(&job->src, &job->made);
		if (rc == 0 && job->src.input_tree) {
			/* The archive extracted first, where its folder shows it,
			 * by the job that extracts it for a listing too; this job
			 * goes on from its callback, holding no worker. */
			struct source tree = job->src;
			tree.kind = SOURCE_ARCHIVE;
			tree.cache_path = job->src.input_tree;
			rc = download_start(set, &tree, job->label, job_tree_done, job, &id);
			if (rc == 0)
				return;
		}
	}
	if (rc == 0) {
		job_obtain(set, job);
		return;
	}
end:
	job_end(job, reader_errno(rc));
}

/* Starts a job; called with set->lock held. */
static int job_start_locked(struct download_set *set, const struct source *src, const char *label,
			    struct job **out)
{
	struct job *job;
	int rc;

	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->set = set;
	job->label = strdup(label);
	rc = job->label ? source_copy(&job->src, src) : -ENOMEM;
	if (rc) {
		free(job->label);
		free(job);
		return rc;
	}
	/* Queued under set->lock: its first step waits for the lock before
	 * it can end, so it is in set->jobs first. */
	rc = pool_submit(set->pool, job_step_begin, job);
	if (rc) {
		log_error("%s: cannot start a download: %s", label, strerror(-rc));
		job_free(job);
		return rc;
	}
	job->next = set->jobs;
	set->jobs = job;
	set->running++;
	*out = job;
	return 0;
}

int download_start(struct download_set *set, const struct source *src, const char *label,
		   download_done_fn done, void *ctx, uint64_t *id)
{
	struct wait *wait = calloc(1, sizeof(*wait));
	struct job *job;
	int rc = 0;

	if (!wait)
		return -ENOMEM;
	wait->done = done;
	wait->ctx = ctx;
	clock_gettime(CLOCK_MONOTONIC, &wait->started);
	pthread_mutex_lock(&set->lock);
	for (job = set->jobs; job; job = job->next)
		if (strcmp(job->src.cache_path, src->cache_path) == 0 &&
		    digest_spec_same(&job->src.digest, &src->digest))
			break;
	if (!job)
		rc = job_start_locked(set, src, label, &job);
	if (rc == 0) {
		wait->id = ++set->next_id;
		*id = wait->id;
		wait->next = job->waits;
		job->waits = wait;
		wait = NULL;
	}
	pthread_mutex_unlock(&set->lock);
	free(wait);
	return rc;
}

static void fire_cancelled(void *ctx)
{
	struct wait *wait = ctx;

	wait->done(wait->ctx, -EINTR);
	free(wait);
}

void download_cancel(struct download_set *set, uint64_t id)
{
	pthread_mutex_lock(&set->lock);
	for (struct job *job = set->jobs; job; job = job->next) {
		for (struct wait **p = &job->waits; *p; p = &(*p)->next) {
			struct wait *wait = *p;
			if (wait->id != id)
				continue;
			*p = wait->next;
			/* Never in the caller's thread: it may be FUSE's interrupt
			 * callback, which must not reply itself. If the engine has
			 * stopped, the job ends soon and answers instead. */
			if (transfer_engine_defer(set->engine, fire_cancelled, wait) != 0) {
				wait->next = job->waits;
				job->waits = wait;
			}
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&set->lock);
}

int download_ensure(struct download_set *set, const struct source *src, const char *label)
{
	struct wait_result w;
	uint64_t id;
	int rc;

	wait_result_init(&w);
	rc = download_start(set, src, label, wait_result_deliver, &w, &id);
	if (rc == 0)
		rc = wait_result_take(&w);
	wait_result_destroy(&w);
	return rc;
}

int download_set_new(struct download_set **out, struct cache *cache, struct blob_store *store,
		     struct transfer_engine *engine, struct pool *pool,
		     const struct download_options *options)
{
	struct download_set *set = calloc(1, sizeof(*set));

	*out = NULL;
	if (!set)
		return -ENOMEM;
	set->cache = cache;
	set->store = store;
	set->engine = engine;
	set->pool = pool;
	set->options = *options;
	if (set->options.convert_timeout == 0)
		set->options.convert_timeout = DOWNLOAD_CONVERT_TIMEOUT_DEFAULT;
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->idle, NULL);
	*out = set;
	return 0;
}

void download_set_set_options(struct download_set *set, const struct download_options *options)
{
	pthread_mutex_lock(&set->lock);
	set->options = *options;
	if (set->options.convert_timeout == 0)
		set->options.convert_timeout = DOWNLOAD_CONVERT_TIMEOUT_DEFAULT;
	pthread_mutex_unlock(&set->lock);
}

void download_set_set_metrics(struct download_set *set, struct metrics *metrics)
{
	set->metrics = metrics;
}

void download_set_drain(struct download_set *set)
{
	pthread_mutex_lock(&set->lock);
	while (set->running > 0)
		pthread_cond_wait(&set->idle, &set->lock);
	pthread_mutex_unlock(&set->lock);
}

void download_set_free(struct download_set *set)
{
	if (!set)
		return;
	download_set_drain(set);
	pthread_cond_destroy(&set->idle);
	pthread_mutex_destroy(&set->lock);
	free(set);
}
