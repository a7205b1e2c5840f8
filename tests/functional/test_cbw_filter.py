#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The copy-before-write filter node (blockdev-add driver=copy-before-write):
guest writes through it leave the source's old data on the target, which
then reads back as the source did when the filter was opened (checked
with qemu-img compare and check); a target whose writes fail fails the
guest's write and leaves the source as it was (on-cbw-error
break-guest-write), or lets it through and copies nothing more
(break-snapshot); a copy held past cbw-timeout (a blkdebug breakpoint
on the target's write) is taken as failed in both modes while it runs on
to its end.  Skips (77) when qemu-img is not installed."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import img, qemu_io, with_dir  # noqa: E402

DEADLINE = 60
MiB = 1 << 20


def hmp(c, node, cmd):
    return c.cmd("human-monitor-command",
                 **{"command-line": 'qemu-io %s "%s"' % (node, cmd)})


def images(d):
    src, tgt = os.path.join(d, "src.qcow2"), os.path.join(d, "tgt.qcow2")
    img("create", "-q", "-f", "qcow2", src, "4M")
    img("create", "-q", "-f", "qcow2", tgt, "4M")
    qemu_io(src, "write -P 0x5a 0 1M", "write -P 0x6b 2M 1M")
    return src, tgt


def qcow2(node, path, file_extra=None):
    f = {"driver": "file", "filename": path}
    if file_extra:
        f = dict(file_extra, image=f)
    return json.dumps({"driver": "qcow2", "node-name": node, "file": f})


@with_dir("qmpd-cbw-")
def test_snapshot_on_target(d):
    src, tgt = images(d)
    before = os.path.join(d, "before.qcow2")
    shutil.copy(src, before)
    with Qmpd(["-M", "none", "-blockdev", qcow2("src", src),
               "-blockdev", qcow2("tgt", tgt)]) as q:
        c = q.connect()
        c.cmd("blockdev-add", **{"driver": "copy-before-write",
                                 "node-name": "cbw", "file": "src",
                                 "target": "tgt"})
        for cmd in ("write -q -P 0x11 4k 8k", "write -q -z 2M 128k",
                    "write -q -P 0x12 1M 2M", "write -q -P 0x13 0 4M"):
            assert hmp(c, "cbw", cmd) == ""
        bm = [n for n in c.cmd("query-named-block-nodes", flat=True)
              if n["node-name"] == "cbw"][0]["dirty-bitmaps"]
        # access: all of it at the start; done: all of it now
        assert [b["count"] for b in bm] == [4 * MiB, 4 * MiB], bm
        e = c.execute("blockdev-del", {"node-name": "tgt"})
        assert e["error"]["desc"] == "Block device tgt is in use", e
        c.cmd("blockdev-del", **{"node-name": "cbw"})
        c.cmd("blockdev-del", **{"node-name": "tgt"})
        c.cmd("quit")
        q.wait(DEADLINE)
    p = subprocess.run(["qemu-img", "compare", before, tgt],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stdout + p.stderr
    for f in (src, tgt):
        img("check", "-q", f)
    qemu_io(src, "read -P 0x13 0 4M")


@with_dir("qmpd-cbw-")
def test_failed_copy(d):
    src, tgt = images(d)
    failing = {"driver": "blkdebug", "inject-error": [
        {"event": "write_aio", "errno": 5}]}
    with Qmpd(["-M", "none", "-blockdev", qcow2("src", src),
               "-blockdev", qcow2("tgt", tgt, failing)]) as q:
        c = q.connect()
        c.cmd("blockdev-add", **{"driver": "copy-before-write",
                                 "node-name": "guest", "file": "src",
                                 "target": "tgt"})
        # the write fails (HMP's qemu-io says nothing, as QEMU's): the
        # source keeps its data (checked once qmpd is gone)
        assert hmp(c, "guest", "write -q -P 0x11 0 4k") == ""
        c.cmd("blockdev-del", **{"node-name": "guest"})
        c.cmd("blockdev-add", **{"driver": "copy-before-write",
                                 "node-name": "snap", "file": "src",
                                 "target": "tgt",
                                 "on-cbw-error": "break-snapshot"})
        assert hmp(c, "snap", "write -q -P 0x11 64k 4k") == ""
        assert hmp(c, "snap", "write -q -P 0x12 2M 4k") == ""
        bm = [n for n in c.cmd("query-named-block-nodes", flat=True)
              if n["node-name"] == "snap"][0]["dirty-bitmaps"]
        # nothing was copied
        assert [b["count"] for b in bm] == [4 * MiB, 0], bm
        c.cmd("quit")
        q.wait(DEADLINE)
    qemu_io(src, "read -P 0x5a 0 64k", "read -P 0x11 64k 4k",
            "read -P 0x5a 68k 956k", "read -P 0x12 2M 4k",
            "read -P 0x6b 2052k 1020k")
    qemu_io(tgt, "read -P 0 0 4M")


def cbw_counts(c):
    """(access, done) on the filter and what is left to copy on src"""
    nodes = {n["node-name"]: n.get("dirty-bitmaps", [])
             for n in c.cmd("query-named-block-nodes", flat=True)}
    return ([b["count"] for b in nodes["guest"]]
            + [b["count"] for b in nodes["src"]])


def wait_left(c, want):
    deadline = time.time() + DEADLINE
    while cbw_counts(c)[2] != want:
        assert time.time() < deadline, cbw_counts(c)
        time.sleep(0.01)


@with_dir("qmpd-cbw-")
def test_timeout(d):
    for mode in ("break-guest-write", "break-snapshot"):
        src, tgt = images(d)
        with Qmpd(["-M", "none", "-blockdev", qcow2("src", src),
                   "-blockdev", qcow2("tgt", tgt, {"driver": "blkdebug"})]) \
                as q:
            c = q.connect()
            c.cmd("blockdev-add", **{"driver": "copy-before-write",
                                     "node-name": "guest", "file": "src",
                                     "target": "tgt", "on-cbw-error": mode,
                                     "cbw-timeout": 1})
            assert hmp(c, "tgt", "break write_aio A") == ""
            t = time.monotonic()
            # the copy of [0, 64 KiB) holds: after 1 s the write fails
            # (break-guest-write) or goes on (break-snapshot)
            assert hmp(c, "guest", "write -q -P 0x11 4k 4k") == ""
            assert time.monotonic() - t >= 0.99
            assert hmp(c, "tgt", "wait_break A") == ""
            # the copy still runs: its clusters are not left to copy
            # and not done
            assert cbw_counts(c) == [4 * MiB, 0, 4 * MiB - 64 * 1024]
            # and holds the filter
            e = c.execute("blockdev-del", {"node-name": "guest"})
            assert e["error"]["desc"] == "Block device guest is in use", e
            assert hmp(c, "tgt", "resume A") == ""
            wait_left(c, 4 * MiB - 64 * 1024)
            assert hmp(c, "guest", "write -q -P 0x12 2M 4k") == ""
            done = 64 * 1024 if mode == "break-guest-write" else 0
            assert cbw_counts(c)[:2] == [4 * MiB, done], (mode, cbw_counts(c))
            c.cmd("quit")
            q.wait(DEADLINE)
        first = "0x5a" if mode == "break-guest-write" else "0x11"
        second = "0x12"
        qemu_io(src, "read -P 0x5a 0 4k", "read -P %s 4k 4k" % first,
                "read -P 0x5a 8k 1016k", "read -P %s 2M 4k" % second)
        # the held copy ended on the target in both modes; under
        # break-snapshot nothing more is copied
        qemu_io(tgt, "read -P 0x5a 0 64k")
        qemu_io(tgt, "read -P %s 2M 64k"
                % ("0x6b" if mode == "break-guest-write" else "0"))
        for f in (src, tgt):
            img("check", "-q", f)


if __name__ == "__main__":
    run([test_snapshot_on_target, test_failed_copy, test_timeout])
