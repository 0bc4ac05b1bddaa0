/* SPDX-License-Identifier: MIT */
/* txstats-server end to end: the real binary on a free loopback port, real HTTP. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static const char EMPTY_STATS[] =
    "{\"sum\":\"0.00\",\"avg\":\"0.00\",\"max\":\"0.00\",\"min\":\"0.00\",\"count\":0}";

static void start(struct server *s, const char *const *args)
{
    int rc = server_start(s, args);
    if (rc != 0)
        fail_msg("server did not start: %d", rc);
}

/* Request and check the status; returns the response (caller frees). */
static struct resp expect(struct server *s, const char *method, const char *path, const char *body,
                          int status)
{
    struct resp r;
    if (http(s->port, method, path, body, &r) != 0)
        fail_msg("%s %s: no response", method, path);
    if (status >= 0 && r.status != status)
        fail_msg("%s %s %s: status %d, want %d; body %s", method, path, body ? body : "", r.status,
                 status, r.body);
    return r;
}

static void expect_status(struct server *s, const char *method, const char *path, const char *body,
                          int status)
{
    struct resp r = expect(s, method, path, body, status);
    resp_free(&r);
}

static void expect_stats(struct server *s, const char *want)
{
    struct resp r = expect(s, "GET", "/statistics", NULL, 200);
    assert_string_equal(r.body, want);
    resp_free(&r);
}

static char *tx_json(char *buf, size_t n, const char *amount_json, int64_t ts_ms)
{
    char ts[32];
    txstats_timestamp_format(ts_ms, ts, sizeof(ts));
    snprintf(buf, n, "{\"amount\":%s,\"timestamp\":\"%s\"}", amount_json, ts);
    return buf;
}

static void post(struct server *s, const char *amount_json, int64_t ts_ms, int status)
{
    char body[256];
    expect_status(s, "POST", "/transactions", tx_json(body, sizeof(body), amount_json, ts_ms),
                  status);
}

/* ---- routes --------------------------------------------------------------------------------- */

static void test_routes(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    struct resp r = expect(s, "GET", "/healthz", NULL, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    resp_free(&r);
    expect_stats(s, EMPTY_STATS);
    r = expect(s, "GET", "/transactions/statistics", NULL, 200);
    assert_string_equal(r.body, EMPTY_STATS);
    resp_free(&r);
    r = expect(s, "GET", "/nowhere", NULL, 404);
    assert_non_null(strstr(r.body, "{\"error\":\""));
    resp_free(&r);
    expect_status(s, "GET", "/statistics/", NULL, 404);
    expect_status(s, "GET", "/transactions/../statistics", NULL, 404);
    expect_status(s, "GET", "/transactions%00", NULL, 404);
    r = expect(s, "PUT", "/transactions", "{}", 405);
    assert_non_null(resp_header(&r, "Allow"));
    assert_int_equal(strncmp(resp_header(&r, "Allow"), "GET, HEAD, POST, DELETE, OPTIONS\r", 33),
                     0);
    resp_free(&r);
    r = expect(s, "POST", "/statistics", "{}", 405);
    assert_int_equal(strncmp(resp_header(&r, "Allow"), "GET, HEAD, OPTIONS\r", 19), 0);
    resp_free(&r);
    r = expect(s, "GET", "/metrics", NULL, 200);
    assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "txstats_window_transactions{window=\"1m\"} 0\n"));
    resp_free(&r);
    /* 201 and 204 have empty bodies */
    char body[256];
    r = expect(s, "POST", "/transactions", tx_json(body, sizeof(body), "\"1\"", now_ms()), 201);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    r = expect(s, "POST", "/transactions", tx_json(body, sizeof(body), "\"1\"", now_ms() - 61000),
               204);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    r = expect(s, "DELETE", "/transactions", NULL, 204);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    expect_stats(s, EMPTY_STATS);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- validation ----------------------------------------------------------------------------- */

static void test_validation(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    char now[32], future[32], old[32], body[512];
    int64_t t = now_ms();
    txstats_timestamp_format(t - 1000, now, sizeof(now));
    txstats_timestamp_format(t + 60000, future, sizeof(future));
    txstats_timestamp_format(t - 120000, old, sizeof(old));
    static const struct {
        const char *body; /* %s: an in-window timestamp */
        int status;
    } cases[] = {
        {"not json", 400},
        {"\"Hello world!\"", 400},
        {"[]", 400},
        {"42", 400},
        {"", 400},
        {"{\"amount\":\"1\",\"timestamp\":\"%s\"} trailing", 400},
        {"{}", 422},
        {"{\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":null,\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":true,\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":{},\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":[1],\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"NaN\",\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"Infinity\",\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"0x10\",\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"1 0\",\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"\",\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":1e400,\"timestamp\":\"%s\"}", 422},
        {"{\"amount\":\"1000000000000\",\"timestamp\":\"%s\"}", 422},
        {"{\"Amount\":\"1\",\"timestamp\":\"%s\"}", 422}, /* keys are case-sensitive */
        {"{\"amount\":\"1\"}", 422},
        {"{\"amount\":\"1\",\"timestamp\":null}", 422},
        {"{\"amount\":\"1\",\"timestamp\":\"2018-07-17T09:59:51.312\"}", 422},
        {"{\"amount\":\"1\",\"timestamp\":\"2018-02-30T09:59:51.312Z\"}", 422},
        {"{\"amount\":\"1\",\"timestamp\":1.5}", 422},
        {"{\"amount\":\"1\",\"timestamp\":1796518054}", 422}, /* epoch seconds */
        {"{\"amount\":\"1\",\"timestamp\":1796518054.123}", 422},
        {"{\"amount\":\"1\",\"timestamp\":99999999999}", 422}, /* below 10^11 ms */
        {"{\"amount\":\"1\",\"timestamp\":0}", 422},
        {"{\"amount\":\"1\",\"timestamp\":-1}", 422},
        {"{\"amount\":\"1\",\"timestamp\":true}", 422},
        {"{\"amount\":\"1\",\"timestamp\":\"yesterday\"}", 422},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), cases[i].body, now);
        struct resp r = expect(s, "POST", "/transactions", body, cases[i].status);
        if (!strstr(r.body, "{\"error\":\""))
            fail_msg("%s: no error body: %s", body, r.body);
        resp_free(&r);
    }
    struct resp r =
        expect(s, "POST", "/transactions", "{\"amount\":\"1\",\"timestamp\":1796518054}", 422);
    assert_non_null(strstr(r.body, "looks like epoch seconds"));
    resp_free(&r);
    /* future: 422; expired: 204 */
    snprintf(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"%s\"}", future);
    r = expect(s, "POST", "/transactions", body, 422);
    assert_non_null(strstr(r.body, "future"));
    resp_free(&r);
    snprintf(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":\"%s\"}", old);
    expect_status(s, "POST", "/transactions", body, 204);
    expect_stats(s, EMPTY_STATS); /* nothing rejected was counted */

    /* Accepted forms: number amount from its own text, epoch-ms timestamps, unknown fields,
     * duplicate keys (the first wins), any Content-Type. */
    snprintf(body, sizeof(body), "{\"amount\":0.1,\"timestamp\":%lld}", (long long)(t - 10));
    expect_status(s, "POST", "/transactions", body, 201);
    snprintf(
        body, sizeof(body),
        "{\"id\":7,\"amount\":\"2\",\"amount\":\"999\",\"timestamp\":\"%s\",\"x\":[{\"a\":\"]\"}]}",
        now);
    expect_status(s, "POST", "/transactions", body, 201);
    static const char *types[] = {"Content-Type: application/json;charset=UTF-8\r\n",
                                  "Content-Type: application/x-www-form-urlencoded\r\n", ""};
    for (int i = 0; i < 3; i++) {
        int fd = http_connect(s->port);
        snprintf(body, sizeof(body), "{\"amount\":\"1E+1\",\"timestamp\":\"%s\"}", now);
        assert_int_equal(
            http_request(fd, "POST", "/transactions", types[i], body, strlen(body), &r), 0);
        assert_int_equal(r.status, 201);
        resp_free(&r);
        close(fd);
    }
    expect_stats(
        s, "{\"sum\":\"32.10\",\"avg\":\"6.42\",\"max\":\"10.00\",\"min\":\"0.10\",\"count\":5}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_rounding(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t t = now_ms();
    for (int i = 0; i < 10; i++)
        post(s, "0.1", t - i, 201); /* JSON numbers, exact */
    expect_stats(
        s, "{\"sum\":\"1.00\",\"avg\":\"0.10\",\"max\":\"0.10\",\"min\":\"0.10\",\"count\":10}");
    expect_status(s, "DELETE", "/transactions", NULL, 204);
    post(s, "\"-10.345\"", t, 201);
    post(s, "\"-0.001\"", t, 201);
    expect_stats(
        s,
        "{\"sum\":\"-10.35\",\"avg\":\"-5.17\",\"max\":\"0.00\",\"min\":\"-10.35\",\"count\":2}");
    expect_status(s, "DELETE", "/transactions", NULL, 204);
    post(s, "\"200000.49\"", t, 201);
    post(s, "\"50.23\"", t, 201);
    post(s, "\"1.005\"", t, 201);
    expect_stats(s, "{\"sum\":\"200051.73\",\"avg\":\"66683.91\",\"max\":\"200000.49\",\"min\":\"1."
                    "01\",\"count\":3}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- listing -------------------------------------------------------------------------------- */

static void test_listing(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--max-retained", "3", NULL};
    start(s, args);
    int64_t t = now_ms() / 1000 * 1000 - 5000;
    post(s, "\"5\"", t + 300, 201);
    post(s, "\"12.3343\"", t + 100, 201);
    post(s, "\"7.5\"", t + 200, 201);
    char t1[32], t2[32], t3[32], want[512];
    txstats_timestamp_format(t + 100, t1, sizeof(t1));
    txstats_timestamp_format(t + 200, t2, sizeof(t2));
    txstats_timestamp_format(t + 300, t3, sizeof(t3));
    struct resp r = expect(s, "GET", "/transactions", NULL, 200);
    snprintf(
        want, sizeof(want),
        "{\"transactions\":[{\"amount\":\"12.3343\",\"timestamp\":\"%s\"},"
        "{\"amount\":\"7.50\",\"timestamp\":\"%s\"},{\"amount\":\"5.00\",\"timestamp\":\"%s\"}],"
        "\"count\":3,\"truncated\":false}",
        t1, t2, t3);
    assert_string_equal(r.body, want);
    assert_non_null(strstr(r.headers, "Transfer-Encoding: chunked"));
    resp_free(&r);
    r = expect(s, "GET", "/transactions?limit=1", NULL, 200);
    snprintf(want, sizeof(want),
             "{\"transactions\":[{\"amount\":\"12.3343\",\"timestamp\":\"%s\"}],\"count\":1,"
             "\"truncated\":true}",
             t1);
    assert_string_equal(r.body, want);
    resp_free(&r);
    r = expect(s, "GET", "/transactions?limit=0", NULL, 200);
    assert_string_equal(r.body, "{\"transactions\":[],\"count\":0,\"truncated\":true}");
    resp_free(&r);
    /* Past --max-retained the statistics stay exact and the listing says it is incomplete. */
    post(s, "\"1\"", t + 400, 201);
    r = expect(s, "GET", "/transactions", NULL, 200);
    assert_non_null(strstr(r.body, "\"count\":3,\"truncated\":true"));
    resp_free(&r);
    expect_stats(
        s, "{\"sum\":\"25.83\",\"avg\":\"6.46\",\"max\":\"12.33\",\"min\":\"1.00\",\"count\":4}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
    const char *capped[] = {"--max-list", "2", NULL};
    start(s, capped); /* --max-list bounds a listing with or without ?limit */
    r = expect(s, "GET", "/transactions", NULL, 200);
    assert_non_null(strstr(r.body, "\"count\":2,\"truncated\":true"));
    resp_free(&r);
    r = expect(s, "GET", "/transactions?limit=100", NULL, 200);
    assert_non_null(strstr(r.body, "\"count\":2,\"truncated\":true"));
    resp_free(&r);
    expect_status(s, "GET", "/transactions?limit=-1", NULL, 400);
    expect_status(s, "GET", "/transactions?limit=abc", NULL, 400);
    expect_status(s, "GET", "/transactions?foo=1", NULL, 400);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_large_listing(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int fd = http_connect(s->port);
    int64_t t = now_ms();
    char body[128];
    for (int i = 0; i < 3000; i++) {
        struct resp r;
        tx_json(body, sizeof(body), "\"1.25\"", t - i * 7);
        assert_int_equal(http_request(fd, "POST", "/transactions", NULL, body, strlen(body), &r),
                         0);
        assert_int_equal(r.status, 201);
        resp_free(&r);
    }
    close(fd);
    struct resp r = expect(s, "GET", "/transactions", NULL, 200);
    assert_true(r.len > 3000 * 50); /* spans many chunks */
    assert_non_null(strstr(r.body, "\"count\":3000,\"truncated\":false}"));
    /* oldest first */
    char first[32];
    txstats_timestamp_format(t - 2999 * 7, first, sizeof(first));
    assert_non_null(strstr(r.body, first));
    assert_true(strstr(r.body, first) < strstr(r.body, "},{"));
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- time, connections, concurrency --------------------------------------------------------- */

static void test_expiry_real_time(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--window-ms", "3000", NULL};
    start(s, args);
    int64_t t = now_ms();
    post(s, "\"4\"", t - 1500, 201); /* leaves at t + 1500 */
    post(s, "\"6\"", t, 201);        /* leaves at t + 3000 */
    post(s, "\"9\"", t - 3100, 204); /* already out */
    expect_stats(
        s, "{\"sum\":\"10.00\",\"avg\":\"5.00\",\"max\":\"6.00\",\"min\":\"4.00\",\"count\":2}");
    sleep_ms(t + 1500 + 100 - now_ms()); /* just past the first's exit, 1.4 s before the second's */
    expect_stats(
        s, "{\"sum\":\"6.00\",\"avg\":\"6.00\",\"max\":\"6.00\",\"min\":\"6.00\",\"count\":1}");
    sleep_ms(t + 3000 + 100 - now_ms());
    expect_stats(s, EMPTY_STATS);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_keep_alive(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int fd = http_connect(s->port);
    char body[128];
    for (int i = 0; i < 200; i++) {
        struct resp r;
        if (i % 2) {
            assert_int_equal(http_request(fd, "GET", "/statistics", NULL, NULL, 0, &r), 0);
            assert_int_equal(r.status, 200);
        } else if (i % 4 == 0) {
            tx_json(body, sizeof(body), "\"1\"", now_ms());
            assert_int_equal(
                http_request(fd, "POST", "/transactions", NULL, body, strlen(body), &r), 0);
            assert_int_equal(r.status, 201);
        } else { /* errors keep the connection too */
            assert_int_equal(http_request(fd, "POST", "/transactions", NULL, "[]", 2, &r), 0);
            assert_int_equal(r.status, 400);
        }
        assert_false(r.closed);
        resp_free(&r);
    }
    close(fd);
    expect_stats(
        s, "{\"sum\":\"50.00\",\"avg\":\"1.00\",\"max\":\"1.00\",\"min\":\"1.00\",\"count\":50}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

struct poster {
    int port, n, id, ok;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    int fd = http_connect(p->port);
    char body[128];
    for (int i = 0; i < p->n; i++) {
        struct resp r;
        /* amounts 0.01 .. 0.99, id-dependent: the exact total is known */
        char amount[16];
        snprintf(amount, sizeof(amount), "\"0.%02d\"", (i + p->id) % 99 + 1);
        tx_json(body, sizeof(body), amount, now_ms() - i % 1000);
        if (http_request(fd, "POST", "/transactions", NULL, body, strlen(body), &r) == 0 &&
            r.status == 201)
            p->ok++;
        resp_free(&r);
    }
    close(fd);
    return NULL;
}

static void test_concurrent_posts(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    enum { THREADS = 8, EACH = 500 };
    pthread_t th[THREADS];
    struct poster p[THREADS];
    long cents = 0;
    for (int k = 0; k < THREADS; k++) {
        p[k] = (struct poster){s->port, EACH, k, 0};
        for (int i = 0; i < EACH; i++)
            cents += (i + k) % 99 + 1;
        pthread_create(&th[k], NULL, poster_main, &p[k]);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(p[k].ok, EACH);
    }
    struct resp r = expect(s, "GET", "/statistics", NULL, 200);
    char want[128];
    snprintf(want, sizeof(want), "\"sum\":\"%ld.%02ld\"", cents / 100, cents % 100);
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "\"count\":4000}"));
    assert_non_null(strstr(r.body, "\"max\":\"0.99\",\"min\":\"0.01\""));
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- state ---------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_restart_keeps_state(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--save-interval-ms", "600000", NULL}; /* only the shutdown save */
    start(s, args);
    int64_t t = now_ms();
    post(s, "\"3.5\"", t - 2000, 201);
    post(s, "\"1.25\"", t - 1000, 201);
    struct resp before = expect(s, "GET", "/transactions", NULL, 200);
    assert_int_equal(server_stop(s, SIGTERM), 0); /* SIGTERM saves */
    char snap[160];
    snprintf(snap, sizeof(snap), "%s/checkpoint.bin", s->data_dir);
    struct stat st;
    assert_int_equal(stat(snap, &st), 0);
    start(s, args);
    expect_stats(
        s, "{\"sum\":\"4.75\",\"avg\":\"2.38\",\"max\":\"3.50\",\"min\":\"1.25\",\"count\":2}");
    struct resp after = expect(s, "GET", "/transactions", NULL, 200);
    assert_string_equal(before.body, after.body);
    resp_free(&before);
    resp_free(&after);
    assert_int_equal(server_stop(s, SIGINT), 0); /* SIGINT too */
    start(s, args);
    expect_stats(
        s, "{\"sum\":\"4.75\",\"avg\":\"2.38\",\"max\":\"3.50\",\"min\":\"1.25\",\"count\":2}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_periodic_snapshot(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--save-interval-ms", "200", NULL};
    start(s, args);
    post(s, "\"8\"", now_ms(), 201);
    sleep_ms(700);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL); /* no shutdown save */
    start(s, args);
    expect_stats(
        s, "{\"sum\":\"8.00\",\"avg\":\"8.00\",\"max\":\"8.00\",\"min\":\"8.00\",\"count\":1}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_damaged_snapshot_refused(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    post(s, "\"8\"", now_ms(), 201);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    char snap[160];
    snprintf(snap, sizeof(snap), "%s/checkpoint.bin", s->data_dir);
    size_t len = 0;
    char *good = read_file(snap, &len);
    assert_non_null(good);
    FILE *f = fopen(snap, "wb"); /* cut in the middle */
    fwrite(good, 1, len / 2, f);
    fclose(f);
    free(good);
    good = read_file(snap, &len);
    assert_int_equal(server_start(s, NULL), 1);
    size_t len2;
    char *after = read_file(snap, &len2); /* untouched */
    assert_int_equal(len, len2);
    assert_memory_equal(good, after, len);
    free(good);
    free(after);
}

static void test_second_server_refused(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    struct server other = *s;
    other.pid = 0;
    strcat(other.dir, "/other"); /* its own port file, the same data dir */
    mkdir(other.dir, 0700);
    assert_int_equal(server_start(&other, NULL), 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- admin token ---------------------------------------------------------------------------- */

static void delete_with(struct server *s, const char *auth, int status)
{
    int fd = http_connect(s->port);
    struct resp r;
    assert_int_equal(http_request(fd, "DELETE", "/transactions", auth, NULL, 0, &r), 0);
    if (r.status != status)
        fail_msg("DELETE with '%s': %d, want %d", auth ? auth : "", r.status, status);
    resp_free(&r);
    close(fd);
}

static void test_admin_token(void **state)
{
    struct server *s = *state;
    char tokfile[128];
    snprintf(tokfile, sizeof(tokfile), "%s/token", s->dir);
    FILE *f = fopen(tokfile, "w");
    fputs("s3cret-token-123\n", f);
    fclose(f);
    const char *args[] = {"--admin-token-file", tokfile, NULL};
    start(s, args);
    post(s, "\"1\"", now_ms(), 201);
    static const struct {
        const char *header;
        int status;
    } refused[] = {
        {NULL, 401},
        {"Authorization: Basic Zm9vOmJhcg==\r\n", 401},
        {"Authorization: Bearer\r\n", 401},
        {"Authorization: Bearers3cret-token-123\r\n", 401},
        {"Authorization: Bearer wrong\r\n", 403},
        {"Authorization: Bearer s3cret-token-12\r\n", 403},
        {"Authorization: Bearer s3cret-token-1234\r\n", 403},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        delete_with(s, refused[i].header, refused[i].status);
    expect_stats(
        s, "{\"sum\":\"1.00\",\"avg\":\"1.00\",\"max\":\"1.00\",\"min\":\"1.00\",\"count\":1}");
    /* RFC 9110 §11.4: 1*SP after the scheme, whose case does not matter (§11.1). */
    static const char *accepted[] = {"Authorization: Bearer s3cret-token-123\r\n",
                                     "Authorization: Bearer   s3cret-token-123\r\n",
                                     "Authorization: bearer s3cret-token-123\r\n"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        post(s, "\"1\"", now_ms(), 201);
        delete_with(s, accepted[i], 204);
        expect_stats(s, EMPTY_STATS);
    }
    assert_int_equal(server_stop(s, SIGTERM), 0);
    /* From the environment. */
    setenv("TXSTATS_ADMIN_TOKEN", "from-the-environment", 1);
    start(s, NULL);
    delete_with(s, NULL, 401);
    delete_with(s, "Authorization: Bearer from-the-environment\r\n", 204);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    unsetenv("TXSTATS_ADMIN_TOKEN");
}

/* ---- options -------------------------------------------------------------------------------- */

static int run_cli(const char *const *args, char *out, size_t cap)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        const char *argv[16] = {server_bin};
        for (int i = 0; args[i]; i++)
            argv[i + 1] = args[i];
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(pipefd[0], out + n, cap - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_options(void **state)
{
    char out[16384];
    const char *help[] = {"--help", NULL};
    assert_int_equal(run_cli(help, out, sizeof(out)), 0);
    static const char *names[] = {"--listen",           "--threads",          "--window-ms",
                                  "--max-skew-ms",      "--max-retained",     "--max-body-bytes",
                                  "--data-dir",         "--save-interval-ms", "--admin-token-file",
                                  "--access-log",       "--log-level",        "TXSTATS_LISTEN",
                                  "TXSTATS_ADMIN_TOKEN"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(out, names[i]))
            fail_msg("--help does not mention %s", names[i]);
    const char *version[] = {"--version", NULL};
    assert_int_equal(run_cli(version, out, sizeof(out)), 0);
    assert_non_null(strstr(out, txstats_version()));
    static const char *bad[][3] = {{"--threads", "0", NULL},
                                   {"--threads", "many", NULL},
                                   {"--window-ms", "-5", NULL},
                                   {"--log-level", "loud", NULL},
                                   {"--no-such-option", NULL, NULL},
                                   {"--listen", NULL, NULL},
                                   {"--max-body-bytes=12x", NULL, NULL},
                                   {"--listen", "[::1]:8080", NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run_cli(bad[i], out, sizeof(out)), 2);
        assert_non_null(strstr(out, "txstats-server:"));
    }
    setenv("TXSTATS_WINDOW_MS", "soon", 1);
    assert_int_equal(run_cli(version, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "TXSTATS_WINDOW_MS"));
    unsetenv("TXSTATS_WINDOW_MS");
}

static void test_disk_full(void **state)
{
    struct server *s = *state;
    char mnt[128];
    snprintf(mnt, sizeof(mnt), "%s/small", s->dir);
    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=512k") != 0) {
        print_message("SKIP test_disk_full: cannot mount a small tmpfs (%s)\n", strerror(errno));
        skip();
    }
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", mnt);
    start(s, NULL);
    post(s, "\"1\"", now_ms(), 201);
    char filler[160];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fill_disk(filler);
    int refused = 0;
    char body[128];
    for (int i = 0; i < 300 && !refused; i++) {
        struct resp r =
            expect(s, "POST", "/transactions", tx_json(body, sizeof(body), "\"2\"", now_ms()), -1);
        if (r.status == 503) {
            assert_non_null(strstr(r.body, "No space left on device"));
            refused = 1;
        } else {
            assert_int_equal(r.status, 201);
        }
        resp_free(&r);
    }
    assert_true(refused);
    struct resp r = expect(s, "GET", "/statistics", NULL, 200); /* reads keep working */
    resp_free(&r);
    expect_status(s, "GET", "/healthz", NULL, 200);
    assert_int_equal(unlink(filler), 0);
    post(s, "\"5\"", now_ms(), 201); /* recovers by itself */
    assert_int_equal(server_stop(s, SIGTERM), 0);
    start(s, NULL); /* nothing corrupt on disk */
    assert_int_equal(server_stop(s, SIGTERM), 0);
    umount2(mnt, MNT_DETACH);
}

static void test_live_view(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--stream-interval-ms", "200", "--max-streams", "1", NULL};
    start(s, args);
    post(s, "\"2.5\"", now_ms(), 201);
    int fd = http_connect(s->port);
    const char *req = "GET /statistics/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(write(fd, req, strlen(req)) > 0);
    char buf[8192];
    size_t got = 0;
    int64_t until = now_ms() + 3000;
    while (now_ms() < until && got < sizeof(buf) - 1) { /* three events arrive within 1 s */
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        int events = 0;
        for (char *p = strstr(buf, "data: "); p; p = strstr(p + 1, "data: "))
            events++;
        if (events >= 3)
            break;
    }
    buf[got] = '\0';
    assert_non_null(strstr(buf, "Content-Type: text/event-stream"));
    assert_non_null(strstr(
        buf,
        "data: "
        "{\"sum\":\"2.50\",\"avg\":\"2.50\",\"max\":\"2.50\",\"min\":\"2.50\",\"count\":1}\n\n"));
    /* --max-streams 1: a second stream is refused while the first is open */
    struct resp r = expect(s, "GET", "/statistics/stream", NULL, 503);
    assert_non_null(resp_header(&r, "Retry-After"));
    resp_free(&r);
    close(fd);
    r = expect(s, "GET", "/", NULL, 200);
    assert_non_null(strstr(r.headers, "text/html"));
    assert_non_null(strstr(r.body, "EventSource(withWindow(\"/statistics/stream\"))"));
    resp_free(&r);
    r = expect(s, "GET", "/metrics", NULL, 200);
    assert_non_null(strstr(r.body, "txstats_http_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert_non_null(strstr(r.body, "txstats_window_amount{window=\"1m\",stat=\"sum\"} 2.50"));
    resp_free(&r);
    /* A stream ends at shutdown: the server still stops quickly with a client attached. */
    fd = http_connect(s->port);
    assert_true(write(fd, req, strlen(req)) > 0);
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    int64_t t0 = now_ms();
    assert_int_equal(server_stop(s, SIGTERM), 0);
    assert_true(now_ms() - t0 < 3000);
    close(fd);
}

static void test_access_log(void **state)
{
    struct server *s = *state;
    char logpath[128];
    snprintf(logpath, sizeof(logpath), "%s/access.log", s->dir);
    const char *args[] = {"--access-log", logpath, NULL};
    start(s, args);
    expect_status(s, "GET", "/statistics", NULL, 200);
    expect_status(s, "DELETE", "/nowhere", NULL, 404);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    size_t len;
    char *log = read_file(logpath, &len);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"GET /statistics HTTP/1.1\" 200 "));
    assert_non_null(strstr(log, "\"DELETE /nowhere HTTP/1.1\" 404 "));
    free(log);
}

static void test_env_twins(void **state)
{
    struct server *s = *state;
    setenv("TXSTATS_WINDOW_MS", "2000", 1);
    start(s, NULL);
    unsetenv("TXSTATS_WINDOW_MS");
    post(s, "\"1\"", now_ms() - 2500, 204); /* out of a 2 s window */
    post(s, "\"1\"", now_ms() - 1500, 201);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_body_limits(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--max-body-bytes", "1024", NULL};
    start(s, args);
    char *big = malloc(1 << 20);
    memset(big, ' ', 1 << 20);
    memcpy(big, "{\"amount\":\"1\",", 14);
    big[(1 << 20) - 1] = '}';
    int fd = http_connect(s->port);
    struct resp r;
    /* Only the headers go out: the server must answer without waiting for 1 MiB. */
    const char *head = "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    assert_true(write(fd, head, strlen(head)) > 0);
    memset(&r, 0, sizeof(r));
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_int_equal(strncmp(buf, "HTTP/1.1 413", 12), 0);
    close(fd);
    free(big);
    /* Chunked upload past the limit. */
    fd = http_connect(s->port);
    const char *chunked =
        "POST /transactions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(write(fd, chunked, strlen(chunked)) > 0);
    char chunk[2100];
    int k = snprintf(chunk, sizeof(chunk), "800\r\n");
    memset(chunk + k, ' ', 2048);
    memcpy(chunk + k + 2048, "\r\n0\r\n\r\n", 7);
    assert_true(write(fd, chunk, (size_t)k + 2055) > 0);
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_int_equal(strncmp(buf, "HTTP/1.1 413", 12), 0);
    close(fd);
    expect_stats(s, EMPTY_STATS);
    expect_status(s, "GET", "/healthz", NULL, 200);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- the N26 acceptance scenarios, with our own data ---------------------------------------- */

static void test_n26_scenarios(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t t = now_ms();
    /* 1. 100 in-window transactions: 1..100 */
    for (int i = 1; i <= 100; i++) {
        char a[16];
        snprintf(a, sizeof(a), "\"%d\"", i);
        post(s, a, t - i * 10, 201);
    }
    expect_stats(s, "{\"sum\":\"5050.00\",\"avg\":\"50.50\",\"max\":\"100.00\",\"min\":\"1.00\","
                    "\"count\":100}");
    /* 2. outdated ones: 204, not counted */
    for (int i = 0; i < 10; i++)
        post(s, "\"1000\"", t - 60000 - i * 1000, 204);
    expect_stats(s, "{\"sum\":\"5050.00\",\"avg\":\"50.50\",\"max\":\"100.00\",\"min\":\"1.00\","
                    "\"count\":100}");
    expect_status(s, "DELETE", "/transactions", NULL, 204);
    expect_stats(s, EMPTY_STATS);
    /* 3. 2000 random transactions, checked against our own sums */
    unsigned seed = 2026;
    long long micros = 0, lo = 1LL << 62, hi = -(1LL << 62);
    int fd = http_connect(s->port);
    t = now_ms();
    for (int i = 0; i < 2000; i++) {
        long long m = (long long)(rand_r(&seed) % 100000000) - 20000000; /* -20 .. 80, 6 places */
        char body[160], a[32];
        txstats_amount_format(m, a + 1, sizeof(a) - 2);
        a[0] = '"';
        strcat(a, "\"");
        tx_json(body, sizeof(body), a, t - rand_r(&seed) % 30000);
        struct resp r;
        assert_int_equal(http_request(fd, "POST", "/transactions", NULL, body, strlen(body), &r),
                         0);
        assert_int_equal(r.status, 201);
        resp_free(&r);
        micros += m;
        lo = m < lo ? m : lo;
        hi = m > hi ? m : hi;
    }
    close(fd);
    txstats_summary_t sum = {.count = 2000,
                             .min = lo,
                             .max = hi,
                             .sum_hi = micros < 0 ? -1 : 0,
                             .sum_lo = (uint64_t)micros};
    txstats_summary_text_t x;
    txstats_summary_text(&sum, &x);
    char want[256];
    snprintf(want, sizeof(want),
             "{\"sum\":\"%s\",\"avg\":\"%s\",\"max\":\"%s\",\"min\":\"%s\",\"count\":2000}", x.sum,
             x.avg, x.max, x.min);
    expect_stats(s, want);
    expect_status(s, "DELETE", "/transactions", NULL, 204);
    /* 4. expiring: in the window now, out after a 5 s sleep */
    const char *args[] = {NULL};
    (void)args;
    t = now_ms();
    post(s, "\"42\"", t - 56500, 201); /* leaves 3.5 s from now */
    expect_stats(
        s, "{\"sum\":\"42.00\",\"avg\":\"42.00\",\"max\":\"42.00\",\"min\":\"42.00\",\"count\":1}");
    sleep_ms(5000);
    expect_stats(s, EMPTY_STATS);
    /* 5. JSON errors: not JSON 400, "Hello world!" 400, future 422 */
    expect_status(s, "POST", "/transactions", "{", 400);
    expect_status(s, "POST", "/transactions", "\"Hello world!\"", 400);
    post(s, "\"1\"", now_ms() + 10000, 422);
    /* 6. BigDecimal rounding: 5, 3, 3 -> avg 3.67 */
    t = now_ms();
    post(s, "\"5\"", t, 201);
    post(s, "\"3\"", t, 201);
    post(s, "3", t, 201);
    expect_stats(
        s, "{\"sum\":\"11.00\",\"avg\":\"3.67\",\"max\":\"5.00\",\"min\":\"3.00\",\"count\":3}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    if (!server_bin) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_routes),
        T(test_validation),
        T(test_rounding),
        T(test_listing),
        T(test_large_listing),
        T(test_expiry_real_time),
        T(test_keep_alive),
        T(test_concurrent_posts),
        T(test_restart_keeps_state),
        T(test_periodic_snapshot),
        T(test_damaged_snapshot_refused),
        T(test_second_server_refused),
        T(test_admin_token),
        cmocka_unit_test(test_options),
        T(test_env_twins),
        T(test_body_limits),
        T(test_access_log),
        T(test_disk_full),
        T(test_live_view),
        T(test_n26_scenarios),
    };
    return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
