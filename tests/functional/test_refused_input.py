#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad input refused as QEMU 7.2 refuses it, and nothing changed.

The file driver opens regular files (and, standing in for QEMU's
host_device, block devices): /dev/zero, /dev/null, a FIFO or a
directory get "'file' driver requires '…' to be a regular file", a
read-write directory "Could not open '…': Is a directory" and a file
whose end lseek() cannot find (/proc/self/mem) "Could not refresh total
sector count: Invalid argument"; no node is left.  Device ids must be
identifiers, checked before the drive; a drive a device has is "already
in use by another device", or, for a -drive with a device of its own,
"…automatically connected to another device (did you need 'if=none' in
the drive options?)".  When qemu-system-x86_64 is installed, the same
commands and command lines run on it and its messages must be qmpd's.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
import reference  # noqa: E402

REGULAR = "'file' driver requires '%s' to be a regular file"


def file_cases(d):
    """(blockdev-add arguments, QEMU's error)."""
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    sub = os.path.join(d, "dir")
    os.mkdir(sub)
    cases = []
    for path in ("/dev/zero", "/dev/null", fifo):
        cases.append(({"filename": path}, REGULAR % path))
    cases += [
        ({"filename": sub}, "Could not open '%s': Is a directory" % sub),
        ({"filename": sub, "read-only": True}, REGULAR % sub),
        ({"filename": sub, "auto-read-only": True}, REGULAR % sub),
        ({"filename": "/proc/self/mem"},
         "Could not refresh total sector count: Invalid argument"),
    ]
    return cases


def blockdev_errors(d, qemu):
    q, c = reference.start([], qemu=qemu)
    try:
        got = []
        for i, (opts, _) in enumerate(file_cases(d)):
            r = c.execute("blockdev-add", dict(
                {"driver": "file", "node-name": "n%d" % i}, **opts))
            got.append(r.get("error", {}).get("desc"))
            assert c.cmd("query-named-block-nodes") == [], opts
        return got
    finally:
        q.close()


def test_file_not_regular():
    d = tempfile.mkdtemp(prefix="qmpd-refused-")
    try:
        ours = blockdev_errors(d, False)
        shutil.rmtree(d)
        os.mkdir(d)
        assert ours == [e for _, e in file_cases(d)], ours
        # a regular file still opens, read-write and read-only
        path = os.path.join(d, "ok.raw")
        img("create", "-q", "-f", "raw", path, "1M")
        q, c = reference.start(["-blockdev", "driver=file,node-name=ok,"
                                "filename=%s,read-only=on" % path])
        try:
            c.cmd("blockdev-add", driver="file", **{"node-name": "rw",
                                                    "filename": path,
                                                    "locking": "off"})
            sizes = {n["node-name"]: n["image"]["virtual-size"]
                     for n in c.cmd("query-named-block-nodes")}
            assert sizes == {"ok": 1 << 20, "rw": 1 << 20}, sizes
        finally:
            q.close()
        if qemu_binary():
            shutil.rmtree(d)
            os.mkdir(d)
            theirs = blockdev_errors(d, True)
            assert ours == theirs, (ours, theirs)
    finally:
        shutil.rmtree(d)


DEVICE_ADDS = [
    ({"id": "x\n(qemu) y", "drive": "drive0"},
     "Parameter 'id' expects an identifier"),
    ({"id": "../vd0", "drive": "drive0"},
     "Parameter 'id' expects an identifier"),
    ({"id": "", "drive": "drive0"}, "Parameter 'id' expects an identifier"),
    ({"id": "1abc", "drive": "drive0"},
     "Parameter 'id' expects an identifier"),
    # the id is checked before the drive
    ({"id": "bad id", "drive": "nope"},
     "Parameter 'id' expects an identifier"),
    ({"id": "a.b-c_d", "drive": "drive0"}, None),
    ({"id": "vd1", "drive": "drive0"},
     "Drive 'drive0' is already in use by another device"),
    ({"id": "../x", "drive": "drive0"},
     "Parameter 'id' expects an identifier"),
    ({"id": "a.b-c_d", "drive": "drive0"}, "Duplicate device ID 'a.b-c_d'"),
    ({"id": "vd1", "drive": "drive1"}, None),
    ({"id": "vd2", "drive": "drive1"},
     "Drive 'drive1' is already in use by another device"),
]


def device_errors(path, qemu):
    q, c = reference.start([
        "-M", "pc",
        "-drive", "if=none,id=drive0,file=%s,format=qcow2" % path,
        "-drive", "if=none,id=drive1,file=%s,format=qcow2,read-only=on,"
        "file.locking=off" % path], qemu=qemu)
    try:
        got = []
        for args, _ in DEVICE_ADDS:
            r = c.execute("device_add", dict(driver="virtio-blk-pci", **args))
            got.append(r.get("error", {}).get("desc"))
        ids = sorted((b["device"], b.get("qdev"))
                     for b in c.cmd("query-block"))
        c.cmd("quit")
        return got, ids
    finally:
        q.close()


CMDLINES = [
    (["-drive", "if=none,id=drive0,file=%(p)s,format=qcow2",
      "-device", "virtio-blk-pci,drive=drive0,id=a",
      "-device", "virtio-blk-pci,drive=drive0,id=b"],
     "-device virtio-blk-pci,drive=drive0,id=b: Drive 'drive0' is already "
     "in use by another device"),
    # QEMU makes -drive if=virtio's device after every -device
    (["-drive", "if=virtio,id=drive0,file=%(p)s,format=qcow2",
      "-device", "virtio-blk-pci,drive=drive0,id=b"],
     "-drive if=virtio,id=drive0,file=%(p)s,format=qcow2: Drive 'drive0' "
     "is already in use because it has been automatically connected to "
     "another device (did you need 'if=none' in the drive options?)"),
    (["-drive", "if=none,id=drive0,file=%(p)s,format=qcow2",
      "-device", "virtio-blk-pci,drive=drive0,id=1b"],
     "-device virtio-blk-pci,drive=drive0,id=1b: Parameter 'id' expects an "
     "identifier"),
]


def first_error(prog, args):
    p = subprocess.run([prog, "-M", "pc", "-nodefaults", "-display", "none",
                        "-S"] + args, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (prog, args, p.returncode, p.stderr)
    line = p.stderr.splitlines()[0]
    return line.split(": ", 1)[1]


def test_device_ids():
    d = tempfile.mkdtemp(prefix="qmpd-refused-")
    try:
        path = os.path.join(d, "d.qcow2")
        img("create", "-q", "-f", "qcow2", path, "16M")
        ours = device_errors(path, False)
        assert ours == ([e for _, e in DEVICE_ADDS],
                        [("drive0", "/machine/peripheral/a.b-c_d/"
                          "virtio-backend"),
                         ("drive1", "/machine/peripheral/vd1/"
                          "virtio-backend")]), ours
        for args, msg in CMDLINES:
            args = [a % {"p": path} for a in args]
            assert first_error(binary(), args) == msg % {"p": path}, args
            if qemu_binary():
                assert first_error(qemu_binary(), args) == \
                    msg % {"p": path}, args
        if qemu_binary():
            theirs = device_errors(path, True)
            assert ours == theirs, (ours, theirs)
        check_clean(path)
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run([test_file_not_regular, test_device_ids], needs=[need_tools])
