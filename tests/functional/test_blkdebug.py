#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""blkdebug's options and events, beside QEMU 7.2.

Each scenario opens the same node graph (raw over blkdebug over a file)
in qmpd (blockdev-add, then qemu-io on the node) and in QEMU's qemu-io
(the graph as a json: file name), each on its own copy of the same
image, and runs the same qemu-io commands: every command must succeed
or fail alike, with the same message, and the two images must end up
identical (qemu-img compare).  The scenarios prove each limit option
has its effect: a rule that only an alignment's read-modify-write, a
max-transfer split or a zero/discard limit can trigger or dodge.
QEMU's part is skipped (not the test) when qemu-io is missing.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, QmpError, qemu_binary, run  # noqa: E402
from images import check_clean, img  # noqa: E402

KiB = 1024
MiB = 1 << 20

# qemu-io's timing line, which differs between any two runs
STATS = re.compile(r"^[\d.]+ (bytes|[KMGT]iB), \d+ ops; ")


class Tmp:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="qmpd-blkdebug-")
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def have_qemu_io():
    return shutil.which("qemu-io") is not None


def results(text):
    """What qemu-io printed, without the timing lines."""
    return [line for line in text.splitlines()
            if line.strip() and not STATS.match(line)]


def base_image(path, size=MiB):
    """A raw image full of 0xaa, so zeroes and new data both show."""
    img("create", "-q", "-f", "raw", path, str(size))
    p = subprocess.run(["qemu-io", "-f", "raw", "-c",
                        "write -P 0xaa 0 %d" % size, path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def graph(path, raw=None, **dbg):
    """raw over blkdebug (options @dbg) over file @path."""
    b = dict({"driver": "blkdebug",
              "image": {"driver": "file", "filename": path}}, **dbg)
    return dict({"driver": "raw", "file": b}, **(raw or {}))


def qmpd_run(node, cmds):
    """The commands' results on qmpd, one list per command."""
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        c.cmd("blockdev-add", **dict(node, **{"node-name": "n0"}))
        out = [results(qemu_io(c, "n0", x)) for x in cmds]
        c.cmd("quit")
        q.wait(30)
    return out


def qemu_io(c, node, cmd):
    """qmpd's qemu-io on @node: what it printed (a failed command is an
    error reply carrying the same text)."""
    try:
        return c.cmd("__com.qmpd_qemu-io", device=node, command=cmd)
    except QmpError as e:
        # a failed flush prints nothing, as QEMU's
        return "" if e.desc == "qemu-io command failed" else e.desc


def qemu_run(node, cmds):
    """The same on QEMU's qemu-io (one process for all the commands),
    with the write cache on as a node's is (qemu-io's own default is
    writethrough: a flush after every write)."""
    args = ["qemu-io", "-t", "writeback"]
    for x in cmds:
        args += ["-c", x]
    p = subprocess.run(args + ["json:" + json.dumps(node)],
                       capture_output=True, text=True, timeout=120)
    assert "can't open" not in p.stderr, p.stderr
    return split_runs(p.stdout + p.stderr, cmds)


def split_runs(text, cmds):
    """qemu-io's output of @cmds, one list each: a flush prints nothing,
    every other command one result line (after any pattern mismatch)."""
    lines = results(text)
    out = []
    i = 0
    for x in cmds:
        cur = []
        if x.split()[0] in ("flush", "f", "aio_flush"):
            out.append(cur)
            continue
        # one result line (plus its timing line, already dropped), or an
        # error line; a pattern mismatch adds its own line first
        while i < len(lines) and lines[i].startswith("Pattern verification"):
            cur.append(lines[i])
            i += 1
        if i < len(lines):
            cur.append(lines[i])
            i += 1
        out.append(cur)
    assert i == len(lines), (lines, out)
    return out


def compare(node_of, cmds, size=MiB, expect=None, differ=None):
    """Run @cmds on qmpd and QEMU, each on a fresh copy of a 0xaa image,
    through the graph @node_of(path) gives.  Results and final images
    must be the same, except for commands listed in @differ (index ->
    (qmpd's, QEMU's) first result line), which are checked as given.
    @expect (list of substrings, one per command, or None) checks
    qmpd's results.  Returns qmpd's results."""
    with Tmp() as d:
        ours = os.path.join(d, "qmpd.raw")
        theirs = os.path.join(d, "qemu.raw")
        base_image(ours, size)
        shutil.copy(ours, theirs)
        got = qmpd_run(node_of(ours), cmds)
        if expect:
            for x, r, e in zip(cmds, got, expect):
                if e is not None:
                    assert any(e in line for line in r), (x, r, e)
        if not have_qemu_io():
            return got
        ref = qemu_run(node_of(theirs), cmds)
        for i, (x, a, b) in enumerate(zip(cmds, got, ref)):
            if differ and i in differ:
                assert a[:1] == [differ[i][0]], (x, a, differ[i])
                assert b[:1] == [differ[i][1]], (x, b, differ[i])
                continue
            assert a == b, "%s: qmpd %r, QEMU %r" % (x, a, b)
        if not differ:
            p = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F",
                                "raw", ours, theirs],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stdout + p.stderr
        return got


def content(path, off, length):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(length)


FAIL = "write failed: Input/output error"


# ---- request alignment (read-modify-write) -----------------------------------

RMW_WRITES = ["write -P 0x11 512 512", "write -P 0x11 0 512",
              "write -P 0x11 3584 1024", "write -P 0x11 512 8192",
              "write -z 512 512", "write -z 512 8192", "write -z 1024 16384"]


def test_align_rmw_events():
    """An unaligned write under align=4096 reads its partial blocks back,
    raising pwritev_rmw_head/_tail before and _after_head/_after_tail
    after the reads: a rule on each event fails exactly the writes that
    have such a part, as in QEMU (the audit's case: a rule on
    pwritev_rmw_head fails "write 512 512"); aligned writes never raise
    them.  Without align no write raises them."""
    events = ["pwritev_rmw_head", "pwritev_rmw_after_head",
              "pwritev_rmw_tail", "pwritev_rmw_after_tail"]
    for ev in events:
        for x in RMW_WRITES + ["write -P 0x22 4096 4096"]:
            compare(lambda p: graph(p, align=4096,
                                    **{"inject-error": [{"event": ev}]}),
                    [x, "read -P 0xaa 65536 512"])
    # the audit's case, spelt out
    got = compare(lambda p: graph(p, align=4096, **{"inject-error": [
        {"event": "pwritev_rmw_head"}]}), ["write -P 0x11 512 512"],
        expect=[FAIL])
    got = compare(lambda p: graph(p, **{"inject-error": [
        {"event": "pwritev_rmw_head"}]}), ["write -P 0x11 512 512"],
        expect=["wrote 512/512 bytes at offset 512"])


def test_align_rmw_data():
    """What read-modify-write leaves behind: the bytes around an
    unaligned write or zero write are kept, as QEMU keeps them; reads of
    any alignment return the right bytes."""
    cmds = ["write -P 0x11 100 5000", "read -P 0x11 100 5000",
            "read -P 0xaa 0 100", "read -P 0xaa 5100 3092",
            "write -z 9000 10000", "read -P 0 9000 10000",
            "read -P 0xaa 8192 808", "read -P 0xaa 19000 1480",
            "write -P 0x33 4096 4096", "read -P 0x33 4096 4096",
            "write -P 0x44 65535 2", "read -P 0x44 65535 2",
            "read -P 0xaa 65534 1", "read -P 0xaa 65537 1",
            "write -P 0x55 1048000 576", "read -P 0x55 1048000 576"]
    for opts in ({"align": 4096}, {"align": 512, "max-transfer": 1024},
                 {"align": 65536, "max-transfer": 65536}):
        compare(lambda p: graph(p, **opts), cmds,
                expect=[None] * len(cmds))


def test_align_rmw_read_error():
    """A once rule that fails the read-back itself: qmpd fails the write
    and leaves the block as it was.  QEMU 7.2 ignores that error and
    writes the block with whatever its buffer held where it could not
    read (a deliberate difference: qmpd never writes bytes it did not
    read).  Once rules on
    the _after_ events fail the write itself, alike."""
    for ev in ("pwritev_rmw_head", "pwritev_rmw_tail"):
        for x in ("write -P 0x11 512 512", "write -z 512 512"):
            with Tmp() as d:
                path = os.path.join(d, "a.raw")
                base_image(path)
                node = graph(path, align=4096, **{"inject-error": [
                    {"event": ev, "once": True}]})
                got = qmpd_run(node, [x, "read -P 0xaa 0 512"])
                assert got[0] == [FAIL], got
                assert content(path, 0, 4096) == b"\xaa" * 4096
                if have_qemu_io():
                    ref = qemu_run(node, [x])
                    assert ref[0][0].startswith("wrote"), ref
    for ev in ("pwritev_rmw_after_head", "pwritev_rmw_after_tail"):
        compare(lambda p: graph(p, align=4096, **{"inject-error": [
            {"event": ev, "once": True}]}),
            ["write -P 0x11 512 512", "read -P 0xaa 0 4096",
             "write -P 0x11 512 8192", "read -P 0x11 512 8192"])


# ---- max-transfer --------------------------------------------------------------

def test_max_transfer():
    """max-transfer cuts reads and writes into pieces the filter sees one
    by one: a once rule on one sector fails only the piece holding it,
    so the pieces before it are written (QEMU's result, byte for byte);
    without the option the whole write fails and nothing is written."""
    rule = [{"event": "pwritev", "sector": 200, "once": True,
             "iotype": "write"}]
    cmds = ["write -P 0x11 0 128k", "read -P 0x11 0 64k",
            "read -P 0xaa 64k 64k"]
    compare(lambda p: graph(p, **{"max-transfer": 65536,
                                  "inject-error": rule}),
            cmds, expect=[FAIL, "read 65536/65536", "read 65536/65536"])
    compare(lambda p: graph(p, **{"inject-error": rule}),
            ["write -P 0x11 0 128k", "read -P 0xaa 0 128k"],
            expect=[FAIL, "read 131072/131072"])
    # reads too: two once rules, on sectors 0 and 200; a whole read
    # meets the ENOSPC one first, the first piece meets only the EIO one
    rrules = [{"event": "pwritev_done", "iotype": "read", "sector": 200,
               "errno": 28, "once": True},
              {"event": "pwritev_done", "iotype": "read", "sector": 0,
               "errno": 5, "once": True}]
    cmds = ["write 0 512", "read 0 128k", "read 0 128k"]
    compare(lambda p: graph(p, **{"max-transfer": 65536,
                                  "inject-error": rrules}), cmds,
            expect=[None, "read failed: Input/output error",
                    "read failed: No space left on device"])
    compare(lambda p: graph(p, **{"inject-error": rrules}), cmds,
            expect=[None, "read failed: No space left on device",
                    "read failed: Input/output error"])


# ---- zero writes -----------------------------------------------------------------

def test_write_zero_limits():
    """opt-write-zero: a zero write's unaligned tail goes to the filter as
    data (a rule on writes fails it; without the option the whole zero
    write passes).  max-write-zero: zero writes go down in pieces, so a
    once rule on one sector fails only its piece."""
    rule = [{"event": "pwritev_zero", "iotype": "write"}]
    compare(lambda p: graph(p, **{"opt-write-zero": 4096,
                                  "inject-error": rule}),
            ["write -z 0 6144", "read -P 0 0 4096", "read -P 0xaa 4096 4k"],
            expect=[FAIL, None, None])
    compare(lambda p: graph(p, **{"inject-error": rule}),
            ["write -z 0 6144", "read -P 0 0 6144"],
            expect=["wrote 6144/6144", None])
    zrule = [{"event": "pwritev_zero", "iotype": "write-zeroes",
              "sector": 9, "once": True}]
    compare(lambda p: graph(p, **{"opt-write-zero": 4096,
                                  "max-write-zero": 4096,
                                  "inject-error": zrule}),
            ["write -z 0 8192", "read -P 0 0 4096", "read -P 0xaa 4096 4k"],
            expect=[FAIL, None, None])
    compare(lambda p: graph(p, **{"inject-error": zrule}),
            ["write -z 0 8192", "read -P 0xaa 0 8192"],
            expect=[FAIL, None])


# ---- discards --------------------------------------------------------------------------

def test_discard_limits():
    """Discards are cut as QEMU cuts them: a piece shorter than the
    request alignment is dropped (the data stays), and with opt-/
    max-discard a once rule fails only its piece, so the pieces before
    it are discarded (the file reads zeroes there)."""
    unmap = {"discard": "unmap"}
    cmds = ["discard 512 512", "read -P 0xaa 0 4096",
            "discard 4096 8192", "read -P 0 4096 8192",
            "discard 12288 4608", "read -P 0 12288 4096",
            "read -P 0xaa 16384 4096"]
    compare(lambda p: graph(p, unmap, align=4096, **{"opt-discard": 4096}),
            cmds, expect=[None] * len(cmds))
    compare(lambda p: graph(p, unmap),
            ["discard 512 512", "read -P 0 512 512"])
    # align alone: QEMU 7.2's qemu-io dies of a division by zero
    # (SIGFPE) on the first short discard; qmpd drops it
    with Tmp() as d:
        path = os.path.join(d, "a.raw")
        base_image(path)
        got = qmpd_run(graph(path, unmap, align=4096), cmds[:4])
        assert all("failed" not in r[0] for r in got), got
        assert content(path, 0, 4096) == b"\xaa" * 4096
    rule = [{"event": "pwritev", "iotype": "discard", "sector": 16,
             "once": True}]
    for opts in ({"opt-discard": 4096, "max-discard": 4096}, {}):
        compare(lambda p: graph(p, unmap, **dict(opts, **{
            "inject-error": rule})),
            ["write -P 0x11 65536 512", "discard 0 12288",
             "read -P 0 0 8192" if opts else "read -P 0xaa 0 8192"],
            expect=[None, "discard failed: Input/output error", None])


# ---- events ------------------------------------------------------------------

def test_flush_events():
    """A flush reports flush_to_os to the file child of every node that
    has one, and flush_to_disk when something was written since the
    node's last flush and no-flush is off: a rule on either fails the
    flush (silently, in qemu-io) and what follows, as in QEMU."""
    def rule(ev):
        return {"inject-error": [{"event": ev, "errno": 28}]}

    compare(lambda p: graph(p, **rule("flush_to_os")),
            ["flush", "write -P 1 0 512", "read -P 0xaa 0 512"],
            expect=[None, "write failed: No space left on device", None])
    # nothing written yet: no flush_to_disk; after a write: reported
    compare(lambda p: graph(p, **rule("flush_to_disk")),
            ["flush", "write -P 1 0 512", "flush", "write -P 2 0 512",
             "read -P 1 0 512"],
            expect=[None, "wrote 512/512", None,
                    "write failed: No space left on device", None])
    compare(lambda p: graph(p, {"cache": {"no-flush": True}},
                            **rule("flush_to_disk")),
            ["write -P 1 0 512", "flush", "write -P 2 0 512"],
            expect=[None, None, "wrote 512/512"])


def test_none_event():
    """QEMU's blkdebug reports "none" to itself once it is open, so a rule
    on it is active from the start."""
    compare(lambda p: graph(p, **{"inject-error": [
        {"event": "none", "errno": 28, "once": True}]}),
        ["read 0 512", "read -P 0xaa 0 512"],
        expect=["read failed: No space left on device", "read 512/512"])


def qcow2_graph(path, ev):
    return {"driver": "qcow2", "node-name": "n0",
            "file": {"driver": "blkdebug",
                     "inject-error": [{"event": ev, "errno": 28}],
                     "image": {"driver": "file", "filename": path}}}


def test_qcow2_open_resize_events():
    """reftable_load (open), l1_grow_alloc_table, _write_table and
    _activate_table (block_resize that grows the L1 table) fail what
    they fail in QEMU, with QEMU's messages; the image stays sound."""
    for ev in ("reftable_load", "l1_grow_alloc_table",
               "l1_grow_write_table", "l1_grow_activate_table"):
        results_of = {}
        for b in [None] + ([qemu_binary()] if qemu_binary() else []):
            with Tmp() as d:
                path = os.path.join(d, "t.qcow2")
                img("create", "-q", "-f", "qcow2", path, "1G")
                results_of[b] = replies(b, [
                    ("blockdev-add", qcow2_graph(path, ev)),
                    ("block_resize", {"node-name": "n0", "size": 2 << 30}),
                    ("query-named-block-nodes", {"flat": True})])
                results_of[b][2] = [n["image"]["virtual-size"]
                                    for n in results_of[b][2]
                                    if n["node-name"] == "n0"]
                if b is None:
                    check_clean(path, leaks=True)
        ours = results_of.pop(None)
        if ev == "reftable_load":
            assert ours[0] == "Could not initialize refcount handling: " \
                "No space left on device", ours
        else:
            assert ours[1] == "Failed to grow the L1 table: No space " \
                "left on device" and ours[2] == [1 << 30], ours
        for theirs in results_of.values():
            assert ours == theirs, (ev, ours, theirs)


ALLOC_STEPS = ["write -P 1 0 4k", "flush", "write -P 2 1M 1M", "flush",
               "write -P 3 8M 12M", "flush", "write -P 4 40M 64k", "flush",
               "write -P 9 60M 512"]


def alloc_run(binary, ev):
    """@ALLOC_STEPS on a qcow2 image with 512-byte clusters (new refcount
    blocks, and a refcount table that must move), a rule on @ev: the
    commands' results."""
    with Tmp() as d:
        path = os.path.join(d, "t.qcow2")
        img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path,
            "64M")
        node = qcow2_graph(path, ev) if ev else {
            "driver": "qcow2", "node-name": "n0",
            "file": {"driver": "file", "filename": path}}
        printed = []
        replies(binary, [("blockdev-add", node)] + [
            ("human-monitor-command",
             {"command-line": 'qemu-io n0 "%s"' % x}) for x in ALLOC_STEPS],
            printed)
        if binary is None:
            check_clean(path, leaks=True)
        return results(printed[0])


def test_qcow2_allocation_events():
    """The refcount events of cluster allocation: a new refcount block
    written (refblock_alloc_write) and hooked into the table
    (refblock_alloc_hookup), refcount block updates
    (refblock_update_part), and a refcount table that has to move
    (reftable_grow, refblock_alloc_write_blocks, _write_table,
    _switch_table).  qmpd writes refcounts back at a
    flush, QEMU as the allocating write goes: each rule fails a write in
    both, at that write in QEMU and at the next flush in qmpd (so the
    write after it fails).  Without a rule nothing fails."""
    clean = alloc_run(None, None)
    assert not [r for r in clean if "failed" in r], clean
    for ev in ("refblock_update_part", "refblock_alloc_write",
               "refblock_alloc_hookup", "refblock_alloc_write_blocks",
               "refblock_alloc_write_table", "refblock_alloc_switch_table",
               "reftable_grow"):
        for b in [None] + ([qemu_binary()] if qemu_binary() else []):
            got = alloc_run(b, ev)
            assert "write failed: No space left on device" in got, (ev, b,
                                                                    got)


def test_never_raised_refused():
    """Rules and breakpoints on events whose code path qmpd does not
    have (compressed writes, VM state, ...) are refused by
    name instead of waiting forever; so is inject-error's "immediately"
    (qmpd always completes an injected error from the main loop).  QEMU
    accepts them (a deliberate difference)."""
    with Tmp() as d:
        path = os.path.join(d, "a.raw")
        base_image(path)
        events = ["cluster_alloc_bytes", "cluster_alloc_space",
                  "empty_image_prepare", "l2_alloc_cow_read",
                  "l2_update_compressed", "vmstate_load", "vmstate_save",
                  "write_compressed"]
        calls = []
        for i, ev in enumerate(events):
            calls.append(("blockdev-add", dict(graph(path, **{
                "inject-error": [{"event": ev}]}), **{"node-name": "e%d" % i})))
            calls.append(("blockdev-add", dict(graph(path, **{
                "set-state": [{"event": ev, "new_state": 2}]}),
                **{"node-name": "s%d" % i})))
        calls.append(("blockdev-add", dict(graph(path, **{
            "inject-error": [{"event": "pwritev", "immediately": True}]}),
            **{"node-name": "im"})))
        calls.append(("blockdev-add", dict(graph(path, **{
            "inject-error": [{"event": "pwritev", "immediately": False}]}),
            **{"node-name": "ok"})))
        calls.append(("human-monitor-command", {
            "command-line": 'qemu-io ok "break write_compressed A"'}))
        printed = []
        got = replies(None, calls, printed)
        for i, ev in enumerate(events):
            want = "blkdebug event '%s' is never raised by qmpd" % ev
            assert got[2 * i] == want and got[2 * i + 1] == want, got
        assert got[-3] == "blkdebug inject-error 'immediately' is not " \
            "supported by qmpd", got
        assert got[-2] == {}, got
        assert results(printed[0]) == [
            "Could not set breakpoint: blkdebug event 'write_compressed' "
            "is never raised by qmpd"], printed


# ---- config files and legacy file names -------------------------------------

CONFIGS_WORKING = [
    '[inject-error]\nevent = "pwritev"\n',
    '[inject-error]\nevent = "pwritev"\niotype = "read"\n',
    '# comment\n\n[inject-error]\n  event = "pwritev"   \n errno = "28" # c\n',
    '[inject-error]\n\tevent\t=\t"pwritev"\n',
    '[set-state]\nevent = "pwritev"\nnew_state = "2"\n'
    '[inject-error]\nevent = "pwritev_done"\nstate = "2"\n',
    '[inject-error]\nevent = "pwritev"\nonce = "on"\n',
    '[inject-error]\nevent = "pwritev"\nonce = "yes"\n',
    '[inject-error]\nevent = "pwritev"\nsector = "-1"\n',
    '[inject-error]\nevent = "pwritev"\nsector = "1"\n',
    '[inject-error "id1"]\nevent = "pwritev"\n',
    '[inject-error]\nevent = "pwritev"\nerrno = "0x1c"\n',
    '[set-state]\nevent = "pwritev"\n',
    '[inject-error]\nevent = "pwritev" trailing\n',
    '[inject-error]\nevent = "read_aio"\nevent = "pwritev"\n',
    '[inject-error]\r\nevent = "pwritev"\r\n',
]

CONFIGS_BAD = [
    '[inject-error]\nevent = "bogus"\n',
    '[inject-error]\n',
    '[bogus]\nevent = "pwritev"\n',
    'event = "pwritev"\n',
    '[inject-error]\nevent = pwritev\n',
    '[inject-error]\nfoo = "1"\n',
    '[inject-error]\nerrno = "x"\nevent = "pwritev"\n',
    '[inject-error]\nevent = "pwritev"\nonce = "maybe"\n',
    '[inject-error]\nevent = "pwritev"\nsector = "1x"\n',
    '[inject-error]\nevent = "pwritev"\nstate = "1k"\n',
    '  [inject-error]\nevent = "pwritev"\n',
    '#[inject-error]\n  # x\n',
    '[inject-error]\nevent = "pwritev"\niotype = "bogus"\n',
    '[inject-error]\nevent = "pwritev"\nstate="1"\n',
    '[set-state]\nevent = "bogus"\n[inject-error]\nevent = "bogus2"\n',
]


def test_config_file():
    """The config option reads QEMU's blkdebug config file format (it was
    refused): rules work as QEMU's with every spelling QEMU takes, and
    every file QEMU refuses is refused with QEMU's message; a config
    file's rules come before the options' rules, as in QEMU."""
    with Tmp() as d:
        cfg = os.path.join(d, "cfg")
        for text in CONFIGS_WORKING:
            with open(cfg, "w", newline="") as f:
                f.write(text)
            compare(lambda p: graph(p, config=cfg),
                    ["write -P 1 0 512", "read 0 512", "write -P 2 0 512"])
        # both: the file's rule and the options' rule on one event
        with open(cfg, "w") as f:
            f.write('[inject-error]\nevent = "pwritev_done"\nerrno = "28"\n'
                    'once = "on"\n')
        compare(lambda p: graph(p, config=cfg, **{"inject-error": [
            {"event": "pwritev_done", "errno": 5, "once": True}]}),
            ["write 0 512", "read 0 512", "read 0 512", "read 0 512"])
        path = os.path.join(d, "a.raw")
        base_image(path)
        calls = []
        for i, text in enumerate(CONFIGS_BAD):
            name = os.path.join(d, "bad%d" % i)
            with open(name, "w") as f:
                f.write(text)
            calls.append(("blockdev-add", dict(graph(path, config=name),
                                               **{"node-name": "b%d" % i})))
        calls.append(("blockdev-add", dict(graph(
            path, config=os.path.join(d, "missing")), **{"node-name": "m"})))
        ours = replies(None, calls)
        assert ours[0] == "invalid parameter value: bogus", ours
        assert ours[-1] == "Could not read blkdebug config file: No such " \
            "file or directory", ours
        assert all(isinstance(r, str) for r in ours), ours
        if qemu_binary():
            theirs = replies(qemu_binary(), calls)
            assert ours == theirs, list(zip(CONFIGS_BAD, ours, theirs))


def events_of(c, until):
    """The events up to @until, in order, job status changes left out:
    (name, an error's operation, a completion's error)."""
    last = c.event(until, 60)
    got, c.events = c.events + [last], []
    return [(e["event"], e["data"].get("operation"), e["data"].get("error"))
            for e in got if e["event"] != "JOB_STATUS_CHANGE"]


def legacy_run(binary, d):
    """-drive with blkdebug file names, a backing file named so, and
    drive-mirror / drive-backup to such targets: what each shows."""
    cfg = os.path.join(d, "cfg")
    out = {}
    printed = []
    args = ["-M", "none",
            "-drive", "file=blkdebug::%s/a.qcow2,if=none,id=d0" % d,
            "-drive", "file=blkdebug:%s:%s/b.qcow2,if=none,id=d1,"
            "format=qcow2" % (cfg, d),
            "-drive", "file=%s/top.qcow2,if=none,id=d2" % d]
    with Qmpd(args, binary_path=binary) as q:
        c = q.connect()
        out["nodes"] = sorted(
            (n["drv"], n["file"], n.get("backing_file"), n["ro"])
            for n in c.cmd("query-named-block-nodes", flat=True))
        out["block"] = sorted((b["device"], b["inserted"]["file"])
                              for b in c.cmd("query-block"))
        for x in ('qemu-io d1 "read 0 512"', 'qemu-io d1 "read 0 512"',
                  'qemu-io d2 "read 0 4k"', 'qemu-io d2 "read -P 7 0 4k"'):
            assert c.cmd("human-monitor-command",
                         **{"command-line": x}) == ""
        replies_ = []
        for cmd, target, mode in (
                ("drive-mirror", "blkdebug::%s/new.qcow2" % d, None),
                ("drive-backup", "blkdebug::%s/new.qcow2" % d, None),
                ("drive-mirror", "blkdebug:%s/new.qcow2" % d, "existing"),
                ("drive-mirror", "blkdebug:%s:%s/t.qcow2" % (cfg, d),
                 "existing")):
            a = {"device": "d0", "target": target, "sync": "full",
                 "format": "qcow2", "job-id": "j"}
            if mode:
                a["mode"] = mode
            r = c.execute(cmd, a)
            replies_.append(r["error"]["desc"] if "error" in r else "ok")
        out["replies"] = replies_
        out["mirror"] = events_of(c, "BLOCK_JOB_COMPLETED")
        r = c.execute("drive-backup", {
            "device": "d0", "target": "blkdebug:%s:%s/t.qcow2" % (cfg, d),
            "sync": "full", "format": "qcow2", "mode": "existing",
            "job-id": "k"})
        out["backup-reply"] = r["error"]["desc"] if "error" in r else "ok"
        out["backup"] = events_of(c, "BLOCK_JOB_COMPLETED")
        c.cmd("quit")
        q.wait(30)
        printed.append(q.stdout_text())
    out["printed"] = results(printed[0])
    return out


def test_legacy_filenames():
    """QEMU's legacy file names "blkdebug:CONFIG:IMAGE" and
    "blkdebug::IMAGE" open a blkdebug node over the image as a -drive
    file=, as a backing file name in an image header and as a
    drive-mirror/drive-backup target (mode existing; creating one is
    refused as QEMU refuses it); the nodes are named so, as in QEMU, and
    the config file's rules act: the same nodes, names, replies, events
    and qemu-io results as QEMU 7.2."""
    results_of = {}
    for b in [None] + ([qemu_binary()] if qemu_binary() else []):
        with Tmp() as d:
            with open(os.path.join(d, "cfg"), "w") as f:
                f.write('[inject-error]\nevent = "read_aio"\nerrno = "28"\n'
                        'once = "on"\n'
                        '[inject-error]\nevent = "write_aio"\nerrno = "28"\n')
            with open(os.path.join(d, "cfgn"), "w") as f:
                f.write('[inject-error]\nevent = "none"\nerrno = "28"\n'
                        'once = "on"\n')
            for n in ("a", "b", "t"):
                img("create", "-q", "-f", "qcow2", os.path.join(
                    d, n + ".qcow2"), "4M")
                subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                                "write -P 1 0 1M",
                                os.path.join(d, n + ".qcow2")], check=True,
                               capture_output=True)
            base = os.path.join(d, "base.raw")
            base_image(base, 4 * MiB)
            subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 7 0 4k",
                            base], check=True, capture_output=True)
            img("create", "-q", "-f", "qcow2", "-u", "-b",
                "blkdebug:%s/cfgn:%s" % (d, base), "-F", "raw",
                os.path.join(d, "top.qcow2"), "4M")
            got = legacy_run(b, d)
            # paths differ between the runs
            results_of[b] = json.loads(json.dumps(got).replace(d, "D"))
            if b is None:
                for n in ("a", "b", "t", "top"):
                    check_clean(os.path.join(d, n + ".qcow2"))
    ours = results_of.pop(None)
    assert ["blkdebug", "blkdebug:D/cfg:D/b.qcow2", None, False] in \
        ours["nodes"], ours
    assert ["qcow2", "D/top.qcow2", "blkdebug:D/cfgn:D/base.raw", False] \
        in ours["nodes"], ours
    assert ["d0", "blkdebug::D/a.qcow2"] in ours["block"], ours
    assert ours["printed"] == [
        "read failed: No space left on device",
        "read 512/512 bytes at offset 0",
        "read failed: No space left on device",
        "read 4096/4096 bytes at offset 0"], ours
    assert ours["replies"][0] == "Protocol driver 'blkdebug' does not " \
        "support image creation", ours
    assert ["BLOCK_JOB_ERROR", "write", None] in ours["mirror"], ours
    for theirs in results_of.values():
        for k in ours:
            assert ours[k] == theirs[k], (k, ours[k], theirs[k])


# ---- jobs --------------------------------------------------------------------

def commit_run(binary, d, ev):
    """block-commit of mid into base (raw over blkdebug with a rule on
    @ev) under active: the job's events."""
    base = {"driver": "raw", "node-name": "base", "file": {
        "driver": "blkdebug", "inject-error": [{"event": ev}],
        "image": {"driver": "file", "filename": os.path.join(d, "base.raw")}}}
    with Qmpd(["-M", "none"], binary_path=binary) as q:
        c = q.connect()
        c.cmd("blockdev-add", **base)
        for n, b in (("mid", "base"), ("active", "mid")):
            c.cmd("blockdev-add", driver="qcow2", backing=b, **{
                "node-name": n, "file": {
                    "driver": "file",
                    "filename": os.path.join(d, n + ".qcow2")}})
        c.cmd("block-commit", device="active", **{
            "job-id": "c", "top-node": "mid", "base-node": "base"})
        got = events_of(c, "BLOCK_JOB_COMPLETED")
        c.cmd("quit")
        q.wait(30)
    return [(e, op, err) for e, op, err in got]


def test_commit_into_raw_over_blkdebug():
    """Issue 12: a block-commit whose base is raw over blkdebug with a
    write error injected fails as in QEMU: BLOCK_JOB_ERROR (operation
    write) then BLOCK_JOB_COMPLETED with the error, whether the rule
    hangs off raw's write_aio or the filter's own pwritev."""
    for ev in ("write_aio", "pwritev"):
        runs = {}
        for b in [None] + ([qemu_binary()] if qemu_binary() else []):
            with Tmp() as d:
                base_image(os.path.join(d, "base.raw"), 4 * MiB)
                img("create", "-q", "-f", "qcow2", "-b",
                    os.path.join(d, "base.raw"), "-F", "raw",
                    os.path.join(d, "mid.qcow2"))
                subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                                "write -P 2 0 512k",
                                os.path.join(d, "mid.qcow2")], check=True,
                               capture_output=True)
                img("create", "-q", "-f", "qcow2", "-b",
                    os.path.join(d, "mid.qcow2"), "-F", "qcow2",
                    os.path.join(d, "active.qcow2"))
                runs[b] = commit_run(b, d, ev)
                if b is None:
                    for n in ("mid", "active"):
                        check_clean(os.path.join(d, n + ".qcow2"))
        ours = runs.pop(None)
        assert ours == [("BLOCK_JOB_ERROR", "write", None),
                        ("BLOCK_JOB_COMPLETED", None,
                         "Input/output error")], (ev, ours)
        for theirs in runs.values():
            assert ours == theirs, (ev, ours, theirs)


# ---- option checks ------------------------------------------------------------------

LIMIT_CASES = [
    {"align": 3}, {"align": 0}, {"align": -1}, {"align": 1 << 31},
    {"align": 1 << 40}, {"max-transfer": -5}, {"max-transfer": 1 << 31},
    {"max-transfer": (1 << 31) - 1}, {"align": 512, "max-transfer": 1000},
    {"align": 4096, "max-transfer": 2048},
    {"opt-write-zero": 1000, "align": 512},
    {"max-write-zero": 1536, "opt-write-zero": 1024, "align": 512},
    {"opt-discard": 1000, "align": 512},
    {"max-discard": 1536, "opt-discard": 1024},
    {"max-discard": 2048, "opt-discard": 1024, "max-transfer": 512},
    {"opt-write-zero": 1 << 32}, {"max-discard": -1},
    {"align": 4096, "max-transfer": 4096, "opt-write-zero": 2048},
]


def test_limit_checks():
    """blockdev-add refuses what QEMU refuses, with QEMU's messages
    ("Cannot meet constraints with ...", ranges), and accepts the rest."""
    with Tmp() as d:
        path = os.path.join(d, "a.raw")
        base_image(path)
        calls = [("blockdev-add", dict({"driver": "blkdebug",
                                        "node-name": "b%d" % i,
                                        "image": {"driver": "file",
                                                  "filename": path,
                                                  "locking": "off"}},
                                       **o))
                 for i, o in enumerate(LIMIT_CASES)]
        ours = replies(None, calls)
        assert "Cannot meet constraints with max-transfer 2048" in ours
        if qemu_binary():
            theirs = replies(qemu_binary(), calls)
            assert ours == theirs, list(zip(LIMIT_CASES, ours, theirs))


def test_size_not_aligned():
    """A node whose size is not a multiple of its request alignment
    cannot be written by a user that cannot resize it (a widened write
    would grow the file): qemu-io's write fails with QEMU's message, its
    reads work, and the file keeps its size."""
    with Tmp() as d:
        path = os.path.join(d, "odd.raw")
        with open(path, "wb") as f:
            f.write(b"\xaa" * 5000)
        node = graph(path, align=4096)
        calls = [("blockdev-add", dict(node, **{"node-name": "n0"})),
                 ("human-monitor-command",
                  {"command-line": 'qemu-io n0 "write 0 512"'}),
                 ("human-monitor-command",
                  {"command-line": 'qemu-io n0 "read -P 0xaa 4096 904"'})]
        printed = []
        ours = replies(None, calls, printed)
        assert ours[1].strip() == "Cannot get 'write' permission without " \
            "'resize': Image size is not a multiple of request alignment", \
            ours
        assert results(printed[0]) == [
            "read 904/904 bytes at offset 4096"], printed
        assert os.path.getsize(path) == 5000
        if qemu_binary():
            theirs = replies(qemu_binary(), calls)
            assert ours[1].strip() == theirs[1].strip(), (ours, theirs)


def replies(binary, calls, stdout=None):
    """Each call's reply (its error's message when it failed); with
    @stdout (a list), what the process printed is appended to it."""
    out = []
    with Qmpd(["-M", "none"], binary_path=binary) as q:
        c = q.connect()
        for name, args in calls:
            r = c.execute(name, args)
            out.append(r["error"]["desc"] if "error" in r else r["return"])
        c.cmd("quit")
        q.wait(30)
        if stdout is not None:
            stdout.append(q.stdout_text())
    return out


if __name__ == "__main__":
    if not shutil.which("qemu-img"):
        print("skip: qemu-img not installed")
        sys.exit(77)
    run([test_align_rmw_events, test_align_rmw_data,
         test_align_rmw_read_error, test_max_transfer,
         test_write_zero_limits, test_discard_limits, test_limit_checks,
         test_size_not_aligned, test_flush_events, test_none_event,
         test_qcow2_open_resize_events, test_qcow2_allocation_events,
         test_never_raised_refused, test_config_file,
         test_legacy_filenames, test_commit_into_raw_over_blkdebug])
