#!/usr/bin/env python3
"""Integration tests of a cache on a failing disk: each EIO the disk causes reaches the reader as EIO, with a log line naming the file and the cause, and the cache mends once the disk does.
Not for full disks (test_transfers.py), slow disks (test_transfers.py) nor disks without locks (test_shared_cache.py).
"""

# The cache lives on tests/fixtures/nolock_fs (a passthrough FUSE filesystem, locks left to
# the kernel) whose control file makes chosen operations fail with EIO: "read PATTERN",
# "write ...", "mkdir ...", "create ...", "open ...", "rename ...", "getattr ..." lines
# (fnmatch patterns of the paths), on while the file exists (see the head of nolock_fs.c).
# The files come from tests/fixtures/catalog_server.py through a user catalog (a plain
# file, a file with a converter of the catalog's own, a tar.gz archive). Each test asserts,
# through a real mount: the read gets EIO (not wrong bytes, not a hang), the daemon's log has
# a line naming the file, the step that failed and "Input/output error", nothing half-made
# is left in the cache, and once the fault is cleared the same file reads right. Run by
# `make check`, or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse python3 tests/integration/test_failing_disk.py [PART]

import contextlib
import io
import json
import os
import sys
import tarfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, all_files, check, check_eq, errno_name,  # noqa: E402
                           nolock_fs, read_errno, run, sha256_bytes, sha256_file, test)

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))
from catalog_server import CatalogServer  # noqa: E402
from zoo_server import make_tls  # noqa: E402

HUB = "failing"
PLAIN = (HUB, "plain", "v1.bin")  # a file served as it is
INPUT = (HUB, "conv", "v1.bin")  # a converter's input
MADE = (HUB, "conv", "v1.txt")  # made from INPUT by the catalog's converter
ARCHIVE = (HUB, "arch", "v1")  # the folder of an archive entry, extracted in the cache
MEMBERS = {"a.txt": b"a small member\n", "sub/b.bin": os.urandom(256 << 10)}
MARK = b"converted by the test\n"  # what the converter appends to its input
EIO_TEXT = "Input/output error"
WAIT = 60.0  # seconds: a generous bound for a mount or a fuse daemon


# ----------------------------------------------------------------------------- fixture

class Shared:
    def __init__(self, run_dir):
        self.dir = run_dir
        self.tls_dir = os.path.join(run_dir, "tls")
        make_tls(self.tls_dir)
        www = os.path.join(run_dir, "www")
        os.makedirs(www)
        self.data = {}
        for name, size in (("plain.bin", 3 << 20), ("conv.bin", 1 << 20)):
            self.data[name] = os.urandom(size)
            with open(os.path.join(www, name), "wb") as f:
                f.write(self.data[name])
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            for name, content in MEMBERS.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        self.data["arch.tar.gz"] = packed.getvalue()
        with open(os.path.join(www, "arch.tar.gz"), "wb") as f:
            f.write(self.data["arch.tar.gz"])
        self.converter = os.path.join(run_dir, "append-mark.sh")
        with open(self.converter, "w") as f:
            f.write('#!/bin/sh\n{ cat "$1" && printf \'%s\'; } > "$2"\n'
                    % MARK.decode().replace("\n", "\\n"))
        os.chmod(self.converter, 0o755)
        self.srv = CatalogServer(www, self.tls_dir)

    def write_catalog(self):
        def entry(name, fmt="bin", **extra):
            e = {"url": name, "size": len(self.data[name]), "format": fmt,
                 "digests": {"sha256": sha256_bytes(self.data[name])}}
            e.update(extra)
            return e
        convert = [{"to": "txt", "command": '%s "$1" "$2"' % self.converter}]
        doc = {"omnihub_catalog": 1, "hub": HUB, "base_url": self.srv.base_url.rstrip("/") + "/",
               "models": {"plain": {"entries": {"v1": entry("plain.bin")}},
                          "conv": {"entries": {"v1": entry("conv.bin", convert=convert)}},
                          "arch": {"entries": {"v1": entry("arch.tar.gz", "tar.gz",
                                                           archive={})}}}}
        self.catalogs = os.path.join(self.dir, "catalogs")
        self.no_catalogs = os.path.join(self.dir, "no-system-catalogs")
        os.makedirs(self.catalogs)
        os.makedirs(self.no_catalogs)
        with open(os.path.join(self.catalogs, HUB + ".json"), "w") as f:
            json.dump(doc, f)


@contextlib.contextmanager
def shared_setup(run_dir):
    shared = Shared(run_dir)
    with shared.srv:
        shared.write_catalog()
        yield shared


class Disk:
    """tests/fixtures/nolock_fs over t.dir/lower on t.dir/disk, its faults in t.dir/faults."""

    def __init__(self, t):
        self.lower = os.path.join(t.dir, "lower")
        self.point = os.path.join(t.dir, "disk")
        self.control = os.path.join(t.dir, "faults")
        self.cache = os.path.join(self.point, "cache")
        self.lower_cache = os.path.join(self.lower, "cache")

    def fail(self, op, pattern):
        """From now on, op on every path (from the disk's root) pattern matches fails with
        EIO (fnmatch, "*" matching "/" too)."""
        with open(self.control, "w") as f:
            f.write("%s %s\n" % (op, pattern))

    def mend(self):
        os.unlink(self.control)

    def hits(self):
        """The failures injected so far: [(op, path)]."""
        try:
            with open(self.control + ".hits") as f:
                return [tuple(line.split(" ", 1)) for line in f.read().splitlines()]
        except FileNotFoundError:
            return []


@contextlib.contextmanager
def failing_disk(t):
    disk = Disk(t)
    with nolock_fs(t, "disk", timeout=WAIT,
                   env={"NOLOCK_FS_LOCKS": "kernel", "NOLOCK_FS_FAULTS": disk.control}):
        yield disk


def mount(t, disk, *extra, cache=None):
    """A Mount (not started) of the test catalog with its cache on the failing disk (in
    cache, a folder there, if given)."""
    sh = t.shared
    return t.mount(["cache=" + (cache or disk.cache), "system_catalogs=" + sh.no_catalogs,
                    "catalogs=" + sh.catalogs] + sh.srv.options() + list(extra))


def eio_logged(m, rel, cause):
    """The log has a line naming rel (the mount path, at the start of the message), the
    step that failed (cause) and the disk's error."""
    check(m.log_lines(": " + "/".join(rel) + ": ", cause, EIO_TEXT),
          "no log line names %s, %r and %r: %s"
          % ("/".join(rel), cause, EIO_TEXT, m.log().splitlines()[-8:]))


def temporaries(disk):
    """Temporary files or folders left anywhere in the caches on the disk (on its lower
    directory)."""
    left = []
    for root, dirs, files in os.walk(disk.lower):
        left += [os.path.join(root, n) for n in dirs + files if n.endswith(".tmp")]
    return sorted(left)


def blob_of(disk, data):
    return os.path.join(disk.lower_cache, "blobs", "sha256", sha256_bytes(data))


# ----------------------------------------------------------------------------- tests

@test
def hash_read_error_is_eio_and_logged(t):
    """A cached file whose record was lost (a power cut) is hashed again at its next open;
    a read error of its blob meanwhile: the open gets EIO, the log names the file and the
    error, no record vouches for the blob; once the disk mends, it is hashed and reads right."""
    data = t.shared.data["plain.bin"]
    with failing_disk(t) as disk:
        with mount(t, disk) as m:
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the first read")
        blob = blob_of(disk, data)
        check(os.path.isfile(blob + ".ok"), "no record of the downloaded blob")
        os.unlink(blob + ".ok")
        disk.fail("read", "*/sha256/" + sha256_bytes(data))
        with mount(t, disk, "offline") as m:
            check_eq(errno_name(read_errno(m.path(*PLAIN))), "EIO", "reading it on a failing disk")
            check(disk.hits(), "the disk failed no read: the fault missed the blob")
            eio_logged(m, PLAIN, "to hash it")
            check(not os.path.exists(blob + ".ok"), "a record vouches for a blob never hashed")
            check(os.path.isfile(blob), "the blob, right on disk, was removed")
            disk.mend()
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the read once mended")
            check(m.log_lines("/".join(PLAIN), "found in the cache"),
                  "the blob was not hashed once the disk mended")


@test
def record_write_error_is_eio_and_logged(t):
    """A cached file whose record was lost is hashed again at its next open, right, but its
    new record cannot be created on the failing disk: the open gets EIO, the log names the
    file and the error, the blob stays and no record half-written is left; once the disk
    mends, it reads right and is recorded."""
    data = t.shared.data["plain.bin"]
    with failing_disk(t) as disk:
        with mount(t, disk) as m:
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the first read")
        blob = blob_of(disk, data)
        os.unlink(blob + ".ok")
        disk.fail("create", "*/.%s.ok.*" % sha256_bytes(data))
        with mount(t, disk, "offline") as m:
            check_eq(errno_name(read_errno(m.path(*PLAIN))), "EIO", "reading it on a failing disk")
            check(disk.hits(), "the disk failed no creation: the fault missed the record")
            eio_logged(m, PLAIN, "cannot record that")
            check(os.path.isfile(blob), "the blob, right on disk, was removed")
            check_eq(temporaries(disk), [], "temporaries left")
            check(not os.path.exists(blob + ".ok"), "a record was written on the failing disk")
            disk.mend()
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the read once mended")
        check(os.path.isfile(blob + ".ok"), "no record once the disk mended")


@test
def cached_read_error_is_eio_and_logged(t):
    """A cached, recorded file whose blob's disk fails past its first MiB while it is read:
    the read gets EIO there (not wrong bytes), the log names the file and the error, the
    blob stays; once the disk mends, the same file reads right."""
    data = t.shared.data["plain.bin"]
    with failing_disk(t) as disk:
        with mount(t, disk) as m:
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the first read")
        disk.fail("read", "*/sha256/%s %d" % (sha256_bytes(data), 1 << 20))
        with mount(t, disk, "offline") as m:
            got = b""
            with open(m.path(*PLAIN), "rb") as f:
                try:
                    while True:
                        block = f.read(1 << 16)
                        if not block:
                            break
                        got += block
                    err = None
                except OSError as e:
                    err = e.errno
            check_eq(errno_name(err) if err else None, "EIO", "reading it on a failing disk")
            check(disk.hits(), "the disk failed no read: the fault missed the blob")
            check(data.startswith(got), "the bytes read before the EIO are wrong")
            eio_logged(m, PLAIN, "from the cache")
            check(os.path.isfile(blob_of(disk, data)), "the blob, right on disk, was removed")
            disk.mend()
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the read once mended")


@test
def download_read_back_error_is_eio_and_logged(t):
    """A download whose partial blob cannot be read back to hash it: the read gets EIO, the
    log names the file and the error, no complete blob is left; once the disk mends, the
    same file reads right."""
    data = t.shared.data["plain.bin"]
    with failing_disk(t) as disk:
        disk.fail("read", "*.partial")
        with mount(t, disk) as m:
            check_eq(errno_name(read_errno(m.path(*PLAIN))), "EIO", "reading it on a failing disk")
            check(disk.hits(), "the disk failed no read: the fault missed the partial blob")
            eio_logged(m, PLAIN, "cannot read back")
            check(not os.path.exists(blob_of(disk, data)), "a complete blob was left")
            disk.mend()
            check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the read once mended")


# A download's steps in the cache, the fault that breaks each, the cause its log line gives,
# and whether the file is downloaded first (by a mount without the fault).
DOWNLOAD_FAULTS = (
    ("create", "*.partial", "cannot start its partial blob in the cache", False),
    ("write", "*.partial", "cannot write", False),
    ("rename", "*.partial", "cannot install", False),
    ("open", "*/sha256/" + "[0-9a-f]" * 64, "cannot open its blob in the cache", True),
)


@test
def download_steps_on_a_failing_disk(t):
    """A download whose partial blob cannot be created, written or installed, and a
    downloaded file whose blob cannot be opened (each in a cache of its own): the read gets
    EIO, the log names the file, the step and the error, no complete blob is left that was
    not verified; once the disk mends, the same file reads right."""
    data = t.shared.data["plain.bin"]
    with failing_disk(t) as disk:
        for number, (op, pattern, cause, warm) in enumerate(DOWNLOAD_FAULTS):
            cache = os.path.join(disk.point, "cache-%d" % number)
            blob = os.path.join(disk.lower, "cache-%d" % number, "blobs", "sha256",
                                sha256_bytes(data))
            if warm:
                with mount(t, disk, cache=cache) as m:
                    check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data), "the download")
            before = len(disk.hits())
            disk.fail(op, pattern)
            with mount(t, disk, cache=cache) as m:
                check_eq(errno_name(read_errno(m.path(*PLAIN))), "EIO", "reading it (%s fails)"
                         % op)
                check(len(disk.hits()) > before, "no %s failed: the fault missed (%s)"
                      % (op, cause))
                eio_logged(m, PLAIN, cause)
                check(warm or not os.path.exists(blob), "a complete blob was left (%s)" % cause)
                check_eq(temporaries(disk), [], "temporaries left after %r" % cause)
                disk.mend()
                check_eq(sha256_file(m.path(*PLAIN)), sha256_bytes(data),
                         "the read once mended (%s)" % cause)


# An archive's steps in the cache (extracting it into a temporary folder, installing that;
# then opening and reading a file extracted), the fault that breaks each, the cause its log
# line gives, and whether the archive is extracted first (by a mount without the fault).
# Its temporary folder is ".v1.<maker>.<pid>-<random>.tmp" beside the folder.
ARCHIVE_TMP = "*/." + ARCHIVE[-1] + ".*.tmp"
ARCHIVE_FAULTS = (
    ("mkdir", ARCHIVE_TMP, "cannot create a directory in the cache", False),
    ("create", ARCHIVE_TMP + "/*", "cannot extract", False),
    ("write", ARCHIVE_TMP + "/*", "cannot write", False),
    ("rename", ARCHIVE_TMP, "cannot install", False),
    ("getattr", "*/sub/b.bin", "cannot look it up in the cache", True),
    ("open", "*/sub/b.bin", "cannot open it in the cache", True),
    ("read", "*/sub/b.bin", "from the cache", True),
)


@test
def archive_steps_on_a_failing_disk(t):
    """An archive entry whose extraction fails on the disk (its folder, a member's creation or
    writing, the install), and a file extracted that cannot be looked up, opened or read
    (each in a cache of its own): reading a member gets EIO, the log names the entry or file,
    the step and the error, no folder half-extracted is left; once the disk mends, it reads
    right."""
    member = ARCHIVE + ("sub", "b.bin")
    want = sha256_bytes(MEMBERS["sub/b.bin"])
    with failing_disk(t) as disk:
        for number, (op, pattern, cause, warm) in enumerate(ARCHIVE_FAULTS):
            cache = os.path.join(disk.point, "cache-%d" % number)
            if warm:
                with mount(t, disk, cache=cache) as m:
                    check_eq(sha256_file(m.path(*member)), want, "the extracted member")
            before = len(disk.hits())
            disk.fail(op, pattern)
            with mount(t, disk, cache=cache) as m:
                check_eq(errno_name(read_errno(m.path(*member))), "EIO", "reading it (%s fails)"
                         % op)
                check(len(disk.hits()) > before, "no %s failed: the fault missed (%s)"
                      % (op, cause))
                eio_logged(m, member if warm else ARCHIVE, cause)
                check_eq(temporaries(disk), [], "temporaries left after %r" % cause)
                folder = os.path.join(disk.lower, "cache-%d" % number, *ARCHIVE)
                check(warm or not os.path.exists(folder), "a folder was installed (%s)" % cause)
                disk.mend()
                check_eq(sha256_file(m.path(*member)), want, "the read once mended (%s)" % cause)


# The converter's steps in the cache, the fault that breaks each and the cause its log line
# gives (download.c: made_from_blob, convert_into). Its temporaries are named
# ".v1.txt.<maker>.<pid>-<random>.tmp" (a file, and a folder with its output v1.txt).
TMP = "*/." + MADE[-1] + ".*.tmp"
CONVERT_FAULTS = (
    ("create", TMP, "cannot create a file in the cache"),
    ("mkdir", TMP, "cannot create the converter's directory in the cache"),
    ("rename", TMP + "/" + MADE[-1], "cannot move the converter's output into the cache"),
    ("open", TMP, "cannot open the converter's output"),
    ("rename", TMP, "cannot install it in the cache"),
)


@test
def converter_temporaries_on_a_failing_disk(t):
    """A made file (the catalog's converter) whose temporaries in the cache fail, one step at
    a time: creating its file, creating the converter's folder, moving the converter's output,
    opening it, installing it. Each time the read gets EIO, the log names the file, the step
    and the error, and no temporary and no made file is left; once the disk mends, the file
    is made and reads right."""
    sh = t.shared
    want = sha256_bytes(sh.data["conv.bin"] + MARK)
    with failing_disk(t) as disk, mount(t, disk) as m:
        # Its input first, so that each fault hits the making alone.
        check_eq(sha256_file(m.path(*INPUT)), sha256_bytes(sh.data["conv.bin"]), "the input")
        for op, pattern, cause in CONVERT_FAULTS:
            before = len(disk.hits())
            disk.fail(op, pattern)
            check_eq(errno_name(read_errno(m.path(*MADE))), "EIO", "reading it (%s fails)" % op)
            check(len(disk.hits()) > before, "no %s failed: the fault missed (%s)" % (op, cause))
            eio_logged(m, MADE, cause)
            check_eq(temporaries(disk), [], "temporaries left after %r" % cause)
            made = [p for p in all_files(disk.lower_cache) if p.endswith("/v1.txt")]
            check_eq(made, [], "made files left after %r" % cause)
            disk.mend()
        check_eq(sha256_file(m.path(*MADE)), want, "the made file once mended")


if __name__ == "__main__":
    run(shared_setup)
