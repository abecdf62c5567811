/* download.c: one download per cache path, however many readers wait for
 * it: finds or fetches a hub file's bytes, checks their digest as they
 * arrive, stages archives and installs the result in the cache. Not for:
 * HTTP details (fetch.c), on-disk layout (cache.c), extraction (stage.c). */
#include "build_config.h"

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

#include "cache.h"
#include "digest.h"
#include "download.h"
#include "fetch.h"
#include "log.h"
#include "stage.h"

/* Git LFS stores this in place of a file that was never uploaded (or that
 * the host no longer serves). */
#define LFS_POINTER_PREFIX "version https://git-lfs.github.com/spec/v1"

struct job {
	struct download_set *set;
	struct source src; /* owned copy */
	char *label;       /* owned */
	unsigned refs;     /* the worker and each waiter; under set->lock */
	bool done;         /* under set->lock */
	int result;        /* valid once done */
	struct job *next;  /* in set->jobs while running */
};

struct download_set {
	struct cache *cache;
	struct fetcher *fetcher;
	bool offline;
	pthread_mutex_t lock;   /* guards jobs, running and every job's refs,
				   done, result */
	pthread_cond_t changed; /* broadcast whenever a job ends */
	struct job *jobs;       /* running jobs, one per cache path */
	size_t running;
};

/* Receives bytes from any origin (HTTP or another cache's file) into a
 * cache temporary, hashing them on the way: no second pass. */
struct sink {
	struct cache_tmp *tmp;
	struct digest *digest;
	uint64_t expected; /* the index's size: a byte more is an error */
	uint64_t received;
	char head[sizeof(LFS_POINTER_PREFIX)]; /* the first bytes, to recognise
						  an LFS pointer */
	size_t head_len;
};

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int sink_write(void *ctx, const void *data, size_t len)
{
	struct sink *sink = ctx;
	int rc;

	if (len > sink->expected - sink->received)
		return -EFBIG;
	if (sink->head_len < sizeof(sink->head)) {
		size_t n = sizeof(sink->head) - sink->head_len;
		n = n < len ? n : len;
		memcpy(sink->head + sink->head_len, data, n);
		sink->head_len += n;
	}
	rc = cache_tmp_write(sink->tmp, data, len);
	if (rc == 0)
		rc = digest_update(sink->digest, data, len);
	sink->received += len;
	return rc;
}

static int sink_open(struct sink *sink, struct cache_tmp *tmp, const struct source *src)
{
	memset(sink, 0, sizeof(*sink));
	sink->tmp = tmp;
	sink->expected = src->size;
	return digest_new(&sink->digest, src->digest.algo, src->size);
}

/* Whether what arrived is what the index promised; why says how not. */
static int sink_verdict(struct sink *sink, const struct source *src, char *why, size_t why_size)
{
	char actual[DIGEST_HEX_MAX];
	int rc;

	if (sink->head_len >= sizeof(LFS_POINTER_PREFIX) - 1 &&
	    memcmp(sink->head, LFS_POINTER_PREFIX, sizeof(LFS_POINTER_PREFIX) - 1) == 0 &&
	    src->size != sink->received) {
		snprintf(why, why_size, "the server sent a Git LFS pointer, not the file");
		return -EIO;
	}
	if (sink->received != src->size) {
		snprintf(why, why_size, "got %" PRIu64 " bytes, the index says %" PRIu64,
			 sink->received, src->size);
		return -EIO;
	}
	rc = digest_final_hex(sink->digest, actual);
	if (rc) {
		snprintf(why, why_size, "cannot compute the digest");
		return rc;
	}
	if (!digest_spec_matches(&src->digest, actual)) {
		snprintf(why, why_size, "%s mismatch: expected %s, got %s",
			 digest_algo_name(src->digest.algo), src->digest.hex, actual);
		return -EIO;
	}
	return 0;
}

static void sink_close(struct sink *sink)
{
	digest_free(sink->digest);
	sink->digest = NULL;
}

/* A file already at the cache path but not known to be right (stamps lost,
 * or a filesystem without xattrs): hash it once rather than fetch again. */
static int check_in_place(struct download_set *set, struct job *job)
{
	const struct source *src = &job->src;
	char actual[DIGEST_HEX_MAX];
	struct stat st;
	int fd, rc;

	fd = openat(cache_root_fd(set->cache), src->cache_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	rc = -ESTALE;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != src->size)
		goto out;
	rc = digest_fd(fd, src->digest.algo, src->size, actual);
	if (rc)
		goto out;
	if (!digest_spec_matches(&src->digest, actual)) {
		log_warn("%s: the cached copy has %s %s, the index says %s: fetching it again",
			 job->label, digest_algo_name(src->digest.algo), actual, src->digest.hex);
		rc = -ESTALE;
		goto out;
	}
	rc = cache_mark_verified(set->cache, src->cache_path, fd, &src->digest);
	if (rc == 0)
		log_info("%s: found in the cache, %s verified", job->label,
			 digest_algo_name(src->digest.algo));
out:
	close(fd);
	return rc;
}

/* Copies another client's file into a cache temporary if its digest is
 * right. That client's file is only read. */
static int import_local(struct download_set *set, struct job *job, const char *path,
			struct cache_tmp *tmp)
{
	enum { CHUNK = 1 << 20 };
	const struct source *src = &job->src;
	struct sink sink = { 0 };
	char why[256];
	unsigned char *buf = NULL;
	struct stat st;
	int fd, rc;

	*tmp = (struct cache_tmp){ .fd = -1 };
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	rc = -ESTALE;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != src->size) {
		log_info("%s: ignoring %s: not a file of %" PRIu64 " bytes", job->label, path,
			 src->size);
		goto out;
	}
	buf = malloc(CHUNK);
	rc = buf ? cache_tmp_create(set->cache, src->cache_path, tmp) : -ENOMEM;
	if (rc == 0)
		rc = sink_open(&sink, tmp, src);
	while (rc == 0) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		rc = sink_write(&sink, buf, (size_t)n);
	}
	if (rc == 0) {
		rc = sink_verdict(&sink, src, why, sizeof(why));
		if (rc)
			log_warn("%s: ignoring %s: %s", job->label, path, why);
		else
			log_info("%s: copied from %s, %s verified", job->label, path,
				 digest_algo_name(src->digest.algo));
	} else if (rc != -ESTALE) {
		log_warn("%s: cannot copy %s: %s", job->label, path, strerror(-rc));
	}
out:
	if (rc)
		cache_tmp_discard(set->cache, tmp);
	sink_close(&sink);
	free(buf);
	close(fd);
	return rc;
}

/* What a failed transfer means to a reader. */
static int reader_errno(int rc)
{
	switch (rc) {
	case -ENOENT:
	case -EACCES:
	case -ETIMEDOUT:
	case -ENOSPC:
	case -EDQUOT:
	case -ENOMEM:
		return rc;
	default:
		return -EIO;
	}
}

static int download_url(struct download_set *set, struct job *job, struct cache_tmp *tmp)
{
	const struct source *src = &job->src;
	struct fetch_status status;
	struct timespec start;
	struct sink sink = { 0 };
	char why[512];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = cache_tmp_create(set->cache, src->cache_path, tmp);
	if (rc) {
		log_error("%s: cannot create a file in the cache for %s: %s", job->label,
			  src->cache_path, strerror(-rc));
		return reader_errno(rc);
	}
	rc = sink_open(&sink, tmp, src);
	if (rc == 0)
		rc = fetch_get(set->fetcher, src->url, sink_write, &sink, &status);
	if (rc) {
		if (rc == -EFBIG)
			snprintf(status.error, sizeof(status.error),
				 "the server sent more than the %" PRIu64 " bytes the index says",
				 src->size);
		log_error("%s: %s: %s", job->label, status.final_url, status.error);
		rc = reader_errno(rc);
		goto out;
	}
	rc = sink_verdict(&sink, src, why, sizeof(why));
	if (rc) {
		log_error("%s: %s: %s", job->label, status.final_url, why);
		goto out;
	}
	log_info("%s: downloaded %" PRIu64 " bytes from %s in %.3f s, %s verified", job->label,
		 sink.received, status.final_url, seconds_since(&start),
		 digest_algo_name(src->digest.algo));
out:
	if (rc)
		cache_tmp_discard(set->cache, tmp);
	sink_close(&sink);
	return rc;
}

/* Verified bytes of src in a cache temporary, from wherever they are. */
static int obtain(struct download_set *set, struct job *job, struct cache_tmp *tmp)
{
	for (size_t i = 0; i < job->src.nlocal; i++)
		if (import_local(set, job, job->src.local[i], tmp) == 0)
			return 0;
	if (set->offline) {
		log_error("%s: offline, and not in the cache", job->label);
		return -EIO;
	}
	return download_url(set, job, tmp);
}

static int run_file(struct download_set *set, struct job *job)
{
	struct cache_tmp tmp;
	int rc = check_in_place(set, job);

	if (rc == 0)
		return 0;
	rc = obtain(set, job, &tmp);
	if (rc)
		return rc;
	rc = cache_tmp_install(set->cache, &tmp, &job->src.digest);
	if (rc) {
		log_error("%s: cannot install %s in the cache: %s", job->label,
			  job->src.cache_path, strerror(-rc));
		rc = reader_errno(rc);
	}
	return rc;
}

static int run_archive(struct download_set *set, struct job *job)
{
	const struct source *src = &job->src;
	struct cache_tmp archive = { .fd = -1 };
	char dest[PATH_MAX], why[512];
	char *dir_rel = NULL;
	struct timespec start;
	int rc;

	rc = cache_dir_verified(set->cache, src->cache_path, &src->digest);
	if (rc == 0)
		return 0;
	rc = obtain(set, job, &archive);
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
	rc = stage_extract(archive.fd, src->size, dest, &stage_default_limits, why, sizeof(why));
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
	cache_tmp_discard(set->cache, &archive); /* the archive is not kept */
	free(dir_rel);
	return rc;
}

static void job_unref_locked(struct job *job)
{
	if (--job->refs > 0)
		return;
	source_clear(&job->src);
	free(job->label);
	free(job);
}

static void *job_main(void *arg)
{
	struct job *job = arg;
	struct download_set *set = job->set;
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
	job->done = true;
	job->result = rc;
	set->running--;
	pthread_cond_broadcast(&set->changed);
	job_unref_locked(job);
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
	job->refs = 1; /* the worker's */
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
		job_unref_locked(job);
		return rc;
	}
	job->next = set->jobs;
	set->jobs = job;
	set->running++;
	*out = job;
	return 0;
}

int download_ensure(struct download_set *set, const struct source *src, const char *label)
{
	struct job *job;
	int rc = 0;

	pthread_mutex_lock(&set->lock);
	for (job = set->jobs; job; job = job->next)
		if (strcmp(job->src.cache_path, src->cache_path) == 0)
			break;
	if (!job)
		rc = job_start_locked(set, src, label, &job);
	if (rc == 0) {
		job->refs++;
		while (!job->done)
			pthread_cond_wait(&set->changed, &set->lock);
		rc = job->result;
		job_unref_locked(job);
	}
	pthread_mutex_unlock(&set->lock);
	return rc;
}

int download_set_new(struct download_set **out, struct cache *cache, struct fetcher *fetcher,
		     bool offline)
{
	struct download_set *set = calloc(1, sizeof(*set));

	*out = NULL;
	if (!set)
		return -ENOMEM;
	set->cache = cache;
	set->fetcher = fetcher;
	set->offline = offline;
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->changed, NULL);
	*out = set;
	return 0;
}

void download_set_free(struct download_set *set)
{
	if (!set)
		return;
	fetcher_cancel_all(set->fetcher);
	pthread_mutex_lock(&set->lock);
	while (set->running > 0)
		pthread_cond_wait(&set->changed, &set->lock);
	pthread_mutex_unlock(&set->lock);
	pthread_cond_destroy(&set->changed);
	pthread_mutex_destroy(&set->lock);
	free(set);
}
