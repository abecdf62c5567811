#!/usr/bin/env python3
"""Test of scripts/check-layers: the tree passes; a copy of it with a wrong-way #include planted fails,
naming the file:line, the include and the rule. Not for: the build's -I flags (Makefile.am), which
refuse the same includes by failing to compile.
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_SRCDIR=. python3 tests/layers/test_check_layers.py

import os
import shutil
import subprocess
import sys
import tempfile

SRCDIR = os.environ.get("OMNIHUB_SRCDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CHECK = os.path.join(SRCDIR, "scripts", "check-layers")

results = []


def ok(cond, name, detail=""):
    results.append((bool(cond), name, detail))


def run_check(top):
    p = subprocess.run([sys.executable, CHECK, top], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def plant(top, rel, header):
    """Adds #include "header" after the first #include "..." of top/rel; returns its line number."""
    path = os.path.join(top, rel)
    with open(path) as f:
        lines = f.readlines()
    at = next(i for i, line in enumerate(lines) if line.startswith('#include "')) + 1
    lines.insert(at, '#include "%s"\n' % header)
    with open(path, "w") as f:
        f.writelines(lines)
    return at + 1


def test_tree_passes():
    rc, out, err = run_check(SRCDIR)
    ok(rc == 0 and "every include points down" in out, "the tree itself passes", out + err)


def test_planted(rel, header, expected):
    with tempfile.TemporaryDirectory() as tmp:
        top = os.path.join(tmp, "tree")
        shutil.copytree(os.path.join(SRCDIR, "src"), os.path.join(top, "src"))
        rc, out, err = run_check(top)
        ok(rc == 0, "the copy passes before the plant", out + err)
        line = plant(top, rel, header)
        rc, out, err = run_check(top)
        want = '%s:%d: #include "%s"' % (rel, line, header)
        ok(rc == 1 and want in out and expected in out and len(out.strip().splitlines()) == 1,
           "a planted %s in %s fails: %s" % (header, rel, expected), "rc %d\n%s%s" % (rc, out, err))


def test_stray():
    """A source file straight under src/ belongs to no layer (a new file must go in one)."""
    with tempfile.TemporaryDirectory() as tmp:
        top = os.path.join(tmp, "tree")
        shutil.copytree(os.path.join(SRCDIR, "src"), os.path.join(top, "src"))
        with open(os.path.join(top, "src", "stray.c"), "w") as f:
            f.write('#include "log.h"\n')
        rc, out, err = run_check(top)
        ok(rc == 1 and "src/stray.c: not in a layer's folder" in out,
           "a file straight under src/ fails: not in a layer's folder", "rc %d\n%s%s" % (rc, out, err))


def main():
    test_tree_passes()
    # Up: the store includes the core.
    test_planted("src/store/cache.c", "core.h",
                 '(src/core/core.h): store may include util, conf; not core')
    # Out of conf, which includes no other layer.
    test_planted("src/conf/config.c", "log.h",
                 '(src/util/log.h): conf may include no other layer; not util')
    # Sideways between the front ends.
    test_planted("src/cli/cmd_status.c", "tree.h",
                 '(src/fuse/tree.h): cli may include core, hubs, net, store, util, conf; not fuse')
    # Up from a hub's own folder to the core.
    test_planted("src/hubs/catalog/hub_catalog.c", "download.h",
                 '(src/core/download.h): hubs may include net, store, util, conf; not core')
    test_stray()
    print("1..%d" % len(results))
    for n, (good, name, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if good else "not ok", n, name))
        if not good:
            for line in detail.splitlines():
                print("# " + line)
    return 0 if all(r[0] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
