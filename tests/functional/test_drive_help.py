#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-drive help and format=help answer as QEMU 7.2's.

"-drive help" is help=on, a block option with neither file nor driver:
"Must specify either driver or file" (exit 1), as for any block option
on a drive without a file; format=help among any other keys lists the
formats and exits 0 (qmpd lists those it has, each one QEMU lists too).
When qemu-system-x86_64 is installed the same command lines run on it.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, qemu_binary, run  # noqa: E402

MUST = "Must specify either driver or file"
OURS = "blkdebug file null-co qcow2 raw".split()


def start(prog, drive):
    p = subprocess.run([prog, "-M", "none", "-display", "none",
                        "-nodefaults", "-S", "-drive", drive],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_drive_help_refused():
    for drive in ("help", "if=none,id=x,cache.direct=on",
                  "if=none,id=x,node-name=n", "if=none,bogus=1"):
        progs = [(binary(), "qmpd")]
        if qemu_binary():
            progs.append((qemu_binary(), "qemu-system-x86_64"))
        for prog, name in progs:
            rc, out, err = start(prog, drive)
            assert rc == 1 and err.splitlines()[0] == "%s: -drive %s: %s" % (
                name, drive, MUST), (prog, drive, rc, err)


def test_format_help():
    for drive in ("format=help", "if=none,format=help",
                  "file=x,format=help", "format=help,id=d"):
        rc, out, err = start(binary(), drive)
        assert (rc, out, err) == (
            0, "Supported formats: %s\nSupported formats (read-only): %s\n"
            % (" ".join(OURS), " ".join(OURS)), ""), (drive, out)
        if qemu_binary():
            rc, out, err = start(qemu_binary(), drive)
            first, second = out.splitlines()[:2]
            assert rc == 0 and first.startswith("Supported formats: ") \
                and second.startswith("Supported formats (read-only): "), out
            assert set(OURS) <= set(first.split()[2:]), (OURS, first)
            assert set(OURS) <= set(second.split()[3:]), (OURS, second)


if __name__ == "__main__":
    run([test_drive_help_refused, test_format_help])
