#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""HMP's eject, change, drive_del and commit: QEMU 7.2's syntax, checks
and lines (read off qemu-system-x86_64's HMP; test_hmp_compat.py runs
the same lines on both), and qmpd's own refusal where it lacks what QEMU
would do next (removable media, emptying an image after commit).
Skips (77) without qemu-img.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from hmplines import hmp, try_help  # noqa: E402
from images import check_images, img, qemu_io, with_dir  # noqa: E402

DEADLINE = 60


def devices(c):
    return sorted(b["device"] for b in c.cmd("query-block"))


@with_dir("qmpd-hmp-drive-")
def test_drive_commands(d):
    """drive0 is a virtio-blk disk over top.qcow2 <- base.qcow2, drive1 a
    drive without a device; the lines are QEMU 7.2's for each case."""
    base = os.path.join(d, "base.qcow2")
    top = os.path.join(d, "top.qcow2")
    other = os.path.join(d, "other.qcow2")
    lone = os.path.join(d, "lone.qcow2")
    img("create", "-q", "-f", "qcow2", base, "64M")
    qemu_io(base, "write -P 0x11 0 8M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    qemu_io(top, "write -P 0x22 4M 8M")
    img("create", "-q", "-f", "qcow2", other, "64M")
    img("create", "-q", "-f", "qcow2", lone, "64M")
    with Qmpd(["-M", "pc", "-nodefaults",
               "-drive", "if=none,id=drive0,file=%s" % top,
               "-device", "virtio-blk-pci,drive=drive0,id=vd0",
               "-drive", "if=none,id=drive1,file=%s" % lone,
               "-blockdev", "driver=null-co,node-name=spare"]) as q:
        c = q.connect()
        cases = [
            ("eject", "eject: block device name expected\r\n"
             + try_help("eject")),
            ("eject -x drive0", "eject: unsupported option -x\r\n"
             + try_help("eject")),
            ("eject drive0", "Error: Device 'drive0' is not removable\r\n"),
            ("eject -f drive0", "Error: Device 'drive0' is not removable\r\n"),
            # a device id is not a drive name for eject
            ("eject vd0", "Error: Device 'vd0' not found\r\n"),
            ("change drive0", "change: filename expected\r\n"
             + try_help("change")),
            ("change nosuch %s" % other, "Error: Device 'nosuch' not "
             "found\r\n"),
            # the mode is checked first, the file before removability
            ("change nosuch %s qcow2 bad" % other, "Error: invalid "
             "parameter value: bad\r\n"),
            ("change drive0 %s/nonexist" % d, "Error: Could not open "
             "'%s/nonexist': No such file or directory\r\n" % d),
            ("change drive0 %s" % other, "Error: Device 'drive0' is not "
             "removable\r\n"),
            ("change drive0 -f %s qcow2 read-only" % other, "Error: Device "
             "'drive0' is not removable\r\n"),
            ("change -f drive0 %s" % other, "Error: Device '-f' not "
             "found\r\n"),
            ("change vnc foo", "Expected 'password' after 'vnc'\r\n"),
            ("change vnc password x retain", "Parameter 'read-only-mode' is "
             "invalid for VNC\r\n"),
            ("change vnc passwd abc", "Error: Could not set password\r\n"),
            ("drive_del", "drive_del: block device name expected\r\n"
             + try_help("drive_del")),
            ("drive_del nosuch", "Device 'nosuch' not found\r\n"),
            ("drive_del vd0", "Device 'vd0' not found\r\n"),
            ("commit", "commit: block device name expected\r\n"
             + try_help("commit")),
            ("commit nosuch", "Device 'nosuch' not found\r\n"),
            ("commit drive1", "'commit' error for 'drive1': Operation not "
             "supported\r\n"),
            ("commit drive0 x", "commit: extraneous characters at the end "
             "of line\r\n" + try_help("commit")),
            ("help eject", "eject [-f] device -- eject a removable medium "
             "(use -f to force it)\r\n"),
            ("help change", "change device [-f] filename [format "
             "[read-only-mode]] -- change a removable medium, optional "
             "format, use -f to force the operation\r\n"),
            ("help drive_del", "drive_del device -- remove host block "
             "device\r\n"),
            ("help commit", "commit device|all -- commit changes to the disk "
             "images (if -snapshot is used) or backing files\r\n"),
        ]
        for line, want in cases:
            got = hmp(c, line)
            assert got == want, (line, got, want)

        # where QEMU goes on, qmpd says what it lacks and changes nothing
        assert hmp(c, "eject drive1") == (
            "Error: qmpd has no removable media yet: it cannot leave drive "
            "'drive1' empty\r\n")
        assert hmp(c, "change drive1 %s raw" % other) == (
            "Error: qmpd has no removable media yet: it cannot change the "
            "medium of drive 'drive1'\r\n")
        assert hmp(c, "drive_del drive0") == (
            "qmpd has no removable media yet: drive 'drive0' cannot stay "
            "empty under device 'vd0' (delete the device with "
            "device_del)\r\n")
        assert hmp(c, "commit drive0") == (
            "Error: qmpd cannot commit 'drive0' from HMP: it cannot empty "
            "the top image as QEMU does (use block-commit)\r\n")
        assert devices(c) == ["drive0", "drive1"]

        # a job holds the drive: QEMU's busy line (bare for drive_del)
        assert hmp(c, "drive_mirror -f drive1 %s/m.qcow2" % d) == ""
        c.event("BLOCK_JOB_READY", DEADLINE)
        busy = ("Node 'drive1' is busy: block device is in use by block "
                "job: mirror\r\n")
        assert hmp(c, "drive_del drive1") == busy
        assert hmp(c, "eject drive1") == "Error: " + busy
        assert hmp(c, "change drive1 %s" % other) == "Error: " + busy
        assert hmp(c, "block_job_cancel drive1") == ""
        c.event("BLOCK_JOB_COMPLETED", DEADLINE)

        # drive_del takes a drive without a device, and node names
        assert hmp(c, "drive_del drive1") == ""
        assert devices(c) == ["drive0"]
        assert hmp(c, "drive_del drive1") == "Device 'drive1' not found\r\n"
        assert hmp(c, "drive_del spare") == ""
        assert "spare" not in hmp(c, "info block -n")
        assert hmp(c, "commit all") == (
            "Error: qmpd cannot commit 'all' from HMP: it cannot empty the "
            "top image as QEMU does (use block-commit)\r\n")
        # the deleted drive's image is closed: another writer may open it
        qemu_io(lone, "write -P 0x33 0 64k")
        c.cmd("quit")
        q.wait()
    check_images([base, top, other, lone, os.path.join(d, "m.qcow2")])
    qemu_io(top, "read -P 0x11 0 4M", "read -P 0x22 4M 8M")


if __name__ == "__main__":
    run([test_drive_commands])
