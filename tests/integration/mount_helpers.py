"""Harness of the omnihub-fuse integration tests: a small TAP runner, a Mount context manager
(one daemon start/stop), wait_for, mount(), omnihub runs, a namespace team (NetTeam), helpers.
Not for the tests themselves (test_onnx_mount.py) nor for serving the fake hub (tests/fixtures/).
"""

# A test is a function registered with @test; it gets a TestContext with its own directory,
# cache, mount point and daemon environment. run() prints TAP ("ok N - name", "# ..."
# diagnostics, the plan last) and exits 0 only if every test passed; `script.py PART` runs
# only the tests whose name contains PART. OMNIHUB_TEST_KEEP=1 keeps the temp files. Without
# root, /dev/fuse or fusermount3 it bails out (fails), or skips when OMNIHUB_ALLOW_SKIP=1.

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRCDIR = os.environ.get("OMNIHUB_SRCDIR") or REPO_ROOT
FIXTURES_DIR = os.path.join(SRCDIR, "tests", "fixtures")
if FIXTURES_DIR not in sys.path:  # the fixture servers and makers, for every test file
    sys.path.insert(0, FIXTURES_DIR)

from waiting import poll_until, wait_for  # noqa: E402,F401 (the one wait, for every test file)

MOUNT_TIMEOUT = 20.0  # seconds for the mount point to appear
EXIT_TIMEOUT = 20.0  # seconds for the daemon to exit after an unmount or a signal
COMMAND_TIMEOUT = 60.0  # seconds an omnihub command gets to end (run_omnihub)
TEST_TIMEOUT = 150.0  # seconds before a hung test's daemons are killed (ASan builds are slow)
LOG_TAIL_LINES = 40

# Variables that would make the daemon (or libcurl) look outside the test's own directories,
# or at servers other than the local fake hub.
_SCRUBBED_PREFIXES = ("OMNIHUB_", "MODELHUB_", "ONNX_", "HF_", "HUGGINGFACE_", "XDG_", "CURL_")
_SCRUBBED_NAMES = {"SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy", "all_proxy",
                   "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}

_PR_SET_PDEATHSIG = 1
_SANITIZER_START = re.compile(r"==\d+==ERROR: |runtime error: |WARNING: ThreadSanitizer")


# ----------------------------------------------------------------------------- small helpers

def check(condition, message):
    """An assert that survives python -O."""
    if not condition:
        raise AssertionError(message)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, expected %r" % (what, got, want))


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)

def read_blobs_at_once(m, blobs):
    """Read every blob (name, rel) through the Mount m, each in a thread of its own, all
    started together; returns ({name: sha256, or "error ENAME"}, the threads: join_all)."""
    done = {}

    def reader(b):
        try:
            done[b.name] = sha256_file(m.path(b.rel))
        except OSError as e:
            done[b.name] = "error %s" % errno_name(e.errno)
    threads = [threading.Thread(target=reader, args=(b,), daemon=True) for b in blobs]
    for th in threads:
        th.start()
    return done, threads


def join_all(threads, timeout):
    """Join every thread, for timeout s in all (a liveness bound: the caller checks what the
    threads did)."""
    deadline = time.monotonic() + timeout
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))


def read_all_at_once(paths, timeout=120.0):
    """sha256 of each path, read by one thread each, all started together; {path: hex or
    the error's text}."""
    results = {}
    barrier = threading.Barrier(len(paths))

    def reader(path):
        barrier.wait()
        try:
            results[path] = sha256_file(path)
        except OSError as e:
            results[path] = "error: %s" % e

    threads = [threading.Thread(target=reader, args=(p,)) for p in paths]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    return results

def settle(read, quiet=0.15, limit=3.0):
    """read()'s value once two calls quiet s apart agree (a log that stopped growing), or
    its last one after limit s."""
    deadline = time.monotonic() + limit
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            break
        last = now
    return last


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def errno_of(func, *args, **kwargs):
    """Call func expecting an OSError; return its errno. Fails if the call succeeds."""
    try:
        func(*args, **kwargs)
    except OSError as e:
        return e.errno
    name = getattr(func, "__name__", repr(func))
    raise AssertionError("%s%r succeeded, expected an error" % (name, args))


def read_errno(path):
    """Open and read path to the end expecting an OSError (at open or read); return its errno."""
    def read_all():
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    return errno_of(read_all)


def errno_name(number):
    return errno.errorcode.get(number, str(number))


def all_files(root):
    """Relative paths of every non-directory under root, hidden ones included."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def all_paths(root):
    """Relative paths of every file and directory under root."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def partials(root):
    """Leftover download temporaries (".<name>.XXXXXX.partial") anywhere under root."""
    return sorted(p for p in all_files(root) if p.endswith(".partial"))


def settle_logs(zoo, quiet=0.15, limit=3.0):
    """Wait until the fake hub's access logs stop growing: nginx writes a request's line
    when the response is finished, a moment after the client has seen the last byte."""
    def sizes():
        out = []
        for host in ("raw", "hub", "cdn", "fault"):
            try:
                out.append(os.path.getsize(os.path.join(zoo.log_dir, host + ".log")))
            except OSError:
                out.append(-1)
        return out
    settle(sizes, quiet, limit)


def count_requests(zoo, host, path_substring=None, method="GET"):
    """Number of requests in a fake-hub access log (method None: any method)."""
    settle_logs(zoo)
    records = zoo.requests(host, path_substring)
    return sum(1 for r in records if method is None or r["method"] == method)


# ----------------------------------------------------------------------------- mounts

def _unescape_mountinfo(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points():
    """Mount points of this mount namespace, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        return [_unescape_mountinfo(line.split(" ")[4]) for line in f if line.count(" ") > 4]


def is_mounted(path):
    return os.path.realpath(path) in mount_points()


def fusermount(path, lazy=False):
    return subprocess.run(["fusermount3", "-uz" if lazy else "-u", path],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)


def unmount(point, timeout=2.0):
    """fusermount3 -u point, again every 0.1 s while it fails (EBUSY: a file still open, say
    by the frame of a failing test) for up to timeout s, then detached (-uz). Returns None,
    or the last error of -u."""
    deadline = time.monotonic() + timeout
    while is_mounted(point):
        res = fusermount(point)
        if res.returncode == 0 or not is_mounted(point):
            break
        if time.monotonic() > deadline:
            fusermount(point, lazy=True)
            return res.stderr.strip()
        time.sleep(0.1)
    return None


def _die_with_parent():
    """preexec_fn: SIGTERM the daemon if the test runner dies, so that it unmounts itself."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def daemon_env(test_dir):
    """A clean environment whose home and client caches all live in test_dir."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}
    home = os.path.join(test_dir, "home")
    env.update({
        "HOME": home,
        "XDG_CACHE_HOME": os.path.join(home, ".cache"),
        "ONNX_HOME": os.path.join(test_dir, "onnx_home"),
        "HF_HOME": os.path.join(test_dir, "hf_home"),
        "HF_HUB_CACHE": os.path.join(test_dir, "hf_home", "hub"),
        # The machine's own config file must not change what a test sees.
        "OMNIHUB_SYSTEM_CONFIG": "/dev/null",
    })
    return env


class Mount:
    """The daemon in the foreground on a mount point for the duration of a `with` block.

    Leaving the block unmounts with fusermount3 -u and requires the daemon to exit with
    status 0 (so crashes and sanitizer reports fail the test). Whatever happens, nothing
    stays mounted and no daemon keeps running. prefix: an argv prefix the daemon runs under
    (netns.Host.prefix(): the daemon in another network namespace, same mounts)."""

    def __init__(self, binary, mountpoint, options, env, log_path, prefix=()):
        self.binary = binary
        self.prefix = list(prefix)
        self.mountpoint = mountpoint
        self.options = list(options)
        self.env = env
        self.log_path = log_path
        self.proc = None
        self.problem = None  # why the shutdown was not clean, once stopped
        self._stopped = False

    @property
    def command(self):
        cmd = self.prefix + [self.binary, "-f"]
        if self.options:
            cmd += ["-o", ",".join(self.options)]
        return cmd + [self.mountpoint]

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def log(self):
        """The daemon's stderr so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self, *needles):
        """Log lines containing every one of needles."""
        return [line for line in self.log().splitlines() if all(n in line for n in needles)]

    def mounted(self):
        """Whether the mount is up (where the test sees it; a subclass may look elsewhere)."""
        return is_mounted(self.mountpoint)

    def start(self):
        check(not self.mounted(), "%s is already mounted" % self.mountpoint)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not self.mounted():
            if self.proc.poll() is not None:
                self._stopped = True
                raise AssertionError("the daemon exited with status %s before mounting; "
                                     "its stderr is in %s" % (self.proc.returncode, self.log_path))
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("%s not mounted after %.0f s"
                                     % (self.mountpoint, MOUNT_TIMEOUT))
            time.sleep(0.02)
        return self

    def signal(self, signum, timeout=EXIT_TIMEOUT):
        """Send signum to the daemon and wait for it to exit; returns its exit status,
        or None if it still runs after timeout."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """Last resort (hung test): SIGKILL the daemon, which aborts its FUSE connection so
        that blocked system calls return, and detach the mount."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if is_mounted(self.mountpoint):
            fusermount(self.mountpoint, lazy=True)

    def ask_to_exit(self):
        """How stop() tells a running daemon to go: fusermount3 -u (unmount()); if that
        keeps failing, the mount is detached and the daemon gets SIGTERM. Returns what went
        wrong (a list of texts)."""
        error = unmount(self.mountpoint)
        if error is None:
            return []
        self.proc.terminate()
        return ["fusermount3 -u failed: %s" % error]

    def stop(self):
        """Unmount (ask_to_exit), wait for the daemon, clean up by force if needed. Returns
        None if the shutdown was clean, else what went wrong. Safe to call again."""
        if self._stopped or self.proc is None:
            return self.problem
        self._stopped = True
        problems = self.ask_to_exit() if self.proc.poll() is None else []
        try:
            self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append("the daemon (pid %d) did not exit within %.0f s; killed"
                            % (self.proc.pid, EXIT_TIMEOUT))
            self.proc.kill()
            self.proc.wait()
        if is_mounted(self.mountpoint):
            problems.append("%s was still mounted after the daemon exited" % self.mountpoint)
            fusermount(self.mountpoint, lazy=True)
        if self.proc.returncode != 0:
            problems.append("the daemon exited with status %d" % self.proc.returncode)
        self.problem = "; ".join(problems) or None
        return self.problem

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        problem = self.stop()
        if problem and exc_type is None:
            raise AssertionError(problem)
        return False


def run_cli(binary, args, env, timeout=EXIT_TIMEOUT, mountpoint=None):
    """Run the daemon for a command that must end by itself (--help, start-up errors).
    Returns the CompletedProcess; fails (after cleaning up) if it does not end in time or
    leaves mountpoint mounted."""
    proc = subprocess.Popen([binary] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True, errors="replace",
                            preexec_fn=_die_with_parent)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        if mountpoint and is_mounted(mountpoint):
            fusermount(mountpoint, lazy=True)
        raise AssertionError("%s did not exit within %.0f s; stderr:\n%s"
                             % (" ".join([binary] + list(args)), timeout, err))
    if mountpoint and is_mounted(mountpoint):
        fusermount(mountpoint, lazy=True)
        raise AssertionError("%s exited but left %s mounted" % (binary, mountpoint))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def mount(t, srv, *extra, cache=None, env=None, mountpoint=None):
    """A Mount (not started) of t's cache (or cache) on t's mount point (or mountpoint), its
    daemon pointed at the fixture server srv: srv.options(), then extra -o options; env as
    TestContext.mount's, over srv.daemon_env() when the server has one (HF_ENDPOINT)."""
    merged = dict(srv.daemon_env()) if hasattr(srv, "daemon_env") else {}
    merged.update(env or {})
    return t.mount(["cache=" + (cache or t.cache)] + srv.options() + list(extra), env=merged,
                   mountpoint=mountpoint)


@contextlib.contextmanager
def mounted_noting(t, m, note):
    """m (a Mount) started for the with block; if the block or the start fails, note()'s
    text (say, a server's log) goes in t's diagnostics."""
    try:
        with m:
            yield m
    except BaseException:
        t.note(note())
        raise


def omnihub_binary():
    """$OMNIHUB, else omnihub beside $OMNIHUB_FUSE (the build under test), else at the top
    of the tree this script is in."""
    candidates = [os.environ.get("OMNIHUB")]
    if os.environ.get("OMNIHUB_FUSE"):
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(
            os.environ["OMNIHUB_FUSE"])), "omnihub"))
    candidates.append(os.path.join(REPO_ROOT, "omnihub"))
    binary = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    check(binary is not None, "omnihub not found at %s (set OMNIHUB)"
          % " or ".join(c for c in candidates if c))
    return binary


def merged_env(base, env):
    """base with env's entries over it; a None value removes the variable."""
    merged = dict(base)
    for key, value in (env or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def run_omnihub(t, args, options=(), env=None, want=None, timeout=COMMAND_TIMEOUT, prefix=()):
    """omnihub [-o options] args... run to its end with its output piped, in t.env with env
    over it (merged_env), under the argv prefix; the run is noted in t (shown if the test
    fails) and its exit status checked when want is not None. Returns the CompletedProcess."""
    cmd = list(prefix) + [omnihub_binary()] + (["-o", ",".join(options)] if options else [])
    res = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, env=merged_env(t.env, env), timeout=timeout)
    t.note("$ omnihub %s -> %d\nstdout:\n%s\nstderr:\n%s"
           % (" ".join(args), res.returncode, res.stdout, res.stderr))
    if want is not None:
        check_eq(res.returncode, want, "exit status of omnihub %s (stderr: %s)"
                 % (" ".join(args), res.stderr.strip()))
    return res


PRIVATE_NS_MARK = "OMNIHUB_TEST_PRIVATE_NS"  # set by enter_private_mount_namespace
SHELL_PATH_DIR = "/usr/local/sbin"  # first in dash's default PATH


def enter_private_mount_namespace(script):
    """Re-run script (with this process's arguments) under unshare --mount, once: what it
    mounts on /dev, /etc or PATH stays there. PRIVATE_NS_MARK in the environment holds the
    namespace left. Without root or unshare, nothing happens (run() then explains why it
    cannot mount)."""
    if PRIVATE_NS_MARK in os.environ or os.geteuid() != 0 or shutil.which("unshare") is None:
        return
    env = dict(os.environ)
    env[PRIVATE_NS_MARK] = os.readlink("/proc/self/ns/mnt")
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable,
                           os.path.abspath(script)] + sys.argv[1:], env)


def in_private_mount_namespace():
    """Whether enter_private_mount_namespace() took this process to a namespace of its own."""
    outer = os.environ.get(PRIVATE_NS_MARK)
    return outer is not None and os.readlink("/proc/self/ns/mnt") != outer


def daemon_on_shell_path(run_dir):
    """In a private mount namespace (checked): the omnihub-fuse under test ($OMNIHUB_FUSE)
    bound on SHELL_PATH_DIR as omnihub-fuse, where mount.fuse3's /bin/sh finds it by name."""
    check(in_private_mount_namespace(), "not in a private mount namespace")
    sbin = os.path.join(run_dir, "sbin")
    os.mkdir(sbin)
    os.symlink(os.path.abspath(os.environ.get("OMNIHUB_FUSE") or ""),
               os.path.join(sbin, "omnihub-fuse"))
    system_mount("--bind", sbin, SHELL_PATH_DIR)


def system_mount(*args):
    """mount(8) with args; raises CalledProcessError if it fails."""
    subprocess.run(["mount"] + list(args), check=True, capture_output=True, text=True)


def build_dir():
    """The build tree under test: the folder of $OMNIHUB_FUSE (else the top of the tree)."""
    return os.path.dirname(os.path.abspath(os.environ.get("OMNIHUB_FUSE") or
                                           os.path.join(SRCDIR, "omnihub-fuse")))


def nolock_fs_binary():
    """tests/fixtures/nolock_fs of the build tree (make check builds it; made here if not)."""
    path = os.path.join(build_dir(), "tests", "fixtures", "nolock_fs")
    if not os.access(path, os.X_OK) and os.path.exists(os.path.join(build_dir(), "Makefile")):
        subprocess.run(["make", "-C", build_dir(), "tests/fixtures/nolock_fs"],
                       stdin=subprocess.DEVNULL, capture_output=True)
    check(os.access(path, os.X_OK), "%s is not built (make check builds it)" % path)
    return path


@contextlib.contextmanager
def nolock_fs(t, name, env=None, timeout=60.0):
    """tests/fixtures/nolock_fs (a FUSE filesystem whose locks fail; its NOLOCK_FS_* variables
    in env make it lock, or slow, instead) over t.dir/lower on t.dir/<name>, with fsname and
    subtype name; yields the mount point, unmounted on the way out."""
    lower, point = os.path.join(t.dir, "lower"), os.path.join(t.dir, name)
    os.makedirs(lower)
    os.makedirs(point)
    res = subprocess.run([nolock_fs_binary(), lower, point, "-o",
                          "fsname=%s,subtype=%s" % (name, name)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, **(env or {})))
    check(res.returncode == 0 and is_mounted(point), "nolock_fs did not mount: %s" % res.stderr)
    try:
        yield point
    finally:
        unmount(point, timeout=5)


def make_zoo(fixture_dir, *args):
    """tests/fixtures/make_zoo.py fixture_dir args...: the fake ONNX zoo's files (it needs
    python3-onnx). Returns its expected.json (the entries); RuntimeError with its output if
    it fails."""
    res = subprocess.run([sys.executable, os.path.join(FIXTURES_DIR, "make_zoo.py"), fixture_dir]
                         + [str(a) for a in args], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("make_zoo.py failed:\n" + res.stdout + res.stderr)
    with open(os.path.join(fixture_dir, "expected.json"), encoding="utf-8") as f:
        return json.load(f)


def npm_package(t, folder, package):
    """(prefix, directory) of the npm package `package`, installed once per build under
    BUILD/folder with npm install --ignore-scripts (its scripts would reach hosts this machine
    cannot); SkipTest without npm or node, or when the install fails (the reason is kept in
    t.shared.npm_why, so that later tests skip at once)."""
    shared = t.shared
    build = os.path.dirname(os.path.abspath(os.environ.get("OMNIHUB_FUSE", t.binary)))
    prefix = os.path.join(build, folder)
    directory = os.path.join(prefix, "node_modules", *package.split("/"))
    if shared.npm_why is None and not os.path.isfile(os.path.join(directory, "package.json")):
        if not shutil.which("npm") or not shutil.which("node"):
            shared.npm_why = "npm or node is not installed (scripts/install-deps)"
        else:
            os.makedirs(prefix, exist_ok=True)
            res = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                                  "--prefix", prefix, package], capture_output=True, text=True,
                                 timeout=600)
            if res.returncode != 0:
                shared.npm_why = "npm install %s failed: %s" % (package, res.stderr[-500:])
    if shared.npm_why:
        raise SkipTest(shared.npm_why)
    return prefix, directory


class ZooModel:
    """A run's fake ONNX zoo of one model: zoo (a ZooServer) and entry (make_zoo's)."""

    def __init__(self, zoo, entry):
        self.zoo = zoo
        self.entry = entry


@contextlib.contextmanager
def one_model_zoo(run_dir, large_mib, **server_kw):
    """run()'s setup: make_zoo --only-large, a zoo of one large model of large_mib MiB,
    served by a ZooServer(**server_kw) while the tests run; ctx.shared is a ZooModel."""
    from zoo_server import ZooServer
    fixture_dir = os.path.join(run_dir, "fixture")
    entries = make_zoo(fixture_dir, "--only-large", "--large-mib", large_mib)
    entries = [e for e in entries if e["kind"] == "good"]
    check_eq(len(entries), 1, "models in the fixture")
    with ZooServer(fixture_dir, os.path.join(run_dir, "zoo"), **server_kw) as zoo:
        yield ZooModel(zoo, entries[0])


def require_modules(*pairs):
    """For run()'s setup: RuntimeError unless this python has every module of pairs
    ((module, Debian package) each), naming the package to install."""
    import importlib.util
    for module, package in pairs:
        if importlib.util.find_spec(module) is None:
            raise RuntimeError("%s has no %s module: install %s (scripts/install-deps) and run "
                               "this file with Debian's /usr/bin/python3"
                               % (sys.executable, module, package))


@contextlib.contextmanager
def serving(shared, *servers):
    """run()'s setup around shared: shared.start() (it starts its servers and writes what
    needs their URLs), then shared; each of servers is stopped on the way out."""
    shared.start()
    try:
        yield shared
    finally:
        for srv in servers:
            srv.stop()


class TlsDir:
    """A test run's shared fixture of certificates: tls_dir under the run directory, made
    once (zoo_server.make_tls); servers started by tests use it."""

    def __init__(self, run_dir):
        from zoo_server import make_tls
        self.run_dir = run_dir
        self.tls_dir = os.path.join(run_dir, "tls")
        make_tls(self.tls_dir)


@contextlib.contextmanager
def tls_setup(run_dir):
    """run()'s setup for tests that start their own servers: ctx.shared is a TlsDir."""
    yield TlsDir(run_dir)


class HfFixture(TlsDir):
    """A run's Hugging Face imitation: make_hf_repos' repos in fixture_dir (desc describes
    them) served by srv, an HfServer made with server_kw (started by hf_setup)."""

    def __init__(self, run_dir, **server_kw):
        super().__init__(run_dir)
        import make_hf_repos
        from hf_server import HfServer
        self.fixture_dir = os.path.join(run_dir, "hf-fixture")
        self.desc = make_hf_repos.make_repos(self.fixture_dir)
        self.srv = HfServer(self.fixture_dir, self.tls_dir, **server_kw)


@contextlib.contextmanager
def hf_setup(shared):
    """run()'s setup around an HfFixture (or a subclass) already made: serves it while the
    tests run."""
    with shared.srv:
        yield shared


@contextlib.contextmanager
def serve_blobs(t, specs, rate=None, wrong_sha=(), extra=(), on_failure=None):
    """Files of random bytes ((name, size) each; make_blobs) and extra Blobs served by a
    BlobServer with t.shared.tls_dir; yields (server, {name: Blob}). on_failure(srv) is noted
    in t when the block raises."""
    from blob_server import BlobServer, files_of, make_blobs, manifest_of
    blobs = make_blobs(os.path.join(t.dir, "files"), specs, wrong_sha=wrong_sha) + list(extra)
    with BlobServer(t.shared.tls_dir, manifest_of(blobs), files_of(blobs), rate=rate) as srv:
        try:
            yield srv, {b.name: b for b in blobs}
        except BaseException:
            if on_failure:
                t.note(on_failure(srv))
            raise


class NetTeam:
    """A private network of Linux namespaces for one test (netns.Network): an origin host
    serving, over TLS on its address, blobs of random bytes (specs: (name, size) each) with a
    BlobServer (srv; plain=True: plain HTTP) or, with hf=True, the Hugging Face imitation over
    make_hf_repos' fixture (hf_token: the token it accepts); and one host per name in roles
    (self.hosts, in order). t is the test's TestContext. The with block's end stops t's mounts
    (their daemons live in the namespaces), the servers and the namespaces; a failure notes
    the origin's log. A subclass adds what it needs in more_setup() (before the network)."""

    mount_class = Mount  # what mount() makes

    def __init__(self, t, roles, specs=(), rate=None, hf=False, hf_token=None, plain=False):
        self.t = t
        self.roles = list(roles)
        self.specs = specs
        self.rate = rate
        self.hf = hf
        self.hf_token = hf_token
        self.plain = plain
        self.stack = contextlib.ExitStack()

    def more_setup(self):
        """Called first in __enter__; its cleanups go on self.stack."""

    def __enter__(self):
        from blob_server import BlobServer, files_of, make_blobs, manifest_of
        from netns import Network
        from zoo_server import make_tls
        try:
            self.more_setup()
            self.net = self.stack.enter_context(Network())
            self.origin = self.net.add_host("origin")
            self.hosts = [self.net.add_host(role) for role in self.roles]
            tls_dir = os.path.join(self.t.dir, "tls")
            if not self.plain:
                make_tls(tls_dir, ips=[self.origin.ip])
            self.blobs = make_blobs(os.path.join(self.t.dir, "files"), self.specs)
            if self.hf:
                import make_hf_repos
                from hf_server import HfServer
                self.fixture_dir = os.path.join(self.t.dir, "hf-fixture")
                self.desc = make_hf_repos.make_repos(self.fixture_dir)
            with self.origin.inside():
                if self.hf:
                    self.srv = HfServer(self.fixture_dir, tls_dir, token=self.hf_token,
                                        address=self.origin.ip).start()
                else:
                    self.srv = BlobServer(tls_dir, manifest_of(self.blobs), files_of(self.blobs),
                                          rate=self.rate, address=self.origin.ip,
                                          plain=self.plain).start()
            self.stack.callback(self.srv.stop)
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.t.note(self.origin_summary())
        # The mounts first (their daemons are in the network's namespaces), then the rest.
        problems = [p for p in (m.stop() for m in self.t.mounts) if p]
        self.stack.close()
        if problems and exc_type is None:
            raise AssertionError("; ".join(problems))
        return False

    def blob(self, name):
        return next(b for b in self.blobs if b.name == name)

    def origin_bytes(self, blob):
        """Body bytes the origin sent of blob's file (the hub's redirects carry none)."""
        from blob_server import FILES_PREFIX
        self.srv.wait_idle()
        return self.srv.bytes_sent(FILES_PREFIX + blob.model_path)

    def origin_summary(self):
        lines = ["%s %s %s bytes=%d auth=%s" % (r["method"], r["path"], r["status"], r["bytes"],
                                                r["auth"]) for r in self.srv.requests()]
        return "origin log:\n" + "\n".join(lines[-40:])

    def hub_options(self, cache):
        """-o options of a daemon of the team: cache, and the origin's hub (with hf, the
        ONNX hub points at an empty manifest on the same server)."""
        return ["cache=" + cache] + self.srv.options()

    def host_env(self, host):
        """A daemon environment of host's own: home and client caches under t.dir/<role>;
        with hf, HF_ENDPOINT and HF_TOKEN too."""
        env = daemon_env(os.path.join(self.t.dir, host.role))
        for key in ("HOME", "ONNX_HOME", "HF_HUB_CACHE"):
            os.makedirs(env[key], exist_ok=True)
        if self.hf:
            env.update(self.srv.daemon_env())
            env["HF_TOKEN"] = self.hf_token
        return env

    def cache_of(self, host):
        """The cache directory of host's daemons."""
        return os.path.join(self.t.dir, host.role, "cache")

    def prefix(self, host):
        """The argv prefix host's processes start with: into its network namespace."""
        return host.prefix()

    def mount(self, host, *extra):
        """A started mount of host's cache (cache_of) on t.dir/<role>/mnt, its daemon started
        with prefix(host) as a mount_class; extra: more -o options."""
        cache = self.cache_of(host)
        os.makedirs(cache, exist_ok=True)
        m = self.t.mount(self.hub_options(cache) + list(extra), env=self.host_env(host),
                         prefix=self.prefix(host), cls=self.mount_class,
                         mountpoint=os.path.join(self.t.dir, host.role, "mnt"))
        return m.start()


# ----------------------------------------------------------------------------- TAP runner

_TESTS = []


class SkipTest(Exception):
    """Raised by a test that cannot run here (a tool missing): TAP's "ok ... # SKIP why"."""


def test(func):
    """Register a test function; tests run in the order they are defined."""
    _TESTS.append(func)
    return func


class TestContext:
    """Per-test state: an own directory with cache/, mnt/ and the daemon's home and client
    caches, plus every Mount started through it (for cleanup and diagnostics)."""

    def __init__(self, root, number, name, binary, shared):
        self.name = name
        self.binary = binary
        self.shared = shared
        self.dir = os.path.join(root, "%02d-%s" % (number, name))
        self.cache = os.path.join(self.dir, "cache")
        self.mountpoint = os.path.join(self.dir, "mnt")
        self.env = daemon_env(self.dir)
        for d in (self.cache, self.mountpoint, self.env["HOME"], self.env["ONNX_HOME"],
                  self.env["HF_HUB_CACHE"]):
            os.makedirs(d)
        self.mounts = []
        self.notes = []  # extra diagnostics, printed if the test fails
        self.timed_out = False

    def mount(self, options, env=None, prefix=(), mountpoint=None, binary=None, cls=None):
        """A Mount (not started yet) on this test's mount point (or on mountpoint, made if
        absent); env entries override self.env, None removes a variable; prefix as Mount's;
        binary: a program to run instead of the daemon (a wrapper that execs it); cls: a
        subclass of Mount to make."""
        merged = merged_env(self.env, env)
        log_path = os.path.join(self.dir, "daemon-%d.log" % (len(self.mounts) + 1))
        if mountpoint is None:
            mountpoint = self.mountpoint
        os.makedirs(mountpoint, exist_ok=True)
        m = (cls or Mount)(binary or self.binary, mountpoint, options, merged, log_path, prefix)
        self.mounts.append(m)
        return m

    def note(self, text):
        self.notes.append(text)

    def skip(self, reason):
        """End the test as skipped (TAP "# SKIP reason"): for a tool the machine lacks."""
        raise SkipTest(reason)

    def abort(self):
        """Watchdog: the test hangs (most likely in a system call on the mount)."""
        self.timed_out = True
        for m in list(self.mounts):
            m.kill()

    def cleanup(self):
        """Stop any mount the test left running; returns the problems found."""
        return [p for p in (m.stop() for m in self.mounts) if p]


def _diag(text):
    for line in text.rstrip("\n").splitlines():
        print("# " + line)


def _log_excerpt(text):
    """The tail of a daemon log; a sanitizer report is shown from its first line instead,
    since its stack traces, not its shadow-byte legend, say what went wrong."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _SANITIZER_START.search(line):
            return "\n".join(lines[max(0, i - 5):i + 2 * LOG_TAIL_LINES])
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _cannot_mount_reason():
    if os.geteuid() != 0:
        return "mounting needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed"
    return None


def find_binary():
    """$OMNIHUB_FUSE, else omnihub-fuse at the top of the tree this script is in."""
    binary = os.environ.get("OMNIHUB_FUSE") or os.path.join(REPO_ROOT, "omnihub-fuse")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError("omnihub-fuse not found at %s: build it, or set OMNIHUB_FUSE to the "
                           "binary (make check does)" % binary)
    return binary


def _unmount_below(root):
    """Never let rmtree walk into a mount that a crashed test left behind."""
    prefix = os.path.realpath(root) + os.sep
    for point in mount_points():
        if point.startswith(prefix):
            fusermount(point, lazy=True)


def run(setup, before_each=None, argv=None):
    """Run the registered tests and exit. setup(run_dir) is a context manager yielding the
    object tests see as ctx.shared; before_each(shared) runs before every test."""
    argv = sys.argv[1:] if argv is None else argv
    tests = [t for t in _TESTS if not argv or argv[0] in t.__name__]
    reason = _cannot_mount_reason()
    if reason:
        # A suite that cannot mount has tested nothing: that fails, unless skipping was asked for.
        if os.environ.get("OMNIHUB_ALLOW_SKIP") == "1":
            print("1..0 # SKIP %s" % reason)
            sys.exit(0)
        print("# OMNIHUB_ALLOW_SKIP=1 would skip this suite instead")
        print("Bail out! cannot mount: %s" % reason)
        sys.exit(1)
    try:
        binary = find_binary()
    except RuntimeError as e:
        print("Bail out! %s" % e)
        sys.exit(1)

    run_dir = tempfile.mkdtemp(prefix="omnihub-it-")
    failed = 0
    started = time.monotonic()
    try:
        try:
            setup_cm = setup(run_dir)
            shared = setup_cm.__enter__()
        except Exception:
            print("Bail out! fixture setup failed")
            _diag(traceback.format_exc())
            sys.stdout.flush()
            sys.exit(1)
        try:
            for number, func in enumerate(tests, 1):
                failed += not _run_one(number, func, run_dir, binary, shared, before_each)
        finally:
            setup_cm.__exit__(None, None, None)
    finally:
        _unmount_below(run_dir)
        if os.environ.get("OMNIHUB_TEST_KEEP") == "1":
            _diag("test files kept in %s" % run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    _diag("%d of %d tests failed, %.1f s" % (failed, len(tests), time.monotonic() - started))
    print("1..%d" % len(tests))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


def _run_one(number, func, run_dir, binary, shared, before_each):
    """Run one test, print its TAP line and diagnostics; True if it passed."""
    name = func.__name__
    started = time.monotonic()
    ctx = None
    error = None
    skipped = None
    watchdog = None
    try:
        ctx = TestContext(run_dir, number, name, binary, shared)
        watchdog = threading.Timer(TEST_TIMEOUT, ctx.abort)
        watchdog.daemon = True
        watchdog.start()
        if before_each:
            before_each(shared)
        func(ctx)
    except SkipTest as e:
        skipped = str(e)
    except Exception:
        error = traceback.format_exc()
    finally:
        if watchdog:
            watchdog.cancel()
        leftovers = ctx.cleanup() if ctx else []
    if ctx and ctx.timed_out:
        error = "timed out after %.0f s; the daemons were killed\n%s" % (TEST_TIMEOUT, error or "")
    leftovers = [p for p in leftovers if p not in (error or "")]  # not twice
    if leftovers:  # a shutdown problem fails the test even if the body passed
        error = (error or "") + "cleanup: " + "; ".join(leftovers)
    seconds = time.monotonic() - started
    if error is None:
        print("ok %d - %s%s" % (number, name, " # SKIP " + skipped if skipped else ""))
        _diag("%s: %.1f s" % (name, seconds))
        sys.stdout.flush()
        return True
    print("not ok %d - %s" % (number, name))
    _diag(error)
    if ctx:
        for text in ctx.notes:
            _diag(text)
        for i, m in enumerate(ctx.mounts, 1):
            status = m.proc.returncode if m.proc else "not started"
            _diag("--- daemon %d: %s (exit status %s); stderr:" % (i, " ".join(m.command), status))
            _diag(_log_excerpt(m.log()) or "(empty)")
    _diag("%s: %.1f s" % (name, seconds))
    sys.stdout.flush()
    return False
