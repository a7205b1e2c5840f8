#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""I/O throttling really holds requests back.  Under -accel qtest the
limits are measured on the virtual clock, which moves only when the
test says (qtest clock_step): requests over a limit stay queued however
long the test takes, and go exactly when the clock passes the time the
leaky buckets compute.  The test waits on the requests' own completions
(qemu-io's lines on stdout), never on sleeps; a read on an unthrottled
node, answered after the clock step, fences a check that nothing more
completed.  Also: group members share one budget, and an object in use
cannot be deleted."""

import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, QmpError, run  # noqa: E402

DEADLINE = 60
SEC = 1000000000


class QtestQmpd:
    """qmpd under -accel qtest with a qtest socket and a QMP client."""

    def __init__(self, args):
        self.tmp = tempfile.mkdtemp()
        path = os.path.join(self.tmp, "qtest.sock")
        self.lsock = socket.socket(socket.AF_UNIX)
        self.lsock.bind(path)
        self.lsock.listen(1)
        self.lsock.settimeout(DEADLINE)
        self.q = Qmpd(["-M", "none", "-accel", "qtest", "-qtest",
                       "unix:%s" % path,
                       "-blockdev", "driver=null-co,node-name=fence"]
                      + args)
        s, _ = self.lsock.accept()
        s.settimeout(DEADLINE)
        self.f = s.makefile("rwb")
        self.c = self.q.connect()

    def step(self, ns):
        self.f.write(b"clock_step %d\n" % ns)
        self.f.flush()
        assert self.f.readline().startswith(b"OK ")

    def hmp(self, line):
        return self.c.cmd("human-monitor-command", **{"command-line": line})

    def done(self, kind="wrote"):
        """The offsets of completed qemu-io requests, in order."""
        text = self.q.stdout_text()
        return [int(line.split()[-1]) for line in text.splitlines()
                if line.startswith(kind + " ")]

    def wait_done(self, n, kind="wrote"):
        deadline = time.time() + DEADLINE
        while len(self.done(kind)) < n:
            assert time.time() < deadline, (n, self.q.stdout_text())
            time.sleep(0.01)
        return self.done(kind)

    def fenced_done(self):
        """What completed before a read on an unthrottled node did."""
        reads = len(self.done("read"))
        self.hmp('qemu-io fence "aio_read 0 512"')
        self.wait_done(reads + 1, "read")
        return self.done()

    def close(self):
        self.q.close()
        self.lsock.close()


def second_after_09s(t, offsets):
    """One operation a second and a tenth of one as slack: of two writes
    the first goes at once, the second when 0.9 s have passed."""
    assert t.wait_done(1) == offsets[:1]
    t.step(SEC * 8 // 10)
    assert t.fenced_done() == offsets[:1]
    t.step(SEC // 10)
    assert t.wait_done(2) == offsets


def one_iops_filter():
    """qmpd with a throttle node t0 over null-co in group g0 (iops 1)."""
    return QtestQmpd(["-object", "throttle-group,id=g0,x-iops-total=1",
                      "-blockdev", "driver=null-co,node-name=n0",
                      "-blockdev", "driver=throttle,node-name=t0,"
                      "throttle-group=g0,file=n0"])


def test_filter_waits():
    """iops-total=1 without burst: a tenth of an operation of slack, so
    one write goes, the next after 0.9 s, the third 1 s later."""
    t = one_iops_filter()
    try:
        for i in range(3):
            t.hmp('qemu-io t0 "aio_write %d 4k"' % (i * 4096))
        assert t.wait_done(1) == [0]
        t.step(SEC * 8 // 10)
        assert t.fenced_done() == [0]
        t.step(SEC // 10)
        assert t.wait_done(2) == [0, 4096]
        t.step(SEC * 9 // 10)
        assert t.fenced_done() == [0, 4096]
        t.step(SEC // 10)
        assert t.wait_done(3) == [0, 4096, 8192]
        # reads wait for the same total budget
        reads = len(t.done("read"))
        t.hmp('qemu-io t0 "aio_read 0 512"')
        t.step(SEC // 2)
        assert t.fenced_done() == [0, 4096, 8192]
        assert len(t.done("read")) == reads + 1     # only the fence's
        t.step(SEC // 2)
        t.wait_done(reads + 2, "read")
    finally:
        t.close()


def test_group_shares_budget():
    """Two filters in one group: a write through the second waits for
    the first's; bps-write limits writes only."""
    t = QtestQmpd(["-object", "throttle-group,id=g0,x-bps-write=40960",
                   "-blockdev", "driver=null-co,node-name=n0",
                   "-blockdev", "driver=null-co,node-name=n1",
                   "-blockdev", "driver=throttle,node-name=t0,"
                   "throttle-group=g0,file=n0",
                   "-blockdev", "driver=throttle,node-name=t1,"
                   "throttle-group=g0,file=n1"])
    try:
        # 40 KiB/s: 4 KiB of slack, so 64 KiB leave 60 KiB to leak (1.5 s)
        t.hmp('qemu-io t0 "aio_write 0 64k"')
        t.hmp('qemu-io t1 "aio_write 65536 4k"')
        assert t.wait_done(1) == [0]
        # reads are not limited
        t.hmp('qemu-io t1 "aio_read 0 64k"')
        t.wait_done(1, "read")
        t.step(SEC * 14 // 10)
        assert t.fenced_done() == [0]
        t.step(SEC // 10)
        assert t.wait_done(2) == [0, 65536]
    finally:
        t.close()


def test_limits_change_releases():
    """qom-set of limits lets waiting requests re-check the new ones."""
    t = QtestQmpd(["-object", "throttle-group,id=g0,x-iops-write=1",
                   "-blockdev", "driver=throttle,node-name=t0,"
                   "throttle-group=g0,file.driver=null-co"])
    try:
        for i in range(2):
            t.hmp('qemu-io t0 "aio_write %d 512"' % (i * 512))
        assert t.wait_done(1) == [0]
        assert t.fenced_done() == [0]
        t.c.cmd("qom-set", path="/objects/g0", property="limits",
                value={"iops-write": 0})
        assert t.wait_done(2) == [0, 512]
    finally:
        t.close()


def test_drive_limits_wait():
    """block_set_io_throttle on a drive: bps_wr=4096 leaves a tenth of a
    second's worth (409.6 bytes) of slack, so of three 4 KiB writes the
    first goes, the second 0.9 s later; reads are not held; all-zero
    limits release what waits."""
    t = QtestQmpd(["-drive", "driver=null-co,if=none,id=d0"])
    try:
        t.c.cmd("block_set_io_throttle", device="d0", bps=0, bps_rd=0,
                bps_wr=4096, iops=0, iops_rd=0, iops_wr=0)
        for i in range(3):
            t.hmp('qemu-io d0 "aio_write %d 4k"' % (i * 4096))
        t.hmp('qemu-io d0 "aio_read 0 4k"')
        assert t.wait_done(1) == [0]
        t.wait_done(1, "read")
        t.step(SEC * 89 // 100)
        assert t.fenced_done() == [0]
        t.step(SEC // 100)
        assert t.wait_done(2) == [0, 4096]
        t.c.cmd("block_set_io_throttle", device="d0", bps=0, bps_rd=0,
                bps_wr=0, iops=0, iops_rd=0, iops_wr=0)
        assert t.wait_done(3) == [0, 4096, 8192]
        ins = t.c.cmd("query-block")[0]["inserted"]
        assert "group" not in ins and ins["bps_wr"] == 0, ins
    finally:
        t.close()


def test_drive_option_limits():
    """-drive iops_wr=1 (legacy for throttling.iops-write): the second
    write waits 0.9 s; the drive's group is its id."""
    t = QtestQmpd(["-drive", "driver=null-co,if=none,id=d0,iops_wr=1"])
    try:
        t.hmp('qemu-io d0 "aio_write 0 512"')
        t.hmp('qemu-io d0 "aio_write 512 512"')
        second_after_09s(t, [0, 512])
        ins = t.c.cmd("query-block")[0]["inserted"]
        assert (ins["iops_wr"], ins["group"]) == (1, "d0"), ins
    finally:
        t.close()


def test_drive_and_filter_share_group():
    """A drive's group is a group like an object's: a throttle filter
    naming it shares the drive's budget (iops=1)."""
    t = QtestQmpd(["-drive", "driver=null-co,if=none,id=d0",
                   "-blockdev", "driver=null-co,node-name=n1"])
    try:
        t.c.cmd("block_set_io_throttle", device="d0", bps=0, bps_rd=0,
                bps_wr=0, iops=1, iops_rd=0, iops_wr=0, group="shared")
        t.c.cmd("blockdev-add", driver="throttle", **{
            "node-name": "t1", "throttle-group": "shared", "file": "n1"})
        t.hmp('qemu-io d0 "aio_write 0 512"')
        t.hmp('qemu-io t1 "aio_write 512 512"')
        second_after_09s(t, [0, 512])
        assert t.c.cmd("query-block")[0]["inserted"]["group"] == "shared"
    finally:
        t.close()


def test_drain_releases():
    """A drain (block_resize drains the node first) lets what a throttle
    node holds back go at once, as QEMU disables limits while draining;
    the clock has not moved."""
    t = one_iops_filter()
    try:
        for i in range(3):
            t.hmp('qemu-io t0 "aio_write %d 512"' % (i * 512))
        assert t.wait_done(1) == [0]
        assert t.fenced_done() == [0]
        t.c.execute("block_resize", {"node-name": "t0", "size": 1 << 30})
        assert t.wait_done(3) == [0, 512, 1024]
    finally:
        t.close()


def test_medium_removal_releases():
    """Reads a drive's limits hold back go to its medium when it is
    taken out (QEMU drains the drive first), not to the empty drive."""
    t = QtestQmpd(["-drive", "driver=null-co,if=none,id=d0,media=cdrom,"
                   "iops_rd=1"])
    try:
        for i in range(3):
            t.hmp('qemu-io d0 "aio_read %d 512"' % (i * 512))
        assert len(t.wait_done(1, "read")) == 1
        t.hmp('qemu-io fence "aio_read 0 512"')
        assert len(t.wait_done(2, "read")) == 2
        t.hmp("eject -f d0")
        assert len(t.wait_done(4, "read")) == 4
        assert "[not inserted]" in t.hmp("info block d0")
        # (qemu-io's output goes where QEMU's goes: to stdout)
        t.hmp('qemu-io d0 "read 0 512"')
        deadline = time.time() + DEADLINE
        while "read failed: No medium found" not in t.q.stdout_text():
            assert time.time() < deadline, t.q.stdout_text()
            time.sleep(0.01)
    finally:
        t.close()


def test_object_in_use():
    with Qmpd(["-object", "throttle-group,id=g0,x-bps-total=1000",
               "-blockdev", "driver=null-co,node-name=n0"]) as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="throttle", **{
            "node-name": "t0", "throttle-group": "g0", "file": "n0"})
        try:
            c.cmd("object-del", id="g0")
            raise AssertionError("object-del of a group in use")
        except QmpError as e:
            assert e.desc == "object 'g0' is in use, can not be deleted"
        try:
            c.cmd("blockdev-add", driver="throttle", **{
                "node-name": "t1", "throttle-group": "g1", "file": "n0"})
            raise AssertionError("a group that does not exist")
        except QmpError as e:
            assert e.desc == "Throttle group 'g1' does not exist"
        c.cmd("blockdev-del", **{"node-name": "t0"})
        c.cmd("object-del", id="g0")


if __name__ == "__main__":
    run([test_filter_waits, test_group_shares_budget,
         test_limits_change_releases, test_drive_limits_wait,
         test_drive_option_limits, test_drive_and_filter_share_group,
         test_drain_releases, test_medium_removal_releases,
         test_object_in_use])
