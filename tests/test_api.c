/* SPDX-License-Identifier: MIT */
/* txstats_summary_merge, txstats_admit, txstats_strerror: the small public helpers. */
#include <stdlib.h>

#include "helpers.h"

static unsigned __int128 sum_of(const txstats_summary_t *s)
{
    return ((unsigned __int128)(uint64_t)s->sum_hi << 64) | s->sum_lo;
}

/* Merging the summaries of several instances equals one instance holding every transaction. */
static void test_merge_equals_union(void **state)
{
    (void)state;
    enum { PARTS = 5 };
    struct fake_clock clk[PARTS + 1];
    txstats_t *part[PARTS], *all = make_instance(&clk[PARTS], T0, 60000, 0, 1);
    for (int p = 0; p < PARTS; p++)
        part[p] = make_instance(&clk[p], T0, 60000, 0, 2);
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        int p = (int)(rand_r(&seed) % (PARTS - 1)); /* the last part stays empty */
        txstats_amount_t a = (txstats_amount_t)(rand_r(&seed) % 2000000001) - 1000000000;
        if (i % 97 == 0)
            a = (i % 2 ? 1 : -1) * (TXSTATS_AMOUNT_LIMIT - 1); /* extremes: sums pass 2^64 */
        int64_t ts = T0 - (int64_t)(rand_r(&seed) % 60000);
        assert_int_equal(txstats_add(part[p], a, ts), TXSTATS_OK);
        assert_int_equal(txstats_add(all, a, ts), TXSTATS_OK);
    }
    txstats_summary_t acc, s, want;
    memset(&acc, 0, sizeof(acc));
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(txstats_stats(part[p], &s), TXSTATS_OK);
        assert_int_equal(txstats_summary_merge(&acc, &s), TXSTATS_OK);
        txstats_destroy(part[p]);
    }
    assert_int_equal(txstats_stats(all, &want), TXSTATS_OK);
    assert_int_equal(acc.count, want.count);
    assert_true(sum_of(&acc) == sum_of(&want));
    assert_int_equal(acc.min, want.min);
    assert_int_equal(acc.max, want.max);
    assert_int_equal(acc.now_ms, T0);
    txstats_destroy(all);
}

/* The edge cases of merging one summary into another. */
static void test_merge_table(void **state)
{
    (void)state;
    const struct {
        uint64_t ca;
        int64_t mina, maxa, hia;
        uint64_t loa;
        uint64_t cb;
        int64_t minb, maxb, hib;
        uint64_t lob;
        uint64_t count;
        int64_t min, max, hi;
        uint64_t lo;
    } cases[] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},                  /* empty + empty */
        {0, 0, 0, 0, 0, 2, -5, 9, 0, 4, 2, -5, 9, 0, 4},                /* empty + x */
        {2, -5, 9, 0, 4, 0, 0, 0, 0, 0, 2, -5, 9, 0, 4},                /* x + empty */
        {1, 3, 3, 0, 3, 1, -3, -3, -1, UINT64_MAX - 2, 2, -3, 3, 0, 0}, /* 3 + -3 = 0 */
        {1, 5, 5, 0, UINT64_MAX, 1, 7, 7, 0, 1, 2, 5, 7, 1, 0}, /* carry into the high half */
        {1, -1, -1, -1, 0, 1, -2, -2, -1, 0, 2, -2, -1, -2, 0}, /* two negatives */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        txstats_summary_t a = {0}, b = {0};
        a.count = cases[i].ca, a.min = cases[i].mina, a.max = cases[i].maxa;
        a.sum_hi = cases[i].hia, a.sum_lo = cases[i].loa;
        b.count = cases[i].cb, b.min = cases[i].minb, b.max = cases[i].maxb;
        b.sum_hi = cases[i].hib, b.sum_lo = cases[i].lob;
        assert_int_equal(txstats_summary_merge(&a, &b), TXSTATS_OK);
        assert_int_equal(a.count, cases[i].count);
        assert_int_equal(a.min, cases[i].min);
        assert_int_equal(a.max, cases[i].max);
        assert_int_equal(a.sum_hi, cases[i].hi);
        assert_int_equal(a.sum_lo, cases[i].lo);
    }
    txstats_summary_t s = {0};
    assert_int_equal(txstats_summary_merge(NULL, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_summary_merge(&s, NULL), TXSTATS_EINVAL);
}

/* txstats_admit answers what txstats_add does, at every edge. */
static void test_admit_matches_add(void **state)
{
    (void)state;
    const int64_t W = 1000, S = 50, now = T0;
    const struct {
        txstats_amount_t amount;
        int64_t ts;
        int rc;
    } cases[] = {
        {1, now, TXSTATS_OK},
        {1, now - W + 1, TXSTATS_OK},
        {1, now - W, TXSTATS_EXPIRED},
        {1, now - 10 * W, TXSTATS_EXPIRED},
        {1, now + S, TXSTATS_OK},
        {1, now + S + 1, TXSTATS_EFUTURE},
        {TXSTATS_AMOUNT_LIMIT - 1, now, TXSTATS_OK},
        {-TXSTATS_AMOUNT_LIMIT + 1, now, TXSTATS_OK},
        {TXSTATS_AMOUNT_LIMIT, now, TXSTATS_ERANGE},
        {-TXSTATS_AMOUNT_LIMIT, now - 10 * W, TXSTATS_ERANGE}, /* range is checked first */
        {INT64_MIN, now + 10 * S, TXSTATS_ERANGE},
    };
    struct fake_clock clk;
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = W;
    cfg.max_skew_ms = S;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        txstats_t *t = make_instance(&clk, now, W, S, 1);
        assert_int_equal(txstats_admit(&cfg, cases[i].amount, cases[i].ts, now), cases[i].rc);
        assert_int_equal(txstats_add(t, cases[i].amount, cases[i].ts), cases[i].rc);
        txstats_destroy(t);
    }
    assert_int_equal(txstats_admit(NULL, 1, now - 60000, now), TXSTATS_EXPIRED); /* defaults */
    cfg.max_skew_ms = INT64_MAX; /* no overflow at the edges of int64 */
    assert_int_equal(txstats_admit(&cfg, 1, INT64_MAX, 1), TXSTATS_OK);
    cfg.max_skew_ms = 0;
    cfg.window_ms = INT64_MAX;
    assert_int_equal(txstats_admit(&cfg, 1, INT64_MIN + 1, -2), TXSTATS_OK);
    assert_int_equal(txstats_admit(&cfg, 1, INT64_MIN, -2), TXSTATS_EXPIRED);
    cfg.window_ms = 0;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    cfg.window_ms = 1000;
    cfg.max_skew_ms = -1;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    assert_int_equal(txstats_admit(NULL, 1, now - 59999, now), TXSTATS_OK);
}

static void test_strerror_every_code(void **state)
{
    (void)state;
    const int codes[] = {TXSTATS_OK,      TXSTATS_EXPIRED, TXSTATS_EFUTURE, TXSTATS_ERANGE,
                         TXSTATS_EINVAL,  TXSTATS_ENOMEM,  TXSTATS_ENOBUFS, TXSTATS_EIO,
                         TXSTATS_EFORMAT, TXSTATS_EBUSY};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = txstats_strerror(codes[i]);
        assert_non_null(s);
        assert_null(strstr(s, "unknown"));
    }
    assert_non_null(strstr(txstats_strerror(12345), "unknown"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_equals_union),
        cmocka_unit_test(test_merge_table),
        cmocka_unit_test(test_admit_matches_add),
        cmocka_unit_test(test_strerror_every_code),
    };
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
