#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The file driver's aio-max-batch, counted with strace.

A backup job copies a 32 MiB raw image (read through libaio:
aio=native, cache.direct=on) to a null-co node with many reads in
flight, so that many reads are queued in one main loop iteration.
Without aio-max-batch they go down together (some io_submit() carries
more than 4 requests); with aio-max-batch=4 none carries more than 4,
and the same data is read.  The number of reads each io_submit() carries
is the "nr" argument strace shows.

QEMU 7.2 applies aio-max-batch only while a device plugs its queue
(virtio-blk), which no job does, so there is nothing of QEMU's to count
beside it; that QEMU accepts the values used here is checked.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, qemu_binary, run  # noqa: E402
from images import img  # noqa: E402
from test_cache import need_strace  # noqa: E402

MiB = 1 << 20
SUBMIT = re.compile(r"io_submit\(0x[0-9a-f]+, (\d+), .*\)\s*=\s*(\d+)")


def file_node(path, batch):
    f = {"driver": "file", "filename": path, "aio": "native",
         "cache": {"direct": True}}
    if batch is not None:
        f["aio-max-batch"] = batch
    return {"driver": "raw", "node-name": "src", "file": f}


def backup_submits(d, batch):
    """Back up the image through a file node with @batch; the sizes of
    the io_submit() calls qmpd made meanwhile, and the bytes copied."""
    path = os.path.join(d, "src.raw")
    log = os.path.join(d, "strace-%s.log" % batch)
    # the harness puts $QMPD_WRAPPER in front of qmpd (not of QEMU)
    old = os.environ.get("QMPD_WRAPPER")
    os.environ["QMPD_WRAPPER"] = "strace -f -qq -e trace=io_submit -o " + log
    try:
        q = Qmpd(["-M", "none"])
    finally:
        if old is None:
            del os.environ["QMPD_WRAPPER"]
        else:
            os.environ["QMPD_WRAPPER"] = old
    with q:
        c = q.connect()
        c.cmd("blockdev-add", **file_node(path, batch))
        c.cmd("blockdev-add", driver="null-co", **{"node-name": "tgt",
                                                   "size": 32 * MiB})
        c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
              **{"job-id": "b"})
        e = c.event("BLOCK_JOB_COMPLETED", timeout=60)
        assert "error" not in e["data"], e
        c.cmd("quit")
        q.wait(30)
    sizes = []
    with open(log) as f:
        for line in f:
            m = SUBMIT.search(line)
            if m:
                sizes.append(int(m.group(1)))
    return sizes, e["data"]["offset"]


def test_batch_capped():
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-aio-batch-")
    try:
        path = os.path.join(d, "src.raw")
        img("create", "-q", "-f", "raw", path, str(32 * MiB))
        subprocess.run(["qemu-io", "-f", "raw", "-c",
                        "write -P 0x5a 0 32M", path], check=True,
                       capture_output=True)
        free, rd_free = backup_submits(d, None)
        capped, rd_capped = backup_submits(d, 4)
        assert free and capped, (free, capped)
        assert max(free) > 4, free
        assert max(capped) <= 4, capped
        # the same reads, in smaller batches
        assert sum(capped) == sum(free) > 0, (sum(free), sum(capped))
        assert rd_free == rd_capped == 32 * MiB, (rd_free, rd_capped)
        print("io_submit calls: %d (largest %d) without, %d (largest %d) "
              "with aio-max-batch=4" % (len(free), max(free), len(capped),
                                         max(capped)))
        if qemu_binary():
            with Qmpd(["-M", "none"], binary_path=qemu_binary()) as q:
                c = q.connect()
                for i, b in enumerate((4, 0, -1)):
                    n = file_node(path, b)
                    n["node-name"] = "s%d" % i
                    n["read-only"] = True
                    c.cmd("blockdev-add", **n)
                c.cmd("quit")
                q.wait(30)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_batch_capped])
