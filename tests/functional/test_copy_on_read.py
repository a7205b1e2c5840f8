#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Copy-on-read: -drive copy-on-read=on and the copy-on-read filter.

The same images (made with qemu-img and qemu-io) go to qmpd and to QEMU
7.2 (when installed); the same guest reads run on both; afterwards the
top images must have the same allocation (qemu-img map --output=json,
host offsets included), the same content, and pass qemu-img check.
Queries (the node graph, the filter's node) and errors are compared too.
A read racing a guest write to the same cluster (held at a blkdebug
breakpoint in the base) must leave the guest's data.  Skips (77)
without qemu-img.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools, qemu_io  # noqa: E402
from reference import start  # noqa: E402
from test_bitmaps import cmd, quit  # noqa: E402
from test_force_share import outcome, scratch, sides  # noqa: E402

KiB = 1024
MiB = 1024 * KiB


def hmp(c, line):
    out = c.cmd("human-monitor-command", **{"command-line": line})
    assert "error" not in out.lower(), (line, out)
    return out


def mapping(path):
    return json.loads(img("map", "--output=json", path))


def chain3(d):
    """base <- mid <- top, 1 MiB: data, zeroes and holes in each layer."""
    b, m, t = (os.path.join(d, n + ".qcow2") for n in ("b", "m", "t"))
    img("create", "-q", "-f", "qcow2", b, "1M")
    qemu_io(b, "write -P 0x11 0 512k")
    img("create", "-q", "-f", "qcow2", "-b", b, "-F", "qcow2", m)
    qemu_io(m, "write -P 0x22 128k 128k", "write -z 384k 64k")
    img("create", "-q", "-f", "qcow2", "-b", m, "-F", "qcow2", t)
    qemu_io(t, "write -P 0x33 192k 64k")
    return b, m, t


def chain2(d):
    """base (4 MiB: data, a zero cluster run, zero-filled data) <- top."""
    b, t = (os.path.join(d, n + ".qcow2") for n in ("base", "top"))
    img("create", "-q", "-f", "qcow2", b, "4M")
    qemu_io(b, "write -P 0x11 0 1M", "write -z 1M 512k", "write -P 0 2M 64k")
    img("create", "-q", "-f", "qcow2", "-b", b, "-F", "qcow2", t)
    qemu_io(t, "write -P 0x22 256k 64k")
    return b, t


def same_images(a, b):
    """Same allocation and content, both clean."""
    assert mapping(a) == mapping(b), (mapping(a), mapping(b))
    p = subprocess.run(["qemu-img", "compare", a, b], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    check_clean(a)
    check_clean(b)


def names(c):
    return sorted((n["drv"], n["file"].split("/")[-1])
                  for n in c.cmd("query-named-block-nodes", flat=True))


# Guest reads: inside, across and beyond what the top holds, a cluster
# of zeroes in the base, zero-filled data, nothing anywhere
READS = ["4k 4k", "250k 20k", "1M 64k", "2M 64k", "3M 4k",
         "%d 700k" % (3 * MiB + 100 * KiB)]


def test_drive_copy_on_read():
    """-drive copy-on-read=on: reads fill the top, the graph is QEMU's
    (no filter node), bitmaps do not see the copies."""
    need_tools()
    tops = {}
    graphs = {}
    for qemu in sides():
        d = scratch()
        base, top = chain2(d)
        before = mapping(top)
        q, c = start(["-M", "pc", "-drive", "file=%s,if=none,id=d0,"
                      "copy-on-read=on" % top, "-device",
                      "virtio-blk-pci,drive=d0,id=vd0"], qemu)
        with q:
            graphs[qemu] = names(c)
            cmd(c, "block-dirty-bitmap-add", node="d0", name="bm")
            for r in READS[:-1]:
                hmp(c, 'qemu-io d0 "read %s"' % r)
            # the guest device's read copies the same way
            hmp(c, 'qemu-io -d vd0/virtio-backend "read %s"' % READS[-1])
            bm = c.cmd("query-block")[0]["inserted"]["dirty-bitmaps"]
            assert bm[0]["count"] == 0, bm
            quit(q, c)
        assert mapping(top) != before
        # what the guest sees did not change: the chain as it was
        img("rebase", "-q", "-u", "-b", "", top)
        p = subprocess.run(["qemu-img", "compare", top, base],
                           capture_output=True, text=True)
        assert p.returncode == 1, p.stdout
        img("rebase", "-q", "-u", "-b", base, "-F", "qcow2", top)
        tops[qemu] = top
    # depth 0 where read (whole clusters), the rest still below
    assert [(e["start"], e["length"], e["zero"])
            for e in mapping(tops[False]) if e["depth"] == 0] == [
        (0, 64 * KiB, False), (192 * KiB, 64 * KiB, False),
        (256 * KiB, 64 * KiB, False), (1 * MiB, 64 * KiB, True),
        (2 * MiB, 64 * KiB, True), (3 * MiB, 832 * KiB, True)]
    assert ("qcow2", "top.qcow2") in graphs[False]
    assert all(drv != "copy-on-read" for drv, _ in graphs[False])
    if True in tops:
        assert graphs[True] == graphs[False], graphs
        same_images(tops[False], tops[True])
    check_clean(tops[False])


def test_drive_options():
    """copy-on-read= takes on/off; a read-only drive ignores it with
    QEMU's warning; such a node cannot be made read-only."""
    need_tools()
    for qemu in sides():
        d = scratch()
        base, top = chain2(d)
        before = mapping(top)
        q, c = start(["-drive", "file=%s,if=none,id=d0,readonly=on,"
                      "copy-on-read=on" % top], qemu)
        with q:
            hmp(c, 'qemu-io d0 "read 0 1M"')
            quit(q, c)
            assert ("warning: disabling copy-on-read on read-only drive"
                    in q.stderr_text()), q.stderr_text()
        assert mapping(top) == before
        q, c = start(["-drive", "file=%s,if=none,id=d0,node-name=n0,"
                      "file.node-name=f0,copy-on-read=on" % top], qemu)
        with q:
            assert outcome(c, "blockdev-reopen", {"options": [{
                "driver": "qcow2", "node-name": "n0", "file": "f0",
                "read-only": True}]}) == (
                "GenericError",
                "Can't set node 'd0' to r/o with copy-on-read enabled")
            assert c.cmd("query-block")[0]["inserted"]["ro"] is False
            quit(q, c)
        with Qmpd(["-M", "none", "-drive", "file=%s,if=none,id=d0,"
                   "copy-on-read=maybe" % top],
                  binary_path=qemu_binary() if qemu else None,
                  wait=False, status=1) as q:
            assert q.wait(60) == 1
            assert "Parameter 'copy-on-read' expects 'on' or 'off'" in \
                q.stderr_text(), q.stderr_text()
        check_clean(top)


def chain_args(b, m, t):
    return ["-blockdev", "driver=qcow2,node-name=base,file.driver=file,"
            "file.filename=%s,read-only=on" % b,
            "-blockdev", "driver=qcow2,node-name=mid,file.driver=file,"
            "file.filename=%s,backing=base,read-only=on" % m,
            "-blockdev", "driver=qcow2,node-name=top,file.driver=file,"
            "file.filename=%s,backing=mid" % t]


def test_filter_bottom():
    """The filter copies everything, or what the chain holds down to
    bottom; maps as QEMU leaves them."""
    need_tools()
    for bottom in (None, "mid", "base", "top"):
        tops = {}
        # QEMU 7.2 crashes when bottom is the filter's child itself and
        # the walk passes the end of the chain; qmpd copies as with the
        # last node of the chain as bottom
        for qemu in sides() if bottom != "top" else [False]:
            d = scratch()
            b, m, t = chain3(d)
            q, c = start(chain_args(b, m, t), qemu)
            with q:
                args = {"driver": "copy-on-read", "node-name": "cor",
                        "file": "top"}
                if bottom:
                    args["bottom"] = bottom
                c.cmd("blockdev-add", **args)
                hmp(c, 'qemu-io cor "read 0 1M"')
                # the filter goes, the copies stay
                c.cmd("blockdev-del", **{"node-name": "cor"})
                quit(q, c)
            tops[qemu] = t
        depth0 = [(e["start"], e["length"], e["zero"])
                  for e in mapping(tops[False]) if e["depth"] == 0]
        want = {
            None: [(0, 192 * KiB, False), (192 * KiB, 64 * KiB, False),
                   (256 * KiB, 768 * KiB, False)],
            "mid": [(128 * KiB, 64 * KiB, False),
                    (192 * KiB, 64 * KiB, False),
                    (384 * KiB, 64 * KiB, True)],
            "base": [(0, 192 * KiB, False), (192 * KiB, 64 * KiB, False),
                     (256 * KiB, 128 * KiB, False),
                     (384 * KiB, 64 * KiB, True),
                     (448 * KiB, 64 * KiB, False)],
        }
        want["top"] = want["base"]
        assert depth0 == want[bottom], (bottom, depth0)
        if True in tops:
            same_images(tops[False], tops[True])
        check_clean(tops[False])


def test_filter_errors():
    """Bad bottoms, a read-only child, reopen: QEMU's errors, and
    nothing added."""
    need_tools()
    steps = [
        ("blockdev-add", {"driver": "copy-on-read", "node-name": "c",
                          "file": "top", "bottom": "nosuch"}),
        ("blockdev-add", {"driver": "copy-on-read", "node-name": "c",
                          "file": "top"}),
        ("blockdev-add", {"driver": "copy-on-read", "node-name": "c2",
                          "file": "top", "bottom": "c"}),
        ("blockdev-add", {"driver": "copy-on-read", "node-name": "c2",
                          "file": "mid"}),
        ("blockdev-reopen", {"options": [{"driver": "copy-on-read",
                                          "node-name": "c",
                                          "file": "top"}]}),
        ("blockdev-del", {"node-name": "top"}),
        ("blockdev-del", {"node-name": "c"}),
        # read-only filter, writable child: the copy still writes
        ("blockdev-add", {"driver": "copy-on-read", "node-name": "c",
                          "file": "top", "read-only": True}),
    ]
    results = {}
    for qemu in sides():
        d = scratch()
        b, m, t = chain3(d)
        q, c = start(chain_args(b, m, t), qemu)
        with q:
            results[qemu] = [outcome(c, cmd, args) for cmd, args in steps]
            hmp(c, 'qemu-io c "read 0 64k"')
            results[qemu].append(sorted(n["node-name"] for n in c.cmd(
                "query-named-block-nodes") if "#" not in n["node-name"]))
            quit(q, c)
        results[qemu].append([e["depth"] for e in mapping(t)][:1])
        check_clean(t)
    err = "GenericError"
    assert results[False] == [
        (err, "Bottom node 'nosuch' not found"), None,
        (err, "Bottom node 'c' is a filter"),
        (err, "Block node is read-only"),
        (err, "Block format 'copy-on-read' used by node 'c' does not "
         "support reopening files"),
        (err, "Block device top is in use"), None, None,
        ["base", "c", "mid", "top"], [0]], results[False]
    if True in results:
        assert results[True] == results[False], results
    # QEMU 7.2 hangs on a bottom outside the chain: qmpd refuses it
    d = scratch()
    b, m, t = chain3(d)
    q, c = start(chain_args(b, m, t) + [
        "-blockdev", "driver=file,node-name=other,filename=%s" % b], False)
    with q:
        assert outcome(c, "blockdev-add", {
            "driver": "copy-on-read", "node-name": "c", "file": "top",
            "bottom": "other"}) == (
            err, "Bottom node 'other' is not in the backing chain of 'top'")
        quit(q, c)


def canon(text, d):
    """Auto node names numbered by first appearance, paths relative."""
    seen = {}
    text = text.replace(d + "/", "")
    return re.sub(r"#block[0-9]+",
                  lambda m: seen.setdefault(m.group(0), "#%d" % len(seen)),
                  text)


def test_filter_queries():
    """The filter as a drive's root: query-block, query-named-block-nodes
    (flat and not), x-debug-query-block-graph and info block as QEMU."""
    need_tools()
    if not qemu_binary():
        return
    out = {}
    for qemu in sides():
        d = scratch()
        b, m, t = chain3(d)
        q, c = start(["-drive", "driver=copy-on-read,file.driver=qcow2,"
                      "file.file.driver=file,file.file.filename=%s,"
                      "id=d0,if=none" % t], qemu)
        with q:
            r = [c.cmd("query-block"),
                 c.cmd("query-named-block-nodes"),
                 c.cmd("query-named-block-nodes", flat=True),
                 c.cmd("x-debug-query-block-graph"),
                 hmp(c, "info block"), hmp(c, "info block -n")]
            quit(q, c)
        out[qemu] = canon(json.dumps(r, sort_keys=True), d)
    assert out[False] == out[True], (out[False], out[True])


def test_race_with_guest_write():
    """A guest write to a cluster being copied waits for the copy: the
    guest's data stays, never the backing file's."""
    need_tools()
    steps = [
        'qemu-io b0 "break read_aio A"',
        'qemu-io d0 "aio_read -P 0x11 0 64k"',
        'qemu-io b0 "wait_break A"',
        'qemu-io d0 "aio_write -P 0x77 4k 4k"',
        'qemu-io b0 "resume A"',
        'qemu-io d0 "aio_flush"',
    ]
    tops = {}
    for qemu in sides():
        d = scratch()
        b, m, t = chain3(d)
        # drives, not nodes: QEMU drains a node's temporary backend
        # after each qemu-io, which a held request would never let end
        q, c = start([
            "-drive", "driver=qcow2,file.driver=blkdebug,"
            "file.image.driver=file,file.image.filename=%s,node-name=base,"
            "id=b0,if=none,readonly=on" % b,
            "-drive", "driver=qcow2,file=%s,node-name=mid,backing=base,"
            "id=m0,if=none,readonly=on" % m,
            "-drive", "driver=copy-on-read,file.driver=qcow2,"
            "file.file.driver=file,file.file.filename=%s,file.backing=mid,"
            "file.node-name=top,id=d0,if=none" % t], qemu)
        with q:
            for s in steps:
                hmp(c, s)
            if not qemu:
                c.cmd("__com.qmpd_qemu-io", device="d0",
                      command="read -P 0x77 4k 4k")
            quit(q, c)
            assert "verification failed" not in q.stdout_text()
        qemu_io(t, "read -P 0x11 0 4k", "read -P 0x77 4k 4k",
                "read -P 0x11 8k 56k")
        tops[qemu] = t
    if True in tops:
        same_images(tops[False], tops[True])
    check_clean(tops[False])


def test_jobs_on_copy_on_read_drive():
    """Jobs that read the drive under their own range locks (mirror,
    active commit, stream) run on a copy-on-read drive, as in QEMU."""
    need_tools()
    jobs = [
        ("drive-mirror", lambda d: {"device": "d0", "sync": "full",
                                    "target": os.path.join(d, "copy.qcow2"),
                                    "format": "qcow2"}, "BLOCK_JOB_READY"),
        ("block-commit", lambda d: {"device": "d0"}, "BLOCK_JOB_READY"),
        ("block-stream", lambda d: {"device": "d0"},
         "BLOCK_JOB_COMPLETED"),
    ]
    for name, args, event in jobs:
        tops = {}
        for qemu in sides():
            d = scratch()
            base, top = chain2(d)
            q, c = start(["-drive", "file=%s,if=none,id=d0,"
                          "copy-on-read=on" % top], qemu)
            with q:
                hmp(c, 'qemu-io d0 "read 0 64k"')
                c.cmd(name, **args(d))
                c.event(event, 120)
                if event == "BLOCK_JOB_READY":
                    c.cmd("block-job-complete", device="d0")
                    c.event("BLOCK_JOB_COMPLETED", 120)
                hmp(c, 'qemu-io d0 "read -P 0x22 256k 64k"')
                quit(q, c)
            # what the guest sees is the chain as it was
            for p in (top, base, os.path.join(d, "copy.qcow2")):
                if os.path.exists(p):
                    check_clean(p)
            final = os.path.join(d, "copy.qcow2") if name == "drive-mirror" \
                else base if name == "block-commit" else top
            qemu_io(final, "read -P 0x11 0 256k", "read -P 0x22 256k 64k",
                    "read -P 0x11 320k 704k", "read -P 0 1M 1M")
            tops[qemu] = (top, final)
        if True in tops:
            for a, b in zip(tops[False], tops[True]):
                p = subprocess.run(["qemu-img", "compare", a, b],
                                   capture_output=True, text=True)
                assert p.returncode == 0, (name, p.stdout)


if __name__ == "__main__":
    run([test_drive_copy_on_read, test_drive_options, test_filter_bottom,
         test_filter_errors, test_filter_queries,
         test_race_with_guest_write, test_jobs_on_copy_on_read_drive])
