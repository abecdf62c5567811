/* client_cache.c: where each hub's own client keeps its cache (onnx.hub,
 * huggingface_hub, torch.hub, Keras, tensorflow_hub), found from the
 * environment as that client finds it. Not for: what those caches hold
 * (hf_cache.c, the hubs' files) or our own cache (cache.c). */
#include "build_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_cache.h"
#include "config.h"

/* How one client finds its folder: the first variable that is set of
 * whole (the folder itself), dir (+ dir_tail), $XDG_CACHE_HOME (+
 * xdg_tail, when the client reads it), else base (or base_default when
 * unset) + base_tail. */
struct client_rule {
	const char *client;
	const char *whole;
	const char *dir, *dir_tail;
	const char *xdg_tail;
	const char *base, *base_default, *base_tail;
};

static const struct client_rule rules[] = {
	/* onnx/hub.py: _ONNX_HUB_DIR, from $ONNX_HOME or $XDG_CACHE_HOME/onnx. */
	{ "onnx", NULL, "ONNX_HOME", "/hub", "/onnx/hub", "HOME", "/", "/.cache/onnx/hub" },
	/* huggingface_hub/constants.py: HF_HUB_CACHE, else HF_HOME/hub. */
	{ "huggingface", "HF_HUB_CACHE", "HF_HOME", "/hub", "/huggingface/hub", "HOME", "/",
	  "/.cache/huggingface/hub" },
	/* torch/hub.py: get_dir() + "/checkpoints", from $TORCH_HOME or
	 * $XDG_CACHE_HOME/torch. */
	{ "torch", NULL, "TORCH_HOME", "/hub/checkpoints", "/torch/hub/checkpoints", "HOME", "/",
	  "/.cache/torch/hub/checkpoints" },
	/* keras get_file: $KERAS_HOME, else ~/.keras; cache_subdir "models". */
	{ "keras", NULL, "KERAS_HOME", "/models", NULL, "HOME", "/", "/.keras/models" },
	/* tensorflow_hub resolver.py: $TFHUB_CACHE_DIR, else tfhub_modules
	 * in tempfile.gettempdir(), taken here as $TMPDIR or /tmp. */
	{ "tfhub", "TFHUB_CACHE_DIR", NULL, NULL, NULL, "TMPDIR", "/tmp", "/tfhub_modules" },
};

int client_cache_dir(const char *client, char **out)
{
	const struct client_rule *rule = NULL;
	const char *head, *tail = "";
	int rc = 0;

	*out = NULL;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]) && !rule; i++)
		if (strcmp(rules[i].client, client) == 0)
			rule = &rules[i];
	if (!rule) {
		rc = -ENOENT;
		goto out;
	}
	if (rule->whole && config_env(rule->whole)) {
		head = config_env(rule->whole);
	} else if (rule->dir && config_env(rule->dir)) {
		head = config_env(rule->dir);
		tail = rule->dir_tail;
	} else if (rule->xdg_tail && config_env("XDG_CACHE_HOME")) {
		head = config_env("XDG_CACHE_HOME");
		tail = rule->xdg_tail;
	} else {
		head = config_env(rule->base) ? config_env(rule->base) : rule->base_default;
		tail = rule->base_tail;
	}
	if (asprintf(out, "%s%s", head, tail) < 0) {
		*out = NULL;
		rc = -ENOMEM;
	}
out:
	return rc;
}
