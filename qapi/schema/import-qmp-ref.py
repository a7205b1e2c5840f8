#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write schema definitions for QEMU 7.2 commands and events.

The interface facts come from QEMU itself: the exact structure (members,
optional flags, enum values in order, union tags and variants, alternate
branches, features) from a running qemu-system-x86_64's
query-qmp-schema, and the type names (which introspection masks) from
the QMP reference manual, walking both top-down from each command.
Integer widths are not in either source; WIDTHS lists the ones whose
range errors matter.  The output has no documentation text: the "doc"
strings in qapi/schema/ are written by hand.

    import-qmp-ref.py [--skip FILE.json ...] NAME... > new.json
"""

import argparse
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

MANPAGE = "/usr/share/man/man7/qemu-qmp-ref.7.gz"

# (type, member) -> QAPI integer type, where QEMU uses a sized one.
WIDTHS = {
    ("drive-mirror", "granularity"): "uint32",
    ("blockdev-mirror", "granularity"): "uint32",
    ("block-dirty-bitmap-add", "granularity"): "uint32",
    ("BlockDirtyInfo", "granularity"): "uint32",
    ("BlockdevCreateOptionsQcow2", "size"): "size",
    ("BlockdevCreateOptionsQcow2", "cluster-size"): "size",
    ("BlockdevCreateOptionsFile", "size"): "size",
    ("BlockdevCreateOptionsRaw", "size"): "size",
    ("block_resize", "size"): "int",
    ("MigrationParameters", "compress-level"): "uint8",
    ("MigrateSetParameters", "compress-level"): "uint8",
}


def unroff(s):
    s = re.sub(r"\\f[BIPR]", "", s)
    return s.replace("\\-", "-").replace("\\(dq", '"').replace("\\(aq", "'")


def parse_manual(path):
    """name -> {kind, members: [(name, type, optional)], variants: {}}"""
    defs = {}
    cur = None
    section = None
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    for raw in lines:
        m = re.match(r"^\.SS \\fB(.*?)\\fP \((\w+)\)", raw)
        if m:
            cur = {"kind": m.group(2), "members": [], "variants": {},
                   "bases": []}
            defs[unroff(m.group(1))] = cur
            section = None
            continue
        m = re.match(r"^\.SS (\w+)", raw)
        if m:
            section = m.group(1)
            continue
        if cur is None:
            continue
        m = re.search(r"see the documentation of (\w+)", unroff(raw))
        if m and cur["kind"] in ("Command", "Event"):
            cur["args_type"] = m.group(1)
        if section not in ("Members", "Arguments", "Values"):
            continue
        line = unroff(raw[3:] if raw.startswith(".B ") else raw)
        m = re.match(r"^The members of (\S+) when (\S+) is \"(.*?)\"", line)
        if m:
            cur["variants"][m.group(3)] = m.group(1)
            continue
        m = re.match(r"^The members of (\S+)$", line)
        if m:
            cur["bases"].append(m.group(1))
            continue
        if section == "Values":
            m = re.match(r"^(\S+)$", line)
            if raw.startswith(".B ") and m:
                cur["members"].append((m.group(1), None, False))
            continue
        m = re.match(r"^([\w.-]+): (array of )?(\S+)( \(optional\))?", line)
        if m and (raw.startswith(".B ") or raw.startswith("\\fB")):
            t = m.group(3)
            cur["members"].append((m.group(1),
                                   "[%s]" % t if m.group(2) else t,
                                   bool(m.group(4))))
    return defs


def qemu_schema(binary):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "s")
    p = subprocess.Popen([binary, "-M", "none", "-nodefaults", "-display",
                          "none", "-qmp", "unix:%s,server=on,wait=off" % path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(path):
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        f = s.makefile("rwb")
        f.readline()
        for c in ("qmp_capabilities", "query-qmp-schema"):
            f.write(json.dumps({"execute": c}).encode())
            f.flush()
            r = json.loads(f.readline())
        return r["return"]
    finally:
        p.kill()
        p.wait()


BUILTIN = {"str": "str", "int": "int", "number": "number", "bool": "bool",
           "null": "null", "any": "any"}
MAN_BUILTIN = {"string": "str", "int": "int", "number": "number",
               "boolean": "bool", "null": "null", "value": "any"}


class Importer:
    def __init__(self, intro, manual, skip):
        self.intro = {e["name"]: e for e in intro}
        self.manual = manual
        self.skip = skip
        self.names = {}         # masked name -> real name
        self.out = {}           # real name -> definition
        self.order = []

    def name_of(self, masked, man_type, ctx):
        e = self.intro[masked]
        if e["meta-type"] == "builtin":
            return BUILTIN[masked]
        if e["meta-type"] == "array":
            inner = man_type[1:-1] if man_type and man_type.startswith("[") \
                else None
            return [self.name_of(e["element-type"], inner, ctx)]
        if man_type in MAN_BUILTIN:
            return MAN_BUILTIN[man_type]
        if masked not in self.names:
            if not man_type:
                raise SystemExit("no name for %s in %s" % (masked, ctx))
            self.names[masked] = man_type
            self.define(masked, man_type)
        return self.names[masked]

    def man_members(self, name):
        d = self.manual.get(name, {"members": [], "bases": []})
        out = {m[0]: m[1] for m in d["members"]}
        for b in d["bases"]:
            out.update(self.man_members(b))
        return out

    def members_json(self, owner, masked_obj, man_name):
        mm = self.man_members(man_name)
        data = {}
        for m in masked_obj["members"]:
            t = self.name_of(m["type"], mm.get(m["name"]),
                             "%s.%s" % (man_name, m["name"]))
            t = WIDTHS.get((owner, m["name"]), t)
            key = ("*" if "default" in m else "") + m["name"]
            data[key] = {"type": t, "features": m["features"]} \
                if m.get("features") else t
        return data

    def define(self, masked, name):
        e = self.intro[masked]
        mt = e["meta-type"]
        if name in self.skip:
            return
        if mt == "enum":
            vals = [{"name": m["name"], "features": m["features"]}
                    if m.get("features") else m["name"]
                    for m in e["members"]]
            d = {"enum": name, "data": vals}
        elif mt == "alternate":
            man = [m[1] for m in self.manual[name]["members"]]
            keys = [m[0] for m in self.manual[name]["members"]]
            data = {}
            for i, m in enumerate(e["members"]):
                data[keys[i]] = self.name_of(m["type"], man[i], name)
            d = {"alternate": name, "data": data}
        elif mt == "object":
            data = self.members_json(name, e, name)
            if "tag" in e:
                man_vars = self.manual[name]["variants"]
                variants = {}
                for v in e["variants"]:
                    ve = self.intro[v["type"]]
                    if not ve["members"] and "tag" not in ve:
                        continue        # an empty branch is implicit
                    vt = self.name_of(v["type"], man_vars.get(v["case"]),
                                      "%s/%s" % (name, v["case"]))
                    variants[v["case"]] = vt
                d = {"union": name, "base": data,
                     "discriminator": e["tag"], "data": variants}
            else:
                d = {"struct": name, "data": data}
        else:
            raise SystemExit("unexpected %s %s" % (mt, name))
        if e.get("features"):
            d["features"] = e["features"]
        self.out[name] = d
        self.order.append(name)

    def entity(self, name):
        e = self.intro[name]
        kind = e["meta-type"]
        d = {kind: name}
        arg = self.intro[e["arg-type"]]
        man = self.manual.get(name, {"members": [], "bases": []})
        if man["bases"] and arg["meta-type"] == "object" and "tag" in arg:
            d["data"] = self.name_of(e["arg-type"], man["bases"][0], name)
            d["boxed"] = True
        elif man.get("args_type"):
            d["data"] = self.name_of(e["arg-type"], man["args_type"], name)
        elif arg["members"] or "tag" in arg:
            # a command documented without its arguments (merge): the
            # type names come from the object with the same members
            src = name if man["members"] or man["bases"] else \
                self.guess_return(name, e["arg-type"]) or name
            d["data"] = self.members_json(name, arg, src)
        if kind == "command":
            rt = e["ret-type"]
            r = self.intro[rt]
            if not (r["meta-type"] == "object" and not r["members"]
                    and "tag" not in r):
                d["returns"] = self.name_of(rt, self.guess_return(name, rt),
                                            name + " returns")
            if e.get("allow-oob"):
                d["allow-oob"] = True
        if e.get("features"):
            d["features"] = e["features"]
        return d

    def guess_return(self, cmd, masked):
        """The manual gives returns as prose; find the type it names."""
        e = self.intro[masked]
        if e["meta-type"] == "array":
            inner = self.guess_return(cmd, e["element-type"])
            return "[%s]" % inner if inner else None
        if e["meta-type"] == "builtin":
            return masked
        want = {m["name"] for m in e.get("members", [])}
        hits = [n for n, d in self.manual.items()
                if d["kind"] == "Object" and set(self.man_members(n)) == want]
        hits.sort(key=lambda n: (n not in self.manual_returns(cmd), n))
        return hits[0] if hits else None

    def manual_returns(self, cmd):
        return set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--skip", action="append", default=[],
                    help="schema file whose types already exist")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    skip = set()
    for f in a.skip:
        for d in json.load(open(f)):
            k = next(iter(d))
            if k in ("struct", "union", "enum", "alternate"):
                skip.add(d[k])
    imp = Importer(qemu_schema(a.qemu), parse_manual(MANPAGE), skip)
    ents = [imp.entity(n) for n in a.names]
    out = [imp.out[n] for n in imp.order] + ents
    sys.stdout.write("[\n" + ",\n\n".join(json.dumps(d) for d in out)
                     + "\n]\n")


if __name__ == "__main__":
    main()
