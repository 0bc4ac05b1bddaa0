/* SPDX-License-Identifier: MIT */
/* RFC 3339 timestamps. */
#include "helpers.h"

static void test_parse_accepts(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"2018-07-17T09:59:51.312Z", T0},
        {"2018-07-17T09:59:51.312z", T0},
        {"2018-07-17t09:59:51.312Z", T0},
        {"2018-07-17T11:59:51.312+02:00", T0},
        {"2018-07-17T05:29:51.312-04:30", T0},
        {"2018-07-17T09:59:51.312999999Z", T0}, /* 9 digits, truncated to ms */
        {"2018-07-17T09:59:51.3129Z", T0},
        {"2018-07-17T09:59:51.31Z", T0 - 2},
        {"2018-07-17T09:59:51.3Z", T0 - 12},
        {"2018-07-17T09:59:51Z", T0 - 312},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2000-02-29T00:00:00Z", 951782400000},
        {"2400-02-29T12:00:00Z", 13574606400000},
        {"0000-01-01T00:00:00Z", -62167219200000},
        {"9999-12-31T23:59:59.999Z", 253402300799999},
        {"2018-07-17 09:59:51.312Z", T0}, /* RFC 3339 §5.6 NOTE: a space for T */
        /* RFC 3339 §5.7 leap seconds: 23:59:60 UTC counts as 23:59:59.999 */
        {"2016-12-31T23:59:60Z", 1483228799999},
        {"2016-12-31T23:59:60.5Z", 1483228799999},
        {"2016-12-31T15:59:60-08:00", 1483228799999},
        {"2017-01-01T00:59:60+01:00", 1483228799999},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 42;
        int rc = txstats_timestamp_parse(cases[i].text, strlen(cases[i].text), &ms);
        if (rc != TXSTATS_OK || ms != cases[i].ms)
            fail_msg("%s: rc %d, got %lld, want %lld", cases[i].text, rc, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void test_parse_rejects(void **state)
{
    static const char *cases[] = {
        "",
        "2018-07-17T09:59:51.312", /* no zone */
        "2018-02-30T00:00:00Z",    /* Feb 30 */
        "2019-02-29T00:00:00Z",    /* not a leap year */
        "1900-02-29T00:00:00Z",
        "2018-13-01T00:00:00Z",
        "2018-00-01T00:00:00Z",
        "2018-04-31T00:00:00Z",
        "2018-07-17T24:00:00Z",
        "2018-07-17T23:60:00Z",
        "2016-12-31T23:58:60Z", /* :60 only at 23:59 UTC (RFC 3339 §5.7) */
        "2016-12-31T22:59:60Z",
        "2016-12-31T23:59:60+01:00", /* 22:59:60 UTC */
        "2016-12-31T23:59:61Z",
        "2016-12-31T23:59:99Z",
        "2018-07-17T09:59:51.Z",           /* dot without digits */
        "2018-07-17T09:59:51.3123456789Z", /* 10 digits */
        "2018-07-17T09:59:51.312+2:00",
        "2018-07-17T09:59:51.312+02:60",
        "2018-07-17T09:59:51.312+24:00",
        "2018-07-17T09:59:51.312+0200",
        "2018-7-17T09:59:51Z",
        "18-07-17T09:59:51Z",
        "2018-07-17T09:59:51.312Z ",
        " 2018-07-17T09:59:51.312Z",
        "2018-07-17",
        "1531821591312",
        "+2018-07-17T09:59:51Z",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 42;
        int rc = txstats_timestamp_parse(cases[i], strlen(cases[i]), &ms);
        if (rc != TXSTATS_EINVAL || ms != 42)
            fail_msg("%s: rc %d, want EINVAL", cases[i], rc);
    }
    int64_t ms;
    assert_int_equal(txstats_timestamp_parse("2018-07-17T09:59:51Z", 10, &ms), TXSTATS_EINVAL);
}

static void test_format(void **state)
{
    char buf[32];
    assert_int_equal(txstats_timestamp_format(T0, buf, sizeof(buf)), TXSTATS_OK);
    assert_string_equal(buf, "2018-07-17T09:59:51.312Z");
    assert_int_equal(txstats_timestamp_format(-1, buf, sizeof(buf)), TXSTATS_OK);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(txstats_timestamp_format(0, buf, 25), TXSTATS_OK);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(txstats_timestamp_format(0, buf, 24), TXSTATS_ENOBUFS);
    assert_int_equal(txstats_timestamp_format(253402300800000, buf, sizeof(buf)), TXSTATS_ERANGE);
    /* Round trip over many instants, across leap days and centuries. */
    for (int64_t ms = -62167219200000; ms < 253402300799999; ms += 7777777777 + 13) {
        int64_t back;
        assert_int_equal(txstats_timestamp_format(ms, buf, sizeof(buf)), TXSTATS_OK);
        assert_int_equal(txstats_timestamp_parse(buf, strlen(buf), &back), TXSTATS_OK);
        assert_int_equal(back, ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests_name("time", tests, NULL, NULL);
}
