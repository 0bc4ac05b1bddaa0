#!/bin/sh
# GET /metrics from a running server passes `promtool check metrics` (Prometheus's own linter),
# with four windows (--window-ms), each labelled window="..." (README, "Several windows").
set -eu
server="$1"
dir=$(mktemp -d /tmp/txstats-metrics-XXXXXX)
"$server" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" --log-level warn \
    --window-ms 60000,5m,1h,24h &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for i in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$dir/port")"
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
curl -s -o /dev/null -X POST "$base/transactions" -d "{\"amount\":\"1.5\",\"timestamp\":\"$now\"}"
curl -s -o /dev/null -X POST "$base/transactions" -d "{\"amount\":\"2\",\"timestamp\":\"$now\",\"key\":\"card-1\"}"
old=$(($(date +%s) * 1000 - 600000)) # ten minutes ago: in the 1h and 24h windows only
curl -s -o /dev/null -X POST "$base/transactions" -d "{\"amount\":\"96.5\",\"timestamp\":$old}"
curl -s -o /dev/null "$base/statistics"
curl -s -o /dev/null "$base/nowhere"
curl -s "$base/metrics" >"$dir/metrics.txt"
promtool check metrics <"$dir/metrics.txt"
grep -q '^txstats_window_transactions{window="1m"} 2$' "$dir/metrics.txt"
grep -q '^txstats_window_transactions{window="5m"} 2$' "$dir/metrics.txt"
grep -q '^txstats_window_transactions{window="1h"} 3$' "$dir/metrics.txt"
grep -q '^txstats_window_transactions{window="1d"} 3$' "$dir/metrics.txt"
grep -q '^txstats_window_amount{window="1m",stat="sum"} 3.50$' "$dir/metrics.txt"
grep -q '^txstats_window_amount{window="1d",stat="max"} 96.50$' "$dir/metrics.txt"
grep -q '^txstats_window_amount_quantile{window="1h",quantile="0.99"} 96\.[45]' "$dir/metrics.txt"
grep -q '^txstats_keys_active 1$' "$dir/metrics.txt"
grep -q '^txstats_keys_active_limit 1048576$' "$dir/metrics.txt"
grep -q '^txstats_keys_refused_total 0$' "$dir/metrics.txt"
grep -q '^txstats_posts_total{outcome="stored"} 3$' "$dir/metrics.txt"
grep -q '^txstats_posts_total{outcome="key_limit"} 0$' "$dir/metrics.txt"
grep -q '^txstats_http_requests_total{route="other",code="4xx"} 1$' "$dir/metrics.txt"
grep -q '^txstats_build_info{version=' "$dir/metrics.txt"
grep -q '^txstats_window_amount_quantile{window="1m",quantile="0.5"} 1.50$' "$dir/metrics.txt"
echo "metrics: promtool check passed ($(grep -c '^# TYPE' "$dir/metrics.txt") metric families)"
