#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`make demo` (system/demo.sh) as a newcomer runs it: the chain holds
each layer's data, the banner's I/O limit shows in info block, a
speed-limited stream runs, and after quit the images are kept where the
script says, and pass qemu-img check."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpd import binary, check_ended, run  # noqa: E402
from images import img, need_tools  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                      "..", "system", "demo.sh")


def test_demo():
    need_tools()
    lines = [
        'qemu-io drive0 "read -P 0x33 192M 64M"',
        'qemu-io drive0 "read -P 0x22 128M 64M"',
        'qemu-io drive0 "read -P 0x11 0 128M"',
        'qemu-io drive0 "read -P 0 256M 256M"',
        "block_set_io_throttle drive0 10485760 0 0 0 0 0",
        "info block drive0",
        'qemu-io drive0 "read -P 0x33 192M 1M"',
        "block_set_io_throttle drive0 0 0 0 0 0 0",
        "block_stream drive0 20",
        "info block-jobs",
        "quit",
    ]
    p = subprocess.run(["sh", SCRIPT, binary()],
                       input="\n".join(lines) + "\n", capture_output=True,
                       text=True, timeout=300)
    check_ended("demo.sh", p.returncode, 0, p.stderr)
    out = p.stdout
    m = re.search(r"the images are kept in (\S+): ", out)
    assert m, out
    d = m.group(1)
    try:
        # every layer's data reads back through the chain
        for n in (67108864, 67108864, 134217728, 268435456, 1048576):
            assert "read %d/%d bytes" % (n, n) in out, out
        assert "Pattern verification failed" not in out, out
        # the banner's throttled example: the drive shows its limit
        assert "block_set_io_throttle drive0 10485760" in out, out
        assert re.search(r"I/O throttling: +bps=10485760 ", out), out
        assert re.search(r"Streaming device drive0: Completed \d+ of "
                         r"536870912 bytes, speed limit 20971520 bytes/s",
                         out), out
        # quit cancelled the stream; the images stay, and are sound
        assert sorted(os.listdir(d)) == ["base.qcow2", "sn1.qcow2",
                                         "sn2.qcow2"], os.listdir(d)
        for name in ("base.qcow2", "sn1.qcow2", "sn2.qcow2"):
            img("check", "-q", os.path.join(d, name))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_demo])
