#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""NBD client benchmark (numbers, never pass/fail): blockdev-mirror
sync=full of a source image into qemu-storage-daemon's NBD export of an
empty raw file, with qmpd as the mirroring side and, in the same run,
qemu-storage-daemon doing the same mirror (QEMU 7.2's nbd driver): time
from blockdev-mirror to BLOCK_JOB_READY, throughput, and the CPU seconds
the mirroring process spent per GiB of image.  Each case runs
BENCH_NBD_REPEAT times (default 3); the median is printed, and every
target is checked equal to its source with qemu-img compare.

Cases: a raw source whose every byte is data, and a qcow2 source with
data in every other MiB (the holes must not cross the wire).

Environment: QMPD (qmpd binary), QSD (qemu-storage-daemon), BENCH_NBD_MB
(image size in MiB, default 1024), BENCH_NBD_REPEAT, TMPDIR (default
/var/tmp; O_DIRECT must work there)."""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QMPD = os.environ.get("QMPD", os.path.join(HERE, "..", "..", "qmpd"))
QSD = os.environ.get("QSD", "qemu-storage-daemon")
SIZE_MB = int(os.environ.get("BENCH_NBD_MB", "1024"))
REPEAT = int(os.environ.get("BENCH_NBD_REPEAT", "3"))
TICK = os.sysconf("SC_CLK_TCK")


class Qmp:
    def __init__(self, path, timeout=600):
        deadline = time.time() + 30
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.s.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.recv()
        self.cmd("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("QMP closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name,
                                   "arguments": args}).encode())
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
            elif "error" in m:
                raise RuntimeError("%s: %s" % (name, m["error"]["desc"]))
            else:
                return m["return"]

    def event(self, name):
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            m = self.recv()
            if "event" in m:
                self.events.append(m)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_sock(path, proc):
    """Until @proc listens on @path (its file appears at bind, a moment
    before listen)."""
    deadline = time.time() + 30
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("no socket %s" % path)
            time.sleep(0.02)
        finally:
            s.close()


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def one(d, side, src, fmt):
    """One mirror of @src into a fresh export; (seconds, cpu seconds)."""
    tgt = os.path.join(d, "tgt.raw")
    if os.path.exists(tgt):
        os.unlink(tgt)
    run(["qemu-img", "create", "-q", "-f", "raw", tgt, "%dM" % SIZE_MB])
    nbd = os.path.join(d, "nbd.sock")
    for p in (nbd, os.path.join(d, "qmp.sock")):
        if os.path.exists(p):
            os.unlink(p)
    srv = subprocess.Popen(
        [QSD, "--blockdev", "driver=file,node-name=f,filename=%s,"
         "cache.direct=on,aio=native" % tgt,
         "--nbd-server", "addr.type=unix,addr.path=%s" % nbd,
         "--export", "type=nbd,id=e,node-name=f,name=tgt,writable=on"],
        stdout=subprocess.DEVNULL)
    qmp = os.path.join(d, "qmp.sock")
    blockdev = json.dumps({
        "driver": fmt, "node-name": "src",
        "file": {"driver": "file", "filename": src, "aio": "native",
                 "cache": {"direct": True}}})
    if side == "qmpd":
        args = [QMPD, "-nodefaults", "-display", "none", "-qmp",
                "unix:%s,server=on,wait=off" % qmp, "-blockdev", blockdev]
    else:
        args = [QSD, "--chardev", "socket,id=m,path=%s,server=on,wait=off"
                % qmp, "--monitor", "chardev=m", "--blockdev", blockdev]
    mirror = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        wait_sock(nbd, srv)
        wait_sock(qmp, mirror)
        c = Qmp(qmp)
        c.cmd("blockdev-add", driver="nbd", **{"node-name": "tgt"},
              server={"type": "unix", "path": nbd}, export="tgt")
        cpu0 = cpu_seconds(mirror.pid)
        t0 = time.monotonic()
        c.cmd("blockdev-mirror", **{"job-id": "m"}, device="src",
              target="tgt", sync="full")
        c.event("BLOCK_JOB_READY")
        secs = time.monotonic() - t0
        cpu = cpu_seconds(mirror.pid) - cpu0
        c.cmd("block-job-cancel", device="m")
        c.event("BLOCK_JOB_COMPLETED")
        c.cmd("blockdev-del", **{"node-name": "tgt"})
        c.cmd("quit")
        mirror.wait(60)
    finally:
        if mirror.poll() is None:
            mirror.kill()
        srv.terminate()
        srv.wait(60)
    run(["qemu-img", "compare", "-q", "-f", fmt, "-F", "raw", src, tgt])
    return secs, cpu


def main():
    if not shutil.which(QSD) or not shutil.which("qemu-img"):
        sys.exit("qemu-storage-daemon and qemu-img are needed")
    if not os.access(QMPD, os.X_OK):
        sys.exit("qmpd not found at %s (set QMPD or run make)" % QMPD)
    d = tempfile.mkdtemp(prefix="bench-nbd-",
                         dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        full = os.path.join(d, "full.raw")
        run(["qemu-img", "create", "-q", "-f", "raw", full,
             "%dM" % SIZE_MB])
        run(["qemu-io", "-f", "raw", "-c",
             "write -P 0x5a 0 %dM" % SIZE_MB, full])
        half = os.path.join(d, "half.qcow2")
        run(["qemu-img", "create", "-q", "-f", "qcow2", half,
             "%dM" % SIZE_MB])
        cmds = []
        for m in range(0, SIZE_MB, 2):
            cmds += ["-c", "write -P 0x6b %dM 1M" % m]
        run(["qemu-io", "-f", "qcow2"] + cmds + [half])
        gib = SIZE_MB / 1024
        print("blockdev-mirror sync=full into qemu-storage-daemon's NBD "
              "export (unix socket), %d MiB, median of %d" %
              (SIZE_MB, REPEAT))
        print("%-28s %-8s %9s %10s %12s" % ("source", "mirror by", "READY s",
                                            "MiB/s", "CPU s/GiB"))
        for name, src, fmt in (("raw, all data", full, "raw"),
                               ("qcow2, every other MiB", half, "qcow2")):
            for side in ("qmpd", "qsd"):
                runs = [one(d, side, src, fmt) for _ in range(REPEAT)]
                secs = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                print("%-28s %-8s %9.2f %10.0f %12.2f" % (
                    name, side, secs, SIZE_MB / secs, cpu / gib))
                sys.stdout.flush()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
