# SPDX-License-Identifier: GPL-2.0-or-later
"""qmpd and the reference QEMU 7.2 started alike, for tests that run one
scenario on both and compare."""

import sys
import time

from qmpd import Qmpd, QmpClient, qemu_binary


def start(args, qemu=False):
    """qmpd (or QEMU) on @args (-M none unless given), and a negotiated
    QMP client.  The reference QEMU on a loaded machine now and then does
    not answer its first command (seen in CI, as in the compat tests):
    it is started once more, with a fresh process."""
    machine = [] if "-M" in args else ["-M", "none"]
    if not qemu:
        q = Qmpd(machine + list(args))
        c = q.connect()
        c.sock.settimeout(60)   # a loaded machine: generous, not tight
        return q, c
    for attempt in (1, 2):
        q = Qmpd(machine + list(args), binary_path=qemu_binary())
        try:
            return q, negotiate(q)
        except (TimeoutError, ConnectionError) as e:
            q.close()
            if attempt == 2:
                raise
            sys.stderr.write("# the reference QEMU did not answer (%r); "
                             "starting it once more\n" % (e,))


def negotiate(q):
    """A QMP session on QEMU @q, negotiated.  QEMU creates its socket
    file (bind) a moment before it listens."""
    deadline = time.time() + 30
    while True:
        try:
            c = QmpClient(q.qmp_path, negotiate=False, timeout=20)
            break
        except (ConnectionRefusedError, FileNotFoundError):
            if time.time() > deadline or q.proc.poll() is not None:
                raise
            time.sleep(0.01)
    q.clients.append(c)
    # QEMU 7.2's early RESUME, if any (see QmpClient), is not compared
    c.events.clear()
    r = c.execute("qmp_capabilities")
    if "QMP" in r:
        # QEMU 7.2 connected to while its monitor attaches to the socket
        # (on the main loop; the client is accepted first) now and then
        # greets twice (seen in CI): the second greeting is not a reply
        r = c.reply()
    if "error" in r and r["error"]["desc"].startswith(
            ("QMP input", "JSON parse error")):
        # and now and then it reads the first command's bytes out of
        # order ("QMP input member 'xeecute' is unexpected", "JSON parse
        # error, invalid keyword 'i'", seen in loaded make checks):
        # start() starts it once more
        raise ConnectionError("QEMU 7.2 garbled its first command: %r"
                              % (r,))
    assert r == {"return": {}}, (c.greeting, r)
    c.sock.settimeout(60)
    return c


def transcript(args, steps, qemu, fix=None):
    """The replies (without "id") to @steps, (command, arguments) pairs,
    on qmpd or QEMU started with @args, each passed through
    @fix(name, arguments, reply, qemu) when given; then quit."""
    q, c = start(args, qemu=qemu)
    try:
        out = []
        for name, a in steps:
            r = c.execute(name, a)
            r.pop("id", None)
            out.append(fix(name, a, r, qemu) if fix else r)
        c.execute("quit")
        assert q.wait(60) == 0
        return out
    finally:
        q.close()
