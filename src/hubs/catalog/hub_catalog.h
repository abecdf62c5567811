/* hub_catalog.h: the hubs made from catalogs (torchvision, Keras, TF Hub,
 * Deeplearning4j, datasets, the user's own), one per hub the catalogs
 * name. Not for: parsing catalogs (catalog_parse.h). */
#ifndef OMNIHUB_HUB_CATALOG_H
#define OMNIHUB_HUB_CATALOG_H

#include <stddef.h>

#include "hub.h"

/* The catalogs load once (hub_ops.load) and name its hubs. */
extern const struct hub_ops hub_catalog_ops;

#endif
