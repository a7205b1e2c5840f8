#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-uuid, query-uuid, `info uuid` and the validate-uuid capability, run
alike on qmpd and QEMU 7.2 and compared: the replies and text, the
message for a malformed -uuid, and how a destination ends (its exit
status and what it prints) when a source sends its UUID with
validate-uuid: another UUID is refused, none of its own only warned
about.  Each line's program name is left out (qmpd: / qemu-system-x86_64:)."""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import reference  # noqa: E402
import test_migration_uuid as mu  # noqa: E402
from qmpd import Qmpd, need_qemu, qemu_binary, run  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60


def unprefixed(text):
    return re.sub(r"(?m)^(qmpd|qemu-system-x86_64): ", "", text)


def queries(args, qemu):
    q, c = reference.start(args, qemu=qemu)
    try:
        return c.cmd("query-uuid"), hmp(c, "info uuid")
    finally:
        q.close()


def bad_option(value, qemu):
    q = Qmpd(["-M", "none", "-uuid", value], wait=False, status=1,
             binary_path=qemu_binary() if qemu else None)
    try:
        return q.wait(DEADLINE), unprefixed(q.stderr_text())
    finally:
        q.close()


def test_query_uuid():
    for args in ([], ["-uuid", mu.A.upper()], ["-uuid", mu.B, "-uuid", mu.A]):
        ours, theirs = queries(args, False), queries(args, True)
        assert ours == theirs, (args, ours, theirs)
    for value in ("bogus", mu.A[:-1], mu.A.replace("-", ""),
                  "{%s}" % mu.A[:-2]):
        ours, theirs = bad_option(value, False), bad_option(value, True)
        assert ours == theirs, (value, ours, theirs)


def test_validate_uuid():
    for args in ((mu.A, mu.B), (mu.A, None), (mu.A, mu.A), (None, mu.B),
                 (mu.A, mu.B, False)):
        ours = mu.migrate(*args)
        theirs = mu.migrate(*args, qemu=True)
        assert ours[0] == theirs[0], (args, ours, theirs)
        assert unprefixed(ours[1]) == unprefixed(theirs[1]), \
            (args, ours, theirs)


if __name__ == "__main__":
    run([test_query_uuid, test_validate_uuid], needs=[need_qemu])
