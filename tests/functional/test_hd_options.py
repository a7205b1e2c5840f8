#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-hda..-hdd and -drive if=ide, as QEMU 7.2 makes them.

-hdX FILE is -drive file=FILE,index=N,media=disk on the machine's
default interface: on pc two IDE units per bus (ide0-hd0, ide0-hd1,
ide1-hd0…), on q35 one per AHCI bus (ide0-hd0, ide1-hd0…), each an
ide-hd the board makes at /machine/unattached/device[N] (from 18 on pc,
16 on q35, bus by bus) before any -device; on -M none a drive none0
without device.  query-block's device, qdev and removable must equal
QEMU's, and so must the refusals: a unit too big, a bus the machine
lacks, a -device on a drive the board took, a file that is missing
(named by the -hdX option).  A guest write through the IDE disk lands
in the image: read back with qemu-io, checked with qemu-img check.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools, qemu_io  # noqa: E402
import reference  # noqa: E402

U = "/machine/unattached/device[%d]"


def layouts(d, e):
    """(command line, expected (device, qdev, removable) of query-block)."""
    return [
        (["-M", "none", "-hda", d], [("none0", None, True)]),
        (["-M", "pc", "-hda", d, "-hdb", e],
         [("ide0-hd0", U % 18, False), ("ide0-hd1", U % 19, False)]),
        (["-M", "q35", "-hda", d, "-hdb", e],
         [("ide0-hd0", U % 16, False), ("ide1-hd0", U % 17, False)]),
        # in command-line order; the devices bus by bus
        (["-M", "pc", "-hdd", d, "-hda", e],
         [("ide1-hd1", U % 19, False), ("ide0-hd0", U % 18, False)]),
        (["-M", "pc", "-drive", "file=%s,format=qcow2" % d],
         [("ide0-hd0", U % 18, False)]),
        (["-M", "q35", "-drive", "file=%s,format=qcow2,if=ide,index=4" % d],
         [("ide4-hd0", U % 16, False)]),
    ]


def refusals(d):
    """(command line, the first line on stderr after "PROG: ")."""
    missing = os.path.join(os.path.dirname(d), "missing.qcow2")
    return [
        (["-M", "none", "-drive", "file=%s,format=qcow2,if=ide" % d],
         "-drive file=%s,format=qcow2,if=ide: machine type does not "
         "support if=ide,bus=0,unit=0" % d),
        (["-M", "pc", "-drive", "file=%s,format=qcow2,if=ide,unit=2" % d],
         "-drive file=%s,format=qcow2,if=ide,unit=2: unit 2 too big (max "
         "is 1)" % d),
        (["-M", "pc", "-drive", "file=%s,format=qcow2,if=ide,index=5" % d],
         "-drive file=%s,format=qcow2,if=ide,index=5: machine type does not "
         "support if=ide,bus=2,unit=1" % d),
        (["-M", "pc", "-hda", d, "-device", "ide-hd,drive=ide0-hd0"],
         "-device ide-hd,drive=ide0-hd0: Drive 'ide0-hd0' is already in use "
         "because it has been automatically connected to another device "
         "(did you need 'if=none' in the drive options?)"),
        (["-M", "pc", "-hda", missing],
         "-hda %s: Could not open '%s': No such file or directory"
         % (missing, missing)),
    ]


def block_layout(args, qemu):
    q, c = reference.start(args, qemu=qemu)
    try:
        return [(b["device"], b.get("qdev"), b["removable"])
                for b in c.cmd("query-block")]
    finally:
        q.close()


def first_error(prog, args):
    p = subprocess.run([prog, "-nodefaults", "-display", "none", "-S"]
                       + args, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (prog, args, p.returncode, p.stderr)
    return p.stderr.splitlines()[0].split(": ", 1)[1]


def test_layouts_and_refusals():
    tmp = tempfile.mkdtemp(prefix="qmpd-hd-")
    try:
        d = os.path.join(tmp, "d.qcow2")
        e = os.path.join(tmp, "e.qcow2")
        img("create", "-q", "-f", "qcow2", d, "16M")
        img("create", "-q", "-f", "qcow2", e, "16M")
        for args, want in layouts(d, e):
            assert block_layout(args, False) == want, (args, want)
            if qemu_binary():
                assert block_layout(args, True) == want, ("qemu", args)
        for args, want in refusals(d):
            assert first_error(binary(), args) == want, args
            if qemu_binary():
                assert first_error(qemu_binary(), args) == want, args
        check_clean(d)
        check_clean(e)
    finally:
        shutil.rmtree(tmp)


def test_guest_write_through_ide():
    tmp = tempfile.mkdtemp(prefix="qmpd-hd-")
    try:
        d = os.path.join(tmp, "d.qcow2")
        img("create", "-q", "-f", "qcow2", d, "16M")
        q, c = reference.start(["-M", "pc", "-hdb", d])
        try:
            # through the guest device, as a guest writes
            out = c.cmd("__com.qmpd_qemu-io", device=U % 18, qdev=True,
                        command="write -P 0x5a 1M 64k")
            assert "wrote 65536/65536 bytes at offset 1048576" in out, out
            c.cmd("quit")
            assert q.wait() == 0
        finally:
            q.close()
        check_clean(d)
        qemu_io(d, "read -P 0x5a 1M 64k", "read -P 0 0 1M")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run([test_layouts_and_refusals, test_guest_write_through_ide],
        needs=[need_tools])
