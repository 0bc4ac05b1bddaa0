/* SPDX-License-Identifier: MIT */
/* The image writer: shards in short holds, then keys, then journal cuts (collect.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "collect.h"
#include "image.h"

#define HOLD_BYTES ((size_t)1 << 20) /* cell bytes copied under one hold of a shard's lock */
/* A 'B' and a 'C' record at most: 3 + 8 words, and a word or a quarter of one per bucket. */
#define CELL_MAX_BYTES (8 * (11 + (size_t)TXSTATS__DIST_BUCKETS))
#define KEY_RESTARTS   8 /* pieces of a sub-table that moved under us, before one whole hold */
/* A chunk of tags: an 'N' record per tag at most (3 + 16 words), and a 'T' record. */
#define TAGS_MAX_BYTES (8 * (TXSTATS__TAG_CAP * (3 + 16) + 3 + 2 * TXSTATS__TAG_CAP))

_Static_assert(HOLD_BYTES + TAGS_MAX_BYTES + CELL_MAX_BYTES + 64 <= TXSTATS__IMG_BLOCK_MAX,
               "a hold fits a block");

struct cuts {
    uint64_t bound;
    struct txstats__img_cut *v;
    size_t n, cap;
};

struct txstats__collect {
    txstats_t *t;
    bool checkpoint;
    unsigned streams;
    uint64_t generation;
    txstats__emit_fn emit;
    void *ectx;
    struct txstats__img_out out;
    uint64_t *hist;    /* TXSTATS__DIST_BUCKETS counts, zero between cells */
    uint16_t *touched; /* the buckets a cell's tally made non-zero */
    uint64_t cells, count, kept, keys;
    struct cuts cuts[TXSTATS__MAX_SHARDS];
    uint64_t old_bound; /* for streams beyond the shards */
    /* The cursor in the shard being written. */
    int64_t from; /* the next timestamp to visit */
    bool mid;     /* cell `from` is open: its amounts before (chunk, idx) are written */
    const struct txstats__chunk *chunk;
    uint32_t idx;
    const struct txstats__tchunk *tchunk; /* the open cell's next chunk of tags to write */
    /* The entities of the shard being written: the image index each slot was named with, and
     * the slot's gen then (0: not named yet, or since reused). */
    uint32_t *ent_idx, *ent_gen;
    size_t ent_cap;
    uint32_t ent_next;
    /* The open 'K' record. */
    size_t key_at;
    uint64_t key_n;
    bool flush_in_key; /* a sub-table that kept moving: its keys flush under its lock */
};

int txstats__collect_new(txstats_t *t, bool checkpoint, unsigned streams,
                         struct txstats__collect **out)
{
    struct txstats__collect *c = txstats__calloc(&t->mem, 1, sizeof(*c));
    *out = NULL;
    if (!c)
        return TXSTATS_ENOMEM;
    c->t = t;
    c->checkpoint = checkpoint;
    c->streams = streams > t->nshards ? streams : t->nshards;
    c->hist = txstats__calloc(&t->mem, TXSTATS__DIST_BUCKETS, sizeof(*c->hist));
    c->touched = txstats__alloc(&t->mem, TXSTATS__DIST_BUCKETS * sizeof(*c->touched));
    if (!c->hist || !c->touched || txstats__img_out_init(&c->out, &t->mem) != TXSTATS_OK) {
        txstats__collect_free(c);
        return TXSTATS_ENOMEM;
    }
    *out = c;
    return TXSTATS_OK;
}

void txstats__collect_free(struct txstats__collect *c)
{
    if (!c)
        return;
    const struct txstats__mem *mem = &c->t->mem;
    for (unsigned i = 0; i < TXSTATS__MAX_SHARDS; i++)
        txstats__free(mem, c->cuts[i].v);
    txstats__free(mem, c->hist);
    txstats__free(mem, c->touched);
    txstats__free(mem, c->ent_idx);
    txstats__free(mem, c->ent_gen);
    txstats__img_out_fini(&c->out, mem);
    txstats__free(mem, c);
}

unsigned txstats__collect_bounds(const struct txstats__collect *c, uint64_t *bound)
{
    for (unsigned i = 0; i < c->streams; i++)
        bound[i] = i < c->t->nshards ? c->cuts[i].bound : c->old_bound;
    return c->streams;
}

/* The block so far out to the file (no lock held): 0 or -1 with errno. */
static int flush(struct txstats__collect *c)
{
    if (c->out.n == 0)
        return 0;
    size_t size = txstats__img_seal(&c->out);
    c->out.n = 0;
    return c->emit(c->ectx, c->out.buf, size);
}

static void put(struct txstats__collect *c, uint64_t v)
{
    txstats__img_put(&c->out, v);
}

/* ---- cells ---------------------------------------------------------------------------------- */

/* 'A' records of the open cell's amounts from the cursor on, while the hold has room: true once
 * every amount is written. */
static bool amounts(struct txstats__collect *c, const struct txstats__cell *cl, int64_t ts)
{
    if (!c->chunk)
        return true; /* nothing retained */
    if (c->out.n + 32 > HOLD_BYTES)
        return false;
    size_t at = c->out.n;
    uint64_t n = 0;
    put(c, TXSTATS__IMG_AMOUNTS);
    put(c, (uint64_t)ts);
    put(c, 0);
    for (;;) {
        const struct txstats__chunk *k = c->chunk;
        for (; c->idx < k->n && c->out.n < HOLD_BYTES; n++)
            put(c, (uint64_t)k->amounts[c->idx++]);
        if (c->idx < k->n || k == cl->tail)
            break;
        c->chunk = k->next;
        c->idx = 0;
    }
    txstats__img_patch(&c->out, at + 16, n);
    if (n == 0)
        c->out.n = at;
    c->kept += n;
    return c->chunk == cl->tail && c->idx == cl->tail->n;
}

/* An 'N' record naming a slot's entity, unless it was named since the slot was last reused. */
static void name(struct txstats__collect *c, const struct txstats__entities *e, uint32_t slot)
{
    const struct txstats__entity *en = txstats__ent_at(e, slot);
    if (c->ent_gen[slot] == en->gen)
        return;
    c->ent_gen[slot] = en->gen;
    c->ent_idx[slot] = c->ent_next++;
    uint32_t len = en->key_len, words = (len + 7) / 8;
    const uint8_t *key = txstats__ent_key(en);
    put(c, TXSTATS__IMG_NAME);
    put(c, c->ent_idx[slot]);
    put(c, len);
    put(c, words);
    for (uint32_t w = 0; w < words; w++) {
        uint64_t v = 0;
        for (uint32_t b = 0; b < 8 && 8 * w + b < len; b++)
            v |= (uint64_t)key[8 * w + b] << (8 * b);
        put(c, v);
    }
}

/* 'N' and 'T' records of the open cell's tags from the cursor on, a chunk at a time while the
 * hold has room: true once every tag is written. Chunks before the tail never change; the tail
 * only grows, and is written in the hold that closes the cell. */
static bool tags(struct txstats__collect *c, const struct txstats__cell *cl, int64_t ts,
                 const struct txstats__entities *e)
{
    while (c->tchunk) {
        if (c->out.n >= HOLD_BYTES)
            return false;
        const struct txstats__tchunk *k = c->tchunk;
        for (uint32_t i = 0; i < k->n; i++)
            name(c, e, k->slot[i]);
        put(c, TXSTATS__IMG_TAGS);
        put(c, (uint64_t)ts);
        put(c, k->n);
        for (uint32_t i = 0; i < k->n; i++) {
            put(c, c->ent_idx[k->slot[i]]);
            put(c, (uint64_t)k->amount[i]);
        }
        c->tchunk = k == cl->tags ? NULL : k->next;
    }
    return true;
}

/* The 'B' record: the buckets that hold one amount not retained, two bytes each (what the live
 * list holds), packed four to a word; the others stay in touched[0 .. returned). */
static size_t singles(struct txstats__collect *c, int64_t ts, size_t nt)
{
    size_t at = c->out.n, n = 0, many = 0;
    uint64_t word = 0;
    put(c, TXSTATS__IMG_BUCKETS);
    put(c, (uint64_t)ts);
    put(c, 0);
    for (size_t i = 0; i < nt; i++) {
        uint16_t b = c->touched[i];
        if (c->hist[b] != 1) {
            c->touched[many++] = b;
            continue;
        }
        c->hist[b] = 0;
        word |= (uint64_t)b << (16 * (n % 4));
        if (++n % 4 == 0) {
            put(c, word);
            word = 0;
        }
    }
    if (n % 4)
        put(c, word);
    txstats__img_patch(&c->out, at + 16, n);
    if (n == 0)
        c->out.n = at;
    return many;
}

/* The 'C' record: aggregates, and the counts of the buckets holding more than one amount not
 * retained. */
static void close_cell(struct txstats__collect *c, const struct txstats__cell *cl, int64_t ts)
{
    size_t nt = 0;
    txstats__dist_tally(cl->dtail, c->hist, c->touched, &nt);
    nt = singles(c, ts, nt);
    uint64_t f[8] = {
        TXSTATS__IMG_CELL,         (uint64_t)ts,      cl->count,         (uint64_t)cl->sum,
        (uint64_t)(cl->sum >> 64), (uint64_t)cl->min, (uint64_t)cl->max, nt};
    for (int i = 0; i < 8; i++)
        put(c, f[i]);
    for (size_t i = 0; i < nt; i++) {
        uint16_t b = c->touched[i];
        put(c, c->hist[b] << 16 | b);
        c->hist[b] = 0;
    }
    c->cells++;
    c->count += cl->count;
}

/* Cell ts from the cursor: true when closed, false when the hold is full first. */
static bool cell(struct txstats__collect *c, const struct txstats__shard *s, int64_t ts)
{
    const struct txstats__cell *cl = txstats__window_cell(&s->w, ts);
    if (!c->mid) {
        c->chunk = cl->tail ? cl->tail->next : NULL;
        c->idx = 0;
        c->tchunk = cl->tags ? cl->tags->next : NULL;
        c->mid = true;
    }
    if (!amounts(c, cl, ts) || !tags(c, cl, ts, &s->ents))
        return false;
    close_cell(c, cl, ts);
    c->mid = false;
    return true;
}

/* Cells from the cursor on while the hold has room. Returns the cut's ts_hi: the first
 * timestamp not wholly written (INT64_MAX once the shard is done, with *done). */
static int64_t copy(struct txstats__collect *c, const struct txstats__shard *s, bool *done)
{
    const struct txstats__window *w = &s->w;
    int64_t lo = w->now - w->g->window_ms + 1, hi = w->now + w->g->skew_ms;
    if (c->mid && !txstats__window_used(w, c->from)) { /* the open cell left the window */
        put(c, TXSTATS__IMG_VANISH);
        put(c, (uint64_t)c->from);
        c->mid = false;
        c->from++;
    }
    int64_t ts = c->mid ? c->from : txstats__window_next_used(w, c->from > lo ? c->from : lo, hi);
    for (; ts != INT64_MAX; ts = txstats__window_next_used(w, ts + 1, hi)) {
        if ((!c->mid && c->out.n >= HOLD_BYTES) || !cell(c, s, ts)) {
            c->from = ts;
            return ts;
        }
    }
    *done = true;
    return INT64_MAX;
}

/* A hold that ends inside (or just before) the cell the previous hold ended at cuts at the same
 * ts_hi: the earlier cut is the one the rule picks for every ts below it (the cells before it were
 * all written by then), and the reader wants ts_hi increasing, so the later one is not kept. */
static int add_cut(struct txstats__collect *c, unsigned i, int64_t hi, uint64_t seq)
{
    struct cuts *k = &c->cuts[i];
    if (k->n && k->v[k->n - 1].hi == hi)
        return 0;
    if (txstats__reserve(&c->t->mem, (void **)&k->v, &k->cap, k->n + 1, sizeof(*k->v)) != 0)
        return errno = ENOMEM, -1;
    k->v[k->n++] = (struct txstats__img_cut){hi, seq};
    return 0;
}

/* Room to name every slot of the shard's entities (new room zeroed): 0 or -1 (ENOMEM). */
static int name_room(struct txstats__collect *c, const struct txstats__entities *e)
{
    size_t need = txstats__ent_slots(e);
    if (need <= c->ent_cap)
        return 0;
    uint32_t *idx = txstats__calloc(&c->t->mem, need, sizeof(*idx));
    uint32_t *gen = txstats__calloc(&c->t->mem, need, sizeof(*gen));
    if (!idx || !gen) {
        txstats__free(&c->t->mem, idx);
        txstats__free(&c->t->mem, gen);
        return errno = ENOMEM, -1;
    }
    if (c->ent_cap) {
        memcpy(idx, c->ent_idx, c->ent_cap * sizeof(*idx));
        memcpy(gen, c->ent_gen, c->ent_cap * sizeof(*gen));
    }
    txstats__free(&c->t->mem, c->ent_idx);
    txstats__free(&c->t->mem, c->ent_gen);
    c->ent_idx = idx;
    c->ent_gen = gen;
    c->ent_cap = need;
    return 0;
}

/* One hold of shard i's lock. 0 or -1 with errno. */
static int hold(struct txstats__collect *c, unsigned i, bool first, bool *done)
{
    txstats_t *t = c->t;
    struct txstats__shard *s = &t->shards[i];
    int64_t now = txstats__now(t);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&t->generation) != c->generation)
        rc = (errno = EAGAIN, -1);
    else if (first && c->checkpoint && txstats__jstream_rotate(t->journal, s->js) != TXSTATS_OK)
        rc = -1;
    else
        rc = name_room(c, &s->ents);
    if (rc == 0) {
        if (first && c->checkpoint)
            c->cuts[i].bound = s->js->seg;
        txstats__window_advance(&s->w, now);
        if (first) {
            put(c, TXSTATS__IMG_SECTION);
            put(c, i);
        }
        int64_t hi = copy(c, s, done);
        if (c->checkpoint)
            rc = add_cut(c, i, hi, s->js->seq);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int shard(struct txstats__collect *c, unsigned i)
{
    bool done = false;
    c->from = INT64_MIN;
    c->mid = false;
    c->cuts[i].n = 0;
    c->ent_next = 0;
    if (c->ent_cap)
        memset(c->ent_gen, 0, c->ent_cap * sizeof(*c->ent_gen));
    for (bool first = true; !done; first = false)
        if (hold(c, i, first, &done) != 0 || flush(c) != 0)
            return -1;
    return 0;
}

/* ---- keys and journal ----------------------------------------------------------------------- */

static void keys_open(struct txstats__collect *c)
{
    c->key_at = c->out.n;
    c->key_n = 0;
    put(c, TXSTATS__IMG_KEYS);
    put(c, 0);
}

static void keys_close(struct txstats__collect *c)
{
    txstats__img_patch(&c->out, c->key_at + 8, c->key_n);
    if (c->key_n == 0)
        c->out.n = c->key_at;
    c->keys += c->key_n;
}

static int key_put(void *ctx, const struct txstats__key *key, const struct txstats__key_info *info)
{
    struct txstats__collect *c = ctx;
    if (txstats__img_room(&c->out) < 8 * TXSTATS__IMG_KEY_WORDS) {
        if (!c->flush_in_key)
            return 1; /* the next piece */
        keys_close(c);
        if (flush(c) != 0)
            return -1;
        keys_open(c);
    }
    uint64_t f[TXSTATS__IMG_KEY_WORDS] = {key->h[0], key->h[1], info->fp, (uint64_t)info->expires,
                                          (uint64_t)(int64_t)info->status};
    for (int i = 0; i < TXSTATS__IMG_KEY_WORDS; i++)
        put(c, f[i]);
    c->key_n++;
    return 0;
}

/* Sub-table i in pieces; visited again from its first slot whenever its slots moved between two
 * pieces (a key seen twice is loaded once), and in one hold after KEY_RESTARTS such moves. */
static int sub_table(struct txstats__collect *c, unsigned i, int64_t now)
{
    uint64_t from = 0, moves = 0, m;
    int restarts = 0;
    for (bool first = true; from != UINT64_MAX; first = false) {
        c->flush_in_key = restarts >= KEY_RESTARTS;
        size_t max = c->flush_in_key ? SIZE_MAX : txstats__img_room(&c->out) / 40;
        keys_open(c);
        int rc = txstats__keys_each_from(&c->t->keys, i, now, &from, max, &m, key_put, c);
        keys_close(c);
        if (rc < 0 || flush(c) != 0)
            return -1;
        if (atomic_load(&c->t->generation) != c->generation)
            return errno = EAGAIN, -1;
        if (!first && m != moves) {
            from = 0;
            restarts++;
        }
        moves = m;
    }
    return 0;
}

/* 'J' records of one stream, as many as its cuts need. */
static int journal_stream(struct txstats__collect *c, unsigned s, uint64_t bound,
                          const struct cuts *k)
{
    size_t done = 0;
    do {
        if (txstats__img_room(&c->out) < 64 && flush(c) != 0)
            return -1;
        size_t n = (txstats__img_room(&c->out) - 32) / 16;
        n = n < k->n - done ? n : k->n - done;
        put(c, TXSTATS__IMG_JOURNAL);
        put(c, s);
        put(c, bound);
        put(c, n);
        for (size_t j = done; j < done + n; j++) {
            put(c, (uint64_t)k->v[j].hi);
            put(c, k->v[j].seq);
        }
        done += n;
    } while (done < k->n);
    return 0;
}

static int journal(struct txstats__collect *c)
{
    static const struct cuts none;
    for (unsigned s = 0; c->checkpoint && s < c->streams; s++) {
        bool live = s < c->t->nshards;
        if (journal_stream(c, s, live ? c->cuts[s].bound : c->old_bound,
                           live ? &c->cuts[s] : &none) != 0)
            return -1;
    }
    return 0;
}

/* ---- the whole image ------------------------------------------------------------------------ */

static void header(struct txstats__collect *c, txstats__emit_fn emit, void *ectx)
{
    txstats_t *t = c->t;
    c->emit = emit;
    c->ectx = ectx;
    c->out.n = 0;
    c->cells = c->count = c->kept = c->keys = 0;
    c->generation = atomic_load(&t->generation);
    if (c->checkpoint) /* everything the older streams held was replayed at open */
        c->old_bound = atomic_load(&t->journal->next_seg);
    uint64_t f[5] = {TXSTATS__IMG_HEADER, (uint64_t)t->cfg.window_ms, (uint64_t)txstats__now(t),
                     t->nshards, c->checkpoint ? TXSTATS__IMG_JOURNAL_CKPT : 0};
    for (int i = 0; i < 5; i++)
        put(c, f[i]);
    put(c, TXSTATS__IMG_PLACE);
    put(c, atomic_load(&t->ents.hash_key[0]));
    put(c, atomic_load(&t->ents.hash_key[1]));
    put(c, TXSTATS__PLACE_BUCKETS / 8);
    for (unsigned w = 0; w < TXSTATS__PLACE_BUCKETS / 8; w++) {
        uint64_t v = 0;
        for (unsigned b = 0; b < 8; b++)
            v |= (uint64_t)atomic_load_explicit(&t->place[8 * w + b], memory_order_relaxed)
                 << (8 * b);
        put(c, v);
    }
}

int txstats__collect_produce(void *collect, txstats__emit_fn emit, void *emit_ctx)
{
    struct txstats__collect *c = collect;
    txstats_t *t = c->t;
    if (emit(emit_ctx, TXSTATS__IMG_MAGIC, 8) != 0)
        return -1;
    header(c, emit, emit_ctx);
    for (unsigned i = 0; i < t->nshards; i++)
        if (shard(c, i) != 0)
            return -1;
    int64_t now = txstats__now(t); /* a stored transaction's key is older than it */
    for (unsigned i = 0; i < TXSTATS__KEY_SUBTABLES; i++)
        if (sub_table(c, i, now) != 0)
            return -1;
    if (journal(c) != 0)
        return -1;
    if (txstats__img_room(&c->out) < 64 && flush(c) != 0)
        return -1;
    uint64_t f[5] = {TXSTATS__IMG_END, c->cells, c->count, c->kept, c->keys};
    for (int i = 0; i < 5; i++)
        put(c, f[i]);
    return flush(c);
}
