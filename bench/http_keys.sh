#!/usr/bin/env bash
# Per-key windows over HTTP (issue 20). Loads N_KEYS keys x TX_PER_KEY transactions, plus one key
# of 100,000, into a fresh txstats-server through POST /transactions/batch (NDJSON lines with a
# "key" member, 100,000 lines a request, 2 requests at a time), then, with wrk:
#   - GET /statistics?key=<a key drawn uniformly> at 64 connections, alternated with the global
#     GET /statistics (the same server, the same run) in ROUNDS rounds: req/s, p50, p99;
#   - one connection: GET /statistics?key= of a random key of TX_PER_KEY and of the key of 100,000,
#     GET /statistics/top?by=sum|count&limit=100: p50, p99 in microseconds.
# The window is 600 s (--window-ms) so that the loaded keys stay in it for the whole run; the
# timestamps are spread over the 59 s before the load. SAVE_MS (environment) sets
# --save-interval-ms (default the server's, 1000: a checkpoint every second).
# usage: bench/http_keys.sh BUILD_DIR [N_KEYS] [TX_PER_KEY] [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
build=$1
n_keys=${2:-1000000}
per_key=${3:-1}
dur=${4:-5}
rounds=${5:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/txstats-httpkeys-XXXXXX)
server="$build/server/txstats-server"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$here/common.sh"

"$server" --listen "127.0.0.1:$port" --threads 128 --data-dir "$work/data" --log-level warn \
    --window-ms 600000 --max-batch 100000 --max-batch-bytes 16777216 \
    ${SAVE_MS:+--save-interval-ms "$SAVE_MS"} &
pid=$!
for _ in $(seq 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/statistics/top?by=count&limit=1")
if [ "$code" != 200 ]; then
    echo "http_keys: GET /statistics/top answers $code: this txstats-server has no per-key routes;" \
        "nothing measured"
    exit 3
fi

# NDJSON batches of 100,000 lines: key i's j-th transaction; then the key of 100,000.
now=$(date +%s%3N)
mkdir "$work/batches"
awk -v n="$n_keys" -v t="$per_key" -v now="$now" -v dir="$work/batches" 'BEGIN {
    k = 0
    for (j = 0; j < t; j++) for (i = 0; i < n; i++) {
        f = sprintf("%s/%06d", dir, int(k / 100000))
        printf "{\"amount\":\"%d.%02d\",\"timestamp\":%.0f,\"key\":\"card-%011d\"}\n",
            (i * 7 + j) % 1000, i % 100, now - 1000 - (k % 58000), i >f
        if (++k % 100000 == 0) close(f)
    }
    f = sprintf("%s/%06d", dir, int(k / 100000) + 1)
    for (j = 0; j < 100000; j++)
        printf "{\"amount\":\"1.00\",\"timestamp\":%.0f,\"key\":\"card-big-0000000\"}\n",
            now - 1000 - j % 58000 >f
}'
total=$(( n_keys * per_key + 100000 ))
t0=$(date +%s.%N)
find "$work/batches" -type f | sort | xargs -P 2 -n 1 sh -c \
    'curl -s -o /dev/null -w "%{http_code}\n" -H "Content-Type: application/x-ndjson" \
     --data-binary @"$0" '"$url/transactions/batch" >"$work/codes"
t1=$(date +%s.%N)
count=$(curl -s "$url/statistics" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
echo "loaded $total transactions ($n_keys keys x $per_key + 1 key x 100,000) in" \
    "$(echo "$t1 - $t0" | bc | xargs printf '%.1f') s" \
    "($(echo "$total / ($t1 - $t0)" | bc | xargs printf '%.0f') tx/s, batch route, 2 connections);" \
    "window count $count; answers: $(sort "$work/codes" | uniq -c | xargs); server RSS $rss MiB"
[ "$count" = "$total" ] || { echo "http_keys: the window holds $count, not $total" >&2; exit 1; }
big=$(curl -s "$url/statistics?key=card-big-0000000" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
[ "$big" = 100000 ] || { echo "http_keys: the key of 100,000 holds $big" >&2; exit 1; }

cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$pid/stat"; }
c0=$(cpu_s); sleep 5; c1=$(cpu_s)
echo "server CPU while idle for 5 s after the load: $(echo "$c1 - $c0" | bc) s" \
    "(--save-interval-ms ${SAVE_MS:-1000})"

run() { # $1 connections, $2 wrk threads, then the URL and wrk's arguments
    local c=$1 t=$2; shift 2
    wrk -t"$t" -c"$c" -d"${dur}s" --latency "$@" 2>&1 | wrk_summary
}
run_us() { # run, latencies in microseconds: "req/s p50_us p99_us errors"
    local c=$1 t=$2; shift 2
    wrk -t"$t" -c"$c" -d"${dur}s" --latency "$@" 2>&1 |
        awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
             /Requests\/sec/ {r = $2} $1 == "50%" {p50 = us($2)} $1 == "99%" {p99 = us($2)}
             /Non-2xx|Socket errors/ {e = e $0 "; "}
             END {printf "%s %.0f %.0f %s\n", r, p50, p99, e == "" ? "none" : e}'
}
echo "64 connections, wrk -t2, server --threads 128, both on the 2 cores; $dur s per run:"
: >"$work/key64"; : >"$work/global64"
for r in $(seq "$rounds"); do
    for which in key global; do
        [ $((r % 2)) = 0 ] && which=$([ "$which" = key ] && echo global || echo key)
        if [ "$which" = key ]; then
            res=$(run 64 2 -s "$here/wrk/get_key.lua" "$url/" -- "$n_keys")
        else
            res=$(run 64 2 "$url/statistics")
        fi
        label="GET /statistics"; [ "$which" = key ] && label="GET /statistics?key=<random>"
        echo "  round $r $label: $res"
        echo "$res" >>"$work/${which}64"
    done
done
for which in key global; do
    f="$work/${which}64"
    echo "  median of $rounds, GET /statistics$([ $which = key ] && echo '?key=<random>'):" \
        "$(cut -d' ' -f1 "$f" | median) req/s, p50 $(cut -d' ' -f2 "$f" | median) ms," \
        "p99 $(cut -d' ' -f3 "$f" | median) ms"
done
echo "one connection, wrk -t1 -c1, $dur s each (req/s p50_us p99_us errors):"
echo "  GET /statistics?key=<random key of $per_key>:" \
    "$(run_us 1 1 -s "$here/wrk/get_key.lua" "$url/" -- "$n_keys")"
echo "  GET /statistics?key=<key of 100,000>: $(run_us 1 1 "$url/statistics?key=card-big-0000000")"
echo "  GET /statistics/top?by=sum&limit=100: $(run_us 1 1 "$url/statistics/top?by=sum&limit=100")"
echo "  GET /statistics/top?by=count&limit=100: $(run_us 1 1 "$url/statistics/top?by=count&limit=100")"
