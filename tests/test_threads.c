/* SPDX-License-Identifier: MIT */
/* Concurrency: exact totals from many writers, consistent reads while they write. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "helpers.h"

#define WRITERS    4
#define PER_WRITER 250000

struct ctx {
    txstats_t *t;
    atomic_int running;
    atomic_long reads;
    int failures;
};

static void *writer(void *arg)
{
    struct ctx *c = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        /* Every amount is 1.000001; timestamps spread over the window. */
        if (txstats_add(c->t, 1000001, T0 - (i % 59000)) != TXSTATS_OK)
            __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
    }
    atomic_fetch_sub(&c->running, 1);
    return NULL;
}

/* While writers run, every snapshot must be internally consistent. */
static void *reader(void *arg)
{
    struct ctx *c = arg;
    uint64_t last = 0;
    while (atomic_load(&c->running) > 0) {
        txstats_summary_t s;
        txstats_stats(c->t, &s);
        unsigned __int128 sum = ((unsigned __int128)(uint64_t)s.sum_hi << 64) | s.sum_lo;
        bool ok = sum == (unsigned __int128)s.count * 1000001 && s.count >= last &&
                  (s.count == 0 || (s.min == 1000001 && s.max == 1000001));
        if (!ok)
            __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
        last = s.count;
        size_t n;
        txstats_tx_t buf[8];
        txstats_get(c->t, buf, 8, &n);
        atomic_fetch_add(&c->reads, 1);
    }
    return NULL;
}

static void test_exact_totals(void **state)
{
    struct fake_clock clk;
    struct ctx c = {.failures = 0};
    c.t = make_instance(&clk, T0, 60000, 0, 0);
    atomic_init(&c.running, WRITERS);
    atomic_init(&c.reads, 0);
    pthread_t w[WRITERS], r;
    assert_int_equal(pthread_create(&r, NULL, reader, &c), 0);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&w[i], NULL, writer, &c), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    pthread_join(r, NULL);
    assert_int_equal(c.failures, 0);
    txstats_summary_t s;
    assert_int_equal(txstats_stats(c.t, &s), TXSTATS_OK);
    assert_int_equal(s.count, WRITERS * PER_WRITER);
    assert_int_equal(s.sum_lo, (uint64_t)WRITERS * PER_WRITER * 1000001);
    assert_int_equal(s.sum_hi, 0);
    assert_stats(c.t, "1000001.00", "1.00", "1.00", "1.00", WRITERS * PER_WRITER);
    size_t n;
    assert_int_equal(txstats_get(c.t, NULL, 0, &n), TXSTATS_ENOBUFS);
    assert_int_equal(n, WRITERS * PER_WRITER);
    txstats_destroy(c.t);
}

/* The clock moves while writers add: nothing is lost or counted twice. */
struct moving {
    txstats_t *t;
    _Atomic int64_t now;
    atomic_int stored;
};

static int64_t moving_clock(void *ctx)
{
    return atomic_load(&((struct moving *)ctx)->now);
}

static void *moving_writer(void *arg)
{
    struct moving *m = arg;
    for (int i = 0; i < 100000; i++) {
        int64_t now = atomic_load(&m->now);
        if (txstats_add(m->t, 1, now) == TXSTATS_OK)
            atomic_fetch_add(&m->stored, 1);
        if (i % 50 == 0)
            atomic_fetch_add(&m->now, 1);
    }
    return NULL;
}

static void test_moving_clock(void **state)
{
    struct moving m;
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.clock_ms = moving_clock;
    cfg.clock_ctx = &m;
    cfg.window_ms = 1000000; /* long enough that nothing expires */
    atomic_init(&m.now, T0);
    atomic_init(&m.stored, 0);
    assert_int_equal(txstats_create(&m.t, &cfg), TXSTATS_OK);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, moving_writer, &m);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    txstats_summary_t s;
    assert_int_equal(txstats_stats(m.t, &s), TXSTATS_OK);
    assert_int_equal(s.count, atomic_load(&m.stored));
    assert_int_equal(s.count, 300000);
    txstats_destroy(m.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_totals),
        cmocka_unit_test(test_moving_clock),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
