#!/usr/bin/env python3
"""Integration test of omnihub-fuse's memory: names the kernel forgets are freed, so walking a
huge hub twice over different names does not grow the daemon twice. Not for: speed (scripts/bench)
nor for what the names contain (test_onnx_mount.py).
"""

# Run by `make check` (TAP on stdout, the figures as "# " lines), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_memory.py

import contextlib
import hashlib
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import check, check_eq, run, test  # noqa: E402

# Each model has OPSETS opsets: its directory, model.onnx, and per opset a directory and its
# model.onnx make 2 + 2 * OPSETS names. Two halves of MODELS_PER_HALF models each give two
# disjoint sets of over 100,000 names.
OPSETS = 8
MODELS_PER_HALF = 6000
NAMES_PER_HALF = MODELS_PER_HALF * (2 + 2 * OPSETS)
INDEX_CACHE_REL = os.path.join(".index", "onnx", "ONNX_HUB_MANIFEST.json")
# The second walk, over as many new names after the kernel forgot the first, may grow the daemon
# by at most this part of what the first walk grew it by.
MAX_SECOND_GROWTH = 0.25
SETTLE_SECONDS = 2.0


def model_name(i):
    return "mem-%05d" % i


def manifest():
    """Both halves' models, OPSETS entries each, nothing behind them (nothing is read)."""
    entries = []
    for i in range(2 * MODELS_PER_HALF):
        for opset in range(7, 7 + OPSETS):
            name = model_name(i)
            entries.append({
                "model": name,
                "model_path": "validated/mem/%s/model/%s-%d.onnx" % (name, name, opset),
                "opset_version": opset,
                "metadata": {"model_sha": hashlib.sha256(b"%s %d" % (name.encode(), opset))
                             .hexdigest(), "model_bytes": 1000 + i * 16 + opset}})
    return entries


@contextlib.contextmanager
def shared_setup(run_dir):
    """The manifest, written once; each test copies it into its cache (the daemon runs
    offline: no server)."""
    path = os.path.join(run_dir, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest(), f, separators=(",", ":"))
    yield path


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def settled_rss(pid):
    """VmRSS once the daemon has caught up (the kernel's FORGETs arrive after the walk)."""
    time.sleep(SETTLE_SECONDS)
    return rss_kib(pid)


def walk(onnx_dir, models):
    """lstat every name under the given model directories; returns how many names."""
    names = 0
    stack = [os.path.join(onnx_dir, model_name(i)) for i in models]
    names += len(stack)
    for path in stack:
        os.lstat(path)
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                names += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                check(st.st_ino != 0, "no inode number for " + entry.path)
    return names


def forget_all():
    """Make the kernel drop the dentries and inodes it does not use: it sends FORGETs."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


def measure(t, attempt):
    """One mount, two walks; prints the figures and returns why they fail, or None."""
    # glibc gives threads arenas of their own, and a freed node goes back to the arena it came
    # from: with several, megabytes move between arenas from one walk to the next (walk 2 grew
    # by 3% to 31% of walk 1 in trials). One arena makes the figures say what the daemon keeps,
    # not where glibc put it. A sanitizer build has its own allocator, which holds freed memory
    # in a quarantine (256 MB by default) before reusing it: without one, it reuses it as glibc
    # does, and the figures mean the same.
    env = {"MALLOC_ARENA_MAX": "1"}
    asan = t.env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=0"
    with t.mount(["cache=" + t.cache, "offline"], env=env) as m:
        pid = m.proc.pid
        onnx = m.path("onnx")
        os.lstat(onnx)
        before = settled_rss(pid)

        started = time.monotonic()
        first = walk(onnx, range(MODELS_PER_HALF))
        first_s = time.monotonic() - started
        after_first = settled_rss(pid)
        forget_all()
        after_forget = settled_rss(pid)

        started = time.monotonic()
        second = walk(onnx, range(MODELS_PER_HALF, 2 * MODELS_PER_HALF))
        second_s = time.monotonic() - started
        after_second = settled_rss(pid)

    grew_first = after_first - before
    grew_second = after_second - after_forget
    for line in ("attempt %d: daemon VmRSS (KiB): %d before, %d after walk 1 (%d names, %.1f s)"
                 % (attempt, before, after_first, first, first_s),
                 "%d after drop_caches, %d after walk 2 (%d other names, %.1f s)"
                 % (after_forget, after_second, second, second_s),
                 "walk 1 grew it by %d KiB, walk 2 by %d KiB (%.0f%%)"
                 % (grew_first, grew_second, 100.0 * grew_second / max(grew_first, 1))):
        print("# " + line)
        t.note(line)
    check_eq(first, NAMES_PER_HALF, "names in walk 1")
    check_eq(second, NAMES_PER_HALF, "names in walk 2")
    # Without FORGET both walks cost about the same (some 300 bytes a name).
    if grew_first <= NAMES_PER_HALF * 100 // 1024:
        return "walk 1 grew the daemon by only %d KiB: the test measures nothing" % grew_first
    if grew_second >= grew_first * MAX_SECOND_GROWTH:
        return ("walk 2 grew the daemon by %d KiB, over %d%% of walk 1's %d KiB: forgotten "
                "names are not freed" % (grew_second, 100 * MAX_SECOND_GROWTH, grew_first))
    return None


@test
def forgotten_names_are_freed(t):
    """Two walks over two disjoint sets of 100,000+ names, the kernel told to forget in
    between: the second grows the daemon by a fraction of what the first did."""
    os.makedirs(os.path.dirname(os.path.join(t.cache, INDEX_CACHE_REL)))
    with open(t.shared, "rb") as src, open(os.path.join(t.cache, INDEX_CACHE_REL), "wb") as dst:
        dst.write(src.read())
    # drop_caches is machine-wide: another process dropping caches during walk 1 (another
    # suite, a bench) makes the kernel forget part of it early, so walk 1 seems cheap and
    # walk 2 dear. That is an outside accident, so a failed measurement is taken once more;
    # without FORGET both attempts fail (walk 2 costs as much as walk 1).
    problem = measure(t, 1)
    if problem:
        print("# attempt 1: " + problem + "; measuring again")
        problem = measure(t, 2)
    check(problem is None, problem)


if __name__ == "__main__":
    run(shared_setup)
