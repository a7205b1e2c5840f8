#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""I/O throttling benchmark for run-throttle.sh: what rate a throttled
drive or throttle filter really lets through, in qmpd and in QEMU 7.2.

For each limit, the program (qmpd, or qemu-system-x86_64 -M none when
installed) starts with a null-co drive limited by -drive throttling.*
or a throttle filter node in a throttle-group object (qemu-io on the
node, which QEMU gives a backend of its own for each command); then HMP qemu-io
writes go one after another, each waiting for its completion, for
SECONDS (default 3) seconds of host time.  The table gives the bytes/s
and operations/s achieved next to the limit.  The first tenth of a
second's worth goes without waiting (QEMU's slack), so short runs come
out slightly above the limit.  Numbers only: nothing is asserted.

Usage: throttleclient.py QMPD [QEMU]   (Python 3 standard library only)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobclient import Qmp  # noqa: E402

SECONDS = float(os.environ.get("THROTTLE_SECONDS", "3"))
MIB = 1 << 20

# (what, limit key, limit, request size)
CASES = [
    ("bps-total", "bps-total", 1 * MIB, 65536),
    ("bps-total", "bps-total", 4 * MIB, 65536),
    ("bps-total", "bps-total", 16 * MIB, 65536),
    ("bps-write", "bps-write", 2 * MIB, 65536),
    ("iops-total", "iops-total", 50, 4096),
    ("iops-total", "iops-total", 200, 4096),
    ("iops-total", "iops-total", 1000, 4096),
]


def start(prog, args, d):
    sock = os.path.join(d, "qmp.sock")
    p = subprocess.Popen([prog, "-M", "none", "-display", "none",
                          "-nodefaults", "-qmp",
                          "unix:%s,server=on,wait=off" % sock] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            return p, Qmp(sock)
        except (FileNotFoundError, ConnectionRefusedError, RuntimeError):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not start: %s" %
                                   (prog, p.stderr.read().decode()))
            time.sleep(0.02)


def run(prog, form, key, limit, size):
    """(bytes/s, ops/s) through @prog's drive or filter with @key=@limit."""
    if form == "drive":
        args = ["-drive", "driver=null-co,if=none,id=d0,throttling.%s=%d"
                % (key, limit)]
        target = "d0"
    else:
        args = ["-object", "throttle-group,id=g0,x-%s=%d" % (key, limit),
                "-blockdev", "driver=null-co,node-name=n0",
                "-blockdev", "driver=throttle,node-name=t0,"
                "throttle-group=g0,file=n0"]
        target = "t0"
    with tempfile.TemporaryDirectory() as d:
        p, q = start(prog, args, d)
        try:
            ops = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < SECONDS:
                off = (ops * size) % (512 * MIB)
                r = q.cmd("human-monitor-command", {
                    "command-line": 'qemu-io %s "write %d %d"'
                    % (target, off, size)})
                # qemu-io's report goes to stdout; the reply is its error
                if "error" in r or r["return"]:
                    raise RuntimeError("%s: %r" % (prog, r))
                ops += 1
            secs = time.monotonic() - t0
            q.cmd("quit")
            p.wait(timeout=30)
        finally:
            q.close()
            if p.poll() is None:
                p.kill()
                p.wait()
    return ops * size / secs, ops / secs


def main():
    progs = [("qmpd", sys.argv[1])]
    if len(sys.argv) > 2 and sys.argv[2] and shutil.which(sys.argv[2]):
        progs.append(("QEMU", sys.argv[2]))
    head = "%-10s %-7s %12s" % ("limit", "form", "limit/s")
    for name, _ in progs:
        head += " %14s %9s" % (name + " B/s", "IOPS")
    print("# %.1f s per case, sequential HMP qemu-io writes on null-co"
          % SECONDS)
    print(head)
    for what, key, limit, size in CASES:
        for form in ("drive", "filter"):
            line = "%-10s %-7s %12d" % (what, form, limit)
            for _, prog in progs:
                bps, iops = run(prog, form, key, limit, size)
                line += " %14.0f %9.1f" % (bps, iops)
            print(line)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
