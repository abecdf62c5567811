/* hf_cache.c: huggingface_hub's own cache, read only: what it holds (blobs
 * by etag, refs). Not for: where it is (client_cache.c), our cache (cache.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "hf_cache.h"

/* Snapshot folders deeper than this are not a repo's. */
#define SNAPSHOT_DEPTH_MAX 32

const char *hf_repo_type_plural(enum hf_repo_type type)
{
	return type == HF_REPO_DATASET ? "datasets" : "models";
}

/* "models--org--name": the client's folder of a repo ('/' becomes "--"). */
static char *repo_folder(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id)
{
	size_t len = strlen(repo_id);
	char *flat = malloc(2 * len + 1), *out = NULL, *p;

	if (!flat)
		return NULL;
	p = flat;
	for (const char *s = repo_id; *s; s++) {
		if (*s == '/') {
			*p++ = '-';
			*p++ = '-';
		} else {
			*p++ = *s;
		}
	}
	*p = '\0';
	if (asprintf(&out, "%s/%s--%s", hf_hub_cache, hf_repo_type_plural(type), flat) < 0)
		out = NULL;
	free(flat);
	return out;
}

char *hf_cache_blob_path(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
			 const char *etag)
{
	char *folder = repo_folder(hf_hub_cache, type, repo_id), *out = NULL;

	if (folder && asprintf(&out, "%s/blobs/%s", folder, etag) < 0)
		out = NULL;
	free(folder);
	return out;
}

int hf_cache_read_ref(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
		      const char *rev, char commit[41])
{
	char *folder = repo_folder(hf_hub_cache, type, repo_id), *path = NULL;
	char text[64];
	ssize_t n = -1;
	int fd = -1, rc = -ENOMEM;

	/* A rev with '/' (refs/pr/1) is a nested file there too. */
	if (!folder || asprintf(&path, "%s/refs/%s", folder, rev) < 0) {
		path = NULL;
		goto out;
	}
	rc = -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto out;
	n = read(fd, text, sizeof(text) - 1);
	rc = -EINVAL;
	if (n < 40)
		goto out;
	text[n] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	for (int i = 0; i < 40; i++)
		if (digest_hex_value(text[i]) < 0)
			goto out;
	if (text[40] != '\0')
		goto out;
	for (int i = 0; i < 40; i++)
		commit[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] + 32 : text[i]);
	commit[40] = '\0';
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	free(folder);
	return rc;
}

/* The etag a snapshot link names: "../../blobs/<etag>" with one more "../"
 * per folder below the snapshot; NULL for any other target. */
static const char *link_etag(const char *target)
{
	const char *blobs = strstr(target, "blobs/");

	if (!blobs || strncmp(target, "../", 3) != 0 || strchr(blobs + 6, '/'))
		return NULL;
	for (const char *p = target; p < blobs; p += 3)
		if (strncmp(p, "../", 3) != 0)
			return NULL;
	return blobs + 6;
}

static int walk_snapshot(int dir_fd, char *path, size_t path_len, int depth, hf_cache_file_fn fn,
			 void *ctx)
{
	DIR *dir = fdopendir(dir_fd);
	struct dirent *d;
	int rc = 0;

	if (!dir) {
		close(dir_fd);
		return -errno;
	}
	while (rc == 0 && (d = readdir(dir)) != NULL) {
		size_t len = path_len + (path_len ? 1 : 0) + strlen(d->d_name);
		char target[PATH_MAX];
		struct stat st;
		const char *etag;
		ssize_t n;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 || len >= PATH_MAX)
			continue;
		snprintf(path + path_len, PATH_MAX - path_len, "%s%s", path_len ? "/" : "",
		         d->d_name);
		if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < SNAPSHOT_DEPTH_MAX) {
			int sub = openat(dirfd(dir), d->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				rc = walk_snapshot(sub, path, len, depth + 1, fn, ctx);
		} else if (S_ISLNK(st.st_mode)) {
			n = readlinkat(dirfd(dir), d->d_name, target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			etag = link_etag(target);
			/* The blob it names, followed this once: its size. */
			if (etag && fstatat(dirfd(dir), d->d_name, &st, 0) == 0 &&
			    S_ISREG(st.st_mode))
				rc = fn(ctx, path, etag, (uint64_t)st.st_size);
		}
		path[path_len] = '\0';
	}
	closedir(dir);
	return rc;
}

int hf_cache_snapshot_files(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
			    const char *commit, hf_cache_file_fn fn, void *ctx)
{
	char *folder = repo_folder(hf_hub_cache, type, repo_id), *root = NULL;
	char path[PATH_MAX] = "";
	int fd, rc = -ENOMEM;

	if (!folder || asprintf(&root, "%s/snapshots/%s", folder, commit) < 0) {
		root = NULL;
		goto out;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -ENOENT : walk_snapshot(fd, path, 0, 0, fn, ctx);
out:
	free(root);
	free(folder);
	return rc;
}

int hf_cache_name_kind(const char *hf_hub_cache, enum hf_repo_type type, const char *name)
{
	char prefix[NAME_MAX + 1];
	size_t len;
	struct dirent *d;
	DIR *dir = opendir(hf_hub_cache);
	int kind = 0;

	if (!dir)
		return 0;
	len = (size_t)snprintf(prefix, sizeof(prefix), "%s--%s", hf_repo_type_plural(type), name);
	while (kind != 2 && len < sizeof(prefix) && (d = readdir(dir)) != NULL) {
		if (strncmp(d->d_name, prefix, len) != 0)
			continue;
		if (d->d_name[len] == '\0')
			kind = 2;
		else if (strncmp(d->d_name + len, "--", 2) == 0)
			kind = 1;
	}
	closedir(dir);
	return kind;
}
