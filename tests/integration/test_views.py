#!/usr/bin/env python3
"""Integration tests of the views of clients' caches (<mount>/.clients/) and `omnihub env`,
with the clients' own unmodified code: Debian's torchvision/torch.hub.
Not for the hubs the views link into (test_catalog_mount.py, test_hf_mount.py).
"""

# Run by `make check`:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse OMNIHUB=BUILDDIR/omnihub /usr/bin/python3 \
#         tests/integration/test_views.py [PART]
# Needs Debian's python3-torch and python3-torchvision (scripts/install-deps).
# Every path a client computes is computed here as the client's source does, each one cited.

import contextlib
import importlib.util
import io
import json
import os
import shlex
import subprocess
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import SRCDIR, check, check_eq, run, sha256_bytes, test  # noqa: E402

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))
from catalog_server import CatalogServer  # noqa: E402
from zoo_server import make_tls  # noqa: E402

VIEWS = ".clients"  # the views' folder in the mount (src/hub_views.h)
VISION_HUB = "torchvision"  # the catalog hub of the fixture (client_cache "torch")
CLIENT_TIMEOUT = 300  # seconds a client process may take (ASan daemons are slow)


def omnihub_binary():
    """$OMNIHUB, else omnihub beside $OMNIHUB_FUSE."""
    path = os.environ.get("OMNIHUB")
    if not path:
        fuse = os.environ.get("OMNIHUB_FUSE", "")
        path = os.path.join(os.path.dirname(fuse), "omnihub")
    return path


# ----------------------------------------------------------------------------- fixture

def resnet18_weights():
    """torchvision's own ResNet18_Weights.IMAGENET1K_V1: its URL names the file."""
    from torchvision.models import ResNet18_Weights
    return ResNet18_Weights.IMAGENET1K_V1


def torch_hub_basename(url):
    """The name torch.hub caches url under: torch/hub.py, load_state_dict_from_url:
    parts = urlparse(url); filename = os.path.basename(parts.path)."""
    return os.path.basename(urllib.parse.urlparse(url).path)


class Shared:
    def __init__(self, run_dir):
        import torch
        import torchvision
        self.tls_dir = os.path.join(run_dir, "tls")
        make_tls(self.tls_dir)
        self.www = os.path.join(run_dir, "www")
        self.catalogs = os.path.join(run_dir, "catalogs")
        self.empty = os.path.join(run_dir, "empty")
        for d in (os.path.join(self.www, "models"), self.catalogs, self.empty):
            os.makedirs(d)
        # Real resnet18 weights (a seeded initialisation), under the name torchvision's URL has.
        torch.manual_seed(26)
        buf = io.BytesIO()
        torch.save(torchvision.models.resnet18().state_dict(), buf)
        self.weights = buf.getvalue()
        self.weights_name = torch_hub_basename(resnet18_weights().url)
        with open(os.path.join(self.www, "models", self.weights_name), "wb") as f:
            f.write(self.weights)
        self.srv = CatalogServer(self.www, self.tls_dir)

    def start(self):
        self.srv.start()
        doc = {"omnihub_catalog": 1, "hub": VISION_HUB, "client_cache": "torch",
               "base_url": self.srv.base_url + "/models/",
               "models": {"resnet18": {"default": "IMAGENET1K_V1", "entries": {
                   "IMAGENET1K_V1": {"url": self.weights_name,
                                     "digests": {"sha256": sha256_bytes(self.weights)},
                                     "size": len(self.weights), "format": "pth"}}}}}
        with open(os.path.join(self.catalogs, VISION_HUB + ".json"), "w") as f:
            json.dump(doc, f)


@contextlib.contextmanager
def shared_setup(run_dir):
    for module, package in (("torch", "python3-torch"), ("torchvision", "python3-torchvision")):
        if importlib.util.find_spec(module) is None:
            raise RuntimeError("%s has no %s module: install %s (scripts/install-deps) and run "
                               "this file with Debian's /usr/bin/python3"
                               % (sys.executable, module, package))
    shared = Shared(run_dir)
    shared.start()
    try:
        yield shared
    finally:
        shared.srv.stop()


def before_each(shared):
    shared.srv.heal()
    shared.srv.clear_log()


def views_mount(t):
    srv = t.shared.srv
    opts = ["cache=" + t.cache] + srv.options()
    opts += ["system_catalogs=" + t.shared.empty, "catalogs=" + t.shared.catalogs]
    # The daemon's own client caches are empty folders of the test's: nothing is found there.
    env = {"TORCH_HOME": os.path.join(t.dir, "daemon_torch"),
           "KERAS_HOME": os.path.join(t.dir, "daemon_keras")}
    return t.mount(opts, env=env)


def omnihub_env(t, m, *args):
    """`omnihub env ARGS MOUNTPOINT`: (exit status, stdout, stderr)."""
    res = subprocess.run([omnihub_binary(), "env"] + list(args) + [m.mountpoint],
                         capture_output=True, text=True, env=t.env, timeout=60)
    return res.returncode, res.stdout, res.stderr


def client_env(t, m):
    """The environment a user's shell has after eval "$(omnihub env MOUNTPOINT)" in bash."""
    rc, out, err = omnihub_env(t, m)
    check_eq(rc, 0, "omnihub env's status (stderr: %s)" % err.strip())
    script = out + '\nenv -0\n'
    res = subprocess.run(["bash", "-c", 'eval "$(cat)"'], input=script, capture_output=True,
                         text=True, env=t.env, timeout=60)
    check_eq(res.returncode, 0, "bash eval of omnihub env (stderr: %s)" % res.stderr.strip())
    env = dict(item.split("=", 1) for item in res.stdout.split("\0") if "=" in item)
    return env


TORCHVISION_CLIENT = r"""
import json, os, sys, urllib.parse
import torch, torch.hub
from torchvision.models import resnet18, ResNet18_Weights

def no_download(url, dst, *args, **kwargs):
    raise RuntimeError("torch.hub tried to download %s to %s" % (url, dst))

torch.hub.download_url_to_file = no_download  # load_state_dict_from_url calls it by this name
weights = ResNet18_Weights.IMAGENET1K_V1
model = resnet18(weights=weights)
# torch/hub.py, load_state_dict_from_url: model_dir = os.path.join(get_dir(), 'checkpoints');
# cached_file = os.path.join(model_dir, os.path.basename(urlparse(url).path)).
cached = os.path.join(torch.hub.get_dir(), "checkpoints",
                      os.path.basename(urllib.parse.urlparse(weights.url).path))
served = torch.load(sys.argv[1])
state = model.state_dict()
same = sorted(served) == sorted(state) and all(torch.equal(served[k], state[k]) for k in served)
print(json.dumps({"cached": cached, "same": same, "count": len(served)}))
"""


# ----------------------------------------------------------------------------- tests

@test
def torchvision_loads_through_the_torch_view(t):
    """Debian's torchvision, unmodified, with TORCH_HOME from `omnihub env` (eval'd by bash),
    finds resnet18's weights in the view and never downloads: the parameters it loads are
    the served ones, read through the one verified file of the hub's path."""
    with views_mount(t) as m:
        env = client_env(t, m)
        check_eq(env.get("TORCH_HOME"), m.path(VIEWS, "torch"), "TORCH_HOME")
        served = os.path.join(t.shared.www, "models", t.shared.weights_name)
        res = subprocess.run([sys.executable, "-c", TORCHVISION_CLIENT, served],
                             capture_output=True, text=True, env=env, timeout=CLIENT_TIMEOUT)
        check_eq(res.returncode, 0, "torchvision's status (stderr: %s)" % res.stderr[-2000:])
        got = json.loads(res.stdout.strip().splitlines()[-1])
        check(got["same"], "the parameters torchvision loaded are the served ones")
        check(got["count"] > 50, "resnet18 has its tensors (%d)" % got["count"])
        cached = got["cached"]
        check_eq(os.path.dirname(cached), m.path(VIEWS, "torch", "hub", "checkpoints"),
                 "the folder torch.hub looked in")
        hub_file = m.path(VISION_HUB, "resnet18", "IMAGENET1K_V1.pth")
        check_eq(os.readlink(cached), os.path.relpath(hub_file, os.path.dirname(cached)),
                 "the view's link: relative, into the hub's path")
        check_eq(os.stat(cached).st_ino, os.stat(hub_file).st_ino,
                 "the view's file is the hub path's (one inode)")
        # The mount's download comes in ranged pieces: one download is each byte served once.
        check_eq(t.shared.srv.bytes_served("/models/" + t.shared.weights_name),
                 len(t.shared.weights), "bytes of the weights served (one download, the mount's)")


@test
def torch_view_layout(t):
    """The torch view, file by file: hub/checkpoints/ holds a link per catalog entry of a
    torch hub, named as torch.hub names the URL's file; the view's folders exist even when
    empty, so torch.hub's os.makedirs(model_dir) meets EEXIST; nothing can be written."""
    with views_mount(t) as m:
        check(VIEWS in os.listdir(m.mountpoint), "the mount's root lists %s" % VIEWS)
        check_eq(sorted(os.listdir(m.path(VIEWS))), ["keras", "torch"], "the views")
        checkpoints = m.path(VIEWS, "torch", "hub", "checkpoints")
        name = torch_hub_basename(resnet18_weights().url)
        check_eq(os.listdir(checkpoints), [name], "hub/checkpoints")
        check(os.path.islink(os.path.join(checkpoints, name)), "%s is a link" % name)
        check_eq(os.lstat(os.path.join(checkpoints, name)).st_size,
                 len(os.readlink(os.path.join(checkpoints, name))), "a link's size")
        check_eq(os.listdir(m.path(VIEWS, "keras", "models")), [], "keras/models (no keras hub)")
        try:
            os.makedirs(checkpoints)  # torch/hub.py: os.makedirs(model_dir), EEXIST ignored
            check(False, "makedirs of an existing view folder succeeded")
        except FileExistsError:
            pass
        try:
            with open(os.path.join(checkpoints, "new.pth"), "wb"):
                pass
            check(False, "a file could be made in the view")
        except OSError:
            pass


if __name__ == "__main__":
    run(shared_setup, before_each)
