#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""virsh backup-begin against qmpd with libvirt 9.0's embedded driver
(virshlib.py), in pull mode: a full backup with a checkpoint and then an
incremental one from it (checkpoint-create by the backup's checkpoint
XML), each exported on the unix socket the backup XML names, read with
nbdcopy (and nbdinfo's qemu:dirty-bitmap:backup-vda for the incremental
one) while the guest writes, checked with virsh domjobinfo and
backup-dumpxml and ended by virsh domjobabort.  The copies are compared
with qemu-img against the disk as it was when each backup began (the
domain paused, its chain converted), and the first patched with only
the dirty extents of the second equals the disk at the second start.
Where qemu-system-x86_64 is installed the same flow runs against it and
libvirt must have sent both the same QMP commands (those that change
something).  Push mode is left out: with the embedded driver a job's
end is handled by whichever virsh process is connected when it comes,
and one that exits meanwhile leaves libvirt's backup job running for
ever (seen against QEMU and qmpd alike under load).  Skips (77)
without virsh, qemu-img or nbdcopy.
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import img, need_tools  # noqa: E402
from qmpd import NEED_QEMU_UTILS, Skip, need_qemu, run  # noqa: E402
from virshlib import (DEADLINE, Libvirt, create, destroy,  # noqa: E402
                      monitor_commands, need_virsh)


def need_nbd_tools():
    for t in ("nbdinfo", "nbdcopy"):
        if not shutil.which(t):
            raise Skip("%s not installed" % t, NEED_QEMU_UTILS)


def write(lv, cmd):
    """A guest write through the disk's device (as QEMU names it)."""
    out = lv.out("qemu-monitor-command", "d", "--hmp",
                 'qemu-io -d virtio-disk0/virtio-backend "%s"' % cmd)
    assert "fail" not in out.lower() and "error" not in out.lower(), out


def snapshot(lv, name):
    """The disk as the guest sees it now, as a raw file: the domain
    paused, qemu-img convert of its chain sharing the image."""
    assert "suspended" in lv.out("suspend", "d")
    write(lv, "flush")
    path = os.path.join(lv.top, "img", name)
    img("convert", "-U", "-f", "qcow2", "-O", "raw",
        os.path.join(lv.top, "img", "top.qcow2"), path)
    return path


def xml(lv, name, text):
    path = os.path.join(lv.top, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def compare(a, b, fa="raw", fb="qcow2"):
    p = subprocess.run(["qemu-img", "compare", "-f", fa, "-F", fb, a, b],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (a, b, p.stdout, p.stderr)


def begin(lv, sock, scratch, checkpoint, since=None):
    """virsh backup-begin in pull mode (export on unix socket @sock,
    @scratch the fleecing file), creating @checkpoint, incremental from
    @since if given; then the paused domain resumes."""
    b = xml(lv, "b.xml", "<domainbackup mode='pull'>%s"
            "<server transport='unix' socket='%s'/><disks>"
            "<disk name='vda' backup='yes' type='file'>"
            "<scratch file='%s'/></disk></disks></domainbackup>"
            % ("<incremental>%s</incremental>" % since if since else "",
               sock, scratch))
    c = xml(lv, "c.xml", "<domaincheckpoint><name>%s</name>"
            "</domaincheckpoint>" % checkpoint)
    assert "Backup started" in lv.out("backup-begin", "d", b, c)
    assert "resumed" in lv.out("resume", "d")


def abort(lv):
    """virsh domjobabort, the virsh process kept until libvirt has
    cleaned up after the job: with the embedded driver the job's end is
    handled by the virsh process connected when it comes, and one that
    exits meanwhile leaves libvirt's backup job running for ever (seen
    against QEMU and qmpd alike: job-dismiss and nbd-server-stop sent,
    the scratch's blockdev-del not).  The job-completed event comes
    before the scratch is deleted, so two monitor commands follow it,
    which wait for the domain's monitor behind that clean-up.  Then
    domjobinfo (a new process) shows no job."""
    rc, out, err = lv.virsh("domjobabort d; event d --event job-completed "
                            "--timeout 10; qemu-monitor-command d --hmp "
                            "'info status'; qemu-monitor-command d --hmp "
                            "'info status'", ok=False)
    assert rc == 0 or "event loop timed out" in out, (rc, out, err)
    info = lv.out("domjobinfo", "d")
    assert "Job type:         None" in info, info


def pull_flow(lv):
    """Pull backup over NBD (unix socket), full then incremental,
    ended by domjobabort."""
    d = os.path.join(lv.top, "img")
    sock = os.path.join(lv.top, "run", "nbd.sock")
    uri = "nbd+unix:///vda?socket=" + sock
    write(lv, "write -P 0x21 0 1M")
    before = snapshot(lv, "pull-before.raw")
    begin(lv, sock, os.path.join(d, "scratch1.qcow2"), "p1")
    info = lv.out("domjobinfo", "d")
    assert re.search(r"^Operation: +Backup", info, re.M), info
    assert "<scratch file='%s'/>" % os.path.join(d, "scratch1.qcow2") \
        in lv.out("backup-dumpxml", "d")
    write(lv, "write -P 0x22 0 64k")
    out = os.path.join(d, "pull-full.raw")
    subprocess.run(["nbdcopy", uri, out], check=True, timeout=DEADLINE)
    compare(before, out, fb="raw")
    abort(lv)

    write(lv, "write -P 0x23 30M 64k")
    second = snapshot(lv, "pull-second.raw")
    begin(lv, sock, os.path.join(d, "scratch2.qcow2"), "p2", since="p1")
    m = json.loads(subprocess.run(
        ["nbdinfo", "--json", "--map=qemu:dirty-bitmap:backup-vda", uri],
        check=True, capture_output=True, text=True,
        timeout=DEADLINE).stdout)
    dirty = [(e["offset"], e["length"]) for e in m if e["type"] & 1]
    # since p1: the guest's 0x22 at 0 and 0x23 at 30M, cluster-wide
    assert dirty == [(0, 65536), (30 << 20, 65536)], dirty
    inc = os.path.join(d, "pull-inc.raw")
    subprocess.run(["nbdcopy", uri, inc], check=True, timeout=DEADLINE)
    compare(second, inc, fb="raw")
    # the full pull backup patched with the dirty extents alone: the
    # disk at p2
    with open(out, "r+b") as f, open(inc, "rb") as g:
        for off, n in dirty:
            g.seek(off)
            f.seek(off)
            f.write(g.read(n))
    compare(second, out, fb="raw")
    abort(lv)
    assert lv.out("checkpoint-list", "d", "--name").split() == ["p1", "p2"]


def run_flows(emulator_of):
    """Both flows on a domain whose emulator is @emulator_of(lv); the
    QMP commands libvirt sent that change something, in order, with
    the temporary directory written $T."""
    with Libvirt() as lv:
        lv.emulator = emulator_of(lv)
        top = lv.chain()
        create(lv, lv.domain_xml(lv.emulator, top))
        pull_flow(lv)
        destroy(lv)
        sent = [(c, json.dumps(a, sort_keys=True).replace(lv.top, "$T"))
                for s in monitor_commands(lv.log)[1:] for c, a in s
                if not c.startswith(("query-", "qom-", "qmp_capabilities",
                                     "migrate-set-capabilities"))]
        return sent


def test_backups():
    """Pull backups, full and incremental, on qmpd."""
    need_virsh()
    need_tools()
    need_nbd_tools()
    run_flows(lambda lv: lv.qmpd())


def test_same_commands_as_qemu():
    """The same flows on QEMU 7.2: libvirt sends both the same
    commands."""
    need_virsh()
    need_tools()
    need_nbd_tools()
    qemu = need_qemu()
    theirs = run_flows(lambda lv: qemu)
    ours = run_flows(lambda lv: lv.qmpd())
    assert theirs == ours, "\n".join(
        "%-40s %s" % (t, o) for t, o in zip(theirs, ours) if t != o)


if __name__ == "__main__":
    run([test_backups, test_same_commands_as_qemu])
