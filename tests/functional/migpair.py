# SPDX-License-Identifier: GPL-2.0-or-later
"""Two qmpd for a migration test: a destination listening on a unix
socket in a scratch directory and a source, each connected; ended (and
the directory removed) as a context manager."""

import os
import shutil
import tempfile

from qmpd import Qmpd


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
