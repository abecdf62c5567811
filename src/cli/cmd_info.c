/* cmd_info.c: omnihub info: one file's URL, digest, size, metadata, and
 * whether and where it is cached. Not for: listing (cmd_ls.c) or fetching
 * (cmd_pull.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
#include "cmd_walk.h"
#include "core.h"

static const struct option info_longopts[] = {{NULL, 0, NULL, 0}};
const struct cmd_opts cmd_info_opts = {"", info_longopts};

int cmd_info(struct cmd_ctx *ctx, int argc, char **argv)
{
	char buf[PATH_MAX], digest[DIGEST_HEX_MAX + 32], size[CMD_SIZE_TEXT_MAX];
	char *url = NULL, *meta = NULL, *where = NULL;
	bool file, present = false;
	struct entry entry;
	struct hub *hub;
	const char *path;
	cJSON *doc = NULL, *meta_json = NULL;
	int c, rc, status = CMD_EXIT_FAILED;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_info_opts)) != -1)
		return CMD_EXIT_USAGE;
	if (argc - optind != 1)
		return cmd_usage_error(ctx, argv[0], "takes one path (%d given)", argc - optind);
	rc = cmd_resolve(ctx, argv[optind], buf, sizeof(buf), &hub, &path);
	if (rc)
		return cmd_exit_of(rc);
	memset(&entry, 0, sizeof(entry));
	entry.type = ENTRY_DIR;
	if (path[0] && (rc = cmd_lookup(ctx, argv[optind], hub, path, &entry)) != 0)
		return cmd_exit_of(rc);
	file = entry.type == ENTRY_FILE || entry.type == ENTRY_ARCHIVE;
	if (file) {
		digest_spec_format(&entry.digest, digest, sizeof(digest));
		rc = core_url(hub, path, &url);
		if (rc == 0)
			rc = core_meta(hub, path, &meta);
		if (rc == 0)
			rc = core_cached(cmd_core(ctx), hub, path, &present, &where);
		if (rc) {
			cmd_error(ctx, argv[optind], "%s", strerror(-rc));
			status = cmd_exit_of(rc);
			goto out;
		}
	} else if (path[0] && core_meta(hub, path, &meta) == 0 && strcmp(meta, "{}") == 0) {
		free(meta); /* a folder the hub says nothing of (a repo says its commit...) */
		meta = NULL;
	}
	if (ctx->json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "path", buf);
		cJSON_AddStringToObject(doc, "hub", hub->name);
		cJSON_AddStringToObject(doc, "type", cmd_entry_type(entry.type));
		if (file) {
			cJSON_AddItemToObject(doc, "size", cmd_json_u64(entry.size));
			cJSON_AddStringToObject(doc, "digest", digest);
			cJSON_AddStringToObject(doc, "url", url);
			cJSON_AddBoolToObject(doc, "cached", present);
			cJSON_AddItemToObject(
			    doc, "where", where ? cJSON_CreateString(where) : cJSON_CreateNull());
			meta_json = cJSON_Parse(meta);
			cJSON_AddItemToObject(doc, "meta",
			                      meta_json ? meta_json : cJSON_CreateObject());
		} else if (meta && (meta_json = cJSON_Parse(meta)) != NULL) {
			cJSON_AddItemToObject(doc, "meta", meta_json);
		}
		status = cmd_print_json(ctx, doc);
		goto out;
	}
	fprintf(ctx->out, "path    %s\n", buf);
	fprintf(ctx->out, "type    %s\n", cmd_entry_type(entry.type));
	if (file) {
		cmd_size_text(entry.size, size, sizeof(size));
		fprintf(ctx->out, "size    %s (%" PRIu64 " bytes)\n", size, entry.size);
		fprintf(ctx->out, "digest  %s\n", digest);
		fprintf(ctx->out, "url     %s\n", url);
		if (present)
			fprintf(ctx->out, "cached  yes, %s\n", where);
		else
			fprintf(ctx->out, "cached  no\n");
		fprintf(ctx->out, "meta    %s\n", meta);
	} else if (meta) {
		fprintf(ctx->out, "meta    %s\n", meta);
	}
	status = CMD_EXIT_OK;
out:
	free(url);
	free(meta);
	free(where);
	return status;
}
