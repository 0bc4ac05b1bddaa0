/* SPDX-License-Identifier: MIT */
/* Allocation failures: ENOMEM, nothing half-done, the instance still usable. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

struct budget {
    long left; /* allocations that still succeed; < 0: unlimited */
    long live;
};

static void *budget_alloc(size_t size, void *ud)
{
    struct budget *b = ud;
    if (b->left == 0)
        return NULL;
    if (b->left > 0)
        b->left--;
    b->live++;
    return malloc(size);
}

static void budget_free(void *p, void *ud)
{
    ((struct budget *)ud)->live--;
    free(p);
}

static txstats_config_t budget_config(struct budget *b, struct fake_clock *clk)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.alloc = budget_alloc;
    cfg.free = budget_free;
    cfg.alloc_ud = b;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    cfg.shards = 3;
    clk->now = T0;
    return cfg;
}

static void test_create(void **state)
{
    struct fake_clock clk;
    struct budget b = {0, 0};
    txstats_config_t cfg = budget_config(&b, &clk);
    txstats_t *t = (txstats_t *)&b;
    int ok_at = -1;
    for (long n = 0; n < 64 && ok_at < 0; n++) {
        b.left = n;
        int rc = txstats_create(&t, &cfg);
        if (rc == TXSTATS_OK) {
            ok_at = (int)n;
            txstats_destroy(t);
        } else {
            assert_int_equal(rc, TXSTATS_ENOMEM);
            assert_null(t);
        }
        assert_int_equal(b.live, 0); /* nothing leaked on any failure path */
    }
    assert_true(ok_at > 0);
    cfg.free = NULL; /* alloc without free */
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_EINVAL);
}

static void test_add(void **state)
{
    struct fake_clock clk;
    struct budget b = {-1, 0};
    txstats_config_t cfg = budget_config(&b, &clk);
    txstats_t *t;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("1"), T0), TXSTATS_OK);
    b.left = 0; /* no more memory: an add that needs a new chunk fails cleanly */
    int oks = 0, fails = 0;
    for (int i = 0; i < 200; i++) {
        int rc = txstats_add(t, amt("2"), T0 - 1 - i);
        if (rc == TXSTATS_OK)
            oks++;
        else {
            assert_int_equal(rc, TXSTATS_ENOMEM);
            fails++;
        }
    }
    assert_true(fails > 0);
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 1 + oks); /* failed adds left no trace */
    size_t n;
    assert_int_equal(txstats_get(t, NULL, 0, &n), oks + 1 > 0 ? TXSTATS_ENOBUFS : TXSTATS_OK);
    assert_int_equal(n, 1 + oks);
    b.left = -1; /* memory is back */
    assert_int_equal(txstats_add(t, amt("2"), T0 - 500), TXSTATS_OK);
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 2 + oks);
    txstats_destroy(t);
    assert_int_equal(b.live, 0);
}

static void test_save_load(void **state)
{
    struct fake_clock clk;
    struct budget b = {-1, 0};
    txstats_config_t cfg = budget_config(&b, &clk);
    txstats_t *t;
    char path[] = "/tmp/txstats-test-oom-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    for (int i = 0; i < 300; i++)
        assert_int_equal(txstats_add(t, i, T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_save(t, path), TXSTATS_OK);
    txstats_clear(t);
    assert_int_equal(txstats_add(t, 7, T0), TXSTATS_OK);
    int loaded_at = -1;
    for (long n = 0; n < 400 && loaded_at < 0; n++) {
        b.left = n;
        int rc = txstats_load(t, path);
        b.left = -1;
        if (rc == TXSTATS_OK) {
            loaded_at = (int)n;
            break;
        }
        assert_int_equal(rc, TXSTATS_ENOMEM);
        assert_stats(t, "0.00", "0.00", "0.00", "0.00", 1); /* unchanged: the single 7 micros */
    }
    assert_true(loaded_at >= 0);
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 300);
    b.left = 0;
    assert_int_equal(txstats_save(t, path), TXSTATS_ENOMEM);
    b.left = -1;
    txstats_destroy(t);
    assert_int_equal(b.live, 0);
    unlink(path);
}

/* Recovery allocates through the instance's allocator too: every failure point refuses cleanly
 * (ENOMEM, nothing leaked, the directory lock released), and the first success has it all. */
static void test_open_dir(void **state)
{
    struct fake_clock clk;
    struct budget b = {-1, 0};
    txstats_config_t cfg = budget_config(&b, &clk);
    char dir[] = "/tmp/txstats-test-oom-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    txstats_t *t;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
    for (int i = 0; i < 300; i++)
        assert_int_equal(txstats_add(t, i, T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    for (int i = 0; i < 200; i++) /* some in the checkpoint, some only in the journal */
        assert_int_equal(txstats_add(t, 1000 + i, T0 - i), TXSTATS_OK);
    txstats_destroy(t);
    int opened_at = -1;
    for (long n = 0; n < 2000 && opened_at < 0; n++) {
        assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
        b.left = n;
        txstats_recovery_t rep;
        int rc = txstats_open_dir(t, dir, NULL, &rep);
        b.left = -1;
        if (rc == TXSTATS_OK) {
            opened_at = (int)n;
            txstats_summary_t s;
            assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
            assert_int_equal(s.count, 500);
        } else {
            assert_int_equal(rc, TXSTATS_ENOMEM);
            assert_int_equal(txstats_add(t, 5, T0), TXSTATS_OK); /* usable, in memory */
        }
        txstats_destroy(t);
        assert_int_equal(b.live, 0);
    }
    print_message("open_dir succeeded after %d allocations refused\n", opened_at);
    assert_true(opened_at > 0);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Keyed adds under allocation failures: ENOMEM, nothing counted, the key not remembered (the
 * retry is judged afresh and then counted once). */
static void test_keyed(void **state)
{
    struct fake_clock clk;
    struct budget b = {-1, 0};
    txstats_config_t cfg = budget_config(&b, &clk);
    txstats_t *t;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    int refused = 0;
    char key[32];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "oom-%d", i);
        b.left = i % 3; /* a few allocations, then none */
        int rc = txstats_add_keyed(t, i + 1, T0 - i, key, strlen(key), NULL);
        b.left = -1;
        assert_true(rc == TXSTATS_OK || rc == TXSTATS_ENOMEM);
        if (rc == TXSTATS_ENOMEM) {
            refused++;
            assert_int_equal(txstats_add_keyed(t, i + 1, T0 - i, key, strlen(key), NULL),
                             TXSTATS_OK);
        }
        assert_int_equal(txstats_add_keyed(t, i + 1, T0 - i, key, strlen(key), NULL),
                         TXSTATS_DUPLICATE);
    }
    assert_true(refused > 0);
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 400);
    txstats_destroy(t);
    assert_int_equal(b.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),    cmocka_unit_test(test_add),
        cmocka_unit_test(test_save_load), cmocka_unit_test(test_open_dir),
        cmocka_unit_test(test_keyed),
    };
    return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
