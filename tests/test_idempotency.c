/* SPDX-License-Identifier: MIT */
/* Idempotency-Key over real HTTP: the header's forms, replays of every outcome, conflicts, kill -9,
 * batch lines with keys, a full key table. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <txstats/txstats.h>

#include "harness.h"

/* POST a transaction with raw extra headers; returns the response (caller frees). */
static struct resp post(struct server *s, const char *headers, const char *amount, int64_t ts)
{
    char body[160], when[32];
    txstats_timestamp_format(ts, when, sizeof(when));
    int n = snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\"}", amount, when);
    int fd = http_connect(s->port);
    struct resp r;
    assert_true(fd >= 0);
    assert_int_equal(http_request(fd, "POST", "/transactions", headers, body, (size_t)n, &r), 0);
    close(fd);
    return r;
}

static void expect_post(struct server *s, const char *headers, const char *amount, int64_t ts,
                        int status, bool replayed)
{
    struct resp r = post(s, headers, amount, ts);
    if (r.status != status)
        fail_msg("POST with [%s]: %d, want %d: %s", headers ? headers : "", r.status, status,
                 r.body);
    const char *h = resp_header(&r, "Idempotent-Replayed");
    if (replayed != (h != NULL))
        fail_msg("POST with [%s]: Idempotent-Replayed %s", headers, h ? h : "missing");
    if (h)
        assert_int_equal(strncmp(h, "true\r\n", 6), 0);
    resp_free(&r);
}

static uint64_t count_of(struct server *s)
{
    struct resp r;
    assert_int_equal(http(s->port, "GET", "/statistics", NULL, &r), 0);
    const char *c = strstr(r.body, "\"count\":");
    assert_non_null(c);
    uint64_t n = strtoull(c + 8, NULL, 10);
    resp_free(&r);
    return n;
}

/* Every form of the header: the two that name a key, and every kind of bad value. */
static void test_header_forms(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    int64_t now = now_ms();
    char k255[300], k256[300];
    snprintf(k255, sizeof(k255), "Idempotency-Key: %0255d\r\n", 0);
    snprintf(k256, sizeof(k256), "Idempotency-Key: %0256d\r\n", 0);
    const struct {
        const char *headers;
        int status;
        bool replayed;
    } cases[] = {
        {"Idempotency-Key: abc\r\n", 201, false},
        {"Idempotency-Key: \"abc\"\r\n", 201, true}, /* the quoted form names the same key */
        {"idempotency-key: abc\r\n", 201, true},     /* field names are case-insensitive */
        {"Idempotency-Key: abc  \r\n", 201, true},   /* no trailing whitespace in a value */
        {"Idempotency-Key: \"a\\\"b\"\r\n", 201, false},
        {"Idempotency-Key: a\"b\r\n", 201, true}, /* bare a"b is the same key as "a\"b" */
        {"Idempotency-Key: \"with space\"\r\n", 201, false},
        {k255, 201, false},
        {k256, 400, false},
        {"Idempotency-Key: \"\"\r\n", 400, false},
        {"Idempotency-Key: \"abc\r\n", 400, false},
        {"Idempotency-Key: \"abc\"x\r\n", 400, false},
        {"Idempotency-Key: \"a\\qb\"\r\n", 400, false},
        {"Idempotency-Key: a b\r\n", 400, false},
        {"Idempotency-Key: caf\xc3\xa9\r\n", 400, false},
        {"Idempotency-Key: \"\x01\"\r\n", 400, false},
        {"Idempotency-Key: one\r\nIdempotency-Key: two\r\n", 400, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_post(s, cases[i].headers, "1.00", now, cases[i].status, cases[i].replayed);
    assert_int_equal(count_of(s), 4); /* abc, a"b, "with space", the 255-character key */
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A retry gets its first answer again, whatever it was; another transaction under a used key is
 * 422; nothing is counted twice. */
static void test_replays_and_conflicts(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    int64_t now = now_ms();
    const char *k1 = "Idempotency-Key: stored\r\n", *k2 = "Idempotency-Key: old\r\n";
    const char *k3 = "Idempotency-Key: future\r\n";
    expect_post(s, k1, "10", now, 201, false);
    expect_post(s, k1, "10", now, 201, true);
    expect_post(s, k1, "10.000", now, 201, true); /* the same amount, written otherwise */
    expect_post(s, k1, "11", now, 422, false);
    expect_post(s, k1, "10", now - 1, 422, false);
    expect_post(s, k2, "5", now - 3600 * 1000, 204, false);
    expect_post(s, k2, "5", now - 3600 * 1000, 204, true);
    expect_post(s, k3, "5", now + 3600 * 1000, 422, false);
    expect_post(s, k3, "5", now + 3600 * 1000, 422, true);
    expect_post(s, NULL, "10", now, 201, false); /* without a key: counted each time */
    expect_post(s, NULL, "10", now, 201, false);
    assert_int_equal(count_of(s), 3);
    struct resp r;
    assert_int_equal(http(s->port, "GET", "/metrics", NULL, &r), 0);
    assert_non_null(strstr(r.body, "txstats_posts_total{outcome=\"replayed\"} 4\n"));
    assert_non_null(strstr(r.body, "txstats_posts_total{outcome=\"conflict\"} 2\n"));
    assert_non_null(strstr(r.body, "txstats_idempotency_keys 3\n"));
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A client that got its 201 lost in a crash retries after the restart: replayed, counted once. */
static void test_retry_after_kill(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    int64_t now = now_ms();
    expect_post(s, "Idempotency-Key: \"order-1\"\r\n", "99.99", now, 201, false);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    assert_int_equal(server_start(s, NULL), 0);
    expect_post(s, "Idempotency-Key: \"order-1\"\r\n", "99.99", now, 201, true);
    expect_post(s, "Idempotency-Key: \"order-1\"\r\n", "99.98", now, 422, false);
    assert_int_equal(count_of(s), 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A batch retried with per-line keys: every line once. */
static void test_batch_retry(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    char body[8192] = "", ts[32];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    for (int i = 0; i < 50; i++) {
        size_t n = strlen(body);
        snprintf(body + n, sizeof(body) - n,
                 "{\"amount\":\"%d\",\"timestamp\":\"%s\",\"idempotency_key\":\"line-%d\"}\n",
                 i + 1, ts, i);
    }
    size_t n = strlen(body); /* one bad key, one line without a key */
    snprintf(body + n, sizeof(body) - n,
             "{\"amount\":\"1\",\"timestamp\":\"%s\",\"idempotency_key\":\"\"}\n"
             "{\"amount\":\"1000\",\"timestamp\":\"%s\"}\n",
             ts, ts);
    const char *want[] = {
        "{\"stored\":51,\"expired\":0,\"replayed\":0,\"rejected\":[{\"line\":51,",
        "{\"stored\":1,\"expired\":0,\"replayed\":50,\"rejected\":[{\"line\":51,"};
    for (int round = 0; round < 2; round++) {
        struct resp r;
        int fd = http_connect(s->port);
        assert_int_equal(
            http_request(fd, "POST", "/transactions/batch", NULL, body, strlen(body), &r), 0);
        close(fd);
        assert_int_equal(r.status, 200);
        if (!strstr(r.body, want[round]))
            fail_msg("round %d: %s", round, r.body);
        resp_free(&r);
    }
    assert_int_equal(count_of(s), 52); /* 50 keyed once, the unkeyed line twice */
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A full key table: a new keyed POST is 503 with Retry-After, nothing counted; known keys still
 * answer; POSTs without a key go on. */
static void test_full_table(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--max-idempotency-keys", "16", NULL};
    assert_int_equal(server_start(s, args), 0);
    int64_t now = now_ms();
    int stored = 0, refused = 0;
    char h[64];
    for (int i = 0; i < 200; i++) {
        snprintf(h, sizeof(h), "Idempotency-Key: k%d\r\n", i);
        struct resp r = post(s, h, "1", now);
        assert_true(r.status == 201 || r.status == 503);
        if (r.status == 503)
            assert_non_null(resp_header(&r, "Retry-After"));
        stored += r.status == 201;
        refused += r.status == 503;
        resp_free(&r);
    }
    assert_int_equal(stored, 16);
    assert_int_equal(refused, 184);
    expect_post(s, "Idempotency-Key: k0\r\n", "1", now, 201, true);
    expect_post(s, NULL, "1", now, 201, false);
    assert_int_equal(count_of(s), 17);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        server_bin = argv[1];
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_header_forms),     T(test_replays_and_conflicts),
        T(test_retry_after_kill), T(test_batch_retry),
        T(test_full_table),
    };
    return cmocka_run_group_tests_name("idempotency", tests, NULL, NULL);
}
