/* SPDX-License-Identifier: MIT */
/*
 * Several windows at once (issue 21), against a brute-force model (span_model.h):
 *  1. every millisecond edge of small spans ({5, 17, 1, 64, 100}, unsorted; skew 0, 3, 70; one to
 *     three shards; clocks before 1970 and across 0), the clock stepped 1 ms at a time and now and
 *     then jumped across the index's pages (64 ms), nodes (4,096 and 262,144 ms), a span, or far;
 *     after every step every span's statistics, listing, quantiles, distribution, entity
 *     statistics and top-K, and the active entities;
 *  2. sampled edges of long spans (1 min to 24 h, and 31 days): clocks at each span's edge of
 *     sampled transactions +-1 ms and on the index's boundaries, timestamps before 1970 too;
 *  3. snapshots (JSON, binary) loaded with the same spans, fewer, more or other ones, and the
 *     journal and checkpoints recovered with several spans (kill -9: test_spans_recovery.c);
 *  4. the single-span files of libtxstats 0.1 and 0.2 (tests/data) in a multi-span instance;
 *  5. the configuration's validation, txstats_spans() and txstats_admit() with spans;
 *  6. memory that follows the traffic, with a counting allocator (no timing).
 * Every random sequence has a fixed seed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "span_model.h"

#ifndef TXSTATS_DATA
#error "TXSTATS_DATA: the directory of the files of older versions (tests/data)"
#endif

/* Sanitized builds are several times slower: fewer steps. */
#ifdef TXSTATS_TEST_SANITIZED
#define SCALE      3
#define EDGE_STEPS 600
#else
#define SCALE      1
#define EDGE_STEPS 3000
#endif

#define NODE1  INT64_C(4096)
#define NODE2  INT64_C(262144)
#define MINUTE INT64_C(60000)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)
#define NENTS  6
#define DEF    TXSTATS_DEFAULT_MAX_RETAINED

static char tmp[64];

static int setup(void **state)
{
    strcpy(tmp, "/tmp/txstats-test-spans-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- Adding, by every path, checked against the model and txstats_admit() ------------------ */

struct run {
    txstats_t *t;
    struct fake_clock clk;
    struct sm s;
    txstats_config_t cfg; /* the instance's, for txstats_admit() */
    uint64_t rng;
    const char *name;
    bool oom; /* allocations may fail: TXSTATS_ENOMEM records nothing */
};

static void run_start(struct run *r, const char *name, const int64_t *spans, unsigned n,
                      int64_t skew, unsigned shards, size_t retained, int64_t start)
{
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->t = sm_instance(&r->clk, start, spans, n, skew, shards, retained);
    sm_init(&r->s, spans, n, skew);
    r->s.exact_order = shards == 1;
    r->s.all_kept = retained == DEF;
    txstats_config_init(&r->cfg);
    r->cfg.spans_ms = r->s.spans;
    r->cfg.nspans = n;
    r->cfg.max_skew_ms = skew;
}

static void run_end(struct run *r)
{
    txstats_destroy(r->t);
    sm_free(&r->s);
    r->t = NULL;
}

static void check_rc(struct run *r, int got, txstats_amount_t a, int64_t ts)
{
    int want = sm_expect(&r->s, ts, r->clk.now);
    if (r->oom && got == TXSTATS_ENOMEM)
        return;
    int admit = txstats_admit(&r->cfg, a, ts, r->clk.now);
    if (got != want || admit != want)
        fail_msg("%s: add of %lld at now%+lld (now %lld): %d, admit %d, want %d", r->name,
                 (long long)a, (long long)(ts - r->clk.now), (long long)r->clk.now, got, admit,
                 want);
}

/* One transaction through add, add_entity, add_ex (with an idempotency key) or a batch of one. */
static void add_one(struct run *r, txstats_amount_t a, int64_t ts, int ent)
{
    unsigned char name[TXSTATS_MAX_ENTITY_BYTES];
    char key[32];
    size_t len = ent >= 0 ? ent_name(ent, name) : 0;
    txstats_input_t in = {a, ts, len ? name : NULL, len, NULL, 0};
    int rc = -100, how = (int)(rnd(&r->rng) % 4);
    if (how == 0 && !len)
        rc = txstats_add(r->t, a, ts);
    else if (how == 0)
        rc = txstats_add_entity(r->t, name, len, a, ts);
    else if (how == 1 || how == 2) {
        in.idem_key = how == 1 ? key : NULL;
        in.idem_key_len = (size_t)snprintf(key, sizeof(key), "k%llu", (unsigned long long)r->rng);
        in.idem_key_len = how == 1 ? in.idem_key_len : 0;
        rc = txstats_add_ex(r->t, &in, NULL);
    } else {
        int brc = txstats_add_batch_ex(r->t, &in, 1, &rc, NULL, NULL);
        rc = r->oom && brc == TXSTATS_ENOMEM ? brc : rc;
        assert_true(brc == TXSTATS_OK || rc == TXSTATS_ENOMEM);
    }
    check_rc(r, rc, a, ts);
    if (rc == TXSTATS_OK)
        em_add(&r->s.m, name, len, a, ts);
    int first = 99; /* a retry under the key counts in no span, whatever the first outcome */
    if (how != 1 || !(rnd(&r->rng) % 2) || rc == TXSTATS_ENOMEM)
        return;
    int again = txstats_add_ex(r->t, &in, &first);
    /* Under failing allocations a refusal may not be kept with its key (txstats_add_keyed: "a
     * refusal stands even when it cannot be kept"): the retry is then judged afresh, the same. */
    bool afresh = r->oom && rc != TXSTATS_OK && again == rc;
    if (!afresh && (again != TXSTATS_DUPLICATE || first != rc))
        fail_msg("%s: the retry of a keyed add (first %d): not a duplicate of it (%d)", r->name, rc,
                 first);
}

/* A timestamp near now: anywhere from past the longest span to past the skew, or right at an
 * edge (a span's, the skew's), or now. */
static int64_t near_ts(struct run *r)
{
    int64_t now = r->clk.now, longest = sm_longest(&r->s);
    switch (rnd(&r->rng) % 4) {
    case 0:
        return now - r->s.spans[rnd(&r->rng) % r->s.n] + (int64_t)(rnd(&r->rng) % 2);
    case 1:
        return now + r->s.skew + (int64_t)(rnd(&r->rng) % 2);
    case 2:
        return now - (int64_t)(rnd(&r->rng) % 3);
    default:
        return rnd_in(&r->rng, now - longest - 2, now + r->s.skew + 2);
    }
}

/* Mostly rnd_amount()'s; 1 in 16 near the limit, so that a span's sum needs more than 64 bits. */
static txstats_amount_t amount_of(struct run *r)
{
    if (rnd(&r->rng) % 16)
        return rnd_amount(&r->rng);
    txstats_amount_t a = TXSTATS_AMOUNT_LIMIT - 1 - (txstats_amount_t)(rnd(&r->rng) % 1000);
    return rnd(&r->rng) % 3 ? a : -a;
}

static int rnd_entity(struct run *r)
{
    uint64_t x = rnd(&r->rng) % (2 * NENTS);
    return x < NENTS ? (int)x : -1;
}

/* A batch of 2 to 5 lines, each judged on its own (txstats_add_batch_ex). */
static void add_batch(struct run *r)
{
    txstats_input_t in[5];
    unsigned char names[5][TXSTATS_MAX_ENTITY_BYTES];
    int results[5];
    size_t n = 2 + rnd(&r->rng) % 4, stored = 99, want_stored = 0;
    for (size_t i = 0; i < n; i++) {
        int ent = rnd_entity(r);
        size_t len = ent >= 0 ? ent_name(ent, names[i]) : 0;
        in[i] = (txstats_input_t){amount_of(r), near_ts(r), len ? names[i] : NULL, len, NULL, 0};
    }
    bool plain = rnd(&r->rng) % 2; /* txstats_add_batch(): the same lines without entities */
    txstats_tx_t tx[5];
    for (size_t i = 0; i < n; i++) {
        tx[i] = (txstats_tx_t){in[i].amount, in[i].timestamp_ms};
        in[i].entity_len = plain ? 0 : in[i].entity_len;
        in[i].entity = plain ? NULL : in[i].entity;
    }
    int rc = plain ? txstats_add_batch(r->t, tx, n, results, &stored)
                   : txstats_add_batch_ex(r->t, in, n, results, NULL, &stored);
    if (r->oom && rc == TXSTATS_ENOMEM)
        return; /* the batch's scratch: nothing stored */
    assert_int_equal(rc, TXSTATS_OK);
    for (size_t i = 0; i < n; i++) {
        check_rc(r, results[i], in[i].amount, in[i].timestamp_ms);
        if (results[i] == TXSTATS_OK) {
            em_add(&r->s.m, names[i], in[i].entity_len, in[i].amount, in[i].timestamp_ms);
            want_stored++;
        }
    }
    assert_int_equal(stored, want_stored);
}

/* 0 to 3 single adds, now and then a batch. */
static void random_adds(struct run *r)
{
    int n = (int)(rnd(&r->rng) % 4);
    for (int i = 0; i < n; i++)
        add_one(r, amount_of(r), near_ts(r), rnd_entity(r));
    if (rnd(&r->rng) % 8 == 0)
        add_batch(r);
}

/* ---- 1. Every millisecond edge of small spans ----------------------------------------------- */

struct edge_case {
    const char *name;
    int64_t spans[TXSTATS_MAX_SPANS];
    unsigned n;
    int64_t skew;
    unsigned shards;
    size_t retained;
    int64_t start;
};

static const struct edge_case EDGES[] = {
    {"unsorted, no skew, one shard", {5, 17, 1, 64, 100}, 5, 0, 1, DEF, T0 - T0 % NODE2 - 90},
    {"skew 3, two shards, before 1970", {5, 17, 1, 64, 100}, 5, 3, 2, DEF, -2 * NODE2 - 40},
    {"skew 70, three shards, across 0", {5, 17, 1, 64, 100}, 5, 70, 3, DEF, -1500},
    {"longest first, skew 3, retention binds", {100, 64, 1, 17, 5}, 5, 3, 2, 40, T0},
    {"one and two ms, skew 1", {2, 1}, 2, 1, 1, DEF, 5 * NODE1 - 3},
    {"eight spans, one shard", {1, 2, 3, 63, 64, 65, 7, 100}, 8, 0, 1, DEF, NODE2 * 9 - 1},
    {"near the clock's lower limit", {5, 17, 1, 64, 100}, 5, 3, 2, DEF, -(INT64_C(1) << 52) + 200},
};

/* The clock's next move: mostly 1 ms, now and then a jump across the index's boundaries, the
 * ring of the small spans (4 x 262,144 ms), a span, or far. */
static int64_t next_move(struct run *r)
{
    static const int64_t jumps[] = {
        2,      63,     64,     65,      4095,    4096,    4097,
        262143, 262144, 262145, 1048575, 1048576, 1048577, INT64_C(1) << 40};
    const size_t nj = sizeof(jumps) / sizeof(jumps[0]);
    if (rnd(&r->rng) % 40)
        return 1;
    uint64_t k = rnd(&r->rng) % (nj + 2);
    if (k < nj)
        return jumps[k];
    return r->s.spans[rnd(&r->rng) % r->s.n] + (int64_t)(k - nj); /* a span, or it + 1 */
}

static void run_edges(const struct edge_case *c, int steps, uint64_t seed)
{
    struct run r;
    run_start(&r, c->name, c->spans, c->n, c->skew, c->shards, c->retained, c->start);
    r.rng = seed;
    add_one(&r, 1, INT64_MIN, 0); /* any int64 timestamp is judged, none overflows */
    add_one(&r, 2, INT64_MAX, -1);
    add_one(&r, 3, r.clk.now - (INT64_C(1) << 53), 1);
    sm_assert_all(r.t, &r.s, r.clk.now, c->name);
    for (int i = 0; i < steps; i++) {
        r.clk.now += next_move(&r);
        if (i % 2) /* the queries alone move every span */
            sm_assert_all(r.t, &r.s, r.clk.now, c->name);
        random_adds(&r);
        if (rnd(&r.rng) % 700 == 0) { /* a clear empties every span */
            assert_int_equal(txstats_clear_ex(r.t), TXSTATS_OK);
            em_empty(&r.s.m);
        }
        sm_prune(&r.s, r.clk.now);
        sm_assert_all(r.t, &r.s, r.clk.now, c->name);
    }
    run_end(&r);
}

static void test_small_spans_every_ms(void **state)
{
    for (size_t i = 0; i < sizeof(EDGES) / sizeof(EDGES[0]); i++)
        run_edges(&EDGES[i], EDGE_STEPS, 2100 + i);
}

/* Allocations failing at random (1 in `rate` once armed): an add that gets TXSTATS_ENOMEM
 * records nothing in any span (a page, a node or a cell half made is undone), and the rest goes
 * on as in the model. */
struct failing {
    uint64_t rng;
    unsigned rate; /* 0: never fail */
    long live;
};

static void *failing_alloc(size_t size, void *ud)
{
    struct failing *f = ud;
    if (f->rate && rnd(&f->rng) % f->rate == 0)
        return NULL;
    f->live++;
    return malloc(size);
}

static void failing_free(void *p, void *ud)
{
    if (p)
        ((struct failing *)ud)->live--;
    free(p);
}

static void test_small_spans_out_of_memory(void **state)
{
    const struct edge_case *c = &EDGES[1]; /* skew 3, two shards */
    struct failing f = {2150, 0, 0};
    struct run r;
    txstats_config_t cfg;
    run_start(&r, "allocations failing", c->spans, c->n, c->skew, c->shards, DEF, c->start);
    txstats_destroy(r.t);
    cfg = r.cfg;
    cfg.shards = c->shards;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &r.clk;
    cfg.alloc = failing_alloc;
    cfg.free = failing_free;
    cfg.alloc_ud = &f;
    cfg.max_entities = 1000;
    assert_int_equal(txstats_create(&r.t, &cfg), TXSTATS_OK);
    r.rng = 2151;
    r.oom = true;
    for (int i = 0; i < EDGE_STEPS / 2; i++) {
        r.clk.now += next_move(&r);
        f.rate = i % 100 < 50 ? 5 : 0; /* failing half the time, in runs */
        random_adds(&r);
        f.rate = 0;
        sm_prune(&r.s, r.clk.now);
        sm_assert_all(r.t, &r.s, r.clk.now, r.name);
    }
    run_end(&r);
    assert_int_equal(f.live, 0);
}

/* ---- 2. Sampled edges of long spans --------------------------------------------------------- */

struct long_case {
    const char *name;
    int64_t spans[TXSTATS_MAX_SPANS];
    unsigned n;
    int64_t skew;
    unsigned shards;
    int64_t start;
};

static const struct long_case LONGS[] = {
    {"1 min, 5 min, 1 h, 24 h", {MINUTE, 5 * MINUTE, HOUR, DAY}, 4, 0, 2, T0},
    {"24 h first, skew 1 s, across 1970",
     {DAY, MINUTE, HOUR, 5 * MINUTE},
     4,
     1000,
     3,
     12 * HOUR - 777},
    {"31 days, before 1970", {TXSTATS_MAX_SPAN_MS - 5000, HOUR, DAY}, 3, 5000, 2, -T0},
};

#define LONG_TX     (1200 / SCALE)
#define LONG_SAMPLE (40 / SCALE)

/* Timestamps on the index's boundaries (multiples of 64, 4096, 262144 ms, +-1) inside the
 * window, and the window's own edges. */
static void add_boundaries(struct run *r)
{
    static const int64_t units[] = {64, NODE1, NODE2};
    int64_t now = r->clk.now, longest = sm_longest(&r->s);
    for (int i = 0; i < 24; i++) {
        int64_t u = units[i % 3], at = rnd_in(&r->rng, now - longest + 2, now);
        at -= ((at % u) + u) % u; /* floor to a multiple, negative ones too */
        for (int64_t d = -1; d <= 1; d++)
            add_one(r, amount_of(r), at + d, rnd_entity(r));
    }
    add_one(r, 7, now - longest + 1, 0); /* the oldest stored */
    add_one(r, 8, now - longest, 1);     /* expired */
    add_one(r, 9, now + r->s.skew, 2);   /* the latest accepted */
    add_one(r, 10, now + r->s.skew + 1, 3);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Clocks to check at, ascending: the edges of sampled transactions in every span (+-1 ms), the
 * moment future ones arrive, the index's boundaries after the start; one past everything. */
static int64_t *sample_clocks(struct run *r, size_t *n)
{
    int64_t start = r->clk.now, *v = malloc(4096 * sizeof(*v));
    size_t k = 0;
    assert_non_null(v);
    for (int i = 0; i < LONG_SAMPLE; i++) {
        int64_t ts = r->s.m.tx[rnd(&r->rng) % r->s.m.n].ts;
        for (unsigned s = 0; s < r->s.n; s++)
            for (int64_t d = -1; d <= 1; d++)
                v[k++] = ts + r->s.spans[s] + d;
        v[k++] = ts - 1;
        v[k++] = ts;
    }
    for (int64_t u = 64; u <= NODE2; u *= 64)
        for (int64_t m = 1; m <= 3; m++)
            for (int64_t d = -1; d <= 1; d++)
                v[k++] = start - ((start % u) + u) % u + m * u + d;
    v[k++] = start + sm_longest(&r->s) + r->s.skew + 1;
    qsort(v, k, sizeof(*v), cmp_i64);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (v[i] >= start && (w == 0 || v[i] != v[w - 1]))
            v[w++] = v[i];
    *n = w;
    return v;
}

static void run_long(const struct long_case *c, uint64_t seed)
{
    struct run r;
    size_t n;
    run_start(&r, c->name, c->spans, c->n, c->skew, c->shards, DEF, c->start);
    r.rng = seed;
    int64_t longest = sm_longest(&r.s);
    for (int i = 0; i < LONG_TX; i++)
        add_one(&r, amount_of(&r), rnd_in(&r.rng, c->start - longest + 1, c->start + c->skew),
                rnd_entity(&r));
    add_boundaries(&r);
    sm_assert_all(r.t, &r.s, r.clk.now, c->name);
    int64_t *clocks = sample_clocks(&r, &n);
    for (size_t i = 0; i < n; i++) {
        r.clk.now = clocks[i];
        if (i % 4 == 0)
            random_adds(&r);
        sm_prune(&r.s, r.clk.now);
        sm_assert_all(r.t, &r.s, r.clk.now, c->name);
    }
    print_message("%s: %zu clocks checked\n", c->name, n);
    free(clocks);
    run_end(&r);
}

static void test_long_spans_sampled(void **state)
{
    for (size_t i = 0; i < sizeof(LONGS) / sizeof(LONGS[0]); i++)
        run_long(&LONGS[i], 2200 + i);
}

/* ---- 3. Snapshots and the journal with several spans ---------------------------------------- */

static const int64_t P_SPANS[] = {1000, MINUTE, 250, 5000};
#define P_N    4
#define P_SKEW 50

/* n adds spread over the longest span, the clock moving 0 to 40 ms between them. The model keeps
 * every transaction accepted (what the journal holds). */
static void fill(struct run *r, int n)
{
    for (int i = 0; i < n; i++) {
        r->clk.now += (int64_t)(rnd(&r->rng) % 41);
        int64_t ts = rnd(&r->rng) % 3 ? near_ts(r) : r->clk.now - (int64_t)(rnd(&r->rng) % 1500);
        add_one(r, amount_of(r), ts, rnd_entity(r));
    }
}

/* A second instance over the same model: the first's contents, as loaded or recovered. */
static void run_twin(struct run *to, const struct run *from, const int64_t *spans, unsigned n,
                     int64_t skew, unsigned shards, const char *name)
{
    run_start(to, name, spans, n, skew, shards, DEF, from->clk.now);
    for (size_t i = 0; i < from->s.m.n; i++) {
        const struct em_tx *x = &from->s.m.tx[i];
        em_add(&to->s.m, x->ent, x->len, x->amount, x->ts);
    }
    to->s.exact_order = 0; /* a millisecond's order follows the saver's shards */
}

/* Later clocks: the edges (+-1 ms) of the transactions at `from` in each span, the skew's, and
 * past everything. */
static void check_later(struct run *r, int64_t from)
{
    int64_t steps[] = {1, 49, 50, 51, 249, 250, 999, 1000, 1001, 4999, 5000, 59999, 60000, 60001};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (from + steps[i] <= r->clk.now)
            continue;
        r->clk.now = from + steps[i];
        sm_prune(&r->s, r->clk.now);
        sm_assert_all(r->t, &r->s, r->clk.now, r->name);
    }
}

/* Saved as JSON and as binary, loaded by an instance with the same spans (3 shards, not 2):
 * every span the same, now and as the clock moves on (future transactions arrive in both). */
static void test_snapshot_same_spans(void **state)
{
    char path[128];
    struct run a, b;
    for (int bin = 0; bin <= 1; bin++) {
        run_start(&a, "saved", P_SPANS, P_N, P_SKEW, 2, DEF, T0);
        a.rng = 2300 + (uint64_t)bin;
        fill(&a, 3000 / SCALE);
        sm_prune(&a.s, a.clk.now); /* the model of the file */
        snprintf(path, sizeof(path), "%s/same.%s", tmp, bin ? "bin" : "json");
        assert_int_equal(bin ? txstats_save_bin(a.t, path) : txstats_save(a.t, path), TXSTATS_OK);
        run_twin(&b, &a, P_SPANS, P_N, P_SKEW, 3, bin ? "loaded binary" : "loaded JSON");
        txstats_load_info_t info;
        assert_int_equal(txstats_load_ex(b.t, path, &info), TXSTATS_OK);
        assert_int_equal(info.expired, 0);
        assert_int_equal(info.approximate, 0);
        sm_assert_all(a.t, &a.s, a.clk.now, a.name);
        sm_assert_all(b.t, &b.s, b.clk.now, b.name);
        int64_t at = b.clk.now;
        check_later(&b, at);
        check_later(&a, at);
        run_end(&a);
        run_end(&b);
    }
}

/* A snapshot of spans {1 s, 60 s, 250 ms, 5 s} with skew 50 loaded by instances with other
 * spans, at the clock it was saved at or later. What is expected: the loaded instance holds the
 * file's transactions that it would store itself at its clock (now - its longest span < ts <=
 * now + its skew); the others are dropped (info.expired counts those too old). Each of its spans
 * then answers as the model of exactly those: a span longer than the saver's longest holds only
 * what the saver held (nothing older was in the file). */
struct other_case {
    const char *name;
    int64_t spans[TXSTATS_MAX_SPANS];
    unsigned n;
    int64_t skew;
    int64_t later; /* the loader's clock, after the saver's */
};

static const struct other_case OTHERS[] = {
    {"fewer: one span (the saver's default)", {1000}, 1, P_SKEW, 0},
    {"more and longer", {250, 1000, 5000, MINUTE, 2 * MINUTE, 7}, 6, P_SKEW, 0},
    {"other, a shorter longest", {300, 2000}, 2, P_SKEW, 0},
    {"other, a shorter longest, later", {2000, 300}, 2, P_SKEW, 777},
    {"the same, no skew: future ones dropped", {1000, MINUTE, 250, 5000}, 4, 0, 0},
    {"the same, later than the saver's longest", {1000, MINUTE, 250, 5000}, 4, P_SKEW, MINUTE},
    {"one much longer, later", {DAY}, 1, 0, 30 * MINUTE},
    {"the same, an earlier clock: ahead ones past the skew dropped",
     {1000, MINUTE, 250, 5000},
     4,
     P_SKEW,
     -30},
};

static uint64_t count_at_or_before(const struct sm *s, int64_t ts)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->m.n; i++)
        n += s->m.tx[i].ts <= ts;
    return n;
}

static void load_other(const struct other_case *c, const struct run *a, const char *path)
{
    struct run b;
    txstats_load_info_t info;
    run_twin(&b, a, c->spans, c->n, c->skew, 1 + (unsigned)(c->n % 3), c->name);
    b.clk.now += c->later;
    uint64_t old = count_at_or_before(&b.s, b.clk.now - sm_longest(&b.s));
    sm_keep_for(&b.s, b.clk.now - sm_longest(&b.s), b.clk.now + b.s.skew);
    assert_int_equal(txstats_load_ex(b.t, path, &info), TXSTATS_OK);
    if (info.expired < old)
        fail_msg("%s: %llu expired, want at least %llu", c->name, (unsigned long long)info.expired,
                 (unsigned long long)old);
    sm_assert_all(b.t, &b.s, b.clk.now, c->name);
    check_later(&b, b.clk.now);
    run_end(&b);
}

static void test_snapshot_other_spans(void **state)
{
    char path[128];
    struct run a;
    for (int bin = 0; bin <= 1; bin++) {
        run_start(&a, "saved", P_SPANS, P_N, P_SKEW, 2, DEF, -T0);
        a.rng = 2400 + (uint64_t)bin;
        fill(&a, 2500 / SCALE);
        sm_prune(&a.s, a.clk.now); /* the model of the file */
        snprintf(path, sizeof(path), "%s/other.%s", tmp, bin ? "bin" : "json");
        assert_int_equal(bin ? txstats_save_bin(a.t, path) : txstats_save(a.t, path), TXSTATS_OK);
        for (size_t i = 0; i < sizeof(OTHERS) / sizeof(OTHERS[0]); i++)
            load_other(&OTHERS[i], &a, path);
        run_end(&a);
    }
}

/* An instance on the model's spans, recovering directory `dir` at the clock `now`. */
static void open_run(struct run *r, const char *name, const int64_t *spans, unsigned n,
                     unsigned shards, int64_t now, const char *dir, txstats_recovery_t *rep)
{
    run_start(r, name, spans, n, P_SKEW, shards, DEF, now);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.segment_bytes = 16384; /* rotations too */
    int rc = txstats_open_dir(r->t, dir, &d, rep);
    if (rc != TXSTATS_OK)
        fail_msg("%s: txstats_open_dir %d", name, rc);
}

/* The model of `from`, what an instance with `to`'s spans keeps of it at to's clock. */
static void adopt_model(struct run *to, const struct run *from)
{
    for (size_t i = 0; i < from->s.m.n; i++) {
        const struct em_tx *x = &from->s.m.tx[i];
        em_add(&to->s.m, x->ent, x->len, x->amount, x->ts);
    }
    to->s.exact_order = 0; /* a millisecond's order follows the journal's streams */
    sm_keep_for(&to->s, to->clk.now - sm_longest(&to->s), to->clk.now + to->s.skew);
}

/* Journal and checkpoints with several spans: adds, a checkpoint, more adds (journal only), then
 * recovery with the same spans (other shard counts); then with shorter spans at a later clock,
 * which keep only what they hold, and checkpoint that when they open; more adds, journaled; then
 * the first spans again. What is expected: what the shorter spans dropped when they opened stays
 * dropped (their checkpoint replaced the journal); what they journaled after it is all back where
 * the longer spans hold it, even what the shorter spans had expired since (the journal is
 * replayed against the spans of the instance that opens it). */
static void test_journal_several_spans(void **state)
{
    char dir[128];
    static const int64_t shorter[] = {300, 2000};
    struct run a, b;
    txstats_recovery_t rep;
    snprintf(dir, sizeof(dir), "%s/journal", tmp);
    open_run(&a, "journaled", P_SPANS, P_N, 2, T0, dir, NULL);
    a.rng = 2500;
    fill(&a, 1500 / SCALE);
    assert_int_equal(txstats_checkpoint(a.t), TXSTATS_OK);
    fill(&a, 1200 / SCALE);
    txstats_destroy(a.t); /* no checkpoint: the journal holds the rest */
    a.t = NULL;
    for (unsigned shards = 1; shards <= 3; shards += 2) {
        open_run(&b, "recovered, same spans", P_SPANS, P_N, shards, a.clk.now, dir, &rep);
        assert_true(shards > 1 || rep.replayed > 0); /* the first opening checkpoints */
        adopt_model(&b, &a);
        sm_assert_all(b.t, &b.s, b.clk.now, b.name);
        run_end(&b);
    }
    open_run(&b, "recovered, shorter spans", shorter, 2, 2, a.clk.now + 100, dir, NULL);
    adopt_model(&b, &a);
    sm_assert_all(b.t, &b.s, b.clk.now, b.name);
    fill(&b, 300 / SCALE); /* journaled with the shorter spans */
    int64_t at = b.clk.now;
    txstats_destroy(b.t);
    b.t = NULL;
    sm_free(&a.s);
    open_run(&a, "the first spans again", P_SPANS, P_N, 3, at, dir, NULL);
    adopt_model(&a, &b);
    sm_assert_all(a.t, &a.s, a.clk.now, a.name);
    check_later(&a, a.clk.now);
    run_end(&a);
    sm_free(&b.s);
}

/* A snapshot of spans {1 s, 60 s, 250 ms, 5 s} loaded into a journaled instance of spans {5 s,
 * 250 ms, 1 s} that held other transactions: the load replaces them, durably (a journaled clear
 * and a checkpoint); the adds after it are journaled; recovery gives the loaded contents (what
 * the loader's spans keep) and the later adds, in every span. */
static void test_load_into_journaled(void **state)
{
    static const int64_t spans[] = {5000, 250, 1000};
    char dir[128], path[128];
    struct run a, b;
    snprintf(dir, sizeof(dir), "%s/loaded", tmp);
    snprintf(path, sizeof(path), "%s/to-load.bin", tmp);
    run_start(&a, "saved", P_SPANS, P_N, P_SKEW, 2, DEF, T0);
    a.rng = 2550;
    fill(&a, 1500 / SCALE);
    sm_prune(&a.s, a.clk.now);
    assert_int_equal(txstats_save_bin(a.t, path), TXSTATS_OK);
    open_run(&b, "journaled, then loaded", spans, 3, 2, T0, dir, NULL); /* a's clock is later */
    b.rng = 2551;
    fill(&b, 300 / SCALE); /* replaced by the load */
    em_empty(&b.s.m);
    assert_true(b.clk.now < a.clk.now);
    b.clk.now = a.clk.now + 30;
    adopt_model(&b, &a);
    assert_int_equal(txstats_load(b.t, path), TXSTATS_OK);
    sm_assert_all(b.t, &b.s, b.clk.now, b.name);
    fill(&b, 600 / SCALE);
    int64_t at = b.clk.now;
    txstats_destroy(b.t); /* as a crash: no checkpoint since the load's */
    b.t = NULL;
    run_end(&a);
    open_run(&a, "recovered after the load", spans, 3, 3, at, dir, NULL);
    adopt_model(&a, &b);
    sm_assert_all(a.t, &a.s, a.clk.now, a.name);
    check_later(&a, a.clk.now);
    run_end(&a);
    sm_free(&b.s);
}

/* ---- 4. Single-span files of libtxstats 0.1 and 0.2 in a multi-span instance ---------------- */

/* tests/data: v1 files (test_legacy_files.c tells how they were made: OLD_T0, window 60 s), v2
 * files (tests/data/gen_v2.c: T0, window 60 s, max_retained 20). */
#define OLD_T0 INT64_C(1800000000000)

static const int64_t L_SPANS[] = {30000, MINUTE, 1000, HOUR, 10000};
#define L_N 5

/* Transaction i of gen_v2.c. */
static void v2_tx(int i, txstats_amount_t *a, int64_t *ts)
{
    *a = (txstats_amount_t)((i * 37) % 200 - 50) * 10000 + i;
    *ts = T0 - (i * 977) % 59000;
}

static void copy_data(const char *name, char *dst, size_t len, const char *as)
{
    char cmd[1024];
    snprintf(dst, len, "%s/%s", tmp, as);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s/%s' '%s'", dst, TXSTATS_DATA, name, dst);
    assert_int_equal(system(cmd), 0);
}

/* A v2 file (snapshot or directory) whose transactions i in [from, to) gen_v2.c made: every span
 * against their model, at T0 and at sampled edges after; the listing a subset (the file kept 20
 * amounts of them for listing). */
static void v2_case(const char *name, int from, int to, bool dir)
{
    struct run r;
    char path[256];
    size_t n;
    run_start(&r, name, L_SPANS, L_N, 0, 3, DEF, T0);
    r.rng = 2600 + (uint64_t)from;
    r.s.all_kept = 0;
    for (int i = from; i < to; i++) {
        txstats_amount_t a;
        int64_t ts;
        v2_tx(i, &a, &ts);
        em_add(&r.s.m, NULL, 0, a, ts);
    }
    if (dir) {
        copy_data(name, path, sizeof(path), "v2-dir-copy");
        assert_int_equal(txstats_open_dir(r.t, path, NULL, NULL), TXSTATS_OK);
    } else {
        snprintf(path, sizeof(path), "%s/%s", TXSTATS_DATA, name);
        assert_int_equal(txstats_load(r.t, path), TXSTATS_OK);
    }
    sm_assert_all(r.t, &r.s, r.clk.now, name);
    int64_t *clocks = sample_clocks(&r, &n);
    for (size_t i = 0; i < n; i++) {
        r.clk.now = clocks[i];
        sm_assert_all(r.t, &r.s, r.clk.now, name);
    }
    free(clocks);
    run_end(&r);
}

static void test_v2_files_in_spans(void **state)
{
    v2_case("v2-snapshot.json", 0, 60, false);
    v2_case("v2-snapshot.bin", 0, 60, false);
    v2_case("v2-dir", 100, 155, true);
}

/* Recorded with libtxstats 17190d1 (test_legacy_files.c): count, sum (low 64 bits; high 0),
 * min, max, retained. At OLD_T0 + 30 s the 60-second window holds what a 30-second span holds
 * at OLD_T0 (nothing is later than OLD_T0). */
struct recorded {
    uint64_t count, sum_lo;
    txstats_amount_t min, max;
    uint64_t retained; /* at least this many: the old instance kept 50 at most; the journal's
                          records replayed into an instance without that cap may be kept too */
};
static const struct recorded SNAP = {300, UINT64_C(66439616965), -43261182, 448700556, 50};
static const struct recorded SNAP_T1 = {144, UINT64_C(30566152034), -42051323, 447810000, 25};
static const struct recorded JDIR = {260, UINT64_C(52660598758), -49950498, 446477001, 50};

static void assert_recorded(txstats_t *t, unsigned span, const struct recorded *e, const char *what)
{
    txstats_summary_t s;
    txstats_list_info_t info;
    assert_int_equal(txstats_stats_span(t, span, &s), TXSTATS_OK);
    assert_int_equal(txstats_get_span(t, span, NULL, 0, &info),
                     e->retained ? TXSTATS_ENOBUFS : TXSTATS_OK);
    if (s.count != e->count || s.sum_hi != 0 || s.sum_lo != e->sum_lo || s.min != e->min ||
        s.max != e->max || info.retained < e->retained || info.retained > s.count ||
        info.in_window != e->count)
        fail_msg("%s span %u: count %llu sum %lld:%llu min %lld max %lld retained %llu; want %llu "
                 "%llu %lld %lld %llu",
                 what, span, (unsigned long long)s.count, (long long)s.sum_hi,
                 (unsigned long long)s.sum_lo, (long long)s.min, (long long)s.max,
                 (unsigned long long)info.retained, (unsigned long long)e->count,
                 (unsigned long long)e->sum_lo, (long long)e->min, (long long)e->max,
                 (unsigned long long)e->retained);
}

/* Span `span` of `t` answers as the single-span instance `one` (window = that span) that loaded
 * the same file: statistics, listing (sorted: a millisecond's order is the shards'), quantiles. */
static void assert_span_as_single(txstats_t *t, unsigned span, txstats_t *one, const char *what)
{
    static const uint32_t q[5] = {0, 250000000, 500000000, 900000000, TXSTATS_Q_SCALE};
    txstats_summary_t a, b;
    txstats_amount_t qa[5], qb[5];
    txstats_tx_t la[400], lb[400];
    txstats_list_info_t ia, ib;
    uint64_t ca, cb;
    assert_int_equal(txstats_stats_span(t, span, &a), TXSTATS_OK);
    assert_int_equal(txstats_stats(one, &b), TXSTATS_OK);
    em_assert_summary(&a, &b, what, a.now_ms + T0);
    assert_int_equal(txstats_get_span(t, span, la, 400, &ia), TXSTATS_OK);
    assert_int_equal(txstats_get_ex(one, lb, 400, &ib), TXSTATS_OK);
    assert_int_equal(ia.in_window, ib.in_window);
    assert_int_equal(ia.retained, ib.retained);
    qsort(la, ia.written, sizeof(la[0]), sm_cmp_tx);
    qsort(lb, ib.written, sizeof(lb[0]), sm_cmp_tx);
    assert_memory_equal(la, lb, ia.written * sizeof(la[0]));
    assert_int_equal(txstats_quantiles_span(t, span, q, 5, qa, &ca), TXSTATS_OK);
    assert_int_equal(txstats_quantiles(one, q, 5, qb, &cb), TXSTATS_OK);
    assert_int_equal(ca, cb);
    assert_memory_equal(qa, qb, sizeof(qa));
}

/* A v1 file into spans {30 s, 60 s, 1 s, 1 h, 10 s} (3 shards): each span as a single-span
 * instance of that window loading it, at OLD_T0 and 30 s later; the recorded answers where
 * they apply. `dir`: a directory (each instance opens its own copy). */
static txstats_t *v1_open(const char *name, bool dir, const int64_t *spans, unsigned n,
                          struct fake_clock *clk, const char *as)
{
    char path[256];
    txstats_t *t = sm_instance(clk, OLD_T0, spans, n, 0, n == 1 ? 2 : 3, DEF);
    if (dir) {
        copy_data(name, path, sizeof(path), as);
        assert_int_equal(txstats_open_dir(t, path, NULL, NULL), TXSTATS_OK);
    } else {
        snprintf(path, sizeof(path), "%s/%s", TXSTATS_DATA, name);
        assert_int_equal(txstats_load(t, path), TXSTATS_OK);
    }
    return t;
}

static void v1_case(const char *name, bool dir, const struct recorded *at0,
                    const struct recorded *at1)
{
    struct fake_clock clk, one_clk[L_N];
    txstats_t *t = v1_open(name, dir, L_SPANS, L_N, &clk, "v1-multi"), *one[L_N];
    char as[32], what[128];
    for (unsigned s = 0; s < L_N; s++) {
        snprintf(as, sizeof(as), "v1-one-%u", s);
        one[s] = v1_open(name, dir, &L_SPANS[s], 1, &one_clk[s], as);
    }
    assert_recorded(t, 1, at0, name);
    if (at1)
        assert_recorded(t, 0, at1, name); /* 30 s at OLD_T0 */
    for (int64_t later = 0; later <= 30000; later += 30000) {
        clk.now = OLD_T0 + later;
        for (unsigned s = 0; s < L_N; s++) {
            one_clk[s].now = clk.now;
            snprintf(what, sizeof(what), "%s, span %u, %+lld ms", name, s, (long long)later);
            assert_span_as_single(t, s, one[s], what);
        }
    }
    if (at1)
        assert_recorded(t, 1, at1, name); /* 60 s at OLD_T0 + 30 s */
    for (unsigned s = 0; s < L_N; s++)
        txstats_destroy(one[s]);
    txstats_destroy(t);
}

static void test_v1_files_in_spans(void **state)
{
    v1_case("v1-snapshot.json", false, &SNAP, &SNAP_T1);
    v1_case("v1-snapshot.bin", false, &SNAP, &SNAP_T1);
    v1_case("v1-dir", true, &JDIR, NULL);
}

/* ---- 5. Configuration ------------------------------------------------------------------------ */

#define MAXS TXSTATS_MAX_SPAN_MS

/* spans_ms NULL: `nspans` ignored, one span of window_ms (the header: "NULL: one span,
 * window_ms"; nspans is "entries of spans_ms"). spans_ms set: window_ms ignored ("replaces"). */
struct config_case {
    const char *name;
    bool null_spans;
    int64_t spans[TXSTATS_MAX_SPANS + 1];
    unsigned n;
    int64_t window_ms, skew;
    int rc;
    unsigned want_n; /* spans reported on success */
};

static const struct config_case CONFIGS[] = {
    {"one span", false, {1000}, 1, 60000, 0, TXSTATS_OK, 1},
    {"nspans 0", false, {1000}, 0, 60000, 0, TXSTATS_EINVAL, 0},
    {"nspans 9", false, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 60000, 0, TXSTATS_EINVAL, 0},
    {"nspans 8", false, {8, 7, 6, 5, 4, 3, 2, 1}, 8, 60000, 0, TXSTATS_OK, 8},
    {"two equal", false, {5, 5}, 2, 60000, 0, TXSTATS_EINVAL, 0},
    {"equal, apart", false, {1, 2, 3, 1}, 4, 60000, 0, TXSTATS_EINVAL, 0},
    {"zero", false, {5, 0}, 2, 60000, 0, TXSTATS_EINVAL, 0},
    {"zero first", false, {0, 5}, 2, 60000, 0, TXSTATS_EINVAL, 0},
    {"negative", false, {-1}, 1, 60000, 0, TXSTATS_EINVAL, 0},
    {"INT64_MIN", false, {5, INT64_MIN}, 2, 60000, 0, TXSTATS_EINVAL, 0},
    {"INT64_MAX", false, {INT64_MAX}, 1, 60000, 0, TXSTATS_EINVAL, 0},
    {"the longest allowed", false, {1, MAXS}, 2, 60000, 0, TXSTATS_OK, 2},
    {"past it", false, {1, MAXS + 1}, 2, 60000, 0, TXSTATS_EINVAL, 0},
    {"with the skew, exactly", false, {MAXS - 10, 5}, 2, 60000, 10, TXSTATS_OK, 2},
    {"with the skew, 1 ms over", false, {MAXS - 10, 5}, 2, 60000, 11, TXSTATS_EINVAL, 0},
    {"a short span plus a skew past it", false, {5}, 1, 60000, MAXS, TXSTATS_EINVAL, 0},
    {"skew INT64_MAX", false, {5}, 1, 60000, INT64_MAX, TXSTATS_EINVAL, 0},
    {"negative skew", false, {5, 6}, 2, 60000, -1, TXSTATS_EINVAL, 0},
    {"window_ms 0 ignored with spans", false, {5, 6}, 2, 0, 0, TXSTATS_OK, 2},
    {"window_ms past the limit ignored", false, {5, 6}, 2, MAXS + 1, 0, TXSTATS_OK, 2},
    {"spans NULL, nspans 3: one span", true, {0}, 3, 1000, 0, TXSTATS_OK, 1},
    {"spans NULL, nspans 0: one span", true, {0}, 0, 1000, 0, TXSTATS_OK, 1},
    {"spans NULL, nspans 9: one span", true, {0}, 9, 1000, 0, TXSTATS_OK, 1},
    {"spans NULL, window 0", true, {0}, 2, 0, 0, TXSTATS_EINVAL, 0},
};

static void config_of(const struct config_case *c, txstats_config_t *cfg, int64_t *copy)
{
    txstats_config_init(cfg);
    memcpy(copy, c->spans, sizeof(c->spans));
    cfg->spans_ms = c->null_spans ? NULL : copy;
    cfg->nspans = c->n;
    cfg->window_ms = c->window_ms;
    cfg->max_skew_ms = c->skew;
    cfg->shards = 1;
}

/* What a created instance reports: its spans in configuration order, not the caller's array. */
static void assert_spans_reported(txstats_t *t, const struct config_case *c, int64_t *copy)
{
    int64_t got[TXSTATS_MAX_SPANS + 1];
    unsigned n = 99;
    for (unsigned i = 0; i < c->want_n; i++)
        copy[i] = -7; /* read at creation, not kept */
    assert_int_equal(txstats_spans(t, got, TXSTATS_MAX_SPANS, &n), TXSTATS_OK);
    assert_int_equal(n, c->want_n);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(got[i], c->null_spans ? c->window_ms : c->spans[i]);
    assert_int_equal(txstats_spans(t, NULL, 0, &n), c->want_n ? TXSTATS_ENOBUFS : TXSTATS_OK);
    assert_int_equal(n, c->want_n);
    if (n > 1) {
        got[0] = 0;
        assert_int_equal(txstats_spans(t, got, 1, &n), TXSTATS_ENOBUFS);
        assert_int_equal(got[0], c->spans[0]);
    }
    assert_int_equal(txstats_spans(t, NULL, 1, &n), TXSTATS_EINVAL);
    assert_int_equal(txstats_spans(t, got, 1, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_spans(NULL, got, 1, &n), TXSTATS_EINVAL);
}

static void test_config_table(void **state)
{
    for (size_t i = 0; i < sizeof(CONFIGS) / sizeof(CONFIGS[0]); i++) {
        const struct config_case *c = &CONFIGS[i];
        txstats_config_t cfg;
        int64_t copy[TXSTATS_MAX_SPANS + 1];
        txstats_t *t = (txstats_t *)&cfg;
        config_of(c, &cfg, copy);
        int rc = txstats_create(&t, &cfg);
        if (rc != c->rc)
            fail_msg("config \"%s\": txstats_create %d, want %d", c->name, rc, c->rc);
        if (rc != TXSTATS_OK) {
            assert_null(t);
            continue;
        }
        assert_spans_reported(t, c, copy);
        txstats_destroy(t);
    }
}

/* txstats_admit() with spans: a transaction is stored while inside the longest span, wherever it
 * is in the list, whichever span is the default; the skew as always. */
static void test_admit_with_spans(void **state)
{
    static const int64_t spans[] = {5, 100, 17};
    txstats_config_t cfg;
    const int64_t now = -3 * NODE2;
    txstats_config_init(&cfg);
    cfg.window_ms = 1; /* replaced by the spans */
    cfg.spans_ms = spans;
    cfg.nspans = 3;
    cfg.max_skew_ms = 3;
    assert_int_equal(txstats_admit(&cfg, 1, now - 100, now), TXSTATS_EXPIRED);
    assert_int_equal(txstats_admit(&cfg, 1, now - 99, now), TXSTATS_OK);
    assert_int_equal(txstats_admit(&cfg, 1, now - 5, now), TXSTATS_OK);
    assert_int_equal(txstats_admit(&cfg, 1, now + 3, now), TXSTATS_OK);
    assert_int_equal(txstats_admit(&cfg, 1, now + 4, now), TXSTATS_EFUTURE);
    assert_int_equal(txstats_admit(&cfg, TXSTATS_AMOUNT_LIMIT, now, now), TXSTATS_ERANGE);
    assert_int_equal(txstats_admit(&cfg, 1, INT64_MIN, INT64_MAX), TXSTATS_EXPIRED);
    assert_int_equal(txstats_admit(&cfg, 1, INT64_MAX, INT64_MIN), TXSTATS_EFUTURE);
    cfg.nspans = 0;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    static const int64_t nine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, bad[] = {0}, negative[] = {-5, -1};
    cfg.spans_ms = nine; /* nspans entries, as the header asks */
    cfg.nspans = TXSTATS_MAX_SPANS + 1;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    cfg.spans_ms = bad;
    cfg.nspans = 1;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    cfg.spans_ms = negative;
    cfg.nspans = 2;
    assert_int_equal(txstats_admit(&cfg, 1, now, now), TXSTATS_EINVAL);
    cfg.spans_ms = NULL; /* window_ms again */
    cfg.window_ms = 10;
    assert_int_equal(txstats_admit(&cfg, 1, now - 10, now), TXSTATS_EXPIRED);
    assert_int_equal(txstats_admit(&cfg, 1, now - 9, now), TXSTATS_OK);
}

/* Every _span function refuses a span past the configured ones. */
static void test_span_out_of_range(void **state)
{
    static const int64_t spans[] = {5, 100, 17};
    static const uint32_t q[1] = {0};
    struct fake_clock clk;
    txstats_t *t = sm_instance(&clk, T0, spans, 3, 0, 2, DEF);
    txstats_summary_t s;
    txstats_list_info_t info;
    txstats_amount_t out[1];
    txstats_top_entry_t top[1];
    txstats_dist_t *d;
    size_t n;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_add_entity(t, "e", 1, 5, T0), TXSTATS_OK);
    for (unsigned span = 2; span <= 4; span += 2) { /* 2 valid, 4 not; and UINT_MAX below */
        int want = span < 3 ? TXSTATS_OK : TXSTATS_EINVAL;
        assert_int_equal(txstats_stats_span(t, span, &s), want);
        assert_int_equal(txstats_get_span(t, span, NULL, 0, &info),
                         want == TXSTATS_OK ? TXSTATS_ENOBUFS : want);
        assert_int_equal(txstats_quantiles_span(t, span, q, 1, out, NULL), want);
        assert_int_equal(txstats_dist_collect_span(t, span, d), want);
        assert_int_equal(txstats_entity_stats_span(t, span, "e", 1, &s), want);
        assert_int_equal(txstats_top_span(t, span, TXSTATS_TOP_SUM, top, 1, &n), want);
    }
    assert_int_equal(txstats_stats_span(t, 3, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_stats_span(t, UINT32_MAX, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_stats_span(NULL, 0, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_stats_span(t, 0, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_get_span(t, 0, NULL, 1, &info), TXSTATS_EINVAL);
    assert_int_equal(txstats_get_span(t, 0, NULL, 0, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_dist_count(d), 1); /* collected once, by the valid span */
    txstats_dist_destroy(d);
    txstats_destroy(t);
}

/* Entities are active while the longest span (or the skew) holds one of theirs, whatever the
 * shorter spans hold: the cap counts them so. */
static void test_entity_cap_by_longest_span(void **state)
{
    static const int64_t spans[] = {5, 100};
    struct fake_clock clk = {T0};
    txstats_config_t cfg;
    txstats_t *t;
    txstats_summary_t s;
    txstats_entity_info_t info;
    txstats_top_entry_t top[3];
    size_t n;
    txstats_config_init(&cfg);
    cfg.spans_ms = spans;
    cfg.nspans = 2;
    cfg.shards = 1;
    cfg.max_entities = 2;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    assert_int_equal(txstats_add_entity(t, "A", 1, 10, T0 - 50), TXSTATS_OK);
    assert_int_equal(txstats_add_entity(t, "B", 1, 20, T0), TXSTATS_OK);
    assert_int_equal(txstats_entity_stats_span(t, 0, "A", 1, &s), TXSTATS_OK);
    assert_int_equal(s.count, 0);
    assert_int_equal(txstats_entity_stats_span(t, 1, "A", 1, &s), TXSTATS_OK);
    assert_int_equal(s.count, 1);
    assert_int_equal(txstats_top_span(t, 0, TXSTATS_TOP_SUM, top, 3, &n), TXSTATS_OK);
    assert_int_equal(n, 1); /* A is not ranked in the 5-ms span */
    assert_int_equal(txstats_top_span(t, 1, TXSTATS_TOP_SUM, top, 3, &n), TXSTATS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(txstats_add_entity(t, "C", 1, 30, T0), TXSTATS_ELIMIT);
    assert_int_equal(txstats_entity_info(t, &info), TXSTATS_OK);
    assert_int_equal(info.active, 2);
    clk.now = T0 + 49; /* A still in the longest span */
    assert_int_equal(txstats_add_entity(t, "C", 1, 30, T0 + 49), TXSTATS_ELIMIT);
    clk.now = T0 + 50; /* A has left it */
    assert_int_equal(txstats_add_entity(t, "C", 1, 30, T0 + 50), TXSTATS_OK);
    assert_int_equal(txstats_entity_stats_span(t, 1, "A", 1, &s), TXSTATS_OK);
    assert_int_equal(s.count, 0);
    assert_int_equal(txstats_entity_info(t, &info), TXSTATS_OK);
    assert_int_equal(info.active, 2);
    assert_int_equal(info.refused, 2);
    txstats_destroy(t);
}

/* ---- 6. Memory follows the traffic ---------------------------------------------------------- */

/* A counting allocator: live bytes, and the most there were. */
struct counter {
    _Atomic int64_t live, peak;
};

#define HDR 16 /* keeps malloc's alignment */

static void *count_alloc(size_t size, void *ud)
{
    struct counter *c = ud;
    unsigned char *p = malloc(size + HDR);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof(size));
    int64_t now = atomic_fetch_add(&c->live, (int64_t)size) + (int64_t)size,
            peak = atomic_load(&c->peak);
    while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now))
        ;
    return p + HDR;
}

static void count_free(void *ptr, void *ud)
{
    struct counter *c = ud;
    size_t size;
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    memcpy(&size, p, sizeof(size));
    atomic_fetch_sub(&c->live, (int64_t)size);
    free(p);
}

static txstats_t *counted(struct counter *c, struct fake_clock *clk, const int64_t *spans,
                          unsigned n, unsigned shards, size_t retained)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    clk->now = T0 - T0 % NODE2; /* a round clock: the same layout every run */
    cfg.spans_ms = spans;
    cfg.nspans = n;
    cfg.shards = shards;
    cfg.max_retained = retained;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    cfg.alloc = count_alloc;
    cfg.free = count_free;
    cfg.alloc_ud = c;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    return t;
}

/* Bytes an idle instance of these spans holds. */
static int64_t idle_bytes(const int64_t *spans, unsigned n, unsigned shards)
{
    struct counter c = {0, 0};
    struct fake_clock clk;
    txstats_t *t = counted(&c, &clk, spans, n, shards, DEF);
    int64_t live = atomic_load(&c.live);
    txstats_destroy(t);
    assert_int_equal(atomic_load(&c.live), 0);
    return live;
}

/* An idle span costs its ring, 8 bytes per 262,144 ms rounded up to a power of two: a 24-hour
 * span a few kilobytes per shard more than a 60-second one, 31 days at most 2 x 8 bytes per
 * 262 s; the spans' count, not their lengths, sets the rest. */
static void test_memory_idle(void **state)
{
    static const int64_t minute[] = {MINUTE}, day[] = {DAY}, month[] = {MAXS};
    static const int64_t four_short[] = {1, 2, 3, 4}, four[] = {MINUTE, 5 * MINUTE, HOUR, DAY};
    for (unsigned shards = 1; shards <= 4; shards *= 4) {
        int64_t m = idle_bytes(minute, 1, shards), d = idle_bytes(day, 1, shards);
        int64_t mo = idle_bytes(month, 1, shards);
        int64_t f0 = idle_bytes(four_short, 4, shards), f = idle_bytes(four, 4, shards);
        print_message("idle, %u shard(s): 60 s %lld B, 24 h %lld B, 31 d %lld B; 4 spans of ms "
                      "%lld B, 1 min..24 h %lld B\n",
                      shards, (long long)m, (long long)d, (long long)mo, (long long)f0,
                      (long long)f);
        assert_true(d - m <= 8 * 1024 * (int64_t)shards);
        assert_true(f - f0 <= 8 * 1024 * (int64_t)shards);
        assert_true(mo - m <= 16 * (MAXS / NODE2 + 4) * (int64_t)shards);
    }
}

/* n transactions at the clock, at the offsets `off` (ms before now, < 24 h); 1 in 4 for an
 * entity when `ents`. */
static void add_at(txstats_t *t, int64_t now, const int64_t *off, int n, bool ents)
{
    unsigned char name[TXSTATS_MAX_ENTITY_BYTES];
    for (int i = 0; i < n; i++) {
        int rc = ents && i % 4 == 0
                     ? txstats_add_entity(t, name, ent_name(i % 40, name), i, now - off[i])
                     : txstats_add(t, i * 1000 - 7, now - off[i]);
        assert_int_equal(rc, TXSTATS_OK);
    }
}

static int64_t *spread(int n, uint64_t seed, int64_t width)
{
    int64_t *off = malloc((size_t)n * sizeof(*off));
    assert_non_null(off);
    for (int i = 0; i < n; i++)
        off[i] = width ? (int64_t)(rnd(&seed) % (uint64_t)width) : i;
    return off;
}

/* Bytes that n transactions at `off` add to an idle 24-hour span (one shard). */
static int64_t growth(int n, const int64_t *off)
{
    static const int64_t day[] = {DAY};
    struct counter c = {0, 0};
    struct fake_clock clk;
    txstats_t *t = counted(&c, &clk, day, 1, 1, DEF);
    int64_t idle = atomic_load(&c.live);
    add_at(t, clk.now, off, n, false);
    int64_t g = atomic_load(&c.live) - idle;
    txstats_destroy(t);
    return g;
}

/* 1,000 transactions spread over 24 h cost about 1,000 x (a page, a 4,096-ms node, a retained
 * chunk), far from 86,400,000 ms of anything; 4,000 cost about 4 times that (a little less:
 * nodes shared); 1,000 in consecutive milliseconds share pages and nodes. */
static void test_memory_by_traffic(void **state)
{
    int64_t *o1 = spread(1000, 2700, DAY), *o4 = spread(4000, 2701, DAY), *od = spread(1000, 0, 0);
    int64_t g1 = growth(1000, o1), g4 = growth(4000, o4), gd = growth(1000, od);
    print_message("24 h span: 1,000 spread %lld B (%lld B each), 4,000 spread %lld B, 1,000 "
                  "dense %lld B\n",
                  (long long)g1, (long long)(g1 / 1000), (long long)g4, (long long)gd);
    assert_true(g1 <= 1000 * 4096);
    assert_true(g4 >= 2 * g1 && g4 <= 4 * g1 + 4 * 4096);
    assert_true(gd <= 1000 * 256);
    free(o1);
    free(o4);
    free(od);
}

static int64_t file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* A binary snapshot (the checkpoint's format) is what the window holds, not the span: idle 24 h
 * and 31 days cost as little as idle 60 s; 1,000 transactions over 24 h, one a millisecond, 96
 * bytes each (a 'C' record of 64 and an 'A' record of 32: the header's "64 per used millisecond,
 * 8 per retained transaction" leaves out the 24 of an 'A' record's head). */
static void test_snapshot_size_by_traffic(void **state)
{
    static const int64_t minute[] = {MINUTE}, spans[] = {MINUTE, HOUR, DAY, MAXS};
    struct counter c = {0, 0};
    struct fake_clock clk;
    char path[128];
    int64_t *off = spread(1000, 2703, DAY), size[3];
    snprintf(path, sizeof(path), "%s/size.bin", tmp);
    for (int k = 0; k < 3; k++) {
        txstats_t *t =
            k ? counted(&c, &clk, spans, 4, 2, DEF) : counted(&c, &clk, minute, 1, 2, DEF);
        if (k == 2)
            add_at(t, clk.now, off, 1000, false);
        assert_int_equal(txstats_save_bin(t, path), TXSTATS_OK);
        size[k] = file_size(path);
        txstats_destroy(t);
    }
    print_message("binary snapshot: idle 60 s %lld B, idle 60 s..31 d %lld B, 1,000 over 24 h "
                  "%lld B\n",
                  (long long)size[0], (long long)size[1], (long long)size[2]);
    assert_true(size[1] <= size[0] + 256);
    assert_true(size[2] - size[1] <= 1000 * 128); /* 96: 'C' 64, 'A' 24 + 8 (image.h) */
    assert_true(size[2] - size[1] >= 1000 * (64 + 8));
    free(off);
}

/* Everything expired: memory back to the idle level but for the free chunk lists (reused, so a
 * second identical round ends exactly where the first did: no page, node or entity leaks). */
static void test_memory_after_expiry(void **state)
{
    static const int64_t spans[] = {HOUR, DAY, MINUTE};
    struct counter c = {0, 0};
    struct fake_clock clk;
    txstats_summary_t s;
    int64_t *off = spread(1000, 2702, DAY), full[2], after[2];
    for (int ents = 0; ents <= 1; ents++) {
        txstats_t *t = counted(&c, &clk, spans, 3, 1, DEF);
        int64_t idle = atomic_load(&c.live);
        for (int round = 0; round < 2; round++) {
            add_at(t, clk.now, off, 1000, ents);
            full[round] = atomic_load(&c.live);
            clk.now += 330 * NODE2; /* past 24 h, the same layout again */
            assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
            assert_int_equal(s.count, 0);
            after[round] = atomic_load(&c.live);
        }
        print_message("entities %d: idle %lld B, 1,000 added %lld B, expired %lld B\n", ents,
                      (long long)idle, (long long)(full[0] - idle), (long long)(after[0] - idle));
        assert_true(after[0] - idle <= 1000 * 512);
        assert_true(after[0] - idle <= (full[0] - idle) / 4);
        assert_int_equal(full[1], full[0]);
        assert_int_equal(after[1], after[0]);
        txstats_destroy(t);
        assert_int_equal(atomic_load(&c.live), 0);
    }
    free(off);
}

/* ---- Concurrency ----------------------------------------------------------------------------- */

/* Three adders (every path, entities) move a shared clock while a reader asks every span for
 * everything; each answer must hold together at its own moment; once they stop, every span is
 * the model of what was accepted. */
#define CC_ADDERS 3
#define CC_EACH   3000

static const int64_t CC_SPANS[] = {50, 400, 5, 1000};
#define CC_N    4
#define CC_SKEW 10

/* Checks in threads count failures (cmocka's asserts belong to the test's thread). */
static atomic_int cc_failures, cc_first_line;
#define CC_TRUE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond) && atomic_fetch_add(&cc_failures, 1) == 0)                                     \
            atomic_store(&cc_first_line, __LINE__);                                                \
    } while (0)
#define CC_EQ(a, b) CC_TRUE((a) == (b))

struct cc {
    txstats_t *t;
    _Atomic int64_t clock;
    _Atomic uint64_t ticks;
    atomic_int done;
    struct {
        txstats_amount_t a;
        int64_t ts;
        int ent, rc;
    } tx[CC_ADDERS][3000];
};

static int64_t cc_clock(void *ctx)
{
    return atomic_load(&((struct cc *)ctx)->clock);
}

static void *cc_adder(void *arg)
{
    struct cc *c = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    uint64_t rng = 2800 + (uint64_t)id;
    unsigned char name[TXSTATS_MAX_ENTITY_BYTES];
    for (int i = 0; i < CC_EACH; i++) {
        int64_t now = T0 + (int64_t)(atomic_fetch_add(&c->ticks, 1) / 8), cur = c->clock;
        while (cur < now && !atomic_compare_exchange_weak(&c->clock, &cur, now))
            ;
        int ent = (int)(rnd(&rng) % 8) - 2; /* -2, -1: none */
        txstats_amount_t a = rnd_amount(&rng);
        int64_t ts = atomic_load(&c->clock) + rnd_in(&rng, -1005, CC_SKEW);
        size_t len = ent >= 0 ? ent_name(ent, name) : 0;
        txstats_input_t in = {a, ts, len ? name : NULL, len, NULL, 0};
        int rc = -100;
        if (i % 3 == 0)
            rc = txstats_add(c->t, a, ts), ent = -1;
        else if (i % 3 == 1)
            rc = txstats_add_ex(c->t, &in, NULL);
        else
            CC_EQ(txstats_add_batch_ex(c->t, &in, 1, &rc, NULL, NULL), TXSTATS_OK);
        c->tx[id][i].a = a;
        c->tx[id][i].ts = ts;
        c->tx[id][i].ent = ent;
        c->tx[id][i].rc = rc;
    }
    return NULL;
}
/* One span's answers, each consistent at its own moment. */
static void cc_read_span(struct cc *c, unsigned span, txstats_tx_t *buf, size_t cap)
{
    static const uint32_t q[3] = {0, TXSTATS_Q_SCALE / 2, TXSTATS_Q_SCALE};
    txstats_summary_t s;
    txstats_list_info_t info;
    txstats_amount_t out[3];
    txstats_top_entry_t top[4];
    uint64_t count;
    size_t n;
    CC_EQ(txstats_stats_span(c->t, span, &s), TXSTATS_OK);
    CC_TRUE(s.count ? s.min <= s.max : s.min == 0 && s.max == 0 && s.sum_lo == 0);
    int rc = txstats_get_span(c->t, span, buf, cap, &info);
    CC_TRUE(rc == TXSTATS_OK || rc == TXSTATS_ENOBUFS);
    CC_TRUE(info.retained == info.in_window && info.written <= cap);
    for (size_t i = 0; i < info.written; i++) {
        CC_TRUE(buf[i].timestamp_ms > info.now_ms - CC_SPANS[span]);
        CC_TRUE(buf[i].timestamp_ms <= info.now_ms);
        CC_TRUE(i == 0 || buf[i].timestamp_ms >= buf[i - 1].timestamp_ms);
    }
    CC_EQ(txstats_quantiles_span(c->t, span, q, 3, out, &count), TXSTATS_OK);
    CC_TRUE(out[0] <= out[1] && out[1] <= out[2]);
    CC_EQ(txstats_top_span(c->t, span, TXSTATS_TOP_COUNT, top, 4, &n), TXSTATS_OK);
    for (size_t i = 1; i < n; i++)
        CC_TRUE(top[i].stats.count <= top[i - 1].stats.count);
    CC_EQ(txstats_entity_stats_span(c->t, span, "e0", 2, &s), TXSTATS_OK);
}

static void *cc_reader(void *arg)
{
    struct cc *c = arg;
    txstats_tx_t *buf = malloc(4096 * sizeof(*buf));
    txstats_dist_t *d;
    CC_TRUE(buf != NULL);
    CC_EQ(txstats_dist_create(&d, NULL), TXSTATS_OK);
    for (unsigned k = 0; !atomic_load(&c->done); k++) {
        cc_read_span(c, k % CC_N, buf, k % 2 ? 4096 : 7);
        txstats_dist_clear(d);
        CC_EQ(txstats_dist_collect_span(c->t, k % CC_N, d), TXSTATS_OK);
    }
    txstats_dist_destroy(d);
    free(buf);
    return NULL;
}

static void test_concurrent_spans(void **state)
{
    struct cc *c = calloc(1, sizeof(*c));
    txstats_config_t cfg;
    pthread_t th[CC_ADDERS + 1];
    void *args[CC_ADDERS][2];
    struct sm s;
    unsigned char name[TXSTATS_MAX_ENTITY_BYTES];
    assert_non_null(c);
    atomic_store(&c->clock, T0);
    txstats_config_init(&cfg);
    cfg.spans_ms = CC_SPANS;
    cfg.nspans = CC_N;
    cfg.max_skew_ms = CC_SKEW;
    cfg.shards = 3;
    cfg.clock_ms = cc_clock;
    cfg.clock_ctx = c;
    assert_int_equal(txstats_create(&c->t, &cfg), TXSTATS_OK);
    pthread_create(&th[CC_ADDERS], NULL, cc_reader, c);
    for (int i = 0; i < CC_ADDERS; i++) {
        args[i][0] = c;
        args[i][1] = (void *)(intptr_t)i;
        pthread_create(&th[i], NULL, cc_adder, args[i]);
    }
    for (int i = 0; i < CC_ADDERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&c->done, 1);
    pthread_join(th[CC_ADDERS], NULL);
    if (atomic_load(&cc_failures))
        fail_msg("%d checks failed in the threads, the first at line %d", atomic_load(&cc_failures),
                 atomic_load(&cc_first_line));
    sm_init(&s, CC_SPANS, CC_N, CC_SKEW);
    for (int i = 0; i < CC_ADDERS; i++)
        for (int k = 0; k < CC_EACH; k++)
            if (c->tx[i][k].rc == TXSTATS_OK)
                em_add(&s.m, name, c->tx[i][k].ent >= 0 ? ent_name(c->tx[i][k].ent, name) : 0,
                       c->tx[i][k].a, c->tx[i][k].ts);
    for (int64_t later = 0; later <= 1010; later += 101) {
        atomic_store(&c->clock, atomic_load(&c->clock) + later);
        sm_assert_all(c->t, &s, atomic_load(&c->clock), "after the threads");
    }
    txstats_destroy(c->t);
    sm_free(&s);
    free(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_small_spans_every_ms),
        T(test_long_spans_sampled),
        T(test_snapshot_same_spans),
        T(test_snapshot_other_spans),
        T(test_journal_several_spans),
        T(test_v2_files_in_spans),
        T(test_v1_files_in_spans),
        T(test_config_table),
        T(test_admit_with_spans),
        T(test_span_out_of_range),
        T(test_memory_idle),
        T(test_memory_by_traffic),
        T(test_memory_after_expiry),
        T(test_concurrent_spans),
        T(test_entity_cap_by_longest_span),
        T(test_snapshot_size_by_traffic),
        T(test_small_spans_out_of_memory),
        T(test_load_into_journaled),
    };
    return cmocka_run_group_tests_name("spans", tests, NULL, NULL);
}
