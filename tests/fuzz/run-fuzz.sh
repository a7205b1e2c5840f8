#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the libFuzzer targets with clang in build dir $1 and run each for
# $2 seconds (default 60) over a copy of its seed corpus.  Prints
# "fuzz ok <target>" per clean target; exits 1 on a crash.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$src/build-fuzz}
secs=${2:-60}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
CC=${CC:-clang} "$src/configure" -q --enable-fuzzing --enable-werror >configure.out 2>&1 ||
    { cat configure.out; exit 1; }
make -j"$(nproc)" fuzz >make.out 2>&1 || { tail -30 make.out; exit 1; }
status=0
for t in qmp hmp qcow2 mig-stream nbd-server; do
    case $t in
    qcow2) max_len=262144 ;;    # whole images, up to 64 KiB clusters
    mig-stream) max_len=65536 ;;    # a few records of whole pages
    nbd-server) max_len=16384 ;;    # options, requests, small writes
    *) max_len=4096 ;;
    esac
    corpus=$(mktemp -d)
    cp "$src/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
    if ASAN_OPTIONS=detect_leaks=1 "./tests/fuzz/fuzz-$t" \
        -max_total_time="$secs" -max_len="$max_len" -timeout=10 \
        -print_final_stats=1 "$corpus" >"fuzz-$t.log" 2>&1; then
        echo "fuzz ok $t ($(grep -ao 'stat::number_of_executed_units: *[0-9]*' \
            "fuzz-$t.log" | grep -o '[0-9]*$') runs)"
    else
        echo "fuzz FAILED $t"; tail -40 "fuzz-$t.log"; status=1
    fi
    rm -rf "$corpus"
done
exit $status
