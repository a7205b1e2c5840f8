#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""kill -9 of either end of a block migration, at points spread over it,
never leaves a corrupt image.

A guest writing its disk migrates with -b (max-bandwidth low enough
that the bulk pass and the passes after it take a while); at each point
one end is killed: when a share of the disk has gone (drawn from a
seeded generator), or with the source paused before switch-over
(pause-before-switchover), or just after both ends completed.  Then:
qemu-img check finds no corruption in either image (leaked clusters
are allowed: a killed process may leave them, as QEMU's), a source
whose destination was killed keeps running its guest and still writes
a clean image when it quits, and a new qmpd opens each image and reads
all of it.

MIGRATION_KILL_POINTS=N (default 6) sets how many points; the seed is
printed, MIGRATION_KILL_SEED=S repeats a run.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (Qmpd, free_port, need_qemu_utils, run,  # noqa: E402
                  wait_until)
from test_migration_ram import status  # noqa: E402

MiB = 1 << 20
SIZE = 64 * MiB
BASE = ["-M", "pc", "-m", "64"]


def disk_args(path):
    return ["-drive", "file=%s,if=none,id=drive0,format=qcow2" % path,
            "-device", "virtio-blk-pci,drive=drive0,id=vd0"]


def qemu_img(*args, ok=(0,)):
    p = subprocess.run(["qemu-img"] + list(args), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode in ok, (args, p.returncode, p.stdout, p.stderr)
    return p


def not_corrupt(path):
    """qemu-img check: 0 (clean) or 3 (leaks only), never 2
    (corruption) or 1 (could not check)."""
    p = qemu_img("check", path, ok=(0, 3))
    assert "ERROR" not in p.stdout, p.stdout


def opens_and_reads(path):
    """A new qmpd opens @path and reads every byte of it."""
    with Qmpd(["-drive", "file=%s,if=none,id=d0,format=qcow2" % path]) as q:
        c = q.connect()
        c.cmd("human-monitor-command", **{
            "command-line": "qemu-io d0 \"read 0 %d\"" % SIZE})
        c.cmd("quit")
        q.wait(60)
        # qemu-io prints on stdout, as QEMU's
        out = q.stdout_text()
        assert "read %d/%d bytes" % (SIZE, SIZE) in out, out


def points(rng, n):
    """(which end, when) for @n points: named moments first (up to half
    of them), then a share of the disk sent, the ends taking turns."""
    named = [("src", "pre-switchover"), ("dst", "pre-switchover"),
             ("src", "completed"), ("dst", "completed")][:n // 2]
    return named + [(("src", "dst")[i % 2], rng.uniform(0.02, 0.98))
                    for i in range(n - len(named))]


def one_point(d, side, when, seed):
    src = os.path.join(d, "src.qcow2")
    dst = os.path.join(d, "dst.qcow2")
    for p in (src, dst):
        qemu_img("create", "-q", "-f", "qcow2", p, str(SIZE))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 16M",
                    "-c", "write -P 0xcd 40M 8M", src], check=True,
                   capture_output=True)
    uri = "tcp:127.0.0.1:%d" % free_port()
    # the destination fails its load when its source dies (exit 1);
    # the one killed ends as kill9() says
    lost = side == "src" and when != "completed"
    with Qmpd(BASE + disk_args(dst) + ["-incoming", uri],
              status=1 if lost else 0) as de, \
            Qmpd(BASE + disk_args(src)) as se:
        dc, sc = de.connect(), se.connect()
        sc.cmd("__com.qmpd_guest-workload", **{
            "disk-rate": 2 * MiB, "device": "vd0", "seed": seed})
        sc.cmd("migrate-set-parameters", **{"max-bandwidth": 16 * MiB})
        if when == "pre-switchover":
            sc.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "pause-before-switchover", "state": True}])
        sc.cmd("migrate", uri=uri, blk=True)
        if when == "pre-switchover":
            wait_until("pre-switchover",
                       lambda: status(sc) == "pre-switchover")
        elif when == "completed":
            wait_until("both completed", lambda: status(sc) == "completed"
                       and status(dc) == "completed")
        else:
            wait_until("%.0f%% of the disk sent" % (when * 100),
                       lambda: sc.cmd("query-migrate").get("disk", {}).get(
                           "transferred", 0) >= when * 24 * MiB
                       or status(sc) in ("completed", "failed"))
        victim = se if side == "src" else de
        victim.kill9()
        other = de if side == "src" else se
        oc = dc if side == "src" else sc
        if side == "dst" and when != "completed":
            if when == "pre-switchover":
                # as QEMU 7.2's, the paused source waits for its word
                # and meets the closed connection after it
                assert status(sc) == "pre-switchover"
                sc.cmd("migrate-continue", state="pre-switchover")
            wait_until("source failed", lambda: status(sc) == "failed")
            # QEMU restarts a guest it paused for the switch-over
            assert sc.cmd("query-status")["status"] == "running"
        if other.proc.poll() is None:
            try:
                oc.cmd("quit")
            except (OSError, EOFError):
                pass
        other.wait(60)
    for p in (src, dst):
        not_corrupt(p)
        opens_and_reads(p)


def test_kill_sweep():
    need_qemu_utils()
    n = int(os.environ.get("MIGRATION_KILL_POINTS", "6"))
    seed = int(os.environ.get("MIGRATION_KILL_SEED",
                              str(random.randrange(1 << 30))))
    print("# MIGRATION_KILL_SEED=%d MIGRATION_KILL_POINTS=%d" % (seed, n))
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="qmpd-migkill-")
    try:
        for i, (side, when) in enumerate(points(rng, n)):
            try:
                one_point(d, side, when, seed + i)
            except Exception:
                print("# point %d: kill %s at %s" % (i, side, when))
                raise
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run([test_kill_sweep])
