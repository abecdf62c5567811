/* test_cache.c: unit tests of cache.c: atomic install, stamps that notice a
 * changed file, staged trees, small files, untrusted paths, links planted
 * in the cache and their quarantine. Not for: downloading. */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "tap.h"

/* A UNIX socket bound at path, its descriptor closed: the entry stays. */
static int bind_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc = -1;

	if (fd < 0 || strlen(path) >= sizeof(addr.sun_path))
		goto out;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	rc = bind(fd, (const struct sockaddr *)&addr, sizeof(addr));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Everything a test makes is under base, even when the code under test is
 * wrong: paths that try to leave the cache aim at base/outside only. */
static char base[] = "/tmp/omnihub-test-cache-XXXXXX";
static char root[300];
/* Outside the cache: the links planted in it point here, and nothing the
 * cache does may change what is here. */
static char outside[300];
static int outside_entries;

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
	struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
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
	tap_ok(rc == 0 && fd >= 0 && read(fd, buf, sizeof(buf)) == 5 &&
	           memcmp(buf, "hello", 5) == 0,
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
	tap_ok(fd >= 0 && cache_mark_verified(cache, "hub/m/file.bin", fd, &hello, NULL) == 0,
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

static void test_check_rel(void)
{
	static const char *const good[] = {"a",
	                                   "a/b/c.onnx",
	                                   ".index/onnx/x.json",
	                                   "a..b/c.",
	                                   "blobs/sha256/.x.state.1-abcdef.tmp",
	                                   "Über model"};
	static const struct {
		const char *rel, *label;
	} bad[] = {{"", "empty"},
	           {"/etc/passwd", "absolute"},
	           {"..", ".."},
	           {".", "."},
	           {"../x", "../x"},
	           {"a/../b", "a/../b"},
	           {"a/..", "a/.."},
	           {"a/./b", "a/./b"},
	           {"a//b", "a//b"},
	           {"a/", "a/ (empty last component)"},
	           {"/", "/"},
	           {"a\nb", "a newline"},
	           {"a\x1b[2Jb", "an escape sequence"},
	           {"a\x7f", "DEL"},
	           {"a/\tb", "a tab"}};
	char long_name[NAME_MAX + 2], long_path[PATH_MAX + 300];
	bool all = true;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		all = all && cache_check_rel(good[i]) == 0;
	tap_ok(all, "ordinary relative paths pass");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tap_ok(cache_check_rel(bad[i].rel) == -EINVAL, "refused: %s", bad[i].label);
	memset(long_name, 'n', NAME_MAX);
	long_name[NAME_MAX] = '\0';
	tap_ok(cache_check_rel(long_name) == 0, "a component of NAME_MAX bytes passes");
	long_name[NAME_MAX] = 'n';
	long_name[NAME_MAX + 1] = '\0';
	tap_ok(cache_check_rel(long_name) == -EINVAL, "a component over NAME_MAX is refused");
	long_path[0] = '\0';
	while (strlen(long_path) < PATH_MAX)
		strcat(long_path, "abcdefghijklmnopqrstuvwxyz/");
	strcat(long_path, "f");
	tap_ok(cache_check_rel(long_path) == -EINVAL,
	       "a path of PATH_MAX bytes or more is refused");
}

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		outside_entries++;
	return 0;
}

/* Entries under outside, at any depth. */
static int count_outside(void)
{
	outside_entries = 0;
	if (nftw(outside, count_entry, 16, FTW_PHYS) != 0)
		return -1;
	return outside_entries;
}

static bool outside_intact(void)
{
	char path[600], buf[32] = "";
	int fd, n;

	snprintf(path, sizeof(path), "%s/secret", outside);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? (int)read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	return count_outside() == 2 && n == 6 && memcmp(buf, "secret", 6) == 0;
}

/* Paths that leave the cache are refused before anything is made. */
static void test_hostile_paths(struct cache *cache)
{
	struct digest_spec hello;
	struct cache_tmp tmp;
	char path[512], *tmp_rel = NULL, *data = NULL;
	size_t len;
	time_t mtime;
	int fd = -1;

	spec_of(&hello, "hello");
	tap_ok(cache_write_small(cache, "../outside/escape.json", "x", 1) == -EINVAL,
	       "write_small of ../outside/x: -EINVAL");
	tap_ok(cache_tmp_create(cache, "hub/../../outside/escape.bin", &tmp) == -EINVAL,
	       "tmp_create of hub/../../outside/x: -EINVAL");
	snprintf(path, sizeof(path), "%s/escape.bin", outside);
	tap_ok(cache_tmp_create(cache, path, &tmp) == -EINVAL,
	       "tmp_create of an absolute path: -EINVAL");
	tap_ok(cache_tmpdir_create(cache, "hub/a\nb", &tmp_rel) == -EINVAL && !tmp_rel,
	       "tmpdir_create with a newline: -EINVAL");
	tap_ok(cache_read_small(cache, "../outside/secret", 100, &data, &len, &mtime) == -EINVAL &&
	           !data,
	       "read_small of ../outside/secret: -EINVAL");
	snprintf(path, sizeof(path), "%s/secret", outside);
	tap_ok(cache_open_verified(cache, path, &hello, 6, &fd) == -EINVAL && fd == -1,
	       "open_verified of an absolute path: -EINVAL");
	tap_ok(cache_remove_tree(cache, "../outside/sub") == -EINVAL,
	       "remove_tree of ../outside/sub: -EINVAL");
	cache_prune(cache, "../outside/sub/file.bin");
	tap_ok(cache_opendir(cache, "hub/..") == NULL && errno == EINVAL,
	       "opendir of hub/..: EINVAL");
	tap_ok(outside_intact(), "nothing made, read or removed outside the cache");
}

static int plant(const char *rel, const char *target)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return symlink(target, path);
}

/* A link to a directory outside, planted at rel: nothing goes through it. */
static void test_planted_dir_link(struct cache *cache, const char *rel, const char *mode)
{
	struct digest_spec hello;
	struct cache_tmp tmp;
	char p[600], *tmp_rel = NULL, *data = NULL;
	size_t len = 0;
	time_t mtime;
	int fd = -1;
	DIR *dir;

	spec_of(&hello, "hello");
	tap_ok(plant(rel, outside) == 0, "%s: planted %s -> %s", mode, rel, outside);
	snprintf(p, sizeof(p), "%s/x/file.bin", rel);
	tap_ok(cache_tmp_create(cache, p, &tmp) == -ELOOP, "%s: tmp_create(%s): -ELOOP", mode, p);
	snprintf(p, sizeof(p), "%s/index.json", rel);
	tap_ok(cache_write_small(cache, p, "{}", 2) == -ELOOP, "%s: write_small(%s): -ELOOP", mode,
	       p);
	snprintf(p, sizeof(p), "%s/tree", rel);
	tap_ok(cache_tmpdir_create(cache, p, &tmp_rel) == -ELOOP && !tmp_rel,
	       "%s: tmpdir_create(%s): -ELOOP", mode, p);
	snprintf(p, sizeof(p), "%s/secret", rel);
	tap_ok(cache_read_small(cache, p, 100, &data, &len, &mtime) == -ELOOP && !data,
	       "%s: read_small(%s): -ELOOP, nothing read", mode, p);
	tap_ok(cache_open_verified(cache, p, &hello, 6, &fd) != 0 && fd == -1,
	       "%s: open_verified(%s) opens nothing", mode, p);
	snprintf(p, sizeof(p), "%s/sub", rel);
	tap_ok(cache_remove_tree(cache, p) == -ELOOP, "%s: remove_tree(%s): -ELOOP", mode, p);
	snprintf(p, sizeof(p), "%s/sub/file.bin", rel);
	cache_prune(cache, p);
	tap_ok((dir = cache_opendir(cache, rel)) == NULL && errno == ELOOP,
	       "%s: opendir(%s): ELOOP", mode, rel);
	if (dir)
		closedir(dir);
	tap_ok(outside_intact(),
	       "%s: the link's target is untouched (nothing made, read or removed)", mode);
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
}

/* The same through the helpers that work on the last component. */
static void test_planted_dir_link_at(struct cache *cache, const char *rel, const char *mode)
{
	char p[600], q[600], target[600];
	struct stat st;

	tap_ok(plant(rel, outside) == 0, "%s: planted %s again", mode, rel);
	tap_ok(cache_lstat(cache, rel, &st) == 0 && S_ISLNK(st.st_mode),
	       "%s: lstat(%s) describes the link itself", mode, rel);
	tap_ok(cache_readlink(cache, rel, target, sizeof(target)) == (ssize_t)strlen(outside) &&
	           strcmp(target, outside) == 0,
	       "%s: readlink(%s) gives its target", mode, rel);
	snprintf(p, sizeof(p), "%s/secret", rel);
	tap_ok(cache_lstat(cache, p, &st) == -ELOOP, "%s: lstat(%s): -ELOOP", mode, p);
	tap_ok(cache_openat(cache, p, O_RDONLY, 0) == -ELOOP, "%s: openat(%s): -ELOOP", mode, p);
	tap_ok(cache_unlink(cache, p, 0) == -ELOOP, "%s: unlink(%s): -ELOOP", mode, p);
	snprintf(q, sizeof(q), "%s/a/b", rel);
	tap_ok(cache_mkdirs(cache, q) == -ELOOP, "%s: mkdirs(%s): -ELOOP", mode, q);
	snprintf(q, sizeof(q), "%s/new", rel);
	tap_ok(cache_mkdir(cache, q, 0755) == -ELOOP, "%s: mkdir(%s): -ELOOP", mode, q);
	tap_ok(cache_write_small(cache, "hub/ok.txt", "ok", 2) == 0 &&
	           cache_rename(cache, "hub/ok.txt", q, 0) == -ELOOP &&
	           cache_link(cache, "hub/ok.txt", q) == -ELOOP &&
	           cache_rename(cache, p, "hub/stolen", 0) == -ELOOP &&
	           cache_link(cache, p, "hub/stolen") == -ELOOP,
	       "%s: rename and link into and out of %s: -ELOOP", mode, rel);
	tap_ok(outside_intact(), "%s: the link's target is untouched", mode);
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
}

/* A link as the last component is itself: never followed, replaced or
 * removed as a link. */
static void test_final_link(struct cache *cache)
{
	char target[600], *data = NULL, path[600];
	size_t len = 0;
	time_t mtime;
	struct stat st;

	snprintf(target, sizeof(target), "%s/secret", outside);
	tap_ok(plant("hub/m/final.json", target) == 0, "planted hub/m/final.json -> %s", target);
	tap_ok(cache_openat(cache, "hub/m/final.json", O_RDONLY, 0) == -ELOOP,
	       "a link as the last component is not opened");
	tap_ok(cache_read_small(cache, "hub/m/final.json", 100, &data, &len, &mtime) == -ENOENT &&
	           cache_lstat(cache, "hub/m/final.json", &st) == -ENOENT && outside_intact(),
	       "reading a small file where a link is planted removes the link: absent");
	tap_ok(plant("hub/m/final.json", target) == 0, "planted hub/m/final.json again");
	tap_ok(cache_write_small(cache, "hub/m/final.json", "mine", 4) == 0 &&
	           cache_lstat(cache, "hub/m/final.json", &st) == 0 && S_ISREG(st.st_mode) &&
	           outside_intact(),
	       "writing over it replaces the link, not its target");
	tap_ok(plant("hub/m/gone", outside) == 0 && cache_remove_tree(cache, "hub/m/gone") == 0 &&
	           cache_lstat(cache, "hub/m/gone", &st) == -ENOENT && outside_intact(),
	       "remove_tree of a link removes the link only");
	tap_ok(cache_mkdirs(cache, "hub/r/deep") == 0 && plant("hub/r/deep/in", outside) == 0 &&
	           cache_remove_tree(cache, "hub/r") == 0 &&
	           cache_lstat(cache, "hub/r", &st) == -ENOENT && outside_intact(),
	       "remove_tree of a tree holding a link removes the tree, not the target");
	snprintf(path, sizeof(path), "%s/hub/m/final.json", root);
	unlink(path);
}

/* What a download does, resolved by the walk. */
static void test_walk_basics(struct cache *cache)
{
	struct digest_spec hello;
	struct cache_tmp tmp;
	char *data = NULL, *tmp_rel = NULL;
	size_t len = 0;
	time_t mtime;
	int fd = -1;

	spec_of(&hello, "hello");
	tap_ok(cache_tmp_create(cache, "walk/a/b/file.bin", &tmp) == 0 &&
	           write_text(tmp.fd, "hello") == 0 &&
	           cache_tmp_install(cache, &tmp, &hello) == 0 &&
	           cache_open_verified(cache, "walk/a/b/file.bin", &hello, 5, &fd) == 0,
	       "walk: a file created, installed and opened verified");
	if (fd >= 0)
		close(fd);
	tap_ok(cache_write_small(cache, "walk/index.json", "[]", 2) == 0 &&
	           cache_read_small(cache, "walk/index.json", 10, &data, &len, &mtime) == 0 &&
	           len == 2,
	       "walk: a small file written and read");
	free(data);
	tap_ok(cache_tmpdir_create(cache, "walk/tree", &tmp_rel) == 0 &&
	           cache_tmpdir_install(cache, tmp_rel, "walk/tree", &hello) == 0 &&
	           cache_dir_verified(cache, "walk/tree", &hello) == 0,
	       "walk: a tree installed");
	free(tmp_rel);
	tap_ok(cache_remove_tree(cache, "walk") == 0 && count_named("", "walk") == 0,
	       "walk: removed");
}

static void test_planted_links(struct cache *cache, const char *mode)
{
	static const char *const depths[] = {"d1", "hub/d2", "hub/m/d3"};

	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		test_planted_dir_link(cache, depths[i], mode);
		test_planted_dir_link_at(cache, depths[i], mode);
	}
}

/* A file of that name in the cache's root, last modified age seconds ago. */
static void plant_aged(struct cache *cache, const char *name, time_t age)
{
	struct timespec times[2] = { { .tv_sec = time(NULL) - age }, { .tv_sec = time(NULL) - age } };
	int fd = cache_openat(cache, name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		futimens(fd, times);
		close(fd);
	}
}

static void test_orphan_temporaries(struct cache *cache)
{
	struct cache_tmp tmp = { .fd = -1 };
	char name[256], maker[9] = "", dead[256];
	const char *slash;
	long pid = 0;

	tap_ok(cache_is_orphan_temporary(cache, "", ".model.onnx.ab12cd.partial"),
	       "an old-style .partial temporary is an orphan");
	tap_ok(cache_tmp_create(cache, "model.onnx", &tmp) == 0, "a temporary");
	slash = strrchr(tmp.tmp_rel, '/');
	snprintf(name, sizeof(name), "%s", slash ? slash + 1 : tmp.tmp_rel);
	tap_ok(sscanf(name, ".model.onnx.%8[0-9a-f].%ld-", maker, &pid) == 2 && pid == getpid(),
	       "its name says which machine and process made it: %s", name);
	tap_ok(!cache_is_orphan_temporary(cache, "", name), "a temporary of a live process is not");
	snprintf(dead, sizeof(dead), ".model.onnx.%s.2147483646-ab12cd.tmp", maker);
	tap_ok(cache_is_orphan_temporary(cache, "", dead),
	       "one of this machine's, of a process that is gone, is");
	tap_ok(cache_is_orphan_temporary(cache, "", ".model.onnx.2147483646-ab12cd.tmp"),
	       "an older version's name (no maker), of a process that is gone, is");
	snprintf(dead, sizeof(dead), ".model.onnx.%s.2147483646-ab12cd.tmp",
		 strcmp(maker, "0badc0de") ? "0badc0de" : "0badc0df");
	plant_aged(cache, dead, 60);
	tap_ok(!cache_is_orphan_temporary(cache, "", dead),
	       "another machine's (a shared cache), a minute old, is not: its process may run");
	plant_aged(cache, dead, CACHE_FOREIGN_TEMP_SECONDS + 60);
	tap_ok(cache_is_orphan_temporary(cache, "", dead), "an hour and more old, it is");
	cache_unlink(cache, dead, 0);
	cache_tmp_discard(cache, &tmp);
	tap_ok(!cache_is_orphan_temporary(cache, "", "model.onnx") &&
	           !cache_is_orphan_temporary(cache, "", ".hidden") &&
	           !cache_is_orphan_temporary(cache, "", ".x.notapid-ab12cd.tmp"),
	       "other names are not");
}

/* Installs text at rel, recorded as verified. */
static int install_text(struct cache *cache, const char *rel, const char *text,
			struct digest_spec *spec)
{
	struct cache_tmp tmp;
	int rc;

	spec_of(spec, text);
	rc = cache_tmp_create(cache, rel, &tmp);
	if (rc == 0)
		rc = write_text(tmp.fd, text) == 0 ? 0 : -EIO;
	if (rc == 0)
		return cache_tmp_install(cache, &tmp, spec);
	cache_tmp_discard(cache, &tmp);
	return rc;
}

static int verified(struct cache *cache, const char *rel, const struct digest_spec *spec,
		    uint64_t size)
{
	int fd = -1, rc = cache_open_verified(cache, rel, spec, size, &fd);

	if (fd >= 0)
		close(fd);
	return rc;
}

/* Whether cache_read_small finds nothing at rel (-ENOENT) after moving aside
 * what stood there (path, its name on disk). */
static bool read_small_moved_aside(struct cache *cache, const char *rel, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	time_t mtime;
	struct stat st;
	bool ok = cache_read_small(cache, rel, 100, &data, &len, &mtime) == -ENOENT &&
		  lstat(path, &st) != 0;

	free(data);
	return ok;
}

/* A byte changed in a recorded file, its mtime put back, at once and a
 * little later: never vouched for again, by this process (the memo) or
 * another (the record). */
static void test_records(struct cache *cache)
{
	struct digest_spec spec;
	struct stat st;
	char path[512], rec[512], text[512];
	const char *why = NULL;
	struct cache *other = NULL;
	int fd, n, flips = 0, caught = 0;

	tap_ok(install_text(cache, "hub/r/model.bin", "0123456789", &spec) == 0 &&
	           verified(cache, "hub/r/model.bin", &spec, 10) == 0,
	       "installed and verified");
	snprintf(path, sizeof(path), "%s/hub/r/model.bin", root);
	snprintf(rec, sizeof(rec), "%s/hub/r/.model.bin.ok", root);
	tap_ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0444,
	       "a complete file is read-only (0444)");
	tap_ok(access(rec, F_OK) == 0, "its record is a file beside it");
	for (int i = 0; i < 20; i++) {
		struct timespec times[2];
		if (install_text(cache, "hub/r/model.bin", "0123456789", &spec) != 0 ||
		    verified(cache, "hub/r/model.bin", &spec, 10) != 0)
			break;
		if (i % 2)
			usleep(10000);
		if (stat(path, &st) != 0)
			break;
		times[0] = st.st_atim;
		times[1] = st.st_mtim;
		fd = open(path, O_WRONLY);
		if (fd < 0 || pwrite(fd, "X", 1, 3) != 1) {
			if (fd >= 0)
				close(fd);
			break;
		}
		close(fd);
		futimens(fd = open(path, O_RDONLY), times);
		close(fd);
		flips++;
		if (verified(cache, "hub/r/model.bin", &spec, 10) == -ESTALE &&
		    cache_open(&other, root, &why) == 0 &&
		    verified(other, "hub/r/model.bin", &spec, 10) == -ESTALE)
			caught++;
		cache_close(other);
		other = NULL;
	}
	tap_ok(flips == 20 && caught == 20,
	       "a byte flipped at once or 10 ms after verification, mtime put back: caught %d of "
	       "%d times, in this process and another",
	       caught, flips);

	/* A racy record: the ctime not older than the moment it was written. */
	tap_ok(install_text(cache, "hub/r/racy.bin", "racy", &spec) == 0 &&
	           stat(path, &st) == 0,
	       "another file installed");
	snprintf(path, sizeof(path), "%s/hub/r/racy.bin", root);
	snprintf(rec, sizeof(rec), "%s/hub/r/.racy.bin.ok", root);
	fd = open(rec, O_RDONLY);
	n = fd >= 0 ? (int)read(fd, text, sizeof(text) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0 && stat(path, &st) == 0) {
		char *last;
		text[n] = '\0';
		last = strrchr(text, ' ');
		if (last)
			snprintf(last, sizeof(text) - (size_t)(last - text), " %lld\n",
				 (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
		fd = open(rec, O_WRONLY | O_TRUNC);
		write_text(fd, text);
		close(fd);
	}
	tap_ok(cache_open(&other, root, &why) == 0 &&
	           verified(other, "hub/r/racy.bin", &spec, 4) == -ESTALE,
	       "a racy record (ctime not older than its moment) is not trusted");
	cache_close(other);
	other = NULL;

	/* An older version's stamp, an xattr on the file, is never trusted. */
	unlink(rec);
	tap_ok(cache_open(&other, root, &why) == 0 &&
	           verified(other, "hub/r/racy.bin", &spec, 4) == -ESTALE &&
	           access(rec, F_OK) != 0,
	       "without a record: -ESTALE, and opening it writes none");
	cache_close(other);
	other = NULL;

	/* A FIFO where a file should be: neither open nor read blocks. */
	snprintf(path, sizeof(path), "%s/hub/r/fifo.bin", root);
	tap_ok(mkfifo(path, 0644) == 0 && verified(cache, "hub/r/fifo.bin", &spec, 4) == -ESTALE,
	       "a FIFO at a file's name: -ESTALE, no hang");
	tap_ok(read_small_moved_aside(cache, "hub/r/fifo.bin", path),
	       "a FIFO at a small file's name: moved aside, read as absent");

	/* A socket where a file should be: open gives ENXIO, which is a planted
	 * entry like a link, not an error for the reader. */
	snprintf(path, sizeof(path), "%s/hub/r/sock.bin", root);
	tap_ok(bind_socket(path) == 0 && verified(cache, "hub/r/sock.bin", &spec, 4) == -ESTALE,
	       "a socket at a file's name: -ESTALE");
	tap_ok(read_small_moved_aside(cache, "hub/r/sock.bin", path),
	       "a socket at a small file's name: moved aside, read as absent");
}

/* The memo is bounded, least recently used dropped first. */
static void test_memo_bound(struct cache *cache)
{
	struct digest_spec spec[6];
	char rel[64];
	bool ok = true;

	cache_memo_limit(cache, 4);
	for (int i = 0; i < 6; i++) {
		snprintf(rel, sizeof(rel), "hub/memo/%d.bin", i);
		ok = ok && install_text(cache, rel, rel, &spec[i]) == 0;
		if (i == 3) /* 0 used again: 1 is the least recently used */
			ok = ok && verified(cache, "hub/memo/0.bin", &spec[0], 14) == 0;
	}
	tap_ok(ok && cache_memo_count(cache) == 4, "6 records, a memo of 4: %zu remembered",
	       cache_memo_count(cache));
	tap_ok(cache_memo_holds(cache, "hub/memo/0.bin") &&
	           !cache_memo_holds(cache, "hub/memo/1.bin") &&
	           !cache_memo_holds(cache, "hub/memo/2.bin") &&
	           cache_memo_holds(cache, "hub/memo/5.bin"),
	       "the least recently used are dropped");
	tap_ok(verified(cache, "hub/memo/1.bin", &spec[1], 14) == 0 &&
	           cache_memo_holds(cache, "hub/memo/1.bin") && cache_memo_count(cache) == 4,
	       "a dropped one is vouched for by its record, remembered again");
	cache_memo_limit(cache, 16384);
}

/* The root deleted while the cache is open: made again on the next use. */
static void test_root_deleted(void)
{
	struct cache *cache = NULL;
	const char *why = NULL;
	char dir[600], path[700];
	char *data = NULL;
	size_t len = 0;
	time_t mtime;

	snprintf(dir, sizeof(dir), "%s/doomed", base);
	tap_ok(cache_open(&cache, dir, &why) == 0 &&
	           cache_write_small(cache, "a/b.json", "1", 1) == 0,
	       "a cache with a file");
	tap_ok(tap_remove_tree(dir) == 0, "its directory deleted");
	tap_ok(cache_read_small(cache, "a/b.json", 10, &data, &len, &mtime) == -ENOENT,
	       "its file is gone");
	tap_ok(cache_write_small(cache, "a/b.json", "2", 1) == 0, "written again");
	snprintf(path, sizeof(path), "%s/a/b.json", dir);
	tap_ok(access(path, F_OK) == 0, "the directory was made again, the file is in it");
	cache_close(cache);
}

/* The path of the n-th (from 0, in name order) entry in the quarantine
 * whose name ends with "-" suffix, into out: 0, or -1 if there is none. */
static int quarantined(const char *suffix, int n, char *out, size_t size)
{
	char dir[512], want[300];
	struct dirent **names = NULL;
	int count, found = -1;

	snprintf(dir, sizeof(dir), "%s/" CACHE_QUARANTINE_DIR, root);
	snprintf(want, sizeof(want), "-%s", suffix);
	count = scandir(dir, &names, NULL, alphasort);
	for (int i = 0; i < count; i++) {
		size_t len = strlen(names[i]->d_name), wlen = strlen(want);
		if (found < 0 && len > wlen && strcmp(names[i]->d_name + len - wlen, want) == 0 &&
		    n-- == 0) {
			snprintf(out, size, "%s/%s", dir, names[i]->d_name);
			found = 0;
		}
		free(names[i]);
	}
	free(names);
	return found;
}

/* Reads the small text file at path into buf: 0, or -1. */
static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* A file named name with text in it, in the directory at path. */
static int put_file(const char *dir, const char *name, const char *text)
{
	char path[700];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	rc = write_text(fd, text);
	close(fd);
	return rc;
}

/* cache_heal moves a planted entry aside whole, never deletes it. */
static void test_heal(struct cache *cache)
{
	char path[1400], q[600], q2[600], text[64], target[300];
	struct digest_spec spec;
	struct stat st;
	ssize_t n;

	tap_ok(cache_mkdirs(cache, "hub/h") == 0, "heal: a folder hub/h");
	tap_ok(cache_heal(cache, "hub/h/absent.bin") == 0, "heal: an absent name: 0");
	tap_ok(install_text(cache, "hub/h/file.bin", "ours", &spec) == 0 &&
	           cache_heal(cache, "hub/h/file.bin") == 0 &&
	           cache_lstat(cache, "hub/h/file.bin", &st) == 0 && S_ISREG(st.st_mode),
	       "heal: a regular file: 0, left in place");

	/* A person's directory, with a file of theirs in it. */
	snprintf(path, sizeof(path), "%s/hub/h/dir.bin", root);
	tap_ok(mkdir(path, 0755) == 0 && put_file(path, "notes.txt", "theirs") == 0,
	       "heal: a directory with a file planted at hub/h/dir.bin");
	tap_ok(cache_heal(cache, "hub/h/dir.bin") == 1 && lstat(path, &st) != 0 &&
	           errno == ENOENT,
	       "heal: the directory: 1, its name free");
	tap_ok(quarantined("hub+h+dir.bin", 0, q, sizeof(q)) == 0 && lstat(q, &st) == 0 &&
	           S_ISDIR(st.st_mode),
	       "heal: the directory is in %s/" CACHE_QUARANTINE_DIR, root);
	snprintf(path, sizeof(path), "%s/notes.txt", q);
	tap_ok(read_text(path, text, sizeof(text)) == 0 && strcmp(text, "theirs") == 0,
	       "heal: the file in it is intact");

	/* A link: moved as a link, still pointing where it did. */
	snprintf(path, sizeof(path), "%s/hub/h/link.bin", root);
	tap_ok(symlink(outside, path) == 0 && cache_heal(cache, "hub/h/link.bin") == 1 &&
	           lstat(path, &st) != 0,
	       "heal: a link planted at hub/h/link.bin: 1, its name free");
	n = quarantined("hub+h+link.bin", 0, q, sizeof(q)) == 0
	        ? readlink(q, target, sizeof(target) - 1)
	        : -1;
	if (n >= 0)
		target[n] = '\0';
	tap_ok(n > 0 && strcmp(target, outside) == 0 && outside_intact(),
	       "heal: the link is in the quarantine, pointing at %s as before", outside);

	/* A FIFO: moved, not opened. */
	snprintf(path, sizeof(path), "%s/hub/h/fifo.bin", root);
	tap_ok(mkfifo(path, 0644) == 0 && cache_heal(cache, "hub/h/fifo.bin") == 1 &&
	           quarantined("hub+h+fifo.bin", 0, q, sizeof(q)) == 0 && lstat(q, &st) == 0 &&
	           S_ISFIFO(st.st_mode),
	       "heal: a FIFO is moved aside, no hang");

	/* The same name planted twice: two entries, neither replaced. */
	snprintf(path, sizeof(path), "%s/hub/h/twice", root);
	tap_ok(mkdir(path, 0755) == 0 && put_file(path, "n", "one") == 0 &&
	           cache_heal(cache, "hub/h/twice") == 1 && mkdir(path, 0755) == 0 &&
	           put_file(path, "n", "two") == 0 && cache_heal(cache, "hub/h/twice") == 1,
	       "heal: a directory planted twice at hub/h/twice, moved twice");
	tap_ok(quarantined("hub+h+twice", 0, q, sizeof(q)) == 0 &&
	           quarantined("hub+h+twice", 1, q2, sizeof(q2)) == 0 &&
	           quarantined("hub+h+twice", 2, path, sizeof(path)) == -1,
	       "heal: two entries in the quarantine");
	{
		char a[16] = "", b[16] = "";
		snprintf(path, sizeof(path), "%s/n", q);
		read_text(path, a, sizeof(a));
		snprintf(path, sizeof(path), "%s/n", q2);
		read_text(path, b, sizeof(b));
		tap_ok((strcmp(a, "one") == 0 && strcmp(b, "two") == 0) ||
		           (strcmp(a, "two") == 0 && strcmp(b, "one") == 0),
		       "heal: each kept its own file (%s, %s)", a, b);
	}

	/* A name longer than NAME_MAX once prefixed: its end is kept. */
	{
		char rel[300];
		memset(text, 'x', sizeof(text));
		snprintf(rel, sizeof(rel), "hub/h/%.*s%.*s%.*s%.*s-long", 60, text, 60, text, 60,
			 text, 60, text);
		snprintf(path, sizeof(path), "%s/%s", root, rel);
		tap_ok(mkdir(path, 0755) == 0 && cache_heal(cache, rel) == 1 &&
		           quarantined("long", 0, q, sizeof(q)) == 0 &&
		           strlen(strrchr(q, '/') + 1) <= NAME_MAX,
		       "heal: a long name is cut from its start, within NAME_MAX");
	}

	/* The start-up sweep leaves the quarantine alone, even what looks like
	 * a leftover temporary there. */
	tap_ok(quarantined("hub+h+dir.bin", 0, q, sizeof(q)) == 0 &&
	           put_file(q, ".model.onnx.2147483646-ab12cd.tmp", "kept") == 0,
	       "heal: a leftover-looking temporary in a quarantined directory");
	cache_sweep_temporaries(cache);
	snprintf(path, sizeof(path), "%s/.model.onnx.2147483646-ab12cd.tmp", q);
	tap_ok(lstat(path, &st) == 0, "heal: the sweep did not walk into the quarantine");

	/* Something planted at the quarantine's own name: nothing is moved
	 * through it, the entry stays, and the caller hears why. */
	snprintf(path, sizeof(path), "%s/" CACHE_QUARANTINE_DIR, root);
	snprintf(q, sizeof(q), "%s/quarantine.moved", base);
	tap_ok(rename(path, q) == 0 && symlink(outside, path) == 0, "heal: a link planted at %s",
	       path);
	snprintf(path, sizeof(path), "%s/hub/h/stuck", root);
	tap_ok(mkdir(path, 0755) == 0 && cache_heal(cache, "hub/h/stuck") < 0 &&
	           lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && outside_intact(),
	       "heal: with no quarantine to move to, an error and the entry stays");
	rmdir(path);
	snprintf(path, sizeof(path), "%s/" CACHE_QUARANTINE_DIR, root);
	unlink(path);
	rename(q, path);
}

int main(void)
{
	struct cache *cache = NULL;
	const char *why = NULL;

	test_check_rel();
	tap_ok(cache_open(&cache, "relative/dir", &why) == -EINVAL && why, "relative root refused");
	tap_ok(mkdtemp(base) != NULL, "temporary directory %s", base);
	snprintf(root, sizeof(root), "%s/cache", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	tap_ok(mkdir(root, 0755) == 0, "cache root %s", root);
	{
		char path[600];
		int fd;
		tap_ok(mkdir(outside, 0755) == 0, "directory outside the cache %s", outside);
		snprintf(path, sizeof(path), "%s/secret", outside);
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		tap_ok(fd >= 0 && write_text(fd, "secret") == 0, "a file outside the cache");
		close(fd);
		snprintf(path, sizeof(path), "%s/sub", outside);
		tap_ok(mkdir(path, 0755) == 0 && outside_intact(), "an empty directory outside it");
	}
	{
		char nested[600];
		snprintf(nested, sizeof(nested), "%s/a/b/c", root);
		tap_ok(cache_open(&cache, nested, &why) == 0, "nested root created");
		cache_close(cache);
	}
	tap_ok(cache_open(&cache, root, &why) == 0, "cache opened");
	test_orphan_temporaries(cache);
	test_files(cache);
	test_trees(cache);
	test_prune(cache);
	test_small(cache);
	test_records(cache);
	test_memo_bound(cache);
	test_hostile_paths(cache);
	test_final_link(cache);
	test_planted_links(cache, "openat2");
	test_heal(cache);
	cache_close(cache);
	/* As under a seccomp filter that refuses openat2. */
	tap_ok(cache_open(&cache, root, &why) == 0, "cache opened again");
	cache_resolve_by_walking(cache);
	test_planted_links(cache, "walk");
	test_walk_basics(cache);
	cache_close(cache);
	test_root_deleted();
	tap_ok(tap_remove_tree(base) == 0, "temporary directory %s removed", base);
	return tap_done();
}
