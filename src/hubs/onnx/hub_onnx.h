/* hub_onnx.h: the ONNX Model Zoo hub: its manifest, parsed into models and
 * opsets, and the backend that shows them as onnx/<model>/... Not for:
 * fetching or caching anything itself (the core does, through hub.h). */
#ifndef OMNIHUB_HUB_ONNX_H
#define OMNIHUB_HUB_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "hub.h"

/* The real manifest is about 300 KB; anything near this is not one. */
#define ONNX_INDEX_MAX_BYTES (64u << 20)

extern const struct hub_ops hub_onnx_ops;

/* One downloadable file named by the manifest. */
struct onnx_file {
	char *path; /* in the index's strings; model_path, checked safe */
	struct digest_spec sha256;
	uint64_t bytes;
};

struct onnx_opset {
	int opset;
	struct onnx_file model;
	bool has_data;
	struct onnx_file data; /* model_with_data: a .tar.gz */
};

struct onnx_model {
	char *name;    /* in the index's strings; the directory name, unique */
	char *display; /* in the index's strings; the manifest's "model" as first seen */
	struct onnx_opset *opsets; /* owned; ascending by opset */
	size_t nopsets;
};

/* Every string of an index, packed in a few large blocks: one allocation per
 * block rather than several per entry, all freed with the index. */
struct onnx_strings;

struct onnx_index {
	struct onnx_model *models;    /* owned; sorted by name */
	size_t nmodels;
	size_t skipped;               /* manifest entries refused */
	struct onnx_strings *strings; /* owned; what the models' strings point into */
};

/* Parses manifest bytes, one entry at a time (never the whole JSON tree at
 * once), and gives the freed memory back to the system. Entries that are malformed or unsafe are skipped
 * with a log line each; a document that is not a JSON array of objects, or
 * is over ONNX_INDEX_MAX_BYTES, is refused with -EINVAL/-EFBIG and a
 * sentence in why. */
int onnx_index_parse(const char *json, size_t len, struct onnx_index **out, char *why,
		     size_t why_size);
void onnx_index_free(struct onnx_index *index);
const struct onnx_model *onnx_index_find(const struct onnx_index *index, const char *name);

#endif
