#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Cache modes, the backend's write cache and FUA, counted with strace.

qmpd and (when installed) QEMU 7.2 run the same scenario under
`strace -f`: a -drive with each cache= mode, or a device with
write-cache=on|off, takes N guest writes through HMP qemu-io, then a
flush.  The sync system calls (fdatasync, fsync, ...) are counted
between markers (a blockdev-add of a file that does not exist, whose
openat() is in the trace), so the counts are those of the writes alone:

  writethrough, directsync, write-cache=off, qemu-io write -f:
                          one sync per write, each before its reply
  writeback, none:        none until the flush, one for it
  unsafe:                 none at all

Both programs must give the same counts, open the image with O_DIRECT
in the same modes, and report the same query-block "cache" and
"info block" cache line.  The order test checks in the trace, for each
write, that the data write returned, then the sync ran and returned,
and only then the reply went out: what it proves is that the
acknowledgement waits for a completed fdatasync() of the written file
(not that the disk honoured it).  Every image is checked with qemu-img
check and compared with what was written.  Skips (77) without strace
(or when ptrace is not allowed) or qemu-img; the QEMU side only without
qemu-system-x86_64.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (Qmpd, QmpClient, QmpError, SchemaChecker, Skip,  # noqa: E402
                  binary, check_ended, qemu_binary, run,
                  traced_env)
from images import (check_clean, img, need_tools, qemu_io,  # noqa: E402
                    same_content)

N = 16
SYNCS = ("fdatasync", "fsync", "sync_file_range", "syncfs", "sync")
DATA_WRITES = ("pwrite64", "pwritev", "pwritev2", "io_submit")
REPLIES = ("write", "writev", "sendmsg", "sendto")
TRACED = ",".join(SYNCS + DATA_WRITES + REPLIES + ("openat", "open"))
DEADLINE = 60

# What QEMU 7.2 reports (checked by hand; the test also compares live).
CACHE_INFO = {
    "writeback": ({"writeback": True, "direct": False, "no-flush": False},
                  "writeback"),
    "writethrough": ({"writeback": False, "direct": False,
                      "no-flush": False}, "writethrough"),
    "none": ({"writeback": True, "direct": True, "no-flush": False},
             "writeback, direct"),
    "directsync": ({"writeback": False, "direct": True, "no-flush": False},
                   "writethrough, direct"),
    "unsafe": ({"writeback": True, "direct": False, "no-flush": True},
               "writeback, ignore flushes"),
}


def need_strace():
    need_tools()
    if not shutil.which("strace"):
        raise Skip("strace not installed", "strace")
    p = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "true"],
                       capture_output=True)
    if p.returncode != 0:
        raise Skip("strace cannot trace here: %s" % p.stderr.decode().strip(),
                   "strace")


def programs():
    """(name, binary): qmpd, and QEMU 7.2 where it is installed."""
    progs = [("qmpd", binary())]
    if qemu_binary():
        progs.append(("qemu", qemu_binary()))
    return progs


class Syscall:
    def __init__(self, pid, name, args, enter):
        self.pid, self.name, self.args = pid, name, args
        self.enter = self.exit = enter
        self.ret = None


def parse_strace(path):
    """The system calls of an `strace -f` log, in order, with the
    positions of their entry and exit ("unfinished"/"resumed" pairs
    joined: strace prints them in the order the kernel stopped them, so
    positions order them causally)."""
    calls, pending = [], {}
    line_re = re.compile(r"^(\d+)\s+(.*)$")
    with open(path, errors="replace") as f:
        for pos, line in enumerate(f):
            m = line_re.match(line.rstrip("\n"))
            if not m:
                continue
            pid, body = int(m.group(1)), m.group(2)
            r = re.match(r"^<\.\.\. (\w+) resumed>(.*?)\)?\s*=\s*(.*)$", body)
            if r:
                c = pending.pop(pid, None)
                if c and c.name == r.group(1):
                    c.exit, c.ret = pos, r.group(3)
                    c.args += r.group(2)
                continue
            r = re.match(r"^(\w+)\((.*) <unfinished \.\.\.>$", body)
            if r:
                c = Syscall(pid, r.group(1), r.group(2), pos)
                c.exit = None
                pending[pid] = c
                calls.append(c)
                continue
            r = re.match(r"^(\w+)\((.*)\)\s*=\s*(.*)$", body)
            if r:
                c = Syscall(pid, r.group(1), r.group(2), pos)
                c.ret = r.group(3)
                calls.append(c)
    return calls


class Traced:
    """qmpd or QEMU (under strace unless @trace is False) with a QMP
    socket, in directory @d."""

    def __init__(self, name, prog, args, d, trace=True, slow_sync=False):
        self.name, self.d = name, d
        self.is_qmpd = prog == binary()
        self.sock = os.path.join(d, "qmp-%s.sock" % name)
        self.log = os.path.join(d, "strace-%s" % name)
        cmd = [prog, "-nodefaults", "-display", "none", "-S",
               "-qmp", "unix:%s,server=on,wait=off" % self.sock] + args
        if trace:
            # slow_sync: every sync returns 0.2 s late, so that a reply
            # sent without waiting for it would show in the trace
            cmd = ["strace", "-f", "-qq", "-s", "48", "-o", self.log,
                   "-e", "trace=" + TRACED] + (
                       ["-e", "inject=%s:delay_exit=200000" % ",".join(SYNCS)]
                       if slow_sync else []) + cmd
        env = traced_env() if trace else None
        self.out = open(os.path.join(d, "out-%s" % name), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out,
                                     env=env)
        self.markers = 0
        self.c = None
        try:
            self._connect()
        except BaseException:
            self.kill()
            raise

    def _connect(self):
        deadline = time.time() + DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited: %s" % (self.name,
                                                       self.output()))
            try:
                c = QmpClient(self.sock, negotiate=False, timeout=DEADLINE)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.time() < deadline, "%s: no QMP socket" % self.name
                time.sleep(0.05)
        self.c = c
        r = c.execute("qmp_capabilities")
        while "QMP" in r:
            # QEMU connected to while it starts up may greet twice
            r = c.reply()
        assert "return" in r, r
        if self.is_qmpd and Qmpd.checker is None:
            Qmpd.checker = SchemaChecker(self.cmd("query-qmp-schema"))

    def output(self):
        if not self.out.closed:
            self.out.flush()
        with open(self.out.name, "rb") as f:
            return f.read().decode(errors="replace")

    def cmd(self, name, **args):
        r = self.c.execute(name, args or None)
        if "error" in r:
            raise QmpError(r)
        if self.is_qmpd:
            Qmpd.note_command(name, r["return"])
        return r["return"]

    def error(self, name, **args):
        r = self.c.execute(name, args or None)
        assert "error" in r, (self.name, name, r)
        return r["error"]["class"], r["error"]["desc"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def mark(self):
        """A point in the trace: the open of a file that does not exist."""
        self.markers += 1
        path = os.path.join(self.d, "no-such-dir", "%s-mark-%d"
                            % (self.name, self.markers))
        self.error("blockdev-add", driver="file", filename=path,
                   **{"node-name": "mark"})
        return path

    def quit(self):
        self.cmd("quit")
        status = self.proc.wait(DEADLINE)
        if self.is_qmpd:
            check_ended(self.name, status, 0, self.output())
        return status

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.c:
            self.c.close()
        self.out.close()


class Trace:
    """An strace log cut at markers."""

    def __init__(self, path):
        self.calls = parse_strace(path)

    def marker(self, path):
        for c in self.calls:
            if c.name in ("openat", "open") and path in c.args:
                return c.enter
        raise AssertionError("marker %s not in the trace" % path)

    def between(self, a, b, names):
        lo, hi = self.marker(a), self.marker(b)
        return [c for c in self.calls
                if c.name in names and lo < c.enter < hi]

    def syncs(self, a, b):
        return len(self.between(a, b, SYNCS))

    def opens(self, path):
        return [c.args for c in self.calls
                if c.name in ("openat", "open") and '"%s"' % path in c.args]


def cache_of(t, device="drive0"):
    """query-block's cache object and info block's cache line."""
    blk = [b for b in t.cmd("query-block")
           if b.get("qdev") in (device, "/machine/peripheral/" + device)
           or b["device"] == device]
    assert len(blk) == 1, blk
    line = [ln.split(":", 1)[1].strip()
            for ln in t.hmp("info block").splitlines()
            if "Cache mode:" in ln]
    return blk[0]["inserted"]["cache"], line


def make_images(d, fmt, tag):
    """An image whose clusters are all allocated (qcow2 writes then
    allocate nothing: one sync per write is exact), and a raw file with
    the same content to apply the expected writes to."""
    path = os.path.join(d, "%s.%s" % (tag, fmt))
    ref = os.path.join(d, "%s.ref" % tag)
    img("create", "-q", "-f", fmt, path, "1M")
    qemu_io(path, "write -P 0x01 0 1M", fmt=fmt)
    img("create", "-q", "-f", "raw", ref, "1M")
    qemu_io(ref, "write -P 0x01 0 1M", fmt="raw")
    return path, ref


def verify(path, ref, fmt="qcow2"):
    """qemu-img check (qcow2) and the guest view equals @ref."""
    if fmt == "qcow2":
        check_clean(path)
    same_content(path, ref, fmt=fmt)


def writes(t, target, n, fua=False, device=False):
    for i in range(n):
        out = t.hmp('qemu-io %s%s "write%s -P 0x%x %d 4k"'
                    % ("-d " if device else "", target,
                       " -f" if fua else "", 0x40 + i, i * 65536))
        assert out == "", (t.name, out)


def expect_writes(ref, n):
    for i in range(n):
        qemu_io(ref, "write -P 0x%x %d 4k" % (0x40 + i, i * 65536), fmt="raw")


def run_counted(name, prog, args, d, target, n, fua=False, device=False,
                image=None, node=False):
    """Start, write @n times, flush, quit: (syncs in the writes, syncs
    in the flush, cache object and cache line of the backend, unless
    @node is written to, opens of @image)."""
    t = Traced(name, prog, args, d)
    try:
        cache = (None, None) if node else cache_of(t, target)
        m0 = t.mark()
        writes(t, target, n, fua, device)
        m1 = t.mark()
        assert t.hmp('qemu-io %s%s "flush"'
                     % ("-d " if device else "", target)) == ""
        m2 = t.mark()
        assert t.quit() == 0, t.output()
    finally:
        t.kill()
    assert t.output().count("wrote 4096/4096 bytes") == n, t.output()
    tr = Trace(t.log)
    return (tr.syncs(m0, m1), tr.syncs(m1, m2), cache[0], cache[1],
            tr.opens(image) if image else [])


def drive_run(name, prog, d, fmt, mode, fua=False):
    """N writes to a -drive of @fmt with cache=@mode, checked after."""
    path, ref = make_images(d, fmt, name)
    got = run_counted(name, prog, ["-M", "none", "-drive",
                                   "file=%s,format=%s,if=none,id=drive0,"
                                   "cache=%s" % (path, fmt, mode)],
                      d, "drive0", N, fua=fua, image=path)
    expect_writes(ref, N)
    verify(path, ref, fmt)
    return got


def test_cache_modes():
    """-drive cache=MODE on raw and qcow2: syncs per write, the flush,
    O_DIRECT and what is reported, as QEMU."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    try:
        for fmt in ("raw", "qcow2"):
            for mode, (cache, line) in CACHE_INFO.items():
                per_write = N if mode in ("writethrough", "directsync") else 0
                flush = 1 if mode in ("writeback", "none") else 0
                seen = {}
                for name, prog in programs():
                    got = drive_run(name, prog, d, fmt, mode)
                    syncs_w, syncs_f, c, ln, opens = got
                    what = (name, fmt, mode, got)
                    assert syncs_w == per_write, what
                    assert syncs_f == flush, what
                    assert c == cache and ln == [line], what
                    direct = [o for o in opens if "O_DIRECT" in o]
                    rw = [o for o in opens if "O_RDWR" in o]
                    assert rw, what
                    if c["direct"]:
                        assert direct and all("O_DIRECT" in o for o in rw), \
                            what
                    else:
                        assert not direct, what
                    seen[name] = (syncs_w, syncs_f, c, ln)
                if "qemu" in seen:
                    assert seen["qemu"] == seen["qmpd"], (fmt, mode, seen)
                print("  %-5s %-12s syncs: %2d for %d writes, %d for the "
                      "flush (%s)" % (fmt, mode, seen["qmpd"][0], N,
                                      seen["qmpd"][1],
                                      "= QEMU" if "qemu" in seen
                                      else "QEMU not installed"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_fua_writes():
    """qemu-io write -f (FUA) is durable on completion whatever the
    cache mode, except that cache=unsafe ignores flushes."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    try:
        for fmt in ("raw", "qcow2"):
            for mode, want in (("writeback", N), ("none", N),
                               ("unsafe", 0)):
                seen = {}
                for name, prog in programs():
                    got = drive_run(name, prog, d, fmt, mode, fua=True)
                    assert got[0] == want, (name, fmt, mode, got)
                    seen[name] = got[:2]
                if "qemu" in seen:
                    assert seen["qemu"] == seen["qmpd"], (fmt, mode, seen)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_blockdev_cache_options():
    """-blockdev cache.direct and cache.no-flush are honoured: O_DIRECT
    on the image, FUA writes to the node (qemu-io write -f) synced or
    not, as QEMU."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    try:
        for direct, no_flush in ((True, False), (True, True),
                                 (False, True)):
            seen = {}
            for name, prog in programs():
                path, ref = make_images(d, "qcow2", name)
                got = run_counted(name, prog, [
                    "-M", "none", "-blockdev",
                    "driver=qcow2,node-name=disk0,cache.direct=%s,"
                    "cache.no-flush=%s,file.driver=file,file.filename=%s"
                    % ("on" if direct else "off",
                       "on" if no_flush else "off", path)],
                    d, "disk0", N, fua=True, image=path, node=True)
                what = (name, direct, no_flush, got)
                assert got[0] == (0 if no_flush else N), what
                assert all(("O_DIRECT" in o) == direct for o in got[4]), what
                expect_writes(ref, N)
                verify(path, ref)
                seen[name] = got[:2]
            if "qemu" in seen:
                assert seen["qemu"] == seen["qmpd"], (direct, no_flush, seen)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_flush_reopened_off():
    """A write made under cache.no-flush=on is synced by the first flush
    after blockdev-reopen turns no-flush off.  QEMU 7.2 counts the
    skipped flush as done (flushed_gen) and syncs nothing then: a
    deliberate difference, checked on both sides."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")

    def opts(no_flush, path):
        f = {"driver": "file", "node-name": "f0", "filename": path,
             "cache": {"no-flush": no_flush}}
        return {"driver": "raw", "node-name": "n0", "file": f,
                "cache": {"no-flush": no_flush}}
    try:
        for name, prog in programs():
            path, ref = make_images(d, "raw", name)
            t = Traced(name, prog, ["-M", "none"], d)
            try:
                t.cmd("blockdev-add", **opts(True, path))
                m0 = t.mark()
                assert t.hmp('qemu-io n0 "write -P 0x40 0 4k"') == ""
                assert t.hmp('qemu-io n0 "flush"') == ""
                m1 = t.mark()
                t.cmd("blockdev-reopen", options=[opts(False, path)])
                assert t.hmp('qemu-io n0 "flush"') == ""
                m2 = t.mark()
                assert t.quit() == 0
            finally:
                t.kill()
            tr = Trace(t.log)
            got = (tr.syncs(m0, m1), tr.syncs(m1, m2))
            assert got == ((0, 1) if name == "qmpd" else (0, 0)), (name, got)
            expect_writes(ref, 1)
            verify(path, ref, "raw")
    finally:
        shutil.rmtree(d, ignore_errors=True)


BLOCKDEV = ["-blockdev", "driver=qcow2,node-name=disk0,file.driver=file,"
            "file.filename={img}"]
DRIVE_WT = ["-drive", "file={img},format=qcow2,if=none,id=drive0,"
            "cache=writethrough"]
DEVICES = [
    # (-drive/-blockdev and -device arguments, qemu-io -d path, whether
    # each write is durable on completion)
    (BLOCKDEV + ["-device", "virtio-blk-pci,drive=disk0,id=vd0,"
                 "write-cache=off"], "vd0/virtio-backend", True),
    (BLOCKDEV + ["-device", "virtio-scsi-pci,id=scsi0", "-device",
                 "scsi-hd,drive=disk0,id=sd0,write-cache=off"], "sd0", True),
    (BLOCKDEV + ["-device", "ide-hd,drive=disk0,id=hd0,write-cache=off"],
     "hd0", True),
    (BLOCKDEV + ["-device", "virtio-blk-pci,drive=disk0,id=vd0"],
     "vd0/virtio-backend", False),
    (DRIVE_WT + ["-device", "virtio-blk-pci,drive=drive0,id=vd0,"
                 "write-cache=on"], "vd0/virtio-backend", False),
    (DRIVE_WT + ["-device", "virtio-blk-pci,drive=drive0,id=vd0"],
     "vd0/virtio-backend", True),
]


def test_device_write_cache():
    """A device's write-cache=off makes every guest write durable before
    it completes; on overrides -drive cache=writethrough, auto keeps
    the drive's setting (on for a -blockdev node).  The writes go
    through the device (qemu-io -d)."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    n = 8
    try:
        for args, target, durable in DEVICES:
            seen = {}
            for name, prog in programs():
                path, ref = make_images(d, "qcow2", name)
                got = run_counted(name, prog, ["-M", "pc"] + [
                    a.format(img=path) for a in args], d, target, n,
                    device=True)
                what = (name, args, got)
                assert got[:2] == ((n, 0) if durable else (0, 1)), what
                assert got[2]["writeback"] != durable, what
                assert got[3] == ["writethrough" if durable
                                  else "writeback"], what
                expect_writes(ref, n)
                verify(path, ref)
                seen[name] = got[:4]
            if "qemu" in seen:
                assert seen["qemu"] == seen["qmpd"], (args, seen)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sync_before_reply():
    """Each write under writethrough and directsync: its data write
    returned, then a sync of that file ran and returned, then the reply
    was sent (causal order in the trace)."""
    need_strace()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    try:
        for mode in ("writethrough", "directsync"):
            for name, prog in programs():
                path, ref = make_images(d, "raw", name)
                t = Traced(name, prog, ["-M", "none", "-drive",
                                        "file=%s,format=raw,if=none,"
                                        "id=drive0,cache=%s" % (path, mode)],
                           d, slow_sync=True)
                try:
                    marks = [t.mark()]
                    for i in range(4):
                        assert t.hmp('qemu-io drive0 "write -P 0x%x %d 4k"'
                                     % (0x40 + i, i * 65536)) == ""
                        marks.append(t.mark())
                    assert t.quit() == 0
                finally:
                    t.kill()
                tr = Trace(t.log)
                fds = {c.ret.split()[0] for c in tr.calls
                       if c.name in ("openat", "open") and c.ret
                       and '"%s"' % path in c.args}
                for i in range(4):
                    off = i * 65536
                    data = [c for c in tr.between(marks[i], marks[i + 1],
                                                  DATA_WRITES)
                            if c.args.endswith(", %d" % off)]
                    assert data and data[-1].exit is not None, \
                        (name, mode, i, [c.args for c in data])
                    syncs = [c for c in tr.between(marks[i], marks[i + 1],
                                                   SYNCS)
                             if c.enter > data[-1].exit]
                    replies = [c for c in tr.between(marks[i], marks[i + 1],
                                                     REPLIES)
                               if '{\\"return\\": \\"\\"}' in c.args]
                    what = (name, mode, i)
                    assert syncs and replies, what
                    sync, reply = syncs[0], replies[0]
                    assert sync.args.split(",")[0].strip() in fds, \
                        (what, sync.args, fds)
                    assert sync.exit is not None and sync.exit < reply.enter, \
                        ("replied before the sync returned", what)
                    assert sync.ret.split()[0] == "0", (what, sync.ret)
                expect_writes(ref, 4)
                verify(path, ref, "raw")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_reported_and_errors():
    """cache.writeback on -drive (over cache=), a protocol-only drive,
    write-cache through device_add, and the errors, as QEMU."""
    need_tools()
    d = tempfile.mkdtemp(prefix="qmpd-cache-")
    try:
        path = os.path.join(d, "disk.qcow2")
        img("create", "-q", "-f", "qcow2", path, "1M")
        drives = [
            ("file=%s,format=qcow2,cache=writethrough,cache.writeback=on"
             % path, CACHE_INFO["writeback"]),
            ("file=%s,format=qcow2,cache=none,cache.writeback=off" % path,
             CACHE_INFO["directsync"]),
            ("file=%s,format=qcow2,cache.writeback=off" % path,
             CACHE_INFO["writethrough"]),
            ("file=%s,format=qcow2,cache=unsafe,cache.direct=on" % path,
             ({"writeback": True, "direct": True, "no-flush": True},
              "writeback, direct, ignore flushes")),
        ] + [("driver=null-co,cache=%s" % m, CACHE_INFO[m])
             for m in CACHE_INFO]
        for spec, (cache, line) in drives:
            seen = {}
            for name, prog in programs():
                t = Traced(name, prog, ["-M", "none", "-drive",
                                        spec + ",if=none,id=drive0"],
                           d, trace=False)
                try:
                    got = cache_of(t)
                    ins = t.cmd("query-block")[0]["inserted"]
                    nodes = t.cmd("query-named-block-nodes")
                    # a node has no write cache of its own: QEMU says on
                    assert all(n["cache"]["writeback"] for n in nodes)
                    assert got == (cache, [line]), (name, spec, got)
                    assert t.hmp('qemu-io drive0 "write 0 4k"') == ""
                    seen[name] = (got, ins["file"])
                    assert t.quit() == 0
                finally:
                    t.kill()
                assert "wrote 4096/4096" in t.output(), t.output()
            if "qemu" in seen:
                assert seen["qemu"] == seen["qmpd"], (spec, seen)
            check_clean(path)

        bad = [
            (["-drive", "file=%s,if=none,cache=bogus" % path],
             "invalid cache option"),
            (["-drive", "file=%s,if=none,cache.writeback=maybe" % path],
             "Parameter 'cache.writeback' expects 'on' or 'off'"),
            (["-blockdev", "driver=qcow2,node-name=n,file.driver=file,"
              "file.filename=%s,cache.writeback=off" % path],
             "Parameter 'cache.writeback' is unexpected"),
            (["-M", "pc", "-drive", "file=%s,if=none,id=d0" % path,
              "-device", "virtio-blk-pci,drive=d0,write-cache=false"],
             "Parameter 'write-cache' does not accept value 'false'"),
        ]
        for args, msg in bad:
            for name, prog in programs():
                p = subprocess.run([prog, "-nodefaults", "-display", "none",
                                    "-S"] + args, capture_output=True,
                                   text=True, timeout=DEADLINE)
                assert p.returncode == 1 and msg in p.stderr, \
                    (name, args, p.stderr)

        # device_add: a bad value changes nothing; a JSON boolean is on/off
        seen = {}
        for name, prog in programs():
            t = Traced(name, prog, ["-M", "pc", "-blockdev",
                                    "driver=qcow2,node-name=disk0,file.driver="
                                    "file,file.filename=%s" % path],
                       d, trace=False)
            try:
                err = t.error("device_add", driver="virtio-blk-pci",
                              drive="disk0", id="vd0", **{"write-cache": "1"})
                assert t.cmd("query-block") == []
                t.cmd("device_add", driver="virtio-blk-pci", drive="disk0",
                      id="vd0", **{"write-cache": False})
                got = cache_of(t, "/machine/peripheral/vd0/virtio-backend")
                assert got == (CACHE_INFO["writethrough"][0],
                               ["writethrough"]), (name, got)
                seen[name] = (err, got)
                assert t.quit() == 0
            finally:
                t.kill()
        assert seen["qmpd"][0] == ("GenericError", "Parameter 'write-cache' "
                                   "does not accept value '1'"), seen
        if "qemu" in seen:
            assert seen["qemu"] == seen["qmpd"], seen
        check_clean(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_cache_modes, test_fua_writes, test_blockdev_cache_options,
         test_no_flush_reopened_off, test_device_write_cache,
         test_sync_before_reply, test_reported_and_errors])
