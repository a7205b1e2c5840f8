#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""QMP helper for run-jobs.sh: starts one block job and times it.

Python 3 standard library only.  Subcommands:

  probe SOCKET            exit 0 once SOCKET completes a QMP handshake
  has-command SOCKET NAME exit 0 if query-commands lists NAME, else 1
  run SOCKET JSON [--ready] [--poll CMD]
                          send the job command JSON (which must carry a
                          job-id), wait for its JOB_STATUS_CHANGE
                          "concluded" and print one line of key=value:
                          seconds (command sent -> concluded), and with
                          --ready ready_s (command -> BLOCK_JOB_READY) and
                          complete_s (job-complete sent -> concluded);
                          with --poll, CMD is sent in a loop while the job
                          runs, one at a time on the same connection, and
                          polls, rtt_median_ms and rtt_max_ms are added.
                          error=... carries a job or command error.
  alloc IMAGE...          print the bytes each job moves on the chain
                          IMAGE[0] <- IMAGE[1] <- ... (base first), from
                          the allocation map of every layer on its own

Times come from time.monotonic().
"""

import json
import socket
import statistics
import subprocess
import sys
import time


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("rb")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("no QMP greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.rfile.readline()
        if not line:
            raise RuntimeError("server closed the connection")
        return json.loads(line)

    def send(self, name, args=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def reply(self):
        """The next reply; events read on the way are queued."""
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def cmd(self, name, args=None):
        self.send(name, args)
        return self.reply()

    def event(self):
        """The next event, queued or read from the socket."""
        if self.events:
            return self.events.pop(0)
        while True:
            msg = self._read()
            if "event" in msg:
                return msg

    def close(self):
        self.rfile.close()
        self.sock.close()


def job_event(ev, job_id):
    """(kind, error) for an event about job_id, else (None, None)."""
    name = ev["event"]
    data = ev.get("data", {})
    if name == "JOB_STATUS_CHANGE" and data.get("id") == job_id:
        if data.get("status") == "concluded":
            return "concluded", None
        return None, None
    if data.get("device") != job_id:
        return None, None
    if name == "BLOCK_JOB_READY":
        return "ready", None
    if name == "BLOCK_JOB_COMPLETED" and "error" in data:
        return None, data["error"]
    if name == "BLOCK_JOB_ERROR":
        return None, "BLOCK_JOB_ERROR %s" % data.get("operation", "")
    return None, None


def run(path, command, want_ready, poll):
    q = Qmp(path)
    req = json.loads(command)
    job_id = req["arguments"]["job-id"]
    out = {}
    error = None
    rtts = []
    t0 = time.monotonic()
    r = q.cmd(req["execute"], req.get("arguments"))
    if "error" in r:
        print("seconds=- error=%s" % json.dumps(r["error"]["desc"]))
        return
    stage = "ready" if want_ready else "concluded"
    while True:
        if poll and not q.events:
            t = time.monotonic()
            r = q.cmd(poll)
            rtts.append(time.monotonic() - t)
            if not q.events:
                continue
        kind, err = job_event(q.event(), job_id)
        error = error or err
        if kind == "ready" and stage == "ready":
            now = time.monotonic()
            out["ready_s"] = now - t0
            r = q.cmd("job-complete", {"id": job_id})
            if "error" in r:
                error = error or r["error"]["desc"]
                q.cmd("job-cancel", {"id": job_id})
            t1 = now
            stage = "concluded"
        elif kind == "concluded":
            now = time.monotonic()
            out["seconds"] = now - t0
            if want_ready and "ready_s" in out:
                out["complete_s"] = now - t1
            break
    q.close()
    line = " ".join("%s=%.3f" % kv for kv in out.items())
    if poll:
        if rtts:
            line += " polls=%d rtt_median_ms=%.2f rtt_max_ms=%.2f" % (
                len(rtts), statistics.median(rtts) * 1e3, max(rtts) * 1e3)
        else:
            line += " polls=0 rtt_median_ms=- rtt_max_ms=-"
    if error:
        line += " error=%s" % json.dumps(error)
    print(line)


def allocated(image):
    """Set of (offset, length) extents that image holds itself."""
    spec = {"driver": "qcow2", "backing": None,
            "file": {"driver": "file", "filename": image}}
    text = subprocess.run(
        ["qemu-img", "map", "--output=json", "json:" + json.dumps(spec)],
        check=True, capture_output=True, text=True).stdout
    return [(e["start"], e["length"]) for e in json.loads(text)
            if e["data"] and e["depth"] == 0]


def alloc(images, unit=65536):
    layers = []
    for img in images:
        s = set()
        for start, length in allocated(img):
            s.update(range(start // unit, (start + length) // unit))
        layers.append(s)
    base, sn1, top = layers[0], layers[1], layers[-1]
    b = {
        "stream_full": len((base | sn1) - top),
        "stream_base": len(sn1 - top),
        "commit_intermediate": len(sn1),
        "commit_active": len(sn1 | top),
        "union": len(base | sn1 | top),
    }
    for i, s in enumerate(layers):
        b["layer%d" % i] = len(s)
    print(" ".join("%s=%d" % (k, v * unit) for k, v in b.items()))


def main(argv):
    if len(argv) >= 2 and argv[0] == "probe":
        Qmp(argv[1]).close()
    elif len(argv) == 3 and argv[0] == "has-command":
        q = Qmp(argv[1])
        names = {c["name"] for c in q.cmd("query-commands")["return"]}
        q.close()
        return 0 if argv[2] in names else 1
    elif len(argv) >= 3 and argv[0] == "run":
        rest = argv[3:]
        want_ready = "--ready" in rest
        poll = rest[rest.index("--poll") + 1] if "--poll" in rest else None
        run(argv[1], argv[2], want_ready, poll)
    elif len(argv) >= 3 and argv[0] == "alloc":
        alloc(argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
