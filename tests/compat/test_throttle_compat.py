#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""I/O throttling against QEMU 7.2: the throttle-group object (-object,
object-add, qom-get/qom-set of limits and the x- names), the throttle
filter (blockdev-add, query-named-block-nodes, refusals),
block_set_io_throttle and what query-block shows of a drive's limits.
Each scenario runs on both with the same arguments; the replies must be
equal (node names QEMU makes up aside).  Skips (77) without QEMU."""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import reference  # noqa: E402
from qmpd import binary, need_qemu, qemu_binary, run  # noqa: E402

DEADLINE = 60


def anon(v):
    """Auto-generated node names ("#block123") differ between runs."""
    if isinstance(v, dict):
        return {k: ("#block" if k == "node-name" and isinstance(x, str)
                    and x.startswith("#block") else anon(x))
                for k, x in v.items()}
    if isinstance(v, list):
        return [anon(x) for x in v]
    if isinstance(v, str):
        return re.sub(r"#block[0-9]+", "#block", v)
    return v


def normalize(name, args, reply, qemu):
    return anon(reply)


def compare(args, steps):
    with tempfile.TemporaryDirectory() as d:
        cwd = os.getcwd()
        os.chdir(d)
        try:
            with open("d.img", "wb") as f:
                f.truncate(64 << 20)
            theirs = reference.transcript(args, steps, True,
                                          normalize)
            mine = reference.transcript(args, steps, False, normalize)
        finally:
            os.chdir(cwd)
    for (n, a), t, m in zip(steps, theirs, mine):
        assert t == m, "%s %r:\n QEMU: %r\n qmpd: %r" % (n, a, t, m)


def add(id_, **props):
    return ("object-add", dict({"qom-type": "throttle-group", "id": id_},
                               **props))


def get(id_, prop="limits"):
    return ("qom-get", {"path": "/objects/" + id_, "property": prop})


def qset(id_, value, prop="limits"):
    return ("qom-set", {"path": "/objects/" + id_, "property": prop,
                        "value": value})


def test_object():
    compare(["-object", "throttle-group,id=g0,x-bps-total=1000"], [
        ("qom-list", {"path": "/objects/g0"}),
        get("g0"), get("g0", "x-bps-total"),
        qset("g0", {"iops-total": 10, "bps-read": 5}),
        qset("g0", 7, "x-bps-total"),
        add("g1", limits={"bps-total": 10, "bps-read": 5}),
        add("g1", limits={"bps-total": 10}, **{"x-bps-total": 5}),
        get("g1"),
        add("g1"),
        add("g2", limits={"bps-total-max": 10}),
        add("g2", **{"x-bps-total": -1}),
        add("g2", **{"x-bps-total-max-length": 5000000000}),
        add("g2", limits={"bps-total-max-length": 5000000000}),
        add("g2", limits={"bps-total-max-length": -1}),
        add("g2", limits={"iops-size": -1}),
        add("g2", limits={"iops-size": 512}),
        add("g2", limits={"bps-total": 100}, **{"x-bps-total-max": 50}),
        add("g2", limits={"bps-total": 1, "bps-total-max": 10 ** 15,
                          "bps-total-max-length": 2}),
        add("g2", limits={"bps-write": 10 ** 15 + 1}),
        add("g2", limits={"iops-read": 5, "iops-read-max-length": 0}),
        add("g7", limits={"bps-total": 100, "bps-total-max": 200,
                          "bps-total-max-length": 3}),
        qset("g7", {"bps-total-max": 0}),
        qset("g7", {"bps-total-max": 300}),
        get("g7", "x-bps-total-max"), get("g7"),
        qset("g7", {"iops-read": "x"}),
        qset("g7", {"foo": 1}),
        qset("g7", 5),
        ("qom-list-types", {"implements": "throttle-group"}),
        ("object-del", {"id": "g7"}),
        get("g7"),
    ])


def start_error(args):
    """(exit status, message) of QEMU and of qmpd started with @args."""
    outs = []
    for prog in (qemu_binary(), binary()):
        p = subprocess.run([prog, "-M", "none", "-display", "none",
                            "-nodefaults"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=DEADLINE)
        outs.append((p.returncode, p.stderr.decode().split(": ", 1)[1]))
    assert outs[0] == outs[1], (args, outs)


def test_object_cmdline():
    """The -object forms QEMU takes and refuses (QemuOpts: no limits.*)."""
    get_limits = [get("g0")]
    compare(["-object", '{"qom-type": "throttle-group", "id": "g0", '
             '"limits": {"iops-total": 5, "iops-total-max": 50}}'],
            get_limits)
    compare(["-object", "throttle-group,id=g0,x-iops-read=7,x-bps-write=9,"
             "x-iops-size=4096"], get_limits)
    for arg in ["throttle-group,id=g0,limits.bps-total=x",
                "throttle-group,id=g0,limits.bps-total=1,limits.iops-read=7",
                "throttle-group,id=g0,limits.foo=1",
                "throttle-group,id=g0,x-bps-total=5x",
                "throttle-group,id=g0,x-bps-total=-5",
                "throttle-group,id=g0,x-bps-total=5,x-bps-read=1",
                "throttle-group,id=g0,x-bps-total=5,x-bps-total-max=1"]:
        start_error(["-object", arg])


def test_filter():
    """blockdev-add of the filter, its refusals, its node as QEMU shows
    it (over a file, over null-co, as the child of a format)."""
    bdadd = "blockdev-add"
    compare(["-object", "throttle-group,id=g0,x-bps-total=1000",
             "-blockdev", "driver=file,filename=d.img,node-name=f0"], [
        (bdadd, {"driver": "throttle", "node-name": "t0",
                 "throttle-group": "nope", "file": "f0"}),
        (bdadd, {"driver": "throttle", "node-name": "t0", "file": "f0"}),
        (bdadd, {"driver": "throttle", "node-name": "t0",
                 "throttle-group": "g0", "file": "f0"}),
        ("query-named-block-nodes", None),
        ("object-del", {"id": "g0"}),
        (bdadd, {"driver": "throttle", "node-name": "t1",
                 "throttle-group": "g0", "file": {"driver": "null-co"}}),
        (bdadd, {"driver": "raw", "node-name": "r1", "file": {
            "driver": "throttle", "throttle-group": "g0",
            "file": {"driver": "file", "filename": "d.img"}}}),
        ("query-named-block-nodes", {"flat": True}),
        ("blockdev-del", {"node-name": "t0"}),
        ("blockdev-del", {"node-name": "t1"}),
        ("object-del", {"id": "g0"}),
        ("blockdev-del", {"node-name": "r1"}),
        ("object-del", {"id": "g0"}),
        ("query-named-block-nodes", None),
    ])


def hmp(line):
    return ("human-monitor-command", {"command-line": line})


def bsit(target, rates, **more):
    """block_set_io_throttle on @target (device or id) with the six
    rates bps, bps_rd, bps_wr, iops, iops_rd, iops_wr."""
    names = ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"]
    return ("block_set_io_throttle",
            dict(target, **dict(zip(names, rates)), **more))


def test_drive_limits():
    """block_set_io_throttle (QMP and HMP), its refusals, query-block's
    and info block's view of a drive's limits; two drives in a group."""
    compare(["-drive", "file=d.img,format=raw,if=none,id=d0",
             "-drive", "file=d.img,format=raw,if=none,id=d1,"
             "file.locking=off,readonly=on"], [
        ("query-block", None),
        bsit({"device": "d0"}, [1000, 0, 0, 0, 0, 0]),
        ("query-block", None),
        bsit({"device": "d0"}, [1000, 10, 0, 0, 0, 0]),
        bsit({"device": "d0"}, [0, 0, 0, 0, 0, 0], bps_max=100),
        bsit({"device": "d0"}, [10, 0, 0, 0, 0, 0], bps_max=1),
        bsit({"device": "d0"}, [10, 0, 0, 0, 0, 0], bps_max=100,
             bps_max_length=0),
        bsit({"device": "d0"}, [10, 0, 0, 0, 0, 0], bps_max_length=5),
        bsit({"device": "d0"}, [-1, 0, 0, 0, 0, 0]),
        bsit({"device": "d0"}, [1000000000000001, 0, 0, 0, 0, 0]),
        bsit({"device": "d0"}, [10, 0, 0, 0, 0, 0], bps_max=100,
             bps_max_length=2),
        ("query-block", None),
        bsit({"device": "d0"}, [10, 0, 0, 5, 0, 0], iops_size=4096,
             group="gg"),
        ("query-block", None),
        bsit({"device": "d1"}, [0, 0, 0, 3, 0, 0], group="gg"),
        ("query-block", None),
        bsit({"device": "nope"}, [10, 0, 0, 5, 0, 0]),
        bsit({"id": "nope"}, [10, 0, 0, 5, 0, 0]),
        bsit({}, [10, 0, 0, 5, 0, 0]),
        bsit({"device": "d0", "id": "x"}, [10, 0, 0, 5, 0, 0]),
        bsit({"device": "d0"}, [0, 0, 0, 0, 0, 0]),
        ("query-block", None),
        hmp('block_set_io_throttle d0 1000 0 0 5 0 0'),
        hmp('info block'),
        hmp('block_set_io_throttle d0 1000 1 0 5 0 0'),
        hmp('block_set_io_throttle nope 1000 0 0 5 0 0'),
        hmp('block_set_io_throttle d0 1000'),
        hmp('block_set_io_throttle d0 1k 0 0 5 0 0'),
        bsit({"device": "d0"}, [0, 100, 0, 0, 0, 7], bps_rd_max=1000,
             bps_rd_max_length=4, iops_wr_max=70, iops_size=512),
        hmp('info block'),
        hmp('help block_set_io_throttle'),
        hmp('block_set_io_throttle d0 0 0 0 0 0 0'),
        hmp('info block'),
    ])


def test_drive_cmdline():
    """-drive throttling.* and the legacy names: refusals, and what
    query-block shows of the limits a drive starts with, also an empty
    one."""
    drive = "file=d.img,format=raw,if=none,id=d0,"
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "d.img"), "wb") as f:
            f.truncate(1 << 20)
        cwd = os.getcwd()
        os.chdir(d)
        try:
            for opts in ["bps=abc", "bps=-1", "throttling.bps-total=1k",
                         "bps=100,throttling.bps-total=5",
                         "group=a,throttling.group=b",
                         "bps=100,bps_rd=5", "throttling.bps-total-max=5",
                         "throttling.bps-total-max-length=0",
                         "iops_size=512", "bps=-1x", "iops_wr_max=5",
                         "throttling.bps-total=18446744073709551615",
                         "throttling.bps-total=18446744073709551616",
                         "throttling.foo=1", "throttling.bps.total=1"]:
                start_error(["-drive", drive + opts])
        finally:
            os.chdir(cwd)
    query = [("query-block", None)]
    for opts in ["bps=1000,iops_rd=5,iops_size=4096",
                 "throttling.iops-total=5,throttling.iops-total-max=50,"
                 "throttling.iops-total-max-length=3,group=gx",
                 "throttling.bps-write=0x100,bps_wr_max=512,"
                 "throttling.group=g2",
                 "bps=0"]:
        compare(["-drive", drive + opts], query)
    # an empty drive keeps its limits for the medium it is given
    compare(["-drive", "if=none,id=cd,media=cdrom,bps=1000"], [
        ("query-block", None),
        bsit({"device": "cd"}, [1, 0, 0, 0, 0, 0]),
        ("blockdev-change-medium", {"device": "cd", "filename": "d.img",
                                    "format": "raw"}),
        ("query-block", None),
        bsit({"device": "cd"}, [0, 0, 0, 7, 0, 0]),
        ("blockdev-remove-medium", {"id": "cd"}),
        ("blockdev-open-tray", {"id": "cd"}),
        ("blockdev-remove-medium", {"id": "cd"}),
        ("query-block", None),
    ])


if __name__ == "__main__":
    run([test_object, test_object_cmdline, test_filter, test_drive_limits,
         test_drive_cmdline],
        needs=[need_qemu])
