/* SPDX-License-Identifier: MIT */
/*
 * Entities through the journal (issue 20). A child process adds keyed transactions to a
 * journaled instance (TXSTATS_FSYNC_ALWAYS: acknowledged = durable) from two threads while a
 * third checkpoints, and is killed with SIGKILL at a random moment; the parent recovers the
 * directory with txstats_open_dir() and checks every entity, the global window and the rankings
 * against what was acknowledged, several times over the same directory. Then, in one process, a
 * checkpoint followed by more keyed adds (single, idempotent, batched), a clear, and recovery.
 * Seeded: the same kill moments every run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "entity_model.h"

#define WINDOW  1000
#define SKEW    20
#define ADDERS  2
#define PER_ENT 30    /* entities per adder thread, disjoint between threads */
#define MAX_TX  20000 /* per adder thread, over every cycle */
#define CYCLES  8

enum { NOT_SENT = 0, ACKED = 1, IN_FLIGHT = 2, REFUSED = 3 };

/* Shared with the children: what each one sent and what it was told. */
struct shared {
    _Atomic int64_t clock; /* the children's clock */
    _Atomic uint64_t ticks;
    int next[ADDERS];
    unsigned char state[ADDERS][MAX_TX];
    int64_t ts[ADDERS][MAX_TX];
    int child_error;
};

static char dir[64];
static struct shared *sh;

static int setup(void **state)
{
    strcpy(dir, "/tmp/txstats-test-entrec-XXXXXX");
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return mkdtemp(dir) && sh != MAP_FAILED ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    munmap(sh, sizeof(*sh));
    return system(cmd) == 0 ? 0 : -1;
}

/* Transaction i of adder th: its entity (disjoint sets per thread) and amount. */
static size_t rec_entity(int th, int i, unsigned char *ent)
{
    return ent_name(th * PER_ENT + (i * 13) % PER_ENT, ent);
}

static txstats_amount_t rec_amount(int th, int i)
{
    return (txstats_amount_t)((i * 7919 + th * 104729) % 20001 - 10000) * 100 + th;
}

static int64_t shared_clock(void *ctx)
{
    return atomic_load(&((struct shared *)ctx)->clock);
}

/* The clock moves 1 ms every 4 adds, whichever thread adds. */
static int64_t tick(void)
{
    int64_t now = T0 + (int64_t)(atomic_fetch_add(&sh->ticks, 1) / 4),
            cur = atomic_load(&sh->clock);
    while (cur < now && !atomic_compare_exchange_weak(&sh->clock, &cur, now))
        ;
    return atomic_load(&sh->clock);
}

/* ---- The child ------------------------------------------------------------------------------ */

/* One add, by one of the three ways in turn. */
static int add_one(txstats_t *t, const txstats_input_t *in, int how)
{
    int rc = -100;
    if (how == 0 && !in->idem_key)
        return txstats_add_entity(t, in->entity, in->entity_len, in->amount, in->timestamp_ms);
    if (how == 1)
        return txstats_add_ex(t, in, NULL);
    return txstats_add_batch_ex(t, in, 1, &rc, NULL, NULL) == TXSTATS_OK ? rc : -100;
}

static void *child_adder(void *arg)
{
    txstats_t *t = ((void **)arg)[0];
    int th = (int)(intptr_t)((void **)arg)[1];
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    char idem[32];
    for (int i = sh->next[th]; i < MAX_TX; i++) {
        int64_t now = tick(), ts = now - (WINDOW + 100) + (i * 37) % (WINDOW + 100 + SKEW + 1);
        size_t len = rec_entity(th, i, ent);
        txstats_input_t in = {rec_amount(th, i), ts, ent, len, NULL, 0};
        if (i % 5 == 0) { /* every fifth under an idempotency key (journaled with it) */
            in.idem_key = idem;
            in.idem_key_len = (size_t)snprintf(idem, sizeof(idem), "rec-%d-%d", th, i);
        }
        sh->ts[th][i] = ts;
        sh->state[th][i] = IN_FLIGHT;
        sh->next[th] = i + 1;
        int rc = add_one(t, &in, i % 3);
        sh->state[th][i] = rc == TXSTATS_OK ? ACKED : REFUSED;
        if (rc != TXSTATS_OK && rc != TXSTATS_EXPIRED)
            sh->child_error = rc;
    }
    return NULL;
}

static void *child_checkpointer(void *arg)
{
    for (;;) {
        struct timespec d = {0, 7 * 1000000L};
        nanosleep(&d, NULL);
        int rc = txstats_checkpoint(arg);
        if (rc != TXSTATS_OK)
            sh->child_error = 1000 + rc;
    }
    return NULL;
}

static txstats_t *make_journaled(int64_t (*clock)(void *), void *ctx, unsigned shards)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    cfg.window_ms = WINDOW;
    cfg.max_skew_ms = SKEW;
    cfg.shards = shards;
    cfg.clock_ms = clock;
    cfg.clock_ctx = ctx;
    cfg.max_entities = 1000;
    return txstats_create(&t, &cfg) == TXSTATS_OK ? t : NULL;
}

static void child_main(void)
{
    txstats_t *t = make_journaled(shared_clock, sh, 2);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_ALWAYS;
    d.segment_bytes = 8192; /* rotations too */
    d.checkpoint_interval_ms = 20;
    int rc = t ? txstats_open_dir(t, dir, &d, NULL) : -100;
    if (rc != TXSTATS_OK) {
        sh->child_error = 2000 + rc;
        _exit(3);
    }
    pthread_t th[ADDERS + 1];
    void *args[ADDERS][2];
    for (int i = 0; i < ADDERS; i++) {
        args[i][0] = t;
        args[i][1] = (void *)(intptr_t)i;
        pthread_create(&th[i], NULL, child_adder, args[i]);
    }
    pthread_create(&th[ADDERS], NULL, child_checkpointer, t);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(th[i], NULL);
    pause(); /* until the kill */
    _exit(0);
}

/* ---- The parent ----------------------------------------------------------------------------- */

/* The model of what was acknowledged. In flight at the kill: one per thread at most, in or not;
 * its entity (the thread's own) tells which, and the model follows. */
static void build_model(struct em *m, txstats_t *t, int64_t now)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    em_init(m, WINDOW);
    for (int th = 0; th < ADDERS; th++)
        for (int i = 0; i < sh->next[th]; i++)
            if (sh->state[th][i] == ACKED)
                em_add(m, ent, rec_entity(th, i, ent), rec_amount(th, i), sh->ts[th][i]);
    for (int th = 0; th < ADDERS; th++)
        for (int i = 0; i < sh->next[th]; i++) {
            if (sh->state[th][i] != IN_FLIGHT)
                continue;
            size_t len = rec_entity(th, i, ent);
            txstats_summary_t want = em_stats(m, ent, len, now), got;
            assert_int_equal(txstats_entity_stats(t, ent, len, &got), TXSTATS_OK);
            int in = got.count == want.count + 1;
            if (in)
                em_add(m, ent, len, rec_amount(th, i), sh->ts[th][i]);
            sh->state[th][i] = in ? ACKED : REFUSED; /* out of the window: either way */
        }
}

/* Recovered SKEW ms after the child's last clock: every transaction it sent is at or before it,
 * so an entity's count tells whether its one in flight is there. Same shard count as the
 * children: test_entities.c covers changing it. */
static void verify(int cycle, uint64_t *acked)
{
    struct fake_clock clk = {atomic_load(&sh->clock) + SKEW};
    struct em m;
    txstats_recovery_t rep;
    atomic_store(&sh->clock, clk.now); /* the next child goes on from here */
    txstats_t *t = make_journaled(fake_clock_read, &clk, 2);
    assert_non_null(t);
    int rc = txstats_open_dir(t, dir, NULL, &rep);
    if (rc != TXSTATS_OK)
        fail_msg("cycle %d: recovery %d (%s)", cycle, rc, txstats_strerror(rc));
    build_model(&m, t, clk.now);
    em_assert_all(t, &m, clk.now);
    em_assert_top(t, &m, clk.now, TXSTATS_TOP_SUM, ADDERS * PER_ENT + 1);
    em_assert_top(t, &m, clk.now, TXSTATS_TOP_COUNT, 7);
    *acked = m.n;
    print_message("cycle %d: %d + %d sent, %zu acknowledged, %llu in the window, %llu replayed, "
                  "%llu torn bytes\n",
                  cycle, sh->next[0], sh->next[1], m.n,
                  (unsigned long long)em_stats(&m, NULL, 0, clk.now).count,
                  (unsigned long long)rep.replayed, (unsigned long long)rep.torn_bytes);
    txstats_destroy(t);
    em_free(&m);
}

static void test_kill_at_random_moments(void **state)
{
    unsigned seed = 20;
    uint64_t acked = 0;
    memset(sh, 0, sizeof(*sh));
    atomic_store(&sh->clock, T0);
    for (int c = 1; c <= CYCLES; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_main();
        struct timespec d = {0, (long)(40 + rand_r(&seed) % 160) * 1000000L};
        nanosleep(&d, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (sh->child_error)
            fail_msg("cycle %d: the child got %d", c, sh->child_error);
        assert_true(WIFSIGNALED(status)); /* killed, not exited on an error */
        verify(c, &acked);
    }
    assert_true(acked > 100); /* the children did add */
}

/* ---- A checkpoint, then more keyed adds, then recovery -------------------------------------- */

static txstats_t *open_on(struct fake_clock *clk, unsigned shards, txstats_recovery_t *rep)
{
    txstats_t *t = make_journaled(fake_clock_read, clk, shards);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_ALWAYS;
    assert_non_null(t);
    assert_int_equal(txstats_open_dir(t, dir, &d, rep), TXSTATS_OK);
    return t;
}

/* The last keyed add, retried after recovery: still a duplicate (its key was journaled with it). */
static struct {
    txstats_input_t in;
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    char idem[32];
} last;

static void remember(const txstats_input_t *in)
{
    last.in = *in;
    memcpy(last.ent, in->entity, in->entity_len);
    memcpy(last.idem, in->idem_key, in->idem_key_len);
    last.in.entity = last.ent;
    last.in.idem_key = last.idem;
}

static void retry_last(txstats_t *t)
{
    txstats_summary_t before, after;
    int first = 99;
    assert_int_equal(txstats_entity_stats(t, last.ent, last.in.entity_len, &before), TXSTATS_OK);
    assert_int_equal(txstats_add_ex(t, &last.in, &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_OK);
    assert_int_equal(txstats_entity_stats(t, last.ent, last.in.entity_len, &after), TXSTATS_OK);
    assert_int_equal(after.count, before.count);
}

/* n adds at one per ms from the clock on, each way in turn; recorded in the model. */
static void keyed_adds(txstats_t *t, struct em *m, struct fake_clock *clk, uint64_t *s, int n,
                       int entities)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    char idem[32];
    for (int i = 0; i < n; i++) {
        clk->now++;
        txstats_input_t in = {
            rnd_amount(s), clk->now + rnd_in(s, -WINDOW + 1, SKEW), ent, 0, NULL, 0};
        in.entity_len = ent_name((int)(rnd(s) % (uint64_t)entities), ent);
        if (i % 4 == 0) {
            in.idem_key = idem;
            in.idem_key_len =
                (size_t)snprintf(idem, sizeof(idem), "ck-%llu", (unsigned long long)rnd(s));
        }
        assert_int_equal(add_one(t, &in, i % 3), TXSTATS_OK);
        em_add(m, ent, in.entity_len, in.amount, in.timestamp_ms);
        if (in.idem_key) { /* the retry: not counted again */
            assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_DUPLICATE);
            remember(&in);
        }
    }
}

static void assert_recovers(struct fake_clock *clk, struct em *m, int64_t later, int cleared)
{
    txstats_recovery_t rep;
    txstats_t *t = open_on(clk, 3, &rep);
    assert_true(rep.replayed > 0);
    assert_int_equal(rep.cleared, cleared);
    em_assert_all(t, m, clk->now);
    em_assert_top(t, m, clk->now, TXSTATS_TOP_SUM, 100);
    em_assert_top(t, m, clk->now, TXSTATS_TOP_COUNT, 3);
    retry_last(t);
    txstats_destroy(t);
    clk->now += later; /* some entities gone by the next opening */
}

static void test_checkpoint_then_keyed_adds(void **state)
{
    struct fake_clock clk = {T0};
    struct em m;
    uint64_t s = 50;
    em_init(&m, WINDOW);
    txstats_t *t = open_on(&clk, 2, NULL);
    keyed_adds(t, &m, &clk, &s, 600, 40);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    keyed_adds(t, &m, &clk, &s, 400, 60); /* the same entities, and new ones */
    txstats_destroy(t);                   /* no checkpoint after: as a crash */
    assert_recovers(&clk, &m, 300, 0);
    t = open_on(&clk, 2, NULL); /* recovered at a later clock, then more */
    em_assert_all(t, &m, clk.now);
    keyed_adds(t, &m, &clk, &s, 300, 80);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    keyed_adds(t, &m, &clk, &s, 100, 80);
    assert_int_equal(txstats_clear_ex(t), TXSTATS_OK); /* a journaled clear, then more */
    em_empty(&m);
    keyed_adds(t, &m, &clk, &s, 150, 20);
    txstats_destroy(t);
    assert_recovers(&clk, &m, WINDOW + SKEW, 1);
    t = open_on(&clk, 1, NULL); /* everything has left */
    em_assert_all(t, &m, clk.now);
    txstats_summary_t g;
    assert_int_equal(txstats_stats(t, &g), TXSTATS_OK);
    assert_int_equal(g.count, 0);
    txstats_destroy(t);
    em_free(&m);
}

/* ---- Keyed records cut or damaged ----------------------------------------------------------- */

/* One stream, five keyed records, the last the longest there is (an idempotency key and a
 * 128-byte entity: 224 bytes). Returns the segment's path and size. */
static off_t write_keyed_records(char *seg, size_t cap)
{
    struct fake_clock clk = {T0};
    unsigned char big[TXSTATS_MAX_ENTITY_BYTES];
    memset(big, 0xee, sizeof(big));
    txstats_t *t = open_on(&clk, 1, NULL);
    assert_int_equal(txstats_add_entity(t, "a", 1, 100, T0), TXSTATS_OK);
    assert_int_equal(txstats_add_entity(t, "b\0b", 3, -200, T0 - 1), TXSTATS_OK);
    txstats_input_t in = {300, T0 - 2, "c", 1, "k1", 2};
    assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_OK);
    assert_int_equal(txstats_add(t, 400, T0 - 3), TXSTATS_OK);
    in = (txstats_input_t){500, T0 - 4, big, sizeof(big), "k2", 2};
    assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_OK);
    txstats_destroy(t);
    struct stat st;
    char name[64] = "";
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "journal-", 8) && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
            st.st_size > 0)
            snprintf(name, sizeof(name), "%s", e->d_name);
    closedir(d);
    snprintf(seg, cap, "%s/%s", dir, name);
    assert_int_equal(stat(seg, &st), 0);
    return st.st_size;
}

static uint64_t entity_count(txstats_t *t, const void *ent, size_t len)
{
    txstats_summary_t s;
    assert_int_equal(txstats_entity_stats(t, ent, len, &s), TXSTATS_OK);
    return s.count;
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* The last record cut at every byte: it is gone, the others all there. */
static void test_torn_keyed_record_every_offset(void **state)
{
    char seg[160], saved[96];
    unsigned char big[TXSTATS_MAX_ENTITY_BYTES];
    memset(big, 0xee, sizeof(big));
    off_t full = write_keyed_records(seg, sizeof(seg));
    assert_int_equal(full, 64 + 64 + 96 + 32 + 224); /* see journal.h */
    snprintf(saved, sizeof(saved), "%s.keep", dir);
    copy_dir(dir, saved);
    for (off_t cut = full - 224; cut <= full; cut++) {
        struct fake_clock clk = {T0};
        txstats_recovery_t rep;
        copy_dir(saved, dir);
        assert_int_equal(truncate(seg, cut), 0);
        txstats_t *t = open_on(&clk, 1, &rep);
        assert_int_equal(rep.torn_bytes, (uint64_t)(cut == full ? 0 : cut - (full - 224)));
        assert_int_equal(entity_count(t, "a", 1), 1);
        assert_int_equal(entity_count(t, "b\0b", 3), 1);
        assert_int_equal(entity_count(t, "c", 1), 1);
        assert_int_equal(entity_count(t, big, sizeof(big)), cut == full);
        txstats_input_t in = {300, T0 - 2, "c", 1, "k1", 2}; /* its key came back too */
        assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_DUPLICATE);
        txstats_destroy(t);
    }
    copy_dir(saved, dir);
    snprintf(seg, sizeof(seg), "rm -rf '%s'", saved);
    assert_int_equal(system(seg), 0);
}

/* A byte of an entity damaged in a record followed by good ones: strict recovery refuses,
 * skip_corrupt drops that record only. */
static void test_damaged_entity_bytes(void **state)
{
    char seg[160];
    unsigned char b;
    struct fake_clock clk = {T0};
    txstats_recovery_t rep;
    write_keyed_records(seg, sizeof(seg));
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    off_t at = 64 + 32 + 1; /* the second record's entity ("b\0b", after its length): "c" */
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    txstats_t *t = make_journaled(fake_clock_read, &clk, 1);
    assert_int_equal(txstats_open_dir(t, dir, NULL, &rep), TXSTATS_EFORMAT);
    txstats_destroy(t);
    t = make_journaled(fake_clock_read, &clk, 1);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.skip_corrupt = 1;
    assert_int_equal(txstats_open_dir(t, dir, &d, &rep), TXSTATS_OK);
    /* The damaged record is skipped 32 bytes at a time (its length cannot be trusted): a
     * 64-byte one counts as 2 today. */
    assert_true(rep.corrupt_records >= 1 && rep.corrupt_records <= 2);
    assert_int_equal(entity_count(t, "a", 1), 1);
    assert_int_equal(entity_count(t, "b\0b", 3), 0);
    assert_int_equal(entity_count(t, "c\0b", 3), 0); /* not under the damaged name either */
    assert_int_equal(entity_count(t, "c", 1), 1);
    txstats_summary_t g;
    assert_int_equal(txstats_stats(t, &g), TXSTATS_OK);
    assert_int_equal(g.count, 4);
    txstats_destroy(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_kill_at_random_moments),
        T(test_checkpoint_then_keyed_adds),
        T(test_torn_keyed_record_every_offset),
        T(test_damaged_entity_bytes),
    };
    return cmocka_run_group_tests_name("entities_recovery", tests, NULL, NULL);
}
