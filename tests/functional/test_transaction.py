#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""transaction: bitmap and snapshot actions, all or none.

Each scenario runs on qmpd and, when qemu-system-x86_64 is installed,
on QEMU with the same command line; every reply (result or error
message) and the final state (query-block, the named nodes with their
backing and dirty bitmaps and counts) must be the same.  The expected
messages are also written here, so that the test means the same without
QEMU.  Images pass qemu-img check afterwards.
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Skip, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
from test_bitmaps import quit, start  # noqa: E402

ABORTED = "Transaction aborted using Abort action"


def act(t, **data):
    return {"type": t, "data": data}


def bitmap(name, node="n0"):
    return {"node": node, "name": name}


class Run:
    """One scenario on one program: a transcript of replies."""

    def __init__(self, d, qemu):
        self.d = d
        self.log = []
        self.q, self.c = start(["-drive", "if=none,id=d0,format=qcow2,"
                                "node-name=n0,file=%s" %
                                os.path.join(d, "a.qcow2")], qemu=qemu)

    def do(self, cmd, **args):
        r = self.c.execute(cmd, args or None)
        out = r.get("return", r.get("error", {}).get("desc"))
        if cmd != "human-monitor-command":
            self.log.append((cmd, out))
        return out

    def txn(self, *actions, **props):
        args = {"actions": list(actions)}
        if props:
            args["properties"] = props
        return self.do("transaction", **args)

    def write(self, off, length, node="n0"):
        self.do("human-monitor-command", **{
            "command-line": 'qemu-io %s "write %d %d"' % (node, off, length)})

    def state(self):
        """What must match: devices, named nodes, bitmaps (paths made
        relative, generated node names dropped)."""
        def rel(s):
            return s.replace(self.d + "/", "") if isinstance(s, str) else s
        blk = [(b["device"], b.get("inserted", {}).get("node-name"),
                rel(b.get("inserted", {}).get("file")))
               for b in self.c.cmd("query-block")]
        nodes = []
        for n in self.c.cmd("query-named-block-nodes", flat=True):
            if n["node-name"].startswith("#"):
                continue
            bms = sorted((b.get("name"), b["count"], b["recording"],
                          b["busy"], b["persistent"], b["granularity"])
                         for b in n.get("dirty-bitmaps", []))
            nodes.append((n["node-name"], rel(n["file"]), n["ro"],
                          rel(n.get("backing_file")),
                          n["backing_file_depth"], bms))
        return blk, sorted(nodes)

    def end(self):
        self.log.append(("state", self.state()))
        quit(self.q, self.c)
        self.q.close()


def scenario(fn):
    """Run @fn(Run) on qmpd and on QEMU in fresh directories; compare."""
    need_tools()
    logs = []
    for qemu in ([False, True] if qemu_binary() else [False]):
        d = tempfile.mkdtemp(prefix="qmpd-txn-")
        try:
            img("create", "-q", "-f", "qcow2", os.path.join(d, "a.qcow2"),
                "4M")
            img("create", "-q", "-f", "qcow2", os.path.join(d, "ov.qcow2"),
                "4M")
            r = Run(d, qemu)
            fn(r)
            r.end()
            for f in sorted(os.listdir(d)):
                if f.endswith(".qcow2"):
                    check_clean(os.path.join(d, f))
            logs.append(r.log)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if len(logs) == 2:
        for a, b in zip(logs[0], logs[1]):
            assert a == b, "qmpd %r\nQEMU %r" % (a, b)
        assert len(logs[0]) == len(logs[1])
    return logs[0]


def test_abort_and_properties():
    def fn(r):
        assert r.txn(act("abort")) == ABORTED
        assert r.txn() == {}
        assert r.do("transaction", actions=[],
                    properties={"completion-mode": "grouped"}) == {}
        assert r.do("transaction", actions=[
            act("block-dirty-bitmap-add", **bitmap("b0"))],
            properties={"completion-mode": "grouped"}) == \
            "Action 'block-dirty-bitmap-add' does not support Transaction " \
            "property completion-mode = grouped"
        assert r.do("transaction", actions=[act("abort")],
                    properties={"completion-mode": "grouped"}) == ABORTED
        assert r.do("transaction", actions=[
            act("block-dirty-bitmap-add", **bitmap("b0"))],
            properties={"completion-mode": "individual"}) == {}
    scenario(fn)


def test_each_action():
    def fn(r):
        assert r.txn(act("block-dirty-bitmap-add", granularity=65536,
                         **bitmap("a"))) == {}
        assert r.txn(act("block-dirty-bitmap-add", persistent=True,
                         disabled=True, **bitmap("p"))) == {}
        r.write(0, 65536)
        r.write(1 << 20, 4096)
        assert r.txn(act("block-dirty-bitmap-add", **bitmap("m"))) == {}
        assert r.txn(act("block-dirty-bitmap-merge", node="n0", target="m",
                         bitmaps=["a"])) == {}
        assert r.txn(act("block-dirty-bitmap-enable", **bitmap("p"))) == {}
        assert r.txn(act("block-dirty-bitmap-disable", **bitmap("a"))) == {}
        r.write(2 << 20, 65536)
        assert r.txn(act("block-dirty-bitmap-clear", **bitmap("m"))) == {}
        assert r.txn(act("block-dirty-bitmap-remove", **bitmap("a"))) == {}
        assert r.txn(act("block-dirty-bitmap-remove", **bitmap("a"))) == \
            "Dirty bitmap 'a' not found"
        assert r.txn(act("block-dirty-bitmap-add", **bitmap("p"))) == \
            "Bitmap already exists: p"
        assert r.txn(act("block-dirty-bitmap-clear", **bitmap("x", "nx"))) \
            == "Node 'nx' not found"
        # a persistent bitmap leaves the image at commit
        assert r.txn(act("block-dirty-bitmap-remove", **bitmap("p")),
                     act("block-dirty-bitmap-add", persistent=True,
                         **bitmap("p2"))) == {}
    scenario(fn)


def test_rollback_bitmaps():
    """A failing last action undoes every earlier one: added bitmaps are
    gone, removed, cleared, disabled, enabled and merged ones are back
    with their bits."""
    def fn(r):
        for b in ("r", "c", "dis", "m"):
            assert r.do("block-dirty-bitmap-add", **bitmap(b)) == {}
        assert r.do("block-dirty-bitmap-add", disabled=True,
                    **bitmap("en")) == {}
        r.write(0, 65536)
        assert r.do("block-dirty-bitmap-add", **bitmap("src")) == {}
        r.write(3 << 20, 65536)
        before = r.state()
        for last in (act("abort"),
                     act("block-dirty-bitmap-add", **bitmap("new")),
                     act("block-dirty-bitmap-clear", **bitmap("r")),
                     act("block-dirty-bitmap-merge", node="n0", target="m",
                         bitmaps=["nosuch"])):
            out = r.txn(act("block-dirty-bitmap-add", **bitmap("new")),
                        act("block-dirty-bitmap-remove", **bitmap("r")),
                        act("block-dirty-bitmap-clear", **bitmap("c")),
                        act("block-dirty-bitmap-disable", **bitmap("dis")),
                        act("block-dirty-bitmap-enable", **bitmap("en")),
                        act("block-dirty-bitmap-merge", node="n0",
                            target="m", bitmaps=["src"]),
                        last)
            assert out in (ABORTED, "Bitmap already exists: new",
                           "Bitmap 'r' is currently in use by another "
                           "operation and cannot be used",
                           "Dirty bitmap 'nosuch' not found"), out
            assert r.state() == before
        # a bitmap being removed is busy for the rest of the transaction
        assert r.txn(act("block-dirty-bitmap-remove", **bitmap("r")),
                     act("block-dirty-bitmap-remove", **bitmap("r"))) == \
            "Bitmap 'r' is currently in use by another operation and " \
            "cannot be used"
        assert r.state() == before
        # and the whole list once more, committed
        assert r.txn(act("block-dirty-bitmap-add", **bitmap("new")),
                     act("block-dirty-bitmap-remove", **bitmap("r")),
                     act("block-dirty-bitmap-clear", **bitmap("c")),
                     act("block-dirty-bitmap-disable", **bitmap("dis")),
                     act("block-dirty-bitmap-enable", **bitmap("en")),
                     act("block-dirty-bitmap-merge", node="n0",
                         target="m", bitmaps=["src"])) == {}
    scenario(fn)


def test_libvirt_shapes():
    """blockcommit/blockcopy pivot: add libvirt-tmp-activewrite, later
    merge it; blockcopy --shallow --reuse-external: blockdev-snapshot
    onto an overlay from blockdev-add; checkpoint + external snapshot:
    bitmap add + blockdev-snapshot-sync."""
    def fn(r):
        assert r.txn(act("block-dirty-bitmap-add", persistent=False,
                         disabled=False,
                         **bitmap("libvirt-tmp-activewrite"))) == {}
        r.write(0, 65536)
        assert r.txn(act("block-dirty-bitmap-add", persistent=True,
                         disabled=True, **bitmap("chk"))) == {}
        assert r.txn(act("block-dirty-bitmap-merge", node="n0",
                         target="chk",
                         bitmaps=[bitmap("libvirt-tmp-activewrite")]),
                     act("block-dirty-bitmap-remove",
                         **bitmap("libvirt-tmp-activewrite"))) == {}
        assert r.do("blockdev-add", driver="qcow2", **{
            "node-name": "ov", "file": {"driver": "file", "filename":
                                        os.path.join(r.d, "ov.qcow2")}}) == {}
        assert r.txn(act("blockdev-snapshot", node="n0",
                         overlay="ov")) == {}
        r.write(65536, 65536, "ov")
        assert r.txn(act("block-dirty-bitmap-add", persistent=True,
                         **bitmap("chk2", "ov")),
                     act("blockdev-snapshot-sync", **{
                         "node-name": "ov", "snapshot-node-name": "s2",
                         "snapshot-file": os.path.join(r.d, "s2.qcow2")})) \
            == {}
    scenario(fn)


def test_rollback_snapshots():
    """Snapshots prepared before a failing action are undone: the
    device keeps its node, the added overlay has no backing; a
    snapshot-sync overlay is gone (its file stays, as in QEMU)."""
    def fn(r):
        assert r.do("block-dirty-bitmap-add", **bitmap("b")) == {}
        r.write(0, 65536)
        assert r.do("blockdev-add", driver="qcow2", **{
            "node-name": "ov", "file": {"driver": "file", "filename":
                                        os.path.join(r.d, "ov.qcow2")}}) == {}
        before = r.state()
        assert r.txn(act("blockdev-snapshot", node="n0", overlay="ov"),
                     act("block-dirty-bitmap-clear", **bitmap("b")),
                     act("abort")) == ABORTED
        assert r.state() == before
        assert r.txn(act("blockdev-snapshot-sync", **{
            "device": "d0", "snapshot-node-name": "s1",
            "snapshot-file": os.path.join(r.d, "s1.qcow2")}),
            act("block-dirty-bitmap-add", **bitmap("b"))) == \
            "Bitmap already exists: b"
        assert r.state() == before
        # both in one transaction, then a failure
        assert r.txn(act("blockdev-snapshot", node="n0", overlay="ov"),
                     act("blockdev-snapshot-sync", **{
                         "node-name": "ov", "snapshot-node-name": "s2",
                         "snapshot-file": os.path.join(r.d, "s2.qcow2")}),
                     act("block-dirty-bitmap-remove", **bitmap("zz"))) == \
            "Dirty bitmap 'zz' not found"
        assert r.state() == before
        # and it still works afterwards
        assert r.txn(act("blockdev-snapshot", node="n0", overlay="ov")) == {}
        r.write(0, 4096)
    scenario(fn)


def test_unsupported():
    """drive-backup actions (and internal snapshots) are refused clearly
    (blockdev-backup fails on its own checks here), and
    refusing them undoes what came before."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-txn-")
    try:
        img("create", "-q", "-f", "qcow2", os.path.join(d, "a.qcow2"), "4M")
        r = Run(d, False)
        for t, data in (("blockdev-backup", {"device": "n0", "target": "n0",
                                             "sync": "full"}),
                        ("drive-backup", {"device": "n0", "target": "x",
                                          "sync": "full"}),
                        ("blockdev-snapshot-internal-sync",
                         {"device": "d0", "name": "s"})):
            out = r.txn(act("block-dirty-bitmap-add", **bitmap("b")),
                        act(t, **data))
            # blockdev-backup is a real action: its own error undoes too
            want = ("Source and target cannot be the same"
                    if t == "blockdev-backup" else
                    "Transaction action '%s' is not supported by qmpd yet"
                    % t)
            assert out == want, out
            assert r.state()[1][0][5] == [], r.state()
        r.end()
        check_clean(os.path.join(d, "a.qcow2"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if not shutil.which("qemu-img"):
        raise Skip("qemu-img not installed")
    run([test_abort_and_properties, test_each_action, test_rollback_bitmaps,
         test_libvirt_shapes, test_rollback_snapshots, test_unsupported])
