/* download.h: one download per cache path, however many readers wait for
 * it: finds or fetches a hub file's bytes, checks their digest as they
 * arrive, stages archives and installs the result in the cache. Not for:
 * HTTP details (fetch.c), on-disk layout (cache.c), extraction (stage.c). */
#ifndef OMNIHUB_DOWNLOAD_H
#define OMNIHUB_DOWNLOAD_H

#include <stdbool.h>

#include "source.h"

struct cache;
struct fetcher;
struct download_set;

int download_set_new(struct download_set **out, struct cache *cache, struct fetcher *fetcher,
		     bool offline);
/* Cancels transfers in flight and waits for every job to end. */
void download_set_free(struct download_set *set);

/* Makes src present and verified in the cache, trying in turn: a file
 * already there, the other clients' copies src lists, then src->url (never
 * when offline). Joins the job already running for the same cache path, if
 * any; blocks until it ends. label names the file in log lines. Returns 0
 * or -errno: ENOENT or EACCES (the server said so), ETIMEDOUT, ENOSPC, or
 * EIO (anything else: a digest mismatch, a broken transfer, offline). Every
 * failure is logged once, by the job. */
int download_ensure(struct download_set *set, const struct source *src, const char *label);

#endif
