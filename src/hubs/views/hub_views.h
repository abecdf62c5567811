/* hub_views.h: the views of clients' caches, <mount>/.clients/: each
 * client's cache layout as links into the other hubs. Not for: what a
 * hub's client names its files (each hub's client_paths says). */
#ifndef OMNIHUB_HUB_VIEWS_H
#define OMNIHUB_HUB_VIEWS_H

#include "hub.h"

/* Its folder under the mount: a hub's name never begins with '.'. */
#define HUB_VIEWS_NAME ".clients"

extern const struct hub_ops hub_views_ops;

#endif
