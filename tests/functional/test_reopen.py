#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""blockdev-reopen as QEMU 7.2 does it.

Every scenario runs on qmpd and, when qemu-system-x86_64 is installed, on
QEMU with the same command line and the same commands, on its own copy
of the images: the replies (QEMU's exact messages) and the nodes' state
afterwards must be the same.  The options a reopen applies are also
checked for their effect on qmpd: the descriptor's O_DIRECT flag, zero
writes left unallocated, the window a raw node shows, the file a qcow2
node reads from.  Every image qmpd wrote passes qemu-img check.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402

MiB = 1 << 20
O_DIRECT = 0o40000
O_ACCMODE = 3


class Tmp:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="qmpd-reopen-")
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def binaries():
    """qmpd, then QEMU when installed."""
    return [None] + ([qemu_binary()] if qemu_binary() else [])


def fd_flags(pid, path):
    """open(2) flags of @pid's descriptors on @path."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != path:
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("flags:"):
                        out.append(int(line.split()[1], 8))
        except OSError:
            pass
    return out


def states(c, *_):
    """What a reopen may change, per named node."""
    return {n["node-name"]: (n["ro"], n["cache"]["direct"],
                             n["cache"]["no-flush"], n["detect_zeroes"],
                             # QEMU spells json: names its own way
                             "json" if n["file"].startswith("json:")
                             else os.path.basename(n["file"]),
                             n["image"]["virtual-size"])
            for n in c.cmd("query-named-block-nodes", flat=True)
            if not n["node-name"].startswith("#")}


def reopen(c, *opts):
    r = c.execute("blockdev-reopen", {"options": list(opts)})
    if "error" in r:
        return r["error"]["desc"]
    assert r["return"] == {}, r
    return None


def io(c, node, cmd):
    """qemu-io on @node; qmpd's output is checked (QEMU prints it on its
    own stdout, where the test does not see it)."""
    if c.qmpd:
        out = c.cmd("__com.qmpd_qemu-io", device=node, command=cmd)
        assert "fail" not in out and "error" not in out.lower(), out
    else:
        assert c.cmd("human-monitor-command", **{
            "command-line": 'qemu-io %s "%s"' % (node, cmd)}) == ""


def scenario(make_images, args, steps):
    """Run @steps (functions of (client, process, dir)) on qmpd and QEMU,
    each in a fresh directory that @make_images fills; every step's
    result must be the same for both.  Returns qmpd's results."""
    results = {}
    for b in binaries():
        with Tmp() as d:
            make_images(d)
            argv = [a.replace("$D", d) for a in args]
            with Qmpd(["-M", "none"] + argv, binary_path=b) as q:
                c = q.connect()
                c.qmpd = b is None
                results[b] = [s(c, q.proc.pid, d) for s in steps]
                c.cmd("quit")
                q.wait(30)
            if b is None:
                for f in os.listdir(d):
                    if f.endswith(".qcow2"):
                        check_clean(os.path.join(d, f))
    ours = results.pop(None)
    for b, theirs in results.items():
        for i, (x, y) in enumerate(zip(ours, theirs)):
            assert x == y, "step %d: qmpd %r, QEMU %r" % (i, x, y)
    return ours


def qcow2_images(d):
    img("create", "-q", "-f", "qcow2", os.path.join(d, "a.qcow2"), "64M")
    img("create", "-q", "-f", "raw", os.path.join(d, "b.raw"), "64M")


FA = ["-blockdev", "driver=file,filename=$D/a.qcow2,node-name=f0",
      "-blockdev", "driver=qcow2,file=f0,node-name=n0",
      "-blockdev", "driver=file,filename=$D/b.raw,node-name=f1"]


def F(d, **o):
    return dict({"driver": "file", "node-name": "f0",
                 "filename": os.path.join(d, "a.qcow2")}, **o)


Q = {"driver": "qcow2", "node-name": "n0", "file": "f0"}


def test_cache_direct():
    """cache.direct reopens the descriptor with O_DIRECT and back; the
    format node's own flag changes alone (its file is not its own)."""
    def direct(c, pid, d):
        return [bool(f & O_DIRECT)
                for f in fd_flags(pid, os.path.join(d, "a.qcow2"))]

    steps = [
        direct,
        lambda c, p, d: reopen(c, F(d, cache={"direct": True})),
        direct,
        lambda c, p, d: io(c, "n0", "write -P 0x5a 0 64k"),
        lambda c, p, d: reopen(c, dict(Q, cache={"direct": True,
                                                 "no-flush": True})),
        states,
        lambda c, p, d: reopen(c, F(d)),
        direct,
        lambda c, p, d: io(c, "n0", "read -P 0x5a 0 64k"),
        states,
    ]
    r = scenario(qcow2_images, FA, steps)
    assert r[0] == [False] and r[2] == [True] and r[7] == [False], r
    # n0's cache is its own: f0 keeps what it was given, and back
    assert r[5]["n0"][1:3] == (True, True) and r[5]["f0"][1], r
    assert r[9]["n0"][1:3] == (True, True) and not r[9]["f0"][1], r


def test_detect_zeroes():
    """detect-zeroes applies, and an entry without it turns it off again;
    discard stays when left out (QEMU: unmap needs discard=unmap)."""
    steps = [
        lambda c, p, d: reopen(c, dict(Q, **{"detect-zeroes": "on"})),
        lambda c, p, d: io(c, "n0", "write -P 0 0 64k"),
        lambda c, p, d: reopen(c, Q),
        lambda c, p, d: io(c, "n0", "write -P 0 1M 64k"),
        lambda c, p, d: reopen(c, dict(Q, **{"detect-zeroes": "unmap"})),
        lambda c, p, d: reopen(c, dict(Q, discard="unmap")),
        lambda c, p, d: reopen(c, dict(Q, **{"detect-zeroes": "unmap"})),
        states,
        lambda c, p, d: reopen(c, dict(Q, discard="ignore")),
        lambda c, p, d: reopen(c, dict(Q, **{"detect-zeroes": "unmap"})),
    ]
    r = scenario(qcow2_images, FA, steps)
    assert r[4] == ("setting detect-zeroes to unmap is not allowed without "
                    "setting discard operation to unmap"), r
    assert r[6] is None and r[7]["n0"][3] == "unmap" and r[9] == r[4], r


def test_detect_zeroes_image():
    """The zero write made with detect-zeroes=on left the cluster
    unallocated, the one after the reopen without it wrote data: qemu-img
    map of qmpd's image is QEMU's."""
    maps = []
    for b in binaries():
        with Tmp() as d:
            qcow2_images(d)
            argv = [a.replace("$D", d) for a in FA]
            with Qmpd(["-M", "none"] + argv, binary_path=b) as q:
                c = q.connect()
                c.qmpd = b is None
                assert reopen(c, dict(Q, **{"detect-zeroes": "on"})) is None
                io(c, "n0", "write -P 0 0 64k")
                assert reopen(c, Q) is None
                io(c, "n0", "write -P 0 1M 64k")
                c.cmd("quit")
                q.wait(30)
            a = os.path.join(d, "a.qcow2")
            if b is None:
                check_clean(a)
            maps.append(json.loads(img("map", "--output=json", a)))
    for m in maps:
        # (QEMU also writes a zero flag where qmpd leaves it unallocated)
        assert [(e["start"], e["zero"], e["data"]) for e in m
                if e["start"] in (0, MiB)] == [(0, True, False),
                                               (MiB, False, True)], maps


def test_raw_window():
    """raw offset and size move the window onto the file; QEMU's checks
    and messages; omitted, the whole file again."""
    def images(d):
        p = os.path.join(d, "b.raw")
        img("create", "-q", "-f", "raw", p, "64M")
        subprocess.run(["qemu-io", "-f", "raw", "-c",
                        "write -P 0x5a 64k 64k", p], check=True,
                       stdout=subprocess.DEVNULL)

    R = {"driver": "raw", "node-name": "r", "file": "f1"}
    args = ["-blockdev", "driver=file,filename=$D/b.raw,node-name=f1",
            "-blockdev", "driver=raw,file=f1,node-name=r"]
    steps = [
        lambda c, p, d: reopen(c, dict(R, offset=65536, size=MiB)),
        lambda c, p, d: states(c)["r"][5],
        lambda c, p, d: io(c, "r", "read -P 0x5a 0 64k"),
        lambda c, p, d: reopen(c, dict(R, offset=128 * MiB)),
        lambda c, p, d: reopen(c, dict(R, offset=512, size=64 * MiB)),
        lambda c, p, d: reopen(c, dict(R, size=1000)),
        lambda c, p, d: reopen(c, dict(R, offset=-1)),
        lambda c, p, d: states(c)["r"][5],
        lambda c, p, d: reopen(c, R),
        lambda c, p, d: states(c)["r"][5],
        lambda c, p, d: io(c, "r", "read -P 0x5a 64k 64k"),
    ]
    r = scenario(images, args, steps)
    assert r[:2] == [None, MiB] and r[7] == MiB and r[9] == 64 * MiB, r
    assert r[3] == ("Offset (134217728) cannot be greater than size of the "
                    "containing file (67108864)"), r
    assert r[5] == "Specified size is not multiple of 512", r


def test_file_switch():
    """file naming another node switches the child: reads come from the
    new file; back again; a missing node or a cycle is refused."""
    def images(d):
        qcow2_images(d)
        a = os.path.join(d, "a.qcow2")
        subprocess.run(["qemu-io", "-c", "write -P 0x11 0 64k", a],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copy(a, os.path.join(d, "c.qcow2"))
        subprocess.run(["qemu-io", "-c", "write -P 0x22 0 64k",
                        os.path.join(d, "c.qcow2")], check=True,
                       stdout=subprocess.DEVNULL)

    args = FA + ["-blockdev", "driver=file,filename=$D/c.qcow2,node-name=f2"]
    steps = [
        lambda c, p, d: reopen(c, dict(Q, file="f2")),
        lambda c, p, d: states(c)["n0"][4],
        lambda c, p, d: io(c, "n0", "read -P 0x22 0 64k"),
        lambda c, p, d: reopen(c, dict(Q, file="nonexist")),
        lambda c, p, d: reopen(c, dict(Q, file="n0")),
        lambda c, p, d: reopen(c, Q),
        lambda c, p, d: io(c, "n0", "read -P 0x11 0 64k"),
        lambda c, p, d: states(c)["n0"][4],
    ]
    r = scenario(images, args, steps)
    assert r[:2] == [None, "c.qcow2"] and r[7] == "a.qcow2", r
    assert r[3] == "Cannot find device='' nor node-name='nonexist'", r
    assert r[4] == "Making 'n0' a file child of 'n0' would create a cycle"


def refused_case(make_images, args, node, entries, want):
    """Each entry is refused with QEMU's message; nothing changes."""
    def step(e):
        def f(c, p, d):
            opts = e(d) if callable(e) else e
            return (reopen(c, *opts) if isinstance(opts, list)
                    else reopen(c, opts)), states(c)
        return f

    steps = [lambda c, p, d: states(c)] + [step(e) for e in entries]
    r = scenario(make_images, args, steps)
    before = r[0]
    for (msg, after), w in zip(r[1:], want):
        assert msg == w, (msg, w)
        assert after == before, (after, before)


def test_refused_file_qcow2():
    refused_case(qcow2_images, FA, "f0", [
        lambda d: F(d, filename=os.path.join(d, "b.raw")),
        lambda d: F(d, locking="on"),
        lambda d: F(d, aio="native", cache={"direct": True}),
        lambda d: F(d, **{"force-share": False}),
        lambda d: F(d, **{"aio-max-batch": 3}),
        lambda d: F(d, filename=os.path.join(d, "b.raw"), locking="off"),
        lambda d: F(d, locking="off", aio="native"),
        dict(Q, driver="raw"),
        dict(Q, driver="raw", offset=512),
        lambda d: dict(Q, file={"driver": "file",
                                "filename": os.path.join(d, "a.qcow2")}),
        dict(Q, **{"force-share": True, "read-only": True}),
        [dict(Q, **{"detect-zeroes": "on"}), {"driver": "qcow2",
                                               "node-name": "nonexist",
                                               "file": "f0"}],
        lambda d: [dict(Q, **{"detect-zeroes": "on", "read-only": True}),
                   F(d, filename=os.path.join(d, "b.raw"))],
        lambda d: [dict(Q, cache={"direct": True}),
                   F(d, **{"read-only": True})],
    ], [
        "Cannot change the option 'filename'",
        "Cannot change the option 'locking'",
        "Cannot change the option 'aio'",
        "Cannot change the option 'force-share'",
        "Cannot change the option 'aio-max-batch'",
        "Cannot change the option 'locking'",
        "Cannot change the option 'locking'",
        "Cannot change the option 'driver'",
        "Cannot change the option 'offset'",
        "Cannot change the option 'file.driver'",
        "Cannot change the option 'force-share'",
        "Failed to find node with node-name='nonexist'",
        "Cannot change the option 'filename'",
        "Read-only block node 'f0' cannot support read-write users",
    ])


def test_refused_null_blkdebug():
    """Options null-co and blkdebug cannot change: changed, or left out
    when they were given (not reset to a default)."""
    def images(d):
        img("create", "-q", "-f", "raw", os.path.join(d, "b.raw"), "64M")
        img("create", "-q", "-f", "raw", os.path.join(d, "c.raw"), "64M")

    N = {"driver": "null-co", "node-name": "z"}
    D = {"driver": "blkdebug", "node-name": "d", "image": "f1"}
    args = ["-blockdev", "driver=null-co,node-name=z,size=4096",
            "-blockdev", "driver=file,filename=$D/b.raw,node-name=f1",
            "-blockdev", "driver=file,filename=$D/c.raw,node-name=f2",
            "-blockdev", "driver=blkdebug,image=f1,node-name=d,"
            "max-transfer=65536,inject-error.0.event=read_aio"]
    DD = dict(D, **{"max-transfer": 65536,
                    "inject-error": [{"event": "read_aio"}]})
    refused_case(images, args, None, [
        dict(N, size=1024), N, dict(N, size=4096, **{"read-zeroes": True}),
        dict(N, size=4096, **{"latency-ns": 5}),
        D, dict(D, **{"max-transfer": 65536}),
        dict(DD, **{"max-transfer": 4096}), dict(DD, align=4096),
        dict(DD, image="f2"),
    ], [
        "Cannot change the option 'size'",
        "Option 'size' cannot be reset to its default value",
        "Cannot change the option 'read-zeroes'",
        "Cannot change the option 'latency-ns'",
        "Option 'max-transfer' cannot be reset to its default value",
        "Option 'inject-error.0.event' cannot be reset to its default value",
        "Cannot change the option 'max-transfer'",
        "Cannot change the option 'align'",
        "Cannot change the option 'image'",
    ])
    r = scenario(images, args, [
        lambda c, p, d: reopen(c, dict(N, size=4096)),
        lambda c, p, d: reopen(c, dict(DD, **{"detect-zeroes": "on"})),
        states])
    assert r[:2] == [None, None] and r[2]["d"][3] == "on", r


def test_inherited_children():
    """Children a node opened for itself follow it: its new cache.direct
    and read-only reach the inline file (O_DIRECT on the descriptor) and
    the backing chain; inline options given anew reset the child's own;
    a child named by name keeps its own and what it last inherited."""
    def images(d):
        a = os.path.join(d, "a.qcow2")
        img("create", "-q", "-f", "qcow2", a, "64M")
        img("create", "-q", "-f", "qcow2", "-b", a, "-F", "qcow2",
            os.path.join(d, "t.qcow2"))

    T = {"driver": "qcow2", "node-name": "t"}
    args = ["-blockdev", json.dumps(dict(T, file={
        "driver": "file", "filename": "$D/t.qcow2", "node-name": "tf"},
        backing={"driver": "qcow2", "node-name": "b", "file": {
            "driver": "file", "filename": "$D/a.qcow2",
            "node-name": "bf"}}))]

    def tf(d, **o):
        return dict({"driver": "file", "node-name": "tf",
                     "filename": os.path.join(d, "t.qcow2")}, **o)

    def direct(c, pid, d):
        return sorted(bool(f & O_DIRECT) for f in
                      fd_flags(pid, os.path.join(d, "t.qcow2"))
                      + fd_flags(pid, os.path.join(d, "a.qcow2")))

    steps = [
        lambda c, p, d: reopen(c, dict(T, file="tf", backing="b",
                                       cache={"direct": True})),
        states, direct,
        lambda c, p, d: reopen(c, dict(T, file=tf(d, **{
            "detect-zeroes": "on"}), backing="b")),
        states,
        lambda c, p, d: reopen(c, dict(T, file="tf", backing={
            "driver": "qcow2", "node-name": "b", "file": "bf",
            "detect-zeroes": "on"})),
        states,
        lambda c, p, d: reopen(c, dict(T, file="tf", backing="b",
                                       **{"read-only": True})),
        states,
        lambda c, p, d: reopen(c, dict(T, file=tf(d, filename=os.path.join(
            d, "a.qcow2")), backing="b")),
        lambda c, p, d: reopen(c, dict(T, file="tf")),
        lambda c, p, d: reopen(c, dict(T, file="tf", backing=None)),
        lambda c, p, d: sorted(states(c)),
    ]
    r = scenario(images, args, steps)
    assert r[0] is None and r[2] == [True, True], r
    assert r[1]["tf"][1] and r[1]["b"][1] and r[1]["bf"][1], r
    assert r[4]["tf"][3] == "on" and not r[4]["t"][1], r
    assert r[6]["b"][3] == "on" and r[8]["t"][0] and r[8]["tf"][0], r
    assert r[9] == "Cannot change the option 'filename'", r
    assert r[10] == "backing is missing for 't'", r
    # tf keeps the read-only it inherited: t cannot write it
    assert r[11] == "Block node is read-only", r


def test_device_read_only():
    """A guest device that writes keeps its node writable."""
    def images(d):
        img("create", "-q", "-f", "qcow2", os.path.join(d, "a.qcow2"), "64M")
        img("create", "-q", "-f", "raw", os.path.join(d, "b.raw"), "1M")

    args = ["-M", "pc", "-S"] + FA[:4] + [
        "-device", "virtio-blk-pci,drive=n0,id=v0"]
    refused_case(images, args, None, [
        dict(Q, **{"read-only": True}),
        lambda d: [F(d, **{"read-only": True})],
    ], [
        "Read-only block node 'n0' cannot support read-write users",
        "Read-only block node 'f0' cannot support read-write users",
    ])


def test_qmpd_refusals():
    """What qmpd cannot do is refused naming it (QEMU applies these): page
    cache dropping, lazy refcounts; the qcow2 options it applies are
    checked as at open."""
    with Tmp() as d:
        qcow2_images(d)
        with Qmpd(["-M", "none"] + [a.replace("$D", d) for a in FA]) as q:
            c = q.connect()
            before = states(c)
            assert reopen(c, dict(Q, **{"lazy-refcounts": True})) == (
                "qmpd does not support lazy-refcounts=on (refcounts are "
                "always kept up to date)")
            assert reopen(c, dict(Q, **{"cache-size": 65536,
                                        "l2-cache-size": 131072})) == (
                "l2-cache-size may not exceed cache-size")
            assert reopen(c, F(d, **{"drop-cache": False})) == (
                "drop-cache=off is not supported by qmpd")
            assert reopen(c, F(d, **{"x-check-cache-dropped": True})) == (
                "x-check-cache-dropped is not supported by qmpd")
            assert states(c) == before
            assert reopen(c, dict(Q, **{"l2-cache-size": MiB,
                                        "refcount-cache-size": 262144})) \
                is None
            assert reopen(c, dict(Q, **{"pass-discard-other": True,
                                        "cache-clean-interval": 5,
                                        "overlap-check": "all"})) is None
            assert c.error("blockdev-add", driver="file", filename=os.path.join(
                d, "b.raw"), **{"node-name": "x", "drop-cache": False}) == (
                "GenericError", "drop-cache=off is not supported by qmpd")


def main_tests():
    return [test_cache_direct, test_detect_zeroes, test_detect_zeroes_image,
            test_raw_window, test_file_switch, test_refused_file_qcow2,
            test_refused_null_blkdebug, test_inherited_children,
            test_device_read_only, test_qmpd_refusals]


if __name__ == "__main__":
    need_tools()
    run(main_tests())
