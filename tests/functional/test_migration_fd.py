#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Descriptors passed to the monitor and migrations through them, as
`virsh save` does: getfd / closefd over QMP and HMP unix sockets
(SCM_RIGHTS) with QEMU 7.2's errors, names per monitor, migrate
fd:NAME into one end of a socketpair whose other end the destination
reads as -incoming fd:N, and a save into a pipe drained into a file
that a fresh qmpd restores with -incoming fd:N on the file."""

import os
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migpair import migrate_and_compare  # noqa: E402
from qmpd import Qmpd, run, wait_until  # noqa: E402

MiB = 1 << 20
BASE = ["-M", "pc", "-m", "64"]


def send_with_fds(c, name, args, fds):
    """One QMP command in a message carrying @fds; its reply."""
    import json
    data = json.dumps({"execute": name, "arguments": args}).encode()
    socket.send_fds(c.sock, [data], fds)
    return c.reply()


def status(c):
    return c.cmd("query-migrate").get("status")


def start_workload(c):
    # dirty slowly: an ASan build on a loaded 2-core machine moved only
    # ~12 MiB/s, and a guest dirtying faster than that never converges
    c.cmd("__com.qmpd_guest-workload", **{"ram-rate": 4 * MiB, "seed": 3})
    wait_until("4 MiB of RAM dirtied", lambda: c.cmd(
        "__com.qmpd_query-guest-workload")["ram-written"] >= 4 * MiB)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_getfd_errors():
    d = tempfile.mkdtemp(prefix="qmpd-fd-")
    other = os.path.join(d, "other.sock")
    with Qmpd(BASE + ["-qmp", "unix:%s,server=on,wait=off" % other]) as q:
        c = q.connect()
        assert c.error("getfd", fdname="a") == (
            "GenericError", "No file descriptor supplied via SCM_RIGHTS")
        before = fd_count(q.proc.pid)
        r, w = os.pipe()
        # a name with a leading digit: refused, and the descriptor closed
        rep = send_with_fds(c, "getfd", {"fdname": "1a"}, [r])
        assert rep["error"]["desc"] == \
            "Parameter 'fdname' expects a name not starting with a digit"
        assert fd_count(q.proc.pid) == before
        assert send_with_fds(c, "getfd", {"fdname": "a"}, [r]) == \
            {"return": {}}
        assert fd_count(q.proc.pid) == before + 1
        # the same name again replaces (and closes) the first
        assert send_with_fds(c, "getfd", {"fdname": "a"}, [w]) == \
            {"return": {}}
        assert fd_count(q.proc.pid) == before + 1
        # descriptors are taken once: the message's are gone
        assert c.error("getfd", fdname="b")[1] == \
            "No file descriptor supplied via SCM_RIGHTS"
        # another monitor has other names (a client of the same one, as
        # QEMU's reconnecting client, sees the monitor's)
        c2 = q.connect(path=other)
        assert c2.error("closefd", fdname="a") == (
            "GenericError", "File descriptor named 'a' not found")
        assert c2.error("migrate", uri="fd:a")[1] == \
            "File descriptor named 'a' has not been found"
        m = c2.cmd("query-migrate")
        assert m == {"status": "failed", "error-desc":
                     "File descriptor named 'a' has not been found"}, m
        held = fd_count(q.proc.pid)
        assert c.cmd("closefd", fdname="a") == {}
        assert fd_count(q.proc.pid) == held - 1
        assert c.error("closefd", fdname="a")[1] == \
            "File descriptor named 'a' not found"
        os.close(r)
        os.close(w)
    os.rmdir(d)


def test_hmp_getfd():
    d = tempfile.mkdtemp(prefix="qmpd-fd-")
    path = os.path.join(d, "hmp.sock")
    with Qmpd(BASE + ["-monitor", "unix:%s,server=on,wait=off" % path]) as q:
        q.wait_for_path(path)
        c = q.connect()
        h = socket.socket(socket.AF_UNIX)
        h.connect(path)
        h.settimeout(30)
        got = b""

        def until(text):
            nonlocal got
            while text not in got:
                d = h.recv(65536)
                assert d, got
                got += d
            head, got = got.split(text, 1)
            return head

        until(b"(qemu) ")
        h.sendall(b"getfd x\n")
        assert b"Error: No file descriptor supplied via SCM_RIGHTS" in \
            until(b"(qemu) ")
        r, w = os.pipe()
        socket.send_fds(h, [b"getfd x\n"], [w])
        assert b"Error" not in until(b"(qemu) ")
        # the HMP monitor's name is not the QMP monitor's
        assert c.error("closefd", fdname="x")[1] == \
            "File descriptor named 'x' not found"
        h.sendall(b"closefd y\n")
        assert b"Error: File descriptor named 'y' not found" in \
            until(b"(qemu) ")
        h.sendall(b"closefd x\n")
        assert b"Error" not in until(b"(qemu) ")
        # the write end is closed in qmpd: the pipe reads its end
        os.close(w)
        assert os.read(r, 1) == b""
        os.close(r)
        h.close()
    os.rmdir(d)


def test_migrate_fd_socketpair():
    a, b = socket.socketpair()
    with Qmpd(BASE + ["-incoming", "fd:%d" % b.fileno()],
              pass_fds=[b.fileno()]) as dst, Qmpd(BASE) as src:
        b.close()
        dc = dst.connect()
        sc = src.connect()
        start_workload(sc)
        assert send_with_fds(sc, "getfd", {"fdname": "mig"},
                             [a.fileno()]) == {"return": {}}
        a.close()
        migrate_and_compare(sc, dc, "fd:mig")
        assert dc.cmd("query-status")["status"] == "running"
        # the migration took the name over
        assert sc.error("closefd", fdname="mig")[1] == \
            "File descriptor named 'mig' not found"


def test_save_restore_through_a_pipe():
    """virsh save: the state goes into a pipe that a helper writes to a
    file; virsh restore gives the file to -incoming fd:N."""
    d = tempfile.mkdtemp(prefix="qmpd-fd-")
    f = os.path.join(d, "state")
    r, w = os.pipe()

    def drain():
        with open(f, "wb") as out:
            while True:
                chunk = os.read(r, 1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.close(r)

    t = threading.Thread(target=drain)
    t.start()
    with Qmpd(BASE) as src:
        sc = src.connect()
        start_workload(sc)
        assert send_with_fds(sc, "getfd", {"fdname": "save"}, [w]) == \
            {"return": {}}
        os.close(w)
        # as virsh: stop first, then migrate
        sc.cmd("stop")
        digest = sc.cmd("__com.qmpd_guest-digest")["ram"]
        sc.cmd("migrate", uri="fd:save")
        wait_until("saved", lambda: status(sc) == "completed")
        assert sc.cmd("query-status")["status"] == "postmigrate"
    t.join(60)
    assert not t.is_alive()
    fd = os.open(f, os.O_RDONLY)
    with Qmpd(BASE + ["-incoming", "fd:%d" % fd], pass_fds=[fd]) as dst:
        os.close(fd)
        dc = dst.connect()
        wait_until("restored", lambda: status(dc) == "completed")
        # the source's guest was stopped when it was saved
        assert dc.cmd("query-status")["status"] == "paused"
        assert dc.cmd("__com.qmpd_guest-digest")["ram"] == digest
    os.unlink(f)
    os.rmdir(d)


if __name__ == "__main__":
    run([test_getfd_errors, test_hmp_getfd, test_migrate_fd_socketpair,
         test_save_restore_through_a_pipe])
