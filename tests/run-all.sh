#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what the build and tests need (Debian 12, as root), build, and
# run every test: the -Werror build with make check (unit, functional
# and, with QEMU installed, compat tests), the same suite under
# ASan+UBSan, the CI self-test (tests/ci-selftest.sh) and a short
# libFuzzer run per fuzz target.  The last line is "N passed, N failed,
# N skipped", counting test functions; the exit status is 0 only when
# every stage built, ran tests and passed them, no sanitizer reported,
# and no test skipped that must run here (QMPD_MUST_RUN: see
# tests/ci-lib.sh and tests/functional/qmpd.py).
set -u
cd "$(dirname "$0")/.."
top=$PWD
. "$top/tests/ci-lib.sh"
CI_JOBS=$(nproc 2>/dev/null || echo 2)

step() { printf '\n=== %s\n' "$*"; }
finish() {
    echo
    ci_summary
    [ "$ci_failed" = 0 ]
    exit
}

installed=no
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing build and test dependencies"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        build-essential autoconf automake pkg-config ca-certificates \
        libglib2.0-dev libglib2.0-dev-bin libjansson-dev libaio-dev nettle-dev \
        libcmocka-dev python3 clang libclang-rt-14-dev \
        qemu-utils qemu-system-x86 qemu-system-common strace \
        xfsprogs btrfs-progs \
        libvirt-clients libvirt-daemon-driver-qemu libvirt-daemon >/dev/null; then
        installed=yes
    else
        ci_fail "apt-get could not install the dependencies"
    fi
fi

# What this machine has, so the tests that need it must not skip
export QMPD_MUST_RUN
QMPD_MUST_RUN=$(ci_must_run)
echo "tests that must run here: needs '$QMPD_MUST_RUN' (QMPD_MUST_RUN)"

step "autoreconf"
if ! out=$(autoreconf -fi 2>&1); then
    echo "$out"
    ci_fail "autoreconf"
    finish
fi

# build DIR FLAGS...: configure (by a relative path, so that the self-
# test can copy the tree with its build) and make; false on failure.
build() {
    local dir=$1
    shift
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    (
        cd "$dir" || exit 1
        if ! ../configure -q --enable-werror "$@" >configure.out 2>&1; then
            cat configure.out
            exit 1
        fi
        if ! make -j"$CI_JOBS" >make.out 2>&1; then
            tail -40 make.out
            exit 1
        fi
    )
}

step "build with -Werror and run the test suite"
if build "$top/build-ci"; then
    ci_check_stage "make check" "$top/build-ci"
else
    ci_fail "the -Werror build"
fi

step "the same suite under ASan+UBSan"
# from here on: a report aborts the process (LeakSanitizer at its exit)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if build "$top/build-asan" --enable-sanitizers; then
    ci_check_stage "make check (ASan+UBSan)" "$top/build-asan"
else
    ci_fail "the ASan+UBSan build"
fi

step "CI self-test: each fault must fail a stage"
if out=$(bash "$top/tests/ci-selftest.sh" "$top/build-ci" "$top/build-asan"); then
    echo "$out"
else
    echo "$out"
    ci_fail "the CI self-test"
fi
ci_passed=$((ci_passed + $(grep -c '^ok - ' <<<"$out")))

if command -v clang >/dev/null; then
    step "fuzzing (libFuzzer, 60 s per target)"
    out=$(CC=clang "$top/tests/fuzz/run-fuzz.sh" "$top/build-fuzz" 60)
    rc=$?
    echo "$out"
    n=$(grep -c '^fuzz ok' <<<"$out")
    ci_passed=$((ci_passed + n))
    if [ "$rc" != 0 ]; then
        ci_fail "fuzzing"
    elif [ "$n" = 0 ]; then
        ci_fail "fuzzing: no target ran"
    fi
elif [ "$installed" = yes ]; then
    ci_fail "clang is missing though it was installed: no fuzzing"
else
    echo "skip - fuzzing: clang not installed"
    ci_skipped=$((ci_skipped + 1))
fi

finish
