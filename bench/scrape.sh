#!/usr/bin/env bash
# What scrapes cost writers (issue 22): POST throughput at 64 connections while a client asks
# every 100 ms for GET /metrics and GET /statistics/distribution alternately (each builds the
# window's distribution), against the same client asking for GET /healthz as often (so that the
# client's own CPU on this 2-core machine is in both), and against no client at all; in one run,
# alternating; medians of ROUNDS and the ratios. The window is filled first.
# usage: bench/scrape.sh SERVER [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
server=$1
dur=${2:-5}
rounds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/txstats-scrape-XXXXXX)
port=18193
pid=
scraper=
cleanup() {
    [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
. "$here/common.sh"

"$server" --listen 127.0.0.1:$port --threads 256 --data-dir "$work/data" --log-level warn &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

scrape_loop() { # every 100 ms until killed; $1 = healthz: the control
    local n=0
    while :; do
        if [ "${1:-}" = healthz ]; then
            curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || true
        elif [ $((n % 2)) -eq 0 ]; then
            curl -sf "http://127.0.0.1:$port/metrics" >/dev/null || true
        else
            curl -sf "http://127.0.0.1:$port/statistics/distribution?q=0.5,0.9,0.99" >/dev/null || true
        fi
        n=$((n + 1))
        sleep 0.1
    done
}
rps() {
    wrk -t2 -c64 -d"${dur}s" -s "$here/wrk/post.lua" "http://127.0.0.1:$port/" 2>&1 |
        awk '/Requests\/sec/ {print $2}'
}

rps >/dev/null # warm-up: fills the window with varied amounts
: >"$work/quiet"
: >"$work/control"
: >"$work/scraped"
for _ in $(seq "$rounds"); do
    rps >>"$work/quiet"
    for kind in healthz scrape; do
        scrape_loop "$kind" &
        scraper=$!
        rps >>"$work/$([ "$kind" = healthz ] && echo control || echo scraped)"
        kill "$scraper" 2>/dev/null
        wait "$scraper" 2>/dev/null || true
        scraper=
    done
done
q=$(median <"$work/quiet")
c=$(median <"$work/control")
s=$(median <"$work/scraped")
echo "POST req/s at 64 connections, medians of $rounds alternating ${dur} s runs:"
echo "  no client: $q"
echo "  GET /healthz every 100 ms (the control): $c"
echo "  a scrape every 100 ms: $s"
awk -v q="$q" -v c="$c" -v s="$s" \
    'BEGIN {printf "  scrape / control: %.3f; scrape / no client: %.3f\n", s / c, s / q}'
