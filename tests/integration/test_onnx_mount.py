#!/usr/bin/env python3
"""Integration tests of omnihub-fuse: mount the ONNX Model Zoo of the local fake hub and check it as a black box.
Not for unit checks of the C modules (tests/unit) nor for benchmarks; without root or /dev/fuse it fails
(skips with OMNIHUB_ALLOW_SKIP=1).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_onnx_mount.py [PART]

import contextlib
import errno
import importlib.util
import json
import mmap
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import unicodedata

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, all_files, all_paths, check, check_eq,  # noqa: E402
                           count_requests, errno_name, errno_of, is_mounted, make_zoo, partials,
                           read_errno, run, run_cli, settle_logs, sha256_bytes, sha256_file, test)

from zoo_server import HOSTS, INDEX_PATH, ZooServer  # noqa: E402

LARGE_MIB = 64
INDEX_CACHE_REL = ".index/onnx/ONNX_HUB_MANIFEST.json"
# A cache after failed downloads only: the index (and the record that its warnings, of the
# zoo's hostile entries, were logged), and no folder left for the failed files.
INDEX_ONLY = [".index", ".index/onnx", INDEX_CACHE_REL, INDEX_CACHE_REL + ".warned"]
# Port 1 on loopback: nothing listens there, so every connection is refused at once.
DEAD_INDEX_URL = "https://127.0.0.1:1" + INDEX_PATH
DEAD_MODEL_URL = "https://127.0.0.1:1/onnxmodelzoo/legacy_models/resolve/main/"
HF_REPO_DIR = "models--onnxmodelzoo--legacy_models"
OLD_MTIME_NS = 1_600_000_000 * 10**9  # a pre-filled client file's mtime; any touch changes it

# What the daemon's documentation says about this fixture's names; checked against our own
# derivation of the rules so that a slip in expected_dir_names() cannot go unnoticed.
DOCUMENTED_DIRS = {"Mobile Net": "mobile-net-2", "mobile-net": "mobile-net",
                   "ResNet18": "resnet18", "resnet18": "resnet18",
                   "Über_Model v2.0": "uber_model-v2.0"}
ALLOWED_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


# ----------------------------------------------------------------------------- the fixture

# Latin letters whose ASCII spelling is not their NFD base letter (src/util/names.c's table).
SPELLED = {"ß": "ss", "æ": "ae", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ħ": "h", "ı": "i",
           "ĳ": "ij", "ĸ": "k", "ŀ": "l", "ł": "l", "ŉ": "n", "ŋ": "n", "œ": "oe", "ſ": "s",
           "ŧ": "t"}


def clean_name(model):
    """Latin letters of U+00C0..U+017F spelt in ASCII, lower-case, every character outside
    [a-z0-9._-] -> '-' (one per character), leading '-' and '.' left out."""
    out = []
    for c in model.lower():
        if "\u00c0" <= c <= "\u017f" and c not in "\u00d7\u00f7":
            c = SPELLED.get(c) or unicodedata.normalize("NFD", c)[0]
        out.append("".join(x if x in ALLOWED_CHARS else "-" for x in c))
    return "".join(out).lstrip("-.")


def expected_dir_names(entries):
    """{directory name: [entries]} by the documented rules: names equal but for case are
    one model; on a clash the name that needed no change keeps the directory, the other
    gets "-2"."""
    by_lower = {}
    for e in entries:
        by_lower.setdefault(e["model"].lower(), []).append(e)
    dirs = {}
    # sorted() is stable: among equals, manifest order decides.
    for lower in sorted(by_lower, key=lambda low: clean_name(low) != low):
        base = name = clean_name(lower)
        n = 2
        while name in dirs:
            name = "%s-%d" % (base, n)
            n += 1
        dirs[name] = by_lower[lower]
    return dirs


class Hub:
    """The fixture's expectations plus the running fake hub (zoo)."""

    def __init__(self, fixture_dir, entries, zoo):
        self.fixture_dir = fixture_dir
        self.entries = entries
        self.zoo = zoo
        self.hostile = [e for e in entries if e["kind"] == "hostile"]
        self.dirs = expected_dir_names([e for e in entries if e["kind"] != "hostile"])
        for name, group in self.dirs.items():
            for e in group:
                e["dir"] = name
        for model, name in DOCUMENTED_DIRS.items():
            check_eq(self.entry(model)["dir"], name, "directory derived for %r" % model)

    def entry(self, model, opset=None):
        found = [e for e in self.entries
                 if e["model"] == model and (opset is None or e["opset"] == opset)]
        check_eq(len(found), 1, "fixture entries for %r opset %r" % (model, opset))
        return found[0]

    def kind(self, kind):
        return [e for e in self.entries if e["kind"] == kind]

    def good(self):
        return self.kind("good")

    def top(self, dirname):
        """The entry behind onnx/<dirname>/model.onnx: the highest opset."""
        return max(self.dirs[dirname], key=lambda e: e["opset"])

    @staticmethod
    def opset_dir(e):
        return "onnx/%s/opset-%d" % (e["dir"], e["opset"])

    def rel(self, e):
        """Path of an entry's model file, relative to the mount point and to the cache."""
        return self.opset_dir(e) + "/model.onnx"

    def served_bytes(self, e):
        with open(os.path.join(self.fixture_dir, "www", "cdn", e["model_path"]), "rb") as f:
            return f.read()

    def requests(self, e, host, method="GET"):
        """Requests to host for e's model file (hub and CDN paths both end with model_path)."""
        return count_requests(self.zoo, host, e["model_path"], method)

    def total_requests(self):
        """{host: number of requests of any method} across all fake-hub hosts."""
        return {host: count_requests(self.zoo, host, method=None) for host in HOSTS}


@contextlib.contextmanager
def fake_hub(run_dir):
    """Build the fixture zoo once and serve it for the whole run."""
    if importlib.util.find_spec("onnx") is None:  # make_zoo.py and the checker test need it
        raise RuntimeError("%s has no onnx module: run this file with Debian's /usr/bin/python3"
                           % sys.executable)
    fixture_dir = os.path.join(run_dir, "fixture")
    entries = make_zoo(fixture_dir, "--faults", "--large-mib", str(LARGE_MIB))
    with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as zoo:
        yield Hub(fixture_dir, entries, zoo)


def hub_options(t, index_url=None, model_url=None, cacert=True):
    """-o options for t's cache and the fake hub (or the given URLs)."""
    zoo = t.shared.zoo
    opts = ["cache=" + t.cache]
    if cacert:
        opts.append("cacert=" + zoo.cacert)
    return opts + ["onnx_index_url=" + (index_url or zoo.index_url),
                   "onnx_url=" + (model_url or zoo.model_base_url)]


def mount(t, *options, env=None, index_url=None, model_url=None):
    """A Mount of t's cache on t's mount point, talking to the fake hub."""
    return t.mount(hub_options(t, index_url, model_url) + list(options), env=env)


def start_failing(t, mountpoint, **hub_kwargs):
    """Run a daemon that must fail to start; returns the CompletedProcess."""
    args = ["-f", "-o", ",".join(hub_options(t, **hub_kwargs)), mountpoint]
    res = run_cli(t.binary, args, t.env, mountpoint=mountpoint)
    t.note("stderr:\n" + res.stderr)
    check(res.returncode != 0, "exit status 0")
    return res


def onnx_left_out(t, index_url=None, model_url=None, cacert=True):
    """Mount with an ONNX index that cannot be loaded: the other hubs mount, onnx/ is listed
    but answers EAGAIN while it is retried in the background, and one log line says why.
    Returns that line."""
    options = hub_options(t, index_url, model_url)
    if not cacert:
        options = [o for o in options if not o.startswith("cacert=")]
    with t.mount(options) as m:
        top = os.listdir(m.mountpoint)
        check("onnx" in top and "huggingface" in top, "hubs at the top: %r" % top)
        check_eq(errno_of(os.listdir, m.path("onnx")), errno.EAGAIN, "listing onnx/")
        lines = m.log_lines("onnx hub not available")
    check_eq(len(lines), 1, "log lines saying the onnx hub is not available")
    return lines[0]


def cached_files(t):
    return {rel: sha256_file(os.path.join(t.cache, rel)) for rel in all_files(t.cache)}


BLOB_DIRS = ("blobs", "blobs/sha256")


def cache_paths(t):
    """Paths in the cache but the blob store's own (possibly empty) directories."""
    return sorted(p for p in all_paths(t.cache) if p not in BLOB_DIRS)


def tree_paths(t):
    """Paths of the readable tree: the cache without its blob store."""
    return sorted(p for p in all_paths(t.cache) if p not in BLOB_DIRS and not p.startswith("blobs/"))


def blob_files(t):
    """{name: sha256 of its content} of the blob store's files."""
    root = os.path.join(t.cache, "blobs", "sha256")
    if not os.path.isdir(root):
        return {}
    return {name: sha256_file(os.path.join(root, name)) for name in os.listdir(root)
            if not name.endswith(".ok")}  # verification records


def with_parents(paths):
    """paths plus every directory above them (relative paths)."""
    out = set()
    for p in paths:
        while p:
            out.add(p)
            p = os.path.dirname(p)
    return out


def check_sha(path, e):
    check_eq(sha256_file(path), e["sha256"], "sha256 of %s" % path)


def check_no_requests(hub, hosts=HOSTS):
    counts = hub.total_requests()
    check_eq({h: counts[h] for h in hosts}, {h: 0 for h in hosts}, "requests to the fake hub")


# ----------------------------------------------------------------------------- tests

@test
def listing_and_sizes_before_download(t):
    hub = t.shared
    with mount(t) as m:
        listing = os.listdir(m.path("onnx"))
        check_eq(sorted(listing), sorted(hub.dirs), "directories in onnx/")
        for e in hub.hostile:
            check(clean_name(e["model"]) not in listing, "hostile %r is listed" % e["model"])
        for dirname, group in hub.dirs.items():
            model_dir = m.path("onnx", dirname)
            check_eq(sorted(os.listdir(model_dir)),
                     sorted(["model.onnx"] + ["opset-%d" % e["opset"] for e in group]),
                     "entries of %s" % model_dir)
            st = os.stat(os.path.join(model_dir, "model.onnx"))
            check(stat.S_ISREG(st.st_mode), "%s/model.onnx is not a regular file" % model_dir)
            check_eq(st.st_size, hub.top(dirname)["bytes"], "size of %s/model.onnx" % model_dir)
            for e in group:
                opset_dir = m.path(hub.opset_dir(e))
                want = ["model.onnx"] + (["model_with_data"] if "members" in e else [])
                check_eq(sorted(os.listdir(opset_dir)), sorted(want), "entries of " + opset_dir)
                st = os.stat(m.path(hub.rel(e)))
                check(stat.S_ISREG(st.st_mode), "%s is not a regular file" % hub.rel(e))
                check_eq(st.st_size, e["bytes"], "size of " + hub.rel(e))
                if "members" in e:
                    st = os.stat(os.path.join(opset_dir, "model_with_data"))
                    check(stat.S_ISDIR(st.st_mode),
                          opset_dir + "/model_with_data is not a directory")
    counts = hub.total_requests()
    check_eq((counts["hub"], counts["cdn"], counts["fault"]), (0, 0, 0),
             "hub, CDN and fault requests while listing")
    check_eq(counts["raw"], 1, "requests to the index host")
    check_eq(count_requests(hub.zoo, "raw", INDEX_PATH), 1, "GETs of the manifest")


@test
def good_models_read_back_and_cached(t):
    hub = t.shared
    with mount(t) as m:
        for e in hub.good():
            check_sha(m.path(hub.rel(e)), e)
        for dirname in hub.dirs:
            top = hub.top(dirname)
            if top["kind"] == "good":
                check_sha(m.path("onnx", dirname, "model.onnx"), top)
    for e in hub.good():
        path = os.path.join(t.cache, hub.rel(e))
        check(os.path.isfile(path), "not in the cache: " + path)
        check_sha(path, e)


CHECKER = r"""
import sys, onnx
failed = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(path))
        print("checked", path)
    except Exception as e:
        failed += 1
        print("FAILED", path, type(e).__name__, e)
sys.exit(1 if failed else 0)
"""


@test
def onnx_checker_accepts_mounted_models(t):
    hub = t.shared
    with mount(t) as m:
        paths = [m.path(hub.rel(e)) for e in hub.good()]
        paths += [m.path("onnx", d, "model.onnx") for d in hub.dirs if hub.top(d)["kind"] == "good"]
        res = subprocess.run([sys.executable, "-c", CHECKER] + paths, capture_output=True,
                             text=True, timeout=300)
        t.note("checker output:\n" + res.stdout + res.stderr)
        check_eq(res.returncode, 0, "checker exit status")
        for p in paths:
            check("checked " + p in res.stdout.splitlines(), "not checked: " + p)


@test
def mmap_of_large_model(t):
    hub = t.shared
    big = hub.entry("BigGemm")
    with mount(t) as m:
        with open(m.path(hub.rel(big)), "rb") as f:
            with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
                check_eq(len(mm), big["bytes"], "mmap length")
                check_eq(sha256_bytes(mm), big["sha256"], "sha256 over the mmap")


@test
def model_with_data_extracted(t):
    hub = t.shared
    archives = [e for e in hub.good() if "members" in e]
    check(archives, "the fixture has no model_with_data archives")
    with mount(t) as m:
        for e in archives:  # what `ls -l opset-N/` does
            opset_dir = m.path(hub.opset_dir(e))
            for name in os.listdir(opset_dir):
                os.lstat(os.path.join(opset_dir, name))
        check_eq(count_requests(hub.zoo, "hub", ".tar.gz", None)
                 + count_requests(hub.zoo, "cdn", ".tar.gz", None), 0,
                 "archive requests after listing opset directories")
        for e in archives:
            root = m.path(hub.opset_dir(e), "model_with_data")
            got = {rel: sha256_file(os.path.join(root, rel)) for rel in all_files(root)}
            check_eq(got, e["members"], "files under " + root)
    for e in archives:
        root = os.path.join(t.cache, hub.opset_dir(e), "model_with_data")
        got = {rel: sha256_file(os.path.join(root, rel)) for rel in all_files(root)}
        check_eq(got, e["members"], "cached files under " + root)
    # The archive itself is one blob named by its digest, and nowhere in the readable tree.
    archive_shas = {e["model_with_data_sha"] for e in archives}
    for rel, sha in cached_files(t).items():
        if rel.startswith("blobs/"):
            if not rel.endswith(".ok"):  # a verification record
                check_eq(os.path.basename(rel), sha, "name of the blob " + rel)
            continue
        check(not rel.endswith((".tar.gz", ".tgz")), "archive kept in the cache: " + rel)
        check(sha not in archive_shas, "archive bytes kept in the readable tree as " + rel)
    for sha in archive_shas:
        check(os.path.isfile(os.path.join(t.cache, "blobs", "sha256", sha)),
              "archive blob %s missing" % sha)
    check_eq(partials(t.cache), [], "temporaries left in the cache")


@test
def concurrent_cold_reads_download_once(t):
    hub = t.shared
    big = hub.entry("BigGemm")
    readers = 8
    barrier = threading.Barrier(readers)
    results = [None] * readers
    with mount(t) as m:
        path = m.path(hub.rel(big))

        def read(i):
            try:
                barrier.wait(30)
                results[i] = sha256_file(path)
            except Exception as e:  # reported below
                results[i] = repr(e)

        threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(readers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(180)
        check(not any(th.is_alive() for th in threads), "readers still running after 180 s")
    check_eq(results, [big["sha256"]] * readers, "sha256 seen by each reader")
    # One download, in pieces: every byte came once from the CDN.
    records = [r for r in hub.zoo.requests("cdn", big["model_path"]) if r["method"] == "GET"]
    check_eq(sum(r["bytes"] for r in records), big["bytes"],
             "bytes the CDN sent for " + big["model_path"])
    ranges = [r["range"] for r in records]
    check_eq(len(ranges), len(set(ranges)), "ranges asked twice: %r" % ranges)
    # The CDN offers HTTP/2, and the pieces came over it.
    check_eq(sorted({r["protocol"] for r in records}), ["HTTP/2.0"], "protocols of the pieces")


@test
def xattrs_describe_files(t):
    """Every model file has the user.omnihub.* attributes, from the manifest alone: reading
    them downloads nothing; cached turns yes once the file was read."""
    hub = t.shared
    e = hub.good()[0]
    path_of = lambda m: m.path(hub.rel(e))
    names = ["user.omnihub." + n for n in ("url", "digest", "hub", "meta", "cached")]
    with mount(t) as m:
        before = hub.requests(e, "cdn") + hub.requests(e, "hub")
        check_eq(sorted(os.listxattr(path_of(m))), sorted(names), "listxattr")
        get = lambda name: os.getxattr(path_of(m), name).decode()
        check(get("user.omnihub.url").endswith("/" + e["model_path"]),
              "url %r does not end with the manifest's model_path" % get("user.omnihub.url"))
        check_eq(get("user.omnihub.digest"), "sha256:" + e["sha256"], "digest")
        check_eq(get("user.omnihub.hub"), "onnx", "hub")
        meta = json.loads(get("user.omnihub.meta"))
        check_eq((meta["model"], meta["opset"], meta["model_path"]),
                 (e["model"], e["opset"], e["model_path"]), "meta")
        check_eq(get("user.omnihub.cached"), "no", "cached before a read")
        check_eq(hub.requests(e, "cdn") + hub.requests(e, "hub"), before,
                 "requests for the file while reading its attributes")
        check_eq(errno_name(errno_of(os.getxattr, path_of(m), "user.omnihub.nope")), "ENODATA",
                 "an attribute we do not have")
        check_eq(sha256_file(path_of(m)), e["sha256"], "the bytes")
        check_eq(get("user.omnihub.cached"), "yes", "cached after a read")
        # A folder: its hub, and no meta where the hub knows nothing of it.
        check_eq(os.listxattr(m.path("onnx")), ["user.omnihub.hub", "user.omnihub.meta"],
                 "a hub directory's names")
        check_eq(os.getxattr(m.path("onnx"), "user.omnihub.hub"), b"onnx", "its hub")
        check_eq(errno_name(errno_of(os.getxattr, m.path("onnx"), "user.omnihub.meta")),
                 "ENODATA", "its meta")
        check_eq(os.listxattr(m.mountpoint), [], "the mount's root has none")


@test
def corrupt_and_lfs_pointer_give_eio(t):
    hub = t.shared
    corrupt = hub.entry("Corrupt")
    lfs = hub.entry("LfsPointer")
    with mount(t) as m:
        for e in (corrupt, lfs):
            for attempt in (1, 2):  # a failed download must not leave anything to serve
                got = read_errno(m.path(hub.rel(e)))
                check_eq(errno_name(got), "EIO", "reading %s (attempt %d)" % (hub.rel(e), attempt))
        check(m.log_lines(hub.rel(corrupt), "sha256 mismatch", corrupt["sha256"],
                          corrupt["served_sha256"]),
              "no log line naming %s with 'sha256 mismatch' and both digests" % hub.rel(corrupt))
        check(m.log_lines(hub.rel(lfs), "Git LFS pointer"),
              "no log line naming %s with 'Git LFS pointer'" % hub.rel(lfs))
    for e in (corrupt, lfs):
        check(not os.path.lexists(os.path.join(t.cache, hub.rel(e))), "cached: " + hub.rel(e))
    check_eq(cache_paths(t), INDEX_ONLY, "files and folders in the cache")


@test
def missing_gated_dropped_errors(t):
    hub = t.shared
    want = {"missing": "ENOENT", "gated": "EACCES", "dropped": "EIO"}
    with mount(t) as m:
        got = {}
        for kind in want:
            (e,) = hub.kind(kind)
            got[kind] = errno_name(read_errno(m.path(hub.rel(e))))
        check_eq(got, want, "errors reading the missing, gated and dropped models")
    # The EIO must come from the broken transfer (a retry would be fine, hence no upper bound).
    dropped = hub.kind("dropped")[0]
    dropped_gets = count_requests(hub.zoo, "fault", dropped["model_path"])
    check(dropped_gets >= 1, "the dropped model was never requested from the fault server")
    # What the broken transfer received is kept to resume from, in the blob store only.
    kept = {"blobs/sha256/%s.%s" % (dropped["sha256"], ext) for ext in ("partial", "state")}
    check_eq(sorted(set(cache_paths(t)) - kept), INDEX_ONLY, "files and folders in the cache")


@test
def https_to_http_redirect_refused(t):
    hub = t.shared
    (e,) = hub.kind("downgrade")
    with mount(t) as m:
        check_eq(errno_name(read_errno(m.path(hub.rel(e)))), "EIO", "reading " + hub.rel(e))
        check(m.log_lines(hub.rel(e), "refused a redirect from HTTPS to a plain HTTP URL"),
              "no log line naming %s with the refused redirect" % hub.rel(e))
    check_eq(count_requests(hub.zoo, "hub", e["model_path"]), 1, "requests to the hub host")
    check_eq(count_requests(hub.zoo, "cdn", e["model_path"], None), 0,
             "requests that reached the CDN")
    check_eq(cache_paths(t), INDEX_ONLY, "files and folders in the cache")


@test
def hostile_entries_skipped(t):
    hub = t.shared
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    passwd_mtime = os.stat("/etc/passwd").st_mtime_ns

    def outside_cache():
        """Everything in the test dir but the cache, the mount point and daemon logs."""
        return {p for p in all_paths(t.dir)
                if not p.startswith(("cache" + os.sep, "mnt" + os.sep, "daemon-"))}

    before = outside_cache()
    small = [e for e in hub.good() if e["bytes"] < 1 << 20]
    with mount(t) as m:
        skipped = [line.split(" skipped: ", 1)[0]
                   for line in m.log_lines("onnx: manifest entry", " skipped: ")]
        t.note("skip lines:\n" + "\n".join(skipped))
        check_eq(len(skipped), len(hub.hostile), "number of 'skipped' log lines")
        for e in hub.hostile:
            # A long name may be shortened in the log; its first 32 characters must be there.
            shown = e["model"] if len(e["model"]) <= 32 else e["model"][:32]
            check(any("(" + shown in line for line in skipped),
                  "no 'skipped' line for %r" % e["model"][:40])
        # Walk the whole tree (model_with_data/ included, which extracts the archives) and read
        # the small models: every path the daemon writes to is exercised.
        tree = all_paths(m.path())
        for e in hub.hostile:
            check("onnx/" + clean_name(e["model"]) not in tree,
                  "hostile %r in the tree" % e["model"][:40])
        check(not [p for p in tree if "hostile" in p or "passwd" in p], "hostile paths in the tree")
        for e in small:
            check_sha(m.path(hub.rel(e)), e)
    # The index's warnings (the hostile entries) are told once per version: its record.
    expected = {INDEX_CACHE_REL, INDEX_CACHE_REL + ".warned"} | {hub.rel(e) for e in small}
    for e in hub.good():
        for member in e.get("members", {}):
            expected.add(hub.opset_dir(e) + "/model_with_data/" + member)
    check_eq(tree_paths(t), sorted(with_parents(expected)), "paths in the cache")
    # Every blob is named by its content.
    for name, sha in blob_files(t).items():
        check_eq(name, sha, "blob name")
    check_eq(sorted(outside_cache() - before), [], "paths created outside the cache")
    with open("/etc/passwd", "rb") as f:
        check(f.read() == passwd, "/etc/passwd changed")
    check_eq(os.stat("/etc/passwd").st_mtime_ns, passwd_mtime, "mtime of /etc/passwd")


@test
def cache_serves_with_servers_unreachable(t):
    hub = t.shared
    read = [hub.entry("Conv2d", 9), hub.entry("Mobile Net"), hub.entry("Über_Model v2.0")]
    with mount(t) as m:
        for e in read:
            check_sha(m.path(hub.rel(e)), e)
    hub.zoo.clear_logs()
    # Default TTL (the cached index is fresh), then index_ttl=0 (fetching it fails).
    for extra in ([], ["index_ttl=0"]):
        with mount(t, *extra, index_url=DEAD_INDEX_URL, model_url=DEAD_MODEL_URL) as m:
            check_eq(sorted(os.listdir(m.path("onnx"))), sorted(hub.dirs), "directories in onnx/")
            for e in read:
                check_sha(m.path(hub.rel(e)), e)
    check_no_requests(hub)


def check_offline(t, options, env):
    hub = t.shared
    cached = [hub.entry("Conv2d", 9), hub.entry("resnet18")]
    uncached = hub.entry("AvgPool2d")
    with mount(t) as m:
        for e in cached:
            check_sha(m.path(hub.rel(e)), e)
    hub.zoo.clear_logs()
    # index_ttl=0 would make an online daemon fetch the index: offline must not.
    with mount(t, "index_ttl=0", *options, env=env) as m:
        check_eq(sorted(os.listdir(m.path("onnx"))), sorted(hub.dirs), "directories in onnx/")
        for e in cached:
            check_sha(m.path(hub.rel(e)), e)
        check_eq(errno_name(read_errno(m.path(hub.rel(uncached)))), "EIO", "reading uncached model")
        check(m.log_lines("offline", uncached["dir"]),
              "no log line with 'offline' about " + hub.rel(uncached))
    check_no_requests(hub)
    check(not os.path.lexists(os.path.join(t.cache, hub.rel(uncached))),
          "the model read while offline got cached")


@test
def offline_option_serves_cache_only(t):
    check_offline(t, ["offline"], None)


@test
def offline_env_serves_cache_only(t):
    check_offline(t, [], {"OMNIHUB_OFFLINE": "1"})


def check_client_cache_reuse(t, client_path):
    """Pre-fill another client's cache (client_path(e) -> file) with one good and one wrong
    file; the good one must be used as is, the wrong one ignored and left alone."""
    hub = t.shared
    reused = hub.entry("ResNet18")
    wrong = hub.entry("AvgPool2d")
    good_bytes = hub.served_bytes(reused)
    bad_bytes = bytes(b ^ 0xFF for b in hub.served_bytes(wrong))  # same size, other digest
    for e, data in ((reused, good_bytes), (wrong, bad_bytes)):
        path = client_path(e)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    with mount(t) as m:
        check_sha(m.path(hub.rel(reused)), reused)
        check_sha(m.path(hub.rel(wrong)), wrong)
        check(m.log_lines("ignoring", wrong["dir"]),
              "no log line with 'ignoring' about the wrong copy of " + hub.rel(wrong))
        imported = m.log_lines(reused["dir"], " from " + client_path(reused), "verified")
    # On one filesystem (the test's temporary directory) the copy is not copied: a reflink
    # where the filesystem has them, else the same inode.
    blob = os.path.join(t.cache, "blobs", "sha256", reused["sha256"])
    if any("reflinked" in line for line in imported):
        check(os.stat(blob).st_ino != os.stat(client_path(reused)).st_ino, "a reflink is a new inode")
    else:
        check(any("hard-linked" in line for line in imported),
              "no log line saying how %s was imported: %r" % (client_path(reused), imported))
        check_eq(os.stat(blob).st_ino, os.stat(client_path(reused)).st_ino,
                 "inode of the blob and of the client's copy")
    wrong_blob = os.path.join(t.cache, "blobs", "sha256", wrong["sha256"])
    check(os.stat(wrong_blob).st_ino != os.stat(client_path(wrong)).st_ino,
          "the wrong copy became the blob")
    check_eq(os.stat(client_path(wrong)).st_nlink, 1, "links to the wrong copy")
    check_eq(sorted(n for n in os.listdir(os.path.dirname(blob)) if n.startswith(".")), [],
             "temporaries left beside the blobs")
    check_eq(hub.requests(reused, "hub", None) + hub.requests(reused, "cdn", None), 0,
             "hub and CDN requests for the pre-filled model")
    check_eq(hub.requests(wrong, "cdn"), 1, "CDN GETs of the model whose copy was wrong")
    for e, data in ((reused, good_bytes), (wrong, bad_bytes)):
        path = client_path(e)
        with open(path, "rb") as f:
            check(f.read() == data, "the client's file %s was modified" % path)
        check_eq(os.stat(path).st_mtime_ns, OLD_MTIME_NS, "mtime of " + path)


@test
def onnx_client_cache_reused(t):
    def client_path(e):
        head, base = os.path.split(e["model_path"])
        return os.path.join(t.env["ONNX_HOME"], "hub", head, "%s_%s" % (e["sha256"], base))
    check_client_cache_reuse(t, client_path)


@test
def hf_hub_cache_reused(t):
    def client_path(e):
        return os.path.join(t.env["HF_HUB_CACHE"], HF_REPO_DIR, "blobs", e["sha256"])
    check_client_cache_reuse(t, client_path)


@test
def read_only(t):
    hub = t.shared
    e = hub.entry("Conv2d", 9)

    def open_close(path, flags, mode=0o644):
        os.close(os.open(path, flags, mode))  # only reached if the open wrongly succeeded

    with mount(t) as m:
        f = m.path(hub.rel(e))
        d = m.path(hub.opset_dir(e))
        attempts = {
            "open O_WRONLY": lambda: open_close(f, os.O_WRONLY),
            "open O_RDWR": lambda: open_close(f, os.O_RDWR),
            "create": lambda: open_close(os.path.join(d, "new.onnx"),
                                         os.O_WRONLY | os.O_CREAT | os.O_EXCL),
            "mkdir": lambda: os.mkdir(os.path.join(d, "newdir")),
            "unlink": lambda: os.unlink(f),
            "rename": lambda: os.rename(f, os.path.join(d, "renamed.onnx")),
            "chmod": lambda: os.chmod(f, 0o644),
            "truncate": lambda: os.truncate(f, 0),
        }
        got = {what: errno_name(errno_of(call)) for what, call in attempts.items()}
        check_eq(got, {what: "EROFS" for what in attempts}, "errors of write operations")
        check_sha(f, e)


@test
def deleted_cache_file_linked_or_downloaded_again(t):
    hub = t.shared
    e = hub.entry("Conv2d", 11)
    cached = os.path.join(t.cache, hub.rel(e))
    blob = os.path.join(t.cache, "blobs", "sha256", e["sha256"])
    with mount(t) as m:
        check_sha(m.path(hub.rel(e)), e)
    check(os.path.isfile(cached), "not cached: " + cached)
    check_eq(os.stat(cached).st_ino, os.stat(blob).st_ino, "the tree's name is a link to the blob")
    # The readable name deleted by hand: linked again from the blob, nothing downloaded.
    os.unlink(cached)
    hub.zoo.clear_logs()
    with mount(t) as m:
        check_sha(m.path(hub.rel(e)), e)
    check_eq(hub.requests(e, "cdn"), 0, "CDN GETs after the readable name was deleted")
    check_eq(os.stat(cached).st_ino, os.stat(blob).st_ino, "the name linked again")
    # The blob deleted too: downloaded again.
    os.unlink(cached)
    os.unlink(blob)
    hub.zoo.clear_logs()
    with mount(t) as m:
        check_sha(m.path(hub.rel(e)), e)
    check_eq(hub.requests(e, "cdn"), 1, "CDN GETs after the name and the blob were deleted")
    check_sha(cached, e)


@test
def index_cached_within_ttl(t):
    hub = t.shared
    # With index_ttl=0 the daemon may also refresh the index while mounted: at least one GET.
    runs = [("first mount", [], 1, 1), ("second mount within the TTL", [], 0, 0),
            ("mount with index_ttl=0", ["index_ttl=0"], 1, None)]
    for what, options, at_least, at_most in runs:
        hub.zoo.clear_logs()
        with mount(t, *options) as m:
            check_eq(sorted(os.listdir(m.path("onnx"))), sorted(hub.dirs), "directories in onnx/")
        got = count_requests(hub.zoo, "raw", INDEX_PATH)
        check(at_least <= got and (at_most is None or got <= at_most),
              "manifest GETs by the %s: %d, expected %d to %s"
              % (what, got, at_least, "any" if at_most is None else at_most))

    # Even with index_ttl=0 the manifest is fetched at most once a second: a burst of lookups
    # of missing names (each one asks the hub, which may refresh) must not fetch it per name.
    burst = 200
    with mount(t, "index_ttl=0") as m:
        os.listdir(m.path("onnx"))
        settle_logs(hub.zoo)
        hub.zoo.clear_logs()
        started = time.monotonic()
        for i in range(burst):
            check(not os.path.exists(m.path("onnx", "no-such-model-%d" % i)),
                  "onnx/no-such-model-%d exists" % i)
            time.sleep(0.0075)  # spread over about 1.5 s: some refresh must be due
        seconds = time.monotonic() - started
    got = count_requests(hub.zoo, "raw", INDEX_PATH)
    limit = int(seconds) + 2  # one per second begun, and one the clock's tick may add
    check(1 <= got <= limit, "manifest GETs during %d lookups in %.2f s with index_ttl=0: %d, "
          "expected 1 to %d" % (burst, seconds, got, limit))


@test
def malformed_index_refused(t):
    hub = t.shared
    # A second manifest on the raw host, beside the good one: truncated JSON.
    bad_rel = INDEX_PATH.replace("/main/", "/malformed/")
    bad_file = os.path.join(hub.fixture_dir, "www", "raw", bad_rel.lstrip("/"))
    os.makedirs(os.path.dirname(bad_file), exist_ok=True)
    with open(hub.fixture_dir + "/www/raw" + INDEX_PATH, "rb") as f:
        good = f.read()
    with open(bad_file, "wb") as f:
        f.write(good[: len(good) // 2])
    bad_url = hub.zoo.index_url.replace(INDEX_PATH, bad_rel)

    # Nothing cached: the hub is left out, saying why; the other hubs mount.
    line = onnx_left_out(t, index_url=bad_url)
    check("not valid JSON" in line, "the log does not say the manifest is not valid JSON")
    check(not os.path.exists(os.path.join(t.cache, INDEX_CACHE_REL)),
          "the malformed manifest was cached")
    # A good manifest cached: kept, with a warning, when the fresh one is malformed.
    with mount(t):
        pass
    with mount(t, "index_ttl=0", index_url=bad_url) as m:
        check_eq(sorted(os.listdir(m.path("onnx"))), sorted(hub.dirs), "directories in onnx/")
        check(m.log_lines("not valid JSON", "using the index cached on"),
              "no warning that the cached index is used instead")
    with open(os.path.join(t.cache, INDEX_CACHE_REL), "rb") as f:
        check(f.read() == good, "the cached manifest was replaced")


@test
def cli_help_and_version(t):
    res = run_cli(t.binary, ["--help"], t.env)
    check_eq(res.returncode, 0, "--help exit status")
    text = res.stdout + res.stderr
    options = ("cache=", "offline", "cacert=", "index_ttl=", "onnx_index_url=", "onnx_url=",
               "stream", "connections=", "piece_size=", "retries=", "stall_timeout=", "cache_max=")
    with open(os.path.join(SRCDIR, "man", "omnihub-fuse.1"), encoding="utf-8") as f:
        manual = f.read().replace("\\-", "-")
    for option in options:
        check(option in text, "--help does not mention %s:\n%s" % (option, text))
        check(option.rstrip("=") in manual, "the man page does not mention %s" % option)
    for place in ("~/.config/omnihub/config", "/etc/omnihub/config", "omnihub.conf"):
        check(place in text and place in manual, "--help and the man page name %s" % place)
    res = run_cli(t.binary, ["--version"], t.env)
    check_eq(res.returncode, 0, "--version exit status")
    text = res.stdout + res.stderr
    check("omnihub-fuse" in text, "--version output: %r" % text)


@test
def cli_bad_option_values(t):
    for option, word in (("piece_size=3X", "piece_size"), ("piece_size=1K", "piece_size"),
                         ("connections=65", "connections"), ("cache_max=lots", "cache_max")):
        res = run_cli(t.binary, ["-f", "-o", option, t.mountpoint], t.env, mountpoint=t.mountpoint)
        check(res.returncode != 0, "%s accepted" % option)
        check(word in res.stderr, "no sentence naming %s for %s: %r" % (word, option, res.stderr))


@test
def cli_missing_mountpoint(t):
    missing = os.path.join(t.dir, "no-such-dir")
    res = start_failing(t, missing)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    check_eq(len(lines), 1, "number of lines on stderr")
    check(missing in lines[0], "stderr does not name %s" % missing)
    check(not os.path.exists(missing), "the mount point was created")


@test
def cli_missing_dev_fuse(t):
    # A private mount namespace whose /dev is an empty tmpfs: no /dev/fuse, nothing else
    # changed. unshare(1) runs the daemon there with the options start_failing() would give.
    args = ["-f", "-o", ",".join(hub_options(t)), t.mountpoint]
    res = run_cli("unshare", ["-m", "--propagation", "private", "sh", "-c",
                              'mount -t tmpfs none /dev && exec "$0" "$@"', t.binary] + args,
                  t.env, mountpoint=t.mountpoint)
    t.note("stderr:\n" + res.stderr)
    check(res.returncode != 0, "exit status 0")
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    check_eq(len(lines), 1, "number of lines on stderr")
    check("/dev/fuse" in lines[0], "stderr does not name /dev/fuse")


@test
def cli_unreachable_index(t):
    line = onnx_left_out(t, index_url=DEAD_INDEX_URL, model_url=DEAD_MODEL_URL)
    check(DEAD_INDEX_URL in line, "the log line does not mention " + DEAD_INDEX_URL)


@test
def cli_no_cacert(t):
    # daemon_env() has removed CURL_CA_BUNDLE and SSL_CERT_*: only the system CAs are left.
    line = onnx_left_out(t, cacert=False)
    check("cacert" in line, "the log line does not mention cacert")
    check("TLS" in line or "certificate" in line.lower(),
          "the log line mentions neither TLS nor certificate")


def check_signal_unmounts(t, signum):
    hub = t.shared
    e = hub.entry("Conv2d", 9)
    with mount(t) as m:
        check_sha(m.path(hub.rel(e)), e)  # the daemon has served something before the signal
        status = m.signal(signum)
        check(status is not None, "the daemon is still running after %s" % signum.name)
        check(not is_mounted(m.mountpoint), "still mounted after %s" % signum.name)
        check_eq(status, 0, "exit status after %s" % signum.name)


@test
def sigterm_unmounts(t):
    check_signal_unmounts(t, signal.SIGTERM)


@test
def sigint_unmounts(t):
    check_signal_unmounts(t, signal.SIGINT)


# ----------------------------------------------------------------------------- links planted in the cache

def plant_dir_link(t, rel):
    """Make cache/rel a symbolic link to an empty directory outside the cache; return that
    directory, which must stay empty whatever the daemon does."""
    target = os.path.join(t.dir, "elsewhere-" + rel.replace("/", "-"))
    os.makedirs(target)
    link = os.path.join(t.cache, rel)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)
    return target


def check_link_untouched(t, rel, target):
    check(os.path.islink(os.path.join(t.cache, rel)), "the planted link %s was replaced" % rel)
    check_eq(sorted(all_paths(target)), [], "entries written through the link %s into %s"
             % (rel, target))


@test
def planted_model_dir_link_not_followed(t):
    """A link where a model's folder of the readable tree should be: the file is served from
    its blob, the link is refused with a log line, and nothing lands in its target."""
    hub = t.shared
    e = min((e for e in hub.good() if "members" not in e), key=lambda e: e["bytes"])
    archive = next(e for e in hub.good() if "members" in e)
    plain_rel = "onnx/" + e["dir"]
    archive_rel = "onnx/" + archive["dir"]
    check(plain_rel != archive_rel, "the fixture's first plain and archive models share a folder")
    plain_target = plant_dir_link(t, plain_rel)
    archive_target = plant_dir_link(t, archive_rel)
    with mount(t) as m:
        check_sha(m.path(hub.rel(e)), e)
        # A staged tree must live in the readable tree: refused, with a clear errno.
        member = sorted(archive["members"])[0]
        got = read_errno(m.path(hub.opset_dir(archive), "model_with_data", member))
        check_eq(errno_name(got), "EIO", "reading a member of %s" % archive["model"])
        check_link_untouched(t, plain_rel, plain_target)
        check_link_untouched(t, archive_rel, archive_target)
        check(m.log_lines(t.cache + "/" + plain_rel, "is a symbolic link: not following it"),
              "no log line names the link " + plain_rel)
        check(m.log_lines(t.cache + "/" + archive_rel, "is a symbolic link: not following it"),
              "no log line names the link " + archive_rel)
    check(os.path.isfile(os.path.join(t.cache, "blobs", "sha256", e["sha256"])),
          "the model's blob is not in the cache")


@test
def planted_blob_dir_link_not_followed(t):
    """A link where the blob store should be: reads fail with EIO and a log line naming it;
    nothing is downloaded into its target."""
    hub = t.shared
    e = min((e for e in hub.good() if "members" not in e), key=lambda e: e["bytes"])
    target = plant_dir_link(t, "blobs/sha256")
    with mount(t) as m:
        try:
            with open(m.path(hub.rel(e)), "rb") as f:
                f.read()
            got = "no error"
        except OSError as err:
            got = errno_name(err.errno)
        check_link_untouched(t, "blobs/sha256", target)
        check_eq(got, "EIO", "reading " + hub.rel(e))
        check(m.log_lines(t.cache + "/blobs/sha256", "is a symbolic link: not following it"),
              "no log line names the link blobs/sha256")
    check(not os.path.exists(os.path.join(t.cache, hub.rel(e))),
          "the model is in the readable tree without its blob")


if __name__ == "__main__":
    run(fake_hub, before_each=lambda hub: hub.zoo.clear_logs())
