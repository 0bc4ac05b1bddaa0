/* SPDX-License-Identifier: MIT */
/* The server's POST body parser (server/json.c), with the inputs fuzzing found. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "json.h"
#include "key.h"

static int parse(const char *body, size_t len, struct srv_tx *tx)
{
    char err[256];
    return srv_parse_transaction(body, len, tx, err, sizeof(err));
}

/* cJSON accepts any byte up to 0x20 as whitespace; RFC 8259 §2 only space, tab, LF, CR. */
static void test_control_whitespace(void **state)
{
    static const char body[] = "{\"amount\":0.1,\f\"timestamp\":\v1531821591312\x01}";
    struct srv_tx tx;
    assert_int_equal(parse(body, sizeof(body) - 1, &tx), 400);
    static const char ok[] = "{\"amount\":0.1,\r\n\t\"timestamp\": 1531821591312}";
    assert_int_equal(parse(ok, sizeof(ok) - 1, &tx), 0);
    assert_int_equal(tx.amount, 100000);
    assert_int_equal(tx.timestamp_ms, 1531821591312);
}

/* Found by fuzz_post_body: a heap read past the body (fixed in json.c). */
static void test_fuzz_regression(void **state)
{
    FILE *f = fopen(CORPUS "/regression-formfeed", "rb");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *exact = malloc(n); /* exactly sized, so ASan sees any overread */
    memcpy(exact, buf, n);
    struct srv_tx tx;
    int st = parse(exact, n, &tx);
    assert_true(st == 0 || st == 400 || st == 422);
    free(exact);
}

static void test_number_text_exact(void **state)
{
    static const char *bodies[] = {
        "{\"amount\":0.1,\"timestamp\":1531821591312}",
        "{ \"amount\" : 0.1 , \"timestamp\" : 1531821591312 }",
        "{\"x\":{\"amount\":5},\"amount\":0.1,\"timestamp\":1531821591312}"};
    for (int i = 0; i < 3; i++) {
        struct srv_tx tx;
        assert_int_equal(parse(bodies[i], strlen(bodies[i]), &tx), 0);
        assert_int_equal(tx.amount, 100000);
        assert_int_equal(tx.timestamp_ms, 1531821591312);
    }
}

/* A number is epoch milliseconds; below 10^11 (before 1973-03-03) it is 422, and the message
 * names the likely mistake: epoch seconds read as milliseconds would be a 204 in 1970. */
static void test_epoch_units(void **state)
{
    static const struct {
        const char *ts; /* the timestamp member's text */
        int status;
        long long ms;     /* when accepted */
        const char *says; /* in the error, when refused */
    } cases[] = {
        {"1796518054", 422, 0, "looks like epoch seconds"}, /* seconds, 2026 */
        {"1796518054", 422, 0, "send 1796518054000"},
        {"1796518054000", 0, 1796518054000LL, NULL}, /* the same instant in ms */
        {"1531821591312", 0, 1531821591312LL, NULL},
        {"99999999999", 422, 0, "looks like epoch seconds"}, /* 10^11 - 1 */
        {"100000000000", 0, 100000000000LL, NULL},           /* 10^11: 1973-03-03T09:46:40Z */
        {"1", 422, 0, "looks like epoch seconds"},
        {"0", 422, 0, "no recent time"},
        {"-0", 422, 0, "no recent time"},
        {"-1", 422, 0, "no recent time"},
        {"-1796518054000", 422, 0, "no recent time"},
        {"1796518054.5", 422, 0, "not epoch seconds with a fraction"},
        {"1796518054000.0", 422, 0, "integer of epoch milliseconds"},
        {"1.796518054e12", 422, 0, "integer of epoch milliseconds"},
        {"12345678901234567", 422, 0, "at most 16 digits"},
        {"\"1796518054\"", 422, 0, "RFC 3339"},
        {"\"2026-12-06T10:00:00Z\"", 0, 1796551200000LL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[128], err[256] = "";
        int n = snprintf(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":%s}", cases[i].ts);
        struct srv_tx tx;
        int st = srv_parse_transaction(body, (size_t)n, &tx, err, sizeof(err));
        if (st != cases[i].status || (st == 0 && tx.timestamp_ms != cases[i].ms) ||
            (cases[i].says && !strstr(err, cases[i].says)))
            fail_msg("timestamp %s: status %d, %lld, '%s'", cases[i].ts, st,
                     st == 0 ? (long long)tx.timestamp_ms : 0LL, err);
    }
}

/* The "key" member (key.h): its text after JSON unescaping, or a 422 naming what is wrong. */
static void test_key_member(void **state)
{
    static const char k128[] = "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"";
    static const char k129[] =
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX\"";
    static const struct {
        const char *key; /* the member's JSON text; NULL: no member */
        int status;
        const char *want; /* the key accepted, or a piece of the error */
    } cases[] = {
        {NULL, 0, ""},
        {"\"card-1\"", 0, "card-1"},
        {"\"a b&c%d/e\"", 0, "a b&c%d/e"},
        {"\"caf\\u00e9\"", 0, "caf\xc3\xa9"},            /* escaped: the UTF-8 bytes */
        {"\"\xf0\x9f\x92\xb3\"", 0, "\xf0\x9f\x92\xb3"}, /* raw 4-byte UTF-8 */
        {"\"\\ud83d\\udcb3\"", 0, "\xf0\x9f\x92\xb3"},   /* a surrogate pair */
        {"\"q\\\"\\\\\"", 0, "q\"\\"},
        {k128, 0, NULL},
        {k129, 422, "too long"},
        {"\"\"", 422, "is empty"},
        {"\"a\\u0000b\"", 422, "control character"},
        {"\"\\u0000\"", 422, "control character"},
        {"\"a\\nb\"", 422, "control character"},
        {"\"a\\u0085\"", 422, "control character"},
        {"42", 422, "must be a JSON string"},
        {"null", 422, "must be a JSON string"},
        {"[\"a\"]", 422, "must be a JSON string"},
        {"{}", 422, "must be a JSON string"},
        {"true", 422, "must be a JSON string"},
        {"\"\xff\"", 400, "not JSON"},         /* invalid UTF-8 anywhere: not JSON */
        {"\"\\ud800\"", 400, "not JSON"},      /* a lone surrogate escape */
        {"\"\xed\xa0\x80\"", 400, "not JSON"}, /* a surrogate in UTF-8 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512], err[256] = "";
        int n = cases[i].key ? snprintf(body, sizeof(body),
                                        "{\"amount\":\"1\",\"timestamp\":%lld,\"key\":%s}",
                                        (long long)T0, cases[i].key)
                             : snprintf(body, sizeof(body), "{\"amount\":\"1\",\"timestamp\":%lld}",
                                        (long long)T0);
        struct srv_tx tx;
        int st = srv_parse_transaction(body, (size_t)n, &tx, err, sizeof(err));
        const char *want = cases[i].want;
        bool ok = st == cases[i].status;
        if (ok && st == 0 && want)
            ok = tx.entity_len == strlen(want) && !memcmp(tx.entity, want, tx.entity_len);
        if (ok && st == 0 && !want)
            ok = tx.entity_len == 128;
        if (ok && st != 0)
            ok = strstr(err, want) != NULL;
        if (!ok)
            fail_msg("key %s: status %d, entity_len %zu, '%s'", cases[i].key, st,
                     st == 0 ? tx.entity_len : 0, err);
    }
}

/* The same rule for a key from a query string (key.c): bytes as decoded, checked here. */
static void test_key_check(void **state)
{
    static const struct {
        const char *key;
        size_t len;
        const char *why; /* NULL: valid */
    } cases[] = {
        {"card-1", 6, NULL},
        {"caf\xc3\xa9", 5, NULL},
        {"\xf4\x8f\xbf\xbf", 4, NULL}, /* U+10FFFF */
        {"\xef\xbf\xbd", 3, NULL},     /* U+FFFD */
        {"", 0, "is empty"},
        {"a\0b", 3, "U+0000"},
        {"a\x1f", 2, "control character"},
        {"a\x7f", 2, "control character"},
        {"\xc2\x9f", 2, "control character"},       /* C1 */
        {"\xc0\xaf", 2, "not valid UTF-8"},         /* overlong '/' */
        {"\xe0\x80\xaf", 3, "not valid UTF-8"},     /* overlong */
        {"\xed\xa0\x80", 3, "not valid UTF-8"},     /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "not valid UTF-8"}, /* past U+10FFFF */
        {"\xe2\x82", 2, "not valid UTF-8"},         /* cut short */
        {"\x80", 1, "not valid UTF-8"},
        {"\xff", 1, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc = srv_key_check(cases[i].key, cases[i].len, "'key'", err, sizeof(err));
        if (cases[i].why ? rc != -1 || !strstr(err, cases[i].why) : rc != 0)
            fail_msg("case %zu: %d '%s'", i, rc, err);
    }
    char long_key[130];
    memset(long_key, 'k', sizeof(long_key));
    assert_int_equal(srv_key_check(long_key, 128, "'key'", long_key + 129, 0), 0);
    char err[256];
    assert_int_equal(srv_key_check(long_key, 129, "'key'", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_whitespace), cmocka_unit_test(test_fuzz_regression),
        cmocka_unit_test(test_number_text_exact),  cmocka_unit_test(test_epoch_units),
        cmocka_unit_test(test_key_member),         cmocka_unit_test(test_key_check),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
