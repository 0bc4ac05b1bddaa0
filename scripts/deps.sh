#!/bin/sh
# Install the Debian packages libtxstats needs, only those missing. Idempotent.
set -eu
# usage: deps.sh [test|fuzz|bench|live|deb]
#   (none): what building and running need; test: cmocka and python3 (unit, integration and
#   architecture tests);
#   fuzz: clang and libFuzzer; bench: wrk, nginx, gnuplot; live: chromium, promtool, node/npm;
#   deb: CPack's Debian generator needs dpkg (and the package test apt-get, systemd-analyze)
PKGS="gcc make cmake pkg-config libcjson-dev libcivetweb-dev librdkafka-dev libsodium-dev zlib1g-dev"
# test: systemd-analyze checks the unit; nginx-light and curl: tests/nginx_front.sh, the
# reverse-proxy front of docs/nginx-front.conf
[ "${1:-}" = test ] && PKGS="$PKGS libcmocka-dev python3 systemd nginx-light curl"
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-14-dev"
[ "${1:-}" = live ] && PKGS="$PKGS chromium prometheus curl"
[ "${1:-}" = live ] && ! command -v npm >/dev/null && PKGS="$PKGS nodejs npm"
[ "${1:-}" = bench ] && PKGS="$PKGS wrk nginx-light gnuplot-nox util-linux procps curl python3"
[ "${1:-}" = deb ] && PKGS="$PKGS dpkg apt systemd"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
