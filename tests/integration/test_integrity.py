#!/usr/bin/env python3
"""Fault injection on a live cache: every way a person, a crash or a bad disk can tamper with
the blob store, and what a reader gets then: the right bytes or an error, never wrong bytes.
Not for downloads as such (test_transfers.py) nor the zoo's names (test_onnx_mount.py).
"""

# Each test serves its own files from tests/fixtures/blob_server.py, caches them through a
# real mount, tampers with the cache (flipped bytes with the mtime put back, truncation, in
# complete and in partial blobs; planted links, FIFOs, sockets, devices, directories at a blob's
# or its record's name, hard links to a file outside the cache, garbage sidecars, a read-only
# or deleted cache; records removed and the omnihub commands run) and reads again. After each step: the bytes are
# right or the read fails (EIO, ENOSPC, EROFS...), a canary file outside the cache is
# unchanged, and the daemon is still up. Run by `make check`, or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse OMNIHUB=BUILDDIR/omnihub \
#         /usr/bin/python3 tests/integration/test_integrity.py [PART]

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (all_files, check, check_eq, errno_name, mount, run,  # noqa: E402
                           run_omnihub, serve_blobs, sha256_bytes, sha256_file, test, tls_setup)

KiB = 1 << 10
MiB = 1 << 20
READ_TIMEOUT = 60.0  # seconds: liveness only (a FIFO must not hang a reader)
EXIT_CORRUPT = 3  # omnihub verify found a bad file


shared_setup = tls_setup


def serve(t, specs):
    return serve_blobs(t, specs)


def blob_path(cache, b):
    return os.path.join(cache, "blobs", "sha256", b.sha256)


def read_outcome(path, timeout=READ_TIMEOUT):
    """("ok", sha256) or ("error", errno name) of reading path whole, in a thread that must
    end within timeout (a read stuck on a FIFO would fail the test, not hang it)."""
    box = {}

    def body():
        try:
            with open(path, "rb") as f:
                box["value"] = ("ok", sha256_bytes(f.read()))
        except OSError as e:
            box["value"] = ("error", errno_name(e.errno))

    th = threading.Thread(target=body, daemon=True)
    th.start()
    th.join(timeout)
    check(not th.is_alive(), "reading %s did not return within %.0f s" % (path, timeout))
    return box["value"]


def never_wrong(path, b, what, allowed=("EIO",)):
    """Read path: the right bytes, or one of the allowed errors; never other bytes."""
    kind, value = read_outcome(path)
    if kind == "ok":
        check_eq(value, b.sha256, "sha256 of what %s reads (%s)" % (path, what))
    else:
        check(value in allowed, "%s: %s (%s), not one of %s" % (path, value, what, allowed))
    return kind, value


def right(path, b, what):
    check_eq(read_outcome(path), ("ok", b.sha256), "reading %s (%s)" % (path, what))


def alive(m):
    check(m.proc.poll() is None, "the daemon exited (status %s)" % m.proc.returncode)


def flip(path, offset=None):
    """Flips one byte of path in place and puts its mtime (and atime) back, as a bad disk or a
    careful person would."""
    st = os.stat(path)
    offset = st.st_size // 2 if offset is None else offset
    fd = os.open(path, os.O_RDWR)
    try:
        byte = os.pread(fd, 1, offset)
        os.pwrite(fd, bytes([byte[0] ^ 0x5A]), offset)
    finally:
        os.close(fd)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def canary(t, data=b"canary: outside the cache, never written by it\n" * 64):
    """A file outside the cache (same filesystem, so a hard link to it can be planted)."""
    path = os.path.join(t.dir, "canary.bin")
    with open(path, "wb") as f:
        f.write(data)
    return path, sha256_file(path)


def omnihub(t, srv, *args):
    return run_omnihub(t, args, ["cache=" + t.cache] + srv.options(), timeout=120)


# ----------------------------------------------------------------------------- flips

def flips_at(t, delay, times):
    """times rounds of: mount, read (the blob is verified, or hashed again and found wrong and
    fetched again), wait delay, flip a byte with its mtime put back, in one round of two read
    again in the same mount (this process's memory), unmount; the next round's first read is
    another process's (the record on disk). Every read: the right bytes or EIO."""
    with serve(t, [("Flip", 256 * KiB)]) as (srv, blobs):
        b = blobs["Flip"]
        for i in range(times):
            with mount(t, srv) as m:
                never_wrong(m.path(b.rel), b, "round %d, after the flip before" % i)
                time.sleep(delay)
                flip(blob_path(t.cache, b))
                if i % 2:
                    never_wrong(m.path(b.rel), b, "round %d, %.3f s after verification, same mount"
                                % (i, delay))
                alive(m)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "at the end")
        check(len(srv.file_requests(b.model_path)) > times,
              "the flipped blob was not fetched again each time (%d requests)"
              % len(srv.file_requests(b.model_path)))


@test
def flip_at_once_after_verification(t):
    flips_at(t, 0.0, 20)


@test
def flip_10ms_after_verification(t):
    flips_at(t, 0.010, 20)


@test
def flip_100ms_after_verification(t):
    flips_at(t, 0.100, 20)


@test
def flip_1s_after_verification(t):
    flips_at(t, 1.0, 10)


@test
def complete_blob_is_read_only_and_truncation_caught(t):
    with serve(t, [("Trunc", 300 * KiB)]) as (srv, blobs):
        b = blobs["Trunc"]
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        path = blob_path(t.cache, b)
        check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o444, "mode of a complete blob")
        fetched = len(srv.file_requests(b.model_path))
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "after a remount")
            # The record written at download vouches for it: no second hash, no request.
            check_eq(m.log_lines("found in the cache"), [], "log lines of a hash at open")
        check_eq(len(srv.file_requests(b.model_path)), fetched, "requests after the remount")
        check_eq(sorted(n for n in os.listdir(os.path.dirname(path))),
                 sorted([b.sha256, b.sha256 + ".ok"]), "the blob store's files")
        st = os.stat(path)
        os.truncate(path, st.st_size // 2)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "after truncation")
            # Same size, other bytes, mtime kept: a copy over it.
            data = bytearray(b.data)
            data[0] ^= 1
            st = os.stat(path)
            with open(path, "r+b") as f:
                f.write(bytes(data))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            right(m.path(b.rel), b, "after a copy over it")
            alive(m)


# A partial blob of 8 pieces whose sidecar says pieces 0 and 7 are present: the bitmap 0x81
# reads the same whichever bit order the daemon uses.
PARTIAL_PIECE = 256 * KiB
PARTIAL_PIECES = 8
PRESENT = (0, PARTIAL_PIECES - 1)


def plant_partial(t, b, tamper):
    """A .partial of b holding the right bytes of the PRESENT pieces (zeros elsewhere) and a
    .state that says so, then tamper(bytearray) changes the .partial's bytes."""
    path = blob_path(t.cache, b)
    data = bytearray(b.bytes)
    for i in PRESENT:
        data[i * PARTIAL_PIECE:(i + 1) * PARTIAL_PIECE] = b.data[i * PARTIAL_PIECE:
                                                                 (i + 1) * PARTIAL_PIECE]
    tamper(data)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".partial", "wb") as f:
        f.write(bytes(data))
    with open(path + ".state", "w") as f:
        f.write("omnihub-partial 1\nsize %d\npiece-size %d\nvalidator \nurl %s\npieces 81\n"
                % (b.bytes, PARTIAL_PIECE, "https://127.0.0.1:1/files/" + b.model_path))


def partial_case(t, tamper, what, resumed=True):
    """A partial download with a valid sidecar, its bytes tampered with, resumed by the mount
    (or refused): the reader gets the right bytes or EIO, never wrong ones; the final digest
    catches the tampering and the blob is fetched again, whole."""
    with serve(t, [("Part8", PARTIAL_PIECE * PARTIAL_PIECES)]) as (srv, blobs):
        b = blobs["Part8"]
        with mount(t, srv, "piece_size=%d" % PARTIAL_PIECE) as m:  # after the start-up sweep
            plant_partial(t, b, tamper)
            kind, _ = never_wrong(m.path(b.rel), b, what)
            if kind != "ok":
                right(m.path(b.rel), b, what + ", the read after the EIO")
            right(m.path(b.rel), b, what + ", again")
            alive(m)
            if resumed:
                check(m.log_lines("resuming", b.sha256 + ".partial", "2 of 8 pieces"),
                      "no log line resuming the planted partial (%s)" % what)
                check(m.log_lines(b.rel, "sha256 mismatch"),
                      "no log line of the final digest catching it (%s)" % what)
            else:
                check(m.log_lines("cannot be resumed"),
                      "no log line refusing the planted partial (%s)" % what)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, what + ", after a remount")
        # Every byte of the file asked of the server at least once after the plant: what
        # the .partial held was not trusted for the final file.
        served = [False] * PARTIAL_PIECES
        for r in srv.file_requests(b.model_path):
            if r["range_start"] is None or not r["bytes"]:
                continue
            first = r["range_start"] // PARTIAL_PIECE
            last = (r["range_start"] + r["bytes"] - 1) // PARTIAL_PIECE
            for i in range(first, min(last, PARTIAL_PIECES - 1) + 1):
                served[i] = True
        if resumed:
            check_eq(served, [True] * PARTIAL_PIECES,
                     "pieces fetched (the tampered present ones too, after the digest failed)")
        check_eq(sorted(n for n in os.listdir(os.path.dirname(blob_path(t.cache, b)))
                        if n.startswith(b.sha256)),
                 sorted([b.sha256, b.sha256 + ".ok"]), "the blob store's files at the end")


def flip_at(data, offset):
    data[offset] ^= 0x5A


@test
def partial_flipped_in_present_first_piece(t):
    partial_case(t, lambda d: flip_at(d, 1000), "a byte flipped in present piece 0")


@test
def partial_flipped_in_present_last_piece(t):
    partial_case(t, lambda d: flip_at(d, len(d) - 1), "the last byte flipped in present piece 7")


@test
def partial_present_piece_zeroed(t):
    """A present piece's bytes lost (zeros, as a sparse file after a crash)."""
    def zero(d):
        d[7 * PARTIAL_PIECE:8 * PARTIAL_PIECE] = bytes(PARTIAL_PIECE)

    partial_case(t, zero, "present piece 7 zeroed")


@test
def partial_truncated(t):
    """Truncated below its size: not resumed (the sidecar's size does not match), fetched
    again from the start."""
    def truncate(d):
        del d[5 * PARTIAL_PIECE:]

    partial_case(t, truncate, "the .partial truncated", resumed=False)


@test
def verify_hashes_before_it_records(t):
    """omnihub verify calls a flipped blob bad (it hashes, it does not trust the record) and
    writes no record; --remove removes it."""
    with serve(t, [("Ver", 200 * KiB)]) as (srv, blobs):
        b = blobs["Ver"]
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        path = blob_path(t.cache, b)
        flip(path)
        check_eq(omnihub(t, srv, "verify").returncode, EXIT_CORRUPT, "verify of a flipped blob")
        os.unlink(path + ".ok")
        check_eq(omnihub(t, srv, "verify").returncode, EXIT_CORRUPT, "verify again")
        check(not os.path.exists(path + ".ok"), "verify wrote a record")
        check_eq(omnihub(t, srv, "verify", "--remove").returncode, EXIT_CORRUPT, "verify --remove")
        check(not os.path.exists(path), "verify --remove left the bad blob")



def records_in(cache):
    """Every verification record under cache: "<hex>.ok" in the blob store, ".<name>.ok"
    elsewhere (src/store/cache.c cache_record_rel)."""
    return sorted(p for p in all_files(cache) if p.endswith(".ok"))  # relative to cache


@test
def only_verification_writes_records(t):
    """du, ls, info, gc --dry-run and cache ls never write a record: with every record
    removed, one blob intact and one flipped by hand (mtime put back), they leave the cache
    without records, and the next read hashes both again: the flipped one is fetched again,
    never served."""
    with serve(t, [("Good", 128 * KiB), ("Bad", 192 * KiB)]) as (srv, blobs):
        good, bad = blobs["Good"], blobs["Bad"]
        with mount(t, srv) as m:
            right(m.path(good.rel), good, "first read of Good")
            right(m.path(bad.rel), bad, "first read of Bad")
        check(records_in(t.cache), "no record written by the first reads")
        for rel in records_in(t.cache):
            os.unlink(os.path.join(t.cache, rel))
        flip(blob_path(t.cache, bad))
        fetched = {n: len(srv.file_requests(b.model_path)) for n, b in blobs.items()}
        for args in (["du"], ["--json", "du"], ["ls"], ["ls", "onnx"], ["ls", "onnx/good"],
                     ["info", good.rel], ["info", bad.rel], ["--json", "info", bad.rel],
                     ["gc", "--dry-run", "--max", "1G"], ["gc", "--dry-run", "--max", "0"], ["cache", "ls"],
                     ["--json", "cache", "ls"]):
            res = omnihub(t, srv, *args)
            check_eq(res.returncode, 0, "omnihub %s exit status (%s)"
                     % (" ".join(args), res.stderr.strip()))
            check_eq(records_in(t.cache), [], "records after omnihub " + " ".join(args))
        for b in (good, bad):
            check(os.path.isfile(blob_path(t.cache, b)), "%s's blob is gone" % b.name)
        with mount(t, srv) as m:
            right(m.path(bad.rel), bad, "the flipped blob after the commands")
            right(m.path(good.rel), good, "the intact blob after the commands")
            alive(m)
        check_eq(len(srv.file_requests(bad.model_path)) > fetched["Bad"], True,
                 "the flipped blob was fetched again")
        check_eq(len(srv.file_requests(good.model_path)), fetched["Good"],
                 "requests of the intact blob (hashed again, found right)")

# ----------------------------------------------------------------------------- planted entries

def quarantined(cache, rel):
    """The entries moved aside from rel (relative to cache) into cache/.quarantine, whose names
    end with "-" and rel with its '/' as '+'."""
    qdir = os.path.join(cache, ".quarantine")
    suffix = "-" + rel.replace("/", "+")
    names = sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []
    return [os.path.join(qdir, n) for n in names if n.endswith(suffix)]


def blob_rel(b):
    return "blobs/sha256/" + b.sha256


def planted(t, plant, what, verify=True, kept=None, serving=None):
    """Cache a blob, replace it with what plant(path, canary) makes, check omnihub verify calls
    it bad and the mount heals (fetches it again) in the same daemon and after a remount,
    with the canary outside the cache unchanged. With kept: the entry was moved aside, never
    deleted, and kept(entry in the quarantine, canary) checks it is as it was planted."""
    with serve(t, [("Plant", 128 * KiB)]) as (srv, blobs):
        b = blobs["Plant"]
        if serving is not None:
            serving.append(srv)
        can, can_sha = canary(t)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        path = blob_path(t.cache, b)
        os.unlink(path)
        plant(path, can)
        if verify:
            res = omnihub(t, srv, "verify")
            check_eq(res.returncode, EXIT_CORRUPT, "verify of %s at the blob (%s)"
                     % (what, res.stdout.strip()))
            check_eq(quarantined(t.cache, blob_rel(b)), [], "entries verify moved aside")
        with mount(t, srv) as m:
            right(m.path(b.rel), b, what + " at the blob")
            right(m.path(b.rel), b, what + " at the blob, again")
            alive(m)
            if kept:
                check(m.log_lines(b.sha256, "moved aside", what, ".quarantine"),
                      "no log line naming the planted %s and where it went" % what)
            else:
                check(m.log_lines(b.sha256, "not what"),
                      "no log line naming the planted %s" % what)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, what + ", after a remount")
        check(stat.S_ISREG(os.lstat(path).st_mode), "the blob is a file again")
        check_eq(sha256_file(can), can_sha, "the canary outside the cache")
        if kept:
            entries = quarantined(t.cache, blob_rel(b))
            check_eq(len(entries), 1, "entries moved aside from the blob's name")
            kept(entries[0], can)


@test
def blob_replaced_by_symlink(t):
    def kept(entry, can):
        check(stat.S_ISLNK(os.lstat(entry).st_mode), "%s is not a link" % entry)
        check_eq(os.readlink(entry), can, "where the link moved aside points")

    planted(t, lambda path, can: os.symlink(can, path), "a symbolic link", kept=kept)


@test
def blob_replaced_by_fifo(t):
    planted(t, lambda path, can: os.mkfifo(path), "a FIFO",
            kept=lambda entry, can: check(stat.S_ISFIFO(os.lstat(entry).st_mode),
                                          "%s is not a FIFO" % entry))


@test
def blob_replaced_by_directory(t):
    """A person's directory at the blob's name: moved aside whole, their file in it intact."""
    def plant(path, can):
        os.mkdir(path)
        os.mkdir(os.path.join(path, "sub"))
        with open(os.path.join(path, "sub", "notes.txt"), "wb") as f:
            f.write(b"a person's notes\n")

    def kept(entry, can):
        with open(os.path.join(entry, "sub", "notes.txt"), "rb") as f:
            check_eq(f.read(), b"a person's notes\n", "the file in the directory moved aside")
        # omnihub du counts it apart: one entry, the bytes of the file in it.
        res = omnihub(t, srv_box[0], "--json", "du")
        check_eq(json.loads(res.stdout).get("quarantine"), {"entries": 1, "bytes": 17},
                 "omnihub du's quarantine")

    srv_box = []
    planted(t, plant, "a directory", kept=kept, serving=srv_box)



def plant_socket(path, can):
    """A UNIX socket bound at path (bound from its directory: a socket's address holds at most
    107 bytes, fewer than the blob's path), its listener closed: the entry stays."""
    here = os.getcwd()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.chdir(os.path.dirname(path))
        sock.bind(os.path.basename(path))
    finally:
        os.chdir(here)
        sock.close()


@test
def blob_replaced_by_socket(t):
    planted(t, plant_socket, "a socket",
            kept=lambda entry, can: check(stat.S_ISSOCK(os.lstat(entry).st_mode),
                                          "%s is not a socket" % entry))


@test
def blob_replaced_by_character_device(t):
    """A character device (1,3: the null device, reads as empty, swallows writes) at the blob's
    name: never read as the blob, never written through."""
    planted(t, lambda path, can: os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3)),
            "a character device",
            kept=lambda entry, can: check(stat.S_ISCHR(os.lstat(entry).st_mode)
                                          and os.lstat(entry).st_rdev == os.makedev(1, 3),
                                          "%s is not the character device planted" % entry))


def planted_at_record(t, plant, what, kept):
    """Cache a blob, replace its verification record ("<hex>.ok") with what plant(path, canary)
    makes, and read it through a new mount: the right bytes (the blob is hashed again, no
    record vouching for it), never a hang; the entry is moved aside with a log line and
    kept(entry in the quarantine, canary) checks it is as planted; the canary outside the
    cache is unchanged; a new record (a file) is written, and a remount reads right."""
    with serve(t, [("Rec", 128 * KiB)]) as (srv, blobs):
        b = blobs["Rec"]
        can, can_sha = canary(t)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        record = blob_path(t.cache, b) + ".ok"
        check(stat.S_ISREG(os.lstat(record).st_mode), "no record after the first read")
        os.unlink(record)
        plant(record, can)
        fetched = len(srv.file_requests(b.model_path))
        with mount(t, srv) as m:
            right(m.path(b.rel), b, what + " at the record")
            right(m.path(b.rel), b, what + " at the record, again")
            alive(m)
            check(m.log_lines(b.sha256 + ".ok", "moved aside", what, ".quarantine"),
                  "no log line naming the planted %s at the record and where it went" % what)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, what + " at the record, after a remount")
        check_eq(len(srv.file_requests(b.model_path)), fetched,
                 "requests of the blob (intact: hashed again, not fetched)")
        check(stat.S_ISREG(os.lstat(record).st_mode), "the record is not a file again")
        check_eq(sha256_file(can), can_sha, "the canary outside the cache")
        entries = quarantined(t.cache, blob_rel(b) + ".ok")
        check_eq(len(entries), 1, "entries moved aside from the record's name")
        kept(entries[0], can)


@test
def record_replaced_by_fifo(t):
    planted_at_record(t, lambda path, can: os.mkfifo(path), "a FIFO",
                      lambda entry, can: check(stat.S_ISFIFO(os.lstat(entry).st_mode),
                                               "%s is not a FIFO" % entry))


@test
def record_replaced_by_symlink(t):
    def kept(entry, can):
        check(stat.S_ISLNK(os.lstat(entry).st_mode), "%s is not a link" % entry)
        check_eq(os.readlink(entry), can, "where the link moved aside points")

    planted_at_record(t, lambda path, can: os.symlink(can, path), "a symbolic link", kept)


@test
def record_replaced_by_socket(t):
    planted_at_record(t, plant_socket, "a socket",
                      lambda entry, can: check(stat.S_ISSOCK(os.lstat(entry).st_mode),
                                               "%s is not a socket" % entry))


@test
def record_replaced_by_directory(t):
    def plant(path, can):
        os.mkdir(path)
        with open(os.path.join(path, "notes.txt"), "wb") as f:
            f.write(b"a person's notes\n")

    def kept(entry, can):
        with open(os.path.join(entry, "notes.txt"), "rb") as f:
            check_eq(f.read(), b"a person's notes\n", "the file in the directory moved aside")

    planted_at_record(t, plant, "a directory", kept)

@test
def blob_replaced_by_hard_link_outside(t):
    planted(t, lambda path, can: os.link(can, path), "a hard link to a file outside")


@test
def verify_remove_removes_planted_entries(t):
    """verify --remove moves a planted entry aside (never deletes it), says so, and `omnihub
    du` counts what is moved aside; a mount then fetches the blob again."""
    with serve(t, [("Rm", 64 * KiB)]) as (srv, blobs):
        b = blobs["Rm"]
        can, can_sha = canary(t)
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        path = blob_path(t.cache, b)
        os.unlink(path)
        os.symlink(can, path)
        res = omnihub(t, srv, "verify", "--remove")
        check_eq(res.returncode, EXIT_CORRUPT, "verify --remove of a link")
        check(not os.path.lexists(path), "verify --remove left the link")
        check("moved aside to " + os.path.join(t.cache, ".quarantine") in res.stdout,
              "verify --remove does not say where the link went: %r" % res.stdout)
        entries = quarantined(t.cache, blob_rel(b))
        check_eq(len(entries), 1, "entries moved aside")
        check_eq(os.readlink(entries[0]), can, "where the link moved aside points")
        check_eq(sha256_file(can), can_sha, "the canary")
        res = omnihub(t, srv, "du")
        check(any(line.startswith("quarantine ") and "1 entry" in line
                  for line in res.stdout.splitlines()),
              "omnihub du has no quarantine line: %r" % res.stdout)
        res = omnihub(t, srv, "gc")
        check(os.path.lexists(entries[0]), "omnihub gc removed what was moved aside")
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "after verify --remove")


@test
def gc_leaves_quarantine_alone(t):
    """omnihub gc evicts a blob and its names in the readable tree, but not a name that is a
    hard link to it inside .quarantine (a person's, moved aside)."""
    with serve(t, [("GcQ", 64 * KiB)]) as (srv, blobs):
        b = blobs["GcQ"]
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        qdir = os.path.join(t.cache, ".quarantine", "20260101T000000Z-1-0-onnx+mine")
        os.makedirs(qdir)
        kept = os.path.join(qdir, "copy.bin")
        os.link(blob_path(t.cache, b), kept)
        res = omnihub(t, srv, "gc", "--max", "0")
        check_eq(res.returncode, 0, "gc --max 0 (%s)" % res.stdout.strip())
        check(not os.path.lexists(blob_path(t.cache, b)), "gc --max 0 kept the blob")
        check(os.path.exists(kept), "gc removed a name inside .quarantine")
        check_eq(sha256_file(kept), b.sha256, "the file inside .quarantine")


@test
def partial_hard_link_not_written_through(t):
    """A .partial that is a hard link to a file outside the cache is not written: removed, the
    download starts afresh."""
    with serve(t, [("Part", 512 * KiB)]) as (srv, blobs):
        b = blobs["Part"]
        can, can_sha = canary(t, b"x" * b.bytes)
        path = blob_path(t.cache, b)
        with mount(t, srv) as m:  # planted after the start-up sweep
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.link(can, path + ".partial")
            os.symlink(can, path + ".state")
            right(m.path(b.rel), b, "with a planted .partial")
            alive(m)
        check_eq(sha256_file(can), can_sha, "the canary the .partial pointed at")
        check_eq(os.stat(can).st_nlink, 1, "links to the canary")


@test
def partial_and_sidecar_replaced_by_directories(t):
    """Directories planted at a blob's .partial and .state names, each with a person's file:
    moved aside whole (never deleted), and the blob downloaded right."""
    with serve(t, [("PDir", 256 * KiB)]) as (srv, blobs):
        b = blobs["PDir"]
        path = blob_path(t.cache, b)
        with mount(t, srv) as m:  # planted after the start-up sweep
            os.makedirs(os.path.dirname(path), exist_ok=True)
            for suffix in (".partial", ".state"):
                os.mkdir(path + suffix)
                with open(os.path.join(path + suffix, "mine.txt"), "w") as f:
                    f.write("kept" + suffix)
            right(m.path(b.rel), b, "with directories at the .partial and .state")
            alive(m)
            check(m.log_lines(b.sha256 + ".partial", "moved aside", "a directory"),
                  "no log line moving the .partial aside")
        for suffix in (".partial", ".state"):
            entries = quarantined(t.cache, blob_rel(b) + suffix)
            check_eq(len(entries), 1, "entries moved aside from the " + suffix)
            with open(os.path.join(entries[0], "mine.txt")) as f:
                check_eq(f.read(), "kept" + suffix, "the file in the %s moved aside" % suffix)


def sidecar_case(t, text, what):
    with serve(t, [("Side", 3 * MiB)]) as (srv, blobs):
        b = blobs["Side"]
        path = blob_path(t.cache, b)
        with mount(t, srv) as m:  # planted after the start-up sweep
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".partial", "wb") as f:
                f.write(b"\xff" * b.bytes)  # wrong bytes a trusted sidecar would call present
            with open(path + ".state", "w") as f:
                f.write(text.replace("SIZE", str(b.bytes)))
            right(m.path(b.rel), b, what)
            alive(m)
            check(m.log_lines("cannot be resumed") or m.log_lines("sidecar is unreadable"),
                  "no log line refusing the sidecar (%s)" % what)


ALL_PIECES = "omnihub-partial 1\nsize SIZE\npiece-size 4194304\nvalidator \nurl https://x/y\n"


@test
def sidecar_garbage(t):
    sidecar_case(t, "\x00garbage\xff\n" * 10, "garbage")


@test
def sidecar_huge_numbers(t):
    sidecar_case(t, ALL_PIECES.replace("size SIZE", "size 99999999999999999999999")
                 + "pieces ff\n", "a size past 64 bits")


@test
def sidecar_negative_numbers(t):
    sidecar_case(t, ALL_PIECES.replace("piece-size 4194304", "piece-size -4") + "pieces ff\n",
                 "a negative piece size")


@test
def fifo_at_index_does_not_stop_offline_mount(t):
    with serve(t, [("Idx", 64 * KiB)]) as (srv, blobs):
        b = blobs["Idx"]
        with mount(t, srv) as m:
            right(m.path(b.rel), b, "first read")
        index_dir = os.path.join(t.cache, ".index", "onnx")
        names = os.listdir(index_dir)
        check(names, "no cached index")
        for n in names:
            os.unlink(os.path.join(index_dir, n))
            os.mkfifo(os.path.join(index_dir, n))
        with mount(t, srv, "offline") as m:  # start() fails the test if it does not mount
            alive(m)
            os.listdir(m.path())
        for n in names:
            check(not stat.S_ISFIFO(os.lstat(os.path.join(index_dir, n)).st_mode)
                  if os.path.lexists(os.path.join(index_dir, n)) else True,
                  "the FIFO at the index is still there")
            entries = quarantined(t.cache, ".index/onnx/" + n)
            check_eq(len(entries), 1, "FIFOs moved aside from .index/onnx/" + n)
            check(stat.S_ISFIFO(os.lstat(entries[0]).st_mode), "%s is not a FIFO" % entries[0])


# ----------------------------------------------------------------------------- the cache itself

@test
def cache_deleted_while_mounted(t):
    with serve(t, [("Del", 200 * KiB), ("Del2", 100 * KiB)]) as (srv, blobs):
        with mount(t, srv) as m:
            right(m.path(blobs["Del"].rel), blobs["Del"], "first read")
            subprocess.run(["rm", "-rf", t.cache], check=True)
            right(m.path(blobs["Del"].rel), blobs["Del"], "after the cache was deleted")
            right(m.path(blobs["Del2"].rel), blobs["Del2"], "another, after the deletion")
            alive(m)
            check(os.path.isfile(blob_path(t.cache, blobs["Del"])), "the cache was not made again")
            check(m.log_lines("deleted while in use"), "no log line about the deleted cache")


@test
def read_only_cache(t):
    """The cache's filesystem made read-only under a running daemon, a flipped blob in it: the
    read fails (it cannot be fetched again), never wrong bytes."""
    fs = os.path.join(t.dir, "rofs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", fs], check=True)
    try:
        cache = os.path.join(fs, "cache")
        with serve(t, [("Ro", 256 * KiB), ("Ro2", 64 * KiB)]) as (srv, blobs):
            b = blobs["Ro"]
            with mount(t, srv, cache=cache) as m:
                right(m.path(b.rel), b, "first read")
            flip(blob_path(cache, b))
            with mount(t, srv, cache=cache) as m:
                subprocess.run(["mount", "-o", "remount,ro", fs], check=True)
                kind, _ = never_wrong(m.path(b.rel), b, "flipped, read-only cache",
                                      allowed=("EIO", "EROFS", "EACCES"))
                if kind == "error":
                    check(m.log_lines(b.rel, "cannot be removed", os.strerror(errno.EROFS)),
                          "no log line names %s and why its wrong blob stays" % b.rel)
                kind, _ = never_wrong(m.path(blobs["Ro2"].rel), blobs["Ro2"],
                                      "not cached, read-only cache",
                                      allowed=("EIO", "EROFS", "EACCES"))
                if kind == "error":
                    check(m.log_lines(blobs["Ro2"].rel, os.strerror(errno.EROFS)),
                          "no log line names %s and the read-only cache" % blobs["Ro2"].rel)
                alive(m)
    finally:
        subprocess.run(["umount", "-l", fs])


@test
def read_only_cache_unrecorded_blob(t):
    """A right blob whose record is gone (a link made to it by hand changes its ctime as
    well) is hashed again; in a read-only cache the record cannot be written: the blob,
    unchanged while it was hashed, is served all the same (twice: the mount's memo vouches
    for it), and a log line names the file and why the next mount hashes it again."""
    fs = os.path.join(t.dir, "rofs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", fs], check=True)
    try:
        cache = os.path.join(fs, "cache")
        with serve(t, [("Unrec", 256 * KiB)]) as (srv, blobs):
            b = blobs["Unrec"]
            with mount(t, srv, cache=cache) as m:
                right(m.path(b.rel), b, "first read")
            record = blob_path(cache, b) + ".ok"
            check(os.path.isfile(record), "no record at " + record)
            os.unlink(record)
            with mount(t, srv, cache=cache) as m:
                subprocess.run(["mount", "-o", "remount,ro", fs], check=True)
                right(m.path(b.rel), b, "unrecorded, read-only cache")
                right(m.path(b.rel), b, "unrecorded, read-only cache, again")
                check(m.log_lines(b.rel, "cannot be written", os.strerror(errno.EROFS)),
                      "no log line names %s and why the next mount hashes it again: %s"
                      % (b.rel, m.log_lines(b.rel)))
                alive(m)
    finally:
        subprocess.run(["umount", "-l", fs])


@test
def file_larger_than_free_space_refused_before_fetching(t):
    """A tmpfs of 4 MiB as the cache: an 8 MiB file gives ENOSPC at once, with no byte of it
    asked of the server and nothing left behind; a small one still reads."""
    fs = os.path.join(t.dir, "small")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", fs], check=True)
    try:
        cache = os.path.join(fs, "cache")
        with serve(t, [("Big", 8 * MiB), ("Tiny", 64 * KiB)]) as (srv, blobs):
            with mount(t, srv, cache=cache) as m:
                check_eq(read_outcome(m.path(blobs["Big"].rel)), ("error", "ENOSPC"),
                         "reading a file larger than the free space")
                check_eq([r for r in srv.file_requests(blobs["Big"].model_path) if r["bytes"]], [],
                         "bytes of it fetched")
                check_eq(sorted(p for p in all_files(cache) if "blobs" in p), [],
                         "files left in the blob store")
                right(m.path(blobs["Tiny"].rel), blobs["Tiny"], "a small file")
                alive(m)
    finally:
        subprocess.run(["umount", "-l", fs])


@test
def file_larger_than_cache_max_evicts_nothing(t):
    with serve(t, [("S1", 1 * MiB), ("S2", 1 * MiB), ("Huge", 8 * MiB)]) as (srv, blobs):
        with mount(t, srv, "cache_max=4M") as m:
            right(m.path(blobs["S1"].rel), blobs["S1"], "S1")
            right(m.path(blobs["S2"].rel), blobs["S2"], "S2")
            check_eq(read_outcome(m.path(blobs["Huge"].rel)), ("error", "ENOSPC"),
                     "reading a file larger than cache_max")
            check(m.log_lines("larger than cache_max"), "no log line about cache_max")
            for n in ("S1", "S2"):
                check(os.path.isfile(blob_path(t.cache, blobs[n])), n + " was evicted")
            right(m.path(blobs["S1"].rel), blobs["S1"], "S1 again")
            alive(m)


if __name__ == "__main__":
    run(shared_setup)
