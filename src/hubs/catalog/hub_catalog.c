/* hub_catalog.c: the hubs made from catalogs: each model's path a folder,
 * each weight entry a file (or the folder of its extracted archive),
 * DEFAULT<ext> a link to the default entry, converters' outputs beside
 * their inputs; sizes a catalog leaves out asked of the server once. Not
 * for: parsing catalogs (catalog_parse.c) or making files (download.c). */
#include "build_config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>

#include "blob.h"
#include "cache.h"
#include "catalog_parse.h"
#include "client_cache.h"
#include "config.h"
#include "convert.h"
#include "digest.h"
#include "fetch.h"
#include "hub_catalog.h"
#include "log.h"
#include "names.h"

#ifndef CATALOGDIR
#define CATALOGDIR "/usr/local/share/omnihub/catalogs"
#endif

/* -o convert_timeout's bound: a day. */
#define CATALOG_CONVERT_TIMEOUT_MAX 86400u
/* A size probe reads one byte: its Content-Range gives the whole. */
#define PROBE_MAX_BYTES 64
/* A probe that failed is not tried again this soon: a listing looks a
 * name up several times, and a host that is down answers slowly. */
#define PROBE_RETRY_SECONDS 30

/* A converter the user configured: files of format `from` get a sibling
 * <stem>.<to> made by command. */
struct converter {
	char *from, *to, *command; /* owned */
};

struct converters {
	struct converter *items; /* owned */
	size_t count;
};

enum name_kind {
	NAME_DIR,
	NAME_FILE,    /* an entry's download, or a file made from it */
	NAME_ARCHIVE, /* an entry's extracted archive */
	NAME_LINK,    /* DEFAULT<ext> */
};

/* One name in a hub's tree, sorted by (parent, name) so a folder's names
 * are adjacent. */
struct name {
	char *parent; /* owned; "" at the hub's root */
	char *name;   /* owned */
	enum name_kind kind;
	const struct catalog_entry *entry; /* files, archives: borrowed */
	const char *command;  /* a converter's output: borrowed, else NULL */
	const char *target;   /* NAME_LINK: the default entry's file, borrowed,
				 or own_target */
	char *own_target;     /* owned: DEFAULT.<to>'s target, a converter's output */
	/* under the hub's lock: the download's size, once known */
	uint64_t size;
	bool size_known;
	time_t probe_failed; /* when asking the server for it last failed */
};

struct catalog_hub_state {
	const struct catalog_hub *catalog; /* borrowed from hub->set */
	char *client_dir; /* owned; where the catalog's client_cache keeps its
			     downloads (client_cache_dir), NULL without one */
	struct name *names;                /* owned, sorted */
	size_t count;
	struct converters converters;
	time_t opened;
	pthread_mutex_t lock; /* guards the names' sizes */
};

/* ---- options ---- */

static bool is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	       c == '-';
}

/* Length of a "FROM:TO:" head at s, or 0 when s does not start with one. */
static size_t converter_head(const char *s)
{
	const char *p = s;

	for (int field = 0; field < 2; field++) {
		const char *start = p;
		while (is_token_char(*p))
			p++;
		if (p == start || *p != ':')
			return 0;
		p++;
	}
	return (size_t)(p - s);
}

static void converters_free(struct converters *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].from);
		free(list->items[i].to);
		free(list->items[i].command);
	}
	free(list->items);
	memset(list, 0, sizeof(*list));
}

/* "-o convert=FROM:TO:COMMAND[,FROM:TO:COMMAND...]" added to out (zeroed
 * by the caller; freed here on failure): an item that does not start with
 * FROM:TO: was a comma inside the command before it. A COMMAND that is a
 * converter's name is found in dir (-o converters=) or the installed ones. */
static int converters_parse(const char *value, const char *dir, struct converters *out,
			    char *why, size_t why_size)
{
	const char *p = value;
	int rc = 0;

	while (p && *p) {
		size_t head = converter_head(p), len;
		const char *colon, *end = p;
		struct converter *grown, *c;

		if (head == 0) {
			snprintf(why, why_size,
				 "convert: \"%.40s\" is not FROM:TO:COMMAND (formats are "
				 "[a-z0-9_.-] tokens)",
				 p);
			rc = -EINVAL;
			break;
		}
		/* The command runs to the next ",FROM:TO:" or the end. */
		for (end = p + head; *end; end++)
			if (*end == ',' && converter_head(end + 1))
				break;
		len = (size_t)(end - (p + head));
		if (len == 0) {
			snprintf(why, why_size, "convert: \"%.40s\" has no command", p);
			rc = -EINVAL;
			break;
		}
		grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
		if (!grown) {
			rc = -ENOMEM;
			break;
		}
		out->items = grown;
		c = &grown[out->count++];
		colon = strchr(p, ':');
		c->from = strndup(p, (size_t)(colon - p));
		c->to = strndup(colon + 1, (size_t)(p + head - 1 - (colon + 1)));
		c->command = strndup(p + head, len);
		if (!c->from || !c->to || !c->command) {
			rc = -ENOMEM;
			break;
		}
		if (convert_is_name(c->command)) {
			char *resolved = NULL;

			rc = convert_resolve(c->command, dir, &resolved, why, why_size);
			if (rc == -ENOENT)
				rc = -EINVAL; /* a setting names it: the start stops (exit 2) */
			if (rc)
				break;
			free(c->command);
			c->command = resolved;
		}
		p = *end ? end + 1 : end;
	}
	if (rc)
		converters_free(out);
	return rc;
}

/* -o convert_timeout, or the default; 0 when it is not 1 to
 * CATALOG_CONVERT_TIMEOUT_MAX seconds. */
static unsigned catalog_convert_timeout(const struct config *cfg)
{
	const char *value = config_hub_option(cfg, "convert_timeout");
	unsigned seconds = CONVERT_TIMEOUT_DEFAULT;

	if (value && config_parse_seconds(value, 1, CATALOG_CONVERT_TIMEOUT_MAX, &seconds) != 0)
		seconds = 0;
	return seconds;
}

/* Adds every catalog of the comma-separated directories in dirs. */
static int add_dirs(struct catalog_set *set, const char *dirs, enum catalog_trust trust)
{
	char *copy = strdup(dirs), *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *dir = strtok_r(copy, ",", &save); dir; dir = strtok_r(NULL, ",", &save))
		if (catalog_set_add_dir(set, dir, trust) < 0)
			log_warn("catalogs: cannot read %s", dir);
	free(copy);
	return 0;
}

static void catalog_unload(void *set);

/* Loads the shipped catalogs, the user's and those of -o catalogs, and
 * checks the catalog options; a refused file is logged and left out. */
static int catalog_load(const struct config *cfg, void **out, char *why, size_t why_size)
{
	const char *system_dir = config_hub_option(cfg, "system_catalogs");
	const char *extra = config_hub_option(cfg, "catalogs");
	const char *xdg = config_env("XDG_CONFIG_HOME"), *home = config_env("HOME");
	struct converters converters = { 0 };
	struct catalog_set *set;
	char user_dir[PATH_MAX] = "";
	size_t nmodels = 0;
	int rc;

	*out = NULL;
	if (catalog_convert_timeout(cfg) == 0) {
		snprintf(why, why_size, "convert_timeout must be a number of seconds, 1 to 86400");
		return -EINVAL;
	}
	rc = converters_parse(config_hub_option(cfg, "convert"), config_hub_option(cfg, "converters"),
			      &converters, why, why_size);
	if (rc)
		return rc;
	converters_free(&converters);
	set = calloc(1, sizeof(*set));
	if (!set)
		return -ENOMEM;
	if (catalog_set_add_dir(set, system_dir ? system_dir : CATALOGDIR, CATALOG_SHIPPED) < 0)
		log_warn("catalogs: cannot read %s", system_dir ? system_dir : CATALOGDIR);
	if ((xdg && snprintf(user_dir, sizeof(user_dir), "%s/omnihub/catalogs", xdg) >=
		    (int)sizeof(user_dir)) ||
	    (!xdg && home &&
	     snprintf(user_dir, sizeof(user_dir), "%s/.config/omnihub/catalogs", home) >=
		     (int)sizeof(user_dir))) {
		/* A cut path would name another directory: none rather than that. */
		log_warn("catalogs: the user catalog directory's path is too long: not read");
		user_dir[0] = '\0';
	}
	if (user_dir[0] && catalog_set_add_dir(set, user_dir, CATALOG_USER) < 0)
		log_warn("catalogs: cannot read %s", user_dir);
	if (extra && add_dirs(set, extra, CATALOG_USER) != 0) {
		catalog_unload(set);
		return -ENOMEM;
	}
	/* A hub section's converter named wrong stops the start too, not the
	 * hub's first open. */
	for (size_t i = 0; i < set->nhubs; i++) {
		rc = converters_parse(config_hub_convert(cfg, set->hubs[i].name),
				      config_hub_option(cfg, "converters"), &converters, why,
				      why_size);
		converters_free(&converters);
		if (rc) {
			catalog_unload(set);
			return rc;
		}
		nmodels += set->hubs[i].nmodels;
	}
	log_info("catalogs: %zu hubs, %zu models, from %zu files (%zu refused)", set->nhubs,
		 nmodels, set->nfiles, set->nrefused);
	*out = set;
	return 0;
}

static void catalog_unload(void *set)
{
	if (!set)
		return;
	catalog_set_free(set);
	free(set);
}

static size_t catalog_count(const void *set)
{
	return ((const struct catalog_set *)set)->nhubs;
}

static const char *catalog_hub_name(const void *set, size_t i)
{
	return ((const struct catalog_set *)set)->hubs[i].name;
}

/* ---- the tree of names ---- */

static int compare_names(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	int c = strcmp(x->parent, y->parent);

	return c ? c : strcmp(x->name, y->name);
}

static int names_add(struct catalog_hub_state *st, size_t *cap, const char *parent,
		     size_t parent_len, const char *name, enum name_kind kind, struct name **out)
{
	struct name *n;

	if (st->count == *cap) {
		size_t grown_cap = *cap ? 2 * *cap : 64;
		struct name *grown = realloc(st->names, grown_cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		st->names = grown;
		*cap = grown_cap;
	}
	n = &st->names[st->count];
	memset(n, 0, sizeof(*n));
	n->parent = strndup(parent, parent_len);
	n->name = strdup(name);
	if (!n->parent || !n->name) {
		free(n->parent);
		free(n->name);
		return -ENOMEM;
	}
	n->kind = kind;
	st->count++;
	if (out)
		*out = n;
	return 0;
}

/* The folders of a model's path: "a/b/c" gives a (in ""), b (in "a") and
 * c (in "a/b"); duplicates are dropped after sorting. */
static int add_model_dirs(struct catalog_hub_state *st, size_t *cap, const char *path)
{
	const char *segment = path;
	int rc = 0;

	while (rc == 0 && *segment) {
		const char *slash = strchr(segment, '/');
		size_t len = slash ? (size_t)(slash - segment) : strlen(segment);
		char name[NAME_MAX + 1];

		if (snprintf(name, sizeof(name), "%.*s", (int)len, segment) >= (int)sizeof(name)) {
			/* A cut folder name would be another folder's. */
			log_warn("catalogs: a folder name of %s is over %d bytes: left out", path,
				 NAME_MAX);
			rc = -ENAMETOOLONG;
			break;
		}
		rc = names_add(st, cap, path, segment == path ? 0 : (size_t)(segment - path - 1),
			       name, NAME_DIR, NULL);
		segment = slash ? slash + 1 : segment + len;
	}
	return rc;
}

/* Whether one of the user's first `upto` converters turns from into to:
 * then a later one for the same output is not used. */
static bool converted_before(const struct catalog_hub_state *st, size_t upto, const char *from,
			     const char *to)
{
	for (size_t c = 0; c < upto; c++)
		if (strcmp(st->converters.items[c].from, from) == 0 &&
		    strcmp(st->converters.items[c].to, to) == 0)
			return true;
	return false;
}

/* "<stem>.<to>" for a converter's output; false when it does not fit. */
static bool converted_name(const char *file, const char *to, char out[NAME_MAX + 1])
{
	const char *dot = strrchr(file, '.');
	size_t stem = dot && dot != file ? (size_t)(dot - file) : strlen(file);

	return snprintf(out, NAME_MAX + 1, "%.*s.%s", (int)stem, file, to) <= NAME_MAX;
}

static int add_converted(struct catalog_hub_state *st, size_t *cap, const char *model,
			 const struct catalog_entry *entry, const char *to, const char *command)
{
	char name[NAME_MAX + 1];
	struct name *n;
	int rc;

	if (!converted_name(entry->file, to, name))
		return 0;
	rc = names_add(st, cap, model, strlen(model), name, NAME_FILE, &n);
	if (rc == 0) {
		n->entry = entry;
		n->command = command;
	}
	return rc;
}

/* DEFAULT.<to>, a link to the default entry's <stem>.<to>. */
static int add_default_converted(struct catalog_hub_state *st, size_t *cap, const char *model,
				 const struct catalog_entry *entry, const char *to)
{
	char target[NAME_MAX + 1], name[NAME_MAX + 1];
	struct name *n;
	int rc = 0;

	if (!converted_name(entry->file, to, target) || !converted_name("DEFAULT", to, name))
		goto out;
	rc = names_add(st, cap, model, strlen(model), name, NAME_LINK, &n);
	if (rc == 0 && !(n->own_target = strdup(target)))
		rc = -ENOMEM;
	if (rc == 0)
		n->target = n->own_target;
out:
	return rc;
}

static int add_model(struct catalog_hub_state *st, size_t *cap, const struct catalog_model *model)
{
	int rc = add_model_dirs(st, cap, model->path);

	for (size_t i = 0; rc == 0 && i < model->nentries; i++) {
		const struct catalog_entry *entry = &model->entries[i];
		struct name *n;

		rc = names_add(st, cap, model->path, strlen(model->path), entry->file,
			       entry->stage == CATALOG_STAGE_ARCHIVE ? NAME_ARCHIVE : NAME_FILE, &n);
		if (rc)
			break;
		n->entry = entry;
		/* The user's converters before the catalog's own; one per output. */
		for (size_t c = 0; rc == 0 && c < st->converters.count; c++)
			if (strcmp(entry->format, st->converters.items[c].from) == 0 &&
			    !converted_before(st, c, entry->format, st->converters.items[c].to))
				rc = add_converted(st, cap, model->path, entry,
						   st->converters.items[c].to,
						   st->converters.items[c].command);
		for (size_t c = 0; rc == 0 && c < entry->nconverts; c++)
			if (!converted_before(st, st->converters.count, entry->format,
					      entry->converts[c].to))
				rc = add_converted(st, cap, model->path, entry,
						   entry->converts[c].to,
						   entry->converts[c].command);
	}
	if (rc == 0 && model->default_entry >= 0) {
		const struct catalog_entry *entry = &model->entries[model->default_entry];
		const char *ext = strchr(entry->file, '.');
		char name[NAME_MAX + 1];
		struct name *n;

		if (snprintf(name, sizeof(name), "DEFAULT%s", ext ? ext : "") >= (int)sizeof(name)) {
			log_warn("catalogs: %s: the name DEFAULT%s is too long: left out",
				 model->path, ext);
			rc = -ENAMETOOLONG;
		} else {
			rc = names_add(st, cap, model->path, strlen(model->path), name, NAME_LINK,
				       &n);
		}
		if (rc == 0)
			n->target = entry->file;
		/* The default's converted forms are DEFAULT.<to> too. */
		for (size_t c = 0; rc == 0 && c < st->converters.count; c++)
			if (strcmp(entry->format, st->converters.items[c].from) == 0 &&
			    !converted_before(st, c, entry->format, st->converters.items[c].to))
				rc = add_default_converted(st, cap, model->path, entry,
							   st->converters.items[c].to);
		for (size_t c = 0; rc == 0 && c < entry->nconverts; c++)
			if (!converted_before(st, st->converters.count, entry->format,
					      entry->converts[c].to))
				rc = add_default_converted(st, cap, model->path, entry,
							   entry->converts[c].to);
	}
	return rc;
}

/* Sorts the names and drops repeats: a folder many models share once, and
 * of two files of one name (a converter's output clashing with an entry)
 * the first, with a log line. */
static void names_sort_unique(struct catalog_hub_state *st, const char *hub_name)
{
	size_t kept = 0;

	qsort(st->names, st->count, sizeof(*st->names), compare_names);
	for (size_t i = 0; i < st->count; i++) {
		struct name *n = &st->names[i];

		if (kept > 0 && compare_names(&st->names[kept - 1], n) == 0) {
			if (n->kind != NAME_DIR || st->names[kept - 1].kind != NAME_DIR)
				log_warn("%s: %s/%s is named twice: the second is left out",
					 hub_name, n->parent, n->name);
			free(n->parent);
			free(n->name);
			free(n->own_target);
			continue;
		}
		st->names[kept++] = *n;
	}
	st->count = kept;
}

static void state_free(struct catalog_hub_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->count; i++) {
		free(st->names[i].parent);
		free(st->names[i].name);
		free(st->names[i].own_target);
	}
	free(st->names);
	free(st->client_dir);
	converters_free(&st->converters);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

static int catalog_open(struct hub *hub, char *why, size_t why_size)
{
	const struct catalog_hub *catalog = catalog_set_hub(hub->set, hub->name);
	struct catalog_hub_state *st;
	size_t cap = 0;
	int rc;

	if (!catalog) {
		snprintf(why, why_size, "no catalog names it");
		return -ENOENT;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	st->catalog = catalog;
	st->opened = time(NULL);
	/* Its own section's first: for one entry and one output format, the
	 * first converter that names it wins (add_model). */
	rc = converters_parse(config_hub_convert(hub->env->config, hub->name),
			      config_hub_option(hub->env->config, "converters"), &st->converters,
			      why, why_size);
	if (rc == 0)
		rc = converters_parse(config_hub_option(hub->env->config, "convert"),
				      config_hub_option(hub->env->config, "converters"),
				      &st->converters, why, why_size);
	/* catalog_parse.c takes only the clients client_cache_dir knows; another
	 * would only mean no client's copy is looked for. */
	if (rc == 0 && catalog->client_cache &&
	    client_cache_dir(catalog->client_cache, &st->client_dir) == -ENOMEM)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < catalog->nmodels; i++)
		rc = add_model(st, &cap, &catalog->models[i]);
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(why, why_size, "out of memory");
		else if (rc == -ENAMETOOLONG)
			snprintf(why, why_size, "a name over %d bytes", NAME_MAX);
		state_free(st);
		return rc;
	}
	names_sort_unique(st, hub->name);
	hub->priv = st;
	log_info("%s: %zu models from catalogs", hub->name, catalog->nmodels);
	return 0;
}

static void catalog_close(struct hub *hub)
{
	state_free(hub->priv);
	hub->priv = NULL;
}

/* The name at path, or NULL. */
static struct name *find(struct catalog_hub_state *st, const char *path)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];
	struct name key;

	if (snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - path) : 0, path) >=
	    (int)sizeof(parent))
		return NULL;
	key.parent = parent;
	key.name = (char *)(slash ? slash + 1 : path);
	return bsearch(&key, st->names, st->count, sizeof(*st->names), compare_names);
}

/* ---- digests and sizes ---- */

/* What checks an entry's download, keyed when it does not name the bytes. */
static int entry_digest(const struct catalog_entry *entry, struct digest_spec *out)
{
	const struct digest_spec *strongest = catalog_entry_strongest(entry);

	if (strongest)
		*out = *strongest;
	else
		digest_spec_set_none(out, DIGEST_SHA256);
	return digest_spec_set_key(out, entry->url);
}

/* A size probe's answer (fetch_request_run's rc, with body_len bytes of
 * body kept): the total of its Content-Range; from a server that ignores
 * ranges and sends the whole file, its Content-Length (the probe stops at
 * PROBE_MAX_BYTES: -EFBIG), or the body itself when that is all. */
static int probe_size(int rc, const struct fetch_response *resp, size_t body_len, uint64_t *size)
{
	bool whole = resp->status == 200 && !resp->has_content_range;

	if (rc == 0 && resp->has_content_range) {
		*size = resp->range_total;
		return 0;
	}
	if (whole && rc == -EFBIG && resp->has_length) {
		*size = resp->length;
		return 0;
	}
	if (whole && rc == 0) {
		*size = body_len;
		return 0;
	}
	return rc ? rc : -EPROTO;
}

/* The download's size: the catalog's, else a complete blob's in the cache,
 * else asked of the server (one byte, whose Content-Range tells) once. */
static int download_size(struct hub *hub, struct name *n, uint64_t *size)
{
	struct catalog_hub_state *st = hub->priv;
	const struct catalog_entry *entry = n->entry;
	struct fetch_request req = { .url = entry->url, .has_range = true };
	struct fetch_response resp;
	struct fetch_buffer body = { 0 };
	struct digest_spec digest;
	char *rel = NULL, url[512], label[PATH_MAX];
	struct stat blob;
	int rc;

	if (entry->size_known) {
		*size = entry->size;
		return 0;
	}
	pthread_mutex_lock(&st->lock);
	rc = n->size_known ? 0 : -ENOENT;
	*size = n->size;
	if (rc && n->probe_failed && time(NULL) - n->probe_failed < PROBE_RETRY_SECONDS)
		rc = -EIO;
	pthread_mutex_unlock(&st->lock);
	if (rc != -ENOENT)
		return rc;
	if (entry_digest(entry, &digest) == 0 && blob_rel(&digest, "", &rel) == 0 &&
	    cache_lstat(hub->env->cache, rel, &blob) == 0 && S_ISREG(blob.st_mode)) {
		*size = (uint64_t)blob.st_size;
		rc = 0;
	}
	free(rel);
	if (rc != 0) {
		/* The file's name in the mount, which the URL need not tell. */
		snprintf(label, sizeof(label), "%s/%s%s%s", hub->name, n->parent,
			 n->parent[0] ? "/" : "", n->name);
		fetch_url_for_log(entry->url, url, sizeof(url));
		if (hub->offline) {
			log_error("%s: the size of %s is not in its catalog, and offline it cannot "
				  "be asked",
				  label, url);
			return -EIO;
		}
		rc = fetch_request_run(hub->env->fetcher, &req, PROBE_MAX_BYTES, &body, &resp);
		rc = probe_size(rc, &resp, body.len, size);
		free(body.data);
		if (rc) {
			log_error("%s: cannot learn the size of %s: %s", label, url,
				  rc == -EPROTO ? "the server gave no Content-Range"
				  : rc == -EFBIG ? "the server ignores ranges and gives no Content-Length"
				  : resp.error[0] ? resp.error : strerror(-rc));
			pthread_mutex_lock(&st->lock);
			n->probe_failed = time(NULL);
			pthread_mutex_unlock(&st->lock);
			return rc == -ENOENT ? -ENOENT : -EIO;
		}
		log_info("%s: %s is %" PRIu64 " bytes (its catalog does not say%s)", hub->name, url,
			 *size, resp.has_content_range ? "" : "; its server ignores ranges");
	}
	pthread_mutex_lock(&st->lock);
	n->size = *size;
	n->size_known = true;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

static bool is_made(const struct name *n)
{
	return n->command || n->entry->stage == CATALOG_STAGE_MEMBER ||
	       n->entry->stage == CATALOG_STAGE_GUNZIP;
}

static int fill_entry(struct hub *hub, struct name *n, struct entry *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", n->name);
	out->mtime = ((struct catalog_hub_state *)hub->priv)->opened;
	switch (n->kind) {
	case NAME_DIR:
		out->type = ENTRY_DIR;
		return 0;
	case NAME_LINK:
		out->type = ENTRY_LINK;
		out->size = strlen(n->target);
		return 0;
	case NAME_ARCHIVE:
		out->type = ENTRY_ARCHIVE;
		return entry_digest(n->entry, &out->digest);
	case NAME_FILE:
		break;
	}
	out->type = ENTRY_FILE;
	rc = entry_digest(n->entry, &out->digest);
	if (rc)
		return rc;
	if (is_made(n)) {
		/* What it is made from names it; its size is a promise at best. */
		out->made = true;
		out->size = n->command ? 0 : n->entry->unpacked_size;
		return 0;
	}
	rc = download_size(hub, n, &out->size);
	/* Unreachable now (logged): shown as 0 bytes, so a listing stays
	 * whole; an open asks again, and the size it learns makes the name
	 * another inode (ESTALE), with its size. */
	if (rc && rc != -ENOENT && rc != -ENOMEM) {
		out->size = 0;
		rc = 0;
	}
	return rc;
}

static int catalog_list(struct hub *hub, const char *dir, struct entry_list *out)
{
	struct catalog_hub_state *st = hub->priv;
	struct name key = { .parent = (char *)dir, .name = "" };
	size_t lo = 0, hi = st->count;
	int rc = 0;

	if (dir[0]) {
		struct name *self = find(st, dir);
		if (!self)
			return -ENOENT;
		if (self->kind != NAME_DIR)
			return -ENOTDIR;
	}
	/* The first name whose parent is dir: they are adjacent. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (compare_names(&st->names[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < st->count && strcmp(st->names[i].parent, dir) == 0; i++) {
		struct entry entry;
		if (fill_entry(hub, &st->names[i], &entry) != 0)
			continue; /* not on its server (logged) */
		rc = entry_list_add(out, &entry);
		if (rc)
			break;
	}
	return rc;
}

/* Whether n's size would be asked of its server now (download_size):
 * probing it is the one request a lookup or listing makes. */
static bool needs_probe(struct hub *hub, const struct name *n)
{
	struct catalog_hub_state *st = hub->priv;
	bool needs;

	if (n->kind != NAME_FILE || is_made(n) || n->entry->size_known ||
	    hub->offline)
		return false;
	pthread_mutex_lock(&st->lock);
	needs = !n->size_known &&
		!(n->probe_failed && time(NULL) - n->probe_failed < PROBE_RETRY_SECONDS - 1);
	pthread_mutex_unlock(&st->lock);
	return needs;
}

/* hub_ops.would_block: the index is in memory; only sizes are asked. */
static bool catalog_would_block(struct hub *hub, const char *path, bool list)
{
	struct catalog_hub_state *st = hub->priv;
	size_t len = strlen(path);
	struct name *n;

	if (!list) {
		n = find(st, path);
		return n && needs_probe(hub, n);
	}
	for (size_t i = 0; i < st->count; i++)
		if (strlen(st->names[i].parent) == len &&
		    memcmp(st->names[i].parent, path, len) == 0 &&
		    needs_probe(hub, &st->names[i]))
			return true;
	return false;
}

static int catalog_lookup(struct hub *hub, const char *path, struct entry *out)
{
	struct name *n = find(hub->priv, path);

	return n ? fill_entry(hub, n, out) : -ENOENT;
}

static int catalog_readlink(struct hub *hub, const char *path, char *out, size_t out_size)
{
	struct name *n = find(hub->priv, path);

	if (!n)
		return -ENOENT;
	if (n->kind != NAME_LINK)
		return -EINVAL;
	return snprintf(out, out_size, "%s", n->target) < (int)out_size ? 0 : -ENAMETOOLONG;
}

static int catalog_url(struct hub *hub, const char *path, char **url)
{
	struct name *n = find(hub->priv, path);

	if (!n || !n->entry)
		return -ENOENT;
	*url = strdup(n->entry->url);
	return *url ? 0 : -ENOMEM;
}

static int catalog_meta(struct hub *hub, const char *path, char **json)
{
	struct name *n = find(hub->priv, path);

	if (!n || !n->entry)
		return -ENOENT;
	*json = strdup(n->entry->meta_json ? n->entry->meta_json : "{}");
	return *json ? 0 : -ENOMEM;
}

/* ---- sources ---- */

/* The name an entry's file has in its hub's own client's cache. */
static const char *client_name(const struct catalog_entry *entry, char out[NAME_MAX + 1])
{
	const char *last = strrchr(entry->url, '/');
	size_t len;

	if (entry->client_id)
		return entry->client_id;
	last = last ? last + 1 : entry->url;
	len = strcspn(last, "?#");
	snprintf(out, NAME_MAX + 1, "%.*s", (int)(len > NAME_MAX ? NAME_MAX : len), last);
	return out;
}

/* The sha1 of a tensorflow_hub handle, which names its module's folder in
 * that client's cache (compressed_module_resolver.py, _module_dir). */
static int tfhub_folder(const char *handle, char hex[DIGEST_HEX_MAX])
{
	struct digest *dg = NULL;
	int rc;

	rc = digest_new(&dg, DIGEST_SHA1, 0);
	if (rc == 0)
		rc = digest_update(dg, handle, strlen(handle));
	if (rc == 0)
		rc = digest_final_hex(dg, hex);
	digest_free(dg);
	return rc;
}

/* tensorflow_hub keeps a model extracted in the directory named by the
 * sha1 of its handle. */
static int add_tfhub_copy(const char *tfhub_modules, const struct catalog_entry *entry,
			  struct source *src)
{
	char hex[DIGEST_HEX_MAX], *path;
	int rc;

	if (!entry->client_id || entry->stage != CATALOG_STAGE_ARCHIVE)
		return 0;
	rc = tfhub_folder(entry->client_id, hex);
	if (rc)
		return rc;
	if (asprintf(&path, "%s/%s", tfhub_modules, hex) < 0)
		return -ENOMEM;
	return source_add_local_take(src, path);
}

/* Other clients' copies of an entry's download: torch.hub's and Keras's
 * caches name files by their name, tensorflow_hub's trees by a sha1. */
static int add_client_copies(struct hub *hub, const struct catalog_entry *entry,
			     struct source *src)
{
	const struct catalog_hub_state *st = hub->priv;
	const char *kind = st->catalog->client_cache, *dir = st->client_dir, *why;
	char buf[NAME_MAX + 1], *path;
	const char *name;

	if (kind && strcmp(kind, "tfhub") == 0)
		return add_tfhub_copy(dir, entry, src);
	if (!kind || entry->stage == CATALOG_STAGE_ARCHIVE)
		return 0;
	name = client_name(entry, buf);
	if (!dir || names_check_component(name, &why) != 0)
		return 0;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	return source_add_local_take(src, path);
}

/* Where Deeplearning4j's own classes keep an entry's download, from the
 * meta its catalog gives: a zoo model (meta "zoo_class") in
 * models/<class's simple name, lower case>/<basename of the URL> of
 * DL4J's resources folder (ZooModel.initPretrained, modelName,
 * DL4JResources.getDirectory(ResourceType.ZOO_MODEL, ...)), an OmniHub
 * model (meta "omnihub_api" and "framework") in <framework>/<basename>
 * of OmniHub's home (OmniHubUtils.downloadAndLoadFromZoo). Sets *client
 * ("dl4j", "omnihub") and returns 0, or -ENOENT for any other entry. */
static int dl4j_client_path(const struct catalog_entry *entry, const char **client, char *out,
			    size_t out_size)
{
	cJSON *meta = cJSON_Parse(entry->meta_json ? entry->meta_json : "{}");
	const char *zoo_class, *framework, *simple, *why;
	char buf[NAME_MAX + 1], lower[NAME_MAX + 1];
	const char *file = client_name(entry, buf);
	size_t len;
	int rc = -ENOENT;

	zoo_class = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "zoo_class"));
	framework = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "framework"));
	if (names_check_component(file, &why) != 0)
		goto out;
	if (zoo_class) {
		/* Class.getSimpleName(): after the package's last dot. */
		simple = strrchr(zoo_class, '.');
		simple = simple ? simple + 1 : zoo_class;
		len = strlen(simple);
		if (len == 0 || len > NAME_MAX)
			goto out;
		for (size_t i = 0; i <= len; i++)
			lower[i] = (simple[i] >= 'A' && simple[i] <= 'Z') ? (char)(simple[i] + 32)
									 : simple[i];
		if (names_check_component(lower, &why) != 0 ||
		    (size_t)snprintf(out, out_size, "models/%s/%s", lower, file) >= out_size)
			goto out;
		*client = "dl4j";
		rc = 0;
	} else if (framework && cJSON_GetObjectItemCaseSensitive(meta, "omnihub_api")) {
		if (names_check_component(framework, &why) != 0 ||
		    (size_t)snprintf(out, out_size, "%s/%s", framework, file) >= out_size)
			goto out;
		*client = "omnihub";
		rc = 0;
	}
out:
	cJSON_Delete(meta);
	return rc;
}

/* hub_ops.client_paths: each entry's download where torch.hub or Keras
 * caches it, each archive with a handle where tensorflow_hub keeps it
 * extracted (add_client_copies reads the same places), and, in a hub
 * with no client_cache, each Deeplearning4j or OmniHub entry where those
 * classes look (dl4j_client_path). A made file (a converter's, a member,
 * a decompressed download) is not what the client keeps under that name. */
static int catalog_client_paths(struct hub *hub,
				int (*fn)(void *ctx, const char *path, const char *client,
					  const char *client_path),
				void *ctx)
{
	struct catalog_hub_state *st = hub->priv;
	const char *kind = st->catalog->client_cache, *folder = NULL, *name, *why;
	char buf[NAME_MAX + 1], hex[DIGEST_HEX_MAX], path[PATH_MAX], client_path[PATH_MAX];
	bool tfhub = kind && strcmp(kind, "tfhub") == 0;
	int rc = 0;

	if (kind && strcmp(kind, "torch") == 0)
		folder = "hub/checkpoints";
	else if (kind && strcmp(kind, "keras") == 0)
		folder = "models";
	for (size_t i = 0; !kind && i < st->count && rc == 0; i++) {
		const struct name *n = &st->names[i];
		const char *client;

		if (n->kind != NAME_FILE || is_made(n) ||
		    dl4j_client_path(n->entry, &client, client_path, sizeof(client_path)) != 0 ||
		    (size_t)snprintf(path, sizeof(path), "%s%s%s", n->parent,
				     n->parent[0] ? "/" : "", n->name) >= sizeof(path))
			continue;
		rc = fn(ctx, path, client, client_path);
	}
	for (size_t i = 0; (folder || tfhub) && i < st->count && rc == 0; i++) {
		const struct name *n = &st->names[i];

		if (tfhub) {
			if (n->kind != NAME_ARCHIVE || n->command || !n->entry->client_id)
				continue;
			rc = tfhub_folder(n->entry->client_id, hex);
			name = hex;
		} else {
			if (n->kind != NAME_FILE || is_made(n))
				continue;
			name = client_name(n->entry, buf);
		}
		if (rc || names_check_component(name, &why) != 0 ||
		    (size_t)snprintf(path, sizeof(path), "%s%s%s", n->parent,
				     n->parent[0] ? "/" : "", n->name) >= sizeof(path) ||
		    (size_t)snprintf(client_path, sizeof(client_path), "%s%s%s",
				     folder ? folder : "", folder ? "/" : "", name) >=
			sizeof(client_path))
			continue;
		rc = fn(ctx, path, kind, client_path);
	}
	return rc;
}

static int catalog_source(struct hub *hub, const char *path, struct source *out)
{
	struct catalog_hub_state *st = hub->priv;
	struct name *n = find(st, path);
	const struct catalog_entry *entry;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!n)
		return -ENOENT;
	if (n->kind == NAME_DIR)
		return -EISDIR;
	if (n->kind == NAME_LINK)
		return -EINVAL;
	entry = n->entry;
	rc = entry_digest(entry, &out->digest);
	if (rc == 0)
		rc = download_size(hub, n, &out->size);
	if (rc)
		return rc;
	out->kind = n->kind == NAME_ARCHIVE ? SOURCE_ARCHIVE : is_made(n) ? SOURCE_MADE : SOURCE_FILE;
	out->offline = hub->offline;
	out->url = strdup(entry->url);
	if (asprintf(&out->cache_path, "%s/%s", hub->name, path) < 0)
		out->cache_path = NULL;
	if (!out->url || !out->cache_path)
		goto nomem;
	if (n->command) {
		out->step = SOURCE_STEP_CONVERT;
		/* The entry's meta tells a converter what to build (torchvision-onnx:
		 * the builder, the input size). */
		if (convert_with_meta(n->command, entry->meta_json, &out->command) != 0)
			goto nomem;
		/* An archive's converter reads the extracted tree (a SavedModel
		 * to freeze): the entry's own folder. */
		if (entry->stage == CATALOG_STAGE_ARCHIVE &&
		    asprintf(&out->input_tree, "%s/%s%s%s", hub->name, n->parent,
			     n->parent[0] ? "/" : "", entry->file) < 0) {
			out->input_tree = NULL;
			goto nomem;
		}
	} else if (entry->stage == CATALOG_STAGE_MEMBER) {
		out->step = SOURCE_STEP_MEMBER;
		if (!(out->member = strdup(entry->member)))
			goto nomem;
	} else if (entry->stage == CATALOG_STAGE_GUNZIP) {
		out->step = SOURCE_STEP_GUNZIP;
	}
	for (size_t i = 0; i < entry->nexpect && i < SOURCE_MAX_EXPECT; i++)
		if (!(out->expect[out->nexpect++] = strdup(entry->expect[i])))
			goto nomem;
	if (add_client_copies(hub, entry, out) != 0)
		goto nomem;
	if (!digest_spec_verifies(&out->digest))
		log_info("%s/%s: its catalog gives no digest: it is not verified", hub->name, path);
	return 0;
nomem:
	source_clear(out);
	return -ENOMEM;
}

static const struct hub_option_spec catalog_options[] = {
	{ "catalogs", "DIR", "more catalogs: every *.json in DIR,\nread after the user's",
	  HUB_OPTION_LIST, NULL, 0, 0 },
	{ "system_catalogs", "DIR",
	  "the shipped catalogs (default:\n" CATALOGDIR ")", HUB_OPTION_TEXT, NULL, 0, 0 },
	{ "convert", "FROM:TO:COMMAND",
	  "beside each file of format FROM, a\n<stem>.TO made on first open by COMMAND\n"
	  "(/bin/sh -c; input $1, output $2);\nseveral: comma-separated",
	  HUB_OPTION_LIST, NULL, 0, 0 },
	{ "convert_timeout", "SECONDS", "a converter is killed after this\n(default: 600)",
	  HUB_OPTION_SECONDS, NULL, 1, CATALOG_CONVERT_TIMEOUT_MAX },
	{ "converters", "DIR",
	  "convert's COMMAND may be a converter's\nname: looked up in DIR, then in\n" CONVERTERDIR,
	  HUB_OPTION_TEXT, NULL, 0, 0 },
	{ NULL, NULL, NULL, HUB_OPTION_TEXT, NULL, 0, 0 },
};

const struct hub_ops hub_catalog_ops = {
	.name = "catalogs",
	.flags = HUB_LISTS_ALL | HUB_SIZES_KNOWN | HUB_FROM_CATALOGS,
	.options = catalog_options,
	.open = catalog_open,
	.list = catalog_list,
	.lookup = catalog_lookup,
	.would_block = catalog_would_block,
	.source = catalog_source,
	.readlink = catalog_readlink,
	.url = catalog_url,
	.meta = catalog_meta,
	.client_paths = catalog_client_paths,
	.close = catalog_close,
	.load = catalog_load,
	.count = catalog_count,
	.hub_name = catalog_hub_name,
	.unload = catalog_unload,
	.convert_timeout = catalog_convert_timeout,
};
