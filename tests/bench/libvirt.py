#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt 9.0 driving qmpd beside QEMU 7.2 in the same run (virsh's
embedded QEMU driver, as tests/functional/test_libvirt.py runs it): the
capability probe of a new binary (virsh domcapabilities with an empty
cache), the time from virsh create to a running domain (64 MiB pc
guest on a qcow2 chain of three), and virsh destroy (SIGTERM) to the
process gone; the median of BENCH_RUNS (3) runs each.  Numbers, never
pass/fail."""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import qemu_binary  # noqa: E402
from virshlib import Libvirt, create, destroy, need_virsh  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def one(name):
    with Libvirt() as lv:
        lv.emulator = lv.qmpd() if name == "qmpd" else qemu_binary()
        t = time.monotonic()
        lv.out("domcapabilities", "--emulatorbin", lv.emulator,
               "--virttype", "qemu")
        probe = time.monotonic() - t
        xml = lv.domain_xml(lv.emulator, lv.chain())
        start = create(lv, xml)
        t = time.monotonic()
        destroy(lv)
        stop = time.monotonic() - t
    return probe, start, stop


def main():
    need_virsh()
    names = ["qmpd"] + (["QEMU"] if qemu_binary() else [])
    res = {n: [] for n in names}
    for _ in range(RUNS):
        for n in names:
            res[n].append(one(n))
    print("libvirt 9.0 (embedded driver), median of %d runs, seconds" % RUNS)
    print("%-6s %10s %10s %10s" % ("", "probe", "create", "destroy"))
    for n in names:
        cols = [statistics.median(r[i] for r in res[n]) for i in range(3)]
        print("%-6s %10.2f %10.2f %10.2f" % (n, *cols))


if __name__ == "__main__":
    main()
