/* core.c: one session over the hubs, shared by the mount (fs.c) and the
 * omnihub command: the stores (a cache with its blob store, transfers and
 * downloads), the fetcher, the catalogs and the hubs, each hub opened only
 * when first asked for. Not for: FUSE (fs.c) or a command line (main.c,
 * omnihub.c). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "budget.h"
#include "cache.h"
#include "cachefs.h"
#include "catalog.h"
#include "config.h"
#include "core.h"
#include "download.h"
#include "fetch.h"
#include "hub_catalog.h"
#include "log.h"
#include "metrics.h"
#include "transfer.h"

/* A hub this session may open: a registry entry, or one catalog hub. */
struct candidate {
	const struct hub_ops *ops;
	const char *name;  /* borrowed: ops->name or the catalogs' */
	int rc;            /* 1: not opened yet; 0: open; -errno: cannot */
	char *why;         /* owned; why it cannot open, as the hub said */
	struct hub *hub;   /* in core->hubs, once open */
	struct core_store *store; /* in core->stores: where its files go */
};

struct core {
	const struct config *config; /* borrowed */
	struct core_store *stores;   /* owned; the general one first, then one
					per directory of a hub's own; room for
					one per candidate, never moved */
	size_t nstores;
	struct metrics *metrics;     /* counted by the fetcher, the transfers
					and the downloads */
	struct budgets *budgets;     /* the hubs' request budgets per host */
	struct fetcher *fetcher;
	struct catalog_set *catalogs; /* for the hubs made from catalogs */
	pthread_mutex_t hubs_lock;   /* guards the candidates and hubs */
	struct candidate *candidates; /* owned */
	size_t ncandidates;
	struct hub *hubs; /* owned; the open ones, in the order they opened,
			     never moved (room for every candidate) */
	size_t nhubs;
	bool shut_down;
};

static int add_candidates(struct core *core)
{
	size_t n = 0;

	for (size_t i = 0; i < hub_registry_count; i++)
		n += hub_registry[i]->flags & HUB_FROM_CATALOGS ? core->catalogs->nhubs : 1;
	core->candidates = calloc(n ? n : 1, sizeof(*core->candidates));
	core->hubs = calloc(n ? n : 1, sizeof(*core->hubs));
	if (!core->candidates || !core->hubs)
		return -ENOMEM;
	for (size_t i = 0; i < hub_registry_count; i++) {
		const struct hub_ops *ops = hub_registry[i];
		size_t count = ops->flags & HUB_FROM_CATALOGS ? core->catalogs->nhubs : 1;

		for (size_t c = 0; c < count; c++) {
			struct candidate *cand = &core->candidates[core->ncandidates++];
			cand->ops = ops;
			cand->name = ops->flags & HUB_FROM_CATALOGS ? core->catalogs->hubs[c].name
								  : ops->name;
			cand->rc = 1;
		}
	}
	return 0;
}

/* The config's [hub] sections, now that the catalogs' hubs are known. */
static int check_sections(struct core *core, char *why, size_t why_size)
{
	const char **names = calloc(core->ncandidates + 1, sizeof(*names));
	int rc;

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < core->ncandidates; i++)
		names[i] = core->candidates[i].name;
	rc = config_check_sections(core->config, names, core->ncandidates, why, why_size);
	free(names);
	return rc;
}

/* Whether two directories as the config names them are one: a trailing
 * '/' aside. */
static bool same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

/* Opens the next store, on dir under the limit max: its cache (swept),
 * blob store, transfers and downloads. */
static int store_open(struct core *core, const char *dir, uint64_t max, char *why,
		      size_t why_size)
{
	const struct config *cfg = core->config;
	struct core_store *st = &core->stores[core->nstores++];
	const char *cache_why;
	int rc;

	snprintf(why, why_size, "out of memory");
	st->max = max;
	st->dir = strdup(dir);
	if (!st->dir)
		return -ENOMEM;
	rc = cache_open(&st->cache, dir, &cache_why);
	if (rc) {
		snprintf(why, why_size, "cannot use the cache directory %s: %s", dir, cache_why);
		return rc;
	}
	/* Before the sweep, which takes the same locks to judge what is left. */
	rc = cachefs_check_locks(st->cache, why, why_size);
	if (rc)
		return rc;
	rc = blob_store_open(&st->blobs, st->cache, max);
	if (rc)
		return rc;
	/* Before any transfer: what a crash left is kept or cleared now. */
	blob_store_sweep(st->blobs);
	struct transfer_options options = {
		.connections = cfg->connections,
		.piece_size = cfg->piece_size,
		.retries = cfg->retries,
		.stall_seconds = (long)cfg->stall_timeout,
		.retry_seconds = (long)cfg->retry_time,
		.memory_max = cfg->memory_max,
		.mirrors = &cfg->mirrors,
	};
	rc = transfer_engine_new(&st->engine, core->fetcher, st->blobs, &options);
	if (rc)
		return rc;
	transfer_engine_set_metrics(st->engine, core->metrics);
	struct download_options download_options = {
		.offline = cfg->offline,
		.limits = stage_default_limits,
		.convert_timeout = hub_catalog_convert_timeout(cfg),
	};
	download_options.limits.max_ratio = cfg->max_unpack_ratio;
	download_options.limits.max_bytes = cfg->max_unpack_size;
	rc = download_set_new(&st->downloads, st->cache, st->blobs, st->engine,
			      &download_options);
	if (rc)
		return rc;
	download_set_set_metrics(st->downloads, core->metrics);
	st->env = (struct hub_env){ .config = cfg,
				    .fetcher = core->fetcher,
				    .cache = st->cache,
				    .budgets = core->budgets };
	return 0;
}

/* The limit of a directory of hubs' own: the one its hubs set (0: none);
 * two hubs that set two are refused. */
static int store_limit(struct core *core, const char *dir, uint64_t *max, char *why,
		       size_t why_size)
{
	const char *first = NULL;

	*max = 0;
	for (size_t i = 0; i < core->ncandidates; i++) {
		const char *name = core->candidates[i].name;
		uint64_t one = config_hub_cache_max(core->config, name);
		if (!same_dir(config_hub_cache(core->config, name), dir) || !one)
			continue;
		if (*max && one != *max) {
			snprintf(why, why_size,
				 "[%s] and [%s] share the cache %s but set two cache_max: set one",
				 first, name, dir);
			return -EINVAL;
		}
		*max = one;
		first = name;
	}
	return 0;
}

/* Gives every candidate its store: the general one, or the one of the
 * directory its [hub] section names, opened here once per directory. */
static int open_hub_stores(struct core *core, char *why, size_t why_size)
{
	const struct config *cfg = core->config;
	int rc;

	for (size_t i = 0; i < core->ncandidates; i++) {
		struct candidate *cand = &core->candidates[i];
		const char *dir = config_hub_cache(cfg, cand->name);
		uint64_t max;

		cand->store = NULL;
		for (size_t j = 0; j < core->nstores && !cand->store; j++)
			if (same_dir(dir, core->stores[j].dir))
				cand->store = &core->stores[j];
		/* A hub naming the general cache shares it, and its limit. */
		if (cand->store == &core->stores[0] && config_hub_cache_max(cfg, cand->name) &&
		    config_hub_cache_max(cfg, cand->name) != cfg->cache_max) {
			snprintf(why, why_size,
				 "[%s]: its cache %s is the general cache, whose limit is the "
				 "general cache_max",
				 cand->name, dir);
			return -EINVAL;
		}
		if (cand->store)
			continue;
		rc = store_limit(core, dir, &max, why, why_size);
		if (rc == 0)
			rc = store_open(core, dir, max, why, why_size);
		if (rc)
			return rc;
		cand->store = &core->stores[core->nstores - 1];
	}
	return 0;
}

int core_new(struct core **out, const struct config *cfg, char *why, size_t why_size)
{
	struct core *core;
	int rc;

	*out = NULL;
	snprintf(why, why_size, "out of memory");
	core = calloc(1, sizeof(*core));
	if (!core)
		return -ENOMEM;
	core->config = cfg;
	pthread_mutex_init(&core->hubs_lock, NULL);
	rc = budgets_new(&core->budgets);
	if (rc)
		goto out;
	rc = metrics_new(&core->metrics);
	if (rc)
		goto out;
	rc = fetcher_new(&core->fetcher, cfg->cacert);
	if (rc)
		goto out;
	fetcher_set_metrics(core->fetcher, core->metrics);
	/* https_proxy and its kin are libcurl's to read, per scheme. */
	rc = fetcher_set_proxy(core->fetcher, cfg->proxy_from_env ? NULL : cfg->proxy);
	if (rc)
		goto out;
	/* The general store first: room for one more per hub is made once the
	 * catalogs say how many hubs there are. */
	core->stores = calloc(1, sizeof(*core->stores));
	rc = core->stores ? store_open(core, cfg->cache_dir, cfg->cache_max, why, why_size)
			  : -ENOMEM;
	if (rc)
		goto out;
	rc = hub_catalog_load(cfg, &core->catalogs, why, why_size);
	if (rc)
		goto out;
	rc = add_candidates(core);
	if (rc)
		goto out;
	rc = check_sections(core, why, why_size);
	if (rc)
		goto out;
	{
		struct core_store *grown =
		    realloc(core->stores, (core->ncandidates + 1) * sizeof(*grown));
		rc = -ENOMEM;
		if (!grown)
			goto out;
		core->stores = grown;
		memset(grown + 1, 0, core->ncandidates * sizeof(*grown));
		/* Moved: its env is lent to no hub yet. */
		grown[0].env.catalogs = core->catalogs;
	}
	rc = open_hub_stores(core, why, why_size);
	if (rc)
		goto out;
	for (size_t i = 0; i < core->nstores; i++)
		core->stores[i].env.catalogs = core->catalogs;
	*out = core;
	core = NULL;
	why[0] = '\0';
out:
	core_free(core);
	return rc;
}

void core_shutdown(struct core *core)
{
	if (!core || core->shut_down)
		return;
	core->shut_down = true;
	for (size_t i = 0; i < core->nstores; i++)
		transfer_engine_shutdown(core->stores[i].engine);
	for (size_t i = 0; i < core->nstores; i++)
		if (core->stores[i].downloads) /* their waiters are answered now */
			download_set_drain(core->stores[i].downloads);
}

void core_free(struct core *core)
{
	if (!core)
		return;
	/* Transfers stop first, their waiters answered; then the jobs that
	 * waited on them end, and nothing uses the caches or the fetcher. */
	for (size_t i = 0; i < core->nstores; i++)
		transfer_engine_shutdown(core->stores[i].engine);
	for (size_t i = 0; i < core->nstores; i++) {
		download_set_free(core->stores[i].downloads);
		transfer_engine_free(core->stores[i].engine);
	}
	for (size_t i = 0; i < core->nhubs; i++)
		core->hubs[i].ops->close(&core->hubs[i]);
	free(core->hubs);
	for (size_t i = 0; i < core->ncandidates; i++)
		free(core->candidates[i].why);
	free(core->candidates);
	hub_catalog_unload(core->catalogs);
	fetcher_free(core->fetcher);
	budgets_free(core->budgets);
	metrics_free(core->metrics);
	for (size_t i = 0; i < core->nstores; i++) {
		blob_store_close(core->stores[i].blobs);
		cache_close(core->stores[i].cache);
		free(core->stores[i].dir);
	}
	free(core->stores);
	pthread_mutex_destroy(&core->hubs_lock);
	free(core);
}

const struct config *core_config(const struct core *core)
{
	return core->config;
}

size_t core_store_count(const struct core *core)
{
	return core->nstores;
}

struct core_store *core_store(struct core *core, size_t i)
{
	return i < core->nstores ? &core->stores[i] : NULL;
}

struct core_store *core_store_of(struct core *core, const struct hub *hub)
{
	for (size_t i = 0; hub && i < core->nstores; i++)
		if (hub->env == &core->stores[i].env)
			return &core->stores[i];
	return &core->stores[0];
}

struct core_store *core_store_named(struct core *core, const char *hub)
{
	for (size_t i = 0; hub && i < core->ncandidates; i++)
		if (strcmp(core->candidates[i].name, hub) == 0)
			return core->candidates[i].store;
	return &core->stores[0];
}

struct cache *core_cache(struct core *core)
{
	return core->stores[0].cache;
}

struct blob_store *core_blobs(struct core *core)
{
	return core->stores[0].blobs;
}

struct transfer_engine *core_engine(struct core *core)
{
	return core->stores[0].engine;
}

struct download_set *core_downloads(struct core *core)
{
	return core->stores[0].downloads;
}

struct metrics *core_metrics(struct core *core)
{
	return core->metrics;
}

size_t core_hub_count(const struct core *core)
{
	return core->ncandidates;
}

const char *core_hub_name(const struct core *core, size_t i)
{
	return i < core->ncandidates ? core->candidates[i].name : NULL;
}

void core_on_index_changed(struct core *core, void (*fn)(void *ctx, struct hub *hub), void *ctx)
{
	for (size_t i = 0; i < core->nstores; i++) {
		core->stores[i].env.index_changed = fn;
		core->stores[i].env.index_changed_ctx = ctx;
	}
}

/* Opens one candidate into the next free slot of core->hubs; under
 * hubs_lock. Its index may be fetched: the command opens one hub, the
 * mount all of them before it serves anything. */
static int open_candidate_locked(struct core *core, struct candidate *cand)
{
	struct hub *hub = &core->hubs[core->nhubs];
	char hub_why[512];

	if (cand->rc <= 0)
		return cand->rc;
	hub->ops = cand->ops;
	hub->env = &cand->store->env;
	hub->name = cand->name;
	hub->offline = config_hub_offline(core->config, cand->name);
	hub->index_ttl = config_hub_index_ttl(core->config, cand->name);
	if (hub->ops->open(hub, hub_why, sizeof(hub_why)) == 0) {
		cand->rc = 0;
		cand->hub = hub;
		core->nhubs++;
		return 0;
	}
	memset(hub, 0, sizeof(*hub));
	cand->rc = -EIO;
	cand->why = strdup(hub_why);
	return cand->rc;
}

int core_hub(struct core *core, const char *name, struct hub **out, char *why, size_t why_size)
{
	struct candidate *cand = NULL;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < core->ncandidates && !cand; i++)
		if (strcmp(core->candidates[i].name, name) == 0)
			cand = &core->candidates[i];
	if (!cand) {
		snprintf(why, why_size, "no hub is named '%s'", name);
		return -ENOENT;
	}
	pthread_mutex_lock(&core->hubs_lock);
	rc = open_candidate_locked(core, cand);
	if (rc == 0)
		*out = cand->hub;
	else
		snprintf(why, why_size, "%s hub: %s", name, cand->why ? cand->why : "cannot open");
	pthread_mutex_unlock(&core->hubs_lock);
	return rc;
}

int core_open_all(struct core *core, struct hub **hubs, size_t *nhubs, char *why,
		  size_t why_size)
{
	const struct candidate *last = NULL;

	pthread_mutex_lock(&core->hubs_lock);
	for (size_t i = 0; i < core->ncandidates; i++) {
		struct candidate *cand = &core->candidates[i];

		if (open_candidate_locked(core, cand) == 0)
			continue;
		last = cand;
		if (core->ncandidates > 1) /* else the mount fails with why */
			log_error("%s hub left out: %s", cand->name,
				  cand->why ? cand->why : "cannot open");
	}
	*hubs = core->hubs;
	*nhubs = core->nhubs;
	if (core->nhubs == 0 && last)
		snprintf(why, why_size, "%s hub: %s", last->name, last->why ? last->why : "cannot open");
	else if (core->nhubs == 0)
		snprintf(why, why_size, "no hub to open");
	pthread_mutex_unlock(&core->hubs_lock);
	return core->nhubs ? 0 : -EIO;
}

int core_resolve(struct core *core, const char *path, struct hub **hub, const char **rest,
		 char *why, size_t why_size)
{
	char name[256];
	size_t len = strcspn(path, "/");

	*hub = NULL;
	*rest = NULL;
	if (len == 0 || len >= sizeof(name)) {
		snprintf(why, why_size, "'%s' names no hub", path);
		return -ENOENT;
	}
	memcpy(name, path, len);
	name[len] = '\0';
	*rest = path[len] == '/' ? path + len + 1 : path + len;
	return core_hub(core, name, hub, why, why_size);
}

int core_source(struct core *core, struct hub *hub, const char *path, struct source *out)
{
	int rc = hub->ops->source(hub, path, out);

	if (rc)
		return rc;
	/* A [hub] section of the config may hold this hub alone offline, or
	 * give it its own number of connections. */
	out->offline = out->offline || config_hub_offline(core->config, hub->name);
	out->connections = config_hub_connections(core->config, hub->name);
	return 0;
}

int core_ensure(struct core *core, struct hub *hub, const char *path)
{
	char label[4096];
	struct source src;
	int rc;

	rc = core_source(core, hub, path, &src);
	if (rc)
		return rc;
	snprintf(label, sizeof(label), "%s%s%s", hub->name, path[0] ? "/" : "", path);
	rc = download_ensure(core_store_of(core, hub)->downloads, &src, label);
	source_clear(&src);
	return rc;
}

int core_cached(struct core *core, struct hub *hub, const char *path, bool *present,
		char **where)
{
	struct source src;
	int rc;

	*present = false;
	if (where)
		*where = NULL;
	rc = core_source(core, hub, path, &src);
	if (rc)
		return rc;
	*present = download_is_present(core_store_of(core, hub)->downloads, &src);
	if (*present && where &&
	    asprintf(where, "%s/%s", cache_root(core_store_of(core, hub)->cache),
		     src.cache_path) < 0) {
		*where = NULL;
		rc = -ENOMEM;
	}
	source_clear(&src);
	return rc;
}

/* url without a user:password@ (a credential has no place in what is shown). */
static char *public_url(const char *url)
{
	const char *scheme_end = strstr(url, "://"), *host, *at;
	char *out;

	if (!scheme_end)
		return strdup(url);
	host = scheme_end + 3;
	at = memchr(host, '@', strcspn(host, "/?#"));
	if (!at)
		return strdup(url);
	if (asprintf(&out, "%.*s%s", (int)(host - url), url, at + 1) < 0)
		return NULL;
	return out;
}

int core_url(struct hub *hub, const char *path, char **url)
{
	struct source src;
	char *given = NULL;
	int rc;

	*url = NULL;
	if (hub->ops->url) {
		rc = hub->ops->url(hub, path, &given);
	} else {
		rc = hub->ops->source(hub, path, &src);
		if (rc == 0) {
			given = src.url;
			src.url = NULL;
			source_clear(&src);
		}
	}
	if (rc)
		return rc;
	*url = public_url(given);
	free(given);
	return *url ? 0 : -ENOMEM;
}

int core_meta(struct hub *hub, const char *path, char **json)
{
	int rc;

	*json = NULL;
	if (hub->ops->meta) {
		rc = hub->ops->meta(hub, path, json);
		if (rc != -ENOENT)
			return rc;
	}
	*json = strdup("{}");
	return *json ? 0 : -ENOMEM;
}
