/* SPDX-License-Identifier: MIT */
/* The server's POST body parser (server/json.c), with the inputs fuzzing found. */
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "json.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_whitespace),
        cmocka_unit_test(test_fuzz_regression),
        cmocka_unit_test(test_number_text_exact),
        cmocka_unit_test(test_epoch_units),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
