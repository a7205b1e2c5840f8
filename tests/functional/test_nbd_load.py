#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Sixty-four NBD clients at once against one writable export while a
mirror copies the exported node (issue 15's load test).

Each client (a thread with its own nbdwire connection) keeps several
requests in flight and takes the replies in whatever order they come:
it writes its own region twice (a first pattern, then its final one,
each write in flight beside others), reads other clients' untouched
neighbourhood, and reads its region back.  Meanwhile blockdev-mirror
sync=full copies the node into a local target, speed-limited so that
the clients' writes land before, under and after the copy's position.
Then the mirror runs free, reaches READY and completes: the source and
the target compare equal, every client's final pattern reads back from
both (and through the export, now on the target), and the part no
client wrote still holds the original data and hole.
"""

import json
import os
import random
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import check_clean, img, qemu_io, with_dir  # noqa: E402
import nbdwire  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
CLIENTS = 64
REGION = 256 * KiB          # each client's own, at i * REGION
CHUNK = 32 * KiB            # one request
DEPTH = 8                   # requests in flight per client
WRITTEN = CLIENTS * REGION  # [0, 16M): the clients' regions
DATA_END = 24 * MiB         # original 0x11 up to here, a hole after
SIZE = 32 * MiB


def original(off, n):
    """What the image held at [off, off + n) before any client."""
    data = max(0, min(off + n, DATA_END) - off)
    return b"\x11" * data + b"\0" * (n - data)


def pattern(client, final):
    return bytes([0x80 + client if final else 0x40 + client])


class Client:
    """One connection; requests pipelined up to DEPTH, replies by
    handle in any order."""

    def __init__(self, sock):
        self.n = nbdwire.NbdClient(sock, timeout=120)
        self.n.structured_reply()
        self.n.go("exp")
        self.handle = 0
        self.pending = {}           # handle -> (kind, offset, length)
        self.parts = {}             # handle -> [(offset, bytes)]
        self.results = {}           # handle -> bytes read, or None
        self.out_of_order = 0

    def send(self, cmd, off, length, data=b""):
        while len(self.pending) >= DEPTH:
            self.take()
        self.handle += 1
        self.pending[self.handle] = (cmd, off, length)
        self.n.request(cmd, off, length, self.handle, data=data)
        return self.handle

    def take(self):
        """One reply (or chunk); a finished read's data goes into
        results."""
        kind, h, err, body = self.n.reply()
        assert h in self.pending, (h, self.pending)
        assert not err, (h, err, body)
        if h != min(self.pending):
            self.out_of_order += 1
        cmd, off, length = self.pending[h]
        if kind == "simple":
            assert cmd != nbdwire.CMD_READ
            del self.pending[h]
            self.results[h] = None
            return
        flags, rtype, payload = body
        if rtype == nbdwire.REPLY_OFFSET_DATA:
            at = struct.unpack(">Q", payload[:8])[0]
            self.parts.setdefault(h, []).append((at, payload[8:]))
        elif rtype == nbdwire.REPLY_OFFSET_HOLE:
            at, n = struct.unpack(">QI", payload[:12])
            self.parts.setdefault(h, []).append((at, b"\0" * n))
        if flags & 1:
            del self.pending[h]
            buf = bytearray(length)
            for at, d in self.parts.pop(h, []):
                buf[at - off:at - off + len(d)] = d
            self.results[h] = bytes(buf)

    def drain(self):
        while self.pending:
            self.take()

    def read_check(self, reads):
        """Pipelined reads of (offset, expected bytes); all must match."""
        handles = [(self.send(nbdwire.CMD_READ, off, len(want)), off, want)
                   for off, want in reads]
        self.drain()
        for h, off, want in handles:
            got = self.results.pop(h)
            assert got == want, "read at %d: %r... != %r..." % (
                off, got[:8], want[:8])

    def close(self):
        self.n.request(nbdwire.CMD_DISC, 0, 0, 0)
        self.n.close()


def client_run(i, sock, rng, stats, errors):
    try:
        c = Client(sock)
        base = i * REGION
        offsets = list(range(base, base + REGION, CHUNK))
        untouched = [WRITTEN + rng.randrange(0, SIZE - WRITTEN - CHUNK,
                                             4 * KiB) for _ in range(8)]
        reads = {}
        for final in (False, True):
            rng.shuffle(offsets)
            for off in offsets:
                c.send(nbdwire.CMD_WRITE, off, CHUNK,
                       pattern(i, final) * CHUNK)
                # a read beside the writes, of a part no client writes
                off2 = untouched[off // CHUNK % len(untouched)]
                reads[c.send(nbdwire.CMD_READ, off2, CHUNK)] = off2
            # writes to one offset never overlap in flight: a round
            # ends before the next rewrites the region
            c.drain()
        for h, off in reads.items():
            assert c.results[h] == original(off, CHUNK), off
        c.results.clear()
        c.read_check([(off, pattern(i, True) * CHUNK) for off in offsets]
                     + [(u, original(u, CHUNK)) for u in untouched])
        stats[i] = c.out_of_order
        c.close()
    except Exception as e:      # reported by the main thread
        errors.append("client %d: %r" % (i, e))


def job(c, name):
    j = [j for j in c.cmd("query-block-jobs") if j["device"] == name]
    return j[0] if j else None


def clients_during_mirror(d, copy_mode):
    """64 pipelined clients read and write the export while a mirror
    of its node runs in @copy_mode; the target equals the source and
    holds every client's writes, and the rest is the original."""
    src = os.path.join(d, "src.qcow2")
    tgt = os.path.join(d, "tgt.qcow2")
    sock = os.path.join(d, "nbd.sock")
    img("create", "-q", "-f", "qcow2", src, str(SIZE))
    img("create", "-q", "-f", "qcow2", tgt, str(SIZE))
    qemu_io(src, "write -P 0x11 0 %d" % DATA_END)
    q = Qmpd(["-blockdev", json.dumps({
        "driver": "qcow2", "node-name": "d0",
        "file": {"driver": "file", "filename": src}}), "-blockdev",
        json.dumps({"driver": "qcow2", "node-name": "t0",
                    "file": {"driver": "file", "filename": tgt}})])
    try:
        c = q.connect()
        c.cmd("nbd-server-start",
              addr={"type": "unix", "data": {"path": sock}})
        r = c.execute("block-export-add", {
            "type": "nbd", "id": "e0", "node-name": "d0", "name": "exp",
            "writable": True})
        assert "return" in r, r
        # slow enough that the clients finish long before the copy
        # could: their writes land on both sides of its position
        c.cmd("blockdev-mirror", device="d0", target="t0", sync="full",
              speed=2 * MiB, **{"job-id": "m0", "copy-mode": copy_mode})
        j = job(c, "m0")
        assert j and j["status"] == "running" and not j["ready"], j

        stats, errors = {}, []
        rng = random.Random(15)
        threads = [threading.Thread(
            target=client_run,
            args=(i, sock, random.Random(rng.random()), stats, errors))
            for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not any(t.is_alive() for t in threads), "clients hung"
        assert not errors, "\n".join(errors)
        assert len(stats) == CLIENTS, stats
        print("replies out of order: %d" % sum(stats.values()))

        j = job(c, "m0")
        print("mirror after the clients: %s, %d of %d" % (
            j["status"], j["offset"], j["len"]))
        c.cmd("block-job-set-speed", device="m0", speed=0)
        c.event("BLOCK_JOB_READY", timeout=120)
        c.cmd("block-job-complete", device="m0")
        ev = c.event("BLOCK_JOB_COMPLETED", timeout=120)
        assert "error" not in ev["data"], ev

        # through the export, now served from the target
        r = Client(sock)
        r.read_check([(i * REGION, pattern(i, True) * REGION)
                      for i in range(CLIENTS)]
                     + [(off, original(off, MiB))
                        for off in range(WRITTEN, SIZE, MiB)])
        r.close()
        c.cmd("quit")
        assert q.wait(60) == 0
    finally:
        q.close()
    img("compare", "-f", "qcow2", "-F", "qcow2", src, tgt)
    checks = ["read -P 0x%x %d %d" % (0x80 + i, i * REGION, REGION)
              for i in range(CLIENTS)]
    checks += ["read -P 0x11 %d %d" % (WRITTEN, DATA_END - WRITTEN),
               "read -P 0 %d %d" % (DATA_END, SIZE - DATA_END)]
    for path in (src, tgt):
        qemu_io(path, *checks)
        check_clean(path)


@with_dir("qmpd-nbd-load-")
def test_clients_during_mirror(d):
    """The clients' writes reach the target through the mirror's dirty
    bitmap (copy-mode background)."""
    clients_during_mirror(d, "background")


@with_dir("qmpd-nbd-load-")
def test_clients_during_write_blocking_mirror(d):
    """The clients' writes reach the target as they happen (copy-mode
    write-blocking)."""
    clients_during_mirror(d, "write-blocking")


if __name__ == "__main__":
    run([test_clients_during_mirror,
         test_clients_during_write_blocking_mirror])
