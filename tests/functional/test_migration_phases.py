#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""migrate_cancel in every phase of a migration between two qmpd, and
a migration between two hosts.  Setup (a destination whose accept queue
is full, so the connection never completes), iterate (active, the guest
dirtying RAM), pre-switchover (stopped, pause-before-switchover) and
stop-and-copy (status device, the destination not reading): each time
the source ends cancelled with its guest running (RESUME where it had
stopped it) and the workload writing, and a new migration to a fresh
destination then carries exactly its RAM.  Across hosts: source and
destination in two network namespaces joined by a veth pair with
private addresses, created here and removed after, migrating over TCP
(skipped when not root or without ip(8))."""

import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migpair import Hosts, MigPair, migrate_and_compare  # noqa: E402
from qmpd import Qmpd, free_port, run, wait_until  # noqa: E402

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]


def status(c):
    return c.cmd("query-migrate").get("status")


def written(c):
    return c.cmd("__com.qmpd_query-guest-workload")["ram-written"]


def events_on(c, **caps):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v}
        for k, v in dict(events=True, **caps).items()])


def workload(c, rate=4 * MiB):
    # slow enough to converge on a loaded ASan build (see test_migration_ram)
    c.cmd("__com.qmpd_guest-workload", **{"ram-rate": rate, "seed": 9})
    wait_until("4 MiB of RAM dirtied", lambda: written(c) >= 4 * MiB)


def mig_events(c):
    return [(e["event"], e.get("data")) for e in c.events
            if e["event"] in ("MIGRATION", "STOP", "RESUME")]


def after_cancel(sc, stopped):
    """The source after migrate_cancel: cancelled, running, writing, and
    it migrates again with nothing of the cancelled one left."""
    assert status(sc) == "cancelled"
    assert sc.cmd("query-status")["status"] == "running"
    ev = mig_events(sc)
    tail = [("MIGRATION", {"status": "cancelling"})] \
        + ([("RESUME", None)] if stopped else []) \
        + [("MIGRATION", {"status": "cancelled"})]
    assert ev[-len(tail):] == tail, ev
    n = written(sc)
    wait_until("the guest writes", lambda: written(sc) > n)
    workload(sc)
    sc.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "pause-before-switchover", "state": False}])
    sc.cmd("migrate-set-parameters", **{"downtime-limit": 300,
                                        "max-bandwidth": 1 << 30})
    with Qmpd(BASE + ["-incoming", "defer"]) as dst:
        dc = dst.connect()
        port = free_port()
        dc.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        migrate_and_compare(sc, dc, "tcp:127.0.0.1:%d" % port)


def test_cancel_in_setup():
    # a listener nobody accepts on, its queue full: SYNs go unanswered
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    with Qmpd(BASE) as src:
        sc = src.connect()
        events_on(sc)
        workload(sc)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        assert status(sc) == "setup"
        assert sc.cmd("query-migrate") == {"status": "setup"}
        sc.cmd("migrate_cancel")
        after_cancel(sc, stopped=False)
    for s in fillers:
        s.close()
    lsock.close()


def test_cancel_when_iterating():
    with MigPair(BASE) as p:
        sc = p.sc
        events_on(sc)
        # a pass takes seconds at 1 MiB/s: still iterating when cancelled
        sc.cmd("migrate-set-parameters", **{"max-bandwidth": MiB})
        workload(sc)
        sc.cmd("migrate", uri=p.uri)
        wait_until("iterating", lambda: status(sc) == "active")
        p.cancel()
        after_cancel(sc, stopped=False)


def stopped_at_switchover(p):
    """Source stopped in pre-switchover with tens of MiB still to send:
    the guest dirties all of RAM during the first pass, and
    downtime-limit at its largest lets it stop after that pass (the
    dirty log is read, and remaining counts it, after migrate-continue,
    as in QEMU)."""
    sc = p.sc
    events_on(sc, pause_before_switchover=True)
    sc.cmd("migrate-set-parameters", **{"downtime-limit": 2000000,
                                        "max-bandwidth": 32 * MiB})
    workload(sc, rate=256 * MiB)
    sc.cmd("migrate", uri=p.uri)
    wait_until("pre-switchover", lambda: status(sc) == "pre-switchover")


def test_cancel_at_pre_switchover():
    with MigPair(BASE) as p:
        stopped_at_switchover(p)
        p.cancel()
        after_cancel(p.sc, stopped=True)


def test_cancel_in_stop_and_copy():
    with MigPair(BASE) as p:
        sc = p.sc
        stopped_at_switchover(p)
        # the destination stops reading: the rest cannot all go
        os.kill(p.dst.proc.pid, signal.SIGSTOP)
        sc.cmd("migrate-continue", state="pre-switchover")
        r = sc.cmd("query-migrate")
        assert r["status"] == "device" and r["ram"]["remaining"] > 8 * MiB, r
        assert sc.cmd("query-status")["status"] == "finish-migrate"
        sc.cmd("migrate_cancel")
        p.dst.kill9()
        after_cancel(sc, stopped=True)


def test_across_hosts():
    with Hosts() as h:
        port = 4444
        uri = "tcp:%s:%d" % (h.addr[1], port)
        with Qmpd(BASE + ["-incoming", uri], prefix=h.prefix(1)) as dst, \
                Qmpd(BASE, prefix=h.prefix(0)) as src:
            dc = dst.connect()
            sc = src.connect()
            # the destination listens on its own host's address only
            assert dc.cmd("query-migrate")["socket-address"] == [
                {"type": "inet", "host": h.addr[1], "port": str(port),
                 "ipv4": True}]
            events_on(sc)
            workload(sc)
            # the other host's address is not on this one
            sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
            wait_until("refused", lambda: status(sc) == "failed")
            migrate_and_compare(sc, dc, uri)
            assert dc.cmd("query-status")["status"] == "running"
    out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True).stdout
    assert not any(ns in out for ns in h.ns), out


if __name__ == "__main__":
    run([test_cancel_in_setup, test_cancel_when_iterating,
         test_cancel_at_pre_switchover, test_cancel_in_stop_and_copy,
         test_across_hosts])
