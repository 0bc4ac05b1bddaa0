#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 21's figures (bench/bench_spans.c): memory by span and traffic, counted and as RSS, each
# case in a process of its own, on BUILD_DIR's library and on OLD_REV's (default 2130c21: main
# before spans, a dense ring of per-ms cells); the add with 4 spans against 1 in one process,
# alternating; the old ring's add against the new index's, alternating processes round by round,
# and bench_dist's workload in one process (bench/dist_ab_add.c); instructions per add (callgrind).
# Big cases run one at a time (the largest holds ~1.7 GB).
# usage: bench/spans.sh BUILD_DIR [OLD_REV] [ROUNDS] [PARTS]
#   PARTS: any of mem, add, old-add, ir (default all four; ir needs valgrind)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '3,10p' "$0" >&2; exit 2; }
build=$(cd "$1" && pwd)
rev=${2:-2130c21}
rounds=${3:-21}
parts=${4:-mem,add,old-add,ir}
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
. "$here/bench/common.sh"
work=$(mktemp -d /tmp/txstats-spans-XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
new=$build/bench/bench_spans
git -C "$here" archive "$rev" | tar -x -C "$work" --one-top-level=src
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DTXSTATS_BUILD_SERVER=OFF -DTXSTATS_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$work/build" --target txstats -j 2 >/dev/null
old=$work/bench_spans_old
cc -O3 -DNDEBUG -std=gnu11 -Wall -Wextra -Werror -I"$work/src/libtxstats/include" \
   -I"$here/bench" "$here/bench/bench_spans.c" -L"$work/build/libtxstats" -ltxstats \
   -Wl,-rpath,"$work/build/libtxstats" -o "$old"
want() { [[ ",$parts," == *",$1,"* ]]; }
stamp() { echo "## $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"; }
echo "new: $(git -C "$here" rev-parse --short HEAD) ($build), old: $rev"

if want mem; then
    # spans rate seconds: idle, then 1.1 longest spans of traffic where it fits in ~2 GB; the 24 h
    # spans at 1,000 and 50,000 a second only for 1.1 h (a full day: 12.6 and 18.1 GB, computed).
    cases=("60s 0 0" "60s 1000 66" "60s 50000 66" "1h 0 0" "1h 1000 3960" "1h 50000 3960"
           "24h 0 0" "24h 100 95040" "24h 1000 3960" "24h 50000 3960")
    four=60s,5m,1h,24h
    cases+=("$four 0 0" "$four 100 95040" "$four 1000 3960" "$four 50000 3960")
    for c in "${cases[@]}"; do
        read -r sp rate secs <<<"$c"
        for mode in count rss; do
            stamp "new: bench_spans mem $sp $rate $secs $mode"; "$new" mem "$sp" "$rate" "$secs" $mode
            if [[ $sp == 60s || $sp == 1h || ($sp == 24h && $rate == 0) ]]; then
                stamp "old: bench_spans mem $sp $rate $secs $mode"
                "$old" mem "$sp" "$rate" "$secs" $mode || true
            fi
        done
    done
    for sp in 1h 24h $four; do # idle with 16 shards (the old ring's count would be 6.4 GB)
        stamp "new: bench_spans mem $sp 0 0 count 16"; "$new" mem "$sp" 0 0 count 16
        stamp "new: bench_spans mem $sp 0 0 rss 16"; "$new" mem "$sp" 0 0 rss 16
    done
    stamp "old: bench_spans mem 1h 0 0 rss 16"; "$old" mem 1h 0 0 rss 16
fi

if want add; then
    stamp "new: bench_spans add $rounds fixed 60s 60s,5m,1h,24h 24h"
    "$new" add "$rounds" fixed 60s 60s,5m,1h,24h 24h
    for wl in moving moving1; do
        stamp "new: bench_spans add $rounds $wl 60s 60s,5m,1h,24h 15s,30s,45s,60s"
        "$new" add "$rounds" $wl 60s 60s,5m,1h,24h 15s,30s,45s,60s
    done
fi

# One run's "ns/add (CPU ...)" of a one-configuration add: "wall cpu".
one_add() { "$1" add 1 "$2" 60s | awk '/ns\/add/ {gsub(/[()]/, ""); print $2, $5}'; }
old_new() { # workload: rounds of old then new, or new then old
    stamp "old ring vs new index: bench_spans add 1 $1 60s, alternating processes (amounts ${BENCH_AMOUNTS:-random})"
    : >"$work/ratios"
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) = 1 ]; then o=$(one_add "$old" "$1"); n=$(one_add "$new" "$1")
        else n=$(one_add "$new" "$1"); o=$(one_add "$old" "$1"); fi
        echo "$o $n" | awk -v r="$r" '{printf "round %2d: old %.1f ns (CPU %.1f), new %.1f ns (CPU %.1f): x%.3f (CPU x%.3f)\n", r, $1, $2, $3, $4, $3 / $1, $4 / $2}'
        echo "$o $n" >>"$work/ratios"
    done
    printf 'median over %s rounds (%s clock): old %.1f ns, new %.1f ns; new/old %.3f (CPU time %.3f)\n' \
        "$rounds" "$1" "$(awk '{print $1}' "$work/ratios" | median)" \
        "$(awk '{print $3}' "$work/ratios" | median)" \
        "$(awk '{print $3 / $1}' "$work/ratios" | median)" \
        "$(awk '{print $4 / $2}' "$work/ratios" | median)"
}
if want old-add; then
    for wl in fixed moving moving1; do old_new $wl; done
    BENCH_AMOUNTS=weyl old_new moving1
    lib_so() { find "$1" -maxdepth 1 -name "libtxstats.so.*.*.*" | head -1; }
    stamp "A = old, B = new: dist_ab_add (bench_dist's workload, default config)"
    "$build/bench/dist_ab_add" "$(lib_so "$work/build/libtxstats")" "$(lib_so "$build/libtxstats")" "$rounds"
fi

# Instructions per txstats_add (callgrind, everything inside txstats_add: expiry included), free
# of the machine's noise; the runs of the add part, once each.
ir() { # label amounts workload spans binary
    BENCH_AMOUNTS=$2 valgrind --tool=callgrind --toggle-collect=txstats_add \
        --callgrind-out-file="$work/cg.out" "$5" add 1 "$3" "$4" >/dev/null 2>&1
    local n=2000000; [ "$3" = fixed ] || n=5000000
    callgrind_annotate "$work/cg.out" | awk -v l="$1" -v a="$2" -v w="$3" -v s="$4" -v n=$n \
        '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "%-4s %-6s %-8s %-16s %6.0f instructions per add\n", l, a, w, s, $1 / n}'
}
if want ir; then
    stamp "callgrind: instructions per txstats_add"
    for wl in fixed moving moving1; do
        ir old random $wl 60s "$old"
        for sp in 60s 60s,5m,1h,24h 15s,30s,45s,60s; do ir new random $wl $sp "$new"; done
    done
    ir old weyl moving1 60s "$old"
    ir new weyl moving1 60s "$new"
    ir new weyl moving1 15s,30s,45s,60s "$new"
fi
