"""Private networks of Linux network namespaces for the integration tests: hosts on one bridge.
Not for mount namespaces (processes started here share the test's mounts) nor for anything but tests.

    from netns import Network
    with Network() as net:               # a "switch" namespace holding a bridge, plus hosts
        origin = net.add_host("origin")  # a namespace with eth0 = origin.ip on the bridge
        with origin.inside():            # this thread is in origin's namespace while sockets
            srv = BlobServer(...)        # are made: an in-process server listens there
        origin.popen(argv, **kw)         # subprocess.Popen in origin's namespace
        origin.run(argv, **kw)           # subprocess.run likewise
        origin.prefix()                  # ["nsenter", "--net=/run/netns/<name>", "--"]
        port = origin.free_port()        # then a server listens on origin.ip:port, and
        origin.wait_listening(port, proc, "nginx")  # this waits until it accepts

Each Network has its own switch, so two runs (or two Networks in one run) never see each
other; its /24 (10.<a>.<b>.0/24) is still picked per Network, so that addresses in logs tell
runs apart. Names are "oh<pid>n<k>-<role>", unique per process. Everything a Network made
(namespaces, processes started through popen) goes when the with block ends, at interpreter
exit, and on SIGTERM; namespaces it did not make are never touched. Needs root and iproute2.
popen/run go through `nsenter --net` rather than `ip netns exec`, which would also unshare
the mount namespace and hide FUSE mounts made later by the test.
"""

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fixtures"))
from waiting import poll_until  # noqa: E402

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
KILL_TIMEOUT = 5.0  # seconds a process gets after SIGTERM before SIGKILL
LISTEN_TIMEOUT = 60.0  # seconds wait_listening gives a server to accept connections

_libc = ctypes.CDLL(None, use_errno=True)
_registry_lock = threading.Lock()
_live = []  # Networks not yet closed, for atexit and SIGTERM
_counter = 0  # Networks made by this process; guarded by _registry_lock
_handler_installed = False


def _ip(*args):
    """Run `ip args...`; raises RuntimeError with ip's message if it fails."""
    res = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), res.stderr.strip()))
    return res.stdout


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: %s" % os.strerror(err))


def _tail(path, lines=30):
    """A note naming path and its last lines, for a failure message; empty without a path."""
    if not path:
        return ""
    try:
        with open(path, errors="replace") as f:
            text = "".join(f.readlines()[-lines:])
    except OSError as e:
        text = "(%s)" % e
    return "; see %s:\n%s" % (path, text)


def _close_all_live():
    with _registry_lock:
        nets = list(_live)
    for net in reversed(nets):
        net.close()


def _on_sigterm(signum, frame, previous):
    _close_all_live()
    if callable(previous):
        previous(signum, frame)
        return
    # Die of the signal as we would have without this handler.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    """atexit always; SIGTERM only from the main thread and only once."""
    global _handler_installed
    if _handler_installed:
        return
    _handler_installed = True
    atexit.register(_close_all_live)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, lambda s, f: _on_sigterm(s, f, previous))


class Host:
    """One machine of a Network: name (its netns name), role (what add_host was given), ip,
    ifname (eth0 inside the host) and port (its bridge port in the switch namespace)."""

    def __init__(self, net, role, name, ip, port):
        self.net = net
        self.role = role
        self.name = name
        self.ip = ip
        self.ifname = "eth0"
        self.port = port

    @property
    def path(self):
        return os.path.join(NETNS_DIR, self.name)

    def prefix(self):
        """An argv prefix that runs a command in this host's network namespace (only)."""
        return ["nsenter", "--net=" + self.path, "--"]

    @contextlib.contextmanager
    def inside(self):
        """The calling thread is in this host's network namespace inside the block; sockets
        made there stay there. The thread's own namespace is restored on the way out."""
        own = os.open("/proc/self/task/%d/ns/net" % threading.get_native_id(), os.O_RDONLY)
        try:
            target = os.open(self.path, os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                _setns(own)
        finally:
            os.close(own)

    def popen(self, argv, **kw):
        """subprocess.Popen of argv in this host's namespace; the Network stops it at close
        if it still runs."""
        proc = subprocess.Popen(self.prefix() + list(argv), **kw)
        self.net._track(proc)
        return proc

    def run(self, argv, **kw):
        """subprocess.run of argv in this host's namespace."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.prefix() + list(argv), **kw)

    def disconnect(self):
        """Unplug the host's cable: its address stops answering (connections to it time out
        or fail with EHOSTUNREACH) until reconnect()."""
        _ip("-n", self.net.switch, "link", "set", self.port, "down")

    def reconnect(self):
        _ip("-n", self.net.switch, "link", "set", self.port, "up")

    def free_port(self):
        """A TCP port nothing listens on at this host's address now (the namespace is the
        test's own, so nothing else takes it before the server does)."""
        with self.inside():
            s = socket.socket()
        try:
            s.bind((self.ip, 0))
            return s.getsockname()[1]
        finally:
            s.close()

    def wait_listening(self, port, proc, what, log_path=None, timeout=LISTEN_TIMEOUT):
        """Return once something accepts TCP connections on this host's ip:port. Raises
        AssertionError if proc (the server's process) exits first, with the end of log_path,
        or after timeout s."""
        def accepting():
            with self.inside():
                s = socket.socket()
            try:
                s.settimeout(1.0)
                s.connect((self.ip, port))
                return True
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError("%s exited with status %s before listening%s"
                                         % (what, proc.returncode, _tail(log_path)))
                return False
            finally:
                s.close()

        if not poll_until(accepting, timeout):
            raise AssertionError("%s not listening on %s:%d after %.0f s"
                                 % (what, self.ip, port, timeout))

    def url(self, port, scheme="http"):
        return "%s://%s:%d" % (scheme, self.ip, port)

    def __repr__(self):
        return "Host(%s, %s)" % (self.name, self.ip)


class Network:
    """A bridge in a namespace of its own and the hosts plugged into it (add_host). close()
    (or leaving the with block) stops the processes started through the hosts and deletes
    every namespace this Network made. Safe to call twice."""

    def __init__(self):
        global _counter
        with _registry_lock:
            _counter += 1
            number = _counter
        pid = os.getpid()
        self.tag = "oh%dn%d" % (pid, number)
        # 10.<a>.<b>.0/24 with a in 64..191: away from the 10.0.x and 10.255.x that
        # container runtimes like to use; the pid and the Network number pick it.
        slot = (pid * 8 + number) % (128 * 256)
        self.subnet = "10.%d.%d" % (64 + slot // 256, slot % 256)
        self.switch = self.tag + "-sw"
        self.hosts = []
        self._made = []  # namespace names this Network created, in order
        self._procs = []  # Popen objects started through hosts
        self._lock = threading.Lock()  # guards _procs, _made and hosts
        self._closed = False
        _install_handlers()
        with _registry_lock:
            _live.append(self)
        try:
            self._add_netns(self.switch)
            _ip("-n", self.switch, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except Exception:
            self.close()
            raise

    def _add_netns(self, name):
        if os.path.exists(os.path.join(NETNS_DIR, name)):
            raise RuntimeError("network namespace %s exists already" % name)
        _ip("netns", "add", name)
        with self._lock:
            self._made.append(name)

    def add_host(self, role):
        """A new host named after role (short: [a-z0-9] and at most 12 characters is safe),
        with lo up and eth0 on the bridge at the next address of the subnet."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the network is closed")
            index = len(self.hosts) + 1
        if index > 250:
            raise RuntimeError("a Network holds at most 250 hosts")
        name = "%s-%s" % (self.tag, role)
        port = "p%d" % index  # an interface name in the switch namespace only
        ip = "%s.%d" % (self.subnet, index + 1)
        self._add_netns(name)
        _ip("-n", name, "link", "set", "lo", "up")
        # Both ends are made directly in their namespaces: no interface ever appears in the
        # namespace of the test process, where names could clash.
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", name)
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", name, "addr", "add", ip + "/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        host = Host(self, role, name, ip, port)
        with self._lock:
            self.hosts.append(host)
        return host

    def _track(self, proc):
        with self._lock:
            self._procs = [p for p in self._procs if p.poll() is None]
            self._procs.append(proc)

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            procs = list(self._procs)
            made = list(self._made)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in reversed(made):
            # Deleting the name is enough: the namespace itself (and its veth ends) goes
            # once no process is left in it.
            subprocess.run(["ip", "netns", "delete", name], stdin=subprocess.DEVNULL,
                           capture_output=True)
        with _registry_lock:
            if self in _live:
                _live.remove(self)

    def namespaces(self):
        """The namespace names this Network made (for tests of the cleanup)."""
        with self._lock:
            return list(self._made)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
