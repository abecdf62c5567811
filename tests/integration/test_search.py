#!/usr/bin/env python3
"""Integration tests of `omnihub search`: the Hugging Face Hub's search (the local imitation of
it), the catalogs' model names and meta (the shipped catalogs), the ONNX zoo's index names, and
what offline searches. Not for listing folders (test_omnihub.py) nor for the mount.
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB=BUILDDIR/omnihub OMNIHUB_FUSE=BUILDDIR/omnihub-fuse \
#         /usr/bin/python3 tests/integration/test_search.py [PART]

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, HfFixture, check, check_eq, hf_setup, run,  # noqa: E402
                           run_omnihub, test)

import make_hf_repos as fx  # noqa: E402

TOKEN = "hf_TestTokenValue0123456789abcdefXYZ"
COMMAND_TIMEOUT = 60.0
SHIPPED = os.path.join(SRCDIR, "catalogs")
# A cached ONNX zoo index of two models: what offline has of the zoo.
ZOO_INDEX = [
    {"model": "SqueezeNet 1.0", "opset_version": 9,
     "model_path": "validated/vision/classification/squeezenet/model/squeezenet1.0-9.onnx",
     "metadata": {"model_sha": "ab" * 32, "model_bytes": 1000}},
    {"model": "ResNet50-v2", "opset_version": 7,
     "model_path": "validated/vision/classification/resnet/model/resnet50-v2-7.onnx",
     "metadata": {"model_sha": "cd" * 32, "model_bytes": 2000}},
]


class Shared(HfFixture):
    def __init__(self, run_dir):
        super().__init__(run_dir, token=TOKEN)
        self.empty = os.path.join(run_dir, "empty")
        os.makedirs(self.empty)


def shared_setup(run_dir):
    return hf_setup(Shared(run_dir))


def before_each(shared):
    shared.srv.clear_log()


def omnihub(t, *args, want=0, catalogs=True, env=None):
    srv = t.shared.srv
    opts = ["cache=" + t.cache] + srv.options() + [
        "catalogs=" + t.shared.empty,
        "system_catalogs=" + (SHIPPED if catalogs else t.shared.empty)]
    return run_omnihub(t, args, opts, dict(srv.daemon_env(), **(env or {})), want,
                       COMMAND_TIMEOUT)


def searches(t):
    t.shared.srv.wait_idle()
    return [r["raw_path"] + "?" + r["query"] for r in t.shared.srv.requests(kind="api")
            if "search=" in r["query"]]


@test
def hub_search_finds_repos_with_their_mount_paths(t):
    """The Hub's /api/models?search= is asked once, with --limit; each repo it names is
    printed as huggingface/<org>/<name>; datasets only with --datasets; a private repo
    only with the token."""
    res = omnihub(t, "search", "tiny", "--hub", "huggingface", "--limit", "5")
    check_eq(res.stdout.splitlines(), ["huggingface/" + fx.ONNX_REPO], "results")
    check_eq(searches(t), ["/api/models?search=tiny&limit=5"], "calls to the Hub's search")
    res = omnihub(t, "search", "TINY", "--datasets", catalogs=False)
    check_eq(res.stdout.splitlines(), ["huggingface/" + fx.ONNX_REPO,
                                       "huggingface-datasets/" + fx.DATASET_REPO],
             "results with the datasets")
    res = omnihub(t, "search", "private-model", "--hub", "huggingface")
    check_eq(res.stdout, "", "a private repo without the token")
    check("nothing matches" in res.stderr, "a word for no result: %r" % res.stderr)
    res = omnihub(t, "--json", "search", "private-model", "--hub", "huggingface",
                  env={"HF_TOKEN": TOKEN})
    doc = json.loads(res.stdout)
    check_eq([(r["path"], r["hub"], r["matched"]) for r in doc["results"]],
             [("huggingface/" + fx.PRIVATE_REPO, "huggingface", "hub search")],
             "a private repo with the token, as JSON")
    res = omnihub(t, "search", "a b/c", "--hub", "huggingface")
    check("search=a%20b%2Fc&" in searches(t)[-1], "the query escaped: %r" % searches(t)[-1])


@test
def catalogs_are_searched_by_name_and_meta(t):
    """The catalogs' models match by name (any case) and by meta; the result is the model's
    folder under the mount. Nothing is downloaded."""
    res = omnihub(t, "search", "ResNet50", "--hub", "torchvision")
    check_eq(res.stdout.splitlines(), ["torchvision/resnet50", "torchvision/wide_resnet50_2"],
             "torchvision's resnet50s")
    res = omnihub(t, "search", "resnet50")
    lines = res.stdout.splitlines()
    check("keras/ResNet50" in lines and "torchvision/resnet50" in lines,
          "every hub searched: %r" % lines)
    # The AlexNet paper's arXiv id is only in torchvision's meta of alexnet.
    doc = json.loads(omnihub(t, "--json", "search", "1404.5997").stdout)
    check_eq([(r["path"], r["matched"]) for r in doc["results"]],
             [("torchvision/alexnet", "meta")], "a match in the meta")
    check_eq(os.listdir(os.path.join(t.cache, "blobs")) if os.path.isdir(
        os.path.join(t.cache, "blobs")) else [], [], "blobs after searching")
    res = omnihub(t, "search", "resnet", "--hub", "torchvision", "-n", "2")
    check_eq(len(res.stdout.splitlines()), 2, "--limit 2")
    res = omnihub(t, "search", "x", "--hub", "no-such-hub", want=4)
    check("no such hub" in res.stderr, res.stderr)


@test
def offline_searches_the_local_indexes_only_and_says_so(t):
    """Offline, the Hub is not asked: the catalogs and the cached ONNX zoo index are
    searched, and stderr says that only they were."""
    index = os.path.join(t.cache, ".index", "onnx")
    os.makedirs(index)
    with open(os.path.join(index, "ONNX_HUB_MANIFEST.json"), "w") as f:
        json.dump(ZOO_INDEX, f)
    res = omnihub(t, "--offline", "search", "resnet50")
    lines = res.stdout.splitlines()
    check("torchvision/resnet50" in lines, "a catalog's model offline: %r" % lines)
    onnx = [line for line in lines if line.startswith("onnx/")]
    check_eq(len(onnx), 1, "the zoo's model offline: %r" % lines)
    check("resnet50" in onnx[0].lower(), onnx[0])
    check(not any(line.startswith("huggingface") for line in lines), "Hub results offline")
    check("offline: only the local indexes were searched" in res.stderr, res.stderr)
    check_eq(searches(t), [], "calls to the Hub's search offline")
    res = omnihub(t, "--offline", "search", "SQUEEZE", "--hub", "onnx")
    check_eq(len(res.stdout.splitlines()), 1, "the zoo's squeezenet: %r" % res.stdout)
    check("squeeze" in res.stdout.lower(), res.stdout)
    res = omnihub(t, "search", "resnet50", "--offline", "--json", "--hub", "huggingface")
    doc = json.loads(res.stdout)
    check_eq((doc["results"], doc["offline_only_local"]), ([], True), "the Hub's hub offline")


@test
def offline_search_says_how_to_ask_the_hub(t):
    """Offline, the line saying the Hub was not asked ends with how to ask it; a hub with no
    index to search offline is left out with the same step; an unknown --hub says ls lists
    the hubs. Each step works."""
    res = omnihub(t, "--offline", "search", "tiny")
    offline = [line for line in res.stderr.splitlines() if "the Hugging Face Hub was not asked"
               in line]
    check_eq(len(offline), 1, "the line saying the Hub was not asked: %r" % res.stderr)
    check(offline[0].endswith("was not asked (run it without --offline)"), offline[0])
    left_out = [line for line in res.stderr.splitlines() if line.startswith("omnihub: onnx: ")]
    check(len(left_out) == 1 and left_out[0].endswith("(run it without --offline)"),
          "the zoo without its index, offline: %r" % res.stderr)
    res = omnihub(t, "search", "tiny")
    check("huggingface/" + fx.ONNX_REPO in res.stdout.splitlines(),
          "online, the Hub's results: %r" % res.stdout)
    check_eq(res.stderr, "", "online, nothing left out")
    res = omnihub(t, "search", "--hub", "nohub", "resnet50", want=4)
    check_eq(res.stderr, "omnihub: nohub: no such hub (omnihub ls lists the hubs)\n",
             "an unknown --hub")


if __name__ == "__main__":
    run(shared_setup, before_each)
