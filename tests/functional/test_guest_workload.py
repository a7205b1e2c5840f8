#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The emulated guest's workload and digest (qmpd extensions):
__com.qmpd_guest-workload dirties RAM and writes to a disk only while
the guest runs, __com.qmpd_query-guest-workload counts what it wrote,
__com.qmpd_guest-digest hashes RAM as documented (checked against bytes
written over qtest) and each disk as its device reads it (checked
against the image file)."""

import hashlib
import os
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, wait_until  # noqa: E402

DEADLINE = 60
MiB = 1 << 20




def ram_digest(size, pages):
    """The documented RAM hash: size, then (offset, bytes) of each
    non-zero page, offsets ascending."""
    h = hashlib.sha256(struct.pack("<Q", size))
    for off in sorted(pages):
        if any(pages[off]):
            h.update(struct.pack("<Q", off) + pages[off])
    return h.hexdigest()


def test_ram_digest_definition():
    d = tempfile.mkdtemp(prefix="qmpd-qtest-")
    path = os.path.join(d, "qtest.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(DEADLINE)
    # 4 GiB on pc: 3 GiB low, so guest address 4 GiB is RAM offset 3 GiB
    with Qmpd(["-M", "pc", "-m", "4G", "-accel", "qtest",
               "-qtest", "unix:path=%s" % path]) as q:
        qt, _ = listener.accept()
        qt.settimeout(DEADLINE)
        f = qt.makefile("rb")

        def qtest(line):
            qt.sendall(line.encode() + b"\n")
            return f.readline().decode().strip()

        c = q.connect()
        size = 4 << 30
        empty = c.cmd("__com.qmpd_guest-digest")
        assert empty == {"ram": ram_digest(size, {}), "disks": []}, empty
        assert qtest("writeq 0x2008 0x1122334455667788") == "OK"
        assert qtest("writeb 0x100000000 0x5a") == "OK"
        # a page written with zeros hashes as one never written
        assert qtest("writeb 0x3000 0x0") == "OK"
        p1 = bytearray(4096)
        p1[8:16] = struct.pack("<Q", 0x1122334455667788)
        p2 = bytearray(4096)
        p2[0] = 0x5a
        want = ram_digest(size, {0x2000: bytes(p1), 3 << 30: bytes(p2),
                                 0x3000: bytes(4096)})
        assert c.cmd("__com.qmpd_guest-digest")["ram"] == want
        qt.close()
    listener.close()
    os.unlink(path)
    os.rmdir(d)


def test_workload_runs_only_while_running():
    with Qmpd(["-M", "pc", "-m", "64"]) as q:
        c = q.connect()
        before = c.cmd("__com.qmpd_guest-digest")["ram"]
        c.cmd("__com.qmpd_guest-workload", **{"ram-rate": 8 * MiB,
                                               "seed": 3})
        wait_until("256 KiB of RAM written", lambda: c.cmd(
            "__com.qmpd_query-guest-workload")["ram-written"] >= 256 << 10)
        c.cmd("stop")
        c.event("STOP")
        info = c.cmd("__com.qmpd_query-guest-workload")
        assert info["active"] is False and info["ram-rate"] == 8 * MiB, info
        paused = c.cmd("__com.qmpd_guest-digest")["ram"]
        assert paused != before
        # paused, nothing changes: the next ticks (10 ms) write nothing
        t = time.time()
        while time.time() < t + 0.2:
            assert c.cmd("__com.qmpd_guest-digest")["ram"] == paused
        assert c.cmd("__com.qmpd_query-guest-workload")["ram-written"] \
            == info["ram-written"]
        c.cmd("cont")
        c.event("RESUME")
        wait_until("RAM written again", lambda: c.cmd(
            "__com.qmpd_query-guest-workload")["ram-written"]
            > info["ram-written"])
        # running false stops it; the counters start again with a new one
        c.cmd("__com.qmpd_guest-workload", running=False)
        info = c.cmd("__com.qmpd_query-guest-workload")
        assert info == {"ram-rate": 0, "disk-rate": 0, "seed": 0,
                        "ram-written": 0, "disk-written": 0,
                        "disk-errors": 0, "active": False}, info


def disk_guest(d, drive_opts=""):
    """A pc guest whose virtio-blk vd0 is a 4 MiB raw image in @d, with
    -drive options @drive_opts: (its Qmpd, the image's path)."""
    img = os.path.join(d, "disk.raw")
    with open(img, "wb") as f:
        f.truncate(4 * MiB)
    return Qmpd(["-M", "pc", "-m", "16",
                 "-drive", "file=%s,format=raw,if=none,id=drive0%s"
                 % (img, drive_opts),
                 "-device", "virtio-blk-pci,drive=drive0,id=vd0"]), img


def write_disk(c, rate, seed, written):
    """The workload writes vd0 at @rate until @written bytes are done,
    then stops (its writes in flight go on)."""
    c.cmd("__com.qmpd_guest-workload", **{"disk-rate": rate,
                                           "device": "vd0", "seed": seed})
    wait_until("%d bytes written to the disk" % written, lambda: c.cmd(
        "__com.qmpd_query-guest-workload")["disk-written"] >= written)
    c.cmd("__com.qmpd_guest-workload", running=False)


def test_disk_digest():
    d = tempfile.mkdtemp(prefix="qmpd-wl-")
    q, img = disk_guest(d)
    with q:
        c = q.connect()
        write_disk(c, 4 * MiB, 9, 512 << 10)
        # writes in flight when it stopped complete on their own
        c.cmd("stop")
        dig = c.cmd("__com.qmpd_guest-digest")["disks"]
        assert len(dig) == 1 and dig[0]["device"] == "drive0" \
            and dig[0]["qdev"] == "/machine/peripheral/vd0/virtio-backend" \
            and dig[0]["size"] == 4 * MiB, dig
        c.cmd("quit")
        q.wait(DEADLINE)
    with open(img, "rb") as f:
        data = f.read()
    assert dig[0]["digest"] == hashlib.sha256(data).hexdigest()
    # the workload's chunks: 64 KiB, never all zeros
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    assert sum(1 for ch in chunks if any(ch)) >= 1
    os.unlink(img)
    os.rmdir(d)


def test_quit_with_writes_in_flight():
    """quit while the guest's writes wait at a throttled drive: the disk
    model is freed by its last request's completion, not before (an
    unplugged disk's request used to complete into freed memory)."""
    d = tempfile.mkdtemp(prefix="qmpd-wl-")
    q, img = disk_guest(d, ",throttling.bps-write=262144")
    with q:
        c = q.connect()
        # one write done, more queued at the throttled drive
        write_disk(c, 16 * MiB, 5, 64 << 10)
        c.cmd("quit")
        q.wait(DEADLINE)
    os.unlink(img)
    os.rmdir(d)


def test_refused():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        for args, cls, desc in [
            ({"device": "nope"}, "DeviceNotFound", "Device 'nope' not found"),
            ({"disk-rate": 5}, "GenericError",
             "Parameter 'device' is missing"),
            ({"seed": -1}, "GenericError",
             "Parameter 'seed' expects uint32_t"),
        ]:
            r = c.execute("__com.qmpd_guest-workload", args)
            assert r["error"] == {"class": cls, "desc": desc}, (args, r)
        info = c.cmd("__com.qmpd_query-guest-workload")
        assert info["active"] is False and info["ram-rate"] == 0


if __name__ == "__main__":
    run([test_ram_digest_definition, test_workload_runs_only_while_running,
         test_disk_digest, test_quit_with_writes_in_flight, test_refused])
