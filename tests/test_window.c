/* SPDX-License-Identifier: MIT */
/* The window: exact millisecond edges, skew, out-of-order, sliding min/max, clock jumps. */
#include <stdlib.h>

#include "helpers.h"

static void test_edges_at_add_time(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    assert_int_equal(txstats_add(t, amt("1"), T0 - 59999), TXSTATS_OK);      /* age 59 999: in */
    assert_int_equal(txstats_add(t, amt("2"), T0 - 60000), TXSTATS_EXPIRED); /* 60 000: out */
    assert_int_equal(txstats_add(t, amt("4"), T0), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("8"), T0 + 1), TXSTATS_EFUTURE);
    assert_stats(t, "5.00", "2.50", "4.00", "1.00", 2);
    txstats_destroy(t);
}

static void test_edges_as_clock_advances(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_add(t, amt("1"), T0), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("2"), T0 - 1000), TXSTATS_OK);
    clk.now = T0 + 58999; /* the second is 59 999 old */
    assert_stats(t, "3.00", "1.50", "2.00", "1.00", 2);
    clk.now = T0 + 59000; /* now exactly 60 000 old: out */
    assert_stats(t, "1.00", "1.00", "1.00", "1.00", 1);
    clk.now = T0 + 59999;
    assert_stats(t, "1.00", "1.00", "1.00", "1.00", 1);
    clk.now = T0 + 60000;
    assert_stats(t, "0.00", "0.00", "0.00", "0.00", 0);
    txstats_destroy(t);
}

static void test_skew(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 1000, 500, 2);
    assert_int_equal(txstats_add(t, amt("7"), T0 + 500), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("9"), T0 + 501), TXSTATS_EFUTURE);
    assert_int_equal(txstats_add(t, amt("1"), T0), TXSTATS_OK);
    /* A transaction ahead of the clock counts once the clock reaches it. */
    assert_stats(t, "1.00", "1.00", "1.00", "1.00", 1);
    clk.now = T0 + 499;
    assert_stats(t, "1.00", "1.00", "1.00", "1.00", 1);
    clk.now = T0 + 500;
    assert_stats(t, "8.00", "4.00", "7.00", "1.00", 2);
    clk.now = T0 + 1000; /* the first left */
    assert_stats(t, "7.00", "7.00", "7.00", "7.00", 1);
    clk.now = T0 + 1500;
    assert_stats(t, "0.00", "0.00", "0.00", "0.00", 0);
    txstats_destroy(t);
}

static void test_out_of_order_and_sliding_extremes(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    assert_int_equal(txstats_add(t, amt("50"), T0 - 10), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("100"), T0 - 30000), TXSTATS_OK); /* older, arrives later */
    assert_int_equal(txstats_add(t, amt("-3"), T0 - 20000), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("20"), T0 - 5), TXSTATS_OK);
    assert_stats(t, "167.00", "41.75", "100.00", "-3.00", 4);
    clk.now = T0 + 30000; /* the max (100) leaves */
    assert_stats(t, "67.00", "22.33", "50.00", "-3.00", 3);
    clk.now = T0 + 40000; /* the min (-3) leaves */
    assert_stats(t, "70.00", "35.00", "50.00", "20.00", 2);
    clk.now = T0 + 59990; /* 50 leaves */
    assert_stats(t, "20.00", "20.00", "20.00", "20.00", 1);
    txstats_destroy(t);
}

static void test_clock_jumps(void **state)
{
    static const int64_t jumps[] = {1, 59999, 60000, 600000, 65536, 131072};
    for (size_t j = 0; j < sizeof(jumps) / sizeof(jumps[0]); j++) {
        struct fake_clock clk;
        txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
        assert_int_equal(txstats_add(t, amt("3"), T0), TXSTATS_OK);
        assert_int_equal(txstats_add(t, amt("5"), T0 - 59999), TXSTATS_OK);
        clk.now = T0 + jumps[j];
        int64_t expect_count = (jumps[j] < 60000) + (jumps[j] < 1);
        txstats_summary_t s;
        assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
        assert_int_equal(s.count, expect_count);
        /* Still fully usable after the jump. */
        assert_int_equal(txstats_add(t, amt("2"), clk.now), TXSTATS_OK);
        assert_int_equal(txstats_add(t, amt("1"), clk.now - 59999), TXSTATS_OK);
        assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
        assert_int_equal(s.count, expect_count + 2);
        txstats_destroy(t);
    }
}

static void test_clock_backwards(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_add(t, amt("1"), T0 - 100), TXSTATS_OK);
    clk.now = T0 + 59950; /* the first is 60 050 old: gone */
    assert_int_equal(txstats_add(t, amt("2"), T0 + 59950), TXSTATS_OK);
    clk.now = T0 - 5000; /* steps back: time here never runs backwards, nothing comes back */
    assert_stats(t, "2.00", "2.00", "2.00", "2.00", 1);
    assert_int_equal(txstats_add(t, amt("9"), T0 - 100), TXSTATS_EXPIRED);
    assert_int_equal(txstats_add(t, amt("4"), T0 - 4000), TXSTATS_EXPIRED);
    assert_int_equal(txstats_add(t, amt("3"), T0 + 59940), TXSTATS_OK);
    assert_stats(t, "5.00", "2.50", "3.00", "2.00", 2);
    clk.now = T0 + 119941; /* forward again: T0+59940 is 60 001 old, T0+59950 59 991 */
    assert_stats(t, "2.00", "2.00", "2.00", "2.00", 1);
    txstats_destroy(t);
}

static void test_bad_arguments(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    txstats_summary_t s;
    assert_int_equal(txstats_add(NULL, 1, T0), TXSTATS_EINVAL);
    assert_int_equal(txstats_add(t, TXSTATS_AMOUNT_LIMIT, T0), TXSTATS_ERANGE);
    assert_int_equal(txstats_add(t, -TXSTATS_AMOUNT_LIMIT, T0), TXSTATS_ERANGE);
    assert_int_equal(txstats_add(t, INT64_MIN, T0), TXSTATS_ERANGE);
    assert_int_equal(txstats_add(t, 1, INT64_MAX), TXSTATS_EFUTURE);
    assert_int_equal(txstats_add(t, 1, INT64_MIN), TXSTATS_EXPIRED);
    assert_int_equal(txstats_stats(NULL, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_stats(t, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 0);
    txstats_destroy(t);
    txstats_destroy(NULL);
    txstats_clear(NULL);

    txstats_config_t cfg;
    txstats_config_init(&cfg);
    assert_int_equal(txstats_create(NULL, &cfg), TXSTATS_EINVAL);
    cfg.window_ms = 0;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_EINVAL);
    assert_null(t);
    cfg.window_ms = TXSTATS_MAX_SPAN_MS;
    cfg.max_skew_ms = 1;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_EINVAL);
    cfg.max_skew_ms = -1;
    cfg.window_ms = 1000;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_EINVAL);
    assert_int_equal(txstats_create(&t, NULL), TXSTATS_OK); /* defaults, real clock */
    assert_int_equal(txstats_add(t, amt("1"), T0), TXSTATS_EXPIRED);
    txstats_destroy(t);
}

static void test_clear(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 100, 3);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(txstats_add(t, amt("1.5"), T0 - i * 13 + (i % 7) * 10), TXSTATS_OK);
    txstats_clear(t);
    assert_stats(t, "0.00", "0.00", "0.00", "0.00", 0);
    clk.now += 100; /* future entries were cleared too */
    assert_stats(t, "0.00", "0.00", "0.00", "0.00", 0);
    assert_int_equal(txstats_add(t, amt("2"), clk.now), TXSTATS_OK);
    assert_stats(t, "2.00", "2.00", "2.00", "2.00", 1);
    txstats_destroy(t);
}

/* Randomised comparison with a brute-force model: adds (out of order, at the edges, ahead within
 * the skew), clock steps of every size including backwards, clears. */
struct model_tx {
    int64_t ts;
    txstats_amount_t a;
};

static void model_check(txstats_t *t, const struct model_tx *m, size_t n, int64_t now, int64_t w)
{
    uint64_t count = 0;
    __int128 sum = 0;
    txstats_amount_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (m[i].ts > now - w && m[i].ts <= now) {
            count++;
            sum += m[i].a;
            lo = m[i].a < lo ? m[i].a : lo;
            hi = m[i].a > hi ? m[i].a : hi;
        }
    }
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.now_ms, now);
    assert_int_equal(s.count, count);
    assert_true(s.sum_hi == (int64_t)(sum >> 64) && s.sum_lo == (uint64_t)sum);
    if (count) {
        assert_int_equal(s.min, lo);
        assert_int_equal(s.max, hi);
    }
}

static int64_t model_step(unsigned *seed, int64_t w)
{
    int r = rand_r(seed) % 100;
    return r < 60   ? rand_r(seed) % 3
           : r < 85 ? rand_r(seed) % 200
           : r < 95 ? rand_r(seed) % (2 * w)
                    : -(rand_r(seed) % 300);
}

static void run_model(unsigned seed, int64_t w, int64_t skew, unsigned shards, int ops)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, w, skew, shards);
    struct model_tx *m = calloc((size_t)ops, sizeof(*m));
    size_t n = 0;
    int64_t now = T0; /* the model's monotonic time */
    for (int i = 0; i < ops; i++) {
        clk.now += model_step(&seed, w);
        now = clk.now > now ? clk.now : now;
        int64_t ts = now + skew - rand_r(&seed) % (w + skew + 20);
        txstats_amount_t a = (rand_r(&seed) % 2000001) - 1000000;
        int rc = txstats_add(t, a, ts);
        assert_int_equal(rc, ts <= now - w ? TXSTATS_EXPIRED : TXSTATS_OK);
        if (rc == TXSTATS_OK)
            m[n++] = (struct model_tx){ts, a};
        if (rand_r(&seed) % 5000 == 0) {
            txstats_clear(t);
            n = 0;
        }
        if (i % 7 == 0)
            model_check(t, m, n, now, w);
    }
    free(m);
    txstats_destroy(t);
}

static void test_against_model(void **state)
{
    run_model(1, 1000, 0, 1, 40000);
    run_model(2, 1000, 0, 3, 40000);
    run_model(3, 100, 37, 2, 40000);
    run_model(4, 5000, 250, 4, 40000);
    run_model(5, 1, 0, 2, 10000);  /* a one-millisecond window */
    run_model(6, 63, 1, 2, 10000); /* window + skew = 64 = the smallest ring */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_at_add_time),
        cmocka_unit_test(test_edges_as_clock_advances),
        cmocka_unit_test(test_skew),
        cmocka_unit_test(test_out_of_order_and_sliding_extremes),
        cmocka_unit_test(test_clock_jumps),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_against_model),
    };
    return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
