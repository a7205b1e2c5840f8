#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The nbd block driver against QEMU 7.2's, both the clients of the same
qemu-nbd and qemu-storage-daemon exports: blockdev-add driver=nbd over a
unix socket and a 127.0.0.1 port, with each refusal (no socket, no
export, a closed port, a read-only export opened read-write, TLS, a
bitmap the server does not have, bad members), -drive with each file
name form (nbd:unix:..., nbd:HOST:PORT, nbd://, nbd+unix://), the
file names drive-mirror refuses, and query-named-block-nodes,
query-block and HMP info block after them: every reply must be the
same.  Automatic node names are normalised.  Skips (77) when QEMU or
its tools are not installed."""

import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Skip, qemu_binary, run  # noqa: E402
from images import img, need_tools  # noqa: E402
from nbdpeer import QemuNbd, StorageDaemon, need_nbd_tools  # noqa: E402
import reference  # noqa: E402


def normal(v):
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normal(x) for x in v]
    if isinstance(v, str):
        return re.sub(r"#block\d+", "#blockN", v)
    return v


def steps(sock, ro_sock, port):
    def unix(node, path, **kw):
        return dict(driver="nbd", server={"type": "unix", "path": path},
                    **{"node-name": node}, **kw)

    inet = {"type": "inet", "host": "127.0.0.1", "port": str(port)}
    return [
        ("blockdev-add", unix("n0", sock, export="exp")),
        ("blockdev-add", dict(driver="nbd", server=inet, export="tcp",
                              **{"node-name": "n1"})),
        ("blockdev-add", unix("e", sock + ".nope", export="exp")),
        ("blockdev-add", unix("e", sock, export="nope")),
        ("blockdev-add", dict(driver="nbd", **{"node-name": "e"},
                              server={"type": "inet", "host": "127.0.0.1",
                                      "port": "1"})),
        ("blockdev-add", unix("e", ro_sock, export="exp")),
        ("blockdev-add", unix("r", ro_sock, export="exp",
                              **{"read-only": True})),
        ("blockdev-add", unix("e", sock, export="exp",
                              **{"tls-creds": "x"})),
        ("blockdev-add", unix("e", sock, export="exp",
                              **{"x-dirty-bitmap": "b"})),
        ("blockdev-add", unix("e", sock, export="exp",
                              **{"reconnect-delay": -1})),
        ("blockdev-add", unix("e", sock, export="exp", bogus=1)),
        ("blockdev-add", dict(driver="nbd", **{"node-name": "e"},
                              server={"type": "fd", "str": "3"})),
        ("blockdev-add", unix("w", sock, export="exp",
                              **{"reconnect-delay": 5,
                                 "open-timeout": 3})),
        ("query-named-block-nodes", {"flat": True}),
        ("query-block", None),
        ("human-monitor-command", {"command-line": "info block"}),
        ("human-monitor-command", {"command-line": "info block -n"}),
    ] + [
        ("drive-mirror", dict(device="d0", target=t, mode="existing",
                              format="raw", sync="full"))
        for t in ("nbd+unix:///exp", "nbd:localhost", "nbd:",
                  "nbd://127.0.0.1:1/exp")
    ] + [
        ("blockdev-del", {"node-name": n}) for n in ("n0", "n1", "r", "w")
    ]


def test_same_replies():
    need_tools()
    need_nbd_tools()
    if not qemu_binary():
        raise Skip("QEMU is not installed", "qemu")
    d = tempfile.mkdtemp(prefix="nbdcc-")
    try:
        t = os.path.join(d, "t.img")
        img("create", "-q", "-f", "raw", t, "64M")
        sock, ro = os.path.join(d, "s.sock"), os.path.join(d, "r.sock")
        with QemuNbd(t, sock), QemuNbd(t, ro, read_only=True), \
                StorageDaemon(t, name="tcp") as sd:
            args = []
            for i, f in enumerate([
                    "nbd:unix:%s:exportname=exp" % sock,
                    "nbd:127.0.0.1:%d:exportname=tcp" % sd.port,
                    "nbd://127.0.0.1:%d/tcp" % sd.port,
                    "nbd+unix:///exp?socket=%s" % sock]):
                args += ["-drive", "file=%s,format=raw,if=none,id=d%d"
                         % (f, i)]
            s = steps(sock, ro, sd.port)
            ours = reference.transcript(args, s, qemu=False)
            theirs = reference.transcript(args, s, qemu=True)
        for (name, a), o, t in zip(s, ours, theirs):
            assert normal(o) == normal(t), (name, a, o, t)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_same_replies])
