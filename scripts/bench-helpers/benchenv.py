"""benchenv: what scripts/bench stands on: a rate-limited HTTPS hub (nginx on 127.0.0.1),
generated files and manifests, mounts of omnihub-fuse and of rclone, and clean-up that
runs however the bench ends. Not for: measuring or printing (scripts/bench does that).
"""

import atexit
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "fixtures"))
from zoo_server import (_die_with_parent, _free_ports, _terminate_pid,  # noqa: E402
                        make_tls)

NGINX = "/usr/sbin/nginx"
MOUNT_TIMEOUT = 60.0
UNMOUNT_TIMEOUT = 30.0
OPSET = 13
# Words a daemon's log uses when it refuses an option it does not know (libfuse says
# "fuse: unknown option(s): `-o stream'").
UNSUPPORTED_WORDS = ("unknown option", "unsupported option", "invalid option")


# ------------------------------------------------------------------------ clean-up

_cleanups = []


def on_exit(fn):
    """Register fn to run at exit (last registered, first run); returns a handle for done()."""
    _cleanups.append(fn)
    return fn


def done(fn):
    """fn ran by itself: forget it."""
    if fn in _cleanups:
        _cleanups.remove(fn)


def run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:  # keep cleaning up whatever one step says
            print("bench: clean-up step failed: %s" % exc, file=sys.stderr)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def install_exit_handlers():
    """SIGTERM/SIGHUP end the bench through the same finally/atexit path as Ctrl-C."""
    atexit.register(run_cleanups)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)


# ------------------------------------------------------------------------ the machine

def drop_page_cache():
    """True if the kernel's page cache could be dropped (needs root, not in every container)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def prime(paths):
    """Read files into the page cache: the hub's side stays warm, as a CDN edge serves from RAM."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass


def vm_hwm_bytes(pid):
    """Peak resident memory of a process (VmHWM), or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def unmount(mnt):
    """Unmount, retrying while the kernel says busy; lazily as a last resort."""
    deadline = time.monotonic() + 10
    while os.path.ismount(mnt):
        res = subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
        if res.returncode == 0:
            break
        if time.monotonic() > deadline:
            subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
            break
        time.sleep(0.2)


def stop_process(proc, timeout=UNMOUNT_TIMEOUT):
    """Wait for proc to exit after its unmount; SIGTERM, then SIGKILL if it lingers."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _terminate_pid(proc.pid, reap=proc.poll)
        proc.wait()


# ------------------------------------------------------------------------ data

def write_random(path, nbytes):
    """Write nbytes of random bytes to path; return their sha256 (hex)."""
    digest = hashlib.sha256()
    chunk = 16 << 20
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        left = nbytes
        while left:
            block = os.urandom(min(chunk, left))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def manifest_entry(name, model_path, sha, size, opset=OPSET):
    """One well-formed entry in the ONNX_HUB_MANIFEST.json format (see make_zoo.py)."""
    return {"model": name, "model_path": model_path, "onnx_version": "1.8",
            "opset_version": opset,
            "metadata": {"model_sha": sha, "model_bytes": size,
                         "tags": ["vision", "classification", "bench"],
                         "io_ports": {"inputs": [], "outputs": []}}}


def write_manifest(path, entries):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")


def fake_manifest(count):
    """count models with nothing behind them, for listing: names, paths, sizes, digests vary."""
    entries = []
    for i in range(count):
        sha = hashlib.sha256(b"model %d" % i).hexdigest()
        entries.append(manifest_entry("listing-%05d" % i,
                                      "validated/vision/listing/model/listing-%05d-%d.onnx"
                                      % (i, 7 + i % 12), sha, 1000 + i * 4099, 7 + i % 12))
    return entries


# ------------------------------------------------------------------------ the hub

def nginx_head(run_dir):
    """The start of an nginx.conf of ours, up to inside `http {`: its pid, logs and temp
    directories under run_dir (log/ and tmp/ must exist)."""
    tmp = os.path.join(run_dir, "tmp")
    return f"""\
# Written by scripts/bench-helpers/benchenv.py; regenerated at every start.
user root;
worker_processes auto;
daemon off;
pid "{run_dir}/nginx.pid";
error_log "{run_dir}/log/error.log" notice;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path "{tmp}/body";
    proxy_temp_path "{tmp}/proxy";
    fastcgi_temp_path "{tmp}/fastcgi";
    uwsgi_temp_path "{tmp}/uwsgi";
    scgi_temp_path "{tmp}/scgi";
"""


class Hub:
    """nginx on 127.0.0.1 over HTTPS (a throw-away CA), one port:
        /index/<name>.json   manifests
        /hub/<path>          302 to /cdn/<path>, as the zoo's hub redirects to its CDN
        /cdn/<path>          the files: limit_rate per connection, Range, ETag, autoindex
    For the team row: address and prefix (a netns host's address and prefix()) put it in
    another network namespace; www serves another hub's files; count_bytes logs requests
    so that cdn_bytes() can tell how many body bytes the CDN sent.
    """

    def __init__(self, work, rate, name="hub", address="127.0.0.1", prefix=(), www=None,
                 count_bytes=False):
        self.run_dir = os.path.join(work, name)
        self.www = www or os.path.join(self.run_dir, "www")
        self.rate = rate
        self.address = address
        self.prefix = list(prefix)
        self.access_log = os.path.join(self.run_dir, "log", "access.log") if count_bytes else None
        self.proc = None
        self.port = None
        self.cacert = None
        os.makedirs(os.path.join(self.run_dir, "log"), exist_ok=True)
        os.makedirs(os.path.join(self.run_dir, "tmp"), exist_ok=True)

    def path(self, area, rel):
        return os.path.join(self.www, area, rel)

    def url(self, area, rel=""):
        return "https://%s:%d/%s/%s" % (self.address, self.port, area, rel)

    def cdn_bytes(self):
        """Body bytes of /cdn/ responses so far (needs count_bytes). nginx writes a line
        when a response ends, a moment after the client has its last byte."""
        time.sleep(0.5)
        total = 0
        with open(self.access_log) as f:
            for line in f:
                uri, sent = line.split()
                if uri.startswith("/cdn/"):
                    total += int(sent)
        return total

    def _conf(self):
        d = self.run_dir
        access = ('log_format bytes "$uri $body_bytes_sent";\n    access_log "%s" bytes;'
                  % self.access_log if self.access_log else "access_log off;")
        return nginx_head(d) + f"""\
    ssl_certificate "{d}/tls/server.pem";
    ssl_certificate_key "{d}/tls/server.key";
    ssl_protocols TLSv1.2 TLSv1.3;
    sendfile on;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    {access}
    default_type application/octet-stream;
    server {{
        listen {self.address}:{self.port} ssl;
        server_name {self.address};
        root "{self.www}";
        location /index/ {{ }}
        location ~ ^/hub/(?<rel>.+)$ {{
            return 302 https://{self.address}:{self.port}/cdn/$rel;
        }}
        location /cdn/ {{
            limit_rate {self.rate};
            autoindex on;
        }}
        location / {{ return 404; }}
    }}
}}
"""

    def start(self):
        self.cacert = make_tls(os.path.join(self.run_dir, "tls"),
                               [] if self.address == "127.0.0.1" else [self.address])
        conf = os.path.join(self.run_dir, "nginx.conf")
        for _ in range(5):
            self.port = _free_ports(1)[0]
            with open(conf, "w") as f:
                f.write(self._conf())
            err = open(os.path.join(self.run_dir, "log", "stderr.log"), "w")
            self.proc = subprocess.Popen(self.prefix + [NGINX, "-p", self.run_dir + "/",
                                                        "-c", conf],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, preexec_fn=_die_with_parent)
            err.close()
            on_exit(self.stop)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                res = subprocess.run(self.prefix + ["curl", "-sS", "-o", "/dev/null", "--cacert",
                                                    self.cacert, self.url("index")],
                                     stderr=subprocess.DEVNULL)
                if res.returncode == 0:
                    return self
                time.sleep(0.1)
            self.stop()  # most likely lost the race for the port: try another
        raise RuntimeError("nginx did not start; see %s/log" % self.run_dir)

    def stop(self):
        done(self.stop)
        if self.proc is not None:
            _terminate_pid(self.proc.pid, reap=self.proc.poll)
            self.proc.wait()
            self.proc = None


class Mirror:
    """nginx over plain HTTP serving a cache directory as a blob mirror (the mirror layout
    is the cache's own, blobs/<alg>/<hex>), no rate limit (a machine on the LAN), in the
    network namespace that prefix enters, on address."""

    def __init__(self, work, root, address, prefix):
        self.run_dir = os.path.join(work, "mirror")
        self.root = root
        self.address = address
        self.prefix = list(prefix)
        self.port = 8080  # the namespace is the bench's own: nothing else listens there
        self.proc = None
        for sub in ("log", "tmp"):
            os.makedirs(os.path.join(self.run_dir, sub), exist_ok=True)

    @property
    def url(self):
        return "http://%s:%d" % (self.address, self.port)

    def start(self):
        d = self.run_dir
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_head(d) + f"""\
    sendfile on;
    access_log off;
    default_type application/octet-stream;
    server {{
        listen {self.address}:{self.port};
        root "{self.root}";
    }}
}}
""")
        err = open(os.path.join(d, "log", "stderr.log"), "w")
        self.proc = subprocess.Popen(self.prefix + [NGINX, "-p", d + "/", "-c", conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, preexec_fn=_die_with_parent)
        err.close()
        on_exit(self.stop)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            res = subprocess.run(self.prefix + ["curl", "-sS", "-o", "/dev/null", self.url],
                                 stderr=subprocess.DEVNULL)
            if res.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the mirror's nginx did not start; see %s/log" % d)

    def stop(self):
        done(self.stop)
        if self.proc is not None:
            _terminate_pid(self.proc.pid, reap=self.proc.poll)
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------------------ mounts

class OptionUnsupported(Exception):
    """The daemon refused a mount option (today's daemon before the download rewrite)."""


class _Mounted:
    """What a daemon mount and an rclone mount share: peak memory and teardown."""

    own_cache = True

    def record_peak(self):
        """Read VmHWM now (call just before the with-block ends)."""
        self.peak = vm_hwm_bytes(self.proc.pid)
        return self.peak

    def _close(self):
        done(self._close)
        if self.proc is not None:
            unmount(self.mnt)
            stop_process(self.proc)
            self.proc = None
        if os.path.isdir(self.mnt) and not os.path.ismount(self.mnt):
            os.rmdir(self.mnt)
        if self.own_cache:
            subprocess.run(["rm", "-rf", self.cache])


class DaemonMount(_Mounted):
    """omnihub-fuse in the foreground for the duration of a with-block, on a fresh cache
    unless one is given. extra: mount options beyond the hub's, e.g. ["stream"]; prefix:
    an argv prefix the daemon runs under (a netns host's prefix())."""

    def __init__(self, binary, work, hub, index_rel, extra=(), cache=None, prefix=()):
        self.work = work
        self.mnt = tempfile.mkdtemp(dir=work, prefix="mnt-")
        self.own_cache = cache is None
        self.cache = cache or tempfile.mkdtemp(dir=work, prefix="cache-")
        opts = ["cache=" + self.cache, "cacert=" + hub.cacert,
                "onnx_index_url=" + hub.url("index", index_rel), "onnx_url=" + hub.url("hub")]
        self.argv = list(prefix) + [binary, "-f", "-o", ",".join(opts + list(extra)), self.mnt]
        self.log_path = os.path.join(work, "daemon.log")
        self.proc = None
        self.peak = None

    def start(self):
        """Mount now; returns self (a with-block then unmounts)."""
        on_exit(self._close)
        with open(self.log_path, "a") as log:
            start = log.tell()
            log.write("== %s\n" % " ".join(self.argv))
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log_path, errors="replace") as log:
                    log.seek(start)
                    text = log.read()
                self._close()
                if any(w in text.lower() for w in UNSUPPORTED_WORDS):
                    raise OptionUnsupported(text.strip().splitlines()[-1])
                raise RuntimeError("mount failed:\n" + text)
            time.sleep(0.01)
        return self

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self._close()

    def path(self, model_dir, name="model.onnx"):
        return os.path.join(self.mnt, "onnx", model_dir, name)

    def backing(self, model_dir, sha):
        """The cached copy of a model: the blob (new layout) or the tree's file (today's)."""
        blob = os.path.join(self.cache, "blobs", "sha256", sha)
        if os.path.isfile(blob):
            return blob
        tree = os.path.join(self.cache, "onnx", model_dir, "opset-%d" % OPSET, "model.onnx")
        if os.path.isfile(tree):
            return tree
        raise FileNotFoundError("no cached copy of %s under %s" % (model_dir, self.cache))

class RcloneMount(_Mounted):
    """`rclone mount :http: --vfs-cache-mode full` of one hub directory, on a fresh VFS cache."""

    def __init__(self, work, hub, url):
        self.mnt = tempfile.mkdtemp(dir=work, prefix="rclone-mnt-")
        self.cache = tempfile.mkdtemp(dir=work, prefix="rclone-cache-")
        config = os.path.join(work, "rclone.conf")
        open(config, "a").close()
        self.argv = ["rclone", "mount", ":http:", self.mnt, "--http-url", url,
                     "--ca-cert", hub.cacert, "--config", config, "--cache-dir", self.cache,
                     "--vfs-cache-mode", "full", "--read-only"]
        self.log_path = os.path.join(work, "rclone.log")
        self.proc = None
        self.peak = None

    def __enter__(self):
        on_exit(self._close)
        with open(self.log_path, "a") as log:
            log.write("== %s\n" % " ".join(self.argv))
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._close()
                raise RuntimeError("rclone mount failed; see %s" % self.log_path)
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self._close()

    def path(self, name):
        return os.path.join(self.mnt, name)

