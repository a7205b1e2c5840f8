#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The human monitor's block commands as people type them: sizes and
speeds in MiB without a suffix, and QEMU's parse errors.

Every expected line is QEMU 7.2's (read off qemu-system-x86_64's HMP;
tests/compat/test_hmp_compat.py compares the two side by side).  Every
image written is checked with qemu-img check and compared with what the
guest saw.  Skips (77) without qemu-img.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import Qmpd, run  # noqa: E402
from images import check_images, img, with_dir  # noqa: E402

MiB = 1 << 20
TiB = 1 << 40
DEADLINE = 60


def hmp(c, line):
    return c.cmd("human-monitor-command", **{"command-line": line})


def try_help(cmd):
    return 'Try "help %s" for more information\r\n' % cmd


def job(c):
    jobs = c.cmd("query-block-jobs")
    assert len(jobs) == 1, jobs
    return jobs[0]


def size_of(c, device):
    for b in c.cmd("query-block"):
        if b["device"] == device:
            return b["inserted"]["image"]["virtual-size"]
    raise AssertionError("no %s" % device)


@with_dir("qmpd-hmp-units-")
def test_units(d):
    """No suffix means MiB, as in QEMU: block_stream drive0 10 streams
    at 10 MiB/s, block_job_set_speed drive0 1 sets 1 MiB/s and
    block_resize drive2 300 makes 300 MiB.  The stream reads a 1 TiB
    null-co backing, so it is still running whenever it is asked."""
    top = os.path.join(d, "top.qcow2")
    raw = os.path.join(d, "r.img")
    img("create", "-q", "-f", "qcow2", top, "1T")
    img("create", "-q", "-f", "raw", raw, "1M")
    with Qmpd(["-blockdev", "driver=null-co,node-name=nbase,size=%d" % TiB,
               "-blockdev", "driver=qcow2,node-name=drive0,file.driver=file,"
               "file.filename=%s,backing=nbase" % top,
               "-drive", "if=none,id=drive2,format=raw,file=%s" % raw]) as q:
        c = q.connect()
        assert hmp(c, "block_stream drive0 10") == ""
        assert job(c)["speed"] == 10 * MiB
        for arg, speed in (("1", MiB), ("1.5k", 1536), ("0.3k", 307),
                           ("0.7k", 717), ("2048b", 2048), ("0x10", 16 * MiB),
                           ("0.5", MiB // 2), ("0b", 0)):
            assert hmp(c, "block_job_set_speed drive0 " + arg) == ""
            assert job(c)["speed"] == speed, (arg, job(c))
        for arg in ("", "abc", "-1", "0.5b", "1.5e3k", "0x1.5",
                    "9223372036854775808b"):
            assert hmp(c, "block_job_set_speed drive0 " + arg) == (
                "invalid size\r\n" + try_help("block_job_set_speed"))
        assert hmp(c, "block_job_set_speed drive0 10x") == (
            "block_job_set_speed: extraneous characters at the end of "
            "line\r\n" + try_help("block_job_set_speed"))
        assert job(c)["speed"] == 0
        assert hmp(c, "block_job_cancel drive0") == ""
        c.event("BLOCK_JOB_CANCELLED", DEADLINE)

        assert hmp(c, "block_resize drive2 300") == ""
        assert size_of(c, "drive2") == 300 * MiB
        assert hmp(c, "block_resize drive2 1.5") == ""
        assert size_of(c, "drive2") == 3 * MiB // 2
        assert hmp(c, "block_resize drive2 4096B") == ""
        assert size_of(c, "drive2") == 4096
        assert hmp(c, "block_resize drive2") == (
            "invalid size\r\n" + try_help("block_resize"))
        assert hmp(c, "block_resize drive2 1.5b") == (
            "invalid size\r\n" + try_help("block_resize"))
        assert size_of(c, "drive2") == 4096
        c.cmd("quit")
        q.wait()
    check_images([top])
    assert os.path.getsize(raw) == 4096


def test_parse_errors():
    """QEMU's lines for each way the parser refuses a line."""
    with Qmpd(["-M", "none"]) as q:
        c = q.connect()
        cases = [
            ("info block -x", "block: unsupported option -x\r\n"
             + try_help("info block")),
            ("info   block   -x", "block: unsupported option -x\r\n"
             + try_help("info   block")),
            # an embedded newline is white space: the rest is extra
            ("block_resize drive0 5\nx", "block_resize: extraneous "
             "characters at the end of line\r\n" + try_help("block_resize")),
            ("info status\nfoo", "status: extraneous characters at the end "
             "of line\r\n" + try_help("info status")),
            ("  stop extra", "stop|s: extraneous characters at the end of "
             "line\r\n" + try_help("  stop")),
            ("  nosuch", "unknown command: '  nosuch'\r\n"),
            ("info   nosuch", "unknown command: 'info   nosuch'\r\n"),
            ("info/x", "unknown command: 'info'\r\n"),
            ("block_resize", "block_resize: block device name expected\r\n"
             + try_help("block_resize")),
            ("block_resize drive0", "invalid size\r\n"
             + try_help("block_resize")),
            ("block_job_cancel -x drive0", "block_job_cancel: unsupported "
             "option -x\r\n" + try_help("block_job_cancel")),
            # QEMU's message stops at the NUL its %c printed
            ("block_job_cancel -", "block_job_cancel: unsupported option -"
             + try_help("block_job_cancel")),
            ("block_job_cancel -f -f drive0", "block_job_cancel: extraneous "
             "characters at the end of line\r\n"
             + try_help("block_job_cancel")),
            ('block_stream "drive0', "block_stream: block device name "
             "expected\r\n" + try_help("block_stream")),
            ('block_stream "a\\"b"', "Error: Cannot find device='a\"b' nor "
             "node-name='a\"b'\r\n"),
            ("help   info   nosuch", "unknown command: 'info nosuch'\r\n"),
            ('help "unterminated', ""),
            ("help block_stream", "block_stream device [speed [base]] -- "
             "copy data from a backing file into a block device\r\n"),
        ]
        for line, want in cases:
            got = hmp(c, line)
            assert got == want, (line, got, want)
        c.cmd("quit")
        q.wait()


if __name__ == "__main__":
    run([test_units, test_parse_errors])
