/* SPDX-License-Identifier: MIT */
/* txstats_add_batch: the same results and the same window as one txstats_add per transaction,
 * journaled in one write, all or nothing when the journal fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

/* A random mix: in the window, many in the same millisecond (chunk boundaries), expired,
 * future, out of range. */
static size_t make_mix(txstats_tx_t *tx, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        txstats_amount_t a = (txstats_amount_t)(r % 2000000) - 1000000;
        int64_t ts = T0 - (int64_t)(r % 3 == 0 ? 7 : r % 60000); /* a third in one ms */
        if (r % 17 == 0)
            ts = T0 - 60000 - (int64_t)(r % 100); /* expired */
        if (r % 19 == 0)
            ts = T0 + 1 + (int64_t)(r % 100); /* future */
        if (r % 23 == 0)
            a = TXSTATS_AMOUNT_LIMIT; /* out of range */
        tx[i] = (txstats_tx_t){a, ts};
    }
    return n;
}

/* The same quantiles at many levels. */
static void assert_same_quantiles(txstats_t *a, txstats_t *b)
{
    uint32_t q[101];
    txstats_amount_t qa[101], qb[101];
    uint64_t na, nb;
    for (int i = 0; i <= 100; i++)
        q[i] = (uint32_t)i * 10000000u; /* 0, 0.01, ..., 1 in parts per billion */
    assert_int_equal(txstats_quantiles(a, q, 101, qa, &na), TXSTATS_OK);
    assert_int_equal(txstats_quantiles(b, q, 101, qb, &nb), TXSTATS_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(qa, qb, sizeof(qa));
}

/* Batches against single adds, with every amount retained, some, and none (then the
 * distribution keeps the buckets of the rest per millisecond: pending reservations in one cell
 * cross those chunks' boundaries too); then through expiry. */
static void same_as_single_adds(size_t max_retained)
{
    enum { N = 20000 };
    txstats_tx_t *tx = malloc(N * sizeof(*tx));
    int *res = malloc(N * sizeof(*res));
    make_mix(tx, N, 11);
    struct fake_clock c1, c2;
    txstats_t *single = make_instance_retaining(&c1, T0, 60000, 0, 1, max_retained);
    txstats_t *batched = make_instance_retaining(&c2, T0, 60000, 0, 1, max_retained);
    size_t stored = 0, want_stored = 0;
    for (size_t off = 0; off < N; off += 4000) { /* several batches */
        assert_int_equal(txstats_add_batch(batched, tx + off, 4000, res + off, &stored),
                         TXSTATS_OK);
        size_t ok = 0;
        for (size_t i = off; i < off + 4000; i++) {
            int rc = txstats_add(single, tx[i].amount, tx[i].timestamp_ms);
            assert_int_equal(res[i], rc);
            ok += rc == TXSTATS_OK;
        }
        assert_int_equal(stored, ok);
        want_stored += ok;
    }
    assert_true(want_stored > N / 2);
    assert_same_window(single, batched);
    assert_same_quantiles(single, batched);
    c1.now = c2.now = T0 + 30000; /* half of them leave */
    assert_same_window(single, batched);
    assert_same_quantiles(single, batched);
    txstats_destroy(single);
    txstats_destroy(batched);
    free(tx);
    free(res);
}

static void test_same_as_single_adds(void **state)
{
    (void)state;
    same_as_single_adds(TXSTATS_DEFAULT_MAX_RETAINED);
    same_as_single_adds(500);
    same_as_single_adds(0);
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    size_t none = 7;
    txstats_tx_t one = {1, T0};
    assert_int_equal(txstats_add_batch(t, NULL, 0, NULL, &none), TXSTATS_OK);
    assert_int_equal(none, 0);
    assert_int_equal(txstats_add_batch(t, NULL, 1, NULL, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_batch(NULL, &one, 1, NULL, NULL), TXSTATS_EINVAL);
    txstats_destroy(t);
}

struct disk {
    bool full;
    long writes;
};

static ssize_t disk_write(int fd, const void *buf, size_t len, void *ctx)
{
    struct disk *d = ctx;
    d->writes++;
    if (d->full) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, len);
}

/* One journal write per batch; a failed write stores none of it; a reopen finds what was
 * acknowledged. */
static void test_journal_all_or_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/txstats-test-batch-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct disk d = {false, 0};
    txstats_io_t io = {disk_write, NULL, &d};
    struct fake_clock clk = {T0};
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    cfg.shards = 2;
    cfg.io = &io;
    txstats_t *t;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
    enum { N = 3000 };
    txstats_tx_t tx[N];
    int res[N];
    for (int i = 0; i < N; i++)
        tx[i] = (txstats_tx_t){i + 1, T0 - i % 50};
    long before = d.writes;
    size_t stored;
    assert_int_equal(txstats_add_batch(t, tx, N, res, &stored), TXSTATS_OK);
    assert_int_equal(stored, N);
    assert_int_equal(d.writes - before, 1); /* one write for 3,000 records */
    d.full = true;
    assert_int_equal(txstats_add_batch(t, tx, N, res, &stored), TXSTATS_OK);
    assert_int_equal(stored, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], TXSTATS_EIO);
    d.full = false;
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, N);
    txstats_destroy(t); /* no checkpoint since: recovery replays the journal */
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, N);
    assert_int_equal(s.sum_lo, (uint64_t)N * (N + 1) / 2);
    txstats_destroy(t);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_single_adds),
        cmocka_unit_test(test_journal_all_or_nothing),
    };
    return cmocka_run_group_tests_name("add_batch", tests, NULL, NULL);
}
