#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Block I/O benchmark: sequential 1 MiB and random 4 KiB / 64 KiB reads and
# writes at queue depth 1 and 32, on a qcow2 and on a raw image, through
# qmpd's block layer (bench-block) and through QEMU's (qemu-img bench) on
# the same files, printed as one table. It is a benchmark, not a test: it
# asserts no targets, and fails only if something cannot be built or run.
#
# Environment:
#   BENCH_BLOCK            bench-block binary (default: built next to this
#                          script by "make bench-block")
#   QEMU_IMG               qemu-img binary (default: qemu-img)
#   BENCH_BLOCK_IMG_MB     image size in MiB (default 1024)
#   BENCH_BLOCK_SEQ_COUNT  1 MiB requests per sequential case (default:
#                          half a pass over the image)
#   BENCH_BLOCK_4K_COUNT   4 KiB requests per QD32 case (default 16000)
#   BENCH_BLOCK_64K_COUNT  64 KiB requests per QD32 case (default 6000)
#                          QD1 random cases run a quarter of these counts.
#   BENCH_BLOCK_REPEAT     runs per case and tool; the median is shown
#                          (default 3)
#   BENCH_BLOCK_QMPD_PATTERN  "random" (default) or "stride": what qmpd's
#                          random cases use (see the note under the table)
#   TMPDIR                 where the images go (must allow O_DIRECT, so not
#                          tmpfs; default /var/tmp)

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/lib.sh"
BENCH_BLOCK=${BENCH_BLOCK:-$script_dir/bench-block}
QEMU_IMG=${QEMU_IMG:-qemu-img}
IMG_MB=${BENCH_BLOCK_IMG_MB:-1024}
SEQ_COUNT=${BENCH_BLOCK_SEQ_COUNT:-$((IMG_MB / 2))}
COUNT_4K=${BENCH_BLOCK_4K_COUNT:-16000}
COUNT_64K=${BENCH_BLOCK_64K_COUNT:-6000}
REPEAT=${BENCH_BLOCK_REPEAT:-3}
QMPD_PATTERN=${BENCH_BLOCK_QMPD_PATTERN:-random}

for v in IMG_MB SEQ_COUNT COUNT_4K COUNT_64K; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 4 ]] ||
        die "$v must be a whole number >= 4 (got '${!v}')"
done
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] ||
    die "BENCH_BLOCK_REPEAT must be a whole number >= 1"
[[ $QMPD_PATTERN == random || $QMPD_PATTERN == stride ]] ||
    die "BENCH_BLOCK_QMPD_PATTERN must be random or stride"
[[ -x $BENCH_BLOCK ]] ||
    die "bench-block not found at $BENCH_BLOCK (run make bench-block)"
command -v "$QEMU_IMG" >/dev/null 2>&1 ||
    die "$QEMU_IMG not found: it creates the images and is the baseline"

bench_init

img_bytes=$((IMG_MB << 20))
pattern=165    # 0xa5: never all zeroes, so no zero detection anywhere

# Wall time of the last run_* call, in seconds.
secs=""

# run_qmpd FMT FILE RW SIZE DEPTH COUNT MODE
run_qmpd()
{
    local fmt=$1 file=$2 rw=$3 size=$4 depth=$5 count=$6 mode=$7
    local args=(-f "$fmt" -t none -i native -s "$size" -d "$depth"
                -c "$count" --pattern "$pattern") line

    [[ $rw == write ]] && args+=(-w)
    if [[ $mode == random && $QMPD_PATTERN == random ]]; then
        args+=(-r --seed 1)
    elif [[ $mode == random ]]; then
        args+=(-S "$(stride "$img_bytes" "$size" 2147483647)")
    fi
    if ! "$BENCH_BLOCK" "${args[@]}" "$file" >"$tmp/out" 2>&1; then
        cat "$tmp/out" >&2
        die "bench-block failed: ${args[*]} $file"
    fi
    line=$(grep '^ops=' "$tmp/out") || die "bench-block printed no summary"
    [[ $(field "$line" ops) == "$count" ]] ||
        die "bench-block completed fewer requests than asked: $line"
    secs=$(field "$line" seconds "")
    [[ -n $secs ]] || die "no seconds in bench-block output: $line"
}

# run_qemu_img FMT FILE RW SIZE DEPTH COUNT MODE
run_qemu_img()
{
    local fmt=$1 file=$2 rw=$3 size=$4 depth=$5 count=$6 mode=$7
    local args=(bench -f "$fmt" -t none -i native -s "$size" -d "$depth"
                -c "$count" --pattern="$pattern")

    [[ $rw == write ]] && args+=(-w)
    [[ $mode == random ]] &&
        args+=(-S "$(stride "$img_bytes" "$size" 2147483647)")
    if ! "$QEMU_IMG" "${args[@]}" "$file" >"$tmp/out" 2>&1; then
        cat "$tmp/out" >&2
        die "qemu-img failed: ${args[*]} $file"
    fi
    secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' \
        "$tmp/out")
    [[ -n $secs ]] || die "no run time in qemu-img output: $(cat "$tmp/out")"
}

# new_image FMT PATH: an empty image of IMG_MB MiB.
new_image()
{
    rm -f "$2"
    "$QEMU_IMG" create -q -f "$1" "$2" "${IMG_MB}M" >/dev/null ||
        die "could not create $2"
}

# filled_image FMT PATH: an image whose every byte is allocated data, so
# that reads hit the disk and overwrites allocate nothing.
filled_image()
{
    new_image "$1" "$2"
    fill "$2" "$1" 0 $((1 << 20)) $((1 << 20)) "$IMG_MB" 90
}

# rate COUNT SIZE SECONDS...: "IOPS MiB/s" for the median of the times.
rate()
{
    local count=$1 size=$2

    shift 2
    printf '%s\n' "$@" | sort -g | awk -v c="$count" -v s="$size" '
        { t[NR] = $1 }
        END {
            m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            if (m <= 0) m = 0.0005    # below qemu-img'\''s resolution
            printf "%.0f %.1f\n", c / m, c * s / m / 1048576
        }'
}

row()
{
    printf '%-34s %10s %10s %13s %14s\n' "$@"
}

echo "bench-block: $BENCH_BLOCK"
echo "qemu-img:    $("$QEMU_IMG" --version | head -n 1)"
echo "host:        $(nproc) CPUs, $(uname -sr), images in $tmp" \
    "($(df -PT "$tmp" | awk 'NR == 2 { print $2 }'))"
echo
echo "Method: ${IMG_MB} MiB images, cache=none (O_DIRECT), aio=native, no"
echo "flushes, bench-block and qemu-img bench on the same file. \"over\" rows"
echo "overwrite a fully written image (reads hit data, writes allocate"
echo "nothing); \"alloc\" rows write a new, empty qcow2 image (a fresh one for"
echo "every run). Requests: sequential 1 MiB x $SEQ_COUNT; random 4 KiB x"
echo "$COUNT_4K and 64 KiB x $COUNT_64K at QD32, a quarter of that at QD1."
echo "Time: first submission to last completion. Each case runs $REPEAT"
echo "time(s) per tool, alternating which tool goes first; the table shows"
echo "the median. IOPS = requests / time, MiB/s = bytes / time / 2^20."

for fmt in qcow2 raw; do
    filled_image "$fmt" "$tmp/filled.$fmt"
done

cases=()
for rw in read write; do
    for depth in 1 32; do
        cases+=("seq 1M $rw $depth" "rand 4K $rw $depth" "rand 64K $rw $depth")
    done
done

echo
row case "qmpd IOPS" "qmpd MiB/s" "qemu-img IOPS" "qemu-img MiB/s"
row "----" "---------" "----------" "-------------" "--------------"
for fmt in qcow2 raw; do
    for state in over alloc; do
        if [[ $state == alloc && $fmt == raw ]]; then
            continue
        fi
        for c in "${cases[@]}"; do
            read -r mode size_name rw depth <<<"$c"
            if [[ $state == alloc && $rw == read ]]; then
                continue
            fi
            case $size_name in
            1M) size=$((1 << 20)) count=$SEQ_COUNT ;;
            4K) size=4096 count=$COUNT_4K ;;
            64K) size=65536 count=$COUNT_64K ;;
            esac
            if [[ $mode == rand && $depth == 1 ]]; then
                count=$((count / 4))
            fi
            label="$fmt $state $mode $size_name $rw QD$depth"
            [[ $mode == rand ]] && label+=" [1]" mode=random

            file=$tmp/filled.$fmt
            [[ $state == alloc ]] && file=$tmp/fresh.$fmt
            qmpd_secs=() qemu_secs=()
            for ((i = 0; i < REPEAT; i++)); do
                tools=(qmpd qemu_img)
                ((i % 2)) && tools=(qemu_img qmpd)
                for tool in "${tools[@]}"; do
                    [[ $state == alloc ]] && new_image "$fmt" "$file"
                    "run_$tool" "$fmt" "$file" "$rw" "$size" "$depth" \
                        "$count" "$mode"
                    if [[ $tool == qmpd ]]; then
                        qmpd_secs+=("$secs")
                    else
                        qemu_secs+=("$secs")
                    fi
                done
            done
            read -r q_iops q_mibs < <(rate "$count" "$size" "${qmpd_secs[@]}")
            read -r e_iops e_mibs < <(rate "$count" "$size" "${qemu_secs[@]}")
            row "$label" "$q_iops" "$q_mibs" "$e_iops" "$e_mibs"
        done
    done
done

echo
if [[ $QMPD_PATTERN == random ]]; then
    echo "[1] Random offsets: bench-block draws them aligned to the request"
    echo "    size from a fixed seed (-r --seed 1). qemu-img bench cannot: its"
    echo "    closest equivalent, used here, is a large step that wraps at the"
    echo "    end of the image (-S = k x request size, k ~ 0.618 x the number"
    echo "    of slots and coprime with it), which visits distinct, scattered"
    echo "    slots. Set BENCH_BLOCK_QMPD_PATTERN=stride to give bench-block"
    echo "    the very same step."
else
    echo "[1] Random offsets: both tools use the same large step that wraps at"
    echo "    the end of the image (-S = k x request size, k ~ 0.618 x the"
    echo "    number of slots and coprime with it), which visits distinct,"
    echo "    scattered slots; qemu-img bench has no true random mode."
fi
