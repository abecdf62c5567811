/* hf_cache.h: huggingface_hub's own cache, read only: what it holds (blobs
 * by etag, refs). Any hub whose files live on the Hugging Face Hub looks
 * there before downloading. Not for: where it is (client_cache.c), our
 * cache (cache.c). */
#ifndef OMNIHUB_HF_CACHE_H
#define OMNIHUB_HF_CACHE_H

#include <stddef.h>
#include <stdint.h>

enum hf_repo_type {
	HF_REPO_MODEL,
	HF_REPO_DATASET,
};

/* "models" or "datasets": as the Hub's API and the client's folders say. */
const char *hf_repo_type_plural(enum hf_repo_type type);

/* "<hf_hub_cache>/<type>s--<org>--<name>/blobs/<etag>": where the client
 * keeps a file whose etag (the sha256 of an LFS file, else the git blob
 * sha1) is given; the caller frees it. NULL when out of memory. */
char *hf_cache_blob_path(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
			 const char *etag);

/* The commit that refs/<rev> names in the client's cache (40 hex digits
 * and a NUL into commit); -ENOENT when it has none, -EINVAL when the file
 * holds something else. */
int hf_cache_read_ref(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
		      const char *rev, char commit[41]);

/* What the client's cache knows of a top-level name: 2 when it holds the
 * legacy repo <name>, 1 when it holds a repo of the org <name>, else 0. */
int hf_cache_name_kind(const char *hf_hub_cache, enum hf_repo_type type, const char *name);

/* Calls fn for every file of snapshots/<commit>/ in the client's cache (a
 * symbolic link to ../../blobs/<etag>) with its path in the repo, its etag
 * and the size of the blob it names; entries of any other form are passed
 * over. Stops at fn's first non-zero return, which it returns; -ENOENT
 * when there is no such snapshot. What the client downloaded, not the
 * whole repo: its offline mode shows the same. */
typedef int (*hf_cache_file_fn)(void *ctx, const char *path, const char *etag, uint64_t size);
int hf_cache_snapshot_files(const char *hf_hub_cache, enum hf_repo_type type, const char *repo_id,
			    const char *commit, hf_cache_file_fn fn, void *ctx);

#endif
