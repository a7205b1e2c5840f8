#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""User objects: -object (keyval and JSON), object-add, object-del,
qom-list, qom-get, qom-set, qom-list-types and query-iothreads for
iothread, secret and memory-backend-ram.  Each scenario runs on qmpd
and, where it is installed, on QEMU 7.2 with the same arguments: the
replies must be equal (thread ids aside).  The values and messages are
also written here, so a machine without QEMU still checks them."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from qmpd import QmpError, binary, qemu_binary, run  # noqa: E402

DEADLINE = 60

# AES-256-CBC test vector, made with
#   printf 'hello secret' | openssl enc -aes-256-cbc -K <KEY hex> -iv <IV hex>
KEY = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="    # 32 bytes
IV = "YWJjZGVmZ2hpamtsbW5vcA=="                          # 16 bytes
CIPHER = "26KeIQOCkMPPxzwMRHhHwA=="
OTHER_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="


def transcript(args, steps, qemu):
    """The replies to @steps on qmpd or QEMU started with @args."""
    return reference.transcript(args, steps, qemu, fix_reply)


def fix_reply(name, a, r, qemu):
    """QEMU's root also holds /chardevs, which qmpd does not model: left
    out."""
    # thread ids differ between any two processes
    for t in r.get("return", []) if name == "query-iothreads" else []:
        assert isinstance(t.pop("thread-id"), int)
    if qemu and name == "qom-list" and a["path"] == "/":
        r["return"].remove({"name": "chardevs",
                            "type": "child<container>"})
    # a container's children come in QEMU's hash table order
    if name == "qom-list" and "return" in r:
        r["return"].sort(key=lambda e: e["name"])
    return r


def check(args, steps):
    """Run @steps (command, arguments, expected reply) on qmpd and QEMU;
    qom-list replies are compared sorted by name."""
    plain = [(n, a) for n, a, _ in steps]
    mine = transcript(args, plain, False)
    for (n, a, want), got in zip(steps, mine):
        if n == "qom-list" and "return" in want:
            want = {"return": sorted(want["return"],
                                     key=lambda e: e["name"])}
        assert got == want, (n, a, got, want)
    if qemu_binary():
        theirs = transcript(args, plain, True)
        for (n, a, _), got, ref in zip(steps, mine, theirs):
            assert got == ref, (args, n, a, got, ref)


def ok(v=None):
    return {"return": {} if v is None else v}


def err(desc, cls="GenericError"):
    return {"error": {"class": cls, "desc": desc}}


def entries(*pairs):
    return [{"name": n, "type": t} for n, t in pairs]


IOTHREAD_PROPS = entries(
    ("type", "string"), ("thread-pool-min", "int"), ("aio-max-batch", "int"),
    ("thread-pool-max", "int"), ("poll-max-ns", "int"), ("poll-grow", "int"),
    ("poll-shrink", "int"))
SECRET_PROPS = entries(
    ("type", "string"), ("iv", "string"), ("keyid", "string"),
    ("loaded", "bool"), ("format", "QCryptoSecretFormat"),
    ("file", "string"), ("data", "string"))


def test_iothread():
    io = "/objects/io0"
    info = {"id": "io0", "poll-max-ns": 32768, "poll-grow": 0,
            "poll-shrink": 0, "aio-max-batch": 0}
    check(["-object", "iothread,id=io0"], [
        ("qom-list", {"path": "/"}, ok(entries(
            ("type", "string"), ("objects", "child<container>"),
            ("machine", "child<none-machine>")))),
        ("qom-list", {"path": "/objects"}, ok(entries(
            ("type", "string"), ("io0", "child<iothread>")))),
        ("qom-list", {"path": io}, ok(IOTHREAD_PROPS)),
        ("qom-get", {"path": io, "property": "thread-pool-max"}, ok(64)),
        ("qom-get", {"path": "io0", "property": "poll-max-ns"}, ok(32768)),
        ("query-iothreads", {}, ok([info])),
        ("qom-set", {"path": io, "property": "poll-grow", "value": 2}, ok()),
        ("qom-set", {"path": io, "property": "poll-grow", "value": -1},
         err("poll-grow value must be in range [0, 9223372036854775807]")),
        ("qom-set", {"path": io, "property": "poll-grow", "value": "x"},
         err("Invalid parameter type for 'poll-grow', expected: integer")),
        ("qom-set", {"path": io, "property": "type", "value": "x"},
         err("Property 'iothread.type' is not writable")),
        ("qom-set", {"path": io, "property": "nope", "value": 1},
         err("Property 'iothread.nope' not found")),
        ("query-iothreads", {}, ok([dict(info, **{"poll-grow": 2})])),
        ("object-add", {"qom-type": "iothread", "id": "io1",
                        "aio-max-batch": 8, "poll-max-ns": 0}, ok()),
        ("qom-get", {"path": "/objects/io1", "property": "aio-max-batch"},
         ok(8)),
        ("object-add", {"qom-type": "iothread", "id": "io1"},
         err("attempt to add duplicate property 'io1' to object "
             "(type 'container')")),
        ("object-add", {"qom-type": "iothread", "id": "1x"},
         err("Parameter 'id' expects an identifier")),
        ("object-add", {"qom-type": "iothread", "id": "io2",
                        "thread-pool-min": 5, "thread-pool-max": 2},
         err("bad thread-pool-min/thread-pool-max values")),
        ("object-add", {"qom-type": "iothread", "id": "io2",
                        "poll-shrink": -3},
         err("poll-shrink value must be in range [0, 9223372036854775807]")),
        ("object-add", {"qom-type": "nosuch", "id": "x"},
         err("Parameter 'qom-type' does not accept value 'nosuch'")),
        ("qom-list", {"path": "/objects"}, ok(entries(
            ("type", "string"), ("io0", "child<iothread>"),
            ("io1", "child<iothread>")))),
        ("object-del", {"id": "io1"}, ok()),
        ("object-del", {"id": "io1"}, err("object 'io1' not found")),
        ("qom-get", {"path": "/objects/io1", "property": "type"},
         err("Device '/objects/io1' not found", "DeviceNotFound")),
        ("qom-get", {"path": io, "property": "nope"},
         err("Property 'iothread.nope' not found")),
        ("qom-get", {"path": "/objects", "property": "type"},
         ok("container")),
        ("qom-list-types", {"implements": "iothread", "abstract": True},
         ok([{"name": "iothread", "parent": "event-loop-base"}])),
    ])


def test_device_iothread():
    """A device's iothread= link, as QEMU 7.2 keeps it: checked, shown,
    and not keeping the object alive."""
    check(["-M", "pc", "-nodefaults", "-object", "iothread,id=io0",
           "-blockdev", "null-co,node-name=n0", "-blockdev",
           "null-co,node-name=n1", "-device",
           "virtio-blk-pci,drive=n1,id=v1,iothread=io0"], [
        ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                        "id": "vd", "iothread": "nope"},
         err("Device 'nope' not found", "DeviceNotFound")),
        ("object-add", {"qom-type": "secret", "id": "s", "data": "x"}, ok()),
        ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                        "id": "vd", "iothread": "s"},
         err("Invalid parameter type for 'iothread', expected: iothread")),
        ("device_add", {"driver": "virtio-blk-pci", "drive": "n0",
                        "id": "vd", "iothread": "io0"}, ok()),
        ("qom-get", {"path": "vd", "property": "iothread"},
         ok("/objects/io0")),
        ("qom-get", {"path": "v1", "property": "iothread"},
         ok("/objects/io0")),
        ("qom-get", {"path": "/machine/peripheral/vd/virtio-backend",
                     "property": "iothread"}, ok("/objects/io0")),
        ("object-del", {"id": "io0"}, ok()),
        ("qom-get", {"path": "vd", "property": "iothread"}, ok("")),
        # a new object of the same id is not what the device linked to
        ("object-add", {"qom-type": "iothread", "id": "io0"}, ok()),
        ("qom-get", {"path": "vd", "property": "iothread"}, ok("")),
        ("device_add", {"driver": "virtio-scsi-pci", "id": "sc",
                        "iothread": "io0"}, ok()),
        ("qom-get", {"path": "sc", "property": "iothread"},
         ok("/objects/io0")),
    ])


def test_no_objects_container():
    """/objects appears with the first object, as in QEMU."""
    check([], [
        ("qom-list", {"path": "/"}, ok(entries(
            ("type", "string"), ("machine", "child<none-machine>")))),
        ("qom-list", {"path": "/objects"},
         err("Device '/objects' not found", "DeviceNotFound")),
        ("object-add", {"qom-type": "iothread", "id": "t"}, ok()),
        ("qom-list", {"path": "/"}, ok(entries(
            ("type", "string"), ("objects", "child<container>"),
            ("machine", "child<none-machine>")))),
    ])


def test_secret():
    s = "/objects/s0"
    key = {"qom-type": "secret", "id": "k", "data": KEY, "format": "base64"}
    enc = {"qom-type": "secret", "id": "s1", "data": CIPHER,
           "format": "base64", "keyid": "k", "iv": IV}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "pw")
        with open(path, "w") as f:
            f.write("from a file")
        check(["-object", "secret,id=s0,data=hello"], [
            ("qom-list", {"path": s}, ok(SECRET_PROPS)),
            ("qom-get", {"path": s, "property": "data"}, ok("hello")),
            ("qom-get", {"path": s, "property": "format"}, ok("raw")),
            ("qom-get", {"path": s, "property": "loaded"}, ok(True)),
            ("qom-get", {"path": s, "property": "keyid"}, ok("")),
            ("qom-set", {"path": s, "property": "loaded", "value": False},
             err("Property 'secret.loaded' is not writable")),
            ("object-add", {"qom-type": "secret", "id": "f", "file": path},
             ok()),
            ("qom-get", {"path": "/objects/f", "property": "file"},
             ok(path)),
            ("object-add", key, ok()),
            ("object-add", enc, ok()),
            ("object-add", dict(enc, id="s2", keyid="s0"),
             err("Key should be 32 bytes in length")),
            ("object-add", dict(enc, id="s2", keyid="nokey"),
             err("No secret with id 'nokey'")),
            ("object-add", {"qom-type": "secret", "id": "s2",
                            "data": CIPHER, "format": "base64",
                            "keyid": "k"},
             err("IV is required to decrypt secret")),
            ("object-add", dict(enc, id="s2", iv="YWJj"),
             err("IV should be 16 bytes in length not 3")),
            ("object-add", dict(enc, id="s2", data="YWJj"),
             err("Length 3 must be a multiple of block size 16")),
            ("object-add", {"qom-type": "secret", "id": "k2",
                            "data": OTHER_KEY, "format": "base64"}, ok()),
            ("object-add", dict(enc, id="s2", keyid="k2"),
             err("Incorrect number of padding bytes (38) found on "
                 "decrypted data")),
            ("object-add", {"qom-type": "secret", "id": "s2"},
             err("Either 'file' or 'data' must be provided")),
            ("object-add", {"qom-type": "secret", "id": "s2", "data": "a",
                            "file": path},
             err("'file' and 'data' are mutually exclusive")),
            ("object-add", {"qom-type": "secret", "id": "s2",
                            "data": "!!", "format": "base64"},
             err("Base64 data contains invalid characters")),
            ("object-add", {"qom-type": "secret", "id": "s2",
                            "file": os.path.join(d, "none")},
             err("Unable to read %s: Failed to open file “%s”: No such "
                 "file or directory" % ((os.path.join(d, "none"),) * 2))),
            ("qom-list", {"path": "/objects"}, ok(entries(
                ("type", "string"), ("s0", "child<secret>"),
                ("f", "child<secret>"), ("k", "child<secret>"),
                ("s1", "child<secret>"), ("k2", "child<secret>")))),
            ("qom-list-types", {"implements": "secret"},
             ok([{"name": "secret", "parent": "secret_common"}])),
        ])


def test_memory_backend():
    mem = "/objects/mem"
    args = ["-M", "pc,memory-backend=mem", "-nodefaults", "-object",
            '{"qom-type": "memory-backend-ram", "id": "mem", '
            '"size": 268435456}']
    check(args, [
        ("qom-get", {"path": "/machine", "property": "memory-backend"},
         ok(mem)),
        ("query-memory-size-summary", {}, ok({"base-memory": 256 << 20,
                                              "plugged-memory": 0})),
        ("qom-get", {"path": mem, "property": "size"}, ok(256 << 20)),
        ("qom-get", {"path": mem, "property": "policy"}, ok("default")),
        ("qom-set", {"path": mem, "property": "dump", "value": False}, ok()),
        ("qom-get", {"path": mem, "property": "dump"}, ok(False)),
        ("qom-set", {"path": mem, "property": "size", "value": 4096},
         err("cannot change property size of memory-backend-ram ")),
        ("qom-set", {"path": mem, "property": "share", "value": True},
         err("cannot change property value")),
        ("qom-set", {"path": mem, "property": "policy", "value": "x"},
         err("Parameter 'policy' does not accept value 'x'")),
        ("object-del", {"id": "mem"},
         err("object 'mem' is in use, can not be deleted")),
        ("object-add", {"qom-type": "memory-backend-ram", "id": "m2",
                        "size": 0},
         err("property 'size' of memory-backend-ram doesn't take value "
             "'0'")),
        ("object-add", {"qom-type": "memory-backend-ram", "id": "m2",
                        "size": 1 << 20}, ok()),
        ("object-del", {"id": "m2"}, ok()),
    ])
    # without memory-backend= the machine makes its own, as QEMU 7.2
    check(["-M", "pc", "-nodefaults", "-m", "64"], [
        ("qom-get", {"path": "/machine", "property": "memory-backend"},
         ok("/objects/pc.ram")),
        ("qom-get", {"path": "/objects/pc.ram", "property": "size"},
         ok(64 << 20)),
        ("object-del", {"id": "pc.ram"},
         err("object 'pc.ram' is in use, can not be deleted")),
    ])


def test_not_supported():
    """Real QEMU types qmpd does not have are refused by name."""
    mine = transcript([], [("object-add", {"qom-type": "rng-random",
                                           "id": "r"}),
                           ("object-add", {"qom-type": "rng-builtin",
                                           "id": "t"}),
                           ("object-add", {"qom-type": "memory-backend-ram",
                                           "id": "m", "size": 4096,
                                           "share": True}),
                           ("qom-list", {"path": "/objects"})], False)
    assert mine == [
        err("object type 'rng-random' is not supported by qmpd"),
        err("object type 'rng-builtin' is not supported by qmpd"),
        err("memory-backend-ram property 'share' is not supported by qmpd"),
        ok(entries(("type", "string")))], mine


def start_error(prog, args):
    p = subprocess.run([prog, "-M", "none", "-nodefaults", "-display",
                        "none"] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=DEADLINE)
    assert p.returncode == 1, (prog, args, p.returncode, p.stderr)
    # "PROGRAM: message": the message after the program's name
    return p.stderr.decode().split(": ", 1)[1]


def test_cmdline_errors():
    cases = [
        (["-object", "iothread"], "-object iothread: Parameter 'id' is "
         "missing\n"),
        # QEMU reads keyval -object through QemuOpts: its messages
        (["-object", "iothread,id=a,poll-grow=x"], "-object "
         "iothread,id=a,poll-grow=x: Parameter 'poll-grow' expects an int64 "
         "value\n"),
        (["-object", "iothread,id=a,x=1"], "-object iothread,id=a,x=1: "
         "Invalid parameter 'x'\n"),
        (["-object", "memory-backend-ram,id=m,size=1Q"], "-object "
         "memory-backend-ram,id=m,size=1Q: Parameter 'size' expects a size "
         "value\n"),
        (["-object", "memory-backend-ram,id=m,size=1M,dump=maybe"],
         "-object memory-backend-ram,id=m,size=1M,dump=maybe: Parameter "
         "'dump' expects 'on' or 'off'\n"),
        (["-object", "iothread,id=1a"], "-object iothread,id=1a: Parameter "
         "'id' expects an identifier\nIdentifiers consist of letters, "
         "digits, '-', '.', '_', starting with a letter.\n"),
        # a refusal by the type names no option
        (["-object", "iothread,id=a,poll-grow=-1"], "poll-grow value must "
         "be in range [0, 9223372036854775807]\n"),
        (["-object", "secret,id=s,data=x,format=hex"], "-object "
         "secret,id=s,data=x,format=hex: Parameter 'format' does not accept "
         "value 'hex'\n"),
        (["-object", "nosuch,id=a"], "-object nosuch,id=a: Parameter "
         "'qom-type' does not accept value 'nosuch'\n"),
        (["-object", "iothread,id=a", "-object", "iothread,id=a"],
         "-object iothread,id=a: Duplicate ID 'a' for object\n"),
        (["-object", '{"qom-type": "iothread", "id": "a", "x": 1}'],
         "-object {\"qom-type\": \"iothread\", \"id\": \"a\", \"x\": 1}: "
         "Parameter 'x' is unexpected\n"),
        (["-object", "secret,id=s"], "Either 'file' or 'data' must be "
         "provided\n"),
        (["-object", "memory-backend-ram,id=m,size=1M", "-machine",
          "memory-backend=x"], "Memory backend 'x' not found\n"),
        (["-object", "memory-backend-ram,id=m,size=1M", "-machine",
          "memory-backend=m", "-m", "2M"], "Machine memory size does not "
         "match the size of the memory backend\n"),
    ]
    for args, want in cases:
        got = start_error(binary(), args)
        assert got == want, (args, got, want)
        if qemu_binary():
            ref = start_error(qemu_binary(), args)
            assert ref == want, (args, ref, want)


def test_cmdline_accepted():
    """keyval sizes and booleans as QEMU takes them; -object help."""
    q, c = reference.start([
        "-object", "memory-backend-ram,id=m,size=2M,dump=off",
        "-object", "iothread,id=i,poll-max-ns=0"])
    try:
        assert c.cmd("qom-get", path="m", property="size") == 2 << 20
        assert c.cmd("qom-get", path="m", property="dump") is False
        assert c.cmd("qom-get", path="i", property="poll-max-ns") == 0
        try:
            c.cmd("qom-get", path="/objects/nope", property="size")
            raise AssertionError("qom-get of a missing object")
        except QmpError as e:
            assert e.desc == "Device '/objects/nope' not found"
        c.cmd("quit")
        assert q.wait(DEADLINE) == 0
    finally:
        q.close()
    p = subprocess.run([binary(), "-object", "secret,help"],
                       capture_output=True, timeout=DEADLINE, check=True)
    assert p.stdout.decode() == (
        "secret options:\n  data=<string>\n  file=<string>\n"
        "  format=<QCryptoSecretFormat>\n  iv=<string>\n"
        "  keyid=<string>\n"), p.stdout


if __name__ == "__main__":
    run([test_iothread, test_device_iothread, test_no_objects_container, test_secret,
         test_memory_backend, test_not_supported, test_cmdline_errors,
         test_cmdline_accepted])
