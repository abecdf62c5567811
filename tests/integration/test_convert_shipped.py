#!/usr/bin/env python3
"""Integration tests of the shipped converters (converters/torchvision-onnx) and of finding a converter by name, through a real mount.
Not for the converter sandbox itself (tests/unit/test_convert.c, test_catalog_mount.py's converter tests).
"""

# The test server (tests/fixtures/catalog_server.py) serves a real torchvision model's weights:
# torchvision.models.resnet18(weights=None) with a fixed seed, saved with torch.save and named as
# torchvision's URL names its files (resnet18-<first 8 hex of its sha256>.pth), in a catalog of
# hub "torchvision" with the meta of catalogs/torchvision.json's resnet18; and a broken
# checkpoint (the same file cut short, its digest right). The converters are the source tree's
# (-o converters=SRCDIR/converters): `make check` does not install them. Run by `make check`:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_convert_shipped.py [PART]
# Needs Debian's python3-torch, python3-torchvision and python3-onnx; the ONNX file is run by
# onnxruntime-node from npm, installed with --ignore-scripts into ./npm-convert (the build
# directory under make check) in the set-up: the test that runs it is skipped, with the reason,
# when npm is missing or the install fails (Debian 12 has no python3-onnxruntime, and its onnx
# 1.12 has no onnx.reference).

import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import mount as hub_mount  # noqa: E402
from mount_helpers import (SRCDIR, check, check_eq, errno_name, read_errno,  # noqa: E402
                           require_modules, run, run_cli, serving, test)

from catalog_server import CatalogServer  # noqa: E402
from zoo_server import make_tls  # noqa: E402

HUB = "torchvision"
MODEL = "resnet18"
BROKEN = "brokennet"
ENTRY = "IMAGENET1K_V1"
SEED = 26
BROKEN_BYTES = 64 * 1024  # the broken checkpoint: the real one's first bytes
TOLERANCE = 1e-4  # |onnxruntime - torch| on every output value
BATCH = 2  # the ONNX graph's batch axis is dynamic: run it with another batch than its example
ORT_VERSION = "1.30.0"  # onnxruntime-node, pinned: the version this test was written against
CONVERTERS = os.path.join(SRCDIR, "converters")
RUN_LINE = "converter: torchvision-onnx "  # the converter's one line of output, per run
STAMP_RUNS = "stamp-runs.log"

ORT_SCRIPT = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
(async () => {
  const [model, input, batch, out] = process.argv.slice(2);
  const bytes = fs.readFileSync(input);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(model);
  const n = Number(batch), side = Math.round(Math.sqrt(data.length / n / 3));
  const result = await session.run({input: new ort.Tensor('float32', data, [n, 3, side, side])});
  fs.writeFileSync(out, JSON.stringify({inputs: session.inputNames, outputs: session.outputNames,
                                        dims: result.output.dims,
                                        values: Array.from(result.output.data)}));
})().catch(e => { console.error(String(e)); process.exit(1); });
"""


# ----------------------------------------------------------------------------- fixture

def resnet18_meta():
    """The model's and the entry's meta of catalogs/torchvision.json's resnet18."""
    with open(os.path.join(SRCDIR, "catalogs", "torchvision.json")) as f:
        model = json.load(f)["models"][MODEL]
    return model["meta"], model["entries"][ENTRY]["meta"]


def torchvision_name(stem, data):
    """torchvision's file name: <stem>-<first 8 hex of the sha256>.pth."""
    return "%s-%s.pth" % (stem, hashlib.sha256(data).hexdigest()[:8])


def install_ort(where):
    """onnxruntime-node in where/node_modules (reused when there), or (None, why not)."""
    module = os.path.join(where, "node_modules", "onnxruntime-node")
    if os.path.isdir(module):
        return module, None
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node or npm is missing (scripts/install-deps installs nodejs and npm)"
    os.makedirs(where, exist_ok=True)
    # Its postinstall reaches hosts this machine cannot; the CPU library is in the package.
    res = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                          "--prefix", where, "onnxruntime-node@" + ORT_VERSION],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not os.path.isdir(module):
        return None, "npm install onnxruntime-node failed: " + (res.stderr.strip()[-300:] or "?")
    return module, None


class Shared:
    def __init__(self, run_dir):
        import torch
        import torchvision
        self.dir = run_dir
        make_tls(os.path.join(run_dir, "tls"))
        www = os.path.join(run_dir, "www", "models")
        os.makedirs(www)
        torch.manual_seed(SEED)
        model = torchvision.models.resnet18(weights=None).eval()
        tmp = os.path.join(run_dir, "resnet18.pth")
        torch.save(model.state_dict(), tmp)
        with open(tmp, "rb") as f:
            self.weights = f.read()
        self.files = {MODEL: torchvision_name(MODEL, self.weights)}
        broken = self.weights[:BROKEN_BYTES]
        self.files[BROKEN] = torchvision_name(BROKEN, broken)
        for key, data in ((MODEL, self.weights), (BROKEN, broken)):
            with open(os.path.join(www, self.files[key]), "wb") as f:
                f.write(data)
        self.data = {MODEL: self.weights, BROKEN: broken}
        # torch's answer on the served weights, for a fixed input of BATCH images
        side = resnet18_meta()[1]["crop_size"]
        gen = torch.Generator().manual_seed(SEED)
        self.input = torch.rand(BATCH, 3, side, side, generator=gen) * 2 - 1
        self.input_path = os.path.join(run_dir, "input.f32")
        with open(self.input_path, "wb") as f:
            f.write(self.input.numpy().astype("<f4").tobytes())
        with torch.no_grad():
            self.want = model(self.input).numpy()
        self.ort, self.ort_why = install_ort(os.path.join(os.getcwd(), "npm-convert"))
        self.srv = CatalogServer(os.path.join(run_dir, "www"), os.path.join(run_dir, "tls"))
        self.empty = os.path.join(run_dir, "no-catalogs")
        os.makedirs(self.empty)
        self.catalogs = os.path.join(run_dir, "catalogs")
        os.makedirs(self.catalogs)

    def start(self):
        self.srv.start()
        model_meta, entry_meta = resnet18_meta()
        models = {}
        for key in (MODEL, BROKEN):
            data = self.data[key]
            models[key] = {"meta": model_meta, "default": ENTRY, "entries": {ENTRY: {
                "url": self.files[key], "digests": {"sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data), "format": "pth", "meta": entry_meta}}}
        doc = {"omnihub_catalog": 1, "hub": HUB, "base_url": self.srv.base_url + "/models/",
               "models": models}
        with open(os.path.join(self.catalogs, "torchvision-test.json"), "w") as f:
            json.dump(doc, f, indent=1)
        self.meta = dict(model_meta, **entry_meta)  # what the entry's meta is, merged


def shared_setup(run_dir):
    require_modules(("torch", "python3-torch"), ("torchvision", "python3-torchvision"),
                    ("onnx", "python3-onnx"))
    shared = Shared(run_dir)
    return serving(shared, shared.srv)


def before_each(shared):
    shared.srv.heal()
    shared.srv.clear_log()


def mount(t, *extra, cache=None, env=None):
    """A Mount (not started) of the test catalog alone, the shipped ones left out."""
    s = t.shared
    return hub_mount(t, s.srv, "system_catalogs=" + s.empty, "catalogs=" + s.catalogs, *extra,
                     cache=cache, env=env)


def shipped(*extra):
    return ("convert=pth:onnx:torchvision-onnx", "converters=" + CONVERTERS) + extra


def read(path):
    with open(path, "rb") as f:
        return f.read()


def runs(m):
    """How many times torchvision-onnx ran for this mount (its one line of output each)."""
    return len(m.log_lines(RUN_LINE))


def check_onnx(data, what):
    """onnx's checker accepts it; named input and output; a dynamic batch axis; the input
    shape of the meta."""
    import onnx
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    check_eq([i.name for i in inputs], ["input"], "the inputs of " + what)
    check_eq([o.name for o in graph.output], ["output"], "the outputs of " + what)
    dims = inputs[0].type.tensor_type.shape.dim
    check(dims[0].dim_param and not dims[0].HasField("dim_value"),
          "the batch axis of %s is not dynamic: %r" % (what, dims[0]))
    check_eq([d.dim_value for d in dims[1:]], [3, 224, 224], "the input shape of " + what)


# ----------------------------------------------------------------------------- tests

@test
def torchvision_onnx_made_once(t):
    """-o convert=pth:onnx:torchvision-onnx shows resnet18/DEFAULT.onnx (a link to
    IMAGENET1K_V1.onnx); the first open converts, onnx's checker accepts the file, and neither
    a second open nor a new mount on the same cache converts again."""
    with mount(t, *shipped()) as m:
        names = sorted(os.listdir(m.path(HUB, MODEL)))
        check_eq(names, ["DEFAULT.onnx", "DEFAULT.pth", ENTRY + ".onnx", ENTRY + ".pth"],
                 "the model's folder")
        check_eq(os.readlink(m.path(HUB, MODEL, "DEFAULT.onnx")), ENTRY + ".onnx",
                 "DEFAULT.onnx's target")
        check_eq(runs(m), 0, "runs caused by listing")
        got = read(m.path(HUB, MODEL, "DEFAULT.onnx"))
        check_eq(runs(m), 1, "runs after the first open")
        check(m.log_lines(RUN_LINE, "torchvision.models.resnet18", "1x3x224x224", "opset 17"),
              "the converter did not say it built torchvision.models.resnet18 for 1x3x224x224")
        check_onnx(got, "DEFAULT.onnx")
        check(read(m.path(HUB, MODEL, ENTRY + ".onnx")) == got, "IMAGENET1K_V1.onnx differs")
        check(read(m.path(HUB, MODEL, "DEFAULT.onnx")) == got, "DEFAULT.onnx changed")
        check_eq(runs(m), 1, "runs after three opens")
        check(read(m.path(HUB, MODEL, "DEFAULT.pth")) == t.shared.weights,
              "DEFAULT.pth is not the served weights")
    with mount(t, *shipped()) as m:
        check(read(m.path(HUB, MODEL, "DEFAULT.onnx")) == got, "DEFAULT.onnx after a remount")
        check_eq(runs(m), 0, "runs after a remount on the same cache")


@test
def onnxruntime_matches_torch(t):
    """onnxruntime (onnxruntime-node) runs DEFAULT.onnx, read through the mount, on a fixed
    input of two images: every output value equals torch's on the same weights within 1e-4."""
    s = t.shared
    if s.ort is None:
        t.skip(s.ort_why)
    out = os.path.join(t.dir, "ort.json")
    script = os.path.join(t.dir, "run_ort.js")
    with open(script, "w") as f:
        f.write(ORT_SCRIPT)
    env = dict(os.environ, NODE_PATH=os.path.dirname(s.ort))
    with mount(t, *shipped()) as m:
        res = subprocess.run(["node", script, m.path(HUB, MODEL, "DEFAULT.onnx"), s.input_path,
                              str(BATCH), out], env=env, capture_output=True, text=True,
                             timeout=300)
        check_eq(res.returncode, 0, "node's exit status (stderr: %s)" % res.stderr[-500:])
    with open(out) as f:
        got = json.load(f)
    check_eq((got["inputs"], got["outputs"]), (["input"], ["output"]), "the session's names")
    check_eq(got["dims"], list(s.want.shape), "the output's shape")
    worst = max(abs(a - b) for a, b in zip(got["values"], s.want.reshape(-1).tolist()))
    print("# largest |onnxruntime - torch|: %.3g over %d values" % (worst, len(got["values"])))
    check(worst <= TOLERANCE, "onnxruntime differs from torch by %.3g (> %g)" % (worst, TOLERANCE))


@test
def broken_checkpoint_is_eio(t):
    """A checkpoint that downloads and verifies but is not one: DEFAULT.onnx gives EIO and the
    converter's own message is in the log; the weights still read."""
    with mount(t, *shipped()) as m:
        path = m.path(HUB, BROKEN, "DEFAULT.onnx")
        check_eq(errno_name(read_errno(path)), "EIO", "reading a broken checkpoint's ONNX")
        check(m.log_lines("torchvision-onnx: cannot load the checkpoint", t.shared.files[BROKEN]),
              "the converter's message is not in the log")
        check(read(m.path(HUB, BROKEN, "DEFAULT.pth")) == t.shared.data[BROKEN],
              "the broken checkpoint itself does not read")


def write_stamp_converter(path, version, runs_path):
    """A converter that writes what it was given (OMNIHUB_META, its version) and counts runs."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# omnihub-converter-version: %s\n"
                "echo run >> '%s'\n"
                "printf '%%s\\n%%s\\n' \"$OMNIHUB_CONVERTER_VERSION\" \"$OMNIHUB_META\" > \"$2\"\n"
                % (version, runs_path))
    os.chmod(path, 0o755)


@test
def converter_version_stamps_the_file(t):
    """A converter found by name in -o converters=DIR gets the entry's meta (OMNIHUB_META) and
    its version; the made file is stamped with that version: the same version on the same
    cache is not run again, a new one is."""
    conv_dir = os.path.join(t.dir, "converters")
    os.makedirs(conv_dir)
    runs_path = os.path.join(t.dir, STAMP_RUNS)
    write_stamp_converter(os.path.join(conv_dir, "stamp-test"), "1", runs_path)
    opts = ("convert=pth:meta:stamp-test", "converters=" + conv_dir)

    def count():
        return len(open(runs_path).read().splitlines()) if os.path.exists(runs_path) else 0

    with mount(t, *opts) as m:
        version, meta = read(m.path(HUB, MODEL, "DEFAULT.meta")).decode().splitlines()
        check_eq(version, "1", "OMNIHUB_CONVERTER_VERSION")
        check_eq(json.loads(meta), t.shared.meta, "OMNIHUB_META: the entry's meta")
        check_eq(count(), 1, "runs after the first open")
    with mount(t, *opts) as m:
        read(m.path(HUB, MODEL, "DEFAULT.meta"))
        check_eq(count(), 1, "runs after a remount, the same version")
    write_stamp_converter(os.path.join(conv_dir, "stamp-test"), "2", runs_path)
    with mount(t, *opts) as m:
        version = read(m.path(HUB, MODEL, "DEFAULT.meta")).decode().splitlines()[0]
        check_eq(version, "2", "the new version's file")
        check_eq(count(), 2, "runs after a remount with version 2")


@test
def unknown_converter_stops_the_start(t):
    """A name no folder holds stops the start with exit 2 and a message naming the folders
    searched, also in the background; an executable of that name on $PATH is not used."""
    on_path = os.path.join(t.dir, "bin")
    os.makedirs(on_path)
    fake = os.path.join(on_path, "no-such-converter")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\ncp \"$1\" \"$2\"\n")
    os.chmod(fake, 0o755)
    conv_dir = os.path.join(t.dir, "converters")
    os.makedirs(conv_dir)
    env = dict(t.env, PATH=on_path + ":" + t.env.get("PATH", "/usr/bin:/bin"))
    s = t.shared
    opts = ["cache=" + t.cache] + s.srv.options() + [
        "system_catalogs=" + s.empty, "catalogs=" + s.catalogs,
        "convert=pth:onnx:no-such-converter", "converters=" + conv_dir]
    for foreground in (["-f"], []):
        res = run_cli(t.binary, foreground + ["-o", ",".join(opts), t.mountpoint], env,
                      mountpoint=t.mountpoint)
        how = "in the foreground" if foreground else "in the background"
        check_eq(res.returncode, 2, "exit status %s (stderr %r)" % (how, res.stderr))
        check("no-such-converter" in res.stderr and conv_dir in res.stderr and
              "/omnihub/converters" in res.stderr.replace(conv_dir, ""),
              "the message %s does not name the folders searched: %r" % (how, res.stderr))


@test
def hub_section_names_the_converter(t):
    """The user's config: converters = DIR, and [torchvision] convert = pth:onnx:NAME, show
    DEFAULT.onnx in that hub, made by the named converter."""
    conv_dir = os.path.join(t.dir, "converters")
    os.makedirs(conv_dir)
    runs_path = os.path.join(t.dir, STAMP_RUNS)
    write_stamp_converter(os.path.join(conv_dir, "stamp-test"), "1", runs_path)
    config = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
    os.makedirs(os.path.dirname(config))
    with open(config, "w") as f:
        f.write("converters = %s\n\n[%s]\nconvert = pth:onnx:stamp-test\n" % (conv_dir, HUB))
    with mount(t) as m:
        check("DEFAULT.onnx" in os.listdir(m.path(HUB, MODEL)),
              "DEFAULT.onnx not listed: %r" % os.listdir(m.path(HUB, MODEL)))
        version, meta = read(m.path(HUB, MODEL, "DEFAULT.onnx")).decode().splitlines()
        check_eq((version, json.loads(meta)), ("1", t.shared.meta), "what the converter wrote")


if __name__ == "__main__":
    run(shared_setup, before_each)
