#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A job command refused before its job exists announces nothing.

Two jobs hold nodes (an active commit of ov into base, ready; a
sync=none backup of src into tgt), then each job command is sent where
QEMU 7.2 refuses it before creating the job: a busy node in the chain
(stream, commit), a node that is not a root (mirror), a busy source or
target (backup), a job id in use (create), a transaction whose first
action is refused.  No event may come between such a command and its
error reply.  Where QEMU creates the job and then fails it (a negative
speed, a transaction's later action) the events are QEMU's: created
and null, or created, aborting, concluded, null.  When
qemu-system-x86_64 is installed the same scenario runs on it and its
errors, events and files left behind must equal qmpd's.  Every image is
checked with qemu-img check.
"""

import glob
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
import reference  # noqa: E402

BUSY = "Node '%s' is busy: block device is in use by block job: %s"
ROOT = "Need a root block node"

NODES = ("base", "sn1", "sn2", "ov", "tgt", "tgt2", "src", "src2", "tgt3",
         "src3")
BACKING = {"sn1": "base", "sn2": "sn1", "ov": "base", "src3": "src2"}


def make_images(d):
    for n in NODES:
        path = os.path.join(d, n + ".qcow2")
        if n in BACKING:
            img("create", "-q", "-f", "qcow2", "-b", BACKING[n] + ".qcow2",
                "-F", "qcow2", path)
        else:
            img("create", "-q", "-f", "qcow2", path, "64M")


def blockdev_args(d):
    args = []
    for n in NODES:
        opts = "driver=qcow2,node-name=%s,file.driver=file," \
            "file.filename=%s" % (n, os.path.join(d, n + ".qcow2"))
        if n in BACKING:
            opts += ",backing=" + BACKING[n]
        if n in ("base", "sn1"):
            opts += ",read-only=on"
        args += ["-blockdev", opts]
    return args


def wait_status(c, job, status, timeout=60):
    """Wait for JOB_STATUS_CHANGE @job @status (a generous deadline)."""
    deadline = time.time() + timeout
    want = {"id": job, "status": status}
    while True:
        for i, e in enumerate(c.events):
            if e["event"] == "JOB_STATUS_CHANGE" and e["data"] == want:
                del c.events[:i + 1]
                return
        left = deadline - time.time()
        assert left > 0, "no %r in %r" % (want, c.events)
        m = c.recv(left)
        assert "event" in m, m
        c.events.append(m)


def refusals(d):
    """(command, arguments, job id, expected error or None, expected
    statuses of that job announced before the reply)."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    t1 = {"type": "blockdev-backup",
          "data": {"device": "src2", "target": "tgt3", "sync": "full",
                   "job-id": "t1"}}
    return [
        # the intermediate node (or the base) is busy: checked first
        ("block-stream", {"device": "sn2", "job-id": "s1"}, "s1",
         BUSY % ("base", "commit"), []),
        ("block-stream", {"device": "sn1", "job-id": "s2"}, "s2",
         BUSY % ("base", "commit"), []),
        ("block-stream", {"device": "sn2", "job-id": "s1",
                          "backing-file": "x"}, "s1",
         BUSY % ("base", "commit"), []),
        ("block-commit", {"device": "sn2", "job-id": "c1"}, "c1",
         BUSY % ("base", "commit"), []),
        ("block-commit", {"device": "sn2", "job-id": "c1",
                          "top-node": "sn1"}, "c1",
         BUSY % ("base", "commit"), []),
        ("blockdev-mirror", {"device": "sn1", "target": "base",
                             "sync": "full", "job-id": "m1"}, "m1",
         ROOT, []),
        ("blockdev-mirror", {"device": "ov", "target": "tgt2",
                             "sync": "full", "job-id": "m2"}, "m2",
         ROOT, []),
        ("drive-mirror", {"device": "ov", "target": p("dm.qcow2"),
                          "format": "qcow2", "sync": "full",
                          "job-id": "m4"}, "m4", ROOT, []),
        ("drive-mirror", {"device": "sn2", "target": p("dm.qcow2"),
                          "format": "qcow2", "sync": "full",
                          "job-id": "bk"}, "bk",
         "Job ID 'bk' already in use", []),
        ("drive-backup", {"device": "ov", "target": p("db.qcow2"),
                          "format": "qcow2", "sync": "full",
                          "job-id": "b1"}, "b1", BUSY % ("ov", "commit"), []),
        ("blockdev-backup", {"device": "sn1", "target": "tgt",
                             "sync": "full", "job-id": "b2"}, "b2",
         BUSY % ("tgt", "backup"), []),
        ("blockdev-backup", {"device": "ov", "target": "tgt2",
                             "sync": "full", "job-id": "b2"}, "b2",
         BUSY % ("ov", "commit"), []),
        ("blockdev-create", {"job-id": "bk", "options": {
            "driver": "file", "filename": p("x"), "size": 0}}, "bk",
         "Job ID 'bk' already in use", []),
        ("transaction", {"actions": [
            {"type": "blockdev-backup",
             "data": {"device": "ov", "target": "tgt2", "sync": "full",
                      "job-id": "t2"}}, t1]}, "t1",
         BUSY % ("ov", "commit"), []),
        # QEMU creates these jobs, then fails them: created and null
        ("block-stream", {"device": "src3", "job-id": "s9", "speed": -1},
         "s9", "Parameter 'speed' expects a non-negative value",
         ["created", "null"]),
        ("blockdev-backup", {"device": "src2", "target": "tgt3",
                             "sync": "full", "job-id": "b9", "speed": -1},
         "b9", "Parameter 'speed' expects a non-negative value",
         ["created", "null"]),
        # the first action's job exists when the second is refused
        ("transaction", {"actions": [t1, {
            "type": "drive-backup",
            "data": {"device": "ov", "target": p("tb.qcow2"),
                     "format": "qcow2", "sync": "full", "job-id": "t2"}}]},
         "t1", BUSY % ("ov", "commit"),
         ["created", "aborting", "concluded", "null"]),
    ]


def scenario(qemu):
    """Each refusal's (error, events about the job, events at all,
    files in the directory) on qmpd or on QEMU."""
    d = tempfile.mkdtemp(prefix="qmpd-refusal-")
    try:
        make_images(d)
        q, c = reference.start(blockdev_args(d), qemu=qemu)
        try:
            c.cmd("block-commit", device="ov", **{"job-id": "a"})
            wait_status(c, "a", "ready")
            c.cmd("blockdev-backup", device="src", target="tgt",
                  sync="none", **{"job-id": "bk"})
            wait_status(c, "bk", "running")
            c.events.clear()
            out = []
            for name, args, job, err, statuses in refusals(d):
                r = c.execute(name, args)
                mine = [e["data"]["status"] for e in c.events
                        if e["event"] == "JOB_STATUS_CHANGE"
                        and e["data"]["id"] == job]
                got = r.get("error", {}).get("desc")
                out.append((name, got, mine, len(c.events),
                            sorted(os.listdir(d))))
                assert got == err, (qemu, name, args, r)
                assert mine == statuses, (qemu, name, args, c.events)
                c.events.clear()
            for job in ("a", "bk"):
                c.cmd("block-job-cancel", device=job, force=True)
                wait_status(c, job, "null")
            c.cmd("quit")
        finally:
            q.close()
        for path in glob.glob(os.path.join(d, "*.qcow2")):
            check_clean(path)
        return out
    finally:
        shutil.rmtree(d)


def test_refused_jobs_silent():
    """On qmpd a refused command sends no event at all before its reply
    (a job created and failed as in QEMU sends just its own)."""
    ours = scenario(False)
    for (name, err, mine, total, files), r in zip(ours, refusals("")):
        assert total == len(mine), (name, err, total)
    # as QEMU: only drive-mirror refused for its job id (checked after
    # the target is made) leaves a file; the other refusals none
    made = [sorted(set(f) - {n + ".qcow2" for n in NODES})
            for *_, f in ours]
    first = [i for i, (n, a, *_) in enumerate(refusals(""))
             if n == "drive-mirror" and a["job-id"] == "bk"][0]
    assert made == [[]] * first + [["dm.qcow2"]] * (len(made) - first), made
    if qemu_binary():
        theirs = scenario(True)
        # QEMU also sends drains' standby/ready of the other jobs: compare
        # only what concerns the refused job, and the files
        assert [(n, e, m, f) for n, e, m, _, f in ours] == \
            [(n, e, m, f) for n, e, m, _, f in theirs], (ours, theirs)


if __name__ == "__main__":
    run([test_refused_jobs_silent], needs=[need_tools])
