# SPDX-License-Identifier: GPL-2.0-or-later
"""Two qmpd for a migration test: a destination listening on a unix
socket in a scratch directory and a source, each connected; ended (and
the directory removed) as a context manager."""

import os
import shutil
import tempfile

from qmpd import Qmpd, wait_until


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
