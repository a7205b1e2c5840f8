#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt 9.0 driving qmpd beside QEMU 7.2 in the same run (virsh's
embedded QEMU driver, as tests/functional/test_libvirt.py runs it): the
capability probe of a new binary (virsh domcapabilities with an empty
cache), the time from virsh create to a running domain (64 MiB pc
guest on a qcow2 chain of three), and virsh destroy (SIGTERM) to the
process gone; then each virsh block, snapshot and save flow of
tests/functional/test_libvirt_block.py (run whole, checks and all, with
LIBVIRT_FLOW_TIMES), from the virsh command to its exit; the median of
BENCH_RUNS (3) runs each.  Numbers, never pass/fail."""

import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import qemu_binary  # noqa: E402
from virshlib import Libvirt, create, destroy, need_virsh  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
FLOWS = os.path.join(HERE, "..", "functional", "test_libvirt_block.py")


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


def flow_times():
    """{(emulator, flow): [seconds per run]} from RUNS runs of the flow
    tests."""
    times = {}
    for _ in range(RUNS):
        with tempfile.NamedTemporaryFile("r", prefix="qmpd-flows-") as f:
            env = dict(os.environ, LIBVIRT_FLOW_TIMES=f.name)
            p = subprocess.run([sys.executable, FLOWS], env=env,
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit("%s failed:\n%s%s" % (FLOWS, p.stdout, p.stderr))
            for line in f:
                emulator, rest = line.split(" ", 1)
                flow, secs = rest.rsplit(" ", 1)
                times.setdefault((emulator, flow), []).append(float(secs))
    return times


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
    times = flow_times()
    flows = []
    for _, flow in times:
        if flow not in flows:
            flows.append(flow)
    print()
    print("virsh flows (test_libvirt_block.py), virsh command to its exit, "
          "median of %d runs, seconds" % RUNS)
    print("%-30s" % "" + "".join("%10s" % n for n in names))
    for flow in flows:
        print("%-30s" % flow + "".join(
            "%10.2f" % statistics.median(times[(n, flow)])
            if (n, flow) in times else "%10s" % "-" for n in names))


if __name__ == "__main__":
    main()
