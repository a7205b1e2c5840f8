#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""trace-event-get-state, trace-event-set-state, HMP trace-event and info
trace-events over qmpd's own trace points, and -trace: the replies and
HMP text are QEMU 7.2's (compared where it is installed; the trace
points compared are those both have), and an enabled point writes its
line on stderr as a job moves while a disabled one stays silent."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from qmpd import (Qmpd, binary, qemu_binary, run,  # noqa: E402
                  wait_until)


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
    # no PID@TIME: prefix without -msg timestamp=on, as QEMU's
    trans = re.findall(r"^job_state_transition job 0x[0-9a-f]+ "
                       r"\(ret: 0\) attempting allowed transition "
                       r"\((\w+)-->(\w+)\)$", err, re.M)
    # the first job's, none of the second's
    assert trans == [("undefined", "created"), ("created", "running"),
                     ("running", "waiting"), ("waiting", "pending"),
                     ("pending", "concluded"), ("concluded", "null")], err
    assert len(re.findall(r"^job_completed job 0x[0-9a-f]+ ret 0$", err,
                          re.M)) == 1, err
    assert len(re.findall(r"job_state_transition ", err)) == len(trans)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


def progs():
    out = [binary()]
    if qemu_binary():
        out.append(qemu_binary())
    return out


def masked(text):
    """Trace lines of @text with pointers and timestamps masked."""
    return [re.sub(r"0x[0-9a-f]+|\(nil\)", "P", line)
            for line in text.splitlines()
            if re.match(r"(\d+@\d+\.\d{6}:)?[a-z_0-9]+ ", line)
            and not line.startswith(("warning", "qemu-system", "qmpd"))]


def hmp_line(c, line):
    return c.cmd("human-monitor-command", **{"command-line": line})


def test_listing_order():
    """QEMU lists the last defined first: job_* in its order."""
    for p in progs():
        with Qmpd(["-M", "none"], binary_path=p) as q:
            c = q.connect()
            assert [e["name"] for e in c.execute(
                "trace-event-get-state", {"name": "job_*"})["return"]] \
                == ["job_completed", "job_apply_verb",
                    "job_state_transition"], p
            assert hmp_line(c, "info trace-events job_*") == \
                "job_completed : state 0\r\njob_apply_verb : state 0\r\n" \
                "job_state_transition : state 0\r\n"
            c.cmd("quit")


def backup_trace(prog, extra):
    """A backup job between null-co nodes run to its end with the job
    events on; the trace lines."""
    with Qmpd(["-M", "none", "-trace", "job_*"] + extra,
              binary_path=prog) as q:
        c = q.connect()
        c.cmd("blockdev-add", driver="null-co", **{"node-name": "n"})
        c.cmd("blockdev-add", driver="null-co", **{"node-name": "t"})
        c.cmd("blockdev-backup", device="n", target="t", sync="full",
              **{"job-id": "j"})
        wait_until("job gone", lambda: c.cmd("query-jobs") == [])
        c.cmd("quit")
        q.wait(60)
        return q.stderr_text()


def test_job_lines():
    want = ["job_state_transition job P (ret: 0) attempting allowed "
            "transition (%s)" % t for t in (
                "undefined-->created",)] + [
        "job_apply_verb job P in state created; applying verb set-speed "
        "(allowed)"] + [
        "job_state_transition job P (ret: 0) attempting allowed "
        "transition (%s)" % t for t in (
            "created-->running", "running-->paused", "paused-->running")] + [
        "job_completed job P ret 0"] + [
        "job_state_transition job P (ret: 0) attempting allowed "
        "transition (%s)" % t for t in (
            "running-->waiting", "waiting-->pending", "pending-->concluded",
            "concluded-->null")]
    for p in progs():
        assert masked(backup_trace(p, [])) == want, (p, backup_trace(p, []))
        lines = masked(backup_trace(p, ["-msg", "timestamp=on"]))
        assert all(re.match(r"\d+@\d+\.\d{6}:job_", x) for x in lines), lines
        assert [x.split(":", 1)[1] for x in lines] == want


def test_command_lines():
    """qmp_enter_X / qmp_exit_X around QMP commands (not HMP's)."""
    for p in progs():
        with Qmpd(["-M", "none", "-trace", "qmp_e*_query_status",
                   "-trace", "qmp_e*_block_job_pause"], binary_path=p) as q:
            c = q.connect()
            c.cmd("query-status")
            c.execute("block-job-pause", {"device": "x"})
            hmp_line(c, "info status")
            c.cmd("quit")
            q.wait(60)
            assert masked(q.stderr_text()) == [
                'qmp_enter_query_status {}',
                'qmp_exit_query_status {"status": "running", "singlestep": '
                'false, "running": true} 1',
                'qmp_enter_block_job_pause {"device": "x"}',
                "qmp_exit_block_job_pause Block job 'x' not found 0"], \
                (p, q.stderr_text())


def test_options():
    """events=FILE (patterns, '-' to switch off, comments, unknown
    names warned by line), -D FILE, and the errors."""
    d = tempfile.mkdtemp(prefix="qmpd-trace-")
    try:
        events = os.path.join(d, "events")
        with open(events, "w") as f:
            f.write("job_*\n# a comment\n\n-job_apply_verb\nnosuch\n")
        for p in progs():
            name = os.path.basename(p)
            log = os.path.join(d, "log")
            with Qmpd(["-M", "none", "-trace", "events=%s" % events,
                       "-trace", "enable=nosuch2", "-D", log],
                      binary_path=p) as q:
                c = q.connect()
                assert [(e["name"], e["state"]) for e in c.execute(
                    "trace-event-get-state", {"name": "job_*"})["return"]] == [
                    ("job_completed", "enabled"),
                    ("job_apply_verb", "disabled"),
                    ("job_state_transition", "enabled")]
                c.cmd("blockdev-add", driver="null-co", **{"node-name": "n"})
                c.cmd("blockdev-add", driver="null-co", **{"node-name": "t"})
                c.cmd("blockdev-backup", device="n", target="t",
                      sync="full", **{"job-id": "j"})
                wait_until("job gone", lambda: c.cmd("query-jobs") == [])
                c.cmd("quit")
                q.wait(60)
                err = q.stderr_text()
                assert "%s:%s:5: warning: trace event 'nosuch' does not " \
                    "exist" % (name, events) in err, err
                assert "%s: -trace enable=nosuch2: warning: trace event " \
                    "'nosuch2' does not exist" % name in err, err
                assert "job_" not in err
            with open(log) as f:
                lines = masked(f.read())
            assert lines[0].startswith("job_state_transition") and \
                "job_completed job P ret 0" in lines, lines
            r = subprocess.run([p, "-M", "none", "-display", "none",
                                "-trace", "events=%s/nonexist" % d],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 1 and r.stderr == \
                "%s:%s/nonexist: No such file or directory\n" % (name, d), r
            r = subprocess.run([p, "-M", "none", "-display", "none",
                                "-trace", "enable=job_completed,bogus=1"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 1 and r.stderr == \
                "%s: -trace enable=job_completed,bogus=1: Invalid " \
                "parameter 'bogus'\n" % name, r
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    run([test_same_as_qemu, test_trace_lines, test_listing_order,
         test_job_lines, test_command_lines, test_options])
