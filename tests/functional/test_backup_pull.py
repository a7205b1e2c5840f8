#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Pull backups read over NBD while the guest writes, as libvirt runs
them (shared/reference/libvirt-flows.md B) and as QEMU 7.2's
snapshot-access fleecing does.  The guest's workload writes its virtio
disk throughout; the point in time is the guest paused, where
__com.qmpd_guest-digest hashes the disk as the device reads it.  What
nbdcopy and qemu-img read from the export while the guest goes on
writing must hash the same: the disk at the backup's start.  The
incremental round proves its dirty bitmap (qemu:dirty-bitmap:backup-vda
read with nbdinfo): the first backup patched with only the extents the
bitmap names equals the disk at the second start.  The snapshot-access
export is also read with the guest's writes held while a snapshot read
of the same clusters is in flight, and discarded through NBD.  A
cancel while a guest write is still on its way through the backup's
filter ends the job only once that write has.  The replies and events are QEMU 7.2's (tests/compat/test_backup_pull_compat.py
runs the same commands on both).  Skips (77) without qemu-img or
libnbd's tools.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import NEED_QEMU_UTILS, Qmpd, Skip, run, wait_until  # noqa: E402
from images import check_clean, img, qemu_io, with_dir  # noqa: E402
from test_mirror import names, until_event, until_status  # noqa: E402

MiB = 1 << 20
SIZE = 64 * MiB
DISK = "libvirt-1-format"
JOB = "backup-vda-" + DISK


def need_nbd_tools():
    for t in ("nbdinfo", "nbdcopy", "qemu-img"):
        if not shutil.which(t):
            raise Skip("%s not installed" % t, NEED_QEMU_UTILS)


def sh(*args):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def guest(d, debug=False):
    """A pc guest whose virtio disk vd0 is a 64 MiB qcow2 with data, as
    libvirt starts it (-blockdev storage and format nodes; with @debug a
    blkdebug node "dbg" between them)."""
    disk = os.path.join(d, "disk.qcow2")
    img("create", "-q", "-f", "qcow2", disk, "64M")
    qemu_io(disk, "write -P 0x11 0 4M", "write -P 0x22 20M 2M",
            "write -z 30M 1M")
    nodes = [{"driver": "file", "node-name": "libvirt-1-storage",
              "filename": disk}]
    if debug:
        nodes.append({"driver": "blkdebug", "node-name": "dbg",
                      "image": "libvirt-1-storage"})
    nodes.append({"driver": "qcow2", "node-name": DISK,
                  "file": nodes[-1]["node-name"]})
    args = ["-M", "pc", "-m", "16"]
    for n in nodes:
        args += ["-blockdev", json.dumps(n)]
    q = Qmpd(args + ["-device", "virtio-blk-pci,drive=%s,id=vd0" % DISK])
    return q, disk


def ok(c, name, args):
    """@name with @args (which hold a "name"); its return."""
    r = c.execute(name, args)
    assert "return" in r, (name, args, r)
    return r["return"]


def written(c):
    return c.cmd("__com.qmpd_query-guest-workload")["disk-written"]


def write_more(c, n):
    """Wait until the running guest has written @n more bytes."""
    start = written(c)
    wait_until("%d bytes more written" % n, lambda: written(c) >= start + n)


def pause(c):
    """Pause the guest: its disk's digest now (the point in time)."""
    c.cmd("stop")
    until_event(c, "STOP")
    return c.cmd("__com.qmpd_guest-digest")["disks"][0]["digest"]


def writing_then_paused(c, seed):
    """The guest's workload writes its disk (8 MiB/s, @seed) for a
    while; then the guest pauses: its disk's digest."""
    c.cmd("__com.qmpd_guest-workload", **{
        "disk-rate": 8 * MiB, "device": "vd0", "seed": seed})
    write_more(c, MiB)
    return pause(c)


def resume(c):
    c.cmd("cont")
    until_event(c, "RESUME")


def scratch(c, d, n):
    """libvirt's fleecing scratch: blockdev-create'd qcow2 over the disk."""
    path = os.path.join(d, "scratch%d.qcow2" % n)
    open(path, "w").close()
    st, fmt = "libvirt-%d-storage" % n, "libvirt-%d-format" % n
    c.cmd("blockdev-add", **{"driver": "file", "node-name": st,
                             "filename": path, "auto-read-only": True,
                             "discard": "unmap"})
    c.cmd("blockdev-create", **{"job-id": "create-" + fmt, "options": {
        "driver": "qcow2", "file": st, "size": SIZE, "cluster-size": 65536,
        "backing-file": os.path.join(d, "disk.qcow2"),
        "backing-fmt": "qcow2"}})
    until_status(c, "create-" + fmt, "concluded")
    c.cmd("job-dismiss", id="create-" + fmt)
    until_status(c, "create-" + fmt, "null")
    c.cmd("blockdev-add", **{"node-name": fmt, "read-only": False,
                             "driver": "qcow2", "file": st, "backing": DISK})
    return fmt


def begin(c, d, n, checkpoint, since=None):
    """libvirt's backup-begin in pull mode; the export's URI."""
    fmt = scratch(c, d, n)
    sock = os.path.join(d, "nbd.sock")
    c.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}})
    actions = [{"type": "block-dirty-bitmap-add", "data": {
        "node": DISK, "name": checkpoint, "persistent": True,
        "disabled": False}}]
    if since:
        actions += [
            {"type": "block-dirty-bitmap-add", "data": {
                "node": fmt, "name": "backup-vda", "persistent": False,
                "disabled": True, "granularity": 65536}},
            {"type": "block-dirty-bitmap-merge", "data": {
                "node": fmt, "target": "backup-vda",
                "bitmaps": [{"node": DISK, "name": since}]}}]
    actions.append({"type": "blockdev-backup", "data": {
        "device": DISK, "job-id": JOB, "target": fmt, "sync": "none",
        "auto-finalize": True, "auto-dismiss": False}})
    c.cmd("transaction", actions=actions)
    evs = until_status(c, JOB, "running")
    assert names(evs) == ["created", "running"], names(evs)
    exp = {"type": "nbd", "id": "libvirt-nbd-" + fmt, "node-name": fmt,
           "writable": False, "name": "vda"}
    if since:
        exp["bitmaps"] = ["backup-vda"]
    ok(c, "block-export-add", exp)
    return "nbd+unix:///vda?socket=" + sock


def end(c, n):
    """libvirt's end of a pull backup: cancel, dismiss, stop, delete."""
    c.cmd("block-job-cancel", device=JOB, force=True)
    evs = until_status(c, JOB, "concluded")
    assert names(evs) == ["aborting", "BLOCK_JOB_CANCELLED",
                          "concluded"], names(evs)
    end_dismissed(c, n)


def end_dismissed(c, n):
    job = [j for j in c.cmd("query-jobs") if j["id"] == JOB][0]
    # as QEMU's: a cancelled job's error
    assert job["status"] == "concluded" \
        and job["error"] == "Operation canceled", job
    c.cmd("job-dismiss", id=JOB)
    c.cmd("nbd-server-stop")
    until_event(c, "BLOCK_EXPORT_DELETED")
    c.cmd("blockdev-del", **{"node-name": "libvirt-%d-format" % n})
    c.cmd("blockdev-del", **{"node-name": "libvirt-%d-storage" % n})


def dirty_extents(uri):
    out = json.loads(sh("nbdinfo", "--json",
                        "--map=qemu:dirty-bitmap:backup-vda", uri))
    return [(e["offset"], e["length"]) for e in out if e["type"] & 1]


@with_dir("qmpd-pull-")
def test_pull_full_then_incremental(d):
    need_nbd_tools()
    q, disk = guest(d)
    with q:
        c = q.connect()
        at_start = writing_then_paused(c, 7)
        uri = begin(c, d, 4, "cp1")
        resume(c)
        # read while the guest writes, twice: both are the start's disk
        full = os.path.join(d, "full.raw")
        sh("nbdcopy", uri, full)
        write_more(c, 2 * MiB)
        assert sha(full) == at_start
        again = os.path.join(d, "again.raw")
        sh("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, again)
        assert sha(again) == at_start
        # the guest's writes did reach the disk, and their old data the
        # scratch
        assert c.cmd("__com.qmpd_guest-digest")["disks"][0]["digest"] \
            != at_start
        scratch_node = [n for n in c.cmd("query-named-block-nodes")
                        if n["node-name"] == "libvirt-4-storage"][0]
        assert scratch_node["image"]["actual-size"] > 256 << 10, \
            scratch_node
        end(c, 4)

        # incremental: what changed since cp1, by the bitmap alone
        write_more(c, MiB)
        at_second = pause(c)
        uri = begin(c, d, 5, "cp2", since="cp1")
        resume(c)
        extents = dirty_extents(uri)
        assert extents, "nothing dirty since cp1"
        inc = os.path.join(d, "inc.raw")
        sh("nbdcopy", uri, inc)
        write_more(c, MiB)
        assert sha(inc) == at_second
        with open(full, "r+b") as f, open(inc, "rb") as g:
            for off, length in extents:
                g.seek(off)
                f.seek(off)
                f.write(g.read(length))
        assert sha(full) == at_second
        # the bitmap is not all of it
        assert sum(n for _, n in extents) < SIZE // 2, extents
        end(c, 5)
        c.cmd("__com.qmpd_guest-workload", running=False)
        ok(c, "block-dirty-bitmap-remove", {"node": DISK, "name": "cp1"})
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    check_clean(disk)
    info = json.loads(img("info", "--output=json", disk))
    bitmaps = info["format-specific"]["data"].get("bitmaps", [])
    assert [b["name"] for b in bitmaps] == ["cp2"], bitmaps


def hmp(c, line):
    return c.cmd("human-monitor-command", **{"command-line": line})


@with_dir("qmpd-pull-")
def test_cancel_waits_for_guest_write(d):
    """A guest write whose old data is copied but which is itself still
    on its way through the filter when libvirt cancels: the job ends
    (concluded) only once that write has, as QEMU's drained filter
    drop, so that libvirt's blockdev-del of the scratch right after
    succeeds."""
    need_nbd_tools()
    q, disk = guest(d, debug=True)
    with q:
        c = q.connect()
        begin(c, d, 4, "cp1")
        assert hmp(c, 'qemu-io dbg "break write_aio A"') == ""
        assert hmp(c, 'qemu-io -d vd0/virtio-backend '
                   '"aio_write -P 0x77 0 4k"') == ""
        assert hmp(c, 'qemu-io dbg "wait_break A"') == ""
        c.cmd("block-job-cancel", device=JOB, force=True)
        # the copy is done; the guest's write holds the job's end (QEMU
        # shows it aborting meanwhile, qmpd still running)
        job = [j for j in c.cmd("query-jobs") if j["id"] == JOB][0]
        assert job["status"] == "running", job
        assert hmp(c, 'qemu-io dbg "resume A"') == ""
        evs = until_status(c, JOB, "concluded")
        # (after the pause and resume of qemu-io's drain)
        assert names(evs)[-3:] == ["aborting", "BLOCK_JOB_CANCELLED",
                                   "concluded"], names(evs)
        end_dismissed(c, 4)
        hmp(c, 'qemu-io -d vd0/virtio-backend "aio_flush"')
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    qemu_io(disk, "read -P 0x77 0 4k", "read -P 0x11 4k 4092k")
    # the old data reached the scratch before the write went on
    qemu_io(os.path.join(d, "scratch4.qcow2"), "read -P 0x11 0 64k")


@with_dir("qmpd-pull-")
def test_snapshot_read_holds_guest_write(d):
    """A snapshot-access read of the source (a cluster not copied yet)
    is held by a blkdebug breakpoint; a guest write there meanwhile
    copies the old data, then waits for that read before it reaches
    the source (QEMU's frozen reads), so the read returns the old
    data; once it has, the write goes on."""
    need_nbd_tools()
    src, tgt = os.path.join(d, "src.qcow2"), os.path.join(d, "tgt.qcow2")
    for f in (src, tgt):
        img("create", "-q", "-f", "qcow2", f, "4M")
    qemu_io(src, "write -P 0x11 0 4M")
    nodes = [{"driver": "file", "node-name": "srcfile", "filename": src},
             {"driver": "blkdebug", "node-name": "dbg", "image": "srcfile"},
             {"driver": "qcow2", "node-name": "src", "file": "dbg"},
             {"driver": "qcow2", "node-name": "tgt",
              "file": {"driver": "file", "filename": tgt}},
             {"driver": "copy-before-write", "node-name": "cbw",
              "file": "src", "target": "tgt"},
             {"driver": "snapshot-access", "node-name": "acc",
              "file": "cbw"}]
    args = ["-M", "none"]
    for n in nodes:
        args += ["-blockdev", json.dumps(n)]
    with Qmpd(args) as q:
        c = q.connect()
        assert hmp(c, 'qemu-io dbg "break read_aio A"') == ""
        assert hmp(c, 'qemu-io acc "aio_read -P 0x11 0 64k"') == ""
        assert hmp(c, 'qemu-io dbg "wait_break A"') == ""
        assert hmp(c, 'qemu-io cbw "aio_write -P 0x22 0 4k"') == ""
        # the old data was copied: the cluster is done ("access" and
        # "done", the filter's bitmaps) ...
        wait_until("the copy done", lambda: [
            b["count"] for b in [n for n in c.cmd("query-named-block-nodes")
                                 if n["node-name"] == "cbw"][0]
            ["dirty-bitmaps"]] == [4 << 20, 64 << 10])
        # ... but the write waits for the read: the source is unchanged
        assert hmp(c, 'qemu-io src "read -P 0x11 0 64k"') == ""
        assert hmp(c, 'qemu-io dbg "resume A"') == ""
        assert hmp(c, 'qemu-io cbw "aio_flush"') == ""
        assert hmp(c, 'qemu-io src "read -P 0x22 0 4k"') == ""
        # the snapshot still reads the old data, now from the target
        assert hmp(c, 'qemu-io acc "read -P 0x11 0 64k"') == ""
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
        out = q.stdout_text()
    assert "Pattern verification failed" not in out, out
    assert out.count("read 65536/65536 bytes at offset 0") == 3, out
    qemu_io(src, "read -P 0x22 0 4k", "read -P 0x11 4k 4092k")
    qemu_io(tgt, "read -P 0x11 0 64k")


def snapshot_export(c, d, writable=False):
    """QEMU 7.2's fleecing without a backing: blockdev-backup sync=none
    into a plain qcow2 with its filter named, snapshot-access over the
    filter, exported; the export's URI."""
    tmp = os.path.join(d, "tmp.qcow2")
    img("create", "-q", "-f", "qcow2", tmp, "64M")
    c.cmd("blockdev-add", **{"driver": "qcow2", "node-name": "tmp",
                             "discard": "unmap", "file": {
                                 "driver": "file", "filename": tmp}})
    c.cmd("blockdev-backup", **{"device": DISK, "target": "tmp",
                                "sync": "none", "job-id": "fleece",
                                "filter-node-name": "fl"})
    c.cmd("blockdev-add", **{"driver": "snapshot-access", "node-name": "acc",
                             "file": "fl", "discard": "unmap"})
    sock = os.path.join(d, "nbd.sock")
    c.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}})
    ok(c, "block-export-add", {"type": "nbd", "id": "e",
                               "node-name": "acc", "name": "acc",
                               "writable": writable})
    return "nbd+unix:///acc?socket=" + sock


def fleece_end(c):
    c.cmd("block-export-del", id="e")
    until_event(c, "BLOCK_EXPORT_DELETED")
    c.cmd("blockdev-del", **{"node-name": "acc"})
    c.cmd("block-job-cancel", device="fleece", force=True)
    until_status(c, "fleece", "null")
    c.cmd("blockdev-del", **{"node-name": "tmp"})
    c.cmd("nbd-server-stop")


@with_dir("qmpd-pull-")
def test_snapshot_access_under_writes(d):
    need_nbd_tools()
    q, disk = guest(d)
    with q:
        c = q.connect()
        at_start = writing_then_paused(c, 3)
        uri = snapshot_export(c, d, writable=True)
        resume(c)
        out = os.path.join(d, "acc.raw")
        sh("nbdcopy", uri, out)
        write_more(c, 2 * MiB)
        assert sha(out) == at_start
        # holes and zeroes as the snapshot has them, data where the
        # guest wrote since: the map still covers the whole disk
        m = json.loads(sh("nbdinfo", "--json", "--map", uri))
        assert sum(e["length"] for e in m) == SIZE, m
        assert any(e["type"] == 3 for e in m), m
        sh("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out)
        assert sha(out) == at_start
        # a discard gives the clusters up: no longer readable
        sh("qemu-io", "-f", "raw", "-c", "discard 0 4M", uri)
        p = subprocess.run(["qemu-io", "-f", "raw", "-c", "read 0 64k",
                            uri], capture_output=True, text=True)
        assert "read failed: Invalid argument" in p.stdout + p.stderr, p
        sh("qemu-io", "-f", "raw", "-c", "read 4M 60M", uri)
        fleece_end(c)
        c.cmd("__com.qmpd_guest-workload", running=False)
        c.cmd("quit")
        assert q.wait() == 0, q.stderr_text()
    check_clean(disk)
    check_clean(os.path.join(d, "tmp.qcow2"))


if __name__ == "__main__":
    run([test_pull_full_then_incremental, test_cancel_waits_for_guest_write,
         test_snapshot_access_under_writes,
         test_snapshot_read_holds_guest_write])
