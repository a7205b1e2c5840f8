#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Options the README's table says act: -chardev nodelay sets TCP_NODELAY
(strace-counted, beside QEMU 7.2); -mon id is unique as in QEMU (it was
parsed and dropped); -drive copy-on-read=off and distinct -mon ids still
start."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (Qmpd, QmpClient, Skip, binary, qemu_binary,  # noqa: E402
                  run, traced_env)
from test_cmdline import free_tcp_port  # noqa: E402


def nodelay_calls(prog, nodelay):
    """TCP_NODELAY setsockopt calls of @prog serving one QMP client."""
    port = free_tcp_port()
    spec = "socket,id=c,host=127.0.0.1,port=%d,server=on,wait=off" % port
    if nodelay:
        spec += ",nodelay=on"
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "trace")
        args = [prog, "-nodefaults", "-display", "none", "-chardev", spec,
                "-mon", "chardev=c,mode=control"]
        if prog != binary():
            args[1:1] = ["-M", "none"]
        p = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=setsockopt",
                              "-o", trace] + args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=traced_env())
        with p:
            try:
                c = None
                for _ in range(3000):
                    try:
                        c = QmpClient(sock=socket.create_connection(
                            ("127.0.0.1", port), timeout=30))
                        break
                    except ConnectionRefusedError:
                        assert p.poll() is None, p.stderr.read()
                        time.sleep(0.01)     # polling for the listener
                assert c, "no listener on port %d" % port
                c.cmd("query-status")
                c.execute("quit")
                assert p.wait(30) == 0
            except BaseException:
                p.kill()
                raise
        with open(trace) as f:
            return sum("TCP_NODELAY" in line for line in f)


def test_chardev_nodelay():
    if not shutil.which("strace"):
        raise Skip("strace is not installed", "strace")
    # on the listening socket, whose connections inherit it
    assert nodelay_calls(binary(), True) >= 1
    assert nodelay_calls(binary(), False) == 0
    qemu = qemu_binary()
    if qemu:
        assert nodelay_calls(qemu, True) >= 1
        assert nodelay_calls(qemu, False) == 0


def start_error(prog, args):
    p = subprocess.run([prog, "-nodefaults", "-display", "none"] + args,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    return p.returncode, p.stderr.decode()


def test_mon_id():
    dup = ["-chardev", "null,id=c", "-mon", "chardev=c,id=m",
           "-chardev", "null,id=d", "-mon", "chardev=d,id=m"]
    rc, err = start_error(binary(), dup)
    assert rc == 1
    assert err == "qmpd: -mon chardev=d,id=m: Duplicate ID 'm' for mon\n", err
    qemu = qemu_binary()
    if qemu:
        rc, err = start_error(qemu, ["-M", "none"] + dup)
        assert rc == 1
        assert err.endswith(": -mon chardev=d,id=m: Duplicate ID 'm' for "
                            "mon\n"), err
    # distinct ids (and -drive copy-on-read=off) start as before
    p = subprocess.Popen([binary(), "-nodefaults", "-display", "none",
                          "-chardev", "stdio,id=c", "-mon",
                          "chardev=c,id=m,mode=control", "-chardev",
                          "null,id=d", "-mon", "chardev=d,id=n", "-drive",
                          "driver=null-co,if=none,copy-on-read=off"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(b'{"execute": "qmp_capabilities"}\n'
                             b'{"execute": "quit"}\n', timeout=30)
    assert p.returncode == 0, err
    assert out.count(b'"return": {}') == 2, out


def test_pci_bus():
    """A PCI disk's bus= is the machine's PCI bus; others as QEMU refuses."""
    for machine, bus in (("pc", "foo"), ("q35", "pci.0"), ("pc", "pcie.0")):
        args = ["-M", machine, "-drive", "driver=null-co,if=none,id=d",
                "-device", "virtio-blk-pci,drive=d,bus=" + bus]
        want = ": -device virtio-blk-pci,drive=d,bus=%s: Bus '%s' not " \
            "found\n" % (bus, bus)
        rc, err = start_error(binary(), args)
        assert rc == 1 and err == "qmpd" + want, err
        qemu = qemu_binary()
        if qemu:
            rc, err = start_error(qemu, args)
            assert rc == 1 and err.endswith(want), err
    for machine, bus in (("pc", "pci.0"), ("q35", "pcie.0")):
        with Qmpd(["-M", machine, "-drive", "driver=null-co,if=none,id=d",
                   "-device", "virtio-blk-pci,drive=d,id=v,bus=" + bus]) as q:
            c = q.connect()
            assert c.cmd("qom-get", path="v", property="type") \
                == "virtio-blk-pci"


if __name__ == "__main__":
    run([test_chardev_nodelay, test_mon_id, test_pci_bus])
