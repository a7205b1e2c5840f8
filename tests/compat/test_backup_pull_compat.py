#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt's pull backup (virsh backup-begin in pull mode, the QMP
sequence of shared/reference/libvirt-flows.md B, as libvirt 9.0 sends
it) and QEMU 7.2's snapshot-access fleecing, run step by step on QEMU
and on qmpd alike: every reply, error and event, and what nbdinfo,
nbdcopy, qemu-io and qemu-img see through the exports, must be the
same.  The pull backup: a qcow2 scratch backed by the live disk made
with blockdev-create, one transaction with the checkpoint bitmap (and
for the incremental round a disabled temporary bitmap on the scratch
merged from the last checkpoint) and blockdev-backup sync=none, an
export of the scratch with the bitmap, guest writes through the drive
while the export is read, then the teardown.  The exports read as the
disk was when the backup began (qemu-img compare against a copy made
before the run).  Each side has its own temp dir with the same images;
paths are written $T.  Skips (77) without qemu-system-x86_64, qemu-img
or libnbd's tools.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import NEED_QEMU_UTILS, Skip, need_qemu, need_qemu_utils  # noqa
from qmpd import run  # noqa: E402
import reference  # noqa: E402
from transcript import subst, unsubst  # noqa: E402

MiB = 1 << 20
DISK = "libvirt-1-format"
JOB = "backup-vda-" + DISK


def need_nbd_tools():
    for t in ("nbdinfo", "nbdcopy"):
        if not shutil.which(t):
            raise Skip("%s not installed" % t, NEED_QEMU_UTILS)


def tool(*args):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=120)
    # qemu-io's timing lines differ from run to run
    return {"exit": p.returncode,
            "out": re.sub(r"(?m)^.* ops; .*\n", "", p.stdout),
            "err": p.stderr}


def prepare(d):
    disk = os.path.join(d, "disk.qcow2")
    tool("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M")
    for c in ("write -P 0x11 0 1M", "write -P 0x22 8M 2M",
              "write -z 4M 1M"):
        tool("qemu-io", "-f", "qcow2", "-c", c, disk)
    # the disk as the first backup must read it
    shutil.copy(disk, os.path.join(d, "orig.qcow2"))
    for name in ("scratch1.qcow2", "scratch2.qcow2"):
        open(os.path.join(d, name), "w").close()
    for name in ("src.qcow2", "tgt.qcow2"):
        tool("qemu-img", "create", "-q", "-f", "qcow2",
             os.path.join(d, name), "4M")
    tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", "-c",
         "write -P 0x6b 2M 1M", "-c", "write -z 3M 64k",
         os.path.join(d, "src.qcow2"))


def uri(name):
    return "nbd+unix:///%s?socket=$T/nbd.sock" % name


def scratch(n):
    """libvirt's scratch for a pull backup: a qcow2 made by
    blockdev-create, backed by the live disk (the fleecing overlay)."""
    st, fmt = "libvirt-%d-storage" % n, "libvirt-%d-format" % n
    return [
        ("blockdev-add", {"driver": "file", "node-name": st,
                          "filename": "$T/scratch%d.qcow2" % (n - 3),
                          "auto-read-only": True, "discard": "unmap"}),
        ("blockdev-create", {"job-id": "create-" + fmt, "options": {
            "driver": "qcow2", "file": st, "size": 64 * MiB,
            "cluster-size": 65536, "backing-file": "$T/disk.qcow2",
            "backing-fmt": "qcow2"}}, "async"),
        ("wait", "create-" + fmt, "concluded"),
        ("job-dismiss", {"id": "create-" + fmt}),
        ("blockdev-add", {"node-name": fmt, "read-only": False,
                          "driver": "qcow2", "file": st, "backing": DISK}),
        ("nbd-server-start", {"addr": {"type": "unix",
                                       "data": {"path": "$T/nbd.sock"}}}),
    ]


def backup(n, bitmaps):
    return ("blockdev-backup", {
        "device": DISK, "job-id": JOB, "target": "libvirt-%d-format" % n,
        "sync": "none", "auto-finalize": True, "auto-dismiss": False})


def teardown(n):
    """libvirt's end of a pull backup (domjobabort or backup end)."""
    return [
        ("block-job-cancel", {"device": JOB, "force": True}, "async"),
        ("wait", JOB, "concluded"),
        ("query-jobs", {}),
        ("job-dismiss", {"id": JOB}),
        ("nbd-server-stop", {}),
        ("blockdev-del", {"node-name": "libvirt-%d-format" % n}),
        ("blockdev-del", {"node-name": "libvirt-%d-storage" % n}),
    ]


def io(cmd):
    return ("hmp", 'qemu-io drive0 "%s"' % cmd)


PULL = scratch(4) + [
    ("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {
            "node": DISK, "name": "cp1", "persistent": True,
            "disabled": False}},
        {"type": "blockdev-backup", "data": backup(4, False)[1]}]}),
    ("block-export-add", {"type": "nbd", "id": "libvirt-nbd-libvirt-4-format",
                          "node-name": "libvirt-4-format", "writable": False,
                          "name": "vda"}),
    # refused as QEMU refuses them while the backup runs
    ("block-export-add", {"type": "nbd", "id": "e2",
                          "node-name": "libvirt-4-format", "writable": False,
                          "name": "vda2", "bitmaps": ["cp1"]},
     "drain-events"),
    ("blockdev-del", {"node-name": "libvirt-4-format"}),
    ("query-block-exports", {}),
    ("query-block-jobs", {}),
    # the guest writes while the export is read
    io("write -P 0x33 0 64k"),
    io("write -P 0x44 8M 128k"),
    io("write -z 9M 64k"),
    io("write -P 0x45 40M 64k"),
    ("nbdinfo", ["--map", uri("vda")]),
    ("nbdinfo", ["--list", uri("")]),
    ("nbdcopy", [uri("vda"), "$T/full.raw"]),
    ("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", "$T/full.raw",
                  "$T/orig.qcow2"]),
    ("qemu-img", ["compare", "-f", "raw", "-F", "qcow2",
                  uri("vda"), "$T/orig.qcow2"]),
    io("write -P 0x34 0 1M"),
    ("qemu-io", ["-r", "-f", "raw", "-c", "read -P 0x11 0 1M", "-c",
                 "read -P 0x22 8M 2M", "-c", "read -P 0 40M 64k",
                 uri("vda")]),
    ("query-named-block-nodes", {"flat": True}),
    ("query-block", {}),
] + teardown(4) + [
    ("query-named-block-nodes", {"flat": True}),
    # a second, incremental backup since checkpoint cp1
    io("write -P 0x55 2M 64k"),
] + scratch(5) + [
    ("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {
            "node": DISK, "name": "cp2", "persistent": True,
            "disabled": False}},
        {"type": "block-dirty-bitmap-add", "data": {
            "node": "libvirt-5-format", "name": "backup-vda",
            "persistent": False, "disabled": True,
            "granularity": 65536}},
        {"type": "block-dirty-bitmap-merge", "data": {
            "node": "libvirt-5-format", "target": "backup-vda",
            "bitmaps": [{"node": DISK, "name": "cp1"}]}},
        {"type": "blockdev-backup", "data": backup(5, True)[1]}]}),
    ("block-export-add", {"type": "nbd", "id": "libvirt-nbd-libvirt-5-format",
                          "node-name": "libvirt-5-format", "writable": False,
                          "name": "vda", "bitmaps": ["backup-vda"]}),
    io("write -P 0x66 2M 4k"),
    io("write -P 0x67 30M 64k"),
    ("nbdinfo", ["--map=qemu:dirty-bitmap:backup-vda", uri("vda")]),
    ("nbdinfo", ["--map", uri("vda")]),
    ("qemu-io", ["-r", "-f", "raw", "-c", "read -P 0x55 2M 64k", "-c",
                 "read -P 0x34 0 1M", "-c", "read -P 0 30M 64k",
                 uri("vda")]),
    ("query-named-block-nodes", {"flat": True}),
] + teardown(5) + [
    ("block-dirty-bitmap-remove", {"node": DISK, "name": "cp1"}),
    ("query-named-block-nodes", {"flat": True}),
]

# QEMU 7.2's fleecing without a backing on the target: a copy-before-write
# node read through snapshot-access, exported
SA = [
    ("blockdev-add", {"driver": "snapshot-access", "node-name": "bad",
                      "file": "src"}),
    ("hmp", 'qemu-io bad "read 0 4k"'),
    ("hmp", 'qemu-io bad "write 0 4k"'),
    ("blockdev-del", {"node-name": "bad"}),
    ("blockdev-add", {"driver": "snapshot-access", "node-name": "x"}),
    ("block-dirty-bitmap-add", {"node": "src", "name": "b0",
                                "granularity": 65536}),
    ("hmp", 'qemu-io src "write -P 0x1 0 64k"'),
    ("hmp", 'qemu-io src "write -P 0x1 2M 64k"'),
    ("block-dirty-bitmap-disable", {"node": "src", "name": "b0"}),
    # with "bitmap": only its clusters are in the snapshot
    ("blockdev-add", {"driver": "copy-before-write", "node-name": "cbw",
                      "file": "src", "target": "tgt",
                      "bitmap": {"node": "src", "name": "b0"}}),
    ("blockdev-add", {"driver": "snapshot-access", "node-name": "acc",
                      "file": "cbw", "discard": "unmap"}),
    ("hmp", 'qemu-io acc "read -P 0x1 0 64k"'),
    ("hmp", 'qemu-io acc "read 64k 64k"'),
    ("hmp", 'qemu-io acc "read -P 0x1 2M 64k"'),
    ("hmp", 'qemu-io cbw "write -P 0x2 0 4k"'),
    ("hmp", 'qemu-io acc "read -P 0x1 0 64k"'),
    ("hmp", 'qemu-io acc "write 0 4k"'),
    ("hmp", 'qemu-io acc "write -z 0 4k"'),
    ("hmp", 'qemu-io acc "alloc 2M 64k"'),
    ("hmp", 'qemu-io acc "map"'),
    ("hmp", 'qemu-io acc "discard 0 64k"'),
    ("hmp", 'qemu-io acc "read 0 64k"'),
    ("hmp", 'qemu-io acc "flush"'),
    ("query-named-block-nodes", {"flat": True}),
    ("blockdev-del", {"node-name": "cbw"}),
    ("blockdev-del", {"node-name": "acc"}),
    ("blockdev-del", {"node-name": "cbw"}),
    ("block-dirty-bitmap-remove", {"node": "src", "name": "b0"}),
    # without: all of it, exported and read while the source changes
    ("blockdev-add", {"driver": "copy-before-write", "node-name": "cbw",
                      "file": "src", "target": "tgt"}),
    ("blockdev-add", {"driver": "snapshot-access", "node-name": "acc",
                      "file": "cbw", "discard": "unmap"}),
    ("hmp", 'qemu-io cbw "write -P 0x2 0 4k"'),
    ("hmp", 'qemu-io cbw "write -P 0x2 2M 4k"'),
    ("hmp", 'qemu-io cbw "write -P 0x2 1M 4k"'),
    ("hmp", 'qemu-io acc "map"'),
    ("nbd-server-start", {"addr": {"type": "unix",
                                   "data": {"path": "$T/nbd.sock"}}}),
    ("block-export-add", {"type": "nbd", "id": "e", "node-name": "acc",
                          "name": "acc"}),
    # the copied zero cluster at 1M: QEMU 7.2 reports the source's new
    # data there (its hbitmap_status() bug), qmpd the target's zeroes
    ("nbdinfo", ["--map", uri("acc")], "qemu-7.2-bug",
     "         0     1048576    0  data\n"
     "   1048576     1048576    3  hole,zero\n"
     "   2097152     1048576    0  data\n"
     "   3145728     1048576    3  hole,zero\n"),
    ("hmp", 'qemu-io cbw "write -P 0x3 0 4M"'),
    ("nbdcopy", [uri("acc"), "$T/acc.raw"]),
    ("qemu-io", ["-f", "raw", "-c", "read -P 0x5a 0 1M", "-c",
                 "read -P 0 1M 1M", "-c", "read -P 0x6b 2M 1M", "-c",
                 "read -P 0 3M 1M", "$T/acc.raw"]),
    ("qemu-io", ["-r", "-f", "raw", "-c", "discard 64k 64k",
                 "-c", "discard 2M 128k", uri("acc")]),
    ("hmp", 'qemu-io acc "read 64k 64k"'),
    ("hmp", 'qemu-io acc "read 2M 4k"'),
    ("hmp", 'qemu-io acc "read -P 0x5a 0 64k"'),
    ("hmp", 'qemu-io acc "read -P 0 1M 4k"'),
    ("nbdinfo", ["--map", uri("acc")]),
    # hard: nbdinfo's connection may not be seen closed yet (both)
    ("block-export-del", {"id": "e", "mode": "hard"}),
    ("query-named-block-nodes", {"flat": True}),
    ("blockdev-del", {"node-name": "acc"}),
    ("blockdev-del", {"node-name": "cbw"}),
]


def masked(r):
    """What two correct implementations may differ in: auto-generated
    node names, on-disk sizes and the job's progress counters."""
    if isinstance(r, dict):
        out = {}
        for k, v in r.items():
            if k in ("actual-size",):
                v = "SIZE"
            elif k == "node-name" and isinstance(v, str) \
                    and v.startswith("#block"):
                v = "#block"
            out[k] = masked(v)
        return out
    if isinstance(r, list):
        return [masked(x) for x in r]
    return r


def wait_status(c, job, status):
    """Read messages until @job's JOB_STATUS_CHANGE to @status."""
    while True:
        for e in c.events:
            if e["event"] == "JOB_STATUS_CHANGE" and \
                    e["data"] == {"id": job, "status": status}:
                return
        m = c.recv(60)
        assert "event" in m, m
        c.events.append(m)


def printed(q, seen):
    """What @q printed on stdout after its first @seen bytes: qemu-io's
    output, without timing lines.  Both print it before they reply, so
    it is in the pipe: wait until the reader thread has taken all of it
    (nothing left to read, the text unchanged a moment later)."""
    deadline = time.time() + 30
    while True:
        n = len(q.stdout_data)
        left = fcntl.ioctl(q.proc.stdout.fileno(), termios.FIONREAD,
                           b"\0\0\0\0")
        time.sleep(0.02)
        if left == b"\0\0\0\0" and len(q.stdout_data) == n:
            break
        assert time.time() < deadline, "stdout still growing"
    return re.sub(r"(?m)^.* ops; .*\n", "",
                  bytes(q.stdout_data[seen:]).decode(errors="replace"))


def scenario(qemu, args, steps):
    d = tempfile.mkdtemp(prefix="qmpd-pull-compat-")
    try:
        prepare(d)
        q, c = reference.start(subst(args, d), qemu=qemu)
        out = []
        seen = 0
        try:
            for step in steps:
                name, a = step[0], step[1]
                a = subst(a, d)
                if name in ("nbdinfo", "qemu-io", "nbdcopy", "qemu-img"):
                    r = tool(name, *a)
                elif name == "hmp":
                    r = c.execute("human-monitor-command",
                                  {"command-line": a})
                    r["stdout"] = printed(q, seen)
                    seen = len(q.stdout_data)
                elif name == "wait":
                    wait_status(c, a, step[2])
                    r = None
                else:
                    r = c.execute(name, a)
                if isinstance(r, dict):
                    r.pop("id", None)
                if "async" in step[2:]:
                    # its events are the wait's that follows
                    events = []
                else:
                    events = [{k: v for k, v in e.items()
                               if k != "timestamp"} for e in c.events]
                    c.events.clear()
                out.append((name, json.dumps(masked(unsubst(r, d)),
                                             sort_keys=True), events))
            c.execute("quit")
            q.wait(60)
        finally:
            q.close()
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def compare(args, steps):
    theirs = scenario(True, args, steps)
    ours = scenario(False, args, steps)
    bad = []
    for i, (step, t, o) in enumerate(zip(steps, theirs, ours)):
        if "drain-events" in step[2:]:
            # QEMU drains the node (pausing and resuming the job) for
            # an export it then refuses; qmpd refuses before any drain
            t, o = t[:2], o[:2]
        if "qemu-7.2-bug" in step[2:]:
            assert json.loads(o[1])["out"] == step[3], (step, o)
            continue
        if t != o:
            bad.append("step %d %s %s:\n  qemu: %s\n  qmpd: %s"
                       % (i, step[0], json.dumps(step[1]), t, o))
        if step[0] in ("nbdcopy", "qemu-img"):
            # alike is not enough: the copies must be the snapshot
            r = json.loads(o[1])
            assert r["exit"] == 0, (step, r)
            if step[1][0] == "compare":
                assert r["out"] == "Images are identical.\n", (step, r)
    assert not bad, "\n".join(bad)


def test_pull_backup():
    """libvirt's pull backup, full then incremental, alike on both."""
    need_qemu()
    need_qemu_utils()
    need_nbd_tools()
    compare(["-drive", "file=$T/disk.qcow2,format=qcow2,if=none,id=drive0,"
             "node-name=%s,file.node-name=libvirt-1-storage" % DISK], PULL)


def test_snapshot_access():
    """snapshot-access over copy-before-write, alike on both."""
    need_qemu()
    need_qemu_utils()
    need_nbd_tools()
    compare(["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "src",
        "file": {"driver": "file", "filename": "$T/src.qcow2"}}),
        "-blockdev", json.dumps({
            "driver": "qcow2", "node-name": "tgt",
            "file": {"driver": "file", "filename": "$T/tgt.qcow2"}})], SA)


if __name__ == "__main__":
    run([test_pull_backup, test_snapshot_access])
