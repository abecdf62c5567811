#!/usr/bin/env python3
"""Integration tests of omnihub-fuse started by the system's tools: mount(8) and fstab through mount.fuse3, the systemd units, syslog once daemonized, and the man pages rendering.
Not for what the mount serves (test_onnx_mount.py and the others); without root, /dev/fuse or unshare it fails (skips with OMNIHUB_ALLOW_SKIP=1).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_system_mount.py [PART]
#
# The whole file runs in a private mount namespace (unshare --mount), where nothing it
# mounts is seen by the rest of the machine. There it puts the omnihub-fuse under test in
# /usr/local/sbin, since mount(8) drops PATH and mount.fuse3 runs the program by name
# through /bin/sh (whose default PATH starts there), and a private /dev whose /dev/log is
# a socket of this process, so that it reads what the daemon sends to syslog.

import contextlib
import ctypes
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (EXIT_TIMEOUT, MOUNT_TIMEOUT, SRCDIR, Mount, check,  # noqa: E402
                           check_eq, fusermount, is_mounted, make_zoo, run, run_cli, sha256_file,
                           test)
from mount_helpers import daemon_on_shell_path, enter_private_mount_namespace  # noqa: E402
from mount_helpers import poll_until, system_mount as _mount  # noqa: E402

if __name__ == "__main__":
    enter_private_mount_namespace(__file__)

import make_hf_repos as hf_fx  # noqa: E402
from hf_server import HfServer  # noqa: E402
from zoo_server import ZooServer, make_tls  # noqa: E402

FSTYPE = "fuse.omnihub-fuse"
FSTAB_SOURCE = "models"  # not the default name, "omnihub", to see it named the mount
MODEL = "onnx/conv2d/opset-9/model.onnx"  # a "good" entry of make_zoo.py (Conv2d, opset 9)
# Words fstab lines and units carry for mount(8) and systemd, never for the mount itself.
FSTAB_WORDS = ["nofail", "_netdev", "x-systemd.automount", "x-systemd.mount-timeout=30",
               "noauto", "user", "defaults"]
SYSLOG_LINE = re.compile(r"^<(\d+)>.*?omnihub-fuse\[(\d+)\]: (.*)$", re.S)
LOG_DAEMON = 3  # syslog facility
_PR_SET_CHILD_SUBREAPER = 36
HF_TOKEN = "hf_SysMountToken0123456789abcdefXYZ"


# ----------------------------------------------------------------------------- the fixture

class Syslog:
    """A datagram socket at /dev/log, read by a thread: what syslog(3) sends, by pid."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.lock = threading.Lock()
        self.records = []  # (pid, facility, severity, message)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            m = SYSLOG_LINE.match(data.decode("utf-8", "replace"))
            if m:
                pri = int(m.group(1))
                with self.lock:
                    self.records.append((int(m.group(2)), pri >> 3, pri & 7, m.group(3)))

    def lines(self, pid):
        with self.lock:
            return [r for r in self.records if r[0] == pid]

    def close(self):
        self.sock.close()


class Shared:
    """What the tests share: zoo, syslog, expected_sha256, hf, hf_fixture_dir, hf_desc."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _private_dev(work):
    """A tmpfs on /dev holding binds of what was there, so that /dev/log can be ours. The
    old /dev is reached through a temporary bind outside the test directories, detached
    before it returns (a bind of /dev left under a directory that is later removed
    recursively would empty the real /dev)."""
    old = os.path.join(work, "old-dev")
    os.mkdir(old)
    _mount("--rbind", "/dev", old)
    try:
        _mount("-t", "tmpfs", "-o", "mode=755", "omnihub-test-dev", "/dev")
        for name in os.listdir(old):
            src, dst = os.path.join(old, name), os.path.join("/dev", name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif os.path.isdir(src):
                os.mkdir(dst)
                _mount("--rbind", src, dst)
            else:
                open(dst, "w").close()
                _mount("--bind", src, dst)
    finally:
        subprocess.run(["umount", "-R", "-l", old], capture_output=True)
    os.rmdir(old)


@contextlib.contextmanager
def system_hub(run_dir):
    """The private namespace's program and /dev/log, and the fake ONNX zoo."""
    # Daemons that mount(8) starts are orphans: make them ours, to reap them and see
    # their exit status.
    libc = ctypes.CDLL(None, use_errno=True)
    check(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "PR_SET_CHILD_SUBREAPER failed")
    daemon_on_shell_path(run_dir)
    work = tempfile.mkdtemp(prefix="omnihub-sysmount-")
    try:
        _private_dev(work)
    finally:
        os.rmdir(work)
    syslog = Syslog("/dev/log")
    fixture_dir = os.path.join(run_dir, "fixture")
    make_zoo(fixture_dir, "--large-mib", "1")
    served = os.path.join(fixture_dir, "www", "cdn", "validated", "vision", "classification",
                          "conv2d", "model", "conv2d-9.onnx")
    hf_fixture_dir = os.path.join(run_dir, "hf-fixture")
    hf_desc = hf_fx.make_repos(hf_fixture_dir)
    tls_dir = os.path.join(run_dir, "hf-tls")
    make_tls(tls_dir)
    try:
        with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as zoo, \
                HfServer(hf_fixture_dir, tls_dir, token=HF_TOKEN) as hf:
            yield Shared(zoo=zoo, syslog=syslog, expected_sha256=sha256_file(served), hf=hf,
                         hf_fixture_dir=hf_fixture_dir, hf_desc=hf_desc)
    finally:
        syslog.close()


def hub_options(t, cache=None):
    zoo = t.shared.zoo
    return ["cache=" + (cache or t.cache), "cacert=" + zoo.cacert,
            "onnx_index_url=" + zoo.index_url, "onnx_url=" + zoo.model_base_url]


# ----------------------------------------------------------------------------- daemons in the background

def _daemon_pids(mountpoint):
    """omnihub-fuse processes whose arguments name mountpoint."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (state != "Z" and os.path.basename(argv[0]) == b"omnihub-fuse"
                and mountpoint.encode() in argv):
            pids.append(int(entry))
    return pids


class SystemMount:
    """A mount made by a command that returns once the daemon is in the background
    (mount(8), a unit's ExecStart=). Has the harness's Mount interface (stop, kill, log,
    command, proc) so that the test's cleanup and diagnostics cover it."""

    def __init__(self, t, command, mountpoint=None):
        self.t = t
        self.command = list(command)
        self.mountpoint = mountpoint or t.mountpoint
        self.proc = None
        self.pid = None
        self.status = None  # the daemon's exit status, once reaped
        self.result = None  # the CompletedProcess of the command
        self.problem = None
        self._stopped = False
        t.mounts.append(self)

    def start(self):
        """Run the command; returns its CompletedProcess. Mounted or not is the caller's to
        check, right away: the command must not return before the mount is up."""
        check(not is_mounted(self.mountpoint), "%s is already mounted" % self.mountpoint)
        self.result = subprocess.run(self.command, stdin=subprocess.DEVNULL, capture_output=True,
                                     text=True, errors="replace", env=self.t.env,
                                     timeout=MOUNT_TIMEOUT)
        pids = _daemon_pids(self.mountpoint)
        check(len(pids) <= 1, "several daemons on %s: %r" % (self.mountpoint, pids))
        self.pid = pids[0] if pids else None
        return self.result

    def syslog(self):
        """(facility, severity, message) the daemon sent to syslog."""
        return [r[1:] for r in self.t.shared.syslog.lines(self.pid)] if self.pid else []

    def log(self):
        text = ""
        if self.result is not None:
            text += "command exit status %d; stderr:\n%s" % (self.result.returncode,
                                                             self.result.stderr)
        return text + "".join("syslog: %s\n" % r[2] for r in self.syslog())

    def wait_daemon(self, timeout=EXIT_TIMEOUT):
        """Reap the daemon (we are its subreaper); True once it has exited."""
        if self.pid is None or self.status is not None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # not ours after all: poll it
                if not os.path.exists("/proc/%d" % self.pid):
                    self.status = -1
                    return True
                pid, status = 0, 0
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def kill(self):
        if self.pid is not None and self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if is_mounted(self.mountpoint):
            fusermount(self.mountpoint, lazy=True)

    def stop(self, unmount=("umount",)):
        """Unmount with the given command, wait for the daemon to exit with status 0;
        returns None or what went wrong. Safe to call again."""
        if self._stopped:
            return self.problem
        self._stopped = True
        problems = []
        if is_mounted(self.mountpoint):
            res = subprocess.run(list(unmount) + [self.mountpoint], capture_output=True,
                                 text=True)
            if res.returncode != 0:
                problems.append("%s failed: %s" % (" ".join(unmount), res.stderr.strip()))
                fusermount(self.mountpoint, lazy=True)
        if not self.wait_daemon():
            problems.append("the daemon (pid %d) did not exit within %.0f s; killed"
                            % (self.pid, EXIT_TIMEOUT))
            self.kill()
            self.wait_daemon(2.0)
        elif self.status not in (None, 0):
            problems.append("the daemon exited with status %s" % self.status)
        if is_mounted(self.mountpoint):
            problems.append("%s still mounted" % self.mountpoint)
            fusermount(self.mountpoint, lazy=True)
        self.problem = "; ".join(problems) or None
        return self.problem


class SourcedMount(Mount):
    """The harness's foreground Mount, run as `omnihub-fuse -f -o OPTS SOURCE MOUNTPOINT`."""

    def __init__(self, t, source, options):
        log_path = os.path.join(t.dir, "daemon-%d.log" % (len(t.mounts) + 1))
        super().__init__(t.binary, t.mountpoint, options, t.env, log_path)
        self.source = source
        t.mounts.append(self)

    @property
    def command(self):
        return [self.binary, "-f", "-o", ",".join(self.options), self.source, self.mountpoint]


def mount_info(mountpoint):
    """(source, fstype, super options) of the mount at mountpoint, from mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == os.path.realpath(mountpoint):
                rest = fields[fields.index("-") + 1:]
                return rest[1], rest[0], rest[2]
    raise AssertionError("%s is not in mountinfo" % mountpoint)


def check_mounted_by(m):
    """The command returned 0, with the mount already up and served by the program under
    test in the background."""
    t = m.t
    t.note("%s\nexit status %d, stderr:\n%s" % (" ".join(map(shlex.quote, m.command)),
                                                 m.result.returncode, m.result.stderr))
    check_eq(m.result.returncode, 0, "exit status of %s" % m.command[0])
    check(is_mounted(m.mountpoint), "%s returned before the mount was up" % m.command[0])
    check(m.pid is not None, "no omnihub-fuse process serves %s" % m.mountpoint)
    check_eq(os.path.realpath("/proc/%d/exe" % m.pid), os.path.realpath(t.binary),
             "the program mount.fuse3 ran")


def check_reads_model(t, mountpoint):
    got = sha256_file(os.path.join(mountpoint, MODEL))
    check_eq(got, t.shared.expected_sha256, "sha256 of %s read through the mount" % MODEL)


def write_fstab(t, name, options):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        f.write("# written by %s\n" % t.name)
        f.write("%s %s %s %s 0 0\n" % (FSTAB_SOURCE, t.mountpoint, FSTYPE, ",".join(options)))
    return path


def mounts_at(mountpoint):
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == os.path.realpath(mountpoint))


# ----------------------------------------------------------------------------- tests

@test
def mount_type_fuse_omnihub(t):
    """mount -t fuse.omnihub-fuse none MNT -o ...: mount returns once mounted, by the
    program under test (run by mount.fuse3 as `omnihub-fuse none MNT -o ...`), read-only,
    named by its source; a model reads back byte for byte; umount stops the daemon."""
    m = SystemMount(t, ["mount", "-t", FSTYPE, "none", t.mountpoint,
                        "-o", ",".join(hub_options(t) + ["allow_other"])])
    m.start()
    check_mounted_by(m)
    source, fstype, options = mount_info(t.mountpoint)
    check_eq(source, "none", "the mount's source (df, findmnt)")
    check_eq(fstype, "fuse.omnihub", "the mount's type")
    check("ro" in options.split(",") and "allow_other" in options.split(","),
          "super options %r: not ro with allow_other" % options)
    check_reads_model(t, t.mountpoint)
    check_eq(m.stop(), None, "unmounting with umount")
    check_eq(m.status, 0, "the daemon's exit status")


@test
def daemon_logs_to_syslog(t):
    """Once in the background, the daemon's lines go to syslog (facility daemon, tagged
    omnihub-fuse[PID]), one per event, the download's with its path; none reach stderr
    after it detached."""
    m = SystemMount(t, ["mount", "-t", FSTYPE, "omnihub", t.mountpoint,
                        "-o", ",".join(hub_options(t))])
    m.start()
    check_mounted_by(m)
    check_reads_model(t, t.mountpoint)
    done = poll_until(lambda: [r for r in m.syslog() if MODEL in r[2] and "verified" in r[2]],
                      5)
    t.note("syslog:\n" + "\n".join("%d.%d %s" % r for r in m.syslog()))
    check(done, "no syslog line with %s and 'verified'" % MODEL)
    check({r[0] for r in m.syslog()} == {LOG_DAEMON}, "syslog facility not daemon")
    check(all("\n" not in r[2] for r in m.syslog()), "a syslog message spans lines")
    check(MODEL not in m.result.stderr, "the download was logged on the mount command's stderr")
    check_eq(m.stop(), None, "unmounting with umount")


@test
def token_stays_out_of_syslog(t):
    """Mounted by mount(8) with -o hf_token_file=, the daemon reads a private Hugging Face
    repo (so it used the token) and its syslog lines never carry the token."""
    srv = t.shared.hf
    token_file = os.path.join(t.dir, "hf-token")
    with open(token_file, "w") as f:
        f.write(HF_TOKEN + "\n")
    options = ["cache=" + t.cache, "cacert=" + srv.cacert,
               "onnx_index_url=" + srv.onnx_manifest_url,
               "onnx_url=" + srv.endpoint + "/__onnx/files/",
               "hf_endpoint=" + srv.endpoint, "hf_token_file=" + token_file]
    m = SystemMount(t, ["mount", "-t", FSTYPE, "omnihub", t.mountpoint, "-o", ",".join(options)])
    m.start()
    check_mounted_by(m)
    repo = hf_fx.find_repo(t.shared.hf_desc, hf_fx.PRIVATE_REPO, "model")
    files = hf_fx.files_at(repo, "main")
    check(files, "no files in the fixture's private repo")
    for rel, f in sorted(files.items()):
        path = os.path.join(t.mountpoint, "huggingface", *hf_fx.PRIVATE_REPO.split("/"), rel)
        check_eq(sha256_file(path), f["sha256"], "sha256 of private " + rel)
    check_eq(m.stop(), None, "unmounting with umount")
    records = m.syslog()
    t.note("syslog:\n" + "\n".join(r[2] for r in records))
    check(any(hf_fx.PRIVATE_REPO in r[2] for r in records),
          "no syslog line names %s" % hf_fx.PRIVATE_REPO)
    check(not [r for r in records if HF_TOKEN in r[2]], "the token is in syslog")
    check(HF_TOKEN not in m.result.stderr, "the token is on the mount command's stderr")


@test
def fstab_line(t):
    """An fstab line with the words fstab lines carry (nofail, _netdev, x-systemd.*, user,
    defaults) mounts with mount -T FILE MNT; mount -a sees it is mounted (its source is the
    fsname); noauto keeps it out of mount -a."""
    fstab = write_fstab(t, "fstab", hub_options(t) + FSTAB_WORDS)
    noauto = [w for w in FSTAB_WORDS if w != "noauto"]
    auto_fstab = write_fstab(t, "fstab-auto", hub_options(t) + noauto)

    res = subprocess.run(["mount", "-a", "--fstab", fstab], capture_output=True, text=True)
    check_eq((res.returncode, is_mounted(t.mountpoint)), (0, False), "mount -a of a noauto line")

    m = SystemMount(t, ["mount", "--fstab", fstab, t.mountpoint])
    m.start()
    check_mounted_by(m)
    for attempt in range(2):
        res = subprocess.run(["mount", "-a", "--fstab", auto_fstab, "-v"], capture_output=True,
                             text=True)
        t.note("mount -a -v: %s%s" % (res.stdout, res.stderr))
        check_eq(res.returncode, 0, "mount -a status")
        check_eq(mounts_at(t.mountpoint), 1, "mounts at %s after mount -a" % t.mountpoint)
    source, fstype, options = mount_info(t.mountpoint)
    check_eq(source, FSTAB_SOURCE, "the mount's source")
    check_reads_model(t, t.mountpoint)
    check_eq(m.stop(), None, "unmounting with umount")


@test
def a_failed_mount_fails(t):
    """mount(8) reports a daemon that cannot start with its reason and a non-zero status,
    and leaves neither a mount nor a process behind."""
    not_a_dir = os.path.join(t.dir, "a-file")
    open(not_a_dir, "w").close()
    m = SystemMount(t, ["mount", "-t", FSTYPE, "omnihub", t.mountpoint,
                        "-o", ",".join(hub_options(t, cache=not_a_dir))])
    res = m.start()
    t.note("stderr:\n" + res.stderr)
    check(res.returncode != 0, "mount returned 0")
    check("cache directory" in res.stderr, "stderr does not say what is wrong")
    check(not is_mounted(t.mountpoint), "mounted")
    poll_until(lambda: not _daemon_pids(t.mountpoint), EXIT_TIMEOUT)
    check_eq(_daemon_pids(t.mountpoint), [], "daemons left running")


@test
def run_by_hand_with_fstab_words(t):
    """omnihub-fuse itself, in the foreground, takes SOURCE MOUNTPOINT and the fstab-only
    words (a copied fstab line, an ExecStart=); logs the download's path on stderr; an
    option nobody knows, or a third argument, fails with a sentence naming it."""
    m = SourcedMount(t, "my-hub", hub_options(t) + FSTAB_WORDS)
    with m:
        check_eq(mount_info(t.mountpoint)[0], "my-hub", "the mount's source")
        check_reads_model(t, t.mountpoint)
        lines = m.log_lines(MODEL, "verified")
        t.note("log:\n" + m.log())
        check(lines, "no stderr line with %s and 'verified'" % MODEL)
    for args, words in ((["-f", "-o", "nonsense_option", t.mountpoint], "nonsense_option"),
                        (["-f", "a", "b", t.mountpoint], "too many arguments")):
        res = run_cli(t.binary, args, t.env, mountpoint=t.mountpoint)
        t.note("%s: %d\n%s" % (args, res.returncode, res.stderr))
        check(res.returncode != 0, "%r exited 0" % args)
        check(words in res.stderr, "%r: stderr does not name %r" % (args, words))


def unit_lines(path, key):
    with open(path) as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]


@test
def systemd_units(t):
    """systemd-analyze verify accepts the units in scripts/ (the program's path as
    installed here, the man page from the tree); the service's ExecStart= returns once
    mounted (what Type=forking needs), and its ExecStop= unmounts and ends the daemon."""
    units = sorted(glob.glob(os.path.join(SRCDIR, "scripts", "*.service")) +
                   glob.glob(os.path.join(SRCDIR, "scripts", "*.mount")))
    check(len(units) >= 2, "units in scripts/: %r" % units)
    analyze = shutil.which("systemd-analyze")
    check(analyze is not None, "systemd-analyze is not installed (scripts/install-deps)")
    man1 = os.path.join(t.dir, "man", "man1")
    os.makedirs(man1)
    shutil.copy(os.path.join(SRCDIR, "man", "omnihub-fuse.1"), man1)
    unit_dir = os.path.join(t.dir, "units")
    os.mkdir(unit_dir)
    for unit in units:
        copy = os.path.join(unit_dir, os.path.basename(unit))
        with open(unit) as f:
            text = f.read()
        with open(copy, "w") as f:
            f.write(text.replace("/usr/bin/omnihub-fuse", t.binary))
        env = dict(os.environ, MANPATH=os.path.join(t.dir, "man"), SYSTEMD_LOG_COLOR="0")
        res = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, env=env,
                             cwd=unit_dir)
        t.note("%s: %d\n%s%s" % (copy, res.returncode, res.stdout, res.stderr))
        check_eq((res.returncode, res.stderr.strip()), (0, ""),
                 "systemd-analyze verify %s" % os.path.basename(unit))

    service = os.path.join(SRCDIR, "scripts", "omnihub-fuse.service")
    check_eq(unit_lines(service, "Type"), ["forking"], "the service's Type=")

    def command(key):
        [line] = unit_lines(service, key)
        argv = [a.replace("/mnt/hub", t.mountpoint) for a in shlex.split(line.lstrip("-"))]
        return argv

    start = command("ExecStart")
    check_eq(start[0], "/usr/bin/omnihub-fuse", "ExecStart='s program")
    start = [t.binary] + start[1:-1] + ["-o", ",".join(hub_options(t))] + start[-1:]
    # Its cache, /var/cache/omnihub, is the machine's: this one is the test's.
    start = [a.replace("cache=/var/cache/omnihub", "cache=" + t.cache) for a in start]
    m = SystemMount(t, start)
    m.start()
    check_mounted_by(m)
    check_reads_model(t, t.mountpoint)
    check_eq(m.stop(unmount=command("ExecStop")[:-1]), None, "ExecStop=")
    check_eq(m.status, 0, "the daemon's exit status")


def man_warnings(path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    return subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL)


@test
def man_pages_render_without_warnings(t):
    """Every man/*.1 and man/*.5 renders with man --warnings and nothing on stderr (checked
    on a broken page first, so that the check can fail)."""
    check(shutil.which("man") is not None, "man is not installed (scripts/install-deps)")
    broken = os.path.join(t.dir, "broken.1")
    with open(broken, "w") as f:
        f.write(".TH BROKEN 1\n.SH NAME\nbroken \\- a test\n.NOSUCHMACRO\n")
    check(man_warnings(broken).stderr.strip(), "man --warnings said nothing of a broken page")
    pages = sorted(glob.glob(os.path.join(SRCDIR, "man", "*.[15]")))
    check(len(pages) >= 2, "man pages found: %r" % pages)
    bad = []
    for page in pages:
        res = man_warnings(page)
        if res.returncode != 0 or res.stderr.strip() or len(res.stdout) < 200:
            bad.append("%s (status %d):\n%s" % (os.path.basename(page), res.returncode,
                                                res.stderr))
    check(not bad, "pages with warnings:\n" + "\n".join(bad))


if __name__ == "__main__":
    run(system_hub)
