/* cmd_walk.c: the files a path given to an omnihub subcommand names: the
 * file itself, or every file below a directory, through the hub's index.
 * Not for: what is done with each (the subcommands). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_out.h"
#include "cmd_walk.h"
#include "config.h"
#include "core.h"

/* Deep enough for any hub's tree, and an end to a loop in a broken one. */
#define WALK_DEPTH_MAX 64

const char *cmd_entry_type(enum entry_type type)
{
	switch (type) {
	case ENTRY_DIR:
		return "dir";
	case ENTRY_FILE:
		return "file";
	case ENTRY_ARCHIVE:
		return "archive";
	case ENTRY_LINK:
		return "link";
	}
	return "unknown";
}

/* Whether core has a hub named as path's first component. */
static bool names_a_hub(struct core *core, const char *path)
{
	size_t len = strcspn(path, "/");
	bool found = false;

	for (size_t i = 0; i < core_hub_count(core) && !found; i++)
		found = strlen(core_hub_name(core, i)) == len &&
		        strncmp(core_hub_name(core, i), path, len) == 0;
	return found;
}

/* Whether why (core_resolve's "HUB hub: what") is a refusal of a setting
 * that config_locate_refusal can say the place of. */
static bool refusal_located(const struct cmd_ctx *ctx, const char *hub, const char *why)
{
	char prefix[300], located[2048];
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "%s hub: ", hub);

	if (n < sizeof(prefix) && strncmp(why, prefix, n) == 0)
		why += n;
	return config_locate_refusal(ctx->cfg, why, located, sizeof(located)) == 0;
}

int cmd_resolve(struct cmd_ctx *ctx, const char *arg, char *buf, size_t buf_size, struct hub **hub,
                const char **path)
{
	struct core *core = cmd_core(ctx);
	char why[1024], hint[CMD_HINT_MAX] = "", name[256];
	int rc;

	*hub = NULL;
	*path = NULL;
	if (!core)
		return -EIO;
	rc = cmd_clean_path(arg, buf, buf_size);
	if (rc == 0 && buf[0] == '\0')
		rc = -ENOENT;
	if (rc == -ENOENT) {
		cmd_error(ctx, arg, "names no hub (a path is HUB/MODEL/FILE, as in onnx/resnet18: "
		                    "omnihub ls lists the hubs)");
		return rc;
	}
	if (rc) {
		cmd_error(ctx, arg, "%s", strerror(-rc));
		return rc;
	}
	rc = core_resolve(core, buf, hub, path, why, sizeof(why));
	if (rc && !names_a_hub(core, buf)) {
		snprintf(hint, sizeof(hint), "omnihub ls lists the hubs");
	} else if (rc) {
		/* The hub is there but did not open: its settings refused (said
		 * once, where they were set, as the command ends: omnihub.c's
		 * refused_settings), or offline without its index, or its index
		 * could not be had. */
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(buf, "/"), buf);
		if (refusal_located(ctx, name, why))
			return rc;
		cmd_offline_hint(ctx, name, true, hint, sizeof(hint));
	}
	if (rc)
		cmd_error(ctx, arg, "%s%s%s%s", why, hint[0] ? " (" : "", hint, hint[0] ? ")" : "");
	return rc;
}

int cmd_lookup(struct cmd_ctx *ctx, const char *arg, struct hub *hub, const char *path,
               struct entry *entry)
{
	char parent[PATH_MAX], hint[CMD_HINT_MAX];
	struct entry up;
	char *slash;
	int rc = hub->ops->lookup(hub, path, entry);

	if (rc == -ENOENT && snprintf(parent, sizeof(parent), "%s", path) < (int)sizeof(parent)) {
		/* The nearest directory above it that is there: what to list to
		 * see the names it has (the hub's root always is). */
		for (unsigned depth = 0; depth < WALK_DEPTH_MAX; depth++) {
			slash = strrchr(parent, '/');
			if (!slash) {
				parent[0] = '\0';
				break;
			}
			*slash = '\0';
			if (hub->ops->lookup(hub, parent, &up) == 0 && up.type == ENTRY_DIR)
				break;
		}
		/* Offline, a hub that lists only what it has seen knows only the
		 * repositories cached. */
		cmd_offline_hint(ctx, hub->name, true, hint, sizeof(hint));
		if ((hub->ops->flags & HUB_LISTS_ALL) || strchr(parent, '/')) {
			cmd_error(ctx, arg, "%s (omnihub ls %s%s%s lists what there is)",
			          strerror(-rc), hub->name, parent[0] ? "/" : "", parent);
		} else if (hint[0]) {
			cmd_error(ctx, arg, "%s (%s)", strerror(-rc), hint);
		} else {
			/* Above its repositories (ORG/NAME), such a hub lists only
			 * the names it has seen; its search asks for the rest. */
			const char *word = strchr(path, '/') ? strchr(path, '/') + 1 : path;
			cmd_error(ctx, arg, "%s (omnihub search --hub %s %.*s searches for it)",
			          strerror(-rc), hub->name, (int)strcspn(word, "/"), word);
		}
	} else if (rc) {
		cmd_error(ctx, arg, "%s", strerror(-rc));
	}
	return rc;
}

static int walk_dir(struct cmd_ctx *ctx, struct hub *hub, const char *dir, unsigned depth,
                    cmd_walk_fn fn, void *fn_arg)
{
	struct entry_list list = {0};
	char path[PATH_MAX], label[PATH_MAX];
	int rc, first = 0;

	snprintf(label, sizeof(label), "%s%s%s", hub->name, dir[0] ? "/" : "", dir);
	if (depth > WALK_DEPTH_MAX) {
		cmd_error(ctx, label, "too deep: left out");
		return -ELOOP;
	}
	rc = hub->ops->list(hub, dir, &list);
	if (rc) {
		cmd_error(ctx, label, "cannot list: %s", strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < list.count; i++) {
		const struct entry *e = &list.items[i];

		if (snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "", e->name) >=
		        (int)sizeof(path) ||
		    snprintf(label, sizeof(label), "%s/%s", hub->name, path) >= (int)sizeof(label))
			continue;
		if (e->type == ENTRY_DIR)
			rc = walk_dir(ctx, hub, path, depth + 1, fn, fn_arg);
		else if (e->type == ENTRY_LINK)
			rc = 0;
		else
			rc = fn(fn_arg, hub, path, label, e);
		if (rc && !first)
			first = rc;
	}
	entry_list_free(&list);
	return first;
}

int cmd_walk(struct cmd_ctx *ctx, const char *arg, cmd_walk_fn fn, void *fn_arg)
{
	char buf[PATH_MAX], label[PATH_MAX];
	struct entry entry;
	struct hub *hub;
	const char *path;
	int rc;

	rc = cmd_resolve(ctx, arg, buf, sizeof(buf), &hub, &path);
	if (rc)
		return rc;
	if (path[0] == '\0')
		return walk_dir(ctx, hub, "", 0, fn, fn_arg);
	rc = cmd_lookup(ctx, arg, hub, path, &entry);
	if (rc)
		return rc;
	if (entry.type == ENTRY_DIR)
		return walk_dir(ctx, hub, path, 0, fn, fn_arg);
	if (entry.type == ENTRY_LINK) {
		char target[NAME_MAX + 1];
		/* A link names a file in its directory: follow it once. */
		const char *slash = strrchr(path, '/');
		if (!hub->ops->readlink || hub->ops->readlink(hub, path, target, sizeof(target)) ||
		    strcmp(target, slash ? slash + 1 : path) == 0) {
			cmd_error(ctx, arg, "a link that leads nowhere");
			return -ENOENT;
		}
		snprintf(label, sizeof(label), "%s/%.*s%s", hub->name,
		         slash ? (int)(slash - path + 1) : 0, path, target);
		return cmd_walk(ctx, label, fn, fn_arg);
	}
	snprintf(label, sizeof(label), "%s/%s", hub->name, path);
	return fn(fn_arg, hub, path, label, &entry);
}
