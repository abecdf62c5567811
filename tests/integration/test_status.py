#!/usr/bin/env python3
"""Integration tests of the mount's .omnihub/ directory: status, metrics and log, read during a
throttled download from the local fake ONNX zoo and after it.
Not for the C renderers' details (tests/unit/test_status.c, test_metrics.c); without root or
/dev/fuse it fails (skips with OMNIHUB_ALLOW_SKIP=1).
"""

# Run by `make check` (TAP on stdout), or by hand:
#     OMNIHUB_FUSE=BUILDDIR/omnihub-fuse /usr/bin/python3 tests/integration/test_status.py [PART]

import errno
import math
import os
import re
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing the helpers

from mount_helpers import mount as hub_mount, one_model_zoo  # noqa: E402
from mount_helpers import (check, check_eq, errno_name, errno_of,  # noqa: E402
                           run, sha256_file, test, wait_for)


LARGE_MIB = 12
# One connection at this rate: the 12 MiB model takes about six seconds to arrive.
CDN_RATE = 2 << 20
MODEL = "onnx/biggemm/model.onnx"
STATUS_FILES = ["log", "metrics", "status"]


# ----------------------------------------------------------------------------- the fixture

def throttled_zoo(run_dir):
    """A zoo of one large model, served by a CDN that sends CDN_RATE bytes a second."""
    return one_model_zoo(run_dir, LARGE_MIB, rate=CDN_RATE)


def mount(t, *options):
    return hub_mount(t, t.shared.zoo, "connections=1", *options)


def read_file(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


# ----------------------------------------------------------------------------- Prometheus text

# The text exposition format 0.0.4: a sample is NAME{LABELS} VALUE [TIMESTAMP].
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*=" + LABEL_VALUE
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)"
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*,?)?\})? (%s)(?: -?\d+)?$"
                       % (NAME, LABEL, LABEL, VALUE))
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
LABEL_PAIR_RE = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=(%s)" % LABEL_VALUE)


def unescape_label(quoted):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), quoted[1:-1])


def parse_metrics(text):
    """Checks text against the format and returns {family: {"type", "help", "samples":
    [(name, {label: value}, float)]}}; raises AssertionError naming the first problem."""
    check(text.endswith("\n"), "the metrics text does not end with a line feed")
    families = {}
    for number, line in enumerate(text.splitlines(), 1):
        where = "metrics line %d: %r" % (number, line)
        m = HELP_RE.match(line)
        if m:
            check(m.group(1) not in families or "help" not in families[m.group(1)],
                  "second HELP, " + where)
            families.setdefault(m.group(1), {"samples": []})["help"] = m.group(2)
            continue
        m = TYPE_RE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"samples": []})
            check("type" not in fam and not fam["samples"], "TYPE after samples or twice, " + where)
            fam["type"] = m.group(2)
            continue
        check(not line.startswith("#"), "a comment that is neither HELP nor TYPE, " + where)
        m = SAMPLE_RE.match(line)
        check(m is not None, "not a sample, " + where)
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        labels = {k: unescape_label(v) for k, v in LABEL_PAIR_RE.findall(labels_text)}
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in families and \
                    families[name[:-len(suffix)]].get("type") == "histogram":
                family = name[:-len(suffix)]
        check(family in families and "type" in families[family] and "help" in families[family],
              "a sample without HELP and TYPE before it, " + where)
        families[family]["samples"].append((name, labels, float(value)))
    for family, fam in families.items():
        # A family may have no sample yet (no request made): legal in the format.
        check("type" in fam and "help" in fam, "%s lacks HELP or TYPE" % family)
        if fam["type"] == "counter":
            check(family.endswith("_total"), "counter %s does not end in _total" % family)
            for _, _, v in fam["samples"]:
                check(v >= 0 and not math.isnan(v), "counter %s is %r" % (family, v))
        if fam["type"] == "histogram":
            check_histogram(family, fam["samples"])
    return families


def check_histogram(family, samples):
    buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == family + "_bucket"]
    counts = [s[2] for s in samples if s[0] == family + "_count"]
    sums = [s[2] for s in samples if s[0] == family + "_sum"]
    check(buckets and len(counts) == 1 and len(sums) == 1,
          "%s lacks buckets, _count or _sum" % family)
    check_eq(buckets[-1][0], "+Inf", "%s's last bucket" % family)
    bounds = [float(le) for le, _ in buckets]
    check(bounds == sorted(bounds) and len(set(bounds)) == len(bounds),
          "%s's bounds are not increasing: %r" % (family, bounds))
    values = [v for _, v in buckets]
    check(values == sorted(values), "%s's buckets are not cumulative: %r" % (family, values))
    check_eq(values[-1], counts[0], "%s: +Inf bucket against _count" % family)
    check(sums[0] >= 0, "%s_sum is negative" % family)


def value(families, family, name=None, **labels):
    """The value of one sample of family (name defaults to the family's)."""
    name = name or family
    found = [v for n, ls, v in families[family]["samples"]
             if n == name and all(ls.get(k) == w for k, w in labels.items())]
    check_eq(len(found), 1, "samples of %s%r" % (name, labels))
    return found[0]


def requests_total(families, host=None, cls=None):
    return sum(v for _, ls, v in families["omnihub_http_requests_total"]["samples"]
               if (host is None or ls["host"] == host) and (cls is None or ls["class"] == cls))


# ----------------------------------------------------------------------------- status text

ROW_RE = re.compile(r"^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+)%\s+(-|[\d.]+ \S+/s)\s+(\S+)\s+(\d+)"
                    r"\s+(\d+)  (.+)$")


def transfer_rows(text):
    """{path: row} of the status file's transfer lines, checking the lines around them."""
    lines = text.splitlines()
    check(len(lines) >= 3, "status has fewer than three lines: %r" % text)
    check(lines[0].startswith("omnihub-fuse ") and ": up " in lines[0],
          "status summary line: %r" % lines[0])
    check(lines[1].startswith("cache: ") and "cache_max" in lines[1],
          "status cache line: %r" % lines[1])
    # Then every hub's state (test_hub_recovery.py checks it), then the transfers.
    check_eq(lines[2].split(), ["HUB", "STATE", "SINCE", "NEXT_TRY", "TRIES", "LAST_ERROR"],
             "hubs header")
    at = 3
    while at < len(lines) and not lines[at].startswith("STATE "):
        check(len(lines[at].split()) >= 6, "hub line does not parse: %r" % lines[at])
        at += 1
    check(at > 3, "status lists no hub")
    check(at < len(lines), "status has no transfer header: %r" % text)
    check_eq(lines[at].split(), ["STATE", "SOURCE", "DONE", "TOTAL", "%", "SPEED", "ETA", "CONN",
                                 "WAIT", "PATH"], "status header")
    rows = {}
    for line in lines[at + 1:]:
        m = ROW_RE.match(line)
        check(m is not None, "status line does not parse: %r" % line)
        rows[m.group(10)] = {"state": m.group(1), "source": m.group(2), "done": int(m.group(3)),
                             "total": int(m.group(4)), "percent": float(m.group(5)),
                             "speed": m.group(6), "eta": m.group(7), "conns": int(m.group(8)),
                             "waiting": int(m.group(9))}
    return rows


# ----------------------------------------------------------------------------- tests

@test
def hidden_directory_and_read_only_files(t):
    with mount(t) as m:
        check(".omnihub" in os.listdir(m.mountpoint), "readdir of the root lacks .omnihub")
        plain = subprocess.run(["ls", m.mountpoint], capture_output=True, text=True).stdout
        every = subprocess.run(["ls", "-a", m.mountpoint], capture_output=True, text=True).stdout
        check(".omnihub" not in plain.split(), "ls shows .omnihub: %r" % plain)
        check(".omnihub" in every.split(), "ls -a does not show .omnihub: %r" % every)
        st = os.stat(m.path(".omnihub"))
        check(stat.S_ISDIR(st.st_mode), ".omnihub is not a directory")
        check_eq(stat.S_IMODE(st.st_mode), 0o555, "mode of .omnihub")
        check_eq(sorted(os.listdir(m.path(".omnihub"))), STATUS_FILES, "files in .omnihub")
        for name in STATUS_FILES:
            path = m.path(".omnihub", name)
            st = os.stat(path)
            check(stat.S_ISREG(st.st_mode), "%s is not a regular file" % name)
            check_eq(stat.S_IMODE(st.st_mode), 0o444, "mode of .omnihub/" + name)
            for mode in ("w", "a", "r+"):
                got = errno_of(open, path, mode)
                check(got in (errno.EROFS, errno.EACCES),
                      "open(%s, %r): %s" % (name, mode, errno_name(got) if got else "opened"))
            # Its size is 0 in stat, yet it reads whole (direct I/O).
            check(read_file(path), ".omnihub/%s reads empty" % name)
        check_eq(errno_of(os.stat, m.path(".omnihub", "nope")), errno.ENOENT, "stat of .omnihub/nope")
        got = errno_of(os.mkdir, m.path(".omnihub", "d"))
        check(got in (errno.EROFS, errno.EACCES, errno.ENOSYS, errno.EPERM),
              "mkdir in .omnihub: %s" % (errno_name(got) if got else "made"))
        # cat, as `watch cat` runs it.
        res = subprocess.run(["cat", m.path(".omnihub", "status")], capture_output=True, text=True)
        check_eq(res.returncode, 0, "cat's exit status")
        check_eq(transfer_rows(res.stdout), {}, "transfers before any open")
        families = parse_metrics(read_file(m.path(".omnihub", "metrics")))
        check_eq(value(families, "omnihub_cache_misses_total"), 0, "misses before any open")
        check_eq(value(families, "omnihub_transfers"), 0, "transfers gauge before any open")
        check_eq(value(families, "omnihub_hub_up", hub="onnx"), 1, "onnx's up gauge")


@test
def one_open_reads_one_snapshot(t):
    """Small reads of one open see one content; a second open sees a newer one."""
    with mount(t) as m:
        path = m.path(".omnihub", "metrics")
        fd = os.open(path, os.O_RDONLY)
        try:
            first = os.read(fd, 7)
            time.sleep(1.1)  # the uptime gauge moves meanwhile
            chunks = [first]
            while True:
                chunk = os.read(fd, 7)
                if not chunk:
                    break
                chunks.append(chunk)
            text = b"".join(chunks).decode()
            again = os.pread(fd, 4096, 0).decode()
        finally:
            os.close(fd)
        families = parse_metrics(text)
        check(text.startswith(again[:len(text)]) or again == text[:4096],
              "a read at offset 0 of the same open differs")
        later = parse_metrics(read_file(path))
        up = value(families, "omnihub_uptime_seconds")
        check(value(later, "omnihub_uptime_seconds") >= up + 1.0,
              "a new open did not make new content (uptime %r then %r)"
              % (up, value(later, "omnihub_uptime_seconds")))


@test
def status_metrics_and_log_during_a_throttled_download(t):
    entry = t.shared.entry
    zoo = t.shared.zoo
    cdn_host = "localhost:%d" % zoo.ports["cdn"]
    with mount(t) as m:
        status_path = m.path(".omnihub", "status")
        metrics_path = m.path(".omnihub", "metrics")
        before = parse_metrics(read_file(metrics_path))
        result = {}

        def reader():
            try:
                result["sha"] = sha256_file(m.path(MODEL))
            except OSError as e:
                result["error"] = errno_name(e.errno)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            # The open waits for the download: status shows it, with its reader waiting.
            row1 = wait_for(lambda: transfer_rows(read_file(status_path)).get(MODEL), 10.0,
                            "the model in status")
            t.note("first status row: %r" % row1)
            time.sleep(1.0)
            text = read_file(status_path)
            t.note("second status:\n" + text)
            row2 = transfer_rows(text).get(MODEL)
            check(row2 is not None, "the model left status within a second")
            check_eq(row2["state"], "running", "state of the transfer")
            check_eq(row2["source"], "hub", "source of the transfer")
            check_eq(row2["total"], entry["bytes"], "total bytes in status")
            check(row2["done"] > row1["done"], "bytes done did not grow: %d then %d"
                  % (row1["done"], row2["done"]))
            check(row2["done"] < row2["total"], "the download ended too soon to be watched")
            check(row2["waiting"] >= 1, "no reader waiting in status: %r" % row2)
            check(row2["speed"] != "-" and row2["eta"] != "-",
                  "no speed or ETA while running: %r" % row2)
            check(abs(row2["percent"] - 100.0 * row2["done"] / row2["total"]) < 0.1,
                  "%% does not match the bytes: %r" % row2)
            summary = text.splitlines()[0]
            check("1 transfer," in summary and "1 reader waiting" in summary,
                  "summary line: %r" % summary)

            during = parse_metrics(read_file(metrics_path))
            check_eq(value(during, "omnihub_transfers"), 1, "transfers gauge during the download")
            check(value(during, "omnihub_transfer_waiters") >= 1, "waiters gauge")
            check(value(during, "omnihub_cache_partial_bytes") > 0, "partial bytes gauge")
            check(value(during, "omnihub_http_received_bytes_total") >
                  value(before, "omnihub_http_received_bytes_total"),
                  "bytes received did not move during the download")
            check_eq(value(during, "omnihub_cache_misses_total"), 1, "misses during the download")
        finally:
            thread.join(60)
        check(not thread.is_alive(), "the reader is still waiting")
        check_eq(result, {"sha": entry["sha256"]}, "the reader's result")

        after = parse_metrics(read_file(metrics_path))
        check_eq(value(after, "omnihub_cache_misses_total"), 1, "misses after the download")
        check_eq(value(after, "omnihub_cache_hits_total"), 0, "hits after the download")
        check_eq(value(after, "omnihub_downloads_completed_total"), 1, "downloads completed")
        check_eq(value(after, "omnihub_downloads_failed_total"), 0, "downloads failed")
        check_eq(value(after, "omnihub_digest_failures_total"), 0, "digest failures")
        check(value(after, "omnihub_http_received_bytes_total") >= entry["bytes"],
              "bytes received below the model's size")
        check(requests_total(after, host=cdn_host, cls="2xx") >= 1,
              "no 2xx request to the CDN (%s) counted" % cdn_host)
        hub_host = "127.0.0.1:%d" % zoo.ports["hub"]
        check(requests_total(after, host=hub_host) >= 1, "no request to the hub counted")
        check_eq(requests_total(after), requests_total(after, cls="2xx") +
                 requests_total(after, cls="3xx"), "requests that were not 2xx or 3xx")
        waited = value(after, "omnihub_open_wait_seconds", "omnihub_open_wait_seconds_sum")
        check_eq(value(after, "omnihub_open_wait_seconds", "omnihub_open_wait_seconds_count"), 1, "opens that waited")
        check(waited > 2.0, "the open waited %.3f s for a throttled download" % waited)
        check(value(after, "omnihub_http_first_byte_seconds", "omnihub_http_first_byte_seconds_count") >= 1, "first-byte times")
        check(value(after, "omnihub_cache_bytes") >= entry["bytes"], "cache bytes gauge")
        check_eq(value(after, "omnihub_transfers"), 0, "transfers gauge after the download")
        # The transfer that ended stays listed, done, with where its bytes came from.
        done = transfer_rows(read_file(status_path))
        check_eq(list(done), [MODEL], "status after the download")
        check_eq((done[MODEL]["state"], done[MODEL]["source"], done[MODEL]["done"]),
                 ("done", "hub", entry["bytes"]), "the ended transfer's row")
        check_eq(value(after, "omnihub_files_total", source="hub"), 1, "files from the hub")
        check_eq(value(after, "omnihub_source_bytes_total", source="hub"), entry["bytes"],
                 "bytes from the hub")
        cache_line = read_file(status_path).splitlines()[1]
        check("in 1 file (%d bytes)" % entry["bytes"] in cache_line, "cache line: %r" % cache_line)

        # A second open is served from the cache: a hit.
        check_eq(sha256_file(m.path(MODEL)), entry["sha256"], "sha256 of the second read")
        again = parse_metrics(read_file(metrics_path))
        check_eq(value(again, "omnihub_cache_hits_total"), 1, "hits after a second open")
        check_eq(value(again, "omnihub_cache_misses_total"), 1, "misses after a second open")

        log = read_file(m.path(".omnihub", "log"))
        done = [line for line in log.splitlines() if MODEL in line and "verified" in line]
        check(done, "the log has no line of the download of %s:\n%s" % (MODEL, log[-2000:]))
        check(all(line in m.log() for line in done), "the log file's lines are not on stderr")


if __name__ == "__main__":
    run(throttled_zoo, before_each=lambda shared: shared.zoo.clear_logs())
