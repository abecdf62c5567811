/* hf_cache.c: huggingface_hub's own cache, read only: where it is and what
 * it holds (blobs by etag, refs). Not for: our cache (cache.c). */
#include "build_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "hf_cache.h"

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
