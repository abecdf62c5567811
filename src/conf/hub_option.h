/* hub_option.h: what a hub's own option is (-o hf_repos=..., a config
 * file's key): each hub declares its options in this type, so that conf
 * checks them knowing no hub; and every hub's, as the front ends pass them
 * in (config_options.hubs). Not for: what an option means (its hub). */
#ifndef OMNIHUB_HUB_OPTION_H
#define OMNIHUB_HUB_OPTION_H

#include <stddef.h>
#include <stdint.h>

/* One of a hub's own options, -o <name>=VALUE or a config file's line; the
 * value reaches the hub through config_hub_option(), which also reads env
 * (over the files, under -o), and the hub applies its own default. */
/* What a hub option's value is, so config.c checks it knowing no hub; the
 * hub parses it again with the config_parse_* of its kind and the same
 * bounds (min, max of its spec). */
enum hub_option_kind {
	HUB_OPTION_TEXT,     /* any text but an empty one, checked by the hub */
	HUB_OPTION_LIST,     /* a comma-separated list: fuse_opt splits
				"-o hf_repos=a/b,c/d" and main.c joins it back */
	HUB_OPTION_UNSIGNED, /* min to max (config_parse_unsigned) */
	HUB_OPTION_SECONDS,  /* min to max seconds (config_parse_seconds) */
	HUB_OPTION_SIZE,     /* min to max bytes (config_parse_size) */
	HUB_OPTION_BUDGET,   /* CALLS[/SECONDS]: calls 0 to max, seconds 1 to
				HUB_OPTION_BUDGET_SECONDS_MAX (config_parse_rate) */
	HUB_OPTION_BOOL,     /* yes or no (config_parse_bool) */
};

#define HUB_OPTION_BUDGET_SECONDS_MAX 86400u

struct hub_option_spec {
	const char *name;  /* prefixed with the hub's name: "hf_repos" */
	const char *value; /* what it takes, for --help: "URL" */
	const char *help;  /* for --help: lines of at most 50 columns */
	enum hub_option_kind kind;
	const char *env;   /* the environment variable that also sets it, or NULL */
	uint64_t min, max; /* a number's bounds (a budget's calls: max only) */
};

/* Every hub's options, as conf sees the hubs: the registry (hubs.c's
 * hub_registry_options), which the front ends give options_init; conf
 * includes no hub's header. */
struct hub_option_hubs {
	size_t count;
	const char *(*name)(size_t i); /* the i-th hub's directory name */
	/* Its options, ending with a NULL name; NULL: it has none. */
	const struct hub_option_spec *(*options)(size_t i);
};

/* The spec of a hub option of that name among all hubs' (none when hubs
 * is NULL), or NULL. */
const struct hub_option_spec *hub_option_find(const struct hub_option_hubs *hubs,
					      const char *name);

#endif
