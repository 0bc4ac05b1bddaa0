/* SPDX-License-Identifier: MIT */
/* The snapshot codec: JSON (txstats_save/txstats_load) and binary (checkpoints). See snapshot.h. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "json_util.h"
#include "crc32c.h"
#include "distribution.h"
#include "snapshot.h"

#define JSON_FORMAT  "libtxstats-snapshot"
#define JSON_VERSION 1
#define BIN_MAGIC    "TXCKPT01"

void txstats__snap_init(struct txstats__snap *sn, const struct txstats__mem *mem)
{
    memset(sn, 0, sizeof(*sn));
    sn->mem = mem;
}

void txstats__snap_free(struct txstats__snap *sn)
{
    txstats__free(sn->mem, sn->keys);
    txstats__free(sn->mem, sn->cells);
    txstats__free(sn->mem, sn->amounts);
    txstats__snap_init(sn, sn->mem);
}

txstats_amount_t *txstats__snap_push(struct txstats__snap *sn, int64_t ts,
                                     const struct txstats__cell *agg)
{
    if (txstats__reserve(sn->mem, (void **)&sn->cells, &sn->cap_cells, sn->ncells + 1,
                         sizeof(*sn->cells)) != 0 ||
        txstats__reserve(sn->mem, (void **)&sn->amounts, &sn->cap_amounts,
                         sn->namounts + agg->kept + 1, sizeof(*sn->amounts)) != 0)
        return NULL;
    struct txstats__snap_cell *c = &sn->cells[sn->ncells++];
    memset(c, 0, sizeof(*c));
    c->ts = ts;
    c->agg.count = agg->count;
    c->agg.sum = agg->sum;
    c->agg.min = agg->min;
    c->agg.max = agg->max;
    c->off = sn->namounts;
    c->nkept = agg->kept;
    sn->namounts += agg->kept;
    return &sn->amounts[c->off];
}

int txstats__snap_push_key(struct txstats__snap *sn, const struct txstats__snap_key *key)
{
    if (txstats__reserve(sn->mem, (void **)&sn->keys, &sn->cap_keys, sn->nkeys + 1,
                         sizeof(*sn->keys)) != 0)
        return TXSTATS_ENOMEM;
    sn->keys[sn->nkeys++] = *key;
    return TXSTATS_OK;
}

bool txstats__snap_key_valid(const struct txstats__snap_key *k)
{
    return (k->h[0] || k->h[1]) &&
           (k->status == TXSTATS_OK || k->status == TXSTATS_EXPIRED ||
            k->status == TXSTATS_EFUTURE || k->status == TXSTATS_ERANGE) &&
           k->expires > -4 * TXSTATS__CLOCK_LIMIT && k->expires < 4 * TXSTATS__CLOCK_LIMIT;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static bool get_amount(const cJSON *j, txstats_amount_t *out)
{
    txstats__i128 v;
    if (!cJSON_IsString(j) || txstats__parse_micros(j->valuestring, &v) != 0 ||
        v <= -TXSTATS_AMOUNT_LIMIT || v >= TXSTATS_AMOUNT_LIMIT)
        return false;
    *out = (txstats_amount_t)v;
    return true;
}

/* The invariants of one cell, whatever its encoding: count >= 1, min <= max, count*min <= sum <=
 * count*max, kept <= count, every kept amount in [min, max], and a cell that keeps all of its
 * amounts has exactly their sum, min and max. */
static bool cell_valid(const struct txstats__snap *sn, const struct txstats__snap_cell *c)
{
    txstats__i128 cnt = (txstats__i128)c->agg.count, sum = 0;
    txstats_amount_t lo = INT64_MAX, hi = INT64_MIN;
    if (c->agg.count < 1 || c->agg.count > (uint64_t)9e15 || c->agg.min > c->agg.max ||
        c->agg.min <= -TXSTATS_AMOUNT_LIMIT || c->agg.max >= TXSTATS_AMOUNT_LIMIT ||
        c->agg.sum < cnt * c->agg.min || c->agg.sum > cnt * c->agg.max || c->nkept > c->agg.count)
        return false;
    for (uint64_t k = 0; k < c->nkept; k++) {
        txstats_amount_t v = sn->amounts[c->off + k];
        if (v < c->agg.min || v > c->agg.max)
            return false;
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    return c->nkept < c->agg.count || (sum == c->agg.sum && lo == c->agg.min && hi == c->agg.max);
}

static int parse_cell(struct txstats__snap *sn, const cJSON *j, int64_t prev_ts)
{
    const double lim = (double)(TXSTATS__CLOCK_LIMIT * 2);
    struct txstats__cell agg = {0};
    int64_t ts, n;
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 6)
        return TXSTATS_EFORMAT;
    const cJSON *f = j->child, *kept = cJSON_GetArrayItem(j, 5);
    if (!txstats__json_int(f, -lim, lim, &ts) || ts <= prev_ts ||
        !txstats__json_int(f->next, 1, 9e15, &n) || !cJSON_IsString(f->next->next) ||
        txstats__parse_micros(f->next->next->valuestring, &agg.sum) != 0 ||
        !get_amount(f->next->next->next, &agg.min) ||
        !get_amount(f->next->next->next->next, &agg.max) || !cJSON_IsArray(kept))
        return TXSTATS_EFORMAT;
    agg.count = (uint64_t)n;
    agg.kept = (uint64_t)cJSON_GetArraySize(kept);
    if (agg.kept > agg.count)
        return TXSTATS_EFORMAT;
    txstats_amount_t *out = txstats__snap_push(sn, ts, &agg);
    if (!out)
        return TXSTATS_ENOMEM;
    for (const cJSON *a = kept->child; a; a = a->next)
        if (!get_amount(a, out++))
            return TXSTATS_EFORMAT;
    return cell_valid(sn, &sn->cells[sn->ncells - 1]) ? TXSTATS_OK : TXSTATS_EFORMAT;
}

static int parse_header(struct txstats__snap *sn, const cJSON *root, int64_t *count,
                        txstats__i128 *sum)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sum");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "window_ms");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "saved_at_ms");
    int64_t version;
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, JSON_FORMAT))
        return TXSTATS_EFORMAT;
    if (!txstats__json_int(cJSON_GetObjectItemCaseSensitive(root, "version"), 1, 1e9, &version) ||
        version != JSON_VERSION)
        return TXSTATS_EFORMAT;
    if (!txstats__json_int(cJSON_GetObjectItemCaseSensitive(root, "count"), 0, 9e15, count) ||
        !cJSON_IsString(s) || txstats__parse_micros(s->valuestring, sum) != 0 ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "cells")))
        return TXSTATS_EFORMAT;
    if (w && !txstats__json_int(w, 1, 1e15, &sn->window_ms))
        return TXSTATS_EFORMAT;
    if (at && !txstats__json_int(at, -1e16, 1e16, &sn->saved_at_ms))
        return TXSTATS_EFORMAT;
    return TXSTATS_OK;
}

/* Optional "journal": [[stream, first uncovered segment], ...], streams 0, 1, ... in order. */
static int parse_bounds(struct txstats__snap *sn, const cJSON *root)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "journal");
    if (!j)
        return TXSTATS_OK;
    if (!cJSON_IsArray(j))
        return TXSTATS_EFORMAT;
    for (const cJSON *e = j->child; e; e = e->next) {
        int64_t stream, seg;
        if (cJSON_GetArraySize(e) != 2 ||
            !txstats__json_int(e->child, 0, TXSTATS__MAX_BOUNDS - 1, &stream) ||
            !txstats__json_int(e->child->next, 0, 9e15, &seg) || stream != (int64_t)sn->nbound)
            return TXSTATS_EFORMAT;
        sn->bound[sn->nbound++] = (uint64_t)seg;
    }
    return TXSTATS_OK;
}

static int parse_key(struct txstats__snap *sn, const cJSON *e)
{
    struct txstats__snap_key k;
    int64_t status;
    const double lim = (double)(TXSTATS__CLOCK_LIMIT * 4);
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 4)
        return TXSTATS_EFORMAT;
    const cJSON *h = e->child, *fp = h->next;
    if (!cJSON_IsString(h) || strlen(h->valuestring) != 32 ||
        !txstats__json_hex64(h->valuestring, &k.h[0]) ||
        !txstats__json_hex64(h->valuestring + 16, &k.h[1]) || !cJSON_IsString(fp) ||
        strlen(fp->valuestring) != 16 || !txstats__json_hex64(fp->valuestring, &k.fp) ||
        !txstats__json_int(fp->next, -lim, lim, &k.expires) ||
        !txstats__json_int(fp->next->next, -2, 1, &status))
        return TXSTATS_EFORMAT;
    k.status = (int)status;
    if (!txstats__snap_key_valid(&k))
        return TXSTATS_EFORMAT;
    return txstats__snap_push_key(sn, &k);
}

/* Optional "keys" (snapshots of 0.1.0 have none). */
static int parse_keys(struct txstats__snap *sn, const cJSON *root)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    int rc = TXSTATS_OK;
    if (!keys)
        return TXSTATS_OK;
    if (!cJSON_IsArray(keys))
        return TXSTATS_EFORMAT;
    for (const cJSON *e = keys->child; e && rc == TXSTATS_OK; e = e->next)
        rc = parse_key(sn, e);
    return rc;
}

static int parse_document(struct txstats__snap *sn, const cJSON *root)
{
    int64_t count, prev = INT64_MIN;
    txstats__i128 sum, total = 0;
    uint64_t seen = 0;
    int rc = parse_header(sn, root, &count, &sum);
    if (rc == TXSTATS_OK)
        rc = parse_bounds(sn, root);
    if (rc == TXSTATS_OK)
        rc = parse_keys(sn, root);
    if (rc != TXSTATS_OK)
        return rc;
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(root, "cells");
    for (const cJSON *c = cells->child; c; c = c->next) {
        if ((rc = parse_cell(sn, c, prev)) != TXSTATS_OK)
            return rc;
        prev = sn->cells[sn->ncells - 1].ts;
        seen += sn->cells[sn->ncells - 1].agg.count;
        total += sn->cells[sn->ncells - 1].agg.sum;
    }
    return seen == (uint64_t)count && total == sum ? TXSTATS_OK : TXSTATS_EFORMAT;
}

int txstats__snap_decode_json(struct txstats__snap *sn, const char *data, size_t len)
{
    const char *end = NULL;
    if (len == 0)
        return TXSTATS_EFORMAT;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    bool trailing = false;
    for (; root && end < data + len; end++)
        trailing |= *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n';
    int rc = !root || trailing ? TXSTATS_EFORMAT : parse_document(sn, root);
    cJSON_Delete(root);
    if (rc != TXSTATS_OK)
        txstats__snap_free(sn);
    return rc;
}

/* ---- binary --------------------------------------------------------------------------------- */

/* Input in little-endian u64 words; `bad` once past the end. */
struct bin_in {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t bin_get(struct bin_in *in)
{
    uint64_t v = 0;
    if (in->end - in->p < 8) {
        in->bad = true;
        return 0;
    }
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | in->p[i];
    in->p += 8;
    return v;
}

static int bin_cell(struct txstats__snap *sn, struct bin_in *in, int64_t prev_ts)
{
    struct txstats__cell agg = {0};
    int64_t ts = (int64_t)bin_get(in);
    agg.count = bin_get(in);
    uint64_t lo = bin_get(in), hi = bin_get(in);
    agg.sum = (txstats__i128)(((unsigned __int128)hi << 64) | lo);
    agg.min = (int64_t)bin_get(in);
    agg.max = (int64_t)bin_get(in);
    agg.kept = bin_get(in);
    if (in->bad || ts <= prev_ts || ts > TXSTATS__CLOCK_LIMIT * 2 ||
        ts < -TXSTATS__CLOCK_LIMIT * 2 || agg.kept > agg.count ||
        agg.kept > (uint64_t)(in->end - in->p) / 8)
        return TXSTATS_EFORMAT;
    txstats_amount_t *out = txstats__snap_push(sn, ts, &agg);
    if (!out)
        return TXSTATS_ENOMEM;
    for (uint64_t k = 0; k < agg.kept; k++)
        out[k] = (int64_t)bin_get(in);
    return cell_valid(sn, &sn->cells[sn->ncells - 1]) ? TXSTATS_OK : TXSTATS_EFORMAT;
}

static int bin_keys(struct txstats__snap *sn, struct bin_in *in)
{
    uint64_t nkeys = bin_get(in);
    if (in->bad || nkeys > (uint64_t)(in->end - in->p) / 40)
        return TXSTATS_EFORMAT;
    for (uint64_t i = 0; i < nkeys; i++) {
        struct txstats__snap_key k;
        k.h[0] = bin_get(in); /* one statement each: the order of reads matters */
        k.h[1] = bin_get(in);
        k.fp = bin_get(in);
        k.expires = (int64_t)bin_get(in);
        int64_t status = (int64_t)bin_get(in);
        k.status = (int)status;
        if (in->bad || status != k.status || !txstats__snap_key_valid(&k))
            return TXSTATS_EFORMAT;
        int rc = txstats__snap_push_key(sn, &k);
        if (rc != TXSTATS_OK)
            return rc;
    }
    return in->p == in->end ? TXSTATS_OK : TXSTATS_EFORMAT;
}

static int bin_body(struct txstats__snap *sn, struct bin_in *in)
{
    sn->window_ms = (int64_t)bin_get(in);
    sn->saved_at_ms = (int64_t)bin_get(in);
    uint64_t nbound = bin_get(in);
    if (in->bad || nbound > TXSTATS__MAX_BOUNDS || sn->window_ms < 1)
        return TXSTATS_EFORMAT;
    for (sn->nbound = 0; sn->nbound < nbound;)
        sn->bound[sn->nbound++] = bin_get(in);
    uint64_t ncells = bin_get(in);
    if (in->bad || ncells > (uint64_t)(in->end - in->p) / 56)
        return TXSTATS_EFORMAT;
    int64_t prev = INT64_MIN;
    for (uint64_t i = 0; i < ncells; i++) {
        int rc = bin_cell(sn, in, prev);
        if (rc != TXSTATS_OK)
            return rc;
        prev = sn->cells[sn->ncells - 1].ts;
    }
    return bin_keys(sn, in);
}

bool txstats__snap_is_bin(const char *data, size_t len)
{
    return len >= 8 && memcmp(data, BIN_MAGIC, 8) == 0;
}

int txstats__snap_decode_bin(struct txstats__snap *sn, const char *data, size_t len)
{
    const uint8_t *d = (const uint8_t *)data;
    if (len < 12 || memcmp(d, BIN_MAGIC, 8) != 0)
        return TXSTATS_EFORMAT;
    uint32_t want = (uint32_t)d[len - 4] | (uint32_t)d[len - 3] << 8 | (uint32_t)d[len - 2] << 16 |
                    (uint32_t)d[len - 1] << 24;
    if (txstats__crc32c(d, len - 4) != want)
        return TXSTATS_EFORMAT;
    struct bin_in in = {d + 8, d + len - 4, false};
    int rc = bin_body(sn, &in);
    if (rc != TXSTATS_OK)
        txstats__snap_free(sn);
    return rc;
}

/* ---- as an image ---------------------------------------------------------------------------- */

/* A cell's amounts in 'A' records of at most a block each. */
static void image_amounts(struct txstats__img_mem *m, const struct txstats__snap_cell *c,
                          const txstats_amount_t *a)
{
    const uint64_t per = TXSTATS__IMG_BLOCK_MAX / 8 - 3;
    for (uint64_t done = 0; done < c->nkept;) {
        uint64_t n = c->nkept - done < per ? c->nkept - done : per;
        txstats__img_mem_need(m, 8 * (3 + n));
        txstats__img_mem_put(m, TXSTATS__IMG_AMOUNTS);
        txstats__img_mem_put(m, (uint64_t)c->ts);
        txstats__img_mem_put(m, n);
        for (uint64_t k = 0; k < n; k++)
            txstats__img_mem_put(m, (uint64_t)a[done + k]);
        done += n;
    }
}

/* The 'C' record; the amounts not retained at their mean. Returns how many those are. */
static uint64_t image_close(struct txstats__img_mem *m, const struct txstats__snap *sn,
                            const struct txstats__snap_cell *c)
{
    const txstats_amount_t *a = &sn->amounts[c->off];
    txstats__i128 rest = c->agg.sum;
    uint64_t nk = c->nkept < c->agg.count ? c->nkept : c->agg.count, run = c->agg.count - nk;
    for (uint64_t k = 0; k < nk; k++)
        rest -= a[k];
    uint64_t f[8] = {TXSTATS__IMG_CELL,
                     (uint64_t)c->ts,
                     c->agg.count,
                     (uint64_t)c->agg.sum,
                     (uint64_t)(c->agg.sum >> 64),
                     (uint64_t)c->agg.min,
                     (uint64_t)c->agg.max,
                     run ? 1 : 0};
    txstats__img_mem_need(m, 8 * 9);
    for (int k = 0; k < 8; k++)
        txstats__img_mem_put(m, f[k]);
    if (run) {
        txstats_amount_t mean = (txstats_amount_t)(rest / (txstats__i128)run);
        txstats__img_mem_put(m, run << 16 | txstats__dist_bucket(mean));
    }
    return run;
}

static void image_keys(struct txstats__img_mem *m, const struct txstats__snap *sn)
{
    const size_t per = TXSTATS__IMG_BLOCK_MAX / 40 - 1;
    for (size_t done = 0; done < sn->nkeys;) {
        size_t n = sn->nkeys - done < per ? sn->nkeys - done : per;
        txstats__img_mem_need(m, 16 + 40 * n);
        txstats__img_mem_put(m, TXSTATS__IMG_KEYS);
        txstats__img_mem_put(m, n);
        for (size_t i = done; i < done + n; i++) {
            const struct txstats__snap_key *k = &sn->keys[i];
            uint64_t f[5] = {k->h[0], k->h[1], k->fp, (uint64_t)k->expires,
                             (uint64_t)(int64_t)k->status};
            for (int j = 0; j < 5; j++)
                txstats__img_mem_put(m, f[j]);
        }
        done += n;
    }
}

int txstats__snap_to_image(const struct txstats__snap *sn, unsigned sections, uint8_t **data,
                           size_t *len, uint64_t *approximate)
{
    struct txstats__img_mem m;
    uint64_t count = 0, kept = 0, run = 0;
    txstats__img_mem_init(&m, sn->mem);
    uint64_t h[5] = {TXSTATS__IMG_HEADER, (uint64_t)(sn->window_ms > 0 ? sn->window_ms : 1),
                     (uint64_t)sn->saved_at_ms, sections,
                     sn->nbound ? TXSTATS__IMG_JOURNAL_CKPT : 0};
    for (int k = 0; k < 5; k++)
        txstats__img_mem_put(&m, h[k]);
    for (unsigned s = 0; s < sections; s++) {
        txstats__img_mem_need(&m, 16);
        txstats__img_mem_put(&m, TXSTATS__IMG_SECTION);
        txstats__img_mem_put(&m, s);
        for (size_t i = s; i < sn->ncells; i += sections) {
            image_amounts(&m, &sn->cells[i], &sn->amounts[sn->cells[i].off]);
            run += image_close(&m, sn, &sn->cells[i]);
            count += sn->cells[i].agg.count;
            kept += sn->cells[i].nkept;
        }
    }
    image_keys(&m, sn);
    for (unsigned i = 0; i < sn->nbound; i++) {
        uint64_t j[4] = {TXSTATS__IMG_JOURNAL, i, sn->bound[i], 0};
        txstats__img_mem_need(&m, 32);
        for (int k = 0; k < 4; k++)
            txstats__img_mem_put(&m, j[k]);
    }
    uint64_t e[5] = {TXSTATS__IMG_END, sn->ncells, count, kept, sn->nkeys};
    txstats__img_mem_need(&m, 40);
    for (int k = 0; k < 5; k++)
        txstats__img_mem_put(&m, e[k]);
    *approximate = run;
    return txstats__img_mem_finish(&m, data, len);
}
