/* cmd_search.c: omnihub search: models by name, from the Hugging Face
 * Hub's search and from the local indexes (the catalogs' names and meta,
 * the ONNX zoo's index), each printed as its path under the mount. Not
 * for: how a hub searches (hub_ops.search, hub_hf.c), or listing a folder
 * (cmd_ls.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_parse.h"
#include "cmd_out.h"
#include "core.h"

#define SEARCH_LIMIT_DEFAULT 20u
#define SEARCH_LIMIT_MAX 1000u
/* Deep enough for any catalog's models (tfhub/<publisher>/<model>/<version>). */
#define SEARCH_DEPTH_MAX 8u
/* The datasets' hub, searched only when asked for (--datasets, --hub). */
#define SEARCH_DATASETS_HUB "huggingface-datasets"

struct search_run {
	struct cmd_ctx *ctx;
	const char *query;
	unsigned limit;      /* results of each hub at most */
	struct hub *hub;     /* the hub searched now */
	unsigned found;      /* of this hub */
	char last[PATH_MAX]; /* this hub's last result ("" none): what is below
				it is that result already */
	cJSON *results;      /* --json; in the document's tree */
	unsigned total;
};

/* One result: its path under the mount on a line, or a JSON object. */
static int add_result(struct search_run *run, const char *path, const char *matched,
                      const char *file)
{
	char where[PATH_MAX];

	if (snprintf(where, sizeof(where), "%s/%s", run->hub->name, path) >= (int)sizeof(where))
		return 0;
	snprintf(run->last, sizeof(run->last), "%s", path);
	run->found++;
	run->total++;
	if (run->ctx->json) {
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "path", where);
		cJSON_AddStringToObject(item, "hub", run->hub->name);
		cJSON_AddStringToObject(item, "matched", matched);
		if (file)
			cJSON_AddStringToObject(item, "file", file);
		cJSON_AddItemToArray(run->results, item);
	} else {
		fprintf(run->ctx->out, "%s\n", where);
	}
	return 0;
}

/* hub_ops.search's callback: a name the hub found. */
static int add_found(void *ctx, const char *path)
{
	return add_result(ctx, path, "hub search", NULL);
}

/* Whether path is the last result or below it. */
static bool covered(const struct search_run *run, const char *path)
{
	size_t len = strlen(run->last);

	return len && strncmp(path, run->last, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* A directory of a hub whose index lists everything, searched in memory:
 * a folder whose path matches is a result; a file whose path or meta
 * matches makes its folder one. A folder whose listing would make a
 * request (a size to learn) is left out. */
static int search_dir(struct search_run *run, const char *dir, unsigned depth)
{
	struct hub *hub = run->hub;
	struct entry_list list = {0};
	char path[PATH_MAX];
	int rc;

	if (depth > SEARCH_DEPTH_MAX || core_would_block(hub, dir, true))
		return 0;
	rc = hub->ops->list(hub, dir, &list);
	if (rc)
		goto out;
	for (size_t i = 0; i < list.count && run->found < run->limit; i++) {
		const struct entry *e = &list.items[i];
		char *meta = NULL;

		if (snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "", e->name) >=
		        (int)sizeof(path) ||
		    covered(run, path) || e->type == ENTRY_LINK)
			continue;
		if (e->type == ENTRY_DIR) {
			if (strcasestr(path, run->query))
				rc = add_result(run, path, "name", NULL);
			else
				rc = search_dir(run, path, depth + 1);
		} else if (strcasestr(path, run->query)) {
			rc = add_result(run, dir[0] ? dir : path, "name", e->name);
		} else if (!core_would_block(hub, path, false) && core_meta(hub, path, &meta) == 0 &&
		           strcasestr(meta, run->query)) {
			rc = add_result(run, dir[0] ? dir : path, "meta", e->name);
		}
		free(meta);
		if (rc)
			break;
	}
out:
	entry_list_free(&list);
	return rc;
}

/* A hub the catalogs make, searched in the catalogs themselves: a model
 * whose path, or an entry's name, file name or meta matches. Listing its
 * folders instead would ask (or, offline, complain of) every size a
 * catalog leaves out. */
static int search_catalog(struct search_run *run)
{
	const struct catalog_hub *hub = catalog_set_hub(run->hub->set, run->hub->name);
	int rc = 0;

	for (size_t m = 0; hub && m < hub->nmodels && run->found < run->limit && !rc; m++) {
		const struct catalog_model *model = &hub->models[m];
		const char *matched = NULL, *file = NULL;

		if (strcasestr(model->path, run->query))
			matched = "name";
		for (size_t e = 0; e < model->nentries && !matched; e++) {
			const struct catalog_entry *entry = &model->entries[e];
			if (strcasestr(entry->name, run->query) || strcasestr(entry->file, run->query))
				matched = "name";
			else if (entry->meta_json && strcasestr(entry->meta_json, run->query))
				matched = "meta";
			file = entry->file;
		}
		if (matched)
			rc = add_result(run, model->path, matched,
			                strcmp(matched, "name") == 0 && strcasestr(model->path, run->query)
			                    ? NULL
			                    : file);
	}
	return rc;
}

static const struct option search_longopts[] = {
    {"hub", required_argument, NULL, 'H'},
    {"limit", required_argument, NULL, 'n'},
    {"datasets", no_argument, NULL, 'd'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_search_opts = {"n:", search_longopts};

int cmd_search(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct search_run run = {.ctx = ctx, .limit = SEARCH_LIMIT_DEFAULT};
	const char *only = NULL;
	bool datasets = false, offline_skipped = false, any = false;
	struct core *core;
	cJSON *doc = NULL;
	char why[1024], hint[CMD_HINT_MAX], skipped_hint[CMD_HINT_MAX] = "", *end;
	unsigned long value;
	int c, status = CMD_EXIT_OK;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_search_opts)) != -1) {
		switch (c) {
		case 'H':
			only = optarg;
			break;
		case 'n':
			errno = 0;
			value = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-' || value < 1 ||
			    value > SEARCH_LIMIT_MAX) {
				status = cmd_usage_error(ctx, argv[0], "--limit: '%s' is not 1 to %u",
				                         optarg, SEARCH_LIMIT_MAX);
				goto out;
			}
			run.limit = (unsigned)value;
			break;
		case 'd':
			datasets = true;
			break;
		default:
			status = CMD_EXIT_USAGE;
			goto out;
		}
	}
	if (optind + 1 != argc || !argv[optind][0]) {
		status = cmd_usage_error(ctx, argv[0], "search for what? (give one QUERY)");
		goto out;
	}
	run.query = argv[optind];
	core = cmd_core(ctx);
	if (!core) {
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (ctx->json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "query", run.query);
		run.results = cJSON_AddArrayToObject(doc, "results");
	}
	for (size_t i = 0; i < core_hub_count(core); i++) {
		const char *name = core_hub_name(core, i);
		struct hub *hub;
		int rc;

		if (only ? strcmp(name, only) != 0
		         : strcmp(name, SEARCH_DATASETS_HUB) == 0 && !datasets)
			continue;
		any = true;
		if (core_hub(core, name, &hub, why, sizeof(why)) != 0) {
			/* One hub without its index takes nothing from the others';
			 * the hub asked for by name is a failure. */
			cmd_offline_hint(ctx, name, false, hint, sizeof(hint));
			cmd_error(ctx, name, "left out: %s%s%s%s", why, hint[0] ? " (" : "", hint,
			          hint[0] ? ")" : "");
			if (only)
				status = CMD_EXIT_FAILED;
			continue;
		}
		run.hub = hub;
		run.found = 0;
		run.last[0] = '\0';
		if (hub->ops->search && hub->offline) {
			offline_skipped = true;
			cmd_offline_hint(ctx, name, false, skipped_hint, sizeof(skipped_hint));
			continue;
		}
		if (hub->ops->search)
			rc = hub->ops->search(hub, run.query, run.limit, add_found, &run);
		else if ((hub->ops->flags & HUB_FROM_CATALOGS) && hub->set)
			rc = search_catalog(&run);
		else if (hub->ops->flags & HUB_LISTS_ALL)
			rc = search_dir(&run, "", 0);
		else
			rc = 0; /* nothing to search it by */
		if (rc) {
			cmd_error(ctx, name, "search failed: %s", strerror(-rc));
			status = CMD_EXIT_FAILED;
		}
	}
	if (only && !any) {
		cmd_error(ctx, only, "no such hub (omnihub ls lists the hubs)");
		status = CMD_EXIT_NOT_FOUND;
		goto out;
	}
	if (offline_skipped)
		cmd_error(ctx, argv[0], "offline: only the local indexes were searched (the "
		          "catalogs, the ONNX zoo's index); the Hugging Face Hub was not asked%s%s%s",
		          skipped_hint[0] ? " (" : "", skipped_hint, skipped_hint[0] ? ")" : "");
	if (run.total == 0 && !ctx->json)
		cmd_error(ctx, argv[0], "nothing matches '%s'", run.query);
	if (ctx->json) {
		cJSON_AddBoolToObject(doc, "offline_only_local", offline_skipped);
		if (cmd_print_json(ctx, doc) != CMD_EXIT_OK && status == CMD_EXIT_OK)
			status = CMD_EXIT_FAILED;
		doc = NULL;
	}
out:
	cJSON_Delete(doc);
	return status;
}

const char cmd_search_help[] =
    "Finds models whose name holds QUERY (any case): the Hugging Face\n"
    "Hub's own search (/api/models?search=QUERY, with the token), and the\n"
    "local indexes: the catalogs' models (their names and meta) and the\n"
    "ONNX zoo's index. Prints each as its path under the mount, one a\n"
    "line, hub by hub (omnihub pull takes it). Offline, only the local\n"
    "indexes are searched, and it says so. Never downloads a model file.\n"
    "\n"
    "    --hub HUB              search only that hub (huggingface, onnx,\n"
    "                           torchvision, ...)\n"
    "    -n, --limit N          at most N results of each hub (default 20)\n"
    "    --datasets             the Hub's datasets too\n"
    "                           (huggingface-datasets/...)\n";
