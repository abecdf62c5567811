/* test_stage.c: unit tests of staging: archive extraction (a good archive,
 * and every kind of hostile one refused whole with nothing written outside),
 * gunzip and one member of an archive, and the limits on all three. Not for:
 * downloading or installing (download.c, cache.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "stage.h"
#include "tap.h"

static char work[] = "/tmp/omnihub-test-stage-XXXXXX";

/* One member of an archive to build. */
struct member {
	const char *name;
	mode_t type;            /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO */
	const char *content;    /* regular files */
	const char *link;       /* symlink target */
	const char *hardlink;   /* hard link target */
	size_t zeros;           /* regular files: this many zero bytes instead */
};

/* Writes a .tar.gz (or a .zip) of the members; returns an fd open on it. */
static int make_archive_as(const struct member *members, size_t n, int zip, uint64_t *size)
{
	char path[600];
	struct archive *a = archive_write_new();
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/archive.%s", work, zip ? "zip" : "tar.gz");
	if (zip) {
		archive_write_set_format_zip(a);
	} else {
		archive_write_add_filter_gzip(a);
		archive_write_set_format_pax_restricted(a);
	}
	archive_write_open_filename(a, path);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		const struct member *m = &members[i];
		size_t len = m->content ? strlen(m->content) : m->zeros;

		archive_entry_set_pathname(e, m->name);
		archive_entry_set_filetype(e, m->type);
		archive_entry_set_perm(e, m->type == AE_IFDIR ? 0755 : 0644);
		if (m->link)
			archive_entry_set_symlink(e, m->link);
		if (m->hardlink)
			archive_entry_set_hardlink(e, m->hardlink);
		if (m->type == AE_IFREG && !m->hardlink)
			archive_entry_set_size(e, (la_int64_t)len);
		archive_write_header(a, e);
		if (m->content)
			archive_write_data(a, m->content, len);
		for (size_t done = 0; m->zeros && done < m->zeros;) {
			static const char block[65536];
			size_t chunk = m->zeros - done < sizeof(block) ? m->zeros - done : sizeof(block);
			archive_write_data(a, block, chunk);
			done += chunk;
		}
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	fd = open(path, O_RDONLY);
	fstat(fd, &st);
	*size = (uint64_t)st.st_size;
	return fd;
}

static int make_archive(const struct member *members, size_t n, uint64_t *size)
{
	return make_archive_as(members, n, 0, size);
}

/* Writes data (or zeros bytes of zeros) gzip'd, as gzip would, to
 * <work>/name; layers > 1 gzips the result again. Returns the file's size. */
static uint64_t write_gzip(const char *name, const void *data, size_t len, size_t zeros, int layers)
{
	static char block[65536];
	char path[600], inner[600];
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	struct stat st;
	size_t total = data ? len : zeros;

	snprintf(path, sizeof(path), "%s/%s", work, name);
	archive_write_add_filter_gzip(a);
	archive_write_set_format_raw(a);
	archive_write_open_filename(a, path);
	archive_entry_set_pathname(e, "data");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)total);
	archive_write_header(a, e);
	if (data)
		archive_write_data(a, data, len);
	for (size_t done = 0; !data && done < zeros;) {
		size_t chunk = zeros - done < sizeof(block) ? zeros - done : sizeof(block);
		archive_write_data(a, block, chunk);
		done += chunk;
	}
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	stat(path, &st);
	if (layers > 1) {
		/* The inner file becomes the next layer's data. */
		char *bytes = malloc((size_t)st.st_size);
		int fd = open(path, O_RDONLY);
		size_t got = (size_t)read(fd, bytes, (size_t)st.st_size);
		uint64_t size;

		close(fd);
		snprintf(inner, sizeof(inner), "%s.inner", name);
		size = write_gzip(inner, bytes, got, 0, layers - 1);
		free(bytes);
		snprintf(inner, sizeof(inner), "%s/%s.inner", work, name);
		rename(inner, path);
		return size;
	}
	return (uint64_t)st.st_size;
}

static int open_in_work(const char *name, int flags)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", work, name);
	return open(path, flags | O_CLOEXEC, 0644);
}

/* A fresh, empty output file in <work>. */
static int fresh_output(void)
{
	static int n;
	char name[64];

	snprintf(name, sizeof(name), "out-%d", ++n);
	return open_in_work(name, O_CREAT | O_TRUNC | O_RDWR);
}

/* Whether the file open on fd holds exactly want[0..len). */
static int holds(int fd, const void *want, size_t len)
{
	struct stat st;
	char *got;
	int same;

	if (fstat(fd, &st) != 0 || (size_t)st.st_size != len)
		return 0;
	got = malloc(len + 1);
	same = pread(fd, got, len, 0) == (ssize_t)len && memcmp(got, want, len) == 0;
	free(got);
	return same;
}

static off_t size_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_size : -1;
}

static void test_gunzip(void)
{
	const struct stage_limits small = {
		.max_entries = 3, .max_ratio = 2, .allowance_bytes = 1000};
	struct stage_limits capped = stage_default_limits;
	size_t len = 300 * 1024;
	char *data = malloc(len), *both, why[256] = "";
	uint64_t size, size_a, size_b;
	int in, out, rc;

	/* Text-like data over several libarchive blocks. */
	for (size_t i = 0; i < len; i++)
		data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	size = write_gzip("data.gz", data, len, 0, 1);
	in = open_in_work("data.gz", O_RDONLY);
	out = fresh_output();
	lseek(in, 5, SEEK_SET); /* must be read from offset 0 all the same */
	rc = stage_gunzip(in, size, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == 0 && holds(out, data, len),
	       "gunzip round trip of %zu bytes from %llu (%d: %s)", len, (unsigned long long)size,
	       rc, why);
	tap_ok(lseek(in, 0, SEEK_CUR) == 5, "the input's file offset is left alone");
	close(out);

	/* Exactly at max_bytes is fine; one byte less is not. */
	capped.max_bytes = len;
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &capped, why, sizeof(why));
	tap_ok(rc == 0 && holds(out, data, len), "exactly max_bytes decompresses (%s)", why);
	close(out);
	capped.max_bytes = len - 1;
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &capped, why, sizeof(why));
	tap_ok(rc == -EFBIG && strstr(why, "size limit") && size_of(out) <= (off_t)len - 1,
	       "one byte past max_bytes: -EFBIG, %lld bytes written: %s", (long long)size_of(out),
	       why);
	close(out);
	close(in);

	/* Concatenated members are one stream, as gunzip reads them. */
	size_a = write_gzip("a.gz", "first part, ", 12, 0, 1);
	size_b = write_gzip("b.gz", "second part", 11, 0, 1);
	both = malloc(size_a + size_b);
	in = open_in_work("a.gz", O_RDONLY);
	tap_ok(read(in, both, size_a) == (ssize_t)size_a, "first member read");
	close(in);
	in = open_in_work("b.gz", O_RDONLY);
	tap_ok(read(in, both + size_a, size_b) == (ssize_t)size_b, "second member read");
	close(in);
	in = open_in_work("ab.gz", O_CREAT | O_RDWR);
	tap_ok(write(in, both, size_a + size_b) == (ssize_t)(size_a + size_b), "members joined");
	out = fresh_output();
	rc = stage_gunzip(in, size_a + size_b, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == 0 && holds(out, "first part, second part", 23),
	       "concatenated gzip members decompress as one (%d: %s)", rc, why);
	close(out);

	/* Truncated in the middle of the second member, and a byte flipped. */
	out = fresh_output();
	tap_ok(ftruncate(in, (off_t)(size_a + size_b - 6)) == 0, "gzip truncated");
	rc = stage_gunzip(in, size_a + size_b - 6, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -EIO && why[0], "a truncated gzip: -EIO: %s", why);
	close(out);
	close(in);
	in = open_in_work("data.gz", O_RDWR);
	tap_ok(pwrite(in, "\xff\xff\xff\xff", 4, (off_t)size / 2) == 4, "gzip corrupted");
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -EIO && why[0], "a corrupt gzip: -EIO: %s", why);
	close(out);
	close(in);

	/* The empty stream is the empty file. */
	size = write_gzip("empty.gz", "", 0, 0, 1);
	in = open_in_work("empty.gz", O_RDONLY);
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == 0 && size_of(out) == 0, "gzip of nothing gives an empty file (%d: %s)", rc,
	       why);
	close(out);
	close(in);

	/* Bombs: past the ratio, past max_bytes. */
	size = write_gzip("bomb.gz", NULL, 0, 4 << 20, 1);
	in = open_in_work("bomb.gz", O_RDONLY);
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &small, why, sizeof(why));
	tap_ok(rc == -EFBIG && size < 100000 && strstr(why, "times") &&
		   size_of(out) <= (off_t)(1000 + 2 * size),
	       "4 MiB of zeros from %llu bytes past the ratio: -EFBIG, %lld written: %s",
	       (unsigned long long)size, (long long)size_of(out), why);
	close(out);
	capped.max_bytes = 1 << 20;
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &capped, why, sizeof(why));
	tap_ok(rc == -EFBIG && strstr(why, "size limit") && size_of(out) <= 1 << 20,
	       "4 MiB of zeros past max_bytes of 1 MiB: -EFBIG, %lld written: %s",
	       (long long)size_of(out), why);
	close(out);
	close(in);

	/* Not gzip: text, nothing at all, a tar.gz is fine but gzip in gzip
	 * is not (one layer, as gunzip). */
	in = open_in_work("text", O_CREAT | O_RDWR);
	tap_ok(write(in, "plain text, not gzip\n", 21) == 21, "text written");
	out = fresh_output();
	rc = stage_gunzip(in, 21, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -EIO && strstr(why, "not gzip") && size_of(out) == 0, "plain text: -EIO: %s",
	       why);
	tap_ok(ftruncate(in, 0) == 0, "text emptied");
	rc = stage_gunzip(in, 0, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -EIO && size_of(out) == 0, "an empty file: -EIO: %s", why);
	close(out);
	close(in);
	size = write_gzip("twice.gz", "inner", 5, 0, 2);
	in = open_in_work("twice.gz", O_RDONLY);
	out = fresh_output();
	rc = stage_gunzip(in, size, out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -EIO && strstr(why, "gzip again"), "gzip inside gzip: -EIO: %s", why);
	close(out);
	close(in);
	free(both);
	free(data);
}

static void test_member(void)
{
	const struct member tree[] = {
		{ .name = "./mnist/", .type = AE_IFDIR },
		{ .name = "./mnist/model.onnx", .type = AE_IFREG, .content = "model bytes" },
		{ .name = "mnist/big.bin", .type = AE_IFREG, .zeros = 2 << 20 },
		{ .name = "mnist/copy.onnx", .type = AE_IFREG, .hardlink = "./mnist/model.onnx" },
		{ .name = "mnist/latest.onnx", .type = AE_IFLNK, .link = "model.onnx" },
	};
	const size_t n = sizeof(tree) / sizeof(tree[0]);
	struct stage_limits capped = stage_default_limits;
	char why[256] = "";
	uint64_t size;
	int fd, out, rc;

	fd = make_archive(tree, n, &size);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/model.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == 0 && holds(out, "model bytes", 11), "member found (%d: %s)", rc, why);
	close(out);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "./mnist/big.bin", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == 0 && size_of(out) == 2 << 20, "member named with ./ found (%d: %s)", rc, why);
	close(out);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/copy.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == 0 && holds(out, "model bytes", 11),
	       "a hard link gives its target's bytes (%s)", why);
	close(out);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/absent.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == -ENOENT && strstr(why, "mnist/absent.onnx") && size_of(out) == 0,
	       "an absent member: -ENOENT: %s", why);
	rc = stage_extract_member(fd, size, "mnist", out, &stage_default_limits, why, sizeof(why));
	tap_ok(rc == -ENOENT && strstr(why, "not a regular file"), "a directory: -ENOENT: %s", why);
	rc = stage_extract_member(fd, size, "mnist/latest.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == -ENOENT && strstr(why, "not a regular file"), "a symlink: -ENOENT: %s", why);
	close(out);

	capped.max_bytes = 1 << 20;
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/big.bin", out, &capped, why, sizeof(why));
	tap_ok(rc == -EFBIG && strstr(why, "big.bin") && strstr(why, "size limit") &&
		   size_of(out) <= 1 << 20,
	       "a member past max_bytes: -EFBIG, %lld written: %s", (long long)size_of(out), why);
	close(out);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/model.onnx", out, &capped, why, sizeof(why));
	tap_ok(rc == 0 && holds(out, "model bytes", 11), "a small member under the same cap (%s)",
	       why);
	close(out);
	close(fd);

	/* A zip is read through its central directory. */
	fd = make_archive_as(tree, 3, 1, &size);
	out = fresh_output();
	rc = stage_extract_member(fd, size, "mnist/model.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == 0 && holds(out, "model bytes", 11), "a zip's member (%d: %s)", rc, why);
	close(out);
	close(fd);

	fd = open_in_work("garbage", O_RDONLY);
	out = fresh_output();
	rc = stage_extract_member(fd, 34, "model.onnx", out, &stage_default_limits, why,
				  sizeof(why));
	tap_ok(rc == -EIO && size_of(out) == 0, "not an archive: -EIO: %s", why);
	close(out);
	close(fd);
}

/* A fresh empty destination: <work>/dest-N. */
static const char *fresh_dest(void)
{
	static char dest[600];
	static int n;

	snprintf(dest, sizeof(dest), "%s/dest-%d", work, ++n);
	mkdir(dest, 0755);
	return dest;
}

static int exists(const char *dir, const char *rel)
{
	char path[700];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static void expect_refused(const struct member *members, size_t n, int want, const char *what)
{
	char why[256] = "";
	uint64_t size;
	int fd = make_archive(members, n, &size);
	const char *dest = fresh_dest();
	int rc = stage_extract(fd, size, dest, &stage_default_limits, why, sizeof(why));

	close(fd);
	tap_ok(rc == want && why[0], "refused: %s (%s)", what, why);
	tap_ok(!exists(work, "escaped") && !exists(work, "escaped.txt"),
	       "nothing written outside for: %s", what);
}

/* A hard link whose target fits the archive's limits but not a path under a
 * deep destination: refused with ENAMETOOLONG, never cut to another name. */
static void test_hard_link_target_too_long(void)
{
	const char *base = fresh_dest();
	char dest[3300], target[1001], why[4200] = "";
	size_t len = (size_t)snprintf(dest, sizeof(dest), "%s", base);
	uint64_t size;
	int fd, rc;

	while (len + 201 < 3290) { /* components of 200: a destination of about 3.2 KB */
		dest[len++] = '/';
		memset(dest + len, 'd', 200);
		len += 200;
		dest[len] = '\0';
		mkdir(dest, 0755);
	}
	for (size_t i = 0; i < sizeof(target) - 1; i++)
		target[i] = i % 100 == 99 ? '/' : 't';
	target[sizeof(target) - 2] = 'x';
	target[sizeof(target) - 1] = '\0';
	{
		const struct member m[] = { { .name = "h", .type = AE_IFREG, .hardlink = target } };
		fd = make_archive(m, 1, &size);
	}
	rc = stage_extract(fd, size, dest, &stage_default_limits, why, sizeof(why));
	close(fd);
	tap_ok(rc == -ENAMETOOLONG && strstr(why, "hard-link target too long"),
	       "a hard-link target too long under its destination is refused (%d: %s)", rc, why);
	tap_ok(!exists(dest, "h"), "and nothing is extracted for it");
}

/* A full disk: a member bigger than a 64 KiB tmpfs gives -ENOSPC, and why
 * names the member (it used to be -EIO and "(null)"). Needs root to mount. */
static void test_full_disk(void)
{
	const struct member m[] = {
		{ .name = "small.txt", .type = AE_IFREG, .content = "fits" },
		{ .name = "big.bin", .type = AE_IFREG, .zeros = 1 << 20 },
	};
	char tiny[600], dest[700], why[256] = "";
	uint64_t size;
	int fd, rc;

	snprintf(tiny, sizeof(tiny), "%s/tiny", work);
	snprintf(dest, sizeof(dest), "%s/dest", tiny);
	if (geteuid() != 0 || mkdir(tiny, 0755) != 0 ||
	    mount("tmpfs", tiny, "tmpfs", 0, "size=64k") != 0) {
		printf("ok %d # SKIP a full disk: cannot mount a tmpfs (%s)\n", ++tap_count,
		       geteuid() != 0 ? "not root" : strerror(errno));
		return;
	}
	mkdir(dest, 0755);
	fd = make_archive(m, sizeof(m) / sizeof(m[0]), &size);
	rc = stage_extract(fd, size, dest, &stage_default_limits, why, sizeof(why));
	close(fd);
	tap_ok(rc == -ENOSPC, "a full disk gives -ENOSPC (got %d: %s)", rc, why);
	tap_ok(strstr(why, "big.bin") && strstr(why, strerror(ENOSPC)) && !strstr(why, "(null)"),
	       "why names the member and the cause: %s", why);
	{
		char out_path[720];
		uint64_t gz_size = write_gzip("zeros.gz", NULL, 0, 1 << 20, 1);
		int in = open_in_work("zeros.gz", O_RDONLY), out;

		snprintf(out_path, sizeof(out_path), "%s/zeros", dest);
		out = open(out_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
		rc = stage_gunzip(in, gz_size, out, &stage_default_limits, why, sizeof(why));
		tap_ok(rc == -ENOSPC && strstr(why, strerror(ENOSPC)),
		       "gunzip to a full disk: -ENOSPC (%d: %s)", rc, why);
		close(out);
		close(in);
		fd = make_archive(m, sizeof(m) / sizeof(m[0]), &size);
		out = open(out_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
		rc = stage_extract_member(fd, size, "big.bin", out, &stage_default_limits, why,
					  sizeof(why));
		tap_ok(rc == -ENOSPC && strstr(why, "big.bin"),
		       "a member to a full disk: -ENOSPC (%d: %s)", rc, why);
		close(out);
		close(fd);
	}
	tap_ok(umount2(tiny, 0) == 0, "the tmpfs unmounted");
}

int main(void)
{
	char why[256] = "", path[700], buf[64] = "";
	uint64_t size;
	const char *dest;
	int fd, rc;

	tap_ok(mkdtemp(work) != NULL, "work directory %s", work);

	{
		const struct member good[] = {
			{ .name = "./mnist/", .type = AE_IFDIR },
			{ .name = "./mnist/model.onnx", .type = AE_IFREG, .content = "model bytes" },
			{ .name = "mnist/test_data_set_0/input_0.pb", .type = AE_IFREG, .content = "in" },
			{ .name = "mnist/latest.onnx", .type = AE_IFLNK, .link = "model.onnx" },
			{ .name = "mnist/test_data_set_0/up.onnx", .type = AE_IFLNK, .link = "../model.onnx" },
			{ .name = "mnist/copy.onnx", .type = AE_IFREG, .hardlink = "mnist/model.onnx" },
		};
		fd = make_archive(good, sizeof(good) / sizeof(good[0]), &size);
		dest = fresh_dest();
		rc = stage_extract(fd, size, dest, &stage_default_limits, why, sizeof(why));
		close(fd);
		tap_ok(rc == 0, "a good archive extracts (%s)", rc ? why : "ok");
		snprintf(path, sizeof(path), "%s/mnist/model.onnx", dest);
		fd = open(path, O_RDONLY);
		tap_ok(fd >= 0 && read(fd, buf, sizeof(buf)) == 11 && memcmp(buf, "model bytes", 11) == 0,
		       "member content is right");
		if (fd >= 0)
			close(fd);
		tap_ok(exists(dest, "mnist/test_data_set_0/input_0.pb"), "nested member extracted");
		tap_ok(exists(dest, "mnist/latest.onnx") && exists(dest, "mnist/test_data_set_0/up.onnx"),
		       "symlinks that stay inside are kept");
		tap_ok(exists(dest, "mnist/copy.onnx"), "hard link inside is kept");
	}

	{
		const struct member m[] = { { .name = "/tmp/escaped", .type = AE_IFREG, .content = "x" } };
		expect_refused(m, 1, -EINVAL, "absolute path");
	}
	{
		const struct member m[] = { { .name = "../escaped", .type = AE_IFREG, .content = "x" } };
		expect_refused(m, 1, -EINVAL, "'..' at the start");
	}
	{
		const struct member m[] = {
			{ .name = "a/", .type = AE_IFDIR },
			{ .name = "a/../../escaped", .type = AE_IFREG, .content = "x" },
		};
		expect_refused(m, 2, -EINVAL, "'..' in the middle");
	}
	{
		const struct member m[] = { { .name = "evil", .type = AE_IFLNK, .link = "/etc/passwd" } };
		expect_refused(m, 1, -EINVAL, "absolute symlink");
	}
	{
		const struct member m[] = {
			{ .name = "a/evil", .type = AE_IFLNK, .link = "../../escaped" },
		};
		expect_refused(m, 1, -EINVAL, "symlink climbing out");
	}
	{
		/* The classic: a link to a directory outside, then a file through it. */
		const struct member m[] = {
			{ .name = "dir", .type = AE_IFLNK, .link = ".." },
			{ .name = "dir/escaped.txt", .type = AE_IFREG, .content = "x" },
		};
		expect_refused(m, 2, -EINVAL, "symlink to the parent, then a file through it");
	}
	{
		const struct member m[] = {
			{ .name = "hard", .type = AE_IFREG, .hardlink = "../escaped" },
		};
		expect_refused(m, 1, -EINVAL, "hard link outside");
	}
	{
		const struct member m[] = { { .name = "dev", .type = AE_IFCHR } };
		expect_refused(m, 1, -EINVAL, "character device");
	}
	{
		const struct member m[] = { { .name = "fifo", .type = AE_IFIFO } };
		expect_refused(m, 1, -EINVAL, "FIFO");
	}
	{
		const struct member m[] = { { .name = "a\nb", .type = AE_IFREG, .content = "x" } };
		expect_refused(m, 1, -EINVAL, "control character in a name");
	}

	/* Bombs: bytes and entries beyond the limits. */
	{
		const struct stage_limits small = { .max_entries = 3, .max_ratio = 2,
							.allowance_bytes = 1000 };
		const struct member bomb[] = {
			{ .name = "zeros", .type = AE_IFREG, .zeros = 4 << 20 },
		};
		const struct member many[] = {
			{ .name = "1", .type = AE_IFREG, .content = "1" },
			{ .name = "2", .type = AE_IFREG, .content = "2" },
			{ .name = "3", .type = AE_IFREG, .content = "3" },
			{ .name = "4", .type = AE_IFREG, .content = "4" },
		};
		fd = make_archive(bomb, 1, &size);
		rc = stage_extract(fd, size, fresh_dest(), &small, why, sizeof(why));
		close(fd);
		tap_ok(rc == -EFBIG && size < 100000, "4 MiB of zeros from a %llu-byte archive: %s",
		       (unsigned long long)size, why);
		fd = make_archive(many, 4, &size);
		rc = stage_extract(fd, size, fresh_dest(), &small, why, sizeof(why));
		close(fd);
		tap_ok(rc == -EFBIG, "too many entries: %s", why);
	}
	{
		struct stage_limits capped = stage_default_limits;
		const struct member two[] = {
			{ .name = "first", .type = AE_IFREG, .zeros = 600 << 10 },
			{ .name = "second", .type = AE_IFREG, .zeros = 600 << 10 },
		};
		fd = make_archive(two, 2, &size);
		capped.max_bytes = 1 << 20;
		dest = fresh_dest();
		rc = stage_extract(fd, size, dest, &capped, why, sizeof(why));
		tap_ok(rc == -EFBIG && strstr(why, "'second'") && strstr(why, "size limit"),
		       "two members of 600 KiB past max_bytes of 1 MiB: %s", why);
		capped.max_bytes = 1200 << 10;
		rc = stage_extract(fd, size, fresh_dest(), &capped, why, sizeof(why));
		tap_ok(rc == 0, "the same under a cap of 1200 KiB (%d: %s)", rc, why);
		close(fd);
	}

	/* Not an archive at all. */
	snprintf(path, sizeof(path), "%s/garbage", work);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	tap_ok(write(fd, "this is not an archive, just text\n", 34) == 34, "garbage written");
	rc = stage_extract(fd, 34, fresh_dest(), &stage_default_limits, why, sizeof(why));
	close(fd);
	tap_ok(rc == -EIO, "garbage refused: %s", why);

	test_gunzip();
	test_member();

	test_full_disk();
	test_hard_link_target_too_long();

	tap_ok(tap_remove_tree(work) == 0, "temporary directory %s removed", work);
	return tap_done();
}
