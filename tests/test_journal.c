/* SPDX-License-Identifier: MIT */
/* Write-ahead journal: recovery, torn tails, corruption, rotation, clears, group commit, ENOSPC. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[64];

static int setup(void **state)
{
    strcpy(dir, "/tmp/txstats-test-journal-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static txstats_t *open_at(struct fake_clock *clk, const char *d, txstats_fsync_t mode,
                          int skip_corrupt, int expect_rc, txstats_recovery_t *rep)
{
    txstats_t *t = make_instance(clk, T0, 60000, 0, 2);
    txstats_durability_t dur;
    txstats_durability_init(&dur);
    dur.fsync = mode;
    dur.skip_corrupt = skip_corrupt;
    txstats_recovery_t r;
    int rc = txstats_open_dir(t, d, &dur, rep ? rep : &r);
    if (rc != expect_rc)
        fail_msg("open_dir: %d (%s), want %d", rc, txstats_strerror(rc), expect_rc);
    if (rc != TXSTATS_OK) {
        txstats_destroy(t);
        return NULL;
    }
    return t;
}

static uint64_t count_of(txstats_t *t)
{
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    return s.count;
}

/* Journal segment files in dir, sorted; returns how many. */
static int segments(char names[][64], int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "journal-", 8) && n < max)
            snprintf(names[n++], 64, "%s", e->d_name);
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char tmp[64];
            memcpy(tmp, names[k], 64);
            memcpy(names[k], names[k - 1], 64);
            memcpy(names[k - 1], tmp, 64);
        }
    return n;
}

static off_t file_size(const char *name)
{
    char p[160];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* The one non-empty segment (everything written after the opening checkpoint). */
static const char *written_segment(char names[][64], int n)
{
    for (int i = 0; i < n; i++)
        if (file_size(names[i]) > 0)
            return names[i];
    return NULL;
}

static void test_survives_a_crash(void **state)
{
    struct fake_clock clk;
    txstats_recovery_t rep;
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    assert_int_equal(rep.replayed, 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(txstats_add(t, amt("1.5"), T0 - i * 7), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("1"), T0 - 60000), TXSTATS_EXPIRED); /* not journaled */
    txstats_journal_stats_t js;
    assert_int_equal(txstats_journal_stats(t, &js), TXSTATS_OK);
    assert_int_equal(js.records, 500);
    assert_int_equal(js.bytes, 500 * 32);
    txstats_destroy(t); /* like a crash: no checkpoint after the adds */
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    assert_int_equal(rep.replayed, 500);
    assert_int_equal(rep.torn_bytes, 0);
    assert_stats(t, "750.00", "1.50", "1.50", "1.50", 500);
    txstats_destroy(t);
    /* Reopened again: now from the snapshot the previous open wrote, nothing to replay. */
    /* 58 s later, with another shard count: what is now older than the window is gone. */
    t = make_instance(&clk, T0 + 58000, 60000, 0, 3);
    assert_int_equal(txstats_open_dir(t, dir, NULL, &rep), TXSTATS_OK);
    assert_int_equal(rep.replayed, 0);
    assert_int_equal(count_of(t), 286); /* T0 - 7i > T0 - 2000: i = 0..285 */
    assert_int_equal(rep.snapshot_transactions, 286);
    assert_int_equal(rep.expired, 500 - 286); /* checkpoint entries that expired are counted */
    txstats_destroy(t);
}

static void test_torn_tail_every_offset(void **state)
{
    struct fake_clock clk;
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, NULL);
    txstats_config_t one;
    (void)one;
    for (int i = 0; i < 10; i++)
        assert_int_equal(txstats_add(t, i + 1, T0 - i), TXSTATS_OK);
    txstats_destroy(t);
    char names[16][64];
    int n = segments(names, 16);
    /* 2 shards: the adds went to one or both; cut the last record of a non-empty one. */
    const char *seg = written_segment(names, n);
    assert_non_null(seg);
    char path[160], saved[160];
    snprintf(path, sizeof(path), "%s/%s", dir, seg);
    off_t full = file_size(seg);
    int total_records = 0;
    for (int i = 0; i < n; i++)
        total_records += (int)(file_size(names[i]) / 32);
    assert_int_equal(total_records, 10);
    char *orig = malloc((size_t)full);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, (size_t)full, f), (size_t)full);
    fclose(f);
    snprintf(saved, sizeof(saved), "%s.keep", dir);
    /* Keep a copy of the whole directory state to restore between cuts. */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", saved, dir, saved);
    assert_int_equal(system(cmd), 0);
    for (off_t cut = full - 32; cut <= full; cut++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", dir, saved, dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(truncate(path, cut), 0);
        txstats_recovery_t rep;
        t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
        uint64_t want = cut == full ? 10 : 9;
        if (count_of(t) != want)
            fail_msg("cut at %lld: %llu transactions, want %llu", (long long)cut,
                     (unsigned long long)count_of(t), (unsigned long long)want);
        assert_int_equal(rep.torn_bytes, (uint64_t)(cut == full ? 0 : cut - (full - 32)));
        txstats_destroy(t);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", saved);
    assert_int_equal(system(cmd), 0);
    free(orig);
}

static void flip_byte(const char *seg, off_t at)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, seg);
    int fd = open(path, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void test_corruption_in_the_middle(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1); /* one stream: easy to aim */
    assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(txstats_add(t, i + 1, T0 - i), TXSTATS_OK);
    txstats_destroy(t);
    char names[8][64];
    int n = segments(names, 8);
    const char *seg = written_segment(names, n);
    flip_byte(seg, 4 * 32 + 17); /* inside the amount of record 5 of 10 */
    char snap[160];
    snprintf(snap, sizeof(snap), "%s/checkpoint.bin", dir);
    struct stat before, after;
    assert_int_equal(stat(snap, &before), 0);
    /* Strict: refused, nothing changed on disk. */
    assert_null(open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_EFORMAT, NULL));
    assert_int_equal(stat(snap, &after), 0);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(file_size(seg), 320);
    /* The way out: skip the damaged record, count it. */
    txstats_recovery_t rep;
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 1, TXSTATS_OK, &rep);
    assert_int_equal(rep.corrupt_records, 1);
    assert_int_equal(rep.replayed, 9);
    assert_int_equal(count_of(t), 9);
    txstats_destroy(t);
}

static void test_rotation_and_deletion(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    txstats_durability_t dur;
    txstats_durability_init(&dur);
    dur.segment_bytes = 32 * 10; /* rotate every 10 records */
    dur.fsync = TXSTATS_FSYNC_NEVER;
    assert_int_equal(txstats_open_dir(t, dir, &dur, NULL), TXSTATS_OK);
    for (int i = 0; i < 95; i++)
        assert_int_equal(txstats_add(t, 1, T0 - i), TXSTATS_OK);
    char names[64][64];
    int n = segments(names, 64);
    assert_true(n >= 10); /* 95 records, 10 per segment, plus the open segments */
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    n = segments(names, 64);
    assert_int_equal(n, 2); /* one fresh segment per shard, the rest deleted */
    txstats_journal_stats_t js;
    txstats_journal_stats(t, &js);
    assert_int_equal(js.segments, 2);
    assert_true(js.checkpoints >= 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(txstats_add(t, 1, T0 - i), TXSTATS_OK);
    txstats_destroy(t);
    txstats_recovery_t rep;
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    assert_int_equal(rep.snapshot_transactions, 95);
    assert_int_equal(rep.replayed, 5);
    assert_int_equal(count_of(t), 100);
    txstats_destroy(t);
}

static void test_replay_after_clear(void **state)
{
    struct fake_clock clk;
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_ALWAYS, 0, TXSTATS_OK, NULL);
    for (int i = 0; i < 50; i++)
        assert_int_equal(txstats_add(t, amt("3"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK); /* some in the snapshot */
    for (int i = 0; i < 50; i++)
        assert_int_equal(txstats_add(t, amt("3"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_clear_ex(t), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("7"), T0), TXSTATS_OK);
    txstats_destroy(t); /* crash */
    txstats_recovery_t rep;
    t = open_at(&clk, dir, TXSTATS_FSYNC_ALWAYS, 0, TXSTATS_OK, &rep);
    assert_true(rep.cleared);
    assert_stats(t, "7.00", "7.00", "7.00", "7.00", 1); /* nothing cleared came back */
    txstats_destroy(t);
}

static void test_interrupted_clear_is_ignored(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(txstats_add(t, 1, T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_clear_ex(t), TXSTATS_OK);
    txstats_destroy(t);
    /* Remove the clear record from one stream: as if the crash came between the two writes. */
    char names[8][64];
    int n = segments(names, 8);
    int cut = 0;
    for (int i = 0; i < n && !cut; i++) {
        off_t sz = file_size(names[i]);
        if (sz >= 32) {
            char p[160];
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            assert_int_equal(truncate(p, sz - 32), 0);
            cut = 1;
        }
    }
    assert_true(cut);
    txstats_recovery_t rep;
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    assert_false(rep.cleared);
    assert_int_equal(count_of(t), 20); /* the unacknowledged clear did not happen */
    txstats_destroy(t);
}

struct adder {
    txstats_t *t;
    int n, failures;
};

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < a->n; i++)
        if (txstats_add(a->t, 1000000, T0 - i % 1000) != TXSTATS_OK)
            a->failures++;
    return NULL;
}

static void test_group_commit(void **state)
{
    struct fake_clock clk;
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_ALWAYS, 0, TXSTATS_OK, NULL);
    enum { THREADS = 8, EACH = 300 };
    pthread_t th[THREADS];
    struct adder a[THREADS];
    txstats_journal_stats_t before, after;
    txstats_journal_stats(t, &before);
    for (int i = 0; i < THREADS; i++) {
        a[i] = (struct adder){t, EACH, 0};
        pthread_create(&th[i], NULL, adder_main, &a[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
    txstats_journal_stats(t, &after);
    uint64_t syncs = after.syncs - before.syncs;
    assert_int_equal(after.records, THREADS * EACH);
    assert_true(syncs > 0);
    /* Every add waited for stable storage, yet they shared fdatasync calls. */
    assert_true(syncs < THREADS * EACH);
    print_message("group commit: %d adds, %llu fdatasync\n", THREADS * EACH,
                  (unsigned long long)syncs);
    txstats_destroy(t);
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, NULL);
    assert_int_equal(count_of(t), THREADS * EACH);
    txstats_destroy(t);
}

static void test_directory_lock(void **state)
{
    struct fake_clock clk;
    txstats_t *a = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, NULL);
    assert_null(open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_EBUSY, NULL));
    assert_int_equal(txstats_open_dir(a, dir, NULL, NULL), TXSTATS_EINVAL); /* already open */
    txstats_destroy(a);
    a = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, NULL); /* released */
    txstats_destroy(a);
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    txstats_durability_t bad;
    txstats_durability_init(&bad);
    bad.fsync = (txstats_fsync_t)7;
    assert_int_equal(txstats_open_dir(t, dir, &bad, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_EINVAL); /* no directory */
    txstats_destroy(t);
}

static void test_disk_full(void **state)
{
    char mnt[128];
    snprintf(mnt, sizeof(mnt), "%s/small", dir);
    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0) {
        print_message("SKIP test_disk_full: cannot mount a small tmpfs (%s)\n", strerror(errno));
        skip();
    }
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    txstats_durability_t dur;
    txstats_durability_init(&dur);
    assert_int_equal(txstats_open_dir(t, mnt, &dur, NULL), TXSTATS_OK);
    /* Fill the disk, then add until the journal refuses. */
    char filler[160];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fill_disk(filler);
    int ok = 0, refused = 0;
    for (int i = 0; i < 2000; i++) {
        int rc = txstats_add(t, 1000000, T0 - i % 1000);
        if (rc == TXSTATS_OK)
            ok++;
        else {
            assert_int_equal(rc, TXSTATS_EIO);
            assert_int_equal(errno, ENOSPC);
            refused++;
        }
    }
    assert_true(refused > 0);
    assert_int_equal(count_of(t), (uint64_t)ok); /* refused adds were not counted */
    assert_int_equal(txstats_checkpoint(t), TXSTATS_EIO);
    assert_int_equal(unlink(filler), 0); /* space is back */
    assert_int_equal(txstats_add(t, 1000000, T0), TXSTATS_OK);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    txstats_destroy(t);
    t = open_at(&clk, mnt, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, NULL);
    assert_int_equal(count_of(t), (uint64_t)ok + 1); /* nothing corrupt, nothing lost */
    txstats_destroy(t);
    umount(mnt);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* A checkpoint removed while the journal holds records after it: recovery refuses (EFORMAT,
 * errno ENOENT) and changes nothing, unless skip_corrupt, which rebuilds from the journal alone
 * and says so. Found by a user who followed "move a damaged checkpoint away". */
static void test_missing_checkpoint(void **state)
{
    struct fake_clock clk;
    txstats_recovery_t rep;
    char ck[128];
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    for (int i = 0; i < 100; i++)
        assert_int_equal(txstats_add(t, amt("1"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    for (int i = 0; i < 30; i++)
        assert_int_equal(txstats_add(t, amt("2"), T0 - i), TXSTATS_OK);
    txstats_destroy(t);
    snprintf(ck, sizeof(ck), "%s/checkpoint.bin", dir);
    assert_int_equal(unlink(ck), 0);
    char names[16][64];
    int n = segments(names, 16);
    errno = 0;
    assert_null(open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_EFORMAT, NULL));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(segments(names, 16), n); /* nothing changed */
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 1, TXSTATS_OK, &rep);
    assert_int_equal(rep.missing_checkpoint, 1);
    assert_int_equal(count_of(t), 30); /* the journal alone */
    txstats_destroy(t);
}

/* An older checkpoint put back (a backup): the newer runs' segments are all replayed, never
 * taken as covered by the older checkpoint's cuts (sequence and segment numbers grow across
 * runs). */
static txstats_t *open_one_shard(struct fake_clock *clk, txstats_recovery_t *rep)
{
    txstats_t *t = make_instance(clk, T0, 60000, 0, 1); /* one stream: every cut applies */
    assert_int_equal(txstats_open_dir(t, dir, NULL, rep), TXSTATS_OK);
    return t;
}

static void test_older_checkpoint_put_back(void **state)
{
    struct fake_clock clk;
    txstats_recovery_t rep;
    char ck[128], saved[128];
    snprintf(ck, sizeof(ck), "%s/checkpoint.bin", dir);
    snprintf(saved, sizeof(saved), "%s.old", dir);
    txstats_t *t = open_one_shard(&clk, &rep);
    for (int i = 0; i < 100; i++)
        assert_int_equal(txstats_add(t, amt("1"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    txstats_destroy(t);
    copy_file(ck, saved);           /* covers the 100 */
    t = open_one_shard(&clk, &rep); /* a new run */
    for (int i = 0; i < 200; i++)
        assert_int_equal(txstats_add(t, amt("3"), T0 - i), TXSTATS_OK);
    txstats_destroy(t); /* the 200 only in the journal, after this run's own checkpoint */
    copy_file(saved, ck);
    unlink(saved);
    t = open_one_shard(&clk, &rep);
    assert_int_equal(rep.replayed, 200);
    assert_int_equal(count_of(t), 300);
    txstats_destroy(t);
}

/* txstats_load on a journaled instance is durable: a crash after it comes back with what was
 * loaded and the adds after it, not with the journal's older records added. */
static void test_load_is_durable(void **state)
{
    struct fake_clock clk;
    txstats_recovery_t rep;
    char snap[128];
    snprintf(snap, sizeof(snap), "%s.snap", dir);
    txstats_t *other = make_instance(&clk, T0, 60000, 0, 2);
    for (int i = 0; i < 7; i++)
        assert_int_equal(txstats_add(other, amt("5"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_save_bin(other, snap), TXSTATS_OK);
    txstats_destroy(other);
    txstats_t *t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    for (int i = 0; i < 100; i++)
        assert_int_equal(txstats_add(t, amt("1"), T0 - i), TXSTATS_OK);
    assert_int_equal(txstats_load(t, snap), TXSTATS_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(txstats_add(t, amt("2"), T0 - i), TXSTATS_OK);
    assert_int_equal(count_of(t), 10);
    txstats_destroy(t); /* no checkpoint after the last adds: a crash */
    unlink(snap);
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_OK, &rep);
    assert_stats(t, "41.00", "4.10", "5.00", "2.00", 10);
    txstats_destroy(t);
}

/* A record appended again (a copy of a segment's first record at its end): out of its stream's
 * order, refused; with skip_corrupt, skipped and counted, so the transaction counts once. */
static void test_duplicated_record(void **state)
{
    struct fake_clock clk;
    txstats_recovery_t rep;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 1);
    assert_int_equal(txstats_open_dir(t, dir, NULL, &rep), TXSTATS_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(txstats_add(t, amt("1"), T0 - i), TXSTATS_OK);
    txstats_destroy(t); /* the 10 only in the journal */
    char names[16][64], path[160], rec[32];
    int n = segments(names, 16);
    int k = n - 1;
    while (k >= 0 && file_size(names[k]) == 0)
        k--;
    assert_true(k >= 0);
    snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fread(rec, 1, 32, f), 32);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    assert_int_equal(fwrite(rec, 1, 32, f), 32);
    fclose(f);
    assert_null(open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 0, TXSTATS_EFORMAT, NULL));
    t = open_at(&clk, dir, TXSTATS_FSYNC_NEVER, 1, TXSTATS_OK, &rep);
    assert_int_equal(rep.corrupt_records, 1);
    assert_int_equal(count_of(t), 10);
    txstats_destroy(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_survives_a_crash),
        T(test_torn_tail_every_offset),
        T(test_corruption_in_the_middle),
        T(test_rotation_and_deletion),
        T(test_replay_after_clear),
        T(test_interrupted_clear_is_ignored),
        T(test_group_commit),
        T(test_directory_lock),
        T(test_disk_full),
        T(test_missing_checkpoint),
        T(test_older_checkpoint_put_back),
        T(test_load_is_durable),
        T(test_duplicated_record),
    };
    return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
