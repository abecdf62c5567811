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
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, NetTeam, check, check_eq, omnihub_binary,  # noqa: E402
                           read_all_at_once, run, sha256_file, test, wait_for)
from netns import NETNS_DIR, Network  # noqa: E402

import make_hf_repos as fx  # noqa: E402
from zoo_server import nginx_temp_paths  # noqa: E402
from http_base import HttpHandler  # noqa: E402

MiB = 1 << 20
WAIT = 60.0  # seconds: generous bound on anything that should finish
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HF_TOKEN = "hf_TeamTokenValue0123456789abcdefXYZ"
# state, source, done, total, %, speed ("-" or "1.5 MiB/s"), ETA, connections, waiters, path
STATUS_ROW = re.compile(r"^(\S+)\s+(\S+)\s+\d+\s+\d+\s+[\d.]+%\s+(?:-|[\d.]+ \S+/s)\s+\S+"
                        r"\s+\d+\s+\d+  (.+)$")


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


class _Hello(HttpHandler):
    def serve(self):
        body = "hello %s from %s\n" % (self.client_address[0], self.server.name)
        self.reply(200, body.encode(), ctype=None)


# ----------------------------------------------------------------------------- the team

class Nginx:
    """Debian's nginx in a host's namespace serving root (a cache directory: the mirror
    layout is the cache's own, blobs/<alg>/<hex>) on host.ip:port, plain HTTP, with the
    server block of scripts/proxy/nginx-mirror.conf; its config, pid and logs in workdir. The access log has one line per request: method, uri,
    status, body bytes and the Authorization header ("-" when absent). rate: limit_rate."""

    def __init__(self, host, root, workdir, rate=None):
        self.host = host
        self.root = root
        self.workdir = workdir
        self.rate = rate
        self.port = None
        self.proc = None
        self.access_log = os.path.join(workdir, "access.log")
        self.error_log = os.path.join(workdir, "error.log")

    @property
    def url(self):
        return self.host.url(self.port)

    def _server(self):
        """The shipped example, scripts/proxy/nginx-mirror.conf, with this test's address,
        root, log and rate: so the example itself is what the tests run."""
        with open(os.path.join(SRCDIR, "scripts", "proxy", "nginx-mirror.conf")) as f:
            text = f.read()
        rate = "    limit_rate %d;\n" % self.rate if self.rate else ""
        for old, new in (("listen 8080;", "listen %s:%d;" % (self.host.ip, self.port)),
                         ("root /var/cache/omnihub;\n", 'root "%s";\n%s' % (self.root, rate)),
                         ("access_log /var/log/nginx/omnihub-mirror.log;",
                          'access_log "%s" team;' % self.access_log)):
            check(old in text, "nginx-mirror.conf no longer has %r" % old)
            text = text.replace(old, new)
        return text

    def _conf(self):
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the 0700 test dir
        w = self.workdir
        return f"""\
{user}worker_processes 1;
daemon off;
pid "{w}/nginx.pid";
lock_file "{w}/nginx.lock";
error_log "{self.error_log}" notice;
events {{
    worker_connections 256;
}}
http {{
{nginx_temp_paths(w + "/tmp")}
    log_format team "$request_method\t$uri\t$status\t$body_bytes_sent\t$http_authorization";
    access_log "{self.access_log}" team;
    default_type application/octet-stream;
{self._server()}
}}
"""

    def start(self):
        os.makedirs(os.path.join(self.workdir, "tmp"), exist_ok=True)
        self.port = self.host.free_port()
        conf = os.path.join(self.workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._conf())
        with open(os.path.join(self.workdir, "stderr"), "wb") as err:
            self.proc = self.host.popen([NGINX, "-e", self.error_log, "-c", conf],
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        self.host.wait_listening(self.port, self.proc, "nginx on %s" % self.host.name,
                                 self.error_log, WAIT)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # nginx: fast shutdown
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def requests(self):
        """[(method, uri, status, bytes, authorization)] of the access log, after a moment
        for nginx to write the lines of responses just finished."""
        time.sleep(0.2)
        try:
            with open(self.access_log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            method, uri, status, sent, auth = line.split("\t")
            out.append((method, uri, int(status), int(sent), auth))
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Team(NetTeam):
    """A private network for one test (NetTeam): origin (serving blobs with BlobServer, srv;
    or with hf=True the Hugging Face imitation HfServer over make_hf_repos' fixture, whose
    token is HF_TOKEN), mirror and clients (Hosts), the test's TestContext t. Mounts, servers
    and namespaces all stop at the end of the with block."""

    def __init__(self, t, specs=(), clients=3, rate=None, hf=False):
        super().__init__(t, ["mirror"] + ["c%d" % (i + 1) for i in range(clients)], specs,
                         rate=rate, hf=hf, hf_token=HF_TOKEN)

    def __enter__(self):
        super().__enter__()
        self.mirror, self.clients = self.hosts[0], self.hosts[1:]
        return self

    def pull(self, host, cache, *paths):
        """`omnihub pull` in host's namespace into cache, against the origin."""
        os.makedirs(cache, exist_ok=True)
        res = host.run([omnihub_binary(), "-o", ",".join(self.hub_options(cache)), "pull"]
                       + list(paths), env=self.host_env(host), capture_output=True, text=True,
                       timeout=WAIT)
        check(res.returncode == 0, "omnihub pull %s failed (%d):\n%s%s"
              % (" ".join(paths), res.returncode, res.stdout, res.stderr))

    def nginx(self, root, name="nginx", rate=None):
        """A started Nginx on the mirror host over root, stopped with the team."""
        srv = Nginx(self.mirror, root, os.path.join(self.t.dir, name), rate=rate).start()
        self.stack.callback(srv.stop)
        return srv


# ----------------------------------------------------------------------------- clients, no mirror

@test
def clients_without_a_mirror_each_fetch_from_the_origin(t):
    """The control: three client namespaces read one cold model at once through their own
    mounts; each gets the right bytes, and the origin sends the model once per client."""
    with Team(t, [("shared", 8 * MiB)]) as team:
        b = team.blob("shared")
        mounts = [team.mount(c) for c in team.clients]
        got = read_all_at_once([m.path(b.rel) for m in mounts])
        check_eq(sorted(set(got.values())), [b.sha256], "digests read by the clients")
        check_eq(team.origin_bytes(b), 3 * b.bytes, "body bytes the origin sent")


# ----------------------------------------------------------------------------- mirrors

def mirror_root(t, name, blobs, corrupt=()):
    """A directory laid out as a cache's blob store (blobs/sha256/<hex>) holding blobs; the
    blobs named in corrupt have one byte flipped in the middle."""
    root = os.path.join(t.dir, name)
    store = os.path.join(root, "blobs", "sha256")
    os.makedirs(store, exist_ok=True)
    for b in blobs:
        data = bytearray(b.data)
        if b.name in corrupt:
            data[len(data) // 2] ^= 0xFF
        with open(os.path.join(store, b.sha256), "wb") as f:
            f.write(data)
    return root


def mirror_warnings(m):
    """The daemon's warnings that speak of a mirror (a blob it could not use; the info line
    of a download says "fetched from the mirror" too)."""
    return [line for line in m.log().splitlines() if "warning:" in line and "mirror" in line]


def blob_uri(b):
    return "/blobs/sha256/" + b.sha256


def check_fallback(t, team, mirror_url, blobs, why, reason, names_url=True, unreachable=False):
    """One client with mirror_url reads every blob: right bytes, the origin sent each
    blob's bytes once, and the log has one warning per blob about the mirror, with reason
    in it (and the mirror's address, if names_url). A mirror that cannot be reached is
    not asked again for a while: one warning, for the first blob, says so."""
    m = team.mount(team.clients[0], "mirror=" + mirror_url)
    for b in blobs:
        check_eq(sha256_file(m.path(b.rel)), b.sha256, "digest of %s read with %s" % (b.rel, why))
    for b in blobs:
        check_eq(team.origin_bytes(b), b.bytes, "origin body bytes of %s with %s" % (b.name, why))
    lines = mirror_warnings(m)
    t.note("mirror warnings:\n" + "\n".join(lines))
    where = mirror_url.split("://", 1)[1]
    if unreachable:
        check_eq(len(lines), 1, "warnings about the mirror (%s)" % why)
        check(blobs[0].rel in lines[0] and reason in lines[0] and where in lines[0]
              and "not asking that mirror for 60 s" in lines[0], "the warning: %s" % lines[0])
        return m
    check_eq(len(lines), len(blobs), "warnings about the mirror (%s)" % why)
    for b in blobs:
        mine = [line for line in lines if b.rel in line]
        check_eq(len(mine), 1, "warnings about the mirror for %s" % b.rel)
        check(reason in mine[0], "the warning for %s does not say %r" % (b.rel, reason))
        check(not names_url or where in mine[0], "the warning for %s does not name %s"
              % (b.rel, where))
    return m


@test
def three_clients_share_one_origin_download_through_a_mirror(t):
    """The mirror host pulls the model from the origin into its cache (omnihub pull) and
    serves that cache with nginx; three clients then read the cold model at once through
    their mounts with -o mirror=: all get the right bytes, the origin sent the model's
    bytes once in total (the mirror's fill), and the mirror sent them once per client."""
    with Team(t, [("shared", 16 * MiB)]) as team:
        b = team.blob("shared")
        fill = os.path.join(t.dir, "mirror-cache")
        team.pull(team.mirror, fill, "onnx/" + b.dir)
        check_eq(sha256_file(os.path.join(fill, "blobs", "sha256", b.sha256)), b.sha256,
                 "the mirror's filled blob")
        check_eq(team.origin_bytes(b), b.bytes, "origin body bytes of the mirror's fill")
        web = team.nginx(fill)
        mounts = [team.mount(c, "mirror=" + web.url) for c in team.clients]
        got = read_all_at_once([m.path(b.rel) for m in mounts])
        check_eq(sorted(set(got.values())), [b.sha256], "digests read by the clients")
        check_eq(team.origin_bytes(b), b.bytes, "origin body bytes in all (the fill only)")
        served = [r for r in web.requests() if r[1] == blob_uri(b)]
        t.note("mirror requests: %r" % served)
        check(all(r[2] in (200, 206) for r in served), "mirror statuses: %r" % served)
        check_eq(sum(r[3] for r in served), 3 * b.bytes, "mirror body bytes (once per client)")
        for c in team.clients:
            check_eq(sha256_file(os.path.join(team.cache_of(c), "blobs", "sha256", b.sha256)),
                     b.sha256, "the blob in %s's cache" % c.role)


@test
def a_mirror_with_nothing_listening_falls_back_to_the_origin(t):
    """The mirror's address answers, but nothing listens on the port: each blob comes from
    the origin, right; one log line names the mirror, which the next blob does not ask."""
    with Team(t, [("one", 2 * MiB), ("two", 3 * MiB)], clients=1) as team:
        url = team.mirror.url(team.mirror.free_port())
        check_fallback(t, team, url, team.blobs, "a refused connection", "Failed to connect",
                       unreachable=True)


@test
def an_unreachable_mirror_falls_back_to_the_origin(t):
    """The mirror host is unplugged (no answer at all on its address): each blob comes
    from the origin, right; one log line names the mirror, which the next blob does not
    ask."""
    with Team(t, [("one", 2 * MiB), ("two", 3 * MiB)], clients=1) as team:
        web = team.nginx(mirror_root(t, "mirror-root", team.blobs))
        team.mirror.disconnect()
        check_fallback(t, team, web.url, team.blobs, "an unreachable mirror", "Failed to connect",
                       unreachable=True)
        check_eq(web.requests(), [], "requests that reached the unplugged mirror")


@test
def a_mirror_serving_a_corrupted_blob_falls_back_to_the_origin(t):
    """The mirror serves a copy with one byte flipped: the digest check refuses it, the
    blob comes from the origin, right, with one log line naming the mirror; the client's
    cache holds the right bytes."""
    with Team(t, [("bad", 6 * MiB)], clients=1) as team:
        b = team.blob("bad")
        web = team.nginx(mirror_root(t, "mirror-root", team.blobs, corrupt={"bad"}))
        check_fallback(t, team, web.url, [b], "a corrupted mirror copy", "mismatch")
        check(any(r[1] == blob_uri(b) and r[3] > 0 for r in web.requests()),
              "the client never fetched the corrupted copy from the mirror")
        check_eq(sha256_file(os.path.join(team.cache_of(team.clients[0]), "blobs", "sha256",
                                          b.sha256)), b.sha256, "the client's cached blob")


@test
def a_mirror_without_the_blob_falls_back_to_the_origin(t):
    """The mirror answers 404 for a blob it does not have: the blob comes from the origin,
    right; a blob it has comes from the mirror alone."""
    with Team(t, [("has", 2 * MiB), ("lacks", 3 * MiB)], clients=1) as team:
        has, lacks = team.blob("has"), team.blob("lacks")
        web = team.nginx(mirror_root(t, "mirror-root", [has]))
        m = team.mount(team.clients[0], "mirror=" + web.url)
        for b in (has, lacks):
            check_eq(sha256_file(m.path(b.rel)), b.sha256, "digest of %s" % b.name)
        check_eq(team.origin_bytes(lacks), lacks.bytes, "origin body bytes of the missing blob")
        check_eq(team.origin_bytes(has), 0, "origin body bytes of the mirrored blob")
        statuses = {r[1]: r[2] for r in web.requests()}
        check_eq(statuses.get(blob_uri(lacks)), 404, "the mirror's answer for the missing blob")
        lines = mirror_warnings(m)
        check_eq(len(lines), 1, "warnings about the mirror")
        check(lacks.rel in lines[0] and "404" in lines[0], "the warning: %r" % lines[0])


def status_rows(m):
    """{path: (state, source)} of the transfer lines of <mnt>/.omnihub/status (a line: state,
    source, done, total, %, speed, ETA, connections, waiters, two spaces, the path)."""
    with open(m.path(".omnihub", "status"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    # The hubs' table comes first; the transfers' header follows it.
    at = next((i for i, line in enumerate(lines) if line.split()[:2] == ["STATE", "SOURCE"]),
              None)
    check(at is not None, "no transfers' header in the status: %r" % lines)
    rows = {}
    for line in lines[at + 1:]:
        row = STATUS_ROW.match(line)
        check(row is not None, "a status line does not parse: %r" % line)
        rows[row.group(3)] = (row.group(1), row.group(2))
    return rows


def metric(m, name, source):
    with open(m.path(".omnihub", "metrics"), encoding="utf-8") as f:
        for line in f:
            if line.startswith('%s{source="%s"} ' % (name, source)):
                return int(line.split()[1])
    raise AssertionError("no %s for %s in metrics" % (name, source))


@test
def status_and_metrics_say_what_came_from_the_mirror(t):
    """A slow mirror (nginx limit_rate) has one blob, not the other: while the first comes
    in, status shows its transfer with source "mirror"; once both are read it shows the
    mirrored one "mirror" and the other "hub", and metrics count each one's bytes there."""
    with Team(t, [("mirrored", 6 * MiB), ("origin", 2 * MiB)], clients=1) as team:
        mirrored, origin = team.blob("mirrored"), team.blob("origin")
        web = team.nginx(mirror_root(t, "mirror-root", [mirrored]), rate=2 * MiB)
        m = team.mount(team.clients[0], "mirror=" + web.url)
        result = {}
        reader = threading.Thread(target=lambda: result.update(
            got=read_all_at_once([m.path(mirrored.rel)])))
        reader.start()
        try:
            deadline = time.monotonic() + WAIT
            seen = None
            while seen is None and reader.is_alive():
                seen = status_rows(m).get(mirrored.rel)
                check(time.monotonic() < deadline, "the transfer never showed in status")
                time.sleep(0.05)
            t.note("status row during the transfer: %r" % (seen,))
        finally:
            reader.join(WAIT)
        check(seen is not None, "the read ended before status showed the transfer")
        check(seen[0] not in ("done", "failed"), "the first status row: %r" % (seen,))
        check_eq(seen[1], "mirror", "the source of the running transfer")
        check_eq(result.get("got"), {m.path(mirrored.rel): mirrored.sha256}, "the mirrored read")
        check_eq(sha256_file(m.path(origin.rel)), origin.sha256, "the other read")
        rows = status_rows(m)
        check_eq(rows.get(mirrored.rel, (None, None))[1], "mirror", "source of the mirrored blob")
        check_eq(rows.get(origin.rel, (None, None))[1], "hub", "source of the other blob")
        check_eq(metric(m, "omnihub_source_bytes_total", "mirror"), mirrored.bytes,
                 "bytes from the mirror in metrics")
        check_eq(metric(m, "omnihub_source_bytes_total", "hub"), origin.bytes,
                 "bytes from the hub in metrics")
        check_eq(team.origin_bytes(mirrored), 0, "origin body bytes of the mirrored blob")


@test
def no_credentials_reach_the_mirror(t):
    """A client with HF_TOKEN reads a Hugging Face repo through a mirror that has some of its
    blobs (the LFS ones, by sha256) and not the others: every Hub request carries the token,
    no mirror request carries an Authorization header, and the bytes are right."""
    with Team(t, clients=1, hf=True) as team:
        files = fx.files_at(fx.find_repo(team.desc, fx.SHARDED_REPO, "model"), "main")
        lfs = [f for f in files.values() if f.get("lfs")]
        check(lfs and len(lfs) < len(files), "the repo has LFS and plain files")
        root = os.path.join(t.dir, "mirror-root")
        os.makedirs(os.path.join(root, "blobs", "sha256"))
        for f in lfs:
            shutil.copyfile(os.path.join(team.fixture_dir, "blobs", f["sha256"]),
                            os.path.join(root, "blobs", "sha256", f["sha256"]))
        web = team.nginx(root)
        m = team.mount(team.clients[0], "mirror=" + web.url)
        repo = m.path("huggingface", *fx.SHARDED_REPO.split("/"))
        for path, f in sorted(files.items()):
            check_eq(sha256_file(os.path.join(repo, path)), f["sha256"], path)
        team.srv.wait_idle()
        hub = [r for r in team.srv.requests(host="hub") if r["kind"] in ("api", "resolve")]
        check(hub, "no request reached the Hub")
        check_eq([r["path"] for r in hub if not r["token_ok"]], [], "Hub requests without the token")
        served = web.requests()
        t.note("mirror requests: %r" % served)
        check_eq(sorted({r[1] for r in served if r[0] == "GET" and r[2] in (200, 206)}),
                 sorted("/blobs/sha256/" + f["sha256"] for f in lfs), "blobs the mirror served")
        check_eq([r for r in served if r[4] != "-"], [], "mirror requests with Authorization")
        check_eq(team.srv.requests(host="cdn"), [], "CDN requests (the mirror had every LFS blob)")


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
            wait_for(lambda: open("/proc/%d/comm" % sleeper.pid).read().strip() == "sleep", WAIT,
                     "popen()'s sleep (nsenter first, then sleep)", 0.01)
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
