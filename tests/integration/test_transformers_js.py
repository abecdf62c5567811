#!/usr/bin/env python3
"""Integration test of transformers.js (@huggingface/transformers from npm), unmodified, reading
a model through the mount's huggingface/ folder with remote models off.
Not for the views of .clients/ (test_views.py) nor the HF hub itself (test_hf_mount.py).
"""

# Run by `make check`:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_transformers_js.py
# Needs python3-onnx and python3-numpy (the fixture's graph and the expected embeddings) and
# npm with node (scripts/install-deps): the set-up runs `npm install --ignore-scripts
# @huggingface/transformers` once into BUILDDIR/npm-transformers/ (onnxruntime-node's install
# script would fetch from hosts this machine cannot reach; its npm tarball already holds the
# linux-x64 binary). The test skips, saying why, when npm or that binary is missing.
# Every path the client computes is computed here as its source does, each one cited.

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SkipTest, TlsDir, check, check_eq, npm_package, run,  # noqa: E402
                           serving, sha256_bytes, test)

import make_bert_repo as bert  # noqa: E402
from hf_server import HfServer  # noqa: E402

NPM_PACKAGE = "@huggingface/transformers"
CLIENT_TIMEOUT = 180  # seconds the client process may take (ASan daemons are slow)
TOLERANCE = 1e-5
SHORT = "Hello world"  # a second, shorter sentence: the batch is padded, so the mask counts

# The client: transformers.js's own pipeline with the two settings its documentation gives for
# local models (env.localModelPath, env.allowRemoteModels = false). Its file cache (env.cacheDir)
# is an empty folder of the test's, so nothing can come from an earlier run, and its fetch
# fails, so a download attempt cannot pass.
CLIENT = r"""
const [pkg, models, cacheDir, repo, sentence, short] = process.argv.slice(1);
(async () => {
  const { pipeline, env, AutoTokenizer } = await import(pkg);
  env.localModelPath = models;
  env.allowRemoteModels = false;
  env.cacheDir = cacheDir;
  const fetched = [];
  env.fetch = async (url) => { fetched.push(String(url)); throw new Error("fetch " + url); };
  const tokenizer = await AutoTokenizer.from_pretrained(repo);
  const enc = tokenizer(sentence);
  // dtype fp32: getSession's suffix "" (DEFAULT_DTYPE_SUFFIX_MAPPING), so onnx/model.onnx.
  const extract = await pipeline("feature-extraction", repo, { dtype: "fp32", device: "cpu" });
  const out = { ids: Array.from(enc.input_ids.data, Number), fetched };
  for (const normalize of [false, true]) {
    const t = await extract([sentence, short], { pooling: "mean", normalize });
    out[normalize ? "normalized" : "mean"] = { dims: t.dims, data: Array.from(t.data) };
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e && e.stack || String(e)); process.exit(1); });
"""


class Shared(TlsDir):
    def __init__(self, run_dir):
        super().__init__(run_dir)
        self.hf_dir = os.path.join(run_dir, "hf-fixture")
        self.desc = bert.make_bert_repo(self.hf_dir)
        self.hf = HfServer(self.hf_dir, self.tls_dir)
        self.npm_why = None  # why the client is not there, once asked

    def start(self):
        self.hf.start()


def shared_setup(run_dir):
    shared = Shared(run_dir)
    return serving(shared, shared.hf)


def client_module(t):
    """transformers.js's Node entry point, installed once per build with npm install
    --ignore-scripts; SkipTest without npm, or without onnxruntime-node's linux-x64 binary."""
    prefix, package = npm_package(t, "npm-transformers", NPM_PACKAGE)
    # onnxruntime-node's binding.js: bin/napi-v6/<platform>/<arch>/onnxruntime_binding.node.
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    binding = os.path.join(prefix, "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux",
                           arch, "onnxruntime_binding.node")
    if not os.path.isfile(binding):
        raise SkipTest("onnxruntime-node has no prebuilt binary for linux-%s in its npm package "
                       "(%s), and its install script cannot fetch one here" % (arch, binding))
    with open(os.path.join(package, "package.json")) as f:
        entry = json.load(f)["exports"]["node"]["import"]["default"]
    return os.path.join(package, entry)


def expected_embeddings(sentences_ids, normalize):
    """What feature-extraction with pooling "mean" gives, in numpy: the graph's
    last_hidden_state (make_bert_repo.last_hidden_state) averaged over each sentence's tokens
    (mean_pooling: the mask-weighted sum over the mask's sum), then L2-normalised if asked."""
    import numpy
    rows = []
    for ids in sentences_ids:
        hidden = bert.last_hidden_state([ids], [[0] * len(ids)], [[1] * len(ids)])[0]
        row = hidden.astype(numpy.float64).mean(axis=0)
        if normalize:
            row = row / numpy.linalg.norm(row)
        rows.append(row)
    return numpy.array(rows)


# ----------------------------------------------------------------------------- tests

@test
def transformers_js_feature_extraction_through_the_mount(t):
    """transformers.js, unmodified, with env.localModelPath = MOUNTPOINT/huggingface/ and
    remote models off, loads acme/tiny-bert's config, WordPiece tokenizer and ONNX graph from
    the mount (the daemon fetched and verified them from the fixture Hub) and runs a
    feature-extraction pipeline: its token ids are the tokenizer.json's, and its mean-pooled
    embeddings (plain and normalised, a padded batch of two) equal numpy's within 1e-5. It
    fetched nothing and cached nothing of its own."""
    module = client_module(t)
    sentences = [bert.SENTENCE_TOKENS, ["[CLS]", "hello", "world", "[SEP]"]]
    ids = [[bert.VOCAB[tok] for tok in s] for s in sentences]
    js_cache = os.path.join(t.dir, "js-cache")
    os.makedirs(js_cache)
    repo = bert.BERT_REPO
    with t.mount(["cache=" + t.cache, "cacert=" + t.shared.hf.cacert],
                 env={"HF_ENDPOINT": t.shared.hf.endpoint}) as m:
        models = m.path("huggingface") + "/"
        res = subprocess.run(["node", "-e", CLIENT, module, models, js_cache, repo,
                              bert.SENTENCE, SHORT],
                             capture_output=True, text=True, env=t.env, timeout=CLIENT_TIMEOUT)
        check_eq(res.returncode, 0, "the client's status (stderr: %s)" % res.stderr[-2000:])
        got = json.loads(res.stdout.strip().splitlines()[-1])
        # transformers.js's hub.js, buildResourcePaths: localPath = pathJoin(env.localModelPath,
        # pathJoin(repo, filename)); these are the files it read, served by the mount.
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"):
            path = os.path.join(models, repo, name)
            with open(path, "rb") as f:
                data = f.read()
            want = next(f["sha256"] for c in t.shared.desc["repos"][0]["commits"].values()
                        for f in c["files"] if f["path"] == name)
            check_eq(sha256_bytes(data), want, "the mount's %s" % name)
        # The daemon resolved the graph at the fixture Hub (hf_server.py's "resolve" requests)
        # and took its bytes from the CDN, as for any LFS file.
        resolved = t.shared.hf.requests(kind="resolve", path_substring="onnx/model.onnx")
        from_cdn = t.shared.hf.requests(kind="cdn")
    check_eq(got["fetched"], [], "transformers.js's own fetches")
    check_eq(os.listdir(js_cache), [], "transformers.js's file cache")
    check_eq(got["ids"], ids[0], "the tokenizer's ids of %r" % bert.SENTENCE)
    check(resolved and from_cdn, "the daemon fetched onnx/model.onnx from the fixture Hub")
    import numpy
    for key, normalize in (("mean", False), ("normalized", True)):
        check_eq(got[key]["dims"], [2, bert.HIDDEN], "the %s embedding's dims" % key)
        have = numpy.array(got[key]["data"]).reshape(2, bert.HIDDEN)
        want = expected_embeddings(ids, normalize)
        diff = float(numpy.abs(have - want).max())
        check(diff <= TOLERANCE, "the %s embeddings differ from numpy's by %g (> %g):\n%r\n%r"
              % (key, diff, TOLERANCE, have.tolist(), want.tolist()))


if __name__ == "__main__":
    run(shared_setup)
