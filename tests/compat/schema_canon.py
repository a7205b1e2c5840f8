# SPDX-License-Identifier: GPL-2.0-or-later
"""Canonical form of query-qmp-schema entries.

Type names in query-qmp-schema are opaque numbers that differ between
implementations; this turns a command's or event's argument and return
types into nested plain structures (recursion cut at repeated types) so
two schemas can be compared command by command.
"""


def index(schema):
    return {e["name"]: e for e in schema}


def canon(idx, name, seen=()):
    e = idx[name]
    mt = e["meta-type"]
    if mt == "builtin":
        return e["json-type"]
    if name in seen:
        return "<recursive>"
    seen = seen + (name,)
    if mt == "enum":
        return {"enum": sorted(e["values"])}
    if mt == "array":
        return [canon(idx, e["element-type"], seen)]
    if mt == "alternate":
        return {"alternate": sorted((canon(idx, m["type"], seen)
                                     for m in e["members"]), key=repr)}
    if mt == "object":
        out = {"members": {m["name"]: {"type": canon(idx, m["type"], seen),
                                       "optional": "default" in m,
                                       "features": sorted(m.get("features", []))}
                           for m in e["members"]
                           # downstream extension members are ours alone
                           if not m["name"].startswith("__")},
               "features": sorted(e.get("features", []))}
        if "tag" in e:
            out["tag"] = e["tag"]
            out["variants"] = {v["case"]: canon(idx, v["type"], seen)
                               for v in e["variants"]}
        return out
    raise ValueError(mt)


def entity(idx, name):
    e = idx[name]
    out = {"meta-type": e["meta-type"],
           "features": sorted(e.get("features", [])),
           "arg-type": canon(idx, e["arg-type"])}
    if e["meta-type"] == "command":
        out["ret-type"] = canon(idx, e["ret-type"])
        out["allow-oob"] = e.get("allow-oob", False)
    return out
