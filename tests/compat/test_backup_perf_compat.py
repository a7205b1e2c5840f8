#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Backup's x-perf against QEMU 7.2: the same bad values fail with the
same message, and max-chunk and max-workers split the copy as QEMU's
block-copy does.  The target goes through blkdebug, which lets the first
write through and fails every later one (set-state on write_aio, then
inject-error in the new state): the job's end (offset, error) and the
target's contents show how many writes the copy took and in which
order.  Skips (77) when QEMU is not installed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, Skip, qemu_binary, run  # noqa: E402

DEADLINE = 60
MiB = 1 << 20

BAD = [{"max-workers": 0}, {"max-workers": -1}, {"max-workers": 2 ** 31},
       {"max-chunk": -1}, {"max-chunk": 512}, {"max-chunk": 65535},
       {"max-workers": 1, "max-chunk": 100},
       {"max-workers": 0, "max-chunk": 100}]

# each splits a 1 MiB copy differently (or not at all)
SPLITS = [{}, {"max-chunk": 0}, {"max-chunk": 2 * MiB},
          {"max-chunk": MiB}, {"max-chunk": MiB // 2},
          {"max-chunk": 600000, "max-workers": 1},
          {"max-chunk": 65536, "max-workers": 1},
          {"max-workers": 1}]


def node(name, path, rules=None):
    f = {"driver": "blkdebug", "image": {"driver": "file",
                                         "filename": path}}
    f.update(rules or {})
    return json.dumps({"driver": "raw", "node-name": name, "file": f})


def images(d):
    src, tgt = os.path.join(d, "src.raw"), os.path.join(d, "tgt.raw")
    for p in (src, tgt):
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", p, "1M"],
                       check=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M",
                    src], check=True, capture_output=True)
    return src, tgt


def side(binary_path, d):
    """One side's transcript: the errors, then each split's outcome."""
    t = []
    src, tgt = images(d)
    with Qmpd(["-M", "none", "-blockdev", node("src", src),
               "-blockdev", node("tgt", tgt)], binary_path=binary_path) as q:
        c = q.connect()
        for xp in BAD:
            t.append((xp, c.execute("blockdev-backup", {
                "device": "src", "target": "tgt", "sync": "full",
                "job-id": "j", "x-perf": xp})))
        c.cmd("quit")
        q.wait(DEADLINE)
    once = {"set-state": [{"event": "write_aio", "state": 1,
                           "new_state": 2}],
            "inject-error": [{"event": "write_aio", "state": 2,
                              "errno": 5}]}
    for xp in SPLITS:
        src, tgt = images(d)
        with Qmpd(["-M", "none", "-blockdev", node("src", src),
                   "-blockdev", node("tgt", tgt, once)],
                  binary_path=binary_path) as q:
            c = q.connect()
            c.cmd("blockdev-backup", device="src", target="tgt",
                  sync="full", **{"job-id": "j", "x-perf": xp})
            e = c.event("BLOCK_JOB_COMPLETED", DEADLINE)["data"]
            c.cmd("quit")
            q.wait(DEADLINE)
        cmp = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F",
                              "raw", src, tgt], capture_output=True,
                             text=True, timeout=DEADLINE).stdout.strip()
        # which of two parallel writes goes first is up to timing
        ordered = not e.get("error") or xp.get("max-workers") == 1
        t.append((xp, e.get("offset"), e.get("error"),
                  cmp if ordered else None))
    return t


def test_x_perf_matches_qemu():
    if not qemu_binary() or not shutil.which("qemu-img"):
        raise Skip("QEMU 7.2 not installed")
    dq = tempfile.mkdtemp(prefix="qmpd-perf-qemu-")
    dm = tempfile.mkdtemp(prefix="qmpd-perf-qmpd-")
    try:
        theirs = side(qemu_binary(), dq)
        ours = side(None, dm)
    finally:
        shutil.rmtree(dq, ignore_errors=True)
        shutil.rmtree(dm, ignore_errors=True)
    bad = ["qemu: %r\nqmpd: %r" % (a, b) for a, b in zip(theirs, ours)
           if a != b]
    assert len(theirs) == len(ours) and not bad, "\n".join(bad)
    # the splits did split: a 1 MiB copy in one write, or in several
    # (the second write failed)
    assert [x[2] for x in ours[len(BAD):]] == [
        None, None, None, None, "Input/output error",
        "Input/output error", "Input/output error", None], ours


if __name__ == "__main__":
    run([test_x_perf_matches_qemu])
