#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 25's server run: RSS and POST throughput of txstats-server with checkpoints every second
# (the default --save-interval-ms 1000) against checkpoints effectively off
# (--save-interval-ms 86400000). Each run: a fresh data directory, `SERVER --window-ms 20000`,
# `wrk -t2 -c64 -d75s` POSTs (bench/wrk/post.lua), server and wrk sharing both cores;
# VmRSS read from /proc/PID/status every second. Steady RSS: the median of the samples once the
# window is full (from 30 s on, STEADY_FROM); also their maximum, and the process's VmHWM at the end.
# The two modes alternate within a round (order swapped every round), and with several SERVER
# binaries each round runs them all, so every ratio comes from one run.
# usage: bench/checkpoint_rss.sh [NAME=]SERVER [[NAME=]SERVER...]   (env: ROUNDS, default 2; SECONDS_PER_RUN, default 75; STEADY_FROM, default 30)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '3,11p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
for s in "$@"; do [ -x "${s#*=}" ] || { echo "checkpoint_rss.sh: $s is not an executable" >&2; exit 2; }; done
rounds=${ROUNDS:-2}; secs=${SECONDS_PER_RUN:-75}
. "$here/common.sh"
steady_from=${STEADY_FROM:-30}
# the median of the numbers on stdin (the mean of the two middle ones of an even count)
median2() { sort -g | awk '{v[NR] = $1} END {print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2}'; }
work=$(mktemp -d /tmp/txstats-ckptrss-XXXXXX); pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

one() { # $1 [NAME=]server, $2 mode (default|off): prints "rps steady_mib max_mib hwm_mib"
    local extra=() t=0
    [ "$2" = off ] && extra=(--save-interval-ms 86400000)
    rm -rf "$work/data"
    "${1#*=}" --listen 127.0.0.1:"$port" --data-dir "$work/data" --window-ms 20000 --log-level warn \
        "${extra[@]}" >>"$work/server.log" 2>&1 & pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/statistics"; do sleep 0.05; done
    wrk -t2 -c64 -d"${secs}s" --latency -s "$here/wrk/post.lua" "http://127.0.0.1:$port/" \
        >"$work/wrk.txt" 2>&1 & local wpid=$!
    : >"$work/rss"
    while kill -0 "$wpid" 2>/dev/null; do
        sleep 1; t=$((t + 1))
        awk -v t=$t '/^VmRSS/ {print t, $2 / 1024}' "/proc/$pid/status" >>"$work/rss"
    done
    wait "$wpid"
    local hwm; hwm=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" || true; pid=
    echo "$(wrk_summary <"$work/wrk.txt" | cut -d' ' -f1)" \
        "$(awk -v f="$steady_from" '$1 >= f {print $2}' "$work/rss" | median2)" \
        "$(awk -v f="$steady_from" '$1 >= f && $2 > m {m = $2} END {print m}' "$work/rss")" "$hwm"
}

echo "checkpoint_rss.sh: --window-ms 20000, wrk -t2 -c64 -d${secs}s POST /transactions, $rounds round(s)"
for r in $(seq "$rounds"); do
    modes="default off"; [ $((r % 2)) = 0 ] && modes="off default"
    for s in "$@"; do
        for m in $modes; do
            read -r rps steady mx hwm < <(one "$s" "$m")
            printf '  %s round %d %-7s: %8.0f POST/s, steady RSS %6.1f MiB, max %6.1f MiB, VmHWM %6.1f MiB\n' \
                "${s%%=*}" "$r" "$m" "$rps" "$steady" "$mx" "$hwm"
            echo "${s%%=*} $m $rps $steady $mx $hwm $r" >>"$work/all"
        done
    done
done
echo
echo "| server | checkpoints | POST/s | steady RSS | max RSS sample | VmHWM | POST/s default / off (per round) |"
echo "|---|---|---|---|---|---|---|"
for s in "${@%%=*}"; do
    ratios=$(awk -v s="$s" '$1 == s {r[$7, $2] = $3; if ($7 > n) n = $7}
        END {for (i = 1; i <= n; i++) printf "%.3f\n", r[i, "default"] / r[i, "off"]}' "$work/all")
    for m in default off; do
        col() { awk -v s="$s" -v m="$m" -v c="$1" '$1 == s && $2 == m {print $c}' "$work/all" | median2; }
        printf '| %s | %s | %.0f | %.1f MiB | %.1f MiB | %.1f MiB | %s |\n' "$s" \
            "$([ $m = default ] && echo 'every 1 s (default)' || echo 'off (86400000 ms)')" \
            "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" \
            "$([ $m = default ] && echo "$(echo "$ratios" | median2 | xargs printf '%.3f') ($(echo $ratios | tr ' ' ','))" || echo)"
    done
done
