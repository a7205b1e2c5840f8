#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Telnet monitors (-monitor telnet:HOST:PORT,server=on,wait=off and
-chardev socket,...,telnet=on), started alike on qmpd and QEMU 7.2: the
bytes each sends on a connection, and what a command typed with IAC
sequences in it answers.

QEMU's readline echoes and redraws the typed line and qmpd's HMP over a
socket does not; its "\\r\\n" also gives QEMU an empty second line.  So
a reply is compared from the end of the typed line (its first "\\r\\n")
to the prompt after it, each command on a connection of its own."""

import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, need_qemu, qemu_binary, run  # noqa: E402
from test_cmdline import free_tcp_port  # noqa: E402

OFFER = bytes([0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00,
               0xff, 0xfd, 0x00])
PROMPT = b"(qemu) "


def start(args, qemu):
    return Qmpd(["-M", "none"] + args,
                binary_path=qemu_binary() if qemu else None)


def connect(q, addr, deadline=60):
    """A connection to the telnet monitor at @addr (a port or a path);
    a program's socket may not be listening yet."""
    end = time.time() + deadline
    while True:
        if isinstance(addr, int):
            s, where = socket.socket(), ("127.0.0.1", addr)
        else:
            s, where = socket.socket(socket.AF_UNIX), addr
        s.settimeout(60)
        try:
            s.connect(where)
            return s
        except (ConnectionRefusedError, FileNotFoundError):
            s.close()
            if time.time() > end or q.proc.poll() is not None:
                raise
            time.sleep(0.01)


def read_until(s, data, want, count=1):
    """Read from @s onto @data until @want has come @count times."""
    while data.count(want) < count:
        chunk = s.recv(65536)
        assert chunk, "connection closed; got %r" % bytes(data)
        data += chunk
    return data


def opening(q, addr):
    """The bytes a new connection gets up to its first prompt."""
    s = connect(q, addr)
    try:
        return bytes(read_until(s, bytearray(), PROMPT))
    finally:
        s.close()


def reply(q, addr, line):
    """What @line (raw bytes, with its end of line) answers: the text
    from the end of the typed line to the next prompt."""
    s = connect(q, addr)
    try:
        data = read_until(s, bytearray(), PROMPT)
        start = len(data)
        s.sendall(line)
        read_until(s, data, PROMPT, 2)
        after = bytes(data[start:])
        after = after[after.index(b"\r\n") + 2:]
        # QEMU's second, empty line ("\n" after "\r") may follow at once
        return after[:after.index(PROMPT) + len(PROMPT)]
    finally:
        s.close()


def offered(negotiation, qemu):
    """Whether @negotiation is the offer.  QEMU 7.2 now and then sends it
    twice on one connection (seen on a QMP socket; its telnet start-up
    races the monitor's): qmpd sends it once."""
    if qemu and negotiation and len(negotiation) % len(OFFER) == 0:
        return negotiation == OFFER * (len(negotiation) // len(OFFER))
    return negotiation == OFFER


def split_opening(data):
    """The negotiation before the greeting, and the greeting without
    QEMU's version (the two programs' differ)."""
    at = data.index(b"QEMU ")
    greeting = data[at:]
    return data[:at], greeting[greeting.index(b" monitor"):]


# typed line, and what it must answer on both programs
LINES = [
    (b"info status\r\n", b"VM status: running\r\n(qemu) "),
    # IAC IP eats the byte after it, as QEMU's telnet filter does
    (b"info \xff\xf4istatus\r\n", b"VM status: running\r\n(qemu) "),
    (b"info \xff\xf3status\r\n", b"VM status: running\r\n(qemu) "),
    (b"info \xff\xfb\x01status\r\n", b"VM status: running\r\n(qemu) "),
    (b"\xff\xfd\x00\xff\xfd\x03info status\r\n",
     b"VM status: running\r\n(qemu) "),
    # IAC IAC is one 0xff byte of the command line
    (b"info st\xff\xffatus\r\n",
     b"unknown command: 'info st\xffatus'\r\n(qemu) "),
]


def check_monitor(args, addr_of):
    """Start both programs with @args; @addr_of(q) is where to connect."""
    seen = {}
    for qemu in (False, True):
        with start(args, qemu) as q:
            addr = addr_of(q)
            first = opening(q, addr)
            negotiation, greeting = split_opening(first)
            assert offered(negotiation, qemu), (qemu, first)
            assert greeting == b" monitor - type 'help' for more " \
                b"information\r\n(qemu) ", (qemu, first)
            seen[qemu] = [split_opening(opening(q, addr))[1]]
            for line, want in LINES:
                got = reply(q, addr, line)
                assert got == want, (qemu, line, got)
                seen[qemu].append(got)
    assert seen[False] == seen[True], seen


def test_tcp_monitor():
    need_qemu()
    port = free_tcp_port()
    check_monitor(["-monitor", "telnet:127.0.0.1:%d,server=on,wait=off"
                   % port], lambda q: port)


def test_tutorial_spelling():
    """-monitor telnet:HOST:PORT,server,nowait, as the tutorials have it."""
    need_qemu()
    port = free_tcp_port()
    check_monitor(["-monitor", "telnet:127.0.0.1:%d,server,nowait" % port],
                  lambda q: port)


def test_unix_chardev():
    need_qemu()
    d = tempfile.mkdtemp(prefix="qmpd-telnet-")
    path = os.path.join(d, "tn.sock")
    try:
        check_monitor(["-chardev", "socket,id=tn,path=%s,server=on,"
                       "wait=off,telnet=on" % path, "-mon", "chardev=tn"],
                      lambda q: path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_wait_on():
    """server=on,wait=on: the notice names the telnet address, and the
    client that ends the wait gets the offer first."""
    need_qemu()
    port = free_tcp_port()
    arg = "telnet:127.0.0.1:%d,server=on,wait=on" % port
    notice = ("-monitor %s: info: QEMU waiting for connection on: "
              "disconnected:telnet:127.0.0.1:%d,server=on" % (arg, port))
    for qemu in (False, True):
        q = Qmpd(["-M", "none", "-monitor", arg], wait=False,
                 binary_path=qemu_binary() if qemu else None)
        with q:
            first = opening(q, port)
            assert offered(split_opening(first)[0], qemu), (qemu, first)
            lines = q.stderr_text().splitlines()
            assert any(line.split(": ", 1)[1] == notice
                       for line in lines if ": " in line), (qemu, lines)


def test_qmp_over_telnet():
    """A QMP monitor on a telnet socket: the offer, then the greeting;
    the client's option answers do not reach the JSON parser."""
    port = free_tcp_port()
    with start(["-qmp", "telnet:127.0.0.1:%d,server=on,wait=off" % port],
               False) as q:
        s = connect(q, port)
        try:
            data = read_until(s, bytearray(), b"\r\n")
            assert data.startswith(OFFER + b'{"QMP": '), data
            s.sendall(b'\xff\xfd\x01{"execute": \xff\xfb\x03'
                      b'"qmp_capabilities"}\r\n')
            data = read_until(s, bytearray(), b"\r\n")
            assert data == b'{"return": {}}\r\n', data
        finally:
            s.close()


def test_serial():
    """-serial telnet: offers too (what the peer types is dropped)."""
    need_qemu()
    for qemu in (False, True):
        port = free_tcp_port()
        with start(["-serial", "telnet:127.0.0.1:%d,server=on,wait=off"
                    % port], qemu) as q:
            s = connect(q, port)
            try:
                got = bytes(read_until(s, bytearray(), OFFER))
                assert offered(got, qemu), (qemu, got)
            finally:
                s.close()


def test_qtest():
    """-qtest telnet: (a client): the offer, then commands read through
    the filter.  Not compared with QEMU 7.2, whose qtest client gets its
    offer late or never and its IAC bytes now filtered, now not (both
    seen here): its telnet start-up races the qtest chardev's."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(60)
    with lst, start(["-qtest", "telnet:127.0.0.1:%d" % lst.getsockname()[1],
                     "-qtest-log", "none"], False):
        conn, _ = lst.accept()
        with conn:
            conn.settimeout(60)
            conn.sendall(b"endi\xff\xf4xanness\n")
            got = bytes(read_until(conn, bytearray(), b"\n"))
            assert got == OFFER + b"OK little\n", got


def test_refused():
    """tn3270 and websocket stay refused, by name."""
    for key in ("tn3270", "websocket"):
        q = Qmpd(["-chardev", "socket,id=x,host=127.0.0.1,port=1,"
                  "server=on,wait=off,%s=on" % key], qmp=False, status=1)
        with q:
            assert q.wait(60) == 1
            assert "%s is not supported by qmpd" % key in q.stderr_text(), \
                q.stderr_text()


if __name__ == "__main__":
    run([test_tcp_monitor, test_tutorial_spelling, test_unix_chardev,
         test_wait_on, test_qmp_over_telnet,
         test_serial, test_qtest, test_refused])
