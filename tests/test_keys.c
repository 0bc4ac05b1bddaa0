/* SPDX-License-Identifier: MIT */
/* Idempotency keys: retry, conflict, remembered refusals, expiry at the exact millisecond, clear,
 * snapshots, checkpoints and journal replay, the cap, allocation failures, concurrent retries. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

static int add_k(txstats_t *t, txstats_amount_t a, int64_t ts, const char *key, int *first)
{
    return txstats_add_keyed(t, a, ts, key, strlen(key), first);
}

static uint64_t count_of(txstats_t *t)
{
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    return s.count;
}

static void test_retry_and_conflict(void **state)
{
    (void)state;
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    int first = 99;
    assert_int_equal(add_k(t, 500, T0, "abc", &first), TXSTATS_OK);
    assert_int_equal(first, 99); /* untouched on a first call */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(add_k(t, 500, T0, "abc", &first), TXSTATS_DUPLICATE);
        assert_int_equal(first, TXSTATS_OK);
    }
    assert_int_equal(add_k(t, 501, T0, "abc", &first), TXSTATS_ECONFLICT);
    assert_int_equal(add_k(t, 500, T0 - 1, "abc", &first), TXSTATS_ECONFLICT);
    assert_int_equal(first, TXSTATS_OK);
    assert_int_equal(add_k(t, 500, T0, "abd", NULL), TXSTATS_OK); /* another key */
    assert_int_equal(add_k(t, 500, T0, "ABC", NULL), TXSTATS_OK); /* keys are exact */
    assert_int_equal(count_of(t), 3);
    /* Refusals are remembered too: the retry gets the same answer, even once it would pass. */
    assert_int_equal(add_k(t, 7, T0 + 10, "future", NULL), TXSTATS_EFUTURE);
    clk.now = T0 + 20;
    assert_int_equal(add_k(t, 7, T0 + 10, "future", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_EFUTURE);
    assert_int_equal(add_k(t, 7, T0 - 60000, "old", NULL), TXSTATS_EXPIRED);
    assert_int_equal(add_k(t, 7, T0 - 60000, "old", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_EXPIRED);
    assert_int_equal(add_k(t, TXSTATS_AMOUNT_LIMIT, T0, "big", NULL), TXSTATS_ERANGE);
    assert_int_equal(add_k(t, TXSTATS_AMOUNT_LIMIT, T0, "big", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_ERANGE);
    assert_int_equal(count_of(t), 3);
    char long_key[TXSTATS_MAX_KEY_BYTES + 2];
    memset(long_key, 'k', sizeof(long_key));
    assert_int_equal(txstats_add_keyed(t, 1, T0, long_key, TXSTATS_MAX_KEY_BYTES, NULL),
                     TXSTATS_OK);
    assert_int_equal(txstats_add_keyed(t, 1, T0, long_key, TXSTATS_MAX_KEY_BYTES + 1, NULL),
                     TXSTATS_EINVAL);
    assert_int_equal(txstats_add_keyed(t, 1, T0, long_key, 0, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_keyed(t, 1, T0, NULL, 3, NULL), TXSTATS_EINVAL);
    uint64_t held = 0;
    assert_int_equal(txstats_key_count(t, &held), TXSTATS_OK);
    assert_int_equal(held, 7);
    txstats_destroy(t);
}

/* The key lives exactly as long as its transaction counts (window, no skew, default ttl): at
 * every millisecond of it a retry is a duplicate; the first millisecond after, the transaction
 * has left the window and the retry is simply expired. */
static void test_expiry_at_the_millisecond(void **state)
{
    (void)state;
    const int64_t W = 1000;
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, W, 0, 1);
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_OK);
    for (int64_t now = T0; now < T0 + W; now += 37) {
        clk.now = now;
        assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_DUPLICATE);
        assert_int_equal(count_of(t), 1);
    }
    clk.now = T0 + W - 1;
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_DUPLICATE);
    assert_int_equal(count_of(t), 1);
    clk.now = T0 + W;
    assert_int_equal(count_of(t), 0);
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_EXPIRED); /* a new judgement */
    assert_int_equal(count_of(t), 0);
    txstats_destroy(t);
    /* A longer ttl keeps keys past the window. */
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = W;
    cfg.key_ttl_ms = 5 * W;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    clk.now = T0;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_OK);
    clk.now = T0 + 5 * W - 1;
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_DUPLICATE);
    clk.now = T0 + 5 * W;
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_EXPIRED);
    txstats_destroy(t);
}

static void test_clear_forgets_keys(void **state)
{
    (void)state;
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_OK);
    txstats_clear(t);
    uint64_t held = 1;
    assert_int_equal(txstats_key_count(t, &held), TXSTATS_OK);
    assert_int_equal(held, 0);
    assert_int_equal(add_k(t, 5, T0, "k", NULL), TXSTATS_OK);
    assert_int_equal(count_of(t), 1);
    txstats_destroy(t);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct fake_clock clk;
    char path[] = "/tmp/txstats-test-keys-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(add_k(t, i, T0 - i, key, NULL), TXSTATS_OK);
    }
    assert_int_equal(add_k(t, 1, T0 + 50, "refused", NULL), TXSTATS_EFUTURE);
    assert_int_equal(txstats_save(t, path), TXSTATS_OK);
    txstats_destroy(t);
    t = make_instance(&clk, T0, 60000, 0, 3);
    assert_int_equal(txstats_load(t, path), TXSTATS_OK);
    int first;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(add_k(t, i, T0 - i, key, &first), TXSTATS_DUPLICATE);
        assert_int_equal(first, TXSTATS_OK);
    }
    assert_int_equal(add_k(t, 1, T0 + 50, "refused", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_EFUTURE);
    assert_int_equal(count_of(t), 500);
    txstats_destroy(t);
    unlink(path);
}

/* Keys survive a crash: journaled with their transaction (no checkpoint since), and through a
 * checkpoint. */
static void test_journal_and_checkpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/txstats-test-keys-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fake_clock clk;
    for (int round = 0; round < 2; round++) {
        txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
        assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
        char key[32];
        for (int i = 0; i < 300; i++) {
            snprintf(key, sizeof(key), "r%d-%d", round, i);
            assert_int_equal(add_k(t, i, T0 - i, key, NULL), TXSTATS_OK);
        }
        if (round == 1)
            assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
        txstats_destroy(t); /* as after kill -9: no final checkpoint */
        t = make_instance(&clk, T0, 60000, 0, 2);
        assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
        int first;
        for (int r = 0; r <= round; r++)
            for (int i = 0; i < 300; i++) {
                snprintf(key, sizeof(key), "r%d-%d", r, i);
                assert_int_equal(add_k(t, i, T0 - i, key, &first), TXSTATS_DUPLICATE);
                assert_int_equal(first, TXSTATS_OK);
            }
        assert_int_equal(count_of(t), 300 * (uint64_t)(round + 1));
        txstats_destroy(t);
    }
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* At max_keys live keys a new key is refused (nothing counted); known keys still answer; once
 * keys expire there is room again. */
/* The cap holds over the whole table, whatever the sub-table each key lands in: the first
 * `cap` keys are taken, every later one is EFULL, and expiry makes room again. */
static void check_cap(uint64_t cap)
{
    struct fake_clock clk = {T0};
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = 1000;
    cfg.max_keys = cap;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    txstats_t *t;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    char key[32];
    for (uint64_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "cap-%llu", (unsigned long long)i);
        assert_int_equal(add_k(t, 1, T0, key, NULL), i < cap ? TXSTATS_OK : TXSTATS_EFULL);
    }
    assert_int_equal(count_of(t), cap);
    if (cap > 0)
        assert_int_equal(add_k(t, 1, T0, "cap-0", NULL), TXSTATS_DUPLICATE);
    clk.now = T0 + 1000; /* everything expired: room again */
    for (uint64_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "later-%llu", (unsigned long long)i);
        assert_int_equal(add_k(t, 1, clk.now, key, NULL), i < cap ? TXSTATS_OK : TXSTATS_EFULL);
    }
    assert_int_equal(count_of(t), cap);
    txstats_destroy(t);
}

static void test_cap(void **state)
{
    (void)state;
    static const uint64_t caps[] = {0, 1, 2, 15, 16, 17, 64, 256, 999};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        check_cap(caps[i]);
}

struct race {
    txstats_t *t;
    int stored;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "race-%d", i);
        int rc = add_k(r->t, i, T0 - i % 1000, key, NULL);
        assert_true(rc == TXSTATS_OK || rc == TXSTATS_DUPLICATE);
        r->stored += rc == TXSTATS_OK;
    }
    return NULL;
}

/* Four threads send the same 2,000 keys at once: each counted exactly once. */
static void test_concurrent_retries(void **state)
{
    (void)state;
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 4);
    pthread_t th[4];
    struct race r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){t, 0};
        pthread_create(&th[i], NULL, racer, &r[i]);
    }
    int stored = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        stored += r[i].stored;
    }
    assert_int_equal(stored, 2000);
    assert_int_equal(count_of(t), 2000);
    txstats_destroy(t);
}

/* Batches: a key repeated within the batch, keys known from before, a bad key, no key. */
static void test_batch_keys(void **state)
{
    (void)state;
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(add_k(t, 1, T0, "before", NULL), TXSTATS_OK);
    txstats_tx_t tx[6] = {{1, T0}, {2, T0}, {2, T0}, {3, T0}, {4, T0}, {5, T0}};
    txstats_key_t keys[6] = {{"before", 6}, {"b", 1}, {"b", 1}, {"b", 1}, {NULL, 0}, {"", 0}};
    int res[6], firsts[6];
    size_t stored;
    assert_int_equal(txstats_add_batch_keyed(t, tx, keys, 6, res, firsts, &stored), TXSTATS_OK);
    const int want[6] = {TXSTATS_DUPLICATE, TXSTATS_OK, TXSTATS_DUPLICATE,
                         TXSTATS_ECONFLICT, TXSTATS_OK, TXSTATS_OK};
    for (int i = 0; i < 6; i++)
        assert_int_equal(res[i], want[i]);
    assert_int_equal(firsts[0], TXSTATS_OK);
    assert_int_equal(stored, 3);
    assert_int_equal(count_of(t), 4);
    txstats_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_and_conflict),
        cmocka_unit_test(test_expiry_at_the_millisecond),
        cmocka_unit_test(test_clear_forgets_keys),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_journal_and_checkpoint),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_concurrent_retries),
        cmocka_unit_test(test_batch_keys),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
