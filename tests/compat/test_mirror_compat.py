#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""drive-mirror and blockdev-mirror against QEMU 7.2 and qmpd.

The same harness as test_jobs_compat.py (whose step runner, waits and
normalisation this file imports): every scenario starts a fresh process
(QEMU with -M none, or qmpd) on a fresh copy of the 8 MiB qcow2 chain
base <- sn1 <- sn2 plus the targets the scenario needs, made with
qemu-img and qemu-io; runs the same steps, recording every reply and
event up to a sync command after each step; quits; and examines every
image with qemu-img (info --backing-chain, check, map, a checksum of
the guest-visible data).  Both transcripts are normalised (timestamps,
the temp dir, auto node names, allocated host bytes) and must be equal
step by step.

Guest writes go through HMP qemu-io (human-monitor-command), and only
where their effect on the transcript does not depend on timing: before
a job starts, once it is READY (the job copies them before it
completes, and nothing queries the job in between), and after the
switch.  A step that starts a job waits for the event that ends its
phase (BLOCK_JOB_READY, or the job's last JOB_STATUS_CHANGE).

Set MIRROR_COMPAT_QEMU_ONLY=1 to compare QEMU with itself (are the
scenarios deterministic?), MIRROR_COMPAT_DUMP=prefix to write both
normalised transcripts for diff(1).  Skips (77) when
qemu-system-x86_64, qemu-img or qemu-io is not installed.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import transcript  # noqa: E402
from qmpd import need_qemu, need_qemu_utils, run  # noqa: E402
from test_jobs_compat import (BLOCKDEV, CHAIN, DRIVE,  # noqa: E402
                              make_images, normalise)
from transcript import (diff_steps, done, dump_transcripts,  # noqa: E402
                        moved, reference, status, tool, until)

MiB = 1024 * 1024


def make_targets(d):
    """The chain (test_jobs_compat's: 8 MiB, each layer with data of its
    own; other.qcow2 is a standalone 4 MiB image) and the targets:
    active.qcow2 backed by base (the seed's), tgt.qcow2 standalone,
    small.qcow2 half the size of the source."""
    make_images(d)
    tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
         "-F", "qcow2", os.path.join(d, "active.qcow2"), str(8 * MiB))
    tool("qemu-img", "create", "-q", "-f", "qcow2",
         os.path.join(d, "tgt.qcow2"), str(8 * MiB))
    tool("qemu-img", "create", "-q", "-f", "qcow2",
         os.path.join(d, "small.qcow2"), str(4 * MiB))


def hmp(cmd, device="drive0"):
    """A guest request through HMP qemu-io, as a step.  write/read are
    synchronous: the reply comes after the request completed."""
    return ("human-monitor-command",
            {"command-line": 'qemu-io %s "%s"' % (device, cmd)})


def ready(job):
    return until("BLOCK_JOB_READY", device=job)


BASE_IMAGES = ("base.qcow2", "sn1.qcow2", "sn2.qcow2")

# name -> (command line, steps, images examined after the run)
SCENARIOS = {}

# The seed's live block copy the two-step way QEMU 7.2 needs: stream
# sn1 into sn2 (base stays below), then a top mirror onto active, made
# beforehand with qemu-img backed by base; at READY the guest writes,
# job-complete switches the drive to active, whose backing (opened from
# its header, mode existing) is base: base <- active in query-block and
# in qemu-img info --backing-chain.
SCENARIOS["seed_two_step"] = (DRIVE, [
    hmp("write -q -P 0x41 1M 64k"),
    ("block-stream", {"device": "drive0", "job-id": "s",
                      "base-node": "base"}, done("s")),
    ("query-block", None),
    ("drive-mirror", {"device": "drive0", "job-id": "m",
                      "target": "$T/active.qcow2", "sync": "top",
                      "mode": "existing"}, ready("m")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    hmp("write -q -P 0x42 3M 64k"),
    hmp("write -q -P 0x43 7M 4k"),
    ("job-complete", {"id": "m"}, done("m")),
] + CHAIN + [
    hmp("write -q -P 0x44 6M 64k"),
    hmp("read -q -P 0x43 7M 4k"),
], BASE_IMAGES + ("active.qcow2",))

# sync full to a new image (mode absolute-paths, format given), writes
# after READY, block-job-complete through the default job id.
SCENARIOS["full_new_image"] = (DRIVE, [
    hmp("write -q -P 0x41 1M 64k"),
    ("drive-mirror", {"device": "drive0", "target": "$T/full.qcow2",
                      "sync": "full", "mode": "absolute-paths",
                      "format": "qcow2"}, ready("drive0")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    # the switch is asynchronous in both; whether the query below still
    # sees the job would depend on timing, so the step waits for its end
    ("block-job-complete", {"device": "drive0"}, done("drive0")),
    ("query-block-jobs", None),
] + CHAIN, BASE_IMAGES + ("full.qcow2",))

SCENARIOS["full_writes_after_ready"] = (DRIVE, [
    ("drive-mirror", {"device": "drive0", "job-id": "m",
                      "target": "$T/full.qcow2", "sync": "full",
                      "node-name": "copy"}, ready("m")),
    hmp("write -q -P 0x42 4M 128k"),
    hmp("write -q -P 0x43 5M 512"),
    hmp("write -q -z 0 64k"),
    ("block-job-complete", {"device": "m"}, done("m")),
] + CHAIN, BASE_IMAGES + ("full.qcow2",))

# copy-mode write-blocking: once READY a guest write completes only when
# the target has it too, so the job's counters are settled when the
# write returns and can be queried without waiting.
SCENARIOS["write_blocking"] = (DRIVE, [
    ("drive-mirror", {"device": "drive0", "job-id": "w",
                      "target": "$T/full.qcow2", "sync": "full",
                      "copy-mode": "write-blocking"}, ready("w")),
    hmp("write -q -P 0x42 4M 128k"),
    hmp("write -q -P 0x43 5M 512"),
    ("query-block-jobs", None),
    hmp("write -q -P 0x44 7M 64k"),
    ("query-jobs", None),
    ("block-job-complete", {"device": "w"}, done("w")),
] + CHAIN, BASE_IMAGES + ("full.qcow2",))

# sync top to a new image: created backed by sn1 (by its file name).
SCENARIOS["top_new_image"] = (DRIVE, [
    ("drive-mirror", {"device": "drive0", "job-id": "m",
                      "target": "$T/top.qcow2", "sync": "top"},
     ready("m")),
    ("query-block-jobs", None),
    hmp("write -q -P 0x42 2M 64k"),
    ("job-complete", {"id": "m"}, done("m")),
] + CHAIN, BASE_IMAGES + ("top.qcow2",))

# blockdev-mirror to a blockdev-add'ed node, manual dismiss.
SCENARIOS["blockdev_mirror"] = (BLOCKDEV, [
    ("blockdev-add", {"driver": "qcow2", "node-name": "tgt",
                      "file": {"driver": "file",
                               "filename": "$T/tgt.qcow2"}}),
    ("blockdev-mirror", {"device": "sn2", "job-id": "b", "target": "tgt",
                         "sync": "full", "auto-dismiss": False},
     ready("b")),
    ("query-block-jobs", None),
    ("query-named-block-nodes", None),
    ("blockdev-del", {"node-name": "tgt"}),
    ("job-complete", {"id": "b"}, status("b", "concluded")),
    ("query-jobs", None),
    ("job-dismiss", {"id": "b"}, done("b")),
    ("blockdev-del", {"node-name": "sn2"}),
] + CHAIN, BASE_IMAGES + ("tgt.qcow2",))

# blockdev-mirror sync top onto a node added with base as its backing:
# the seed's copy onto a target the caller built.
SCENARIOS["blockdev_mirror_top"] = (BLOCKDEV, [
    ("block-stream", {"device": "sn2", "job-id": "s",
                      "base-node": "base"}, done("s")),
    ("blockdev-add", {"driver": "qcow2", "node-name": "active",
                      "backing": "base",
                      "file": {"driver": "file",
                               "filename": "$T/active.qcow2"}}),
    ("blockdev-mirror", {"device": "sn2", "job-id": "b",
                         "target": "active", "sync": "top"}, ready("b")),
    ("query-block-jobs", None),
    ("job-complete", {"id": "b"}, done("b")),
] + CHAIN, BASE_IMAGES + ("active.qcow2",))

# Cancel: before READY (slowed to one chunk) cancels; after READY a soft
# cancel completes without the switch; a forced one cancels.  A job
# slowed to speed=1 copies one iteration before its token bucket stops
# it; how much that is depends on the implementation (QEMU copies the
# first contiguous dirty run, up to buf-size), so buf-size is one
# granule (64 KiB) here and in "errors": one chunk on both sides, and
# the offsets are compared as they are.
SCENARIOS["cancel"] = (DRIVE, [
    ("drive-mirror", {"device": "drive0", "job-id": "k0",
                      "target": "$T/c0.qcow2", "sync": "full",
                      "speed": 1, "buf-size": 65536}),
    ("query-block-jobs", None, moved("k0")),
    ("block-job-cancel", {"device": "k0"}, done("k0")),
    ("drive-mirror", {"device": "drive0", "job-id": "k1",
                      "target": "$T/c1.qcow2", "sync": "full"},
     ready("k1")),
    hmp("write -q -P 0x45 2M 64k"),
    ("block-job-cancel", {"device": "k1"}, done("k1")),
] + CHAIN + [
    ("drive-mirror", {"device": "drive0", "job-id": "k2",
                      "target": "$T/c2.qcow2", "sync": "full",
                      "auto-dismiss": False}, ready("k2")),
    ("block-job-cancel", {"device": "k2", "force": True},
     status("k2", "concluded")),
    ("query-jobs", None),
    ("job-dismiss", {"id": "k2"}, done("k2")),
    hmp("write -q -P 0x46 3M 64k"),
] + CHAIN, BASE_IMAGES + ("c1.qcow2", "c2.qcow2"))

# sync none: nothing to copy first, READY at once; only the guest's
# writes reach the target, which is backed by the source.
SCENARIOS["sync_none"] = (DRIVE, [
    ("drive-mirror", {"device": "drive0", "job-id": "n",
                      "target": "$T/none.qcow2", "sync": "none"},
     ready("n")),
    ("query-block-jobs", None),
    hmp("write -q -P 0x46 5M 64k"),
    hmp("write -q -P 0x47 100k 4k"),
    ("job-complete", {"id": "n"}, done("n")),
] + CHAIN, BASE_IMAGES + ("none.qcow2",))

E = "$T/e.qcow2"


def dm(**a):
    args = {"device": "drive0", "target": E, "sync": "full"}
    args.update({k.replace("_", "-"): v for k, v in a.items()})
    return ("drive-mirror", args)


def bm(**a):
    args = {"device": "drive0", "target": "tgt", "sync": "full"}
    args.update({k.replace("_", "-"): v for k, v in a.items()})
    return ("blockdev-mirror", args)


# Argument errors of both commands, their order and wording; e.qcow2 is
# examined afterwards (drive-mirror creates its target before some of
# the checks).
SCENARIOS["errors"] = (DRIVE + [
    "-blockdev", "driver=file,filename=$T/tgt.qcow2,node-name=tgt-file",
    "-blockdev", "driver=qcow2,file=tgt-file,node-name=tgt"], [
    dm(device="nosuch"),
    dm(device="sn1"),
    dm(sync="incremental"),
    dm(sync="bogus"),
    ("drive-mirror", {"device": "drive0", "target": E}),
    dm(granularity=1000),
    dm(granularity=256),
    dm(buf_size=-1),
    dm(replaces="sn1"),
    dm(target="$T/nodir/e.qcow2"),
    dm(target="$T/nosuch.qcow2", mode="existing"),
    dm(format="vmdk2"),
    dm(format="raw", sync="top"),
    dm(node_name="sn1"),
    dm(job_id="1x"),
    dm(bogus=1),
    ("query-jobs", None),
    dm(job_id="neg", speed=-1, mode="existing"),
    ("query-jobs", None),
    dm(job_id="locked", target="$T/other.qcow2", mode="existing",
       format="qcow2"),
    dm(job_id="small", target="$T/small.qcow2", mode="existing",
       format="qcow2") + (done("small"),),
    ("query-jobs", None),
    bm(target="nosuch"),
    bm(target="sn2"),
    bm(target="drive0"),
    bm(target="sn1"),
    bm(device="sn1"),
    bm(sync="bitmap"),
    bm(replaces="nosuch"),
    bm(job_id="r", speed=1, buf_size=65536),
    ("query-block-jobs", None, moved("r")),
    ("block-job-complete", {"device": "r"}),
    dm(job_id="r2", mode="existing"),
    bm(job_id="r2", device="other", target="tgt"),
    bm(job_id="r", device="other"),
    ("block-job-cancel", {"device": "r"}, done("r")),
] + CHAIN, BASE_IMAGES + ("e.qcow2", "tgt.qcow2", "small.qcow2"))


def run_scenario(binary, args, steps, images):
    return transcript.transcript(binary, args, steps, make_targets,
                                 "qmpd-mirror-", images, hosts=True)


FILTER = "#filter(mirror_top)"


def name_filters(result):
    """Both put an implicit mirror_top filter node (auto-named) above the
    source while a mirror job runs.  The filter's auto name is replaced
    by FILTER before normalise() numbers auto names, so that the numbers
    the other nodes get do not depend on where the filter's name first
    shows in a transcript."""
    trans, tmp = result
    names = set()

    def find(v):
        if isinstance(v, dict):
            if v.get("drv") == "mirror_top" and "node-name" in v:
                names.add(v["node-name"])
            for x in v.values():
                find(x)
        elif isinstance(v, list):
            for x in v:
                find(x)

    def rename(v):
        if isinstance(v, dict):
            return {k: rename(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rename(x) for x in v]
        return FILTER if isinstance(v, str) and v in names else v

    find([m for _, m in trans])
    return [(step, rename(msgs)) for step, msgs in trans], tmp


def without_job_bitmap(msgs):
    """query-named-block-nodes without the job's anonymous dirty bitmap
    in a node's dirty-bitmaps."""
    out = []
    for m in msgs:
        if isinstance(m, dict) and isinstance(m.get("return"), list):
            nodes = []
            for n in m["return"]:
                n = dict(n)
                bm = [b for b in n.pop("dirty-bitmaps", []) if "name" in b]
                if bm:
                    n["dirty-bitmaps"] = bm
                nodes.append(n)
            m = dict(m, **{"return": nodes})
        out.append(m)
    return out


def first_extent_host_unmasked(msgs):
    """The image facts with allocated-clusters and the first map
    extent's host flag masked (everything else, the data included, is
    still compared)."""
    out = json.loads(json.dumps(msgs))
    for m in out:
        if isinstance(m, dict) and "check" in m:
            m["check"]["allocated-clusters"] = "<masked>"
            m["map"][0]["host"] = "<masked>"
    return out


def node_file_names_masked(msgs):
    """query-named-block-nodes with the file name of node 'active' (and
    of its image) masked."""
    out = json.loads(json.dumps(msgs))
    for m in out:
        for n in (m.get("return") or []) if isinstance(m, dict) else []:
            if n.get("node-name") == "active":
                n["file"] = n["image"]["filename"] = "<masked>"
    return out


def seed_end_state(tr):
    """The seed's end: the drive reads active, backed by base alone, in
    query-block and in qemu-img info --backing-chain."""
    after = [json.loads(text) for step, text in tr
             if step[0] == "query-block"][-1]
    ins = after[-1]["return"][0]["inserted"]
    assert (ins["file"], ins.get("backing_file"),
            ins["backing_file_depth"]) == (
        "$T/active.qcow2", "$T/base.qcow2", 1), ins
    facts = dict((step[1], json.loads(text)) for step, text in tr
                 if step[0] == "qemu-img")["active.qcow2"]
    chain = [i["filename"] for i in facts[0]["info --backing-chain"]]
    assert chain == ["$T/active.qcow2", "$T/base.qcow2"], chain


# Assertions on each transcript (QEMU's and qmpd's) beyond equality: the
# scenario did reach what it is about.
CHECKS = {"seed_two_step": seed_end_state}


# Differences qmpd has on purpose or not yet, as test_jobs_compat.KNOWN:
# (scenario, step) -> (reason, mask), mask a function that takes the
# difference out of a step's messages on both sides; the rest of the
# step is still compared strictly.
KNOWN = {
    ("blockdev_mirror", 3): (
        "while a mirror job runs QEMU lists the job's anonymous dirty "
        "bitmap in the source node's dirty-bitmaps (qmpd lists no "
        "job-internal bitmap)",
        without_job_bitmap),
    ("blockdev_mirror_top", 6): (
        "QEMU names a node whose backing was given by node name as "
        "json:{...} when the image header's backing file name "
        "('base.qcow2', relative) differs textually from the backing "
        "node's file name; qmpd keeps the plain file name",
        node_file_names_masked),
    ("full_writes_after_ready", 13): (
        "qmpd: a zero range mirrored (unmap=true, the default) over an "
        "allocated target cluster leaves a zero cluster that keeps its "
        "host cluster; QEMU's write-zeroes with MAY_UNMAP frees it "
        "(same data, one more allocated cluster)",
        first_extent_host_unmasked),
}


def compare(name):
    qemu = need_qemu()
    need_qemu_utils()
    args, steps, images = SCENARIOS[name]
    theirs = normalise(name_filters(reference(run_scenario, qemu, args,
                                              steps, images)))
    other = qemu if os.environ.get("MIRROR_COMPAT_QEMU_ONLY") else None
    ours = normalise(name_filters(run_scenario(other, args, steps,
                                                     images)))
    dump = os.environ.get("MIRROR_COMPAT_DUMP")
    if dump:
        dump_transcripts(dump, name, theirs, ours)
    bad = diff_steps(name, theirs, ours, KNOWN)
    assert not bad, "%s:\n%s" % (name, "\n".join(bad))
    check = CHECKS.get(name)
    if check:
        check(theirs)
        check(ours)


def make_test(name):
    def test():
        compare(name)
    test.__name__ = "test_" + name
    return test


if __name__ == "__main__":
    only = sys.argv[1:]
    run([make_test(n) for n in SCENARIOS if not only or n in only])
