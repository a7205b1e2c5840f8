#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""drive-mirror and drive-backup say on stdout what target they create.

QEMU 7.2's bdrv_img_create() prints "Formatting 'FILE', fmt=… size=…"
(for qcow2 with its creation options and, for sync=top/none, the
backing file and format) when mode is absolute-paths; with mode
existing it creates nothing and prints nothing; a raw target with a
backing file is refused before the line.  The same commands run on
qmpd and, when qemu-system-x86_64 is installed, on QEMU: stdout must be
the same, line for line.  Every target is checked with qemu-img check
and its backing read back with qemu-img info.
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import qemu_binary, run  # noqa: E402
from images import check_clean, img, need_tools  # noqa: E402
import reference  # noqa: E402

QCOW2 = ("Formatting '%s', fmt=qcow2 cluster_size=65536 extended_l2=off "
         "compression_type=zlib size=%d%s lazy_refcounts=off "
         "refcount_bits=16")
RAW = "Formatting '%s', fmt=raw size=%d"
MiB = 1 << 20


def cases(d):
    """(command, device, sync, format, mode, expected line or error)."""
    t = lambda n: os.path.join(d, "t%d" % n)  # noqa: E731
    back = lambda f: " backing_file=%s backing_fmt=%s" % (  # noqa: E731
        os.path.join(d, f[0]), f[1])
    out = []
    for cmd in ("drive-mirror", "drive-backup"):
        n = len(out)
        out += [
            (cmd, "drive0", "full", "qcow2", "absolute-paths",
             QCOW2 % (t(n), 16 * MiB, "")),
            (cmd, "drive0", "full", "raw", "absolute-paths",
             RAW % (t(n + 1), 16 * MiB)),
            (cmd, "drive0", "top", "qcow2", "absolute-paths",
             QCOW2 % (t(n + 2), 16 * MiB, back(("base.qcow2", "qcow2")))),
            (cmd, "drive0", "none", None, "absolute-paths",
             QCOW2 % (t(n + 3), 16 * MiB, back(("top.qcow2", "qcow2")))),
            (cmd, "drive0", "top", "raw", "absolute-paths",
             "Backing file not supported for file format 'raw'"),
            (cmd, "drive1", "full", None, "absolute-paths",
             RAW % (t(n + 5), 8 * MiB)),
            (cmd, "drive1", "none", "qcow2", "absolute-paths",
             QCOW2 % (t(n + 6), 8 * MiB, back(("r.raw", "raw")))),
            (cmd, "drive0", "full", "qcow2", "existing", None),
        ]
    return out


def scenario(qemu):
    """(stdout lines, errors, targets' (format, backing)) on qmpd or QEMU."""
    d = tempfile.mkdtemp(prefix="qmpd-format-")
    try:
        img("create", "-q", "-f", "qcow2", os.path.join(d, "base.qcow2"),
            "16M")
        img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            os.path.join(d, "top.qcow2"))
        img("create", "-q", "-f", "raw", os.path.join(d, "r.raw"), "8M")
        q, c = reference.start([
            "-drive", "if=none,id=drive0,file=%s,format=qcow2"
            % os.path.join(d, "top.qcow2"),
            "-drive", "if=none,id=drive1,file=%s,format=raw"
            % os.path.join(d, "r.raw")], qemu=qemu)
        errors = []
        try:
            for n, (cmd, dev, sync, fmt, mode, want) in enumerate(cases(d)):
                target = os.path.join(d, "t%d" % n)
                if mode == "existing":
                    img("create", "-q", "-f", "qcow2", target, "16M")
                args = {"device": dev, "target": target, "sync": sync,
                        "mode": mode, "job-id": "j%d" % n}
                if fmt:
                    args["format"] = fmt
                r = c.execute(cmd, args)
                errors.append(r.get("error", {}).get("desc"))
                if "error" in r:
                    continue
                # a job on empty images: cancelled or done, it ends
                c.execute("block-job-cancel", {"device": "j%d" % n,
                                               "force": True})
                while True:
                    e = c.event("JOB_STATUS_CHANGE", timeout=60)
                    if e["data"] == {"id": "j%d" % n, "status": "null"}:
                        break
            c.cmd("quit")
            q.wait()
        finally:
            q.close()
        targets = []
        for n in range(len(cases(d))):
            path = os.path.join(d, "t%d" % n)
            if not os.path.exists(path):
                targets.append(None)
                continue
            info = json.loads(img("info", "--output=json", path))
            if info["format"] == "qcow2":
                check_clean(path)
            targets.append((info["format"], info["virtual-size"],
                            info.get("full-backing-filename")))
        lines = q.stdout_text().replace(d, "D").splitlines()
        return lines, errors, [t and (t[0], t[1], t[2] and
                                      t[2].replace(d, "D"))
                               for t in targets]
    finally:
        shutil.rmtree(d)


def test_formatting_lines():
    ours = scenario(False)
    want = cases("D")
    assert ours[0] == [w for *_, m, w in want
                       if w and w.startswith("Formatting")], ours[0]
    assert ours[1] == [w if w and not w.startswith("Formatting") else None
                       for *_, w in want], ours[1]
    if qemu_binary():
        theirs = scenario(True)
        assert ours == theirs, (ours, theirs)


if __name__ == "__main__":
    run([test_formatting_lines], needs=[need_tools])
