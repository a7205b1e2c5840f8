#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""blockdev-create of a file: the nocow and extent-size-hint hints.

Each file is made by qmpd and, when installed, by QEMU 7.2 with the same
options; the flags the filesystem kept (FS_IOC_GETFLAGS, FS_IOC_FSGETXATTR)
must be the same for both.  Besides the test's own directory, where a
filesystem may refuse both hints, the files are also made on a loop-mounted
XFS (extent size hints) and btrfs (NOCOW) when mkfs.xfs / mkfs.btrfs are
installed and mounting works (root); those parts skip otherwise.
"""

import array
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import NEED_MOUNT, Qmpd, Skip, qemu_binary, run  # noqa: E402

MiB = 1 << 20
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_FSGETXATTR = 0x801c581f
FS_NOCOW_FL = 0x00800000
FS_XFLAG_EXTSIZE = 0x00000800
TOO_LARGE = "Extent size hint is too large"

CASES = [{}, {"nocow": True}, {"extent-size-hint": 0},
         {"extent-size-hint": 64 * 1024},
         {"nocow": True, "extent-size-hint": 2 * MiB}]


def fs_flags(path):
    """(NOCOW set, EXTSIZE set, extent size) as the filesystem keeps them;
    None for what it cannot tell."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            a = array.array("l", [0])
            fcntl.ioctl(fd, FS_IOC_GETFLAGS, a)
            nocow = bool(a[0] & FS_NOCOW_FL)
        except OSError:
            nocow = None
        try:
            b = bytearray(28)
            fcntl.ioctl(fd, FS_IOC_FSGETXATTR, b)
            xflags, extsize = struct.unpack_from("II", b)
            ext = (bool(xflags & FS_XFLAG_EXTSIZE), extsize)
        except OSError:
            ext = (None, None)
    finally:
        os.close(fd)
    return (nocow,) + ext


def create(c, path, opts):
    """blockdev-create a 1 MiB file; the job's error or None."""
    c.cmd("blockdev-create", **{"job-id": "j", "options": dict(
        {"driver": "file", "filename": path, "size": MiB}, **opts)})
    while c.event("JOB_STATUS_CHANGE", timeout=30)["data"]["status"] \
            != "concluded":
        pass
    job, = c.cmd("query-jobs")
    c.cmd("job-dismiss", id="j")
    return job.get("error")


def made_by_both(d, opts, tag):
    """{binary: (error, flags)} for qmpd and QEMU making a file in @d."""
    out = {}
    for b in [None] + ([qemu_binary()] if qemu_binary() else []):
        path = os.path.join(d, "%s-%s.img" % (tag, "qemu" if b else "qmpd"))
        with Qmpd(["-M", "none"], binary_path=b) as q:
            err = create(q.connect(), path, opts)
        flags = fs_flags(path) if os.path.exists(path) else None
        if not err:
            assert os.path.getsize(path) == MiB
        out["qemu" if b else "qmpd"] = (err, flags)
    return out


def check_dir(d):
    """Every case on the filesystem of @d; the flags qmpd left."""
    seen = []
    for i, opts in enumerate(CASES):
        r = made_by_both(d, opts, "c%d" % i)
        assert r["qmpd"][0] is None, r
        if "qemu" in r:
            assert r["qmpd"] == r["qemu"], (opts, r)
        seen.append(r["qmpd"][1])
    for i, hint in enumerate((-1, 1 << 32)):
        r = made_by_both(d, {"extent-size-hint": hint}, "bad%d" % i)
        # refused before the file is made, as QEMU does
        assert r["qmpd"] == (TOO_LARGE, None), r
        if "qemu" in r:
            assert r["qemu"] == (TOO_LARGE, None), r
    return seen


class LoopFs:
    """A small @fstype filesystem mounted on a loop device, or Skip."""

    def __init__(self, fstype):
        mkfs = shutil.which("mkfs." + fstype)
        if not mkfs:
            raise Skip("mkfs.%s not installed" % fstype, "mkfs." + fstype)
        if os.geteuid() != 0:
            raise Skip("mounting needs root", NEED_MOUNT)
        self.dir = tempfile.mkdtemp(prefix="qmpd-fs-")
        self.image = os.path.join(self.dir, "fs.img")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        with open(self.image, "wb") as f:
            f.truncate(512 * MiB)
        self.mounted = False
        try:
            subprocess.run([mkfs, "-q", "-f", self.image], check=True,
                           stdout=subprocess.DEVNULL)
            r = subprocess.run(["mount", "-o", "loop", self.image,
                                self.mnt], stderr=subprocess.PIPE)
            if r.returncode:
                raise Skip("cannot mount a loop %s: %s" %
                           (fstype, r.stderr.decode().strip()), NEED_MOUNT)
            self.mounted = True
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.mounted:
            subprocess.run(["umount", self.mnt])
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_local_dir():
    """Whatever the test directory's filesystem keeps, it keeps the same
    for qmpd's files as for QEMU's."""
    d = tempfile.mkdtemp(prefix="qmpd-create-")
    try:
        check_dir(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_xfs_extent_size_hint():
    """XFS keeps the hint: 1 MiB unless told, none for 0."""
    with LoopFs("xfs") as fs:
        seen = check_dir(fs.mnt)
    exts = [s[1:] for s in seen]
    assert exts == [(True, MiB), (True, MiB), (False, 0),
                    (True, 64 * 1024), (True, 2 * MiB)], exts


def test_btrfs_nocow():
    """btrfs marks the file NOCOW when asked (set while it is empty)."""
    with LoopFs("btrfs") as fs:
        seen = check_dir(fs.mnt)
    assert [s[0] for s in seen] == [False, True, False, False, True], seen


if __name__ == "__main__":
    run([test_local_dir, test_xfs_extent_size_hint, test_btrfs_nocow])
