#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Command-line errors: exit status and message as QEMU 7.2 prints them.

The program name differs ("qemu-system-x86_64:" vs "qmpd:") and is
normalised away.  Skips (77) when QEMU is not installed.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
from qmpd import binary, need_qemu, run, sanitizer_report  # noqa: E402

CASES = [
    ["-foo"],
    ["-m"],
    ["-M", "bogus"],
    ["-M", "none", "-m", "foo"],
    ["-M", "none", "-chardev", "socket,id=c,path=/tmp/x,bogus=1"],
    ["-M", "none", "-mon", "chardev=nope"],
    ["-M", "none", "-qmp", "unix:/nonexistent/dir/s,server=on,wait=off"],
    ["-M", "none", "-accel", "foo"],
    ["-M", "none,foo=bar"],
    ["-M", "none", "-device", "nosuch"],
    ["-M", "none", "-chardev", "socket,id=x"],
    ["-M", "none", "-chardev", "socket,id=x,host=h"],
    ["-M", "none", "-chardev", "socket,path=/x"],
    ["-M", "none", "-qmp", "unix:/x,wait=off"],
    ["-M", "none", "-qmp", "tcp:4444"],
    ["-M", "none", "-qmp", "stdio", "-monitor", "stdio"],
    ["-M", "none", "-chardev", "socket,id=c,path=/nonexistent/x",
     "-mon", "chardev=c"],
    ["-M", "none", "-mon", "chardev=c,mode=bogus", "-chardev", "null,id=c"],
    ["-M", "none", "-chardev", "socket,id=a,path=/tmp/a,server=on,wait=off",
     "-chardev", "socket,id=a,path=/tmp/b,server=on,wait=off"],
    # socket keys: one address, reconnect for clients only, numbers
    ["-M", "none", "-chardev", "socket,id=c,path=/tmp/a,host=127.0.0.1,"
     "port=1,server=on,wait=off", "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,path=/tmp/a,fd=3", "-mon",
     "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,path=/tmp/a,server=on,wait=off,"
     "reconnect=1", "-mon", "chardev=c"],
    ["-M", "none", "-qmp", "unix:/tmp/a,server=on,wait=off,reconnect=1"],
    ["-M", "none", "-chardev", "socket,id=c,path=/tmp/a,reconnect=x",
     "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,path=/nonexistent/a,"
     "reconnect=-1", "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,host=127.0.0.1,port=5000,to=x,"
     "server=on,wait=off", "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,host=127.0.0.1,port=5000,"
     "to=4000,server=on,wait=off", "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,path=a,abstract=maybe,server=on,"
     "wait=off", "-mon", "chardev=c"],
    ["-M", "none", "-chardev", "socket,id=c,path=a,abstract=on,tight=maybe,"
     "server=on,wait=off", "-mon", "chardev=c"],
]


def first_error(prog, args):
    p = subprocess.run([prog] + args + ["-display", "none", "-nodefaults"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    err = p.stderr.decode(errors="replace")
    if prog == binary():
        assert sanitizer_report(err) is None, sanitizer_report(err)
    line = err.splitlines()[0] if err else ""
    return p.returncode, line.split(": ", 1)[1] if ": " in line else line


def test_errors_match():
    qemu = need_qemu()
    bad = []
    for args in CASES:
        theirs = first_error(qemu, args)
        ours = first_error(binary(), args)
        if theirs != ours:
            bad.append("%s\n  qemu: %r\n  qmpd: %r" % (" ".join(args),
                                                       theirs, ours))
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    run([test_errors_match])
