#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""HMP against QEMU 7.2, byte for byte: the same command lines typed
through human-monitor-command into qemu-system-x86_64 and qmpd, started
with the same -drive/-device lines over copies of the same images (each
side its own directory, masked as DIR).  Every line's text must be
equal, except the few listed in KNOWN with qmpd's own line; the job
speeds the unit-less sizes give, the sizes block_resize makes and the
images the jobs wrote (qemu-img check, and compare across the sides)
must be equal too.  Skips (77) without QEMU.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import need_qemu, need_qemu_utils, run  # noqa: E402
import reference  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60
TiB = 1 << 40

# Lines where qmpd must differ, with what it says instead (and why).
KNOWN = {
    # QEMU's new qcow2 medium takes its file's write lock as it opens,
    # qmpd's only once a device uses it: QEMU reports the other drive's
    # lock, qmpd the disk that is not removable
    "change drive0 DIR/c.qcow2":
        "Error: Device 'drive0' is not removable\r\n",
    # qmpd makes qcow2 overlays only
    "snapshot_blkdev drive0 DIR/s1.qcow2 foo":
        "Error: qmpd creates snapshot overlays in qcow2 format only\r\n",
}

PARSE_LINES = [
    "info block -x", "info   block   -x", "block_resize drive0 5\nx",
    "info status\nfoo", "  stop extra", "  nosuch", "info   nosuch",
    "info/x", "block_resize", "block_resize drive0",
    "block_job_cancel -x drive0", "block_job_cancel -",
    "block_job_cancel -f -f drive0", "drive_mirror", "drive_mirror drive0",
    "drive_mirror -c drive0 x", "drive_mirror -f -n drive0 x",
    "drive_mirror -nf drive0 x", "drive_backup -c -x drive0 x",
    'block_stream "drive0', 'block_stream "a\\"b"', "snapshot_blkdev",
    "snapshot_blkdev drive0", "help   info   nosuch", 'help "unterminated',
    "help drive_mirror", "help snapshot_blkdev", "help block_stream",
    "help drive_backup", "help block_resize", "help block_job_set_speed",
    "help block_job_cancel", "help info block", "help qemu-io",
    "block_job_set_speed", "block_job_set_speed drive0",
    "block_job_set_speed drive0 abc", "block_job_set_speed drive0 -1",
    "block_job_set_speed drive0 10x", "block_job_set_speed nosuch 1",
    "block_stream nosuch 1 base", "block_stream nosuch 1x",
    "block_job_complete", "block_job_pause x y", "qemu-io",
    "qemu-io drive0", 'qemu-io -x drive0 "read 0 1"',
    'qemu-io nosuch "read 0 512"', "device_del", "info version x",
    "info block drive0 extra", "info block -n -v -x", "stop|s",
    "help stop", "help s", "help help", "help ?", "help info status",
    "help info nosuch", "help nosuch", "help eject", "help change",
    "help drive_del", "help commit",
]

DRIVE_LINES = [
    "change vnc password", "change vnc passwd abc",
    "change vnc foo qcow2 retain", "change vnc foo",
    "change vnc password x bad", "eject", "eject drive0", "eject -f drive0",
    "eject vd0", "eject nosuch", "eject -x drive0", "eject -f -f drive0",
    "change drive0 DIR/c2.qcow2", "change vd0 DIR/c2.qcow2",
    "change nosuch DIR/x", "change drive0", "change drive0 DIR/x qcow2 bad",
    "change drive0 DIR/x qcow2 retain",
    "change drive0 DIR/c2.qcow2 raw read-write", "change -f drive0 DIR/x",
    "change drive0 -f DIR/x", "change drive0 DIR/c.qcow2",
    "change drive0 DIR/c2.qcow2 foo", "drive_del", "drive_del nosuch",
    "drive_del vd0", "drive_del drive0 x", "commit", "commit nosuch",
    "commit drive1", "commit all x",
    # a job holds drive1
    "drive_mirror -f drive1 DIR/m.qcow2", "WAIT BLOCK_JOB_READY",
    "drive_del drive1", "eject drive1", "change drive1 DIR/c2.qcow2",
    "block_job_cancel drive1", "WAIT BLOCK_JOB_COMPLETED",
    "drive_del drive1", "commit drive1", "drive_del spare",
    "drive_del spare",
]

# drive_add's address is ignored; the default interface is the machine's
ADD_LINES = [
    "drive_add", "drive_add 0", "drive_add -x 0 if=none", "help drive_add",
    "drive_add 0 if=none,id=x,file=DIR/c.qcow2",
    "drive_add dummy if=none,id=x,file=DIR/c2.qcow2",
    "drive_add 0 file=DIR/c2.qcow2,id=z",
    "drive_add 0 if=virtio,file=DIR/lone.qcow2,id=v",
    "drive_add 1:2 if=none,id=w,driver=null-co",
    "drive_add 0 if=none,id=bad,file=DIR/nonexist.qcow2",
    "drive_add 0 if=none,id=b2,file=DIR/lone.qcow2,bogus=1",
    "drive_add 0 if=none,file=DIR/lone.qcow2", "drive_add 0 if=none,"
    "driver=null-co", "drive_add 0 if=none,id=9x,driver=null-co",
    "drive_add 0 if=none,id=r,file=DIR/lone.qcow2,readonly=on",
    # empty option names (an empty one crashed qmpd: fuzz-hmp)
    "drive_add 0 if=none,driver=null-co,=x",
    "drive_add 0 if=none,driver=null-co,.=x",
    "drive_add 0 if=none,driver=null-co,file.=x",
    "drive_add -n 0 driver=null-co",
    "drive_add -n 0 driver=null-co,node-name=n1",
    "drive_add -n 0 driver=null-co,node-name=n1",
    "drive_add -n 0 if=none,driver=null-co,node-name=n2",
    "drive_add -n 0 driver=qcow2,file.driver=file,file.filename="
    "DIR/c.qcow2,node-name=n3", "drive_add 0 help", "info block",
    "drive_del x", "drive_add dummy if=none,id=x,file=DIR/c.qcow2",
    'qemu-io x "write -P 0x44 0 1M"', "drive_del n1", "info block -n",
]

JOB_LINES = [
    "snapshot_blkdev drive0", "snapshot_blkdev drive0 DIR/s1.qcow2 foo",
    "snapshot_blkdev drive0 DIR/s1.qcow2 raw",
    "snapshot_blkdev -n drive0 DIR/nonexist.qcow2",
    "drive_mirror drive0 DIR/mx.qcow2 foo", "drive_mirror nosuch DIR/mx.qcow2",
    "drive_mirror -n drive0 DIR/nonexist.qcow2",
    "drive_backup drive0 DIR/mx.qcow2 foo",
    "drive_backup -n drive0 DIR/nonexist.qcow2",
    "drive_backup nosuch DIR/mx.qcow2",
    "drive_backup -f drive0 DIR/full.qcow2", "WAIT BLOCK_JOB_COMPLETED",
    "drive_backup drive0 DIR/part.qcow2", "WAIT BLOCK_JOB_COMPLETED",
    "drive_mirror drive0 DIR/m1.qcow2", "WAIT BLOCK_JOB_READY",
    "drive_mirror drive0 DIR/m2.qcow2", "block_job_complete drive0",
    "WAIT BLOCK_JOB_COMPLETED", "snapshot_blkdev drive0 DIR/s2.qcow2",
    'qemu-io drive0 "write -P 0x33 0 1M"', "info block drive0",
]

UNIT_LINES = [
    "block_stream drive0 10", "SPEED", "block_job_set_speed drive0 1",
    "SPEED", "block_job_set_speed drive0 0.3k", "SPEED",
    "block_job_set_speed drive0 0.7k", "SPEED",
    "block_job_set_speed drive0 1.k", "SPEED",
    "block_job_set_speed drive0 1.", "SPEED",
    "block_job_set_speed drive0 0x10", "SPEED",
    "block_job_set_speed drive0 2048b", "SPEED",
    "block_job_set_speed drive0 7E", "SPEED",
    "block_job_set_speed drive0 8E", "block_job_set_speed drive0 1e3",
    "block_job_set_speed drive0 0x1p3", "block_job_set_speed drive0 0.5b",
    "block_job_cancel drive0", "WAIT BLOCK_JOB_CANCELLED",
    "block_resize drive2 300", "SIZE", "block_resize drive2 1.5", "SIZE",
    "block_resize drive2 4096B", "SIZE", "block_resize drive2 1.5b",
]


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), check=True,
                          capture_output=True, text=True,
                          timeout=DEADLINE).stdout


def qemu_io(path, cmd):
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, path], check=True,
                   capture_output=True, timeout=DEADLINE)


def make_images(d):
    qemu_img("create", "-q", "-f", "qcow2", os.path.join(d, "base.qcow2"),
             "64M")
    qemu_io(os.path.join(d, "base.qcow2"), "write -P 0x11 0 8M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F",
             "qcow2", os.path.join(d, "top.qcow2"))
    qemu_io(os.path.join(d, "top.qcow2"), "write -P 0x22 4M 8M")
    for name in ("c.qcow2", "c2.qcow2", "lone.qcow2"):
        qemu_img("create", "-q", "-f", "qcow2", os.path.join(d, name), "64M")
    qemu_img("create", "-q", "-f", "qcow2", os.path.join(d, "big.qcow2"),
             "1T")
    qemu_img("create", "-q", "-f", "raw", os.path.join(d, "r.img"), "1M")


def transcript(root, side, args, lines):
    """Run @lines on one side in its own copy of the images: the text of
    each (DIR for the directory, node names masked), job speeds, sizes."""
    d = os.path.join(root, side)
    os.mkdir(d)
    make_images(d)
    q, c = reference.start([a.replace("DIR", d) for a in args],
                           qemu=(side == "qemu"))
    out = []
    try:
        for line in lines:
            if line.startswith("WAIT "):
                ev = c.event(line[5:], DEADLINE)
                out.append((line, ev["data"].get("error")))
            elif line == "SPEED":
                out.append((line, [j["speed"]
                                   for j in c.cmd("query-block-jobs")]))
            elif line == "SIZE":
                out.append((line, [b["inserted"]["image"]["virtual-size"]
                                   for b in c.cmd("query-block")
                                   if b["device"] == "drive2"]))
            else:
                text = hmp(c, line.replace("DIR", d)).replace(d, "DIR")
                out.append((line, re.sub(r"#block\d+", "#blockN", text)))
        c.cmd("quit")
        q.wait()
    finally:
        q.close()
    return d, out


def compare(args, lines, images=(), checked=()):
    need_qemu()
    need_qemu_utils()
    root = tempfile.mkdtemp(prefix="qmpd-hmpcompat-")
    try:
        qd, want = transcript(root, "qemu", args, lines)
        md, got = transcript(root, "qmpd", args, lines)
        bad = []
        for (line, w), (_, g) in zip(want, got):
            expect = KNOWN.get(line, w)
            if g != expect:
                bad.append("%r\n  qemu: %r\n  qmpd: %r" % (line, w, g))
        assert not bad, "\n".join(bad)
        for name in list(images) + list(checked):
            for side in (qd, md):
                if name.endswith(".qcow2"):     # raw has nothing to check
                    qemu_img("check", "-q", os.path.join(side, name))
        for name in images:
            qemu_img("compare", "-q", os.path.join(qd, name),
                     os.path.join(md, name))
        sys.stderr.write("# %d lines equal\n" % len(lines))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_parse_errors():
    compare(["-drive", "if=none,id=drive0,file=DIR/top.qcow2"], PARSE_LINES)


def test_drive_commands():
    compare(["-M", "pc", "-nodefaults", "-display", "none",
             "-drive", "if=none,id=drive0,file=DIR/top.qcow2",
             "-device", "virtio-blk-pci,drive=drive0,id=vd0",
             "-drive", "if=none,id=drive1,file=DIR/lone.qcow2",
             "-blockdev", "driver=null-co,node-name=spare"], DRIVE_LINES,
            ["top.qcow2", "lone.qcow2", "m.qcow2"])


def test_drive_add_pc():
    compare(["-M", "pc", "-nodefaults"], ADD_LINES, ["c.qcow2"])


def test_drive_add_none():
    compare(["-M", "none"], ADD_LINES, ["c.qcow2", "c2.qcow2"])


def test_job_commands():
    compare(["-drive", "if=none,id=drive0,file=DIR/top.qcow2"], JOB_LINES,
            ["base.qcow2", "top.qcow2", "full.qcow2", "part.qcow2",
             "m1.qcow2", "s2.qcow2"])


def test_units():
    compare(["-blockdev", "driver=null-co,node-name=nbase,size=%d" % TiB,
             "-blockdev", "driver=qcow2,node-name=drive0,file.driver=file,"
             "file.filename=DIR/big.qcow2,backing=nbase",
             "-drive", "if=none,id=drive2,format=raw,file=DIR/r.img"],
            UNIT_LINES, ["r.img"],
            # how far each stream got over null-co is the machine's load
            checked=["big.qcow2"])


if __name__ == "__main__":
    run([test_parse_errors, test_drive_commands, test_drive_add_pc,
         test_drive_add_none, test_job_commands, test_units])
