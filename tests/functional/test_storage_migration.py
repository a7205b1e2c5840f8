#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt's storage migration (virsh migrate --copy-storage-all and
--copy-storage-inc, libvirt-flows.md section M) between two qmpd, sent
exactly as libvirt sends it, over TCP between two network namespaces
made here (a veth pair with private addresses, removed after).

The destination starts with -incoming defer and -S on empty images,
sets the capabilities (events, late-block-activate), exports its disk
writable over NBD and waits; the source mirrors its disk into the
export (sync full, or sync top over a base both hosts hold) while its
guest writes, migrates with pause-before-switchover, cancels the
mirror at the switch, deletes the NBD nodes and continues; the
destination stops its NBD server and runs.  What the destination's
guest sees (__com.qmpd_guest-digest) is what the source's saw at the
switch, and qemu-img compare and check agree.  The failure path
(migrate_cancel, a forced cancel, the nodes deleted; the destination,
which libvirt kills, has exited by itself on the broken stream, as
QEMU's does) leaves the source running on intact images.

Also: what an incoming destination's images are before activation
(unlocked, not writable; an export, block migration, the end of the
migration or cont activate them, late-block-activate leaving it to
cont) and the permissions a writable export takes, as QEMU 7.2 behaves
(checked on it: see test_storage_migration_compat.py); and the NBD half
of the flow with QEMU 7.2 on either side.  Only the NBD half: QEMU's
RAM migration stream and qmpd's are different formats, so the
migrate command itself cannot cross between them."""

import contextlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import check_clean, img, qemu_io, qemu_io_rc, with_dir  # noqa
from migpair import Hosts  # noqa: E402
from qmpd import (Qmpd, free_port, need_qemu, run,  # noqa: E402
                  wait_until)

MiB = 1 << 20
DEADLINE = 120
BASE = ["-M", "pc", "-m", "64"]
JOB = "drive-virtio-disk0"          # libvirt's mirror id: the disk alias
EXPORT_ID = "libvirt-nbd-libvirt-1-format"


def disk(path, node="libvirt-1-format"):
    """-blockdev and -device for a qcow2 guest disk (its backing from
    the header), as libvirt names them."""
    bd = {"driver": "qcow2", "node-name": node,
          "file": {"driver": "file", "filename": path,
                   "node-name": node.replace("format", "storage")}}
    return ["-blockdev", json.dumps(bd), "-device",
            "virtio-blk-pci,drive=%s,id=virtio-disk0" % node]


def export_add(c, node, name, error=None, **kw):
    """block-export-add type=nbd of @node as @name (cmd() has a
    parameter of that name): None, or the (class, desc) of the error
    it must fail with when @error."""
    r = c.execute("block-export-add", dict(type="nbd", name=name,
                                           **{"node-name": node}, **kw))
    if error:
        assert "error" in r, r
        return r["error"]["class"], r["error"]["desc"]
    assert "return" in r, r
    Qmpd.note_command("block-export-add", r["return"])


def caps(c, **kw):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v}
        for k, v in kw.items()])


def status(c):
    return c.cmd("query-migrate").get("status")


def locked(path):
    """Does another process hold @path's image locks?"""
    return "lock" in qemu_io_rc(path, "read 0 512")[1]


def destination_export(dc, host, nport):
    """Destination, prepare phase: steps 1 to 3 of the flow."""
    caps(dc, events=True, late_block_activate=True)
    dc.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    dc.cmd("nbd-server-start", addr={"type": "inet", "data": {
        "host": host, "port": str(nport)}})
    export_add(dc, "libvirt-1-format", JOB, id=EXPORT_ID, writable=True)


def destination_prepare(dc, host, nport, mport):
    """Destination, prepare phase: steps 1 to 4 of the flow."""
    destination_export(dc, host, nport)
    dc.cmd("migrate-incoming", uri="tcp:%s:%d" % (host, mport))


def source_mirror(sc, host, nport, sync, copy_mode):
    """Source, perform phase: steps 5 to 9, up to every mirror READY."""
    assert "blocked-reasons" not in sc.cmd("query-migrate")
    caps(sc, events=True, pause_before_switchover=True)
    sc.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
    sc.cmd("blockdev-add", driver="nbd", export=JOB,
           server={"type": "inet", "host": host, "port": str(nport)},
           **{"node-name": "migration-vda-storage"})
    sc.cmd("blockdev-add", driver="raw", file="migration-vda-storage",
           **{"node-name": "migration-vda-format"})
    args = {"job-id": JOB, "device": "libvirt-1-format",
            "target": "migration-vda-format", "speed": 0, "sync": sync,
            "auto-finalize": True, "auto-dismiss": False}
    if copy_mode:
        args["copy-mode"] = copy_mode
    sc.cmd("blockdev-mirror", **args)
    sc.event("BLOCK_JOB_READY", timeout=DEADLINE)


def end_mirror(sc):
    """Step 11: the mirror ends in sync (COMPLETED, not CANCELLED), is
    dismissed, and the NBD nodes go."""
    sc.cmd("block-job-cancel", device=JOB, force=False)
    ev = sc.event("BLOCK_JOB_COMPLETED", timeout=DEADLINE)
    assert "error" not in ev["data"], ev
    assert [(j["id"], j["status"]) for j in sc.cmd("query-jobs")] == \
        [(JOB, "concluded")]
    sc.cmd("job-dismiss", id=JOB)
    sc.cmd("blockdev-del", **{"node-name": "migration-vda-format"})
    sc.cmd("blockdev-del", **{"node-name": "migration-vda-storage"})


def workload(sc):
    """The guest writes its disk and dirties RAM while the mirror runs."""
    sc.cmd("__com.qmpd_guest-workload", device="virtio-disk0", seed=5,
           **{"disk-rate": 2 * MiB, "ram-rate": MiB})
    wait_until("the guest writes its disk", lambda: sc.cmd(
        "__com.qmpd_query-guest-workload")["disk-written"] >= 256 << 10)


def migrate_with_storage(h, sc, dc, sync, copy_mode):
    """The flow from the destination's export to its guest running on
    what the source's guest saw at the switch; that digest."""
    nport, mport = free_port(), free_port()
    host = h.addr[1]
    destination_prepare(dc, host, nport, mport)
    workload(sc)
    source_mirror(sc, host, nport, sync, copy_mode)
    sc.cmd("migrate", uri="tcp:%s:%d" % (host, mport))
    wait_until("pre-switchover", lambda: status(sc) == "pre-switchover",
               DEADLINE)
    assert sc.cmd("query-status")["status"] == "finish-migrate"
    end_mirror(sc)
    # what the guest sees at the switch (it is paused: nothing changes)
    at_switch = sc.cmd("__com.qmpd_guest-digest")
    assert sc.cmd("__com.qmpd_query-guest-workload")["disk-errors"] == 0
    sc.cmd("migrate-continue", state="pre-switchover")
    wait_until("source completed", lambda: status(sc) == "completed",
               DEADLINE)
    wait_until("destination completed", lambda: status(dc) == "completed",
               DEADLINE)
    # -S: paused until libvirt's finish phase
    assert dc.cmd("query-status")["status"] == "paused"
    dc.cmd("nbd-server-stop")
    assert dc.event("BLOCK_EXPORT_DELETED")["data"] == {"id": EXPORT_ID}
    assert dc.cmd("query-block-exports") == []
    dc.cmd("cont")
    dc.event("RESUME")
    assert dc.cmd("query-status")["status"] == "running"
    assert dc.cmd("__com.qmpd_guest-digest") == at_switch
    ev = [(e["event"], e.get("data")) for e in dc.events
          if e["event"] == "MIGRATION"]
    # migrate-incoming announces setup before its reply, as QEMU 7.2
    assert ev == [("MIGRATION", {"status": "setup"}),
                  ("MIGRATION", {"status": "active"}),
                  ("MIGRATION", {"status": "completed"})], ev
    return at_switch


@contextlib.contextmanager
def across_hosts(src, dst):
    """A destination (-incoming defer, -S) on image @dst and a source on
    @src, each on its own host: (hosts, source, destination), each
    connected once."""
    with Hosts() as h:
        with Qmpd(BASE + ["-incoming", "defer", "-S"] + disk(dst),
                  prefix=h.prefix(1)) as D, \
                Qmpd(BASE + disk(src), prefix=h.prefix(0)) as S:
            S.connect()
            D.connect()
            yield h, S, D


def two_hosts_flow(d, sync, copy_mode):
    if sync == "full":
        src = os.path.join(d, "src.qcow2")
        img("create", "-q", "-f", "qcow2", src, "64M")
        dst = os.path.join(d, "dst.qcow2")
        img("create", "-q", "-f", "qcow2", dst, "64M")
    else:
        # --copy-storage-inc: a base both hosts hold (here: the same
        # file, read-only on both), the overlays copied
        base = os.path.join(d, "base.qcow2")
        img("create", "-q", "-f", "qcow2", base, "64M")
        qemu_io(base, "write -P 0x41 0 8M", "write -P 0x42 40M 4M")
        src = os.path.join(d, "src.qcow2")
        dst = os.path.join(d, "dst.qcow2")
        for p in (src, dst):
            img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                p, "64M")
    qemu_io(src, "write -P 0x61 1M 2M", "write -P 0x62 20M 1M",
            "write -z 41M 1M")
    with across_hosts(src, dst) as (h, S, D):
        sc, dc = S.clients[0], D.clients[0]
        migrate_with_storage(h, sc, dc, sync, copy_mode)
        # the source is postmigrate; its guest wrote nothing since
        assert sc.cmd("query-status")["status"] == "postmigrate"
    img("compare", src, dst)
    check_clean(dst)
    check_clean(src)
    if sync == "top":
        # only the overlay's clusters went: the base's stayed below
        m = json.loads(img("map", "--output=json", dst))
        top = sum(e["length"] for e in m if e["data"] and e["depth"] == 0)
        assert top < 16 * MiB, m


@with_dir("stmig-")
def test_full_write_blocking(d):
    two_hosts_flow(d, "full", "write-blocking")


@with_dir("stmig-")
def test_top_shared_base(d):
    two_hosts_flow(d, "top", None)


@with_dir("stmig-")
def test_failure_path(d):
    """libvirt's failure path once the source waits at the switch:
    migrate_cancel, block-job-cancel force, blockdev-del of the NBD
    nodes; the destination exits (status 1) on its own.  The source
    runs on, its guest writing without an error, and its image is
    intact and holds what the guest last saw."""
    src, dst = nbd_half_images(d)
    with across_hosts(src, dst) as (h, S, D):
        sc, dc = S.clients[0], D.clients[0]
        nport, mport = free_port(), free_port()
        destination_prepare(dc, h.addr[1], nport, mport)
        workload(sc)
        source_mirror(sc, h.addr[1], nport, "full", "write-blocking")
        sc.cmd("migrate", uri="tcp:%s:%d" % (h.addr[1], mport))
        wait_until("pre-switchover",
                   lambda: status(sc) == "pre-switchover", DEADLINE)
        sc.cmd("migrate_cancel")
        wait_until("cancelled", lambda: status(sc) == "cancelled")
        # the destination's load fails and it exits, as QEMU's: its
        # export may go before the cancel reaches the mirror, which
        # then ends failed rather than cancelled
        r = sc.execute("block-job-cancel",
                       {"device": JOB, "force": True})
        wait_until("the mirror concluded", lambda: [
            j["status"] for j in sc.cmd("query-jobs")] == ["concluded"],
            DEADLINE)
        ends = [e["event"] for e in sc.events if e["event"] in (
            "BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED")]
        assert ends in (["BLOCK_JOB_CANCELLED"],
                        ["BLOCK_JOB_COMPLETED"]), (r, ends)
        sc.cmd("job-dismiss", id=JOB)
        sc.cmd("blockdev-del", **{"node-name": "migration-vda-format"})
        sc.cmd("blockdev-del", **{"node-name": "migration-vda-storage"})
        assert D.wait(DEADLINE) == 1
        D.status = 1
        assert sc.cmd("query-status")["status"] == "running"
        n = sc.cmd("__com.qmpd_query-guest-workload")["disk-written"]
        wait_until("the guest writes on", lambda: sc.cmd(
            "__com.qmpd_query-guest-workload")["disk-written"] > n)
        w = sc.cmd("__com.qmpd_query-guest-workload")
        assert w["disk-errors"] == 0, (w, sc.events, S.stderr_text())
        # stopped, the guest submits no more writes; those in flight
        # land within a digest or two, which then agree
        sc.cmd("stop")
        last = [None]

        def settled():
            n = sc.cmd("__com.qmpd_query-guest-workload")["disk-written"]
            disk = sc.cmd("__com.qmpd_guest-digest")["disks"][0]
            same = disk == last[0] and n == sc.cmd(
                "__com.qmpd_query-guest-workload")["disk-written"]
            last[0] = disk
            return same
        wait_until("the guest's writes landed", settled, DEADLINE)
        last = last[0]
    check_clean(src)
    # the image holds what the guest last saw
    raw = os.path.join(d, "src.raw")
    img("convert", "-O", "raw", src, raw)
    p = subprocess.run(["sha256sum", raw], capture_output=True, text=True)
    assert p.stdout.split()[0] == last["digest"], (p.stdout, last)


def hmp(c, line):
    return c.cmd("human-monitor-command", **{"command-line": line})


def inactive_destination(d, binary=None):
    """What an incoming destination (@binary: QEMU, or qmpd) does with
    an image its source (the same program) holds, and with one of its
    own; a list of observations."""
    seen = []
    shared = os.path.join(d, "shared.qcow2")
    own = os.path.join(d, "own.qcow2")
    for p in (shared, own):
        img("create", "-q", "-f", "qcow2", p, "64M")
    img("bitmap", "--add", own, "b0")
    with Qmpd(BASE + disk(shared), binary_path=binary) as S:
        S.connect()
        seen.append(("source locks", locked(shared)))
        # the source holds the image: the destination opens it all the same
        with Qmpd(BASE + ["-incoming", "defer"] + disk(shared),
                  binary_path=binary) as D:
            dc = D.connect()
            seen.append(dc.cmd("query-status")["status"])
            seen.append(hmp(dc, 'qemu-io libvirt-1-format "write 0 4k"'))
            seen.append(hmp(dc, 'qemu-io libvirt-1-format "read 0 4k"'))
            # an export cannot take it for writing, nor can cont
            dc.cmd("nbd-server-start", addr={"type": "unix", "data": {
                "path": os.path.join(d, "n0.sock")}})
            seen.append(export_add(dc, "libvirt-1-format", "w", id="w",
                                   writable=True, error=True))
            seen.append(export_add(dc, "libvirt-1-format", "r", id="r"))
            seen.append(dc.error("cont"))
    with Qmpd(BASE + ["-incoming", "defer"] + disk(own),
              binary_path=binary) as D:
        dc = D.connect()
        seen.append(("unlocked while incoming", locked(own)))
        # nor is its bitmap marked in use: the image is not written
        info = json.loads(img("info", "-U", "--output=json", own))
        seen.append(info["format-specific"]["data"]["bitmaps"])
        sock = os.path.join(d, "n1.sock")
        dc.cmd("nbd-server-start", addr={"type": "unix",
                                         "data": {"path": sock}})
        export_add(dc, "libvirt-1-format", "x", id="e", writable=True)
        seen.append(("locked once exported", locked(own)))
        p = subprocess.run(["qemu-io", "-f", "raw", "-c",
                            "write -P 0x33 0 64k",
                            "nbd+unix:///x?socket=" + sock],
                           capture_output=True, text=True)
        seen.append(p.returncode)
        seen.append(hmp(dc, 'qemu-io libvirt-1-format "write 64k 4k"'))
    qemu_io(own, "read -P 0x33 0 64k")
    with Qmpd(BASE + ["-incoming", "defer"] + disk(own),
              binary_path=binary) as D:
        dc = D.connect()
        dc.cmd("cont")
        seen.append(dc.cmd("query-status")["status"])
        seen.append(("locked after cont", locked(own)))
    return seen


@with_dir("stmig-")
def test_inactive_destination(d):
    """An incoming destination's images, as QEMU 7.2's: opened inactive
    (unlocked, so its source may still hold them, and not written, not
    even to mark a bitmap in use; HMP qemu-io cannot write them); a
    writable export activates its node at once (and
    cannot where another process holds it); cont while inmigrate
    activates them all."""
    assert inactive_destination(d) == [
        ("source locks", True), "inmigrate", "Block node is read-only\r\n",
        "", ("GenericError", "Block node is read-only"), None,
        ("GenericError", 'Failed to get "write" lock'),
        ("unlocked while incoming", False),
        [{"flags": ["auto"], "name": "b0", "granularity": 65536}],
        ("locked once exported", True),
        0, "", "inmigrate", ("locked after cont", True)]


def late_activation(d, late, autostart, binary=None):
    """(status and whether the disk is locked at the end of the
    migration, HMP qemu-io's write then if it is not, locked after
    cont) for a destination disk no export activated; the source and
    the destination are both @binary (QEMU, or qmpd)."""
    src = os.path.join(d, "a.qcow2")
    dst = os.path.join(d, "b.qcow2")
    for p in (src, dst):
        img("create", "-q", "-f", "qcow2", p, "64M")
    port = free_port()
    with Qmpd(BASE + disk(src), binary_path=binary) as S, \
            Qmpd(BASE + ["-incoming", "defer"] + disk(dst)
                 + ([] if autostart else ["-S"]), binary_path=binary) as D:
        sc = S.connect()
        dc = D.connect()
        caps(dc, late_block_activate=late)
        assert {"capability": "late-block-activate", "state": late} in \
            dc.cmd("query-migrate-capabilities")
        dc.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        wait_until("completed", lambda: status(dc) == "completed")
        at_end = (dc.cmd("query-status")["status"], locked(dst))
        write = None if at_end[1] else \
            hmp(dc, 'qemu-io libvirt-1-format "write 0 4k"')
        dc.cmd("cont")
        return at_end, write, locked(dst)


LATE_CASES = [(True, False), (True, True), (False, False)]


@with_dir("stmig-")
def test_late_block_activate(d):
    """QEMU 7.2's late-block-activate: a destination that stays paused
    (-S) leaves its images inactive (unlocked) at the end of the
    migration and takes them on cont; one that runs, or without the
    capability, takes them at the end."""
    assert [late_activation(d, *c) for c in LATE_CASES] == [
        (("paused", False), "Block node is read-only\r\n", True),
        (("running", True), None, True),
        (("paused", True), None, True)]


def export_permissions(d, binary=None):
    """The replies to exports around a copy-before-write filter, in
    either order (auto node names made comparable)."""
    for n in ("s", "t"):
        img("create", "-q", "-f", "raw", os.path.join(d, n + ".img"), "8M")
    seen = []
    with Qmpd(["-M", "none"], binary_path=binary) as q:
        c = q.connect()
        c.cmd("nbd-server-start", addr={"type": "unix", "data": {
            "path": os.path.join(d, "n.sock")}})
        for n, node in (("s", "src"), ("t", "tgt")):
            c.cmd("blockdev-add", driver="file", **{"node-name": node},
                  filename=os.path.join(d, n + ".img"))
        c.cmd("blockdev-add", driver="copy-before-write", file="src",
              target="tgt", **{"node-name": "cbw"})
        # no parent on the filter yet: it shares write
        seen.append(export_add(c, "src", "w0", id="w0", writable=True))
        c.cmd("block-export-del", id="w0")
        c.event("BLOCK_EXPORT_DELETED")
        seen.append(export_add(c, "cbw", "fleece", id="f"))
        seen.append(export_add(c, "src", "w1", id="w1", writable=True,
                               error=True))
        seen.append(export_add(c, "src", "r", id="r"))
        c.cmd("block-export-del", id="f")
        c.event("BLOCK_EXPORT_DELETED")
        seen.append(export_add(c, "src", "w1", id="w1", writable=True))
        seen.append(export_add(c, "cbw", "fleece2", id="f2", error=True))
        c.cmd("blockdev-add", driver="raw", file="tgt",
              **{"node-name": "rt"})
        c.cmd("block-export-del", id="w1")
        c.event("BLOCK_EXPORT_DELETED")
        # a backup's filter goes above the exported node, and the export
        # with it; a writable export then conflicts with that filter
        c.cmd("blockdev-backup", device="src", target="rt", sync="none",
              **{"job-id": "b"})
        seen.append(export_add(c, "src", "w2", id="w2", writable=True,
                               error=True))
        seen.append(sorted((e["id"], e["node-name"] == "src")
                           for e in c.cmd("query-block-exports")))
        c.cmd("block-job-cancel", device="b", force=True)
        c.event("BLOCK_JOB_CANCELLED")
    return [re.sub(r"#block\d+", "#block", json.dumps(x)) for x in seen]


@with_dir("stmig-")
def test_export_permissions(d):
    """A writable export takes "write" on its node, with QEMU 7.2's
    conflicts (a copy-before-write filter that has a parent shares no
    write on its child), in either order; a read-only one does not."""
    conflict = ("Permission conflict on node 'src': permissions 'write' "
                "are both required by an unnamed block device (uses node "
                "'src' as 'root' child) and unshared by node '%s' (uses "
                "node 'src' as 'file' child).")
    seen = export_permissions(d)
    assert seen == [json.dumps(x) for x in [
        None, None, ["GenericError", conflict % "cbw"], None, None,
        ["GenericError", conflict % "cbw"],
        ["GenericError", conflict % "#block"], [["r", False]]]], seen


def nbd_half_images(d):
    """A qcow2 source with data and an empty qcow2 destination."""
    src = os.path.join(d, "src.qcow2")
    dst = os.path.join(d, "dst.qcow2")
    for p in (src, dst):
        img("create", "-q", "-f", "qcow2", p, "64M")
    qemu_io(src, "write -P 0x61 0 3M", "write -P 0x62 30M 1M")
    return src, dst


def nbd_half(d, dst_binary, src_binary, guest_writes):
    """The NBD half of the flow between a destination and a source run
    by the binaries given (None: qmpd), on 127.0.0.1: the destination
    exports, the source mirrors into it and ends the mirror at the
    switch, the destination stops its server; @guest_writes(sc, before)
    writes the source's disk before and after READY.  The images are
    compared."""
    src, dst = nbd_half_images(d)
    nport = free_port()
    with Qmpd(BASE + ["-incoming", "defer", "-S"] + disk(dst),
              binary_path=dst_binary) as D, \
            Qmpd(BASE + ["-S"] * bool(src_binary) + disk(src),
                 binary_path=src_binary) as S:
        dc = D.connect()
        sc = S.connect()
        destination_export(dc, "127.0.0.1", nport)
        guest_writes(sc, True)
        source_mirror(sc, "127.0.0.1", nport, "full", "write-blocking")
        guest_writes(sc, False)
        sc.cmd("stop")
        end_mirror(sc)
        dc.cmd("nbd-server-stop")
        assert dc.event("BLOCK_EXPORT_DELETED")["data"] == {"id": EXPORT_ID}
    img("compare", src, dst)
    check_clean(dst)


@with_dir("stmig-")
def test_qemu_destination_exports(d):
    """The NBD half with QEMU 7.2 as the destination (-incoming defer,
    -S, its disk exported writable), qmpd's source mirroring into it
    with libvirt's commands while its guest writes.  The RAM migration
    cannot cross: QEMU's stream is not qmpd's."""
    nbd_half(d, need_qemu(), None,
             lambda sc, before: before and workload(sc))


@with_dir("stmig-")
def test_qemu_source_mirrors(d):
    """The NBD half with QEMU 7.2 as the source: qemu-system-x86_64
    mirrors its disk into a qmpd destination's export with libvirt's
    commands (its guest does not run, -S: writes go in through HMP
    qemu-io before and after READY)."""
    def writes(sc, before):
        hmp(sc, 'qemu-io libvirt-1-format "write -P %s 64k"'
            % ("0x71 5M" if before else "0x72 6M"))

    nbd_half(d, None, need_qemu(), writes)


if __name__ == "__main__":
    run([test_full_write_blocking, test_top_shared_base, test_failure_path,
         test_inactive_destination, test_late_block_activate,
         test_export_permissions, test_qemu_destination_exports,
         test_qemu_source_mirrors])
