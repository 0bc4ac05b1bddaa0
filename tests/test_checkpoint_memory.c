/* SPDX-License-Identifier: MIT */
/*
 * Checkpoints, snapshots and recovery in bounded memory, and a restart that changes no answer
 * (issues 25 and 28). A journaled window of N transactions (amounts uniform in 0.01..100,000.00,
 * max_retained well below N, so most amounts are not listable), every byte counted through
 * cfg.alloc: one txstats_checkpoint(), txstats_save_bin() and txstats_save() each need at most
 * 8 MiB beyond the window; a fresh instance recovering the directory needs at most 1.15 times
 * the window plus 8 MiB, and answers exactly as before: statistics, quantiles, every bucket of
 * the distribution, the listing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "helpers.h"

/* Sanitized builds (TXSTATS_SANITIZE) are several times slower: a fifth of the size. */
#ifdef TXSTATS_TEST_SANITIZED
#define N        200000
#define LISTABLE 40000
#else
#define N        1000000
#define LISTABLE 200000
#endif
#define WINDOW_MS 60000
#define BOUND     ((size_t)8 << 20)
#define MIB       1048576.0
#define BATCH     10000

/* ---- Counting allocator ------------------------------------------------------------------------
 */

/* The size in a 64-byte header: the caller's pointer stays 64-byte aligned (the instance's
 * structure asks for a cache line). */
#define HEADER 64

static atomic_size_t live, peak;

static void *count_alloc(size_t n, void *ud)
{
    size_t *p = aligned_alloc(HEADER, (n + 2 * HEADER - 1) / HEADER * HEADER);
    if (!p)
        return NULL;
    *p = n;
    size_t now = atomic_fetch_add(&live, n) + n;
    size_t pk = atomic_load(&peak);
    while (now > pk && !atomic_compare_exchange_weak(&peak, &pk, now))
        ;
    return (char *)p + HEADER;
}

static void count_free(void *q, void *ud)
{
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - HEADER);
    atomic_fetch_sub(&live, *p);
    free(p);
}

/* ---- The instance and what it answered before the restart -------------------------------------
 */

static struct fake_clock clk;
static txstats_t *t;
static char root[64], data[96], snap_bin[96], snap_json[96];

static const uint32_t q_ppb[] = {10000000u, 100000000u, 500000000u, 900000000u, 990000000u};
#define NQ (sizeof(q_ppb) / sizeof(q_ppb[0]))

struct bucket {
    txstats_amount_t lo, hi;
    uint64_t count;
};

struct answers {
    txstats_summary_t stats;
    txstats_amount_t q[NQ];
    txstats_list_info_t info;
    txstats_tx_t *list;
    struct bucket *buckets;
    size_t nbuckets;
};

static struct answers before, after;
static size_t window_bytes;  /* live before the restart */
static size_t recovery_peak; /* during txstats_open_dir of the fresh instance */
static bool recovered;

static txstats_t *new_instance(void)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = WINDOW_MS;
    cfg.shards = 2;
    cfg.max_retained = LISTABLE;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    cfg.alloc = count_alloc;
    cfg.free = count_free;
    txstats_t *x = NULL;
    assert_int_equal(txstats_create(&x, &cfg), TXSTATS_OK);
    return x;
}

static uint64_t splitmix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

struct filler {
    int part;
    size_t stored;
};

/* Batches alternate between 2 threads, so that both shards hold most milliseconds. */
static void *fill_main(void *arg)
{
    struct filler *f = arg;
    static txstats_tx_t tx[2][BATCH];
    for (long b = f->part; b < N / BATCH; b += 2) {
        for (long k = 0; k < BATCH; k++) {
            long i = b * BATCH + k;
            tx[f->part][k].amount =
                (txstats_amount_t)(1 + splitmix((uint64_t)i) % 10000000) * 10000;
            tx[f->part][k].timestamp_ms = T0 - (WINDOW_MS - 1) + (int64_t)i * WINDOW_MS / N;
        }
        size_t stored = 0;
        if (txstats_add_batch(t, tx[f->part], BATCH, NULL, &stored) != TXSTATS_OK)
            return NULL;
        f->stored += stored;
    }
    return NULL;
}

static int setup(void **state)
{
    strcpy(root, "/tmp/txstats-test-ckptmem-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(data, sizeof(data), "%s/data", root);
    snprintf(snap_bin, sizeof(snap_bin), "%s/snapshot.bin", root);
    snprintf(snap_json, sizeof(snap_json), "%s/snapshot.json", root);
    clk.now = T0;
    t = new_instance();
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.checkpoint_interval_ms = 0;
    if (txstats_open_dir(t, data, &d, NULL) != TXSTATS_OK)
        return -1;
    struct filler f[2] = {{0, 0}, {1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, fill_main, &f[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (f[0].stored + f[1].stored != N)
        return -1;
    return 0;
}

static void free_answers(struct answers *a)
{
    free(a->list);
    free(a->buckets);
    memset(a, 0, sizeof(*a));
}

static int teardown(void **state)
{
    txstats_destroy(t);
    free_answers(&before);
    free_answers(&after);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- The bounds ---------------------------------------------------------------------------------
 */

enum { OP_CHECKPOINT, OP_SAVE_BIN, OP_SAVE };

static void assert_extra_peak_bounded(int op)
{
    static const char *names[] = {"txstats_checkpoint", "txstats_save_bin", "txstats_save"};
    size_t base = atomic_load(&live);
    atomic_store(&peak, base);
    int rc = op == OP_CHECKPOINT ? txstats_checkpoint(t)
             : op == OP_SAVE_BIN ? txstats_save_bin(t, snap_bin)
                                 : txstats_save(t, snap_json);
    assert_int_equal(rc, TXSTATS_OK);
    size_t extra = atomic_load(&peak) - base;
    print_message("%s: window %.1f MiB, extra peak %.1f MiB (bound %.1f MiB)\n", names[op],
                  (double)base / MIB, (double)extra / MIB, (double)BOUND / MIB);
    if (extra > BOUND)
        fail_msg("%s needed %.1f MiB beyond the window of %.1f MiB: more than %.1f MiB", names[op],
                 (double)extra / MIB, (double)base / MIB, (double)BOUND / MIB);
}

static void test_checkpoint_peak(void **state)
{
    assert_extra_peak_bounded(OP_CHECKPOINT);
}

static void test_save_bin_peak(void **state)
{
    assert_extra_peak_bounded(OP_SAVE_BIN);
}

static void test_save_peak(void **state)
{
    assert_extra_peak_bounded(OP_SAVE);
}

/* ---- The restart --------------------------------------------------------------------------------
 */

static int cmp_tx(const void *a, const void *b)
{
    const txstats_tx_t *x = a, *y = b;
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms < y->timestamp_ms ? -1 : 1;
    return (x->amount > y->amount) - (x->amount < y->amount);
}

static void record(txstats_t *x, struct answers *a)
{
    assert_int_equal(txstats_stats(x, &a->stats), TXSTATS_OK);
    uint64_t count = 0;
    assert_int_equal(txstats_quantiles(x, q_ppb, NQ, a->q, &count), TXSTATS_OK);
    assert_int_equal(count, a->stats.count);
    /* The listing: oldest first; within a millisecond the order depends on the shards, so it is
     * compared as a set there. */
    a->list = calloc(LISTABLE + 1, sizeof(*a->list));
    assert_non_null(a->list);
    int rc = txstats_get_ex(x, a->list, LISTABLE + 1, &a->info);
    assert_int_equal(rc, TXSTATS_OK);
    qsort(a->list, (size_t)a->info.written, sizeof(*a->list), cmp_tx);
    /* Every bucket of the distribution, with its count. */
    txstats_dist_t *d = NULL;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_dist_collect(x, d), TXSTATS_OK);
    size_t cap = 1024;
    a->buckets = malloc(cap * sizeof(*a->buckets));
    assert_non_null(a->buckets);
    uint32_t cursor = 0;
    struct bucket b;
    while (txstats_dist_bucket_next(d, &cursor, &b.lo, &b.hi, &b.count)) {
        if (a->nbuckets == cap) {
            cap *= 2;
            a->buckets = realloc(a->buckets, cap * sizeof(*a->buckets));
            assert_non_null(a->buckets);
        }
        a->buckets[a->nbuckets++] = b;
    }
    txstats_dist_destroy(d);
}

/* Destroy the instance, then recover its directory with a fresh one. */
static void test_restart(void **state)
{
    record(t, &before);
    assert_int_equal(before.stats.count, N);
    assert_true(before.info.retained < before.info.in_window); /* most amounts not listable */
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    window_bytes = atomic_load(&live);
    txstats_destroy(t);
    t = NULL;
    assert_int_equal(atomic_load(&live), 0);
    t = new_instance();
    atomic_store(&peak, atomic_load(&live));
    txstats_recovery_t report;
    assert_int_equal(txstats_open_dir(t, data, NULL, &report), TXSTATS_OK);
    recovery_peak = atomic_load(&peak);
    recovered = true;
    print_message("recovery: window before %.1f MiB, peak %.1f MiB while recovering, %.1f MiB "
                  "after, %lld ms\n",
                  (double)window_bytes / MIB, (double)recovery_peak / MIB,
                  (double)atomic_load(&live) / MIB, (long long)report.duration_ms);
}

static void test_recovery_peak(void **state)
{
    assert_true(recovered);
    size_t limit = window_bytes + window_bytes * 15 / 100 + BOUND;
    if (recovery_peak > limit)
        fail_msg("recovering a window of %.1f MiB needed a peak of %.1f MiB (%.2fx): more than "
                 "1.15x + 8 MiB = %.1f MiB",
                 (double)window_bytes / MIB, (double)recovery_peak / MIB,
                 (double)recovery_peak / (double)window_bytes, (double)limit / MIB);
}

static void test_same_statistics(void **state)
{
    assert_true(recovered);
    record(t, &after);
    assert_int_equal(after.stats.count, before.stats.count);
    assert_int_equal(after.stats.min, before.stats.min);
    assert_int_equal(after.stats.max, before.stats.max);
    assert_int_equal(after.stats.sum_hi, before.stats.sum_hi);
    assert_int_equal(after.stats.sum_lo, before.stats.sum_lo);
}

static void test_same_quantiles(void **state)
{
    assert_true(recovered && after.list);
    int differ = 0;
    for (size_t i = 0; i < NQ; i++) {
        char b[32], a[32];
        txstats_amount_format(before.q[i], b, sizeof(b));
        txstats_amount_format(after.q[i], a, sizeof(a));
        print_message("q = %.2f: before %s, after %s\n", q_ppb[i] / 1e9, b, a);
        differ += before.q[i] != after.q[i];
    }
    if (differ)
        fail_msg("%d of %zu quantiles moved with the restart", differ, NQ);
}

static void test_same_buckets(void **state)
{
    assert_true(recovered && after.list);
    size_t i = 0;
    for (; i < before.nbuckets && i < after.nbuckets; i++)
        if (before.buckets[i].lo != after.buckets[i].lo ||
            before.buckets[i].count != after.buckets[i].count)
            break;
    if (i < before.nbuckets || i < after.nbuckets)
        fail_msg("the distribution differs after the restart from bucket %zu on (%zu buckets "
                 "before, %zu after)",
                 i, before.nbuckets, after.nbuckets);
}

static void test_same_listing(void **state)
{
    assert_true(recovered && after.list);
    if (after.info.in_window != before.info.in_window ||
        after.info.retained != before.info.retained || after.info.written != before.info.written)
        fail_msg("listing: %llu in the window, %llu retained before the restart; %llu and %llu "
                 "after",
                 (unsigned long long)before.info.in_window,
                 (unsigned long long)before.info.retained, (unsigned long long)after.info.in_window,
                 (unsigned long long)after.info.retained);
    for (uint64_t i = 0; i < before.info.written; i++)
        if (cmp_tx(&before.list[i], &after.list[i]) != 0)
            fail_msg("listing entry %llu differs after the restart", (unsigned long long)i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_peak), cmocka_unit_test(test_save_bin_peak),
        cmocka_unit_test(test_save_peak),       cmocka_unit_test(test_restart),
        cmocka_unit_test(test_recovery_peak),   cmocka_unit_test(test_same_statistics),
        cmocka_unit_test(test_same_quantiles),  cmocka_unit_test(test_same_buckets),
        cmocka_unit_test(test_same_listing),
    };
    return cmocka_run_group_tests_name("checkpoint_memory", tests, setup, teardown);
}
