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

static const char *env_nonempty(const char *name)
{
	const char *value = getenv(name);
	return value && *value ? value : NULL;
}

static bool env_true(const char *name)
{
	const char *value = env_nonempty(name);
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
	const char *home = env_nonempty("HOME");
	const char *dir = env_dir ? env_nonempty(env_dir) : NULL;

	if (dir)
		return join(out, dir, env_suffix);
	if (env_nonempty("XDG_CACHE_HOME"))
		return join(out, env_nonempty("XDG_CACHE_HOME"), xdg_tail);
	return join(out, home ? home : "/", home_tail);
}

int config_resolve(struct config *cfg, const struct config_options *opts, const char **why)
{
	const char *home = env_nonempty("HOME");
	char *hf_home = NULL;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	*why = "out of memory";

	/* Our cache: the Deeplearning4j OmniHub variables name it. */
	if (opts->cache || env_nonempty("OMNIHUB_HOME") || env_nonempty("MODELHUB_PATH"))
		rc = dup_first(&cfg->cache_dir, opts->cache,
			       env_nonempty("OMNIHUB_HOME") ? env_nonempty("OMNIHUB_HOME")
							    : env_nonempty("MODELHUB_PATH"));
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
	rc = dup_first(&cfg->cacert, opts->cacert, env_nonempty("CURL_CA_BUNDLE"));
	if (rc)
		goto out;
	cfg->offline = opts->offline || env_true("OMNIHUB_OFFLINE");
	cfg->index_ttl = opts->index_ttl;

	rc = dup_first(&cfg->onnx_index_url, opts->onnx_index_url,
		       env_nonempty("OMNIHUB_ONNX_INDEX_URL") ? env_nonempty("OMNIHUB_ONNX_INDEX_URL")
							      : CONFIG_ONNX_INDEX_URL);
	if (rc)
		goto out;
	rc = dup_first(&cfg->onnx_url, opts->onnx_url,
		       env_nonempty("OMNIHUB_ONNX_URL") ? env_nonempty("OMNIHUB_ONNX_URL")
							: CONFIG_ONNX_URL);
	if (rc)
		goto out;

	/* Other clients' caches, located as those clients locate them. */
	rc = cache_home(&cfg->onnx_client_dir, "ONNX_HOME", "/hub", "/onnx/hub", "/.cache/onnx/hub");
	if (rc)
		goto out;
	if (env_nonempty("HF_HUB_CACHE")) {
		rc = dup_first(&cfg->hf_hub_cache, env_nonempty("HF_HUB_CACHE"), NULL);
	} else {
		rc = cache_home(&hf_home, "HF_HOME", "", "/huggingface", "/.cache/huggingface");
		if (rc == 0)
			rc = join(&cfg->hf_hub_cache, hf_home, "/hub");
	}
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
	free(cfg->onnx_index_url);
	free(cfg->onnx_url);
	free(cfg->onnx_client_dir);
	free(cfg->hf_hub_cache);
	memset(cfg, 0, sizeof(*cfg));
}
