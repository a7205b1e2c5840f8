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
The board's disks answer qom-get as QEMU's (type, drive, unit, default
serial), and /machine/unattached lists them.
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


# The properties asked of each disk (bootindex: unset, -1)
QOM_PROPS = ("type", "drive", "unit", "serial", "bootindex", "nosuch")


def qom_layouts(d, e, f):
    """(command line, paths: the board's two disks, then the -device
    one, by partial path on pc)."""
    dev = ["-drive", "if=none,id=n0,format=qcow2,file=" + f]
    return [
        (["-M", "pc", "-hda", d, "-drive", "file=%s,format=qcow2,if=ide,"
          "index=2" % e] + dev + ["-device", "ide-hd,drive=n0,bus=ide.1,"
                                  "unit=1,id=hdx"],
         [U % 18, U % 19, "device[18]"]),
        (["-M", "q35", "-hdb", d, "-drive", "file=%s,format=qcow2,if=ide,"
          "index=4" % e] + dev + ["-device", "ide-hd,drive=n0,bus=ide.2"],
         [U % 16, U % 17, "/machine/peripheral-anon/device[0]"]),
    ]


def qom_replies(args, paths, qemu):
    """The replies to qom-get of each disk path's QOM_PROPS, and to
    qom-get/qom-list of /machine/unattached (the list: its ide-hd
    entries and whether all of qmpd's are there)."""
    q, c = reference.start(args, qemu=qemu)
    try:
        out = []
        for p in paths:
            for prop in QOM_PROPS:
                r = c.execute("qom-get", {"path": p, "property": prop})
                r.pop("id", None)
                out.append((p, prop, r))
        for prop in ("type", "foo"):
            r = c.execute("qom-get", {"path": "/machine/unattached",
                                      "property": prop})
            r.pop("id", None)
            out.append(("/machine/unattached", prop, r))
        listed = c.cmd("qom-list", path="/machine/unattached")
        machine = [e["name"] for e in c.cmd("qom-list", path="/machine")]
        c.cmd("quit")
        q.wait()
        return out, listed, "unattached" in machine
    finally:
        q.close()


def test_qom_of_board_disks():
    """The ide-hd the board makes for -hdX and -drive if=ide answers
    qom-get as QEMU's (type, drive, unit, default serial QM%05d of
    its place: 2 units per bus, AHCI's too, whatever the bus holds),
    found by full or partial path; /machine/unattached is a container
    qom-list shows under /machine, listing the disks (qmpd's entries are
    a part of QEMU's, which holds the whole board)."""
    tmp = tempfile.mkdtemp(prefix="qmpd-hd-")
    try:
        files = [os.path.join(tmp, n) for n in ("d.qcow2", "e.qcow2",
                                                "f.qcow2")]
        for f in files:
            img("create", "-q", "-f", "qcow2", f, "16M")
        for args, paths in qom_layouts(*files):
            ours, listed, shown = qom_replies(args, paths, False)
            assert shown
            assert listed[0] == {"name": "type", "type": "string"}, listed
            # the board's other child there is the vCPU (device[0])
            assert {"name": "device[0]",
                    "type": "child<qemu64-x86_64-cpu>"} in listed, listed
            listed = [e for e in listed
                      if e["type"] != "child<qemu64-x86_64-cpu>"]
            disks = sorted(e["name"] for e in listed[1:])
            assert disks == sorted(p.split("/")[-1] for p in paths[:2]) \
                and all(e["type"] == "child<ide-hd>" for e in listed[1:]), \
                listed
            got = {(p, prop): r.get("return") for p, prop, r in ours}
            assert got[(paths[0], "type")] == "ide-hd", ours
            assert got[(paths[0], "drive")] == ("ide0-hd0" if "pc" in args
                                                else "ide1-hd0"), ours
            assert got[("/machine/unattached", "type")] == "container"
            if qemu_binary():
                theirs, their_list, their_shown = qom_replies(args, paths,
                                                              True)
                bad = ["%r %r\n  qemu: %r\n  qmpd: %r" % (a[0], a[1], a[2],
                                                         b[2])
                       for a, b in zip(theirs, ours) if a != b]
                assert not bad, "\n".join(bad)
                assert their_shown
                assert all(e in their_list for e in listed), listed
        for f in files:
            check_clean(f)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    run([test_layouts_and_refusals, test_guest_write_through_ide,
         test_qom_of_board_disks], needs=[need_tools])
