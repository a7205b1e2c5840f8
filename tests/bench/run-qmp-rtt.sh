#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# QMP round-trip benchmark: builds qmp-rtt.c into a temporary directory,
# starts qmpd and (when installed) qemu-storage-daemon on unix sockets, and
# prints their round-trip latency, throughput and idle memory side by side.
# It is a benchmark, not a test: it reports numbers and asserts no targets,
# and fails only if something cannot be built, started or talked to.
#
# Environment: QMPD (qmpd binary, default ../../qmpd from this directory),
# QSD (qemu-storage-daemon binary), QMP_RTT_N (round trips per case,
# default 20000), QMP_RTT_K (connections in the parallel case, default 8),
# CC (compiler, default cc).

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
QSD=${QSD:-qemu-storage-daemon}
N=${QMP_RTT_N:-20000}
K=${QMP_RTT_K:-8}
CC=${CC:-cc}

bench_init

vmrss_kb()
{
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# run_client OUT CMD SOCKET...: both cases (1 and K connections) in one go.
run_client()
{
    local out=$1 cmd=$2

    shift 2
    if ! "$tmp/qmp-rtt" -n "$N" -k "$K" -c "$cmd" "$@" >"$out"; then
        die "qmp-rtt failed against $1 with $cmd"
    fi
}

# row SERVER CASE RESULT_LINE [NOTE]
row()
{
    local line=$3 note=${4:-}

    printf '%-20s %-27s %9s %8s %8s%s\n' "$1" "$2" \
        "$(field "$line" median_us "?")" "$(field "$line" p99_us "?")" \
        "$(field "$line" cmds_per_s "?")" "$note"
}

[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
[[ $N =~ ^[0-9]+$ && $K =~ ^[0-9]+$ && $K -ge 1 && $N -ge $K ]] ||
    die "need QMP_RTT_N >= QMP_RTT_K >= 1"

glib_flags=$(pkg-config --cflags --libs glib-2.0) ||
    die "pkg-config cannot find glib-2.0"
read -r -a glib_flags <<<"$glib_flags"
"$CC" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$tmp/qmp-rtt" \
    "$script_dir/qmp-rtt.c" "${glib_flags[@]}" -lpthread ||
    die "could not build qmp-rtt"

"$QMPD" -nodefaults -display none -M none \
    -qmp "unix:$tmp/qmpd.sock,server=on,wait=off" 2>"$tmp/qmpd.log" &
qmpd_pid=$!
pids+=("$qmpd_pid")

have_qsd=false
qsd_socks=()
if command -v "$QSD" >/dev/null 2>&1; then
    have_qsd=true
    # One monitor per parallel connection: a QEMU monitor serves a single
    # client at a time and queues the next one until the first hangs up.
    qsd_args=()
    for ((i = 0; i < K; i++)); do
        qsd_socks+=("$tmp/qsd-$i.sock")
        qsd_args+=(--chardev "socket,path=$tmp/qsd-$i.sock,server=on,wait=off,id=m$i"
                   --monitor "chardev=m$i")
    done
    "$QSD" "${qsd_args[@]}" 2>"$tmp/qsd.log" &
    qsd_pid=$!
    pids+=("$qsd_pid")
fi

pid=$qmpd_pid
wait_socket qmpd "$tmp/qmpd.sock" "$tmp/qmpd.log" \
    "$tmp/qmp-rtt" --probe "$tmp/qmpd.sock"
if $have_qsd; then
    for sock in "${qsd_socks[@]}"; do
        pid=$qsd_pid
        wait_socket qemu-storage-daemon "$sock" "$tmp/qsd.log" \
            "$tmp/qmp-rtt" --probe "$sock"
    done
fi

# Idle means started and past one handshake (the readiness probe), before
# any benchmark traffic.
qmpd_idle_kb=$(vmrss_kb "$qmpd_pid")
if $have_qsd; then
    qsd_idle_kb=$(vmrss_kb "$qsd_pid")
fi

qmpd_version=$("$QMPD" -version | head -n 1)
echo "qmpd:                $qmpd_version ($QMPD)"
if $have_qsd; then
    echo "qemu-storage-daemon: $("$QSD" --version | head -n 1)"
else
    echo "qemu-storage-daemon: not installed"
fi
echo "host:                $(nproc) CPUs, $(uname -sr)"
echo
echo "Method: one command in flight per connection; each round trip is timed"
echo "from send to the complete reply line (CLOCK_MONOTONIC). With $K"
echo "connections the $N commands are split across them (~$((N / K)) each), all"
echo "start together, median/p99 are over all $N samples, and cmds/s is $N"
echo "divided by the wall time. qmpd serves all $K connections on one socket;"
echo "qemu-storage-daemon gets $K sockets (--chardev/--monitor pairs) because"
echo "a QEMU monitor serves one client at a time. Each connection first does"
echo "200 untimed warm-up round trips. Unix sockets only."

status_note=""
for cmd in query-status query-version; do
    json="{\"execute\":\"$cmd\"}"
    run_client "$tmp/qmpd-$cmd.out" "$json" "$tmp/qmpd.sock"
    qmpd_1=$(grep '^conns=1 ' "$tmp/qmpd-$cmd.out")
    qmpd_k=$(grep "^conns=$K " "$tmp/qmpd-$cmd.out" | tail -n 1)
    [[ $(field "$qmpd_1" errors) == 0 && $(field "$qmpd_k" errors) == 0 ]] ||
        die "qmpd returned errors for $cmd"

    qsd_1="" qsd_k="" qsd_note=""
    if $have_qsd; then
        run_client "$tmp/qsd-$cmd.out" "$json" "${qsd_socks[@]}"
        qsd_1=$(grep '^conns=1 ' "$tmp/qsd-$cmd.out")
        qsd_k=$(grep "^conns=$K " "$tmp/qsd-$cmd.out" | tail -n 1)
        if [[ $(field "$qsd_1" errors) != 0 ]]; then
            qsd_note="  [*]"
            status_note="[*] qemu-storage-daemon does not implement $cmd (its schema has no
    run state), so these rows time its CommandNotFound error reply: the
    same parse-dispatch-reply path, without the command's work. The
    query-version table is the like-for-like comparison."
        fi
    fi

    conns_label="$K connections"
    if ((K == 1)); then
        conns_label="1 connection"
    fi
    echo
    printf '%-48s %9s %8s %8s\n' "QMP round trip, $N x $cmd" \
        median_us p99_us cmds/s
    row qmpd "1 connection" "$qmpd_1"
    if $have_qsd; then
        row qemu-storage-daemon "1 connection" "$qsd_1" "$qsd_note"
    else
        printf '%-20s %-27s %s\n' qemu-storage-daemon "1 connection" \
            "not installed"
    fi
    row qmpd "$conns_label" "$qmpd_k"
    if $have_qsd; then
        row qemu-storage-daemon "$conns_label ($K sockets)" "$qsd_k" \
            "$qsd_note"
    else
        printf '%-20s %-27s %s\n' qemu-storage-daemon \
            "$conns_label ($K sockets)" "not installed"
    fi
done
if [[ -n $status_note ]]; then
    echo
    echo "$status_note"
fi

qmpd_after_kb=$(vmrss_kb "$qmpd_pid")
echo
printf '%-48s %9s %14s\n' "Memory (VmRSS, /proc/PID/status)" idle_kB \
    after_bench_kB
printf '%-48s %9s %14s\n' "qmpd (1 QMP socket)" "$qmpd_idle_kb" \
    "$qmpd_after_kb"
if $have_qsd; then
    printf '%-48s %9s %14s\n' "qemu-storage-daemon ($K QMP monitors)" \
        "$qsd_idle_kb" "$(vmrss_kb "$qsd_pid")"
else
    printf '%-48s %s\n' "qemu-storage-daemon" "not installed"
fi
