#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qcow2 discards, zero writes and cluster reuse, against QEMU 7.2.

Every scenario runs twice, once through qmpd and once through
qemu-system-x86_64 (-M none, the same -drive line, the same HMP qemu-io
commands), on images made alike by qemu-img; the results are compared:
`qemu-img map --output=json` (which clusters are data, zero or absent,
and at which host offsets), the file's length, its allocated blocks (the
holes punched; within 32 KiB, for the blocks ext4 spends on its extent
tree), qemu-img check and qemu-img compare of the two images.  Where
QEMU is not installed the qmpd half still runs and its expected values
(measured on QEMU 7.2) are asserted.  Freed clusters are reused by qmpd
once the metadata that stopped using them is on disk: scenarios that
reuse them flush first.  Skips (77) without qemu-img.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, check_ended, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
from reference import start  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
BLOCK_SLACK = 32 * KiB


def hmp(c, line):
    r = c.execute("human-monitor-command", {"command-line": line})
    assert "return" in r, (line, r)
    return r["return"]


def finish(q, c):
    """quit; what qemu-io printed (qmpd and QEMU print it on stdout)."""
    c.execute("quit")
    assert q.wait(30) == 0, q.stderr_text()
    out = q.stdout_text()
    q.close()
    return out


def sides():
    """(qemu?) for each side that can run: QEMU first when installed."""
    return [True, False] if qemu_binary() else [False]


class Tmp:
    def __enter__(self):
        self.d = tempfile.mkdtemp(prefix="qmpd-discard-")
        return self.d

    def __exit__(self, *exc):
        shutil.rmtree(self.d, ignore_errors=True)


def extents(path):
    """The file's data extents (SEEK_DATA/SEEK_HOLE)."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while True:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h))
            off = h
    finally:
        os.close(fd)
    return out


def layout(path):
    st = os.stat(path)
    return {"map": json.loads(img("map", "--output=json", path)),
            "size": st.st_size, "bytes": st.st_blocks * 512}


def make_image(d, name, create=(), backing=None):
    """A 64 MiB qcow2 (with @create options), backed by @backing's file
    (made by make_backing) when given."""
    p = os.path.join(d, name)
    if backing:
        img("create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2",
            *create, p)
    else:
        img("create", "-q", "-f", "qcow2", *create, p, "64M")
    return p


def make_backing(d, cmds):
    p = os.path.join(d, "base.qcow2")
    if not os.path.exists(p):
        img("create", "-q", "-f", "qcow2", p, "64M")
        args = ["qemu-io", "-f", "qcow2"]
        for c in cmds:
            args += ["-c", c]
        subprocess.run(args + [p], check=True, capture_output=True)
    return p


def run_seq(qemu, path, drive, cmds):
    """@cmds through HMP qemu-io on -drive @path@drive; qemu-io's output."""
    q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2%s"
                  % (path, drive)], qemu)
    for cmd in cmds:
        hmp(c, 'qemu-io d0 "%s"' % cmd)
    return finish(q, c)


def compare_sides(paths, results):
    """qmpd's image against QEMU's: same map, length, content; blocks
    within BLOCK_SLACK.  @results: side -> layout."""
    if True not in results:
        return
    a, b = results[True], results[False]
    assert a["map"] == b["map"], ("map", a["map"], b["map"])
    assert a["size"] == b["size"], ("size", a["size"], b["size"])
    assert abs(a["bytes"] - b["bytes"]) <= BLOCK_SLACK, \
        ("allocated", a["bytes"], b["bytes"])
    p = subprocess.run(["qemu-img", "compare", paths[True], paths[False]],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def scenario(d, tag, cmds, drive=",discard=unmap", create=(),
             backing_cmds=None):
    """@cmds on each side's copy of the same image; their layouts."""
    paths, results = {}, {}
    for qemu in sides():
        sub = os.path.join(d, "%s-%s" % (tag, "qemu" if qemu else "qmpd"))
        os.mkdir(sub)
        backing = make_backing(sub, backing_cmds) \
            if backing_cmds is not None else None
        p = make_image(sub, "t.qcow2", create, backing)
        out = run_seq(qemu, p, drive, cmds)
        assert "fail" not in out.lower(), out
        check_clean(p)
        paths[qemu] = p
        results[qemu] = layout(p)
    compare_sides(paths, results)
    return results[False]


def test_discard_reaches_file():
    """The issue's case: 8 MiB written and discarded with discard=unmap
    leaves 8.65 MB on disk before the fix; QEMU 7.2 keeps 266 KB, and so
    does qmpd now.  The clusters read as zeroes (zero flag, v3)."""
    need_tools()
    with Tmp() as d:
        r = scenario(d, "issue", ["write -P 0x5a 0 8M", "discard 0 8M"])
        assert r["bytes"] <= 300 * KiB, r["bytes"]
        assert r["size"] == 8716288, r["size"]
        assert r["map"][0] == {"start": 0, "length": 8 * MiB, "depth": 0,
                               "present": True, "zero": True,
                               "data": False}, r["map"]


def test_discard_options():
    """Which freed clusters reach the file: the qcow2 node's
    pass-discard-request (default: its discard option) and the file
    node's own discard option both decide, as in QEMU."""
    need_tools()
    cmds = ["write -P 1 0 1M", "discard 0 512k", "flush",
            "write -P 2 2M 64k"]
    cases = [
        # drive options, discard changed the L2 entries, holes punched
        ("", False, False),
        (",discard=unmap", True, True),
        (",discard=unmap,pass-discard-request=off", True, False),
        (",discard=unmap,file.discard=ignore", True, False),
        (",discard=ignore,pass-discard-request=on", False, False),
        # -drive also takes on/off, for the qcow2 node and its file
        (",discard=on", True, True),
        (",discard=on,file.discard=off", True, False),
    ]
    with Tmp() as d:
        for i, (drive, changed, punched) in enumerate(cases):
            r = scenario(d, "opt%d" % i, cmds, drive=drive)
            first = r["map"][0]
            if changed:
                assert first["zero"] and first["length"] == 512 * KiB, r
                # the freed clusters took the write at 2M (reused)
                assert r["size"] == 1344 * KiB, (drive, r)
            else:
                assert first["data"] and first["length"] == 1 * MiB, r
            if punched:
                assert r["bytes"] <= 900 * KiB, (drive, r["bytes"])
            else:
                assert r["bytes"] >= 1200 * KiB, (drive, r["bytes"])
        p = make_image(d, "bad.qcow2")
        for qemu in sides():
            b = qemu_binary() if qemu else binary()
            r = subprocess.run([b, "-M", "none", "-nodefaults", "-display",
                                "none", "-drive", "file=%s,if=none,"
                                "discard=bogus" % p],
                               capture_output=True, text=True, timeout=60)
            if qemu:
                assert r.returncode == 1, r
            else:
                check_ended("qmpd", r.returncode, 1, r.stderr)
            assert r.stderr.rstrip().endswith(
                "discard=bogus: Invalid discard option"), r.stderr


SEQUENCES = [
    # v3: zero writes keeping and dropping allocations, partial clusters,
    # unallocated clusters, a discard of less than a cluster
    ("v3", {}, ["write -P 1 0 1M", "write -z 0 256k",
                "write -z -u 256k 256k", "write -z 2M 64k",
                "write -z 3M 4k", "write -z 640k 4k", "discard 4M 4k",
                "flush", "write -P 2 4M 64k", "discard 4M 96k"]),
    # writes into zero clusters that kept their allocation go in place;
    # freed clusters are reused
    ("v3-inplace", {}, ["write -P 1 0 1M", "write -z 0 256k",
                        "write -P 3 0 4k", "write -z -u 256k 256k",
                        "flush", "write -P 4 256k 64k"]),
    # v2: no zero flag; zero writes without a backing file discard
    ("v2", {"create": ["-o", "compat=0.10"]},
     ["write -P 1 0 1M", "write -z 0 256k", "write -z -u 256k 128k",
      "write -z 2M 64k", "write -z 3M 4k", "discard 512k 128k", "flush",
      "write -P 2 4M 64k"]),
    # v3 over a backing file: zero flags where the backing would show,
    # partial zero writes that need the backing file's status
    ("v3-backing", {"backing_cmds": ["write -P 9 0 2M", "write -z 2M 64k"]},
     ["write -P 1 1M 256k", "discard 0 128k", "discard 1M 128k",
      "write -z 1152k 4k", "flush", "write -z 2M 4k", "write -z 3M 4k",
      "write -z 1536k 4k", "write -z -u 1216k 64k", "discard 4M 64k"]),
    # v2 over a backing file: discards do nothing, zero writes are data
    ("v2-backing", {"create": ["-o", "compat=0.10"],
                    "backing_cmds": ["write -P 9 0 2M"]},
     ["write -P 1 1M 256k", "discard 0 128k", "discard 1M 128k",
      "write -z 1152k 4k", "flush", "write -z 3M 64k",
      "write -z 1536k 64k"]),
    # zero writes with unmap deallocate even with discard=ignore (the
    # flag only stops the node's parents and guest discards)
    ("ignore", {"drive": ""}, ["write -P 1 0 1M", "discard 0 512k",
                               "write -z -u 512k 256k"]),
    # discards of whole L2 tables' worth, across a table boundary
    ("big", {"create": ["-o", "cluster_size=4k"]},
     ["write -P 1 0 3M", "discard 1M 1536k", "write -z -u 0 512k",
      "flush", "write -P 2 2900k 100k"]),
]


def test_zero_and_discard_like_qemu():
    """What zero writes (with and without unmap) and discards leave in
    the L2 tables, and where later writes go, for v2 and v3 images with
    and without a backing file: the same map as QEMU's, cluster for
    cluster and offset for offset."""
    need_tools()
    with Tmp() as d:
        for tag, opts, cmds in SEQUENCES:
            kw = dict(opts)
            scenario(d, tag, cmds, **kw)


def test_reuse_across_sessions():
    """Clusters QEMU freed before qmpd opened the image are found at open
    (from the refcount blocks) and reused first fit, as QEMU does."""
    need_tools()
    with Tmp() as d:
        paths, results = {}, {}
        for qemu in sides():
            sub = os.path.join(d, "qemu" if qemu else "qmpd")
            os.mkdir(sub)
            p = make_image(sub, "t.qcow2")
            subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                            "write -P 1 0 2M", "-c", "discard 256k 768k",
                            p], check=True, capture_output=True)
            out = run_seq(qemu, p, ",discard=unmap",
                          ["write -P 2 8M 128k", "write -P 3 9M 1M"])
            assert "fail" not in out.lower(), out
            check_clean(p)
            paths[qemu], results[qemu] = p, layout(p)
        r = results[False]
        compare_sides(paths, results)
        # the first write fills the hole's start, the second takes the
        # rest of it and goes on past the end
        assert [m.get("offset") for m in r["map"] if m["data"]] == \
            [327680, 1376256, 589824, 2424832], r["map"]


def test_pass_discard_other():
    """A resize moves the L1 table; the old one is freed for "other"
    reasons and reaches the file only with pass-discard-other=on."""
    need_tools()
    with Tmp() as d:
        for opt, hole in (("", False), (",pass-discard-other=on", True)):
            ext = {}
            for qemu in sides():
                sub = os.path.join(d, "%s%d" % ("qemu" if qemu else "qmpd",
                                                hole))
                os.mkdir(sub)
                p = make_image(sub, "t.qcow2")
                q, c = start(["-drive", "file=%s,if=none,id=d0,"
                              "format=qcow2,discard=unmap%s" % (p, opt)],
                             qemu)
                hmp(c, 'qemu-io d0 "write -P 1 0 64k"')
                hmp(c, "block_resize d0 2G")
                hmp(c, 'qemu-io d0 "flush"')
                finish(q, c)
                check_clean(p)
                ext[qemu] = (extents(p), os.path.getsize(p))
            if True in ext:
                assert ext[True] == ext[False], ext
            # the old L1 table was the fourth cluster
            old_l1 = any(a <= 3 * 64 * KiB < b for a, b in ext[False][0])
            assert old_l1 != hole, ext


def corrupt_image(d, name, target):
    """A qcow2 whose first L2 entry points at host offset @target (with
    the "copied" flag), as qemu-img check would call corrupt."""
    p = os.path.join(d, name)
    img("create", "-q", "-f", "qcow2", p, "64M")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 1 0 64k", p],
                   check=True, capture_output=True)
    with open(p, "r+b") as f:
        hdr = f.read(104)
        l1 = int.from_bytes(hdr[40:48], "big")
        f.seek(l1)
        l2 = int.from_bytes(f.read(8), "big") & 0x00fffffffffffe00
        f.seek(l2)
        f.write((target | (1 << 63)).to_bytes(8, "big"))
    return p


def corrupt_bit(path):
    info = json.loads(img("info", "--output=json", path))
    return info["format-specific"]["data"].get("corrupt")


def test_overlap_check():
    """A guest write that would overwrite metadata (an L2 entry pointing
    at it) fails with EIO, marks the image corrupt, sends
    BLOCK_IMAGE_CORRUPTED and leaves the node without a medium, with
    QEMU's message for each kind of metadata; overlap-check=none and the
    struct form turn checks off."""
    need_tools()
    targets = [(0x10000, "refcount table"), (0x20000, "refcount block"),
               (0x30000, "active L1 table"), (0x40000, "active L2 table")]
    with Tmp() as d:
        for target, what in targets:
            events = {}
            for qemu in sides():
                p = corrupt_image(d, "c%x%d.qcow2" % (target, qemu), target)
                q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2"
                              % p], qemu)
                hmp(c, 'qemu-io d0 "write -P 2 0 4k"')
                hmp(c, 'qemu-io d0 "read 0 4k"')
                ev = c.event("BLOCK_IMAGE_CORRUPTED", timeout=30)["data"]
                blk = c.execute("query-block")["return"][0]
                out = finish(q, c)
                assert out.splitlines()[0] == \
                    "write failed: Input/output error", out
                assert "read failed: No medium found" in out, out
                assert corrupt_bit(p) is True, p
                ev.pop("node-name")
                events[qemu] = ev
                if not qemu:
                    assert "inserted" not in blk, blk
            assert events[False] == {
                "device": "d0", "fatal": True, "offset": target,
                "size": 4096, "msg": "Preventing invalid write on metadata "
                "(overlaps with %s)" % what}, events
            if True in events:
                assert events[True] == events[False], events
        # checks off: the write goes through (and corrupts, as in QEMU)
        for opt in (",overlap-check=none",
                    ",overlap-check.template=all,"
                    "overlap-check.refcount-block=off"):
            for qemu in sides():
                p = corrupt_image(d, "off%d.qcow2" % qemu, 0x20000)
                q, c = start(["-drive", "file=%s,if=none,id=d0,"
                              "format=qcow2%s" % (p, opt)], qemu)
                hmp(c, 'qemu-io d0 "write -P 2 0 4k"')
                assert not [e for e in c.events
                            if e["event"] == "BLOCK_IMAGE_CORRUPTED"]
                out = finish(q, c)
                assert "wrote 4096/4096" in out, (opt, out)
                assert corrupt_bit(p) is False, p


def test_option_errors():
    """Each qcow2 option is taken with QEMU's checks and messages, or
    refused naming itself."""
    need_tools()
    cases = [
        ({"cache-size": MiB, "l2-cache-size": 64 * KiB,
          "refcount-cache-size": 64 * KiB},
         "cache-size, l2-cache-size and refcount-cache-size may not be set "
         "at the same time"),
        ({"cache-size": 64 * KiB, "l2-cache-size": 128 * KiB},
         "l2-cache-size may not exceed cache-size"),
        ({"cache-size": 64 * KiB, "refcount-cache-size": 128 * KiB},
         "refcount-cache-size may not exceed cache-size"),
        ({"l2-cache-entry-size": 1000}, "L2 cache entry size must be a "
         "power of two between 512 and the cluster size (65536)"),
        ({"l2-cache-entry-size": 128 * KiB}, "L2 cache entry size must be "
         "a power of two between 512 and the cluster size (65536)"),
        ({"l2-cache-size": -1}, "Parameter 'l2-cache-size' expects a "
         "non-negative number below 2^64"),
        ({"cache-clean-interval": -1}, "Cache clean interval too big"),
        ({"cache-clean-interval": 1 << 32}, "Cache clean interval too big"),
        ({"refcount-cache-size": 1 << 60}, "Refcount cache size too big"),
        ({"overlap-check": "bogus"},
         "Parameter 'overlap-check' does not accept value 'bogus'"),
        ({"cache-clean-interval": (1 << 32) - 1}, None),
        ({"l2-cache-size": 1 << 60}, None),
        ({"l2-cache-size": 0}, None),
        ({"cache-size": 256 * KiB}, None),
        ({"l2-cache-entry-size": 64 * KiB}, None),
        ({"overlap-check": {"template": "all", "main-header": False}},
         None),
        ({"pass-discard-other": True, "pass-discard-snapshot": False},
         None),
    ]
    v2_cases = [
        ({"lazy-refcounts": True}, "Lazy refcounts require a qcow2 image "
         "with at least qemu 1.1 compatibility level"),
        ({"lazy-refcounts": False}, None),
    ]
    # qmpd's own refusals, where QEMU would take the option
    own = [
        ({"l2-cache-entry-size": 4096}, "qmpd caches whole L2 tables: "
         "l2-cache-entry-size must be the cluster size (65536)"),
        ({"lazy-refcounts": True}, "qmpd does not support "
         "lazy-refcounts=on (refcounts are always kept up to date)"),
    ]
    with Tmp() as d:
        v3 = make_image(d, "v3.qcow2")
        v2 = make_image(d, "v2.qcow2", ["-o", "compat=0.10"])
        for qemu in sides():
            q, c = start([], qemu)
            todo = [(v3, o, e) for o, e in cases] + \
                [(v2, o, e) for o, e in v2_cases]
            if not qemu:
                todo += [(v3, o, e) for o, e in own]
            for i, (path, opts, want) in enumerate(todo):
                args = {"driver": "qcow2", "node-name": "n%d" % i,
                        "file": {"driver": "file", "filename": path}}
                args.update(opts)
                r = c.execute("blockdev-add", args)
                if want is None:
                    assert "return" in r, (qemu, opts, r)
                    assert "return" in c.execute("blockdev-del",
                                                 {"node-name": "n%d" % i})
                else:
                    assert r.get("error", {}).get("desc") == want, \
                        (qemu, opts, r)
            finish(q, c)
        check_clean(v3)
        check_clean(v2)


def test_lazy_refcounts_image():
    """An image with the lazy refcounts feature bit is written with
    refcounts kept up to date: never dirty, clean for qemu-img check."""
    need_tools()
    with Tmp() as d:
        p = make_image(d, "lazy.qcow2", ["-o", "lazy_refcounts=on"])
        q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2" % p])
        hmp(c, 'qemu-io d0 "write -P 1 0 1M"')
        hmp(c, 'qemu-io d0 "flush"')
        ins = c.execute("query-block")["return"][0]["inserted"]
        assert ins["image"]["dirty-flag"] is False, ins
        assert ins["image"]["format-specific"]["data"]["lazy-refcounts"]
        with open(p, "rb") as f:
            f.seek(72)
            assert int.from_bytes(f.read(8), "big") & 1 == 0
        finish(q, c)
        check_clean(p)


def blkdebug_node(path, loads, extra=None):
    """qcow2 over blkdebug over @path: the @loads-th L2 table load fails
    with EIO (state n counts the loads so far)."""
    states = [{"event": "l2_load", "state": i, "new_state": i + 1}
              for i in range(1, loads)]
    o = {"driver": "qcow2", "node-name": "q",
         "file": {"driver": "blkdebug",
                  "image": {"driver": "file", "filename": path},
                  "set-state": states,
                  "inject-error": [{"event": "l2_load", "state": loads,
                                    "errno": 5}]}}
    o.update(extra or {})
    return json.dumps(o)


def test_l2_cache_size():
    """l2-cache-size bounds the tables kept: with room for two, reading
    four tables' clusters and the first again loads it a fifth time (the
    fifth load fails here); with the default cache it stays."""
    need_tools()
    with Tmp() as d:
        p = os.path.join(d, "big.qcow2")
        img("create", "-q", "-f", "qcow2", p, "2G")
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 64k",
                        "-c", "write 512M 64k", "-c", "write 1G 64k",
                        "-c", "write 1536M 64k", p], check=True,
                       capture_output=True)
        reads = ["read 0 4k", "read 512M 4k", "read 1G 4k", "read 1536M 4k",
                 "read 0 4k"]
        for small in (True, False):
            extra = {"l2-cache-size": 128 * KiB,
                     "l2-cache-entry-size": 64 * KiB} if small else {}
            for qemu in sides():
                q, c = start(["-blockdev", blkdebug_node(p, 5, extra)], qemu)
                for r in reads:
                    hmp(c, 'qemu-io q "%s"' % r)
                out = finish(q, c)
                failed = "read failed: Input/output error" in out
                assert failed == small, (small, qemu, out)
        check_clean(p)


def read_fails(q, c):
    """One qemu-io read of the table's cluster: did it fail?"""
    before = len(q.stdout_data)
    hmp(c, 'qemu-io q "read 0 4k"')
    deadline = time.time() + 30
    while b"\n4 KiB" not in q.stdout_data[before:] \
            and b"failed" not in q.stdout_data[before:]:
        assert time.time() < deadline, bytes(q.stdout_data[before:])
        time.sleep(0.01)
    return b"read failed" in q.stdout_data[before:]


def test_cache_clean_interval():
    """cache-clean-interval drops tables nobody used for an interval: a
    table read again after an idle spell is loaded again (that second
    load fails here), as in QEMU; with 0 nothing is dropped.  The idle
    spells double until the reload shows (any read uses the table)."""
    need_tools()
    with Tmp() as d:
        p = os.path.join(d, "t.qcow2")
        img("create", "-q", "-f", "qcow2", p, "64M")
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 64k", p],
                       check=True, capture_output=True)
        idle = {}
        for qemu in sides():
            q, c = start(["-blockdev", blkdebug_node(
                p, 2, {"cache-clean-interval": 1})], qemu)
            assert not read_fails(q, c)
            spell = 0.5
            while not read_fails(q, c):
                assert spell < 64, "the table was never dropped"
                spell *= 2
                time.sleep(spell)   # the idle time under test
            idle[qemu] = spell
            finish(q, c)
        # disabled: idle as long as the enabled run needed, and longer
        q, c = start(["-blockdev", blkdebug_node(
            p, 2, {"cache-clean-interval": 0})])
        assert not read_fails(q, c)
        time.sleep(idle[False] * 2)
        assert not read_fails(q, c)
        finish(q, c)
        check_clean(p)


def test_frees_across_refcount_blocks():
    """Frees queued in refcount block order 1, 0, 1 (4 KiB clusters: a
    block counts 8 MiB): applying them block by block must not take
    the entries already applied for another block (zeroed) for cluster
    0; that left the header cluster with refcount 0 before."""
    need_tools()
    with Tmp() as d:
        p = os.path.join(d, "f.qcow2")
        img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", p, "64M")
        q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2,"
                      "discard=unmap" % p])
        for cmd in ("write -P 1 0 10M", "flush", "discard 9M 64k",
                    "discard 1M 64k", "discard 9536k 64k", "flush",
                    "read -P 1 8M 1M", "read -P 0 9M 64k"):
            hmp(c, 'qemu-io d0 "%s"' % cmd)
        c.execute("quit")
        assert q.wait(30) == 0
        out = q.stdout_text()
        q.close()
        assert "fail" not in out.lower(), out
        check_clean(p)


def test_kill9_consistent():
    """kill -9 while writes, zero writes, discards and flushes are in
    flight, on 4 KiB clusters (many refcount blocks, freed clusters
    reused at once): every time qemu-img check finds leaks at most,
    never a cluster referenced with a refcount it lacks."""
    need_tools()
    import random
    rnd = random.Random(7)
    ops = ["aio_write -P 0x%x" % v for v in (0x11, 0x22, 0x33)] + \
        ["aio_write -z", "aio_write -z -u", "discard", "aio_flush"]
    with Tmp() as d:
        p = os.path.join(d, "k.qcow2")
        for it in range(8):
            if it % 4 == 0:
                img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k",
                    p, "64M")
            q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2,"
                          "discard=unmap" % p])
            for _ in range(rnd.randrange(20, 300)):
                off = rnd.randrange(0, 64 * MiB, 512)
                ln = min(rnd.choice([512, 4 * KiB, 64 * KiB, 300 * KiB, MiB]),
                         64 * MiB - off)
                op = rnd.choice(ops)
                hmp(c, 'qemu-io d0 "%s"' % (op if op == "aio_flush"
                                            else "%s %d %d" % (op, off, ln)))
            q.kill9()
            q.close()
            check_clean(p, leaks=True)
            img("check", "-q", "-r", "leaks", p)


if __name__ == "__main__":
    run([test_discard_reaches_file, test_discard_options,
         test_zero_and_discard_like_qemu, test_reuse_across_sessions,
         test_pass_discard_other, test_overlap_check, test_option_errors,
         test_lazy_refcounts_image, test_l2_cache_size,
         test_cache_clean_interval, test_frees_across_refcount_blocks,
         test_kill9_consistent])
