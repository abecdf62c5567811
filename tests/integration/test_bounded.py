#!/usr/bin/env python3
"""Integration tests of omnihub-fuse's bounded work: no FUSE thread waits on the network (a
stalled Hub API or an archive being staged holds up neither cached reads nor listings, nor
another hub's remote work, and a stat waiting on it can be killed), and a fixed set of threads
and a bounded VmRSS however many files are opened at once.
Not for: speed (scripts/bench), nor what the files contain (test_transfers.py, test_hf_mount.py).
"""

# Run by `make check` (TAP on stdout, the figures as "# " lines), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_bounded.py [PART]

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (HfFixture, check, check_eq, errno_name, hf_setup,  # noqa: E402
                           mount, read_blobs_at_once, run, serve_blobs, sha256_bytes, test,
                           wait_for)

import make_hf_repos as fx  # noqa: E402
from blob_server import BlobServer, files_of, make_blobs, manifest_of  # noqa: E402

KiB = 1 << 10
QUICK = 2.0      # seconds: a bound on what must not wait for the network (robust under ASan)
STALL = 60.0     # seconds the stalled API takes to answer
KILLED = 5.0     # seconds a killed process may take to exit
# The daemon's threads are main, FUSE's (main.c: at most 64), the core's two pools (core.h:
# 8 + 8), two per cache's transfer engine and the fs's notifier: 84 with one cache. A thread
# per file would be hundreds.
MAX_THREADS = 90
COLD_FILES = 300
# The daemon's VmRSS while the 300 cold files are in flight: measured 22.4 MiB at most (3 runs
# of the dev build, 22,388 to 22,516 KiB) and 178 MiB under ASan (one run, 182,388 KiB: its
# shadow memory and quarantine). The bound is about three times that; a buffer per file held
# for the whole transfer, or a thread stack touched per file, passes it.
MAX_RSS_KIB = 64 << 10
ASAN_RSS_SCALE = 8


class Shared(HfFixture):
    def __init__(self, run_dir):
        super().__init__(run_dir, page_size=100)


def shared_setup(run_dir):
    return hf_setup(Shared(run_dir))


def before_each(shared):
    shared.srv.unstall()
    shared.srv.clear_log()


def hf_mount(t, *extra):
    return mount(t, t.shared.srv, *extra)


@contextlib.contextmanager
def stalled(srv):
    """The Hub's API stalls for STALL seconds; released on the way out, so that what waits
    on it ends and the daemon can exit."""
    srv.stall_api(STALL)
    try:
        yield
    finally:
        srv.unstall()


def figure(t, line):
    """A measured figure: printed as a TAP comment, kept for a failure's diagnostics."""
    print("# " + line, flush=True)
    t.note(line)


def timed(func, *args):
    """(result, milliseconds) of func(*args), run in a thread so that a hang fails the test
    after QUICK * 5 s instead of hanging it."""
    out = {}

    def body():
        try:
            out["value"] = func(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out["error"] = e
    start = time.monotonic()
    th = threading.Thread(target=body, daemon=True)
    th.start()
    th.join(QUICK * 5)
    ms = (time.monotonic() - start) * 1000
    check(not th.is_alive(), "%s(%s) still blocked after %.0f s" % (func.__name__, args[0], QUICK * 5))
    if "error" in out:
        raise out["error"]
    return out["value"], ms


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def api_in_flight(srv, substring):
    return [r for r in srv.requests(kind="api", path_substring=substring) if r["end"] is None]


def start_lookups(m, org, prefix, count, results):
    """count threads, each a stat of an unseen repo org/<prefix>-NNN; results[i] becomes
    "found" or the errno's name. Returns the threads, started."""
    def look(i):
        try:
            os.stat(m.path("huggingface", org, "%s-%03d" % (prefix, i)))
            results[i] = "found"
        except OSError as e:
            results[i] = errno_name(e.errno)
    threads = [threading.Thread(target=look, args=(i,), daemon=True) for i in range(count)]
    for th in threads:
        th.start()
    return threads


STAT_SYSCALLS = {"4", "6", "262", "332"}  # x86-64's stat, lstat, newfstatat, statx


def waiting_in_the_kernel(threads):
    """How many of threads are blocked in their stat (sent to the daemon) or already done:
    a thread not yet in its stat when the daemon exits would find the mount gone (ENOENT)
    and prove nothing about the daemon. (A thread waiting for Python's lock is in futex.)"""
    count = 0
    for th in threads:
        try:
            with open("/proc/self/task/%d/syscall" % th.native_id) as f:
                call = f.read().split(" ", 1)[0]
            count += call in STAT_SYSCALLS if os.uname().machine == "x86_64" else call != "running"
        except (FileNotFoundError, TypeError):  # the thread ended, or has not started yet
            count += not th.is_alive() and th.native_id is not None
    return count


def warm(t, m):
    """A file of the ONNX repo read (cached) and its folder listed; returns (file path,
    its bytes, the folder)."""
    root = m.path("huggingface", *fx.ONNX_REPO.split("/"))
    names = sorted(os.listdir(root))
    f = next(f for f in fx.files_at(fx.find_repo(t.shared.desc, fx.ONNX_REPO)).values()
             if "/" not in f["path"] and f["size"] > 0)
    path = os.path.join(root, f["path"])
    data = read_bytes(path)
    check(len(data) == f["size"], "size of %s" % f["path"])
    return path, data, root, names


@test
def stalled_api_holds_up_nothing_cached(t):
    """100 lookups of unseen repos wait on a stalled API at once; meanwhile a read of a cached
    file, an ls of a folder listed before and a read of .omnihub/status answer at once."""
    srv = t.shared.srv
    org = fx.ONNX_REPO.split("/")[0]
    with hf_mount(t) as m:
        path, data, root, names = warm(t, m)
        results = {}
        with stalled(srv):
            threads = start_lookups(m, org, "stall", 100, results)
            # Under way: the API has requests for them in flight (the pool's workers), and
            # none has been answered.
            wait_for(lambda: len(api_in_flight(srv, "/stall-")) >= 4, 20,
                     "stalled lookups reaching the API")
            check_eq(len(results), 0, "lookups answered while the API stalls")
            got, ms = timed(read_bytes, path)
            figure(t, "read of a cached file: %.0f ms" % ms)
            check(got == data, "bytes of the cached file")
            check(ms < QUICK * 1000, "read of a cached file took %.0f ms" % ms)
            listing, ms = timed(os.listdir, root)
            figure(t, "ls of a listed folder: %.0f ms" % ms)
            check_eq(sorted(listing), names, "the listed folder")
            check(ms < QUICK * 1000, "ls of a listed folder took %.0f ms" % ms)
            status, ms = timed(read_bytes, m.path(".omnihub", "status"))
            figure(t, "read of .omnihub/status: %.0f ms" % ms)
            check(len(status) > 0, ".omnihub/status is empty")
            check(ms < QUICK * 1000, "read of .omnihub/status took %.0f ms" % ms)
            check_eq(len(results), 0, "lookups answered while the API stalls")
        for th in threads:
            th.join(60)
        # No such repo: anonymously the Hub says 401, as for a private one (EACCES).
        check(set(results.values()) <= {"ENOENT", "EACCES"},
              "what the 100 lookups got: %s" % sorted(set(results.values())))
        check_eq(len(results), 100, "lookups answered once the API answers")


@test
def paced_api_holds_up_nothing_cached(t):
    """hf_api_budget=4/40: once the warm-up spent the budget, 20 lookups of unseen repos wait
    their turn in the pacing (a wait of our own, not the network's); meanwhile a read of a
    cached file, an ls of a folder listed before and a read of .omnihub/status answer at
    once; and SIGTERM ends the daemon at once, the waiting lookups answered EINTR (the
    pacing's sleep once held the exit until it ended)."""
    srv = t.shared.srv
    org = fx.ONNX_REPO.split("/")[0]
    with hf_mount(t, "hf_api_budget=4/40") as m:
        path, data, root, names = warm(t, m)
        time.sleep(1)
        srv.clear_log()
        results = {}
        threads = start_lookups(m, org, "paced", 20, results)
        wait_for(lambda: waiting_in_the_kernel(threads) == len(threads), 20,
                 "every lookup waiting in its stat")
        time.sleep(1)  # past the first call's turn: the others wait on the pacing
        got, ms = timed(read_bytes, path)
        figure(t, "read of a cached file while 20 lookups wait on the pacing: %.0f ms" % ms)
        check(got == data and ms < QUICK * 1000, "read of a cached file took %.0f ms" % ms)
        listing, ms = timed(os.listdir, root)
        figure(t, "ls of a listed folder: %.0f ms" % ms)
        check(sorted(listing) == names and ms < QUICK * 1000, "ls took %.0f ms" % ms)
        status, ms = timed(read_bytes, m.path(".omnihub", "status"))
        figure(t, "read of .omnihub/status: %.0f ms" % ms)
        check(len(status) > 0 and ms < QUICK * 1000, "status took %.0f ms" % ms)
        asked = len(srv.requests(path_substring="/paced-"))
        figure(t, "API calls made for the 20 lookups by then: %d" % asked)
        check(len(results) < len(threads) and asked < len(threads),
              "every lookup was answered at once (%d API calls): the pacing made nobody wait"
              % asked)
        start = time.monotonic()
        m.proc.send_signal(signal.SIGTERM)
        try:
            m.proc.wait(QUICK * 5)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - start
        figure(t, "exit on SIGTERM with lookups waiting on the pacing: %.2f s" % took)
        check(m.proc.returncode == 0, "the daemon still ran %.0f s after SIGTERM" % took)
        for th in threads:
            th.join(QUICK * 5)
        check(set(results.values()) <= {"EINTR", "ENOENT", "EACCES"},
              "what the lookups got: %s" % sorted(set(results.values())))


def probe_catalog(t):
    """A user catalog (its folder) with one entry without a size, served by the Hub's file
    route (not stalled with the API): its stat needs a size probe, remote work for a worker."""
    srv = t.shared.srv
    # The last such file: warm() reads the first.
    f = [f for f in fx.files_at(fx.find_repo(t.shared.desc, fx.ONNX_REPO)).values()
         if "/" not in f["path"] and f["size"] > 0][-1]
    folder = os.path.join(t.dir, "catalogs")
    os.makedirs(folder, exist_ok=True)
    doc = {"omnihub_catalog": 1, "hub": "probed", "base_url": srv.endpoint + "/",
           "models": {"sized_later": {"entries": {"only": {
               "url": "%s/resolve/main/%s" % (fx.ONNX_REPO, f["path"]),
               "file": "only.bin", "digests": {"sha256": f["sha256"]}, "format": "bin"}}}}}
    with open(os.path.join(folder, "probed.json"), "w") as out:
        json.dump(doc, out)
    return folder, f


@test
def stalled_hub_leaves_workers_for_another(t):
    """100 lookups wait on the stalled Hub API, more than the request workers (8); a stat in
    another hub that needs its own remote work (a size probe) still answers at once, because
    one hub may hold at most 6 of the workers."""
    srv = t.shared.srv
    org = fx.ONNX_REPO.split("/")[0]
    folder, f = probe_catalog(t)
    with hf_mount(t, "catalogs=" + folder) as m:
        check_eq(os.listdir(m.path("probed")), ["sized_later"], "the user catalog's hub")
        # Its folder is not listed: a listing would learn the size (READDIRPLUS).
        warm(t, m)  # the org is known: each lookup below is a request of its own
        results = {}
        with stalled(srv):
            threads = start_lookups(m, org, "held", 100, results)
            wait_for(lambda: len(api_in_flight(srv, "/held-")) >= 4, 20,
                     "stalled lookups reaching the API")
            time.sleep(0.5)  # the workers it may take are taken
            in_flight = len(api_in_flight(srv, "/held-"))
            figure(t, "stalled API requests in flight: %d" % in_flight)
            check(in_flight <= 6, "%d requests of one hub in flight, more than its 6" % in_flight)
            resolve = "/resolve/main/" + f["path"]
            check_eq(srv.requests(kind="resolve", path_substring=resolve), [],
                     "requests for the entry before its stat")
            st, ms = timed(os.stat, m.path("probed", "sized_later", "only.bin"))
            figure(t, "stat needing a size probe, while the API stalls: %.0f ms" % ms)
            check_eq(st.st_size, f["size"], "size learnt by the probe")
            check(len(srv.requests(kind="resolve", path_substring=resolve)) >= 1,
                  "the stat made no request for the entry's size")
            check(ms < QUICK * 1000, "the probe's stat took %.0f ms" % ms)
            check_eq(len(results), 0, "lookups answered while the API stalls")
        for th in threads:
            th.join(60)
        check_eq(len(results), 100, "lookups answered once the API answers")


@test
def sigterm_while_api_stalls(t):
    """SIGTERM while 20 lookups wait on the stalled API (fusermount3 -u says EBUSY then, as
    for any filesystem with calls in flight): the daemon cancels their requests, answers
    them, unmounts and exits at once, not when the stall ends."""
    srv = t.shared.srv
    org = fx.ONNX_REPO.split("/")[0]
    with hf_mount(t) as m:
        warm(t, m)
        results = {}
        with stalled(srv):
            threads = start_lookups(m, org, "gone", 20, results)
            wait_for(lambda: len(api_in_flight(srv, "/gone-")) >= 4, 20,
                     "stalled lookups reaching the API")
            wait_for(lambda: waiting_in_the_kernel(threads) == len(threads), 20,
                     "every lookup waiting in its stat")
            start = time.monotonic()
            m.proc.send_signal(signal.SIGTERM)
            try:
                m.proc.wait(STALL / 4)
            except subprocess.TimeoutExpired:
                pass
            took = time.monotonic() - start
            figure(t, "exit on SIGTERM with 20 lookups on a stalled API: %.2f s" % took)
            check(m.proc.returncode == 0, "the daemon still ran %.0f s after SIGTERM (status %s)"
                  % (took, m.proc.returncode))
            for th in threads:
                th.join(QUICK * 5)
            check(not any(th.is_alive() for th in threads), "a lookup still waits after the exit")
            figure(t, "what the waiting lookups got: %s" % sorted(set(results.values())))
            check_eq(len(results), 20, "lookups answered")
            check_eq(set(results.values()), {"EINTR"}, "what the lookups got")


@test
def stat_waiting_on_stalled_api_is_killable(t):
    """A process whose stat waits on the stalled API exits at once when SIGKILLed."""
    srv = t.shared.srv
    org = fx.ONNX_REPO.split("/")[0]
    with hf_mount(t) as m:
        warm(t, m)
        with stalled(srv):
            target = m.path("huggingface", org, "killable-repo")
            child = subprocess.Popen([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])",
                                      target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: api_in_flight(srv, "/killable-repo"), 20,
                         "the stat's request reaching the API")
                time.sleep(0.2)
                check(child.poll() is None, "the stat ended while the API stalls")
                start = time.monotonic()
                child.send_signal(signal.SIGKILL)
                try:
                    child.wait(KILLED)
                except subprocess.TimeoutExpired:
                    pass
                took = time.monotonic() - start
                figure(t, "killed stat exited after %.0f ms" % (took * 1000))
                check(child.poll() is not None,
                      "a SIGKILLed stat still waits on the stalled API after %.0f s" % KILLED)
            finally:
                if child.poll() is None:
                    srv.unstall()
                    child.wait(STALL)


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def open_all_at_once(t, m, blobs):
    """Read every blob through the mount, each in its own thread; returns ({name: sha256 or
    "error E"}, the threads)."""
    return read_blobs_at_once(m, blobs)


@contextlib.contextmanager
def serve(t, count, size, rate):
    with serve_blobs(t, [("cold%03d" % i, size) for i in range(count)], rate) as (srv, blobs):
        yield srv, list(blobs.values())


@test
def many_cold_opens_bounded_threads(t):
    """300 cold files opened at once: the daemon's threads stay under MAX_THREADS while they
    are in flight, a status read answers at once, and every file reads right."""
    with serve(t, COLD_FILES, 16 * KiB, rate=16 * KiB) as (srv, blobs):
        with t.mount(["cache=" + t.cache] + srv.options()) as m:
            pid = m.proc.pid
            base = thread_count(pid)
            done, threads = open_all_at_once(t, m, blobs)
            wait_for(lambda: len(srv.in_flight("/files/vision/test/cold")) >= 4, 30,
                     "cold downloads in flight")
            most, rss = base, rss_kib(pid)
            status_ms = None
            deadline = time.monotonic() + 300
            while any(th.is_alive() for th in threads) and time.monotonic() < deadline:
                most = max(most, thread_count(pid))
                rss = max(rss, rss_kib(pid))
                if status_ms is None and len(done) < COLD_FILES // 2:
                    _, status_ms = timed(read_bytes, m.path(".omnihub", "status"))
                time.sleep(0.05)
            figure(t, "threads: %d at rest, at most %d with %d cold files in flight (bound %d)"
                   % (base, most, COLD_FILES, MAX_THREADS))
            rss_bound = MAX_RSS_KIB * (ASAN_RSS_SCALE if sanitized(t.binary) else 1)
            figure(t, "VmRSS at most %d KiB with %d cold files in flight (bound %d KiB%s)"
                   % (rss, COLD_FILES, rss_bound, ", ASan" if sanitized(t.binary) else ""))
            check(status_ms is not None, "the files came too fast to read the status meanwhile")
            figure(t, "status read while they were in flight: %.0f ms" % status_ms)
            check(status_ms < QUICK * 1000, "status read took %.0f ms" % status_ms)
            check(most <= MAX_THREADS, "the daemon ran %d threads (bound %d)" % (most, MAX_THREADS))
            check(rss <= rss_bound, "the daemon's VmRSS reached %d KiB (bound %d KiB)"
                  % (rss, rss_bound))
            check_eq(done, {b.name: b.sha256 for b in blobs}, "sha256 of the %d files" % COLD_FILES)


ARCHIVE_PATH = "archives/big.tar.gz"
ARCHIVE_MEMBERS = 100
ARCHIVE_RATE = 256 * KiB  # bytes/s: the 2.5 MiB archive takes about ten seconds to arrive
ARCHIVE_WAITERS = 100  # more than the FUSE threads (main.c: at most 64)


def make_archive():
    """A tar.gz of ARCHIVE_MEMBERS files of 25 KiB of random bytes each (incompressible):
    ({member name: sha256}, the archive's bytes)."""
    import io
    import random
    import tarfile
    members, buf = {}, io.BytesIO()
    rnd = random.Random("archive")
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(ARCHIVE_MEMBERS):
            data = rnd.randbytes(25 * KiB)
            info = tarfile.TarInfo("m%03d.bin" % i)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            members[info.name] = sha256_bytes(data)
    return members, buf.getvalue()


@test
def archive_staging_holds_no_fuse_thread(t):
    """An archive entry of a user catalog, served slowly, staged while ARCHIVE_WAITERS stats
    of its members wait on it (more than the FUSE threads): a read of a cached file, an ls of
    a listed folder and a read of .omnihub/status each answer within QUICK; then every
    member reads right."""
    members, archive = make_archive()
    blobs = make_blobs(os.path.join(t.dir, "files"), [("Warm", 64 * KiB)])
    files = dict(files_of(blobs), **{ARCHIVE_PATH: archive})
    srv = BlobServer(t.shared.tls_dir, manifest_of(blobs), files)
    with srv:
        srv.set_rate(ARCHIVE_PATH, ARCHIVE_RATE)
        folder, empty = os.path.join(t.dir, "catalogs"), os.path.join(t.dir, "no-system")
        os.makedirs(folder)
        os.makedirs(empty)
        doc = {"omnihub_catalog": 1, "hub": "archives", "base_url": srv.hub_url,
               "models": {"big": {"entries": {"1": {
                   "url": ARCHIVE_PATH, "format": "tar.gz", "archive": {}, "size": len(archive),
                   "digests": {"sha256": sha256_bytes(archive)}}}}}}
        with open(os.path.join(folder, "archives.json"), "w") as out:
            json.dump(doc, out)
        opts = ["cache=" + t.cache, "catalogs=" + folder, "system_catalogs=" + empty]
        with t.mount(opts + srv.options()) as m:
            warm = blobs[0]
            check_eq(sha256_bytes(read_bytes(m.path(warm.rel))), warm.sha256, "the warm file")
            listed = sorted(os.listdir(m.path("onnx")))
            staged = m.path("archives", "big", "1")
            results = {}

            def look(i):
                try:
                    os.stat(os.path.join(staged, "m%03d.bin" % (i % ARCHIVE_MEMBERS)))
                    results[i] = "found"
                except OSError as e:
                    results[i] = errno_name(e.errno)
            threads = [threading.Thread(target=look, args=(i,), daemon=True)
                       for i in range(ARCHIVE_WAITERS)]
            for th in threads:
                th.start()
            wait_for(lambda: srv.in_flight("/files/" + ARCHIVE_PATH), 30,
                     "the archive's download in flight")
            time.sleep(0.5)  # the waiters have reached the daemon
            check(srv.in_flight("/files/" + ARCHIVE_PATH) and len(results) == 0,
                  "the archive arrived before the checks (%d stats answered)" % len(results))
            got, ms = timed(read_bytes, m.path(warm.rel))
            figure(t, "cached read while the archive stages: %.0f ms" % ms)
            check_eq(sha256_bytes(got), warm.sha256, "the cached file while the archive stages")
            check(ms < QUICK * 1000, "the cached read took %.0f ms" % ms)
            got, ms = timed(lambda path: sorted(os.listdir(path)), m.path("onnx"))
            figure(t, "ls of a listed folder while the archive stages: %.0f ms" % ms)
            check_eq(got, listed, "the listing while the archive stages")
            check(ms < QUICK * 1000, "the ls took %.0f ms" % ms)
            got, ms = timed(read_bytes, m.path(".omnihub", "status"))
            figure(t, "status read while the archive stages: %.0f ms" % ms)
            check(ms < QUICK * 1000, "the status read took %.0f ms" % ms)
            check(srv.in_flight("/files/" + ARCHIVE_PATH) and len(results) == 0,
                  "the archive arrived during the checks: they prove nothing")
            for th in threads:
                th.join(120)
            check_eq(set(results.values()), {"found"}, "what the stats of the members got")
            for name, sha in sorted(members.items())[:5]:
                check_eq(sha256_bytes(read_bytes(os.path.join(staged, name))), sha,
                         "sha256 of " + name)


def sanitized(binary):
    """Whether the binary is built with ASan, which reserves terabytes of address space."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return "libasan" in out


@test
def cold_opens_under_address_space_limit(t):
    """Under a 512 MiB address-space limit (ulimit -v), 20 cold files opened at once all
    read right: no thread per file that could not get its stack."""
    if sanitized(t.binary):
        figure(t, "SKIP: an ASan build cannot run under an address-space limit")
        return
    with serve(t, 20, 64 * KiB, rate=64 * KiB) as (srv, blobs):
        with t.mount(["cache=" + t.cache] + srv.options(),
                     prefix=["prlimit", "--as=%d" % (512 << 20), "--"]) as m:
            done, threads = open_all_at_once(t, m, blobs)
            for th in threads:
                th.join(120)
            figure(t, "VmRSS %d KiB, VmPeak %d KiB, %d threads after the reads"
                   % (rss_kib(m.proc.pid), status_kib(m.proc.pid, "VmPeak"),
                      thread_count(m.proc.pid)))
            check_eq(done, {b.name: b.sha256 for b in blobs}, "sha256 of the 20 files")


if __name__ == "__main__":
    run(shared_setup, before_each)
