/* source.c: what a hub hands to the core for one file (source.h): adding
 * other clients' copies, copying it, clearing it. Not for: filling one in
 * (hub_<name>.c) or fetching it (download.c). */
#include "build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

int source_add_local_take(struct source *src, char *path)
{
	if (!path)
		return -ENOMEM;
	if (src->nlocal == SOURCE_MAX_LOCAL) {
		free(path);
		return 0;
	}
	src->local[src->nlocal++] = path;
	return 0;
}

void source_clear(struct source *src)
{
	free(src->url);
	free(src->cache_path);
	for (size_t i = 0; i < src->nlocal; i++)
		free(src->local[i]);
	if (src->auth_header) /* a token lingers in freed memory otherwise */
		explicit_bzero(src->auth_header, strlen(src->auth_header));
	free(src->auth_header);
	free(src->auth_origin);
	free(src->member);
	free(src->command);
	free(src->input_tree);
	for (size_t i = 0; i < src->nexpect; i++)
		free(src->expect[i]);
	memset(src, 0, sizeof(*src));
}

/* strdup of an optional string: NULL stays NULL. */
static int dup_optional(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -ENOMEM : 0;
}

int source_copy(struct source *dst, const struct source *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->kind = src->kind;
	dst->digest = src->digest;
	dst->size = src->size;
	dst->offline = src->offline;
	dst->connections = src->connections;
	dst->step = src->step;
	dst->url = strdup(src->url);
	dst->cache_path = strdup(src->cache_path);
	if (!dst->url || !dst->cache_path)
		goto fail;
	if (dup_optional(src->auth_header, &dst->auth_header) ||
	    dup_optional(src->auth_origin, &dst->auth_origin) ||
	    dup_optional(src->member, &dst->member) || dup_optional(src->command, &dst->command) ||
	    dup_optional(src->input_tree, &dst->input_tree))
		goto fail;
	for (; dst->nexpect < src->nexpect; dst->nexpect++)
		if (!(dst->expect[dst->nexpect] = strdup(src->expect[dst->nexpect])))
			goto fail;
	for (size_t i = 0; i < src->nlocal; i++)
		if (source_add_local_take(dst, strdup(src->local[i])))
			goto fail;
	return 0;
fail:
	source_clear(dst);
	return -ENOMEM;
}
