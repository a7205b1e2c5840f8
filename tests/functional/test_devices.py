#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Guest disk devices: error policy, block sizes, serial, addresses
(PCI slots, SCSI targets and LUNs, IDE units), bootindex, num-queues,
the properties each model takes, qom-get, unplug, -drive index/bus/unit.

The guest's I/O is qemu-io -d (HMP) or __com.qmpd_qemu-io with qdev,
through virtio-blk-pci, scsi-hd and ide-hd; faults come from blkdebug.
The messages and values are QEMU 7.2's (tests/compat/
test_werror_compat.py compares the error policy with a real QEMU
guest, test_devices_compat.py the properties).  Every image qmpd wrote
passes qemu-img check and holds the data the guest wrote.  Skips (77)
when qemu-img is not installed.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, binary, run  # noqa: E402
from images import check_clean, img, qemu_io, with_dir  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60


def disk(d, name="disk.qcow2"):
    path = os.path.join(d, name)
    img("create", "-q", "-f", "qcow2", path, "4M")
    qemu_io(path, "write -P 0x11 0 1M")
    return path


def faulty(path, errno, event="write_aio", once=True, node="fmt"):
    """A -blockdev: @path through blkdebug failing @event with @errno."""
    return json.dumps({
        "driver": "qcow2", "node-name": node,
        "file": {"driver": "blkdebug",
                 "inject-error": [{"event": event, "errno": errno,
                                   "once": once}],
                 "image": {"driver": "file", "filename": path}}})


def gio(c, dev, cmd):
    """A guest request through device @dev; its output or QmpError."""
    return c.cmd("__com.qmpd_qemu-io", device=dev, qdev=True, command=cmd)


def gio_error(c, dev, cmd):
    return c.error("__com.qmpd_qemu-io", device=dev, qdev=True,
                   command=cmd)[1]


def wait_stdout(q, text):
    deadline = time.time() + DEADLINE
    while text not in q.stdout_text():
        assert time.time() < deadline, (text, q.stdout_text())
        time.sleep(0.01)


def io_status(c, dev):
    return [b.get("io-status") for b in c.cmd("query-block")
            if b.get("qdev", "").startswith("/machine/peripheral/" + dev)
            or b.get("qdev") == dev][0]


@with_dir("qmpd-devices-")
def test_stop_and_retry(d):
    """werror=stop on virtio-blk: the write is held, the guest stops in
    io-error, cont issues it again and it lands."""
    path = disk(d)
    with Qmpd(["-M", "pc", "-blockdev", faulty(path, 5),
               "-device", "virtio-blk-pci,drive=fmt,id=vd0,werror=stop"]) \
            as q:
        c = q.connect()
        dev = "vd0/virtio-backend"
        assert io_status(c, "vd0") == "ok"
        # HMP qemu-io -d is the guest's I/O too; aio: the guest waits,
        # not the monitor
        assert hmp(c, 'qemu-io -d %s "aio_write -P 0x5a 64k 64k"' % dev) \
            == ""
        e = c.event("BLOCK_IO_ERROR", DEADLINE)["data"]
        assert e == {"device": "", "node-name": "fmt", "operation": "write",
                     "action": "stop", "nospace": False,
                     "reason": "Input/output error"}, e
        c.event("STOP", DEADLINE)
        assert c.cmd("query-status") == {"status": "io-error",
                                         "singlestep": False,
                                         "running": False}
        assert hmp(c, "info status") == "VM status: paused (io-error)\r\n"
        assert io_status(c, "vd0") == "failed"
        assert "    I/O status:       failed\r\n" in hmp(c, "info block")
        assert "wrote" not in q.stdout_text()
        st = c.cmd("query-blockstats")[0]["stats"]
        assert st["failed_wr_operations"] == 0 and st["wr_operations"] == 0
        # stop changes nothing in io-error; cont retries
        c.cmd("stop")
        assert c.cmd("query-status")["status"] == "io-error"
        c.cmd("cont")
        c.event("RESUME", DEADLINE)
        gio(c, dev, "aio_flush")
        wait_stdout(q, "wrote 65536/65536 bytes at offset 65536")
        assert "failed" not in q.stdout_text()
        assert c.cmd("query-status")["status"] == "running"
        # QEMU resets io-status on cont for named backends only; this
        # device's backend is anonymous (-blockdev): it keeps "failed"
        assert io_status(c, "vd0") == "failed"
        st = c.cmd("query-blockstats")[0]["stats"]
        assert st["wr_operations"] == 1 and st["failed_wr_operations"] == 0
        gio(c, dev, "read -P 0x5a 64k 64k")
        c.cmd("quit")
        q.wait(DEADLINE)
    check_clean(path)
    qemu_io(path, "read -P 0x5a 64k 64k", "read -P 0x11 0 64k")


@with_dir("qmpd-devices-")
def test_drive_policies(d):
    """-drive werror/rerror, the device's auto inherits them; a named
    backend's io-status is reset by cont; a sync write waits for cont
    (sent on another connection)."""
    path = disk(d)
    drive = ("if=none,id=d0,driver=qcow2,file.driver=blkdebug,"
             "file.inject-error.0.event=write_aio,"
             "file.inject-error.0.errno=28,file.inject-error.0.once=on,"
             "file.image.driver=file,file.image.filename=%s,"
             "werror=enospc,rerror=stop" % path)
    with Qmpd(["-M", "pc", "-device", "virtio-scsi-pci,id=scsi0",
               "-drive", drive, "-device", "scsi-hd,drive=d0,id=sd0"]) as q:
        c = q.connect()
        c2 = q.connect()
        assert io_status(c, "sd0") == "ok"
        c.send_raw(json.dumps({"execute": "__com.qmpd_qemu-io",
                               "arguments": {"device": "sd0", "qdev": True,
                                             "command":
                                             "write -P 0x66 0 4k"}}))
        e = c2.event("BLOCK_IO_ERROR", DEADLINE)["data"]
        assert e == {"device": "d0", "node-name": e["node-name"],
                     "operation": "write", "action": "stop",
                     "nospace": True,
                     "reason": "No space left on device"}, e
        c2.event("STOP", DEADLINE)
        assert io_status(c2, "sd0") == "nospace"
        c2.cmd("cont")
        c2.event("RESUME", DEADLINE)
        r = c.reply(DEADLINE)
        assert r["return"].startswith("wrote 4096/4096 bytes at offset 0"), r
        assert io_status(c2, "sd0") == "ok"
        c.cmd("quit")
        q.wait(DEADLINE)
    check_clean(path)
    qemu_io(path, "read -P 0x66 0 4k")


@with_dir("qmpd-devices-")
def test_report_and_ignore(d):
    """report: the guest sees the error; ignore: success, not written;
    both send BLOCK_IO_ERROR, neither stops the guest nor shows an
    io-status (no stop in the policy)."""
    path = disk(d)
    rules = [{"event": "write_aio", "errno": 5, "once": True},
             {"event": "read_aio", "errno": 5, "once": True}]
    bd = {"driver": "qcow2", "node-name": "fmt",
          "file": {"driver": "blkdebug", "inject-error": rules,
                   "image": {"driver": "file", "filename": path}}}
    with Qmpd(["-M", "pc", "-blockdev", json.dumps(bd), "-device",
               "ide-hd,drive=fmt,id=hd0,werror=report,rerror=ignore"]) as q:
        c = q.connect()
        assert io_status(c, "hd0") is None
        assert gio_error(c, "hd0", "write -P 0x22 0 4k") == \
            "write failed: Input/output error"
        e = c.event("BLOCK_IO_ERROR", DEADLINE)["data"]
        assert e["action"] == "report" and e["operation"] == "write" and \
            "nospace" not in e, e
        out = gio(c, "hd0", "read 0 4k")
        assert out.startswith("read 4096/4096 bytes at offset 0"), out
        e = c.event("BLOCK_IO_ERROR", DEADLINE)["data"]
        assert e["action"] == "ignore" and e["operation"] == "read", e
        assert c.cmd("query-status")["status"] == "running"
        st = c.cmd("query-blockstats")[0]["stats"]
        assert (st["failed_wr_operations"], st["rd_operations"],
                st["failed_rd_operations"]) == (1, 1, 0), st
        gio(c, "hd0", "read -P 0x11 0 4k")
        gio(c, "hd0", "write -P 0x23 8k 4k")
        c.cmd("quit")
        q.wait(DEADLINE)
        assert not [e for e in c.events if e["event"] == "BLOCK_IO_ERROR"]
    check_clean(path)
    qemu_io(path, "read -P 0x11 0 4k", "read -P 0x23 8k 4k")


@with_dir("qmpd-devices-")
def test_held_request_on_unplug_and_quit(d):
    """A request the stop policy holds ends when its device goes (the
    guest is gone), and at quit; nothing leaks, images are clean."""
    path = disk(d)
    path2 = disk(d, "disk2.qcow2")
    with Qmpd(["-M", "pc", "-blockdev", faulty(path, 5, once=False),
               "-blockdev", faulty(path2, 5, once=False, node="fmt2"),
               "-device", "virtio-scsi-pci,id=scsi0",
               "-device", "scsi-hd,drive=fmt,id=sd0,werror=stop",
               "-device", "scsi-hd,drive=fmt2,id=sd1,werror=stop"]) as q:
        c = q.connect()
        gio(c, "sd0", "aio_write -P 0x33 0 4k")
        assert c.event("BLOCK_IO_ERROR", DEADLINE)["data"]["node-name"] == \
            "fmt"
        c.event("STOP", DEADLINE)
        # a stopped guest's device still fails (and holds) without a
        # second STOP
        gio(c, "sd1", "aio_write -P 0x34 0 4k")
        e = c.event("BLOCK_IO_ERROR", DEADLINE)["data"]
        assert e["node-name"] == "fmt2" and e["action"] == "stop", e
        c.cmd("device_del", id="sd0")
        c.event("DEVICE_DELETED", DEADLINE)
        wait_stdout(q, "aio_write failed: Operation canceled")
        c.cmd("cont")
        c.event("RESUME", DEADLINE)
        c.event("STOP", DEADLINE)
        c.cmd("quit")
        q.wait(DEADLINE)
        assert q.proc.returncode == 0
    for p in (path, path2):
        check_clean(p)
        qemu_io(p, "read -P 0x11 0 4k")


@with_dir("qmpd-devices-")
def test_block_sizes(d):
    """The device addresses logical blocks: misaligned guest requests
    fail as invalid (no policy, no event); aligned ones work."""
    path = disk(d)
    with Qmpd(["-M", "pc", "-blockdev",
               "driver=qcow2,node-name=fmt,file.driver=file,"
               "file.filename=%s" % path, "-device",
               "virtio-blk-pci,drive=fmt,id=vd0,werror=stop,"
               "logical_block_size=4096,physical_block_size=4096"]) as q:
        c = q.connect()
        dev = "vd0/virtio-backend"
        for cmd in ("write -P 0x44 512 4k", "write -P 0x44 0 512",
                    "read 4k 1k", "discard 1k 4k", "write -z 0 2k"):
            assert gio_error(c, dev, cmd).endswith("Input/output error"), \
                cmd
        st = c.cmd("query-blockstats")[0]["stats"]
        assert (st["invalid_wr_operations"], st["invalid_rd_operations"],
                st["invalid_unmap_operations"]) == (3, 1, 1), st
        gio(c, dev, "write -P 0x44 4k 8k")
        gio(c, dev, "flush")
        # the backend itself (no -d) still takes any byte range
        c.cmd("__com.qmpd_qemu-io", device="fmt", command="read 1 3")
        assert c.cmd("query-status")["status"] == "running"
        assert not [e for e in c.events if e["event"] == "BLOCK_IO_ERROR"]
        c.cmd("quit")
        q.wait(DEADLINE)
    check_clean(path)
    qemu_io(path, "read -P 0x11 0 4k", "read -P 0x44 4k 8k",
            "read -P 0x11 12k 4k")


@with_dir("qmpd-devices-")
def test_properties(d):
    """qom-get shows the device properties as QEMU does; device_add
    refuses bad ones with QEMU's messages and changes nothing."""
    path = disk(d)
    with Qmpd(["-M", "pc", "-S", "-drive",
               "file=%s,format=qcow2,if=none,id=d0" % path,
               "-device", "virtio-blk-pci,drive=d0,id=vd0,serial=SER1,"
               "logical_block_size=4096,physical_block_size=4096,"
               "werror=stop"]) as q:
        c = q.connect()

        def get(path, prop):
            return c.cmd("qom-get", path=path, property=prop)

        for p in ("/machine/peripheral/vd0", "vd0",
                  "/machine/peripheral/vd0/virtio-backend"):
            assert get(p, "serial") == "SER1"
            assert get(p, "logical_block_size") == 4096
            assert get(p, "discard_granularity") == 4294967295
            assert get(p, "werror") == "stop" and get(p, "rerror") == "auto"
            assert get(p, "drive") == "d0"
        assert get("vd0", "type") == "virtio-blk-pci"
        assert get("vd0/virtio-backend", "type") == "virtio-blk-device"
        assert c.error("qom-get", path="vd0", property="nosuch") == (
            "GenericError", "Property 'virtio-blk-pci.nosuch' not found")
        assert c.error("qom-get", path="nosuch", property="serial") == (
            "DeviceNotFound", "Device 'nosuch' not found")
        c.cmd("blockdev-add", driver="null-co", **{"node-name": "n0"})
        c.cmd("device_add", driver="virtio-scsi-pci", id="scsi0")
        for args, err in [
            ({"werror": "foo"},
             "Parameter 'werror' does not accept value 'foo'"),
            ({"logical_block_size": 1000}, "Property x.logical_block_size "
             "doesn't take value '1000', it's not a power of 2"),
            ({"logical_block_size": "256"}, "Property x.logical_block_size "
             "doesn't take value 256 (minimum: 512, maximum: 2097152)"),
            ({"logical_block_size": "4k"},
             "logical_block_size > physical_block_size not supported"),
            ({"discard_granularity": 4294967296}, "Property scsi-hd."
             "discard_granularity doesn't take value 4294967296 "
             "(maximum: 4294967295)"),
            ({"discard_granularity": 1000},
             "discard_granularity must be a multiple of logical_block_size"),
            ({"min_io_size": 1000},
             "min_io_size must be a multiple of logical_block_size"),
            ({"logical_block_size": -512},
             "Parameter 'logical_block_size' expects size"),
        ]:
            args = dict(args, driver="scsi-hd", drive="n0", id="x")
            assert c.error("device_add", **args) == ("GenericError", err), \
                args
        assert c.error("qom-get", path="x", property="type")[0] == \
            "DeviceNotFound"
        assert [b["device"] for b in c.cmd("query-block")] == ["d0"]
        c.cmd("device_add", driver="scsi-hd", drive="n0", id="sd0")
        assert get("sd0", "serial") == ""
        assert get("sd0", "discard_granularity") == 4096
        assert get("sd0", "logical_block_size") == 512
        assert get("sd0", "drive") == "n0"
        c.cmd("quit")
        q.wait(DEADLINE)
    with Qmpd(["-M", "pc", "-blockdev", "driver=null-co,node-name=n0",
               "-blockdev", "driver=null-co,node-name=n1",
               "-device", "ide-hd,drive=n0,id=hd0,bus=ide.0",
               "-device", "ide-hd,drive=n1,bus=ide.1,serial=MINE"]) as q:
        c = q.connect()
        assert c.cmd("qom-get", path="hd0", property="serial") == "QM00001"
        assert c.cmd("qom-get", path="/machine/peripheral-anon/device[0]",
                     property="serial") == "MINE"
        assert c.cmd("qom-get", path="hd0",
                     property="discard_granularity") == 512
        c.cmd("quit")
        q.wait(DEADLINE)
    # IDE's own rules, checked when the device is realized
    for opts, err in [
        ("discard_granularity=4096",
         "discard_granularity must be 512 for ide"),
        ("logical_block_size=4096,physical_block_size=4096",
         "discard_granularity must be a multiple of logical_block_size"),
        ("logical_block_size=4096,physical_block_size=4096,"
         "discard_granularity=0", "logical_block_size must be 512 for IDE"),
    ]:
        arg = "ide-hd,drive=n0,%s" % opts
        q = Qmpd(["-M", "pc", "-blockdev", "driver=null-co,node-name=n0",
                  "-device", arg], wait=False, status=1)
        try:
            assert q.wait(DEADLINE) == 1
            assert q.stderr_text() == "qmpd: -device %s: %s\n" % (arg, err)
        finally:
            q.close()


@with_dir("qmpd-devices-")
def test_drive_options(d):
    """-drive werror/rerror/serial as QEMU 7.2 takes them."""
    path = disk(d)
    base = "file=%s,format=qcow2,if=none,id=d0" % path
    for extra, err in [
        (",werror=foo", "'foo' invalid write error action"),
        (",rerror=enospc", "'enospc' invalid read error action"),
        (",werror=auto", "'auto' invalid write error action"),
        (",serial=abc",
         "Block format 'qcow2' does not support the option 'serial'"),
    ]:
        q = Qmpd(["-M", "pc", "-drive", base + extra], wait=False,
                 status=1)
        try:
            assert q.wait(DEADLINE) == 1
            assert q.stderr_text() == "qmpd: -drive %s%s: %s\n" % (
                base, extra, err), q.stderr_text()
        finally:
            q.close()
    q = Qmpd(["-M", "none", "-drive", "driver=null-co,if=none,serial=x"],
             wait=False, status=1)
    try:
        assert q.wait(DEADLINE) == 1
        assert q.stderr_text().endswith(
            "Block protocol 'null-co' doesn't support the option "
            "'serial'\n"), q.stderr_text()
    finally:
        q.close()
    check_clean(path)


NULLS = []
for _i in range(8):
    NULLS += ["-blockdev", "driver=null-co,node-name=n%d" % _i]


def start_error(args):
    """qmpd @args must fail to start: its message (after the option)."""
    q = Qmpd(args, wait=False, status=1)
    try:
        assert q.wait(DEADLINE) == 1
        return q.stderr_text().splitlines()[0].split(": ", 2)[2]
    finally:
        q.close()


def qom_get(c, path, prop):
    return c.cmd("qom-get", path=path, property=prop)


def test_pci_addresses():
    """Slots as QEMU 7.2 assigns them after the chipset's (pc: 00.0,
    01.0-01.3; q35: 00.0, 1f.*), given ones checked, multifunction,
    hotplug; qom-get shows addr (the devfn), bootindex, num-queues."""
    with Qmpd(["-M", "pc", "-S"] + NULLS + [
            "-device", "virtio-scsi-pci,id=s",
            "-device", "virtio-blk-pci,drive=n0,id=v,bootindex=3,"
            "num-queues=4,write-cache=off",
            "-device", "virtio-blk-pci,drive=n1,id=m,addr=0x6,"
            "multifunction=on",
            "-device", "virtio-blk-pci,drive=n2,addr=06.3"]) as q:
        c = q.connect()
        assert [qom_get(c, p, "addr") for p in
                ("s", "v", "m", "/machine/peripheral-anon/device[0]")] == \
            [2 << 3, 3 << 3, 6 << 3, 6 << 3 | 3]
        assert (qom_get(c, "m", "multifunction"),
                qom_get(c, "v", "multifunction")) == (True, False)
        for p in ("v", "v/virtio-backend"):
            assert (qom_get(c, p, "bootindex"), qom_get(c, p, "num-queues"),
                    qom_get(c, p, "write-cache")) == (3, 4, "off")
        assert (qom_get(c, "m", "bootindex"),
                qom_get(c, "m", "num-queues")) == (-1, 1)
        assert c.error("qom-get", path="v/virtio-backend",
                       property="addr")[1] == \
            "Property 'virtio-blk-device.addr' not found"
        assert c.error("qom-get", path="v", property="queue-size")[1] == \
            "Property 'virtio-blk-pci.queue-size' is not modelled by qmpd"
        for args, err in [
            ({"addr": "1"}, "PCI: slot 1 function 0 not available for "
             "virtio-blk-pci, in use by PIIX3,id=(null)"),
            ({"addr": "1.3"}, "PCI: slot 1 function 3 not available for "
             "virtio-blk-pci, in use by PIIX4_PM,id=(null)"),
            ({"addr": "3"}, "PCI: slot 3 function 0 not available for "
             "virtio-blk-pci, in use by virtio-blk-pci,id=v"),
            ({"addr": "1.2"}, "PCI: slot 1 function 0 already occupied by "
             "PIIX3, new func virtio-blk-pci cannot be exposed to guest."),
            ({"addr": "3.8"},
             "Property 'virtio-blk-pci.addr' doesn't take value '3.8'"),
            ({"addr": "7.1", "bus": "pci.0/"}, 7 << 3 | 1),
            ({"addr": "7"}, "PCI: 7.0 indicates single function, but 7.1 "
             "is already populated."),
            ({"addr": "2.1"}, "PCI: slot 2 function 0 already occupied by "
             "virtio-scsi-pci, new func virtio-blk-pci cannot be exposed "
             "to guest."),
            ({"bootindex": 3}, "The bootindex 3 has already been used"),
            ({"bootindex": "0x7fffffff1"},
             "Parameter 'bootindex' expects int32_t"),
            ({"num-queues": 0}, "num-queues property must be larger than 0"),
            # QEMU 7.2 aborts on this; later QEMU refuses it so
            ({"num-queues": 1025}, "num-queues property must be <= 1024"),
            ({"multifunction": "maybe"},
             "Parameter 'multifunction' expects 'on' or 'off'"),
            ({"bus": "ide.0"}, "Device 'virtio-blk-pci' can't go on IDE bus"),
            ({"bus": "s.0"}, "Device 'virtio-blk-pci' can't go on SCSI bus"),
            ({"bus": "pci.1"}, "Bus 'pci.1' not found"),
            ({"bus": "/i440fx/pci.0"}, "Bus path '/i440fx/pci.0' is not "
             "supported by qmpd (give the bus name)"),
            ({"id": "1a"}, "Parameter 'id' expects an identifier"),
            ({"drive": "n4"}, 4 << 3),
        ]:
            args = dict({"driver": "virtio-blk", "drive": "n3"}, **args)
            r = c.execute("device_add", args)
            if isinstance(err, int):
                # anonymous devices: device[0] is on the command line
                assert r == {"return": {}}, (args, r)
                assert qom_get(c, "/machine/peripheral-anon/device[%d]"
                               % (1 + (err == 4 << 3)), "addr") == err
            else:
                assert r["error"]["desc"] == err, (args, r)
        c.cmd("quit")
        q.wait(DEADLINE)
    with Qmpd(["-M", "q35", "-S"] + NULLS + [
            "-device", "virtio-blk-pci,drive=n0,id=v",
            "-device", "virtio-scsi-pci,id=s,addr=1f.4"]) as q:
        c = q.connect()
        assert (qom_get(c, "v", "addr"), qom_get(c, "s", "addr")) == \
            (1 << 3, 0x1f << 3 | 4)
        assert c.error("device_add", driver="virtio-blk-pci", drive="n1") \
            == ("GenericError", "Bus 'pcie.0' does not support hotplugging")
        assert c.error("device_del", id="v") == \
            ("GenericError", "Bus 'pcie.0' does not support hotplugging")
        c.cmd("quit")
        q.wait(DEADLINE)
    for machine, addr, err in [
            ("pc", "0", "in use by i440FX,id=(null)"),
            ("q35", "1f.2", "in use by ich9-ahci,id=(null)")]:
        assert start_error(["-M", machine] + NULLS + [
            "-device", "virtio-blk-pci,drive=n0,addr=" + addr]).endswith(
                err)


def test_scsi_and_ide_addresses():
    """SCSI: the first free target (at the LUN asked, else 0), the first
    free LUN at a target, QEMU's ranges; IDE: unit 0 then 1 on the
    machine's last IDE bus, two units (q35: one), no hotplug."""
    with Qmpd(["-M", "pc", "-S"] + NULLS + [
            "-device", "virtio-scsi-pci,id=s",
            "-device", "scsi-hd,drive=n0,id=a",
            "-device", "scsi-hd,drive=n1,id=b,scsi-id=0",
            "-device", "scsi-hd,drive=n2,id=c,lun=3",
            "-device", "ide-hd,drive=n3,id=h0",
            "-device", "ide-hd,drive=n4,id=h1",
            "-device", "ide-hd,drive=n5,id=h2,bus=ide.0,unit=1"]) as q:
        c = q.connect()
        assert [(qom_get(c, d, "channel"), qom_get(c, d, "scsi-id"),
                 qom_get(c, d, "lun")) for d in "abc"] == \
            [(0, 0, 0), (0, 0, 1), (0, 0, 3)]
        assert [qom_get(c, d, "unit") for d in ("h0", "h1", "h2")] == \
            [0, 1, 1]
        for args, err in [
            ({"scsi-id": 256}, "bad scsi device id: 256"),
            ({"lun": 16384}, "bad scsi device lun: 16384"),
            ({"channel": 1}, "bad scsi channel id: 1"),
            ({"scsi-id": "2147483648"}, "bad scsi device id: -2147483648"),
            ({"scsi-id": -1}, "Parameter 'scsi-id' expects uint32_t"),
            ({"scsi-id": 0, "lun": 3}, "lun already used by 'c'"),
            ({"unit": 0}, "Property 'scsi-hd.unit' not found"),
            ({"addr": 0}, "Property 'scsi-hd.addr' not found"),
            ({"bus": "s"}, "Bus 's' not found"),
            ({"lun": 3}, 1),
        ]:
            r = c.execute("device_add", dict(
                {"driver": "scsi-hd", "drive": "n6", "id": "x"}, **args))
            if isinstance(err, int):
                assert r == {"return": {}}, r
                assert qom_get(c, "x", "scsi-id") == err
            else:
                assert r["error"]["desc"] == err, (args, r)
        assert c.error("device_add", driver="ide-hd", drive="n7")[1] == \
            "Bus 'ide.1' does not support hotplugging"
        assert c.error("device_del", id="h0")[1] == \
            "Bus 'ide.1' does not support hotplugging"
        c.cmd("quit")
        q.wait(DEADLINE)
    for machine, devs, err in [
        ("pc", ["ide-hd,drive=n0", "ide-hd,drive=n1", "ide-hd,drive=n2"],
         "IDE unit 1 is in use"),
        ("pc", ["ide-hd,drive=n0,unit=2"],
         "Can't create IDE unit 2, bus supports only 2 units"),
        ("q35", ["ide-hd,drive=n0", "ide-hd,drive=n1"],
         "Can't create IDE unit 1, bus supports only 1 units"),
        ("pc", ["ide-hd"], "No drive specified"),
        ("pc", ["ide-hd,drive=n0,bus=ide.2"], "Bus 'ide.2' not found"),
        ("none", ["ide-hd,drive=n0"],
         "No 'IDE' bus found for device 'ide-hd'"),
        ("pc", ["scsi-hd,drive=n0"],
         "No 'SCSI' bus found for device 'scsi-hd'"),
        ("pc", ["ide-hd,drive=n0,num-queues=1"],
         "Property 'ide-hd.num-queues' not found"),
    ]:
        args = ["-M", machine] + NULLS
        for spec in devs:
            args += ["-device", spec]
        assert start_error(args) == err, (devs, start_error(args))


@with_dir("qmpd-devices-")
def test_controller_unplug(d):
    """device_del of a virtio-scsi-pci takes its disks first (newest
    first, then the inner virtio-scsi-device, then the controller): their
    -drive backends go with them; the images the guest wrote are
    clean."""
    path = disk(d)
    path2 = disk(d, "disk2.qcow2")
    with Qmpd(["-M", "pc", "-S",
               "-drive", "file=%s,format=qcow2,if=none,id=d0" % path,
               "-blockdev", "driver=qcow2,node-name=f1,file.driver=file,"
               "file.filename=%s" % path2,
               "-device", "virtio-scsi-pci,id=s",
               "-device", "scsi-hd,drive=d0,id=sd0",
               "-device", "scsi-hd,drive=f1,id=sdb"]) as q:
        c = q.connect()
        gio(c, "sd0", "write -P 0x5a 0 64k")
        gio(c, "sdb", "write -P 0x5b 0 64k")
        c.cmd("device_del", id="s")
        events = [c.event("DEVICE_DELETED", DEADLINE)["data"]
                  for _ in range(4)]
        assert events == [
            {"device": "sdb", "path": "/machine/peripheral/sdb"},
            {"device": "sd0", "path": "/machine/peripheral/sd0"},
            {"path": "/machine/peripheral/s/virtio-backend"},
            {"device": "s", "path": "/machine/peripheral/s"}], events
        assert c.cmd("query-block") == []
        # the bus and its addresses are gone with it; a new one starts
        c.cmd("device_add", driver="virtio-scsi-pci", id="s")
        c.cmd("device_add", driver="scsi-hd", drive="f1", id="sd1")
        assert qom_get(c, "sd1", "scsi-id") == 0
        assert qom_get(c, "s", "addr") == 2 << 3
        c.cmd("quit")
        q.wait(DEADLINE)
    for p, pattern in ((path, "0x5a"), (path2, "0x5b")):
        check_clean(p)
        qemu_io(p, "read -P %s 0 64k" % pattern, "read -P 0x11 64k 64k")


def test_property_refusals_and_help():
    """What a model lacks is refused as QEMU refuses it; what QEMU has
    and qmpd does not model is refused by name; -device DRIVER,help and
    HMP device_add DRIVER,help list what qmpd takes, in QEMU's format."""
    p = subprocess.run([binary(), "-device", "virtio-blk,help"],
                       capture_output=True, text=True, timeout=DEADLINE)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[0] == "virtio-blk-pci options:"
    assert lines[1] == ("  addr=<int32>           - Slot and optional "
                        "function number, example: 06.0 or 06 (default: -1)")
    assert "  bootindex=<int32>" in lines and "  serial=<str>" in lines
    assert lines[1:] == sorted(lines[1:])
    p = subprocess.run([binary(), "-device", "nosuch,help"],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == \
        "qmpd: -device nosuch,help: Device 'nosuch' not found\n"
    with Qmpd(["-M", "pc", "-S"] + NULLS) as q:
        c = q.connect()
        out = hmp(c, "device_add ide-hd,help")
        assert out.startswith("ide-hd options:\r\n"), out
        assert "  unit=<uint32>          -  (default: 4294967295)\r\n" in out
        out = hmp(c, "device_add help")
        assert out.startswith('USB devices:\r\nname "piix3-usb-uhci", bus '
                              'PCI\r\n\r\nStorage devices:\r\n'), out
        for drv, prop, err in [
            ("virtio-blk-pci", "queue-size",
             "Property 'virtio-blk-pci.queue-size' is not supported by qmpd"),
            ("virtio-blk-pci", "scsi-id",
             "Property 'virtio-blk-pci.scsi-id' not found"),
            ("virtio-scsi-pci", "num_queues",
             "Property 'virtio-scsi-pci.num_queues' is not supported by "
             "qmpd"),
            ("virtio-scsi-pci", "drive",
             "Property 'virtio-scsi-pci.drive' not found"),
            ("virtio-blk-pci", "bootindex", "Parameter 'bootindex' expects "
             "integer"),
            ("virtio-blk-pci", "num-queues", "Parameter 'num-queues' expects "
             "integer"),
        ]:
            args = {"driver": drv, prop: "x"}
            if drv != "virtio-scsi-pci":
                args["drive"] = "n0"
            assert c.error("device_add", **args)[1] == err, (args, err)
        assert c.cmd("query-block") == []
        c.cmd("quit")
        q.wait(DEADLINE)


@with_dir("qmpd-devices-")
def test_drive_index(d):
    """-drive index=/bus=/unit= place the drive and name it (QEMU's
    "none3", "virtio2"); the place is unique; if=virtio devices come
    after every -device."""
    paths = [disk(d, "d%d.qcow2" % i) for i in range(4)]

    def drive(i, spec):
        return ["-drive", "file=%s,format=qcow2,%s" % (paths[i], spec)]

    with Qmpd(["-M", "pc", "-S"] + drive(0, "if=none,index=3")
              + drive(1, "if=none,id=foo") + drive(2, "if=none")
              + drive(3, "if=virtio,unit=2")
              + ["-device", "virtio-scsi-pci,id=s"]) as q:
        c = q.connect()
        assert [b["device"] for b in c.cmd("query-block")] == \
            ["none3", "foo", "none1", "virtio2"]
        assert qom_get(c, "s", "addr") == 2 << 3
        dev = "/machine/peripheral-anon/device[0]"
        assert (qom_get(c, dev, "drive"), qom_get(c, dev, "addr")) == \
            ("virtio2", 3 << 3)
        c.cmd("quit")
        q.wait(DEADLINE)
    for specs, err in [
        (["if=none,index=1,bus=1"], "index cannot be used with bus and unit"),
        (["if=none,index=x"], "Parameter 'index' expects a number"),
        (["if=none,unit=99999999999999999999"],
         "Value '99999999999999999999' is too large for parameter 'unit'"),
        (["if=none,index=1", "if=none,unit=1"],
         "drive with bus=0, unit=1 (index=-1) exists"),
        (["if=none,read-only=on,readonly=off"],
         "'read-only' and its alias 'readonly' can't be used at the same "
         "time"),
        (["if=none,id=1a"], "Parameter 'id' expects an identifier"),
    ]:
        args = ["-M", "pc"]
        for i, spec in enumerate(specs):
            args += drive(i, spec)
        assert start_error(args) == err, (specs, start_error(args))
    for p in paths:
        check_clean(p)
        qemu_io(p, "read -P 0x11 0 1M")


@with_dir("qmpd-devices-")
def test_drive_size_suffixes(d):
    """-drive takes the drivers' byte-size options with a suffix, as
    QEMU's option lists do (BlockdevOptions has them as integers): raw's
    offset and size place the guest's view in the file."""
    path = os.path.join(d, "disk.raw")
    img("create", "-q", "-f", "raw", path, "64k")
    qemu_io(path, "write -P 0x11 0 64k", fmt="raw")
    path2 = os.path.join(d, "disk2.raw")
    img("create", "-q", "-f", "raw", path2, "64k")
    with Qmpd(["-M", "pc", "-S", "-drive",
               "file=%s,format=raw,if=none,id=d0,offset=4k,size=8k" % path,
               "-drive", "driver=null-co,if=none,id=d1,size=1.5k",
               "-drive", "driver=raw,if=none,id=d2,readonly=on,"
               "file.driver=blkdebug,file.image.driver=file,"
               "file.image.filename=%s,file.align=4k,file.max-transfer=64k"
               % path2]) as q:
        c = q.connect()
        sizes = {b["device"]: b["inserted"]["image"]["virtual-size"]
                 for b in c.cmd("query-block")}
        assert sizes == {"d0": 8192, "d1": 1536, "d2": 65536}, sizes
        c.cmd("__com.qmpd_qemu-io", device="d0", command="write -P 0x22 0 8k")
        assert c.error("__com.qmpd_qemu-io", device="d0",
                       command="write 8k 512")[1].startswith("write failed")
        c.cmd("quit")
        q.wait(DEADLINE)
    qemu_io(path, "read -P 0x11 0 4k", "read -P 0x22 4k 8k",
            "read -P 0x11 12k 52k", fmt="raw")
    qcow = disk(d)
    for extra, err in [
        ("cache-size=x", "Parameter 'cache-size' expects a non-negative "
         "number below 2^64"),
        ("l2-cache-size=-1", "Parameter 'l2-cache-size' expects a "
         "non-negative number below 2^64"),
        ("refcount-cache-size=64k", None), ("l2-cache-size=1M", None),
    ]:
        args = ["-M", "pc", "-drive",
                "file=%s,format=qcow2,if=none,%s" % (qcow, extra)]
        if err:
            assert start_error(args) == err, (extra, start_error(args))
        else:
            with Qmpd(args) as q:
                q.connect().cmd("quit")
                q.wait(DEADLINE)
    check_clean(qcow)


if __name__ == "__main__":
    run([test_stop_and_retry, test_drive_policies, test_report_and_ignore,
         test_held_request_on_unplug_and_quit, test_block_sizes,
         test_properties, test_drive_options, test_pci_addresses,
         test_scsi_and_ide_addresses, test_controller_unplug,
         test_property_refusals_and_help, test_drive_index,
         test_drive_size_suffixes])
