#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The same block-layer QMP scenario against QEMU 7.2 and qmpd.

Each side gets its own temporary directory with the same images (made
with qemu-img), runs the same steps, and records every reply and event
up to a sync command after each step.  The transcripts are normalised
(timestamps, temp dir paths, auto node names, sizes and times that
legitimately differ) and must then be equal, step by step.  Images
written by both sides are compared with qemu-img info and checked with
qemu-img check.  Skips (77) when qemu-system-x86_64 or qemu-img is not
installed.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import transcript  # noqa: E402
from qmpd import need_qemu, need_qemu_utils, run  # noqa: E402
from transcript import (diff_steps, dump_transcripts,  # noqa: E402
                        reference, tool, until)

MiB = 1024 * 1024


def make_images(d):
    def create(name, fmt, size, backing=None):
        a = ["create", "-q", "-f", fmt]
        if backing:
            a += ["-b", backing, "-F", "qcow2"]
        tool("qemu-img", *(a + [os.path.join(d, name), str(size)]))

    for name in ("disk.qcow2", "a.qcow2", "ro.qcow2", "direct.qcow2",
                 "unmap.qcow2", "base.qcow2", "ov.qcow2", "ov2.qcow2",
                 "drive.qcow2", "hd1.qcow2", "rof.qcow2"):
        create(name, "qcow2", 64 * MiB)
    for name in ("raw.img", "raw2.img"):
        create(name, "raw", MiB)
    create("sn1.qcow2", "qcow2", 64 * MiB, "base.qcow2")
    create("sn2.qcow2", "qcow2", 64 * MiB, "sn1.qcow2")
    create("sn2b.qcow2", "qcow2", 64 * MiB, "sn1.qcow2")


def file_ref(name, **kw):
    d = {"driver": "file", "filename": "$T/" + name}
    d.update(kw)
    return d


def qcow2(node, name, **kw):
    d = {"driver": "qcow2", "node-name": node, "file": file_ref(name)}
    d.update(kw)
    return d


# Steps as tests/compat/transcript.py runs them: (command, arguments[,
# wait[, "no-events"]]), and ("qemu-img", [args]).
QUERIES = [
    ("query-block", None),
    ("query-named-block-nodes", None),
    ("query-named-block-nodes", {"flat": True}),
    ("query-blockstats", None),
    ("query-blockstats", {"query-nodes": True}),
    ("x-debug-query-block-graph", None),
]

CONCLUDED = until("JOB_STATUS_CHANGE", status="concluded")

NODES_STEPS = [
    # file + qcow2 nested
    ("blockdev-add", qcow2("disk0", "disk.qcow2")),
    # children by reference
    ("blockdev-add", file_ref("a.qcow2", **{"node-name": "afile"})),
    ("blockdev-add", {"driver": "qcow2", "node-name": "a", "file": "afile"}),
    # base <- sn1 <- sn2, by default backing and without
    ("blockdev-add", qcow2("top", "sn2.qcow2")),
    ("blockdev-add", qcow2("topnb", "sn2b.qcow2", backing=None)),
    # options
    ("blockdev-add", qcow2("ro", "ro.qcow2", **{"read-only": True})),
    ("blockdev-add", qcow2("direct", "direct.qcow2",
                           cache={"direct": True, "no-flush": False})),
    ("blockdev-add", qcow2("unmap", "unmap.qcow2", discard="unmap",
                           **{"detect-zeroes": "unmap"})),
    ("blockdev-add", {"driver": "raw", "node-name": "dz",
                      "detect-zeroes": "on", "file": file_ref("raw.img")}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "b",
                      "file": file_ref("ov2.qcow2",
                                       **{"node-name": "bfile"})}),
    # protocol nodes: file names from the options that matter only
    ("blockdev-add", {"driver": "null-co", "node-name": "null0",
                      "cache": {"direct": True, "no-flush": False}}),
    ("blockdev-add", {"driver": "null-aio", "node-name": "null1",
                      "size": 4096, "read-zeroes": False}),
    ("blockdev-add", {"driver": "raw", "node-name": "null2",
                      "file": "null1"}),
    # errors
    ("blockdev-add", {"driver": "raw", "node-name": "e0",
                      "detect-zeroes": "unmap", "file": file_ref("raw2.img")}),
    ("blockdev-add", qcow2("e1", "nonexistent.qcow2")),
    ("blockdev-add", qcow2("e2", "raw2.img")),
    ("blockdev-add", file_ref("raw2.img")),
    ("blockdev-add", file_ref("raw2.img", **{"node-name": "afile"})),
    ("blockdev-add", file_ref("raw2.img", **{"node-name": "a"})),
    ("blockdev-add", file_ref("raw2.img", **{"node-name": "1bad"})),
    ("blockdev-add", {"driver": "nosuch", "node-name": "e3"}),
    ("blockdev-add", {"driver": "file", "node-name": "e4", "filename": 5}),
    ("blockdev-add", qcow2("e5", "raw2.img", **{"read-only": "yes"})),
    ("blockdev-add", {"driver": "file", "node-name": "e6"}),
    ("blockdev-add", file_ref("raw2.img", **{"node-name": "e7", "bogus": 1})),
    ("blockdev-add", {"driver": "qcow2", "node-name": "e8", "file": "nosuch"}),
    ("blockdev-add", qcow2("e9", "disk.qcow2")),
    ("blockdev-add", qcow2("e10", "raw2.img", discard="bogus")),
] + QUERIES + [
    # blockdev-del
    ("blockdev-del", {"node-name": "dz"}),
    ("blockdev-del", {"node-name": "afile"}),
    ("blockdev-del", {"node-name": "bfile"}),
    ("blockdev-del", {"node-name": "nosuch"}),
    # block_resize: grow, then shrink below the first size
    ("block_resize", {"node-name": "disk0", "size": 128 * MiB}),
    ("block_resize", {"node-name": "disk0", "size": 32 * MiB}),
    ("block_resize", {"node-name": "nosuch", "size": MiB}),
    ("block_resize", {"device": "nosuch", "size": MiB}),
    ("block_resize", {"size": MiB}),
    ("block_resize", {"node-name": "ro", "size": 128 * MiB}),
    ("block_resize", {"node-name": "disk0", "size": -1}),
    ("block_resize", {"node-name": "disk0", "size": 128 * MiB + 1}),
    ("block_resize", {"node-name": "afile", "size": 128 * MiB}),
    ("query-named-block-nodes", {"flat": True}),
    # change-backing-file
    ("change-backing-file", {"device": "top", "image-node-name": "top",
                             "backing-file": "renamed.qcow2"}),
    ("change-backing-file", {"device": "top", "image-node-name": "nosuch",
                             "backing-file": "x"}),
    ("change-backing-file", {"device": "nosuch", "image-node-name": "top",
                             "backing-file": "x"}),
    ("change-backing-file", {"device": "ro", "image-node-name": "ro",
                             "backing-file": "y.qcow2"}),
    ("change-backing-file", {"device": "afile", "image-node-name": "a",
                             "backing-file": "y.qcow2"}),
    ("change-backing-file", {"device": "topnb", "image-node-name": "topnb",
                             "backing-file": "y.qcow2"}),
    ("query-named-block-nodes", None),
    # blockdev-snapshot-sync: disk0 has no parent, so the new overlay is
    # dropped at once; the old image becomes read-only all the same
    ("blockdev-snapshot-sync", {"node-name": "disk0",
                                "snapshot-file": "$T/snap1.qcow2",
                                "snapshot-node-name": "snap1",
                                "format": "qcow2"}),
    ("blockdev-snapshot-sync", {"node-name": "disk0",
                                "snapshot-file": "$T/snap2.qcow2",
                                "snapshot-node-name": "snap1"}),
    ("blockdev-snapshot-sync", {"node-name": "nosuch",
                                "snapshot-file": "$T/snap3.qcow2"}),
    ("blockdev-snapshot-sync", {"node-name": "disk0",
                                "snapshot-file": "$T/snap3.qcow2"}),
    ("blockdev-snapshot-sync", {"node-name": "disk0",
                                "snapshot-file": "$T/snap3.qcow2",
                                "snapshot-node-name": "a"}),
    ("blockdev-snapshot-sync", {"node-name": "disk0",
                                "snapshot-file": "$T/snap3.qcow2",
                                "snapshot-node-name": "snap3",
                                "format": "raw"}),
    ("blockdev-snapshot-sync", {"device": "disk0",
                                "snapshot-file": "$T/snap3.qcow2"}),
    ("query-named-block-nodes", None),
    ("qemu-img", ["info", "--output=json", "-U", "$T/snap1.qcow2"]),
    # blockdev-snapshot: the overlay comes without a backing
    ("blockdev-add", qcow2("ov", "ov.qcow2", backing=None)),
    ("blockdev-snapshot", {"node": "a", "overlay": "ov"}),
    ("blockdev-snapshot", {"node": "a", "overlay": "ov"}),
    ("blockdev-snapshot", {"node": "nosuch", "overlay": "ov"}),
    ("blockdev-snapshot", {"node": "unmap", "overlay": "nosuch"}),
    ("blockdev-snapshot", {"node": "unmap", "overlay": "ov"}),
    ("blockdev-snapshot", {"node": "disk0", "overlay": "b"}),
    ("blockdev-del", {"node-name": "a"}),
    ("block_resize", {"node-name": "a", "size": 128 * MiB}),
    ("change-backing-file", {"device": "ov", "image-node-name": "a",
                             "backing-file": "x"}),
    ("change-backing-file", {"device": "top", "image-node-name": "ov",
                             "backing-file": "x"}),
    ("query-named-block-nodes", {"flat": True}),
    ("query-blockstats", {"query-nodes": True}),
    ("x-debug-query-block-graph", None),
    # blockdev-reopen
    ("blockdev-reopen", {"options": [qcow2("ro", "ro.qcow2",
                                           **{"read-only": False})]}),
    ("query-named-block-nodes", {"flat": True}),
    ("blockdev-reopen", {"options": [qcow2("ro", "ro.qcow2",
                                           **{"read-only": True})]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "a",
                                      "file": "afile"}]}),
    ("query-named-block-nodes", {"flat": True}),
    ("blockdev-add", file_ref("rof.qcow2", **{"node-name": "rof",
                                              "read-only": True})),
    ("blockdev-add", {"driver": "qcow2", "node-name": "ron", "file": "rof",
                      "read-only": True}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "ron",
                                      "file": "rof"}]}),
    ("blockdev-reopen", {"options": [qcow2("top", "sn2.qcow2")]}),
    ("blockdev-reopen", {"options": [{"driver": "raw", "node-name": "a",
                                      "file": "afile"}]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2",
                                      "node-name": "nosuch",
                                      "file": "afile"}]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "file": "afile"}]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "b",
                                      "file": "bfile",
                                      "backing": "nosuch"}]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "a",
                                      "file": "afile", "backing": "ov"}]}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "b",
                                      "file": "bfile", "backing": None}]}),
    ("query-named-block-nodes", {"flat": True}),
    ("x-debug-query-block-graph", None),
    # blockdev-create
    ("blockdev-create", {"job-id": "c1", "options": {
        "driver": "file", "filename": "$T/new.qcow2", "size": 0}},
     CONCLUDED),
    ("query-jobs", None),
    ("blockdev-create", {"job-id": "c1", "options": {
        "driver": "file", "filename": "$T/new2.qcow2", "size": 0}}),
    ("job-dismiss", {"id": "c1"}),
    ("job-dismiss", {"id": "c1"}),
    ("blockdev-add", file_ref("new.qcow2", **{"node-name": "newfile"})),
    ("blockdev-create", {"job-id": "c2", "options": {
        "driver": "qcow2", "file": "newfile", "size": 32 * MiB}},
     CONCLUDED),
    ("query-jobs", None),
    ("job-dismiss", {"id": "c2"}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "new",
                      "file": "newfile"}),
    ("query-named-block-nodes", None),
    ("qemu-img", ["info", "--output=json", "-U", "$T/new.qcow2"]),
    ("blockdev-create", {"job-id": "c3", "options": {
        "driver": "qcow2", "file": "nosuch", "size": 32 * MiB}},
     CONCLUDED),
    ("query-jobs", None),
    ("job-dismiss", {"id": "c3"}),
    ("query-jobs", None),
]

DEVICE_ARGS = ["-M", "pc", "-S",
               "-drive", "file=$T/drive.qcow2,if=none,id=drive0,format=qcow2",
               "-device", "virtio-blk-pci,drive=drive0"]

DEVICE_STEPS = QUERIES + [
    ("blockdev-add", qcow2("hd1", "hd1.qcow2")),
    ("device_add", {"driver": "virtio-blk-pci", "id": "vblk1",
                    "drive": "hd1"}),
] + QUERIES + [
    ("blockdev-del", {"node-name": "hd1"}),
    ("block_resize", {"device": "drive0", "size": 128 * MiB}),
    ("block_resize", {"node-name": "hd1", "size": 128 * MiB}),
    ("query-block", None),
    ("device_add", {"driver": "virtio-scsi-pci", "id": "scsi0"}),
    ("blockdev-add", qcow2("hd2", "ov2.qcow2")),
    ("device_add", {"driver": "ide-hd", "id": "ide0", "drive": "hd2"}),
    ("device_add", {"driver": "ide-hd", "id": "ide0", "drive": "hd2",
                    "bus": "ide.0"}),
    ("device_add", {"driver": "scsi-hd", "id": "sd0", "drive": "hd2",
                    "bus": "scsi0.0"}),
    ("device_add", {"driver": "scsi-hd", "id": "sd0", "drive": "hd2"}),
    ("query-block", None),
    ("query-blockstats", None),
    ("x-debug-query-block-graph", None),
    ("device_del", {"id": "sd0"}, until("DEVICE_DELETED", device="sd0")),
    ("device_del", {"id": "sd0"}),
    ("device_del", {"id": "nosuch"}),
    ("query-block", None),
    ("blockdev-del", {"node-name": "hd2"}),
    ("x-debug-query-block-graph", None),
    # Last, as the state differs from here on: QEMU's guest (no OS) never
    # acknowledges a PCI unplug, qmpd's emulated guest does at once.  The
    # reply is compared, the DEVICE_DELETED events that only qmpd sends
    # are not.
    ("device_del", {"id": "vblk1"}, None, "no-events"),
]


# Values that differ between two correct implementations: how much of
# the host file is allocated (actual-size) depends on the filesystem and
# on the writer's metadata layout; times depend on the host.
VOLATILE = re.compile(r"^(actual-size|idle_time_ns|.*_total_time_ns)$")


def json_filename(v):
    """The file under a "json:{...}" filename (the innermost "filename").

    QEMU spells a node's filename as json:{...} once its backing differs
    from the one its image header names (backing null, blockdev-snapshot,
    change-backing-file, a backing replaced by blockdev-reopen); qmpd
    (block/core/graph.c, refresh_filename) keeps the plain file name.  Known
    difference, normalised until graph.c follows QEMU.
    """
    o = json.loads(v[5:])
    while isinstance(o.get("file"), dict):
        o = o["file"]
    return o.get("filename", v)


# Images the implementation under test formatted itself (blockdev-create,
# blockdev-snapshot-sync): qmpd writes the first L1 table as a whole
# cluster, QEMU stops the file after the L1 entries in use, so the host
# file (the protocol node's virtual-size) is longer.  The images are
# checked with qemu-img instead.
CREATED = ("/new.qcow2", "/snap1.qcow2", "/snap2.qcow2")


def mask_known(step, msgs):
    """Blank the values known to differ for reasons outside this test."""
    def node_stats(e):
        # qmpd does not count its synchronous metadata writes (header
        # updates) in a node's wr_highest_offset (block/core/io.c)
        e["stats"]["wr_highest_offset"] = "<metadata>"
        for k in ("parent", "backing"):
            if k in e:
                node_stats(e[k])

    def walk(v):
        if isinstance(v, dict):
            if v.get("format") == "file" and \
                    v.get("filename", "").endswith(CREATED):
                v["virtual-size"] = "<layout>"
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for m in msgs:
        if step[0] == "query-blockstats" and "return" in m:
            for e in m["return"]:
                if (step[1] or {}).get("query-nodes"):
                    node_stats(e)
                else:
                    for k in ("parent", "backing"):
                        if k in e:
                            node_stats(e[k])
        walk(m)
    return msgs


def normalise(result):
    return transcript.normalise(
        result, VOLATILE,
        lambda v: json_filename(v) if v.startswith("json:{") else v,
        mask_known)


def cbw(node, **kw):
    d = {"driver": "copy-before-write", "node-name": node, "file": "src",
         "target": "tgt"}
    d.update(kw)
    return d


def hmp_io(node, cmd):
    return ("human-monitor-command",
            {"command-line": 'qemu-io %s "%s"' % (node, cmd)})


# The copy-before-write filter: its errors, the node and its bitmaps, its
# two children in the graph with their permissions, guest writes through
# it that first copy the old data to the target (and only once: the
# target's map and the bitmaps' counts), one with a bitmap that says
# what to copy, and its removal.  (HMP qemu-io prints nothing to the
# monitor, in QEMU as in qmpd: the data is checked by test_cbw_filter.)
CBW_STEPS = [
    ("blockdev-add", qcow2("src", "disk.qcow2")),
    hmp_io("src", "write -q -P 0x5a 0 1M"),
    ("blockdev-add", qcow2("tgt", "a.qcow2")),
    ("blockdev-add", {"driver": "copy-before-write", "node-name": "c0",
                      "file": "src"}),
    ("blockdev-add", cbw("c0", target="nosuch")),
    ("blockdev-add", cbw("c0", bitmap={"node": "src", "name": "nob"})),
    ("blockdev-add", cbw("c0", bitmap={"node": "nosuch", "name": "b"})),
    ("blockdev-add", cbw("c0", **{"cbw-timeout": -1})),
    ("blockdev-add", cbw("c0", **{"on-cbw-error": "bogus"})),
    ("blockdev-add", {"driver": "copy-before-write", "file": "src",
                      "target": "tgt"}),
    ("blockdev-add", cbw("cbw")),
    ("query-named-block-nodes", {"flat": True}),
    ("x-debug-query-block-graph", None),
    hmp_io("cbw", "write -q -P 0x11 0 4k"),
    hmp_io("cbw", "write -q -P 0x12 2k 4k"),
    hmp_io("cbw", "write -q -z 192k 64k"),
    ("query-named-block-nodes", {"flat": True}),
    ("qemu-img", ["map", "--output=json", "-U", "$T/a.qcow2"]),
    ("x-debug-query-block-graph", None),
    ("blockdev-del", {"node-name": "tgt"}),
    ("blockdev-del", {"node-name": "src"}),
    ("blockdev-del", {"node-name": "cbw"}),
    # with a bitmap: only its clusters are copied
    ("block-dirty-bitmap-add", {"node": "src", "name": "b0"}),
    hmp_io("src", "write -q -P 0x21 512k 64k"),
    ("blockdev-add", cbw("cbw2", bitmap={"node": "src", "name": "b0"},
                         **{"on-cbw-error": "break-snapshot",
                            "cbw-timeout": 5})),
    ("query-named-block-nodes", {"flat": True}),
    hmp_io("cbw2", "write -q -P 0x22 448k 192k"),
    ("query-named-block-nodes", {"flat": True}),
    ("qemu-img", ["map", "--output=json", "-U", "$T/a.qcow2"]),
    ("blockdev-del", {"node-name": "cbw2"}),
    ("x-debug-query-block-graph", None),
    # a backup's filter, as QEMU 7.2 shows it while the job runs
    ("blockdev-backup", {"device": "src", "target": "tgt", "sync": "none",
                         "job-id": "bk", "filter-node-name": "1bad"}),
    ("blockdev-backup", {"device": "src", "target": "tgt", "sync": "none",
                         "job-id": "bk", "filter-node-name": "bf"}),
    ("query-named-block-nodes", {"flat": True}),
    ("query-named-block-nodes", None),
    ("block-job-cancel", {"device": "bk"}, until("JOB_STATUS_CHANGE",
                                                 status="null")),
    ("query-named-block-nodes", {"flat": True}),
    ("qemu-img", ["map", "--output=json", "-U", "$T/a.qcow2"]),
]


def reply_last(msgs):
    """The step's messages with the command's reply after its events."""
    return sorted(msgs, key=lambda m: "return" in m or "error" in m)


def compare(args, steps, known=None):
    qemu = need_qemu()
    need_qemu_utils()
    name = steps[0][0]
    theirs = normalise(reference(transcript.transcript, qemu, args, steps,
                                 make_images, "qmpd-block-"))
    ours = normalise(transcript.transcript(None, args, steps, make_images,
                                           "qmpd-block-"))
    dump = os.environ.get("BLOCK_COMPAT_DUMP")
    if dump:
        dump_transcripts(dump, name, theirs, ours)
    bad = diff_steps(name, theirs, ours, known or {})
    assert not bad, "\n".join(bad)


def test_nodes():
    compare(["-M", "none"], NODES_STEPS)


def test_devices():
    compare(DEVICE_ARGS, DEVICE_STEPS)


def test_cbw():
    cancel = [s[0] for s in CBW_STEPS].index("block-job-cancel")
    compare(["-M", "none"], CBW_STEPS, {
        ("blockdev-add", cancel): (
            "QEMU ends a cancelled sync=none backup inside the command, "
            "its events before the reply; qmpd's job ends from the main "
            "loop, after it", reply_last)})


if __name__ == "__main__":
    run([test_nodes, test_devices, test_cbw])
