/* test_cache.c: unit tests of cache.c: atomic install, stamps that notice a
 * changed file, staged trees, small files. Not for: downloading. */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "tap.h"

static char root[] = "/tmp/omnihub-test-cache-XXXXXX";

/* Number of entries in a cache directory whose name contains needle. */
static int count_named(const char *rel_dir, const char *needle)
{
	char path[512];
	struct dirent *d;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", root, rel_dir);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		if (strstr(d->d_name, needle))
			n++;
	closedir(dir);
	return n;
}

static int write_text(int fd, const char *text)
{
	return write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
}

static void spec_of(struct digest_spec *spec, const char *text)
{
	char hex[DIGEST_HEX_MAX];
	struct digest *dg;

	digest_new(&dg, DIGEST_SHA256, strlen(text));
	digest_update(dg, text, strlen(text));
	digest_final_hex(dg, hex);
	digest_free(dg);
	digest_spec_set(spec, DIGEST_SHA256, hex);
}

static void test_files(struct cache *cache)
{
	struct digest_spec hello, other;
	struct cache_tmp tmp;
	struct timespec times[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
	char buf[64] = "", path[512];
	int fd = -1, rc;

	spec_of(&hello, "hello");
	spec_of(&other, "other");
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &hello, 5, &fd) == -ENOENT,
	       "absent file: -ENOENT");

	rc = cache_tmp_create(cache, "hub/m/file.bin", &tmp);
	tap_ok(rc == 0 && tmp.fd >= 0 && write_text(tmp.fd, "hello") == 0, "temporary created");
	tap_ok(count_named("hub/m", ".tmp") == 1 && count_named("hub/m", "file.bin") == 1,
	       "while written, only a hidden .tmp exists");
	rc = cache_tmp_install(cache, &tmp, &hello);
	tap_ok(rc == 0 && tmp.fd == -1 && count_named("hub/m", ".tmp") == 0,
	       "installed: no temporary left");
	rc = cache_open_verified(cache, "hub/m/file.bin", &hello, 5, &fd);
	tap_ok(rc == 0 && fd >= 0 && read(fd, buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0,
	       "installed file opens as verified with its content");
	if (fd >= 0)
		close(fd);
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &other, 5, &fd) == -ESTALE,
	       "another expected digest: -ESTALE");
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &hello, 6, &fd) == -ESTALE,
	       "another expected size: -ESTALE");

	/* A file changed by hand must be checked again. */
	snprintf(path, sizeof(path), "%s/hub/m/file.bin", root);
	utimensat(AT_FDCWD, path, times, 0);
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &hello, 5, &fd) == -ESTALE,
	       "after the mtime changed: -ESTALE");
	fd = open(path, O_RDONLY);
	tap_ok(fd >= 0 && cache_mark_verified(cache, "hub/m/file.bin", fd, &hello) == 0,
	       "marked verified again");
	close(fd);
	fd = -1;
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &hello, 5, &fd) == 0,
	       "verified after marking");
	close(fd);

	/* A file that appears without our stamp (copied by a person). */
	fd = open(path, O_WRONLY | O_TRUNC);
	write_text(fd, "hellO");
	close(fd);
	fd = -1;
	tap_ok(cache_open_verified(cache, "hub/m/file.bin", &hello, 5, &fd) == -ESTALE,
	       "rewritten in place: -ESTALE, never trusted");

	/* A discarded temporary leaves nothing. */
	rc = cache_tmp_create(cache, "hub/m/gone.bin", &tmp);
	write_text(tmp.fd, "partial");
	cache_tmp_discard(cache, &tmp);
	tap_ok(rc == 0 && count_named("hub/m", "gone") == 0, "discarded temporary removed");

	/* A symlink planted at the final path is not followed. */
	snprintf(path, sizeof(path), "%s/hub/m/link.bin", root);
	tap_ok(symlink("/etc/passwd", path) == 0 &&
		       cache_open_verified(cache, "hub/m/link.bin", &hello, 5, &fd) == -ESTALE,
	       "a symlink in the cache is not followed");
}

static void test_trees(struct cache *cache)
{
	struct digest_spec a, b;
	char *tmp_rel = NULL, path[512];
	int fd;

	spec_of(&a, "archive a");
	spec_of(&b, "archive b");
	tap_ok(cache_dir_verified(cache, "hub/t/data", &a) == -ENOENT, "absent tree: -ENOENT");

	tap_ok(cache_tmpdir_create(cache, "hub/t/data", &tmp_rel) == 0, "temporary tree created");
	snprintf(path, sizeof(path), "%s/%s/old.txt", root, tmp_rel);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	tap_ok(count_named("hub/t", "data") == 1 && count_named("hub/t", ".tmp") == 1,
	       "the tree is hidden until installed");
	tap_ok(cache_tmpdir_install(cache, tmp_rel, "hub/t/data", &a) == 0 &&
		       count_named("hub/t", ".tmp") == 0,
	       "tree installed");
	free(tmp_rel);
	tap_ok(cache_dir_verified(cache, "hub/t/data", &a) == 0, "tree verified for its digest");
	tap_ok(cache_dir_verified(cache, "hub/t/data", &b) == -ESTALE,
	       "tree of another digest: -ESTALE");

	/* Replacing an outdated tree. */
	tap_ok(cache_tmpdir_create(cache, "hub/t/data", &tmp_rel) == 0, "second tree created");
	snprintf(path, sizeof(path), "%s/%s/new.txt", root, tmp_rel);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	tap_ok(cache_tmpdir_install(cache, tmp_rel, "hub/t/data", &b) == 0 &&
		       cache_dir_verified(cache, "hub/t/data", &b) == 0 &&
		       count_named("hub/t/data", "new.txt") == 1 &&
		       count_named("hub/t/data", "old.txt") == 0 && count_named("hub/t", ".tmp") == 0,
	       "an outdated tree is replaced whole, the old one removed");
	free(tmp_rel);
}

static void test_prune(struct cache *cache)
{
	struct cache_tmp tmp;
	char path[512];

	tap_ok(cache_tmp_create(cache, "hub/p/keep/file.bin", &tmp) == 0, "a file in hub/p/keep");
	cache_tmp_discard(cache, &tmp);
	tap_ok(cache_tmp_create(cache, "hub/p/gone/deeper/file.bin", &tmp) == 0,
	       "a temporary in hub/p/gone/deeper");
	cache_tmp_discard(cache, &tmp);
	snprintf(path, sizeof(path), "%s/hub/p/keep/other", root);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	cache_prune(cache, "hub/p/gone/deeper/file.bin");
	tap_ok(count_named("hub/p", "gone") == 0 && count_named("hub/p", "keep") == 1,
	       "empty folders pruned, up to one that holds something");
	cache_prune(cache, "hub/p/keep/file.bin");
	tap_ok(count_named("hub/p/keep", "other") == 1, "a folder with a file is kept");
}

static void test_small(struct cache *cache)
{
	char *data = NULL;
	size_t len = 0;
	time_t mtime = 0;

	tap_ok(cache_write_small(cache, ".index/hub/index.json", "[1,2]", 5) == 0,
	       "small file written");
	tap_ok(cache_read_small(cache, ".index/hub/index.json", 100, &data, &len, &mtime) == 0 &&
		       len == 5 && strcmp(data, "[1,2]") == 0 && mtime > 0,
	       "small file read back, NUL-terminated");
	free(data);
	tap_ok(cache_read_small(cache, ".index/hub/index.json", 4, &data, &len, &mtime) == -EFBIG,
	       "over the limit: -EFBIG");
	tap_ok(count_named(".index/hub", ".tmp") == 0, "no temporary left");
}

static void test_orphan_temporaries(void)
{
	char name[64];

	tap_ok(cache_is_orphan_temporary(".model.onnx.ab12cd.partial"),
	       "an old-style .partial temporary is an orphan");
	snprintf(name, sizeof(name), ".model.onnx.%ld-ab12cd.tmp", (long)getpid());
	tap_ok(!cache_is_orphan_temporary(name), "a temporary of a live process is not");
	tap_ok(cache_is_orphan_temporary(".model.onnx.2147483646-ab12cd.tmp"),
	       "a temporary of a process that is gone is");
	tap_ok(!cache_is_orphan_temporary("model.onnx") && !cache_is_orphan_temporary(".hidden") &&
		       !cache_is_orphan_temporary(".x.notapid-ab12cd.tmp"),
	       "other names are not");
}

int main(void)
{
	struct cache *cache = NULL;
	const char *why = NULL;

	test_orphan_temporaries();
	tap_ok(cache_open(&cache, "relative/dir", &why) == -EINVAL && why, "relative root refused");
	tap_ok(mkdtemp(root) != NULL, "temporary root %s", root);
	{
		char nested[600];
		snprintf(nested, sizeof(nested), "%s/a/b/c", root);
		tap_ok(cache_open(&cache, nested, &why) == 0, "nested root created");
		cache_close(cache);
	}
	tap_ok(cache_open(&cache, root, &why) == 0, "cache opened");
	test_files(cache);
	test_trees(cache);
	test_prune(cache);
	test_small(cache);
	cache_close(cache);
	tap_ok(tap_remove_tree(root) == 0, "temporary directory %s removed", root);
	return tap_done();
}
