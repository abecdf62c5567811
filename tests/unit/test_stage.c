/* test_stage.c: unit tests of archive extraction: a good archive, and every
 * kind of hostile one refused whole with nothing written outside. Not for:
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

/* Writes a .tar.gz of the members; returns an fd open on it. */
static int make_archive(const struct member *members, size_t n, uint64_t *size)
{
	char path[600];
	struct archive *a = archive_write_new();
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/archive.tar.gz", work);
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
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

	/* Not an archive at all. */
	snprintf(path, sizeof(path), "%s/garbage", work);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	tap_ok(write(fd, "this is not an archive, just text\n", 34) == 34, "garbage written");
	rc = stage_extract(fd, 34, fresh_dest(), &stage_default_limits, why, sizeof(why));
	close(fd);
	tap_ok(rc == -EIO, "garbage refused: %s", why);

	test_full_disk();

	tap_ok(tap_remove_tree(work) == 0, "temporary directory %s removed", work);
	return tap_done();
}
