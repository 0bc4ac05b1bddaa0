#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_persist's rows (issues 25, 28) on two builds in one run: each row runs NEW, OLD, OLD, NEW,
# so that drift on a shared machine falls on both alike. Each invocation prints medians of its own
# 3 repetitions (see bench/bench_persist.c). OLD: bench_persist.c built against another libtxstats,
# for example the one before the streaming checkpoint:
#   git archive 17190d1 | tar -x -C /tmp/old-src
#   cmake -S /tmp/old-src -B /tmp/old-build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
#         -DTXSTATS_BUILD_EXAMPLES=OFF && cmake --build /tmp/old-build -j2
#   gcc -O3 -DNDEBUG -std=gnu11 -I/tmp/old-src/libtxstats/include -Ibench bench/bench_persist.c \
#       -L/tmp/old-build/libtxstats -ltxstats -Wl,-rpath,/tmp/old-build/libtxstats -lpthread \
#       -o /tmp/old-build/bench_persist_old
# usage: bench/persist_ab.sh NEW_BENCH_PERSIST OLD_BENCH_PERSIST [ROW...]
#   ROW: bench_persist's arguments joined by ':' (default: every row of issues 25 and 28)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '3,14p' "$0" >&2; exit 2; }
new=$1 old=$2; shift 2
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(ckpt:1000000:0 ckpt:10000000:0 ckpt:10000000:10000000
    wait:1000000 wait:10000000 rss:1000000:5 rss:10000000:5
    recover:1000000:0 recover:10000000:0 recover:10000000:10000000)
for row in "${rows[@]}"; do
    IFS=: read -r -a args <<<"$row"
    for who in new old old new; do
        bin=$new; [ $who = old ] && bin=$old
        echo "## $who: bench_persist ${args[*]} ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
        "$bin" "${args[@]}"
    done
done
