#!/usr/bin/env python3
"""Integration tests of omnihub-fuse as a daemon a person lives with: no second mount stacked
on a mounted point, a mount from a descriptor (mount.fuse3 -o drop_privileges), a setting a
hub refuses stopping the start with its FILE:LINE, and SIGHUP reloading without unmounting.
Not for what the mount serves (test_onnx_mount.py and the others), nor mount(8) and the
systemd units (test_system_mount.py).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse OMNIHUB=BUILDDIR/omnihub \
#         /usr/bin/python3 tests/integration/test_daemon.py [PART]
#
# The whole file runs in a private mount namespace (unshare --mount), as test_system_mount.py
# does: there the omnihub-fuse under test is bound on /usr/local/sbin, where mount.fuse3's
# /bin/sh finds it by name.

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import make_zoo  # noqa: E402
from mount_helpers import (EXIT_TIMEOUT, MOUNT_TIMEOUT, SRCDIR, check, check_eq,  # noqa: E402
                           fusermount, is_mounted, run, run_cli, sha256_file, test, wait_for)
from mount_helpers import daemon_on_shell_path, enter_private_mount_namespace, omnihub_binary  # noqa: E402

if __name__ == "__main__":
    enter_private_mount_namespace(__file__)

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))
from zoo_server import ZooServer  # noqa: E402

MODEL = "onnx/conv2d/opset-9/model.onnx"  # a "good" entry of make_zoo.py
BAD_REPO = "acme/tiny-onnx,bad..repo/x"  # the second id is refused by the Hugging Face hub


class Shared:
    def __init__(self, zoo, expected_sha256):
        self.zoo = zoo
        self.expected_sha256 = expected_sha256


@contextlib.contextmanager
def daemon_hub(run_dir):
    """The private namespace's program on dash's PATH, and the fake ONNX zoo."""
    daemon_on_shell_path(run_dir)
    fixture_dir = os.path.join(run_dir, "fixture")
    make_zoo(fixture_dir, "--large-mib", "1")
    served = os.path.join(fixture_dir, "www", "cdn", "validated", "vision", "classification",
                          "conv2d", "model", "conv2d-9.onnx")
    with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as zoo:
        yield Shared(zoo, sha256_file(served))


def hub_options(t):
    zoo = t.shared.zoo
    return ["cache=" + t.cache, "cacert=" + zoo.cacert, "onnx_index_url=" + zoo.index_url,
            "onnx_url=" + zoo.model_base_url]


def mounts_at(mountpoint):
    real = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == real)


def check_reads_model(t, mountpoint):
    check_eq(sha256_file(os.path.join(mountpoint, MODEL)), t.shared.expected_sha256,
             "sha256 of %s read through the mount" % MODEL)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# ----------------------------------------------------------------------------- tests

@test
def second_mount_refused(t):
    """A second omnihub-fuse on a mounted point exits 1 with one sentence saying so and how
    to unmount; the first mount stays, alone, and still serves."""
    with t.mount(hub_options(t)) as m:
        check_eq(mounts_at(t.mountpoint), 1, "mounts on the mount point")
        res = run_cli(t.binary, ["-f", "-o", ",".join(hub_options(t)), t.mountpoint], t.env)
        t.note("second start: status %d, stderr:\n%s" % (res.returncode, res.stderr))
        check_eq(res.returncode, 1, "exit status of the second start")
        check("already an omnihub-fuse mount" in res.stderr and "fusermount3 -u" in res.stderr,
              "the sentence: %r" % res.stderr)
        check_eq(len(res.stderr.strip().splitlines()), 1, "lines on stderr")
        check_eq(mounts_at(t.mountpoint), 1, "mounts on the mount point after the second start")
        # Through another path to the same directory too (a symlink).
        link = os.path.join(t.dir, "link")
        os.symlink(t.mountpoint, link)
        res = run_cli(t.binary, ["-f", "-o", ",".join(hub_options(t)), link], t.env)
        check_eq(res.returncode, 1, "exit status of a start through a symlink")
        check_eq(mounts_at(t.mountpoint), 1, "mounts after the start through a symlink")
        check_reads_model(t, m.mountpoint)


@test
def dead_mount_named(t):
    """A mount point whose daemon was killed: a new start exits 1 saying how to unmount it,
    stacking nothing; after fusermount3 -u it mounts."""
    m = t.mount(hub_options(t)).start()
    m.proc.kill()
    m.proc.wait()
    res = run_cli(t.binary, ["-f", "-o", ",".join(hub_options(t)), t.mountpoint], t.env)
    t.note("start on a dead mount: status %d, stderr:\n%s" % (res.returncode, res.stderr))
    check_eq(res.returncode, 1, "exit status of a start on a dead mount")
    # The kernel may still answer stat from its cache (then: "already an omnihub-fuse
    # mount"), or not (then: "whose daemon is gone"); both say how to unmount.
    check(("daemon is gone" in res.stderr or "already an omnihub-fuse mount" in res.stderr)
          and "fusermount3 -u" in res.stderr, "the sentence: %r" % res.stderr)
    check_eq(mounts_at(t.mountpoint), 1, "mounts on the mount point")
    check_eq(fusermount(t.mountpoint).returncode, 0, "fusermount3 -u of the dead mount")
    m._stopped = True  # killed on purpose: its status is no failure
    with t.mount(hub_options(t)) as m2:
        check_reads_model(t, m2.mountpoint)


@test
def mount_fuse3_drop_privileges(t):
    """mount.fuse3 omnihub-fuse#models MNT -o drop_privileges,...: mount.fuse3 mounts, then
    runs the program under test unprivileged with the mount point /dev/fd/N; the mount is
    up, a model reads back byte for byte, and umount ends the daemon."""
    cmd = ["mount.fuse3", "omnihub-fuse#models", t.mountpoint,
           "-o", ",".join(["drop_privileges"] + hub_options(t))]
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env=t.env, timeout=MOUNT_TIMEOUT + 10)
    t.note("%s\nstatus %d, stderr:\n%s" % (" ".join(cmd), res.returncode, res.stderr))
    try:
        check_eq(res.returncode, 0, "exit status of mount.fuse3")
        check(is_mounted(t.mountpoint), "not mounted after mount.fuse3 returned")
        pids = daemon_pids(t)
        check_eq(len(pids), 1, "omnihub-fuse processes")
        with open("/proc/%d/cmdline" % pids[0], "rb") as f:
            argv = f.read().split(b"\0")
        check(any(a.startswith(b"/dev/fd/") for a in argv),
              "the daemon's mount point is no /dev/fd/N: %r" % argv)
        with open("/proc/%d/status" % pids[0]) as f:
            caps = [line.split()[1] for line in f if line.startswith("CapEff:")]
        check_eq(caps, ["0000000000000000"], "the daemon's effective capabilities")
        check_reads_model(t, t.mountpoint)
        res = subprocess.run(["umount", t.mountpoint], capture_output=True, text=True)
        check_eq(res.returncode, 0, "umount's exit status (%s)" % res.stderr.strip())
        wait_for(lambda: not daemon_pids(t), EXIT_TIMEOUT, "the daemon to exit after umount")
    finally:
        if is_mounted(t.mountpoint):
            fusermount(t.mountpoint, lazy=True)
        for pid in daemon_pids(t):
            os.kill(pid, signal.SIGKILL)


@test
def refused_hub_value_stops_the_start(t):
    """hf_repos with an id the Hugging Face hub refuses (a space after a comma is fine): the
    mount stops with exit 2 and one sentence naming FILE:LINE (config file) or the -o option,
    nothing mounted; an omnihub command that uses the hub exits 2 with the same sentence."""
    conf = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
    def start_refused(options, want, what):
        """A start with options exits 2, a line of its stderr starting with want, and
        nothing mounted."""
        res = run_cli(t.binary, ["-f", "-o", ",".join(hub_options(t) + options), t.mountpoint],
                      t.env, mountpoint=t.mountpoint)
        t.note("%s: status %d, stderr:\n%s" % (what, res.returncode, res.stderr))
        check_eq(res.returncode, 2, "exit status of the mount with " + what)
        check(any(line.startswith(want) for line in res.stderr.splitlines()),
              "no line starting %r in stderr" % want)
        check_eq(mounts_at(t.mountpoint), 0, "mounts on the mount point after " + what)

    write(conf, "# a user's file\n\nhf_repos = acme/tiny-onnx, bad..repo/x\n")
    start_refused([], "omnihub-fuse: %s:3: hf_repos: 'bad..repo/x' is not a repo id" % conf,
                  "a refused value in a file")
    os.unlink(conf)
    start_refused(["hf_repos=" + BAD_REPO], "omnihub-fuse: -o hf_repos: 'bad..repo/x' is not a "
                  "repo id", "a refused -o value")
    # A catalog option the catalogs' hubs refuse as they load, from a file's line.
    write(conf, "# converters\nconvert = nonsense\n")
    start_refused([], "omnihub-fuse: %s:2: convert: " % conf, "a refused convert")
    os.unlink(conf)

    cli = omnihub_binary()
    # A list on two lines: the line of the refused item is named.
    write(conf, "hf_repos = acme/tiny-onnx\n# not bad..repo/x here\nhf_repos = gpt2, bad..repo/x\n")
    res = run_cli(cli, ["-o", "cache=" + t.cache + ",offline", "ls", "huggingface"], t.env)
    t.note("omnihub ls: status %d, stderr:\n%s" % (res.returncode, res.stderr))
    check_eq(res.returncode, 2, "exit status of omnihub ls huggingface")
    want = "omnihub: %s:3: hf_repos: 'bad..repo/x' is not a repo id" % conf
    check(any(line.startswith(want) for line in res.stderr.splitlines()),
          "no line starting %r in stderr" % want)
    res = run_cli(cli, ["-o", "cache=%s,offline,hf_repos=%s" % (t.cache, BAD_REPO), "ls",
                        "huggingface"], t.env)
    check_eq(res.returncode, 2, "exit status of omnihub -o hf_repos=... ls huggingface")
    # One line, where the value was set; not the hub's sentence too, nor an offline hint.
    check_eq(res.stderr.splitlines(), ["omnihub: -o hf_repos: 'bad..repo/x' is not a repo id "
                                       "(org/name[@rev])"], "stderr of the refused -o value")
    # A hub that cannot open for another cause (its server down) is no bad setting: 1.
    os.unlink(conf)
    res = run_cli(cli, ["-o", "cache=%s,retry_time=1,onnx_index_url=https://127.0.0.1:1/x"
                        % os.path.join(t.dir, "empty-cache"), "ls", "onnx"], t.env)
    t.note("omnihub ls onnx, its server down: status %d, stderr:\n%s"
           % (res.returncode, res.stderr))
    check_eq(res.returncode, 1, "exit status of omnihub ls onnx with its server down")


CATALOG = {
    "omnihub_catalog": 1,
    "hub": "mymodels",
    "base_url": "https://127.0.0.1:1/",
    "models": {"tiny": {"entries": {"v1": {
        "url": "tiny.bin", "file": "tiny.bin", "size": 3, "format": "bin",
        "digests": {"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}}},
}


def reload_lines(m):
    return m.log_lines("reload (SIGHUP)")


@test
def sighup_reloads_without_unmounting(t):
    """kill -HUP: the mount stays and serves; the settings and catalogs are read again: a hub
    a new catalog names is served at once (even after a lookup of its name failed, which the
    kernel keeps as a negative entry), one log line says so and names the changed setting; a bad config file on reload keeps the settings in use, the
    log saying FILE:LINE. (Before: SIGHUP unmounted; then a new catalog's hub waited for the
    next mount.)"""
    empty = os.path.join(t.dir, "no-system-catalogs")
    os.mkdir(empty)
    opts = hub_options(t) + ["system_catalogs=" + empty]
    conf = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
    with t.mount(opts) as m:
        check_reads_model(t, m.mountpoint)
        hub_dir = os.path.join(m.mountpoint, "mymodels")
        check(not os.path.exists(hub_dir), "mymodels before its catalog")
        write(os.path.join(t.env["HOME"], ".config", "omnihub", "catalogs", "mine.json"),
              json.dumps(CATALOG))
        write(conf, "index_ttl = 60\n")
        m.proc.send_signal(signal.SIGHUP)
        line = wait_for(lambda: reload_lines(m), EXIT_TIMEOUT, "a reload log line")[0]
        t.note("reload line: " + line)
        check("catalog hubs added, served now: mymodels" in line
              and "settings applied now: index_ttl" in line,
              "the reload line: %r" % line)
        check(m.proc.poll() is None and is_mounted(m.mountpoint),
              "the daemon or its mount went after SIGHUP")
        check("mymodels" in os.listdir(m.mountpoint), "the root after the reload: %r"
              % os.listdir(m.mountpoint))
        check(os.path.isdir(hub_dir), "mymodels is not a folder after the reload")
        names = sorted(os.path.relpath(os.path.join(d, f), hub_dir)
                       for d, _, files in os.walk(hub_dir) for f in files)
        t.note("mymodels holds: %r" % names)
        sizes = [os.stat(os.path.join(hub_dir, n)).st_size for n in names
                 if n.endswith("tiny.bin")]
        check_eq(sizes, [3], "size of tiny.bin, from the catalog")
        check_reads_model(t, m.mountpoint)

        write(conf, "index_ttl = 60\nretries = lots\n")
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(reload_lines(m)) >= 2, EXIT_TIMEOUT, "a second reload line")
        line = reload_lines(m)[1]
        t.note("bad reload line: " + line)
        check("keeping the settings in use" in line and "%s:2: retries" % conf in line,
              "the line of a bad reload: %r" % line)
        # Several at once: none is lost or kills the daemon.
        for _ in range(5):
            m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(reload_lines(m)) >= 3, EXIT_TIMEOUT, "a third reload line")
        check(m.proc.poll() is None and is_mounted(m.mountpoint),
              "the daemon or its mount went after five SIGHUPs")
        check_reads_model(t, m.mountpoint)


def read_error(path):
    """The errno of reading path whole, or None when it reads."""
    try:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    except OSError as e:
        return e.errno
    return None


@test
def sighup_applies_settings_live(t):
    """SIGHUP applies a changed setting to the running mount, and names in its log line the
    settings that wait for the next mount: offline = yes makes a read of a file not in the
    cache fail EIO with the daemon's "offline" line; cache_max = 100 (bytes) then refuses the same
    file with ENOSPC and "larger than cache_max"; with both removed it reads right, and all
    without unmounting. (Before: every changed setting waited for the next mount.)"""
    conf = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
    model = os.path.join(t.mountpoint, MODEL)
    with t.mount(hub_options(t)) as m:
        check(os.path.isdir(os.path.dirname(model)), "the model's folder before the reload")

        def reload(text, count):
            write(conf, text)
            m.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: len(reload_lines(m)) >= count, EXIT_TIMEOUT,
                     "reload log line %d" % count)
            line = reload_lines(m)[count - 1]
            t.note("reload line %d: %s" % (count, line))
            return line

        line = reload("offline = yes\npiece_size = 1M\n", 1)
        check("settings applied now: offline" in line, "the reload line: %r" % line)
        check("settings that apply at the next mount: piece_size" in line,
              "the reload line: %r" % line)
        check_eq(read_error(model), errno.EIO, "errno of an uncached read once offline")
        check(any("offline, and not in the cache" in x for x in m.log_lines(MODEL.split("/")[1])),
              "no 'offline, and not in the cache' line in the log")

        line = reload("cache_max = 100\n", 2)
        check("settings applied now: offline, cache_max" in line, "the reload line: %r" % line)
        check_eq(read_error(model), errno.ENOSPC, "errno of a read larger than cache_max")
        check(any("larger than cache_max" in x for x in m.log_lines("cache_max")),
              "no 'larger than cache_max' line in the log")

        line = reload("", 3)
        check("settings applied now: cache_max" in line, "the reload line: %r" % line)
        check_reads_model(t, m.mountpoint)
        check(m.proc.poll() is None and is_mounted(m.mountpoint),
              "the daemon or its mount went after the reloads")


@test
def sighup_online_opens_a_hub_left_out_offline(t):
    """A hub left out at the mount because it was offline with no cached index (never
    retried while offline) is opened once a reload turns offline off, and serves without
    unmounting."""
    conf = os.path.join(t.env["HOME"], ".config", "omnihub", "config")
    write(conf, "offline = yes\n")
    with t.mount(hub_options(t)) as m:
        check(not os.path.exists(os.path.join(m.mountpoint, "onnx")),
              "the onnx hub is served offline with no cached index")
        write(conf, "")
        m.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: reload_lines(m), EXIT_TIMEOUT, "a reload log line")
        t.note("reload line: " + reload_lines(m)[0])
        check("settings applied now: offline" in reload_lines(m)[0],
              "the reload line: %r" % reload_lines(m)[0])
        wait_for(lambda: os.path.isdir(os.path.join(m.mountpoint, "onnx")), EXIT_TIMEOUT,
                 "the onnx hub served after the reload")
        check_reads_model(t, m.mountpoint)


@test
def container_entrypoint(t):
    """scripts/container/entrypoint.sh, the image's first process, run here without a
    container: it mounts by mount.fuse3 -o drop_privileges (the daemon without capabilities),
    stays while the mount is up, a model reads right, and SIGTERM unmounts and ends it with
    status 0, the daemon gone too."""
    script = os.path.join(SRCDIR, "scripts", "container", "entrypoint.sh")
    env = dict(t.env, OMNIHUB_MOUNTPOINT=t.mountpoint)
    log_path = os.path.join(t.dir, "entrypoint.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["/bin/sh", script, ",".join(hub_options(t))],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    try:
        wait_for(lambda: is_mounted(t.mountpoint) or proc.poll() is not None, MOUNT_TIMEOUT,
                 "the mount")
        check(proc.poll() is None, "entrypoint.sh exited with %s" % proc.returncode)
        pids = daemon_pids(t)
        check_eq(len(pids), 1, "omnihub-fuse processes")
        with open("/proc/%d/status" % pids[0]) as f:
            caps = [line.split()[1] for line in f if line.startswith("CapEff:")]
        check_eq(caps, ["0000000000000000"], "the daemon's effective capabilities")
        check_reads_model(t, t.mountpoint)
        proc.send_signal(signal.SIGTERM)
        check_eq(proc.wait(EXIT_TIMEOUT), 0, "entrypoint.sh's exit status after SIGTERM")
        check(not is_mounted(t.mountpoint), "still mounted after SIGTERM")
        wait_for(lambda: not daemon_pids(t), EXIT_TIMEOUT, "the daemon to exit")
    finally:
        with open(log_path, errors="replace") as f:
            t.note("entrypoint.sh's output:\n" + f.read())
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if is_mounted(t.mountpoint):
            fusermount(t.mountpoint, lazy=True)
        for pid in daemon_pids(t):
            os.kill(pid, signal.SIGKILL)


def daemon_pids(t):
    """Live omnihub-fuse processes whose arguments name this test's cache (other processes
    of the machine may run one too)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % entry)
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read()
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and os.path.basename(exe) == "omnihub-fuse" \
                and ("cache=" + t.cache).encode() in argv:
            pids.append(int(entry))
    return pids


if __name__ == "__main__":
    run(daemon_hub)
