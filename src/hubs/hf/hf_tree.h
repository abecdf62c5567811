/* hf_tree.h: one commit's file tree of a Hugging Face repo, as the Hub's
 * tree API lists it (pages of JSON), kept sorted and compact: what a repo
 * shows under the mount. Not for: fetching pages or deciding which commit
 * (hub_hf.c). */
#ifndef OMNIHUB_HF_TREE_H
#define OMNIHUB_HF_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "digest.h"

/* A file or directory of the tree. A file's digest is the sha256 of its
 * content for an LFS (or Xet) file, else git's blob sha1 of it. */
struct hf_item {
	uint32_t path; /* offset in the tree's strings */
	bool dir;
	uint64_t size;
	struct digest_spec digest; /* DIGEST_NONE for a directory */
};

struct hf_tree {
	struct hf_item *items; /* owned; sorted by path once finished */
	size_t count;
	size_t cap;
	char *strings; /* owned; every path, NUL-terminated */
	size_t used;
	size_t strings_cap;
	size_t skipped; /* entries refused: unsafe paths, bad fields */
	bool sorted;
	time_t mtime; /* when the listing was fetched */
};

/* Adds the entries of one page (a JSON array of {type, path, size, oid,
 * lfs: {oid, size}}). An entry with an unsafe path ("..", absolute, control
 * characters, over-long) or bad fields is skipped with a log line naming
 * label. -EINVAL (a sentence in why) when the page is not a JSON array. */
int hf_tree_add_page(struct hf_tree *tree, const char *json, size_t len, const char *label,
		     char *why, size_t why_size);
/* Adds one item (not checked: the caller checks what it adds). */
int hf_tree_add(struct hf_tree *tree, const char *path, bool dir, uint64_t size,
		const struct digest_spec *digest);
/* Sorts, drops duplicates and adds the directories that files imply. */
int hf_tree_finish(struct hf_tree *tree);
/* Ends the building of *tree, which rc says how went: finished and stamped
 * with mtime when rc is 0, else (or when it cannot finish) freed and *tree
 * NULL. Returns the error, or 0. */
int hf_tree_done(struct hf_tree **tree, int rc, time_t mtime);
void hf_tree_free(struct hf_tree *tree);

static inline const char *hf_item_path(const struct hf_tree *tree, const struct hf_item *item)
{
	return tree->strings + item->path;
}

/* The item at path, or NULL. */
const struct hf_item *hf_tree_find(const struct hf_tree *tree, const char *path);

/* Calls fn for each direct child of dir ("" for the root) with its last
 * component; stops at the first non-zero return, which it returns.
 * -ENOENT when dir is neither the root nor a directory, -ENOTDIR for a file. */
typedef int (*hf_tree_child_fn)(void *ctx, const char *name, const struct hf_item *item);
int hf_tree_children(const struct hf_tree *tree, const char *dir, hf_tree_child_fn fn, void *ctx);

/* The tree as one page of the tree API's JSON (what hf_tree_add_page
 * reads back); *out is the caller's. */
int hf_tree_to_json(const struct hf_tree *tree, char **out, size_t *len);

/* Memory the tree holds, in bytes. */
size_t hf_tree_bytes(const struct hf_tree *tree);

#endif
