#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NBD export benchmark: nbdcopy reads 1 GiB from an export and writes
# 1 GiB into a writable one, qmpd's export beside qemu-storage-daemon's
# export of the same image, one table from one run.  It is a benchmark,
# not a test: it asserts no targets and fails only if something cannot be
# run.
#
# The image is a raw file of BENCH_NBD_GB GiB (default 1) filled with
# non-zero data, opened with cache.direct=on by both daemons (native AIO
# for qemu-storage-daemon; qmpd's libaio engine).  Cases: read into
# null: and write from a local file, with nbdcopy's default queue
# (--requests=64, 4 connections: --connections=4) and with one request
# in flight on one connection (QD 1), 256 KiB requests.  Columns: the
# median of BENCH_NBD_REPEAT runs (default 3) of the wall time, the rate,
# and the CPU seconds the daemon used per GiB (its utime + stime from
# /proc before and after).
#
# Random 4 KiB I/O (nbdcopy only copies sequentially) is fio's nbd engine
# (libnbd; Debian's fio has it): randread and randwrite over the whole
# image at QD 1 and 16 on one connection, BENCH_NBD_RAND_SECS seconds
# each (default 10), in a second table: the median of BENCH_NBD_REPEAT
# runs of IOPS, MiB/s, fio's median completion latency and the daemon's
# CPU seconds per GiB moved.  Without fio (or its nbd engine) the table
# is left out with a note.
#
# Environment:
#   QMPD               qmpd binary (default ../../qmpd from here)
#   QSD                qemu-storage-daemon (default: from PATH; its rows
#                      are left out when it is not installed)
#   BENCH_NBD_GB       image size in GiB (default 1)
#   BENCH_NBD_REPEAT   runs per case (default 3)
#   BENCH_NBD_RAND_SECS  seconds per random case (default 10)
#   TMPDIR             where the image goes (default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
QSD=${QSD:-qemu-storage-daemon}
QEMU_IMG=${QEMU_IMG:-qemu-img}
GB=${BENCH_NBD_GB:-1}
REPEAT=${BENCH_NBD_REPEAT:-3}
RAND_SECS=${BENCH_NBD_RAND_SECS:-10}

[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
command -v nbdcopy >/dev/null 2>&1 || die "nbdcopy not found"
command -v "$QEMU_IMG" >/dev/null 2>&1 || die "$QEMU_IMG not found"
kinds=(qmpd)
if command -v "$QSD" >/dev/null 2>&1; then
    kinds+=(qsd)
fi

bench_init
have_fio=false
if command -v fio >/dev/null 2>&1 \
        && fio --enghelp 2>/dev/null | grep -qw nbd; then
    have_fio=true
else
    notes+=("random 4K rows left out: no fio with the nbd engine")
fi
size=$((GB << 30))
img=$tmp/disk.raw
src=$tmp/src.raw
"$QEMU_IMG" create -q -f raw "$img" "$size"
"$QEMU_IMG" create -q -f raw "$src" "$size"
fill "$img" raw 0 $((1 << 20)) $((1 << 20)) $((size >> 20)) 17
fill "$src" raw 0 $((1 << 20)) $((1 << 20)) $((size >> 20)) 34

# start KIND: the daemon exporting $img as "exp" (writable) on $sock.
start()
{
    local log=$tmp/$1.log

    sock=$tmp/$1.nbd
    rm -f "$sock"
    if [[ $1 == qmpd ]]; then
        "$QMPD" -nodefaults -display none \
            -qmp "unix:$tmp/qmp.sock,server=on,wait=off" \
            -blockdev "{\"driver\":\"raw\",\"node-name\":\"d0\",\"file\":{\"driver\":\"file\",\"filename\":\"$img\",\"cache\":{\"direct\":true},\"aio\":\"native\"}}" \
            >"$log" 2>&1 &
        pid=$!
        pids+=("$pid")
        wait_socket qmpd "$tmp/qmp.sock" "$log"
        python3 - "$tmp/qmp.sock" "$sock" <<'PY' || die "could not export"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd, args in (("qmp_capabilities", {}),
                  ("nbd-server-start", {"addr": {"type": "unix", "data": {
                      "path": sys.argv[2]}}}),
                  ("block-export-add", {"type": "nbd", "id": "e",
                                        "node-name": "d0", "name": "exp",
                                        "writable": True})):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            break
    assert "return" in r, r
PY
    else
        "$QSD" --blockdev "driver=file,node-name=f,filename=$img,cache.direct=on,aio=native" \
            --blockdev driver=raw,node-name=d0,file=f \
            --nbd-server "addr.type=unix,addr.path=$sock" \
            --export type=nbd,id=e,node-name=d0,name=exp,writable=on \
            >"$log" 2>&1 &
        pid=$!
        pids+=("$pid")
    fi
    wait_socket "$1" "$sock" "$log"
}

cpu_ticks()
{
    awk '{ print $14 + $15 }' "/proc/$pid/stat"
}

# one KIND DIRECTION QD: "seconds cpu_seconds" of one nbdcopy.
one()
{
    local uri="nbd+unix:///exp?socket=$sock" args t0 t1 c0 c1
    local hz

    hz=$(getconf CLK_TCK)
    if [[ $3 == 1 ]]; then
        args=(--requests=1 --connections=1 --request-size=262144)
    else
        args=(--request-size=262144)
    fi
    cold
    c0=$(cpu_ticks)
    t0=$(date +%s.%N)
    if [[ $2 == read ]]; then
        nbdcopy "${args[@]}" "$uri" null: || die "nbdcopy read failed"
    else
        nbdcopy "${args[@]}" "$src" "$uri" || die "nbdcopy write failed"
    fi
    t1=$(date +%s.%N)
    c1=$(cpu_ticks)
    awk -v a="$t0" -v b="$t1" -v c="$((c1 - c0))" -v hz="$hz" \
        'BEGIN { printf "%.3f %.3f\n", b - a, c / hz }'
}

# rand KIND OP QD: "iops MiB/s p50-us cpu_seconds_per_GiB" of one fio run.
rand()
{
    local uri="nbd+unix:///exp?socket=$sock" out=$tmp/fio.json c0 c1

    cold
    c0=$(cpu_ticks)
    fio --name=rand --ioengine=nbd --uri="$uri" --rw="$2" --bs=4k \
        --iodepth="$3" --size="$size" --time_based --runtime="$RAND_SECS" \
        --output-format=json --output="$out" >/dev/null 2>&1 ||
        die "fio $2 at QD $3 failed"
    c1=$(cpu_ticks)
    python3 - "$out" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
r = job["read"] if job["read"]["io_bytes"] else job["write"]
gib = r["io_bytes"] / (1 << 30)
cpu = int(sys.argv[2]) / int(sys.argv[3])
print("%.0f %.1f %.1f %.3f" % (r["iops"], r["bw_bytes"] / (1 << 20),
      r["clat_ns"]["percentile"]["50.000000"] / 1000, cpu / gib))
PY
}

rand_rows=()
printf '%-6s %-6s %-4s %10s %10s %14s\n' daemon op qd seconds MiB/s \
    cpu-s/GiB
for kind in "${kinds[@]}"; do
    start "$kind"
    for op in read write; do
        for qd in 64 1; do
            secs=() cpus=()
            for ((r = 0; r < REPEAT; r++)); do
                read -r s c < <(one "$kind" "$op" "$qd")
                secs+=("$s") cpus+=("$c")
            done
            s=$(median "${secs[@]}")
            c=$(median "${cpus[@]}")
            printf '%-6s %-6s %-4s %10s %10s %14s\n' "$kind" "$op" \
                "$qd" "$s" \
                "$(awk -v s="$s" -v g="$GB" 'BEGIN { printf "%.0f", g * 1024 / s }')" \
                "$(awk -v c="$c" -v g="$GB" 'BEGIN { printf "%.3f", c / g }')"
        done
    done
    for op in randread randwrite; do
        for qd in 1 16; do
            $have_fio || continue
            iops=() mibs=() lats=() cpus=()
            for ((r = 0; r < REPEAT; r++)); do
                read -r i m l c < <(rand "$kind" "$op" "$qd")
                iops+=("$i") mibs+=("$m") lats+=("$l") cpus+=("$c")
            done
            rand_rows+=("$(printf '%-6s %-10s %-4s %10s %10s %10s %14s' \
                "$kind" "$op" "$qd" "$(median "${iops[@]}")" \
                "$(median "${mibs[@]}")" "$(median "${lats[@]}")" \
                "$(median "${cpus[@]}")")")
        done
    done
    stop "$kind" "$tmp/$kind.log"
done
if ((${#rand_rows[@]})); then
    echo
    printf '%-6s %-10s %-4s %10s %10s %10s %14s\n' daemon "op (4K)" qd \
        IOPS MiB/s p50-us cpu-s/GiB
    printf '%s\n' "${rand_rows[@]}"
fi
if ((${#notes[@]})); then
    printf '%s\n' "${notes[@]}"
fi
