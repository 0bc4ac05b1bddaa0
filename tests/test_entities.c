/* SPDX-License-Identifier: MIT */
/*
 * Entities, per-key windows (issue 20): a table of keys (one, many, equal amounts, negative
 * amounts and sums); expiry at every millisecond edge of every entity against a brute-force model
 * (entity_model.h); skew; clear; the cap; key lengths and binary keys; the merge of every entity
 * equal to the global window; the exact top-K against a sort of the model; idempotency keys with
 * entities; batches of mixed lines; JSON and binary snapshots; files written before entities;
 * concurrent adds. Every random sequence has a fixed seed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "entity_model.h"

#ifndef TXSTATS_DATA
#error "TXSTATS_DATA: the directory of the files of older versions (tests/data)"
#endif

static char tmp[64];

static int setup(void **state)
{
    strcpy(tmp, "/tmp/txstats-test-entities-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* An instance on a fake clock with a cap on entities. */
static txstats_t *make_capped(struct fake_clock *clk, int64_t window_ms, int64_t skew_ms,
                              unsigned shards, size_t max_entities)
{
    txstats_config_t cfg;
    txstats_t *t = NULL;
    txstats_config_init(&cfg);
    clk->now = T0;
    cfg.window_ms = window_ms;
    cfg.max_skew_ms = skew_ms;
    cfg.shards = shards;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    cfg.max_entities = max_entities;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    return t;
}

static int add_e(txstats_t *t, const char *entity, txstats_amount_t a, int64_t ts)
{
    return txstats_add_entity(t, entity, strlen(entity), a, ts);
}

static txstats_summary_t estats(txstats_t *t, const void *entity, size_t len)
{
    txstats_summary_t s;
    memset(&s, 0x5a, sizeof(s));
    assert_int_equal(txstats_entity_stats(t, entity, len, &s), TXSTATS_OK);
    return s;
}

static txstats_summary_t gstats(txstats_t *t)
{
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    return s;
}

static txstats_entity_info_t einfo(txstats_t *t)
{
    txstats_entity_info_t i;
    assert_int_equal(txstats_entity_info(t, &i), TXSTATS_OK);
    return i;
}

static void assert_same_summary(const txstats_summary_t *a, const txstats_summary_t *b)
{
    em_assert_summary(a, b, "summary", a->now_ms);
}

static void assert_empty_summary(const txstats_summary_t *s)
{
    assert_int_equal(s->count, 0);
    assert_int_equal(s->min, 0);
    assert_int_equal(s->max, 0);
    assert_int_equal(s->sum_hi, 0);
    assert_int_equal(s->sum_lo, 0);
}

/* ---- The table of keys: each case's lines, then each key's statistics as text ------------- */

#define GLOBAL "*" /* in a `want`: the global window */

struct line {
    const char *key; /* "": no entity (txstats_add) */
    const char *amount;
    int64_t age; /* timestamp = T0 - age */
    int rc;
};

struct want {
    const char *key;
    const char *sum, *avg, *max, *min;
    uint64_t count;
};

struct basic_case {
    const char *name;
    struct line lines[12];
    struct want want[6];
    uint64_t active;
};

static const struct basic_case BASIC[] = {
    {"one key",
     {{"card-1", "10", 0, 0}, {"card-1", "20.5", 5, 0}, {"card-1", "30", 59999, 0}},
     {{"card-1", "60.50", "20.17", "30.00", "10.00", 3},
      {GLOBAL, "60.50", "20.17", "30.00", "10.00", 3}},
     1},
    {"many keys",
     {{"a", "1", 0, 0},
      {"b", "2", 1, 0},
      {"c", "3", 2, 0},
      {"a", "4", 3, 0},
      {"b", "5", 4, 0},
      {"", "100", 5, 0}},
     {{"a", "5.00", "2.50", "4.00", "1.00", 2},
      {"b", "7.00", "3.50", "5.00", "2.00", 2},
      {"c", "3.00", "3.00", "3.00", "3.00", 1},
      {"d", "0.00", "0.00", "0.00", "0.00", 0},
      {GLOBAL, "115.00", "19.17", "100.00", "1.00", 6}},
     3},
    {"equal amounts",
     {{"x", "7.77", 0, 0},
      {"x", "7.77", 0, 0},
      {"x", "7.77", 1, 0},
      {"x", "7.77", 2, 0},
      {"y", "7.77", 0, 0}},
     {{"x", "31.08", "7.77", "7.77", "7.77", 4},
      {"y", "7.77", "7.77", "7.77", "7.77", 1},
      {GLOBAL, "38.85", "7.77", "7.77", "7.77", 5}},
     2},
    {"negative amounts and sums",
     {{"r", "-5", 0, 0},
      {"r", "-10.25", 1, 0},
      {"r", "3", 2, 0},
      {"s", "-0.001", 3, 0},
      {"t", "5", 4, 0},
      {"t", "-5", 5, 0}},
     {{"r", "-12.25", "-4.08", "3.00", "-10.25", 3},
      {"s", "0.00", "0.00", "0.00", "0.00", 1}, /* never "-0.00" */
      {"t", "0.00", "0.00", "5.00", "-5.00", 2},
      {GLOBAL, "-12.25", "-2.04", "5.00", "-10.25", 6}},
     3},
    {"expired and future lines change nothing",
     {{"e", "1", 60000, TXSTATS_EXPIRED},
      {"e", "2", -1, TXSTATS_EFUTURE},
      {"e", "4", 59999, 0},
      {"f", "8", 60000, TXSTATS_EXPIRED}},
     {{"e", "4.00", "4.00", "4.00", "4.00", 1},
      {"f", "0.00", "0.00", "0.00", "0.00", 0},
      {"g", "0.00", "0.00", "0.00", "0.00", 0},
      {GLOBAL, "4.00", "4.00", "4.00", "4.00", 1}},
     1},
    {"HALF_UP and exact extremes",
     {{"h", "0.005", 0, 0},
      {"h", "0.005", 0, 0},
      {"big", "999999999999.999999", 0, 0},
      {"big", "999999999999.999999", 1, 0},
      {"big", "999999999999.999999", 2, 0}},
     {{"h", "0.01", "0.01", "0.01", "0.01", 2},
      {"big", "3000000000000.00", "1000000000000.00", "1000000000000.00", "1000000000000.00", 3},
      {GLOBAL, "3000000000000.01", "600000000000.00", "1000000000000.00", "0.01", 5}},
     2},
};

static void check_want(txstats_t *t, const struct basic_case *c, const struct want *w)
{
    txstats_summary_t s;
    txstats_summary_text_t x;
    if (!strcmp(w->key, GLOBAL))
        s = gstats(t);
    else
        s = estats(t, w->key, strlen(w->key));
    assert_int_equal(txstats_summary_text(&s, &x), TXSTATS_OK);
    if (strcmp(x.sum, w->sum) || strcmp(x.avg, w->avg) || strcmp(x.max, w->max) ||
        strcmp(x.min, w->min) || x.count != w->count)
        fail_msg("%s, key %s: got %s %s %s %s %llu, want %s %s %s %s %llu", c->name, w->key, x.sum,
                 x.avg, x.max, x.min, (unsigned long long)x.count, w->sum, w->avg, w->max, w->min,
                 (unsigned long long)w->count);
}

static void run_basic(const struct basic_case *c, unsigned shards)
{
    struct fake_clock clk;
    txstats_t *t = make_capped(&clk, 60000, 0, shards, 100);
    for (const struct line *l = c->lines; l->key; l++) {
        txstats_amount_t a = 0;
        int rc = txstats_amount_parse(l->amount, strlen(l->amount), &a);
        if (rc == TXSTATS_OK)
            rc = l->key[0] ? add_e(t, l->key, a, T0 - l->age) : txstats_add(t, a, T0 - l->age);
        if (rc != l->rc)
            fail_msg("%s, line %d: %d, want %d", c->name, (int)(l - c->lines), rc, l->rc);
    }
    for (const struct want *w = c->want; w->key; w++)
        check_want(t, c, w);
    assert_int_equal(einfo(t).active, c->active);
    txstats_destroy(t);
}

static void test_table_of_keys(void **state)
{
    for (size_t i = 0; i < sizeof(BASIC) / sizeof(BASIC[0]); i++) {
        run_basic(&BASIC[i], 1);
        run_basic(&BASIC[i], 3);
    }
}

/* The admission rule of SPEC §1. */
static int admit(int64_t ts, int64_t now, int64_t window, int64_t skew)
{
    if (ts > now + skew)
        return TXSTATS_EFUTURE;
    if (ts <= now - window)
        return TXSTATS_EXPIRED;
    return TXSTATS_OK;
}

struct gen {
    int64_t window, skew;
    int entities;   /* entity numbers 0..entities-1 */
    int unkeyed_in; /* one add in this many has no entity (0: every add has one) */
};

/* One random add at `now`, its status checked against the rule, recorded in the model. */
static void gen_add(txstats_t *t, struct em *m, const struct gen *g, uint64_t *s, int64_t now)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    size_t len = ent_name((int)(rnd(s) % (uint64_t)g->entities), ent);
    if (g->unkeyed_in && rnd(s) % (uint64_t)g->unkeyed_in == 0)
        len = 0;
    int64_t ts = now + rnd_in(s, -(g->window + 1), g->skew + 1);
    txstats_amount_t a = rnd_amount(s);
    int want = admit(ts, now, g->window, g->skew);
    int rc = len ? txstats_add_entity(t, ent, len, a, ts) : txstats_add(t, a, ts);
    if (rc != want) {
        char name[80];
        fail_msg("add %s %lld at %+lld, now %+lld: %d, want %d", em_name(ent, len, name, 80),
                 (long long)a, (long long)(ts - T0), (long long)(now - T0), rc, want);
    }
    if (rc == TXSTATS_OK)
        em_add(m, ent, len, a, ts);
}

/* ---- Expiry at every millisecond edge of every entity -------------------------------------- */

struct expiry_case {
    int64_t window, skew;
    unsigned shards;
    int entities, per_ms;
    uint64_t seed;
};

static const struct expiry_case EXPIRY[] = {
    {1, 0, 1, 3, 2, 11},   {5, 0, 1, 3, 2, 12},    {5, 3, 2, 5, 3, 13},
    {100, 0, 3, 6, 3, 14}, {100, 20, 2, 8, 2, 15},
};

static void run_expiry(const struct expiry_case *c)
{
    struct fake_clock clk;
    struct em m;
    uint64_t s = c->seed;
    struct gen g = {c->window, c->skew, c->entities, 5};
    int64_t adding = 3 * c->window + 30, steps = adding + c->window + c->skew + 3;
    txstats_t *t = make_capped(&clk, c->window, c->skew, c->shards, 1000);
    em_init(&m, c->window);
    for (int64_t i = 0; i < steps; i++) {
        clk.now = T0 + i;
        em_assert_all(t, &m, clk.now); /* the clock moved: what left, left */
        for (int k = 0; i < adding && k < c->per_ms; k++)
            gen_add(t, &m, &g, &s, clk.now);
        em_assert_all(t, &m, clk.now);
        em_assert_top(t, &m, clk.now, TXSTATS_TOP_SUM, (size_t)c->entities + 1);
        em_assert_top(t, &m, clk.now, TXSTATS_TOP_COUNT, 2);
    }
    assert_int_equal(einfo(t).active, 0); /* every entity freed */
    assert_int_equal(gstats(t).count, 0);
    assert_true(m.n >= (size_t)adding / 3); /* the sequence did add */
    txstats_destroy(t);
    em_free(&m);
}

static void test_expiry_every_millisecond(void **state)
{
    for (size_t i = 0; i < sizeof(EXPIRY) / sizeof(EXPIRY[0]); i++)
        run_expiry(&EXPIRY[i]);
}

/* The extremes of one entity leave one by one: min and max follow at the exact millisecond. */
static void test_extremes_expire(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_capped(&clk, 3, 0, 2, 10);
    assert_int_equal(add_e(t, "a", amt("5"), T0 - 2), TXSTATS_OK);
    assert_int_equal(add_e(t, "a", amt("-7"), T0 - 1), TXSTATS_OK);
    assert_int_equal(add_e(t, "a", amt("3"), T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "b", amt("9"), T0 - 2), TXSTATS_OK);
    txstats_summary_t s = estats(t, "a", 1);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.min, amt("-7"));
    assert_int_equal(s.max, amt("5"));
    clk.now = T0 + 1; /* 5 and b's 9 leave */
    s = estats(t, "a", 1);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.max, amt("3"));
    assert_int_equal(s.min, amt("-7"));
    assert_int_equal(estats(t, "b", 1).count, 0);
    assert_int_equal(einfo(t).active, 1);
    clk.now = T0 + 2; /* -7 leaves */
    s = estats(t, "a", 1);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.min, amt("3"));
    assert_int_equal(s.max, amt("3"));
    assert_int_equal(s.now_ms, T0 + 2);
    clk.now = T0 + 3;
    s = estats(t, "a", 1);
    assert_empty_summary(&s);
    assert_int_equal(einfo(t).active, 0);
    txstats_destroy(t);
}

/* A transaction ahead of the clock (max_skew_ms): its entity is active at once, counts from its
 * millisecond on, is not ranked before, and leaves window_ms after it. */
static void test_skew_activation(void **state)
{
    struct fake_clock clk;
    size_t n = 99;
    txstats_top_entry_t top[4];
    txstats_t *t = make_capped(&clk, 100, 50, 2, 10);
    assert_int_equal(add_e(t, "f", amt("5"), T0 + 30), TXSTATS_OK);
    assert_int_equal(add_e(t, "f", amt("1"), T0 + 51), TXSTATS_EFUTURE);
    assert_int_equal(add_e(t, "g", amt("1"), T0 + 51), TXSTATS_EFUTURE);
    assert_int_equal(estats(t, "f", 1).count, 0);
    assert_int_equal(gstats(t).count, 0);
    assert_int_equal(einfo(t).active, 1); /* ahead of the window: active, not ranked */
    assert_int_equal(txstats_top(t, TXSTATS_TOP_COUNT, top, 4, &n), TXSTATS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(add_e(t, "f", amt("2"), T0), TXSTATS_OK);
    clk.now = T0 + 29;
    assert_int_equal(estats(t, "f", 1).count, 1);
    clk.now = T0 + 30;
    assert_int_equal(estats(t, "f", 1).count, 2);
    assert_int_equal(estats(t, "f", 1).max, amt("5"));
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, top, 4, &n), TXSTATS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(top[0].stats.count, 2);
    clk.now = T0 + 100; /* the one at T0 leaves */
    assert_int_equal(estats(t, "f", 1).count, 1);
    assert_int_equal(estats(t, "f", 1).min, amt("5"));
    clk.now = T0 + 129;
    assert_int_equal(einfo(t).active, 1);
    clk.now = T0 + 130;
    assert_int_equal(estats(t, "f", 1).count, 0);
    assert_int_equal(einfo(t).active, 0);
    txstats_destroy(t);
}

/* ---- Allocation failures ------------------------------------------------------------------- */

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
    if (p)
        ((struct budget *)ud)->live--;
    free(p);
}

/* One add with at most `allowed` allocations: TXSTATS_ENOMEM records nothing, anything else is
 * the rule's answer. Returns whether it ran out. */
static int add_on_budget(txstats_t *t, struct em *m, struct budget *b, uint64_t *s, int64_t now)
{
    unsigned char ent[TXSTATS_MAX_ENTITY_BYTES];
    size_t len = ent_name((int)(rnd(s) % 50), ent);
    int64_t ts = now + rnd_in(s, -150, 5);
    txstats_amount_t a = rnd_amount(s);
    b->left = (long)(rnd(s) % 3);
    int rc = txstats_add_entity(t, ent, len, a, ts);
    b->left = -1;
    if (rc == TXSTATS_ENOMEM) {
        em_assert_all(t, m, now); /* nothing half-done */
        return 1;
    }
    assert_int_equal(rc, admit(ts, now, 100, 0));
    if (rc == TXSTATS_OK)
        em_add(m, ent, len, a, ts);
    return 0;
}

static void test_allocation_failures(void **state)
{
    struct fake_clock clk;
    struct budget b = {-1, 0};
    struct em m;
    uint64_t s = 60;
    int failed = 0;
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.window_ms = 100;
    cfg.shards = 1; /* every add brings the one shard up to date (see test_cap_frees_room) */
    cfg.alloc = budget_alloc;
    cfg.free = budget_free;
    cfg.alloc_ud = &b;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = &clk;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    em_init(&m, 100);
    for (int i = 0; i < 3000; i++) {
        clk.now = T0 + i / 10;
        failed += add_on_budget(t, &m, &b, &s, clk.now);
        if (i % 100 == 0)
            em_assert_all(t, &m, clk.now);
    }
    assert_true(failed > 0); /* the budget did bite */
    for (int64_t d = 0; d <= 101; d += 17) {
        clk.now = T0 + 300 + d;
        assert_int_equal(txstats_add(t, 1, clk.now), TXSTATS_OK);
        em_add(&m, NULL, 0, 1, clk.now);
        em_assert_all(t, &m, clk.now);
    }
    txstats_destroy(t);
    assert_int_equal(b.live, 0); /* nothing leaked */
    em_free(&m);
}

/* ---- Clear ---------------------------------------------------------------------------------- */

static void assert_no_entity(txstats_t *t, const char *const *names)
{
    txstats_top_entry_t top[4];
    size_t n = 99;
    for (; *names; names++) {
        txstats_summary_t s = estats(t, *names, strlen(*names));
        assert_empty_summary(&s);
    }
    assert_int_equal(einfo(t).active, 0);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, top, 4, &n), TXSTATS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gstats(t).count, 0);
}

static void test_clear(void **state)
{
    static const char *const names[] = {"a", "b", "c", "d", NULL};
    struct fake_clock clk;
    txstats_t *t = make_capped(&clk, 1000, 100, 2, 3);
    assert_int_equal(add_e(t, "a", 1, T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "b", 2, T0 - 1), TXSTATS_OK);
    assert_int_equal(add_e(t, "c", 3, T0 + 50), TXSTATS_OK); /* ahead of the clock */
    assert_int_equal(add_e(t, "d", 4, T0), TXSTATS_ELIMIT);
    assert_int_equal(txstats_add(t, 5, T0), TXSTATS_OK);
    txstats_clear(t);
    assert_no_entity(t, names);
    clk.now = T0 + 50; /* the cleared future one does not come back */
    assert_no_entity(t, names);
    /* The cap is free again: three new entities. */
    assert_int_equal(add_e(t, "d", 4, T0 + 50), TXSTATS_OK);
    assert_int_equal(add_e(t, "e", 5, T0 + 50), TXSTATS_OK);
    assert_int_equal(add_e(t, "a", 6, T0 + 50), TXSTATS_OK);
    assert_int_equal(add_e(t, "b", 7, T0 + 50), TXSTATS_ELIMIT);
    assert_int_equal(estats(t, "a", 1).count, 1);
    assert_int_equal(estats(t, "a", 1).sum_lo, 6);
    assert_int_equal(einfo(t).active, 3);
    assert_int_equal(txstats_clear_ex(t), TXSTATS_OK);
    assert_no_entity(t, names);
    txstats_destroy(t);
}

/* ---- The cap: max_entities ------------------------------------------------------------------ */

static void test_cap(void **state)
{
    struct fake_clock clk;
    txstats_t *t = make_capped(&clk, 1000, 0, 2, 3);
    assert_int_equal(add_e(t, "a", 10, T0 - 500), TXSTATS_OK);
    assert_int_equal(add_e(t, "b", 20, T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "c", 30, T0), TXSTATS_OK);
    txstats_entity_info_t i = einfo(t);
    assert_int_equal(i.active, 3);
    assert_int_equal(i.limit, 3);
    assert_int_equal(i.refused, 0);
    txstats_summary_t before = gstats(t), after;
    assert_int_equal(add_e(t, "d", 40, T0), TXSTATS_ELIMIT); /* nothing recorded */
    after = gstats(t);
    assert_same_summary(&after, &before);
    assert_int_equal(estats(t, "d", 1).count, 0);
    i = einfo(t);
    assert_int_equal(i.active, 3);
    assert_int_equal(i.refused, 1);
    /* Refused with an idempotency key: the key is not remembered, the retry is judged afresh. */
    txstats_input_t in = {40, T0, "d", 1, "idem-d", 6};
    assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_ELIMIT);
    assert_int_equal(txstats_key_check(t, 40, T0, "idem-d", 6, NULL), TXSTATS_OK);
    assert_int_equal(einfo(t).refused, 2);
    /* Known entities and transactions without one keep working. */
    assert_int_equal(add_e(t, "a", 11, T0 - 500), TXSTATS_OK);
    assert_int_equal(txstats_add(t, 1, T0), TXSTATS_OK);
    assert_int_equal(estats(t, "a", 1).count, 2);
    assert_int_equal(gstats(t).count, before.count + 2);
    /* a's transactions leave: room for d, and the keyed retry now counts. */
    clk.now = T0 + 500;
    assert_int_equal(einfo(t).active, 2);
    assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_OK);
    assert_int_equal(estats(t, "d", 1).count, 1);
    assert_int_equal(add_e(t, "e", 1, T0 + 500), TXSTATS_ELIMIT);
    i = einfo(t);
    assert_int_equal(i.active, 3);
    assert_int_equal(i.refused, 3);
    txstats_destroy(t);
    /* max_entities 0: every entity refused, the rest works. */
    t = make_capped(&clk, 1000, 0, 2, 0);
    assert_int_equal(add_e(t, "a", 1, T0), TXSTATS_ELIMIT);
    assert_int_equal(txstats_add(t, 1, T0), TXSTATS_OK);
    i = einfo(t);
    assert_int_equal(i.limit, 0);
    assert_int_equal(i.active, 0);
    assert_int_equal(i.refused, 1);
    assert_int_equal(gstats(t).count, 1);
    txstats_destroy(t);
}

/* At the cap, an entity leaves the window: its place is free at once, whichever shard the next
 * new entity lands in (placement is by a keyed hash, random per instance: ten instances); and
 * the active count drops at once, before any add. */
static void test_cap_frees_room(void **state)
{
    struct fake_clock clk;
    char name[16];
    int refused = 0, stale = 0;
    for (int trial = 0; trial < 10; trial++) {
        txstats_t *t = make_capped(&clk, 1000, 0, 2 + (unsigned)trial % 3, 4);
        for (int i = 0; i < 3; i++) {
            int len = snprintf(name, sizeof(name), "live-%d", i);
            assert_int_equal(txstats_add_entity(t, name, (size_t)len, 1, T0), TXSTATS_OK);
        }
        int len = snprintf(name, sizeof(name), "old-%d", trial);
        assert_int_equal(txstats_add_entity(t, name, (size_t)len, 1, T0 - 500), TXSTATS_OK);
        clk.now = T0 + 500; /* old-N has left: three active */
        stale += einfo(t).active != 3;
        len = snprintf(name, sizeof(name), "new-%d", trial);
        int rc = txstats_add_entity(t, name, (size_t)len, 1, T0 + 500);
        refused += rc == TXSTATS_ELIMIT;
        assert_true(rc == TXSTATS_OK || rc == TXSTATS_ELIMIT);
        clk.now = T0 + 1500; /* all have left */
        stale += einfo(t).active != 0;
        txstats_destroy(t);
    }
    if (refused || stale)
        fail_msg("of 10 instances at the cap, one entity gone: %d refused a new entity "
                 "(TXSTATS_ELIMIT), %d stale active counts (of 20 reads)",
                 refused, stale);
}

/* The default cap is TXSTATS_DEFAULT_MAX_ENTITIES. */
static void test_default_cap(void **state)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    assert_int_equal(cfg.max_entities, TXSTATS_DEFAULT_MAX_ENTITIES);
    assert_int_equal(txstats_create(&t, NULL), TXSTATS_OK);
    txstats_entity_info_t i = einfo(t);
    assert_int_equal(i.limit, TXSTATS_DEFAULT_MAX_ENTITIES);
    assert_int_equal(i.active, 0);
    assert_int_equal(i.refused, 0);
    assert_int_equal(txstats_entity_info(t, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_info(NULL, &i), TXSTATS_EINVAL);
    txstats_destroy(t);
}

/* ---- Key lengths and bytes ------------------------------------------------------------------ */

/* Keys at the length edges, with 0x00 and 0xff, prefixes of each other, differing only in the
 * last byte. Returns how many. */
static size_t edge_keys(unsigned char keys[][TXSTATS_MAX_ENTITY_BYTES], size_t *lens)
{
    static const struct {
        const char *b;
        size_t len;
    } small[] = {{"a", 1},    {"\0", 1},   {"\0\0", 2}, {"a\0", 2}, {"a\0b", 3},
                 {"a\0c", 3}, {"\xff", 1}, {"ab", 2},   {"abc", 3}, {"\x80\xff\xfe", 3}};
    size_t n = 0, k = sizeof(small) / sizeof(small[0]);
    for (; n < k; n++) {
        memcpy(keys[n], small[n].b, small[n].len);
        lens[n] = small[n].len;
    }
    for (int v = 0; v < 5; v++, n++) { /* 127 and 128 bytes; the last byte differs */
        lens[n] = v == 0 ? TXSTATS_MAX_ENTITY_BYTES - 1 : TXSTATS_MAX_ENTITY_BYTES;
        memset(keys[n], 'k', lens[n]);
        keys[n][lens[n] - 1] = (unsigned char)("kkjl\0"[v]);
    }
    for (int i = 0; i < TXSTATS_MAX_ENTITY_BYTES; i++) {
        keys[n][i] = (unsigned char)i;
        keys[n + 1][i] = (unsigned char)(255 - i);
    }
    lens[n] = lens[n + 1] = TXSTATS_MAX_ENTITY_BYTES;
    return n + 2;
}

static void assert_refused_keys(txstats_t *t)
{
    unsigned char big[TXSTATS_MAX_ENTITY_BYTES + 1];
    txstats_summary_t s, before = gstats(t), after;
    txstats_entity_info_t ib = einfo(t);
    memset(big, 'k', sizeof(big));
    assert_int_equal(txstats_add_entity(t, big, sizeof(big), 1, T0), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_entity(t, big, 0, 1, T0), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_entity(t, NULL, 3, 1, T0), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_entity(NULL, "a", 1, 1, T0), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_entity(t, "new", 3, TXSTATS_AMOUNT_LIMIT, T0), TXSTATS_ERANGE);
    assert_int_equal(txstats_add_entity(t, "new", 3, -TXSTATS_AMOUNT_LIMIT, T0), TXSTATS_ERANGE);
    txstats_input_t in = {1, T0, big, sizeof(big), NULL, 0};
    assert_int_equal(txstats_add_ex(t, &in, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_ex(t, NULL, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_stats(t, big, sizeof(big), &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_stats(t, big, 0, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_stats(t, NULL, 1, &s), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_stats(t, "a", 1, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_entity_stats(NULL, "a", 1, &s), TXSTATS_EINVAL);
    after = gstats(t);
    assert_same_summary(&after, &before); /* nothing recorded */
    assert_int_equal(einfo(t).active, ib.active);
    assert_int_equal(estats(t, "new", 3).count, 0);
}

static void test_key_lengths(void **state)
{
    unsigned char keys[20][TXSTATS_MAX_ENTITY_BYTES];
    size_t lens[20], n = edge_keys(keys, lens);
    struct fake_clock clk;
    struct em m;
    txstats_t *t = make_capped(&clk, 60000, 0, 3, 100);
    em_init(&m, 60000);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k <= i % 3; k++) {
            txstats_amount_t a = (txstats_amount_t)(i + 1) * 1000000 - (txstats_amount_t)k;
            assert_int_equal(txstats_add_entity(t, keys[i], lens[i], a, T0 - (int64_t)i), 0);
            em_add(&m, keys[i], lens[i], a, T0 - (int64_t)i);
        }
    assert_refused_keys(t);
    /* An entity pointer with entity_len 0 in txstats_add_ex(): no entity, counted globally. */
    txstats_input_t none = {7, T0, "a", 0, NULL, 0};
    assert_int_equal(txstats_add_ex(t, &none, NULL), TXSTATS_OK);
    em_add(&m, NULL, 0, 7, T0);
    em_assert_all(t, &m, T0);
    assert_int_equal(einfo(t).active, n);
    for (size_t cap = 0; cap <= n + 1; cap += 3) {
        em_assert_top(t, &m, T0, TXSTATS_TOP_SUM, cap);
        em_assert_top(t, &m, T0, TXSTATS_TOP_COUNT, cap);
    }
    em_assert_top(t, &m, T0, TXSTATS_TOP_COUNT, n);
    txstats_destroy(t);
    em_free(&m);
}

/* ---- The merge of every entity equals the global window ------------------------------------ */

/* When every transaction names an entity, the entities' statistics merged are the global ones:
 * merged from txstats_entity_stats() of every entity ever seen, and from a full txstats_top(). */
static void assert_merge_is_global(txstats_t *t, struct em *m, int64_t now)
{
    txstats_summary_t acc, acc_top, g = gstats(t);
    memset(&acc, 0, sizeof(acc));
    memset(&acc_top, 0, sizeof(acc_top));
    for (size_t i = 0; i < m->nents; i++) {
        txstats_summary_t s = estats(t, m->ents[i].ent, m->ents[i].len);
        assert_int_equal(txstats_summary_merge(&acc, &s), TXSTATS_OK);
    }
    em_assert_summary(&acc, &g, "merge of txstats_entity_stats()", now);
    size_t n = 0, cap = m->nents + 1;
    txstats_top_entry_t *top = calloc(cap, sizeof(*top));
    assert_non_null(top);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_COUNT, top, cap, &n), TXSTATS_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(txstats_summary_merge(&acc_top, &top[i].stats), TXSTATS_OK);
    em_assert_summary(&acc_top, &g, "merge of txstats_top()", now);
    txstats_summary_t want = em_stats(m, NULL, 0, now);
    em_assert_summary(&g, &want, "global window", now);
    free(top);
}

static void test_merge_equals_global(void **state)
{
    struct fake_clock clk;
    struct em m;
    uint64_t s = 20;
    struct gen g = {200, 10, 60, 0};
    txstats_t *t = make_capped(&clk, g.window, g.skew, 3, 1000);
    em_init(&m, g.window);
    for (int i = 0; i < 3000; i++) {
        clk.now = T0 + i / 5;
        gen_add(t, &m, &g, &s, clk.now);
        if (i % 97 == 0)
            assert_merge_is_global(t, &m, clk.now);
    }
    for (int64_t d = 1; d <= g.window + g.skew + 1; d += 13) {
        clk.now = T0 + 600 + d; /* draining, to empty */
        assert_merge_is_global(t, &m, clk.now);
    }
    assert_int_equal(gstats(t).count, 0);
    txstats_destroy(t);
    em_free(&m);
}

/* ---- Top K: exact, against a sort of the model ---------------------------------------------- */

static void assert_top_caps(txstats_t *t, struct em *m, int64_t now)
{
    struct em_entity *r;
    size_t ranked = em_rank(m, now, TXSTATS_TOP_SUM, &r);
    size_t caps[] = {0, 1, 2, 7, ranked ? ranked - 1 : 0, ranked, ranked + 5, 1000};
    free(r);
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        em_assert_top(t, m, now, TXSTATS_TOP_SUM, caps[i]);
        em_assert_top(t, m, now, TXSTATS_TOP_COUNT, caps[i]);
    }
}

struct top_case {
    struct gen g;
    unsigned shards;
    int adds, per_ms;
    uint64_t seed;
};

static const struct top_case TOP[] = {
    {{300, 0, 200, 0}, 3, 3000, 5, 31},
    {{300, 40, 250, 7}, 2, 3000, 4, 32},
    {{50, 10, 12, 0}, 1, 1500, 3, 33}, /* few entities, many ties */
};

static void test_top_random(void **state)
{
    for (size_t c = 0; c < sizeof(TOP) / sizeof(TOP[0]); c++) {
        const struct top_case *k = &TOP[c];
        struct fake_clock clk;
        struct em m;
        uint64_t s = k->seed;
        txstats_t *t = make_capped(&clk, k->g.window, k->g.skew, k->shards, 1000);
        em_init(&m, k->g.window);
        for (int i = 0; i < k->adds; i++) {
            clk.now = T0 + i / k->per_ms;
            gen_add(t, &m, &k->g, &s, clk.now);
            if (i % 250 == 249)
                assert_top_caps(t, &m, clk.now);
        }
        em_assert_all(t, &m, clk.now);
        txstats_destroy(t);
        em_free(&m);
    }
}

static void test_top_arguments(void **state)
{
    struct fake_clock clk;
    txstats_top_entry_t top[2];
    size_t n = 5;
    txstats_t *t = make_capped(&clk, 1000, 0, 2, 10);
    assert_int_equal(add_e(t, "a", 1, T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "b", 1, T0), TXSTATS_OK); /* a tie: "a" first */
    assert_int_equal(add_e(t, "z", -5, T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "zero", 5, T0), TXSTATS_OK);
    assert_int_equal(add_e(t, "zero", -5, T0), TXSTATS_OK);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, NULL, 0, &n), TXSTATS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, NULL, 1, &n), TXSTATS_EINVAL);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, top, 1, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_top(NULL, TXSTATS_TOP_SUM, top, 1, &n), TXSTATS_EINVAL);
    assert_int_equal(txstats_top(t, (txstats_top_by_t)7, top, 1, &n), TXSTATS_EINVAL);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, top, 2, &n), TXSTATS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(top[0].entity_len, 1);
    assert_memory_equal(top[0].entity, "a", 1);
    assert_memory_equal(top[1].entity, "b", 1);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_COUNT, top, 1, &n), TXSTATS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(top[0].entity_len, 4); /* 2 transactions, sum 0: ranked by count */
    assert_memory_equal(top[0].entity, "zero", 4);
    assert_int_equal(top[0].stats.count, 2);
    assert_int_equal(top[0].stats.now_ms, T0);
    txstats_destroy(t);
}

/* ---- Idempotency keys with entities --------------------------------------------------------- */

static int add_in(txstats_t *t, txstats_amount_t a, int64_t ts, const char *entity,
                  const char *idem, int *first)
{
    txstats_input_t in = {
        a, ts, entity, entity ? strlen(entity) : 0, idem, idem ? strlen(idem) : 0};
    return txstats_add_ex(t, &in, first);
}

static void test_idempotency_and_entity(void **state)
{
    struct fake_clock clk;
    int first = 99;
    txstats_t *t = make_capped(&clk, 1000, 10, 2, 10);
    assert_int_equal(add_in(t, 500, T0, "card", "idem-1", &first), TXSTATS_OK);
    assert_int_equal(first, 99);
    for (int i = 0; i < 3; i++) { /* the retry: counted in neither window */
        assert_int_equal(add_in(t, 500, T0, "card", "idem-1", &first), TXSTATS_DUPLICATE);
        assert_int_equal(first, TXSTATS_OK);
    }
    assert_int_equal(add_in(t, 501, T0, "card", "idem-1", &first), TXSTATS_ECONFLICT);
    assert_int_equal(add_in(t, 500, T0 - 1, "card", "idem-1", &first), TXSTATS_ECONFLICT);
    assert_int_equal(estats(t, "card", 4).count, 1);
    assert_int_equal(gstats(t).count, 1);
    /* The key remembers the entity: another entity, or none, is another transaction. */
    assert_int_equal(add_in(t, 500, T0, "card2", "idem-1", &first), TXSTATS_ECONFLICT);
    assert_int_equal(txstats_add_keyed(t, 500, T0, "idem-1", 6, &first), TXSTATS_ECONFLICT);
    assert_int_equal(estats(t, "card2", 5).count, 0);
    txstats_input_t q = {500, T0, "card", 4, "idem-1", 6};
    assert_int_equal(txstats_key_check_ex(t, &q, &first), TXSTATS_DUPLICATE);
    q.entity = "cart";
    assert_int_equal(txstats_key_check_ex(t, &q, &first), TXSTATS_ECONFLICT);
    assert_int_equal(add_in(t, 9, T0, NULL, "idem-2", NULL), TXSTATS_OK); /* no entity */
    assert_int_equal(txstats_add_keyed(t, 9, T0, "idem-2", 6, NULL), TXSTATS_DUPLICATE);
    /* Entities and idempotency keys are apart: an entity named like a key is another thing. */
    assert_int_equal(add_e(t, "idem-1", 3, T0), TXSTATS_OK);
    assert_int_equal(estats(t, "idem-1", 6).count, 1);
    assert_int_equal(estats(t, "card", 4).count, 1);
    /* Refusals remembered with the key; the entity gets nothing. */
    assert_int_equal(add_in(t, 5, T0 - 1000, "old", "idem-3", NULL), TXSTATS_EXPIRED);
    assert_int_equal(add_in(t, 5, T0 - 1000, "old", "idem-3", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_EXPIRED);
    assert_int_equal(add_in(t, 5, T0 + 11, "fut", "idem-4", NULL), TXSTATS_EFUTURE);
    clk.now = T0 + 11;
    assert_int_equal(add_in(t, 5, T0 + 11, "fut", "idem-4", &first), TXSTATS_DUPLICATE);
    assert_int_equal(first, TXSTATS_EFUTURE);
    assert_int_equal(estats(t, "old", 3).count, 0);
    assert_int_equal(estats(t, "fut", 3).count, 0);
    assert_int_equal(einfo(t).active, 2); /* card and idem-1 */
    assert_int_equal(gstats(t).count, 3);
    /* Bad key lengths: nothing. */
    char long_key[TXSTATS_MAX_KEY_BYTES + 1];
    memset(long_key, 'x', sizeof(long_key));
    txstats_input_t bad = {1, T0, "card", 4, long_key, sizeof(long_key)};
    assert_int_equal(txstats_add_ex(t, &bad, NULL), TXSTATS_EINVAL);
    assert_int_equal(estats(t, "card", 4).count, 1);
    /* Neither entity nor key: a plain add. */
    assert_int_equal(add_in(t, 1, T0, NULL, NULL, NULL), TXSTATS_OK);
    assert_int_equal(gstats(t).count, 4);
    /* A clear forgets keys and entities: the same keyed add counts again. */
    txstats_clear(t);
    assert_int_equal(add_in(t, 500, T0, "card", "idem-1", &first), TXSTATS_OK);
    assert_int_equal(estats(t, "card", 4).count, 1);
    assert_int_equal(estats(t, "card", 4).sum_lo, 500);
    txstats_destroy(t);
}

/* ---- txstats_add_batch_ex() with mixed lines ------------------------------------------------ */

struct bline {
    const char *entity; /* NULL: none */
    size_t len;         /* 0: strlen(entity); BAD_LEN: one byte too long; NO_LEN: 0 */
    txstats_amount_t amount;
    int64_t dt; /* timestamp = T0 + dt */
    const char *idem;
    int rc, first;
};

#define BAD_LEN ((size_t)-1)
#define NO_LEN  ((size_t)-2)

static const char LONG_ENTITY[TXSTATS_MAX_ENTITY_BYTES + 1] = "L";

/* window 1000, skew 100, max_entities 4, "A" known before the batch. */
static const struct bline BATCH[] = {
    {"A", 0, 100, 0, NULL, TXSTATS_OK, 0},
    {NULL, 0, 200, -10, NULL, TXSTATS_OK, 0},
    {"B", 0, 300, -1000, NULL, TXSTATS_EXPIRED, 0}, /* B not created */
    {"B", 0, 400, 50, NULL, TXSTATS_OK, 0},         /* ahead: B active, counts at T0 + 50 */
    {"C", 0, 500, 101, NULL, TXSTATS_EFUTURE, 0},
    {LONG_ENTITY, BAD_LEN, 1, 0, NULL, TXSTATS_EINVAL, 0},
    {"C", 0, 600, -999, NULL, TXSTATS_OK, 0},
    {"D", 0, 700, 0, NULL, TXSTATS_OK, 0}, /* the fourth */
    {"E", 0, 800, 0, NULL, TXSTATS_ELIMIT, 0},
    {"A", 0, 900, -5, NULL, TXSTATS_OK, 0},
    {"A", 0, TXSTATS_AMOUNT_LIMIT, 0, NULL, TXSTATS_ERANGE, 0},
    {"D", 0, 1000, 0, "i1", TXSTATS_OK, 0},
    {"D", 0, 1000, 0, "i1", TXSTATS_DUPLICATE, TXSTATS_OK},
    {"D", 0, 1100, 0, "i1", TXSTATS_ECONFLICT, TXSTATS_OK},
    {"E", 0, 1200, 0, "i2", TXSTATS_ELIMIT, 0},
    {NULL, 0, -300, -1, "i3", TXSTATS_OK, 0},
    {"zzz", NO_LEN, -1, 0, NULL, TXSTATS_OK, 0}, /* a pointer, length 0: no entity */
    {"C", 0, -700, -998, NULL, TXSTATS_OK, 0},
};

static void batch_inputs(const struct bline *b, size_t n, txstats_input_t *in)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = b[i].entity ? strlen(b[i].entity) : 0;
        if (b[i].len == BAD_LEN)
            len = TXSTATS_MAX_ENTITY_BYTES + 1;
        if (b[i].len == NO_LEN)
            len = 0;
        in[i] = (txstats_input_t){b[i].amount, T0 + b[i].dt, b[i].entity,
                                  len,         b[i].idem,    b[i].idem ? strlen(b[i].idem) : 0};
    }
}

static void check_batch(const struct bline *b, size_t n, const int *res, const int *firsts,
                        struct em *m, size_t stored)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (res[i] != b[i].rc)
            fail_msg("batch line %zu: %d, want %d", i, res[i], b[i].rc);
        if ((res[i] == TXSTATS_DUPLICATE || res[i] == TXSTATS_ECONFLICT) && firsts[i] != b[i].first)
            fail_msg("batch line %zu: first %d, want %d", i, firsts[i], b[i].first);
        if (res[i] != TXSTATS_OK)
            continue;
        ok++;
        size_t len = b[i].len == NO_LEN || !b[i].entity ? 0 : strlen(b[i].entity);
        em_add(m, b[i].entity, len, b[i].amount, T0 + b[i].dt);
    }
    assert_int_equal(stored, ok);
}

static void test_batch_mixed(void **state)
{
    enum { N = sizeof(BATCH) / sizeof(BATCH[0]) };
    struct fake_clock clk;
    struct em m;
    txstats_input_t in[N];
    int res[N], firsts[N];
    size_t stored = 99;
    txstats_t *t = make_capped(&clk, 1000, 100, 2, 4);
    em_init(&m, 1000);
    assert_int_equal(add_e(t, "A", 1, T0 - 2), TXSTATS_OK);
    em_add(&m, "A", 1, 1, T0 - 2);
    batch_inputs(BATCH, N, in);
    assert_int_equal(txstats_add_batch_ex(t, in, N, res, firsts, &stored), TXSTATS_OK);
    check_batch(BATCH, N, res, firsts, &m, stored);
    assert_int_equal(einfo(t).refused, 2);
    for (int64_t now = T0; now <= T0 + 1000; now += 50) {
        clk.now = now;
        em_assert_all(t, &m, now);
        em_assert_top(t, &m, now, TXSTATS_TOP_SUM, 5);
    }
    /* At T0 + 1000 only B (its one at T0 + 50) is left: three places again. */
    const char *names[] = {"E", "F", "G", "H"};
    for (int i = 0; i < 4; i++)
        in[i] = (txstats_input_t){i + 1, T0 + 1000, names[i], 1, NULL, 0};
    assert_int_equal(txstats_add_batch_ex(t, in, 4, res, NULL, &stored), TXSTATS_OK);
    assert_int_equal(stored, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i], TXSTATS_OK);
        em_add(&m, names[i], 1, i + 1, T0 + 1000);
    }
    assert_int_equal(res[3], TXSTATS_ELIMIT);
    assert_int_equal(einfo(t).refused, 3);
    for (int64_t now = T0 + 1000; now <= T0 + 2100; now += 50) {
        clk.now = now;
        em_assert_all(t, &m, now);
    }
    assert_int_equal(txstats_add_batch_ex(t, NULL, 0, NULL, NULL, NULL), TXSTATS_OK);
    assert_int_equal(txstats_add_batch_ex(t, NULL, 1, res, NULL, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_add_batch_ex(NULL, in, 1, res, NULL, NULL), TXSTATS_EINVAL);
    txstats_destroy(t);
    em_free(&m);
}

/* ---- Snapshots: JSON and binary round trips ------------------------------------------------- */

static txstats_t *fill_for_snapshot(struct fake_clock *clk, struct em *m, const struct gen *g)
{
    uint64_t s = 40;
    txstats_t *t = make_capped(clk, g->window, g->skew, 3, 1000);
    em_init(m, g->window);
    for (int i = 0; i < 2000; i++) {
        clk->now = T0 + i / 4;
        gen_add(t, m, g, &s, clk->now);
    }
    return t;
}

/* The model's every entity, the global window, the active count and both full rankings. */
static void assert_like_model(txstats_t *t, struct em *m, int64_t now)
{
    em_assert_all(t, m, now);
    assert_top_caps(t, m, now);
}

/* Load `path` into a fresh instance on the clock at `now`, which must then match the model. */
static txstats_t *load_at(const char *path, const struct gen *g, struct fake_clock *clk,
                          int64_t now)
{
    txstats_t *u = make_capped(clk, g->window, g->skew, 2, 1000);
    clk->now = now;
    assert_int_equal(add_e(u, "only-before-the-load", 1, now), TXSTATS_OK);
    assert_int_equal(txstats_load(u, path), TXSTATS_OK);
    assert_int_equal(estats(u, "only-before-the-load", 20).count, 0); /* replaced */
    return u;
}

static void test_snapshot_round_trip(void **state)
{
    static const struct gen g = {400, 30, 120, 6};
    struct fake_clock clk, clk2;
    struct em m;
    char path[2][128];
    txstats_t *t = fill_for_snapshot(&clk, &m, &g);
    int64_t now = clk.now;
    snprintf(path[0], sizeof(path[0]), "%s/s.json", tmp);
    snprintf(path[1], sizeof(path[1]), "%s/s.bin", tmp);
    assert_int_equal(txstats_save(t, path[0]), TXSTATS_OK);
    assert_int_equal(txstats_save_bin(t, path[1]), TXSTATS_OK);
    assert_like_model(t, &m, now);
    for (int f = 0; f < 2; f++) {
        txstats_t *u = load_at(path[f], &g, &clk2, now); /* the same moment */
        assert_like_model(u, &m, now);
        txstats_destroy(u);
        u = load_at(path[f], &g, &clk2, now + 250); /* later: some left, some arrived */
        assert_like_model(u, &m, now + 250);
        uint64_t s = 41 + (uint64_t)f; /* and it goes on as the original would */
        struct em m2 = m;
        m2.tx = malloc(m.cap * sizeof(*m.tx));
        m2.ents = malloc(m.ents_cap * sizeof(*m.ents));
        memcpy(m2.tx, m.tx, m.n * sizeof(*m.tx));
        memcpy(m2.ents, m.ents, m.nents * sizeof(*m.ents));
        for (int i = 0; i < 600; i++) {
            clk2.now = now + 250 + i / 3;
            gen_add(u, &m2, &g, &s, clk2.now);
        }
        assert_like_model(u, &m2, clk2.now);
        clk2.now += g.window + g.skew;
        assert_like_model(u, &m2, clk2.now);
        assert_int_equal(einfo(u).active, 0);
        txstats_destroy(u);
        em_free(&m2);
    }
    txstats_destroy(t);
    em_free(&m);
}

/* Restarts with another shard count, again and again (a snapshot loaded, or a directory
 * reopened, by an instance with 2, then 3, then 2... shards), each adding to one entity: every
 * file written loads, and the entity keeps every transaction. */
static txstats_t *restart(struct fake_clock *clk, int run, const char *path, int dir)
{
    txstats_t *t = make_capped(clk, 60000, 0, 2 + (unsigned)run % 2, 100);
    clk->now = T0 + run;
    int rc = dir ? txstats_open_dir(t, path, NULL, NULL) : run ? txstats_load(t, path) : 0;
    if (rc != TXSTATS_OK)
        fail_msg("%s, restart %d with %d shards: %d (%s)", dir ? "directory" : path, run,
                 2 + run % 2, rc, txstats_strerror(rc));
    return t;
}

static void test_restarts_with_other_shard_counts(void **state)
{
    char path[3][128];
    snprintf(path[0], sizeof(path[0]), "%s/r.json", tmp);
    snprintf(path[1], sizeof(path[1]), "%s/r.bin", tmp);
    snprintf(path[2], sizeof(path[2]), "%s/rdir", tmp);
    for (int f = 0; f < 3; f++)
        for (int run = 0; run < 12; run++) {
            struct fake_clock clk;
            txstats_t *t = restart(&clk, run, path[f], f == 2);
            assert_int_equal(add_e(t, "card", 1, T0 + run), TXSTATS_OK);
            assert_int_equal(estats(t, "card", 4).count, (uint64_t)run + 1);
            if (f == 0)
                assert_int_equal(txstats_save(t, path[f]), TXSTATS_OK);
            if (f == 1)
                assert_int_equal(txstats_save_bin(t, path[f]), TXSTATS_OK);
            txstats_destroy(t);
        }
}

/* ---- Files written before entities still load (with none) ---------------------------------- */

/* tests/data: v1 files (test_legacy_files.c tells how they were made), and v2 files written by
 * libtxstats 0.2 before entities (tests/data/gen_v2.c printed these statistics). */
#define OLD_T0 INT64_C(1800000000000)

struct old_file {
    const char *name;
    int64_t now;
    txstats_summary_t want;
};

static const struct old_file OLD_SNAPSHOTS[] = {
    {"v1-snapshot.json", OLD_T0, {300, -43261182, 448700556, 0, UINT64_C(66439616965), 0, {0}}},
    {"v1-snapshot.bin", OLD_T0, {300, -43261182, 448700556, 0, UINT64_C(66439616965), 0, {0}}},
    {"v2-snapshot.json", T0, {60, -500000, 1490027, 0, UINT64_C(30901770), 0, {0}}},
    {"v2-snapshot.bin", T0, {60, -500000, 1490027, 0, UINT64_C(30901770), 0, {0}}},
};

static const struct old_file OLD_DIRS[] = {
    {"v1-dir", OLD_T0, {260, -49950498, 446477001, 0, UINT64_C(52660598758), 0, {0}}},
    {"v2-dir", T0, {55, -479854, 1460108, 0, UINT64_C(26956985), 0, {0}}},
};

/* The old contents, no entity; then entities work on top of them. */
static void assert_old_then_entity(txstats_t *t, const struct old_file *f)
{
    txstats_summary_t g = gstats(t);
    size_t n = 9;
    txstats_top_entry_t top[2];
    em_assert_summary(&g, &f->want, f->name, f->now);
    assert_int_equal(einfo(t).active, 0);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_SUM, top, 2, &n), TXSTATS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(txstats_add_entity(t, "new", 3, 77, f->now), TXSTATS_OK);
    assert_int_equal(estats(t, "new", 3).count, 1);
    assert_int_equal(gstats(t).count, f->want.count + 1);
}

static void test_old_snapshots_load(void **state)
{
    char path[512], again[128];
    snprintf(again, sizeof(again), "%s/again.json", tmp);
    for (size_t i = 0; i < sizeof(OLD_SNAPSHOTS) / sizeof(OLD_SNAPSHOTS[0]); i++) {
        const struct old_file *f = &OLD_SNAPSHOTS[i];
        struct fake_clock clk;
        txstats_t *t = make_instance(&clk, f->now, 60000, 0, 2);
        snprintf(path, sizeof(path), "%s/%s", TXSTATS_DATA, f->name);
        assert_int_equal(txstats_load(t, path), TXSTATS_OK);
        assert_old_then_entity(t, f);
        assert_int_equal(txstats_save(t, again), TXSTATS_OK); /* old contents and the entity */
        txstats_destroy(t);
        t = make_instance(&clk, f->now, 60000, 0, 3);
        assert_int_equal(txstats_load(t, again), TXSTATS_OK);
        assert_int_equal(estats(t, "new", 3).count, 1);
        assert_int_equal(gstats(t).count, f->want.count + 1);
        txstats_destroy(t);
    }
}

static void test_old_dirs_open(void **state)
{
    char cmd[1200], dir[256];
    for (size_t i = 0; i < sizeof(OLD_DIRS) / sizeof(OLD_DIRS[0]); i++) {
        const struct old_file *f = &OLD_DIRS[i];
        struct fake_clock clk;
        snprintf(dir, sizeof(dir), "%s/%s", tmp, f->name);
        snprintf(cmd, sizeof(cmd), "cp -r '%s/%s' '%s'", TXSTATS_DATA, f->name, dir);
        assert_int_equal(system(cmd), 0);
        txstats_t *t = make_instance(&clk, f->now, 60000, 0, 2);
        assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
        assert_old_then_entity(t, f);
        txstats_destroy(t); /* the entity's add only in the journal */
        t = make_instance(&clk, f->now, 60000, 0, 2);
        assert_int_equal(txstats_open_dir(t, dir, NULL, NULL), TXSTATS_OK);
        assert_int_equal(estats(t, "new", 3).count, 1);
        assert_int_equal(estats(t, "new", 3).sum_lo, 77);
        assert_int_equal(gstats(t).count, f->want.count + 1);
        assert_int_equal(einfo(t).active, 1);
        txstats_destroy(t);
    }
}

/* ---- Threads -------------------------------------------------------------------------------- */

enum { TH_ADDERS = 3, TH_EACH = 3000, TH_SHARED = 64, TH_OWN = 40 };

/* Transaction i of thread id: entities shared by all threads, and the thread's own. */
static size_t th_tx(int id, int i, char *ent, txstats_amount_t *a, int64_t *ts)
{
    *a = (txstats_amount_t)((i * 31 + id * 17) % 2001 - 1000) * 1000 + id;
    *ts = T0 - (i % 900);
    if (i % 4 == 3)
        return (size_t)snprintf(ent, 32, "own-%d-%d", id, i / 4 % TH_OWN);
    return (size_t)snprintf(ent, 32, "shared-%d", (i / 4 * 7 + i % 4 + id) % TH_SHARED);
}

struct th_arg {
    txstats_t *t;
    int id, failures;
    atomic_int *running;
};

/* Adds in blocks of 8: one block in three as one batch, the others one by one. */
static void *th_adder(void *p)
{
    struct th_arg *a = p;
    char ent[8][32];
    txstats_input_t in[8];
    int res[8];
    for (int b = 0; b < TH_EACH / 8; b++) {
        for (int k = 0; k < 8; k++) {
            int64_t ts;
            txstats_amount_t amount;
            size_t len = th_tx(a->id, b * 8 + k, ent[k], &amount, &ts);
            in[k] = (txstats_input_t){amount, ts, ent[k], len, NULL, 0};
        }
        if (b % 3 == 2) {
            size_t stored = 0;
            a->failures += txstats_add_batch_ex(a->t, in, 8, res, NULL, &stored) != 0;
            a->failures += stored != 8;
            continue;
        }
        for (int k = 0; k < 8; k++)
            a->failures += (k % 2 ? txstats_add_ex(a->t, &in[k], NULL)
                                  : txstats_add_entity(a->t, in[k].entity, in[k].entity_len,
                                                       in[k].amount, in[k].timestamp_ms)) != 0;
    }
    atomic_fetch_sub(a->running, 1);
    return NULL;
}

/* While the adders run: rankings are ordered, counts never exceed what can exist. */
static void *th_reader(void *p)
{
    struct th_arg *a = p;
    txstats_top_entry_t top[8];
    while (atomic_load(a->running) > 0) {
        size_t n = 0;
        a->failures += txstats_top(a->t, TXSTATS_TOP_COUNT, top, 8, &n) != TXSTATS_OK;
        a->failures += n > 8;
        for (size_t i = 1; i < n; i++)
            a->failures += top[i].stats.count > top[i - 1].stats.count;
        txstats_entity_info_t info;
        a->failures += txstats_entity_info(a->t, &info) != TXSTATS_OK;
        a->failures += info.active > TH_SHARED + TH_ADDERS * TH_OWN;
        txstats_summary_t s;
        a->failures += txstats_entity_stats(a->t, "shared-0", 8, &s) != TXSTATS_OK;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fake_clock clk;
    struct em m;
    pthread_t th[TH_ADDERS + 1];
    struct th_arg arg[TH_ADDERS + 1];
    atomic_int running = TH_ADDERS;
    txstats_t *t = make_capped(&clk, 60000, 0, 0, 1000);
    for (int i = 0; i <= TH_ADDERS; i++) {
        arg[i] = (struct th_arg){t, i, 0, &running};
        pthread_create(&th[i], NULL, i < TH_ADDERS ? th_adder : th_reader, &arg[i]);
    }
    for (int i = 0; i <= TH_ADDERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(arg[i].failures, 0);
    }
    em_init(&m, 60000);
    for (int id = 0; id < TH_ADDERS; id++)
        for (int i = 0; i < TH_EACH / 8 * 8; i++) {
            char ent[32];
            txstats_amount_t a;
            int64_t ts;
            size_t len = th_tx(id, i, ent, &a, &ts);
            em_add(&m, ent, len, a, ts);
        }
    em_assert_all(t, &m, T0);
    em_assert_top(t, &m, T0, TXSTATS_TOP_SUM, 500);
    em_assert_top(t, &m, T0, TXSTATS_TOP_COUNT, 500);
    assert_int_equal(einfo(t).active, TH_SHARED + TH_ADDERS * TH_OWN);
    txstats_destroy(t);
    em_free(&m);
}

/* Threads racing for the last places under the cap: exactly max_entities entities exist after,
 * every refusal was counted, and what was accepted is what the windows hold. */
enum { CAP_THREADS = 3, CAP_NAMES = 100, CAP_MAX = 40 };

struct cap_arg {
    txstats_t *t;
    int id, ok, limited, other;
};

static void *cap_adder(void *p)
{
    struct cap_arg *a = p;
    char ent[16];
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < CAP_NAMES; j++) {
            int d = (j * (2 * a->id + 1) + a->id * 33) % CAP_NAMES;
            int len = snprintf(ent, sizeof(ent), "c%d", d);
            int rc = txstats_add_entity(a->t, ent, (size_t)len, 1000 + d, T0 - pass);
            a->ok += rc == TXSTATS_OK;
            a->limited += rc == TXSTATS_ELIMIT;
            a->other += rc != TXSTATS_OK && rc != TXSTATS_ELIMIT;
        }
    return NULL;
}

static void test_threads_at_the_cap(void **state)
{
    struct fake_clock clk;
    pthread_t th[CAP_THREADS];
    struct cap_arg arg[CAP_THREADS];
    txstats_top_entry_t top[CAP_NAMES];
    size_t n = 0;
    int ok = 0, limited = 0;
    uint64_t ranked = 0;
    txstats_t *t = make_capped(&clk, 60000, 0, 0, CAP_MAX);
    for (int i = 0; i < CAP_THREADS; i++) {
        arg[i] = (struct cap_arg){t, i, 0, 0, 0};
        pthread_create(&th[i], NULL, cap_adder, &arg[i]);
    }
    for (int i = 0; i < CAP_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(arg[i].other, 0);
        ok += arg[i].ok;
        limited += arg[i].limited;
    }
    txstats_entity_info_t info = einfo(t);
    assert_int_equal(info.active, CAP_MAX);
    assert_int_equal(info.refused, (uint64_t)limited);
    assert_int_equal(gstats(t).count, (uint64_t)ok);
    assert_int_equal(txstats_top(t, TXSTATS_TOP_COUNT, top, CAP_NAMES, &n), TXSTATS_OK);
    assert_int_equal(n, CAP_MAX);
    for (size_t i = 0; i < n; i++)
        ranked += top[i].stats.count;
    assert_int_equal(ranked, (uint64_t)ok);
    txstats_destroy(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_table_of_keys),
        T(test_expiry_every_millisecond),
        T(test_extremes_expire),
        T(test_allocation_failures),
        T(test_skew_activation),
        T(test_clear),
        T(test_cap),
        T(test_cap_frees_room),
        T(test_default_cap),
        T(test_key_lengths),
        T(test_merge_equals_global),
        T(test_top_random),
        T(test_top_arguments),
        T(test_idempotency_and_entity),
        T(test_batch_mixed),
        T(test_snapshot_round_trip),
        T(test_restarts_with_other_shard_counts),
        T(test_old_snapshots_load),
        T(test_old_dirs_open),
        T(test_threads),
        T(test_threads_at_the_cap),
    };
    return cmocka_run_group_tests_name("entities", tests, NULL, NULL);
}
