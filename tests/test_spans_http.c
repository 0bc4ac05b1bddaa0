/* SPDX-License-Identifier: MIT */
/* Spans (issue 21) over real HTTP: --window-ms as a list (every good and bad form, the
 * environment twin), GET /statistics/windows, ?window= on every statistics route with two spans
 * answering differently, an unknown span 400 everywhere, the window label of /metrics, keys per
 * span, expiry per span, and every span after kill -9, SIGTERM and a change of the list. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <txstats/txstats.h>

#include "harness.h"
#include "json_check.h"

#define STATS(sum, avg, max, min, n)                                                               \
    "{\"sum\":\"" sum "\",\"avg\":\"" avg "\",\"max\":\"" max "\",\"min\":\"" min                  \
    "\",\"count\":" #n "}"
#define EMPTY STATS("0.00", "0.00", "0.00", "0.00", 0)
#define ENTRY(k, sum, avg, max, min, n)                                                            \
    "{\"key\":\"" k "\",\"sum\":\"" sum "\",\"avg\":\"" avg "\",\"max\":\"" max                    \
    "\",\"min\":\"" min "\",\"count\":" #n "}"

static void start(struct server *s, const char *const *args)
{
    assert_int_equal(server_start(s, args), 0);
}

static struct resp get(struct server *s, const char *path, int status)
{
    struct resp r;
    assert_int_equal(http(s->port, "GET", path, NULL, &r), 0);
    if (r.status != status)
        fail_msg("GET %s: %d, want %d: %s", path, r.status, status, r.body);
    return r;
}

static void expect_body(struct server *s, const char *path, const char *want)
{
    struct resp r = get(s, path, 200);
    if (strcmp(r.body, want) != 0)
        fail_msg("GET %s:\n got  %s\n want %s", path, r.body, want);
    resp_free(&r);
}

static void expect_contains(struct server *s, const char *path, const char *want)
{
    struct resp r = get(s, path, 200);
    if (!strstr(r.body, want))
        fail_msg("GET %s:\n got  %s\n want it to contain %s", path, r.body, want);
    resp_free(&r);
}

/* POST {"amount","timestamp"[,"key"]}: the status. */
static int post(struct server *s, const char *key, const char *amount, int64_t ts)
{
    char body[256];
    struct resp r;
    snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":%lld%s%s%s}", amount,
             (long long)ts, key ? ",\"key\":\"" : "", key ? key : "", key ? "\"" : "");
    assert_int_equal(http(s->port, "POST", "/transactions", body, &r), 0);
    int st = r.status;
    resp_free(&r);
    return st;
}

/* ---- the option ------------------------------------------------------------------------------ */

/* Run the server with `value` as --window-ms (or, env, as TXSTATS_WINDOW_MS) and `extra`; its
 * exit status once it exits, with what it wrote on stderr in err. Bad lists exit 2 at once. */
static int run_cli(struct server *s, const char *value, bool env, const char *extra, char *err,
                   size_t n)
{
    char path[160], data[160];
    snprintf(path, sizeof(path), "%s/stderr", s->dir);
    snprintf(data, sizeof(data), "%s/cli-data", s->dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        if (env)
            setenv("TXSTATS_WINDOW_MS", value, 1);
        const char *argv[] = {server_bin,
                              "--listen",
                              "127.0.0.1:0",
                              "--data-dir",
                              data,
                              extra ? extra : "--log-level",
                              extra ? "1" : "warn",
                              env ? NULL : "--window-ms",
                              value,
                              NULL};
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    int status;
    for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
        sleep_ms(10);
    if (waitpid(pid, &status, WNOHANG) == 0) { /* it started: not a bad list */
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(err, 1, n - 1, f) : 0;
    err[got] = '\0';
    if (f)
        fclose(f);
    struct stat st;
    assert_int_not_equal(stat(data, &st), 0); /* nothing touched the data directory */
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const struct {
    const char *value, *why; /* why: what the message must say */
} bad[] = {
    {"", "an empty span"},
    {"60s,,5m", "an empty span"},
    {"60s,", "an empty span"},
    {",60s", "an empty span"},
    {"0", "at least 1 ms"},
    {"0s", "at least 1 ms"},
    {"5m,0ms", "'0ms': a span is at least 1 ms"},
    {"60s,60000", "'60000' is listed twice: it is 1m, like span 1"},
    {"1h,5m,60m", "'60m' is listed twice: it is 1h, like span 1"},
    {"1d,24h", "listed twice"},
    {"1,2,3,4,5,6,7,8,9", "at most 8 spans"},
    {"1s,2s,3s,4s,5s,6s,7s,8s,9s", "at most 8 spans"},
    {"32d", "'32d' is longer than the longest span allowed, 31d (2678400000 ms)"},
    {"2678400001", "longer than the longest span allowed"},
    {"44641m", "longer than the longest span allowed"},
    {"99999999999999999999999999", "longer than the longest span allowed"}, /* overflow */
    {"9223372036854775807d", "longer than the longest span allowed"},
    {"18446744073709551617", "longer than the longest span allowed"},
    {"5x", "'5x': unknown unit 'x' (ms, s, m, h or d, lower case)"},
    {"5min", "unknown unit 'min'"},
    {"5sec", "unknown unit 'sec'"},
    {"5M", "unknown unit 'M'"},
    {"60S", "unknown unit 'S'"},
    {"1w", "unknown unit 'w'"},
    {"1.5h", "'1.5h' is not a span"},
    {"-5", "not a span"},
    {"+5", "not a span"},
    {" 5m", "not a span"},
    {"5m ", "not a span"},
    {"5m, 1h", "not a span"},
    {"h", "not a span"},
    {"1e3", "not a span"},
    {"0x10", "not a span"},
};

static void test_bad_lists_exit_2(void **state)
{
    struct server *s = *state;
    char err[1024];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int env = 0; env < 2; env++) {
            int rc = run_cli(s, bad[i].value, env, NULL, err, sizeof(err));
            const char *from = env ? "TXSTATS_WINDOW_MS '" : "--window-ms '";
            if (rc != 2 || !strstr(err, bad[i].why) || !strstr(err, from))
                fail_msg("%s'%s': exit %d, want 2 saying \"%s\": %s", env ? "env " : "",
                         bad[i].value, rc, bad[i].why, err);
        }
    }
    /* The longest span and the skew together stay within 31 days. */
    assert_int_equal(run_cli(s, "1m,31d", false, "--max-skew-ms", err, sizeof(err)), 2);
    assert_non_null(strstr(err, "the longest --window-ms span + --max-skew-ms must not exceed"));
}

static const struct {
    const char *value, *windows; /* windows: GET /statistics/windows */
} good[] = {
    {"60000", "{\"default\":\"1m\",\"windows\":[{\"name\":\"1m\",\"ms\":60000}]}"},
    {"60s,5m,1h,24h", "{\"default\":\"1m\",\"windows\":[{\"name\":\"1m\",\"ms\":60000},{\"name\":"
                      "\"5m\",\"ms\":300000},{\"name\":\"1h\",\"ms\":3600000},{\"name\":\"1d\","
                      "\"ms\":86400000}]}"},
    {"1h,1500,90s,31d", "{\"default\":\"1h\",\"windows\":[{\"name\":\"1h\",\"ms\":3600000},{"
                        "\"name\":\"1500ms\",\"ms\":1500},{\"name\":\"90s\",\"ms\":90000},{"
                        "\"name\":\"31d\",\"ms\":2678400000}]}"},
    {"250ms,1000ms,7d", "{\"default\":\"250ms\",\"windows\":[{\"name\":\"250ms\",\"ms\":250},{"
                        "\"name\":\"1s\",\"ms\":1000},{\"name\":\"7d\",\"ms\":604800000}]}"},
    {"1,2,3,4,5,6,7,2678400000",
     "{\"default\":\"1ms\",\"windows\":[{\"name\":\"1ms\",\"ms\":1},{\"name\":\"2ms\",\"ms\":2},"
     "{\"name\":\"3ms\",\"ms\":3},{\"name\":\"4ms\",\"ms\":4},{\"name\":\"5ms\",\"ms\":5},{"
     "\"name\":\"6ms\",\"ms\":6},{\"name\":\"7ms\",\"ms\":7},{\"name\":\"31d\",\"ms\":"
     "2678400000}]}"},
    {"0060s", "{\"default\":\"1m\",\"windows\":[{\"name\":\"1m\",\"ms\":60000}]}"},
};

static void test_good_lists(void **state)
{
    struct server *s = *state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *args[] = {"--window-ms", good[i].value, NULL};
        start(s, args);
        expect_body(s, "/statistics/windows", good[i].windows);
        assert_int_equal(server_stop(s, SIGTERM), 0);
    }
    /* The environment twin, and the command line winning over it. */
    setenv("TXSTATS_WINDOW_MS", "5m,1h", 1);
    start(s, NULL);
    expect_body(s, "/statistics/windows",
                "{\"default\":\"5m\",\"windows\":[{\"name\":\"5m\",\"ms\":300000},{\"name\":\"1h\","
                "\"ms\":3600000}]}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
    const char *args[] = {"--window-ms", "30s", NULL};
    start(s, args);
    unsetenv("TXSTATS_WINDOW_MS");
    expect_body(s, "/statistics/windows",
                "{\"default\":\"30s\",\"windows\":[{\"name\":\"30s\",\"ms\":30000}]}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- the routes ------------------------------------------------------------------------------ */

/* Spans 30s (the default) and 1h: a transaction now and two older ones of 10 and 20 minutes, one
 * past the hour (204). In 30s: 10.00 of k1; in 1h: 10.00 and 1.00 of k1, 100.00 of k2. */
static const char *const spans_args[] = {"--window-ms", "30s,1h", "--stream-max-seconds", "1",
                                         NULL};
#define S30 STATS("10.00", "10.00", "10.00", "10.00", 1)
#define S1H STATS("111.00", "37.00", "100.00", "1.00", 3)

static void post_three(struct server *s)
{
    int64_t now = now_ms();
    assert_int_equal(post(s, "k1", "10", now), 201);
    assert_int_equal(post(s, "k2", "100", now - 10 * 60000), 201);
    assert_int_equal(post(s, "k1", "1", now - 20 * 60000), 201);
    assert_int_equal(post(s, "k3", "5", now - 61 * 60000), 204); /* past the longest span */
}

/* Each span under every name of it: 30s = 30000 = 30000ms, 1h = 60m = 3600s = 3600000. */
static const char *const as30[] = {
    "", "?window=30s", "?window=30000", "?window=30000ms", "?window=%33%30s", NULL};
static const char *const as1h[] = {"?window=1h", "?window=60m", "?window=3600s", "?window=3600000",
                                   NULL};

static void expect_statistics(struct server *s, const char *const *names, const char *want)
{
    for (; *names; names++) {
        char path[96];
        snprintf(path, sizeof(path), "/statistics%s", *names);
        expect_body(s, path, want);
        snprintf(path, sizeof(path), "/transactions/statistics%s", *names);
        expect_body(s, path, want);
    }
}

static void expect_spans(struct server *s)
{
    expect_statistics(s, as30, S30);
    expect_statistics(s, as1h, S1H);
    expect_body(s, "/statistics?key=k1", S30);
    expect_body(s, "/statistics?key=k1&window=1h", STATS("11.00", "5.50", "10.00", "1.00", 2));
    expect_body(s, "/statistics?window=60m&key=k2",
                STATS("100.00", "100.00", "100.00", "100.00", 1));
    expect_body(s, "/statistics?key=k2", EMPTY);
    expect_body(s, "/statistics?key=k3&window=1h", EMPTY);
    expect_body(s, "/statistics/top",
                "{\"by\":\"sum\",\"limit\":10,\"keys\":[" ENTRY("k1", "10.00", "10.00", "10.00",
                                                                "10.00", 1) "]}");
    expect_body(s, "/statistics/top?window=1h",
                "{\"by\":\"sum\",\"limit\":10,\"keys\":[" ENTRY(
                    "k2", "100.00", "100.00", "100.00", "100.00",
                    1) "," ENTRY("k1", "11.00", "5.50", "10.00", "1.00", 2) "]}");
    expect_body(s, "/statistics/top?by=count&limit=1&window=3600000",
                "{\"by\":\"count\",\"limit\":1,\"keys\":[" ENTRY("k1", "11.00", "5.50", "10.00",
                                                                 "1.00", 2) "]}");
}

static void test_routes_per_span(void **state)
{
    struct server *s = *state;
    start(s, spans_args);
    post_three(s);
    expect_spans(s);
    expect_contains(s, "/statistics/distribution?q=0,1",
                    "{\"count\":1,\"quantiles\":{\"0\":\"10.00\",\"1\":\"10.00\"}");
    expect_contains(s, "/statistics/distribution?window=1h&q=0,1",
                    "{\"count\":3,\"quantiles\":{\"0\":\"1.00\",\"1\":\"100.00\"}");
    expect_contains(s, "/transactions", "[{\"amount\":\"10.00\",");
    expect_contains(s, "/transactions", "],\"count\":1,\"truncated\":false}");
    expect_contains(s, "/transactions?window=1h", "[{\"amount\":\"1.00\",");
    expect_contains(s, "/transactions?window=1h", "],\"count\":3,\"truncated\":false}");
    expect_contains(s, "/transactions?limit=1&window=60m", "[{\"amount\":\"1.00\",\"timestamp\":");
    expect_contains(s, "/transactions?limit=1&window=60m", "],\"count\":1,\"truncated\":true}");
    expect_body(
        s, "/statistics/windows",
        "{\"default\":\"30s\",\"windows\":[{\"name\":\"30s\",\"ms\":30000},{\"name\":\"1h\","
        "\"ms\":3600000}]}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* The first event of /statistics/stream[?window=]; the stream ends after 1 s. */
static void expect_stream(struct server *s, const char *query, const char *want)
{
    char req[160], out[4096];
    size_t got = 0;
    int n = snprintf(req, sizeof(req),
                     "GET /statistics/stream%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     query);
    int fd = http_connect(s->port);
    assert_true(fd >= 0);
    assert_true(raw_exchange(fd, req, (size_t)n, 3000, out, sizeof(out), &got) >= 0);
    close(fd);
    char data[320];
    snprintf(data, sizeof(data), "data: %s\n", want);
    if (!strstr(out, "200 OK") || !strstr(out, data))
        fail_msg("stream%s: %s\n want %s", query, out, data);
}

/* The count of the last point of /statistics/history[?window=]. */
static long long last_point_count(struct server *s, const char *query)
{
    char path[96];
    snprintf(path, sizeof(path), "/statistics/history%s", query);
    struct resp r = get(s, path, 200);
    const char *recent = strstr(r.body, "],\"recent\":"), *p = NULL;
    for (const char *q = strstr(r.body, "\"count\":"); q && q < recent;
         q = strstr(q + 1, "\"count\":"))
        p = q;
    long long c = p ? atoll(p + 8) : -1;
    resp_free(&r);
    return c;
}

/* The value of the /metrics line `line value`, or -1. */
static double metric(struct server *s, const char *line)
{
    struct resp r = get(s, "/metrics", 200);
    char nl[256];
    snprintf(nl, sizeof(nl), "\n%s ", line);
    const char *p = strstr(r.body, nl);
    double v = p ? strtod(p + strlen(nl), NULL) : -1;
    resp_free(&r);
    return v;
}

static void test_stream_history_metrics(void **state)
{
    struct server *s = *state;
    start(s, spans_args);
    post_three(s);
    expect_stream(s, "", S30);
    expect_stream(s, "?window=1h", S1H);
    sleep_ms(1100); /* a point of history sampled after the posts */
    assert_int_equal(last_point_count(s, ""), 1);
    assert_int_equal(last_point_count(s, "?window=30000"), 1);
    assert_int_equal(last_point_count(s, "?window=1h"), 3);
    assert_true(metric(s, "txstats_window_transactions{window=\"30s\"}") == 1);
    assert_true(metric(s, "txstats_window_transactions{window=\"1h\"}") == 3);
    assert_true(metric(s, "txstats_window_amount{window=\"1h\",stat=\"sum\"}") == 111);
    assert_true(metric(s, "txstats_window_amount{window=\"30s\",stat=\"max\"}") == 10);
    double q = metric(s, "txstats_window_amount_quantile{window=\"1h\",quantile=\"0.99\"}");
    assert_true(q >= 99.9 && q <= 100.1); /* within 0.1 % */
    q = metric(s, "txstats_window_amount_quantile{window=\"30s\",quantile=\"0.99\"}");
    assert_true(q >= 9.99 && q <= 10.01);
    assert_true(metric(s, "txstats_window_transactions") == -1); /* no series without a label */
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* Every statistics route: a span the server does not keep, or a bad one, is 400 naming the
 * spans it keeps; window twice is 400. */
static void test_unknown_span(void **state)
{
    struct server *s = *state;
    start(s, spans_args);
    static const char *const routes[] = {
        "/statistics?",          "/transactions/statistics?", "/statistics?key=k1&",
        "/statistics/top?",      "/statistics/distribution?", "/transactions?",
        "/statistics/stream?",   "/statistics/history?",      "/statistics/top?by=count&",
        "/transactions?limit=1&"};
    static const char *const windows[] = {"5m",   "31s",  "2h",  "0",   "abc",           "",
                                          "1.5h", "-30s", "30S", "%00", "30s&window=30s"};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        for (size_t k = 0; k < sizeof(windows) / sizeof(windows[0]); k++) {
            char path[160];
            snprintf(path, sizeof(path), "%swindow=%s", routes[i], windows[k]);
            struct resp r = get(s, path, 400);
            bool twice = strchr(windows[k], '&') != NULL, ctl = windows[k][0] == '%';
            const char *want = twice ? "'window' is given twice"
                               : ctl ? "invalid percent-escape in 'window'"
                                     : "this server keeps 30s, 1h (the first is the default)";
            if (!strstr(r.body, want))
                fail_msg("GET %s: %s, want it to say %s", path, r.body, want);
            resp_free(&r);
        }
    /* Bytes that are not UTF-8, echoed in the error: the body stays JSON (RFC 8259 §8.1). */
    static const char *const raw[] = {"/statistics?window=%ff", "/statistics?window=%C3",
                                      "/statistics?%ff=1", "/statistics?%C3%28=1",
                                      "/statistics/top?window=%ed%a0%80"};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        struct resp e = get(s, raw[i], 400);
        struct json_check_error jerr;
        if (json_check(e.body, strlen(e.body), 8, &jerr) != 0)
            fail_msg("GET %s: the error body is not JSON: %s", raw[i], e.body);
        resp_free(&e);
    }
    /* The routes that take no window say so. */
    struct resp r = get(s, "/healthz?window=1h", 400);
    resp_free(&r);
    r = get(s, "/statistics/windows?window=1h", 400);
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A transaction leaves the short span when its age reaches it, and stays in the long one. */
static void test_expiry_per_span(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--window-ms", "1s,1h", NULL};
    start(s, args);
    int64_t t0 = now_ms();
    assert_int_equal(post(s, "k", "2.5", t0), 201);
    assert_int_equal(post(s, "k", "7.5", t0 - 999), 201);
    expect_body(s, "/statistics?window=1h", STATS("10.00", "5.00", "7.50", "2.50", 2));
    while (now_ms() < t0 + 1000 + 20)
        sleep_ms(10);
    expect_body(s, "/statistics", EMPTY);
    expect_body(s, "/statistics?key=k", EMPTY);
    expect_body(s, "/statistics/top", "{\"by\":\"sum\",\"limit\":10,\"keys\":[]}");
    expect_body(s, "/statistics?window=1h", STATS("10.00", "5.00", "7.50", "2.50", 2));
    expect_body(s, "/statistics?key=k&window=1h", STATS("10.00", "5.00", "7.50", "2.50", 2));
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* kill -9 and SIGTERM keep every span; a restart with the list reordered and a span added
 * answers each span of the new list from what was kept; a data directory written with one span
 * loads into several. */
static void test_restarts(void **state)
{
    struct server *s = *state;
    start(s, spans_args);
    post_three(s);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    start(s, spans_args);
    expect_spans(s);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    start(s, spans_args);
    expect_spans(s);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    const char *reordered[] = {"--window-ms", "1h,30s,15m", NULL};
    start(s, reordered);
    expect_body(s, "/statistics", S1H);
    expect_body(s, "/statistics?window=30s", S30);
    expect_body(s, "/statistics?window=15m", STATS("110.00", "55.00", "100.00", "10.00", 2));
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    server_cleanup(s);
    server_init(s);
    const char *one[] = {"--window-ms", "60000", NULL}, *two[] = {"--window-ms", "1m,1h", NULL};
    start(s, one);
    assert_int_equal(post(s, NULL, "4.25", now_ms()), 201);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    start(s, two);
    expect_body(s, "/statistics", STATS("4.25", "4.25", "4.25", "4.25", 1));
    expect_body(s, "/statistics?window=1h", STATS("4.25", "4.25", "4.25", "4.25", 1));
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        server_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_bad_lists_exit_2), T(test_good_lists),
        T(test_routes_per_span),  T(test_stream_history_metrics),
        T(test_unknown_span),     T(test_expiry_per_span),
        T(test_restarts),
    };
    return cmocka_run_group_tests_name("spans over HTTP", tests, NULL, NULL);
}
