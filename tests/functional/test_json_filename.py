#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""QEMU's json:{...} file names, read wherever qmpd reads a file name.

An image whose backing file is a json: name (qemu-img create -b
'json:{...}', or what QEMU writes after a commit over a blkdebug or NBD
node) opens with its chain, and a stream over that chain copies the
base's data.  drive-mirror's and drive-backup's targets may be json:
names of the format node (or of the protocol node, without a format).
-drive file=json:{...} opens the node the name describes:
-drive's format= overrides the name's driver, dotted keys nest, a name
without a driver has its file child's format probed, and bad names get
QEMU's errors.  Each -drive form's graph (driver, file, backing file,
read-only of every node) and error are written down as QEMU 7.2 gives
them, and compared with qemu-system-x86_64's where it is installed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import img, need_tools, qemu_io  # noqa: E402
from qmpd import Qmpd, binary, qemu_binary, run  # noqa: E402

TOP = "top.qcow2"
BASE = "base.qcow2"


def chain(d):
    """base (0x11 in its first 64 KiB) <- top, whose backing file is
    the json: name of base's qcow2 node."""
    base = os.path.join(d, BASE)
    img("create", "-q", "-f", "qcow2", base, "16M")
    qemu_io(base, "write -P 0x11 0 64k")
    name = 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"}}' \
        % base
    img("create", "-q", "-f", "qcow2", "-b", name, "-F", "qcow2",
        os.path.join(d, TOP))
    return name


def graph(prog, drive):
    """Every node -drive @drive opens, as (driver, file, backing file,
    ro) sorted, or the error after the option's name."""
    p = subprocess.run(
        [prog, "-M", "none", "-nodefaults", "-display", "none",
         "-qmp", "stdio", "-drive", drive],
        input='{"execute":"qmp_capabilities"}\n'
              '{"execute":"query-named-block-nodes",'
              '"arguments":{"flat":true}}\n{"execute":"quit"}\n',
        capture_output=True, text=True, timeout=60)
    if p.returncode:
        return p.stderr.splitlines()[0].split(": ", 2)[2]
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if isinstance(r.get("return"), list):
            return sorted((n["drv"], n["file"], n.get("backing_file"),
                           n["ro"]) for n in r["return"])
    raise AssertionError(p.stdout)


def top_node(prog, top):
    """query-named-block-nodes' entry of the top of -drive file=@top."""
    p = subprocess.run(
        [prog, "-M", "none", "-nodefaults", "-display", "none",
         "-qmp", "stdio", "-drive", "file=%s,if=none,id=d0,node-name=top"
         % top],
        input='{"execute":"qmp_capabilities"}\n'
              '{"execute":"query-named-block-nodes",'
              '"arguments":{"flat":true}}\n{"execute":"quit"}\n',
        capture_output=True, text=True, timeout=60)
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if isinstance(r.get("return"), list):
            n = [n for n in r["return"] if n["node-name"] == "top"][0]
            del n["image"]["actual-size"]
            n["image"].get("backing-image", {}).pop("actual-size", None)
            return n
    raise AssertionError(p.stdout + p.stderr)


def forms(d):
    """-drive forms and what QEMU 7.2 opens for them."""
    top = os.path.join(d, TOP)
    base = os.path.join(d, BASE)
    both = [("file", base, None, True), ("file", top, None, False),
            ("qcow2", base, None, True), ("qcow2", top, base, False)]

    def j(text):
        return "file=json:%s,if=none,id=d0" % text.replace(",", ",,")

    fq = '{"driver":"file","filename":"%s"}' % top
    return [
        (j('{"driver":"qcow2","file":%s}' % fq), both),
        (j(fq), [("file", top, None, False)]),
        (j('{"file":%s}' % fq), both),
        (j('{"driver":"qcow2","file.driver":"file","file.filename":"%s"}'
           % top), both),
        (j('{"driver":"raw","file":%s}' % fq).replace(
            ",if=", ",format=qcow2,if="), both),
        (j('{"driver":"qcow2","file":%s}' % fq).replace(
            ",if=", ",format=raw,if="),
         [("file", top, None, False), ("raw", top, None, False)]),
        (j('{"driver":"null-co","size":1048576}'),
         [("null-co", 'json:{"driver": "null-co", "size": 1048576}', None,
           False)]),
        # -drive's own read-only (off) wins over the name's
        (j('{"driver":"file","filename":"%s","read-only":true}' % top),
         [("file", top, None, False)]),
        (j('[1]'), "Invalid JSON object given"),
        (j('{"driver":"qcow2"}'),
         'A block device must be specified for "file"'),
        (j('{"driver":"qcow2","filename":"%s"}' % top),
         'A block device must be specified for "file"'),
        (j(fq).replace(",if=", ",format=qcow2,if="),
         'A block device must be specified for "file"'),
        (j('{"filename":"%s"}' % top), "Must specify either driver or file"),
        (j('{"driver":"nosuch","filename":"%s"}' % top),
         "Unknown driver 'nosuch'"),
        (j('{"driver":"file","filename":"%s/nofile"}' % d),
         "Could not open '%s/nofile': No such file or directory" % d),
    ]


def test_drive_forms():
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-json-")
    try:
        chain(d)
        for drive, want in forms(d):
            got = graph(binary(), drive)
            assert got == want, (drive, got, want)
            if qemu_binary():
                assert graph(qemu_binary(), drive) == want, drive
        # the parser's own words differ (jansson's, not QEMU's)
        got = graph(binary(), "file=json:xx,if=none,id=d0")
        assert got.startswith("Could not parse the JSON options: JSON "
                              "parse error, "), got
    finally:
        shutil.rmtree(d)


def test_backing_chain():
    """An image whose backing file is a json: name: its chain opens,
    the base's data reads through it, and a stream pulls it in."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-json-")
    try:
        name = chain(d)
        top = os.path.join(d, TOP)
        base = os.path.join(d, BASE)
        if qemu_binary():
            assert top_node(qemu_binary(), top) == top_node(binary(), top)
        with Qmpd(["-drive", "file=%s,if=none,id=d0,node-name=top" % top]) \
                as q:
            c = q.connect()
            nodes = {n["node-name"]: n for n in c.cmd(
                "query-named-block-nodes", flat=True)}
            assert nodes["top"]["backing_file"] == base, nodes["top"]
            assert nodes["top"]["image"]["backing-filename"] == name
            assert nodes["top"]["image"]["full-backing-filename"] == name
            c.cmd("human-monitor-command",
                  **{"command-line": "qemu-io d0 \"read -P 0x11 0 64k\""})
            c.cmd("block-stream", device="d0", **{"job-id": "s"})
            ev = c.event("BLOCK_JOB_COMPLETED")
            assert "error" not in ev["data"], ev
            c.cmd("quit")
            q.wait(60)
            # qemu-io prints on stdout, as QEMU's
            out = q.stdout_text()
            assert "read 65536/65536 bytes at offset 0" in out, out
            assert "Pattern verification failed" not in out, out
        img("check", "-q", top)
        assert "backing file" not in img("info", top)
        img("compare", "-q", "-f", "qcow2", "-F", "qcow2", top, base)
    finally:
        shutil.rmtree(d)


def target_cases(t):
    fq = '{"driver":"qcow2","file":{"driver":"file","filename":"%s"}}' % t
    ff = '{"driver":"file","filename":"%s"}' % t
    both = [("file", t), ("qcow2", t)]
    return [
        ("drive-mirror", {"target": "json:" + fq}, both),
        ("drive-mirror", {"target": "json:{\"file\":%s}" % ff}, both),
        ("drive-mirror", {"target": "json:" + ff, "format": "qcow2"},
         'A block device must be specified for "file"'),
        ("drive-backup", {"target": "json:" + fq}, both),
        ("drive-backup", {"target": "json:[1]"}, "Invalid JSON object given"),
        # a protocol node opened alone takes the command's node-name
        ("drive-mirror", {"target": "json:" + ff, "node-name": "tn"},
         [("file", t, "tn")]),
    ]


def targets(prog, d):
    """What each target case opens (driver, file of the nodes on the
    target's file), or its error."""
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    out = []
    for cmd, args, _ in target_cases(t):
        img("create", "-q", "-f", "qcow2", src, "16M")
        # a raw target for the protocol node opened alone (a qcow2 one,
        # read as its few hundred KiB of file, ends the job at once)
        img("create", "-q", "-f", "raw" if "node-name" in args else "qcow2",
            t, "16M")
        with Qmpd(["-M", "none", "-drive",
                   "file=%s,if=none,id=d0" % src],
                  binary_path=prog) as q:
            c = q.connect()
            r = c.execute(cmd, dict(args, device="d0", mode="existing",
                                    sync="full", speed=1))
            if "error" in r:
                out.append(r["error"]["desc"])
            else:
                named = "node-name" in args
                out.append(sorted(
                    (n["drv"], n["file"]) + ((n["node-name"],) if named
                                              else ())
                    for n in c.cmd("query-named-block-nodes", flat=True)
                    if n["file"] == t))
                c.cmd("block-job-cancel", device="d0", force=True)
                c.event("BLOCK_JOB_CANCELLED")
            c.cmd("quit")
    return out


def test_command_targets():
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-json-")
    try:
        want = [w for _, _, w in target_cases(os.path.join(d, "t.qcow2"))]
        assert targets(binary(), d) == want
        if qemu_binary():
            assert targets(qemu_binary(), d) == want
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run([test_drive_forms, test_backing_chain, test_command_targets])
