#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""drive-mirror and blockdev-mirror, checked with QEMU's own tools.

The chain base <- sn1 <- sn2 is made with qemu-img and qemu-io, each
layer with its own pattern at overlapping and separate offsets; qmpd
opens sn2 as drive0.  The guest writes through HMP qemu-io before the
job, while it copies (the job slowed down by its speed limit) and once
it is ready.  What the guest sees is kept as a raw file (qemu-img
convert of the chain, then every guest write applied to it), and each
image the job leaves is compared with it (qemu-img compare), checked
(qemu-img check) and its chain inspected (qemu-img info
--backing-chain).  The events, errors and their order are those QEMU
7.2 gives for the same commands.  Skips (77) without qemu-img.
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, wait_mid_copy  # noqa: E402
from images import (check_images, chain_of, img, need_tools,  # noqa: E402
                    qemu_io, same_content)

KiB = 1 << 10
MiB = 1 << 20

# (layer, pattern, offset KiB, length KiB): clusters and parts of them;
# pattern 0 is a zero write (zero clusters hiding what is below)
LAYOUT = [("base", 0x11, 0, 4096), ("base", 0x12, 8192, 1024),
          ("base", 0x13, 30720, 2048), ("base", 0x14, 50176, 64),
          ("sn1", 0x21, 2048, 4096), ("sn1", 0x22, 20480, 1024),
          ("sn1", 0x23, 31744, 2048), ("sn1", 0x24, 50180, 4),
          ("sn2", 0x31, 5120, 2048), ("sn2", 0x32, 40960, 1024),
          ("sn2", 0x33, 50200, 8), ("sn2", 0, 2112, 64),
          ("sn2", 0, 31744, 128)]


def make_chain(d):
    paths = {n: os.path.join(d, n + ".qcow2") for n in ("base", "sn1", "sn2")}
    img("create", "-q", "-f", "qcow2", paths["base"], "64M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        paths["sn1"])
    img("create", "-q", "-f", "qcow2", "-b", "sn1.qcow2", "-F", "qcow2",
        paths["sn2"])
    for layer, pat, off, ln in LAYOUT:
        # pattern 0: a zero cluster over the layers below
        qemu_io(paths[layer], "write -q %s %dk %dk"
                % ("-P %d" % pat if pat else "-z", off, ln))
    return paths


def hmp_io(c, cmd, device="drive0"):
    """qemu-io on a drive, or (-d) on a guest device by its id (qmpd
    takes the device's id; QEMU wants "<id>/virtio-backend")."""
    dev = "-d " + device if device.startswith("virtio") else device
    out = c.cmd("human-monitor-command", **{
        "command-line": 'qemu-io %s "%s"' % (dev, cmd)})
    assert "error" not in out.lower() and "fail" not in out.lower(), out


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


def until_event(c, name, timeout=30):
    return events_until(c, lambda e: e["event"] == name, timeout)


def names(evs):
    """JOB_STATUS_CHANGE as its status, other events by name."""
    return [e["data"]["status"] if e["event"] == "JOB_STATUS_CHANGE"
            else e["event"] for e in evs]


def job_info(c, job):
    for j in c.cmd("query-block-jobs"):
        if j["device"] == job:
            return j
    return None


def inserted(c, device="drive0"):
    for b in c.cmd("query-block"):
        if b["device"] == device:
            return b["inserted"]
    raise KeyError(device)


class Setup:
    """The chain in a temporary directory and the guest's view of it."""

    def __init__(self):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="qmpd-mirror-")
        self.paths = make_chain(self.dir)
        self.expect = self.path("expect.raw")
        img("convert", "-O", "raw", self.paths["sn2"], self.expect)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, c, pat, off, ln, device="drive0", aio=False):
        """A guest write, also applied to the expected view."""
        hmp_io(c, "%s -P %d %d %d" % ("aio_write" if aio else "write", pat,
                                      off, ln), device)
        with open(self.expect, "r+b") as f:
            f.seek(off)
            f.write(bytes([pat]) * ln)

    def start(self, extra=(), drive=None):
        return Qmpd(["-M", "none", "-drive", drive or
                     "file=%s,if=none,id=drive0,format=qcow2"
                     % self.paths["sn2"]] + list(extra))

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


# Writes before READY: cluster-aligned, partial, across clusters, zeroes.
BEFORE = [(0x41, 64 * KiB, 64 * KiB), (0x42, 5 * MiB + 4 * KiB, 4 * KiB),
          (0x43, 12 * MiB - 8 * KiB, 24 * KiB), (0x44, 60 * MiB, MiB),
          (0, 2 * MiB, 128 * KiB)]
AFTER = [(0x51, 50 * MiB + 12 * KiB, 4 * KiB), (0x52, 7 * MiB, 256 * KiB),
         (0x53, 40 * MiB + 60 * KiB, 8 * KiB)]


def copy_with_writes(s, c, job, args, cmd="drive-mirror"):
    """Start the job slowed down, write while it copies and once it is
    ready; return the events up to READY."""
    s.write(c, 0x40, 33 * MiB, 64 * KiB)         # before the job
    c.cmd(cmd, **dict(args, **{"job-id": job, "speed": MiB}))
    for pat, off, ln in BEFORE:
        s.write(c, pat, off, ln)
    j = job_info(c, job)
    # sync none has nothing to copy first: ready at once (as QEMU)
    assert j["ready"] == (args["sync"] == "none"), j
    c.cmd("block-job-set-speed", device=job, speed=0)
    evs = until_event(c, "BLOCK_JOB_READY")
    ready = evs[-1]["data"]
    assert ready["type"] == "mirror" and ready["device"] == job
    assert ready["offset"] == ready["len"], ready
    assert names(evs)[:2] == ["created", "running"], names(evs)
    assert names(evs)[-2:] == ["ready", "BLOCK_JOB_READY"], names(evs)
    for pat, off, ln in AFTER:
        s.write(c, pat, off, ln)
    for i in range(6):
        s.write(c, 0x60 + i, (44 + i) * MiB + i * 4 * KiB, 64 * KiB, aio=True)
    return evs


def complete(c, job, device="drive0"):
    c.cmd("block-job-complete", device=job)
    evs = until_status(c, job, "null")
    assert names(evs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED",
                          "concluded", "null"], names(evs)
    done = evs[2]["data"]
    assert "error" not in done and done["offset"] == done["len"], done
    hmp_io(c, "aio_flush", device)


@with_setup
def test_errors(s):
    """Argument errors, their wording and order, as QEMU 7.2 gives them."""
    t = s.path("t.qcow2")
    with s.start(drive="file=%s,if=none,id=drive0,format=qcow2,"
                 "node-name=sn2,backing.node-name=sn1" % s.paths["sn2"]) as q:
        c = q.connect()
        g = "GenericError"

        def err(**a):
            args = {"device": "drive0", "target": t, "sync": "full"}
            args.update({k.replace("_", "-"): v for k, v in a.items()})
            return c.error("drive-mirror", **args)

        assert err(device="nosuch") == (
            g, "Cannot find device='nosuch' nor node-name='nosuch'")
        assert err(device="sn1") == (g, "Need a root block node")
        assert err(granularity=256) == (
            g, "Parameter 'granularity' expects a value in range "
            "[512B, 64MB]")
        assert err(granularity=128 * MiB)[1].endswith("[512B, 64MB]")
        assert err(granularity=1000) == (
            g, "Parameter 'granularity' expects a power of 2")
        assert err(buf_size=-1) == (g, "Invalid parameter 'buf-size'")
        assert err(sync="incremental") == (
            g, "Sync mode 'incremental' not supported")
        assert err(replaces="x") == (
            g, "a node-name must be provided when replacing a named node "
            "of the graph")
        assert err(replaces="x", node_name="t") == (
            g, "Failed to find node with node-name='x'")
        assert err(replaces="sn1", node_name="t") == (
            g, "Node 'sn1' is busy: node is used as backing hd of 'sn2'")
        assert err(target=s.path("nodir/t.qcow2")) == (
            g, "Could not create '%s': No such file or directory"
            % s.path("nodir/t.qcow2"))
        assert err(target=s.path("nosuch"), mode="existing") == (
            g, "Could not open '%s': No such file or directory"
            % s.path("nosuch"))
        assert err(format="vmdk2") == (g, "Unknown file format 'vmdk2'")
        assert err(format="raw", sync="top") == (
            g, "Backing file not supported for file format 'raw'")
        assert err(node_name="sn1") == (
            g, "Duplicate nodes with node-name='sn1'")
        assert err(node_name="1x") == (g, "Invalid node-name: '1x'")
        assert err(node_name="drive0") == (
            g, "node-name=drive0 is conflicting with a device id")
        assert err(job_id="1x") == (g, "Invalid job ID '1x'")
        assert c.events == []
        # a negative speed fails on the created job: created, null
        assert err(speed=-1) == (
            g, "Parameter 'speed' expects a non-negative value")
        assert names(until_status(c, "drive0", "null")) == [
            "created", "null"]
        # a target of another size fails the started job, after the reply
        small = s.path("small.qcow2")
        img("create", "-q", "-f", "qcow2", small, "32M")
        c.cmd("drive-mirror", device="drive0", target=small, sync="full",
              mode="existing", **{"job-id": "m"})
        evs = until_status(c, "m", "null")
        assert names(evs) == ["created", "running", "aborting",
                              "BLOCK_JOB_COMPLETED", "concluded", "null"]
        assert evs[3]["data"] == {
            "type": "mirror", "device": "m", "len": 0, "offset": 0,
            "speed": 0,
            "error": "Source and target image have different sizes"}
        # complete before READY; a second job on the device
        c.cmd("drive-mirror", device="drive0", target=t, sync="full",
              speed=1, **{"job-id": "m"})
        assert c.error("block-job-complete", device="m") == (
            g, "Job 'm' in state 'running' cannot accept command verb "
            "'complete'")
        assert err(job_id="m2") == (g, "Need a root block node")
        assert err(device="sn2", job_id="m2") == (
            g, "Need a root block node")
        c.cmd("block-job-cancel", device="m")
        evs = until_status(c, "m", "null")
        assert names(evs) == ["created", "running", "aborting",
                              "BLOCK_JOB_CANCELLED", "concluded", "null"]
        assert inserted(c)["node-name"] == "sn2"


@with_setup
def test_blockdev_errors(s):
    """blockdev-mirror's checks: target node, busy, permissions, replaces."""
    for n in ("t1", "t2", "small"):
        img("create", "-q", "-f", "qcow2", s.path(n + ".qcow2"),
            "32M" if n == "small" else "64M")
    args = ["-blockdev", "driver=qcow2,node-name=sn1,read-only=on,"
            "file.driver=file,file.filename=%s" % s.paths["sn1"]]
    for n, ro in (("t1", "off"), ("t2", "on"), ("small", "off")):
        args += ["-blockdev", "driver=file,node-name=%s-file,filename=%s"
                 % (n, s.path(n + ".qcow2")),
                 "-blockdev", "driver=qcow2,node-name=%s,file=%s-file,"
                 "read-only=%s" % (n, n, ro)]
    with s.start(args, drive="file=%s,if=none,id=drive0,format=qcow2,"
                 "node-name=sn2,backing=sn1" % s.paths["sn2"]) as q:
        c = q.connect()
        g = "GenericError"

        def err(**a):
            args = {"device": "drive0", "target": "t1", "sync": "full"}
            args.update({k.replace("_", "-"): v for k, v in a.items()})
            return c.error("blockdev-mirror", **args)

        assert err(target="nosuch") == (
            g, "Cannot find device='nosuch' nor node-name='nosuch'")
        assert err(target="sn2") == (g, "Can't mirror node into itself")
        assert err(target="drive0") == (g, "Can't mirror node into itself")
        assert err(target="sn1") == (
            g, "Node 'sn1' is busy: node is used as backing hd of 'sn2'")
        assert err(replaces="nosuch") == (
            g, "Failed to find node with node-name='nosuch'")
        assert err(replaces="small") == (
            g, "Cannot replace 'small' by a node mirrored from 'sn2', "
            "because it cannot be guaranteed that doing so would not lead "
            "to an abrupt change of visible data")
        assert err(filter_node_name="sn1") == (
            g, "Duplicate nodes with node-name='sn1'")
        assert err(filter_node_name="1bad") == (
            g, "Invalid node-name: '1bad'")
        assert err(filter_node_name="drive0") == (
            g, "node-name=drive0 is conflicting with a device id")
        assert err(sync="bitmap") == (g, "Sync mode 'bitmap' not supported")
        assert c.events == []
        assert err(target="t2") == (g, "Block node is read-only")
        assert names(until_status(c, "drive0", "null")) == [
            "created", "null"]
        assert err(target="t1-file") == (
            g, "Permission conflict on node 't1-file': permissions "
            "'consistent read, write, resize' are both required by node "
            "'t1' (uses node 't1-file' as 'file' child) and unshared by an "
            "unnamed block device (uses node 't1-file' as 'root' child).")
        until_status(c, "drive0", "null")
        c.cmd("blockdev-mirror", device="drive0", target="t1", sync="full",
              speed=1, **{"job-id": "a"})
        assert err(device="small", job_id="b") == (
            g, "Node 't1' is busy: block device is in use by block job: "
            "mirror")
        # the job's own backend on its target comes first, as in QEMU
        assert c.error("blockdev-del", **{"node-name": "t1"}) == (
            g, "Node t1 is in use")
        assert err(device="small", target="sn2", job_id="b") == (
            g, "Node 'sn2' is busy: block device is in use by block job: "
            "mirror")
        assert err(device="t1", target="small", job_id="b") == (
            g, "Need a root block node")
        assert c.error("blockdev-mirror", device="t2", target="small",
                       sync="full", **{"job-id": "a"}) == (
            g, "Job ID 'a' already in use")
        c.cmd("block-job-cancel", device="a")
        until_status(c, "a", "null")


def mirror_and_check(s, sync, chain, extra=None):
    t = s.path("target.qcow2")
    with s.start() as q:
        c = q.connect()
        args = {"device": "drive0", "target": t, "sync": sync,
                "node-name": "tgt"}
        args.update(extra or {})
        copy_with_writes(s, c, "m", args)
        complete(c, "m")
        ins = inserted(c)
        assert ins["node-name"] == "tgt" and ins["file"] == t, ins
        assert ins["backing_file_depth"] == len(chain) - 1, ins
        assert c.cmd("query-block-jobs") == []
        c.cmd("quit")
        q.wait()
    # the target holds what the guest saw; the source as well, up to the
    # switch (nothing was written after it)
    assert chain_of(t) == chain, chain_of(t)
    same_content(t, s.expect)
    same_content(s.paths["sn2"], s.expect)
    check_images([t, *s.paths.values()])
    return t


@with_setup
def test_full(s):
    """sync full: a standalone copy of everything the guest sees."""
    mirror_and_check(s, "full", ["target.qcow2"])


@with_setup
def test_top(s):
    """sync top: only what sn2 holds; the target is backed by sn1."""
    t = mirror_and_check(s, "top", ["target.qcow2", "sn1.qcow2",
                                    "base.qcow2"])
    # nothing of sn1 or base was copied
    m = json.loads(img("map", "--output=json", t))
    data = sum(e["length"] for e in m if e["data"] and e["depth"] == 0)
    assert data < 16 * MiB, data


@with_setup
def test_none(s):
    """sync none: only the guest's writes; the target is backed by sn2."""
    t = mirror_and_check(s, "none", ["target.qcow2", "sn2.qcow2",
                                     "sn1.qcow2", "base.qcow2"])
    m = json.loads(img("map", "--output=json", t))
    data = sum(e["length"] for e in m if e["data"] and e["depth"] == 0)
    assert data < 4 * MiB, data


@with_setup
def test_small_granularity(s):
    """4 KiB granularity on a 64 KiB-cluster target that is not backed
    yet: partly written clusters must still get the backing's data."""
    mirror_and_check(s, "top", ["target.qcow2", "sn1.qcow2", "base.qcow2"],
                     {"granularity": 4096, "buf-size": 256 * KiB})


@with_setup
def test_write_blocking(s):
    """copy-mode write-blocking: once ready, a guest write completes
    only when the target has it too (nothing is left dirty after it)."""
    mirror_and_check(s, "top", ["target.qcow2", "sn1.qcow2", "base.qcow2"],
                     {"copy-mode": "write-blocking", "granularity": 4096})
    t = s.path("t2.qcow2")
    img("create", "-q", "-f", "qcow2", t, "64M")
    with s.start(["-blockdev", "driver=qcow2,node-name=t,file.driver=file,"
                  "file.filename=%s" % t]) as q:
        c = q.connect()
        copy_with_writes(s, c, "w", {"device": "drive0", "target": "t",
                                     "sync": "full",
                                     "copy-mode": "write-blocking"},
                         cmd="blockdev-mirror")
        hmp_io(c, "aio_flush")
        for pat, off, ln in ((0x55, 3 * MiB + 512, 1536),
                             (0x56, 9 * MiB - 4 * KiB, 8 * KiB),
                             (0x57, 17 * MiB, 3 * MiB)):
            s.write(c, pat, off, ln)
            j = job_info(c, "w")
            assert j["offset"] == j["len"] and not j["busy"], j
        complete(c, "w")
        assert inserted(c)["node-name"] == "t"
        c.cmd("quit")
        q.wait()
    same_content(t, s.expect)
    check_images([t])


@with_setup
def test_pivot_then_write(s):
    """After the switch the guest writes to the target only."""
    t = s.path("target.qcow2")
    with s.start() as q:
        c = q.connect()
        c.cmd("drive-mirror", device="drive0", target=t, sync="full",
              format="qcow2", **{"job-id": "m"})
        evs = until_event(c, "BLOCK_JOB_READY")
        assert names(evs) == ["created", "running", "ready",
                              "BLOCK_JOB_READY"], names(evs)
        before = open(s.expect, "rb").read()
        complete(c, "m")
        s.write(c, 0x77, 3 * MiB, 64 * KiB)
        s.write(c, 0x78, 63 * MiB + 60 * KiB, 4 * KiB)
        for i in range(0, 64 * MiB, 16 * MiB):
            hmp_io(c, "read -q 0x%x 1M" % i)
        c.cmd("quit")
        q.wait()
    same_content(t, s.expect)
    orig = s.path("orig.raw")
    with open(orig, "wb") as f:
        f.write(before)
    same_content(s.paths["sn2"], orig)
    check_images([t, *s.paths.values()])


@with_setup
def test_cancel(s):
    """Cancel before READY, soft and forced after READY."""
    t = s.path("target.qcow2")
    with s.start() as q:
        c = q.connect()
        # before READY even a soft cancel cancels
        for force in (False, True):
            c.cmd("drive-mirror", device="drive0", target=t, sync="full",
                  speed=64 * KiB, **{"job-id": "k"})
            until_status(c, "k", "running")
            c.cmd("block-job-cancel", device="k", force=force)
            evs = until_status(c, "k", "null")
            assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                                  "concluded", "null"], names(evs)
        # after READY: a soft cancel completes in sync, without switch
        c.cmd("drive-mirror", device="drive0", target=t, sync="full",
              **{"job-id": "k"})
        until_event(c, "BLOCK_JOB_READY")
        s.write(c, 0x44, 8 * MiB, 64 * KiB)
        c.cmd("block-job-cancel", device="k")
        evs = until_status(c, "k", "null")
        assert names(evs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED",
                              "concluded", "null"], names(evs)
        done = evs[2]["data"]
        assert "error" not in done and done["offset"] == done["len"], done
        assert inserted(c)["file"] == s.paths["sn2"]
        c.cmd("quit")
        q.wait()
    same_content(t, s.expect)
    check_images([t])
    with s.start() as q:
        c = q.connect()
        c.cmd("drive-mirror", device="drive0", target=t, sync="full",
              **{"job-id": "k"})
        until_event(c, "BLOCK_JOB_READY")
        c.cmd("block-job-cancel", device="k", force=True)
        evs = until_status(c, "k", "null")
        assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                              "concluded", "null"], names(evs)
        assert inserted(c)["file"] == s.paths["sn2"]
        s.write(c, 0x45, 9 * MiB, 64 * KiB)
        c.cmd("quit")
        q.wait()
    same_content(s.paths["sn2"], s.expect)
    check_images([t, *s.paths.values()])


@with_setup
def test_manual_finalize(s):
    """auto-finalize off: guest writes held while pending reach the
    target after job-finalize."""
    t = s.path("target.qcow2")
    with s.start() as q:
        c = q.connect()
        c2 = q.connect()
        c.cmd("drive-mirror", device="drive0", target=t, sync="top",
              **{"job-id": "m", "auto-finalize": False,
                 "auto-dismiss": False})
        until_event(c, "BLOCK_JOB_READY")
        c.cmd("job-complete", id="m")
        evs = until_event(c, "BLOCK_JOB_PENDING")
        assert names(evs) == ["waiting", "pending", "BLOCK_JOB_PENDING"]
        assert evs[-1]["data"] == {"type": "mirror", "id": "m"}
        assert inserted(c)["file"] == s.paths["sn2"]
        s.write(c2, 0x71, 100 * KiB, 8 * KiB, aio=True)
        s.write(c2, 0x72, 33 * MiB, 64 * KiB, aio=True)
        c.cmd("job-finalize", id="m")
        evs = until_status(c, "m", "concluded")
        assert names(evs) == ["BLOCK_JOB_COMPLETED", "concluded"]
        assert inserted(c)["file"] == t
        jobs = c.cmd("query-jobs")
        assert jobs == [{"id": "m", "type": "mirror", "status": "concluded",
                         "current-progress": jobs[0]["current-progress"],
                         "total-progress": jobs[0]["current-progress"]}]
        c.cmd("job-dismiss", id="m")
        until_status(c, "m", "null")
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        q.wait()
    same_content(t, s.expect)
    assert chain_of(t) == ["target.qcow2", "sn1.qcow2", "base.qcow2"]
    check_images([t, *s.paths.values()])


@with_setup
def test_blockdev_full_overwrites(s):
    """blockdev-mirror sync full onto a target full of other data: the
    target becomes the source, zeroed where the source reads zeroes
    (zeroes written where it can deallocate, else everything copied)."""
    for unmap in (True, False):
        t = s.path("t.qcow2")
        img("create", "-q", "-f", "qcow2", t, "64M")
        qemu_io(t, "write -q -P 0x99 0 64M")
        tgt = {"driver": "qcow2", "node-name": "t",
               "file": {"driver": "file", "filename": t}}
        if unmap:
            tgt["discard"] = "unmap"
        with s.start(["-blockdev", json.dumps(tgt)]) as q:
            c = q.connect()
            c.cmd("blockdev-mirror", device="drive0", target="t",
                  sync="full", **{"job-id": "b"})
            ready = until_event(c, "BLOCK_JOB_READY")[-1]["data"]
            # QEMU: zeroing does not count; without it every range does
            assert (ready["len"] < 64 * MiB) == unmap, ready
            c.cmd("block-job-cancel", device="b")
            until_status(c, "b", "null")
            c.cmd("quit")
            q.wait()
        same_content(t, s.expect)
        check_images([t])


@with_setup
def test_seed_two_step(s):
    """The seed's live block copy, QEMU 7.2's way: stream sn1 into sn2
    (base stays), then mirror sync=top to a target backed by base; after
    the switch the chain is base <- active."""
    active = s.path("active.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        active, "64M")
    with s.start(drive="file=%s,if=none,id=drive0,format=qcow2,"
                 "node-name=sn2,backing.node-name=sn1,"
                 "backing.backing.node-name=base" % s.paths["sn2"]) as q:
        c = q.connect()
        s.write(c, 0x81, 21 * MiB, 64 * KiB)
        c.cmd("block-stream", device="drive0", **{"base-node": "base",
                                                  "job-id": "s"})
        s.write(c, 0x82, 22 * MiB, 4 * KiB)
        evs = until_status(c, "s", "null")
        assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        assert inserted(c)["backing_file_depth"] == 1
        c.cmd("drive-mirror", device="drive0", target=active, sync="top",
              mode="existing", **{"job-id": "m"})
        s.write(c, 0x83, 23 * MiB, 4 * KiB)
        evs = until_event(c, "BLOCK_JOB_READY")
        assert names(evs) == ["created", "running", "ready",
                              "BLOCK_JOB_READY"], names(evs)
        s.write(c, 0x84, 2 * MiB + 4 * KiB, 4 * KiB)
        complete(c, "m")
        ins = inserted(c)
        assert ins["file"] == active, ins
        assert ins["backing_file"] == s.paths["base"], ins
        assert ins["backing_file_depth"] == 1, ins
        files = sorted(n["file"] for n in c.cmd("query-named-block-nodes")
                       if n["drv"] == "qcow2")
        assert files == [active, s.paths["base"]], files
        c.cmd("quit")
        q.wait()
    assert chain_of(active) == ["active.qcow2", "base.qcow2"]
    same_content(active, s.expect)
    check_images([active, *s.paths.values()])
    # base is untouched: what the chain's bottom held
    qemu_io(s.paths["base"], "read -q -P 0x11 0 2M", "read -q -P 0x14 49M 64k")


def data_above_base(path):
    """Bytes the image itself holds (not its backing chain)."""
    m = json.loads(img("map", "--output=json", path))
    return sum(e["length"] for e in m if e["depth"] == 0 and
               (e["data"] or e.get("zero") and e["present"]))


@with_setup
def test_shared_base(s):
    """The seed's live block copy in one job (__com.qmpd_shared-base):
    everything not read from base is copied, sn1's and sn2's data and the
    guest's writes, and the target ends up backed by base."""
    drive = ("file=%s,if=none,id=drive0,format=qcow2,node-name=sn2,"
             "backing.node-name=sn1,backing.backing.node-name=base"
             % s.paths["sn2"])
    active = s.path("active.qcow2")
    created = s.path("created.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        active, "64M")
    with s.start(drive=drive) as q:
        c = q.connect()
        g = "GenericError"

        def err(**a):
            args = {"device": "drive0", "target": active, "sync": "top",
                    "mode": "existing"}
            args.update({k if k.startswith("__") else k.replace("_", "-"): v
                         for k, v in a.items()})
            return c.error("drive-mirror", **args)

        sb = "__com.qmpd_shared-base"
        assert err(**{sb: "nosuch"}) == (
            g, "Cannot find device='' nor node-name='nosuch'")
        assert err(sync="full", **{sb: "base"}) == (
            g, "'__com.qmpd_shared-base' requires sync 'top'")
        assert err(**{sb: "sn2"}) == (
            g, "'__com.qmpd_shared-base' must name a node below the source")
        copy_with_writes(s, c, "m", {"device": "drive0", "target": active,
                                     "sync": "top", "mode": "existing",
                                     sb: "base"})
        complete(c, "m")
        ins = inserted(c)
        assert ins["file"] == active and ins["backing_file_depth"] == 1, ins
        assert ins["backing_file"] == s.paths["base"], ins
        c.cmd("quit")
        q.wait()
    assert chain_of(active) == ["active.qcow2", "base.qcow2"]
    same_content(active, s.expect)
    same_content(s.paths["sn2"], s.expect)
    check_images([active, *s.paths.values()])
    # base's data was not copied: the guest sees ~16 MiB, ~11 above base
    assert data_above_base(active) < 13 * MiB, data_above_base(active)

    # mode absolute-paths creates the target backed by base
    s2 = Setup()
    try:
        with s2.start(drive=drive.replace(s.paths["sn2"],
                                          s2.paths["sn2"])) as q:
            c = q.connect()
            c.cmd("drive-mirror", device="drive0", target=created,
                  sync="top", **{"job-id": "m", sb: "base"})
            until_event(c, "BLOCK_JOB_READY")
            s2.write(c, 0x86, 51 * MiB, 4 * KiB)
            complete(c, "m")
            c.cmd("quit")
            q.wait()
        assert chain_of(created) == ["created.qcow2", "base.qcow2"]
        same_content(created, s2.expect)
        check_images([created])
    finally:
        s2.close()


@with_setup
def test_shared_base_blockdev(s):
    """blockdev-mirror with __com.qmpd_shared-base onto a target that
    already uses base as its backing node."""
    t = s.path("t.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", t,
        "64M")
    with s.start(drive="file=%s,if=none,id=drive0,format=qcow2,"
                 "node-name=sn2,backing.node-name=sn1,"
                 "backing.backing.node-name=base" % s.paths["sn2"]) as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="qcow2", backing="base", file={
            "driver": "file", "filename": t}, **{"node-name": "t"})
        copy_with_writes(s, c, "b", {"device": "drive0", "target": "t",
                                     "sync": "top",
                                     "__com.qmpd_shared-base": "base"},
                         cmd="blockdev-mirror")
        complete(c, "b")
        ins = inserted(c)
        assert ins["node-name"] == "t" and ins["backing_file_depth"] == 1
        c.cmd("quit")
        q.wait()
    assert chain_of(t) == ["t.qcow2", "base.qcow2"]
    same_content(t, s.expect)
    check_images([t, *s.paths.values()])


def libvirt_blockdevs(s):
    """The chain as libvirt opens it: a storage and a format node per
    layer, backing by reference, only the top writable."""
    args = []
    layers = [("base", 3), ("sn1", 2), ("sn2", 1)]
    for i, (name, n) in enumerate(layers):
        top = name == "sn2"
        args += ["-blockdev", json.dumps({
            "driver": "file", "filename": s.paths[name],
            "node-name": "libvirt-%d-storage" % n, "auto-read-only": True,
            "discard": "unmap"})]
        fmt = {"node-name": "libvirt-%d-format" % n, "read-only": not top,
               "driver": "qcow2", "file": "libvirt-%d-storage" % n}
        fmt["backing"] = "libvirt-%d-format" % (n + 1) if i else None
        args += ["-blockdev", json.dumps(fmt)]
    return args + ["-device", "virtio-blk-pci,drive=libvirt-1-format,"
                   "id=virtio-disk0"]


@with_setup
def test_libvirt_blockcopy(s):
    """virsh blockcopy vda --dest F --pivot: libvirt's exact sequence."""
    dest = s.path("copy.qcow2")
    open(dest, "wb").close()            # libvirt creates local files
    with Qmpd(["-M", "pc", "-S"] + libvirt_blockdevs(s)) as q:
        c = q.connect()
        c.cmd("blockdev-add", **{
            "driver": "file", "filename": dest, "node-name":
            "libvirt-4-storage", "auto-read-only": True, "discard": "unmap"})
        c.cmd("blockdev-create", **{"job-id": "create-libvirt-4-format",
                                    "options": {
                                        "driver": "qcow2",
                                        "file": "libvirt-4-storage",
                                        "size": 64 * MiB}})
        until_status(c, "create-libvirt-4-format", "concluded")
        c.cmd("query-jobs")
        c.cmd("job-dismiss", id="create-libvirt-4-format")
        until_status(c, "create-libvirt-4-format", "null")
        c.cmd("blockdev-add", **{
            "node-name": "libvirt-4-format", "read-only": False,
            "driver": "qcow2", "file": "libvirt-4-storage", "backing": None})
        job = "copy-vda-libvirt-1-format"
        c.cmd("blockdev-mirror", **{
            "job-id": job, "device": "libvirt-1-format",
            "target": "libvirt-4-format", "sync": "full",
            "auto-finalize": True, "auto-dismiss": False})
        evs = until_event(c, "BLOCK_JOB_READY")
        assert names(evs) == ["created", "running", "ready",
                              "BLOCK_JOB_READY"], names(evs)
        s.write(c, 0x91, 10 * MiB, 64 * KiB,
                device="virtio-disk0/virtio-backend")
        c.cmd("job-complete", id=job)
        evs = until_status(c, job, "concluded")
        assert names(evs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED",
                              "concluded"], names(evs)
        jobs = c.cmd("query-jobs")
        assert jobs[0]["id"] == job and "error" not in jobs[0], jobs
        c.cmd("job-dismiss", id=job)
        until_status(c, job, "null")
        ins = inserted(c, "")
        assert ins["node-name"] == "libvirt-4-format", ins
        c.cmd("query-named-block-nodes", flat=True)
        for n in (1, 2, 3):
            c.cmd("blockdev-del", **{"node-name": "libvirt-%d-format" % n})
            c.cmd("blockdev-del", **{"node-name": "libvirt-%d-storage" % n})
        nodes = sorted(n["node-name"]
                       for n in c.cmd("query-named-block-nodes"))
        assert nodes == ["libvirt-4-format", "libvirt-4-storage"], nodes
        s.write(c, 0x92, 11 * MiB, 64 * KiB,
                device="virtio-disk0/virtio-backend")
        hmp_io(c, "flush", "virtio-disk0/virtio-backend")
        c.cmd("quit")
        q.wait()
    assert chain_of(dest) == ["copy.qcow2"]
    same_content(dest, s.expect)
    check_images([dest, *s.paths.values()])


@with_setup
def test_kill9_mid_copy(s):
    """kill -9 while the job copies: both chains stay uncorrupted and the
    source holds the guest's data (a write it flushed included)."""
    t = s.path("target.qcow2")
    q = s.start()
    try:
        c = q.connect()
        s.write(c, 0x44, 20 * MiB, 64 * KiB)
        hmp_io(c, "flush")
        c.cmd("drive-mirror", device="drive0", target=t, sync="full",
              speed=4 * MiB, **{"job-id": "m"})
        wait_mid_copy(c, "m")
        q.kill9()
    finally:
        q.close()
    check_images([t, *s.paths.values()], leaks=True)
    assert chain_of(s.paths["sn2"]) == ["sn2.qcow2", "sn1.qcow2",
                                        "base.qcow2"]
    same_content(s.paths["sn2"], s.expect)


def blkdebug_target(s, rule, policy):
    t = s.path("target.qcow2")
    img("create", "-q", "-f", "qcow2", t, "64M")
    return t, ["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "t",
        "file": {"driver": "blkdebug", "inject-error": [rule],
                 "image": {"driver": "file", "filename": t}}})]


@with_setup
def test_target_error_report(s):
    """EIO on the target, on-target-error report: the job fails."""
    t, args = blkdebug_target(s, {"event": "write_aio", "errno": 5}, "")
    with s.start(args) as q:
        c = q.connect()
        c.cmd("blockdev-mirror", device="drive0", target="t", sync="top",
              **{"job-id": "e"})
        evs = until_status(c, "e", "null")
        errs = [e for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
        assert errs and errs[0]["data"] == {
            "device": "e", "operation": "write", "action": "report"}, evs
        done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"]
        assert done[0]["data"]["error"] == "Input/output error", done
        assert "aborting" in names(evs)
        assert inserted(c)["file"] == s.paths["sn2"]
        c.cmd("quit")
        q.wait()
    check_images([t, *s.paths.values()])
    same_content(s.paths["sn2"], s.expect)


@with_setup
def test_target_error_stop(s):
    """EIO once, on-target-error stop: paused with io-status failed; the
    guest goes on; resumed, the job gets ready and completes."""
    t, args = blkdebug_target(s, {"event": "write_aio", "errno": 5,
                                  "once": True}, "")
    with s.start(args) as q:
        c = q.connect()
        c.cmd("blockdev-mirror", device="drive0", target="t", sync="full",
              **{"job-id": "e", "on-target-error": "stop",
                 "on-source-error": "report"})
        evs = until_status(c, "e", "paused")
        errs = [e for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
        assert errs[0]["data"] == {"device": "e", "operation": "write",
                                   "action": "stop"}, evs
        j = job_info(c, "e")
        assert j["io-status"] == "failed" and j["paused"], j
        s.write(c, 0x66, 14 * MiB, 64 * KiB)
        c.cmd("block-job-resume", device="e")
        until_event(c, "BLOCK_JOB_READY")
        assert job_info(c, "e")["io-status"] == "ok"
        complete(c, "e")
        assert inserted(c)["node-name"] == "t"
        c.cmd("quit")
        q.wait()
    check_images([t, *s.paths.values()])
    same_content(t, s.expect)


@with_setup
def test_source_error(s):
    """EIO reading the source: on-source-error report fails the job (a
    read error), ignore goes on and copies the range again later."""
    sn2 = {"driver": "qcow2", "node-name": "src",
           "file": {"driver": "blkdebug", "image": {
               "driver": "file", "filename": s.paths["sn2"]},
               "inject-error": [{"event": "read_aio", "errno": 5,
                                 "once": True}]},
           "backing": {"driver": "qcow2", "file": {
               "driver": "file", "filename": s.paths["sn1"]}}}
    t = s.path("t.qcow2")
    for policy in ("report", "ignore"):
        img("create", "-q", "-f", "qcow2", "-b", "sn1.qcow2", "-F", "qcow2",
            t, "64M")
        with Qmpd(["-M", "none", "-blockdev", json.dumps(sn2),
                   "-blockdev", "driver=qcow2,node-name=t,file.driver=file,"
                   "file.filename=%s" % t]) as q:
            c = q.connect()
            c.cmd("blockdev-mirror", device="src", target="t", sync="top",
                  **{"job-id": "e", "on-source-error": policy})
            if policy == "report":
                evs = until_status(c, "e", "null")
                assert names(evs)[-4:] == ["aborting",
                                           "BLOCK_JOB_COMPLETED",
                                           "concluded", "null"], names(evs)
                assert evs[-3]["data"]["error"] == "Input/output error"
            else:
                evs = until_event(c, "BLOCK_JOB_READY")
                c.cmd("block-job-cancel", device="e")
                until_status(c, "e", "null")
            errs = [e["data"] for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
            assert errs == [{"device": "e", "operation": "read",
                             "action": policy}], errs
            c.cmd("quit")
            q.wait()
        check_images([t, *s.paths.values()])
    # ignore: the range was copied again; the target (over sn1) reads
    # as the source does
    same_content(t, s.expect)


if __name__ == "__main__":
    run([test_errors, test_blockdev_errors, test_full, test_top, test_none,
         test_small_granularity, test_write_blocking,
         test_pivot_then_write, test_cancel,
         test_manual_finalize, test_blockdev_full_overwrites,
         test_seed_two_step, test_shared_base, test_shared_base_blockdev,
         test_libvirt_blockcopy, test_kill9_mid_copy,
         test_source_error, test_target_error_report,
         test_target_error_stop])
