#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""virsh's block, snapshot and save flows on a domain whose emulator is
qmpd, on a qcow2 chain base <- mid <- top with data in every layer:
blockpull (partial, full, --bandwidth, --wait --verbose), blockjob
(--info, --bandwidth, --abort), blockresize, snapshot-create-as
--disk-only, blockcommit (intermediate with and without --delete,
--active then --abort, --keep-overlay, --pivot), blockcopy (--finish
--bandwidth, --shallow --reuse-external --pivot, full --pivot),
domjobinfo, save and restore.  Each flow is checked by virsh's own
output and the images by qemu-img (info --backing-chain, compare with
what the guest read at the start plus its writes, check).  Where
qemu-system-x86_64 is installed each group runs against it too, and
libvirt must have sent both emulators the same QMP commands for every
flow.  One domain per group; how libvirt runs here: virshlib.py.
"""

import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import check_clean, img, need_tools, qemu_io  # noqa: E402
from qmpd import qemu_binary, run  # noqa: E402
from virshlib import (DEADLINE, NOBODY, Libvirt, chain_of,  # noqa: E402
                      chain_with_data, create, destroy, flow, need_virsh)

BACKEND = "/machine/peripheral/virtio-disk0/virtio-backend"


def blk(lv):
    """The disk's source as domblklist shows it, directory stripped."""
    m = re.search(r"^ vda +(\S+)$", lv.out("domblklist", "d"), re.M)
    return os.path.basename(m.group(1))


def guest_write(lv, ref, pattern, offset, length):
    """A guest write through the disk (HMP qemu-io on its device), and
    the same into the raw image of what the guest must read.  QEMU's
    qemu-io prints to its stdout, not the monitor: the images show the
    write."""
    out = lv.out("qemu-monitor-command", "d", "--hmp",
                 'qemu-io -d %s "write -P %d %s %s"'
                 % (BACKEND, pattern, offset, length))
    assert "Error" not in out, out
    qemu_io(ref, "write -P %d %s %s" % (pattern, offset, length), fmt="raw")


def job_info(lv):
    """virsh blockjob --info: the progress line is on stderr."""
    _, out, err = lv.virsh("blockjob", "d", "vda", "--info")
    return (out + err).replace("\r", "\n")


def step(lv, seqs, name, *cmd, polls=False):
    """One virsh flow: its output; seqs[@name] the QMP commands it
    sent."""
    _, out, seqs[name] = flow(lv, name, *cmd, polls=polls)
    return out


def abort(lv, seqs, name):
    """virsh blockjob --abort, which waits for the job to go."""
    step(lv, seqs, name, "blockjob", "d", "vda", "--abort")
    out = job_info(lv)
    assert "No current block job for vda" in out, out


def same(path, ref, lv=None):
    """@path reads as @ref; a guest flush first where the domain @lv has
    it open, else its metadata may still be in the emulator's cache (in
    QEMU's and qmpd's alike)."""
    if lv:
        out = lv.out("qemu-monitor-command", "d", "--hmp",
                     'qemu-io -d %s "flush"' % BACKEND)
        assert "Error" not in out, out
    img("compare", "-U", path, ref)


def pull_flows(lv):
    top, ref = chain_with_data(lv)
    d = os.path.dirname(top)
    create(lv, lv.domain_xml(lv.emulator, top))
    seqs = {}
    # 1 MiB/s: 32 MiB to pull, so the job is still there for blockjob
    out = step(lv, seqs, "blockpull --bandwidth", "blockpull", "d", "vda",
               "--bandwidth", "1")
    assert "Block Pull started" in out, out
    out = step(lv, seqs, "blockjob --info", "blockjob", "d", "vda", "--info",
               polls=True)
    assert re.search(r"^Block Pull: \[ *\d+ %\]", out, re.M), out
    assert "Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)" in out, out
    step(lv, seqs, "blockjob --bandwidth", "blockjob", "d", "vda",
         "--bandwidth", "2")
    out = job_info(lv)
    assert "Bandwidth limit: 2097152 bytes/s (2.000 MiB/s)" in out, out
    abort(lv, seqs, "blockjob --abort (pull)")
    assert chain_of(top) == ["top.qcow2", "mid.qcow2", "base.qcow2"]
    same(top, ref, lv)

    out = step(lv, seqs, "blockpull --base", "blockpull", "d", "vda", "--base",
               os.path.join(d, "base.qcow2"), "--bandwidth", "64", "--wait",
               "--verbose")
    assert re.search(r"^Block Pull: \[100 %\]$", out, re.M), out
    assert "Pull complete" in out, out
    assert chain_of(top) == ["top.qcow2", "base.qcow2"]
    same(top, ref, lv)
    guest_write(lv, ref, 4, "60M", "1M")
    out = step(lv, seqs, "blockpull", "blockpull", "d", "vda", "--wait",
               "--verbose")
    assert "Pull complete" in out, out
    assert chain_of(top) == ["top.qcow2"]
    same(top, ref, lv)

    out = step(lv, seqs, "blockresize", "blockresize", "d", "vda", "96M")
    assert "Block device 'vda' is resized" in out, out
    info = lv.out("domblkinfo", "d", "vda")
    assert re.search(r"^Capacity: +100663296$", info, re.M), info
    destroy(lv)
    assert json.loads(img("info", "--output=json", top))[
        "virtual-size"] == 96 << 20
    check_clean(top)
    img("resize", "-q", "--shrink", ref, "96M")
    same(top, ref)
    return seqs


def commit_flows(lv):
    top, ref = chain_with_data(lv)
    d = os.path.dirname(top)
    snap = os.path.join(d, "snap.qcow2")
    path = {n: os.path.join(d, n + ".qcow2") for n in ("base", "mid", "top")}
    create(lv, lv.domain_xml(lv.emulator, top))
    seqs = {}
    out = step(lv, seqs, "snapshot-create-as", "snapshot-create-as", "d", "s1",
               "--disk-only", "--no-metadata", "--diskspec",
               "vda,file=%s" % snap)
    assert "Domain snapshot s1 created" in out, out
    assert blk(lv) == "snap.qcow2"
    assert chain_of(snap) == ["snap.qcow2", "top.qcow2", "mid.qcow2",
                              "base.qcow2"]
    guest_write(lv, ref, 9, "40M", "1M")

    out = step(lv, seqs, "blockcommit --delete", "blockcommit", "d", "vda",
               "--top", path["mid"], "--base", path["base"], "--wait",
               "--verbose", "--delete")
    assert "Commit complete" in out, out
    assert not os.path.exists(path["mid"])
    assert chain_of(snap) == ["snap.qcow2", "top.qcow2", "base.qcow2"]
    out = step(lv, seqs, "blockcommit --top", "blockcommit", "d", "vda",
               "--top", path["top"], "--base", path["base"], "--wait",
               "--verbose")
    assert "Commit complete" in out, out
    assert os.path.exists(path["top"])
    assert chain_of(snap) == ["snap.qcow2", "base.qcow2"]
    same(snap, ref, lv)

    out = step(lv, seqs, "blockcommit --active", "blockcommit", "d", "vda",
               "--active", "--wait", "--verbose")
    assert "Now in synchronized phase" in out, out
    out = job_info(lv)
    assert "Active Block Commit: [100 %]" in out, out
    abort(lv, seqs, "blockjob --abort (ready commit)")
    assert blk(lv) == "snap.qcow2"

    guest_write(lv, ref, 5, "44M", "1M")
    out = step(lv, seqs, "blockcommit --keep-overlay", "blockcommit", "d",
               "vda", "--active", "--keep-overlay", "--wait", "--verbose")
    assert "Commit complete, overlay image kept" in out, out
    assert blk(lv) == "snap.qcow2"
    assert chain_of(snap) == ["snap.qcow2", "base.qcow2"]
    guest_write(lv, ref, 6, "48M", "1M")
    out = step(lv, seqs, "blockcommit --pivot", "blockcommit", "d", "vda",
               "--active", "--pivot", "--wait", "--verbose")
    assert "Successfully pivoted" in out, out
    assert blk(lv) == "base.qcow2"
    guest_write(lv, ref, 7, "52M", "1M")
    destroy(lv)
    for p in (path["base"], path["top"], snap):
        check_clean(p)
    assert chain_of(path["base"]) == ["base.qcow2"]
    same(path["base"], ref)
    return seqs


def copy_flows(lv):
    top, ref = chain_with_data(lv)
    d = os.path.dirname(top)
    create(lv, lv.domain_xml(lv.emulator, top))
    seqs = {}
    copy1 = os.path.join(d, "copy1.qcow2")
    out = step(lv, seqs, "blockcopy --finish", "blockcopy", "d", "vda", copy1,
               "--wait", "--verbose", "--finish", "--bandwidth", "32")
    assert re.search(r"^Block Copy: \[100 %\]$", out, re.M), out
    assert "Successfully copied" in out, out
    assert blk(lv) == "top.qcow2"
    assert chain_of(copy1) == ["copy1.qcow2"]
    same(copy1, ref)

    # the destination's chain made beforehand: its backing holds what
    # mid and base hold, its top is empty
    base2 = os.path.join(d, "base2.qcow2")
    shallow = os.path.join(d, "shallow.qcow2")
    img("convert", "-U", "-O", "qcow2", os.path.join(d, "mid.qcow2"), base2)
    img("create", "-q", "-f", "qcow2", "-b", "base2.qcow2", "-F", "qcow2",
        shallow)
    if lv.as_nobody:
        for p in (base2, shallow):
            os.chown(p, NOBODY, NOBODY)
    guest_write(lv, ref, 8, "30M", "1M")
    out = step(lv, seqs, "blockcopy --shallow --reuse-external", "blockcopy",
               "d", "vda", shallow, "--shallow", "--reuse-external", "--wait",
               "--verbose", "--pivot")
    assert "Successfully pivoted" in out, out
    assert blk(lv) == "shallow.qcow2"
    assert chain_of(shallow) == ["shallow.qcow2", "base2.qcow2"]
    same(shallow, ref, lv)

    copy2 = os.path.join(d, "copy2.qcow2")
    guest_write(lv, ref, 10, "50M", "1M")
    out = step(lv, seqs, "blockcopy --pivot", "blockcopy", "d", "vda", copy2,
               "--wait", "--verbose", "--pivot")
    assert "Successfully pivoted" in out, out
    assert blk(lv) == "copy2.qcow2"
    out = step(lv, seqs, "domjobinfo", "domjobinfo", "d")
    assert re.search(r"^Job type: +None", out, re.M), out
    destroy(lv)
    for p in (copy1, shallow, base2, copy2, top):
        check_clean(p)
    assert chain_of(copy2) == ["copy2.qcow2"]
    same(copy2, ref)
    return seqs


def digest(lv):
    r = json.loads(lv.out("qemu-monitor-command", "d",
                          '{"execute":"__com.qmpd_guest-digest"}'))
    return r["return"]


def qmp(lv, cmd, **args):
    r = json.loads(lv.out("qemu-monitor-command", "d", json.dumps(
        {"execute": cmd, "arguments": args})))
    return r["return"]


def save_flows(lv):
    """save and restore a persistent domain (so that domjobinfo
    --completed has the save to show once the domain is off)."""
    top, ref = chain_with_data(lv)
    saved = os.path.join(lv.top, "img", "d.save")
    lv.out("define", lv.domain_xml(lv.emulator, top))
    assert "Domain 'd' started" in lv.out("start", "d")
    seqs = {}
    before = None
    if "qemu" not in lv.emulator:
        # a guest that has written to its RAM and disk, then rests
        qmp(lv, "__com.qmpd_guest-workload", **{
            "ram-rate": 64 << 20, "disk-rate": 8 << 20,
            "device": "virtio-disk0", "seed": 7})
        deadline = time.time() + DEADLINE
        while True:
            w = qmp(lv, "__com.qmpd_query-guest-workload")
            if w["ram-written"] >= 4 << 20 and w["disk-written"] > 0:
                break
            assert time.time() < deadline, w
            time.sleep(0.05)
        qmp(lv, "__com.qmpd_guest-workload", **{"ram-rate": 0,
                                                "disk-rate": 0})
        before = digest(lv)
    out = step(lv, seqs, "save", "save d %s --verbose; domjobinfo d "
               "--completed; domstate d" % saved)
    assert "Domain 'd' saved to %s" % saved in out, out
    assert re.search(r"^Save: \[100 %\]$", out, re.M), out
    assert re.search(r"^Job type: +Completed", out, re.M), out
    assert re.search(r"^Operation: +Save", out, re.M), out
    m = re.search(r"^Memory processed: +([\d.]+) (\w+)", out, re.M)
    assert m and float(m.group(1)) > 0, out
    assert re.search(r"^shut off$", out, re.M), out
    out = step(lv, seqs, "restore", "restore", saved)
    assert "Domain restored from %s" % saved in out, out
    assert lv.out("domstate", "d").strip() == "running"
    if before:
        assert digest(lv) == before
        # RAM of zeros hashes its size alone (__com.qmpd_guest-digest)
        assert before["ram"] != hashlib.sha256(
            (64 << 20).to_bytes(8, "little")).hexdigest()
    lv.out("undefine", "d")
    destroy(lv)
    check_clean(top)
    return seqs


def flows_on_both(group):
    """Run @group against qmpd, then QEMU where installed; every flow
    must have sent the same commands."""
    need_virsh()
    need_tools()
    qemu = qemu_binary()
    seqs = {}
    for name in ["qmpd"] + (["qemu"] if qemu else []):
        with Libvirt() as lv:
            lv.emulator = lv.qmpd() if name == "qmpd" else qemu
            seqs[name] = group(lv)
    if not qemu:
        print("# qemu-system-x86_64 not installed: commands not compared")
        return
    for f in seqs["qmpd"]:
        a, b = seqs["qmpd"][f], seqs["qemu"][f]
        assert a == b, "%s:\nqmpd %s\nQEMU %s" % (f, a, b)
        print("# %s: the same %d commands (%s)"
              % (f, len(a), " ".join(sorted(set(c for c, _ in a)))))


def test_pull_flows():
    flows_on_both(pull_flows)


def test_commit_flows():
    flows_on_both(commit_flows)


def test_copy_flows():
    flows_on_both(copy_flows)


def test_save_restore():
    flows_on_both(save_flows)


if __name__ == "__main__":
    run([test_pull_flows, test_commit_flows, test_copy_flows,
         test_save_restore])
