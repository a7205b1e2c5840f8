#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What a management tool's capability probe learns of qmpd (libvirt's
runs qmpd -S -no-user-config -nodefaults -nographic -machine
none,accel=kvm:tcg ... -daemonize): the accelerator list, no KVM, the
QOM types with their properties, CPU models, command-line options, and
QEMU 7.2's errors for TPM, SEV and SGX, which qmpd does not have.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402


def test_accel_list():
    # as a QEMU built without KVM: each unavailable one is named, then
    # the first one qmpd has is taken
    with Qmpd(["-S", "-no-user-config", "-nographic", "-machine",
               "none,accel=kvm:tcg"]) as q:
        c = q.connect()
        assert c.cmd("query-kvm") == {"enabled": False, "present": False}
        err = q.stderr_text()
        assert "qmpd: invalid accelerator kvm\n" in err, err
        assert "qmpd: falling back to tcg\n" in err, err


def test_types_and_properties():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        types = c.cmd("qom-list-types")
        names = {t["name"] for t in types}
        assert {"tcg-accel", "qtest-accel", "pc-i440fx-7.2-machine",
                "none-machine", "virtio-blk-pci", "qemu64-x86_64-cpu",
                "max-x86_64-cpu", "memory-backend-ram"} <= names, names
        assert "kvm-accel" not in names
        assert not any(t.get("abstract") for t in types)
        for t in types:
            props = c.cmd("qom-list-properties", typename=t["name"])
            assert props and all("name" in p and "type" in p
                                 for p in props), (t, props)
        cpus = c.cmd("qom-list-types", implements="x86_64-cpu")
        assert {t["name"] for t in cpus} == {
            "max-x86_64-cpu", "base-x86_64-cpu", "qemu64-x86_64-cpu",
            "qemu64-v1-x86_64-cpu"}, cpus
        machine = {p["name"]: p["type"] for p in c.cmd(
            "qom-list-properties", typename="pc-i440fx-7.2-machine")}
        assert machine["memory-backend"] == "link<memory-backend>"
        assert machine["vmport"] == "OnOffAuto"
        none = [p["name"] for p in c.cmd("qom-list-properties",
                                          typename="none-machine")]
        assert "vmport" not in none and "memory-backend" in none
        cpu = [p["name"] for p in c.cmd("qom-list-properties",
                                         typename="max-x86_64-cpu")]
        assert "unavailable-features" in cpu
        # libvirt 9.0 reads this list on every probe; the type stays
        # refused by name
        mbf = [p["name"] for p in c.cmd("qom-list-properties",
                                         typename="memory-backend-file")]
        assert "mem-path" in mbf and "pmem" in mbf
        assert c.error("object-add", **{
            "qom-type": "memory-backend-file", "id": "m", "size": 1 << 20,
            "mem-path": q.dir}) == (
            "GenericError",
            "object type 'memory-backend-file' is not supported by qmpd")
        assert c.error("qom-list-properties", typename="kvm-accel") == (
            "DeviceNotFound", "Class 'kvm-accel' not found")
        assert c.error("device-list-properties", typename="PIIX4_PM") == (
            "DeviceNotFound", "Device 'PIIX4_PM' not found")


def test_cpu_models():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        defs = {d["name"]: d for d in c.cmd("query-cpu-definitions")}
        assert set(defs) == {"qemu64", "qemu64-v1", "max", "base"}, defs
        assert defs["qemu64"] == {
            "name": "qemu64", "typename": "qemu64-x86_64-cpu",
            "unavailable-features": [], "static": False,
            "migration-safe": True, "deprecated": False,
            "alias-of": "qemu64-v1"}
        assert defs["base"]["static"] is True
        r = c.cmd("query-cpu-model-expansion", type="static",
                  model={"name": "max"})
        assert r == {"model": {"name": "base", "props": {}}}, r
        r = c.cmd("query-cpu-model-expansion", type="full",
                  model={"name": "max", "props": {"migratable": False}})
        assert r == {"model": {"name": "max",
                               "props": {"migratable": False}}}, r
        # QEMU 7.2's words
        assert c.error("query-cpu-model-expansion", type="full",
                       model={"name": "host"}) == (
            "GenericError", "CPU model 'host' not found")
        assert c.error("query-cpu-model-expansion", type="full",
                       model={"name": "qemu64",
                              "props": {"migratable": False}}) == (
            "GenericError",
            "Property 'qemu64-x86_64-cpu.migratable' not found")
        # -M none has no vCPUs
        assert c.cmd("query-cpus-fast") == []
        assert c.error("query-hotpluggable-cpus") == (
            "GenericError", "machine does not support hot-plugging CPUs")


def test_absent_hardware():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        assert c.cmd("query-tpm-models") == []
        assert c.cmd("query-tpm-types") == []
        assert c.error("query-sev-capabilities") == (
            "GenericError", "KVM not enabled")
        assert c.error("query-sgx-capabilities") == (
            "GenericError", "SGX is not enabled in KVM")


def test_command_line_options():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        opts = {o["option"] for o in c.cmd("query-command-line-options")}
        assert {"machine", "smp-opts", "memory", "mon", "name"} <= opts
        # qmpd honours no seccomp sandbox, so it does not list one
        assert "sandbox" not in opts and "spice" not in opts
        r = c.cmd("query-command-line-options", option="overcommit")
        assert r == [{"option": "overcommit", "parameters": [
            {"name": "mem-lock", "type": "boolean"}]}], r
        assert c.error("query-command-line-options", option="sandbox") == (
            "GenericError", "invalid option name: sandbox")


if __name__ == "__main__":
    run([test_accel_list, test_types_and_properties, test_cpu_models,
         test_absent_hardware, test_command_line_options])
