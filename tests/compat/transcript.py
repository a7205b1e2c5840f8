# SPDX-License-Identifier: GPL-2.0-or-later
"""A scenario of QMP steps run on QEMU 7.2 and on qmpd alike, recorded
as a transcript and compared step by step: the compat tests of block
nodes, block jobs and mirror share it.

A step is (command, arguments[, wait[, flag...]]).  $T in arguments is
the side's temp dir.  Every reply and event is recorded up to a sync
command after the step, so what a step records does not depend on
timing once its wait is over.  The wait is until(event, **data) (the
step goes on collecting until that event), moved(job) (the step's query
repeats until the job has made progress, see moved()), or None; the
flag "no-events" drops the step's events.  ("qemu-img", [args]) records
an image's `qemu-img info` (JSON) and checks the image.

A transcript is [(step, [message])] with the temp dir; normalise() turns
it into canonical JSON text per step (timestamps and values that differ
between two correct implementations masked, the temp dir as $T, auto
node names renumbered in order of appearance); diff_steps() lists the
steps that differ, known differences masked with their reasons shown.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import Qmpd, qemu_binary  # noqa: E402
from reference import negotiate  # noqa: E402

STEP_DEADLINE = 30


def tool(name, *args):
    return subprocess.run([name] + list(args), check=True,
                          capture_output=True, timeout=30).stdout


def subst(v, tmp):
    if isinstance(v, str):
        return v.replace("$T", tmp)
    if isinstance(v, list):
        return [subst(x, tmp) for x in v]
    if isinstance(v, dict):
        return {k: subst(x, tmp) for k, x in v.items()}
    return v


def until(event, **data):
    return ("until", event, data)


def moved(job):
    """A job started with speed=1 copies one chunk, then sleeps for days
    (the token bucket holds 1 byte/s).  Whether a query right after the
    start sees it before, during or after that chunk depends on timing,
    so the step repeats query-block-jobs until the job has progressed,
    is not busy (sleeping) and has not changed for 20 ms, and records
    the last reply only.  From then on the state is fixed until the test
    changes it."""
    return ("moved", job)


def done(job):
    return until("JOB_STATUS_CHANGE", id=job, status="null")


def status(job, st):
    return until("JOB_STATUS_CHANGE", id=job, status=st)


class Timeout(Exception):
    pass


def reference(fn, *args):
    """@fn(*args) for the reference QEMU, which on a loaded machine now
    and then does not answer its first command (seen in CI: no reply to
    qmp_capabilities within 10 s): such a run starts again once, with a
    fresh process.  Steps that time out later are part of the transcript
    and are not retried."""
    try:
        return fn(*args)
    except (TimeoutError, ConnectionError) as e:
        sys.stderr.write("# the reference QEMU did not answer (%r); "
                         "running it once more\n" % (e,))
        return fn(*args)


def recv(c, deadline):
    left = deadline - time.time()
    if left <= 0:
        raise Timeout()
    try:
        return c.recv(left)
    except OSError:         # socket.timeout
        raise Timeout()


def request(c, name, args, rid, deadline):
    """Send; return the messages up to and including the reply."""
    req = {"execute": name, "id": rid}
    if args is not None:
        req["arguments"] = args
    c.send_raw(json.dumps(req))
    got = []
    while True:
        m = recv(c, deadline)
        got.append(m)
        if m.get("id") == rid:
            return got


def matches(msg, event, data):
    return msg.get("event") == event and \
        all(msg["data"].get(k) == v for k, v in data.items())


def job_of(reply, job):
    for j in reply.get("return", []):
        if j["device"] == job:
            return j
    return None


def qemu_img_step(args):
    """("qemu-img", args): the image's info, after checking it."""
    info = json.loads(tool("qemu-img", *args))
    tool("qemu-img", "check", "-U", args[-1])
    return [info]


def run_one(c, i, name, args, wait, deadline):
    """Step @i's messages: the request's, its wait's, up to the sync."""
    if wait and wait[0] == "moved":
        # the step's events are kept, only the replies repeat
        events, last = [], None
        while True:
            got = request(c, name, args, "step-%d" % i, deadline)
            events += [m for m in got if "event" in m]
            j = job_of(got[-1], wait[1])
            if j is None or (j["offset"] > 0 and not j["busy"]
                             and j == last):
                break
            last = j
            time.sleep(0.02)
        got = events + got[-1:]
    else:
        got = request(c, name, args, "step-%d" % i, deadline)
        if wait and "error" not in got[-1]:
            while not any(matches(m, wait[1], wait[2]) for m in got):
                got.append(recv(c, deadline))
    sync = "sync-%d" % i
    c.send_raw(json.dumps({"execute": "query-name", "id": sync}))
    while True:
        m = recv(c, deadline)
        if m.get("id") == sync:
            return got
        got.append(m)


def run_steps(c, steps, tmp, q):
    """[(step, [messages])]; stops at the first step that times out or
    loses the connection."""
    out = []
    for i, step in enumerate(steps):
        name, args = step[0], subst(step[1], tmp)
        wait = step[2] if len(step) > 2 else None
        if name == "qemu-img":
            out.append((step, qemu_img_step(args)))
            continue
        try:
            got = run_one(c, i, name, args, wait,
                          time.time() + STEP_DEADLINE)
        except Timeout:
            out.append((step, ["<timeout: %r>" % (wait,)]))
            return out
        except EOFError:
            try:
                q.wait(30)
            except subprocess.TimeoutExpired:
                pass
            out.append((step, ["<connection closed, exit %r: %s>" % (
                q.proc.returncode, q.stderr_text().strip())]))
            return out
        if "no-events" in step[3:]:
            got = [m for m in got if "event" not in m]
        reply = [m for m in got if m.get("id") == "step-%d" % i][-1]
        if q.bin != qemu_binary() and "return" in reply:
            Qmpd.note_command(name, reply["return"])    # coverage
        out.append((step, got))
    return out


LEN = ("start", "length")


def image_facts(tmp, images, hosts=False):
    """What qemu-img says about each image once the process is gone:
    info, check, map and a checksum of its guest-visible data.  Host
    offsets are the writer's choice, and qemu-img map splits an extent
    where they are not contiguous, so they go and the extents they split
    are joined; with @hosts whether a range has host clusters (a zero
    cluster can have them or not) stays."""
    out = []
    for name in images:
        path = os.path.join(tmp, name)
        if not os.path.exists(path):
            out.append((("qemu-img", name), ["<no such file>"]))
            continue
        info = json.loads(tool("qemu-img", "info", "--output=json",
                               "--backing-chain", "-U", path))
        chk = subprocess.run(["qemu-img", "check", "--output=json", path],
                             capture_output=True, timeout=30)
        try:
            check = json.loads(chk.stdout)
            # only there when not 0: masked like the count itself
            check.setdefault("fragmented-clusters", 0)
        except ValueError:
            check = {"exit": chk.returncode,
                     "stderr": chk.stderr.decode(errors="replace")}
        extents = []
        for e in json.loads(tool("qemu-img", "map", "--output=json",
                                 path)):
            host = e.pop("offset", None) is not None
            if hosts:
                e["host"] = host
            p = extents[-1] if extents else None
            if p and p["start"] + p["length"] == e["start"] and \
                    {k: v for k, v in p.items() if k not in LEN} == \
                    {k: v for k, v in e.items() if k not in LEN}:
                p["length"] += e["length"]
            else:
                extents.append(e)
        raw = os.path.join(tmp, "raw.img")
        tool("qemu-img", "convert", "-O", "raw", path, raw)
        with open(raw, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.unlink(raw)
        out.append((("qemu-img", name), [
            {"info --backing-chain": info, "check": check, "map": extents,
             "data sha256": digest}]))
    return out


def transcript(binary, args, steps, prepare, prefix, images=(),
               hosts=False):
    """Run @steps on @binary (None: qmpd) started with @args in a fresh
    temp dir that @prepare(dir) fills; then quit and look at @images
    (image_facts).  Returns (transcript, temp dir), the dir removed."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        prepare(tmp)
        with Qmpd(subst(args, tmp), binary_path=binary, wait=False) as q:
            deadline = time.time() + 30
            while not os.path.exists(q.qmp_path):
                if q.proc.poll() is not None or time.time() > deadline:
                    return [(("start", args), [
                        "<exit %r: %s>" % (q.proc.poll(),
                                           q.stderr_text().strip())])], tmp
                time.sleep(0.01)
            c = negotiate(q)
            out = run_steps(c, steps, tmp, q)
            # the steps a failure left out, so that what follows pairs up
            out += [(step, ["<not run>"]) for step in steps[len(out):]]
            try:
                if q.proc.poll() is None:
                    c.send_raw(json.dumps({"execute": "quit"}))
                q.wait(30)
                out.append((("quit", None), ["exit %d" % q.proc.returncode]))
            except (OSError, subprocess.TimeoutExpired):
                out.append((("quit", None), ["<did not exit>"]))
        out += image_facts(tmp, images, hosts)
        return out, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def normalise(result, volatile, value=None, mask=None):
    """Canonical JSON text per step of @result (transcript, temp dir):
    keys matching @volatile blanked, strings through @value when given,
    each step's messages through @mask(step, messages) when given, the
    temp dir as $T, auto node names renumbered in order of appearance."""
    trans, tmp = result
    names = {}

    def auto(mo):
        return names.setdefault(mo.group(0), "#block<%d>" % len(names))

    def walk(v):
        if isinstance(v, dict):
            return {k: "<volatile>" if volatile.match(k) else walk(x)
                    for k, x in v.items() if k != "timestamp"}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and value:
            return value(v)
        return v

    res = []
    for step, msgs in trans:
        # the request ids are ours; the step order already pairs them
        msgs = [{k: v for k, v in m.items() if k != "id"}
                if isinstance(m, dict) else m for m in msgs]
        if mask:
            msgs = mask(step, msgs)
        text = json.dumps(walk(msgs), sort_keys=True).replace(tmp, "$T")
        res.append((step, re.sub(r"#block[0-9]+", auto, text)))
    return res


def diff_steps(name, theirs, ours, known):
    """The steps where normalised transcripts @theirs and @ours of
    scenario @name differ, described.  @known maps (scenario, step) to
    (reason, mask), mask a function that takes the difference out of a
    step's messages on both sides (the rest of the step is still
    compared strictly); the masks that apply are printed with their
    reasons."""
    bad = []
    for i in range(max(len(theirs), len(ours))):
        t = theirs[i] if i < len(theirs) else (None, "<missing>")
        o = ours[i] if i < len(ours) else (None, "<missing>")
        tt, ot = t[1], o[1]
        if (name, i) in known and tt != ot and t[0] == o[0]:
            reason, mask = known[(name, i)]
            print("known difference, %s step %d (masked): %s"
                  % (name, i, reason))
            tt = json.dumps(mask(json.loads(tt)), sort_keys=True)
            ot = json.dumps(mask(json.loads(ot)), sort_keys=True)
        if tt != ot or t[0] != o[0]:
            step = t[0] or o[0]
            bad.append("step %d %s %s:\n  qemu: %s\n  qmpd: %s" % (
                i, step[0], json.dumps(step[1]), tt, ot))
    return bad


def dump_transcripts(prefix, name, theirs, ours):
    """Both normalised transcripts into PREFIX.NAME.{qemu,qmpd}, for
    diff(1)."""
    for who, tr in (("qemu", theirs), ("qmpd", ours)):
        with open("%s.%s.%s" % (prefix, name, who), "w") as f:
            for step, text in tr:
                f.write("=== %s %s\n%s\n" % (
                    step[0], json.dumps(step[1]),
                    json.dumps(json.loads(text), indent=1, sort_keys=True)))


def unsubst(v, tmp):
    """@v with the temp dir @tmp written $T again (subst() undone)."""
    if isinstance(v, str):
        return v.replace(tmp, "$T")
    if isinstance(v, list):
        return [unsubst(x, tmp) for x in v]
    if isinstance(v, dict):
        return {k: unsubst(x, tmp) for k, x in v.items()}
    return v
