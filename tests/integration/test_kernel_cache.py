#!/usr/bin/env python3
"""Integration tests of what the kernel keeps of the mount: extended attributes outside our namespace, listings, names and attributes kept, and dropped when an index changes.
Not for downloads (test_transfers.py) nor for speed (scripts/bench): these count requests.
"""

# Each test serves its own ONNX-style index from tests/fixtures/blob_server.py and mounts with
# libfuse's `-o debug`, whose log names every request the kernel sent ("opcode: LOOKUP"):
# the tests count them. Run by `make check`, or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_kernel_cache.py [PART]

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (check, check_eq, mount as hub_mount, run,  # noqa: E402
                           serve_blobs, sha256_file, test, tls_setup, wait_for)

from blob_server import Blob, manifest_of, random_bytes  # noqa: E402

OPCODE = re.compile(r"opcode: ([A-Z_]+) ")


shared_setup = tls_setup


@contextlib.contextmanager
def serve(t, specs):
    """Files of random bytes ((name, size) each), served; yields (server, [Blob])."""
    with serve_blobs(t, specs) as (srv, blobs):
        yield srv, list(blobs.values())


def mount(t, srv, *extra):
    """A started Mount that logs every request it gets (libfuse's debug option)."""
    return hub_mount(t, srv, "debug", *extra).start()


def requests_during(m, func):
    """func() run; returns {opcode: count} of the requests the daemon got meanwhile."""
    before = len(m.log())
    func()
    time.sleep(0.2)  # the log is written after the reply
    counts = {}
    for op in OPCODE.findall(m.log()[before:]):
        counts[op] = counts.get(op, 0) + 1
    return counts


def ls_l(path):
    out = subprocess.run(["ls", "-l", path], check=True, capture_output=True, text=True).stdout
    return out


def set_index(srv, blobs):
    srv.manifest_bytes = (json.dumps(manifest_of(blobs)) + "\n").encode()


def errno_of_getxattr(path, name):
    try:
        os.getxattr(path, name)
    except OSError as e:
        return e.errno
    return 0


NAMES = ["m%d" % i for i in range(8)]


@test
def xattrs_outside_our_namespace_not_supported(t):
    """security.*, system.*, trusted.* and user.* outside user.omnihub. answer ENOTSUP, so that
    `ls -l` of eight folders asks the daemon for them a few times per run, not once or twice
    per name; user.omnihub.* still give their values, an unknown one ENODATA."""
    with serve(t, [(n, 1000) for n in NAMES]) as (srv, blobs):
        m = mount(t, srv)
        onnx = m.path("onnx")
        model = m.path(blobs[0].rel)
        os.listdir(onnx)
        for run_ in range(2):
            got = requests_during(m, lambda: ls_l(onnx)).get("GETXATTR", 0)
            t.note("ls -l run %d: %d GETXATTR" % (run_ + 1, got))
            check(got <= 3, "ls -l of %d folders sent %d GETXATTR (run %d)"
                  % (len(NAMES), got, run_ + 1))
        for name in ("security.selinux", "system.posix_acl_access", "trusted.x", "user.foo"):
            check_eq(errno_of_getxattr(model, name), errno.ENOTSUP, "errno of getxattr " + name)
        check_eq(errno_of_getxattr(model, "user.omnihub.nosuch"), errno.ENODATA,
                 "errno of getxattr user.omnihub.nosuch")
        check_eq(os.getxattr(model, "user.omnihub.digest").decode(), "sha256:" + blobs[0].sha256,
                 "user.omnihub.digest")
        check_eq(os.getxattr(model, "user.omnihub.hub").decode(), "onnx", "user.omnihub.hub")
        check("user.omnihub.digest" in os.listxattr(model), "listxattr: %r" % os.listxattr(model))


def entry_names(path):
    return sorted(os.listdir(path))


@test
def ls_l_needs_no_lookups_and_listings_kept(t):
    """READDIRPLUS gives `ls -l` everything: after it, no LOOKUP or GETATTR of the names it
    listed. A second `ls -l` is served by the kernel's cache: an OPENDIR, no READDIR."""
    with serve(t, [(n, 1000) for n in NAMES]) as (srv, blobs):
        m = mount(t, srv)
        onnx = m.path("onnx")
        os.stat(onnx)
        first = requests_during(m, lambda: ls_l(onnx))
        t.note("first ls -l: %r" % first)
        check(first.get("READDIRPLUS", 0) >= 1, "no READDIRPLUS: %r" % first)
        check_eq(first.get("LOOKUP", 0) + first.get("GETATTR", 0), 0,
                 "LOOKUP and GETATTR requests of a first ls -l")
        second = requests_during(m, lambda: ls_l(onnx))
        t.note("second ls -l: %r" % second)
        check_eq(second.get("READDIRPLUS", 0) + second.get("READDIR", 0), 0,
                 "READDIR(PLUS) requests of a second ls -l")
        check_eq(second.get("LOOKUP", 0) + second.get("GETATTR", 0), 0,
                 "LOOKUP and GETATTR requests of a second ls -l")
        # ls -lR of the whole hub, twice: the second lists no folder again.
        subprocess.run(["ls", "-lR", onnx], check=True, capture_output=True)
        again = requests_during(m, lambda: subprocess.run(["ls", "-lR", onnx], check=True,
                                                          capture_output=True))
        t.note("second ls -lR: %r" % again)
        check_eq(again.get("READDIRPLUS", 0) + again.get("READDIR", 0), 0,
                 "READDIR(PLUS) requests of a second ls -lR")


@test
def index_refresh_renames_and_resizes_at_once(t):
    """With the listings and names the kernel keeps: a model renamed in a refreshed index is
    listed under its new name at once and its old name is gone; a resized one shows its new
    size and bytes, never the old ones; a model given another opset lists it in its folder,
    which the kernel had listed."""
    with serve(t, [(n, 1000) for n in NAMES[:4]]) as (srv, blobs):
        m = mount(t, srv, "index_ttl=1")
        onnx = m.path("onnx")
        old_names = entry_names(onnx)
        check_eq(old_names, sorted(NAMES[:4]), "listing before the change")
        for b in blobs:
            check_eq(os.stat(m.path(b.rel)).st_size, 1000, "size of %s before" % b.name)
            check_eq(sha256_file(m.path(b.rel)), b.sha256, "bytes of %s before" % b.name)
        ls_l(onnx)
        third = m.path("onnx", blobs[2].dir)
        check_eq(entry_names(third), ["model.onnx", "opset-13"], "a model's folder before")
        kept = requests_during(m, lambda: (entry_names(onnx), entry_names(third)))
        check_eq(kept.get("READDIRPLUS", 0) + kept.get("READDIR", 0), 0,
                 "the listing is not kept by the kernel (READDIR requests)")
        renamed = Blob("renamed", blobs[0].data, blobs[0].opset, blobs[0].path)
        grown = Blob(blobs[1].name, random_bytes(3000, "grown"), blobs[1].opset, blobs[1].path)
        srv.set_file(renamed.model_path, renamed.data)
        srv.set_file(grown.model_path, grown.data)
        newer = Blob(blobs[2].name, blobs[2].data, 14, blobs[2].path)
        set_index(srv, [renamed, grown] + blobs[2:] + [newer])
        time.sleep(1.5)  # past index_ttl: the next listing fetches the index again
        # The model's folder first: listing onnx/ would give the kernel its new attributes,
        # whose new mtime alone makes the kernel drop its copy of the folder's listing.
        check_eq(entry_names(third), ["model.onnx", "opset-13", "opset-14"],
                 "the folder of the model with another opset")
        check_eq(entry_names(onnx), sorted(["renamed"] + NAMES[1:4]), "listing after the change")
        check_eq(sha256_file(m.path(renamed.rel)), renamed.sha256, "bytes of the renamed model")
        wait_for(lambda: not os.path.exists(m.path(blobs[0].rel)), 10,
                 "the old name to be gone")
        wait_for(lambda: not os.path.exists(m.path("onnx", blobs[0].dir)), 10,
                 "the old folder to be gone")
        wait_for(lambda: os.stat(m.path(grown.rel)).st_size == 3000, 10,
                 "the new size through the mount")
        check_eq(sha256_file(m.path(grown.rel)), grown.sha256, "bytes of the resized model")
        check_eq(entry_names(m.path("onnx", grown.dir)), ["model.onnx", "opset-13"],
                 "listing of the resized one")
        check_eq(os.stat(m.path(grown.top_rel)).st_size, 3000, "size of its top-level name")
        out = ls_l(m.path("onnx", grown.dir, "opset-13"))
        check(" 3000 " in out, "ls -l after the change: %s" % out)


def bdi_read_ahead_kb(path):
    """The read-ahead the kernel gives the mount at path, in KiB."""
    dev = os.stat(path).st_dev
    with open("/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(dev), os.minor(dev))) as f:
        return int(f.read())


def drop_page_cache():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")


def spliced_request_bytes():
    """The largest read request whose reply libfuse can splice: the reply and a few pages
    of slack fit a pipe of /proc/sys/fs/pipe-max-size (512 KiB when that is 1 MiB)."""
    with open("/proc/sys/fs/pipe-max-size") as f:
        pipe_max = int(f.read())
    size = 1 << 20
    while size > 128 << 10 and size + 4 * 4096 + 16 > pipe_max:
        size //= 2
    return size


def bytes_read_by(pid):
    """What the process read through read(2)-like calls (rchar): a spliced reply moves
    the file's pages without them."""
    with open("/proc/%d/io" % pid) as f:
        return int(next(l for l in f if l.startswith("rchar:")).split()[1])


@test
def warm_reads_in_large_spliced_requests(t):
    """The mount's read-ahead is 1 MiB and its requests are as large as a spliced reply can
    be, so a warm sequential read of 8 MiB takes 8 MiB / that size READ requests, not
    sixty-four of the kernel's default 128 KiB; and the replies are spliced from the
    cached file: the daemon reads none of its 8 MiB itself (1 MiB requests, too large for
    libfuse's pipe, were copied through the daemon: pread, then writev). Bytes right."""
    with serve(t, [("big", 8 << 20)]) as (srv, blobs):
        m = mount(t, srv)
        path = m.path(blobs[0].rel)
        check_eq(sha256_file(path), blobs[0].sha256, "bytes of the first read")
        drop_page_cache()
        rchar = bytes_read_by(m.proc.pid)
        reads = requests_during(m, lambda: check_eq(sha256_file(path, chunk=128 << 10),
                                                    blobs[0].sha256, "bytes of the warm read"))
        rchar = bytes_read_by(m.proc.pid) - rchar
        t.note("warm read: %r; the daemon read %d bytes meanwhile" % (reads, rchar))
        most = (8 << 20) // spliced_request_bytes() * 3 // 2 + 2  # the window grows first
        check(1 <= reads.get("READ", 0) <= most,
              "READ requests of a warm 8 MiB read: %r (at most %d)" % (reads, most))
        check(rchar < 1 << 20, "the daemon read %d bytes itself: replies not spliced" % rchar)
        check_eq(bdi_read_ahead_kb(m.mountpoint), 1024, "read_ahead_kb of the mount")


@test
def max_read_option(t):
    """-o max_read=N mounts (with libfuse 3.14 the session ended at once: its INIT check
    wants init() to repeat the option) and reads are right."""
    with serve(t, [("big", 3 * (1 << 20) + 5)]) as (srv, blobs):
        m = mount(t, srv, "max_read=65536")
        check_eq(sha256_file(m.path(blobs[0].rel)), blobs[0].sha256, "bytes read")


@test
def streamed_pages_of_refused_bytes_not_kept(t):
    """Stream mode: a reader gets a download's bytes before their digest is checked. When
    the digest refuses them, the pages the kernel cached of them are not kept: once another
    daemon on the same cache has the right bytes, an open here reads those, not the pages."""
    with serve(t, [("healed", 4 << 20)]) as (srv, blobs):
        b = blobs[0]
        bad = bytearray(b.data)
        bad[1 << 20:(1 << 20) + 4096] = b"\0" * 4096
        srv.set_file(b.model_path, bytes(bad))
        m = mount(t, srv, "stream")
        path = m.path(b.rel)
        got, error = b"", None
        with open(path, "rb") as f:
            try:
                while True:
                    block = f.read(1 << 20)
                    if not block:
                        break
                    got += block
            except OSError as e:
                error = e.errno
        check_eq(error, errno.EIO, "errno of the read of refused bytes")
        check(got and got == bytes(bad)[:len(got)], "the bytes read were not the server's")
        srv.set_file(b.model_path, b.data)
        other = os.path.join(t.dir, "other")
        os.makedirs(other)
        m2 = t.mount(["cache=" + t.cache] + srv.options(), mountpoint=other).start()
        check_eq(sha256_file(os.path.join(other, b.rel)), b.sha256, "bytes through another mount")
        m2.stop()
        check_eq(sha256_file(path), b.sha256, "bytes read here after the other mount's download")


if __name__ == "__main__":
    run(shared_setup)
