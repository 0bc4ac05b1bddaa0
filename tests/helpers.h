/* SPDX-License-Identifier: MIT */
/* Shared by the unit tests: a fake clock and shortcuts. */
#ifndef TXSTATS_TEST_HELPERS_H
#define TXSTATS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <txstats/txstats.h>

/* 2018-07-17T09:59:51.312Z, a realistic epoch-ms origin. */
#define T0 INT64_C(1531821591312)

struct fake_clock {
    int64_t now;
};

static inline int64_t fake_clock_read(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

/* An instance on a fake clock set to `start`, keeping up to `max_retained` for listing. */
static inline txstats_t *make_instance_retaining(struct fake_clock *clk, int64_t start,
                                                 int64_t window_ms, int64_t skew_ms,
                                                 unsigned shards, size_t max_retained)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    clk->now = start;
    cfg.window_ms = window_ms;
    cfg.max_skew_ms = skew_ms;
    cfg.shards = shards;
    cfg.max_retained = max_retained;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    return t;
}

/* An instance on a fake clock set to `start`. */
static inline txstats_t *make_instance(struct fake_clock *clk, int64_t start, int64_t window_ms,
                                       int64_t skew_ms, unsigned shards)
{
    return make_instance_retaining(clk, start, window_ms, skew_ms, shards,
                                   TXSTATS_DEFAULT_MAX_RETAINED);
}

/* Amount from text; fails the test when the text does not parse. */
static inline txstats_amount_t amt(const char *text)
{
    txstats_amount_t a = 0;
    assert_int_equal(txstats_amount_parse(text, strlen(text), &a), TXSTATS_OK);
    return a;
}

static inline txstats_summary_text_t stats_text(txstats_t *t)
{
    txstats_summary_t s;
    txstats_summary_text_t x;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(txstats_summary_text(&s, &x), TXSTATS_OK);
    return x;
}

/* Write zeros to `path` until the filesystem is full. */
static inline void fill_disk(const char *path)
{
    FILE *f = fopen(path, "w");
    char block[4096] = {0};
    assert_non_null(f);
    while (fwrite(block, 1, sizeof(block), f) == sizeof(block) && fflush(f) == 0)
        ;
    fclose(f);
}

#define assert_stats(t, sum_, avg_, max_, min_, count_)                                            \
    do {                                                                                           \
        txstats_summary_text_t x_ = stats_text(t);                                                 \
        assert_string_equal(x_.sum, sum_);                                                         \
        assert_string_equal(x_.avg, avg_);                                                         \
        assert_string_equal(x_.max, max_);                                                         \
        assert_string_equal(x_.min, min_);                                                         \
        assert_int_equal(x_.count, count_);                                                        \
    } while (0)

/* Two instances hold the same window: statistics, and the same listing in the same order. */
static inline void assert_same_window(txstats_t *a, txstats_t *b)
{
    txstats_summary_t sa, sb;
    assert_int_equal(txstats_stats(a, &sa), TXSTATS_OK);
    assert_int_equal(txstats_stats(b, &sb), TXSTATS_OK);
    assert_int_equal(sa.count, sb.count);
    assert_int_equal(sa.sum_hi, sb.sum_hi);
    assert_int_equal(sa.sum_lo, sb.sum_lo);
    assert_int_equal(sa.min, sb.min);
    assert_int_equal(sa.max, sb.max);
    size_t cap = (size_t)sa.count + 1;
    txstats_tx_t *la = malloc(cap * sizeof(*la)), *lb = malloc(cap * sizeof(*lb));
    txstats_list_info_t ia, ib;
    assert_int_equal(txstats_get_ex(a, la, cap, &ia), TXSTATS_OK);
    assert_int_equal(txstats_get_ex(b, lb, cap, &ib), TXSTATS_OK);
    assert_int_equal(ia.in_window, ib.in_window);
    assert_int_equal(ia.written, ib.written);
    assert_memory_equal(la, lb, ia.written * sizeof(la[0]));
    free(la);
    free(lb);
}

#endif
