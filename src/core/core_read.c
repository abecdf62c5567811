/* core_read.c: the core's read path, shared by the mount and the omnihub
 * command: what an open of a hub file gets (the file here, a stream, or a
 * job to wait on), stream reads, archives staged, the status files. Not
 * for: FUSE (fs.c), hubs opening (core.c), how files are fetched
 * (download.c, transfer.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "config.h"
#include "core.h"
#include "download.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "transfer.h"

/* A job an open waits on: what the file is, to open it once made. */
struct core_wait {
	struct core_store *store; /* the core's */
	struct source made;       /* owned; a made file's source (kind SOURCE_MADE) */
	struct digest_spec digest;
	uint64_t size;
	core_wait_fn done;
	void *ctx;
};

/* A file read as it arrives (stream mode). */
struct core_stream {
	struct transfer *transfer;      /* a reference */
	struct transfer_engine *engine; /* the transfer's */
};

static void label_of(const struct hub *hub, const char *path, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s%s%s", hub->name, path[0] ? "/" : "", path);
}

/* Whether another client's copy exists: then the job copies it, which
 * beats streaming from the network. */
static bool any_local(const struct source *src)
{
	for (size_t i = 0; i < src->nlocal; i++)
		if (access(src->local[i], R_OK) == 0)
			return true;
	return false;
}

void core_wait_free(struct core_wait *wait)
{
	if (!wait)
		return;
	source_clear(&wait->made);
	free(wait);
}

/* download_done_fn: the caller's callback gets the wait, to open the file. */
static void wait_done(void *ctx, int rc)
{
	struct core_wait *wait = ctx;

	wait->done(wait->ctx, wait, rc);
}

int core_wait_fd(struct core_wait *wait, int *fd)
{
	if (wait->made.kind == SOURCE_MADE)
		return download_open_made(wait->store->downloads, &wait->made, fd);
	return blob_open(wait->store->blobs, &wait->digest, wait->size, fd);
}

void core_open_cancel(struct core *core, struct hub *hub, uint64_t wait_id)
{
	download_cancel(core_store_of(core, hub)->downloads, wait_id);
}

/* Starts the job making src present; out->wait_id names the wait. */
static int open_wait(struct core_store *store, const struct source *src, const char *label,
		     core_wait_fn done, void *ctx, struct core_open *out)
{
	struct core_wait *wait = calloc(1, sizeof(*wait));
	int rc = wait ? 0 : -ENOMEM;

	if (rc == 0 && src->kind == SOURCE_MADE)
		rc = source_copy(&wait->made, src);
	if (rc)
		goto out;
	wait->store = store;
	wait->digest = src->digest;
	wait->size = src->size;
	wait->done = done;
	wait->ctx = ctx;
	out->kind = CORE_OPEN_WAIT;
	rc = download_start(store->downloads, src, label, wait_done, wait, &out->wait_id);
out:
	if (rc)
		core_wait_free(wait);
	return rc;
}

static int open_stream(struct core_store *store, const struct source *src, const char *label,
		       struct core_open *out)
{
	struct transfer_source tsrc = download_transfer_source(src);
	struct core_stream *s = calloc(1, sizeof(*s));
	int rc = s ? transfer_get(store->engine, &tsrc, label, &s->transfer) : -ENOMEM;

	if (rc) {
		free(s);
		return rc == -ENOSPC || rc == -EDQUOT || rc == -EINTR || rc == -ENOMEM ? rc : -EIO;
	}
	s->engine = store->engine;
	out->kind = CORE_OPEN_STREAM;
	out->stream = s;
	return 0;
}

/* A file a hub makes from its index (hub_ops.content): its bytes in an
 * anonymous file, so the mount serves it as any other fd. */
static int open_content(struct hub *hub, const char *path, struct core_open *out)
{
	char *data = NULL;
	size_t len = 0;
	int fd = -1, rc = hub->ops->content(hub, path, &data, &len);

	if (rc)
		goto out;
	fd = memfd_create("omnihub-content", MFD_CLOEXEC);
	if (fd < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len)) {
		rc = fd < 0 ? -errno : -EIO;
		log_error("%s/%s: cannot hold its content in memory: %s", hub->name, path,
			  strerror(-rc));
		goto out;
	}
	out->kind = CORE_OPEN_FD;
	out->fd = fd;
	out->size = len;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

int core_open(struct core *core, struct hub *hub, const char *path,
	      const struct digest_spec *digest, uint64_t size, core_wait_fn done, void *ctx,
	      struct core_open *out)
{
	struct core_store *store = core_store_of(core, hub);
	struct metrics *metrics = core_metrics(core);
	char label[PATH_MAX];
	struct source src;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (hub->ops->content)
		return open_content(hub, path, out);
	rc = core_source(core, hub, path, &src);
	if (rc)
		return rc;
	label_of(hub, path, label, sizeof(label));
	out->size = src.size;
	if (src.kind == SOURCE_MADE) {
		/* Made on its first open, served once made. */
		rc = download_open_made(store->downloads, &src, &out->fd);
		if (rc == 0) {
			out->kind = CORE_OPEN_FD;
			metrics_add(metrics, METRICS_CACHE_HITS, 1);
			metrics_file_from(metrics, METRICS_FROM_LOCAL);
		} else {
			rc = open_wait(store, &src, label, done, ctx, out);
		}
		goto out;
	}
	if (digest && (src.size != size || !digest_spec_same(&src.digest, digest))) {
		/* The index changed what this name means since the caller
		 * learnt it. */
		rc = -ESTALE;
		goto out;
	}
	rc = blob_open(store->blobs, &src.digest, src.size, &out->fd);
	if (rc == -EMFILE || rc == -ENFILE) {
		log_error("%s: cannot open: %s (raise the open-file limit, ulimit -n)", label,
			  strerror(-rc));
	} else if (rc == 0) {
		out->kind = CORE_OPEN_FD;
		metrics_add(metrics, METRICS_CACHE_HITS, 1);
		metrics_file_from(metrics, METRICS_FROM_LOCAL);
		blob_link(store->blobs, &src.digest, src.cache_path); /* a name deleted by hand */
	} else if (rc == -ENOENT && config_hub_stream(core_config(core), hub->name) &&
		   !src.offline && !any_local(&src)) {
		metrics_add(metrics, METRICS_CACHE_MISSES, 1);
		rc = open_stream(store, &src, label, out);
	} else {
		/* Missing, or its stamp no longer holds (the job hashes it),
		 * or another client has it: a job. */
		rc = open_wait(store, &src, label, done, ctx, out);
	}
out:
	source_clear(&src);
	return rc;
}

void core_stream_hint(struct core_stream *s, uint64_t offset, uint64_t length)
{
	transfer_hint(s->transfer, offset, length);
}

int core_stream_wait(struct core_stream *s, uint64_t offset, uint64_t length, bool whole,
		     void (*fn)(void *ctx, int rc), void *ctx, uint64_t *id)
{
	if (whole)
		return transfer_wait_complete(s->transfer, fn, ctx, id);
	return transfer_wait_range(s->transfer, offset, length, fn, ctx, id);
}

void core_stream_cancel(struct core_stream *s, uint64_t id)
{
	transfer_wait_cancel(s->engine, id);
}

int core_stream_fd(const struct core_stream *s)
{
	return transfer_fd(s->transfer);
}

void core_stream_put(struct core_stream *s)
{
	if (!s)
		return;
	transfer_put(s->transfer);
	free(s);
}

int core_made_stat(struct core *core, struct hub *hub, const char *path, struct stat *st)
{
	struct source src;
	int fd, rc = core_source(core, hub, path, &src);

	if (rc)
		return rc;
	rc = download_open_made(core_store_of(core, hub)->downloads, &src, &fd);
	if (rc == 0) {
		rc = fstat(fd, st) == 0 ? 0 : -errno;
		close(fd);
	}
	source_clear(&src);
	return rc;
}

int core_stage(struct core *core, struct hub *hub, const char *path, bool may_wait,
	       char **cache_path)
{
	struct core_store *store = core_store_of(core, hub);
	char label[PATH_MAX];
	struct source src;
	int rc;

	*cache_path = NULL;
	rc = core_source(core, hub, path, &src);
	if (rc)
		return rc;
	label_of(hub, path, label, sizeof(label));
	rc = cache_dir_verified(store->cache, src.cache_path, &src.digest);
	if ((rc == -ENOENT || rc == -ESTALE) && !may_wait)
		rc = -EWOULDBLOCK;
	else if (rc == -ENOENT || rc == -ESTALE)
		rc = download_ensure(store->downloads, &src, label);
	if (rc == 0) {
		*cache_path = src.cache_path;
		src.cache_path = NULL;
	}
	source_clear(&src);
	return rc;
}

int core_defer(struct core *core, void (*fn)(void *ctx), void *ctx)
{
	return transfer_engine_defer(core_store(core, 0)->engine, fn, ctx);
}

int core_staged_open(struct cache *cache, const char *rel)
{
	int fd = cache_openat(cache, rel, O_RDONLY, 0);

	/* A file deleted by hand is ENOENT, no failure of ours; any other
	 * error (a failing disk) reaches the reader as it is, so the log says
	 * which file and why. */
	if (fd < 0 && fd != -ENOENT)
		log_error("%s: cannot open it in the cache: %s", rel, strerror(-fd));
	return fd;
}

ssize_t core_staged_readlink(struct cache *cache, const char *rel, char *buf, size_t size)
{
	return cache_readlink(cache, rel, buf, size);
}

int core_statvfs(struct core *core, struct statvfs *st)
{
	return fstatvfs(cache_root_fd(core_cache(core)), st) == 0 ? 0 : -errno;
}

/* ---- the status files ---- */

/* The transfers of every store, one list; *out is the caller's. */
static int every_transfer(struct core *core, struct transfer_status **out, size_t *count)
{
	struct transfer_status *all = NULL;
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < core_store_count(core) && rc == 0; i++) {
		struct transfer_status *one = NULL, *grown;
		size_t k = 0;
		rc = transfer_engine_list(core_store(core, i)->engine, &one, &k);
		if (rc || k == 0) {
			free(one);
			continue;
		}
		grown = realloc(all, (n + k) * sizeof(*grown));
		if (!grown) {
			transfer_status_free(one, k);
			rc = -ENOMEM;
			break;
		}
		all = grown;
		memcpy(all + n, one, k * sizeof(*one));
		n += k;
		free(one); /* its items' strings are all's now */
	}
	if (rc) {
		transfer_status_free(all, n);
		all = NULL;
		n = 0;
	}
	*out = all;
	*count = n;
	return rc;
}

/* The use of every store, summed: the limit is the sum of the limits,
 * none when one store has none. */
static void every_usage(struct core *core, struct blob_usage *usage)
{
	bool unlimited = false;

	memset(usage, 0, sizeof(*usage));
	for (size_t i = 0; i < core_store_count(core); i++) {
		struct blob_usage one;
		blob_store_usage(core_store(core, i)->blobs, &one);
		usage->bytes += one.bytes;
		usage->blobs += one.blobs;
		usage->partial_bytes += one.partial_bytes;
		usage->partials += one.partials;
		usage->max += one.max;
		unlimited = unlimited || !one.max;
	}
	if (unlimited)
		usage->max = 0;
}

/* Appends the hubs' gauges (status.h) to the metrics text in *out. */
static int append_hub_metrics(const struct hub_state_view *hubs, size_t nhubs, char **out,
			      size_t *len)
{
	char *more = NULL, *both;
	size_t more_len = 0;
	int rc = status_hub_metrics(hubs, nhubs, &more, &more_len);

	if (rc)
		goto out;
	both = realloc(*out, *len + more_len + 1);
	if (!both) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(both + *len, more, more_len + 1);
	*out = both;
	*len += more_len;
out:
	free(more);
	return rc;
}

int core_status_text(struct core *core, const char *which, double uptime, char **out,
		     size_t *len)
{
	struct transfer_status *transfers = NULL;
	struct hub_state_view *hubs = NULL; /* every hub's state */
	struct blob_usage usage;
	size_t count = 0, nhubs;
	int rc;

	if (strcmp(which, "log") == 0)
		return log_recent(out, len);
	hubs = calloc(core_hub_count(core) + 1, sizeof(*hubs));
	if (!hubs)
		return -ENOMEM;
	nhubs = core_hub_states(core, hubs, core_hub_count(core));
	rc = every_transfer(core, &transfers, &count);
	if (rc)
		goto out;
	every_usage(core, &usage);
	if (strcmp(which, "status") == 0) {
		struct status_input in = { .transfers = transfers,
					   .ntransfers = count,
					   .usage = &usage,
					   .uptime_seconds = uptime,
					   .hubs = hubs,
					   .nhubs = nhubs };
		rc = status_render(&in, out, len);
	} else {
		struct metrics_gauges gauges = { .cache_bytes = usage.bytes,
						 .cache_blobs = usage.blobs,
						 .partial_bytes = usage.partial_bytes,
						 .cache_max = usage.max,
						 .transfers = transfer_status_live(transfers,
										   count),
						 .uptime_seconds = uptime };
		for (size_t i = 0; i < count; i++)
			gauges.waiters += transfers[i].waiters;
		rc = metrics_render(core_metrics(core), &gauges, out, len);
		if (rc == 0)
			rc = append_hub_metrics(hubs, nhubs, out, len);
	}
out:
	free(hubs);
	transfer_status_free(transfers, count);
	return rc;
}
