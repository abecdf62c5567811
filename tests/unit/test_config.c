/* test_config.c: unit tests of config.c: options over environment over
 * defaults, and where other clients' caches are looked for. Not for:
 * option parsing (main.c, through libfuse). */
#include "build_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static const char *const variables[] = {
	"HOME", "XDG_CACHE_HOME", "OMNIHUB_HOME", "MODELHUB_PATH", "OMNIHUB_OFFLINE",
	"OMNIHUB_ONNX_INDEX_URL", "OMNIHUB_ONNX_URL", "CURL_CA_BUNDLE", "ONNX_HOME",
	"HF_HOME", "HF_HUB_CACHE",
};

static void clear_environment(void)
{
	for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
		unsetenv(variables[i]);
	setenv("HOME", "/home/u", 1);
}

static int resolve(struct config *cfg, const struct config_options *opts)
{
	const char *why = NULL;
	return config_resolve(cfg, opts, &why);
}

int main(void)
{
	struct config_options none = { .index_ttl = CONFIG_INDEX_TTL_DEFAULT };
	struct config_hub_option hub_options[] = {
		{ "onnx_url", "https://first/" },
		{ "hf_repos", "a/b,c/d" },
		{ "onnx_url", "https://m/" },
	};
	struct config_options given = {
		.cache = "/opt/cache", .cacert = "/etc/ca.pem", .offline = 1, .index_ttl = 5,
		.hub_options = hub_options, .nhub_options = 3,
	};
	struct config cfg;

	clear_environment();
	tap_ok(resolve(&cfg, &none) == 0, "defaults resolve");
	tap_ok(strcmp(cfg.cache_dir, "/home/u/.omnihub") == 0, "cache: ~/.omnihub");
	tap_ok(!cfg.offline && !cfg.cacert && cfg.index_ttl == CONFIG_INDEX_TTL_DEFAULT,
	       "online, system CAs, default TTL");
	tap_ok(config_hub_option(&cfg, "onnx_url") == NULL, "no hub option given: NULL");
	tap_ok(strcmp(cfg.onnx_client_dir, "/home/u/.cache/onnx/hub") == 0,
	       "ONNX client cache: ~/.cache/onnx/hub");
	tap_ok(strcmp(cfg.hf_hub_cache, "/home/u/.cache/huggingface/hub") == 0,
	       "HF cache: ~/.cache/huggingface/hub");
	config_free(&cfg);

	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("MODELHUB_PATH", "/modelhub", 1);
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.cache_dir, "/modelhub") == 0, "cache: $MODELHUB_PATH");
	tap_ok(strcmp(cfg.onnx_client_dir, "/xdg/onnx/hub") == 0 &&
		       strcmp(cfg.hf_hub_cache, "/xdg/huggingface/hub") == 0,
	       "other caches under $XDG_CACHE_HOME");
	config_free(&cfg);

	setenv("OMNIHUB_HOME", "/omnihub", 1);
	setenv("OMNIHUB_OFFLINE", "1", 1);
	setenv("OMNIHUB_ONNX_INDEX_URL", "https://env/index.json", 1);
	setenv("OMNIHUB_ONNX_URL", "https://env/models/", 1);
	setenv("CURL_CA_BUNDLE", "/env/ca.pem", 1);
	setenv("ONNX_HOME", "/onnx", 1);
	setenv("HF_HOME", "/hf", 1);
	resolve(&cfg, &none);
	tap_ok(strcmp(cfg.cache_dir, "/omnihub") == 0, "cache: $OMNIHUB_HOME before $MODELHUB_PATH");
	tap_ok(cfg.offline, "OMNIHUB_OFFLINE=1");
	tap_ok(strcmp(config_env("OMNIHUB_ONNX_URL"), "https://env/models/") == 0 &&
		       config_env("OMNIHUB_UNSET_VARIABLE") == NULL,
	       "config_env reads the environment");
	tap_ok(strcmp(cfg.cacert, "/env/ca.pem") == 0, "CA from $CURL_CA_BUNDLE");
	tap_ok(strcmp(cfg.onnx_client_dir, "/onnx/hub") == 0, "ONNX client cache: $ONNX_HOME/hub");
	tap_ok(strcmp(cfg.hf_hub_cache, "/hf/hub") == 0, "HF cache: $HF_HOME/hub");
	config_free(&cfg);

	setenv("HF_HUB_CACHE", "/hfcache", 1);
	setenv("OMNIHUB_OFFLINE", "0", 1);
	resolve(&cfg, &given);
	tap_ok(strcmp(cfg.hf_hub_cache, "/hfcache") == 0, "HF cache: $HF_HUB_CACHE first");
	tap_ok(strcmp(cfg.cache_dir, "/opt/cache") == 0 && strcmp(cfg.cacert, "/etc/ca.pem") == 0 &&
		       cfg.index_ttl == 5,
	       "options win over the environment");
	tap_ok(strcmp(config_hub_option(&cfg, "onnx_url"), "https://m/") == 0 &&
		       strcmp(config_hub_option(&cfg, "hf_repos"), "a/b,c/d") == 0 &&
		       config_hub_option(&cfg, "hf_ttl") == NULL,
	       "hub options carried, the last given wins");
	tap_ok(cfg.offline, "-o offline even with OMNIHUB_OFFLINE=0");
	config_free(&cfg);

	unsetenv("OMNIHUB_HOME");
	unsetenv("MODELHUB_PATH");
	unsetenv("HOME");
	{
		const char *why = NULL;
		int rc = config_resolve(&cfg, &none, &why);
		tap_ok(rc != 0 && why && strstr(why, "cache"), "no HOME and no cache: refused (%s)",
		       why ? why : "");
	}
	{
		struct config_options relative = { .cache = "rel/cache" };
		char cwd[4096], want[4200];
		setenv("HOME", "/home/u", 1);
		tap_ok(resolve(&cfg, &relative) == 0 && getcwd(cwd, sizeof(cwd)), "relative cache");
		snprintf(want, sizeof(want), "%s/rel/cache", cwd);
		tap_ok(strcmp(cfg.cache_dir, want) == 0, "made absolute: %s", cfg.cache_dir);
		config_free(&cfg);
	}
	return tap_done();
}
