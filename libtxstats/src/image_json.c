/* SPDX-License-Identifier: MIT */
/* The JSON form of an image (image_json.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "json_util.h"
#include "image_json.h"

#define JSON_FORMAT "libtxstats-snapshot"
#define PLACE_BYTES TXSTATS__IMG_PLACE_BUCKETS

/* ---- writing -------------------------------------------------------------------------------- */

static int text(struct txstats__img_json *j, const char *s)
{
    return j->emit(j->ctx, s, strlen(s));
}

/* An amount or sum as a JSON string, after `sep`. */
static int money(struct txstats__img_json *j, const char *sep, txstats__i128 v)
{
    char buf[64];
    size_t n = strlen(sep);
    memcpy(buf, sep, n);
    buf[n++] = '"';
    n += (size_t)txstats__format_micros(v, buf + n);
    buf[n++] = '"';
    return j->emit(j->ctx, buf, n);
}

static int amounts(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "[\"A\",%lld,[", (long long)r->f[0]);
    int rc = text(j, buf);
    for (uint64_t i = 0; rc == 0 && i < r->n; i++)
        rc = money(j, i ? "," : "", (int64_t)txstats__img_word(r->arr, i));
    return rc == 0 ? text(j, "]]") : rc;
}

static int buckets(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "[\"B\",%lld,[", (long long)r->f[0]);
    int rc = text(j, buf);
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        snprintf(buf, sizeof(buf), "%s%u", i ? "," : "", (unsigned)txstats__img_bucket(r->arr, i));
        rc = text(j, buf);
    }
    return rc == 0 ? text(j, "]]") : rc;
}

static int cell(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[64];
    txstats__i128 sum = (txstats__i128)(((unsigned __int128)r->f[3] << 64) | r->f[2]);
    snprintf(buf, sizeof(buf), "[\"C\",%lld,%llu", (long long)r->f[0], (unsigned long long)r->f[1]);
    int rc = text(j, buf);
    rc = rc ? rc : money(j, ",", sum);
    rc = rc ? rc : money(j, ",", (int64_t)r->f[4]);
    rc = rc ? rc : money(j, ",", (int64_t)r->f[5]);
    rc = rc ? rc : text(j, ",[");
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        uint64_t w = txstats__img_word(r->arr, i);
        snprintf(buf, sizeof(buf), "%s[%u,%llu]", i ? "," : "", (unsigned)(w & 0xffff),
                 (unsigned long long)(w >> 16));
        rc = text(j, buf);
    }
    return rc == 0 ? text(j, "]]") : rc;
}

static int keys(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    int rc = text(j, "[\"K\",[");
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        const uint8_t *e = r->arr + 8 * TXSTATS__IMG_KEY_WORDS * i;
        char buf[160];
        snprintf(buf, sizeof(buf), "%s\n[\"%016llx%016llx\",\"%016llx\",%lld,%lld]", i ? "," : "",
                 (unsigned long long)txstats__img_word(e, 0),
                 (unsigned long long)txstats__img_word(e, 1),
                 (unsigned long long)txstats__img_word(e, 2), (long long)txstats__img_word(e, 3),
                 (long long)txstats__img_word(e, 4));
        rc = text(j, buf);
    }
    return rc == 0 ? text(j, "]]") : rc;
}

static int place(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "[\"P\",\"%016llx%016llx\",\"", (unsigned long long)r->f[0],
             (unsigned long long)r->f[1]);
    int rc = text(j, buf);
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        uint64_t v = txstats__img_word(r->arr, i);
        char hex[17];
        for (unsigned b = 0; b < 8; b++)
            snprintf(hex + 2 * b, 3, "%02x", (unsigned)(v >> (8 * b)) & 0xff);
        rc = text(j, hex);
    }
    return rc == 0 ? text(j, "\"]") : rc;
}

/* An entity's name: its key's bytes in hex (a key is any bytes). */
static int name(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[48 + 2 * TXSTATS_MAX_ENTITY_BYTES];
    int n = snprintf(buf, sizeof(buf), "[\"N\",%llu,\"", (unsigned long long)r->f[0]);
    for (uint64_t b = 0; b < r->f[1] && b < 8 * r->n && b < TXSTATS_MAX_ENTITY_BYTES; b++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%02x",
                      (unsigned)(txstats__img_word(r->arr, b / 8) >> (8 * (b % 8))) & 0xff);
    return text(j, strcat(buf, "\"]"));
}

static int tags(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "[\"T\",%lld,[", (long long)r->f[0]);
    int rc = text(j, buf);
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        snprintf(buf, sizeof(buf), "%s[%llu", i ? "," : "",
                 (unsigned long long)txstats__img_word(r->arr, 2 * i));
        rc = text(j, buf);
        rc = rc ? rc : money(j, ",", (int64_t)txstats__img_word(r->arr, 2 * i + 1));
        rc = rc ? rc : text(j, "]");
    }
    return rc == 0 ? text(j, "]]") : rc;
}

static int record(struct txstats__img_json *j, const struct txstats__img_rec *r)
{
    char buf[160];
    if (text(j, j->any ? ",\n" : "\n") != 0)
        return -1;
    j->any = true;
    switch (r->type) {
    case TXSTATS__IMG_AMOUNTS:
        return amounts(j, r);
    case TXSTATS__IMG_BUCKETS:
        return buckets(j, r);
    case TXSTATS__IMG_CELL:
        return cell(j, r);
    case TXSTATS__IMG_KEYS:
        return keys(j, r);
    case TXSTATS__IMG_PLACE:
        return place(j, r);
    case TXSTATS__IMG_NAME:
        return name(j, r);
    case TXSTATS__IMG_TAGS:
        return tags(j, r);
    case TXSTATS__IMG_HEADER:
        snprintf(buf, sizeof(buf), "[\"H\",%lld,%lld,%llu,0]", (long long)r->f[0],
                 (long long)r->f[1], (unsigned long long)r->f[2]);
        break;
    case TXSTATS__IMG_END:
        snprintf(buf, sizeof(buf), "[\"E\",%llu,%llu,%llu,%llu]", (unsigned long long)r->f[0],
                 (unsigned long long)r->f[1], (unsigned long long)r->f[2],
                 (unsigned long long)r->f[3]);
        break;
    default: /* 'S' and 'X'; a snapshot has no 'J' */
        snprintf(buf, sizeof(buf), "[\"%c\",%lld]", r->type, (long long)r->f[0]);
    }
    return text(j, buf);
}

void txstats__img_json_start(struct txstats__img_json *j, txstats__emit_fn emit, void *ctx)
{
    j->emit = emit;
    j->ctx = ctx;
    j->started = j->any = false;
}

int txstats__img_json_emit(void *json, const void *data, size_t len)
{
    struct txstats__img_json *j = json;
    const uint8_t *p = data, *end;
    struct txstats__img_rec rec;
    int k;
    if (!j->started) {
        j->started = true;
        return text(j, "{\"format\":\"" JSON_FORMAT "\",\"version\":2,\"records\":[");
    }
    if (len < TXSTATS__IMG_FRAME)
        return errno = EINVAL, -1;
    end = p + len;
    p += TXSTATS__IMG_FRAME;
    while ((k = txstats__img_next(&p, end, &rec)) == 1)
        if (rec.type != TXSTATS__IMG_JOURNAL && record(j, &rec) != 0)
            return -1;
    return k == 0 ? 0 : (errno = EINVAL, -1);
}

int txstats__img_json_finish(struct txstats__img_json *j)
{
    return text(j, "\n]}\n");
}

/* ---- reading -------------------------------------------------------------------------------- */

static bool get_money(const cJSON *j, txstats__i128 *out)
{
    return cJSON_IsString(j) && txstats__parse_micros(j->valuestring, out) == 0;
}

/* Integer fields of a record, from item `from` of `a` on, as words. */
static bool ints(struct txstats__img_mem *m, const cJSON *a, int from, int n)
{
    const double lim = 9.007199254740992e15;
    for (int i = from; i < from + n; i++) {
        int64_t v;
        if (!txstats__json_int(cJSON_GetArrayItem(a, i), -lim, lim, &v))
            return false;
        txstats__img_mem_put(m, (uint64_t)v);
    }
    return true;
}

static bool json_amounts(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *list = cJSON_GetArrayItem(a, 2);
    int n = cJSON_GetArraySize(list);
    if (cJSON_GetArraySize(a) != 3 || !cJSON_IsArray(list) ||
        n > (int)(TXSTATS__IMG_BLOCK_MAX / 8) - 3)
        return false;
    txstats__img_mem_need(m, 8 * (3 + (size_t)n));
    txstats__img_mem_put(m, TXSTATS__IMG_AMOUNTS);
    if (!ints(m, a, 1, 1))
        return false;
    txstats__img_mem_put(m, (uint64_t)n);
    for (const cJSON *e = list->child; e; e = e->next) {
        txstats__i128 v;
        if (!get_money(e, &v) || v <= -TXSTATS_AMOUNT_LIMIT || v >= TXSTATS_AMOUNT_LIMIT)
            return false;
        txstats__img_mem_put(m, (uint64_t)(int64_t)v);
    }
    return true;
}

static bool json_buckets(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *list = cJSON_GetArrayItem(a, 2);
    int n = cJSON_GetArraySize(list);
    uint64_t word = 0;
    if (cJSON_GetArraySize(a) != 3 || !cJSON_IsArray(list) || n > 65536)
        return false;
    txstats__img_mem_need(m, 8 * (3 + ((size_t)n + 3) / 4));
    txstats__img_mem_put(m, TXSTATS__IMG_BUCKETS);
    if (!ints(m, a, 1, 1))
        return false;
    txstats__img_mem_put(m, (uint64_t)n);
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        int64_t b;
        if (!txstats__json_int(e, 0, 65535, &b))
            return false;
        word |= (uint64_t)b << (16 * (i % 4));
        if (i % 4 == 3) {
            txstats__img_mem_put(m, word);
            word = 0;
        }
    }
    if (i % 4)
        txstats__img_mem_put(m, word);
    return true;
}

static bool json_hist(struct txstats__img_mem *m, const cJSON *list)
{
    for (const cJSON *e = list->child; e; e = e->next) {
        int64_t b, n;
        if (cJSON_GetArraySize(e) != 2 || !txstats__json_int(e->child, 0, 65535, &b) ||
            !txstats__json_int(e->child->next, 1, 2.8e14, &n))
            return false;
        txstats__img_mem_put(m, (uint64_t)n << 16 | (uint64_t)b);
    }
    return true;
}

static bool json_cell(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *list = cJSON_GetArrayItem(a, 6);
    int n = cJSON_GetArraySize(list);
    txstats__i128 sum, lo, hi;
    if (cJSON_GetArraySize(a) != 7 || !cJSON_IsArray(list) || n > 65536 ||
        !get_money(cJSON_GetArrayItem(a, 3), &sum) || !get_money(cJSON_GetArrayItem(a, 4), &lo) ||
        !get_money(cJSON_GetArrayItem(a, 5), &hi) || lo <= -TXSTATS_AMOUNT_LIMIT ||
        hi >= TXSTATS_AMOUNT_LIMIT || lo >= TXSTATS_AMOUNT_LIMIT || hi <= -TXSTATS_AMOUNT_LIMIT)
        return false;
    txstats__img_mem_need(m, 8 * (8 + (size_t)n));
    txstats__img_mem_put(m, TXSTATS__IMG_CELL);
    if (!ints(m, a, 1, 2))
        return false;
    txstats__img_mem_put(m, (uint64_t)sum);
    txstats__img_mem_put(m, (uint64_t)(sum >> 64));
    txstats__img_mem_put(m, (uint64_t)(int64_t)lo);
    txstats__img_mem_put(m, (uint64_t)(int64_t)hi);
    txstats__img_mem_put(m, (uint64_t)n);
    return json_hist(m, list);
}

static bool json_key(struct txstats__img_mem *m, const cJSON *e)
{
    const cJSON *d = cJSON_GetArrayItem(e, 0), *fp = cJSON_GetArrayItem(e, 1);
    uint64_t h0, h1, f;
    if (cJSON_GetArraySize(e) != 4 || !cJSON_IsString(d) || strlen(d->valuestring) != 32 ||
        !cJSON_IsString(fp) || strlen(fp->valuestring) != 16 ||
        !txstats__json_hex64(d->valuestring, &h0) ||
        !txstats__json_hex64(d->valuestring + 16, &h1) || !txstats__json_hex64(fp->valuestring, &f))
        return false;
    txstats__img_mem_put(m, h0);
    txstats__img_mem_put(m, h1);
    txstats__img_mem_put(m, f);
    return ints(m, e, 2, 2);
}

static bool json_keys(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *list = cJSON_GetArrayItem(a, 1);
    int n = cJSON_GetArraySize(list);
    if (cJSON_GetArraySize(a) != 2 || !cJSON_IsArray(list) ||
        n > (int)(TXSTATS__IMG_BLOCK_MAX / 40) - 1)
        return false;
    txstats__img_mem_need(m, 16 + 40 * (size_t)n);
    txstats__img_mem_put(m, TXSTATS__IMG_KEYS);
    txstats__img_mem_put(m, (uint64_t)n);
    for (const cJSON *e = list->child; e; e = e->next)
        if (!json_key(m, e))
            return false;
    return true;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool json_place(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *k = cJSON_GetArrayItem(a, 1), *t = cJSON_GetArrayItem(a, 2);
    uint64_t k0, k1;
    if (cJSON_GetArraySize(a) != 3 || !cJSON_IsString(k) || strlen(k->valuestring) != 32 ||
        !txstats__json_hex64(k->valuestring, &k0) ||
        !txstats__json_hex64(k->valuestring + 16, &k1) || !cJSON_IsString(t) ||
        strlen(t->valuestring) != 2 * PLACE_BYTES)
        return false;
    txstats__img_mem_need(m, 8 * (4 + PLACE_BYTES / 8));
    txstats__img_mem_put(m, TXSTATS__IMG_PLACE);
    txstats__img_mem_put(m, k0);
    txstats__img_mem_put(m, k1);
    txstats__img_mem_put(m, PLACE_BYTES / 8);
    uint64_t w = 0;
    for (size_t b = 0; b < PLACE_BYTES; b++) {
        int hi = hex_digit(t->valuestring[2 * b]), lo = hex_digit(t->valuestring[2 * b + 1]);
        if (hi < 0 || lo < 0)
            return false;
        w |= (uint64_t)(hi << 4 | lo) << (8 * (b % 8));
        if (b % 8 == 7) {
            txstats__img_mem_put(m, w);
            w = 0;
        }
    }
    return true;
}

static bool json_name(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *k = cJSON_GetArrayItem(a, 2);
    size_t hex = cJSON_IsString(k) ? strlen(k->valuestring) : 0, len = hex / 2;
    if (cJSON_GetArraySize(a) != 3 || hex % 2 || len < 1 || len > TXSTATS_MAX_ENTITY_BYTES)
        return false;
    txstats__img_mem_need(m, 8 * (4 + (len + 7) / 8));
    txstats__img_mem_put(m, TXSTATS__IMG_NAME);
    if (!ints(m, a, 1, 1))
        return false;
    txstats__img_mem_put(m, len);
    txstats__img_mem_put(m, (len + 7) / 8);
    uint64_t w = 0;
    for (size_t b = 0; b < len; b++) {
        int hi = hex_digit(k->valuestring[2 * b]), lo = hex_digit(k->valuestring[2 * b + 1]);
        if (hi < 0 || lo < 0)
            return false;
        w |= (uint64_t)(hi << 4 | lo) << (8 * (b % 8));
        if (b % 8 == 7 || b + 1 == len) {
            txstats__img_mem_put(m, w);
            w = 0;
        }
    }
    return true;
}

static bool json_tags(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *list = cJSON_GetArrayItem(a, 2);
    int n = cJSON_GetArraySize(list);
    if (cJSON_GetArraySize(a) != 3 || !cJSON_IsArray(list) ||
        n > (int)(TXSTATS__IMG_BLOCK_MAX / 16) - 2)
        return false;
    txstats__img_mem_need(m, 8 * (3 + 2 * (size_t)n));
    txstats__img_mem_put(m, TXSTATS__IMG_TAGS);
    if (!ints(m, a, 1, 1))
        return false;
    txstats__img_mem_put(m, (uint64_t)n);
    for (const cJSON *e = list->child; e; e = e->next) {
        txstats__i128 v;
        if (cJSON_GetArraySize(e) != 2 || !ints(m, e, 0, 1) || !get_money(e->child->next, &v) ||
            v <= -TXSTATS_AMOUNT_LIMIT || v >= TXSTATS_AMOUNT_LIMIT)
            return false;
        txstats__img_mem_put(m, (uint64_t)(int64_t)v);
    }
    return true;
}

/* One record: its type letter, then its fields (image_json.h). */
static bool json_record(struct txstats__img_mem *m, const cJSON *a)
{
    const cJSON *t = cJSON_GetArrayItem(a, 0);
    int size = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || !cJSON_IsString(t) || strlen(t->valuestring) != 1)
        return false;
    switch (t->valuestring[0]) {
    case 'A':
        return json_amounts(m, a);
    case 'B':
        return json_buckets(m, a);
    case 'C':
        return json_cell(m, a);
    case 'K':
        return json_keys(m, a);
    case 'P':
        return json_place(m, a);
    case 'N':
        return json_name(m, a);
    case 'T':
        return json_tags(m, a);
    case 'H':
    case 'E':
        txstats__img_mem_need(m, 40);
        txstats__img_mem_put(m, (uint64_t)(unsigned char)t->valuestring[0]);
        return size == 5 && ints(m, a, 1, 4);
    case 'S':
    case 'X':
        txstats__img_mem_need(m, 16);
        txstats__img_mem_put(m, (uint64_t)(unsigned char)t->valuestring[0]);
        return size == 2 && ints(m, a, 1, 1);
    default:
        return false;
    }
}

int txstats__img_from_json(const struct txstats__mem *mem, const char *data, size_t len,
                           uint8_t **image, size_t *image_len)
{
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root)
        return TXSTATS_EFORMAT; /* or out of memory: cJSON cannot tell */
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(root, "records");
    int64_t version = 0;
    int rc = TXSTATS_EFORMAT;
    if (cJSON_IsObject(root) && cJSON_IsString(fmt) && !strcmp(fmt->valuestring, JSON_FORMAT) &&
        txstats__json_int(cJSON_GetObjectItemCaseSensitive(root, "version"), 1, 1e9, &version))
        rc = version == 2 ? TXSTATS_OK : TXSTATS_EINVAL;
    if (rc == TXSTATS_OK && !cJSON_IsArray(recs))
        rc = TXSTATS_EFORMAT;
    if (rc == TXSTATS_OK) {
        struct txstats__img_mem m;
        txstats__img_mem_init(&m, mem);
        for (const cJSON *a = recs->child; a && rc == TXSTATS_OK; a = a->next)
            rc = json_record(&m, a) ? TXSTATS_OK : TXSTATS_EFORMAT;
        uint8_t *data = NULL;
        size_t len = 0;
        int done = txstats__img_mem_finish(&m, &data, &len);
        rc = rc == TXSTATS_OK ? done : rc;
        if (rc == TXSTATS_OK) {
            *image = data;
            *image_len = len;
        } else if (done == TXSTATS_OK) {
            txstats__free(mem, data); /* nothing handed out on failure */
        }
    }
    cJSON_Delete(root);
    return rc;
}
