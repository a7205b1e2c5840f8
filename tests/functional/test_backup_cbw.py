#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Backup's copy-before-write on the copy engine: a guest write waits
for the old data of its range to reach the target, whether a background
copy already has the range in flight (it waits for that copy) or the
background has not got there yet (the range is copied ahead of it).  A
blkdebug breakpoint holds the background copy's write to the target.
The guest writes through the job's copy-before-write filter (named by
filter-node-name); the source's highest written offset
(query-blockstats) shows when a write reached it.  The target ends with
the source's data as it was when the job started.  Writes that would
bypass the filter (HMP qemu-io on the source or its file node, a
writable format node added over the source) are refused with QEMU
7.2's permission conflicts while the job runs.
Skips (77) when qemu-img is not installed."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import blkdebug_raw_blockdev, img, qemu_io, with_dir  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60
KiB = 1024


def offset(c):
    return c.cmd("query-block-jobs")[0]["offset"]


def src_highest(c):
    return [n["stats"]["wr_highest_offset"]
            for n in c.cmd("query-blockstats", **{"query-nodes": True})
            if n.get("node-name") == "src"][0]


def wait_offset(c, want):
    deadline = time.time() + DEADLINE
    while offset(c) != want:
        assert time.time() < deadline, offset(c)
        time.sleep(0.01)


@with_dir("qmpd-backup-cbw-")
def test_writes_wait_for_old_data(d):
    src, tgt = os.path.join(d, "src.raw"), os.path.join(d, "tgt.raw")
    img("create", "-q", "-f", "raw", src, "1M")
    img("create", "-q", "-f", "raw", tgt, "1M")
    qemu_io(src, "write -P 0x5a 0 1M", fmt="raw")
    with Qmpd(["-M", "none", "-blockdev", blkdebug_raw_blockdev("src", src),
               "-blockdev", blkdebug_raw_blockdev("tgt", tgt)]) as q:
        c = q.connect()
        assert hmp(c, 'qemu-io tgt "break write_aio A"') == ""
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "j", "filter-node-name": "cbw",
                 "x-perf": {"max-workers": 1, "max-chunk": 65536}})
        # the background copy of [0, 64 KiB) is writing the target
        assert hmp(c, 'qemu-io tgt "wait_break A"') == ""
        # a write inside it waits for that copy
        assert hmp(c, 'qemu-io cbw "aio_write -q -P 0x11 4k 4k"') == ""
        # a write further on is copied ahead of the background, and
        # reaches the source while the background copy is still held
        assert hmp(c, 'qemu-io cbw "aio_write -q -P 0x22 520k 4k"') == ""
        wait_offset(c, 65536)
        deadline = time.time() + DEADLINE
        while src_highest(c) != 524 * KiB:
            assert time.time() < deadline, src_highest(c)
            time.sleep(0.01)
        assert offset(c) == 65536
        assert hmp(c, 'qemu-io tgt "resume A"') == ""
        e = c.event("BLOCK_JOB_COMPLETED", DEADLINE)["data"]
        # each range copied once
        assert e["offset"] == e["len"] == 1 << 20 and "error" not in e, e
        c.cmd("quit")
        q.wait(DEADLINE)
    qemu_io(tgt, "read -P 0x5a 0 1M", fmt="raw")
    qemu_io(src, "read -P 0x5a 0 4k", "read -P 0x11 4k 4k",
            "read -P 0x5a 8k 512k", "read -P 0x22 520k 4k",
            "read -P 0x5a 524k 500k", fmt="raw")


def conflict(node, user, parent, perms="write"):
    return ("Permission conflict on node '%s': permissions '%s' are both "
            "required by %s (uses node '%s' as '%s' child) and unshared "
            "by node '%s' (uses node '%s' as 'file' child)."
            % (node, perms, user[0], node, user[1], parent, node))


@with_dir("qmpd-backup-cbw-")
def test_no_write_past_the_filter(d):
    # the source holds a qcow2 image, opened raw: a qcow2 node may go
    # over it as a second writer
    src, tgt = os.path.join(d, "src.img"), os.path.join(d, "tgt.raw")
    img("create", "-q", "-f", "qcow2", src, "1M")
    os.truncate(src, 1 << 20)
    img("create", "-q", "-f", "raw", tgt, "1M")
    with open(src, "rb") as f:
        before = f.read()
    src_node = json.dumps({"driver": "raw", "node-name": "src",
                           "file": {"driver": "file", "filename": src,
                                    "node-name": "srcf"}})
    with Qmpd(["-M", "none", "-blockdev", src_node,
               "-blockdev", blkdebug_raw_blockdev("tgt", tgt)]) as q:
        c = q.connect()
        assert hmp(c, 'qemu-io tgt "break write_aio A"') == ""
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "j", "filter-node-name": "cbw"})
        assert hmp(c, 'qemu-io tgt "wait_break A"') == ""
        unnamed = ("an unnamed block device", "root")
        for cmd in ("write -P 0x11 0 4k", "aio_write -P 0x11 0 4k",
                    "write -z 64k 4k", "discard 0 64k"):
            assert hmp(c, 'qemu-io src "%s"' % cmd) == \
                conflict("src", unnamed, "cbw") + "\r\n", cmd
        # the raw node passes the filter's refusal down to its file
        assert hmp(c, 'qemu-io srcf "write 0 4k"') == \
            conflict("srcf", unnamed, "src") + "\r\n"
        e = c.execute("blockdev-add", {"driver": "qcow2",
                                       "node-name": "q2", "file": "src"})
        assert e["error"]["desc"] == conflict(
            "src", ("node 'q2'", "file"), "cbw", "write, resize"), e
        assert "q2" not in [n["node-name"] for n in
                            c.cmd("query-named-block-nodes")]
        # reading is fine
        assert hmp(c, 'qemu-io src "read -q 0 4k"') == ""
        c.cmd("block-job-cancel", device="j", force=True)
        assert hmp(c, 'qemu-io tgt "resume A"') == ""
        c.event("BLOCK_JOB_CANCELLED", DEADLINE)
        # with the filter gone the source is anyone's to write again
        c.cmd("blockdev-add", driver="qcow2", **{"node-name": "q2",
                                                  "file": "src"})
        c.cmd("blockdev-del", **{"node-name": "q2"})
        assert hmp(c, 'qemu-io src "write -q -P 0x11 512k 4k"') == ""
        c.cmd("quit")
        q.wait(DEADLINE)
    with open(src, "rb") as f:
        after = f.read()
    # nothing reached the source while the filter was over it
    assert after[:512 * KiB] == before[:512 * KiB]
    assert after[512 * KiB:516 * KiB] == b"\x11" * 4096


if __name__ == "__main__":
    run([test_writes_wait_for_old_data, test_no_write_past_the_filter])
