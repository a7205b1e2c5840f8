#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Helper of run-migration.sh: one block migration (migrate blk) between
two processes of one kind, timed.  Python 3 standard library only.

  migclient.py KIND BINARY SRC_IMG DST_IMG RAM_MB MAX_BW DOWNTIME_MS
               RAM_RATE DISK_RATE ZERO_BLOCKS

KIND is qmpd or qemu (qemu-system-x86_64 -M pc -accel tcg; its guest
has no OS, so it dirties no RAM: RAM_RATE must be 0 for it).  Both
processes get -m RAM_MB and the image as drive0 on a virtio-blk-pci;
the destination listens on TCP on the loopback.  With DISK_RATE (MiB/s)
a guest writer writes 64 KiB at random 64 KiB-aligned offsets of the
disk while the migration runs: qmpd's own workload (which also dirties
RAM_RATE MiB/s of RAM), or on QEMU HMP qemu-io writes paced from here
over a second QMP connection.  ZERO_BLOCKS (0 or 1) sets the
zero-blocks capability on the source.  Prints one line of key=value:

  status      the source's final status (completed, failed, or timeout:
              not done in BENCH_MIG_TIMEOUT seconds, default 90, and
              cancelled)
  total_s     migrate to MIGRATION completed on the source (the clock here)
  reported_total_ms, downtime_ms  the source's query-migrate
  observed_downtime_ms  STOP on the source to RESUME on the destination
              (the events' timestamps: what the guest lives through)
  wire_mib    the host's IP output during the migration (the stream
              and its TCP/IP headers; other traffic of the host too)
  cpu_s       user+system CPU of both processes during the migration
  digest      equal / differ / - : the guest digests at the switch-over
              (qmpd only)
"""

import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = int(os.environ.get("BENCH_MIG_TIMEOUT", "90"))


class Qmp:
    def __init__(self, path):
        deadline = time.time() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.events = []
        self.readline(None)
        self.cmd("qmp_capabilities")

    def readline(self, timeout):
        """The next message, or None after @timeout seconds (None:
        wait as long as it takes)."""
        while b"\n" not in self.buf:
            if not select.select([self.sock], [], [], timeout)[0]:
                return None
            data = self.sock.recv(65536)
            if not data:
                raise OSError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall((json.dumps({"execute": name, "arguments": args})
                           + "\n").encode())
        while True:
            r = self.readline(None)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"]["desc"]))
            return r["return"]

    def wait_event(self, name, timeout):
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e["event"] == name and (name != "MIGRATION" or e["data"][
                        "status"] in ("completed", "failed")):
                    return e
            r = self.readline(max(deadline - time.time(), 0))
            if r is None:
                return None
            if "event" in r:
                self.events.append(r)


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ip_out_octets():
    """The host's IP output bytes (IpExt OutOctets): loopback included,
    nothing in the way of the stream.  Other traffic of the host counts
    too; on a build machine it is noise."""
    with open("/proc/net/netstat") as f:
        lines = [x.split() for x in f if x.startswith("IpExt:")]
    return int(lines[1][lines[0].index("OutOctets")])


def stamp(e):
    return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6


def start(kind, binary, img, ram_mb, d, name, extra):
    socks = [os.path.join(d, name + ".qmp"), os.path.join(d, name + "2.qmp")]
    args = [binary, "-M", "pc", "-m", str(ram_mb), "-nodefaults",
            "-display", "none",
            "-drive", "file=%s,if=none,id=drive0,format=qcow2" % img,
            "-device", "virtio-blk-pci,drive=drive0,id=vd0"]
    if kind == "qemu":
        args += ["-accel", "tcg"]
    for s in socks:
        args += ["-qmp", "unix:%s,server=on,wait=off" % s]
    p = subprocess.Popen(args + extra, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, name + ".err"), "w"))
    return p, Qmp(socks[0]), socks[1]


def qemu_writer(sock_path, size, rate, stop):
    """HMP qemu-io writes of 64 KiB on QEMU's drive0 at @rate MiB/s."""
    c = Qmp(sock_path)
    rng = random.Random(1)
    n = 0
    t0 = time.time()
    while not stop.is_set():
        due = t0 + n * 64 * 1024 / (rate << 20)
        if time.time() < due:
            time.sleep(min(due - time.time(), 0.01))
            continue
        off = rng.randrange(size // 65536) * 65536
        try:
            c.cmd("human-monitor-command", **{
                "command-line": "qemu-io drive0 \"write -P 0x5a %d 64k\""
                % off})
        except (RuntimeError, OSError, ValueError):
            return
        n += 1


def main():
    kind, binary, src_img, dst_img = sys.argv[1:5]
    ram_mb, max_bw, downtime, ram_rate, disk_rate, zero = map(
        int, sys.argv[5:11])
    d = tempfile.mkdtemp(prefix="bench-mig-")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    uri = "tcp:127.0.0.1:%d" % port.getsockname()[1]
    port.close()
    dp, dc, _ = start(kind, binary, dst_img, ram_mb, d, "dst",
                      ["-incoming", uri])

    sp, sc, sock2 = start(kind, binary, src_img, ram_mb, d, "src", [])
    out = {"status": "timeout"}
    stop = threading.Event()
    writer = None
    try:
        for c in (sc, dc):
            c.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "events", "state": True}])
        sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "zero-blocks", "state": bool(zero)}])
        sc.cmd("migrate-set-parameters", **{"max-bandwidth": max_bw,
                                            "downtime-limit": downtime})
        size = int(subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", src_img],
            capture_output=True, check=True, text=True).stdout.split(
                '"virtual-size": ')[1].split(",")[0])
        if disk_rate or ram_rate:
            if kind == "qmpd":
                sc.cmd("__com.qmpd_guest-workload", **{
                    "ram-rate": ram_rate << 20, "disk-rate": disk_rate << 20,
                    "device": "vd0", "seed": 1})
            else:
                writer = threading.Thread(target=qemu_writer, args=(
                    sock2, size, disk_rate, stop), daemon=True)
                writer.start()
            time.sleep(0.5)
        c0 = cpu(sp.pid) + cpu(dp.pid)
        o0 = ip_out_octets()
        t0 = time.time()
        sc.cmd("migrate", uri=uri, blk=True)
        # a guest writes only while it runs: QEMU's writer (HMP qemu-io,
        # which would write on) stops with the guest, as qmpd's does
        sc.wait_event("STOP", TIMEOUT)
        stop.set()
        end = sc.wait_event("MIGRATION", max(TIMEOUT - (time.time() - t0),
                                             1))
        t1 = time.time()
        if not end:
            # not converged within the bound: say so, and end it
            sc.cmd("migrate_cancel")
        if end:
            out["status"] = end["data"]["status"]
        resume = dc.wait_event("RESUME", 30) if end else None
        out["total_s"] = "%.2f" % (t1 - t0)
        q = sc.cmd("query-migrate")
        out["reported_total_ms"] = q.get("total-time", "-")
        out["downtime_ms"] = q.get("downtime", "-")
        stop_ev = sc.wait_event("STOP", 1)
        out["observed_downtime_ms"] = "%.0f" % (
            (stamp(resume) - stamp(stop_ev)) * 1000) \
            if resume and stop_ev else "-"
        out["wire_mib"] = "%.0f" % ((ip_out_octets() - o0) / (1 << 20))
        out["cpu_s"] = "%.2f" % (cpu(sp.pid) + cpu(dp.pid) - c0)
        out["digest"] = "-"
        if kind == "qmpd" and out["status"] == "completed":
            a = sc.cmd("__com.qmpd_guest-digest")
            b = dc.cmd("__com.qmpd_guest-digest")
            out["digest"] = "equal" if a == b else "differ"
    except (RuntimeError, OSError) as e:
        out["error"] = str(e).replace(" ", "_")
    finally:
        stop.set()
        for c in (sc, dc):
            try:
                c.cmd("quit")
            except (RuntimeError, OSError, ValueError):
                pass
        for p in (sp, dp):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    print(" ".join("%s=%s" % kv for kv in out.items()))


if __name__ == "__main__":
    main()
