#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The NBD server scenario against QEMU 7.2 and qmpd: the same QMP and
HMP steps (replies, errors and BLOCK_EXPORT_DELETED events) and, while
exports are up, what libnbd's nbdinfo and qemu-io see through them
(flags, sizes, block sizes, the export list, base:allocation,
qemu:allocation-depth and a dirty bitmap that records writes made
through the export).  Each side has its own temp dir with the same
images; paths are written $T.  Skips (77) without qemu-system-x86_64,
qemu-img or nbdinfo.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import NEED_QEMU_UTILS, Skip, need_qemu, need_qemu_utils  # noqa
from qmpd import run  # noqa: E402
import reference  # noqa: E402

MiB = 1 << 20


def need_nbdinfo():
    if not shutil.which("nbdinfo"):
        raise Skip("nbdinfo not installed", NEED_QEMU_UTILS)


def tool(*args):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=120)
    return {"exit": p.returncode, "out": p.stdout, "err": p.stderr}


def prepare(d):
    for name, cmds in (("disk.qcow2", ["write -P 0x11 0 1M",
                                       "write -z 4M 1M"]),
                       ("base.qcow2", ["write -P 0x22 8M 2M"])):
        path = os.path.join(d, name)
        tool("qemu-img", "create", "-q", "-f", "qcow2", path, "64M")
        for c in cmds:
            tool("qemu-io", "-f", "qcow2", "-c", c, path)
    tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
         "-F", "qcow2", os.path.join(d, "top.qcow2"))
    tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x33 9M 64k",
         os.path.join(d, "top.qcow2"))
    tool("qemu-img", "create", "-q", "-f", "raw", os.path.join(d, "ro.raw"),
         "1M")


def uri(name):
    return "nbd+unix:///%s?socket=$T/nbd.sock" % name


EXP = {"type": "nbd", "id": "e0", "node-name": "d0", "name": "exp",
       "description": "the disk", "allocation-depth": True}

STEPS = [
    ("nbd-server-stop", {}),
    ("block-export-add", EXP),
    ("nbd-server-start", {"addr": {"type": "unix",
                                   "data": {"path": "$T/nbd.sock"}},
                          "tls-creds": "tls0"}),
    ("nbd-server-start", {"addr": {"type": "unix",
                                   "data": {"path": "$T/nbd.sock"}}}),
    ("nbd-server-start", {"addr": {"type": "unix",
                                   "data": {"path": "$T/nbd2.sock"}}}),
    ("block-export-add", dict(EXP, id="1x")),
    ("block-export-add", dict(EXP, **{"node-name": "nope"})),
    ("block-export-add", EXP),
    ("block-export-add", EXP),
    ("block-export-add", dict(EXP, id="e1")),
    ("block-export-add", {"type": "nbd", "id": "w", "node-name": "ro",
                          "writable": True}),
    ("nbd-server-add", {"device": "ro", "writable": True}),
    ("block-export-add", {"type": "nbd", "id": "t", "node-name": "t0",
                          "allocation-depth": True}),
    ("block-dirty-bitmap-add", {"node": "d0", "name": "b0"}),
    ("block-export-add", dict(EXP, id="e2", name="ro-bm", bitmaps=["b0"])),
    ("block-export-add", dict(EXP, id="e2", name="bm", bitmaps=["nope"])),
    ("block-export-add", dict(EXP, id="e2", name="bm", bitmaps=[
        {"node": "d0", "name": "nope"}])),
    ("block-export-add", dict(EXP, id="e2", name="bm", bitmaps=[
        {"node": "nope", "name": "b0"}])),
    ("block-export-add", dict(EXP, id="e2", name="bm", bitmaps=[
        {"node": "d0", "name": "b0"}], writable=True)),
    ("block-export-add", dict(EXP, id="e3", name="bm3", bitmaps=["b0"],
                              writable=True)),
    ("query-block-exports", {}),
    ("nbdinfo", ["--json", uri("exp")]),
    ("nbdinfo", ["--json", uri("bm")]),
    ("nbdinfo", ["--list", uri("")]),
    ("nbdinfo", ["--map", uri("exp")]),
    ("nbdinfo", ["--map=qemu:allocation-depth", uri("exp")]),
    ("nbdinfo", ["--map=qemu:allocation-depth", uri("t0")]),
    ("nbdinfo", ["--map", uri("t0")]),
    ("qemu-io", ["-f", "raw", "-c", "write -P 0x44 2M 64k", "-c",
                 "write -z 3M 4k", uri("bm")]),
    ("nbdinfo", ["--map=qemu:dirty-bitmap:b0", uri("bm")]),
    ("qemu-io", ["-f", "raw", "-c", "write -P 0x44 2M 64k", uri("exp")]),
    ("nbdinfo", ["nbd+unix:///nope?socket=$T/nbd.sock"]),
    ("block-dirty-bitmap-remove", {"node": "d0", "name": "b0"}),
    ("blockdev-del", {"node-name": "d0"}),
    ("nbd-server-remove", {"name": "bm"}),
    ("block-export-del", {"id": "nope"}),
    ("block-export-del", {"id": "e2"}),
    ("block-export-del", {"id": "e2", "mode": "hard"}),
    ("hmp", "nbd_server_remove nope"),
    ("hmp", "nbd_server_add -w d0 again"),
    ("hmp", "nbd_server_remove -f again"),
    ("query-block-exports", {}),
    ("hmp", "nbd_server_stop"),
    ("hmp", "nbd_server_stop"),
    ("query-block-exports", {}),
    ("hmp", "nbd_server_start unix:$T/nbd.sock"),
    ("nbd-server-add", {"device": "d0"}),
    ("nbdinfo", ["--list", uri("")]),
    ("hmp", "nbd_server_start unix:$T/nbd.sock"),
    ("nbd-server-stop", {}),
    ("hmp", "nbd_server_start nonsense"),
    ("hmp", "nbd_server_start fd:nope"),
    ("hmp", "nbd_server_start"),
    ("hmp", "nbd_server_add -w nope"),
    ("hmp", "help nbd_server_start"),
    ("hmp", "help nbd_server_add"),
    ("hmp", "help nbd_server_remove"),
    ("hmp", "help nbd_server_stop"),
]


def subst(v, d):
    if isinstance(v, str):
        return v.replace("$T", d)
    if isinstance(v, list):
        return [subst(x, d) for x in v]
    if isinstance(v, dict):
        return {k: subst(x, d) for k, x in v.items()}
    return v


def scenario(qemu):
    d = tempfile.mkdtemp(prefix="qmpd-nbd-compat-")
    try:
        prepare(d)
        args = ["-blockdev", json.dumps({
            "driver": "qcow2", "node-name": "d0",
            "file": {"driver": "file", "filename": d + "/disk.qcow2"}}),
            "-blockdev", json.dumps({
                "driver": "raw", "node-name": "ro", "read-only": True,
                "file": {"driver": "file", "filename": d + "/ro.raw"}}),
            "-blockdev", json.dumps({
                "driver": "qcow2", "node-name": "t0",
                "file": {"driver": "file", "filename": d + "/top.qcow2"}})]
        q, c = reference.start(args, qemu=qemu)
        out = []
        try:
            for name, a in STEPS:
                a = subst(a, d)
                if name in ("nbdinfo", "qemu-io"):
                    r = tool(name, *a)
                    # qemu-io's timing lines differ from run to run
                    r["out"] = re.sub(r"(?m)^.* ops; .*\n", "", r["out"])
                elif name == "hmp":
                    r = c.execute("human-monitor-command",
                                  {"command-line": a})
                else:
                    r = c.execute(name, a)
                if isinstance(r, dict):
                    r.pop("id", None)
                events = [{k: v for k, v in e.items() if k != "timestamp"}
                          for e in c.events]
                c.events.clear()
                out.append((name, json.dumps(subst_back(r, d),
                                             sort_keys=True), events))
            c.execute("quit")
            q.wait(60)
        finally:
            q.close()
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def subst_back(v, d):
    if isinstance(v, str):
        return v.replace(d, "$T")
    if isinstance(v, list):
        return [subst_back(x, d) for x in v]
    if isinstance(v, dict):
        return {k: subst_back(x, d) for k, x in v.items()}
    return v


def test_nbd_scenario():
    """Every step's reply, error, event and tool output alike."""
    need_qemu()
    need_qemu_utils()
    need_nbdinfo()
    theirs = scenario(True)
    ours = scenario(False)
    bad = []
    for i, (step, t, o) in enumerate(zip(STEPS, theirs, ours)):
        if t != o:
            bad.append("step %d %s %s:\n  qemu: %s\n  qmpd: %s"
                       % (i, step[0], json.dumps(step[1]), t, o))
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    run([test_nbd_scenario])
