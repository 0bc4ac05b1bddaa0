/* SPDX-License-Identifier: MIT */
/*
 * Cluster restarts with per-partition checkpoints (server/kafka_checkpoint.h), on the mock Kafka
 * cluster (3 brokers, 3 partitions): node 0 never stops and writes no checkpoint (the
 * reference); node 1 (--kafka-ack local, checkpoints every 200 ms) is stopped with SIGTERM and
 * killed with SIGKILL at random moments under load, restarted from its checkpoints, and must end
 * with exactly node 0's statistics: records shipped twice from its outbox counted once, clears
 * across a checkpoint applied, a damaged checkpoint or one older than the window replaced by
 * reading Kafka. usage: test_kafka_restart PATH-TO-txstats-server PATH-TO-kafka_mock
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "kafka_harness.h"
#include "helpers.h"

#define CONVERGE_MS 20000
#define WINDOW      "600000" /* ms: nothing expires during the test */
#define NODES       2
#define CYCLES      8 /* kill -9 and restart */
static const char *mock_bin;
static struct kmock mock;
static struct server node[NODES];

/* Node 0: the reference, no checkpoints. Node 1: local acknowledgements, checkpoints. */
static int start_node(int i)
{
    const char *ref[] = {"--kafka-brokers",
                         mock.brokers,
                         "--window-ms",
                         WINDOW,
                         "--kafka-checkpoint-interval-ms",
                         "0",
                         NULL};
    const char *ckpt[] = {"--kafka-brokers",
                          mock.brokers,
                          "--window-ms",
                          WINDOW,
                          "--kafka-ack",
                          "local",
                          "--kafka-checkpoint-interval-ms",
                          "200",
                          NULL};
    int st = server_start(&node[i], i == 0 ? ref : ckpt);
    if (st > 0) { /* exited: seen once under ASan, the mock's metadata not answered in 10 s */
        print_message("node %d exited with %d at start; starting it again\n", i, st);
        st = server_start(&node[i], i == 0 ? ref : ckpt);
    }
    if (st != 0)
        return -1;
    for (int k = 0; k < 600; k++) { /* ready once it has read the topic back */
        if (node_healthy(&node[i]))
            return 0;
        sleep_ms(50);
    }
    return -1;
}

static int setup(void **state)
{
    (void)state;
    if (kmock_start(&mock, mock_bin, "3") != 0)
        return -1;
    for (int i = 0; i < NODES; i++) {
        server_init(&node[i]);
        if (start_node(i) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = nodes_stop(node, NODES);
    kmock_stop(&mock);
    return rc;
}

/* Both nodes report the same statistics, counting at least `least` transactions, within
 * CONVERGE_MS; fails the test otherwise. */
static void assert_agree(const char *when, long long least)
{
    char a[256], b[256];
    int64_t until = now_ms() + CONVERGE_MS;
    for (;;) {
        node_stats(&node[0], a, sizeof(a));
        node_stats(&node[1], b, sizeof(b));
        if (a[0] && !strcmp(a, b) && stats_count(a) >= least)
            break;
        if (now_ms() > until)
            fail_msg("%s: node 0 %s, node 1 %s", when, a, b);
        sleep_ms(20);
    }
    print_message("%s: both nodes %s\n", when, a);
}

static void restart(int sig)
{
    int st = server_stop(&node[1], sig);
    assert_int_equal(st, sig == SIGTERM ? 0 : 128 + sig);
    assert_int_equal(start_node(1), 0);
}

/* Transactions on both nodes, unique amounts. */
static void post_some(int n, int base)
{
    int64_t t = now_ms();
    for (int k = 0; k < n; k++) {
        char a[32];
        snprintf(a, sizeof(a), "%d.%02d", base + k / 100, k % 100);
        assert_int_equal(node_post(&node[k % NODES], a, t - k), 201);
    }
}

static void test_sigterm_restart(void **state)
{
    (void)state;
    post_some(300, 1);
    assert_agree("before", 300);
    restart(SIGTERM);
    assert_int_equal(node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions"), 3);
    assert_true(node_metric(&node[1], "txstats_kafka_checkpoint_restored_transactions") >= 300);
    assert_agree("after SIGTERM and a restart from the checkpoints", 300);
    /* A second process on the same data directory is refused (the checkpoint lock). */
    struct server other = node[1];
    assert_true(server_start(&other, (const char *[]){"--kafka-brokers", mock.brokers, NULL}) != 0);
}

struct load {
    int stop, sent, acked;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    for (int k = 0; !__atomic_load_n(&l->stop, __ATOMIC_RELAXED); k++) {
        char a[32];
        snprintf(a, sizeof(a), "%d.%02d", 3 + k % 7, k % 100);
        int st = node_post(&node[k % NODES], a, now_ms());
        __atomic_add_fetch(&l->sent, 1, __ATOMIC_RELAXED);
        if (st == 201)
            __atomic_add_fetch(&l->acked, 1, __ATOMIC_RELAXED);
        else if (st == -1) /* node 1 is down: no 201, nothing promised */
            sleep_ms(5);
    }
    return NULL;
}

/* kill -9 node 1 at random moments under POST load, restart it from its checkpoints: every
 * acknowledged POST counted, and counted once (its outbox ships again what Kafka may have). */
static void test_sigkill_cycles(void **state)
{
    (void)state;
    long long before = node_count(&node[0]);
    static struct load l; /* static: the thread may outlive a failed assertion */
    pthread_t th;
    unsigned seed = (unsigned)now_ms();
    int restored = 0;
    l = (struct load){0, 0, 0};
    pthread_create(&th, NULL, load_main, &l);
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        sleep_ms(200 + rand_r(&seed) % 600);
        restart(SIGKILL);
        restored += node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions") > 0;
    }
    sleep_ms(300);
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    assert_agree("after kill -9 cycles under load", before + l.acked);
    long long counted = node_count(&node[0]) - before;
    print_message("%d POSTs, %d acknowledged, %lld counted; %d of %d restarts used checkpoints\n",
                  l.sent, l.acked, counted, restored, CYCLES);
    print_message("records read again and dropped by identity: node 0 %.0f, node 1 %.0f\n",
                  node_metric(&node[0], "txstats_kafka_records_total{result=\"resent\"}"),
                  node_metric(&node[1], "txstats_kafka_records_total{result=\"resent\"}"));
    assert_true(counted >= l.acked); /* an unanswered one may have been kept */
    assert_true(counted <= l.sent);
    assert_true(restored >= CYCLES - 1); /* checkpoints every 200 ms: a kill finds one */
}

/* A clear inside a checkpointed window, and a clear the node reads after its checkpoint. */
static void test_clear_across_checkpoint(void **state)
{
    (void)state;
    struct resp r = {0};
    assert_int_equal(http(node[0].port, "DELETE", "/transactions", NULL, &r), 0);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    post_some(50, 20);
    assert_agree("cleared, then 50 more", 50);
    assert_int_equal(node_count(&node[0]), 50);
    restart(SIGTERM); /* the checkpoints hold the cleared windows */
    assert_agree("restarted after the clear", 50);
    assert_int_equal(server_stop(&node[1], SIGTERM), 0);
    assert_int_equal(http(node[0].port, "DELETE", "/transactions", NULL, &r), 0);
    resp_free(&r);
    for (int k = 0; k < 20; k++)
        assert_int_equal(node_post(&node[0], "30.00", now_ms()), 201);
    assert_int_equal(start_node(1), 0); /* restores pre-clear windows, then reads the clear */
    assert_int_equal(node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions"), 3);
    assert_agree("a clear after the checkpoint", 20);
    assert_int_equal(node_count(&node[1]), 20);
}

static void ckpt_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/partitions/transactions/%s", node[1].data_dir, name);
}

/* The snapshot file partition p's meta names. */
static void snapshot_of(int p, char *out, size_t n)
{
    char meta[256], line[256], name[64] = "";
    snprintf(line, sizeof(line), "p%d.meta", p);
    ckpt_path(meta, sizeof(meta), line);
    FILE *f = fopen(meta, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "snapshot %63s", name) == 1)
            break;
    fclose(f);
    assert_true(name[0] != '\0');
    ckpt_path(out, n, name);
}

/* Partition 0's snapshot truncated, partition 1's meta damaged: those two are read from Kafka,
 * partition 2 restored; still exact. */
static void test_damaged_checkpoint(void **state)
{
    (void)state;
    long long want = node_count(&node[0]) + 30;
    post_some(30, 40);
    assert_agree("before the damage", want);
    assert_int_equal(server_stop(&node[1], SIGTERM), 0);
    char path[300];
    struct stat st;
    snapshot_of(0, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    ckpt_path(path, sizeof(path), "p1.meta");
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 40), 1); /* the CRC no longer matches */
    close(fd);
    assert_int_equal(start_node(1), 0);
    assert_int_equal(node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions"), 1);
    assert_agree("restarted with a damaged checkpoint", want);
    restart(SIGTERM); /* fresh checkpoints replace the damaged ones */
    assert_int_equal(node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions"), 3);
    assert_agree("restarted again", want);
}

/* Rewrite partition p's meta with saved_ms moved `ms` back (and a matching CRC). */
static void age_meta(int p, int64_t ms)
{
    char path[300], name[32], text[4096], out[4096];
    snprintf(name, sizeof(name), "p%d.meta", p);
    ckpt_path(path, sizeof(path), name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f), o = 0;
    fclose(f);
    text[n] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long long saved;
        if (sscanf(line, "saved_ms %lld", &saved) == 1)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "saved_ms %lld\n", saved - ms);
        else if (strncmp(line, "crc ", 4) != 0)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", line);
    }
    o += (size_t)snprintf(out + o, sizeof(out) - o, "crc %08lx\n",
                          crc32(0L, (const Bytef *)out, (uInt)o));
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(out, 1, o, f), o);
    fclose(f);
}

/* A checkpoint older than the window is ignored (the node reads Kafka); a well-aged one is used. */
static void test_old_checkpoint_ignored(void **state)
{
    (void)state;
    long long want = node_count(&node[0]) + 30;
    post_some(30, 50);
    assert_agree("before ageing", want);
    assert_int_equal(server_stop(&node[1], SIGTERM), 0);
    age_meta(0, 600000 + 10000); /* older than the window and its margin */
    age_meta(1, 1000);           /* still young: used */
    assert_int_equal(start_node(1), 0);
    assert_int_equal(node_metric(&node[1], "txstats_kafka_checkpoint_restored_partitions"), 2);
    assert_agree("restarted with a checkpoint older than the window", want);
}

/* Both nodes answer GET `path` alike (and not empty) within CONVERGE_MS. */
static void assert_same(const char *path)
{
    char a[8192], b[8192];
    int64_t until = now_ms() + CONVERGE_MS;
    for (;;) {
        node_get(&node[0], path, a, sizeof(a));
        node_get(&node[1], path, b, sizeof(b));
        if (a[0] && !strcmp(a, b))
            return;
        if (now_ms() > until)
            fail_msg("GET %s: node 0 %s, node 1 %s", path, a, b);
        sleep_ms(20);
    }
}

/* Keys (issue 20) across restarts from the checkpoints: each key's statistics and the top keys
 * the same on the restarted node as on the reference, after SIGTERM and after kill -9. */
static void test_keys_across_restarts(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        int64_t t = now_ms();
        for (int k = 0; k < 60; k++) {
            char key[16], amount[16], idem[32];
            snprintf(key, sizeof(key), "card-%d", k % 7);
            snprintf(amount, sizeof(amount), "%d.%02d", k + 1, round);
            snprintf(idem, sizeof(idem), "restart-%d-%d", round, k);
            assert_int_equal(node_post_key(&node[k % NODES], key, amount, t - k,
                                           k % 3 ? NULL : idem), /* some spread by idem keys */
                             201);
        }
        assert_agree("keys posted", 60);
        restart(round ? SIGKILL : SIGTERM);
        for (int k = 0; k < 7; k++) {
            char path[64];
            snprintf(path, sizeof(path), "/statistics?key=card-%d", k);
            assert_same(path);
        }
        assert_same("/statistics/top?limit=7");
        assert_same("/statistics/top?by=count&limit=3");
        print_message("keys after %s: the same on both nodes\n", round ? "kill -9" : "SIGTERM");
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server PATH-TO-kafka_mock\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    mock_bin = argv[2];
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_restart),         cmocka_unit_test(test_sigkill_cycles),
        cmocka_unit_test(test_clear_across_checkpoint), cmocka_unit_test(test_damaged_checkpoint),
        cmocka_unit_test(test_old_checkpoint_ignored),  cmocka_unit_test(test_keys_across_restarts),
    };
    return cmocka_run_group_tests_name("kafka_restart", tests, setup, teardown);
}
