/* config.h: the settings of one mount or command, resolved once at start-up
 * from its options, then the environment, then the user's config file, then
 * the system's, then built-in defaults; and where each came from. Not for:
 * parsing the command line (main.c) or a file's syntax (conffile.c). */
#ifndef OMNIHUB_CONFIG_H
#define OMNIHUB_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>
#include <stdio.h>

#include "hub_option.h"
#include "mirror_list.h"

#define CONFIG_INDEX_TTL_DEFAULT 3600u
#define CONFIG_MAX_UNPACK_RATIO_DEFAULT 100u
/* The transfers' settings by default: the same as transfer.h's, which
 * core.c, the one file that knows both, holds equal. */
#define CONFIG_CONNECTIONS_DEFAULT 8u
#define CONFIG_PIECE_SIZE_DEFAULT (4ull << 20)
/* Tries are not what gives up by default: retry_time is (the maximum
 * number of tries is more than its backoff allows). */
#define CONFIG_RETRIES_DEFAULT 100u
#define CONFIG_STALL_TIMEOUT_DEFAULT 30u
#define CONFIG_RETRY_TIME_DEFAULT 120u
#define CONFIG_MEMORY_MAX_DEFAULT (64ull << 20)

/* The files, unless $OMNIHUB_CONFIG and $OMNIHUB_SYSTEM_CONFIG name others;
 * the user's is $XDG_CONFIG_HOME/omnihub/config, else this under $HOME. */
#define CONFIG_USER_FILE_TAIL "/.config/omnihub/config"
#define CONFIG_SYSTEM_FILE "/etc/omnihub/config"

/* The general settings, in the order `omnihub config` lists them. */
enum config_key {
	CONFIG_CACHE,
	CONFIG_CACERT,
	CONFIG_OFFLINE,
	CONFIG_INDEX_TTL,
	CONFIG_STREAM,
	CONFIG_CONNECTIONS,
	CONFIG_PIECE_SIZE,
	CONFIG_CACHE_MAX,
	CONFIG_RETRIES,
	CONFIG_STALL_TIMEOUT,
	CONFIG_RETRY_TIME,
	CONFIG_MEMORY_MAX,
	CONFIG_MAX_UNPACK_RATIO,
	CONFIG_MAX_UNPACK_SIZE,
	CONFIG_MIRROR,
	CONFIG_PROXY,
	CONFIG_NKEYS
};

/* A hub's own option (-o hf_repos=...): main.c keeps the ones the hubs
 * declare, config carries them, and the hub reads and checks its own. */
struct config_hub_option {
	char *name;  /* owned */
	char *value; /* owned */
};

/* What the user asked for on the command line; NULL or 0 when not given.
 * Numbers and sizes are kept as the user wrote them, for config_resolve to
 * check with every other origin's (fuse_opt's %u and %d wrap silently).
 * Strings belong to fuse_opt (freed by options_free). */
struct config_options {
	char *cache;
	char *cacert;
	int offline;         /* -o offline */
	char *offline_value; /* -o offline=BOOLEAN, over -o offline */
	char *index_ttl;
	int stream;
	char *stream_value;
	char *connections;
	char *piece_size;       /* SIZE strings: bytes, or K/M/G/T */
	char *cache_max;
	char *retries;
	char *stall_timeout;
	char *max_unpack_ratio;
	char *retry_time;
	char *memory_max;
	char *max_unpack_size;
	char *mirror; /* space-separated: every -o mirror= in order */
	char *proxy;
	const struct config_hub_option *hub_options; /* borrowed */
	size_t nhub_options;
	/* borrowed: the hubs whose options are known (the front ends pass
	 * hubs.c's hub_registry_options to options_init); NULL: none. */
	const struct hub_option_hubs *hubs;
};

/* A setting with where it came from; every string owned. */
struct config_value {
	char *hub;    /* a per-hub setting's hub; NULL for a hub option */
	char *name;   /* "hf_endpoint", "offline" */
	char *value;  /* as text */
	char *origin; /* "option", "environment $HF_ENDPOINT", "FILE:LINE" */
};

/* Every string is owned by the config and freed by config_free(). */
struct config {
	char *cache_dir;      /* our backing cache */
	char *cacert;         /* extra CA certificates, or NULL */
	bool offline;         /* never touch the network */
	unsigned index_ttl;   /* seconds an index is used before it is fetched again */
	bool stream;           /* reads return bytes as they arrive */
	unsigned connections;  /* requests in flight per file */
	uint64_t piece_size;
	uint64_t cache_max;    /* bytes of blobs kept at most; 0: no limit */
	unsigned retries;       /* tries in a row without progress, at most */
	unsigned stall_timeout; /* seconds under 1 KiB/s before a retry */
	unsigned retry_time;    /* seconds of failures without progress before a
				   transfer fails */
	uint64_t memory_max;    /* bytes of request buffers of every transfer
				   together */
	unsigned max_unpack_ratio; /* an archive may expand to this many times
				      its size (plus 1 GiB) */
	uint64_t max_unpack_size;  /* and to no more than this; 0: no cap */
	struct mirror_list mirrors; /* blob mirrors, asked in order before a hub */
	char *proxy;           /* the HTTP proxy for every request, or NULL */
	bool proxy_from_env;   /* proxy is https_proxy's or the like: libcurl
				  reads those itself, per scheme */
	struct config_value *hub_options; /* owned; the hubs' options that are
					     set, each once */
	size_t nhub_options;
	struct config_value *hub_settings; /* owned; per-hub settings that
					      apply (hub, name = value) */
	size_t nhub_settings;
	struct config_value *sections; /* owned; [sections] naming no hub this
					  build knows: a catalog's, or a typo
					  (config_check_sections) */
	size_t nsections;
	char *origins[CONFIG_NKEYS]; /* owned; where each general setting came
					from (config_describe) */
	char *user_file;   /* owned; the files read; user_file NULL without
			      $HOME */
	char *system_file; /* owned */
	bool user_file_found, system_file_found;
	char error[1024]; /* config_resolve's sentence on failure */
};

/* The typed parsers every setting goes through (config_resolve uses them
 * for the general settings and checks the hubs' numeric options with them;
 * a hub that parses its own option's value should call them too). Each
 * takes the whole text: no sign, no blank, no base prefix, nothing after.
 * -EINVAL when the text is not of the type (empty, "-1", "3x"), -ERANGE
 * when it is but overflows or is outside [min, max]; *out is set on 0 only. */

/* Decimal digits. */
int config_parse_unsigned(const char *text, uint64_t min, uint64_t max, uint64_t *out);
/* A whole number of seconds, as an unsigned (max at most UINT_MAX). */
int config_parse_seconds(const char *text, unsigned min, unsigned max, unsigned *out);
/* "123", "4K", "4M", "10G", "1T" (powers of 1024; "iB" or "B" may follow a
 * unit: "4MiB") into bytes. */
int config_parse_size(const char *text, uint64_t *out);
/* "CALLS" or "CALLS/SECONDS" (a budget per window): calls in [0, calls_max],
 * seconds in [seconds_min, seconds_max]; *seconds is left alone without. */
int config_parse_rate(const char *text, unsigned calls_max, unsigned seconds_min,
		      unsigned seconds_max, unsigned *calls, unsigned *seconds);
/* yes/no, true/false, on/off, 1/0 (any case) into *out; -EINVAL else. */
int config_parse_bool(const char *text, bool *out);

/* The bounds config_resolve holds the general settings to. */
#define CONFIG_INDEX_TTL_MAX (365u * 86400u)
#define CONFIG_CONNECTIONS_MAX 64u
#define CONFIG_PIECE_SIZE_MIN (64ull << 10)
#define CONFIG_PIECE_SIZE_MAX (1ull << 30)
#define CONFIG_RETRIES_MAX 100u
#define CONFIG_STALL_TIMEOUT_MAX 86400u
#define CONFIG_RETRY_TIME_MAX 86400u
#define CONFIG_MEMORY_MAX_MIN (1ull << 20) /* one request in flight */
#define CONFIG_MEMORY_MAX_MAX (1ull << 40)
#define CONFIG_MAX_UNPACK_RATIO_MAX 1000000u
#define CONFIG_BYTES_MAX (1ull << 50) /* 1024T: cache_max, max_unpack_size */

/* Fills cfg from opts, the environment and the config files; on failure
 * returns -errno and sets *why to a sentence (held in cfg->error, valid
 * until cfg is resolved again) that names the setting, where it came from
 * ("-o retries", "$OMNIHUB_OFFLINE", "FILE:LINE: retries") and what it
 * accepts. Every number, size, duration and boolean is checked here, and
 * every hub option by the kind and bounds of its hub_option_spec. */
int config_resolve(struct config *cfg, const struct config_options *opts, const char **why);
void config_free(struct config *cfg);

/* Reads the settings as config_resolve does, but passes every problem's
 * sentence to fn instead of stopping at the first (a bad value is taken
 * as its default, so the next one is checked too). Starts nothing. Returns
 * the number of problems, or -ENOMEM. Not checked here: whether a section
 * names a hub made from the catalogs (config_check_sections), and what
 * the hubs parse themselves (hf_repos' ids, convert's commands). */
typedef void (*config_problem_fn)(void *ctx, const char *sentence);
int config_check(const struct config_options *opts, config_problem_fn fn, void *ctx);

/* The value of a hub's option, or NULL (the hub's default): -o, else its
 * environment variable (hub_option_spec.env), else the user's file, else
 * the system's. A list set in one file on several lines is joined with
 * commas. */
const char *config_hub_option(const struct config *cfg, const char *name);

/* A hub's refusal of its own settings (its open's -EINVAL sentence, which
 * begins with the option's name: "hf_repos: 'x' is not a repo id"), with
 * where that option was set before it: "FILE:LINE: hf_repos: ...", "-o
 * hf_repos: ...", "$HF_ENDPOINT: ...". 0 when located; -ENOENT when the
 * sentence names no option that is set (out holds it as it is). */
int config_locate_refusal(const struct config *cfg, const char *sentence, char *out,
			  size_t out_size);


/* A setting for one hub (its directory's name: "onnx", "torchvision"): a
 * [hub] section's value in a file, unless -o or the environment sets the
 * general one, which then holds for every hub; else the general one. */
bool config_hub_offline(const struct config *cfg, const char *hub);
bool config_hub_stream(const struct config *cfg, const char *hub);
/* A catalog hub's own converters ("convert = ..." in its [hub] section),
 * which add to the general -o convert; NULL when none. */
#define CONFIG_HUB_CONVERT "convert"
const char *config_hub_convert(const struct config *cfg, const char *hub);
unsigned config_hub_connections(const struct config *cfg, const char *hub);
unsigned config_hub_index_ttl(const struct config *cfg, const char *hub);

/* The directory of a hub's cache: its [hub] section's own (a store apart,
 * whatever -o cache says), else the general one. Its limit: the section's
 * cache_max for a hub with its own directory (0: none), else the general
 * cache_max. A [hub] cache_max without a [hub] cache is refused. */
const char *config_hub_cache(const struct config *cfg, const char *hub);
uint64_t config_hub_cache_max(const struct config *cfg, const char *hub);

/* A file's [section] must name a hub; the hubs made from catalogs are only
 * known once the catalogs are read, so the core calls this then with every
 * hub's name. -EINVAL with "FILE:LINE: [name]: no hub has this name" for
 * the first section that names none. */
int config_check_sections(const struct config *cfg, const char *const *hubs, size_t nhubs,
			  char *why, size_t why_size);

/* Calls fn for every general setting (defaults too), then every hub option
 * that is set, then every per-hub setting that applies: hub is NULL but
 * for those; value is NULL for a setting with none (cacert by default).
 * No secret is given to fn: in every URL of a value (a mirror, a proxy,
 * an index URL...) the password is shown as "***" (user:***@host), and a
 * user without a password (a token) too (***@host). */
typedef void (*config_describe_fn)(void *ctx, const char *hub, const char *key,
				   const char *value, const char *origin);
void config_describe(const struct config *cfg, config_describe_fn fn, void *ctx);

/* An environment variable's value, or NULL when unset or empty. */
const char *config_env(const char *name);
/* Whether an environment variable says yes (1, true, yes, on). */
bool config_env_true(const char *name);

#endif
