#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Disk device properties against QEMU 7.2: the same command lines and
device_add calls must fail with the same message, and qom-get must show
the same values: the block sizes and error policy, the addresses (PCI
slot/function, IDE unit, SCSI channel/target/LUN: given, refused, or
assigned by default), bootindex, num-queues, and -drive index/bus/unit
naming.  The property names qmpd takes, refuses as unmodelled, or does
not know are checked against QEMU's -device DRIVER,help.  Skips (77)
when QEMU is not installed.
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

NULLS = ["-blockdev", "driver=null-co,node-name=n1",
         "-blockdev", "driver=null-co,node-name=n2",
         "-blockdev", "driver=null-co,node-name=n3"]


def dev(*specs, machine="pc"):
    """A command line: @machine, three null nodes, -device @specs."""
    args = ["-M", machine] + NULLS
    for spec in specs:
        args += ["-device", spec]
    return args


# Buses, addresses and the other device properties: each command line
# fails (or starts) on both with the same first message
ADDRESS_CASES = [
    # buses
    dev("virtio-blk-pci,drive=n1,bus=nonexistent"),
    dev("virtio-blk-pci,drive=n1,bus=ide.0"),
    dev("virtio-blk-pci,drive=n1,bus=pcie.0"),
    dev("virtio-blk-pci,drive=n1,bus="),
    dev("virtio-blk-pci,drive=n1,bus=pci.0/"),
    dev("virtio-blk-pci,drive=n1,bus=pci.0", machine="q35"),
    dev("ide-hd,drive=n1,bus=pcie.0", machine="q35"),
    dev("ide-hd,drive=n1,bus=pci.0"),
    dev("ide-hd,drive=n1,bus=ide.2"),
    dev("ide-hd,drive=n1,bus=ide.6", machine="q35"),
    dev("virtio-blk-pci,drive=n1", machine="none"),
    dev("virtio-scsi-pci", machine="none"),
    dev("scsi-hd,drive=n1", machine="none"),
    dev("ide-hd,drive=n1", machine="none"),
    dev("scsi-hd,drive=n1"),
    dev("virtio-scsi-pci,id=s", "scsi-hd,drive=n1,bus=s"),
    dev("virtio-scsi-pci,id=s", "scsi-hd,drive=n1,bus=s.1"),
    dev("virtio-scsi-pci,id=s", "virtio-blk-pci,drive=n1,bus=s.0"),
    dev("virtio-scsi-pci,id=s", "virtio-scsi-pci,bus=s.0"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,bus=scsi.1"),
    dev("virtio-scsi-pci", "virtio-scsi-pci", "scsi-hd,drive=n1,bus=scsi.1"),
    # PCI addresses
    dev("virtio-blk-pci,drive=n1,addr=zz"), dev("virtio-blk-pci,drive=n1,addr=3.8"),
    dev("virtio-blk-pci,drive=n1,addr=32"), dev("virtio-blk-pci,drive=n1,addr=20"),
    dev("virtio-blk-pci,drive=n1,addr=-1"), dev("virtio-blk-pci,drive=n1,addr="),
    dev("virtio-blk-pci,drive=n1,addr=3."), dev("virtio-blk-pci,drive=n1,addr=.1"),
    dev("virtio-blk-pci,drive=n1,addr=1g"), dev("virtio-scsi-pci,addr=ff.0"),
    dev("virtio-blk-pci,drive=n1,addr=0"), dev("virtio-blk-pci,drive=n1,addr=1"),
    dev("virtio-blk-pci,drive=n1,addr=1.1"), dev("virtio-scsi-pci,addr=1.3"),
    dev("virtio-blk-pci,drive=n1,addr=0", machine="q35"),
    dev("virtio-blk-pci,drive=n1,addr=1f", machine="q35"),
    dev("virtio-scsi-pci,addr=1f.2", machine="q35"),
    dev("virtio-scsi-pci,addr=1f.3", machine="q35"),
    dev("virtio-blk-pci,drive=n1,addr=3", "virtio-blk-pci,drive=n2,addr=3"),
    dev("virtio-blk-pci,drive=n1,addr=3,id=a", "virtio-scsi-pci,addr=3"),
    dev("virtio-blk-pci,drive=n1,addr=3", "virtio-blk-pci,drive=n2,addr=3.1"),
    dev("virtio-blk-pci,drive=n1,addr=3.1", "virtio-blk-pci,drive=n2,addr=3"),
    dev("virtio-blk-pci,drive=n1,addr=3.1", "virtio-blk-pci,addr=3"),
    dev("virtio-blk-pci,drive=n1,addr=3,multifunction=on",
        "virtio-blk-pci,drive=n2,addr=3.1"),
    dev("virtio-blk-pci,drive=n1,addr=3.1",
        "virtio-scsi-pci,addr=3,multifunction=on"),
    dev("virtio-blk-pci,drive=n1,addr=1.2"),
    dev("virtio-blk-pci,drive=n1,multifunction=maybe"),
    dev("virtio-blk-pci,drive=n1,multifunction=y"),
    # bootindex, num-queues
    dev("virtio-blk-pci,drive=n1,bootindex=abc"),
    dev("virtio-blk-pci,drive=n1,bootindex=2147483648"),
    dev("ide-hd,drive=n1,bootindex=1k"), dev("ide-hd,drive=n1,bootindex="),
    dev("virtio-blk-pci,drive=n1,bootindex=1", "ide-hd,drive=n2,bootindex=1"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,bootindex=0x10",
        "virtio-blk-pci,drive=n2,bootindex=16"),
    dev("virtio-blk-pci,drive=n1,bootindex=-1", "ide-hd,drive=n2,bootindex=-1"),
    dev("virtio-blk-pci,drive=n1,num-queues=0"),
    dev("virtio-blk-pci,drive=n1,num-queues=65536"),
    dev("virtio-blk-pci,drive=n1,num-queues=-1"),
    dev("virtio-blk-pci,drive=n1,num-queues=x"),
    dev("virtio-blk-pci,num-queues=0"),
    dev("virtio-blk-pci,drive=n1,addr=1,num-queues=0"),
    # SCSI addresses
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=256"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,lun=16384"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,channel=1"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,channel=-1"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=-1"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=2147483648"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,lun=2147483648"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=x"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=900,lun=99999"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=0,lun=0,id=a",
        "scsi-hd,drive=n2,scsi-id=0,lun=0"),
    dev("virtio-scsi-pci", "scsi-hd,drive=n1,scsi-id=0,lun=0",
        "scsi-hd,drive=n2,scsi-id=0,lun=0"),
    dev("virtio-scsi-pci", "scsi-hd,scsi-id=300"),
    dev("virtio-scsi-pci", "scsi-hd"),
    # IDE units
    dev("ide-hd,drive=n1,unit=2"), dev("ide-hd,drive=n1,unit=-1"),
    dev("ide-hd,drive=n1,unit=x"), dev("ide-hd,drive=n1,unit=4294967296"),
    dev("ide-hd,drive=n1", "ide-hd,drive=n2", "ide-hd,drive=n3"),
    dev("ide-hd,drive=n1", "ide-hd,drive=n2", machine="q35"),
    dev("ide-hd,drive=n1,unit=1,bus=ide.0", machine="q35"),
    dev("ide-hd,drive=n1,unit=1", "ide-hd,drive=n2,unit=1"),
    dev("ide-hd,drive=n1,bus=ide.0", "ide-hd,drive=n2,bus=ide.0",
        "ide-hd,drive=n3,bus=ide.0"),
    dev("ide-hd"), dev("ide-hd,unit=3"),
    # what a model does not have, ids
    dev("virtio-blk-pci,drive=n1,foo=1"), dev("virtio-blk-pci,drive=n1,scsi-id=1"),
    dev("virtio-blk-pci,drive=n1,lun=1"), dev("virtio-blk-pci,drive=n1,unit=1"),
    dev("virtio-blk-pci,drive=n1,num_queues=2"),
    dev("scsi-hd,drive=n1,unit=1"), dev("virtio-scsi-pci", "scsi-hd,drive=n1,addr=3"),
    dev("ide-hd,drive=n1,num-queues=1"), dev("ide-hd,drive=n1,scsi-id=1"),
    dev("virtio-scsi-pci,drive=n1"), dev("virtio-scsi-pci,bootindex=1"),
    dev("virtio-scsi-pci,num-queues=2"), dev("virtio-scsi-pci,serial=x"),
    dev("virtio-blk-pci,drive=n1,id=1a"), dev("virtio-blk-pci,drive=n1,id="),
    dev("nosuch,id=1a"), dev("virtio-blk,drive=n1,bus=ide.0"),
    dev("virtio-scsi,addr=0"),
]


def drives(*specs):
    """A command line of -drive @specs over images d0, d1, ... ."""
    args = ["-M", "pc"]
    for i, spec in enumerate(specs):
        args += ["-drive", "file=%%(dir)s/d%d.qcow2,format=qcow2,%s"
                 % (i, spec)]
    return args


DRIVE_INDEX_CASES = [
    drives("if=none,index=1,bus=1"), drives("if=none,index=1,unit=0"),
    drives("if=none,index=abc"), drives("if=none,index=1k"),
    drives("if=none,unit="), drives("if=none,bus=x,unit=y"),
    drives("if=none,unit=y,index=x"), drives("if=none,bus=y,index=x"),
    drives("if=none,index=99999999999999999999999"),
    drives("if=none,index=0", "if=none,index=0"),
    drives("if=none,index=0", "if=none,unit=0,bus=0"),
    drives("if=none,index=1,id=x", "if=none,unit=1"),
    drives("if=none,bus=1,unit=0", "if=none,bus=1,unit=0,werror=foo"),
    drives("if=virtio,index=1", "if=virtio,unit=1"),
    drives("if=none,index=1,unit=1,format=foo"),
    drives("if=none,read-only=on,readonly=off"),
    drives("if=none,readonly=on,read-only=on,index=x"),
    drives("if=none,id=1a"), drives("if=none,id=a,index=1a"),
    # the drivers' byte sizes take a suffix on -drive (not on -blockdev)
    drives("if=none,cache-size=1M"), drives("if=none,l2-cache-size=1M"),
    drives("if=none,refcount-cache-size=64k,l2-cache-entry-size=64k"),
    drives("if=none,cache-size=x"), drives("if=none,l2-cache-size=-1"),
    ["-drive", "driver=null-co,if=none,size=1.5k"],
    ["-drive", "driver=null-co,if=none,size=1M,read-zeroes=on"],
    ["-drive", "driver=raw,if=none,file.driver=null-co,file.size=2M"],
    ["-drive", "driver=raw,if=none,offset=1k,size=2k,file.driver=null-co,"
     "file.size=4k"],
    ["-drive", "driver=raw,if=none,file.driver=blkdebug,"
     "file.image.driver=null-co,file.align=4k,file.max-transfer=64k,"
     "file.opt-write-zero=8k,file.max-write-zero=64k,file.opt-discard=8k,"
     "file.max-discard=64k"],
    ["-blockdev", "driver=qcow2,node-name=q,file.driver=file,"
     "file.filename=%(dir)s/d0.qcow2,l2-cache-size=1M"],
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
    compare_errors(cases)


def compare_errors(cases):
    """Each command line starts, or fails with the same first message."""
    bad = []
    for args in cases:
        theirs = first_error(qemu_binary(), args)
        ours = first_error(binary(), args)
        if theirs != ours:
            bad.append("%s\n  qemu: %r\n  qmpd: %r"
                       % (" ".join(args), theirs, ours))
    assert not bad, "\n".join(bad)


def test_address_errors():
    need_qemu()
    compare_errors(ADDRESS_CASES)


def test_drive_index():
    """-drive index/bus/unit: the ids they give, the errors they cause."""
    need_qemu()
    d = tempfile.mkdtemp(prefix="qmpd-devcompat-")
    try:
        images = [os.path.join(d, "d%d.qcow2" % i) for i in range(3)]
        for path in images:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path,
                            "1M"], check=True)
        compare_errors([[a % {"dir": d} for a in args]
                        for args in DRIVE_INDEX_CASES])
        # the ids (and devices) a command line gives, as info block shows
        for specs in [("if=none,index=3",), ("if=none,unit=2",),
                      ("if=none,bus=2,unit=1",), ("if=none,index=-2",),
                      ("if=none,index=2147483648",), ("if=none,index=0x10",),
                      ("if=none,id=foo", "if=none"),
                      ("if=none,id=none0", "if=none"),
                      ("if=virtio,id=foo", "if=virtio", "if=none"),
                      ("if=virtio,index=2", "if=virtio", "if=none,unit=1"),
                      ("if=none,bus=1", "if=none,bus=1")]:
            args = [a % {"dir": d} for a in drives(*specs)]
            cmds = [("human-monitor-command",
                     {"command-line": "info block"})]
            cmds += [("qom-get", {"path": "/machine/peripheral-anon/"
                                  "device[%d]" % i, "property": p})
                     for i in range(2) for p in ("drive", "addr")]
            theirs = stdio_session(qemu_binary(), args, cmds)
            ours = stdio_session(binary(), args, cmds)
            # node names are numbered differently
            theirs[0] = re.sub(r" \(#block\d+\)", "", theirs[0])
            ours[0] = re.sub(r" \(#block\d+\)", "", ours[0])
            assert theirs == ours, (specs, theirs, ours)
        for path in images:
            subprocess.run(["qemu-img", "check", "-q", path], check=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def stdio_session(prog, args, cmds, nodefaults=True):
    """The replies to @cmds (QMP over stdio), values or (class, desc)."""
    lines = [{"execute": "qmp_capabilities"}]
    lines += [{"execute": n, "arguments": a} for n, a in cmds]
    lines.append({"execute": "quit"})
    p = subprocess.run([prog, "-display", "none", "-S"]
                       + (["-nodefaults"] if nodefaults else []) + args
                       + ["-qmp", "stdio"],
                       input="".join(json.dumps(m) + "\n"
                                     for m in lines).encode(),
                       capture_output=True, timeout=DEADLINE)
    replies = [json.loads(line) for line in p.stdout.decode().splitlines()]
    replies = [r for r in replies if "return" in r or "error" in r]
    assert len(replies) == len(lines), (prog, args, p.stderr)
    return [r["return"] if "return" in r
            else (r["error"]["class"], r["error"]["desc"])
            for r in replies[1:-1]]


def default_drive_scenarios(img):
    """Command lines for the board's default drives: each machine with
    and without -nodefaults, then what takes the CD-ROM's place (-cdrom,
    a disk or CD-ROM at index 2 or at its bus and unit, a -device
    ide-cd, ide-hd or scsi-cd) or leaves it (index 3, virtio-blk-pci),
    and what moves the board's devices (-vga none, -serial none, two
    -serial ports)."""
    raw = "file=%s,format=raw" % img
    out = [(["-M", m], nd) for m in ("pc", "q35", "none")
           for nd in (False, True)]
    for m in ("pc", "q35"):
        out += [(["-M", m, "-cdrom", img], False),
                (["-M", m, "-cdrom", img], True),
                (["-M", m, "-drive", raw + ",if=ide,index=2"], False),
                (["-M", m, "-drive", "if=ide,index=2,media=cdrom,id=x"],
                 False),
                (["-M", m, "-drive", "if=ide,index=3,media=cdrom"], False),
                (["-M", m, "-vga", "none", "-drive", raw + ",if=ide"],
                 False),
                (["-M", m, "-serial", "none"], False),
                (["-M", m, "-serial", "null", "-serial", "null"], False)]
    out += [(["-M", "pc", "-drive", "if=ide,bus=1,unit=0,media=cdrom"],
             False),
            (["-M", "pc", "-drive", "if=ide,bus=1,unit=1,media=cdrom"],
             False),
            (["-M", "none", "-cdrom", img], False),
            (["-M", "pc", "-device", "ide-cd"], False),
            (["-M", "q35", "-blockdev", "null-co,node-name=n", "-device",
              "ide-hd,drive=n"], False),
            (["-M", "pc", "-device", "virtio-scsi-pci,id=s", "-device",
              "scsi-cd,bus=s.0"], False),
            (["-M", "pc", "-blockdev", "null-co,node-name=n", "-device",
              "virtio-blk-pci,drive=n"], False)]
    return out


def unnumbered(v):
    """@v with automatic node names and sizes on disk left out."""
    if isinstance(v, dict):
        return {k: unnumbered(x) for k, x in v.items()
                if k != "actual-size"}
    if isinstance(v, list):
        return [unnumbered(x) for x in v]
    if isinstance(v, str):
        return re.sub(r"#block\d+", "#blockN", v)
    return v


DEFAULT_DRIVE_CMDS = [("human-monitor-command",
                       {"command-line": "info block"}),
                      ("query-block", {}),
                      ("query-named-block-nodes", {})]


def test_default_drives():
    """QEMU 7.2's default drives (ide1-cd0 or ide2-cd0, floppy0 on pc,
    sd0) and what suppresses each: info block, query-block and
    query-named-block-nodes the same on both, and qom-get of the devices
    query-block names (type, drive, a property neither has)."""
    need_qemu()
    d = tempfile.mkdtemp(prefix="qmpd-devcompat-")
    img = os.path.join(d, "cd.img")
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", img, "1M"],
                       check=True)
        for args, nodefaults in default_drive_scenarios(img):
            theirs = stdio_session(qemu_binary(), args, DEFAULT_DRIVE_CMDS,
                                   nodefaults=nodefaults)
            ours = stdio_session(binary(), args, DEFAULT_DRIVE_CMDS,
                                 nodefaults=nodefaults)
            theirs, ours = unnumbered(theirs), unnumbered(ours)
            assert theirs == ours, (args, nodefaults, theirs, ours)
            paths = [b["qdev"] for b in theirs[1] if "qdev" in b]
            assert (not nodefaults and args[1] != "none") == bool(
                [b for b in theirs[1] if b["device"] == "sd0"]), args
            cmds = [("qom-get", {"path": p, "property": prop})
                    for p in paths for prop in ("type", "drive", "nosuch")]
            if cmds:
                assert (stdio_session(qemu_binary(), args, cmds,
                                      nodefaults=nodefaults)
                        == stdio_session(binary(), args, cmds,
                                         nodefaults=nodefaults)), args
    finally:
        shutil.rmtree(d, ignore_errors=True)


def floppy_media_cmds(img):
    """The medium commands on the default floppy0 (no tray) and sd0 (no
    device), then drive_del of both."""
    def hmp(line):
        return ("human-monitor-command", {"command-line": line})
    floppy = "/machine/unattached/device[16]"
    return [
        ("blockdev-open-tray", {"device": "floppy0"}),
        ("blockdev-close-tray", {"device": "floppy0"}),
        ("blockdev-change-medium", {"device": "floppy0", "filename": img,
                                    "format": "raw"}),
        hmp("info block"),
        ("eject", {"device": "floppy0"}),
        hmp("change floppy0 %s raw" % img),
        ("query-block", {}),
        ("blockdev-remove-medium", {"id": floppy}),
        ("blockdev-add", {"driver": "null-co", "node-name": "n"}),
        ("blockdev-insert-medium", {"id": floppy, "node-name": "n"}),
        ("blockdev-insert-medium", {"id": floppy, "node-name": "n"}),
        ("eject", {"device": "sd0"}),
        ("blockdev-change-medium", {"device": "sd0", "filename": img,
                                    "format": "raw"}),
        hmp("info block"),
        hmp("drive_del floppy0"),
        hmp("drive_del sd0"),
        ("query-block", {}),
        ("qom-get", {"path": floppy, "property": "drive"}),
        ("blockdev-change-medium", {"id": floppy, "filename": img,
                                    "format": "raw"}),
        ("query-block", {}),
    ]


def test_default_floppy_media():
    """floppy0's medium changes without a tray, as QEMU 7.2's floppy:
    open and close do nothing, eject and remove take the medium out, and
    after drive_del the device keeps a nameless backend."""
    need_qemu()
    d = tempfile.mkdtemp(prefix="qmpd-devcompat-")
    img = os.path.join(d, "fd.img")
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", img,
                        "1440K"], check=True)
        cmds = floppy_media_cmds(img)
        theirs = unnumbered(stdio_session(qemu_binary(), ["-M", "pc"], cmds,
                                          nodefaults=False))
        ours = unnumbered(stdio_session(binary(), ["-M", "pc"], cmds,
                                        nodefaults=False))
        for cmd, t, o in zip(cmds, theirs, ours):
            assert t == o, (cmd, t, o)
    finally:
        shutil.rmtree(d, ignore_errors=True)


ADDR_PROPS = ["addr", "multifunction", "bootindex", "num-queues",
              "write-cache", "scsi-id", "lun", "channel", "unit", "drive",
              "type", "nosuch"]


def qom_all(paths):
    return [("qom-get", {"path": p, "property": prop})
            for p in paths for prop in ADDR_PROPS]


def test_default_addresses():
    """Where devices land when no address is given, with and without
    QEMU's default devices: qom-get shows the same on both."""
    need_qemu()
    nulls = []
    for i in range(8):
        nulls += ["-blockdev", "driver=null-co,node-name=n%d" % i]
    scenarios = [
        (["-M", "pc", "-device", "virtio-scsi-pci,id=s",
          "-device", "virtio-blk-pci,drive=n0,id=v,bootindex=3,"
          "num-queues=4,write-cache=off",
          "-device", "virtio-blk-pci,drive=n1,id=m,addr=6,multifunction=on",
          "-device", "virtio-blk-pci,drive=n2,id=f,addr=6.3",
          "-device", "scsi-hd,drive=n3,id=sd0",
          "-device", "scsi-hd,drive=n4,id=sd1,scsi-id=0",
          "-device", "scsi-hd,drive=n5,id=sd2,lun=3,bootindex=0",
          "-device", "ide-hd,drive=n6,id=h0",
          "-device", "ide-hd,drive=n7,id=h1,unit=0,bus=ide.0"],
         ["s", "v", "v/virtio-backend", "m", "f", "sd0", "sd1", "sd2", "h0",
          "h1"], True),
        (["-M", "q35", "-device", "virtio-blk-pci,drive=n0,id=v",
          "-device", "virtio-scsi-pci,id=s", "-device", "virtio-scsi-pci",
          "-device", "scsi-hd,drive=n1,id=sd0,lun=7",
          "-device", "ide-hd,drive=n2,id=h0",
          "-device", "ide-hd,drive=n3,id=h1,bus=ide.0",
          "-device", "ide-hd,drive=n4,id=h2,bus=ide.3"],
         ["v", "s", "/machine/peripheral-anon/device[0]", "sd0", "h0", "h1",
          "h2"], True),
        (["-M", "pc", "-device", "virtio-blk-pci,drive=n0,id=v",
          "-device", "virtio-scsi-pci,id=s"], ["v", "s"], False),
        (["-M", "pc", "-vga", "none", "-device",
          "virtio-blk-pci,drive=n0,id=v"], ["v"], False),
        (["-M", "q35", "-device", "virtio-blk-pci,drive=n0,id=v"], ["v"],
         False),
        (["-M", "q35", "-vga", "none", "-device",
          "virtio-blk-pci,drive=n0,id=v"], ["v"], False),
    ]
    for args, paths, nodefaults in scenarios:
        cmds = qom_all(paths)
        theirs = stdio_session(qemu_binary(), nulls + args, cmds, nodefaults)
        ours = stdio_session(binary(), nulls + args, cmds, nodefaults)
        bad = ["%r\n  qemu: %r\n  qmpd: %r" % (c, a, b)
               for c, a, b in zip(cmds, theirs, ours) if a != b]
        assert not bad, "%s\n%s" % (" ".join(args), "\n".join(bad))
    # without -nodefaults the default VGA and NIC hold their slots
    for prog in (qemu_binary(), binary()):
        r = stdio_session(prog, nulls + ["-M", "pc"], [
            ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                            "addr": "2"}),
            ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                            "addr": "3"})], False)
        assert r == [("GenericError", "PCI: slot 2 function 0 not available "
                      "for virtio-blk-pci, in use by VGA,id=(null)"),
                     ("GenericError", "PCI: slot 3 function 0 not available "
                      "for virtio-blk-pci, in use by e1000,id=(null)")], r


def hotplug_transcript(binary_path, steps, machine):
    """Replies (and DEVICE_DELETED events) of @steps on one side."""
    t = []
    nulls = []
    for i in range(8):
        nulls += ["-blockdev", "driver=null-co,node-name=n%d" % i]
    with Qmpd(["-M", machine, "-S"] + nulls, binary_path=binary_path) as q:
        c = q.connect()
        for name, args in steps:
            if name == "event":
                t.append(c.event("DEVICE_DELETED", DEADLINE)["data"])
                continue
            r = c.execute(name, args)
            t.append((name, args, r.get("return", r.get("error"))))
        c.cmd("quit")
        q.wait(DEADLINE)
    return t


def qom(path, prop):
    return ("qom-get", {"path": path, "property": prop})


HOTPLUG_PC = [
    ("device_add", {"driver": "virtio-scsi-pci", "id": "s"}),
    qom("s", "addr"),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n0", "id": "v0",
                    "addr": 16, "bootindex": 1}),
    qom("v0", "addr"),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n1", "id": "v1",
                    "bootindex": 1}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n1", "id": "v1",
                    "addr": "1.2"}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n1", "id": "v1",
                    "addr": "7", "multifunction": True}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n2", "id": "v2",
                    "addr": "7.1"}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n2", "id": "v2",
                    "addr": "8.1"}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n3", "id": "v3",
                    "addr": "8.0"}),
    qom("v2", "addr"),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n3", "id": "v3",
                    "num-queues": 0}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n3", "id": "v3",
                    "num-queues": 2, "bootindex": "2"}),
    qom("v3", "addr"), qom("v3", "num-queues"), qom("v3", "bootindex"),
    ("device_add", {"driver": "ide-hd", "drive": "n4", "id": "h"}),
    ("device_add", {"driver": "ide-hd", "drive": "n4", "bus": "ide.0"}),
    ("device_add", {"driver": "scsi-hd", "drive": "n4", "id": "sd0"}),
    ("device_add", {"driver": "scsi-hd", "drive": "n5", "id": "sd1"}),
    qom("sd0", "scsi-id"), qom("sd1", "scsi-id"),
    ("device_del", {"id": "sd0"}), ("event", None),
    ("device_add", {"driver": "scsi-hd", "drive": "n4", "id": "sd2",
                    "lun": 1}),
    qom("sd2", "scsi-id"), qom("sd2", "lun"),
    ("device_add", {"driver": "scsi-hd", "drive": "n6", "id": "sd3",
                    "scsi-id": 1, "lun": 1}),
    ("device_add", {"driver": "scsi-hd", "drive": "n6", "id": "sd3",
                    "bus": "s.0", "scsi-id": 0}),
    qom("sd3", "lun"),
    # no driver, over QMP and HMP (device_add with no argument at all)
    ("device_add", {}),
    ("device_add", {"id": "x"}),
    ("human-monitor-command", {"command-line": "device_add"}),
    ("human-monitor-command", {"command-line": "device_add id=x"}),
]

HOTPLUG_Q35 = [
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n0"}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                    "bus": "pcie.0"}),
    ("device_add", {"driver": "ide-hd", "drive": "n0"}),
    ("device_add", {"driver": "ide-hd", "drive": "n0", "bus": "ide.2"}),
    ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                    "bus": "ide.2"}),
]


def test_hotplug():
    """device_add and device_del: addresses, hotplug rules, messages."""
    need_qemu()
    for steps, machine in ((HOTPLUG_PC, "pc"), (HOTPLUG_Q35, "q35")):
        theirs = hotplug_transcript(qemu_binary(), steps, machine)
        ours = hotplug_transcript(None, steps, machine)
        bad = ["%r\n  qemu: %r\n  qmpd: %r" % (a[:2], a, b)
               for a, b in zip(theirs, ours) if a != b]
        assert len(theirs) == len(ours) and not bad, "\n".join(bad)
    # a device on a bus without hotplug cannot be unplugged either
    for machine, spec, bus in (("pc", "ide-hd,drive=n0,id=d", "ide.1"),
                               ("q35", "virtio-blk-pci,drive=n0,id=d",
                                "pcie.0")):
        args = ["-M", machine] + NULLS[:2] + ["-blockdev",
                                              "driver=null-co,node-name=n0",
                                              "-device", spec]
        for prog in (qemu_binary(), binary()):
            assert stdio_session(prog, args, [("device_del", {"id": "d"})]) \
                == [("GenericError",
                     "Bus '%s' does not support hotplugging" % bus)], prog


DRIVERS = ["virtio-blk-pci", "scsi-hd", "ide-hd", "virtio-scsi-pci"]


def device_help(prog, arg):
    p = subprocess.run([prog, "-M", "pc", "-device", arg],
                       capture_output=True, timeout=DEADLINE)
    return p.returncode, p.stdout.decode().splitlines()


def test_property_names():
    """qmpd's -device DRIVER,help lines are QEMU's; every other property
    QEMU's model has is refused as unmodelled, any other name as QEMU
    refuses it."""
    need_qemu()
    rc, theirs = device_help(qemu_binary(), "help")
    rc2, ours = device_help(binary(), "help")
    assert rc == rc2 == 0 and ours[:4] == [
        "USB devices:", 'name "piix3-usb-uhci", bus PCI', "",
        "Storage devices:"], ours
    assert set(ours) <= set(theirs), set(ours) - set(theirs)
    with Qmpd(["-M", "pc", "-S"] + NULLS
              + ["-device", "virtio-scsi-pci,id=s"]) as q:
        c = q.connect()
        for drv in DRIVERS + ["virtio-blk"]:
            rc, theirs = device_help(qemu_binary(), drv + ",help")
            rc2, ours = device_help(binary(), drv + ",help")
            assert rc == rc2 == 0 and ours[0] == theirs[0], (ours, theirs)
            assert set(ours[1:]) <= set(theirs[1:]), \
                set(ours[1:]) - set(theirs[1:])
            names = [line.split("=")[0].strip() for line in theirs[1:]]
            taken = {line.split("=")[0].strip() for line in ours[1:]}
            model = ours[0].split()[0]
            for name in names + ["nosuch-prop"]:
                # never realized: no drive, or (a controller) slot 0
                args = {"driver": drv, "id": "t", name: "1"}
                if drv == "virtio-scsi-pci" and name != "addr":
                    args["addr"] = "0"
                if drv == "ide-hd":
                    # no IDE hotplug: the command line
                    rc, desc = first_error(binary(), [
                        "-M", "pc", "-device", "ide-hd,%s=1" % name])
                    assert rc == 1, (drv, name)
                    desc = desc.split(": ", 1)[1]
                else:
                    r = c.execute("device_add", args)
                    assert "error" in r, (drv, name, r)
                    desc = r["error"]["desc"]
                if name in taken:
                    # a link (iothread=1) names no object: QEMU's message
                    assert ("not found" not in desc
                            or desc == "Device '1' not found") \
                        and "qmpd" not in desc, (drv, name, desc)
                elif name in names:
                    assert desc == "Property '%s.%s' is not supported by " \
                        "qmpd" % (model, name), (drv, name, desc)
                else:
                    assert desc == "Property '%s.%s' not found" \
                        % (model, name), (drv, name, desc)
        c.cmd("quit")
        q.wait(DEADLINE)


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
    run([test_command_line_errors, test_device_add_and_qom_get,
         test_address_errors, test_drive_index, test_default_addresses,
         test_default_drives, test_default_floppy_media,
         test_hotplug, test_property_names])
