#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""auto-converge between two qmpd: a guest dirtying RAM four times
faster than max-bandwidth never lets pre-copy converge (it iterates, as
QEMU 7.2 does, until cancelled, and the cancel leaves it at full
speed); with auto-converge the source throttles it (cpu-throttle-initial,
then cpu-throttle-increment more, at most max-cpu-throttle; shown as
query-migrate's cpu-throttle-percentage and HMP's "cpu throttle
percentage") until it converges, and the destination gets the source's
RAM as it was at the switch-over."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migpair import MigPair  # noqa: E402
from qmpd import run, wait_until  # noqa: E402
from hmplines import hmp  # noqa: E402

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "32"]
RATE = 64 * MiB
BANDWIDTH = 16 * MiB


def status(c):
    return c.cmd("query-migrate").get("status")


def written(c):
    return c.cmd("__com.qmpd_query-guest-workload")["ram-written"]


class Pair(MigPair):
    """The workload four times faster than max-bandwidth, migrating."""

    def __init__(self, auto_converge):
        super().__init__(BASE)
        sc = self.sc
        sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "auto-converge", "state": auto_converge}])
        sc.cmd("migrate-set-parameters", **{
            "max-bandwidth": BANDWIDTH, "cpu-throttle-initial": 50,
            "cpu-throttle-increment": 20})
        sc.cmd("__com.qmpd_guest-workload", **{"ram-rate": RATE, "seed": 7})
        wait_until("RAM dirtied", lambda: written(sc) >= 16 * MiB)
        sc.cmd("migrate", uri=self.uri)


def test_converges_only_throttled():
    with Pair(True) as p:
        sc, dc = p.sc, p.dc
        seen = []

        def throttled_or_done():
            r = sc.cmd("query-migrate")
            if "cpu-throttle-percentage" in r:
                pct = r["cpu-throttle-percentage"]
                if not seen or seen[-1] != pct:
                    seen.append(pct)
                    text = hmp(sc, "info migrate")
                    assert "cpu throttle percentage: %d\r\n" % pct in \
                        text or status(sc) != "active", text
            return r["status"] in ("completed", "failed") and r

        r = wait_until("converged", throttled_or_done, timeout=180)
        assert r["status"] == "completed", r
        # QEMU's steps: 50, then 20 more each time, at most 99
        assert seen and seen[0] == 50, seen
        assert all(b - a == 20 or b == 99 for a, b in zip(seen, seen[1:])), \
            seen
        assert "cpu-throttle-percentage" not in r
        wait_until("destination done", lambda: status(dc) == "completed")
        assert sc.cmd("__com.qmpd_guest-digest")["ram"] == \
            dc.cmd("__com.qmpd_guest-digest")["ram"]
        assert r["downtime"] <= r["total-time"]


def test_iterates_without():
    with Pair(False) as p:
        sc = p.sc
        # ten passes and still going, never throttled
        r = wait_until("ten passes", lambda: (
            lambda m: m.get("ram", {}).get("dirty-sync-count", 0) >= 10
            and m)(sc.cmd("query-migrate")), timeout=180)
        assert r["status"] == "active", r
        assert "cpu-throttle-percentage" not in r
        assert sc.cmd("query-status")["status"] == "running"
        p.cancel()


def test_cancel_unthrottles():
    with Pair(True) as p:
        sc = p.sc
        wait_until("throttled", lambda: "cpu-throttle-percentage" in
                   sc.cmd("query-migrate") or status(sc) != "active",
                   timeout=120)
        p.cancel()
        assert "cpu-throttle-percentage" not in sc.cmd("query-migrate")
        # full speed again: 64 MiB/s, so 16 MiB well within a few seconds
        # (throttled at 50% or more it would take twice as long at least)
        start = written(sc)
        t0 = time.monotonic()
        wait_until("16 MiB written", lambda: written(sc) >= start + 16 * MiB)
        assert time.monotonic() - t0 < 16 * MiB / (RATE / 2), \
            "the guest is still throttled"


if __name__ == "__main__":
    run([test_converges_only_throttled, test_iterates_without,
         test_cancel_unthrottles])
