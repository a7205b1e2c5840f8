#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""HMP's drive_add, eject, change, drive_del and commit: QEMU 7.2's
syntax, checks and lines (read off qemu-system-x86_64's HMP; test_hmp_compat.py runs
the same lines on both), and qmpd's own refusal where it lacks what QEMU
would do next (emptying an image after commit).  test_media.py has
eject and change on CD-ROMs.
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

        # a drive without a device loses its medium and takes one again
        assert hmp(c, "eject drive1") == ""
        assert hmp(c, "info block drive1") == ("drive1: [not inserted]\r\n"
                                               "    Removable device: not "
                                               "locked, tray closed\r\n")
        assert hmp(c, "change drive1 %s qcow2" % lone) == ""
        # where QEMU goes on, qmpd says what it lacks and changes nothing
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
        # a device's drive: the device keeps it, empty and nameless
        assert hmp(c, "drive_del drive0") == ""
        assert devices(c) == [""]
        # the deleted drive's image is closed: another writer may open it
        qemu_io(lone, "write -P 0x33 0 64k")
        c.cmd("quit")
        q.wait()
    check_images([base, top, other, lone, os.path.join(d, "m.qcow2")])
    qemu_io(top, "read -P 0x11 0 4M", "read -P 0x22 4M 8M")


@with_dir("qmpd-hmp-drive-add-")
def test_drive_add(d):
    """drive_add on pc (default interface ide) as QEMU 7.2 answers it:
    only if=none drives stay; the address is ignored; -n makes a node."""
    a = os.path.join(d, "a.qcow2")
    b = os.path.join(d, "b.qcow2")
    for p in (a, b):
        img("create", "-q", "-f", "qcow2", p, "16M")
    with Qmpd(["-M", "pc", "-nodefaults"]) as q:
        c = q.connect()
        cases = [
            ("drive_add", "drive_add: string expected\r\n"
             + try_help("drive_add")),
            ("drive_add 0", "drive_add: string expected\r\n"
             + try_help("drive_add")),
            ("drive_add -x 0 if=none", "drive_add: unsupported option -x\r\n"
             + try_help("drive_add")),
            ("help drive_add", "drive_add [-n] [[<domain>:]<bus>:]<slot>\r\n"
             "[file=file][,if=type][,bus=n]\r\n[,unit=m][,media=d]"
             "[,index=i]\r\n[,snapshot=on|off][,cache=on|off]\r\n"
             "[,readonly=on|off][,copy-on-read=on|off] -- add drive to PCI "
             "storage controller\r\n"),
            ("drive_add 0 if=none,id=x,file=%s" % a, "OK\r\n"),
            ("drive_add dummy if=none,id=x,file=%s" % b,
             "Duplicate ID 'x' for drive\r\n"),
            # made and dropped: the image is free again at once
            ("drive_add 0 file=%s,id=z" % b,
             "Can't hot-add drive to type 1\r\n"),
            ("drive_add 0 if=virtio,file=%s,id=v" % b,
             "Can't hot-add drive to type 7\r\n"),
            ("drive_add 1:2 if=none,id=w,driver=null-co", "OK\r\n"),
            ("drive_add 0 if=none,id=bad,file=%s/nonexist.qcow2" % d,
             "Could not open '%s/nonexist.qcow2': No such file or "
             "directory\r\n" % d),
            ("drive_add 0 if=none,id=b2,file=%s,bogus=1" % b,
             "Block format 'qcow2' does not support the option 'bogus'\r\n"),
            ("drive_add 0 if=none,file=%s" % b, "OK\r\n"),
            ("drive_add 0 if=none,id=9x,driver=null-co",
             "Parameter 'id' expects an identifier\r\nIdentifiers consist "
             "of letters, digits, '-', '.', '_', starting with a letter."
             "\r\n"),
            ("drive_add 0 if=none,id=r,file=%s,readonly=on" % b,
             'Failed to get shared "write" lock\r\nIs another process '
             'using the image [%s]?\r\n' % b),
            ("drive_add -n 0 driver=null-co",
             "'node-name' needs to be specified\r\n"),
            ("drive_add -n 0 driver=null-co,node-name=n1", ""),
            ("drive_add -n 0 driver=null-co,node-name=n1",
             "Duplicate nodes with node-name='n1'\r\n"),
            ("drive_add -n 0 if=none,driver=null-co,node-name=n2",
             "Block protocol 'null-co' doesn't support the option 'if'\r\n"),
            ("drive_add 0 help", "Must specify either driver or file\r\n"),
            # an SCSI drive is made and dropped, as QEMU 7.2; qmpd's formats
            ("drive_add 0 if=scsi,driver=null-co,id=s",
             "Can't hot-add drive to type 2\r\n"),
            # an empty drive, as QEMU 7.2
            ("drive_add 0 if=none,id=e,media=cdrom", "OK\r\n"),
            ("drive_add 0 format=help", "Supported formats: blkdebug file "
             "null-co qcow2 raw\r\nSupported formats (read-only): blkdebug "
             "file null-co qcow2 raw\r\n"),
        ]
        for line, want in cases:
            got = hmp(c, line)
            assert got == want, (line, got, want)
        # the slots none0..none2 as QEMU numbers them, and the empty e
        assert devices(c) == ["e", "none2", "w", "x"], devices(c)
        nodes = {n["node-name"]: n for n in c.cmd("query-named-block-nodes")}
        assert nodes["n1"]["drv"] == "null-co" and "n2" not in nodes
        assert hmp(c, 'qemu-io x "write -P 0x44 0 1M"') == ""
        # the drive is an if=none drive as -drive makes: a device takes it
        c.cmd("device_add", driver="virtio-blk-pci", drive="w", id="vw")
        assert [b["qdev"] for b in c.cmd("query-block")
                if b["device"] == "w"] == ["/machine/peripheral/vw/"
                                           "virtio-backend"]
        # deleted, its image opens again, and its name is free
        assert hmp(c, "drive_del x") == ""
        assert hmp(c, "drive_add 0 if=none,id=x,file=%s" % a) == "OK\r\n"
        assert hmp(c, "drive_del n1") == ""
        c.cmd("quit")
        q.wait()
    check_images([a, b])
    qemu_io(a, "read -P 0x44 0 1M")


if __name__ == "__main__":
    run([test_drive_commands, test_drive_add])
