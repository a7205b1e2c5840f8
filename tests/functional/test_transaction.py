#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""transaction: bitmap, snapshot and backup actions, all or none.

Each bitmap and snapshot scenario runs on qmpd and, when
qemu-system-x86_64 is installed, on QEMU with the same command line;
every reply (result or error message) and the final state (query-block,
the named nodes with their backing and dirty bitmaps and counts) must be
the same.  The expected messages are also written here, so that the test
means the same without QEMU.  The backup scenarios (completion-mode
grouped, drive-backup actions) run on qmpd against the event sequences
QEMU 7.2 gave for them.  Images pass qemu-img check afterwards.
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import need_qemu_utils, qemu_binary, run  # noqa: E402
from images import (check_clean, img, need_tools, qcow2_node,  # noqa: E402
                    qemu_io, same_content)
from test_bitmaps import quit, start  # noqa: E402
from test_mirror import (events_until, hmp_io, until_event,  # noqa: E402
                         until_status)

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


def test_snapshot_onto_mirror_target():
    """libvirt's blockcopy --shallow --reuse-external pivot: a mirror's
    target, only written so far, takes its backing in blockdev-snapshot
    while the job runs; an overlay whose users read it (a drive's root)
    is in use."""
    def fn(r):
        r.write(0, 65536)
        img("create", "-q", "-f", "qcow2", os.path.join(r.d, "b2.qcow2"),
            "4M")
        assert r.do("blockdev-add", driver="qcow2", backing=None, **{
            "node-name": "ov", "file": {"driver": "file", "filename":
                                        os.path.join(r.d, "ov.qcow2")}}) == {}
        assert r.do("blockdev-add", driver="qcow2", **{
            "node-name": "b2", "file": {"driver": "file", "filename":
                                        os.path.join(r.d, "b2.qcow2")}}) == {}
        assert r.do("blockdev-mirror", device="n0", target="ov", sync="top",
                    **{"job-id": "m", "auto-dismiss": False}) == {}
        until_status(r.c, "m", "ready")
        assert r.txn(act("blockdev-snapshot", node="b2", overlay="ov")) == {}
        assert r.do("blockdev-del", **{"node-name": "ov"}) == \
            "Node ov is in use"
        assert r.do("job-complete", id="m") == {}
        until_status(r.c, "m", "concluded")
        assert r.do("job-dismiss", id="m") == {}
        assert r.do("blockdev-add", driver="qcow2", **{
            "node-name": "b3", "file": {"driver": "file", "filename":
                                        os.path.join(r.d, "b2.qcow2"),
                                        "locking": "off"},
            "read-only": True}) == {}
        assert r.txn(act("blockdev-snapshot", node="b3", overlay="ov")) == \
            "The overlay is already in use"
    scenario(fn)


# ---- backup jobs in transactions -------------------------------------
#
# The expected event sequences below are those QEMU 7.2 gave for the
# same scenarios (run by hand against qemu-system-x86_64 -M none): in a
# grouped transaction the jobs are finalized newest first; a job still
# running when another fails is only woken for its cancel when its turn
# comes, so its "aborting" follows the jobs before it in that order.

def log(evs):
    """Job events as short strings: 'j0:running', 'ERROR j1 write report',
    'COMPLETED j1 Input/output error', 'CANCELLED j0', 'PENDING j0'."""
    out = []
    for e in evs:
        d = e["data"]
        if e["event"] == "JOB_STATUS_CHANGE":
            out.append("%s:%s" % (d["id"], d["status"]))
        elif e["event"] == "BLOCK_JOB_ERROR":
            out.append("ERROR %s %s %s" % (d["device"], d["operation"],
                                           d["action"]))
        elif e["event"] == "BLOCK_JOB_COMPLETED":
            out.append(("COMPLETED %s %s" % (d["device"], d.get("error", "")))
                       .strip())
        elif e["event"].startswith("BLOCK_JOB_"):
            out.append("%s %s" % (e["event"][10:],
                                  d.get("device", d.get("id"))))
    return out


def until_all(c, ends, timeout=30):
    """Events until each (job, status) of @ends was reached."""
    left = set(ends)

    def reached(e):
        if e["event"] == "JOB_STATUS_CHANGE":
            left.discard((e["data"]["id"], e["data"]["status"]))
        return not left
    return events_until(c, reached, timeout)


START2 = ["j0:created", "j1:created", "j0:running", "j0:paused",
          "j1:running", "j1:paused", "j0:running", "j1:running"]


class Drives:
    """@n drives drive0.. (16 MiB qcow2, drive i filled with pattern i+1)
    and targets t0.. (blockdev-add; those in @failing write through
    blkdebug with @rule); the data as raw files for comparisons."""

    def __init__(self, n, failing=(), rule=None, bitmaps=False):
        need_tools()
        self.d = tempfile.mkdtemp(prefix="qmpd-txn-")
        self.n = n
        args = []
        for i in range(n):
            src = self.path("s%d.qcow2" % i)
            img("create", "-q", "-f", "qcow2", src, "16M")
            img("create", "-q", "-f", "qcow2", self.path("t%d.qcow2" % i),
                "16M")
            qemu_io(src, "write -q -P %d 0 16M" % (i + 1))
            img("convert", "-O", "raw", src, self.path("s%d.raw" % i))
            args += ["-drive", "file=%s,if=none,id=drive%d,format=qcow2"
                     % (src, i)]
        self.q, self.c = start(args)
        for i in range(n):
            self.c.cmd("blockdev-add", **qcow2_node(
                "t%d" % i, self.path("t%d.qcow2" % i),
                [rule or {"event": "write_aio", "errno": 5}]
                if i in failing else None))
            if bitmaps:
                assert "return" in self.c.execute("block-dirty-bitmap-add", {
                    "node": "drive%d" % i, "name": "b%d" % i})

    def path(self, name):
        return os.path.join(self.d, name)

    def txn(self, *acts, mode="grouped"):
        return self.c.execute("transaction", {
            "actions": list(acts), "properties": {"completion-mode": mode}})

    def bitmaps(self):
        """(device, name, count, busy, recording) of every bitmap shown."""
        return [(b["device"], m.get("name"), m["count"], m["busy"],
                 m["recording"])
                for b in self.c.cmd("query-block")
                for m in b["inserted"].get("dirty-bitmaps", [])]

    def close(self, backed_up=(), copies=()):
        """Quit; images pass qemu-img check; the targets in @backed_up
        hold their source's data, and so do the other (image, raw)
        pairs in @copies (checked once qmpd is gone: a job's own target
        is closed only after its last event)."""
        quit(self.q, self.c)
        self.q.close()
        try:
            for i in range(self.n):
                check_clean(self.path("s%d.qcow2" % i))
                check_clean(self.path("t%d.qcow2" % i))
            for i in backed_up:
                same_content(self.path("t%d.qcow2" % i),
                             self.path("s%d.raw" % i))
            for image, raw in copies:
                check_clean(self.path(image))
                same_content(self.path(image), self.path(raw))
        finally:
            shutil.rmtree(self.d, ignore_errors=True)


def backup(i, speed=0, **extra):
    data = {"device": "drive%d" % i, "target": "t%d" % i, "sync": "full",
            "job-id": "j%d" % i, "speed": speed}
    data.update(extra)
    return act("blockdev-backup", **data)


def test_grouped_failure():
    """One job fails: the others are cancelled; each ends newest first,
    the failed one with its error.  Also a job failing in a group of
    three, and an older job failing."""
    cases = [
        # (jobs' speeds in MiB/s, failing job, expected after START)
        ((1, 0), 1, ["ERROR j1 write report", "j1:aborting",
                     "COMPLETED j1 Input/output error", "j1:concluded",
                     "j1:null", "j0:aborting", "CANCELLED j0",
                     "j0:concluded", "j0:null"]),
        ((0, 1), 0, ["ERROR j0 write report", "j0:aborting", "j1:aborting",
                     "CANCELLED j1", "j1:concluded", "j1:null",
                     "COMPLETED j0 Input/output error", "j0:concluded",
                     "j0:null"]),
        ((1, 0, 1), 1, ["ERROR j1 write report", "j1:aborting",
                        "j2:aborting", "CANCELLED j2", "j2:concluded",
                        "j2:null", "COMPLETED j1 Input/output error",
                        "j1:concluded", "j1:null", "j0:aborting",
                        "CANCELLED j0", "j0:concluded", "j0:null"]),
    ]
    for speeds, failing, want in cases:
        n = len(speeds)
        ds = Drives(n, failing=[failing])
        try:
            r = ds.txn(*[backup(i, sp << 20) for i, sp in enumerate(speeds)])
            assert r == {"return": {}}, r
            evs = until_all(ds.c, [("j%d" % i, "null") for i in range(n)])
            start_ = ["j%d:created" % i for i in range(n)]
            for i in range(n):
                start_ += ["j%d:running" % i, "j%d:paused" % i]
            start_ += ["j%d:running" % i for i in range(n)]
            assert log(evs) == start_ + want, log(evs)
            assert ds.c.cmd("query-block-jobs") == []
            # the nodes are free again: a new backup of each runs through
            for i in range(n):
                if i != failing:
                    assert ds.txn(backup(i)) == {"return": {}}
                    until_status(ds.c, "j%d" % i, "null")
        finally:
            ds.close(backed_up=[i for i in range(n) if i != failing])


def test_grouped_failure_while_waiting():
    """A job that finished waits for the others; when one of them fails
    it is cancelled after all (offset == len): nothing was committed."""
    rule = {"event": "write_aio", "errno": 5, "sector": (8 << 20) // 512}
    ds = Drives(2, failing=[1], rule=rule)
    try:
        assert ds.txn(backup(0), backup(1, 4 << 20)) == {"return": {}}
        evs = until_all(ds.c, [("j0", "null"), ("j1", "null")])
        assert log(evs) == START2 + [
            "j0:waiting", "ERROR j1 write report", "j1:aborting",
            "COMPLETED j1 Input/output error", "j1:concluded", "j1:null",
            "j0:aborting", "CANCELLED j0", "j0:concluded", "j0:null"], \
            log(evs)
        done = [e["data"] for e in evs
                if e["event"] == "BLOCK_JOB_CANCELLED"][0]
        assert done["offset"] == done["len"] == 16 << 20, done
    finally:
        ds.close(backed_up=[0])


def test_grouped_success():
    """All jobs wait for the slowest, then become pending and complete
    together, newest first; each target is the point-in-time copy of its
    source although the guest wrote during the jobs."""
    ds = Drives(2)
    try:
        assert ds.txn(backup(0, 8 << 20), backup(1)) == {"return": {}}
        hmp_io(ds.c, "write -P 0x66 1M 64k", "drive0")
        hmp_io(ds.c, "write -P 0x66 15M 64k", "drive0")
        evs = until_all(ds.c, [("j0", "null"), ("j1", "null")])
        assert log(evs) == START2 + [
            "j1:waiting", "j0:waiting", "j1:pending", "j0:pending",
            "COMPLETED j1", "j1:concluded", "j1:null",
            "COMPLETED j0", "j0:concluded", "j0:null"], log(evs)
    finally:
        ds.close(backed_up=[0, 1])


def test_grouped_cancel():
    """Cancelling one job of the group cancels all, whether it runs or
    waits, and also when it is pending (auto-finalize off)."""
    ds = Drives(2)
    try:
        assert ds.txn(backup(0, 1 << 20), backup(1, 1 << 20)) == \
            {"return": {}}
        ds.c.cmd("block-job-cancel", device="j0")
        evs = until_all(ds.c, [("j0", "null"), ("j1", "null")])
        assert log(evs) == START2 + [
            "j0:aborting", "j1:aborting", "CANCELLED j1", "j1:concluded",
            "j1:null", "CANCELLED j0", "j0:concluded", "j0:null"], log(evs)
        # j0 done and waiting; cancelling j1 ends both
        assert ds.txn(backup(0), backup(1, 2 << 20)) == {"return": {}}
        until_status(ds.c, "j0", "waiting")
        ds.c.cmd("block-job-cancel", device="j1")
        evs = until_all(ds.c, [("j0", "null"), ("j1", "null")])
        assert log(evs) == [
            "j1:aborting", "CANCELLED j1", "j1:concluded", "j1:null",
            "j0:aborting", "CANCELLED j0", "j0:concluded", "j0:null"], \
            log(evs)
        # both pending (j0 waits for job-finalize): job-cancel on j1
        assert ds.txn(backup(0, **{"auto-finalize": False}),
                      backup(1)) == {"return": {}}
        evs = until_all(ds.c, [("j0", "pending"), ("j1", "pending")])
        evs += until_event(ds.c, "BLOCK_JOB_PENDING")
        assert log(evs)[-3:] == ["j1:pending", "j0:pending", "PENDING j0"], \
            log(evs)
        ds.c.cmd("job-cancel", id="j1")
        evs = until_all(ds.c, [("j0", "null"), ("j1", "null")])
        assert log(evs) == [
            "j1:aborting", "CANCELLED j1", "j1:concluded", "j1:null",
            "j0:aborting", "CANCELLED j0", "j0:concluded", "j0:null"], \
            log(evs)
    finally:
        ds.close()


def test_grouped_finalize():
    """auto-finalize off: all wait in pending; job-finalize on one
    finalizes the group."""
    ds = Drives(2)
    try:
        manual = {"auto-finalize": False, "auto-dismiss": False}
        assert ds.txn(backup(0, 8 << 20, **manual), backup(1, **manual)) \
            == {"return": {}}
        evs = until_all(ds.c, [("j0", "pending"), ("j1", "pending")])
        evs += until_event(ds.c, "BLOCK_JOB_PENDING")
        assert log(evs) == START2 + [
            "j1:waiting", "j0:waiting", "j1:pending", "PENDING j1",
            "j0:pending", "PENDING j0"], log(evs)
        assert [j["status"] for j in ds.c.cmd("query-jobs")] == \
            ["pending", "pending"]
        ds.c.cmd("job-finalize", id="j1")
        evs = until_all(ds.c, [("j0", "concluded"), ("j1", "concluded")])
        assert log(evs) == ["COMPLETED j1", "j1:concluded", "COMPLETED j0",
                            "j0:concluded"], log(evs)
        assert ds.c.error("job-finalize", id="j0") == (
            "GenericError", "Job 'j0' in state 'concluded' cannot accept "
            "command verb 'finalize'")
        for j in ("j0", "j1"):
            ds.c.cmd("job-dismiss", id=j)
    finally:
        ds.close(backed_up=[0, 1])


def test_grouped_bitmaps():
    """sync=bitmap in a grouped transaction: one job failing gives every
    bitmap back per its bitmap-mode for a failure (on-success and never:
    the old bits plus what was written meanwhile; always: what was not
    copied plus the writes), though the other job had finished its copy;
    on success on-success keeps only the writes."""
    rule = {"event": "write_aio", "errno": 5, "sector": (4 << 20) // 512}
    old = 8 << 20
    new = 64 << 10
    for mode in ("on-success", "never", "always", None):
        ds = Drives(2, failing=[1] if mode else [], rule=rule, bitmaps=True)
        try:
            for i in range(2):
                hmp_io(ds.c, "write -P 3 0 8M", "drive%d" % i)
            acts = [backup(i, [0, 4 << 20][i], sync="bitmap",
                           bitmap="b%d" % i,
                           **{"bitmap-mode": mode or "on-success"})
                    for i in range(2)]
            assert ds.txn(*acts) == {"return": {}}
            for i in range(2):
                hmp_io(ds.c, "write -P 4 12M 64k", "drive%d" % i)
            until_all(ds.c, [("j0", "null"), ("j1", "null")])
            got = [(d, m, c, busy, rec) for d, m, c, busy, rec
                   in ds.bitmaps() if m]
            if mode in ("on-success", "never"):
                want = [(d, b, old + new, False, True)
                        for d, b in (("drive0", "b0"), ("drive1", "b1"))]
            elif mode == "always":
                # j0 had copied everything; j1 stopped at its error
                assert got[0] == ("drive0", "b0", new, False, True), got
                assert new < got[1][2] < old + new, got
                want = got
            else:
                want = [(d, b, new, False, True)
                        for d, b in (("drive0", "b0"), ("drive1", "b1"))]
            assert got == want, (mode, got)
            # no job bitmap is left behind
            assert len(ds.bitmaps()) == 2, ds.bitmaps()
        finally:
            ds.close()


def test_abort_backup_bitmap():
    """A backup action undone by a later failure is cancelled before it
    ran (created, aborting, concluded, null); its bitmap is back as
    before for on-success and never, and all dirty (listed first) for
    always, as QEMU 7.2 does."""
    ds = Drives(1, bitmaps=True)
    try:
        assert "return" in ds.c.execute("block-dirty-bitmap-add", {
            "node": "drive0", "name": "other"})
        hmp_io(ds.c, "write -P 3 0 4M", "drive0")
        for mode, want in (
                ("on-success", [("other", 4 << 20), ("b0", 4 << 20)]),
                ("never", [("other", 4 << 20), ("b0", 4 << 20)]),
                ("always", [("b0", 16 << 20), ("other", 4 << 20)])):
            r = ds.txn(backup(0, sync="bitmap", bitmap="b0",
                              **{"bitmap-mode": mode}),
                       act("abort"), mode="individual")
            assert r["error"]["desc"] == ABORTED, r
            evs = until_status(ds.c, "j0", "null")
            assert log(evs) == ["j0:created", "j0:aborting", "j0:concluded",
                                "j0:null"], log(evs)
            got = [(m, c) for _, m, c, busy, rec in ds.bitmaps()]
            assert got == want, (mode, got)
    finally:
        ds.close()


def test_drive_backup_action():
    """drive-backup as an action: the target is created per mode and the
    job starts on commit; an aborted transaction cancels the job
    unstarted and closes the target (an image file it created stays, as
    in QEMU); errors as the command's."""
    ds = Drives(2)
    copies = []
    try:
        def db(name, **kw):
            data = {"device": "drive0", "target": ds.path(name),
                    "sync": "full", "job-id": "d"}
            data.update(kw)
            return act("drive-backup", **data)

        def nodes():
            return len(ds.c.cmd("query-named-block-nodes"))

        before = nodes()
        for a, want in (
                (db("n1.qcow2"), ABORTED),
                (db("n1.qcow2", mode="existing", format="qcow2"), ABORTED),
                (db("n2.raw", format="raw"), ABORTED),
                (db("n3.qcow2", sync="none"), ABORTED),
                (db("n4.qcow2", mode="existing"),
                 "Could not open '%s': No such file or directory"
                 % ds.path("n4.qcow2")),
                (db("n5.qcow2", format="vmdkx"),
                 "Unknown file format 'vmdkx'"),
                (db("n6.qcow2", sync="incremental"),
                 "must provide a valid bitmap name for 'incremental' sync "
                 "mode")):
            r = ds.txn(a, act("abort"), mode="individual")
            assert r["error"]["desc"] == want, r
            # all before the reply, the target closed too
            assert log(ds.c.events) == (["d:created", "d:aborting",
                                         "d:concluded", "d:null"]
                                        if want == ABORTED else []), \
                log(ds.c.events)
            del ds.c.events[:]
            assert nodes() == before
        assert sorted(f for f in os.listdir(ds.d) if f.startswith("n")) == \
            ["n1.qcow2", "n2.raw", "n3.qcow2", "n6.qcow2"]
        check_clean(ds.path("n1.qcow2"))
        # committed, grouped with a blockdev-backup; the guest writes
        assert ds.txn(db("full.qcow2", speed=4 << 20), backup(1)) == \
            {"return": {}}
        hmp_io(ds.c, "write -P 0x55 0 1M", "drive0")
        evs = until_all(ds.c, [("d", "null"), ("j1", "null")])
        assert log(evs)[:8] == ["d:created", "j1:created", "d:running",
                                "d:paused", "j1:running", "j1:paused",
                                "d:running", "j1:running"], log(evs)
        assert "COMPLETED d" in log(evs) and "COMPLETED j1" in log(evs)
        copies = [("full.qcow2", "s0.raw")]
    finally:
        ds.close(backed_up=[1], copies=copies)


def test_unsupported():
    """Internal snapshots are refused clearly, and refusing them undoes
    what came before (blockdev-backup and drive-backup fail on their
    own checks here, undoing too)."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-txn-")
    try:
        img("create", "-q", "-f", "qcow2", os.path.join(d, "a.qcow2"), "4M")
        r = Run(d, False)
        for t, data, want in (
                ("blockdev-backup", {"device": "n0", "target": "n0",
                                     "sync": "full"},
                 "Source and target cannot be the same"),
                ("drive-backup", {"device": "n0",
                                  "target": os.path.join(d, "x.qcow2"),
                                  "sync": "full", "mode": "existing"},
                 "Could not open '%s': No such file or directory"
                 % os.path.join(d, "x.qcow2")),
                ("blockdev-snapshot-internal-sync",
                 {"device": "d0", "name": "s"},
                 "Transaction action 'blockdev-snapshot-internal-sync' is "
                 "not supported by qmpd yet")):
            out = r.txn(act("block-dirty-bitmap-add", **bitmap("b")),
                        act(t, **data))
            assert out == want, out
            assert r.state()[1][0][5] == [], r.state()
        r.end()
        check_clean(os.path.join(d, "a.qcow2"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_abort_and_properties, test_each_action, test_rollback_bitmaps,
         test_libvirt_shapes, test_rollback_snapshots,
         test_snapshot_onto_mirror_target, test_unsupported,
         test_grouped_failure, test_grouped_failure_while_waiting,
         test_grouped_success, test_grouped_cancel, test_grouped_finalize,
         test_grouped_bitmaps, test_abort_backup_bitmap,
         test_drive_backup_action], needs=[need_qemu_utils])
