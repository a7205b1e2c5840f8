#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""QMP helper for run-backup.sh: sets up dirty bitmaps, drives guest
writes through HMP qemu-io, and times backup jobs.

Python 3 standard library only.  Every subcommand connects to the
daemon's QMP socket SOCKET, prints at most one line of key=value (a
failure as error="...", with exit status 1) and disconnects.

  cmd SOCKET JSON...
        send each command; stop at the first error
  bitmaps SOCKET NODE N [GRANULARITY]
        leave exactly N bitmaps b0..b(N-1) on NODE (enabled, not
        persistent, GRANULARITY bytes, default 65536): adds the missing
        ones, removes the others named bN...; the node's other bitmaps
        stay
  count SOCKET NODE BITMAP
        print count=BYTES: the bitmap's dirty bytes (query-named-block-
        nodes)
  write SOCKET DEVICE SIZE STEP SPAN SECONDS [--window W]
        the guest writer: HMP "qemu-io DEVICE \\"aio_write -q -P 165 OFF
        SIZE\\"" through human-monitor-command, OFF starting at 0 and
        advancing by STEP modulo SPAN (a request that would cross SPAN
        starts over at 0), for SECONDS; the commands are pipelined, W
        (default 32) of them unanswered at a time, and each starts a
        write that outlives it.  Then "aio_flush" (qemu-io's wait for
        every aio request) ends the run.  Prints ops, bytes, seconds
        (first command sent to aio_flush answered) and mib_s.
  fill SOCKET DEVICE LENGTH [--chunk BYTES]
        HMP qemu-io "write -q -z OFF CHUNK" over [0, LENGTH) (chunk
        default 1 GiB, 32 commands pipelined): every bitmap on the way
        gets every bit set, with no data buffer anywhere
  backup SOCKET [--pre JSON]... JOB_JSON [--timeout S]
        send each --pre command (untimed; must succeed), then JOB_JSON
        (a blockdev-backup or drive-backup with a job-id), and wait (at
        most S seconds, default 600) for its JOB_STATUS_CHANGE
        "concluded".  Prints seconds (command sent -> concluded) and
        error=... (a command error, the job's BLOCK_JOB_COMPLETED error,
        or the timeout).

Times come from time.monotonic().  HMP output other than empty is taken
as an error (the qemu-io commands run with -q).
"""

import json
import select
import socket
import sys
import time

HMP_WINDOW = 32


class Timeout(Exception):
    pass


class QmpError(Exception):
    pass


class Qmp:
    """One QMP connection.  Events read while waiting for replies are
    queued for event(); send() and reply() allow pipelining."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        if "QMP" not in self._read():
            raise QmpError("no QMP greeting")
        self.cmd("qmp_capabilities")

    def _read(self, deadline=None):
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [],
                                                  left)[0]:
                    raise Timeout()
            d = self.sock.recv(65536)
            if not d:
                raise QmpError("the daemon closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send(self, name, args=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def reply(self):
        while True:
            m = self._read()
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def cmd(self, name, args=None):
        """The command's return value; QmpError on an error reply."""
        self.send(name, args)
        r = self.reply()
        if "error" in r:
            raise QmpError("%s: %s" % (name, r["error"]["desc"]))
        return r["return"]

    def event(self, deadline=None):
        if self.events:
            return self.events.pop(0)
        while True:
            m = self._read(deadline)
            if "event" in m:
                return m

    def close(self):
        self.sock.close()


def hmp_check(r, line):
    """A pipelined human-monitor-command reply: empty output or raise."""
    if "error" in r:
        raise QmpError("%s: %s" % (line, r["error"]["desc"]))
    if r["return"].strip():
        raise QmpError("%s: %s" % (line, r["return"].strip()))


class HmpPipe:
    """human-monitor-command lines sent with at most `window` replies
    outstanding (QMP answers in order, so replies match by position)."""

    def __init__(self, q, window=HMP_WINDOW):
        self.q, self.window = q, window
        self.lines = []

    def run(self, line):
        if len(self.lines) >= self.window:
            self._one()
        self.q.send("human-monitor-command", {"command-line": line})
        self.lines.append(line)

    def _one(self):
        hmp_check(self.q.reply(), self.lines.pop(0))

    def drain(self):
        while self.lines:
            self._one()


def node_bitmaps(q, node):
    """Names of the dirty bitmaps on node (by node name or device)."""
    for n in q.cmd("query-named-block-nodes"):
        if n.get("node-name") == node:
            return {b.get("name"): b for b in n.get("dirty-bitmaps", [])}
    for b in q.cmd("query-block"):
        if b.get("device") == node and "inserted" in b:
            return {x.get("name"): x for x in b.get("dirty-bitmaps", [])}
    raise QmpError("no node %s" % node)


def do_cmd(q, args):
    for a in args:
        m = json.loads(a)
        q.cmd(m["execute"], m.get("arguments"))
    return {}


def do_bitmaps(q, args):
    node, n = args[0], int(args[1])
    gran = int(args[2]) if len(args) > 2 else 65536
    have = node_bitmaps(q, node)
    for i in range(n):
        if "b%d" % i not in have:
            q.cmd("block-dirty-bitmap-add", {"node": node, "name": "b%d" % i,
                                             "granularity": gran})
    for name in have:
        if name and name[0] == "b" and name[1:].isdigit() and \
                int(name[1:]) >= n:
            q.cmd("block-dirty-bitmap-remove", {"node": node, "name": name})
    return {}


def do_count(q, args):
    bm = node_bitmaps(q, args[0]).get(args[1])
    if bm is None:
        raise QmpError("no bitmap %s on %s" % (args[1], args[0]))
    return {"count": bm["count"]}


def do_write(q, args):
    device, size, step, span, secs = args[0], int(args[1]), int(args[2]), \
        int(args[3]), float(args[4])
    window = HMP_WINDOW
    if len(args) > 6 and args[5] == "--window":
        window = int(args[6])
    pipe = HmpPipe(q, window)
    off, ops = 0, 0
    t0 = time.monotonic()
    end = t0 + secs
    while True:
        # the clock is read every 16 requests: a cheap loop is the point
        if ops % 16 == 0 and time.monotonic() >= end:
            break
        pipe.run('qemu-io %s "aio_write -q -P 165 %d %d"' %
                 (device, off, size))
        ops += 1
        off += step
        if off >= span:
            off %= span
        if off + size > span:
            off = 0
    pipe.drain()
    pipe.run('qemu-io %s "aio_flush"' % device)
    pipe.drain()
    t = time.monotonic() - t0
    return {"ops": ops, "bytes": ops * size, "seconds": "%.6f" % t,
            "mib_s": "%.1f" % (ops * size / t / (1 << 20))}


def do_fill(q, args):
    device, length = args[0], int(args[1])
    chunk = 1 << 30
    if len(args) > 3 and args[2] == "--chunk":
        chunk = int(args[3])
    pipe = HmpPipe(q)
    for off in range(0, length, chunk):
        pipe.run('qemu-io %s "write -q -z %d %d"' %
                 (device, off, min(chunk, length - off)))
    pipe.drain()
    return {}


def do_backup(q, args):
    pre, job, timeout = [], None, 600.0
    i = 0
    while i < len(args):
        if args[i] == "--pre":
            pre.append(args[i + 1])
            i += 2
        elif args[i] == "--timeout":
            timeout = float(args[i + 1])
            i += 2
        else:
            job = args[i]
            i += 1
    if job is None:
        raise QmpError("no job command")
    do_cmd(q, pre)
    m = json.loads(job)
    job_id = m["arguments"]["job-id"]
    t0 = time.monotonic()
    q.cmd(m["execute"], m.get("arguments"))
    deadline = t0 + timeout
    error = None
    while True:
        try:
            ev = q.event(deadline)
        except Timeout:
            raise QmpError("no end within %gs" % timeout)
        d = ev.get("data", {})
        if ev["event"] == "BLOCK_JOB_COMPLETED" and d.get("device") == job_id:
            error = d.get("error")
        if ev["event"] == "JOB_STATUS_CHANGE" and d.get("id") == job_id \
                and d.get("status") == "concluded":
            break
    out = {"seconds": "%.6f" % (time.monotonic() - t0)}
    if error:
        out["error"] = json.dumps(error)
    return out


COMMANDS = {
    "cmd": (do_cmd, 1),
    "bitmaps": (do_bitmaps, 2),
    "count": (do_count, 2),
    "write": (do_write, 5),
    "fill": (do_fill, 2),
    "backup": (do_backup, 1),
}


def main(argv):
    if len(argv) < 2 or argv[0] not in COMMANDS or \
            len(argv) - 2 < COMMANDS[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn = COMMANDS[argv[0]][0]
    try:
        q = Qmp(argv[1])
        try:
            out = fn(q, argv[2:])
        finally:
            q.close()
    except (QmpError, OSError, ValueError) as e:
        print("error=%s" % json.dumps(str(e)))
        return 1
    if out:
        print(" ".join("%s=%s" % kv for kv in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
