#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Removable media against QEMU 7.2: the tray and medium steps of
test_media.py (blockdev-open-tray, blockdev-close-tray,
blockdev-remove-medium, blockdev-insert-medium, blockdev-change-medium,
eject, and the refusals of each) run on both from the same command line;
every reply, every DEVICE_TRAY_MOVED event (in order), query-block after
each part and HMP's info block must be the same.  Then the commands that
need a medium (jobs, resize, snapshots, bitmaps, HMP commit and
block_resize) on an empty CD-ROM drive, and drive_del of it: the same
refusals and the same backends left.  Only what must differ
is normalised: automatic node names ("#block123") and the sizes on disk.
Skips (77) when QEMU is not installed.
"""

import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Skip, qemu_binary, run  # noqa: E402
from images import need_tools  # noqa: E402
import reference  # noqa: E402
import test_media  # noqa: E402


def normal(v):
    """@v with automatic node names and sizes on disk left out."""
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items() if k != "actual-size"}
    if isinstance(v, list):
        return [normal(x) for x in v]
    if isinstance(v, str):
        return re.sub(r"#block\d+", "#blockN", v)
    return v


def scenario(d, qemu):
    """What one side answers to the steps, and its state after each part."""
    q, c = reference.start(test_media.tray_args(d), qemu=qemu)
    try:
        seen = test_media.run_steps(c, test_media.TRAY_STEPS)
        seen.append(c.cmd("query-block"))
        seen += test_media.run_steps(c, test_media.change_steps(d))
        seen.append(c.cmd("query-block"))
        seen.append(c.cmd("query-named-block-nodes", flat=True))
        seen.append(test_media.hmp(c, "info block"))
        return normal(seen)
    finally:
        q.close()


def empty_drive_steps(d):
    """Commands that need a medium, on the empty drive cd0."""
    target = os.path.join(d, "t.qcow2")
    return [
        ("block-stream", {"device": "cd0"}),
        ("block-commit", {"device": "cd0"}),
        ("drive-mirror", {"device": "cd0", "target": target,
                          "sync": "full"}),
        ("drive-backup", {"device": "cd0", "target": target,
                          "sync": "full"}),
        ("block_resize", {"device": "cd0", "size": 1 << 20}),
        ("blockdev-snapshot-sync", {"device": "cd0",
                                    "snapshot-file": target}),
        ("block-dirty-bitmap-add", {"node": "cd0", "name": "b"}),
        ("change-backing-file", {"device": "cd0", "image-node-name": "x",
                                 "backing-file": "y"}),
        ("transaction", {"actions": [{"type": "blockdev-snapshot-sync",
                                      "data": {"device": "cd0",
                                               "snapshot-file": target}}]}),
        ("query-blockstats", {}),
    ]


def empty_drive(d, qemu):
    q, c = reference.start(["-M", "pc", "-nodefaults", "-S",
                            "-drive", "if=none,id=cd0",
                            "-device", "ide-cd,drive=cd0,id=idecd",
                            "-drive", "if=none,id=e"], qemu=qemu)
    try:
        seen = [c.execute(name, args) for name, args in empty_drive_steps(d)]
        for line in ("commit cd0", "block_resize cd0 1M", "info block -v",
                     "drive_del cd0", "drive_del e"):
            seen.append(test_media.hmp(c, line))
        seen.append(c.cmd("query-block"))
        # QEMU's idle time counts from its start: not compared
        for st in seen[9]["return"]:
            st["stats"].pop("idle_time_ns", None)
        return seen
    finally:
        q.close()


def test_empty_drive_as_qemu():
    if not qemu_binary():
        raise Skip("qemu-system-x86_64 not installed")
    d = tempfile.mkdtemp(prefix="qmpd-media-compat-")
    try:
        want = empty_drive(d, True)
        got = empty_drive(d, False)
        for g, w in zip(got, want):
            assert g == w, ("qmpd", g, "QEMU", w)
        assert not os.listdir(d)
    finally:
        shutil.rmtree(d)


def test_media_steps_as_qemu():
    if not qemu_binary():
        raise Skip("qemu-system-x86_64 not installed")
    d = tempfile.mkdtemp(prefix="qmpd-media-compat-")
    try:
        test_media.make_images(d)
        want = scenario(d, True)
        got = scenario(d, False)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g == w, ("qmpd", g, "QEMU", w)
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run([test_media_steps_as_qemu, test_empty_drive_as_qemu],
        needs=[need_tools])
