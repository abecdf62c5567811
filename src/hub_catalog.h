/* hub_catalog.h: the hubs made from catalogs (torchvision, Keras, TF Hub,
 * Deeplearning4j, datasets, the user's own), one per hub the catalogs
 * name. Not for: parsing catalogs (catalog.h). */
#ifndef OMNIHUB_HUB_CATALOG_H
#define OMNIHUB_HUB_CATALOG_H

#include <stddef.h>

#include "hub.h"

struct catalog_set;
struct config;

extern const struct hub_ops hub_catalog_ops;

/* Loads the shipped catalogs, the user's and those of -o catalogs, and
 * checks the catalog options; a refused file is logged and left out. On
 * failure (a bad option) returns -errno with a sentence in why. */
int hub_catalog_load(const struct config *cfg, struct catalog_set **out, char *why,
		     size_t why_size);
/* Frees what hub_catalog_load made; NULL is ignored. */
void hub_catalog_unload(struct catalog_set *set);
/* -o convert_timeout, or the default. */
unsigned hub_catalog_convert_timeout(const struct config *cfg);

#endif
