#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The human monitor's block commands as people type them: sizes and
speeds in MiB without a suffix, QEMU's parse errors, and the short forms
block_stream, drive_mirror, drive_backup and snapshot_blkdev.

Every expected line is QEMU 7.2's (read off qemu-system-x86_64's HMP;
tests/compat/test_hmp_compat.py compares the two side by side).  Every
image written is checked with qemu-img check and compared with what the
guest saw.  Skips (77) without qemu-img.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from hmplines import hmp, try_help  # noqa: E402
from images import (chain_of, check_images, img, qemu_io,  # noqa: E402
                    with_dir)

MiB = 1 << 20
TiB = 1 << 40
DEADLINE = 60


def job(c):
    jobs = c.cmd("query-block-jobs")
    assert len(jobs) == 1, jobs
    return jobs[0]


def size_of(c, device):
    for b in c.cmd("query-block"):
        if b["device"] == device:
            return b["inserted"]["image"]["virtual-size"]
    raise AssertionError("no %s" % device)


def chain(d):
    """base.qcow2 (8 MiB of 0x11) <- top.qcow2 (0x22 at 4 MiB for 8 MiB)."""
    base = os.path.join(d, "base.qcow2")
    top = os.path.join(d, "top.qcow2")
    img("create", "-q", "-f", "qcow2", base, "64M")
    qemu_io(base, "write -P 0x11 0 8M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    qemu_io(top, "write -P 0x22 4M 8M")
    return base, top


def same_view(a, b, fa="qcow2", fb="qcow2"):
    img("compare", "-q", "-f", fa, "-F", fb, a, b)


@with_dir("qmpd-hmp-units-")
def test_units(d):
    """No suffix means MiB, as in QEMU: block_stream drive0 10 streams
    at 10 MiB/s, block_job_set_speed drive0 1 sets 1 MiB/s and
    block_resize drive2 300 makes 300 MiB.  The stream reads a 1 TiB
    null-co backing, so it is still running whenever it is asked."""
    top = os.path.join(d, "top.qcow2")
    raw = os.path.join(d, "r.img")
    img("create", "-q", "-f", "qcow2", top, "1T")
    img("create", "-q", "-f", "raw", raw, "1M")
    with Qmpd(["-blockdev", "driver=null-co,node-name=nbase,size=%d" % TiB,
               "-blockdev", "driver=qcow2,node-name=drive0,file.driver=file,"
               "file.filename=%s,backing=nbase" % top,
               "-drive", "if=none,id=drive2,format=raw,file=%s" % raw]) as q:
        c = q.connect()
        assert hmp(c, "block_stream drive0 10") == ""
        assert job(c)["speed"] == 10 * MiB
        for arg, speed in (("1", MiB), ("1.5k", 1536), ("0.3k", 307),
                           ("0.7k", 717), ("2048b", 2048), ("0x10", 16 * MiB),
                           ("0.5", MiB // 2), ("0b", 0)):
            assert hmp(c, "block_job_set_speed drive0 " + arg) == ""
            assert job(c)["speed"] == speed, (arg, job(c))
        for arg in ("", "abc", "-1", "0.5b", "1.5e3k", "0x1.5",
                    "9223372036854775808b"):
            assert hmp(c, "block_job_set_speed drive0 " + arg) == (
                "invalid size\r\n" + try_help("block_job_set_speed"))
        assert hmp(c, "block_job_set_speed drive0 10x") == (
            "block_job_set_speed: extraneous characters at the end of "
            "line\r\n" + try_help("block_job_set_speed"))
        assert job(c)["speed"] == 0
        assert hmp(c, "block_job_cancel drive0") == ""
        c.event("BLOCK_JOB_CANCELLED", DEADLINE)

        assert hmp(c, "block_resize drive2 300") == ""
        assert size_of(c, "drive2") == 300 * MiB
        assert hmp(c, "block_resize drive2 1.5") == ""
        assert size_of(c, "drive2") == 3 * MiB // 2
        assert hmp(c, "block_resize drive2 4096B") == ""
        assert size_of(c, "drive2") == 4096
        assert hmp(c, "block_resize drive2") == (
            "invalid size\r\n" + try_help("block_resize"))
        assert hmp(c, "block_resize drive2 1.5b") == (
            "invalid size\r\n" + try_help("block_resize"))
        assert size_of(c, "drive2") == 4096
        c.cmd("quit")
        q.wait()
    check_images([top])
    assert os.path.getsize(raw) == 4096


def test_parse_errors():
    """QEMU's lines for each way the parser refuses a line, and the help
    of the new commands."""
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        cases = [
            ("info block -x", "block: unsupported option -x\r\n"
             + try_help("info block")),
            ("info   block   -x", "block: unsupported option -x\r\n"
             + try_help("info   block")),
            # an embedded newline is white space: the rest is extra
            ("block_resize drive0 5\nx", "block_resize: extraneous "
             "characters at the end of line\r\n" + try_help("block_resize")),
            ("info status\nfoo", "status: extraneous characters at the end "
             "of line\r\n" + try_help("info status")),
            ("  stop extra", "stop|s: extraneous characters at the end of "
             "line\r\n" + try_help("  stop")),
            ("  nosuch", "unknown command: '  nosuch'\r\n"),
            ("info   nosuch", "unknown command: 'info   nosuch'\r\n"),
            ("info/x", "unknown command: 'info'\r\n"),
            ("block_resize", "block_resize: block device name expected\r\n"
             + try_help("block_resize")),
            ("block_resize drive0", "invalid size\r\n"
             + try_help("block_resize")),
            ("block_job_cancel -x drive0", "block_job_cancel: unsupported "
             "option -x\r\n" + try_help("block_job_cancel")),
            # QEMU's message stops at the NUL its %c printed
            ("block_job_cancel -", "block_job_cancel: unsupported option -"
             + try_help("block_job_cancel")),
            ("block_job_cancel -f -f drive0", "block_job_cancel: extraneous "
             "characters at the end of line\r\n"
             + try_help("block_job_cancel")),
            ("drive_mirror", "drive_mirror: block device name expected\r\n"
             + try_help("drive_mirror")),
            ("drive_mirror drive0", "drive_mirror: string expected\r\n"
             + try_help("drive_mirror")),
            ("drive_mirror -c drive0 x", "drive_mirror: unsupported option "
             "-c\r\n" + try_help("drive_mirror")),
            # flags are taken in table order only: this -n is a device
            ("drive_mirror -f -n drive0 x", "Error: Cannot find device='-n' "
             "nor node-name='-n'\r\n"),
            ("drive_mirror -nf drive0 x", "Error: Cannot find device='f' "
             "nor node-name='f'\r\n"),
            ("drive_backup -c -x drive0 x", "Error: Cannot find device='-x' "
             "nor node-name='-x'\r\n"),
            ('block_stream "drive0', "block_stream: block device name "
             "expected\r\n" + try_help("block_stream")),
            ('block_stream "a\\"b"', "Error: Cannot find device='a\"b' nor "
             "node-name='a\"b'\r\n"),
            ("snapshot_blkdev", "snapshot_blkdev: block device name "
             "expected\r\n" + try_help("snapshot_blkdev")),
            ("snapshot_blkdev drive0", "Error: Parameter 'snapshot-file' is "
             "missing\r\n"),
            ("help   info   nosuch", "unknown command: 'info nosuch'\r\n"),
            ('help "unterminated', ""),
            ("help drive_mirror", "drive_mirror [-n] [-f] device target "
             "[format] -- initiates live storage\r\n\t\t\tmigration for a "
             "device. The device's contents are\r\n\t\t\tcopied to the new "
             "image file, including data that\r\n\t\t\tis written after the "
             "command is started.\r\n\t\t\tThe -n flag requests QEMU to "
             "reuse the image found\r\n\t\t\tin new-image-file, instead of "
             "recreating it from scratch.\r\n\t\t\tThe -f flag requests QEMU "
             "to copy the whole disk,\r\n\t\t\tso that the result does not "
             "need a backing file.\r\n\t\t\t\r\n"),
            ("help snapshot_blkdev", "snapshot_blkdev [-n] device "
             "[new-image-file] [format] -- initiates a live snapshot\r\n"
             "\t\t\tof device. If a new image file is specified, the\r\n"
             "\t\t\tnew image file will become the new root image.\r\n"
             "\t\t\tIf format is specified, the snapshot file will\r\n"
             "\t\t\tbe created in that format.\r\n\t\t\tThe default format "
             "is qcow2.  The -n flag requests QEMU\r\n\t\t\tto reuse the "
             "image found in new-image-file, instead of\r\n\t\t\trecreating "
             "it from scratch.\r\n"),
            ("help block_stream", "block_stream device [speed [base]] -- "
             "copy data from a backing file into a block device\r\n"),
        ]
        for line, want in cases:
            got = hmp(c, line)
            assert got == want, (line, got, want)
        assert hmp(c, "help drive_backup").startswith(
            "drive_backup [-n] [-f] [-c] device target [format] -- "
            "initiates a point-in-time\r\n")
        c.cmd("quit")
        q.wait()


@with_dir("qmpd-hmp-mirror-")
def test_drive_mirror(d):
    """drive_mirror: sync top into a new image backed by the source's
    backing file (as QEMU creates it), -f a whole copy in the format
    given, -n into an image that exists."""
    base, top = chain(d)
    mirror = os.path.join(d, "m.qcow2")
    full = os.path.join(d, "full.raw")
    exist = os.path.join(d, "exist.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        exist)
    with Qmpd(["-drive", "if=none,id=drive0,format=qcow2,file=%s" % top]) \
            as q:
        c = q.connect()
        assert hmp(c, "drive_mirror drive0 %s" % mirror) == ""
        ready = c.event("BLOCK_JOB_READY", DEADLINE)["data"]
        assert ready["device"] == "drive0" and ready["type"] == "mirror"
        # only the top's 8 MiB are copied: the rest comes from base
        assert ready["len"] == 8 * MiB, ready
        assert hmp(c, "block_job_complete drive0") == ""
        c.event("BLOCK_JOB_COMPLETED", DEADLINE)
        assert "m.qcow2" in hmp(c, "info block drive0")

        assert hmp(c, "drive_mirror -f drive0 %s raw" % full) == ""
        ready = c.event("BLOCK_JOB_READY", DEADLINE)["data"]
        # what the chain holds: 0-12 MiB; the rest reads as zeroes
        assert ready["len"] >= 12 * MiB, ready
        assert hmp(c, "block_job_cancel drive0") == ""
        c.event("BLOCK_JOB_COMPLETED", DEADLINE)

        assert hmp(c, "drive_mirror -n drive0 %s" % exist) == ""
        c.event("BLOCK_JOB_READY", DEADLINE)
        assert hmp(c, "block_job_cancel drive0") == ""
        c.event("BLOCK_JOB_COMPLETED", DEADLINE)
        assert hmp(c, "drive_mirror drive0 %s/x.qcow2 foo" % d) == (
            "Error: Unknown file format 'foo'\r\n")
        assert hmp(c, "drive_mirror nosuch %s/x.qcow2" % d) == (
            "Error: Cannot find device='nosuch' nor node-name='nosuch'\r\n")
        c.cmd("quit")
        q.wait()
    check_images([base, top, mirror, exist])
    assert chain_of(mirror) == ["m.qcow2", "base.qcow2"]
    same_view(mirror, top)
    same_view(full, top, "raw")
    same_view(exist, top)
    assert json.loads(img("info", "--output=json", full))["format"] == "raw"


@with_dir("qmpd-hmp-backup-")
def test_drive_backup(d):
    """drive_backup: -f a whole point-in-time copy, sync top into a new
    image over the source's backing file, -n into one that exists."""
    base, top = chain(d)
    whole = os.path.join(d, "whole.qcow2")
    part = os.path.join(d, "part.qcow2")
    exist = os.path.join(d, "exist.qcow2")
    img("create", "-q", "-f", "qcow2", exist, "64M")
    with Qmpd(["-drive", "if=none,id=drive0,format=qcow2,file=%s" % top]) \
            as q:
        c = q.connect()
        for line in ("drive_backup -f drive0 %s" % whole,
                     "drive_backup drive0 %s" % part,
                     "drive_backup -n -f drive0 %s" % exist):
            assert hmp(c, line) == "", line
            done = c.event("BLOCK_JOB_COMPLETED", DEADLINE)["data"]
            assert done["type"] == "backup" and "error" not in done, done
        # compression is not implemented: refused by name
        assert hmp(c, "drive_backup -c drive0 %s/c.qcow2" % d) == (
            "Error: qmpd does not support 'compress' in backup jobs\r\n")
        c.cmd("quit")
        q.wait()
    check_images([base, top, whole, part, exist])
    assert chain_of(whole) == ["whole.qcow2"]
    assert chain_of(part) == ["part.qcow2", "base.qcow2"]
    for copy in (whole, part, exist):
        same_view(copy, top)


@with_dir("qmpd-hmp-snapshot-")
def test_snapshot_blkdev(d):
    """snapshot_blkdev makes a new qcow2 top over the current one (or
    takes one that exists with -n); the guest writes go there."""
    base, top = chain(d)
    snap = os.path.join(d, "snap.qcow2")
    snap2 = os.path.join(d, "snap2.qcow2")
    with Qmpd(["-drive", "if=none,id=drive0,format=qcow2,file=%s" % top]) \
            as q:
        c = q.connect()
        assert hmp(c, "snapshot_blkdev drive0 %s" % snap) == ""
        assert hmp(c, 'qemu-io drive0 "write -P 0x33 0 1M"') == ""
        assert hmp(c, "snapshot_blkdev -n drive0 %s/nonexist.qcow2" % d) == (
            "Error: Could not open '%s/nonexist.qcow2': No such file or "
            "directory\r\n" % d)
        img("create", "-q", "-f", "qcow2", "-b", snap, "-F", "qcow2", snap2)
        assert hmp(c, "snapshot_blkdev -n drive0 %s qcow2" % snap2) == ""
        info = hmp(c, "info block drive0")
        assert "snap2.qcow2 (qcow2)" in info and \
            "Backing file:     %s (chain depth: 3)" % snap in info, info
        c.cmd("quit")
        q.wait()
    check_images([base, top, snap, snap2])
    assert chain_of(snap2) == ["snap2.qcow2", "snap.qcow2", "top.qcow2",
                               "base.qcow2"]
    qemu_io(snap2, "read -P 0x33 0 1M", "read -P 0x11 1M 3M",
            "read -P 0x22 4M 8M")
    qemu_io(top, "read -P 0x11 0 1M")


if __name__ == "__main__":
    run([test_units, test_parse_errors, test_drive_mirror, test_drive_backup,
         test_snapshot_blkdev])
