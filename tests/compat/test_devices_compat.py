#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Disk device properties against QEMU 7.2: the same command lines and
device_add calls must fail with the same message, and qom-get must show
the same values.  Skips (77) when QEMU is not installed.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, Skip, binary, qemu_binary, run  # noqa: E402

DEADLINE = 60

# -device options after "DRIVER,drive=d0" (and -device virtio-scsi-pci)
DEVICE_CASES = [
    "werror=foo", "rerror=bar", "werror=stop,rerror=enospc",
    "logical_block_size=1000", "logical_block_size=256",
    "logical_block_size=3", "logical_block_size=4M",
    "logical_block_size=abc", "logical_block_size=3k",
    "logical_block_size=4096", "physical_block_size=1000",
    "logical_block_size=4096,physical_block_size=512",
    "id=dev0,logical_block_size=1000", "id=dev0,physical_block_size=100",
    "discard_granularity=1000", "discard_granularity=-1",
    "discard_granularity=4294967296", "min_io_size=1000",
    "opt_io_size=3", "min_io_size=4G",
    "logical_block_size=4096,physical_block_size=4096",
    "logical_block_size=4096,physical_block_size=4096,"
    "discard_granularity=512",
    "logical_block_size=4096,physical_block_size=4096,"
    "discard_granularity=0",
    "discard_granularity=4096,physical_block_size=4096,"
    "logical_block_size=4096",
    "serial=0123456789012345678901234567890123456789,discard_granularity=0",
]

DRIVE_CASES = [
    "werror=foo", "rerror=enospc", "werror=auto", "rerror=bad,werror=bad",
    "serial=abc", "serial=x,werror=bad",
]

QOM_PROPS = ["type", "drive", "serial", "logical_block_size",
             "physical_block_size", "discard_granularity", "min_io_size",
             "opt_io_size", "werror", "rerror", "nosuch"]


def first_error(prog, args):
    p = subprocess.run([prog, "-display", "none", "-nodefaults", "-S"]
                       + args + ["-qmp", "stdio"],
                       input=b'{"execute": "qmp_capabilities"}\n'
                       b'{"execute": "quit"}\n', capture_output=True,
                       timeout=DEADLINE)
    lines = p.stderr.decode().splitlines()
    line = lines[0] if lines else ""
    return p.returncode, line.split(": ", 1)[1] if ": " in line else line


def need_qemu():
    if not qemu_binary() or not shutil.which("qemu-img"):
        raise Skip("QEMU 7.2 not installed")


def with_disk(fn):
    """The test gets a 1 MiB qcow2 image in a fresh directory, which
    must pass qemu-img check afterwards."""
    def wrapper():
        need_qemu()
        d = tempfile.mkdtemp(prefix="qmpd-devcompat-")
        try:
            path = os.path.join(d, "disk.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path,
                            "1M"], check=True)
            fn(path)
            subprocess.run(["qemu-img", "check", path], check=True,
                           capture_output=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    wrapper.__name__ = fn.__name__
    return wrapper


@with_disk
def test_command_line_errors(path):
    drive = "file=%s,format=qcow2,if=none,id=d0" % path
    cases = []
    for drv in ("virtio-blk-pci", "scsi-hd", "ide-hd"):
        for opts in DEVICE_CASES:
            cases.append(["-M", "pc", "-drive", drive,
                          "-device", "virtio-scsi-pci",
                          "-device", "%s,drive=d0,%s" % (drv, opts)])
    for opts in DRIVE_CASES:
        cases.append(["-M", "pc", "-drive", drive + "," + opts])
    cases.append(["-M", "none", "-drive",
                  "driver=null-co,if=none,serial=x"])
    bad = []
    for args in cases:
        theirs = first_error(qemu_binary(), args)
        ours = first_error(binary(), args)
        if theirs != ours:
            bad.append("%s\n  qemu: %r\n  qmpd: %r"
                       % (" ".join(args), theirs, ours))
    assert not bad, "\n".join(bad)


def qom_transcript(binary_path, path):
    """device_add errors and qom-get values on one side."""
    t = []
    with Qmpd(["-M", "pc", "-S",
               "-drive", "file=%s,format=qcow2,if=none,id=d0" % path,
               "-blockdev", "driver=null-co,node-name=n1",
               "-blockdev", "driver=null-co,node-name=n2",
               "-blockdev", "driver=null-co,node-name=n3",
               "-device", "virtio-scsi-pci,id=scsi0",
               "-device", "virtio-blk-pci,drive=d0,id=vd0,serial=S1,"
               "logical_block_size=4096,physical_block_size=4096,"
               "werror=stop,opt_io_size=8192",
               "-device", "ide-hd,drive=n1,id=hd0,bus=ide.0,rerror=ignore",
               "-device", "ide-hd,drive=n2,bus=ide.1,serial=MINE",
               "-device", "scsi-hd,drive=n3,id=sd0,discard_granularity=64k"],
              binary_path=binary_path) as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="null-co", **{"node-name": "n4"})
        for args in [{"werror": "foo"}, {"logical_block_size": 1000},
                     {"logical_block_size": "1000"},
                     {"logical_block_size": "4k"},
                     {"werror": 5}, {"logical_block_size": -512},
                     {"discard_granularity": -1},
                     {"discard_granularity": 4294967296},
                     {"discard_granularity": 100},
                     {"physical_block_size": 8192, "logical_block_size":
                      4096, "min_io_size": 512}]:
            args = dict(args, driver="scsi-hd", drive="n4", id="x")
            t.append(("device_add", args, c.execute("device_add", args)))
        c.cmd("device_add", driver="scsi-hd", drive="n4", id="sd1",
              serial="late", physical_block_size="4k")
        for p in ["/machine/peripheral/vd0", "vd0/virtio-backend",
                  "/machine/peripheral/hd0", "/machine/peripheral-anon/"
                  "device[0]", "sd0", "sd1", "/machine/peripheral/nosuch",
                  "nosuch"]:
            for prop in QOM_PROPS:
                t.append((p, prop, c.execute("qom-get", {"path": p,
                                                         "property": prop})))
        c.cmd("quit")
        q.wait(DEADLINE)
    return t


@with_disk
def test_device_add_and_qom_get(path):
    theirs = qom_transcript(qemu_binary(), path)
    ours = qom_transcript(None, path)
    bad = ["%r\n  qemu: %r\n  qmpd: %r" % (a[:2], a[2], b[2])
           for a, b in zip(theirs, ours) if a != b]
    assert len(theirs) == len(ours) and not bad, "\n".join(bad)


if __name__ == "__main__":
    run([test_command_line_errors, test_device_add_and_qom_get])
