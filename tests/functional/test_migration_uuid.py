#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""-uuid, query-uuid and `info uuid` as QEMU 7.2 has them (all zeros
without -uuid, lower case whatever the option's case, QEMU's message for
a malformed one), and the validate-uuid capability: a source given
-uuid sends its UUID, and a destination with another one refuses the
stream ("UUID received is SRC and local is DST", status 1) while the
source keeps running; a destination without -uuid only warns, and
without the capability on the source nothing is checked
(tests/compat/test_uuid_compat.py runs the same against QEMU)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, free_port, qemu_binary, run, wait_until  # noqa: E402
from hmplines import hmp  # noqa: E402
import reference  # noqa: E402

DEADLINE = 60
BASE = ["-M", "pc", "-m", "64"]
A = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
B = "1b4e28ba-2fa1-11d2-883f-0016d3cca428"
ZERO = "00000000-0000-0000-0000-000000000000"


def test_query_uuid():
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        assert c.cmd("query-uuid") == {"UUID": ZERO}
        assert hmp(c, "info uuid") == ZERO + "\r\n"
    with Qmpd(["-M", "none", "-uuid", B, "-uuid", A.upper()]) as q:
        c = q.connect()
        # the last one counts, in lower case
        assert c.cmd("query-uuid") == {"UUID": A}
        assert hmp(c, "info uuid") == A + "\r\n"


def test_bad_uuid():
    for bad in ("bogus", A[:-1], A + "0", A.replace("-", ""),
                "{%s}" % A[:-2], A.replace("2fa1", "2fg1"),
                A.replace("-", "_", 1)):
        q = Qmpd(["-M", "none", "-uuid", bad], wait=False, status=1)
        try:
            assert q.wait(DEADLINE) == 1
            assert q.stderr_text() == (
                "qmpd: -uuid %s: failed to parse UUID string: wrong "
                "format\n" % bad), (bad, q.stderr_text())
        finally:
            q.close()


def dst_end(dst, dc):
    """The destination's exit status, "completed", or None yet."""
    if dst.proc.poll() is None:
        try:
            if dc.cmd("query-migrate").get("status") == "completed":
                return "completed"
            return None
        except (OSError, EOFError, ValueError):
            pass        # it exits while we ask (QEMU closes the socket)
    return dst.wait(DEADLINE)


def migrate(src_uuid, dst_uuid, validate=True, return_path=False,
            qemu=False):
    """Migrate a paused guest between a source with -uuid @src_uuid and a
    destination with @dst_uuid (None: no -uuid), validate-uuid on the
    source when @validate: (the destination's end, "completed" or its
    exit status; its stderr; the source's query-migrate).  Without
    the return path a source may have written its whole stream before
    the destination refused it, and completes: as QEMU's.  @qemu: the
    same between two QEMU 7.2 (tests/compat)."""
    uuid = lambda u: ["-uuid", u] if u else []  # noqa: E731
    binary = qemu_binary() if qemu else None
    base = BASE + ["-S"] + (["-accel", "tcg"] if qemu else [])
    port = free_port()
    dst = Qmpd(base + uuid(dst_uuid)
               + ["-incoming", "tcp:127.0.0.1:%d" % port], status=None,
               binary_path=binary)
    src = Qmpd(base + uuid(src_uuid), binary_path=binary)
    try:
        dc = reference.negotiate(dst) if qemu else dst.connect()
        sc = reference.negotiate(src) if qemu else src.connect()
        caps = [{"capability": "validate-uuid", "state": validate}]
        if return_path:
            caps.append({"capability": "return-path", "state": True})
            dc.cmd("migrate-set-capabilities", capabilities=caps[1:])
        sc.cmd("migrate-set-capabilities", capabilities=caps)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        r = wait_until("the source ended", lambda: sc.cmd(
            "query-migrate")["status"] in ("completed", "failed")
            and sc.cmd("query-migrate"), timeout=DEADLINE)
        end = wait_until("the destination ended",
                         lambda: dst_end(dst, dc), timeout=DEADLINE)
        return end, dst.stderr_text(), r
    finally:
        src.close()
        dst.status = dst.proc.returncode if dst.proc.poll() is not None \
            else 0
        dst.close()


def test_validate_uuid():
    refusal = ("qmpd: UUID received is %s and local is %s\n"
               "qmpd: load of migration failed: Invalid argument\n" % (A, B))
    assert migrate(A, B)[:2] == (1, refusal)
    # with the return path the source hears why, and fails
    end, err, r = migrate(A, B, return_path=True)
    assert (end, err) == (1, refusal)
    assert r["status"] == "failed", r
    assert r["error-desc"] == "UUID received is %s and local is %s" % (A, B)
    end, err, r = migrate(A, A)
    assert (end, err, r["status"]) == ("completed", "", "completed")
    # a destination that does not know its UUID takes any, and says so
    end, err, r = migrate(A, None)
    assert (end, err, r["status"]) == (
        "completed", "qmpd: warning: UUID is received %s, but local uuid "
        "isn't set\n" % A, "completed")
    # the source sends a UUID only when it has one and validate-uuid is on
    for args in ((None, B), (A, B, False)):
        end, err, r = migrate(*args)
        assert (end, err, r["status"]) == ("completed", "", "completed")


if __name__ == "__main__":
    run([test_query_uuid, test_bad_uuid, test_validate_uuid])
