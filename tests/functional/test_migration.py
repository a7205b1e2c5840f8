#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Migration on qmpd itself: capabilities qmpd does not implement are
refused on (and accepted off), all or nothing; parameters change all or
nothing; HMP shows what QMP set (tests/compat/test_migration_compat.py
compares the rest with QEMU 7.2)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from hmplines import hmp  # noqa: E402

UNIMPLEMENTED = ["xbzrle", "rdma-pin-all",
                 "compress", "postcopy-ram", "x-colo", "release-ram",
                 "postcopy-blocktime",
                 "x-ignore-shared",
                 "background-snapshot", "zero-copy-send", "postcopy-preempt"]


def caps(c):
    return {x["capability"]: x["state"]
            for x in c.cmd("query-migrate-capabilities")}


def test_capabilities():
    with Qmpd() as q:
        c = q.connect()
        for cap in UNIMPLEMENTED:
            # with events first in the list: nothing is set
            r = c.execute("migrate-set-capabilities", {"capabilities": [
                {"capability": "events", "state": True},
                {"capability": cap, "state": True}]})
            assert r["error"] == {
                "class": "GenericError",
                "desc": "Capability '%s' is not supported by qmpd" % cap}, r
            assert not any(caps(c).values())
            assert hmp(c, "migrate_set_capability %s on" % cap) == \
                "Error: Capability '%s' is not supported by qmpd\r\n" % cap
            c.cmd("migrate-set-capabilities", capabilities=[
                {"capability": cap, "state": False}])
        c.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "events", "state": True}])
        assert [k for k, v in caps(c).items() if v] == ["events"]
        assert "events: on\r\n" in hmp(c, "info migrate_capabilities")
        assert hmp(c, "migrate_set_capability events off") == ""
        assert not any(caps(c).values())
        # block migration's are there
        assert hmp(c, "migrate_set_capability block on") == ""
        c.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "zero-blocks", "state": True},
            {"capability": "dirty-bitmaps", "state": True}])
        assert [k for k, v in caps(c).items() if v] == [
            "zero-blocks", "block", "dirty-bitmaps"]


def test_parameters_all_or_nothing():
    with Qmpd() as q:
        c = q.connect()
        before = c.cmd("query-migrate-parameters")
        r = c.execute("migrate-set-parameters",
                      {"downtime-limit": 50, "max-bandwidth": 1 << 30,
                       "announce-step": 0})
        assert r["error"]["desc"] == \
            "Parameter 'announce_step' expects a value between 0 and 10000"
        assert c.cmd("query-migrate-parameters") == before
        c.cmd("migrate-set-parameters", **{"downtime-limit": 50,
                                           "max-bandwidth": 1 << 30})
        after = c.cmd("query-migrate-parameters")
        assert after == dict(before, **{"downtime-limit": 50,
                                        "max-bandwidth": 1 << 30})
        text = hmp(c, "info migrate_parameters")
        assert "max-bandwidth: 1073741824 bytes/second\r\n" in text
        assert "downtime-limit: 50 ms\r\n" in text
        # HMP reads max-bandwidth in MiB, downtime-limit as a size
        assert hmp(c, "migrate_set_parameter max-bandwidth 64") == ""
        assert hmp(c, "migrate_set_parameter downtime-limit 1k") == ""
        p = c.cmd("query-migrate-parameters")
        assert p["max-bandwidth"] == 64 << 20 and p["downtime-limit"] == 1024


def test_no_migration():
    with Qmpd() as q:
        c = q.connect()
        assert c.cmd("query-migrate") == {}
        c.cmd("migrate_cancel")
        assert c.cmd("query-migrate") == {}
        assert hmp(c, "info migrate").startswith("globals:\r\n")
        assert "Migration status" not in hmp(c, "info migrate")


if __name__ == "__main__":
    run([test_capabilities, test_parameters_all_or_nothing, test_no_migration])
