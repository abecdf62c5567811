/* hub_views.c: <mount>/.clients/, each client's cache layout (torch.hub's
 * hub/checkpoints/, Keras's models/, onnx.hub's hub/, tensorflow_hub's
 * <sha1 of the handle>/, Deeplearning4j's models/<model>/, OmniHub's
 * <framework>/; huggingface_hub's in views_hf.c) made of relative
 * links into the hubs that serve the files, so a client reads the very
 * file its hub path serves: one blob, one download, one verification.
 * Not for: what a client names a file (each hub's client_paths) or serving
 * bytes (the hubs the links point into). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub_views.h"
#include "names.h"
#include "views_hf.h"

/* The folders each view has even when no hub fills it: a client makes
 * them (os.makedirs(..., exist_ok=True)) before it looks, and on a
 * read-only mount only an existing folder passes. */
static const char *const fixed_dirs[] = {
    "torch", "torch/hub", "torch/hub/checkpoints", "keras", "keras/models", "onnx", "onnx/hub",
    "tfhub", "huggingface", VIEWS_HF_DIR, "dl4j", "dl4j/models", "omnihub",
};

struct views_state {
	time_t opened; /* every name's mtime */
};

/* One question to every name of the views: what is at want, or under it. */
struct views_walk {
	struct hub *self;
	const char *want; /* a path of this hub ("" for its root) */
	size_t want_len;
	struct entry_list *list; /* list: want's names go here; else NULL */
	struct hub *peer;        /* the hub whose client_paths is walked */
	/* What want is: found, and for a link its target. */
	bool found;
	enum entry_type type;
	char target[PATH_MAX];
};

/* Adds name to the listing once; a link's target gives its size. */
static int list_add(struct views_walk *w, const char *name, size_t len, bool dir, const char *full,
                    const char *peer_path)
{
	const struct views_state *st = w->self->priv;
	struct entry entry = {0};
	char target[PATH_MAX];
	int rc;

	if (len > NAME_MAX)
		return 0;
	for (size_t i = 0; i < w->list->count; i++)
		if (strlen(w->list->items[i].name) == len &&
		    memcmp(w->list->items[i].name, name, len) == 0)
			return 0; /* the first hub that names it wins, as in lookup */
	memcpy(entry.name, name, len);
	entry.mtime = st->opened;
	entry.type = dir ? ENTRY_DIR : ENTRY_LINK;
	if (!dir) {
		rc = views_link_to(full, w->peer->name, peer_path, target, sizeof(target));
		if (rc)
			return rc == -ENAMETOOLONG ? 0 : rc;
		entry.size = strlen(target);
	}
	return entry_list_add(w->list, &entry);
}

/* One name of the views (a fixed folder when peer_path is NULL, else a
 * link to peer_path in w->peer): what it tells of want. 1 stops the walk:
 * want itself was found and nothing under it is asked for. */
static int visit(struct views_walk *w, const char *full, const char *peer_path)
{
	const char *rest, *slash;

	if (strcmp(full, w->want) == 0) {
		if (w->found)
			return w->list ? 0 : 1;
		w->found = true;
		w->type = peer_path ? ENTRY_LINK : ENTRY_DIR;
		if (peer_path &&
		    views_link_to(full, w->peer->name, peer_path, w->target, sizeof(w->target)))
			w->target[0] = '\0';
		return w->list ? 0 : 1;
	}
	if (w->want_len && (strncmp(full, w->want, w->want_len) != 0 || full[w->want_len] != '/'))
		return 0;
	rest = full + w->want_len + (w->want_len ? 1 : 0);
	if (!w->found) {
		w->found = true;
		w->type = ENTRY_DIR;
	}
	if (!w->list)
		return w->type == ENTRY_DIR ? 1 : 0;
	slash = strchr(rest, '/');
	return list_add(w, rest, slash ? (size_t)(slash - rest) : strlen(rest), slash || !peer_path,
	                full, peer_path);
}

/* hub_ops.client_paths' callback: the client's layout is the view's
 * folder of that name. */
static int on_client_path(void *ctx, const char *path, const char *client, const char *client_path)
{
	struct views_walk *w = ctx;
	char full[PATH_MAX];
	const char *why;

	/* A name from an index ("..", an empty part) must not climb out. */
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", client, client_path) >= sizeof(full) ||
	    names_check_relpath(full, &why) != 0)
		return 0;
	return visit(w, full, path);
}

/* Asks every name of the views about w->want: the fixed folders, then
 * each serving hub's client paths, in the order of the mount's root. */
static int walk(struct views_walk *w)
{
	struct hub *self = w->self;
	int rc = 0;

	w->want_len = strlen(w->want);
	if (w->want_len == 0) {
		w->found = true;
		w->type = ENTRY_DIR;
	}
	for (size_t i = 0; i < sizeof(fixed_dirs) / sizeof(fixed_dirs[0]) && rc == 0; i++)
		rc = visit(w, fixed_dirs[i], NULL);
	for (size_t i = 0; rc == 0; i++) {
		struct hub *peer;
		int prc =
		    self->env->peer ? self->env->peer(self->env->peer_ctx, i, &peer) : -ENOENT;

		if (prc == -ENOENT)
			break;
		if (prc || !peer->ops->client_paths)
			continue;
		w->peer = peer;
		rc = peer->ops->client_paths(peer, on_client_path, w);
	}
	return rc > 0 ? 0 : rc;
}

static int views_open(struct hub *hub, char *why, size_t why_size)
{
	struct views_state *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	st->opened = time(NULL);
	hub->priv = st;
	return 0;
}

static void views_close(struct hub *hub)
{
	free(hub->priv);
	hub->priv = NULL;
}

static int views_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	const struct views_state *st = hub->priv;
	struct views_walk w = {.self = hub, .want = dir, .list = out};
	int rc;

	if (views_hf_owns(dir))
		return views_hf_list(hub, dir, st->opened, out);
	rc = walk(&w);

	if (rc == 0 && !w.found)
		rc = -ENOENT;
	else if (rc == 0 && w.type != ENTRY_DIR)
		rc = -ENOTDIR;
	return rc;
}

static int views_lookup(struct hub *hub, const char *path, struct entry *out)
{
	const struct views_state *st = hub->priv;
	struct views_walk w = {.self = hub, .want = path};
	const char *base = strrchr(path, '/');
	int rc;

	if (views_hf_owns(path))
		return views_hf_lookup(hub, path, st->opened, out);
	rc = walk(&w);
	memset(out, 0, sizeof(*out));
	if (rc == 0 && (!w.found || (w.type == ENTRY_LINK && !w.target[0])))
		rc = -ENOENT;
	if (rc)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", base ? base + 1 : path);
	out->type = w.type;
	out->mtime = st->opened;
	out->size = w.type == ENTRY_LINK ? strlen(w.target) : 0;
	return 0;
}

static int views_readlink(struct hub *hub, const char *path, char *out, size_t out_size)
{
	struct views_walk w = {.self = hub, .want = path};
	int rc;

	if (views_hf_owns(path))
		return views_hf_readlink(hub, path, out, out_size);
	rc = walk(&w);
	if (rc == 0 && (!w.found || (w.type == ENTRY_LINK && !w.target[0])))
		rc = -ENOENT;
	else if (rc == 0 && w.type != ENTRY_LINK)
		rc = -EINVAL;
	if (rc == 0 && (size_t)snprintf(out, out_size, "%s", w.target) >= out_size)
		rc = -ENAMETOOLONG;
	return rc;
}

/* The links' targets have the bytes. A file of content's has no source
 * to download: asking for one does content's remote work (the mount asks
 * it off its FUSE threads when would_block says so), and gives none. */
static int views_source(struct hub *hub, const char *path, struct source *out)
{
	char *data = NULL;
	size_t len;
	int rc = views_hf_owns(path) ? views_hf_content(hub, path, &data, &len) : -EINVAL;

	free(data);
	memset(out, 0, sizeof(*out));
	return rc;
}

static int views_content(struct hub *hub, const char *path, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	return views_hf_owns(path) ? views_hf_content(hub, path, data, len) : -EINVAL;
}

/* The catalog hubs' client paths are in memory; the Hugging Face layout
 * asks its hubs. */
static bool views_would_block(struct hub *hub, const char *path, bool list)
{
	return views_hf_owns(path) && views_hf_would_block(hub, path, list);
}

const struct hub_ops hub_views_ops = {
    .name = HUB_VIEWS_NAME,
    .flags = HUB_SIZES_KNOWN | HUB_SHOWS_PEERS,
    .open = views_open,
    .list = views_list,
    .lookup = views_lookup,
    .source = views_source,
    .readlink = views_readlink,
    .would_block = views_would_block,
    .content = views_content,
    .close = views_close,
};
