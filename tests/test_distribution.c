/* SPDX-License-Identifier: MIT */
/*
 * The distribution of amounts against the exact answer: random windows (uniform, log-normal,
 * negative, mixed, many equal values, one value, up to 1,000,000 amounts) on a fake clock,
 * quantiles at many q checked against a sort, through expiry at the millisecond edge, skew,
 * clear, a snapshot round trip, several instances combined, threads.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

static double max_rel; /* the largest relative error seen, printed at the end */

/* Retained amounts give their own buckets; the others are listed apart: tests run with all,
 * some and none retained. */
static size_t retained = TXSTATS_DEFAULT_MAX_RETAINED;

static txstats_t *make(struct fake_clock *clk, int64_t start, int64_t window_ms, int64_t skew_ms,
                       unsigned shards)
{
    return make_instance_retaining(clk, start, window_ms, skew_ms, shards, retained);
}

struct model {
    int64_t *ts;
    txstats_amount_t *a;
    size_t n, cap;
};

static void model_add(struct model *m, txstats_amount_t a, int64_t ts)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->ts = realloc(m->ts, m->cap * sizeof(*m->ts));
        m->a = realloc(m->a, m->cap * sizeof(*m->a));
        assert_non_null(m->ts);
        assert_non_null(m->a);
    }
    m->ts[m->n] = ts;
    m->a[m->n++] = a;
}

static void model_free(struct model *m)
{
    free(m->ts);
    free(m->a);
    memset(m, 0, sizeof(*m));
}

static int cmp_amount(const void *x, const void *y)
{
    txstats_amount_t a = *(const txstats_amount_t *)x, b = *(const txstats_amount_t *)y;
    return (a > b) - (a < b);
}

/* The amounts of the models in (now - window, now], sorted; *n of them. */
static txstats_amount_t *in_window(const struct model *ms, size_t nm, int64_t now, int64_t window,
                                   size_t *n)
{
    size_t total = 0, k = 0;
    for (size_t j = 0; j < nm; j++)
        total += ms[j].n;
    txstats_amount_t *v = malloc((total + 1) * sizeof(*v));
    assert_non_null(v);
    for (size_t j = 0; j < nm; j++)
        for (size_t i = 0; i < ms[j].n; i++)
            if (ms[j].ts[i] > now - window && ms[j].ts[i] <= now)
                v[k++] = ms[j].a[i];
    qsort(v, k, sizeof(*v), cmp_amount);
    *n = k;
    return v;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double unit(void)
{
    return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

#define NQ 64
/* Fixed levels, then random ones. */
static void levels(uint32_t *q)
{
    static const uint32_t fixed[] = {0,         1,         1000000,   10000000,  50000000,
                                     100000000, 250000000, 500000000, 750000000, 900000000,
                                     950000000, 990000000, 999000000, 999999999, 1000000000};
    size_t nf = sizeof(fixed) / sizeof(fixed[0]);
    memcpy(q, fixed, sizeof(fixed));
    for (size_t i = nf; i < NQ; i++)
        q[i] = (uint32_t)(rnd() % (TXSTATS_Q_SCALE + 1));
}

/* |got - truth| <= |truth| / 1000 (0.1 %), and the relative error recorded. */
static void check_value(txstats_amount_t got, txstats_amount_t truth)
{
    __int128 d = (__int128)got - truth;
    d = d < 0 ? -d : d;
    __int128 t = truth < 0 ? -(__int128)truth : truth;
    if (d * 1000 > t)
        fail_msg("quantile %lld, true %lld: beyond 0.1 %%", (long long)got, (long long)truth);
    if (t > 0 && (double)d / (double)t > max_rel)
        max_rel = (double)d / (double)t;
}

/* Quantiles from the instance and from its collected distribution against the sorted truth. */
static void check_against(const txstats_amount_t *v, size_t n, const uint32_t *q,
                          const txstats_amount_t *got)
{
    for (size_t i = 0; i < NQ; i++) {
        if (n == 0) {
            assert_int_equal(got[i], 0);
            continue;
        }
        uint64_t r =
            (uint64_t)(((unsigned __int128)q[i] * n + TXSTATS_Q_SCALE - 1) / TXSTATS_Q_SCALE);
        r = r < 1 ? 1 : r;
        check_value(got[i], v[r - 1]);
        if (r == 1 || r == n)
            assert_int_equal(got[i], v[r - 1]); /* min and max are exact */
    }
}

/* The cumulative histogram: every amount <= le, and perhaps some up to 0.2 % above it. */
static void check_histogram(const txstats_dist_t *d, const txstats_amount_t *v, size_t n)
{
    txstats_amount_t le[8];
    uint64_t counts[8];
    for (size_t i = 0; i < 8; i++)
        le[i] = n ? v[rnd() % n] + (txstats_amount_t)(rnd() % 3) - 1 : 0;
    assert_int_equal(txstats_dist_histogram(d, le, 8, counts), TXSTATS_OK);
    /* The finest histogram: exact bounds, in order, holding every amount. */
    uint32_t cursor = 0;
    txstats_amount_t lo, hi, prev = INT64_MIN;
    uint64_t c, sum = 0;
    size_t j = 0;
    while (txstats_dist_bucket_next(d, &cursor, &lo, &hi, &c)) {
        assert_true(lo <= hi && lo > prev && c > 0);
        for (uint64_t k = 0; k < c; k++, j++)
            assert_true(v[j] >= lo && v[j] <= hi);
        prev = hi;
        sum += c;
    }
    assert_int_equal(sum, n);
    assert_int_equal(txstats_dist_bucket_next(d, &cursor, &lo, &hi, &c), 0);
    for (size_t i = 0; i < 8; i++) {
        __int128 slack = (le[i] < 0 ? -(__int128)le[i] : le[i]) / 500 + 1;
        size_t lo = 0, hi = 0;
        for (size_t j = 0; j < n; j++) {
            lo += v[j] <= le[i];
            hi += v[j] <= le[i] + slack;
        }
        assert_true(counts[i] >= lo && counts[i] <= hi);
    }
}

static void check(txstats_t *t, const struct model *ms, size_t nm, int64_t now, int64_t window)
{
    size_t n;
    txstats_amount_t *v = in_window(ms, nm, now, window, &n);
    uint32_t q[NQ];
    txstats_amount_t got[NQ];
    uint64_t count = 0;
    levels(q);
    assert_int_equal(txstats_quantiles(t, q, NQ, got, &count), TXSTATS_OK);
    assert_int_equal(count, n);
    check_against(v, n, q, got);

    txstats_dist_t *d;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_dist_collect(t, d), TXSTATS_OK);
    assert_int_equal(txstats_dist_count(d), n);
    txstats_amount_t dgot[NQ];
    assert_int_equal(txstats_dist_quantiles(d, q, NQ, dgot), TXSTATS_OK);
    assert_memory_equal(got, dgot, sizeof(got));
    check_histogram(d, v, n);
    txstats_dist_destroy(d);
    free(v);
}

enum shape { UNIFORM, LOGNORMAL, NEGATIVE, MIXED, EQUAL, ONE, TINY, HUGE };

static txstats_amount_t draw(enum shape s)
{
    static const txstats_amount_t few[] = {9990000, 10000000, 0, -5000000, 1, 999999999999};
    double x;
    switch (s) {
    case UNIFORM:
        return (txstats_amount_t)(rnd() % 1000000000000u); /* 0 .. 1,000,000.00 */
    case LOGNORMAL:
    case NEGATIVE:
    case MIXED:
        x = exp(log(50e6) + 3.0 * sqrt(-2 * log(unit())) * cos(6.283185307179586 * unit()));
        x = x < 1 ? 1 : x > 9.99e17 ? 9.99e17 : x;
        return (s == NEGATIVE || (s == MIXED && (rnd() & 1))) ? -(txstats_amount_t)x
                                                              : (txstats_amount_t)x;
    case EQUAL:
        return few[rnd() % 6];
    case ONE:
        return 12340000;
    case TINY:
        return (txstats_amount_t)(rnd() % 4001) - 2000;
    default:
        return TXSTATS_AMOUNT_LIMIT - 1 - (txstats_amount_t)(rnd() % 1000000000000u);
    }
}

/* `n` amounts of one shape at random times of a 10 s window, checked, then slid out. */
static void run_shape(enum shape s, size_t n, unsigned shards)
{
    struct fake_clock clk;
    const int64_t window = 10000;
    txstats_t *t = make(&clk, T0, window, 0, shards);
    struct model m = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t ts = T0 - (int64_t)(rnd() % (uint64_t)window);
        txstats_amount_t a = draw(s);
        assert_int_equal(txstats_add(t, a, ts), TXSTATS_OK);
        model_add(&m, a, ts);
    }
    check(t, &m, 1, clk.now, window);
    for (int step = 1; step <= 4; step++) {
        clk.now = T0 + step * 2777;
        check(t, &m, 1, clk.now, window);
    }
    clk.now = T0 + window;
    check(t, &m, 1, clk.now, window);
    txstats_destroy(t);
    model_free(&m);
}

static void test_uniform(void **state)
{
    run_shape(UNIFORM, 200000, 2);
}

static void test_lognormal_million(void **state)
{
    run_shape(LOGNORMAL, 1000000, 2);
}

static void test_negative_and_mixed(void **state)
{
    run_shape(NEGATIVE, 100000, 2);
    run_shape(MIXED, 200000, 3);
}

static void test_equal_one_tiny_huge(void **state)
{
    run_shape(EQUAL, 100000, 2);
    run_shape(ONE, 50000, 1);
    run_shape(ONE, 1, 1);
    run_shape(TINY, 100000, 2);
    run_shape(HUGE, 20000, 2);
    run_shape(MIXED, 5, 2);
}

/* Expiry at the millisecond edge, and cells of one, two, three amounts. */
static void test_millisecond_edge(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make(&clk, T0, 1000, 0, 1);
    struct model m = {0};
    for (int64_t k = 0; k < 1000; k++) {
        for (int64_t j = 0; j <= k % 4; j++) {
            txstats_amount_t a = draw(MIXED);
            assert_int_equal(txstats_add(t, a, T0 - k), TXSTATS_OK);
            model_add(&m, a, T0 - k);
        }
    }
    for (int64_t now = T0; now <= T0 + 1000; now += 37) {
        clk.now = now;
        check(t, &m, 1, now, 1000);
        clk.now = now + 1; /* the oldest millisecond goes, exactly */
        check(t, &m, 1, now + 1, 1000);
    }
    txstats_destroy(t);
    model_free(&m);
}

/* Amounts ahead of the clock (skew) count once the clock reaches them. */
static void test_skew(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make(&clk, T0, 1000, 500, 2);
    struct model m = {0};
    for (int i = 0; i < 20000; i++) {
        int64_t ts = T0 - 999 + (int64_t)(rnd() % 1500);
        txstats_amount_t a = draw(LOGNORMAL);
        assert_int_equal(txstats_add(t, a, ts), TXSTATS_OK);
        model_add(&m, a, ts);
    }
    for (int64_t now = T0; now <= T0 + 1600; now += 97) {
        clk.now = now;
        check(t, &m, 1, now, 1000);
    }
    txstats_destroy(t);
    model_free(&m);
}

static void test_clear_and_errors(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make(&clk, T0, 60000, 0, 2);
    uint32_t q[2] = {500000000, TXSTATS_Q_SCALE + 1};
    txstats_amount_t out[2] = {7, 7};
    uint64_t count = 9;
    assert_int_equal(txstats_quantiles(t, q, 1, out, &count), TXSTATS_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(count, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(txstats_add(t, draw(EQUAL), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_quantiles(t, q, 2, out, &count), TXSTATS_EINVAL);
    assert_int_equal(txstats_quantiles(NULL, q, 1, out, &count), TXSTATS_EINVAL);
    assert_int_equal(txstats_quantiles(t, NULL, 1, out, &count), TXSTATS_EINVAL);
    assert_int_equal(txstats_quantiles(t, q, 1, out, NULL), TXSTATS_OK);
    txstats_clear(t);
    assert_int_equal(txstats_quantiles(t, q, 1, out, &count), TXSTATS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(out[0], 0);
    struct model m = {0};
    for (int i = 0; i < 1000; i++) {
        txstats_amount_t a = draw(MIXED);
        assert_int_equal(txstats_add(t, a, T0 - i), TXSTATS_OK);
        model_add(&m, a, T0 - i);
    }
    check(t, &m, 1, T0, 60000);
    txstats_destroy(t);
    model_free(&m);

    txstats_dist_t *d;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_dist_add(d, TXSTATS_AMOUNT_LIMIT, 1), TXSTATS_ERANGE);
    assert_int_equal(txstats_dist_add(d, -5, 3), TXSTATS_OK);
    assert_int_equal(txstats_dist_count(d), 3);
    txstats_dist_clear(d);
    assert_int_equal(txstats_dist_count(d), 0);
    assert_int_equal(txstats_dist_collect(NULL, d), TXSTATS_EINVAL);
    assert_int_equal(txstats_dist_create(NULL, NULL), TXSTATS_EINVAL);
    txstats_dist_destroy(d);
    txstats_dist_destroy(NULL);
}

/* Save and load: the same distribution when every amount was retained; the same count, min and
 * max otherwise. */
static void test_snapshot_round_trip(void **state)
{
    char path[] = "/tmp/txstats-test-dist-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct fake_clock clk, clk2;
    size_t keep = retained; /* the snapshot has every amount; the loading instance keeps `keep` */
    retained = TXSTATS_DEFAULT_MAX_RETAINED;
    txstats_t *t = make(&clk, T0, 10000, 0, 2);
    retained = keep;
    struct model m = {0};
    for (int i = 0; i < 100000; i++) {
        int64_t ts = T0 - (int64_t)(rnd() % 10000);
        txstats_amount_t a = draw(i % 2 ? LOGNORMAL : EQUAL);
        assert_int_equal(txstats_add(t, a, ts), TXSTATS_OK);
        model_add(&m, a, ts);
    }
    assert_int_equal(txstats_save(t, path), TXSTATS_OK);
    txstats_t *u = make(&clk2, T0, 10000, 0, 3);
    assert_int_equal(txstats_load(u, path), TXSTATS_OK);
    uint32_t q[NQ];
    txstats_amount_t a[NQ], b[NQ];
    levels(q);
    assert_int_equal(txstats_quantiles(t, q, NQ, a, NULL), TXSTATS_OK);
    assert_int_equal(txstats_quantiles(u, q, NQ, b, NULL), TXSTATS_OK);
    assert_memory_equal(a, b, sizeof(a));
    check(u, &m, 1, T0, 10000);
    clk2.now = T0 + 5000; /* expiry after a load removes what the load put */
    check(u, &m, 1, clk2.now, 10000);
    clk2.now = T0 + 10000;
    check(u, &m, 1, clk2.now, 10000);
    txstats_destroy(u);
    txstats_destroy(t);

    /* Past max_retained the snapshot lacks amounts: counts, min, max stay exact. */
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = 10000;
    cfg.shards = 2;
    cfg.max_retained = 100;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    clk.now = T0;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    for (size_t i = 0; i < m.n; i++)
        assert_int_equal(txstats_add(t, m.a[i], m.ts[i]), TXSTATS_OK);
    assert_int_equal(txstats_save(t, path), TXSTATS_OK);
    clk2.now = T0;
    u = make(&clk2, T0, 10000, 0, 2);
    assert_int_equal(txstats_load(u, path), TXSTATS_OK);
    uint64_t count;
    uint32_t ends[2] = {0, TXSTATS_Q_SCALE};
    assert_int_equal(txstats_quantiles(u, ends, 2, a, &count), TXSTATS_OK);
    assert_int_equal(count, m.n);
    size_t n;
    txstats_amount_t *v = in_window(&m, 1, T0, 10000, &n);
    assert_int_equal(a[0], v[0]);
    assert_int_equal(a[1], v[n - 1]);
    free(v);
    clk2.now = T0 + 10000;
    assert_int_equal(txstats_quantiles(u, ends, 2, a, &count), TXSTATS_OK);
    assert_int_equal(count, 0);
    txstats_destroy(u);
    txstats_destroy(t);
    model_free(&m);
    unlink(path);
}

/* Several instances (partitions) combine exactly: their union's quantiles. */
static void test_combined_instances(void **state)
{
    struct fake_clock clk[3];
    txstats_t *t[3];
    struct model m[3] = {{0}};
    enum shape shapes[3] = {LOGNORMAL, NEGATIVE, EQUAL};
    for (int j = 0; j < 3; j++) {
        t[j] = make(&clk[j], T0, 5000, 0, (unsigned)j + 1);
        for (int i = 0; i < 50000 * (j + 1); i++) {
            int64_t ts = T0 - (int64_t)(rnd() % 5000);
            txstats_amount_t a = draw(shapes[j]);
            assert_int_equal(txstats_add(t[j], a, ts), TXSTATS_OK);
            model_add(&m[j], a, ts);
        }
    }
    for (int64_t now = T0; now <= T0 + 5000; now += 1250) {
        txstats_dist_t *all, *part;
        assert_int_equal(txstats_dist_create(&all, NULL), TXSTATS_OK);
        assert_int_equal(txstats_dist_create(&part, NULL), TXSTATS_OK);
        for (int j = 0; j < 3; j++) {
            clk[j].now = now;
            txstats_dist_clear(part);
            assert_int_equal(txstats_dist_collect(t[j], part), TXSTATS_OK);
            assert_int_equal(txstats_dist_merge(all, part), TXSTATS_OK);
        }
        size_t n;
        txstats_amount_t *v = in_window(m, 3, now, 5000, &n);
        assert_int_equal(txstats_dist_count(all), n);
        uint32_t q[NQ];
        txstats_amount_t got[NQ];
        levels(q);
        assert_int_equal(txstats_dist_quantiles(all, q, NQ, got), TXSTATS_OK);
        check_against(v, n, q, got);
        check_histogram(all, v, n);
        free(v);
        txstats_dist_destroy(part);
        txstats_dist_destroy(all);
    }
    for (int j = 0; j < 3; j++) {
        txstats_destroy(t[j]);
        model_free(&m[j]);
    }
}

struct worker {
    txstats_t *t;
    int id;
};

static void *add_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 100000; i++)
        txstats_add(w->t, (txstats_amount_t)(w->id * 1000003 + i) * 17, T0 - i % 1000);
    return NULL;
}

/* Concurrent adds: every one in the distribution. */
/* The same with none, and with a few, of the amounts retained for listing. */
static void test_not_retained(void **state)
{
    for (int k = 0; k < 2; k++) {
        retained = k ? 5000 : 0;
        run_shape(LOGNORMAL, 200000, 2);
        run_shape(EQUAL, 50000, 1);
        run_shape(ONE, 3, 1);
        test_millisecond_edge(state);
        test_skew(state);
        test_snapshot_round_trip(state);
        test_combined_instances(state);
    }
    retained = TXSTATS_DEFAULT_MAX_RETAINED;
}

static void test_threads(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make(&clk, T0, 60000, 0, 2);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){t, i};
        assert_int_equal(pthread_create(&th[i], NULL, add_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct model m = {0};
    for (int id = 0; id < 4; id++)
        for (int i = 0; i < 100000; i++)
            model_add(&m, (txstats_amount_t)(id * 1000003 + i) * 17, T0 - i % 1000);
    check(t, &m, 1, T0, 60000);
    txstats_destroy(t);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_lognormal_million),
        cmocka_unit_test(test_negative_and_mixed),
        cmocka_unit_test(test_equal_one_tiny_huge),
        cmocka_unit_test(test_millisecond_edge),
        cmocka_unit_test(test_skew),
        cmocka_unit_test(test_clear_and_errors),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_combined_instances),
        cmocka_unit_test(test_not_retained),
        cmocka_unit_test(test_threads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    printf("largest relative error of a quantile: %.6f %%\n", max_rel * 100);
    return rc;
}
