#!/usr/bin/env python3
"""Integration tests of omnihub-fuse's Hugging Face hub: repos, revisions, tokens, the HF cache, request budgets, through a real mount.
Not for the ONNX zoo (test_onnx_mount.py) nor for the transfer layer's faults (test_transfers.py).
"""

# The fixture repos come from tests/fixtures/make_hf_repos.py, served by tests/fixtures/hf_server.py
# (an imitation of the Hub and of its CDN on two ports, with an in-memory request log); the
# contract is ../shared/hf-spec (MOUNT/huggingface/<org>/<name>[@rev]/<path>). Run by `make check`, or:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_hf_mount.py [PART]

import errno
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (HfFixture, all_files, check, check_eq, errno_name,  # noqa: E402
                           errno_of, hf_setup, merged_env, mount, mounted_noting, omnihub_binary,
                           read_errno, run, run_cli, sha256_bytes, sha256_file, test, wait_for)

import make_hf_repos as fx  # noqa: E402
from mirror_server import MirrorServer  # noqa: E402

TOKEN = "hf_TestTokenValue0123456789abcdefXYZ"  # has access to everything
OTHER_TOKEN = "hf_OtherUserToken0123456789abcdefQRS"  # a valid user without access
HEX40 = re.compile(r"^[0-9a-f]{40}$")
WAIT = 20.0


# ----------------------------------------------------------------------------- fixture

class Shared(HfFixture):
    def __init__(self, run_dir):
        super().__init__(run_dir, token=TOKEN, other_tokens=[OTHER_TOKEN], page_size=100)


def shared_setup(run_dir):
    return hf_setup(Shared(run_dir))


def before_each(shared):
    shared.srv.set_api_delay(0)
    shared.srv.rate_limit(0, "api")
    shared.srv.rate_limit(0, "resolve")
    shared.srv.clear_log()


def hf_mount(t, *extra, env=None, cache=None):
    """A Mount (not started) of the HF hub of the local server; the ONNX hub points at an
    empty manifest on the same server."""
    return mount(t, t.shared.srv, *extra, env=env, cache=cache)


def mounted(t, *extra, env=None, cache=None):
    return mounted_noting(t, hf_mount(t, *extra, env=env, cache=cache), t.shared.srv.summary)


def repo_dir(m, repo_id, rev=None, dataset=False):
    top = "huggingface-datasets" if dataset else "huggingface"
    name = repo_id + ("@" + rev.replace("/", "%2F") if rev else "")
    return m.path(top, *name.split("/"))


def files_of(t, repo_id, rev="main", rtype="model"):
    return fx.files_at(fx.find_repo(t.shared.desc, repo_id, rtype), rev)


def commit_of(t, repo_id, rev="main", rtype="model"):
    return fx.find_repo(t.shared.desc, repo_id, rtype)["revisions"][rev]


def content(t, f):
    return fx.blob_bytes(t.shared.fixture_dir, f["sha256"])


def read(path):
    with open(path, "rb") as f:
        return f.read()


def reqs(t, **filters):
    """The server's log, once nothing is in flight."""
    t.shared.srv.wait_idle()
    return t.shared.srv.requests(**filters)


def count(t, **filters):
    return len(reqs(t, **filters))


def drop_kernel_dentries():
    """Make the kernel forget cached (also negative) dentries, so that the next lookup
    reaches the daemon: what the daemon remembers is then what is tested."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


def walk(root):
    """({relative file path: size}, {relative dir path}) under root."""
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            dirs.add(os.path.relpath(os.path.join(dirpath, d), root))
        for n in filenames:
            p = os.path.join(dirpath, n)
            files[os.path.relpath(p, root)] = os.stat(p).st_size
    return files, dirs


def fixture_dirs(files):
    dirs = set()
    for p in files:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return dirs


def blob_paths(cache, f):
    """Where the spec keeps a verified copy of this file's content."""
    if "lfs" in f:
        return os.path.join(cache, "blobs", "sha256", f["lfs"]["oid"])
    return os.path.join(cache, "blobs", "git-sha1", f["oid"])


def resolve_paths(t, repo_id, path, dataset=False):
    prefix = ("/datasets/" if dataset else "/") + repo_id + "/resolve/"
    return [r for r in reqs(t, kind="resolve")
            if r["path"].startswith(prefix) and r["path"].split("/resolve/", 1)[1].split("/", 1)[-1] == path]


def cdn_for(t, sha):
    return reqs(t, kind="cdn", path_substring=sha)


# ----------------------------------------------------------------------------- tests

@test
def listing_sizes_and_digests(t):
    """Every file and folder of a repo at main, with its size; the bytes read match the
    fixture's digests; each verified content lands in its blob store."""
    want = files_of(t, fx.ONNX_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        files, dirs = walk(root)
        check_eq(files, {p: f["size"] for p, f in want.items()}, "files and sizes at main")
        check_eq(dirs, fixture_dirs(want), "folders at main")
        check_eq(count(t, kind="resolve") + count(t, kind="cdn"), 0, "downloads caused by listing")
        for p, f in sorted(want.items()):
            check_eq(sha256_bytes(read(os.path.join(root, p))), f["sha256"], "sha256 of " + p)
            check(os.path.isfile(blob_paths(t.cache, f)), "no blob for %s at %s" % (p, blob_paths(t.cache, f)))
        commits = {r["path"].split("/resolve/", 1)[1].split("/", 1)[0] for r in reqs(t, kind="resolve")}
        check(commits and all(HEX40.match(c) for c in commits),
              "resolve requests name a commit, not a branch: %r" % commits)
        check_eq(commits, {commit_of(t, fx.ONNX_REPO)}, "commits downloaded from")
        hexes = [n for n in os.listdir(os.path.join(t.cache, "blobs", "sha256"))]
        lfs = {f["lfs"]["oid"] for f in want.values() if "lfs" in f}
        check(lfs <= set(hexes), "LFS blobs missing: %r" % (lfs - set(hexes)))


@test
def xattrs_describe_files(t):
    """Every file has the user.omnihub.* attributes from the tree alone (no resolve, no CDN):
    the resolve URL of the commit, the LFS sha256 or git blob id, the repo and commit."""
    want = files_of(t, fx.ONNX_REPO)
    commit = commit_of(t, fx.ONNX_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        for p, f in sorted(want.items()):
            path = os.path.join(root, p)
            get = lambda name: os.getxattr(path, "user.omnihub." + name).decode()
            check(get("url").endswith("/%s/resolve/%s/%s" % (fx.ONNX_REPO, commit, p)),
                  "url of %s: %r" % (p, get("url")))
            digest = "sha256:" + f["lfs"]["oid"] if "lfs" in f else "git-sha1:" + f["oid"]
            check_eq(get("digest"), digest, "digest of " + p)
            check_eq(get("hub"), "huggingface", "hub of " + p)
            check_eq(json.loads(get("meta")),
                     {"repo_type": "model", "repo": fx.ONNX_REPO, "commit": commit, "path": p,
                      "lfs": "lfs" in f}, "meta of " + p)
            check_eq(get("cached"), "no", "cached of %s before a read" % p)
        check_eq(count(t, kind="resolve") + count(t, kind="cdn"), 0,
                 "downloads caused by reading attributes")
        p, f = sorted(want.items())[0]
        read(os.path.join(root, p))
        check_eq(os.getxattr(os.path.join(root, p), "user.omnihub.cached"), b"yes",
                 "cached of %s after a read" % p)


@test
def onnx_model_with_external_data(t):
    """model.onnx and model.onnx.data are both readable and identical; onnx.load() of the
    mounted model pulls the external data from beside it."""
    want = files_of(t, fx.ONNX_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        for p in ("model.onnx", "model.onnx.data", "onnx/model.onnx"):
            check_eq(read(os.path.join(root, p)), content(t, want[p]), p)
        import onnx
        from onnx import numpy_helper
        model = onnx.load(os.path.join(root, "model.onnx"))  # external data resolved relative to it
        weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        check_eq(sorted(weights), ["B", "W"], "initializers")
        check_eq(weights["W"].shape, (64, 16), "W shape")
        raw = content(t, want["model.onnx.data"])
        check_eq(weights["W"].tobytes(), raw[:64 * 16 * 4], "W from the external data file")


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


@test
def sharded_checkpoint_via_index(t):
    """A loader's path: open model.safetensors.index.json, then each shard it names; the
    shards' safetensors headers describe their sizes exactly."""
    want = files_of(t, fx.SHARDED_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.SHARDED_REPO)
        index = json.loads(read(os.path.join(root, "model.safetensors.index.json")))
        shards = sorted(set(index["weight_map"].values()))
        check_eq(len(shards), 2, "shards named by the index")
        for tensor, shard in sorted(index["weight_map"].items()):
            path = os.path.join(root, shard)
            n, header = safetensors_header(path)
            check(tensor in header, "%s not in %s" % (tensor, shard))
            end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
            check_eq(8 + n + end, os.stat(path).st_size, shard + ": header vs size")
            check_eq(sha256_file(path), want[shard]["sha256"], shard)
        n, header = safetensors_header(os.path.join(repo_dir(m, fx.ONNX_REPO), "model.safetensors"))
        check_eq(sorted(k for k in header if k != "__metadata__"), ["b", "w"], "model.safetensors")


@test
def pinned_revisions(t):
    """@tag, @commit and @refs%2Fpr%2F1 show their own commit's files; main is unchanged."""
    with mounted(t) as m:
        for rev in ("v1.0", commit_of(t, fx.ONNX_REPO, "v1.0"), "refs/pr/1", "main"):
            label = "v1.0" if HEX40.match(rev) else rev
            want = files_of(t, fx.ONNX_REPO, label)
            root = repo_dir(m, fx.ONNX_REPO, rev)
            files, _ = walk(root)
            check_eq(set(files), set(want), "files at " + rev)
            for p in ("config.json", "README.md"):
                check_eq(read(os.path.join(root, p)), content(t, want[p]), "%s at %s" % (p, rev))
        check_eq(errno_of(os.stat, os.path.join(repo_dir(m, fx.ONNX_REPO, "v1.0"), "onnx", "extra.txt")),
                 errno.ENOENT, "a file added after v1.0")
        check_eq(errno_of(os.stat, repo_dir(m, fx.ONNX_REPO, "no-such-rev")), errno.ENOENT,
                 "a missing revision")
        pr = [r for r in reqs(t, kind="api") if "/revision/" in r["path"] and "pr" in r["path"]]
        check(pr and all("refs%2Fpr%2F1" in r["raw_path"] for r in pr),
              "the PR revision is sent quoted: %r" % [r["raw_path"] for r in pr])
        v1 = commit_of(t, fx.ONNX_REPO, "v1.0")
        check(resolve_paths(t, fx.ONNX_REPO, "config.json") and any(
            "/resolve/%s/" % v1 in r["path"] for r in resolve_paths(t, fx.ONNX_REPO, "config.json")),
            "config.json of v1.0 was downloaded from its commit")


@test
def legacy_id_and_dataset(t):
    """huggingface/gpt2/... (no org) and huggingface-datasets/<org>/<name>/..."""
    with mounted(t) as m:
        for p, f in files_of(t, fx.LEGACY_REPO).items():
            check_eq(read(os.path.join(repo_dir(m, fx.LEGACY_REPO), p)), content(t, f), "gpt2/" + p)
        want = files_of(t, fx.DATASET_REPO, rtype="dataset")
        root = repo_dir(m, fx.DATASET_REPO, dataset=True)
        files, _ = walk(root)
        check_eq(files, {p: f["size"] for p, f in want.items()}, "dataset files")
        for p, f in want.items():
            check_eq(sha256_file(os.path.join(root, p)), f["sha256"], "dataset " + p)
        check(count(t, kind="api", path_substring="/api/datasets/" + fx.DATASET_REPO) >= 2,
              "the dataset went through /api/datasets/")
        res = [r["path"] for r in reqs(t, kind="resolve") if fx.DATASET_REPO in r["path"]]
        check(res and all(p.startswith("/datasets/") for p in res), "dataset resolves: %r" % res)
        # Anonymous, the Hub answers 401 for a repo it does not have: ENOENT or EACCES.
        e = errno_of(os.stat, repo_dir(m, fx.ONNX_REPO, dataset=True))
        check(e in (errno.ENOENT, errno.EACCES),
              "a model repo under huggingface-datasets: %s" % errno_name(e))


@test
def token_goes_to_the_hub_only(t):
    """With HF_TOKEN, every Hub request carries it, no CDN request carries any
    Authorization, and the token appears in no log and no cache file."""
    want = files_of(t, fx.SHARDED_REPO)
    with mounted(t, env={"HF_TOKEN": TOKEN}) as m:
        root = repo_dir(m, fx.SHARDED_REPO)
        for p in sorted(want):
            check_eq(sha256_file(os.path.join(root, p)), want[p]["sha256"], p)
        hub = reqs(t, host="hub", kind="api") + reqs(t, host="hub", kind="resolve")
        cdn = reqs(t, host="cdn")
        check(hub and cdn, "both hosts were used (%d hub, %d cdn)" % (len(hub), len(cdn)))
        check_eq([r["path"] for r in hub if not r["token_ok"]], [], "Hub requests without the token")
        check_eq([r["path"] for r in cdn if r["auth"]], [], "CDN requests with Authorization")
        log = m.log()
    check(TOKEN not in log, "the token is in the daemon's log")
    for p in all_files(t.cache):
        with open(os.path.join(t.cache, p), "rb") as f:
            check(TOKEN.encode() not in f.read(), "the token is in the cache file " + p)



@test
def mirror_gets_no_token(t):
    """With HF_TOKEN and a blob mirror holding every file of a repo (by LFS sha256 or git blob
    id, the cache's layout): every file comes from the mirror, right; the mirror sees no
    Authorization, the CDN is not asked, and the Hub's requests still carry the token."""
    want = files_of(t, fx.SHARDED_REPO)
    root = os.path.join(t.dir, "mirror")
    for f in want.values():
        path = blob_paths(root, f)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(content(t, f))
    with MirrorServer(root) as mirror:
        with mounted(t, "mirror=" + mirror.url, env={"HF_TOKEN": TOKEN}) as m:
            top = repo_dir(m, fx.SHARDED_REPO)
            for p in sorted(want):
                check_eq(sha256_file(os.path.join(top, p)), want[p]["sha256"], p)
            hub = reqs(t, host="hub", kind="api") + reqs(t, host="hub", kind="resolve")
            check_eq([r["path"] for r in hub if not r["token_ok"]], [],
                     "Hub requests without the token")
            check_eq(reqs(t, host="cdn"), [], "CDN requests with a mirror holding every file")
        check_eq(mirror.auth_seen(), [], "Authorization headers the mirror saw")
        check(mirror.bytes_sent() >= sum(len(content(t, f)) for f in want.values()),
              "the mirror sent less than the repo")
        check(TOKEN not in m.log(), "the token is in the daemon's log")

def token_file_of(t):
    return os.path.join(t.env["HF_HOME"], "token")


@test
def gated_and_private_without_token(t):
    """Anonymous: a gated repo lists, but its files give EACCES, with one log line carrying
    the Hub's message, the repo's page to ask for access at, HF_TOKEN and `hf auth login`;
    a private repo looks missing (401 RepoNotFound): ENOENT, with the hint that a private
    repo looks the same without a token, naming HF_TOKEN, `hf auth login` and the token
    file read."""
    srv = t.shared.srv
    with mounted(t) as m:
        gated = repo_dir(m, fx.GATED_REPO)
        check_eq(set(os.listdir(gated)), set(files_of(t, fx.GATED_REPO)), "gated listing")
        e = read_errno(os.path.join(gated, "config.json"))
        check_eq(errno_name(e), "EACCES", "reading a gated file")
        lines = m.log_lines("You must have access to it and be authenticated",
                            "Ask for access at %s/%s" % (srv.endpoint, fx.GATED_REPO),
                            "HF_TOKEN", "`hf auth login`")
        check_eq(len(lines), 1, "log lines saying how to read the gated repo")
        e = errno_of(os.listdir, repo_dir(m, fx.PRIVATE_REPO))
        check_eq(errno_name(e), "ENOENT", "a private repo without the token")
        lines = m.log_lines(fx.PRIVATE_REPO, "repository not found", "RepoNotFound",
                            "A private repo looks the same without a token", "HF_TOKEN",
                            "`hf auth login`", token_file_of(t))
        check_eq(len(lines), 1, "log lines saying the private repo was not found")
        check_eq(count(t, host="cdn"), 0, "CDN requests")


@test
def gated_and_private_with_tokens(t):
    """HF_TOKEN with access reads both, with no gated line in the log; another user's token
    gets EACCES (403) on the gated repo, the log giving the Hub's message and the page to
    ask for access at, and ENOENT (404 RepoNotFound) on the private one, the log saying
    it may be private and the token's account without access."""
    with mounted(t, env={"HF_TOKEN": TOKEN}) as m:
        for repo in (fx.GATED_REPO, fx.PRIVATE_REPO):
            for p, f in files_of(t, repo).items():
                check_eq(sha256_file(os.path.join(repo_dir(m, repo), p)), f["sha256"], repo + "/" + p)
        check_eq(m.log_lines("is gated"), [], "gated lines with a token that has access")
        check(TOKEN not in m.log(), "the token is in the daemon's log")
    with mounted(t, env={"HF_TOKEN": OTHER_TOKEN}, cache=os.path.join(t.dir, "cache2")) as m:
        e = read_errno(os.path.join(repo_dir(m, fx.GATED_REPO), "weights.bin"))
        check_eq(errno_name(e), "EACCES", "gated, a token without access")
        check(m.log_lines("is gated", "not in the authorized list",
                          "Ask for access at %s/%s" % (t.shared.srv.endpoint, fx.GATED_REPO)),
              "no gated line with the 403 message and the page")
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.PRIVATE_REPO))), "ENOENT",
                 "private, a token without access")
        check(m.log_lines(fx.PRIVATE_REPO, "repository not found", "it is private and the "
                          "account of the token", "$HF_TOKEN"),
              "no line saying the private repo may be out of the token's reach")
        check(OTHER_TOKEN not in m.log(), "the token is in the daemon's log")


@test
def token_from_files(t):
    """$HF_HOME/token, and -o hf_token_file=FILE when no other source has one."""
    private = files_of(t, fx.PRIVATE_REPO)["config.json"]
    home = t.env["HF_HOME"]
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "token"), "w") as f:
        f.write(TOKEN + "\n")
    with mounted(t) as m:
        check_eq(read(os.path.join(repo_dir(m, fx.PRIVATE_REPO), "config.json")), content(t, private),
                 "private config.json with $HF_HOME/token")
    os.unlink(os.path.join(home, "token"))
    token_file = os.path.join(t.dir, "my-token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    with mounted(t, "hf_token_file=" + token_file, cache=os.path.join(t.dir, "cache2")) as m:
        check_eq(read(os.path.join(repo_dir(m, fx.PRIVATE_REPO), "config.json")), content(t, private),
                 "private config.json with -o hf_token_file")
        check(all(r["token_ok"] for r in reqs(t, host="hub", repo="model:" + fx.PRIVATE_REPO)),
              "requests for the private repo without the token")


@test
def token_file_read_again_when_it_changes(t):
    """Mounted with no token, the private repo is ENOENT with the hint; once the token file
    ($HF_HOME/token) is written, the next access reads the repo with the token, without a
    remount; the log says the file was read again and never holds the token."""
    private = files_of(t, fx.PRIVATE_REPO)["config.json"]
    os.makedirs(t.env["HF_HOME"], exist_ok=True)
    with mounted(t) as m:
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.PRIVATE_REPO))), "ENOENT",
                 "the private repo without a token")
        check(m.log_lines(fx.PRIVATE_REPO, "A private repo looks the same without a token"),
              "no hint for the private repo")
        with open(token_file_of(t), "w") as f:
            f.write(TOKEN + "\n")
        # The kernel keeps the miss for its entry timeout: drop it, as time would.
        drop_kernel_dentries()
        check_eq(read(os.path.join(repo_dir(m, fx.PRIVATE_REPO), "config.json")),
                 content(t, private), "private config.json once the token file exists")
        check(m.log_lines(token_file_of(t), "changed: read again"),
              "no log line says the token file was read again")
        check(TOKEN not in m.log(), "the token is in the daemon's log")


@test
def token_is_trimmed_and_an_empty_one_is_none(t):
    """A token with spaces and newlines around it is trimmed (as huggingface_hub does) and
    used; one empty after trimming is no token, and the log says so rather than "with the
    token from $HF_TOKEN"; a token file holding only a newline likewise."""
    private = files_of(t, fx.PRIVATE_REPO)["config.json"]
    with mounted(t, env={"HF_TOKEN": "  " + TOKEN + " \n"}) as m:
        check_eq(read(os.path.join(repo_dir(m, fx.PRIVATE_REPO), "config.json")),
                 content(t, private), "private config.json with a padded $HF_TOKEN")
        check(m.log_lines("huggingface: ", "with the token from $HF_TOKEN"), "no token line")
        check(TOKEN not in m.log(), "the token is in the daemon's log")
    with mounted(t, env={"HF_TOKEN": " \n "}, cache=os.path.join(t.dir, "cache2")) as m:
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.PRIVATE_REPO))), "ENOENT",
                 "the private repo with a blank $HF_TOKEN")
        check(m.log_lines("huggingface: ", "without a token", "$HF_TOKEN is set but empty"),
              "no log line says $HF_TOKEN is empty")
        check_eq(m.log_lines("with the token from"), [], "lines claiming a token")
    os.makedirs(t.env["HF_HOME"], exist_ok=True)
    with open(token_file_of(t), "w") as f:
        f.write("\n")
    t.shared.srv.clear_log()
    with mounted(t, cache=os.path.join(t.dir, "cache3")) as m:
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.PRIVATE_REPO))), "ENOENT",
                 "the private repo with an empty token file")
        check(m.log_lines("without a token", "the token file %s is empty" % token_file_of(t)),
              "no log line says the token file is empty")
        check(all(not r["auth"] for r in reqs(t, host="hub")), "requests with a token")


@test
def refused_token_is_explained(t):
    """A token the Hub does not know (401 Invalid credentials) gets EACCES, with a line that
    says the Hub refused the token from $HF_TOKEN and what to do (`omnihub whoami`, a new
    token, HF_TOKEN, `hf auth login`); the token is in no log line."""
    bad = "hf_NotAValidToken0123456789abcdefghij"
    with mounted(t, env={"HF_TOKEN": bad}) as m:
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.ONNX_REPO))), "EACCES",
                 "a repo with a refused token")
        check(m.log_lines("the Hub refused the token",
                          "Invalid credentials in Authorization header", "`omnihub whoami`",
                          "HF_TOKEN", "`hf auth login`", "from $HF_TOKEN"),
              "no line explains the refused token")
        check(bad not in m.log(), "the token is in the daemon's log")


def omnihub_cli(t, *args, env=None):
    return run_cli(omnihub_binary(), ["-o", "cacert=" + t.shared.srv.cacert, "--cache", t.cache]
                   + list(args), merged_env(t.env, dict(t.shared.srv.daemon_env(), **(env or {}))))


@test
def whoami_names_the_account_and_never_the_token(t):
    """omnihub whoami asks /api/whoami-v2 with the token: it prints the account, its orgs
    and where the token came from ($HF_TOKEN, the token file), never the token; --json
    too. No token, or one the Hub refuses: exit 1 with what to do."""
    r = omnihub_cli(t, "whoami", env={"HF_TOKEN": TOKEN})
    check_eq(r.returncode, 0, "exit status with the token (stderr: %s)" % r.stderr)
    check_eq(r.stdout.splitlines()[0], "test-user", "the account")
    check("orgs: acme, mirror" in r.stdout, "orgs missing: %r" % r.stdout)
    check("token: from $HF_TOKEN" in r.stdout, "the token's source missing: %r" % r.stdout)
    check(TOKEN not in r.stdout + r.stderr, "the token was printed")
    calls = reqs(t, kind="api", path_substring="/api/whoami-v2")
    check_eq([(c["status"], c["token_ok"]) for c in calls], [(200, True)], "whoami-v2 calls")
    os.makedirs(t.env["HF_HOME"], exist_ok=True)
    with open(token_file_of(t), "w") as f:
        f.write(" " + OTHER_TOKEN + "\n")
    r = omnihub_cli(t, "whoami", "--json")
    check_eq(r.returncode, 0, "exit status with the token file (stderr: %s)" % r.stderr)
    doc = json.loads(r.stdout)
    check_eq((doc["name"], doc["orgs"], doc["token_from"]),
             ("other-user", [], token_file_of(t)), "the --json document")
    check(OTHER_TOKEN not in r.stdout + r.stderr, "the token was printed")
    os.unlink(token_file_of(t))
    t.shared.srv.clear_log()
    r = omnihub_cli(t, "whoami")
    check_eq(r.returncode, 1, "exit status without a token")
    for needle in ("not logged in", "HF_TOKEN", "`hf auth login`", token_file_of(t)):
        check(needle in r.stderr, "%r not in: %s" % (needle, r.stderr))
    check_eq(count(t, host="hub"), 0, "Hub requests without a token")
    bad = "hf_NotAValidToken0123456789abcdefghij"
    r = omnihub_cli(t, "whoami", env={"HF_TOKEN": bad})
    check_eq(r.returncode, 1, "exit status with a refused token")
    for needle in ("refused the token from $HF_TOKEN", "HTTP 401", "/settings/tokens",
                   "`hf auth login`"):
        check(needle in r.stderr, "%r not in: %s" % (needle, r.stderr))
    check(bad not in r.stdout + r.stderr, "the token was printed")
    t.shared.srv.clear_log()
    r = omnihub_cli(t, "--offline", "whoami", env={"HF_TOKEN": TOKEN})
    check_eq(r.returncode, 1, "exit status offline")
    check("offline" in r.stderr and "the token is from $HF_TOKEN" in r.stderr, r.stderr)
    check_eq(count(t, host="hub"), 0, "Hub requests offline")


@test
def info_of_a_repo_folder(t):
    """omnihub info of a repo folder shows its commit, file count, total size and whether
    it is private or gated (from the revision API and the tree, no file body)."""
    for repo, env, private, gated in ((fx.ONNX_REPO, {}, False, False),
                                      (fx.GATED_REPO, {}, False, "manual"),
                                      (fx.PRIVATE_REPO, {"HF_TOKEN": TOKEN}, True, False)):
        r = omnihub_cli(t, "--json", "info", "huggingface/" + repo, env=env)
        check_eq(r.returncode, 0, "exit status of info %s (stderr: %s)" % (repo, r.stderr))
        meta = json.loads(r.stdout)["meta"]
        want = files_of(t, repo)
        check_eq((meta["repo"], meta["revision"], meta["commit"], meta["files"], meta["size"],
                  meta["private"], meta["gated"]),
                 (repo, "main", commit_of(t, repo), len(want),
                  sum(f["size"] for f in want.values()), private, gated), "meta of " + repo)
    r = omnihub_cli(t, "info", "huggingface/" + fx.ONNX_REPO)
    check('"commit":"%s"' % commit_of(t, fx.ONNX_REPO) in r.stdout, "text info: %r" % r.stdout)
    check_eq(count(t, kind="resolve") + count(t, kind="cdn"), 0, "downloads for info")


@test
def repo_folder_xattrs(t):
    """A repo folder carries user.omnihub.hub and user.omnihub.meta (its commit, file count,
    size, private and gated state), as omnihub info shows them; an org folder has no meta."""
    repo = fx.ONNX_REPO
    want = files_of(t, repo)
    with mounted(t) as m:
        root = repo_dir(m, repo)
        names = os.listxattr(root)
        check("user.omnihub.hub" in names and "user.omnihub.meta" in names,
              "the folder's xattr names: %s" % names)
        check_eq(os.getxattr(root, "user.omnihub.hub"), b"huggingface", "hub of the folder")
        meta = json.loads(os.getxattr(root, "user.omnihub.meta"))
        check_eq((meta["repo"], meta["commit"], meta["files"], meta["size"], meta["private"]),
                 (repo, commit_of(t, repo), len(want), sum(f["size"] for f in want.values()),
                  False), "meta of the repo folder")
        org = os.path.dirname(root)
        check_eq(errno_name(errno_of(os.getxattr, org, "user.omnihub.meta")), "ENODATA",
                 "meta of the org folder")
    check_eq(count(t, kind="resolve") + count(t, kind="cdn"), 0, "downloads for the xattrs")


def prefill_hf_cache(t, repo_id, commit, files, corrupt=()):
    """Lay files out as huggingface_hub does: blobs/<etag>, snapshots/<commit>/<path>
    (relative symlinks), refs/main. Paths in corrupt get wrong bytes of the right size."""
    base = os.path.join(t.env["HF_HUB_CACHE"], "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(base, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(base, "refs"), exist_ok=True)
    with open(os.path.join(base, "refs", "main"), "w") as f:
        f.write(commit)
    for path, f in files.items():
        etag = f["lfs"]["oid"] if "lfs" in f else f["oid"]
        data = content(t, f)
        if path in corrupt:
            data = bytes(b ^ 0x55 for b in data)
        with open(os.path.join(base, "blobs", etag), "wb") as out:
            out.write(data)
        link = os.path.join(base, "snapshots", commit, path)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        depth = path.count("/")
        os.symlink("../../" + "../" * depth + "blobs/" + etag, link)
    for path in files:
        check(os.path.isfile(os.path.join(base, "snapshots", commit, path)),
              "the snapshot symlink of %s resolves" % path)


@test
def prefilled_hf_cache_is_used(t):
    """Files already in huggingface_hub's cache (and checking out) are served with no
    resolve or CDN request; a corrupt one there is downloaded instead."""
    want = files_of(t, fx.ONNX_REPO)
    commit = commit_of(t, fx.ONNX_REPO)
    cached = {p: want[p] for p in ("model.onnx.data", "config.json", "onnx/model.onnx",
                                   "tokenizer_config.json")}
    prefill_hf_cache(t, fx.ONNX_REPO, commit, cached, corrupt={"tokenizer_config.json"})
    with mounted(t) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        for p in sorted(cached) + ["README.md"]:
            check_eq(read(os.path.join(root, p)), content(t, want[p]), p)
        for p in ("model.onnx.data", "config.json", "onnx/model.onnx"):
            check_eq(len(resolve_paths(t, fx.ONNX_REPO, p)), 0, "resolve requests for cached " + p)
            if "lfs" in want[p]:
                check_eq(len(cdn_for(t, want[p]["lfs"]["oid"])), 0, "CDN requests for cached " + p)
        check(resolve_paths(t, fx.ONNX_REPO, "README.md"), "README.md (not cached) was downloaded")
        check(resolve_paths(t, fx.ONNX_REPO, "tokenizer_config.json"),
              "the corrupt cached tokenizer_config.json was downloaded instead")
    base = os.path.join(t.env["HF_HUB_CACHE"], "models--acme--tiny-onnx", "blobs")
    check_eq(len(os.listdir(base)), len(cached), "the HF cache was left as it was")


@test
def shared_blob_stored_once(t):
    """Two repos naming the same bytes share one blob; the second read fetches nothing
    from the CDN; both readable names are hard links to it."""
    f = files_of(t, fx.SHARDED_REPO)[fx.SHARED_PATH]
    sha = f["lfs"]["oid"]
    with mounted(t) as m:
        check_eq(sha256_file(os.path.join(repo_dir(m, fx.SHARDED_REPO), fx.SHARED_PATH)), sha, "first")
        first_cdn = len(cdn_for(t, sha))
        check(first_cdn >= 1, "the first read went to the CDN")
        check_eq(sha256_file(os.path.join(repo_dir(m, fx.MIRROR_REPO), fx.SHARED_PATH)), sha, "second")
        check_eq(len(cdn_for(t, sha)), first_cdn, "CDN requests after the second read")
        print("# shared blob: %d CDN, %d resolve requests for two repos"
              % (first_cdn, count(t, kind="resolve", path_substring=fx.SHARED_PATH)))
    copies = [p for p in all_files(os.path.join(t.cache, "blobs"))
              if os.path.basename(p).startswith(sha) and not p.endswith(".ok")]  # not its record
    check_eq(copies, [os.path.join("sha256", sha)], "blobs of the shared content")
    blob_ino = os.stat(os.path.join(t.cache, "blobs", "sha256", sha)).st_ino
    for repo in (fx.SHARDED_REPO, fx.MIRROR_REPO):
        org, name = repo.split("/")
        named = os.path.join(t.cache, "huggingface", "models", org,
                             "%s@%s" % (name, commit_of(t, repo)), fx.SHARED_PATH)
        check_eq(os.stat(named).st_ino, blob_ino, "inode of " + named)


@test
def negative_lookups_cached(t):
    """A missing repo (404 with a token) and a missing org are asked once: after the kernel
    forgets the miss, a second stat costs no request."""
    with mounted(t, env={"HF_TOKEN": TOKEN}) as m:
        missing = repo_dir(m, "acme/no-such-repo")
        no_org = m.path("huggingface", "no-such-org")
        check_eq(errno_name(errno_of(os.stat, missing)), "ENOENT", "missing repo")
        check_eq(errno_name(errno_of(os.stat, no_org)), "ENOENT", "missing org")
        first = count(t, host="hub")
        check(first >= 2, "the misses were asked (%d requests)" % first)
        drop_kernel_dentries()
        check_eq(errno_name(errno_of(os.stat, missing)), "ENOENT", "missing repo again")
        check_eq(errno_name(errno_of(os.stat, no_org)), "ENOENT", "missing org again")
        check_eq(count(t, host="hub"), first, "Hub requests after the second stats")


@test
def missing_repo_anonymous(t):
    """Anonymous, the Hub answers 401 RepoNotFound for a missing repo (as for a private
    one): ENOENT, one log line saying so (and that a private repo looks the same without a
    token), and the answer is remembered."""
    with mounted(t) as m:
        missing = repo_dir(m, "acme/no-such-repo")
        e1 = errno_of(os.stat, missing)
        check_eq(errno_name(e1), "ENOENT", "missing repo")
        check_eq(len(m.log_lines("acme/no-such-repo: repository not found (HTTP 401 RepoNotFound)",
                                 "A private repo looks the same without a token")), 1,
                 "log lines for the missing repo")
        # A mistyped legacy id (no org) says the same.
        check_eq(errno_name(errno_of(os.stat, m.path("huggingface", "gpt3"))), "ENOENT", "gpt3")
        check_eq(len(m.log_lines("huggingface: gpt3: repository not found", "HF_TOKEN")), 1,
                 "log lines for gpt3")
        first = count(t, host="hub")
        check(count(t, repo="model:acme/no-such-repo") >= 1, "the Hub was not asked")
        drop_kernel_dentries()
        check_eq(errno_of(os.stat, missing), e1, "errno of the second stat")
        check_eq(errno_name(errno_of(os.stat, m.path("huggingface", "gpt3"))), "ENOENT", "gpt3")
        check_eq(count(t, host="hub"), first, "Hub requests after the second stat")


@test
def ls_lR_request_budget_and_pagination(t):
    """ls -lR of a repo whose tree takes three pages: every file listed, one revision call
    plus the tree pages, no resolve or CDN request; a second ls -lR costs nothing."""
    want = files_of(t, fx.MANY_REPO)
    pages = -(-(len(want) + len(fixture_dirs(want))) // 100)
    with mounted(t) as m:
        root = repo_dir(m, fx.MANY_REPO)
        out = subprocess.run(["ls", "-lR", root], capture_output=True, text=True, timeout=WAIT)
        check_eq(out.returncode, 0, "ls -lR status (%s)" % out.stderr[-300:])
        listed = set(re.findall(r"\bf\d{3}\.txt\b", out.stdout))
        check_eq(len(listed), fx.MANY_FILES, "files in ls -lR")
        files, dirs = walk(root)
        check_eq(files, {p: f["size"] for p, f in want.items()}, "paginated listing")
        repo = "model:" + fx.MANY_REPO
        revision = [r for r in reqs(t, kind="api", repo=repo) if "/revision/" in r["path"]
                    or r["path"].rstrip("/").endswith(fx.MANY_REPO)]
        tree = [r for r in reqs(t, kind="api", repo=repo) if "/tree/" in r["path"]]
        total = count(t, host="hub") + count(t, host="cdn")
        print("# ls -lR of %d files, %d folders: %d requests in all (%d revision, %d tree pages, "
              "%d other)" % (len(want), len(dirs), total, len(revision), len(tree),
                             total - len(revision) - len(tree)))
        check_eq(len(revision), 1, "revision calls")
        check_eq(len(tree), pages, "tree pages")
        check(all("cursor=" in r["query"] for r in tree[1:]), "pages follow the Link header")
        check_eq(count(t, kind="resolve") + count(t, kind="cdn"), 0, "resolve + CDN requests")
        subprocess.run(["ls", "-lR", root], capture_output=True, timeout=WAIT, check=True)
        drop_kernel_dentries()
        subprocess.run(["ls", "-lR", root], capture_output=True, timeout=WAIT, check=True)
        check_eq(count(t, host="hub") + count(t, host="cdn"), total, "requests of two more ls -lR")


@test
def rate_limit_is_retried(t):
    """A 429 with Retry-After on an API call and on a resolve: retried after the pause, and
    the log names the limit ("api", "resolvers")."""
    srv = t.shared.srv
    f = files_of(t, fx.LEGACY_REPO)["config.json"]
    srv.rate_limit(1, "api")
    with mounted(t) as m:
        root = repo_dir(m, fx.LEGACY_REPO)
        check_eq(set(os.listdir(root)), set(files_of(t, fx.LEGACY_REPO)), "listing after a 429")
        limited = reqs(t, status=429)
        check_eq(len(limited), 1, "429 answers")
        again = [r for r in reqs(t, kind="api", path_substring=limited[0]["path"])
                 if r["start"] > limited[0]["start"]]
        check(again, "the rate-limited call was not retried")
        check(again[0]["start"] - limited[0]["end"] >= 0.9,
              "retried after %.2f s, Retry-After was 1" % (again[0]["start"] - limited[0]["end"]))
        check([line for line in m.log().splitlines() if "429" in line and "api" in line],
              "no log line names the api limit")
        srv.rate_limit(1, "resolve")
        check_eq(read(os.path.join(root, "config.json")), content(t, f), "config.json after a 429")
        check_eq(len(reqs(t, status=429)), 2, "429 answers")
        check([line for line in m.log().splitlines() if "resolvers" in line],
              "no log line names the resolvers limit")


@test
def mismatch_is_eio_and_not_cached(t):
    """Bytes that do not match the Hub's oid (LFS sha256, git sha1): EIO, a "mismatch" log
    line, nothing under blobs/, no readable name; a good file beside them reads fine."""
    want = files_of(t, fx.CORRUPT_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.CORRUPT_REPO)
        check_eq(read(os.path.join(root, "good.txt")), content(t, want["good.txt"]), "good.txt")
        for p in ("bad.bin", "bad.txt"):
            check_eq(errno_name(read_errno(os.path.join(root, p))), "EIO", p)
            check_eq(errno_name(read_errno(os.path.join(root, p))), "EIO", p + " again")
        check(len(m.log_lines("mismatch")) >= 2, "mismatch log lines: %d" % len(m.log_lines("mismatch")))
        for p in ("bad.bin", "bad.txt"):
            f = want[p]
            expected = f.get("lfs", {}).get("oid") or f["oid"]
            check(m.log_lines("/%s/%s: " % (fx.CORRUPT_REPO, p), "mismatch", expected, "got "),
                  "no log line names %s, 'mismatch' and both digests" % p)
    names = {os.path.basename(p) for p in all_files(os.path.join(t.cache, "blobs"))}
    for p in ("bad.bin", "bad.txt"):
        f = want[p]
        for digest in (f["sha256"], f["served_sha256"], f["oid"], f.get("lfs", {}).get("oid")):
            check(not any(n.startswith(str(digest)) for n in names), "%s: a blob %s is cached" % (p, digest))
        check(not [q for q in all_files(t.cache) if q.endswith("/" + p)], "a readable name for " + p)


@test
def offline_after_online(t):
    """HF_HUB_OFFLINE=1 after an online mount: the repo lists and its cached files read
    with no request at all; a file not cached is EIO, an unknown repo ENOENT."""
    want = files_of(t, fx.ONNX_REPO)
    with mounted(t) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        walk(root)
        for p in ("config.json", "model.onnx.data"):
            read(os.path.join(root, p))
    t.shared.srv.clear_log()
    with mounted(t, env={"HF_HUB_OFFLINE": "1"}) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        files, dirs = walk(root)
        check_eq(files, {p: f["size"] for p, f in want.items()}, "offline listing")
        for p in ("config.json", "model.onnx.data"):
            check_eq(read(os.path.join(root, p)), content(t, want[p]), "offline " + p)
        check_eq(errno_name(read_errno(os.path.join(root, "README.md"))), "EIO", "an uncached file")
        check(m.log_lines("/%s/README.md: " % fx.ONNX_REPO, "offline"),
              "no log line names README.md and says it is offline")
        check_eq(errno_name(errno_of(os.stat, repo_dir(m, fx.LEGACY_REPO))), "ENOENT",
                 "a repo never seen")
        hf_requests = count(t, kind="api") + count(t, kind="resolve") + count(t, kind="cdn")
        check_eq(hf_requests, 0, "Hub and CDN requests while offline")


@test
def hostile_tree_paths_are_skipped(t):
    """Tree entries with "..", a leading "/", a control character, an empty component or
    a 256-byte name are not shown, and are logged."""
    with mounted(t) as m:
        root = repo_dir(m, fx.HOSTILE_REPO)
        check_eq(sorted(os.listdir(root)), ["good.txt"], "listing")
        check_eq(read(os.path.join(root, "good.txt")), b"good\n", "good.txt")
        check_eq(errno_name(errno_of(os.stat, os.path.join(root, "a"))), "ENOENT", "a//b.txt's folder")
        check(len(m.log_lines(fx.HOSTILE_REPO)) >= 1 or len(m.log_lines("skip")) >= 1,
              "no log line about the skipped paths")
    check(not [p for p in all_files(t.dir) if "escape" in p or "abs.txt" in p or "up.txt" in p],
          "a hostile name reached the disk")


@test
def root_lists_cached_and_pinned(t):
    """huggingface/ lists the pinned repos' orgs at once, and the repos looked up, also in a
    later mount of the same cache; never asked from the Hub."""
    with mounted(t, "hf_repos=%s,%s" % (fx.ONNX_REPO, fx.LEGACY_REPO)) as m:
        top = set(os.listdir(m.path("huggingface")))
        check({"acme", "gpt2"} <= top, "pinned in huggingface/: %r" % top)
        check("tiny-onnx" in os.listdir(m.path("huggingface", "acme")), "pinned in acme/")
        # Listed, not just stat'ed: the listing above already gave the kernel these names.
        os.listdir(repo_dir(m, fx.MIRROR_REPO))
        os.listdir(repo_dir(m, fx.LEGACY_REPO))
        before = count(t, host="hub")
        check("mirror" in os.listdir(m.path("huggingface")), "a looked-up org is listed")
        os.listdir(m.path("huggingface", "mirror"))
        check_eq(count(t, host="hub"), before, "Hub requests for listing huggingface/ and an org")
    with mounted(t) as m:
        top = set(os.listdir(m.path("huggingface")))
        check({"gpt2", "mirror"} <= top, "looked up in an earlier mount: %r" % top)
        check("sharded-copy" in os.listdir(m.path("huggingface", "mirror")), "mirror/ in a later mount")


@test
def branch_commit_refreshed_after_ttl(t):
    """main is asked again after hf_ttl: a moved branch shows the new commit's bytes."""
    srv = t.shared.srv
    old = commit_of(t, fx.ONNX_REPO, "v1.0")
    want_old = files_of(t, fx.ONNX_REPO, "v1.0")["config.json"]
    want_new = files_of(t, fx.ONNX_REPO)["config.json"]
    try:
        with mounted(t, "hf_ttl=1") as m:
            path = os.path.join(repo_dir(m, fx.ONNX_REPO), "config.json")
            check_eq(read(path), content(t, want_new), "config.json at main")
            srv.set_ref("model", fx.ONNX_REPO, "main", old)
            deadline = time.monotonic() + 10
            got = None
            while time.monotonic() < deadline:
                time.sleep(1.2)
                drop_kernel_dentries()
                got = read(path)
                if got == content(t, want_old):
                    break
            check_eq(got, content(t, want_old), "config.json after main moved and hf_ttl passed")
    finally:
        srv.set_ref("model", fx.ONNX_REPO, "main", commit_of(t, fx.ONNX_REPO))


@test
def branch_move_no_stale_listing(t):
    """The kernel keeps listings and names (test_kernel_cache.py); none is dropped by hand
    here. Once main has moved and hf_ttl has passed, listing the repo shows the new commit's
    names, sizes and bytes: onnx/extra.txt, only on the new commit, appears in a folder the
    kernel had listed; moved back, it is gone."""
    srv = t.shared.srv
    old, new = commit_of(t, fx.ONNX_REPO, "v1.0"), commit_of(t, fx.ONNX_REPO)
    files = {old: files_of(t, fx.ONNX_REPO, "v1.0"), new: files_of(t, fx.ONNX_REPO)}

    def want(commit):
        return ({p: f["size"] for p, f in files[commit].items()}, fixture_dirs(files[commit]))

    try:
        srv.set_ref("model", fx.ONNX_REPO, "main", old)
        with mounted(t, "hf_ttl=1") as m:
            root = repo_dir(m, fx.ONNX_REPO)
            for commit in (old, new, old):
                srv.set_ref("model", fx.ONNX_REPO, "main", commit)
                time.sleep(1.5)  # past hf_ttl: the next listing asks for main again
                # onnx/ first: a listing of the repo would give the kernel onnx/'s new
                # attributes, whose new mtime alone drops the kernel's copy of its listing.
                check_eq("extra.txt" in os.listdir(os.path.join(root, "onnx")), commit == new,
                         "onnx/extra.txt listed at %.8s" % commit)
                wait_for(lambda: walk(root) == want(commit), 10,
                         "the listing of main at %.8s" % commit)
                check_eq(walk(root), want(commit), "the listing again, from the kernel's cache")
                check_eq(read(os.path.join(root, "config.json")),
                         content(t, files[commit]["config.json"]),
                         "config.json at %.8s" % commit)
    finally:
        srv.set_ref("model", fx.ONNX_REPO, "main", commit_of(t, fx.ONNX_REPO))


@test
def concurrent_lookups_single_flight(t):
    """Once a branch's TTL has passed, eight threads looking up eight names in the repo at
    once (the kernel serialises lookups of one name, not of different names) while the Hub
    is slow cause one revision call between them, and all get their answer."""
    repo = "model:" + fx.ONNX_REPO
    # The TTL is counted in whole seconds: with hf_ttl=1 a commit checked at x.99 s would
    # be stale again 10 ms later, and a late thread would ask again. With 2, it stays fresh
    # for at least a second after the answer.
    with mounted(t, "hf_ttl=2") as m:
        root = repo_dir(m, fx.ONNX_REPO)
        names = sorted(os.listdir(root))
        # Four folders, pinned so the kernel keeps their dentries; two names looked up in each
        # (lookups in one folder may be serialised by the kernel, lookups in four are not).
        dirs = [os.path.join(root, d) for d in ("", "onnx", "sub", "sub/dir")]
        pins = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in dirs]
        try:
            time.sleep(2.5)
            t.shared.srv.set_api_delay(0.5)
            before = count(t, kind="api", repo=repo, path_substring="/revision/")
            results, errors = [], []

            def look(i):
                try:
                    path = os.path.join(dirs[i % len(dirs)], "missing-%d" % i)
                    results.append(errno_of(os.stat, path))
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
            threads = [threading.Thread(target=look, args=(i,)) for i in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(WAIT)
        finally:
            for fd in pins:
                os.close(fd)
        check_eq(errors, [], "errors")
        check_eq(results, [errno.ENOENT] * 8, "errno of the eight lookups")
        check_eq(count(t, kind="api", repo=repo, path_substring="/revision/") - before, 1,
                 "revision calls by eight concurrent lookups of a stale branch")
        check_eq(sorted(os.listdir(root)), names, "listing after the refresh")


@test
def repo_metadata_bounded_and_kept_on_disk(t):
    """With hf_max_repos=2, a third repo evicts the least recently used from memory; looking
    it up again reads its kept file list from disk: no new tree call."""
    repos = (fx.ONNX_REPO, fx.SHARDED_REPO, fx.MIRROR_REPO)
    with mounted(t, "hf_max_repos=2", "hf_ttl=3600") as m:
        for r in repos:
            os.listdir(repo_dir(m, r))
        trees = count(t, kind="api", path_substring="/tree/")
        check_eq(trees, 3, "tree calls for three repos")
        drop_kernel_dentries()
        for r in repos:
            check_eq(sorted(os.listdir(repo_dir(m, r))),
                     sorted({p.split("/")[0] for p in files_of(t, r)}), "listing of " + r)
        check_eq(count(t, kind="api", path_substring="/tree/"), trees,
                 "tree calls after the repos were evicted from memory")
        check_eq(sum(count(t, kind="api", repo="model:" + r, path_substring="/revision/")
                     for r in repos), 3, "revision calls (each branch asked once within hf_ttl)")


@test
def blob_shared_with_the_onnx_hub(t):
    """The ONNX zoo's files are LFS files of an HF repo: a model the zoo's manifest names by
    the sha256 of bytes read through huggingface/ is served from that one blob, offline."""
    f = files_of(t, fx.ONNX_REPO)["model.onnx"]
    sha, data = f["lfs"]["oid"], content(t, f)
    with mounted(t) as m:
        check_eq(sha256_file(os.path.join(repo_dir(m, fx.ONNX_REPO), "model.onnx")), sha, "HF read")
    manifest = [{"model": "shared-model", "model_path": "validated/x/shared/model/shared-1.onnx",
                 "opset_version": 1, "metadata": {"model_sha": sha, "model_bytes": len(data)}}]
    index = os.path.join(t.cache, ".index", "onnx", "ONNX_HUB_MANIFEST.json")
    os.makedirs(os.path.dirname(index), exist_ok=True)
    with open(index, "w") as out:
        json.dump(manifest, out)
    before = count(t)
    with mounted(t, "offline") as m:
        check_eq(read(m.path("onnx", "shared-model", "model.onnx")), data, "ONNX read, offline")
    check_eq(count(t), before, "requests by the offline mount")
    blob = os.path.join(t.cache, "blobs", "sha256", sha)
    named = os.path.join(t.cache, "onnx", "shared-model", "opset-1", "model.onnx")
    check_eq(os.stat(named).st_ino, os.stat(blob).st_ino, "inode of the ONNX hub's name")
    check_eq(os.stat(blob).st_nlink, 3, "names of the blob (itself, HF's, the zoo's)")


@test
def offline_from_the_hf_cache_alone(t):
    """HF_HUB_OFFLINE=1 on an empty cache of ours: the repos huggingface_hub keeps (refs,
    snapshots, blobs) are listed and served from its cache, verified, with no request."""
    want = files_of(t, fx.ONNX_REPO)
    commit = commit_of(t, fx.ONNX_REPO)
    cached = {p: want[p] for p in ("config.json", "onnx/model.onnx", "model.onnx.data")}
    prefill_hf_cache(t, fx.ONNX_REPO, commit, cached)
    hf_requests = lambda: count(t, kind="api") + count(t, kind="resolve") + count(t, host="cdn")  # noqa: E731
    before = hf_requests()
    with mounted(t, env={"HF_HUB_OFFLINE": "1"}) as m:
        root = repo_dir(m, fx.ONNX_REPO)
        files, _ = walk(root)
        check_eq(files, {p: f["size"] for p, f in cached.items()}, "offline listing")
        for p in sorted(cached):
            check_eq(read(os.path.join(root, p)), content(t, cached[p]), p)
        check_eq(errno_of(os.stat, os.path.join(root, "README.md")), errno.ENOENT,
                 "a file the client never fetched")
        check(m.log_lines("snapshot"), "no log line says the snapshot was used")
    check_eq(hf_requests(), before, "Hub and CDN requests while offline (the zoo is online)")


@test
def api_calls_paced_within_the_budget(t):
    """With hf_api_budget=3/2, the fourth API call of a window waits for the next window
    (the Hub's published limit kept, not run into), with a log line; nothing is refused."""
    with mounted(t, "hf_api_budget=3/2") as m:
        check_eq(sorted(os.listdir(repo_dir(m, fx.ONNX_REPO))),
                 sorted({p.split("/")[0] for p in files_of(t, fx.ONNX_REPO)}), "listing")
        calls = reqs(t, kind="api")
        check(len(calls) >= 4, "API calls: %d" % len(calls))
        gap = calls[3]["start"] - calls[0]["start"]
        print("# hf_api_budget=3/2: the fourth API call started %.2f s after the first" % gap)
        check(gap >= 1.0, "the fourth call was not held (%.2f s after the first)" % gap)
        check(m.log_lines("API calls in 2 s already"), "no log line says calls are held")
        check_eq(count(t, status=429), 0, "429 answers")


if __name__ == "__main__":
    run(shared_setup, before_each)
