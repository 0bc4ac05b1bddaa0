/* SPDX-License-Identifier: MIT */
/* The outbox of `--kafka-ack local` (server/outbox.c): what is appended is read back in order
 * after any reopen; a torn tail at every byte is cut to the whole records before it; damage
 * before the tail refuses to open; acknowledged segments are deleted; one process at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "outbox.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/txstats-outbox-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static struct srv_outbox *open_ok(uint64_t segment_bytes)
{
    struct srv_outbox_config c = {TXSTATS_FSYNC_INTERVAL, 10, segment_bytes};
    struct srv_outbox *o = NULL;
    char err[256];
    if (srv_outbox_open(&o, dir, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return o;
}

/* Bytes a record of rec() may point into: its idempotency key, then its key. */
#define RECBUF 400

/* Record i of the test stream: idempotency keys and keys (entities) of every length class, both
 * kinds. */
static struct srv_outbox_rec rec(int i, char *keybuf)
{
    static const size_t key_lens[] = {0, 1, 7, 254, 255, 0, 0};
    static const size_t entity_lens[] = {0, 1, 128, 9, 0, 127, 64, 0, 3};
    size_t kl = key_lens[i % 7], el = i % 11 == 10 ? 0 : entity_lens[i % 9];
    for (size_t j = 0; j < kl; j++)
        keybuf[j] = (char)('!' + (i + j) % 90);
    for (size_t j = 0; j < el; j++)
        keybuf[256 + j] = (char)(0x80 + (i * 7 + j) % 128);
    return (struct srv_outbox_rec){
        0, 1700000000000 + i, (txstats_amount_t)i * 1234567 - 99, 42 + i,
        0, i % 11 == 10,      {kl ? keybuf : NULL, kl},           el ? keybuf + 256 : NULL,
        el};
}

static void append_range(struct srv_outbox *o, int from, int to, int per_call)
{
    for (int i = from; i < to; i += per_call) {
        struct srv_outbox_rec r[64];
        char keys[64][RECBUF];
        int n = to - i < per_call ? to - i : per_call;
        for (int j = 0; j < n; j++)
            r[j] = rec(i + j, keys[j]);
        uint64_t first = 0;
        assert_int_equal(srv_outbox_append(o, r, (size_t)n, &first), 0);
        assert_int_equal(first, (uint64_t)i + 1);
    }
}

/* Read everything from seq `from` and compare with rec(); returns the count read. */
static int read_check(struct srv_outbox *o, uint64_t from)
{
    uint64_t next = from;
    struct srv_outbox_rec r[100];
    size_t got;
    while ((got = srv_outbox_read(o, next, r, 100)) > 0) {
        for (size_t j = 0; j < got; j++, next++) {
            char keybuf[RECBUF];
            struct srv_outbox_rec want = rec((int)next - 1, keybuf);
            assert_int_equal(r[j].seq, next);
            assert_int_equal(r[j].timestamp_ms, want.timestamp_ms);
            assert_int_equal(r[j].amount, want.amount);
            assert_int_equal(r[j].accepted_ms, want.accepted_ms);
            assert_int_equal(r[j].kind, want.kind);
            assert_int_equal(r[j].key.len, want.key.len);
            if (want.key.len)
                assert_memory_equal(r[j].key.key, want.key.key, want.key.len);
            assert_int_equal(r[j].entity_len, want.entity_len);
            if (want.entity_len)
                assert_memory_equal(r[j].entity, want.entity, want.entity_len);
        }
    }
    return (int)(next - from);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const int per_call[] = {1, 3, 4, 5, 64};
    for (size_t c = 0; c < sizeof(per_call) / sizeof(per_call[0]); c++) {
        teardown(NULL);
        setup(NULL);
        struct srv_outbox *o = open_ok(4096); /* small segments: many rotations */
        append_range(o, 0, 500, per_call[c]);
        assert_int_equal(read_check(o, 1), 500);
        assert_int_equal(read_check(o, 250), 251); /* a rewind */
        srv_outbox_close(o);
        o = open_ok(4096);
        struct srv_outbox_stats s;
        srv_outbox_stats(o, &s);
        assert_int_equal(s.next_seq, 501);
        assert_true(s.segments > 1);
        assert_int_equal(read_check(o, 1), 500);
        append_range(o, 500, 600, per_call[c]); /* appending goes on after the reopen */
        assert_int_equal(read_check(o, 450), 151);
        srv_outbox_close(o);
    }
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Cut the only segment at every byte: whole records survive, the torn one goes, appends go on. */
static void test_torn_tail_at_every_byte(void **state)
{
    (void)state;
    char seg[400];
    snprintf(seg, sizeof(seg), "%s/outbox-%020d.log", dir, 1);
    struct srv_outbox *o = open_ok(0);
    append_range(o, 0, 6, 1);
    srv_outbox_close(o);
    off_t full = file_size(seg);
    char copy[500];
    snprintf(copy, sizeof(copy), "cp '%s' '%s.full'", seg, seg);
    assert_int_equal(system(copy), 0);
    for (off_t cut = 0; cut <= full; cut++) {
        snprintf(copy, sizeof(copy), "cp '%s.full' '%s'", seg, seg);
        assert_int_equal(system(copy), 0);
        assert_int_equal(truncate(seg, cut), 0);
        o = open_ok(0);
        int whole = read_check(o, 1);
        struct srv_outbox_stats s;
        srv_outbox_stats(o, &s);
        assert_int_equal(s.next_seq, (uint64_t)whole + 1);
        assert_int_equal(s.bytes + s.torn, (uint64_t)cut);
        append_range(o, whole, whole + 2, 1);
        assert_int_equal(read_check(o, 1), whole + 2);
        srv_outbox_close(o);
    }
}

/* A flipped byte in an earlier segment, or before the end of the last one, refuses to open
 * (the records after it would be lost); only a damaged record at the very end is a torn tail. */
static void test_damage(void **state)
{
    (void)state;
    struct srv_outbox *o = open_ok(200);
    append_range(o, 0, 20, 1);
    srv_outbox_close(o);
    char first[400], err[256];
    snprintf(first, sizeof(first), "%s/outbox-%020d.log", dir, 1);
    int fd = open(first, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\xff", 1, 20), 1);
    close(fd);
    struct srv_outbox_config c = {TXSTATS_FSYNC_INTERVAL, 10, 200};
    assert_int_equal(srv_outbox_open(&o, dir, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "damaged"));
}

static void test_damage_in_last_segment(void **state)
{
    (void)state;
    struct srv_outbox *o = open_ok(0);
    append_range(o, 0, 6, 1);
    srv_outbox_close(o);
    char seg[400], err[256];
    snprintf(seg, sizeof(seg), "%s/outbox-%020d.log", dir, 1);
    off_t size = file_size(seg);
    struct srv_outbox_config c = {TXSTATS_FSYNC_INTERVAL, 10, 0};
    static const off_t at[] = {0, 5, 12, 60, 100, 120, 400}; /* headers, payloads, keys */
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        int fd = open(seg, O_RDWR);
        unsigned char b, flipped;
        assert_int_equal(pread(fd, &b, 1, at[k]), 1);
        flipped = (unsigned char)(b ^ 0x5a);
        assert_int_equal(pwrite(fd, &flipped, 1, at[k]), 1);
        assert_int_equal(srv_outbox_open(&o, dir, &c, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "damaged"));
        assert_int_equal(file_size(seg), size); /* nothing was cut */
        assert_int_equal(pwrite(fd, &b, 1, at[k]), 1);
        close(fd);
    }
    o = open_ok(0);
    assert_int_equal(read_check(o, 1), 6);
    srv_outbox_close(o);
}

/* An `acked` mark ahead of the records (their tail lost with power, the mark kept): appends go on
 * after the mark, the gap in the sequence is accepted at every later open, nothing is cut. */
static void test_gap_after_lost_tail(void **state)
{
    (void)state;
    struct srv_outbox *o = open_ok(0);
    append_range(o, 0, 4, 1);
    srv_outbox_close(o);
    char path[400];
    snprintf(path, sizeof(path), "%s/acked", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%020d\n", 10);
    fclose(f);
    o = open_ok(0);
    struct srv_outbox_rec r[2];
    char keys[2][RECBUF];
    r[0] = rec(20, keys[0]);
    r[1] = rec(21, keys[1]);
    uint64_t first;
    assert_int_equal(srv_outbox_append(o, r, 2, &first), 0);
    assert_int_equal(first, 11);
    srv_outbox_close(o);
    o = open_ok(0);
    struct srv_outbox_stats s;
    srv_outbox_stats(o, &s);
    assert_int_equal(s.next_seq, 13);
    assert_int_equal(s.torn, 0);
    struct srv_outbox_rec got[8];
    assert_int_equal(srv_outbox_read(o, 11, got, 8), 2);
    assert_int_equal(got[0].seq, 11);
    assert_int_equal(got[1].amount, r[1].amount);
    srv_outbox_close(o);
}

/* Acknowledged segments are deleted, the mark survives a reopen, the sequence never goes back. */
static void test_acked(void **state)
{
    (void)state;
    struct srv_outbox *o = open_ok(500);
    append_range(o, 0, 100, 1);
    struct srv_outbox_stats s;
    srv_outbox_stats(o, &s);
    uint64_t before = s.segments;
    srv_outbox_acked(o, 60);
    srv_outbox_stats(o, &s);
    assert_true(s.segments < before);
    assert_int_equal(s.acked, 60);
    assert_int_equal(read_check(o, 61), 40);
    srv_outbox_acked(o, 100);
    srv_outbox_close(o);
    o = open_ok(500);
    srv_outbox_stats(o, &s);
    assert_int_equal(s.acked, 100);
    assert_int_equal(s.next_seq, 101);
    assert_int_equal(s.segments, 1);
    append_range(o, 100, 110, 2);
    assert_int_equal(read_check(o, 101), 10);
    srv_outbox_close(o);
}

/* A second process (here: a second open) is refused; every open is a new origin, and records
 * keep the origin of the run that appended them. */
static void test_lock_and_origin(void **state)
{
    (void)state;
    struct srv_outbox *a = open_ok(0), *b = NULL;
    struct srv_outbox_config c = {TXSTATS_FSYNC_ALWAYS, 10, 0};
    char err[256];
    assert_int_equal(srv_outbox_open(&b, dir, &c, err, sizeof(err)), -1);
    assert_int_equal(errno, EBUSY);
    struct srv_outbox_stats s1, s2;
    srv_outbox_stats(a, &s1);
    assert_true(s1.origin != 0);
    append_range(a, 0, 2, 1);
    srv_outbox_close(a);
    assert_int_equal(srv_outbox_open(&b, dir, &c, err, sizeof(err)), 0);
    append_range(b, 2, 5, 3);
    srv_outbox_stats(b, &s2);
    assert_true(s2.origin != 0 && s2.origin != s1.origin);
    assert_true(s2.syncs >= 1); /* fsync always */
    struct srv_outbox_rec r[8];
    assert_int_equal(srv_outbox_read(b, 1, r, 8), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].origin, i < 2 ? s1.origin : s2.origin);
    srv_outbox_close(b);
}

/* Appends from 4 threads while a shipper-like thread reads and acknowledges: every record is
 * read once, in sequence order, and segments go as they are acknowledged (TSan runs this). */
struct appender {
    struct srv_outbox *o;
    int n;
};

static void *append_main(void *arg)
{
    struct appender *a = arg;
    for (int i = 0; i < a->n; i++) {
        struct srv_outbox_rec r[3];
        char keys[3][RECBUF];
        for (int j = 0; j < 3; j++)
            r[j] = rec(i + j, keys[j]);
        uint64_t first;
        if (srv_outbox_append(a->o, r, 1 + (size_t)(i % 3), &first) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    struct srv_outbox *o = open_ok(4096);
    struct appender a = {o, 2000};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, append_main, &a);
    uint64_t next = 1, total = 4 * (2000 / 3 * 6 + (2000 % 3 == 2 ? 3 : 2000 % 3));
    struct srv_outbox_rec r[64];
    for (int idle = 0; next <= total && idle < 20000;) {
        size_t got = srv_outbox_read(o, next, r, 64);
        for (size_t j = 0; j < got; j++)
            assert_int_equal(r[j].seq, next++);
        if (got)
            srv_outbox_acked(o, next - 1);
        idle = got ? 0 : idle + 1;
        if (!got)
            srv_outbox_wait(o, next, 1);
    }
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(next - 1, total);
    struct srv_outbox_stats s;
    srv_outbox_stats(o, &s);
    assert_int_equal(s.next_seq, total + 1);
    assert_int_equal(s.segments, 1); /* every acknowledged segment was deleted */
    srv_outbox_close(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_at_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_in_last_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_after_lost_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
    };
    return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}
