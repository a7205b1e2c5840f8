#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""README's "Every option" tables against what qmpd accepts.

Every option and key the command line parses (the tables in
system/options.c, system/drive-options.c, system/machine.c, system/memory.c,
system/guest.c and monitor/chardev.c) and every argument of every QMP
command (qapi/schema/*.json, nested struct members, union branches)
must have a row in README.md, and every row must name something that
still exists.  A failure lists the rows to add or remove, table by
table.  Rows that say qmpd refuses something are run: the command-line
refusals all, and a sample of QMP ones, whose error must be the message
the row quotes.

How the QMP tables are laid out (the test computes the same layout):
each command has a table "#### `command`" with a row per argument;
members of a struct argument are rows "`arg.member`", except that a
union, or a struct used in two or more places, has a table of its own
("#### `Type`"): its members, then one row "`tag=value`" per branch,
and a table "#### `Type` `value`" for the members of each branch that
is not refused.  A row whose text starts with "refused" stands for its
whole subtree (no rows below it).  A transaction action that is also a
command (blockdev-backup, ...) has only its row in `TransactionAction`,
its arguments being the command's.  Commands
without arguments are rows of one table "#### Commands without
arguments".
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import (NEED_QEMU_UTILS, Qmpd, QmpError, Skip,  # noqa: E402
                  binary, run)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("QMPD_SRCDIR", os.path.join(HERE, "..", ".."))
NO_ARGS = "Commands without arguments"
OPTIONS = "Options"


# -- README ---------------------------------------------------------------

def readme_tables():
    """{table key: {row name: text}} of README's "## Every option"."""
    with open(os.path.join(SRC, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## Every option\n(.*?)(?=^## )", text, re.M | re.S)
    assert m, "README.md has no '## Every option' section before the next"
    tables = {}
    cur = None
    for line in m.group(1).splitlines():
        h = re.match(r"^#### (.*)", line)
        if h:
            ticks = re.findall(r"`([^`]+)`", h.group(1))
            key = " ".join(ticks) if ticks else h.group(1).strip()
            assert key not in tables, "README: table '%s' twice" % key
            cur = tables[key] = {}
            continue
        if cur is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: "):
            continue
        desc = "|".join(cells[1:]).strip()
        for name in re.findall(r"`([^`]+)`", cells[0]):
            assert name not in cur, "README: row `%s` twice in '%s'" % (
                name, key)
            cur[name] = desc
    return tables


def refused(desc):
    return desc.lower().startswith("refused")


def quoted_refusals(desc):
    return re.findall(r'refused[^:"|]*: "([^"]*)"', desc)


# -- the schema ----------------------------------------------------------

def load_schema():
    defs, commands = {}, []
    for path in sorted(glob.glob(os.path.join(SRC, "qapi/schema/*.json"))):
        with open(path) as f:
            for d in json.load(f):
                if "hmp" in d:
                    continue
                if "command" in d:
                    commands.append(d)
                for kind in ("struct", "union", "alternate", "enum"):
                    if kind in d:
                        defs[d[kind]] = (kind, d)
    return defs, commands


def type_name(t):
    if isinstance(t, list):
        return type_name(t[0])
    if isinstance(t, dict):
        return type_name(t["type"])
    return t


def complex_types(defs, t):
    """The struct/union types a member of type @t holds (via alternates)."""
    t = type_name(t)
    if t not in defs:
        return []
    kind, d = defs[t]
    if kind == "alternate":
        return [x for v in d["data"].values() for x in complex_types(defs, v)]
    return [t] if kind in ("struct", "union") else []


def own_members(defs, name):
    """[(member, type)] of a struct, or of a union's base."""
    kind, d = defs[name]
    out = []
    base = d.get("base")
    if isinstance(base, str):
        out += own_members(defs, base)
    elif isinstance(base, dict):
        out += list(base.items())
    if kind == "struct":
        out += list((d.get("data") or {}).items())
    return [(m.lstrip("*"), t) for m, t in out]


def shared_types(defs, commands):
    """Unions, and structs used by two or more members: own tables.

    A command's own argument struct is its table, and a transaction
    action that is a command only refers to it.
    """
    names = {c["command"] for c in commands}
    args = {c["data"] for c in commands if isinstance(c.get("data"), str)}
    uses = {}
    seen = set()

    def visit(members, owner):
        for m, t in members:
            if owner.startswith("TransactionAction ") and m == "data" \
                    and owner.split()[1] in names:
                continue
            for c in complex_types(defs, t):
                uses.setdefault(c, set()).add((owner, m))
                if c not in seen:
                    seen.add(c)
                    visit(own_members(defs, c), c)
                    if defs[c][0] == "union":
                        for v, bt in defs[c][1]["data"].items():
                            visit(own_members(defs, bt), c + " " + v)

    for c in commands:
        data = c.get("data")
        if isinstance(data, dict):
            visit([(m.lstrip("*"), t) for m, t in data.items()], c["command"])
        elif isinstance(data, str):
            visit([("", data)], c["command"])
    return {t for t, u in uses.items() if defs[t][0] == "union"
            or (len(u) > 1 and t not in args)}


def expected_qmp(defs, commands, readme):
    """{table: [row names]} the schema asks for, pruned at refused rows."""
    shared = shared_types(defs, commands)
    command_names = {c["command"] for c in commands}
    want = {NO_ARGS: []}
    todo = []

    def rows(table, members, prefix=""):
        got = readme.get(table, {})
        for m, t in members:
            name = prefix + m
            want[table].append(name)
            if refused(got.get(name, "")):
                continue
            for c in complex_types(defs, t):
                if c in shared:
                    todo.append(c)
                else:
                    rows(table, own_members(defs, c), name + ".")

    for c in commands:
        data = c.get("data")
        name = c["command"]
        if not data:
            want[NO_ARGS].append(name)
            continue
        want.setdefault(name, [])
        if isinstance(data, str):
            if data in shared:
                todo.append(data)
            else:
                rows(name, own_members(defs, data))
        else:
            rows(name, [(m.lstrip("*"), t) for m, t in data.items()])
    done = set()
    while todo:
        t = todo.pop(0)
        if t in done:
            continue
        done.add(t)
        want[t] = []
        rows(t, own_members(defs, t))
        kind, d = defs[t]
        if kind != "union":
            continue
        for v, bt in d["data"].items():
            tag = "%s=%s" % (d["discriminator"], v)
            want[t].append(tag)
            if t == "TransactionAction" and v in command_names:
                continue        # the command's own table says it
            if not refused(readme.get(t, {}).get(tag, "")):
                want[t + " " + v] = []
                rows(t + " " + v, own_members(defs, bt))
    return want


# -- the command line -----------------------------------------------------

def c_source(path):
    with open(os.path.join(SRC, path)) as f:
        return f.read()


def c_strings(src, pattern, what):
    """The string literals of the C array or block @pattern matches."""
    m = re.search(pattern, src, re.S)
    assert m, "cannot find %s (pattern %r): update %s" % (
        what, pattern, os.path.basename(__file__))
    return re.findall(r'"([^"]*)"', m.group(1))


def cmdline():
    """({table: [row names]}, [unsupported option names])."""
    opts = c_source("system/options.c")
    table = c_strings(opts, r"static const Option options\[\] = \{(.*?)\};",
                      "the option table in system/options.c")
    names = ["-" + n for n in table]
    # -h, -help and -version are handled before the table
    parse = re.search(r"int qmpd_parse_options\(.*?\n\}", opts, re.S).group(0)
    names += ["-" + n for n in re.findall(r'!strcmp\(name, "([\w-]+)"\)',
                                           parse)]
    unsupported = c_strings(opts, r"unsupported\[\] = \{(.*?)\};",
                            "unsupported[] in system/options.c")

    def fn_keys(src, fn, what, array="keys"):
        return c_strings(src, r"%s\(.*?%s\[\] = \{(.*?)\};" % (fn, array),
                         what)

    drive = c_source("system/drive-options.c")
    machine = c_source("system/machine.c")
    props = c_source("system/guest-props.c")
    chardev = c_source("monitor/chardev.c")
    want = {
        OPTIONS: names + ["-" + n for n in unsupported],
        "-drive": c_strings(drive, r"own\[\] = \{(.*?)\};",
                            "-drive's own keys in system/drive-options.c"),
        "-M": ["type", "accel", "memory-backend"] + re.findall(
            r'\{ "([\w-]+)", (?:true|false),',
            re.search(r"machine_props\[\] = \{(.*?)\};", machine,
                      re.S).group(1)),
        "-accel": fn_keys(machine, "machine_parse_accel", "-accel keys",
                          "accel_keys"),
        "-m": fn_keys(c_source("system/memory.c"), "memory_parse", "-m keys"),
        "-name": fn_keys(opts, "opt_name", "-name keys"),
        "-display": fn_keys(opts, "opt_display", "-display keys"),
        "-mon": fn_keys(opts, "opt_mon", "-mon keys"),
        "-chardev": sorted(set(
            c_strings(chardev, r"socket_keys\[\] = \{(.*?)\};", "socket keys")
            + c_strings(chardev, r"stdio_keys\[\] = \{(.*?)\};", "stdio keys")
            + c_strings(chardev, r"null_keys\[\] = \{(.*?)\};", "null keys"))),
        "-qmp -monitor -qtest": sorted(set(
            re.findall(r'g_str_has_prefix\(uri, "([\w]+:)"\)', chardev)
            + re.findall(r'!strcmp\(uri, "(\w+)"\)', chardev))),
        # driver, id and bus are every model's; the rest per model
        "-device": ["driver", "id", "bus"] + re.findall(
            r'\{ "([\w-]+)", PT_', re.search(
                r"dev_props\[\] = \{(.*?)\};", props, re.S).group(1)),
    }
    return want, unsupported


# -- checks ---------------------------------------------------------------

def compare(want, readme):
    """Lines saying what to add to or remove from README.md."""
    out = []
    for table, names in want.items():
        got = readme.get(table)
        if got is None:
            out.append("README.md: add a table '#### %s' with rows: %s" % (
                " ".join("`%s`" % w for w in table.split()), ", ".join(
                    "`%s`" % n for n in names) or "(none)"))
            continue
        missing = [n for n in names if n not in got]
        stale = [n for n in got if n not in names]
        if missing:
            out.append("README.md table '%s': add rows %s" % (
                table, ", ".join("`%s`" % n for n in missing)))
        if stale:
            out.append("README.md table '%s': remove rows (no longer "
                       "accepted) %s" % (table, ", ".join(
                           "`%s`" % n for n in stale)))
        empty = [n for n in names if n in got and not got[n]]
        if empty:
            out.append("README.md table '%s': say what these do: %s" % (
                table, ", ".join("`%s`" % n for n in empty)))
    for table in readme:
        if table not in want:
            out.append("README.md: remove table '%s' (nothing of that name "
                       "any more)" % table)
    return out


def block_drivers():
    """The drivers block/drivers/*.c define (a BlockDriver's .name), and
    those of block/jobs/*.c (the copy-before-write filter, which runs
    the copy engine and registers itself)."""
    names = set()
    for part in ("drivers", "jobs"):
        folder = os.path.join(SRC, "block", part)
        for f in sorted(os.listdir(folder)):
            if f.endswith(".c"):
                names.update(re.findall(
                    r'const BlockDriver \w+ = \{[^}]*?\.name = "([\w-]+)"',
                    c_source(os.path.join("block", part, f)), re.S))
    assert "qcow2" in names and "file" in names, names
    return names


def driver_rows_wrong(readme):
    """A driver row of BlockdevOptions that says refused for a driver
    qmpd has, or the other way round."""
    have = block_drivers()
    out = []
    for row, desc in readme.get("BlockdevOptions", {}).items():
        if not row.startswith("driver="):
            continue
        drv = row.split("=", 1)[1]
        if refused(desc) == (drv in have):
            out.append("README.md table 'BlockdevOptions': row `%s` says %s "
                       "but block/ %s it" % (
                           row, "refused" if refused(desc) else "it works",
                           "defines" if drv in have else "does not define"))
    return out


def test_every_option_has_a_row():
    readme = readme_tables()
    defs, commands = load_schema()
    want, _ = cmdline()
    want.update(expected_qmp(defs, commands, readme))
    problems = compare(want, readme) + driver_rows_wrong(readme)
    assert not problems, "\n" + "\n".join(problems)


def test_layout_rules():
    """The test's own layout rules hold on a known case."""
    defs, commands = load_schema()
    want = expected_qmp(defs, commands, {})
    assert "BlockdevOptions" in want and "BlockdevOptions qcow2" in want
    assert "lazy-refcounts" in want["BlockdevOptions qcow2"]
    assert "overlap-check.template" in want["BlockdevOptions qcow2"]
    assert "driver=gluster" in want["BlockdevOptions"]
    assert "type=drive-backup" in want["TransactionAction"]
    assert "TransactionAction drive-backup" not in want
    assert want["TransactionAction abort"] == ["data"]
    assert "query-block" in want[NO_ARGS]
    # a refused row stands for what is below it
    pruned = expected_qmp(defs, commands, {"BlockdevOptions": {
        "driver=gluster": "refused: x"}})
    assert "BlockdevOptions gluster" not in pruned


def test_cmdline_refusals():
    """Every option unsupported[] names gives the message the row quotes."""
    readme = readme_tables()
    _, unsupported = cmdline()
    opts = readme[OPTIONS]
    for name in unsupported:
        msgs = quoted_refusals(opts["-" + name])
        assert len(msgs) == 1, ("-" + name, opts["-" + name])
        p = subprocess.run([binary(), "-" + name, "x"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        assert p.returncode == 1, (name, p.returncode)
        want = msgs[0].replace("NAME", name)
        assert p.stderr.decode().splitlines()[0] == want, (
            name, p.stderr.decode(), want)


# (table, row, command line): qmpd must fail to start with "qmpd: " and
# one of the row's quoted refusals (NAME: the row's value after "=")
CMDLINE_SAMPLES = [
    ("-drive", "snapshot", ["-drive", "driver=null-co,if=none,snapshot=on"]),
    ("-drive", "media", ["-drive", "driver=null-co,if=none,media=foo"]),
    ("-drive", "if", ["-drive", "driver=null-co,if=floppy"]),
    ("-drive", "index", ["-drive", "driver=null-co,if=none,index=1,bus=1"]),
    ("-drive", "copy-on-read", ["-drive",
                                "driver=null-co,if=none,copy-on-read=maybe"]),
    ("-drive", "readonly", ["-drive", "driver=null-co,if=none,readonly=on,"
                            "read-only=on"]),
    ("-drive", "serial", ["-drive", "driver=null-co,if=none,serial=x"]),
    ("-M", "usb", ["-M", "pc,usb=on"]),
    ("-M", "type", ["-M", "sun4m"]),
    ("-accel", "accel", ["-accel", "kvm"]),
    ("-display", "type", ["-display", "gtk"]),
    ("-display", "gl", ["-display", "none,gl=on"]),
    ("-chardev", "backend", ["-chardev", "pty,id=c"]),
    ("-chardev", "tn3270", ["-chardev", "socket,id=c,path=/nonexistent/s,"
                            "server=on,wait=off,tn3270=on"]),
    ("-chardev", "websocket", ["-chardev", "socket,id=c,host=127.0.0.1,"
                               "port=1,server=on,wait=off,websocket=on"]),
    ("-chardev", "mux", ["-chardev", "stdio,id=c,mux=on"]),
    ("-mon", "id", ["-chardev", "null,id=c", "-mon", "chardev=c,id=m",
                    "-chardev", "null,id=d", "-mon", "chardev=d,id=m"]),
    ("-device", "addr", ["-drive", "driver=null-co,if=none,id=d0",
                         "-device", "virtio-blk-pci,drive=d0,addr=0"]),
    (OPTIONS, "-vga", ["-vga", "std"]),
    (OPTIONS, "-incoming", ["-incoming", "foo:bar"]),
]


def row_refusals(readme, table, row):
    desc = readme[table][row]
    msgs = [m.replace("NAME", row.split("=")[-1])
            for m in quoted_refusals(desc)]
    assert msgs, "README table '%s' row `%s` quotes no refusal: %s" % (
        table, row, desc)
    return msgs


def test_cmdline_sample_refusals():
    readme = readme_tables()
    for table, row, args in CMDLINE_SAMPLES:
        msgs = row_refusals(readme, table, row)
        p = subprocess.run([binary(), "-nodefaults"] + args,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        err = p.stderr.decode().splitlines()
        assert p.returncode == 1 and err, (args, p.returncode, err)
        # "qmpd: -OPTION ARG: message" or, as QEMU for -M, "qmpd: message"
        assert any(err[0] in ("qmpd: " + m, "qmpd: %s: %s" % (
            " ".join(args[-2:]), m)) for m in msgs), (table, row, err[0],
                                                     msgs)


def qmp_samples(d, spare):
    """(table, row, command, arguments) that qmpd must refuse."""
    file = {"driver": "file", "filename": spare}
    qcow2 = {"driver": "qcow2", "node-name": "n", "file": file}
    backup = {"device": "q", "target": "t", "sync": "full"}
    return [
        ("BlockdevOptions", "driver=gluster", "blockdev-add",
         {"driver": "gluster", "node-name": "n", "volume": "v", "path": "p",
          "server": [{"type": "unix", "path": "/x"}]}),
        ("BlockdevOptions", "driver=vmdk", "blockdev-add",
         {"driver": "vmdk", "node-name": "n", "file": file}),
        ("BlockdevOptions file", "pr-manager", "blockdev-add",
         dict(file, **{"node-name": "n", "pr-manager": "pr0"})),
        ("BlockdevOptions file", "aio", "blockdev-add",
         dict(file, **{"node-name": "n", "aio": "io_uring"})),
        ("BlockdevOptions file", "drop-cache", "blockdev-add",
         dict(file, **{"node-name": "n", "drop-cache": False})),
        ("BlockdevOptions qcow2", "lazy-refcounts", "blockdev-add",
         dict(qcow2, **{"lazy-refcounts": True})),
        ("BlockdevOptions qcow2", "l2-cache-entry-size", "blockdev-add",
         dict(qcow2, **{"l2-cache-entry-size": 512})),
        ("BlockdevOptions qcow2", "encrypt", "blockdev-add",
         dict(qcow2, encrypt={"format": "luks", "key-secret": "s"})),
        ("BlockdevOptions qcow2", "data-file", "blockdev-add",
         dict(qcow2, **{"data-file": "f"})),
        ("BlockdevOptions blkdebug", "inject-error.event", "blockdev-add",
         {"driver": "blkdebug", "node-name": "n", "image": file,
          "inject-error": [{"event": "vmstate_load"}]}),
        ("BlockdevOptions blkdebug", "inject-error.immediately",
         "blockdev-add",
         {"driver": "blkdebug", "node-name": "n", "image": file,
          "inject-error": [{"event": "read_aio", "immediately": True}]}),
        ("TransactionAction", "type=blockdev-snapshot-internal-sync",
         "transaction", {"actions": [{
             "type": "blockdev-snapshot-internal-sync",
             "data": {"device": "q", "name": "s"}}]}),
        ("transaction", "properties.completion-mode", "transaction",
         {"actions": [{"type": "block-dirty-bitmap-add",
                       "data": {"node": "q", "name": "b"}}],
          "properties": {"completion-mode": "grouped"}}),
        ("BackupPerf", "use-copy-range", "blockdev-backup",
         dict(backup, **{"x-perf": {"use-copy-range": True}})),
        ("blockdev-backup", "compress", "blockdev-backup",
         dict(backup, compress=True)),
        ("blockdev-mirror", "sync", "blockdev-mirror",
         dict(backup, sync="incremental")),
        ("drive-mirror", "format", "drive-mirror",
         {"device": "q", "target": os.path.join(d, "m.vmdk"), "sync": "full",
          "format": "vmdk"}),
        ("blockdev-snapshot-sync", "format", "blockdev-snapshot-sync",
         {"node-name": "q", "snapshot-node-name": "s",
          "snapshot-file": os.path.join(d, "s.vmdk"), "format": "vmdk"}),
        ("-device", "addr", "device_add",
         {"driver": "virtio-blk-pci", "drive": "q", "addr": "0"}),
        ("qmp_capabilities", "enable", "qmp_capabilities", {}),
    ]


def test_qmp_sample_refusals():
    if not shutil.which("qemu-img"):
        raise Skip("qemu-img is not installed", NEED_QEMU_UTILS)
    readme = readme_tables()
    with tempfile.TemporaryDirectory() as d, Qmpd() as q:
        imgs = {}
        for name in ("q", "t", "spare"):
            imgs[name] = os.path.join(d, name + ".qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                            imgs[name], "1M"], check=True)
        c = q.connect()
        for name in ("q", "t"):
            c.cmd("blockdev-add", driver="qcow2", **{
                "node-name": name, "file": {
                    "driver": "file", "filename": imgs[name],
                    "node-name": name + "-file"}})
        before = c.cmd("query-named-block-nodes")
        for table, row, cmd, args in qmp_samples(d, imgs["spare"]):
            msgs = row_refusals(readme, table, row)
            try:
                c.cmd(cmd, **args)
            except QmpError as e:
                assert e.desc in msgs, (table, row, e.desc, msgs)
            else:
                raise AssertionError("%s %s accepted" % (cmd, args))
        # the refusals changed nothing
        assert c.cmd("query-named-block-nodes") == before
        assert c.cmd("query-jobs") == []
        c.cmd("quit")
        assert q.wait(30) == 0
        for path in imgs.values():
            subprocess.run(["qemu-img", "check", "-q", path], check=True)
        assert sorted(os.listdir(d)) == ["q.qcow2", "spare.qcow2",
                                         "t.qcow2"], os.listdir(d)



def test_help_and_man_page_name_every_option():
    """qmpd -h and the man page name every option qmpd takes."""
    names = [n.split(",")[0] for n in cmdline()[0][OPTIONS]
             if n not in ["-" + u for u in cmdline()[1]]]
    p = subprocess.run([binary(), "-h"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    usage = p.stdout.decode()
    man = c_source("system/qmpd.1").replace("\\-", "-")
    missing = []
    for n in names:
        word = re.compile(r"(?<![\w-])%s(?![\w-])" % re.escape(n))
        if not word.search(usage):
            missing.append("qmpd -h (system/options.c print_usage): " + n)
        if not word.search(man):
            missing.append("system/qmpd.1: " + n)
    assert not missing, "\n" + "\n".join(missing)

if __name__ == "__main__":
    run([test_layout_rules, test_every_option_has_a_row,
         test_cmdline_refusals, test_cmdline_sample_refusals,
         test_qmp_sample_refusals, test_help_and_man_page_name_every_option])
