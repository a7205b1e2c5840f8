#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What an incoming destination does with its images before they are
activated, the late-block-activate capability and the permissions of a
writable export, run alike on qmpd and on QEMU 7.2 (qemu-system-x86_64
-M pc, and -M none for the exports) and compared: the replies, HMP
qemu-io's text, the run state and whether the image is locked (seen
with qemu-io from outside).  The scenarios are those of
tests/functional/test_storage_migration.py, each migrating between two
processes of the same program: QEMU's stream is not qmpd's."""

import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import test_storage_migration as sm  # noqa: E402
from images import need_tools  # noqa: E402
from qmpd import need_qemu, run  # noqa: E402


def both(scenario, *args):
    """@scenario's observations on qmpd and on QEMU, each in a fresh
    directory."""
    need_tools()
    qemu = need_qemu()
    seen = []
    for binary in (None, qemu):
        d = tempfile.mkdtemp(prefix="stmigc-")
        try:
            seen.append(scenario(d, *args, binary=binary))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return seen


def test_inactive_destination():
    ours, theirs = both(sm.inactive_destination)
    assert ours == theirs, (ours, theirs)


def test_late_block_activate():
    for case in sm.LATE_CASES:
        ours, theirs = both(sm.late_activation, *case)
        assert ours == theirs, (case, ours, theirs)


def test_export_permissions():
    ours, theirs = both(sm.export_permissions)
    assert ours == theirs, (ours, theirs)


if __name__ == "__main__":
    run([test_inactive_destination, test_late_block_activate,
         test_export_permissions])
