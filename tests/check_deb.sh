#!/bin/sh
# The Debian packages, end to end: build them (scripts/deb.sh), install them with apt-get on this
# machine, run /usr/bin/txstats-server --version, check the man page, the unit (systemd-analyze
# verify when available) and openapi.json, build examples/basic.c with `pkg-config libtxstats`
# against /usr, then remove the packages again. Needs root, dpkg and apt-get; exits 77 (skipped)
# without them, and refuses to touch a machine where the packages are already installed.
# usage: check_deb.sh SOURCE_DIR WORK_DIR
set -eu
src="$1"; work="$2"
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || skip "needs dpkg and apt-get"
for p in libtxstats0.3 libtxstats-dev txstats-server; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        skip "$p is already installed on this machine; not touching it"
    fi
done

rm -rf "$work"
"$src/scripts/deb.sh" "$work/build"
installed=""
cleanup() {
    [ -n "$installed" ] && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq \
        txstats-server libtxstats-dev libtxstats0.3 >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
installed=yes
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$work"/build/*.deb >/dev/null
dpkg -l libtxstats0.3 libtxstats-dev txstats-server | grep '^ii'

echo "== /usr/bin/txstats-server"
/usr/bin/txstats-server --version
/usr/bin/txstats-server --listen :1 >/dev/null 2>&1 && exit 1 || [ $? -eq 2 ]
for f in /usr/share/man/man1/txstats-server.1 /usr/share/txstats/openapi.json \
         /usr/lib/systemd/system/txstats-server.service /etc/default/txstats-server; do
    [ -s "$f" ] || { echo "missing: $f"; exit 1; }
done
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /usr/lib/systemd/system/txstats-server.service
    echo "systemd-analyze verify: ok"
    # The hardening, scored offline: exposure 0 (locked down) to 10; at most 2 ("OK") passes.
    systemd-analyze security --offline=true --threshold=20 \
        /usr/lib/systemd/system/txstats-server.service >"$work/security" ||
        { cat "$work/security"; echo "the unit's exposure is above 2.0"; exit 1; }
    tail -1 "$work/security"
fi

echo "== examples/basic.c with pkg-config libtxstats against /usr"
mkdir -p "$work/example"
cc -O2 -Wall -Wextra -Werror $(pkg-config --cflags libtxstats) -o "$work/example/basic" \
    "$src/examples/basic.c" $(pkg-config --libs libtxstats)
"$work/example/basic"
pkg-config --static --libs libtxstats | grep -q -- -lcjson

echo "== removal"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq txstats-server libtxstats-dev libtxstats0.3 >/dev/null
installed=""
[ ! -e /usr/bin/txstats-server ] && [ -z "$(find /usr/lib -name 'libtxstats.so*' | head -1)" ]
echo "deb packages: ok"
