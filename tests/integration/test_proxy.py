#!/usr/bin/env python3
"""Integration tests of scripts/proxy/ (Squid + store-ID helper, nginx proxy_cache + slice) between clients and a hub that signs its CDN URLs.
Not for the mirrors (test_team.py), one machine's transfers (test_transfers.py), or speed.
"""

# Each test builds its own network of namespaces (tests/integration/netns.py): an origin host
# serving the hub imitation of tests/fixtures/blob_server.py over plain HTTP (/hub/ 302s to
# /files/...?sig=<new token per request>; a proxy caches only what it sees, so no TLS), a
# proxy host running Squid or nginx with the shipped config (only its site lines replaced:
# addresses, ports, paths under the test's directory), and two client hosts, each with its
# own omnihub-fuse and cache. Client 1 reads the file cold, client 2 then reads it again:
# right bytes both times, and for client 2 the proxy's log says hit and the origin's body
# bytes for the file do not grow. Run by `make check`, or by hand (as root):
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_proxy.py [PART]

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, NetTeam, check, check_eq, run, settle,  # noqa: E402
                           sha256_file, test)

from blob_server import FILES_PREFIX  # noqa: E402
from zoo_server import nginx_temp_paths  # noqa: E402

SQUID = "/usr/sbin/squid"
NGINX = "/usr/sbin/nginx"
PROXY_DIR = os.path.join(SRCDIR, "scripts", "proxy")
MiB = 1 << 20
PIECE = 4 * MiB  # the transfers' piece size, and nginx's slice size
SIZE = 6 * PIECE + 12345  # 7 pieces, the last one short
WAIT = 60.0  # seconds: generous bound on anything that should finish
STOP_WAIT = 10.0  # seconds a proxy gets after SIGTERM before its process group is killed


# ----------------------------------------------------------------------------- fixture

class Shared:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        # Squid drops root for the "proxy" user, which must reach its files in the test's
        # directory: let others through (not read) the run's 0700 directory.
        os.chmod(run_dir, 0o711)


@contextlib.contextmanager
def shared_setup(run_dir):
    yield Shared(run_dir)


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError:
        return "(no %s)" % path


def site_config(template, replacements):
    """The shipped config with its site-specific text replaced; each old text must be there,
    so that a config that drifts from the test fails here rather than testing something else."""
    with open(os.path.join(PROXY_DIR, template)) as f:
        text = f.read()
    for old, new in replacements:
        check(old in text, "%s no longer contains %r" % (template, old))
        text = text.replace(old, new)
    return text


def regex_escape_url(url):
    return url.replace(".", "\\.")


class Proxy:
    """A proxy process on a host, in a process group of its own so that stop() ends it and
    every helper it started, even when the test fails."""

    name = "proxy"

    def __init__(self, host, directory):
        self.host = host
        self.dir = directory
        self.port = None
        self.proc = None
        self.stdio_log = os.path.join(directory, "stdio.log")
        os.makedirs(directory, exist_ok=True)

    @property
    def url(self):
        return self.host.url(self.port)

    def _spawn(self, argv):
        check(os.access(argv[0], os.X_OK), "%s is not installed (scripts/install-deps)" % argv[0])
        with open(self.stdio_log, "ab") as log:
            self.proc = self.host.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True)
        self.host.wait_listening(self.port, self.proc, self.name, self.stdio_log, WAIT)

    def stop(self):
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group is the leader's pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (helpers, workers, a leader that ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Squid(Proxy):
    """Squid with scripts/proxy/squid.conf and squid-store-id; its cache, logs and pid file
    under directory. cdn_base: the origin's URL whose /files/ the config treats as a CDN."""

    name = "squid"

    def __init__(self, host, directory, cdn_base):
        super().__init__(host, directory)
        self.cdn_base = cdn_base
        self.conf = os.path.join(directory, "squid.conf")
        self.access_log = os.path.join(directory, "access.log")
        self.cache_log = os.path.join(directory, "cache.log")

    def start(self):
        self.port = self.host.free_port()
        helper = os.path.join(self.dir, "squid-store-id")
        shutil.copy(os.path.join(PROXY_DIR, "squid-store-id"), helper)
        cdn = regex_escape_url(self.cdn_base)
        text = site_config("squid.conf", [
            ("http_port 3128", "http_port %s:%d" % (self.host.ip, self.port)),
            ("cache_dir aufs /var/spool/squid 500000 16 256",
             "cache_dir aufs %s 512 4 16" % os.path.join(self.dir, "spool")),
            ("cache_mem 1024 MB", "cache_mem 64 MB"),
            # Models are larger than memory: the file is served from disk, as they are.
            ("maximum_object_size_in_memory 64 MB", "maximum_object_size_in_memory 1 MB"),
            ("access_log stdio:/var/log/squid/access.log", "access_log stdio:" + self.access_log),
            ("cache_log /var/log/squid/cache.log", "cache_log " + self.cache_log),
            ("pid_filename /run/squid.pid", "pid_filename " + os.path.join(self.dir, "squid.pid")),
            ("coredump_dir /var/spool/squid", "coredump_dir " + self.dir),
            ("store_id_program /usr/local/lib/omnihub/squid-store-id",
             "store_id_program /usr/bin/python3 %s --match ^%s/files/" % (helper, cdn)),
            ("http://cdn\\.example\\.invalid", cdn),
        ])
        # The namespace's host name resolves nowhere; Squid wants one for its error pages.
        # The log keeps the signatures, so the test sees that each client had its own.
        text += "visible_hostname omnihub-test-proxy\nstrip_query_terms off\n"
        with open(self.conf, "w") as f:
            f.write(text)
        proxy_user = pwd.getpwnam("proxy")
        for dirpath, dirnames, filenames in os.walk(self.dir):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
                os.chown(name, proxy_user.pw_uid, proxy_user.pw_gid)
        check(os.access(SQUID, os.X_OK), "%s is not installed (scripts/install-deps)" % SQUID)
        res = self.host.run([SQUID, "-N", "-z", "-f", self.conf], capture_output=True,
                            text=True, timeout=WAIT)
        check(res.returncode == 0, "squid -z failed (%d): %s%s\n%s" % (
            res.returncode, res.stdout, res.stderr, tail(self.cache_log)))
        self._spawn([SQUID, "-N", "-d1", "-f", self.conf])

    def records(self):
        """access.log as (client, code, status, bytes, method, url) tuples (Squid's native
        format: time elapsed client code/status bytes method URL ...)."""
        out = []
        try:
            with open(self.access_log, errors="replace") as f:
                for line in f:
                    w = line.split()
                    if len(w) >= 7 and "/" in w[3]:
                        code, status = w[3].split("/", 1)
                        out.append((w[2], code, status, int(w[4]), w[5], w[6]))
        except FileNotFoundError:
            pass
        return out


class NginxCache(Proxy):
    """nginx with scripts/proxy/nginx-proxy-cache.conf in front of origin_base as the hub;
    its cache, logs, pid and temporary files under directory."""

    name = "nginx"

    def __init__(self, host, directory, origin_base):
        super().__init__(host, directory)
        self.origin_base = origin_base
        self.conf = os.path.join(directory, "nginx.conf")
        self.access_log = os.path.join(directory, "access.log")

    def start(self):
        self.port = self.host.free_port()
        origin_hostport = self.origin_base.split("://", 1)[1]
        site = site_config("nginx-proxy-cache.conf", [
            ("listen 8080;", "listen %s:%d;" % (self.host.ip, self.port)),
            ("/var/cache/nginx/omnihub", os.path.join(self.dir, "cache")),
            ("keys_zone=omnihub:1g", "keys_zone=omnihub:8m"),
            ("/var/log/nginx/omnihub-cache.log", self.access_log),
            ("proxy_pass https://huggingface.co;", "proxy_pass %s;" % self.origin_base),
            ("cdn.example.invalid 1;", "%s 1;" % origin_hostport),
        ])
        site_path = os.path.join(self.dir, "site.conf")
        with open(site_path, "w") as f:
            f.write(site)
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("""\
# Written by tests/integration/test_proxy.py: the shipped site config in a main config.
user root;
worker_processes 1;
daemon off;
pid "{d}/nginx.pid";
lock_file "{d}/nginx.lock";
error_log "{d}/error.log" info;
events {{ worker_connections 256; }}
http {{
{temps}    include "{site}";
}}
""".format(d=self.dir, temps=nginx_temp_paths(tmp), site=site_path))
        self._spawn([NGINX, "-e", os.path.join(self.dir, "error.log"), "-c", self.conf])

    def records(self):
        """access.log (log_format omnihub_cache, with log_subrequest on) as (client, method,
        uri, status, bytes, cache status, slice) tuples; slice is "-" on a client request's
        own line, the slice's range on the line of a slice subrequest."""
        out = []
        line_re = re.compile(r'^(\S+) \[[^]]*\] "(\S+) (\S+) [^"]*" (\d+) (\d+) cache=(\S*) '
                             r'range="[^"]*" slice="([^"]*)"')
        try:
            with open(self.access_log, errors="replace") as f:
                for line in f:
                    m = line_re.match(line)
                    if m:
                        g = m.groups()
                        out.append((g[0], g[1], g[2], g[3], int(g[4]), g[5], g[6]))
        except FileNotFoundError:
            pass
        return out


def settled(read_records):
    """The proxy's log once it stopped growing (a line is written as a response ends)."""
    return settle(read_records, quiet=0.3, limit=10.0)


@contextlib.contextmanager
def team(t):
    """A network with an origin (plain-HTTP hub imitation serving one SIZE-byte model), a
    proxy host and two client hosts; yields (net, origin server, blob, proxy host, clients)."""
    with NetTeam(t, ["proxy", "client1", "client2"], [("big", SIZE)], plain=True) as tm:
        yield tm.net, tm.srv, tm.blobs[0], tm.hosts[0], tm.hosts[1:]


def client_mount(t, host, index, options, env=None):
    cache = os.path.join(t.dir, "cache-%d" % index)
    os.makedirs(cache, exist_ok=True)
    return t.mount(["cache=" + cache] + options, env=env, prefix=host.prefix(),
                   mountpoint=os.path.join(t.dir, "mnt-%d" % index))


def origin_bytes(srv, blob):
    """Body bytes the origin sent for the file (its CDN route), once nothing is in flight."""
    check(srv.wait_idle(FILES_PREFIX, timeout=WAIT), "the origin still sends after %.0f s" % WAIT)
    return srv.bytes_sent(FILES_PREFIX + blob.model_path)


def read_and_check(m, blob, who):
    check_eq(sha256_file(m.path(blob.rel)), blob.sha256, "sha256 of the file read by " + who)


def proxy_bytes(m):
    """What the daemon's metrics say it downloaded through a proxy."""
    with open(m.path(".omnihub/metrics"), encoding="utf-8") as f:
        found = re.search(r'^omnihub_source_bytes_total\{source="proxy"\} (\d+)$', f.read(), re.M)
    check(found, "no proxy line in %s" % m.path(".omnihub/metrics"))
    return int(found.group(1))


def read_at_once(mounts, blob):
    """Every mount reads the file at the same moment (a thread each); checks the bytes."""
    start = threading.Barrier(len(mounts))
    results = [None] * len(mounts)

    def reader(i, m):
        try:
            start.wait(WAIT)
            results[i] = sha256_file(m.path(blob.rel))
        except Exception as e:  # reported below, in the test's thread
            results[i] = e

    threads = [threading.Thread(target=reader, args=(i, m), daemon=True)
               for i, m in enumerate(mounts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(2 * WAIT)
    for i, got in enumerate(results):
        check_eq(got, blob.sha256, "sha256 of the file read by client %d" % (i + 1))


def counts(words):
    """"A x2, B x1" for the words' multiset."""
    found = {}
    for w in words:
        found[w] = found.get(w, 0) + 1
    return ", ".join("%s x%d" % kv for kv in sorted(found.items())) or "none"


def report(t, text):
    """A figure worth seeing even when the test passes (TAP diagnostics)."""
    print("# %s: %s" % (t.name, text))
    sys.stdout.flush()


# ----------------------------------------------------------------------------- tests

@test
def squid_store_id_helper(t):
    """squid-store-id answers Squid's protocol: with and without channel IDs, OK and the URL
    without its query for the hubs' CDNs and --match URLs, ERR for the rest."""
    lines = ["0 https://cdn-lfs.hf.co/repos/ab/cd/%s?Expires=1&Signature=x&Key-Pair-Id=k "
             "10.0.0.5/- - GET" % ("e" * 64),
             "1 https://cdn-lfs-us-1.hf.co/repos/ab/cd/ff?X-Amz-Signature=y",
             "2 https://cas-bridge.xethub.hf.co/xet-bridge-us/6543/%s?X-Amz-Signature=z"
             % ("a" * 64),
             "3 https://huggingface.co/api/models/x?full=1",
             "4 http://10.64.0.2:8080/files/a/b.onnx?sig=123",
             "5 http://10.64.0.2:8080/hub/a/b.onnx",
             "https://cdn-lfs.huggingface.co/x/y?Signature=1",
             "http://evil.example/cdn-lfs.hf.co/x?y"]
    res = subprocess.run(["/usr/bin/python3", os.path.join(PROXY_DIR, "squid-store-id"),
                          "--match", r"^http://10\.64\.0\.2:8080/files/"],
                         input="".join(l + "\n" for l in lines), capture_output=True, text=True,
                         timeout=WAIT)
    check_eq(res.returncode, 0, "exit status (stderr: %s)" % res.stderr)
    check_eq(res.stdout.splitlines(), [
        "0 OK store-id=https://cdn-lfs.hf.co/repos/ab/cd/%s" % ("e" * 64),
        "1 OK store-id=https://cdn-lfs-us-1.hf.co/repos/ab/cd/ff",
        "2 OK store-id=https://cas-bridge.xethub.hf.co/xet-bridge-us/6543/%s" % ("a" * 64),
        "3 ERR",
        "4 OK store-id=http://10.64.0.2:8080/files/a/b.onnx",
        "5 ERR",
        "OK store-id=https://cdn-lfs.huggingface.co/x/y",
        "ERR"], "answers")


@test
def squid_second_client_hits(t):
    """Two clients through Squid (-o proxy=): client 1's cold read fetches the file from the
    origin once (signed URL, 4 MiB ranged pieces over several connections), client 2's read
    of the same file, under a signature of its own, is served from Squid's cache (from disk,
    as large models are): right bytes, hits in access.log, no origin body bytes."""
    with team(t) as (net, srv, blob, proxy_host, clients):
        with Squid(proxy_host, os.path.join(t.dir, "squid"), srv.base_url) as squid:
            options = ["onnx_index_url=" + srv.manifest_url, "onnx_url=" + srv.hub_url,
                       "proxy=" + squid.url]
            before = origin_bytes(srv, blob)
            with client_mount(t, clients[0], 1, options) as m1:
                read_and_check(m1, blob, "client 1")
                check_eq(proxy_bytes(m1), SIZE, "client 1's bytes through the proxy (metrics)")
            first = origin_bytes(srv, blob) - before
            sigs_before = len(srv.requests("/hub/" + blob.model_path))
            with client_mount(t, clients[1], 2, options) as m2:
                read_and_check(m2, blob, "client 2")
                check_eq(proxy_bytes(m2), SIZE, "client 2's bytes through the proxy (metrics)")
            second = origin_bytes(srv, blob) - before - first
            records = settled(squid.records)
        t.note("squid access.log:\n" + "\n".join(" ".join(map(str, r)) for r in records))
        files = [r for r in records if FILES_PREFIX in r[5]]
        c1 = [r for r in files if r[0] == clients[0].ip]
        c2 = [r for r in files if r[0] == clients[1].ip]
        report(t, "origin body bytes: client 1 %d, client 2 %d (file %d), in %d GETs of "
               "/files/; squid: client 1 %s, client 2 %s"
               % (first, second, SIZE, len(srv.file_requests(blob.model_path)),
                  counts(r[1] for r in c1), counts(r[1] for r in c2)))
        check(len(srv.requests("/hub/" + blob.model_path)) > sigs_before,
              "client 2 never asked the hub (so it got no signature of its own)")
        check(first >= SIZE, "the origin sent %d bytes for client 1, less than the file" % first)
        check(first <= 2 * SIZE, "the origin sent %d bytes for client 1: more than twice the "
              "file" % first)
        check(c1 and c2, "no /files/ requests of both clients in Squid's access.log")
        sigs = [set(r[5].split("sig=", 1)[-1] for r in c) for c in (c1, c2)]
        check(all(len(s) == 1 and "?sig=" in c[0][5] for s, c in zip(sigs, (c1, c2)))
              and sigs[0] != sigs[1],
              "each client's pieces under one signature of its own: %s" % sigs)
        misses = [r for r in c2 if "HIT" not in r[1]]
        check(not misses, "client 2's requests that were not hits: %s" % misses)
        check_eq(second, 0, "origin body bytes during client 2's read")


@test
def squid_cold_clients_at_once(t):
    """Two clients read the same cold file through Squid at the same moment, each under its
    own signature: the store ID makes them one object and collapsed forwarding sends one
    request to the origin, so its body bytes for the file are the file's size, once."""
    with team(t) as (net, srv, blob, proxy_host, clients):
        with Squid(proxy_host, os.path.join(t.dir, "squid"), srv.base_url) as squid:
            options = ["onnx_index_url=" + srv.manifest_url, "onnx_url=" + srv.hub_url]
            env = {"http_proxy": squid.url}  # the variable, where the test above uses -o proxy
            with client_mount(t, clients[0], 1, options, env) as m1, \
                    client_mount(t, clients[1], 2, options, env) as m2:
                read_at_once([m1, m2], blob)
                for i, m in enumerate((m1, m2), 1):
                    check_eq(proxy_bytes(m), SIZE, "client %d's bytes through the proxy" % i)
            total = origin_bytes(srv, blob)
            records = settled(squid.records)
        t.note("squid access.log:\n" + "\n".join(" ".join(map(str, r)) for r in records))
        files = [r for r in records if FILES_PREFIX in r[5]]
        report(t, "origin body bytes for both clients %d (file %d), in %d GETs of /files/; "
               "squid: client 1 %s, client 2 %s"
               % (total, SIZE, len(srv.file_requests(blob.model_path)),
                  counts(r[1] for r in files if r[0] == clients[0].ip),
                  counts(r[1] for r in files if r[0] == clients[1].ip)))
        check_eq(len(srv.requests("/hub/" + blob.model_path)), 2, "hub requests (a signature "
                 "each)")
        check_eq(total, SIZE, "origin body bytes for two clients at once")


@test
def nginx_second_client_hits(t):
    """Two clients with nginx's proxy_cache as their hub endpoint: the hub's redirects come
    back through nginx, whose slices (keyed on the path, not the signature) are fetched once;
    client 2's pieces are all HITs and the origin sends no more bytes."""
    with team(t) as (net, srv, blob, proxy_host, clients):
        with NginxCache(proxy_host, os.path.join(t.dir, "nginx"), srv.base_url) as ngx:
            options = ["onnx_index_url=%s/manifest.json" % ngx.url, "onnx_url=%s/hub/" % ngx.url]
            before = origin_bytes(srv, blob)
            with client_mount(t, clients[0], 1, options) as m1:
                read_and_check(m1, blob, "client 1")
            first = origin_bytes(srv, blob) - before
            with client_mount(t, clients[1], 2, options) as m2:
                read_and_check(m2, blob, "client 2")
            second = origin_bytes(srv, blob) - before - first
            records = settled(ngx.records)
        t.note("nginx access.log:\n" + "\n".join(" ".join(map(str, r)) for r in records))
        t.note("origin /files/ GETs: " + "; ".join(
            "%s %s %s" % (r["range"], r["status"], r["bytes"])
            for r in srv.file_requests(blob.model_path)))
        cdn = [r for r in records if r[2].startswith("/_cdn/")]
        c1 = [r for r in cdn if r[0] == clients[0].ip]
        c2 = [r for r in cdn if r[0] == clients[1].ip]
        report(t, "origin body bytes: client 1 %d, client 2 %d (file %d), in %d GETs of "
               "/files/; nginx: client 1 %s, client 2 %s"
               % (first, second, SIZE, len(srv.file_requests(blob.model_path)),
                  counts(r[5] for r in c1), counts(r[5] for r in c2)))
        check(c1 and c2, "no /_cdn/ requests of both clients in nginx's log")
        check_eq(first, SIZE, "origin body bytes for client 1 (each slice once)")
        # A MISS line is a slice fetched from the origin: the first request's own, or a
        # slice subrequest's (the pieces after it send If-Range, and nginx's slice module
        # then begins at slice 0, a HIT, and fetches the piece's slice in a subrequest).
        check_eq(len([r for r in c1 if r[5] == "MISS"]), (SIZE + PIECE - 1) // PIECE,
                 "MISS lines of client 1 (one per slice)")
        check_eq(sorted(set(r[5] for r in c2)), ["HIT"], "cache status of client 2's pieces")
        check_eq(second, 0, "origin body bytes during client 2's read")



@test
def nginx_cold_clients_at_once(t):
    """Two clients read the same cold file through nginx at the same moment: each slice is
    fetched from the origin once (proxy_cache_lock), so the origin sends the file's size."""
    with team(t) as (net, srv, blob, proxy_host, clients):
        with NginxCache(proxy_host, os.path.join(t.dir, "nginx"), srv.base_url) as ngx:
            options = ["onnx_index_url=%s/manifest.json" % ngx.url, "onnx_url=%s/hub/" % ngx.url]
            with client_mount(t, clients[0], 1, options) as m1, \
                    client_mount(t, clients[1], 2, options) as m2:
                read_at_once([m1, m2], blob)
            total = origin_bytes(srv, blob)
            records = settled(ngx.records)
        t.note("nginx access.log:\n" + "\n".join(" ".join(map(str, r)) for r in records))
        cdn = [r for r in records if r[2].startswith("/_cdn/")]
        report(t, "origin body bytes for both clients %d (file %d), in %d GETs of /files/; "
               "nginx: client 1 %s, client 2 %s"
               % (total, SIZE, len(srv.file_requests(blob.model_path)),
                  counts(r[5] for r in cdn if r[0] == clients[0].ip),
                  counts(r[5] for r in cdn if r[0] == clients[1].ip)))
        check_eq(total, SIZE, "origin body bytes for two clients at once")
        check_eq(len(srv.file_requests(blob.model_path)), (SIZE + PIECE - 1) // PIECE,
                 "origin GETs of the file (one per slice)")


if __name__ == "__main__":
    run(shared_setup)
