#!/usr/bin/env python3
"""The config files (omnihub.conf(5)) through a real mount: the user file sets a hub's
URLs; a mount option beats the file, the environment beats the file, the user file beats
the system file; a [hub] section holds one hub offline, or gives it a cache directory
of its own (with its own cache_max); a bad line or an unknown section
stops the mount with one sentence naming the file and the line, exit status 2.

Run with Debian's /usr/bin/python3 (make_zoo.py needs python3-onnx)."""

import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mount_helpers import (SRCDIR, check, check_eq, count_requests, errno_of,  # noqa: E402
                           make_zoo, run, run_cli, run_omnihub, test)

from zoo_server import ZooServer  # noqa: E402

DEAD = "https://127.0.0.1:1/"


class Zoo:
    def __init__(self, fixture_dir, server):
        with open(os.path.join(fixture_dir, "expected.json"), encoding="utf-8") as f:
            self.entries = [e for e in json.load(f) if e["kind"] == "good"]
        self.server = server
        self.fixture_dir = fixture_dir

    def model(self):
        """The smallest good model: (its path under onnx/, its entry)."""
        e = min((e for e in self.entries if "members" not in e), key=lambda e: e["bytes"])
        return e

    def model_requests(self, e):
        return sum(count_requests(self.server, host, e["model_path"]) for host in ("hub", "cdn"))


@contextlib.contextmanager
def fake_hub(run_dir):
    fixture_dir = os.path.join(run_dir, "fixture")
    make_zoo(fixture_dir, "--large-mib", "1")
    with ZooServer(fixture_dir, os.path.join(run_dir, "zoo")) as server:
        yield Zoo(fixture_dir, server)


def user_file(t):
    return os.path.join(t.env["HOME"], ".config", "omnihub", "config")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def hub_section(zoo, index_url=None):
    return ("cacert = %s\n\n[onnx]\n# the local imitation of the zoo\nindex_url = %s\nurl = %s\n"
            % (zoo.server.cacert, index_url or zoo.server.index_url, zoo.server.model_base_url))


def files_of_size(m, size):
    """The files under onnx/ of that size, found by walking the mount as a user would."""
    found = [os.path.join(r, n) for r, _d, names in os.walk(m.path("onnx")) for n in names]
    return [p for p in found if os.path.getsize(p) == size]


def read_model(m, e):
    """The contents of every file under onnx/ of e's size (one of them is e)."""
    paths = files_of_size(m, e["bytes"])
    check(paths, "no file of %d bytes under onnx/" % e["bytes"])
    contents = []
    for path in paths:
        with open(path, "rb") as f:
            contents.append(f.read())
    return contents


def expected_bytes(zoo, e):
    with open(os.path.join(zoo.fixture_dir, "www", "cdn", e["model_path"]), "rb") as f:
        return f.read()


@test
def user_file_sets_the_hub(t):
    """No hub option on the command line: the user's file points the onnx hub at the zoo."""
    zoo = t.shared
    e = zoo.model()
    write(user_file(t), hub_section(zoo))
    with t.mount(["cache=" + t.cache]) as m:
        check("onnx" in os.listdir(m.mountpoint), "onnx/ missing: %r" % os.listdir(m.mountpoint))
        check(expected_bytes(zoo, e) in read_model(m, e), "no file under onnx/ has the model's bytes")


@test
def option_beats_user_file(t):
    """The file names a dead index; -o onnx_index_url names the live one and wins."""
    zoo = t.shared
    write(user_file(t), hub_section(zoo, index_url=DEAD + "ONNX_HUB_MANIFEST.json"))
    with t.mount(["cache=" + t.cache, "onnx_index_url=" + zoo.server.index_url]) as m:
        check("onnx" in os.listdir(m.mountpoint), "onnx/ left out: the file won over -o")


@test
def user_file_beats_system_file(t):
    """The system file names a dead index, the user file the live one: the user's wins.
    Without the user's file, the system's is used (and the hub is retried)."""
    zoo = t.shared
    system = os.path.join(t.dir, "system-config")
    write(system, hub_section(zoo, index_url=DEAD + "ONNX_HUB_MANIFEST.json"))
    write(user_file(t), "[onnx]\nindex_url = %s\n" % zoo.server.index_url)
    env = {"OMNIHUB_SYSTEM_CONFIG": system}
    with t.mount(["cache=" + t.cache], env=env) as m:
        check("onnx" in os.listdir(m.mountpoint), "onnx/ left out: the system file won")
    os.unlink(user_file(t))
    # Another cache: the index the first mount cached would serve it.
    with t.mount(["cache=" + t.cache + "-2"], env=env) as m:
        check(m.log_lines("onnx hub not available"), "no line says the onnx hub is not available")
        check(not os.path.exists(m.path("onnx", "resnet18")), "onnx/ mounted from a dead index")


@test
def environment_beats_user_file(t):
    """The file says offline = no; OMNIHUB_OFFLINE=1 wins: a cold read fails with no
    request for the model."""
    zoo = t.shared
    e = zoo.model()
    write(user_file(t), "offline = no\n" + hub_section(zoo))
    with t.mount(["cache=" + t.cache]) as m:
        os.listdir(m.path("onnx"))  # the index is now cached, for the offline mount
    zoo.server.clear_logs()
    with t.mount(["cache=" + t.cache], env={"OMNIHUB_OFFLINE": "1"}) as m:
        target = files_of_size(m, e["bytes"])
        check(target, "the model is not listed")
        check(errno_of(lambda: open(target[0], "rb").read()) != 0, "an offline cold read worked")
    check_eq(zoo.model_requests(e), 0, "requests for the model while offline")


@test
def hub_section_offline(t):
    """[onnx] offline = yes holds that hub alone offline: its index still comes from the
    cache of an earlier mount, and a cold read makes no request."""
    zoo = t.shared
    e = zoo.model()
    write(user_file(t), hub_section(zoo))
    with t.mount(["cache=" + t.cache]) as m:
        os.listdir(m.path("onnx"))  # the index is now cached
    write(user_file(t), hub_section(zoo) + "offline = yes\n")
    zoo.server.clear_logs()
    with t.mount(["cache=" + t.cache]) as m:
        target = files_of_size(m, e["bytes"])
        check(target, "the model is not listed")
        check(errno_of(lambda: open(target[0], "rb").read()) != 0, "an offline cold read worked")
    check_eq(zoo.model_requests(e), 0, "requests for the model with [onnx] offline = yes")


def refused(t, text, want):
    write(user_file(t), text)
    catalogs = "system_catalogs=" + os.path.join(SRCDIR, "catalogs")
    res = run_cli(t.binary, ["-f", "-o", "cache=%s,%s" % (t.cache, catalogs), t.mountpoint], t.env,
                  mountpoint=t.mountpoint)
    check_eq(res.returncode, 2, "exit status; stderr: %r" % res.stderr)
    lines = [l for l in res.stderr.splitlines() if l.strip() and " info: " not in l]
    check_eq(len(lines), 1, "lines on stderr but the log's: %r" % res.stderr)
    check(want in lines[0], "%r not in %r" % (want, lines[0]))


@test
def bad_line_names_file_and_line(t):
    refused(t, "# ok\ncache_max = 10G\n\nconnections = lots\n",
            user_file(t) + ":4: connections")


@test
def unknown_section_refused(t):
    """A section naming no hub (catalog hubs count: [torchvision] is fine)."""
    refused(t, "[torchvision]\noffline = yes\n[nosuchhub]\noffline = yes\n",
            user_file(t) + ":3: [nosuchhub]")


@test
def unreadable_file_refused(t):
    os.makedirs(user_file(t))  # a directory where the file should be
    res = run_cli(t.binary, ["-f", "-o", "cache=" + t.cache, t.mountpoint], t.env,
                  mountpoint=t.mountpoint)
    check_eq(res.returncode, 2, "exit status; stderr: %r" % res.stderr)
    check(user_file(t) in res.stderr, "the file is not named: %r" % res.stderr)


def omnihub(t, *args, env=None):
    return run_omnihub(t, args, env=env, want=0).stdout


@test
def config_command_names_the_token_source(t):
    """omnihub config says where the Hugging Face token comes from, or why there is none,
    and never the token itself (text and --json); omnihub whoami is named to say whose.
    (Before: nothing about the token.)"""
    secret = "hf_SecretValueForTheConfigTest"
    env = {"HF_TOKEN": ""}
    out = omnihub(t, "config", env=env)
    check("# huggingface token: without a token" in out, "no token: %r" % out)
    out = omnihub(t, "config", env={"HF_TOKEN": secret})
    check("# huggingface token: with the token from $HF_TOKEN (omnihub whoami says whose)"
          in out, "$HF_TOKEN: %r" % out)
    check(secret not in out, "the token itself in omnihub config's output")
    token_file = os.path.join(t.env["HF_HOME"], "token")
    write(token_file, "  %s\n" % secret)
    doc = json.loads(omnihub(t, "--json", "config", env=env))
    t.note("token: %r" % doc["huggingface_token"])
    check_eq(doc["huggingface_token"]["found"], True, "found, from the token file")
    check(token_file in doc["huggingface_token"]["source"], "the token file named: %r"
          % doc["huggingface_token"])
    check(secret not in json.dumps(doc), "the token itself in omnihub --json config")


@test
def config_command_names_every_origin(t):
    """omnihub config: each setting with the level it came from (option, environment, user
    file and line, system file and line, default); a hub option by its section's key.
    omnihub where: the cache it would use. Neither needs a hub or a request."""
    system = os.path.join(t.dir, "system-config")
    write(system, "connections = 5\ncache_max = 1G\n")
    write(user_file(t), "# mine\nconnections = 3\n\n[onnx]\nurl = https://zoo.example/\n")
    env = {"OMNIHUB_SYSTEM_CONFIG": system, "OMNIHUB_OFFLINE": "1"}
    doc = json.loads(omnihub(t, "--json", "-o", "retries=2", "config", env=env))
    got = {s["key"]: (s["value"], s["origin"]) for s in doc["settings"] if s["hub"] is None}
    want = {"retries": ("2", "option"),
            "offline": ("yes", "environment $OMNIHUB_OFFLINE"),
            "connections": ("3", user_file(t) + ":2"),
            "cache_max": ("1G", system + ":2"),
            "stall_timeout": ("30", "default"),
            "onnx_url": ("https://zoo.example/", user_file(t) + ":5")}
    for key, value in want.items():
        check_eq(got.get(key), value, "setting " + key)
    check_eq((doc["files"]["user"], doc["files"]["system"]), (user_file(t), system), "files")
    text = omnihub(t, "config", env=env)
    check(any(l.startswith("connections") and l.rstrip().endswith("# " + user_file(t) + ":2")
              for l in text.splitlines()), "no text line gives connections' origin:\n" + text)
    where = os.path.join(t.dir, "elsewhere")
    write(user_file(t), "cache = %s\n" % where)
    check_eq(omnihub(t, "where").strip(), where, "omnihub where")
    doc = json.loads(omnihub(t, "--json", "where"))
    check_eq((doc["cache"], doc["hubs"]["onnx"]), (where, where), "omnihub --json where")
    own = os.path.join(t.dir, "onnx-own")
    write(user_file(t), "cache = %s\n[onnx]\ncache = %s\n" % (where, own))
    check_eq(omnihub(t, "where").strip(), where, "omnihub where: the general cache")
    doc = json.loads(omnihub(t, "--json", "where"))
    check_eq((doc["cache"], doc["hubs"]["onnx"], doc["hubs"]["huggingface"]),
             (where, own, where), "omnihub --json where: every hub's")



@test
def mirrors_and_proxy_from_every_level(t):
    """mirror and proxy: the user file's list, OMNIHUB_MIRRORS over it, -o mirror (given twice:
    both, in order) over both; https_proxy over the file's proxy; a proxy's password hidden;
    a mirror that is not an http(s) base URL refused with exit status 2."""
    write(user_file(t), "mirror = http://a.lan:8080/cache/ http://b.lan\n"
                        "proxy = http://user:secret@squid.lan:3128\n")

    def settings(*args, env=None):
        doc = json.loads(omnihub(t, "--json", *args, "config", env=env))
        return {s["key"]: (s["value"], s["origin"]) for s in doc["settings"] if s["hub"] is None}

    got = settings()
    check_eq(got["mirror"], ("http://a.lan:8080/cache http://b.lan", user_file(t) + ":1"),
             "mirror from the user file")
    check_eq(got["proxy"], ("http://user:***@squid.lan:3128", user_file(t) + ":2"),
             "proxy from the user file, its password hidden")
    got = settings(env={"OMNIHUB_MIRRORS": "http://c.lan", "https_proxy": "http://env:3128"})
    check_eq(got["mirror"], ("http://c.lan", "environment $OMNIHUB_MIRRORS"), "mirror")
    check_eq(got["proxy"], ("http://env:3128", "environment $https_proxy"), "proxy")
    got = settings("-o", "mirror=http://d.lan", "-o", "mirror=https://e.lan,proxy=http://p:1",
                   env={"OMNIHUB_MIRRORS": "http://c.lan"})
    check_eq(got["mirror"], ("http://d.lan https://e.lan", "option"), "mirror given twice")
    check_eq(got["proxy"], ("http://p:1", "option"), "proxy")
    res = run_omnihub(t, ["-o", "mirror=ftp://x.lan", "config"])
    check_eq(res.returncode, 2, "exit status of a bad mirror; stderr: %r" % res.stderr)
    check("mirror 'ftp://x.lan': not a base URL" in res.stderr, "stderr: %r" % res.stderr)
    check("secret" not in omnihub(t, "config"), "the proxy's password shown")

# ---- a hub's own cache directory ([onnx] cache, cache_max) ----

# Models of the fixture: (model, opset) and their path in the mount.
RESNET = ("ResNet18", 9, "onnx/resnet18/opset-9/model.onnx")
AVGPOOL = ("AvgPool2d", 12, "onnx/avgpool2d/model.onnx")
CONV = ("Conv2d", 13, "onnx/conv2d/opset-13/model.onnx")


def entry_of(zoo, which):
    found = [e for e in zoo.entries if e["model"] == which[0] and e["opset"] == which[1]]
    check_eq(len(found), 1, "entries of %s opset %d in the fixture" % which[:2])
    return found[0]


def blob(cache, e):
    return os.path.join(cache, "blobs", "sha256", e["sha256"])


def blobs_in(cache):
    d = os.path.join(cache, "blobs", "sha256")
    return sorted(n for n in os.listdir(d) if len(n) == 64) if os.path.isdir(d) else []


def files_under(top):
    return [os.path.join(r, n) for r, _d, names in os.walk(top) for n in names]


def read_all(m, which):
    with open(m.path(which[2]), "rb") as f:
        return f.read()


def own_cache_file(t, zoo, own, extra=""):
    write(user_file(t), hub_section(zoo) + "cache = %s\n%s" % (own, extra))


def omnihub_json(t, *args):
    return json.loads(omnihub(t, "--json", "-o", "cache=" + t.cache, *args))


@test
def hub_cache_of_its_own(t):
    """[onnx] cache = DIR2: a model read through the mount is in DIR2 (its blob, its name in
    the readable tree), the onnx index is kept in DIR2/.index; nothing of it is in the
    general cache. omnihub du shows both stores."""
    zoo = t.shared
    own = os.path.join(t.dir, "onnx-cache")
    e = entry_of(zoo, RESNET)
    own_cache_file(t, zoo, own)
    with t.mount(["cache=" + t.cache]) as m:
        check_eq(read_all(m, RESNET), expected_bytes(zoo, e), "the model's bytes")
    check(os.path.isfile(blob(own, e)), "no blob in the hub's own cache: %r" % files_under(own))
    named = [p for p in files_under(os.path.join(own, "onnx")) if os.path.getsize(p) == e["bytes"]]
    check(named, "no name for the model in %s/onnx: %r" % (own, files_under(own)))
    check(os.path.isdir(os.path.join(own, ".index", "onnx")) and
          os.listdir(os.path.join(own, ".index", "onnx")),
          "the onnx index is not kept in %s/.index/onnx" % own)
    check_eq(blobs_in(t.cache), [], "blobs in the general cache")
    check(not os.path.exists(os.path.join(t.cache, "onnx")), "onnx/ in the general cache")
    check(not os.path.exists(os.path.join(t.cache, ".index", "onnx")),
          "the onnx index in the general cache")
    doc = omnihub_json(t, "du")
    stores = {s["cache"]: s for s in doc["stores"]}
    check_eq(sorted(stores), sorted([os.path.realpath(t.cache), os.path.realpath(own)]),
             "du's stores")
    check_eq((stores[os.path.realpath(own)]["bytes"], stores[os.path.realpath(own)]["blobs"]),
             (e["bytes"], 1), "du of the hub's own store")
    check_eq(stores[os.path.realpath(t.cache)]["blobs"], 0, "du of the general store")
    check_eq((doc["hubs"]["onnx"]["cache"], doc["hubs"]["onnx"]["files"]),
             (os.path.realpath(own), 1), "du of onnx/")
    text = omnihub(t, "-o", "cache=" + t.cache, "du")
    check("cache     %s" % os.path.realpath(t.cache) in text and
          "cache     %s" % os.path.realpath(own) in text, "du's text names both:\n" + text)
    # And the command reads and writes there too.
    check_eq(json.loads(omnihub(t, "--json", "-o", "cache=" + t.cache, "info", RESNET[2]))
             .get("cached"), True, "omnihub info: cached")


@test
def gc_covers_every_store(t):
    """omnihub gc --max 0 empties the general cache and the hub's own, but never a blob a
    mount has open."""
    zoo = t.shared
    own = os.path.join(t.dir, "onnx-cache")
    general, kept, gone = (entry_of(zoo, w) for w in (RESNET, AVGPOOL, CONV))
    write(user_file(t), hub_section(zoo))
    with t.mount(["cache=" + t.cache]) as m:
        read_all(m, RESNET)
    check(os.path.isfile(blob(t.cache, general)), "a first model in the general cache")
    own_cache_file(t, zoo, own)
    with t.mount(["cache=" + t.cache]) as m:
        read_all(m, CONV)
        with open(m.path(AVGPOOL[2]), "rb") as f:
            head = f.read(100)
            check_eq(blobs_in(own), sorted([kept["sha256"], gone["sha256"]]), "DIR2's blobs")
            doc = omnihub_json(t, "gc", "--max", "0")
            check_eq(sorted(r["blob"] for r in doc["removed"]),
                     sorted("sha256/" + e["sha256"] for e in (general, gone)), "removed")
            check_eq([(k["blob"], k["reason"]) for k in doc["kept"]],
                     [("sha256/" + kept["sha256"], "open in a mount")], "kept")
            check_eq(blobs_in(t.cache), [], "the general cache's blobs after gc")
            check_eq(blobs_in(own), [kept["sha256"]], "DIR2's blobs after gc")
            rest = f.read()
        check_eq(head + rest, expected_bytes(zoo, kept), "the open file read to its end")
    omnihub_json(t, "gc", "--max", "0")
    check_eq(blobs_in(own), [], "DIR2's blobs once the file is closed")


@test
def hub_cache_max_evicts_in_its_own_store(t):
    """[onnx] cache_max: reading two models with a limit that fits one leaves one in DIR2;
    the general cache, under no limit, keeps what it has."""
    zoo = t.shared
    own = os.path.join(t.dir, "onnx-cache")
    first, second = entry_of(zoo, CONV), entry_of(zoo, AVGPOOL)
    limit = max(first["bytes"], second["bytes"]) + 1
    check(limit < first["bytes"] + second["bytes"], "a limit that fits one model")
    own_cache_file(t, zoo, own, "cache_max = %d\n" % limit)
    with t.mount(["cache=" + t.cache]) as m:
        check_eq(read_all(m, CONV), expected_bytes(zoo, first), "the first model")
        check_eq(read_all(m, AVGPOOL), expected_bytes(zoo, second), "the second model")
    check_eq(blobs_in(own), [second["sha256"]], "DIR2's blobs under its cache_max")
    doc = omnihub_json(t, "du")
    own_store = [s for s in doc["stores"] if s["cache"] == os.path.realpath(own)]
    check_eq(own_store[0]["max"] if own_store else None, limit, "du: DIR2's limit")
    check_eq(doc["max"], None, "du: the general cache has no limit")


@test
def hub_cache_max_needs_its_cache(t):
    refused(t, "[onnx]\ncache_max = 1G\n",
            user_file(t) + ":2: [onnx]: cache_max per hub needs the hub's own cache directory")


BIGGEMM = ("BigGemm", 13, "onnx/biggemm/model.onnx")


@test
def hub_section_stream(t):
    """[onnx] stream = yes (the general setting is off): a read returns the file's first bytes
    while it is still arriving from a slow CDN (its blob still partial); the whole file
    then reads right, verified. Without the section, open waits for the whole file."""
    zoo = t.shared
    e = entry_of(zoo, BIGGEMM)
    rate = max(e["bytes"] // 4, 64 << 10)  # about four seconds for the whole file
    with ZooServer(zoo.fixture_dir, os.path.join(t.dir, "slow-zoo"), rate=rate) as slow:
        base = ("cacert = %s\nconnections = 1\n\n[onnx]\nindex_url = %s\nurl = %s\n"
                % (slow.cacert, slow.index_url, slow.model_base_url))
        write(user_file(t), base + "stream = yes\n")
        with t.mount(["cache=" + t.cache]) as m:
            with open(m.path(BIGGEMM[2]), "rb") as f:
                head = f.read(4096)
                check(not os.path.exists(blob(t.cache, e)),
                      "the blob was complete when the first bytes came: no stream mode")
                rest = f.read()
        check_eq(head + rest, expected_bytes(zoo, e), "the model's bytes, streamed")
        check(os.path.isfile(blob(t.cache, e)), "the streamed file's blob is not complete")
        write(user_file(t), base)
        other = os.path.join(t.dir, "cache-2")
        with t.mount(["cache=" + other]) as m:
            with open(m.path(BIGGEMM[2]), "rb") as f:
                check(os.path.isfile(blob(other, e)), "open returned before the whole file")
                check_eq(f.read(), expected_bytes(zoo, e), "the model's bytes")


@test
def hub_section_index_ttl(t):
    """[onnx] index_ttl = 1 (the general one is an hour): a lookup past a second fetches the
    onnx index again; without the section it is used from the cache. Counted from after the
    first listing, which may itself come more than a second after the start (under ASan)."""
    zoo = t.shared
    fetched = []
    for section in ("index_ttl = 1\n", ""):
        write(user_file(t), hub_section(zoo) + section)
        cache = os.path.join(t.dir, "cache-ttl-%d" % len(fetched))
        with t.mount(["cache=" + cache]) as m:
            os.listdir(m.path("onnx"))
            zoo.server.clear_logs()
            time.sleep(1.5)
            os.stat(m.path(RESNET[2]))  # a name not looked up yet: the hub asks its index
        fetched.append(count_requests(zoo.server, "raw", "ONNX_HUB_MANIFEST.json"))
    check_eq(fetched, [1, 0], "index fetches after a listing and 1.5 s, with [onnx] "
             "index_ttl = 1, then without")


# ---- settings parsed strictly, lists with blanks, secrets ----

def refused_start(t, args, env=None):
    """omnihub-fuse started with args: it must end by itself, mount nothing, exit 2 and say
    one sentence (the log's info lines aside). Returns that sentence."""
    merged = dict(t.env, **(env or {}))
    catalogs = "system_catalogs=" + os.path.join(SRCDIR, "catalogs")
    res = run_cli(t.binary, ["-f", "-o", "cache=%s,%s" % (t.cache, catalogs)] + list(args)
                  + [t.mountpoint], merged, mountpoint=t.mountpoint)
    check_eq(res.returncode, 2, "exit status; stderr: %r" % res.stderr)
    lines = [l for l in res.stderr.splitlines() if l.strip() and " info: " not in l]
    check_eq(len(lines), 1, "lines on stderr but the log's: %r" % res.stderr)
    check(" hub left out" not in res.stderr and not os.listdir(t.cache),
          "hubs were started before the setting was refused: %r" % res.stderr)
    return lines[0]


@test
def number_too_large_refused_before_mounting(t):
    """-o retries=99999999999 (once wrapped to 1215752191) and index_ttl=4294967296 (once 0):
    exit 2 with the setting, its origin and its range, before anything starts."""
    check_eq(refused_start(t, ["-o", "retries=99999999999"]),
             "omnihub-fuse: -o retries: 99999999999 is out of range (0 to 100)", "stderr")
    check_eq(refused_start(t, ["-o", "index_ttl=4294967296"]),
             "omnihub-fuse: -o index_ttl: 4294967296 is out of range (0 to 31536000 seconds)",
             "stderr")
    check_eq(refused_start(t, ["-o", "connections=0"]),
             "omnihub-fuse: -o connections: 0 is out of range (1 to 64)", "stderr")
    check_eq(refused_start(t, ["-o", "hf_ttl=-1"]),
             'omnihub-fuse: -o hf_ttl: "-1" is not a number of seconds (0 to 31536000 seconds)',
             "stderr")


@test
def unknown_option_and_bad_boolean_refused_before_starting(t):
    """An option neither omnihub-fuse nor libfuse knows (once refused only after the hubs had
    started and fetched their indexes, exit 1) and -o offline=perhaps: exit 2 at once."""
    catalogs = "system_catalogs=" + os.path.join(SRCDIR, "catalogs")
    res = run_cli(t.binary, ["-f", "-o", "cache=%s,%s,frobnicate=1" % (t.cache, catalogs),
                             t.mountpoint], t.env, mountpoint=t.mountpoint)
    check_eq(res.returncode, 2, "exit status; stderr: %r" % res.stderr)
    check("frobnicate" in res.stderr and " info: " not in res.stderr
          and not os.listdir(t.cache), "started before refusing: %r" % res.stderr)
    check_eq(refused_start(t, ["-o", "offline=perhaps"]),
             'omnihub-fuse: -o offline: "perhaps" is not yes or no '
             "(yes/no, true/false, on/off or 1/0)", "stderr")


@test
def number_too_large_in_file_names_line(t):
    """The same from the user's file: FILE:LINE, the setting and its range."""
    write(user_file(t), "# mine\ncache_max = 1G\nretries = 99999999999\n")
    check_eq(refused_start(t, []),
             "omnihub-fuse: %s:3: retries: 99999999999 is out of range (0 to 100)" % user_file(t),
             "stderr")
    write(user_file(t), "[huggingface]\napi_budget = 500/0\n")
    check_eq(refused_start(t, []),
             "omnihub-fuse: %s:2: hf_api_budget: 500/0 is out of range (CALLS 0 to 1000000, "
             "or CALLS/SECONDS with SECONDS 1 to 86400)" % user_file(t), "stderr")


@test
def offline_maybe_refused(t):
    """OMNIHUB_OFFLINE=maybe was taken as no: now exit 2, naming the variable."""
    check_eq(refused_start(t, [], env={"OMNIHUB_OFFLINE": "maybe"}),
             'omnihub-fuse: $OMNIHUB_OFFLINE: "maybe" is not yes or no '
             "(yes/no, true/false, on/off or 1/0)", "stderr")


@test
def config_command_refuses_bad_values(t):
    """omnihub config: a bad value from -o, the environment or a file exits 2 with the
    sentence, and prints no settings."""
    def refused_cli(args, want, env=None):
        res = run_omnihub(t, args + ["config"], env=env)
        check_eq((res.returncode, res.stdout, res.stderr.strip()), (2, "", want),
                 "omnihub %s config" % " ".join(args))
    refused_cli(["-o", "retries=4294967295"],
                "omnihub: -o retries: 4294967295 is out of range (0 to 100)")
    refused_cli(["-o", "piece_size=16777216T"],
                "omnihub: -o piece_size: 16777216T is out of range (64K to 1G)")
    refused_cli([], 'omnihub: $OMNIHUB_OFFLINE: "maybe" is not yes or no '
                    "(yes/no, true/false, on/off or 1/0)", env={"OMNIHUB_OFFLINE": "maybe"})
    write(user_file(t), "stall_timeout = 0\n")
    refused_cli([], "omnihub: %s:1: stall_timeout: 0 is out of range (1 to 86400 seconds)"
                % user_file(t))


@test
def config_command_hides_user_information(t):
    """omnihub config shows a mirror's, a proxy's and an index URL's password as ***, and a
    token given as the user too; text and JSON."""
    write(user_file(t), "mirror = http://team:secret1@a.lan:8080/cache http://secret2@b.lan\n"
                        "[onnx]\nindex_url = https://me:secret3@zoo.lan/ONNX_HUB_MANIFEST.json\n")
    env = {"https_proxy": "http://user:secret4@squid.lan:3128"}
    doc = json.loads(omnihub(t, "--json", "config", env=env))
    got = {s["key"]: s["value"] for s in doc["settings"] if s["hub"] is None}
    check_eq(got["mirror"], "http://team:***@a.lan:8080/cache http://***@b.lan", "mirror")
    check_eq(got["proxy"], "http://user:***@squid.lan:3128", "proxy")
    check_eq(got["onnx_index_url"], "https://me:***@zoo.lan/ONNX_HUB_MANIFEST.json",
             "onnx_index_url")
    text = omnihub(t, "config", env=env) + json.dumps(doc)
    check("secret" not in text, "a password shown:\n" + text)


@test
def list_with_blanks_after_commas(t):
    """repos = acme/tiny-onnx, gpt2 in [huggingface]: the blank no longer makes the hub
    refuse the list and drop out; both repos are listed."""
    import make_hf_repos as hf_fx
    from hf_server import HfServer
    from zoo_server import make_tls
    tls_dir = os.path.join(t.dir, "tls")
    make_tls(tls_dir)
    fixture = os.path.join(t.dir, "hf-fixture")
    hf_fx.make_repos(fixture)
    with HfServer(fixture, tls_dir) as srv:
        write(user_file(t), "cacert = %s\n[huggingface]\nendpoint = %s\nrepos = %s, %s\n"
              "[onnx]\nindex_url = %s\n"
              % (srv.cacert, srv.endpoint, hf_fx.ONNX_REPO, hf_fx.LEGACY_REPO,
                 srv.onnx_manifest_url))
        with t.mount(["cache=" + t.cache]) as m:
            top = os.listdir(m.mountpoint)
            check("huggingface" in top, "huggingface/ left out: %r" % top)
            listed = set(os.listdir(m.path("huggingface")))
            check({"acme", "gpt2"} <= listed, "pinned repos in huggingface/: %r" % listed)
            check("tiny-onnx" in os.listdir(m.path("huggingface", "acme")), "acme/tiny-onnx")


@test
def config_check_reports_every_problem(t):
    """omnihub config --check: every bad setting of the files, the environment and -o, one
    line each, exit 2, no mount and no request; exit 0 and "no problem found" when good."""
    system = os.path.join(t.dir, "system-config")
    write(system, "index_ttl = soon\n")
    write(user_file(t), "cache_max = 1G\nconnections = 0\n[huggingface]\nrepos = a/b, c/d\n"
                        "ttl = -1\n")
    res = run_omnihub(t, ["-o", "retries=99999999999", "config", "--check"],
                      env={"OMNIHUB_SYSTEM_CONFIG": system, "OMNIHUB_OFFLINE": "maybe"})
    check_eq(res.returncode, 2, "exit status; stderr: %r" % res.stderr)
    check_eq(res.stdout.splitlines(), [
        system + ':1: index_ttl: "soon" is not a number of seconds (0 to 31536000 seconds)',
        user_file(t) + ":2: connections: 0 is out of range (1 to 64)",
        user_file(t) + ':5: hf_ttl: "-1" is not a number of seconds (0 to 31536000 seconds)',
        '$OMNIHUB_OFFLINE: "maybe" is not yes or no (yes/no, true/false, on/off or 1/0)',
        "-o retries: 99999999999 is out of range (0 to 100)",
        "5 problems"], "omnihub config --check")
    check(not os.listdir(t.cache), "something started: %r" % os.listdir(t.cache))
    write(system, "")
    write(user_file(t), "cache_max = 1G\n")
    check_eq(omnihub(t, "config", "--check"), "no problem found\n", "good settings")
    # What the hubs check themselves (an id hf_repos refuses, a converter the catalogs'
    # load refuses), said where it was set, as the mount would stop on it. (Before: "no
    # problem found", exit 0, for values that stop the mount with exit 2.)
    write(user_file(t), "cache_max = 1G\n[huggingface]\nrepos = acme/tiny-onnx, bad..repo/x\n"
                        "[catalogs]\nconvert = nonsense\n")
    res = run_omnihub(t, ["config", "--check"], want=2)
    check_eq(res.stdout.splitlines(), [
        user_file(t) + ":3: hf_repos: 'bad..repo/x' is not a repo id (org/name[@rev])",
        user_file(t) + ':5: convert: "nonsense" is not FROM:TO:COMMAND (formats are '
        '[a-z0-9_.-] tokens)',
        "2 problems"], "omnihub config --check of values the hubs refuse")
    check_eq(res.stderr, "", "stderr of config --check")
    check(not os.listdir(t.cache), "something started: %r" % os.listdir(t.cache))


if __name__ == "__main__":
    run(fake_hub)
