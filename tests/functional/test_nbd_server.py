#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The NBD server as real clients use it: nbdinfo, nbdcopy, qemu-img and
qemu-io over unix and TCP exports, many at once, and a hand-driven client
(nbdwire.py) for pipelining, out-of-order replies, protocol errors and
removal while connected.  The QMP refusals and events are QEMU 7.2's
(tests/compat/test_nbd_compat.py compares them side by side).  Images
written through exports pass qemu-img check and compare equal to what
the clients wrote.  Skips (77) without qemu-img or libnbd's tools.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (NEED_QEMU_UTILS, Qmpd, QmpError, Skip, free_port,  # noqa
                  run, wait_until)
from hmplines import hmp  # noqa: E402
from images import check_clean, img, qemu_io, with_dir  # noqa: E402
import nbdwire  # noqa: E402

MiB = 1 << 20


def need_nbd_tools():
    for t in ("nbdinfo", "nbdcopy"):
        if not shutil.which(t):
            raise Skip("%s not installed" % t, NEED_QEMU_UTILS)


def sh(*args, timeout=120):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def image(d, name="disk.qcow2", size="64M"):
    """A qcow2 image: 0x11 in [0, 1M), zero clusters in [4M, 5M)."""
    path = os.path.join(d, name)
    img("create", "-q", "-f", "qcow2", path, size)
    qemu_io(path, "write -P 0x11 0 1M", "write -z 4M 1M")
    return path


def serve(d, path, export=None, server=None):
    """qmpd with @path as node d0, its NBD server on d/nbd.sock and an
    export (block-export-add arguments over the defaults)."""
    q = Qmpd(["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "d0",
        "file": {"driver": "file", "filename": path}})])
    c = q.connect()
    sock = os.path.join(d, "nbd.sock")
    c.cmd("nbd-server-start", **(server or {
        "addr": {"type": "unix", "data": {"path": sock}}}))
    a = {"type": "nbd", "id": "e0", "node-name": "d0", "name": "exp"}
    a.update(export or {})
    c.execute("block-export-add", a)
    return q, c, "nbd+unix:///exp?socket=" + sock, sock


def ok(c, name, args):
    """@name with @args (which may hold a "name"); its return."""
    r = c.execute(name, args)
    assert "return" in r, (name, args, r)
    return r["return"]


def refused(c, name, args):
    """@name with @args, which must fail; its message."""
    r = c.execute(name, args)
    assert "error" in r, (name, args, r)
    return r["error"]["desc"]


def stop(q, c):
    c.cmd("quit")
    assert q.wait(60) == 0


@with_dir("qmpd-nbd-refusals-")
def test_refusals(d):
    """QEMU 7.2's refusals, in its order of checks, changing nothing."""
    path = image(d)
    ro = os.path.join(d, "ro.raw")
    img("create", "-q", "-f", "raw", ro, "1M")
    q = Qmpd(["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "d0",
        "file": {"driver": "file", "filename": path}}), "-blockdev",
        json.dumps({"driver": "raw", "node-name": "ro", "read-only": True,
                    "file": {"driver": "file", "filename": ro}})])
    c = q.connect()
    try:
        sock = os.path.join(d, "s.sock")
        exp = {"type": "nbd", "id": "e0", "node-name": "d0"}
        assert c.error("nbd-server-stop")[1] == "NBD server not running"
        assert c.error("block-export-add", **exp)[1] == \
            "NBD server not running"
        assert c.error("nbd-server-start", **{
            "addr": {"type": "unix", "data": {"path": sock}},
            "tls-creds": "tls0"})[1] == "No TLS credentials with id 'tls0'"
        assert c.cmd("query-block-exports") == []
        c.cmd("nbd-server-start",
              addr={"type": "unix", "data": {"path": sock}})
        assert os.stat(sock).st_mode & 0o077 == 0
        assert c.error("nbd-server-start", addr={
            "type": "unix", "data": {"path": sock + "2"}})[1] == \
            "NBD server already running"
        for args, msg in [
            (dict(exp, id="1x"), "Invalid block export id"),
            (dict(exp, **{"node-name": "nope"}),
             "Cannot find device='' nor node-name='nope'"),
            ({"type": "nbd", "id": "e2", "node-name": "ro",
              "writable": True}, "Cannot export read-only node as writable"),
            (dict(exp, bitmaps=["nope"]), "Bitmap 'nope' is not found"),
            # qmpd serves NBD exports only
            ({"type": "fuse", "id": "f", "node-name": "d0",
              "mountpoint": d}, "Export type 'fuse' is not supported"),
        ]:
            assert c.error("block-export-add", **args)[1] == msg, args
        c.cmd("block-export-add", **exp)
        assert c.error("block-export-add", **exp)[1] == \
            "Block export id 'e0' is already in use"
        assert c.error("block-export-add", **dict(exp, id="e1"))[1] == \
            "NBD server already has export named 'd0'"
        assert c.error("nbd-server-add", device="nope")[1] == \
            "Cannot find device='nope' nor node-name='nope'"
        # a read-only node is exported read-only, whatever writable says
        c.cmd("nbd-server-add", device="ro", writable=True)
        c.execute("block-dirty-bitmap-add", {"node": "d0", "name": "b0"})
        assert refused(c, "block-export-add", dict(
            exp, id="e3", name="bm", bitmaps=["b0"])) == \
            "Enabled bitmap 'b0' incompatible with readonly export"
        c.execute("block-dirty-bitmap-disable", {"node": "d0", "name": "b0"})
        ok(c, "block-export-add", dict(exp, id="e3", name="bm",
                                       bitmaps=["b0"]))
        assert refused(c, "block-export-add", dict(
            exp, id="e4", name="bm4", bitmaps=["b0"], writable=True)) \
            == "Bitmap 'b0' is currently in use by another operation " \
            "and cannot be used"
        assert [(e["id"], e["node-name"], e["shutting-down"])
                for e in c.cmd("query-block-exports")] == \
            [("e3", "d0", False), ("ro", "ro", False), ("e0", "d0", False)]
        assert c.error("blockdev-del", **{"node-name": "d0"})[1] == \
            "Node d0 is in use"
        assert refused(c, "nbd-server-remove", {"name": "bm"}) == \
            "Export 'bm' is not found"
        assert c.error("block-export-del", id="nope")[1] == \
            "Export 'nope' is not found"
        c.cmd("block-export-del", id="e0")
        assert c.event("BLOCK_EXPORT_DELETED")["data"] == {"id": "e0"}
        c.cmd("nbd-server-stop")
        assert [c.event("BLOCK_EXPORT_DELETED")["data"]["id"]
                for _ in range(2)] == ["ro", "e3"]
        assert c.cmd("query-block-exports") == []
        # the bitmap is free again, the node deletable
        c.execute("block-dirty-bitmap-remove", {"node": "d0", "name": "b0"})
        stop(q, c)
    finally:
        q.close()


@with_dir("qmpd-nbd-read-")
def test_read_tools(d):
    """nbdinfo sees QEMU 7.2's flags, sizes and map; nbdcopy, qemu-img
    map/compare/convert read what the image holds, over unix and TCP."""
    need_nbd_tools()
    path = image(d)
    port = free_port()
    q, c, uri, sock = serve(d, path, {"description": "the disk",
                                      "allocation-depth": True})
    try:
        info = json.loads(sh("nbdinfo", "--json", uri))
        e = info["exports"][0]
        assert info["protocol"] == "newstyle-fixed" and info["structured"]
        assert e["export-name"] == "exp" and e["description"] == "the disk"
        assert e["export-size"] == 64 * MiB
        assert sorted(e["contexts"]) == ["base:allocation",
                                         "qemu:allocation-depth"]
        flags = {k: e[k] for k in e if k.startswith(("can_", "is_"))}
        assert flags == {
            "is_rotational": False, "is_read_only": True, "can_cache": True,
            "can_df": True, "can_fast_zero": False, "can_flush": True,
            "can_fua": True, "can_multi_conn": True, "can_trim": False,
            "can_zero": False}, flags
        assert (e["block_size_minimum"], e["block_size_preferred"],
                e["block_size_maximum"]) == (1, 4096, 32 * MiB)
        assert "export=\"exp\"" in sh("nbdinfo", "--list", uri)
        assert sh("nbdinfo", "--map", uri).split() == [
            "0", "1048576", "0", "data",
            "1048576", "66060288", "3", "hole,zero"]
        assert sh("nbdinfo", "--map=qemu:allocation-depth", uri).split() == [
            "0", "1048576", "1", "local", "1048576", "3145728", "0",
            "absent", "4194304", "1048576", "1", "local", "5242880",
            "61865984", "0", "absent"]
        out = os.path.join(d, "out.raw")
        sh("nbdcopy", uri, out)
        img("compare", "-q", "-f", "raw", "-F", "qcow2", out, path,
            "-U")
        m = json.loads(img("map", "--output=json", "-f", "raw", uri))
        assert [(x["start"], x["length"], x["data"]) for x in m] == [
            (0, MiB, True), (MiB, 63 * MiB, False)], m
        # the same export over TCP, nbd:// as qemu-img spells it; the
        # tools have exited, but the server may not have seen their
        # connections close yet (safe mode refuses until then, as QEMU)
        wait_until("the tools' connections closed", lambda: "error" not in
                   c.execute("block-export-del", {"id": "e0"}))
        c.event("BLOCK_EXPORT_DELETED")
        c.cmd("nbd-server-stop")
        c.cmd("nbd-server-start", addr={"type": "inet", "data": {
            "host": "127.0.0.1", "port": str(port)}})
        ok(c, "nbd-server-add", {"device": "d0", "name": "exp"})
        tcp = "nbd://127.0.0.1:%d/exp" % port
        assert "virtual size: 64 MiB" in img("info", tcp)
        img("compare", "-q", "-f", "raw", "-F", "qcow2", tcp, path, "-U")
        conv = os.path.join(d, "conv.qcow2")
        img("convert", "-f", "raw", "-O", "qcow2", tcp, conv)
        img("compare", "-q", conv, path, "-U")
        stop(q, c)
        check_clean(path)
    finally:
        q.close()


@with_dir("qmpd-nbd-write-")
def test_write_tools(d):
    """Writes through a writable export are a guest's: a dirty bitmap
    records them; qemu-io and nbdcopy write, the image checks clean and
    holds exactly what they wrote."""
    need_nbd_tools()
    path = image(d)
    q = None
    try:
        q, c, uri, sock = serve(d, path, {"writable": True})
        c.execute("block-dirty-bitmap-add", {"node": "d0", "name": "b0"})
        out = qemu_io(uri, "write -P 0x22 2M 64k", "write -z 3M 1M",
                      "discard 0 64k", fmt="raw")
        assert "wrote 65536/65536 bytes at offset 2097152" in out
        info = json.loads(sh("nbdinfo", "--json", uri))["exports"][0]
        assert info["can_zero"] and info["can_trim"] \
            and info["can_fast_zero"] and not info["is_read_only"]
        src = os.path.join(d, "src.raw")
        with open(src, "wb") as f:
            f.write(bytes([0x33]) * MiB + bytes(MiB) + bytes([0x44]) * MiB)
        # nbdcopy writes its 3 MiB at the start (the rest stays)
        sh("nbdcopy", src, uri)
        bms = [b for b in c.cmd("query-named-block-nodes")
               if b["node-name"] == "d0"][0].get("dirty-bitmaps", [])
        assert any(b["name"] == "b0" and b["count"] > 0 for b in bms), bms
        stop(q, c)
        check_clean(path)
        ref = os.path.join(d, "ref.qcow2")
        img("create", "-q", "-f", "qcow2", ref, "64M")
        qemu_io(ref, "write -P 0x33 0 1M", "write -P 0x44 2M 1M")
        img("compare", "-q", path, ref)
    finally:
        if q:
            q.close()


@with_dir("qmpd-nbd-many-")
def test_many_clients(d):
    """Sixteen clients at once, each writing its own 2 MiB with qemu-io
    and reading it back with nbdcopy; the image holds every write."""
    need_nbd_tools()
    path = image(d)
    q, c, uri, sock = serve(d, path, {"writable": True})
    try:
        procs = [subprocess.Popen(
            ["qemu-io", "-f", "raw", "-c",
             "write -P %d %dM 2M" % (0x40 + i, 2 * i), uri],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for i in range(16)]
        for p in procs:
            out = p.communicate(timeout=120)[0]
            assert p.returncode == 0, out
        readers = [subprocess.Popen(
            ["nbdcopy", uri, os.path.join(d, "r%d.raw" % i)])
            for i in range(4)]
        for p in readers:
            assert p.wait(120) == 0
        for i in range(16):
            assert "Pattern verification failed" not in qemu_io(
                uri, "read -P %d %dM 2M" % (0x40 + i, 2 * i), fmt="raw")
        for i in range(1, 4):
            assert open(os.path.join(d, "r0.raw"), "rb").read() == \
                open(os.path.join(d, "r%d.raw" % i), "rb").read()
        stop(q, c)
        check_clean(path)
    finally:
        q.close()


@with_dir("qmpd-nbd-wire-")
def test_wire(d):
    """By hand: options as the spec has them, pipelined requests
    answered by handle, sparse structured reads, block status with
    REQ_ONE and a dirty bitmap, and errors for bad requests."""
    path = image(d)
    q, c, uri, sock = serve(d, path, {"writable": True})
    try:
        c.execute("block-dirty-bitmap-add", {"node": "d0", "name": "b0"})
        c.cmd("block-export-del", id="e0")
        c.event("BLOCK_EXPORT_DELETED")
        ok(c, "block-export-add", {"type": "nbd", "id": "e0",
                                   "node-name": "d0", "name": "exp",
                                   "writable": True, "bitmaps": ["b0"]})
        n = nbdwire.NbdClient(sock)
        assert n.hflags == 3
        n.option(nbdwire.OPT_LIST)
        reps = n.replies()
        assert [r[1] for r in reps] == [nbdwire.REP_SERVER, nbdwire.REP_ACK]
        assert reps[0][2] == struct.pack(">I", 3) + b"exp"
        n.option(99)
        (r,) = n.replies()
        assert r[1] == 0x80000001 and r[2] == b"Unsupported option 99 " \
            b"(<unknown option>)", r
        n.go("nope", nbdwire.OPT_INFO)
        # metadata contexts need structured replies first
        (r,) = n.meta(nbdwire.OPT_SET_META, "exp", ["base:allocation"])
        assert r[1] == 0x80000003, r
        n.structured_reply()
        reps = n.meta(nbdwire.OPT_LIST_META, "exp", [])
        assert [(x[1], x[2][4:]) for x in reps[:-1]] == [
            (nbdwire.REP_META, b"base:allocation"),
            (nbdwire.REP_META, b"qemu:dirty-bitmap:b0")], reps
        reps = n.meta(nbdwire.OPT_SET_META, "exp",
                      ["base:allocation", "qemu:dirty-bitmap:b0", "nope:x"])
        ids = {x[2][4:]: struct.unpack(">I", x[2][:4])[0]
               for x in reps[:-1]}
        assert set(ids) == {b"base:allocation", b"qemu:dirty-bitmap:b0"}
        n.go("exp")
        assert n.size == 64 * MiB and n.tflags & 0x80   # DF
        # pipelined: a big read, a write and a small read; answers by handle
        n.request(nbdwire.CMD_READ, 0, 8 * MiB, 1)
        n.request(nbdwire.CMD_WRITE, 6 * MiB, 4096, 2, nbdwire.FLAG_FUA,
                  b"\x55" * 4096)
        n.request(nbdwire.CMD_READ, 512, 512, 3, nbdwire.FLAG_DF)
        seen, data = {}, {}
        while len(seen) < 3:
            kind, h, err, body = n.reply()
            assert not err, (h, err, body)
            if kind == "simple":
                seen[h] = True
                continue
            flags, rtype, payload = body
            data.setdefault(h, []).append((rtype, payload))
            if flags & 1:
                seen[h] = True
        big = data[1]
        kinds = [(t, struct.unpack(">Q", p[:8])[0]) for t, p in big]
        assert kinds[0] == (nbdwire.REPLY_OFFSET_DATA, 0), kinds
        assert (nbdwire.REPLY_OFFSET_HOLE, MiB) in kinds, kinds
        assert big[0][1][8:] == b"\x11" * MiB
        assert data[3] == [(nbdwire.REPLY_OFFSET_DATA,
                            struct.pack(">Q", 512) + b"\x11" * 512)]
        # block status: one extent with REQ_ONE, the bitmap saw the write
        n.request(nbdwire.CMD_BLOCK_STATUS, 0, 8 * MiB, 4,
                  nbdwire.FLAG_REQ_ONE)
        chunks = n.read_all(4)
        st = {struct.unpack(">I", p[:4])[0]: p[4:] for _, p in chunks}
        assert st[ids[b"base:allocation"]] == struct.pack(">II", MiB, 0)
        assert st[ids[b"qemu:dirty-bitmap:b0"]] == \
            struct.pack(">II", 6 * MiB, 0)
        n.request(nbdwire.CMD_BLOCK_STATUS, 6 * MiB, 2 * MiB, 5)
        chunks = n.read_all(5)
        st = {struct.unpack(">I", p[:4])[0]: p[4:] for _, p in chunks}
        bm = st[ids[b"qemu:dirty-bitmap:b0"]]
        assert struct.unpack(">II", bm[:8])[1] == 1, bm
        # errors: past the end, unknown command; the connection goes on
        for h, cmd, off, ln, err in [(6, nbdwire.CMD_READ, 64 * MiB, 1, 22),
                                     (7, nbdwire.CMD_WRITE_ZEROES, 64 * MiB,
                                      512, 28),
                                     (8, 42, 0, 0, 22)]:
            n.request(cmd, off, ln, h)
            kind, hh, e, body = n.reply()
            assert (kind, hh, e) == ("chunk", h, err), (kind, hh, e, body)
        n.request(nbdwire.CMD_FLUSH, 0, 0, 9)
        assert n.reply()[:3] == ("simple", 9, 0)
        n.request(nbdwire.CMD_DISC, 0, 0, 10)
        assert n.sock.recv(1) == b""
        n.close()
        stop(q, c)
        check_clean(path)
    finally:
        q.close()


@with_dir("qmpd-nbd-hostile-")
def test_hostile_clients(d):
    """Garbage in the handshake, a bad request magic, an oversized write
    and a client flag the server does not know each drop that client
    alone; another client's requests go on meanwhile."""
    path = image(d)
    q, c, uri, sock = serve(d, path)
    try:
        good = nbdwire.NbdClient(sock)
        good.go("exp")

        def dropped(n):
            n.sock.settimeout(30)
            try:
                while n.sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            n.close()

        n = nbdwire.NbdClient(sock)
        n.sock.sendall(b"\xff" * 64)
        dropped(n)
        n = socket.socket(socket.AF_UNIX)
        n.connect(sock)
        n.sendall(struct.pack(">I", 0x80))     # unknown client flag
        assert n.recv(18)
        n.settimeout(30)
        assert n.recv(1) == b""
        n.close()
        n = nbdwire.NbdClient(sock)
        n.go("exp")
        n.sock.sendall(b"GET / HTTP/1.0\r\n" * 4)
        dropped(n)
        n = nbdwire.NbdClient(sock)
        n.go("exp")
        n.request(nbdwire.CMD_WRITE, 0, 64 * MiB, 1)
        dropped(n)
        n = nbdwire.NbdClient(sock)
        n.option(nbdwire.OPT_GO, b"\x00" * 3)   # malformed: an error reply
        (r,) = n.replies()
        assert r[1] == 0x80000003, r
        n.option(nbdwire.OPT_ABORT)
        assert n.replies()[0][1] == nbdwire.REP_ACK
        dropped(n)
        good.request(nbdwire.CMD_READ, 0, 4096, 7)
        kind, h, err, data = good.reply(4096)
        assert (kind, h, err, data) == ("simple", 7, 0, b"\x11" * 4096)
        good.close()
        assert c.cmd("query-block-exports")[0]["id"] == "e0"
        stop(q, c)
    finally:
        q.close()


@with_dir("qmpd-nbd-remove-")
def test_remove_while_connected(d):
    """mode=safe refuses while a client is connected (QEMU's message and
    hint over HMP too), mode=hard disconnects it, and the export's
    deletion is announced once it is gone."""
    path = image(d)
    q, c, uri, sock = serve(d, path)
    try:
        n = nbdwire.NbdClient(sock)
        n.go("exp")
        assert c.error("block-export-del", id="e0")[1] == \
            "export 'e0' still in use"
        assert hmp(c, "nbd_server_remove e0") == \
            "Error: export 'e0' still in use\r\n" \
            "Use mode='hard' to force client disconnect\r\n"
        c.cmd("block-export-del", id="e0", mode="hard")
        assert c.event("BLOCK_EXPORT_DELETED")["data"] == {"id": "e0"}
        assert n.sock.recv(1) == b""
        n.close()
        # the name is free again at once
        ok(c, "block-export-add", {"type": "nbd", "id": "e1",
                                   "node-name": "d0", "name": "exp"})
        stop(q, c)
    finally:
        q.close()


@with_dir("qmpd-nbd-max-")
def test_max_connections(d):
    """With max-connections 1 a second client waits in the listen
    queue until the first leaves, then is served."""
    path = image(d)
    sock = os.path.join(d, "nbd.sock")
    q, c, uri, sock = serve(d, path, server={
        "addr": {"type": "unix", "data": {"path": sock}},
        "max-connections": 1})
    try:
        a = nbdwire.NbdClient(sock)
        b = socket.socket(socket.AF_UNIX)
        b.connect(sock)
        b.settimeout(0.5)
        try:
            got = b.recv(18)
        except socket.timeout:
            got = None
        assert got is None, got
        a.close()
        b.settimeout(30)
        assert struct.unpack(">Q", b.recv(8))[0] == nbdwire.INIT_MAGIC
        b.close()
        stop(q, c)
    finally:
        q.close()


@with_dir("qmpd-nbd-hmp-")
def test_hmp(d):
    """nbd_server_start [-a] [-w] host:port, nbd_server_add [-w],
    nbd_server_remove [-f] and nbd_server_stop as QEMU 7.2 prints them."""
    need_nbd_tools()
    path = image(d)
    port = free_port()
    q = Qmpd(["-drive", "file=%s,format=qcow2,if=none,id=drive0" % path])
    c = q.connect()
    try:
        assert hmp(c, "nbd_server_stop") == \
            "Error: NBD server not running\r\n"
        assert hmp(c, "nbd_server_start -a -w 127.0.0.1:%d" % port) == ""
        assert hmp(c, "nbd_server_start 127.0.0.1:%d" % port) == \
            "Error: NBD server already running\r\n"
        tcp = "nbd://127.0.0.1:%d/drive0" % port
        e = json.loads(sh("nbdinfo", "--json", tcp))["exports"][0]
        assert not e["is_read_only"]
        assert hmp(c, "nbd_server_add drive0 second") == ""
        assert [x["id"] for x in c.cmd("query-block-exports")] == \
            ["second", "drive0"]
        assert hmp(c, "nbd_server_remove -f second") == ""
        c.event("BLOCK_EXPORT_DELETED")
        assert hmp(c, "nbd_server_stop") == ""
        assert c.event("BLOCK_EXPORT_DELETED")["data"] == {"id": "drive0"}
        stop(q, c)
    finally:
        q.close()


@with_dir("qmpd-nbd-holes-")
def test_holes_after_status(d):
    """A raw file's block status remembers the data it found; a zero
    write that punches a hole (and a trim) inside it is seen at once
    by block status and by a structured read's hole chunks."""
    path = os.path.join(d, "disk.raw")
    img("create", "-q", "-f", "raw", path, "4M")
    qemu_io(path, "write -P 0x33 0 4M", fmt="raw")
    q = Qmpd(["-blockdev", json.dumps({
        "driver": "raw", "node-name": "d0", "discard": "unmap",
        "file": {"driver": "file", "filename": path,
                 "discard": "unmap"}})])
    try:
        c = q.connect()
        sock = os.path.join(d, "nbd.sock")
        c.cmd("nbd-server-start",
              addr={"type": "unix", "data": {"path": sock}})
        ok(c, "block-export-add", {"type": "nbd", "id": "e0",
                                   "node-name": "d0", "name": "exp",
                                   "writable": True})
        n = nbdwire.NbdClient(sock)
        n.structured_reply()
        (r,) = n.meta(nbdwire.OPT_SET_META, "exp", ["base:allocation"])[:1]
        n.go("exp")

        def status(h):
            n.request(nbdwire.CMD_BLOCK_STATUS, 0, 4 * MiB, h)
            (chunk,) = n.read_all(h)
            ext = chunk[1][4:]
            return [struct.unpack(">II", ext[i:i + 8])
                    for i in range(0, len(ext), 8)]

        assert status(1) == [(4 * MiB, 0)]
        n.request(nbdwire.CMD_WRITE_ZEROES, MiB, MiB, 2)
        assert n.reply()[:3] == ("simple", 2, 0)
        n.request(nbdwire.CMD_TRIM, 3 * MiB, MiB, 3)
        assert n.reply()[:3] == ("simple", 3, 0)
        assert status(4) == [(MiB, 0), (MiB, 3), (MiB, 0), (MiB, 3)]
        n.request(nbdwire.CMD_READ, 0, 4 * MiB, 5)
        kinds = [(t, struct.unpack(">Q", p[:8])[0])
                 for t, p in n.read_all(5)]
        assert (nbdwire.REPLY_OFFSET_HOLE, MiB) in kinds, kinds
        assert (nbdwire.REPLY_OFFSET_HOLE, 3 * MiB) in kinds, kinds
        n.close()
        stop(q, c)
    finally:
        q.close()
    qemu_io(path, "read -P 0x33 0 1M", "read -P 0 1M 1M",
            "read -P 0x33 2M 1M", "read -P 0 3M 1M", fmt="raw")


if __name__ == "__main__":
    run([test_refusals, test_read_tools, test_write_tools,
         test_many_clients, test_wire, test_hostile_clients,
         test_remove_while_connected, test_max_connections, test_hmp,
         test_holes_after_status])
