/* download.c: making a hub file present and verified in the cache, once
 * however many readers ask: a blob already there (hashed again when its
 * stamp no longer holds), another client's copy, or a transfer; then its
 * name in the readable tree, or its archive extracted. Not for: HTTP
 * (fetch.c), pieces and resumption (transfer.c), the layout (blob.c). */
#include "build_config.h"

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
#include "digest.h"
#include "download.h"
#include "fetch.h"
#include "log.h"
#include "stage.h"
#include "transfer.h"
#include "wait.h"

struct wait {
	uint64_t id;
	download_done_fn done;
	void *ctx;
	int rc;
	struct wait *next;
};

struct job {
	struct download_set *set;
	struct source src; /* owned copy */
	char *label;       /* owned */
	struct wait *waits; /* under set->lock */
	struct job *next;   /* in set->jobs while running */
};

struct download_set {
	struct cache *cache;             /* borrowed */
	struct blob_store *store;        /* borrowed */
	struct transfer_engine *engine;  /* borrowed */
	bool offline;
	pthread_mutex_t lock;   /* guards jobs, running, next_id and every
				   job's waits */
	pthread_cond_t idle;    /* signalled when running reaches 0 */
	struct job *jobs;       /* running jobs, one per cache path */
	size_t running;
	uint64_t next_id;
};

/* What a failure means to a reader. */
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
		ssize_t n = pread(fd, buf, CHUNK, (off_t)copied);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
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
					 .auth_header = src->auth_header,
					 .auth_origin = src->auth_origin };
}

/* The verified blob of src open as *fd, from wherever it is. */
static int obtain(struct download_set *set, struct job *job, int *fd)
{
	const struct source *src = &job->src;
	struct transfer_source tsrc = download_transfer_source(src);
	struct transfer *transfer = NULL;
	int rc;

	rc = blob_open(set->store, &src->digest, src->size, fd);
	if (rc == -ESTALE)
		rc = blob_check(set->store, &src->digest, src->size, job->label, fd);
	if (rc != -ENOENT)
		return rc == 0 ? 0 : reader_errno(rc);
	for (size_t i = 0; i < src->nlocal; i++)
		if (import_local(set, job, src->local[i]) == 0)
			return reader_errno(blob_open(set->store, &src->digest, src->size, fd));
	if (set->offline || src->offline) {
		log_error("%s: offline, and not in the cache", job->label);
		return -EIO;
	}
	rc = transfer_get(set->engine, &tsrc, job->label, &transfer);
	if (rc == 0) {
		transfer_want_all(transfer);
		rc = transfer_wait_complete_sync(transfer);
		transfer_put(transfer);
	}
	if (rc == 0)
		rc = blob_open(set->store, &src->digest, src->size, fd);
	return reader_errno(rc);
}

static int run_file(struct download_set *set, struct job *job)
{
	int fd = -1, rc = obtain(set, job, &fd);

	if (rc == 0) {
		blob_link(set->store, &job->src.digest, job->src.cache_path);
		close(fd);
	}
	return rc;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int run_archive(struct download_set *set, struct job *job)
{
	const struct source *src = &job->src;
	char dest[PATH_MAX], why[512];
	char *dir_rel = NULL;
	struct timespec start;
	int fd = -1, rc;

	rc = cache_dir_verified(set->cache, src->cache_path, &src->digest);
	if (rc == 0)
		return 0;
	rc = obtain(set, job, &fd);
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = cache_tmpdir_create(set->cache, src->cache_path, &dir_rel);
	if (rc) {
		log_error("%s: cannot create a directory in the cache: %s", job->label,
			  strerror(-rc));
		goto out;
	}
	snprintf(dest, sizeof(dest), "%s/%s", cache_root(set->cache), dir_rel);
	rc = stage_extract(fd, src->size, dest, &stage_default_limits, why, sizeof(why));
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

static void job_free(struct job *job)
{
	source_clear(&job->src);
	free(job->label);
	free(job);
}

static void *job_main(void *arg)
{
	struct job *job = arg;
	struct download_set *set = job->set;
	struct wait *waits;
	int rc;

	rc = job->src.kind == SOURCE_ARCHIVE ? run_archive(set, job) : run_file(set, job);
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
		waits->done(waits->ctx, rc);
		free(waits);
		waits = next;
	}
	job_free(job);
	pthread_mutex_lock(&set->lock);
	if (--set->running == 0)
		pthread_cond_broadcast(&set->idle);
	pthread_mutex_unlock(&set->lock);
	return NULL;
}

/* Starts a job; called with set->lock held. */
static int job_start_locked(struct download_set *set, const struct source *src, const char *label,
			    struct job **out)
{
	pthread_attr_t attr;
	pthread_t thread;
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
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = -pthread_create(&thread, &attr, job_main, job);
	pthread_attr_destroy(&attr);
	if (rc) {
		log_error("%s: cannot start a download thread: %s", label, strerror(-rc));
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
		     struct transfer_engine *engine, bool offline)
{
	struct download_set *set = calloc(1, sizeof(*set));

	*out = NULL;
	if (!set)
		return -ENOMEM;
	set->cache = cache;
	set->store = store;
	set->engine = engine;
	set->offline = offline;
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->idle, NULL);
	*out = set;
	return 0;
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
