#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""RAM pre-copy throughput over loopback TCP with 0 (plain), 1, 2 and 4
multifd channels, qmpd -> qmpd beside QEMU 7.2 -> QEMU 7.2 in the same
run: a 256 MiB pc guest with 224 MiB of RAM filled with a non-zero byte
(qmpd: qtest's memset; QEMU, whose build here has no qtest accelerator:
its loader device, on a guest held by -S), max-bandwidth 10G, the median
of BENCH_RUNS (3) runs.  Numbers, never pass/fail."""

import os
import sys
import socket
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, free_port, qemu_binary, wait_until  # noqa: E402

MiB = 1 << 20
FILL = 224 * MiB
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def qtest_fill(listener):
    s, _ = listener.accept()
    s.sendall(b"memset 0x100000 0x%x 0x5a\n" % FILL)
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(100)
    assert buf.startswith(b"OK"), buf
    return s


def one(qemu, channels, scratch):
    args = ["-M", "pc", "-m", "256"]
    qt = os.path.join(scratch, "qtest.sock")
    listener = None
    if qemu:
        args += ["-accel", "tcg", "-S"]
        src_args = args + ["-device", "loader,file=%s,addr=0x100000,"
                           "force-raw=on" % os.path.join(scratch, "fill")]
    else:
        args += ["-accel", "qtest"]
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(qt)
        listener.listen(1)
        listener.settimeout(30)
        src_args = args + ["-qtest", "unix:%s" % qt]
    binary = qemu_binary() if qemu else None
    dst = Qmpd(args + ["-incoming", "defer"], binary_path=binary)
    src = Qmpd(src_args, binary_path=binary, wait=False)
    try:
        keep = None if qemu else qtest_fill(listener)
        src.wait_for_path(src.qmp_path)
        dc = dst.connect()
        sc = src.connect()
        for c in (sc, dc):
            if channels:
                c.cmd("migrate-set-capabilities", capabilities=[
                    {"capability": "multifd", "state": True}])
                c.cmd("migrate-set-parameters",
                      **{"multifd-channels": channels})
        sc.cmd("migrate-set-parameters", **{"max-bandwidth": 10 << 30})
        uri = "tcp:127.0.0.1:%d" % free_port()
        dc.cmd("migrate-incoming", uri=uri)
        sc.cmd("migrate", uri=uri)
        r = wait_until("migrated", lambda: sc.cmd("query-migrate").get(
            "status") in ("completed", "failed") and sc.cmd("query-migrate"),
            timeout=300)
        assert r["status"] == "completed", r
        if keep:
            keep.close()
        return r["total-time"], r["ram"]["transferred"]
    finally:
        src.close()
        dst.close()
        if listener:
            listener.close()
            os.unlink(qt)


def main():
    have_qemu = qemu_binary() is not None
    with tempfile.TemporaryDirectory(prefix="qmpd-bench-") as scratch:
        with open(os.path.join(scratch, "fill"), "wb") as f:
            f.write(b"\x5a" * FILL)
        print("%-5s %-8s %10s %10s %10s" % ("", "channels", "total ms",
                                            "sent MiB", "MiB/s"))
        for channels in (0, 1, 2, 4):
            for qemu in ((False, True) if have_qemu else (False,)):
                runs = sorted(one(qemu, channels, scratch)
                              for _ in range(RUNS))
                ms, sent = runs[len(runs) // 2]
                print("%-5s %-8d %10d %10d %10.0f" % (
                    "QEMU" if qemu else "qmpd", channels, ms, sent >> 20,
                    (sent / MiB) / (ms / 1000.0)), flush=True)


if __name__ == "__main__":
    start = time.time()
    main()
    print("(%.0f s)" % (time.time() - start))
