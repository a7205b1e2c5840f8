#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""blockdev-backup, checked with QEMU's own tools.

The source is a qcow2 image with patterns written by qemu-io; what the
guest saw when the job started is kept as a raw file (qemu-img convert
before qmpd starts).  The guest then writes through HMP qemu-io while
the job copies, slowed down by its speed limit, so that most writes hit
clusters not yet copied and are held for copy-before-write.  sync full
must leave a target equal to the raw file; sync none must leave a
target that, over the source as it is afterwards, reads as the raw file
(image fleecing).  Every image passes qemu-img check.  The events and
error messages are those QEMU 7.2 gives (checked against
qemu-system-x86_64 when installed).  The error policies are driven by
blkdebug on the source (reads fail) or the target (writes fail); a
bitmap used by a job is checked while frozen and after each bitmap-mode,
for a successful and a failed job.  Skips (77) without qemu-img.
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, QmpError, need_qemu, run, qemu_binary  # noqa: E402
from images import (check_images, img, need_tools, qcow2_node,  # noqa
                    qemu_io, qemu_io_rc)
from test_mirror import (events_until, hmp_io, job_info, names,  # noqa
                         until_status)
from test_bitmaps import start as start_either  # noqa: E402
from test_transaction import log  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20

LAYOUT = [(0x11, 0, 4 * MiB), (0x12, 8 * MiB, MiB), (0x13, 30 * MiB, 2 * MiB),
          (0x14, 50 * MiB, 64 * KiB), (0x15, 63 * MiB, MiB)]
# guest writes during the job: aligned, partial, straddling clusters,
# over data and over unallocated (zero) ranges, zero writes
WRITES = [(0x41, 64 * KiB, 64 * KiB), (0x42, 5 * MiB + 4 * KiB, 4 * KiB),
          (0x43, 8 * MiB - 8 * KiB, 24 * KiB), (0x44, 60 * MiB, MiB),
          (0x45, 30 * MiB + 100 * KiB, 300 * KiB), (0x46, 63 * MiB + 5, 7)]
ZERO_WRITES = [(2 * MiB, 128 * KiB), (50 * MiB, 4 * KiB)]


class Setup:
    def __init__(self):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="qmpd-backup-")
        self.src = self.path("src.qcow2")
        img("create", "-q", "-f", "qcow2", self.src, "64M")
        for pat, off, ln in LAYOUT:
            qemu_io(self.src, "write -q -P %d %d %d" % (pat, off, ln))
        self.before = self.path("before.raw")
        img("convert", "-O", "raw", self.src, self.before)
        self.after = self.path("after.raw")
        shutil.copy(self.before, self.after)

    def path(self, name):
        return os.path.join(self.dir, name)

    def target(self, name="tgt.qcow2", size="64M"):
        p = self.path(name)
        img("create", "-q", "-f", "qcow2", p, size)
        return p

    def start(self, binary_path=None):
        return Qmpd(["-M", "none", "-drive",
                     "file=%s,if=none,id=drive0,format=qcow2" % self.src],
                    binary_path=binary_path)

    def guest_writes(self, c):
        for pat, off, ln in WRITES:
            hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
            self.apply(pat, off, ln)
        for off, ln in ZERO_WRITES:
            hmp_io(c, "write -z %d %d" % (off, ln))
            self.apply(0, off, ln)

    def apply(self, pat, off, ln):
        with open(self.after, "r+b") as f:
            f.seek(off)
            f.write(bytes([pat]) * ln)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def with_setup(fn):
    def wrapper():
        s = Setup()
        try:
            fn(s)
        finally:
            s.close()
    wrapper.__name__ = fn.__name__
    return wrapper


def add_target(c, path, node="tgt", backing=False):
    opts = {"driver": "qcow2", "node-name": node,
            "file": {"driver": "file", "filename": path}}
    if not backing:
        opts["backing"] = None
    c.cmd("blockdev-add", **opts)


def compare(a, b, fa="qcow2", fb="raw"):
    import subprocess
    p = subprocess.run(["qemu-img", "compare", "-f", fa, "-F", fb, a, b],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@with_setup
def test_full(s):
    t = s.target()
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full",
              speed=MiB)
        j = c.cmd("query-block-jobs")[0]
        assert j["type"] == "backup" and j["device"] == "drive0", j
        assert not j["ready"]
        s.guest_writes(c)
        c.cmd("block-job-set-speed", device="drive0", speed=0)
        evs = until_status(c, "drive0", "null")
        assert names(evs) == ["created", "running", "paused", "running",
                              "waiting", "pending",
                              "BLOCK_JOB_COMPLETED", "concluded", "null"], \
            names(evs)
        done = evs[6]["data"]
        assert done["type"] == "backup" and "error" not in done, done
        assert done["offset"] == done["len"] == 64 * MiB, done
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    # the backup is the disk at the job's start; the guest kept its writes
    compare(t, s.before)
    compare(s.src, s.after)
    check_images([t, s.src])


@with_setup
def test_none(s):
    t = s.target()
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="none",
              **{"job-id": "fleece"})
        s.guest_writes(c)
        # a second write to a copied cluster is not copied again
        hmp_io(c, "write -P 0x77 %d 4096" % (64 * KiB))
        s.apply(0x77, 64 * KiB, 4096)
        c.cmd("block-job-cancel", device="fleece")
        evs = until_status(c, "fleece", "null")
        assert names(evs) == ["created", "running", "paused", "running",
                              "aborting",
                              "BLOCK_JOB_CANCELLED", "concluded", "null"], \
            names(evs)
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(s.src, s.after)
    check_images([t, s.src])
    # over the source as it is now, the target is the disk at the start
    img("rebase", "-u", "-b", s.src, "-F", "qcow2", t)
    compare(t, s.before)


@with_setup
def test_cancel(s):
    t = s.target()
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full",
              speed=MiB, **{"job-id": "b"})
        s.guest_writes(c)
        c.cmd("block-job-cancel", device="b")
        evs = until_status(c, "b", "null")
        assert names(evs) == ["created", "running", "paused", "running",
                              "aborting",
                              "BLOCK_JOB_CANCELLED", "concluded", "null"], \
            names(evs)
        d = evs[5]["data"]
        assert d["type"] == "backup" and d["offset"] < d["len"], d
        # the nodes are free again: a new backup runs to the end
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full",
              **{"job-id": "b2"})
        until_status(c, "b2", "null")
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(t, s.after)
    check_images([t, s.src])


@with_setup
def test_full_sparse(s):
    """A large, mostly unallocated source (8 GiB, data at both ends):
    the holes go to the target as zero writes in long runs, without
    reads and without allocating data clusters; the target equals the
    source.  (The copies of holes complete inside the call that issues
    them: 131072 clusters of them must not nest.)"""
    src = s.path("big.qcow2")
    img("create", "-q", "-f", "qcow2", src, "8G")
    qemu_io(src, "write -q -P 0x61 0 1M")
    qemu_io(src, "write -q -P 0x62 %d 1M" % (8 * 1024 * MiB - MiB))
    t = s.target("big-tgt.qcow2", "8G")
    with Qmpd(["-M", "none", "-drive",
               "file=%s,if=none,id=drive0,format=qcow2" % src]) as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full")
        evs = until_status(c, "drive0", "null", timeout=120)
        done = [e for e in evs if e.get("event") == "BLOCK_JOB_COMPLETED"]
        assert done and "error" not in done[0]["data"], evs
        assert done[0]["data"]["offset"] == 8 * 1024 * MiB, done
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(t, src, fb="qcow2")
    check_images([t, src])
    import subprocess
    info = json.loads(subprocess.run(
        ["qemu-img", "check", "--output=json", t], capture_output=True,
        text=True).stdout)
    # 2 MiB of data, the tables and metadata: a few dozen clusters
    assert info["allocated-clusters"] < 64, info


@with_setup
def test_manual_finalize(s):
    t = s.target()
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full",
              **{"job-id": "m", "auto-finalize": False,
                 "auto-dismiss": False})
        evs = until_status(c, "m", "pending")
        assert names(evs) == ["created", "running", "paused", "running",
                              "waiting", "pending"], \
            names(evs)
        c.cmd("job-finalize", id="m")
        evs = until_status(c, "m", "concluded")
        assert names(evs) == ["BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED",
                              "concluded"], names(evs)
        c.cmd("job-dismiss", id="m")
        until_status(c, "m", "null")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(t, s.before)
    check_images([t, s.src])


@with_setup
def test_drive_backup_full(s):
    t = s.path("new.qcow2")
    with s.start() as q:
        c = q.connect()
        c.cmd("drive-backup", device="drive0", target=t, sync="full",
              speed=MiB)
        s.guest_writes(c)
        c.cmd("block-job-set-speed", device="drive0", speed=0)
        evs = until_status(c, "drive0", "null")
        assert names(evs)[-5:] == ["waiting", "pending",
                                   "BLOCK_JOB_COMPLETED", "concluded",
                                   "null"], names(evs)
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    info = json.loads(img("info", "--output=json", t))
    assert info["format"] == "qcow2" and "backing-filename" not in info
    compare(t, s.before)
    compare(s.src, s.after)
    check_images([t, s.src])


@with_setup
def test_drive_backup_none(s):
    t = s.path("fleece.qcow2")
    with s.start() as q:
        c = q.connect()
        c.cmd("drive-backup", device="drive0", target=t, sync="none",
              **{"job-id": "f"})
        s.guest_writes(c)
        c.cmd("block-job-cancel", device="f")
        until_status(c, "f", "null")
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    info = json.loads(img("info", "--output=json", t))
    assert info["backing-filename"] == s.src, info
    # the overlay over the source as it is now: the disk at the start
    compare(t, s.before)
    compare(s.src, s.after)
    check_images([t, s.src])


@with_setup
def test_drive_backup_existing(s):
    for fmt, pre in (("raw", "r.raw"), (None, "q.qcow2")):
        t = s.path(pre)
        img("create", "-q", "-f", fmt or "qcow2", t, "64M")
        with s.start() as q:
            c = q.connect()
            args = {"device": "drive0", "target": t, "sync": "full",
                    "mode": "existing"}
            if fmt:
                args["format"] = fmt
            c.cmd("drive-backup", **args)
            until_status(c, "drive0", "null")
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
        compare(t, s.before, fa=fmt or "qcow2")


def drive_errors_of(s, qemu=False):
    out = []
    cases = [{"device": "nope", "target": s.path("x.qcow2"), "sync": "full"},
             {"device": "drive0", "target": s.path("missing.qcow2"),
              "sync": "full", "mode": "existing"},
             {"device": "drive0", "target": s.path("x.qcow2"),
              "sync": "full", "format": "vmdkx"},
             {"device": "drive0", "target": s.path("y.qcow2"),
              "sync": "incremental"}]
    for args in cases:
        q, c = start_either(["-drive", "file=%s,if=none,id=drive0,"
                             "format=qcow2" % s.src], qemu)
        with q:
            try:
                c.cmd("drive-backup", **args)
                out.append(None)
            except QmpError as e:
                out.append((e.cls, e.desc))
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
    return out


@with_setup
def test_drive_errors(s):
    got = drive_errors_of(s)
    want = [
        ("GenericError", "Cannot find device='nope' nor node-name='nope'"),
        ("GenericError", "Could not open '%s': No such file or directory"
         % s.path("missing.qcow2")),
        ("GenericError", "Unknown file format 'vmdkx'"),
        ("GenericError", "must provide a valid bitmap name for "
         "'incremental' sync mode"),
    ]
    assert got == want, got
    if qemu_binary():
        assert drive_errors_of(s, True) == want


def make_top(s):
    """base.qcow2 <- top.qcow2 with data in both; the guest's view kept
    as before.raw / after.raw."""
    base = s.path("base.qcow2")
    top = s.path("top.qcow2")
    os.rename(s.src, base)
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        top)
    for pat, off, ln in [(0x21, 2 * MiB, MiB), (0x22, 31 * MiB, 4 * KiB),
                         (0x23, 40 * MiB, 256 * KiB)]:
        qemu_io(top, "write -q -P %d %d %d" % (pat, off, ln))
    qemu_io(top, "write -q -z %d %d" % (63 * MiB, 64 * KiB))
    s.src = top
    img("convert", "-O", "raw", top, s.before)
    shutil.copy(s.before, s.after)
    return base, top


def top_events(s, qemu, t):
    q, c = start_either(["-drive", "file=%s,if=none,id=drive0,"
                         "format=qcow2" % s.src], qemu)
    with q:
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="top")
        evs = until_status(c, "drive0", "null")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    return [e["data"] for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"]


@with_setup
def test_top(s):
    base, top = make_top(s)
    t = s.path("t.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", t)
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="top",
              speed=MiB)
        s.guest_writes(c)
        c.cmd("block-job-set-speed", device="drive0", speed=0)
        evs = until_status(c, "drive0", "null")
        done = [e["data"] for e in evs
                if e["event"] == "BLOCK_JOB_COMPLETED"][0]
        assert "error" not in done and done["offset"] == done["len"], done
        # only the top's clusters (and those the guest overwrote)
        assert done["len"] < 8 * MiB, done
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(t, s.before)
    compare(top, s.after)
    check_images([t, top, base])
    # without guest writes: the same progress as QEMU
    t2 = s.path("t2.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", t2)
    shutil.copy(t2, s.path("t3.qcow2"))
    got = top_events(s, False, t2)
    compare(t2, s.after)
    if qemu_binary():
        assert top_events(s, True, s.path("t3.qcow2")) == got


@with_setup
def test_drive_backup_top(s):
    base, top = make_top(s)
    t = s.path("new.qcow2")
    with s.start() as q:
        c = q.connect()
        c.cmd("drive-backup", device="drive0", target=t, sync="top",
              speed=MiB)
        s.guest_writes(c)
        c.cmd("block-job-set-speed", device="drive0", speed=0)
        until_status(c, "drive0", "null")
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    info = json.loads(img("info", "--output=json", t))
    assert info["backing-filename"] == base, info
    compare(t, s.before)
    compare(top, s.after)
    check_images([t, top, base])


def add_b0(c, granularity=None):
    """block-dirty-bitmap-add b0 on drive0 (cmd() takes "name" itself)."""
    args = {"node": "drive0", "name": "b0"}
    if granularity:
        args["granularity"] = granularity
    r = c.execute("block-dirty-bitmap-add", args)
    assert r == {"return": {}}, r


def bitmap_info(c, name="b0"):
    """The bitmap @name, on whichever node holds it: during a backup the
    device's root is the job's filter, whose bitmaps query-block shows
    (as QEMU 7.2's)."""
    for n in c.cmd("query-named-block-nodes", flat=True):
        for bm in n.get("dirty-bitmaps", []):
            if bm.get("name") == name:
                return bm
    return None


def granules(writes, g=64 * KiB):
    out = set()
    for off, ln in writes:
        out |= set(range(off // g, (off + ln - 1) // g + 1))
    return out


@with_setup
def test_incremental_cycle(s):
    full = s.target("full.qcow2")
    with s.start() as q:
        c = q.connect()
        add_target(c, full, "full")
        # full backup and a new bitmap at the same point; the bitmap
        # first: after the backup's action drive0 is the job's filter,
        # and a bitmap added there would leave with it, as in QEMU 7.2
        c.cmd("transaction", actions=[
            {"type": "block-dirty-bitmap-add",
             "data": {"node": "drive0", "name": "b0"}},
            {"type": "blockdev-backup",
             "data": {"device": "drive0", "target": "full", "sync": "full",
                      "job-id": "f", "speed": MiB}}])
        src = [n["node-name"] for n in c.cmd("query-named-block-nodes")
               if n["file"] == s.src and n["drv"] == "qcow2"][0]
        s.guest_writes(c)
        c.cmd("block-job-set-speed", device="f", speed=0)
        until_status(c, "f", "null")
        written = [(o, n) for _, o, n in WRITES] + ZERO_WRITES
        more = [(0x61, 20 * MiB, 8 * KiB), (0x62, 45 * MiB - 4 * KiB,
                                           12 * KiB)]
        for pat, off, ln in more:
            hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
            s.apply(pat, off, ln)
        written += [(o, n) for _, o, n in more]
        assert bitmap_info(c)["count"] == len(granules(written)) * 64 * KiB
        point = s.path("point.raw")
        shutil.copy(s.after, point)
        # the incremental backup over the full one, guest writing on
        inc = s.path("inc1.qcow2")
        img("create", "-q", "-f", "qcow2", "-b", full, "-F", "qcow2", inc)
        add_target(c, inc, "inc1")
        c.cmd("blockdev-backup", device="drive0", target="inc1",
              sync="incremental", bitmap="b0", speed=MiB, **{"job-id": "i"})
        bm = bitmap_info(c)
        assert bm["busy"] and bm["recording"], bm
        e = c.execute("block-dirty-bitmap-clear",
                      {"node": src, "name": "b0"})["error"]
        assert e == {"class": "GenericError",
                     "desc": "Bitmap 'b0' is currently in use by another "
                     "operation and cannot be used"}, e
        during = [(0x71, 20 * MiB, 4 * KiB), (0x72, 33 * MiB, 64 * KiB)]
        for pat, off, ln in during:
            hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
            s.apply(pat, off, ln)
        c.cmd("block-job-set-speed", device="i", speed=0)
        evs = until_status(c, "i", "null")
        done = [e["data"] for e in evs
                if e["event"] == "BLOCK_JOB_COMPLETED"][0]
        assert "error" not in done, done
        assert done["len"] == len(granules(written)) * 64 * KiB, done
        # on-success: the bitmap now holds what came after the backup
        bm = bitmap_info(c)
        assert not bm["busy"], bm
        assert bm["count"] == len(granules([(o, n) for _, o, n in during])) \
            * 64 * KiB, bm
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(full, s.before)
    compare(inc, point)
    compare(s.src, s.after)
    check_images([full, inc, s.src])


def bitmap_counts(s, qemu):
    """The bitmap's count after a sync=bitmap or full backup in each
    bitmap-mode, no guest writes during the job."""
    out = []
    for sync, mode in (("bitmap", "on-success"), ("bitmap", "never"),
                       ("bitmap", "always"), ("full", "on-success"),
                       ("full", "always")):
        t = s.target("m.qcow2")
        q, c = start_either(["-drive", "file=%s,if=none,id=drive0,"
                             "format=qcow2" % s.src], qemu)
        with q:
            add_target(c, t)
            add_b0(c, 65536)
            for pat, off, ln in WRITES:
                hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
            c.cmd("blockdev-backup", device="drive0", target="tgt",
                  sync=sync, bitmap="b0", **{"bitmap-mode": mode})
            evs = until_status(c, "drive0", "null")
            done = [e["data"] for e in evs
                    if e["event"] == "BLOCK_JOB_COMPLETED"][0]
            out.append((sync, mode, done["len"],
                        c.cmd("query-block")[0]["inserted"]
                        ["dirty-bitmaps"][0]["count"]))
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
    return out


@with_setup
def test_bitmap_modes(s):
    got = bitmap_counts(s, False)
    n = len(granules([(o, ln) for _, o, ln in WRITES])) * 64 * KiB
    assert got == [("bitmap", "on-success", n, 0), ("bitmap", "never", n, n),
                   ("bitmap", "always", n, 0),
                   ("full", "on-success", 64 * MiB, 0),
                   ("full", "always", 64 * MiB, 0)], got
    if qemu_binary():
        assert bitmap_counts(s, True) == got


@with_setup
def test_bitmap_cancel(s):
    """Cancelled: on-success gives the bits back (with the new writes);
    always keeps only what was not copied (and the new writes)."""
    for mode in ("on-success", "always"):
        t = s.target("c.qcow2")
        with s.start() as q:
            c = q.connect()
            add_target(c, t)
            add_b0(c)
            hmp_io(c, "write -P 1 0 %d" % (16 * MiB))
            c.cmd("blockdev-backup", device="drive0", target="tgt",
                  sync="bitmap", bitmap="b0", speed=MiB,
                  **{"bitmap-mode": mode, "job-id": "x"})
            hmp_io(c, "write -P 2 %d 4096" % (40 * MiB))
            c.cmd("block-job-cancel", device="x")
            evs = until_status(c, "x", "null")
            d = [e["data"] for e in evs
                 if e["event"] == "BLOCK_JOB_CANCELLED"][0]
            bm = bitmap_info(c)
            assert not bm["busy"], bm
            if mode == "on-success":
                assert bm["count"] == 16 * MiB + 64 * KiB, bm
            else:
                assert bm["count"] == 16 * MiB - d["offset"] + 64 * KiB, \
                    (bm, d)
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()


@with_setup
def test_none_discard(s):
    """With discard=unmap on the device's node, a guest discard during
    a backup does nothing, as in QEMU 7.2: it reaches the job's
    copy-before-write filter, which is opened without discard=unmap;
    the source keeps its data and the target its own."""
    t = s.target()
    with Qmpd(["-M", "none", "-drive", "file=%s,if=none,id=drive0,"
               "format=qcow2,discard=unmap" % s.src]) as q:
        c = q.connect()
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="none",
              **{"job-id": "d"})
        hmp_io(c, "discard 0 %d" % (2 * MiB))
        hmp_io(c, "write -P 0x55 %d 4096" % (30 * MiB))
        c.cmd("block-job-cancel", device="d")
        until_status(c, "d", "null")
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    check_images([t, s.src])
    # only the write was copied before
    assert qemu_io_rc(t, "read -P 0 0 %d" % (2 * MiB))[0] == 0
    img("rebase", "-u", "-b", s.src, "-F", "qcow2", t)
    compare(t, s.before)


# (arguments, target image size) for errors both sides must give alike
ERRORS = [
    ({"device": "nope", "target": "tgt", "sync": "full"}, "64M"),
    ({"device": "drive0", "target": "nope", "sync": "full"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "full"}, "32M"),
    ({"device": "drive0", "target": "drive0", "sync": "full"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "incremental"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "bitmap"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "full",
      "bitmap-mode": "never"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "incremental",
      "bitmap": "b0", "bitmap-mode": "always"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "full", "speed": -1},
     "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "bitmap",
      "bitmap": "nope", "bitmap-mode": "never"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "full",
      "bitmap": "b0"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "none",
      "bitmap": "b0", "bitmap-mode": "on-success"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "full",
      "bitmap": "b0", "bitmap-mode": "never"}, "64M"),
    ({"device": "drive0", "target": "tgt", "sync": "bitmap",
      "bitmap": "b0", "bitmap-mode": "never"}, "32M"),
]


def errors_of(s, qemu=False):
    out = []
    for args, size in ERRORS:
        t = s.target("e.qcow2", size)
        q, c = start_either(["-drive", "file=%s,if=none,id=drive0,"
                             "format=qcow2" % s.src], qemu)
        with q:
            add_target(c, t)
            add_b0(c)
            try:
                c.cmd("blockdev-backup", **args)
                out.append(None)
            except QmpError as e:
                out.append((e.cls, e.desc))
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
    return out


@with_setup
def test_errors(s):
    got = errors_of(s)
    want = [
        ("GenericError", "Cannot find device='nope' nor node-name='nope'"),
        ("GenericError", "Cannot find device='nope' nor node-name='nope'"),
        ("GenericError", "Source and target image have different sizes"),
        ("GenericError", "Source and target cannot be the same"),
        ("GenericError", "must provide a valid bitmap name for "
         "'incremental' sync mode"),
        ("GenericError", "must provide a valid bitmap name for 'bitmap' "
         "sync mode"),
        ("GenericError", "Cannot specify bitmap sync mode without a "
         "bitmap"),
        ("GenericError", "Bitmap sync mode must be 'on-success' when using "
         "sync mode 'incremental'"),
        ("GenericError", "Parameter 'speed' expects a non-negative value"),
        ("GenericError", "Bitmap 'nope' could not be found"),
        ("GenericError", "Bitmap sync mode must be given when providing a "
         "bitmap"),
        ("GenericError", "sync mode 'none' does not produce meaningful "
         "bitmap outputs"),
        ("GenericError", "Bitmap sync mode 'never' has no meaningful effect "
         "when combined with sync mode 'full'"),
        ("GenericError", "Source and target image have different sizes"),
    ]
    assert got == want, got
    if qemu_binary():
        assert errors_of(s, True) == want


@with_setup
def test_refused(s):
    t = s.target()
    with s.start() as q:
        c = q.connect()
        add_target(c, t)
        for extra, msg in [
                ({"compress": True},
                 "qmpd does not support 'compress' in backup jobs"),
                # QEMU 7.2's, from the filter node the job puts in
                ({"filter-node-name": "1bad"},
                 "Could not create node: Invalid node-name: '1bad'"),
                ({"filter-node-name": "tgt"},
                 "Could not create node: Duplicate nodes with "
                 "node-name='tgt'"),
                ]:
            e = c.error("blockdev-backup", **dict(
                {"device": "drive0", "target": "tgt", "sync": "full"},
                **extra))
            assert e == ("GenericError", msg), e
        # busy: a second job on the same nodes
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="none",
              **{"job-id": "a", "filter-node-name": "f"})
        # the named filter is the device's root while the job runs
        inserted = c.cmd("query-block")[0]["inserted"]
        assert (inserted["node-name"], inserted["drv"]) == (
            "f", "copy-before-write"), inserted
        e = c.error("blockdev-backup", device="drive0", target="tgt",
                    sync="none", **{"job-id": "b"})
        assert "is busy" in e[1], e
        c.cmd("block-job-cancel", device="a")
        until_status(c, "a", "null")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()


def event_names(s, qemu):
    """Events of a full backup, then of a cancelled sync=none backup."""
    t = s.target()
    q, c = start_either(["-drive", "file=%s,if=none,id=drive0,"
                         "format=qcow2" % s.src], qemu)
    with q:
        add_target(c, t)
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="full")
        full = until_status(c, "drive0", "null")
        c.cmd("blockdev-backup", device="drive0", target="tgt", sync="none",
              **{"job-id": "n"})
        j = c.cmd("query-block-jobs")
        assert [(x["type"], x["device"], x["ready"]) for x in j] == \
            [("backup", "n", False)], j
        c.cmd("block-job-cancel", device="n")
        none = until_status(c, "n", "null")
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    data = [{k: v for k, v in e["data"].items()}
            for e in full + none if e["event"].startswith("BLOCK_JOB")]
    return names(full), names(none), data


@with_setup
def test_events_like_qemu(s):
    got = event_names(s, False)
    assert got[0] == ["created", "running", "paused", "running", "waiting",
                      "pending", "BLOCK_JOB_COMPLETED", "concluded",
                      "null"], got
    if qemu_binary():
        assert event_names(s, True) == got


def node_bitmaps(c, node="src"):
    """(name or None, count, busy, recording) of @node's bitmaps, in the
    order query-named-block-nodes lists them."""
    for n in c.cmd("query-named-block-nodes"):
        if n["node-name"] == node:
            return [(b.get("name"), b["count"], b["busy"], b["recording"])
                    for b in n.get("dirty-bitmaps", [])]
    raise KeyError(node)


def start_src(s, src=None, qemu=False):
    """qmpd (or QEMU) with the source as node src of drive0, or as the
    -blockdev @src."""
    if src:
        return start_either(["-blockdev", json.dumps(src)], qemu)
    return start_either(["-drive", "file=%s,if=none,id=drive0,format=qcow2,"
                         "node-name=src" % s.src], qemu)


W1 = [(0x31, MiB, 2 * MiB), (0x32, 20 * MiB, 64 * KiB),
      (0x33, 40 * MiB + 4 * KiB, 4 * KiB)]
W2 = [(0x41, 50 * MiB, 64 * KiB), (0x42, 2 * MiB, 4 * KiB),
      (0x43, 60 * MiB, 8 * KiB)]


@with_setup
def test_bitmap_frozen(s):
    """During sync=bitmap/incremental the bitmap is busy and keeps its
    count from the job's start; an anonymous successor records the
    guest's writes and the job's copy bitmap (not recording) shows what
    is left, as QEMU 7.2 lists them on the source.  At the end: on-success
    and always keep only the writes made during the job (the bitmap
    listed where the successor was), never merges both."""
    g1 = len(granules([(o, n) for _, o, n in W1])) * 64 * KiB
    g2 = len(granules([(o, n) for _, o, n in W2])) * 64 * KiB
    g12 = len(granules([(o, n) for _, o, n in W1 + W2])) * 64 * KiB
    for mode, after in (
            ("on-success", [("b0", g2), ("other", g12)]),
            ("never", [("other", g12), ("b0", g12)]),
            ("always", [("b0", g2), ("other", g12)])):
        shutil.copy(s.before, s.after)
        src0 = s.path("src0.qcow2")
        shutil.copy(s.src, src0)
        t = s.path("t.qcow2")
        img("convert", "-O", "qcow2", s.before, t)
        q, c = start_src(s)
        with q:
            add_target(c, t)
            for name in ("b0", "other"):
                assert "return" in c.execute("block-dirty-bitmap-add", {
                    "node": "src", "name": name})
            for pat, off, ln in W1:
                hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
                s.apply(pat, off, ln)
            point = s.path("point.raw")
            shutil.copy(s.after, point)
            args = {"device": "drive0", "target": "tgt", "bitmap": "b0",
                    "job-id": "j", "speed": MiB}
            if mode == "on-success":
                args["sync"] = "incremental"
            else:
                args.update({"sync": "bitmap", "bitmap-mode": mode})
            c.cmd("blockdev-backup", **args)
            for pat, off, ln in W2:
                hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
                s.apply(pat, off, ln)
            during = node_bitmaps(c)
            assert [b[:1] + b[2:] for b in during] == [
                (None, False, False), (None, False, True),
                ("other", False, True), ("b0", True, True)], during
            assert 0 < during[0][1] <= g1 and during[1][1] == g2 and \
                during[2][1] == g12 and during[3][1] == g1, during
            c.cmd("block-job-set-speed", device="j", speed=0)
            evs = until_status(c, "j", "null")
            done = [e["data"] for e in evs
                    if e["event"] == "BLOCK_JOB_COMPLETED"][0]
            assert "error" not in done and done["len"] == g1, done
            got = node_bitmaps(c)
            assert got == [(n, cnt, False, True) for n, cnt in after], \
                (mode, got)
            hmp_io(c, "aio_flush")
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
        compare(t, point)
        compare(s.src, s.after)
        check_images([t, s.src])
        os.replace(src0, s.src)


def failed_counts(s, qemu):
    """A job whose target fails every write, in each bitmap-mode: the
    events, and the bitmaps after it and after one more guest write."""
    t = s.target("f.qcow2")
    q, c = start_src(s, qemu=qemu)
    out = []
    with q:
        c.cmd("blockdev-add", **qcow2_node(
            "tgt", t, [{"event": "write_aio", "errno": 5}]))
        for name in ("b0", "other"):
            assert "return" in c.execute("block-dirty-bitmap-add", {
                "node": "src", "name": name})
        hmp_io(c, "write -P 3 0 4M")
        for i, mode in enumerate(("on-success", "never", "always")):
            c.cmd("blockdev-backup", device="drive0", target="tgt",
                  sync="bitmap", bitmap="b0", **{"bitmap-mode": mode,
                                                 "job-id": "j"})
            out.append(log(until_status(c, "j", "null")))
            out.append(node_bitmaps(c))
            hmp_io(c, "write -P 3 %d 64k" % ((8 + i) * MiB))
            out.append(node_bitmaps(c))
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    return out


def cross_cycle(s, first_qemu):
    """The incremental cycle split between two implementations: the
    first runs the full backup and adds persistent bitmap b0 in one
    transaction, the guest writes, it quits (b0 stored in the image);
    the second loads b0 and runs the incremental backup into an overlay
    of the full one.  The restored chain must equal the source."""
    full = s.target("full.qcow2")
    inc = s.path("inc.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", full, "-F", "qcow2", inc)
    q, c = start_src(s, qemu=first_qemu)
    with q:
        c.cmd("blockdev-add", **qcow2_node("full", full))
        c.cmd("transaction", actions=[
            {"type": "blockdev-backup", "data": {
                "device": "drive0", "target": "full", "sync": "full",
                "job-id": "f"}},
            {"type": "block-dirty-bitmap-add", "data": {
                "node": "src", "name": "b0", "persistent": True}}])
        until_status(c, "f", "null")
        for pat, off, ln in W1:
            hmp_io(c, "write -P %d %d %d" % (pat, off, ln))
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    q, c = start_src(s, qemu=not first_qemu)
    with q:
        c.cmd("blockdev-add", **qcow2_node("inc", inc))
        c.cmd("blockdev-backup", device="drive0", target="inc",
              sync="incremental", bitmap="b0", **{"job-id": "i"})
        evs = until_status(c, "i", "null")
        done = [e["data"] for e in evs
                if e.get("event") == "BLOCK_JOB_COMPLETED"]
        assert done and "error" not in done[0], evs
        # the clusters the guest wrote, no more
        assert done[0]["len"] == 2 * MiB + 2 * 64 * KiB, done
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    compare(inc, s.src, fb="qcow2")
    check_images([full, inc, s.src])


@with_setup
def test_bitmap_qmpd_to_qemu(s):
    """qmpd's full backup and bitmap; QEMU's incremental backup."""
    need_qemu()
    cross_cycle(s, False)


@with_setup
def test_bitmap_qemu_to_qmpd(s):
    """QEMU's full backup and bitmap; qmpd's incremental backup."""
    need_qemu()
    cross_cycle(s, True)


@with_setup
def test_bitmap_failed_job(s):
    """A failed job gives the bitmap back: on-success and never as it was
    (with what was written since), always with what was not copied
    (here all of it) and listed first, as QEMU 7.2."""
    got = failed_counts(s, False)
    evs = ["j:created", "j:running", "j:paused", "j:running",
           "ERROR j write report", "j:aborting",
           "COMPLETED j Input/output error", "j:concluded", "j:null"]
    old, more = 4 * MiB, 4 * MiB + 64 * KiB
    assert got == [
        evs, [("other", old, False, True), ("b0", old, False, True)],
        [("other", more, False, True), ("b0", more, False, True)],
        evs, [("other", more, False, True), ("b0", more, False, True)],
        [("other", more + 64 * KiB, False, True),
         ("b0", more + 64 * KiB, False, True)],
        evs, [("b0", more + 64 * KiB, False, True),
              ("other", more + 64 * KiB, False, True)],
        [("b0", more + 128 * KiB, False, True),
         ("other", more + 128 * KiB, False, True)]], got
    if qemu_binary():
        assert failed_counts(s, True) == got


def on_error(s, side, policy, errno=5, once=False):
    """A full backup of the source into a new target, with blkdebug on
    @side (src: reads fail; tgt: writes fail) and @policy for it.
    Returns (qmpd, client, target path); the job is j."""
    rule = {"event": "read_aio" if side == "src" else "write_aio",
            "errno": errno}
    if once:
        rule["once"] = True
    t = s.target()
    src = qcow2_node("src", s.src, [rule] if side == "src" else None)
    q, c = start_src(s, src)
    c.cmd("blockdev-add", **qcow2_node("tgt", t, [rule] if side == "tgt"
                                       else None))
    c.cmd("blockdev-backup", device="src", target="tgt", sync="full",
          **{"job-id": "j",
             "on-source-error": policy if side == "src" else "report",
             "on-target-error": policy if side == "tgt" else "report"})
    return q, c, t


START = ["j:created", "j:running", "j:paused", "j:running"]


def until_second(c, job, status, timeout=60):
    """Events up to @job's second change to @status (a backup pauses once
    as it starts)."""
    seen = []

    def pred(e):
        if e["event"] == "JOB_STATUS_CHANGE" and \
                e["data"] == {"id": job, "status": status}:
            seen.append(e)
        return len(seen) == 2
    return events_until(c, pred, timeout)
DONE = ["j:waiting", "j:pending", "COMPLETED j", "j:concluded", "j:null"]


@with_setup
def test_on_error_report(s):
    """report: one BLOCK_JOB_ERROR for the failed round of copies, however
    many copies it had in flight, then the job fails with the error."""
    for side, op in (("src", "read"), ("tgt", "write")):
        q, c, t = on_error(s, side, "report")
        with q:
            evs = log(until_status(c, "j", "null"))
            assert evs == START + [
                "ERROR j %s report" % op, "j:aborting",
                "COMPLETED j Input/output error", "j:concluded",
                "j:null"], evs
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
        check_images([t, s.src])


@with_setup
def test_on_error_ignore(s):
    """ignore: the failed copies are done again; the backup completes
    and is the whole source."""
    for side, op in (("src", "read"), ("tgt", "write")):
        q, c, t = on_error(s, side, "ignore", once=True)
        with q:
            evs = log(until_status(c, "j", "null"))
            assert evs == START + ["ERROR j %s ignore" % op] + DONE, evs
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
        compare(t, s.before)
        check_images([t, s.src])


@with_setup
def test_on_error_stop(s):
    """stop, and enospc on ENOSPC: the job pauses with io-status failed
    or nospace until it is resumed, then copies what failed and
    completes; enospc on another error reports it."""
    for side, op, policy, errno, status in (
            ("tgt", "write", "stop", 5, "failed"),
            ("src", "read", "stop", 5, "failed"),
            ("tgt", "write", "enospc", 28, "nospace"),
            ("tgt", "write", "auto", 28, "nospace")):
        q, c, t = on_error(s, side, policy, errno, once=True)
        with q:
            evs = log(until_second(c, "j", "paused"))
            assert evs == START + ["ERROR j %s stop" % op, "j:paused"], evs
            j = job_info(c, "j")
            assert (j["status"], j["paused"], j["busy"], j["io-status"]) \
                == ("paused", True, False, status), j
            assert j["offset"] < j["len"], j
            c.cmd("block-job-resume", device="j")
            j = job_info(c, "j")
            assert j is None or j["io-status"] == "ok", j
            evs = log(until_status(c, "j", "null"))
            assert evs == ["j:running"] + DONE, evs
            c.cmd("quit")
            assert q.wait() == 0, q.stderr_text()
        compare(t, s.before)
        check_images([t, s.src])
    q, c, t = on_error(s, "tgt", "enospc", 5, once=True)
    with q:
        evs = log(until_status(c, "j", "null"))
        assert evs == START + ["ERROR j write report", "j:aborting",
                               "COMPLETED j Input/output error",
                               "j:concluded", "j:null"], evs
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()


if __name__ == "__main__":
    run([test_full, test_full_sparse, test_none, test_cancel, test_manual_finalize,
         test_errors, test_refused, test_events_like_qemu,
         test_drive_backup_full, test_drive_backup_none,
         test_drive_backup_existing, test_drive_errors, test_top,
         test_drive_backup_top, test_incremental_cycle, test_bitmap_modes,
         test_bitmap_cancel, test_none_discard, test_bitmap_frozen,
         test_bitmap_failed_job, test_on_error_report, test_on_error_ignore,
         test_on_error_stop, test_bitmap_qmpd_to_qemu,
         test_bitmap_qemu_to_qmpd])
