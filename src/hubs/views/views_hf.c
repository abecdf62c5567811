/* views_hf.c: huggingface_hub's cache layout in the views,
 * <mount>/.clients/huggingface/hub/: models--<org>--<name>/ with refs/<branch>
 * (a file: the commit the hub resolves), snapshots/<commit>/<path> (links
 * into the hub's <org>/<name>@<commit>/, any commit, looked up on demand),
 * blobs/<etag> (links to the default commit's file of that ETag), and
 * .locks/<repo folder>/, the folders the client makes on its way.
 * Not for: the views' other layouts (hub_views.c) or the repos themselves
 * (hub_hf.c). */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "views_hf.h"

#define LOCKS_DIR  ".locks"
#define COMMIT_LEN 40

enum place_what {
	HV_TOP,       /* huggingface/hub */
	HV_LOCKS,     /* .locks */
	HV_LOCK,      /* .locks/<repo folder> */
	HV_REPO,      /* <repo folder> */
	HV_REFS,      /* <repo folder>/refs */
	HV_REF,       /* <repo folder>/refs/<branch> */
	HV_SNAPSHOTS, /* <repo folder>/snapshots */
	HV_SNAPSHOT,  /* <repo folder>/snapshots/<rev>[/<path>] */
	HV_BLOBS,     /* <repo folder>/blobs */
	HV_BLOB,      /* <repo folder>/blobs/<etag> */
};

/* A path of the layout, parsed. */
struct place {
	enum place_what what;
	struct hub *peer;        /* the hub of the repo (not HV_TOP, HV_LOCKS) */
	char repo[PATH_MAX];     /* "org/name", as the peer names it */
	char name[NAME_MAX + 1]; /* HV_REF: the branch; HV_SNAPSHOT: the rev;
	                            HV_BLOB: the etag */
	const char *inside;      /* HV_SNAPSHOT: below the rev ("" for it) */
};

bool views_hf_owns(const char *path)
{
	size_t len = strlen(VIEWS_HF_DIR);

	return strncmp(path, VIEWS_HF_DIR, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* The next component of *p into out, *p moved past it and its '/'. */
static int next_component(const char **p, char *out, size_t out_size)
{
	size_t len = strcspn(*p, "/");

	if (len == 0 || len >= out_size)
		return -ENOENT;
	memcpy(out, *p, len);
	out[len] = '\0';
	*p += len + ((*p)[len] == '/');
	return 0;
}

/* The hub whose repos a folder of the layout names, and the repo's id:
 * models--org--name is org/name of the hub whose client_repos prefix it
 * has (a name without an org keeps none). */
static int repo_of_folder(struct hub *self, const char *folder, struct place *pl)
{
	char full[PATH_MAX];
	int rc = -ENOENT;

	if ((size_t)snprintf(full, sizeof(full), VIEWS_HF_DIR "/%s", folder) >= sizeof(full))
		return -ENOENT;
	for (size_t i = 0; rc == -ENOENT; i++) {
		struct hub *peer;
		int prc =
		    self->env->peer ? self->env->peer(self->env->peer_ctx, i, &peer) : -ENOENT;
		size_t plen;
		const char *tail, *sep;

		if (prc == -ENOENT)
			break;
		if (prc || !peer->ops->client_repos)
			continue;
		plen = strlen(peer->ops->client_repos);
		if (strncmp(full, peer->ops->client_repos, plen) != 0)
			continue;
		tail = full + plen;
		sep = strstr(tail, "--");
		if (!tail[0] || strchr(tail, '@') || (sep && (sep == tail || !sep[2])))
			break;
		if (sep)
			snprintf(pl->repo, sizeof(pl->repo), "%.*s/%s", (int)(sep - tail), tail,
			         sep + 2);
		else
			snprintf(pl->repo, sizeof(pl->repo), "%s", tail);
		pl->peer = peer;
		rc = 0;
	}
	return rc;
}

static int parse(struct hub *self, const char *path, struct place *pl)
{
	const char *p = path + strlen(VIEWS_HF_DIR);
	char first[NAME_MAX + 1], second[NAME_MAX + 1];
	int rc;

	memset(pl, 0, sizeof(*pl));
	pl->inside = "";
	if (*p == '\0') {
		pl->what = HV_TOP;
		return 0;
	}
	p++;
	rc = next_component(&p, first, sizeof(first));
	if (rc)
		return rc;
	if (strcmp(first, LOCKS_DIR) == 0) {
		pl->what = HV_LOCKS;
		if (*p == '\0')
			return 0;
		pl->what = HV_LOCK;
		rc = next_component(&p, first, sizeof(first));
		return rc ? rc : *p ? -ENOENT : repo_of_folder(self, first, pl);
	}
	rc = repo_of_folder(self, first, pl);
	if (rc)
		return rc;
	pl->what = HV_REPO;
	if (*p == '\0')
		return 0;
	rc = next_component(&p, second, sizeof(second));
	if (rc)
		return rc;
	if (strcmp(second, "blobs") == 0) {
		pl->what = HV_BLOBS;
		if (*p == '\0')
			return 0;
		pl->what = HV_BLOB;
		rc = next_component(&p, pl->name, sizeof(pl->name));
		return rc ? rc : *p ? -ENOENT : 0;
	}
	if (strcmp(second, "refs") == 0 || strcmp(second, "snapshots") == 0) {
		bool refs = second[0] == 'r';
		pl->what = refs ? HV_REFS : HV_SNAPSHOTS;
		if (*p == '\0')
			return 0;
		rc = next_component(&p, pl->name, sizeof(pl->name));
		if (rc || strchr(pl->name, '@'))
			return -ENOENT;
		pl->what = refs ? HV_REF : HV_SNAPSHOT;
		pl->inside = p;
		return refs && *p ? -ENOENT : 0;
	}
	return -ENOENT;
}

/* The peer's path of a place: its repo, at the rev of a snapshot. */
static int peer_path(const struct place *pl, char *out, size_t out_size)
{
	int n;

	if (pl->what == HV_SNAPSHOT || pl->what == HV_REF)
		n = snprintf(out, out_size, "%s@%s%s%s", pl->repo, pl->name,
		             pl->inside[0] ? "/" : "", pl->inside);
	else
		n = snprintf(out, out_size, "%s", pl->repo);
	return n >= 0 && (size_t)n < out_size ? 0 : -ENAMETOOLONG;
}

int views_link_to(const char *path, const char *peer, const char *target, char *out,
		  size_t out_size)
{
	size_t ups = 1, used = 0;

	for (const char *c = path; *c; c++)
		ups += *c == '/';
	for (size_t i = 0; i < ups; i++) {
		if (used + 3 >= out_size)
			return -ENAMETOOLONG;
		memcpy(out + used, "../", 3);
		used += 3;
	}
	if ((size_t)snprintf(out + used, out_size - used, "%s/%s", peer, target) >=
	    out_size - used)
		return -ENAMETOOLONG;
	return 0;
}

/* Whether the peer has the repo (a lookup of its folder). */
static int repo_exists(const struct place *pl)
{
	struct entry e;
	int rc = pl->peer->ops->lookup(pl->peer, pl->repo, &e);

	return rc ? rc : e.type == ENTRY_DIR ? 0 : -ENOENT;
}

static int add(struct entry_list *out, const char *name, enum entry_type type, uint64_t size,
               time_t mtime)
{
	struct entry e;

	for (size_t i = 0; i < out->count; i++)
		if (strcmp(out->items[i].name, name) == 0)
			return 0;
	entry_make(&e, name, type, size, mtime);
	return entry_list_add(out, &e);
}

/* The repos the hubs know now, listed without a request: each org the
 * hub's root shows whose listing is at hand and holds folders only. */
static int list_repos(struct hub *self, time_t mtime, struct entry_list *out)
{
	int rc = 0;

	for (size_t i = 0; rc == 0; i++) {
		struct entry_list top = {0};
		struct hub *peer;
		int prc =
		    self->env->peer ? self->env->peer(self->env->peer_ctx, i, &peer) : -ENOENT;
		const char *folder;

		if (prc == -ENOENT)
			break;
		if (prc || !peer->ops->client_repos ||
		    strncmp(peer->ops->client_repos, VIEWS_HF_DIR "/", strlen(VIEWS_HF_DIR "/")) ||
		    (peer->ops->would_block && peer->ops->would_block(peer, "", true)) ||
		    peer->ops->list(peer, "", &top) != 0)
			continue;
		folder = peer->ops->client_repos + strlen(VIEWS_HF_DIR "/");
		for (size_t t = 0; t < top.count && rc == 0; t++) {
			struct entry_list org = {0};
			const char *o = top.items[t].name;
			bool only_dirs = true;
			char name[NAME_MAX + 1];

			if (top.items[t].type != ENTRY_DIR || strchr(o, '@') ||
			    (peer->ops->would_block && peer->ops->would_block(peer, o, true)) ||
			    peer->ops->list(peer, o, &org) != 0)
				continue;
			for (size_t r = 0; r < org.count; r++)
				only_dirs = only_dirs && org.items[r].type == ENTRY_DIR;
			for (size_t r = 0; only_dirs && r < org.count && rc == 0; r++)
				if (!strchr(org.items[r].name, '@') &&
				    (size_t)snprintf(name, sizeof(name), "%s%s--%s", folder, o,
				                     org.items[r].name) < sizeof(name))
					rc = add(out, name, ENTRY_DIR, 0, mtime);
			entry_list_free(&org);
		}
		entry_list_free(&top);
	}
	return rc;
}

/* What a walk of a commit's files looks for: one etag's file (etag set),
 * or every etag (list set). */
struct blob_walk {
	const char *etag;
	char found[PATH_MAX]; /* etag: the peer's path of its first file */
	struct entry_list *list;
	const char *blobs; /* list: the view's path of blobs/ */
	time_t mtime;
};

/* Walks the files below dir (a peer's path), depth first, in the order the
 * peer lists them. */
static int walk_files(struct hub *peer, const char *dir, struct blob_walk *w)
{
	struct entry_list list = {0};
	char child[PATH_MAX];
	int rc = peer->ops->list(peer, dir, &list);

	for (size_t i = 0; rc == 0 && i < list.count && !w->found[0]; i++) {
		const struct entry *e = &list.items[i];

		if ((size_t)snprintf(child, sizeof(child), "%s/%s", dir, e->name) >= sizeof(child))
			continue;
		if (e->type == ENTRY_DIR)
			rc = walk_files(peer, child, w);
		else if (e->type == ENTRY_FILE && e->digest.hex[0] && !e->digest.key[0] &&
		         (e->digest.algo == DIGEST_SHA256 ||
		          e->digest.algo == DIGEST_GIT_BLOB_SHA1)) {
			char view[PATH_MAX], link[PATH_MAX];

			if (w->list &&
			    (size_t)snprintf(view, sizeof(view), "%s/%s", w->blobs, e->digest.hex) <
			        sizeof(view) &&
			    views_link_to(view, peer->name, child, link, sizeof(link)) == 0)
				rc =
				    add(w->list, e->digest.hex, ENTRY_LINK, strlen(link), w->mtime);
			else if (!w->list && strcmp(e->digest.hex, w->etag) == 0)
				snprintf(w->found, sizeof(w->found), "%s", child);
		}
	}
	entry_list_free(&list);
	return rc;
}

/* The blobs of a repo are those of its default branch's commit, each
 * named by its ETag: the LFS or Xet file's sha256, else git's blob sha1
 * (the digests the hub checks them against). */
static int walk_blobs(const struct place *pl, struct blob_walk *w)
{
	char commit[COMMIT_LEN + 1], dir[PATH_MAX];
	int rc = pl->peer->ops->commit_of ? pl->peer->ops->commit_of(pl->peer, pl->repo, commit)
	                                  : -ENOENT;

	if (rc == 0 && (size_t)snprintf(dir, sizeof(dir), "%s@%s", pl->repo, commit) >= sizeof(dir))
		rc = -ENAMETOOLONG;
	if (rc == 0)
		rc = walk_files(pl->peer, dir, w);
	return rc;
}

/* A blob's link: found by its etag among the default commit's files. */
static int blob_link(const char *path, const struct place *pl, char *out, size_t out_size)
{
	struct blob_walk w = {.etag = pl->name};
	int rc = walk_blobs(pl, &w);

	if (rc == 0 && !w.found[0])
		rc = -ENOENT;
	if (rc == 0)
		rc = views_link_to(path, pl->peer->name, w.found, out, out_size);
	return rc;
}

int views_hf_lookup(struct hub *self, const char *path, time_t mtime, struct entry *out)
{
	const char *base = strrchr(path, '/');
	char target[PATH_MAX], link[PATH_MAX], commit[COMMIT_LEN + 1];
	struct place pl;
	struct entry e;
	int rc = parse(self, path, &pl);

	base = base ? base + 1 : path;
	if (rc)
		return rc;
	switch (pl.what) {
	case HV_TOP:
	case HV_LOCKS:
		entry_make(out, base, ENTRY_DIR, 0, mtime);
		return 0;
	case HV_REF:
		rc = peer_path(&pl, target, sizeof(target));
		if (rc == 0)
			rc = pl.peer->ops->commit_of
			         ? pl.peer->ops->commit_of(pl.peer, target, commit)
			         : -ENOENT;
		if (rc == 0)
			entry_make(out, base, ENTRY_FILE, COMMIT_LEN, mtime);
		return rc;
	case HV_SNAPSHOT:
		rc = peer_path(&pl, target, sizeof(target));
		if (rc == 0)
			rc = pl.peer->ops->lookup(pl.peer, target, &e);
		if (rc == 0 && e.type == ENTRY_DIR) {
			entry_make(out, base, ENTRY_DIR, 0, mtime);
		} else if (rc == 0) {
			rc = views_link_to(path, pl.peer->name, target, link, sizeof(link));
			if (rc == 0)
				entry_make(out, base, ENTRY_LINK, strlen(link), mtime);
		}
		return rc;
	case HV_BLOB:
		rc = blob_link(path, &pl, link, sizeof(link));
		if (rc == 0)
			entry_make(out, base, ENTRY_LINK, strlen(link), mtime);
		return rc;
	default:
		rc = repo_exists(&pl);
		if (rc == 0)
			entry_make(out, base, ENTRY_DIR, 0, mtime);
		return rc;
	}
}

int views_hf_list(struct hub *self, const char *path, time_t mtime, struct entry_list *out)
{
	char target[PATH_MAX], link[PATH_MAX], commit[COMMIT_LEN + 1];
	struct entry_list peer_list = {0};
	struct place pl;
	struct entry self_entry;
	int rc = views_hf_lookup(self, path, mtime, &self_entry);

	if (rc == 0 && self_entry.type != ENTRY_DIR)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = parse(self, path, &pl);
	if (rc)
		return rc;
	switch (pl.what) {
	case HV_TOP:
		rc = add(out, LOCKS_DIR, ENTRY_DIR, 0, mtime);
		if (rc == 0)
			rc = list_repos(self, mtime, out);
		break;
	case HV_LOCKS:
		rc = list_repos(self, mtime, out);
		break;
	case HV_REPO:
		rc = add(out, "blobs", ENTRY_DIR, 0, mtime);
		if (rc == 0)
			rc = add(out, "refs", ENTRY_DIR, 0, mtime);
		if (rc == 0)
			rc = add(out, "snapshots", ENTRY_DIR, 0, mtime);
		break;
	case HV_REFS:
		/* The branch a bare org/name resolves to, as the client's own
		 * default revision names it. */
		rc = add(out, "main", ENTRY_FILE, COMMIT_LEN, mtime);
		break;
	case HV_SNAPSHOTS:
		rc = pl.peer->ops->commit_of ? pl.peer->ops->commit_of(pl.peer, pl.repo, commit)
		                             : -ENOENT;
		if (rc == 0)
			rc = add(out, commit, ENTRY_DIR, 0, mtime);
		break;
	case HV_SNAPSHOT:
		rc = peer_path(&pl, target, sizeof(target));
		if (rc == 0)
			rc = pl.peer->ops->list(pl.peer, target, &peer_list);
		for (size_t i = 0; rc == 0 && i < peer_list.count; i++) {
			const struct entry *e = &peer_list.items[i];
			char child[PATH_MAX], into[PATH_MAX];

			if (e->type == ENTRY_DIR) {
				rc = add(out, e->name, ENTRY_DIR, 0, mtime);
				continue;
			}
			if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, e->name) <
			        sizeof(child) &&
			    (size_t)snprintf(into, sizeof(into), "%s/%s", target, e->name) <
			        sizeof(into) &&
			    views_link_to(child, pl.peer->name, into, link, sizeof(link)) == 0)
				rc = add(out, e->name, ENTRY_LINK, strlen(link), mtime);
		}
		break;
	case HV_BLOBS: {
		struct blob_walk w = {.list = out, .blobs = path, .mtime = mtime};

		rc = walk_blobs(&pl, &w);
		break;
	}
	default:
		break; /* a lock's folder: empty */
	}
	entry_list_free(&peer_list);
	return rc;
}

int views_hf_readlink(struct hub *self, const char *path, char *out, size_t out_size)
{
	char target[PATH_MAX];
	struct place pl;
	struct entry e;
	int rc = parse(self, path, &pl);

	if (rc == 0 && pl.what == HV_BLOB)
		return blob_link(path, &pl, out, out_size);
	if (rc == 0 && pl.what != HV_SNAPSHOT)
		rc = -EINVAL;
	if (rc == 0)
		rc = peer_path(&pl, target, sizeof(target));
	if (rc == 0)
		rc = pl.peer->ops->lookup(pl.peer, target, &e);
	if (rc == 0 && e.type == ENTRY_DIR)
		rc = -EINVAL;
	if (rc == 0)
		rc = views_link_to(path, pl.peer->name, target, out, out_size);
	return rc;
}

int views_hf_content(struct hub *self, const char *path, char **data, size_t *len)
{
	char target[PATH_MAX], commit[COMMIT_LEN + 1];
	struct place pl;
	int rc = parse(self, path, &pl);

	*data = NULL;
	*len = 0;
	if (rc == 0 && pl.what != HV_REF)
		rc = -EINVAL;
	if (rc == 0)
		rc = peer_path(&pl, target, sizeof(target));
	if (rc == 0)
		rc = pl.peer->ops->commit_of ? pl.peer->ops->commit_of(pl.peer, target, commit)
		                             : -ENOENT;
	if (rc == 0 && !(*data = strdup(commit)))
		rc = -ENOMEM;
	if (rc == 0)
		*len = strlen(commit);
	return rc;
}

bool views_hf_would_block(struct hub *self, const char *path, bool list)
{
	char target[PATH_MAX];
	struct place pl;

	if (parse(self, path, &pl) != 0 || pl.what == HV_TOP || pl.what == HV_LOCKS ||
	    !pl.peer->ops->would_block)
		return false;
	if (pl.what == HV_BLOBS || pl.what == HV_BLOB)
		return pl.peer->ops->would_block(pl.peer, pl.repo, false) ||
		       pl.peer->ops->would_block(pl.peer, pl.repo, true);
	if (pl.what != HV_SNAPSHOT && pl.what != HV_REF)
		return pl.peer->ops->would_block(pl.peer, pl.repo, false);
	if (peer_path(&pl, target, sizeof(target)) != 0)
		return false;
	return pl.peer->ops->would_block(pl.peer, target, list && pl.what == HV_SNAPSHOT);
}
