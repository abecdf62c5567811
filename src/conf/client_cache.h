/* client_cache.h: where each hub's own client keeps its cache (onnx.hub,
 * huggingface_hub, torch.hub, Keras, tensorflow_hub), found from the
 * environment as that client finds it. Not for: what those caches hold
 * (hf_cache.c, the hubs' files) or our own cache (cache.c). */
#ifndef OMNIHUB_CLIENT_CACHE_H
#define OMNIHUB_CLIENT_CACHE_H

/* The folder the client keeps its downloads in, into *out (the caller's,
 * to free): "onnx" ($ONNX_HOME/hub), "huggingface" ($HF_HUB_CACHE, else
 * $HF_HOME/hub), "torch" ($TORCH_HOME/hub/checkpoints), "keras"
 * ($KERAS_HOME/models, else ~/.keras/models), "tfhub" ($TFHUB_CACHE_DIR,
 * else $TMPDIR/tfhub_modules); onnx, huggingface and torch fall back on
 * $XDG_CACHE_HOME, then ~/.cache. Read through config_env, so an empty
 * variable counts as unset. A hub calls it once, when it opens: the path
 * is not checked to exist (the client may make it later). 0, -ENOENT for
 * another client's name (*out NULL), or -ENOMEM. */
int client_cache_dir(const char *client, char **out);

#endif
