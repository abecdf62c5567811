/* config.h: the settings of one mount, resolved once at start-up from mount
 * options, then the environment, then built-in defaults. Not for: parsing
 * the command line (main.c) or anything that changes while mounted. */
#ifndef OMNIHUB_CONFIG_H
#define OMNIHUB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#define CONFIG_INDEX_TTL_DEFAULT 3600u
#define CONFIG_MAX_UNPACK_RATIO_DEFAULT 100u

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
	unsigned index_ttl; /* main.c starts it at CONFIG_INDEX_TTL_DEFAULT */
	int stream;
	unsigned connections;   /* 0: not given */
	char *piece_size;       /* SIZE strings: bytes, or K/M/G/T */
	char *cache_max;
	int retries;            /* -1: not given */
	unsigned stall_timeout; /* 0: not given */
	unsigned max_unpack_ratio; /* 0: not given */
	char *max_unpack_size;
	const struct config_hub_option *hub_options; /* borrowed */
	size_t nhub_options;
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
	unsigned max_unpack_ratio; /* an archive may expand to this many times
				      its size (plus 1 GiB) */
	uint64_t max_unpack_size;  /* and to no more than this; 0: no cap */
	struct config_hub_option *hub_options; /* owned; the last given wins */
	size_t nhub_options;
};

/* "123", "4K", "4M", "10G", "1T" (powers of 1024) into bytes; -EINVAL for
 * anything else or an overflow. */
int config_parse_size(const char *text, uint64_t *out);

/* Fills cfg; on failure returns -errno and sets *why to a sentence. */
int config_resolve(struct config *cfg, const struct config_options *opts, const char **why);
void config_free(struct config *cfg);

/* The value of a hub's option as given, or NULL (the hub's default). */
const char *config_hub_option(const struct config *cfg, const char *name);

/* An environment variable's value, or NULL when unset or empty. */
const char *config_env(const char *name);
/* Whether an environment variable says yes (1, true, yes, on). */
bool config_env_true(const char *name);

#endif
