/* SPDX-License-Identifier: MIT */
/* Command-line options, each with an environment-variable twin; the command line wins. */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manpage.h"
#include "options.h"
#include <txstats/txstats.h>

/* LIST: repeatable, each value kept (struct srv_list); SPANS: a list of spans (spans.h) */
enum kind { INT, STR, CHOICE, LIST, SPANS };

struct opt {
    const char *name, *env, *arg; /* arg: the value's placeholder in --help and the man page */
    enum kind kind;
    size_t off, size;
    int64_t min, max;
    const char *def, *help;
    const char *const *choices; /* CHOICE: the value stored is the index */
};

static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const fsyncs[] = {"interval", "always", "never", NULL}; /* txstats_fsync_t */
static const char *const recovers[] = {"strict", "skip-corrupt", NULL};
static const char *const log_formats[] = {"text", "combined", "json", NULL}; /* srv_log_format */
static const char *const kafka_acks[] = {"kafka", "local", NULL};            /* srv_kafka_ack */

#define O(f) offsetof(struct srv_options, f), sizeof(((struct srv_options *)0)->f)

static const struct opt opts[] = {
    {"listen", "TXSTATS_LISTEN", "ADDR:PORT", STR, O(listen), 0, 0, "127.0.0.1:8080",
     "IPv4 address or host name, and port, to listen on; port 0 picks a free port", NULL},
    {"threads", "TXSTATS_THREADS", "N", INT, O(threads), 1, 4096, "256",
     "worker threads = connections served at once (civetweb: one per connection)", NULL},
    {"window-ms", "TXSTATS_WINDOW_MS", "SPANS", SPANS, O(spans), 0, 0, "60000",
     "the statistics windows: up to 8 distinct spans, comma-separated (60s,5m,1h,24h), each a "
     "number of milliseconds or a number with a unit, ms, s, m, h or d, at most 31d; the first "
     "is the default of every statistics route, ?window= names another",
     NULL},
    {"max-skew-ms", "TXSTATS_MAX_SKEW_MS", "MS", INT, O(max_skew_ms), 0, 3600000, "0",
     "accept timestamps this far ahead of the clock", NULL},
    {"max-retained", "TXSTATS_MAX_RETAINED", "N", INT, O(max_retained), 0, 100000000, "1048576",
     "transactions kept for GET /transactions (statistics stay exact beyond)", NULL},
    {"max-body-bytes", "TXSTATS_MAX_BODY_BYTES", "BYTES", INT, O(max_body_bytes), 64, 1 << 30,
     "65536", "largest accepted request body, and line of a batch (413 beyond)", NULL},
    {"max-batch", "TXSTATS_MAX_BATCH", "N", INT, O(max_batch), 1, 1000000, "10000",
     "most transactions (lines) in one POST /transactions/batch (413 beyond)", NULL},
    {"max-batch-bytes", "TXSTATS_MAX_BATCH_BYTES", "BYTES", INT, O(max_batch_bytes), 64, 1 << 30,
     "4194304", "largest POST /transactions/batch body (413 beyond)", NULL},
    {"max-idempotency-keys", "TXSTATS_MAX_IDEMPOTENCY_KEYS", "N", INT, O(max_idempotency_keys), 0,
     1 << 30, "1048576", "idempotency keys remembered at once (43 to 64 bytes each); 503 beyond",
     NULL},
    {"idempotency-ttl-ms", "TXSTATS_IDEMPOTENCY_TTL_MS", "MS", INT, O(idempotency_ttl_ms), 0,
     86400000, "0",
     "how long a key is kept after its transaction's timestamp (never less than the longest "
     "window plus the skew, which 0 means)",
     NULL},
    {"max-active-keys", "TXSTATS_MAX_ACTIVE_KEYS", "N", INT, O(max_active_keys), 0, 1 << 30,
     "1048576",
     "keys (the \"key\" member: per-key windows) with a transaction in the (longest) window at "
     "once; a transaction for a new key past it is 503, known keys keep working; 0: keys refused",
     NULL},
    {"data-dir", "TXSTATS_DATA_DIR", "DIR", STR, O(data_dir), 0, 0, "./txstats-data",
     "directory of the snapshot, the write-ahead journal and the lock file (created if missing)",
     NULL},
    {"save-interval-ms", "TXSTATS_SAVE_INTERVAL_MS", "MS", INT, O(save_interval_ms), 10, 86400000,
     "1000", "how often a checkpoint (snapshot) is written, and always at shutdown", NULL},
    {"admin-token-file", "TXSTATS_ADMIN_TOKEN_FILE", "FILE", STR, O(admin_token_file), 0, 0, "",
     "file holding the token DELETE requires (or set TXSTATS_ADMIN_TOKEN)", NULL},
    {"access-log", "TXSTATS_ACCESS_LOG", "FILE", STR, O(access_log), 0, 0, "",
     "append one line per request to this file ('-': stderr); empty: off", NULL},
    {"access-log-format", "TXSTATS_ACCESS_LOG_FORMAT", "FORMAT", CHOICE, O(access_log_format), 0, 0,
     "text", "text, combined (as nginx and Apache) or json (one object per line)", log_formats},
    {"log-level", "TXSTATS_LOG_LEVEL", "LEVEL", CHOICE, O(log_level), 0, 0, "info",
     "error, warn, info or debug", levels},
    {"fsync", "TXSTATS_FSYNC", "WHEN", CHOICE, O(fsync), 0, 0, "interval",
     "when journal records reach the disk: always (before each 201), interval, never", fsyncs},
    {"fsync-interval-ms", "TXSTATS_FSYNC_INTERVAL_MS", "MS", INT, O(fsync_interval_ms), 1, 60000,
     "100", "with --fsync interval: how often the journal is synced", NULL},
    {"recover", "TXSTATS_RECOVER", "MODE", CHOICE, O(recover), 0, 0, "strict",
     "a damaged journal record: stop (strict) or skip and count it (skip-corrupt)", recovers},
    {"request-timeout-ms", "TXSTATS_REQUEST_TIMEOUT_MS", "MS", INT, O(request_timeout_ms), 100,
     3600000, "10000", "time a client has to send a whole request", NULL},
    {"keep-alive-timeout-ms", "TXSTATS_KEEP_ALIVE_TIMEOUT_MS", "MS", INT, O(keep_alive_timeout_ms),
     0, 3600000, "2000", "how long an idle keep-alive connection may hold a thread", NULL},
    {"max-list", "TXSTATS_MAX_LIST", "N", INT, O(max_list), 0, 100000000, "1048576",
     "most transactions one GET /transactions returns", NULL},
    {"stream-interval-ms", "TXSTATS_STREAM_INTERVAL_MS", "MS", INT, O(stream_interval_ms), 100,
     60000, "1000", "how often GET /statistics/stream sends the statistics", NULL},
    {"max-streams", "TXSTATS_MAX_STREAMS", "N", INT, O(max_streams), -1, 1024, "-1",
     "most /statistics/stream clients at once (each holds a worker thread; at most half of "
     "--threads); 503 beyond; -1: min(16, threads/2)",
     NULL},
    {"stream-max-seconds", "TXSTATS_STREAM_MAX_SECONDS", "S", INT, O(stream_max_seconds), 1, 86400,
     "300", "a stream ends after this long (browsers reconnect by themselves)", NULL},
    {"kafka-brokers", "TXSTATS_KAFKA_BROKERS", "HOST:PORT,...", STR, O(kafka_brokers), 0, 0, "",
     "Kafka bootstrap brokers: cluster mode, every node serves the global window", NULL},
    {"kafka-topic", "TXSTATS_KAFKA_TOPIC", "TOPIC", STR, O(kafka_topic), 0, 0, "transactions",
     "the topic of cluster mode (it must exist)", NULL},
    {"kafka-timeout-ms", "TXSTATS_KAFKA_TIMEOUT_MS", "MS", INT, O(kafka_timeout_ms), 100, 300000,
     "5000",
     "how long a POST waits for Kafka to confirm it, 503 beyond (with --kafka-ack local: how long "
     "a keyed POST waits for this node to read it back, 503 beyond, and a DELETE at most)",
     NULL},
    {"kafka-checkpoint-interval-ms", "TXSTATS_KAFKA_CHECKPOINT_INTERVAL_MS", "MS", INT,
     O(kafka_checkpoint_interval_ms), 0, 86400000, "10000",
     "cluster mode: how often each partition's window is checkpointed in DATA_DIR/partitions "
     "(and at shutdown), so that a restart reads only what came after; 0: off",
     NULL},
    {"kafka-ack", "TXSTATS_KAFKA_ACK", "WHEN", CHOICE, O(kafka_ack), 0, 0, "kafka",
     "when a cluster POST gets its 201: once Kafka has it (kafka), or once this node's outbox "
     "journal in --data-dir has it (local; shipped to Kafka in order)",
     kafka_acks},
    {"kafka-properties-file", "TXSTATS_KAFKA_PROPERTIES_FILE", "FILE", STR,
     O(kafka_properties_file), 0, 0, "",
     "librdkafka properties for cluster mode (TLS, SASL, tuning), key=value lines; the place for "
     "secrets such as sasl.password",
     NULL},
    /* Its environment twin is a family: TXSTATS_KAFKA_PROPERTY_<KEY> (kafka_conf.c). */
    {"kafka-property", "TXSTATS_KAFKA_PROPERTY_", "KEY=VALUE", LIST, O(kafka_property), 0, 0, "",
     "one librdkafka property for cluster mode, after the file's; repeatable; no secrets (a "
     "name with password or secret in it, ssl.key.pem, sasl.oauthbearer.config)",
     NULL},
    {"port-file", "TXSTATS_PORT_FILE", "FILE", STR, O(port_file), 0, 0, "",
     "write the port actually bound to this file once listening (useful with port 0)", NULL},
};

/* A repeatable option's value; only KEY=VALUE ones exist, and the value is never echoed (it may
 * be a secret put there by mistake). */
static int add_item(struct srv_list *l, const struct opt *d, const char *v, const char *from)
{
    if (!strcmp(from, "default"))
        return 0; /* a list starts empty */
    if (l->n >= SRV_LIST_MAX) {
        fprintf(stderr, "txstats-server: %s: at most %d of them\n", from, SRV_LIST_MAX);
        return 2;
    }
    if (!strchr(v, '=') || *v == '=') {
        fprintf(stderr, "txstats-server: %s: expected %s\n", from, d->arg);
        return 2;
    }
    l->item[l->n++] = v;
    return 0;
}

/* --window-ms: the list of spans (spans.h). */
static int set_spans(struct srv_spans *spans, const char *v, const char *from)
{
    char why[256];
    if (srv_spans_parse(v, TXSTATS_MAX_SPAN_MS, spans, why, sizeof(why)) == 0)
        return 0;
    fprintf(stderr, "txstats-server: %s '%.80s': %s\n", from, v, why);
    return 2;
}

static int set(struct srv_options *o, const struct opt *d, const char *v, const char *from)
{
    char *field = (char *)o + d->off;
    if (d->kind == LIST)
        return add_item((struct srv_list *)(void *)field, d, v, from);
    if (d->kind == SPANS)
        return set_spans((struct srv_spans *)(void *)field, v, from);
    if (d->kind == STR) {
        if (strlen(v) >= d->size) {
            fprintf(stderr, "txstats-server: %s: value too long (at most %zu bytes)\n", from,
                    d->size - 1);
            return 2;
        }
        strcpy(field, v);
        return 0;
    }
    if (d->kind == CHOICE) {
        char list[128] = "";
        for (int i = 0; d->choices[i]; i++) {
            if (!strcmp(v, d->choices[i])) {
                *(int *)field = i;
                return 0;
            }
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     d->choices[i]);
        }
        fprintf(stderr, "txstats-server: %s: expected one of %s, got '%s'\n", from, list, v);
        return 2;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < d->min || n > d->max) {
        fprintf(stderr, "txstats-server: %s: expected an integer from %lld to %lld, got '%s'\n",
                from, (long long)d->min, (long long)d->max, v);
        return 2;
    }
    if (d->size == sizeof(int))
        *(int *)field = (int)n;
    else
        *(int64_t *)field = n;
    return 0;
}

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void usage(FILE *f)
{
    fprintf(f, "Usage: txstats-server [OPTION]...\n"
               "Exact statistics of money transactions over a sliding window, over HTTP.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char head[64];
        snprintf(head, sizeof(head), "--%s %s", opts[i].name, opts[i].arg);
        if (opts[i].kind == LIST)
            fprintf(f, "  %-30s %s\n  %-30s (env %s<KEY>, see below)\n", head, opts[i].help, "",
                    opts[i].env);
        else
            fprintf(f, "  %-30s %s\n  %-30s (env %s, default '%s')\n", head, opts[i].help, "",
                    opts[i].env, opts[i].def);
    }
    fprintf(f, "  %-30s %s\n  %-30s %s\n\n", "-h, --help", "show this help and exit",
            "-V, --version", "show the version and exit");
    fprintf(f, "The admin token is read from --admin-token-file or TXSTATS_ADMIN_TOKEN, never "
               "from the command line.\nKafka properties: the file's, then TXSTATS_KAFKA_PROPERTY_"
               "<KEY> variables (KEY upper case, '.'\nas '_', '_' as '__': ..._SASL_PASSWORD is "
               "sasl.password), then --kafka-property; the last one wins.\nSIGTERM or SIGINT: "
               "finish requests in flight, write a "
               "checkpoint, exit.\nExit status: 0 after a clean shutdown, 1 on a runtime error, "
               "2 on bad options.\n");
}

/* Text for roff: '-' is a hyphen there, "\-" the minus sign options are written with. */
static void man_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '-' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* A repeatable option's environment twin: one variable per key (kafka_conf.c). */
static void man_env_family(FILE *f, const struct opt *d)
{
    fprintf(f, ".TP\n.BI %s KEY\nas \\fB", d->env);
    man_text(f, "--");
    man_text(f, d->name);
    fprintf(f,
            "\\fR KEY=VALUE, for every KEY: upper case, \\(aq.\\(aq written "
            "\\(aq_\\(aq, \\(aq_\\(aq written \\(aq__\\(aq (%sSASL_PASSWORD is "
            "sasl.password); applied after the properties file and before the command line. "
            "The way to pass a secret without a file.\n",
            d->env);
}

/* txstats-server(1), from the same table as --help, so the two cannot disagree. */
static void man_page(FILE *f)
{
    fprintf(f,
            ".TH TXSTATS\\-SERVER 1 \"\" \"txstats-server %s\" \"User Commands\"\n"
            ".SH NAME\ntxstats\\-server \\- exact sliding\\-window statistics of money "
            "transactions over HTTP\n.SH SYNOPSIS\n.B txstats\\-server\n[\\fIOPTION\\fR]...\n",
            txstats_version());
    fputs(srv_man_description, f);
    fprintf(f, ".SH OPTIONS\nEvery option has an environment twin; the command line wins.\n");
    for (size_t i = 0; i < NOPTS; i++) {
        fprintf(f, ".TP\n.BI \"");
        man_text(f, "--");
        man_text(f, opts[i].name);
        fprintf(f, " \" ");
        man_text(f, opts[i].arg);
        fprintf(f, "\n");
        man_text(f, opts[i].help);
        if (opts[i].kind == LIST) {
            fprintf(f, " (repeatable)\n");
            continue;
        }
        fprintf(f, " (default: \\(aq");
        man_text(f, opts[i].def);
        fprintf(f, "\\(aq)\n");
    }
    fprintf(f, ".TP\n.B \\-h, \\-\\-help\nshow the help and exit\n"
               ".TP\n.B \\-V, \\-\\-version\nshow the version and exit\n"
               ".SH ENVIRONMENT\n.TP\n.B TXSTATS_ADMIN_TOKEN\nthe admin token itself (at least 8 "
               "characters), when \\-\\-admin\\-token\\-file is not given\n");
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].kind == LIST) {
            man_env_family(f, &opts[i]);
            continue;
        }
        fprintf(f, ".TP\n.B ");
        man_text(f, opts[i].env);
        fprintf(f, "\nas \\fB");
        man_text(f, "--");
        man_text(f, opts[i].name);
        fprintf(f, "\\fR\n");
    }
    fputs(srv_man_trailer, f);
}

static const struct opt *find(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return &opts[i];
    return NULL;
}

static int parse_argv(int argc, char **argv, struct srv_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--man")) { /* undocumented: the build makes txstats-server.1 with it */
            man_page(stdout);
            return 1;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            printf("txstats-server %s\n", txstats_version());
            return 1;
        }
        const char *eq = strchr(a, '=');
        const struct opt *d =
            !strncmp(a, "--", 2) ? find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2)) : NULL;
        if (!d) {
            fprintf(stderr, "txstats-server: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "txstats-server: --%s needs a value\n", d->name);
            return 2;
        }
        char from[64];
        snprintf(from, sizeof(from), "--%s", d->name);
        if (set(o, d, v, from) != 0)
            return 2;
    }
    return 0;
}

/* --listen as civetweb takes it: [IPv6]:PORT, IPV4:PORT, HOSTNAME:PORT or PORT. Checked here so
 * that a bad value exits with 2 before anything touches the data directory. */
static int check_listen(const char *v)
{
    const char *colon = strrchr(v, ':'), *port = colon ? colon + 1 : v;
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    const char *why = NULL;
    if (!*port || *end || errno || p > 65535 || *port < '0' || *port > '9')
        why = "the port must be a number from 0 to 65535";
    else if (colon && colon == v)
        why = "the address before ':' is missing (e.g. 127.0.0.1:8080)";
    else if (colon && v[0] == '[')
        why = colon[-1] == ']' ? NULL : "an IPv6 address is written [ADDR]:PORT";
    else if (colon) {
        char host[128];
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - v), v);
        if (getaddrinfo(host, NULL, &hints, &res) != 0)
            why = "the address is neither an IPv4 address nor a known host name";
        else
            freeaddrinfo(res);
    }
    if (why)
        fprintf(stderr, "txstats-server: --listen %s: %s\n", v, why);
    return why ? 2 : 0;
}

int srv_parse_options(int argc, char **argv, struct srv_options *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < NOPTS; i++) {
        const char *env = opts[i].kind == LIST ? NULL : getenv(opts[i].env);
        if (set(o, &opts[i], opts[i].def, "default") != 0)
            return 2;
        if (env && set(o, &opts[i], env, opts[i].env) != 0)
            return 2;
    }
    int rc = parse_argv(argc, argv, o);
    if (rc == 0)
        rc = check_listen(o->listen);
    o->longest_ms = srv_spans_longest(&o->spans);
    if (rc == 0 && o->longest_ms + o->max_skew_ms > TXSTATS_MAX_SPAN_MS) {
        fprintf(stderr,
                "txstats-server: the longest --window-ms span + --max-skew-ms must not exceed "
                "%lld ms (31d)\n",
                (long long)TXSTATS_MAX_SPAN_MS);
        return 2;
    }
    return rc;
}
