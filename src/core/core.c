/* core.c: one session over the hubs, shared by the mount (fs.c) and the
 * omnihub command: the stores (a cache with its blob store, transfers and
 * downloads), the fetcher and the hubs of the registry, each hub opened only
 * when first asked for. Not for: FUSE (fs.c) or a command line (main.c,
 * omnihub.c). */
#include "build_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "budget.h"
#include "cache.h"
#include "cachefs.h"
#include "config.h"
#include "core.h"
#include "download.h"
#include "fetch.h"
#include "hub_state.h"
#include "log.h"
#include "metrics.h"
#include "monotonic.h"
#include "pool.h"
#include "transfer.h"

/* config.c knows no transfer: its defaults must be the transfers' own. */
_Static_assert(CONFIG_CONNECTIONS_DEFAULT == TRANSFER_CONNECTIONS_DEFAULT, "connections");
_Static_assert(CONFIG_PIECE_SIZE_DEFAULT == TRANSFER_PIECE_SIZE_DEFAULT, "piece_size");
_Static_assert(CONFIG_RETRIES_DEFAULT == TRANSFER_RETRIES_DEFAULT, "retries");
_Static_assert(CONFIG_STALL_TIMEOUT_DEFAULT == TRANSFER_STALL_SECONDS_DEFAULT, "stall_timeout");
_Static_assert(CONFIG_RETRY_TIME_DEFAULT == TRANSFER_RETRY_SECONDS_DEFAULT, "retry_time");
_Static_assert(CONFIG_MEMORY_MAX_DEFAULT == TRANSFER_MEMORY_MAX_DEFAULT, "memory_max");

/* A hub this session may open: a registry entry, or one of the hubs an
 * entry makes from what it loads (hub_ops.load). */
struct candidate {
	const struct hub_ops *ops;
	const char *name;  /* borrowed: ops->name or ops->hub_name's */
	const void *set;   /* borrowed from core->sets: what ops->load made */
	int rc;            /* 1: not opened yet; 0: open; -errno: cannot */
	char *why;         /* owned; why it cannot open, as the hub said */
	struct hub *hub;   /* its slot in core->hubs (same index), set before
			      open; it serves once state says up */
	struct core_store *store; /* in core->stores: where its files go */
	struct hub_state state;   /* lent to hub->state */
};

struct core {
	/* The settings in use: the mount's (borrowed), then a reload's
	 * (core_apply_config), which threads may be reading: swapped whole
	 * under hubs_lock, every one kept until the core is freed. */
	const struct config *_Atomic config;
	struct config **applied; /* owned, each owned: the reloads' */
	size_t napplied;
	struct core_store *stores;   /* owned; the general one first, then one
					per directory of a hub's own; room for
					one per candidate, never moved */
	size_t nstores;
	struct metrics *metrics;     /* counted by the fetcher, the transfers
					and the downloads */
	struct budgets *budgets;     /* the hubs' request budgets per host */
	struct fetcher *fetcher;
	void **sets; /* owned, one per registry entry: what its load made
			(freed by its unload), or NULL */
	/* The only threads that do work besides FUSE's and the engines'
	 * (core.h): one pool for requests that need a hub's remote work, one
	 * for download steps, so a stalled API never holds a download up. */
	struct pool *requests;       /* owned */
	struct pool *jobs;           /* owned; lent to every download set */
	pthread_mutex_t hubs_lock;   /* guards the candidates and hubs */
	struct candidate *candidates; /* owned; room for capacity */
	/* The candidates the mount's threads see: a reload adds one (its
	 * slot filled first) by a store of the count, so no lock is needed
	 * to read them. */
	_Atomic size_t ncandidates;
	size_t capacity;  /* of candidates and hubs: never moved */
	struct hub *hubs; /* owned; one per candidate, in the same order,
			     never moved; a hub's functions are called only
			     while its state says up */
	/* What each reload's loads made, for the hubs it added (their names
	 * and catalogs live there); unloaded at the end. */
	struct added_set {
		const struct hub_ops *ops;
		void *set; /* owned: ops->unload frees it */
	} *added_sets;
	size_t nadded_sets;
	void (*hubs_added)(void *ctx, size_t count); /* core_on_hubs_added */
	void *hubs_added_ctx;
	size_t nhubs;     /* the opened ones */
	/* The mount's retry thread: opens again, in the background, the hubs
	 * that could not open (never in a FUSE thread). */
	pthread_t retrier;
	bool retrier_started;
	pthread_mutex_t retry_lock; /* guards the four below */
	pthread_cond_t retry_cond;  /* on CLOCK_MONOTONIC */
	bool retry_stop;
	bool retry_busy;            /* an open is in flight */
	bool retrier_running;       /* not yet ended: nothing left to retry */
	unsigned retry_seed;        /* the jitter's draws; the retry thread's */
	double retry_first;         /* the first wait (hub_retry_first) */
	bool shut_down;
};

static void retrier_stop(struct core *core);
static int core_peer(void *ctx, size_t i, struct hub **out);

/* Loads, once, what each registry entry that makes several hubs names
 * them from (hub_ops.load). */
static int load_sets(struct core *core, char *why, size_t why_size)
{
	int rc = 0;

	core->sets = calloc(hub_registry_count + 1, sizeof(*core->sets));
	if (!core->sets)
		return -ENOMEM;
	for (size_t i = 0; i < hub_registry_count && rc == 0; i++)
		if (hub_registry[i]->load)
			rc = hub_registry[i]->load(core->config, &core->sets[i], why, why_size);
	return rc;
}

/* How long a converter may run: the longest any hub that converts allows
 * (hub_ops.convert_timeout; 0 when its setting is wrong, which its load
 * refuses). */
static unsigned convert_timeout(const struct config *cfg)
{
	unsigned seconds = DOWNLOAD_CONVERT_TIMEOUT_DEFAULT;
	bool any = false;

	for (size_t i = 0; i < hub_registry_count; i++) {
		if (!hub_registry[i]->convert_timeout)
			continue;
		unsigned one = hub_registry[i]->convert_timeout(cfg);
		seconds = any && seconds > one ? seconds : one;
		any = true;
	}
	return seconds;
}

/* What the settings ask of a store's transfers and downloads. */
static struct transfer_options transfer_options_of(const struct config *cfg)
{
	return (struct transfer_options){
		.connections = cfg->connections,
		.piece_size = cfg->piece_size,
		.retries = cfg->retries,
		.stall_seconds = (long)cfg->stall_timeout,
		.retry_seconds = (long)cfg->retry_time,
		.memory_max = cfg->memory_max,
		.mirrors = &cfg->mirrors,
	};
}

static struct download_options download_options_of(const struct config *cfg)
{
	struct download_options options = {
		.offline = cfg->offline,
		.limits = stage_default_limits,
		.convert_timeout = convert_timeout(cfg),
	};

	options.limits.max_ratio = cfg->max_unpack_ratio;
	options.limits.max_bytes = cfg->max_unpack_size;
	return options;
}

/* Room for the catalog hubs reloads (SIGHUP) add to a mount. */
#define CORE_HUBS_ADDED_MAX 64

static int add_candidates(struct core *core)
{
	size_t n = 0;

	for (size_t i = 0; i < hub_registry_count; i++)
		n += hub_registry[i]->load ? hub_registry[i]->count(core->sets[i]) : 1;
	core->capacity = n + CORE_HUBS_ADDED_MAX;
	core->candidates = calloc(core->capacity, sizeof(*core->candidates));
	core->hubs = calloc(core->capacity, sizeof(*core->hubs));
	if (!core->candidates || !core->hubs)
		return -ENOMEM;
	for (size_t i = 0; i < hub_registry_count; i++) {
		const struct hub_ops *ops = hub_registry[i];
		size_t count = ops->load ? ops->count(core->sets[i]) : 1;

		for (size_t c = 0; c < count; c++) {
			struct candidate *cand = &core->candidates[core->ncandidates++];
			cand->ops = ops;
			cand->name = ops->load ? ops->hub_name(core->sets[i], c) : ops->name;
			cand->set = core->sets[i];
			cand->rc = 1;
			cand->hub = &core->hubs[core->ncandidates - 1];
			hub_state_init(&cand->state);
		}
	}
	return 0;
}

/* The config's [hub] sections, now that every hub's name is known. */
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
	struct transfer_options options = transfer_options_of(cfg);
	rc = transfer_engine_new(&st->engine, core->fetcher, st->blobs, &options);
	if (rc)
		return rc;
	transfer_engine_set_metrics(st->engine, core->metrics);
	struct download_options download_options = download_options_of(cfg);
	rc = download_set_new(&st->downloads, st->cache, st->blobs, st->engine, core->jobs,
			      &download_options);
	if (rc)
		return rc;
	download_set_set_metrics(st->downloads, core->metrics);
	st->env = (struct hub_env){ .config = cfg,
				    .fetcher = core->fetcher,
				    .cache = st->cache,
				    .budgets = core->budgets,
				    .peer = core_peer,
				    .peer_ctx = core };
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
	pthread_mutex_init(&core->retry_lock, NULL);
	rc = monotonic_cond_init(&core->retry_cond);
	if (rc)
		goto out;
	core->retry_seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	core->retry_first = hub_retry_first();
	rc = budgets_new(&core->budgets);
	if (rc)
		goto out;
	rc = metrics_new(&core->metrics);
	if (rc)
		goto out;
	rc = pool_new(&core->requests, CORE_REQUEST_THREADS, CORE_REQUEST_HUB_LIMIT, "ohreq");
	if (rc == 0)
		rc = pool_new(&core->jobs, CORE_JOB_THREADS, 0, "ohjob");
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
	 * registry's entries say how many hubs they make. */
	core->stores = calloc(1, sizeof(*core->stores));
	rc = core->stores ? store_open(core, cfg->cache_dir, cfg->cache_max, why, why_size)
			  : -ENOMEM;
	if (rc)
		goto out;
	rc = load_sets(core, why, why_size);
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
	}
	rc = open_hub_stores(core, why, why_size);
	if (rc)
		goto out;
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
	retrier_stop(core);
	/* Transfers stop first, keeping their partials, their readers told
	 * EINTR. Then the hubs' requests are cancelled (a stalled hub would
	 * hold the exit until its own timeouts): never before, or a transfer
	 * would take its cancelled requests for a failure. Queued requests
	 * are answered EINTR; running ones end with their cancelled request. */
	for (size_t i = 0; i < core->nstores; i++)
		transfer_engine_shutdown(core->stores[i].engine);
	fetcher_cancel_all(core->fetcher);
	pool_stop(core->requests);
	for (size_t i = 0; i < core->nstores; i++)
		if (core->stores[i].downloads) /* their waiters are answered now */
			download_set_drain(core->stores[i].downloads);
	/* Every job has ended: its steps ran on this pool. */
	pool_stop(core->jobs);
}

void core_free(struct core *core)
{
	if (!core)
		return;
	retrier_stop(core);
	/* Transfers stop first, their waiters answered; then the jobs that
	 * waited on them end, and nothing uses the caches or the fetcher. */
	pool_stop(core->requests);
	for (size_t i = 0; i < core->nstores; i++)
		transfer_engine_shutdown(core->stores[i].engine);
	for (size_t i = 0; i < core->nstores; i++)
		download_set_free(core->stores[i].downloads);
	pool_free(core->jobs);
	pool_free(core->requests);
	for (size_t i = 0; i < core->nstores; i++)
		transfer_engine_free(core->stores[i].engine);
	for (size_t i = 0; i < core->ncandidates; i++)
		if (core->candidates[i].rc == 0)
			core->hubs[i].ops->close(&core->hubs[i]);
	free(core->hubs);
	for (size_t i = 0; i < core->ncandidates; i++) {
		free(core->candidates[i].why);
		hub_state_destroy(&core->candidates[i].state);
	}
	free(core->candidates);
	for (size_t i = 0; i < core->nadded_sets; i++)
		core->added_sets[i].ops->unload(core->added_sets[i].set);
	free(core->added_sets);
	for (size_t i = 0; core->sets && i < hub_registry_count; i++)
		if (hub_registry[i]->load)
			hub_registry[i]->unload(core->sets[i]);
	free(core->sets);
	fetcher_free(core->fetcher);
	budgets_free(core->budgets);
	metrics_free(core->metrics);
	for (size_t i = 0; i < core->nstores; i++) {
		blob_store_close(core->stores[i].blobs);
		cache_close(core->stores[i].cache);
		free(core->stores[i].dir);
	}
	free(core->stores);
	for (size_t i = 0; i < core->napplied; i++) {
		config_free(core->applied[i]);
		free(core->applied[i]);
	}
	free(core->applied);
	pthread_cond_destroy(&core->retry_cond);
	pthread_mutex_destroy(&core->retry_lock);
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

struct pool *core_requests(struct core *core)
{
	return core->requests;
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

static double monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What follows a failed open: an offline hub has nothing to wait for, and
 * settings the hub refuses (-EINVAL, hub.h) stay refused; anything else
 * (the network, the hub's server, its index) may heal. */
static enum hub_state_kind failure_kind(const struct hub *hub, int rc)
{
	if (hub->offline)
		return HUB_STATE_OFFLINE;
	if (rc == -EINVAL)
		return HUB_STATE_DISABLED;
	return HUB_STATE_RETRYING;
}

/* Fills the candidate's slot with what the hub needs before its open. */
static void prepare_slot(struct core *core, struct candidate *cand)
{
	struct hub *hub = cand->hub;

	memset(hub, 0, sizeof(*hub));
	hub->ops = cand->ops;
	hub->env = &cand->store->env;
	hub->name = cand->name;
	hub->offline = config_hub_offline(core->config, cand->name);
	hub->index_ttl = config_hub_index_ttl(core->config, cand->name);
	hub->state = &cand->state;
	hub->set = cand->set;
}

/* Records the result of an open of cand (rc, why) in its state and logs
 * it once per change of state or reason; under hubs_lock. With retry,
 * a failure that may heal is tried again by the retry thread. */
static void record_open_locked(struct core *core, struct candidate *cand, int rc,
			       const char *why, bool retry)
{
	enum hub_state_kind kind;
	double jitter;

	if (rc == 0) {
		cand->rc = 0;
		core->nhubs++;
		if (hub_state_set_up(&cand->state, time(NULL)) && cand->state.tries > 1)
			log_info("%s hub is up (after %u tries): served from now on", cand->name,
				 cand->state.tries);
		return;
	}
	free(cand->why);
	cand->why = strdup(why);
	cand->rc = -EIO;
	kind = failure_kind(cand->hub, rc);
	if (!retry && kind == HUB_STATE_RETRYING)
		kind = HUB_STATE_DISABLED; /* the command: nobody tries again */
	jitter = (double)rand_r(&core->retry_seed) / ((double)RAND_MAX + 1.0);
	if (!hub_state_set_failed(&cand->state, kind, why, time(NULL), monotonic_now(),
				  core->retry_first, jitter))
		return;
	if (kind == HUB_STATE_RETRYING)
		log_warn("%s hub not available: %s; retried in the background (next in %lds), "
			 "its directory answers EAGAIN meanwhile",
			 cand->name, why, (long)(cand->state.next_try - time(NULL)));
	else if (retry)
		log_error("%s hub left out (%s): %s", cand->name, hub_state_name(kind), why);
}

/* Opens one candidate into its slot; under hubs_lock. Its index may be
 * fetched: the command opens one hub, the mount all of them before it
 * serves anything. */
static int open_candidate_locked(struct core *core, struct candidate *cand, bool retry)
{
	char hub_why[512] = "cannot open";
	int rc;

	if (cand->rc <= 0)
		return cand->rc;
	prepare_slot(core, cand);
	rc = cand->ops->open(cand->hub, hub_why, sizeof(hub_why));
	if (rc)
		cand->hub->priv = NULL; /* open leaves nothing behind on failure */
	record_open_locked(core, cand, rc, hub_why, retry);
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
	rc = open_candidate_locked(core, cand, false);
	if (rc == 0)
		*out = cand->hub;
	else
		snprintf(why, why_size, "%s hub: %s", name, cand->why ? cand->why : "cannot open");
	pthread_mutex_unlock(&core->hubs_lock);
	return rc;
}

/* hub_env.peer: the mount opened every hub before it serves, so a hub
 * that is not up now is retried or left out; the command opens one on
 * first use, as core_hub does. */
static int core_peer(void *ctx, size_t i, struct hub **out)
{
	struct core *core = ctx;
	struct candidate *cand;
	char why[512];
	int rc;

	*out = NULL;
	if (i >= core->ncandidates)
		return -ENOENT;
	cand = &core->candidates[i];
	if (cand->ops->flags & HUB_SHOWS_PEERS)
		return -EAGAIN;
	rc = hub_state_check(&cand->state);
	if (rc == -ENOENT)
		rc = core_hub(core, cand->name, out, why, sizeof(why));
	if (rc == 0)
		*out = cand->hub;
	return rc == 0 ? 0 : -EAGAIN;
}

/* The retry thread's one try of cand, whose slot no other thread uses
 * while it is not up: the open runs outside every lock (it may take a
 * request's time), its result is recorded under hubs_lock. */
static void retry_one(struct core *core, struct candidate *cand)
{
	char hub_why[512] = "cannot open";
	int rc;

	/* Its other fields were set by the first open and are read by the
	 * mount's threads meanwhile: they stay as they are. */
	cand->hub->priv = NULL;
	rc = cand->ops->open(cand->hub, hub_why, sizeof(hub_why));
	if (rc)
		cand->hub->priv = NULL;
	pthread_mutex_lock(&core->hubs_lock);
	cand->rc = 1; /* record_open_locked sets what it is now */
	record_open_locked(core, cand, rc, hub_why, true);
	pthread_mutex_unlock(&core->hubs_lock);
	/* The kernel may hold the empty directory's attributes or listing:
	 * the mount drops them as after an index refresh. */
	if (rc == 0 && cand->hub->env->index_changed)
		cand->hub->env->index_changed(cand->hub->env->index_changed_ctx, cand->hub);
}

/* The candidate due for a try now, or NULL with *next set to the earliest
 * try to come (0: none). */
static struct candidate *next_due(struct core *core, double now, double *next)
{
	*next = 0;
	for (size_t i = 0; i < core->ncandidates; i++) {
		struct hub_state *st = &core->candidates[i].state;
		double at;
		bool retrying;

		pthread_mutex_lock(&st->lock);
		retrying = st->kind == HUB_STATE_RETRYING;
		at = st->next_mono;
		pthread_mutex_unlock(&st->lock);
		if (!retrying)
			continue;
		if (at <= now)
			return &core->candidates[i];
		if (*next == 0 || at < *next)
			*next = at;
	}
	return NULL;
}

static void *retrier_main(void *arg)
{
	struct core *core = arg;

	pthread_mutex_lock(&core->retry_lock);
	while (!core->retry_stop) {
		double next;
		struct candidate *due = next_due(core, monotonic_now(), &next);

		if (due) {
			core->retry_busy = true;
			pthread_mutex_unlock(&core->retry_lock);
			retry_one(core, due);
			pthread_mutex_lock(&core->retry_lock);
			core->retry_busy = false;
			continue;
		}
		if (next == 0)
			break; /* every hub is up, offline or disabled: done (a
				  reload that adds one starts it again) */
		struct timespec until = { .tv_sec = (time_t)next,
					  .tv_nsec = (long)((next - (double)(time_t)next) * 1e9) };
		pthread_cond_timedwait(&core->retry_cond, &core->retry_lock, &until);
	}
	core->retrier_running = false;
	pthread_mutex_unlock(&core->retry_lock);
	return NULL;
}

/* Has the retry thread look at the candidates again: woken, or started
 * anew when it had ended; never once the core is stopping. Under
 * retry_lock. 0 or -errno. */
static int retrier_kick_locked(struct core *core)
{
	int rc = 0;

	if (core->retry_stop)
		return 0;
	if (core->retrier_running) {
		pthread_cond_signal(&core->retry_cond);
		return 0;
	}
	if (core->retrier_started) /* ended by itself: reaped before the next */
		pthread_join(core->retrier, NULL);
	core->retrier_started = false;
	rc = -pthread_create(&core->retrier, NULL, retrier_main, core);
	if (rc == 0)
		core->retrier_started = core->retrier_running = true;
	return rc;
}

static void retrier_stop(struct core *core)
{
	bool started;

	pthread_mutex_lock(&core->retry_lock);
	core->retry_stop = true; /* and no reload starts it again */
	/* An open in flight would wait for its request to end. */
	if (core->retry_busy)
		fetcher_cancel_all(core->fetcher);
	pthread_cond_signal(&core->retry_cond);
	started = core->retrier_started;
	core->retrier_started = false;
	pthread_mutex_unlock(&core->retry_lock);
	if (started)
		pthread_join(core->retrier, NULL);
}

int core_open_all(struct core *core, struct hub **hubs, size_t *nhubs, char *why,
		  size_t why_size)
{
	const struct candidate *last = NULL;
	size_t waiting = 0;
	int rc = 0;

	pthread_mutex_lock(&core->hubs_lock);
	for (size_t i = 0; i < core->ncandidates; i++) {
		struct candidate *cand = &core->candidates[i];

		if (open_candidate_locked(core, cand, true) == 0)
			continue;
		last = cand;
		if (hub_state_check(&cand->state) == -EAGAIN)
			waiting++;
	}
	*hubs = core->hubs;
	*nhubs = core->ncandidates;
	/* A mount with nothing to serve, now or later, fails saying why. */
	if (core->nhubs == 0 && waiting == 0) {
		if (last)
			snprintf(why, why_size, "%s hub: %s", last->name,
				 last->why ? last->why : "cannot open");
		else
			snprintf(why, why_size, "no hub to open");
		rc = -EIO;
	}
	pthread_mutex_unlock(&core->hubs_lock);
	if (rc == 0 && waiting) {
		pthread_mutex_lock(&core->retry_lock);
		rc = retrier_kick_locked(core);
		pthread_mutex_unlock(&core->retry_lock);
		if (rc)
			snprintf(why, why_size, "cannot start the thread that retries hubs: %s",
				 strerror(-rc));
	}
	return rc;
}

/* The store of the hub name as the settings in use place it, among the
 * stores open: a reload opens none (NULL: the hub waits for a mount). */
static struct core_store *open_store_of(struct core *core, const char *name)
{
	const char *dir = config_hub_cache(core->config, name);

	for (size_t j = 0; j < core->nstores; j++)
		if (same_dir(dir, core->stores[j].dir))
			return &core->stores[j];
	return NULL;
}

static bool has_candidate(const struct core *core, const char *name)
{
	for (size_t i = 0; i < core->ncandidates; i++)
		if (strcmp(core->candidates[i].name, name) == 0)
			return true;
	return false;
}

/* Adds the hub k of set, which ops's load made, as a candidate: opened
 * now outside every lock (its slot is no thread's until the count
 * publishes it), then published, up or retried in the background. */
static void add_hub(struct core *core, const struct hub_ops *ops, void *set, size_t k,
		    struct core_store *store, core_added_fn added, void *ctx)
{
	struct candidate *cand = &core->candidates[core->ncandidates];
	char hub_why[512] = "cannot open";
	int rc;

	memset(cand, 0, sizeof(*cand));
	cand->ops = ops;
	cand->name = ops->hub_name(set, k);
	cand->set = set;
	cand->rc = 1;
	cand->hub = &core->hubs[core->ncandidates];
	cand->store = store;
	hub_state_init(&cand->state);
	prepare_slot(core, cand);
	rc = ops->open(cand->hub, hub_why, sizeof(hub_why));
	if (rc)
		cand->hub->priv = NULL;
	pthread_mutex_lock(&core->hubs_lock);
	record_open_locked(core, cand, rc, hub_why, true);
	core->ncandidates++; /* published, whole */
	pthread_mutex_unlock(&core->hubs_lock);
	if (core->hubs_added)
		core->hubs_added(core->hubs_added_ctx, core->ncandidates);
	if (rc == 0 && cand->hub->env->index_changed)
		cand->hub->env->index_changed(cand->hub->env->index_changed_ctx, cand->hub);
	if (hub_state_check(&cand->state) == -EAGAIN) {
		pthread_mutex_lock(&core->retry_lock);
		if (retrier_kick_locked(core) != 0)
			log_error("%s hub: cannot start the thread that retries hubs", cand->name);
		pthread_mutex_unlock(&core->retry_lock);
	}
	added(ctx, cand->name, rc == 0 ? NULL : hub_why);
}

/* The hubs ops made at the start that set no longer names: told to gone. */
static void tell_gone(const struct core *core, const struct hub_ops *ops, const void *set,
		      core_added_fn gone, void *ctx)
{
	for (size_t i = 0; i < core->ncandidates; i++) {
		const struct candidate *cand = &core->candidates[i];
		bool named = false;

		if (cand->ops != ops)
			continue;
		for (size_t k = 0; k < ops->count(set) && !named; k++)
			named = strcmp(ops->hub_name(set, k), cand->name) == 0;
		if (!named)
			gone(ctx, cand->name, NULL);
	}
}

int core_add_catalog_hubs(struct core *core, const struct config *cfg, core_added_fn added,
			  core_added_fn gone, void *ctx, char *why, size_t why_size)
{
	int rc = 0;

	for (size_t i = 0; i < hub_registry_count && rc == 0 && !core->shut_down; i++) {
		const struct hub_ops *ops = hub_registry[i];
		void *set = NULL;
		bool used = false;

		if (!(ops->flags & HUB_FROM_CATALOGS) || !ops->load)
			continue;
		rc = ops->load(cfg, &set, why, why_size);
		if (rc)
			break;
		tell_gone(core, ops, set, gone, ctx);
		for (size_t k = 0; k < ops->count(set) && !core->shut_down; k++) {
			const char *name = ops->hub_name(set, k);
			struct core_store *store = open_store_of(core, name);

			if (has_candidate(core, name))
				continue;
			if (core->ncandidates == core->capacity) {
				log_warn("%s hub: a mount adds at most %d hubs by reloads; it is "
					 "served from the next mount", name, CORE_HUBS_ADDED_MAX);
				continue;
			}
			if (!store) {
				log_warn("%s hub: its own cache directory is not open in this "
					 "mount; it is served from the next mount", name);
				continue;
			}
			if (!used) {
				struct added_set *grown = realloc(
				    core->added_sets, (core->nadded_sets + 1) * sizeof(*grown));
				if (!grown) {
					rc = -ENOMEM;
					snprintf(why, why_size, "out of memory");
					break;
				}
				core->added_sets = grown;
				grown[core->nadded_sets++] = (struct added_set){ ops, set };
				used = true;
			}
			add_hub(core, ops, set, k, store, added, ctx);
		}
		if (!used)
			ops->unload(set);
	}
	return rc;
}

void core_on_hubs_added(struct core *core, void (*fn)(void *ctx, size_t count), void *ctx)
{
	core->hubs_added = fn;
	core->hubs_added_ctx = ctx;
}

size_t core_hub_capacity(const struct core *core)
{
	return core->capacity;
}

size_t core_hub_states(struct core *core, struct hub_state_view *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < core->ncandidates && n < max; i++)
		hub_state_view(&core->candidates[i].state, core->candidates[i].name, &out[n++]);
	return n;
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

int core_start(struct core *core, struct hub *hub, const char *path,
	       void (*done)(void *ctx, int rc), void *ctx)
{
	char label[4096];
	struct source src;
	uint64_t id;
	int rc;

	rc = core_source(core, hub, path, &src);
	if (rc)
		return rc;
	snprintf(label, sizeof(label), "%s%s%s", hub->name, path[0] ? "/" : "", path);
	rc = download_start(core_store_of(core, hub)->downloads, &src, label, done, ctx, &id);
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

bool core_would_block(struct hub *hub, const char *path, bool list)
{
	/* A hub that is not up has no state to ask: the tree answers for it
	 * at once (EAGAIN while it is retried). */
	if (hub->state && hub_state_check(hub->state) != 0)
		return false;
	return hub->ops->would_block && hub->ops->would_block(hub, path, list);
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

int core_apply_config(struct core *core, struct config *cfg)
{
	struct config **grown;
	bool kick = false;
	char why[512];

	pthread_mutex_lock(&core->hubs_lock);
	grown = realloc(core->applied, (core->napplied + 1) * sizeof(*grown));
	if (!grown) {
		pthread_mutex_unlock(&core->hubs_lock);
		return -ENOMEM;
	}
	core->applied = grown;
	core->applied[core->napplied++] = cfg;
	core->config = cfg;
	const struct transfer_options transfers = transfer_options_of(cfg);
	const struct download_options downloads = download_options_of(cfg);
	for (size_t i = 0; i < core->nstores; i++) {
		struct core_store *st = &core->stores[i];
		uint64_t max = cfg->cache_max;

		/* A directory of hubs' own keeps its limit if theirs clash. */
		if (i > 0 && store_limit(core, st->dir, &max, why, sizeof(why)) != 0) {
			log_warn("reload (SIGHUP): %s; keeping the limit of %s", why, st->dir);
			max = st->max;
		}
		st->max = max;
		blob_store_set_max(st->blobs, max);
		transfer_engine_set_limits(st->engine, &transfers);
		download_set_set_options(st->downloads, &downloads);
	}
	for (size_t i = 0; i < core->ncandidates; i++) {
		struct candidate *cand = &core->candidates[i];
		struct hub *hub = &core->hubs[i];

		hub->offline = config_hub_offline(cfg, cand->name);
		hub->index_ttl = config_hub_index_ttl(cfg, cand->name);
		/* A hub left out offline is never retried: online now, it is. */
		if (!hub->offline && hub_state_retry_now(&cand->state, HUB_STATE_OFFLINE,
							 time(NULL), monotonic_now()))
			kick = true;
	}
	pthread_mutex_unlock(&core->hubs_lock);
	if (kick) {
		pthread_mutex_lock(&core->retry_lock);
		if (retrier_kick_locked(core) != 0)
			log_warn("reload (SIGHUP): cannot start the thread that retries hubs");
		pthread_mutex_unlock(&core->retry_lock);
	}
	return 0;
}
