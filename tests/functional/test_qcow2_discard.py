#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qcow2 metadata under kill -9, with discards and zero writes.

Writes, zero writes (with and without unmap), discards and flushes are
in flight when qmpd is killed; qemu-img check must then find leaked
clusters at most, never a cluster referenced with a refcount it lacks.
Skips (77) without qemu-img.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
from reference import start  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


def hmp(c, line):
    r = c.execute("human-monitor-command", {"command-line": line})
    assert "return" in r, (line, r)
    return r["return"]


class Tmp:
    def __enter__(self):
        self.d = tempfile.mkdtemp(prefix="qmpd-discard-")
        return self.d

    def __exit__(self, *exc):
        shutil.rmtree(self.d, ignore_errors=True)


def test_frees_across_refcount_blocks():
    """Frees queued in refcount block order 1, 0, 1 (4 KiB clusters: a
    block counts 8 MiB): applying them block by block must not take
    the entries already applied for another block (zeroed) for cluster
    0; that left the header cluster with refcount 0 before."""
    need_tools()
    with Tmp() as d:
        p = os.path.join(d, "f.qcow2")
        img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", p, "64M")
        q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2,"
                      "discard=unmap" % p])
        for cmd in ("write -P 1 0 10M", "flush", "discard 9M 64k",
                    "discard 1M 64k", "discard 9536k 64k", "flush",
                    "read -P 1 8M 1M", "read -P 0 9M 64k"):
            hmp(c, 'qemu-io d0 "%s"' % cmd)
        c.execute("quit")
        assert q.wait(30) == 0
        out = q.stdout_text()
        q.close()
        assert "fail" not in out.lower(), out
        check_clean(p)


def test_kill9_consistent():
    """kill -9 while writes, zero writes, discards and flushes are in
    flight, on 4 KiB clusters (many refcount blocks, freed clusters
    reused at once): every time qemu-img check finds leaks at most,
    never a cluster referenced with a refcount it lacks."""
    need_tools()
    import random
    import signal
    rnd = random.Random(7)
    ops = ["aio_write -P 0x%x" % v for v in (0x11, 0x22, 0x33)] + \
        ["aio_write -z", "aio_write -z -u", "discard", "aio_flush"]
    with Tmp() as d:
        p = os.path.join(d, "k.qcow2")
        for it in range(8):
            if it % 4 == 0:
                img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k",
                    p, "64M")
            q, c = start(["-drive", "file=%s,if=none,id=d0,format=qcow2,"
                          "discard=unmap" % p])
            for _ in range(rnd.randrange(20, 300)):
                off = rnd.randrange(0, 64 * MiB, 512)
                ln = min(rnd.choice([512, 4 * KiB, 64 * KiB, 300 * KiB, MiB]),
                         64 * MiB - off)
                op = rnd.choice(ops)
                hmp(c, 'qemu-io d0 "%s"' % (op if op == "aio_flush"
                                            else "%s %d %d" % (op, off, ln)))
            q.proc.send_signal(signal.SIGKILL)
            q.proc.wait()
            q.close()
            check_clean(p, leaks=True)
            img("check", "-q", "-r", "leaks", p)


if __name__ == "__main__":
    run([test_frees_across_refcount_blocks, test_kill9_consistent])
