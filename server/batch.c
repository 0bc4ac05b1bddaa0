/* SPDX-License-Identifier: MIT */
/*
 * POST /transactions/batch: NDJSON, one transaction object per line, each line judged on its own
 * like POST /transactions (and like Elasticsearch's _bulk). The body is parsed as it arrives:
 * the request holds its transactions (16 bytes each) and one line at a time, never the text.
 * Lines are numbered from 1; blank lines (only spaces, tabs, CR) are skipped; a line may end in
 * LF or CRLF, the last one in nothing.
 *
 * 200 {"stored":N,"expired":M,"rejected":[{"line":L,"status":S,"error":"..."},...]}
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
    snprintf(r->error, sizeof(r->error), "%s", error);
}

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
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
    if (too_long) {
        srv_count_post(&b->s->counters, POST_TOO_LARGE);
        reject(b, no, 413, "line longer than --max-body-bytes");
        return;
    }
    struct srv_tx tx;
    char err[256];
    int st = srv_parse_transaction(b->line, n, &tx, err, sizeof(err));
    b->json += st != 400;
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
        b->long_line |= take > room;
        p += take + (lf != NULL);
        n -= take + (lf != NULL);
        if (lf)
            end_line(b);
    }
}

/* Read the whole body: 0, 413 (too large or too many lines) or 400 (cut short). */
static int read_all(struct batch *b, struct mg_connection *c)
{
    long long declared = mg_get_request_info(c)->content_length;
    int64_t got = 0, max = b->s->opt.max_batch_bytes;
    if (declared > max)
        return 413;
    for (;;) {
        int r = mg_read(c, b->chunk, sizeof(b->chunk));
        if (r <= 0)
            break;
        got += r;
        if (got > max)
            return 413;
        feed(b, b->chunk, (size_t)r);
        if (b->too_many)
            return 413;
    }
    if (declared >= 0 && got != declared)
        return 400;
    if (b->len > 0 || b->long_line) /* a last line without LF */
        end_line(b);
    return b->too_many ? 413 : 0;
}

static const char *status_error(int rc, const char *err)
{
    switch (rc) {
    case TXSTATS_EFUTURE:
        return "'timestamp' is in the future";
    case TXSTATS_ERANGE:
        return "'amount' is out of range: |amount| must be below 10^12";
    default:
        return err;
    }
}

/* Store what parsed; count stored and expired, reject the rest. */
static void store(struct batch *b, size_t *stored, size_t *expired)
{
    char err[256] = "";
    int *res = malloc((b->ntx ? b->ntx : 1) * sizeof(*res));
    *stored = *expired = 0;
    if (!res) {
        b->no_memory = true;
        return;
    }
    b->s->backend.ops->add_batch(b->s->backend.self, b->tx, b->ntx, res, err, sizeof(err));
    for (size_t i = 0; i < b->ntx; i++) {
        int rc = res[i];
        srv_count_post(&b->s->counters, rc == TXSTATS_OK        ? POST_STORED
                                        : rc == TXSTATS_EXPIRED ? POST_EXPIRED
                                        : rc == TXSTATS_EFUTURE ? POST_FUTURE
                                        : rc == TXSTATS_ERANGE  ? POST_INVALID_FIELD
                                                                : POST_UNAVAILABLE);
        if (rc == TXSTATS_OK) {
            ++*stored;
            srv_history_note(b->s, b->tx[i].amount, b->tx[i].timestamp_ms);
        } else if (rc == TXSTATS_EXPIRED) {
            ++*expired;
        } else {
            int st = rc == TXSTATS_EFUTURE || rc == TXSTATS_ERANGE ? 422 : 503;
            reject(b, b->tx_line[i], st, status_error(rc, err));
        }
    }
    free(res);
}

static int by_line(const void *x, const void *y)
{
    const struct reject *a = x, *b = y;
    return (a->line > b->line) - (a->line < b->line);
}

static int reply(struct batch *b, struct mg_connection *c, size_t stored, size_t expired)
{
    qsort(b->rej, b->nrej, sizeof(*b->rej), by_line);
    size_t cap = 96 + b->nrej * (sizeof(b->rej->error) * 6 + 48), n;
    char *out = malloc(cap);
    if (!out)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory");
    n = (size_t)snprintf(out, cap, "{\"stored\":%zu,\"expired\":%zu,\"rejected\":[", stored,
                         expired);
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
    free(b->rej);
    free(b->line);
    free(b);
}

static int answer(struct batch *b, struct mg_connection *c)
{
    int st = read_all(b, c);
    if (st == 413)
        return srv_error(c, 413, "Connection: close\r\n",
                         "a batch holds at most %lld lines and %lld bytes; nothing was stored",
                         (long long)b->s->opt.max_batch, (long long)b->s->opt.max_batch_bytes);
    if (st != 0)
        return srv_error(c, 400, "Connection: close\r\n", "could not read the request body");
    if (b->json == 0)
        return srv_error(c, 400, NULL,
                         "not NDJSON: expected one JSON transaction object per line, e.g. "
                         "{\"amount\":\"12.34\",\"timestamp\":\"2018-07-17T09:59:51.312Z\"}");
    size_t stored = 0, expired = 0;
    if (!b->no_memory)
        store(b, &stored, &expired);
    if (b->no_memory)
        return srv_error(c, 503, "Retry-After: 1\r\n", "out of memory; retry the batch");
    return reply(b, c, stored, expired);
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
