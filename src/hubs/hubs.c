/* hubs.c: the hubs this build knows, in the order of the mount's root.
 * Adding a hub: its file, and one line here; the registry as conf sees it.
 * Not for: anything else. */
#include "build_config.h"

#include "hub.h"
#include "hub_catalog.h"
#include "hub_hf.h"
#include "hub_onnx.h"
#include "hub_views.h"

const struct hub_ops *const hub_registry[] = {
	&hub_onnx_ops,
	&hub_hf_models_ops,
	&hub_hf_datasets_ops,
	&hub_catalog_ops, /* one hub per hub the catalogs name */
	&hub_views_ops,   /* .clients/: the others in their clients' layouts */
};
const size_t hub_registry_count = sizeof(hub_registry) / sizeof(hub_registry[0]);

/* The registry as conf sees it: names and declared options. */
static const char *registry_name(size_t i)
{
	return hub_registry[i]->name;
}

static const struct hub_option_spec *registry_options(size_t i)
{
	return hub_registry[i]->options;
}

const struct hub_option_hubs hub_registry_options = {
	.count = sizeof(hub_registry) / sizeof(hub_registry[0]),
	.name = registry_name,
	.options = registry_options,
};
