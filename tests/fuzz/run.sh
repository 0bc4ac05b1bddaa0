#!/bin/sh
# Run every fuzz target for SECONDS each; total the executions; fail on any crash.
# usage: run.sh BUILD_DIR SECONDS
set -u
build="$1"; secs="$2"
src=$(cd "$(dirname "$0")" && pwd)
total=0; failed=0
for t in amount timestamp post_body json_check snapshot journal journal_entities checkpoint; do
    case $t in amount) dict=amount.dict ;; timestamp) dict=timestamp.dict ;; checkpoint|journal_entities) dict= ;; *) dict=json.dict ;; esac
    corpus="$build/fuzz-corpus/$t"
    mkdir -p "$corpus" "$build/fuzz-artifacts"
    cp -n "$src/corpus/$t/"* "$corpus/" 2>/dev/null || true
    log="$build/fuzz-$t.log"
    dictarg=""
    [ -n "$dict" ] && dictarg="-dict=$src/$dict"
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 $dictarg \
        -artifact_prefix="$build/fuzz-artifacts/$t-" -close_fd_mask=3 "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    runs=${runs:-0}
    total=$((total + runs))
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        echo "fuzz_$t: FAILED after $runs executions (exit $rc); see $log and $build/fuzz-artifacts/"
        grep -E 'ERROR|SUMMARY|abort' "$log" | head -5
    else
        echo "fuzz_$t: $runs executions, no crash"
    fi
done
echo "fuzzing: $total executions in total, $failed target(s) crashed"
[ $failed -eq 0 ]
