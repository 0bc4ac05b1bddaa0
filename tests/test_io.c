/* SPDX-License-Identifier: MIT */
/*
 * Failing disks through the file layer (txstats_io_t), no mount needed: every kind of write
 * failure (ENOSPC, EIO, a short write then ENOSPC, EDQUOT) and a failing fdatasync, against every
 * operation that writes (add, clear, checkpoint, save). Each must refuse with TXSTATS_EIO and the
 * failure's errno, leave the window as it was, and succeed once the disk is back; a reopen then
 * finds exactly what was acknowledged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

enum fault { WRITE_ENOSPC, WRITE_EIO, WRITE_SHORT, WRITE_EDQUOT, SYNC_EIO, FAULTS };
static const char *const fault_names[FAULTS] = {"write ENOSPC", "write EIO", "short write",
                                                "write EDQUOT", "fdatasync EIO"};

struct disk {
    bool failing;
    enum fault fault;
    long writes, syncs; /* calls seen */
};

static ssize_t disk_write(int fd, const void *buf, size_t len, void *ctx)
{
    struct disk *d = ctx;
    d->writes++;
    if (!d->failing || d->fault == SYNC_EIO)
        return write(fd, buf, len);
    if (d->fault == WRITE_SHORT && len > 1) {
        d->fault = WRITE_ENOSPC; /* half goes through, then the disk is full */
        return write(fd, buf, len / 2);
    }
    errno = d->fault == WRITE_EIO ? EIO : d->fault == WRITE_EDQUOT ? EDQUOT : ENOSPC;
    return -1;
}

static int disk_sync(int fd, void *ctx)
{
    struct disk *d = ctx;
    d->syncs++;
    if (d->failing && d->fault == SYNC_EIO) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int expected_errno(enum fault f)
{
    return f == WRITE_EIO || f == SYNC_EIO ? EIO : f == WRITE_EDQUOT ? EDQUOT : ENOSPC;
}

struct rig {
    char dir[64];
    struct fake_clock clk;
    struct disk disk;
    txstats_io_t io;
    txstats_t *t;
};

static void rig_open(struct rig *r, txstats_fsync_t mode)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &r->clk;
    cfg.shards = 2;
    cfg.io = &r->io;
    assert_int_equal(txstats_create(&r->t, &cfg), TXSTATS_OK);
    txstats_durability_t dur;
    txstats_durability_init(&dur);
    dur.fsync = mode;
    assert_int_equal(txstats_open_dir(r->t, r->dir, &dur, NULL), TXSTATS_OK);
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    strcpy(r->dir, "/tmp/txstats-test-io-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->clk.now = T0;
    r->io = (txstats_io_t){disk_write, disk_sync, &r->disk};
}

static void rig_remove(struct rig *r)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

static void assert_same(txstats_summary_text_t a, txstats_summary_text_t b)
{
    assert_string_equal(a.sum, b.sum);
    assert_string_equal(a.min, b.min);
    assert_string_equal(a.max, b.max);
    assert_int_equal(a.count, b.count);
}

/* The operations that write, each returning a status. */
enum op { OP_ADD, OP_CLEAR, OP_CHECKPOINT, OP_SAVE, OPS };
static const char *const op_names[OPS] = {"add", "clear", "checkpoint", "save"};

static int run_op(struct rig *r, enum op op)
{
    char path[128];
    switch (op) {
    case OP_ADD:
        return txstats_add(r->t, 4250000, T0 - 10);
    case OP_CLEAR:
        return txstats_clear_ex(r->t);
    case OP_CHECKPOINT:
        return txstats_checkpoint(r->t);
    default:
        snprintf(path, sizeof(path), "%s/saved.json", r->dir);
        return txstats_save(r->t, path);
    }
}

/* Does `fault` reach `op` in `mode`? An add or clear in interval mode syncs later, not inline. */
static bool reaches(enum op op, enum fault f, txstats_fsync_t mode)
{
    return !(f == SYNC_EIO && (op == OP_ADD || op == OP_CLEAR) && mode != TXSTATS_FSYNC_ALWAYS);
}

static void one_case(enum op op, enum fault f, txstats_fsync_t mode)
{
    struct rig r;
    rig_init(&r);
    rig_open(&r, mode);
    for (int i = 0; i < 20; i++)
        assert_int_equal(txstats_add(r.t, 1000000 + i, T0 - i), TXSTATS_OK);
    txstats_summary_text_t before = stats_text(r.t);
    r.disk.failing = true;
    r.disk.fault = f;
    int rc = run_op(&r, op);
    int err = errno;
    r.disk.failing = false;
    if (!reaches(op, f, mode)) {
        assert_int_equal(rc, TXSTATS_OK);
    } else {
        if (rc != TXSTATS_EIO || err != expected_errno(f))
            fail_msg("%s with %s: rc %d errno %d", op_names[op], fault_names[f], rc, err);
        bool synced_add = f == SYNC_EIO && (op == OP_ADD || op == OP_CLEAR);
        if (!synced_add) /* written but not confirmed durable: documented as counted */
            assert_same(before, stats_text(r.t));
        assert_int_equal(run_op(&r, op), TXSTATS_OK); /* the disk is back */
    }
    txstats_summary_text_t acknowledged = stats_text(r.t);
    txstats_destroy(r.t);
    rig_open(&r, mode); /* what was acknowledged, exactly */
    assert_same(acknowledged, stats_text(r.t));
    txstats_destroy(r.t);
    rig_remove(&r);
}

static void test_every_fault_every_write(void **state)
{
    (void)state;
    const txstats_fsync_t modes[] = {TXSTATS_FSYNC_NEVER, TXSTATS_FSYNC_ALWAYS};
    int cases = 0;
    for (size_t m = 0; m < 2; m++)
        for (int op = 0; op < OPS; op++)
            for (int f = 0; f < FAULTS; f++, cases++)
                one_case((enum op)op, (enum fault)f, modes[m]);
    print_message("%d fault cases\n", cases);
}

/* A failing open: the checkpoint written at open cannot be written; nothing is left locked. */
static void test_open_fails_cleanly(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r);
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &r.clk;
    cfg.io = &r.io;
    assert_int_equal(txstats_create(&r.t, &cfg), TXSTATS_OK);
    r.disk.failing = true;
    r.disk.fault = WRITE_ENOSPC;
    assert_int_equal(txstats_open_dir(r.t, r.dir, NULL, NULL), TXSTATS_EIO);
    assert_int_equal(errno, ENOSPC);
    r.disk.failing = false;
    assert_int_equal(txstats_add(r.t, 1, T0), TXSTATS_OK); /* still usable, in memory */
    assert_int_equal(txstats_open_dir(r.t, r.dir, NULL, NULL), TXSTATS_OK); /* lock released */
    txstats_destroy(r.t);
    rig_remove(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fault_every_write),
        cmocka_unit_test(test_open_fails_cleanly),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
