#!/usr/bin/env python3
"""Integration test of the Debian package: build the .deb from a copy of the source tree, lintian, install, mount, remove.
Not for the filesystem's behaviour (test_onnx_mount.py and the others); it installs and removes a package
on this machine, so it refuses to run where omnihub-fuse is installed already (as a package, or in /usr).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_package.py [PART]
# OMNIHUB_FUSE is only what the harness asks for: every mount here runs the installed
# /usr/bin/omnihub-fuse. The package is built once per run (about 20 s on 2 cores).

import contextlib
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import (SRCDIR, Mount, check, check_eq, make_zoo, run, run_cli,  # noqa: E402
                           sha256_file, test)

from zoo_server import ZooServer  # noqa: E402

PACKAGE = "omnihub-fuse"
INSTALLED_FUSE = "/usr/bin/omnihub-fuse"
INSTALLED_CLI = "/usr/bin/omnihub"
BUILD_TIMEOUT = 900  # seconds; an ASan machine under load is slow, a hang still ends
# What the package must carry (the brief of debian/: both commands, their man pages, the
# catalogs and the units).
EXPECTED_FILES = [
    "/usr/bin/omnihub-fuse", "/usr/bin/omnihub",
    "/usr/share/man/man1/omnihub-fuse.1.gz", "/usr/share/man/man1/omnihub.1.gz",
    "/usr/share/man/man5/omnihub.conf.5.gz", "/usr/share/man/man5/omnihub.catalog.5.gz",
    "/usr/share/omnihub/catalogs/torchvision.json", "/usr/share/omnihub/catalogs/keras.json",
    "/lib/systemd/system/omnihub-fuse.service", "/lib/systemd/system/mnt-hub.mount",
    "/usr/share/doc/omnihub-fuse/copyright",
]


def sh(argv, cwd=None, env=None, timeout=BUILD_TIMEOUT):
    """Run argv to the end; the CompletedProcess (text, stdout and stderr captured)."""
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", stdin=subprocess.DEVNULL, timeout=timeout)


def package_status():
    """dpkg's status of the package ("install ok installed", ...), or "" if dpkg knows none."""
    res = sh(["dpkg-query", "-W", "-f=${Status}", PACKAGE])
    return res.stdout.strip() if res.returncode == 0 else ""


def configure_version():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[omnihub-fuse\], \[([^]]+)\]", f.read())
    check(m is not None, "no AC_INIT version in configure.ac")
    return m.group(1)


def is_checkout():
    return os.path.exists(os.path.join(SRCDIR, ".git"))


def source_files():
    """The files of the source tree a package is built from: what git would ship (tracked and
    new, not ignored) in a checkout, else (a dist tarball, as in make distcheck) all but the
    build and install directories in it (those with a config.status, build/, distcheck's
    _build/ and _inst/)."""
    if is_checkout():
        res = sh(["git", "-C", SRCDIR, "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"])
        check(res.returncode == 0, "git ls-files: %s" % res.stderr)
        return [p for p in res.stdout.split("\0") if p and os.path.isfile(os.path.join(SRCDIR, p))]
    found = []
    for root, dirs, files in os.walk(SRCDIR):
        dirs[:] = [d for d in dirs if d not in ("build", "_build", "_inst") and
                   not os.path.exists(os.path.join(root, d, "config.status"))]
        found += [os.path.relpath(os.path.join(root, f), SRCDIR) for f in files]
    return found


def git_in(path, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_GLOBAL="/dev/null")
    res = sh(["git", "-C", path] + list(args), env=env)
    check(res.returncode == 0, "git %s: %s" % (" ".join(args), res.stderr))
    return res.stdout


class Built:
    """The package built once for the run, and the fixture zoo it mounts."""

    def __init__(self, out_dir, src, deb, build_log, untracked, zoo, expected):
        self.out_dir = out_dir
        self.src = src
        self.deb = deb
        self.build_log = build_log
        self.untracked = untracked  # git status in the built copy; None if not from a checkout
        self.zoo = zoo
        self.expected = expected  # make_zoo.py's entries


def build_package(run_dir):
    """Copy the source tree into run_dir/pkg/src (a git repository of its own, so that what
    the build leaves behind shows), run dpkg-buildpackage -us -uc -b there; returns
    (the .deb path, the build log, the paths git status shows afterwards)."""
    out_dir = os.path.join(run_dir, "pkg")
    src = os.path.join(out_dir, "src")
    for rel in source_files():
        dest = os.path.join(src, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(SRCDIR, rel), dest)
    git_in(src, "init", "-q")
    git_in(src, "add", "-A")
    git_in(src, "commit", "-q", "-m", "copy")
    # DEB_BUILD_OPTIONS as a user's shell may have it must not change what is checked.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEB_")}
    res = sh(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env)
    log = res.stdout + res.stderr
    if res.returncode != 0:
        raise RuntimeError("dpkg-buildpackage failed (%d):\n%s" % (res.returncode, log[-6000:]))
    # .gitignore is the checkout's (a tarball has none): only there can this be checked.
    untracked = git_in(src, "status", "--porcelain").splitlines() if is_checkout() else None
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    deb = os.path.join(out_dir, "%s_%s_%s.deb" % (PACKAGE, configure_version(), arch))
    return deb, log, untracked


@contextlib.contextmanager
def built_package(run_dir):
    status = package_status()
    if status and status != "unknown ok not-installed":
        raise RuntimeError("%s is already known to dpkg here (%s): this test installs and "
                           "removes it; dpkg --purge %s first" % (PACKAGE, status, PACKAGE))
    # A `make install --prefix=/usr` puts the same files there: dpkg -i would overwrite them
    # and dpkg -r delete them.
    present = [p for p in EXPECTED_FILES if os.path.lexists(p)]
    if present:
        raise RuntimeError("%r exist already: this test would overwrite them with the package "
                           "and then remove them" % present)
    deb, log, untracked = build_package(run_dir)
    fixture_dir = os.path.join(run_dir, "fixture")
    expected = make_zoo(fixture_dir, "--large-mib", "1")
    try:
        with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as zoo:
            yield Built(os.path.dirname(deb), os.path.join(run_dir, "pkg", "src"), deb, log,
                        untracked, zoo, expected)
    finally:
        # Never leave the package behind, whatever failed.
        if package_status():
            sh(["dpkg", "--purge", PACKAGE])


def install(t):
    """dpkg -i the built package (once: a later test finds it installed)."""
    if package_status() == "install ok installed":
        return
    res = sh(["dpkg", "-i", t.shared.deb])
    t.note("dpkg -i: %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
    check_eq(res.returncode, 0, "dpkg -i's exit status")
    check_eq(package_status(), "install ok installed", "dpkg's status after dpkg -i")


def dpkg_contents(deb):
    """Paths in the .deb, absolute, directories without their trailing '/'."""
    res = sh(["dpkg-deb", "-c", deb])
    check_eq(res.returncode, 0, "dpkg-deb -c")
    return sorted(line.split()[5][1:].rstrip("/") or "/" for line in res.stdout.splitlines())


@test
def package_builds(t):
    """dpkg-buildpackage -us -uc -b builds omnihub-fuse_<configure.ac's version>_<arch>.deb,
    carrying both commands, the man pages, the catalogs and the units (naming
    /usr/bin/omnihub-fuse); it depends on fuse3 and the shared libraries; it does not run the
    test suite; and it leaves nothing in the source tree that git would see."""
    b = t.shared
    check(os.path.isfile(b.deb), "no %s; built: %r" % (os.path.basename(b.deb),
                                                        sorted(os.listdir(b.out_dir))))
    if b.untracked is None:
        t.note("not a git checkout: what the build leaves in the tree is not checked")
    else:
        check_eq(b.untracked, [], "what git status shows in the source tree after the build")
    contents = dpkg_contents(b.deb)
    missing = [p for p in EXPECTED_FILES if p not in contents]
    check(not missing, "not in the package: %r (it has %r)" % (missing, contents))
    res = sh(["dpkg-deb", "-f", b.deb, "Depends"])
    depends = [d.strip().split()[0] for d in res.stdout.split(",")]
    for lib in ("fuse3", "libfuse3-3", "libcurl4", "libssl3", "libcjson1", "libarchive13"):
        check(lib in depends, "Depends: %r lacks %s" % (depends, lib))
    extract = os.path.join(t.dir, "x")
    res = sh(["dpkg-deb", "-x", b.deb, extract])
    check_eq(res.returncode, 0, "dpkg-deb -x")
    with open(os.path.join(extract, "lib/systemd/system/omnihub-fuse.service")) as f:
        starts = [line for line in f if line.startswith("ExecStart=")]
    check_eq([s.split()[0] for s in starts], ["ExecStart=" + INSTALLED_FUSE],
             "the packaged service's ExecStart= program")
    # The suite mounts for real (tests/integration/*.py); the package build must run none.
    ran = [line for line in b.build_log.splitlines()
           if re.search(r"\bmake\b.*\scheck\b|^(PASS|FAIL|ERROR|SKIP): |tests/integration/", line)]
    check_eq(ran, [], "lines of the package build that show the test suite running")


@test
def lintian_has_no_errors(t):
    """lintian --fail-on error accepts the built .deb (its warnings and notes are listed)."""
    res = sh(["lintian", "--fail-on", "error", t.shared.deb])
    tags = [line for line in res.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    t.note("lintian: %d\n%s\n%s" % (res.returncode, res.stdout, res.stderr))
    check_eq((res.returncode, [tg for tg in tags if tg.startswith("E: ")]), (0, []),
             "lintian --fail-on error")


@test
def installed_package_mounts(t):
    """dpkg -i installs it; the installed omnihub-fuse --version and omnihub --help work; the
    installed omnihub-fuse mounts the fixture zoo, serves a model with the manifest's sha256,
    and shows the catalog hubs from /usr/share/omnihub/catalogs; it unmounts cleanly."""
    install(t)
    version = configure_version()
    res = run_cli(INSTALLED_FUSE, ["--version"], t.env)
    check_eq(res.returncode, 0, "omnihub-fuse --version's exit status")
    check(res.stdout.startswith("omnihub-fuse %s " % version), "--version: %r" % res.stdout)
    res = run_cli(INSTALLED_CLI, ["--help"], t.env)
    check_eq(res.returncode, 0, "omnihub --help's exit status")
    check(res.stdout.startswith("usage: omnihub"), "omnihub --help: %r" % res.stdout[:200])
    zoo = t.shared.zoo
    options = ["cache=" + t.cache, "cacert=" + zoo.cacert, "onnx_index_url=" + zoo.index_url,
               "onnx_url=" + zoo.model_base_url]
    m = Mount(INSTALLED_FUSE, t.mountpoint, options, t.env,
              os.path.join(t.dir, "daemon-installed.log"))
    t.mounts.append(m)  # stopped by the harness too, if this test fails
    with m:
        top = sorted(os.listdir(m.mountpoint))
        for hub in ("onnx", "torchvision", "keras"):
            check(hub in top, "%s not at the top of the mount: %r" % (hub, top))
        entry = max((e for e in t.shared.expected if e["model"] == "Conv2d"),
                    key=lambda e: e["opset"])
        check_eq(sha256_file(m.path("onnx", "conv2d", "model.onnx")), entry["sha256"],
                 "sha256 of onnx/conv2d/model.onnx read through the installed binary")


@test
def removal_leaves_nothing(t):
    """dpkg -r removes every file dpkg -L listed, and the package's own directories; dpkg
    --purge then forgets it."""
    install(t)
    res = sh(["dpkg", "-L", PACKAGE])
    check_eq(res.returncode, 0, "dpkg -L")
    listed = [p for p in res.stdout.splitlines() if p.startswith("/")]
    files = [p for p in listed if not os.path.isdir(p)]  # /lib, a link to usr/lib, stays
    check(INSTALLED_FUSE in files and len(files) >= len(EXPECTED_FILES),
          "dpkg -L lists %r" % listed)
    res = sh(["dpkg", "-r", PACKAGE])
    t.note("dpkg -r: %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
    check_eq(res.returncode, 0, "dpkg -r's exit status")
    left = [p for p in files if os.path.lexists(p)]
    check_eq(left, [], "files of the package left after dpkg -r")
    own_dirs = ["/usr/share/omnihub", "/usr/share/doc/omnihub-fuse"]
    check_eq([d for d in own_dirs if os.path.lexists(d)], [], "the package's directories left")
    res = sh(["dpkg", "--purge", PACKAGE])
    check_eq(res.returncode, 0, "dpkg --purge's exit status")
    check(package_status() in ("", "unknown ok not-installed"),
          "dpkg's status after --purge: %r" % package_status())


if __name__ == "__main__":
    run(built_package)
