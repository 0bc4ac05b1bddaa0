#!/usr/bin/env bash
# Per-key windows side by side with Redis (issue 20): installs redis-server and libhiredis-dev
# when missing, builds bench/redis_keys.c into BUILD_DIR, starts a redis-server on a free
# loopback port (no persistence, no RDB, no AOF), runs redis_keys, stops the server. Then, when
# txstats-server has the per-key routes, the same per-key query over HTTP, one connection
# (as the Redis client has), for the same sizes of keys.
# usage: bench/redis_keys.sh BUILD_DIR [N_TX] [N_KEYS] [SLICES]
set -euo pipefail
build=$1
n_tx=${2:-10000000}
n_keys=${3:-1000000}
slices=${4:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/txstats-redis-XXXXXX)
rpid=
cleanup() { [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v redis-server >/dev/null || [ ! -f /usr/include/hiredis/hiredis.h ]; then
    apt-get update && apt-get install -y redis-server libhiredis-dev
fi
if [ ! -x "$build/bench/redis_keys" ]; then
    cmake "$build" >/dev/null # finds hiredis now
    cmake --build "$build" --target redis_keys -j 2
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
    --dir "$work" --logfile "$work/redis.log" &
rpid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port" \
    "(save '', appendonly no; zset-max-listpack-entries" \
    "$(redis-cli -p "$port" config get zset-max-listpack-entries | tail -1))"
"$build/bench/redis_keys" "$port" "$n_tx" "$n_keys" "$slices"
kill "$rpid"; wait "$rpid" 2>/dev/null || true; rpid=
echo "== the same keys through txstats-server (bench/http_keys.sh $build $n_keys $((n_tx / n_keys)) 5 1)"
"$here/http_keys.sh" "$build" "$n_keys" "$((n_tx / n_keys))" 5 1 || echo "(HTTP not measured)"
