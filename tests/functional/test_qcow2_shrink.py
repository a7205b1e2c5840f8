#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Shrinking qcow2 images with block_resize, against QEMU 7.2.

Every scenario runs on qmpd and, when installed, on qemu-system-x86_64
(-M none, the same -drive line), each on its own copy of an image made
by qemu-img: block_resize (QMP or HMP) to a smaller size, then quit.
On each side the shrunk image must pass qemu-img check without leaks,
read as the original image cut at the new size (qemu-img compare
against a raw copy of the original, truncated), and its file must have
shrunk.  The two sides' replies, `qemu-img info` and `qemu-img check`
output (file names and dates aside), file lengths, maps and contents
must be the same, and the disk space in use (qemu-img info's disk size)
within 32 KiB (ext4's extent blocks).  Where QEMU is missing, the qmpd
half still runs and the lengths measured on QEMU 7.2 are asserted.
Growing again over a longer backing file reads zeroes, as in QEMU.  A
shrink stopped after any of its writes leaves a consistent image.
Skips (77) without qemu-img.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import need_qemu_utils, qemu_binary, run  # noqa: E402
from images import (check_clean, img, qcow2_node, qemu_io,  # noqa: E402
                    same_content, with_dir)
from reference import start  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


def sides():
    return [True, False] if qemu_binary() else [False]


def facts(path):
    """What qemu-img says of @path, without what differs by name."""
    info = json.loads(img("info", "--output=json", path))
    for k in ("filename", "actual-size"):
        info.pop(k, None)
    if "backing-filename" in info:
        info["backing-filename"] = os.path.basename(info["backing-filename"])
        info.pop("full-backing-filename", None)
    p = subprocess.run(["qemu-img", "check", path], capture_output=True,
                       text=True, timeout=60)
    check = p.stdout.replace(path, "IMG")
    return {"info": info, "check": (p.returncode, check),
            "map": json.loads(img("map", "--output=json", path)),
            "length": os.path.getsize(path),
            "bytes": os.stat(path).st_blocks * 512}


def scenario(d, tag, make, steps, drive="", slack=32 * KiB):
    """@make(dir) builds the image (returns its path) on each side;
    @steps: (kind, arg) with kind "qmp" (block_resize arguments) or
    "hmp" (a command line), run in order.  Returns the qmpd side's
    (replies, facts, path, original raw copy)."""
    out = {}
    for qemu in sides():
        sub = os.path.join(d, "%s-%s" % (tag, "qemu" if qemu else "qmpd"))
        os.mkdir(sub)
        p = make(sub)
        raw = os.path.join(sub, "orig.raw")
        img("convert", "-O", "raw", p, raw)
        q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2%s"
                      % (p, drive)], qemu)
        replies = []
        for kind, arg in steps:
            if kind == "qmp":
                r = c.execute("block_resize", arg)
            else:
                r = c.execute("human-monitor-command",
                              {"command-line": arg})
            r.pop("id", None)
            replies.append(r)
        c.execute("quit")
        assert q.wait(30) == 0, q.stderr_text()
        q.close()
        out[qemu] = (replies, facts(p), p, raw)
    if True in out:
        assert out[True][0] == out[False][0], (out[True][0], out[False][0])
        for k in ("info", "check", "map", "length"):
            assert out[True][1][k] == out[False][1][k], \
                (k, out[True][1][k], out[False][1][k])
        assert abs(out[True][1]["bytes"] - out[False][1]["bytes"]) \
            <= slack, (out[True][1]["bytes"], out[False][1]["bytes"])
        p = subprocess.run(["qemu-img", "compare", "-s", out[True][2],
                            out[False][2]], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    return out[False]


def kept_range(path, raw, size):
    """@path reads as the original (@raw) cut at @size."""
    with open(raw, "r+b") as f:
        f.truncate(size)
    same_content(path, raw)
    check_clean(path)


def data_image(create=(), size="64M", cmds=("write -P 0x11 0 40M",
                                             "write -P 0x22 40M 24M")):
    def make(d):
        p = os.path.join(d, "t.qcow2")
        img("create", "-q", "-f", "qcow2", *create, p, size)
        qemu_io(p, *cmds)
        return p
    return make


@with_dir("qmpd-shrink-")
def test_data_on_both_sides(d):
    """64 MiB of data, cut at 20 MiB: the file ends after the last
    cluster still in use (21299200 bytes on QEMU 7.2)."""
    replies, f, p, raw = scenario(
        d, "both", data_image(),
        [("qmp", {"device": "d0", "size": 20 * MiB})])
    assert replies == [{"return": {}}], replies
    assert f["info"]["virtual-size"] == 20 * MiB, f["info"]
    assert f["length"] == 21299200, f["length"]
    assert f["length"] < os.path.getsize(raw)
    kept_range(p, raw, 20 * MiB)


@with_dir("qmpd-shrink-")
def test_unaligned_end_and_hmp(d):
    """A new end inside a cluster keeps that cluster (its tail too);
    HMP's block_resize takes MiB and may give a fraction; a second
    shrink and a grow back follow."""
    new = 20 * MiB + 4 * KiB
    replies, f, p, raw = scenario(
        d, "unaligned", data_image(),
        [("qmp", {"device": "d0", "size": new}),
         ("hmp", "block_resize d0 12"),
         ("hmp", "block_resize d0 16")])
    assert replies == [{"return": {}}, {"return": ""},
                       {"return": ""}], replies
    assert f["info"]["virtual-size"] == 16 * MiB, f["info"]
    check_clean(p)
    with open(raw, "r+b") as fh:
        fh.truncate(12 * MiB)
        fh.truncate(16 * MiB)
    # 12..16 MiB: unallocated after the shrink, zeroes after the grow
    same_content(p, raw)


@with_dir("qmpd-shrink-")
def test_small_clusters(d):
    """4 KiB clusters: 2 MiB per L2 table, 8 MiB per refcount block; a
    cut at 3 MiB frees L2 tables and refcount blocks too."""
    replies, f, p, raw = scenario(
        d, "small", data_image(create=("-o", "cluster_size=4096"),
                               size="64M",
                               cmds=("write -P 0x33 0 64M",)),
        [("qmp", {"device": "d0", "size": 3 * MiB})])
    assert replies == [{"return": {}}], replies
    kept_range(p, raw, 3 * MiB)
    assert f["length"] < 4 * MiB, f["length"]


@with_dir("qmpd-shrink-")
def test_sparse(d):
    """An empty image and a sparse 3 GiB one (512 MiB per L2 table):
    QEMU's discard gives the L2 ranges it crosses a table where there
    was none, and keeps the one the new end falls in."""
    replies, f, p, raw = scenario(
        d, "empty", data_image(cmds=()),
        [("qmp", {"device": "d0", "size": 128 * MiB}),
         ("qmp", {"device": "d0", "size": 32 * MiB})])
    assert replies == [{"return": {}}] * 2, replies
    assert f["length"] == 327680, f["length"]
    kept_range(p, raw, 32 * MiB)
    replies, f, p, raw = scenario(
        d, "sparse", data_image(size="3G", cmds=(
            "write -P 0x44 0 1M", "write -P 0x55 700M 1M",
            "write -P 0x66 2900M 2M")),
        [("qmp", {"device": "d0", "size": 1600 * MiB})])
    assert replies == [{"return": {}}], replies
    kept_range(p, raw, 1600 * MiB)


@with_dir("qmpd-shrink-")
def test_v2_image(d):
    """compat=0.10 without snapshots shrinks as v3 does."""
    replies, f, p, raw = scenario(
        d, "v2", data_image(create=("-o", "compat=0.10")),
        [("qmp", {"device": "d0", "size": 8 * MiB})])
    assert replies == [{"return": {}}], replies
    assert f["info"]["format-specific"]["data"]["compat"] == "0.10"
    kept_range(p, raw, 8 * MiB)


@with_dir("qmpd-shrink-")
def test_backing_file(d):
    """The top's clusters past the end go, whatever the backing holds;
    the kept range still reads through to the backing file."""

    replies, f, p, raw = scenario(
        d, "backing", overlay("64M", cmds=["write -P 0x22 10M 30M"]),
        [("qmp", {"device": "d0", "size": 16 * MiB})])
    assert replies == [{"return": {}}], replies
    assert f["info"]["backing-filename"] == "base.qcow2", f["info"]
    kept_range(p, raw, 16 * MiB)


def overlay(size, create=(), cmds=()):
    """A qcow2 of @size over a 64 MiB base holding 0x11 everywhere."""
    def make(d):
        base = os.path.join(d, "base.qcow2")
        img("create", "-q", "-f", "qcow2", base, "64M")
        qemu_io(base, "write -P 0x11 0 64M")
        p = os.path.join(d, "t.qcow2")
        img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F",
            "qcow2", *create, p, size)
        qemu_io(p, *cmds)
        return p
    return make


@with_dir("qmpd-shrink-")
def test_grow_over_longer_backing(d):
    """Grown again (or grown at all) over a longer backing file, the new
    area reads as zeroes, as QEMU 7.2 makes it: zero clusters, and the
    cluster at an old end that is not cluster aligned written as data;
    a v2 image cannot (no zero clusters) and keeps its size."""
    replies, f, p, raw = scenario(
        d, "regrow", overlay("64M", cmds=["write -P 0x22 10M 30M"]),
        [("qmp", {"device": "d0", "size": 16 * MiB}),
         ("qmp", {"device": "d0", "size": 32 * MiB})])
    assert replies == [{"return": {}}] * 2, replies
    qemu_io(p, "read -P 0x11 0 10M", "read -P 0x22 10M 6M",
            "read -P 0 16M 16M")
    replies, f, p, raw = scenario(
        d, "head", overlay("1000K"),
        [("qmp", {"device": "d0", "size": 2 * MiB})])
    assert replies == [{"return": {}}], replies
    assert f["length"] == 393216, f["length"]
    qemu_io(p, "read -P 0x11 0 1000K", "read -P 0 1000K 1048K")
    replies, f, p, raw = scenario(
        d, "v2", overlay("16M", create=("-o", "compat=0.10")),
        [("qmp", {"device": "d0", "size": 32 * MiB})])
    assert replies == [{"error": {
        "class": "GenericError", "desc": "Failed to zero out new clusters: "
        "Operation not supported"}}], replies
    assert f["info"]["virtual-size"] == 16 * MiB, f["info"]


@with_dir("qmpd-shrink-")
def test_persistent_bitmap(d):
    """QEMU 7.2 shrinks an image with a persistent bitmap (the bitmap
    follows the new size); refusals stay what they were: a size that is
    no multiple of 512 and a negative one change nothing."""

    def make(d):
        p = data_image()(d)
        img("bitmap", "--add", p, "bm0")
        return p

    # qmpd stores the bitmap (its table, the directory's cluster) apart
    # from QEMU by up to two clusters of disk space (116 KiB measured)
    steps = [("qmp", {"device": "d0", "size": 20 * MiB + 100}),
             ("qmp", {"device": "d0", "size": -1}),
             ("qmp", {"device": "d0", "size": 20 * MiB}),
             ("hmp", "block_resize d0 8")]
    replies, f, p, raw = scenario(d, "bitmap", make, steps,
                                  slack=2 * 64 * KiB)
    assert replies[0]["error"]["desc"] == \
        "The new size must be a multiple of 512", replies
    assert replies[2:] == [{"return": {}}, {"return": ""}], replies
    bms = f["info"]["format-specific"]["data"]["bitmaps"]
    assert [b["name"] for b in bms] == ["bm0"], bms
    kept_range(p, raw, 8 * MiB)


def crash_after(n):
    """blkdebug rules under which the file takes @n writes, and every
    write after them fails, as if the process had died there (states
    count the writes: pwritev is raised by each)."""
    return {"set-state": [{"event": "pwritev", "state": i, "new_state": i + 1}
                          for i in range(1, n + 1)],
            "inject-error": [{"event": "pwritev", "state": n + 1,
                              "iotype": "write", "errno": 5,
                              "once": False}]}


@with_dir("qmpd-shrink-")
def test_crash_at_each_write(d):
    """A shrink stopped after any of its writes (every later write
    failing, as after a crash there) leaves an image that is consistent
    (leaks allowed), has its old size or the new one, and holds the kept
    range's data; stopped after none, the shrink succeeds and leaves no
    leak.  4 KiB clusters: L2 tables and refcount blocks go too."""
    n = 0
    while True:
        p = data_image(create=("-o", "cluster_size=4096"), size="16M",
                       cmds=("write -P 0x11 0 12M",
                             "write -P 0x22 12M 4M"))(d)
        q, c = start([], False)
        node = qcow2_node("n0", p)
        node["file"] = dict(crash_after(n), driver="blkdebug",
                            image=node["file"])
        c.cmd("blockdev-add", **node)
        r = c.execute("block_resize", {"node-name": "n0", "size": 3 * MiB})
        c.execute("quit")
        q.wait(30)
        q.close()
        check_clean(p, leaks="error" in r)
        size = json.loads(img("info", "--output=json", p))["virtual-size"]
        assert size in (3 * MiB, 16 * MiB), (n, size)
        qemu_io(p, "read -P 0x11 0 3M")
        os.unlink(p)
        if "return" in r:
            break
        assert n < 200, r
        n += 1
    # the shrink wrote something to stop after
    assert n >= 5, n


if __name__ == "__main__":
    run([test_data_on_both_sides,
         test_unaligned_end_and_hmp,
         test_small_clusters,
         test_sparse,
         test_v2_image,
         test_backing_file,
         test_grow_over_longer_backing,
         test_persistent_bitmap,
         test_crash_at_each_write],
        needs=[need_qemu_utils])
