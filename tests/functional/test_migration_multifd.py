#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""multifd between two qmpd: with the capability on both sides and
multifd-channels N, the source opens N channels beside the main one and
sends RAM on them (query-migrate's multifd-bytes) while the guest keeps
dirtying it; the destination, which keeps the passes in order with the
SYNC records, ends with the source's RAM.  A channel that is not a
socket refuses it as QEMU 7.2 does; a destination set up for another
number of channels refuses the stream (and says so on the return
path).  The channels are threads: a migrate_cancel while they are
blocked writing to a destination that stopped reading, and a
destination killed mid-stream, end at once with the source running."""

import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migpair import MigPair, migrate_and_compare  # noqa: E402
from qmpd import Qmpd, free_port, run, wait_until  # noqa: E402
from test_migration_ram import HEADER, record  # noqa: E402

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]


def multifd(c, channels):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "multifd", "state": True}])
    c.cmd("migrate-set-parameters", **{"multifd-channels": channels})


def live(c):
    # slow enough to converge on a loaded ASan build (see test_migration_ram)
    c.cmd("__com.qmpd_guest-workload", **{"ram-rate": 8 * MiB, "seed": 11})
    wait_until("RAM dirtied", lambda: c.cmd(
        "__com.qmpd_query-guest-workload")["ram-written"] >= 8 * MiB)


def channels(n):
    with MigPair(BASE) as p:
        multifd(p.sc, n)
        multifd(p.dc, n)
        live(p.sc)
        r = migrate_and_compare(p.sc, p.dc, p.uri)
        ram = r["ram"]
        # RAM went on the channels: all but the main channel's sections
        assert 0 < ram["multifd-bytes"] <= ram["transferred"], ram
        assert ram["transferred"] - ram["multifd-bytes"] < MiB, ram
        assert ram["dirty-sync-count"] >= 2, ram
        assert p.dc.cmd("query-status")["status"] == "running"


def test_one_channel():
    channels(1)


def test_two_channels():
    channels(2)


def test_four_channels():
    channels(4)


def test_needs_a_socket():
    d = tempfile.mkdtemp(prefix="qmpd-mig-")
    with Qmpd(BASE) as src:
        sc = src.connect()
        multifd(sc, 2)
        sc.cmd("migrate", uri="exec:cat > %s" % os.path.join(d, "state"))
        r = wait_until("failed", lambda: sc.cmd("query-migrate").get(
            "status") == "failed" and sc.cmd("query-migrate"))
        assert r["error-desc"] == \
            "multifd is not supported by current protocol", r
        assert sc.cmd("query-status")["status"] == "running"
    shutil.rmtree(d)


def test_destination_expects_other_channels():
    with MigPair(BASE) as p:
        multifd(p.sc, 2)
        multifd(p.dc, 3)
        # with the return path the source hears why
        p.sc.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "return-path", "state": True}])
        p.sc.cmd("migrate", uri=p.uri)
        assert p.dst.wait(60) == 1
        p.dst.status = 1
        why = "The stream has 2 multifd channels, this destination expects 3"
        assert why in p.dst.stderr_text()
        r = wait_until("failed", lambda: p.sc.cmd("query-migrate")[
            "status"] == "failed" and p.sc.cmd("query-migrate"))
        assert r["error-desc"] == why, r
        assert p.sc.cmd("query-status")["status"] == "running"


def stuck(p, n):
    """Migrate over @n channels to a destination that stopped reading,
    until the source's channels are full (transferred stays put)."""
    multifd(p.sc, n)
    multifd(p.dc, n)
    live(p.sc)
    # never done: what a loaded guest dirties fits in the channels'
    # socket buffers, so the source could complete without the
    # destination reading a byte (it did, in 152 ms, before the stop)
    p.sc.cmd("migrate-set-parameters", **{"downtime-limit": 0})
    # stopped before the source connects (the kernel completes the
    # connections from the listen backlog): stopped once the source was
    # active, a destination read the whole stream first now and then
    # (the source completed in 63 ms with nothing remaining)
    os.kill(p.dst.proc.pid, signal.SIGSTOP)
    p.sc.cmd("migrate", uri=p.uri)
    wait_until("active", lambda: p.sc.cmd("query-migrate").get(
        "status") == "active")
    last = [-1]

    def still():
        t = p.sc.cmd("query-migrate")["ram"]["transferred"]
        same, last[0] = t == last[0], t
        return same
    # RAM goes on until every socket buffer is full (the guest keeps
    # dirtying: a pass never ends)
    wait_until("the channels block", lambda: still() and still())


def test_cancel_while_blocked():
    with MigPair(BASE) as p:
        stuck(p, 2)
        p.sc.cmd("migrate_cancel")
        r = p.sc.cmd("query-migrate")
        os.kill(p.dst.proc.pid, signal.SIGCONT)
        assert r["status"] == "cancelled", r
        assert p.sc.cmd("query-status")["status"] == "running"
        # the stream broke off: the destination used nothing
        assert p.dst.wait(60) == 1
        p.dst.status = 1


def test_destination_killed_while_blocked():
    with MigPair(BASE) as p:
        stuck(p, 4)
        p.dst.kill9()
        r = wait_until("failed", lambda: p.sc.cmd("query-migrate")[
            "status"] == "failed" and p.sc.cmd("query-migrate"))
        assert r["error-desc"].startswith("Unable to write to socket: "), r
        assert p.sc.cmd("query-status")["status"] == "running"


def test_source_gone_before_its_channels():
    """A source that sent SYNC on its main channel and went away before
    it connected its multifd channels (cancelled early): the destination
    sees the main channel end while it waits for them, and fails."""
    port = free_port()
    with Qmpd(BASE + ["-incoming", "defer"], status=1) as dst:
        dc = dst.connect()
        multifd(dc, 2)
        dc.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        config = {"ram-size": 64 * MiB, "page-size": 4096,
                  "multifd-channels": 2}
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(HEADER + record(1, 0, json.dumps(config).encode())
                  + record(9, 0, b'{"sync": 1}'))
        s.close()
        assert dst.wait(60) == 1
        assert dst.stderr_text().startswith(
            "qmpd: Unexpected end of migration stream\n"), dst.stderr_text()


if __name__ == "__main__":
    run([test_one_channel, test_two_channels, test_four_channels,
         test_needs_a_socket, test_destination_expects_other_channels,
         test_cancel_while_blocked, test_destination_killed_while_blocked,
         test_source_gone_before_its_channels])
