# SPDX-License-Identifier: GPL-2.0-or-later
"""Test harness: start a real qmpd and talk to it over its sockets.

Standard library only.  A test creates Qmpd(...), calls cmd() / event(),
and ends every process it starts (the class is a context manager).
Every successful reply is checked against the command's return type
from query-qmp-schema, and the names of the commands used are appended
to $QMPD_COVERAGE_FILE when set, so the suite can report schema commands
no test uses.

How qmpd ended is part of every test: Qmpd.close() (and run_qmpd() for
a qmpd run to its end) fails the test when qmpd exited with another
status than the test expects (0 after quit or SIGTERM, on which qmpd
flushes and exits; a test that kills it says so with kill9()) or when
its stderr holds a sanitizer report (ASan, LeakSanitizer, UBSan).

Skips: a test that cannot run here raises Skip(why, need), @need naming
what is missing (NEED_QEMU, NEED_QEMU_UTILS, NEED_MOUNT, or a program
such as "mkfs.xfs").  When
$QMPD_MUST_RUN lists the needs this machine meets (tests/run-all.sh sets
it), a skip for one of those, or a skip that names no need, is a
failure: in CI nothing that can run here may skip.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77

# The needs a Skip names; QMPD_MUST_RUN is a space-separated list of them
NEED_QEMU = "qemu"              # qemu-system-x86_64, the reference
NEED_QEMU_UTILS = "qemu-utils"  # qemu-img and qemu-io
NEED_MOUNT = "mount"            # mounting a filesystem (root)

# The first line of a report from ASan, LeakSanitizer or UBSan
SANITIZER_REPORT = re.compile(r"^.*(ERROR: [A-Za-z]+Sanitizer|"
                              r"SUMMARY: [A-Za-z]+Sanitizer|"
                              r"runtime error: ).*$", re.M)

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("QMPD_BUILDDIR", os.path.join(HERE, "..", ".."))


def binary():
    return os.environ.get("QMPD", os.path.join(BUILD, "qmpd"))


def qemu_binary():
    q = os.environ.get("QEMU_BIN") or shutil.which("qemu-system-x86_64")
    return q if q and os.access(q, os.X_OK) else None


def need_qemu():
    """The reference QEMU's path; Skip (NEED_QEMU) without it."""
    q = qemu_binary()
    if not q:
        raise Skip("qemu-system-x86_64 not installed", NEED_QEMU)
    return q


def need_qemu_utils():
    for t in ("qemu-img", "qemu-io"):
        if not shutil.which(t):
            raise Skip("%s not installed" % t, NEED_QEMU_UTILS)


def sanitizer_report(text):
    """The sanitizer report in @text (from its first line on), or None."""
    m = SANITIZER_REPORT.search(text)
    return text[m.start():m.start() + 6000] if m else None


def check_ended(what, status, expect, stderr):
    """Assert that process @what ended with @status == @expect and left
    no sanitizer report in @stderr (text)."""
    report = sanitizer_report(stderr)
    assert report is None, "%s: sanitizer report:\n%s" % (what, report)
    assert status == expect, "%s: exit status %r, expected %r; stderr:\n%s" \
        % (what, status, expect, stderr[-3000:])


def sanitizer_env(directory, env=None):
    """@env (default: ours) with sanitizer reports going to files in
    @directory, for a qmpd whose stderr nobody sees (-daemonize); read
    them with sanitizer_logs()."""
    env = dict(os.environ if env is None else env)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        opts = [o for o in env.get(var, "").split(":") if o]
        env[var] = ":".join(opts + ["log_path=%s" %
                                    os.path.join(directory, "sanitizer")])
    return env


def sanitizer_logs(directory):
    """The reports sanitizer_env() made processes write, as one text."""
    out = ""
    for n in sorted(os.listdir(directory)):
        if n.startswith("sanitizer."):
            with open(os.path.join(directory, n), errors="replace") as f:
                out += f.read()
    return out


def run_qmpd(args, status=0, timeout=30, **kw):
    """subprocess.run of qmpd with @args to its end (stdin /dev/null
    unless input= is given, output captured): the test fails unless it
    exits @status without a sanitizer report.  Returns the
    CompletedProcess."""
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run([binary()] + list(args), capture_output=True,
                       timeout=timeout, **kw)
    err = p.stderr if isinstance(p.stderr, str) else \
        p.stderr.decode(errors="replace")
    check_ended("qmpd %s" % " ".join(args), p.returncode, status, err)
    return p


class QmpError(Exception):
    def __init__(self, reply):
        super().__init__(reply["error"]["desc"])
        self.cls = reply["error"]["class"]
        self.desc = reply["error"]["desc"]


class SchemaChecker:
    """Structural check of a value against a SchemaInfo type."""

    def __init__(self, schema):
        self.types = {e["name"]: e for e in schema}

    def check(self, tname, v, path="return"):
        t = self.types[tname]
        mt = t["meta-type"]
        if mt == "builtin":
            jt = t["json-type"]
            ok = {"string": lambda: isinstance(v, str),
                  "int": lambda: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda: isinstance(v, (int, float))
                  and not isinstance(v, bool),
                  "boolean": lambda: isinstance(v, bool),
                  "null": lambda: v is None,
                  "value": lambda: True}[jt]()
            assert ok, "%s: %r is not %s" % (path, v, jt)
        elif mt == "enum":
            assert v in t["values"], "%s: %r not in enum" % (path, v)
        elif mt == "array":
            assert isinstance(v, list), "%s: not an array" % path
            for i, e in enumerate(v):
                self.check(t["element-type"], e, "%s[%d]" % (path, i))
        elif mt == "object":
            assert isinstance(v, dict), "%s: not an object" % path
            members = list(t["members"])
            if "tag" in t:
                for var in t["variants"]:
                    if var["case"] == v.get(t["tag"]):
                        members += self.types[var["type"]]["members"]
            names = {m["name"] for m in members}
            for m in members:
                if m["name"] in v:
                    self.check(m["type"], v[m["name"]],
                               "%s.%s" % (path, m["name"]))
                else:
                    assert "default" in m, "%s: missing %s" % (path, m["name"])
            extra = set(v) - names
            assert not extra, "%s: unexpected %s" % (path, extra)
        elif mt == "alternate":
            for m in t["members"]:
                try:
                    self.check(m["type"], v, path)
                    return
                except AssertionError:
                    pass
            raise AssertionError("%s: no alternate matches %r" % (path, v))


class QmpClient:
    """One QMP connection."""

    def __init__(self, path=None, sock=None, negotiate=True, timeout=30):
        self.sock = sock or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if path:
            self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.lines = []         # every raw line received, for tests
        # QEMU 7.2, connected to while it starts, may send an event (RESUME)
        # before its greeting: then the greeting was taken for the reply
        # to qmp_capabilities ("KeyError: 'return'" on a loaded machine)
        self.greeting = self.recv()
        while "event" in self.greeting:
            self.events.append(self.greeting)
            self.greeting = self.recv()
        if negotiate:
            self.cmd("qmp_capabilities")

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv_line(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        self.lines.append(line + b"\n")
        return line + b"\n"

    def recv(self, timeout=None):
        return json.loads(self.recv_line(timeout))

    def reply(self, timeout=None):
        """The next non-event message; events are kept for event()."""
        while True:
            m = self.recv(timeout)
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def execute(self, name, args=None, id=None, raw=False):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if id is not None:
            req["id"] = id
        self.send_raw(json.dumps(req))
        return self.reply()

    def cmd(self, name, **args):
        """Run a command; return its result or raise QmpError."""
        r = self.execute(name, args or None)
        if "error" in r:
            raise QmpError(r)
        Qmpd.note_command(name, r["return"])
        return r["return"]

    def error(self, name, **args):
        """Run a command that must fail; return (class, desc)."""
        r = self.execute(name, args or None)
        assert "error" in r, "%s succeeded: %r" % (name, r)
        return r["error"]["class"], r["error"]["desc"]

    def event(self, name, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no %s event" % name)
            m = self.recv(left)
            if "event" in m:
                self.events.append(m)
            else:
                raise AssertionError("unexpected reply %r" % m)


def wait_mid_copy(c, job, timeout=30):
    """Poll query-block-jobs on client @c until block job @job runs and
    has done part of its work (0 < offset < len, status running); its
    entry.  Fails if the job gets past that first."""
    deadline = time.time() + timeout
    while True:
        j = [j for j in c.cmd("query-block-jobs") if j["device"] == job]
        assert j, "job %s is gone" % job
        j = j[0]
        if j["status"] == "running" and 0 < j["offset"] < j["len"]:
            return j
        assert j["offset"] < j["len"] or j["len"] == 0, \
            "job %s is past the middle of its copy: %r" % (job, j)
        assert time.time() < deadline, "job %s did not start: %r" % (job, j)
        time.sleep(0.01)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, cond, timeout=60):
    """Poll @cond() every 20 ms until it returns something true, and
    return that; fail naming @what after @timeout seconds."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def traced_env(env=None):
    """@env (default: ours) for a qmpd run under ptrace (strace, gdb):
    LeakSanitizer cannot work there and would abort at exit; the same
    paths run untraced elsewhere, with it."""
    env = dict(env if env is not None else os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


class Qmpd:
    """A qmpd process in its own temporary directory."""

    checker = None
    binary_path = None

    def __init__(self, args=(), qmp=True, env=None, stdin=None,
                 binary_path=None, wait=True, status=0, pass_fds=(),
                 prefix=()):
        """@binary_path: another binary (the reference QEMU), whose end
        is not checked, or qmpd's own; @status: the exit status the test expects of
        qmpd (see close()); @pass_fds: descriptors it inherits (fd:N);
        @prefix: a command that execs it (ip netns exec NS)."""
        self.dir = tempfile.mkdtemp(prefix="qmpd-test-")
        self.ours = binary_path in (None, binary())
        self.status = status
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.bin = binary_path or binary()
        # QMPD_WRAPPER (e.g. valgrind) runs our binary, never QEMU
        wrapper = os.environ.get("QMPD_WRAPPER", "").split() \
            if not binary_path else []
        self.args = list(prefix) + wrapper + [self.bin, "-nodefaults",
                                              "-display", "none"]
        if wrapper and os.path.basename(wrapper[0]) in ("strace", "gdb"):
            env = traced_env(env)
        if qmp:
            self.args += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.args += list(args)
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=stdin or subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=env, pass_fds=pass_fds)
        # qmpd prints qemu-io's output on stdout (as QEMU): keep reading
        # it, or a full pipe would block qmpd in write()
        self.stdout_data = bytearray()
        self.stdout_reader = threading.Thread(target=self._drain_stdout,
                                              daemon=True)
        self.stdout_reader.start()
        self.clients = []
        if qmp and wait:
            self.wait_for_path(self.qmp_path)

    def _drain_stdout(self):
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self.stdout_data += chunk

    def stdout_text(self):
        """What qmpd printed on stdout; complete once it has exited."""
        if self.proc.poll() is not None:
            self.stdout_reader.join(10)
        return self.stdout_data.decode(errors="replace")

    def wait_for_path(self, path, timeout=30):
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise RuntimeError("qmpd exited %d: %s" %
                                   (self.proc.returncode, self.stderr_text()))
            if time.time() > deadline:
                raise TimeoutError("qmpd did not create %s" % path)
            time.sleep(0.01)

    def stderr_text(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def connect(self, negotiate=True, path=None):
        # QEMU (as a reference binary) creates its socket file a moment
        # before it listens; qmpd renames it into place once listening
        deadline = time.time() + 30
        while True:
            try:
                c = QmpClient(path or self.qmp_path, negotiate=negotiate)
                break
            except ConnectionRefusedError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.01)
        self.clients.append(c)
        if Qmpd.checker is None and negotiate:
            Qmpd.checker = SchemaChecker(c.cmd("query-qmp-schema"))
        return c

    @classmethod
    def note_command(cls, name, ret):
        if cls.checker:
            cmd = cls.checker.types.get(name)
            if cmd:
                cls.checker.check(cmd["ret-type"], ret)
        cov = os.environ.get("QMPD_COVERAGE_FILE")
        if cov:
            with open(cov, "a") as f:
                f.write(name + "\n")

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def kill9(self):
        """kill -9 qmpd, for a test of what survives that; close() then
        expects that end."""
        self.status = -signal.SIGKILL
        self.proc.kill()
        self.proc.wait()

    def close(self):
        """End qmpd (SIGTERM if it still runs: it flushes and exits 0)
        and clean up; then fail if it ended otherwise than expected or
        reported a sanitizer error."""
        problem = None
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if self.ours:
                    problem = "%s did not exit within 60 s of SIGTERM" % \
                        self.bin
                else:
                    # the reference QEMU, hung at start-up on a loaded
                    # machine now and then: the caller's own error (a
                    # timeout, which it may retry) is the one to see
                    sys.stderr.write("# %s did not exit within 60 s of "
                                     "SIGTERM; killed\n" % self.bin)
        self.stdout_reader.join(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.ours and not problem:
            try:
                check_ended(" ".join(self.args), self.proc.returncode,
                            self.status, self.stderr_text())
            except AssertionError as e:
                problem = str(e)
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert problem is None, problem

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def must_run(skip):
    """Whether @skip is a failure here (see the module's comment)."""
    have = os.environ.get("QMPD_MUST_RUN")
    if have is None:
        return False
    return skip.need is None or skip.need in have.split()


def run(tests, needs=()):
    """Run test functions, each after the functions in @needs (such as
    need_qemu_utils); print a summary; exit 0, 1, or 77 if all skip."""
    failed = skipped = 0
    for t in tests:
        name = t.__name__
        try:
            for need in needs:
                need()
            t()
            print("ok - %s" % name)
        except Skip as e:
            if must_run(e):
                failed += 1
                print("FAIL - %s: skipped (%s), but it must run here "
                      "(QMPD_MUST_RUN=%s)" % (name, e,
                                              os.environ["QMPD_MUST_RUN"]))
                continue
            skipped += 1
            print("skip - %s: %s" % (name, e))
        except Exception:
            failed += 1
            import traceback
            print("FAIL - %s" % name)
            traceback.print_exc(file=sys.stdout)
    print("%d passed, %d failed, %d skipped" %
          (len(tests) - failed - skipped, failed, skipped))
    sys.stdout.flush()
    if failed:
        sys.exit(1)
    if skipped == len(tests):
        sys.exit(SKIP)
    sys.exit(0)


class Skip(Exception):
    """raise Skip(why, need): the test cannot run here for want of
    @need (NEED_*; None: for another reason, never one in CI)."""

    def __init__(self, why, need=None):
        super().__init__(why)
        self.need = need
