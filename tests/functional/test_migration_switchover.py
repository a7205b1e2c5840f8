#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The switch-over's options between two qmpd: pause-before-switchover
stops the source's guest in pre-switchover until migrate-continue (then
device, the last pass, completed: QEMU 7.2's order, which
test_migration_compat compares), migrate_cancel there runs it again;
return-path makes the source wait for the destination's word, so that
a destination that dies after the last byte left the source fails the
migration and runs its guest again instead of reporting completed; a
pipe cannot carry it back."""

import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migpair import MigPair  # noqa: E402
from qmpd import Qmpd, run, wait_until  # noqa: E402

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]
MIG_EVENTS = ("MIGRATION", "MIGRATION_PASS", "STOP", "RESUME")


def status(c):
    return c.cmd("query-migrate").get("status")


def caps(c, **on):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v}
        for k, v in dict(events=True, **on).items()])


def events(c):
    return [(e["event"], e.get("data")) for e in c.events
            if e["event"] in MIG_EVENTS]


def workload(c):
    # dirty slowly: an ASan build on a loaded 2-core machine moved only
    # ~12 MiB/s, and a guest dirtying faster than that never converges
    c.cmd("__com.qmpd_guest-workload", **{"ram-rate": 4 * MiB, "seed": 5})
    wait_until("4 MiB of RAM dirtied", lambda: c.cmd(
        "__com.qmpd_query-guest-workload")["ram-written"] >= 4 * MiB)


class Pair(MigPair):
    def __init__(self):
        super().__init__(BASE)

    def start(self, **on):
        """Both with events, the source with @on, the workload on, the
        migration started."""
        caps(self.sc, **on)
        caps(self.dc)
        workload(self.sc)
        self.sc.cmd("migrate", uri=self.uri)


def test_pause_before_switchover():
    with Pair() as p:
        sc, dc = p.sc, p.dc
        p.start(pause_before_switchover=True)
        assert sc.error("migrate-continue", state="pre-switchover")[1] in (
            "Migration not in expected state: setup",
            "Migration not in expected state: active")
        wait_until("pre-switchover", lambda: status(sc) == "pre-switchover")
        assert sc.cmd("query-status")["status"] == "finish-migrate"
        # the guest stays stopped while the tool takes its time
        digest = sc.cmd("__com.qmpd_guest-digest")["ram"]
        assert status(dc) == "active"
        assert dc.cmd("query-status")["status"] == "inmigrate"
        assert sc.error("migrate-continue", state="active") == (
            "GenericError",
            "Migration not in expected state: pre-switchover")
        assert sc.cmd("__com.qmpd_guest-digest")["ram"] == digest
        assert sc.cmd("migrate-continue", state="pre-switchover") == {}
        r = wait_until("completed", lambda: status(sc) in
                       ("completed", "failed") and sc.cmd("query-migrate"))
        assert r["status"] == "completed", r
        wait_until("destination ran", lambda: status(dc) == "completed")
        assert dc.cmd("__com.qmpd_guest-digest")["ram"] == digest
        ev = events(sc)
        n = ev.index(("STOP", None))
        assert ev[n:] == [
            ("STOP", None),
            ("MIGRATION", {"status": "pre-switchover"}),
            ("MIGRATION", {"status": "device"}),
            ("MIGRATION_PASS", {"pass": r["ram"]["dirty-sync-count"]}),
            ("MIGRATION", {"status": "completed"})], ev
        assert r["downtime"] >= 0 and r["ram"]["remaining"] == 0


def test_cancel_at_switchover():
    with Pair() as p:
        sc = p.sc
        p.start(pause_before_switchover=True)
        wait_until("pre-switchover", lambda: status(sc) == "pre-switchover")
        p.cancel()
        assert sc.cmd("query-status")["status"] == "running"
        ev = events(sc)
        assert ev[-3:] == [("MIGRATION", {"status": "cancelling"}),
                           ("RESUME", None),
                           ("MIGRATION", {"status": "cancelled"})], ev
        # the workload runs again: RAM changes
        written = sc.cmd("__com.qmpd_query-guest-workload")["ram-written"]
        wait_until("the guest writes", lambda: sc.cmd(
            "__com.qmpd_query-guest-workload")["ram-written"] > written)


def late_death(return_path):
    """The destination is stopped (SIGSTOP) while the source sends an
    idle guest's RAM, all of which fits in the socket's buffer; then it
    is killed.  What does the source say?"""
    with Pair() as p:
        sc = p.sc
        caps(sc, return_path=return_path)
        os.kill(p.dst.proc.pid, signal.SIGSTOP)
        sc.cmd("migrate", uri=p.uri)
        wait_until("all sent", lambda: sc.cmd("query-migrate").get(
            "ram", {}).get("remaining") == 0
            and sc.cmd("query-status")["status"] in ("finish-migrate",
                                                     "postmigrate"))
        before = status(sc)
        p.dst.kill9()
        r = wait_until("ended", lambda: status(sc) in
                       ("completed", "failed") and sc.cmd("query-migrate"))
        return before, r, sc.cmd("query-status")["status"], events(sc)


def test_without_return_path():
    # the bytes left: QEMU 7.2 and qmpd say completed, nothing runs
    before, r, run_state, ev = late_death(False)
    assert r["status"] == "completed", r
    assert run_state == "postmigrate"


def test_return_path_destination_died():
    before, r, run_state, ev = late_death(True)
    # the source waited with its guest stopped, then took it back
    assert before == "active", before
    assert r["status"] == "failed", r
    assert r["error-desc"] == "the destination closed the return path", r
    assert run_state == "running"
    assert ev[-2:] == [("MIGRATION", {"status": "failed"}),
                       ("RESUME", None)], ev


def test_return_path_acknowledged():
    with Pair() as p:
        sc, dc = p.sc, p.dc
        p.start(return_path=True)
        r = wait_until("completed", lambda: status(sc) in
                       ("completed", "failed") and sc.cmd("query-migrate"))
        assert r["status"] == "completed", r
        assert status(dc) == "completed"
        assert sc.cmd("__com.qmpd_guest-digest")["ram"] == \
            dc.cmd("__com.qmpd_guest-digest")["ram"]
        assert dc.cmd("query-status")["status"] == "running"


def test_return_path_needs_a_socket():
    d = tempfile.mkdtemp(prefix="qmpd-mig-")
    with Qmpd(BASE) as src:
        sc = src.connect()
        caps(sc, return_path=True)
        sc.cmd("migrate", uri="exec:cat > %s" % os.path.join(d, "state"))
        r = wait_until("failed", lambda: status(sc) == "failed"
                       and sc.cmd("query-migrate"))
        assert r["error-desc"] == "Unable to open return-path for postcopy"
        assert sc.cmd("query-status")["status"] == "running"
    shutil.rmtree(d)


if __name__ == "__main__":
    run([test_pause_before_switchover, test_cancel_at_switchover,
         test_without_return_path, test_return_path_destination_died,
         test_return_path_acknowledged, test_return_path_needs_a_socket])
