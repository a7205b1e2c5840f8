# SPDX-License-Identifier: GPL-2.0-or-later
# The tally and exit logic of tests/run-all.sh, sourced by it and by
# tests/ci-selftest.sh, which proves with broken copies that this logic
# fails a run.  Totals count test functions: each Python test prints
# "ok - NAME", "FAIL - NAME" or "skip - NAME: WHY" and a last line
# "N passed, N failed, N skipped"; each cmocka binary prints
# "[  PASSED  ] N test(s)." and, when there are any, the same for
# FAILED and SKIPPED.  A stage fails the run when its command exits
# non-zero (a build failure inside make check included), when it ran
# no test, when a test file left no summary or exited with a failure
# its summary does not show, or when any test log holds a sanitizer
# report.

ci_passed=0
ci_failed=0
ci_skipped=0
ci_functions=0      # test functions tallied (a stage's must grow)

# Print a reason for failing the run, and count it as a failure.
ci_fail() {
    echo "CI FAILURE: $*"
    ci_failed=$((ci_failed + 1))
}

# The first line of a sanitizer report (ASan, LeakSanitizer, UBSan):
# the same patterns as the functional harness's SANITIZER_REPORT.
CI_SANITIZER_RE='ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error: '

# ci_tally_log LOG TRS NAME: add the test functions LOG (of test NAME)
# reports to the totals; TRS is automake's result file for it.  Prints
# what it counts.
ci_tally_log() {
    local log=$1 trs=$2 name=$3 result counts p f s
    result=$(sed -n 's/^:test-result: *//p' "$trs" | head -1)
    # "P F S" from the Python summary (the last one), or the sum of
    # cmocka's summaries; empty when there is none
    counts=$(awk '
        /^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ {
            py = $1 " " $3 " " $5
        }
        /^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ test\(s\)/ {
            n = $0
            sub(/^\[[^]]*\] /, "", n)
            n += 0
            if ($0 ~ /PASSED/) { cp += n } else if ($0 ~ /FAILED/) { cf += n }
            else { cs += n }
            cm = 1
        }
        END {
            if (py != "") { print py } else if (cm) { print cp+0, cf+0, cs+0 }
        }' "$log")
    if [ -z "$counts" ]; then
        ci_fail "$name: no test summary (exit: $result)"
        tail -30 "$log"
        return
    fi
    read -r p f s <<<"$counts"
    ci_functions=$((ci_functions + p + f + s))
    ci_passed=$((ci_passed + p))
    ci_failed=$((ci_failed + f))
    ci_skipped=$((ci_skipped + s))
    echo "$result: $name: $p passed, $f failed, $s skipped"
    case $result in
    PASS | SKIP | XFAIL)
        ;;
    *)
        if [ "$f" = 0 ]; then
            ci_fail "$name: $result though no test function failed"
        fi
        ;;
    esac
    grep -E '^(FAIL|skip) - ' "$log" | sed 's/^/    /'
    if [ "$result" != PASS ] && [ "$result" != SKIP ]; then
        echo "--- $name.log"
        tail -60 "$log"
    fi
}

# ci_check_stage NAME DIR [MAKE ARGS...]: in build directory DIR run
# "make check" (with the arguments), then tally what it ran.  Returns
# non-zero when the stage fails the run.
ci_check_stage() {
    local name=$1 dir=$2 rc trs t before=$ci_failed ran=$ci_functions
    shift 2
    echo "--- stage: $name"
    (
        cd "$dir" || exit 1
        # results of an earlier run must not count as this one's
        rm -f test-suite.log tests/*/*.log tests/*/*.trs
        make -j"${CI_JOBS:-2}" check "$@" >check.out 2>&1
    )
    rc=$?
    for trs in "$dir"/tests/*/*.trs; do
        [ -e "$trs" ] || continue
        t=${trs%.trs}
        ci_tally_log "$t.log" "$trs" "${t#"$dir"/}"
    done
    if [ "$rc" != 0 ]; then
        ci_fail "$name: make check exited $rc"
        grep -E 'error|Error|\*\*\*' "$dir/check.out" | tail -20
    fi
    if grep -lE "$CI_SANITIZER_RE" "$dir"/tests/*/*.log 2>/dev/null; then
        ci_fail "$name: a sanitizer report in the test logs above"
    fi
    if [ "$ci_functions" = "$ran" ]; then
        ci_fail "$name: no test ran"
    fi
    [ "$ci_failed" = "$before" ]
}

# The needs (see tests/functional/qmpd.py) this machine meets: a test
# that skips for want of one of them fails the run.
ci_must_run() {
    local have=""
    if command -v qemu-system-x86_64 >/dev/null; then
        have="$have qemu"
    fi
    if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
        have="$have qemu-utils"
    fi
    if [ "$(id -u)" = 0 ]; then
        have="$have mount"
    fi
    for p in mkfs.xfs mkfs.btrfs strace virsh; do
        if command -v "$p" >/dev/null; then
            have="$have $p"
        fi
    done
    echo "${have# }"
}

ci_summary() {
    echo "$ci_passed passed, $ci_failed failed, $ci_skipped skipped"
}
