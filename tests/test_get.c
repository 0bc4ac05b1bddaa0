/* SPDX-License-Identifier: MIT */
/* Listing: order, short buffers, the retained cap. */
#include "helpers.h"

static void test_order_oldest_first(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 3);
    /* Out of order, some in the same millisecond (kept in arrival order), across shards. */
    const int64_t ages[] = {5, 59999, 100, 5, 30000, 0, 5, 100};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(txstats_add(t, (txstats_amount_t)i + 1, T0 - ages[i]), TXSTATS_OK);
    txstats_tx_t buf[16];
    size_t n = 0;
    assert_int_equal(txstats_get(t, buf, 16, &n), TXSTATS_OK);
    assert_int_equal(n, 8);
    const int64_t want_ts[] = {T0 - 59999, T0 - 30000, T0 - 100, T0 - 100,
                               T0 - 5,     T0 - 5,     T0 - 5,   T0};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(buf[i].timestamp_ms, want_ts[i]);
    assert_int_equal(buf[0].amount, 2);
    assert_int_equal(buf[7].amount, 6);
    clk.now = T0 + 30000; /* ages 59 999 and 30 000 leave */
    assert_int_equal(txstats_get(t, buf, 16, &n), TXSTATS_OK);
    assert_int_equal(n, 6);
    assert_int_equal(buf[0].timestamp_ms, T0 - 100);
    txstats_destroy(t);
}

static void test_same_ms_keeps_arrival_order(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    for (int i = 0; i < 100; i++) /* spans several chunks */
        assert_int_equal(txstats_add(t, i, T0 - 7), TXSTATS_OK);
    txstats_tx_t buf[100];
    size_t n;
    assert_int_equal(txstats_get(t, buf, 100, &n), TXSTATS_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf[i].amount, i);
    txstats_destroy(t);
}

static void test_short_buffer(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(txstats_add(t, i, T0 - 100 + i), TXSTATS_OK);
    txstats_tx_t buf[4];
    size_t n = 0;
    assert_int_equal(txstats_get(t, buf, 4, &n), TXSTATS_ENOBUFS);
    assert_int_equal(n, 10);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf[i].amount, i); /* the oldest four */
    assert_int_equal(txstats_get(t, NULL, 0, &n), TXSTATS_ENOBUFS);
    assert_int_equal(n, 10);
    assert_int_equal(txstats_get(t, NULL, 3, &n), TXSTATS_EINVAL);
    assert_int_equal(txstats_get(t, buf, 4, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_get(NULL, buf, 4, &n), TXSTATS_EINVAL);
    txstats_destroy(t);
}

static void test_retained_cap(void **state)
{
    struct fake_clock clk;
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    clk.now = T0;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    cfg.max_retained = 10;
    cfg.shards = 2;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    for (int i = 0; i < 25; i++)
        assert_int_equal(txstats_add(t, TXSTATS_AMOUNT_SCALE, T0 - 1000 + i), TXSTATS_OK);
    assert_stats(t, "25.00", "1.00", "1.00", "1.00", 25); /* statistics stay exact */
    txstats_tx_t buf[32];
    txstats_list_info_t info;
    assert_int_equal(txstats_get_ex(t, buf, 32, &info), TXSTATS_OK);
    assert_int_equal(info.in_window, 25);
    assert_int_equal(info.retained, 10);
    assert_int_equal(info.written, 10);
    for (size_t i = 1; i < info.written; i++)
        assert_true(buf[i - 1].timestamp_ms <= buf[i].timestamp_ms);
    /* Once old entries leave, room comes back. */
    clk.now = T0 + 59000 + 25; /* all 25 are now at least 60 000 old */
    assert_int_equal(txstats_get_ex(t, buf, 32, &info), TXSTATS_OK);
    assert_int_equal(info.in_window, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(txstats_add(t, 1, clk.now), TXSTATS_OK);
    assert_int_equal(txstats_get_ex(t, buf, 32, &info), TXSTATS_OK);
    assert_int_equal(info.retained, 10);
    assert_int_equal(info.in_window, 10);
    txstats_destroy(t);

    cfg.max_retained = 0; /* keep nothing, count everything */
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_add(t, 1, T0), TXSTATS_OK);
    assert_int_equal(txstats_get_ex(t, buf, 32, &info), TXSTATS_OK);
    assert_int_equal(info.in_window, 1);
    assert_int_equal(info.written, 0);
    txstats_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_oldest_first),
        cmocka_unit_test(test_same_ms_keeps_arrival_order),
        cmocka_unit_test(test_short_buffer),
        cmocka_unit_test(test_retained_cap),
    };
    return cmocka_run_group_tests_name("get", tests, NULL, NULL);
}
