#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 14's cluster rows: POSTs per second of ONE node, standalone vs cluster mode with
# --kafka-ack kafka and --kafka-ack local, in the same run, alternating, at 64 and 256 keep-alive
# connections (wrk -t2, --threads 300); a fresh 3-broker mock cluster (6 partitions) per cluster
# run. Then the replication lag (a 201 on a local-mode node until a second node counts it, from
# the second node's txstats_kafka_replication_lag_seconds histogram, under the same load).
# usage: bench/cluster.sh [BUILD-DIR] [ROUNDS] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd); rounds=${2:-3}; dur=${3:-5}
server=$build/server/txstats-server; mock=$build/tests/kafka_mock
work=$(mktemp -d); pids=()
stop_all() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
             wait 2>/dev/null || true; pids=(); exec 3>&- 2>/dev/null || true; }
trap 'stop_all; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_start() { # sets $brokers
    rm -f "$work/in"; mkfifo "$work/in"
    "$mock" transactions 6 <"$work/in" >"$work/brokers" 2>/dev/null & pids+=($!)
    exec 3>"$work/in"
    for _ in $(seq 100); do [ -s "$work/brokers" ] && break; sleep 0.05; done
    brokers=$(head -1 "$work/brokers")
}
node_start() { # $1 port, $2 data dir, then extra options
    local port=$1 dir=$2; shift 2; rm -rf "$dir"
    "$server" --listen 127.0.0.1:"$port" --threads 300 --data-dir "$dir" --log-level warn "$@" \
        2>>"$work/server.log" & pids+=($!)
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] && return
        sleep 0.05
    done
    echo "node on $port not ready" >&2; exit 1
}
. "$here/common.sh"
run_wrk() { # $1 conns, $2 port: "req/s p50_ms p99_ms errors"
    wrk -t2 -c"$1" -d"${dur}s" --latency -s "$here/wrk/post.lua" "http://127.0.0.1:$2/" 2>&1 | wrk_summary
}
measure() { # $1 mode (standalone, kafka, local), $2 conns
    local port; port=$(free_port)
    case $1 in
        standalone) node_start "$port" "$work/d";;
        *) mock_start; node_start "$port" "$work/d" --kafka-brokers "$brokers" --kafka-ack "$1";;
    esac
    run_wrk "$2" "$port"
    stop_all
}

echo "== one node, POST /transactions, wrk -t2 ${dur} s, --threads 300, $rounds rounds"
for r in $(seq "$rounds"); do
    for c in 64 256; do
        for m in standalone kafka local; do
            echo "round $r c=$c $m $(measure $m $c)"
        done
    done
done | tee "$work/rows"
echo "== medians (req/s, p50 ms, p99 ms) and ratio to standalone"
col() { awk -v c="c=$1" -v m="$2" -v f="$3" '$3==c && $4==m {print $f}' "$work/rows" | median; }
for c in 64 256; do
    s=$(col $c standalone 5)
    for m in standalone kafka local; do
        r=$(col $c $m 5)
        printf "c=%-3s %-10s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  ratio %.2f\n" \
            "$c" "$m" "$r" "$(col $c $m 6)" "$(col $c $m 7)" "$(echo "$r $s" | awk '{print $1/$2}')"
    done
done

echo "== replication lag: wrk -c64 on a local-mode node, counted on a second node"
mock_start
pa=$(free_port); pb=$(free_port)
node_start "$pa" "$work/a" --kafka-brokers "$brokers" --kafka-ack local
node_start "$pb" "$work/b" --kafka-brokers "$brokers"
run_wrk 64 "$pa" >/dev/null
sleep 1
curl -s "http://127.0.0.1:$pb/metrics" | awk -F'[{}" ]+' '
    /^txstats_kafka_replication_lag_seconds_bucket/ {le[++n]=$3; c[n]=$NF}
    END {t=c[n]; for (i=1;i<=n;i++) { if (!m50 && c[i] >= t*0.5) m50=le[i]; if (!m99 && c[i] >= t*0.99) m99=le[i] }
         printf "%d transactions: p50 <= %s s, p99 <= %s s (histogram bucket bounds)\n", t, m50, m99}'
