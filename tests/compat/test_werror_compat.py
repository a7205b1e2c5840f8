#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The device error policy (rerror/werror) against QEMU 7.2, side by side.

QEMU applies the policy in its device models, so its side needs a guest
request: QEMU runs a pc machine whose firmware only halts the CPU, and
the test plays the guest over the qtest socket, issuing an ATA READ or
WRITE SECTORS command to an ide-hd through the legacy I/O ports.  qmpd's
guest issues the same request with qemu-io -d through the same device.
The disk is a qcow2 image whose data cluster is read and written through
blkdebug, which fails that one sector with EIO or ENOSPC.

Both sides record the same transcript: BLOCK_IO_ERROR and STOP events,
query-status, the io-status of query-block and of "info block", what the
guest saw (an error or success), the statistics, then the same after
cont (RESUME, the retry, the io-status reset for named backends only).
The transcripts must be equal; the images both sides wrote must pass
qemu-img check and compare equal.  Skips (77) without QEMU.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, need_qemu, need_qemu_utils, qemu_binary, \
    run  # noqa: E402

DEADLINE = 60
LBA = 8                         # the guest's sector: offset 4096
ATA_READ, ATA_WRITE = 0x20, 0x30
ATA_BSY, ATA_ERR = 0x80, 0x01


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), check=True,
                          capture_output=True, text=True, timeout=60).stdout


def make_disk(d):
    """A 1 MiB qcow2 with its first cluster allocated (0x11); the sector
    of blkdebug's rules: where the guest's sector LBA is in the file."""
    path = os.path.join(d, "disk.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", path, "1M")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k",
                    path], check=True, capture_output=True, timeout=60)
    m = json.loads(qemu_img("map", "--output=json", path))
    host = [e for e in m if e["data"]][0]["offset"]
    return path, (host + LBA * 512) // 512


def blockdev(path, sector, errno, op, once):
    event = "write_aio" if op == "write" else "read_aio"
    return {"driver": "qcow2", "node-name": "fmt",
            "file": {"driver": "blkdebug", "node-name": "dbg",
                     "inject-error": [{"event": event, "errno": errno,
                                       "sector": sector, "once": once}],
                     "image": {"driver": "file", "filename": path}}}


def drive_arg(bd, opts):
    """The same node as a -drive (a named backend "d0")."""
    f = bd["file"]
    r = f["inject-error"][0]
    return ("if=none,id=d0,driver=qcow2,node-name=fmt,file.driver=blkdebug,"
            "file.node-name=dbg,file.inject-error.0.event=%s,"
            "file.inject-error.0.errno=%d,file.inject-error.0.sector=%d,"
            "file.inject-error.0.once=%s,file.image.driver=file,"
            "file.image.filename=%s%s"
            % (r["event"], r["errno"], r["sector"],
               "on" if r["once"] else "off", f["image"]["filename"], opts))


class QemuGuest:
    """QEMU's guest: ATA PIO commands over qtest to ide.0's master."""

    def __init__(self, d, blk_args, devopts):
        bios = os.path.join(d, "halt.bin")
        with open(bios, "wb") as f:
            # cli; hlt; jmp hlt at the reset vector: a CPU that stays idle
            rom = bytearray(b"\xf4" * 65536)
            rom[0xfff0:0xfff4] = b"\xfa\xf4\xeb\xfd"
            f.write(rom)
        self.qt_path = os.path.join(d, "qtest.sock")
        self.q = Qmpd(["-M", "pc", "-bios", bios, "-qtest",
                       "unix:%s,server=on,wait=off" % self.qt_path]
                      + blk_args
                      + ["-device", "ide-hd,drive=%s,bus=ide.0,id=hd0%s"
                         % ("d0" if "-drive" in blk_args else "fmt",
                            devopts)],
                      binary_path=qemu_binary())
        self.c = self.q.connect()
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.time() + DEADLINE
        while True:
            try:
                self.sock.connect(self.qt_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.time() < deadline, "no qtest socket"
                time.sleep(0.05)
        self.sock.settimeout(DEADLINE)
        self.buf = b""

    def qtest(self, line):
        self.sock.sendall((line + "\n").encode())
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(4096)
                assert data, "qtest closed"
                self.buf += data
            reply, self.buf = self.buf.split(b"\n", 1)
            if not reply.startswith(b"IRQ"):
                return reply.decode()

    def status(self):
        return int(self.qtest("inb 0x1f7").split()[1], 16)

    def start(self, op):
        for port, val in ((0x1f6, 0xe0), (0x1f2, 1), (0x1f3, LBA),
                          (0x1f4, 0), (0x1f5, 0)):
            self.qtest("outb 0x%x 0x%x" % (port, val))
        self.qtest("outb 0x1f7 0x%x" % (ATA_WRITE if op == "write"
                                         else ATA_READ))
        if op == "write":
            for _ in range(256):
                self.qtest("outw 0x1f0 0x5a5a")

    def wait_done(self):
        """The guest's view once the device is done: True on error."""
        deadline = time.time() + DEADLINE
        while self.status() & ATA_BSY:
            assert time.time() < deadline, "IDE request never completed"
            time.sleep(0.01)
        return bool(self.status() & ATA_ERR)


class QmpdGuest:
    """qmpd's guest: qemu-io -d on the same device."""

    def __init__(self, d, blk_args, devopts):
        self.q = Qmpd(["-M", "pc"] + blk_args
                      + ["-device", "ide-hd,drive=%s,bus=ide.0,id=hd0%s"
                         % ("d0" if "-drive" in blk_args else "fmt",
                            devopts)])
        self.c = self.q.connect()

    def start(self, op):
        cmd = "aio_write -P 0x5a 4096 512" if op == "write" \
            else "aio_read 4096 512"
        self.c.cmd("__com.qmpd_qemu-io", device="hd0", qdev=True,
                   command=cmd)

    def wait_done(self):
        # aio_flush returns once the request has completed (and printed)
        self.c.cmd("__com.qmpd_qemu-io", device="hd0", qdev=True,
                   command="aio_flush")
        deadline = time.time() + DEADLINE
        while True:
            out = self.q.stdout_text()
            if "failed" in out:
                return True
            if "bytes at offset 4096" in out:
                return False
            assert time.time() < deadline, "no aio report: %r" % out
            time.sleep(0.01)


def events_until(c, last, deadline=DEADLINE):
    """Every event (name and data) up to and including @last."""
    seen = []
    end = time.time() + deadline
    while True:
        while c.events:
            e = c.events.pop(0)
            seen.append((e["event"], e.get("data")))
            if e["event"] == last:
                return seen
        left = end - time.time()
        assert left > 0, "no %s after %r" % (last, seen)
        m = c.recv(left)
        assert "event" in m, m
        c.events.append(m)


def state(c):
    blk = c.cmd("query-block")[0]
    info = c.cmd("human-monitor-command", **{"command-line": "info block"})
    st = c.cmd("query-blockstats")[0]["stats"]
    return {"status": c.cmd("query-status")["status"],
            "io-status": blk.get("io-status"),
            "info": [line.strip() for line in info.splitlines()
                     if "I/O status" in line],
            "stats": {k: st[k] for k in ("rd_operations", "wr_operations",
                                         "failed_rd_operations",
                                         "failed_wr_operations",
                                         "invalid_rd_operations",
                                         "invalid_wr_operations")}}


def scenario(guest_cls, d, case):
    """One side's transcript of @case."""
    errno, op, stop, named, devopts, drvopts, once = case
    path, sector = make_disk(d)
    bd = blockdev(path, sector, errno, op, once)
    blk_args = ["-drive", drive_arg(bd, drvopts)] if named \
        else ["-blockdev", json.dumps(bd)]
    g = guest_cls(d, blk_args, devopts)
    t = [("before", state(g.c))]
    try:
        g.start(op)
        if stop:
            t.append(("events", events_until(g.c, "STOP")))
        else:
            t.append(("events", events_until(g.c, "BLOCK_IO_ERROR")))
            t.append(("guest error", g.wait_done()))
        t.append(("after", state(g.c)))
        if stop:
            g.c.cmd("cont")
            if once:
                t.append(("cont", events_until(g.c, "RESUME")))
                t.append(("guest error", g.wait_done()))
            else:
                # the retry fails again: the guest stops once more
                t.append(("cont", events_until(g.c, "STOP")))
            t.append(("after cont", state(g.c)))
        g.c.cmd("quit")
        g.q.wait(DEADLINE)
    finally:
        g.q.close()
    subprocess.run(["qemu-img", "check", path], check=True,
                   capture_output=True, timeout=60)
    return t, path


CASES = [
    # errno, op, stops, -drive, device options, -drive options, once
    (5, "write", True, False, ",werror=stop", "", True),
    (28, "write", True, True, "", "", True),
    (5, "write", False, False, "", "", True),
    (5, "write", False, False, ",werror=ignore", "", True),
    (28, "write", False, False, ",werror=report,rerror=report", "", True),
    (5, "read", True, False, ",rerror=stop", "", True),
    (5, "read", False, False, "", "", True),
    (28, "read", False, True, "", ",werror=stop,rerror=ignore", True),
    (28, "read", True, True, ",rerror=enospc", ",rerror=report", True),
    (5, "write", True, True, "", ",werror=stop", False),
]


def test_error_policy_matches_qemu():
    need_qemu()
    need_qemu_utils()
    bad = []
    for case in CASES:
        dq = tempfile.mkdtemp(prefix="qmpd-werror-qemu-")
        dm = tempfile.mkdtemp(prefix="qmpd-werror-qmpd-")
        try:
            theirs, qimg = scenario(QemuGuest, dq, case)
            ours, mimg = scenario(QmpdGuest, dm, case)
            if theirs != ours:
                bad.append("%r\n  qemu: %r\n  qmpd: %r" % (case, theirs,
                                                           ours))
            p = subprocess.run(["qemu-img", "compare", qimg, mimg],
                               capture_output=True, text=True, timeout=60)
            if p.returncode:
                bad.append("%r: images differ: %s" % (case, p.stdout))
        finally:
            shutil.rmtree(dq, ignore_errors=True)
            shutil.rmtree(dm, ignore_errors=True)
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    run([test_error_policy_matches_qemu])
