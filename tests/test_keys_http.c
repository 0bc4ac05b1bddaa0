/* SPDX-License-Identifier: MIT */
/* Keys (issue 20) over real HTTP, as a contract: POST and batch lines with "key", GET
 * /statistics?key= with percent-encoded keys, GET /statistics/top, every bad key refused and
 * changing nothing, --max-active-keys, the /metrics families, restarts. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <txstats/txstats.h>

#include "harness.h"

#define EMPTY "{\"sum\":\"0.00\",\"avg\":\"0.00\",\"max\":\"0.00\",\"min\":\"0.00\",\"count\":0}"

static void start(struct server *s, const char *const *args)
{
    assert_int_equal(server_start(s, args), 0);
}

/* POST /transactions {"amount":amount,"timestamp":ts[,"key":key_json]} (key_json: the member's
 * JSON text, NULL for none), with an Idempotency-Key when idem is not NULL. */
static int post(struct server *s, const char *key_json, const char *amount, int64_t ts,
                const char *idem, struct resp *out)
{
    char body[1024], hdr[300] = "";
    int n = snprintf(body, sizeof(body), "{\"amount\":\"%s\",\"timestamp\":%lld%s%s}", amount,
                     (long long)ts, key_json ? ",\"key\":" : "", key_json ? key_json : "");
    if (idem)
        snprintf(hdr, sizeof(hdr), "Idempotency-Key: \"%s\"\r\n", idem);
    struct resp r;
    int fd = http_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(http_request(fd, "POST", "/transactions", hdr, body, (size_t)n, &r), 0);
    close(fd);
    int st = r.status;
    if (out)
        *out = r;
    else
        resp_free(&r);
    return st;
}

/* A key as a JSON string member ("..."): quote and backslash escaped, the rest as is. */
static void json_string(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *key && n + 3 < cap; key++) {
        if (*key == '"' || *key == '\\')
            out[n++] = '\\';
        out[n++] = *key;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* RFC 3986 §2.1: every byte but the unreserved ones as %XX. */
static void percent(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
    }
    out[n] = '\0';
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

/* The statistics of a key (raw: already encoded for the query). */
static void expect_key(struct server *s, const char *raw, const char *want)
{
    char path[1024];
    snprintf(path, sizeof(path), "/statistics?key=%s", raw);
    expect_body(s, path, want);
    snprintf(path, sizeof(path), "/transactions/statistics?key=%s", raw);
    expect_body(s, path, want);
}

/* The value of the /metrics line that starts with `line` ("name{labels} "), or -1. */
static long long metric(struct server *s, const char *line)
{
    struct resp r = get(s, "/metrics", 200);
    char nl[256];
    snprintf(nl, sizeof(nl), "\n%s", line);
    const char *p = strstr(r.body, nl);
    long long v = p ? atoll(p + strlen(nl)) : -1;
    resp_free(&r);
    return v;
}

/* ---- keys and their statistics ------------------------------------------------------------- */

static const char *const keys[] = {
    "card-1",
    "a b",                /* a space: %20 in the query */
    "caf\xc3\xa9",        /* UTF-8 */
    "x&y=z",              /* query delimiters inside */
    "100%",               /* a percent sign */
    "\xf0\x9f\x92\xb3",   /* 4-byte UTF-8 */
    "quote\"back\\slash", /* escaped in JSON */
    "/path?q#frag",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" /* 128 bytes */
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Key i gets i + 1 transactions of 1.10, 2.20, ...: its sum, count, min and max are known. */
static void test_post_and_query(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t now = now_ms();
    for (size_t i = 0; i < NKEYS; i++)
        for (size_t j = 0; j <= i; j++) {
            char k[300], a[16];
            json_string(keys[i], k, sizeof(k));
            snprintf(a, sizeof(a), "%zu.%zu0", j + 1, j + 1);
            assert_int_equal(post(s, k, a, now - (int64_t)j, NULL, NULL), 201);
        }
    assert_int_equal(post(s, NULL, "1000", now, NULL, NULL), 201); /* no key: global only */
    for (size_t i = 0; i < NKEYS; i++) {
        char enc[600], want[256];
        size_t n = i + 1; /* sum of (j + 1) * 1.1 for j < n = 1.1 n (n + 1) / 2 */
        long cents = (long)(110 * n * (n + 1) / 2);
        long avg = (cents * 10 / (long)n + 5) / 10; /* HALF_UP to cents */
        snprintf(want, sizeof(want),
                 "{\"sum\":\"%ld.%02ld\",\"avg\":\"%ld.%02ld\",\"max\":\"%zu.%zu0\","
                 "\"min\":\"1.10\",\"count\":%zu}",
                 cents / 100, cents % 100, avg / 100, avg % 100, n, n, n);
        percent(keys[i], enc, sizeof(enc));
        expect_key(s, enc, want);
    }
    expect_key(s, "card-1",
               "{\"sum\":\"1.10\",\"avg\":\"1.10\",\"max\":\"1.10\",\"min\":\"1.10\","
               "\"count\":1}"); /* unreserved: as is */
    expect_key(s, "a%20b",
               "{\"sum\":\"3.30\",\"avg\":\"1.65\",\"max\":\"2.20\",\"min\":\"1.10\","
               "\"count\":2}");
    expect_key(s, "a+b", EMPTY); /* '+' is a plus sign (RFC 3986), not a space */
    expect_key(s, "card-2", EMPTY);
    expect_key(s, "CARD-1", EMPTY); /* keys are compared exactly */
    struct resp r = get(s, "/statistics", 200);
    assert_non_null(strstr(r.body, "\"count\":46}")); /* 45 keyed + 1 without a key */
    resp_free(&r);
    assert_int_equal(metric(s, "txstats_keys_active "), (long long)NKEYS);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- bad keys: refused, and nothing changes ------------------------------------------------ */

static const struct {
    const char *member; /* the "key" member's JSON text */
    int status;
    const char *says;
} bad_posts[] = {
    {"\"\"", 422, "'key' is empty"},
    {"\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef!\"",
     422, "'key' is too long"},
    {"\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x\"",
     422, "'key' is too long"}, /* 65 characters, 129 bytes */
    {"42", 422, "'key' must be a JSON string"},
    {"null", 422, "'key' must be a JSON string"},
    {"true", 422, "'key' must be a JSON string"},
    {"[\"card-1\"]", 422, "'key' must be a JSON string"},
    {"{\"id\":\"card-1\"}", 422, "'key' must be a JSON string"},
    {"\"\\u0000\"", 422, "control character"},
    {"\"card\\u0000-1\"", 422, "control character"},
    {"\"card-1\\n\"", 422, "control character"},
    {"\"\\u007f\"", 422, "control character"},
    {"\"card-\xff\"", 400, "not JSON"}, /* invalid UTF-8: the body is not JSON */
    {"\"\\ud800\"", 400, "not JSON"},   /* a lone surrogate */
    {"\"\xc0\xaf\"", 400, "not JSON"},  /* an overlong form */
    {"\"card-1\"x", 400, "not JSON"},
};

static const struct {
    const char *query; /* after /statistics? */
    const char *says;
} bad_queries[] = {
    {"key=", "'key' is empty"},
    {"key", "'key' is empty"},
    {"key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX",
     "longer than 128 bytes"},
    {"key=%FF", "not valid UTF-8"},
    {"key=card%C0%AF", "not valid UTF-8"},
    {"key=%ED%A0%80", "not valid UTF-8"},
    {"key=%E2%82", "not valid UTF-8"},
    {"key=%00", "not a control character"},
    {"key=a%0Ab", "not a control character"},
    {"key=%C2%85", "control character"},
    {"key=%G1", "percent-escape"},
    {"key=a%", "percent-escape"},
    {"key=a&key=b", "given twice"},
    {"key=a&limit=1", "unknown query parameter 'limit'"},
};

/* Every bad key gets its status and a message naming what is wrong; statistics, top keys and
 * the count of active keys stay as they were. */
static void test_bad_keys_change_nothing(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t now = now_ms();
    assert_int_equal(post(s, "\"card-1\"", "5", now, NULL, NULL), 201);
    struct resp before = get(s, "/statistics", 200), top = get(s, "/statistics/top", 200);
    for (size_t i = 0; i < sizeof(bad_posts) / sizeof(bad_posts[0]); i++) {
        struct resp r;
        int st = post(s, bad_posts[i].member, "7", now, NULL, &r);
        if (st != bad_posts[i].status || !strstr(r.body, bad_posts[i].says))
            fail_msg("key %s: %d %s, want %d '%s'", bad_posts[i].member, st, r.body,
                     bad_posts[i].status, bad_posts[i].says);
        resp_free(&r);
        st = post(s, bad_posts[i].member, "7", now, "idem-bad-key", NULL); /* keyed: the same */
        assert_int_equal(st, bad_posts[i].status);
    }
    for (size_t i = 0; i < sizeof(bad_queries) / sizeof(bad_queries[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "/statistics?%s", bad_queries[i].query);
        struct resp r = get(s, path, 400);
        if (!strstr(r.body, bad_queries[i].says))
            fail_msg("GET %s: %s, want '%s'", path, r.body, bad_queries[i].says);
        resp_free(&r);
    }
    expect_body(s, "/statistics", before.body);
    expect_body(s, "/statistics/top", top.body);
    assert_int_equal(metric(s, "txstats_keys_active "), 1);
    assert_int_equal(post(s, "\"x\"", "1", now, "idem-bad-key", NULL), 201); /* key unused */
    resp_free(&before);
    resp_free(&top);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- batch lines ------------------------------------------------------------------------- */

static struct resp batch(struct server *s, const char *body)
{
    struct resp r;
    int fd = http_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(http_request(fd, "POST", "/transactions/batch", NULL, body, strlen(body), &r),
                     0);
    close(fd);
    assert_int_equal(r.status, 200);
    return r;
}

/* Lines with keys count in them; bad keys reject their line alone; a line retried with its
 * idempotency_key does not count twice in its key. */
static void test_batch_lines(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    long long now = (long long)now_ms();
    char body[4096];
    snprintf(
        body, sizeof(body),
        "{\"amount\":\"1.50\",\"timestamp\":%lld,\"key\":\"acct-7\"}\n"
        "{\"amount\":\"2.50\",\"timestamp\":%lld,\"key\":\"acct-7\",\"idempotency_key\":\"b1\"}\n"
        "{\"amount\":\"4\",\"timestamp\":%lld,\"key\":\"m\\u00fcnchen\"}\n"
        "{\"amount\":\"9\",\"timestamp\":%lld,\"key\":\"\"}\n"
        "{\"amount\":\"9\",\"timestamp\":%lld,\"key\":7}\n"
        "{\"amount\":\"9\",\"timestamp\":%lld,\"key\":\"a\\u0000\"}\n"
        "{\"amount\":\"3\",\"timestamp\":%lld}\n",
        now, now, now, now, now, now, now);
    struct resp r = batch(s, body);
    if (!strstr(r.body, "{\"stored\":4,\"expired\":0,\"replayed\":0,\"rejected\":[{\"line\":4,"
                        "\"status\":422,\"error\":\"'key' is empty") ||
        !strstr(r.body, "{\"line\":5,\"status\":422,\"error\":\"'key' must be a JSON string") ||
        !strstr(r.body, "{\"line\":6,\"status\":422,\"error\":\"'key' contains a control"))
        fail_msg("batch: %s", r.body);
    resp_free(&r);
    snprintf(
        body, sizeof(body),
        "{\"amount\":\"2.50\",\"timestamp\":%lld,\"key\":\"acct-7\",\"idempotency_key\":\"b1\"}\n",
        now);
    r = batch(s, body);
    assert_non_null(strstr(r.body, "{\"stored\":0,\"expired\":0,\"replayed\":1,"));
    resp_free(&r);
    expect_key(s, "acct-7",
               "{\"sum\":\"4.00\",\"avg\":\"2.00\",\"max\":\"2.50\",\"min\":\"1.50\","
               "\"count\":2}");
    expect_key(s, "m%C3%BCnchen",
               "{\"sum\":\"4.00\",\"avg\":\"4.00\",\"max\":\"4.00\","
               "\"min\":\"4.00\",\"count\":1}");
    expect_body(s, "/statistics",
                "{\"sum\":\"11.00\",\"avg\":\"2.75\",\"max\":\"4.00\","
                "\"min\":\"1.50\",\"count\":4}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A POST with an Idempotency-Key and a key: the retry is replayed, counted once in the key. */
static void test_idempotency_and_key(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t now = now_ms();
    struct resp r;
    assert_int_equal(post(s, "\"card-9\"", "12.34", now, "order-1", NULL), 201);
    assert_int_equal(post(s, "\"card-9\"", "12.34", now, "order-1", &r), 201);
    assert_non_null(resp_header(&r, "Idempotent-Replayed"));
    resp_free(&r);
    assert_int_equal(post(s, "\"card-9\"", "99", now, "order-1", NULL), 422); /* conflict */
    expect_key(s, "card-9",
               "{\"sum\":\"12.34\",\"avg\":\"12.34\",\"max\":\"12.34\","
               "\"min\":\"12.34\",\"count\":1}");
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- the top keys ----------------------------------------------------------------------- */

static void expect_top(struct server *s, const char *query, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "/statistics/top%s", query);
    expect_body(s, path, want);
}

#define ENTRY(k, sum, avg, max, min, n)                                                            \
    "{\"key\":\"" k "\",\"sum\":\"" sum "\",\"avg\":\"" avg "\",\"max\":\"" max                    \
    "\",\"min\":\"" min "\",\"count\":" #n "}"

/* Sums and counts with ties: ties in the keys' byte order (the shorter first); negative sums
 * rank last; limit cuts; bad by and limit are 400; HEAD, OPTIONS and 405 as on every route. */
static void test_top(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t now = now_ms();
    static const struct {
        const char *key, *amount;
    } tx[] = {{"b", "10"}, {"a", "4"},  {"a", "6"},   {"ab", "5"}, {"ab", "5"},
              {"c", "1"},  {"c", "1"},  {"c", "1"},   {"d", "-3"}, {"\xc3\xa9", "10"},
              {"e", "0"},  {"e", "-1"}, {"e", "0.50"}};
    for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++) {
        char k[32];
        json_string(tx[i].key, k, sizeof(k));
        assert_int_equal(post(s, k, tx[i].amount, now - (int64_t)i, NULL, NULL), 201);
    }
    expect_top(
        s, "",
        "{\"by\":\"sum\",\"limit\":10,\"keys\":[" ENTRY(
            "a", "10.00", "5.00", "6.00", "4.00",
            2) "," ENTRY("ab", "10.00", "5.00", "5.00", "5.00",
                         2) "," ENTRY("b", "10.00", "10.00", "10.00", "10.00",
                                      1) "," ENTRY("\xc3\xa9", "10.00", "10.00", "10.00", "10.00",
                                                   1) "," ENTRY("c", "3.00", "1.00", "1.00", "1.00",
                                                                3) "," ENTRY("e", "-0.50", "-0.17",
                                                                             "0.50", "-1.00",
                                                                             3) "," ENTRY("d",
                                                                                          "-3.00",
                                                                                          "-3.00",
                                                                                          "-3.00",
                                                                                          "-3.00",
                                                                                          1) "]}");
    expect_top(s, "?by=count&limit=3",
               "{\"by\":\"count\",\"limit\":3,\"keys\":[" ENTRY(
                   "c", "3.00", "1.00", "1.00", "1.00",
                   3) "," ENTRY("e", "-0.50", "-0.17", "0.50", "-1.00",
                                3) "," ENTRY("a", "10.00", "5.00", "6.00", "4.00", 2) "]}");
    expect_top(s, "?limit=1&by=sum",
               "{\"by\":\"sum\",\"limit\":1,\"keys\":[" ENTRY("a", "10.00", "5.00", "6.00", "4.00",
                                                              2) "]}");
    static const struct {
        const char *query, *says;
    } bad[] = {
        {"?by=avg", "'by' is sum (the default) or count"},
        {"?by=", "'by' is sum"},
        {"?by=SUM", "'by' is sum"},
        {"?limit=0", "'limit' is an integer from 1 to 1000"},
        {"?limit=1001", "'limit' is an integer from 1 to 1000"},
        {"?limit=-1", "'limit'"},
        {"?limit=1.5", "'limit'"},
        {"?limit=", "'limit'"},
        {"?limit=99999999999999999999", "'limit'"},
        {"?by=sum&by=count", "given twice"},
        {"?key=a", "unknown query parameter 'key' (only by, limit, window)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/statistics/top%s", bad[i].query);
        struct resp r = get(s, path, 400);
        if (!strstr(r.body, bad[i].says))
            fail_msg("GET %s: %s, want '%s'", path, r.body, bad[i].says);
        resp_free(&r);
    }
    struct resp r;
    assert_int_equal(http(s->port, "HEAD", "/statistics/top?by=count", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    assert_int_equal(http(s->port, "OPTIONS", "/statistics/top", NULL, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(strncmp(resp_header(&r, "Allow"), "GET, HEAD, OPTIONS\r\n", 20), 0);
    resp_free(&r);
    assert_int_equal(http(s->port, "POST", "/statistics/top", "{}", &r), 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* 1,000 keys with distinct sums, the top 1,000 and the top 7 in order. */
static void test_top_many(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    long long now = (long long)now_ms();
    size_t cap = 1000 * 100;
    char *body = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(body + n, cap - n,
                              "{\"amount\":\"%d\",\"timestamp\":%lld,\"key\":\"k%04d\"}\n", i, now,
                              (i * 7919) % 1000);
    struct resp r = batch(s, body);
    assert_non_null(strstr(r.body, "\"stored\":1000,"));
    resp_free(&r);
    free(body);
    r = get(s, "/statistics/top?limit=1000", 200);
    const char *p = r.body;
    for (int rank = 0; rank < 1000; rank++) { /* amount 999 - rank, key (amount * 7919) % 1000 */
        char want[64];
        int amount = 999 - rank;
        snprintf(want, sizeof(want), "{\"key\":\"k%04d\",\"sum\":\"%d.00\"", (amount * 7919) % 1000,
                 amount);
        const char *at = strstr(p, want);
        if (!at)
            fail_msg("rank %d: %s not found after ...%.80s", rank, want, p);
        p = at + 1;
    }
    resp_free(&r);
    assert_int_equal(metric(s, "txstats_keys_active "), 1000);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* ---- the cap, metrics, expiry, clear, restarts -------------------------------------------- */

/* --max-active-keys 3: a fourth key is 503 with Retry-After and changes nothing; known keys and
 * transactions without a key go on; the metrics say it. */
static void test_cap(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--max-active-keys", "3", NULL};
    start(s, args);
    int64_t now = now_ms();
    assert_int_equal(post(s, "\"k1\"", "1", now, NULL, NULL), 201);
    assert_int_equal(post(s, "\"k2\"", "2", now, NULL, NULL), 201);
    assert_int_equal(post(s, "\"k3\"", "3", now, NULL, NULL), 201);
    struct resp r;
    assert_int_equal(post(s, "\"k4\"", "4", now, NULL, &r), 503);
    assert_non_null(resp_header(&r, "Retry-After"));
    assert_non_null(strstr(r.body, "--max-active-keys"));
    resp_free(&r);
    assert_int_equal(post(s, "\"k4\"", "4", now, "idem-k4", NULL), 503);
    assert_int_equal(post(s, "\"k1\"", "10", now, NULL, NULL), 201);
    assert_int_equal(post(s, NULL, "100", now, NULL, NULL), 201);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"amount\":\"5\",\"timestamp\":%lld,\"key\":\"k5\"}\n"
             "{\"amount\":\"5\",\"timestamp\":%lld,\"key\":\"k2\"}\n",
             (long long)now, (long long)now);
    r = batch(s, body);
    if (!strstr(r.body, "{\"stored\":1,\"expired\":0,\"replayed\":0,\"rejected\":[{\"line\":1,"
                        "\"status\":503,\"error\":\"transaction not recorded: --max-active-keys") ||
        !strstr(r.body, "retry once keys leave the window\"}")) /* whole, not cut */
        fail_msg("batch: %s", r.body);
    resp_free(&r);
    expect_key(s, "k4", EMPTY);
    expect_key(s, "k1",
               "{\"sum\":\"11.00\",\"avg\":\"5.50\",\"max\":\"10.00\","
               "\"min\":\"1.00\",\"count\":2}");
    expect_body(s, "/statistics",
                "{\"sum\":\"121.00\",\"avg\":\"20.17\",\"max\":\"100.00\","
                "\"min\":\"1.00\",\"count\":6}");
    assert_int_equal(metric(s, "txstats_keys_active "), 3);
    assert_int_equal(metric(s, "txstats_keys_active_limit "), 3);
    assert_int_equal(metric(s, "txstats_keys_refused_total "), 3);
    assert_int_equal(metric(s, "txstats_posts_total{outcome=\"key_limit\"} "), 3);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    const char *none[] = {"--max-active-keys", "0", NULL}; /* keys refused, the rest goes on */
    start(s, none);
    assert_int_equal(post(s, "\"k1\"", "1", now_ms(), NULL, NULL), 503);
    assert_int_equal(post(s, NULL, "1", now_ms(), NULL, NULL), 201);
    assert_int_equal(metric(s, "txstats_keys_active_limit "), 0);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* A key's transactions leave its window as they leave the global one; the key is then no
 * longer active, so a new key has room again. */
static void test_expiry(void **state)
{
    struct server *s = *state;
    const char *args[] = {"--window-ms", "1000", "--max-active-keys", "1", NULL};
    start(s, args);
    int64_t t0 = now_ms();
    assert_int_equal(post(s, "\"old\"", "1", t0, NULL, NULL), 201);
    assert_int_equal(post(s, "\"new\"", "1", t0, NULL, NULL), 503);
    /* inside the window however slow the run (sanitizers): half of it old */
    assert_int_equal(post(s, "\"old\"", "2", now_ms() - 500, NULL, NULL), 201);
    assert_int_equal(post(s, "\"old\"", "3", t0 - 1000, NULL, NULL), 204); /* expired */
    while (now_ms() < t0 + 1100)
        sleep_ms(20);
    expect_key(s, "old", EMPTY);
    expect_body(s, "/statistics/top", "{\"by\":\"sum\",\"limit\":10,\"keys\":[]}");
    assert_int_equal(metric(s, "txstats_keys_active "), 0);
    assert_int_equal(post(s, "\"new\"", "1", now_ms(), NULL, NULL), 201);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

/* DELETE empties every key; SIGTERM and kill -9 keep them. */
static void test_clear_and_restarts(void **state)
{
    struct server *s = *state;
    start(s, NULL);
    int64_t now = now_ms();
    assert_int_equal(post(s, "\"gone\"", "1", now, NULL, NULL), 201);
    struct resp r;
    assert_int_equal(http(s->port, "DELETE", "/transactions", NULL, &r), 0);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    expect_key(s, "gone", EMPTY);
    expect_body(s, "/statistics/top", "{\"by\":\"sum\",\"limit\":10,\"keys\":[]}");
    assert_int_equal(post(s, "\"kept\"", "2.5", now, NULL, NULL), 201);
    assert_int_equal(post(s, "\"kept\"", "1.5", now, NULL, NULL), 201);
    static const char want[] =
        "{\"sum\":\"4.00\",\"avg\":\"2.00\",\"max\":\"2.50\",\"min\":\"1.50\",\"count\":2}";
    assert_int_equal(server_stop(s, SIGTERM), 0);
    start(s, NULL);
    expect_key(s, "kept", want);
    expect_key(s, "gone", EMPTY);
    assert_int_equal(post(s, "\"kept\"", "0", now, NULL, NULL), 201);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    start(s, NULL);
    expect_key(s, "kept",
               "{\"sum\":\"4.00\",\"avg\":\"1.33\",\"max\":\"2.50\","
               "\"min\":\"0.00\",\"count\":3}");
    expect_body(s, "/statistics/top?by=count",
                "{\"by\":\"count\",\"limit\":10,\"keys\":[" ENTRY("kept", "4.00", "1.33", "2.50",
                                                                  "0.00", 3) "]}");
    assert_int_equal(metric(s, "txstats_keys_active "), 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        server_bin = argv[1];
#define T(f) cmocka_unit_test_setup_teardown(f, server_test_setup, server_test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_post_and_query),
        T(test_bad_keys_change_nothing),
        T(test_batch_lines),
        T(test_idempotency_and_key),
        T(test_top),
        T(test_top_many),
        T(test_cap),
        T(test_expiry),
        T(test_clear_and_restarts),
    };
    return cmocka_run_group_tests_name("keys over HTTP", tests, NULL, NULL);
}
