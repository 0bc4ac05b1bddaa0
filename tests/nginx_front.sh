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
"$bin" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" --log-level warn &
spid=$!
for i in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
front=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/tmp"
{
    echo "worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log warn; daemon off;"
    echo "events { worker_connections 1024; }"
    echo "http { access_log off; client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;"
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
exit $fail
