#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt 9.0 run without a daemon, for the tests that drive qmpd (and
QEMU, the oracle) through virsh: virsh -c 'qemu:///embed?root=DIR' runs
the QEMU driver in the virsh process with all its state under DIR.  As
root, virsh runs as nobody (setpriv), since the privileged driver wants
a libvirt-qemu user that only libvirt-daemon-system creates; the domain
is type 'qemu' (no KVM).  Each virsh command is its own process, which
reconnects to the running domain.

LIBVIRT_TIMES=FILE appends the time from virsh create to a running
domain, per emulator, to FILE (make bench-libvirt).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import img  # noqa: E402
from qmpd import Skip, binary, sanitizer_report  # noqa: E402

NOBODY = 65534
DEADLINE = 120


def need_virsh():
    for prog in ("virsh", "virtlogd"):
        if not shutil.which(prog) and not os.path.exists("/usr/sbin/" + prog):
            raise Skip("%s not installed (apt-get install libvirt-clients "
                       "libvirt-daemon-driver-qemu libvirt-daemon)" % prog,
                       "virsh")
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        raise Skip("setpriv not installed: cannot run virsh unprivileged")


class Libvirt:
    """An embedded libvirt QEMU driver rooted in a temporary directory."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="qmpd-libvirt-")
        self.root = os.path.join(self.top, "root")
        self.log = os.path.join(self.top, "libvirt.log")
        for d in ("root", "home", "run", "img"):
            os.mkdir(os.path.join(self.top, d))
        os.chmod(self.top, 0o755)
        self.as_nobody = os.geteuid() == 0
        if self.as_nobody:
            for dirpath, dirs, files in os.walk(self.top):
                os.chown(dirpath, NOBODY, NOBODY)

    def env(self):
        env = dict(os.environ)
        env.update({
            "HOME": os.path.join(self.top, "home"),
            "XDG_RUNTIME_DIR": os.path.join(self.top, "run"),
            "LIBVIRT_LOG_FILTERS": "1:qemu.qemu_monitor "
                                   "1:qemu.qemu_capabilities "
                                   "1:qemu.qemu_process 4:*",
            "LIBVIRT_LOG_OUTPUTS": "1:file:%s" % self.log,
        })
        return env

    def virsh(self, *cmd, ok=True):
        """Run one virsh command line (several commands: ';' between
        them); return (status, stdout, stderr)."""
        argv = ["virsh", "-c", "qemu:///embed?root=%s" % self.root]
        argv += list(cmd)
        if self.as_nobody:
            argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups"] + argv
        p = subprocess.run(argv, capture_output=True, text=True,
                           env=self.env(), timeout=DEADLINE,
                           stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        return p.returncode, p.stdout, p.stderr

    def qmpd(self):
        """qmpd's path as the domain's emulator: a copy in our directory
        where nobody cannot reach the build tree (a CI's private
        temporary directory)."""
        if not self.as_nobody or subprocess.run(
                ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                 "--clear-groups", "test", "-x", binary()]).returncode == 0:
            return binary()
        path = os.path.join(self.top, "qmpd")
        shutil.copy(binary(), path)
        os.chown(path, NOBODY, NOBODY)
        return path

    def out(self, *cmd):
        return self.virsh(*cmd)[1]

    def chain(self):
        """base <- mid <- top in the image directory; the top's path."""
        d = os.path.join(self.top, "img")
        img("create", "-q", "-f", "qcow2", os.path.join(d, "base.qcow2"),
            "64M")
        img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            os.path.join(d, "mid.qcow2"))
        img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2",
            os.path.join(d, "top.qcow2"))
        if self.as_nobody:
            for f in os.listdir(d):
                os.chown(os.path.join(d, f), NOBODY, NOBODY)
        return os.path.join(d, "top.qcow2")

    def domain_xml(self, emulator, top):
        path = os.path.join(self.top, "d.xml")
        with open(path, "w") as f:
            f.write("<domain type='qemu'><name>d</name>"
                    "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                    "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
                    "<devices><emulator>%s</emulator>"
                    "<disk type='file' device='disk'>"
                    "<driver name='qemu' type='qcow2'/>"
                    "<source file='%s'/><target dev='vda' bus='virtio'/>"
                    "</disk><memballoon model='none'/></devices></domain>"
                    % (emulator, top))
        return path

    def domain_log(self):
        path = os.path.join(self.root, "log", "qemu", "d.log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()

    def emulators(self):
        """The pids of processes whose command line names our root."""
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if self.root.encode() in cmdline and b"virsh" not in cmdline:
                pids.append(int(p))
        return pids

    def wait_no_emulator(self):
        deadline = time.time() + DEADLINE
        while self.emulators():
            assert time.time() < deadline, "emulator still running"
            time.sleep(0.05)

    def close(self):
        for pid in self.emulators():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait_no_emulator()
        report = sanitizer_report(self.domain_log())
        shutil.rmtree(self.top)
        assert report is None, "qmpd under libvirt:\n%s" % report

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def monitor_commands(log):
    """The QMP commands libvirt sent, per monitor connection, in order:
    (execute, arguments) lists."""
    sessions = []
    with open(log, errors="replace") as f:
        for line in f:
            m = re.search(r"QEMU_MONITOR_IO_WRITE: mon=(\S+) buf=(\{.*\})",
                          line)
            if not m:
                continue
            msg = json.loads(m.group(2))
            if msg["execute"] == "qmp_capabilities":
                sessions.append([])
            sessions[-1].append((msg["execute"], msg.get("arguments", {})))
    return sessions


def start_sequence(lv):
    """What libvirt sent from its connection to the new domain up to
    cont: the second session in a fresh root (the probe is the first).
    qom-get of the vCPU's properties is left out: QEMU's CPU has
    hundreds, qmpd's the few it models."""
    seq = monitor_commands(lv.log)[1]
    return [(c, a.get("path")) for c, a in seq if c != "qom-get"]


def create(lv, xml):
    t = time.monotonic()
    out = lv.out("create", xml)
    took = time.monotonic() - t
    assert "Domain 'd' created" in out, out
    assert lv.out("domstate", "d").strip() == "running"
    times = os.environ.get("LIBVIRT_TIMES")
    if times:
        with open(times, "a") as f:
            f.write("%s %.3f\n" % ("QEMU" if "qemu" in lv.emulator
                                     else "qmpd", took))
    return took


def destroy(lv):
    # a job first, so that virsh's reconnect to the domain is done before
    # destroy kills it (else libvirt's reconnect thread and destroy race)
    out = lv.out("qemu-monitor-command d --hmp 'info status'; destroy d")
    assert "Domain 'd' destroyed" in out, out
    assert lv.out("list", "--all", "--name").strip() == ""
    lv.wait_no_emulator()


# -- block, snapshot and save flows (test_libvirt_block.py, bench) --

from images import qemu_io  # noqa: E402

# what each reconnect of a new virsh process to the running domain
# sends before the command it runs; the last one ends it
RECONNECT_END = ("qom-list", {"path": "/machine/peripheral"})
# what virsh --wait and --verbose poll: how often depends on timing
POLLS = ("query-block-jobs", "query-migrate")


def chain_with_data(lv):
    """lv.chain() with data in each layer (base 0-32M, mid 16-32M, top
    24-28M), and a raw image of what the guest reads from it; (top's
    path, the raw image's path)."""
    top = lv.chain()
    d = os.path.dirname(top)
    for name, pattern, offset, length in (("base", 1, "0", "32M"),
                                          ("mid", 2, "16M", "16M"),
                                          ("top", 3, "24M", "4M")):
        qemu_io(os.path.join(d, name + ".qcow2"),
                "write -P %d %s %s" % (pattern, offset, length))
    ref = os.path.join(lv.top, "ref.raw")
    img("convert", "-O", "raw", top, ref)
    return top, ref


def session_count(lv):
    return len(monitor_commands(lv.log)) if os.path.exists(lv.log) else 0


def flow_commands(lv, since, polls=False):
    """What libvirt sent from monitor session @since on, as (execute,
    arguments) with the root directory written DIR: a reconnect's
    queries are left out (a session that ends before its last one sent
    nothing else), and so are the polls of POLLS unless @polls."""
    seqs = monitor_commands(lv.log)[since:]
    out = []
    for seq in seqs:
        if len(seq) > 2 and seq[2][0] == "query-status":
            if RECONNECT_END not in seq:
                continue
            seq = seq[seq.index(RECONNECT_END) + 1:]
        for c, a in seq:
            if (c in POLLS and not polls) or c == "qom-get":
                continue
            # the descriptor number of "fd:N" is libvirt's own choice
            a = re.sub(r'"fd:\d+"', '"fd:N"', json.dumps(a))
            out.append((c, json.loads(a.replace(lv.top, "DIR"))))
    return out


def flow(lv, name, *cmd, ok=True, polls=False):
    """Run the virsh flow @cmd; (virsh's status, its output with
    progress lines split at '\\r', the QMP commands it sent, POLLS
    too if @polls: a command that is one poll).
    LIBVIRT_FLOW_TIMES=FILE appends 'EMULATOR NAME SECONDS' to FILE
    (make bench-libvirt)."""
    since = session_count(lv)
    t = time.monotonic()
    rc, out, err = lv.virsh(*cmd, ok=ok)
    took = time.monotonic() - t
    times = os.environ.get("LIBVIRT_FLOW_TIMES")
    if times:
        with open(times, "a") as f:
            f.write("%s %s %.3f\n" % ("QEMU" if "qemu" in lv.emulator
                                       else "qmpd", name, took))
    return (rc, out.replace("\r", "\n") + err,
            flow_commands(lv, since, polls))


def chain_of(path):
    """The files of @path's backing chain, top first (qemu-img info
    --backing-chain, shared: the domain may hold them)."""
    p = subprocess.run(["qemu-img", "info", "-U", "--backing-chain",
                        "--output=json", path], capture_output=True,
                       text=True, check=True)
    return [os.path.basename(i["filename"]) for i in json.loads(p.stdout)]
