/* cmd_ls.c: omnihub ls: the hubs, or what a hub's directory holds, with
 * sizes, digests and whether each file is cached. Not for: one file's
 * whole description (cmd_info.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
#include "cmd_walk.h"
#include "core.h"

struct ls_run {
	struct cmd_ctx *ctx;
	struct core *core;
	bool recursive;
	cJSON *entries; /* --json */
	size_t listed;  /* names in the folder asked for */
};

/* One line (or JSON object) for entry, whose path in the hub is path and
 * whose name as shown is shown. */
static void print_entry(struct ls_run *run, struct hub *hub, const char *path, const char *shown,
                        const struct entry *e)
{
	char digest[DIGEST_HEX_MAX + 32], size[CMD_SIZE_TEXT_MAX], target[NAME_MAX + 1] = "";
	bool file = e->type == ENTRY_FILE || e->type == ENTRY_ARCHIVE, present = false;
	const char *cached = "-";

	if (file) {
		digest_spec_format(&e->digest, digest, sizeof(digest));
		cached = core_cached(run->core, hub, path, &present, NULL) == 0 && present
		             ? "cached"
		             : "no";
	} else {
		snprintf(digest, sizeof(digest), "-");
	}
	if (e->type == ENTRY_LINK && hub->ops->readlink &&
	    hub->ops->readlink(hub, path, target, sizeof(target)) != 0)
		target[0] = '\0';
	if (run->ctx->json) {
		cJSON *item = cJSON_CreateObject();
		char full[PATH_MAX];
		snprintf(full, sizeof(full), "%s%s%s", hub->name, path[0] ? "/" : "", path);
		cJSON_AddStringToObject(item, "name", shown);
		cJSON_AddStringToObject(item, "path", full);
		cJSON_AddStringToObject(item, "type", cmd_entry_type(e->type));
		if (file) {
			cJSON_AddItemToObject(item, "size", cmd_json_u64(e->size));
			cJSON_AddStringToObject(item, "digest", digest);
			cJSON_AddBoolToObject(item, "cached", present);
		}
		if (e->type == ENTRY_LINK)
			cJSON_AddStringToObject(item, "target", target);
		cJSON_AddItemToArray(run->entries, item);
		return;
	}
	if (file)
		cmd_size_text(e->size, size, sizeof(size));
	else
		snprintf(size, sizeof(size), "-");
	/* The digest last: names line up, and a script can split at spaces. */
	fprintf(run->ctx->out, "%-7s %10s  %-6s  %s%s%s%s%s%s\n", cmd_entry_type(e->type), size,
	        cached, shown, e->type == ENTRY_DIR || e->type == ENTRY_ARCHIVE ? "/" : "",
	        target[0] ? " -> " : "", target, file ? "  " : "", file ? digest : "");
}

/* Lists dir (in hub); shown names are relative to base (a prefix of dir). */
static int list_dir(struct ls_run *run, struct hub *hub, const char *dir, size_t base,
                    unsigned depth)
{
	struct entry_list list = {0};
	char path[PATH_MAX];
	int rc, first = 0;

	rc = hub->ops->list(hub, dir, &list);
	if (rc) {
		snprintf(path, sizeof(path), "%s%s%s", hub->name, dir[0] ? "/" : "", dir);
		cmd_error(run->ctx, path, "%s", strerror(-rc));
		return rc;
	}
	if (depth == 0)
		run->listed = list.count;
	for (size_t i = 0; i < list.count; i++) {
		const struct entry *e = &list.items[i];
		const char *shown;

		if (snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "", e->name) >=
		    (int)sizeof(path))
			continue;
		shown = path + base + (base && path[base] == '/' ? 1 : 0);
		print_entry(run, hub, path, shown, e);
		if (run->recursive && e->type == ENTRY_DIR && depth < 64) {
			rc = list_dir(run, hub, path, base, depth + 1);
			if (rc && !first)
				first = rc;
		}
	}
	entry_list_free(&list);
	return first;
}

static int list_hubs(struct cmd_ctx *ctx)
{
	struct core *core = cmd_core(ctx);
	cJSON *doc = NULL, *hubs = NULL;

	if (!core)
		return CMD_EXIT_FAILED;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		hubs = cJSON_AddArrayToObject(doc, "hubs");
	}
	/* Names only: no hub opens, nothing is fetched. */
	for (size_t i = 0; i < core_hub_count(core); i++) {
		if (ctx->json) {
			cJSON *item = cJSON_CreateObject();
			cJSON_AddStringToObject(item, "name", core_hub_name(core, i));
			cJSON_AddItemToArray(hubs, item);
		} else {
			fprintf(ctx->out, "%s/\n", core_hub_name(core, i));
		}
	}
	return ctx->json ? cmd_print_json(ctx, doc) : CMD_EXIT_OK;
}

static const struct option ls_longopts[] = {
    {"recursive", no_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_ls_opts = {"r", ls_longopts};

int cmd_ls(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct ls_run run = {.ctx = ctx};
	char buf[PATH_MAX];
	struct entry entry;
	struct hub *hub;
	const char *path;
	cJSON *doc = NULL;
	int c, rc;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_ls_opts)) != -1) {
		if (c != 'r')
			return CMD_EXIT_USAGE;
		run.recursive = true;
	}
	if (argc - optind > 1)
		return cmd_usage_error(ctx, argv[0], "one path at most ('%s' and '%s' given)",
		                       argv[optind], argv[optind + 1]);
	if (optind == argc)
		return list_hubs(ctx);
	rc = cmd_resolve(ctx, argv[optind], buf, sizeof(buf), &hub, &path);
	if (rc)
		return cmd_exit_of(rc);
	run.core = cmd_core(ctx);
	if (path[0]) {
		rc = cmd_lookup(ctx, argv[optind], hub, path, &entry);
		if (rc)
			return cmd_exit_of(rc);
	} else {
		entry.type = ENTRY_DIR;
	}
	if (ctx->json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "path", buf);
		run.entries = cJSON_AddArrayToObject(doc, "entries");
	}
	if (entry.type == ENTRY_DIR) {
		rc = list_dir(&run, hub, path, strlen(path), 0);
		/* A hub that lists only the names it knows so far (the
		 * Hugging Face Hub's millions of repos) starts empty: say how
		 * to reach the others, on stderr, so the listing stays clean. */
		if (rc == 0 && !run.listed && !path[0] && !(hub->ops->flags & HUB_LISTS_ALL))
			fprintf(stderr,
			        "%s: %s lists only the names its settings give, the cache holds or "
			        "were looked up: name one (omnihub ls %s/NAME)%s%s%s\n",
			        ctx->program, hub->name, hub->name,
			        hub->ops->search ? ", or find one with omnihub search --hub " : "",
			        hub->ops->search ? hub->name : "", hub->ops->search ? " QUERY" : "");
	} else {
		const char *slash = strrchr(path, '/');
		print_entry(&run, hub, path, slash ? slash + 1 : path, &entry);
	}
	if (ctx->json) {
		if (cmd_print_json(ctx, doc) != CMD_EXIT_OK)
			return CMD_EXIT_FAILED;
	}
	return rc ? cmd_exit_of(rc) : CMD_EXIT_OK;
}
