#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The filter nodes jobs put into the graph, as QEMU 7.2's: mirror_top
above a mirror's source and an active commit's top, commit_top above an
intermediate commit's top, copy-on-read above a stream's top.

Each test starts qmpd on the chain base <- mid <- top (4 MiB, a pattern
in each layer) behind drive0 and checks, while a job runs (held back by
speed 1), that the filter is a node of the graph: named by
filter-node-name (then query-block shows it, as QEMU shows a node the
user named) or auto-named #blockN and implicit (query-block looks
through it); that the guest's requests go through it; and that it is
gone once the job completes, is cancelled or fails.  Bad filter names
get QEMU's errors and leave the graph as it was.  Skips (77) without
qemu-img.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import check_images, img, need_tools, qemu_io  # noqa: E402
from test_mirror import (hmp_io, inserted, names,  # noqa: E402
                         until_event, until_status)

KiB = 1024
MiB = 1024 * KiB
G = "GenericError"


class Setup:
    def __init__(self):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="qmpd-filters-")
        self.paths = {n: os.path.join(self.dir, n + ".qcow2")
                      for n in ("base", "mid", "top", "tgt")}
        img("create", "-q", "-f", "qcow2", self.paths["base"], "4M")
        img("create", "-q", "-f", "qcow2", self.paths["tgt"], "4M")
        img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F",
            "qcow2", self.paths["mid"])
        img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F",
            "qcow2", self.paths["top"])
        for i, layer in enumerate(("base", "mid", "top")):
            qemu_io(self.paths[layer],
                    "write -P %d %dM 1M" % (0x11 * (i + 1), i))

    def start(self):
        return Qmpd(["-M", "none", "-drive",
                     "file=%s,if=none,id=drive0,format=qcow2,node-name=top,"
                     "backing.node-name=mid,backing.backing.node-name=base"
                     % self.paths["top"],
                     "-blockdev", "driver=file,node-name=tgt-file,"
                     "filename=" + self.paths["tgt"],
                     "-blockdev", "driver=qcow2,node-name=tgt,file=tgt-file"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def in_setup(*fns):
    """Tests that each get a fresh Setup, removed afterwards."""
    def one(fn):
        def t():
            with Setup() as s:
                fn(s)
        t.__name__ = fn.__name__
        return t
    return [one(fn) for fn in fns]


def nodes(c):
    return {n["node-name"]: n for n in
            c.cmd("query-named-block-nodes", flat=True)}


def filters(c):
    """The job filters of the graph: {name: driver}."""
    return {k: n["drv"] for k, n in nodes(c).items()
            if n["drv"] in ("mirror_top", "commit_top", "copy-on-read")}


def one_auto_filter(c, drv):
    f = filters(c)
    assert len(f) == 1 and list(f.values()) == [drv], f
    name = list(f)[0]
    assert name.startswith("#block"), name
    return name


def complete_unfiltered(c, job, root):
    """Let mirror-like @job run at full speed to READY and complete it:
    its filter is gone and drive0's root is @root."""
    c.cmd("block-job-set-speed", device=job, speed=0)
    until_event(c, "BLOCK_JOB_READY")
    c.cmd("block-job-complete", device=job)
    until_status(c, job, "null")
    assert filters(c) == {}
    assert inserted(c)["node-name"] == root


def chain(info):
    """The formats of an image info and its backing images."""
    out = []
    while info:
        out.append(info["format"])
        info = info.get("backing-image")
    return out


def test_mirror_named(s):
    """filter-node-name names mirror_top; query-block shows it (not
    implicit); the guest writes through it during the job; it is gone
    once the job completes, and the target has the guest's writes."""
    with s.start() as q:
        c = q.connect()
        c.cmd("blockdev-mirror", device="drive0", target="tgt", sync="full",
              speed=1, **{"job-id": "m", "filter-node-name": "mt"})
        assert filters(c) == {"mt": "mirror_top"}
        ins = inserted(c)
        assert (ins["node-name"], ins["drv"]) == ("mt", "mirror_top"), ins
        assert chain(ins["image"]) == [
            "mirror_top", "qcow2", "qcow2", "qcow2"], ins
        n = c.cmd("query-named-block-nodes")
        mt = [x for x in n if x["node-name"] == "mt"][0]
        assert mt["backing_file_depth"] == 3 and not mt["ro"], mt
        # a second job on the device: its root is the job's now
        assert c.error("blockdev-mirror", device="drive0", target="tgt",
                       sync="full") == (G, "Need a root block node")
        hmp_io(c, "write -P 0x55 3M 64k")
        hmp_io(c, "read -P 0x55 3M 64k")
        complete_unfiltered(c, "m", "tgt")
        hmp_io(c, "read -P 0x55 3M 64k")
        hmp_io(c, "read -P 0x22 1M 64k")
    qemu_io(s.paths["tgt"], "read -P 0x55 3M 64k", "read -P 0x11 0 1M",
            "read -P 0x22 1M 1M", "read -P 0x33 2M 1M")
    check_images(s.paths.values())


def test_mirror_implicit_cancel(s):
    """Without a name mirror_top is #blockN and implicit: query-block
    shows the source as before; a cancel takes the filter out."""
    with s.start() as q:
        c = q.connect()
        before = inserted(c)
        c.cmd("blockdev-mirror", device="drive0", target="tgt", sync="full",
              speed=1)
        name = one_auto_filter(c, "mirror_top")
        assert inserted(c) == before
        # the job is named after the device, whose root is the filter
        assert [j["device"] for j in c.cmd("query-block-jobs")] == ["drive0"]
        n = nodes(c)
        assert n[name]["image"]["format"] == "mirror_top", n[name]
        assert n[name]["file"] == n["top"]["file"]
        # the device's root is the job's node: busy, as QEMU's
        assert c.error("block_resize", device="drive0", size=8 * MiB) == (
            G, "Device 'drive0' is in use")
        assert c.error("blockdev-snapshot-sync", device="drive0",
                       **{"snapshot-file": s.paths["tgt"] + ".snap"}) == (
            G, "Node 'drive0' is busy: block device is in use by block "
            "job: mirror")
        assert c.cmd("query-blockstats")[0]["node-name"] == "top"
        hmp_io(c, "write -P 0x66 0 4k")
        c.cmd("block-job-cancel", device="drive0")
        assert names(until_status(c, "drive0", "null"))[-3:] == [
            "BLOCK_JOB_CANCELLED", "concluded", "null"]
        assert filters(c) == {}
        assert inserted(c)["node-name"] == "top"
        hmp_io(c, "read -P 0x66 0 4k")
    check_images(s.paths.values())


def test_mirror_failure(s):
    """A job that fails (a target of another size) takes its filter
    out too."""
    img("resize", "-q", "-f", "qcow2", s.paths["tgt"], "8M")
    with s.start() as q:
        c = q.connect()
        c.cmd("blockdev-mirror", device="drive0", target="tgt", sync="full",
              **{"filter-node-name": "mt"})
        evs = until_status(c, "drive0", "null")
        done = [e for e in evs if e["event"] == "BLOCK_JOB_COMPLETED"]
        assert done[0]["data"]["error"] == (
            "Source and target image have different sizes"), done
        assert filters(c) == {}
        assert inserted(c)["node-name"] == "top"


def test_commit_filters(s):
    """An intermediate commit puts a read-only commit_top above top's
    backing (implicit: query-block's chain does not show it); an active
    commit a mirror_top above top; both leave when the job ends."""
    with s.start() as q:
        c = q.connect()
        c.cmd("block-commit", device="drive0", speed=1,
              **{"top-node": "mid", "job-id": "c"})
        name = one_auto_filter(c, "commit_top")
        n = c.cmd("query-named-block-nodes")
        ct = [x for x in n if x["node-name"] == name][0]
        assert ct["ro"] and chain(ct["image"]) == [
            "commit_top", "qcow2", "qcow2"], ct
        top = [x for x in n if x["node-name"] == "top"][0]
        assert chain(top["image"]) == [
            "qcow2", "commit_top", "qcow2", "qcow2"], top
        ins = inserted(c)
        assert ins["backing_file_depth"] == 2 and chain(ins["image"]) == [
            "qcow2", "qcow2", "qcow2"], ins
        hmp_io(c, "read -P 0x22 1M 64k")
        c.cmd("block-job-set-speed", device="c", speed=0)
        until_status(c, "c", "null")
        assert filters(c) == {}
        assert "mid" not in nodes(c)

        c.cmd("block-commit", device="drive0", speed=1,
              **{"job-id": "a", "filter-node-name": "at"})
        assert filters(c) == {"at": "mirror_top"}
        assert inserted(c)["node-name"] == "at"
        hmp_io(c, "write -P 0x77 3M 64k")
        complete_unfiltered(c, "a", "base")
        hmp_io(c, "read -P 0x77 3M 64k")
        hmp_io(c, "read -P 0x33 2M 64k")
    check_images([s.paths["base"]])


def test_stream_filter(s):
    """block-stream puts a copy-on-read node above top: named, query-block
    shows it; a cancel takes it out, and top is read-write as before."""
    with s.start() as q:
        c = q.connect()
        c.cmd("block-stream", device="drive0", speed=1,
              **{"job-id": "s", "filter-node-name": "cor"})
        assert filters(c) == {"cor": "copy-on-read"}
        ins = inserted(c)
        assert (ins["node-name"], ins["drv"]) == ("cor", "copy-on-read")
        hmp_io(c, "write -P 0x44 3M 4k")
        hmp_io(c, "read -P 0x11 0 64k")
        c.cmd("block-job-cancel", device="s")
        until_status(c, "s", "null")
        assert filters(c) == {}
        assert inserted(c)["node-name"] == "top"

        c.cmd("block-stream", device="drive0", **{"job-id": "t"})
        until_status(c, "t", "null")
        assert filters(c) == {}
        ins = inserted(c)
        assert ins["node-name"] == "top" and "backing-image" not in \
            ins["image"], ins
    qemu_io(s.paths["top"], "read -P 0x11 0 1M", "read -P 0x22 1M 1M",
            "read -P 0x44 3M 4k")
    check_images([s.paths["top"]])


def test_bad_names(s):
    """QEMU's errors for a bad or taken filter-node-name, and nothing
    changes: no filter, no job (an intermediate commit creates its job
    first, as QEMU's: created, null)."""
    with s.start() as q:
        c = q.connect()
        before = sorted(nodes(c))
        cases = [("1bad", "Invalid node-name: '1bad'"),
                 ("drive0", "node-name=drive0 is conflicting with a device "
                  "id"),
                 ("mid", "Duplicate nodes with node-name='mid'"),
                 ("x" * 130, "Node name too long")]
        for name, msg in cases:
            f = {"filter-node-name": name}
            assert c.error("blockdev-mirror", device="drive0", target="tgt",
                           sync="full", **dict(f, **{"job-id": "1x"})) == (
                G, msg)
            assert c.error("block-commit", device="drive0", **f) == (G, msg)
            assert c.events == []
            assert c.error("block-commit", device="drive0", **dict(
                f, **{"top-node": "mid"})) == (G, msg)
            assert names(until_status(c, "drive0", "null")) == [
                "created", "null"]
            assert c.error("block-stream", device="drive0", **f) == (
                G, "Could not create node: " + msg)
            assert c.events == []
        assert sorted(nodes(c)) == before
        assert c.cmd("query-jobs") == []
        assert inserted(c)["node-name"] == "top"


if __name__ == "__main__":
    run(in_setup(test_mirror_named, test_mirror_implicit_cancel,
                 test_mirror_failure, test_commit_filters, test_stream_filter,
                 test_bad_names))
