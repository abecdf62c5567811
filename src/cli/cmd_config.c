/* cmd_config.c: `omnihub config` (the effective settings, and where each
 * came from) and `omnihub where` (the cache directory). Not for: reading
 * the settings (config.c), or the network (where --json opens the core
 * only to name the catalogs' hubs). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cmd.h"
#include "cmd_out.h"
#include "config.h"
#include "core.h"
#include "hf_token.h"
#include "hub.h"

/* Longer values are not padded: one long URL would push every comment far
 * to the right. */
#define VALUE_COLUMN_MAX 40

struct line {
	char *key;    /* owned; "cache", "[onnx] offline" */
	char *value;  /* owned; "" for none */
	char *origin; /* owned */
	char *hub;    /* owned; NULL for a general setting or a hub option */
	bool has_value;
};

struct lines {
	struct line *items; /* owned */
	size_t count;
	bool failed; /* out of memory while collecting */
};

static void collect(void *ctx, const char *hub, const char *key, const char *value,
                    const char *origin)
{
	struct lines *lines = ctx;
	struct line *grown, *l;

	if (lines->failed)
		return;
	grown = realloc(lines->items, (lines->count + 1) * sizeof(*grown));
	if (!grown) {
		lines->failed = true;
		return;
	}
	lines->items = grown;
	l = &grown[lines->count];
	memset(l, 0, sizeof(*l));
	if (hub ? asprintf(&l->key, "[%s] %s", hub, key) < 0 : !(l->key = strdup(key)))
		l->key = NULL;
	l->value = strdup(value ? value : "");
	l->origin = strdup(origin);
	l->hub = hub ? strdup(hub) : NULL;
	l->has_value = value != NULL;
	if (!l->key || !l->value || !l->origin || (hub && !l->hub)) {
		free(l->key);
		free(l->value);
		free(l->origin);
		free(l->hub);
		lines->failed = true;
		return;
	}
	lines->count++;
}

static void lines_free(struct lines *lines)
{
	for (size_t i = 0; i < lines->count; i++) {
		free(lines->items[i].key);
		free(lines->items[i].value);
		free(lines->items[i].origin);
		free(lines->items[i].hub);
	}
	free(lines->items);
}

/* Usage errors of the subcommands that take no arguments. */
static int no_arguments(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc <= 1)
		return CMD_EXIT_OK;
	return cmd_usage_error(ctx, argv[0], "takes no arguments ('%s' given)", argv[1]);
}

static cJSON *json_string_or_null(const char *text)
{
	return text ? cJSON_CreateString(text) : cJSON_CreateNull();
}

/* Where the Hugging Face token comes from, or why there is none (never
 * the token): "with the token from $HF_TOKEN"; *found says which. */
static int token_source(const struct config *cfg, char *out, size_t out_size, bool *found)
{
	struct hf_token token;
	char why[512], *header = NULL;
	int rc = hf_token_open(&token, cfg, why, sizeof(why));

	*found = false;
	if (rc) {
		snprintf(out, out_size, "%s", why);
		return 0;
	}
	rc = hf_token_header(&token, &header, NULL);
	if (rc == 0) {
		*found = header != NULL;
		hf_token_describe(&token, out, out_size);
	}
	hf_token_free_header(header);
	hf_token_close(&token);
	return rc;
}

static int config_json(struct cmd_ctx *ctx, const struct lines *lines)
{
	const struct config *cfg = ctx->cfg;
	cJSON *doc = cJSON_CreateObject(), *settings = cJSON_CreateArray(),
	      *files = cJSON_CreateObject();
	bool ok = doc && settings && files;

	if (ok) {
		cJSON_AddItemToObject(doc, "settings", settings);
		cJSON_AddItemToObject(doc, "files", files);
		settings = files = NULL; /* doc owns them now */
	}
	for (size_t i = 0; ok && i < lines->count; i++) {
		const struct line *l = &lines->items[i];
		cJSON *item = cJSON_CreateObject();
		/* The key without its "[hub] ": the hub has its own field. */
		const char *key = l->hub ? l->key + strlen(l->hub) + 3 : l->key;
		ok = item && cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "settings"), item);
		if (!ok) {
			cJSON_Delete(item);
			break;
		}
		ok = cJSON_AddItemToObject(item, "hub", json_string_or_null(l->hub)) &&
		     cJSON_AddStringToObject(item, "key", key) &&
		     cJSON_AddItemToObject(item, "value",
		                           json_string_or_null(l->has_value ? l->value : NULL)) &&
		     cJSON_AddStringToObject(item, "origin", l->origin);
	}
	if (ok) {
		char token[1024];
		bool found;
		cJSON *t = cJSON_AddObjectToObject(doc, "huggingface_token");
		ok = t && token_source(cfg, token, sizeof(token), &found) == 0 &&
		     cJSON_AddBoolToObject(t, "found", found) &&
		     cJSON_AddStringToObject(t, "source", token);
	}
	if (ok) {
		cJSON *f = cJSON_GetObjectItem(doc, "files");
		ok = cJSON_AddItemToObject(f, "user", json_string_or_null(cfg->user_file)) &&
		     cJSON_AddItemToObject(f, "system", json_string_or_null(cfg->system_file)) &&
		     cJSON_AddBoolToObject(f, "user_found", cfg->user_file_found) &&
		     cJSON_AddBoolToObject(f, "system_found", cfg->system_file_found);
	}
	cJSON_Delete(settings);
	cJSON_Delete(files);
	if (!ok) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	return cmd_print_json(ctx, doc);
}

static void print_file(struct cmd_ctx *ctx, const char *which, const char *path, bool found)
{
	if (path)
		fprintf(ctx->out, "# %s file: %s%s\n", which, path, found ? "" : " (not found)");
	else
		fprintf(ctx->out, "# %s file: none ($HOME is not set)\n", which);
}

int cmd_config(struct cmd_ctx *ctx, int argc, char **argv)
{
	const struct config *cfg = ctx->cfg;
	struct lines lines = {0};
	char token[1024];
	bool found;
	int key_width = 0, value_width = 0, rc;

	rc = no_arguments(ctx, argc, argv);
	if (rc != CMD_EXIT_OK)
		return rc;
	config_describe(cfg, collect, &lines);
	if (lines.failed) {
		fprintf(stderr, "%s: out of memory\n", ctx->program);
		lines_free(&lines);
		return CMD_EXIT_FAILED;
	}
	if (ctx->json) {
		rc = config_json(ctx, &lines);
		lines_free(&lines);
		return rc;
	}
	for (size_t i = 0; i < lines.count; i++) {
		int k = (int)strlen(lines.items[i].key), v = (int)strlen(lines.items[i].value);
		key_width = k > key_width ? k : key_width;
		if (v <= VALUE_COLUMN_MAX && v > value_width)
			value_width = v;
	}
	print_file(ctx, "user", cfg->user_file, cfg->user_file_found);
	print_file(ctx, "system", cfg->system_file, cfg->system_file_found);
	if (token_source(cfg, token, sizeof(token), &found) != 0) {
		fprintf(stderr, "%s: out of memory\n", ctx->program);
		lines_free(&lines);
		return CMD_EXIT_FAILED;
	}
	fprintf(ctx->out, "# huggingface token: %s%s\n", token,
	        found ? " (omnihub whoami says whose)" : "");
	for (size_t i = 0; i < lines.count; i++)
		fprintf(ctx->out, "%-*s = %-*s  # %s\n", key_width, lines.items[i].key, value_width,
		        lines.items[i].value, lines.items[i].origin);
	lines_free(&lines);
	return fflush(ctx->out) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAILED;
}

/* Collects config_check's sentences. */
struct problems {
	cJSON *list; /* owned by the caller's document, or NULL for text */
	FILE *out;
	bool failed;
};

static void problem(void *ctx, const char *sentence)
{
	struct problems *p = ctx;

	if (p->list)
		p->failed |= !cJSON_AddItemToArray(p->list, cJSON_CreateString(sentence));
	else
		p->failed |= fprintf(p->out, "%s\n", sentence) < 0;
}

/* What the hubs check themselves, once the settings resolve: the catalogs'
 * load (catalogs, converters) and each hub's check (hf_repos' ids, the
 * endpoint), each refusal said where its option was set. Local files
 * only: nothing is opened or asked. Returns the number of problems, or
 * -ENOMEM. */
static int check_hubs(const struct config_options *opts, config_problem_fn fn, void *ctx)
{
	struct config cfg = { 0 };
	char why[1024], located[2048], last[2048] = "";
	const char *resolve_why = NULL;
	int count = 0;

	if (config_resolve(&cfg, opts, &resolve_why) != 0)
		goto out; /* config_check has said why */
	for (size_t i = 0; i < hub_registry_count; i++) {
		const struct hub_ops *ops = hub_registry[i];
		void *set = NULL;
		int rc = 0;

		why[0] = '\0';
		if (ops->load) {
			rc = ops->load(&cfg, &set, why, sizeof(why));
			if (rc == 0)
				ops->unload(set);
		}
		if (rc == 0 && ops->check)
			rc = ops->check(&cfg, why, sizeof(why));
		if (rc == -ENOMEM) {
			count = -ENOMEM;
			break;
		}
		if (rc == 0)
			continue;
		if (config_locate_refusal(&cfg, why, located, sizeof(located)) != 0)
			snprintf(located, sizeof(located), "%s hub: %s", ops->name, why);
		/* Two hubs of one option (models and datasets) say it once. */
		if (strcmp(located, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", located);
		fn(ctx, located);
		count++;
	}
out:
	config_free(&cfg);
	return count;
}

int cmd_config_check(struct cmd_ctx *ctx, const struct config_options *opts)
{
	struct problems p = {.out = ctx->out};
	cJSON *doc = NULL;
	int count, rc = CMD_EXIT_FAILED;

	if (ctx->json) {
		doc = cJSON_CreateObject();
		p.list = doc ? cJSON_AddArrayToObject(doc, "problems") : NULL;
		if (!p.list)
			goto out;
	}
	count = config_check(opts, problem, &p);
	if (count == 0)
		count = check_hubs(opts, problem, &p);
	if (count < 0 || p.failed)
		goto out;
	if (doc) {
		rc = cmd_print_json(ctx, doc);
		doc = NULL; /* printed and freed */
	} else if (count) {
		fprintf(ctx->out, "%d problem%s\n", count, count == 1 ? "" : "s");
		rc = CMD_EXIT_OK;
	} else {
		fprintf(ctx->out, "no problem found\n");
		rc = CMD_EXIT_OK;
	}
	if (rc == CMD_EXIT_OK && count)
		rc = CMD_EXIT_USAGE;
out:
	if (rc == CMD_EXIT_FAILED)
		fprintf(stderr, "%s: out of memory\n", ctx->program);
	cJSON_Delete(doc);
	return fflush(ctx->out) == 0 ? rc : CMD_EXIT_FAILED;
}

int cmd_where(struct cmd_ctx *ctx, int argc, char **argv)
{
	int rc = no_arguments(ctx, argc, argv);

	if (rc != CMD_EXIT_OK)
		return rc;
	if (ctx->json) {
		const struct config *cfg = ctx->cfg;
		cJSON *doc = cJSON_CreateObject(), *hubs = NULL;
		bool ok = doc && cJSON_AddStringToObject(doc, "cache", cfg->cache_dir) &&
			  (hubs = cJSON_AddObjectToObject(doc, "hubs")) != NULL;
		/* Every hub, as ls lists them (the catalogs' too: they are
		 * read, nothing is fetched), and each one a [section] gives a
		 * directory of its own. */
		struct core *core = ok ? cmd_core(ctx) : NULL;
		if (ok && !core) {
			cJSON_Delete(doc);
			return CMD_EXIT_FAILED; /* cmd_core said why */
		}
		for (size_t i = 0; ok && i < core_hub_count(core); i++) {
			const char *name = core_hub_name(core, i);
			ok = cJSON_AddStringToObject(hubs, name, config_hub_cache(cfg, name)) != NULL;
		}
		for (size_t i = 0; ok && i < cfg->nhub_settings; i++) {
			const char *hub = cfg->hub_settings[i].hub;
			if (strcmp(cfg->hub_settings[i].name, "cache") == 0 &&
			    !cJSON_HasObjectItem(hubs, hub))
				ok = cJSON_AddStringToObject(hubs, hub, config_hub_cache(cfg, hub)) !=
				     NULL;
		}
		if (!ok) {
			cJSON_Delete(doc);
			doc = NULL;
		}
		return cmd_print_json(ctx, doc);
	}
	fprintf(ctx->out, "%s\n", ctx->cfg->cache_dir);
	return fflush(ctx->out) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAILED;
}
