/* hf_tree.c: one commit's file tree of a Hugging Face repo, as the Hub's
 * tree API lists it, kept sorted and compact. Not for: fetching pages or
 * deciding which commit (hub_hf.c). */
#include "build_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_tree.h"
#include "json.h"
#include "log.h"
#include "names.h"

/* Offsets into the strings are 32-bit: 4 GiB of paths is no repo. */
#define STRINGS_MAX UINT32_MAX

static int add_string(struct hf_tree *tree, const char *s, uint32_t *offset)
{
	size_t len = strlen(s) + 1;

	if (tree->used + len > tree->strings_cap) {
		size_t cap = tree->strings_cap ? tree->strings_cap : 4096;
		char *grown;
		while (cap < tree->used + len)
			cap *= 2;
		if (cap > STRINGS_MAX)
			return -EFBIG;
		grown = realloc(tree->strings, cap);
		if (!grown)
			return -ENOMEM;
		tree->strings = grown;
		tree->strings_cap = cap;
	}
	memcpy(tree->strings + tree->used, s, len);
	*offset = (uint32_t)tree->used;
	tree->used += len;
	return 0;
}

int hf_tree_add(struct hf_tree *tree, const char *path, bool dir, uint64_t size,
		    const struct digest_spec *digest)
{
	struct hf_item *item;
	int rc;

	if (tree->count == tree->cap) {
		size_t cap = tree->cap ? 2 * tree->cap : 64;
		struct hf_item *grown = realloc(tree->items, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		tree->items = grown;
		tree->cap = cap;
	}
	item = &tree->items[tree->count];
	memset(item, 0, sizeof(*item));
	rc = add_string(tree, path, &item->path);
	if (rc)
		return rc;
	item->dir = dir;
	item->size = size;
	if (digest)
		item->digest = *digest;
	tree->count++;
	tree->sorted = false;
	return 0;
}

struct page_walk {
	struct hf_tree *tree;
	const char *label;
};

static void skip_entry(struct page_walk *walk, const char *path, const char *why)
{
	char shown[128];

	walk->tree->skipped++;
	log_warn("%s: skipping the entry %s of the file list: %s", walk->label,
		 path ? names_for_log(path, shown, sizeof(shown)) : "(no path)", why);
}

/* The digest a file is checked against: the LFS object's sha256 when the
 * file is stored with LFS (its oid is then the pointer's), else git's. */
static int entry_digest(const cJSON *entry, uint64_t *size, struct digest_spec *digest,
			const char **why)
{
	const cJSON *lfs = json_object(entry, "lfs");
	int64_t n;

	if (lfs) {
		const char *oid = json_string(lfs, "oid");
		if (!oid || digest_spec_set(digest, DIGEST_SHA256, oid) != 0) {
			*why = "its lfs.oid is not a sha256";
			return -EINVAL;
		}
		if (json_integer(lfs, "size", 0, (int64_t)JSON_MAX_SAFE_INTEGER, &n) != 0) {
			*why = "its lfs.size is not a size";
			return -EINVAL;
		}
		*size = (uint64_t)n;
		return 0;
	}
	if (json_integer(entry, "size", 0, (int64_t)JSON_MAX_SAFE_INTEGER, &n) != 0) {
		*why = "its size is not a size";
		return -EINVAL;
	}
	*size = (uint64_t)n;
	if (!json_string(entry, "oid") ||
	    digest_spec_set(digest, DIGEST_GIT_BLOB_SHA1, json_string(entry, "oid")) != 0) {
		*why = "its oid is not a git object id";
		return -EINVAL;
	}
	return 0;
}

static int page_entry(const cJSON *entry, size_t position, void *ctx)
{
	struct page_walk *walk = ctx;
	const char *type = json_string(entry, "type");
	const char *path = json_string(entry, "path");
	struct digest_spec digest = { 0 };
	const char *why = NULL;
	uint64_t size = 0;

	(void)position;
	if (!cJSON_IsObject(entry) || !type || !path) {
		skip_entry(walk, path, "not an object with a type and a path");
		return 0;
	}
	if (names_check_relpath(path, &why) != 0) {
		skip_entry(walk, path, why);
		return 0;
	}
	if (strcmp(type, "directory") == 0)
		return hf_tree_add(walk->tree, path, true, 0, NULL);
	if (strcmp(type, "file") != 0) {
		skip_entry(walk, path, "neither a file nor a directory");
		return 0;
	}
	if (entry_digest(entry, &size, &digest, &why) != 0) {
		skip_entry(walk, path, why);
		return 0;
	}
	return hf_tree_add(walk->tree, path, false, size, &digest);
}

int hf_tree_add_page(struct hf_tree *tree, const char *json, size_t len, const char *label,
		     char *why, size_t why_size)
{
	struct page_walk walk = { .tree = tree, .label = label };

	return json_array_each(json, len, page_entry, &walk, why, why_size);
}

static int compare_items(const void *a, const void *b, void *ctx)
{
	const struct hf_tree *tree = ctx;
	const struct hf_item *x = a, *y = b;

	return strcmp(hf_item_path(tree, x), hf_item_path(tree, y));
}

/* Sorts by path and keeps the first of each path: pages may overlap when
 * the listing changed under the cursor. */
static void sort_unique(struct hf_tree *tree)
{
	size_t kept = 0;

	qsort_r(tree->items, tree->count, sizeof(*tree->items), compare_items, tree);
	for (size_t i = 0; i < tree->count; i++) {
		if (kept && compare_items(&tree->items[kept - 1], &tree->items[i], tree) == 0)
			continue;
		tree->items[kept++] = tree->items[i];
	}
	tree->count = kept;
	tree->sorted = true;
}

int hf_tree_finish(struct hf_tree *tree)
{
	char path[NAMES_PATH_MAX + 1], previous[NAMES_PATH_MAX + 1] = "";
	size_t count;

	sort_unique(tree);
	/* Every parent directory, whether the listing gave it or not; the
	 * second sort drops the copies. Sorted items share parents in runs, so
	 * each run adds its parents once. */
	count = tree->count;
	for (size_t i = 0; i < count; i++) {
		bool first = true;
		snprintf(path, sizeof(path), "%s", hf_item_path(tree, &tree->items[i]));
		for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
			*slash = '\0';
			if (strcmp(path, previous) == 0)
				break;
			if (first)
				snprintf(previous, sizeof(previous), "%s", path);
			first = false;
			int rc = hf_tree_add(tree, path, true, 0, NULL);
			if (rc)
				return rc;
		}
	}
	sort_unique(tree);
	return 0;
}

int hf_tree_done(struct hf_tree **tree, int rc, time_t mtime)
{
	if (rc == 0)
		rc = hf_tree_finish(*tree);
	if (rc) {
		hf_tree_free(*tree);
		*tree = NULL;
	} else {
		(*tree)->mtime = mtime;
	}
	return rc;
}

void hf_tree_free(struct hf_tree *tree)
{
	if (!tree)
		return;
	free(tree->items);
	free(tree->strings);
	free(tree);
}

/* The first item whose path is >= key. */
static size_t lower_bound(const struct hf_tree *tree, const char *key)
{
	size_t lo = 0, hi = tree->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(hf_item_path(tree, &tree->items[mid]), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct hf_item *hf_tree_find(const struct hf_tree *tree, const char *path)
{
	size_t i;

	if (!tree->sorted)
		return NULL;
	i = lower_bound(tree, path);
	if (i < tree->count && strcmp(hf_item_path(tree, &tree->items[i]), path) == 0)
		return &tree->items[i];
	return NULL;
}

int hf_tree_children(const struct hf_tree *tree, const char *dir, hf_tree_child_fn fn, void *ctx)
{
	char prefix[NAMES_PATH_MAX + 2];
	size_t prefix_len, i;

	if (dir[0]) {
		const struct hf_item *self = hf_tree_find(tree, dir);
		if (!self)
			return -ENOENT;
		if (!self->dir)
			return -ENOTDIR;
	}
	if (snprintf(prefix, sizeof(prefix), "%s%s", dir, dir[0] ? "/" : "") >= (int)sizeof(prefix))
		return -ENAMETOOLONG;
	prefix_len = strlen(prefix);
	/* Paths with one prefix sort together: the children are one run. */
	for (i = lower_bound(tree, prefix); i < tree->count; i++) {
		const char *path = hf_item_path(tree, &tree->items[i]);
		int rc;
		if (strncmp(path, prefix, prefix_len) != 0)
			break;
		if (strchr(path + prefix_len, '/'))
			continue; /* deeper down */
		rc = fn(ctx, path + prefix_len, &tree->items[i]);
		if (rc)
			return rc;
	}
	return 0;
}

int hf_tree_to_json(const struct hf_tree *tree, char **out, size_t *len)
{
	cJSON *array = cJSON_CreateArray();
	int rc = -ENOMEM;

	*out = NULL;
	if (!array)
		return -ENOMEM;
	for (size_t i = 0; i < tree->count; i++) {
		const struct hf_item *item = &tree->items[i];
		cJSON *entry = cJSON_CreateObject(), *lfs = NULL;
		if (!entry)
			goto out;
		cJSON_AddItemToArray(array, entry);
		if (!cJSON_AddStringToObject(entry, "type", item->dir ? "directory" : "file") ||
		    !cJSON_AddStringToObject(entry, "path", hf_item_path(tree, item)))
			goto out;
		if (item->dir)
			continue;
		if (item->digest.algo == DIGEST_SHA256) {
			lfs = cJSON_AddObjectToObject(entry, "lfs");
			if (!lfs || !cJSON_AddStringToObject(lfs, "oid", item->digest.hex) ||
			    !cJSON_AddNumberToObject(lfs, "size", (double)item->size))
				goto out;
		} else if (!cJSON_AddStringToObject(entry, "oid", item->digest.hex)) {
			goto out;
		}
		if (!cJSON_AddNumberToObject(entry, "size", (double)item->size))
			goto out;
	}
	*out = cJSON_PrintUnformatted(array);
	if (*out) {
		*len = strlen(*out);
		rc = 0;
	}
out:
	cJSON_Delete(array);
	return rc;
}

size_t hf_tree_bytes(const struct hf_tree *tree)
{
	return sizeof(*tree) + tree->cap * sizeof(*tree->items) + tree->strings_cap;
}
