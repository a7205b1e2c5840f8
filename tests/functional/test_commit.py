#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""block-commit, intermediate and active, checked with QEMU's own tools.

The chain base <- sn1 <- sn2 is made with qemu-img and qemu-io, each
layer with its own pattern at overlapping and separate offsets; qmpd
opens sn2 as drive0.  Guest writes go through HMP qemu-io and the
__com.qmpd_qemu-io extension before, during and after the jobs, and
must never be lost: every image left behind is read back with qemu-io
and must pass qemu-img check.  The events, errors and their order are
those QEMU 7.2 gives for the same commands.  Skips (77) when qemu-img
is not installed.
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, wait_mid_copy  # noqa: E402
from images import check_clean, img, need_tools, qemu_io  # noqa: E402
from hmplines import hmp  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20

BLOCK = 4 * KiB
DISK = 64 * MiB


class View:
    """What a reader of the disk sees: a pattern per 4 KiB block."""

    def __init__(self, writes=()):
        self.blocks = {}
        for w in writes:
            self.write(*w)

    def write(self, off, length, pattern):
        for b in range(off // BLOCK, (off + length) // BLOCK):
            self.blocks[b] = pattern
        return self

    def reads(self, size=DISK):
        """qemu-io reads that check every byte, one per run."""
        out = []
        start = 0
        cur = self.blocks.get(0, 0)
        for b in range(1, size // BLOCK + 1):
            p = self.blocks.get(b, 0) if b < size // BLOCK else None
            if p != cur:
                out.append("read -P 0x%x %d %d"
                           % (cur, start * BLOCK, (b - start) * BLOCK))
                start, cur = b, p
        return out


# The seed chain base <- sn1 <- sn2, as drive0 shows it.
BASE_DATA = [(0, 2 * MiB, 0x11), (8 * MiB, MiB, 0x1a)]
SN1_DATA = [(MiB, 2 * MiB, 0x22), (10 * MiB, MiB, 0x2a)]
SN2_DATA = [(2 * MiB, 2 * MiB, 0x33), (12 * MiB, MiB, 0x3a)]
SEED = BASE_DATA + SN1_DATA + SN2_DATA


def seed_chain(d, base_size="64M"):
    """base <- sn1 <- sn2 (relative backing names), patterns as SEED."""
    base, sn1, sn2 = [os.path.join(d, n + ".qcow2")
                      for n in ("base", "sn1", "sn2")]
    img("create", "-q", "-f", "qcow2", base, base_size)
    qemu_io(base, "write -P 0x11 0 2M", "write -P 0x1a 8M 1M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        sn1, "64M")
    qemu_io(sn1, "write -P 0x22 1M 2M", "write -P 0x2a 10M 1M")
    img("create", "-q", "-f", "qcow2", "-b", "sn1.qcow2", "-F", "qcow2",
        sn2, "64M")
    qemu_io(sn2, "write -P 0x33 2M 2M", "write -P 0x3a 12M 1M")
    return base, sn1, sn2


def read_cmds(writes):
    return View(writes).reads()


def io(c, device, cmd):
    return c.cmd("__com.qmpd_qemu-io", device=device, command=cmd)


def verify(c, device, writes):
    """Read the whole device back: @writes applied in order, else 0."""
    for cmd in read_cmds(writes):
        io(c, device, cmd)


def events_until(c, pred, timeout=30):
    """Events in arrival order, up to the first one @pred accepts."""
    out = []
    deadline = time.time() + timeout
    try:
        while True:
            while c.events:
                e = c.events.pop(0)
                out.append(e)
                if pred(e):
                    return out
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("events so far: %r" % out)
            m = c.recv(left)
            if "event" not in m:
                raise AssertionError("unexpected reply %r" % m)
            c.events.append(m)
    finally:
        c.sock.settimeout(30)


def until_status(c, job, status, timeout=30):
    return events_until(c, lambda e: e["event"] == "JOB_STATUS_CHANGE"
                        and e["data"] == {"id": job, "status": status},
                        timeout)


def names(evs):
    """JOB_STATUS_CHANGE as its status, other events by name."""
    return [e["data"]["status"] if e["event"] == "JOB_STATUS_CHANGE"
            else e["event"] for e in evs]


def node_names(c):
    nodes = c.cmd("query-named-block-nodes")
    return {os.path.basename(n["file"]): n["node-name"]
            for n in nodes if n["drv"] == "qcow2"}


def node_ro(c, name):
    for n in c.cmd("query-named-block-nodes"):
        if n["node-name"] == name:
            return n["ro"]
    raise KeyError(name)


def job_info(c, job):
    for j in c.cmd("query-block-jobs"):
        if j["device"] == job:
            return j
    return None


def start(paths, extra=()):
    return Qmpd(["-M", "none", "-drive",
                 "file=%s,if=none,id=drive0,format=qcow2" % paths[2]]
                + list(extra))


def inserted(c):
    return c.cmd("query-block")[0]["inserted"]


class Tmp:
    def __enter__(self):
        self.d = tempfile.mkdtemp(prefix="qmpd-commit-")
        return self.d

    def __exit__(self, *exc):
        shutil.rmtree(self.d, ignore_errors=True)


def test_errors():
    """Argument errors, their wording and order, as QEMU 7.2 gives them."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            base, sn1, sn2 = n["base.qcow2"], n["sn1.qcow2"], n["sn2.qcow2"]

            def err(**a):
                args = {"device": "drive0"}
                args.update({k.replace("_", "-"): v for k, v in a.items()})
                return c.error("block-commit", **args)

            g = "GenericError"
            assert c.error("block-commit", device="nosuch") == (
                "DeviceNotFound", "Device 'nosuch' not found")
            assert c.error("block-commit", device=sn1) == (
                g, "Need a root block node")
            assert err(top=paths[1], top_node=sn1) == (
                g, "'top-node' and 'top' are mutually exclusive")
            assert err(base=paths[0], base_node=base) == (
                g, "'base-node' and 'base' are mutually exclusive")
            assert err(top_node="nosuch") == (
                g, "Cannot find device='' nor node-name='nosuch'")
            assert err(base_node="nosuch") == (
                g, "Cannot find device='' nor node-name='nosuch'")
            for t in (base, sn1, sn2):
                assert err(top_node=t, base_node=t) == (
                    g, "cannot commit an image into itself")
            # base defaults to the bottom of the chain: base itself here
            assert err(top_node=base) == (
                g, "cannot commit an image into itself")
            assert err(top_node=sn1, base_node=sn2) == (
                g, "'%s' is not in this backing file chain" % sn2)
            assert err(top="nosuch.qcow2") == (
                g, "Top image file nosuch.qcow2 not found")
            assert err(base="nosuch.qcow2") == (
                g, "Can't find 'nosuch.qcow2' in the backing chain")
            # a filename names a node below: never top itself
            assert err(top=paths[1], base=paths[1]) == (
                g, "Can't find '%s' in the backing chain" % paths[1])
            assert err(backing_file="x") == (
                g, "'backing-file' specified, but 'top' is the active layer")
            assert err(top_node=sn1, job_id="1bad") == (
                g, "Invalid job ID '1bad'")
            assert err(job_id="1bad") == (g, "Invalid job ID '1bad'")
            assert err(filter_node_name="1bad") == (
                g, "Invalid node-name: '1bad'")
            assert c.events == []
            # a negative speed fails on the created job: created, null
            assert err(top_node=sn1, speed=-1) == (
                g, "Parameter 'speed' expects a non-negative value")
            assert names(until_status(c, "drive0", "null")) == [
                "created", "null"]
            # nothing changed
            assert inserted(c)["backing_file_depth"] == 2
            assert node_ro(c, base) and node_ro(c, sn1)
            # a job on the device: the device is no root any more
            c.cmd("block-commit", device="drive0", **{
                "job-id": "j1", "top-node": sn1, "speed": 1})
            until_status(c, "j1", "running")
            assert err(top_node=sn1) == (g, "Need a root block node")
            assert err() == (g, "Need a root block node")
            assert c.error("block-commit", device=sn2) == (
                g, "Need a root block node")
            c.cmd("block-job-cancel", device="j1")
            until_status(c, "j1", "null")


def test_busy():
    """A node another job uses: "Node 'base' is busy" (QEMU's wording)."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        ov = os.path.join(d, "ov.qcow2")
        img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            ov)
        qemu_io(ov, "write -P 0x44 20M 1M")
        with Qmpd(["-M", "none",
                   "-blockdev", "driver=qcow2,node-name=base,file.driver=file,"
                   "file.filename=%s,read-only=on" % paths[0],
                   "-blockdev", "driver=qcow2,node-name=sn1,file.driver=file,"
                   "file.filename=%s,backing=base,read-only=on" % paths[1],
                   "-drive", "if=none,id=drive0,format=qcow2,file=%s,"
                   "backing=sn1,node-name=sn2" % paths[2],
                   "-drive", "if=none,id=drive1,format=qcow2,file=%s,"
                   "backing=base,node-name=ov" % ov]) as q:
            c = q.connect()
            c.cmd("block-commit", device="drive1", **{"job-id": "a"})
            until_status(c, "a", "ready")
            busy = ("GenericError", "Node 'base' is busy: block device is "
                    "in use by block job: commit")
            for a in ({"top-node": "sn1"}, {"top-node": "sn1",
                                            "base-node": "base"}, {}):
                assert c.error("block-commit", device="drive0",
                               **a) == busy, a
            # QEMU's commit writes base through a backend of its own
            assert c.error("blockdev-del", **{"node-name": "base"}) == (
                "GenericError", "Node base is in use")
            # above base the chain is free
            c.cmd("block-commit", device="drive0", **{
                "job-id": "x", "top-node": "sn2", "base-node": "sn1"})
            until_status(c, "x", "ready")
            for job in ("a", "x"):
                c.cmd("block-job-cancel", device=job, force=True)
                until_status(c, job, "null")


def test_intermediate():
    """sn1 into base: sn2 is then backed by base, data unchanged."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            verify(c, "drive0", SEED)
            # a guest write before the job
            hmp(c, 'qemu-io drive0 "write -P 0x5 5M 64k"')
            c.cmd("block-commit", device="drive0", **{
                "job-id": "c1", "top-node": n["sn1.qcow2"],
                "base-node": n["base.qcow2"]})
            # one during it (to sn2, which the job does not touch)
            io(c, "drive0", "write -P 0x6 6M 64k")
            evs = until_status(c, "c1", "null")
            assert names(evs) == ["created", "running", "waiting", "pending",
                                  "BLOCK_JOB_COMPLETED", "concluded",
                                  "null"], names(evs)
            done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"][0]
            assert done["data"] == {"type": "commit", "device": "c1",
                                    "len": 64 * MiB, "offset": 64 * MiB,
                                    "speed": 0}, done
            ins = inserted(c)
            assert ins["node-name"] == n["sn2.qcow2"]
            assert ins["backing_file_depth"] == 1
            assert ins["backing_file"] == paths[0]
            assert ins["image"]["backing-filename"] == paths[0]
            # sn1 left the graph; base is read-only again
            assert "sn1.qcow2" not in node_names(c)
            assert node_ro(c, n["base.qcow2"])
            view = SEED + [(5 * MiB, 64 * KiB, 5), (6 * MiB, 64 * KiB, 6)]
            verify(c, "drive0", view)
            io(c, "drive0", "write -P 0x7 7M 64k")
            c.cmd("quit")
            q.wait()
        info = json.loads(img("info", "--output=json", "--backing-chain",
                              paths[2]))
        assert [i["filename"] for i in info] == [paths[2], paths[0]], info
        assert info[0]["backing-filename"] == paths[0]
        assert info[0]["backing-filename-format"] == "qcow2"
        for p in paths:
            check_clean(p)
        # base alone holds what sn1 held, over its own data
        qemu_io(paths[0], *read_cmds(BASE_DATA + SN1_DATA))
        qemu_io(paths[2], *read_cmds(view + [(7 * MiB, 64 * KiB, 7)]))


def test_intermediate_options():
    """backing-file, top/base by filename, auto-finalize/-dismiss off."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            c.cmd("block-commit", device="drive0", **{
                "job-id": "c2", "top": "sn1.qcow2", "base": paths[0],
                "backing-file": "base.qcow2", "auto-finalize": False,
                "auto-dismiss": False})
            evs = events_until(c, lambda e: e["event"] == "BLOCK_JOB_PENDING")
            assert names(evs) == ["created", "running", "waiting", "pending",
                                  "BLOCK_JOB_PENDING"]
            assert evs[-1]["data"] == {"type": "commit", "id": "c2"}
            # nothing switched before job-finalize; base writable meanwhile
            assert inserted(c)["backing_file_depth"] == 2
            assert not node_ro(c, node_names(c)["base.qcow2"])
            j = job_info(c, "c2")
            assert j["status"] == "pending" and not j["auto-finalize"]
            assert c.error("job-dismiss", id="c2")[1] == (
                "Job 'c2' in state 'pending' cannot accept command verb "
                "'dismiss'")
            c.cmd("job-finalize", id="c2")
            evs = until_status(c, "c2", "concluded")
            assert names(evs) == ["BLOCK_JOB_COMPLETED", "concluded"]
            assert job_info(c, "c2")["status"] == "concluded"
            ins = inserted(c)
            assert ins["backing_file_depth"] == 1
            assert ins["image"]["backing-filename"] == "base.qcow2"
            assert node_ro(c, node_names(c)["base.qcow2"])
            c.cmd("job-dismiss", id="c2")
            assert names(until_status(c, "c2", "null")) == ["null"]
            assert c.cmd("query-block-jobs") == []
            verify(c, "drive0", SEED)
            c.cmd("quit")
            q.wait()
        info = json.loads(img("info", "--output=json", paths[2]))
        assert info["backing-filename"] == "base.qcow2", info
        qemu_io(paths[2], *read_cmds(SEED))
        for p in paths:
            check_clean(p)


def test_active():
    """sn2 into base with guest writes throughout; complete switches."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            hmp(c, 'qemu-io drive0 "write -P 0x5 0 64k"')
            # slow at first, so the guest writes while the copy runs
            c.cmd("block-commit", device="drive0", **{
                "job-id": "a1", "speed": MiB})
            writes = [(2 * MiB + 64 * KiB, 64 * KiB, 0x55),
                      (20 * MiB, 128 * KiB, 0x56),
                      (3 * MiB, MiB, 0x57),
                      (12 * MiB + 4 * KiB, 4 * KiB, 0x58)]
            for off, ln, p in writes:
                hmp(c, 'qemu-io drive0 "write -P 0x%x %d %d"' % (p, off, ln))
            j = job_info(c, "a1")
            assert j["status"] == "running" and not j["ready"], j
            assert j["offset"] < j["len"], j
            c.cmd("block-job-set-speed", device="a1", speed=0)
            evs = events_until(c, lambda e: e["event"] == "BLOCK_JOB_READY")
            ready = [e for e in evs if e["event"] == "BLOCK_JOB_READY"]
            assert len(ready) == 1 and ready[0]["data"]["type"] == "commit"
            assert ready[0]["data"]["offset"] == ready[0]["data"]["len"]
            # writes while ready are copied too; then a burst and complete
            io(c, "drive0", "write -P 0x59 30M 64k")
            more = [(30 * MiB, 64 * KiB, 0x59)]
            for i in range(8):
                off = (40 + i) * MiB + i * 4 * KiB
                hmp(c, 'qemu-io drive0 "aio_write -P 0x%x %d 64k"'
                    % (0x60 + i, off))
                more.append((off, 64 * KiB, 0x60 + i))
            c.cmd("block-job-complete", device="a1")
            evs = until_status(c, "a1", "null")
            assert names(evs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED",
                                  "concluded", "null"], names(evs)
            ins = inserted(c)
            assert ins["node-name"] == n["base.qcow2"], ins
            assert ins["file"] == paths[0] and not ins["ro"]
            assert ins["backing_file_depth"] == 0
            assert set(node_names(c)) == {"base.qcow2"}
            view = SEED + [(0, 64 * KiB, 5)] + writes + more
            io(c, "drive0", "aio_flush")
            verify(c, "drive0", view)
            # writes after the switch land in base
            io(c, "drive0", "write -P 0x70 50M 64k")
            view.append((50 * MiB, 64 * KiB, 0x70))
            c.cmd("quit")
            q.wait()
        qemu_io(paths[0], *read_cmds(view))
        for p in paths:
            check_clean(p)
        # sn1 is untouched
        qemu_io(paths[1], "read -P 0x22 1M 2M", "read -P 0x2a 10M 1M")


def test_active_manual_finalize():
    """auto-finalize off: writes held while pending reach base."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            c2 = q.connect()
            c.cmd("block-commit", device="drive0", **{
                "job-id": "a2", "auto-finalize": False,
                "auto-dismiss": False})
            events_until(c, lambda e: e["event"] == "BLOCK_JOB_READY")
            c.cmd("job-complete", id="a2")
            evs = events_until(c, lambda e: e["event"] == "BLOCK_JOB_PENDING")
            assert names(evs) == ["waiting", "pending", "BLOCK_JOB_PENDING"]
            # the device still is sn2; guest writes wait for the switch
            assert inserted(c)["node-name"] == node_names(c)["sn2.qcow2"]
            hmp(c2, 'qemu-io drive0 "aio_write -P 0x71 100k 8k"')
            hmp(c2, 'qemu-io drive0 "aio_write -P 0x72 33M 64k"')
            c.cmd("job-finalize", id="a2")
            evs = until_status(c, "a2", "concluded")
            assert names(evs) == ["BLOCK_JOB_COMPLETED", "concluded"]
            assert inserted(c)["node-name"] == node_names(c)["base.qcow2"]
            c.cmd("job-dismiss", id="a2")
            until_status(c, "a2", "null")
            io(c, "drive0", "aio_flush")
            view = SEED + [(100 * KiB, 8 * KiB, 0x71),
                           (33 * MiB, 64 * KiB, 0x72)]
            verify(c, "drive0", view)
            c.cmd("quit")
            q.wait()
        qemu_io(paths[0], *read_cmds(view))
        for p in paths:
            check_clean(p)


def test_cancel():
    """Cancel before and after READY, forced and not; intermediate too."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            # before READY, even a soft cancel cancels
            for force in (False, True):
                c.cmd("block-commit", device="drive0", **{
                    "job-id": "k", "speed": 64 * KiB})
                until_status(c, "k", "running")
                c.cmd("block-job-cancel", device="k", force=force)
                evs = until_status(c, "k", "null")
                assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                                      "concluded", "null"], names(evs)
            # after READY: soft cancel completes in sync, without switch
            c.cmd("block-commit", device="drive0", **{"job-id": "k"})
            events_until(c, lambda e: e["event"] == "BLOCK_JOB_READY")
            io(c, "drive0", "write -P 0x44 8M 64k")
            c.cmd("block-job-cancel", device="k")
            evs = until_status(c, "k", "null")
            assert names(evs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED",
                                  "concluded", "null"], names(evs)
            done = evs[2]["data"]
            assert "error" not in done and done["offset"] == done["len"]
            ins = inserted(c)
            assert ins["node-name"] == n["sn2.qcow2"]
            assert ins["backing_file_depth"] == 2
            # QEMU leaves base writable after an active commit
            assert not node_ro(c, n["base.qcow2"])
            # forced: cancelled
            c.cmd("block-commit", device="drive0", **{"job-id": "k"})
            events_until(c, lambda e: e["event"] == "BLOCK_JOB_READY")
            c.cmd("block-job-cancel", device="k", force=True)
            evs = until_status(c, "k", "null")
            assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                                  "concluded", "null"], names(evs)
            assert inserted(c)["node-name"] == n["sn2.qcow2"]
            view = SEED + [(8 * MiB, 64 * KiB, 0x44)]
            verify(c, "drive0", view)
            c.cmd("quit")
            q.wait()
        for p in paths:
            check_clean(p)
        qemu_io(paths[2], *read_cmds(view))
        # base holds what the in-sync cancel copied, sn1 is untouched
        qemu_io(paths[0], "read -P 0x44 8M 64k", "read -P 0x33 2M 2M")
        qemu_io(paths[1], "read -P 0x22 1M 2M", "read -P 0x2a 10M 1M")

        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            c.cmd("block-commit", device="drive0", **{
                "job-id": "k", "top-node": n["sn1.qcow2"],
                "speed": 64 * KiB})
            until_status(c, "k", "running")
            assert not node_ro(c, n["base.qcow2"])
            c.cmd("block-job-cancel", device="k")
            evs = until_status(c, "k", "null")
            assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                                  "concluded", "null"], names(evs)
            assert node_ro(c, n["base.qcow2"])
            assert inserted(c)["backing_file_depth"] == 2
            verify(c, "drive0", SEED)
        for p in paths:
            check_clean(p)


def test_speed_pause():
    """A slow job progresses slowly, pauses, resumes, then runs free."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d)
        with start(paths) as q:
            c = q.connect()
            n = node_names(c)
            c.cmd("block-commit", device="drive0", **{
                "job-id": "s", "top-node": n["sn1.qcow2"],
                "speed": 512 * KiB})
            j = wait_mid_copy(c, "s")
            assert j["speed"] == 512 * KiB and j["len"] == 64 * MiB
            c.cmd("block-job-pause", device="s")
            assert job_info(c, "s")["paused"]
            until_status(c, "s", "paused")
            j1 = job_info(c, "s")
            assert j1["status"] == "paused" and not j1["busy"], j1
            # paused, nothing moves (no I/O in flight, none started)
            deadline = time.time() + 0.3
            while time.time() < deadline:
                assert job_info(c, "s")["offset"] == j1["offset"]
                time.sleep(0.02)
            assert c.error("block-job-pause", device="s")[1] == \
                "Job is already paused"
            c.cmd("block-job-resume", device="s")
            until_status(c, "s", "running")
            # resumed, it goes on from where it stopped, at its speed
            deadline = time.time() + 30
            while job_info(c, "s")["offset"] == j1["offset"]:
                assert time.time() < deadline, "no progress after resume"
                time.sleep(0.01)
            assert job_info(c, "s")["offset"] < 64 * MiB
            c.cmd("block-job-set-speed", device="s", speed=0)
            evs = until_status(c, "s", "null", timeout=60)
            done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"][0]
            assert done["data"]["speed"] == 0
            assert done["data"]["offset"] == 64 * MiB
            verify(c, "drive0", SEED)
        for p in paths:
            check_clean(p)


def blkdebug_args(paths, rule):
    dbg = {"driver": "blkdebug", "node-name": "base-dbg",
           "image": "base-file", "inject-error": [rule]}
    return ["-M", "none",
            "-blockdev", "driver=file,filename=%s,node-name=base-file"
            % paths[0],
            "-blockdev", json.dumps(dbg),
            "-blockdev", "driver=qcow2,file=base-dbg,node-name=base",
            "-blockdev", "driver=qcow2,node-name=sn1,file.driver=file,"
            "file.filename=%s,backing=base" % paths[1],
            "-drive", "if=none,id=drive0,format=qcow2,file=%s,backing=sn1,"
            "node-name=sn2" % paths[2]]


def test_error_report():
    """EIO on base writes, on-error report: the job fails, chain kept."""
    need_tools()
    with Tmp() as d:
        for top in ("sn1", "sn2"):
            paths = seed_chain(d)
            with Qmpd(blkdebug_args(paths, {"event": "write_aio",
                                            "iotype": "write"})) as q:
                c = q.connect()
                c.cmd("block-commit", device="drive0", **{
                    "job-id": "e", "top-node": top})
                evs = until_status(c, "e", "null")
                errs = [e for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
                assert errs and errs[0]["data"] == {
                    "device": "e", "operation": "write", "action": "report"}
                if top == "sn1":
                    # one copy at a time in QEMU: one report
                    assert len(errs) == 1, errs
                done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"]
                assert done[0]["data"]["error"] == "Input/output error"
                assert names(evs)[-3:] == ["BLOCK_JOB_COMPLETED", "concluded",
                                           "null"]
                assert "aborting" in names(evs)
                ins = inserted(c)
                assert ins["node-name"] == "sn2"
                assert ins["backing_file_depth"] == 2
                verify(c, "drive0", SEED)
                c.cmd("quit")
                q.wait()
            for p in paths:
                check_clean(p)
            qemu_io(paths[2], *read_cmds(SEED))


def test_error_stop():
    """EIO once, on-error stop: paused with io-status failed; resumed, done."""
    need_tools()
    with Tmp() as d:
        for top in ("sn1", "sn2"):
            paths = seed_chain(d)
            with Qmpd(blkdebug_args(paths, {"event": "write_aio",
                                            "iotype": "write",
                                            "once": True})) as q:
                c = q.connect()
                c.cmd("block-commit", device="drive0", **{
                    "job-id": "e", "top-node": top, "on-error": "stop"})
                evs = until_status(c, "e", "paused")
                errs = [e for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
                assert errs[0]["data"] == {"device": "e", "operation": "write",
                                           "action": "stop"}, evs
                j = job_info(c, "e")
                assert j["io-status"] == "failed" and j["paused"], j
                assert j["status"] == "paused"
                # the guest goes on meanwhile
                io(c, "drive0", "write -P 0x66 14M 64k")
                c.cmd("block-job-resume", device="e")
                if top == "sn2":
                    until_status(c, "e", "ready")
                    assert job_info(c, "e")["io-status"] == "ok"
                    c.cmd("block-job-complete", device="e")
                evs = until_status(c, "e", "null")
                done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"]
                assert "error" not in done[0]["data"], done
                view = SEED + [(14 * MiB, 64 * KiB, 0x66)]
                verify(c, "drive0", view)
                ins = inserted(c)
                assert ins["node-name"] == ("sn2" if top == "sn1" else "base")
                c.cmd("quit")
                q.wait()
            # sn2 now names base by its json: filename (QEMU writes one
            # too), which qemu-img cannot open: check base and sn1 only
            check_clean(paths[0])
            check_clean(paths[1])
            if top == "sn2":
                qemu_io(paths[0], *read_cmds(view))
            else:
                qemu_io(paths[0], *read_cmds(BASE_DATA + SN1_DATA))


def test_base_grows():
    """A base smaller than top is grown first, as QEMU does."""
    need_tools()
    with Tmp() as d:
        paths = seed_chain(d, base_size="32M")
        qemu_io(paths[2], "write -P 0x48 40M 64k")
        with start(paths) as q:
            c = q.connect()
            c.cmd("block-commit", device="drive0", **{"job-id": "g"})
            until_status(c, "g", "ready")
            c.cmd("block-job-complete", device="g")
            until_status(c, "g", "null")
            ins = inserted(c)
            assert ins["image"]["virtual-size"] == 64 * MiB
            verify(c, "drive0", SEED + [(40 * MiB, 64 * KiB, 0x48)])
            c.cmd("quit")
            q.wait()
        check_clean(paths[0])
        assert json.loads(img("info", "--output=json", paths[0]))[
            "virtual-size"] == 64 * MiB


def kill9_during(active):
    """kill -9 while a commit copies: both chains stay uncorrupted and
    the guest's data (the chain as it was, and a write it had flushed)
    reads back through sn2, whatever base already holds."""
    with Tmp() as d:
        paths = seed_chain(d)
        q = start(paths)
        try:
            c = q.connect()
            n = node_names(c)
            io(c, "drive0", "write -P 0x44 20M 64k")
            io(c, "drive0", "flush")
            args = {"job-id": "c1", "base-node": n["base.qcow2"],
                    "speed": 4 * MiB}
            if not active:
                args["top-node"] = n["sn1.qcow2"]
            c.cmd("block-commit", device="drive0", **args)
            wait_mid_copy(c, "c1")
            q.kill9()
        finally:
            q.close()
        for p in paths:
            check_clean(p, leaks=True)
        chain = json.loads(img("info", "--output=json", "--backing-chain",
                               paths[2]))
        assert [i["filename"] for i in chain] == list(paths[::-1]), chain
        qemu_io(paths[2], *read_cmds(SEED + [(20 * MiB, 64 * KiB, 0x44)]))


def test_kill9_intermediate():
    need_tools()
    kill9_during(False)


def test_kill9_active():
    need_tools()
    kill9_during(True)


if __name__ == "__main__":
    run([test_errors, test_busy, test_intermediate,
         test_intermediate_options, test_active, test_active_manual_finalize,
         test_cancel, test_speed_pause, test_error_report, test_error_stop,
         test_base_grows, test_kill9_intermediate, test_kill9_active])
