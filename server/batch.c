/* SPDX-License-Identifier: MIT */
/*
 * POST /transactions/batch: NDJSON, one transaction object per line, each line judged on its own
 * like POST /transactions (and like Elasticsearch's _bulk). The body is parsed as it arrives:
 * the request holds its transactions (16 bytes each) and one line at a time, never the text.
 * Lines are numbered from 1; blank lines (only spaces, tabs, CR) are skipped; a line may end in
 * LF or CRLF, the last one in nothing.
 *
 * A line may carry "idempotency_key" (1 to 255 printable ASCII characters): the line is then
 * judged as POST /transactions with that Idempotency-Key, so a batch retried after no answer
 * counts every line once; lines answered from their key are "replayed". A line may carry "key"
 * (key.h) as a POST does: it also counts in that key's window.
 *
 * 200 {"stored":N,"expired":M,"replayed":R,"rejected":[{"line":L,"status":S,"error":"..."}]}
 * 400 the body holds no JSON line at all; 413 over --max-batch lines or --max-batch-bytes:
 * nothing stored, the connection closed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "history.h"
#include "json.h"
#include "key.h"

struct reject {
    uint32_t line;
    uint16_t status;
    char error[122];
};

struct batch {
    struct srv *s;
    txstats_tx_t *tx;
    uint32_t *tx_line;
    size_t ntx, cap_tx, cap_line;
    size_t *key_off; /* per transaction: its idempotency key, then its key, in `pool` (SIZE_MAX:
                        none) */
    size_t cap_key_off;
    char *pool; /* the lines' keys, NUL-terminated one after another */
    size_t pool_len, cap_pool;
    txstats_input_t *in; /* built from tx and key_off once the body is read */
    struct reject *rej;
    size_t nrej, cap_rej;
    uint32_t lines; /* physical lines seen */
    size_t json;    /* lines that were JSON (a transaction, or a 422) */
    char *line;     /* the line being read, up to --max-body-bytes */
    size_t len;     /* its length so far */
    bool long_line; /* it passed --max-body-bytes */
    bool too_many;  /* more than --max-batch transaction lines */
    bool no_memory;
    char chunk[16384];
};

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 256;
    void *q = realloc(*p, ncap * size);
    if (!q)
        return false;
    *p = q;
    *cap = ncap;
    return true;
}

static void reject(struct batch *b, uint32_t line, int status, const char *error)
{
    if (!grow((void **)&b->rej, &b->cap_rej, b->nrej, sizeof(*b->rej))) {
        b->no_memory = true;
        return;
    }
    struct reject *r = &b->rej[b->nrej++];
    r->line = line;
    r->status = (uint16_t)status;
    snprintf(r->error, sizeof(r->error), "%.*s", (int)sizeof(r->error) - 1, error); /* cut */
}

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

/* `n` bytes into the pool, NUL-terminated: their offset, or SIZE_MAX when out of memory. */
static size_t pool_put(struct batch *b, const char *p, size_t n)
{
    while (b->pool_len + n + 1 > b->cap_pool) {
        size_t cap = b->cap_pool ? b->cap_pool * 2 : 4096;
        char *q = realloc(b->pool, cap);
        if (!q) {
            b->no_memory = true;
            return SIZE_MAX;
        }
        b->pool = q;
        b->cap_pool = cap;
    }
    size_t at = b->pool_len;
    memcpy(b->pool + at, p, n);
    b->pool[at + n] = '\0';
    b->pool_len += n + 1;
    return at;
}

/* The line's idempotency key and key into the pool (before the transaction joins the batch):
 * false when out of memory. */
static bool remember_keys(struct batch *b, const struct srv_tx *tx)
{
    if (!grow((void **)&b->key_off, &b->cap_key_off, 2 * b->ntx + 1, sizeof(*b->key_off))) {
        b->no_memory = true;
        return false;
    }
    size_t *off = &b->key_off[2 * b->ntx];
    off[0] = off[1] = SIZE_MAX;
    if (tx->key_state == 1 && (off[0] = pool_put(b, tx->key, tx->key_len)) == SIZE_MAX)
        return false;
    if (tx->entity_len && (off[1] = pool_put(b, tx->entity, tx->entity_len)) == SIZE_MAX)
        return false;
    return true;
}

/* One whole line (without its LF). */
static void end_line(struct batch *b)
{
    uint32_t no = ++b->lines;
    size_t n = b->len;
    bool too_long = b->long_line;
    b->len = 0;
    b->long_line = false;
    if (n > 0 && b->line[n - 1] == '\r')
        n--;
    if (!too_long && blank(b->line, n))
        return;
    if ((int64_t)(b->ntx + b->nrej) >= b->s->opt.max_batch) {
        b->too_many = true;
        return;
    }
    if (too_long) { /* judged on its own (413), and no sign that the body is not NDJSON */
        srv_count_post(&b->s->counters, POST_TOO_LARGE);
        reject(b, no, 413, "line longer than --max-body-bytes");
        b->json++;
        return;
    }
    struct srv_tx tx;
    char err[256];
    int st = srv_parse_transaction(b->line, n, &tx, err, sizeof(err));
    b->json += st != 400;
    if (st == 0 && tx.key_state < 0) {
        st = 422;
        snprintf(err, sizeof(err),
                 "'idempotency_key' must be a string of 1 to %d printable ASCII "
                 "characters",
                 TXSTATS_MAX_KEY_BYTES);
    }
    if (st != 0) {
        srv_count_post(&b->s->counters, st == 400 ? POST_INVALID_JSON : POST_INVALID_FIELD);
        reject(b, no, st, err);
        return;
    }
    if (!grow((void **)&b->tx, &b->cap_tx, b->ntx, sizeof(*b->tx)) ||
        !grow((void **)&b->tx_line, &b->cap_line, b->ntx, sizeof(*b->tx_line))) {
        b->no_memory = true;
        return;
    }
    if (!remember_keys(b, &tx))
        return;
    b->tx[b->ntx] = (txstats_tx_t){tx.amount, tx.timestamp_ms};
    b->tx_line[b->ntx++] = no;
}

/* Bytes as they arrive: split into lines. */
static void feed(struct batch *b, const char *p, size_t n)
{
    size_t max = (size_t)b->s->opt.max_body_bytes;
    while (n > 0 && !b->too_many && !b->no_memory) {
        const char *lf = memchr(p, '\n', n);
        size_t take = lf ? (size_t)(lf - p) : n;
        size_t room = b->len < max ? max - b->len : 0;
        memcpy(b->line + b->len, p, take < room ? take : room);
        b->len += take < room ? take : room;
        /* Past the limit only JSON whitespace (RFC 8259 §2): dropped, the line is the same. */
        b->long_line |= take > room && !blank(p + room, take - room);
        p += take + (lf != NULL);
        n -= take + (lf != NULL);
        if (lf)
            end_line(b);
    }
}

static int sink(void *ctx, const char *data, size_t len)
{
    struct batch *b = ctx;
    feed(b, data, len);
    return b->too_many ? 413 : 0;
}

/* Read the whole body: 0, or the HTTP status of srv_read_body_stream (413 too large or too many
 * lines, 408, 400). */
static int read_all(struct batch *b, struct mg_connection *c)
{
    int st =
        srv_read_body_stream(c, b->s->opt.max_batch_bytes, b->chunk, sizeof(b->chunk), sink, b);
    if (st == 0 && (b->len > 0 || b->long_line)) /* a last line without LF */
        end_line(b);
    return st == 0 && b->too_many ? 413 : st;
}

struct tally {
    size_t stored, expired, replayed;
};

/* A line's status into the tally, or a rejection; `first`: a duplicate's first outcome. */
static void judge(struct batch *b, size_t i, int rc, int first, const char *err, struct tally *t)
{
    struct srv_counters *k = &b->s->counters;
    if (rc == TXSTATS_DUPLICATE && (first == TXSTATS_OK || first == TXSTATS_EXPIRED)) {
        srv_count_post(k, POST_REPLAYED);
        t->replayed++;
        return;
    }
    if (rc == TXSTATS_DUPLICATE)
        rc = first; /* a refusal, answered again */
    if (rc == TXSTATS_OK) {
        srv_count_post(k, POST_STORED);
        srv_history_note(b->s, b->tx[i].amount, b->tx[i].timestamp_ms);
        t->stored++;
    } else if (rc == TXSTATS_EXPIRED) {
        srv_count_post(k, POST_EXPIRED);
        t->expired++;
    } else if (rc == TXSTATS_EFUTURE || rc == TXSTATS_ERANGE) {
        srv_count_post(k, rc == TXSTATS_EFUTURE ? POST_FUTURE : POST_INVALID_FIELD);
        reject(b, b->tx_line[i], 422,
               rc == TXSTATS_EFUTURE ? "'timestamp' is in the future"
                                     : "'amount' is out of range: |amount| must be below 10^12");
    } else if (rc == TXSTATS_ECONFLICT) {
        srv_count_post(k, POST_CONFLICT);
        reject(b, b->tx_line[i], 422,
               "this idempotency_key was already used for a different transaction");
    } else if (rc == TXSTATS_ELIMIT) {
        srv_count_post(k, POST_KEY_LIMIT);
        reject(b, b->tx_line[i], 503, SRV_KEY_LIMIT_MESSAGE);
    } else {
        srv_count_post(k, POST_UNAVAILABLE);
        reject(b, b->tx_line[i], 503,
               rc == TXSTATS_EFULL ? "too many idempotency keys are held; retry later" : err);
    }
}

/* The inputs of the backend: each transaction with its idempotency key and key, if any. */
static void make_inputs(struct batch *b)
{
    for (size_t i = 0; i < b->ntx; i++) {
        const size_t *off = &b->key_off[2 * i];
        const char *idem = off[0] == SIZE_MAX ? NULL : b->pool + off[0];
        const char *ent = off[1] == SIZE_MAX ? NULL : b->pool + off[1];
        b->in[i] = (txstats_input_t){
            b->tx[i].amount,        b->tx[i].timestamp_ms, ent, ent ? strlen(ent) : 0, idem,
            idem ? strlen(idem) : 0};
    }
}

/* Store what parsed, with its keys; tally and reject. */
static void store(struct batch *b, struct tally *t)
{
    char err[256] = "";
    size_t n = b->ntx ? b->ntx : 1;
    int *res = malloc(n * sizeof(*res)), *firsts = malloc(n * sizeof(*firsts));
    b->in = malloc(n * sizeof(*b->in));
    if (!res || !firsts || !b->in) {
        b->no_memory = true;
    } else {
        make_inputs(b);
        b->s->backend.ops->add_batch(b->s->backend.self, b->in, b->ntx, res, firsts, err,
                                     sizeof(err));
        for (size_t i = 0; i < b->ntx; i++)
            judge(b, i, res[i], firsts[i], err, t);
    }
    free(res);
    free(firsts);
}

static int by_line(const void *x, const void *y)
{
    const struct reject *a = x, *b = y;
    return (a->line > b->line) - (a->line < b->line);
}

static int reply(struct batch *b, struct mg_connection *c, const struct tally *t)
{
    if (b->nrej > 1)
        qsort(b->rej, b->nrej, sizeof(*b->rej), by_line);
    size_t cap = 96 + b->nrej * (sizeof(b->rej->error) * 6 + 48), n;
    char *out = malloc(cap);
    if (!out)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory");
    n = (size_t)snprintf(out, cap,
                         "{\"stored\":%zu,\"expired\":%zu,\"replayed\":%zu,\"rejected\":[",
                         t->stored, t->expired, t->replayed);
    for (size_t i = 0; i < b->nrej; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s{\"line\":%u,\"status\":%u,\"error\":\"",
                              i ? "," : "", b->rej[i].line, b->rej[i].status);
        n += srv_json_escape(b->rej[i].error, out + n, cap - n);
        n += (size_t)snprintf(out + n, cap - n, "\"}");
    }
    n += (size_t)snprintf(out + n, cap - n, "]}");
    int st = srv_reply(c, 200, NULL, out, n);
    free(out);
    return st;
}

static void batch_free(struct batch *b)
{
    free(b->tx);
    free(b->tx_line);
    free(b->key_off);
    free(b->pool);
    free(b->in);
    free(b->rej);
    free(b->line);
    free(b);
}

static int answer(struct batch *b, struct mg_connection *c)
{
    if (mg_get_header(c, "Idempotency-Key")) /* one key cannot name many transactions */
        return srv_error(c, 400, NULL,
                         "Idempotency-Key does not apply to a batch: give each line its own "
                         "\"idempotency_key\" member");
    int st = read_all(b, c);
    if (st == 413)
        return srv_error(c, 413, "Connection: close\r\n",
                         "a batch holds at most %lld lines and %lld bytes; nothing was stored",
                         (long long)b->s->opt.max_batch, (long long)b->s->opt.max_batch_bytes);
    if (st != 0)
        return srv_error(c, st, "Connection: close\r\n", "could not read the request body%s",
                         st == 408 ? " in time" : "");
    if (b->json == 0)
        return srv_error(c, 400, NULL,
                         "not NDJSON: expected one JSON transaction object per line, e.g. "
                         "{\"amount\":\"12.34\",\"timestamp\":\"2018-07-17T09:59:51.312Z\"}");
    struct tally t = {0, 0, 0};
    if (!b->no_memory)
        store(b, &t);
    if (b->no_memory)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory; retry the batch");
    return reply(b, c, &t);
}

int srv_post_batch(struct srv *s, struct mg_connection *c)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b)
        b->line = malloc((size_t)s->opt.max_body_bytes);
    if (!b || !b->line) {
        if (b)
            free(b);
        return srv_error(c, 503, "Retry-After: 1\r\nConnection: close\r\n", "out of memory");
    }
    b->s = s;
    int st = answer(b, c);
    batch_free(b);
    return st;
}
