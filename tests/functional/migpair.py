# SPDX-License-Identifier: GPL-2.0-or-later
"""Two qmpd for a migration test: a destination listening on a unix
socket in a scratch directory and a source, each connected; ended (and
the directory removed) as a context manager.  Hosts: two network
namespaces for a migration between hosts."""

import os
import shutil
import subprocess
import tempfile

from qmpd import Qmpd, Skip, wait_until


class MigPair:
    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="qmpd-mig-")
        self.uri = "unix:" + os.path.join(self.dir, "mig.sock")
        self.dst = Qmpd(list(args) + ["-incoming", self.uri])
        self.src = Qmpd(args)
        self.dc = self.dst.connect()
        self.sc = self.src.connect()

    def cancel(self):
        """migrate_cancel: the destination, which used nothing, ends
        with status 1."""
        self.sc.cmd("migrate_cancel")
        assert self.sc.cmd("query-migrate")["status"] == "cancelled"
        assert self.dst.wait(60) == 1
        self.dst.status = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.src.close()
        self.dst.close()
        shutil.rmtree(self.dir)


def migrate_and_compare(sc, dc, uri):
    """Migrate @sc's guest to @dc over @uri, wait for both ends to
    complete and check that @dc's RAM is @sc's; the source's final
    query-migrate."""
    sc.cmd("migrate", uri=uri)
    r = wait_until("migrated", lambda: sc.cmd("query-migrate").get(
        "status") in ("completed", "failed") and sc.cmd("query-migrate"))
    assert r["status"] == "completed", r
    wait_until("destination done", lambda: dc.cmd("query-migrate").get(
        "status") == "completed")
    assert sc.cmd("__com.qmpd_guest-digest")["ram"] == \
        dc.cmd("__com.qmpd_guest-digest")["ram"]
    return r


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Hosts:
    """Two network namespaces joined by a veth pair, 10.213.N.1 and .2."""

    def __init__(self):
        if os.geteuid() != 0:
            raise Skip("network namespaces need root")
        if not shutil.which("ip"):
            raise Skip("no ip(8)")
        tag = os.getpid() % 100000
        self.ns = ["qmpd-a%d" % tag, "qmpd-b%d" % tag]
        self.addr = ["10.213.%d.1" % (tag % 250), "10.213.%d.2" % (tag % 250)]
        veth = ["qma%d" % tag, "qmb%d" % tag]
        self.made = []
        try:
            for ns in self.ns:
                ip("netns", "add", ns)
                self.made.append(ns)
            ip("link", "add", veth[0], "type", "veth", "peer", "name",
               veth[1])
            for ns, dev, a in zip(self.ns, veth, self.addr):
                ip("link", "set", dev, "netns", ns)
                ip("-n", ns, "addr", "add", a + "/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            self.close()
            raise Skip("cannot make network namespaces here: %s" %
                       e.stderr.decode().strip())

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns[i]]

    def close(self):
        # the veth pair goes with its namespaces
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
