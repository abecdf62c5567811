#!/usr/bin/env python3
"""Integration tests of `omnihub cache ls` and `omnihub cache rm` against a cache a running mount
uses: the local Hugging Face imitation (repos, revisions, a blob two repos share) and the throttled
ONNX zoo (downloads in progress and interrupted, of the zoo and of a catalog hub). Not for du, gc
and verify (test_omnihub.py) nor the mount itself.
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB=BUILDDIR/omnihub OMNIHUB_FUSE=BUILDDIR/omnihub-fuse \
#         /usr/bin/python3 tests/integration/test_cache_cmd.py [PART]

import contextlib
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import make_zoo, run_omnihub  # noqa: E402
from mount_helpers import (SRCDIR, check, check_eq, run, sha256_bytes,  # noqa: E402
                           sha256_file, test, wait_for)

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))
import hf_server  # noqa: E402
import make_hf_repos as fx  # noqa: E402
from hf_server import HfServer  # noqa: E402
from zoo_server import ZooServer, make_tls  # noqa: E402

LARGE_MIB = 16
SLOW_RATE = 1 << 20  # bytes/s per CDN response: the large model takes seconds
COMMAND_TIMEOUT = 60.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 4


# The imitation's CDN sends the file whose sha256 is SLOW["sha"] slowly (a pause before each
# 64 KiB), so that a test can see its download in progress and kill the mount in the middle.
SLOW = {"sha": None}
_plain_body = hf_server._Handler._body


class _PausingWriter:
    def __init__(self, inner):
        self.inner = inner

    def write(self, data):
        time.sleep(0.1)
        return self.inner.write(data)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _slow_body(self, data, etag, headers=()):
    if SLOW["sha"] is None or self.rec.get("file") != SLOW["sha"]:
        return _plain_body(self, data, etag, headers)
    inner = self.wfile
    self.wfile = _PausingWriter(inner)
    try:
        return _plain_body(self, data, etag, headers)
    finally:
        self.wfile = inner


hf_server._Handler._body = _slow_body


class Shared:
    def __init__(self, run_dir, hf, zoo, zoo_entries, cacert):
        self.hf, self.zoo, self.zoo_entries, self.cacert = hf, zoo, zoo_entries, cacert
        self.desc = None
        self.fixture_dir = None


@contextlib.contextmanager
def shared_setup(run_dir):
    tls_dir = os.path.join(run_dir, "tls")
    make_tls(tls_dir)
    hf_dir = os.path.join(run_dir, "hf-fixture")
    desc = fx.make_repos(hf_dir)
    zoo_dir = os.path.join(run_dir, "zoo-fixture")
    entries = make_zoo(zoo_dir, "--large-mib", str(LARGE_MIB))
    hf = HfServer(hf_dir, tls_dir)
    with hf, ZooServer(zoo_dir, os.path.join(run_dir, "zoo"), rate=SLOW_RATE) as zoo:
        # One CA bundle for the two servers' certificates (cacert= takes one file).
        cacert = os.path.join(run_dir, "ca-bundle.pem")
        with open(cacert, "w") as out:
            for path in (hf.cacert, zoo.cacert):
                with open(path) as f:
                    out.write(f.read())
        shared = Shared(run_dir, hf, zoo, entries, cacert)
        shared.desc, shared.fixture_dir = desc, hf_dir
        yield shared


def before_each(shared):
    shared.hf.clear_log()
    SLOW["sha"] = None


def options(t):
    s = t.shared
    return ["cache=" + t.cache, "cacert=" + s.cacert, "onnx_index_url=" + s.zoo.index_url,
            "onnx_url=" + s.zoo.model_base_url]


def env_of(t):
    return dict(t.env, HF_ENDPOINT=t.shared.hf.endpoint)


def mount(t):
    return t.mount(options(t), env={"HF_ENDPOINT": t.shared.hf.endpoint})


def omnihub(t, *args, want=EXIT_OK):
    return run_omnihub(t, args, options(t), {"HF_ENDPOINT": t.shared.hf.endpoint}, want,
                       COMMAND_TIMEOUT)


def omnihub_json(t, *args, want=EXIT_OK):
    res = omnihub(t, "--json", *args, want=want)
    return json.loads(res.stdout)


def files_of(t, repo_id, rev="main"):
    return fx.files_at(fx.find_repo(t.shared.desc, repo_id), rev)


def commit_of(t, repo_id, rev="main"):
    return fx.find_repo(t.shared.desc, repo_id)["revisions"][rev]


def rev_id(t, repo_id, rev="main"):
    return "huggingface/%s@%s" % (repo_id, commit_of(t, repo_id, rev))


def rev_folder(t, repo_id, rev="main"):
    return os.path.join(t.cache, "huggingface", "models", repo_id + "@" + commit_of(t, repo_id, rev))


def blob_of(t, f):
    if "lfs" in f:
        return os.path.join(t.cache, "blobs", "sha256", f["lfs"]["oid"])
    return os.path.join(t.cache, "blobs", "git-sha1", f["oid"])


def read_repo(m, repo_id, paths, rev=None):
    name = repo_id + ("@" + rev.replace("/", "%2F") if rev else "")
    got = {}
    for p in paths:
        with open(m.path("huggingface", *name.split("/"), *p.split("/")), "rb") as f:
            got[p] = f.read()
    return got


def disk_bytes(files):
    """Bytes on disk of these fixture files: each content once."""
    return sum({(f["lfs"]["oid"] if "lfs" in f else f["oid"]): f["size"]
                for f in files}.values())


def partial_in(doc, sha):
    """The partial download of sha in a cache ls document (under a revision or unnamed)."""
    for p in doc["unnamed_partials"] + [p for e in doc["entries"] for p in e["partials"]]:
        if p["blob"] == "sha256/" + sha:
            return p
    return None


def wait_partial(t, sha):
    """cache ls --json once the download of sha has a piece (its sidecar says so)."""
    found = {}

    def has_bytes():
        found["doc"] = omnihub_json(t, "cache", "ls")
        p = partial_in(found["doc"], sha)
        return p is not None and p["bytes"] > 0
    wait_for(has_bytes, 30, "a piece of the download of %s" % sha, interval=0.2)
    return found["doc"]


def by_path(doc):
    return {e["path"]: e for e in doc["entries"]}


def drop_page_cache():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ----------------------------------------------------------------------------- tests

@test
def ls_lists_repos_revisions_and_downloads_in_progress(t):
    """cache ls, while a mount uses the cache: one entry per cached revision with its size,
    file count and last use; PATH narrows it; a download in progress is listed with its
    bytes so far."""
    start = time.time()
    onnx_main = files_of(t, fx.ONNX_REPO)
    onnx_v1 = files_of(t, fx.ONNX_REPO, "v1.0")
    sharded = files_of(t, fx.SHARDED_REPO)
    large = [e for e in t.shared.zoo_entries if e["model"] == "BigGemm"][0]
    with mount(t) as m:
        got = read_repo(m, fx.ONNX_REPO, onnx_main)
        check(all(sha256_bytes(got[p]) == f["sha256"] for p, f in onnx_main.items()),
              "tiny-onnx read right")
        read_repo(m, fx.ONNX_REPO, ["config.json", "big.txt"], rev="v1.0")
        read_repo(m, fx.SHARDED_REPO, ["config.json", fx.SHARED_PATH])
        doc = omnihub_json(t, "cache", "ls")
        entries = by_path(doc)
        check_eq(sorted(entries), sorted([rev_id(t, fx.ONNX_REPO), rev_id(t, fx.ONNX_REPO, "v1.0"),
                                          rev_id(t, fx.SHARDED_REPO)]), "cached revisions")
        e = entries[rev_id(t, fx.ONNX_REPO)]
        check_eq((e["hub"], e["name"], e["revision"], e["files"], e["bytes"]),
                 ("huggingface", fx.ONNX_REPO, commit_of(t, fx.ONNX_REPO), len(onnx_main),
                  disk_bytes(onnx_main.values())), "tiny-onnx@main")
        check_eq(e["folder"], os.path.realpath(rev_folder(t, fx.ONNX_REPO)), "its folder")
        check(e["last_used"] is not None and e["last_used"] >= start - 5,
              "last used: %r (test began %d)" % (e["last_used"], start))
        e = entries[rev_id(t, fx.ONNX_REPO, "v1.0")]
        check_eq((e["files"], e["bytes"]),
                 (2, disk_bytes([onnx_v1["config.json"], onnx_v1["big.txt"]])), "tiny-onnx@v1.0")
        check_eq(doc["bytes"], sum(x["bytes"] for x in doc["entries"]), "total bytes")
        # PATH narrows: an org, a repo, a revision by its commit's first 7 characters, the hub left
        # out; a name with nothing cached exits 4 naming it.
        check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", "huggingface/acme"))),
                 sorted(entries), "cache ls huggingface/acme")
        check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", "huggingface/" + fx.ONNX_REPO))),
                 sorted([rev_id(t, fx.ONNX_REPO), rev_id(t, fx.ONNX_REPO, "v1.0")]), "one repo")
        short = "%s@%s" % (fx.ONNX_REPO, commit_of(t, fx.ONNX_REPO, "v1.0")[:7])
        check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", short))),
                 [rev_id(t, fx.ONNX_REPO, "v1.0")], "cache ls " + short)
        # The refs the hub's index had at each commit; a ref names its revision too.
        check_eq([(p, entries[p]["refs"]) for p in sorted(entries)],
                 sorted([(rev_id(t, fx.ONNX_REPO), ["main"]),
                         (rev_id(t, fx.ONNX_REPO, "v1.0"), ["v1.0"]),
                         (rev_id(t, fx.SHARDED_REPO), ["main"])]), "refs")
        check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", fx.ONNX_REPO + "@v1.0"))),
                 [rev_id(t, fx.ONNX_REPO, "v1.0")], "cache ls by a ref")
        res = omnihub(t, "cache", "ls", "huggingface/acme/nope", want=EXIT_NOT_FOUND)
        check(res.stderr.startswith("omnihub: huggingface/acme/nope: nothing cached"),
              "stderr: %r" % res.stderr)
        res = omnihub(t, "cache", "ls")
        lines = res.stdout.splitlines()
        check(lines[0].split()[:3] == ["PATH", "SIZE", "FILES"], "header: %r" % lines[0])
        check(any(line.startswith(rev_id(t, fx.ONNX_REPO) + " ") and
                  " %d " % len(onnx_main) in line for line in lines), "text: %r" % res.stdout)
        check_eq(lines[-1].split(",")[0], "3 revisions", "summary: %r" % lines[-1])

        # A download in progress (the throttled zoo): listed under the model's opset it is for,
        # with its bytes so far, then, once complete, the opset with its file.
        reader = threading.Thread(target=lambda: open(m.path("onnx", "biggemm", "model.onnx"),
                                                  "rb").read())
        reader.start()
        try:
            doc = wait_partial(t, large["sha256"])
            check_eq(doc["unnamed_partials"], [], "no partial apart")
            parts = by_path(doc)["onnx/biggemm/opset-13"]["partials"]
            check_eq(len(parts), 1, "the partial listed under its opset: %r" % parts)
            p = parts[0]
            check_eq((p["blob"], p["in_progress"], p["size"], p["file"]),
                     ("sha256/" + large["sha256"], True, large["bytes"],
                      "onnx/biggemm/opset-13/model.onnx"), "in progress")
            check(0 < p["bytes"] < large["bytes"], "bytes so far: %r" % p["bytes"])
            check(p["url"].endswith(large["model_path"]), "its URL: %r" % p["url"])
            res = omnihub(t, "cache", "ls")
            check("in progress: blobs/sha256/%s for model.onnx" % large["sha256"] in res.stdout,
                  "text: %r" % res.stdout)
        finally:
            reader.join(COMMAND_TIMEOUT)
        doc = omnihub_json(t, "cache", "ls", "onnx")
        check_eq([(e["path"], e["bytes"], e["files"]) for e in doc["entries"]],
                 [("onnx/biggemm/opset-13", large["bytes"], 1)], "onnx entries")
        check_eq(doc["unnamed_partials"], [], "no partial once complete")


@test
def rm_keeps_a_blob_another_repo_names(t):
    """cache rm of one repo removes its names and its own blobs; shared.bin, which another
    repo names too, stays (and is said to); --dry-run removes nothing."""
    sharded, mirror = files_of(t, fx.SHARDED_REPO), files_of(t, fx.MIRROR_REPO)
    own = sharded["model-00002-of-00002.safetensors"]
    with mount(t) as m:
        read_repo(m, fx.SHARDED_REPO, [fx.SHARED_PATH, own["path"], "config.json"])
        read_repo(m, fx.MIRROR_REPO, [fx.SHARED_PATH, "README.md"])
    shared_blob = blob_of(t, sharded[fx.SHARED_PATH])
    before = sorted(os.listdir(os.path.join(t.cache, "blobs", "sha256")))
    doc = omnihub_json(t, "cache", "rm", "--dry-run", "huggingface/" + fx.SHARDED_REPO)
    check_eq((doc["dry_run"], [r["path"] for r in doc["removed"]]),
             (True, [rev_id(t, fx.SHARDED_REPO)]), "what would go")
    check_eq(doc["freed_bytes"], own["size"] + sharded["config.json"]["size"], "would free")
    check_eq(sorted(os.listdir(os.path.join(t.cache, "blobs", "sha256"))), before,
             "a dry run removes nothing")
    check(os.path.exists(os.path.join(rev_folder(t, fx.SHARDED_REPO), own["path"])),
          "a dry run keeps the names")
    res = omnihub(t, "cache", "rm", "huggingface/" + fx.SHARDED_REPO)
    check("kept the blob of %s/%s: another name in the cache uses it" % (os.path.realpath(t.cache),
                                          "huggingface/models/%s@%s/%s" % (
                                              fx.SHARDED_REPO, commit_of(t, fx.SHARDED_REPO),
                                              fx.SHARED_PATH)) in res.stdout,
          "the shared blob is said to stay: %r" % res.stdout)
    check(not os.path.exists(rev_folder(t, fx.SHARDED_REPO)), "the repo's folder went")
    check(not os.path.exists(blob_of(t, own)), "its own blob went")
    check(not os.path.exists(blob_of(t, sharded["config.json"])), "its config's blob went")
    check(os.path.exists(shared_blob), "the shared blob stays")
    kept_name = os.path.join(rev_folder(t, fx.MIRROR_REPO), fx.SHARED_PATH)
    check_eq(sha256_file(kept_name), sharded[fx.SHARED_PATH]["sha256"], "the mirror's file")
    check_eq(os.stat(kept_name).st_ino, os.stat(shared_blob).st_ino, "still the blob")
    check_eq(sorted(by_path(omnihub_json(t, "cache", "ls"))), [rev_id(t, fx.MIRROR_REPO)],
             "what is left")
    # Nothing left by that name: 4; and the mirror's file is still served from the cache.
    omnihub(t, "cache", "rm", "huggingface/" + fx.SHARDED_REPO, want=EXIT_NOT_FOUND)
    t.shared.hf.clear_log()
    with mount(t) as m:
        got = read_repo(m, fx.MIRROR_REPO, [fx.SHARED_PATH])
    check_eq(sha256_bytes(got[fx.SHARED_PATH]), mirror[fx.SHARED_PATH]["sha256"], "read again")
    t.shared.hf.wait_idle()
    check_eq(len(t.shared.hf.requests(kind="cdn")), 0, "the kept blob is not downloaded again")


@test
def rm_keeps_what_a_mount_has_open_then_fetches_again(t):
    """cache rm while a mount holds a file open keeps that file (and says so); once closed,
    rm removes it, and reading it through the mount downloads and verifies it again."""
    files = files_of(t, fx.ONNX_REPO)
    held = files["model.safetensors"]
    with mount(t) as m:
        read_repo(m, fx.ONNX_REPO, files)
        path = m.path("huggingface", *fx.ONNX_REPO.split("/"), held["path"])
        with open(path, "rb") as f:
            head = f.read(100)
            doc = omnihub_json(t, "cache", "rm", "huggingface/" + fx.ONNX_REPO)
            kept = doc["removed"][0]["kept"]
            check_eq([(os.path.basename(k["file"]), k["reason"]) for k in kept],
                     [(held["path"], "open in a mount")], "kept")
            check_eq(doc["kept_open"], 1, "kept_open")
            check(os.path.exists(blob_of(t, held)), "the open file's blob stays")
            check(os.path.exists(os.path.join(rev_folder(t, fx.ONNX_REPO), held["path"])),
                  "and its name")
            check(not os.path.exists(blob_of(t, files["big.txt"])), "another one went")
            res = omnihub(t, "cache", "rm", "huggingface/" + fx.ONNX_REPO)
            check("kept %s/huggingface/models/%s@%s/%s: open in a mount"
                  % (os.path.realpath(t.cache), fx.ONNX_REPO, commit_of(t, fx.ONNX_REPO),
                     held["path"]) in res.stdout, "text: %r" % res.stdout)
            rest = f.read()
        check_eq(sha256_bytes(head + rest), held["sha256"], "the open file read to its end")
        # Closed: it goes.
        doc = omnihub_json(t, "cache", "rm", "huggingface/" + fx.ONNX_REPO)
        check_eq(doc["removed"][0]["kept"], [], "nothing kept once closed")
        check(not os.path.exists(blob_of(t, held)), "its blob went")
        check(not os.path.exists(rev_folder(t, fx.ONNX_REPO)), "the folder went")
        # Read through the mount again: downloaded again, verified, in the cache again.
        drop_page_cache()
        t.shared.hf.clear_log()
        got = read_repo(m, fx.ONNX_REPO, [held["path"]])
        check_eq(sha256_bytes(got[held["path"]]), held["sha256"], "read again")
        t.shared.hf.wait_idle()
        fetched = [r for r in t.shared.hf.requests(kind="cdn")]
        check(len(fetched) >= 1, "downloaded again: %r" % fetched)
        check_eq(sha256_file(blob_of(t, held)), held["sha256"], "in the cache again")


@test
def datasets_and_legacy_repo_ids(t):
    """A dataset is listed under huggingface-datasets, a legacy repo id (no org) by its
    name; both can be named without their hub, and removed."""
    ds = fx.find_repo(t.shared.desc, fx.DATASET_REPO, "dataset")
    ds_commit = ds["revisions"]["main"]
    with mount(t) as m:
        with open(m.path("huggingface-datasets", *fx.DATASET_REPO.split("/"), "data",
                         "train.csv"), "rb") as f:
            check_eq(sha256_bytes(f.read()), fx.files_at(ds)["data/train.csv"]["sha256"], "csv")
        read_repo(m, fx.LEGACY_REPO, ["config.json"])
    ds_id = "huggingface-datasets/%s@%s" % (fx.DATASET_REPO, ds_commit)
    legacy_id = rev_id(t, fx.LEGACY_REPO)
    entries = by_path(omnihub_json(t, "cache", "ls"))
    check_eq(sorted(entries), sorted([ds_id, legacy_id]), "entries")
    check_eq((entries[ds_id]["hub"], entries[ds_id]["name"], entries[ds_id]["files"]),
             ("huggingface-datasets", fx.DATASET_REPO, 1), "the dataset")
    check_eq(entries[ds_id]["folder"], os.path.realpath(os.path.join(
        t.cache, "huggingface", "datasets", fx.DATASET_REPO + "@" + ds_commit)), "its folder")
    check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", fx.DATASET_REPO + "@main"))),
             [ds_id], "the dataset without its hub, by a ref")
    check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", "huggingface/" + fx.LEGACY_REPO))),
             [legacy_id], "the legacy id")
    omnihub(t, "cache", "rm", ds_id, legacy_id)
    check_eq(omnihub_json(t, "cache", "ls")["entries"], [], "both removed")
    check(not os.path.exists(os.path.join(t.cache, "huggingface")), "no empty folder left")


@test
def catalog_models_at_any_depth(t):
    """A catalog hub's model is the folder holding its entries, however deep (team/tiny):
    listed by that name, narrowed by it, and removed alone."""
    conv = [x for x in t.shared.zoo_entries if x["model"] == "Conv2d" and x["opset"] == 13][0]
    pool = [x for x in t.shared.zoo_entries if x["model"] == "AvgPool2d"][0]
    cat_dir = os.path.join(t.dir, "catalogs")
    empty = os.path.join(t.dir, "no-catalogs")
    os.makedirs(cat_dir)
    os.makedirs(empty)
    base = t.shared.zoo.model_base_url.rstrip("/") + "/"
    entry = lambda e: {"url": base + e["model_path"], "digests": {"sha256": e["sha256"]},
                       "size": e["bytes"], "format": "onnx"}
    with open(os.path.join(cat_dir, "mine.json"), "w") as f:
        json.dump({"omnihub_catalog": 1, "hub": "mine",
                   "models": {"team/tiny": {"entries": {"conv": entry(conv)}},
                              "solo": {"entries": {"pool": entry(pool)}}}}, f)
    extra = ["catalogs=" + cat_dir, "system_catalogs=" + empty]
    with t.mount(options(t) + extra, env={"HF_ENDPOINT": t.shared.hf.endpoint}) as m:
        for model, e in (("team/tiny", conv), ("solo", pool)):
            folder = m.path("mine", *model.split("/"))
            names = os.listdir(folder)
            check_eq(len(names), 1, "entries of %s: %r" % (model, names))
            check_eq(sha256_file(os.path.join(folder, names[0])), e["sha256"], model)
    res = omnihub(t, "--json", "-o", ",".join(extra), "cache", "ls", "mine")
    entries = by_path(json.loads(res.stdout))
    check_eq(sorted((p, e["name"], e["files"], e["bytes"]) for p, e in entries.items()),
             [("mine/solo", "solo", 1, pool["bytes"]),
              ("mine/team/tiny", "team/tiny", 1, conv["bytes"])], "the catalog's models")
    check_eq(sorted(by_path(omnihub_json(t, "cache", "ls", "mine/team"))), ["mine/team/tiny"],
             "a folder above a model narrows to it")
    omnihub(t, "cache", "rm", "mine/team/tiny")
    check_eq(sorted(by_path(omnihub_json(t, "cache", "ls"))), ["mine/solo"], "what is left")
    check(not os.path.exists(os.path.join(t.cache, "blobs", "sha256", conv["sha256"])),
          "its blob went")


@test
def onnx_opset_with_its_extracted_archive(t):
    """An ONNX opset is one entry: its model file, the files extracted from its archive and
    the archive's blob; cache rm of it removes them all."""
    e = [x for x in t.shared.zoo_entries if x["model"] == "AvgPool2d" and x["opset"] == 12][0]
    opset = "onnx/avgpool2d/opset-12"
    with mount(t) as m:
        check_eq(sha256_file(m.path(opset, "model.onnx")), e["sha256"], "the model")
        for rel, sha in e["members"].items():
            check_eq(sha256_file(m.path(opset, "model_with_data", rel)), sha, rel)
    folder = os.path.join(t.cache, opset)
    member_bytes = sum(os.path.getsize(os.path.join(folder, "model_with_data", rel))
                       for rel in e["members"])
    doc = omnihub_json(t, "cache", "ls", "onnx/avgpool2d")
    check_eq([(x["path"], x["hub"], x["name"], x["revision"], x["files"], x["bytes"])
              for x in doc["entries"]],
             [(opset, "onnx", "avgpool2d", "opset-12", 1 + len(e["members"]),
               e["bytes"] + member_bytes + e["model_with_data_bytes"])], "the opset's entry")
    archive = os.path.join(t.cache, "blobs", "sha256", e["model_with_data_sha"])
    check(os.path.exists(archive), "the archive's blob is cached")
    doc = omnihub_json(t, "cache", "rm", opset)
    check_eq((doc["removed"][0]["files"], doc["removed"][0]["kept"]),
             (1 + len(e["members"]), []), "what went")
    check(not os.path.exists(folder), "the opset's folder went")
    check(not os.path.exists(os.path.join(t.cache, "blobs", "sha256", e["sha256"])),
          "the model's blob went")
    check(not os.path.exists(archive), "the archive's blob went")


def killed(m):
    """SIGKILL the daemon and detach its mount; the kill is the test's, not a failed
    shutdown (as test_transfers.py does)."""
    m.kill()
    m.proc.wait()
    m._stopped = True
    m.problem = None


@test
def partial_downloads_of_a_revision_listed_and_removed(t):
    """A Hugging Face download in progress is listed under its revision (its sidecar's URL
    names the commit); cache rm keeps it while it is written; once its writer is gone (the
    mount killed) it is listed as left over, and cache rm removes it."""
    shard = files_of(t, fx.SHARDED_REPO)["model-00001-of-00002.safetensors"]
    sha = shard["lfs"]["oid"]
    SLOW["sha"] = sha
    partial = os.path.join(t.cache, "blobs", "sha256", sha + ".partial")
    state = os.path.join(t.cache, "blobs", "sha256", sha + ".state")
    me = rev_id(t, fx.SHARDED_REPO)
    # Pieces of 64 KiB: the sidecar counts some before the kill.
    m = t.mount(options(t) + ["piece_size=64K"], env={"HF_ENDPOINT": t.shared.hf.endpoint})
    m.start()
    path = m.path("huggingface", *fx.SHARDED_REPO.split("/"), shard["path"])

    def reader():
        try:
            with open(path, "rb") as f:
                f.read()
        except OSError:
            pass  # the mount is killed under it
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        wait_partial(t, sha)
        doc = omnihub_json(t, "cache", "ls", "huggingface/" + fx.SHARDED_REPO)
        check_eq([e["path"] for e in doc["entries"]], [me], "the revision, from its download")
        parts = doc["entries"][0]["partials"]
        check_eq([(p["blob"], p["in_progress"], p["size"], p["file"]) for p in parts],
                 [("sha256/" + sha, True, shard["size"], "huggingface/models/%s@%s/%s"
                   % (fx.SHARDED_REPO, commit_of(t, fx.SHARDED_REPO), shard["path"]))],
                 "its partial download, for its file")
        check(0 < parts[0]["bytes"] < shard["size"], "bytes so far: %r" % parts[0]["bytes"])
        check("/%s/resolve/%s/" % (fx.SHARDED_REPO, commit_of(t, fx.SHARDED_REPO))
              in parts[0]["url"], "its URL: %r" % parts[0]["url"])
        check_eq(omnihub_json(t, "cache", "ls")["unnamed_partials"], [], "none unnamed")
        res = omnihub(t, "cache", "rm", me)
        check("kept %s/blobs/sha256/%s.partial: a download in progress"
              % (os.path.realpath(t.cache), sha) in res.stdout, "rm: %r" % res.stdout)
        check(os.path.exists(partial) and os.path.exists(state), "kept while written")
    finally:
        killed(m)
        thread.join(COMMAND_TIMEOUT)
    doc = omnihub_json(t, "cache", "ls")
    parts = by_path(doc)[me]["partials"]
    check_eq([(p["blob"], p["in_progress"]) for p in parts], [("sha256/" + sha, False)],
             "left over once its writer is gone")
    check(0 < parts[0]["bytes"] < shard["size"], "bytes kept: %r" % parts[0]["bytes"])
    check("left over: blobs/sha256/%s" % sha in omnihub(t, "cache", "ls").stdout, "ls text")
    doc = omnihub_json(t, "cache", "rm", me)
    check_eq(doc["removed"][0]["kept"], [], "nothing kept")
    check(not os.path.exists(partial) and not os.path.exists(state), "the partial went")
    check_eq(omnihub_json(t, "cache", "ls")["entries"], [], "nothing left")


def partial_entry(doc, path):
    """(entry, its only partial) of the entry path in a cache ls document."""
    entries = by_path(doc)
    check(path in entries, "%s listed: %r" % (path, sorted(entries)))
    parts = entries[path]["partials"]
    check_eq(len(parts), 1, "one partial under %s: %r" % (path, parts))
    return entries[path], parts[0]


def reading(path):
    """A thread that reads path to its end, or until its mount is killed under it."""
    def reader():
        try:
            with open(path, "rb") as f:
                f.read()
        except OSError:
            pass
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def interrupted_partial_listed_and_removed(t, m, mount_path, entry_id, file, want_sha,
                                           want_size, ls_args=(), after_kill=None):
    """Reads mount_path through m (a mount throttled to one connection, 64 KiB pieces) until
    its download has pieces; checks cache ls lists it under entry_id in progress, and cache rm
    keeps it; kills the mount; checks it is listed as left over with the bytes its sidecar
    has, calls after_kill(state_path), then cache rm entry_id removes it."""
    partial = os.path.join(t.cache, "blobs", "sha256", want_sha + ".partial")
    state = os.path.join(t.cache, "blobs", "sha256", want_sha + ".state")
    thread = reading(mount_path)
    try:
        doc = wait_partial(t, want_sha)
        check_eq(doc["unnamed_partials"], [], "none apart")
        e, p = partial_entry(doc, entry_id)
        check_eq((e["files"], e["bytes"]), (0, 0), "nothing of it complete yet")
        check_eq((p["blob"], p["in_progress"], p["size"], p["file"]),
                 ("sha256/" + want_sha, True, want_size, file), "its download in progress")
        check(0 < p["bytes"] < want_size, "bytes so far: %r" % p["bytes"])
        res = omnihub(t, *ls_args, "cache", "ls", entry_id)
        lines = res.stdout.splitlines()
        check(lines[1].startswith(entry_id + " ") and lines[1].endswith("  partial"),
              "its line: %r" % res.stdout)
        check(lines[2].startswith("    partial ") and lines[2].endswith(
            "in progress: blobs/sha256/%s for %s" % (want_sha, os.path.basename(file))),
              "its partial's line: %r" % res.stdout)
        res = omnihub(t, *ls_args, "cache", "rm", entry_id)
        check("kept %s/blobs/sha256/%s.partial: a download in progress"
              % (os.path.realpath(t.cache), want_sha) in res.stdout, "rm: %r" % res.stdout)
        check(os.path.exists(partial) and os.path.exists(state), "kept while written")
    finally:
        killed(m)
        thread.join(COMMAND_TIMEOUT)
    doc = omnihub_json(t, *ls_args, "cache", "ls")
    check_eq(doc["unnamed_partials"], [], "none apart once left over")
    _, p = partial_entry(doc, entry_id)
    check_eq((p["blob"], p["in_progress"], p["file"]), ("sha256/" + want_sha, False, file),
             "left over once its writer is gone")
    with open(state) as f:
        pieces = [line for line in f.read().splitlines() if line.startswith("pieces ")][0]
    have = sum(bin(int(c, 16)).count("1") for c in pieces.split(" ", 1)[1])
    check_eq(p["bytes"], min(have * 65536, want_size), "bytes: its sidecar's whole pieces")
    check(0 < p["bytes"] < want_size, "bytes kept: %r" % p["bytes"])
    res = omnihub(t, *ls_args, "cache", "ls")
    check("left over: blobs/sha256/%s for %s" % (want_sha, os.path.basename(file)) in res.stdout,
          "ls text: %r" % res.stdout)
    if after_kill:
        after_kill(state)
        _, p = partial_entry(omnihub_json(t, *ls_args, "cache", "ls"), entry_id)
    doc = omnihub_json(t, *ls_args, "cache", "rm", entry_id)
    check_eq([(r["path"], r["kept"]) for r in doc["removed"]], [(entry_id, [])], "removed")
    check_eq(doc["freed_bytes"], p["bytes"], "freed: the partial's bytes")
    check(not os.path.exists(partial) and not os.path.exists(state), "the partial went")
    doc = omnihub_json(t, *ls_args, "cache", "ls")
    check_eq((doc["entries"], doc["unnamed_partials"]), ([], []), "nothing left")


@test
def zoo_partial_listed_under_its_opset_and_removed(t):
    """An interrupted download of an ONNX zoo file is listed under the opset it is for (its
    sidecar names the file), in progress and then left over with its bytes present / total,
    in text and --json; cache rm of the model keeps it while written and removes it after."""
    large = [e for e in t.shared.zoo_entries if e["model"] == "BigGemm"][0]
    m = t.mount(options(t) + ["piece_size=64K", "connections=1"],
                env={"HF_ENDPOINT": t.shared.hf.endpoint})
    m.start()
    interrupted_partial_listed_and_removed(
        t, m, m.path("onnx", "biggemm", "model.onnx"), "onnx/biggemm/opset-13",
        "onnx/biggemm/opset-13/model.onnx", large["sha256"], large["bytes"])


@test
def catalog_partial_listed_under_its_model_and_removed(t):
    """An interrupted download of a catalog hub's entry is listed under its model (team/big),
    and removed with it; a sidecar without the file's line (as an older omnihub wrote) is
    listed apart, with its URL, and cache rm of the model leaves it; a mount that resumes it
    records its file again."""
    large = [e for e in t.shared.zoo_entries if e["model"] == "BigGemm"][0]
    cat_dir = os.path.join(t.dir, "catalogs")
    empty = os.path.join(t.dir, "no-catalogs")
    os.makedirs(cat_dir)
    os.makedirs(empty)
    url = t.shared.zoo.model_base_url.rstrip("/") + "/" + large["model_path"]
    with open(os.path.join(cat_dir, "mine.json"), "w") as f:
        json.dump({"omnihub_catalog": 1, "hub": "mine",
                   "models": {"team/big": {"entries": {"gemm": {
                       "url": url, "digests": {"sha256": large["sha256"]},
                       "size": large["bytes"], "format": "onnx"}}}}}, f)
    extra = ["catalogs=" + cat_dir, "system_catalogs=" + empty]
    m = t.mount(options(t) + extra + ["piece_size=64K", "connections=1"],
                env={"HF_ENDPOINT": t.shared.hf.endpoint})
    m.start()
    names = os.listdir(m.path("mine", "team", "big"))
    check_eq(len(names), 1, "the model's entries: %r" % names)
    ls_args = ("-o", ",".join(extra))

    def without_its_file(state):
        with open(state) as f:
            text = f.read()
        check("\npath mine/team/big/%s\n" % names[0] in text, "the sidecar names it: %r"
              % text[-200:])
        with open(state, "w") as f:
            f.write("".join(line for line in text.splitlines(True)
                            if not line.startswith("path ")))
        doc = omnihub_json(t, *ls_args, "cache", "ls")
        check_eq(doc["entries"], [], "no model without it")
        check_eq([(p["blob"], p["file"], p["url"]) for p in doc["unnamed_partials"]],
                 [("sha256/" + large["sha256"], None, url)], "listed apart, with its URL")
        check("left over: blobs/sha256/%s from %s" % (large["sha256"], url)
              in omnihub(t, *ls_args, "cache", "ls").stdout, "text")
        omnihub(t, *ls_args, "cache", "rm", "mine/team/big", want=EXIT_NOT_FOUND)
        check(os.path.exists(state[:-len(".state")] + ".partial"), "nothing removed")
        # A mount that resumes it records its file: under its model again.
        again = t.mount(options(t) + extra + ["piece_size=64K", "connections=1"],
                        env={"HF_ENDPOINT": t.shared.hf.endpoint})
        again.start()
        thread = reading(again.path("mine", "team", "big", names[0]))
        try:
            def under_its_model():
                doc = omnihub_json(t, *ls_args, "cache", "ls")
                return "mine/team/big" in by_path(doc) and doc["unnamed_partials"] == []
            wait_for(under_its_model, 30, "the resumed download under its model", interval=0.2)
        finally:
            killed(again)
            thread.join(COMMAND_TIMEOUT)
    interrupted_partial_listed_and_removed(
        t, m, m.path("mine", "team", "big", names[0]), "mine/team/big",
        "mine/team/big/" + names[0], large["sha256"], large["bytes"], ls_args=ls_args,
        after_kill=without_its_file)


@test
def usage_help_and_exit_codes(t):
    res = omnihub(t, "cache", "--help")
    check(res.stdout.startswith("usage: omnihub [OPTIONS] cache ls [PATH...] | rm [-n] PATH..."),
          "cache --help: %r" % res.stdout[:80])
    check_eq(omnihub(t, "help", "cache").stdout, res.stdout, "help cache")
    check("cache" in omnihub(t, "--help").stdout, "--help lists cache")
    for args in (["cache"], ["cache", "frob"], ["cache", "rm"], ["cache", "ls", "--frob"]):
        res = omnihub(t, *args, want=EXIT_USAGE)
        check(res.stderr.startswith("omnihub: ") and res.stdout == "",
              "usage error of %r: %r" % (args, res.stderr))
    res = omnihub(t, "cache", "rm", "onnx/nothing", want=EXIT_NOT_FOUND)
    check(res.stderr.startswith("omnihub: onnx/nothing: nothing cached"), res.stderr)


if __name__ == "__main__":
    run(shared_setup, before_each=before_each)
