#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# CI self-test: proves that the logic tests/run-all.sh fails a run with
# (ci_check_stage in tests/ci-lib.sh) fails it for each of three faults:
#   - a unit test that no longer compiles (make check exits 2 and writes
#     no test log),
#   - a QMP command that leaks memory (LeakSanitizer, ASan build),
#   - a test that skips though it must run here.
# Each fault is made in a copy of the tree and of a build directory
# run-all.sh has built (the copies keep their times, so make rebuilds
# only what the fault touches), and the copy's stage goes through the
# same ci_check_stage as the real run; the same stage on the copy
# before the fault must pass.  Prints "ok - FAULT" or "FAIL - FAULT:
# why" per fault; exits 1 if a fault went unnoticed.
#
# Usage: tests/ci-selftest.sh BUILD-DIR ASAN-BUILD-DIR
# (build directories inside the tree, configured as ../configure)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/ci-lib.sh"
build=$1
asan=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/qmpd-ci-selftest.XXXXXX")
[ -n "${CI_SELFTEST_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
status=0

# copy_tree NAME BUILD: copy the tree without its build directories and
# .git, and build directory BUILD, to $work/NAME; prints the copy of
# BUILD.
copy_tree() {
    local dst=$work/$1 d
    local excl=(--exclude=./.git)
    for d in "$top"/*/; do
        if [ -e "$d/config.status" ]; then
            excl+=("--exclude=./$(basename "$d")")
        fi
    done
    mkdir -p "$dst"
    tar -C "$top" "${excl[@]}" -cf - . | tar -C "$dst" -xf - &&
        cp -a "$2" "$dst/" || return 1
    echo "$dst/$(basename "$2")"
}

# stage LOG DIR MAKE-ARGS...: ci_check_stage on copy DIR (its make
# pointed at the copy: automake's absolute paths name the original),
# with fresh totals; its output in LOG, then "STAGE PASSED" if it
# passed, and the totals.
stage() {
    local log=$1 dir=$2
    shift 2
    (
        ci_passed=0 ci_failed=0 ci_skipped=0 ci_functions=0
        if ci_check_stage "self-test" "$dir" abs_top_builddir="$dir" \
            abs_top_srcdir="$(dirname "$dir")" "$@"; then
            echo "STAGE PASSED"
        fi
        ci_summary
    ) >"$log" 2>&1
}

# expect_pass FAULT DIR MAKE-ARGS...: the stage passes on copy DIR
# before the fault is made in it (else a stage that always fails would
# pass this self-test).
expect_pass() {
    local fault=$1 log
    shift
    log="$work/$(echo "$fault" | tr 'A-Z ' 'a-z-').control.log"
    stage "$log" "$@"
    if grep -q '^STAGE PASSED$' "$log"; then
        return 0
    fi
    echo "FAIL - $fault: the stage fails without the fault already"
    sed 's/^/    /' "$log" | tail -40
    status=1
    return 1
}

# expect_failure FAULT DIR PATTERN... -- MAKE-ARGS...: the stage on copy
# DIR must fail, count a failure, and print every PATTERN (extended
# regular expressions).
expect_failure() {
    local fault=$1 dir=$2 log pat missing=""
    local pats=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        pats+=("$1")
        shift
    done
    shift
    log="$work/$(echo "$fault" | tr 'A-Z ' 'a-z-').log"
    stage "$log" "$dir" "$@"
    for pat in "${pats[@]}"; do
        grep -qE -- "$pat" "$log" || missing="$missing '$pat'"
    done
    if grep -q '^STAGE PASSED$' "$log" ||
        ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' "$log"; then
        echo "FAIL - $fault: the stage did not fail"
    elif [ -n "$missing" ]; then
        echo "FAIL - $fault: the stage failed, but without$missing"
    else
        echo "ok - $fault: $(grep -m1 -E -- "${pats[0]}" "$log" |
            sed 's/^ *//')"
        return 0
    fi
    sed 's/^/    /' "$log" | tail -40
    status=1
}

# 1. A unit test that no longer compiles: make check stops at its build
#    (exit 2) before any test runs.
fault="a unit test that no longer compiles"
if ! dir=$(copy_tree unit "$build"); then
    echo "FAIL - $fault: cannot copy the tree"
    status=1
elif expect_pass "$fault" "$dir" TESTS=tests/unit/test-hbitmap; then
    printf '\nno longer compiles (tests/ci-selftest.sh)\n' \
        >>"$(dirname "$dir")/tests/unit/test-hbitmap.c"
    expect_failure "$fault" "$dir" 'make check exited 2' 'no test ran' --
fi

# 2. A QMP command that leaks (query-name, which the harness uses all
#    the time), under the ASan build: LeakSanitizer reports as qmpd
#    exits after quit or SIGTERM.
fault="a QMP command that leaks"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if ! dir=$(copy_tree leak "$asan"); then
    echo "FAIL - $fault: cannot copy the tree"
    status=1
elif expect_pass "$fault" "$dir" TESTS=tests/functional/test_qmp_protocol.py
then
    src="$(dirname "$dir")/system/machine.c"
    sed -i '/^static bool qmp_query_name(/,/^{/ s/^{$/{\n    (void)g_strdup("leaked by tests\/ci-selftest.sh");/' "$src"
    if grep -q 'leaked by tests/ci-selftest.sh' "$src"; then
        expect_failure "$fault" "$dir" '    FAIL - test_' \
            'sanitizer report' -- TESTS=tests/functional/test_qmp_protocol.py
    else
        echo "FAIL - $fault: no qmp_query_name in system/machine.c to" \
            "inject the leak into"
        status=1
    fi
fi

# 3. A test that skips though it must run here: the command-line compat
#    test is shown no QEMU, on a machine said to have it.
fault="a must-run test that skips"
if ! dir=$(copy_tree skip "$build"); then
    echo "FAIL - $fault: cannot copy the tree"
    status=1
elif expect_pass "$fault" "$dir" TESTS=tests/compat/test_cmdline_compat.py
then
    QMPD_MUST_RUN=qemu expect_failure "$fault" "$dir" \
        'FAIL - test_errors_match: skipped .*must run here' -- \
        TESTS=tests/compat/test_cmdline_compat.py \
        QEMU_BIN=/nonexistent/qemu-system-x86_64
fi

exit $status
