#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""RAM pre-copy from one qmpd to another: a running guest with the
workload moves over unix, TCP and exec: channels and the destination's
RAM digest equals the source's at the switch-over; QEMU 7.2's events in
its order on both sides (tests/compat shows QEMU's), run states and
query-migrate before, during and after; HMP migrate with and without
-d; migrate_cancel, a destination killed and a dropped connection leave
the source running; a destination refuses streams it does not
understand (docs/migration-stream.md) with QEMU's "load of migration
failed" and status 1."""

import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, free_port, run, wait_until  # noqa: E402
from hmplines import hmp  # noqa: E402

DEADLINE = 60
MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]


def events_on(c):
    c.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "events", "state": True}])


def status(c):
    return c.cmd("query-migrate").get("status")


def wait_status(c, want):
    return wait_until("migration status %s" % (want,),
                      lambda: status(c) in want and c.cmd("query-migrate"))


def names(c):
    return [(e["event"], e.get("data")) for e in c.events
            if e["event"] in ("MIGRATION", "MIGRATION_PASS", "STOP",
                              "RESUME")]


def check_events(ev, dev, r):
    """QEMU 7.2's events of a completed migration: the source's @ev
    (passes until STOP, one more, completed; @r its query-migrate) and
    the destination's @dev."""
    n = ev.index(("STOP", None))
    assert ev[:3] == [("MIGRATION", {"status": "setup"}),
                      ("MIGRATION_PASS", {"pass": 1}),
                      ("MIGRATION", {"status": "active"})], ev
    assert ev[n + 1:] == [
        ("MIGRATION_PASS", {"pass": r["ram"]["dirty-sync-count"]}),
        ("MIGRATION", {"status": "completed"})], ev
    assert all(e[0] == "MIGRATION_PASS" for e in ev[3:n]), ev
    assert dev == [("MIGRATION", {"status": "active"}),
                   ("RESUME", None),
                   ("MIGRATION", {"status": "completed"})], dev


def start_workload(c, rate=4 * MiB, seed=1):
    # dirty slowly: an ASan build on a loaded 2-core machine moved only
    # ~12 MiB/s, and a guest dirtying faster than that never converges
    c.cmd("__com.qmpd_guest-workload", **{"ram-rate": rate, "seed": seed})
    wait_until("4 MiB of RAM dirtied", lambda: c.cmd(
        "__com.qmpd_query-guest-workload")["ram-written"] >= 4 * MiB)


def migrate_and_compare(uri, dst_uri, passes_min=2):
    with Qmpd(BASE + ["-incoming", dst_uri]) as dst, Qmpd(BASE) as src:
        dc = dst.connect()
        sc = src.connect()
        assert dc.cmd("query-status")["status"] == "inmigrate"
        events_on(sc)
        events_on(dc)
        start_workload(sc)
        sc.cmd("migrate", uri=uri)
        r = wait_status(sc, ("completed", "failed"))
        assert r["status"] == "completed", r
        wait_until("destination completed",
                   lambda: status(dc) == "completed")
        # the source stopped at the switch-over: its RAM is what it had
        a = sc.cmd("__com.qmpd_guest-digest")["ram"]
        b = dc.cmd("__com.qmpd_guest-digest")["ram"]
        assert a == b
        assert sc.cmd("query-status")["status"] == "postmigrate"
        assert dc.cmd("query-status")["status"] == "running"
        check_events(names(sc), names(dc), r)
        ram = r["ram"]
        assert ram["total"] == 64 * MiB and ram["remaining"] == 0
        assert ram["normal"] * 4096 == ram["normal-bytes"]
        # zero pages go as such: far fewer bytes than RAM
        assert ram["duplicate"] > 0
        assert ram["transferred"] == ram["precopy-bytes"] \
            + ram["downtime-bytes"]
        assert ram["transferred"] < ram["normal-bytes"] + 2 * MiB
        assert r["downtime"] <= r["total-time"]
        assert dc.cmd("query-migrate") == {"status": "completed"}
        text = hmp(sc, "info migrate")
        assert "Migration status: completed\r\n" in text
        assert "transferred ram: %d kbytes\r\n" % (ram["transferred"] >> 10) \
            in text
        return r


def test_unix():
    d = tempfile.mkdtemp(prefix="qmpd-mig-")
    path = os.path.join(d, "mig.sock")
    migrate_and_compare("unix:" + path, "unix:" + path)
    shutil.rmtree(d)


def test_tcp():
    port = free_port()
    migrate_and_compare("tcp:127.0.0.1:%d" % port,
                        "tcp:127.0.0.1:%d" % port)


def test_exec_through_a_file():
    d = tempfile.mkdtemp(prefix="qmpd-mig-")
    f = os.path.join(d, "state")
    with Qmpd(BASE) as src:
        sc = src.connect()
        start_workload(sc)
        # HMP migrate without -d returns when the migration ended
        out = hmp(sc, "migrate \"exec:cat > %s\"" % f)
        assert out == "", out
        assert status(sc) == "completed"
        digest = sc.cmd("__com.qmpd_guest-digest")["ram"]
    with Qmpd(BASE + ["-S", "-incoming", "exec:cat %s" % f]) as dst:
        dc = dst.connect()
        wait_until("loaded", lambda: status(dc) == "completed")
        # -S: the guest stays paused
        assert dc.cmd("query-status")["status"] == "paused"
        assert dc.cmd("__com.qmpd_guest-digest")["ram"] == digest
    shutil.rmtree(d)


def test_defer():
    d = tempfile.mkdtemp(prefix="qmpd-mig-")
    path = os.path.join(d, "mig.sock")
    with Qmpd(BASE + ["-incoming", "defer"]) as dst, Qmpd(BASE) as src:
        dc = dst.connect()
        sc = src.connect()
        assert dc.cmd("query-migrate") == {}
        r = dc.execute("migrate-incoming", {"uri": "foo:bar"})
        assert r["error"]["desc"] == "unknown migration protocol: foo:bar"
        assert hmp(dc, "migrate_incoming unix:%s" % path) == ""
        assert dc.cmd("query-migrate") == {"socket-address": [
            {"type": "unix", "path": path}]}
        r = dc.execute("migrate-incoming", {"uri": "unix:" + path})
        assert r["error"]["desc"] == \
            "The incoming migration has already been started"
        r = dc.execute("migrate", {"uri": "unix:/nonexistent"})
        assert r["error"]["desc"] == \
            "Guest is waiting for an incoming migration"
        # stop on the destination: it stays paused after the migration
        dc.cmd("stop")
        assert hmp(sc, "migrate -d unix:%s" % path) == ""
        wait_until("destination completed",
                   lambda: status(dc) == "completed")
        assert dc.cmd("query-status")["status"] == "paused"
        # the source completes once it wrote END (a tick later, maybe)
        wait_until("source completed", lambda: status(sc) == "completed")
        r = sc.execute("migrate", {"uri": "unix:" + path})
        assert r["error"]["desc"] == \
            "Can't migrate the vm that was paused due to previous migration"
        sc.cmd("cont")
        assert sc.cmd("query-status")["status"] == "running"
    shutil.rmtree(d)


def slow_source(c):
    """A migration that lasts: 256 KiB/s against a dirtying guest."""
    events_on(c)
    c.cmd("migrate-set-parameters", **{"max-bandwidth": 256 << 10})
    start_workload(c)


def test_cancel_active():
    port = free_port()
    with Qmpd(BASE + ["-incoming", "tcp:127.0.0.1:%d" % port],
              status=1) as dst, Qmpd(BASE) as src:
        sc = src.connect()
        slow_source(sc)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        r = wait_status(sc, ("active",))
        assert set(r) == {"status", "total-time", "expected-downtime",
                          "setup-time", "ram"}, r
        sc.cmd("migrate_cancel")
        assert sc.cmd("query-migrate") == {"status": "cancelled"}
        assert names(sc)[-2:] == [("MIGRATION", {"status": "cancelling"}),
                                  ("MIGRATION", {"status": "cancelled"})]
        assert sc.cmd("query-status")["status"] == "running"
        # the destination sees a stream that ends early
        assert dst.wait(DEADLINE) == 1
        assert "qmpd: load of migration failed: Input/output error\n" \
            in dst.stderr_text()
        # and the source can migrate again elsewhere
        before = sc.cmd("__com.qmpd_query-guest-workload")["ram-written"]
        wait_until("the guest runs on", lambda: sc.cmd(
            "__com.qmpd_query-guest-workload")["ram-written"] > before)


def test_destination_killed():
    port = free_port()
    dst = Qmpd(BASE + ["-incoming", "tcp:127.0.0.1:%d" % port])
    with Qmpd(BASE) as src:
        sc = src.connect()
        slow_source(sc)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        wait_status(sc, ("active",))
        dst.kill9()
        dst.close()
        r = wait_status(sc, ("failed",))
        assert set(r) == {"status", "error-desc"}, r
        assert r["error-desc"].startswith("Unable to write to socket: ")
        assert names(sc)[-1] == ("MIGRATION", {"status": "failed"})
        assert sc.cmd("query-status")["status"] == "running"
        assert "Migration status: failed (%s)\r\n" % r["error-desc"] in \
            hmp(sc, "info migrate")


def test_connection_dropped():
    """A peer that reads a little and hangs up."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    with Qmpd(BASE) as src:
        sc = src.connect()
        slow_source(sc)
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % srv.getsockname()[1])
        conn, _ = srv.accept()
        conn.settimeout(DEADLINE)
        assert conn.recv(8) == b"QMPDMIG\n"
        conn.close()
        r = wait_status(sc, ("failed",))
        assert r["error-desc"].startswith("Unable to write to socket: ")
        assert sc.cmd("query-status")["status"] == "running"
    srv.close()
    # nobody listening at all
    with Qmpd(BASE) as src:
        sc = src.connect()
        sc.cmd("migrate", uri="tcp:127.0.0.1:%d" % free_port())
        r = wait_status(sc, ("failed",))
        assert "Connection refused" in r["error-desc"], r
        assert sc.cmd("query-status")["status"] == "running"


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C = _crc32c_table()


def crc32c(data):
    """The stream's checksum (version 2: CRC-32C, Castagnoli)."""
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record(kind, sid, payload):
    head = struct.pack(">BII", kind, sid, len(payload))
    return head + payload + struct.pack(">I", crc32c(head + payload))


HEADER = b"QMPDMIG\n" + struct.pack(">I", 2)
CONFIG = record(1, 0, json.dumps({"ram-size": 64 * MiB,
                                  "page-size": 4096}).encode())


def load(stream):
    """Feed @stream to a destination: (status, stderr) or its RAM
    digest when it completed."""
    port = free_port()
    dst = Qmpd(BASE + ["-incoming", "tcp:127.0.0.1:%d" % port],
               status=None)
    try:
        dc = dst.connect()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(stream)
        s.close()
        deadline = time.time() + DEADLINE
        while dst.proc.poll() is None and time.time() < deadline:
            try:
                if status(dc) == "completed":
                    return dc.cmd("__com.qmpd_guest-digest")["ram"]
            except (OSError, ValueError):
                break       # it exited while we asked
            time.sleep(0.02)
        return dst.wait(DEADLINE), dst.stderr_text()
    finally:
        dst.status = dst.proc.returncode if dst.proc.poll() is not None \
            else 0
        dst.close()


def refused(stream, reason, err="Invalid argument"):
    r = load(stream)
    assert r == (1, "qmpd: %s\nqmpd: load of migration failed: %s\n"
                 % (reason, err)), r


def test_stream_refused():
    page = bytes(range(256)) * 16
    ram = record(2, 1, struct.pack(">Q", 0x5000 | 2) + page)
    end = record(3, 0, b'{"running": true}')
    # a good stream loads: page 5 holds the bytes
    good = load(HEADER + CONFIG + ram + end)
    assert isinstance(good, str)
    refused(b"GARBAGE!" * 4, "Not a migration stream")
    refused(b"QEVM" + b"\0" * 12, "Not a migration stream")
    refused(b"QMPDMIG\n" + struct.pack(">I", 1) + CONFIG,
            "Unsupported migration stream version 1")
    bad = bytearray(HEADER + CONFIG + ram)
    bad[-100] ^= 1
    refused(bytes(bad), "Checksum mismatch in section 1")
    refused(HEADER + CONFIG + record(99, 7, b"x"),
            "Unknown section type 99 (id 7)")
    refused(HEADER + ram, "Section 1 before the configuration")
    refused(HEADER + record(1, 0, b'{"ram-size": 1048576}'),
            "Length mismatch: pc.ram: 0x100000 in != 0x4000000")
    refused(HEADER + CONFIG + record(2, 1, struct.pack(">Q", 64 * MiB | 2)
                                     + page),
            "Invalid RAM page at 0x4000000")
    refused(HEADER + CONFIG + record(2, 1, struct.pack(">QI", 0 | 1,
                                                       16385)),
            "Invalid RAM zero run at 0x0")
    refused(HEADER + CONFIG + record(2, 1, struct.pack(">Q", 4)),
            "Unknown RAM entry flags 0x4")
    refused(HEADER + CONFIG + struct.pack(">BII", 2, 1, 1 << 30),
            "Section 1 too long (1073741824 bytes)")
    refused(HEADER + CONFIG + ram, "Unexpected end of migration stream",
            "Input/output error")
    refused(b"", "Unexpected end of migration stream", "Input/output error")


def test_refused_commands():
    with Qmpd(BASE) as src:
        sc = src.connect()
        for args, desc in [
            ({"uri": "foo:bar"},
             "Parameter 'uri' expects a valid migration protocol"),
            ({"uri": "fd:x"}, "File descriptor named 'x' has not been found"),
            ({"uri": "tcp:127.0.0.1:1", "resume": True},
             "Cannot resume if there is no paused migration"),
        ]:
            r = sc.execute("migrate", args)
            assert r["error"] == {"class": "GenericError", "desc": desc}, r
        r = sc.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:0"})
        assert r["error"]["desc"] == \
            "'-incoming' was not specified on the command line"
        assert sc.cmd("query-status")["status"] == "running"


if __name__ == "__main__":
    run([test_unix, test_tcp, test_exec_through_a_file, test_defer,
         test_cancel_active, test_destination_killed,
         test_connection_dropped, test_stream_refused,
         test_refused_commands])
