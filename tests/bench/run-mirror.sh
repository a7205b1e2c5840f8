#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Mirror benchmark: blockdev-mirror in qmpd and in qemu-storage-daemon on
# the same images, next to the disk's own copy speed (cp, dd), and mirror
# under a paced guest writer, printed as two tables. It is a benchmark, not
# a test: it asserts no targets, and fails only if something cannot be run.
# It builds nothing; mirrorclient.py (next to it) speaks QMP, runs the
# writer and times the jobs; jobclient.py maps the seed chain.
#
# Cases (a fresh target for every run, both daemons with -blockdev):
#   - sync=full of a qcow2 whose every other MiB holds data (half of it)
#   - the seed's live block copy, base <- sn1 <- sn2 onto a target backed by
#     base: QEMU 7.2's two steps (block-stream sn2 base-node=base, then a
#     sync=top mirror), and qmpd's one job (__com.qmpd_shared-base)
#   - sync=full raw to raw (a sparse raw file, half data)
#   - the qcow2 case under a guest writer at each BENCH_MIRROR_RATES MiB/s,
#     in background and write-blocking copy mode (and qmpd's
#     __com.qmpd_auto-write-blocking when the binary has it): time to READY,
#     bytes copied more than once, whether READY came within the bound.
#
# Environment:
#   QMPD                qmpd binary (default ../../qmpd from this directory)
#   QSD                 qemu-storage-daemon (default: qemu-storage-daemon;
#                       its columns are left empty when not installed)
#   QEMU                qemu-system-x86_64 (default: from PATH), run with
#                       -M none: QEMU with a guest writer of its own (HMP
#                       qemu-io) in the writer table
#   QEMU_IMG, QEMU_IO   qemu-img and qemu-io (default: from PATH); qemu-img
#                       makes the images, qemu-io is qsd's guest writer
#   BENCH_MIRROR_GB     virtual size of every image in GiB (default 4)
#   BENCH_MIRROR_MB     the same in MiB, overriding BENCH_MIRROR_GB (a
#                       multiple of 64, at least 256)
#   BENCH_MIRROR_RATES  guest writer rates in MiB/s (default "20 100 400";
#                       empty: no writer table)
#   BENCH_MIRROR_BOUND  seconds a job under a writer may take to get READY
#                       before it counts as not converged (default 30)
#   BENCH_MIRROR_FILE_OPTS  options of every file node (default
#                       cache.direct=on,aio=native)
#   BENCH_MIRROR_TIMEOUT  seconds a job without writer may take (default 300)
#   TMPDIR              where the images go (must allow O_DIRECT, so not
#                       tmpfs; default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
QMPD=${QMPD:-$script_dir/../../qmpd}
QSD=${QSD:-qemu-storage-daemon}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
SIZE_MB=${BENCH_MIRROR_MB:-$((${BENCH_MIRROR_GB:-4} * 1024))}
RATES=${BENCH_MIRROR_RATES-20 100 400}
BOUND=${BENCH_MIRROR_BOUND:-30}
FILE_OPTS=${BENCH_MIRROR_FILE_OPTS:-cache.direct=on,aio=native}
TIMEOUT=${BENCH_MIRROR_TIMEOUT:-300}
client=$script_dir/mirrorclient.py

[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 256 && $((SIZE_MB % 64)) == 0 ]] ||
    die "the image size must be a multiple of 64 MiB, at least 256 (got $SIZE_MB)"
[[ $BOUND =~ ^[0-9]+$ && $BOUND -ge 1 ]] ||
    die "BENCH_MIRROR_BOUND must be a whole number of seconds"
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -ge 1 ]] ||
    die "BENCH_MIRROR_TIMEOUT must be a whole number of seconds"
for r in $RATES; do
    [[ $r =~ ^[0-9]+$ && $r -ge 1 ]] || die "bad rate '$r' in BENCH_MIRROR_RATES"
done
[[ -x $QMPD ]] || die "qmpd not found at $QMPD (set QMPD or run make)"
command -v "$QEMU_IMG" >/dev/null 2>&1 || die "$QEMU_IMG not found: it makes the images"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
have_qsd=false
if command -v "$QSD" >/dev/null 2>&1; then
    have_qsd=true
fi
have_qemu=false
if command -v "$QEMU" >/dev/null 2>&1; then
    have_qemu=true
fi
# qsd's guest writer is qemu-io over qsd's NBD export; stdbuf makes
# qemu-io read its commands unbuffered and print each result at once
qsd_writer=false
if $have_qsd && command -v "$QEMU_IO" >/dev/null 2>&1 &&
    command -v stdbuf >/dev/null 2>&1; then
    qsd_writer=true
fi

bench_init
# a daemon that dies during a job is reported: the job may be why
died="exited on its own during a job (log above)"

MiB=1048576
size=$((SIZE_MB * MiB))
half=$((size / 2))

# The half-allocated source, qcow2 and raw: 1 MiB of data every 2 MiB.
make_half()
{
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k "$tmp/half.qcow2" \
        "${SIZE_MB}M" || die "could not create half.qcow2"
    fill "$tmp/half.qcow2" qcow2 0 $MiB $((2 * MiB)) $((size / 2 / MiB)) 17
    "$QEMU_IMG" create -q -f raw "$tmp/half.raw" "${SIZE_MB}M" ||
        die "could not create half.raw"
    fill "$tmp/half.raw" raw 0 $MiB $((2 * MiB)) $((size / 2 / MiB)) 18
}

# The seed chain, laid out as run-jobs.sh's (units u of 1/16 of the disk):
#   base  [0, 4u) all;  sn1 [3u, 9u) every other 64 KiB cluster;
#   sn2   [2u, 4u) every 4th cluster and [12u, 12.5u) all.
# sn2 is kept as sn2.orig: block-stream writes into sn2, and each run
# starts from the original.
make_seed()
{
    local d=$tmp/seed unit=$((size / 16)) k=65536

    mkdir -p "$d"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k "$d/base.qcow2" \
        "${SIZE_MB}M" || die "could not create base.qcow2"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k -b base.qcow2 \
        -F qcow2 "$d/sn1.qcow2" || die "could not create sn1.qcow2"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k -b sn1.qcow2 \
        -F qcow2 "$d/sn2.qcow2" || die "could not create sn2.qcow2"
    fill "$d/base.qcow2" qcow2 0 $MiB $MiB $((4 * unit / MiB)) 17
    fill "$d/sn1.qcow2" qcow2 $((3 * unit)) $k $((2 * k)) $((3 * unit / k)) 34
    fill "$d/sn2.qcow2" qcow2 $((2 * unit)) $k $((4 * k)) $((unit / 2 / k)) 51
    fill "$d/sn2.qcow2" qcow2 $((12 * unit)) $MiB $MiB $((unit / 2 / MiB)) 68
    cp "$d/sn2.qcow2" "$d/sn2.orig"
}

# file_node NAME PATH: a file node's -blockdev value
file_node()
{
    echo "driver=file,node-name=$1,filename=$2,$FILE_OPTS"
}

# start DAEMON OPTION...: start qmpd, qemu (qemu-system-x86_64 -M none) or
# qsd with these options, written as qmpd takes them (-blockdev X, -drive
# X; qsd gets --blockdev X). Options "nbd" (qsd only) export node "src"
# writable over NBD at $nsock. Sets $pid, $sock and, for qmpd and qemu,
# $wsock: a second QMP socket, for the writer (QEMU's takes one client at
# a time). Polling for the socket is fine here: nothing is timed yet.
pid="" sock="" wsock="" nsock=""
start()
{
    local daemon=$1 args=() bin
    shift

    sock=$tmp/$daemon.sock wsock=$tmp/$daemon-w.sock nsock=$tmp/nbd.sock
    rm -f "$sock" "$wsock" "$nsock"
    if [[ $daemon == qsd ]]; then
        while (($#)); do
            if [[ $1 == nbd ]]; then
                args+=(--nbd-server "addr.type=unix,addr.path=$nsock"
                    --export "type=nbd,id=e0,node-name=src,writable=on,name=src")
                shift
            else
                args+=("-$1" "$2")
                shift 2
            fi
        done
        "$QSD" --chardev "socket,path=$sock,server=on,wait=off,id=m" \
            --monitor chardev=m ${args[@]+"${args[@]}"} \
            >"$tmp/$daemon.log" 2>&1 &
    else
        bin=$QMPD
        [[ $daemon == qemu ]] && bin=$QEMU
        # QEMU prints what HMP qemu-io's requests did to stdout: the log
        "$bin" -M none -nodefaults -display none \
            -qmp "unix:$sock,server=on,wait=off" \
            -qmp "unix:$wsock,server=on,wait=off" "$@" \
            >"$tmp/$daemon.log" 2>&1 &
    fi
    pid=$!
    pids+=("$pid")
    wait_socket "$daemon" "$sock" "$tmp/$daemon.log"
}


# target_add NODE PATH FORMAT [BACKING]: blockdev-add of a target, JSON.
target_add()
{
    local direct=false aio=threads backing=""

    [[ $FILE_OPTS == *cache.direct=on* ]] && direct=true
    [[ $FILE_OPTS == *aio=native* ]] && aio=native
    [[ -n ${4:-} ]] && backing=",\"backing\":\"$4\""
    printf '{"execute":"blockdev-add","arguments":{"driver":"%s","node-name":"%s","discard":"unmap"%s,"file":{"driver":"file","filename":"%s","cache":{"direct":%s},"aio":"%s"}}}' \
        "$3" "$1" "$backing" "$2" "$direct" "$aio"
}

# mirror_cmd DEVICE TARGET SYNC [EXTRA_JSON_MEMBERS]
mirror_cmd()
{
    printf '{"execute":"blockdev-mirror","arguments":{"job-id":"m","device":"%s","target":"%s","sync":"%s"%s}}' \
        "$1" "$2" "$3" "${4:+,$4}"
}

# run_client TIMEOUT ARGS...: mirrorclient.py run on $sock; sets $result.
result=""
run_client()
{
    local t=$1
    shift
    result=$(QEMU_IO=$QEMU_IO timeout "$t" python3 "$client" run "$sock" \
        "$@" 2>"$tmp/client.err") ||
        result="ready_s=- error=\"no end within ${t}s or client failed: $(tail -n 1 "$tmp/client.err")\""
}

errors=()
marker=""
c0="" cpu_gib="-"
# run_full DAEMON FORMAT: blockdev-mirror sync=full of half.FORMAT to a
# fresh image of the same format; $cpu_gib: the daemon's CPU seconds per
# GiB of data, from blockdev-add of the target to the job's end.
run_full()
{
    local daemon=$1 fmt=$2 t=$tmp/target.$2 drv=$2

    rm -f "$t"
    "$QEMU_IMG" create -q -f "$fmt" "$t" "${SIZE_MB}M"
    cold
    start "$daemon" -blockdev "$(file_node src-file "$tmp/half.$fmt")" \
        -blockdev "driver=$drv,node-name=src,file=src-file"
    c0=$(cpu_s "$pid")
    run_client "$TIMEOUT" --pre "$(target_add tgt "$t" "$drv")" \
        "$(mirror_cmd src tgt full)"
    cpu_gib=$(cpu_per_gib "$c0" "$(cpu_s "$pid")" "$half")
    stop "$daemon" "$tmp/$daemon.log" "$died"
}

# run_seed DAEMON WAY: the seed's copy, "two" steps or qmpd's "one" job.
run_seed()
{
    local daemon=$1 way=$2 d=$tmp/seed n prev="" args=() first=()

    cp "$d/sn2.orig" "$d/sn2.qcow2"
    rm -f "$d/active.qcow2"
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=64k -b base.qcow2 \
        -F qcow2 "$d/active.qcow2"
    for n in base sn1 sn2; do
        args+=(-blockdev "$(file_node "$n-file" "$d/$n.qcow2")" -blockdev
            "driver=qcow2,node-name=$n,file=$n-file${prev:+,backing=$prev}")
        prev=$n
    done
    cold
    start "$daemon" "${args[@]}"
    if [[ $way == two ]]; then
        first=(--first '{"execute":"block-stream","arguments":{"job-id":"s",'$(
            )'"device":"sn2","base-node":"base"}}')
        run_client "$TIMEOUT" \
            --pre "$(target_add active "$d/active.qcow2" qcow2 base)" \
            "${first[@]}" "$(mirror_cmd sn2 active top)"
    else
        run_client "$TIMEOUT" \
            --pre "$(target_add active "$d/active.qcow2" qcow2 base)" \
            "$(mirror_cmd sn2 active top '"__com.qmpd_shared-base":"base"')"
    fi
    stop "$daemon" "$tmp/$daemon.log" "$died"
}

# run_writer DAEMON RATE MODE: run_full's qcow2 case under the writer;
# MODE is background, write-blocking or auto (qmpd's extension). qmpd and
# qemu open the source as a drive (drive0, node src), because the writer's
# aio requests need a block backend that outlives each command; qsd as a
# node, exported over NBD for the writer.
run_writer()
{
    local daemon=$1 rate=$2 mode=$3 t=$tmp/target.qcow2 extra kind dev
    local cache=writeback aio=threads

    [[ $FILE_OPTS == *cache.direct=on* ]] && cache=none
    [[ $FILE_OPTS == *aio=native* ]] && aio=native
    rm -f "$t"
    "$QEMU_IMG" create -q -f qcow2 "$t" "${SIZE_MB}M"
    case $mode in
    background) extra="" ;;
    write-blocking) extra='"copy-mode":"write-blocking"' ;;
    auto) extra='"__com.qmpd_auto-write-blocking":true' ;;
    esac
    cold
    case $daemon in
    qsd)
        start qsd -blockdev "$(file_node src-file "$tmp/half.qcow2")" \
            -blockdev "driver=qcow2,node-name=src,file=src-file" nbd
        kind=nbd dev=src@$nsock
        ;;
    *)
        start "$daemon" -drive "if=none,id=drive0,node-name=src,format=qcow2,$(
            )file=$tmp/half.qcow2,cache=$cache,aio=$aio"
        kind=hmp dev=drive0
        [[ $daemon == qmpd ]] && kind=qmpd
        ;;
    esac
    run_client $((BOUND + 180)) --pre "$(target_add tgt "$t" qcow2)" \
        --bound "$BOUND" --writer "$kind:$dev:$rate" --span "$size" \
        --writer-sock "$wsock" "$(mirror_cmd src tgt full "$extra")"
    stop "$daemon" "$tmp/$daemon.log" "$died"
}

# add SECONDS SECONDS: their sum, "-" if either is "-".
add()
{
    if [[ $1 == - || $2 == - ]]; then
        echo "-"
    else
        awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'
    fi
}

row()
{
    printf '%-50s %7s %8s %8s %8s %9s%s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
        "${7:-}"
}

# ---- probe qmpd ----------------------------------------------------------

start qmpd
python3 "$client" has-arg "$sock" blockdev-mirror __com.qmpd_shared-base &&
    qmpd_shared=true || qmpd_shared=false
python3 "$client" has-arg "$sock" blockdev-mirror \
    __com.qmpd_auto-write-blocking && qmpd_auto=true || qmpd_auto=false
stop qmpd "$tmp/qmpd.log" "$died"

make_half
make_seed
alloc=$(python3 "$script_dir/jobclient.py" alloc "$tmp/seed/base.qcow2" \
    "$tmp/seed/sn1.qcow2" "$tmp/seed/sn2.qcow2") ||
    die "could not map the seed chain"
# what lands in the target: sn1's and sn2's clusters (jobclient's
# commit_active is |sn1 u sn2|); the stream moves sn1's that sn2 hides not
seed_bytes=$(field "$alloc" commit_active)
stream_bytes=$(field "$alloc" stream_base)

echo "qmpd:                $("$QMPD" -version | head -n 1) ($QMPD)"
if $have_qsd; then
    echo "qemu-storage-daemon: $("$QSD" --version | head -n 1)"
else
    echo "qemu-storage-daemon: not installed"
fi
echo "host:                $(nproc) CPUs, $(uname -sr), images in $tmp" \
    "($(df -PT "$tmp" | awk 'NR == 2 { print $2 }'))"
echo
echo "Method: $SIZE_MB MiB images, 64 KiB clusters; blockdev-mirror in both"
echo "daemons onto a target made by qemu-img and blockdev-add'ed (discard=unmap,"
echo "file nodes $FILE_OPTS). Time: blockdev-mirror sent to BLOCK_JOB_READY;"
echo "MiB: the data that must reach the target; MiB/s = MiB / time. Page cache"
echo "dropped before each run: $can_drop. One run per cell."
echo

row case MiB "qmpd s" "MiB/s" "qsd s" "qsd MiB/s"
row "----" "---" "------" "-----" "-----" "---------"

declare -A ready_off=()
for fmt in qcow2 raw; do
    declare -A s=() c=() mk=() cg=()
    for daemon in qmpd qsd; do
        s[$daemon]="-" c[$daemon]="-" mk[$daemon]="" cg[$daemon]="-"
        [[ $daemon == qsd ]] && ! $have_qsd && continue
        run_full "$daemon" "$fmt"
        cg[$daemon]=$cpu_gib
        s[$daemon]=$(field "$result" ready_s)
        c[$daemon]=$(field "$result" complete_s)
        [[ $fmt == qcow2 ]] && ready_off[$daemon]=$(field "$result" offset)
        note_error "$daemon" "$fmt sync=full" "$result" && mk[$daemon]=$marker
    done
    row "$fmt sync=full, every other MiB data" $((half >> 20)) \
        "$(secs_fmt "${s[qmpd]}")" "$(mibs $half "${s[qmpd]}")${mk[qmpd]}" \
        "$(secs_fmt "${s[qsd]}")" "$(mibs $half "${s[qsd]}")${mk[qsd]}"
    row "  then job-complete to concluded" "" "$(secs_fmt "${c[qmpd]}")" "" \
        "$(secs_fmt "${c[qsd]}")" ""
    row "  CPU s/GiB, the whole job [4]" "" "${cg[qmpd]}" "" "${cg[qsd]}" ""
    unset s c mk cg
done

# the seed: two steps in both; one job in qmpd
declare -A s=() st=() mk=()
for daemon in qmpd qsd; do
    s[$daemon]="-" st[$daemon]="-" mk[$daemon]=""
    [[ $daemon == qsd ]] && ! $have_qsd && continue
    run_seed "$daemon" two
    s[$daemon]=$(field "$result" total_s)
    st[$daemon]=$(field "$result" first_s)
    note_error "$daemon" "seed, two steps" "$result" && mk[$daemon]=$marker
done
row "seed base<-sn1<-sn2 onto base<-active [1]" $((seed_bytes >> 20)) "" "" "" ""
row "  two steps: stream + top mirror to READY" "" \
    "$(secs_fmt "${s[qmpd]}")" "$(mibs "$seed_bytes" "${s[qmpd]}")${mk[qmpd]}" \
    "$(secs_fmt "${s[qsd]}")" "$(mibs "$seed_bytes" "${s[qsd]}")${mk[qsd]}"
row "    of which block-stream sn2 base-node=base" $((stream_bytes >> 20)) \
    "$(secs_fmt "${st[qmpd]}")" "" "$(secs_fmt "${st[qsd]}")" ""
if $qmpd_shared; then
    run_seed qmpd one
    one=$(field "$result" ready_s)
    note_error qmpd "seed, one job" "$result"
    row "  one job (__com.qmpd_shared-base=base)" "" "$(secs_fmt "$one")" \
        "$(mibs "$seed_bytes" "$one")$marker" "n/a" ""
else
    row "  one job (__com.qmpd_shared-base=base)" "" "n/a" "" "n/a" \
        "  (not in this qmpd)"
fi
unset s st mk

# The disk's own copy speed for the sync=full cases' amount of data, from
# a file of data written just before, with the page cache dropped.
rm -rf "$tmp/seed"
"$QEMU_IMG" create -q -f raw "$tmp/src.raw" "$((half >> 20))M" ||
    die "could not create src.raw"
fill "$tmp/src.raw" raw 0 $MiB $MiB $((half >> 20)) 90
cold
t0=$EPOCHREALTIME
cp "$tmp/src.raw" "$tmp/dst.raw"
sync
cp_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
rm -f "$tmp/dst.raw"
cold
t0=$EPOCHREALTIME
dd if="$tmp/src.raw" of="$tmp/dst.raw" bs=1M oflag=direct status=none
dd_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
rm -f "$tmp/dst.raw" "$tmp/src.raw"
row "cp of a file of data, then sync [2]" $((half >> 20)) \
    "$(secs_fmt "$cp_s")" "$(mibs $half "$cp_s")" "" ""
row "dd bs=1M oflag=direct [2]" $((half >> 20)) "$(secs_fmt "$dd_s")" \
    "$(mibs $half "$dd_s")" "" ""

# ---- under a guest writer ------------------------------------------------

wrow()
{
    printf '%5s  %-44s %6s %7s %7s %7s %7s  %s\n' "$@"
}

if [[ -n $RATES ]]; then
    echo
    echo "Under a guest writer: the qcow2 sync=full case while a guest writes"
    echo "1 MiB at random places in the allocated half, paced to the rate, up to"
    echo "32 requests in flight [3]. writer: the rate it achieved. ready s: to"
    echo "BLOCK_JOB_READY, \"-\" if not within ${BOUND}s (converged: no). copied:"
    echo "the job's offset at READY (or at the bound); again: copied minus the"
    echo "$((half >> 20)) MiB a job copies without a writer (qmpd and qsd above: $(
        for d in qmpd qsd; do
            o=${ready_off[$d]:--}
            [[ $o == - ]] && printf '%s ' - || printf '%s ' $((o >> 20))
        done)MiB),"
    echo "i.e. bytes copied more than once (\">=\": not READY, a lower bound)."
    echo
    wrow "MiB/s" "daemon, copy mode" "writer" "ready s" "copied" "again" \
        "len" "converged"
    wrow "" "" "MiB/s" "" "MiB" "MiB" "MiB" ""
    runs=("qmpd background" "qmpd write-blocking")
    $qmpd_auto && runs+=("qmpd auto")
    runs+=("qemu background" "qemu write-blocking" "qsd background")
    for rate in $RATES; do
        for r in "${runs[@]}"; do
            daemon=${r% *} mode=${r#* }
            case $daemon in
            qmpd) label="qmpd, $mode" ;;
            qemu) label="QEMU (-M none, HMP qemu-io), $mode" ;;
            qsd) label="qsd (qemu-io over NBD), $mode" ;;
            esac
            [[ $mode == auto ]] && label="qmpd, __com.qmpd_auto-write-blocking"
            if [[ $daemon == qsd ]] && ! $qsd_writer; then
                wrow "$rate" "$label" "-" "-" "-" "-" "-" \
                    "not measured: no qsd, qemu-io or stdbuf"
                continue
            fi
            if [[ $daemon == qemu ]] && ! $have_qemu; then
                wrow "$rate" "$label" "-" "-" "-" "-" "-" \
                    "not measured: no $QEMU"
                continue
            fi
            run_writer "$daemon" "$rate" "$mode"
            note_error "$daemon" "$mode at $rate MiB/s" "$result"
            off=$(field "$result" offset)
            len=$(field "$result" len)
            conv=$(field "$result" converged)
            again="-"
            if [[ $off != - ]]; then
                again=$(((off - half) >> 20))
                if [[ $conv != yes ]]; then
                    ((again < 0)) && again=0
                    again=">=$again"
                fi
            fi
            wrow "$rate" "$label" "$(field "$result" writer_mibs)" \
                "$(secs_fmt "$(field "$result" ready_s)")" \
                "$([[ $off == - ]] && echo - || echo $((off >> 20)))" \
                "$again" \
                "$([[ $len == - ]] && echo - || echo $((len >> 20)))" \
                "$conv$marker"
        done
    done
    if ! $qmpd_auto; then
        echo "(this qmpd has no __com.qmpd_auto-write-blocking: no rows for it)"
    fi
fi

echo
echo "[1] What lands in the target: sn1's and sn2's clusters (base is shared)."
echo "    QEMU 7.2 needs two jobs: block-stream sn2 base-node=base (moves sn1's"
echo "    clusters that sn2 does not hide), then blockdev-mirror sync=top onto"
echo "    active (backed by base); the time is stream + mirror to READY. qmpd"
echo "    also does it in one job (__com.qmpd_shared-base)."
echo "[2] Host tools, no daemon, same file system, a file of the sync=full"
echo "    cases' amount of data. cp goes through the page cache (the time"
echo "    includes the sync); dd writes with O_DIRECT, one 1 MiB request at a"
echo "    time. The jobs read and write at a queue depth above 1, so they can"
echo "    beat these."
echo "[3] The writer is inside the daemon where it can be: qmpd's own qemu-io"
echo "    (__com.qmpd_qemu-io aio_write) and QEMU's HMP qemu-io (aio_write), each"
echo "    on a QMP socket of its own, on the source opened as a drive; requests"
echo "    in flight = sent - the drive's query-blockstats wr_operations. qsd has"
echo "    no qemu-io over QMP: there it is a qemu-io process on qsd's NBD export"
echo "    of the source (the same requests, plus an NBD hop). A writer more than"
echo "    100 ms behind its schedule drops the backlog; \"writer\" is what it"
echo "    achieved, which is the load the job really had."
echo "[4] The daemon's CPU time (user + system, all its threads, as"
echo "    getrusage counts it: /proc/PID/stat, 10 ms ticks) from blockdev-add"
echo "    of the target to the job's end, per GiB of data that must reach the"
echo "    target."
for e in ${errors[@]+"${errors[@]}"}; do
    echo "$e"
done
for n in ${notes[@]+"${notes[@]}"}; do
    echo "note: $n"
done
