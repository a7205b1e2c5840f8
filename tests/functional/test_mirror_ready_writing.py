#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A write-blocking mirror gets READY while the guest keeps writing.

The target sits behind a throttle filter (1 MiB/s of writes) and a guest
writer (a thread with its own QMP connection) sends 64 KiB aio_writes at
twice that, so from the first held write on there is always a guest
write on its way to the target: the job never sees a moment with
nothing held.  QEMU 7.2 gets READY once nothing is dirty and its own
copies are done, whatever the guest's writes in flight (they clear
their granules and reach the target before the guest hears of them);
so must qmpd, within a generous deadline, with the writer still
writing (it stops after about 9 s) and writes of its held when the event
comes.  Then the writer stops, its writes drain, job-complete switches
to the target, which reads as the source did.
Skips (77) without qemu-img.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import check_clean, img, qemu_io, with_dir  # noqa: E402
from test_mirror import hmp_io, inserted, names, until_event, \
    until_status  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20

DISK = 4 * MiB
CLUSTER = 64 * KiB
TARGET_BPS = MiB            # the target's write limit
WRITE_EVERY = 0.03          # s between guest writes: about 2 MiB/s
WRITE_LIMIT = 300           # writes at most: about 9 s of writing
READY_DEADLINE = 60         # s


class Writer(threading.Thread):
    """64 KiB writes at spread clusters, one every WRITE_EVERY s, until
    stopped or WRITE_LIMIT are sent."""

    def __init__(self, q):
        super().__init__(daemon=True)
        self.c = q.connect()
        self.stop = threading.Event()
        self.writes = 0
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set() and self.writes < WRITE_LIMIT:
                off = (self.writes * 7) % (DISK // CLUSTER) * CLUSTER
                hmp_io(self.c, "aio_write -q -P %d %d %d"
                       % (self.writes % 250 + 1, off, CLUSTER))
                self.writes += 1
                time.sleep(WRITE_EVERY)
        except Exception as e:          # reported by finish()
            self.error = e

    def writing(self):
        return self.is_alive() and self.writes < WRITE_LIMIT

    def finish(self, c):
        """Stop, and wait until the drive has done every write sent."""
        self.stop.set()
        self.join(30)
        assert not self.is_alive()
        if self.error:
            raise self.error
        deadline = time.time() + 120
        while query_writes(c) < self.writes:
            assert time.time() < deadline, "the guest's writes did not drain"
            time.sleep(0.1)


def query_writes(c):
    return c.cmd("query-blockstats")[0]["stats"]["wr_operations"]


@with_dir("qmpd-ready-writing-")
def test_write_blocking_ready_under_writes(d):
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    qemu_io(src, "write -q -P 9 0 %d" % MiB)
    img("create", "-q", "-f", "qcow2", t, str(DISK))
    with Qmpd(["-M", "none",
               "-object", "throttle-group,id=g0,x-bps-write=%d" % TARGET_BPS,
               "-drive", "file=%s,if=none,id=drive0,format=qcow2" % src,
               "-blockdev", "driver=qcow2,node-name=tq,file.driver=file,"
               "file.filename=%s" % t,
               "-blockdev", "driver=throttle,node-name=tgt,"
               "throttle-group=g0,file=tq"]) as q:
        c = q.connect()
        w = Writer(q)
        c.cmd("blockdev-mirror", device="drive0", target="tgt", sync="full",
              **{"job-id": "m", "copy-mode": "write-blocking"})
        w.start()
        try:
            until_event(c, "BLOCK_JOB_READY", timeout=READY_DEADLINE)
            # READY came while the guest wrote, with writes held
            assert w.writing(), w.writes
            assert query_writes(c) < w.writes, w.writes
        finally:
            w.finish(c)
        c.cmd("block-job-complete", device="m")
        evs = until_status(c, "m", "null", timeout=60)
        done = [e["data"] for e in evs
                if e["event"] == "BLOCK_JOB_COMPLETED"]
        assert done and "error" not in done[0], evs
        assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        assert inserted(c)["node-name"] == "tgt"
        c.cmd("quit")
        q.wait()
    img("compare", "-q", src, t)
    check_clean(t)
    check_clean(src)


if __name__ == "__main__":
    run([test_write_blocking_ready_under_writes])
