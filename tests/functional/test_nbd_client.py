#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The nbd block driver against QEMU 7.2's NBD servers (qemu-nbd and
qemu-storage-daemon on unix sockets and 127.0.0.1 ports): blockdev-add
driver=nbd and the file name forms (nbd:unix:..., nbd://, nbd+unix://)
open the export and show it as QEMU does; reads, writes, zero writes,
discards and flushes reach the image (checked with qemu-io on it);
errors carry QEMU's messages; a mirror into an export (blockdev-mirror,
and drive-mirror mode=existing as older libvirt sends it) reaches READY
under guest writes, ends with block-job-cancel and leaves the remote
image equal to the source (qemu-img compare), its holes left holes; a
lost server follows reconnect-delay, and a mirror into it its
on-target-error policy.  Skips (77) when QEMU's tools are missing."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run, wait_until  # noqa: E402
from images import img, qemu_io, need_tools, with_dir  # noqa: E402
from nbdpeer import QemuNbd, StorageDaemon, need_nbd_tools  # noqa: E402

MiB = 1 << 20
DEADLINE = 60


def printed(q, before):
    """What qemu-io printed (on qmpd's stdout, as QEMU's HMP qemu-io
    does) since @before characters: its result line or its failure."""
    return wait_until("qemu-io's output", lambda: (
        lambda t: t if "ops;" in t or "failed" in t else None)(
            q.stdout_text()[before:]), timeout=DEADLINE)


def qio(q, c, node, cmd):
    before = len(q.stdout_text())
    c.cmd("human-monitor-command",
          **{"command-line": 'qemu-io %s "%s"' % (node, cmd)})
    return "" if cmd == "flush" else printed(q, before)


def nbd_unix(node, sock, **kw):
    return dict(driver="nbd", server={"type": "unix", "path": sock},
                **{"node-name": node}, **kw)


def node_info(c, name):
    for n in c.cmd("query-named-block-nodes", flat=True):
        if n["node-name"] == name:
            return n
    raise AssertionError("no node %s" % name)


def raw_image(d, name="t.img", size="64M"):
    p = os.path.join(d, name)
    img("create", "-q", "-f", "raw", p, size)
    return p


@with_dir("nbdc-")
def test_blockdev_add_unix(d):
    t = raw_image(d)
    qemu_io(t, "write -P 0x11 0 1M", fmt="raw")
    sock = os.path.join(d, "s.sock")
    with QemuNbd(t, sock), Qmpd() as q:
        c = q.connect()
        c.cmd("blockdev-add", **nbd_unix("n0", sock, export="exp"))
        n = node_info(c, "n0")
        name = "nbd+unix:///exp?socket=%s" % sock
        assert (n["drv"], n["file"], n["ro"]) == ("nbd", name, False), n
        assert n["image"] == {"filename": name, "format": "nbd",
                              "virtual-size": 64 * MiB}, n["image"]
        out = qio(q, c, "n0", "read -P 0x11 0 1M")
        assert "read 1048576/1048576" in out, out
        qio(q, c, "n0", "write -P 0x22 1M 1M")
        qio(q, c, "n0", "write -P 0x33 4095 2")
        qio(q, c, "n0", "write -z 2M 1M")
        qio(q, c, "n0", "discard 8M 1M")
        qio(q, c, "n0", "flush")
        assert "read 2/2" in qio(q, c, "n0", "read -P 0x33 4095 2")
        c.cmd("blockdev-del", **{"node-name": "n0"})
    qemu_io(t, "read -P 0x11 0 4095", "read -P 0x33 4095 2",
            "read -P 0x11 4097 1044479", "read -P 0x22 1M 1M",
            "read -P 0 2M 1M", fmt="raw")


@with_dir("nbdc-")
def test_tcp_storage_daemon(d):
    t = raw_image(d)
    with StorageDaemon(t) as sd, Qmpd() as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="nbd", **{"node-name": "n0"},
              server={"type": "inet", "host": "127.0.0.1",
                      "port": str(sd.port)}, export="exp")
        n = node_info(c, "n0")
        assert n["file"] == "nbd://127.0.0.1:%d/exp" % sd.port, n
        qio(q, c, "n0", "write -P 0x5c 3M 512k")
        qio(q, c, "n0", "flush")
        c.cmd("blockdev-del", **{"node-name": "n0"})
    qemu_io(t, "read -P 0x5c 3M 512k", "read -P 0 0 3M", fmt="raw")


@with_dir("nbdc-")
def test_errors(d):
    t = raw_image(d)
    sock = os.path.join(d, "s.sock")
    nope = os.path.join(d, "nope.sock")
    with QemuNbd(t, sock), Qmpd() as q:
        c = q.connect()
        cases = [
            (nbd_unix("e", nope, export="exp"),
             "Failed to connect to '%s': No such file or directory" % nope),
            (nbd_unix("e", sock, export="nope"),
             "Requested export not available"),
            (dict(driver="nbd", server={"type": "inet", "host": "127.0.0.1",
                                        "port": "1"}, **{"node-name": "e"}),
             "Failed to connect to '127.0.0.1:1': Connection refused"),
            (nbd_unix("e", sock, export="exp", **{"tls-creds": "x"}),
             "No TLS credentials with id 'x'"),
            (nbd_unix("e", sock, export="exp", **{"x-dirty-bitmap": "b"}),
             "Could not open image: Invalid argument"),
            (nbd_unix("e", sock, export="exp", **{"reconnect-delay": -1}),
             "Parameter 'reconnect-delay' expects uint32_t"),
            (nbd_unix("e", sock, export="exp", bogus=1),
             "Parameter 'bogus' is unexpected"),
            (dict(driver="nbd", server={"type": "fd", "str": "3"},
                  **{"node-name": "e"}),
             "File descriptor named '3' has not been found"),
        ]
        for args, msg in cases:
            assert c.error("blockdev-add", **args) == ("GenericError",
                                                        msg), (args, msg)
        assert not [n for n in c.cmd("query-named-block-nodes")]


@with_dir("nbdc-")
def test_read_only_export(d):
    t = raw_image(d)
    sock = os.path.join(d, "r.sock")
    with QemuNbd(t, sock, read_only=True), Qmpd() as q:
        c = q.connect()
        assert c.error("blockdev-add", **nbd_unix("n0", sock, export="exp")) \
            == ("GenericError", "Could not open image: Permission denied")
        c.cmd("blockdev-add", **nbd_unix("n1", sock, export="exp",
                                         **{"read-only": True}))
        c.cmd("blockdev-add", **nbd_unix("n2", sock, export="exp",
                                         **{"auto-read-only": True}))
        assert node_info(c, "n1")["ro"] and node_info(c, "n2")["ro"]


@with_dir("nbdc-")
def test_filename_forms(d):
    t = raw_image(d)
    qemu_io(t, "write -P 0x42 0 64k", fmt="raw")
    sock = os.path.join(d, "s.sock")
    with QemuNbd(t, sock), StorageDaemon(t, name="tcp") as sd:
        forms = [
            ("nbd:unix:%s:exportname=exp" % sock,
             "nbd+unix:///exp?socket=%s" % sock),
            ("nbd+unix:///exp?socket=%s" % sock,
             "nbd+unix:///exp?socket=%s" % sock),
            ("nbd://127.0.0.1:%d/tcp" % sd.port,
             "nbd://127.0.0.1:%d/tcp" % sd.port),
            ("nbd:127.0.0.1:%d:exportname=tcp" % sd.port,
             "nbd://127.0.0.1:%d/tcp" % sd.port),
        ]
        args = []
        for i, (f, _) in enumerate(forms):
            args += ["-drive", "file=%s,format=raw,if=none,id=d%d,"
                     "readonly=on" % (f, i)]
        with Qmpd(args) as q:
            c = q.connect()
            blocks = {b["device"]: b for b in c.cmd("query-block")}
            for i, (_, shown) in enumerate(forms):
                ins = blocks["d%d" % i]["inserted"]
                assert ins["file"] == shown, (ins, shown)
                out = qio(q, c, "d%d" % i, "read -P 0x42 0 64k")
                assert "read 65536/65536" in out, out
            for target, msg in [
                    ("nbd+unix:///exp", "No valid URL specified"),
                    ("nbd:localhost", "error parsing address 'localhost'"),
                    ("nbd:", "NBD server address missing"),
                    ("nbd://127.0.0.1:1/exp",
                     "Failed to connect to '127.0.0.1:1': Connection "
                     "refused")]:
                assert c.error("drive-mirror", device="d0", target=target,
                               mode="existing", format="raw", sync="full") \
                    == ("GenericError", msg), target


def source(d, mib=64):
    """A qcow2 source with data, a zeroed range and holes."""
    src = os.path.join(d, "src.qcow2")
    img("create", "-q", "-f", "qcow2", src, "%dM" % mib)
    qemu_io(src, "write -P 0x61 0 4M", "write -P 0x62 %dM 2M" % (mib // 4),
            "write -z %dM 2M" % (mib // 2), "write -P 0x63 %dM 1M" % (mib - 2))
    return src


def allocated(path, fmt):
    """(offset, length) of the ranges @path holds data for."""
    m = json.loads(img("map", "--output=json", "-f", fmt, path))
    return [(e["start"], e["length"]) for e in m if e["data"]]


def mirror_to_ready(q, c, writes_before, writes_after, cancel=True,
                    job="m"):
    for w in writes_before:
        qio(q, c, "drive0", w)
    c.event("BLOCK_JOB_READY", timeout=DEADLINE)
    for w in writes_after:
        qio(q, c, "drive0", w)
    if cancel:
        c.cmd("block-job-cancel", device=job)
        ev = c.event("BLOCK_JOB_COMPLETED", timeout=DEADLINE)
        assert "error" not in ev["data"], ev


def storage_migration(d, copy_mode):
    """libvirt's storage migration, source half, as it sends it
    (libvirt-flows.md): the destination exports an empty qcow2; a raw
    node over the nbd node; the mirror, READY, guest writes, cancel,
    dismiss, the nodes deleted.  The holes and zeroes stay holes."""
    src = source(d)
    tgt = os.path.join(d, "tgt.qcow2")
    img("create", "-q", "-f", "qcow2", tgt, "64M")
    sock = os.path.join(d, "d.sock")
    job = "drive-virtio-disk0"
    with StorageDaemon(tgt, name=job, fmt="qcow2", sock=sock) as sd:
        with Qmpd(["-drive", "file=%s,format=qcow2,if=none,id=drive0"
                   % src]) as q:
            c = q.connect()
            c.cmd("blockdev-add", **nbd_unix(
                "migration-vda-storage", sock, export=job))
            c.cmd("blockdev-add", driver="raw",
                  **{"node-name": "migration-vda-format",
                     "file": "migration-vda-storage"})
            c.cmd("blockdev-mirror", **{"job-id": job, "copy-mode": copy_mode,
                                        "auto-finalize": True,
                                        "auto-dismiss": False},
                  device="drive0", target="migration-vda-format",
                  sync="full", speed=0)
            mirror_to_ready(q, c, ["write -P 0x71 1M 64k",
                                   "write -P 0x72 40M 64k"],
                            ["write -P 0x73 2M 64k",
                             "write -P 0x74 50M 128k"], job=job)
            jobs = c.cmd("query-jobs")
            assert [(j["id"], j["status"]) for j in jobs] == \
                [(job, "concluded")], jobs
            c.cmd("job-dismiss", id=job)
            c.cmd("blockdev-del", **{"node-name": "migration-vda-format"})
            c.cmd("blockdev-del", **{"node-name": "migration-vda-storage"})
        sd.stop()
    img("compare", "-f", "qcow2", "-F", "qcow2", src, tgt)
    subprocess.run(["qemu-img", "check", tgt], check=True,
                   stdout=subprocess.DEVNULL)
    got = allocated(tgt, "qcow2")
    # what the source holds as data (4M + 2M + 1M) and the guest's
    # writes, nothing of the zeroed range at 32M or the holes
    total = sum(n for _, n in got)
    assert total <= 8 * MiB, got
    assert not [r for r in got if r[0] < 34 * MiB and r[0] + r[1]
                > 32 * MiB], got


@with_dir("nbdc-")
def test_blockdev_mirror_into_export(d):
    storage_migration(d, "background")


@with_dir("nbdc-")
def test_blockdev_mirror_write_blocking(d):
    storage_migration(d, "write-blocking")


@with_dir("nbdc-")
def test_drive_mirror_existing(d):
    """Older libvirt: drive-mirror mode=existing format=raw into
    nbd:unix:PATH:exportname=X."""
    src = source(d, 16)
    t = raw_image(d, size="16M")
    sock = os.path.join(d, "s.sock")
    with QemuNbd(t, sock, name="drive0"):
        with Qmpd(["-drive", "file=%s,format=qcow2,if=none,id=drive0"
                   % src]) as q:
            c = q.connect()
            c.cmd("drive-mirror", device="drive0", mode="existing",
                  format="raw", sync="full",
                  target="nbd:unix:%s:exportname=drive0" % sock)
            mirror_to_ready(q, c, ["write -P 0x81 5M 64k"],
                            ["write -P 0x82 6M 64k"], job="drive0")
    img("compare", "-f", "qcow2", "-F", "raw", src, t)


def send_hmp(c, line):
    """Send an HMP command without waiting for its reply."""
    c.send_raw(json.dumps({"execute": "human-monitor-command",
                           "arguments": {"command-line": line}}))


@with_dir("nbdc-")
def test_reconnect_delay(d):
    """With reconnect-delay a write waits for the server to come back;
    without it the write fails at once, and the next one reconnects."""
    t = raw_image(d)
    sock = os.path.join(d, "s.sock")
    with QemuNbd(t, sock) as srv, Qmpd() as q:
        c = q.connect()
        c.cmd("blockdev-add", **nbd_unix("w", sock, export="exp",
                                         **{"reconnect-delay": 30}))
        c.cmd("blockdev-add", **nbd_unix("z", sock, export="exp"))
        srv.stop()
        # z learns of the loss from its first request: it fails, as QEMU's
        wait_until("z's write fails", lambda: "Input/output error"
                   in qio(q, c, "z", "write -P 0x0a 0 4k"), timeout=DEADLINE)
        before = len(q.stdout_text())
        send_hmp(c, 'qemu-io w "write -P 0x0b 64k 4k"')
        srv.start()
        assert "return" in c.reply(timeout=DEADLINE)
        out = printed(q, before)
        assert "wrote 4096/4096" in out, out
        out = qio(q, c, "z", "write -P 0x0c 128k 4k")
        assert "wrote 4096/4096" in out, out
    qemu_io(t, "read -P 0x0b 64k 4k", "read -P 0x0c 128k 4k", fmt="raw")


@with_dir("nbdc-")
def test_reconnect_delay_expires(d):
    t = raw_image(d)
    sock = os.path.join(d, "s.sock")
    with QemuNbd(t, sock) as srv, Qmpd() as q:
        c = q.connect()
        c.cmd("blockdev-add", **nbd_unix("w", sock, export="exp",
                                         **{"reconnect-delay": 1}))
        srv.stop()
        start = time.time()
        out = qio(q, c, "w", "write -P 0x0d 0 4k")
        # the first write may find the link dead only when it is sent
        if "Input/output error" not in out:
            out = qio(q, c, "w", "write -P 0x0d 0 4k")
        assert "write failed: Input/output error" in out, out
        assert time.time() - start < DEADLINE


def lose_target_mid_mirror(d, policy):
    src = source(d, 32)
    t = raw_image(d, size="32M")
    sock = os.path.join(d, "s.sock")
    srv = QemuNbd(t, sock)
    q = Qmpd(["-drive", "file=%s,format=qcow2,if=none,id=drive0" % src])
    c = q.connect()
    c.cmd("blockdev-add", **nbd_unix("tgt", sock, export="exp"))
    # slow enough to be mid-copy when the server goes
    c.cmd("blockdev-mirror", **{"job-id": "m"}, device="drive0",
          target="tgt", sync="full", speed=1 * MiB,
          **{"on-target-error": policy})
    wait_until("copy started", lambda: c.cmd("query-block-jobs")[0]
               ["offset"] > 0, timeout=DEADLINE)
    srv.stop()
    return srv, q, c, src, t


@with_dir("nbdc-")
def test_mirror_target_lost_stop(d):
    srv, q, c, src, t = lose_target_mid_mirror(d, "stop")
    try:
        ev = c.event("BLOCK_JOB_ERROR", timeout=DEADLINE)
        assert ev["data"] == {"device": "m", "operation": "write",
                              "action": "stop"}, ev
        wait_until("job paused", lambda: c.cmd("query-block-jobs")[0]
                   ["status"] == "paused", timeout=DEADLINE)
        srv.start()
        c.cmd("block-job-set-speed", device="m", speed=0)
        c.cmd("block-job-resume", device="m")
        c.event("BLOCK_JOB_READY", timeout=DEADLINE)
        c.cmd("block-job-cancel", device="m")
        c.event("BLOCK_JOB_COMPLETED", timeout=DEADLINE)
    finally:
        q.close()
        srv.stop()
    img("compare", "-f", "qcow2", "-F", "raw", src, t)


@with_dir("nbdc-")
def test_mirror_target_lost_report(d):
    srv, q, c, src, t = lose_target_mid_mirror(d, "report")
    try:
        ev = c.event("BLOCK_JOB_COMPLETED", timeout=DEADLINE)
        assert ev["data"]["error"] == "Input/output error", ev
    finally:
        q.close()
        srv.stop()


if __name__ == "__main__":
    run([test_blockdev_add_unix, test_tcp_storage_daemon, test_errors,
         test_read_only_export, test_filename_forms,
         test_blockdev_mirror_into_export, test_blockdev_mirror_write_blocking,
         test_drive_mirror_existing,
         test_reconnect_delay, test_reconnect_delay_expires,
         test_mirror_target_lost_stop, test_mirror_target_lost_report],
        needs=[need_tools, need_nbd_tools])
