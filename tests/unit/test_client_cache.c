/* test_client_cache.c: unit tests of client_cache.c: where each hub's own
 * client keeps its cache, each variable over the next, as those clients
 * read them. Not for: what those caches hold (test_hf_mount.py and the
 * other integration tests read them through a mount). */
#include "build_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_cache.h"
#include "tap.h"

static const char *const variables[] = {
	"HOME", "XDG_CACHE_HOME", "TMPDIR", "ONNX_HOME", "HF_HOME", "HF_HUB_CACHE",
	"TORCH_HOME", "KERAS_HOME", "TFHUB_CACHE_DIR",
};

static void clear_environment(void)
{
	for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++)
		unsetenv(variables[i]);
	setenv("HOME", "/home/u", 1);
}

/* Whether client's folder is want now. */
static bool dir_is(const char *client, const char *want)
{
	char *dir = NULL;
	bool same = client_cache_dir(client, &dir) == 0 && dir && strcmp(dir, want) == 0;

	if (!same)
		printf("# %s: %s, not %s\n", client, dir ? dir : "(none)", want);
	free(dir);
	return same;
}

static void test_defaults(void)
{
	clear_environment();
	tap_ok(dir_is("onnx", "/home/u/.cache/onnx/hub"), "ONNX client cache: ~/.cache/onnx/hub");
	tap_ok(dir_is("huggingface", "/home/u/.cache/huggingface/hub"),
	       "HF cache: ~/.cache/huggingface/hub");
	tap_ok(dir_is("torch", "/home/u/.cache/torch/hub/checkpoints"),
	       "torch.hub: ~/.cache/torch/hub/checkpoints");
	tap_ok(dir_is("keras", "/home/u/.keras/models"), "Keras: ~/.keras/models");
	tap_ok(dir_is("tfhub", "/tmp/tfhub_modules"), "tensorflow_hub: /tmp/tfhub_modules");

	/* Empty is unset, as config_env reads every variable. */
	setenv("ONNX_HOME", "", 1);
	setenv("HF_HUB_CACHE", "", 1);
	setenv("TFHUB_CACHE_DIR", "", 1);
	tap_ok(dir_is("onnx", "/home/u/.cache/onnx/hub") &&
		       dir_is("huggingface", "/home/u/.cache/huggingface/hub") &&
		       dir_is("tfhub", "/tmp/tfhub_modules"),
	       "an empty variable counts as unset");

	/* Without $HOME, "/" stands for it, as config.c did before. */
	clear_environment();
	unsetenv("HOME");
	tap_ok(dir_is("onnx", "//.cache/onnx/hub") && dir_is("keras", "//.keras/models"),
	       "no $HOME: under /");
}

static void test_xdg(void)
{
	clear_environment();
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("TMPDIR", "/scratch", 1);
	tap_ok(dir_is("onnx", "/xdg/onnx/hub") && dir_is("huggingface", "/xdg/huggingface/hub"),
	       "other caches under $XDG_CACHE_HOME");
	tap_ok(dir_is("torch", "/xdg/torch/hub/checkpoints"),
	       "torch.hub under $XDG_CACHE_HOME too");
	tap_ok(dir_is("keras", "/home/u/.keras/models"), "Keras reads no $XDG_CACHE_HOME");
	tap_ok(dir_is("tfhub", "/scratch/tfhub_modules"), "tensorflow_hub: $TMPDIR/tfhub_modules");
}

static void test_homes(void)
{
	clear_environment();
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("ONNX_HOME", "/onnx", 1);
	setenv("HF_HOME", "/hf", 1);
	setenv("TORCH_HOME", "/torch", 1);
	setenv("KERAS_HOME", "/keras", 1);
	setenv("TMPDIR", "/scratch", 1);
	setenv("TFHUB_CACHE_DIR", "/tfhub", 1);
	tap_ok(dir_is("onnx", "/onnx/hub"), "ONNX client cache: $ONNX_HOME/hub");
	tap_ok(dir_is("huggingface", "/hf/hub"), "HF cache: $HF_HOME/hub");
	tap_ok(dir_is("torch", "/torch/hub/checkpoints"), "torch.hub: $TORCH_HOME/hub/checkpoints");
	tap_ok(dir_is("keras", "/keras/models"), "Keras: $KERAS_HOME/models");
	tap_ok(dir_is("tfhub", "/tfhub"), "tensorflow_hub: $TFHUB_CACHE_DIR over $TMPDIR");

	setenv("HF_HUB_CACHE", "/hfcache", 1);
	tap_ok(dir_is("huggingface", "/hfcache"), "HF cache: $HF_HUB_CACHE first");
	tap_ok(dir_is("onnx", "/onnx/hub"), "and it moves no other client's");
}

static void test_unknown(void)
{
	char *dir = (char *)"untouched";

	tap_ok(client_cache_dir("pip", &dir) == -ENOENT && dir == NULL,
	       "a client it does not know: -ENOENT, no folder");
}

int main(void)
{
	test_defaults();
	test_xdg();
	test_homes();
	test_unknown();
	return tap_done();
}
