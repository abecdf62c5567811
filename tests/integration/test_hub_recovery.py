#!/usr/bin/env python3
"""Integration tests of hubs that come back by themselves: a hub down when the mount starts is
listed, answers EAGAIN, is retried in the background and served once it answers, without a
remount; .omnihub/status, the metrics and `omnihub status` say which state each hub is in.
Not for the retry schedule's numbers (tests/unit/test_hub_state.c); without root or /dev/fuse
it fails (skips with OMNIHUB_ALLOW_SKIP=1).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse OMNIHUB=BUILDDIR/omnihub \
#         /usr/bin/python3 tests/integration/test_hub_recovery.py [PART]

import errno
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import mount as hub_mount, omnihub_binary, one_model_zoo  # noqa: E402
from mount_helpers import (check, check_eq, errno_of, run, run_cli,  # noqa: E402
                           sha256_file, test, wait_for)


MODEL_DIR = "biggemm"
MODEL = "onnx/biggemm/model.onnx"
# The first retry's wait, small for a test (the default is 5 s); documented as for tests.
RETRY_ENV = {"OMNIHUB_HUB_RETRY_FIRST": "0.5"}
# Liveness only: with waits 0.5, 1, 2, 4, 8 s (20% jitter) the heal is seen within ~10 s,
# an ASan build is slower.
RECOVERY_TIMEOUT = 60.0


def small_zoo(run_dir):
    return one_model_zoo(run_dir, 1)


def mount(t, *options, env=None):
    return hub_mount(t, t.shared.zoo, *options, env=dict(RETRY_ENV, **(env or {})))


def hub_rows(m):
    """{hub: (state, since, next_try, tries, last_error)} from the mount's .omnihub/status."""
    with open(m.path(".omnihub", "status"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("HUB ")]
    check_eq(len(start), 1, "hub headers in the status")
    rows = {}
    for line in lines[start[0] + 1:]:
        if line.startswith("STATE "):
            break
        name, state, since, next_try, tries, error = line.split(None, 5)
        rows[name] = (state, since, next_try, int(tries), error)
    return rows


def hub_up_gauge(m, hub):
    with open(m.path(".omnihub", "metrics"), encoding="utf-8") as f:
        found = [line.split()[-1] for line in f.read().splitlines()
                 if line.startswith('omnihub_hub_up{hub="%s"} ' % hub)]
    check_eq(len(found), 1, "omnihub_hub_up samples of " + hub)
    return int(found[0])


def status_json(t, m):
    res = subprocess.run([omnihub_binary(), "status", "--json", m.mountpoint],
                         capture_output=True, text=True, env=t.env, timeout=60)
    check_eq(res.returncode, 0, "omnihub status exit status (stderr %r)" % res.stderr)
    doc = json.loads(res.stdout)
    check_eq([x["mountpoint"] for x in doc["mounts"]], [m.mountpoint], "mounts shown")
    return {h["name"]: h for h in doc["mounts"][0]["hubs"]}


def listing(m, *parts):
    try:
        return sorted(os.listdir(m.path(*parts)))
    except OSError:
        return None


# ----------------------------------------------------------------------------- tests

@test
def hub_down_at_start_comes_back_without_remount(t):
    zoo = t.shared.zoo
    zoo.set_down(True)
    try:
        with mount(t) as m:
            check("onnx" in os.listdir(m.mountpoint), "onnx/ is not listed at the root")
            check_eq(errno_of(os.listdir, m.path("onnx")), errno.EAGAIN, "listing onnx/")
            check_eq(errno_of(os.stat, m.path("onnx", MODEL_DIR)), errno.EAGAIN,
                     "stat in onnx/")
            res = subprocess.run(["ls", m.path("onnx")], capture_output=True, text=True)
            check("Resource temporarily unavailable" in res.stderr, "ls says %r" % res.stderr)
            # A few retries fail meanwhile (0.5, 1 s): the state and reason stay one.
            wait_for(lambda: hub_rows(m)["onnx"][3] >= 3, RECOVERY_TIMEOUT, "three tries")
            for _ in range(20):
                errno_of(os.stat, m.path("onnx", MODEL_DIR))
            state, since, next_try, tries, error = hub_rows(m)["onnx"]
            check_eq(state, "retrying", "onnx's state")
            check(since != "-" and next_try != "-", "since %r, next try %r" % (since, next_try))
            check("503" in error and zoo.index_url in error, "onnx's last error: %r" % error)
            check_eq(hub_rows(m)["huggingface"][0], "up", "huggingface's state")
            check_eq(hub_up_gauge(m, "onnx"), 0, "onnx's up gauge while down")
            shown = status_json(t, m)["onnx"]
            check_eq((shown["state"], shown["next_try"]), ("retrying", next_try),
                     "omnihub status --json of onnx")
            check_eq(len(m.log_lines("onnx hub not available")), 1,
                     "log lines saying onnx is not available (one per state change)")

            zoo.set_down(False)
            got = wait_for(lambda: listing(m, "onnx"), RECOVERY_TIMEOUT, "onnx/ to list")
            check(MODEL_DIR in got, "onnx/ lists %r" % got)
            check_eq(sha256_file(m.path(MODEL)), t.shared.entry["sha256"], "the model's sha256")
            check_eq(hub_rows(m)["onnx"][0], "up", "onnx's state once healed")
            check_eq(hub_up_gauge(m, "onnx"), 1, "onnx's up gauge once healed")
            check_eq(status_json(t, m)["onnx"]["state"], "up", "omnihub status --json")
            check_eq(len(m.log_lines("onnx hub is up")), 1, "log lines saying onnx is up")
    finally:
        zoo.set_down(False)


@test
def hub_up_at_start_stays_up(t):
    with mount(t) as m:
        check_eq(sha256_file(m.path(MODEL)), t.shared.entry["sha256"], "the model's sha256")
        state, _, next_try, tries, _ = hub_rows(m)["onnx"]
        check_eq((state, next_try, tries), ("up", "-", 1), "onnx's state, next try, tries")
        check_eq(hub_up_gauge(m, "onnx"), 1, "onnx's up gauge")
        check(not m.log_lines("not available"), "a hub said not available")
        res = subprocess.run([omnihub_binary(), "status", m.mountpoint], capture_output=True,
                             text=True, env=t.env, timeout=60)
        check_eq(res.returncode, 0, "omnihub status exit status")
        check(res.stdout.startswith(m.mountpoint + ":\n") and "\nonnx " in res.stdout,
              "omnihub status prints: %r" % res.stdout)


@test
def offline_without_index_is_left_out(t):
    """Nothing to wait for: offline with no cached index, onnx/ is not there (ENOENT)."""
    with mount(t, "offline") as m:
        check("onnx" not in os.listdir(m.mountpoint), "onnx/ listed though offline")
        check_eq(errno_of(os.stat, m.path("onnx")), errno.ENOENT, "stat onnx/")
        state, _, next_try, _, error = hub_rows(m)["onnx"]
        check_eq((state, next_try), ("offline", "-"), "onnx's state and next try")
        check("offline" in error, "onnx's last error: %r" % error)
        check_eq(len(m.log_lines("onnx hub left out (offline)")), 1, "log lines of onnx")


@test
def huggingface_endpoint_down_at_start_is_up(t):
    """The Hugging Face hubs' open asks nothing of the network (each lookup does, with its
    own errors): an endpoint down at start leaves them up, with no retry."""
    with mount(t, "hf_endpoint=https://127.0.0.1:1") as m:
        rows = hub_rows(m)
        check_eq(rows["huggingface"][:4], ("up", rows["huggingface"][1], "-", 1),
                 "huggingface's state")
        check_eq(rows["huggingface-datasets"][0], "up", "huggingface-datasets's state")
        check("huggingface" in os.listdir(m.mountpoint), "huggingface/ not listed")


# A catalog hub that cannot open at the start, for a cause the core retries (its default
# entry's link, DEFAULT plus the file's 251-byte extension, is a name over NAME_MAX:
# -ENAMETOOLONG).
LONG_EXT = "." + "x" * 250
CATALOG = {
    "omnihub_catalog": 1,
    "hub": "mymodels",
    "base_url": "https://127.0.0.1:1/",
    "models": {"tiny": {"default": "v1", "entries": {"v1": {
        "url": "tiny.bin", "file": "tiny" + LONG_EXT, "size": 3, "format": "bin",
        "digests": {"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}}},
}


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


@test
def hub_refusing_its_settings_is_disabled(t):
    """A hub whose open says its settings are refused (-EINVAL), at a mount that has started
    (so the refusal cannot stop the start): a catalog hub retried in the background, whose
    converter, named by -o convert, was removed meanwhile. It is disabled, never tried again,
    and .omnihub/status, the up gauge and omnihub status (text and --json) say "disabled"
    with the reason; the mount and its other hubs stay up."""
    catalogs = os.path.join(t.dir, "catalogs")
    converters = os.path.join(t.dir, "converters")
    empty = os.path.join(t.dir, "no-system-catalogs")
    os.mkdir(empty)
    write(os.path.join(catalogs, "mine.json"), json.dumps(CATALOG))
    converter = os.path.join(converters, "myconv")
    write(converter, "#!/bin/sh\nexit 1\n", 0o755)
    with mount(t, "system_catalogs=" + empty, "catalogs=" + catalogs,
               "converters=" + converters, "convert=bin:onnx:myconv") as m:
        wait_for(lambda: hub_rows(m)["mymodels"][3] >= 2, RECOVERY_TIMEOUT,
                 "mymodels tried twice")
        check_eq(hub_rows(m)["mymodels"][0], "retrying", "mymodels's state at first")
        os.unlink(converter)
        wait_for(lambda: hub_rows(m)["mymodels"][0] == "disabled", RECOVERY_TIMEOUT,
                 "mymodels disabled")
        state, since, next_try, tries, error = hub_rows(m)["mymodels"]
        check_eq(next_try, "-", "mymodels's next try once disabled")
        check(since != "-", "mymodels's since: %r" % since)
        check("myconv" in error, "mymodels's last error: %r" % error)
        check_eq(hub_up_gauge(m, "mymodels"), 0, "mymodels's up gauge")
        shown = status_json(t, m)["mymodels"]
        check_eq((shown["state"], shown["next_try"]), ("disabled", None),
                 "omnihub status --json of mymodels")
        check("myconv" in (shown["last_error"] or ""),
              "omnihub status --json's last error: %r" % shown["last_error"])
        res = subprocess.run([omnihub_binary(), "status", m.mountpoint], capture_output=True,
                             text=True, env=t.env, timeout=60)
        check_eq(res.returncode, 0, "omnihub status exit status")
        rows = [line for line in res.stdout.splitlines() if line.startswith("mymodels ")]
        check(len(rows) == 1 and "disabled" in rows[0] and "myconv" in rows[0],
              "omnihub status's mymodels line: %r" % rows)
        check(m.log_lines("mymodels hub left out (disabled)", "myconv"),
              "no log line leaving mymodels out as disabled")
        # Settings a hub refuses do not heal: not tried again (retries were 0.5 s apart).
        time.sleep(3)
        check_eq(hub_rows(m)["mymodels"][3], tries, "mymodels's tries 3 s later")
        check_eq(hub_rows(m)["onnx"][0], "up", "onnx's state")
        check(m.proc.poll() is None, "the daemon exited")

@test
def settings_refused_stop_the_start(t):
    """Settings a hub refuses do not heal: the start stops with exit status 2, naming the
    option (issue 25; test_daemon.py checks FILE:LINE too), and nothing is mounted."""
    m = mount(t, "hf_repos=not/a/repo")
    res = run_cli(t.binary, m.command[1:], m.env, mountpoint=t.mountpoint)
    check_eq(res.returncode, 2, "exit status")
    check("-o hf_repos: 'not/a/repo'" in res.stderr, "stderr: %r" % res.stderr)


if __name__ == "__main__":
    run(small_zoo, before_each=lambda shared: shared.zoo.set_down(False))
