/* SPDX-License-Identifier: MIT */
/* Decimal text: BigDecimal parsing, HALF_UP to 6 places, formatting, summary rounding. */
#include <stdio.h>

#include "helpers.h"

static void test_parse_accepts(void **state)
{
    static const struct {
        const char *text;
        txstats_amount_t micros;
    } cases[] = {
        {"12.3343", 12334300},
        {"-5", -5000000},
        {"+5", 5000000},
        {"1E+3", 1000000000},
        {"1e3", 1000000000},
        {"1.5E-2", 15000},
        {"0", 0},
        {"-0", 0},
        {"0.0000005", 1}, /* HALF_UP */
        {"0.00000049", 0},
        {"-0.0000005", -1}, /* away from zero on a tie */
        {"1.0000004999", 1000000},
        {".5", 500000},
        {"5.", 5000000},
        {"000012.50", 12500000},
        {"999999999999.999999", 999999999999999999},
        {"-999999999999.999999", -999999999999999999},
        {"999999999999.9999994", 999999999999999999},
        {"123456789E-15", 0},
        {"0E+999999999", 0},
        {"1E-999999999", 0},
        {"0E2147483647", 0},
        {"1E-2147483647", 0},
        {"-0.5E-2147483646", 0},
        {"200000.49", 200000490000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        txstats_amount_t a = 42;
        int rc = txstats_amount_parse(cases[i].text, strlen(cases[i].text), &a);
        if (rc != TXSTATS_OK || a != cases[i].micros)
            fail_msg("%s: rc %d, got %lld, want %lld", cases[i].text, rc, (long long)a,
                     (long long)cases[i].micros);
    }
}

static void test_parse_rejects(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"", TXSTATS_EINVAL},
        {"NaN", TXSTATS_EINVAL},
        {"Infinity", TXSTATS_EINVAL},
        {"-Infinity", TXSTATS_EINVAL},
        {"0x1A", TXSTATS_EINVAL},
        {" 1", TXSTATS_EINVAL},
        {"1 ", TXSTATS_EINVAL},
        {"1 000", TXSTATS_EINVAL},
        {"1,5", TXSTATS_EINVAL},
        {".", TXSTATS_EINVAL},
        {"-", TXSTATS_EINVAL},
        {"+-1", TXSTATS_EINVAL},
        {"1.2.3", TXSTATS_EINVAL},
        {"1e", TXSTATS_EINVAL},
        {"1e+", TXSTATS_EINVAL},
        {"e5", TXSTATS_EINVAL},
        {"1E2147483648", TXSTATS_EINVAL},  /* the exponent is no Java int */
        {"1E-2147483649", TXSTATS_EINVAL}, /* nor this one */
        {"1E-2147483648", TXSTATS_EINVAL}, /* the scale, 0 - exponent, is no int */
        {"0.1E-2147483647", TXSTATS_EINVAL},
        {"1E1000000000", TXSTATS_ERANGE}, /* valid BigDecimal text, out of range */
        {"1E2147483647", TXSTATS_ERANGE},
        {"abc", TXSTATS_EINVAL},
        {"1000000000000", TXSTATS_ERANGE},
        {"-1000000000000", TXSTATS_ERANGE},
        {"999999999999.9999995", TXSTATS_ERANGE},
        {"1E12", TXSTATS_ERANGE},
        {"1E+999999999", TXSTATS_ERANGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        txstats_amount_t a = 42;
        int rc = txstats_amount_parse(cases[i].text, strlen(cases[i].text), &a);
        if (rc != cases[i].rc || a != 42)
            fail_msg("%s: rc %d, want %d", cases[i].text, rc, cases[i].rc);
    }
    txstats_amount_t a;
    assert_int_equal(txstats_amount_parse("1\0"
                                          "2",
                                          3, &a),
                     TXSTATS_EINVAL);
    assert_int_equal(txstats_amount_parse(NULL, 1, &a), TXSTATS_EINVAL);
}

static void test_parse_long_inputs(void **state)
{
    char buf[10010];
    txstats_amount_t a;
    memset(buf, '9', 10000); /* 10,000 digits: far out of range */
    assert_int_equal(txstats_amount_parse(buf, 10000, &a), TXSTATS_ERANGE);
    buf[0] = '0';
    buf[1] = '.';
    memset(buf + 2, '0', 9000);
    memcpy(buf + 9002, "1", 1); /* 0.000...1: rounds to zero */
    assert_int_equal(txstats_amount_parse(buf, 9003, &a), TXSTATS_OK);
    assert_int_equal(a, 0);
}

static void test_format(void **state)
{
    static const struct {
        txstats_amount_t micros;
        const char *text;
    } cases[] = {
        {12334300, "12.3343"},
        {5000000, "5.00"},
        {0, "0.00"},
        {-1, "-0.000001"},
        {10000, "0.01"},
        {-5000000, "-5.00"},
        {999999999999999999, "999999999999.999999"},
        {100000, "0.10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        assert_int_equal(txstats_amount_format(cases[i].micros, buf, sizeof(buf)), TXSTATS_OK);
        assert_string_equal(buf, cases[i].text);
        txstats_amount_t back;
        assert_int_equal(txstats_amount_parse(buf, strlen(buf), &back), TXSTATS_OK);
        assert_int_equal(back, cases[i].micros);
    }
    char small[5];
    assert_int_equal(txstats_amount_format(12334300, small, sizeof(small)), TXSTATS_ENOBUFS);
    assert_string_equal(small, "");
    assert_int_equal(txstats_amount_format(1, NULL, 0), TXSTATS_EINVAL);
}

/* Every amount in a range formats and parses back to itself. */
static void test_format_round_trip_sweep(void **state)
{
    for (txstats_amount_t a = -2000000; a <= 2000000; a += 997) {
        char buf[32];
        txstats_amount_t back;
        assert_int_equal(txstats_amount_format(a, buf, sizeof(buf)), TXSTATS_OK);
        assert_int_equal(txstats_amount_parse(buf, strlen(buf), &back), TXSTATS_OK);
        assert_int_equal(back, a);
    }
}

static void summary_of(const char *const *amounts, size_t n, txstats_summary_text_t *out)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(txstats_add(t, amt(amounts[i]), T0 - (int64_t)i), TXSTATS_OK);
    *out = stats_text(t);
    txstats_destroy(t);
}

static void test_summary_rounding(void **state)
{
    txstats_summary_text_t x;
    const char *tenth[10] = {"0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1"};
    summary_of(tenth, 10, &x);
    assert_string_equal(x.sum, "1.00");
    assert_string_equal(x.avg, "0.10");

    const char *tiny[3] = {"0.004", "0.004", "0.004"};
    summary_of(tiny, 3, &x);
    assert_string_equal(x.sum, "0.01");
    assert_string_equal(x.avg, "0.00");
    assert_string_equal(x.max, "0.00");

    const char *neg[1] = {"-10.345"};
    summary_of(neg, 1, &x);
    assert_string_equal(x.sum, "-10.35");
    assert_string_equal(x.min, "-10.35");

    const char *negtiny[1] = {"-0.001"};
    summary_of(negtiny, 1, &x);
    assert_string_equal(x.sum, "0.00");
    assert_string_equal(x.avg, "0.00");
    assert_string_equal(x.min, "0.00");

    const char *tie[1] = {"1.005"};
    summary_of(tie, 1, &x);
    assert_string_equal(x.sum, "1.01");

    const char *pair[2] = {"200000.49", "50.23"};
    summary_of(pair, 2, &x);
    assert_string_equal(x.sum, "200050.72");
    assert_string_equal(x.avg, "100025.36");
    assert_string_equal(x.max, "200000.49");
    assert_string_equal(x.min, "50.23");

    const char *n26[3] = {"5", "3", "3"};
    summary_of(n26, 3, &x);
    assert_string_equal(x.avg, "3.67");
}

static void test_summary_huge_and_empty(void **state)
{
    txstats_summary_t s = {0};
    txstats_summary_text_t x;
    assert_int_equal(txstats_summary_text(&s, &x), TXSTATS_OK);
    assert_string_equal(x.sum, "0.00");
    assert_string_equal(x.avg, "0.00");
    assert_string_equal(x.max, "0.00");
    assert_string_equal(x.min, "0.00");
    /* 2^64 - 1 transactions of 999999999999.999999: beyond int64, exact in 128 bits. */
    unsigned __int128 sum = (unsigned __int128)UINT64_MAX * 999999999999999999u;
    s.count = UINT64_MAX;
    s.sum_hi = (int64_t)(sum >> 64);
    s.sum_lo = (uint64_t)sum;
    s.max = s.min = 999999999999999999;
    assert_int_equal(txstats_summary_text(&s, &x), TXSTATS_OK);
    assert_string_equal(x.avg, "1000000000000.00");
    assert_string_equal(x.sum, "18446744073709551596553255926290.45");
    assert_int_equal(txstats_summary_text(NULL, &x), TXSTATS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),           cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_long_inputs),       cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_round_trip_sweep), cmocka_unit_test(test_summary_rounding),
        cmocka_unit_test(test_summary_huge_and_empty),
    };
    return cmocka_run_group_tests_name("amount", tests, NULL, NULL);
}
