#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qmpd started and driven as QEMU's Python library (python/qemu/machine,
QEMUMachine and QEMUQtestMachine of QEMU 7.2, and the iotests VM built on
them) starts and drives QEMU.  The library is not installable here, so
Machine below makes the same process: the same argv in the same order,
the harness listening on the monitor (and qtest) socket before the
process starts and accepting the connection after, qmp_capabilities with
oob enabled as the qemu.qmp client asks, commands with its "__qmp#NNNNN"
ids, and its three ways to end (quit then wait, SIGTERM when there is no
QMP connection, SIGKILL for kill()).  The monitor comes the way 7.2's
library passes it (a unix path the harness listens on, or a TCP address
tuple) and the way later versions do (one end of a socketpair, fd=N).

The same lifecycle runs on qemu-system-x86_64 7.2 when installed, and
the replies, events, qtest answers and images are compared.  Debian's
build has no qtest accelerator, so QEMU gets '-accel tcg' where the
library appends '-accel qtest' (it serves -qtest all the same, but has
no virtual clock to step).  Skips (77) without qemu-img.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (binary, check_ended, qemu_binary, run,  # noqa: E402
                  need_qemu_utils)
from images import check_images, img, qemu_io, with_dir  # noqa: E402

TIMEOUT = 60


class Machine:
    """One QEMUQtestMachine-style VM (see the module's comment)."""

    def __init__(self, bin_path, sock_dir, name, monitor="path", args=(),
                 qtest=True, accel="qtest", console_index=None):
        self.bin = bin_path
        self.name = name
        self.monitor = monitor
        self.args = list(args)
        self.qtest_on = qtest
        self.accel = accel
        self.mon_path = os.path.join(sock_dir, name + "-monitor.sock")
        self.qtest_path = os.path.join(sock_dir, name + "-qtest.sock")
        self.log_path = os.path.join(sock_dir, name + ".log")
        # set_console(console_index=N): N null ports, then the console
        self.console_index = console_index
        self.console_path = os.path.join(sock_dir, name + "-console.sock")
        self.exec_id = 0
        self.events = []
        self.qmp = None
        self.qtest_sock = None

    def base_args(self, mon_fd=None, tcp_port=None):
        args = ["-display", "none", "-vga", "none"]
        if self.monitor == "none":
            moncdev = None
        elif self.monitor == "fd":
            moncdev = "socket,id=mon,fd=%d" % mon_fd
        elif self.monitor == "tcp":
            moncdev = "socket,id=mon,host=127.0.0.1,port=%d" % tcp_port
        else:
            moncdev = "socket,id=mon,path=%s" % self.mon_path
        if moncdev:
            args += ["-chardev", moncdev, "-mon",
                     "chardev=mon,mode=control"]
        if self.console_index is not None:
            args += ["-serial", "null"] * self.console_index
            args += ["-chardev", "socket,id=console,path=%s,server=on,"
                     "wait=off" % self.console_path,
                     "-serial", "chardev:console"]
        if self.qtest_on:
            args += ["-qtest", "unix:path=%s" % self.qtest_path,
                     "-accel", self.accel]
        return args

    def launch(self):
        listener = qt_listener = None
        mon_fd = tcp_port = None
        pair = None
        if self.monitor == "fd":
            pair = socket.socketpair()
            mon_fd = pair[0].fileno()
            os.set_inheritable(mon_fd, True)
        elif self.monitor == "none":
            pass
        elif self.monitor == "tcp":
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tcp_port = listener.getsockname()[1]
        else:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.mon_path)
            listener.listen(1)
        if self.qtest_on:
            qt_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            qt_listener.bind(self.qtest_path)
            qt_listener.listen(1)
        self.argv = [self.bin] + self.base_args(mon_fd, tcp_port) + self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     close_fds=False)
        if pair:
            pair[0].close()
            self.qmp = pair[1]
        elif not listener:
            self.connect_qtest(qt_listener)
            return
        else:
            listener.settimeout(TIMEOUT)
            self.qmp, _ = listener.accept()
            listener.close()
        self.qmp.settimeout(TIMEOUT)
        self.qmp_file = self.qmp.makefile("rb")
        self.greeting = self.recv()
        while "event" in self.greeting:
            self.events.append(self.greeting)
            self.greeting = self.recv()
        enable = ["oob"] if "oob" in self.greeting["QMP"]["capabilities"] \
            else []
        self.send({"execute": "qmp_capabilities",
                   "arguments": {"enable": enable} if enable else {}})
        assert self.reply() == {"return": {}}
        self.connect_qtest(qt_listener)

    def connect_qtest(self, qt_listener):
        if qt_listener:
            qt_listener.settimeout(TIMEOUT)
            self.qtest_sock, _ = qt_listener.accept()
            qt_listener.close()
            self.qtest_sock.settimeout(TIMEOUT)
            self.qtest_file = self.qtest_sock.makefile("rb")

    def send(self, msg):
        self.qmp.sendall(json.dumps(msg).encode())

    def recv(self):
        line = self.qmp_file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def reply(self):
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def cmd(self, name, **args):
        """QEMUMachine.qmp(): the whole reply, id assigned as qemu.qmp
        does; keys with '_' become '-'."""
        self.exec_id += 1
        msg = {"execute": name, "id": "__qmp#%05d" % self.exec_id}
        if args:
            msg["arguments"] = {k.replace("_", "-"): v
                                for k, v in args.items()}
        self.send(msg)
        r = self.reply()
        assert r.get("id") == msg["id"], (msg, r)
        del r["id"]
        return r

    def event_wait(self, name, match=None):
        while True:
            for e in self.events:
                if e["event"] == name and all(e["data"].get(k) == v for k, v
                                              in (match or {}).items()):
                    self.events.remove(e)
                    return e
            self.events.append(self.recv())

    def qtest(self, line):
        self.qtest_sock.sendall(line.encode() + b"\n")
        return self.qtest_file.readline().decode()

    def close_sockets(self):
        for s in (self.qmp, self.qtest_sock):
            if s:
                s.close()
        self.qmp = self.qtest_sock = None

    def shutdown(self):
        """_soft_shutdown(): 'quit' over QMP (the reply may race EOF),
        close, wait; the exit status."""
        self.exec_id += 1
        self.send({"execute": "quit", "id": "__qmp#%05d" % self.exec_id})
        tail = []
        while True:
            line = self.qmp_file.readline()
            if not line:
                break
            tail.append(json.loads(line))
        return [strip(m) for m in tail], self.end(None)

    def end(self, sig):
        """Close our sockets, send @sig (unless None), wait: the exit
        status.  SIGTERM is _soft_shutdown() without a QMP connection,
        SIGKILL kill()."""
        self.close_sockets()
        if sig:
            self.proc.send_signal(sig)
        status = self.proc.wait(TIMEOUT)
        self.log.close()
        return status

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def strip(m):
    """A message without what differs run to run."""
    m = dict(m)
    m.pop("timestamp", None)
    m.pop("id", None)
    return m


def log_lines(text):
    """The qtest log lines QEMU prints on stderr without -qtest-log, with
    their times taken out."""
    return [re.sub(r"^\[([IRS]) \+?[0-9.]+\]", r"[\1]", ln)
            for ln in text.splitlines() if re.match(r"^\[[IRS] ", ln)]


def without_drain_pause(events):
    """@events without a JOB_STATUS_CHANGE paused followed by running."""
    out = []
    for e in events:
        if out and e["data"].get("status") == "running" and \
                out[-1]["data"].get("status") == "paused":
            out.pop()
            continue
        out.append(e)
    return out


def make_chain(d):
    base = os.path.join(d, "base.qcow2")
    top = os.path.join(d, "top.qcow2")
    img("create", "-q", "-f", "qcow2", base, "16M")
    qemu_io(base, "write -P 0x11 0 4M")
    img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
        top)
    qemu_io(top, "write -P 0x22 2M 4M")
    return base, top


def iotests_args(top):
    """What an iotest adds: QEMU_OPTIONS' -nodefaults, an iothread, a
    throttle group (as the throttling iotests add one) and VM.add_drive()'s
    drive with its virtio-blk device."""
    return ["-nodefaults", "-object", "iothread,id=iothread0",
            "-object", "throttle-group,id=tg0,x-bps-total=1073741824",
            "-drive", "if=none,id=drive0,file=%s,format=qcow2,"
            "cache=writeback,aio=threads" % top,
            "-device", "virtio-blk-pci,drive=drive0,id=virtio0,"
            "iothread=iothread0"]


# at 64 MiB: QEMU's firmware, running under tcg, leaves that RAM alone;
# beyond the 128 MiB of RAM writes are dropped
QTEST_LINES = ["writel 0x4000000 0x12345678", "readl 0x4000000",
               "readb 0x4000001", "readw 0x4000002", "readq 0x4000000",
               "read 0x4000000 0x6", "write 0x4002000 0x3 0xaabbcc",
               "b64read 0x4002000 0x3", "b64write 0x4003000 0x4 qrs=",
               "read 0x4003000 0x4", "memset 0x4004000 0x3 0x15a",
               "readl 0x4004000", "write 0x4005000 2 0x12",
               "read 0x4005000 2", "write 0x4005000 2 0x",
               "writeq 0x9000000 0x1122334455667788", "readq 0x9000000",
               "writew 0x7ffffff 0xbeef", "readw 0x7ffffff",
               "endianness", "bogus 1"]


def lifecycle(bin_path, d, monitor, accel):
    """The whole run; what was seen, for comparison."""
    side = os.path.join(d, os.path.basename(bin_path))
    os.mkdir(side)
    base, top = make_chain(side)
    m = Machine(bin_path, side, "qemu-%d-%x" % (os.getpid(), id(side)),
                monitor, iotests_args(top), accel=accel)
    seen = {}
    m.launch()
    try:
        seen["status"] = m.cmd("query-status")
        seen["iothreads"] = [t["id"] for t in
                             m.cmd("query-iothreads")["return"]]
        seen["throttle"] = m.cmd("qom-get", path="/objects/tg0",
                                 property="limits")
        seen["block"] = [(b["device"], b["qdev"],
                          os.path.basename(b["inserted"]["file"]))
                         for b in m.cmd("query-block")["return"]]
        seen["qtest"] = [(ln, m.qtest(ln)) for ln in QTEST_LINES]
        seen["stream"] = m.cmd("block-stream", job_id="job0",
                               device="drive0")
        last = m.event_wait("JOB_STATUS_CHANGE", {"status": "null"})
        # the job's events (QEMU 7.2 may send an early RESUME as it starts)
        seen["events"] = [strip(e) for e in m.events + [last]
                          if e["event"].startswith(("JOB_", "BLOCK_JOB_"))]
        m.events.clear()
        seen["hmp"] = m.cmd("human-monitor-command",
                            command_line="qemu-io drive0 \"read -P 0x22 "
                            "2M 4M\"")
        seen["tail"], status = m.shutdown()
    except BaseException:
        m.end(signal.SIGKILL)
        sys.stderr.write(m.output())
        raise
    out = m.output()
    check_ended(" ".join(m.argv), status, 0,
                out if bin_path == binary() else "")
    seen["log"] = log_lines(out)
    seen["io"] = [ln for ln in out.splitlines() if ln.startswith("read ")]
    check_images([base, top])
    qemu_io(top, "read -P 0x11 0 2M", "read -P 0x22 2M 4M")
    seen["chain"] = json.loads(img("info", "--output=json", top)) \
        .get("backing-filename")
    return seen, m


def compare_lifecycle(d, monitor):
    """The lifecycle with @monitor on qmpd, checked, then on QEMU when
    installed, compared."""
    mine, _ = lifecycle(binary(), d, monitor, "qtest")
    assert mine["status"]["return"]["status"] == "running", mine
    assert mine["iothreads"] == ["iothread0"], mine
    assert mine["throttle"]["return"]["bps-total"] == 1 << 30, mine
    assert mine["block"] == [("drive0",
                              "/machine/peripheral/virtio0/virtio-backend",
                              "top.qcow2")], mine
    assert mine["stream"] == {"return": {}}, mine
    # qemu-io prints on stdout, not in the reply: QEMU's way too
    assert mine["hmp"] == {"return": ""}, mine
    assert mine["io"] == ["read 4194304/4194304 bytes at offset 2097152"], \
        mine
    assert mine["chain"] is None, mine
    assert mine["tail"] == [
        {"event": "SHUTDOWN", "data": {"guest": False,
                                       "reason": "host-qmp-quit"}},
        {"return": {}}], mine["tail"]
    assert [e["data"].get("status") for e in mine["events"]
            if e["event"] == "JOB_STATUS_CHANGE"] == [
        "created", "running", "waiting", "pending", "concluded",
        "null"], mine
    assert ("readl 0x4000000", "OK 0x0000000012345678\n") in mine["qtest"]
    assert mine["log"][0] == "[I] OPENED" and \
        mine["log"][-1] == "[I] CLOSED", mine["log"]
    q = qemu_binary()
    if not q:
        return
    theirs, _ = lifecycle(q, d, monitor, "tcg")
    # QEMU drains the iothread's context as the job starts, which pauses
    # and resumes it once: an artifact of its threads, not of the job
    theirs["events"] = without_drain_pause(theirs["events"])
    # the last byte of RAM is SeaBIOS's, which runs under QEMU's tcg
    # and now and then wrote it after the harness did (QEMU read 0x0000
    # back once): qmpd's word across the end of RAM is checked alone
    straddle = ("readw 0x7ffffff", "OK 0x00000000000000ef\n")
    assert straddle in mine["qtest"], mine["qtest"]
    for seen in (mine, theirs):
        seen["qtest"] = [x for x in seen["qtest"] if x[0] != straddle[0]]
    for k in ("status", "iothreads", "throttle", "block", "stream",
              "events", "hmp", "io", "chain", "tail", "qtest", "log"):
        assert mine[k] == theirs[k], (k, mine[k], theirs[k])


@with_dir("qmpd-machine-")
def test_lifecycle_unix_path(d):
    """QEMU 7.2's library: the harness listens on NAME-monitor.sock and
    qmpd connects (-chardev socket,id=mon,path=...)."""
    compare_lifecycle(d, "path")


@with_dir("qmpd-machine-")
def test_lifecycle_socketpair(d):
    """Later versions of the library: one end of a socketpair, inherited
    (-chardev socket,id=mon,fd=N)."""
    compare_lifecycle(d, "fd")


@with_dir("qmpd-machine-")
def test_lifecycle_tcp(d):
    """monitor_address=(host, port): the harness listens on TCP."""
    compare_lifecycle(d, "tcp")


def end_without_qmp(bin_path, d, how):
    """set_qmp_monitor(False), then shutdown() (SIGTERM) or kill():
    (exit status, output with the program's name taken out)."""
    side = os.path.join(d, os.path.basename(bin_path) + "-" + how)
    os.mkdir(side)
    base, top = make_chain(side)
    m = Machine(bin_path, side, "vm", "none", iotests_args(top),
                accel="qtest" if bin_path == binary() else "tcg")
    m.launch()
    assert m.qtest("writeb 0x4000000 0x1") == "OK\n"
    status = m.end(signal.SIGTERM if how == "term" else signal.SIGKILL)
    out = m.output().replace(bin_path + ":", "PROG:").replace(
        os.path.basename(bin_path) + ":", "PROG:")
    out = re.sub(r"from pid [0-9]+", "from pid N", out)
    check_images([base, top])
    return status, [ln for ln in out.splitlines() if not ln.startswith("[")]


@with_dir("qmpd-machine-")
def test_sigterm_and_sigkill(d):
    """Without a QMP monitor the library ends the VM with SIGTERM (exit
    0; QEMU prints no 'terminating on signal' line when a qtest harness
    drives it) and kill() with SIGKILL."""
    mine = end_without_qmp(binary(), d, "term")
    assert mine == (0, []), mine
    assert end_without_qmp(binary(), d, "kill")[0] == -signal.SIGKILL
    q = qemu_binary()
    if q:
        theirs = end_without_qmp(q, d, "term")
        assert mine == theirs, (mine, theirs)
        assert end_without_qmp(q, d, "kill")[0] == -signal.SIGKILL


@with_dir("qmpd-machine-")
def test_console(d):
    """set_console(console_index=1): '-serial null', then the console's
    listening socket as '-serial chardev:console'.  The harness connects
    to it (nothing comes: no guest code runs, and QEMU's firmware writes
    nothing there either); the board's two isa-serial devices come before
    its IDE disk and its empty IDE CD-ROM, as their QOM paths show."""
    seen = {}
    for bin_path, accel in ((binary(), "qtest"), (qemu_binary(), "tcg")):
        if not bin_path:
            continue
        side = os.path.join(d, os.path.basename(bin_path))
        os.mkdir(side)
        img("create", "-q", "-f", "qcow2", os.path.join(side, "a.qcow2"),
            "16M")
        m = Machine(bin_path, side, "vm", "path",
                    ["-nodefaults", "-drive", "if=ide,id=d0,file=%s"
                     % os.path.join(side, "a.qcow2"),
                     "-drive", "if=ide,index=2,media=cdrom,id=cd0"],
                    accel=accel, console_index=1)
        m.launch()
        con = socket.socket(socket.AF_UNIX)
        con.settimeout(TIMEOUT)
        con.connect(m.console_path)
        con.sendall(b"typed at the console\n")
        seen[bin_path] = [(b["qdev"], b["removable"], b.get("tray_open"))
                          for b in m.cmd("query-block")["return"]]
        con.close()
        _, status = m.shutdown()
        assert status == 0, (bin_path, m.output())
        check_images([os.path.join(side, "a.qcow2")])
    assert seen[binary()] == [("/machine/unattached/device[20]", False, None),
                              ("/machine/unattached/device[21]", True,
                               False)], seen
    if qemu_binary():
        assert seen[binary()] == seen[qemu_binary()], seen


@with_dir("qmpd-machine-")
def test_clock_needs_qtest_accel(d):
    """clock_step and clock_set are the qtest accelerator's: under tcg
    they are unknown commands, on qmpd as on QEMU."""
    lines = ["clock_step 100", "clock_set 1000", "clock_step"]
    seen = {}
    for bin_path, accel in ((binary(), "qtest"), (binary(), "tcg"),
                            (qemu_binary(), "tcg")):
        if not bin_path:
            continue
        side = os.path.join(d, "%s-%s" % (os.path.basename(bin_path), accel))
        os.mkdir(side)
        m = Machine(bin_path, side, "vm", "path", ["-nodefaults"],
                    accel=accel)
        m.launch()
        seen[bin_path, accel] = [m.qtest(ln) for ln in lines]
        _, status = m.shutdown()
        assert status == 0, (bin_path, accel, m.output())
    assert seen[binary(), "qtest"] == ["OK 100\n", "OK 1000\n",
                                       "OK 1000\n"], seen
    unknown = ["FAIL Unknown command 'clock_step'\n",
               "FAIL Unknown command 'clock_set'\n",
               "FAIL Unknown command 'clock_step'\n"]
    assert seen[binary(), "tcg"] == unknown, seen
    if qemu_binary():
        assert seen[qemu_binary(), "tcg"] == unknown, seen


if __name__ == "__main__":
    run([test_lifecycle_unix_path, test_lifecycle_socketpair,
         test_lifecycle_tcp, test_sigterm_and_sigkill, test_console,
         test_clock_needs_qtest_accel], needs=[need_qemu_utils])
