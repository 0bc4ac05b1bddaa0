/* SPDX-License-Identifier: MIT */
/*
 * Every span after kill -9 (issue 21), as test_entities_recovery.c does it for entities: a child
 * process adds to a journaled instance of four spans (TXSTATS_FSYNC_ALWAYS: acknowledged =
 * durable) from two threads, some under an idempotency key, some for entities, by every add
 * path, while a third thread and the background checkpointer write checkpoints; it is killed
 * with SIGKILL at a random moment. The parent recovers the directory with txstats_open_dir() and
 * checks every span (statistics, listing, quantiles, distribution, entity statistics, top-K)
 * and the active entities against the model of what was acknowledged (span_model.h), several
 * times over the same directory. Seeded: the same kill moments every run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "span_model.h"

static const int64_t SPANS[] = {300, 1000, 50, 7}; /* the default is not the longest */
#define NSPANS  4
#define LONGEST 1
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
    strcpy(dir, "/tmp/txstats-test-spanrec-XXXXXX");
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

/* Transaction i of adder th: its entity (every third has none) and amount. */
static size_t rec_entity(int th, int i, unsigned char *ent)
{
    return i % 3 == 2 ? 0 : ent_name(th * PER_ENT + (i * 13) % PER_ENT, ent);
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

/* One add, by one of the ways in turn. */
static int add_one(txstats_t *t, const txstats_input_t *in, int how)
{
    int rc = -100;
    if (how == 0 && !in->idem_key && !in->entity)
        return txstats_add(t, in->amount, in->timestamp_ms);
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
        txstats_input_t in = {rec_amount(th, i), ts, len ? ent : NULL, len, NULL, 0};
        if (i % 5 == 0) { /* every fifth under an idempotency key (journaled with it) */
            in.idem_key = idem;
            in.idem_key_len = (size_t)snprintf(idem, sizeof(idem), "sr-%d-%d", th, i);
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

static txstats_t *make_journaled(int64_t (*clock)(void *), void *ctx)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    cfg.spans_ms = SPANS;
    cfg.nspans = NSPANS;
    cfg.max_skew_ms = SKEW;
    cfg.shards = 2;
    cfg.clock_ms = clock;
    cfg.clock_ctx = ctx;
    cfg.max_entities = 1000;
    return txstats_create(&t, &cfg) == TXSTATS_OK ? t : NULL;
}

static void child_main(void)
{
    txstats_t *t = make_journaled(shared_clock, sh);
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

/* An in-flight transaction for an entity: in the recovered window when its entity's count in the
 * longest span is one more than the model's (the thread's entities are its own). */
static void resolve_entity(struct sm *s, txstats_t *t, int th, int i, int64_t now)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    size_t len = rec_entity(th, i, ent);
    txstats_summary_t want = sm_stats(s, LONGEST, ent, len, now), got;
    assert_int_equal(txstats_entity_stats_span(t, LONGEST, ent, len, &got), TXSTATS_OK);
    int in = got.count == want.count + 1;
    if (in)
        em_add(&s->m, ent, len, rec_amount(th, i), sh->ts[th][i]);
    sh->state[th][i] = in ? ACKED : REFUSED; /* out of the window: either way */
}

/* In-flight transactions without an entity (one per thread at most): the subset of them whose
 * addition makes the model's longest span match the recovered one's count and sum. One outside
 * the span either way matches with or without it: it never counts again. */
static void resolve_plain(struct sm *s, txstats_t *t, const int *th, const int *idx, int n,
                          int64_t now)
{
    txstats_summary_t got, want = sm_stats(s, LONGEST, NULL, 0, now);
    assert_int_equal(txstats_stats_span(t, LONGEST, &got), TXSTATS_OK);
    for (int mask = 0; mask < (1 << n); mask++) {
        __int128 sum = em_sum_get(&want);
        uint64_t count = want.count;
        for (int k = 0; k < n; k++) {
            int64_t ts = sh->ts[th[k]][idx[k]];
            bool in = ts > now - WINDOW && ts <= now;
            if (mask >> k & 1 && in) {
                sum += rec_amount(th[k], idx[k]);
                count++;
            }
        }
        if (count != got.count || sum != em_sum_get(&got))
            continue;
        for (int k = 0; k < n; k++) {
            if (mask >> k & 1)
                em_add(&s->m, NULL, 0, rec_amount(th[k], idx[k]), sh->ts[th[k]][idx[k]]);
            sh->state[th[k]][idx[k]] = mask >> k & 1 ? ACKED : REFUSED;
        }
        return;
    }
    fail_msg("the recovered longest span matches no outcome of the %d in flight", n);
}

/* The model of what was acknowledged, and of what was in flight at the kill and came back. */
static void build_model(struct sm *s, txstats_t *t, int64_t now)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    int th_plain[ADDERS], idx_plain[ADDERS], n_plain = 0;
    sm_init(s, SPANS, NSPANS, SKEW);
    for (int th = 0; th < ADDERS; th++)
        for (int i = 0; i < sh->next[th]; i++)
            if (sh->state[th][i] == ACKED)
                em_add(&s->m, ent, rec_entity(th, i, ent), rec_amount(th, i), sh->ts[th][i]);
    for (int th = 0; th < ADDERS; th++)
        for (int i = 0; i < sh->next[th]; i++) {
            if (sh->state[th][i] != IN_FLIGHT)
                continue;
            if (rec_entity(th, i, ent)) {
                resolve_entity(s, t, th, i, now);
            } else {
                th_plain[n_plain] = th;
                idx_plain[n_plain++] = i;
            }
        }
    resolve_plain(s, t, th_plain, idx_plain, n_plain, now);
}

/* Recovered SKEW ms after the child's last clock: every transaction it sent is at or before it.
 * Every span checked, then again at each span's edge of the newest transactions. */
static void verify(int cycle, uint64_t *acked)
{
    struct fake_clock clk = {atomic_load(&sh->clock) + SKEW};
    struct sm s;
    txstats_recovery_t rep;
    atomic_store(&sh->clock, clk.now); /* the next child goes on from here */
    txstats_t *t = make_journaled(fake_clock_read, &clk);
    assert_non_null(t);
    int rc = txstats_open_dir(t, dir, NULL, &rep);
    if (rc != TXSTATS_OK)
        fail_msg("cycle %d: recovery %d (%s)", cycle, rc, txstats_strerror(rc));
    build_model(&s, t, clk.now);
    sm_assert_all(t, &s, clk.now, "recovered");
    *acked = s.m.n;
    print_message("cycle %d: %d + %d sent, %zu acknowledged, %llu in the longest span, %llu "
                  "replayed, %llu torn bytes\n",
                  cycle, sh->next[0], sh->next[1], s.m.n,
                  (unsigned long long)sm_stats(&s, LONGEST, NULL, 0, clk.now).count,
                  (unsigned long long)rep.replayed, (unsigned long long)rep.torn_bytes);
    static const int64_t later[] = {6, 7, 49, 50, 299, 300, 999, 1000, 1001};
    int64_t base = clk.now;
    for (size_t k = 0; k < sizeof(later) / sizeof(later[0]) && cycle % 2; k++) {
        clk.now = base + later[k]; /* each span's edge of the newest (ts <= base) */
        sm_assert_all(t, &s, clk.now, "recovered, later");
    }
    txstats_destroy(t);
    sm_free(&s);
}

static void test_kill_at_random_moments(void **state)
{
    unsigned seed = 21;
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

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_kill_at_random_moments),
    };
    return cmocka_run_group_tests_name("spans_recovery", tests, NULL, NULL);
}
