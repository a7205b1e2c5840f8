#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# I/O throttling benchmark: the rate a throttled drive (-drive
# throttling.*) and a throttle filter node (throttle-group object) let
# through at several bps and iops limits, in qmpd and, when installed,
# QEMU 7.2 (qemu-system-x86_64 -M none) in the same table.  Numbers only,
# never pass/fail (throttleclient.py does the work).
#
# Environment: QMPD (qmpd binary, default ../../qmpd from this directory),
# QEMU_BIN (default qemu-system-x86_64), THROTTLE_SECONDS (per case,
# default 3).

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QMPD=${QMPD:-$script_dir/../../qmpd}
QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}

[ -x "$QMPD" ] || { echo "run-throttle: no qmpd at $QMPD" >&2; exit 1; }
exec python3 "$script_dir/throttleclient.py" "$QMPD" "$QEMU_BIN"
