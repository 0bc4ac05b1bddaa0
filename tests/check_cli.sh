#!/bin/sh
# The command line: txstats-server(1) and --help list the same options and environment variables;
# -V works; bad --listen values and bad --window-ms lists exit 2 before the data directory is
# created; I/O failures at start are explained in plain words.
# usage: check_cli.sh PATH-TO-txstats-server PATH-TO-txstats-server.1
set -eu
bin="$1"; man="$2"
work=$(mktemp -d /tmp/txstats-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== the man page and --help agree"
"$bin" --help >"$work/help"
grep -o -- '--[a-z][a-z-]*' "$work/help" | sort -u >"$work/help-opts"
sed -n 's/^\.BI\{0,1\} "\{0,1\}\(\\-\\-[a-z\\-]*\).*/\1/p' "$man" | sed 's/\\-/-/g' | sort -u >"$work/man-opts"
grep -o '^\.B \\-h, \\-\\-help' "$man" >/dev/null || fail "the man page lacks -h, --help"
grep -o '^\.B \\-V, \\-\\-version' "$man" >/dev/null || fail "the man page lacks -V, --version"
printf '%s\n' --help --version >>"$work/man-opts"
sort -u -o "$work/man-opts" "$work/man-opts"
diff "$work/help-opts" "$work/man-opts" || fail "options differ (< --help, > man page)"
grep -o 'TXSTATS_[A-Z_]*' "$work/help" | sort -u >"$work/help-env"
sed -n 's/^\.BI\{0,1\} \(TXSTATS_[A-Z_]*\)\( KEY\)\{0,1\}$/\1/p' "$man" | sort -u >"$work/man-env"
diff "$work/help-env" "$work/man-env" || fail "environment variables differ (< --help, > man page)"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT SIGNALS "EXIT STATUS" FILES; do
    grep -q "^\.SH $section\$" "$man" || fail "the man page has no $section section"
done
grep -q -- '--listen ADDR:PORT' "$work/help" || fail "--help shows no value placeholders"
if command -v groff >/dev/null; then # roff warnings (bad escapes, unknown requests)
    groff -man -Tutf8 -ww -z "$man" >"$work/groff" 2>&1
    [ ! -s "$work/groff" ] || fail "groff: $(cat "$work/groff")"
fi
echo "$(wc -l <"$work/help-opts") options, $(wc -l <"$work/help-env") variables: ok"

echo "== -V"
"$bin" -V | grep -q '^txstats-server [0-9]' || fail "-V"

echo "== bad --listen: exit 2, nothing on disk"
for bad in 127.0.0.1:99999 nothost:8080 :8081 127.0.0.1: 127.0.0.1:80x; do
    rc=0
    "$bin" --listen "$bad" --data-dir "$work/data" 2>"$work/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "--listen $bad: exit $rc, not 2"
    grep -q -- "--listen $bad: " "$work/err" || fail "--listen $bad: $(cat "$work/err")"
    [ ! -e "$work/data" ] || fail "--listen $bad created the data directory"
done

echo "== bad --window-ms lists: exit 2, nothing on disk (every form: tests/test_spans_http.c)"
grep -q -- '--window-ms SPANS .*60s,5m,1h,24h' "$work/help" || fail "--help does not show the spans"
for bad in "60s,,5m" 0 1m,60000 1,2,3,4,5,6,7,8,9 32d 5min 99999999999999999999; do
    rc=0
    "$bin" --window-ms "$bad" --listen 127.0.0.1:0 --data-dir "$work/data" 2>"$work/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "--window-ms $bad: exit $rc, not 2"
    grep -q -- "--window-ms '$bad': " "$work/err" || fail "--window-ms $bad: $(cat "$work/err")"
    [ ! -e "$work/data" ] || fail "--window-ms $bad created the data directory"
done

echo "== start-up failures in plain words"
: >"$work/file"
rc=0
"$bin" --listen 127.0.0.1:0 --data-dir "$work/file" 2>"$work/err" || rc=$?
cat "$work/err"
[ "$rc" -eq 1 ] || fail "a data directory that is a file: exit $rc"
grep -q "is a file and not a directory" "$work/err" || fail "no plain reason for a file"
# An unwritable parent: as an ordinary user, or as nobody when run as root (root writes anywhere).
as_user=""
[ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
    as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"
if [ "$(id -u)" -ne 0 ] || [ -n "$as_user" ]; then
    chmod 755 "$work" && mkdir -m 555 "$work/ro"
    rc=0
    $as_user "$bin" --listen 127.0.0.1:0 --data-dir "$work/ro/data" 2>"$work/err" || rc=$?
    cat "$work/err"
    [ "$rc" -eq 1 ] || fail "an unwritable data directory: exit $rc"
    grep -q "permission denied: the user running the server may not write there" "$work/err" ||
        fail "no plain reason for an unwritable directory"
fi
if grep -q "input/output error" "$work/err"; then fail "a terse library error text"; fi

echo "== no admin token: a warning at start, none with one"
# $1: "warn" or "quiet"; the rest: the environment for the server.
token_warning() {
    want="$1"; shift
    rm -rf "$work/tok" && mkdir "$work/tok"
    env "$@" "$bin" --listen 127.0.0.1:0 --data-dir "$work/tok/data" \
        --port-file "$work/tok/port" 2>"$work/tok/err" &
    pid=$!
    i=0
    while [ ! -s "$work/tok/port" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done
    kill -TERM "$pid"
    wait "$pid" || fail "the server exited $? ($(cat "$work/tok/err"))"
    if grep -q "no admin token.*may DELETE all transactions" "$work/tok/err"; then
        [ "$want" = warn ] || fail "a warning although a token is set: $(cat "$work/tok/err")"
    else
        [ "$want" = quiet ] || fail "no warning without a token: $(cat "$work/tok/err")"
    fi
}
token_warning warn -u TXSTATS_ADMIN_TOKEN -u TXSTATS_ADMIN_TOKEN_FILE
grep "no admin token" "$work/tok/err"
token_warning quiet TXSTATS_ADMIN_TOKEN=correct-horse-battery
echo "cli: ok"
