/* cmd_cache_model.c: omnihub cache ls and cache rm: the cache seen by hub,
 * model or repo, and revision, as its readable tree names them (the hard
 * links beside the blobs), with the partial downloads that belong to them
 * (by the file their sidecar names).
 * Not for: the store's layout, locks and removal (blob.c), or the blob-level
 * commands du, gc and verify (cmd_cache.c). */
#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "cmd_out.h"
#include "core.h"

const char cmd_cache_help[] =
    "The cache by model: what is cached for each hub's model or repo and\n"
    "revision, and removing one. Touches no network.\n"
    "\n"
    "  omnihub cache ls [PATH...]\n"
    "    One line per cached revision: its name (what rm takes), size on\n"
    "    disk (a file shared by two revisions counts in each), number of\n"
    "    files, last used (the files' access time, which moves at most once\n"
    "    a day under relatime) and its partial downloads (the bytes of the\n"
    "    pieces so far, in progress or left over). Hugging Face revisions are\n"
    "    their commit, with the refs (main, v1.0) that named it when the hub\n"
    "    last asked.\n"
    "    A partial download is listed under the revision of the file it is\n"
    "    for (its sidecar names it); one an older omnihub left, which names\n"
    "    no file (a Hugging Face one is placed by its URL), is listed apart.\n"
    "\n"
    "  omnihub cache rm [-n] PATH...\n"
    "    Removes what PATH names from the cache: its files' names, and each\n"
    "    blob no other name still uses; a blob another model or revision\n"
    "    names stays (it says so). Never a file a mount has open: that one is\n"
    "    reported and kept. Left-over partial downloads of it go too (never\n"
    "    one in progress). A mount reading it later downloads and verifies\n"
    "    it again.\n"
    "\n"
    "PATH is a hub (onnx, huggingface), a model or an org below it\n"
    "(onnx/resnet18, huggingface/acme), a repo (huggingface/acme/tiny-onnx)\n"
    "or a revision (onnx/resnet18/opset-9, huggingface/acme/tiny-onnx@COMMIT,\n"
    "at least 7 characters of the commit, or @REF for a ref ls shows); the\n"
    "hub may be left out of org/name[@REV]. A PATH with nothing cached\n"
    "exits 4.\n"
    "\n"
    "    -n, --dry-run          (rm) only print what would go\n";

/* ---- what the readable tree holds ---- */

/* One regular file of a revision's folder. */
struct unit_file {
	char *rel; /* owned; below the store's root; NULL for an archive blob */
	dev_t dev;
	ino_t ino;
	uint64_t size;
	const struct blob_info *blob; /* borrowed from the scan; NULL: no blob's */
};

/* One revision of a model or repo (or a model, for hubs without them). */
struct unit {
	struct core_store *store; /* borrowed */
	char *hub;                /* owned: "huggingface", "huggingface-datasets", "onnx"... */
	char *name;               /* owned: "acme/tiny-onnx", "resnet18" */
	char *rev;                /* owned: a commit, "opset-9", or "" */
	char *rel;                /* owned: its folder (or file) below the store's root */
	char *id;                 /* owned: "huggingface/acme/tiny-onnx@COMMIT", what rm takes */
	char *refs; /* owned: the branches and tags that named this commit when the hub last
	               asked (its index), "main, v1.0"; "" for none */
	struct unit_file *files; /* owned; sorted by (dev, ino) once scanned */
	size_t nfiles, cap;
	uint64_t nfiles_named;               /* regular files in its folder */
	time_t used;                         /* the latest access time of its files */
	struct blob_partial_info **partials; /* borrowed from the scan; owned array */
	size_t npartials;
	bool chosen; /* named by a PATH */
};

/* Everything scanned: the units of every store, and the store-level lists
 * they borrow from. */
struct scan {
	struct cmd_ctx *ctx;
	struct unit *units; /* owned */
	size_t count, cap;
	struct store_lists {
		struct core_store *store; /* borrowed */
		struct blob_info *blobs;  /* owned; sorted by (dev, ino) */
		size_t nblobs;
		struct blob_partial_info *parts; /* owned */
		size_t nparts;
		bool *part_named; /* owned; parts[i] belongs to a unit */
	} * stores;               /* owned */
	size_t nstores;
};

static void unit_free(struct unit *u)
{
	for (size_t i = 0; i < u->nfiles; i++)
		free(u->files[i].rel);
	free(u->files);
	free(u->partials);
	free(u->hub);
	free(u->name);
	free(u->rev);
	free(u->rel);
	free(u->id);
	free(u->refs);
}

static void scan_free(struct scan *scan)
{
	for (size_t i = 0; i < scan->count; i++)
		unit_free(&scan->units[i]);
	free(scan->units);
	for (size_t i = 0; i < scan->nstores; i++) {
		free(scan->stores[i].blobs);
		blob_partial_infos_free(scan->stores[i].parts, scan->stores[i].nparts);
		free(scan->stores[i].part_named);
	}
	free(scan->stores);
	memset(scan, 0, sizeof(*scan));
}

static int compare_blob_ids(const void *a, const void *b)
{
	const struct blob_info *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static const struct blob_info *blob_by_id(const struct store_lists *lists, dev_t dev, ino_t ino)
{
	struct blob_info key = {.dev = dev, .ino = ino};

	return bsearch(&key, lists->blobs, lists->nblobs, sizeof(key), compare_blob_ids);
}

/* The unit (hub, name, rev) of store, added when new; NULL without memory. */
static struct unit *unit_of(struct scan *scan, struct core_store *store, const char *hub,
                            const char *name, const char *rev, const char *rel)
{
	struct unit *u;

	for (size_t i = 0; i < scan->count; i++) {
		u = &scan->units[i];
		if (u->store == store && strcmp(u->hub, hub) == 0 && strcmp(u->name, name) == 0 &&
		    strcmp(u->rev, rev) == 0)
			return u;
	}
	if (scan->count == scan->cap) {
		size_t cap = scan->cap ? 2 * scan->cap : 16;
		struct unit *grown = realloc(scan->units, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		scan->units = grown;
		scan->cap = cap;
	}
	u = &scan->units[scan->count];
	memset(u, 0, sizeof(*u));
	u->store = store;
	u->hub = strdup(hub);
	u->name = strdup(name);
	u->rev = strdup(rev);
	u->rel = strdup(rel);
	/* A revision of a Hugging Face repo is name@commit, as the mount
	 * names a pinned one; an ONNX opset is a folder below its model. */
	if (asprintf(&u->id, "%s%s%s%s%s", hub, name[0] ? "/" : "", name,
	             rev[0] ? (strncmp(hub, "huggingface", 11) == 0 ? "@" : "/") : "", rev) < 0)
		u->id = NULL;
	u->refs = strdup("");
	if (!u->hub || !u->name || !u->rev || !u->rel || !u->id || !u->refs) {
		unit_free(u);
		return NULL;
	}
	scan->count++;
	return u;
}

static int unit_add_file(struct unit *u, const char *rel, const struct stat *st,
                         const struct blob_info *blob)
{
	struct unit_file *f;
	int rc = -ENOMEM;

	if (u->nfiles == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 16;
		struct unit_file *grown = realloc(u->files, cap * sizeof(*grown));
		if (!grown)
			goto out;
		u->files = grown;
		u->cap = cap;
	}
	f = &u->files[u->nfiles];
	f->rel = rel ? strdup(rel) : NULL;
	if (rel && !f->rel)
		goto out;
	f->dev = blob ? blob->dev : st->st_dev;
	f->ino = blob ? blob->ino : st->st_ino;
	f->size = blob ? blob->size : (uint64_t)st->st_size;
	f->blob = blob;
	u->nfiles++;
	rc = 0;
out:
	return rc;
}

/* Whether a hidden name is the store's own (a temporary, a record), not
 * a file of the model (an archive may hold hidden files). */
static bool store_own(const char *name)
{
	size_t n = strlen(name), m = strlen(CACHE_RECORD_SUFFIX);

	return name[0] == '.' && ((n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
	                          (n > m && strcmp(name + n - m, CACHE_RECORD_SUFFIX) == 0));
}

/* Adds the regular files at and below rel to u; a folder staged from an
 * archive adds that archive's blob too. */
static int unit_add_tree(struct scan *scan, struct store_lists *lists, struct unit *u,
                         const char *rel, unsigned depth)
{
	struct digest_spec digest;
	struct blob_info archive;
	struct dirent *d;
	struct stat st;
	DIR *dir = NULL;
	int rc = 0;

	if (cache_lstat(u->store->cache, rel, &st) != 0 || depth > 64)
		goto out;
	if (S_ISREG(st.st_mode)) {
		u->nfiles_named++;
		if (st.st_atime > u->used)
			u->used = st.st_atime;
		rc = unit_add_file(
		    u, rel, &st, st.st_nlink > 1 ? blob_by_id(lists, st.st_dev, st.st_ino) : NULL);
		goto out;
	}
	if (!S_ISDIR(st.st_mode))
		goto out;
	if (cache_dir_digest(u->store->cache, rel, &digest) == 0 &&
	    blob_store_find(u->store->blobs, &digest, &archive) == 0 && !archive.planted) {
		const struct blob_info *b = blob_by_id(lists, archive.dev, archive.ino);
		if (b)
			rc = unit_add_file(u, NULL, &st, b);
		if (rc)
			goto out;
	}
	dir = cache_opendir(u->store->cache, rel);
	if (!dir)
		goto out;
	while (rc == 0 && (d = readdir(dir)) != NULL) {
		char child[PATH_MAX];
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 ||
		    store_own(d->d_name) ||
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) >= (int)sizeof(child))
			continue;
		rc = unit_add_tree(scan, lists, u, child, depth + 1);
	}
out:
	if (dir)
		closedir(dir);
	return rc;
}

/* The ONNX zoo: onnx/MODEL/opset-N/... (the units below rel, a hub's
 * folder at depth 0, a model's at depth 1). */
static int scan_onnx(struct scan *scan, struct store_lists *lists, const char *hub,
                       const char *rel, const char *model, unsigned depth)
{
	struct dirent *d;
	DIR *dir = cache_opendir(lists->store->cache, rel);
	int rc = 0;

	while (dir && rc == 0 && (d = readdir(dir)) != NULL) {
		char child[PATH_MAX];
		struct stat st;
		struct unit *u;

		if (d->d_name[0] == '.' ||
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) >= (int)sizeof(child) ||
		    cache_lstat(lists->store->cache, child, &st) != 0)
			continue;
		if (depth == 0 && S_ISDIR(st.st_mode)) {
			rc = scan_onnx(scan, lists, hub, child, d->d_name, depth + 1);
			continue;
		}
		/* A file beside the revisions is the model's own (no revision). */
		u = depth == 0 || !S_ISDIR(st.st_mode)
		        ? unit_of(scan, lists->store, hub, depth == 0 ? d->d_name : model, "",
		                  depth == 0 ? child : rel)
		        : unit_of(scan, lists->store, hub, model, d->d_name, child);
		rc = u ? unit_add_tree(scan, lists, u, child, 0) : -ENOMEM;
	}
	if (dir)
		closedir(dir);
	return rc;
}

/* A catalog hub: a model is the folder that holds its entries (files, or
 * folders extracted from archives), however deep (tfhub/PUBLISHER/MODEL/);
 * omnihub.catalog(5). A file right in the hub's folder is its own unit. */
static int scan_catalog(struct scan *scan, struct store_lists *lists, const char *hub,
                        const char *rel, const char *name, unsigned depth)
{
	struct cache *cache = lists->store->cache;
	DIR *dir = cache_opendir(cache, rel);
	bool holds_entries = false;
	struct digest_spec stamp;
	struct dirent *d;
	struct unit *u;
	int rc = 0;

	/* First: whether this folder holds entries (then it is the model). */
	while (dir && depth > 0 && !holds_entries && (d = readdir(dir)) != NULL) {
		char child[PATH_MAX];
		struct stat st;
		if (d->d_name[0] != '.' &&
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) < (int)sizeof(child) &&
		    cache_lstat(cache, child, &st) == 0)
			holds_entries =
			    !S_ISDIR(st.st_mode) || cache_dir_digest(cache, child, &stamp) == 0;
	}
	if (holds_entries) {
		u = unit_of(scan, lists->store, hub, name, "", rel);
		rc = u ? unit_add_tree(scan, lists, u, rel, 0) : -ENOMEM;
		goto out;
	}
	if (dir)
		rewinddir(dir);
	while (dir && rc == 0 && depth < 16 && (d = readdir(dir)) != NULL) {
		char child[PATH_MAX], sub[PATH_MAX];
		struct stat st;
		if (d->d_name[0] == '.' ||
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) >= (int)sizeof(child) ||
		    snprintf(sub, sizeof(sub), "%s%s%s", name, name[0] ? "/" : "", d->d_name) >=
		        (int)sizeof(sub) ||
		    cache_lstat(cache, child, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc = scan_catalog(scan, lists, hub, child, sub, depth + 1);
		} else {
			u = unit_of(scan, lists->store, hub, sub, "", child);
			rc = u ? unit_add_tree(scan, lists, u, child, 0) : -ENOMEM;
		}
	}
out:
	if (dir)
		closedir(dir);
	return rc;
}

/* Hugging Face: huggingface/{models,datasets}/[org/]name@commit/... */
static int scan_hf(struct scan *scan, struct store_lists *lists, const char *hub, const char *rel,
                   const char *name, unsigned depth)
{
	struct dirent *d;
	DIR *dir = cache_opendir(lists->store->cache, rel);
	int rc = 0;

	while (dir && rc == 0 && (d = readdir(dir)) != NULL) {
		char child[PATH_MAX], sub[PATH_MAX];
		const char *at = strchr(d->d_name, '@');
		struct stat st;

		if (d->d_name[0] == '.' ||
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) >= (int)sizeof(child) ||
		    snprintf(sub, sizeof(sub), "%s%s%s", name, name[0] ? "/" : "", d->d_name) >=
		        (int)sizeof(sub) ||
		    cache_lstat(lists->store->cache, child, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (at) {
			struct unit *u;
			sub[strlen(sub) - strlen(at)] = '\0';
			u = unit_of(scan, lists->store, hub, sub, at + 1, child);
			rc = u ? unit_add_tree(scan, lists, u, child, 0) : -ENOMEM;
		} else if (depth < 2) { /* org, then name@commit */
			rc = scan_hf(scan, lists, hub, child, sub, depth + 1);
		}
	}
	if (dir)
		closedir(dir);
	return rc;
}

/* A partial download of a Hugging Face file belongs to the revision its
 * URL resolves: .../[datasets/][ORG/]NAME/resolve/COMMIT/PATH (the mount
 * always asks by commit; any other URL is no revision's). */
static struct unit *hf_unit_of_url(struct scan *scan, struct store_lists *lists, const char *url)
{
	const char *resolve = url ? strstr(url, "/resolve/") : NULL;
	const char *host = url ? strstr(url, "://") : NULL, *comp[3] = {NULL, NULL, NULL};
	char repo[512], rel[PATH_MAX], commit[41];
	const char *rev, *p;
	struct unit *u = NULL;
	bool dataset;
	size_t ncomp = 0;

	if (!resolve || !host || strspn(resolve + 9, "0123456789abcdef") != 40 ||
	    resolve[49] != '/')
		goto out;
	rev = resolve + 9;
	/* The last three components before "/resolve/", nearest first. */
	for (p = resolve; p > host + 3 && ncomp < 3;) {
		p--;
		while (p > host + 3 && *p != '/')
			p--;
		if (*p != '/')
			break;
		comp[ncomp++] = p + 1;
	}
	if (ncomp == 0)
		goto out;
	/* NAME; ORG/NAME; datasets/NAME; datasets/ORG/NAME. */
	dataset = (ncomp > 1 && strncmp(comp[1], "datasets/", 9) == 0) ||
	          (ncomp > 2 && strncmp(comp[2], "datasets/", 9) == 0);
	p = ncomp > 1 && strncmp(comp[1], "datasets/", 9) != 0 ? comp[1] : comp[0];
	if ((size_t)(resolve - p) >= sizeof(repo))
		goto out;
	snprintf(repo, sizeof(repo), "%.*s", (int)(resolve - p), p);
	snprintf(commit, sizeof(commit), "%.40s", rev);
	if (snprintf(rel, sizeof(rel), "huggingface/%s/%s@%s", dataset ? "datasets" : "models",
	             repo, commit) >= (int)sizeof(rel))
		goto out;
	u = unit_of(scan, lists->store, dataset ? "huggingface-datasets" : "huggingface", repo,
	            commit, rel);
out:
	return u;
}

/* Whether rel is path or a folder above it. */
static bool rel_holds(const char *rel, const char *path)
{
	size_t n = strlen(rel);

	return strncmp(rel, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The unit of the file a partial download is for (path, below the store's
 * root, as its sidecar recorded it), by the layout the scan reads:
 * huggingface/{models,datasets}/[ORG/]NAME@COMMIT/FILE, onnx/MODEL/
 * opset-N/FILE (or onnx/MODEL/FILE), and for a catalog the folder that
 * holds the entry (the scan's model when it has one above the entry). It
 * is added when nothing of it is complete yet. NULL when path fits no
 * layout (or without memory): the partial is listed apart. */
static struct unit *unit_of_path(struct scan *scan, struct store_lists *lists, const char *path)
{
	char buf[PATH_MAX], name[PATH_MAX], rel[PATH_MAX];
	const char *comp[64], *rev = "", *hub;
	struct unit *u = NULL;
	size_t n = 0, model_end;
	char *p, *at;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		goto out;
	for (p = buf; n < sizeof(comp) / sizeof(comp[0]);) {
		comp[n++] = p;
		if (!(p = strchr(p, '/')))
			break;
		*p++ = '\0';
	}
	if (p || n < 2 || comp[0][0] == '.' || strcmp(comp[0], BLOB_DIR) == 0)
		goto out; /* too deep, or no file below a hub */
	hub = comp[0];
	if (strcmp(hub, "huggingface") == 0) {
		/* [ORG/]NAME@COMMIT, with a file below it. */
		size_t k = 2;
		if (n < 4 || (strcmp(comp[1], "models") != 0 && strcmp(comp[1], "datasets") != 0))
			goto out;
		if (!strchr(comp[2], '@'))
			k = 3;
		if (k + 1 >= n || !(at = strchr(comp[k], '@')) || at == comp[k] || !at[1])
			goto out;
		*at = '\0';
		rev = at + 1;
		snprintf(name, sizeof(name), "%s%s%s", k == 3 ? comp[2] : "", k == 3 ? "/" : "",
		         comp[k]);
		snprintf(rel, sizeof(rel), "huggingface/%s/%s@%s", comp[1], name, rev);
		if (strcmp(comp[1], "datasets") == 0)
			hub = "huggingface-datasets";
		u = unit_of(scan, lists->store, hub, name, rev, rel);
		goto out;
	}
	if (strcmp(hub, "onnx") == 0) {
		/* onnx/FILE is a unit of its own; onnx/MODEL/FILE the model's;
		 * onnx/MODEL/OPSET/... the opset's. */
		if (n >= 4)
			rev = comp[2];
		snprintf(name, sizeof(name), "%s", comp[1]);
		snprintf(rel, sizeof(rel), "onnx/%s%s%s", comp[1], rev[0] ? "/" : "", rev);
		u = unit_of(scan, lists->store, hub, name, rev, n == 2 ? path : rel);
		goto out;
	}
	/* A catalog: the model the scan found above the entry, the deepest;
	 * else the folder holding the entry (a file right in the hub's folder
	 * is its own unit). */
	for (size_t i = 0; i < scan->count; i++) {
		struct unit *c = &scan->units[i];
		if (c->store == lists->store && strcmp(c->hub, hub) == 0 &&
		    rel_holds(c->rel, path) && (!u || strlen(c->rel) > strlen(u->rel)))
			u = c;
	}
	if (u)
		goto out;
	model_end = n == 2 ? 2 : n - 1;
	name[0] = '\0';
	for (size_t i = 1; i < model_end; i++) {
		size_t len = strlen(name);
		snprintf(name + len, sizeof(name) - len, "%s%s", i > 1 ? "/" : "", comp[i]);
	}
	snprintf(rel, sizeof(rel), "%s/%s", hub, name);
	u = unit_of(scan, lists->store, hub, name, "", rel);
out:
	return u;
}

static int unit_add_partial(struct unit *u, struct blob_partial_info *p)
{
	struct blob_partial_info **grown =
	    realloc(u->partials, (u->npartials + 1) * sizeof(*grown));

	if (grown) {
		u->partials = grown;
		u->partials[u->npartials++] = p;
	}
	return grown ? 0 : -ENOMEM;
}

/* A ref as the index names its file (refs/pr/1 is "refs%2Fpr%2F1"), or as
 * a person may type it in a mount's path, as the Hub names it. */
static void ref_decode(const char *in, char *out, size_t out_size)
{
	size_t n = 0;

	for (const char *p = in; *p && n + 1 < out_size; p++) {
		if (strncasecmp(p, "%2F", 3) == 0 || strncmp(p, "%25", 3) == 0) {
			out[n++] = p[2] == '5' ? '%' : '/';
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/* The refs the Hugging Face hub's index (.index/huggingface/PLURAL/REPO/
 * @refs/REF, the commit on its first line) has at u's commit. */
static int hf_refs_of(struct unit *u)
{
	char rel[PATH_MAX];
	struct dirent *d;
	DIR *dir = NULL;
	int rc = 0;

	if (strncmp(u->hub, "huggingface", 11) != 0 || strlen(u->rev) != 40 ||
	    snprintf(rel, sizeof(rel), CACHE_INDEX_DIR "/huggingface/%s/%s/@refs",
	             strcmp(u->hub, "huggingface-datasets") == 0 ? "datasets" : "models",
	             u->name) >= (int)sizeof(rel))
		goto out;
	dir = cache_opendir(u->store->cache, rel);
	while (dir && rc == 0 && (d = readdir(dir)) != NULL) {
		char file[PATH_MAX], ref[NAME_MAX + 1], *data = NULL, *joined = NULL;
		time_t mtime;
		size_t len = 0;
		if (d->d_name[0] == '.' ||
		    snprintf(file, sizeof(file), "%s/%s", rel, d->d_name) >= (int)sizeof(file) ||
		    cache_read_small(u->store->cache, file, 128, &data, &len, &mtime) != 0)
			continue;
		if (len >= 40 && strncmp(data, u->rev, 40) == 0) {
			ref_decode(d->d_name, ref, sizeof(ref));
			if (asprintf(&joined, "%s%s%s", u->refs, u->refs[0] ? ", " : "", ref) < 0)
				rc = -ENOMEM;
			else {
				free(u->refs);
				u->refs = joined;
			}
		}
		free(data);
	}
out:
	if (dir)
		closedir(dir);
	return rc;
}

/* Whether given (as typed) is one of u's refs. */
static bool ref_matches(const char *given, const struct unit *u)
{
	char want[NAME_MAX + 1];
	size_t n;
	bool found = false;

	ref_decode(given, want, sizeof(want));
	n = strlen(want);
	for (const char *p = u->refs; *p && !found;
	     p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 2 : 0))
		found = n && strncmp(p, want, n) == 0 && (p[n] == ',' || p[n] == '\0');
	return found;
}

static int compare_files(const void *a, const void *b)
{
	const struct unit_file *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static int compare_units(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;

	return strcmp(x->id, y->id);
}

/* One store: its blobs and partial downloads, then each hub's folder. */
static int scan_store(struct scan *scan, struct store_lists *lists)
{
	struct cache *cache = lists->store->cache;
	struct dirent *d;
	DIR *dir = NULL;
	int rc;

	rc = blob_store_list(lists->store->blobs, &lists->blobs, &lists->nblobs);
	if (rc == 0)
		rc = blob_store_partials(lists->store->blobs, &lists->parts, &lists->nparts);
	if (rc)
		goto out;
	if (lists->nblobs)
		qsort(lists->blobs, lists->nblobs, sizeof(*lists->blobs), compare_blob_ids);
	lists->part_named = calloc(lists->nparts + 1, sizeof(bool));
	dir = cache_opendir(cache, "");
	if (!lists->part_named || !dir) {
		rc = lists->part_named ? -errno : -ENOMEM;
		goto out;
	}
	while (rc == 0 && (d = readdir(dir)) != NULL) {
		struct stat st;
		if (d->d_name[0] == '.' || strcmp(d->d_name, BLOB_DIR) == 0 ||
		    cache_lstat(cache, d->d_name, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (strcmp(d->d_name, "huggingface") == 0) {
			rc = scan_hf(scan, lists, "huggingface", "huggingface/models", "", 0);
			if (rc == 0)
				rc = scan_hf(scan, lists, "huggingface-datasets",
				             "huggingface/datasets", "", 0);
		} else if (strcmp(d->d_name, "onnx") == 0) {
			rc = scan_onnx(scan, lists, d->d_name, d->d_name, "", 0);
		} else {
			rc = scan_catalog(scan, lists, d->d_name, d->d_name, "", 0);
		}
	}
	/* A partial belongs to the unit of the file its sidecar names; one
	 * from before sidecars named it, of Hugging Face, to the revision its
	 * URL names. */
	for (size_t i = 0; rc == 0 && i < lists->nparts; i++) {
		const struct blob_partial_info *p = &lists->parts[i];
		struct unit *u = p->path ? unit_of_path(scan, lists, p->path) : NULL;
		if (!u)
			u = hf_unit_of_url(scan, lists, p->url);
		if (u) {
			rc = unit_add_partial(u, &lists->parts[i]);
			lists->part_named[i] = true;
		}
	}
out:
	if (dir)
		closedir(dir);
	return rc;
}

/* Every store of the core, scanned; units sorted by their id. */
static int scan_all(struct scan *scan, struct core *core)
{
	int rc = 0;

	scan->stores = calloc(core_store_count(core), sizeof(*scan->stores));
	if (!scan->stores)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < core_store_count(core); i++) {
		scan->stores[i].store = core_store(core, i);
		scan->nstores++;
		rc = scan_store(scan, &scan->stores[i]);
	}
	for (size_t i = 0; rc == 0 && i < scan->count; i++)
		rc = hf_refs_of(&scan->units[i]);
	for (size_t i = 0; i < scan->count; i++)
		if (scan->units[i].nfiles)
			qsort(scan->units[i].files, scan->units[i].nfiles,
			      sizeof(*scan->units[i].files), compare_files);
	/* Sorted last: the partials' lists hold pointers into the stores'
	 * lists, not into units. */
	if (scan->count)
		qsort(scan->units, scan->count, sizeof(*scan->units), compare_units);
	return rc;
}

/* Bytes on disk of u: each file once, however many names it has. */
static uint64_t unit_bytes(const struct unit *u)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < u->nfiles; i++)
		if (i == 0 || compare_files(&u->files[i - 1], &u->files[i]) != 0)
			bytes += u->files[i].size;
	return bytes;
}

/* ---- which units a PATH names ---- */

/* Whether rev (as given) names the revision have: all of it, or a commit's
 * first 7 characters or more. */
static bool rev_matches(const char *given, const char *have)
{
	size_t n = strlen(given);

	return strcmp(given, have) == 0 || (n >= 7 && strncmp(given, have, n) == 0);
}

/* Whether text (below the hub) names u: its model, an org above it, a
 * revision of it (name/rev for ONNX, name@rev for Hugging Face). */
static bool names_unit(const char *text, const struct unit *u)
{
	size_t n = strlen(u->name);
	const char *at = strrchr(text, '@');

	if (text[0] == '\0' || strcmp(text, u->name) == 0)
		return true;
	if (strncmp(u->name, text, strlen(text)) == 0 && u->name[strlen(text)] == '/')
		return true; /* an org, or a folder above the model */
	if (strncmp(text, u->name, n) != 0 || !u->rev[0])
		return false;
	if (text[n] == '/' && strcmp(text + n + 1, u->rev) == 0)
		return true;
	return at == text + n && (rev_matches(at + 1, u->rev) || ref_matches(at + 1, u));
}

/* Marks the units path names; how many. */
static size_t choose(struct scan *scan, const char *path)
{
	const char *slash = strchr(path, '/');
	size_t hub_len = slash ? (size_t)(slash - path) : strlen(path), found = 0;

	for (size_t i = 0; i < scan->count; i++) {
		struct unit *u = &scan->units[i];
		bool hit = strlen(u->hub) == hub_len && strncmp(path, u->hub, hub_len) == 0 &&
		           names_unit(slash ? slash + 1 : "", u);
		/* org/name[@commit] without its hub: a Hugging Face repo. */
		if (!hit && strncmp(u->hub, "huggingface", 11) == 0 && slash)
			hit = names_unit(path, u) && strchr(u->name, '/');
		if (hit) {
			u->chosen = true;
			found++;
		}
	}
	return found;
}

/* Marks the units every PATH names: 0, or CMD_EXIT_NOT_FOUND after a
 * line for each PATH that names nothing cached. */
static int choose_all(struct cmd_ctx *ctx, struct scan *scan, int argc, char **argv)
{
	int status = CMD_EXIT_OK;

	for (int i = optind; i < argc; i++) {
		char path[PATH_MAX];
		if (cmd_clean_path(argv[i], path, sizeof(path)) != 0) {
			cmd_error(ctx, argv[i], "%s", strerror(ENAMETOOLONG));
			status = CMD_EXIT_NOT_FOUND;
		} else if (choose(scan, path) == 0) {
			cmd_error(ctx, argv[i],
			          "nothing cached under this name (see 'omnihub cache ls'; a "
			          "Hugging Face revision is named by its commit)");
			status = CMD_EXIT_NOT_FOUND;
		}
	}
	if (optind == argc)
		for (size_t i = 0; i < scan->count; i++)
			scan->units[i].chosen = true;
	return status;
}

/* What ls and rm both start with: the core opened, its cache scanned and the
 * units argv's PATHs name chosen (all of them when none); what names the
 * command in its error. Returns 0 with *status the choice's
 * (CMD_EXIT_NOT_FOUND where a PATH names nothing), or -errno with *status
 * CMD_EXIT_FAILED once the user is told why. */
static int scan_chosen(struct cmd_ctx *ctx, const char *what, struct scan *scan, int argc,
                       char **argv, int *status)
{
	struct core *core = cmd_core(ctx);
	int rc;

	if (!core) {
		/* cmd_core has said why. */
		rc = -EIO;
		*status = CMD_EXIT_FAILED;
		goto out;
	}
	rc = scan_all(scan, core);
	if (rc) {
		cmd_error(ctx, what, "cannot read the cache: %s", strerror(-rc));
		*status = CMD_EXIT_FAILED;
		goto out;
	}
	*status = choose_all(ctx, scan, argc, argv);
out:
	return rc;
}

/* ---- ls ---- */

static void partial_json(cJSON *array, const struct blob_partial_info *p)
{
	cJSON *item = cJSON_CreateObject();

	cJSON_AddStringToObject(item, "blob", p->name);
	if (p->url)
		cJSON_AddStringToObject(item, "url", p->url);
	else
		cJSON_AddNullToObject(item, "url");
	if (p->path)
		cJSON_AddStringToObject(item, "file", p->path);
	else
		cJSON_AddNullToObject(item, "file");
	cJSON_AddItemToObject(item, "bytes", cmd_json_u64(p->bytes));
	cJSON_AddItemToObject(item, "size", cmd_json_u64(p->size));
	cJSON_AddBoolToObject(item, "in_progress", p->in_progress);
	cJSON_AddItemToArray(array, item);
}

/* Under its unit u, with the file it is for (below u's folder); listed
 * apart (u NULL), with its URL. */
static void partial_text(const struct cmd_ctx *ctx, const struct blob_partial_info *p,
                         const struct unit *u)
{
	char bytes[CMD_SIZE_TEXT_MAX], size[CMD_SIZE_TEXT_MAX];
	const char *file = u ? p->path : NULL;

	if (file && rel_holds(u->rel, file) && file[strlen(u->rel)] == '/')
		file += strlen(u->rel) + 1;
	cmd_size_text(p->bytes, bytes, sizeof(bytes));
	cmd_size_text(p->size, size, sizeof(size));
	fprintf(ctx->out, "    partial %s of %s, %s: " BLOB_DIR "/%s%s%s%s%s\n", bytes,
	        p->size ? size : "?", p->in_progress ? "in progress" : "left over", p->name,
	        file ? " for " : "", file ? file : "", !u && p->url ? " from " : "",
	        !u && p->url ? p->url : "");
}

static void ls_unit(const struct cmd_ctx *ctx, const struct unit *u, int width, cJSON *entries)
{
	char bytes[CMD_SIZE_TEXT_MAX], used[32] = "-";
	uint64_t size = unit_bytes(u);
	struct tm tm;

	if (entries) {
		cJSON *item = cJSON_CreateObject();
		cJSON *parts, *refs;
		char *folder = NULL;
		cJSON_AddStringToObject(item, "path", u->id);
		cJSON_AddStringToObject(item, "hub", u->hub);
		cJSON_AddStringToObject(item, "name", u->name);
		cJSON_AddStringToObject(item, "revision", u->rev);
		refs = cJSON_AddArrayToObject(item, "refs");
		for (const char *p = u->refs; *p;) {
			size_t len = strcspn(p, ",");
			char *one = strndup(p, len);
			if (one)
				cJSON_AddItemToArray(refs, cJSON_CreateString(one));
			free(one);
			p += len + (p[len] ? 2 : 0);
		}
		cJSON_AddStringToObject(item, "cache", cache_root(u->store->cache));
		if (asprintf(&folder, "%s/%s", cache_root(u->store->cache), u->rel) >= 0) {
			cJSON_AddStringToObject(item, "folder", folder);
			free(folder);
		}
		cJSON_AddItemToObject(item, "bytes", cmd_json_u64(size));
		cJSON_AddItemToObject(item, "files", cmd_json_u64(u->nfiles_named));
		if (u->used)
			cJSON_AddNumberToObject(item, "last_used", (double)u->used);
		else
			cJSON_AddNullToObject(item, "last_used");
		parts = cJSON_AddArrayToObject(item, "partials");
		for (size_t i = 0; i < u->npartials; i++)
			partial_json(parts, u->partials[i]);
		cJSON_AddItemToArray(entries, item);
		goto out;
	}
	cmd_size_text(size, bytes, sizeof(bytes));
	if (u->used) {
		localtime_r(&u->used, &tm);
		strftime(used, sizeof(used), "%Y-%m-%d %H:%M", &tm);
	}
	/* Refs and "partial" only when there are some: no trailing spaces. */
	fprintf(ctx->out, "%-*s %10s %6" PRIu64 "  %-*s%s%s%s\n", width, u->id, bytes,
	        u->nfiles_named, u->refs[0] || u->npartials ? 16 : 0, used, u->refs[0] ? "  " : "",
	        u->refs, u->npartials ? "  partial" : "");
	for (size_t i = 0; i < u->npartials; i++)
		partial_text(ctx, u->partials[i], u);
out:
	return;
}

static const struct option cache_ls_longopts[] = {{NULL, 0, NULL, 0}};
const struct cmd_opts cmd_cache_ls_opts = {"", cache_ls_longopts};

static int cache_ls(struct cmd_ctx *ctx, int argc, char **argv)
{
	char total_text[CMD_SIZE_TEXT_MAX];
	cJSON *doc = NULL, *entries = NULL, *unnamed = NULL;
	struct scan scan = {.ctx = ctx};
	uint64_t total = 0, listed = 0;
	int c, status, width = 4;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_cache_ls_opts)) != -1) {
		status = CMD_EXIT_USAGE;
		goto out;
	}
	if (scan_chosen(ctx, "cache ls", &scan, argc, argv, &status) != 0)
		goto out;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		entries = cJSON_AddArrayToObject(doc, "entries");
	} else {
		for (size_t i = 0; i < scan.count; i++)
			if (scan.units[i].chosen && (int)strlen(scan.units[i].id) > width)
				width = (int)strlen(scan.units[i].id);
		if (width > 4)
			fprintf(ctx->out, "%-*s %10s %6s  %-16s  %s\n", width, "PATH", "SIZE",
			        "FILES", "LAST USED", "REFS");
	}
	for (size_t i = 0; i < scan.count; i++) {
		if (!scan.units[i].chosen)
			continue;
		ls_unit(ctx, &scan.units[i], width, entries);
		total += unit_bytes(&scan.units[i]);
		listed++;
	}
	/* Partial downloads no model names (their sidecar, from an older
	 * omnihub, does not say which file they are for): the whole cache
	 * only. */
	if (ctx->json)
		unnamed = cJSON_AddArrayToObject(doc, "unnamed_partials");
	for (size_t s = 0; optind == argc && s < scan.nstores; s++) {
		const struct store_lists *lists = &scan.stores[s];
		for (size_t i = 0; i < lists->nparts; i++) {
			if (lists->part_named[i])
				continue;
			if (unnamed)
				partial_json(unnamed, &lists->parts[i]);
			else
				partial_text(ctx, &lists->parts[i], NULL);
		}
	}
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "bytes", cmd_json_u64(total));
		if (cmd_print_json(ctx, doc) != CMD_EXIT_OK)
			status = CMD_EXIT_FAILED;
		doc = NULL;
	} else if (listed || optind == argc) {
		cmd_size_text(total, total_text, sizeof(total_text));
		fprintf(ctx->out, "%" PRIu64 " revision%s, %s%s\n", listed, listed == 1 ? "" : "s",
		        total_text, listed > 1 ? " (a file two of them share counts in each)" : "");
	}
out:
	cJSON_Delete(doc);
	scan_free(&scan);
	return status;
}

/* ---- rm ---- */

struct rm_run {
	struct cmd_ctx *ctx;
	bool dry_run;
	cJSON *items; /* --json */
	uint64_t units, freed, kept_open, shared, failed;
};

/* Removes the empty folders at and below rel (bottom up); a folder still
 * holding something stays. */
static void remove_empty_dirs(struct cache *cache, const char *rel, unsigned depth)
{
	struct dirent *d;
	DIR *dir;

	if (depth > 64 || !(dir = cache_opendir(cache, rel)))
		return;
	while ((d = readdir(dir)) != NULL) {
		char child[PATH_MAX];
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0 &&
		    d->d_type == DT_DIR &&
		    snprintf(child, sizeof(child), "%s/%s", rel, d->d_name) < (int)sizeof(child))
			remove_empty_dirs(cache, child, depth + 1);
	}
	closedir(dir);
	cache_unlink(cache, rel, AT_REMOVEDIR);
}

/* "  kept WHAT: WHY" (text), or into kept (--json, NULL: not listed). */
static void rm_note(struct rm_run *run, const struct unit *u, const char *kind, const char *what,
                    const char *why, cJSON *kept)
{
	if (kept) {
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "file", what);
		cJSON_AddStringToObject(item, "reason", why);
		cJSON_AddItemToArray(kept, item);
	} else if (!run->ctx->json) {
		fprintf(run->ctx->out, "  kept %s%s/%s: %s\n", kind, cache_root(u->store->cache),
		        what, why);
	}
}

/* Removes one unit: per blob, its names (and the blob when nothing else
 * names it); then plain files, left-over partials and empty folders. */
static void rm_unit(struct rm_run *run, struct unit *u)
{
	char freed_text[CMD_SIZE_TEXT_MAX];
	cJSON *item = NULL, *kept = NULL;
	uint64_t freed = 0, removed = 0;
	bool any_kept = false;
	size_t i = 0;

	if (run->items) {
		item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "path", u->id);
		kept = cJSON_AddArrayToObject(item, "kept");
	}
	if (!run->ctx->json)
		fprintf(run->ctx->out, "%s %s\n", run->dry_run ? "would remove" : "removing",
		        u->id);
	while (i < u->nfiles) {
		size_t j = i, n = 0;
		char *names[256];
		bool gone = false;
		int rc;

		/* The files of one inode: one blob, all its names here. */
		while (j < u->nfiles && compare_files(&u->files[i], &u->files[j]) == 0) {
			if (u->files[j].rel && n < sizeof(names) / sizeof(names[0]))
				names[n++] = u->files[j].rel;
			j++;
		}
		if (u->files[i].blob) {
			char blob_rel[PATH_MAX];
			snprintf(blob_rel, sizeof(blob_rel), BLOB_DIR "/%s",
			         u->files[i].blob->name);
			rc = blob_store_unname(u->store->blobs, u->files[i].blob, names, n,
			                       run->dry_run, &gone);
			if (rc == 0 && gone) {
				freed += u->files[i].size;
			} else if (rc == 0) {
				run->shared++;
				rm_note(run, u, "the blob of ", n ? names[0] : blob_rel,
				        "another name in the cache uses it", NULL);
			} else if (rc == -EBUSY) {
				run->kept_open++;
				any_kept = true;
				rm_note(run, u, "", n ? names[0] : blob_rel, "open in a mount",
				        kept);
			} else if (rc != -ENOENT) {
				run->failed++;
				any_kept = true;
				rm_note(run, u, "", n ? names[0] : blob_rel, strerror(-rc), kept);
			}
			if (rc == 0)
				removed += n;
		} else {
			/* A file of its own (extracted from an archive, made):
			 * a mount that has it open keeps reading it. */
			for (size_t k = 0; k < n; k++) {
				rc = run->dry_run ? 0 : cache_unlink(u->store->cache, names[k], 0);
				if (rc == 0 || rc == -ENOENT) {
					if (!run->dry_run)
						cache_forget(u->store->cache, names[k]);
					removed++;
				} else {
					run->failed++;
					any_kept = true;
					rm_note(run, u, "", names[k], strerror(-rc), kept);
				}
			}
			if (n)
				freed += u->files[i].size;
		}
		i = j;
	}
	for (size_t k = 0; k < u->npartials; k++) {
		const struct blob_partial_info *p = u->partials[k];
		int rc = blob_store_remove_partial(u->store->blobs, p->name, run->dry_run);
		if (rc == 0) {
			freed += p->bytes;
		} else if (rc == -EBUSY) {
			char what[PATH_MAX];
			snprintf(what, sizeof(what), BLOB_DIR "/%s.partial", p->name);
			rm_note(run, u, "", what, "a download in progress", kept);
			any_kept = true;
		}
	}
	if (!run->dry_run) {
		remove_empty_dirs(u->store->cache, u->rel, 0);
		if (!any_kept)
			cache_prune(u->store->cache, u->rel);
	}
	run->units++;
	run->freed += freed;
	cmd_size_text(freed, freed_text, sizeof(freed_text));
	if (item) {
		cJSON_AddItemToObject(item, "files", cmd_json_u64(removed));
		cJSON_AddItemToObject(item, "freed_bytes", cmd_json_u64(freed));
		cJSON_AddItemToArray(run->items, item);
	} else {
		fprintf(run->ctx->out, "  %s %" PRIu64 " file%s, %s %s\n",
		        run->dry_run ? "would remove" : "removed", removed, removed == 1 ? "" : "s",
		        run->dry_run ? "would free" : "freed", freed_text);
	}
}

static const struct option cache_rm_longopts[] = {
    {"dry-run", no_argument, NULL, 'n'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_cache_rm_opts = {"n", cache_rm_longopts};

static int cache_rm(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct rm_run run = {.ctx = ctx};
	char freed_text[CMD_SIZE_TEXT_MAX];
	struct scan scan = {.ctx = ctx};
	cJSON *doc = NULL;
	int c, status = CMD_EXIT_OK;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_cache_rm_opts)) != -1) {
		if (c != 'n') {
			status = CMD_EXIT_USAGE;
			goto out;
		}
		run.dry_run = true;
	}
	if (optind == argc) {
		status = cmd_usage_error(ctx, "cache rm",
		                         "give the PATH of what to remove "
		                         "(see 'omnihub cache ls')");
		goto out;
	}
	if (scan_chosen(ctx, "cache rm", &scan, argc, argv, &status) != 0)
		goto out;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		cJSON_AddBoolToObject(doc, "dry_run", run.dry_run);
		run.items = cJSON_AddArrayToObject(doc, "removed");
	}
	for (size_t i = 0; i < scan.count; i++)
		if (scan.units[i].chosen)
			rm_unit(&run, &scan.units[i]);
	if (run.failed && status == CMD_EXIT_OK)
		status = CMD_EXIT_FAILED;
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "freed_bytes", cmd_json_u64(run.freed));
		cJSON_AddItemToObject(doc, "kept_open", cmd_json_u64(run.kept_open));
		cJSON_AddItemToObject(doc, "kept_shared", cmd_json_u64(run.shared));
		if (cmd_print_json(ctx, doc) != CMD_EXIT_OK)
			status = CMD_EXIT_FAILED;
		doc = NULL;
	} else if (run.units) {
		cmd_size_text(run.freed, freed_text, sizeof(freed_text));
		fprintf(ctx->out, "%s %s", run.dry_run ? "would free" : "freed", freed_text);
		if (run.kept_open)
			fprintf(ctx->out, "; %" PRIu64 " file%s kept: open in a mount",
			        run.kept_open, run.kept_open == 1 ? "" : "s");
		if (run.shared)
			fprintf(ctx->out, "; %" PRIu64 " blob%s kept: named elsewhere too",
			        run.shared, run.shared == 1 ? "" : "s");
		fprintf(ctx->out, "\n");
	}
out:
	cJSON_Delete(doc);
	scan_free(&scan);
	return status;
}

/* ---- omnihub cache ---- */

int cmd_cache(struct cmd_ctx *ctx, int argc, char **argv)
{
	int status;

	/* The verb's argv starts at its name, as a subcommand's does. */
	if (argc < 2)
		status = cmd_usage_error(ctx, "cache", "give ls or rm");
	else if (strcmp(argv[1], "ls") == 0)
		status = cache_ls(ctx, argc - 1, argv + 1);
	else if (strcmp(argv[1], "rm") == 0)
		status = cache_rm(ctx, argc - 1, argv + 1);
	else
		status = cmd_usage_error(ctx, "cache", "'%s' is neither ls nor rm", argv[1]);
	return status;
}
