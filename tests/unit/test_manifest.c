/* test_manifest.c: unit tests of the ONNX manifest parser: valid, empty,
 * malformed, wrong types, hostile paths, name collisions, huge. Not for:
 * fetching the manifest (hub.c) or serving it (integration tests). */
#include "build_config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_onnx.h"
#include "tap.h"

#define SHA_A "1f1c6aa704715e15fd7d31594d75309598abd1fe6650c8a9c56f9b41d620ac9f"
#define SHA_B "80d0ae7bb232432ee2f17d52f92a1effbf1cc7087db35a31031ce884a7d9a158"

/* One manifest entry in the real format; extra is spliced into metadata. */
static char *entry(char *buf, size_t size, const char *model, const char *path, const char *opset,
		   const char *extra)
{
	snprintf(buf, size,
		 "{\"model\": \"%s\", \"model_path\": \"%s\", \"onnx_version\": \"1.3\", "
		 "\"opset_version\": %s, \"metadata\": {\"model_sha\": \"" SHA_A "\", "
		 "\"model_bytes\": 595, \"tags\": [\"vision\"]%s}}",
		 model, path, opset, extra ? extra : "");
	return buf;
}

static struct onnx_index *parse(const char *json, int *rc_out, char *why, size_t why_size)
{
	struct onnx_index *index = NULL;

	why[0] = '\0';
	*rc_out = onnx_index_parse(json, strlen(json), &index, why, why_size);
	return index;
}

/* Parses a manifest of the given entries (each a JSON object). */
static struct onnx_index *parse_entries(const char *const *entries, size_t n, int *rc)
{
	char why[256];
	size_t cap = 2;
	char *json;
	struct onnx_index *index;

	for (size_t i = 0; i < n; i++)
		cap += strlen(entries[i]) + 2;
	json = malloc(cap + 1);
	strcpy(json, "[");
	for (size_t i = 0; i < n; i++) {
		strcat(json, entries[i]);
		if (i + 1 < n)
			strcat(json, ",");
	}
	strcat(json, "]");
	index = parse(json, rc, why, sizeof(why));
	free(json);
	return index;
}

static void test_valid(void)
{
	char a[1024], b[1024], c[1024], d[1024];
	const char *entries[] = {
		entry(a, sizeof(a), "MNIST", "validated/vision/classification/mnist/model/mnist-8.onnx",
		      "8",
		      ", \"model_with_data_path\": \"validated/vision/classification/mnist/model/"
		      "mnist-8.tar.gz\", \"model_with_data_sha\": \"" SHA_B
		      "\", \"model_with_data_bytes\": 2231"),
		entry(b, sizeof(b), "MNIST", "validated/vision/classification/mnist/model/mnist-12.onnx",
		      "12", NULL),
		entry(c, sizeof(c), "mnist", "validated/vision/classification/mnist/model/mnist-7.onnx",
		      "7", NULL),
		entry(d, sizeof(d), "ResNet18", "validated/vision/classification/resnet/r-7.onnx", "7",
		      NULL),
	};
	int rc;
	struct onnx_index *index = parse_entries(entries, 4, &rc);
	const struct onnx_model *mnist = index ? onnx_index_find(index, "mnist") : NULL;

	tap_ok(rc == 0 && index && index->nmodels == 2 && index->skipped == 0,
	       "valid manifest: 2 models, nothing skipped");
	tap_ok(mnist && mnist->nopsets == 3 && mnist->opsets[0].opset == 7 &&
		       mnist->opsets[2].opset == 12,
	       "names differing in case are one model; opsets ascending");
	tap_ok(mnist && strcmp(mnist->display, "MNIST") == 0, "display name of the first entry");
	tap_ok(mnist && mnist->opsets[1].opset == 8 && mnist->opsets[1].has_data &&
		       strcmp(mnist->opsets[1].data.sha256.hex, SHA_B) == 0 &&
		       mnist->opsets[1].data.bytes == 2231,
	       "model_with_data parsed");
	tap_ok(mnist && !mnist->opsets[0].has_data, "entries without model_with_data have none");
	tap_ok(mnist && mnist->opsets[2].model.bytes == 595 &&
		       strcmp(mnist->opsets[2].model.sha256.hex, SHA_A) == 0,
	       "size and sha256 of a model");
	tap_ok(index && onnx_index_find(index, "resnet18") && !onnx_index_find(index, "ResNet18"),
	       "directory names are lower case");
	onnx_index_free(index);
}

static void test_refused_documents(void)
{
	char why[256], *huge;
	struct onnx_index *index;
	int rc;

	index = parse("[]", &rc, why, sizeof(why));
	tap_ok(rc == 0 && index && index->nmodels == 0, "empty manifest: no models");
	onnx_index_free(index);

	index = parse("[{\"model\": \"x\",", &rc, why, sizeof(why));
	tap_ok(rc == -EINVAL && !index && strstr(why, "not valid JSON"), "truncated JSON: %s", why);
	index = parse("{\"model\": \"x\"}", &rc, why, sizeof(why));
	tap_ok(rc == -EINVAL && !index && strstr(why, "not a JSON array"), "an object: %s", why);
	index = parse("", &rc, why, sizeof(why));
	tap_ok(rc == -EINVAL && !index, "empty document: %s", why);
	index = parse("[] trailing", &rc, why, sizeof(why));
	tap_ok(rc == -EINVAL && !index, "trailing garbage: %s", why);
	{
		static const char with_nul[] = "[]\0[]";
		rc = onnx_index_parse(with_nul, sizeof(with_nul) - 1, &index, why, sizeof(why));
		tap_ok(rc == -EINVAL && !index, "a raw NUL byte: %s", why);
	}

	huge = malloc(ONNX_INDEX_MAX_BYTES + 2);
	memset(huge, ' ', ONNX_INDEX_MAX_BYTES + 1);
	huge[0] = '[';
	huge[ONNX_INDEX_MAX_BYTES] = ']';
	huge[ONNX_INDEX_MAX_BYTES + 1] = '\0';
	rc = onnx_index_parse(huge, ONNX_INDEX_MAX_BYTES + 1, &index, why, sizeof(why));
	tap_ok(rc == -EFBIG && !index && strstr(why, "over the limit"), "oversized manifest: %s", why);
	free(huge);

	/* Deep nesting must not exhaust the stack. */
	huge = malloc(200002);
	memset(huge, '[', 100000);
	memset(huge + 100000, ']', 100000);
	huge[200000] = '\0';
	index = parse(huge, &rc, why, sizeof(why));
	tap_ok(rc == -EINVAL && !index, "100000 nested arrays refused: %s", why);
	free(huge);
}

/* Each entry alone in a manifest must be skipped, leaving no model. */
static void expect_skipped(const char *json_entry, const char *what)
{
	int rc;
	struct onnx_index *index = parse_entries(&json_entry, 1, &rc);

	tap_ok(rc == 0 && index && index->nmodels == 0 && index->skipped == 1, "skipped: %s", what);
	onnx_index_free(index);
}

static void test_bad_entries(void)
{
	char buf[4096], name[400];
	const char *p = "validated/m.onnx";

	expect_skipped("42", "not an object");
	expect_skipped(entry(buf, sizeof(buf), "Abs", "/etc/passwd", "8", NULL), "absolute path");
	expect_skipped(entry(buf, sizeof(buf), "Dots", "validated/../../etc/passwd", "8", NULL),
		       "'..' in the path");
	expect_skipped(entry(buf, sizeof(buf), "Ctl", "validated/a\\u0001b.onnx", "8", NULL),
		       "control character in the path");
	expect_skipped(entry(buf, sizeof(buf), "Nul", "validated/a.onnx\\u0000/../../x", "8", NULL),
		       "\\u0000 in the path (would truncate the C string)");
	expect_skipped(entry(buf, sizeof(buf), "Empty", "", "8", NULL), "empty path");
	expect_skipped(entry(buf, sizeof(buf), "..", p, "8", NULL), "model named '..'");
	expect_skipped(entry(buf, sizeof(buf), "", p, "8", NULL), "empty model name");
	memset(name, 'n', 300);
	name[300] = '\0';
	expect_skipped(entry(buf, sizeof(buf), name, p, "8", NULL), "model name over NAME_MAX");
	expect_skipped(entry(buf, sizeof(buf), "S", p, "\"8\"", NULL), "opset as a string");
	expect_skipped(entry(buf, sizeof(buf), "F", p, "8.5", NULL), "fractional opset");
	expect_skipped(entry(buf, sizeof(buf), "Z", p, "0", NULL), "opset 0");
	expect_skipped(entry(buf, sizeof(buf), "H", p, "1e300", NULL), "enormous opset");
	expect_skipped("{\"model\": \"M\", \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": [1]}",
		       "metadata not an object");
	expect_skipped("{\"model\": \"M\", \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": {\"model_sha\": \"" SHA_A "\", \"model_bytes\": -1}}",
		       "negative size");
	expect_skipped("{\"model\": \"M\", \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": {\"model_sha\": \"" SHA_A "\", \"model_bytes\": \"595\"}}",
		       "size as a string");
	expect_skipped("{\"model\": \"M\", \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": {\"model_sha\": \"xyz\", \"model_bytes\": 5}}",
		       "sha256 not hex");
	expect_skipped("{\"model\": \"M\", \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": {\"model_bytes\": 5}}",
		       "no sha256");
	expect_skipped("{\"model\": 7, \"model_path\": \"a.onnx\", \"opset_version\": 8, "
		       "\"metadata\": {\"model_sha\": \"" SHA_A "\", \"model_bytes\": 5}}",
		       "model not a string");

	/* A bad archive costs only the archive. */
	{
		int rc;
		const char *e = entry(buf, sizeof(buf), "M", p, "8",
				      ", \"model_with_data_path\": \"../x.tar.gz\", "
				      "\"model_with_data_sha\": \"" SHA_B
				      "\", \"model_with_data_bytes\": 5");
		struct onnx_index *index = parse_entries(&e, 1, &rc);
		tap_ok(rc == 0 && index && index->nmodels == 1 && !index->models[0].opsets[0].has_data,
		       "hostile model_with_data_path: model kept, archive left out");
		onnx_index_free(index);
	}
}

static const char *name_of(const struct onnx_index *index, const char *display)
{
	for (size_t i = 0; index && i < index->nmodels; i++)
		if (strcmp(index->models[i].display, display) == 0)
			return index->models[i].name;
	return "(absent)";
}

static void test_names(void)
{
	char a[512], b[512], c[512], d[512], e[512];
	const char *forward[] = {
		entry(a, sizeof(a), "Mobile Net", "m1.onnx", "7", NULL),
		entry(b, sizeof(b), "mobile-net", "m2.onnx", "7", NULL),
		entry(c, sizeof(c), "Mobile_Net", "m3.onnx", "7", NULL),
		entry(d, sizeof(d), "mobile net", "m4.onnx", "9", NULL),
		entry(e, sizeof(e), "Mobile+Net", "m5.onnx", "7", NULL),
	};
	const char *backward[] = { forward[4], forward[3], forward[2], forward[1], forward[0] };
	struct onnx_index *x, *y;
	int rc1, rc2;
	bool same = true;

	x = parse_entries(forward, 5, &rc1);
	y = parse_entries(backward, 5, &rc2);
	tap_ok(rc1 == 0 && rc2 == 0 && x->nmodels == 4 && y->nmodels == 4,
	       "five entries, four models (case-insensitive match)");
	tap_ok(strcmp(name_of(x, "mobile-net"), "mobile-net") == 0,
	       "a name that needs no change keeps it: %s", name_of(x, "mobile-net"));
	tap_ok(strcmp(name_of(x, "Mobile Net"), "mobile-net-2") == 0 &&
		       strcmp(name_of(x, "Mobile+Net"), "mobile-net-3") == 0,
	       "collisions get -2, -3 by name order: %s %s", name_of(x, "Mobile Net"),
	       name_of(x, "Mobile+Net"));
	tap_ok(strcmp(name_of(x, "Mobile_Net"), "mobile_net") == 0, "'_' is kept");
	for (size_t i = 0; x && y && i < x->nmodels; i++)
		same = same && strcmp(x->models[i].name, y->models[i].name) == 0 &&
		       x->models[i].nopsets == y->models[i].nopsets;
	tap_ok(same, "the same names whatever the manifest's order");
	onnx_index_free(x);
	onnx_index_free(y);

	/* A suffixed name never takes another model's own name. */
	{
		const char *entries[] = {
			entry(a, sizeof(a), "A B", "1.onnx", "7", NULL),
			entry(b, sizeof(b), "a-b", "2.onnx", "7", NULL),
			entry(c, sizeof(c), "a-b-2", "3.onnx", "7", NULL),
		};
		x = parse_entries(entries, 3, &rc1);
		tap_ok(rc1 == 0 && strcmp(name_of(x, "A B"), "a-b-3") == 0 &&
			       strcmp(name_of(x, "a-b-2"), "a-b-2") == 0,
		       "suffix skips names in use: %s", name_of(x, "A B"));
		onnx_index_free(x);
	}
	/* The same (name, opset) twice: the first entry wins. */
	{
		const char *entries[] = {
			entry(a, sizeof(a), "Dup", "first.onnx", "7", NULL),
			entry(b, sizeof(b), "dup", "second.onnx", "7", NULL),
		};
		x = parse_entries(entries, 2, &rc1);
		tap_ok(rc1 == 0 && x->nmodels == 1 && x->models[0].nopsets == 1 &&
			       strcmp(x->models[0].opsets[0].model.path, "first.onnx") == 0 &&
			       x->skipped == 1,
		       "duplicate opset: the first is kept");
		onnx_index_free(x);
	}
}

static void test_huge(void)
{
	enum { N = 100000 };
	char one[512], name[32], path[64];
	size_t cap = (size_t)N * 300, len = 1;
	char *json = malloc(cap);
	struct onnx_index *index = NULL;
	char why[256];
	int rc;

	json[0] = '[';
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "Model%d", i / 2);
		snprintf(path, sizeof(path), "validated/m/m%d.onnx", i);
		entry(one, sizeof(one), name, path, i % 2 ? "12" : "7", NULL);
		len += (size_t)snprintf(json + len, cap - len, "%s%s", one, i + 1 < N ? "," : "]");
	}
	rc = onnx_index_parse(json, len, &index, why, sizeof(why));
	tap_ok(rc == 0 && index && index->nmodels == N / 2 && index->skipped == 0,
	       "100000 entries (%zu bytes) parse into %d models", len, N / 2);
	tap_ok(index && onnx_index_find(index, "model49999") &&
		       onnx_index_find(index, "model49999")->nopsets == 2,
	       "lookup in a large index");

	/* A refresh replaces the index: parsing again and freeing the old one
	 * must leave no more memory in use than one index (mallinfo2 counts
	 * glibc's heap; under ASan it reads 0 and LeakSanitizer checks). */
	{
		size_t in_use = mallinfo2().uordblks;
		struct onnx_index *old;

		for (int i = 0; i < 5 && rc == 0; i++) {
			old = index;
			rc = onnx_index_parse(json, len, &index, why, sizeof(why));
			onnx_index_free(old);
		}
		tap_ok(rc == 0 && mallinfo2().uordblks <= in_use + 4096,
		       "5 replacements keep one index in use: %zu bytes before, %zu after", in_use,
		       mallinfo2().uordblks);
	}
	onnx_index_free(index);
	free(json);
}

int main(void)
{
	test_valid();
	test_refused_documents();
	test_bad_entries();
	test_names();
	test_huge();
	return tap_done();
}
