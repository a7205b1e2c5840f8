#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""force-share and image locking, against a second process.

A qemu-io process holds an image read-write (its "wrote" line says the
image is open and locked); qmpd then opens it read-only with and
without force-share, by blockdev-add and -drive, with the option given
on the node, inherited by its file and backing children, or not
inherited by a child referenced by name.  Every scenario runs against
QEMU 7.2 too (when installed) and must give the same outcome, error
text included; the lock bytes each process holds on an image
(/proc/locks) are compared as well.  Skips (77) without qemu-img.
"""

import atexit
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools, qemu_io  # noqa: E402
from reference import start  # noqa: E402
from test_bitmaps import quit  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60


class Holder:
    """qemu-io holding @path read-write, once it has written to it."""

    def __init__(self, path, fmt="qcow2", pattern=0x5a):
        self.p = subprocess.Popen(["qemu-io", "-f", fmt, path],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.out = ""
        self.write("write -P 0x%x 0 64k" % pattern)

    def write(self, line):
        """A write, flushed (qcow2 metadata reaches the file) and read
        back: once the read's line is out, the write is visible."""
        self.run(line, "wrote 65536/65536")
        self.run("flush", "qemu-io> ")
        self.run("read %s 64k" % line.split()[-2], "read 65536/65536")

    def run(self, line, expect):
        """Send one command (qemu-io takes the next one once it has
        printed its prompt); wait, never a fixed time, for @expect in
        what it prints."""
        self.out = ""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        deadline = time.time() + DEADLINE
        while expect not in self.out:
            left = deadline - time.time()
            assert left > 0, "qemu-io: no %r in %r" % (expect, self.out)
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                data = os.read(self.p.stdout.fileno(), 65536).decode()
                assert data, "qemu-io exited: %r" % self.out
                self.out += data

    def close(self):
        self.p.communicate("quit\n", timeout=DEADLINE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.close()


def scratch():
    """A temporary directory, removed when the test program ends."""
    d = tempfile.mkdtemp(prefix="qmpd-cor-")
    atexit.register(shutil.rmtree, d, True)
    return d


def image(name="a.qcow2", size="1M"):
    """A new empty qcow2 image in a scratch directory."""
    p = os.path.join(scratch(), name)
    img("create", "-q", "-f", "qcow2", p, size)
    return p


def sides():
    """qmpd, and QEMU 7.2 beside it when it is installed."""
    return [False, True] if qemu_binary() else [False]


def outcome(c, command, args):
    """None when @command succeeds, else its (class, message)."""
    r = c.execute(command, args)
    if "error" in r:
        return r["error"]["class"], r["error"]["desc"]
    return None


def node_names(c):
    """The nodes named by the test (not QEMU's automatic #blockN)."""
    return sorted(n["node-name"] for n in c.cmd("query-named-block-nodes")
                  if not n["node-name"].startswith("#"))


def lock_bytes(path):
    """The OFD lock bytes any process holds on @path."""
    st = os.stat(path)
    dev = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev),
                            st.st_ino)
    held = set()
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if "OFDLCK" in parts and dev in parts:
                held.update(range(int(parts[-2]), int(parts[-1]) + 1))
    return sorted(held)


def qcow2_file(path, **kw):
    d = {"driver": "qcow2", "file": {"driver": "file", "filename": path}}
    d.update(kw)
    return d


def test_read_write_refused():
    """force-share on a writable node: QEMU's error, nothing opened."""
    need_tools()
    a = image()
    cases = [
        ("blockdev-add", qcow2_file(a, **{"node-name": "n",
                                          "force-share": True})),
        ("blockdev-add", {"driver": "file", "filename": a,
                          "node-name": "f", "force-share": True}),
        # read-only on the format, but its file is made writable
        ("blockdev-add", {"driver": "qcow2", "node-name": "n",
                          "read-only": True, "force-share": True,
                          "file": {"driver": "file", "filename": a,
                                   "read-only": False}}),
        ("blockdev-add", {"driver": "file", "filename": a,
                          "node-name": "f", "force-share": True,
                          "auto-read-only": True}),
    ]
    want = ("GenericError",
            "force-share=on can only be used with read-only images")
    for qemu in sides():
        q, c = start([], qemu)
        with q:
            for command, args in cases:
                assert outcome(c, command, args) == want, (qemu, args)
                assert node_names(c) == [], (qemu, node_names(c))
            assert lock_bytes(a) == [], lock_bytes(a)
            quit(q, c)
        # the same on the command line: the process does not start
        with Qmpd(["-M", "none", "-drive",
                   "file=%s,if=none,id=d0,force-share=on" % a],
                  binary_path=qemu_binary() if qemu else None,
                  wait=False, status=1) as q:
            assert q.wait(DEADLINE) == 1
            assert ("force-share=on can only be used with read-only images"
                    in q.stderr_text()), q.stderr_text()
    check_clean(a)


def test_open_held_image():
    """qemu-io writes an image; a read-only open needs force-share."""
    need_tools()
    a = image()
    results = {}
    for qemu in sides():
        with Holder(a) as h:
            q, c = start([], qemu)
            with q:
                r = []
                r.append(outcome(c, "blockdev-add", qcow2_file(
                    a, **{"node-name": "n", "read-only": True})))
                assert node_names(c) == []
                r.append(outcome(c, "blockdev-add", qcow2_file(
                    a, **{"node-name": "n", "read-only": True,
                          "force-share": True})))
                # the holder goes on writing what the reader then sees
                h.write("write -P 0x6b 64k 64k")
                hmp(c, 'qemu-io n "read -P 0x6b 64k 64k"')
                if not qemu:
                    c.cmd("__com.qmpd_qemu-io", device="n",
                          command="read -P 0x6b 64k 64k")
                    c.cmd("__com.qmpd_qemu-io", device="n",
                          command="read -P 0x5a 0 64k")
                r.append(node_names(c))
                quit(q, c)
        results[qemu] = r
        if qemu:
            assert "Pattern verification failed" not in q.stdout_text()
    assert results[False] == [
        ("GenericError", 'Failed to get shared "write" lock'), None, ["n"],
    ], results[False]
    if True in results:
        assert results[True] == results[False], results
    check_clean(a)
    qemu_io(a, "read -P 0x5a 0 64k", "read -P 0x6b 64k 64k")


def test_held_by_force_share():
    """A force-share reader leaves the image free for a writer."""
    need_tools()
    a = image()
    for qemu in sides():
        q, c = start(["-drive", "file=%s,if=none,id=d0,readonly=on,"
                      "force-share=on" % a], qemu)
        with q:
            assert lock_bytes(a) == [100], (qemu, lock_bytes(a))
            with Holder(a, pattern=0x11 + qemu) as h:
                h.write("write -P 0x22 960k 64k")
                hmp(c, 'qemu-io d0 "read -P 0x22 960k 64k"')
            blk = c.cmd("query-block")[0]["inserted"]
            assert blk["ro"] is True and blk["file"] == a, blk
            # without force-share, a second read-only reader of the
            # same image is fine, a writer is not
            c.cmd("blockdev-add", **qcow2_file(a, **{"node-name": "r",
                                                     "read-only": True}))
            p = subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                                "write 0 4k", a], capture_output=True,
                               text=True, timeout=DEADLINE)
            assert p.returncode != 0 and \
                'Failed to get "write" lock' in p.stdout + p.stderr, p
            quit(q, c)
    check_clean(a)


def test_inheritance():
    """force-share reaches file and backing children opened with the
    node, not a child referenced by name nor one that says otherwise."""
    need_tools()
    base = image("base.qcow2")
    top = os.path.join(os.path.dirname(base), "top.qcow2")
    img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    steps = [
        # the holder writes the backing file: the chain opens only with
        # force-share, which the backing node inherits
        ("blockdev-add", qcow2_file(top, **{"node-name": "t",
                                            "read-only": True})),
        ("blockdev-add", qcow2_file(top, **{"node-name": "t",
                                            "read-only": True,
                                            "force-share": True})),
        ("blockdev-del", {"node-name": "t"}),
        # a child that says force-share=off keeps its locks
        ("blockdev-add", {"driver": "qcow2", "node-name": "t",
                          "read-only": True, "force-share": True,
                          "file": {"driver": "file", "filename": top},
                          "backing": qcow2_file(base, **{
                              "force-share": False})}),
        # a file node opened alone is not force-shared by a parent
        ("blockdev-add", {"driver": "file", "filename": base,
                          "node-name": "bf", "read-only": True}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "b2",
                          "file": "bf", "read-only": True,
                          "force-share": True}),
        ("blockdev-add", {"driver": "file", "filename": base,
                          "node-name": "bf2", "read-only": True,
                          "force-share": True}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "b3",
                          "file": "bf2", "read-only": True}),
    ]
    results = {}
    for qemu in sides():
        with Holder(base):
            q, c = start([], qemu)
            with q:
                results[qemu] = [outcome(c, cmd, args)
                                 for cmd, args in steps]
                results[qemu].append(node_names(c))
                quit(q, c)
    lock = ("GenericError", 'Failed to get shared "write" lock')
    backing = ("GenericError", "Could not open backing file: " + lock[1])
    assert results[False] == [backing, None, None, backing, None, lock,
                              None, None, ["b3", "bf", "bf2"]], results
    if True in results:
        assert results[True] == results[False], results
    check_clean(base)
    check_clean(top)


def test_device_add_held():
    """A device writes: attaching it to a drive that another process
    writes fails with QEMU's error and attaches nothing; a -drive alone
    only reads, so it opens."""
    need_tools()
    raw = os.path.join(scratch(), "r.raw")
    img("create", "-q", "-f", "raw", raw, "1M")
    dev = {"driver": "virtio-blk-pci", "drive": "d0", "id": "vd0"}
    results = {}
    for qemu in sides():
        q, c = start(["-M", "pc", "-drive",
                      "file=%s,format=raw,if=none,id=d0" % raw], qemu)
        with q:
            with Holder(raw, "raw"):
                r = [outcome(c, "device_add", dev),
                     "qdev" in c.cmd("query-block")[0]]
            r.append(outcome(c, "device_add", dev))
            r.append(c.cmd("query-block")[0].get("qdev"))
            quit(q, c)
        results[qemu] = r
    assert results[False] == [
        ("GenericError", 'Failed to get shared "write" lock'), False, None,
        "/machine/peripheral/vd0/virtio-backend"], results[False]
    if True in results:
        assert results[True] == results[False], results


def test_lock_bytes():
    """The lock bytes qmpd holds on an image are QEMU's, per drive
    configuration, measured on QEMU 7.2 (encoded here for machines
    without it)."""
    need_tools()
    q2 = image("a.qcow2")
    raw = os.path.join(os.path.dirname(q2), "r.raw")
    img("create", "-q", "-f", "raw", raw, "1M")
    rw = [100, 101, 103, 201, 203]
    cases = [
        (q2, ["-M", "none"], "", rw),
        (q2, ["-M", "pc"], ",if=virtio", rw),
        (q2, ["-M", "pc"], ",if=virtio,readonly=on", [100, 201, 203]),
        (q2, ["-M", "none"], ",readonly=on,force-share=on", [100]),
        (q2, ["-M", "pc"], ",if=virtio,readonly=on,force-share=on", [100]),
        # raw is a filter for permissions: a -drive alone only reads
        (raw, ["-M", "none"], ",format=raw", [100]),
        (raw, ["-M", "pc"], ",format=raw,if=virtio", [100, 101, 201]),
        (raw, ["-M", "pc"], ",format=raw,if=virtio,readonly=on",
         [100, 201]),
    ]
    for path, machine, opts, want in cases:
        for qemu in sides():
            iface = "" if "if=" in opts else ",if=none"
            q, c = start(machine + ["-drive", "file=%s,id=d0%s%s"
                                    % (path, iface, opts)], qemu)
            with q:
                assert lock_bytes(path) == want, (qemu, opts,
                                                  lock_bytes(path))
                if "format=raw" in opts and "if=" not in opts:
                    # QEMU's qemu-io takes "write" for good when it writes
                    hmp(c, 'qemu-io d0 "write 0 4k"')
                    assert lock_bytes(path) == [100, 101]
                quit(q, c)
    check_clean(q2)


def test_reopen():
    """blockdev-reopen keeps force-share as it is, with QEMU's errors."""
    need_tools()
    a = image()

    def node(ro, **kw):
        o = {"driver": "qcow2", "node-name": "n", "file": "f",
             "read-only": ro}
        o.update(kw)
        return {"options": [o]}

    steps = [
        ("blockdev-add", {"driver": "file", "filename": a,
                          "node-name": "f"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "n", "file": "f",
                          "read-only": True, "force-share": True}),
        ("blockdev-reopen", node(False)),
        ("blockdev-reopen", node(False, **{"force-share": True})),
        ("blockdev-reopen", node(True, **{"force-share": False})),
        ("blockdev-reopen", node(True, **{"force-share": True})),
        ("blockdev-reopen", node(True)),
        ("blockdev-del", {"node-name": "n"}),
        # a child inherits the option, and cannot drop it either
        ("blockdev-add", {"driver": "qcow2", "node-name": "n",
                          "read-only": True, "force-share": True,
                          "file": {"driver": "file", "filename": a,
                                   "node-name": "g"}}),
        ("blockdev-reopen", {"options": [{"driver": "file",
                                          "node-name": "g", "filename": a,
                                          "read-only": True}]}),
        ("blockdev-del", {"node-name": "n"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "n", "file": "f",
                          "read-only": True}),
        ("blockdev-reopen", node(True, **{"force-share": False})),
        ("blockdev-reopen", node(False)),
    ]
    results = {}
    for qemu in sides():
        q, c = start([], qemu)
        with q:
            results[qemu] = [outcome(c, cmd, args) for cmd, args in steps]
            quit(q, c)
    reset = ("GenericError",
             "Option 'force-share' cannot be reset to its default value")
    change = ("GenericError", "Cannot change the option 'force-share'")
    assert results[False] == [None, None, reset, change, change, change,
                              reset, None, None, reset, None, None, change,
                              None], results[False]
    if True in results:
        assert results[True] == results[False], results
    check_clean(a)


if __name__ == "__main__":
    run([test_read_write_refused, test_open_held_image,
         test_held_by_force_share, test_inheritance, test_device_add_held,
         test_lock_bytes, test_reopen])
