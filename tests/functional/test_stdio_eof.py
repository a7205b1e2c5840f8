#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A -qmp stdio monitor outlives its input, as QEMU 7.2's does.

The peer negotiates on stdin/stdout and closes stdin; a socket monitor
beside it then makes two round trips, so the main loop has seen the
end of stdin.  SIGTERM must still send SHUTDOWN (reason host-signal) on
stdout as well as on the socket, the process must exit 0, and stderr
must name the sender by its argv[0] ("terminating on signal 15 from pid
N (ARGV0)").  The same runs on qemu-system-x86_64 when it is installed
and must give the same events and line.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import QmpClient, binary, qemu_binary, run  # noqa: E402


def my_argv0():
    with open("/proc/self/cmdline", "rb") as f:
        return f.read().split(b"\0")[0].decode()


def connect(path, proc, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            c = QmpClient(path, negotiate=False)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            assert proc.poll() is None and time.time() < deadline, proc
            time.sleep(0.01)
    while "QMP" not in c.greeting:       # QEMU may send RESUME first
        c.greeting = c.recv()
    c.cmd("qmp_capabilities")
    return c


def stdio_eof_then_sigterm(prog):
    d = tempfile.mkdtemp(prefix="qmpd-stdio-")
    sock = os.path.join(d, "qmp.sock")
    p = subprocess.Popen([prog, "-M", "none", "-nodefaults", "-display",
                          "none", "-qmp", "stdio", "-qmp",
                          "unix:%s,server=on,wait=off" % sock],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        greeting = json.loads(p.stdout.readline())
        while "QMP" not in greeting:
            greeting = json.loads(p.stdout.readline())
        p.stdin.write(b'{"execute": "qmp_capabilities"}\n')
        p.stdin.flush()
        assert json.loads(p.stdout.readline()) == {"return": {}}
        c = connect(sock, p)
        p.stdin.close()
        for _ in range(2):
            assert c.cmd("query-status")["status"] == "running"
        assert p.poll() is None, "exited at the end of stdin"
        p.send_signal(signal.SIGTERM)
        sock_ev = c.event("SHUTDOWN", timeout=60)
        assert p.wait(timeout=60) == 0
        out = [json.loads(line) for line in p.stdout.read().splitlines()]
        err = p.stderr.read().decode().splitlines()
        for e in out + [sock_ev]:
            del e["timestamp"]
        return out, sock_ev, err[0].split(": ", 1)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(sock):
            os.unlink(sock)
        os.rmdir(d)


def test_sigterm_after_stdin_eof():
    shutdown = {"event": "SHUTDOWN",
                "data": {"guest": False, "reason": "host-signal"}}
    line = "terminating on signal 15 from pid %d (%s)" % (os.getpid(),
                                                          my_argv0())
    ours = stdio_eof_then_sigterm(binary())
    assert ours == ([shutdown], shutdown, line), ours
    if qemu_binary():
        theirs = stdio_eof_then_sigterm(qemu_binary())
        assert ours == theirs, (ours, theirs)


if __name__ == "__main__":
    run([test_sigterm_after_stdin_eof])
