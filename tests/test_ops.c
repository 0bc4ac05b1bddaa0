/* SPDX-License-Identifier: MIT */
/* Operations features of the real server: access-log formats (combined, json), the per-second
 * history behind the dashboard, one rule for query parameters, and /openapi.json. */
#define _GNU_SOURCE
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "helpers.h"

/* One request; fails the test unless the status is `want`. The caller frees the response. */
static struct resp call(struct server *s, const char *method, const char *path, const char *hdrs,
                        const char *body, int want)
{
    struct resp r;
    int fd = http_connect(s->port);
    if (fd < 0 || http_request(fd, method, path, hdrs, body, body ? strlen(body) : 0, &r) != 0)
        fail_msg("%s %s: no response", method, path);
    close(fd);
    if (r.status != want)
        fail_msg("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body);
    return r;
}

static void post(struct server *s, const char *amount, int64_t ts)
{
    char body[128], t[32];
    txstats_timestamp_format(ts, t, sizeof(t));
    snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":\"%s\"}", amount, t);
    struct resp r = call(s, "POST", "/transactions", NULL, body, 201);
    resp_free(&r);
}

/* Start with an access log in `format`, make two requests, stop; the log's lines. */
static char **access_lines(struct server *s, const char *format, size_t *n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/access-%s.log", s->dir, format);
    const char *args[] = {"--access-log", path, "--access-log-format", format, NULL};
    assert_int_equal(server_start(s, args), 0);
    const char *ua = "User-Agent: agent \"quoted\" \\ back\r\nReferer: http://example.test/p\r\n";
    struct resp r = call(s, "GET", "/statistics", ua, NULL, 200);
    resp_free(&r);
    r = call(s, "GET", "/nowhere?q=%22x", NULL, NULL, 404);
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char **lines = calloc(8, sizeof(*lines));
    size_t cap = 0;
    for (*n = 0; *n < 8 && getline(&lines[*n], &cap, f) > 0; cap = 0)
        (*n)++;
    fclose(f);
    return lines;
}

/* Lines are written as requests finish, by different threads: find one by its request. */
static const char *line_with(char **lines, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(lines[i], text))
            return lines[i];
    fail_msg("no access-log line with %s", text);
    return NULL;
}

static void free_lines(char **lines)
{
    for (size_t i = 0; i < 8; i++)
        free(lines[i]);
    free(lines);
}

static void test_access_log_combined(void **state)
{
    size_t n;
    char **lines = access_lines(*state, "combined", &n);
    assert_int_equal(n, 2);
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^127\\.0\\.0\\.1 - - \\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:"
                "[0-9]{2} \\+0000\\] \"GET /statistics HTTP/1\\.1\" 200 - "
                "\"http://example\\.test/p\" \"agent \\\\\"quoted\\\\\" \\\\\\\\ back\"\n$",
                REG_EXTENDED | REG_NOSUB),
        0);
    const char *line = line_with(lines, n, "/statistics");
    int match = regexec(&re, line, 0, NULL, 0);
    regfree(&re);
    if (match != 0)
        fail_msg("not the combined format: %s", line);
    line_with(lines, n, "\"GET /nowhere?q=%22x HTTP/1.1\" 404 - \"-\" \"-\"");
    free_lines(lines);
}

static void test_access_log_json(void **state)
{
    size_t n;
    char **lines = access_lines(*state, "json", &n);
    assert_int_equal(n, 2);
    static const struct {
        const char *target, *ua;
        int status;
    } want[] = {{"/statistics", "agent \"quoted\" \\ back", 200}, {"/nowhere?q=%22x", "", 404}};
    for (size_t i = 0; i < n; i++) {
        const char *line = line_with(lines, n, want[i].target);
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("not one JSON object per line: %s", line);
        assert_string_equal(cJSON_GetObjectItem(o, "method")->valuestring, "GET");
        assert_string_equal(cJSON_GetObjectItem(o, "target")->valuestring, want[i].target);
        assert_string_equal(cJSON_GetObjectItem(o, "user_agent")->valuestring, want[i].ua);
        assert_string_equal(cJSON_GetObjectItem(o, "protocol")->valuestring, "HTTP/1.1");
        assert_string_equal(cJSON_GetObjectItem(o, "remote_addr")->valuestring, "127.0.0.1");
        assert_int_equal(cJSON_GetObjectItem(o, "status")->valueint, want[i].status);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "duration_seconds")));
        int64_t t;
        const char *when = cJSON_GetObjectItem(o, "time")->valuestring;
        assert_int_equal(txstats_timestamp_parse(when, strlen(when), &t), TXSTATS_OK);
        assert_true(llabs(now_ms() - t) < 60000);
        cJSON_Delete(o);
    }
    free_lines(lines);
}

/* Poll the history until its newest point counts `count`; returns it parsed. */
static cJSON *history_with(struct server *s, int count)
{
    for (int i = 0; i < 40; i++) {
        struct resp r = call(s, "GET", "/statistics/history", NULL, NULL, 200);
        cJSON *h = cJSON_Parse(r.body);
        resp_free(&r);
        assert_non_null(h);
        cJSON *pts = cJSON_GetObjectItem(h, "points");
        int np = cJSON_GetArraySize(pts);
        if (np >= 2 &&
            cJSON_GetObjectItem(cJSON_GetArrayItem(pts, np - 1), "count")->valueint == count)
            return h;
        cJSON_Delete(h);
        sleep_ms(100);
    }
    fail_msg("the history never showed %d transactions", count);
    return NULL;
}

static void test_history(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    post(s, "1.5", now_ms());
    post(s, "2.25", now_ms());
    post(s, "-0.75", now_ms());
    cJSON *h = history_with(s, 3);
    assert_int_equal(cJSON_GetObjectItem(h, "interval_ms")->valueint, 1000);
    cJSON *pts = cJSON_GetObjectItem(h, "points");
    int np = cJSON_GetArraySize(pts);
    assert_true(np >= 2 && np <= 300);
    int64_t prev = 0;
    for (int i = 0; i < np; i++) { /* oldest first, one a second, on whole seconds */
        const char *t = cJSON_GetObjectItem(cJSON_GetArrayItem(pts, i), "time")->valuestring;
        int64_t ms;
        assert_int_equal(txstats_timestamp_parse(t, strlen(t), &ms), TXSTATS_OK);
        assert_int_equal(ms % 1000, 0);
        if (i)
            assert_int_equal(ms - prev, 1000);
        prev = ms;
    }
    cJSON *last = cJSON_GetArrayItem(pts, np - 1);
    assert_string_equal(cJSON_GetObjectItem(last, "sum")->valuestring, "3.00");
    assert_string_equal(cJSON_GetObjectItem(last, "min")->valuestring, "-0.75");
    cJSON *recent = cJSON_GetObjectItem(h, "recent"); /* newest first */
    assert_int_equal(cJSON_GetArraySize(recent), 3);
    static const char *const amounts[] = {"-0.75", "2.25", "1.50"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(recent, i), "amount")->valuestring, amounts[i]);
    cJSON_Delete(h);
    for (int i = 0; i < 12; i++) /* only the last 10 are kept */
        post(s, "7", now_ms());
    struct resp r = call(s, "GET", "/statistics/history", NULL, NULL, 200);
    h = cJSON_Parse(r.body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h, "recent")), 10);
    cJSON_Delete(h);
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

static void test_query_rule(void **state)
{
    struct server *s = *state;
    assert_int_equal(server_start(s, NULL), 0);
    post(s, "1", now_ms());
    static const char *const refused[] = {
        "/statistics?account=A", "/transactions/statistics?x",  "/healthz?verbose=1",
        "/transactions?foo=1",   "/transactions?limit=1&foo=2", "/metrics?a=b"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct resp r = call(s, "GET", refused[i], NULL, NULL, 400);
        assert_non_null(strstr(r.body, "unknown query parameter"));
        resp_free(&r);
    }
    struct resp r = call(s, "POST", "/transactions?dry_run=1", NULL, "{}", 400);
    resp_free(&r);
    r = call(s, "GET", "/transactions?limit=99999999999999999999999999", NULL, NULL, 200);
    assert_non_null(strstr(r.body, "\"count\":1,\"truncated\":false"));
    resp_free(&r);
    r = call(s, "GET", "/statistics?", NULL, NULL, 200); /* an empty query is no parameter */
    resp_free(&r);
    r = call(s, "GET", "/openapi.json", NULL, NULL, 200);
    cJSON *doc = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(doc, "openapi")->valuestring, "3.1.0");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "paths"), "/statistics/history"));
    cJSON_Delete(doc);
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* Write the errno name the shim (failwrite.c) fails writes with, or remove it: writes work. */
static void fail_writes(const char *trigger, const char *err)
{
    if (!err) {
        unlink(trigger);
        return;
    }
    FILE *f = fopen(trigger, "w");
    assert_non_null(f);
    fputs(err, f);
    fclose(f);
}

/* The value of the /metrics line that starts with `line` (labels included), or -1. */
static long long metric(struct server *s, const char *line)
{
    struct resp r = call(s, "GET", "/metrics", NULL, NULL, 200);
    const char *p = strstr(r.body, line);
    long long v = p && p[strlen(line)] == ' ' ? atoll(p + strlen(line) + 1) : -1;
    resp_free(&r);
    return v;
}

/* A full disk and an I/O error (the shim makes the journal's writes fail): each POST, batch line
 * and DELETE refused with a 503 is counted by cause in txstats_writes_refused_total. */
static void test_writes_refused(void **state)
{
    struct server *s = *state;
    char trigger[128], tx[128], lines[256], t[32];
    snprintf(trigger, sizeof(trigger), "%s/fail-writes", s->dir);
    setenv("LD_PRELOAD", FAILWRITE_SO, 1);
    /* Sanitizer builds: the preloaded shim comes before the ASan runtime, which refuses that
     * unless told; added to whatever ASAN_OPTIONS the run already has (make test-sanitize sets
     * some). */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    setenv("TXSTATS_FAIL_WRITES", trigger, 1);
    int started = server_start(s, NULL);
    unsetenv("LD_PRELOAD");
    assert_int_equal(started, 0);
    post(s, "1", now_ms());
    txstats_timestamp_format(now_ms(), t, sizeof(t));
    snprintf(tx, sizeof(tx), "{\"amount\":\"2\",\"timestamp\":\"%s\"}", t);
    snprintf(lines, sizeof(lines), "%s\n%s\n", tx, tx);
    fail_writes(trigger, "ENOSPC");
    struct resp r = call(s, "POST", "/transactions", NULL, tx, 503);
    resp_free(&r);
    r = call(s, "POST", "/transactions/batch", "Content-Type: application/x-ndjson\r\n", lines,
             200);
    assert_non_null(strstr(r.body, "503"));
    resp_free(&r);
    r = call(s, "DELETE", "/transactions", NULL, NULL, 503);
    resp_free(&r);
    fail_writes(trigger, "EIO");
    r = call(s, "POST", "/transactions", NULL, tx, 503);
    resp_free(&r);
    fail_writes(trigger, NULL);
    post(s, "4", now_ms());
    assert_int_equal(metric(s, "txstats_writes_refused_total{cause=\"disk_full\"}"), 4);
    assert_int_equal(metric(s, "txstats_writes_refused_total{cause=\"io_error\"}"), 1);
    assert_int_equal(metric(s, "txstats_posts_total{outcome=\"stored\"}"), 2);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    if (!server_bin) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server\n", argv[0]);
        return 2;
    }
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_access_log_combined), T(test_access_log_json), T(test_history),
        T(test_query_rule),          T(test_writes_refused),
    };
    return cmocka_run_group_tests_name("operations", tests, NULL, NULL);
}
