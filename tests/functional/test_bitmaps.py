#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Dirty bitmaps: the block-dirty-bitmap-* commands and persistence in qcow2.

Every message and every query field is the one QEMU 7.2 gives for the
same command (checked against qemu-system-x86_64 when it was written).
Persistent bitmaps are checked with QEMU's own tools: qemu-img info
shows them with their flags (in-use while qmpd has the image open
read-write), qemu-img check finds nothing wrong, and QEMU loads what
qmpd stored and the other way round, with the same counts.  A kill -9
leaves the bitmaps in use: loaded again they are inconsistent and can
only be removed.  Tests needing qemu-img skip (77) when it is missing;
those needing qemu-system-x86_64 too.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (Qmpd, QmpError, qemu_binary,  # noqa: E402
                  need_qemu_utils, run)
from qmpd import need_qemu as need_reference_qemu  # noqa: E402
from reference import start  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


def need_tools():
    need_qemu_utils()


def need_qemu():
    need_qemu_utils()
    need_reference_qemu()


def img(*args):
    p = subprocess.run(["qemu-img"] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def create(path, size="64M", *opts):
    img("create", "-q", "-f", "qcow2", *opts, path, size)
    return path


def img_bitmaps(path):
    """The bitmaps qemu-img info lists: {name: (flags, granularity)}."""
    info = json.loads(img("info", "-U", "--output=json", path))
    return {b["name"]: (b["flags"], b["granularity"])
            for b in info["format-specific"]["data"].get("bitmaps", [])}


def check(path):
    """qemu-img check's verdict as (corruptions, leaks, errors)."""
    p = subprocess.run(["qemu-img", "check", "--output=json", path],
                       capture_output=True, text=True, timeout=60)
    r = json.loads(p.stdout)
    return (r.get("corruptions", 0), r.get("leaks", 0),
            r.get("check-errors", 0))


def check_clean(path):
    assert check(path) == (0, 0, 0), (path, check(path))


def qemu_io(path, *cmds):
    args = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        args += ["-c", c]
    p = subprocess.run(args + [path], capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "fail" not in out.lower(), (cmds, out)


def node_arg(path, node="n0", ro=False):
    return ["-blockdev", "driver=qcow2,file.driver=file,file.filename=%s,"
            "node-name=%s%s" % (path, node, ",read-only=on" if ro else "")]


def quit(q, c):
    c.execute("quit")
    rc = q.wait()
    assert rc == 0, (rc, q.stderr_text())


def kill9(q):
    q.kill9()


def io(c, node, line):
    """A qemu-io command through HMP, as both qmpd and QEMU take it."""
    out = cmd(c, "human-monitor-command",
              **{"command-line": 'qemu-io %s "%s"' % (node, line)})
    assert "error" not in out.lower() and "fail" not in out.lower(), out


def bitmaps(c, node):
    """query-named-block-nodes' dirty-bitmaps of @node, by name."""
    for n in cmd(c, "query-named-block-nodes"):
        if n["node-name"] == node:
            return {b.get("name"): b for b in n.get("dirty-bitmaps", [])}
    raise KeyError(node)


def counts(c, node):
    return {k: v["count"] for k, v in bitmaps(c, node).items()}


def cmd(c, command, /, **args):
    """c.cmd(), for commands with a "name" argument of their own."""
    r = c.execute(command, args or None)
    if "error" in r:
        raise QmpError(r)
    Qmpd.note_command(command, r["return"])
    return r["return"]


def err(c, command, /, **args):
    """Run a command that must fail with GenericError; its message."""
    r = c.execute(command, args or None)
    assert "error" in r, (command, args, r)
    assert r["error"]["class"] == "GenericError", (command, r)
    return r["error"]["desc"]


class Tmp:
    def __enter__(self):
        self.d = tempfile.mkdtemp(prefix="qmpd-bitmaps-")
        return self.d

    def __exit__(self, *exc):
        shutil.rmtree(self.d, ignore_errors=True)


def test_add():
    """Defaults, options and every refusal of block-dirty-bitmap-add."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        c2m = create(os.path.join(d, "c2m.qcow2"), "64M",
                     "-o", "cluster_size=2M")
        c512 = create(os.path.join(d, "c512.qcow2"), "64M",
                      "-o", "cluster_size=512")
        v2 = create(os.path.join(d, "v2.qcow2"), "64M", "-o", "compat=0.10")
        raw = os.path.join(d, "r.raw")
        img("create", "-q", "-f", "raw", raw, "64M")
        q, c = start(node_arg(a) + node_arg(c2m, "c2m")
                     + node_arg(c512, "c512") + node_arg(v2, "v2")
                     + ["-blockdev", "driver=raw,file.driver=file,"
                        "file.filename=%s,node-name=r0,file.node-name=rf"
                        % raw,
                        "-blockdev", "driver=null-co,node-name=nul",
                        "-drive", "file=%s,if=none,id=drive0,format=qcow2,"
                        "readonly=on,file.locking=off" % a])
        with q:
            # default granularity: the cluster size within 4K..64K
            for node, gran in (("n0", 65536), ("c2m", 65536),
                               ("c512", 4096), ("r0", 65536),
                               ("rf", 65536), ("nul", 65536),
                               ("drive0", 65536)):
                cmd(c, "block-dirty-bitmap-add", node=node, name="d")
                assert bitmaps(c, node if node != "drive0"
                               else cmd(c, "query-block")[0]["inserted"]
                               ["node-name"])["d"]["granularity"] == gran
            # query-block shows the bitmaps of the device's root node
            ins = cmd(c, "query-block")[0]["inserted"]
            assert ins["dirty-bitmaps"] == [{
                "name": "d", "count": 0, "granularity": 65536,
                "recording": True, "busy": False, "persistent": False}], ins
            for g in (512, 1 << 20, 1 << 31):
                cmd(c, "block-dirty-bitmap-add", node="n0", name="g%d" % g,
                      granularity=g)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="x" * 1023)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="off",
                  disabled=True)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="p",
                  persistent=True)
            b = bitmaps(c, "n0")
            assert b["off"] == {"name": "off", "count": 0,
                                "granularity": 65536, "recording": False,
                                "busy": False, "persistent": False}, b
            assert b["p"]["persistent"] and b["p"]["recording"], b
            # newest first, as QEMU lists them
            assert list(b)[:2] == ["p", "off"], list(b)

            long = "y" * 1024
            for args, msg in (
                    ({"node": "n0", "name": "d"}, "Bitmap already exists: d"),
                    ({"node": "nx", "name": "d"},
                     "Cannot find device='nx' nor node-name='nx'"),
                    ({"node": "nx", "name": ""},
                     "Bitmap name cannot be empty"),
                    ({"node": "n0", "name": "e", "granularity": 1000},
                     "Granularity must be power of 2 and at least 512"),
                    ({"node": "n0", "name": "e", "granularity": 256},
                     "Granularity must be power of 2 and at least 512"),
                    ({"node": "n0", "name": "e", "granularity": 0},
                     "Granularity must be power of 2 and at least 512"),
                    ({"node": "n0", "name": "e", "granularity": 1 << 32},
                     "Parameter 'granularity' expects uint32_t"),
                    ({"node": "n0", "name": long},
                     "Bitmap name too long: " + long),
                    ({"node": "n0", "name": long, "persistent": True},
                     "Can't make bitmap '%s' persistent in 'n0': Name length "
                     "exceeds maximum (1023 characters)" % long),
                    ({"node": "n0", "name": "d", "persistent": True},
                     "Bitmap already exists: d"),
                    ({"node": "v2", "name": "p", "persistent": True},
                     "Can't make bitmap 'p' persistent in 'v2': Cannot store "
                     "dirty bitmaps in qcow2 v2 files"),
                    ({"node": "r0", "name": "p", "persistent": True},
                     "Can't store persistent bitmaps to r0: Operation not "
                     "supported"),
                    ({"node": "r0", "name": "d", "persistent": True},
                     "Can't store persistent bitmaps to r0: Operation not "
                     "supported"),
                    ({"node": "rf", "name": "p", "persistent": True},
                     "Can't store persistent bitmaps to rf: Operation not "
                     "supported"),
                    ({"node": "nul", "name": "p", "persistent": True},
                     "Can't store persistent bitmaps to nul: Operation not "
                     "supported")):
                assert err(c, "block-dirty-bitmap-add", **args) == msg, \
                    (args, msg)
            # a persistent bitmap on a read-only node is accepted, as QEMU
            # does, and lost at close with a warning
            cmd(c, "block-dirty-bitmap-add", node="drive0", name="lost",
                  persistent=True)
            quit(q, c)
            assert "Lost persistent bitmaps during inactivation of node" \
                in q.stderr_text(), q.stderr_text()
        assert list(img_bitmaps(a)) == ["p"], img_bitmaps(a)
        check_clean(a)


def test_too_big():
    """A persistent bitmap must fit QEMU's 512 MiB of bitmap data."""
    need_tools()
    with Tmp() as d:
        big = create(os.path.join(d, "big.qcow2"), "3T")
        q, c = start(node_arg(big))
        with q:
            assert err(c, "block-dirty-bitmap-add", node="n0", name="a",
                       persistent=True, granularity=512) == (
                "Can't make bitmap 'a' persistent in 'n0': Too much space "
                "will be occupied by the bitmap. Use larger granularity")
            cmd(c, "block-dirty-bitmap-add", node="n0", name="a",
                  persistent=True, granularity=1024)
            quit(q, c)
        assert img_bitmaps(big) == {"a": (["auto"], 1024)}
        check_clean(big)


def test_not_found():
    """The lookup errors of remove, clear, enable, disable and merge."""
    q, c = start(["-blockdev", "driver=null-co,node-name=n0",
                  "-blockdev", "driver=null-co,node-name=n1,size=1048576"])
    with q:
        cmd(c, "block-dirty-bitmap-add", node="n0", name="a")
        for verb in ("remove", "clear", "enable", "disable"):
            assert err(c, "block-dirty-bitmap-" + verb, node="n0",
                       name="x") == "Dirty bitmap 'x' not found"
            assert err(c, "block-dirty-bitmap-" + verb, node="nx",
                       name="a") == "Node 'nx' not found"
        for args, msg in (
                ({"target": "x", "bitmaps": ["a"]},
                 "Dirty bitmap 'x' not found"),
                ({"target": "a", "bitmaps": ["x"]},
                 "Dirty bitmap 'x' not found"),
                ({"target": "a", "bitmaps": [{"node": "n0", "name": "x"}]},
                 "Dirty bitmap 'x' not found"),
                ({"target": "a", "bitmaps": [{"node": "nx", "name": "x"}]},
                 "Node 'nx' not found")):
            assert err(c, "block-dirty-bitmap-merge", node="n0",
                       **args) == msg, (args, msg)
        cmd(c, "block-dirty-bitmap-add", node="n1", name="s")
        assert err(c, "block-dirty-bitmap-merge", node="n0", target="a",
                   bitmaps=[{"node": "n1", "name": "s"}]) == (
            "Bitmaps are of different sizes (destination size is "
            "1073741824, source size is 1048576) and can't be merged")
        cmd(c, "block-dirty-bitmap-remove", node="n0", name="a")
        assert bitmaps(c, "n0") == {}
        # no bitmaps: the member is absent
        for n in cmd(c, "query-named-block-nodes"):
            assert "dirty-bitmaps" not in n or n["node-name"] == "n1", n


def test_recording():
    """Writes through any parent reach the node's bitmaps; counts and
    enable, disable, clear, merge as QEMU does them.  The same steps run
    on QEMU when it is installed, with the same expectations."""
    need_tools()
    recording(False)
    if qemu_binary():
        recording(True)


def recording(qemu):
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        q, c = start(["-blockdev", "driver=file,filename=%s,node-name=f0"
                      % a, "-blockdev", "driver=qcow2,file=f0,node-name=n0",
                      "-blockdev", "driver=raw,file=n0,node-name=top"],
                     qemu=qemu)
        with q:
            cmd(c, "block-dirty-bitmap-add", node="n0", name="all")
            cmd(c, "block-dirty-bitmap-add", node="n0", name="fine",
                  granularity=512)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="off",
                  disabled=True)
            cmd(c, "block-dirty-bitmap-add", node="f0", name="file")
            # through a parent node too
            io(c, "top", "write 0 1")
            io(c, "n0", "write 1M 130k")
            io(c, "n0", "write -z 8M 64k")
            io(c, "n0", "discard 8M 64k")
            got = counts(c, "n0")
            assert got == {"all": 65536 + 3 * 65536 + 65536,
                           "fine": 512 + 130 * KiB + 64 * KiB,
                           "off": 0}, got
            # the file node below sees qcow2's data and metadata writes
            assert counts(c, "f0")["file"] > 0
            cmd(c, "block-dirty-bitmap-enable", node="n0", name="off")
            cmd(c, "block-dirty-bitmap-disable", node="n0", name="all")
            io(c, "n0", "write 20M 4k")
            got = counts(c, "n0")
            assert got["off"] == 65536 and got["all"] == 5 * 65536, got
            assert not bitmaps(c, "n0")["all"]["recording"]
            cmd(c, "block-dirty-bitmap-clear", node="n0", name="fine")
            assert counts(c, "n0")["fine"] == 0
            # merge: local and external sources, other granularities;
            # an empty list changes nothing (QEMU 7.2 crashes on it)
            cmd(c, "block-dirty-bitmap-merge", node="n0", target="fine",
                  bitmaps=["off"])
            assert counts(c, "n0")["fine"] == 65536
            cmd(c, "block-dirty-bitmap-merge", node="n0", target="off",
                  bitmaps=[{"node": "n0", "name": "all"}, "fine"])
            assert counts(c, "n0")["off"] == 6 * 65536
            if not qemu:
                cmd(c, "block-dirty-bitmap-merge", node="n0", target="off",
                    bitmaps=[])
            # on error the target is unchanged, even after good sources
            cmd(c, "block-dirty-bitmap-clear", node="n0", name="fine")
            assert err(c, "block-dirty-bitmap-merge", node="n0",
                       target="fine", bitmaps=["all", "nope"]) == \
                "Dirty bitmap 'nope' not found"
            assert counts(c, "n0")["fine"] == 0
            quit(q, c)
        # not persistent: nothing in the image
        assert img_bitmaps(a) == {}
        check_clean(a)


def test_persistence():
    """Stored at quit, in use while open, loaded again with its counts;
    blockdev-del stores too; a removal rewrites the image at once."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        q, c = start(node_arg(a))
        with q:
            cmd(c, "block-dirty-bitmap-add", node="n0", name="a",
                  persistent=True)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="dis",
                  persistent=True, disabled=True)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="small",
                  persistent=True, granularity=512)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="tmp")
            io(c, "n0", "write 1M 128k")
            io(c, "n0", "write 40M 4k")
            io(c, "n0", "flush")
            # QEMU writes bitmaps at close, not on flush
            assert img_bitmaps(a) == {}
            before = counts(c, "n0")
            quit(q, c)
        assert img_bitmaps(a) == {"small": (["auto"], 512),
                                  "dis": ([], 65536),
                                  "a": (["auto"], 65536)}, img_bitmaps(a)
        check_clean(a)
        q, c = start(node_arg(a))
        with q:
            del before["tmp"]
            assert counts(c, "n0") == before, counts(c, "n0")
            b = bitmaps(c, "n0")
            assert not b["dis"]["recording"] and b["a"]["recording"]
            assert all(x["persistent"] and "inconsistent" not in x
                       for x in b.values()), b
            assert img_bitmaps(a) == {"small": (["in-use", "auto"], 512),
                                      "dis": (["in-use"], 65536),
                                      "a": (["in-use", "auto"], 65536)}
            io(c, "n0", "write 50M 64k")
            cmd(c, "block-dirty-bitmap-remove", node="n0", name="small")
            assert list(img_bitmaps(a)) == ["dis", "a"], img_bitmaps(a)
            cmd(c, "blockdev-del", **{"node-name": "n0"})
            assert img_bitmaps(a) == {"dis": ([], 65536),
                                      "a": (["auto"], 65536)}
            check_clean(a)
            cmd(c, "blockdev-add", driver="qcow2", **{"node-name": "n0"},
                  file={"driver": "file", "filename": a})
            assert counts(c, "n0") == {"a": 196608 + 65536, "dis": 0}
            # the last one gone: no extension, autoclear bit off
            cmd(c, "block-dirty-bitmap-remove", node="n0", name="a")
            cmd(c, "block-dirty-bitmap-remove", node="n0", name="dis")
            quit(q, c)
        assert img_bitmaps(a) == {}
        with open(a, "rb") as f:
            hdr = f.read(112)
        assert struct.unpack(">Q", hdr[88:96])[0] & 1 == 0
        check_clean(a)


def test_qemu_to_qmpd():
    """Bitmaps made by qemu-img and filled by qemu-io load in qmpd; what
    qmpd records is loaded by QEMU with the same counts."""
    need_qemu()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        img("bitmap", "--add", a, "b0")
        img("bitmap", "--add", "-g", "512", a, "fine")
        img("bitmap", "--add", "--disable", a, "off")
        qemu_io(a, "write 0 1M", "write 10M 4k")
        q, c = start(node_arg(a))
        with q:
            got = counts(c, "n0")
            assert got == {"b0": MiB + 65536, "fine": MiB + 4 * KiB,
                           "off": 0}, got
            assert not bitmaps(c, "n0")["off"]["recording"]
            io(c, "n0", "write 20M 64k")
            cmd(c, "block-dirty-bitmap-enable", node="n0", name="off")
            io(c, "n0", "write 30M 64k")
            cmd(c, "block-dirty-bitmap-add", node="n0", name="mine",
                  persistent=True)
            io(c, "n0", "write 40M 64k")
            want = counts(c, "n0")
            quit(q, c)
        check_clean(a)
        assert img_bitmaps(a)["off"] == (["auto"], 65536)
        q, c = start(node_arg(a), qemu=True)
        with q:
            assert counts(c, "n0") == want, (counts(c, "n0"), want)
            quit(q, c)
        check_clean(a)


def test_qmpd_to_qemu():
    """A bitmap qmpd stored is loaded, used and stored again by QEMU;
    qmpd then loads QEMU's version."""
    need_qemu()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"), "100M")
        q, c = start(node_arg(a))
        with q:
            cmd(c, "block-dirty-bitmap-add", node="n0", name="a",
                  persistent=True, granularity=4096)
            cmd(c, "block-dirty-bitmap-add", node="n0", name="huge",
                  persistent=True, granularity=1 << 31)
            io(c, "n0", "write 3M 10k")
            io(c, "n0", "write 99M 1M")
            quit(q, c)
        q, c = start(node_arg(a), qemu=True)
        with q:
            assert counts(c, "n0") == {"a": 12 * KiB + MiB,
                                       "huge": 1 << 31}, counts(c, "n0")
            io(c, "n0", "write 50M 4k")
            cmd(c, "block-dirty-bitmap-clear", node="n0", name="huge")
            quit(q, c)
        check_clean(a)
        q, c = start(node_arg(a))
        with q:
            assert counts(c, "n0") == {"a": 12 * KiB + MiB + 4 * KiB,
                                       "huge": 0}, counts(c, "n0")
            quit(q, c)
        check_clean(a)


def test_kill9_inconsistent():
    """kill -9 leaves the bitmaps in use; loaded again they are
    inconsistent: counted 0, not recording, refused by everything but
    remove (which works and leaves a clean image)."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        img("bitmap", "--add", a, "a")
        img("bitmap", "--add", a, "b")
        qemu_io(a, "write 0 1M")
        q, c = start(node_arg(a))
        with q:
            io(c, "n0", "write 5M 64k")
            cmd(c, "block-dirty-bitmap-add", node="n0", name="new",
                  persistent=True)
            kill9(q)
        # what QEMU's own check says of the same state: nothing
        check_clean(a)
        assert img_bitmaps(a) == {"a": (["in-use", "auto"], 65536),
                                  "b": (["in-use", "auto"], 65536)}
        q, c = start(node_arg(a))
        with q:
            b = bitmaps(c, "n0")
            for name in ("a", "b"):
                assert b[name] == {"name": name, "count": 0,
                                   "granularity": 65536,
                                   "recording": False, "busy": False,
                                   "persistent": True,
                                   "inconsistent": True}, b
            cmd(c, "block-dirty-bitmap-add", node="n0", name="ok")
            msg = "Bitmap 'a' is inconsistent and cannot be used"
            for verb, args in (("clear", {"name": "a"}),
                              ("enable", {"name": "a"}),
                              ("disable", {"name": "a"}),
                              ("merge", {"target": "a", "bitmaps": ["ok"]}),
                              ("merge", {"target": "ok", "bitmaps": ["a"]}),
                              ("merge", {"target": "ok", "bitmaps": [
                                  {"node": "n0", "name": "a"}]})):
                assert err(c, "block-dirty-bitmap-" + verb, node="n0",
                           **args) == msg, (verb, args)
            assert err(c, "block-dirty-bitmap-add", node="n0", name="a",
                       persistent=True) == "Bitmap already exists: a"
            # the first in the image's directory is named
            assert err(c, "block_resize", **{"node-name": "n0",
                                             "size": 128 * MiB}) == \
                "Bitmap 'a' is inconsistent and cannot be used"
            cmd(c, "block-dirty-bitmap-remove", node="n0", name="a")
            assert list(img_bitmaps(a)) == ["b"]
            quit(q, c)
        # an inconsistent bitmap stays in the image as it is
        assert img_bitmaps(a) == {"b": (["in-use", "auto"], 65536)}
        check_clean(a)
        q, c = start(node_arg(a))
        with q:
            assert bitmaps(c, "n0")["b"].get("inconsistent")
            cmd(c, "block-dirty-bitmap-remove", node="n0", name="b")
            cmd(c, "block_resize", **{"node-name": "n0", "size": 128 * MiB})
            quit(q, c)
        assert img_bitmaps(a) == {}
        check_clean(a)


def test_read_only():
    """Bitmaps of an image opened read-only are read-only; blockdev-reopen
    read-write marks them in use, read-only stores them."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        img("bitmap", "--add", a, "a")
        img("bitmap", "--add", "--disable", a, "dis")
        qemu_io(a, "write 1M 128k")
        q, c = start(["-blockdev", "driver=file,filename=%s,node-name=f0"
                      % a, "-blockdev",
                      "driver=qcow2,file=f0,node-name=n0,read-only=on"])
        with q:
            assert counts(c, "n0") == {"a": 131072, "dis": 0}
            assert img_bitmaps(a) == {"a": (["auto"], 65536),
                                      "dis": ([], 65536)}
            msg = "Bitmap 'a' is readonly and cannot be modified"
            assert err(c, "block-dirty-bitmap-clear", node="n0",
                       name="a") == msg
            assert err(c, "block-dirty-bitmap-remove", node="n0",
                       name="a") == msg
            cmd(c, "block-dirty-bitmap-add", node="n0", name="t")
            assert err(c, "block-dirty-bitmap-merge", node="n0", target="a",
                       bitmaps=["t"]) == msg
            cmd(c, "block-dirty-bitmap-merge", node="n0", target="t",
                  bitmaps=["a"])
            cmd(c, "block-dirty-bitmap-enable", node="n0", name="dis")
            cmd(c, "block-dirty-bitmap-disable", node="n0", name="dis")
            reopen = {"driver": "qcow2", "node-name": "n0", "file": "f0"}
            cmd(c, "blockdev-reopen", options=[dict(reopen,
                                                   **{"read-only": False})])
            assert img_bitmaps(a) == {"a": (["in-use", "auto"], 65536),
                                      "dis": (["in-use"], 65536)}
            cmd(c, "block-dirty-bitmap-add", node="n0", name="new",
                  persistent=True)
            io(c, "n0", "write 7M 64k")
            cmd(c, "blockdev-reopen", options=[dict(reopen,
                                                   **{"read-only": True})])
            assert img_bitmaps(a) == {"a": (["auto"], 65536),
                                      "dis": ([], 65536),
                                      "new": (["auto"], 65536)}
            check_clean(a)
            assert err(c, "block-dirty-bitmap-clear", node="n0",
                       name="new") == \
                "Bitmap 'new' is readonly and cannot be modified"
            cmd(c, "blockdev-reopen", options=[dict(reopen,
                                                   **{"read-only": False})])
            cmd(c, "block-dirty-bitmap-clear", node="n0", name="new")
            assert counts(c, "n0") == {"new": 0, "t": 131072 + 65536,
                                       "a": 131072 + 65536, "dis": 0}, \
                counts(c, "n0")
            quit(q, c)
        assert img_bitmaps(a)["new"] == (["auto"], 65536)
        check_clean(a)


def test_remove_during_writeback():
    """Removing a stored bitmap while the image's metadata writeback is
    held (blkdebug breakpoint): the bitmap is busy and the image
    untouched until the writeback is done; then it goes, cleanly."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"), "8M", "-o",
                   "cluster_size=512")
        qemu_io(a, "write -P 1 0 6M")
        img("bitmap", "--add", a, "pb")
        q, c = start(["-blockdev", json.dumps({
            "driver": "qcow2", "node-name": "n0", "discard": "unmap",
            "file": {"driver": "blkdebug", "image": {
                "driver": "file", "filename": a}}})])
        with q:
            c2 = q.connect()
            # a flush that must load a refcount block to free clusters
            io(c, "n0", "break refblock_load A")
            io(c, "n0", "discard 0 64k")
            io(c, "n0", "aio_flush")
            io(c, "n0", "wait_break A")
            c2.send_raw(json.dumps({"execute": "block-dirty-bitmap-remove",
                                    "arguments": {"node": "n0",
                                                  "name": "pb"}}))
            deadline = time.time() + 30
            while not bitmaps(c, "n0")["pb"]["busy"]:
                assert time.time() < deadline
                time.sleep(0.01)
            assert err(c, "block-dirty-bitmap-clear", node="n0",
                       name="pb") == ("Bitmap 'pb' is currently in use by "
                                      "another operation and cannot be used")
            assert list(img_bitmaps(a)) == ["pb"]
            io(c, "n0", "resume A")
            assert c2.reply() == {"return": {}}
            assert bitmaps(c, "n0") == {}
            assert img_bitmaps(a) == {}
            quit(q, c)
        check_clean(a)


def test_write_blocking_mirror():
    """Writes a write-blocking mirror takes over still reach the source's
    bitmaps (QEMU's bitmaps count them)."""
    need_tools()
    with Tmp() as d:
        src = create(os.path.join(d, "src.qcow2"))
        dst = create(os.path.join(d, "dst.qcow2"))
        q, c = start(node_arg(src) + node_arg(dst, "t0"))
        with q:
            cmd(c, "block-dirty-bitmap-add", node="n0", name="a")
            cmd(c, "blockdev-mirror", device="n0", target="t0", sync="full",
                **{"job-id": "j", "copy-mode": "write-blocking"})
            c.event("BLOCK_JOB_READY")
            io(c, "n0", "write 0 64k")
            io(c, "n0", "write -z 1M 64k")
            assert counts(c, "n0") == {"a": 2 * 65536}, counts(c, "n0")
            cmd(c, "block-job-cancel", device="j", force=True)
            c.event("BLOCK_JOB_CANCELLED")
            quit(q, c)


def test_resize():
    """block_resize grows the bitmaps; they are stored at the new size."""
    need_qemu()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        q, c = start(node_arg(a))
        with q:
            cmd(c, "block-dirty-bitmap-add", node="n0", name="a",
                  persistent=True)
            io(c, "n0", "write 0 64k")
            cmd(c, "block_resize", **{"node-name": "n0", "size": 200 * MiB})
            io(c, "n0", "write 150M 64k")
            assert counts(c, "n0") == {"a": 2 * 65536}
            quit(q, c)
        check_clean(a)
        q, c = start(node_arg(a), qemu=True)
        with q:
            assert counts(c, "n0") == {"a": 2 * 65536}
            quit(q, c)


def test_stale_extension():
    """A bitmaps extension without its autoclear bit (a program without
    bitmap support wrote the image) is dropped with QEMU's warning; the
    clusters it used leak, as with QEMU."""
    need_tools()
    with Tmp() as d:
        a = create(os.path.join(d, "a.qcow2"))
        img("bitmap", "--add", a, "a")
        with open(a, "r+b") as f:
            f.seek(88)
            f.write(struct.pack(">Q", 0))
        q, c = start(node_arg(a))
        with q:
            assert bitmaps(c, "n0") == {}
            quit(q, c)
            assert "a program lacking bitmap support modified this file" \
                in q.stderr_text(), q.stderr_text()
        assert img_bitmaps(a) == {}
        corruptions, leaks, errors = check(a)
        assert corruptions == 0 and errors == 0 and leaks > 0


if __name__ == "__main__":
    run([test_add, test_too_big, test_not_found, test_recording,
         test_persistence, test_qemu_to_qmpd, test_qmpd_to_qemu,
         test_kill9_inconsistent, test_read_only,
         test_remove_during_writeback, test_write_blocking_mirror,
         test_resize,
         test_stale_extension])
