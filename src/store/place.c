/* place.c: puts a copy of a cached file or tree at a path below a folder
 * the user names (omnihub pull --local-dir): by reflink, else a hard link,
 * else a copy, never outside that folder. Not for: fetching or verifying
 * (the core), or which files go there (cmd_pull.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "full_io.h"
#include "place.h"

/* Deep enough for any archive's tree, and an end to a loop. */
#define PLACE_DEPTH_MAX 64
#define PLACE_COPY_CHUNK (1u << 20)

const char *place_how_name(enum place_how how)
{
	switch (how) {
	case PLACE_REFLINK:
		return "reflink";
	case PLACE_HARDLINK:
		return "hardlink";
	case PLACE_COPY:
		return "copy";
	}
	return "unknown";
}

int place_check_rel(const char *rel)
{
	const char *p = rel;

	if (!rel[0] || rel[0] == '/' || strlen(rel) >= PATH_MAX)
		return -EINVAL;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += len;
		if (*p == '/' && !*++p)
			return -EINVAL; /* a trailing '/' is an empty component */
	}
	return 0;
}

/* The temporary a file is made under, beside its place: one process
 * places one file at a time. */
static void tmp_name(char *out, size_t size)
{
	snprintf(out, size, ".omnihub-place-%ld.tmp", (long)getpid());
}

/* Copies every byte of in to out: copy_file_range, else read and write
 * (another filesystem type, an old kernel). */
static int copy_bytes(int in, int out, off_t size)
{
	char *buf = NULL;
	off_t done = 0;
	int rc = 0;

	while (done < size) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
		if (n <= 0)
			break;
		done += n;
	}
	if (done < size) {
		buf = malloc(PLACE_COPY_CHUNK);
		if (!buf) {
			rc = -ENOMEM;
			goto out;
		}
	}
	while (done < size) {
		size_t want = size - done < PLACE_COPY_CHUNK ? (size_t)(size - done) : PLACE_COPY_CHUNK;
		ssize_t n = full_io_pread(in, buf, want, done);

		if (n >= 0 && (size_t)n < want)
			n = -EIO; /* the file shrank */
		if (n >= 0)
			n = full_io_pwrite(out, buf, want, done);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		done += n;
	}
out:
	free(buf);
	return rc;
}

/* Makes name in dst_fd the file name in src_fd is, by the first way that
 * works. */
static int place_file(int src_fd, const char *name, int dst_fd, const char *leaf,
		      enum place_how *how)
{
	struct stat src_st, dst_st;
	char tmp[64];
	int in = -1, out = -1, rc = 0;

	tmp_name(tmp, sizeof(tmp));
	in = openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0 || fstat(in, &src_st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(src_st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (fstatat(dst_fd, leaf, &dst_st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(dst_st.st_mode)) {
			rc = -EISDIR;
			goto out;
		}
		if (dst_st.st_dev == src_st.st_dev && dst_st.st_ino == src_st.st_ino) {
			*how = PLACE_HARDLINK; /* there from an earlier pull */
			goto out;
		}
	}
	unlinkat(dst_fd, tmp, 0); /* a crash's leftover */
	out = openat(dst_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	if (ioctl(out, FICLONE, in) == 0) {
		*how = PLACE_REFLINK;
	} else {
		close(out);
		out = -1;
		unlinkat(dst_fd, tmp, 0);
		if (linkat(src_fd, name, dst_fd, tmp, 0) == 0) {
			*how = PLACE_HARDLINK;
		} else {
			out = openat(dst_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			             0644);
			if (out < 0) {
				rc = -errno;
				goto out;
			}
			rc = copy_bytes(in, out, src_st.st_size);
			if (rc)
				goto out;
			*how = PLACE_COPY;
		}
	}
	if (out >= 0 && close(out) != 0) {
		out = -1;
		rc = -errno;
		goto out;
	}
	out = -1;
	if (renameat(dst_fd, tmp, dst_fd, leaf) != 0)
		rc = -errno;
out:
	if (out >= 0)
		close(out);
	if (rc && rc != -EISDIR)
		unlinkat(dst_fd, tmp, 0);
	if (in >= 0)
		close(in);
	return rc;
}

static int place_entry(int src_fd, const char *name, int dst_fd, const char *leaf,
		       unsigned depth, bool *first, enum place_how *how);

/* The directory name in src_fd, made again as leaf in dst_fd. */
static int place_tree(int src_fd, const char *name, int dst_fd, const char *leaf, unsigned depth,
		      bool *first, enum place_how *how)
{
	DIR *dir = NULL;
	struct dirent *de;
	int in = -1, out = -1, rc = 0;

	if (depth > PLACE_DEPTH_MAX)
		return -ELOOP;
	in = openat(src_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		rc = -errno;
		goto out;
	}
	if (mkdirat(dst_fd, leaf, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	out = openat(dst_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	dir = fdopendir(in);
	if (!dir) {
		rc = -errno;
		goto out;
	}
	in = -1; /* the DIR's now */
	while ((de = readdir(dir)) != NULL && rc == 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = place_entry(dirfd(dir), de->d_name, out, de->d_name, depth + 1, first, how);
	}
out:
	if (dir)
		closedir(dir);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* One entry of a tree: a file, a folder, or a link made again with its
 * target (an archive's links stay inside it: stage.c refuses others). */
static int place_entry(int src_fd, const char *name, int dst_fd, const char *leaf,
		       unsigned depth, bool *first, enum place_how *how)
{
	char target[PATH_MAX];
	enum place_how one = PLACE_COPY;
	struct stat st;
	ssize_t len;
	int rc = 0;

	if (fstatat(src_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return place_tree(src_fd, name, dst_fd, leaf, depth, first, how);
	if (S_ISLNK(st.st_mode)) {
		len = readlinkat(src_fd, name, target, sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		unlinkat(dst_fd, leaf, 0);
		return symlinkat(target, dst_fd, leaf) == 0 ? 0 : -errno;
	}
	if (!S_ISREG(st.st_mode))
		return 0; /* nothing else is staged */
	rc = place_file(src_fd, name, dst_fd, leaf, &one);
	if (rc == 0 && *first) {
		*how = one;
		*first = false;
	}
	return rc;
}

/* Opens (making it) each folder of rel but its last component, from dir_fd,
 * following no link: the folder's descriptor, or -errno. */
static int open_parent(int dir_fd, const char *rel, const char **leaf)
{
	char part[NAME_MAX + 1];
	const char *p = rel, *slash;
	int fd = dup(dir_fd), next;

	if (fd < 0)
		return -errno;
	while ((slash = strchr(p, '/')) != NULL) {
		size_t len = (size_t)(slash - p);
		memcpy(part, p, len);
		part[len] = '\0';
		if (mkdirat(fd, part, 0755) != 0 && errno != EEXIST) {
			next = -errno;
			close(fd);
			return next;
		}
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			next = errno == ENOTDIR || errno == ELOOP ? -ELOOP : -errno;
		close(fd);
		if (next < 0)
			return next;
		fd = next;
		p = slash + 1;
	}
	*leaf = p;
	return fd;
}

int place_path(int dir_fd, const char *rel, const char *src, enum place_how *how)
{
	char *copy = NULL, *slash;
	const char *leaf = NULL;
	bool first = true;
	int parent = -1, src_dir = -1, rc;

	*how = PLACE_COPY;
	rc = place_check_rel(rel);
	if (rc)
		goto out;
	copy = strdup(src);
	if (!copy) {
		rc = -ENOMEM;
		goto out;
	}
	slash = strrchr(copy, '/');
	if (!slash || slash == copy || !slash[1]) {
		rc = -EINVAL; /* an absolute path with a name is expected */
		goto out;
	}
	*slash = '\0';
	src_dir = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_dir < 0) {
		rc = -errno;
		goto out;
	}
	parent = open_parent(dir_fd, rel, &leaf);
	if (parent < 0) {
		rc = parent;
		goto out;
	}
	rc = place_entry(src_dir, slash + 1, parent, leaf, 0, &first, how);
out:
	if (parent >= 0)
		close(parent);
	if (src_dir >= 0)
		close(src_dir);
	free(copy);
	return rc;
}
