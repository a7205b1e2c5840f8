#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Removable media, as QEMU 7.2 has them.

CD-ROMs on the command line (-drive media=cdrom, -cdrom, -device ide-cd
and scsi-cd, with or without a drive) and empty drives show in
query-block as QEMU shows them (removable, tray_open, no "inserted"),
and the refusals are QEMU's (an empty disk, media=foo, if=scsi).  The
tray and medium commands (blockdev-open-tray, blockdev-close-tray,
blockdev-remove-medium, blockdev-insert-medium, blockdev-change-medium,
eject) give QEMU's replies, errors and DEVICE_TRAY_MOVED events step by
step (TRAY_STEPS and CHANGE_STEPS: the compat test runs the same steps
on QEMU 7.2); a refused command changes nothing.  A medium takes the
read-only-ness read-only-mode asks for (retain: the drive's, then the
last medium's); guest I/O to an empty drive fails with "No medium
found"; HMP eject, change, drive_del and info block print QEMU's lines.
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
from hmplines import hmp  # noqa: E402

U = "/machine/unattached/device[%d]"


def make_images(d):
    """cd.iso (raw), d.qcow2 .. d4.qcow2 (1 MiB each) in @d."""
    img("create", "-q", "-f", "raw", os.path.join(d, "cd.iso"), "1M")
    for n in ("d", "d2", "d3", "d4"):
        img("create", "-q", "-f", "qcow2", os.path.join(d, n + ".qcow2"),
            "1M")


def tray_args(d):
    """The machine TRAY_STEPS run on: CD-ROMs, a disk, a drive alone.
    Paused: QEMU's firmware, running, moves a tray now and then."""
    return [
        "-M", "pc", "-nodefaults", "-S",
        "-drive", "if=ide,media=cdrom,file=%s/cd.iso,format=raw" % d,
        "-drive", "if=none,id=cd0", "-device", "ide-cd,drive=cd0,id=idecd",
        "-drive", "if=none,id=hd0,file=%s/d.qcow2,format=qcow2" % d,
        "-device", "ide-hd,drive=hd0,id=idehd",
        "-drive", "if=none,id=nodev,file=%s/cd.iso,format=raw" % d,
        "-blockdev", "driver=file,filename=%s/cd.iso,node-name=f1,"
        "read-only=on" % d,
        "-blockdev", "driver=raw,file=f1,node-name=r1,read-only=on",
        "-blockdev", "driver=qcow2,file.driver=file,"
        "file.filename=%s/d2.qcow2,node-name=q1" % d,
        "-device", "virtio-scsi-pci,id=scsi0",
        "-device", "scsi-cd,id=scd", "-device", "ide-cd,id=anoncd,bus=ide.0",
    ]


def moved(device, id, tray_open):
    return {"event": "DEVICE_TRAY_MOVED",
            "data": {"device": device, "id": id, "tray-open": tray_open}}


OK = {"return": {}}
NEED_ONE = {"error": {"class": "GenericError",
                      "desc": "Need exactly one of 'device' and 'id'"}}
CD0 = U % 18


def err(desc, cls="GenericError"):
    return {"error": {"class": cls, "desc": desc}}


def not_found(name):
    return err("Device '%s' not found" % name, "DeviceNotFound")


# (command, arguments, reply, events); a reply None is not compared
# (query-block: BLOCK_STATE checks it)
TRAY_STEPS = [
    ("blockdev-open-tray", {"device": "hd0"},
     err("Device 'hd0' is not removable"), []),
    ("blockdev-open-tray", {"id": "idehd"},
     err("Device 'idehd' is not removable"), []),
    # a drive without a device has no tray: nothing happens
    ("blockdev-open-tray", {"device": "nodev"}, OK, []),
    ("blockdev-open-tray", {"device": "nosuch"}, not_found("nosuch"), []),
    ("blockdev-open-tray", {"id": "nosuch"}, not_found("nosuch"), []),
    ("blockdev-open-tray", {}, NEED_ONE, []),
    ("blockdev-open-tray", {"device": "cd0", "id": "idecd"}, NEED_ONE, []),
    ("blockdev-remove-medium", {"id": "idecd"},
     err("Tray of device 'idecd' is not open"), []),
    ("blockdev-insert-medium", {"id": "idecd", "node-name": "r1"},
     err("Tray of the device is not open"), []),
    ("blockdev-open-tray", {"id": "idecd"}, OK,
     [moved("cd0", "idecd", True)]),
    ("blockdev-open-tray", {"id": "idecd"}, OK, []),
    ("blockdev-remove-medium", {"id": "idecd"}, OK, []),
    ("blockdev-insert-medium", {"id": "idecd", "node-name": "nosuch"},
     err("Node 'nosuch' not found"), []),
    ("blockdev-insert-medium", {"id": "nosuch", "node-name": "nosuch"},
     not_found("nosuch"), []),
    ("blockdev-insert-medium", {"id": "idehd", "node-name": "q1"},
     err("Device is not removable"), []),
    ("blockdev-insert-medium", {"id": "idecd", "node-name": "q1"}, OK, []),
    ("blockdev-insert-medium", {"id": "idecd", "node-name": "r1"},
     err("There already is a medium in the device"), []),
    ("blockdev-remove-medium", {"id": "idecd"}, OK, []),
    ("blockdev-insert-medium", {"id": "idecd", "node-name": "r1"}, OK, []),
    ("blockdev-close-tray", {"id": "idecd"}, OK,
     [moved("cd0", "idecd", False)]),
    ("blockdev-close-tray", {"id": "idecd"}, OK, []),
    ("blockdev-remove-medium", {"id": "idecd"},
     err("Tray of device 'idecd' is not open"), []),
    ("blockdev-remove-medium", {"id": "idehd"},
     err("Device 'idehd' is not removable"), []),
    ("blockdev-remove-medium", {"id": "hd0"}, not_found("hd0"), []),
    # r1 is the medium of idecd now
    ("blockdev-insert-medium", {"id": "anoncd", "node-name": "r1"},
     err("Node 'r1' is already in use"), []),
    ("blockdev-close-tray", {"device": "hd0"},
     err("Device 'hd0' is not removable"), []),
    ("blockdev-close-tray", {"device": "nodev"}, OK, []),
    ("blockdev-close-tray", {"device": "nosuch"}, not_found("nosuch"), []),
    ("blockdev-close-tray", {}, NEED_ONE, []),
    ("eject", {"device": "ide0-cd0"}, OK, [moved("ide0-cd0", CD0, True)]),
    ("eject", {"device": "ide0-cd0"}, OK, []),
    ("eject", {"device": "ide0-cd0", "force": True}, OK, []),
    ("eject", {"id": "idecd"}, OK, [moved("cd0", "idecd", True)]),
    ("eject", {"device": "hd0"}, err("Device 'hd0' is not removable"), []),
    ("eject", {"device": "nodev"}, OK, []),
    ("eject", {"device": "ide0-cd0", "id": "x"}, NEED_ONE, []),
    ("eject", {}, NEED_ONE, []),
    # a device without id is named by its path; its backend is ""
    ("blockdev-open-tray", {"id": "anoncd"}, OK,
     [moved("", "anoncd", True)]),
    ("blockdev-insert-medium", {"id": "anoncd", "node-name": "f1"}, OK, []),
    ("blockdev-close-tray", {"id": "anoncd"}, OK,
     [moved("", "anoncd", False)]),
    ("blockdev-open-tray", {"id": "scd"}, OK, [moved("", "scd", True)]),
    ("blockdev-remove-medium", {"id": "scd"}, OK, []),
    ("blockdev-insert-medium", {"id": "nodev", "node-name": "r1"},
     not_found("nodev"), []),
]

# after TRAY_STEPS: (device, qdev, removable, tray_open, medium's file or
# None, read-only)
BLOCK_STATE = [
    ("ide0-cd0", CD0, True, True, None, None),
    ("cd0", "idecd", True, True, None, None),
    ("hd0", "idehd", False, None, "d.qcow2", False),
    ("nodev", None, True, None, None, None),
    ("", "scd", True, True, None, None),
    ("", "anoncd", True, False, "cd.iso", True),
]


def change_steps(d):
    """Steps after TRAY_STEPS: blockdev-change-medium."""
    def change(**kw):
        return dict(kw, filename=os.path.join(d, kw.pop("filename")))
    return [
        ("blockdev-change-medium",
         change(device="ide0-cd0", filename="cd.iso", format="raw"), OK,
         [moved("ide0-cd0", CD0, False)]),
        # retain: cd0's last medium (r1) was read-only; probed as qcow2
        ("blockdev-change-medium", change(id="idecd", filename="d3.qcow2"),
         OK, [moved("cd0", "idecd", False)]),
        ("blockdev-change-medium", change(id="idecd", filename="nosuch"),
         err("Could not open '%s': No such file or directory"
             % os.path.join(d, "nosuch")), []),
        ("blockdev-change-medium",
         change(id="idecd", filename="cd.iso", format="qcow2"),
         err("Image is not in qcow2 format"), []),
        ("blockdev-change-medium",
         change(id="idecd", filename="cd.iso", format="nosuch"),
         err("Unknown driver 'nosuch'"), []),
        ("blockdev-change-medium",
         change(id="idecd", filename="cd.iso", **{"read-only-mode": "x"}),
         err("Parameter 'read-only-mode' does not accept value 'x'"), []),
        ("blockdev-change-medium",
         change(device="cd0", id="idecd", filename="cd.iso"), NEED_ONE, []),
        ("blockdev-change-medium",
         change(id="idecd", filename="d4.qcow2", format="qcow2",
                **{"read-only-mode": "read-write"}), OK,
         [moved("cd0", "idecd", True), moved("cd0", "idecd", False)]),
        # the disk's own image is locked before the device is looked at
        ("blockdev-change-medium", change(device="hd0", filename="d.qcow2"),
         err('Failed to get "write" lock'), []),
        ("blockdev-change-medium", change(device="hd0", filename="cd.iso"),
         err("Device 'hd0' is not removable"), []),
        ("blockdev-change-medium",
         change(device="nodev", filename="d3.qcow2",
                **{"read-only-mode": "read-only"}), OK, []),
        ("blockdev-change-medium",
         change(id="scd", filename="cd.iso", format="raw"), OK,
         [moved("", "scd", False)]),
    ]


# after change_steps: as BLOCK_STATE
CHANGED_STATE = [
    ("ide0-cd0", CD0, True, False, "cd.iso", True),
    ("cd0", "idecd", True, False, "d4.qcow2", False),
    ("hd0", "idehd", False, None, "d.qcow2", False),
    ("nodev", None, True, None, "d3.qcow2", True),
    ("", "scd", True, False, "cd.iso", True),
    ("", "anoncd", True, False, "cd.iso", True),
]


def run_steps(c, steps):
    """Run @steps on QMP client @c: [(command, arguments, reply, events)]
    as they happened (events in order, timestamps dropped)."""
    seen = []
    for name, args, _, _ in steps:
        c.events.clear()
        r = c.execute(name, args)
        evs = []
        for e in c.events:
            e = dict(e)
            del e["timestamp"]
            evs.append(e)
        seen.append((name, args, r, evs))
    return seen


def block_state(c, d):
    state = []
    for b in c.cmd("query-block"):
        ins = b.get("inserted")
        state.append((b["device"], b.get("qdev"), b["removable"],
                      b.get("tray_open"),
                      os.path.relpath(ins["file"], d) if ins else None,
                      ins["ro"] if ins else None))
    return state


def test_tray_and_medium_steps():
    d = tempfile.mkdtemp(prefix="qmpd-media-")
    try:
        make_images(d)
        q, c = reference.start(tray_args(d))
        try:
            for step, want in zip(run_steps(c, TRAY_STEPS), TRAY_STEPS):
                assert step[2:] == want[2:], (step, want)
            assert block_state(c, d) == BLOCK_STATE, block_state(c, d)
            steps = change_steps(d)
            for step, want in zip(run_steps(c, steps), steps):
                assert step[2:] == want[2:], (step, want)
            assert block_state(c, d) == CHANGED_STATE, block_state(c, d)
        finally:
            q.close()
    finally:
        shutil.rmtree(d)


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


def test_hmp_eject_change_drive_del():
    d = tempfile.mkdtemp(prefix="qmpd-media-")
    try:
        make_images(d)
        iso = os.path.join(d, "cd.iso")
        d3 = os.path.join(d, "d3.qcow2")
        q, c = reference.start([
            "-M", "pc", "-nodefaults",
            "-drive", "if=none,id=hd0,file=%s/d.qcow2,format=qcow2" % d,
            "-device", "ide-hd,drive=hd0,id=idehd",
            "-drive", "if=ide,index=1,media=cdrom,id=mycd",
            "-drive", "if=none,id=nodev"])
        try:
            for line, want, events in [
                    ("eject mycd", "", [True]),
                    ("eject -f mycd", "", []),
                    ("eject idehd", "Error: Device 'idehd' not found\r\n",
                     []),
                    ("eject hd0", "Error: Device 'hd0' is not removable\r\n",
                     []),
                    ("change mycd %s raw" % iso, "", [False]),
                    ("change mycd %s raw read-write" % iso, "",
                     [True, False]),
                    ("change mycd %s qcow2 read-only" % d3, "",
                     [True, False]),
                    ("change mycd %s qcow2 bogus" % d3,
                     "Error: invalid parameter value: bogus\r\n", []),
                    ("change mycd %s/nosuch" % d,
                     "Error: Could not open '%s/nosuch': No such file or "
                     "directory\r\n" % d, []),
                    ("change hd0 %s raw" % iso,
                     "Error: Device 'hd0' is not removable\r\n", []),
                    ("change nodev %s raw" % iso, "", [])]:
                c.events.clear()
                out = hmp(c, line)
                assert out == want, (line, out)
                assert [e["data"]["tray-open"] for e in c.events] == events, (
                    line, c.events)
            node = {b["device"]: b["inserted"]["node-name"]
                    for b in c.cmd("query-block")}
            assert hmp(c, "info block").split("\r\n") == [
                "hd0 (%s): %s/d.qcow2 (qcow2)" % (node["hd0"], d),
                "    Attached to:      idehd",
                "    Cache mode:       writeback",
                "",
                "mycd (%s): %s (qcow2, read-only)" % (node["mycd"], d3),
                "    Attached to:      %s" % (U % 18),
                "    Removable device: not locked, tray closed",
                "    Cache mode:       writeback",
                "",
                "nodev (%s): %s (raw)" % (node["nodev"], iso),
                "    Removable device: not locked, tray closed",
                "    Cache mode:       writeback", ""]
            assert hmp(c, "eject mycd") == ""
            assert hmp(c, "info block mycd").split("\r\n") == [
                "mycd: [not inserted]",
                "    Attached to:      %s" % (U % 18),
                "    Removable device: not locked, tray open", ""]
            # drive_del: the device keeps an empty, nameless backend
            assert hmp(c, "drive_del hd0") == ""
            blk = [b for b in c.cmd("query-block") if b.get("qdev") ==
                   "idehd"]
            assert blk == [{"device": "", "qdev": "idehd", "type": "unknown",
                            "removable": False, "locked": False}], blk
            assert c.error("__com.qmpd_qemu-io", device="idehd", qdev=True,
                           command="read 0 512") == (
                "GenericError", "read failed: No medium found")
            assert hmp(c, "drive_del nodev") == ""
            assert [b["device"] for b in c.cmd("query-block")] == [
                "", "mycd"]
        finally:
            q.close()
    finally:
        shutil.rmtree(d)


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


MODELS = ["ide-cd", "scsi-cd", "ide-hd", "scsi-hd", "virtio-blk-pci",
          "virtio-scsi-pci"]


def test_device_list_properties():
    """Each property qmpd lists is QEMU's entry for it; an alias or an
    unknown type is not found."""
    got = {}
    for qemu in (False, True) if qemu_binary() else (False,):
        q, c = reference.start(["-M", "none"], qemu=qemu)
        try:
            for t in MODELS:
                got.setdefault(qemu, {})[t] = {
                    p["name"]: p for p in
                    c.cmd("device-list-properties", typename=t)}
            for t in ("virtio-blk", "nosuch"):
                assert c.error("device-list-properties", typename=t) == (
                    "DeviceNotFound", "Device '%s' not found" % t)
        finally:
            q.close()
    assert {"drive", "unit", "serial", "bootindex"} <= set(
        got[False]["ide-cd"])
    assert {"drive", "scsi-id", "lun", "channel"} <= set(
        got[False]["scsi-cd"])
    for t in MODELS:
        for name, prop in got[False][t].items():
            if True in got:
                assert got[True][t].get(name) == prop, (
                    t, prop, got[True][t].get(name))


def test_job_holds_medium():
    """A medium a job uses stays: eject opens the tray but cannot take the
    medium out (QEMU's 'is busy'), and neither can blockdev-remove-medium
    or blockdev-change-medium; once the job is gone it can."""
    d = tempfile.mkdtemp(prefix="qmpd-media-")
    try:
        make_images(d)
        q, c = reference.start([
            "-M", "pc", "-nodefaults", "-S", "-drive",
            "if=ide,media=cdrom,file=%s/cd.iso,format=raw,id=cd" % d])
        try:
            c.cmd("drive-mirror", device="cd", **{"job-id": "j"},
                  target=os.path.join(d, "t.qcow2"), sync="full",
                  format="qcow2")
            c.event("BLOCK_JOB_READY")
            busy = ("GenericError", "Node 'cd' is busy: block device is in "
                    "use by block job: mirror")
            c.events.clear()
            assert c.error("eject", device="cd") == busy
            assert [e["data"]["tray-open"] for e in c.events] == [True]
            assert c.error("blockdev-remove-medium", id=U % 18) == busy
            assert c.error("blockdev-change-medium", device="cd",
                           filename=os.path.join(d, "d2.qcow2")) == busy
            assert c.cmd("query-block")[0]["inserted"]["file"] == \
                os.path.join(d, "cd.iso")
            c.cmd("block-job-cancel", device="j", force=True)
            c.event("BLOCK_JOB_CANCELLED")
            c.cmd("blockdev-remove-medium", id=U % 18)
            assert "inserted" not in c.cmd("query-block")[0]
        finally:
            q.close()
    finally:
        shutil.rmtree(d)


def test_ide_serials():
    """An IDE drive without serial has QEMU's QM%05d of its place (2 per
    bus, AHCI's too), whatever order the devices come in."""
    for machine, bus, want in [("pc", "ide.1", "QM00003"),
                               ("q35", "ide.1", "QM00003"),
                               ("q35", "ide.4", "QM00009")]:
        args = ["-M", machine, "-nodefaults", "-S",
                "-device", "ide-cd,id=a,bus=%s,unit=0" % bus,
                "-blockdev", "driver=null-co,node-name=x",
                "-device", "ide-hd,id=b,bus=ide.0,drive=x"]
        for qemu in (False, True) if qemu_binary() else (False,):
            q, c = reference.start(args, qemu=qemu)
            try:
                got = [c.cmd("qom-get", path=d, property="serial")
                       for d in ("a", "b")]
                assert got == [want, "QM00001"], (qemu, args, got)
            finally:
                q.close()


if __name__ == "__main__":
    run([test_tray_and_medium_steps, test_command_lines,
         test_guest_io_on_empty_drive, test_hmp_eject_change_drive_del,
         test_device_props_and_help, test_device_list_properties,
         test_job_holds_medium,
         test_ide_serials], needs=[need_tools])
