#!/usr/bin/env bash
# The costs of the newer paths, each against its reference in the same run (ratios; medians of
# ROUNDS alternating runs): POSTs with an Idempotency-Key vs without, POST /transactions/batch of
# 1,000 vs single POSTs, the library's batch and keyed adds vs single adds, bytes per key and per
# retained transaction, what a checkpoint of a full window costs under saturating adds, and what
# checkpoints, snapshots and recovery cost in memory and in waiting adds (bench_persist).
# Prints a Markdown section; bench/run.sh puts it into bench/RESULTS.md.
# usage: bench/features.sh BUILD_DIR [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
build=$1
dur=${2:-5}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/txstats-features-XXXXXX)
server="$build/server/txstats-server"
port=18191
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # a fresh server, 256 threads, on both cores
    [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
    rm -rf "$work/data"
    "$server" --listen 127.0.0.1:$port --threads 256 --data-dir "$work/data" --log-level warn \
        --max-batch-bytes 8388608 &
    pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
    echo "the server did not start" >&2; exit 1
}
rps() { # $1 connections, $2 script: requests per second
    wrk -t2 -c"$1" -d"${dur}s" -s "$here/wrk/$2" "http://127.0.0.1:$port/" 2>&1 |
        awk '/Requests\/sec/ {print $2}'
}
. "$here/common.sh"

: >"$work/plain"; : >"$work/keyed"; : >"$work/single"; : >"$work/batch"
for r in $(seq "$rounds"); do
    start; rps 64 post.lua >>"$work/plain"
    start; rps 64 post_keyed.lua >>"$work/keyed"
    start; rps 16 post.lua >>"$work/single"
    start; rps 16 batch.lua >>"$work/batch"
done
plain=$(median <"$work/plain"); keyed=$(median <"$work/keyed")
single=$(median <"$work/single"); batch=$(median <"$work/batch")

lib=$("$build/bench/bench_lib" "add variants")
mem=$("$build/bench/bench_memory")
ckpt=$("$build/bench/bench_checkpoint" 2 1000000 load)
ckpt_idle=$("$build/bench/bench_checkpoint" 2 1000000)
ckpt_one=$("$build/bench/bench_checkpoint" 16 1)
persist=$(for args in "ckpt 1000000 0" "ckpt 10000000 0" "ckpt 10000000 10000000" \
    "recover 1000000 0" "recover 10000000 0" "recover 10000000 10000000" \
    "wait 1000000 3" "wait 10000000 3" "rss 1000000 5" "rss 10000000 5"; do
    # shellcheck disable=SC2086 # the arguments split on purpose
    "$build/bench/bench_persist" $args
done)

awk -v p="$plain" -v k="$keyed" -v s="$single" -v b="$batch" -v d="$dur" -v n="$rounds" 'BEGIN {
    printf "### Idempotency keys and batches over HTTP\n\n"
    printf "`bench/features.sh BUILD_DIR %s %s` (medians of %s alternating runs of %s s; wrk -t2; server and wrk share both cores):\n\n", d, n, n, d
    printf "| | requests/s | transactions/s | ratio |\n|---|---|---|---|\n"
    printf "| POST, 64 connections, no key | %.0f | %.0f | 1.00 |\n", p, p
    printf "| POST, 64 connections, a fresh Idempotency-Key each | %.0f | %.0f | %.2f |\n", k, k, k / p
    printf "| POST, 16 connections | %.0f | %.0f | 1.00 |\n", s, s
    printf "| POST /transactions/batch of 1,000, 16 connections | %.0f | %.0f | %.1f |\n\n", b, b * 1000, b * 1000 / s
}'
echo "### The library's batch and keyed adds"
echo
echo '`build-bench/bench/bench_lib "add variants"` (medians of 7):'
echo
echo '```'
echo "$lib" | grep -E '^add'
echo '```'
echo
echo "### Memory and checkpoints"
echo
echo '`build-bench/bench/bench_memory` (bytes counted through the allocator):'
echo
echo '```'
echo "$mem"
echo '```'
echo
echo '`build-bench/bench/bench_checkpoint 2 1000000 [load]` and `bench_checkpoint 16 1` (a checkpoint of'
echo 'a full window, with and without a thread adding as fast as it can meanwhile; of one transaction'
echo 'with 16 shards):'
echo
echo '```'
echo "$ckpt"
echo "$ckpt_idle"
echo "$ckpt_one"
echo '```'
echo
echo '`build-bench/bench/bench_persist ckpt|recover|wait|rss ...` (issues 25 and 28: the extra peak of a'
echo 'checkpoint, txstats_save_bin and txstats_save counted through the allocator; recovery in a fresh'
echo 'process, its VmHWM against the VmRSS before the stop; the longest add while checkpoints run back'
echo 'to back; VmRSS with checkpoints every second and without; medians of 3):'
echo
echo '```'
echo "$persist"
echo '```'
