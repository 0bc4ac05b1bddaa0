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
    static const char *bodies[] = {"{\"amount\":0.1,\"timestamp\":1}",
                                   "{ \"amount\" : 0.1 , \"timestamp\" : 1 }",
                                   "{\"x\":{\"amount\":5},\"amount\":0.1,\"timestamp\":1}"};
    for (int i = 0; i < 3; i++) {
        struct srv_tx tx;
        assert_int_equal(parse(bodies[i], strlen(bodies[i]), &tx), 0);
        assert_int_equal(tx.amount, 100000);
        assert_int_equal(tx.timestamp_ms, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_whitespace),
        cmocka_unit_test(test_fuzz_regression),
        cmocka_unit_test(test_number_text_exact),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
