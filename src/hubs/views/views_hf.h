/* views_hf.h: the huggingface_hub cache layout of the views
 * (<mount>/.clients/huggingface/hub/), over the hubs that say where their
 * repos are there (hub_ops.client_repos). Not for: the views' other
 * layouts or their folder (hub_views.c). */
#ifndef OMNIHUB_VIEWS_HF_H
#define OMNIHUB_VIEWS_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "hub.h"

/* The views' folder of this layout, relative to the views' root. */
#define VIEWS_HF_DIR "huggingface/hub"

/* Whether path (relative to the views' root) is in this layout. */
bool views_hf_owns(const char *path);

/* As hub_ops' functions, for self (the views hub) and a path it owns;
 * mtime is every name's. */
int views_hf_list(struct hub *self, const char *path, time_t mtime, struct entry_list *out);
int views_hf_lookup(struct hub *self, const char *path, time_t mtime, struct entry *out);
int views_hf_readlink(struct hub *self, const char *path, char *out, size_t out_size);
int views_hf_content(struct hub *self, const char *path, char **data, size_t *len);
bool views_hf_would_block(struct hub *self, const char *path, bool list);

/* A link at path (relative to the views' root) to target in the hub named
 * peer, as a relative link: up to the mount's root (path's folders and the
 * views' own), then in; into out. 0 or -ENAMETOOLONG. Every layout's. */
int views_link_to(const char *path, const char *peer, const char *target, char *out,
		  size_t out_size);

#endif
