#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""QMP wire protocol: greeting, negotiation, framing, errors, events.

Expected strings were observed on qemu-system-x86_64 7.2 -M none.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, QmpClient, binary, check_ended, qemu_binary, \
    run  # noqa: E402


def test_greeting():
    with Qmpd() as q:
        c = q.connect(negotiate=False)
        raw = c.lines[0]
        assert raw.endswith(b"}\r\n"), raw
        g = c.greeting["QMP"]
        assert g["version"]["qemu"]["major"] == 7
        assert g["version"]["qemu"]["minor"] == 2
        assert isinstance(g["version"]["qemu"]["micro"], int)
        assert g["version"]["package"].startswith("qmpd ")
        assert g["capabilities"] == ["oob"]
        assert list(c.greeting) == ["QMP"]


def test_negotiation_mode():
    with Qmpd() as q:
        c = q.connect(negotiate=False)
        r = c.execute("query-status", id=7)
        assert r == {"id": 7, "error": {
            "class": "CommandNotFound",
            "desc": "Expecting capabilities negotiation with "
                    "'qmp_capabilities'"}}, r
        # envelope errors keep their own text in negotiation mode
        c.send_raw('{"foo": 1}')
        assert c.reply()["error"]["desc"] == "QMP input member 'foo' is unexpected"
        # no events before negotiation
        d = q.connect()
        d.cmd("stop")
        d.event("STOP")
        r = c.execute("qmp_capabilities", {"enable": ["oob"]})
        assert r == {"return": {}}
        r = c.execute("qmp_capabilities")
        assert r["error"] == {
            "class": "CommandNotFound",
            "desc": "Capabilities negotiation is already complete, "
                    "command ignored"}
        assert c.cmd("query-status")["status"] == "paused"
        assert not c.events, c.events


def test_capabilities_arguments():
    with Qmpd() as q:
        c = q.connect(negotiate=False)
        assert c.execute("qmp_capabilities", {"enable": ["x"]})["error"][
            "desc"] == "Parameter 'null' does not accept value 'x'"
        assert c.execute("qmp_capabilities", {"enable": "oob"})["error"][
            "desc"] == ("Invalid parameter type for 'enable', "
                        "expected: array")
        assert c.execute("qmp_capabilities", {"enable": []}) == {"return": {}}


def test_id_echo():
    with Qmpd() as q:
        c = q.connect()
        for ident in [1, "abc", [1, {"a": 2}], {"x": None}, None, 1.5,
                      True, 18446744073709551615, -3]:
            c.send_raw(json.dumps({"execute": "query-name", "id": ident}))
            raw = c.recv_line()
            r = json.loads(raw)
            assert r == {"return": {}, "id": ident}, r
            assert raw.endswith(b"\r\n")
        c.send_raw(json.dumps({"execute": "nope", "id": 3}))
        raw = c.recv_line()
        assert raw.startswith(b'{"id": 3, "error"'), raw
        r = json.loads(raw)
        assert r["error"] == {"class": "CommandNotFound",
                              "desc": "The command nope has not been found"}


def test_framing():
    with Qmpd() as q:
        c = q.connect()
        # several commands in one write
        c.send_raw('{"execute":"query-name","id":1}{"execute":"query-name",'
                   '"id":2}\n{"execute":"query-name","id":3}')
        assert [c.reply()["id"] for _ in range(3)] == [1, 2, 3]
        # one command split over many writes
        msg = '{"execute": "query-status", "id": "split"}'
        for ch in msg:
            c.send_raw(ch)
        assert c.reply()["id"] == "split"
        # single quotes, as QEMU accepts
        c.send_raw("{'execute':'query-name','id':'it\\'s'}")
        assert c.reply() == {"return": {}, "id": "it's"}


def test_malformed_input():
    cases = [
        ('{bad json}', "JSON parse error, invalid keyword 'bad'"),
        ('[1,2]', "QMP input must be a JSON object"),
        ('"str"', "QMP input must be a JSON object"),
        ('}', "JSON parse error, expecting value"),
        ('{"a" 1}', "JSON parse error, missing : in object pair"),
        ('{"a":1,"a":2}', "JSON parse error, duplicate key"),
        ('@\n', "JSON parse error, stray '@'"),
        ('{"foo":1}', "QMP input member 'foo' is unexpected"),
        ('{"execute":1}', "QMP input member 'execute' must be a string"),
        ('{"execute":"query-status","arguments":[]}',
         "QMP input member 'arguments' must be an object"),
        ('{"id":1}', "QMP input lacks member 'execute'"),
        ('{"exec-oob":"query-status"}',
         "QMP input member 'exec-oob' is unexpected"),
    ]
    with Qmpd() as q:
        c = q.connect()
        for text, desc in cases:
            c.send_raw(text)
            r = c.reply()
            assert r["error"] == {"class": "GenericError", "desc": desc}, \
                (text, r)
        # the connection stays usable
        assert c.cmd("query-name") == {}


def test_argument_errors():
    with Qmpd() as q:
        c = q.connect()
        assert c.error("query-status", x=1) == (
            "GenericError", "Parameter 'x' is unexpected")
        assert c.error("human-monitor-command") == (
            "GenericError", "Parameter 'command-line' is missing")
        assert c.error("human-monitor-command", **{"command-line": 5}) == (
            "GenericError",
            "Invalid parameter type for 'command-line', expected: string")
        assert c.error("human-monitor-command",
                       **{"command-line": "help", "cpu-index": "0"}) == (
            "GenericError",
            "Invalid parameter type for 'cpu-index', expected: integer")
        # missing is reported before unexpected, as in QEMU
        assert c.error("human-monitor-command", bogus=1) == (
            "GenericError", "Parameter 'command-line' is missing")


def test_cpu_index():
    """human-monitor-command's cpu-index must name one of the machine's
    CPUs: there is none on -M none, CPU 0 on pc.  QEMU 7.2 answers the
    same (run beside qmpd when installed)."""
    no_cpu = ("GenericError", "Parameter 'cpu-index' expects a CPU number")
    status = "VM status: paused (prelaunch)\r\n"
    for b in [None] + ([qemu_binary()] if qemu_binary() else []):
        for machine, cpus in (("none", ()), ("pc", (0,))):
            with Qmpd(["-M", machine, "-S"], binary_path=b) as q:
                c = q.connect()
                for i in (0, 1, 5, -1):
                    args = {"command-line": "info status", "cpu-index": i}
                    if i in cpus:
                        assert c.cmd("human-monitor-command",
                                     **args) == status, (b, machine, i)
                    else:
                        assert c.error("human-monitor-command",
                                       **args) == no_cpu, (b, machine, i)
                assert c.cmd("human-monitor-command",
                             **{"command-line": "info status"}) == status


def test_oob():
    with Qmpd() as q:
        c = q.connect(negotiate=False)
        c.cmd("qmp_capabilities", enable=["oob"])
        c.send_raw('{"exec-oob": "query-status", "id": 1}')
        assert c.reply() == {"id": 1, "error": {
            "class": "GenericError",
            "desc": "The command query-status does not support OOB"}}
        c.send_raw('{"exec-oob": "query-status", "execute": "query-status"}')
        assert "clashes" in c.reply()["error"]["desc"]


def test_queries():
    with Qmpd(["-name", "guest=vm1,debug-threads=on", "-m", "256"]) as q:
        c = q.connect()
        v = c.cmd("query-version")
        assert v["qemu"]["major"] == 7 and v["qemu"]["minor"] == 2
        assert c.cmd("query-name") == {"name": "vm1"}
        assert c.cmd("query-status") == {"status": "running",
                                         "singlestep": False,
                                         "running": True}
        names = {x["name"] for x in c.cmd("query-commands")}
        schema = c.cmd("query-qmp-schema")
        cmds = {e["name"] for e in schema if e["meta-type"] == "command"}
        assert names == cmds, names ^ cmds
        assert c.cmd("query-memory-size-summary") == {
            "base-memory": 256 << 20, "plugged-memory": 0}
        assert c.cmd("query-kvm") == {"enabled": False, "present": False}
        assert c.cmd("query-target") == {"arch": "x86_64"}
        ms = {m["name"]: m for m in c.cmd("query-machines")}
        assert ms["pc-i440fx-7.2"]["alias"] == "pc"
        assert ms["pc-i440fx-7.2"]["is-default"] is True
        assert ms["pc-q35-7.2"]["alias"] == "q35"


def test_stop_cont_events():
    with Qmpd() as q:
        a = q.connect()
        b = q.connect()
        a.cmd("stop")
        for c in (a, b):
            e = c.event("STOP")
            assert set(e) == {"timestamp", "event"}, e
            assert set(e["timestamp"]) == {"seconds", "microseconds"}
        assert a.cmd("query-status")["status"] == "paused"
        a.cmd("stop")           # already paused: no second STOP
        a.cmd("cont")
        b.event("RESUME")
        a.event("RESUME")
        a.cmd("cont")           # already running: no event
        a.cmd("query-name")
        assert not a.events and not b.events


def test_prelaunch():
    with Qmpd(["-S"]) as q:
        c = q.connect()
        assert c.cmd("query-status") == {"status": "prelaunch",
                                         "singlestep": False,
                                         "running": False}
        c.cmd("stop")           # no STOP from prelaunch
        assert c.cmd("query-status")["status"] == "prelaunch"
        out = c.cmd("human-monitor-command", **{"command-line": "info status"})
        assert out == "VM status: paused (prelaunch)\r\n", out
        c.cmd("cont")
        c.event("RESUME")
        assert c.cmd("query-status")["status"] == "running"


def test_incoming_defer_state():
    with Qmpd(["-incoming", "defer"]) as q:
        c = q.connect()
        assert c.cmd("query-status")["status"] == "inmigrate"
        c.cmd("stop")
        c.cmd("cont")
        assert c.cmd("query-status")["status"] == "inmigrate"
        assert not c.events


def test_piped_input_all_answered():
    # a script pipes commands into -qmp stdio (or -monitor stdio) and
    # closes its end: every command is run and answered, also one that
    # completes later (qemu-io), before the session ends; QEMU 7.2 does
    d = tempfile.mkdtemp()
    img = os.path.join(d, "d.raw")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    drive = ["-drive", "file=%s,format=raw,if=none,id=d0" % img]
    qmp_in = ('{"execute":"qmp_capabilities"}\n'
              '{"execute":"human-monitor-command","arguments":'
              '{"command-line":"qemu-io d0 \\"write -P 7 0 64k\\""}}\n'
              '{"execute":"query-status"}\n{"execute":"quit"}\n')
    hmp_in = 'qemu-io d0 "read -P 7 0 64k"\ninfo status\nquit\n'
    bins = [binary()]
    if qemu_binary():
        bins.append(qemu_binary())
    try:
        for b in bins:
            base = [b, "-M", "none", "-nodefaults", "-display", "none"] + drive
            p = subprocess.run(base + ["-qmp", "stdio"], input=qmp_in,
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (b, p)
            if b == binary():
                check_ended("qmpd -qmp stdio", p.returncode, 0, p.stderr)
            replies = [json.loads(ln) for ln in p.stdout.splitlines()
                       if ln.startswith("{")]
            assert [r for r in replies if "return" in r] == [
                {"return": {}}, {"return": ""},
                {"return": {"status": "running", "singlestep": False,
                            "running": True}},
                {"return": {}}], (b, p.stdout)
            assert "wrote 65536/65536 bytes at offset 0" in p.stdout
            p = subprocess.run(base + ["-monitor", "stdio"], input=hmp_in,
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (b, p)
            if b == binary():
                check_ended("qmpd -monitor stdio", p.returncode, 0, p.stderr)
            assert "read 65536/65536 bytes at offset 0" in p.stdout, p.stdout
            assert "VM status: running" in p.stdout, p.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_quit():
    with Qmpd() as q:
        a = q.connect()
        b = q.connect()
        a.send_raw('{"execute": "quit", "id": "q"}')
        e = a.recv()
        assert e["event"] == "SHUTDOWN", e
        assert e["data"] == {"guest": False, "reason": "host-qmp-quit"}
        assert a.recv() == {"return": {}, "id": "q"}
        assert b.event("SHUTDOWN")["data"]["reason"] == "host-qmp-quit"
        assert q.wait(30) == 0
        assert not os.path.exists(q.qmp_path)


def test_sigterm():
    with Qmpd() as q:
        c = q.connect()
        q.proc.terminate()
        assert c.event("SHUTDOWN")["data"] == {"guest": False,
                                               "reason": "host-signal"}
        assert q.wait(30) == 0
        assert "terminating on signal 15 from pid" in q.stderr_text()


def read_pretty(sock, buf):
    """One pretty-printed message: accumulate until it parses."""
    dec = json.JSONDecoder()
    while True:
        text = buf[0].decode()
        try:
            obj, end = dec.raw_decode(text)
            if text[end:end + 2] == "\r\n":
                raw = buf[0][:end + 2]
                buf[0] = buf[0][end + 2:]
                return obj, raw
        except ValueError:
            pass
        buf[0] += sock.recv(4096)


def test_pretty():
    with Qmpd(qmp=False, wait=False) as probe:
        path = os.path.join(probe.dir, "p.sock")
        with Qmpd(["-chardev",
                   "socket,id=p,path=%s,server=on,wait=off" % path,
                   "-mon", "chardev=p,mode=control,pretty=on"],
                  qmp=False) as q:
            q.wait_for_path(path)
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.settimeout(30)
            buf = [b""]
            greeting, raw = read_pretty(s, buf)
            assert raw.startswith(b'{\r\n    "QMP": {\r\n'), raw
            s.sendall(b'{"execute":"qmp_capabilities"}')
            assert read_pretty(s, buf) == ({"return": {}},
                                           b'{\r\n    "return": {\r\n    }\r\n}\r\n')
            s.sendall(b'{"execute":"query-status"}')
            _, raw = read_pretty(s, buf)
            assert raw == (b'{\r\n    "return": {\r\n        "status": '
                           b'"running",\r\n        "singlestep": false,\r\n'
                           b'        "running": true\r\n    }\r\n}\r\n'), raw
            s.close()


if __name__ == "__main__":
    run([test_greeting, test_negotiation_mode, test_capabilities_arguments,
         test_id_echo, test_framing, test_malformed_input,
         test_argument_errors, test_cpu_index, test_oob, test_queries,
         test_stop_cont_events, test_prelaunch, test_incoming_defer_state,
         test_piped_input_all_answered, test_quit, test_sigterm,
         test_pretty])
