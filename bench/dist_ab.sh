#!/usr/bin/env bash
# What the distribution (issue 15) costs the add, in one run: bench_dist against BUILD_DIR's
# library and against a baseline, run alternately so that both see the same machine noise; then
# callgrind instruction counts per txstats_add.
# Baseline BASE: "nodist" (default) is the same source built with TXSTATS_BENCH_NO_DIST_ADD=ON
# (the add skips the distribution: nothing else differs); a git revision (e.g. 399ede4, the
# library before the distribution) builds that revision instead.
# usage: bench/dist_ab.sh BUILD_DIR [BASE] [ROUNDS]
set -euo pipefail
build=$(cd "$1" && pwd)
base=${2:-nodist}
rounds=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/txstats-dist-ab-XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt") # same flags both sides
inc="-I$here/libtxstats/include"
if [ "$base" = nodist ]; then
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE="$type" -DBUILD_TESTING=OFF \
          -DTXSTATS_BUILD_SERVER=OFF -DTXSTATS_BUILD_EXAMPLES=OFF -DTXSTATS_BENCH_NO_DIST_ADD=ON >/dev/null
    nodist=""
else
    git -C "$here" archive "$base" | tar -x -C "$work" --one-top-level=src
    cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE="$type" -DBUILD_TESTING=OFF \
          -DTXSTATS_BUILD_SERVER=OFF -DTXSTATS_BUILD_EXAMPLES=OFF >/dev/null
    nodist="-DBENCH_NO_DIST" # an older library has no txstats_quantiles()
fi
cmake --build "$work/build" --target txstats -j 2 >/dev/null
cc -O2 $nodist "$inc" "$here/bench/bench_dist.c" -L"$work/build/libtxstats" -ltxstats \
   -lpthread -o "$work/before"
cc -O2 "$inc" "$here/bench/bench_dist.c" -L"$build/libtxstats" -ltxstats -lpthread -o "$work/after"
echo "baseline: $base ($type build)"
before() { LD_LIBRARY_PATH="$work/build/libtxstats" "$work/before" "$@"; }
after() { LD_LIBRARY_PATH="$build/libtxstats" "$work/after" "$@"; }
if [ "$rounds" -gt 0 ]; then
    echo "== memory (counting allocator)"
    [ "$base" = nodist ] && echo "(the baseline allocates the counts too: only its per-transaction figures differ)"
    echo "-- before"; before mem; echo "-- after"; after mem
fi
# The add, both libraries in one process (bench/dist_ab_add.c), alternating run by run: per-round
# ratios, then their median.
cc -O2 "$inc" "$here/bench/dist_ab_add.c" -ldl -lpthread -o "$work/ab_add"
lib_so() { ls "$1"/libtxstats.so.*.*.* | head -1; }
if [ "$rounds" -gt 0 ]; then
    echo "== add: A = baseline, B = $build (bench/dist_ab_add.c)"
    "$work/ab_add" "$(lib_so "$work/build/libtxstats")" "$(lib_so "$build/libtxstats")" "$rounds"
fi
[ "$rounds" -gt 0 ] && { echo "== quantile queries"; after quantile; }
# Instructions per txstats_add: create with a fixed clock, 2 shards; 200k adds of 1000000+i at
# T0 - i % 59999; 20k stats; one get. Deterministic but for the shard an add starts at (the
# current CPU's): pinned to one CPU with taskset when there is one. Run with every amount
# retained for listing (the default max_retained), and with none (max_retained 0: the
# distribution keeps each amount's bucket in its cell's list).
cat >"$work/cg.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <txstats/txstats.h>
static int64_t T0 = 1700000000000;
static int64_t clk(void *c) { (void)c; return T0; }
int main(int argc, char **argv)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.clock_ms = clk;
    cfg.shards = 2;
    if (argc > 1)
        cfg.max_retained = (size_t)atoll(argv[1]);
    txstats_t *t;
    txstats_create(&t, &cfg);
    for (long i = 0; i < 200000; i++)
        txstats_add(t, 1000000 + i, T0 - i % 59999);
    txstats_summary_t s;
    for (long i = 0; i < 20000; i++)
        txstats_stats(t, &s);
    size_t n;
    txstats_tx_t b[1];
    txstats_get(t, b, 1, &n);
    txstats_destroy(t);
    return 0;
}
C
pin=""; command -v taskset >/dev/null && pin="taskset -c 0"
if command -v valgrind >/dev/null; then
    for side in before after; do
        lib="$work/build/libtxstats"; [ $side = after ] && lib="$build/libtxstats"
        cc -O2 "$inc" "$work/cg.c" -L"$lib" -ltxstats -o "$work/cg_$side"
        for mr in "" 0; do
            LD_LIBRARY_PATH="$lib" $pin valgrind --tool=callgrind \
                --callgrind-out-file="$work/cg_$side$mr.out" "$work/cg_$side" $mr >/dev/null 2>&1
            ir=$(callgrind_annotate --inclusive=yes "$work/cg_$side$mr.out" 2>/dev/null |
                 grep -E ':txstats_add( |$)' | awk '{print $1}' | tr -d , | sort -n | tail -1) || true
            what="amounts retained"; [ -n "$mr" ] && what="max_retained $mr"
            echo "callgrind $side: $((ir / 200000)) instructions per txstats_add ($what)"
        done
    done
fi
