#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""block-stream on the seed chain base <- sn1 <- sn2, checked with qemu-img.

Each layer holds its own pattern at overlapping and separate offsets;
the guest (HMP qemu-io on drive0) writes before, during (the job paused)
and after the job.  Afterwards the guest-visible content must equal the
flattened chain from before plus the guest's writes, every image must
pass qemu-img check, and the chain must be what QEMU leaves.  Skips (77)
without qemu-img.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, wait_mid_copy  # noqa: E402
from images import (chain_of, check_images, img, need_tools,  # noqa: E402
                    qemu_io, same_content)

MiB = 1 << 20

# (layer, pattern, offset MiB, length MiB)
LAYOUT = [("base", 0x11, 0, 4), ("base", 0x12, 8, 1), ("base", 0x13, 30, 2),
          ("sn1", 0x21, 2, 4), ("sn1", 0x22, 20, 1), ("sn1", 0x23, 31, 2),
          ("sn2", 0x31, 5, 2), ("sn2", 0x32, 40, 1)]








def make_chain(d):
    paths = {n: os.path.join(d, n + ".qcow2") for n in ("base", "sn1", "sn2")}
    img("create", "-q", "-f", "qcow2", paths["base"], "64M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        paths["sn1"])
    img("create", "-q", "-f", "qcow2", "-b", "sn1.qcow2", "-F", "qcow2",
        paths["sn2"])
    for layer, pat, off, ln in LAYOUT:
        qemu_io(paths[layer], "write -P %d %dM %dM" % (pat, off, ln))
    return paths


def flat_copy(paths, d):
    """What the guest sees now, as a raw file."""
    out = os.path.join(d, "expect.raw")
    img("convert", "-O", "raw", paths["sn2"], out)
    return out


def apply_write(raw, pat, off, ln):
    with open(raw, "r+b") as f:
        f.seek(off)
        f.write(bytes([pat]) * ln)








def hmp_io(c, cmd):
    assert c.cmd("human-monitor-command", **{
        "command-line": 'qemu-io drive0 "%s"' % cmd}) == ""


def statuses(c, job, until="null"):
    seen = []
    while not seen or seen[-1] != until:
        e = c.event("JOB_STATUS_CHANGE", timeout=60)
        if e["data"]["id"] == job:      # other jobs' events are skipped
            seen.append(e["data"]["status"])
    return seen


def node_of(c, filename, drv="qcow2"):
    return [n["node-name"] for n in c.cmd("query-named-block-nodes")
            if n["file"].endswith(filename) and n["drv"] == drv][0]


class Setup:
    def __init__(self, extra=()):
        need_tools()
        self.dir = tempfile.mkdtemp(prefix="qmpd-stream-")
        self.paths = make_chain(self.dir)
        self.expect = flat_copy(self.paths, self.dir)
        self.extra = list(extra)

    def start(self, args=None):
        return Qmpd(["-M", "none"] + (args or [
            "-drive", "file=%s,if=none,id=drive0,format=qcow2"
            % self.paths["sn2"]]) + self.extra)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def test_stream_to_base_with_guest_writes():
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            base = node_of(c, "base.qcow2")
            hmp_io(c, "write -P 0x41 1M 64k")          # before
            apply_write(s.expect, 0x41, 1 * MiB, 65536)
            c.cmd("block-stream", device="drive0", **{"base-node": base},
                  speed=1)
            c.cmd("block-job-pause", device="drive0")
            # during: over data the job still has to copy from sn1
            for pat, off in ((0x42, 21 * MiB + 4096), (0x43, 3 * MiB),
                             (0x44, 31 * MiB + 512)):
                hmp_io(c, "write -P %d %d 4k" % (pat, off))
                apply_write(s.expect, pat, off, 4096)
            jobs = c.cmd("query-block-jobs")
            assert jobs[0]["device"] == "drive0" and jobs[0]["paused"]
            assert jobs[0]["type"] == "stream" and jobs[0]["len"] == 64 * MiB
            c.cmd("block-job-set-speed", device="drive0", speed=0)
            c.cmd("block-job-resume", device="drive0")
            seen = statuses(c, "drive0")
            assert seen[-4:] == ["waiting", "pending", "concluded", "null"], \
                seen
            done = c.event("BLOCK_JOB_COMPLETED")["data"]
            assert done == {"type": "stream", "device": "drive0",
                            "len": 64 * MiB, "offset": 64 * MiB,
                            "speed": 0}, done
            ins = c.cmd("query-block")[0]["inserted"]
            assert ins["backing_file_depth"] == 1, ins
            assert ins["backing_file"] == s.paths["base"], ins
            hmp_io(c, "write -P 0x45 40M 4k")           # after
            apply_write(s.expect, 0x45, 40 * MiB, 4096)
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2", "base.qcow2"]
        info = json.loads(img("info", "--output=json", s.paths["sn2"]))
        assert info["backing-filename"] == s.paths["base"], info
        assert info["backing-filename-format"] == "qcow2"
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_stream_whole_chain():
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            c.cmd("block-stream", device="drive0", **{"job-id": "pull0",
                                                      "auto-dismiss": False})
            seen = statuses(c, "pull0", until="concluded")
            assert seen == ["waiting", "pending", "concluded"] or \
                seen == ["created", "running", "waiting", "pending",
                         "concluded"], seen
            jobs = c.cmd("query-jobs")
            assert jobs == [{"id": "pull0", "type": "stream",
                             "status": "concluded",
                             "current-progress": 64 * MiB,
                             "total-progress": 64 * MiB}], jobs
            c.cmd("job-dismiss", id="pull0")
            assert c.cmd("query-block")[0]["inserted"][
                "backing_file_depth"] == 0
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2"]
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_finalize_and_cancel():
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            c.cmd("block-stream", device="drive0", **{"auto-finalize": False})
            statuses(c, "drive0", until="pending")
            assert c.event("BLOCK_JOB_PENDING")["data"] == {
                "type": "stream", "id": "drive0"}
            # nothing changed before finalize
            assert c.cmd("query-block")[0]["inserted"][
                "backing_file_depth"] == 2
            cls, desc = c.error("block-job-dismiss", id="drive0")
            assert desc == "Job 'drive0' in state 'pending' cannot accept " \
                "command verb 'dismiss'", desc
            c.cmd("block-job-finalize", id="drive0")
            assert statuses(c, "drive0") == ["concluded", "null"]
            assert c.cmd("query-block")[0]["inserted"][
                "backing_file_depth"] == 0
            c.cmd("quit")
            q.wait()
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            c.cmd("block-stream", device="drive0", speed=1)
            c.cmd("block-job-cancel", device="drive0")
            seen = statuses(c, "drive0")
            assert seen[-3:] == ["aborting", "concluded", "null"], seen
            ev = c.event("BLOCK_JOB_CANCELLED")["data"]
            assert ev["type"] == "stream" and ev["device"] == "drive0", ev
            assert c.cmd("query-block")[0]["inserted"][
                "backing_file_depth"] == 2
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2", "sn1.qcow2",
                                            "base.qcow2"]
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_errors():
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            base = node_of(c, "base.qcow2")
            cases = [
                (dict(device="nosuch"),
                 "Cannot find device='nosuch' nor node-name='nosuch'"),
                (dict(device="drive0", base="x", **{"base-node": base}),
                 "'base' and 'base-node' cannot be specified at the same "
                 "time"),
                (dict(device="drive0", **{"base-node": "nosuch"}),
                 "Cannot find device='' nor node-name='nosuch'"),
                (dict(device="drive0", **{"backing-file": "x"}),
                 "backing file specified, but streaming the entire chain"),
                (dict(device="drive0", speed=-1),
                 "Parameter 'speed' expects a non-negative value"),
                (dict(device="drive0", **{"job-id": "1bad"}),
                 "Invalid job ID '1bad'"),
                (dict(device=base, **{"job-id": "j"}),
                 None),       # base has no backing: a job that copies nothing
            ]
            for args, msg in cases:
                r = c.execute("block-stream", args)
                if msg is None:
                    continue
                assert r.get("error", {}).get("desc") == msg, (args, r)
            # the job on base has nothing to copy: it ends by itself
            statuses(c, "j")
            c.events.clear()
            c.cmd("block-stream", device="drive0", speed=1)
            cls, desc = c.error("block-stream", device="drive0",
                                **{"job-id": "second"})
            assert desc.startswith("Node '") and desc.endswith(
                "' is busy: block device is in use by block job: stream"), \
                desc
            assert c.error("block-job-pause", device="nosuch") == (
                "DeviceNotActive", "Block job 'nosuch' not found")
            assert c.error("block-job-complete", device="drive0") == (
                "GenericError", "Job 'drive0' in state 'running' cannot "
                "accept command verb 'complete'")
            c.cmd("block-job-cancel", device="drive0", force=True)
            c.cmd("quit")
            q.wait()
    finally:
        s.close()


def blkdebug_top(s, rule):
    """sn2 through blkdebug (its writes fail by @rule), as node top; the
    backing is given, as a relative name cannot be resolved against a
    blkdebug file (QEMU's json: filename)."""
    return ["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "top",
        "file": {"driver": "blkdebug", "inject-error": [rule],
                 "image": {"driver": "file",
                           "filename": s.paths["sn2"]}},
        "backing": {"driver": "qcow2",
                    "file": {"driver": "file",
                             "filename": s.paths["sn1"]}}})]


def test_on_error_report():
    s = Setup()
    try:
        with s.start(blkdebug_top(s, {"event": "write_aio", "errno": 5})) \
                as q:
            c = q.connect()
            c.cmd("block-stream", device="top", **{"job-id": "j"})
            err = c.event("BLOCK_JOB_ERROR")["data"]
            assert err == {"device": "j", "operation": "read",
                           "action": "report"}, err
            done = c.event("BLOCK_JOB_COMPLETED", timeout=60)["data"]
            assert done["error"] == "Input/output error", done
            # the chain is unchanged
            n = [x for x in c.cmd("query-named-block-nodes")
                 if x["node-name"] == "top"][0]
            assert n["backing_file_depth"] == 2, n
            c.cmd("quit")
            q.wait()
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_on_error_ignore():
    """ignore goes on past each error; the job still fails at the end
    and leaves the chain (QEMU's stream)."""
    s = Setup()
    try:
        with s.start(blkdebug_top(s, {"event": "write_aio", "errno": 5})) \
                as q:
            c = q.connect()
            c.cmd("block-stream", device="top", **{"job-id": "j",
                                                   "on-error": "ignore"})
            done = c.event("BLOCK_JOB_COMPLETED", timeout=60)["data"]
            assert done["error"] == "Input/output error", done
            assert done["offset"] == done["len"], done    # went through
            errs = [e for e in c.events if e["event"] == "BLOCK_JOB_ERROR"]
            assert len(errs) > 1 and all(
                e["data"]["action"] == "ignore" for e in errs), errs
            n = [x for x in c.cmd("query-named-block-nodes")
                 if x["node-name"] == "top"][0]
            assert n["backing_file_depth"] == 2, n
            c.cmd("quit")
            q.wait()
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def stop_resume(errno, policy, io_status):
    s = Setup()
    try:
        with s.start(blkdebug_top(s, {"event": "write_aio", "errno": errno,
                                      "once": True})) as q:
            c = q.connect()
            c.cmd("block-stream", device="top", **{"job-id": "j",
                                                   "on-error": policy})
            err = c.event("BLOCK_JOB_ERROR")["data"]
            assert err == {"device": "j", "operation": "read",
                           "action": "stop"}, err
            deadline = time.time() + 30
            while c.cmd("query-block-jobs")[0]["status"] != "paused":
                assert time.time() < deadline, "the job did not pause"
                time.sleep(0.05)
            job = c.cmd("query-block-jobs")[0]
            assert job["io-status"] == io_status and job["paused"], job
            c.cmd("block-job-resume", device="j")
            for job in c.cmd("query-block-jobs"):      # may be done already
                assert job["io-status"] == "ok", job
            statuses(c, "j")
            done = c.event("BLOCK_JOB_COMPLETED")["data"]
            assert "error" not in done, done
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2"]
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_on_error_stop_resume():
    stop_resume(28, "enospc", "nospace")    # enospc stops on ENOSPC
    stop_resume(5, "stop", "failed")        # stop stops on anything


def test_on_error_enospc_reports_eio():
    s = Setup()
    try:
        with s.start(blkdebug_top(s, {"event": "write_aio", "errno": 5,
                                      "once": True})) as q:
            c = q.connect()
            c.cmd("block-stream", device="top", **{"job-id": "j",
                                                   "on-error": "enospc"})
            assert c.event("BLOCK_JOB_ERROR")["data"]["action"] == "report"
            done = c.event("BLOCK_JOB_COMPLETED", timeout=60)["data"]
            assert done["error"] == "Input/output error", done
            c.cmd("quit")
            q.wait()
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


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


def test_libvirt_blockpull():
    """virsh blockpull vda --base <base>: libvirt's exact sequence."""
    s = Setup()
    try:
        with Qmpd(["-M", "pc", "-S"] + libvirt_blockdevs(s)) as q:
            c = q.connect()
            job = "pull-vda-libvirt-1-format"
            c.cmd("block-stream", device="libvirt-1-format", **{
                "job-id": job, "base-node": "libvirt-3-format",
                "auto-finalize": True, "auto-dismiss": False})
            assert statuses(c, job, until="concluded")[-3:] == [
                "waiting", "pending", "concluded"]
            jobs = c.cmd("query-jobs")
            assert jobs[0]["id"] == job and "error" not in jobs[0], jobs
            c.cmd("job-dismiss", id=job)
            c.cmd("query-named-block-nodes", flat=True)
            c.cmd("blockdev-del", **{"node-name": "libvirt-2-format"})
            c.cmd("blockdev-del", **{"node-name": "libvirt-2-storage"})
            names = sorted(n["node-name"]
                           for n in c.cmd("query-named-block-nodes"))
            assert names == ["libvirt-1-format", "libvirt-1-storage",
                             "libvirt-3-format", "libvirt-3-storage"], names
            blk = c.cmd("query-block")[0]
            assert blk["inserted"]["node-name"] == "libvirt-1-format"
            assert blk["inserted"]["backing_file_depth"] == 1
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2", "base.qcow2"]
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_quit_mid_stream():
    """quit cancels a running job first (QEMU's order), keeps every
    acknowledged guest write, and the events still reach the client."""
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            c.cmd("block-stream", device="drive0", speed=1,
                  **{"auto-dismiss": False})
            hmp_io(c, "write -P 0x55 10M 64k")
            apply_write(s.expect, 0x55, 10 * MiB, 65536)
            c.cmd("quit")
            names = []
            try:
                while True:
                    m = c.recv(10)
                    names.append(m.get("event") or "reply")
                    if m.get("event") == "JOB_STATUS_CHANGE":
                        names[-1] += ":" + m["data"]["status"]
            except (EOFError, OSError):
                pass
            assert "BLOCK_JOB_CANCELLED" in names, names
            assert names.index("JOB_STATUS_CHANGE:concluded") < \
                names.index("JOB_STATUS_CHANGE:null"), names
            q.wait()
        check_images(s.paths.values())
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def test_hmp_job_commands():
    """The human monitor's job commands, as QEMU prints them."""
    s = Setup()
    try:
        with s.start() as q:
            c = q.connect()
            assert hmp_line(c, "info block-jobs") == "No active jobs\r\n"
            assert hmp_line(c, "block_stream drive0 1") == ""
            assert hmp_line(c, "block_job_pause drive0") == ""
            assert hmp_line(c, "info block-jobs").startswith(
                "Streaming device drive0: Completed ")
            assert hmp_line(c, "block_job_cancel drive0") == (
                "Error: The block job for device 'drive0' is currently "
                "paused\r\n")
            assert hmp_line(c, "block_job_set_speed drive0 0") == ""
            assert hmp_line(c, "block_job_resume drive0") == ""
            statuses(c, "drive0")
            assert hmp_line(c, "block_job_complete drive0") == (
                "Error: Block job 'drive0' not found\r\n")
            c.cmd("quit")
            q.wait()
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2"]
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


def hmp_line(c, line):
    return c.cmd("human-monitor-command", **{"command-line": line})


def test_kill9_mid_stream():
    s = Setup()
    try:
        q = s.start()
        c = q.connect()
        c.cmd("block-stream", device="drive0", speed=8 * MiB)
        wait_mid_copy(c, "drive0")
        q.kill9()
        q.close()
        for p in s.paths.values():
            r = json.loads(subprocess.run(
                ["qemu-img", "check", "--output=json", p],
                capture_output=True, text=True).stdout)
            assert not r.get("corruptions") and not r.get("check-errors"), r
        # still the old chain, still the guest's data
        assert chain_of(s.paths["sn2"]) == ["sn2.qcow2", "sn1.qcow2",
                                            "base.qcow2"]
        same_content(s.paths["sn2"], s.expect)
    finally:
        s.close()


if __name__ == "__main__":
    run([test_stream_to_base_with_guest_writes, test_stream_whole_chain,
         test_finalize_and_cancel, test_errors, test_on_error_report,
         test_on_error_ignore, test_on_error_stop_resume,
         test_on_error_enospc_reports_eio, test_libvirt_blockpull,
         test_quit_mid_stream, test_hmp_job_commands,
         test_kill9_mid_stream])
