/* test_blob.c: unit tests of blob.c's check of a blob without a record: it
 * is hashed again when a link made to it meanwhile changes its ctime (the
 * readable name blob_link makes), and gives up on one that keeps changing;
 * and the file a partial blob's sidecar names, kept across a restart.
 * Not for: downloads (test_transfers.py) or the records (test_cache). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "digest.h"
#include "tap.h"

#define BLOB_BYTES (64u << 20) /* hashed in tens of milliseconds at least */

static char base[] = "/tmp/omnihub-test-blob-XXXXXX";

struct linker {
	char blob[600], link[600];
	long stop_after_ms; /* -1: until told */
	atomic_bool stop;
	atomic_int links;
};

/* Links the blob and unlinks the link again, each a ctime change of the
 * blob, every millisecond. */
static void *linker_main(void *arg)
{
	struct linker *l = arg;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!atomic_load(&l->stop)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (l->stop_after_ms >= 0 && (now.tv_sec - start.tv_sec) * 1000 +
						     (now.tv_nsec - start.tv_nsec) / 1000000 >
						     l->stop_after_ms)
			break;
		if (link(l->blob, l->link) == 0) {
			unlink(l->link);
			atomic_fetch_add(&l->links, 1);
		}
		usleep(1000);
	}
	return NULL;
}

/* A right blob without a record at blobs/sha256/<hex>; its digest in *digest. */
static int make_blob(struct cache *cache, struct digest_spec *digest, char *path, size_t path_size)
{
	char hex[DIGEST_HEX_MAX], *rel = NULL;
	unsigned char *data = malloc(BLOB_BYTES);
	int fd, rc = -ENOMEM;

	if (!data)
		return rc;
	for (size_t i = 0; i < BLOB_BYTES; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 24);
	snprintf(path, path_size, "%s/data", base);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	rc = fd >= 0 && write(fd, data, BLOB_BYTES) == (ssize_t)BLOB_BYTES ? 0 : -EIO;
	if (rc == 0)
		rc = digest_fd(fd, DIGEST_SHA256, BLOB_BYTES, hex);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = digest_spec_set(digest, DIGEST_SHA256, hex);
	if (rc == 0)
		rc = blob_rel(digest, "", &rel);
	if (rc == 0) {
		char dir[600], sub[620], dest[600];
		snprintf(dir, sizeof(dir), "%s/cache/blobs", base);
		snprintf(sub, sizeof(sub), "%s/sha256", dir);
		snprintf(dest, sizeof(dest), "%s/cache/%s", base, rel);
		mkdir(dir, 0755);
		mkdir(sub, 0755);
		rc = rename(path, dest) == 0 ? 0 : -errno;
		snprintf(path, path_size, "%s", dest);
	}
	(void)cache;
	free(rel);
	free(data);
	return rc;
}

static int check_while_linked(struct blob_store *store, const struct digest_spec *digest,
			      struct linker *l)
{
	pthread_t thread;
	int fd = -1, rc;

	atomic_init(&l->stop, false);
	atomic_init(&l->links, 0);
	pthread_create(&thread, NULL, linker_main, l);
	usleep(3000); /* the first hash starts while links are made */
	rc = blob_check(store, digest, BLOB_BYTES, "test", &fd);
	atomic_store(&l->stop, true);
	pthread_join(thread, NULL);
	if (fd >= 0)
		close(fd);
	return rc;
}

int main(void)
{
	struct cache *cache = NULL;
	struct blob_store *store = NULL;
	struct digest_spec digest;
	struct linker l = { .stop_after_ms = 20 };
	const char *why = NULL;
	char croot[600];
	int rc;

	tap_ok(mkdtemp(base) != NULL, "temporary directory %s", base);
	snprintf(croot, sizeof(croot), "%s/cache", base);
	tap_ok(mkdir(croot, 0755) == 0 && cache_open(&cache, croot, &why) == 0 &&
		       blob_store_open(&store, cache, 0) == 0,
	       "a cache and its blob store");
	tap_ok(make_blob(cache, &digest, l.blob, sizeof(l.blob)) == 0, "a 64 MiB blob, no record");
	snprintf(l.link, sizeof(l.link), "%s/cache/name", base);

	rc = check_while_linked(store, &digest, &l);
	tap_ok(rc == 0, "links made while it is first hashed: hashed again and served (%d, %d links)",
	       rc, atomic_load(&l.links));
	{
		int fd = -1;
		rc = blob_open(store, &digest, BLOB_BYTES, &fd);
		tap_ok(rc == 0, "and recorded: the next open needs no hash (%d)", rc);
		if (fd >= 0)
			close(fd);
	}

	/* A blob that keeps changing: given up on, not hashed for ever. */
	{
		char *rel = NULL;
		blob_rel(&digest, "", &rel);
		cache_forget(cache, rel);
		free(rel);
	}
	l.stop_after_ms = -1;
	rc = check_while_linked(store, &digest, &l);
	tap_ok(rc == -ESTALE, "links made all along: not served (%d, %d links)", rc,
	       atomic_load(&l.links));

	/* A partial blob's file (its sidecar's path): saved, kept when the
	 * writer starts the bytes over, handed to cache ls, kept on resume. */
	{
		static const char file[] = "onnx/m/opset-9/model.onnx";
		struct blob_partial_info *parts = NULL;
		struct blob_partial partial;
		struct digest_spec pd;
		size_t nparts = 0;
		char *text = NULL;
		size_t len = 0;
		time_t mtime;

		digest_spec_set(&pd, DIGEST_SHA256,
				"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
		rc = blob_partial_open(store, &pd, 3000, 1024, "https://h/x", &partial);
		tap_ok(rc == 0 && partial.writer && partial.state.path == NULL,
		       "a new partial blob names no file (%d)", rc);
		rc = rc ? rc : sidecar_set_path(&partial.state, file);
		rc = rc ? rc : blob_partial_save(store, &partial);
		bitmap_set(&partial.state.pieces, 1);
		rc = rc ? rc : blob_partial_restart(store, &partial, "\"etag2\"");
		tap_ok(rc == 0 && partial.state.path && strcmp(partial.state.path, file) == 0 &&
			       partial.state.pieces.count == 0 &&
			       strcmp(partial.state.validator, "\"etag2\"") == 0,
		       "a restart drops the pieces and keeps the file (%d)", rc);
		tap_ok(cache_read_small(cache, partial.state_rel, 4096, &text, &len, &mtime) == 0 &&
			       strstr(text, "\npath onnx/m/opset-9/model.onnx\n") != NULL,
		       "its sidecar on disk names the file");
		free(text);
		blob_partial_close(&partial);
		rc = blob_store_partials(store, &parts, &nparts);
		tap_ok(rc == 0 && nparts == 1 && parts[0].path && strcmp(parts[0].path, file) == 0 &&
			       parts[0].size == 3000 && !parts[0].in_progress,
		       "blob_store_partials hands the file to cache ls (%zu)", nparts);
		blob_partial_infos_free(parts, nparts);
		rc = blob_partial_open(store, &pd, 3000, 1024, "https://h/x", &partial);
		tap_ok(rc == 0 && partial.state.path && strcmp(partial.state.path, file) == 0,
		       "a resume reads the file back (%d)", rc);
		blob_partial_discard(store, &partial);
		blob_partial_close(&partial);
	}

	blob_store_close(store);
	cache_close(cache);
	{
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		tap_ok(system(cmd) == 0, "clean up");
	}
	return tap_done();
}
