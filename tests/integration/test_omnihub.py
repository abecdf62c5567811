#!/usr/bin/env python3
"""Integration tests of the omnihub command against the local ONNX zoo: every subcommand, its text and
--json output, exit codes, and its sharing of the cache with a running mount. Not for the mount's own
behaviour (test_onnx_mount.py) nor for unit checks (tests/unit).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB=BUILDDIR/omnihub OMNIHUB_FUSE=BUILDDIR/omnihub-fuse \
#         /usr/bin/python3 tests/integration/test_omnihub.py [PART]

import contextlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, check, check_eq, count_requests, make_zoo,  # noqa: E402
                           omnihub_binary, poll_until, run, run_omnihub, settle_logs,
                           sha256_bytes, sha256_file, test)

from zoo_server import ZooServer  # noqa: E402

LARGE_MIB = 16
# The throttled zoo's CDN: bytes/s per response. With 4 MiB pieces, the large model comes
# in 4 responses at once: about 4 s, long enough to start a second reader and to watch.
SLOW_RATE = 1 << 20
COMMAND_TIMEOUT = 60.0

# Exit codes (src/cli/cmd.h, omnihub(1)).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CORRUPT, EXIT_NOT_FOUND = 0, 1, 2, 3, 4


class Zoo:
    """The fixture and two servers of it: one fast, one throttled."""

    def __init__(self, fixture_dir, entries, fast, slow):
        self.fixture_dir = fixture_dir
        self.entries = entries
        self.fast = fast
        self.slow = slow

    def model(self, model, opset):
        found = [e for e in self.entries if e["model"] == model and e["opset"] == opset]
        check_eq(len(found), 1, "fixture entries for %r opset %d" % (model, opset))
        return found[0]

    def served(self, e):
        with open(os.path.join(self.fixture_dir, "www", "cdn", e["model_path"]), "rb") as f:
            return f.read()


@contextlib.contextmanager
def zoo_servers(run_dir):
    fixture_dir = os.path.join(run_dir, "fixture")
    entries = make_zoo(fixture_dir, "--large-mib", str(LARGE_MIB))
    with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as fast, \
            ZooServer(fixture_dir, os.path.join(run_dir, "zoo-slow"), rate=SLOW_RATE) as slow:
        yield Zoo(fixture_dir, entries, fast, slow)


def clear_logs(zoo):
    zoo.fast.clear_logs()
    zoo.slow.clear_logs()


# Paths in the mount (and in the command) of the fixture's models.
SMALL = ("ResNet18", 9, "onnx/resnet18/opset-9/model.onnx")
OTHER = ("AvgPool2d", 12, "onnx/avgpool2d/model.onnx")
CONV = ("Conv2d", 13, "onnx/conv2d/opset-13/model.onnx")
LARGE = ("BigGemm", 13, "onnx/biggemm/model.onnx")


def entry(t, which):
    return t.shared.model(which[0], which[1])


def hub_options(t, slow=False):
    return ["cache=" + t.cache] + (t.shared.slow if slow else t.shared.fast).options()


def options_of(t, slow=False, options=(), hub=True):
    """-o options: t's cache and the zoo's (unless hub is False), then options."""
    return (hub_options(t, slow) if hub else []) + list(options)


def command(t, *args, slow=False, options=(), hub=True):
    """The omnihub command line with t's cache and the zoo's options before args."""
    opts = options_of(t, slow, options, hub)
    return [omnihub_binary()] + (["-o", ",".join(opts)] if opts else []) + list(args)


def omnihub(t, *args, want=EXIT_OK, slow=False, options=(), hub=True, env=None):
    """Runs omnihub to its end with piped output; checks its exit status. env: variables
    added to t.env."""
    return run_omnihub(t, args, options_of(t, slow, options, hub), env, want, COMMAND_TIMEOUT)


def omnihub_json(t, *args, want=EXIT_OK, **kwargs):
    res = omnihub(t, "--json", *args, want=want, **kwargs)
    try:
        return json.loads(res.stdout)
    except ValueError as err:
        raise AssertionError("omnihub --json %s printed no JSON document (%s): %r"
                             % (" ".join(args), err, res.stdout))


def run_on_terminal(t, *args, slow=False):
    """Runs omnihub with a pseudo-terminal as its stdout and stderr; returns (status, bytes)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(command(t, *args, slow=slow), stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=slave, env=t.env)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + COMMAND_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    status = proc.wait(COMMAND_TIMEOUT)
    t.note("$ (on a terminal) %s -> %d\n%r" % (" ".join(args), status, bytes(out)))
    return status, bytes(out)


def blob_path(t, e):
    return os.path.join(t.cache, "blobs", "sha256", e["sha256"])


def cdn_bytes(zoo, e):
    """Bytes the CDN sent of e's model, and the number of requests for it."""
    settle_logs(zoo)
    records = [r for r in zoo.requests("cdn", e["model_path"]) if r["method"] == "GET"]
    return sum(r["bytes"] for r in records), len(records)


# ----------------------------------------------------------------------------- tests

@test
def usage_help_and_exit_codes(t):
    res = omnihub(t, "--help", hub=False)
    for name in ("ls", "info", "pull", "verify", "du", "gc", "config", "where", "--json"):
        check(name in res.stdout, "--help does not mention %s" % name)
    res = omnihub(t, "pull", "--help", hub=False)
    first = res.stdout.splitlines()[0]
    check(first.startswith("usage: omnihub [OPTIONS] pull [--include GLOB]")
          and first.endswith(" PATH..."), "pull --help: %r" % first)
    check("omnihub" in omnihub(t, "--version", hub=False).stdout, "--version names the program")
    for args in (["frobnicate"], ["ls", "--frobnicate"], ["info"], ["pull"], ["gc"],
                 ["gc", "--max", "lots"], ["gc", "--older", "-1"], ["du", "extra"], []):
        res = omnihub(t, *args, want=EXIT_USAGE)
        check(res.stderr.startswith("omnihub: ") and res.stdout == "",
              "usage error of %r: stdout %r, stderr %r" % (args, res.stdout, res.stderr))
    res = omnihub(t, "ls", options=["frobnicate=1"], want=EXIT_USAGE)
    check("frobnicate=1" in res.stderr, "the unknown -o option is named: %r" % res.stderr)
    # Names no hub has, or no file in a hub: 4, with the path in the message.
    for args in (["ls", "nohub"], ["ls", "onnx/no-such-model"], ["info", "onnx/no-such-model"],
                 ["pull", "onnx/no-such-model"], ["verify", "onnx/no-such-model"]):
        res = omnihub(t, *args, want=EXIT_NOT_FOUND)
        check(res.stderr.startswith("omnihub: %s: " % args[1]),
              "error line of %r: %r" % (args, res.stderr))


@test
def ls_hubs_touches_no_network(t):
    res = omnihub(t, "ls")
    check("onnx/" in res.stdout.splitlines(), "onnx/ in %r" % res.stdout)
    doc = omnihub_json(t, "ls")
    check("onnx" in [h["name"] for h in doc["hubs"]], "onnx in %r" % doc)
    omnihub(t, "du")
    omnihub_json(t, "du")
    omnihub(t, "verify")
    omnihub(t, "gc", "--max", "1G")
    for host in ("raw", "hub", "cdn"):
        check_eq(count_requests(t.shared.fast, host, method=None), 0,
                 "requests to the zoo's %s host by ls, du, verify and gc" % host)


@test
def ls_and_info_before_and_after_pull(t):
    e = entry(t, CONV)
    res = omnihub(t, "ls", "onnx/conv2d/opset-13")
    # "TYPE SIZE UNIT CACHED NAME DIGEST" for files and archives.
    lines = {f[4]: f for f in (line.split() for line in res.stdout.splitlines())}
    check_eq(sorted(lines), ["model.onnx", "model_with_data/"], "names listed")
    check_eq(lines["model.onnx"], ["file", str(e["bytes"]), "B", "no", "model.onnx",
                                   "sha256:" + e["sha256"]], "the model's line")
    check_eq(lines["model_with_data/"][0], "archive", "type of model_with_data")
    doc = omnihub_json(t, "ls", "onnx/conv2d/opset-13")
    items = {i["name"]: i for i in doc["entries"]}
    check_eq(doc["path"], "onnx/conv2d/opset-13", "path")
    check_eq(items["model.onnx"]["size"], e["bytes"], "size in bytes")
    check_eq(items["model.onnx"]["digest"], "sha256:" + e["sha256"], "digest")
    check_eq(items["model.onnx"]["cached"], False, "cached before the pull")
    check_eq(items["model_with_data"]["type"], "archive", "type of model_with_data")

    info = omnihub_json(t, "info", "/onnx//conv2d/opset-13/model.onnx/")
    check_eq(info["path"], CONV[2], "the path, cleaned")
    check_eq((info["type"], info["size"], info["digest"]), ("file", e["bytes"], "sha256:" + e["sha256"]),
             "type, size, digest")
    check(info["url"].endswith(e["model_path"]) and info["url"].startswith("https://127.0.0.1:"),
          "url %r" % info["url"])
    check_eq((info["cached"], info["where"]), (False, None), "cached before the pull")
    check_eq((info["meta"].get("model"), info["meta"].get("opset")), (e["model"], e["opset"]),
             "meta")
    res = omnihub(t, "info", CONV[2])
    check("digest  sha256:" + e["sha256"] in res.stdout, "digest line in %r" % res.stdout)
    check("cached  no" in res.stdout, "cached line in %r" % res.stdout)

    omnihub(t, "pull", CONV[2])
    info = omnihub_json(t, "info", CONV[2])
    check_eq(info["cached"], True, "cached after the pull")
    check_eq(sha256_file(info["where"]), e["sha256"], "sha256 of " + info["where"])
    res = omnihub(t, "ls", "onnx/conv2d/opset-13")
    line = [f for f in (line.split() for line in res.stdout.splitlines()) if f[4] == "model.onnx"]
    check_eq(line[0][3], "cached", "the model's cache state after the pull")
    doc = omnihub_json(t, "ls", "-r", "onnx/conv2d")
    names = [i["name"] for i in doc["entries"]]
    check("opset-13/model.onnx" in names, "recursive names: %r" % names)


@test
def pull_then_offline_mount(t):
    small, other = entry(t, SMALL), entry(t, OTHER)
    res = omnihub(t, "pull", SMALL[2])
    check_eq(res.stderr, "pulled %s (%d B)\n" % (SMALL[2], small["bytes"]), "pull's stderr")
    check_eq(sha256_file(res.stdout.rstrip("\n")), small["sha256"], "the path pull printed")
    check("\r" not in res.stdout + res.stderr and "\x1b" not in res.stdout + res.stderr,
          "no carriage return or escape in piped output")
    doc = omnihub_json(t, "pull", OTHER[2], SMALL[2])
    check_eq([(p["path"], p["size"], p["already_cached"]) for p in doc["pulled"]],
             [(OTHER[2], other["bytes"], False), (SMALL[2], small["bytes"], True)],
             "pulled, as JSON")
    check_eq(doc["failed"], [], "failed")
    check_eq(sha256_file(doc["pulled"][0]["where"]), other["sha256"], "the pulled file")
    before = cdn_bytes(t.shared.fast, small)
    check_eq(before[0], small["bytes"], "bytes of the small model sent by the CDN")
    clear_logs(t.shared)
    # Offline, against a zoo that does not exist: only the cache can serve it.
    opts = ["cache=" + t.cache, "offline", "onnx_index_url=https://127.0.0.1:1/none.json",
            "onnx_url=https://127.0.0.1:1/"]
    with t.mount(opts) as m:
        with open(m.path(SMALL[2]), "rb") as f:
            check_eq(sha256_bytes(f.read()), small["sha256"], "sha256 read offline")
        with open(m.path(OTHER[2]), "rb") as f:
            check_eq(sha256_bytes(f.read()), other["sha256"], "sha256 read offline")
    for host in ("raw", "hub", "cdn"):
        check_eq(count_requests(t.shared.fast, host, method=None), 0, "requests to " + host)


@test
def verify_finds_and_removes_a_corrupt_file(t):
    conv, small = entry(t, CONV), entry(t, SMALL)
    omnihub(t, "pull", CONV[2], SMALL[2])
    res = omnihub(t, "verify")
    check_eq(res.stdout, "checked 2 files: 2 good, 0 bad\n", "verify of a good cache")
    # Corrupt the blob in place, its size kept (the readable tree's name is the same file).
    path = blob_path(t, conv)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0xFF
        f.seek(0)
        f.write(data)
    check_eq(os.path.getsize(path), conv["bytes"], "size after corrupting")
    res = omnihub(t, "verify", want=EXIT_CORRUPT)
    check(("bad %s: holds sha256:" % path) in res.stdout, "bad line in %r" % res.stdout)
    bad_line = [line for line in res.stdout.splitlines() if line.startswith("bad ")]
    check_eq(len(bad_line), 1, "bad lines")
    check(bad_line[0].endswith("; for %s" % CONV[2]), "the bad blob's model file: %r" % bad_line)
    check(res.stdout.endswith("checked 2 files: 1 good, 1 bad\n"), "summary %r" % res.stdout)
    res = omnihub(t, "verify", CONV[2], want=EXIT_CORRUPT)
    check(("bad %s: holds" % CONV[2]) in res.stdout, "bad line names the path: %r" % res.stdout)
    omnihub(t, "verify", SMALL[2])
    doc = omnihub_json(t, "verify", want=EXIT_CORRUPT)
    check_eq(len(doc["bad"]), 1, "bad files in JSON")
    bad = doc["bad"][0]
    check_eq((bad["blob"], bad["expected"], bad["removed"]),
             (path, "sha256:" + conv["sha256"], False), "the bad one")
    check_eq(bad["actual"], "sha256:" + sha256_bytes(bytes(data)), "what it holds")
    check_eq(bad["names"], [CONV[2]], "the bad blob's names in the tree")
    check_eq(doc["good"], 1, "good files")
    # Kept, the wrong file's summary says how to remove it: the next step, on stderr.
    res = omnihub(t, "verify", want=EXIT_CORRUPT)
    check_eq(res.stderr, "omnihub: verify: 1 wrong file kept (omnihub verify --remove removes "
             "it)\n", "verify's next step")
    res = omnihub(t, "verify", CONV[2], want=EXIT_CORRUPT)
    check("(omnihub verify --remove PATH... removes it)" in res.stderr,
          "verify PATH's next step: %r" % res.stderr)
    res = omnihub(t, "verify", "--remove", want=EXIT_CORRUPT)
    check("(removed)" in res.stdout, "removed in %r" % res.stdout)
    check("--remove" not in res.stderr, "no next step once removed: %r" % res.stderr)
    check(not os.path.exists(path), "the bad blob is gone")
    check(not os.path.exists(os.path.join(t.cache, CONV[2])), "its name in the tree is gone")
    check(os.path.exists(blob_path(t, small)), "the good blob stays")
    omnihub(t, "verify")
    # Pulled again, it is right again.
    omnihub(t, "pull", CONV[2])
    check_eq(sha256_file(path), conv["sha256"], "the blob pulled again")


def next_step(res, what):
    """The next step an error line ends with: its last parenthesis."""
    line = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    found = re.search(r" \(([^()]*)\)$", line)
    check(found is not None, "%s: an error line ending with its next step: %r" % (what, line))
    return found.group(1)


@test
def errors_name_the_next_step(t):
    # A hub that is not there: ls lists those that are; the step works.
    res = omnihub(t, "ls", "nohub", want=EXIT_NOT_FOUND)
    check_eq(next_step(res, "ls nohub"), "omnihub ls lists the hubs", "unknown hub")
    check("onnx/" in omnihub(t, "ls").stdout.splitlines(), "omnihub ls lists onnx/")
    res = omnihub(t, "pull", "nohub/x", want=EXIT_NOT_FOUND)
    check_eq(next_step(res, "pull nohub/x"), "omnihub ls lists the hubs", "pull of no hub")
    # A path that names no hub at all: what a path looks like.
    res = omnihub(t, "info", "/", want=EXIT_NOT_FOUND)
    check("a path is HUB/MODEL/FILE, as in onnx/resnet18" in next_step(res, "info /"),
          "info /: %r" % res.stderr)
    omnihub(t, "ls", "onnx/resnet18")
    # A name the hub lacks: the nearest directory above it to list, which lists.
    for args, parent in ((["ls", "onnx/resnet18/nope/deeper"], "onnx/resnet18"),
                         (["info", "onnx/resnet18/opset-9/x.onnx"], "onnx/resnet18/opset-9"),
                         (["pull", "onnx/no-such-model"], "onnx"),
                         (["verify", "onnx/no-such-model/model.onnx"], "onnx")):
        res = omnihub(t, *args, want=EXIT_NOT_FOUND)
        check_eq(next_step(res, " ".join(args)), "omnihub ls %s lists what there is" % parent,
                 " ".join(args))
        check(res.stderr.startswith("omnihub: %s: No such file or directory" % args[1]),
              "the reason stays: %r" % res.stderr)
        check(omnihub(t, "ls", parent).stdout, "omnihub ls %s lists something" % parent)
    # A hub that lists only the names it knows starts empty: how to reach the others, on
    # stderr, the listing itself empty. (Before: nothing at all, exit 0.)
    res = omnihub(t, "ls", "huggingface")
    check_eq(res.stdout, "", "stdout of ls huggingface on an empty cache")
    check("name one (omnihub ls huggingface/NAME), or find one with omnihub search --hub "
          "huggingface QUERY" in res.stderr, "the hint of an empty huggingface: %r" % res.stderr)
    check_eq(omnihub(t, "ls", "onnx").stderr, "", "stderr of ls onnx (it lists all it has)")
    # --include matching nothing: ls -r shows the names to match.
    res = omnihub(t, "pull", "--include", "*.nothing", "onnx/conv2d")
    check_eq(next_step(res, "pull --include"), "omnihub ls -r onnx/conv2d lists the names",
             "pull --include of nothing")
    check("opset-13/model.onnx" in omnihub(t, "ls", "-r", "onnx/conv2d").stdout, "ls -r")
    # A bad command line: the subcommand's --help, which prints its usage.
    for args in (["config", "extra"], ["where", "extra"]):
        res = omnihub(t, *args, want=EXIT_USAGE)
        check_eq(res.stderr, "omnihub: %s: takes no arguments ('extra' given) (see 'omnihub %s "
                 "--help')\n" % (args[0], args[0]), "%s's usage error" % args[0])
        check(omnihub(t, args[0], "--help").stdout.startswith("usage: "), args[0] + " --help")
    # A directory that is no mount, for status and env: status without one lists them.
    res = omnihub(t, "status", t.dir, want=EXIT_FAILED)
    check_eq(res.stderr, "omnihub: %s: not an omnihub-fuse mount (omnihub status without one "
             "shows every mount)\n" % t.dir, "status of no mount")
    res = omnihub(t, "env", t.dir, want=EXIT_FAILED)
    check_eq(next_step(res, "env"), "omnihub status shows every mount", "env of no mount")


@test
def offline_errors_name_the_next_step(t):
    # No index in the cache yet: offline by --offline, then by the environment.
    res = omnihub(t, "--offline", "ls", "onnx", want=EXIT_FAILED)
    check_eq(next_step(res, "--offline ls"),
             "run it without --offline, or omnihub pull it while online", "--offline, no index")
    res = omnihub(t, "ls", "onnx", want=EXIT_FAILED, env={"OMNIHUB_OFFLINE": "1"})
    check_eq(next_step(res, "$OMNIHUB_OFFLINE ls"),
             "run it with -o offline=no, or omnihub pull it while online",
             "offline by the environment, no index")
    # Both steps work: -o offline=no over the environment, and a pull while online.
    omnihub(t, "ls", "onnx", options=["offline=no"], env={"OMNIHUB_OFFLINE": "1"})
    omnihub(t, "pull", OTHER[2])
    check("model.onnx" in omnihub(t, "--offline", "ls", os.path.dirname(OTHER[2])).stdout,
          "listed offline after the pull")
    # A file not cached, offline: pulling it needs the network.
    res = omnihub(t, "--offline", "pull", CONV[2], want=EXIT_FAILED)
    check("omnihub: %s: offline, and not in the cache (run it without --offline)\n" % CONV[2]
          in res.stderr, "pull offline of a file not cached: %r" % res.stderr)
    doc = omnihub_json(t, "--offline", "pull", CONV[2], want=EXIT_FAILED)
    check_eq(doc["failed"], [{"path": CONV[2], "error": "offline, and not in the cache",
                              "hint": "run it without --offline"}], "pull --json's failure")
    omnihub(t, "pull", CONV[2])
    omnihub(t, "--offline", "pull", CONV[2])


@test
def cache_dir_errors_name_the_setting(t):
    plain = os.path.join(t.dir, "a-file")
    with open(plain, "w") as f:
        f.write("not a directory\n")
    config = os.path.join(t.dir, "config")
    with open(config, "w") as f:
        f.write("cache = %s\n" % plain)
    cases = (({}, ["--cache", plain], "named by --cache or -o cache=: give another"),
             ({"OMNIHUB_HOME": plain}, [],
              "named by $OMNIHUB_HOME: set it to another, or give --cache"),
             ({"OMNIHUB_CONFIG": config}, [],
              "named by cache = at %s:1: change it, or give --cache" % config))
    for env, args, step in cases:
        res = omnihub(t, *(args + ["ls", "onnx"]), want=EXIT_FAILED, hub=False, env=env)
        check(res.stderr.startswith("omnihub: cannot use the cache directory %s: " % plain),
              "the reason stays: %r" % res.stderr)
        check_eq(next_step(res, "cache %r" % step), step, "the cache's setting")
    # A hub's own directory, from its [section]: that line.
    section = os.path.join(t.dir, "section")
    with open(section, "w") as f:
        f.write("[onnx]\ncache = %s\n" % plain)
    res = omnihub(t, "ls", "onnx", want=EXIT_FAILED, env={"OMNIHUB_CONFIG": section})
    check_eq(next_step(res, "[onnx] cache"), "named by cache = in [onnx] at %s:2: change it"
             % section, "a hub's own cache directory")
    # Each step works: another directory, given as it says.
    good = os.path.join(t.dir, "good")
    omnihub(t, "--cache", good, "du", hub=False)
    omnihub(t, "--cache", good, "du", hub=False, env={"OMNIHUB_CONFIG": config})
    omnihub(t, "du", hub=False, env={"OMNIHUB_HOME": good})
    with open(section, "w") as f:
        f.write("[onnx]\ncache = %s\n" % good)
    omnihub(t, "ls", "onnx", env={"OMNIHUB_CONFIG": section})


@test
def status_of_a_stopped_mount_says_unmount(t):
    m = t.mount(["cache=" + t.cache] + hub_options(t)[1:]).start()
    m.proc.kill()  # the daemon gone, the mount left behind: ENOTCONN
    m.proc.wait()
    res = omnihub(t, "status", t.mountpoint, want=EXIT_FAILED, hub=False)
    check_eq(next_step(res, "status of a stopped mount"),
             "fusermount3 -u %s, then mount it again" % t.mountpoint, "stopped mount")
    check("Transport endpoint is not connected" in res.stderr, "the reason: %r" % res.stderr)
    res = subprocess.run(["fusermount3", "-u", t.mountpoint], capture_output=True, text=True,
                         timeout=COMMAND_TIMEOUT)
    check_eq((res.returncode, res.stderr), (0, ""), "fusermount3 -u as the step says")
    m._stopped = True  # killed on purpose, and unmounted: nothing left for stop()
    with t.mount(["cache=" + t.cache] + hub_options(t)[1:]):
        check("onnx" in omnihub(t, "status", t.mountpoint, hub=False).stdout,
              "mounted again, status reads it")


@test
def du_and_gc(t):
    small, other = entry(t, SMALL), entry(t, OTHER)
    omnihub(t, "pull", SMALL[2], OTHER[2])
    doc = omnihub_json(t, "du")
    check_eq((doc["bytes"], doc["blobs"], doc["partials"]),
             (small["bytes"] + other["bytes"], 2, 0), "du's counts")
    check_eq(doc["cache"], os.path.realpath(t.cache), "du's cache")
    check_eq(doc["hubs"]["onnx"]["files"], 2, "files in onnx/")
    res = omnihub(t, "du")
    check("blobs     %d B in 2 files" % (small["bytes"] + other["bytes"]) in res.stdout,
          "du's text: %r" % res.stdout)
    doc = omnihub_json(t, "gc", "--older", "0", "--dry-run")
    check_eq(doc["dry_run"], True, "dry run")
    check_eq(sorted(r["blob"] for r in doc["removed"]),
             sorted("sha256/" + e["sha256"] for e in (small, other)), "what would go")
    check(os.path.exists(blob_path(t, small)), "a dry run removes nothing")
    # Each blob's names in the cache's tree (onnx/avgpool2d/model.onnx is a link to its opset).
    names = {small["sha256"]: SMALL[2], other["sha256"]: "onnx/avgpool2d/opset-12/model.onnx"}
    check_eq(sorted((r["blob"], tuple(r["names"])) for r in doc["removed"]),
             sorted(("sha256/" + sha, (name,)) for sha, name in names.items()),
             "the model file each blob is")
    res = omnihub(t, "gc", "--older", "0", "--dry-run")
    for e in (small, other):
        check(any(line.startswith("would remove %s (" % os.path.realpath(blob_path(t, e)))
                  and line.endswith("; for " + names[e["sha256"]])
                  for line in res.stdout.splitlines()),
              "gc --dry-run names %s: %r" % (names[e["sha256"]], res.stdout))
    # The least recently used goes first: the small one was used an hour ago (by its atime).
    now = time.time()
    os.utime(blob_path(t, small), (now - 3600, now - 3600))
    os.utime(blob_path(t, other), (now, now))
    res = omnihub(t, "gc", "--max", str(other["bytes"]))
    check_eq(res.stdout.splitlines()[0].split()[:2], ["removed", os.path.realpath(blob_path(t, small))],
             "what went: %r" % res.stdout)
    check(res.stdout.splitlines()[-1].startswith("freed %d B in 1 blob; " % small["bytes"]),
          "gc's summary: %r" % res.stdout)
    check(not os.path.exists(blob_path(t, small)), "the older blob is gone")
    check(not os.path.exists(os.path.join(t.cache, SMALL[2])), "and its name in the tree")
    check(os.path.exists(blob_path(t, other)), "the newer one stays")


@test
def gc_keeps_what_a_mount_has_open(t):
    large, small = entry(t, LARGE), entry(t, SMALL)
    omnihub(t, "pull", LARGE[2], SMALL[2])
    with t.mount(hub_options(t)) as m:
        with open(m.path(LARGE[2]), "rb") as f:
            head = f.read(1 << 20)
            doc = omnihub_json(t, "gc", "--max", "0")
            check_eq([r["blob"] for r in doc["removed"]], ["sha256/" + small["sha256"]],
                     "removed while the large model is open")
            check_eq([(k["blob"], k["reason"]) for k in doc["kept"]],
                     [("sha256/" + large["sha256"], "open in a mount")], "kept")
            check_eq(doc["left_bytes"], large["bytes"], "bytes left")
            check(os.path.exists(blob_path(t, large)), "the open blob survives")
            check(not os.path.exists(blob_path(t, small)), "the closed one went")
            rest = f.read()
        check_eq(sha256_bytes(head + rest), large["sha256"], "the open file read to its end")
    # Closed and unmounted, it can go.
    res = omnihub(t, "gc", "--max", "0")
    check(res.stdout.startswith("removed "), "gc after the mount: %r" % res.stdout)
    check(not os.path.exists(blob_path(t, large)), "the blob went once closed")


@test
def pull_and_mount_share_one_download(t):
    large = entry(t, LARGE)
    zoo = t.shared.slow
    with t.mount(hub_options(t, slow=True)) as m:
        proc = subprocess.Popen(command(t, "pull", LARGE[2], slow=True), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=t.env)
        # The pull starts the download; the mount's reader joins it while it is in flight.
        partial = blob_path(t, large) + ".partial"
        poll_until(lambda: os.path.exists(partial), 20)
        check(os.path.exists(partial), "the pull started no download")
        with open(m.path(LARGE[2]), "rb") as f:
            data = f.read()
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        t.note("pull: %d\n%s%s" % (proc.returncode, out, err))
        check_eq(proc.returncode, 0, "the pull's exit status")
        check_eq(sha256_bytes(data), large["sha256"], "sha256 read through the mount")
    sent, requests = cdn_bytes(zoo, large)
    check_eq(sent, large["bytes"], "bytes of the model the CDN sent (%d requests)" % requests)


@test
def progress_bar_on_a_terminal_only(t):
    large = entry(t, LARGE)
    status, out = run_on_terminal(t, "pull", LARGE[2], slow=True)
    check_eq(status, 0, "exit status on a terminal")
    text = out.decode("utf-8", "replace")
    bars = [piece for piece in text.split("\r") if "ETA" in piece]
    check(len(bars) >= 3, "progress redrawn with \\r at least 3 times: %r" % text[:300])
    check(any("%" in b and "MiB/s" in b and "/ 16.0 MiB" in b for b in bars),
          "a bar with bytes, percentage and speed: %r" % bars[:3])
    check(("pulled %s (16.0 MiB)" % LARGE[2]) in text, "the pulled line: %r" % text[-200:])
    check_eq(sha256_file(text.rstrip().splitlines()[-1].strip("\r\x1b[K")), large["sha256"],
             "the path printed last")
    check_eq(sha256_file(blob_path(t, large)), large["sha256"], "the pulled blob")
    # The same pull into another cache, piped: plain lines only.
    os.rename(t.cache, t.cache + ".first")
    os.makedirs(t.cache)
    res = omnihub(t, "pull", LARGE[2], slow=True)
    check_eq(res.stderr, "pulled %s (16.0 MiB)\n" % LARGE[2], "piped stderr")
    check_eq(sha256_file(res.stdout.rstrip("\n")), large["sha256"], "the path printed")
    check("\r" not in res.stdout + res.stderr and "\x1b" not in res.stdout + res.stderr,
          "no \\r nor escape when piped")


@test
def man_page_renders_and_matches_help(t):
    page = os.path.join(SRCDIR, "man", "omnihub.1")
    res = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                         env=dict(t.env, MANWIDTH="80", MANPAGER="cat", PAGER="cat"),
                         timeout=COMMAND_TIMEOUT)
    check_eq((res.returncode, res.stderr), (0, ""), "man --warnings -l man/omnihub.1")
    text = res.stdout.replace("\u2010\n", "").replace("-\n", "")
    usage = omnihub(t, "--help", hub=False).stdout
    commands = [line.split()[0] for line in usage.split("Commands:\n")[1].split("\n\n")[0]
                .splitlines()]
    check(len(commands) >= 8, "commands in --help: %r" % commands)
    for name in commands:
        check(("\n       %s " % name) in text or ("\n       %s\n" % name) in text,
              "the man page documents %s" % name)
        sub = omnihub(t, name, "--help", hub=False).stdout
        for option in set(w.strip(",[]") for w in sub.split() if w.startswith(("--", "[--"))):
            check(option in text, "the man page documents %s %s" % (name, option))
    for option in ("--json", "--verbose", "--cache", "--offline", "--version"):
        check(option in usage and option in text, "%s in --help and the man page" % option)


@test
def options_after_the_subcommand(t):
    path = "onnx/conv2d/opset-13"
    before = omnihub_json(t, "ls", path)
    res = omnihub(t, "ls", path, "--json")
    check_eq(json.loads(res.stdout), before, "ls PATH --json is --json ls PATH")
    res = omnihub(t, "ls", "--json", "-r", path)
    check_eq([i["name"] for i in json.loads(res.stdout)["entries"]][:1], ["model.onnx"],
             "--json between the subcommand's own options")
    # -o, --cache and -v after the subcommand too; gc's --max takes the next word as a value.
    other = os.path.join(t.dir, "other-cache")
    res = omnihub(t, "where", "--cache", other, hub=False)
    check_eq(res.stdout, other + "\n", "where --cache DIR")
    res = omnihub(t, "where", "-o", "cache=" + other, "--json", hub=False)
    check_eq(json.loads(res.stdout)["cache"], other, "where -o cache=DIR --json")
    doc = json.loads(omnihub(t, "gc", "--older", "0", "--dry-run", "--json").stdout)
    check_eq(doc["dry_run"], True, "gc ... --json")
    res = omnihub(t, "gc", "--max", "--json", want=EXIT_USAGE)
    check("not '--json'" in res.stderr, "--max's value is the next word: %r" % res.stderr)
    # Every subcommand's valued options, short or long, as its own getopt table says.
    for args, said in ((["pull", "-j", "--json", path], "--max-workers: '--json' is not"),
                       (["pull", "--local-dir", "--json"], "which files?"),
                       (["search", "-n", "--json", "conv"], "--limit: '--json' is not"),
                       (["gc", "--older", "--json"], "not '--json'")):
        res = omnihub(t, *args, want=EXIT_USAGE)
        check(said in res.stderr, "%s's value is the next word: %r" % (args[1], res.stderr))
    res = omnihub(t, "search", "--hub", "--json", "conv", want=EXIT_NOT_FOUND)
    check(res.stderr.startswith("omnihub: --json: no such hub"), "search --hub --json: %r"
          % res.stderr)
    # After a value, --json is the global option again.
    check("files" in json.loads(omnihub(t, "pull", "-j", "2", "--json", path).stdout),
          "pull -j 2 --json PATH")
    check("results" in json.loads(omnihub(t, "search", "--hub", "onnx", "conv", "--json").stdout),
          "search --hub onnx QUERY --json")
    # "--" ends the options: what follows is a path, never --json.
    res = omnihub(t, "info", "--", "--json", want=EXIT_NOT_FOUND)
    check(res.stdout == "" and res.stderr.startswith("omnihub: --json: "),
          "info -- --json: %r %r" % (res.stdout, res.stderr))


@test
def help_subcommand_exits_0(t):
    for args in (["help"], ["help", "--help"], ["help", "-h"], ["--help"]):
        res = omnihub(t, *args, hub=False)
        check(res.stdout.startswith("usage: omnihub ") and "Commands:" in res.stdout,
              "omnihub %s: %r" % (" ".join(args), res.stdout[:80]))
    res = omnihub(t, "help", "gc", hub=False)
    check(res.stdout.startswith("usage: omnihub [OPTIONS] gc "), "help gc: %r" % res.stdout[:80])
    check_eq(res.stdout, omnihub(t, "gc", "--help", hub=False).stdout, "help gc is gc --help")
    res = omnihub(t, "help", "frobnicate", want=EXIT_USAGE, hub=False)
    check("'frobnicate' is not a command" in res.stderr, "help of no command: %r" % res.stderr)


@contextlib.contextmanager
def manifest_with_hostile_entry(zoo, name="Escape"):
    """The fast zoo's manifest with one more entry, one every client must skip (a path out
    of the tree), restored afterwards."""
    path = os.path.join(zoo.fixture_dir, "www", "raw", "onnx", "models", "main",
                        "ONNX_HUB_MANIFEST.json")
    with open(path, "rb") as f:
        original = f.read()
    entries = json.loads(original)
    entries.append(dict(entries[0], model=name, model_path="../../etc/passwd"))
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(entries, f)
        yield
    finally:
        with open(path, "wb") as f:
            f.write(original)


@test
def log_prefix_and_index_warning_once(t):
    with manifest_with_hostile_entry(t.shared):
        first = omnihub(t, "ls", "onnx")
        warnings = [line for line in first.stderr.splitlines() if " warning: onnx: " in line]
        check(len(warnings) >= 1, "warnings about the index: %r" % first.stderr)
        check(all(" omnihub: warning: " in line for line in warnings),
              "the command's log lines say omnihub: %r" % warnings)
        check("omnihub-fuse:" not in first.stderr, "no omnihub-fuse: prefix: %r" % first.stderr)
        # The same index again (from the cache, then fetched again): not repeated.
        second = omnihub(t, "ls", "onnx")
        check_eq(second.stdout, first.stdout, "the same listing")
        check(" warning: " not in second.stderr, "warnings repeated: %r" % second.stderr)
        third = omnihub(t, "ls", "onnx", options=["index_ttl=0"])
        check(" warning: " not in third.stderr,
              "warnings repeated after a refetch: %r" % third.stderr)
        debug = omnihub(t, "-v", "-v", "ls", "onnx")
        check("not repeated" in debug.stderr and " omnihub: debug: " in debug.stderr,
              "-v -v says they were not repeated: %r" % debug.stderr[-500:])
    # Another version of the index, with its own problem: told, once.
    with manifest_with_hostile_entry(t.shared, name="Escape2"):
        other = omnihub(t, "ls", "onnx", options=["index_ttl=0"])
        check(" omnihub: warning: onnx: " in other.stderr and "Escape2" in other.stderr,
              "another version's warnings: %r" % other.stderr)
        check(" warning: " not in omnihub(t, "ls", "onnx").stderr, "and once only")


def byte_catalog(t):
    """A user catalog whose strings hold a 0xff byte (JSON allows no such byte; cJSON keeps
    it); returns the options that add it (and an empty system catalog directory)."""
    user, system = os.path.join(t.dir, "catalogs"), os.path.join(t.dir, "no-catalogs")
    os.makedirs(user)
    os.makedirs(system)
    doc = {"omnihub_catalog": 1, "hub": "bytes", "base_url": "https://127.0.0.1:1/",
           "models": {"m": {"meta": {"title": "TITLE"}, "default": "e", "entries": {"e": {
               "url": "a.bin", "file": "a.bin", "format": "pth", "size": 3,
               "digests": {"sha256": "0" * 64}, "meta": {"TITLE": "TITLE"}}}}}}
    with open(os.path.join(user, "bytes.json"), "wb") as f:
        f.write(json.dumps(doc).encode().replace(b"TITLE", b"caf\xff"))
    return ["catalogs=" + user, "system_catalogs=" + system]


def strict_json(t, *args, options=(), want=EXIT_OK):
    """Runs omnihub --json ARGS; the bytes it prints must be UTF-8 and JSON (as json.tool)."""
    cmd = command(t, "--json", *args, options=options)
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=t.env,
                         timeout=COMMAND_TIMEOUT)
    t.note("$ --json %s -> %d\n%r\n%r" % (" ".join(args), res.returncode, res.stdout, res.stderr))
    check_eq(res.returncode, want, "exit status of omnihub --json %s" % " ".join(args))
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=res.stdout,
                          capture_output=True, timeout=COMMAND_TIMEOUT)
    check_eq(tool.returncode, 0, "json.tool accepts --json %s: %r" % (" ".join(args), tool.stderr))
    return json.loads(res.stdout.decode("utf-8"))


@test
def json_output_is_valid_utf8(t):
    opts = byte_catalog(t)
    doc = strict_json(t, "info", "bytes/m/a.bin", options=opts)
    check_eq(doc["meta"], {"title": "caf\ufffd", "caf\ufffd": "caf\ufffd"},
             "the 0xff byte of a key and of values")
    doc = strict_json(t, "ls", "bytes/m", options=opts)
    check("a.bin" in [e["name"] for e in doc["entries"]], "ls of the model: %r" % doc)
    # A cache directory whose name holds 0xff: where, du and config name it.
    odd = os.path.join(t.dir.encode(), b"cache-\xff")
    os.makedirs(odd)
    odd_opt = ["cache=" + os.fsdecode(odd)]
    for args in (["where"], ["du"], ["config"]):
        doc = strict_json(t, *args, options=odd_opt + opts)
        check(os.fsdecode(t.dir.encode()) + "/cache-\ufffd" in json.dumps(doc, ensure_ascii=False),
              "%s names the cache with U+FFFD: %r" % (args[0], doc))


@test
def gc_older_and_long_paths_refused(t):
    for value in ("nan", "NaN", "inf", "-inf", "infinity", "1e999", "-1", "100001", "x"):
        res = omnihub(t, "gc", "--older", value, want=EXIT_USAGE)
        check(res.stdout == "" and "--older takes a number of days" in res.stderr
              and ("'%s'" % value) in res.stderr, "gc --older %s: %r" % (value, res.stderr))
    omnihub(t, "gc", "--older", "0.5", "--dry-run")
    long_path = "onnx/" + "a" * 100000
    for args in (["ls", long_path], ["info", long_path], ["pull", long_path],
                 ["verify", long_path]):
        res = omnihub(t, *args, want=EXIT_NOT_FOUND)
        check(res.stderr.startswith("omnihub: onnx/aaaa") and "too long" in res.stderr,
              "%s of a 100000-character path: %r" % (args[0], res.stderr[-200:]))


@test
def where_json_names_catalog_hubs(t):
    opts = byte_catalog(t)
    doc = omnihub_json(t, "where", options=opts)
    hubs = [line.rstrip("/") for line in omnihub(t, "ls", options=opts).stdout.splitlines()]
    check("bytes" in hubs, "ls lists the catalog's hub: %r" % hubs)
    check_eq(sorted(doc["hubs"]), sorted(hubs), "where --json names every hub ls lists")
    check_eq(doc["hubs"]["bytes"], t.cache, "the catalog hub's directory")


@test
def man_pages_have_no_words_run_together(t):
    # A .BR line with more words than its fonts alternate runs them together
    # ("EINTR);1whenthemountcouldnotbemade"): no rendered word is that long.
    for name in ("omnihub.1", "omnihub-fuse.1", "omnihub.conf.5"):
        res = subprocess.run(["man", "-l", os.path.join(SRCDIR, "man", name)],
                             capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                             env=dict(t.env, MANWIDTH="200", MANPAGER="cat", PAGER="cat"))
        check_eq(res.returncode, 0, "man -l man/" + name)
        text = res.stdout.replace("\u2010", "-")
        run_together = re.findall(r"[a-z]+[a-z(),;]{28,}", text)
        check_eq(run_together, [], "words run together in man/" + name)
        if name == "omnihub-fuse.1":
            section = text.split("EXIT STATUS", 1)[1].split("EXAMPLES", 1)[0]
            words = section.split()
            check("EINTR)." in words and "1" in words and "2" in words,
                  "omnihub-fuse(1) EXIT STATUS: %r" % section)


if __name__ == "__main__":
    run(zoo_servers, before_each=clear_logs)
