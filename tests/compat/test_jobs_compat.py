#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""block-stream and block-commit jobs against QEMU 7.2 and qmpd.

Every scenario starts a fresh process (QEMU with -M none, or qmpd) on a
fresh copy of the chain base <- sn1 <- sn2 (8 MiB qcow2 images, each
layer with its own data, made with qemu-img and qemu-io), runs the same
steps and records every reply and event up to a sync command after each
step.  Steps that start or advance a job wait for the event that ends
that phase, so the events a step records do not depend on timing.  The
process then quits and every image is examined with qemu-img (info,
check, map and a checksum of its guest-visible data).  The transcripts
are normalised (timestamps, the temp dir, auto node names, allocated
host bytes) and must be equal step by step.

Set JOBS_COMPAT_QEMU_ONLY=1 to compare QEMU with itself (a check that
the scenarios are deterministic), JOBS_COMPAT_DUMP=prefix to write both
normalised transcripts for diff(1).  Skips (77) when qemu-system-x86_64,
qemu-img or qemu-io is not installed.
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
from transcript import (diff_steps, done, dump_transcripts,  # noqa: E402
                        moved, reference, status, tool, until)

MiB = 1024 * 1024
IMAGES = ("base.qcow2", "sn1.qcow2", "sn2.qcow2", "other.qcow2")


def make_images(d):
    """base <- sn1 <- sn2, each layer with data of its own, some of it
    overlapping a lower layer; other.qcow2 stands alone."""
    def img(name):
        return os.path.join(d, name)

    tool("qemu-img", "create", "-q", "-f", "qcow2", img("base.qcow2"),
         str(8 * MiB))
    tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", img("base.qcow2"),
         "-F", "qcow2", img("sn1.qcow2"), str(8 * MiB))
    tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", img("sn1.qcow2"),
         "-F", "qcow2", img("sn2.qcow2"), str(8 * MiB))
    tool("qemu-img", "create", "-q", "-f", "qcow2", img("other.qcow2"),
         str(4 * MiB))
    for name, writes in (("base.qcow2", ["0x11 0 4M"]),
                         ("sn1.qcow2", ["0x22 1M 2M", "0x23 6M 1M"]),
                         ("sn2.qcow2", ["0x33 2M 1M", "0x34 5M 512K"])):
        a = []
        for w in writes:
            a += ["-c", "write -q -P " + w]
        tool("qemu-io", "-f", "qcow2", *(a + [img(name)]))


# The two ways to open the chain.  DRIVE: a named backend (drive0) over
# sn2, backing nodes named by -drive's dotted options, file nodes left
# to auto names; default job ids are then "drive0".  BLOCKDEV: every
# node named, no backend, so a job without job-id has no default id.
# DRIVE spells out each backing's driver and file, which QEMU takes
# from the image header when only backing.node-name is given (the
# short form, DRIVE_SHORT, has a scenario of its own); QEMU reports
# both the same.  QEMU opens every -blockdev before any -drive,
# whatever their order on the command line, and that order shows in
# query-named-block-nodes: DRIVE lists them in QEMU's order, DRIVE_SHORT
# the other way round.
OTHER = ["-blockdev",
         "driver=file,filename=$T/other.qcow2,node-name=other-file",
         "-blockdev", "driver=qcow2,file=other-file,node-name=other"]
DRIVE_SHORT = ["-M", "none", "-drive",
               "if=none,id=drive0,file=$T/sn2.qcow2,format=qcow2,"
               "node-name=sn2,backing.node-name=sn1,"
               "backing.backing.node-name=base"] + OTHER
DRIVE = ["-M", "none"] + OTHER + [
    "-drive",
    "if=none,id=drive0,file=$T/sn2.qcow2,format=qcow2,node-name=sn2,"
    "backing.driver=qcow2,backing.node-name=sn1,"
    "backing.file.driver=file,backing.file.filename=$T/sn1.qcow2,"
    "backing.backing.driver=qcow2,backing.backing.node-name=base,"
    "backing.backing.file.driver=file,"
    "backing.backing.file.filename=$T/base.qcow2"]
BLOCKDEV = ["-M", "none"]
for _n, _b in (("base", None), ("sn1", "base"), ("sn2", "sn1"),
               ("other", None)):
    BLOCKDEV += ["-blockdev", "driver=file,filename=$T/%s.qcow2,"
                 "node-name=%s-file" % (_n, _n),
                 "-blockdev", "driver=qcow2,file=%s-file,node-name=%s%s"
                 % (_n, _n, ",backing=" + _b if _b else "")]

# BLOCKDEV with base's file behind blkdebug: every data read of base
# fails with EIO, every data write with ENOSPC.
FAULTY = ["-M", "none", "-blockdev",
          "driver=file,filename=$T/base.qcow2,node-name=base-raw",
          "-blockdev", json.dumps({
              "driver": "blkdebug", "node-name": "base-file",
              "image": "base-raw", "inject-error": [
                  {"event": "read_aio", "errno": 5},
                  {"event": "write_aio", "errno": 28}]})] + \
    BLOCKDEV[BLOCKDEV.index("driver=qcow2,file=base-file,node-name=base") - 1:]


# Steps as tests/compat/transcript.py runs them: (command, arguments[,
# wait]), wait until(event, **data) or moved(job).
CHAIN = [
    ("query-block", None),
    ("query-named-block-nodes", None),
    ("query-jobs", None),
    ("query-block-jobs", None),
]

# Job verbs and their two spellings, on a job that does not exist.
UNKNOWN_JOB = [
    ("block-job-pause", {"device": "nosuch"}),
    ("block-job-resume", {"device": "nosuch"}),
    ("block-job-cancel", {"device": "nosuch"}),
    ("block-job-complete", {"device": "nosuch"}),
    ("block-job-set-speed", {"device": "nosuch", "speed": 0}),
    ("block-job-finalize", {"id": "nosuch"}),
    ("block-job-dismiss", {"id": "nosuch"}),
    ("job-pause", {"id": "nosuch"}),
    ("job-resume", {"id": "nosuch"}),
    ("job-cancel", {"id": "nosuch"}),
    ("job-complete", {"id": "nosuch"}),
    ("job-finalize", {"id": "nosuch"}),
    ("job-dismiss", {"id": "nosuch"}),
]

SCENARIOS = {}

# The chain as -drive opens it when only the backing node names are
# given, and a stream through the backend with its default job id.
SCENARIOS["drive_backing_node_names"] = (DRIVE_SHORT, CHAIN + [
    ("block-stream", {"device": "drive0", "base-node": "base"},
     done("drive0")),
] + CHAIN)

# Whole chain into the top, through the backend name, default job id.
SCENARIOS["stream_default_id"] = (DRIVE, [
    ("block-stream", {"device": "drive0"}, done("drive0")),
] + CHAIN)

# Down to base (by node name), slowed down, paused, queried, and the
# state-dependent verbs and the busy-node errors on the way.
SCENARIOS["stream_pause_resume"] = (DRIVE, [
    ("block-stream", {"device": "drive0", "job-id": "s1",
                      "base-node": "base", "speed": 1,
                      "backing-file": "base.qcow2"}),
    ("query-block-jobs", None, moved("s1")),
    ("query-jobs", None),
    # a running stream job
    ("block-job-complete", {"device": "s1"}),
    ("job-finalize", {"id": "s1"}),
    ("job-dismiss", {"id": "s1"}),
    ("block-job-resume", {"device": "s1"}),
    # its nodes are busy; its id is taken
    ("block-stream", {"device": "drive0", "job-id": "s2"}),
    ("block-stream", {"device": "sn1", "job-id": "s2"}),
    ("block-commit", {"device": "drive0", "job-id": "c1"}),
    ("block-commit", {"device": "drive0", "job-id": "c1",
                      "top-node": "sn1"}),
    ("block-stream", {"device": "other", "job-id": "s1"}),
    ("blockdev-del", {"node-name": "other"}),
    # paused
    ("block-job-pause", {"device": "s1"}, status("s1", "paused")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    ("block-job-pause", {"device": "s1"}),
    ("job-pause", {"id": "s1"}),
    ("block-job-complete", {"device": "s1"}),
    ("job-finalize", {"id": "s1"}),
    ("block-job-set-speed", {"device": "s1", "speed": -1}),
    ("block-job-set-speed", {"device": "s1", "speed": 0}),
    ("query-block-jobs", None),
    ("block-job-cancel", {"device": "s1"}),
    ("job-resume", {"id": "s1"}, done("s1")),
] + CHAIN)

# Whole chain, every node named, manual finalize and dismiss, and the
# verbs that pending and concluded refuse.
SCENARIOS["stream_finalize_dismiss"] = (BLOCKDEV, [
    ("block-stream", {"device": "sn2"}),
    ("block-stream", {"device": "sn2", "job-id": "s2",
                      "auto-finalize": False, "auto-dismiss": False},
     until("BLOCK_JOB_PENDING", id="s2")),
    ("query-jobs", None),
    ("query-block-jobs", None),
    ("job-dismiss", {"id": "s2"}),
    ("block-job-pause", {"device": "s2"}),
    ("job-resume", {"id": "s2"}),
    ("block-job-set-speed", {"device": "s2", "speed": 10}),
    ("job-complete", {"id": "s2"}),
    ("block-stream", {"device": "sn2", "job-id": "s3"}),
    ("query-named-block-nodes", None),
    ("job-finalize", {"id": "s2"}, status("s2", "concluded")),
    ("query-jobs", None),
    ("query-block-jobs", None),
    ("job-finalize", {"id": "s2"}),
    ("block-job-cancel", {"device": "s2"}),
    ("job-cancel", {"id": "s2"}),
    ("block-job-pause", {"device": "s2"}),
    ("block-job-dismiss", {"id": "s2"}),
    ("job-dismiss", {"id": "s2"}),
] + CHAIN)

# Down to base given by file name; cancelled while slow; not dismissed.
SCENARIOS["stream_cancel"] = (DRIVE, [
    ("block-stream", {"device": "drive0", "base": "$T/base.qcow2",
                      "speed": 1, "auto-dismiss": False}),
    ("query-block-jobs", None, moved("drive0")),
    ("block-job-cancel", {"device": "drive0"},
     status("drive0", "concluded")),
    ("query-jobs", None),
    ("query-block-jobs", None),
    ("job-dismiss", {"id": "drive0"}),
] + CHAIN)

# Argument errors, then an intermediate stream (sn1 takes base's data).
SCENARIOS["stream_errors"] = (BLOCKDEV, [
    ("block-stream", {"device": "nosuch", "job-id": "e"}),
    ("block-stream", {"device": "sn2"}),
    ("block-stream", {"device": "sn2", "job-id": ""}),
    ("block-stream", {"device": "sn2", "job-id": "1bad"}),
    ("block-stream", {"device": "sn2", "job-id": "a b"}),
    ("block-stream", {"device": "sn2", "job-id": "e", "base": "nosuch"}),
    ("block-stream", {"device": "sn2", "job-id": "e",
                      "base-node": "nosuch"}),
    ("block-stream", {"device": "sn2", "job-id": "e",
                      "base-node": "other"}),
    ("block-stream", {"device": "sn2", "job-id": "e",
                      "base-node": "sn2"}),
    ("block-stream", {"device": "sn1", "job-id": "e",
                      "base-node": "sn2"}),
    ("block-stream", {"device": "sn2", "job-id": "e",
                      "base-node": "base-file"}),
    ("block-stream", {"device": "sn2", "job-id": "e", "base-node": "base",
                      "base": "$T/base.qcow2"}),
    ("block-stream", {"device": "sn2", "job-id": "e", "base-node": "base",
                      "bottom": "sn1"}),
    ("block-stream", {"device": "sn2", "job-id": "e",
                      "backing-file": "base.qcow2"}),
    ("block-stream", {"device": "sn2", "job-id": "e", "speed": -1}),
    ("block-stream", {"device": "sn2", "job-id": "e", "speed": "fast"}),
    ("block-stream", {"device": "sn2", "job-id": "e", "bogus": 1}),
    ("block-stream", {"job-id": "e"}),
] + UNKNOWN_JOB + [
    ("query-jobs", None),
    ("block-stream", {"device": "sn1", "job-id": "mid"}, done("mid")),
] + CHAIN)

# Commit sn1 into base (sn2 then backed by base), slowed and paused.
SCENARIOS["commit_intermediate"] = (BLOCKDEV, [
    ("block-commit", {"device": "sn2", "job-id": "c1", "top-node": "sn1",
                      "base-node": "base", "speed": 1,
                      "backing-file": "base.qcow2"}),
    ("query-block-jobs", None, moved("c1")),
    ("query-jobs", None),
    ("block-job-complete", {"device": "c1"}),
    ("block-stream", {"device": "sn2", "job-id": "s1"}),
    ("block-commit", {"device": "sn2", "job-id": "c2"}),
    ("block-job-pause", {"device": "c1"}, status("c1", "paused")),
    ("query-block-jobs", None),
    ("job-complete", {"id": "c1"}),
    ("block-job-set-speed", {"device": "c1", "speed": 0}),
    ("block-job-resume", {"device": "c1"}, done("c1")),
] + CHAIN)

# The same through the backend: default id, manual finalize/dismiss.
SCENARIOS["commit_intermediate_finalize"] = (DRIVE, [
    ("block-commit", {"device": "drive0", "top-node": "sn1",
                      "base-node": "base", "auto-finalize": False,
                      "auto-dismiss": False},
     until("BLOCK_JOB_PENDING", id="drive0")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    ("block-job-finalize", {"id": "drive0"},
     status("drive0", "concluded")),
    ("query-jobs", None),
    ("block-job-dismiss", {"id": "drive0"}),
] + CHAIN)

# Active commit: READY, the verbs READY refuses, job-complete.
SCENARIOS["commit_active_complete"] = (BLOCKDEV, [
    ("block-commit", {"device": "sn2", "job-id": "a1"},
     until("BLOCK_JOB_READY", device="a1")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    ("job-finalize", {"id": "a1"}),
    ("job-dismiss", {"id": "a1"}),
    ("block-stream", {"device": "sn2", "job-id": "s1"}),
    ("job-complete", {"id": "a1"}, done("a1")),
] + CHAIN)

# Active commit through the backend, auto-finalize off: READY,
# block-job-complete, PENDING, block-job-finalize, block-job-dismiss.
SCENARIOS["commit_active_block_job_complete"] = (DRIVE, [
    ("block-commit", {"device": "drive0", "base-node": "sn1",
                      "auto-finalize": False, "auto-dismiss": False},
     until("BLOCK_JOB_READY", device="drive0")),
    ("query-block-jobs", None),
    ("block-job-complete", {"device": "drive0"},
     until("BLOCK_JOB_PENDING", id="drive0")),
    ("query-block-jobs", None),
    ("query-jobs", None),
    ("block-job-complete", {"device": "drive0"}),
    ("block-job-finalize", {"id": "drive0"},
     status("drive0", "concluded")),
    ("block-job-dismiss", {"id": "drive0"}),
] + CHAIN)

# Cancel after READY: without force the job completes (no pivot); with
# force it is cancelled.
SCENARIOS["commit_active_cancel"] = (DRIVE, [
    ("block-commit", {"device": "drive0", "job-id": "a1"},
     until("BLOCK_JOB_READY", device="a1")),
    ("block-job-cancel", {"device": "a1"}, done("a1")),
] + CHAIN + [
    ("block-commit", {"device": "drive0", "job-id": "a2",
                      "auto-dismiss": False},
     until("BLOCK_JOB_READY", device="a2")),
    ("block-job-cancel", {"device": "a2", "force": True},
     status("a2", "concluded")),
    ("query-jobs", None),
    ("job-dismiss", {"id": "a2"}),
] + CHAIN)

# I/O errors under each on-error policy: BLOCK_JOB_ERROR, io-status,
# the error in BLOCK_JOB_COMPLETED and query-jobs.
SCENARIOS["io_errors"] = (FAULTY, [
    ("block-stream", {"device": "sn2", "job-id": "r",
                      "auto-dismiss": False}, status("r", "concluded")),
    ("query-jobs", None),
    ("query-block-jobs", None),
    ("job-dismiss", {"id": "r"}),
    ("block-stream", {"device": "sn2", "job-id": "s", "on-error": "stop"},
     status("s", "paused")),
    ("query-block-jobs", None),
    ("block-job-cancel", {"device": "s"}),
    ("block-job-resume", {"device": "s"}, status("s", "paused")),
    ("query-jobs", None),
    ("block-job-cancel", {"device": "s", "force": True}, done("s")),
    ("block-stream", {"device": "sn2", "job-id": "i",
                      "on-error": "ignore"}, done("i")),
    ("block-commit", {"device": "sn2", "job-id": "c", "top-node": "sn1",
                      "base-node": "base", "on-error": "enospc"},
     status("c", "paused")),
    ("query-block-jobs", None),
    ("job-cancel", {"id": "c"}, done("c")),
    ("block-commit", {"device": "sn2", "job-id": "c", "top-node": "sn1",
                      "base-node": "base"}, done("c")),
] + CHAIN)

SCENARIOS["commit_errors"] = (BLOCKDEV, [
    ("block-commit", {"device": "nosuch", "job-id": "e"}),
    ("block-commit", {"device": "sn2"}),
    ("block-commit", {"device": "sn2", "top-node": "sn1",
                      "base-node": "base"}),
    ("block-commit", {"device": "sn2", "job-id": "1bad"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "sn1",
                      "base-node": "sn1"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "base",
                      "base-node": "sn1"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "base"}),
    ("block-commit", {"device": "sn2", "job-id": "e",
                      "top-node": "sn2-file"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "other"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "nosuch"}),
    ("block-commit", {"device": "sn2", "job-id": "e",
                      "base-node": "nosuch"}),
    ("block-commit", {"device": "sn2", "job-id": "e",
                      "base-node": "other"}),
    ("block-commit", {"device": "sn2", "job-id": "e",
                      "base-node": "sn2-file"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top": "x",
                      "top-node": "sn1"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "base": "x",
                      "base-node": "sn1"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top": "nosuch"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "base": "nosuch"}),
    ("block-commit", {"device": "sn1", "job-id": "e"}),
    ("block-commit", {"device": "base", "job-id": "e"}),
    ("block-commit", {"device": "other", "job-id": "e"}),
    ("block-commit", {"device": "sn2", "job-id": "e",
                      "backing-file": "base.qcow2"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "top-node": "sn2",
                      "backing-file": "base.qcow2"}),
    ("block-commit", {"device": "sn2", "job-id": "e", "speed": -5}),
    ("block-commit", {"job-id": "e"}),
    ("query-jobs", None),
] + CHAIN)




def run_scenario(binary, args, steps):
    return transcript.transcript(binary, args, steps, make_images,
                                 "qmpd-jobs-", IMAGES)


# Values that differ between two correct implementations: the host bytes
# an image file occupies (actual-size) depends on the filesystem and on
# where the writer put clusters; so do the end of the image file and
# its fragmentation, which only say where clusters landed in the file
# (even QEMU's own active commit, with several writes in flight, places
# them in a different order from run to run).
VOLATILE = re.compile(r"^(actual-size|image-end-offset|"
                      r"fragmented-clusters)$")


def normalise(result):
    return transcript.normalise(result, VOLATILE)


def node_lists(msgs):
    """The node lists in a step's query-named-block-nodes replies."""
    return [m["return"] for m in msgs
            if isinstance(m, dict) and isinstance(m.get("return"), list)]


def reply_last(msgs):
    """The step's reply after its events (each kept in its order)."""
    def is_reply(m):
        return isinstance(m, dict) and "event" not in m
    return [m for m in msgs if not is_reply(m)] + \
        [m for m in msgs if is_reply(m)]


def on_blkdebug(filename):
    """Whether json:{...} @filename names blkdebug or an image on it."""
    if not filename.startswith("json:{"):
        return False
    o = json.loads(filename[5:])
    return "blkdebug" in (o.get("driver"), (o.get("file") or {}).get("driver"))


def blkdebug_names_masked(msgs):
    """query-named-block-nodes with three differences masked, for the
    nodes on or above a blkdebug node (each says why in KNOWN): their
    file names (file, backing_file and every image's filename); the
    actual-size of an image on blkdebug; the blkdebug node's
    backing_file_depth and backing-image."""
    def image(i):
        if on_blkdebug(i.get("filename", "")):
            i.pop("actual-size", None)
        i["filename"] = "<masked>"
        if "backing-image" in i:
            image(i["backing-image"])

    for nodes in node_lists(msgs):
        for n in nodes:
            if "blkdebug" not in json.dumps(n):
                continue
            n["file"] = "<masked>"
            if "backing_file" in n:
                n["backing_file"] = "<masked>"
            if n["drv"] == "blkdebug":
                n.pop("backing_file_depth")
                n["image"].pop("backing-image", None)
            image(n["image"])
    return msgs


# Differences qmpd has on purpose or not yet: (scenario, step) ->
# (reason, mask), mask a function that takes the difference out of a
# step's messages on both sides; the rest of the step is still compared
# strictly.  Each is shown, not hidden, when the test runs.
KNOWN = {
    ("io_errors", 7): (
        "QEMU's blkdebug fails a request without yielding, so the retried "
        "error shows before the reply to block-job-resume; qmpd completes "
        "every request from the main loop, after the reply",
        reply_last),
    ("io_errors", 16): (
        "QEMU names a node over blkdebug json:{...} with the blkdebug "
        "options flattened (inject-error.0.event) in hash order, qmpd "
        "keeps the plain file name there; QEMU reports no actual-size for "
        "an image on blkdebug (no allocated size through the filter), "
        "qmpd the file's; and QEMU shows the blkdebug node's file child as "
        "its backing image (backing_file_depth 1), qmpd as none",
        blkdebug_names_masked),
}


def compare(name):
    qemu = need_qemu()
    need_qemu_utils()
    args, steps = SCENARIOS[name]
    # QEMU 7.2 sometimes hangs and aborts in a forced cancel of a ready
    # active commit (seen under load): then there is nothing to compare,
    # and it runs again (a fresh process), three times at most
    for attempt in range(3):
        theirs = normalise(reference(run_scenario, qemu, args, steps))
        broken = [t for _, t in theirs if "<timeout" in t or '"exit -' in t]
        if not broken:
            break
        print("# QEMU itself failed in %s: %s" % (name, broken[0][:200]))
    else:
        raise AssertionError("QEMU itself failed in %s three times" % name)
    other = qemu if os.environ.get("JOBS_COMPAT_QEMU_ONLY") else None
    ours = normalise(run_scenario(other, args, steps))
    dump = os.environ.get("JOBS_COMPAT_DUMP")
    if dump:
        dump_transcripts(dump, name, theirs, ours)
    bad = diff_steps(name, theirs, ours, KNOWN)
    assert not bad, "%s:\n%s" % (name, "\n".join(bad))


def make_test(name):
    def test():
        compare(name)
    test.__name__ = "test_" + name
    return test


if __name__ == "__main__":
    run([make_test(n) for n in SCENARIOS])
