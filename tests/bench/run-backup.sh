#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Dirty bitmap and backup benchmark (issue 6's measurements), three tables:
#   1. the cost of tracking: guest writes with 0, 1 and 8 enabled dirty
#      bitmaps (64 KiB granularity), throughput and CPU per write
#   2. blockdev-backup sync=full and sync=incremental throughput in qmpd,
#      qemu-storage-daemon and QEMU on the same image, next to cp and dd,
#      and sync=full again while a guest writes (qmpd and QEMU)
#   3. memory per bitmap per TiB: RSS deltas of qmpd and QEMU with 1 and 8
#      bitmaps on a null-co node, clean, every bit set, cleared, removed
# It is a benchmark, not a test: it asserts no targets, and fails only if
# something cannot be run.  It builds nothing; backupclient.py (next to
# it) speaks QMP, drives the guest writes and times the jobs.
#
# Guest writes come two ways, both printed:
#   in-process  qmpd's block layer driven by bench-block --bitmaps N (no
#               monitor in the way: the most sensitive view of the write
#               path), and QEMU's by qemu-img bench on a qcow2 holding N
#               persistent bitmaps (QEMU loads them enabled, so its writes
#               track them; qemu-img has no way to put bitmaps on raw or
#               null-co)
#   HMP         qemu-io aio_write through human-monitor-command, pipelined
#               (backupclient.py write): qmpd's only guest writer (the
#               emulated guest has no disk workload), and QEMU's
#               (qemu-system-x86_64 -M none) the same way
# Random 4 KiB (a large wrapping step, as run-block.sh: distinct scattered
# offsets, the same in every tool) and sequential 1 MiB writes, QD32, on a
# fully written qcow2 and raw image with cache=none (O_DIRECT), and on a
# null-co device of BENCH_BACKUP_NULL_TB TiB, which drops the data and
# leaves only the CPU cost (bitmaps of 2 MiB per TiB each, so random
# writes miss the cache as on a big disk).  Runs alternate the bitmap
# count, BENCH_BACKUP_REPEAT times each; medians are shown.  CPU per write
# is the writing process's user+system time (bench-block, qemu-img), or
# the daemon's CPU time (all threads, /proc/PID/task/*/schedstat) over
# the run: unlike MiB/s it hardly depends on other load on the machine.
# The HMP daemons run with a fixed glibc mmap and trim threshold (see
# hmp_env): qemu-io allocates a buffer per request, and glibc's moving
# threshold otherwise makes the page faults of 1 MiB buffers come and go
# between runs, a larger effect than the one measured.
#
# Environment:
#   QMPD                qmpd binary (default ../../qmpd from this directory)
#   BENCH_BLOCK         bench-block binary (default: built next to this
#                       script by "make bench-block")
#   QSD                 qemu-storage-daemon (default: from PATH)
#   QEMU                qemu-system-x86_64 (default: from PATH)
#   QEMU_IMG            qemu-img (default: from PATH; makes the images)
#   BENCH_BACKUP_GB     backup source size in GiB (default 2; half data)
#   BENCH_BACKUP_WRITE_MB  size of the write benchmark images (default 1024)
#   BENCH_BACKUP_NULL_TB   null-co size in TiB, writes and memory (default 1)
#   BENCH_BACKUP_REPEAT runs per cell, median shown (default 3)
#   BENCH_BACKUP_HMP_SECONDS  seconds per HMP write run (default 1)
#   BENCH_BACKUP_PARTS  which tables (default "writes backup memory")
#   BENCH_BACKUP_TIMEOUT  seconds a backup job may take (default 300)
#   TMPDIR              where the images go (must allow O_DIRECT, so not
#                       tmpfs; default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
BENCH_BLOCK=${BENCH_BLOCK:-$script_dir/bench-block}
QSD=${QSD:-qemu-storage-daemon}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_IMG=${QEMU_IMG:-qemu-img}
SIZE_MB=$((${BENCH_BACKUP_GB:-2} * 1024))
WRITE_MB=${BENCH_BACKUP_WRITE_MB:-1024}
NULL_TB=${BENCH_BACKUP_NULL_TB:-1}
REPEAT=${BENCH_BACKUP_REPEAT:-3}
HMP_SECONDS=${BENCH_BACKUP_HMP_SECONDS:-1}
PARTS=${BENCH_BACKUP_PARTS:-writes backup memory}
TIMEOUT=${BENCH_BACKUP_TIMEOUT:-300}
client=$script_dir/backupclient.py

for v in SIZE_MB WRITE_MB NULL_TB REPEAT TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] ||
        die "$v must be a whole number >= 1 (got '${!v}')"
done
((SIZE_MB >= 1024 && WRITE_MB >= 64)) ||
    die "BENCH_BACKUP_GB must be >= 1 and BENCH_BACKUP_WRITE_MB >= 64"
[[ $HMP_SECONDS =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
    die "BENCH_BACKUP_HMP_SECONDS must be a number of seconds"
for p in $PARTS; do
    [[ $p == writes || $p == backup || $p == memory ]] ||
        die "unknown part '$p' in BENCH_BACKUP_PARTS"
done
[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
command -v "$QEMU_IMG" >/dev/null 2>&1 || die "$QEMU_IMG not found: it makes the images"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
have_qsd=false have_qemu=false have_bench=false
command -v "$QSD" >/dev/null 2>&1 && have_qsd=true
command -v "$QEMU" >/dev/null 2>&1 && have_qemu=true
[[ -x $BENCH_BLOCK ]] && have_bench=true

bench_init

# what the "time" keyword prints: user and system seconds
TIMEFORMAT='%3U %3S'
MiB=1048576
GiB=$((1024 * MiB))
null_bytes=$((NULL_TB << 40))
pattern=165

# start DAEMON OPTION...: start qmpd, qemu (qemu-system-x86_64 -M none) or
# qsd with these options, written as qmpd takes them (-blockdev X, -drive
# X; qsd gets --blockdev X), and the variables in start_env (NAME=VALUE)
# in its environment.  Sets $pid and $sock.  Polling for the socket is
# fine here: nothing is timed yet.
pid="" sock="" start_env=()
hmp_env=(MALLOC_MMAP_THRESHOLD_=8388608 MALLOC_TRIM_THRESHOLD_=268435456)
start()
{
    local daemon=$1 args=() bin
    shift

    sock=$tmp/$daemon.sock
    rm -f "$sock"
    if [[ $daemon == qsd ]]; then
        while (($#)); do
            args+=("-$1" "$2")
            shift 2
        done
        env ${start_env[@]+"${start_env[@]}"} \
            "$QSD" --chardev "socket,path=$sock,server=on,wait=off,id=m" \
            --monitor chardev=m ${args[@]+"${args[@]}"} \
            >"$tmp/$daemon.log" 2>&1 &
    else
        bin=$QMPD
        [[ $daemon == qemu ]] && bin=$QEMU
        # qemu-io's output (aio errors) goes to stdout: the log
        env ${start_env[@]+"${start_env[@]}"} \
            "$bin" -M none -nodefaults -display none \
            -qmp "unix:$sock,server=on,wait=off" "$@" \
            >"$tmp/$daemon.log" 2>&1 &
    fi
    pid=$!
    pids+=("$pid")
    wait_socket "$daemon" "$sock" "$tmp/$daemon.log"
}


# client SUBCOMMAND ARG...: backupclient.py on $sock; its line in $result,
# and a failure is fatal (setup steps must work).
result=""
client()
{
    local sub=$1
    shift
    result=$(python3 "$client" "$sub" "$sock" "$@") ||
        die "backupclient $sub failed: $result"
}

# cpu_ns PID: CPU time of every live thread of PID, in nanoseconds.
cpu_ns()
{
    cat /proc/"$1"/task/*/schedstat 2>/dev/null |
        awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# rss_kb PID: resident set size in KiB.
rss_kb()
{
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# spread VALUE...: half the range of the values over their median, as
# "+-N%": how far apart the runs of one cell were.
spread()
{
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '
        { t[NR] = $1 }
        END {
            if (NR < 2) { print "-"; exit }
            m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            if (m <= 0) { print "-"; exit }
            printf "+-%.0f%%\n", (t[NR] - t[1]) / 2 / m * 100
        }'
}

# change NEW BASE: (NEW / BASE - 1) as a signed percentage, "-" if either
# is missing.
change()
{
    if [[ $1 == - || $2 == - ]]; then
        echo "-"
    else
        awk -v a="$1" -v b="$2" 'BEGIN {
            if (b <= 0) { print "-"; exit }
            printf "%+.1f%%\n", (a / b - 1) * 100 }'
    fi
}

# fmt1 VALUE: one decimal, or "-".
fmt1()
{
    if [[ $1 == - ]]; then
        echo "-"
    else
        awk -v v="$1" 'BEGIN { printf "%.1f\n", v }'
    fi
}

orders=("0 1 8" "8 0 1" "1 8 0")

echo "qmpd:                $("$QMPD" -version | head -n 1) ($QMPD)"
if $have_qsd; then
    echo "qemu-storage-daemon: $("$QSD" --version | head -n 1)"
else
    echo "qemu-storage-daemon: not installed"
fi
if $have_qemu; then
    echo "QEMU:                $("$QEMU" --version | head -n 1)"
else
    echo "QEMU:                not installed"
fi
echo "host:                $(nproc) CPUs, $(uname -sr), images in $tmp" \
    "($(df -PT "$tmp" | awk 'NR == 2 { print $2 }')); load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the start"

# ---- 1. the cost of tracking --------------------------------------------

# W[case|tool|n] and C[...]: MiB/s and CPU microseconds per write of each
# run, space-separated.
declare -A W=() C=()

# inproc TOOL FMT TARGET SIZE COUNT STEP N: one in-process run; appends to
# W and C.  TOOL is qmpd (bench-block) or qemu (qemu-img bench; TARGET
# must be a qcow2 holding N persistent bitmaps b0...).
inproc()
{
    local tool=$1 fmt=$2 target=$3 size=$4 count=$5 step=$6 n=$7 key
    local args=(-w -s "$size" -d 32 -c "$count" -S "$step") secs cpu t

    key="$fmt|$size|$tool|$n"
    if [[ $tool == qmpd ]]; then
        args+=(-f "$fmt" --pattern "$pattern" --bitmaps "$n")
        [[ $fmt != null-co ]] && args+=(-t none -i native)
        { time "$BENCH_BLOCK" "${args[@]}" "$target" >"$tmp/out" 2>&1; } \
            2>"$tmp/time" || {
            cat "$tmp/out" >&2
            die "bench-block failed: ${args[*]} $target"
        }
        secs=$(field "$(grep '^ops=' "$tmp/out")" seconds)
        [[ $n == 0 || $(field "$(grep '^ops=' "$tmp/out")" bitmap_bytes) != 0 ]] ||
            die "bench-block's bitmap recorded nothing: $(cat "$tmp/out")"
    else
        args+=(-f qcow2 -t none -i native --pattern="$pattern")
        { time "$QEMU_IMG" bench "${args[@]}" "$target" >"$tmp/out" 2>&1; } \
            2>"$tmp/time" || {
            cat "$tmp/out" >&2
            die "qemu-img bench failed: ${args[*]} $target"
        }
        secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' \
            "$tmp/out")
    fi
    [[ -n $secs && $secs != - ]] || die "no run time from $tool: $(cat "$tmp/out")"
    t=$(tail -n 1 "$tmp/time")
    cpu=$(awk -v t="$t" -v c="$count" 'BEGIN {
        split(t, a, " "); printf "%.3f\n", (a[1] + a[2]) / c * 1e6 }')
    W[$key]+="$(mibs $((size * count)) "$secs") "
    C[$key]+="$cpu "
}

# qemu_bitmaps IMAGE N: leave persistent bitmaps b0..b(N-1) in IMAGE.
qemu_bitmaps()
{
    local i have

    have=$("$QEMU_IMG" info --output=json "$1" | python3 -c '
import json, sys
i = json.load(sys.stdin)
print(len(i.get("format-specific", {}).get("data", {}).get("bitmaps", [])))')
    for ((i = have; i < $2; i++)); do
        "$QEMU_IMG" bitmap --add -g 64k "$1" "b$i" || die "qemu-img bitmap --add failed"
    done
    for ((i = have - 1; i >= $2; i--)); do
        "$QEMU_IMG" bitmap --remove "$1" "b$i" || die "qemu-img bitmap --remove failed"
    done
}

# hmp_run DAEMON FMT DEVICE SIZE STEP SPAN N: one HMP writer run on the
# running daemon; appends to W and C.
hmp_run()
{
    local daemon=$1 fmt=$2 dev=$3 size=$4 step=$5 span=$6 n=$7 key c0 c1
    local line ops secs

    key="$fmt|$size|hmp-$daemon|$n"
    c0=$(cpu_ns "$pid")
    line=$(python3 "$client" write "$sock" "$dev" "$size" "$step" "$span" \
        "$HMP_SECONDS") || die "HMP writer failed in $daemon: $line"
    c1=$(cpu_ns "$pid")
    ops=$(field "$line" ops) secs=$(field "$line" seconds)
    W[$key]+="$(field "$line" mib_s) "
    C[$key]+="$(awk -v a="$c0" -v b="$c1" -v o="$ops" 'BEGIN {
        printf "%.3f\n", (b - a) / o / 1000 }') "
}

row1()
{
    printf '%-22s %-12s %8s %6s %7s %7s %8s %7s %7s\n' "$@"
}

# print_cost LABEL FMT SIZE TOOL NAME: one row of the tracking table.
print_cost()
{
    local k="$2|$3|$4" w0 w1 w8 c0 c1 c8

    w0=$(median ${W[$k|0]:-}) w1=$(median ${W[$k|1]:-})
    w8=$(median ${W[$k|8]:-})
    c0=$(median ${C[$k|0]:-}) c1=$(median ${C[$k|1]:-})
    c8=$(median ${C[$k|8]:-})
    row1 "$1" "$5" "$(fmt1 "$w0")" "$(spread ${W[$k|0]:-})" \
        "$(change "$w1" "$w0")" "$(change "$w8" "$w0")" \
        "$(awk -v c="$c0" 'BEGIN { if (c == "-") print "-"; else printf "%.2f\n", c }')" \
        "$(change "$c1" "$c0")" "$(change "$c8" "$c0")"
}

part_writes()
{
    local wbytes=$((WRITE_MB * MiB)) fmt r n size count step tool
    local cases=() c label dev span daemon daemons=(qmpd)

    $have_qemu && daemons+=(qemu)
    for fmt in qcow2 raw; do
        "$QEMU_IMG" create -q -f "$fmt" "$tmp/w.$fmt" "${WRITE_MB}M" ||
            die "could not create w.$fmt"
        fill "$tmp/w.$fmt" "$fmt" 0 $MiB $MiB "$WRITE_MB" 90
    done
    # FMT SIZE COUNT(in-process) STEP SPAN
    cases=("qcow2 4096 20000 $(stride $wbytes 4096 2147483647) $wbytes"
        "qcow2 $MiB $((WRITE_MB / 2)) $MiB $wbytes"
        "raw 4096 20000 $(stride $wbytes 4096 2147483647) $wbytes"
        "raw $MiB $((WRITE_MB / 2)) $MiB $wbytes"
        "null-co 4096 500000 $(stride $null_bytes 4096) $null_bytes"
        "null-co $MiB 100000 $MiB $null_bytes")

    if $have_bench; then
        for ((r = 0; r < REPEAT; r++)); do
            for c in "${cases[@]}"; do
                read -r fmt size count step span <<<"$c"
                for n in ${orders[r % 3]}; do
                    if [[ $fmt == null-co ]]; then
                        inproc qmpd "$fmt" "$((NULL_TB << 40))" "$size" \
                            "$count" "$step" "$n"
                        continue
                    fi
                    inproc qmpd "$fmt" "$tmp/w.$fmt" "$size" "$count" \
                        "$step" "$n"
                    if [[ $fmt == qcow2 ]]; then
                        qemu_bitmaps "$tmp/w.qcow2" "$n"
                        inproc qemu qcow2 "$tmp/w.qcow2" "$size" "$count" \
                            "$step" "$n"
                        qemu_bitmaps "$tmp/w.qcow2" 0
                    fi
                done
            done
        done
    fi

    start_env=("${hmp_env[@]}")
    for fmt in qcow2 raw null-co; do
        for daemon in "${daemons[@]}"; do
            case $fmt/$daemon in
            null-co/qmpd)
                # qmpd's -drive needs a file=: qemu-io on the node
                start qmpd -blockdev "driver=null-co,node-name=src,size=$null_bytes"
                dev=src
                ;;
            null-co/qemu)
                start qemu -drive "if=none,id=drive0,node-name=src,$(
                    )driver=null-co,size=$null_bytes"
                dev=drive0
                ;;
            *)
                start "$daemon" -drive "if=none,id=drive0,node-name=src,$(
                    )format=$fmt,file=$tmp/w.$fmt,cache=none,aio=native"
                dev=drive0
                ;;
            esac
            # warm up: the daemon's allocations for the writer settle
            for c in "${cases[@]}"; do
                read -r cfmt size count step span <<<"$c"
                [[ $cfmt == "$fmt" ]] || continue
                python3 "$client" write "$sock" "$dev" "$size" "$step" \
                    "$span" 0.3 >/dev/null || die "HMP writer failed in $daemon"
            done
            for ((r = 0; r < REPEAT; r++)); do
                for n in ${orders[r % 3]}; do
                    client bitmaps src "$n"
                    for c in "${cases[@]}"; do
                        read -r cfmt size count step span <<<"$c"
                        [[ $cfmt == "$fmt" ]] || continue
                        hmp_run "$daemon" "$fmt" "$dev" "$size" "$step" \
                            "$span" "$n"
                    done
                done
            done
            if grep -q -i "failed" "$tmp/$daemon.log"; then
                notes+=("$daemon, HMP $fmt: $(grep -i -m1 failed "$tmp/$daemon.log")")
            fi
            stop "$daemon" "$tmp/$daemon.log"
        done
    done
    start_env=()

    echo
    echo "1. Guest writes with 0, 1 and 8 enabled dirty bitmaps, 64 KiB granularity"
    echo
    echo "Method: see the head of this script. QD32; in-process runs: random 4K x"
    echo "20000 and sequential 1M x $((WRITE_MB / 2)) on disk, 4K x 500000 and 1M x 100000 on"
    echo "null-co; HMP runs: ${HMP_SECONDS}s each after an uncounted one, 32 commands in"
    echo "the pipe, daemons with ${hmp_env[*]}. $REPEAT runs per"
    echo "cell, bitmap counts alternating; medians. MiB/s at 0 bitmaps with the"
    echo "spread of its runs; then the change with 1 and 8 bitmaps. CPU us/write:"
    echo "the writer's CPU time per request (in-process: the whole bench-block or"
    echo "qemu-img process; HMP: the daemon, monitor included). A cost is a drop in"
    echo "MiB/s or a rise in CPU; a change within the spread is noise."
    echo
    row1 case tool "MiB/s" spread "1 bm" "8 bm" "CPU us/w" "1 bm" "8 bm"
    row1 "----" "----" "-----" "------" "----" "----" "--------" "----" "----"
    for c in "${cases[@]}"; do
        read -r fmt size count step span <<<"$c"
        if ((size == 4096)); then
            label="$fmt rand 4K"
        else
            label="$fmt seq 1M"
        fi
        if $have_bench; then
            print_cost "$label" "$fmt" "$size" qmpd "qmpd in-proc"
            label=""
            if [[ $fmt == qcow2 ]]; then
                print_cost "" "$fmt" "$size" qemu "qemu-img"
            fi
        fi
        print_cost "$label" "$fmt" "$size" hmp-qmpd "qmpd HMP"
        $have_qemu && print_cost "" "$fmt" "$size" hmp-qemu "QEMU HMP"
    done
    $have_bench || notes+=("bench-block not built (make bench-block): no in-process rows")
    echo
    echo "in-proc: bench-block --bitmaps N; qemu-img: qemu-img bench, N persistent"
    echo "bitmaps in the image (none for raw and null-co: qemu-img cannot add them)."
    echo "HMP: qemu-io aio_write via human-monitor-command; QEMU is"
    echo "qemu-system-x86_64 -M none; qmpd's null-co is a -blockdev node, QEMU's a"
    echo "-drive driver=null-co (the same node either way)."
}

# ---- 2. backup throughput ------------------------------------------------

part_backup()
{
    local size=$((SIZE_MB * MiB)) src=$tmp/src.qcow2 daemons=(qmpd) r i
    local inc_n alloc inc_bytes daemon line cp_s dd_s t0 rot fsec wpid c0
    local wstep=$((7 * MiB + 4096))

    $have_qsd && daemons+=(qsd)
    $have_qemu && daemons+=(qemu)
    # 1 MiB of data every 2 MiB; then persistent bitmap d records writes
    # of 64 KiB every 640 KiB (10% of the clusters, half of them where
    # there was no data) made by qemu-img, which QEMU tracks in d.
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k "$src" "${SIZE_MB}M" ||
        die "could not create the source"
    fill "$src" qcow2 0 $MiB $((2 * MiB)) $((size / 2 / MiB)) 17
    "$QEMU_IMG" bitmap --add -g 64k "$src" d || die "could not add bitmap d"
    inc_n=$((size / (640 * 1024)))
    fill "$src" qcow2 0 65536 $((640 * 1024)) "$inc_n" 34
    inc_bytes=$((inc_n * 65536))
    alloc=$("$QEMU_IMG" map --output=json "$src" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')

    declare -A full=() inc=() err=() fw=() wr=() cg=()
    for ((r = 0; r < REPEAT; r++)); do
        rot=("${daemons[@]:r % ${#daemons[@]}}" "${daemons[@]:0:r % ${#daemons[@]}}")
        for daemon in "${rot[@]}"; do
            for i in full inc; do
                rm -f "$tmp/t-$i.qcow2"
                "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k \
                    "$tmp/t-$i.qcow2" "${SIZE_MB}M"
            done
            cold
            start "$daemon" -blockdev "driver=file,node-name=src-file,$(
                )filename=$src,cache.direct=on,aio=native" \
                -blockdev "driver=qcow2,node-name=src,file=src-file"
            c0=$(cpu_s "$pid")
            line=$(python3 "$client" backup "$sock" --timeout "$TIMEOUT" \
                --pre "$(target_add t-full)" \
                '{"execute":"blockdev-backup","arguments":{"job-id":"b",'$(
                )'"device":"src","target":"t-full","sync":"full"}}') || true
            cg[$daemon]+="$(cpu_per_gib "$c0" "$(cpu_s "$pid")" "$alloc") "
            fsec=$(field "$line" seconds)
            full[$daemon]+="$fsec "
            [[ $line == *error=* ]] && err[$daemon]+="full: ${line#*error=}; "
            line=$(python3 "$client" backup "$sock" --timeout "$TIMEOUT" \
                --pre "$(target_add t-inc)" \
                --pre '{"execute":"block-dirty-bitmap-add","arguments":{'$(
                )'"node":"src","name":"inc","granularity":65536}}' \
                --pre '{"execute":"block-dirty-bitmap-merge","arguments":{'$(
                )'"node":"src","target":"inc","bitmaps":["d"]}}' \
                '{"execute":"blockdev-backup","arguments":{"job-id":"i",'$(
                )'"device":"src","target":"t-inc","sync":"incremental",'$(
                )'"bitmap":"inc"}}') || true
            inc[$daemon]+="$(field "$line" seconds) "
            [[ $line == *error=* ]] && err[$daemon]+="incremental: ${line#*error=}; "
            stop "$daemon" "$tmp/$daemon.log"
            # qsd has no HMP: no guest writer
            [[ $daemon == qsd || -z $fsec ]] && continue
            # full again on a copy of the source (the writes stay out of
            # the other runs), while a guest writes 4 KiB at scattered
            # offsets (HMP qemu-io through a second QMP socket: QEMU
            # serves one client per socket) for as long as the plain
            # full backup took
            cp "$src" "$tmp/srcw.qcow2"
            rm -f "$tmp/t-fw.qcow2"
            "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k \
                "$tmp/t-fw.qcow2" "${SIZE_MB}M"
            cold
            # the guest's device: QEMU's filter goes between it and src
            start "$daemon" -qmp "unix:$tmp/w.sock,server=on,wait=off" \
                -drive "if=none,id=drive0,node-name=src,format=qcow2,$(
                )file=$tmp/srcw.qcow2,cache=none,aio=native"
            python3 "$client" write "$tmp/w.sock" drive0 4096 "$wstep" "$size" \
                "$fsec" >"$tmp/writer.out" 2>&1 &
            wpid=$!
            line=$(python3 "$client" backup "$sock" --timeout "$TIMEOUT" \
                --pre "$(target_add t-fw)" \
                '{"execute":"blockdev-backup","arguments":{"job-id":"w",'$(
                )'"device":"src","target":"t-fw","sync":"full"}}') || true
            wait "$wpid" || err[$daemon]+="writer: $(cat "$tmp/writer.out"); "
            fw[$daemon]+="$(field "$line" seconds) "
            wr[$daemon]+="$(field "$(cat "$tmp/writer.out")" mib_s) "
            [[ $line == *error=* ]] && err[$daemon]+="full+writer: ${line#*error=}; "
            stop "$daemon" "$tmp/$daemon.log"
            rm -f "$tmp/srcw.qcow2"
        done
    done

    # The disk's own copy speed for the full backup's amount of data.
    rm -f "$tmp"/t-*.qcow2
    "$QEMU_IMG" create -q -f raw "$tmp/c.raw" "$((alloc / MiB))M"
    fill "$tmp/c.raw" raw 0 $MiB $MiB $((alloc / MiB)) 90
    cold
    t0=$EPOCHREALTIME
    cp "$tmp/c.raw" "$tmp/d.raw"
    sync
    cp_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
    rm -f "$tmp/d.raw"
    cold
    t0=$EPOCHREALTIME
    dd if="$tmp/c.raw" of="$tmp/d.raw" bs=1M oflag=direct status=none
    dd_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
    rm -f "$tmp/c.raw" "$tmp/d.raw"

    echo
    echo "2. Backup throughput"
    echo
    echo "Method: a $SIZE_MB MiB qcow2 (64 KiB clusters) with 1 MiB of data every 2 MiB,"
    echo "then 64 KiB written every 640 KiB (10% of the clusters, half of them new)"
    echo "while its persistent bitmap d recorded them. Each daemon opens it"
    echo "(cache.direct=on, aio=native), blockdev-adds a new qcow2 target and runs"
    echo "blockdev-backup sync=full, then sync=incremental with bitmap inc (a copy"
    echo "of d made by block-dirty-bitmap-merge, so that d survives for the next"
    echo "run) into a second new qcow2. Time: command sent to the job's"
    echo "concluded; MiB: the allocated data (full) or the dirty clusters"
    echo "(incremental); MiB/s = MiB / time. \"guest writing\": sync=full again on a"
    echo "copy of the image (a -drive, drive0, the guest's device) while HMP qemu-io"
    echo "drive0 aio_write writes 4 KiB at offsets 7 MiB"
    echo "+ 4 KiB apart (wrapping; 32 in flight) for as long as the plain full backup"
    echo "took (qsd: no HMP, no row); its MiB are the data at the start, and the"
    echo "writes' own rate is shown below it. $REPEAT runs per cell, daemons in rotating"
    echo "order, median. Page cache dropped before each daemon: $can_drop."
    echo "[1] The daemon's CPU time (user + system, all its threads, as getrusage"
    echo "counts it: /proc/PID/stat, 10 ms ticks) from blockdev-add of the target"
    echo "to the job's end, per GiB of the allocated data."
    echo
    printf '%-34s %6s %7s %7s %7s %7s %7s %7s\n' case MiB "qmpd s" MiB/s \
        "qsd s" MiB/s "QEMU s" MiB/s
    printf '%-34s %6s %7s %7s %7s %7s %7s %7s\n' "----" "---" "------" \
        "-----" "-----" "-----" "------" "-----"
    for i in full inc fw; do
        local cells=() m bytes=$alloc label="blockdev-backup sync=full"

        if [[ $i == inc ]]; then
            bytes=$inc_bytes label="blockdev-backup sync=incremental"
        elif [[ $i == fw ]]; then
            label="sync=full, guest writing"
        fi
        for daemon in qmpd qsd qemu; do
            if [[ $i == full ]]; then
                m=$(median ${full[$daemon]:-})
            elif [[ $i == inc ]]; then
                m=$(median ${inc[$daemon]:-})
            elif [[ -n ${fw[$daemon]:-} ]]; then
                m=$(median ${fw[$daemon]})
            else
                m=-
            fi
            cells+=("$(fmt1 "$m")" "$(mibs "$bytes" "$m")")
        done
        printf '%-34s %6s %7s %7s %7s %7s %7s %7s\n' "$label" \
            $((bytes / MiB)) "${cells[@]}"
    done
    printf '%-34s %6s %7s %7s %7s %7s %7s %7s\n' \
        "  sync=full: CPU s/GiB [1]" "" "$(median ${cg[qmpd]:-})" "" \
        "$(median ${cg[qsd]:-})" "" "$(median ${cg[qemu]:-})" ""
    printf '%-34s %6s %7s %7s\n' "cp of a file of data, then sync" \
        $((alloc / MiB)) "$(fmt1 "$cp_s")" "$(mibs "$alloc" "$cp_s")"
    printf '%-34s %6s %7s %7s\n' "dd bs=1M oflag=direct" \
        $((alloc / MiB)) "$(fmt1 "$dd_s")" "$(mibs "$alloc" "$dd_s")"
    printf '%-34s %6s %7s %7s %7s %7s %7s %7s\n' \
        "  the guest's 4 KiB writes, MiB/s" "" "" "$(median ${wr[qmpd]:-x} ||
        true)" "" "" "" "$(median ${wr[qemu]:-x} || true)"
    echo
    echo "Runs (seconds, in order):"
    for daemon in "${daemons[@]}"; do
        echo "  $daemon: full ${full[$daemon]:-}| incremental ${inc[$daemon]:-}| full+writer ${fw[$daemon]:-}"
        [[ -n ${err[$daemon]:-} ]] && notes+=("$daemon backup: ${err[$daemon]}")
    done
    return 0
}

# target_add NODE: blockdev-add of $tmp/NODE.qcow2, JSON.
target_add()
{
    printf '{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"%s","discard":"unmap","file":{"driver":"file","filename":"%s","cache":{"direct":true},"aio":"native"}}}' \
        "$1" "$tmp/$1.qcow2"
}

# ---- 3. memory -----------------------------------------------------------

part_memory()
{
    local daemon daemons=(qmpd) base n s key label cells prev
    local chunk=$((2 * GiB - 65536)) merge
    local -A D=()

    $have_qemu && daemons+=(qemu)
    merge='{"execute":"block-dirty-bitmap-merge","arguments":{"node":"src",'
    for daemon in "${daemons[@]}"; do
        start "$daemon" -blockdev "driver=null-co,node-name=src,size=$null_bytes"
        # one zero write with no bitmap: whatever the write path
        # allocates for itself is in the baseline
        client fill src "$chunk" --chunk "$chunk"
        base=$(rss_kb "$pid")
        D[$daemon|base]=$base
        client bitmaps src 1
        D[$daemon|1-clean]=$(($(rss_kb "$pid") - base))
        client fill src "$null_bytes" --chunk "$chunk"
        D[$daemon|1-set]=$(($(rss_kb "$pid") - base))
        client bitmaps src 8
        D[$daemon|7-clean]=$(($(rss_kb "$pid") - base - D[$daemon|1-set]))
        for ((n = 1; n < 8; n++)); do
            client cmd "$merge"'"target":"b'$n'","bitmaps":["b0"]}}'
        done
        D[$daemon|8-set]=$(($(rss_kb "$pid") - base))
        for ((n = 0; n < 8; n++)); do
            client cmd '{"execute":"block-dirty-bitmap-clear",'$(
                )'"arguments":{"node":"src","name":"b'$n'"}}'
        done
        D[$daemon|8-cleared]=$(($(rss_kb "$pid") - base))
        client bitmaps src 0
        D[$daemon|8-removed]=$(($(rss_kb "$pid") - base))
        stop "$daemon" "$tmp/$daemon.log"
    done

    echo
    echo "3. Memory of dirty bitmaps: a ${NULL_TB} TiB null-co node, 64 KiB granularity"
    echo
    echo "Method: one daemon each; after one zero write with no bitmap, VmRSS is"
    echo "the baseline. Then: add bitmap b0 (clean); set all its bits by zero"
    echo "writes over the whole node (HMP qemu-io write -z, 2 GiB each); add"
    echo "b1..b7 (clean); set all their bits with block-dirty-bitmap-merge of b0"
    echo "into each; block-dirty-bitmap-clear all 8; remove all 8. MiB = VmRSS -"
    echo "baseline (the +7 row: its own increase); per bm/TiB = MiB / bitmaps /"
    echo "$NULL_TB."
    echo
    printf '%-34s %10s %12s %10s %12s\n' state "qmpd MiB" "per bm/TiB" \
        "QEMU MiB" "per bm/TiB"
    printf '%-34s %10s %12s %10s %12s\n' "-----" "--------" "----------" \
        "--------" "----------"
    for s in "1-clean 1 1 bitmap, clean" \
        "1-set 1 1 bitmap, every bit set" \
        "7-clean 7 +7 bitmaps, clean" \
        "8-set 8 8 bitmaps, every bit set" \
        "8-cleared 8 8 bitmaps, cleared" \
        "8-removed 8 8 bitmaps removed"; do
        read -r key n label <<<"$s"
        cells=()
        for daemon in qmpd qemu; do
            if [[ -n ${D[$daemon|$key]:-} ]]; then
                cells+=("$(awk -v k="${D[$daemon|$key]}" -v n="$n" \
                    -v t="$NULL_TB" 'BEGIN {
                    printf "%.2f %.2f\n", k / 1024, k / 1024 / n / t }')")
            else
                cells+=("- -")
            fi
        done
        # shellcheck disable=SC2086 # two words per cell
        printf '%-34s %10s %12s %10s %12s\n' "$label" ${cells[0]} ${cells[1]}
    done
    printf '%-34s %10s %12s %10s %12s\n' "baseline VmRSS" \
        "$(awk -v k="${D[qmpd|base]}" 'BEGIN { printf "%.1f\n", k / 1024 }')" "" \
        "$(awk -v k="${D[qemu|base]:-0}" 'BEGIN { printf "%.1f\n", k / 1024 }')" ""
    awk -v t="$NULL_TB" 'BEGIN {
        g = t * 2^40 / 65536; w = int((g + 63) / 64) * 8
        s = int((w / 8 + 63) / 64) * 8
        printf "\nTheory, util/hbitmap.c per bitmap per TiB at 64 KiB: %d granules,\n", g / t
        printf "words[] %.2f MiB + top[] %.0f KiB = %.3f MiB (QEMU'"'"'s HBitmap: the same\n",
            w / t / 2^20, s / t / 1024, (w + s) / t / 2^20
        printf "2 MiB last level plus 32.5 KiB of upper levels). Both calloc them, so\n"
        printf "pages of a clean bitmap are only resident once written.\n" }'
}

for p in $PARTS; do
    t0=$SECONDS
    "part_$p"
    echo "(part $p: $((SECONDS - t0)) s)"
done

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((${#notes[@]})); then
    echo
    echo "Notes:"
    printf '  %s\n' "${notes[@]}"
fi
