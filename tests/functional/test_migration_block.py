#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Block migration between two qmpd (migrate -b / -i, the block
capability, zero-blocks): a guest with a disk attached to a device and
the workload writing to it moves over; the destination's image passes
qemu-img check and compares equal with the source's, and the digests
of RAM and disk are equal at the switch-over; query-migrate's disk{}
during the migration and its absence after (as QEMU 7.2); zero clusters
cost no bytes with zero-blocks; -i sends only what lies above the base
both hosts share; a guest write to a cluster not yet allocated, held
by blkdebug while the pass reaches it, still arrives (-i and
zero-blocks); a missing or smaller disk on the destination fails
the load; cancel and a killed destination leave the source running with
no dirty bitmap left behind; jobs, resizes and snapshots on a disk that
migrates are refused with QEMU 7.2's migration blocker until the
migration ends."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (Qmpd, free_port, need_qemu_utils, run,  # noqa: E402
                  wait_until)
from test_migration_ram import (check_events, events_on, hmp,  # noqa: E402
                                names, status)

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), check=True,
                          capture_output=True, text=True).stdout


def qemu_io(path, *cmds):
    args = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        args += ["-c", c]
    subprocess.run(args + [path], check=True, capture_output=True)


def disk_args(path):
    return ["-drive", "file=%s,if=none,id=drive0,format=qcow2" % path,
            "-device", "virtio-blk-pci,drive=drive0,id=vd0"]


def anon_bitmaps(c):
    return [b for d in c.cmd("query-block")
            for b in d.get("inserted", {}).get("dirty-bitmaps", [])]


class Images:
    def __init__(self, size=64 * MiB):
        self.dir = tempfile.mkdtemp(prefix="qmpd-migblk-")
        self.src = os.path.join(self.dir, "src.qcow2")
        self.dst = os.path.join(self.dir, "dst.qcow2")
        self.size = size

    def fresh(self, data=True):
        qemu_img("create", "-f", "qcow2", self.src, str(self.size))
        qemu_img("create", "-f", "qcow2", self.dst, str(self.size))
        if data:
            qemu_io(self.src, "write -P 0xab 0 8M", "write -P 0xcd 20M 3M",
                    "write -z 30M 2M")
        return self

    def __enter__(self):
        return self

    def __exit__(self, *a):
        shutil.rmtree(self.dir)


def migrate(src_args, dst_args, how, setup=None, workload=True,
            dst_status=0):
    """Migrate with @how ({"blk": True}...); returns (source's final
    query-migrate, digests at the switch-over, source's events, an
    active query-migrate seen on the way, destination's events)."""
    port = free_port()
    uri = "tcp:127.0.0.1:%d" % port
    with Qmpd(BASE + dst_args + ["-incoming", uri],
              status=dst_status) as dst, Qmpd(BASE + src_args) as src:
        dc = dst.connect()
        sc = src.connect()
        events_on(sc)
        events_on(dc)
        if setup:
            setup(sc)
        if workload:
            sc.cmd("__com.qmpd_guest-workload", **{
                "ram-rate": 2 * MiB, "disk-rate": 2 * MiB, "device": "vd0",
                "seed": 7})
            wait_until("the guest wrote its disk", lambda: sc.cmd(
                "__com.qmpd_query-guest-workload")["disk-written"] >= MiB)
        sc.cmd("migrate", uri=uri, **how)
        seen = {}

        def done():
            r = sc.cmd("query-migrate")
            if r.get("status") == "active" and "disk" in r:
                seen.setdefault("active", r)
            return r.get("status") in ("completed", "failed") and r
        try:
            r = wait_until("migration ended", done)
        except AssertionError:
            print(sc.cmd("query-migrate"), dc.cmd("query-migrate"))
            raise
        assert r["status"] == "completed", r
        wait_until("destination completed",
                   lambda: status(dc) == "completed")
        a = sc.cmd("__com.qmpd_guest-digest")
        b = dc.cmd("__com.qmpd_guest-digest")
        assert sc.cmd("query-status")["status"] == "postmigrate"
        assert dc.cmd("query-status")["status"] == "running"
        assert anon_bitmaps(sc) == []
        ev, dev = names(sc), names(dc)
        dc.cmd("quit")
        sc.cmd("quit")
    return r, (a, b), ev, seen.get("active"), dev


@contextlib.contextmanager
def pair(im):
    """A destination on im.dst listening, a source on im.src: (the URI,
    their clients)."""
    uri = "tcp:127.0.0.1:%d" % free_port()
    with Qmpd(BASE + disk_args(im.dst) + ["-incoming", uri]) as dst, \
            Qmpd(BASE + disk_args(im.src)) as src:
        yield uri, dst.connect(), src.connect()


def check_images(im):
    out = qemu_img("check", im.dst)
    assert "No errors were found" in out, out
    qemu_img("compare", "-f", "qcow2", "-F", "qcow2", im.src, im.dst)


def test_full_under_writes():
    need_qemu_utils()
    with Images() as im:
        im.fresh()

        def slow(c):
            # the bulk pass lasts: disk{} can be seen while active
            c.cmd("migrate-set-parameters", **{"max-bandwidth": 32 * MiB})
        r, (a, b), ev, active, dev = migrate(
            disk_args(im.src), disk_args(im.dst), {"blk": True}, slow)
        assert a == b, (a, b)
        assert len(a["disks"]) == 1
        check_images(im)
        # 7.2: disk{} only while active, the bulk pass's progress
        assert active, "no active query-migrate with disk{}"
        disk = active["disk"]
        assert disk["total"] == im.size
        assert disk["transferred"] + disk["remaining"] == im.size
        assert "disk" not in r
        # QEMU's event order on both sides
        check_events(ev, dev, r)


def test_hmp_migrate_b_and_info():
    need_qemu_utils()
    with Images() as im:
        im.fresh()
        with pair(im) as (uri, dc, sc):
            sc.cmd("migrate-set-parameters", **{"max-bandwidth": 8 * MiB})
            assert hmp(sc, "migrate -d -b " + uri) == ""
            # blk switches the capability on for this migration only
            caps = {c["capability"]: c["state"]
                    for c in sc.cmd("query-migrate-capabilities")}
            assert caps["block"] is True
            text = wait_until("info migrate shows the disk", lambda: (
                lambda t: "transferred disk" in t and t)(
                    hmp(sc, "info migrate")))
            lines = text.split("\r\n")
            # after RAM's lines, as QEMU 7.2 prints them
            i = [k for k, x in enumerate(lines)
                 if x.startswith("transferred disk: ")][0] - 1
            assert lines[i].startswith(("pages-per-second: ",
                                        "precopy ram: ",
                                        "dirty pages rate: ")), text
            assert lines[i + 1].startswith("transferred disk: ")
            assert lines[i + 2].startswith("remaining disk: ")
            assert lines[i + 3] == "total disk: %d kbytes" % (im.size >> 10)
            sc.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
            wait_until("completed", lambda: status(sc) == "completed")
            wait_until("destination", lambda: status(dc) == "completed")
            caps = {c["capability"]: c["state"]
                    for c in sc.cmd("query-migrate-capabilities")}
            assert caps["block"] is False
            text = hmp(sc, "info migrate")
            assert "disk" not in text
            dc.cmd("quit")
            sc.cmd("quit")
        check_images(im)


def test_capability_and_errors():
    with Qmpd(BASE) as src:
        sc = src.connect()
        sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "block", "state": True}])
        r = sc.execute("migrate", {"uri": "tcp:127.0.0.1:1", "blk": True})
        assert r["error"]["desc"] == ("Command options are incompatible "
                                      "with current migration capabilities")
        sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "block", "state": False}])
        sc.cmd("migrate-set-parameters", **{"block-incremental": True})
        r = sc.execute("migrate", {"uri": "tcp:127.0.0.1:1", "inc": True})
        assert r["error"]["desc"] == ("Command options are incompatible "
                                      "with current migration capabilities")


def stream_size(im, zero_blocks):
    """Migrate into a file with the block capability; load it into a
    destination and compare; the stream's size."""
    im.fresh()
    # allocated clusters that hold zeroes: zero-blocks sees them too
    qemu_io(im.src, "write -P 0 40M 1M")
    f = os.path.join(im.dir, "stream")
    with Qmpd(BASE + disk_args(im.src)) as src:
        sc = src.connect()
        sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "block", "state": True},
            {"capability": "zero-blocks", "state": zero_blocks}])
        sc.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
        # HMP migrate without -d returns once the migration ended
        assert hmp(sc, "migrate \"exec:cat > %s\"" % f) == ""
        assert status(sc) == "completed"
        digest = sc.cmd("__com.qmpd_guest-digest")
        sc.cmd("quit")
    with Qmpd(BASE + disk_args(im.dst) + ["-incoming",
                                           "exec:cat %s" % f]) as dst:
        dc = dst.connect()
        wait_until("loaded", lambda: status(dc) == "completed")
        assert dc.cmd("__com.qmpd_guest-digest") == digest
        dc.cmd("quit")
    check_images(im)
    return os.path.getsize(f)


def test_zero_blocks_cost_nothing():
    need_qemu_utils()
    with Images() as im:
        without = stream_size(im, False)
        with_ = stream_size(im, True)
    # 11 MiB of data in a 64 MiB disk: without zero-blocks every byte
    # of the disk goes, as QEMU's; with it only the data (and RAM's few
    # KiB of zero runs)
    print("stream bytes: without zero-blocks %d, with %d" % (without, with_))
    assert without >= 64 * MiB, without
    assert 11 * MiB <= with_ < 11 * MiB + 256 * 1024, with_


def top_bytes(path):
    m = json.loads(qemu_img("map", "--output=json", path))
    return sum(e["length"] for e in m if e["depth"] == 0 and e["data"])


def test_incremental_shared_base():
    need_qemu_utils()
    with Images() as im:
        base = os.path.join(im.dir, "base.qcow2")
        qemu_img("create", "-f", "qcow2", base, str(im.size))
        qemu_io(base, "write -P 0x11 0 32M")
        qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", im.src)
        qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", im.dst)
        qemu_io(im.src, "write -P 0x22 4M 2M")
        r, (a, b), _, active, _ = migrate(
            disk_args(im.src), disk_args(im.dst), {"inc": True})
        assert a == b
        check_images(im)
        # only the top image's clusters travelled: the destination's top
        # holds what the source's does, not the base's 32 MiB
        src_top, dst_top = top_bytes(im.src), top_bytes(im.dst)
        assert 2 * MiB <= dst_top <= src_top < 32 * MiB, (src_top, dst_top)


def held_write_arrives(how, caps):
    """A guest write to a cluster the source's top image does not hold
    yet, held by a blkdebug breakpoint before its data (and so its L2
    entry) lands, while the migration's pass reaches that cluster: the
    pass waits for it, and the destination gets the data, not the base's
    (-i) or a zero run (zero-blocks) that its status said until then."""
    with Images() as im:
        base = os.path.join(im.dir, "base.qcow2")
        qemu_img("create", "-f", "qcow2", base, str(im.size))
        qemu_io(base, "write -P 0x11 0 32M")
        for path in (im.src, im.dst):
            qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2",
                     path)
        qemu_io(im.src, "write -P 0x22 4M 2M")
        src_node = json.dumps({
            "driver": "qcow2", "node-name": "drive0",
            "file": {"driver": "blkdebug", "image": {
                "driver": "file", "filename": im.src}}})
        dev = ["-device", "virtio-blk-pci,drive=drive0,id=vd0"]
        uri = "tcp:127.0.0.1:%d" % free_port()
        with Qmpd(BASE + ["-blockdev", "driver=qcow2,node-name=drive0,"
                          "file.driver=file,file.filename=" + im.dst]
                  + dev + ["-incoming", uri]) as dst, \
                Qmpd(BASE + ["-blockdev", src_node] + dev) as src:
            dc, sc = dst.connect(), src.connect()
            assert hmp(sc, 'qemu-io drive0 "break write_aio A"') == ""
            assert hmp(sc, 'qemu-io drive0 "aio_write -q -P 0x33 40M 64k"') \
                == ""
            assert hmp(sc, 'qemu-io drive0 "wait_break A"') == ""
            sc.cmd("migrate-set-capabilities", capabilities=[
                {"capability": c, "state": True} for c in caps])
            sc.cmd("migrate", uri=uri, **how)

            def past_40m():
                # every 1 MiB chunk of the pass but [40M, 41M) is done,
                # or (the chunk not waiting for the write) all of them
                r = sc.cmd("query-migrate")
                return (r["status"] in ("completed", "failed")
                        or r.get("disk", {}).get("remaining", 2 * MiB)
                        <= MiB)
            wait_until("the pass went past 40M", past_40m)
            assert hmp(sc, 'qemu-io drive0 "resume A"') == ""
            wait_until("completed", lambda: status(sc) == "completed")
            wait_until("destination", lambda: status(dc) == "completed")
            a = sc.cmd("__com.qmpd_guest-digest")
            b = dc.cmd("__com.qmpd_guest-digest")
            dc.cmd("quit")
            sc.cmd("quit")
        assert a == b, (a, b)
        qemu_io(im.dst, "read -P 0x33 40M 64k")
        check_images(im)


def test_held_write_incremental():
    need_qemu_utils()
    held_write_arrives({"inc": True}, [])


def test_held_write_zero_blocks():
    need_qemu_utils()
    held_write_arrives({"blk": True}, ["zero-blocks"])


def test_destination_disk_missing_or_smaller():
    need_qemu_utils()
    with Images() as im:
        im.fresh()
        small = os.path.join(im.dir, "small.qcow2")
        qemu_img("create", "-f", "qcow2", small, str(im.size // 2))
        for dst_args, msg in (
                ([], "Error unknown block device drive0"),
                (disk_args(small), "Block device drive0 has size %d, the "
                 "source's has %d" % (im.size // 2, im.size))):
            port = free_port()
            uri = "tcp:127.0.0.1:%d" % port
            with Qmpd(BASE + dst_args + ["-incoming", uri],
                      status=1) as dst, \
                    Qmpd(BASE + disk_args(im.src)) as src:
                sc = src.connect()
                sc.cmd("migrate", uri=uri, blk=True)
                dst.wait(timeout=60)
                assert msg in dst.stderr_text(), dst.stderr_text()
                assert "load of migration failed: Invalid argument" in \
                    dst.stderr_text()
                wait_until("source failed",
                           lambda: status(sc) in ("failed", "completed"))
                assert sc.cmd("query-status")["status"] == "running"
                assert anon_bitmaps(sc) == []
        out = qemu_img("check", im.src)
        assert "No errors were found" in out


def start_under_writes(sc, uri, rate, seed):
    """migrate -b to @uri at 2 MiB/s with the guest writing @rate bytes
    a second, once its bulk pass is under way."""
    sc.cmd("__com.qmpd_guest-workload", **{
        "disk-rate": rate, "device": "vd0", "seed": seed})
    sc.cmd("migrate-set-parameters", **{"max-bandwidth": 2 * MiB})
    sc.cmd("migrate", uri=uri, blk=True)
    wait_until("bulk under way", lambda: sc.cmd(
        "query-migrate").get("disk", {}).get("transferred", 0) > 0)


def test_cancel_and_killed_destination():
    need_qemu_utils()
    with Images() as im:
        im.fresh()
        for how in ("cancel", "kill"):
            port = free_port()
            uri = "tcp:127.0.0.1:%d" % port
            with Qmpd(BASE + disk_args(im.dst) + ["-incoming", uri],
                      status=1) as dst, \
                    Qmpd(BASE + disk_args(im.src)) as src:
                sc = src.connect()
                start_under_writes(sc, uri, 4 * MiB, 3)
                assert len(anon_bitmaps(sc)) == 1
                if how == "cancel":
                    sc.cmd("migrate_cancel")
                    assert status(sc) == "cancelled"
                else:
                    dst.kill9()
                    wait_until("source failed",
                               lambda: status(sc) == "failed")
                assert sc.cmd("query-status")["status"] == "running"
                assert anon_bitmaps(sc) == []
                sc.cmd("__com.qmpd_guest-workload", running=False)
                sc.cmd("quit")
            out = qemu_img("check", im.src)
            assert "No errors were found" in out, out


def test_cancel_and_drop_while_iterating():
    """Past the bulk pass, in passes over what a guest writing faster
    than max-bandwidth dirties (it never converges): migrate_cancel, then
    a dropped connection (the destination killed), leave the source
    running, its bitmap gone, its image clean; the destination never
    ran."""
    need_qemu_utils()
    with Images(size=8 * MiB) as im:
        for how in ("cancel", "drop"):
            im.fresh(data=False)
            uri = "tcp:127.0.0.1:%d" % free_port()
            with Qmpd(BASE + disk_args(im.dst) + ["-incoming", uri],
                      status=1) as dst, \
                    Qmpd(BASE + disk_args(im.src)) as src:
                dc = dst.connect()
                sc = src.connect()
                events_on(sc)
                sc.cmd("__com.qmpd_guest-workload", **{
                    "disk-rate": 8 * MiB, "device": "vd0", "seed": 9})
                sc.cmd("migrate-set-parameters",
                       **{"max-bandwidth": 2 * MiB})
                sc.cmd("migrate", uri=uri, blk=True)
                r = wait_until("the third pass", lambda: (
                    lambda q: q.get("ram", {}).get(
                        "dirty-sync-count", 0) >= 3 and q)(
                        sc.cmd("query-migrate")))
                assert r["status"] == "active", r
                assert r["disk"]["remaining"] == 0, r
                assert dc.cmd("query-status")["status"] == "inmigrate"
                if how == "cancel":
                    sc.cmd("migrate_cancel")
                    assert status(sc) == "cancelled"
                    dst.wait(60)
                else:
                    dst.kill9()
                    wait_until("failed", lambda: status(sc) == "failed")
                assert sc.cmd("query-status")["status"] == "running"
                assert anon_bitmaps(sc) == []
                assert ("STOP", None) not in names(sc)
                sc.cmd("quit")
            assert "No errors were found" in qemu_img("check", im.src)


BUSY = "Node 'drive0' is busy: block device is in use by migration"


def refused_while_migrating(sc, im):
    """What QEMU 7.2 refuses on a disk that block migration moves, with
    its messages; drive-mirror creates no target file first."""
    tgt = os.path.join(im.dir, "tgt.qcow2")
    node = [n["node-name"] for n in sc.cmd("query-named-block-nodes")
            if n["drv"] == "qcow2"][0]
    if not any(n["node-name"] == "mt" for n in
               sc.cmd("query-named-block-nodes")):
        sc.cmd("blockdev-add", driver="null-co", **{
            "node-name": "mt", "size": 8 * MiB})
    for cmd, args, desc in (
            ("drive-mirror", {"device": "drive0", "target": tgt,
                              "sync": "full", "format": "qcow2"}, BUSY),
            ("blockdev-mirror", {"device": "drive0", "target": "mt",
                                 "sync": "full"}, BUSY),
            ("block-stream", {"device": "drive0"}, BUSY),
            ("drive-backup", {"device": "drive0", "target": tgt,
                              "sync": "full", "format": "qcow2"}, BUSY),
            ("block-commit", {"device": "drive0"}, BUSY),
            ("block_resize", {"device": "drive0", "size": 16 * MiB},
             "Device 'drive0' is in use"),
            ("block_resize", {"node-name": node, "size": 16 * MiB},
             "Device '(null)' is in use"),
            ("blockdev-snapshot-sync",
             {"device": "drive0", "format": "qcow2",
              "snapshot-file": os.path.join(im.dir, "snap.qcow2")}, BUSY)):
        r = sc.execute(cmd, args)
        assert r.get("error", {}).get("desc") == desc, (cmd, r)
    assert sc.cmd("query-block-jobs") == []
    assert not os.path.exists(tgt)


def test_op_blocker():
    """While block migration moves a disk, jobs, resizes and snapshots on
    it are refused as QEMU 7.2 refuses them (its migration blocker), and
    they are allowed again once the migration completed, failed or was
    cancelled."""
    need_qemu_utils()
    with Images(size=8 * MiB) as im:
        im.fresh(data=False)
        for how in ("cancel", "fail", "complete"):
            uri = "tcp:127.0.0.1:%d" % free_port()
            # the destination of a cancelled migration fails its load
            with Qmpd(BASE + disk_args(im.dst) + ["-incoming", uri],
                      status=int(how == "cancel")) as dst, \
                    Qmpd(BASE + disk_args(im.src)) as src:
                dst.connect()
                sc = src.connect()
                start_under_writes(sc, uri, 8 * MiB, 9)
                refused_while_migrating(sc, im)
                if how == "cancel":
                    sc.cmd("migrate_cancel")
                    assert status(sc) == "cancelled"
                elif how == "fail":
                    dst.kill9()
                    wait_until("source failed",
                               lambda: status(sc) == "failed")
                else:
                    sc.cmd("__com.qmpd_guest-workload", running=False)
                    sc.cmd("migrate-set-parameters",
                           **{"max-bandwidth": 1 << 30})
                    wait_until("completed",
                               lambda: status(sc) == "completed")
                size = {"cancel": 16, "fail": 24, "complete": 32}[how] * MiB
                sc.cmd("block_resize", device="drive0", size=size)
                assert [b["inserted"]["image"]["virtual-size"]
                        for b in sc.cmd("query-block")
                        if b["device"] == "drive0"] == [size]
                if how != "complete":
                    sc.cmd("__com.qmpd_guest-workload", running=False)
                sc.cmd("quit")
            assert "No errors were found" in qemu_img("check", im.src)
            qemu_img("create", "-f", "qcow2", im.dst, str(size))


def bitmaps(c):
    """query-block's named bitmaps of drive0, by name."""
    d = [x for x in c.cmd("query-block") if x["device"] == "drive0"][0]
    return {b["name"]: b for b in d["inserted"].get("dirty-bitmaps", [])
            if "name" in b}


def bitmap_cmd(c, command, **args):
    """A block-dirty-bitmap-* command on drive0 (its arguments include
    a bitmap's name, which cmd() takes for the command's)."""
    r = c.execute(command, dict(args, node="drive0"))
    assert "return" in r, r


def qemu_io_dev(c, line):
    c.cmd("__com.qmpd_qemu-io", device="drive0", command=line)


def bitmaps_setup(c):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "dirty-bitmaps", "state": True}])
    bitmap_cmd(c, "block-dirty-bitmap-add", name="b1", persistent=True)
    bitmap_cmd(c, "block-dirty-bitmap-add", name="b2",
               granularity=128 * 1024)
    qemu_io_dev(c, "write -P 1 0 64k")
    qemu_io_dev(c, "write -P 1 1M 4k")
    bitmap_cmd(c, "block-dirty-bitmap-disable", name="b2")
    qemu_io_dev(c, "write -P 1 8M 64k")


def test_dirty_bitmaps():
    """Both bitmaps arrive with name, granularity, recording and
    persistence, and b1 with what it recorded during the migration
    (the workload's writes): the same count as the source's after the
    switch-over; b2, disabled, with what it held."""
    need_qemu_utils()
    with Images() as im:
        im.fresh()
        with pair(im) as (uri, dc, sc):
            bitmaps_setup(sc)
            sc.cmd("__com.qmpd_guest-workload", **{
                "disk-rate": 2 * MiB, "device": "vd0", "seed": 5})
            sc.cmd("migrate-set-parameters", **{"max-bandwidth": 32 * MiB})
            sc.cmd("migrate", uri=uri, blk=True)
            wait_until("completed", lambda: status(sc) == "completed")
            wait_until("destination", lambda: status(dc) == "completed")
            a, b = bitmaps(sc), bitmaps(dc)
            assert sorted(b) == ["b1", "b2"], b
            for name in ("b1", "b2"):
                for k in ("granularity", "recording", "persistent", "count",
                          "busy"):
                    assert a[name][k] == b[name][k], (name, k, a, b)
            assert b["b1"]["recording"] and b["b1"]["persistent"]
            assert not b["b2"]["recording"] and not b["b2"]["persistent"]
            assert b["b2"]["count"] == 2 * 128 * 1024
            # the workload wrote during the migration: b1 recorded it
            assert b["b1"]["count"] > 3 * 64 * 1024
            assert sc.cmd("__com.qmpd_guest-digest") == \
                dc.cmd("__com.qmpd_guest-digest")
            # b1 records the destination guest's writes from now on
            qemu_io_dev(dc, "write -P 2 60M 64k")
            assert bitmaps(dc)["b1"]["count"] == b["b1"]["count"] + 65536
            dc.cmd("quit")
            sc.cmd("quit")
        # b1 is persistent: stored in the destination's image
        info = qemu_img("info", "--output=json", im.dst)
        assert '"name": "b1"' in info, info
        assert "No errors were found" in qemu_img("check", im.dst)


def test_dirty_bitmaps_mapping():
    """block-bitmap-mapping on both sides: node and bitmap aliases, a
    bitmap the source does not map stays, the destination's transform
    makes b1 non-persistent; an unknown alias is reported and skipped;
    a bitmap that exists on the destination fails the load."""
    need_qemu_utils()
    src_map = [{"node-name": "srcnode", "alias": "disk-a",
                "bitmaps": [{"name": "b1", "alias": "x1"}]}]
    dst_map = [{"node-name": "dstnode", "alias": "disk-a",
                "bitmaps": [{"name": "y1", "alias": "x1",
                             "transform": {"persistent": False}}]}]
    with Images() as im:
        for case in ("mapped", "unknown", "exists"):
            im.fresh()
            port = free_port()
            uri = "tcp:127.0.0.1:%d" % port
            sargs = ["-drive", "file=%s,if=none,id=drive0,format=qcow2,"
                     "node-name=srcnode" % im.src, "-device",
                     "virtio-blk-pci,drive=drive0,id=vd0"]
            dargs = ["-drive", "file=%s,if=none,id=drive0,format=qcow2,"
                     "node-name=dstnode" % im.dst, "-device",
                     "virtio-blk-pci,drive=drive0,id=vd0"]
            with Qmpd(BASE + dargs + ["-incoming", uri],
                      status=1 if case == "exists" else 0) as dst, \
                    Qmpd(BASE + sargs) as src:
                dc = dst.connect()
                sc = src.connect()
                bitmaps_setup(sc)
                sc.cmd("migrate-set-parameters",
                       **{"block-bitmap-mapping": src_map})
                dc.cmd("migrate-set-parameters", **{
                    "block-bitmap-mapping": dst_map if case != "unknown"
                    else [dict(dst_map[0], alias="disk-b")]})
                if case == "exists":
                    bitmap_cmd(dc, "block-dirty-bitmap-add", name="y1")
                sc.cmd("migrate", uri=uri, blk=True)
                if case == "exists":
                    dst.wait(60)
                    assert "qmpd: Bitmap with the same name ('y1') already " \
                        "exists on destination\n" in dst.stderr_text()
                    end = wait_until("source ended", lambda: status(sc) in (
                        "failed", "completed") and status(sc))
                    # without a return path the source may have written
                    # END before the load failed, as with QEMU
                    assert sc.cmd("query-status")["status"] == {
                        "failed": "running",
                        "completed": "postmigrate"}[end]
                    # b1 is no longer busy on the source
                    assert not bitmaps(sc)["b1"]["busy"]
                    continue
                wait_until("completed", lambda: status(sc) == "completed")
                wait_until("destination", lambda: status(dc) == "completed")
                b = bitmaps(dc)
                if case == "unknown":
                    assert b == {}, b
                    assert "qmpd: Error: Unknown node alias 'disk-a'\n" in \
                        dst.stderr_text()
                    continue
                assert sorted(b) == ["y1"], b
                a = bitmaps(sc)["b1"]
                assert b["y1"]["count"] == a["count"]
                assert b["y1"]["granularity"] == a["granularity"]
                assert b["y1"]["recording"] and not b["y1"]["persistent"]


def test_dirty_bitmaps_refused():
    """A bitmap on a node with an auto-generated name (the image's
    protocol node) cannot migrate: the migration fails with QEMU 7.2's
    error and the reason on stderr, the guest runs on, the bitmaps are
    not left busy."""
    with Images() as im:
        im.fresh()
        with Qmpd(BASE + disk_args(im.src)) as src:
            sc = src.connect()
            sc.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "dirty-bitmaps", "state": True}])
            bitmap_cmd(sc, "block-dirty-bitmap-add", name="b1")
            proto = [n["node-name"] for n in
                     sc.cmd("query-named-block-nodes") if n["drv"] == "file"]
            r = sc.execute("block-dirty-bitmap-add",
                           {"node": proto[0], "name": "p1"})
            assert "return" in r, r
            sc.cmd("migrate", uri="exec:cat > /dev/null")
            r = wait_until("failed", lambda: status(sc) == "failed"
                           and sc.cmd("query-migrate"))
            assert r["error-desc"] == \
                "Failed to initialize dirty tracking bitmap for blocks", r
            assert ("qmpd: Bitmap 'p1' in a node with auto-generated name "
                    "'%s' can't be migrated\n" % proto[0]) in \
                src.stderr_text()
            assert sc.cmd("query-status")["status"] == "running"
            assert not bitmaps(sc)["b1"]["busy"]


if __name__ == "__main__":
    tests = [test_full_under_writes, test_hmp_migrate_b_and_info,
             test_capability_and_errors, test_zero_blocks_cost_nothing,
             test_incremental_shared_base, test_held_write_incremental,
             test_held_write_zero_blocks,
             test_destination_disk_missing_or_smaller,
             test_cancel_and_killed_destination,
             test_cancel_and_drop_while_iterating,
             test_op_blocker, test_dirty_bitmaps,
             test_dirty_bitmaps_mapping, test_dirty_bitmaps_refused]
    run([t for t in tests if len(sys.argv) < 2
         or t.__name__ in sys.argv[1:]])
