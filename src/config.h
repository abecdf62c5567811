/* config.h: the settings of one mount, resolved once at start-up from mount
 * options, then the environment, then built-in defaults. Not for: parsing
 * the command line (main.c) or anything that changes while mounted. */
#ifndef OMNIHUB_CONFIG_H
#define OMNIHUB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* Real endpoints: the defaults for users with internet. */
#define CONFIG_ONNX_INDEX_URL \
	"https://raw.githubusercontent.com/onnx/models/main/ONNX_HUB_MANIFEST.json"
#define CONFIG_ONNX_URL \
	"https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/"
#define CONFIG_INDEX_TTL_DEFAULT 3600u

/* What the user asked for on the command line; NULL or 0 when not given.
 * Strings belong to fuse_opt (freed by main.c). */
struct config_options {
	char *cache;
	char *cacert;
	char *onnx_index_url;
	char *onnx_url;
	int offline;
	unsigned index_ttl; /* main.c starts it at CONFIG_INDEX_TTL_DEFAULT */
	int stream;
	unsigned connections;   /* 0: not given */
	char *piece_size;       /* SIZE strings: bytes, or K/M/G/T */
	char *cache_max;
	int retries;            /* -1: not given */
	unsigned stall_timeout; /* 0: not given */
};

/* Every string is owned by the config and freed by config_free(). */
struct config {
	char *cache_dir;      /* our backing cache */
	char *cacert;         /* extra CA certificates, or NULL */
	bool offline;         /* never touch the network */
	unsigned index_ttl;   /* seconds an index is used before it is fetched again */
	char *onnx_index_url; /* ONNX_HUB_MANIFEST.json */
	char *onnx_url;       /* base URL that model_path is appended to */
	char *onnx_client_dir; /* the ONNX client's cache ($ONNX_HOME/hub ...) */
	char *hf_hub_cache;    /* huggingface_hub's cache ($HF_HUB_CACHE ...) */
	bool stream;           /* reads return bytes as they arrive */
	unsigned connections;  /* requests in flight per file */
	uint64_t piece_size;
	uint64_t cache_max;    /* bytes of blobs kept at most; 0: no limit */
	unsigned retries;
	unsigned stall_timeout; /* seconds under 1 KiB/s before a retry */
};

/* "123", "4K", "4M", "10G", "1T" (powers of 1024) into bytes; -EINVAL for
 * anything else or an overflow. */
int config_parse_size(const char *text, uint64_t *out);

/* Fills cfg; on failure returns -errno and sets *why to a sentence. */
int config_resolve(struct config *cfg, const struct config_options *opts, const char **why);
void config_free(struct config *cfg);

#endif
