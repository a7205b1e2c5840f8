#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Block migration benchmark: migrate blk (HMP migrate -b) of a pc guest
# with a 1 GiB qcow2 disk half allocated (every other MiB holds data) and
# 256 MiB of RAM, qmpd -> qmpd and QEMU 7.2 -> QEMU 7.2 on the loopback,
# in one table.  It is a benchmark, not a test: it asserts no targets and
# fails only if something cannot be run.  migclient.py (next to it) runs
# one migration and measures it.
#
# Cases, each on a fresh copy of the same source image and an empty
# destination image:
#   - max-bandwidth at its default (128 MiB/s) and raised (BENCH_MIG_BW)
#   - idle, and with a guest writing the disk (and, in qmpd, dirtying RAM;
#     QEMU's guest has no OS, so it dirties none: its disk writer is HMP
#     qemu-io, 64 KiB writes paced from the client)
#   - zero-blocks on, and once at the raised bandwidth off (every byte of
#     the virtual disk goes)
# Columns: the migration's total time (the source's MIGRATION completed),
# the downtime the source reports and the one a guest lives through (STOP
# on the source to RESUME on the destination), the host's IP output
# during the migration against the data (512 MiB), the CPU both processes
# used, whether the destination's image compares equal with the source's
# (qemu-img compare) and, for qmpd, whether the guest digests were equal.
#
# Environment:
#   QMPD                qmpd binary (default ../../qmpd from here)
#   QEMU                qemu-system-x86_64 (default: from PATH; its rows are
#                       left out when it is not installed)
#   QEMU_IMG, QEMU_IO   qemu-img and qemu-io (default: from PATH)
#   BENCH_MIG_BW        the raised max-bandwidth, bytes/s (default 10 GiB/s)
#   BENCH_MIG_DOWNTIME  downtime-limit in ms (default 300, QEMU's)
#   BENCH_MIG_RAM_RATE  MiB/s of RAM qmpd's guest dirties (default 64)
#   BENCH_MIG_DISK_RATE MiB/s the guests write to the disk (default 20)
#   TMPDIR              where the images go (default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
BW=${BENCH_MIG_BW:-$((10 << 30))}
DOWNTIME=${BENCH_MIG_DOWNTIME:-300}
RAM_RATE=${BENCH_MIG_RAM_RATE:-64}
DISK_RATE=${BENCH_MIG_DISK_RATE:-20}
client=$script_dir/migclient.py

[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
command -v "$QEMU_IMG" >/dev/null 2>&1 || die "$QEMU_IMG not found"
command -v "$QEMU_IO" >/dev/null 2>&1 || die "$QEMU_IO not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
kinds=(qmpd)
if command -v "$QEMU" >/dev/null 2>&1; then
    kinds+=(qemu)
fi

bench_init
errors=()

# the source image: 1 GiB, data in every other MiB (never zeroes)
tmpl=$tmp/template.qcow2
"$QEMU_IMG" create -q -f qcow2 "$tmpl" 1G
io_args=()
for ((i = 0; i < 1024; i += 2)); do
    io_args+=(-c "write -P $((i % 255 + 1)) ${i}M 1M")
done
"$QEMU_IO" -f qcow2 "${io_args[@]}" "$tmpl" >/dev/null

printf '%-5s %-8s %-6s %-4s %8s %9s %9s %9s %7s %-8s %-6s\n' \
    kind bw guest zero total_s down_rep down_obs wire_MiB cpu_s image digest
run_case()
{
    local kind=$1 bw=$2 load=$3 zero=$4 bin=$QMPD ram=0 disk=0 line cmp

    [[ $kind == qemu ]] && bin=$QEMU
    if [[ $load == write ]]; then
        disk=$DISK_RATE
        [[ $kind == qmpd ]] && ram=$RAM_RATE
    fi
    cp "$tmpl" "$tmp/src.qcow2"
    "$QEMU_IMG" create -q -f qcow2 "$tmp/dst.qcow2" 1G
    cold
    line=$(python3 "$client" "$kind" "$bin" "$tmp/src.qcow2" \
        "$tmp/dst.qcow2" 256 "$bw" "$DOWNTIME" "$ram" "$disk" "$zero")
    cmp=differ
    if "$QEMU_IMG" compare -q "$tmp/src.qcow2" "$tmp/dst.qcow2"; then
        cmp=equal
    fi
    note_error "$kind" "bw $bw $load" "$line"
    printf '%-5s %-8s %-6s %-4s %8s %9s %9s %9s %7s %-8s %-6s%s\n' \
        "$kind" "$([[ $bw == $((128 << 20)) ]] && echo default || echo raised)" \
        "$load" "$([[ $zero == 1 ]] && echo on || echo off)" \
        "$(field "$line" total_s)" "$(field "$line" downtime_ms)" \
        "$(field "$line" observed_downtime_ms)" "$(field "$line" wire_mib)" \
        "$(field "$line" cpu_s)" "$cmp" "$(field "$line" digest)" "$marker"
}

for bw in $((128 << 20)) "$BW"; do
    for load in idle write; do
        for kind in "${kinds[@]}"; do
            run_case "$kind" "$bw" "$load" 1
        done
    done
done
for kind in "${kinds[@]}"; do
    run_case "$kind" "$BW" idle 0
done

echo
echo "data: 512 MiB in a 1 GiB disk, 256 MiB RAM; raised bw: $BW B/s;" \
    "downtime-limit $DOWNTIME ms; writers: disk $DISK_RATE MiB/s," \
    "RAM $RAM_RATE MiB/s (qmpd)"
echo "down_rep: the source's query-migrate downtime; down_obs: STOP on the" \
    "source to RESUME on the destination (ms)"
for e in ${errors[@]+"${errors[@]}"}; do
    echo "$e"
done
