#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Backup's x-perf: max-workers bounds the background copies in flight,
max-chunk their size; use-copy-range is refused (qmpd copies through a
buffer).  blkdebug breakpoints on the target's writes and the source's
reads show the order of the copies.  Skips (77) when qemu-img is not
installed."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import blkdebug_raw_blockdev, img, qemu_io, with_dir  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60


def start(d):
    src, tgt = os.path.join(d, "src.raw"), os.path.join(d, "tgt.raw")
    img("create", "-q", "-f", "raw", src, "1M")
    img("create", "-q", "-f", "raw", tgt, "1M")
    qemu_io(src, "write -P 0x5a 0 1M", fmt="raw")
    q = Qmpd(["-M", "none", "-blockdev", blkdebug_raw_blockdev("src", src),
              "-blockdev", blkdebug_raw_blockdev("tgt", tgt)])
    return q, src, tgt


def offset(c):
    return c.cmd("query-block-jobs")[0]["offset"]


def finish(q, c, tgt):
    """The job copies everything; the target holds the source's data."""
    e = c.event("BLOCK_JOB_COMPLETED", DEADLINE)["data"]
    assert e["offset"] == 1 << 20 and "error" not in e, e
    c.cmd("quit")
    q.wait(DEADLINE)
    qemu_io(tgt, "read -P 0x5a 0 1M", fmt="raw")


@with_dir("qmpd-backup-perf-")
def test_one_worker(d):
    """With one worker, the next chunk is read only once the previous
    one is on the target: while the first write is held nothing else
    runs, and the next read comes after it."""
    q, src, tgt = start(d)
    with q:
        c = q.connect()
        assert hmp(c, 'qemu-io tgt "break write_aio A"') == ""
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "j",
                 "x-perf": {"max-workers": 1, "max-chunk": 65536}})
        assert hmp(c, 'qemu-io tgt "wait_break A"') == ""
        assert hmp(c, 'qemu-io src "break read_aio B"') == ""
        assert offset(c) == 0
        assert hmp(c, 'qemu-io tgt "resume A"') == ""
        # with more workers, every read would have been issued already
        assert hmp(c, 'qemu-io src "wait_break B"') == ""
        assert offset(c) == 65536
        assert hmp(c, 'qemu-io src "resume B"') == ""
        finish(q, c, tgt)


@with_dir("qmpd-backup-perf-")
def test_many_workers(d):
    """By default many chunks are copied at once: while the first write
    is held, the other chunks reach the target."""
    q, src, tgt = start(d)
    with q:
        c = q.connect()
        hmp(c, 'qemu-io tgt "break write_aio A"')
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "j", "x-perf": {"max-chunk": 65536}})
        hmp(c, 'qemu-io tgt "wait_break A"')
        deadline = time.time() + DEADLINE
        while offset(c) < (1 << 20) - 65536:
            assert time.time() < deadline, offset(c)
            time.sleep(0.01)
        hmp(c, 'qemu-io tgt "resume A"')
        finish(q, c, tgt)


@with_dir("qmpd-backup-perf-")
def test_refused(d):
    """Bad x-perf values fail as in QEMU and create no job, on every
    way a backup starts; use-copy-range is refused by name."""
    q, src, tgt = start(d)
    with q:
        c = q.connect()
        for xp, err in [
            ({"use-copy-range": True},
             "qmpd does not support 'use-copy-range' in backup jobs"),
            ({"max-workers": 0},
             "max-workers must be between 1 and 2147483647"),
            ({"max-chunk": -1}, "max-chunk must be zero (which means no "
             "limit) or positive"),
            ({"max-chunk": 4096}, "Required max-chunk (4096) is less than "
             "backup cluster size (65536)"),
        ]:
            args = {"device": "src", "target": "tgt", "sync": "full",
                    "x-perf": xp}
            assert c.error("blockdev-backup", **args) == (
                "GenericError", err), xp
            t = c.execute("transaction", {"actions": [
                {"type": "blockdev-backup", "data": args}]})
            assert t["error"]["desc"] == err, t
            drive = dict(args, target=os.path.join(d, "new.raw"),
                         format="raw", device="src")
            assert c.error("drive-backup", **drive)[1] == err, xp
        assert c.cmd("query-block-jobs") == []
        # use-copy-range false is what qmpd does anyway
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "j", "x-perf": {"use-copy-range": False}})
        finish(q, c, tgt)


if __name__ == "__main__":
    run([test_one_worker, test_many_workers, test_refused])
