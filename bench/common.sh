# SPDX-License-Identifier: MIT
# Sourced by the bench scripts. wrk_summary reads wrk --latency output on stdin and prints
# "req/s p50_ms p99_ms errors" (errors: wrk's Non-2xx and socket error lines, or "none").
wrk_summary() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; return v * 1000 }
         /Requests\/sec/ {r = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
         /Non-2xx|Socket errors/ {e = e $0 "; "}
         END {printf "%s %.2f %.2f %s\n", r, p50, p99, e == "" ? "none" : e}'
}
# median: the middle of the numbers on stdin, one a line (the lower middle of an even count).
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
