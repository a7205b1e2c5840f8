#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qmpd started with the command line libvirt 9.0 builds for a domain
(observed with QEMU 7.2 as the emulator, tests/functional/test_libvirt.py
runs the real thing), then libvirt's post-start queries: what each
option means for qmpd's guest, and its refusals by name.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import img, need_tools  # noqa: E402
from qmpd import QmpClient, binary, check_ended, run, run_qmpd  # noqa: E402

UUID = "26e75998-d0e2-4fc7-85f4-9d7ef8c323e0"


def libvirt_argv(d, fd, smp="1,sockets=1,cores=1,threads=1"):
    """libvirt's argv for a 64 MiB pc domain on the chain in @d, its
    monitor the listening socket @fd."""
    with open(os.path.join(d, "master-key.aes"), "wb") as f:
        f.write(os.urandom(32))
    args = [
        binary(), "-name", "guest=d,debug-threads=on", "-S", "-object",
        json.dumps({"qom-type": "secret", "id": "masterKey0",
                    "format": "raw",
                    "file": os.path.join(d, "master-key.aes")}),
        "-machine",
        "pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram",
        "-accel", "tcg", "-cpu", "qemu64", "-m", "64", "-object",
        json.dumps({"qom-type": "memory-backend-ram", "id": "pc.ram",
                    "size": 67108864}),
        "-overcommit", "mem-lock=off", "-smp", smp, "-uuid", UUID,
        "-display", "none", "-no-user-config", "-nodefaults", "-chardev",
        "socket,id=charmonitor,fd=%d,server=on,wait=off" % fd, "-mon",
        "chardev=charmonitor,id=monitor,mode=control", "-rtc", "base=utc",
        "-no-shutdown", "-no-acpi", "-boot", "strict=on", "-device",
        json.dumps({"driver": "piix3-usb-uhci", "id": "usb", "bus": "pci.0",
                    "addr": "0x1.0x2"})]
    backing = None
    for i, name in ((3, "base"), (2, "mid"), (1, "top")):
        args += ["-blockdev", json.dumps({
            "driver": "file", "filename": os.path.join(d, name + ".qcow2"),
            "node-name": "libvirt-%d-storage" % i, "auto-read-only": True,
            "discard": "unmap"})]
        args += ["-blockdev", json.dumps({
            "node-name": "libvirt-%d-format" % i, "read-only": i != 1,
            "driver": "qcow2", "file": "libvirt-%d-storage" % i,
            "backing": backing})]
        backing = "libvirt-%d-format" % i
    args += ["-device", json.dumps({
        "driver": "virtio-blk-pci", "bus": "pci.0", "addr": "0x2",
        "drive": "libvirt-1-format", "id": "virtio-disk0", "bootindex": 1}),
        "-audiodev", json.dumps({"id": "audio1", "driver": "none"}),
        "-msg", "timestamp=on"]
    return args


def make_chain(d):
    img("create", "-q", "-f", "qcow2", os.path.join(d, "base.qcow2"), "64M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        os.path.join(d, "mid.qcow2"))
    img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2",
        os.path.join(d, "top.qcow2"))


class Domain:
    """qmpd on libvirt's argv, its monitor an inherited listening fd."""

    def __init__(self, smp=None):
        self.dir = tempfile.mkdtemp(prefix="qmpd-lv-")
        make_chain(self.dir)
        self.path = os.path.join(self.dir, "monitor.sock")
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(self.path)
        lsock.listen(1)
        args = libvirt_argv(self.dir, lsock.fileno(),
                            **({"smp": smp} if smp else {}))
        self.proc = subprocess.Popen(args, pass_fds=(lsock.fileno(),),
                                     stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        lsock.close()
        self.c = QmpClient(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # libvirt's destroy: SIGTERM
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        self.stderr = err.decode(errors="replace")
        if not exc[0]:
            check_ended("qmpd", self.proc.returncode, 0, self.stderr)
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


def test_post_start_queries():
    need_tools()
    with Domain() as dom:
        c = dom.c
        caps = {x["capability"]: x["state"]
                for x in c.cmd("query-migrate-capabilities")}
        assert caps["events"] is False
        c.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "events", "state": True}])
        assert c.cmd("query-chardev") == [{
            "frontend-open": True, "label": "charmonitor",
            "filename": "unix:%s,server=on" % dom.path}]
        cpus = c.cmd("query-cpus-fast")
        assert len(cpus) == 1 and cpus[0]["qom-path"] == \
            "/machine/unattached/device[0]", cpus
        assert cpus[0]["props"] == {"core-id": 0, "thread-id": 0,
                                    "socket-id": 0}
        hot = c.cmd("query-hotpluggable-cpus")
        assert hot == [{"props": {"core-id": 0, "thread-id": 0,
                                  "socket-id": 0},
                        "vcpus-count": 1, "type": "qemu64-x86_64-cpu",
                        "qom-path": "/machine/unattached/device[0]"}], hot
        props = c.cmd("qom-list", path="/machine/unattached/device[0]")
        for p in props:
            v = c.cmd("qom-get", path="/machine/unattached/device[0]",
                      property=p["name"])
            if p["name"] == "unavailable-features":
                assert v == []
            if p["name"] == "type":
                assert v == "qemu64-x86_64-cpu"
        assert c.cmd("query-iothreads") == []
        nodes = {n["node-name"]: n for n in
                 c.cmd("query-named-block-nodes", flat=True)}
        assert {"libvirt-1-format", "libvirt-2-format", "libvirt-3-format",
                "libvirt-1-storage"} <= set(nodes), nodes
        per = {p["name"]: p["type"] for p in
               c.cmd("qom-list", path="/machine/peripheral")}
        assert per["usb"] == "child<piix3-usb-uhci>"
        assert per["virtio-disk0"] == "child<virtio-blk-pci>"
        # 0x1.0x2: slot 1, function 2, as QEMU's devfn
        assert c.cmd("qom-get", path="usb", property="addr") == 10
        blk = c.cmd("query-block")
        assert blk[0]["qdev"] == \
            "/machine/peripheral/virtio-disk0/virtio-backend", blk
        assert c.cmd("query-uuid") == {"UUID": UUID}
        assert c.cmd("query-status")["status"] == "prelaunch"
        c.cmd("cont")
        c.event("RESUME")
        assert c.cmd("query-status")["status"] == "running"


def test_topology():
    need_tools()
    with Domain(smp="2,maxcpus=4,sockets=2,cores=2,threads=1") as dom:
        c = dom.c
        cpus = c.cmd("query-cpus-fast")
        assert [x["qom-path"] for x in cpus] == [
            "/machine/unattached/device[0]", "/machine/unattached/device[2]"]
        assert cpus[1]["props"] == {"core-id": 1, "thread-id": 0,
                                    "socket-id": 0}
        hot = c.cmd("query-hotpluggable-cpus")
        # QEMU lists the slots last first; only present ones have a path
        assert [h["props"]["socket-id"] for h in hot] == [1, 1, 0, 0]
        assert [h.get("qom-path") for h in hot] == [
            None, None, "/machine/unattached/device[2]",
            "/machine/unattached/device[0]"]


def test_msg_timestamp():
    need_tools()
    with Domain() as dom:
        dom.c.cmd("query-status")
    # the signal's message, with the time first (QEMU's format)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z qmpd: "
                    r"terminating on signal 15", dom.stderr), dom.stderr


def expect_error(args, text):
    p = run_qmpd(["-M", "pc"] + args, status=1)
    err = p.stderr.decode()
    assert err.splitlines()[0] == text, (args, err)


def test_refusals():
    # QEMU 7.2's words where it refuses too; what qmpd's guest lacks, by
    # name
    expect_error(["-smp", "2,maxcpus=1"],
                 "qmpd: Invalid CPU topology: maxcpus must be equal to or "
                 "greater than smp: sockets (1) * dies (1) * cores (1) * "
                 "threads (1) == maxcpus (1) < smp_cpus (2)")
    expect_error(["-smp", "2,sockets=3"],
                 "qmpd: Invalid CPU topology: product of the hierarchy must "
                 "match maxcpus: sockets (3) * dies (1) * cores (0) * "
                 "threads (1) != maxcpus (2)")
    expect_error(["-smp", "300"],
                 "qmpd: Invalid SMP CPUs 300. The max CPUs supported by "
                 "machine 'pc-i440fx-7.2' is 255")
    expect_error(["-smp", "foo"], "qmpd: Parameter 'smp.cpus' expects integer")
    expect_error(["-smp", "1,bogus=1"],
                 "qmpd: Parameter 'smp.bogus' is unexpected")
    expect_error(["-cpu", "foo"], "qmpd: unable to find CPU model 'foo'")
    expect_error(["-cpu", "host"], "qmpd: CPU model 'host' requires KVM or HVF")
    expect_error(["-cpu", "qemu64,+x2apic"],
                 "qmpd: CPU feature 'x2apic' cannot be turned on: qmpd's CPU "
                 "models have no feature flags")
    expect_error(["-cpu", "qemu64,fpu=off,foo=off"],
                 "qmpd: can't apply global qemu64-x86_64-cpu.foo=off: "
                 "Property 'qemu64-x86_64-cpu.foo' not found")
    expect_error(["-cpu", "qemu64,fpu=bar"],
                 "qmpd: can't apply global qemu64-x86_64-cpu.fpu=bar: "
                 "Parameter 'fpu' expects 'on' or 'off'")
    expect_error(["-overcommit", "mem-lock=maybe"],
                 "qmpd: -overcommit mem-lock=maybe: Parameter 'mem-lock' "
                 "expects 'on' or 'off'")
    expect_error(["-overcommit", "foo=1"],
                 "qmpd: -overcommit foo=1: Invalid parameter 'foo'")
    expect_error(["-overcommit", "mem-lock=on"],
                 "qmpd: -overcommit mem-lock=on: -overcommit mem-lock=on is "
                 "not supported by qmpd")
    expect_error(["-rtc", "base=localtime"],
                 "qmpd: -rtc base=localtime: -rtc base=localtime is not "
                 "supported by qmpd (only utc: the guest has no RTC)")
    expect_error(["-rtc", "foo=1"], "qmpd: -rtc foo=1: Invalid parameter 'foo'")
    expect_error(["-boot", "strict=maybe"],
                 "qmpd: Parameter 'boot.strict' expects 'on' or 'off'")
    expect_error(["-boot", "foo=1"], "qmpd: Parameter 'boot.foo' is unexpected")
    expect_error(["-boot", "order=c"],
                 "qmpd: -boot order is not supported by qmpd (the guest has "
                 "no firmware)")
    expect_error(["-audiodev", "foo,id=a"],
                 "qmpd: -audiodev foo,id=a: audiodev driver 'foo' is not "
                 "supported by qmpd (only 'none': the guest has no sound "
                 "card)")
    expect_error(["-audiodev", "none"],
                 "qmpd: -audiodev none: Parameter 'id' is missing")
    expect_error(["-msg", "timestamp=maybe"],
                 "qmpd: -msg timestamp=maybe: Parameter 'timestamp' expects "
                 "'on' or 'off'")
    expect_error(["-msg", "foo=1"], "qmpd: -msg foo=1: Invalid parameter 'foo'")
    p = run_qmpd(["-M", "none", "-no-acpi"], status=1)
    assert p.stderr.decode().splitlines()[0] == \
        "qmpd: Property 'none-machine.acpi' not found", p.stderr
    # nothing of a sandbox is honoured: still refused
    expect_error(["-sandbox", "on"],
                 "qmpd: -sandbox: option not supported by qmpd")


if __name__ == "__main__":
    run([test_post_start_queries, test_topology, test_msg_timestamp,
         test_refusals])
