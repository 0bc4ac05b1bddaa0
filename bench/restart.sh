#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 28's restart table: what a restart of txstats-server costs and changes.
#
# For each row and round: a fresh data directory; `SERVER --window-ms 120000` (every other option
# at its default, plus the row's --max-retained); N transactions posted as NDJSON batches of
# 10,000 by POST /transactions/batch (2 connections; amounts uniform in 0.01..100,000.00 in whole
# cents; timestamps uniform over the 30 s before each batch is sent); a 2.5 s pause; then the
# answers recorded (GET /statistics, GET /statistics/distribution?q=0.01,0.1,0.5,0.9,0.99) with
# the process's VmRSS; the server stopped (kill -9, or SIGTERM: a deploy) and started again on the
# same data directory. Measured: the time from the new process's start to its first 200 on
# GET /statistics (polled every 2 ms), whether count, sum, avg, max, min and the quantiles are
# equal, and the new process's VmHWM read at that first 200 (its peak RSS while recovering,
# against the bound of issue 28: 1.15 x the RSS before the stop + 8 MiB).
#
# With several SERVER binaries (say an old build and a new one), each round runs every binary in
# turn, the order alternating between rounds, so that their figures come from the same run.
#
# usage: bench/restart.sh [NAME=]SERVER [[NAME=]SERVER...]
#   ROWS    rows, each N:STOP[:MAX_RETAINED] with STOP kill or term
#           (default "3000000:kill 3000000:term 10000000:kill 10000000:kill:10000000")
#   ROUNDS  rounds per row (default 3); every figure printed in the tables is a median of them
#           (the distribution table shows the first round's answers)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '3,22p' "$0" >&2; exit 2; }
for s in "$@"; do [ -x "${s#*=}" ] || { echo "restart.sh: $s is not an executable" >&2; exit 2; }; done
export ROWS=${ROWS:-"3000000:kill 3000000:term 10000000:kill 10000000:kill:10000000"}
export ROUNDS=${ROUNDS:-3}
exec python3 - "$@" <<'EOF'
import http.client, json, multiprocessing, os, random, shutil, signal, socket, statistics
import subprocess, sys, tempfile, time

WINDOW_MS, BATCH, SPREAD_MS, PAUSE_S = 120000, 10000, 30000, 2.5
QS = "0.01,0.1,0.5,0.9,0.99"
servers, names = [], {}
for a in sys.argv[1:]:  # PATH or NAME=PATH
    name, _, path = a.rpartition("=")
    servers.append(path)
    names[path] = name or path
rows = []
for r in os.environ["ROWS"].split():
    f = r.split(":")
    rows.append((int(f[0]), f[1], int(f[2]) if len(f) > 2 else 0))
rounds = int(os.environ["ROUNDS"])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status_mib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def get(port, path, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def start(server, port, data, listable, log):
    args = [server, "--listen", "127.0.0.1:%d" % port, "--data-dir", data,
            "--window-ms", str(WINDOW_MS), "--log-level", "warn"]
    if listable:
        args += ["--max-retained", str(listable)]
    return subprocess.Popen(args, stdout=log, stderr=log)


def until_serving(p, port):
    """Seconds from now until the first 200 on GET /statistics; the VmHWM then."""
    t0 = time.monotonic()
    while True:
        if p.poll() is not None:
            sys.exit("restart.sh: the server exited with %s" % p.returncode)
        try:
            st, body = get(port, "/statistics", timeout=30)
            if st == 200:
                return time.monotonic() - t0, status_mib(p.pid, "VmHWM"), body
        except OSError:
            pass
        time.sleep(0.002)


def poster(args):
    port, n, part, parts, seed = args
    rnd = random.Random(seed)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for start_i in range(part * BATCH, n, parts * BATCH):
        k = min(BATCH, n - start_i)
        now = int(time.time() * 1000)
        lines = []
        for _ in range(k):
            a = rnd.randrange(1, 10000001)  # cents: 0.01 .. 100,000.00
            lines.append('{"amount":"%d.%02d","timestamp":%d}'
                         % (a // 100, a % 100, now - rnd.randrange(SPREAD_MS)))
        c.request("POST", "/transactions/batch", "\n".join(lines) + "\n",
                  {"Content-Type": "application/x-ndjson"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or b'"stored":%d,' % k not in body:
            return "batch at %d: %d %s" % (start_i, r.status, body[:200])
    return None


def fill(port, n, seed):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for err in pool.map(poster, [(port, n, i, 2, seed * 2 + i) for i in range(2)]):
            if err:
                sys.exit("restart.sh: " + err)


def one(server, n, stop, listable, seed):
    work = tempfile.mkdtemp(prefix="txstats-restart-")
    data, port = os.path.join(work, "data"), free_port()
    log = open(os.path.join(work, "server.log"), "ab")
    p = start(server, port, data, listable, log)
    try:
        until_serving(p, port)
        t0 = time.monotonic()
        fill(port, n, seed)
        fill_s = time.monotonic() - t0
        time.sleep(PAUSE_S)
        _, stats0 = get(port, "/statistics")
        _, dist0 = get(port, "/statistics/distribution?q=" + QS)
        rss0 = status_mib(p.pid, "VmRSS")
        s0 = json.loads(stats0)
        if s0["count"] != n:
            sys.exit("restart.sh: %d transactions in the window, not %d" % (s0["count"], n))
        t0 = time.monotonic()
        p.send_signal(signal.SIGKILL if stop == "kill" else signal.SIGTERM)
        p.wait()
        stop_s = time.monotonic() - t0
        p = start(server, port, data, listable, log)
        serve_s, hwm, stats1 = until_serving(p, port)
        _, dist1 = get(port, "/statistics/distribution?q=" + QS)
        s1 = json.loads(stats1)
        keys = ("count", "sum", "avg", "max", "min")
        return {
            "fill_s": fill_s, "stop_s": stop_s, "serve_s": serve_s, "rss0": rss0, "hwm": hwm,
            "stats_equal": all(s0[k] == s1[k] for k in keys),
            "stats": (s0, s1), "dist": (json.loads(dist0), json.loads(dist1)),
            "dist_equal": dist0 == dist1,
        }
    finally:
        p.kill()
        p.wait()
        log.close()
        shutil.copy(os.path.join(work, "server.log"), "/tmp/restart-server.log")
        shutil.rmtree(work, ignore_errors=True)


def label(server):
    return names[server]


results = {}
print("restart.sh: --window-ms %d, batches of %d, timestamps over the last %d s, %.1f s pause, "
      "%d round(s)" % (WINDOW_MS, BATCH, SPREAD_MS // 1000, PAUSE_S, rounds), flush=True)
for (n, stop, listable) in rows:
    for r in range(rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            res = one(server, n, stop, listable, r)
            results.setdefault((n, stop, listable, server), []).append(res)
            print("  %s N=%d %s%s round %d: filled in %.1f s; stopped in %.2f s; serving again "
                  "after %.3f s; statistics %s; distribution %s; RSS before %.1f MiB, peak while "
                  "recovering %.1f MiB (%.2fx)"
                  % (label(server), n, stop, " max-retained %d" % listable if listable else "",
                     r + 1, res["fill_s"], res["stop_s"], res["serve_s"],
                     "equal" if res["stats_equal"] else "DIFFER %s -> %s" % res["stats"],
                     "equal" if res["dist_equal"] else "differ", res["rss0"], res["hwm"],
                     res["hwm"] / res["rss0"]), flush=True)

med = statistics.median
print()
print("| server | N | stop | serving again after | count, sum, avg, max, min "
      "| quantiles and histogram "
      "| RSS before the stop | peak RSS while recovering | bound 1.15x + 8 MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for (n, stop, listable) in rows:
    for server in servers:
        rs = results[(n, stop, listable, server)]
        rss0, hwm = med([x["rss0"] for x in rs]), med([x["hwm"] for x in rs])
        print("| %s | %s%s | %s | %.2f s | %s | %s | %.1f MiB | %.1f MiB (%.2fx) | %s |"
              % (label(server), format(n, ","),
                 ", `--max-retained %d`" % listable if listable else "",
                 "`kill -9`" if stop == "kill" else "SIGTERM", med([x["serve_s"] for x in rs]),
                 "equal" if all(x["stats_equal"] for x in rs) else "**differ**",
                 "equal" if all(x["dist_equal"] for x in rs) else "**differ**", rss0, hwm,
                 hwm / rss0, "met" if hwm <= 1.15 * rss0 + 8 else "**missed**"))
for (n, stop, listable) in rows:
    if listable:
        continue
    print()
    print("`GET /statistics/distribution?q=%s`, N = %s, %s, first round: before -> after"
          % (QS, format(n, ","), "kill -9" if stop == "kill" else "SIGTERM"))
    print()
    print("| q | " + " | ".join("%s before | after" % label(s) for s in servers) + " |")
    print("|---|" + "---|---|" * len(servers))
    first = [results[(n, stop, listable, s)][0]["dist"] for s in servers]
    for q in QS.split(","):
        cells = []
        for d0, d1 in first:
            a, b = d0["quantiles"][q], d1["quantiles"][q]
            ch = (float(b.replace(",", "")) / float(a.replace(",", "")) - 1) * 100
            cells += [a, b + ("" if a == b else " (%+.1f %%)" % ch)]
        print("| %s | %s |" % (q, " | ".join(cells)))
EOF
