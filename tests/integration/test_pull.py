#!/usr/bin/env python3
"""Integration tests of `omnihub pull` against the local Hugging Face Hub imitation: --include and
--exclude, --local-dir (its layout, how each file gets there, names refused), files fetched at
once, and the paths printed for scripts. Not for pull's progress bar or its sharing of a download
with a mount (test_omnihub.py), nor for the mount itself (test_hf_mount.py).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB=BUILDDIR/omnihub OMNIHUB_FUSE=BUILDDIR/omnihub-fuse \
#         /usr/bin/python3 tests/integration/test_pull.py [PART]

import json
import os
import resource
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (HfFixture, check, check_eq, hf_setup, run,  # noqa: E402
                           run_omnihub, sha256_file, test)

import make_hf_repos as fx  # noqa: E402

TOKEN = "hf_TestTokenValue0123456789abcdefXYZ"
COMMAND_TIMEOUT = 120.0
REPO = "huggingface/" + fx.ONNX_REPO


class Shared(HfFixture):
    def __init__(self, run_dir):
        super().__init__(run_dir, token=TOKEN)
        self.no_catalogs = os.path.join(run_dir, "no-catalogs")
        os.makedirs(self.no_catalogs)


def shared_setup(run_dir):
    return hf_setup(Shared(run_dir))


def before_each(shared):
    shared.srv.set_resolve_delay(0)
    shared.srv.clear_log()


def omnihub(t, *args, want=0, env=None):
    srv = t.shared.srv
    opts = ["cache=" + t.cache] + srv.options() + ["system_catalogs=" + t.shared.no_catalogs,
                                                    "catalogs=" + t.shared.no_catalogs]
    return run_omnihub(t, args, opts, dict(srv.daemon_env(), **(env or {})), want,
                       COMMAND_TIMEOUT)


def repo_files(t, repo_id=fx.ONNX_REPO):
    return fx.files_at(fx.find_repo(t.shared.desc, repo_id))


def resolved(t):
    """The repo paths whose bytes the Hub was asked for, sorted."""
    t.shared.srv.wait_idle()
    return sorted(r.get("file") or r["path"] for r in t.shared.srv.requests(kind="resolve"))


def blob_inodes(t):
    """{(st_dev, st_ino): name} of every complete blob of the cache (a file that is not in
    the Hub's LFS is kept by its git sha1, so it is found by inode, not by name)."""
    out = {}
    for d, _, names in os.walk(os.path.join(t.cache, "blobs")):
        for n in names:
            st = os.stat(os.path.join(d, n))
            out[(st.st_dev, st.st_ino)] = os.path.join(d, n)
    return out


def files_below(root):
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)


@test
def include_and_exclude_choose_the_files(t):
    """--include and --exclude are shell globs over the path inside the repo, as hf download
    takes them: '*' crosses '/', a glob ending in '/' is a folder's content, an exclude wins.
    Only the chosen files are asked of the Hub, and each is printed, verified, on a line."""
    files = repo_files(t)
    res = omnihub(t, "pull", REPO, "--include", "*.json", "--include", "onnx/",
                  "--exclude", "tokenizer*")
    want = ["config.json", "onnx/extra.txt", "onnx/model.onnx"]
    check_eq(resolved(t), want, "files asked of the Hub")
    lines = res.stdout.splitlines()
    check_eq(len(lines), 3, "lines printed: %r" % lines)
    for line, path in zip(sorted(lines, key=lambda p: p.split("@", 1)[1]), want):
        check(line.startswith(t.cache + "/") and line.endswith("/" + path), "line %r" % line)
        check_eq(sha256_file(line), files[path]["sha256"], "sha256 of " + line)
    t.shared.srv.clear_log()
    res = omnihub(t, "pull", REPO, "--exclude", "*.onnx*", "--exclude", "sub/",
                  "--exclude=.git*")
    rest = sorted(p for p in files if not (".onnx" in p or p.startswith(("sub/", ".git"))))
    check_eq(resolved(t), sorted(set(rest) - set(want)), "files asked the second time")
    check_eq(sorted(line.split("@", 1)[1].split("/", 1)[1] for line in res.stdout.splitlines()),
             rest, "files printed the second time (the cached ones too)")
    res = omnihub(t, "pull", REPO, "--include", "*.nothing")
    check_eq(res.stdout, "", "nothing printed when nothing matches")
    check("no file matches" in res.stderr, "a word when nothing matches: %r" % res.stderr)
    check(res.stderr.endswith("(omnihub ls -r %s lists the names)\n" % REPO),
          "nothing matches: the next step: %r" % res.stderr)
    listed = omnihub(t, "ls", "-r", REPO).stdout
    check(all(os.path.basename(p) in listed for p in files), "ls -r lists the names: %r" % listed)


@test
def local_dir_holds_hard_links_to_the_blobs(t):
    """--local-dir DIR places each file at DIR/<path in the repo>, filled from the cache: on
    the cache's filesystem without reflinks, a hard link to the blob (the same inode). A
    second pull re-downloads nothing and keeps the links."""
    files = repo_files(t)
    local = os.path.join(t.dir, "local", "tiny")
    res = omnihub(t, "--json", "pull", REPO, "--local-dir", local)
    doc = json.loads(res.stdout)
    check_eq(files_below(local), sorted(files), "the folder's layout")
    check_eq(doc["local_dir"], local, "local_dir")
    check_eq(sorted(p["local"] for p in doc["pulled"]),
             sorted(os.path.join(local, p) for p in files), "local paths in the JSON")
    fs_reflinks = {p["link"] for p in doc["pulled"]} == {"reflink"}
    blobs = blob_inodes(t)
    for path, f in files.items():
        st = os.stat(os.path.join(local, path))
        if fs_reflinks:
            check((st.st_dev, st.st_ino) not in blobs, "a reflink is its own inode: " + path)
        else:
            check((st.st_dev, st.st_ino) in blobs, "%s is no blob's inode" % path)
        check_eq(sha256_file(os.path.join(local, path)), f["sha256"], "sha256 of " + path)
    if not fs_reflinks:
        check_eq({p["link"] for p in doc["pulled"]}, {"hardlink"}, "how the files went")
    check_eq(len(resolved(t)), len(files), "each file asked of the Hub once")
    t.shared.srv.clear_log()
    res = omnihub(t, "pull", REPO, "--local-dir", local + "/")
    check_eq(sorted(res.stdout.splitlines()), sorted(os.path.join(local, p) for p in files),
             "paths printed with --local-dir")
    check_eq(resolved(t), [], "files asked again")
    for path in files:
        st = os.stat(os.path.join(local, path))
        check(fs_reflinks or (st.st_dev, st.st_ino) in blobs,
              "%s is no blob's inode after the second pull" % path)


@test
def local_dir_on_another_filesystem_gets_copies(t):
    """On another filesystem (tmpfs), the files are copied from the cache: right bytes, their
    own inodes, and still no second download."""
    files = repo_files(t)
    omnihub(t, "pull", REPO)
    t.shared.srv.clear_log()
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        local = os.path.join(shm, "tiny")
        res = omnihub(t, "--json", "pull", REPO, "--local-dir", local)
        doc = json.loads(res.stdout)
        check_eq({p["link"] for p in doc["pulled"]}, {"copy"}, "how the files went")
        check_eq(files_below(local), sorted(files), "the folder's layout")
        blobs = blob_inodes(t)
        for path, f in files.items():
            st = os.stat(os.path.join(local, path))
            check((st.st_dev, st.st_ino) not in blobs, "a copy is its own inode: " + path)
            check_eq(sha256_file(os.path.join(local, path)), f["sha256"], "sha256 of " + path)
    check_eq(resolved(t), [], "files asked of the Hub for the copies")


@test
def local_dir_never_writes_outside(t):
    """Names that would lead out of DIR never do: the Hub's hostile tree entries (../x,
    /abs, dir/../../x) are not placed, and a link planted in DIR where a folder goes is
    refused (the pull fails, naming the file), nothing written where it points."""
    outside = os.path.join(t.dir, "outside")
    os.makedirs(outside)
    local = os.path.join(t.dir, "evil", "inside")
    omnihub(t, "pull", "huggingface/evil/paths", "--local-dir", local)
    check_eq(files_below(os.path.join(t.dir, "evil")), ["inside/good.txt"],
             "what the hostile repo left")
    check(not os.path.exists(os.path.join(t.dir, "escape.txt"))
          and not os.path.exists("/abs.txt"), "a hostile name was written outside")
    planted = os.path.join(t.dir, "planted")
    os.makedirs(planted)
    os.symlink(outside, os.path.join(planted, "sub"))
    res = omnihub(t, "pull", REPO, "--include", "sub/*", "--local-dir", planted, want=1)
    check("sub/dir/file.txt" in res.stderr and "cannot place it" in res.stderr,
          "the refusal names the file: %r" % res.stderr)
    check_eq(files_below(outside), [], "written through the planted link")
    check_eq(res.stdout, "", "nothing printed for a file not placed")


@test
def files_are_fetched_at_once(t):
    """Files are fetched several at once, up to --max-workers (default: the connections
    setting); with --max-workers 1 one after another. Judged by the Hub's log: requests
    that overlap, with every answer held a moment."""
    t.shared.srv.set_resolve_delay(0.4)

    def most_at_once():
        t.shared.srv.wait_idle()
        recs = t.shared.srv.requests(kind="resolve")
        return max(sum(1 for o in recs if o["start"] <= r["start"] < o["end"]) for r in recs)

    omnihub(t, "pull", "huggingface/" + fx.MANY_REPO + "/files/00", "--max-workers", "1",
            "--include", "f00[0-5].txt")
    check_eq(most_at_once(), 1, "requests at once with --max-workers 1")
    t.shared.srv.clear_log()
    res = omnihub(t, "pull", "huggingface/" + fx.MANY_REPO + "/files/01",
                  "--include", "f05[0-7].txt")
    check_eq(len(res.stdout.splitlines()), 8, "files pulled")
    at_once = most_at_once()
    print("# 8 files, default workers: %d requests at once" % at_once)
    check(at_once >= 4, "requests at once by default: %d" % at_once)
    res = omnihub(t, "pull", REPO, "--max-workers", "0", want=2)
    check("--max-workers" in res.stderr, "the refusal: %r" % res.stderr)


@test
def waiting_for_files_does_not_spin(t):
    """While its files arrive, pull sleeps between drawing the bar: its CPU time stays far
    below the time it waits. (Before: the wait's deadline was on another clock than the
    condition's, long past, and pull spun a core for as long as the files took.)"""
    t.shared.srv.set_resolve_delay(1.0)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    omnihub(t, "pull", "huggingface/" + fx.MANY_REPO + "/files/02", "--max-workers", "1",
            "--include", "f10[0-2].txt")
    waited = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("# pull of 3 files held 1 s each: %.2f s CPU in %.2f s" % (cpu, waited))
    check(waited >= 3.0, "the files were held: %.2f s" % waited)
    check(cpu < waited / 2, "CPU time %.2f s of %.2f s waiting" % (cpu, waited))


@test
def printed_paths_serve_scripts(t):
    """stdout holds only the paths, one a line, in the order given; what a person reads
    ('pulled ...') goes to stderr: $(omnihub pull ...) gives files to open."""
    files = repo_files(t)
    res = omnihub(t, "pull", REPO + "/config.json", REPO + "/onnx/model.onnx")
    lines = res.stdout.splitlines()
    check_eq([line.rsplit("/", 1)[1] for line in lines], ["config.json", "model.onnx"],
             "paths in order")
    check_eq(sha256_file(lines[1]), files["onnx/model.onnx"]["sha256"], "the printed file")
    check("pulled %s/config.json" % REPO in res.stderr, "stderr: %r" % res.stderr)
    check("\r" not in res.stdout + res.stderr, "no carriage return when piped")
    local = os.path.join(t.dir, "one")
    res = omnihub(t, "pull", REPO + "/onnx/model.onnx", "--local-dir", local)
    check_eq(res.stdout, os.path.join(local, "model.onnx") + "\n",
             "a file given goes to DIR/<its name>")


@test
def local_dir_that_cannot_be_made_says_give_another(t):
    """A --local-dir that cannot be made (below a plain file) fails saying so, with the next
    step: another --local-dir, which works."""
    plain = os.path.join(t.dir, "plain")
    with open(plain, "w") as f:
        f.write("a file\n")
    res = omnihub(t, "pull", REPO + "/config.json", "--local-dir", plain + "/sub", want=1)
    check_eq(res.stderr, "omnihub: %s/sub: cannot make the folder: Not a directory (give "
             "another --local-dir)\n" % plain, "the folder that cannot be made")
    res = omnihub(t, "pull", REPO + "/config.json", "--local-dir", os.path.join(t.dir, "other"))
    check_eq(res.stdout, os.path.join(t.dir, "other", "config.json") + "\n", "another one")


@test
def refused_and_unknown_repos_name_the_next_step(t):
    """A gated repo pulled without a token: the refusal ends with the token's step (and the
    hub's warning still names the page to ask for access), in --json too as "hint"; with the
    token, whoami and the pull work. A repo the Hub does not list: its search, which finds
    it with the token; a name inside a repo: the repo's listing."""
    gated = "huggingface/%s/config.json" % fx.GATED_REPO
    step = "set HF_TOKEN, or run `hf auth login`, with a token that has access; omnihub " \
           "whoami checks it"
    res = omnihub(t, "pull", gated, want=1)
    check(res.stderr.endswith("omnihub: %s: Permission denied (%s)\n" % (gated, step)),
          "the refusal's next step: %r" % res.stderr)
    check("Ask for access at %s/%s" % (t.shared.srv.endpoint, fx.GATED_REPO) in res.stderr,
          "the hub's warning names the page: %r" % res.stderr)
    doc = json.loads(omnihub(t, "--json", "pull", gated, want=1).stdout)
    check_eq(doc["failed"], [{"path": gated, "error": "Permission denied", "hint": step}],
             "pull --json's refusal")
    check("test-user" in omnihub(t, "whoami", env={"HF_TOKEN": TOKEN}).stdout, "whoami")
    omnihub(t, "pull", gated, env={"HF_TOKEN": TOKEN})
    private = "huggingface/" + fx.PRIVATE_REPO
    res = omnihub(t, "ls", private, want=4)
    name = fx.PRIVATE_REPO.split("/")[1]
    check(res.stderr.endswith("(omnihub search --hub huggingface %s searches for it)\n" % name),
          "a repo not listed: %r" % res.stderr)
    res = omnihub(t, "search", "--hub", "huggingface", name, env={"HF_TOKEN": TOKEN})
    check_eq(res.stdout, private + "\n", "the search finds it with the token")
    # Offline, the Hub is not asked: going online is the step, and pulling while online.
    res = omnihub(t, "--offline", "ls", REPO, want=4)
    check(res.stderr.endswith("(run it without --offline, or omnihub pull it while online)\n"),
          "a repo not cached, offline: %r" % res.stderr)
    omnihub(t, "pull", REPO + "/config.json")
    check("config.json" in omnihub(t, "--offline", "ls", REPO).stdout, "listed offline")
    res = omnihub(t, "info", REPO + "/nope/x.json", want=4)
    check(res.stderr.endswith("(omnihub ls %s lists what there is)\n" % REPO),
          "a name inside a repo: %r" % res.stderr)
    check("config.json" in omnihub(t, "ls", REPO).stdout, "the repo's listing")


if __name__ == "__main__":
    run(shared_setup, before_each)
