#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The block layer's includes go only downward.

block/ has four layers, each a folder (block/local.mk, docs/design.md):

    qmp/      handlers      may use jobs/ and core/
    jobs/     job policies  may use core/
    drivers/  BlockDriver   may use core/
    core/     the graph     uses no other layer

jobs/ and drivers/ never see each other, and nothing reaches a driver
but core/ through the BlockDriver table: a driver's header is included
only by that driver's own files (qcow2-*.c by qcow2.h) and by its unit
tests (tests/unit/test-qcow2*.c).  block/ itself includes nothing from
monitor/, system/, migration/ or nbd/ (STYLE.md: system -> monitor ->
block -> {qapi, util}), except the nbd driver's files (nbd*.c), which
drive the NBD client (nbd/client.h, nbd/proto.h: DESIGN.md's "nbd/
... client protocol code" under "drivers: ... nbd"); the client
includes nothing from block/, so no library depends on itself.

Outside block/ the same one-way rule holds where a library sits below
another: nbd/ includes nothing from migration/, monitor/ or system/
(the NBD server listens through util/sockets.c, not through
migration's channels), qapi/ includes only itself and util/ (its
logging), and util/ only itself.  Every #include "..." of the tree
is read; a failure lists each include that breaks a rule, with the
rule.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import run  # noqa: E402

SRCDIR = os.environ.get("QMPD_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
LAYERS = ("core", "drivers", "jobs", "qmp")
MAY_USE = {
    "core": {"core"},
    "drivers": {"core", "drivers"},
    "jobs": {"core", "jobs"},
    "qmp": {"core", "jobs", "qmp"},
}
# what a folder outside block/ may not include
FORBIDDEN = {
    "nbd": ("migration", "monitor", "system"),
    "qapi": ("block", "migration", "monitor", "nbd", "system"),
    "util": ("block", "migration", "monitor", "nbd", "qapi", "system"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def driver_stem(name):
    """qcow2-cache.c, qcow2.h -> qcow2; blkdebug-config.h -> blkdebug."""
    return re.split(r"[-.]", os.path.basename(name), maxsplit=1)[0]


def violation(src, inc):
    """Why @src (a path from the top) may not include @inc, or None."""
    parts = src.split("/")
    if inc.startswith("block/"):
        ilayer = inc.split("/")[1]
        if ilayer not in LAYERS:
            return "block/ headers live in a layer folder"
        if parts[0] == "block":
            if parts[1] not in LAYERS:
                return "block/ sources live in a layer folder"
            if ilayer not in MAY_USE[parts[1]]:
                return "block/%s/ may use only %s" % (
                    parts[1], ", ".join(sorted(MAY_USE[parts[1]])))
        if ilayer == "drivers":
            stem = driver_stem(inc)
            own = parts[:2] == ["block", "drivers"] \
                and driver_stem(src) == stem
            unit = parts[:2] == ["tests", "unit"] \
                and os.path.basename(src).startswith("test-" + stem)
            if not (own or unit):
                return "a driver's header is its own (use BlockDriver)"
    elif parts[:2] == ["block", "drivers"] \
            and driver_stem(src) == "nbd" \
            and inc in ("nbd/client.h", "nbd/proto.h"):
        return None
    elif parts[0] == "block" and inc.split("/")[0] in (
            "monitor", "system", "migration", "nbd"):
        return "block/ includes nothing from %s/" % inc.split("/")[0]
    elif inc.split("/")[0] in FORBIDDEN.get(parts[0], ()):
        return "%s/ includes nothing from %s/" % (parts[0],
                                                  inc.split("/")[0])
    return None


def sources():
    """Every C source and header of the tree, as paths from the top."""
    for top in ("block", "monitor", "system", "migration", "nbd", "qapi",
                "util", "tests"):
        for d, _, files in os.walk(os.path.join(SRCDIR, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    path = os.path.join(d, f)
                    yield os.path.relpath(path, SRCDIR), path


def test_rules_catch_upward_includes():
    """The checker refuses each kind of include the layering forbids."""
    bad = [
        ("block/core/reopen.c", "block/qmp/qmp-block.h"),
        ("block/core/graph.c", "block/jobs/job.h"),
        ("block/core/graph.c", "block/drivers/qcow2.h"),
        ("block/jobs/mirror.c", "block/qmp/qmp-block.h"),
        ("block/jobs/mirror.c", "block/drivers/qcow2.h"),
        ("block/qmp/qmp-block.c", "block/drivers/qcow2.h"),
        ("block/drivers/raw.c", "block/jobs/blockjob.h"),
        ("block/drivers/raw.c", "block/drivers/qcow2.h"),
        ("monitor/qemu-io.c", "block/drivers/blkdebug-config.h"),
        ("tests/unit/test-io.c", "block/drivers/qcow2.h"),
        ("block/core/io.c", "monitor/monitor.h"),
        ("nbd/server.c", "migration/channel.h"),
        ("nbd/client.c", "monitor/monitor.h"),
        ("util/sockets.c", "qapi/error.h"),
        ("util/sockets.c", "migration/channel.h"),
        ("qapi/dispatch.c", "monitor/monitor.h"),
    ]
    good = [
        ("block/jobs/mirror.c", "block/core/block-int.h"),
        ("block/qmp/qmp-media.c", "block/jobs/blockjob.h"),
        ("block/drivers/qcow2-cache.c", "block/drivers/qcow2.h"),
        ("block/drivers/blkdebug.c", "block/drivers/blkdebug-config.h"),
        ("tests/unit/test-qcow2-discard.c", "block/drivers/qcow2.h"),
        ("monitor/hmp-block.c", "block/qmp/qmp-block.h"),
        ("block/core/io.c", "qapi/error.h"),
        ("nbd/server.c", "util/sockets.h"),
        ("nbd/server.c", "block/core/ioq.h"),
        ("migration/channel.c", "util/sockets.h"),
        ("util/sockets.c", "util/fdstore.h"),
        ("tests/unit/test-sockets.c", "util/sockets.h"),
    ]
    for src, inc in bad:
        assert violation(src, inc), "%s -> %s passed" % (src, inc)
    for src, inc in good:
        assert not violation(src, inc), "%s -> %s: %s" % (
            src, inc, violation(src, inc))


def test_tree_includes_go_downward():
    """No file of the tree breaks the layering."""
    broken = []
    seen = 0
    for rel, path in sources():
        with open(path, encoding="utf-8", errors="replace") as f:
            for inc in INCLUDE.findall(f.read()):
                seen += 1
                why = violation(rel, inc)
                if why:
                    broken.append("%s includes %s: %s" % (rel, inc, why))
    # the walk must have read the block layer, not an empty directory
    assert seen > 500, "only %d includes found under %s" % (seen, SRCDIR)
    assert not broken, "\n".join(sorted(broken))


if __name__ == "__main__":
    run([test_rules_catch_upward_includes, test_tree_includes_go_downward])
