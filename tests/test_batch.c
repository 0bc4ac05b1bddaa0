/* SPDX-License-Identifier: MIT */
/* POST /transactions/batch over real HTTP: per-line results, exact statistics, limits, and what
 * an answered batch leaves after kill -9. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <txstats/txstats.h>

#include "harness.h"

static void start(struct server *s, const char *const *args)
{
    assert_int_equal(server_start(s, args), 0);
}

static struct resp batch(struct server *s, const char *body, size_t len, int status)
{
    struct resp r;
    int fd = http_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(http_request(fd, "POST", "/transactions/batch",
                                  "Content-Type: application/x-ndjson\r\n", body, len, &r),
                     0);
    close(fd);
    if (r.status != status)
        fail_msg("batch: %d, want %d: %s", r.status, status, r.body);
    return r;
}

static void expect_body(struct server *s, const char *path, const char *want)
{
    struct resp r;
    assert_int_equal(http(s->port, "GET", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    if (strcmp(r.body, want) != 0)
        fail_msg("GET %s:\n got  %s\n want %s", path, r.body, want);
    resp_free(&r);
}

/* Appends one line (printf-style) to an NDJSON body. */
static void line(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = strlen(buf);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* Every kind of line, with the result each must get. */
static void test_every_kind_of_line(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    char ts[32], body[8192] = "";
    int64_t now = now_ms();
    txstats_timestamp_format(now - 1000, ts, sizeof(ts));
    line(body, sizeof(body), "{\"amount\":\"10.50\",\"timestamp\":\"%s\"}\n", ts);     /* 1 */
    line(body, sizeof(body), "\n");                                                    /* 2 */
    line(body, sizeof(body), "{\"amount\":2,\"timestamp\":%lld}\r\n", (long long)now); /* 3 */
    line(body, sizeof(body), "{\"timestamp\":\"%s\"}\n", ts);                          /* 4 */
    line(body, sizeof(body), "{\"amount\":\"1\"}\n");                                  /* 5 */
    line(body, sizeof(body), "{\"amount\":true,\"timestamp\":\"%s\"}\n", ts);          /* 6 */
    line(body, sizeof(body), "{\"amount\":\"1x\",\"timestamp\":\"%s\"}\n", ts);        /* 7 */
    line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"2018-02-30T00:00:00Z\"}\n");
    line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"2999-01-01T00:00:00Z\"}\n");
    line(body, sizeof(body), "{\"amount\":\"1E+12\",\"timestamp\":\"%s\"}\n", ts); /* 10 */
    line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"2001-01-01T00:00:00Z\"}\n");
    line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"%s\"\n", ts);   /* 12 */
    line(body, sizeof(body), "[1,2]\n");                                        /* 13 */
    line(body, sizeof(body), "  \t \r\n");                                      /* 14 */
    line(body, sizeof(body), "{\"amount\":\"-0.5\",\"timestamp\":\"%s\"}", ts); /* 15 */
    struct resp r = batch(s, body, strlen(body), 200);
    const int want_status[][2] = {{4, 422}, {5, 422},  {6, 422},  {7, 422}, {8, 422},
                                  {9, 422}, {10, 422}, {12, 400}, {13, 400}};
    /* The error texts are checked for presence; the lines and statuses exactly. */
    char *p = r.body;
    for (size_t i = 0; i < sizeof(want_status) / sizeof(want_status[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), "{\"line\":%d,\"status\":%d,\"error\":\"", want_status[i][0],
                 want_status[i][1]);
        p = strstr(p, key);
        if (!p)
            fail_msg("no %s in order in %s", key, r.body);
        assert_true(p[strlen(key)] != '"'); /* a reason, not empty */
    }
    assert_non_null(
        strstr(r.body, "{\"stored\":3,\"expired\":1,\"replayed\":0,\"rejected\":[{\"line\":4,"));
    assert_null(strstr(r.body, "\"line\":2,"));
    assert_null(strstr(r.body, "\"line\":14,"));
    resp_free(&r);
    expect_body(
        s, "/statistics",
        "{\"sum\":\"12.00\",\"avg\":\"4.00\",\"max\":\"10.50\",\"min\":\"-0.50\",\"count\":3}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_not_ndjson(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    const char *bodies[] = {"", "\n\n\r\n", "amount=1&timestamp=2", "{{{\n}}}\n", "\x01\x02"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct resp r = batch(s, bodies[i], strlen(bodies[i]), 400);
        assert_non_null(strstr(r.body, "\"error\""));
        resp_free(&r);
    }
    expect_body(
        s, "/statistics",
        "{\"sum\":\"0.00\",\"avg\":\"0.00\",\"max\":\"0.00\",\"min\":\"0.00\",\"count\":0}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* Integer timestamps are epoch milliseconds; below 10^11 (epoch seconds, 0, negative) a line is
 * 422 naming the unit, never counted as expired. */
static void test_epoch_seconds(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    char body[1024] = "";
    long long now = (long long)now_ms();
    line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":%lld}\n", now / 1000); /* 1 */
    line(body, sizeof(body), "{\"amount\":\"2\",\"timestamp\":%lld}\n", now);        /* 2 */
    line(body, sizeof(body), "{\"amount\":\"3\",\"timestamp\":0}\n");                /* 3 */
    line(body, sizeof(body), "{\"amount\":\"4\",\"timestamp\":-5}\n");               /* 4 */
    line(body, sizeof(body), "{\"amount\":\"5\",\"timestamp\":99999999999}\n");      /* 5 */
    line(body, sizeof(body), "{\"amount\":\"6\",\"timestamp\":100000000000}\n");     /* 6 */
    line(body, sizeof(body), "{\"amount\":\"7\",\"timestamp\":%lld.5}\n", now / 1000);
    struct resp r = batch(s, body, strlen(body), 200);
    assert_non_null(strstr(r.body, "{\"stored\":1,\"expired\":1,\"replayed\":0,"));
    char want[128];
    snprintf(want, sizeof(want),
             "{\"line\":1,\"status\":422,\"error\":\"'timestamp' %lld looks "
             "like epoch seconds",
             now / 1000);
    if (!strstr(r.body, want))
        fail_msg("no %s in %s", want, r.body);
    for (int no = 3; no <= 7; no++) {
        snprintf(want, sizeof(want), "{\"line\":%d,\"status\":422,", no);
        if ((no == 6) != !strstr(r.body, want))
            fail_msg("line %d: %s", no, r.body);
    }
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* Over --max-batch lines or --max-batch-bytes: 413, nothing stored, the connection closed; a
 * line over --max-body-bytes is rejected on its own. */
static void test_limits(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--max-batch", "5", "--max-batch-bytes", "2000", "--max-body-bytes",
                          "100",         NULL};
    start(s, args);
    char ts[32], body[4096] = "", line6[4096];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    for (int i = 0; i < 5; i++)
        line(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"%s\"}\n", ts);
    struct resp r = batch(s, body, strlen(body), 200); /* exactly the limit */
    assert_non_null(strstr(r.body, "\"stored\":5"));
    resp_free(&r);
    snprintf(line6, sizeof(line6), "%s{\"amount\":\"1\",\"timestamp\":\"%s\"}\n", body, ts);
    r = batch(s, line6, strlen(line6), 413);
    assert_true(r.closed);
    resp_free(&r);
    char big[2100];
    memset(big, ' ', sizeof(big));
    r = batch(s, big, sizeof(big), 413); /* past --max-batch-bytes */
    assert_true(r.closed);
    resp_free(&r);
    snprintf(body, sizeof(body),
             "{\"amount\":\"1\",\"timestamp\":\"%s\",\"pad\":\"%0120d\"}\n"
             "{\"amount\":\"2\",\"timestamp\":\"%s\"}\n",
             ts, 0, ts);
    r = batch(s, body, strlen(body), 200);
    assert_non_null(strstr(
        r.body,
        "{\"stored\":1,\"expired\":0,\"replayed\":0,\"rejected\":[{\"line\":1,\"status\":413"));
    resp_free(&r);
    /* A batch whose only line is too long: that line's 413, not "not NDJSON". */
    snprintf(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"%s\",\"pad\":\"%0120d\"}\n", ts,
             0);
    r = batch(s, body, strlen(body), 200);
    assert_non_null(strstr(
        r.body,
        "{\"stored\":0,\"expired\":0,\"replayed\":0,\"rejected\":[{\"line\":1,\"status\":413"));
    resp_free(&r);
    /* Whitespace past --max-body-bytes is not content: a blank line is skipped, a line with
     * trailing blanks is the transaction before them. */
    snprintf(body, sizeof(body), "%150s\n{\"amount\":\"3\",\"timestamp\":\"%s\"}%150s\n", "", ts,
             "");
    r = batch(s, body, strlen(body), 200);
    assert_non_null(strstr(r.body, "{\"stored\":1,\"expired\":0,\"replayed\":0,\"rejected\":[]"));
    resp_free(&r);
    expect_body(
        s, "/statistics",
        "{\"sum\":\"10.00\",\"avg\":\"1.43\",\"max\":\"3.00\",\"min\":\"1.00\",\"count\":7}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A 200 means journaled: kill -9 right after the answer loses nothing. */
static void test_answered_batch_survives_kill(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    enum { LINES = 2000 };
    size_t cap = LINES * 80;
    char *body = calloc(1, cap), ts[32];
    int64_t now = now_ms();
    for (int i = 0; i < LINES; i++) {
        txstats_timestamp_format(now - i % 5000, ts, sizeof(ts));
        line(body, cap, "{\"amount\":\"%d.01\",\"timestamp\":\"%s\"}\n", i + 1, ts);
    }
    struct resp r = batch(s, body, strlen(body), 200);
    assert_non_null(
        strstr(r.body, "{\"stored\":2000,\"expired\":0,\"replayed\":0,\"rejected\":[]}"));
    resp_free(&r);
    free(body);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    start(s, NULL);
    /* sum of (i + 0.01) for i = 1..2000 = 2001000 + 20 */
    expect_body(s, "/statistics",
                "{\"sum\":\"2001020.00\",\"avg\":\"1000.51\",\"max\":\"2000.01\","
                "\"min\":\"1.01\",\"count\":2000}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        server_bin = argv[1];
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_kind_of_line),
        T(test_not_ndjson),
        T(test_epoch_seconds),
        T(test_limits),
        T(test_answered_batch_survives_kill),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
