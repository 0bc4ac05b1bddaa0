/* SPDX-License-Identifier: MIT */
/*
 * librdkafka settings of cluster mode: the backend's own, then the operator's (kafka_conf.h).
 *
 * Every property goes through rd_kafka_conf_set(), whose result decides (RD_KAFKA_CONF_UNKNOWN,
 * RD_KAFKA_CONF_INVALID: librdkafka/rdkafka.h); its error text is passed on as it is. Its errstr
 * is only read when the result is not RD_KAFKA_CONF_OK: a topic-level property set on the global
 * configuration succeeds and leaves an earlier text there.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_conf.h"
#include "options.h"

extern char **environ;

#define ENV_PREFIX "TXSTATS_KAFKA_PROPERTY_"

/* What the backend's guarantees rest on (backend_kafka.c): refused from every source. The
 * aliases librdkafka accepts (CONFIGURATION.md) are listed too. */
static const char *const protected_keys[][2] = {
    {"bootstrap.servers", "use --kafka-brokers"},
    {"metadata.broker.list", "use --kafka-brokers"},
    {"enable.idempotence", "the producer is idempotent: a retried send is never written twice"},
    {"acks", "a 201 means every in-sync replica has the record (acks=all)"},
    {"request.required.acks", "a 201 means every in-sync replica has the record (acks=all)"},
    {"message.timeout.ms", "use --kafka-timeout-ms"},
    {"delivery.timeout.ms", "use --kafka-timeout-ms"},
    {"transactional.id", "the producer is idempotent, not transactional"},
    {"group.id", "every node reads every partition itself, in no consumer group"},
    {"enable.auto.commit", "no offset is committed: a node reads its window back at start"},
    {"auto.offset.reset", "a node seeks each partition itself and must not skip records"},
    {"enable.partition.eof", "a node is ready once it has read every partition to its end"},
};

/* Secret-bearing properties: never from the command line, where `ps` shows them to every user. */
static bool is_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || !strcmp(key, "ssl.key.pem") ||
           !strcmp(key, "sasl.oauthbearer.config");
}

static const char *protected_why(const char *key)
{
    size_t n = strlen(key);
    if (n > 3 && !strcmp(key + n - 3, "_cb")) /* dr_msg_cb, error_cb, ...: set in C, not text */
        return "callbacks are the server's own";
    for (size_t i = 0; i < sizeof(protected_keys) / sizeof(protected_keys[0]); i++)
        if (!strcmp(key, protected_keys[i][0]))
            return protected_keys[i][1];
    return NULL;
}

/* The environment variable that carries `key` (Confluent's Docker convention: '.' is '_', '_' is
 * "__", '-' is "___"; docs.confluent.io/platform/7.6/installation/docker/config-reference.html). */
static void env_name(const char *key, char *out, size_t n)
{
    size_t at = (size_t)snprintf(out, n, "%s", ENV_PREFIX);
    for (; *key && at + 4 < n; key++) {
        const char *s = *key == '.' ? "_" : *key == '_' ? "__" : *key == '-' ? "___" : NULL;
        if (s)
            at += (size_t)snprintf(out + at, n - at, "%s", s);
        else
            out[at++] = (char)toupper((unsigned char)*key);
    }
    out[at < n ? at : n - 1] = '\0';
}

/* The other way: TXSTATS_KAFKA_PROPERTY_SASL_PASSWORD is sasl.password. */
static void env_key(const char *name, char *out, size_t n)
{
    size_t at = 0;
    while (*name && *name != '=' && at + 1 < n) {
        if (!strncmp(name, "___", 3) || !strncmp(name, "__", 2) || *name == '_') {
            size_t run = !strncmp(name, "___", 3) ? 3 : !strncmp(name, "__", 2) ? 2 : 1;
            out[at++] = run == 3 ? '-' : run == 2 ? '_' : '.';
            name += run;
        } else {
            out[at++] = (char)tolower((unsigned char)*name++);
        }
    }
    out[at] = '\0';
}

/* librdkafka's text without its trailing newline, and without the value when it is a secret. */
static void put_reason(char *err, size_t errn, const char *from, const char *key, const char *value,
                       const char *why)
{
    char text[512];
    snprintf(text, sizeof(text), "%s", why);
    text[strcspn(text, "\r\n")] = '\0';
    char *v = is_secret(key) && *value ? strstr(text, value) : NULL;
    if (v) /* from the first occurrence on: no part of it is shown */
        snprintf(v, sizeof(text) - (size_t)(v - text), "(redacted)");
    snprintf(err, errn, "%s: %s", from, text);
}

/* One property of the operator's, from `from` (a file:line, a variable, the command line). */
static int apply(rd_kafka_conf_t *c, const char *from, bool cmdline, const char *key,
                 const char *value, char *err, size_t errn)
{
    char why[512], var[300];
    const char *prot = protected_why(key);
    if (!*key) {
        snprintf(err, errn, "%s: expected KEY=VALUE", from);
        return -1;
    }
    if (prot) {
        snprintf(err, errn, "%s: refused, txstats-server sets it: %s", from, prot);
        return -1;
    }
    if (cmdline && is_secret(key)) {
        env_name(key, var, sizeof(var));
        snprintf(err, errn,
                 "%s: a secret is never taken from the command line (other users see it in ps): "
                 "put it in --kafka-properties-file or in the environment variable %s",
                 from, var);
        return -1;
    }
    if (rd_kafka_conf_set(c, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        put_reason(err, errn, from, key, value, why);
        return -1;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line of the properties file: 0 (a property, a comment or blank), or -1 with err. */
static int apply_line(rd_kafka_conf_t *c, const char *from, char *line, char *err, size_t errn)
{
    char *s = trim(line);
    if (!*s || *s == '#' || *s == '!')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        snprintf(err, errn, "%s: expected key=value, a # comment or a blank line", from);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s);
    if (key[strcspn(key, " \t:")]) { /* Java's other separators: the rest may be a secret */
        snprintf(err, errn, "%s: expected key=value (a key has no blank and no ':')", from);
        return -1;
    }
    return apply(c, from, false, key, trim(eq + 1), err, errn);
}

/* The properties file, line by line: key=value; '#' or '!' starts a comment line; whitespace
 * around keys and values is dropped. Unlike Java's .properties, no escapes and no continuation
 * lines: a backslash is itself (passwords keep theirs). */
static int apply_file(rd_kafka_conf_t *c, const char *path, char *err, size_t errn)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errn, "--kafka-properties-file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], from[1100];
    int rc = 0;
    for (int n = 1; rc == 0 && fgets(line, sizeof(line), f); n++) {
        snprintf(from, sizeof(from), "%s:%d", path, n);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errn, "%s: line longer than %zu bytes", from, sizeof(line) - 2);
            rc = -1;
        } else {
            rc = apply_line(c, from, line, err, errn);
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errn, "--kafka-properties-file %s: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* TXSTATS_KAFKA_PROPERTY_<KEY>=VALUE variables. */
static int apply_env(rd_kafka_conf_t *c, char *err, size_t errn)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        char key[256], from[300];
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        snprintf(from, sizeof(from), "%.*s", (int)(eq - *e), *e);
        env_key(*e + strlen(ENV_PREFIX), key, sizeof(key));
        if (apply(c, from, false, key, eq + 1, err, errn) != 0)
            return -1;
    }
    return 0;
}

/* --kafka-property KEY=VALUE, in command-line order. */
static int apply_args(rd_kafka_conf_t *c, const struct srv_options *o, char *err, size_t errn)
{
    for (int i = 0; i < o->kafka_property.n; i++) {
        const char *kv = o->kafka_property.item[i], *eq = strchr(kv, '=');
        char key[256], from[300];
        snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - kv) : (int)strlen(kv), kv);
        snprintf(from, sizeof(from), "--kafka-property %s", key);
        if (!eq) {
            snprintf(err, errn, "%s: expected KEY=VALUE", from);
            return -1;
        }
        if (apply(c, from, true, key, eq + 1, err, errn) != 0)
            return -1;
    }
    return 0;
}

rd_kafka_conf_t *srv_kafka_conf_new(const struct srv_options *o, const char *const (*fixed)[2],
                                    size_t n_fixed, char *err, size_t errn)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char why[512];
    int rc = 0;
    for (size_t i = 0; i < n_fixed && rc == 0; i++) {
        if (rd_kafka_conf_set(c, fixed[i][0], fixed[i][1], why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            why[strcspn(why, "\r\n")] = '\0';
            snprintf(err, errn, "kafka configuration: %s: %s", fixed[i][0], why);
            rc = -1;
        }
    }
    if (rc == 0 && o->kafka_properties_file[0])
        rc = apply_file(c, o->kafka_properties_file, err, errn);
    if (rc == 0)
        rc = apply_env(c, err, errn);
    if (rc == 0)
        rc = apply_args(c, o, err, errn);
    if (rc != 0) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

int srv_kafka_conf_check(const struct srv_options *o, char *err, size_t errn)
{
    /* The producer settings that constrain others (backend_kafka.c): with them, librdkafka
     * refuses e.g. max.in.flight.requests.per.connection=10 at rd_kafka_new(). */
    static const char *const producer[][2] = {{"enable.idempotence", "true"}, {"acks", "all"}};
    const rd_kafka_type_t types[] = {RD_KAFKA_PRODUCER, RD_KAFKA_CONSUMER};
    for (int i = 0; i < 2; i++) {
        rd_kafka_conf_t *c =
            srv_kafka_conf_new(o, i == 0 ? producer : NULL, i == 0 ? 2 : 0, err, errn);
        if (!c)
            return 2;
        char why[512];
        rd_kafka_conf_set_log_cb(c, quiet); /* no brokers: librdkafka would warn about it */
        rd_kafka_t *rk = rd_kafka_new(types[i], c, why, sizeof(why));
        if (!rk) {
            rd_kafka_conf_destroy(c); /* rd_kafka_new() takes it only on success */
            why[strcspn(why, "\r\n")] = '\0';
            snprintf(err, errn, "kafka properties: %s", why);
            return 2;
        }
        rd_kafka_destroy(rk);
    }
    return 0;
}
