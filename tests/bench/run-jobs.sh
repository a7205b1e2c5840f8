#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Block job benchmark: block-stream and block-commit on a three-layer qcow2
# chain, through qmpd and (when installed) qemu-storage-daemon, next to the
# disk's own copy speed (cp, dd) and the QMP round trip while a stream runs
# at full speed, printed as one table. It is a benchmark, not a test: it
# asserts no targets, and fails only if something cannot be run. It builds
# nothing; jobclient.py (next to it) speaks QMP and times the jobs.
#
# Environment:
#   QMPD               qmpd binary (default ../../qmpd from this directory)
#   QSD                qemu-storage-daemon binary (default:
#                      qemu-storage-daemon, skipped when not installed)
#   QEMU_IMG           qemu-img binary (default qemu-img); it builds the
#                      chain and maps it
#   BENCH_JOBS_GB      virtual size of the chain in GiB (default 4)
#   BENCH_JOBS_MB      the same in MiB, overriding BENCH_JOBS_GB (a
#                      multiple of 16, at least 64)
#   BENCH_JOBS_REPEAT  runs per case and daemon; the median is shown
#                      (default 1)
#   BENCH_JOBS_FILE_OPTS  options of every file node (default
#                      cache.direct=on,aio=native, as both daemons are
#                      usually run)
#   BENCH_JOBS_TIMEOUT seconds a job may take before it counts as stalled
#                      (default 300)
#   TMPDIR             where the images go (must allow O_DIRECT, so not
#                      tmpfs; default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
QSD=${QSD:-qemu-storage-daemon}
QEMU_IMG=${QEMU_IMG:-qemu-img}
SIZE_MB=${BENCH_JOBS_MB:-$((${BENCH_JOBS_GB:-4} * 1024))}
REPEAT=${BENCH_JOBS_REPEAT:-1}
FILE_OPTS=${BENCH_JOBS_FILE_OPTS:-cache.direct=on,aio=native}
TIMEOUT=${BENCH_JOBS_TIMEOUT:-300}
client=$script_dir/jobclient.py

[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 64 && $((SIZE_MB % 16)) == 0 ]] ||
    die "the chain size must be a multiple of 16 MiB, at least 64 (got $SIZE_MB)"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] ||
    die "BENCH_JOBS_REPEAT must be a whole number >= 1"
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -ge 1 ]] ||
    die "BENCH_JOBS_TIMEOUT must be a whole number of seconds"
[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
command -v "$QEMU_IMG" >/dev/null 2>&1 ||
    die "$QEMU_IMG not found: it builds the image chain"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
have_qsd=false
if command -v "$QSD" >/dev/null 2>&1; then
    have_qsd=true
fi

bench_init
# a daemon that dies during a job is reported: the job may be why
died="exited on its own during a job (log above)"

# Layout, in units u of 1/16 of the disk (256 MiB at 4 GiB), 64 KiB
# clusters; "every 2nd" means every other cluster, and so on:
#   base  [0, 4u) all                       1/4 of the disk
#   sn1   [3u, 9u) every 2nd                3/16, over base in [3u, 4u)
#   sn2   [2u, 4u) every 4th, [12u, 12.5u)  1/16, over base and sn1
# 7u of 16 (44%) is allocated in the chain.
unit_mb=$((SIZE_MB / 16))
unit=$((unit_mb << 20))

# make_chain DIR: a fresh base <- sn1 <- sn2 in DIR, with the layout above.
make_chain()
{
    local d=$1 k=65536 m=1048576

    rm -rf "$d"
    mkdir -p "$d"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k "$d/base.qcow2" \
        "${SIZE_MB}M" || die "could not create $d/base.qcow2"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k -b base.qcow2 \
        -F qcow2 "$d/sn1.qcow2" || die "could not create $d/sn1.qcow2"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k -b sn1.qcow2 \
        -F qcow2 "$d/sn2.qcow2" || die "could not create $d/sn2.qcow2"
    fill "$d/base.qcow2" qcow2 0 $m $m $((4 * unit / m)) 17
    fill "$d/sn1.qcow2" qcow2 $((3 * unit)) $k $((2 * k)) $((3 * unit / k)) 34
    fill "$d/sn2.qcow2" qcow2 $((2 * unit)) $k $((4 * k)) $((unit / 2 / k)) 51
    fill "$d/sn2.qcow2" qcow2 $((12 * unit)) $m $m $((unit / 2 / m)) 68
}

# blockdevs DIR DASHES: the chain as -blockdev (qmpd) or --blockdev (qsd)
# options, one file and one qcow2 node per layer, the backing links given
# explicitly.
blockdevs()
{
    local d=$1 dash=$2 prev="" n

    for n in base sn1 sn2; do
        printf '%s\n' "${dash}blockdev" \
            "driver=file,node-name=$n-file,filename=$d/$n.qcow2,$FILE_OPTS" \
            "${dash}blockdev" \
            "driver=qcow2,node-name=$n,file=$n-file${prev:+,backing=$prev}"
        prev=$n
    done
}

# start DAEMON DIR: start qmpd or qsd on the chain in DIR; sets $pid and
# $sock. Polling for the socket is fine here: nothing is timed yet.
pid="" sock=""
start()
{
    local daemon=$1 d=$2 args=()

    sock=$d/$daemon.sock
    if [[ $daemon == qmpd ]]; then
        mapfile -t args < <(blockdevs "$d" -)
        "$QMPD" -M none -nodefaults -display none \
            -qmp "unix:$sock,server=on,wait=off" "${args[@]}" \
            2>"$d/$daemon.log" &
    else
        mapfile -t args < <(blockdevs "$d" --)
        "$QSD" --chardev "socket,path=$sock,server=on,wait=off,id=m" \
            --monitor chardev=m "${args[@]}" 2>"$d/$daemon.log" &
    fi
    pid=$!
    pids+=("$pid")
    wait_socket "$daemon" "$sock" "$d/$daemon.log" \
        python3 "$client" probe "$sock"
}

# job_cmd CASE: the QMP command of one case, always with job-id job0.
job_cmd()
{
    local a='"job-id":"job0","device":"sn2"'

    case $1 in
    stream_full) echo "{\"execute\":\"block-stream\",\"arguments\":{$a}}" ;;
    stream_base)
        echo "{\"execute\":\"block-stream\",\"arguments\":{$a,\"base-node\":\"base\"}}" ;;
    commit_intermediate)
        echo "{\"execute\":\"block-commit\",\"arguments\":{$a,\"top-node\":\"sn1\",\"base-node\":\"base\"}}" ;;
    commit_active)
        echo "{\"execute\":\"block-commit\",\"arguments\":{$a,\"top-node\":\"sn2\",\"base-node\":\"base\"}}" ;;
    esac
}

# run_case DAEMON CASE [POLL_CMD]: one timed run on a fresh chain; sets
# $result to jobclient's line.
result=""
run_case()
{
    local daemon=$1 c=$2 poll=${3:-} d=$tmp/run args=()

    make_chain "$d"
    cold
    start "$daemon" "$d"
    [[ $c == commit_active ]] && args+=(--ready)
    [[ -n $poll ]] && args+=(--poll "$poll")
    result=$(timeout "$TIMEOUT" python3 "$client" run "$sock" \
        "$(job_cmd "$c")" ${args[@]+"${args[@]}"} 2>"$d/client.err") ||
        result="seconds=- error=\"no end within ${TIMEOUT}s or client failed: $(tail -n 1 "$d/client.err")\""
    stop "$daemon" "$d/$daemon.log" "$died"
}

# row CASE MIB QMPD_S QMPD_MIBS QSD_S QSD_MIBS [NOTE]
row()
{
    printf '%-44s %11s %8s %8s %8s %9s%s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
        "${7:-}"
}

errors=()

# note_error DAEMON CASE LINE: keep the error of a run for the footnotes
# and set $marker to the mark for its cell ("" if the run had none).
marker=""
# Does this qmpd have block-commit? Ask a bare one.
mkdir -p "$tmp/probe"
"$QMPD" -M none -nodefaults -display none \
    -qmp "unix:$tmp/probe/qmpd.sock,server=on,wait=off" \
    2>"$tmp/probe/qmpd.log" &
pid=$!
pids+=("$pid")
for ((i = 0; i < 200; i++)); do
    [[ -S $tmp/probe/qmpd.sock ]] &&
        python3 "$client" probe "$tmp/probe/qmpd.sock" 2>/dev/null && break
    sleep 0.05
done
qmpd_commit=true
python3 "$client" has-command "$tmp/probe/qmpd.sock" block-commit ||
    qmpd_commit=false
stop qmpd "$tmp/probe/qmpd.log" "$died"

# The bytes each job moves, from the layers' own allocation maps.
make_chain "$tmp/run"
alloc=$(python3 "$client" alloc "$tmp/run/base.qcow2" "$tmp/run/sn1.qcow2" \
    "$tmp/run/sn2.qcow2") || die "could not map the chain"

echo "qmpd:                $("$QMPD" -version | head -n 1) ($QMPD)"
if $have_qsd; then
    echo "qemu-storage-daemon: $("$QSD" --version | head -n 1)"
else
    echo "qemu-storage-daemon: not installed"
fi
echo "host:                $(nproc) CPUs, $(uname -sr), images in $tmp" \
    "($(df -PT "$tmp" | awk 'NR == 2 { print $2 }'))"
echo
mib()
{
    echo $(($(field "$alloc" "$1") >> 20))
}
echo "Method: a fresh $SIZE_MB MiB qcow2 chain base <- sn1 <- sn2 (64 KiB"
echo "clusters) for every run: base holds $(mib layer0) MiB, sn1 $(mib layer1) MiB and"
echo "sn2 $(mib layer2) MiB, at overlapping offsets ($(mib union) MiB allocated in all)."
echo "Both daemons open it with -blockdev (file nodes $FILE_OPTS)"
echo "and run the job at full speed. Time: command sent to JOB_STATUS_CHANGE"
echo "concluded (active commit: to BLOCK_JOB_READY, then job-complete to"
echo "concluded on the next row). MiB: the data the job must move (allocated"
echo "above its base and not already in its target); MiB/s = MiB / time. Page"
echo "cache dropped before each run: $can_drop. Median of $REPEAT run(s) per case"
echo "and daemon, alternating which goes first."
echo

row case MiB "qmpd s" "MiB/s" "qsd s" "qsd MiB/s"
row "----" "---" "------" "-----" "-----" "---------"

cases=(stream_full stream_base commit_intermediate commit_active)
declare -A label=(
    [stream_full]="block-stream sn2, whole chain"
    [stream_base]="block-stream sn2, base-node=base"
    [commit_intermediate]="block-commit top-node=sn1 base-node=base"
    [commit_active]="block-commit top-node=sn2 (to READY)"
)
for c in "${cases[@]}"; do
    bytes=$(field "$alloc" "$c")
    daemons=(qmpd)
    $have_qsd && daemons+=(qsd)
    declare -A secs=() csecs=() mark=()
    for daemon in "${daemons[@]}"; do
        secs[$daemon]="" csecs[$daemon]="" mark[$daemon]=""
    done
    for ((i = 0; i < REPEAT; i++)); do
        order=("${daemons[@]}")
        if ((i % 2)) && $have_qsd; then
            order=(qsd qmpd)
        fi
        for daemon in "${order[@]}"; do
            if [[ $daemon == qmpd && $c == commit_* ]] && ! $qmpd_commit; then
                continue
            fi
            run_case "$daemon" "$c"
            if [[ $c == commit_active ]]; then
                secs[$daemon]+=" $(field "$result" ready_s)"
                csecs[$daemon]+=" $(field "$result" complete_s)"
            else
                secs[$daemon]+=" $(field "$result" seconds)"
            fi
            note_error "$daemon" "${label[$c]}" "$result"
            mark[$daemon]+=$marker
        done
    done
    cells=() tail_note=""
    for daemon in qmpd qsd; do
        if [[ $daemon == qsd ]] && ! $have_qsd; then
            cells+=("-" "")
            tail_note+="  (qemu-storage-daemon not installed)"
        elif [[ $daemon == qmpd && $c == commit_* ]] && ! $qmpd_commit; then
            cells+=("n/a" "")
            tail_note+="  n/a (no block-commit in this qmpd)"
        else
            # shellcheck disable=SC2086
            s=$(median_all ${secs[$daemon]})
            cells+=("$(secs_fmt "$s")" "$(mibs "$bytes" "$s")${mark[$daemon]}")
        fi
    done
    row "${label[$c]}" $((bytes >> 20)) "${cells[@]}" "$tail_note"
    if [[ $c == commit_active ]]; then
        cells=()
        for daemon in qmpd qsd; do
            if [[ $daemon == qsd ]] && ! $have_qsd; then
                cells+=("-" "")
            elif [[ $daemon == qmpd ]] && ! $qmpd_commit; then
                cells+=("-" "")
            else
                # shellcheck disable=SC2086
                cells+=("$(secs_fmt "$(median_all ${csecs[$daemon]})")" "")
            fi
        done
        row "  then job-complete to concluded" "" "${cells[@]}"
    fi
    unset secs csecs mark
done

# The disk's own copy speed for the whole-chain stream's amount of data,
# from a file of data written just before, with the page cache dropped.
phys_bytes=$(field "$alloc" stream_full)
phys_mb=$((phys_bytes >> 20))
rm -rf "$tmp/run"
"$QEMU_IMG" create -q -f raw "$tmp/src.raw" "${phys_mb}M" ||
    die "could not create $tmp/src.raw"
"$QEMU_IMG" bench -f raw -t none -i native -w -d 32 -s 1M -c "$phys_mb" \
    --pattern=90 "$tmp/src.raw" >/dev/null || die "could not fill src.raw"
cp_secs=() dd_secs=()
for ((i = 0; i < REPEAT; i++)); do
    cold
    t0=$EPOCHREALTIME
    cp "$tmp/src.raw" "$tmp/dst.raw"
    sync
    cp_secs+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")
    rm -f "$tmp/dst.raw"
    cold
    t0=$EPOCHREALTIME
    dd if="$tmp/src.raw" of="$tmp/dst.raw" bs=1M oflag=direct status=none
    dd_secs+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")
    rm -f "$tmp/dst.raw"
done
rm -f "$tmp/src.raw"
s=$(median_all "${cp_secs[@]}")
row "cp of a file of data, then sync [1]" "$phys_mb" "$(secs_fmt "$s")" \
    "$(mibs "$phys_bytes" "$s")" "" ""
s=$(median_all "${dd_secs[@]}")
row "dd bs=1M oflag=direct [1]" "$phys_mb" "$(secs_fmt "$s")" \
    "$(mibs "$phys_bytes" "$s")" "" ""

# QMP responsiveness: one command at a time on the job's own connection
# for as long as a full-speed whole-chain stream runs.
echo
row "QMP round trip during the whole-chain stream" polls "median" "max ms" \
    "median" "max ms"
status_note=""
for poll in query-status query-block-jobs; do
    declare -A med=() mx=() np=() ssecs=() mark=()
    daemons=(qmpd)
    $have_qsd && daemons+=(qsd)
    for ((i = 0; i < REPEAT; i++)); do
        for daemon in "${daemons[@]}"; do
            run_case "$daemon" stream_full "$poll"
            med[$daemon]+=" $(field "$result" rtt_median_ms)"
            mx[$daemon]+=" $(field "$result" rtt_max_ms)"
            np[$daemon]+=" $(field "$result" polls)"
            ssecs[$daemon]+=" $(field "$result" seconds)"
            note_error "$daemon" "stream with $poll" "$result"
            mark[$daemon]+=$marker
        done
    done
    cells=() pcount=""
    for daemon in qmpd qsd; do
        if [[ $daemon == qsd ]] && ! $have_qsd; then
            cells+=("-" "-")
            continue
        fi
        # shellcheck disable=SC2086
        cells+=("$(median_all ${med[$daemon]})" \
            "$(printf '%s\n' ${mx[$daemon]} | sort -g | tail -n 1)${mark[$daemon]}")
        # shellcheck disable=SC2086
        pcount+="${pcount:+/}$(median_all ${np[$daemon]})"
    done
    lab="$poll ms"
    if [[ $poll == query-status ]] && $have_qsd; then
        lab+=" [2]"
        status_note=1
    fi
    row "$lab" "$pcount" "${cells[@]}"
    cells=()
    for daemon in qmpd qsd; do
        if [[ $daemon == qsd ]] && ! $have_qsd; then
            cells+=("-" "")
            continue
        fi
        # shellcheck disable=SC2086
        s=$(median_all ${ssecs[$daemon]})
        cells+=("$(secs_fmt "$s")" "$(mibs "$(field "$alloc" stream_full)" "$s")")
    done
    row "  the stream meanwhile, s and MiB/s" "" "${cells[@]}"
    unset med mx np ssecs mark
done

echo
echo "[1] Host tools, no daemon, same file system; the file holds the"
echo "    whole-chain stream's amount of data. cp goes through the page cache"
echo "    (the time includes the sync); dd writes with O_DIRECT, one 1 MiB"
echo "    request at a time. The jobs read and write at a queue depth above 1,"
echo "    so they can beat these."
if [[ -n $status_note ]]; then
    echo "[2] qemu-storage-daemon has no query-status, so its column times the"
    echo "    CommandNotFound reply: the same parse-dispatch-reply path."
    echo "    query-block-jobs is the like-for-like row."
fi
echo "\"polls\" is qmpd/qsd: the commands answered while the stream ran."
for e in ${errors[@]+"${errors[@]}"}; do
    echo "$e"
done
for n in ${notes[@]+"${notes[@]}"}; do
    echo "note: $n"
done
