#!/usr/bin/env python3
"""Integration tests of omnihub-fuse's catalog hubs (entries, digests, archives, converters, client caches) through a real mount.
Not for the ONNX zoo (test_onnx_mount.py), the HF hub (test_hf_mount.py), nor what the shipped catalogs hold.
"""

# The files and catalogs come from tests/fixtures/make_catalog_fixtures.py (real torch, HDF5,
# SavedModel-shaped, IDX, DL4J-style and hostile files made at test time), served by
# tests/fixtures/catalog_server.py (an in-process HTTPS server with a request log and a byte count
# per path); the contract is the team's catalog spec and man/omnihub.catalog.5. Run by `make check`:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_catalog_mount.py [PART]
# Needs Debian's python3-torch, python3-h5py (scripts/install-deps).

import errno
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (check, check_eq, errno_name, errno_of, mounted_noting,  # noqa: E402
                           poll_until, read_errno, require_modules, run, serving, sha256_bytes,
                           test)
from mount_helpers import mount as hub_mount  # noqa: E402

import make_catalog_fixtures as fx  # noqa: E402
from catalog_server import CatalogServer, corrupted  # noqa: E402
from zoo_server import make_tls  # noqa: E402

# What the daemon answers; one place each, so that a deliberate choice is one edit.
MISMATCH_ERRNO = errno.EIO  # a digest that does not match
HOSTILE_ERRNO = errno.EIO  # an archive with an absolute path, "..", a link out
LIMIT_ERRNO = errno.EIO  # an archive past max_unpack_ratio / max_unpack_size
CONVERT_ERRNO = errno.EIO  # a converter that fails, writes nothing, or times out
XATTR_NAMES = ("user.omnihub.url", "user.omnihub.digest", "user.omnihub.hub", "user.omnihub.meta",
               "user.omnihub.cached")
NOT_VERIFIED_LOG = "not verified"  # what the log says of an entry without a digest
CONVERT_TIMEOUT = 2  # -o convert_timeout= for the slow converter (which sleeps 30 s)
TIMEOUT_SLACK = 8.0  # seconds past CONVERT_TIMEOUT the EIO may take
OLD_MTIME_NS = 1_600_000_000 * 10**9  # a pre-filled client file's mtime; any touch changes it

V1 = (fx.HUB_VISION, "tinynet", "V1.pth")
V2 = (fx.HUB_VISION, "tinynet", "V2.pth")
DEFAULT = (fx.HUB_VISION, "tinynet", "DEFAULT.pth")
KERAS = (fx.HUB_KERAS, fx.KERAS_MODEL, fx.KERAS_FILE)
DL4J = (fx.HUB_DL4J, fx.DL4J_MODEL, "dl4j.zip")
DL4J_DECIMAL = (fx.HUB_DL4J, fx.DL4J_MODEL, "decimal.zip")
IMAGES = (fx.HUB_DATA, "mnist", "train-images-idx3-ubyte")
LABELS = (fx.HUB_DATA, "mnist", "train-labels-idx1-ubyte")
NODIGEST = (fx.HUB_DATA, "misc", "nodigest.bin")
WRONGSHA = (fx.HUB_DATA, "misc", "wrongsha.bin")
NOSIZE = (fx.HUB_DATA, "misc", "nosize.bin")
MEMBER = (fx.HUB_DATA, "bundle", "labels.txt")


def archive_dir(model, entry="1"):
    """The mount path (hub, model..., dir) of an archive entry: a directory named after the
    entry (issue 14: tfhub/<publisher>/<model>/<version>/)."""
    return (fx.HUB_TFHUB,) + tuple(model.split("/")) + (entry,)


TFHUB_DIR = archive_dir(fx.TFHUB_MODEL, fx.TFHUB_VERSION)


# ----------------------------------------------------------------------------- fixture

class Shared:
    def __init__(self, run_dir):
        self.tls_dir = os.path.join(run_dir, "tls")
        make_tls(self.tls_dir)
        self.desc = fx.make_files(os.path.join(run_dir, "catalog-fixture"))
        self.srv = CatalogServer(self.desc["www"], self.tls_dir, self.desc["redirects"])

    def start(self):
        self.srv.start()
        self.desc = fx.write_catalogs(self.desc["out"], self.desc, self.srv.base_url)


def shared_setup(run_dir):
    require_modules(("torch", "python3-torch"), ("h5py", "python3-h5py"))
    shared = Shared(run_dir)
    return serving(shared, shared.srv)


def before_each(shared):
    shared.srv.heal()
    shared.srv.clear_log()


def client_env(t):
    """The other clients' caches and the user's config, all in t's own directory."""
    return {"XDG_CONFIG_HOME": os.path.join(t.dir, "config"),
            "TORCH_HOME": os.path.join(t.dir, "torch_home"),
            "KERAS_HOME": os.path.join(t.dir, "keras_home"),
            "TFHUB_CACHE_DIR": os.path.join(t.dir, "tfhub_cache"),
            "HF_ENDPOINT": t.shared.srv.base_url + "/__hf"}


def fresh_cache(t, name):
    """Another empty cache directory in t's directory, for a mount that must start cold."""
    path = os.path.join(t.dir, name)
    os.makedirs(path)
    return path


def catalog_dir(t, name):
    return t.shared.desc["catalogs"]["dirs"][name]


def catalog_mount(t, *extra, system="empty", user="user", env=None, cache=None):
    """A Mount (not started) with the catalogs of the fixture: system_catalogs= the fixture's
    catalog dir `system` (default: an empty one), catalogs= the dir `user` (None: no option)."""
    opts = ["system_catalogs=" + catalog_dir(t, system)]
    if user is not None:
        opts.append("catalogs=" + catalog_dir(t, user))
    return hub_mount(t, t.shared.srv, *opts, *extra, cache=cache,
                     env=dict(client_env(t), **(env or {})))


def mounted(t, *extra, **kwargs):
    return mounted_noting(t, catalog_mount(t, *extra, **kwargs), t.shared.srv.summary)


def require_hubs(m, *hubs):
    """Fail with a clear message when the mount does not show the catalog hubs."""
    top = sorted(os.listdir(m.mountpoint))
    missing = [h for h in hubs if h not in top]
    check(not missing, "the mount shows no %s (top level: %r): this build has no catalog hubs, "
          "or the catalog was refused (see the daemon log)" % (", ".join(h + "/" for h in missing), top))


def p(m, parts):
    return m.path(*parts)


def rec(t, key):
    """The fixture's description of one served file."""
    return t.shared.desc["files"][key]


def data_of(t, key):
    with open(rec(t, key)["local"], "rb") as f:
        return f.read()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def served(t, key):
    """Body bytes the server sent for a fixture file so far."""
    t.shared.srv.wait_idle()
    return t.shared.srv.bytes_served(rec(t, key)["path"])


def check_not_downloaded(t, *keys):
    for key in keys:
        check_eq(served(t, key), 0, "body bytes served for %s (nothing may be downloaded yet)"
                 % rec(t, key)["path"])


def check_downloaded(t, key):
    got = served(t, key)
    check(got >= rec(t, key)["size"], "only %d body bytes of %s (%d) were served"
          % (got, rec(t, key)["path"], rec(t, key)["size"]))


def xattr(path, name):
    try:
        return os.getxattr(path, name).decode("utf-8")
    except OSError as e:
        raise AssertionError("getxattr(%s, %s): %s" % (path, name, errno_name(e.errno)))


def expected_digest(t, key, algo):
    r = rec(t, key)
    return "%s:%s" % (algo, r["prefix"] if algo == "sha256-prefix" else r[algo])


def log_lines_any(m, needles, *also):
    """Log lines containing one of needles and every one of also."""
    return [line for line in m.log().splitlines()
            if any(n in line for n in needles) and all(a in line for a in also)]


def names_for(t, key, mount_parts=None):
    """Ways a log line may name a file: its mount path, the mount file name, the URL's last
    segment, the URL path."""
    r = rec(t, key)
    out = [r["path"], r["path"].rsplit("/", 1)[1]]
    if mount_parts:
        out += ["/".join(mount_parts), mount_parts[-1]]
    return out


def set_old_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))


def check_untouched(path, data):
    check(read(path) == data, "the client's file %s was modified" % path)
    check_eq(os.stat(path).st_mtime_ns, OLD_MTIME_NS, "mtime of " + path)


def walk_outside_mount(root, skip):
    """(dirpath, names) under root, never entering skip (a mount point)."""
    skip = os.path.realpath(skip)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) != skip]
        yield dirpath, dirnames + filenames


def paths_named(t, names):
    """Every path under t's directory (the cache included, the mount excluded) whose last
    component is one of names."""
    return [os.path.join(d, n) for d, entries in walk_outside_mount(t.dir, t.mountpoint)
            for n in entries if n in names]


def files_holding(root, data):
    """Regular files under root whose content is data."""
    out = []
    for dirpath, _, filenames in os.walk(root):
        for n in filenames:
            full = os.path.join(dirpath, n)
            if os.path.isfile(full) and not os.path.islink(full) and os.path.getsize(full) == len(data):
                if read(full) == data:
                    out.append(full)
    return out


def runs_of(path):
    """Lines of a converter's runs file ([] when it never ran)."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def run_fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def converter_command(t, name, runs):
    """The shell command of a fixture converter; $1 $2 are INPUT OUTPUT (no commas: it goes
    into -o)."""
    return '%s "$1" "$2" %s' % (t.shared.desc["converters"][name], runs)


def torch_load(path):
    import torch
    kwargs = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = True
    return torch.load(path, **kwargs)


def check_same_state_dict(got, want, what):
    import torch
    check_eq(sorted(got), sorted(want), "tensor names of " + what)
    for name in want:
        check(torch.equal(got[name], want[name]), "tensor %s of %s differs" % (name, what))


def process_gone(pid):
    """The process has exited (a zombie counts: it runs no more)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ----------------------------------------------------------------------------- listing

@test
def listing_sizes_and_default_link(t):
    """Hubs, models and entries as the catalogs say, sizes from the catalog, DEFAULT.pth a
    symlink to V1.pth that reads as V1; no download before the read."""
    with mounted(t) as m:
        require_hubs(m, *fx.HUBS)
        check_eq(sorted(os.listdir(m.path(fx.HUB_VISION))), ["tinynet"], "models of " + fx.HUB_VISION)
        check_eq(sorted(os.listdir(m.path(fx.HUB_VISION, "tinynet"))),
                 ["DEFAULT.pth", "V1.pth", "V2.pth"], "files of tinynet")
        check_eq(os.readlink(p(m, DEFAULT)), "V1.pth", "readlink of DEFAULT.pth")
        check(os.path.islink(p(m, DEFAULT)), "DEFAULT.pth is not a symlink")
        for parts, key in ((V1, "tinynet_v1"), (V2, "tinynet_v2"), (KERAS, "keras_h5"),
                           (DL4J, "dl4j"), (NODIGEST, "nodigest"), (WRONGSHA, "wrongsha")):
            check_eq(os.stat(p(m, parts)).st_size, rec(t, key)["size"], "size of " + "/".join(parts))
        check_eq(sorted(os.listdir(m.path(fx.HUB_KERAS, fx.KERAS_MODEL))), [fx.KERAS_FILE],
                 "files of the keras model")
        check_eq(sorted(os.listdir(m.path(fx.HUB_TFHUB))), ["hostile", "testpub"], "tfhub top")
        check_eq(os.listdir(m.path(fx.HUB_TFHUB, "testpub")), ["testnet"], "tfhub publisher")
        check_eq(os.listdir(m.path(fx.HUB_TFHUB, "testpub", "testnet")), [fx.TFHUB_VERSION],
                 "tfhub versions")
        check(os.path.isdir(p(m, TFHUB_DIR)), "the SavedModel entry is not a directory")
        check_eq(sorted(os.listdir(m.path(fx.HUB_DL4J, fx.DL4J_MODEL))), ["decimal.zip", "dl4j.zip"],
                 "files of the dl4j model")
        check_eq(sorted(os.listdir(m.path(fx.HUB_DATA))), ["bundle", "down", "misc", "mnist"],
                 "datasets")
        check_eq(sorted(os.listdir(m.path(fx.HUB_DATA, "mnist"))),
                 ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"], "mnist files (no .gz)")
        check_eq(sorted(os.listdir(m.path(fx.HUB_DATA, "misc"))),
                 ["nodigest.bin", "nosize.bin", "wrongsha.bin"], "misc files")
        check_eq(os.listdir(m.path(fx.HUB_DATA, "bundle")), ["labels.txt"], "bundle files")
        for key in t.shared.desc["files"]:
            if key != "nosize":  # its size is learnt with a 1-byte probe
                check_not_downloaded(t, key)
        check(read(p(m, DEFAULT)) == data_of(t, "tinynet_v1"), "DEFAULT.pth does not read as V1")
        check_downloaded(t, "tinynet_v1")
        check_not_downloaded(t, "tinynet_v2")


# ----------------------------------------------------------------------------- formats

@test
def torch_load_through_mount(t):
    """torch.load of the torchvision-style checkpoints through the mount gives the saved
    tensors, and they load into the model."""
    import torch
    from torch import nn
    with mounted(t) as m:
        require_hubs(m, fx.HUB_VISION)
        for parts, key in ((V1, "tinynet_v1"), (V2, "tinynet_v2"), (DEFAULT, "tinynet_v1")):
            got = torch_load(p(m, parts))
            want = torch_load(rec(t, key)["local"])
            check_same_state_dict(got, want, "/".join(parts))
            model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
            model.load_state_dict(got)
            check_eq(sum(x.numel() for x in model.parameters()), rec(t, key)["num_params"],
                     "parameters loaded from " + "/".join(parts))
            check_eq(tuple(model(torch.zeros(1, 3, 8, 8)).shape), (1, 5), "output shape")


@test
def h5py_reads_dataset(t):
    """h5py opens the HDF5 entry through the mount and reads the dataset and attributes.
    It runs in a process of its own, as a user's tool would: h5py holds this process's
    interpreter lock while the open waits, and the test server's threads need it."""
    h5 = rec(t, "keras_h5")["h5"]
    script = (
        "import h5py, json, sys\n"
        "with h5py.File(sys.argv[1], 'r') as f:\n"
        "    ds = f[sys.argv[2]]\n"
        "    print(json.dumps({'shape': list(ds.shape), 'values': ds[()].tolist(),\n"
        "        'units': int(ds.attrs['units']),\n"
        "        'attrs': {k: (v.decode() if isinstance(v, bytes) else str(v))\n"
        "                  for k, v in f.attrs.items()}}))\n")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_KERAS)
        out = subprocess.run([sys.executable, "-c", script, p(m, KERAS), h5["dataset"]],
                             capture_output=True, text=True, timeout=120)
        check(out.returncode == 0, "h5py failed: %s" % out.stderr[-2000:])
        got = json.loads(out.stdout)
        check_eq(got["shape"], h5["shape"], "shape of " + h5["dataset"])
        flat = lambda v: sum((flat(x) for x in v), []) if isinstance(v, list) else [v]
        check_eq([round(x, 5) for x in flat(got["values"])],
                 [round(float(x), 5) for x in flat(h5["values"])], "values of " + h5["dataset"])
        check_eq(got["units"], 6, "attribute units")
        for k, v in h5["attrs"].items():
            check_eq(got["attrs"].get(k), v, "file attribute " + k)
        check_eq(hashlib.md5(read(p(m, KERAS))).hexdigest(), rec(t, "keras_h5")["md5"], "md5 of the .h5")


@test
def tfhub_archive_directory(t):
    """The SavedModel entry is its extracted tree: saved_model.pb, variables/, assets/, with
    the archive's bytes; extracted once."""
    tree = rec(t, "tfhub")["tree"]
    with mounted(t) as m:
        require_hubs(m, fx.HUB_TFHUB)
        root = p(m, TFHUB_DIR)
        check_eq(sorted(os.listdir(root)), ["assets", "saved_model.pb", "variables"], "the SavedModel top")
        check_eq(sorted(os.listdir(os.path.join(root, "variables"))),
                 ["variables.data-00000-of-00001", "variables.index"], "variables/")
        for rel, sha in sorted(tree.items()):
            full = os.path.join(root, rel)
            if sha is None:
                check(os.path.isdir(full), rel + " is not a directory")
            else:
                check_eq(os.stat(full).st_size, rec(t, "tfhub")["tree_sizes"][rel], "size of " + rel)
                check_eq(sha256_bytes(read(full)), sha, "sha256 of " + rel)
        first = served(t, "tfhub")
        check(first >= rec(t, "tfhub")["size"], "the archive was not downloaded (%d bytes)" % first)
        check_eq(sorted(os.listdir(root)), ["assets", "saved_model.pb", "variables"], "second listing")
        check_eq(served(t, "tfhub"), first, "bytes served after a second listing")


@test
def archive_member_served(t):
    """An entry with archive.member is that member of the zip, as a file."""
    r = rec(t, "bundle")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check(os.path.isfile(p(m, MEMBER)), "labels.txt is not a file")
        got = read(p(m, MEMBER))
        check_eq(sha256_bytes(got), r["member_sha256"], "sha256 of the member " + r["member"])
        check_eq(os.stat(p(m, MEMBER)).st_size, r["member_size"], "size of labels.txt after the read")


@test
def gzip_dataset_decompressed(t):
    """A decompress:gzip entry reads as the decompressed bytes; with unpacked_size, stat says
    it before any download; without, the whole file still reads right."""
    import gzip
    images = rec(t, "idx_images")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(os.stat(p(m, IMAGES)).st_size, images["unpacked_size"], "stat size of " + IMAGES[-1])
        check_not_downloaded(t, "idx_images")
        got = read(p(m, IMAGES))
        check_eq(len(got), images["unpacked_size"], "bytes read from " + IMAGES[-1])
        check(got == gzip.decompress(data_of(t, "idx_images")), IMAGES[-1] + " is not gzip.decompress")
        check_eq(got[:4], b"\x00\x00\x08\x03", "IDX magic")
        check_eq(xattr(p(m, IMAGES), "user.omnihub.digest"), expected_digest(t, "idx_images", "sha256"),
                 "digest xattr (of the download)")
        want = gzip.decompress(data_of(t, "idx_labels"))
        fd = os.open(p(m, LABELS), os.O_RDONLY)
        try:
            check_eq(os.fstat(fd).st_size, len(want), "fstat size of %s once open" % LABELS[-1])
            chunks = []
            while True:
                block = os.read(fd, 1 << 16)
                if not block:
                    break
                chunks.append(block)
        finally:
            os.close(fd)
        check(b"".join(chunks) == want, "%s (no unpacked_size) does not read whole and right" % LABELS[-1])
        check_eq(os.stat(p(m, LABELS)).st_size, len(want), "stat size of %s after the read" % LABELS[-1])


# ----------------------------------------------------------------------------- digests

@test
def adler32_entry_and_corruption(t):
    """An Adler-32 entry (hex, and a decimal number in the catalog) reads right through the
    CDN redirect; a corrupted copy served gives EIO, a log line naming adler32 and the file,
    and nothing kept: the next open after the server heals reads right."""
    d = rec(t, "dl4j")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DL4J)
        t.shared.srv.corrupt(d["path"])
        check_eq(errno_name(read_errno(p(m, DL4J))), errno_name(MISMATCH_ERRNO), "reading a corrupted copy")
        lines = log_lines_any(m, names_for(t, "dl4j", DL4J), "adler32")
        check(lines, "no log line names adler32 and %s" % "/".join(DL4J))
        t.shared.srv.heal()
        check_eq(files_holding(t.cache, corrupted(data_of(t, "dl4j"))), [],
                 "files in the cache holding the corrupted bytes")
        check(read(p(m, DL4J)) == data_of(t, "dl4j"), "dl4j.zip after the server healed")
        check(read(p(m, DL4J_DECIMAL)) == data_of(t, "dl4j"), "decimal.zip")
        for parts in (DL4J, DL4J_DECIMAL):
            check_eq(xattr(p(m, parts), "user.omnihub.digest"), expected_digest(t, "dl4j", "adler32"),
                     "digest xattr of " + parts[-1])
        redirects = t.shared.srv.requests(path=d["redirect_path"])
        check(redirects and all(r["status"] == 302 for r in redirects),
              "the catalog URL (through %s) was not requested" % fx.REDIRECT_PREFIX)


@test
def no_digest_entry(t):
    """An entry without digests: xattr digest "none" before any read, reads right, and the
    log says it was not verified."""
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(xattr(p(m, NODIGEST), "user.omnihub.digest"), "none", "digest xattr")
        check_not_downloaded(t, "nodigest")
        check(read(p(m, NODIGEST)) == data_of(t, "nodigest"), "nodigest.bin does not read right")
        check(log_lines_any(m, names_for(t, "nodigest", NODIGEST), NOT_VERIFIED_LOG),
              "no log line says %s was %s" % (NODIGEST[-1], NOT_VERIFIED_LOG))


@test
def wrong_sha256_is_eio_and_not_kept(t):
    """A download that does not match the catalog's sha256: EIO (again on a second open, from
    a new download), and the bytes are nowhere in the cache."""
    data = data_of(t, "wrongsha")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(errno_name(read_errno(p(m, WRONGSHA))), errno_name(MISMATCH_ERRNO), "first read")
        first = served(t, "wrongsha")
        check(first >= len(data), "the file was not downloaded (%d bytes)" % first)
        check_eq(errno_name(read_errno(p(m, WRONGSHA))), errno_name(MISMATCH_ERRNO), "second read")
        check(log_lines_any(m, names_for(t, "wrongsha", WRONGSHA)),
              "no log line names %s" % "/".join(WRONGSHA))
        check_eq(xattr(p(m, WRONGSHA), "user.omnihub.cached"), "no", "cached xattr after a mismatch")
    check_eq(files_holding(t.cache, data), [], "files in the cache holding the mismatching bytes")
    check_eq([x for x in paths_named(t, ["wrongsha.bin"]) if x.startswith(t.cache + os.sep)], [],
             "cache paths named wrongsha.bin")


@test
def xattrs_without_download(t):
    """The five xattrs on a file and on an archive directory, read with no download;
    cached turns yes after the read."""
    srv = t.shared.srv
    with mounted(t) as m:
        require_hubs(m, fx.HUB_VISION, fx.HUB_KERAS, fx.HUB_TFHUB)
        v1 = p(m, V1)
        check(set(XATTR_NAMES) <= set(os.listxattr(v1)), "listxattr of V1.pth: %r" % os.listxattr(v1))
        check_eq(xattr(v1, "user.omnihub.url"), srv.url(rec(t, "tinynet_v1")["path"]), "url of V1")
        check_eq(xattr(v1, "user.omnihub.digest"), expected_digest(t, "tinynet_v1", "sha256-prefix"),
                 "digest of V1")
        check_eq(xattr(v1, "user.omnihub.hub"), fx.HUB_VISION, "hub of V1")
        meta = json.loads(xattr(v1, "user.omnihub.meta"))
        check_eq(meta.get("num_params"), rec(t, "tinynet_v1")["num_params"],
                 "meta num_params (the entry's over the model's 0)")
        for k in ("task", "docs", "acc@1"):
            check(k in meta, "meta of V1 has no %r: %r" % (k, meta))
        check_eq(xattr(v1, "user.omnihub.cached"), "no", "cached of V1 before the read")
        check_eq(xattr(p(m, V2), "user.omnihub.digest"), expected_digest(t, "tinynet_v2", "sha256"),
                 "digest of V2")
        check_eq(xattr(p(m, KERAS), "user.omnihub.digest"), expected_digest(t, "keras_h5", "md5"),
                 "digest of the .h5")
        tf = p(m, TFHUB_DIR)
        check(set(XATTR_NAMES) <= set(os.listxattr(tf)), "listxattr of the archive dir: %r" % os.listxattr(tf))
        check_eq(xattr(tf, "user.omnihub.url"), srv.url(rec(t, "tfhub")["path"]), "url of the archive")
        check_eq(xattr(tf, "user.omnihub.digest"), "none", "digest of the archive (TF Hub publishes none)")
        check_eq(xattr(tf, "user.omnihub.hub"), fx.HUB_TFHUB, "hub of the archive")
        check_eq(json.loads(xattr(tf, "user.omnihub.meta")), {"task": "embedding"}, "meta of the archive")
        check_eq(xattr(tf, "user.omnihub.cached"), "no", "cached of the archive before listing")
        check_eq(json.loads(xattr(p(m, NODIGEST), "user.omnihub.meta")), {}, "meta of an entry without any")
        check_not_downloaded(t, "tinynet_v1", "tinynet_v2", "keras_h5", "tfhub", "nodigest")
        read(v1)
        check_eq(xattr(v1, "user.omnihub.cached"), "yes", "cached of V1 after the read")
        os.listdir(tf)
        check_eq(xattr(tf, "user.omnihub.cached"), "yes", "cached of the archive after listing")


@test
def unknown_size_probed(t):
    """An entry without a size: stat answers the right size after a Range: bytes=0-0 probe,
    and the file reads right."""
    r = rec(t, "nosize")
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(os.stat(p(m, NOSIZE)).st_size, r["size"], "stat size of nosize.bin")
        t.shared.srv.wait_idle()
        check("bytes=0-0" in t.shared.srv.ranges(r["path"]),
              "no Range: bytes=0-0 probe of %s: %r" % (r["path"], t.shared.srv.ranges(r["path"])))
        check(served(t, "nosize") <= 1, "%d body bytes served for the probe" % served(t, "nosize"))
        check(read(p(m, NOSIZE)) == data_of(t, "nosize"), "nosize.bin does not read right")


@test
def unknown_size_from_a_server_without_ranges(t):
    """An entry without a size on a server that ignores Range (200, the whole file): its
    size comes from the Content-Length of that answer, and the file reads right."""
    r = rec(t, "nosize")
    t.shared.srv.ignore_ranges(r["path"])
    with mounted(t) as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(os.stat(p(m, NOSIZE)).st_size, r["size"], "stat size of nosize.bin")
        check(m.log_lines("nosize.bin", "ignores ranges"),
              "no log line says the server ignores ranges")
        check(read(p(m, NOSIZE)) == data_of(t, "nosize"), "nosize.bin does not read right")


@test
def unknown_size_offline_says_why_at_open(t):
    """Offline, an entry whose size was never learnt lists as 0 bytes, and each open of it is
    EIO with a log line that names the file and says why."""
    with mounted(t, "offline") as m:
        require_hubs(m, fx.HUB_DATA)
        check_eq(os.stat(p(m, NOSIZE)).st_size, 0, "the size shown offline")
        before = len(m.log_lines("/".join(NOSIZE) + ": "))
        check_eq(errno_name(read_errno(p(m, NOSIZE))), "EIO", "reading it offline")
        after = m.log_lines("/".join(NOSIZE) + ": ")
        check(len(after) > before, "the open's EIO has no log line naming the file")
        check(any("offline" in line for line in after[before:]),
              "the open's log line does not say it is offline: %s" % after[before:])


# ----------------------------------------------------------------------------- converters

@test
def converter_option_runs_once(t):
    """-o convert=pth:onnx:CMD shows <stem>.onnx beside every pth entry; the first open runs
    the command (cwd in the cache, stdin /dev/null, OMNIHUB_INPUT/OUTPUT set), and the output
    is served; a second open does not run it again."""
    runs = os.path.join(t.dir, "runs.log")
    option = "convert=pth:onnx:" + converter_command(t, "convert", runs)
    onnx = (fx.HUB_VISION, "tinynet", "V1.onnx")
    with mounted(t, option) as m:
        require_hubs(m, fx.HUB_VISION)
        names = sorted(os.listdir(m.path(fx.HUB_VISION, "tinynet")))
        for name in ("V1.onnx", "V2.onnx", "V1.pth", "V2.pth"):
            check(name in names, "%s not listed beside the entries: %r" % (name, names))
        check_eq(runs_of(runs), [], "converter runs caused by listing")
        got = read(p(m, onnx))
        check(got == data_of(t, "tinynet_v1") + fx.CONVERT_MARKER, "V1.onnx is not the converter's output")
        lines = runs_of(runs)
        check_eq(len(lines), 1, "converter runs after the first open")
        fields = run_fields(lines[0])
        check(fields.get("cwd", "").startswith(os.path.realpath(t.cache) + os.sep),
              "the converter's cwd %r is not inside the cache %s" % (fields.get("cwd"), t.cache))
        check_eq(fields.get("stdin"), "/dev/null", "the converter's stdin")
        check_eq((fields.get("env_in"), fields.get("env_out")), ("set", "set"),
                 "OMNIHUB_INPUT / OMNIHUB_OUTPUT in the converter's environment")
        check(read(p(m, onnx)) == got, "V1.onnx changed on the second open")
        check_eq(len(runs_of(runs)), 1, "converter runs after the second open")
        check(read(p(m, V1)) == data_of(t, "tinynet_v1"), "V1.pth itself changed")


@test
def converter_in_a_hub_section(t):
    """The user's config: convert = pth:onnx:CMD in [testvision] makes V1.onnx there, run
    once on the first open; the same line in another hub's section makes none in
    testvision."""
    runs = os.path.join(t.dir, "runs.log")
    config = os.path.join(t.dir, "config", "omnihub", "config")
    os.makedirs(os.path.dirname(config))
    line = "convert = pth:onnx:" + converter_command(t, "convert", runs) + "\n"
    onnx = (fx.HUB_VISION, "tinynet", "V1.onnx")
    with open(config, "w", encoding="utf-8") as f:
        f.write("[%s]\n%s" % (fx.HUB_VISION, line))
    with mounted(t) as m:
        require_hubs(m, fx.HUB_VISION)
        check("V1.onnx" in os.listdir(m.path(fx.HUB_VISION, "tinynet")), "V1.onnx not listed")
        check(read(p(m, onnx)) == data_of(t, "tinynet_v1") + fx.CONVERT_MARKER,
              "V1.onnx is not the converter's output")
        check_eq(len(runs_of(runs)), 1, "converter runs after the first open")
    with open(config, "w", encoding="utf-8") as f:
        f.write("[%s]\n%s" % (fx.HUB_KERAS, line))
    with mounted(t, cache=fresh_cache(t, "other")) as m:
        require_hubs(m, fx.HUB_VISION)
        names = os.listdir(m.path(fx.HUB_VISION, "tinynet"))
        check("V1.onnx" not in names, "another hub's converter shows in %s: %r"
              % (fx.HUB_VISION, names))


@test
def converter_on_archive_reads_the_tree(t):
    """A converter of an archive entry (freezing a SavedModel) gets the extracted tree as
    its input: <version>.<to> beside the folder, made from the folder's files."""
    script = os.path.join(t.dir, "tree-to-list.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\ncd "$OMNIHUB_INPUT" && find . -mindepth 1 | sort > "$OMNIHUB_OUTPUT"\n')
    os.chmod(script, 0o755)
    out = TFHUB_DIR[:-1] + (TFHUB_DIR[-1] + ".filelist",)
    with mounted(t, "convert=saved_model:filelist:" + script) as m:
        require_hubs(m, fx.HUB_TFHUB)
        names = os.listdir(p(m, TFHUB_DIR[:-1]))
        check(out[-1] in names, "%s not listed beside the folder: %r" % (out[-1], names))
        got = read(p(m, out)).decode().split()
        check_eq(got, sorted("./" + rel for rel in rec(t, "tfhub")["tree"]),
                 "the files the converter saw")
        check_eq(sorted(os.listdir(p(m, TFHUB_DIR))), ["assets", "saved_model.pb", "variables"],
                 "the folder, extracted for the converter")


@test
def converter_failure_is_eio_with_stderr(t):
    """A converter that exits 3 (stderr "conversion failed: reason"), and one that exits 0
    without output: open gives EIO, the stderr is in the log, and a later open runs it again."""
    runs_fail = os.path.join(t.dir, "runs-fail.log")
    runs_empty = os.path.join(t.dir, "runs-empty.log")
    fail = (fx.HUB_VISION, "tinynet", "V1.onnx")
    empty = (fx.HUB_VISION, "tinynet", "V1.bin")
    with mounted(t, "convert=pth:onnx:" + converter_command(t, "fail", runs_fail),
                 "convert=pth:bin:" + converter_command(t, "empty", runs_empty)) as m:
        require_hubs(m, fx.HUB_VISION)
        check_eq(errno_name(read_errno(p(m, fail))), errno_name(CONVERT_ERRNO), "opening V1.onnx")
        check(m.log_lines(fx.FAIL_MESSAGE), "the converter's stderr %r is not in the log" % fx.FAIL_MESSAGE)
        check(m.log_lines("/".join(fail) + ": ", "exited with status 3"),
              "no log line names %s and the converter's exit status" % "/".join(fail))
        check_eq(errno_name(read_errno(p(m, fail))), errno_name(CONVERT_ERRNO), "opening V1.onnx again")
        check_eq(len(runs_of(runs_fail)), 2, "runs of the failing converter after two opens")
        check_eq(errno_name(read_errno(p(m, empty))), errno_name(CONVERT_ERRNO),
                 "opening V1.bin (exit 0, no output)")
        check_eq(len(runs_of(runs_empty)), 1, "runs of the converter that writes nothing")
        check(m.log_lines("/".join(empty) + ": ", "wrote no"),
              "no log line names %s and says the converter wrote nothing" % "/".join(empty))


@test
def converter_timeout_kills_group(t):
    """A converter past convert_timeout: open gives EIO within a few seconds, and its process
    group (the shell and its sleeping child) is killed."""
    runs = os.path.join(t.dir, "runs-slow.log")
    slow = (fx.HUB_VISION, "tinynet", "V1.onnx")
    with mounted(t, "convert=pth:onnx:" + converter_command(t, "slow", runs),
                 "convert_timeout=%d" % CONVERT_TIMEOUT) as m:
        require_hubs(m, fx.HUB_VISION)
        read(p(m, V1))  # the input is downloaded first: time only the conversion
        started = time.monotonic()
        e = read_errno(p(m, slow))
        took = time.monotonic() - started
        check_eq(errno_name(e), errno_name(CONVERT_ERRNO), "opening V1.onnx")
        check(CONVERT_TIMEOUT - 0.5 <= took <= CONVERT_TIMEOUT + TIMEOUT_SLACK,
              "EIO after %.1f s with convert_timeout=%d" % (took, CONVERT_TIMEOUT))
        lines = runs_of(runs)
        check_eq(len(lines), 1, "runs of the slow converter")
        fields = run_fields(lines[0])
        for key in ("pid", "child"):
            pid = int(fields[key])
            check(poll_until(lambda: process_gone(pid), 3.0),
                  "the converter's %s (pid %d) still runs after the timeout" % (key, pid))


@test
def catalog_convert_entry(t):
    """A user catalog's entry "convert" adds <stem>.<to> made by its command."""
    runs = t.shared.desc["catalogs"]["convert_runs"]
    if os.path.exists(runs):
        os.unlink(runs)
    txt = (fx.HUB_CONVERT, "tinynet", "V1.txt")
    with mounted(t, user="convert") as m:
        require_hubs(m, fx.HUB_CONVERT)
        check_eq(sorted(os.listdir(m.path(fx.HUB_CONVERT, "tinynet"))), ["V1.pth", "V1.txt"],
                 "files of the model with a catalog converter")
        check(read(p(m, txt)) == data_of(t, "tinynet_v1") + fx.CONVERT_MARKER,
              "V1.txt is not the converter's output")
        check_eq(len(runs_of(runs)), 1, "runs of the catalog's converter")


# ----------------------------------------------------------------------------- archives

def check_outside_untouched(t):
    d = t.shared.desc
    outside = d["outside"]
    check_eq(sorted(os.listdir(outside)), sorted(d["outside_files"]), "files in %s" % outside)
    for name, sha in d["outside_files"].items():
        full = os.path.join(outside, name)
        check_eq(sha256_bytes(read(full)), sha, "content of " + full)
        check_eq(os.stat(full).st_nlink, 1, "links to " + full)


@test
def hostile_archives_refused(t):
    """Archives with an absolute path, "..", a symlink out (absolute and relative), a hard
    link out: listing the entry gives EIO (again on a second try), the log names the bad
    member, and nothing is written outside the cache nor kept inside it."""
    hostile = t.shared.desc["hostile"]
    with mounted(t) as m:
        require_hubs(m, fx.HUB_TFHUB)
        for kind in fx.HOSTILE:
            d = p(m, archive_dir("hostile/" + kind))
            check_eq(errno_name(errno_of(os.listdir, d)), errno_name(HOSTILE_ERRNO), "listing " + kind)
            check_eq(errno_name(errno_of(os.listdir, d)), errno_name(HOSTILE_ERRNO), "listing %s again" % kind)
            bad = hostile[kind]["bad_member"]
            check(m.log_lines("/".join(archive_dir("hostile/" + kind)) + ": ", bad),
                  "no log line names %s and its member %r" % (kind, bad))
    check_outside_untouched(t)
    names = {"abs-escape.txt", "dotdot-escape.txt", "saved_model.pb"}
    for kind in fx.HOSTILE:
        names.update(hostile[kind]["escape_names"])
    check_eq(paths_named(t, names), [], "files of the hostile archives under the test directory")


@test
def unpack_limits(t):
    """The zero bomb extracts under the default limits (a control); max_unpack_size=1M
    refuses it, and max_unpack_ratio=2 refuses the 1 GiB one: EIO, a log line naming the
    entry, nothing extracted kept."""
    bomb = archive_dir("hostile/bomb")
    bigbomb = archive_dir("hostile/bigbomb")
    with mounted(t, cache=fresh_cache(t, "cache-default")) as m:
        require_hubs(m, fx.HUB_TFHUB)
        check_eq(sorted(os.listdir(p(m, bomb))), ["saved_model.pb", "zeros.bin"], "the bomb's tree")
        check_eq(os.stat(os.path.join(p(m, bomb), "zeros.bin")).st_size, fx.BOMB_BYTES, "zeros.bin")
    for option, parts, key in (("max_unpack_size=1M", bomb, "bomb"),
                               ("max_unpack_ratio=2", bigbomb, "bigbomb")):
        cache = fresh_cache(t, "cache-" + option.split("=")[0])
        with mounted(t, option, cache=cache) as m:
            check_eq(errno_name(errno_of(os.listdir, p(m, parts))), errno_name(LIMIT_ERRNO),
                     "listing %s with %s" % ("/".join(parts), option))
            check(log_lines_any(m, names_for(t, key, parts) + ["hostile/" + key]),
                  "no log line names %s (with %s)" % ("/".join(parts), option))
        left = [os.path.join(d, n) for d, entries in walk_outside_mount(cache, t.mountpoint)
                for n in entries if n == "zeros.bin"]
        check_eq(left, [], "zeros.bin kept in the cache with " + option)


# ----------------------------------------------------------------------------- catalogs

@test
def malformed_catalogs_skipped(t):
    """Malformed catalogs beside a good one (and a shipped one naming a command): the mount
    starts, the good hub is there, each bad file gets one log line naming it and the json
    path, no hub of a refused file appears, and non-*.json files are ignored."""
    c = t.shared.desc["catalogs"]
    bad = c["malformed"] + c["malformed_shipped"]
    with mounted(t, system="shipped_bad", user="malformed") as m:
        require_hubs(m, fx.HUB_GOOD)
        top = os.listdir(m.mountpoint)
        check_eq(sorted(os.listdir(m.path(fx.HUB_GOOD, "tinynet"))), ["V1.pth"], "the good hub's model")
        check("dupe-" not in xattr(m.path(fx.HUB_GOOD, "tinynet", "V1.pth"), "user.omnihub.url"),
              "the duplicate model of z_dupe.json replaced the first one")
        for b in bad:
            lines = m.log_lines(b["file"])
            check_eq(len(lines), 1, "log lines naming %s: %r" % (b["file"], lines))
            if b["json_path"]:
                check(b["json_path"] in lines[0], "the line for %s does not name %r: %r"
                      % (os.path.basename(b["file"]), b["json_path"], lines[0]))
            if b["hub"]:
                check(b["hub"] not in top, "hub %s of the refused %s is shown" % (b["hub"], b["file"]))
        version2 = [b for b in bad if b["file"].endswith("version2.json")][0]
        check("unsupported version 2" in m.log_lines(version2["file"])[0], "version 2's line")
        check("Bad Hub" not in top, "the hub named 'Bad Hub' is shown")
        if "onnx" in top:
            check("tinynet" not in os.listdir(m.path("onnx")), "a catalog added a model to onnx/")
        check_eq(m.log_lines("notes.txt"), [], "log lines about a file that is not *.json")
    check(not os.path.exists(c["shipped_convert_ran"]), "the shipped catalog's command ran")


def check_client_file_used(t, m, parts, key, client_path):
    check(read(p(m, parts)) == data_of(t, key), "%s does not read right" % "/".join(parts))
    check_eq(served(t, key), 0, "body bytes served for %s (the client's copy at %s is good)"
             % ("/".join(parts), client_path))
    check_untouched(client_path, data_of(t, key))


@test
def torch_and_keras_client_caches(t):
    """Good copies in $TORCH_HOME/hub/checkpoints and $KERAS_HOME/models are used without a
    download and left as they are; a corrupted copy is not used (the server's bytes are)."""
    env = client_env(t)
    v1 = os.path.join(env["TORCH_HOME"], "hub", "checkpoints", rec(t, "tinynet_v1")["name"])
    v2 = os.path.join(env["TORCH_HOME"], "hub", "checkpoints", rec(t, "tinynet_v2")["name"])
    h5 = os.path.join(env["KERAS_HOME"], "models", fx.KERAS_URL_NAME)
    bad_v2 = bytes(b ^ 0xFF for b in data_of(t, "tinynet_v2"))
    set_old_file(v1, data_of(t, "tinynet_v1"))
    set_old_file(v2, bad_v2)
    set_old_file(h5, data_of(t, "keras_h5"))
    with mounted(t) as m:
        require_hubs(m, fx.HUB_VISION, fx.HUB_KERAS)
        check_client_file_used(t, m, V1, "tinynet_v1", v1)
        check_client_file_used(t, m, KERAS, "keras_h5", h5)
        check(read(p(m, V2)) == data_of(t, "tinynet_v2"), "V2.pth (the client's copy is corrupted)")
        check_downloaded(t, "tinynet_v2")
        check_untouched(v2, bad_v2)


@test
def keras_home_default(t):
    """Without KERAS_HOME, ~/.keras/models is the Keras cache."""
    h5 = os.path.join(t.env["HOME"], ".keras", "models", fx.KERAS_URL_NAME)
    set_old_file(h5, data_of(t, "keras_h5"))
    with mounted(t, env={"KERAS_HOME": None}) as m:
        require_hubs(m, fx.HUB_KERAS)
        check_client_file_used(t, m, KERAS, "keras_h5", h5)


@test
def tfhub_client_cache(t):
    """An extracted tree in $TFHUB_CACHE_DIR/<sha1 of the handle>/ is used when every
    `expect` file is there (no download); one that lacks one is not."""
    handle_dir = hashlib.sha1(fx.TFHUB_HANDLE.encode()).hexdigest()
    tree = t.shared.desc["tfhub_tree_local"]
    good = os.path.join(t.dir, "tfhub-good")
    shutil.copytree(tree, os.path.join(good, handle_dir))
    with mounted(t, env={"TFHUB_CACHE_DIR": good}) as m:
        require_hubs(m, fx.HUB_TFHUB)
        root = p(m, TFHUB_DIR)
        check_eq(sorted(os.listdir(root)), ["assets", "saved_model.pb", "variables"], "the tree")
        check_eq(sha256_bytes(read(os.path.join(root, "saved_model.pb"))),
                 rec(t, "tfhub")["tree"]["saved_model.pb"], "saved_model.pb")
        check_eq(served(t, "tfhub"), 0, "body bytes served with the TF Hub cache filled")
    check_eq(sha256_bytes(read(os.path.join(good, handle_dir, "saved_model.pb"))),
             rec(t, "tfhub")["tree"]["saved_model.pb"], "the TF Hub cache's saved_model.pb")
    partial = os.path.join(t.dir, "tfhub-partial")
    shutil.copytree(tree, os.path.join(partial, handle_dir))
    os.unlink(os.path.join(partial, handle_dir, fx.TFHUB_EXPECT[1]))
    with mounted(t, env={"TFHUB_CACHE_DIR": partial}, cache=fresh_cache(t, "cache2")) as m:
        root = p(m, TFHUB_DIR)
        check(os.path.isfile(os.path.join(root, fx.TFHUB_EXPECT[1])),
              "%s missing from the tree" % fx.TFHUB_EXPECT[1])
        check_downloaded(t, "tfhub")


@test
def unreachable_size_lists_as_zero(t):
    """A file whose size is not in its catalog and whose host refuses: listed, 0 bytes, its
    url and digest readable; an open fails with EIO; the log says why."""
    path = (fx.HUB_DATA, "down", "unreachable.bin")
    with mounted(t) as m:
        check_eq(os.listdir(m.path(*path[:2])), ["unreachable.bin"], "the listing")
        check_eq(os.stat(m.path(*path)).st_size, 0, "the size shown")
        check_eq(xattr(m.path(*path), "user.omnihub.url"), fx.UNREACHABLE_URL, "url")
        check_eq(xattr(m.path(*path), "user.omnihub.digest"),
                 "sha256:" + rec(t, "nosize")["sha256"], "digest")
        check_eq(xattr(m.path(*path), "user.omnihub.cached"), "no", "cached")
        check_eq(errno_name(read_errno(m.path(*path))), "EIO", "reading it")
        check(m.log_lines("cannot learn the size", "/".join(path) + ": ", fx.UNREACHABLE_URL),
              "no log line names %s, its URL, and says the size could not be learnt"
              % "/".join(path))


@test
def user_catalog_extends_shipped_hub(t):
    """A user catalog (in $XDG_CONFIG_HOME/omnihub/catalogs, then with -o catalogs=) adds a
    model to a shipped hub: both models are listed and read."""
    user_dir = os.path.join(client_env(t)["XDG_CONFIG_HOME"], "omnihub", "catalogs")
    os.makedirs(user_dir)
    shutil.copy(t.shared.desc["catalogs"]["files"]["extend"], user_dir)
    for user in (None, "extend"):
        if user:
            os.unlink(os.path.join(user_dir, os.path.basename(t.shared.desc["catalogs"]["files"]["extend"])))
        with mounted(t, system="shipped", user=user) as m:
            how = "-o catalogs=" if user else "$XDG_CONFIG_HOME/omnihub/catalogs"
            require_hubs(m, fx.HUB_VISION)
            check_eq(sorted(os.listdir(m.path(fx.HUB_VISION))), ["tinynet", "tinynet2"],
                     "models of the shipped hub extended from " + how)
            check_eq(sorted(os.listdir(m.path(fx.HUB_VISION, "tinynet"))), ["DEFAULT.pth", "V1.pth"],
                     "the shipped model")
            check(read(m.path(fx.HUB_VISION, "tinynet2", "V1.pth")) == data_of(t, "tinynet2"),
                  "tinynet2/V1.pth from the user catalog")
            check_eq(os.readlink(m.path(fx.HUB_VISION, "tinynet2", "DEFAULT.pth")), "V1.pth",
                     "tinynet2's DEFAULT.pth")


@test
def user_model_replaces_shipped(t):
    """A user catalog's model replaces the shipped model of the same hub and path, with a log
    line."""
    replace = t.shared.desc["catalogs"]["files"]["replace"]
    with mounted(t, system="shipped", user="replace") as m:
        require_hubs(m, fx.HUB_VISION)
        check_eq(sorted(os.listdir(m.path(fx.HUB_VISION, "tinynet"))), ["V2.pth"],
                 "tinynet as the user catalog defines it")
        check(read(m.path(fx.HUB_VISION, "tinynet", "V2.pth")) == data_of(t, "tinynet_v2"), "V2.pth")
        check(log_lines_any(m, [replace, os.path.basename(replace)], "tinynet"),
              "no log line says %s replaces tinynet" % replace)


if __name__ == "__main__":
    run(shared_setup, before_each)
