#!/bin/sh
# librdkafka properties passed through (--kafka-property, --kafka-properties-file,
# TXSTATS_KAFKA_PROPERTY_<KEY>; server/kafka_conf.c): every bad one exits 2 at start, before
# anything connects, with librdkafka's own text and where it came from; no secret is ever printed.
# Then a node with valid properties (a secret among them) serves against the mock cluster.
# usage: check_kafka_props.sh PATH-TO-txstats-server PATH-TO-kafka_mock
set -eu
bin="$1"; mock="$2"
work=$(mktemp -d /tmp/txstats-props-XXXXXX)
mock_pid=""; pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    exec 3>&- 2>/dev/null || true # the mock exits at the end of its input
    [ -z "$mock_pid" ] || wait "$mock_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

printf '# comment\n\n! also a comment\njust words\n' >"$work/bad.properties"
printf 'acks = 1\n' >"$work/protected.properties"
printf 'socket.keepalive.enable=true\n  foo.bar = 1\n' >"$work/unknown.properties"
printf 'sasl.password=hunter2\nssl.key.password hunter2\n' >"$work/nosep.properties"
printf 'sasl.password: hunter2=x\n' >"$work/colon.properties"

echo "== refused at start: exit 2, the reason, no secret, nothing connects"
# expected text | environment (one VAR=VALUE or empty) | arguments ('hunter2' is the secret)
while IFS='|' read -r want env args; do
    [ -n "$want" ] || continue
    rc=0
    # shellcheck disable=SC2086 # the arguments are words
    env $env timeout 10 "$bin" --kafka-brokers 127.0.0.1:1 --listen 127.0.0.1:0 \
        --data-dir "$work/data" $args 2>"$work/err" >/dev/null || rc=$?
    [ "$rc" -eq 2 ] || fail "$env $args: exit $rc, not 2: $(cat "$work/err")"
    grep -qF -- "$want" "$work/err" || fail "$env $args: wanted '$want', got: $(cat "$work/err")"
    if grep -q hunter2 "$work/err"; then fail "$env $args printed the secret"; fi
    if grep -q 'Connect to' "$work/err"; then fail "$env $args: it connected first"; fi
    [ ! -e "$work/data" ] || fail "$env $args created the data directory"
    echo "ok: $env $args -> $(cat "$work/err")"
done <<EOF
--kafka-property foo.bar: No such configuration property: "foo.bar"||--kafka-property foo.bar=1
Expected bool value for "socket.keepalive.enable"||--kafka-property socket.keepalive.enable=maybe
value -5 is outside allowed range||--kafka-property linger.ms=-5
Invalid value "SASL_SSLX" for configuration property "security.protocol"||--kafka-property security.protocol=SASL_SSLX
--kafka-property: expected KEY=VALUE||--kafka-property foo.bar
--kafka-property: expected KEY=VALUE||--kafka-property =1
--kafka-property bootstrap.servers: refused, txstats-server sets it: use --kafka-brokers||--kafka-property bootstrap.servers=10.0.0.1:9092
refused, txstats-server sets it: use --kafka-brokers||--kafka-property metadata.broker.list=10.0.0.1:9092
--kafka-property acks: refused||--kafka-property acks=1
--kafka-property request.required.acks: refused||--kafka-property request.required.acks=1
--kafka-property enable.idempotence: refused||--kafka-property enable.idempotence=false
--kafka-property transactional.id: refused||--kafka-property transactional.id=t
use --kafka-timeout-ms||--kafka-property message.timeout.ms=100
--kafka-property group.id: refused||--kafka-property group.id=shared
--kafka-property enable.auto.commit: refused||--kafka-property enable.auto.commit=true
--kafka-property auto.offset.reset: refused||--kafka-property auto.offset.reset=latest
--kafka-property enable.partition.eof: refused||--kafka-property enable.partition.eof=false
callbacks are the server's own||--kafka-property dr_msg_cb=0x1
or in the environment variable TXSTATS_KAFKA_PROPERTY_SASL_PASSWORD||--kafka-property sasl.password=hunter2
TXSTATS_KAFKA_PROPERTY_SSL_KEY_PASSWORD||--kafka-property ssl.key.password=hunter2
TXSTATS_KAFKA_PROPERTY_SASL_OAUTHBEARER_CLIENT_SECRET||--kafka-property sasl.oauthbearer.client.secret=hunter2
a secret is never taken from the command line||--kafka-property ssl.key.pem=hunter2
\`max.in.flight\` must be set <= 5 when \`enable.idempotence\` is true||--kafka-property max.in.flight.requests.per.connection=10
sasl.username and sasl.password must be set||--kafka-property security.protocol=SASL_SSL --kafka-property sasl.mechanism=SCRAM-SHA-512
ssl.ca.location failed||--kafka-property security.protocol=SSL --kafka-property ssl.ca.location=$work/no-ca.pem
--kafka-properties-file $work/missing.properties: No such file or directory||--kafka-properties-file $work/missing.properties
$work/bad.properties:4: expected key=value||--kafka-properties-file $work/bad.properties
$work/protected.properties:1: refused, txstats-server sets it||--kafka-properties-file $work/protected.properties
$work/unknown.properties:2: No such configuration property: "foo.bar"||--kafka-properties-file $work/unknown.properties
$work/nosep.properties:2: expected key=value||--kafka-properties-file $work/nosep.properties
$work/colon.properties:1: expected key=value (a key has no blank||--kafka-properties-file $work/colon.properties
$work/missing.properties: No such file or directory|TXSTATS_KAFKA_PROPERTIES_FILE=$work/missing.properties|
TXSTATS_KAFKA_PROPERTY_FOO_BAR: No such configuration property: "foo.bar"|TXSTATS_KAFKA_PROPERTY_FOO_BAR=1|
TXSTATS_KAFKA_PROPERTY_LOG__LEVEL: Configuration property "log_level" value 99|TXSTATS_KAFKA_PROPERTY_LOG__LEVEL=99|
TXSTATS_KAFKA_PROPERTY_ENABLE_IDEMPOTENCE: refused|TXSTATS_KAFKA_PROPERTY_ENABLE_IDEMPOTENCE=false|
not in PEM format|TXSTATS_KAFKA_PROPERTY_SSL_KEY_PEM=hunter2|--kafka-property security.protocol=SSL
EOF

echo "== valid properties, a secret among them: the node serves and prints no secret"
# Later sources win: the file's max.in.flight (too many for the idempotent producer) is replaced
# by the environment's, the environment's security.protocol (SASL without a login) by the
# command line's; each alone would exit 2.
printf '# the secret lives here\n  socket.keepalive.enable = true  \nsasl.password=hunter2\n%s\n' \
    'max.in.flight.requests.per.connection = 10' >"$work/node.properties"
mkfifo "$work/mock-in"
"$mock" transactions <"$work/mock-in" >"$work/mock-out" &
mock_pid=$!
exec 3>"$work/mock-in"
for _ in $(seq 100); do [ -s "$work/mock-out" ] && break; sleep 0.05; done
brokers=$(head -n 1 "$work/mock-out")
[ -n "$brokers" ] || fail "the mock cluster did not start"
TXSTATS_KAFKA_PROPERTY_SSL_KEY_PASSWORD=hunter2 \
    TXSTATS_KAFKA_PROPERTY_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION=5 \
    TXSTATS_KAFKA_PROPERTY_SECURITY_PROTOCOL=SASL_SSL \
    "$bin" --kafka-brokers "$brokers" --listen 127.0.0.1:0 --port-file "$work/port" \
    --data-dir "$work/data" \
    --log-level debug --kafka-properties-file "$work/node.properties" \
    --kafka-property security.protocol=PLAINTEXT --kafka-property linger.ms=1 \
    --kafka-property socket.keepalive.enable=true 2>"$work/node-err" &
pid=$!
for _ in $(seq 300); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || fail "the node did not start: $(cat "$work/node-err")"
base="http://127.0.0.1:$(cat "$work/port")"
for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && break
    sleep 0.05
done
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/transactions" \
    -d "{\"amount\":\"1.50\",\"timestamp\":\"$now\"}")
[ "$code" = 201 ] || fail "POST: $code: $(cat "$work/node-err")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "the node exited with $rc: $(cat "$work/node-err")"
if grep -q hunter2 "$work/node-err"; then fail "the node printed the secret"; fi
echo "kafka properties: ok"
