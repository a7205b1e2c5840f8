#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what the build and tests need (Debian 12, as root), build, and
# run every test: the -Werror build with make check (unit, functional
# and, with QEMU installed, compat tests), the same suite under
# ASan+UBSan, and a short libFuzzer run per fuzz target.  The last line
# is "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0

step() { printf '\n=== %s\n' "$*"; }
tally() {   # $1: automake test-suite.log
    local p f
    p=$(sed -n 's/^# PASS: *//p' "$1" | head -1)
    f=$(( $(sed -n 's/^# FAIL: *//p' "$1" | head -1) + \
          $(sed -n 's/^# ERROR: *//p' "$1" | head -1) ))
    passed=$((passed + ${p:-0}))
    failed=$((failed + f))
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing build and test dependencies"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        build-essential autoconf automake pkg-config ca-certificates \
        libglib2.0-dev libglib2.0-dev-bin libjansson-dev libaio-dev \
        libcmocka-dev python3 clang libclang-rt-14-dev \
        qemu-utils qemu-system-x86 qemu-system-common strace >/dev/null
fi

step "autoreconf"
autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

run_suite() {   # $1: build dir, rest: configure flags
    local dir=$1; shift
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || return 1
    if ! "$top/configure" -q --enable-werror "$@" >configure.out 2>&1; then
        cat configure.out; failed=$((failed + 1)); cd "$top"; return 1
    fi
    if ! make -j"$jobs" >make.out 2>&1; then
        tail -40 make.out; failed=$((failed + 1)); cd "$top"; return 1
    fi
    make -j"$jobs" check >check.out 2>&1
    grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' check.out
    for log in $(grep -lE '^:test-result: (FAIL|ERROR)' tests/*/*.trs 2>/dev/null); do
        echo "--- ${log%.trs}.log"; tail -60 "${log%.trs}.log"
    done
    tally test-suite.log
    cd "$top"
}

step "build with -Werror and run the test suite"
run_suite "$top/build-ci"

step "the same suite under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite "$top/build-asan" --enable-sanitizers

if command -v clang >/dev/null; then
    step "fuzzing (libFuzzer, 60 s per target)"
    if run_fuzz=$(CC=clang "$top/tests/fuzz/run-fuzz.sh" "$top/build-fuzz" 60); then
        echo "$run_fuzz"
        passed=$((passed + $(echo "$run_fuzz" | grep -c '^fuzz ok')))
    else
        echo "$run_fuzz"
        failed=$((failed + 1))
    fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
