# SPDX-License-Identifier: GPL-2.0-or-later
"""QEMU's NBD servers as peers for qmpd's nbd driver: qemu-nbd and
qemu-storage-daemon exporting an image on a unix socket or a 127.0.0.1
port, started and stopped by the test (never qmpd's own server)."""

import os
import shutil
import socket
import subprocess
import time

from qmpd import Skip, free_port


def need_nbd_tools():
    for t in ("qemu-nbd", "qemu-storage-daemon"):
        if not shutil.which(t):
            raise Skip("%s is not installed" % t, "qemu-utils")


def _wait_listening(proc, sock=None, port=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "NBD server exited: %s" % proc.returncode
        try:
            s = socket.socket(socket.AF_UNIX if sock else socket.AF_INET)
            s.connect(sock if sock else ("127.0.0.1", port))
            s.close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("NBD server did not listen")


class QemuNbd:
    """qemu-nbd serving @image as export @name (shared by 8 clients)."""

    def __init__(self, image, sock, name="exp", fmt="raw", read_only=False):
        self.args = ["qemu-nbd", "-f", fmt, "-k", sock, "-x", name, "-e",
                     "8", "-t", "--cache=none" if fmt == "qcow2"
                     else "--cache=writeback", image]
        if read_only:
            self.args.insert(1, "-r")
        self.sock = sock
        self.proc = None
        self.start()

    def start(self):
        # a connect to the old socket file between start and listen would
        # reach nothing: the new server makes it afresh
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        # qemu-nbd -e 8 takes the probe connection as one of its clients
        _wait_listening(self.proc, sock=self.sock)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class StorageDaemon:
    """qemu-storage-daemon exporting @image (raw or qcow2) writable as
    @name on 127.0.0.1:@port (or a unix socket @sock)."""

    def __init__(self, image, name="exp", fmt="raw", sock=None):
        self.port = None if sock else free_port()
        addr = ("addr.type=unix,addr.path=%s" % sock if sock else
                "addr.type=inet,addr.host=127.0.0.1,addr.port=%d"
                % self.port)
        node = ("driver=%s,node-name=img,file.driver=file,"
                "file.filename=%s" % (fmt, image))
        self.proc = subprocess.Popen(
            ["qemu-storage-daemon", "--blockdev", node, "--nbd-server", addr,
             "--export", "type=nbd,id=e0,node-name=img,name=%s,writable=on"
             % name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(self.proc, sock=sock, port=self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
