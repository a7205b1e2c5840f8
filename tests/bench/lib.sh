# SPDX-License-Identifier: GPL-2.0-or-later
#
# What the benchmark scripts (run-*.sh) share, sourced by each: failing
# with the script's name, a scratch directory on disk removed at exit with
# the daemons the script started, the page-cache reset before timed runs,
# the qemu-img bench helpers (filling images, the stride standing in for
# random offsets), the parsing of client lines and the medians and rates
# the tables print.  Nothing here prints a table: each script owns its
# columns.
#
# Sourcing it names the script for die(); bench_init sets up $tmp (under
# $TMPDIR, else /var/tmp: /tmp may be a tmpfs, which refuses O_DIRECT),
# $pids (the daemons to end at exit), $notes (lines for after the tables),
# $can_drop (whether cold() may drop the page cache) and the traps.

bench_name=$(basename "$0" .sh)

# die MESSAGE...: fail the benchmark, naming the script.
die()
{
    echo "$bench_name: $*" >&2
    exit 1
}

# Only the daemons this script started, by pid; ${pids[@]+...} because
# set -u treats an empty array as unset in older bash.
bench_cleanup()
{
    local pid

    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}

# bench_init: the scratch directory, the traps and the shared state.
bench_init()
{
    pids=() notes=()
    can_drop=false
    if [[ -w /proc/sys/vm/drop_caches ]]; then
        can_drop=true
    fi
    tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-${bench_name#run-}.XXXXXX")
    trap bench_cleanup EXIT
    # Turn signals into a normal exit so the EXIT trap does the cleanup.
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# cold: write back dirty pages, then drop the page cache when allowed, so
# that every timed run starts from the disk with no writeback running.
cold()
{
    sync
    if $can_drop; then
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# show_log FILE: the tail of a daemon's log, for when it dies or
# misbehaves.
show_log()
{
    if [[ -s $1 ]]; then
        echo "--- $1" >&2
        tail -n 20 "$1" >&2
    fi
}

# wait_socket DAEMON SOCK LOG [PROBE...]: wait up to 10 s for the daemon
# started last ($pid) to create SOCK (and, given a PROBE command, for it to
# succeed); fail with its log if it exits or never does.
wait_socket()
{
    local daemon=$1 sock=$2 log=$3 i

    shift 3
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log "$log"
            die "$daemon exited during startup"
        fi
        if [[ -S $sock ]] && { (($# == 0)) || "$@" 2>/dev/null; }; then
            return 0
        fi
        sleep 0.05
    done
    show_log "$log"
    if (($#)); then
        die "$daemon did not answer on $sock within 10 seconds"
    fi
    die "$daemon did not create $sock within 10 seconds"
}

# stop DAEMON LOG [NOTE]: end the daemon started last ($pid) with SIGTERM
# (a clean exit, which stores persistent bitmaps); one that died on its own
# is reported with its log and "DAEMON NOTE" in $notes.
stop()
{
    local daemon=$1 log=$2 note=${3:-exited on its own (log above)}
    local p=$pid q rest=() state

    for q in "${pids[@]}"; do
        [[ $q == "$p" ]] || rest+=("$q")
    done
    pids=(${rest[@]+"${rest[@]}"})
    # A child that exited is a zombie until waited for, and kill succeeds
    # on a zombie, so look at its state instead.
    state=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null || echo Z)
    if [[ $state == Z ]]; then
        wait "$p" 2>/dev/null || true
        show_log "$log"
        notes+=("$daemon $note")
        return 0
    fi
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# fill IMAGE FORMAT OFFSET SIZE STEP COUNT PATTERN: COUNT writes of SIZE
# bytes, STEP apart from OFFSET (all in bytes), with qemu-img bench.
fill()
{
    "$QEMU_IMG" bench -f "$2" -t none -i native -w -d 32 -o "$3" -s "$4" \
        -S "$5" -c "$6" --pattern="$7" "$1" >/dev/null ||
        die "could not write data into $1"
}

gcd()
{
    local a=$1 b=$2 t

    while ((b)); do
        t=$((a % b)) a=$b b=$t
    done
    echo "$a"
}

# stride SPAN SIZE [CAP]: the qemu-img bench -S step standing in for random
# offsets.  qemu-img bench only goes forward by a step, wrapping at SPAN; a
# step of k requests with k near the golden ratio of the SPAN / SIZE slots
# and coprime with it visits every slot once, in scattered order, so
# neighbouring requests are ~0.38 spans apart and never sequential.  CAP
# (qemu-img's limit, below 2 GiB) bounds the step.
stride()
{
    local m=$(($1 / $2)) k

    k=$((m * 618034 / 1000000))
    if [[ -n ${3:-} ]] && ((k * $2 > $3)); then
        k=$(($3 / $2))
    fi
    while ((k > 1 && $(gcd "$k" "$m") != 1)); do
        k=$((k - 1))
    done
    echo $((k * $2))
}

# field LINE KEY [MISSING]: the value of KEY=value in a client's line,
# MISSING (default "-") when the line has none.
field()
{
    local kv

    for kv in $1; do
        if [[ $kv == "$2="* ]]; then
            echo "${kv#*=}"
            return 0
        fi
    done
    echo "${3--}"
}

# median VALUE...: the median of the numbers, "-" if there are none.
median()
{
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '
        { t[NR] = $1 }
        END {
            if (!NR) { print "-"; exit }
            printf "%.6g\n", NR % 2 ? t[(NR + 1) / 2] \
                : (t[NR / 2] + t[NR / 2 + 1]) / 2
        }'
}

# median_all VALUE...: the same, but "-" if any run gave "-" (failed).
median_all()
{
    printf '%s\n' "$@" | sort -g | awk '
        $1 == "-" { bad = 1 }
        { t[NR] = $1 }
        END {
            if (bad || NR == 0) { print "-"; exit }
            print NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        }'
}

# cpu_s PID: the CPU time (user + system) process PID has used so far, in
# seconds, its ended threads' too (as getrusage(RUSAGE_SELF) counts it).
cpu_s()
{
    awk -v hz="$(getconf CLK_TCK)" '{
        sub(/^.*\) /, "")
        printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null ||
        echo "-"
}

# cpu_per_gib CPU0 CPU1 BYTES: CPU seconds per GiB of BYTES between two
# cpu_s readings, "-" if either failed.
cpu_per_gib()
{
    if [[ $1 == - || $2 == - || $3 -le 0 ]]; then
        echo "-"
    else
        awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
            printf "%.2f\n", (b - a) / (n / 1073741824) }'
    fi
}

# mibs BYTES SECONDS: MiB/s, "-" for a failed run.
mibs()
{
    if [[ $2 == - ]]; then
        echo "-"
    else
        awk -v b="$1" -v s="$2" 'BEGIN {
            if (s <= 0) s = 0.0005
            printf "%.1f\n", b / s / 1048576 }'
    fi
}

# secs_fmt SECONDS: two decimals, "-" for a failed run.
secs_fmt()
{
    if [[ $1 == - ]]; then
        echo "-"
    else
        printf '%.2f\n' "$1"
    fi
}

# note_error DAEMON CASE RESULT: keep the error a client's RESULT line
# reports for the footnotes and set $marker to the mark for its cell (""
# if the run had none).
note_error()
{
    local err=${3#*error=}

    marker=""
    if [[ $3 == *error=* ]]; then
        errors+=("[e${#errors[@]}] $1, $2: $err")
        marker="[e$((${#errors[@]} - 1))]"
    fi
}
