#!/usr/bin/env python3
"""Integration tests of omnihub-fuse's download layer: pieces, resume, retries, streaming, locks and eviction, through a real mount.
Not for the zoo's names, listings and client caches (test_onnx_mount.py) nor for speed (scripts/bench).
"""

# Each test serves its own files from tests/fixtures/blob_server.py (hub + signed-URL CDN
# with injected faults and an in-memory access log) and checks the bytes read through the
# mount, the server's log and the cache directory. Run by `make check`, or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_transfers.py [PART]

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (all_files, check, check_eq, errno_name, is_mounted,  # noqa: E402
                           join_all, mount, nolock_fs, read_all_at_once, read_blobs_at_once,
                           read_errno, run, serve_blobs, sha256_bytes, sha256_file, test,
                           tls_setup, wait_for)

from blob_server import Blob, random_bytes  # noqa: E402
from mirror_server import MirrorServer  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
PIECE = 4 * MiB  # the design's default piece size
HEX64 = re.compile(r"^[0-9a-f]{64}$")
QUICK = 2.0  # seconds: an upper bound on what must not wait for a download
WAIT = 60.0  # seconds: generous bound on a download that should finish


# ----------------------------------------------------------------------------- fixture

shared_setup = tls_setup


def summarize(srv, limit=60):
    """The server's log as text, for a failing test's diagnostics."""
    lines = []
    records = srv.requests()
    t0 = records[0]["start"] if records else 0.0
    for r in records[-limit:]:
        end = "%.2f" % (r["end"] - t0) if r["end"] is not None else "-"
        lines.append("%7.2f %6s c%-3d %-4s %-60s %s %s ir=%s fault=%s bytes=%d"
                     % (r["start"] - t0, end, r["conn"], r["method"], r["path"][-60:],
                        r["status"], r["range"], r["if_range"], r["fault"], r["bytes"]))
    return "server log (%d requests, last %d):\n%s" % (len(records), min(limit, len(records)),
                                                       "\n".join(lines))


def serve(t, specs, rate=None, wrong_sha=(), extra=()):
    """Make files of random bytes ((name, size) each) and serve them; yields (server,
    {name: Blob}). extra: more Blobs (or entries) to list and serve."""
    return serve_blobs(t, specs, rate, wrong_sha, extra, on_failure=summarize)


def options(t, srv, cache=None):
    return ["cache=" + (cache or t.cache)] + srv.options()


def second_mount(t, srv, name, *extra, cache=None):
    """A Mount on another mount point in t's directory, cleaned up with t's own."""
    return mount(t, srv, *extra, cache=cache, mountpoint=os.path.join(t.dir, name))


def killed(m):
    """SIGKILL the daemon and detach its mount. The kill is the test's doing, so the
    Mount's cleanup must not count the exit status as a failed shutdown."""
    m.kill()
    m.proc.wait()
    check(not is_mounted(m.mountpoint), "%s still mounted after the kill" % m.mountpoint)
    m._stopped = True
    m.problem = None


def blob_path(cache, sha):
    return os.path.join(cache, "blobs", "sha256", sha)


def leftovers(cache):
    """Every .partial and .state file anywhere in the cache."""
    return sorted(p for p in all_files(cache) if p.endswith((".partial", ".state")))


def complete_blobs(cache):
    """{sha: size} of the complete blobs."""
    d = os.path.join(cache, "blobs", "sha256")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return {}
    return {n: os.path.getsize(os.path.join(d, n)) for n in names if HEX64.match(n)}


def read_all(path, chunk=MiB):
    with open(path, "rb") as f:
        return read_rest(f, chunk)


def read_rest(f, chunk=MiB):
    parts = []
    while True:
        block = f.read(chunk)
        if not block:
            return b"".join(parts)
        parts.append(block)


def check_bytes(path, b):
    check_eq(sha256_file(path), b.sha256, "sha256 of what %s reads" % path)


def within(seconds, func, *args):
    """Run func(*args) in a thread; its result if it returns within seconds, else fail.
    (A call stuck on the mount stays stuck; the mount's cleanup releases it.)"""
    box = {}

    def body():
        try:
            box["value"] = func(*args)
        except BaseException as e:  # noqa: B902 - handed to the caller
            box["error"] = e

    name = getattr(func, "__name__", repr(func))
    th = threading.Thread(target=body, daemon=True)
    started = time.monotonic()
    th.start()
    th.join(seconds)
    if th.is_alive():
        raise AssertionError("%s%r did not return within %.1f s" % (name, args, seconds))
    if "error" in box:
        raise box["error"]
    return box.get("value"), time.monotonic() - started


def served_intervals(srv, b, method="GET"):
    """[start, end) of the body bytes the CDN sent for b, per request, in request order."""
    return [(r["range_start"], r["range_start"] + r["bytes"])
            for r in srv.file_requests(b.model_path, method) if r["bytes"] > 0]


def overlaps(intervals):
    """Pairs of intervals that share a byte."""
    s = sorted(intervals)
    return [(a, c) for a, c in zip(s, s[1:]) if c[0] < a[1]]


# ----------------------------------------------------------------------------- the state file

def parse_state(path):
    """The sidecar as {key: value}: "key value", "key: value" and "key=value" lines."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*([A-Za-z_][\w-]*)\s*[:=]?\s*(.*?)\s*$", line)
            if m:
                out[m.group(1).lower()] = m.group(2)
    return out


def piece_bits(state):
    """The `pieces` bitmap as bytes (None if there is no such hex line)."""
    value = state.get("pieces")
    if value is None:
        return None
    hexes = [re.sub(r"^0[xX]", "", tok) for tok in value.split()]
    hexes = [tok for tok in hexes if re.fullmatch(r"[0-9a-fA-F]+", tok)]
    if not hexes:
        return None
    text = hexes[-1]
    if len(text) % 2:
        text += "0"
    return bytes.fromhex(text)


def has_a_piece(state_file):
    """Whether the sidecar state_file, read now, marks a piece present (False if unreadable)."""
    try:
        bits = piece_bits(parse_state(state_file))
    except OSError:
        return False
    return bits is not None and any(bits)


def present_pieces(bits, count, msb_first):
    out = []
    for i in range(count):
        if i // 8 < len(bits):
            shift = 7 - i % 8 if msb_first else i % 8
            if bits[i // 8] >> shift & 1:
                out.append(i)
    return out


def state_pieces(t, b, piece, partial_path, state):
    """The pieces the sidecar records as present. The bit order of the hex bitmap is not
    fixed by the design: the order under which every recorded piece holds the right bytes
    in the .partial is the one the daemon uses (a wrong reading would point at holes)."""
    bits = piece_bits(state)
    check(bits is not None, "no hex `pieces` line in the state: %r" % state)
    count = (b.bytes + piece - 1) // piece
    with open(partial_path, "rb") as f:
        partial = read_rest(f, 8 * MiB)
    readings = []
    for msb in (False, True):
        present = present_pieces(bits, count, msb)
        good = all(partial[i * piece:(i + 1) * piece] == b.data[i * piece:(i + 1) * piece]
                   for i in present)
        readings.append((msb, present, good))
        t.note("state pieces read %s-first: %s (%s)" % ("MSB" if msb else "LSB", present,
                                                          "bytes right" if good else "bytes wrong"))
    fitting = [r for r in readings if r[2]]
    check(fitting, "no bit order of the state's pieces matches the bytes in the .partial")
    return fitting[0][1]


def slow_read_then_kill(t, srv, b, *extra):
    """Mount, read b in a background thread (default mode), SIGKILL the daemon once the
    .partial and .state exist and the state records at least one piece; returns the
    state read after the kill and the pieces it records present."""
    sha = b.sha256
    partial, state_file = blob_path(t.cache, sha) + ".partial", blob_path(t.cache, sha) + ".state"
    m = mount(t, srv, *extra).start()
    errors = []

    def reader():
        try:
            read_all(m.path(b.rel))
        except OSError as e:  # the kill aborts the open
            errors.append(e.errno)

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    wait_for(lambda: os.path.exists(partial) and os.path.exists(state_file)
             and has_a_piece(state_file), WAIT, "a .partial and a .state with a piece present")
    killed(m)
    th.join(10)
    check(not th.is_alive(), "the reader still blocks after the daemon was killed")
    check(os.path.exists(partial), "no .partial after the kill")
    check(os.path.exists(state_file), "no .state after the kill")
    state = parse_state(state_file)
    present = state_pieces(t, b, PIECE, partial, state)
    count = (b.bytes + PIECE - 1) // PIECE
    check(0 < len(present) < count, "pieces present after the kill: %s of %d" % (present, count))
    return state, present


# ----------------------------------------------------------------------------- tests

@test
def plain_reads_through_blob_server(t):
    # The harness itself, on behaviour older than the piece layer: cold reads come from
    # the hub's redirect, warm ones from the cache without a request.
    with serve(t, [("plain", 3 * MiB), ("other", 1 * MiB + 17)]) as (srv, blobs):
        with mount(t, srv) as m:
            check_eq(sorted(os.listdir(m.path("onnx"))), ["other", "plain"], "entries of onnx/")
            for b in blobs.values():
                check_eq(os.stat(m.path(b.rel)).st_size, b.bytes, "size of " + b.rel)
                check_bytes(m.path(b.rel), b)
            srv.wait_idle()
            before = len(srv.requests())
            for b in blobs.values():
                check_bytes(m.path(b.top_rel), b)
            check_eq(len(srv.requests()), before, "requests for files already read")
        for b in blobs.values():
            check(srv.requests("/hub/" + b.model_path, "GET"), "the hub was not asked for " + b.name)
            check(srv.bytes_sent("/files/" + b.model_path) >= b.bytes,
                  "the CDN sent less than %s" % b.name)
        check(not any(r["auth"] for r in srv.requests("/files/")), "Authorization sent to the CDN")


@test
def parallel_pieces(t):
    with serve(t, [("par", 48 * MiB)]) as (srv, b):
        b = b["par"]
        with mount(t, srv, "piece_size=4M", "connections=4") as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        gets = [r for r in srv.file_requests(b.model_path) if r["status"] == 206]
        check(len(gets) >= 12, "%d Range requests answered 206, expected >= 12" % len(gets))
        intervals = sorted((r["range_start"], r["range_end"] + 1) for r in gets)
        for start, end in intervals:
            check(start % PIECE == 0, "range starting at %d is not aligned to 4 MiB" % start)
        check_eq([iv for iv in intervals], [(s, min(s + PIECE, b.bytes))
                                            for s in range(0, b.bytes, PIECE)],
                 "served ranges (each piece exactly once)")
        check_eq(sum(r["bytes"] for r in gets), b.bytes, "body bytes sent")
        check(srv.max_concurrency("/files/") >= 2,
              "max concurrency %d, expected >= 2" % srv.max_concurrency("/files/"))
    blob = os.stat(blob_path(t.cache, b.sha256))
    tree = os.stat(os.path.join(t.cache, b.rel))
    check_eq(tree.st_ino, blob.st_ino, "inode of the tree file vs the blob")
    check(blob.st_nlink >= 2, "blob st_nlink %d" % blob.st_nlink)
    check_eq(leftovers(t.cache), [], ".partial/.state left in the cache")


@test
def hub_section_connections(t):
    """The user's config says connections = 4 for every hub and 1 in [onnx]: the onnx hub's
    pieces come one request at a time (the general 4 shows in parallel_pieces)."""
    with serve(t, [("one", 24 * MiB)], rate=4_000_000) as (srv, b):
        b = b["one"]
        config = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
        os.makedirs(os.path.dirname(config))
        with open(config, "w", encoding="utf-8") as f:
            f.write("connections = 4\npiece_size = 4M\n\n[onnx]\nconnections = 1\n")
        with mount(t, srv) as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        gets = [r for r in srv.file_requests(b.model_path) if r["status"] == 206]
        check(len(gets) >= 6, "%d Range requests answered 206, expected >= 6" % len(gets))
        check_eq(srv.max_concurrency("/files/"), 1, "requests in flight at once")


@test
def stream_reads_header_early(t):
    with serve(t, [("stream", 64 * MiB)], rate=2_000_000) as (srv, b):
        b = b["stream"]
        blob = blob_path(t.cache, b.sha256)
        with mount(t, srv, "stream", "connections=2") as m:
            with open(m.path(b.rel), "rb") as f:
                head = f.read(4096)
                check(os.path.exists(blob + ".partial"), "no .partial after the first read")
                check(not os.path.exists(blob), "the blob is complete already (too fast?)")
                check_eq(head, b.data[:4096], "the first 4096 bytes")
                srv.rate = None  # the rest may come fast
                rest = read_rest(f)
            check_eq(sha256_bytes(head + rest), b.sha256, "sha256 of the whole file")
            check_bytes(m.path(b.rel), b)


# Run in a process of its own: a failed page fault is SIGBUS, which must fail the test, not
# end the test runner. argv: path, size, seed file; prints JSON.
MMAP_FAULTER = r"""
import json, mmap, random, sys, threading, time
path, size, want_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
want = open(want_path, "rb").read()
f = open(path, "rb")
mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
page = mmap.PAGESIZE
out = {"wrong": [], "slowest": 0.0}
lock = threading.Lock()
def faulter(seed):
    rng = random.Random(seed)
    for _ in range(64):
        off = rng.randrange(0, size // page) * page
        start = time.monotonic()
        got = mm[off:off + 64]
        took = time.monotonic() - start
        with lock:
            out["slowest"] = max(out["slowest"], took)
            if got != want[off:off + 64]:
                out["wrong"].append(off)
threads = [threading.Thread(target=faulter, args=(i,)) for i in range(16)]
start = time.monotonic()
for th in threads:
    th.start()
for th in threads:
    th.join()
out["took"] = time.monotonic() - start
print(json.dumps(out))
"""


@test
def stream_mmap_parallel_page_faults(t):
    """16 threads fault random pages of one mmap of a cold file in stream mode (the way
    safetensors loads, and what deadlocks hf-mount): every page has the right bytes, no
    fault fails (SIGBUS) or hangs, and the file ends cached and whole."""
    size = 64 * MiB
    with serve(t, [("mapped", size)], rate=16_000_000) as (srv, b):
        b = b["mapped"]
        want = os.path.join(t.dir, "mapped.want")
        with open(want, "wb") as f:
            f.write(b.data)
        with mount(t, srv, "stream", "connections=4") as m:
            try:
                res = subprocess.run([sys.executable, "-c", MMAP_FAULTER, m.path(b.rel), str(size),
                                      want], capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                check(False, "page faults still waiting after 120 s (a deadlock)")
            check(res.returncode == 0, "the faulting process: status %d (%s) %s"
                  % (res.returncode, signal.Signals(-res.returncode).name
                     if res.returncode < 0 else "exit", res.stderr[-500:]))
            out = json.loads(res.stdout)
            print("# 16 threads x 64 random page faults: %.2f s, slowest fault %.2f s"
                  % (out["took"], out["slowest"]), flush=True)
            check_eq(out["wrong"], [], "pages with wrong bytes")
        with open(blob_path(t.cache, b.sha256), "rb") as f:
            check_eq(sha256_bytes(f.read()), b.sha256, "the cached blob")


@test
def stream_random_reads_fetch_only_their_pieces(t):
    """In stream mode, 4 KiB reads at scattered offsets of a cold file fetch the pieces they
    fall in and nothing ahead (a seek drops the read-ahead window), while a reader that then
    reads on from one of them gets its window again."""
    piece = 4 * MiB
    size = 224 * MiB  # random_bytes makes at most 255 MiB
    with serve(t, [("scattered", size)]) as (srv, b):
        b = b["scattered"]
        offsets = [200 * MiB + 12345, 40 * MiB + 7, 150 * MiB, 90 * MiB + 3 * MiB, 10 * MiB]
        with mount(t, srv, "stream", "piece_size=4M", "connections=2") as m:
            fd = os.open(m.path(b.rel), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no kernel read-ahead
                for off in offsets:
                    check_eq(os.pread(fd, 4096, off), b.data[off:off + 4096], "4 KiB at %d" % off)
                srv.wait_idle()
                got = sum(e - s for s, e in served_intervals(srv, b))
                want = len({off // piece for off in offsets}) * piece
                print("# %d scattered reads: %d MiB served, their pieces are %d MiB"
                      % (len(offsets), got // MiB, want // MiB), flush=True)
                check(got <= want, "%d bytes served for %d pieces of reads (%d bytes)"
                      % (got, len(offsets), want))
                # Reading on from the last one is a run: the window comes back.
                for off in range(10 * MiB + 4096, 12 * MiB, 128 * 1024):
                    os.pread(fd, 128 * 1024, off)
                srv.wait_idle()
                more = sum(e - s for s, e in served_intervals(srv, b)) - got
                print("# then 2 MiB read on: %d MiB more served" % (more // MiB), flush=True)
                check(more >= 8 * MiB, "a sequential run got no read-ahead (%d bytes)" % more)
            finally:
                os.close(fd)


@test
def stream_read_across_a_piece_boundary(t):
    """In stream mode, a short read after a seek that starts near a piece's end waits for
    that piece and the next: both are fetched (the next was never asked for, and the read
    hung, when pieces were stepped from the read's offset rather than its piece)."""
    with serve(t, [("straddled", 64 * MiB)]) as (srv, b):
        b = b["straddled"]
        with mount(t, srv, "stream", "piece_size=1M") as m:
            fd = os.open(m.path(b.rel), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no kernel read-ahead
                far = 40 * MiB  # a seek: no read-ahead window after it
                got, _ = within(30, os.pread, fd, 4096, far)
                check_eq(got, b.data[far:far + 4096], "the far read")
                at = 5 * MiB - 4096
                got, _ = within(30, os.pread, fd, 8192, at)
                check_eq(got, b.data[at:at + 8192], "the read across the boundary")
            finally:
                os.close(fd)


@test
def stream_read_jumps_the_read_ahead(t):
    """In stream mode, with one connection busy with a sequential reader's read-ahead, a read
    elsewhere is asked for next: the first request started after it is for its piece, before
    any piece the read-ahead hinted at."""
    piece = 1 * MiB
    with serve(t, [("queued", 160 * MiB)], rate=8_000_000) as (srv, b):
        b = b["queued"]
        with mount(t, srv, "stream", "piece_size=1M", "connections=1") as m:
            with open(m.path(b.rel), "rb") as f:
                for i in range(4):  # a sequential run: the read-ahead asks for tens of pieces
                    check_eq(f.read(MiB), b.data[i * MiB:(i + 1) * MiB], "sequential MiB %d" % i)
                before = len(srv.file_requests(b.model_path))
                far = 150 * MiB + 4096
                asked = time.monotonic()
                check_eq(os.pread(f.fileno(), 4096, far), b.data[far:far + 4096], "the far read")
                took = time.monotonic() - asked
            later = srv.file_requests(b.model_path)[before:]
            starts = [r["range_start"] for r in later]
            print("# pieces asked after the far read, in order: %s (it took %.2f s)"
                  % ([s // piece for s in starts[:6]], took), flush=True)
            # The one connection may have had a read-ahead piece on its way already (the
            # server logs a request when it arrives): the far piece is next after that one.
            pieces = [s // piece for s in starts]
            check(far // piece in pieces[:2], "the far read's piece was not asked next: %s"
                  % pieces[:6])


@test
def stream_digest_mismatch(t):
    with serve(t, [("liar", 8 * MiB)], rate=2 * MiB, wrong_sha={"liar"}) as (srv, b):
        b = b["liar"]
        with mount(t, srv, "stream", "connections=2") as m:
            path = m.path(b.rel)
            got = b""
            error = None
            with open(path, "rb") as f:
                got = f.read(64 * KiB)
                check_eq(got, b.data[:64 * KiB], "the early bytes (the server's)")
                try:
                    while True:
                        block = f.read(MiB)
                        if not block:
                            break
                        got += block
                except OSError as e:
                    error = e.errno
            check_eq(got, b.data[:len(got)], "the bytes read before the error")
            t.note("read %d bytes, then %s" % (len(got), errno_name(error) if error else "EOF"))
            check(error in (None, errno.EIO), "read ended in %s" % errno_name(error or 0))
            # At the latest, the next open+read says EIO (and so does every one after it).
            check_eq(errno_name(read_errno(path)), "EIO", "a new open+read")
            check_eq(errno_name(read_errno(path)), "EIO", "another open+read")
            lines = [line for line in m.log().splitlines() if "mismatch" in line]
            check(lines, "no log line with 'mismatch'")
            check(any("already" in line for line in lines),
                  "no 'mismatch' line says bytes were already read: %r" % lines)
            check(m.log_lines(b.rel + ": ", "mismatch", b.sha256, b.claimed_sha256),
                  "no 'mismatch' line names %s and both digests" % b.rel)
        for sha in (b.sha256, b.claimed_sha256):
            for suffix in ("", ".partial", ".state"):
                check(not os.path.exists(blob_path(t.cache, sha) + suffix),
                      "left in the cache: %s%s" % (sha, suffix))


@test
def failed_transfer_not_reused(t):
    """A reader holds a file whose download failed (bad bytes); the hub heals; a new open
    starts a new transfer instead of getting the failed one's EIO."""
    with serve(t, [("healed", 8 * MiB)]) as (srv, b):
        b = b["healed"]
        bad = bytearray(b.data)
        bad[len(bad) // 2] ^= 0xFF
        srv.set_file(b.model_path, bytes(bad))
        with mount(t, srv, "stream", "connections=2") as m:
            path = m.path(b.rel)
            with open(path, "rb") as held:
                try:
                    read_rest(held)
                except OSError:
                    pass
                wait_for(lambda: "mismatch" in m.log(), WAIT, "a mismatch log line")
                srv.set_file(b.model_path, b.data)  # healed; the first handle stays open
                got, _ = within(WAIT, read_all, path)
                check_eq(sha256_bytes(got), b.sha256, "sha256 of a new open after the heal")
            check_bytes(path, b)


@test
def long_signed_url_never_cut(t):
    """A signed URL longer than the daemon keeps (4 KiB) is never asked cut: each request
    goes through the hub's redirect instead."""
    with serve(t, [("longsig", 12 * MiB)]) as (srv, b):
        b = b["longsig"]
        srv.sig_pad = 5000
        with mount(t, srv, "connections=2") as m:
            within(WAIT, check_bytes, m.path(b.rel), b)
            refused = [r for r in srv.file_requests(b.model_path) if r["status"] == 403]
            check_eq(len(refused), 0, "requests with a cut signature")
            check("not kept" in m.log(), "no log line about the URL not kept")


@test
def sigkill_then_resume(t):
    with serve(t, [("resume", 32 * MiB)]) as (srv, b):
        b = b["resume"]
        srv.set_rate(b.model_path, MiB)
        state, present = slow_read_then_kill(t, srv, b, "piece_size=4M", "connections=2")
        first_missing = min(set(range(b.bytes // PIECE)) - set(present))
        t.note("pieces present %s, first missing %d" % (present, first_missing))
        srv.wait_idle(timeout=3)
        srv.clear_log()
        srv.set_rate(b.model_path, None)
        with mount(t, srv, "piece_size=4M", "connections=2") as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        gets = srv.file_requests(b.model_path)
        check(gets, "no requests after the remount")
        for r in gets:
            check(r["range"] is not None, "a request without Range after the remount: %r" % r)
            check(r["range_start"] is None or r["range_start"] >= first_missing * PIECE,
                  "request for %s starts before the first missing piece (%d)"
                  % (r["range"], first_missing))
        sent = srv.bytes_sent("/files/" + b.model_path)
        check(sent < b.bytes, "%d bytes sent after the remount, file is %d" % (sent, b.bytes))
        check_eq(leftovers(t.cache), [], ".partial/.state left after the resumed download")


@test
def sigterm_mid_download_keeps_it_for_later(t):
    """SIGTERM while a file downloads: the daemon exits 0 at once, the reader gets an error,
    the log calls nothing a failed download, and the .partial and .state stay, so the next
    mount goes on from them."""
    with serve(t, [("stopped", 32 * MiB)]) as (srv, b):
        b = b["stopped"]
        srv.set_rate(b.model_path, MiB)
        partial = blob_path(t.cache, b.sha256) + ".partial"
        state_file = blob_path(t.cache, b.sha256) + ".state"
        m = mount(t, srv, "piece_size=4M", "connections=2").start()
        errors = []

        def reader():
            try:
                read_all(m.path(b.rel))
            except OSError as e:
                errors.append(errno.errorcode.get(e.errno, e.errno))
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        wait_for(lambda: has_a_piece(state_file), WAIT, "a .state with a piece present")
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(20)
        th.join(10)
        check_eq(m.proc.returncode, 0, "the daemon's exit status")
        check(not th.is_alive(), "the reader still waits after the exit")
        check(errors, "the reader got the whole file from a daemon that stopped")
        bad = [line for line in m.log().splitlines()
               if "giving up" in line or "cancelled" in line or "error:" in line]
        check_eq(bad, [], "log lines of a failed download at a SIGTERM")
        check(os.path.exists(partial) and os.path.exists(state_file), "no .partial or .state kept")
        m.stop()
        srv.set_rate(b.model_path, None)
        srv.clear_log()
        with mount(t, srv, "piece_size=4M", "connections=2") as m2:
            check_bytes(m2.path(b.rel), b)
        sent = srv.bytes_sent("/files/" + b.model_path)
        check(sent < b.bytes, "%d bytes sent after the remount, file is %d" % (sent, b.bytes))


@test
def dropped_connection_resumes_piece(t):
    with serve(t, [("drop", 16 * MiB)]) as (srv, b):
        b = b["drop"]
        srv.add_fault(b.model_path, "drop", after=MiB)
        with mount(t, srv) as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        gets = srv.file_requests(b.model_path)
        broken = [r for r in gets if r["fault"] == "drop"]
        check_eq(len(broken), 1, "dropped responses")
        stop = broken[0]["range_start"] + broken[0]["bytes"]
        later = [r for r in gets if r["start"] >= broken[0]["start"] and r is not broken[0]
                 and r["range_start"] is not None]
        resumed = [r for r in later if r["range_start"] % PIECE != 0
                   and stop - 512 * KiB <= r["range_start"] <= stop]
        check(resumed, "no later request resumes near byte %d (where the broken one stopped); "
              "later ranges: %s" % (stop, [r["range"] for r in later]))


@test
def server_errors_retried(t):
    with serve(t, [("flaky", 6 * MiB)]) as (srv, b):
        b = b["flaky"]
        srv.add_fault(b.model_path, "status", code=503, count=2)
        srv.add_fault(b.model_path, "status", code=429, retry_after=1)
        with mount(t, srv) as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        gets = srv.file_requests(b.model_path)
        check_eq(sorted(r["status"] for r in gets if r["fault"]), [429, 503, 503],
                 "statuses of the injected faults")
        busy = [r for r in gets if r["status"] == 429][0]
        retry = [r for r in gets if r["start"] > busy["start"] and r["range"] == busy["range"]]
        check(retry, "the range of the 429 (%s) was not asked again" % busy["range"])
        gap = retry[0]["start"] - busy["end"]
        check(gap >= 0.9, "retry %.2f s after the 429 with Retry-After: 1" % gap)


@test
def drops_every_mib_still_arrive(t):
    """Every response is cut after 1 MiB: each try moves bytes, so none counts against
    retries (6 tries used to give EIO)."""
    with serve(t, [("choppy", 8 * MiB)]) as (srv, b):
        b = b["choppy"]
        srv.add_fault(b.model_path, "drop", after=MiB, count=-1)
        with mount(t, srv) as m:
            within(WAIT, check_bytes, m.path(b.rel), b)
        dropped = [r for r in srv.file_requests(b.model_path) if r["fault"] == "drop"]
        t.note("%d responses cut after 1 MiB" % len(dropped))
        check(len(dropped) >= 8, "only %d responses were cut" % len(dropped))


@test
def blip_resets_every_connection(t):
    """A blip resets all 8 connections at once and refuses every request for 10 s: the
    tries back off (the failures of one moment count once) and the file arrives, since
    what gives up is retry_time's 120 s, not a count of tries (5 tries in a row without
    progress, the count that gave up once, span 4 to 8 s of backoff)."""
    with serve(t, [("blip", 32 * MiB)], rate=2 * MiB) as (srv, b):
        b = b["blip"]
        with mount(t, srv, "connections=8") as m:
            def reader():
                return sha256_file(m.path(b.rel))
            box = {}
            th = threading.Thread(target=lambda: box.update(sha=reader()), daemon=True)
            th.start()
            wait_for(lambda: len(srv.in_flight(b.model_path)) >= 8, WAIT, "8 requests in flight")
            srv.reset_all(b.model_path, 10.0)
            srv.set_rate(b.model_path, None)
            th.join(WAIT)
            check(not th.is_alive(), "the read did not end")
            check_eq(box.get("sha"), b.sha256, "sha256 of what was read")
        reset = [r for r in srv.file_requests(b.model_path) if r["fault"] == "reset"]
        t.note("%d requests reset" % len(reset))
        check(len(reset) >= 8, "only %d requests were reset" % len(reset))


@test
def short_206_continues(t):
    """A legal 206 with less than the range asked: the rest is asked from where it ended."""
    with serve(t, [("short", 9 * MiB)]) as (srv, b):
        b = b["short"]
        srv.add_fault(b.model_path, "short", after=300 * KiB, count=-1)
        with mount(t, srv) as m:
            within(WAIT, check_bytes, m.path(b.rel), b)
        shorts = [r for r in srv.file_requests(b.model_path) if r["fault"] == "short"]
        check(len(shorts) > 3 * 9, "only %d short answers" % len(shorts))


@test
def retry_after_bounded(t):
    """An absurd Retry-After is refused with a log line (the usual backoff applies); one
    past the retry_time budget gives up at once, not after the wait."""
    with serve(t, [("huge", 2 * MiB), ("long", 2 * MiB)]) as (srv, b):
        srv.add_fault(b["huge"].model_path, "status", code=503, retry_after="99999999999")
        srv.add_fault(b["long"].model_path, "status", code=503, retry_after=3600, count=50)
        with mount(t, srv, "retry_time=5") as m:
            within(WAIT, check_bytes, m.path(b["huge"].rel), b["huge"])
            check("refused the header Retry-After: 99999999999" in m.log(),
                  "no log line refusing the Retry-After")
            rc, took = within(30, read_errno, m.path(b["long"].rel))
            check_eq(errno_name(rc), "EIO", "reading a file whose server asks to wait 3600 s")
            check("retry_time budget" in m.log(), "no log line about the retry_time budget")
            check(m.log_lines(b["long"].rel + ": ", "HTTP 503", "retry_time budget"),
                  "no log line names %s, its HTTP status and the budget" % b["long"].rel)


@test
def stall_times_out_and_retries(t):
    with serve(t, [("stall", 8 * MiB)]) as (srv, b):
        b = b["stall"]
        srv.add_fault(b.model_path, "stall", after=256 * KiB, seconds=30)
        with mount(t, srv, "stall_timeout=2") as m:
            started = time.monotonic()
            check_bytes(m.path(b.rel), b)
            took = time.monotonic() - started
            check(took < 20, "the read took %.1f s with a 30 s stall and stall_timeout=2" % took)
        gets = srv.file_requests(b.model_path)
        stalled = [r for r in gets if r["fault"] == "stall"]
        check_eq(len(stalled), 1, "stalled responses")
        s = stalled[0]
        resume_at = s["range_start"] + s["bytes"]
        retries = [r for r in gets if r["start"] > s["start"] and r["range_start"] is not None
                   and r["range_start"] <= resume_at <= r["range_end"]]
        check(retries, "the stalled bytes from %d were never asked again" % resume_at)
        check(any(r["conn"] != s["conn"] for r in retries),
              "the retry used the stalled connection (%d)" % s["conn"])


@test
def changed_file_restarts(t):
    with serve(t, [("moving", 32 * MiB)], rate=8 * MiB) as (srv, b):
        b = b["moving"]
        new = random_bytes(b.bytes, "new content")
        # The manifest names the new content; the CDN serves the old one for 2 requests.
        b.claimed_sha256 = sha256_bytes(new)
        srv.manifest_bytes = srv.manifest_bytes.replace(b.sha256.encode(), b.claimed_sha256.encode())
        srv.add_fault(b.model_path, "replace", after=2, data=new)
        with mount(t, srv, "piece_size=4M", "connections=2") as m:
            check_eq(sha256_file(m.path(b.rel)), sha256_bytes(new), "sha256 of what was read")
            restarted = [line for line in m.log().splitlines() if "restart" in line.lower()]
        srv.wait_idle()
        gets = srv.file_requests(b.model_path)
        check(len(gets) > 2, "only %d requests: the replacement never happened" % len(gets))
        refused = [r for r in gets if r["if_range"] is not None and r["status"] == 200]
        t.note("If-Range answered 200: %d; log lines about a restart: %r"
               % (len(refused), restarted))
        check(refused or restarted, "neither an If-Range answered 200 nor a restart in the log")
        check(os.path.exists(blob_path(t.cache, sha256_bytes(new))), "no blob of the new content")


@test
def expired_redirect_resolved_again(t):
    with serve(t, [("expiring", 24 * MiB)]) as (srv, b):
        b = b["expiring"]
        srv.add_fault(b.model_path, "expire", after=2)
        with mount(t, srv, "connections=2") as m:
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        hub = srv.requests("/hub/" + b.model_path, "GET")
        refused = [r for r in srv.file_requests(b.model_path) if r["status"] == 403]
        check(refused, "no request was refused: the fault did not fire")
        check(len(hub) > 1, "the hub URL was resolved %d time(s)" % len(hub))


@test
def two_daemons_one_cache(t):
    with serve(t, [("shared", 24 * MiB)], rate=MiB) as (srv, b):
        b = b["shared"]
        with mount(t, srv) as m1, second_mount(t, srv, "mnt2") as m2:
            paths = [m.path(b.rel) for m in (m1, m2)]
            check_eq(read_all_at_once(paths, WAIT), {p: b.sha256 for p in paths},
                     "sha256 read through each mount")
        srv.wait_idle()
        sent = srv.bytes_sent("/files/" + b.model_path)
        check(sent < 1.25 * b.bytes, "%d bytes sent for a %d-byte file" % (sent, b.bytes))
        check_eq(overlaps(served_intervals(srv, b)), [], "ranges fetched twice")


@test
def many_cold_opens_do_not_block(t):
    specs = [("cold%02d" % i, MiB) for i in range(64)] + [("warm", MiB)]
    with serve(t, specs, rate=256 * KiB) as (srv, blobs):
        warm = blobs.pop("warm")
        srv.set_rate(warm.model_path, None)
        with mount(t, srv) as m:
            check_bytes(m.path(warm.rel), warm)
            done, threads = read_blobs_at_once(m, blobs.values())
            # The downloads are under way once the CDN has requests in flight.
            wait_for(lambda: len(srv.in_flight("/files/vision/test/cold")) >= 4, 10,
                     "cold downloads in flight")
            listing, took = within(QUICK, os.listdir, m.path("onnx"))
            t.note("listdir %.2f s" % took)
            check_eq(len(listing), 65, "entries in onnx/")
            st, took = within(QUICK, os.stat, m.path(blobs["cold33"].rel))
            t.note("stat %.2f s" % took)
            check_eq(st.st_size, MiB, "size of a cold file")
            data, took = within(QUICK, read_all, m.path(warm.rel))
            t.note("read of the cached file %.2f s" % took)
            check_eq(sha256_bytes(data), warm.sha256, "sha256 of the cached file")
            pending = len(blobs) - len(done)
            check(pending >= 32, "only %d of 64 cold opens still pending after the checks: "
                  "the files came too fast for this test to mean anything" % pending)
            join_all(threads, 120)
            check_eq(done, {name: b.sha256 for name, b in blobs.items()},
                     "sha256 of the 64 cold files")


@test
def memory_max_bounds_requests_in_flight(t):
    """memory_max=4M holds the requests in flight of every download together to 4 (1M
    each): 24 cold files opened at once from a slow server, 8 connections each, never
    have more than 4 requests at the server at one moment (without the bound: up to 32),
    and every file arrives right."""
    specs = [("mem%02d" % i, 2 * MiB) for i in range(24)]
    with serve(t, specs, rate=512 * KiB) as (srv, blobs):
        with mount(t, srv, "piece_size=256K", "connections=8", "memory_max=4M") as m:
            done, threads = read_blobs_at_once(m, blobs.values())
            join_all(threads, 240)
            check_eq(done, {name: b.sha256 for name, b in blobs.items()},
                     "sha256 of the 24 cold files")
        srv.wait_idle()
        most = srv.max_concurrency("/files/", settled=True)
        t.note("requests in flight at most: %d" % most)
        check(most <= 4, "%d requests in flight at once, over memory_max=4M's 4" % most)
        check(most >= 2, "only %d request in flight at once: nothing ran in parallel" % most)
        per_file = {}
        for r in srv.requests("/files/", "GET"):
            per_file.setdefault(r["file"], 0)
            per_file[r["file"]] += 1
        check_eq(len(per_file), 24, "files the server was asked for")


@test
def memory_max_turns_are_fair(t):
    """memory_max=1M: one request in flight for every download together. Three cold files
    of 4 pieces opened at once take turns, a piece each, rather than the first taking every
    turn until it is done: each has at least 2 of the first 9 pieces the server sends."""
    specs = [("turn%d" % i, 4 * MiB) for i in range(3)]
    with serve(t, specs, rate=4 * MiB) as (srv, blobs):
        with mount(t, srv, "piece_size=1M", "memory_max=1M") as m:
            done, threads = read_blobs_at_once(m, blobs.values())
            join_all(threads, len(threads) * WAIT)
            check_eq(done, {name: b.sha256 for name, b in blobs.items()},
                     "sha256 of the 3 files")
        srv.wait_idle()
        order = [r["file"].split("/")[2] for r in sorted(srv.requests("/files/", "GET"),
                                                          key=lambda r: r["start"])]
        t.note("files in the order their pieces were asked: %s" % order)
        check_eq(srv.max_concurrency("/files/", settled=True), 1, "requests in flight at once")
        # Turns: about 3 each of the first 9; a file that took every turn until it was done
        # would leave another 1 at most.
        check(all(order[:9].count(name) >= 2 for name in blobs),
              "a file had fewer than 2 of the first 9 pieces: %s" % order[:9])


def slow_disk_fs(t, truncate=0, state=0, create=0, readdir=0):
    """tests/fixtures/nolock_fs over t.dir/lower on t.dir/slow, with working (kernel) locks,
    every truncation of a non-empty file to 0 bytes taking `truncate` seconds, every write
    to a sidecar (a name with ".state") `state` seconds, every creation of a partial blob
    (a name with ".partial") `create` seconds and every listing of a folder outside blobs/
    `readdir` seconds: a slow disk. Yields the mount point."""
    return nolock_fs(t, "slow", {"NOLOCK_FS_LOCKS": "kernel",
                                 "NOLOCK_FS_SLOW_TRUNCATE": str(truncate),
                                 "NOLOCK_FS_SLOW_STATE": str(state),
                                 "NOLOCK_FS_SLOW_CREATE": str(create),
                                 "NOLOCK_FS_SLOW_READDIR": str(readdir)}, timeout=WAIT)


@test
def restart_truncates_outside_the_engine_lock(t):
    """The cache is on a slow disk (a test FUSE filesystem where cutting a non-empty file to
    nothing takes 8 s). A file changes on the server mid-download (If-Range mismatch): its
    partial blob is truncated to start over, which takes 8 s; meanwhile the mount's status,
    which needs the transfer engine's lock, answers at once (it waited the 8 s while the
    truncation was done under that lock), and the file still arrives right."""
    slow = 8
    with serve(t, [("moving", 8 * MiB)]) as (srv, b), slow_disk_fs(t, truncate=slow) as disk:
        b = b["moving"]
        new = random_bytes(b.bytes, "new content")
        b.claimed_sha256 = sha256_bytes(new)
        srv.manifest_bytes = srv.manifest_bytes.replace(b.sha256.encode(),
                                                        b.claimed_sha256.encode())
        srv.add_fault(b.model_path, "replace", after=1, data=new)
        cache = os.path.join(disk, "cache")
        with mount(t, srv, "piece_size=1M", "connections=1", cache=cache) as m:
            got = {}

            def reader():
                try:
                    got["sha"] = sha256_file(m.path(b.rel))
                except OSError as e:
                    got["sha"] = "error %s" % errno_name(e.errno)

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            wait_for(lambda: "the file changed on the server" in m.log(), WAIT,
                     "the restart's log line")
            began = time.monotonic()
            status, took = within(QUICK, read_all, m.path(".omnihub/status"))
            t.note("status read in %.2f s during the truncation" % took)
            check(b.rel.encode() in status, "the file is not in the status: %r" % status)
            th.join(WAIT + slow)
            check_eq(got.get("sha"), sha256_bytes(new), "sha256 of what was read")
            check(time.monotonic() - began >= slow - 1,
                  "the read ended %.1f s after the restart: the slow truncation did not "
                  "happen" % (time.monotonic() - began))


@test
def failure_saves_outside_the_engine_lock(t):
    """The cache is on a slow disk where every write of a sidecar takes 8 s. A download
    fails after its first piece (503 answers, retries=0): its sidecar is saved for a later
    resume, which takes 8 s; meanwhile the mount's status, which needs the transfer
    engine's lock, answers at once (it waited the 8 s while the save was done under that
    lock); the read fails with EIO, and the sidecar left names the piece that arrived."""
    slow = 8
    with serve(t, [("failing", 2 * MiB)]) as (srv, b), slow_disk_fs(t, state=slow) as disk:
        b = b["failing"]
        srv.add_fault(b.model_path, "trickle", rate=1 << 30)  # the first piece: served
        srv.add_fault(b.model_path, "status", code=503, count=-1)
        cache = os.path.join(disk, "cache")
        with mount(t, srv, "piece_size=1M", "connections=1", "retries=0", cache=cache) as m:
            got = {}

            def reader():
                got["errno"] = errno_name(read_errno(m.path(b.rel)))

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            wait_for(lambda: "HTTP 503; giving up" in m.log(), WAIT + slow,
                     "the failure's log line")
            status, took = within(QUICK, read_all, m.path(".omnihub/status"))
            t.note("status read in %.2f s during the save" % took)
            th.join(WAIT + 2 * slow)
            check_eq(got.get("errno"), "EIO", "what the read got")
        state = os.path.join(t.dir, "lower", "cache", "blobs", "sha256", b.sha256 + ".state")
        check(os.path.exists(state), "no sidecar left for a resume")


@test
def next_open_of_a_download_hashes_nothing(t):
    """A file just downloaded and verified opens again, twice, without being hashed again:
    the record written after its readable name's link (which changes the blob's ctime)
    vouches for it. (On a cache whose filesystem caches attributes, as the slow-disk test
    filesystem does for a second, the next open may see the ctime from before the link and
    hash once more; never wrong bytes.)"""
    with serve(t, [("once", 8 * MiB)]) as (srv, b):
        b = b["once"]
        with mount(t, srv) as m:
            for i in range(3):
                check_eq(sha256_file(m.path(b.rel)), b.sha256, "read %d" % (i + 1))
            hashed = m.log_lines("found in the cache")
            check(not hashed, "an open hashed the downloaded file again: %r" % hashed)
        record = blob_path(t.cache, b.sha256) + ".ok"
        check(os.path.isfile(record), "no verification record at %s" % record)


@test
def cached_open_during_a_slow_partial_creation(t):
    """The cache is on a slow disk where creating a partial blob takes 8 s. A cold read
    starts a download, whose partial is created meanwhile; a file already cached opens and
    reads at once (no lock a cache-hit open takes is held across the creation), and then the
    cold file arrives right. (The status is not read meanwhile: it lists the store's
    directory, which the kernel locks while a file is made in it, on any filesystem.)"""
    slow = 8
    with serve(t, [("first", 256 * 1024), ("second", 2 * MiB)]) as (srv, b), \
            slow_disk_fs(t, create=slow) as disk:
        cache = os.path.join(disk, "cache")
        with mount(t, srv, cache=cache) as m:
            # Read twice first: on this test filesystem, which caches attributes for a
            # second, the second open sees the ctime the readable name's link set only
            # then, hashes the file again and records it once more; a record's write in
            # the blobs' directory would wait for the creation, on the kernel's lock of
            # that directory.
            for _ in range(2):
                check_eq(sha256_file(m.path(b["first"].rel)), b["first"].sha256,
                         "the first file")
            got = {}
            th = threading.Thread(target=lambda: got.update(sha=sha256_file(
                m.path(b["second"].rel))), daemon=True)
            began = time.monotonic()
            th.start()
            time.sleep(1)  # the partial's creation is under way
            data, took = within(QUICK, read_all, m.path(b["first"].rel))
            t.note("cached read in %.2f s during the creation" % took)
            check_eq(sha256_bytes(data), b["first"].sha256, "the cached file, meanwhile")
            th.join(WAIT + slow)
            check_eq(got.get("sha"), b["second"].sha256, "sha256 of the second file")
            check(time.monotonic() - began >= slow - 1,
                  "the read ended %.1f s after it began: the slow creation did not happen"
                  % (time.monotonic() - began))


@test
def cached_open_during_a_slow_eviction(t):
    """The cache is on a slow disk where listing a folder of the readable tree takes 3 s.
    With cache_max=3M, two cached files of 1 MiB and then a cold one of 2 MiB: making room
    evicts the least recently used, whose readable names are found by walking the tree (a
    few slow listings); meanwhile the other cached file opens and reads at once (eviction
    holds no lock a cache-hit open takes), and the cold file arrives right."""
    slow = 3
    specs = [("old", MiB), ("kept", MiB), ("new", 2 * MiB)]
    with serve(t, specs) as (srv, b), slow_disk_fs(t, readdir=slow) as disk:
        cache = os.path.join(disk, "cache")
        with mount(t, srv, "cache_max=3M", cache=cache) as m:
            for name in ("old", "kept", "kept"):  # "kept" twice: its record settled
                check_eq(sha256_file(m.path(b[name].rel)), b[name].sha256, name)
            got = {}
            th = threading.Thread(target=lambda: got.update(sha=sha256_file(
                m.path(b["new"].rel))), daemon=True)
            began = time.monotonic()
            th.start()
            old_blob = blob_path(os.path.join(t.dir, "lower", "cache"), b["old"].sha256)
            time.sleep(1)  # the walk for the old file's names is under way
            data, took = within(QUICK, read_all, m.path(b["kept"].rel))
            t.note("cached read in %.2f s during the eviction" % took)
            check_eq(sha256_bytes(data), b["kept"].sha256, "the kept file, meanwhile")
            check(os.path.exists(old_blob), "the old file was evicted before the cached read "
                  "(the walk was not slow): nothing was measured")
            th.join(WAIT + 10 * slow)
            check_eq(got.get("sha"), b["new"].sha256, "sha256 of the new file")
            check(time.monotonic() - began >= slow,
                  "the cold read took %.1f s: the slow walk did not happen"
                  % (time.monotonic() - began))
        check(not os.path.exists(old_blob), "the old file was not evicted")


@test
def sidecar_saves_outside_the_engine_lock(t):
    """The cache is on a slow disk where every write of a sidecar takes 3 s. A download of
    8 pieces saves its sidecar as pieces land (so a crash loses none); meanwhile the
    mount's status answers at once each time it is read (a save under the engine's lock
    held it), and the file arrives right."""
    slow = 3
    with serve(t, [("saved", 8 * MiB)], rate=2 * MiB) as (srv, b), \
            slow_disk_fs(t, state=slow) as disk:
        b = b["saved"]
        cache = os.path.join(disk, "cache")
        with mount(t, srv, "piece_size=1M", "connections=1", cache=cache) as m:
            got = {}
            th = threading.Thread(target=lambda: got.update(sha=sha256_file(m.path(b.rel))),
                                  daemon=True)
            th.start()
            state = os.path.join(t.dir, "lower", "cache", "blobs", "sha256", b.sha256 + ".state")
            slowest, saved = 0.0, False
            while th.is_alive():
                _, took = within(QUICK, read_all, m.path(".omnihub/status"))
                slowest = max(slowest, took)
                saved = saved or os.path.exists(state)
                time.sleep(0.3)
            t.note("slowest status read during the saves: %.2f s" % slowest)
            th.join(WAIT + 8 * slow)
            check_eq(got.get("sha"), b.sha256, "sha256 of what was read")
            check(saved, "no sidecar was saved during the download: nothing was measured")


@test
def interrupt_waiting_reader(t):
    with serve(t, [("slow", 32 * MiB)], rate=MiB) as (srv, b):
        b = b["slow"]
        with mount(t, srv) as m:
            cat = subprocess.Popen(["cat", m.path(b.rel)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            try:
                time.sleep(1)
                check(cat.poll() is None, "cat finished within 1 s: the file came too fast")
                sent_at = time.monotonic()
                cat.send_signal(signal.SIGINT)
                try:
                    cat.wait(3)
                except subprocess.TimeoutExpired:
                    raise AssertionError("cat still waits 3 s after SIGINT") from None
                t.note("cat exited %.2f s after SIGINT, status %s"
                       % (time.monotonic() - sent_at, cat.returncode))
            finally:
                if cat.poll() is None:
                    cat.kill()
                    try:
                        cat.wait(2)
                    except subprocess.TimeoutExpired:  # stuck in the daemon: let it go
                        m.kill()
                        cat.wait()
            check_bytes(m.path(b.rel), b)
        srv.wait_idle()
        sent = srv.bytes_sent("/files/" + b.model_path)
        check(sent < 1.5 * b.bytes, "%d bytes sent for a %d-byte file" % (sent, b.bytes))


@test
def enospc_on_small_cache(t):
    small = os.path.join(t.dir, "small-cache")
    os.makedirs(small)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small],
                         capture_output=True, text=True)
    check_eq(res.returncode, 0, "mount -t tmpfs status (%s)" % res.stderr.strip())
    try:
        with serve(t, [("tiny", MiB), ("huge", 40 * MiB)]) as (srv, b):
            tiny, huge = b["tiny"], b["huge"]
            with mount(t, srv, cache=small) as m:
                check_bytes(m.path(tiny.rel), tiny)
                check_eq(errno_name(read_errno(m.path(huge.rel))), "ENOSPC",
                         "reading a 40 MiB file into a 24 MiB cache")
                check_eq(leftovers(small), [], ".partial/.state left after ENOSPC")
                check_bytes(m.path(tiny.rel), tiny)
                check(os.path.exists(blob_path(small, tiny.sha256)), "the 1 MiB blob is gone")
    finally:
        res = subprocess.run(["umount", small], capture_output=True, text=True)
        if res.returncode != 0:
            subprocess.run(["umount", "-l", small], capture_output=True)


@test
def cache_max_never_evicts_open_file(t):
    with serve(t, [(n, 4 * MiB) for n in ("fa", "fb", "fc", "fd")]) as (srv, b):
        a, bb, c, d = b["fa"], b["fb"], b["fc"], b["fd"]
        with mount(t, srv, "cache_max=10M") as m:
            with open(m.path(a.rel), "rb") as fa:
                check_eq(sha256_bytes(read_rest(fa)), a.sha256, "sha256 of A")
                check_bytes(m.path(bb.rel), bb)
                check_bytes(m.path(c.rel), c)
                wait_for(lambda: not os.path.exists(blob_path(t.cache, bb.sha256)), 5,
                         "B (least recently used, closed) to be evicted")
                check(os.path.exists(blob_path(t.cache, a.sha256)), "A's blob (open) is gone")
                fa.seek(0)
                check_eq(sha256_bytes(read_rest(fa)), a.sha256, "sha256 of A read again")
                check_bytes(m.path(a.rel), a)
            check_bytes(m.path(d.rel), d)

            def small_enough():
                return sum(complete_blobs(t.cache).values()) <= 10 * MiB + 4 * MiB

            wait_for(small_enough, 5, "the blobs to fit in cache_max plus one file")
            t.note("blobs at the end: %r" % complete_blobs(t.cache))


@test
def crash_left_partial_resumed_orphans_removed(t):
    with serve(t, [("crash", 32 * MiB)]) as (srv, b):
        b = b["crash"]
        srv.set_rate(b.model_path, MiB)
        slow_read_then_kill(t, srv, b, "piece_size=4M", "connections=2")
        srv.set_rate(b.model_path, None)
        blobs_dir = os.path.join(t.cache, "blobs", "sha256")
        tree_dir = os.path.dirname(os.path.join(t.cache, b.rel))
        os.makedirs(tree_dir, exist_ok=True)
        orphans = [os.path.join(blobs_dir, "0" * 64 + ".state"),
                   os.path.join(blobs_dir, "ab" * 32 + ".partial"),
                   os.path.join(tree_dir, ".model.onnx.abc123.partial")]
        for path in orphans:
            with open(path, "w") as f:
                f.write("left by a crash\n")
        real = [blob_path(t.cache, b.sha256) + s for s in (".partial", ".state")]
        with mount(t, srv, "piece_size=4M", "connections=2") as m:
            wait_for(lambda: not any(os.path.exists(p) for p in orphans), QUICK,
                     "the orphans to be removed after the mount")
            log = m.log()
            for path in orphans:
                check(os.path.basename(path) in log,
                      "the log does not name %s" % os.path.basename(path))
            for path in real:
                check(os.path.exists(path), "%s is gone before any read" % os.path.basename(path))
            check_bytes(m.path(b.rel), b)
        check_eq(leftovers(t.cache), [], ".partial/.state left after the resumed download")


@test
def index_refresh_changes_size_at_once(t):
    """A model changed in the index (1000 -> 3000 bytes, a new sha256) is seen whole: never the
    old size with the new bytes, even though the kernel had looked the name up."""
    with serve(t, [("grows", 1000), ("other", 1000)]) as (srv, b):
        old, other = b["grows"], b["other"]
        with mount(t, srv, "index_ttl=1") as m:
            path = m.path(old.rel)
            check_eq(os.stat(path).st_size, 1000, "size before the change")
            check_bytes(path, old)
            new = Blob(old.name, random_bytes(3000, "grown"), old.opset, old.path)
            srv.set_file(new.model_path, new.data)
            srv.manifest_bytes = (json.dumps([new.entry(), other.entry()]) + "\n").encode()
            time.sleep(1.5)  # past index_ttl
            os.stat(m.path(other.rel))  # a lookup: the index is fetched again
            wait_for(lambda: os.stat(path).st_size == 3000, 10, "the new size through the mount")
            check_bytes(path, new)
            # The notifier logs once it has told the kernel about every name,
            # which may be after the reads above went through.
            wait_for(lambda: m.log_lines("the new index changed"), 10,
                     "a log line about dropped names")


@test
def hand_edit_and_repair_served_fresh(t):
    """A cached blob changed by hand with its size and mtime kept (dd conv=notrunc, then touch -d)
    is checked again and downloaded again; pages of the changed bytes that the kernel cached
    through a handle opened before the edit are dropped once the blob is repaired."""
    with serve(t, [("edited", 2 * MiB)]) as (srv, b):
        b = b["edited"]
        blob = blob_path(t.cache, b.sha256)
        with mount(t, srv) as m:
            path = m.path(b.rel)
            check_bytes(path, b)
            with open(path, "rb") as held:  # opened while the blob is right
                subprocess.run(["sync"], check=True)
                subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
                st = os.stat(blob)
                with open(blob, "r+b") as f:  # what dd conv=notrunc does
                    f.seek(MiB)
                    f.write(b"\0" * 4096)
                os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # what touch -d does
                check_eq(os.stat(blob).st_mtime_ns, st.st_mtime_ns, "mtime kept by the edit")
                stale = held.read()  # the edited bytes, now in the kernel's page cache
                check(sha256_bytes(stale) != b.sha256, "the held handle did not see the edit")
            srv.clear_log()
            check_bytes(path, b)
            check(srv.file_requests(b.model_path), "the edited blob was served without a new download")
            check(m.log_lines("not what the index says"), "no log line about the edited blob")
        check_eq(sha256_file(blob), b.sha256, "the blob after the repair")


@test
def sigterm_during_download(t):
    """SIGTERM while a reader waits on a stalled server: the daemon exits at once with status 0,
    the reader gets EINTR or EIO (not ENOTCONN), and the partial is kept for resumption."""
    with serve(t, [("stalled", 8 * MiB)]) as (srv, b):
        b = b["stalled"]
        srv.add_fault(b.model_path, "stall", after=2 * MiB, seconds=60)
        m = mount(t, srv, "piece_size=4M", "connections=1").start()
        cat = subprocess.Popen(["cat", m.path(b.rel)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: os.path.exists(blob_path(t.cache, b.sha256) + ".state"), WAIT,
                     "the download to begin")
            time.sleep(0.5)
            sent_at = time.monotonic()
            status = m.signal(signal.SIGTERM, timeout=10)
            took = time.monotonic() - sent_at
            check(status is not None, "the daemon still runs 10 s after SIGTERM")
            check_eq(status, 0, "the daemon's exit status")
            check(took < 5, "the daemon took %.1f s to exit" % took)
            _, err = cat.communicate(timeout=10)
        finally:
            if cat.poll() is None:
                cat.kill()
                cat.wait()
        t.note("cat: status %s, stderr %r" % (cat.returncode, err))
        check(cat.returncode != 0, "cat succeeded")
        check("Transport endpoint" not in err, "the reader got ENOTCONN: %r" % err)
        check(("Interrupted" in err) or ("Input/output" in err), "cat's error: %r" % err)
        for suffix in (".partial", ".state"):
            check(os.path.exists(blob_path(t.cache, b.sha256) + suffix),
                  "%s not kept for resumption" % suffix)


@test
def trickle_times_out(t):
    """A server sending 2 bytes a second is given up like a silence: EIO within seconds, not days."""
    with serve(t, [("trickle", 200)]) as (srv, b):
        b = b["trickle"]
        for _ in range(3):
            srv.add_fault(b.model_path, "trickle", rate=2)
        with mount(t, srv, "stall_timeout=2", "retries=1") as m:
            started = time.monotonic()
            got = errno_name(read_errno(m.path(b.rel)))
            took = time.monotonic() - started
            t.note("EIO after %.1f s" % took)
            check_eq(got, "EIO", "reading a trickled file")
            check(took < 20, "gave up only after %.1f s" % took)
            check(m.log_lines("giving up"), "no log line saying the daemon gave up")
            check(m.log_lines(b.rel + ": ", "giving up"),
                  "no 'giving up' line names %s" % b.rel)


@test
def open_file_limit_is_emfile(t):
    """Out of descriptors, an open fails with EMFILE and a log line saying so, not EIO; files
    already open keep working."""
    with serve(t, [("many", 64 * KiB)]) as (srv, b):
        b = b["many"]
        wrapper = os.path.join(t.dir, "limited")
        with open(wrapper, "w") as f:  # a hard limit of 64 the daemon cannot raise
            f.write("#!/bin/sh\nexec prlimit --nofile=64:64 %s \"$@\"\n" % t.binary)
        os.chmod(wrapper, 0o755)
        with t.mount(options(t, srv, None), binary=wrapper) as m:
            path = m.path(b.rel)
            check_bytes(path, b)
            held, errors = [], []
            try:
                for _ in range(100):
                    try:
                        held.append(open(path, "rb"))
                    except OSError as e:
                        errors.append(e.errno)
                check(errors, "100 opens all succeeded under a limit of 64 descriptors")
                check_eq(sorted(set(errno_name(e) for e in errors)), ["EMFILE"],
                         "errors of the opens past the limit")
                check_eq(sha256_bytes(held[0].read()), b.sha256, "a file opened before the limit")
            finally:
                for f in held:
                    f.close()
            check(m.log_lines("open-file limit"), "no log line about the open-file limit")
            check_bytes(path, b)  # descriptors back: opens work again


@test
def stream_read_of_the_end_fetches_the_rest(t):
    """In stream mode a read of the last bytes (a zip reads its directory there) waits for the
    whole file and its digest, and so fetches every piece: it never waits forever."""
    with serve(t, [("tail", 64 * MiB)]) as (srv, b):
        b = b["tail"]
        with mount(t, srv, "stream", "piece_size=4M") as m:
            with open(m.path(b.rel), "rb") as f:
                check_eq(f.read(4096), b.data[:4096], "the header")
                f.seek(b.bytes - 4096)
                check_eq(f.read(4096), b.data[-4096:], "the last 4 KiB")
            check(os.path.exists(blob_path(t.cache, b.sha256)), "the whole blob is not there")



@test
def credentials_in_urls_never_shown(t):
    """user:password@ in the index, hub and mirror URLs reaches the servers but never the
    log, a .state sidecar, .omnihub/status or .omnihub/metrics."""
    def cred(url, user, password):
        return url.replace("://", "://%s:%s@" % (user, password), 1)
    secrets_ = ("idxuser", "idxPASS1", "hubuser", "hubPASS2", "miruser", "mirPASS3")
    with serve(t, [("private", 16 * MiB)], rate=2 * MiB) as (srv, b):
        b = b["private"]
        with MirrorServer(mirror_root(t, "mirror")) as mirror:
            opts = ["cache=" + t.cache, "cacert=" + srv.cacert, "stream",
                    "onnx_index_url=" + cred(srv.manifest_url, "idxuser", "idxPASS1"),
                    "onnx_url=" + cred(srv.hub_url, "hubuser", "hubPASS2"),
                    "mirror=" + cred(mirror.url, "miruser", "mirPASS3")]
            with t.mount(opts) as m:
                with open(m.path(b.rel), "rb") as f:
                    head = f.read(64 * KiB)
                    states = wait_for(lambda: [p for p in leftovers(t.cache)
                                               if p.endswith(".state")], WAIT, "a .state file")
                    shown = {}
                    for p in states:
                        with open(os.path.join(t.cache, p), encoding="utf-8",
                                  errors="replace") as sf:
                            shown[p] = sf.read()
                    for name in ("status", "metrics"):
                        with open(m.path(".omnihub", name), encoding="utf-8") as sf:
                            shown[name] = sf.read()
                    rest = read_rest(f)
                check_eq(sha256_bytes(head + rest), b.sha256, "sha256 of what was read")
                shown["log"] = m.log()
            check(mirror.requests(), "the mirror was never asked")
            for where, text in shown.items():
                for secret in secrets_:
                    check(secret not in text, "%s shows %s" % (where, secret))
            check(any("url " in text for where, text in shown.items() if where.endswith(".state")),
                  "no url line in the .state file")


# ----------------------------------------------------------------------------- listings

@contextlib.contextmanager
def hf_hub(t, page_size=2):
    """The local Hugging Face imitation (tests/fixtures/hf_server.py), pages of page_size."""
    import make_hf_repos as fx
    from hf_server import HfServer
    fixture = os.path.join(t.dir, "hf-fixture")
    fx.make_repos(fixture)
    with HfServer(fixture, t.shared.tls_dir, page_size=page_size) as hub:
        try:
            yield hub
        except BaseException:
            t.note(hub.summary())
            raise


def hf_options(t, hub):
    return ["cache=" + t.cache, "cacert=" + hub.cacert, "onnx_index_url=" + hub.onnx_manifest_url,
            "onnx_url=" + hub.endpoint + "/__onnx/files/"]


def list_errno(path):
    try:
        os.listdir(path)
    except OSError as e:
        return e.errno
    return 0


@test
def paged_listing_bounded(t):
    """A tree listing whose next page loops, goes to another host, port or scheme, or whose
    Link header is too long to keep, ends with EIO and a log line, at once."""
    with hf_hub(t) as hub:
        with t.mount(hf_options(t, hub), env={"HF_ENDPOINT": hub.endpoint}) as m:
            repo = m.path("huggingface", "acme", "sharded")
            check_eq(sorted(os.listdir(repo))[:1], ["config.json"], "the healthy listing")
        for kind, said in (("loop", "a page it listed already"),
                           ("other_host", "another scheme, host or port"),
                           ("other_port", "another scheme, host or port"),
                           ("other_scheme", "another scheme, host or port"),
                           ("huge_link", "next page has a URL over")):
            hub.tree_fault(kind)
            hub.clear_log()
            cache = os.path.join(t.dir, "cache-" + kind)
            opts = hf_options(t, hub)
            opts[0] = "cache=" + cache
            with second_mount_opts(t, "mnt-" + kind, opts,
                                   env={"HF_ENDPOINT": hub.endpoint}) as m:
                rc, took = within(WAIT, list_errno, m.path("huggingface", "acme", "sharded"))
                pages = hub.requests(kind="api", path_substring="/tree/")
                t.note("%s: %s after %.1f s, %d tree requests" % (kind, errno_name(rc), took,
                                                                  len(pages)))
                check_eq(errno_name(rc), "EIO", "listing with next pages that go " + kind)
                check(len(pages) <= 5, "%d tree requests for %s" % (len(pages), kind))
                check(said in m.log(), "no log line saying %r" % said)
                check(m.log_lines("acme/sharded", said),
                      "no log line names the repo acme/sharded and says %r" % said)


@test
def hub_api_429_bounded(t):
    """A 429 whose Retry-After is past the retry_time budget fails the call at once (it was
    retried after up to 60 s per try)."""
    with hf_hub(t) as hub:
        hub.rate_limit(100, "api", retry_after=600)
        with t.mount(hf_options(t, hub) + ["retry_time=5"], env={"HF_ENDPOINT": hub.endpoint}) as m:
            rc, took = within(30, list_errno, m.path("huggingface", "acme", "sharded"))
            t.note("%s after %.1f s" % (errno_name(rc), took))
            check(rc != 0, "the listing succeeded through a rate limit of 600 s")
            check("retry_time budget" in m.log(), "no log line about the retry_time budget")
            paths = [r["path"] + "?" + r["query"] for r in hub.requests(kind="api")]
            check(paths and len(paths) == len(set(paths)),
                  "an API call asked again while the Hub asks to wait 600 s: %s" % paths)


@test
def hub_api_retries_paced(t):
    """A retry after a 429 is a call like any other: it takes its turn in the request
    budget (hf_api_budget=2/6: at most 2 API requests in the first 6 s)."""
    with hf_hub(t) as hub:
        hub.rate_limit(1, "api", retry_after=1)
        with t.mount(hf_options(t, hub) + ["hf_api_budget=2/6"],
                     env={"HF_ENDPOINT": hub.endpoint}) as m:
            rc, took = within(60, list_errno, m.path("huggingface", "acme", "sharded"))
            check_eq(errno_name(rc), "0", "listing through a 429 and the budget")
        starts = [r["start"] for r in hub.requests(kind="api")]
        t.note("API requests at %s s" % ["%.1f" % (s - starts[0]) for s in starts])
        check(len(starts) >= 3, "only %d API requests" % len(starts))
        first_window = [s for s in starts if s < starts[0] + 5.5]
        check(len(first_window) <= 2, "%d API requests in the first window of 6 s, budget 2"
              % len(first_window))


def second_mount_opts(t, name, opts, env=None):
    return t.mount(opts, env=env, mountpoint=os.path.join(t.dir, name))


# ----------------------------------------------------------------------------- blob mirrors

def mirror_root(t, name, blobs=(), corrupt=()):
    """A directory laid out like a cache (blobs/sha256/<hex>) holding blobs; the ones in
    corrupt get one byte flipped in the middle."""
    root = os.path.join(t.dir, name)
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    for b in blobs:
        data = bytearray(b.data)
        if b in corrupt:
            data[len(data) // 2] ^= 0xFF
        with open(os.path.join(root, "blobs", "sha256", b.sha256), "wb") as f:
            f.write(data)
    return root


def mirror_lines(m):
    """The daemon's warnings about mirrors."""
    return [line for line in m.log().splitlines() if "warning:" in line and "mirror" in line]


def status_line(m, rel):
    """The status file's line of the transfer of rel (the newest), split in columns."""
    with open(m.path(".omnihub/status"), encoding="utf-8") as f:
        for line in f:
            if line.rstrip().endswith(rel):
                return line.split()
    return None


@test
def mirror_serves_blob(t):
    with serve(t, [("mirrored", 20 * MiB)]) as (srv, b):
        b = b["mirrored"]
        with MirrorServer(mirror_root(t, "mirror", [b])) as mirror:
            with mount(t, srv, "mirror=" + mirror.url, "connections=4") as m:
                check_bytes(m.path(b.rel), b)
                row = status_line(m, b.rel)
                check(row is not None, "no status line for " + b.rel)
                check("mirror" in row, "status does not say mirror: %s" % row)
                with open(m.path(".omnihub/metrics"), encoding="utf-8") as f:
                    metrics = f.read()
            check_eq(srv.bytes_sent("/files/" + b.model_path), 0, "bytes the hub's CDN sent")
            check_eq(srv.requests("/hub/" + b.model_path, "GET"), [], "GETs of the hub's URL")
            sent = mirror.bytes_sent()
            check(b.bytes <= sent < 1.25 * b.bytes, "the mirror sent %d bytes of %d" % (sent, b.bytes))
            ranged = [p for p in mirror.requests() if p.endswith(b.sha256)]
            check(len(ranged) >= 5, "%d requests to the mirror, expected one per 4 MiB piece"
                  % len(ranged))
            check_eq(mirror.auth_seen(), [], "Authorization headers the mirror saw")
            check(re.search(r'omnihub_source_bytes_total\{source="mirror"\} %d\b' % b.bytes,
                            metrics), "metrics do not count %d bytes from the mirror" % b.bytes)
            check(re.search(r'omnihub_files_total\{source="mirror"\} 1\b', metrics),
                  "metrics do not count one file from the mirror")
            check_eq(mirror_lines(m), [], "mirror log lines of a good mirror")


@test
def mirror_missing_blob_falls_back(t):
    with serve(t, [("absent", 6 * MiB)]) as (srv, b):
        b = b["absent"]
        with MirrorServer(mirror_root(t, "mirror")) as mirror:
            with mount(t, srv, "mirror=" + mirror.url) as m:
                check_bytes(m.path(b.rel), b)
            lines = mirror_lines(m)
            check_eq(len(lines), 1, "mirror log lines: %s" % lines)
            check("fetching it from the hub" in lines[0], "the line: %s" % lines[0])
            check(srv.bytes_sent("/files/" + b.model_path) >= b.bytes, "the hub sent too little")
            check_eq(len(mirror.requests()), 1, "requests to a mirror without the blob")


@test
def mirror_corrupt_blob_falls_back(t):
    with serve(t, [("bad", 10 * MiB)]) as (srv, b):
        b = b["bad"]
        with MirrorServer(mirror_root(t, "mirror", [b], corrupt=[b])) as mirror:
            with mount(t, srv, "mirror=" + mirror.url) as m:
                check_bytes(m.path(b.rel), b)
                check_eq(sha256_file(blob_path(t.cache, b.sha256)), b.sha256, "the cached blob")
            lines = mirror_lines(m)
            check(any("mismatch in bytes from a mirror (%s)" % mirror.url in line
                      for line in lines), "no mismatch line naming the mirror: %s" % lines)
            check(mirror.bytes_sent() >= b.bytes, "the mirror sent too little")
            check(srv.bytes_sent("/files/" + b.model_path) >= b.bytes, "the hub sent too little")


@test
def mirror_down_or_stalled_falls_back(t):
    with serve(t, [("down", 3 * MiB), ("down2", 3 * MiB), ("stalled", 3 * MiB)]) as (srv, b):
        with MirrorServer(mirror_root(t, "mirror", [b["stalled"]])) as mirror:
            closed = MirrorServer(mirror_root(t, "closed"))  # bound, then closed: refused
            closed_url = closed.url
            closed.__enter__()
            closed.__exit__(None, None, None)
            with mount(t, srv, "mirror=" + closed_url) as m:
                check_bytes(m.path(b["down"].rel), b["down"])
                # Unreachable: the next file does not try it again for a while.
                check_bytes(m.path(b["down2"].rel), b["down2"])
            lines = mirror_lines(m)
            check_eq(len(lines), 1, "mirror log lines for a refused mirror: %s" % lines)
            check("not asking that mirror for 60 s" in lines[0], "the line: %s" % lines[0])
            mirror.stall = True
            with second_mount(t, srv, "mnt2", "mirror=" + mirror.url, "stall_timeout=2",
                              cache=os.path.join(t.dir, "cache2")) as m2:
                check_bytes(m2.path(b["stalled"].rel), b["stalled"])
            lines = mirror_lines(m2)
            check_eq(len(lines), 1, "mirror log lines for a stalled mirror: %s" % lines)


@test
def mirrors_tried_in_order(t):
    with serve(t, [("second", 5 * MiB)]) as (srv, b):
        b = b["second"]
        with MirrorServer(mirror_root(t, "m1")) as m1, \
                MirrorServer(mirror_root(t, "m2", [b])) as m2:
            with t.mount(options(t, srv),
                         env={"OMNIHUB_MIRRORS": "%s %s" % (m1.url, m2.url)}) as m:
                check_bytes(m.path(b.rel), b)
            lines = mirror_lines(m)
            check_eq(len(lines), 1, "mirror log lines: %s" % lines)
            check("trying the next mirror" in lines[0], "the line: %s" % lines[0])
            check_eq(srv.bytes_sent("/files/" + b.model_path), 0, "bytes the hub sent")
            check(m2.bytes_sent() >= b.bytes, "the second mirror sent too little")


@test
def mirror_option_checked(t):
    for bad in ("ftp://example.org/cache", "http://example.org/cache?x=1", "example.org"):
        proc = subprocess.run([t.binary, "-f", "-o", "cache=%s,mirror=%s" % (t.cache, bad),
                               t.mountpoint], env=t.env, capture_output=True, text=True,
                              timeout=20)
        check(proc.returncode != 0, "mirror=%s accepted" % bad)
        check("mirror" in proc.stderr and "not a base URL" in proc.stderr,
              "stderr for mirror=%s: %s" % (bad, proc.stderr))


if __name__ == "__main__":
    run(shared_setup)
