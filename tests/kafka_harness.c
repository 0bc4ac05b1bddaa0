/* SPDX-License-Identifier: MIT */
/* Cluster-mode tests: the Kafka mock and requests to a node (kafka_harness.h). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <txstats/txstats.h>

#include "kafka_harness.h"

int kmock_start(struct kmock *m, const char *bin, const char *partitions)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    m->pid = fork();
    if (m->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(bin, bin, "transactions", partitions, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    m->in = fdopen(in[1], "w");
    m->out = fdopen(out[0], "r");
    if (!m->in || !m->out || !fgets(m->brokers, sizeof(m->brokers), m->out))
        return -1;
    m->brokers[strcspn(m->brokers, "\n")] = '\0';
    return 0;
}

int kmock_command(struct kmock *m, const char *cmd)
{
    char line[64];
    fprintf(m->in, "%s\n", cmd);
    fflush(m->in);
    return fgets(line, sizeof(line), m->out) && !strncmp(line, "ok", 2) ? 0 : -1;
}

void kmock_stop(struct kmock *m)
{
    fclose(m->in);
    waitpid(m->pid, NULL, 0);
    fclose(m->out);
}

int nodes_stop(struct server *nodes, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) { /* each node stops cleanly (and, under ASan, leak-free) */
        int st = server_stop(&nodes[i], SIGTERM);
        if (st != 0) {
            fprintf(stderr, "node %d exited with %d\n", i, st);
            failed = 1;
        }
        server_cleanup(&nodes[i]);
    }
    return failed ? -1 : 0;
}

int node_healthy(const struct server *s)
{
    struct resp r;
    int ok = http(s->port, "GET", "/healthz", NULL, &r) == 0 && r.status == 200;
    resp_free(&r);
    return ok;
}

int node_post(const struct server *s, const char *amount, int64_t ts)
{
    char t[32], body[128];
    struct resp r;
    txstats_timestamp_format(ts, t, sizeof(t));
    snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\"}", amount, t);
    int st = http(s->port, "POST", "/transactions", body, &r) == 0 ? r.status : -1;
    resp_free(&r);
    return st;
}

int node_post_key(const struct server *s, const char *key, const char *amount, int64_t ts,
                  const char *idem)
{
    char t[32], body[512], hdr[300] = "";
    struct resp r = {0};
    txstats_timestamp_format(ts, t, sizeof(t));
    int n = snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\",\"key\":\"%s\"}",
                     amount, t, key);
    if (idem)
        snprintf(hdr, sizeof(hdr), "Idempotency-Key: \"%s\"\r\n", idem);
    int fd = http_connect(s->port), st = -1;
    if (fd >= 0 && http_request(fd, "POST", "/transactions", hdr, body, (size_t)n, &r) == 0)
        st = r.status;
    resp_free(&r);
    if (fd >= 0)
        close(fd);
    return st;
}

void node_get(const struct server *s, const char *path, char *out, size_t n)
{
    struct resp r;
    out[0] = '\0';
    if (http(s->port, "GET", path, NULL, &r) == 0 && r.status == 200)
        snprintf(out, n, "%s", r.body);
    resp_free(&r);
}

void node_stats(const struct server *s, char *out, size_t n)
{
    struct resp r;
    out[0] = '\0';
    if (http(s->port, "GET", "/statistics", NULL, &r) == 0 && r.status == 200)
        snprintf(out, n, "%s", r.body);
    resp_free(&r);
}

long long stats_count(const char *stats)
{
    const char *c = strstr(stats, "\"count\":");
    return c ? atoll(c + 8) : -1;
}

long long node_count(const struct server *s)
{
    char st[256];
    node_stats(s, st, sizeof(st));
    return stats_count(st);
}

double node_metric(const struct server *s, const char *name)
{
    struct resp r;
    double v = -1;
    if (http(s->port, "GET", "/metrics", NULL, &r) == 0 && r.body) {
        size_t n = strlen(name);
        for (const char *p = r.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            if (!strncmp(p, name, n) && p[n] == ' ') {
                v = atof(p + n + 1);
                break;
            }
    }
    resp_free(&r);
    return v;
}
