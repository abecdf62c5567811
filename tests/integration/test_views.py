#!/usr/bin/env python3
"""Integration tests of the views of clients' caches (<mount>/.clients/) and `omnihub env`,
with the clients' own unmodified code: Debian's torchvision/torch.hub, and the Hugging Face JS
client (@huggingface/hub from npm).
Not for the hubs the views link into (test_catalog_mount.py, test_hf_mount.py).
"""

# Run by `make check`:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse OMNIHUB=BUILDDIR/omnihub /usr/bin/python3 \
#         tests/integration/test_views.py [PART]
# Needs Debian's python3-torch and python3-torchvision, and npm (scripts/install-deps): the
# set-up runs `npm install --ignore-scripts @huggingface/hub` once into BUILDDIR/npm-views/
# (the HF tests skip when npm is missing or cannot install).
# Every path a client computes is computed here as the client's source does, each one cited.

import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (check, check_eq, npm_package, omnihub_binary,  # noqa: E402
                           require_modules, run, serving, sha256_bytes, test)

import make_hf_repos as hfx  # noqa: E402
from catalog_server import CatalogServer  # noqa: E402
from http_base import HttpHandler  # noqa: E402
from hf_server import HfServer  # noqa: E402
from zoo_server import make_tls  # noqa: E402

VIEWS = ".clients"  # the views' folder in the mount (src/hubs/views/hub_views.h)
VISION_HUB = "torchvision"  # the catalog hub of the fixture (client_cache "torch")
KERAS_HUB = "keras"  # and one with client_cache "keras"
# keras/applications/vgg16.py: WEIGHTS_PATH_NO_TOP's last segment, which it passes to get_file
# as fname (cache_subdir="models").
KERAS_URL_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
TFHUB_HUB = "tfhub"  # and one with client_cache "tfhub": an archive entry with its handle
TFHUB_HANDLE = "https://tfhub.dev/testpub/testnet/1"
TFHUB_FILES = {"saved_model.pb": b"\x08\x01saved model", "variables/variables.index": b"index"}
# Deeplearning4j's zoo and OmniHub, in one hub "dl4j" from two catalogs as the shipped ones
# (catalogs/dl4j.json, dl4j-omnihub.json): the meta fields they carry say which client it is.
DL4J_HUB = "dl4j"
DL4J_ZOO = {"model": "zoo/lenet", "entry": "MNIST", "zoo_class": "org.deeplearning4j.zoo.model.LeNet",
            "url": "models/lenet_dl4j_mnist_inference.zip"}
OMNIHUB_MODEL = {"model": "omnihub/samediff/resnet18", "entry": "resnet18",
                 "framework": "samediff", "url": "samediff/resnet18.fb", "file": "resnet18.fb"}
DL4J_PROPERTY = "org.deeplearning4j.resources.directory"  # DL4JSystemProperties.java
CLIENT_TIMEOUT = 120  # seconds a client process may take (ASan daemons are slow)
HF_REPO = hfx.ONNX_REPO  # a repo with a branch (main) and a tag (v1.0) at two commits
HF_FILE = "config.json"  # differs between the two commits
NPM_PACKAGE = "@huggingface/hub"


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
        self.keras = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 64  # bytes are all it checks
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in sorted(TFHUB_FILES.items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        self.tfhub = buf.getvalue()
        os.makedirs(os.path.join(self.www, "tfhub"))
        with open(os.path.join(self.www, "tfhub", "testnet-1.tar.gz"), "wb") as f:
            f.write(self.tfhub)
        os.makedirs(os.path.join(self.www, "keras"))
        with open(os.path.join(self.www, "keras", KERAS_URL_FILE), "wb") as f:
            f.write(self.keras)
        self.onnx = self.make_onnx()
        self.dl4j = b"PK\x03\x04 a dl4j zip " + bytes(range(256)) * 8
        self.samediff = b"\x10\x00\x00\x00 a samediff flatbuffer " + bytes(range(256)) * 4
        for path, data in ((DL4J_ZOO["url"], self.dl4j), (OMNIHUB_MODEL["url"], self.samediff)):
            os.makedirs(os.path.join(self.www, "dl4j", os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(self.www, "dl4j", path), "wb") as f:
                f.write(data)
        self.srv = CatalogServer(self.www, self.tls_dir)
        self.hf_dir = os.path.join(run_dir, "hf-fixture")
        self.hf_desc = hfx.make_repos(self.hf_dir)
        self.hf = HfServer(self.hf_dir, self.tls_dir)
        self.npm_why = None  # why the JS client is not there, once asked

    def make_onnx(self):
        """A real ONNX model (python3-onnx) and a zoo manifest naming it, as the zoo's
        ONNX_HUB_MANIFEST.json does: model, model_path, opset_version, metadata.model_sha."""
        from onnx import TensorProto, helper
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
        data = data.SerializeToString()
        path = "vision/classification/tinynet/model/tinynet-12.onnx"
        entry = {"model": "TinyNet", "model_path": path, "onnx_version": "1.7",
                 "opset_version": 12,
                 "metadata": {"model_sha": sha256_bytes(data), "model_bytes": len(data),
                              "tags": ["vision"]}}
        os.makedirs(os.path.dirname(os.path.join(self.www, "onnx", path)))
        with open(os.path.join(self.www, "onnx", path), "wb") as f:
            f.write(data)
        with open(os.path.join(self.www, "onnx", "ONNX_HUB_MANIFEST.json"), "w") as f:
            json.dump([entry], f)
        return {"entry": entry, "data": data, "mount": ("onnx", "tinynet", "opset-12",
                                                       "model.onnx")}

    def hf_repo(self, repo_id=HF_REPO, repo_type="model"):
        return next(r for r in self.hf_desc["repos"]
                    if r["id"] == repo_id and r["type"] == repo_type)

    def start(self):
        self.srv.start()
        self.hf.start()
        doc = {"omnihub_catalog": 1, "hub": VISION_HUB, "client_cache": "torch",
               "base_url": self.srv.base_url + "/models/",
               "models": {"resnet18": {"default": "IMAGENET1K_V1", "entries": {
                   "IMAGENET1K_V1": {"url": self.weights_name,
                                     "digests": {"sha256": sha256_bytes(self.weights)},
                                     "size": len(self.weights), "format": "pth"}}}}}
        with open(os.path.join(self.catalogs, VISION_HUB + ".json"), "w") as f:
            json.dump(doc, f)
        doc = {"omnihub_catalog": 1, "hub": KERAS_HUB, "client_cache": "keras",
               "base_url": self.srv.base_url + "/keras/",
               "models": {"vgg16": {"entries": {"notop": {
                   "url": KERAS_URL_FILE, "digests": {"sha256": sha256_bytes(self.keras)},
                   "size": len(self.keras), "format": "h5", "file": "notop.h5"}}}}}
        with open(os.path.join(self.catalogs, KERAS_HUB + ".json"), "w") as f:
            json.dump(doc, f)
        doc = {"omnihub_catalog": 1, "hub": TFHUB_HUB, "client_cache": "tfhub",
               "base_url": self.srv.base_url + "/tfhub/",
               "models": {"testpub/testnet": {"entries": {"1": {
                   "url": "testnet-1.tar.gz", "digests": {"sha256": sha256_bytes(self.tfhub)},
                   "size": len(self.tfhub), "format": "saved_model",
                   "archive": {"expect": sorted(TFHUB_FILES)}, "client_id": TFHUB_HANDLE}}}}}
        with open(os.path.join(self.catalogs, TFHUB_HUB + ".json"), "w") as f:
            json.dump(doc, f)
        z = DL4J_ZOO
        doc = {"omnihub_catalog": 1, "hub": DL4J_HUB, "base_url": self.srv.base_url + "/dl4j/",
               "models": {z["model"]: {
                   "meta": {"framework": "deeplearning4j", "zoo_class": z["zoo_class"]},
                   "default": z["entry"], "entries": {z["entry"]: {
                       "url": z["url"], "digests": {"sha256": sha256_bytes(self.dl4j)},
                       "size": len(self.dl4j), "format": "dl4j"}}}}}
        with open(os.path.join(self.catalogs, "dl4j.json"), "w") as f:
            json.dump(doc, f)
        o = OMNIHUB_MODEL
        doc = {"omnihub_catalog": 1, "hub": DL4J_HUB, "base_url": self.srv.base_url + "/dl4j/",
               "models": {o["model"]: {
                   "meta": {"framework": o["framework"],
                            "omnihub_api": "Pretrained.samediff().resnet18(forceDownload)"},
                   "default": o["entry"], "entries": {o["entry"]: {
                       "url": o["url"], "file": o["file"], "format": "samediff",
                       "digests": {"sha256": sha256_bytes(self.samediff)},
                       "size": len(self.samediff)}}}}}
        with open(os.path.join(self.catalogs, "dl4j-omnihub.json"), "w") as f:
            json.dump(doc, f)


def shared_setup(run_dir):
    require_modules(("torch", "python3-torch"), ("torchvision", "python3-torchvision"))
    shared = Shared(run_dir)
    return serving(shared, shared.srv, shared.hf)


def before_each(shared):
    shared.srv.heal()
    shared.srv.clear_log()


def views_mount(t):
    srv = t.shared.srv
    opts = ["cache=" + t.cache, "cacert=" + srv.cacert,
            "onnx_index_url=" + srv.url("/onnx/ONNX_HUB_MANIFEST.json"),
            "onnx_url=" + srv.base_url + "/onnx/"]
    opts += ["system_catalogs=" + t.shared.empty, "catalogs=" + t.shared.catalogs,
             "hf_repos=%s,datasets/%s" % (HF_REPO, hfx.DATASET_REPO)]
    # The daemon's own client caches are empty folders of the test's: nothing is found there.
    env = {"TORCH_HOME": os.path.join(t.dir, "daemon_torch"),
           "KERAS_HOME": os.path.join(t.dir, "daemon_keras"),
           "HF_ENDPOINT": t.shared.hf.endpoint}
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
        check_eq(sorted(os.listdir(m.path(VIEWS))),
                 ["dl4j", "huggingface", "keras", "omnihub", "onnx", "tfhub", "torch"],
                 "the views")
        checkpoints = m.path(VIEWS, "torch", "hub", "checkpoints")
        name = torch_hub_basename(resnet18_weights().url)
        check_eq(os.listdir(checkpoints), [name], "hub/checkpoints")
        check(os.path.islink(os.path.join(checkpoints, name)), "%s is a link" % name)
        check_eq(os.lstat(os.path.join(checkpoints, name)).st_size,
                 len(os.readlink(os.path.join(checkpoints, name))), "a link's size")
        # keras/utils/data_utils.py, get_file: fpath = os.path.join(datadir, fname), datadir
        # = os.path.join(cache_dir, cache_subdir) (cache_subdir "models").
        models = m.path(VIEWS, "keras", "models")
        check_eq(os.listdir(models), [KERAS_URL_FILE], "keras/models")
        with open(os.path.join(models, KERAS_URL_FILE), "rb") as f:
            check_eq(f.read(), t.shared.keras, "the Keras file's bytes")
        check_eq(os.readlink(os.path.join(models, KERAS_URL_FILE)),
                 os.path.join("..", "..", "..", KERAS_HUB, "vgg16", "notop.h5"), "its link")
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


@test
def omnihub_env_forms(t):
    """omnihub env: bash's eval of its lines, --json's variables and --fish's set -gx lines say
    the same; the Keras link is printed, not exported (Keras falls back to /tmp/.keras for a
    cache it cannot write); a folder that is not a mount with views is refused."""
    with views_mount(t) as m:
        env = client_env(t, m)
        rc, out, err = omnihub_env(t, m, "--json")
        check_eq(rc, 0, "omnihub env --json's status (stderr: %s)" % err.strip())
        doc = json.loads(out)
        check_eq(doc["mountpoint"], m.mountpoint, "mountpoint")
        want = {"TORCH_HOME": m.path(VIEWS, "torch"), "ONNX_HOME": m.path(VIEWS, "onnx"),
                "TFHUB_CACHE_DIR": m.path(VIEWS, "tfhub"),
                "HF_HUB_CACHE": m.path(VIEWS, "huggingface", "hub"), "HF_HUB_OFFLINE": "1"}
        check_eq(doc["variables"], want, "--json's variables")
        check_eq({k: env.get(k) for k in want}, want, "the variables bash's eval set")
        check("KERAS_HOME" not in env, "KERAS_HOME is not exported")
        check("OMNIHUB_HOME" not in env, "OMNIHUB_HOME is not exported")
        check_eq(doc["links"], [{"client": "keras", "link": "~/.keras/models",
                                 "target": m.path(VIEWS, "keras", "models")},
                                {"client": "omnihub", "link": "~/.omnihub/samediff",
                                 "target": m.path(VIEWS, "omnihub", "samediff")}],
                 "--json's links")
        check_eq(doc["java_properties"], {DL4J_PROPERTY: m.path(VIEWS, "dl4j")},
                 "--json's Java properties")
        rc, out, err = omnihub_env(t, m, "--fish")
        check_eq(rc, 0, "omnihub env --fish's status (stderr: %s)" % err.strip())
        fish = {line.split()[2]: line.split(None, 3)[3].rstrip(";").strip("'")
                for line in out.splitlines() if line.startswith("set -gx ")}
        check_eq(fish, want, "--fish's variables")
        res = subprocess.run([omnihub_binary(), "env", t.dir], capture_output=True, text=True,
                             env=t.env, timeout=60)
        check_eq(res.returncode, 1, "omnihub env of a plain folder (stderr: %s)" % res.stderr)
        check("not an omnihub-fuse mount" in res.stderr, "its message: %r" % res.stderr)


@test
def onnx_view_layout(t):
    """The onnx.hub view: ONNX_HOME from `omnihub env`, the file at the path onnx/hub.py's
    load() computes from the manifest entry (onnx 1.12, Debian), which passes load()'s own
    sha256 check and is the hub path's file. (load() itself always fetches the manifest from
    GitHub first, which this machine cannot reach: its cache hit is computed here as it does.)"""
    onnx = t.shared.onnx
    entry = onnx["entry"]
    with views_mount(t) as m:
        env = client_env(t, m)
        home = env.get("ONNX_HOME")
        check_eq(home, m.path(VIEWS, "onnx"), "ONNX_HOME")
        # onnx/hub.py: _ONNX_HUB_DIR = join(os.environ["ONNX_HOME"], "hub"); in load():
        # local_model_path_arr = selected_model.model_path.split("/"); the last part becomes
        # f"{selected_model.model_sha}_{...}"; local_model_path = join(_ONNX_HUB_DIR, os.sep.join(...))
        parts = entry["model_path"].split("/")
        parts[-1] = "%s_%s" % (entry["metadata"]["model_sha"], parts[-1])
        local = os.path.join(os.path.join(home, "hub"), os.sep.join(parts))
        check(os.path.exists(local), "%s exists (load() would not download)" % local)
        with open(local, "rb") as f:
            data = f.read()
        check_eq(hashlib.sha256(data).hexdigest(), entry["metadata"]["model_sha"],
                 "load()'s sha256 check")
        hub_file = m.path(*onnx["mount"])
        check_eq(os.readlink(local), os.path.relpath(hub_file, os.path.dirname(local)),
                 "the view's link")
        check_eq(os.stat(local).st_ino, os.stat(hub_file).st_ino, "one file")
        res = subprocess.run([sys.executable, "-c", "import onnx, sys; "
                              "onnx.checker.check_model(onnx.load(sys.argv[1]))", local],
                             capture_output=True, text=True, env=env, timeout=CLIENT_TIMEOUT)
        check_eq(res.returncode, 0, "onnx.checker on the view's file (%s)" % res.stderr[-500:])


@test
def tfhub_view_layout(t):
    """The tensorflow_hub view: TFHUB_CACHE_DIR from `omnihub env`; the module folder named as
    compressed_module_resolver.py's _module_dir names it (hashlib.sha1(handle.encode("utf8"))
    .hexdigest() under resolver.tfhub_cache_dir()), which passes resolver.py's atomic_download
    check for a cached module (the folder exists and lists something: no lock, no download),
    holding the archive's files as the hub path extracts them. (tensorflow_hub is not in
    Debian 12: the check is computed here as its source does.)"""
    with views_mount(t) as m:
        env = client_env(t, m)
        cache = env.get("TFHUB_CACHE_DIR")
        check_eq(cache, m.path(VIEWS, "tfhub"), "TFHUB_CACHE_DIR")
        module_dir = os.path.join(cache, hashlib.sha1(TFHUB_HANDLE.encode("utf8")).hexdigest())
        check(os.path.exists(module_dir) and os.listdir(module_dir),
              "check_module_exists() holds for %s" % module_dir)
        hub_dir = m.path(TFHUB_HUB, "testpub", "testnet", "1")
        check_eq(os.readlink(module_dir), os.path.relpath(hub_dir, os.path.dirname(module_dir)),
                 "the module folder's link")
        for name, data in TFHUB_FILES.items():
            with open(os.path.join(module_dir, name), "rb") as f:
                check_eq(f.read(), data, "the module's " + name)


@test
def dl4j_and_omnihub_view_layout(t):
    """The Deeplearning4j and OmniHub views, file by file, where their classes look (no Java
    here: each path is computed as the cited source computes it, at deeplearning4j 8129c4ac):
    a zoo model's file at <resources dir>/models/<modelName()>/<URL's file name>, an OmniHub
    model's at <OmniHub home>/<framework>/<name>, each a link to the hub path's file, with
    its bytes; `omnihub env` prints the -D flag and the ~/.omnihub/<framework> links and
    exports nothing."""
    with views_mount(t) as m:
        rc, out, err = omnihub_env(t, m, "--json")
        check_eq(rc, 0, "omnihub env --json's status (stderr: %s)" % err.strip())
        doc = json.loads(out)
        # DL4JResources.resetBaseDirectoryLocation: baseDirectory = new File(System.getProperty(
        # DL4JSystemProperties.DL4J_RESOURCES_DIR_PROPERTY)) when the property is set.
        base = doc["java_properties"][DL4J_PROPERTY]
        check_eq(base, m.path(VIEWS, "dl4j"), "the resources directory")
        rc, out, err = omnihub_env(t, m)
        check("-D%s='%s'" % (DL4J_PROPERTY, base) in out, "the -D flag printed: %r" % out)
        check("ln -s '%s' ~/.omnihub/" % m.path(VIEWS, "omnihub", "samediff") in out,
              "the ~/.omnihub/samediff link printed: %r" % out)
        # ZooModel.initPretrained: localFilename = new File(remoteUrl).getName(); rootCacheDir =
        # DL4JResources.getDirectory(ResourceType.ZOO_MODEL, modelName()) = new File(new File(
        # baseDirectory, "models") [ResourceType.resourceName()], modelName()); modelName() =
        # getClass().getSimpleName().toLowerCase().
        z = DL4J_ZOO
        model_name = z["zoo_class"].rsplit(".", 1)[-1].lower()
        cached = os.path.join(base, "models", model_name, os.path.basename(z["url"]))
        check(os.path.exists(cached), "%s exists (cachedFile.exists(): no download)" % cached)
        hub_file = m.path(DL4J_HUB, *z["model"].split("/"), z["entry"] + ".zip")
        check_eq(os.readlink(cached), os.path.relpath(hub_file, os.path.dirname(cached)),
                 "the zoo file's link")
        with open(cached, "rb") as f:
            check_eq(f.read(), t.shared.dl4j, "the zoo file's bytes")
        check_eq(os.stat(cached).st_ino, os.stat(hub_file).st_ino, "one file")
        check_eq(sorted(os.listdir(os.path.join(base, "models"))), [model_name], "models/")
        # OmniHubUtils.downloadAndLoadFromZoo(framework, name): destFile = new File(new File(
        # OmnihubConfig.getOmnihubHome(), framework), name); its URL is OMNIHUB_URL + "/" +
        # framework + "/" + name (SameDiffModels.resnet18 passes "resnet18.fb").
        # getOmnihubHome() with OMNIHUB_HOME unset: new File(user.home, ".omnihub"), its
        # framework folders linked to the view's as omnihub env prints.
        home = os.path.join(t.dir, "java_home")
        os.makedirs(os.path.join(home, ".omnihub"))
        for link in doc["links"]:
            if link["client"] == "omnihub":
                os.symlink(link["target"], link["link"].replace("~", home, 1))
        o = OMNIHUB_MODEL
        framework, name = o["url"].split("/")
        dest = os.path.join(home, ".omnihub", framework, name)
        check(os.path.exists(dest), "%s exists (destFile.exists(): no download)" % dest)
        hub_file = m.path(DL4J_HUB, *o["model"].split("/"), o["file"])
        with open(dest, "rb") as f:
            check_eq(f.read(), t.shared.samediff, "the OmniHub file's bytes")
        check_eq(os.stat(dest).st_ino, os.stat(hub_file).st_ino, "one file")
        check_eq(os.listdir(m.path(VIEWS, "omnihub")), [framework], "omnihub/")


# ----------------------------------------------------------------------------- Hugging Face

def hf_repo_folder(repo_type, repo_id):
    """The client's folder of a repo: @huggingface/hub's getRepoFolderName (cache-management.ts):
    [`${type}s`, ...name.split("/")].join("--"); huggingface_hub's repo_folder_name alike."""
    return "--".join([repo_type + "s"] + repo_id.split("/"))


def npm_client(t):
    """The directory of @huggingface/hub, installed once per build with npm install
    --ignore-scripts (its scripts would reach hosts this machine cannot); SkipTest without npm."""
    return npm_package(t, "npm-views", NPM_PACKAGE)[1]


def refused_url():
    """An http URL of a port nothing listens on: a request there fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return "http://127.0.0.1:%d" % port


class PathsInfo(http.server.ThreadingHTTPServer):
    """The one call @huggingface/hub's downloadFileToCacheDir makes for a branch: POST
    /api/models/<repo>/paths-info/<rev> with {paths, expand} (paths-info.ts), answered from the
    fixture's description as the Hub answers, lastCommit included. Any other request is
    answered 404 and kept in `others`: a download the client tried itself."""

    def __init__(self, repo):
        self.repo = repo
        self.calls, self.others = [], []
        super().__init__(("127.0.0.1", 0), PathsInfoHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
        return False


class PathsInfoHandler(HttpHandler):
    def do_POST(self):
        srv, repo = self.server, self.server.repo
        prefix = "/api/models/%s/paths-info/" % repo["id"]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if not self.path.startswith(prefix):
            return self.refuse()
        rev = urllib.parse.unquote(self.path[len(prefix):])
        commit = repo["revisions"].get(rev, rev)
        files = {f["path"]: f for f in repo["commits"][commit]["files"]}
        srv.calls.append((rev, body))
        out = []
        for path in body.get("paths", []):
            f = files[path]
            item = {"type": "file", "path": path, "oid": f["oid"], "size": f["size"],
                    "lastCommit": {"id": commit, "title": "fixture", "date": hfx.LAST_MODIFIED}}
            if "lfs" in f:
                item["lfs"] = f["lfs"]
            out.append(item)
        self.reply(200, json.dumps(out).encode(), "application/json")

    def serve(self):
        self.refuse()

    def refuse(self):
        self.server.others.append((self.command, self.path))
        self.reply(404, b"", ctype=None)


HF_JS_CLIENT = r"""
// node -e SCRIPT ARGS...: process.argv is [node, ARGS...]
const hub = require(process.argv[1]);
const [cacheDir, repo, path, commit, pinnedUrl, mainUrl] = process.argv.slice(2);
(async () => {
  const pinned = await hub.downloadFileToCacheDir({repo, path, revision: commit, cacheDir,
                                                   hubUrl: pinnedUrl});
  const main = await hub.downloadFileToCacheDir({repo, path, cacheDir, hubUrl: mainUrl});
  const scan = await hub.scanCacheDir(cacheDir);
  const repos = scan.repos.map(r => ({name: r.id.name, type: r.id.type, path: r.path,
    revisions: r.revisions.map(v => ({commit: v.commitOid, refs: v.refs,
                                      files: v.files.map(f => f.path)}))}));
  console.log(JSON.stringify({pinned, main, repos, warnings: scan.warnings.map(String)}));
})().catch(e => { console.error(e && e.stack || String(e)); process.exit(1); });
"""


@test
def hf_js_client_reads_the_hf_view(t):
    """@huggingface/hub's own downloadFileToCacheDir, with cacheDir = HF_HUB_CACHE from
    `omnihub env`: for a pinned commit the view has not shown (v1.0's) it returns the path in
    the mount with no request at all (its hub URL refuses connections); for main it asks only
    paths-info and returns the snapshot of the commit that names, downloading nothing. Both read
    the bytes the hub path serves. scanCacheDir lists the repo the view shows, refs/main naming
    the commit of snapshots/."""
    package = npm_client(t)
    repo = t.shared.hf_repo()
    main, v1 = repo["revisions"]["main"], repo["revisions"]["v1.0"]
    with views_mount(t) as m:
        env = client_env(t, m)
        cache = env.get("HF_HUB_CACHE")
        check_eq(cache, m.path(VIEWS, "huggingface", "hub"), "HF_HUB_CACHE")
        check_eq(env.get("HF_HUB_OFFLINE"), "1", "HF_HUB_OFFLINE")
        with PathsInfo(repo) as api:
            res = subprocess.run(["node", "-e", HF_JS_CLIENT, package, cache, HF_REPO, HF_FILE,
                                  v1, refused_url(), api.url],
                                 capture_output=True, text=True, env=env, timeout=CLIENT_TIMEOUT)
        check_eq(res.returncode, 0, "the JS client's status (stderr: %s)" % res.stderr[-2000:])
        got = json.loads(res.stdout.strip().splitlines()[-1])
        check_eq(api.others, [], "requests other than paths-info (a download of its own)")
        check_eq([c[0] for c in api.calls], ["main"], "paths-info calls")
        folder = os.path.join(cache, hf_repo_folder("model", HF_REPO))
        # getFilePointer (download-file-to-cache-dir.ts): join(storageFolder, "snapshots",
        # revision, path).
        check_eq(got["pinned"], os.path.join(folder, "snapshots", v1, HF_FILE), "pinned path")
        check_eq(got["main"], os.path.join(folder, "snapshots", main, HF_FILE), "main's path")
        org, name = HF_REPO.split("/")
        for commit, got_path in ((v1, got["pinned"]), (main, got["main"])):
            hub_file = m.path("huggingface", org, "%s@%s" % (name, commit), HF_FILE)
            with open(got_path, "rb") as a, open(hub_file, "rb") as b:
                check_eq(a.read(), b.read(), "the view's %s at %s" % (HF_FILE, commit[:8]))
            check_eq(os.stat(got_path).st_ino, os.stat(hub_file).st_ino,
                     "the view's file at %s is the hub path's" % commit[:8])
        check(got["warnings"] == [], "scanCacheDir's warnings: %r" % got["warnings"])
        mine = [r for r in got["repos"] if r["name"] == HF_REPO and r["type"] == "model"]
        check_eq(len(mine), 1, "scanCacheDir's repos (%r)" % [r["name"] for r in got["repos"]])
        revs = {r["commit"]: r for r in mine[0]["revisions"]}
        check_eq(sorted(revs), [main], "the snapshots scanCacheDir found")
        check_eq(revs[main]["refs"], ["main"], "the refs of main's snapshot")
        with open(os.path.join(folder, "refs", "main")) as f:
            check_eq(f.read(), main, "refs/main")


@test
def hf_view_layout(t):
    """The Hugging Face view, folder by folder, as huggingface_hub's file_download.py makes and
    reads it: refs/<branch> holds the commit (no newline); snapshots/<commit>/<path> links,
    relative, into the hub's <org>/<name>@<commit>/<path>, for any commit, nested folders
    real; blobs/<etag> is the default commit's file with that ETag; blobs/ and
    .locks/<repo folder>/ exist for the client's makedirs(exist_ok=True); nothing can be
    written."""
    repo = t.shared.hf_repo()
    main, v1 = repo["revisions"]["main"], repo["revisions"]["v1.0"]
    org, name = HF_REPO.split("/")
    with views_mount(t) as m:
        cache = m.path(VIEWS, "huggingface", "hub")
        folder_name = hf_repo_folder("model", HF_REPO)
        folder = os.path.join(cache, folder_name)
        check(folder_name in os.listdir(cache), "%s lists %s" % (cache, folder_name))
        check_eq(sorted(os.listdir(folder)), ["blobs", "refs", "snapshots"], "the repo folder")
        check_eq(os.listdir(os.path.join(folder, "refs")), ["main"], "refs/")
        for rev, commit in (("main", main), ("v1.0", v1)):
            with open(os.path.join(folder, "refs", rev)) as f:
                check_eq(f.read(), commit, "refs/" + rev)
        check_eq(os.listdir(os.path.join(folder, "snapshots")), [main], "snapshots/")
        files = sorted(f["path"] for f in repo["commits"][v1]["files"])
        snap = os.path.join(folder, "snapshots", v1)
        seen = []
        for root, dirs, names in os.walk(snap):
            for n in names:
                path = os.path.join(root, n)
                rel = os.path.relpath(path, snap)
                seen.append(rel)
                check(os.path.islink(path), "%s is a link" % rel)
                want = m.path("huggingface", org, "%s@%s" % (name, v1), rel)
                check_eq(os.readlink(path), os.path.relpath(want, os.path.dirname(path)),
                         "the link of " + rel)
            for d in dirs:
                check(not os.path.islink(os.path.join(root, d)), "%s is a real folder" % d)
        check_eq(sorted(seen), files, "the files of snapshots/<v1.0's commit>")
        # blobs/<etag>: the ETag the Hub gives (file_download.py's etag: X-Linked-Etag, the
        # LFS sha256, else the git blob sha1), each the default commit's file of that content.
        mains = {f["path"]: f for f in repo["commits"][main]["files"]}
        etags = {(f["lfs"]["oid"] if "lfs" in f else f["oid"]): p for p, f in mains.items()}
        blobs = os.path.join(folder, "blobs")
        check_eq(sorted(os.listdir(blobs)), sorted(etags), "blobs/")
        for etag, path in etags.items():
            with open(os.path.join(blobs, etag), "rb") as a, \
                    open(os.path.join(folder, "snapshots", main, path), "rb") as b:
                check_eq(a.read(), b.read(), "blobs/%s (%s)" % (etag[:12], path))
        for d in (os.path.join(folder, "blobs"), os.path.join(cache, ".locks", folder_name),
                  os.path.join(folder, "snapshots", main)):
            os.makedirs(d, exist_ok=True)  # file_download.py: os.makedirs(..., exist_ok=True)
        for bad in (os.path.join(folder, "refs", "nope"), os.path.join(folder, "snapshots", "0" * 40),
                    os.path.join(cache, hf_repo_folder("model", "acme/no-such-repo"))):
            check(not os.path.exists(bad), "%s does not exist" % os.path.relpath(bad, cache))
        try:
            with open(os.path.join(folder, "refs", "main"), "w"):
                pass
            check(False, "refs/main could be written")
        except OSError:
            pass
        # A dataset: datasets--org--name, linking into huggingface-datasets/.
        data = t.shared.hf_repo(hfx.DATASET_REPO, "dataset")
        commit = data["revisions"]["main"]
        dfolder = os.path.join(cache, hf_repo_folder("dataset", hfx.DATASET_REPO))
        check(os.path.basename(dfolder) in os.listdir(cache), "%s lists the dataset" % cache)
        with open(os.path.join(dfolder, "refs", "main")) as f:
            check_eq(f.read(), commit, "the dataset's refs/main")
        first = sorted(f["path"] for f in data["commits"][commit]["files"])[0]
        link = os.path.join(dfolder, "snapshots", commit, first)
        want = m.path("huggingface-datasets", *hfx.DATASET_REPO.split("/"))
        want = os.path.join(want[:-len(os.path.basename(want))] + "%s@%s" % (
            os.path.basename(want), commit), first)
        check_eq(os.readlink(link), os.path.relpath(want, os.path.dirname(link)),
                 "the dataset's link of " + first)


if __name__ == "__main__":
    run(shared_setup, before_each)
