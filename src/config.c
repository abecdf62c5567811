/* config.c: the settings of one mount, resolved once at start-up from mount
 * options, then the environment, then built-in defaults. Not for: parsing
 * the command line (main.c) or anything that changes while mounted. */
#include "build_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "transfer.h"

/* Bounds on what a user may set: nonsense is refused at start-up. */
#define CONFIG_CONNECTIONS_MAX 64u
#define CONFIG_PIECE_SIZE_MIN (64ull << 10)
#define CONFIG_PIECE_SIZE_MAX (1ull << 30)

int config_parse_size(const char *text, uint64_t *out)
{
	unsigned long long value;
	unsigned shift = 0;
	char *end;

	if (!text || !(*text >= '0' && *text <= '9'))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		return -EINVAL;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' && end[1] == 'B' ? 2 : 1; /* "4MiB", "4MB" */
	if (*end != '\0' || (shift && value > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)value << shift;
	return 0;
}

const char *config_env(const char *name)
{
	const char *value = getenv(name);
	return value && *value ? value : NULL;
}

bool config_env_true(const char *name)
{
	const char *value = config_env(name);
	return value && (strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0 ||
			 strcasecmp(value, "yes") == 0 || strcasecmp(value, "on") == 0);
}

/* The first non-NULL of a and b, copied; NULL when both are. */
static int dup_first(char **out, const char *a, const char *b)
{
	const char *pick = a ? a : b;

	*out = NULL;
	if (!pick)
		return 0;
	*out = strdup(pick);
	return *out ? 0 : -ENOMEM;
}

/* base + suffix, or NULL with -ENOMEM. */
static int join(char **out, const char *base, const char *suffix)
{
	*out = NULL;
	if (asprintf(out, "%s%s", base, suffix) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A directory from an environment variable, else $XDG_CACHE_HOME + xdg_tail,
 * else $HOME + home_tail: the rule the hubs' own clients follow. */
static int cache_home(char **out, const char *env_dir, const char *env_suffix,
		      const char *xdg_tail, const char *home_tail)
{
	const char *home = config_env("HOME");
	const char *dir = env_dir ? config_env(env_dir) : NULL;

	if (dir)
		return join(out, dir, env_suffix);
	if (config_env("XDG_CACHE_HOME"))
		return join(out, config_env("XDG_CACHE_HOME"), xdg_tail);
	return join(out, home ? home : "/", home_tail);
}

int config_resolve(struct config *cfg, const struct config_options *opts, const char **why)
{
	const char *home = config_env("HOME");
	char *hf_home = NULL;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	*why = "out of memory";

	/* Our cache: the Deeplearning4j OmniHub variables name it. */
	if (opts->cache || config_env("OMNIHUB_HOME") || config_env("MODELHUB_PATH"))
		rc = dup_first(&cfg->cache_dir, opts->cache,
			       config_env("OMNIHUB_HOME") ? config_env("OMNIHUB_HOME")
							    : config_env("MODELHUB_PATH"));
	else if (home)
		rc = join(&cfg->cache_dir, home, "/.omnihub");
	else {
		*why = "no cache directory: set -o cache=DIR, $OMNIHUB_HOME or $HOME";
		rc = -EINVAL;
	}
	if (rc)
		goto out;
	/* The daemon changes to / once mounted: keep the cache where the user
	 * meant it. */
	if (cfg->cache_dir[0] != '/') {
		char cwd[PATH_MAX], *relative = cfg->cache_dir;
		if (!getcwd(cwd, sizeof(cwd))) {
			*why = "cannot find the current directory for a relative cache path";
			rc = -errno;
			goto out;
		}
		rc = asprintf(&cfg->cache_dir, "%s/%s", cwd, relative) < 0 ? -ENOMEM : 0;
		if (rc)
			cfg->cache_dir = NULL;
		free(relative);
		if (rc)
			goto out;
	}

	/* libcurl does not read CURL_CA_BUNDLE itself; the curl tool does, and
	 * users expect the same here. */
	rc = dup_first(&cfg->cacert, opts->cacert, config_env("CURL_CA_BUNDLE"));
	if (rc)
		goto out;
	cfg->offline = opts->offline || config_env_true("OMNIHUB_OFFLINE");
	cfg->index_ttl = opts->index_ttl;
	cfg->stream = opts->stream;
	cfg->connections = opts->connections ? opts->connections : TRANSFER_CONNECTIONS_DEFAULT;
	cfg->retries = opts->retries >= 0 ? (unsigned)opts->retries : TRANSFER_RETRIES_DEFAULT;
	cfg->stall_timeout = opts->stall_timeout ? opts->stall_timeout
						 : (unsigned)TRANSFER_STALL_SECONDS_DEFAULT;
	cfg->piece_size = TRANSFER_PIECE_SIZE_DEFAULT;
	if (cfg->connections > CONFIG_CONNECTIONS_MAX) {
		*why = "connections must be between 1 and 64";
		rc = -EINVAL;
		goto out;
	}
	if (opts->piece_size && (config_parse_size(opts->piece_size, &cfg->piece_size) != 0 ||
				 cfg->piece_size < CONFIG_PIECE_SIZE_MIN ||
				 cfg->piece_size > CONFIG_PIECE_SIZE_MAX)) {
		*why = "piece_size must be a size between 64K and 1G (say 4M)";
		rc = -EINVAL;
		goto out;
	}
	if (opts->cache_max && config_parse_size(opts->cache_max, &cfg->cache_max) != 0) {
		*why = "cache_max must be a size in bytes, or with K, M, G or T (say 50G)";
		rc = -EINVAL;
		goto out;
	}
	cfg->max_unpack_ratio =
		opts->max_unpack_ratio ? opts->max_unpack_ratio : CONFIG_MAX_UNPACK_RATIO_DEFAULT;
	if (opts->max_unpack_size &&
	    (config_parse_size(opts->max_unpack_size, &cfg->max_unpack_size) != 0 ||
	     cfg->max_unpack_size == 0)) {
		*why = "max_unpack_size must be a size above 0, with K, M, G or T (say 20G)";
		rc = -EINVAL;
		goto out;
	}

	if (opts->nhub_options) {
		cfg->hub_options = calloc(opts->nhub_options, sizeof(*cfg->hub_options));
		if (!cfg->hub_options) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < opts->nhub_options; i++) {
		struct config_hub_option *o = &cfg->hub_options[cfg->nhub_options++];
		o->name = strdup(opts->hub_options[i].name);
		o->value = strdup(opts->hub_options[i].value);
		if (!o->name || !o->value) {
			rc = -ENOMEM;
			goto out;
		}
	}

	/* Other clients' caches, located as those clients locate them. */
	rc =
	    cache_home(&cfg->onnx_client_dir, "ONNX_HOME", "/hub", "/onnx/hub", "/.cache/onnx/hub");
	if (rc)
		goto out;
	if (config_env("HF_HUB_CACHE")) {
		rc = dup_first(&cfg->hf_hub_cache, config_env("HF_HUB_CACHE"), NULL);
	} else {
		rc = cache_home(&hf_home, "HF_HOME", "", "/huggingface", "/.cache/huggingface");
		if (rc == 0)
			rc = join(&cfg->hf_hub_cache, hf_home, "/hub");
	}
	if (rc)
		goto out;
	rc = cache_home(&cfg->torch_checkpoints, "TORCH_HOME", "/hub/checkpoints",
			"/torch/hub/checkpoints", "/.cache/torch/hub/checkpoints");
	if (rc == 0)
		rc = config_env("KERAS_HOME") ? join(&cfg->keras_models, config_env("KERAS_HOME"),
						     "/models")
					      : join(&cfg->keras_models, home ? home : "/",
						     "/.keras/models");
	if (rc == 0)
		rc = config_env("TFHUB_CACHE_DIR")
			     ? dup_first(&cfg->tfhub_modules, config_env("TFHUB_CACHE_DIR"), NULL)
			     : join(&cfg->tfhub_modules,
				    config_env("TMPDIR") ? config_env("TMPDIR") : "/tmp",
				    "/tfhub_modules");
	if (rc)
		goto out;
	*why = NULL;
out:
	free(hf_home);
	if (rc)
		config_free(cfg);
	return rc;
}

void config_free(struct config *cfg)
{
	free(cfg->cache_dir);
	free(cfg->cacert);
	for (size_t i = 0; i < cfg->nhub_options; i++) {
		free(cfg->hub_options[i].name);
		free(cfg->hub_options[i].value);
	}
	free(cfg->hub_options);
	free(cfg->onnx_client_dir);
	free(cfg->hf_hub_cache);
	free(cfg->torch_checkpoints);
	free(cfg->keras_models);
	free(cfg->tfhub_modules);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_hub_option(const struct config *cfg, const char *name)
{
	const char *value = NULL;

	for (size_t i = 0; i < cfg->nhub_options; i++)
		if (strcmp(cfg->hub_options[i].name, name) == 0)
			value = cfg->hub_options[i].value;
	return value;
}
