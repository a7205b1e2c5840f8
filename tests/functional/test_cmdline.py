#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The QEMU-style command line: options, errors, sockets, process control."""

import ctypes
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, QmpClient, binary, check_ended, qemu_binary, run, \
    run_qmpd, sanitizer_env, sanitizer_logs  # noqa: E402


def qmpd_run(*args, status=0, env=None):
    """qmpd to its end, which must be exit @status: (status, out, err)."""
    p = run_qmpd(args, status, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def expect_error(args, text):
    rc, out, err = qmpd_run(*args, status=1)
    assert err.splitlines()[0] == text, (args, err)
    return err


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_option_errors():
    assert expect_error(["-foo"], "qmpd: -foo: invalid option").count("\n") == 1
    expect_error(["--foo"], "qmpd: --foo: invalid option")
    expect_error(["-vnc", ":1"], "qmpd: -vnc: option not supported by qmpd")
    expect_error(["-m"], "qmpd: -m: requires an argument")
    err = expect_error(["-m", "foo"], "qmpd: -m foo: Parameter 'size' expects "
                       "a non-negative number below 2^64")
    assert "Optional suffix k, M, G, T, P or E" in err
    expect_error(["-M", "bogus"], "qmpd: unsupported machine type")
    expect_error(["-M", "none,foo=bar"],
                 "qmpd: Property 'none-machine.foo' not found")
    expect_error(["-accel", "foo"], "qmpd: -accel foo: invalid accelerator foo")
    expect_error(["-chardev", "socket,id=c,path=/tmp/x,bogus=1"],
                 "qmpd: -chardev socket,id=c,path=/tmp/x,bogus=1: "
                 "Invalid parameter 'bogus'")
    expect_error(["-mon", "chardev=nope"],
                 "qmpd: -mon chardev=nope: chardev \"nope\" not found")
    expect_error(["-device", "nosuch"],
                 "qmpd: -device nosuch: 'nosuch' is not a valid device model "
                 "name")
    expect_error(["-qmp", "unix:/nonexistent/dir/s,server=on,wait=off"],
                 "qmpd: -qmp unix:/nonexistent/dir/s,server=on,wait=off: "
                 "Failed to bind socket to /nonexistent/dir/s: No such file "
                 "or directory")
    expect_error(["-qmp", "stdio", "-monitor", "stdio"],
                 "qmpd: -monitor stdio: cannot use stdio by multiple "
                 "character devices")
    expect_error(["-daemonize", "-qmp", "stdio"],
                 "qmpd: -qmp stdio: cannot use stdio with -daemonize")
    expect_error(["-display", "gtk"], "qmpd: -display gtk: display 'gtk' is "
                 "not supported by qmpd (only 'none')")
    expect_error(["disk.img"], "qmpd: disk.img: disk image arguments are not "
                 "supported; use -drive or -blockdev")


def test_property_values():
    # each value QEMU 7.2 refuses is refused with its words; what asks for
    # hardware qmpd lacks is refused by name (checked against 7.2)
    expect_error(["-M", "pc,usb=maybe"],
                 "qmpd: Parameter 'usb' expects 'on' or 'off'")
    expect_error(["-M", "pc,usb=on"], "qmpd: usb=on is not supported by qmpd")
    expect_error(["-M", "none,vmport=off"],
                 "qmpd: Property 'none-machine.vmport' not found")
    expect_error(["-M", "pc,vmport=maybe"],
                 "qmpd: Parameter 'vmport' does not accept value 'maybe'")
    expect_error(["-M", "q35,smm=on"], "qmpd: smm=on is not supported by qmpd")
    expect_error(["-M", "none,dump-guest-core=maybe"],
                 "qmpd: Parameter 'dump-guest-core' expects 'on' or 'off'")
    expect_error(["-accel", "tcg,thread=x"],
                 "qmpd: -accel tcg,thread=x: Invalid 'thread' setting x")
    # KVM is not built into qmpd: QEMU built without it says the same
    expect_error(["-accel", "kvm,thread=single"],
                 "qmpd: -accel kvm,thread=single: invalid accelerator kvm")
    expect_error(["-M", "none,accel=kvm"], "qmpd: invalid accelerator kvm")
    expect_error(["-display", "none,foo=bar"],
                 "qmpd: -display none,foo=bar: Parameter 'foo' is unexpected")
    expect_error(["-display", "none,gl=on"],
                 "qmpd: -display none,gl=on: OpenGL is not supported by the "
                 "display")
    expect_error(["-name", "vm,debug-threads=maybe"],
                 "qmpd: -name vm,debug-threads=maybe: Parameter "
                 "'debug-threads' expects 'on' or 'off'")
    expect_error(["-chardev", "stdio,id=c0,mux=on"],
                 "qmpd: -chardev stdio,id=c0,mux=on: mux is not supported by "
                 "qmpd")
    expect_error(["-chardev", "stdio,id=c0,signal=maybe"],
                 "qmpd: -chardev stdio,id=c0,signal=maybe: Parameter "
                 "'signal' expects 'on' or 'off'")
    expect_error(["-incoming", "foo:bar"],
                 "qmpd: -incoming foo:bar: unknown migration protocol: "
                 "foo:bar")
    # what libvirt passes is taken
    with Qmpd(["-M", "pc,usb=off,vmport=off,smm=off,dump-guest-core=off,"
               "graphics=off,suppress-vmdesc=on", "-accel", "tcg,thread=multi",
               "-display", "none,gl=off,show-cursor=on"]) as q:
        q.connect().cmd("query-name")


def test_name_process_and_threads():
    # process= is the process name ps shows; debug-threads=on names the
    # I/O helper threads "worker", as QEMU names its thread pool
    d = tempfile.mkdtemp()
    img = os.path.join(d, "d.raw")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    with Qmpd(["-name", "guest=vm0,process=qmpd-vm0-long-name,"
               "debug-threads=on",
               "-drive", "file=%s,format=raw,if=none,id=d0" % img]) as q:
        c = q.connect()
        with open("/proc/%d/comm" % q.proc.pid) as f:
            assert f.read() == "qmpd-vm0-long-n\n"
        c.cmd("human-monitor-command",
              **{"command-line": 'qemu-io d0 "write -P 1 0 4k"'})
        comms = set()
        for t in os.listdir("/proc/%d/task" % q.proc.pid):
            with open("/proc/%d/task/%s/comm" % (q.proc.pid, t)) as f:
                comms.add(f.read().strip())
        assert "worker" in comms, comms
    shutil.rmtree(d, ignore_errors=True)


def test_informational():
    rc, out, _ = qmpd_run("-version")
    assert rc == 0 and out.startswith("QEMU emulator version 7.2."), out
    assert "qmpd" in out.splitlines()[0]
    rc, out, _ = qmpd_run("-h")
    assert rc == 0 and "-qmp" in out and "-chardev" in out
    rc, out, _ = qmpd_run("-machine", "help")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "Supported machines are:", out
    assert ("pc                   Standard PC (i440FX + PIIX, 1996) "
            "(alias of pc-i440fx-7.2)") in lines
    assert ("pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) "
            "(default)") in lines
    assert "none                 empty machine" in lines
    rc, out2, _ = qmpd_run("-M", "?")
    assert out2 == out
    rc, out, _ = qmpd_run("-device", "help")
    assert out.splitlines() == [
        "USB devices:",
        'name "piix3-usb-uhci", bus PCI',
        "",
        "Storage devices:",
        'name "ide-cd", bus IDE, desc "virtual IDE CD-ROM"',
        'name "ide-hd", bus IDE, desc "virtual IDE disk"',
        'name "scsi-cd", bus SCSI, desc "virtual SCSI CD-ROM"',
        'name "scsi-hd", bus SCSI, desc "virtual SCSI disk"',
        'name "virtio-blk-pci", bus PCI, alias "virtio-blk"',
        'name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"'], out
    rc, out, _ = qmpd_run("-drive", "format=help")
    assert rc == 0 and out.startswith("Supported formats: "), out
    rc, out, _ = qmpd_run("-accel", "help")
    assert out.splitlines() == ["Accelerators supported in QEMU binary:",
                                "tcg", "qtest"], out


def test_unix_socket_mode():
    with Qmpd() as q:
        mode = stat.S_IMODE(os.stat(q.qmp_path).st_mode)
        assert mode == 0o600, oct(mode)
        q.connect().cmd("query-name")


def test_tcp():
    port = free_tcp_port()
    with Qmpd(["-qmp", "tcp:127.0.0.1:%d,server=on,wait=off" % port],
              qmp=False) as q:
        deadline = time.time() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.02)
        c = QmpClient(sock=s)
        q.clients.append(c)
        assert c.cmd("query-status")["running"] is True
        # bound to the address given only
        hexport = "%04X" % port
        with open("/proc/net/tcp") as f:
            local = [ln.split()[1] for ln in f.readlines()[1:]
                     if ln.split()[3] == "0A"]
        assert "0100007F:" + hexport in local, local
        assert "00000000:" + hexport not in local


def test_old_spelling_and_chardev_mon():
    with Qmpd(qmp=False, wait=False) as probe:
        a = os.path.join(probe.dir, "a.sock")
        b = os.path.join(probe.dir, "b.sock")
        with Qmpd(["-qmp", "unix:%s,server,nowait" % a,
                   "-chardev", "socket,id=m1,path=%s,server=on,wait=off" % b,
                   "-mon", "chardev=m1,mode=control"], qmp=False) as q:
            q.wait_for_path(a)
            q.wait_for_path(b)
            for p in (a, b):
                c = QmpClient(p)
                q.clients.append(c)
                c.cmd("query-name")


def test_inherited_fds():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "l.sock")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(4)
    mine, theirs = socket.socketpair()
    fds = (lsock.fileno(), theirs.fileno())
    p = subprocess.Popen([binary(), "-nodefaults", "-display", "none",
                          "-chardev", "socket,id=l,fd=%d,server=on,wait=off"
                          % fds[0], "-mon", "chardev=l,mode=control",
                          "-chardev", "socket,id=c,fd=%d" % fds[1],
                          "-mon", "chardev=c,mode=control"],
                         pass_fds=fds, stdin=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        theirs.close()
        lsock.close()
        c1 = QmpClient(sock=mine)
        assert c1.cmd("query-name") == {}
        c2 = QmpClient(path)
        c2.cmd("stop")
        c1.event("STOP")
        c2.event("STOP")
        c2.cmd("quit")
        _, err = p.communicate(timeout=30)
        check_ended("qmpd", p.returncode, 0, err.decode(errors="replace"))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.unlink(path)
        os.rmdir(d)


def test_wait_on():
    with Qmpd(qmp=False, wait=False) as probe:
        path = os.path.join(probe.dir, "w.sock")
        with Qmpd(["-qmp", "unix:%s,server=on" % path], qmp=False) as q:
            q.wait_for_path(path)
            deadline = time.time() + 30
            while "waiting for connection" not in q.stderr_text():
                assert time.time() < deadline
                time.sleep(0.02)
            assert ("qmpd: -qmp unix:%s,server=on: info: QEMU waiting for "
                    "connection on: disconnected:unix:%s,server=on"
                    % (path, path)) in q.stderr_text()
            c = QmpClient(path)
            q.clients.append(c)
            assert c.cmd("query-status")["running"] is True


def test_client_mode():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "c.sock")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(1)
    lsock.settimeout(30)
    with Qmpd(["-chardev", "socket,id=c,path=%s" % path,
               "-mon", "chardev=c,mode=control"], qmp=False) as q:
        s, _ = lsock.accept()
        c = QmpClient(sock=s)
        q.clients.append(c)
        assert c.cmd("query-name") == {}
    lsock.close()
    os.unlink(path)
    os.rmdir(d)
    expect_error(["-chardev", "socket,id=c,path=/nonexistent/x",
                  "-mon", "chardev=c"],
                 "qmpd: -chardev socket,id=c,path=/nonexistent/x: Failed to "
                 "connect to "
                 "'/nonexistent/x': No such file or directory")


def both():
    """qmpd, and the reference QEMU when installed: (name, binary_path)."""
    return [("qmpd", None)] + ([("qemu", qemu_binary())] if qemu_binary()
                               else [])


def connect_retry(family, addr, proc, timeout=30):
    """A QMP client on @addr once the process listens there."""
    deadline = time.time() + timeout
    while True:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect(addr)
            return QmpClient(sock=s)
        except (ConnectionRefusedError, FileNotFoundError):
            s.close()
            assert proc.poll() is None and time.time() < deadline, addr
            time.sleep(0.02)


def test_abstract_sockets():
    """abstract=on listens in Linux's abstract namespace (no file); the
    address is the name alone, or with tight=off all of sun_path."""
    d = tempfile.mkdtemp()
    for name, prog in both():
        tag = "qmpd-test-%d-%s" % (os.getpid(), name)
        args = ["-M", "none",
                "-chardev", "socket,id=a,path=%s-a,server=on,wait=off,"
                "abstract=on" % tag, "-mon", "chardev=a,mode=control",
                "-qmp", "unix:%s-b,server=on,wait=off,abstract=on" % tag,
                "-chardev", "socket,id=c,path=%s-c,server=on,wait=off,"
                "abstract=on,tight=off" % tag, "-mon", "chardev=c,mode=control"]
        old = os.getcwd()
        os.chdir(d)
        try:
            q = Qmpd(args, qmp=False, binary_path=prog)
        finally:
            os.chdir(old)
        with q:
            for addr in ("\0%s-a" % tag, "\0%s-b" % tag,
                         ("\0%s-c" % tag).encode().ljust(108, b"\0")):
                c = connect_retry(socket.AF_UNIX, addr, q.proc)
                q.clients.append(c)
                assert c.cmd("query-status")["status"] == "running", name
            # tight=off: the short address is another one
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect("\0%s-c" % tag)
                raise AssertionError("%s: tight=off took a tight address"
                                     % name)
            except ConnectionRefusedError:
                pass
            s.close()
            assert os.listdir(d) == [], (name, os.listdir(d))
    os.rmdir(d)


def test_reconnect():
    """A client with reconnect=1 starts without its peer (QEMU's line,
    once), connects when it comes, and again after it goes: each time a
    new QMP session; reconnect with server=on is refused."""
    d = tempfile.mkdtemp()
    path = os.path.join(d, "peer.sock")
    for name, prog in both():
        with Qmpd(["-M", "none", "-chardev",
                   "socket,id=c,path=%s,reconnect=1" % path,
                   "-mon", "chardev=c,mode=control"], qmp=False,
                  binary_path=prog) as q:
            deadline = time.time() + 30
            while "Unable to connect" not in q.stderr_text():
                assert time.time() < deadline and q.proc.poll() is None, \
                    (name, q.stderr_text())
                time.sleep(0.02)
            lsock = socket.socket(socket.AF_UNIX)
            lsock.bind(path)
            lsock.listen(1)
            lsock.settimeout(30)
            for _ in range(2):
                s, _ = lsock.accept()
                c = QmpClient(sock=s)
                assert c.cmd("query-status")["status"] == "running"
                c.close()
            s, _ = lsock.accept()
            c = QmpClient(sock=s)
            q.clients.append(c)
            c.cmd("quit")
            assert q.wait() == 0, name
            lsock.close()
            os.unlink(path)
            lines = [ln.split(": ", 1)[1] for ln in
                     q.stderr_text().splitlines() if "Unable to" in ln]
            # the outage before the first connection, reported once
            assert lines == ["Unable to connect character device c: Failed "
                             "to connect to '%s': No such file or directory"
                             % path], (name, q.stderr_text())
    os.rmdir(d)
    expect_error(["-chardev", "socket,id=c,path=/tmp/x,server=on,wait=off,"
                  "reconnect=1", "-mon", "chardev=c"],
                 "qmpd: -chardev socket,id=c,path=/tmp/x,server=on,wait=off,"
                 "reconnect=1: 'reconnect' option is incompatible with socket "
                 "in server listen mode")


def test_port_range():
    """to=N: a TCP server takes the first free port from port= to N."""
    for name, prog in both():
        while True:
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            port = busy.getsockname()[1]
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                busy.close()
            finally:
                probe.close()
        busy.listen(1)
        with Qmpd(["-M", "none", "-chardev",
                   "socket,id=t,host=127.0.0.1,port=%d,to=%d,server=on,"
                   "wait=off" % (port, port + 3), "-mon",
                   "chardev=t,mode=control"], qmp=False,
                  binary_path=prog) as q:
            c = connect_retry(socket.AF_INET, ("127.0.0.1", port + 1),
                              q.proc)
            q.clients.append(c)
            assert c.cmd("query-status")["status"] == "running", name
        busy.close()


def test_pidfile():
    with Qmpd(qmp=False, wait=False) as probe:
        pidfile = os.path.join(probe.dir, "qmpd.pid")
        with Qmpd(["-pidfile", pidfile]) as q:
            q.connect().cmd("query-name")
            with open(pidfile) as f:
                assert int(f.read()) == q.proc.pid
            rc, _, err = qmpd_run("-nodefaults", "-pidfile", pidfile,
                                  status=1)
            assert err.startswith("qmpd: cannot create PID file: Cannot lock "
                                  "pid file: Resource temporarily "
                                  "unavailable"), err
            q.clients[0].cmd("quit")
            assert q.wait() == 0
        assert not os.path.exists(pidfile)


def adopt_orphans():
    """Make this process the subreaper of its descendants
    (PR_SET_CHILD_SUBREAPER), so that a daemon whose parent exits becomes
    our child and its exit status can be waited for."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())


def test_daemonize():
    adopt_orphans()
    with Qmpd(qmp=False, wait=False) as probe:
        sock = os.path.join(probe.dir, "d.sock")
        pidfile = os.path.join(probe.dir, "d.pid")
        # the daemon's stderr is /dev/null: its sanitizer reports go to
        # files in probe.dir
        qmpd_run("-daemonize", "-nodefaults", "-pidfile", pidfile, "-qmp",
                 "unix:%s,server=on,wait=off" % sock,
                 env=sanitizer_env(probe.dir))
        assert os.path.exists(sock)
        with open(pidfile) as f:
            pid = int(f.read())
        try:
            c = QmpClient(sock)
            assert c.cmd("query-status")["running"]
            c.cmd("quit")
            deadline = time.time() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                assert time.time() < deadline, "the daemon did not exit"
                time.sleep(0.02)
            pid = None
            check_ended("qmpd -daemonize", os.waitstatus_to_exitcode(status),
                        0, sanitizer_logs(probe.dir))
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)


def test_qtest():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "qtest.sock")
    log = os.path.join(d, "qtest.log")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(1)
    lsock.settimeout(30)
    with Qmpd(["-M", "pc", "-vga", "none", "-accel", "qtest", "-qtest",
               "unix:%s" % path, "-qtest-log", log]) as q:
        s, _ = lsock.accept()
        f = s.makefile("rwb")

        def ask(line):
            f.write(line.encode() + b"\n")
            f.flush()
            return f.readline().decode()

        assert ask("clock_step 100") == "OK 100\n"
        assert ask("clock_step 50") == "OK 150\n"
        assert ask("clock_set 1000") == "OK 1000\n"
        assert ask("clock_set 10") == "OK 1000\n"
        assert ask("clock_step") == "OK 1000\n"
        assert ask("endianness") == "OK little\n"
        assert ask("writeb 0x10 0xab") == "OK\n"
        assert ask("readb 0x10") == "OK 0x00000000000000ab\n"
        assert ask("inb 0x60") == "FAIL Unknown command 'inb'\n"
        q.connect().cmd("query-name")
        with open(log) as lf:
            text = lf.read()
        assert text.startswith("[I 0.000000] OPENED\n"), text
        assert "clock_step 100\n" in text and "] OK 100\n" in text, text
        s.close()
    lsock.close()
    for p in (path, log):
        os.unlink(p)
    os.rmdir(d)


def test_keyval_socket_addresses():
    # the forms Python's qemu.machine and other QEMU tools pass: after
    # "unix:" a keyval list with "path" implied
    d = tempfile.mkdtemp()
    qt = os.path.join(d, "qtest.sock")
    qmp = os.path.join(d, "qmp.sock")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(qt)
    lsock.listen(1)
    lsock.settimeout(30)
    with Qmpd(["-display", "none", "-vga", "none", "-accel", "qtest",
               "-qtest", "unix:path=%s" % qt,
               "-qmp", "unix:path=%s,server=on,wait=off" % qmp],
              qmp=False) as q:
        s, _ = lsock.accept()
        f = s.makefile("rwb")
        f.write(b"endianness\n")
        f.flush()
        assert f.readline() == b"OK little\n"
        q.wait_for_path(qmp)
        c = q.connect(path=qmp)
        assert c.cmd("query-status")["status"] == "running"
        s.close()
    lsock.close()
    shutil.rmtree(d, ignore_errors=True)
    # QEMU 7.2 takes no keyval after "tcp:", only HOST:PORT
    p = run_qmpd(["-nodefaults", "-qmp",
                  "tcp:host=127.0.0.1,port=4444,server=on,wait=off"],
                 status=1, text=True)
    assert p.stderr.endswith(": -qmp tcp:host=127.0.0.1,port=4444,server=on,"
                             "wait=off: parse error: tcp:host=127.0.0.1,"
                             "port=4444,server=on,wait=off\n"), p.stderr


def test_qemu_style_line():
    # the command line a management tool builds for QEMU
    with Qmpd(["-M", "pc", "-m", "64", "-vga", "none", "-no-user-config",
               "-name", "guest=vm0,debug-threads=on",
               "-machine", "pc-i440fx-7.2,accel=tcg,usb=off,"
               "dump-guest-core=off"]) as q:
        c = q.connect()
        assert c.cmd("query-memory-size-summary")["base-memory"] == 64 << 20
        assert c.cmd("query-name") == {"name": "vm0"}


def test_nographic_hmp_default():
    p = run_qmpd(["-nographic"], input=b"info status\nquit\n")
    assert b"VM status: running\r\n" in p.stdout, p.stdout


def test_uuid():
    expect_error(["-uuid", "17c81d14-eb95-4249-87f1-64873ab3221"],
                 "qmpd: -uuid 17c81d14-eb95-4249-87f1-64873ab3221: failed to "
                 "parse UUID string: wrong format")
    with Qmpd(["-M", "none"]) as q:
        assert q.connect().cmd("query-uuid") == {
            "UUID": "00000000-0000-0000-0000-000000000000"}
    # printed back in lower case, as QEMU's
    with Qmpd(["-uuid", "17C81D14-EB95-4249-87F1-64873AB32216"]) as q:
        assert q.connect().cmd("query-uuid") == {
            "UUID": "17c81d14-eb95-4249-87f1-64873ab32216"}


if __name__ == "__main__":
    run([test_uuid, test_option_errors, test_property_values,
         test_name_process_and_threads, test_informational, test_unix_socket_mode,
         test_tcp, test_old_spelling_and_chardev_mon, test_inherited_fds,
         test_wait_on, test_client_mode, test_pidfile, test_daemonize,
         test_qtest, test_keyval_socket_addresses, test_qemu_style_line,
         test_nographic_hmp_default, test_abstract_sockets, test_reconnect,
         test_port_range])
