#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Migration's QMP and HMP interface against QEMU 7.2 on -M none and pc:
query-migrate before any migration, the capabilities (the full list in
7.2's order, HMP's info text), the parameters (defaults, 7.2's checks in
its order with its messages, all-or-nothing, block-bitmap-mapping's
rules, HMP's conversions of migrate_set_parameter and its info text),
migrate_cancel and migrate-continue without a migration.  Capabilities
qmpd does not implement are set only to false here (qmpd refuses them
on: test_migration.py).  Skips (77) when QEMU is not installed."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import reference  # noqa: E402
from qmpd import need_qemu, run  # noqa: E402


def hmp(line):
    return ("human-monitor-command", {"command-line": line})


def mapping(*nodes):
    return {"block-bitmap-mapping": list(nodes)}


def node(name, alias, *bitmaps):
    return {"node-name": name, "alias": alias,
            "bitmaps": [{"name": b, "alias": a} for b, a in bitmaps]}


SET = "migrate-set-parameters"
QUERY = ("query-migrate-parameters", None)

STEPS = [
    ("query-migrate", None),
    ("query-migrate-capabilities", None),
    QUERY,
    hmp("info migrate"),
    hmp("info migrate_capabilities"),
    hmp("info migrate_parameters"),
    ("migrate-set-capabilities",
     {"capabilities": [{"capability": "events", "state": True}]}),
    ("migrate-set-capabilities",
     {"capabilities": [{"capability": "xbzrle", "state": False},
                       {"capability": "block", "state": False}]}),
    ("migrate-set-capabilities",
     {"capabilities": [{"capability": "foo", "state": True}]}),
    ("migrate-set-capabilities", {"capabilities": [{"capability": "events"}]}),
    ("migrate-set-capabilities", {"capabilities": []}),
    ("query-migrate-capabilities", None),
    hmp("migrate_set_capability events off"),
    hmp("migrate_set_capability events"),
    hmp("migrate_set_capability events maybe"),
    hmp("migrate_set_capability foo on"),
    hmp("migrate_set_capability"),
    hmp("migrate_set_capability events on off"),
    hmp("info migrate_capabilities"),
]

# each alone, then several at once: the first in QEMU's order fails
for p in [{"downtime-limit": 0}, {"downtime-limit": 2000001},
          {"downtime-limit": -1}, {"max-bandwidth": 1 << 40},
          {"multifd-channels": 0}, {"multifd-channels": 256},
          {"throttle-trigger-threshold": 0},
          {"throttle-trigger-threshold": 101},
          {"cpu-throttle-initial": 0}, {"cpu-throttle-initial": 100},
          {"cpu-throttle-increment": 0}, {"cpu-throttle-increment": 101},
          {"cpu-throttle-tailslow": True}, {"compress-level": 10},
          {"compress-threads": 0}, {"compress-threads": 256},
          {"decompress-threads": 0}, {"decompress-threads": 256},
          {"x-checkpoint-delay": 0}, {"xbzrle-cache-size": 1000},
          {"xbzrle-cache-size": 1 << 20}, {"xbzrle-cache-size": 3 << 20},
          {"max-cpu-throttle": 0}, {"max-cpu-throttle": 100},
          {"announce-initial": 0}, {"announce-initial": 100001},
          {"announce-max": 0}, {"announce-max": 100001},
          {"announce-rounds": 1001}, {"announce-step": 0},
          {"announce-step": 10001}, {"multifd-zlib-level": 4},
          {"multifd-zstd-level": 21}, {"multifd-compression": "zlib"},
          {"multifd-compression": "foo"}, {"tls-creds": "x"},
          {"tls-hostname": "h"}, {"tls-creds": None}, {"tls-authz": ""},
          {"block-incremental": True},
          {"downtime-limit": 100, "max-bandwidth": 1000},
          {"max-postcopy-bandwidth": 5}, {"foo": 1},
          {"downtime-limit": "x"},
          {"compress-level": 10, "downtime-limit": 5000000,
           "multifd-channels": 0, "cpu-throttle-initial": 0,
           "announce-step": 0},
          {"downtime-limit": 5000000, "multifd-channels": 0,
           "announce-step": 0, "xbzrle-cache-size": 3},
          {"multifd-channels": 0, "announce-step": 0,
           "xbzrle-cache-size": 3, "max-cpu-throttle": 5},
          {"announce-step": 0, "xbzrle-cache-size": 3,
           "max-cpu-throttle": 5, "announce-rounds": 2000,
           "announce-max": 200000, "announce-initial": 200000,
           "throttle-trigger-threshold": 0},
          {"announce-step": 0, "announce-rounds": 2000,
           "announce-max": 200000, "announce-initial": 200000},
          {"announce-step": 0, "announce-rounds": 2000},
          {"compress-threads": 0, "decompress-threads": 0},
          {"cpu-throttle-increment": 0, "cpu-throttle-initial": 0},
          # both new values count; a failure changes nothing
          {"cpu-throttle-initial": 50, "max-cpu-throttle": 40,
           "downtime-limit": 7},
          {"max-cpu-throttle": 40},
          {"cpu-throttle-initial": 50}]:
    STEPS.append((SET, p))
STEPS += [QUERY, hmp("info migrate_parameters")]

for m in [mapping(node("n1", "a1", ("b1", "ba1"), ("b2", "ba2")),
                  node("n2", "a2")),
          mapping(node("n1", "a1"), node("n1", "a2")),
          mapping(node("n1", "a1"), node("n2", "a1")),
          mapping(node("n1", "a" * 256)),
          mapping(node("n1", "a1", ("b", "x"), ("b", "y"))),
          mapping(node("n1", "a1", ("b", "x"), ("c", "x"))),
          mapping(node("n1", "a1", ("b", "x" * 256))),
          mapping(node("n1", "-a")), mapping(node("n1", "1a")),
          mapping(node("n1", "_a")), mapping(node("n1", "a b")),
          mapping(node("n1", "")), mapping(node("n1", "a.b-c_d"))]:
    STEPS.append((SET, m))
STEPS += [
    (SET, mapping(node("n1", "a1", ("b1", "1 x")), node("n2", "a2"))),
    QUERY, hmp("info migrate_parameters"),
    (SET, {"block-bitmap-mapping": []}), QUERY,
    hmp("info migrate_parameters"),
]

for line in ["max-bandwidth 1G", "max-bandwidth 1000", "max-bandwidth 1.5G",
             "max-bandwidth abc", "max-bandwidth -5",
             "max-bandwidth 9999999999T", "downtime-limit 100",
             "downtime-limit 100ms", "downtime-limit 3000000",
             "downtime-limit -1", "downtime-limit 1.5k",
             "downtime-limit 0x10", "foo 1", "tls-creds abc",
             "block-incremental on", "block-incremental yes",
             "block-incremental maybe", "multifd-channels 300",
             "multifd-compression zstd", "multifd-compression foo",
             "xbzrle-cache-size 1M", "xbzrle-cache-size 1000",
             "compress-level 10", "compress-level abc", "compress-level -1",
             "compress-level 0x5", "announce-step 0", "announce-rounds 2k",
             "cpu-throttle-tailslow on", "max-postcopy-bandwidth 2k",
             "x-checkpoint-delay 5", "x-checkpoint-delay 5000000000",
             "block-bitmap-mapping x", "tls-authz \"\"",
             "multifd-zlib-level 3", "compress-wait-thread off",
             "compress-wait-thread y", "", "downtime-limit",
             "cpu-throttle-initial 5 extra"]:
    STEPS.append(hmp(("migrate_set_parameter " + line).strip()))
STEPS += [
    QUERY, hmp("info migrate_parameters"),
    ("migrate_cancel", None),
    ("migrate-continue", {"state": "pre-switchover"}),
    ("migrate-continue", {"state": "foo"}),
    hmp("migrate_cancel"), hmp("migrate_continue foo"),
    hmp("migrate_continue pre-switchover"),
    hmp("help migrate_set_parameter"), hmp("help migrate_set_capability"),
    hmp("help migrate_cancel"), hmp("help migrate_continue"),
    ("query-migrate", None), hmp("info migrate"),
]


def fix(name, args, reply, qemu):
    """QEMU answers a QMP object in its hash order: compare as sorted."""
    return reply


def test_interface_none():
    need_qemu()
    ours = reference.transcript([], STEPS, qemu=False, fix=fix)
    theirs = reference.transcript([], STEPS, qemu=True, fix=fix)
    for step, a, b in zip(STEPS, ours, theirs):
        assert a == b, "%r:\n qmpd %r\n QEMU %r" % (step, a, b)


def test_interface_pc():
    need_qemu()
    steps = STEPS[:6]
    args = ["-M", "pc", "-m", "64"]
    ours = reference.transcript(args, steps, qemu=False)
    theirs = reference.transcript(args + ["-accel", "tcg"], steps, qemu=True)
    for step, a, b in zip(steps, ours, theirs):
        assert a == b, "%r:\n qmpd %r\n QEMU %r" % (step, a, b)


if __name__ == "__main__":
    run([test_interface_none, test_interface_pc])
