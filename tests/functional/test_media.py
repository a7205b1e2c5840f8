#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Removable media, as QEMU 7.2 has them.

CD-ROMs on the command line (-drive media=cdrom, -cdrom, -device ide-cd
and scsi-cd, with or without a drive) and empty drives show in
query-block as QEMU shows them (removable, tray_open, no "inserted"),
and the refusals are QEMU's (an empty disk, media=foo, if=scsi); each
command line runs on QEMU 7.2 too when it is installed.  Guest I/O to
an empty drive fails with "No medium found"; ide-cd and scsi-cd list
and take their properties as QEMU's.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, qemu_binary, run  # noqa: E402
from images import img, need_tools  # noqa: E402
import reference  # noqa: E402
from test_hd_options import first_error  # noqa: E402

U = "/machine/unattached/device[%d]"


def make_images(d):
    """cd.iso (raw), d.qcow2 .. d4.qcow2 (1 MiB each) in @d."""
    img("create", "-q", "-f", "raw", os.path.join(d, "cd.iso"), "1M")
    for n in ("d", "d2", "d3", "d4"):
        img("create", "-q", "-f", "qcow2", os.path.join(d, n + ".qcow2"),
            "1M")


def block_state(c, d):
    state = []
    for b in c.cmd("query-block"):
        ins = b.get("inserted")
        state.append((b["device"], b.get("qdev"), b["removable"],
                      b.get("tray_open"),
                      os.path.relpath(ins["file"], d) if ins else None,
                      ins["ro"] if ins else None))
    return state


def cdrom_layouts(d):
    """(command line, query-block as block_state() gives it)."""
    iso = os.path.join(d, "cd.iso")
    return [
        (["-M", "pc", "-cdrom", iso],
         [("ide1-cd0", U % 18, True, False, "cd.iso", True)]),
        (["-M", "q35", "-cdrom", iso],
         [("ide2-cd0", U % 16, True, False, "cd.iso", True)]),
        (["-M", "none", "-cdrom", iso],
         [("none2", None, True, None, "cd.iso", True)]),
        (["-M", "pc", "-drive", "if=ide,media=cdrom",
          "-drive", "if=ide,media=cdrom,file=%s,format=raw,readonly=off"
          % iso],
         [("ide0-cd0", U % 18, True, False, None, None),
          ("ide0-cd1", U % 19, True, False, "cd.iso", True)]),
        (["-M", "pc", "-drive", "if=none,id=c,media=cdrom",
          "-device", "virtio-scsi-pci", "-device", "scsi-cd,drive=c"],
         [("c", "/machine/peripheral-anon/device[1]", True, False, None,
           None)]),
        (["-M", "pc", "-device", "ide-cd,id=x"],
         [("", "x", True, False, None, None)]),
        (["-M", "pc", "-drive", "if=none,id=e"],
         [("e", None, True, None, None, None)]),
    ]


def cdrom_refusals(d):
    """(command line, the first line on stderr after "PROG: ")."""
    return [
        (["-M", "pc", "-drive", "if=ide,media=foo"],
         "-drive if=ide,media=foo: 'foo' invalid media"),
        (["-M", "pc", "-drive", "if=scsi,media=cdrom"],
         "-drive if=scsi,media=cdrom: machine type does not support "
         "if=scsi,bus=0,unit=0"),
        (["-M", "q35", "-drive", "if=scsi,index=9"],
         "-drive if=scsi,index=9: machine type does not support "
         "if=scsi,bus=1,unit=2"),
        (["-M", "pc", "-drive", "if=ide"],
         "Device needs media, but drive is empty"),
        (["-M", "pc", "-drive", "if=virtio,media=cdrom"],
         "-drive if=virtio,media=cdrom: Device needs media, but drive is "
         "empty"),
        (["-M", "pc", "-drive", "if=none,id=e", "-device", "ide-hd,drive=e"],
         "-device ide-hd,drive=e: Device needs media, but drive is empty"),
        (["-M", "pc", "-drive", "if=none,id=e", "-device", "virtio-scsi-pci",
          "-device", "scsi-hd,drive=e"],
         "-device scsi-hd,drive=e: Device needs media, but drive is empty"),
        (["-M", "pc", "-device", "scsi-cd"],
         "-device scsi-cd: No 'SCSI' bus found for device 'scsi-cd'"),
    ]


def test_command_lines():
    d = tempfile.mkdtemp(prefix="qmpd-media-")
    try:
        make_images(d)
        for args, want in cdrom_layouts(d):
            for qemu in (False, True) if qemu_binary() else (False,):
                q, c = reference.start(["-nodefaults"] + args, qemu=qemu)
                try:
                    assert block_state(c, d) == want, (qemu, args,
                                                       block_state(c, d))
                finally:
                    q.close()
        for args, want in cdrom_refusals(d):
            assert first_error(binary(), args) == want, args
            if qemu_binary():
                assert first_error(qemu_binary(), args) == want, args
    finally:
        shutil.rmtree(d)


def test_guest_io_on_empty_drive():
    q, c = reference.start(["-M", "pc", "-nodefaults", "-drive",
                            "if=none,id=cd0", "-device",
                            "ide-cd,drive=cd0,id=idecd"])
    try:
        # qmpd's QMP form of HMP qemu-io, whose lines QEMU prints on stdout
        for device, qdev, command, want in [
                ("cd0", False, "read 0 512", "read failed: No medium found"),
                ("idecd", True, "read 0 512", "read failed: No medium found"),
                ("idecd", True, "write 0 512",
                 "write failed: No medium found"),
                ("cd0", False, "length", "getlength: No medium found")]:
            out = c.error("__com.qmpd_qemu-io", device=device, qdev=qdev,
                          command=command)
            assert out == ("GenericError", want), (device, command, out)
        stats = c.cmd("query-blockstats")[0]["stats"]
        # the device refuses it before the backend sees it
        assert stats["rd_operations"] == stats["failed_rd_operations"] == 0
    finally:
        q.close()


def test_device_props_and_help():
    for drv, props in [("ide-cd", "unit=<uint32>"),
                       ("scsi-cd", "scsi-id=<uint32>")]:
        p = subprocess.run([binary(), "-device", drv + ",help"],
                           capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and p.stdout.startswith(
            drv + " options:\n") and props in p.stdout, p.stdout
        if qemu_binary():
            want = subprocess.run([qemu_binary(), "-M", "none", "-device",
                                   drv + ",help"], capture_output=True,
                                  text=True, timeout=30).stdout
            # each line qmpd prints is one of QEMU's
            for line in p.stdout.splitlines():
                assert line in want.splitlines(), (drv, line)
    q, c = reference.start(["-M", "pc", "-nodefaults", "-device",
                            "ide-cd,id=x,serial=abc,unit=1"])
    try:
        assert c.cmd("qom-get", path="x", property="serial") == "abc"
        assert c.cmd("qom-get", path="x", property="unit") == 1
        assert c.cmd("qom-get", path="x", property="drive") == ""
        assert c.error("device_add", driver="ide-cd", id="y",
                       bus="ide.0") == (
            "GenericError", "Bus 'ide.0' does not support hotplugging")
    finally:
        q.close()


if __name__ == "__main__":
    run([test_command_lines, test_guest_io_on_empty_drive,
         test_device_props_and_help], needs=[need_tools])
