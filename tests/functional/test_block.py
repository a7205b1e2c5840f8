#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The block layer through the monitor, checked with QEMU's own tools.

Images are made and inspected with qemu-img and qemu-io; qmpd opens
them from the command line (-drive, -blockdev, -device) or with
blockdev-add, writes through HMP qemu-io and the __com.qmpd_qemu-io
extension, and every image it leaves must pass qemu-img check.  Skips
(77) when qemu-img is not installed.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, run_qmpd  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
from images import qemu_io_rc as qemu_io  # noqa: E402
from hmplines import hmp  # noqa: E402

MiB = 1 << 20


def chain(d, names=("base", "sn1", "sn2"), size="64M"):
    """base <- sn1 <- sn2 with distinct data per layer."""
    prev = None
    for i, n in enumerate(names):
        p = os.path.join(d, n + ".qcow2")
        if prev:
            img("create", "-q", "-f", "qcow2", "-b", prev + ".qcow2",
                "-F", "qcow2", p)
        else:
            img("create", "-q", "-f", "qcow2", p, size)
        rc, out = qemu_io(p, "write -P 0x%x %dM 1M" % (0x11 * (i + 1), i))
        assert rc == 0, out
        prev = n
    return [os.path.join(d, n + ".qcow2") for n in names]


def io(c, device, cmd):
    return c.cmd("__com.qmpd_qemu-io", device=device, command=cmd)


def test_drive_device_line():
    """QEMU's example line starts qmpd; the guest disk is the -drive."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        paths = chain(d)
        with Qmpd(["-M", "pc", "-m", "64", "-drive",
                   "file=%s,if=none,id=drive0,format=qcow2" % paths[2],
                   "-device", "virtio-blk-pci,drive=drive0"]) as q:
            c = q.connect()
            blk = c.cmd("query-block")
            assert [b["device"] for b in blk] == ["drive0"], blk
            b = blk[0]
            assert b["qdev"] == \
                "/machine/peripheral-anon/device[0]/virtio-backend", b
            ins = b["inserted"]
            assert ins["file"] == paths[2] and ins["drv"] == "qcow2"
            assert ins["backing_file_depth"] == 2 and not ins["ro"]
            assert ins["image"]["backing-image"]["filename"] == paths[1]
            assert ins["image"]["backing-image"]["backing-image"][
                "filename"] == paths[0]
            # every layer is visible through the top
            for i in range(3):
                io(c, "drive0", "read -P 0x%x %dM 1M" % (0x11 * (i + 1), i))
            # HMP qemu-io prints on stdout; the HMP reply is empty
            assert hmp(c, 'qemu-io drive0 "write -P 0x77 4M 64k"') == ""
            assert hmp(c, 'qemu-io -d nosuch "read 0 1"') == \
                "Error: Device 'nosuch' not found\r\n"
            out = io(c, "drive0", "read -P 0x77 4M 64k")
            assert out.startswith("read 65536/65536 bytes at offset 4194304"
                                  "\n"), out
            cls, desc = c.error("__com.qmpd_qemu-io", device="drive0",
                                command="read -P 0x78 4M 64k")
            assert cls == "GenericError"
            assert "Pattern verification failed at offset 4194304, " \
                "65536 bytes" in desc, desc
            info = hmp(c, "info block")
            assert info.startswith("drive0 (%s): %s (qcow2)\r\n" % (
                ins["node-name"], paths[2])), info
            c.cmd("quit")
            q.wait()
            out = q.stdout_text()
            assert "wrote 65536/65536 bytes at offset 4194304" in out, out
        for p in paths:
            check_clean(p)
        rc, out = qemu_io(paths[2], "read -P 0x77 4M 64k")
        assert rc == 0 and "verification failed" not in out, out
        info = json.loads(img("info", "--output=json", "--backing-chain",
                              paths[2]))
        assert [i["filename"] for i in info] == paths[::-1], info
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_blockdev_add_del():
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        d = q.dir
        base, sn1, sn2 = chain(d)
        raw = os.path.join(d, "r.raw")
        img("create", "-q", "-f", "raw", raw, "1M")
        c.cmd("blockdev-add", driver="qcow2", **{"node-name": "top"},
              file={"driver": "file", "filename": sn2})
        names = [n["node-name"] for n in c.cmd("query-named-block-nodes")]
        assert "top" in names and len(names) == 6, names
        # errors leave the graph as it was
        errors = [
            (dict(driver="qcow2", file={"driver": "file",
                                        "filename": sn1}),
             "'node-name' must be specified for the root node"),
            (dict(driver="qcow2", **{"node-name": "x"},
                  file={"driver": "file", "filename": d + "/nosuch"}),
             "Could not open '%s/nosuch': No such file or directory" % d),
            (dict(driver="qcow2", **{"node-name": "x"},
                  file={"driver": "file", "filename": raw}),
             "Image is not in qcow2 format"),
            (dict(driver="qcow2", **{"node-name": "top"},
                  file={"driver": "file", "filename": base}),
             None),
        ]
        for args, msg in errors:
            r = c.execute("blockdev-add", args)
            assert "error" in r, (args, r)
            if msg:
                assert r["error"]["desc"] == msg, r
        assert [n["node-name"] for n in
                c.cmd("query-named-block-nodes")] == names
        r = c.execute("blockdev-add", {"driver": "nosuch", "node-name": "x"})
        assert r["error"]["class"] == "GenericError", r
        # by reference, with the chain cut by backing: null; a writable
        # file node locks nothing until a writer uses it (QEMU's
        # permissions), so it may sit on top's backing image
        c.cmd("blockdev-add", driver="file", filename=sn1,
              **{"node-name": "f1"})
        c.cmd("blockdev-add", driver="qcow2", file="f1", backing=None,
              **{"node-name": "n1", "read-only": True})
        n1 = [n for n in c.cmd("query-named-block-nodes", flat=True)
              if n["node-name"] == "n1"][0]
        assert n1["ro"] and n1["backing_file_depth"] == 0, n1
        assert c.error("blockdev-del", **{"node-name": "f1"}) == (
            "GenericError", "Block device f1 is in use")
        assert c.error("blockdev-del", **{"node-name": "nosuch"}) == (
            "GenericError", "Failed to find node with node-name='nosuch'")
        c.cmd("blockdev-del", **{"node-name": "n1"})
        c.cmd("blockdev-del", **{"node-name": "f1"})
        # reading through the by-reference-opened top
        io(c, "top", "read -P 0x33 2M 1M")
        io(c, "top", "write -P 0x44 8M 1M")
        c.cmd("blockdev-del", **{"node-name": "top"})
        assert c.cmd("query-named-block-nodes") == []
        for p in (base, sn1, sn2):
            check_clean(p)
        rc, out = qemu_io(sn2, "read -P 0x44 8M 1M")
        assert rc == 0 and "failed" not in out, out


def test_blockdev_cmdline():
    """-blockdev in keyval and JSON form, then a device on the node."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        base, sn1 = chain(d, ("base", "sn1"))
        with Qmpd(["-M", "pc", "-S",
                   "-blockdev", "driver=file,filename=%s,node-name=f0" % sn1,
                   "-blockdev", json.dumps({"driver": "qcow2",
                                            "node-name": "fmt0",
                                            "file": "f0"}),
                   "-device", "virtio-blk-pci,drive=fmt0,id=vd0"]) as q:
            c = q.connect()
            blk = c.cmd("query-block")
            assert blk[0]["device"] == "" and \
                blk[0]["qdev"] == "/machine/peripheral/vd0/virtio-backend"
            io(c, "fmt0", "read -P 0x22 1M 1M")
            # as qemu-io -d: the virtio proxy has no disk, its backend has
            assert c.error("__com.qmpd_qemu-io", device="vd0", qdev=True,
                           command="read 0 4k") == (
                "GenericError", "Device does not have a block device backend")
            assert "wrote" in c.cmd("__com.qmpd_qemu-io",
                                    device="vd0/virtio-backend", qdev=True,
                                    command="write 0 4k")
            # QOM paths, as QEMU resolves them
            assert "read" in c.cmd(
                "__com.qmpd_qemu-io", qdev=True, command="read 0 4k",
                device="/machine/peripheral/vd0/virtio-backend")
            assert c.error("__com.qmpd_qemu-io", qdev=True,
                           device="/machine/peripheral/vd0",
                           command="read 0 4k") == (
                "GenericError", "Device does not have a block device backend")
            assert c.error("__com.qmpd_qemu-io", qdev=True,
                           device="nope/virtio-backend",
                           command="read 0 4k") == (
                "DeviceNotFound", "Device 'nope/virtio-backend' not found")
            c.cmd("device_del", id="vd0")
            evs = [c.event("DEVICE_DELETED")["data"] for _ in range(2)]
            assert evs == [
                {"path": "/machine/peripheral/vd0/virtio-backend"},
                {"device": "vd0", "path": "/machine/peripheral/vd0"}], evs
            assert c.cmd("query-block") == []
            c.cmd("blockdev-del", **{"node-name": "fmt0"})
            c.cmd("quit")
            q.wait()
        check_clean(sn1)
        # bad -blockdev and -drive lines exit 1 with a one-line error
        for args, text in [
            (["-blockdev", "driver=qcow2,node-name=x,file.driver=file,"
              "file.filename=%s/nosuch" % d],
             "Could not open '%s/nosuch': No such file or directory" % d),
            (["-blockdev", "driver=nosuch,node-name=x"], None),
            (["-drive", "file=%s,if=none,id=d0,format=qcow2,cache=bogus"
              % sn1], "invalid cache option"),
        ]:
            p = run_qmpd(["-nodefaults"] + args, status=1, text=True)
            assert len(p.stderr.splitlines()) == 1, p.stderr
            if text:
                assert p.stderr.rstrip().endswith(text), p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_drive_without_file():
    """-drive with a protocol driver (driver=null-co,size=1G) or with the
    file given by file.* options, as QEMU takes them: a size with a
    suffix, aio for the file driver only; driver and format together
    are refused with QEMU's message."""
    with Qmpd(["-M", "none",
               "-drive", "if=none,id=n0,driver=null-co,size=1G",
               "-drive", "if=none,id=n1,format=raw,file.driver=null-co,"
               "file.size=64M,aio=native",
               "-drive", "if=none,id=n2,file.driver=null-co,"
               "file.size=2M"]) as q:
        c = q.connect()
        got = {b["device"]: (b["inserted"]["drv"],
                             b["inserted"]["image"]["virtual-size"])
               for b in c.cmd("query-block")}
        assert got == {"n0": ("null-co", 1 << 30), "n1": ("raw", 64 << 20),
                       "n2": ("raw", 2 << 20)}, got
        assert "read 512/512" in io(c, "n1", "read 0 512")
        c.cmd("quit")
        q.wait()
    p = run_qmpd(["-nodefaults", "-M", "none", "-drive",
                  "if=none,id=d0,driver=raw,format=raw,file=x"], status=1,
                 text=True)
    assert p.stderr.rstrip().endswith(
        "Cannot specify both 'driver' and 'format'"), p.stderr


def test_parallel_extending_writes():
    """Many allocating writes in flight at once on a new qcow2 with
    O_DIRECT and libaio: each grows the file (they queue one after the
    other in the file driver); every pattern reads back and the image is
    clean."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        p = os.path.join(d, "grow.qcow2")
        img("create", "-q", "-f", "qcow2", p, "256M")
        with Qmpd(["-M", "none", "-drive",
                   "file=%s,if=none,id=d0,format=qcow2,cache=none,"
                   "aio=native" % p]) as q:
            c = q.connect()
            for i in range(48):
                io(c, "d0", "aio_write -q -P %d %d 1M" % (i + 1, i * 5 * MiB))
            io(c, "d0", "aio_flush")
            for i in range(48):
                assert "read 1048576/1048576" in io(
                    c, "d0", "read -P %d %d 1M" % (i + 1, i * 5 * MiB))
            c.cmd("quit")
            q.wait()
        check_clean(p)
        for i in (0, 47):
            rc, out = qemu_io(p, "read -P %d %d 1M" % (i + 1, i * 5 * MiB))
            assert rc == 0 and "Pattern verification failed" not in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_drive_goes_with_device():
    """A -drive backend is deleted with its device, as in QEMU; a node
    the device used through an anonymous backend stays."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        base, sn1 = chain(d, ("base", "sn1"))
        with Qmpd(["-M", "pc", "-S",
                   "-drive", "file=%s,if=none,id=drive0,format=qcow2" % sn1,
                   "-device", "virtio-scsi-pci,id=s0",
                   "-device", "scsi-hd,drive=drive0,id=d0,bus=s0.0"]) as q:
            c = q.connect()
            assert [b["device"] for b in c.cmd("query-block")] == ["drive0"]
            c.cmd("device_del", id="d0")
            assert c.event("DEVICE_DELETED")["data"] == {
                "device": "d0", "path": "/machine/peripheral/d0"}
            assert c.cmd("query-block") == []
            assert c.cmd("query-named-block-nodes") == []
            c.cmd("quit")
            q.wait()
        check_clean(sn1)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_snapshot_resize_backing():
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        base, sn1 = chain(d, ("base", "sn1"))
        ov = os.path.join(d, "ov.qcow2")
        ov2 = os.path.join(d, "ov2.qcow2")
        with Qmpd(["-M", "none", "-drive",
                   "file=%s,if=none,id=drive0,format=qcow2,"
                   "node-name=n" % sn1]) as q:
            c = q.connect()
            c.cmd("blockdev-snapshot-sync", device="drive0", **{
                "snapshot-file": ov, "snapshot-node-name": "ov",
                "format": "qcow2"})
            ins = c.cmd("query-block")[0]["inserted"]
            assert ins["node-name"] == "ov" and \
                ins["backing_file_depth"] == 2, ins
            n = [x for x in c.cmd("query-named-block-nodes")
                 if x["node-name"] == "n"][0]
            assert n["ro"], n           # the old top is now a backing image
            io(c, "drive0", "write -P 0x99 0 64k")
            io(c, "drive0", "read -P 0x22 1M 1M")
            # node-based: an overlay opened without backing, then attached
            img("create", "-q", "-f", "qcow2", "-b", ov, "-F", "qcow2", ov2)
            c.cmd("blockdev-add", driver="qcow2", backing=None,
                  **{"node-name": "ov2"},
                  file={"driver": "file", "filename": ov2})
            c.cmd("blockdev-snapshot", node="ov", overlay="ov2")
            assert c.cmd("query-block")[0]["inserted"]["node-name"] == "ov2"
            io(c, "drive0", "read -P 0x99 0 64k")
            assert c.error("block_resize", device="drive0", size=1000) == (
                "GenericError", "The new size must be a multiple of 512")
            c.cmd("block_resize", device="drive0", size=128 * MiB)
            c.cmd("change-backing-file", device="drive0", **{
                "image-node-name": "ov2", "backing-file": "ov.qcow2"})
            c.cmd("quit")
            q.wait()
        for p in (base, sn1, ov, ov2):
            check_clean(p)
        info = json.loads(img("info", "--output=json", "--backing-chain",
                              ov2))
        assert [i["filename"] for i in info] == [ov2, ov, sn1, base], info
        assert info[0]["virtual-size"] == 128 * MiB
        assert info[0]["backing-filename"] == "ov.qcow2"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_reopen():
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        base, = chain(q.dir, ("base",))
        opts = {"driver": "qcow2", "node-name": "b", "read-only": True,
                "file": {"driver": "file", "filename": base,
                         "node-name": "bf"}}
        c.cmd("blockdev-add", **opts)
        cls, desc = c.error("__com.qmpd_qemu-io", device="b",
                            command="write 0 4k")
        assert desc == "Block node is read-only", desc
        opts["read-only"] = False
        opts["file"] = "bf"
        c.cmd("blockdev-reopen", options=[opts])
        io(c, "b", "write -P 0x5 0 4k")
        opts["read-only"] = True
        c.cmd("blockdev-reopen", options=[opts])
        n = [x for x in c.cmd("query-named-block-nodes")
             if x["node-name"] == "b"][0]
        assert n["ro"], n
        c.cmd("blockdev-del", **{"node-name": "b"})
        check_clean(base)
        rc, out = qemu_io(base, "read -P 0x5 0 4k")
        assert rc == 0 and "failed" not in out, out


def run_job(c, job_id, **options):
    c.cmd("blockdev-create", **{"job-id": job_id}, options=options)
    seen = []
    while not seen or seen[-1] != "concluded":
        e = c.event("JOB_STATUS_CHANGE")
        assert e["data"]["id"] == job_id
        seen.append(e["data"]["status"])
    jobs = c.cmd("query-jobs")
    c.cmd("job-dismiss", id=job_id)
    assert c.event("JOB_STATUS_CHANGE")["data"] == {"id": job_id,
                                                    "status": "null"}
    return seen, jobs


def test_blockdev_create():
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        d = q.dir
        base = os.path.join(d, "base.qcow2")
        seen, jobs = run_job(c, "j0", driver="file", filename=base,
                             size=0)
        assert seen == ["created", "running", "waiting", "pending",
                        "concluded"], seen
        assert jobs[0]["current-progress"] == jobs[0]["total-progress"]
        c.cmd("blockdev-add", driver="file", filename=base,
              **{"node-name": "bf"})
        run_job(c, "j1", driver="qcow2", file="bf", size=64 * MiB,
                **{"cluster-size": 4096})
        c.cmd("blockdev-del", **{"node-name": "bf"})
        top = os.path.join(d, "top.qcow2")
        run_job(c, "j2", driver="file", filename=top, size=0)
        c.cmd("blockdev-add", driver="file", filename=top,
              **{"node-name": "tf"})
        run_job(c, "j3", driver="qcow2", file="tf", size=64 * MiB,
                **{"backing-file": base, "backing-fmt": "qcow2"})
        c.cmd("blockdev-del", **{"node-name": "tf"})
        info = json.loads(img("info", "--output=json", base))
        assert info["virtual-size"] == 64 * MiB
        assert info["cluster-size"] == 4096
        info = json.loads(img("info", "--output=json", top))
        assert info["backing-filename"] == base
        assert info["backing-filename-format"] == "qcow2"
        check_clean(base)
        check_clean(top)


def test_locking():
    """qmpd's image locks and QEMU's tools see each other."""
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        base, = chain(q.dir, ("base",))
        c.cmd("blockdev-add", driver="qcow2", **{"node-name": "b"},
              file={"driver": "file", "filename": base})
        rc, out = qemu_io(base, "write 0 4k")
        assert rc != 0 and 'Failed to get "write" lock' in out, out
        # a shared (-U) read is allowed
        p = subprocess.run(["qemu-img", "info", "-U", base],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        c.cmd("blockdev-del", **{"node-name": "b"})
        rc, out = qemu_io(base, "write 0 4k")
        assert rc == 0, out
        # a bare file node takes no lock; a format on it does
        c.cmd("blockdev-add", driver="file", filename=base,
              **{"node-name": "bf"})
        rc, out = qemu_io(base, "write 0 4k")
        assert rc == 0, out
        c.cmd("blockdev-add", driver="qcow2", file="bf",
              **{"node-name": "b"})
        rc, out = qemu_io(base, "write 0 4k")
        assert rc != 0 and 'Failed to get "write" lock' in out, out
        c.cmd("blockdev-del", **{"node-name": "b"})
        rc, out = qemu_io(base, "write 0 4k")
        assert rc == 0, out
        c.cmd("blockdev-del", **{"node-name": "bf"})
        # and the other way round: qemu-io holds the image
        holder = subprocess.Popen(["qemu-io", "-f", "qcow2", base],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            # qemu-io runs commands once it has the image open (locked):
            # the answer to one says it holds the lock
            holder.stdin.write("read 0 512\n")
            holder.stdin.flush()
            assert "read 512/512 bytes" in holder.stdout.readline()
            cls, desc = c.error("blockdev-add", driver="qcow2",
                                **{"node-name": "b"},
                                file={"driver": "file", "filename": base})
            assert "lock" in desc, desc
            assert c.cmd("query-named-block-nodes") == []
        finally:
            holder.communicate("quit\n", timeout=30)


def test_qemu_img_images():
    """Images qemu-img made (v2, v3, cluster sizes, compressed) read right."""
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        d = q.dir
        raw = os.path.join(d, "src.raw")
        img("create", "-q", "-f", "raw", raw, "8M")
        for off, pat in ((0, 1), (3 * MiB + 512, 2), (7 * MiB, 3)):
            rc, out = qemu_io(raw, "write -P %d %d 300k" % (pat, off), "raw")
            assert rc == 0, out
        cases = [("v2-512", ["-o", "compat=0.10,cluster_size=512"]),
                 ("v3-4k", ["-o", "cluster_size=4096"]),
                 ("v3-2m", ["-o", "cluster_size=2M"]),
                 ("v3-comp", ["-c"])]
        for name, opts in cases:
            p = os.path.join(d, name + ".qcow2")
            img(*(["convert", "-q", "-O", "qcow2"] + opts + [raw, p]))
            c.cmd("blockdev-add", driver="qcow2", **{"node-name": name},
                  file={"driver": "file", "filename": p})
            for off, pat in ((0, 1), (3 * MiB + 512, 2), (7 * MiB, 3)):
                io(c, name, "read -P %d %d 300k" % (pat, off))
            io(c, name, "read -P 0 %d 64k" % (5 * MiB))
            # write into each (a compressed cluster is rewritten)
            io(c, name, "write -P 9 %d 4k" % (100 * 1024))
            c.cmd("blockdev-del", **{"node-name": name})
            check_clean(p)
            rc, out = qemu_io(p, "read -P 9 %d 4k" % (100 * 1024))
            assert rc == 0 and "failed" not in out, (name, out)


def test_bad_images():
    """Corrupt metadata gets an error and changes nothing."""
    need_tools()
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        d = q.dir
        good = os.path.join(d, "good.qcow2")
        img("create", "-q", "-f", "qcow2", good, "16M")
        rc, out = qemu_io(good, "write -P 1 0 64k")
        data = open(good, "rb").read()

        def bad(name, content):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(content)
            return p

        l1_off = int.from_bytes(data[40:48], "big")
        l1 = bytearray(data)
        l1[l1_off:l1_off + 8] = (0x8000000000000000 | (1 << 40)).to_bytes(
            8, "big")
        cases = [
            bad("trunc.qcow2", data[:50]),
            bad("magic.qcow2", b"QFI\xfb" + b"\0" * 100),
            bad("version.qcow2", data[:4] + (9).to_bytes(4, "big")
                + data[8:]),
            bad("csize.qcow2", data[:20] + (40).to_bytes(4, "big")
                + data[24:]),
        ]
        for p in cases:
            r = c.execute("blockdev-add", {
                "driver": "qcow2", "node-name": "x",
                "file": {"driver": "file", "filename": p}})
            assert "error" in r, (p, r)
            assert c.cmd("query-named-block-nodes") == []
        # an L2 pointer past the end of the file: reads fail with EIO
        p = bad("l1.qcow2", bytes(l1))
        c.cmd("blockdev-add", driver="qcow2", **{"node-name": "x"},
              file={"driver": "file", "filename": p})
        cls, desc = c.error("__com.qmpd_qemu-io", device="x",
                            command="read 0 4k")
        assert "Input/output error" in desc, desc
        c.cmd("blockdev-del", **{"node-name": "x"})
        # a backing chain loop
        a = os.path.join(d, "a.qcow2")
        b = os.path.join(d, "b.qcow2")
        img("create", "-q", "-f", "qcow2", a, "1M")
        img("create", "-q", "-f", "qcow2", "-b", a, "-F", "qcow2", b)
        img("rebase", "-q", "-u", "-f", "qcow2", "-b", b, "-F", "qcow2", a)
        r = c.execute("blockdev-add", {
            "driver": "qcow2", "node-name": "x",
            "file": {"driver": "file", "filename": b}})
        assert "error" in r, r
        assert c.cmd("query-named-block-nodes") == []


def test_kill9_durability():
    """kill -9 during writes: no corruption, flushed writes survive."""
    need_tools()
    rounds = int(os.environ.get("QMPD_KILL_ROUNDS", "8"))
    rng = random.Random(os.environ.get("QMPD_SEED", "42"))
    d = tempfile.mkdtemp(prefix="qmpd-block-")
    try:
        path = os.path.join(d, "disk.qcow2")
        img("create", "-q", "-f", "qcow2", "-o", "cluster_size=65536",
            path, "256M")
        durable = {}        # offset -> pattern, flushed
        for r in range(rounds):
            with Qmpd(["-M", "none", "-drive",
                       "file=%s,if=none,id=d0,format=qcow2" % path]) as q:
                c = q.connect()
                for off, pat in durable.items():
                    io(c, "d0", "read -P %d %d 64k" % (pat, off))
                pending = {}
                for i in range(rng.randint(20, 60)):
                    off = rng.randrange(0, 4096) * 65536
                    pat = rng.randint(1, 255)
                    c.cmd("human-monitor-command", **{
                        "command-line":
                        'qemu-io d0 "aio_write -P %d %d 64k"' % (pat, off)})
                    pending[off] = pat
                    durable.pop(off, None)
                    if rng.random() < 0.2:
                        io(c, "d0", "aio_flush")
                        io(c, "d0", "flush")
                        durable.update(pending)
                        pending = {}
                # more writes in flight, then the kill at a random moment
                for i in range(20):
                    off = rng.randrange(0, 4096) * 65536
                    c.send_raw(json.dumps({
                        "execute": "human-monitor-command", "arguments": {
                            "command-line": 'qemu-io d0 "aio_write -P 7 %d '
                            '64k"' % off}}))
                    durable.pop(off, None)
                time.sleep(rng.random() * 0.05)
                q.kill9()
            p = subprocess.run(["qemu-img", "check", "--output=json", path],
                               capture_output=True, text=True)
            res = json.loads(p.stdout)
            assert res.get("corruptions", 0) == 0 and \
                res.get("check-errors", 0) == 0, (r, res)
        for off, pat in durable.items():
            rc, out = qemu_io(path, "read -P %d %d 64k" % (pat, off))
            assert rc == 0 and "failed" not in out, (off, pat, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_drive_device_line, test_blockdev_add_del, test_blockdev_cmdline,
         test_drive_without_file, test_parallel_extending_writes,
         test_drive_goes_with_device,
         test_snapshot_resize_backing, test_reopen, test_blockdev_create,
         test_locking, test_qemu_img_images, test_bad_images,
         test_kill9_durability])
