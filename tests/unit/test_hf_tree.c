/* test_hf_tree.c: unit tests of hf_tree.c: pages of the Hub's tree API into
 * a sorted tree, unsafe entries refused, children listed, and the kept copy
 * read back the same. Not for: fetching pages (hub_hf.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_api.h"
#include "hf_tree.h"
#include "tap.h"

#define SHA256_A "4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899a"
#define SHA1_B "0123456789abcdef0123456789abcdef01234567"

static const char page1[] =
	"[{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":12,\"path\":\"config.json\"},"
	"{\"type\":\"directory\",\"oid\":\"" SHA1_B "\",\"size\":0,\"path\":\"onnx\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":134,\"path\":\"onnx/model.onnx\","
	"\"lfs\":{\"oid\":\"" SHA256_A "\",\"size\":5000000,\"pointerSize\":134}}]";
/* The second page: nested files whose folders the listing left out, a
 * repeat of the first page, and hostile or broken entries. */
static const char page2[] =
	"[{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":3,\"path\":\"a/b/c.txt\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":12,\"path\":\"config.json\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":1,\"path\":\"../escape\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":1,\"path\":\"/etc/passwd\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":1,\"path\":\"bad\\nname\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":1,\"path\":\"a//b\"},"
	"{\"type\":\"file\",\"oid\":\"nothex\",\"size\":1,\"path\":\"badoid\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":-1,\"path\":\"badsize\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":1,\"path\":\"lfs\","
	"\"lfs\":{\"oid\":\"short\",\"size\":1}},"
	"{\"type\":\"symlink\",\"path\":\"other\"},"
	"{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":4,\"path\":\"a-b\"}]";

struct seen {
	char names[16][64];
	int count;
};

static int collect(void *ctx, const char *name, const struct hf_item *item)
{
	struct seen *seen = ctx;

	(void)item;
	if (seen->count < 16)
		snprintf(seen->names[seen->count++], 64, "%s", name);
	return 0;
}

static void check_tree(const struct hf_tree *tree, const char *what)
{
	const struct hf_item *item;
	struct seen seen = { 0 };

	item = hf_tree_find(tree, "onnx/model.onnx");
	tap_ok(item && !item->dir && item->size == 5000000 && item->digest.algo == DIGEST_SHA256 &&
		       strcmp(item->digest.hex, SHA256_A) == 0,
	       "%s: an LFS file has its content's size and sha256", what);
	item = hf_tree_find(tree, "config.json");
	tap_ok(item && item->size == 12 && item->digest.algo == DIGEST_GIT_BLOB_SHA1 &&
		       strcmp(item->digest.hex, SHA1_B) == 0,
	       "%s: a plain file has its git blob id", what);
	item = hf_tree_find(tree, "a/b");
	tap_ok(item && item->dir, "%s: a folder the listing left out is implied", what);
	tap_ok(hf_tree_find(tree, "../escape") == NULL && hf_tree_find(tree, "badoid") == NULL &&
		       hf_tree_find(tree, "other") == NULL && hf_tree_find(tree, "lfs") == NULL,
	       "%s: unsafe or broken entries are not there", what);
	tap_ok(hf_tree_children(tree, "", collect, &seen) == 0 && seen.count == 4 &&
		       strcmp(seen.names[0], "a") == 0 && strcmp(seen.names[1], "a-b") == 0 &&
		       strcmp(seen.names[2], "config.json") == 0 &&
		       strcmp(seen.names[3], "onnx") == 0,
	       "%s: the root lists its direct children only", what);
	memset(&seen, 0, sizeof(seen));
	tap_ok(hf_tree_children(tree, "a", collect, &seen) == 0 && seen.count == 1 &&
		       strcmp(seen.names[0], "b") == 0,
	       "%s: a folder lists its children", what);
	tap_ok(hf_tree_children(tree, "config.json", collect, &seen) == -ENOTDIR &&
		       hf_tree_children(tree, "nothing", collect, &seen) == -ENOENT,
	       "%s: listing a file is ENOTDIR, a missing folder ENOENT", what);
}

static void pages(void)
{
	const char *origin = "https://hub.example:443", *why = NULL;
	struct hf_pages seen = { 0 };
	char url[64], next[64];
	int rc = 0;

	rc = hf_pages_check(&seen, origin, "https://hub.example/t", "https://hub.example/t?c=1", 10,
			    &why);
	tap_ok(rc == 0 && !why, "a next page on the endpoint is asked");
	rc = hf_pages_check(&seen, origin, "https://hub.example/t?c=1", "https://hub.example/t", 20,
			    &why);
	tap_ok(rc == -EIO && why && strstr(why, "already"), "a next page seen before ends it (%s)",
	       why ? why : "-");
	hf_pages_free(&seen);
	rc = hf_pages_check(&seen, origin, "https://hub.example/t", "https://hub.example:444/t?c=1",
			    10, &why);
	tap_ok(rc == -EIO && why && strstr(why, "another"), "another port ends it (%s)",
	       why ? why : "-");
	hf_pages_free(&seen);
	rc = hf_pages_check(&seen, origin, "https://hub.example/t", "http://hub.example/t?c=1", 10,
			    &why);
	tap_ok(rc == -EIO && why && strstr(why, "another"), "another scheme ends it");
	hf_pages_free(&seen);
	rc = hf_pages_check(&seen, origin, "https://hub.example/t", "https://evil.example/t?c=1",
			    10, &why);
	tap_ok(rc == -EIO && why && strstr(why, "another"), "another host ends it");
	hf_pages_free(&seen);
	rc = hf_pages_check(&seen, origin, "https://hub.example/t", "https://hub.example/t?c=1",
			    HF_ENTRIES_MAX, &why);
	tap_ok(rc == -EIO && why && strstr(why, "entries"), "too many entries end it (%s)",
	       why ? why : "-");
	hf_pages_free(&seen);
	rc = 0;
	for (unsigned i = 0; i < HF_PAGES_MAX && rc == 0; i++) {
		snprintf(url, sizeof(url), "https://hub.example/t?c=%u", i);
		snprintf(next, sizeof(next), "https://hub.example/t?c=%u", i + 1);
		rc = hf_pages_check(&seen, origin, url, next, i, &why);
	}
	tap_ok(rc == -EIO && seen.count == HF_PAGES_MAX && why && strstr(why, "pages"),
	       "page %zu of distinct pages ends it (%s)", seen.count, why ? why : "-");
	hf_pages_free(&seen);
}

static void absurd_sizes(void)
{
	static const char *const sizes[] = { "-1", "9007199254740993", "1e300",
					     "18446744073709551616", "1.5", "\"12\"" };
	char page[512], why[256];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct hf_tree *tree = calloc(1, sizeof(*tree));
		snprintf(page, sizeof(page),
			 "[{\"type\":\"file\",\"oid\":\"" SHA1_B "\",\"size\":%s,"
			 "\"path\":\"a.bin\"},{\"type\":\"file\",\"oid\":\"" SHA1_B
			 "\",\"size\":1,\"path\":\"b.bin\",\"lfs\":{\"oid\":\"" SHA256_A
			 "\",\"size\":%s}}]",
			 sizes[i], sizes[i]);
		tap_ok(tree && hf_tree_add_page(tree, page, strlen(page), "test", why, sizeof(why)) == 0 &&
			       tree->count == 0 && tree->skipped == 2,
		       "a size of %s is refused (%zu skipped)", sizes[i], tree ? tree->skipped : 0);
		hf_tree_free(tree);
	}
}

int main(void)
{
	struct hf_tree *tree = calloc(1, sizeof(*tree)), *back = calloc(1, sizeof(*back));
	char why[256], *json = NULL;
	size_t len = 0;

	tap_ok(hf_tree_add_page(tree, page1, strlen(page1), "test", why, sizeof(why)) == 0 &&
		       hf_tree_add_page(tree, page2, strlen(page2), "test", why, sizeof(why)) == 0 &&
		       hf_tree_finish(tree) == 0,
	       "two pages parse");
	tap_ok(tree->skipped == 8, "eight entries skipped (%zu)", tree->skipped);
	check_tree(tree, "fetched");
	tap_ok(hf_tree_add_page(back, "{\"error\":1}", 11, "test", why, sizeof(why)) == -EINVAL &&
		       strstr(why, "array"),
	       "a page that is not an array is refused (%s)", why);
	tap_ok(hf_tree_to_json(tree, &json, &len) == 0 &&
		       hf_tree_add_page(back, json, len, "test", why, sizeof(why)) == 0 &&
		       hf_tree_finish(back) == 0 && back->count == tree->count,
	       "the kept copy reads back");
	check_tree(back, "kept");
	free(json);
	hf_tree_free(tree);
	hf_tree_free(back);
	pages();
	absurd_sizes();
	return tap_done();
}
