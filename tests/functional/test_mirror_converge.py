#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A mirror under a guest that writes faster than it copies, and a mirror
whose target runs out of space.

Convergence: a guest writer (a thread with its own QMP connection) keeps
rewriting every 64 KiB cluster of a 16 MiB disk through HMP qemu-io
aio_write, a whole round over the disk (in a spread order) between two
aio_flush, while drive-mirror copies at a speed limit far below that.
READY needs nothing left to copy at one moment, i.e. every cluster
copied after its last write, i.e. the whole disk copied within one round
of the writer: at the speed limit that takes longer than a round, so a
background mirror provably never gets ready.  The limit is set from the
writer's first round (four rounds for the whole disk), and the rounds
are timed: a test whose assertions fail though the writer was too slow
for its limit (a loaded machine) runs again with a lower limit, three
times at most, then fails; it never skips.  With
__com.qmpd_auto-write-blocking the job notices that its dirty count
stopped shrinking, switches to write-blocking (logged) and gets ready;
it is completed while the guest keeps writing, and the target then
holds exactly what the guest wrote (the writes are replayed onto a raw
file; qemu-img compare and check after quit).

ENOSPC: the target is a file on a tiny tmpfs mounted for the test
(skipped when mounting is not permitted: a failure where QMPD_MUST_RUN
has mount, as for root).  on-target-error enospc or
stop pauses the job with BLOCK_JOB_ERROR (action stop) and io-status
nospace; after a remount with room block-job-resume finishes with the
source's data.  With report the job fails with the ENOSPC error.
Skips (77) without qemu-img.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import NEED_MOUNT, Qmpd, Skip, run  # noqa: E402
from images import check_clean, img, need_tools, qemu_io, \
    same_content, with_dir  # noqa: E402
from test_mirror import hmp_io, inserted, job_info, names, \
    until_event, until_status  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20

AUTO_WB = "__com.qmpd_auto-write-blocking"
DISK = 16 * MiB
CLUSTER = 64 * KiB
SPEED = 8 * MiB             # the mirror's speed limit at most, bytes/s
# the switch waits for twice this copied without progress (see mirror.c)
BUF = 4 * MiB
NO_READY_S = 5              # without the extension: no READY for so long
SWITCH_LOG = "switching to copy-mode write-blocking"


class Writer(threading.Thread):
    """A guest writer thread: run() records its exception in
    self.error, finish() stops it and raises that."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.error = None

    def finish(self):
        self.stop.set()
        self.join(60)
        assert not self.is_alive(), "the guest writer hangs"
        if self.error:
            raise self.error


class GuestWriter(Writer):
    """Rounds of aio_write -P N over every cluster of the disk, each
    round one pattern, in an order spread over the disk, closed by an
    aio_flush: a cluster is never written twice at once, so the order
    of the log is the order of the data."""

    def __init__(self, q, device="drive0"):
        super().__init__()
        self.c = q.connect()
        self.device = device
        n = DISK // CLUSTER
        # 97 is prime to n: a permutation that jumps across the disk
        self.order = [(i * 97) % n * CLUSTER for i in range(n)]
        self.log = []           # (pattern, offset), in issue order
        self.rounds = []        # seconds each full round took
        self.pattern = 1
        self.cond = threading.Condition()
        self.pause = 0          # seconds between two writes

    def one_round(self):
        # -q: qemu-io's report of an aio request goes to qmpd's stdout,
        # a pipe that the harness never reads
        start = time.time()
        for off in self.order:
            if self.stop.is_set():
                break
            hmp_io(self.c, "aio_write -q -P %d %d %d"
                   % (self.pattern, off, CLUSTER), self.device)
            self.log.append((self.pattern, off))
            if self.pause:
                time.sleep(self.pause)
        hmp_io(self.c, "aio_flush", self.device)
        with self.cond:
            if not self.stop.is_set():
                self.rounds.append(time.time() - start)
            self.cond.notify_all()
        self.pattern = self.pattern % 255 + 1

    def wait_rounds(self, n, timeout=60):
        """Wait until @n more rounds are complete."""
        with self.cond:
            want = len(self.rounds) + n
            ok = self.cond.wait_for(lambda: len(self.rounds) >= want
                                    or self.error or not self.is_alive(),
                                    timeout)
        assert ok and not self.error, self.error or "writer stalled"

    def run(self):
        try:
            while not self.stop.is_set():
                self.one_round()
        except Exception as e:          # reported by finish()
            self.error = e

    def replay(self, path):
        """What the guest wrote, onto a raw file of zeroes."""
        with open(path, "wb") as f:
            f.truncate(DISK)
            for pat, off in self.log:
                f.seek(off)
                f.write(bytes([pat]) * CLUSTER)


def compare(a, fa, b, fb):
    """qemu-img compare: @a and @b read the same."""
    p = subprocess.run(["qemu-img", "compare", "-f", fa, "-F", fb, a, b],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def left(c, job):
    j = job_info(c, job)
    return j["len"] - j["offset"]


def watch(c, secs):
    """For @secs, what is left to copy every 0.2 s, until READY (then
    True)."""
    seen = []
    deadline = time.time() + secs
    while time.time() < deadline:
        seen.append(left(c, "m"))
        try:
            until_event(c, "BLOCK_JOB_READY", timeout=0.2)
        except TimeoutError:
            continue
        return True, seen
    return False, seen


def start_qmpd(src, env_log=True):
    env = dict(os.environ, QMPD_LOG="info") if env_log else None
    return Qmpd(["-M", "none", "-drive",
                 "file=%s,if=none,id=drive0,format=qcow2" % src], env=env)


class NotOutpaced(Exception):
    """The guest writer was too slow for the job's speed limit (a loaded
    machine): args[0] is what the next attempt needs to go slower."""


def job_speed(w, slowest=0):
    """A speed limit the writer outpaces: at it, the whole disk takes
    four of its rounds as measured so far (or @slowest s, a round of an
    earlier attempt) -- less the first buffer, which the limit lets
    through at once; SPEED at most."""
    worst = max(w.rounds + [slowest])
    return min(SPEED, int((DISK - BUF) / (4 * worst)))


def check_outpaced(w, speed, error):
    """The test's assertions failed with @error: that is a failure if
    the writer's rounds were short enough that no copy at @speed can
    catch up (under half the time the whole disk takes), else
    NotOutpaced."""
    worst = max(w.rounds)
    if worst * 2 <= (DISK - BUF) / speed:
        raise error
    raise NotOutpaced(worst) from error


def retried_slower(fn):
    """fn(dir, hint) runs again in a new directory while it raises
    NotOutpaced(hint), three times in all; then the test fails."""
    def wrapper(d):
        hint = None
        for attempt in range(3):
            sub = os.path.join(d, "attempt%d" % attempt)
            os.mkdir(sub)
            try:
                return fn(sub, hint)
            except NotOutpaced as e:
                print("# attempt %d: the guest writer was too slow for the "
                      "job (%r: %s); once more, slower"
                      % (attempt, e.args[0], e.__cause__))
                hint = e.args[0]
        raise AssertionError("the guest writer never outpaced the job "
                             "(last: %r)" % hint)
    wrapper.__name__ = fn.__name__
    return wrapper


@with_dir("qmpd-converge-")
@retried_slower
def test_background_does_not_converge(d, slowest):
    """Without the extension a background mirror slower than the guest
    does not get ready: what is left to copy stays up."""
    src = os.path.join(d, "src.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    with start_qmpd(src) as q:
        c = q.connect()
        w = GuestWriter(q)
        w.one_round()
        speed = job_speed(w, slowest or 0)
        w.start()
        try:
            c.cmd("drive-mirror", device="drive0", sync="full",
                  target=os.path.join(d, "t.qcow2"), speed=speed,
                  **{"job-id": "m", "buf-size": BUF})
            ready, seen = watch(c, NO_READY_S)
        finally:
            w.finish()
        try:
            assert not ready, "READY under the writer: %r" % seen
            assert not job_info(c, "m")["ready"]
            # each round dirties the whole disk again; between two rounds
            # the copy gets back at most a buffer and speed * round of it
            assert min(seen[len(seen) // 2:]) >= DISK // 4, seen
        except AssertionError as e:
            check_outpaced(w, speed, e)
        assert SWITCH_LOG not in q.stderr_text()
        c.cmd("block-job-cancel", device="m")
        evs = until_status(c, "m", "null")
        assert "BLOCK_JOB_CANCELLED" in names(evs), names(evs)
        c.cmd("quit")
        q.wait()
    check_clean(src)


@with_dir("qmpd-converge-")
def test_ready_counts_under_writes(d):
    """A background mirror that keeps up with a slow writer: READY's
    offset equals its len (the point the flush made durable, as QEMU
    reports it) though the guest writes during the flush; the writes are
    counted again just after it. Several jobs, to catch the window."""
    src = os.path.join(d, "src.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    with start_qmpd(src) as q:
        c = q.connect()
        w = GuestWriter(q)
        w.pause = 0.002
        w.start()
        try:
            for i in range(4):
                t = os.path.join(d, "t%d.qcow2" % i)
                c.cmd("drive-mirror", device="drive0", sync="full",
                      target=t, **{"job-id": "m"})
                evs = until_event(c, "BLOCK_JOB_READY", timeout=60)
                ready = evs[-1]["data"]
                assert ready["offset"] == ready["len"], ready
                c.cmd("block-job-cancel", device="m")
                evs = until_status(c, "m", "null", timeout=60)
                assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        finally:
            w.finish()
        c.cmd("quit")
        q.wait()
    check_clean(src)


@with_dir("qmpd-converge-")
@retried_slower
def test_auto_write_blocking_converges(d, slowest):
    """With the extension the same job switches to write-blocking, gets
    ready, and completes under the writer; the target then holds exactly
    what the guest wrote."""
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    expect = os.path.join(d, "expect.raw")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    with start_qmpd(src) as q:
        c = q.connect()
        w = GuestWriter(q)
        w.one_round()
        speed = job_speed(w, slowest or 0)
        w.start()
        try:
            t0 = time.time()
            c.cmd("drive-mirror", device="drive0", sync="full", target=t,
                  speed=speed, **{"job-id": "m", "buf-size": BUF,
                                  AUTO_WB: True})
            evs = until_event(c, "BLOCK_JOB_READY", timeout=90)
            ready_s = time.time() - t0
            assert names(evs)[-2:] == ["ready", "BLOCK_JOB_READY"], evs
            try:
                assert SWITCH_LOG in q.stderr_text(), q.stderr_text()
            except AssertionError as e:
                check_outpaced(w, speed, e)
            # ready in write-blocking mode: a round lands on both
            # sides, then the switch to the target, writer running
            w.wait_rounds(1)
            c.cmd("block-job-complete", device="m")
            evs = until_status(c, "m", "null", timeout=60)
            assert names(evs) == ["waiting", "pending",
                                  "BLOCK_JOB_COMPLETED", "concluded",
                                  "null"], names(evs)
            done = evs[2]["data"]
            assert "error" not in done, done
            assert inserted(c)["file"] == t
            w.wait_rounds(2)
        finally:
            w.finish()
        print("# ready after %.1f s at %d KiB/s; writer rounds up to %.2f s, "
              "%d writes" % (ready_s, speed // KiB, max(w.rounds), len(w.log)))
        print("# " + [ln for ln in q.stderr_text().splitlines()
                      if SWITCH_LOG in ln][0])
        hmp_io(c, "aio_flush")
        c.cmd("quit")
        q.wait()
    w.replay(expect)
    same_content(t, expect)
    check_clean(t)
    check_clean(src)


class PacedWriter(Writer):
    """64 KiB writes at pseudo-random clusters of a disk of @size, at
    most @rate bytes/s, until stopped."""

    def __init__(self, q, size, rate):
        super().__init__()
        self.c = q.connect()
        self.n = size // CLUSTER
        self.rate = rate
        self.chunk = CLUSTER    # bytes per write, at a cluster's start
        self.written = 0
        self.start_time = None

    def achieved(self):
        """The rate it wrote at so far, bytes/s."""
        return self.written / max(time.time() - self.start_time, 1e-3)

    def run(self):
        i = 0
        start = self.start_time = time.time()
        try:
            while not self.stop.is_set():
                ahead = start + self.written / self.rate - time.time()
                if ahead > 0:
                    time.sleep(ahead)
                off = (i * 7919) % self.n * CLUSTER
                hmp_io(self.c, "aio_write -q -P %d %d %d"
                       % (i % 250 + 1, off, self.chunk))
                self.written += self.chunk
                i += 1
            hmp_io(self.c, "aio_flush")
        except Exception as e:          # reported by finish()
            self.error = e


@with_dir("qmpd-converge-")
@retried_slower
def test_auto_write_blocking_guest_outpaces(d, slow_rate):
    """A guest that writes faster than the job copies, at random over a
    disk that is all dirty: the count still falls (most writes land on
    what is dirty already), so no stall is seen, but the job switches
    once the guest has out-written it for two 1 s windows; READY and the
    switch to the target follow, with the target equal to the source.
    The job copies at 4 MiB/s, or at 2/3 of the rate a guest writer
    too slow for that achieved (an earlier attempt's)."""
    size = 64 * MiB
    speed = 4 * MiB if slow_rate is None else int(slow_rate * 2 / 3)
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(size))
    qemu_io(src, "write -q -P 9 0 %d" % size)
    with start_qmpd(src) as q:
        c = q.connect()
        # 6 MiB/s against a copy of 4: the guest wins, but not by much
        w = PacedWriter(q, size, 6 * MiB)
        w.start()
        try:
            c.cmd("drive-mirror", device="drive0", sync="full", target=t,
                  speed=speed, **{"job-id": "m", "buf-size": MiB,
                                  AUTO_WB: True})
            until_event(c, "BLOCK_JOB_READY", timeout=120)
            rate = w.achieved()
        finally:
            w.finish()
        log = q.stderr_text()
        try:
            assert "the guest wrote faster than the job copied: " + \
                SWITCH_LOG in log, log
        except AssertionError as e:
            # the guest did not out-write the job by a fifth (it wrote
            # more slowly than paced: a loaded machine)
            if rate < speed * 1.2:
                raise NotOutpaced(rate) from e
            raise
        c.cmd("block-job-complete", device="m")
        evs = until_status(c, "m", "null", timeout=60)
        assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        assert inserted(c)["file"] == t
        c.cmd("quit")
        q.wait()
    compare(src, "qcow2", t, "qcow2")
    check_clean(t)
    check_clean(src)


@with_dir("qmpd-converge-")
def test_auto_write_blocking_no_false_switch(d):
    """A job that converges in steps far apart, a 1 MiB buffer (one
    request) every 2 s under its speed limit, does not switch: 20
    samples without a new lowest between two steps, but only one
    buffer copied.  (blockdev-mirror takes the argument as well.)"""
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    img("create", "-q", "-f", "qcow2", t, str(DISK))
    qemu_io(src, "write -q -P 7 0 4M")
    with start_qmpd(src) as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="qcow2", **{
            "node-name": "t", "file": {"driver": "file", "filename": t}})
        c.cmd("blockdev-mirror", device="drive0", sync="full", target="t",
              speed=512 * KiB, **{"job-id": "m", "buf-size": MiB,
                                  AUTO_WB: True})
        until_event(c, "BLOCK_JOB_READY", timeout=60)
        c.cmd("block-job-cancel", device="m")
        evs = until_status(c, "m", "null")
        assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        assert SWITCH_LOG not in q.stderr_text(), q.stderr_text()
        c.cmd("quit")
        q.wait()
    compare(src, "qcow2", t, "qcow2")
    check_clean(t)


@with_dir("qmpd-converge-")
def test_auto_write_blocking_slow_job_light_guest(d):
    """A job under a speed limit that copies a buffer every 4 s, and a
    guest that writes 4 KiB twice a second: between two bursts the job
    copies nothing while the guest writes, but over the bursts the guest
    writes far less than the job copies, so no switch; READY comes."""
    src = os.path.join(d, "src.qcow2")
    t = os.path.join(d, "t.qcow2")
    img("create", "-q", "-f", "qcow2", src, str(DISK))
    qemu_io(src, "write -q -P 7 0 2M")
    with start_qmpd(src) as q:
        c = q.connect()
        w = PacedWriter(q, 2 * MiB, 8 * KiB)
        w.chunk = 4 * KiB
        w.start()
        try:
            c.cmd("drive-mirror", device="drive0", sync="full", target=t,
                  speed=256 * KiB, **{"job-id": "m", "buf-size": MiB,
                                      AUTO_WB: True})
            until_event(c, "BLOCK_JOB_READY", timeout=60)
        finally:
            w.finish()
        assert w.written >= 16 * KiB, w.written
        assert SWITCH_LOG not in q.stderr_text(), q.stderr_text()
        c.cmd("block-job-complete", device="m")
        evs = until_status(c, "m", "null")
        assert "BLOCK_JOB_COMPLETED" in names(evs), names(evs)
        c.cmd("quit")
        q.wait()
    compare(src, "qcow2", t, "qcow2")
    check_clean(t)


# ---- ENOSPC on a tiny tmpfs ---------------------------------------------

class Tmpfs:
    """A tmpfs of @size bytes on a new directory; unmounted by close()."""

    def __init__(self, parent, size):
        if not shutil.which("mount") or not shutil.which("umount"):
            raise Skip("mount or umount not installed", NEED_MOUNT)
        self.dir = os.path.join(parent, "tmpfs")
        os.mkdir(self.dir)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size,
                            "tmpfs", self.dir], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise Skip("cannot mount a tmpfs here (%s)"
                       % (p.stderr.strip() or "mount failed"), NEED_MOUNT)
        self.mounted = True

    def resize(self, size):
        subprocess.run(["mount", "-o", "remount,size=%d" % size, self.dir],
                       check=True)

    def close(self):
        if self.mounted:
            self.mounted = False
            if subprocess.run(["umount", self.dir]).returncode != 0:
                # never leave it mounted: detach it once it is unused
                subprocess.run(["umount", "-l", self.dir], check=True)


def enospc_setup(d):
    """An 8 MiB source full of data; a tmpfs of 2 MiB for its target."""
    src = os.path.join(d, "src.qcow2")
    img("create", "-q", "-f", "qcow2", src, "8M")
    qemu_io(src, "write -q -P 0x3c 0 3M", "write -q -P 0x3d 3M 5M")
    return src, Tmpfs(d, 2 * MiB)


def enospc_stop(d, fmt, policy):
    src, fs = enospc_setup(d)
    t = os.path.join(fs.dir, "t." + fmt)
    try:
        with start_qmpd(src, env_log=False) as q:
            c = q.connect()
            # the default cache mode: tmpfs refuses O_DIRECT
            c.cmd("drive-mirror", device="drive0", sync="full", target=t,
                  format=fmt, **{"job-id": "m", "on-target-error": policy})
            evs = until_status(c, "m", "paused")
            errs = [e["data"] for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
            assert errs and all(e == {"device": "m", "operation": "write",
                                      "action": "stop"} for e in errs), evs
            j = job_info(c, "m")
            assert j["paused"] and j["io-status"] == "nospace", j
            assert not j["ready"] and j["offset"] < j["len"], j
            # the guest goes on meanwhile
            hmp_io(c, "write -P 0x3e 1M 64k")
            fs.resize(32 * MiB)
            c.cmd("block-job-resume", device="m")
            until_event(c, "BLOCK_JOB_READY")
            assert job_info(c, "m")["io-status"] == "ok"
            c.cmd("block-job-complete", device="m")
            evs = until_status(c, "m", "null")
            done = [e["data"] for e in evs
                    if e["event"] == "BLOCK_JOB_COMPLETED"]
            assert done and "error" not in done[0], evs
            assert inserted(c)["file"] == t
            hmp_io(c, "aio_flush")
            c.cmd("quit")
            q.wait()
        qemu_io(src, "read -q -P 0x3e 1M 64k")
        compare(src, "qcow2", t, fmt)
        if fmt == "qcow2":
            check_clean(t)
        check_clean(src)
    finally:
        fs.close()


@with_dir("qmpd-converge-")
def test_enospc_policy_enospc(d):
    """on-target-error enospc: raw and qcow2 targets out of space."""
    for fmt in ("raw", "qcow2"):
        sub = os.path.join(d, fmt)
        os.mkdir(sub)
        enospc_stop(sub, fmt, "enospc")


@with_dir("qmpd-converge-")
def test_enospc_policy_stop(d):
    """on-target-error stop: the same pause, the same io-status."""
    enospc_stop(d, "raw", "stop")


@with_dir("qmpd-converge-")
def test_enospc_report(d):
    """on-target-error report: the job fails with the ENOSPC error and
    the device keeps its source."""
    src, fs = enospc_setup(d)
    t = os.path.join(fs.dir, "t.raw")
    try:
        with start_qmpd(src, env_log=False) as q:
            c = q.connect()
            c.cmd("drive-mirror", device="drive0", sync="full", target=t,
                  format="raw", **{"job-id": "m",
                                   "on-target-error": "report"})
            evs = until_status(c, "m", "null")
            errs = [e["data"] for e in evs if e["event"] == "BLOCK_JOB_ERROR"]
            assert errs and errs[0] == {"device": "m", "operation": "write",
                                        "action": "report"}, evs
            done = [e["data"] for e in evs
                    if e["event"] == "BLOCK_JOB_COMPLETED"]
            assert done[0]["error"] == "No space left on device", done
            assert names(evs)[-4:] == ["aborting", "BLOCK_JOB_COMPLETED",
                                       "concluded", "null"], names(evs)
            assert inserted(c)["file"] == src
            c.cmd("quit")
            q.wait()
        check_clean(src)
    finally:
        fs.close()


if __name__ == "__main__":
    run([test_background_does_not_converge,
         test_ready_counts_under_writes,
         test_auto_write_blocking_converges,
         test_auto_write_blocking_guest_outpaces,
         test_auto_write_blocking_no_false_switch,
         test_auto_write_blocking_slow_job_light_guest,
         test_enospc_policy_enospc, test_enospc_policy_stop,
         test_enospc_report])
