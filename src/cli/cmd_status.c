/* cmd_status.c: omnihub status: each mount's hubs (up, retried, offline,
 * disabled) and downloads, read from its .omnihub/status. Not for: making
 * that text (status.c) or the hubs' states (hub_state.c, core.c). */
#include "build_config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachefs.h"
#include "cmd_out.h"
#include "status.h"

/* The fstype main.c mounts with (subtype=omnihub). */

struct mounts {
	char **paths; /* owned, each owned */
	size_t count;
};

static void mounts_free(struct mounts *m)
{
	for (size_t i = 0; i < m->count; i++)
		free(m->paths[i]);
	free(m->paths);
}

static int mounts_add(struct mounts *m, const char *path)
{
	char **grown;

	/* A mount seen twice (a bind, another namespace's propagation) is one. */
	for (size_t i = 0; i < m->count; i++)
		if (strcmp(m->paths[i], path) == 0)
			return 0;
	grown = realloc(m->paths, (m->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	m->paths = grown;
	m->paths[m->count] = strdup(path);
	if (!m->paths[m->count])
		return -ENOMEM;
	m->count++;
	return 0;
}

static int add_omnihub_mount(void *ctx, const struct cachefs_mount *mount)
{
	return cachefs_type_is_omnihub(mount->fstype) ? mounts_add(ctx, mount->point) : 0;
}

/* Every omnihub-fuse mount of this mount namespace. */
static int find_mounts(struct mounts *m)
{
	char *mountinfo = NULL;
	int rc = cachefs_read_mountinfo(&mountinfo);

	if (rc == 0)
		rc = cachefs_mounts_each(mountinfo, add_omnihub_mount, m);
	free(mountinfo);
	return rc;
}

static int read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t size = 0, n;
	char buf[4096];
	FILE *mem;
	int rc = 0;

	*out = NULL;
	if (!f)
		return -errno;
	mem = open_memstream(&text, &size);
	if (!mem) {
		fclose(f);
		return -ENOMEM;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	if (ferror(f))
		rc = -EIO;
	fclose(f);
	if (fclose(mem) != 0)
		rc = -ENOMEM;
	if (rc)
		free(text);
	else
		*out = text;
	return rc;
}

/* The hub lines of a status text (status.h: STATUS_HUB_HEADER's table) as
 * JSON objects added to hubs. */
static void hubs_json(const char *text, cJSON *hubs)
{
	const char *line = text;
	bool in_table = false;

	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		size_t len = strcspn(line, "\n");
		char copy[1024], name[256], state[32], since[32], next[32];
		unsigned tries;
		int used = 0;

		if (len >= sizeof(copy))
			continue;
		memcpy(copy, line, len);
		copy[len] = '\0';
		if (!in_table) {
			in_table = strncmp(copy, STATUS_HUB_HEADER " ", strlen(STATUS_HUB_HEADER) + 1) == 0;
			continue;
		}
		if (strncmp(copy, "STATE ", 6) == 0)
			break; /* the transfers' header */
		if (sscanf(copy, "%255s %31s %31s %31s %u %n", name, state, since, next, &tries,
			   &used) < 5 || !used)
			continue;
		cJSON *hub = cJSON_CreateObject();
		if (!hub)
			return;
		cJSON_AddStringToObject(hub, "name", name);
		cJSON_AddStringToObject(hub, "state", state);
		if (strcmp(since, "-") == 0)
			cJSON_AddNullToObject(hub, "since");
		else
			cJSON_AddStringToObject(hub, "since", since);
		if (strcmp(next, "-") == 0)
			cJSON_AddNullToObject(hub, "next_try");
		else
			cJSON_AddStringToObject(hub, "next_try", next);
		cJSON_AddNumberToObject(hub, "tries", tries);
		if (strcmp(copy + used, "-") == 0)
			cJSON_AddNullToObject(hub, "last_error");
		else
			cJSON_AddStringToObject(hub, "last_error", copy + used);
		cJSON_AddItemToArray(hubs, hub);
	}
}

int cmd_find_mounts(char ***paths, size_t *count)
{
	struct mounts m = {0};
	int rc = find_mounts(&m);

	if (rc) {
		mounts_free(&m);
		m = (struct mounts){0};
	}
	*paths = m.paths;
	*count = m.count;
	return rc;
}

static const struct option status_longopts[] = {
    {"json", no_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_status_opts = {"", status_longopts};

int cmd_status(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct mounts mounts = {0};
	cJSON *doc = NULL, *list = NULL;
	int c, rc, status = CMD_EXIT_OK;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_status_opts)) != -1) {
		if (c != 'j')
			return CMD_EXIT_USAGE;
		ctx->json = true;
	}
	if (argc - optind > 1)
		return cmd_usage_error(ctx, argv[0], "takes at most one mount point (%d given)",
				       argc - optind);
	rc = argc - optind == 1 ? mounts_add(&mounts, argv[optind]) : find_mounts(&mounts);
	if (rc) {
		cmd_error(ctx, "/proc/self/mountinfo", "%s", strerror(-rc));
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (mounts.count == 0) {
		cmd_error(ctx, argv[0], "no omnihub-fuse mount (give its mount point)");
		status = CMD_EXIT_FAILED;
		goto out;
	}
	if (ctx->json) {
		doc = cJSON_CreateObject();
		list = doc ? cJSON_AddArrayToObject(doc, "mounts") : NULL;
		if (!list) {
			status = CMD_EXIT_FAILED;
			goto out;
		}
	}
	for (size_t i = 0; i < mounts.count; i++) {
		char path[PATH_MAX], *text = NULL;

		snprintf(path, sizeof(path), "%s/" STATUS_DIR "/status", mounts.paths[i]);
		rc = read_text(path, &text);
		if (rc == -ENOTCONN) {
			/* Its daemon is gone; the kernel keeps the mount until told. */
			cmd_error(ctx, mounts.paths[i],
			          "%s: its omnihub-fuse has stopped (fusermount3 -u %s, then mount "
			          "it again)",
			          strerror(-rc), mounts.paths[i]);
		} else if (rc == -ENOENT || rc == -ENOTDIR) {
			cmd_error(ctx, mounts.paths[i],
			          "not an omnihub-fuse mount (omnihub status without one shows "
			          "every mount)");
		} else if (rc) {
			cmd_error(ctx, path, "%s", strerror(-rc));
		}
		if (rc) {
			status = CMD_EXIT_FAILED;
			continue;
		}
		if (ctx->json) {
			cJSON *one = cJSON_CreateObject(), *hubs;
			if (one) {
				cJSON_AddStringToObject(one, "mountpoint", mounts.paths[i]);
				hubs = cJSON_AddArrayToObject(one, "hubs");
				if (hubs)
					hubs_json(text, hubs);
				cJSON_AddStringToObject(one, "status", text);
				cJSON_AddItemToArray(list, one);
			}
		} else {
			fprintf(ctx->out, "%s%s:\n%s", i ? "\n" : "", mounts.paths[i], text);
		}
		free(text);
	}
	if (ctx->json && cmd_print_json(ctx, doc) != 0) /* it frees doc */
		status = CMD_EXIT_FAILED;
	doc = NULL;
out:
	cJSON_Delete(doc);
	mounts_free(&mounts);
	return status;
}
