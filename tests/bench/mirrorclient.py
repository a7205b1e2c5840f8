#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""QMP helper for run-mirror.sh: runs one mirror job, optionally under a
paced guest writer, and times it.

Python 3 standard library only.  Subcommands:

  has-arg SOCKET COMMAND ARG
        exit 0 if query-qmp-schema gives COMMAND an argument ARG
  run SOCKET [--pre JSON]... [--first JSON] JOB_JSON [--bound S]
      [--writer KIND:DEVICE:MIBS --span BYTES] [--stride BYTES]
      [--chunk BYTES] [--depth N] [--writer-sock SOCKET2]
        send each --pre command (must succeed; untimed); start the
        clock; run --first (a job with a job-id, e.g. block-stream) to
        its end; send JOB_JSON (a mirror job with a job-id) and wait at
        most S seconds (default 300) for its BLOCK_JOB_READY; stop the
        writer; job-complete the job if it is ready, else force-cancel
        it.  Prints one line of key=value:
          first_s      --first's command to its concluded
          ready_s      JOB_JSON to BLOCK_JOB_READY ("-" if none)
          total_s      clock start to BLOCK_JOB_READY
          complete_s   job-complete to concluded
          offset, len  the job's counters in BLOCK_JOB_READY (or in a
                       query at the bound)
          converged    yes (READY within S seconds) or no
          wrote        bytes the writer wrote while the job ran
          writer_mibs  the rate the writer achieved, MiB/s
          error=...    a job, command or writer error

The writer starts before JOB_JSON (after one uncounted write, so that
its connection is up).  It writes CHUNK bytes (default 1 MiB) at random
CHUNK-aligned offsets in the first half of every STRIDE bytes (default
2 * CHUNK: the data of an image laid out as "CHUNK of data every
STRIDE") below SPAN, each request started at its time on a schedule of
MIBS MiB/s, with up to N (default 32) in flight, as a guest with a
queue depth of N would.  A writer more than 100 ms behind drops the
backlog; what it achieved is reported.  KIND is how it reaches the
daemon's node DEVICE:
  qmpd  __com.qmpd_qemu-io "aio_write ..." over QMP (qmpd's qemu-io)
  hmp   human-monitor-command 'qemu-io DEVICE "aio_write ..."' (QEMU)
        For these two DEVICE must be a drive (a block backend: an aio
        request outlives a command, and a node's temporary backend would
        not), and the writes in flight are those sent minus the
        device's query-blockstats wr_operations.  (HMP aio_flush is no
        use: QEMU's drains every node, the job too.)
  nbd   a qemu-io process ($QEMU_IO, default qemu-io; under stdbuf, so
        that it reads commands unbuffered and prints each completion at
        once) on the daemon's NBD export: DEVICE is EXPORT@NBD_SOCKET
        (qemu-storage-daemon has no qemu-io of its own)
The QMP writers use a connection of their own, to SOCKET2 if given
(QEMU's -qmp socket takes one client at a time).
"""

import json
import os
import random
import select
import socket
import subprocess
import sys
import threading
import time

MiB = 1 << 20


class Timeout(Exception):
    pass


class Qmp:
    """One QMP connection; events read while waiting for a reply are
    queued for event().  Reads keep their own buffer, so a timeout
    loses nothing."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        if "QMP" not in self._read():
            raise RuntimeError("no QMP greeting")
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
                raise RuntimeError("server closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self._read()
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def event(self, deadline=None):
        """The next event; Timeout after deadline (time.monotonic())."""
        if self.events:
            return self.events.pop(0)
        while True:
            m = self._read(deadline)
            if "event" in m:
                return m

    def close(self):
        self.sock.close()


class Writer(threading.Thread):
    """The paced guest writer (see the module comment)."""

    def __init__(self, kind, device, mibs, sock, span, chunk, stride,
                 depth):
        super().__init__(daemon=True)
        self.kind, self.device, self.sock = kind, device, sock
        self.per_s = mibs * MiB / chunk         # writes per second
        self.chunk, self.stride, self.span = chunk, stride, span
        self.depth = depth
        self.stop = threading.Event()
        self.started = threading.Event()
        self.bytes = 0                  # written (completed)
        self.elapsed = 0.0
        self.error = None
        self.rng = random.Random(4)
        self.proc = None
        self.q = None
        self.cond = threading.Condition()
        self.outstanding = 0

    def _connect(self):
        if self.kind == "nbd":
            export, path = self.device.split("@", 1)
            self.proc = subprocess.Popen(
                ["stdbuf", "-i0", "-oL",
                 os.environ.get("QEMU_IO", "qemu-io"), "-f", "raw",
                 "nbd+unix:///%s?socket=%s" % (export, path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, bufsize=1)
            threading.Thread(target=self._reap, daemon=True).start()
        else:
            self.q = Qmp(self.sock)

    def _reap(self):
        """nbd: count the completions qemu-io prints ("wrote N/N bytes
        at offset X", then a statistics line)."""
        for line in self.proc.stdout:
            with self.cond:
                if "wrote " in line and " bytes at offset " in line:
                    self.outstanding -= 1
                    self.bytes += self.chunk
                elif "error" in line.lower() or "fail" in line.lower():
                    self.error = self.error or "writer: " + line.strip()
                self.cond.notify_all()
        with self.cond:
            self.error = self.error or (
                None if self.stop.is_set() else "writer: qemu-io exited")
            self.outstanding = 0
            self.cond.notify_all()

    def _qemu_io(self, cmd):
        if self.kind == "qmpd":
            r = self.q.cmd("__com.qmpd_qemu-io", {"device": self.device,
                                                  "command": cmd})
        else:
            r = self.q.cmd("human-monitor-command", {
                "command-line": 'qemu-io %s "%s"' % (self.device, cmd)})
        if "error" in r:
            raise RuntimeError(r["error"]["desc"])
        out = r["return"]
        if "error" in out.lower() or "fail" in out.lower():
            raise RuntimeError(out.strip())

    def _completed(self):
        """qmpd, hmp: writes the device has completed so far (its
        query-blockstats wr_operations)."""
        r = self.q.cmd("query-blockstats")
        for d in r.get("return", []):
            if self.device in (d.get("device"), d.get("node-name")):
                return d["stats"]["wr_operations"]
        raise RuntimeError("no blockstats for %s" % self.device)

    def _wait_below(self, n, timeout=None):
        """Wait until fewer than n (n > 0) or no (n == 0) writes of ours
        are in flight."""
        ok = (lambda: self.outstanding < n) if n else \
            (lambda: self.outstanding <= 0)
        if self.kind == "nbd":
            with self.cond:
                self.cond.wait_for(ok, timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            done = self._completed() - self.base
            self.bytes += (done - self.completed) * self.chunk
            self.outstanding -= done - self.completed
            self.completed = done
            if ok() or (deadline and time.monotonic() > deadline):
                return
            time.sleep(0.002)

    def _write(self, off):
        """Start one write, once fewer than depth are in flight."""
        args = "-P %d %d %d" % (off // self.stride % 251 + 1, off,
                                self.chunk)
        if self.outstanding >= self.depth:
            self._wait_below(self.depth)
        if self.kind == "nbd":
            with self.cond:
                self.outstanding += 1
            self.proc.stdin.write("aio_write %s\n" % args)
        else:
            self._qemu_io("aio_write " + args)
            self.outstanding += 1

    def run(self):
        try:
            self._connect()
            slots = self.span // self.stride
            per = max(1, (self.stride // 2) // self.chunk)
            self.base = 0 if self.kind == "nbd" else self._completed()
            self.completed = 0
            # one write first, uncounted: the connection is up (qemu-io
            # connects to the export lazily) before the clock starts
            self._write(0)
            self._wait_below(0)
            self.bytes = 0
            self.started.set()
            start = t0 = time.monotonic()
            done = 0
            while not self.stop.is_set() and not self.error:
                now = time.monotonic()
                due = t0 + done / self.per_s
                if due > now:
                    self.stop.wait(due - now)
                    continue
                if now - due > 0.1:
                    # behind: drop what is more than 100 ms late
                    t0 += now - due - 0.1
                self._write(self.rng.randrange(slots) * self.stride +
                            self.rng.randrange(per) * self.chunk)
                done += 1
            self._wait_below(0, 10)
            self.elapsed = time.monotonic() - start
        except Exception as e:          # reported on the result line
            self.error = "writer: %s" % e
        finally:
            self.stop.set()
            self.started.set()
            if self.q:
                self.q.close()
            if self.proc:
                self.proc.stdin.close()
                self.proc.wait()


def job_id_of(msg):
    return json.loads(msg)["arguments"]["job-id"]


def wait_concluded(q, job_id, deadline=None):
    """Events up to the job's concluded; (ok, error)."""
    error = None
    while True:
        try:
            ev = q.event(deadline)
        except Timeout:
            return False, error
        d = ev.get("data", {})
        if ev["event"] == "BLOCK_JOB_COMPLETED" and d.get("device") == job_id \
                and "error" in d:
            error = d["error"]
        if ev["event"] == "JOB_STATUS_CHANGE" and d.get("id") == job_id \
                and d.get("status") == "concluded":
            return True, error


def run(path, pre, first, job, bound, writer_spec, wsock, span, chunk,
        stride, depth):
    q = Qmp(path)
    out = {}
    error = None
    for p in pre:
        m = json.loads(p)
        r = q.cmd(m["execute"], m.get("arguments"))
        if "error" in r:
            print("ready_s=- error=%s" % json.dumps(
                "%s: %s" % (m["execute"], r["error"]["desc"])))
            return
    t0 = time.monotonic()
    if first:
        m = json.loads(first)
        r = q.cmd(m["execute"], m.get("arguments"))
        if "error" in r:
            print("ready_s=- error=%s" % json.dumps(r["error"]["desc"]))
            return
        ok, error = wait_concluded(q, job_id_of(first))
        if error:
            print("ready_s=- error=%s" % json.dumps(error))
            return
        out["first_s"] = "%.3f" % (time.monotonic() - t0)
    writer = None
    if writer_spec:
        kind, device, mibs = writer_spec.rsplit(":", 2)
        writer = Writer(kind, device, float(mibs), wsock, span, chunk,
                        stride, depth)
        writer.start()
        writer.started.wait(30)
    m = json.loads(job)
    job_id = job_id_of(job)
    t1 = time.monotonic()
    r = q.cmd(m["execute"], m.get("arguments"))
    if "error" in r:
        if writer:
            writer.stop.set()
            writer.join()
        print("ready_s=- error=%s" % json.dumps(r["error"]["desc"]))
        return
    deadline = t1 + bound
    ready = None
    while ready is None:
        try:
            ev = q.event(deadline)
        except Timeout:
            break
        d = ev.get("data", {})
        if ev["event"] == "BLOCK_JOB_READY" and d.get("device") == job_id:
            ready = d
            now = time.monotonic()
            out["ready_s"] = "%.3f" % (now - t1)
            out["total_s"] = "%.3f" % (now - t0)
        elif ev["event"] == "BLOCK_JOB_COMPLETED" and \
                d.get("device") == job_id:
            error = error or d.get("error", "ended before READY")
            break
        elif ev["event"] == "BLOCK_JOB_ERROR" and d.get("device") == job_id:
            error = error or "BLOCK_JOB_ERROR %s" % d.get("operation")
    if writer:
        writer.stop.set()
        writer.join()
        out["wrote"] = writer.bytes
        out["writer_mibs"] = "%.1f" % (
            writer.bytes / MiB / writer.elapsed if writer.elapsed else 0)
        error = error or writer.error
    if ready is None:
        out["converged"] = "no"
        jobs = q.cmd("query-block-jobs").get("return", [])
        for j in jobs:
            if j["device"] == job_id:
                out["offset"], out["len"] = j["offset"], j["len"]
        if jobs:
            q.cmd("block-job-cancel", {"device": job_id, "force": True})
            wait_concluded(q, job_id, time.monotonic() + 60)
    else:
        out["converged"] = "yes"
        out["offset"], out["len"] = ready["offset"], ready["len"]
        t2 = time.monotonic()
        r = q.cmd("job-complete", {"id": job_id})
        if "error" in r:
            error = error or r["error"]["desc"]
        else:
            ok, err = wait_concluded(q, job_id, time.monotonic() + 120)
            error = error or err
            if ok:
                out["complete_s"] = "%.3f" % (time.monotonic() - t2)
    q.close()
    line = " ".join("%s=%s" % kv for kv in out.items())
    if "ready_s" not in out:
        line = "ready_s=- " + line
    if error:
        line += " error=%s" % json.dumps(error)
    print(line)


def has_arg(path, command, arg):
    q = Qmp(path)
    schema = q.cmd("query-qmp-schema")["return"]
    q.close()
    types = {e["name"]: e for e in schema}
    cmd = types.get(command)
    if not cmd or cmd.get("meta-type") != "command":
        return False
    args = types.get(cmd["arg-type"], {})
    return any(m["name"] == arg for m in args.get("members", []))


def main(argv):
    if len(argv) == 4 and argv[0] == "has-arg":
        return 0 if has_arg(argv[1], argv[2], argv[3]) else 1
    if len(argv) >= 3 and argv[0] == "run":
        path, rest = argv[1], argv[2:]
        pre, first, job, wsock = [], None, None, None
        bound, writer, depth = 300.0, None, 32
        span, chunk, stride = 0, MiB, 0
        i = 0
        while i < len(rest):
            a = rest[i]
            if a in ("--pre", "--first", "--bound", "--writer", "--span",
                     "--chunk", "--stride", "--writer-sock", "--depth"):
                v = rest[i + 1]
                i += 2
                if a == "--pre":
                    pre.append(v)
                elif a == "--first":
                    first = v
                elif a == "--bound":
                    bound = float(v)
                elif a == "--writer":
                    writer = v
                elif a == "--span":
                    span = int(v)
                elif a == "--chunk":
                    chunk = int(v)
                elif a == "--writer-sock":
                    wsock = v
                elif a == "--depth":
                    depth = int(v)
                else:
                    stride = int(v)
            else:
                job = a
                i += 1
        if job is None or (writer and not span):
            print(__doc__, file=sys.stderr)
            return 2
        run(path, pre, first, job, bound, writer, wsock or path, span,
            chunk, stride or 2 * chunk, depth)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
