#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-m size, slots and maxmem against QEMU 7.2, on the pc, q35 and none
machines: the same argument must fail with the same message, or start
and show the same memory (qom-get /machine memory and type,
query-memory-size-summary).  Skips (77) when QEMU is not installed.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, binary, need_qemu, qemu_binary, run  # noqa: E402

DEADLINE = 60

MEMORY = [
    "1G", "1001k", "0", "64", "1.5", "17E", "foo", "size=", "maxmem=2G",
    "slots=2,maxmem=2G", "1G,slots=2", "1G,maxmem=2G",
    "1G,slots=0,maxmem=2G",
    "1G,slots=2,maxmem=512M", "1G,slots=2,maxmem=1G", "1G,slots=0,maxmem=1G",
    "1G,maxmem=1G", "1G,slots=2,maxmem=2G", "1G,slots=256,maxmem=2G",
    "1G,slots=257,maxmem=2G", "1G,slots=-1,maxmem=2G",
    "1G,slots=0x10,maxmem=2G",
    "1G,slots=abc,maxmem=2G", "1G,slots=,maxmem=2G", "1G,slots=1e3,maxmem=2G",
    "1G,slots=18446744073709551616,maxmem=2G", "1G,slots=2,maxmem=xyz",
    "1G,slots=2,maxmem=17E", "1G,slots=2,maxmem=2G,foo=1",
    "1G,maxmem=2147483649", "1G,maxmem=2147483649,slots=1",
    "1G,slots=2,maxmem=1T", "1G,slots=2,maxmem=900G",
    "1G,slots=2,maxmem=1000G",
    "1G,maxmem=1010G", "1G,maxmem=1011G", "1G,slots=8,maxmem=960G",
    "4G,slots=4,maxmem=990G", "3584M,slots=1,maxmem=8G", "8G,maxmem=16G",
    "1G,slots=2,maxmem=8E", "128M,maxmem=2G,maxmem=4G,slots=1",
]


# qmpd's replies cannot carry integers of 2^63 and more (the reply
# serializer knows such values only from the request): on the none
# machine, which has no address-space limit, QEMU shows these slots and
# max-size as unsigned and qmpd as negative.  Known, not compared.
UNREPRESENTABLE = {("none", "1G,slots=-1,maxmem=2G"),
                   ("none", "1G,slots=2,maxmem=8E")}


def outcome(prog, machine, mem):
    """(exit status, first error) or the memory it shows."""
    q = Qmpd(["-M", machine, "-m", mem, "-S"], binary_path=prog,
             wait=False)
    try:
        try:
            q.wait_for_path(q.qmp_path, DEADLINE)
            c = q.connect()
        except (RuntimeError, OSError, EOFError):
            # QEMU creates its socket before it checks the machine
            q.wait(DEADLINE)
            # the status is compared with QEMU's: close() checks the rest
            q.status = q.proc.returncode
            line = q.stderr_text().splitlines()[0]
            return q.proc.returncode, line.split(": ", 1)[1]
        r = (c.execute("qom-get", {"path": "/machine",
                                   "property": "memory"}),
             c.execute("qom-get", {"path": "/machine", "property": "type"}),
             c.cmd("query-memory-size-summary"))
        c.cmd("quit")
        q.wait(DEADLINE)
        return r
    finally:
        q.close()


def test_memory_matches_qemu():
    need_qemu()
    bad = []
    for machine in ("pc", "q35", "none"):
        for mem in MEMORY:
            if (machine, mem) in UNREPRESENTABLE:
                continue
            theirs = outcome(qemu_binary(), machine, mem)
            ours = outcome(binary(), machine, mem)
            if theirs != ours:
                bad.append("-M %s -m %s\n  qemu: %r\n  qmpd: %r"
                           % (machine, mem, theirs, ours))
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    run([test_memory_matches_qemu])
