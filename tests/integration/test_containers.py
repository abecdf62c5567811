#!/usr/bin/env python3
"""Checks of scripts/container/ without a container runtime (none is on this machine): every
YAML document parses; in the Kubernetes example only the DaemonSet's container is privileged,
its mount propagates Bidirectional from a hostPath that readers mount HostToContainer, the
cache is one shared volume, the mirror Service selects the mirror's pods and is the URL the
daemon is given; the image's command is the entrypoint the Containerfile installs, and every
-o option given exists in `omnihub-fuse --help`. The Containerfile builds on debian:12 with
scripts/install-deps --build's packages. (test_daemon.py runs the entrypoint for real.)
Not for: what the mount serves.
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_containers.py
# Needs python3-yaml (scripts/install-deps).

import os
import re
import subprocess
import sys
import traceback

import yaml

SRCDIR = os.environ.get("OMNIHUB_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTAINER_DIR = os.path.join(SRCDIR, "scripts", "container")
K8S = os.path.join(CONTAINER_DIR, "omnihub-k8s.yaml")
CONTAINERFILE = os.path.join(CONTAINER_DIR, "Containerfile")
ENTRYPOINT = os.path.join(CONTAINER_DIR, "entrypoint.sh")
BINARY = os.environ.get("OMNIHUB_FUSE") or os.path.join(SRCDIR, "omnihub-fuse")
# Options mount.fuse3 itself takes and drops before the program sees them.
MOUNT_FUSE3_OPTIONS = {"drop_privileges", "setuid"}

_TESTS = []


def test(func):
    _TESTS.append(func)
    return func


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def documents():
    with open(K8S, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def of_kind(kind):
    return [d for d in documents() if d["kind"] == kind]


def one(kind, name):
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    check(len(found) == 1, "%s/%s: %d found" % (kind, name, len(found)))
    return found[0]


def pod_specs():
    """(kind/name, pod spec) of every workload."""
    out = []
    for d in documents():
        if d["kind"] == "Pod":
            out.append(("Pod/" + d["metadata"]["name"], d["spec"]))
        elif d["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            out.append(("%s/%s" % (d["kind"], d["metadata"]["name"]), d["spec"]["template"]["spec"]))
    return out


def help_options():
    """The -o option names `omnihub-fuse --help` lists."""
    res = subprocess.run([BINARY, "--help"], capture_output=True, text=True, check=True)
    names = set()
    for line in res.stdout.splitlines():
        m = re.match(r"\s+-o ([a-z_]+)", line)
        if m:
            names.add(m.group(1))
    check({"cache", "mirror", "allow_other", "hf_repos"} <= names,
          "the help's options look wrong: %r" % sorted(names))
    return names


def option_names(opts):
    return [o.split("=", 1)[0] for o in opts.split(",") if o]


def daemon_container():
    ds = one("DaemonSet", "omnihub-fuse")
    containers = ds["spec"]["template"]["spec"]["containers"]
    check(len(containers) == 1, "the DaemonSet's containers: %d" % len(containers))
    return ds, containers[0]


# ----------------------------------------------------------------------------- tests

@test
def every_yaml_parses():
    files = [f for f in os.listdir(CONTAINER_DIR) if f.endswith((".yaml", ".yml"))]
    check(files, "no YAML in %s" % CONTAINER_DIR)
    for name in files:
        with open(os.path.join(CONTAINER_DIR, name), encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        check(docs, "%s holds no document" % name)
        for d in docs:
            check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                  and d.get("metadata", {}).get("name"),
                  "%s: a document without apiVersion, kind or name: %r" % (name, d))
    # The parser does refuse what is broken, so this check can fail.
    try:
        yaml.safe_load("a: [1, 2\nb: 3\n")
    except yaml.YAMLError:
        pass
    else:
        raise AssertionError("yaml accepted a broken document")


@test
def privileged_only_the_mounting_container():
    for where, spec in pod_specs():
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            privileged = c.get("securityContext", {}).get("privileged", False)
            is_daemon = where == "DaemonSet/omnihub-fuse"
            check(privileged == is_daemon, "%s container %s: privileged %r"
                  % (where, c["name"], privileged))
            if not is_daemon:
                check(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
                      "%s container %s may escalate" % (where, c["name"]))


@test
def mount_propagation_and_host_paths():
    ds, c = daemon_container()
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    mnt_path = next(e["value"] for e in c["env"] if e["name"] == "OMNIHUB_MOUNTPOINT")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    check(mnt_path in mounts, "the mount point %s is no volumeMount" % mnt_path)
    check(mounts[mnt_path].get("mountPropagation") == "Bidirectional",
          "the mount point's propagation: %r" % mounts[mnt_path].get("mountPropagation"))
    host = volumes[mounts[mnt_path]["name"]].get("hostPath", {})
    check(host.get("path") == mnt_path, "the mount point's hostPath: %r" % host)
    fuse = volumes[mounts["/dev/fuse"]["name"]].get("hostPath", {})
    check(fuse == {"path": "/dev/fuse", "type": "CharDevice"}, "/dev/fuse: %r" % fuse)
    for m in c["volumeMounts"]:
        if m["mountPath"] != mnt_path:
            check("mountPropagation" not in m, "%s propagates too" % m["mountPath"])
    # Readers see the node's mount, read-only, HostToContainer, unprivileged.
    readers = 0
    for where, spec in pod_specs():
        if where.startswith("DaemonSet/"):
            continue
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c2 in spec["containers"]:
            for m in c2.get("volumeMounts", []):
                hp = vols.get(m["name"], {}).get("hostPath")
                if hp and hp["path"] == mnt_path:
                    readers += 1
                    check(m.get("mountPropagation") == "HostToContainer" and m.get("readOnly"),
                          "%s mounts %s as %r" % (where, mnt_path, m))
    check(readers >= 1, "no pod reads the mount")
    stop = c["lifecycle"]["preStop"]["exec"]["command"]
    check(stop == ["umount", mnt_path], "preStop: %r" % stop)


@test
def shared_cache_and_mirror_service():
    ds, c = daemon_container()
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    opts = dict(o.split("=", 1) for o in c["args"][0].split(",") if "=" in o)
    cache_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == opts["cache"])
    claim = volumes[cache_mount["name"]]["persistentVolumeClaim"]["claimName"]
    pvc = one("PersistentVolumeClaim", claim)
    check("ReadWriteMany" in pvc["spec"]["accessModes"],
          "the cache %s is not shared between nodes: %r" % (claim, pvc["spec"]["accessModes"]))
    svc = one("Service", "omnihub-mirror")
    ns = svc["metadata"]["namespace"]
    port = svc["spec"]["ports"][0]["port"]
    want = "http://%s.%s.svc.cluster.local:%d" % (svc["metadata"]["name"], ns, port)
    check(opts.get("mirror") == want, "the daemon's mirror %r, the Service is %s"
          % (opts.get("mirror"), want))
    dep = one("Deployment", "omnihub-mirror")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "the Service selects %r, the mirror's pods are %r" % (svc["spec"]["selector"], labels))
    target = svc["spec"]["ports"][0]["targetPort"]
    ports = [p["containerPort"] for c2 in dep["spec"]["template"]["spec"]["containers"]
             for p in c2.get("ports", [])]
    check(target in ports, "targetPort %r not among %r" % (target, ports))
    conf = one("ConfigMap", "omnihub-mirror-nginx")["data"]["default.conf"]
    check("listen %d;" % target in conf and "/blobs/" in conf, "the mirror's nginx config")


@test
def image_command_uses_real_options():
    known = help_options()
    with open(CONTAINERFILE, encoding="utf-8") as f:
        containerfile = f.read()
    m = re.search(r"COPY scripts/container/entrypoint.sh (\S+)", containerfile)
    check(m, "the Containerfile does not install entrypoint.sh")
    entry = m.group(1)
    check(re.search(r'ENTRYPOINT \["%s"\]' % re.escape(entry), containerfile),
          "the image's ENTRYPOINT is not %s" % entry)
    cmd = re.search(r'^CMD \["([^"]*)"\]', containerfile, re.M)
    ds, c = daemon_container()
    check(c["command"] == [entry], "the DaemonSet's command %r, the image's %s"
          % (c["command"], entry))
    with open(ENTRYPOINT, encoding="utf-8") as f:
        script = f.read()
    default = re.search(r"opts=\$\{1:-([^}]*)\}", script).group(1)
    fixed = re.search(r'-o "([a-z_,]*)\$opts"', script).group(1)
    for where, opts in (("the DaemonSet's args", c["args"][0]), ("the image's CMD", cmd.group(1)),
                        ("entrypoint.sh's default", default), ("entrypoint.sh", fixed)):
        unknown = [o for o in option_names(opts) if o not in known | MOUNT_FUSE3_OPTIONS]
        check(not unknown, "%s: %r not in omnihub-fuse --help" % (where, unknown))
    # The check can fail: a made-up option is refused.
    check("no_such_option" not in known, "the help lists no_such_option")


@test
def containerfile_builds_on_debian_12_with_the_build_packages():
    with open(CONTAINERFILE, encoding="utf-8") as f:
        text = f.read()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    check(froms and froms[0] == "debian:12" and all(f.startswith("debian:12") for f in froms),
          "FROM lines: %r" % froms)
    build_stage = text.split("FROM ")[1]
    got = set(re.search(r"--no-install-recommends(.*?)\\\s*\n\s*&& rm", build_stage, re.S)
              .group(1).replace("\\", " ").split())
    with open(os.path.join(SRCDIR, "scripts", "install-deps"), encoding="utf-8") as f:
        deps = f.read()
    want = set(re.search(r"^build=\((.*?)\)", deps, re.M | re.S).group(1).split())
    check(got == want, "the build stage installs %r, install-deps --build %r"
          % (sorted(got), sorted(want)))
    check("./configure --prefix=/usr" in text and "make install DESTDIR=" in text,
          "the build from source")


def main():
    failed = 0
    for number, func in enumerate(_TESTS, 1):
        if len(sys.argv) > 1 and sys.argv[1] not in func.__name__:
            continue
        try:
            func()
            print("ok %d - %s" % (number, func.__name__))
        except Exception:
            failed += 1
            print("not ok %d - %s" % (number, func.__name__))
            for line in traceback.format_exc().rstrip().splitlines():
                print("# " + line)
    print("1..%d" % len(_TESTS))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
