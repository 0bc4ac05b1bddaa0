/* SPDX-License-Identifier: MIT */
/* GET /statistics/distribution end to end: the answer, the q validation, /metrics, 405,
 * the distribution surviving a restart; and the `q` parser and JSON writer on their own. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "helpers.h"
#include "quantiles.h"

static struct resp expect(struct server *s, const char *method, const char *path, const char *body,
                          int status)
{
    struct resp r;
    if (http(s->port, method, path, body, &r) != 0)
        fail_msg("%s %s: no response", method, path);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body);
    return r;
}

static void post(struct server *s, const char *amount, int64_t ts)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":%lld}", amount, (long long)ts);
    struct resp r = expect(s, "POST", "/transactions", body, 201);
    resp_free(&r);
}

/* The number after `key` in `body` is within 0.1 % (plus the cent of rounding) of `want`. */
static void near(const char *body, const char *key, double want)
{
    const char *p = strstr(body, key);
    if (!p)
        fail_msg("%s not in %s", key, body);
    double got = strtod(p + strlen(key), NULL);
    if (got < want - want / 1000 - 0.005 || got > want + want / 1000 + 0.005)
        fail_msg("%s %f, want %f within 0.1 %%", key, got, want);
}

static void test_route(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    struct resp r = expect(s, "GET", "/statistics/distribution", NULL, 200);
    assert_string_equal(r.body, "{\"count\":0,\"quantiles\":{\"0.5\":\"0.00\",\"0.9\":\"0.00\","
                                "\"0.99\":\"0.00\"},\"histogram\":[]}");
    assert_non_null(strstr(resp_header(&r, "Content-Type"), "application/json"));
    resp_free(&r);
    int64_t now = now_ms();
    /* 1..100, and 1000: the median is 50, the 0.99 quantile 100 (nearest rank, exact here). */
    for (int i = 1; i <= 100; i++) {
        char a[16];
        snprintf(a, sizeof(a), "%d", i);
        post(s, a, now);
    }
    post(s, "1000", now);
    r = expect(s, "GET", "/statistics/distribution?q=0,0.5,0.99,1", NULL, 200);
    assert_non_null(strstr(r.body, "{\"count\":101,\"quantiles\":{\"0\":\"1.00\",\"0.5\":\""));
    near(r.body, "\"0.5\":\"", 51);
    near(r.body, "\"0.99\":\"", 100);
    assert_non_null(strstr(r.body,
                           "\"1\":\"1000.00\"},\"histogram\":[{\"le\":\"1.00\","
                           "\"count\":1},{\"le\":\"10.00\",\"count\":10},{\"le\":"
                           "\"100.00\",\"count\":100},{\"le\":\"1000.00\",\"count\":101}]}"));
    resp_free(&r);
    /* GET /statistics keeps exactly its five keys. */
    r = expect(s, "GET", "/statistics", NULL, 200);
    assert_string_equal(r.body, "{\"sum\":\"6050.00\",\"avg\":\"59.90\",\"max\":\"1000.00\","
                                "\"min\":\"1.00\",\"count\":101}");
    resp_free(&r);
    r = expect(s, "GET", "/metrics", NULL, 200);
    near(r.body, "txstats_window_amount_quantile{window=\"1m\",quantile=\"0.5\"} ", 51);
    near(r.body, "txstats_window_amount_quantile{window=\"1m\",quantile=\"0.9\"} ", 91);
    near(r.body, "txstats_window_amount_quantile{window=\"1m\",quantile=\"0.99\"} ", 100);
    resp_free(&r);
    r = expect(s, "POST", "/statistics/distribution", "{}", 405);
    assert_int_equal(strncmp(resp_header(&r, "Allow"), "GET, HEAD, OPTIONS\r", 19), 0);
    resp_free(&r);

    /* It survives a restart (snapshot at shutdown, every amount retained). */
    assert_int_equal(server_stop(s, SIGTERM), 0);
    assert_int_equal(server_start(s, NULL), 0);
    r = expect(s, "GET", "/statistics/distribution?q=0.5", NULL, 200);
    assert_non_null(strstr(r.body, "{\"count\":101,\"quantiles\":{\"0.5\":\""));
    near(r.body, "\"0.5\":\"", 51);
    resp_free(&r);
}

static void test_bad_q(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    static const char *const bad[] = {
        "q=",         "q=1.1",  "q=-0.5",     "q=.5",      "q=0.5,",  "q=,0.5",
        "q=0.5,,0.9", "q=0,5",  "q=1.01",     "q=0.5;0.9", "q=abc",   "q=0.5&x=1",
        "x=0.5",      "Q=0.5",  "q=0.5,0.50", "q=1e-1",    "q=0.5%2", "q=0.1234567891",
        "q=0.5%20",   "q=+0.5", "q=00.5",     "q=0x1",     "q=NaN",   "limit=3",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/statistics/distribution?%s", bad[i]);
        struct resp r = expect(s, "GET", path, NULL, 400);
        assert_non_null(strstr(r.body, "\"error\""));
        resp_free(&r);
    }
    char path[512] = "/statistics/distribution?q=0";
    for (int i = 1; i < 32; i++)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), ",0.%02d", i);
    struct resp r = expect(s, "GET", path, NULL, 200); /* 32 levels */
    resp_free(&r);
    strcat(path, ",1");
    r = expect(s, "GET", path, NULL, 400); /* 33 */
    resp_free(&r);
    r = expect(s, "GET", "/statistics/distribution?q=0.999999999%2C1.000000000", NULL, 200);
    assert_non_null(strstr(r.body, "\"0.999999999\":\"0.00\",\"1\":\"0.00\""));
    resp_free(&r);
}

/* The parser and the writer, without HTTP. */
static void test_parse_and_write(void **state)
{
    struct srv_qlist q;
    char err[160];
    assert_int_equal(srv_quantiles_parse("q=0.50,0.999,1.0,0", &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, 4);
    assert_string_equal(q.text[0], "0.5");
    assert_int_equal(q.q_ppb[1], 999000000);
    assert_string_equal(q.text[2], "1");
    assert_string_equal(q.text[3], "0");
    assert_int_equal(srv_quantiles_parse(NULL, &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, 3);
    assert_int_equal(srv_quantiles_parse("q=2", &q, err, sizeof(err)), -1);

    txstats_dist_t *d;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_dist_add(d, amt("-0.005"), 1), TXSTATS_OK); /* "-0.01" HALF_UP */
    assert_int_equal(txstats_dist_add(d, amt("0.004"), 1), TXSTATS_OK);  /* "0.00", never -0 */
    assert_int_equal(txstats_dist_add(d, amt("2.345"), 2), TXSTATS_OK);
    assert_int_equal(srv_quantiles_parse("q=0,0.25,0.5,1", &q, err, sizeof(err)), 0);
    char buf[1024];
    assert_true(srv_distribution_json(d, &q, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "{\"count\":4,\"quantiles\":{\"0\":\"-0.01\",\"0.25\":\"-0.01\","
                             "\"0.5\":\"0.00\",\"1\":\"2.35\"},\"histogram\":["
                             "{\"le\":\"0.00\",\"count\":1},{\"le\":\"0.01\",\"count\":2},"
                             "{\"le\":\"0.10\",\"count\":2},{\"le\":\"1.00\",\"count\":2},"
                             "{\"le\":\"2.345\",\"count\":4}]}");
    assert_int_equal(srv_distribution_json(d, &q, buf, 20), -1);
    /* Bounds print exactly: below a cent they differ (the quantiles stay in cents). */
    txstats_dist_clear(d);
    assert_int_equal(txstats_dist_add(d, amt("0.001"), 1), TXSTATS_OK);
    assert_int_equal(txstats_dist_add(d, amt("0.000512"), 1), TXSTATS_OK);
    assert_true(srv_distribution_json(d, &q, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "{\"le\":\"0.001\",\"count\":2}"));
    txstats_dist_destroy(d);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    if (!server_bin) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route, server_test_setup, server_test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_q, server_test_setup, server_test_teardown),
        cmocka_unit_test(test_parse_and_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
