#!/usr/bin/env python3
"""Integration tests of many machines sharing one download: blob mirrors, across network namespaces.
Not for one machine's download layer (test_transfers.py) nor for speed (scripts/bench --team).
"""

# Every test builds its own private network (tests/integration/netns.py): an origin host
# serving the hub imitation (tests/fixtures/blob_server.py, HTTPS with the run's CA and a
# certificate for the origin's address), a mirror host running nginx over a cache directory,
# and client hosts, each with its own omnihub-fuse mount whose daemon runs in the client's
# namespace. Run by `make check`, or by hand (as root):
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_team.py [PART]

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import SRCDIR, check, check_eq, run, test  # noqa: E402
from netns import NETNS_DIR, Network  # noqa: E402

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))

WAIT = 60.0  # seconds: generous bound on anything that should finish


# ----------------------------------------------------------------------------- fixture

class Shared:
    def __init__(self, run_dir):
        self.run_dir = run_dir


@contextlib.contextmanager
def shared_setup(run_dir):
    yield Shared(run_dir)


def own_namespaces(tag):
    """Names in /run/netns that a Network with this tag made."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n == tag + "-sw" or n.startswith(tag + "-"))


def net_namespace_of(pid):
    return os.readlink("/proc/%d/ns/net" % pid)


def thread_namespace():
    return os.readlink("/proc/self/task/%d/ns/net" % threading.get_native_id())


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello %s from %s\n" % (self.client_address[0], self.server.name)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


# ----------------------------------------------------------------------------- netns itself

@test
def netns_hosts_reach_each_other_and_vanish(t):
    """Two hosts on one network talk HTTP both ways (an in-process server made with inside(),
    curl started with run()); the test process's own namespace cannot reach them; after the
    with block no namespace and no process of the network is left."""
    own_ns = thread_namespace()
    servers = []
    with Network() as net:
        a = net.add_host("a")
        b = net.add_host("b")
        check(a.ip != b.ip and a.ip.rsplit(".", 1)[0] == b.ip.rsplit(".", 1)[0],
              "addresses %s and %s not in one /24" % (a.ip, b.ip))
        check_eq(own_namespaces(net.tag), sorted(net.namespaces()), "namespaces in /run/netns")
        try:
            for host in (a, b):
                with host.inside():
                    check(thread_namespace() != own_ns, "inside() left the thread where it was")
                    srv = http.server.ThreadingHTTPServer((host.ip, 0), _Hello)
                srv.name = host.role
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                servers.append(srv)
            check_eq(thread_namespace(), own_ns, "the thread's namespace after inside()")
            for src, dst, srv in ((b, a, servers[0]), (a, b, servers[1])):
                res = src.run(["curl", "-sS", "-m", "10", dst.url(srv.server_address[1])],
                              capture_output=True, text=True, timeout=WAIT)
                check_eq(res.stdout, "hello %s from %s\n" % (src.ip, dst.role),
                         "%s -> %s (curl stderr: %s)" % (src.role, dst.role, res.stderr.strip()))
            res = subprocess.run(["curl", "-sS", "-m", "3", a.url(servers[0].server_address[1])],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True)
            check(res.returncode != 0, "the test's own namespace reached %s" % a.ip)
            sleeper = b.popen(["sleep", "300"])
            deadline = time.monotonic() + WAIT  # nsenter first, then sleep
            while open("/proc/%d/comm" % sleeper.pid).read().strip() != "sleep":
                check(time.monotonic() < deadline, "popen(): sleep did not start")
                time.sleep(0.01)
            check_eq(net_namespace_of(sleeper.pid), "net:[%d]" % os.stat(b.path).st_ino,
                     "the namespace of a process started by popen()")
        finally:
            for srv in servers:
                srv.shutdown()
                srv.server_close()
        tag = net.tag
    check_eq(own_namespaces(tag), [], "namespaces left after the with block")
    check(sleeper.poll() is not None, "a process started with popen() outlived the network")


@test
def netns_cleanup_on_sigterm(t):
    """A process killed by SIGTERM while its network exists leaves no namespace behind, and
    another Network's namespaces (this process's) are untouched."""
    script = textwrap.dedent("""\
        import sys, time
        sys.path.insert(0, %r)
        from netns import Network
        net = Network()
        net.add_host("x")
        net.add_host("y").popen(["sleep", "300"])
        print(net.tag, flush=True)
        time.sleep(300)
        """) % os.path.dirname(os.path.abspath(__file__))
    with Network() as bystander:
        bystander.add_host("keep")
        child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, text=True)
        try:
            tag = child.stdout.readline().strip()
            check(tag, "the child printed no tag")
            check_eq(len(own_namespaces(tag)), 3, "the child's namespaces before the signal")
            child.send_signal(signal.SIGTERM)
            check_eq(child.wait(WAIT), -signal.SIGTERM, "the child's exit status")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        check_eq(own_namespaces(tag), [], "the child's namespaces after SIGTERM")
        check_eq(own_namespaces(bystander.tag), sorted(bystander.namespaces()),
                 "this process's namespaces after the child's cleanup")


if __name__ == "__main__":
    run(shared_setup)
