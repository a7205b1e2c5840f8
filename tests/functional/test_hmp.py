#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The human monitor: output texts, errors, and line editing on a pty."""

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, binary, check_ended, run, run_qmpd  # noqa: E402
from hmplines import hmp  # noqa: E402

BANNER = b"QEMU 7.2.0 monitor - type 'help' for more information\r\n"
ANSI = re.compile(rb"\x1b\[[0-9]*[A-Za-z]")


def test_texts():
    with Qmpd(["-name", "vm1", "-m", "64"]) as q:
        c = q.connect()
        assert hmp(c, "info status") == "VM status: running\r\n"
        assert hmp(c, "info name") == "vm1\r\n"
        assert hmp(c, "info version") == "7.2.0qmpd 0.1.0\r\n"
        assert hmp(c, "info kvm") == "kvm support: not compiled\r\n"
        assert hmp(c, "info memory_size_summary") == (
            "base memory: 67108864\r\nplugged memory: 0\r\n")
        assert hmp(c, "") == ""
        assert hmp(c, "   info   status  ") == "VM status: running\r\n"
        assert hmp(c, "help cont") == "cont|c  -- resume emulation\r\n"
        assert hmp(c, "help help") == "help|? [cmd] -- show the help\r\n"
        assert hmp(c, "help info status") == (
            "info status  -- show the current VM status (running|paused)\r\n")
        assert hmp(c, "help nosuch") == "unknown command: 'nosuch'\r\n"
        lines = hmp(c, "help").split("\r\n")[:-1]
        # sorted by command; help texts may continue on indented lines,
        # and drive_add's parameters on lines of their own ("[file=...")
        heads = [ln for ln in lines if not ln.startswith(("\t", "["))]
        assert heads == sorted(heads), lines
        assert hmp(c, "help qemu-io") == (
            'qemu-io [-d] [device] "[command]" -- run a qemu-io command on a '
            'block device\r\n\t\t\t-d: [device] is a device ID rather '
            'than a drive ID or node name\r\n')
        assert "info [subcommand] -- show various information about the " \
            "system state" in lines
        info = hmp(c, "help info")
        assert info == hmp(c, "info")
        assert "info status  -- show the current VM status (running|paused)" \
            in info.split("\r\n")
        assert hmp(c, "nosuch") == "unknown command: 'nosuch'\r\n"
        assert hmp(c, "info nosuch") == "unknown command: 'info nosuch'\r\n"
        assert hmp(c, "stop extra") == (
            "stop|s: extraneous characters at the end of line\r\n"
            "Try \"help stop\" for more information\r\n")
        assert hmp(c, "info status extra") == (
            "status: extraneous characters at the end of line\r\n"
            "Try \"help info status\" for more information\r\n")
        assert hmp(c, "s") == ""
        c.event("STOP")
        assert hmp(c, "info status") == "VM status: paused\r\n"
        assert hmp(c, "c") == ""
        c.event("RESUME")
        assert hmp(c, "q") == ""
        c.event("SHUTDOWN")
        assert q.wait() == 0


def test_pipe():
    p = run_qmpd(["-nodefaults", "-monitor", "stdio", "-name", "foo"],
                 input=b"info name\nbogus\ninfo status\nquit\n")
    assert p.stdout == (BANNER + b"(qemu) foo\r\n(qemu) unknown command: "
                        b"'bogus'\r\n(qemu) VM status: running\r\n(qemu) "), \
        p.stdout


class Pty:
    """qmpd with its monitor on a terminal; close() checks its end."""

    def __init__(self, args):
        self.master, slave = os.openpty()
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave,
                                     stderr=self.stderr,
                                     start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, marker, timeout=30):
        deadline = time.time() + timeout
        while marker not in self.out:
            left = deadline - time.time()
            assert left > 0, "no %r in %r" % (marker, self.out)
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                # the terminal's output processing turns \n into \r\n
                self.out += os.read(self.master, 65536)
                self.out = self.out.replace(b"\r\r\n", b"\r\n")
        i = self.out.index(marker) + len(marker)
        got, self.out = self.out[:i], self.out[i:]
        return got

    def type(self, s):
        os.write(self.master, s)

    def close(self):
        killed = self.proc.poll() is None
        if killed:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        if not killed:
            check_ended("qmpd", self.proc.returncode, 0, err)


def screen(raw):
    """The visible text of a line after redraws: last \\r segment."""
    text = ANSI.sub(b"", raw)
    return text.split(b"\r")[-1]


def test_pty_editing():
    t = Pty([binary(), "-nodefaults", "-monitor", "stdio", "-name", "ptyvm"])
    try:
        assert t.read_until(b"(qemu) ").startswith(BANNER)
        # tab completion of a command name, then of an info subcommand
        t.type(b"inf\t")
        t.read_until(b"info ")
        t.type(b"na\t")
        t.read_until(b"me ")
        t.type(b"\r")
        out = t.read_until(b"(qemu) ")
        assert b"ptyvm\r\n" in out, out
        # several candidates: listed, then the line is shown again
        t.type(b"info \t")
        out = t.read_until(b"(qemu) info ")
        assert b"status" in out and b"version" in out, out
        t.type(b"\x15")             # Ctrl-U clears the line
        # history: Up brings back the previous line
        t.type(b"\x1b[A\r")
        t.read_until(b"ptyvm\r\n(qemu) ")
        # editing: fix "inf statux" by moving home and inserting
        t.type(b"inf statux\x7fs\x01\x1b[C\x1b[C\x1b[Co\r")
        t.read_until(b"VM status: running\r\n(qemu) ")
        # Ctrl-W drops "junk", Left + Delete drop the space, "e" ends it
        t.type(b"info nam junk\x17\x1b[D\x1b[3~e\r")
        t.read_until(b"ptyvm\r\n(qemu) ")
        t.type(b"quit\r")
        assert t.proc.wait(30) == 0
    finally:
        t.close()


def test_socket_monitor():
    with Qmpd(qmp=False, wait=False) as probe:
        path = os.path.join(probe.dir, "hmp.sock")
        with Qmpd(["-monitor", "unix:%s,server=on,wait=off" % path],
                  qmp=False) as q:
            q.wait_for_path(path)
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.settimeout(30)
            buf = b""
            while not buf.endswith(b"(qemu) "):
                buf += s.recv(4096)
            assert buf == BANNER + b"(qemu) ", buf
            s.sendall(b"info status\r\n")
            buf = b""
            while not buf.endswith(b"(qemu) "):
                buf += s.recv(4096)
            # the line is echoed, as QEMU's monitor does
            assert buf == b"info status\r\nVM status: running\r\n(qemu) ", buf
            # a second client on the same socket is served at once
            s2 = socket.socket(socket.AF_UNIX)
            s2.connect(path)
            s2.settimeout(30)
            buf = b""
            while not buf.endswith(b"(qemu) "):
                buf += s2.recv(4096)
            s2.sendall(b"q\n")
            assert q.wait(30) == 0
            s.close()
            s2.close()


if __name__ == "__main__":
    run([test_texts, test_pipe, test_pty_editing, test_socket_monitor])
