#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Report schema commands that no functional or compat test used.

Usage: coverage.py SCHEMA_DIR USED_FILE.  The harness appends every
command it runs to USED_FILE ($QMPD_COVERAGE_FILE); HMP commands run
through human-monitor-command count for their QMP command.
"""

import glob
import json
import os
import sys


def main():
    schema_dir, used_file = sys.argv[1], sys.argv[2]
    commands = []
    for path in sorted(glob.glob(os.path.join(schema_dir, "*.json"))):
        with open(path) as f:
            for d in json.load(f):
                if "command" in d and next(iter(d)) == "command":
                    commands.append(d["command"])
    used = set()
    if os.path.exists(used_file):
        with open(used_file) as f:
            used = {line.strip() for line in f}
    unused = [c for c in commands if c not in used]
    print("schema coverage: %d of %d commands used by tests"
          % (len(commands) - len(unused), len(commands)))
    for c in unused:
        print("  unused: %s" % c)


if __name__ == "__main__":
    main()
