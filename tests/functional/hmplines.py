# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for tests that type HMP lines through human-monitor-command."""


def hmp(c, line):
    """What HMP printed for @line (QEMU's "\\r\\n" line ends)."""
    return c.cmd("human-monitor-command", **{"command-line": line})


def try_help(cmd):
    """The line QEMU's HMP adds after a line it could not parse."""
    return 'Try "help %s" for more information\r\n' % cmd
