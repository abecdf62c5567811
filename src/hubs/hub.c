/* hub.c: the services the core lends hub backends (index files fetched,
 * cached and refreshed; entry lists; option lookup). Not for: anything one
 * hub alone knows (hub_<name>.c) or the list of hubs (hubs.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "digest.h"
#include "fetch.h"
#include "hub.h"
#include "log.h"

void entry_make(struct entry *entry, const char *name, enum entry_type type, uint64_t size,
		time_t mtime)
{
	memset(entry, 0, sizeof(*entry));
	snprintf(entry->name, sizeof(entry->name), "%s", name);
	entry->type = type;
	entry->size = size;
	entry->mtime = mtime;
}

int entry_list_add(struct entry_list *list, const struct entry *entry)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 16;
		struct entry *grown = realloc(list->items, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		list->items = grown;
		list->cap = cap;
	}
	list->items[list->count++] = *entry;
	return 0;
}

void entry_list_free(struct entry_list *list)
{
	free(list->items);
	memset(list, 0, sizeof(*list));
}

static int index_rel(const struct hub *hub, const struct hub_index_spec *spec, char **out)
{
	if (asprintf(out, "%s/%s/%s", CACHE_INDEX_DIR, hub->name, spec->file_name) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Reads the cached copy (not yet parsed) and says how old it is. */
static int read_cached(struct hub *hub, const struct hub_index_spec *spec, const char *rel,
		       char **data, size_t *len, time_t *mtime, char *why, size_t why_size)
{
	int rc = cache_read_small(hub->env->cache, rel, spec->max_bytes, data, len, mtime);

	if (rc)
		snprintf(why, why_size, "no usable cached copy in %s/%s (%s)",
			 cache_root(hub->env->cache), rel, strerror(-rc));
	return rc;
}

static void format_time(time_t t, char *out, size_t out_size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, out_size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Parses index bytes, with their warnings logged once per version of the
 * index: a version told before (its sha256 in REL.warned, beside the
 * cached copy, written only for a version with warnings) is parsed with
 * its warnings at debug level, so that each omnihub command reading the
 * same index does not repeat them. */
static int parse_once(struct hub *hub, const char *rel, hub_index_parse_fn parse,
		      const char *data, size_t len, time_t mtime, char *why, size_t why_size)
{
	char hex[DIGEST_HEX_MAX] = "", *record = NULL, *told = NULL;
	struct digest *dg = NULL;
	size_t told_len = 0;
	time_t told_at;
	bool seen = false;
	unsigned warned;
	int rc;

	if (asprintf(&record, "%s.warned", rel) < 0)
		record = NULL;
	if (record && digest_new(&dg, DIGEST_SHA256, len) == 0 &&
	    digest_update(dg, data, len) == 0 && digest_final_hex(dg, hex) == 0 &&
	    cache_read_small(hub->env->cache, record, DIGEST_HEX_MAX, &told, &told_len,
			     &told_at) == 0)
		seen = told_len == strlen(hex) && memcmp(told, hex, told_len) == 0;
	log_repeats_begin(seen);
	rc = parse(hub, data, len, mtime, why, why_size);
	warned = log_repeats_end();
	if (seen && warned) {
		log_debug("%s: %u warning%s about this index not repeated (told when it "
			  "was first read)", hub->name, warned, warned == 1 ? "" : "s");
	} else if (!seen && warned && rc == 0 && hex[0]) {
		/* Best effort: at worst the warnings are told again. */
		cache_write_small_nosync(hub->env->cache, record, hex, strlen(hex));
	}
	digest_free(dg);
	free(told);
	free(record);
	return rc;
}

int hub_index_load(struct hub *hub, const struct hub_index_spec *spec, bool refresh,
		   hub_index_parse_fn parse, char *why, size_t why_size)
{
	const char *name = hub->name;
	const bool offline = hub->offline;
	const unsigned ttl = hub->index_ttl;
	struct fetch_buffer body = { 0 };
	struct fetch_status status;
	char cached_why[512] = "", when[32] = "";
	char *rel = NULL, *cached = NULL;
	size_t cached_len = 0;
	time_t mtime = 0;
	int rc, cached_rc = -ENOENT;

	rc = index_rel(hub, spec, &rel);
	if (rc) {
		snprintf(why, why_size, "out of memory");
		return rc;
	}

	/* A cached copy fresh enough (any, offline) spares the network. It is
	 * parsed only if it is used: now, or when the download fails. */
	if (!refresh) {
		cached_rc = read_cached(hub, spec, rel, &cached, &cached_len, &mtime, cached_why,
					sizeof(cached_why));
		format_time(mtime, when, sizeof(when));
		if (cached_rc == 0 && (offline || time(NULL) - mtime < (time_t)ttl)) {
			rc = parse_once(hub, rel, parse, cached, cached_len, mtime, why, why_size);
			/* Bytes refused are not settings refused (-EINVAL, hub.h):
			 * another copy may come. */
			if (rc == -EINVAL)
				rc = -EBADMSG;
			if (rc == 0)
				log_info("%s: using the index cached on %s%s", name, when,
					 offline ? " (offline)" : "");
			goto out;
		}
		if (offline) {
			snprintf(why, why_size, "offline, and %s", cached_why);
			rc = cached_rc;
			goto out;
		}
	}

	rc = fetch_get_buffer(hub->env->fetcher, spec->url, spec->max_bytes, &body, &status);
	if (rc == 0) {
		char parse_why[400];
		rc = parse_once(hub, rel, parse, body.data, body.len, time(NULL), parse_why,
				sizeof(parse_why));
		if (rc == -EINVAL)
			rc = -EBADMSG;
		if (rc)
			snprintf(status.error, sizeof(status.error), "refused: %s", parse_why);
	}
	if (rc == 0) {
		int saved = cache_write_small(hub->env->cache, rel, body.data, body.len);
		if (saved)
			log_warn("%s: cannot keep the index in the cache (%s/%s): %s", name,
				 cache_root(hub->env->cache), rel, strerror(-saved));
		log_info("%s: fetched the index from %s (%zu bytes)", name, status.final_url,
			 body.len);
		goto out;
	}

	snprintf(why, why_size, "cannot fetch the index from %s: %s", status.final_url,
		 status.error);
	if (refresh) {
		log_warn("%s: %s; keeping the index already loaded", name, why);
	} else if (cached_rc == 0) {
		char parse_why[400];
		if (parse_once(hub, rel, parse, cached, cached_len, mtime, parse_why,
			       sizeof(parse_why)) == 0) {
			log_warn("%s: %s; using the index cached on %s", name, why, when);
			rc = 0;
		}
	}
out:
	free(cached);
	free(body.data);
	free(rel);
	return rc;
}
