#!/usr/bin/env python3
"""Integration tests of one cache directory shared by two machines, and of a filesystem that cannot lock.
Not for one machine's download layer (test_transfers.py) nor for mirrors (test_team.py).
"""

# Two "machines" share one cache directory: over NFS where this machine can serve it (the
# kernel has nfs and nfsd, nfs-kernel-server's tools are installed), else two mount
# namespaces over one directory. Either way each client's daemon runs in a mount namespace
# of its own (unshare -m; the test reaches its mount through /proc/PID/root) and a network
# namespace of its own (tests/integration/netns.py), the origin (blob_server.py) in a third.
# A TAP diagnostic says which: "# shared over: nfs|mount namespaces". Then: a cold file read
# by both at once comes once from the origin; a blob one machine has open survives the
# other's eviction. And a cache on tests/fixtures/nolock_fs (locks fail with ENOLCK) is
# refused by omnihub-fuse and omnihub. Run by `make check`, or by hand (as root):
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_shared_cache.py [PART]

import contextlib
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (EXIT_TIMEOUT, Mount, NetTeam, _die_with_parent, check,  # noqa: E402
                           check_eq, is_mounted, nolock_fs, omnihub_binary, read_all_at_once,
                           run, run_cli, sha256_file, test, wait_for)

from blob_server import BlobServer, files_of, make_blobs, manifest_of  # noqa: E402

MiB = 1 << 20
WAIT = 60.0  # seconds: generous bound on anything that should finish
REFUSAL = re.compile(r"cannot use the cache directory (\S+): its filesystem, (.*), refuses locks "
                     r"\(No locks available\), .*mount it with working locks \(without nolock "
                     r"or local_lock\) or use a local cache directory")


# ----------------------------------------------------------------------------- fixture

def nfs_unusable():
    """Why this machine cannot serve and mount NFS, or None."""
    with open("/proc/filesystems") as f:
        have = set(f.read().split())
    missing = [n for n in ("nfs", "nfsd") if n not in have]
    if missing and not os.path.isdir("/lib/modules/" + os.uname().release):
        return "the kernel has no %s (no /proc/filesystems entry, no modules)" % " or ".join(missing)
    for tool in ("exportfs", "rpc.nfsd", "rpc.mountd", "mount.nfs"):
        if shutil.which(tool) is None:
            return "%s is not installed (nfs-kernel-server, nfs-common)" % tool
    return None


NFS_UNUSABLE = nfs_unusable()
NFSD_FS = "/proc/fs/nfsd"


def quiet(argv, timeout=WAIT):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


class NfsServer:
    """This machine's kernel NFS server (v4 over TCP on 127.0.0.1) exporting one directory,
    started (nfsd threads, rpc.mountd) only if it was not running, and stopped as found.
    start() raises RuntimeError saying which step failed."""

    def __init__(self, export_dir, workdir):
        self.export_dir = export_dir
        self.workdir = workdir
        self.client = "127.0.0.1:" + export_dir
        self.undo = []  # (what, argv or callable), run in reverse

    def _must(self, argv, what):
        res = quiet(argv)
        if res.returncode != 0:
            raise RuntimeError("%s: %s" % (what, (res.stderr or res.stdout).strip()))

    def _threads(self):
        try:
            with open(os.path.join(NFSD_FS, "threads")) as f:
                return int(f.read().strip() or "0")
        except (OSError, ValueError):
            return 0

    def start(self):
        try:
            if not os.path.ismount(NFSD_FS):
                self._must(["mount", "-t", "nfsd", "nfsd", NFSD_FS], "mount -t nfsd")
                self.undo.append(["umount", NFSD_FS])
            if self._threads() == 0:
                self._must(["rpc.nfsd", "-N", "3", "-V", "4", "-U", "4"], "rpc.nfsd 4")
                self.undo.append(["rpc.nfsd", "0"])
            if quiet(["pgrep", "-x", "rpc.mountd"]).returncode != 0:
                log = open(os.path.join(self.workdir, "mountd.log"), "wb")
                mountd = subprocess.Popen(["rpc.mountd", "-F", "-N", "2", "-N", "3", "-u"],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          preexec_fn=_die_with_parent)
                log.close()
                self.undo.append(lambda: (mountd.terminate(), mountd.wait(EXIT_TIMEOUT)))
            self._must(["exportfs", "-i", "-o",
                        "rw,sync,no_subtree_check,no_root_squash,insecure,fsid=%d"
                        % (os.getpid() % 100000 + 7), self.client], "exportfs")
            self.undo.append(["exportfs", "-u", self.client])
            probe = os.path.join(self.workdir, "nfs-probe")
            os.makedirs(probe, exist_ok=True)
            self._must(["mount", "-t", "nfs4", "-o", "vers=4.2,proto=tcp,soft,timeo=50",
                        self.client, probe], "mount -t nfs4 " + self.client)
            self._must(["umount", probe], "umount " + probe)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        while self.undo:
            step = self.undo.pop()
            try:
                step() if callable(step) else quiet(step)
            except Exception:
                pass

    close = stop  # for contextlib.closing

    def mount_prefix(self, point, options="vers=4.2,proto=tcp"):
        """An argv prefix: a new mount namespace in which this export is mounted on point
        (nosharecache: a superblock of its own, so only the server arbitrates locks between
        two such mounts), then the rest of the command."""
        script = 'mount -t nfs4 -o "$0",nosharecache "$1" "$2" && shift 2 && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                options, self.client, point]


class Shared:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.over = "mount namespaces" if NFS_UNUSABLE else "nfs"
        print("# shared over: %s%s" % (self.over, " (no NFS: %s)" % NFS_UNUSABLE
                                       if NFS_UNUSABLE else ""))
        sys.stdout.flush()


@contextlib.contextmanager
def shared_setup(run_dir):
    yield Shared(run_dir)


class NsMount(Mount):
    """A Mount whose daemon runs in a mount namespace of its own (prefix makes it, and may
    mount the shared cache there and enter a network namespace): its mount is seen only
    there, so the test reaches it through /proc/PID/root, and it goes with the namespace
    when the daemon exits."""

    def path(self, *parts):
        return "/proc/%d/root%s" % (self.proc.pid, os.path.join(self.mountpoint, *parts))

    def mounted(self):
        """Whether the mount is up in the daemon's namespace (nsenter and unshare exec, so
        the daemon keeps the pid Popen saw)."""
        if self.proc is None:
            return False
        try:
            with open("/proc/%d/mountinfo" % self.proc.pid) as f:
                return any(line.split(" ")[4] == self.mountpoint for line in f)
        except OSError:
            return False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def ask_to_exit(self):
        """SIGTERM: the daemon unmounts in its namespace (and must exit with status 0)."""
        self.proc.terminate()
        return []


class Machines(NetTeam):
    """Two client machines (c1, c2) with one cache directory between them and an origin
    serving files of random bytes: each client in a network namespace of its own, its daemon
    in a mount namespace of its own (an NsMount). Everything stops at the end of the with
    block."""

    mount_class = NsMount

    def __init__(self, t, specs, rate=None):
        super().__init__(t, ["c1", "c2"], specs, rate=rate)
        self.over = t.shared.over
        # The cache as this machine's own filesystem holds it (the NFS export).
        self.cache = os.path.join(t.dir, "shared-cache")

    def more_setup(self):
        os.makedirs(self.cache)
        if self.over == "nfs":
            self.nfs = NfsServer(self.cache, self.t.dir).start()
            self.stack.callback(self.nfs.stop)

    def __enter__(self):
        super().__enter__()
        self.clients = self.hosts
        self.blobs = {b.name: b for b in self.blobs}
        return self

    def env(self, host):
        return self.host_env(host)

    def cache_of(self, host):
        """The cache directory as host's processes name it: over NFS, its own mount of the
        export; else the directory itself."""
        if self.over == "nfs":
            point = os.path.join(self.t.dir, host.role, "cache")
            os.makedirs(point, exist_ok=True)
            return point
        return self.cache

    def prefix(self, host):
        """How host's processes start: a mount namespace of their own (over NFS, with the
        export mounted on cache_of(host)), then host's network namespace."""
        if self.over == "nfs":
            ns = self.nfs.mount_prefix(self.cache_of(host))
        else:
            ns = ["unshare", "--mount", "--propagation", "private", "--"]
        return ns + host.prefix()

    def options(self, host):
        return self.hub_options(self.cache_of(host))

    def omnihub(self, host, *args):
        """omnihub ARGS... as host, started like its daemon."""
        argv = self.prefix(host) + [omnihub_binary(), "-o", ",".join(self.options(host))]
        return subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=self.env(host), timeout=WAIT)

    def blob_path(self, blob):
        return os.path.join(self.cache, "blobs", "sha256", blob.sha256)


def status_source(m, rel):
    """The SOURCE column of rel's row in the mount's .omnihub/status, or the whole text."""
    with open(m.path(".omnihub", "status")) as f:
        text = f.read()
    for line in text.splitlines()[3:]:
        fields = line.split()
        if len(fields) >= 10 and fields[-1].endswith(rel):
            return fields[1]
    return text


# ----------------------------------------------------------------------------- two machines

@test
def two_machines_read_one_cold_file_with_one_download(t):
    """Both clients read the same cold file at once: right bytes in both, the origin sends
    the file's bytes once, and one client says it followed the other's download."""
    with Machines(t, [("big", 24 * MiB)], rate=2 * MiB) as ms:
        b = ms.blobs["big"]
        m1, m2 = (ms.mount(host) for host in ms.clients)
        namespaces = {os.readlink("/proc/%s/ns/mnt" % pid) for pid in (m1.proc.pid, m2.proc.pid,
                                                                         "self")}
        check_eq(len(namespaces), 3, "mount namespaces of c1's daemon, c2's and the test")
        check(not is_mounted(m1.mountpoint) and not is_mounted(m2.mountpoint),
              "a client's mount is seen outside its namespace")
        paths = [m.path(b.rel) for m in (m1, m2)]
        check_eq(read_all_at_once(paths), {p: b.sha256 for p in paths}, "sha256 read by each")
        check_eq(ms.origin_bytes(b), b.bytes, "body bytes the origin sent of a %d-byte file"
                 % b.bytes)
        followed = [m for m in (m1, m2)
                    if m.log_lines("another process is downloading it: following") or
                    m.log_lines("completed by another process")]
        check_eq(len(followed), 1, "clients whose log says another one downloaded the file")
        check(not [p for p in os.listdir(os.path.dirname(ms.blob_path(b)))
                   if p.endswith((".partial", ".state"))], "partial files left")
        check_eq(os.path.getsize(ms.blob_path(b)), b.bytes, "size of the blob")
        # The status says where each client's copy came from: the hub, or another
        # process's download (a row: STATE SOURCE DONE TOTAL % SPEED ETA CONN WAIT PATH).
        sources = sorted(status_source(m, b.rel) for m in (m1, m2))
        check_eq(sources, ["hub", "shared"], "the SOURCE of the file in each client's status")
        checked = [m for m in (m1, m2) if m.log_lines("shared cache on nfs4: locks checked")]
        check_eq(len(checked), 2 if ms.over == "nfs" else 0,
                 "daemons that log \"shared cache on nfs4: locks checked\"")


@test
def eviction_spares_a_blob_open_on_the_other_machine(t):
    """c1 holds a file open through its mount; c2's eviction (omnihub gc, and its daemon's
    own cache_max) leaves that blob alone; once c1 closes it, it can go."""
    with Machines(t, [("held", 8 * MiB), ("other", 8 * MiB)]) as ms:
        held, other = ms.blobs["held"], ms.blobs["other"]
        c1, c2 = ms.clients
        m1 = ms.mount(c1)
        m2 = ms.mount(c2, "cache_max=10M")
        with open(m1.path(held.rel), "rb") as f:
            check_eq(sha256_file(m1.path(held.rel)), held.sha256, "sha256 of held through c1")
            check(os.path.exists(ms.blob_path(held)), "held's blob is not in the cache")
            res = ms.omnihub(c2, "gc", "--max", "0")
            t.note("c2: omnihub gc --max 0 (held open by c1): exit %d\n%s%s"
                   % (res.returncode, res.stdout, res.stderr))
            check(os.path.exists(ms.blob_path(held)), "c2's omnihub gc removed a blob c1 has open")
            check("open in a mount" in res.stdout + res.stderr,
                  "omnihub gc does not say the blob was kept as open in a mount")
            # c2's daemon makes room for other (8 MiB, 16 in all over a 10 MiB limit).
            check_eq(sha256_file(m2.path(other.rel)), other.sha256, "sha256 of other through c2")
            check(os.path.exists(ms.blob_path(held)), "c2's cache_max evicted a blob c1 has open")
            check(m2.log_lines("over cache_max", "the rest is in use"),
                  "c2's daemon does not say it kept what is in use")
            check_eq(sha256_file(m1.path(held.rel)), held.sha256, "sha256 of held read again")
            data = f.read()
        check_eq(len(data), held.bytes, "bytes read through the open file")

        # c1 closed it (its daemon lets go of the blob at release): now it can go.
        def gone():
            r = ms.omnihub(c2, "gc", "--max", "0")
            return not os.path.exists(ms.blob_path(held)) and r
        res = wait_for(gone, 10, "c2's omnihub gc to remove held once c1 closed it")
        check_eq(res.returncode, 0, "exit status of the last omnihub gc (%s%s)"
                 % (res.stdout, res.stderr))
        check(not os.path.exists(os.path.join(ms.cache, held.rel)),
              "held's name in the readable tree outlived its blob")


# ----------------------------------------------------------------------------- no locks

def nolock_filesystem(t):
    """tests/fixtures/nolock_fs over t.dir/lower on t.dir/nolock; yields the mount point."""
    return nolock_fs(t, "nolock", timeout=WAIT)


@test
def a_cache_that_cannot_lock_is_refused(t):
    """A cache directory on a filesystem whose locks fail: omnihub-fuse refuses to start
    with one sentence naming the directory, the filesystem, the reason and the remedy, and
    so do omnihub du and omnihub pull; nothing is mounted, nothing fetched, nothing left."""
    tls_dir = os.path.join(t.dir, "tls")
    blobs = make_blobs(os.path.join(t.dir, "files"), [("m", 1 * MiB)])
    with nolock_filesystem(t) as fs, BlobServer(tls_dir, manifest_of(blobs),
                                                files_of(blobs)) as srv:
        cache = os.path.join(fs, "cache")
        opts = ["cache=" + cache] + srv.options()
        res = run_cli(t.binary, ["-f", "-o", ",".join(opts), t.mountpoint], t.env,
                      mountpoint=t.mountpoint)
        t.note("omnihub-fuse: exit %d, stderr:\n%s" % (res.returncode, res.stderr))
        check_eq(res.returncode, 1, "exit status of omnihub-fuse")
        found = REFUSAL.findall(res.stderr)
        check_eq(len(found), 1, "refusals in omnihub-fuse's stderr")
        check_eq(found[0][0], cache, "the directory the refusal names")
        check("fuse.nolock" in found[0][1], "the refusal does not name the filesystem: %s"
              % found[0][1])
        check(not is_mounted(t.mountpoint), "omnihub-fuse mounted anyway")
        for args in (["du"], ["pull", blobs[0].rel]):
            res = subprocess.run([omnihub_binary(), "-o", ",".join(opts)] + args,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 env=t.env, timeout=WAIT)
            t.note("omnihub %s: exit %d, stderr:\n%s" % (args[0], res.returncode, res.stderr))
            check_eq(res.returncode, 1, "exit status of omnihub %s" % args[0])
            check_eq(len(REFUSAL.findall(res.stderr)), 1, "refusals in omnihub %s's stderr"
                     % args[0])
        check_eq(srv.requests(), [], "requests to the hub")
        check_eq(os.listdir(cache), [], "what the refused starts left in the cache")


if not NFS_UNUSABLE:
    @test
    def an_nfs_mount_with_local_locks_is_refused(t):
        """The cache on an NFS mount with local_lock=all (locks that never reach the server):
        omnihub refuses it from the mount options, before any lock is tried."""
        export = os.path.join(t.dir, "export")
        os.makedirs(export)
        point = os.path.join(t.dir, "nfs")
        os.makedirs(point)
        with contextlib.closing(NfsServer(export, t.dir).start()) as nfs:
            argv = nfs.mount_prefix(point, "vers=4.2,proto=tcp,local_lock=all")
            res = subprocess.run(argv + [omnihub_binary(), "--cache", point, "du"],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 env=t.env, timeout=WAIT)
            t.note("omnihub du: exit %d, stderr:\n%s" % (res.returncode, res.stderr))
            check_eq(res.returncode, 1, "exit status of omnihub du")
            check(re.search(r"cannot use the cache directory %s: its filesystem, nfs4 .* is "
                            r"mounted with (nolock|local_lock=all)" % re.escape(point),
                            res.stderr), "the refusal does not name the mount option")


if __name__ == "__main__":
    run(shared_setup)
