# SPDX-License-Identifier: GPL-2.0-or-later
"""Images made and checked with QEMU's own tools, for the block tests."""

import json
import os
import shutil
import subprocess
import tempfile

from qmpd import need_qemu_utils


def need_tools():
    need_qemu_utils()


def img(*args):
    """qemu-img ARGS, which must succeed; its stdout."""
    p = subprocess.run(["qemu-img"] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def qemu_io_rc(path, cmd, fmt="qcow2"):
    """One qemu-io command: (exit status, everything it printed)."""
    p = subprocess.run(["qemu-io", "-f", fmt, "-c", cmd, path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def qemu_io(path, *cmds, fmt="qcow2"):
    """qemu-io commands that must all succeed (a read -P must match)."""
    args = ["qemu-io", "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    p = subprocess.run(args + [path], capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "fail" not in out.lower(), (cmds, out)
    return out


def check_clean(path, leaks=False):
    """qemu-img check: no corruption, no errors, no leaks unless @leaks
    (after a kill -9 leaked clusters are allowed)."""
    p = subprocess.run(["qemu-img", "check", "--output=json", path],
                       capture_output=True, text=True, timeout=60)
    r = json.loads(p.stdout)
    assert not r.get("corruptions") and not r.get("check-errors") and \
        (leaks or not r.get("leaks")), (path, r)


def check_images(paths, leaks=False):
    for p in paths:
        check_clean(p, leaks)


def same_content(image, raw, fmt="qcow2"):
    """The guest view of @image (with its chain) equals raw file @raw."""
    p = subprocess.run(["qemu-img", "compare", "-f", fmt, "-F", "raw",
                        image, raw], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def chain_of(path):
    """The file names of @path's backing chain, top first."""
    info = json.loads(img("info", "--output=json", "--backing-chain", path))
    return [os.path.basename(i["filename"]) for i in info]


def qcow2_node(node, path, rules=None):
    """blockdev-add options: qcow2 image @path as @node, without its
    backing; with @rules, its file goes through blkdebug with those
    inject-error rules (blkdebug sees file offsets)."""
    f = {"driver": "file", "filename": path}
    if rules is not None:
        f = {"driver": "blkdebug", "inject-error": rules, "image": f}
    return {"driver": "qcow2", "node-name": node, "backing": None,
            "file": f}


def blkdebug_raw_blockdev(node, path):
    """-blockdev JSON: raw image @path as @node, through blkdebug (for
    breakpoints set with HMP qemu-io)."""
    return json.dumps({"driver": "raw", "node-name": node,
                       "file": {"driver": "blkdebug",
                                "image": {"driver": "file",
                                          "filename": path}}})


def with_dir(prefix):
    """Decorator: the test gets a fresh directory (removed afterwards);
    skips when QEMU's image tools are missing."""
    def decorate(fn):
        def wrapper():
            need_tools()
            d = tempfile.mkdtemp(prefix=prefix)
            try:
                fn(d)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        wrapper.__name__ = fn.__name__
        return wrapper
    return decorate
