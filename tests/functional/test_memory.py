#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-m size, slots and maxmem: what qmpd accepts, shows and refuses, with
QEMU 7.2's values and messages (tests/compat/test_memory_compat.py
compares them with a running QEMU)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402

DEADLINE = 60
GiB = 1 << 30


def memory(args):
    with Qmpd(args + ["-S"]) as q:
        c = q.connect()
        r = (c.cmd("qom-get", path="/machine", property="memory"),
             c.cmd("query-memory-size-summary")["base-memory"])
        c.cmd("quit")
        q.wait(DEADLINE)
        return r


def error(args):
    q = Qmpd(args, wait=False, status=1)
    try:
        assert q.wait(DEADLINE) == 1
        return q.stderr_text()
    finally:
        q.close()


def test_shown():
    assert memory(["-M", "pc", "-m", "1G,slots=4,maxmem=8G"]) == (
        {"size": GiB, "slots": 4, "max-size": 8 * GiB}, GiB)
    # without slots QEMU shows the size only; sizes round up to 8 KiB
    assert memory(["-M", "q35", "-m", "1001k,maxmem=2G"]) == (
        {"size": 1032192}, 1032192)
    # 0 or no size: the machine's default; a bare number is MiB
    assert memory(["-m", "0"]) == ({"size": 128 << 20}, 128 << 20)
    assert memory(["-m", "maxmem=1G,slots=1"]) == (
        {"size": 128 << 20, "slots": 1, "max-size": GiB}, 128 << 20)
    assert memory(["-M", "none", "-m", "64"])[1] == 64 << 20


def test_refused():
    for args, err in [
        (["-m", "1G,slots=2"], "slots specified but no max-size"),
        (["-m", "1G,slots=2,maxmem=512M"],
         "invalid value of maxmem: maximum memory size (0x20000000) must "
         "be at least the initial memory size (0x40000000)"),
        (["-m", "1G,slots=2,maxmem=1G"],
         "invalid value of maxmem: memory slots were specified but maximum "
         "memory size (0x40000000) is equal to the initial memory size "
         "(0x40000000)"),
        (["-M", "pc", "-m", "1G,slots=300,maxmem=2G"],
         "unsupported amount of memory slots: 300"),
        (["-M", "pc", "-m", "1G,maxmem=2147483649"],
         "maximum memory size must by aligned to multiple of 4096 bytes"),
        (["-M", "pc", "-m", "1G,slots=2,maxmem=1T"],
         "Address space limit 0xffffffffff < 0x200bfffffff phys-bits too "
         "low (40)"),
        (["-M", "q35", "-m", "1G,slots=2,maxmem=1T"],
         "Address space limit 0xffffffffff < 0x2083fffffff phys-bits too "
         "low (40)"),
        (["-m", "1G,slots=abc,maxmem=2G"],
         "-m 1G,slots=abc,maxmem=2G: Parameter 'slots' expects a number"),
        (["-m", "1G,slots=2,maxmem=17E"], "-m 1G,slots=2,maxmem=17E: Value "
         "'17E' is out of range for parameter 'maxmem'"),
        (["-m", "1G,foo=1"], "-m 1G,foo=1: Invalid parameter 'foo'"),
    ]:
        assert error(args) == "qmpd: %s\n" % err, (args, error(args))
    # the none machine has no address-space limit
    assert memory(["-M", "none", "-m", "1G,slots=300,maxmem=1T"])[0] == {
        "size": GiB, "slots": 300, "max-size": 1 << 40}


if __name__ == "__main__":
    run([test_shown, test_refused])
