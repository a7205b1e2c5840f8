#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt 9.0 drives qmpd unmodified: the capability probe
(virsh domcapabilities), and a domain on a qcow2 chain base <- mid <- top
started with virsh create, then list, domblklist, domblkinfo,
domblkstat, suspend/resume, qemu-monitor-command (HMP and QMP) and
destroy, each checked by virsh's output.  Where qemu-system-x86_64 is
installed the same start runs against it, and libvirt must have sent
both the same QMP commands (its debug log holds every message).
How libvirt runs here without a daemon: virshlib.py.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import img, need_tools  # noqa: E402
from qmpd import qemu_binary, run  # noqa: E402
from virshlib import (Libvirt, create, destroy, monitor_commands,  # noqa
                      need_virsh, start_sequence)


def test_domcapabilities():
    need_virsh()
    with Libvirt() as lv:
        qmpd = lv.qmpd()
        out = lv.out("domcapabilities", "--emulatorbin", qmpd,
                     "--virttype", "qemu", "--arch", "x86_64", "--machine",
                     "pc")
        assert "<path>%s</path>" % qmpd in out, out
        assert "<domain>qemu</domain>" in out
        assert "<machine>pc-i440fx-7.2</machine>" in out
        assert "<vcpu max='255'/>" in out
        assert "<model usable='yes' vendor='unknown'>qemu64</model>" in out
        # no KVM, so no kvm domains
        rc, _, err = lv.virsh("domcapabilities", "--emulatorbin", qmpd,
                              "--virttype", "kvm", ok=False)
        assert rc == 1 and "the accel 'kvm' is not supported" in err, err
        probe = [c for c, a in monitor_commands(lv.log)[0]]
        for c in ("query-kvm", "qom-list-types", "query-machines",
                  "query-cpu-definitions", "query-tpm-models",
                  "query-command-line-options", "query-cpu-model-expansion"):
            assert c in probe, (c, probe)
        # qmpd lists no sev-guest or sgx-epc type, so libvirt asks nothing
        assert "query-sev-capabilities" not in probe
        assert "query-sgx-capabilities" not in probe
        # libvirt kills the daemonized probe process
        lv.wait_no_emulator()


def test_domain_start_and_commands():
    need_virsh()
    need_tools()
    with Libvirt() as lv:
        lv.emulator = lv.qmpd()
        top = lv.chain()
        create(lv, lv.domain_xml(lv.emulator, top))
        log = lv.domain_log()
        assert "-device {\"driver\":\"virtio-blk-pci\"" in log.replace(
            "'", ""), log
        assert re.search(r"^ 1 +d +running$", lv.out("list"), re.M)
        assert re.search(r"^ vda +%s$" % re.escape(top),
                         lv.out("domblklist", "d"), re.M)
        info = lv.out("domblkinfo", "d", "vda")
        assert re.search(r"^Capacity: +67108864$", info, re.M), info
        stat = lv.out("domblkstat", "d", "vda")
        for key in ("rd_req", "rd_bytes", "wr_req", "wr_bytes",
                    "flush_operations"):
            assert re.search(r"^vda %s \d+$" % key, stat, re.M), stat
        assert "Domain 'd' suspended" in lv.out("suspend", "d")
        assert lv.out("domstate", "d").strip() == "paused"
        assert "Domain 'd' resumed" in lv.out("resume", "d")
        assert lv.out("domstate", "d").strip() == "running"
        hmp = lv.out("qemu-monitor-command", "d", "--hmp", "info block")
        assert "libvirt-1-format: %s (qcow2)" % top in hmp, hmp
        assert "Backing file:     %s (chain depth: 2)" % top.replace(
            "top", "mid") in hmp, hmp
        r = json.loads(lv.out("qemu-monitor-command", "d",
                              '{"execute":"query-status"}'))
        assert r["return"]["status"] == "running", r
        r = json.loads(lv.out("qemu-monitor-command", "d",
                              '{"execute":"query-cpus-fast"}'))
        assert len(r["return"]) == 1, r
        destroy(lv)
        assert "terminating on signal 15" in lv.domain_log()
        img("check", "-q", top)


def test_same_commands_as_qemu():
    need_virsh()
    need_tools()
    qemu = qemu_binary()
    if not qemu:
        from qmpd import need_qemu
        need_qemu()
    seqs = {}
    times = {}
    for name in ("qmpd", "qemu"):
        with Libvirt() as lv:
            lv.emulator = lv.qmpd() if name == "qmpd" else qemu
            times[name] = create(lv, lv.domain_xml(lv.emulator, lv.chain()))
            destroy(lv)
            seqs[name] = start_sequence(lv)
    assert seqs["qmpd"] == seqs["qemu"], "\n%s\n%s" % (seqs["qmpd"],
                                                       seqs["qemu"])
    assert seqs["qemu"][-1] == ("cont", None)
    print("# virsh create to running: qmpd %.2f s, QEMU %.2f s"
          % (times["qmpd"], times["qemu"]))


if __name__ == "__main__":
    run([test_domcapabilities, test_domain_start_and_commands,
         test_same_commands_as_qemu])
