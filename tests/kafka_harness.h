/* SPDX-License-Identifier: MIT */
/* Cluster-mode tests (kafka_harness.c): the Kafka mock cluster (kafka_mock.c) in a child process,
 * and the small requests the tests make of a node. */
#ifndef TXSTATS_TESTS_KAFKA_HARNESS_H
#define TXSTATS_TESTS_KAFKA_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "harness.h"

struct kmock {
    pid_t pid;
    FILE *in, *out;    /* its stdin (commands) and stdout (answers) */
    char brokers[512]; /* its bootstrap servers */
};

/* Start `bin TOPIC PARTITIONS` and read its bootstrap servers: 0, or -1. */
int kmock_start(struct kmock *m, const char *bin, const char *partitions);
/* Send one command ("down 1", "up 1", "garbage 0"): 0 once it answered "ok", else -1. */
int kmock_command(struct kmock *m, const char *cmd);
/* Close its input (it exits at end of input) and reap it. */
void kmock_stop(struct kmock *m);

/* SIGTERM and clean up each node: 0, or -1 when one did not exit 0 (said on stderr). */
int nodes_stop(struct server *nodes, int n);

int node_healthy(const struct server *s);                              /* /healthz is 200 */
int node_post(const struct server *s, const char *amount, int64_t ts); /* status, -1: no answer */
/* POST {"amount","timestamp","key"} (key: JSON string text), with an Idempotency-Key when idem
 * is not NULL: the status, -1 when no answer came. */
int node_post_key(const struct server *s, const char *key, const char *amount, int64_t ts,
                  const char *idem);
void node_get(const struct server *s, const char *path, char *out,
              size_t n);                                      /* 200's body, or "" */
void node_stats(const struct server *s, char *out, size_t n); /* GET /statistics body, or "" */
long long stats_count(const char *stats);                     /* its "count", or -1 */
long long node_count(const struct server *s);                 /* node_stats' count, or -1 */
/* The value of the /metrics line `name value` (no labels), or -1. */
double node_metric(const struct server *s, const char *name);

#endif
