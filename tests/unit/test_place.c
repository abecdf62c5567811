/* test_place.c: unit tests of place.c: names that would lead out of the
 * folder refused, a planted link never followed, a hard link on the same
 * filesystem, a file at the place replaced and never written through, an
 * archive's tree made again. Not for: pull's choice of files
 * (tests/integration/test_pull.py). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "place.h"
#include "tap.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int main(void)
{
	char root[] = "/tmp/test_place.XXXXXX";
	char src[64], dst[64], outside[64], path[128], buf[128];
	static const char *const refused[] = {"", "/abs", "../x", "a/../../x", "a/./b", "a//b",
	                                      "a/", "..", "."};
	struct stat a, b;
	enum place_how how;
	int dir, rc;

	if (!mkdtemp(root))
		return 1;
	snprintf(src, sizeof(src), "%s/cache", root);
	snprintf(dst, sizeof(dst), "%s/dst", root);
	snprintf(outside, sizeof(outside), "%s/outside", root);
	mkdir(src, 0755);
	mkdir(dst, 0755);
	mkdir(outside, 0755);
	snprintf(path, sizeof(path), "%s/blob", src);
	write_file(path, "the blob\n");
	dir = open(dst, O_RDONLY | O_DIRECTORY);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		tap_ok(place_path(dir, refused[i], path, &how) == -EINVAL, "refused: '%s'",
		       refused[i]);
	tap_ok(place_check_rel("a/b.txt") == 0 && place_check_rel("..a/b..") == 0,
	       "names with dots that lead nowhere are fine");
	snprintf(buf, sizeof(buf), "%s/x", root);
	tap_ok(!exists(buf), "nothing written beside the folder");

	rc = place_path(dir, "m/w.bin", path, &how);
	/* /tmp may clone (btrfs, XFS): then a reflink, its own inode. */
	tap_ok(rc == 0 && how != PLACE_COPY, "same filesystem: a reflink or a hard link (%s)",
	       place_how_name(how));
	snprintf(buf, sizeof(buf), "%s/m/w.bin", dst);
	stat(buf, &a);
	stat(path, &b);
	tap_ok((a.st_ino == b.st_ino) == (how == PLACE_HARDLINK), "a hard link is the blob's inode");
	tap_ok(place_path(dir, "m/w.bin", path, &how) == 0 && how != PLACE_COPY, "placed again");

	/* A file of the user's at the place: replaced, its bytes untouched. */
	snprintf(buf, sizeof(buf), "%s/theirs", root);
	write_file(buf, "theirs\n");
	snprintf(path, sizeof(path), "%s/m/t.bin", dst);
	link(buf, path);
	snprintf(path, sizeof(path), "%s/blob", src);
	tap_ok(place_path(dir, "m/t.bin", path, &how) == 0, "a file at the place is replaced");
	char got[64];
	tap_ok(read_file(buf, got, sizeof(got)) == 0 && strcmp(got, "theirs\n") == 0,
	       "the old file was not written through");
	snprintf(buf, sizeof(buf), "%s/m/t.bin", dst);
	tap_ok(read_file(buf, got, sizeof(got)) == 0 && strcmp(got, "the blob\n") == 0,
	       "the place holds the blob");

	/* A link planted where a folder goes. */
	snprintf(buf, sizeof(buf), "%s/sub", dst);
	symlink(outside, buf);
	tap_ok(place_path(dir, "sub/f.txt", path, &how) == -ELOOP, "a planted link is refused");
	snprintf(buf, sizeof(buf), "%s/f.txt", outside);
	tap_ok(!exists(buf), "nothing written where it points");

	/* A tree: a folder, a file below, a link. */
	snprintf(buf, sizeof(buf), "%s/tree", src);
	mkdir(buf, 0755);
	snprintf(buf, sizeof(buf), "%s/tree/variables", src);
	mkdir(buf, 0755);
	snprintf(buf, sizeof(buf), "%s/tree/variables/data", src);
	write_file(buf, "vars\n");
	snprintf(buf, sizeof(buf), "%s/tree/alias", src);
	symlink("variables/data", buf);
	snprintf(path, sizeof(path), "%s/tree", src);
	tap_ok(place_path(dir, "model/1", path, &how) == 0, "a tree is placed");
	snprintf(buf, sizeof(buf), "%s/model/1/alias", dst);
	tap_ok(read_file(buf, got, sizeof(got)) == 0 && strcmp(got, "vars\n") == 0,
	       "its file, through its link");
	tap_ok(readlink(buf, got, sizeof(got)) == (ssize_t)strlen("variables/data"),
	       "the link made again as a link");

	close(dir);
	tap_ok(tap_remove_tree(root) == 0, "cleaned up");
	return tap_done();
}
