#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""trace-event-get-state, trace-event-set-state, HMP trace-event and info
trace-events over qmpd's own trace points, and -trace: the replies and
HMP text are QEMU 7.2's (compared where it is installed; the trace
points compared are those both have), and an enabled point writes its
line on stderr as a job moves while a disabled one stays silent."""

import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from qmpd import Qmpd, qemu_binary, run  # noqa: E402


def hmp(line):
    return ("human-monitor-command", {"command-line": line})


STEPS = [
    ("trace-event-get-state", {"name": "job_state_transition"}),
    ("trace-event-get-state", {"name": "job_*"}),
    ("trace-event-get-state", {"name": "migrate_set_state"}),
    ("trace-event-get-state", {"name": "nosuch"}),
    ("trace-event-get-state", {"name": "nosuch*"}),
    ("trace-event-get-state", {"name": "job_state_transition", "vcpu": 0}),
    ("trace-event-get-state", {"name": "job_state*", "vcpu": 0}),
    ("trace-event-get-state", {"name": "job_state*", "vcpu": 1}),
    ("trace-event-set-state", {"name": "nosuch", "enable": True}),
    ("trace-event-set-state", {"name": "nosuch*", "enable": True}),
    ("trace-event-set-state", {"name": "job_state_transition",
                               "enable": True, "vcpu": 0}),
    ("trace-event-set-state", {"name": "job_state_transition",
                               "enable": True,
                               "ignore-unavailable": True}),
    ("trace-event-get-state", {"name": "job_state*"}),
    hmp("info trace-events job_state*"),
    hmp("trace-event job_state_transition off"),
    hmp("info trace-events job_state*"),
    hmp("trace-event nosuch on"), hmp("trace-event nosuch* on"),
    hmp("trace-event job_state_transition"),
    hmp("trace-event job_state_transition on 5"),
    hmp("info trace-events nosuch"), hmp("info trace-events job_state* 0"),
    hmp("help trace-event"), hmp("help info"),
]


def fix(name, args, reply, qemu):
    """QEMU lists its trace points in its own order; HMP's help lists
    every info subcommand: only the trace one is compared."""
    if isinstance(reply.get("return"), list):
        reply["return"] = sorted(reply["return"], key=lambda e: e["name"])
    if args and args.get("command-line") == "help info":
        reply["return"] = [line for line in reply["return"].split("\r\n")
                           if "trace" in line]
    return reply


def test_same_as_qemu():
    ours = reference.transcript(["-M", "pc", "-S"], STEPS, qemu=False,
                                fix=fix)
    assert ours[1]["return"] == [
        {"name": n, "state": "disabled", "vcpu": False}
        for n in ("job_apply_verb", "job_completed", "job_state_transition")]
    assert ours[3]["error"]["desc"] == 'unknown event "nosuch"'
    assert ours[16]["return"] == 'unknown event "nosuch"\r\n'
    if not qemu_binary():
        print("# qemu-system-x86_64 not installed: not compared")
        return
    theirs = reference.transcript(["-M", "pc", "-S"], STEPS, qemu=True,
                                  fix=fix)
    for step, a, b in zip(STEPS, ours, theirs):
        assert a == b, "%r:\n qmpd %r\n QEMU %r" % (step, a, b)


def qmp(c, cmd, **args):
    """c.cmd(), for commands with an argument called "name"."""
    r = c.execute(cmd, args)
    assert "return" in r, r
    Qmpd.note_command(cmd, r["return"])
    return r["return"]


def set_state(c, name, on):
    assert qmp(c, "trace-event-set-state", name=name, enable=on) == {}


def create_job(c, d, n):
    path = os.path.join(d, "f%d" % n)
    c.cmd("blockdev-create", **{"job-id": "j%d" % n, "options": {
        "driver": "file", "filename": path, "size": 1 << 20}})
    c.event("JOB_STATUS_CHANGE")
    while c.cmd("query-jobs")[0]["status"] != "concluded":
        c.event("JOB_STATUS_CHANGE")
    c.cmd("job-dismiss", id="j%d" % n)


def test_trace_lines():
    """-trace enables from the start; a point set off stops writing."""
    d = tempfile.mkdtemp(prefix="qmpd-trace-")
    with Qmpd(["-M", "none", "-trace", "enable=job_state*",
               "-trace", "nosuch"]) as q:
        c = q.connect()
        assert qmp(c, "trace-event-get-state", name="job_state*") == [
            {"name": "job_state_transition", "state": "enabled",
             "vcpu": False}]
        create_job(c, d, 1)
        set_state(c, "job_state_transition", False)
        set_state(c, "job_completed", True)
        create_job(c, d, 2)
        c.cmd("quit")
        q.wait()
        err = q.stderr_text()
    lines = err.splitlines()
    assert lines[0] == ("qmpd: -trace nosuch: warning: trace event "
                        "'nosuch' does not exist"), err
    trans = re.findall(r"^%d@\d+\.\d{6}:job_state_transition job 0x[0-9a-f]+ "
                       r"\(ret: 0\) attempting allowed transition "
                       r"\((\w+)-->(\w+)\)$" % q.proc.pid, err, re.M)
    # the first job's, none of the second's
    assert trans == [("undefined", "created"), ("created", "running"),
                     ("running", "waiting"), ("waiting", "pending"),
                     ("pending", "concluded"), ("concluded", "null")], err
    assert len(re.findall(r":job_completed job 0x[0-9a-f]+ ret 0$", err,
                          re.M)) == 1, err
    assert len(re.findall(r":job_state_transition ", err)) == len(trans)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


if __name__ == "__main__":
    run([test_same_as_qemu, test_trace_lines])
