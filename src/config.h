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

#include "mirror.h"

#define CONFIG_INDEX_TTL_DEFAULT 3600u
#define CONFIG_INDEX_TTL_UNSET UINT_MAX /* config_options.index_ttl not given */
#define CONFIG_MAX_UNPACK_RATIO_DEFAULT 100u

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
 * Strings belong to fuse_opt (freed by main.c). */
struct config_options {
	char *cache;
	char *cacert;
	int offline;
	unsigned index_ttl; /* CONFIG_INDEX_TTL_UNSET: not given. main.c starts
			       it at CONFIG_INDEX_TTL_DEFAULT, which is taken
			       as not given too (a file may change it) */
	int stream;
	unsigned connections;   /* 0: not given */
	char *piece_size;       /* SIZE strings: bytes, or K/M/G/T */
	char *cache_max;
	int retries;            /* -1: not given */
	unsigned stall_timeout; /* 0: not given */
	unsigned retry_time;    /* 0: not given */
	unsigned max_unpack_ratio; /* 0: not given */
	char *max_unpack_size;
	char *mirror; /* space-separated: every -o mirror= in order */
	char *proxy;
	const struct config_hub_option *hub_options; /* borrowed */
	size_t nhub_options;
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
	char *onnx_client_dir; /* the ONNX client's cache ($ONNX_HOME/hub ...) */
	char *hf_hub_cache;    /* huggingface_hub's cache ($HF_HUB_CACHE ...) */
	char *torch_checkpoints; /* torch.hub's ($TORCH_HOME/hub/checkpoints ...) */
	char *keras_models;      /* Keras's ($KERAS_HOME/models, ~/.keras/models) */
	char *tfhub_modules;     /* tensorflow_hub's ($TFHUB_CACHE_DIR, else
				    $TMPDIR/tfhub_modules) */
	bool stream;           /* reads return bytes as they arrive */
	unsigned connections;  /* requests in flight per file */
	uint64_t piece_size;
	uint64_t cache_max;    /* bytes of blobs kept at most; 0: no limit */
	unsigned retries;
	unsigned stall_timeout; /* seconds under 1 KiB/s before a retry */
	unsigned retry_time;    /* seconds of failures without progress before a
				   transfer fails */
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

/* "123", "4K", "4M", "10G", "1T" (powers of 1024) into bytes; -EINVAL for
 * anything else or an overflow. */
int config_parse_size(const char *text, uint64_t *out);

/* yes/no, true/false, on/off, 1/0 (any case) into *out; -EINVAL else. */
int config_parse_bool(const char *text, bool *out);

/* Fills cfg from opts, the environment and the config files; on failure
 * returns -errno and sets *why to a sentence (held in cfg->error, valid
 * until cfg is resolved again), naming the file and line of a bad line. */
int config_resolve(struct config *cfg, const struct config_options *opts, const char **why);
void config_free(struct config *cfg);

/* The value of a hub's option, or NULL (the hub's default): -o, else its
 * environment variable (hub_option_spec.env), else the user's file, else
 * the system's. A list set in one file on several lines is joined with
 * commas. */
const char *config_hub_option(const struct config *cfg, const char *name);

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
 * No secret is in the config; a password in a URL is shown as "***". */
typedef void (*config_describe_fn)(void *ctx, const char *hub, const char *key,
				   const char *value, const char *origin);
void config_describe(const struct config *cfg, config_describe_fn fn, void *ctx);

/* An environment variable's value, or NULL when unset or empty. */
const char *config_env(const char *name);
/* Whether an environment variable says yes (1, true, yes, on). */
bool config_env_true(const char *name);

#endif
