#!/bin/sh
# docs/nginx-front.conf in front of the real server: a chunk extension (which civetweb 1.15
# alone refuses) is stored, HEAD and the limits pass through. Exit 77 (skipped) without nginx.
# usage: nginx_front.sh SERVER_BIN SOURCE_DIR
set -u
bin="$1"; src="$2"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] && command -v curl >/dev/null || { echo "nginx or curl missing: skipped"; exit 77; }
dir=$(mktemp -d /tmp/txstats-nginx-XXXXXX)
spid=""; npid=""
cleanup() { [ -n "$npid" ] && kill "$npid"; [ -n "$spid" ] && kill "$spid"; wait; rm -rf "$dir"; }
trap cleanup EXIT
"$bin" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" --log-level warn \
    --access-log "$dir/server-access.log" &
spid=$!
for i in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
front=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/tmp"
{
    echo "worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log warn; daemon off;"
    echo "events { worker_connections 1024; }"
    echo "http { log_format fw '\$upstream_status'; access_log $dir/nginx-access.log fw; client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;"
    echo "fastcgi_temp_path $dir/tmp/f; uwsgi_temp_path $dir/tmp/u; scgi_temp_path $dir/tmp/s;"
    sed -e "s/127.0.0.1:8080;/127.0.0.1:$port;/" -e "s/listen 127.0.0.1:8081;/listen 127.0.0.1:$front;/" \
        "$src/docs/nginx-front.conf"
    echo "}"
} > "$dir/nginx.conf"
"$NGINX" -c "$dir/nginx.conf" -p "$dir" &
npid=$!
for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$front/healthz" && break; sleep 0.05; done
fail=0
check() { # name want got
    if [ "$2" = "$3" ]; then echo "ok: $1 ($3)"; else echo "FAILED: $1: got $3, want $2"; fail=1; fi
}
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
body="{\"amount\":\"7\",\"timestamp\":\"$now\"}"
ext=$(printf 'POST /transactions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x;x=1\r\n%s\r\n0\r\n\r\n' ${#body} "$body" |
    python3 -c "import sys,socket; s=socket.create_connection(('127.0.0.1',$front)); s.sendall(sys.stdin.buffer.read()); print(s.recv(100).split(b' ')[1].decode())")
check "chunk extension through nginx" 201 "$ext"
check "HEAD /statistics" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$front/statistics")"
check "statistics count" '"count":1}' "$(curl -s "http://127.0.0.1:$front/statistics" | grep -o '"count":[0-9]*}')"
big=$(head -c 70000 /dev/zero | tr '\0' '[' | curl -s -o /dev/null -w '%{http_code}' --data-binary @- "http://127.0.0.1:$front/transactions")
check "70,000-byte body" 413 "$big"
# The smuggling table (issue 26) through the front: the server runs exactly the requests nginx
# forwarded (one line in the server's access log per upstream status in nginx's log).
python3 - "$front" "$port" "$dir" "$src/tests/smuggling/cases.txt" <<'PY' || fail=1
import datetime, re, socket, sys, time
front, port, d, cases = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def forwarded():
    return sum(1 for l in open(f"{d}/nginx-access.log") if l.strip() not in ("", "-"))
def ran():
    return sum(1 for _ in open(f"{d}/server-access.log"))
def count():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /statistics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    out = b""
    while (x := s.recv(4096)):
        out += x
    return int(re.search(rb'"count":(\d+)', out).group(1))
def smuggled():
    ts = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    b = '{"amount":"50.00","timestamp":"%s"}' % ts
    return "POST /transactions HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
def expand(row, S):
    row = re.sub(r"\{F:(\d+)\}", lambda m: "".join("X-Filler-%d: %d\\r\\n" % (i, i) for i in range(int(m.group(1)))), row)
    row = row.replace("{S}", S.replace("\r\n", "\\r\\n")).replace("{L}", str(len(S))).replace("{C}", str(len(S) + 5))
    return row.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").encode("latin1")
bad = 0
for line in open(cases):
    if line.startswith("#") or "|" not in line:
        continue
    name, _, row = line.rstrip("\n").split("|", 2)
    c0 = count()
    time.sleep(0.05)
    f0, r0 = forwarded(), ran()
    s = socket.create_connection(("127.0.0.1", front))
    s.sendall(expand(row, smuggled()))
    s.settimeout(0.5)  # nginx keeps the client connection open after a forwarded request
    out = b""
    try:
        while (x := s.recv(65536)):
            out += x
    except OSError:
        pass
    s.close()
    time.sleep(0.1)
    f1, r1, c1 = forwarded(), ran(), count()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", out)
    ok = (r1 - r0) == (f1 - f0)
    bad += not ok
    print("%s: %-26s nginx %s, forwarded %d, server ran %d, count %d->%d" % ("ok" if ok else "FAILED", name, b",".join(statuses).decode(), f1 - f0, r1 - r0, c0, c1))
sys.exit(1 if bad else 0)
PY
exit $fail
