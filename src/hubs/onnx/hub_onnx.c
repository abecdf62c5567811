/* hub_onnx.c: the ONNX Model Zoo hub: its manifest, parsed into models and
 * opsets, and the backend that shows them as onnx/<model>/... Not for:
 * fetching or caching anything itself (the core does, through hub.h). */
#include "build_config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_cache.h"
#include "config.h"
#include "fetch.h"
#include "hf_cache.h"
#include "hub_onnx.h"
#include "json.h"
#include "log.h"
#include "names.h"

#define MODEL_FILE "model.onnx"
#define DATA_DIR "model_with_data"
#define OPSET_PREFIX "opset-"
/* Opsets are small integers (1..23 today); this only bounds nonsense. */
#define OPSET_MAX 100000
/* Where the zoo's mirror keeps files in a huggingface_hub cache. */
/* Real endpoints: the defaults for users with internet. */
#define ONNX_INDEX_URL_DEFAULT \
	"https://raw.githubusercontent.com/onnx/models/main/ONNX_HUB_MANIFEST.json"
#define ONNX_URL_DEFAULT "https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/"
/* The zoo's files are a repo on the Hugging Face Hub; huggingface_hub
 * keeps them (LFS files, named by sha256) in its cache. */
#define HF_MIRROR_REPO "onnxmodelzoo/legacy_models"

/* Strings are packed in blocks of this size (a longer string gets its own). */
#define STRINGS_BLOCK_BYTES (64u << 10)

/* ---- the manifest ---- */

struct onnx_strings {
	struct onnx_strings *next; /* owned; the previous, full block */
	size_t used, size;
	char data[];
};

/* Copies s into the blocks at *head; NULL when out of memory. */
static char *strings_add(struct onnx_strings **head, const char *s)
{
	size_t len = strlen(s) + 1;
	struct onnx_strings *block = *head;
	char *copy;

	if (!block || block->size - block->used < len) {
		size_t size = len > STRINGS_BLOCK_BYTES ? len : STRINGS_BLOCK_BYTES;

		block = malloc(sizeof(*block) + size);
		if (!block)
			return NULL;
		block->next = *head;
		block->used = 0;
		block->size = size;
		*head = block;
	}
	copy = memcpy(block->data + block->used, s, len);
	block->used += len;
	return copy;
}

static void strings_free(struct onnx_strings *block)
{
	while (block) {
		struct onnx_strings *next = block->next;
		free(block);
		block = next;
	}
}

/* One accepted manifest entry, before entries are grouped into models. */
struct raw_entry {
	char *display; /* in the index's strings */
	char *key;     /* in the scratch strings; display with ASCII lower-cased:
			  the client matches names case-insensitively */
	int opset;
	struct onnx_file model;
	bool has_data;
	struct onnx_file data;
	size_t position; /* in the manifest */
	char *base;      /* in the scratch strings; the directory name before
			    collisions */
};

/* Reads <prefix>path, <prefix>sha, <prefix>bytes style fields into file. */
static int parse_file(const cJSON *path_holder, const char *path_key, const cJSON *meta,
		      const char *sha_key, const char *bytes_key, struct onnx_strings **strings,
		      struct onnx_file *file, const char **why)
{
	const char *path = json_string(path_holder, path_key);
	const char *sha = json_string(meta, sha_key);
	int64_t bytes;

	if (!path) {
		*why = "path is not a string";
		return -EINVAL;
	}
	if (names_check_relpath(path, why))
		return -EINVAL;
	if (!sha || digest_spec_set(&file->sha256, DIGEST_SHA256, sha)) {
		*why = "sha256 is not 64 hex digits";
		return -EINVAL;
	}
	if (json_integer(meta, bytes_key, 0, (int64_t)JSON_MAX_SAFE_INTEGER, &bytes)) {
		*why = "byte size is not a non-negative integer";
		return -EINVAL;
	}
	file->bytes = (uint64_t)bytes;
	file->path = strings_add(strings, path);
	if (!file->path) {
		*why = "out of memory";
		return -ENOMEM;
	}
	return 0;
}

/* Strings that keep go into strings; the key goes into scratch. */
static int parse_entry(const cJSON *item, size_t position, struct onnx_strings **strings,
		       struct onnx_strings **scratch, struct raw_entry *raw, const char **why)
{
	const cJSON *meta;
	const char *display, *data_why = NULL;
	char shown[80];
	int64_t opset;
	int rc;

	memset(raw, 0, sizeof(*raw));
	raw->position = position;
	if (!cJSON_IsObject(item)) {
		*why = "not an object";
		return -EINVAL;
	}
	display = json_string(item, "model");
	if (!display || !*display || strlen(display) > NAMES_PATH_MAX) {
		*why = "\"model\" is not a non-empty string";
		return -EINVAL;
	}
	if (json_integer(item, "opset_version", 1, OPSET_MAX, &opset)) {
		*why = "\"opset_version\" is not a positive integer";
		return -EINVAL;
	}
	meta = json_object(item, "metadata");
	if (!meta) {
		*why = "\"metadata\" is not an object";
		return -EINVAL;
	}
	rc = parse_file(item, "model_path", meta, "model_sha", "model_bytes", strings, &raw->model,
			why);
	if (rc)
		return rc;
	raw->opset = (int)opset;
	raw->display = strings_add(strings, display);
	raw->key = strings_add(scratch, display);
	if (!raw->display || !raw->key) {
		*why = "out of memory";
		return -ENOMEM;
	}
	for (char *p = raw->key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');

	/* The test-data archive is optional: a bad one costs only itself. */
	if (cJSON_GetObjectItemCaseSensitive(meta, "model_with_data_path")) {
		rc = parse_file(meta, "model_with_data_path", meta, "model_with_data_sha",
				"model_with_data_bytes", strings, &raw->data, &data_why);
		if (rc == 0)
			raw->has_data = true;
		else if (rc == -ENOMEM)
			return rc;
		else
			log_warn("onnx: manifest entry %zu (%s): model_with_data left out: %s",
				 position, names_for_log(display, shown, sizeof(shown)), data_why);
	}
	return 0;
}

static int compare_raw(const void *a, const void *b)
{
	const struct raw_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	if (x->opset != y->opset)
		return x->opset < y->opset ? -1 : 1;
	return x->position < y->position ? -1 : (x->position > y->position);
}

/* A model being assembled: its entries are raws[first .. first+count). */
struct group {
	size_t first;
	size_t count;
	const char *base; /* borrowed from raws[first].base */
	const char *key;
	char *name;       /* in the index's strings */
};

/* Collisions: groups sorted by base; among equal bases, the group whose
 * name needed no change, then by lower-cased name. */
static int compare_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	int c = strcmp(x->base, y->base);
	bool x_exact = strcmp(x->base, x->key) == 0, y_exact = strcmp(y->base, y->key) == 0;

	if (c)
		return c;
	if (x_exact != y_exact)
		return x_exact ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_model(const void *a, const void *b)
{
	const struct onnx_model *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/* Gives every group a unique directory name: the first of a base keeps it,
 * the next ones get "-2", "-3", ... skipping names that are another
 * group's base. Deterministic whatever the manifest's order. */
static int assign_names(struct group *groups, size_t ngroups, struct onnx_strings **strings)
{
	const char **bases = NULL;
	int rc = -ENOMEM;

	qsort(groups, ngroups, sizeof(*groups), compare_group);
	bases = malloc((ngroups ? ngroups : 1) * sizeof(*bases));
	if (!bases)
		goto out;
	for (size_t i = 0; i < ngroups; i++)
		bases[i] = groups[i].base;
	qsort(bases, ngroups, sizeof(*bases), compare_str);

	unsigned suffix = 2; /* the next one to try for the current base */
	for (size_t i = 0; i < ngroups; i++) {
		char candidate[NAME_MAX + 16];

		if (i == 0 || strcmp(groups[i].base, groups[i - 1].base) != 0) {
			groups[i].name = strings_add(strings, groups[i].base);
			suffix = 2;
		} else {
			for (;; suffix++) {
				const char *key = candidate;
				snprintf(candidate, sizeof(candidate), "%s-%u", groups[i].base, suffix);
				if (!bsearch(&key, bases, ngroups, sizeof(*bases), compare_str))
					break;
			}
			suffix++;
			if (strlen(candidate) > NAME_MAX) {
				char shown[80];
				log_warn("onnx: model '%s' left out: no free directory name",
					 names_for_log(groups[i].key, shown, sizeof(shown)));
				continue; /* name stays NULL: the group is dropped */
			}
			groups[i].name = strings_add(strings, candidate);
		}
		if (!groups[i].name)
			goto out;
	}
	rc = 0;
out:
	free(bases);
	return rc;
}

/* Moves a group's entries into a model; entries repeating an opset are
 * dropped (the first in the manifest wins). */
static int build_model(struct group *group, struct raw_entry *raws, struct onnx_model *model,
		       size_t *skipped)
{
	struct raw_entry *first = &raws[group->first];
	char shown[80];

	memset(model, 0, sizeof(*model));
	model->opsets = calloc(group->count, sizeof(*model->opsets));
	if (!model->opsets)
		return -ENOMEM;
	model->name = group->name;
	/* The display name of the model's earliest entry. */
	for (size_t i = 0; i < group->count; i++)
		if (raws[group->first + i].position < first->position)
			first = &raws[group->first + i];
	model->display = first->display;

	for (size_t i = 0; i < group->count; i++) {
		struct raw_entry *raw = &raws[group->first + i];
		struct onnx_opset *opset;

		if (model->nopsets > 0 && model->opsets[model->nopsets - 1].opset == raw->opset) {
			log_warn("onnx: manifest entry %zu (%s): opset %d listed twice; "
				 "keeping the first", raw->position,
				 names_for_log(raw->key, shown, sizeof(shown)), raw->opset);
			(*skipped)++;
			continue;
		}
		opset = &model->opsets[model->nopsets++];
		opset->opset = raw->opset;
		opset->model = raw->model;
		opset->has_data = raw->has_data;
		opset->data = raw->data;
	}
	return 0;
}

void onnx_index_free(struct onnx_index *index)
{
	if (!index)
		return;
	for (size_t i = 0; i < index->nmodels; i++)
		free(index->models[i].opsets);
	free(index->models);
	strings_free(index->strings);
	free(index);
}

/* What onnx_index_parse accumulates while the elements go by. */
struct parse_state {
	struct onnx_index *index;
	struct onnx_strings *scratch; /* owned; keys and bases, dropped after */
	struct raw_entry *raws;       /* owned */
	size_t nraws, cap;
};

/* Accepts one manifest element: a bad entry costs only itself. */
static int parse_element(const cJSON *item, size_t position, void *ctx)
{
	struct parse_state *st = ctx;
	struct onnx_index *index = st->index;
	const char *entry_why = "";
	char shown[80], base[NAME_MAX + 1];
	struct raw_entry raw;
	int rc;

	rc = parse_entry(item, position, &index->strings, &st->scratch, &raw, &entry_why);
	if (rc == 0)
		rc = names_to_dirname(raw.key, base, &entry_why);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		index->skipped++;
		log_warn("onnx: manifest entry %zu (%s) skipped: %s", position,
			 names_for_log(json_string(item, "model") ? json_string(item, "model") : "?",
				       shown, sizeof(shown)),
			 entry_why);
		return 0;
	}
	raw.base = strings_add(&st->scratch, base);
	if (!raw.base)
		return -ENOMEM;
	if (st->nraws == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 64;
		struct raw_entry *grown = realloc(st->raws, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		st->raws = grown;
		st->cap = cap;
	}
	st->raws[st->nraws++] = raw;
	return 0;
}

int onnx_index_parse(const char *json, size_t len, struct onnx_index **out, char *why,
		     size_t why_size)
{
	struct parse_state st = { 0 };
	struct onnx_index *index = NULL;
	struct raw_entry *raws;
	struct group *groups = NULL;
	size_t nraws, ngroups = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (len > ONNX_INDEX_MAX_BYTES) {
		snprintf(why, why_size, "the manifest is %zu bytes, over the limit of %u", len,
			 ONNX_INDEX_MAX_BYTES);
		return -EFBIG;
	}
	index = calloc(1, sizeof(*index));
	if (!index)
		goto out;
	st.index = index;
	rc = json_array_each(json, len, parse_element, &st, why, why_size);
	if (rc == -EINVAL && strcmp(why, "not a JSON array") == 0)
		snprintf(why, why_size, "the manifest is not a JSON array");
	if (rc)
		goto out;
	raws = st.raws;
	nraws = st.nraws;

	/* Group entries of one model (same name, case aside), opsets ascending. */
	rc = -ENOMEM;
	if (nraws > 0) /* raws is NULL when no entry was accepted */
		qsort(raws, nraws, sizeof(*raws), compare_raw);
	groups = calloc(nraws ? nraws : 1, sizeof(*groups));
	if (!groups)
		goto out;
	for (size_t i = 0; i < nraws; i++) {
		if (ngroups == 0 || strcmp(raws[i].key, groups[ngroups - 1].key) != 0) {
			groups[ngroups].first = i;
			groups[ngroups].base = raws[i].base;
			groups[ngroups].key = raws[i].key;
			ngroups++;
		}
		groups[ngroups - 1].count++;
	}
	rc = assign_names(groups, ngroups, &index->strings);
	if (rc)
		goto out;

	rc = -ENOMEM;
	index->models = calloc(ngroups ? ngroups : 1, sizeof(*index->models));
	if (!index->models)
		goto out;
	for (size_t i = 0; i < ngroups; i++) {
		if (!groups[i].name) {
			index->skipped += groups[i].count;
			continue;
		}
		rc = build_model(&groups[i], raws, &index->models[index->nmodels], &index->skipped);
		if (rc)
			goto out;
		index->nmodels++;
	}
	qsort(index->models, index->nmodels, sizeof(*index->models), compare_model);
	*out = index;
	index = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM)
		snprintf(why, why_size, "out of memory");
	free(groups);
	free(st.raws);
	strings_free(st.scratch);
	onnx_index_free(index);
	/* The parse's garbage is many small blocks, spread over the arenas of
	 * whichever threads parsed; give it back rather than keep the peak. */
	malloc_trim(0);
	return rc;
}

const struct onnx_model *onnx_index_find(const struct onnx_index *index, const char *name)
{
	struct onnx_model key = { .name = (char *)name };

	if (!index || index->nmodels == 0)
		return NULL;
	return bsearch(&key, index->models, index->nmodels, sizeof(*index->models), compare_model);
}

/* ---- the backend ---- */

struct onnx_hub {
	struct hub_index_spec spec; /* its url borrowed from the config */
	const char *files_url;      /* borrowed from the config */
	/* The clients' own caches, read before a download (client_cache_dir). */
	char *client_dir; /* owned; onnx.hub's */
	char *hf_cache;   /* owned; huggingface_hub's (the zoo's mirror repo) */
	pthread_mutex_t lock;     /* guards the fields below */
	struct onnx_index *index; /* owned; replaced whole by a refresh */
	time_t index_mtime;       /* when the index was fetched */
	time_t next_refresh;
	bool refreshing;          /* one thread fetches, the others go on */
};

/* What a path inside onnx/ names. */
enum onnx_what {
	ONNX_ROOT,       /* onnx/ */
	ONNX_MODEL,      /* onnx/<model>/ */
	ONNX_LATEST,     /* onnx/<model>/model.onnx: the highest opset */
	ONNX_OPSET,      /* onnx/<model>/opset-<N>/ */
	ONNX_OPSET_FILE, /* onnx/<model>/opset-<N>/model.onnx */
	ONNX_OPSET_DATA, /* onnx/<model>/opset-<N>/model_with_data/ */
};

struct onnx_place {
	enum onnx_what what;
	const struct onnx_model *model;
	const struct onnx_opset *opset;
};

/* "opset-<N>" in canonical form, N one of the model's opsets. */
static const struct onnx_opset *find_opset(const struct onnx_model *model, const char *name)
{
	char canonical[32];
	char *end;
	long n;

	if (strncmp(name, OPSET_PREFIX, sizeof(OPSET_PREFIX) - 1) != 0)
		return NULL;
	n = strtol(name + sizeof(OPSET_PREFIX) - 1, &end, 10);
	if (*end != '\0' || n < 1 || n > OPSET_MAX)
		return NULL;
	snprintf(canonical, sizeof(canonical), OPSET_PREFIX "%ld", n);
	if (strcmp(canonical, name) != 0)
		return NULL;
	for (size_t i = 0; i < model->nopsets; i++)
		if (model->opsets[i].opset == n)
			return &model->opsets[i];
	return NULL;
}

/* Resolves path against index; the place borrows from the index, so the
 * caller holds the hub's lock while using it. */
static int resolve(const struct onnx_index *index, const char *path, struct onnx_place *place)
{
	char parts[3][NAME_MAX + 1];
	size_t nparts = 0;

	memset(place, 0, sizeof(*place));
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (nparts == 3 || n > NAME_MAX)
			return -ENOENT;
		memcpy(parts[nparts], p, n);
		parts[nparts++][n] = '\0';
		p += n;
		if (*p == '/')
			p++;
	}
	if (nparts == 0) {
		place->what = ONNX_ROOT;
		return 0;
	}
	place->model = onnx_index_find(index, parts[0]);
	if (!place->model)
		return -ENOENT;
	if (nparts == 1) {
		place->what = ONNX_MODEL;
		return 0;
	}
	if (nparts == 2 && strcmp(parts[1], MODEL_FILE) == 0) {
		place->what = ONNX_LATEST;
		place->opset = &place->model->opsets[place->model->nopsets - 1];
		return 0;
	}
	place->opset = find_opset(place->model, parts[1]);
	if (!place->opset)
		return -ENOENT;
	if (nparts == 2) {
		place->what = ONNX_OPSET;
		return 0;
	}
	if (strcmp(parts[2], MODEL_FILE) == 0) {
		place->what = ONNX_OPSET_FILE;
		return 0;
	}
	if (strcmp(parts[2], DATA_DIR) == 0 && place->opset->has_data) {
		place->what = ONNX_OPSET_DATA;
		return 0;
	}
	return -ENOENT;
}

static void place_entry(const struct onnx_place *place, const char *name, time_t mtime,
			struct entry *entry)
{
	switch (place->what) {
	case ONNX_LATEST:
	case ONNX_OPSET_FILE:
		entry_make(entry, name, ENTRY_FILE, place->opset->model.bytes, mtime);
		entry->digest = place->opset->model.sha256;
		break;
	case ONNX_OPSET_DATA:
		entry_make(entry, name, ENTRY_ARCHIVE, place->opset->data.bytes, mtime);
		entry->digest = place->opset->data.sha256;
		break;
	case ONNX_ROOT:
	case ONNX_MODEL:
	case ONNX_OPSET:
		entry_make(entry, name, ENTRY_DIR, 0, mtime);
		break;
	}
}

static int install_index(struct hub *hub, const char *data, size_t len, time_t mtime, char *why,
			 size_t why_size)
{
	struct onnx_hub *onnx = hub->priv;
	struct onnx_index *index = NULL, *old;
	size_t files = 0;
	int rc;

	rc = onnx_index_parse(data, len, &index, why, why_size);
	if (rc)
		return rc;
	for (size_t i = 0; i < index->nmodels; i++)
		files += index->models[i].nopsets;
	log_info("onnx: index has %zu models, %zu model files; %zu entries skipped",
		 index->nmodels, files, index->skipped);
	pthread_mutex_lock(&onnx->lock);
	old = onnx->index;
	onnx->index = index;
	onnx->index_mtime = mtime;
	pthread_mutex_unlock(&onnx->lock);
	onnx_index_free(old);
	malloc_trim(0); /* the replaced index was as big as the new one */
	return 0;
}

/* Fetches a newer index once the TTL has passed, without holding up other
 * threads: they keep using the current one meanwhile. */
static void refresh_if_due(struct hub *hub)
{
	struct onnx_hub *onnx = hub->priv;
	unsigned ttl = hub->index_ttl; /* a reload may change it */
	char why[512];
	time_t now = time(NULL);
	bool due;
	int rc;

	if (hub->offline)
		return;
	pthread_mutex_lock(&onnx->lock);
	due = !onnx->refreshing && now >= onnx->next_refresh;
	if (due)
		onnx->refreshing = true;
	pthread_mutex_unlock(&onnx->lock);
	if (!due)
		return;
	rc = hub_index_load(hub, &onnx->spec, true, install_index, why, sizeof(why));
	pthread_mutex_lock(&onnx->lock);
	onnx->refreshing = false;
	/* After a failure, try again in a minute rather than a whole TTL; and
	 * never more than once a second, even with index_ttl=0, so a burst of
	 * lookups (ls -l) does not fetch the index once per name. */
	onnx->next_refresh = time(NULL) + (rc == 0 || ttl < 60 ? (time_t)ttl : 60);
	if (onnx->next_refresh <= time(NULL))
		onnx->next_refresh = time(NULL) + 1;
	pthread_mutex_unlock(&onnx->lock);
	if (rc == 0 && hub->env->index_changed)
		hub->env->index_changed(hub->env->index_changed_ctx, hub);
}

/* An option (or its environment variable, or a file's line), else the
 * default. */
static const char *setting(const struct config *cfg, const char *option, const char *fallback)
{
	const char *value = config_hub_option(cfg, option);

	return value ? value : fallback;
}

static int onnx_open(struct hub *hub, char *why, size_t why_size)
{
	const struct config *cfg = hub->env->config;
	struct onnx_hub *onnx;
	int rc;

	onnx = calloc(1, sizeof(*onnx));
	if (!onnx) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&onnx->lock, NULL);
	onnx->spec.url = setting(cfg, "onnx_index_url", ONNX_INDEX_URL_DEFAULT);
	onnx->files_url = setting(cfg, "onnx_url", ONNX_URL_DEFAULT);
	onnx->spec.file_name = "ONNX_HUB_MANIFEST.json";
	onnx->spec.max_bytes = ONNX_INDEX_MAX_BYTES;
	hub->priv = onnx;
	rc = client_cache_dir("onnx", &onnx->client_dir);
	if (rc == 0)
		rc = client_cache_dir("huggingface", &onnx->hf_cache);
	if (rc)
		snprintf(why, why_size, "out of memory");
	else
		rc = hub_index_load(hub, &onnx->spec, false, install_index, why, why_size);
	if (rc) {
		hub->ops->close(hub);
		return rc;
	}
	onnx->next_refresh = onnx->index_mtime + (time_t)hub->index_ttl;
	return 0;
}

static void onnx_close(struct hub *hub)
{
	struct onnx_hub *onnx = hub->priv;

	if (!onnx)
		return;
	onnx_index_free(onnx->index);
	free(onnx->client_dir);
	free(onnx->hf_cache);
	pthread_mutex_destroy(&onnx->lock);
	free(onnx);
	hub->priv = NULL;
}

/* hub_ops.would_block: the thread that finds the index due refreshes it,
 * in the call; the others go on with the current one. */
static bool onnx_would_block(struct hub *hub, const char *path, bool list)
{
	struct onnx_hub *onnx = hub->priv;
	bool due;

	(void)path;
	(void)list;
	if (hub->offline)
		return false;
	pthread_mutex_lock(&onnx->lock);
	due = !onnx->refreshing && time(NULL) + 1 >= onnx->next_refresh;
	pthread_mutex_unlock(&onnx->lock);
	return due;
}

static int onnx_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	struct onnx_hub *onnx = hub->priv;
	struct onnx_place place;
	struct entry entry;
	char name[NAME_MAX + 1];
	int rc;

	refresh_if_due(hub);
	pthread_mutex_lock(&onnx->lock);
	rc = resolve(onnx->index, dir, &place);
	if (rc)
		goto out;
	switch (place.what) {
	case ONNX_ROOT:
		for (size_t i = 0; i < onnx->index->nmodels && rc == 0; i++) {
			entry_make(&entry, onnx->index->models[i].name, ENTRY_DIR, 0,
				   onnx->index_mtime);
			rc = entry_list_add(out, &entry);
		}
		break;
	case ONNX_MODEL:
		place.what = ONNX_LATEST;
		place.opset = &place.model->opsets[place.model->nopsets - 1];
		place_entry(&place, MODEL_FILE, onnx->index_mtime, &entry);
		rc = entry_list_add(out, &entry);
		for (size_t i = 0; i < place.model->nopsets && rc == 0; i++) {
			snprintf(name, sizeof(name), OPSET_PREFIX "%d", place.model->opsets[i].opset);
			entry_make(&entry, name, ENTRY_DIR, 0, onnx->index_mtime);
			rc = entry_list_add(out, &entry);
		}
		break;
	case ONNX_OPSET:
		place.what = ONNX_OPSET_FILE;
		place_entry(&place, MODEL_FILE, onnx->index_mtime, &entry);
		rc = entry_list_add(out, &entry);
		if (rc == 0 && place.opset->has_data) {
			place.what = ONNX_OPSET_DATA;
			place_entry(&place, DATA_DIR, onnx->index_mtime, &entry);
			rc = entry_list_add(out, &entry);
		}
		break;
	case ONNX_LATEST:
	case ONNX_OPSET_FILE:
	case ONNX_OPSET_DATA: /* the core lists extracted trees itself */
		rc = -ENOTDIR;
		break;
	}
out:
	pthread_mutex_unlock(&onnx->lock);
	return rc;
}

static int onnx_lookup(struct hub *hub, const char *path, struct entry *out)
{
	struct onnx_hub *onnx = hub->priv;
	struct onnx_place place;
	const char *slash = strrchr(path, '/');
	int rc;

	refresh_if_due(hub);
	pthread_mutex_lock(&onnx->lock);
	rc = resolve(onnx->index, path, &place);
	if (rc == 0)
		place_entry(&place, slash ? slash + 1 : path, onnx->index_mtime, out);
	pthread_mutex_unlock(&onnx->lock);
	return rc;
}

/* "<dir of path>/<sha256>_<basename>": how the ONNX client names its cache
 * files, below its hub directory. */
static char *onnx_client_path(const char *client_dir, const struct onnx_file *file)
{
	const char *slash = strrchr(file->path, '/');
	char *out = NULL;
	int dir_len = slash ? (int)(slash - file->path) + 1 : 0;

	if (asprintf(&out, "%s/%.*s%s_%s", client_dir, dir_len, file->path, file->sha256.hex,
		     slash ? slash + 1 : file->path) < 0)
		return NULL;
	return out;
}

/* hub_ops.client_paths: each opset's model where onnx.hub keeps it,
 * hub/<dir of model_path>/<sha256>_<basename> (onnx/hub.py, load). */
static int onnx_client_paths(struct hub *hub,
			     int (*fn)(void *ctx, const char *path, const char *client,
				       const char *client_path),
			     void *ctx)
{
	struct onnx_hub *onnx = hub->priv;
	char path[PATH_MAX];
	int rc = 0;

	pthread_mutex_lock(&onnx->lock);
	for (size_t i = 0; i < onnx->index->nmodels && rc == 0; i++) {
		const struct onnx_model *model = &onnx->index->models[i];

		for (size_t j = 0; j < model->nopsets && rc == 0; j++) {
			char *client = onnx_client_path("hub", &model->opsets[j].model);

			if (!client) {
				rc = -ENOMEM;
			} else if ((size_t)snprintf(path, sizeof(path), "%s/" OPSET_PREFIX "%d/" MODEL_FILE,
						    model->name, model->opsets[j].opset) <
				   sizeof(path)) {
				rc = fn(ctx, path, "onnx", client);
			}
			free(client);
		}
	}
	pthread_mutex_unlock(&onnx->lock);
	return rc;
}

static int fill_source(const struct onnx_hub *onnx, const struct onnx_model *model,
		       const struct onnx_opset *opset, bool data, struct source *out)
{
	const struct onnx_file *file = data ? &opset->data : &opset->model;
	int rc;

	memset(out, 0, sizeof(*out));
	out->kind = data ? SOURCE_ARCHIVE : SOURCE_FILE;
	out->digest = file->sha256;
	out->size = file->bytes;
	rc = fetch_url_join(onnx->files_url, file->path, &out->url);
	if (rc)
		goto out;
	if (asprintf(&out->cache_path, "onnx/%s/" OPSET_PREFIX "%d/%s", model->name, opset->opset,
		     data ? DATA_DIR : MODEL_FILE) < 0) {
		out->cache_path = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = source_add_local_take(out, onnx_client_path(onnx->client_dir, file));
	if (rc == 0)
		rc = source_add_local_take(out, hf_cache_blob_path(onnx->hf_cache, HF_REPO_MODEL,
								    HF_MIRROR_REPO, file->sha256.hex));
out:
	if (rc)
		source_clear(out);
	return rc;
}

static int onnx_source(struct hub *hub, const char *path, struct source *out)
{
	struct onnx_hub *onnx = hub->priv;
	struct onnx_place place;
	int rc;

	pthread_mutex_lock(&onnx->lock);
	rc = resolve(onnx->index, path, &place);
	if (rc == 0) {
		switch (place.what) {
		case ONNX_LATEST:
		case ONNX_OPSET_FILE:
			rc = fill_source(onnx, place.model, place.opset, false, out);
			break;
		case ONNX_OPSET_DATA:
			rc = fill_source(onnx, place.model, place.opset, true, out);
			break;
		case ONNX_ROOT:
		case ONNX_MODEL:
		case ONNX_OPSET:
			rc = -EISDIR;
			break;
		}
	}
	pthread_mutex_unlock(&onnx->lock);
	return rc;
}

/* user.omnihub.meta: the manifest's name of the model, and the opset. */
static int onnx_meta(struct hub *hub, const char *path, char **json)
{
	struct onnx_hub *onnx = hub->priv;
	struct onnx_place place;
	cJSON *meta = NULL;
	int rc;

	pthread_mutex_lock(&onnx->lock);
	rc = resolve(onnx->index, path, &place);
	if (rc == 0 && !place.opset)
		rc = -ENOENT;
	if (rc == 0) {
		const struct onnx_file *file =
			place.what == ONNX_OPSET_DATA ? &place.opset->data : &place.opset->model;
		rc = -ENOMEM;
		meta = cJSON_CreateObject();
		if (meta && cJSON_AddStringToObject(meta, "model", place.model->display) &&
		    cJSON_AddNumberToObject(meta, "opset", place.opset->opset) &&
		    cJSON_AddStringToObject(meta, "model_path", file->path) &&
		    (*json = cJSON_PrintUnformatted(meta)) != NULL)
			rc = 0;
	}
	pthread_mutex_unlock(&onnx->lock);
	cJSON_Delete(meta);
	return rc;
}

static const struct hub_option_spec onnx_options[] = {
	{ "onnx_index_url", "URL",
	  "ONNX Model Zoo manifest (default:\n$OMNIHUB_ONNX_INDEX_URL, else\n" ONNX_INDEX_URL_DEFAULT ")",
	  HUB_OPTION_TEXT, "OMNIHUB_ONNX_INDEX_URL", 0, 0 },
	{ "onnx_url", "URL",
	  "base URL of the zoo's model files (default:\n$OMNIHUB_ONNX_URL, else\n" ONNX_URL_DEFAULT ")",
	  HUB_OPTION_TEXT, "OMNIHUB_ONNX_URL", 0, 0 },
	{ NULL, NULL, NULL, HUB_OPTION_TEXT, NULL, 0, 0 },
};

const struct hub_ops hub_onnx_ops = {
	.name = "onnx",
	.flags = HUB_LISTS_ALL | HUB_SIZES_KNOWN,
	.options = onnx_options,
	.open = onnx_open,
	.list = onnx_list,
	.lookup = onnx_lookup,
	.would_block = onnx_would_block,
	.source = onnx_source,
	.meta = onnx_meta,
	.client_paths = onnx_client_paths,
	.close = onnx_close,
};
