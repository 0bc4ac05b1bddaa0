#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 14: how long a cluster node with a full window takes to be ready again after a restart,
# with its partition checkpoints (DATA_DIR/partitions) and without them (the directory deleted:
# the node reads the whole window back from Kafka). A fresh 3-broker mock cluster (PARTITIONS
# partitions, default 12: librdkafka's mock broker keeps only about the last 100,000 records of a
# partition (its low watermark moves up), so with fewer partitions a restart without checkpoints
# cannot find the whole window in it, and the run stops on differing statistics); one node, --window-ms 600000, filled with N transactions (default
# 1,000,000) by POST /transactions/batch, 1000 NDJSON lines a request, timestamps spread over the
# last 300 s. Each restart: SIGTERM (the node writes its checkpoints), then the time from process
# start to the first /healthz 200, median of ROUNDS (default 3) each way; the statistics must be
# the same after every restart. Also prints the checkpoint write times and sizes. MODES="with"
# measures only the restarts with checkpoints (then any partition count works).
# usage: bench/cluster_restart.sh [BUILD-DIR] [N] [ROUNDS] [PARTITIONS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd); n=${2:-1000000}; rounds=${3:-3}; parts=${4:-12}
server=$build/server/txstats-server; mock=$build/tests/kafka_mock
work=$(mktemp -d); pids=()
stop_all() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
             wait 2>/dev/null || true; pids=(); exec 3>&- 2>/dev/null || true; }
trap 'stop_all; cp "$work/server.log" /tmp/cluster_restart-server.log 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

mkfifo "$work/in"
"$mock" transactions "$parts" <"$work/in" >"$work/brokers" 2>/dev/null & pids+=($!)
exec 3>"$work/in"
for _ in $(seq 100); do [ -s "$work/brokers" ] && break; sleep 0.05; done
brokers=$(head -1 "$work/brokers")

node_pid=; elapsed=
node_start() { # sets $elapsed: seconds from process start to the first /healthz 200
    local t0; t0=$(date +%s.%N)
    "$server" --listen 127.0.0.1:"$port" --data-dir "$work/data" --window-ms 600000 \
        --kafka-brokers "$brokers" --max-retained 2000000 --log-level info \
        >/dev/null 2>>"$work/server.log" & node_pid=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do sleep 0.01; done
    elapsed=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.2f", $1 - $2}')
}
node_stop() { kill -TERM "$node_pid"; wait "$node_pid" || true; }

node_start
echo "== filling the window: $n transactions, 1000 per POST /transactions/batch"
t0=$(date +%s.%N)
python3 - "$port" "$n" <<'EOF'
import datetime, http.client, random, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
now = datetime.datetime.now(datetime.timezone.utc)
rnd = random.Random(14)
for start in range(0, n, 1000):
    lines = []
    for _ in range(min(1000, n - start)):
        ts = now - datetime.timedelta(milliseconds=rnd.randrange(300000))
        amount = "%d.%02d" % (rnd.randrange(1, 10000), rnd.randrange(100))
        lines.append('{"amount":"%s","timestamp":"%s"}' % (amount, ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"))
    c.request("POST", "/transactions/batch", "\n".join(lines) + "\n", {"Content-Type": "application/x-ndjson"})
    r = c.getresponse(); body = r.read()
    if r.status != 200 or b'"rejected":[]' not in body:
        sys.exit("batch at %d: %d %s" % (start, r.status, body[:200]))
EOF
echo "filled in $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}') s"
sleep 11 # a periodic round (--kafka-checkpoint-interval-ms 10000) writes every partition
curl -s "$url/metrics" | awk '/^txstats_kafka_checkpoints_total\{result="written"\}/ {w=$2}
    /^txstats_kafka_checkpoint_last_write_seconds / {l=$2} /^txstats_kafka_checkpoint_seconds_total/ {t=$2}
    END {printf "checkpoint writes while running: %d, mean %.3f s, last %.3f s per partition\n", w, t/w, l}'
want=$(curl -s "$url/statistics"); echo "statistics: $want"
node_stop
grep -o 'shutdown checkpoints:.*' "$work/server.log" | tail -1
du -sh "$work/data/partitions" | awk '{print "checkpoint size: " $1}'

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in ${MODES:-with without}; do
    for r in $(seq "$rounds"); do
        [ "$mode" = without ] && rm -rf "$work/data/partitions"
        node_start; got=$(curl -s "$url/statistics")
        [ "$got" = "$want" ] || { echo "restart $mode: statistics differ: $got" >&2
            sleep 2; echo "2 s later: $(curl -s "$url/statistics")" >&2
            curl -s "$url/metrics" | grep -E '^txstats_kafka_(records|ready|part)' >&2
            cp "$work/server.log" /tmp/cluster_restart-server.log; [ -z "${DEBUG:-}" ] || { echo "$brokers" >/tmp/ckpt-brokers; sleep 200; }; exit 1; }
        echo "$mode $elapsed" | tee -a "$work/times"
        if [ "$mode" = with ]; then grep -o 'checkpoints: [0-9]* of.*' "$work/server.log" | tail -1; fi
        curl -s "$url/metrics" | grep -E '^txstats_kafka_checkpoint_restore_seconds' || true
        node_stop
    done
done
echo "== medians: with checkpoint $(awk '$1=="with" {print $2}' "$work/times" | median) s," \
     "without $(awk '$1=="without" {print $2}' "$work/times" | median) s (start to /healthz 200)"
