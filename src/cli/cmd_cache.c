/* cmd_cache.c: the omnihub subcommands that look after the cache itself:
 * du (what it holds), gc (what goes), verify (whether what it holds is
 * right), each over every store (the general cache and the hubs' own). Not for: the store's layout, locks and eviction (blob.c), or
 * fetching anything (cmd_pull.c). */
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
#include "cmd_walk.h"
#include "config.h"
#include "core.h"
#include "source.h"

/* ---- which model's file a blob is ---- */

/* A file of a store's readable tree that is a hard link to a blob (see
 * blob_link): the names are how gc and verify say which model's file a
 * blob is. */
struct tree_name {
	dev_t dev;
	ino_t ino;
	char *path; /* owned; below the store's root: "onnx/resnet18/opset-9/model.onnx" */
};

struct tree_names {
	struct tree_name *items; /* owned; sorted by (dev, ino) once collected */
	size_t count, cap;
};

static void tree_names_free(struct tree_names *names)
{
	for (size_t i = 0; i < names->count; i++)
		free(names->items[i].path);
	free(names->items);
	memset(names, 0, sizeof(*names));
}

/* What walk_files calls for each regular file: path is the file's below
 * where the walk started (NULL when the walk keeps no paths). 0, or -errno
 * to pass over the rest of that file's folder. */
typedef int walk_fn(void *arg, const char *path, const struct stat *st);

/* Calls fn for every regular file below dirfd (which it closes), not
 * following links, at most 64 folders deep. rel: dirfd's path below where
 * the walk started ("" there), or NULL to keep no paths (with paths, an
 * entry whose path is too long is passed over). skip_top: names passed
 * over at the top (NULL-ended), or NULL. */
static void walk_files(int dirfd, const char *rel, unsigned depth, const char *const *skip_top,
                       walk_fn *fn, void *arg)
{
	DIR *dir = fdopendir(dirfd);
	struct dirent *d;

	if (!dir) {
		close(dirfd);
		return;
	}
	while ((d = readdir(dir)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		bool skip = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0;

		for (size_t i = 0; depth == 0 && skip_top && skip_top[i] && !skip; i++)
			skip = strcmp(d->d_name, skip_top[i]) == 0;
		if (skip ||
		    (rel && snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "",
		                     d->d_name) >= (int)sizeof(path)) ||
		    fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			if (fn(arg, rel ? path : NULL, &st) != 0)
				break;
		} else if (S_ISDIR(st.st_mode) && depth < 64) {
			int fd = openat(dirfd, d->d_name,
			                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				walk_files(fd, rel ? path : NULL, depth + 1, skip_top, fn, arg);
		}
	}
	closedir(dir);
}

/* walk_files' fn: a file with more than one name may be a blob's name. */
static int add_name(void *arg, const char *path, const struct stat *st)
{
	struct tree_names *names = arg;
	struct tree_name *n;
	int rc = 0;

	if (st->st_nlink <= 1)
		goto out;
	if (names->count == names->cap) {
		size_t cap = names->cap ? 2 * names->cap : 64;
		struct tree_name *grown = realloc(names->items, cap * sizeof(*grown));
		if (!grown) {
			rc = -ENOMEM; /* fewer names shown, nothing worse */
			goto out;
		}
		names->items = grown;
		names->cap = cap;
	}
	n = &names->items[names->count];
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->path = strdup(path);
	if (n->path)
		names->count++;
out:
	return rc;
}

static int compare_names(const void *a, const void *b)
{
	const struct tree_name *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Every name in the readable tree of store that is a blob's. */
static void tree_names_collect(struct core_store *store, struct tree_names *names)
{
	/* The store's own folders hold no names. */
	static const char *const store_dirs[] = {BLOB_DIR, CACHE_INDEX_DIR, CACHE_QUARANTINE_DIR,
	                                         NULL};
	int fd = openat(cache_root_fd(store->cache), ".",
	                O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	tree_names_free(names);
	if (fd >= 0)
		walk_files(fd, "", 0, store_dirs, add_name, names);
	if (names->count)
		qsort(names->items, names->count, sizeof(*names->items), compare_names);
}

/* The first of blob's names (then the next ones follow it), or NULL. */
static const struct tree_name *tree_names_of(const struct tree_names *names,
                                             const struct blob_info *blob)
{
	size_t lo = 0, hi = names->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct tree_name *n = &names->items[mid];
		if (n->dev < blob->dev || (n->dev == blob->dev && n->ino < blob->ino))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < names->count && names->items[lo].dev == blob->dev &&
	    names->items[lo].ino == blob->ino)
		return &names->items[lo];
	return NULL;
}

/* Prints "; for NAME, NAME" (nothing when blob has no name), or adds the
 * array "names" to item with --json. */
static void print_names(const struct cmd_ctx *ctx, const struct tree_names *names,
                        const struct blob_info *blob, cJSON *item)
{
	const struct tree_name *n = blob->planted ? NULL : tree_names_of(names, blob);
	const struct tree_name *end = names->items + names->count;
	cJSON *array = item ? cJSON_AddArrayToObject(item, "names") : NULL;

	for (const struct tree_name *i = n; i && i < end && i->dev == n->dev && i->ino == n->ino;
	     i++) {
		if (array)
			cJSON_AddItemToArray(array, cJSON_CreateString(i->path));
		else if (!item)
			fprintf(ctx->out, "%s%s", i == n ? "; for " : ", ", i->path);
	}
}

/* ---- du ---- */

struct tree_use {
	uint64_t bytes;
	uint64_t files;
};

/* walk_files' fn: counts a file. */
static int add_use(void *arg, const char *path, const struct stat *st)
{
	struct tree_use *use = arg;

	(void)path;
	use->bytes += (uint64_t)st->st_size;
	use->files++;
	return 0;
}

/* The regular files below dirfd (which it closes), not following links. */
static void add_tree(int dirfd, struct tree_use *use)
{
	walk_files(dirfd, NULL, 0, NULL, add_use, use);
}

/* The entries moved aside into the quarantine of the store (see
 * cache_heal), and the bytes of the regular files in them: 0, or -errno
 * (-ENOENT when nothing was ever moved aside). */
static int quarantine_use(struct cache *cache, uint64_t *entries, struct tree_use *use)
{
	int fd = openat(cache_root_fd(cache), CACHE_QUARANTINE_DIR,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *d;
	DIR *dir = NULL;
	int rc = 0;

	*entries = 0;
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	dir = fdopendir(dup(fd));
	if (!dir) {
		rc = -errno;
		close(fd);
		goto out;
	}
	while ((d = readdir(dir)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			(*entries)++;
	rewinddir(dir); /* the offset is shared with fd, which add_tree reads */
	add_tree(fd, use); /* closes fd */
out:
	if (dir)
		closedir(dir);
	return rc;
}

/* One store's use: its blobs, then the readable tree of each hub in it
 * (names linked to blobs, and extracted trees). With --json, into doc, and
 * into top too unless it is NULL; each hub into hubs. */
static void du_store(struct cmd_ctx *ctx, struct core *core, struct core_store *store,
                     cJSON *doc, cJSON *top, cJSON *hubs)
{
	char bytes[CMD_SIZE_TEXT_MAX], other[CMD_SIZE_TEXT_MAX];
	struct tree_use quse = {0};
	struct blob_usage usage;
	uint64_t qentries;

	blob_store_usage(store->blobs, &usage);
	if (ctx->json) {
		for (cJSON *obj = doc; obj; obj = obj == doc ? top : NULL) {
			cJSON_AddStringToObject(obj, "cache", cache_root(store->cache));
			cJSON_AddItemToObject(obj, "bytes", cmd_json_u64(usage.bytes));
			cJSON_AddItemToObject(obj, "blobs", cmd_json_u64(usage.blobs));
			cJSON_AddItemToObject(obj, "partial_bytes",
			                      cmd_json_u64(usage.partial_bytes));
			cJSON_AddItemToObject(obj, "partials", cmd_json_u64(usage.partials));
			cJSON_AddItemToObject(obj, "max", usage.max ? cmd_json_u64(usage.max)
			                                            : cJSON_CreateNull());
		}
	} else {
		cmd_size_text(usage.bytes, bytes, sizeof(bytes));
		fprintf(ctx->out, "cache     %s\n", cache_root(store->cache));
		fprintf(ctx->out, "blobs     %s in %" PRIu64 " file%s\n", bytes, usage.blobs,
		        usage.blobs == 1 ? "" : "s");
		cmd_size_text(usage.partial_bytes, bytes, sizeof(bytes));
		fprintf(ctx->out, "partial   %s in %" PRIu64 " download%s\n", bytes, usage.partials,
		        usage.partials == 1 ? "" : "s");
		cmd_size_text(usage.max, other, sizeof(other));
		fprintf(ctx->out, "limit     %s\n", usage.max ? other : "none");
	}
	/* Apart from the blobs: never evicted nor collected, a person's to
	 * look at and delete. */
	if (quarantine_use(store->cache, &qentries, &quse) == 0) {
		if (ctx->json) {
			for (cJSON *obj = doc; obj; obj = obj == doc ? top : NULL) {
				cJSON *q = cJSON_AddObjectToObject(obj, "quarantine");
				cJSON_AddItemToObject(q, "entries", cmd_json_u64(qentries));
				cJSON_AddItemToObject(q, "bytes", cmd_json_u64(quse.bytes));
			}
		} else if (qentries) {
			cmd_size_text(quse.bytes, bytes, sizeof(bytes));
			fprintf(ctx->out,
			        "quarantine %s in %" PRIu64 " entr%s moved aside (%s/" CACHE_QUARANTINE_DIR
			        ")\n",
			        bytes, qentries, qentries == 1 ? "y" : "ies", cache_root(store->cache));
		}
	}
	for (size_t i = 0; i < core_hub_count(core); i++) {
		const char *name = core_hub_name(core, i);
		struct tree_use use = {0};
		int fd;

		if (core_store_named(core, name) != store)
			continue;
		fd = openat(cache_root_fd(store->cache), name,
		            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			add_tree(fd, &use);
		if (ctx->json) {
			cJSON *hub = cJSON_AddObjectToObject(hubs, name);
			cJSON_AddStringToObject(hub, "cache", cache_root(store->cache));
			cJSON_AddItemToObject(hub, "bytes", cmd_json_u64(use.bytes));
			cJSON_AddItemToObject(hub, "files", cmd_json_u64(use.files));
		} else if (use.files) {
			cmd_size_text(use.bytes, bytes, sizeof(bytes));
			fprintf(ctx->out, "%-9s %s in %" PRIu64 " file%s\n", name, bytes, use.files,
			        use.files == 1 ? "" : "s");
		}
	}
}

static const struct option du_longopts[] = {{NULL, 0, NULL, 0}};
const struct cmd_opts cmd_du_opts = {"", du_longopts};

int cmd_du(struct cmd_ctx *ctx, int argc, char **argv)
{
	cJSON *doc = NULL, *hubs = NULL, *stores = NULL;
	struct core *core;
	int c;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_du_opts)) != -1)
		return CMD_EXIT_USAGE;
	if (optind < argc)
		return cmd_usage_error(ctx, argv[0], "takes no argument ('%s' given)",
		                       argv[optind]);
	core = cmd_core(ctx);
	if (!core)
		return CMD_EXIT_FAILED;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		hubs = cJSON_AddObjectToObject(doc, "hubs");
		stores = cJSON_AddArrayToObject(doc, "stores");
	}
	/* The general cache first (at the top of the JSON too), then each
	 * directory hubs have of their own, with its hubs. */
	for (size_t i = 0; i < core_store_count(core); i++) {
		cJSON *one = NULL;

		if (ctx->json) {
			one = cJSON_CreateObject();
			cJSON_AddItemToArray(stores, one);
		} else if (i > 0) {
			fprintf(ctx->out, "\n");
		}
		du_store(ctx, core, core_store(core, i), one, i == 0 ? doc : NULL, hubs);
	}
	return ctx->json ? cmd_print_json(ctx, doc) : CMD_EXIT_OK;
}

/* ---- gc ---- */

struct gc_run {
	struct cmd_ctx *ctx;
	const char *root;
	struct tree_names names; /* of the store being collected */
	bool dry_run;
	cJSON *removed, *kept; /* --json */
	uint64_t nremoved, nkept;
};

static void gc_report(void *arg, const struct blob_info *blob, int rc)
{
	struct gc_run *run = arg;
	char size[CMD_SIZE_TEXT_MAX], used[32];
	struct tm tm;

	if (rc == 0)
		run->nremoved++;
	else
		run->nkept++;
	if (run->ctx->json) {
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "cache", run->root);
		cJSON_AddStringToObject(item, "blob", blob->name);
		cJSON_AddItemToObject(item, "bytes", cmd_json_u64(blob->size));
		cJSON_AddNumberToObject(item, "last_used", (double)blob->used.tv_sec);
		if (rc)
			cJSON_AddStringToObject(item, "reason",
			                        rc == -EBUSY ? "open in a mount" : strerror(-rc));
		print_names(run->ctx, &run->names, blob, item);
		cJSON_AddItemToArray(rc == 0 ? run->removed : run->kept, item);
		return;
	}
	cmd_size_text(blob->size, size, sizeof(size));
	localtime_r(&blob->used.tv_sec, &tm);
	strftime(used, sizeof(used), "%Y-%m-%d %H:%M", &tm);
	if (rc == 0 && blob->planted) /* never deleted: see cache_heal */
		fprintf(run->ctx->out, "%s %s/" BLOB_DIR "/%s to %s/" CACHE_QUARANTINE_DIR
		        " (not a file)",
		        run->dry_run ? "would move aside" : "moved aside", run->root, blob->name,
		        run->root);
	else if (rc == 0)
		fprintf(run->ctx->out, "%s %s/" BLOB_DIR "/%s (%s, last used %s)",
		        run->dry_run ? "would remove" : "removed", run->root, blob->name, size,
		        used);
	else
		fprintf(run->ctx->out, "kept %s/" BLOB_DIR "/%s (%s): %s", run->root, blob->name,
		        size, rc == -EBUSY ? "open in a mount" : strerror(-rc));
	print_names(run->ctx, &run->names, blob, NULL);
	fprintf(run->ctx->out, "\n");
}

/* Whether a cache_max is set, the general one or a hub's own. */
static bool any_limit(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nhub_settings; i++)
		if (strcmp(cfg->hub_settings[i].name, "cache_max") == 0 &&
		    config_hub_cache_max(cfg, cfg->hub_settings[i].hub))
			return true;
	return cfg->cache_max != 0;
}

enum { OPT_MAX = 256, OPT_OLDER };
static const struct option gc_longopts[] = {
    {"max", required_argument, NULL, OPT_MAX},
    {"older", required_argument, NULL, OPT_OLDER},
    {"dry-run", no_argument, NULL, 'n'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_gc_opts = {"n", gc_longopts};

int cmd_gc(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct blob_gc gc = {.max = UINT64_MAX};
	struct gc_run run = {.ctx = ctx};
	char freed_text[CMD_SIZE_TEXT_MAX], left_text[CMD_SIZE_TEXT_MAX];
	uint64_t freed = 0, left = 0, max = 0;
	bool max_given = false;
	struct core *core;
	cJSON *doc = NULL;
	char *end;
	double days;
	int c, rc;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_gc_opts)) != -1) {
		switch (c) {
		case OPT_MAX:
			if (config_parse_size(optarg, &max) != 0)
				return cmd_usage_error(ctx, argv[0],
				                       "--max takes a size (123, 4K, 5M, 6G, 1T), "
				                       "not '%s'",
				                       optarg);
			max_given = true;
			break;
		case OPT_OLDER:
			errno = 0;
			days = strtod(optarg, &end);
			/* !(0 <= days <= 100000) refuses NaN as well as the
			 * infinities and what is negative or overflows. */
			if (errno || end == optarg || *end || !(days >= 0 && days <= 100000))
				return cmd_usage_error(ctx, argv[0],
				                       "--older takes a number of days from 0 to "
				                       "100000 (0.5 is 12 hours), not '%s'",
				                       optarg);
			gc.unused_before = time(NULL) - (time_t)(days * 86400);
			break;
		case 'n':
			gc.dry_run = true;
			break;
		default:
			return CMD_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, argv[0], "takes no argument ('%s' given)",
		                       argv[optind]);
	if (!max_given && !any_limit(ctx->cfg) && !gc.unused_before)
		return cmd_usage_error(ctx, argv[0],
		                       "nothing to do: give --max or --older (or set cache_max)");
	core = cmd_core(ctx);
	if (!core)
		return CMD_EXIT_FAILED;
	run.dry_run = gc.dry_run;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		cJSON_AddBoolToObject(doc, "dry_run", gc.dry_run);
		run.removed = cJSON_AddArrayToObject(doc, "removed");
		run.kept = cJSON_AddArrayToObject(doc, "kept");
	}
	gc.report = gc_report;
	gc.ctx = &run;
	/* Each store on its own: --max is each one's limit, else its
	 * cache_max; a store with neither is only cleaned by --older. */
	for (size_t i = 0; i < core_store_count(core); i++) {
		struct core_store *store = core_store(core, i);
		uint64_t freed_here = 0, left_here = 0;

		gc.max = max_given ? max : store->max ? store->max : UINT64_MAX;
		run.root = cache_root(store->cache);
		if (gc.max == UINT64_MAX && !gc.unused_before)
			continue;
		/* Before gc: the names go with their blob. */
		tree_names_collect(store, &run.names);
		rc = blob_store_gc(store->blobs, &gc, &freed_here, &left_here);
		if (rc) {
			tree_names_free(&run.names);
			cJSON_Delete(doc);
			cmd_error(ctx, run.root, "%s", strerror(-rc));
			return CMD_EXIT_FAILED;
		}
		freed += freed_here;
		left += left_here;
	}
	tree_names_free(&run.names);
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "freed_bytes", cmd_json_u64(freed));
		cJSON_AddItemToObject(doc, "left_bytes", cmd_json_u64(left));
		return cmd_print_json(ctx, doc);
	}
	cmd_size_text(freed, freed_text, sizeof(freed_text));
	cmd_size_text(left, left_text, sizeof(left_text));
	fprintf(ctx->out, "%s %s in %" PRIu64 " blob%s; %s left",
	        gc.dry_run ? "would free" : "freed", freed_text, run.nremoved,
	        run.nremoved == 1 ? "" : "s", left_text);
	if (run.nkept)
		fprintf(ctx->out, " (%" PRIu64 " in use kept)", run.nkept);
	fprintf(ctx->out, "\n");
	return CMD_EXIT_OK;
}

/* ---- verify ---- */

struct verify_run {
	struct cmd_ctx *ctx;
	struct core *core;
	struct core_store *store; /* the one being checked */
	struct tree_names names;  /* of store, when every blob is checked */
	bool remove;
	cJSON *bad, *absent; /* --json */
	uint64_t checked, good, nbad, removed, unchecked, nabsent;
};

/* Hashes one blob against what it must hold; label names it for people. */
static int verify_blob(struct verify_run *run, const struct blob_info *blob,
                       const struct digest_spec *expected, const char *label)
{
	char actual[DIGEST_HEX_MAX], want[DIGEST_HEX_MAX + 32], where[PATH_MAX];
	char aside[PATH_MAX + 32];
	const char *root = cache_root(run->store->cache);
	const char *fate = NULL;
	bool gone = false;
	int rc;

	if (!blob->planted && !digest_spec_verifies(expected)) {
		run->unchecked++; /* its hub publishes no digest */
		return 0;
	}
	rc = blob_rehash(run->store->blobs, blob, expected, actual);
	if (rc == -ENOENT)
		return 0; /* evicted meanwhile */
	if (rc && rc != -EBADMSG) {
		cmd_error(run->ctx, label, "cannot read %s/" BLOB_DIR "/%s: %s", root, blob->name,
		          strerror(-rc));
		return rc;
	}
	run->checked++;
	if (rc == 0) {
		run->good++;
		return 0;
	}
	run->nbad++;
	digest_spec_format(expected, want, sizeof(want));
	if (blob->planted) /* a link, FIFO, directory... planted at its name */
		snprintf(actual, sizeof(actual), "not a file");
	snprintf(where, sizeof(where), "%s/" BLOB_DIR "/%s", root, blob->name);
	if (run->remove) {
		rc = blob_store_remove(run->store->blobs, blob, false);
		if (rc == 0 || rc == -ENOENT) {
			run->removed++;
			gone = true;
			/* What a person may have put there is never deleted: it
			 * was moved aside (cache_heal), and we say where. */
			snprintf(aside, sizeof(aside), "moved aside to %s/" CACHE_QUARANTINE_DIR,
			         root);
			fate = blob->planted ? aside : "removed";
		} else {
			fate = rc == -EBUSY ? "kept: open in a mount" : strerror(-rc);
		}
	}
	if (run->ctx->json) {
		cJSON *item = cJSON_CreateObject();
		char got[DIGEST_HEX_MAX + 32];
		snprintf(got, sizeof(got), "%s:%s", digest_algo_name(expected->algo), actual);
		cJSON_AddStringToObject(item, "path", label);
		cJSON_AddStringToObject(item, "blob", where);
		cJSON_AddStringToObject(item, "expected", want);
		cJSON_AddStringToObject(item, "actual", got);
		cJSON_AddBoolToObject(item, "removed", gone);
		if (gone && blob->planted)
			cJSON_AddStringToObject(item, "moved_aside", aside + strlen("moved aside to "));
		print_names(run->ctx, &run->names, blob, item);
		cJSON_AddItemToArray(run->bad, item);
	} else {
		fprintf(run->ctx->out, "bad %s: holds %s%s%s, not %s%s%s%s", label,
		        blob->planted ? "" : digest_algo_name(expected->algo),
		        blob->planted ? "" : ":", actual, want, fate ? " (" : "", fate ? fate : "",
		        fate ? ")" : "");
		print_names(run->ctx, &run->names, blob, NULL);
		fprintf(run->ctx->out, "\n");
	}
	return 0;
}

static int verify_path(void *arg, struct hub *hub, const char *path, const char *label,
                       const struct entry *entry)
{
	struct verify_run *run = arg;
	struct blob_info blob;
	struct source src;
	int rc;

	(void)entry;
	rc = hub->ops->source(hub, path, &src);
	if (rc) {
		cmd_error(run->ctx, label, "%s", strerror(-rc));
		return rc;
	}
	/* The downloaded bytes, whatever is made of them, in the hub's store. */
	run->store = core_store_of(run->core, hub);
	if (blob_store_find(run->store->blobs, &src.digest, &blob) != 0) {
		run->nabsent++;
		if (run->ctx->json)
			cJSON_AddItemToArray(run->absent, cJSON_CreateString(label));
		else
			fprintf(run->ctx->out, "not cached %s\n", label);
		rc = 0;
	} else {
		rc = verify_blob(run, &blob, &src.digest, label);
	}
	source_clear(&src);
	return rc;
}

static int verify_store(struct verify_run *run)
{
	const char *root = cache_root(run->store->cache);
	struct blob_info *blobs = NULL;
	size_t count = 0;
	int rc, first = 0;

	rc = blob_store_list(run->store->blobs, &blobs, &count);
	if (rc) {
		cmd_error(run->ctx, root, "cannot list the blobs: %s", strerror(-rc));
		return rc;
	}
	tree_names_collect(run->store, &run->names); /* before --remove takes any */
	for (size_t i = 0; i < count; i++) {
		struct digest_spec expected;
		char label[PATH_MAX];

		snprintf(label, sizeof(label), "%s/" BLOB_DIR "/%s", root, blobs[i].name);
		if (blob_expected_digest(run->store->blobs, &blobs[i], &expected) != 0) {
			run->unchecked++; /* a keyed blob with no stamp left */
			continue;
		}
		rc = verify_blob(run, &blobs[i], &expected, label);
		if (rc && !first)
			first = rc;
	}
	tree_names_free(&run->names);
	free(blobs);
	return first;
}

static const struct option verify_longopts[] = {
    {"remove", no_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};
const struct cmd_opts cmd_verify_opts = {"", verify_longopts};

int cmd_verify(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct verify_run run = {.ctx = ctx};
	cJSON *doc = NULL;
	int c, rc = 0;

	while ((c = cmd_getopt(ctx, argc, argv, &cmd_verify_opts)) != -1) {
		if (c != 'r')
			return CMD_EXIT_USAGE;
		run.remove = true;
	}
	run.core = cmd_core(ctx);
	if (!run.core)
		return CMD_EXIT_FAILED;
	if (ctx->json) {
		doc = cJSON_CreateObject();
		run.bad = cJSON_AddArrayToObject(doc, "bad");
		run.absent = cJSON_AddArrayToObject(doc, "not_cached");
	}
	if (optind == argc) {
		for (size_t i = 0; i < core_store_count(run.core); i++) {
			int one;
			run.store = core_store(run.core, i);
			one = verify_store(&run);
			if (one && !rc)
				rc = one;
		}
	} else {
		for (int i = optind; i < argc; i++) {
			int one = cmd_walk(ctx, argv[i], verify_path, &run);
			if (one && (!rc || one == -ENOENT))
				rc = one;
		}
	}
	if (ctx->json) {
		cJSON_AddItemToObject(doc, "checked", cmd_json_u64(run.checked));
		cJSON_AddItemToObject(doc, "good", cmd_json_u64(run.good));
		cJSON_AddItemToObject(doc, "removed", cmd_json_u64(run.removed));
		cJSON_AddItemToObject(doc, "unchecked", cmd_json_u64(run.unchecked));
		if (cmd_print_json(ctx, doc) != CMD_EXIT_OK)
			return CMD_EXIT_FAILED;
	} else {
		fprintf(ctx->out, "checked %" PRIu64 " file%s: %" PRIu64 " good, %" PRIu64 " bad",
		        run.checked, run.checked == 1 ? "" : "s", run.good, run.nbad);
		if (run.remove)
			fprintf(ctx->out, " (%" PRIu64 " removed)", run.removed);
		if (run.unchecked)
			fprintf(ctx->out, "; %" PRIu64 " without a digest to check", run.unchecked);
		if (run.nabsent)
			fprintf(ctx->out, "; %" PRIu64 " not cached", run.nabsent);
		fprintf(ctx->out, "\n");
	}
	if (run.nbad && !run.remove && !ctx->json)
		cmd_error(ctx, argv[0], "%" PRIu64 " wrong file%s kept (omnihub verify --remove%s "
		          "removes %s)",
		          run.nbad, run.nbad == 1 ? "" : "s", argc > optind ? " PATH..." : "",
		          run.nbad == 1 ? "it" : "them");
	if (run.nbad)
		return CMD_EXIT_CORRUPT;
	return rc ? cmd_exit_of(rc) : CMD_EXIT_OK;
}
