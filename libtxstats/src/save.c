/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: a versioned JSON document with the exact per-millisecond aggregates and the
 * retained amounts, so that statistics and listing survive a save + load unchanged.
 *
 * {"format":"libtxstats-snapshot","version":1,"window_ms":60000,"saved_at_ms":T,
 *  "count":N,"sum":"S","cells":[[ts,count,"sum","min","max",["amount",...]],...]}
 *
 * Cells are in increasing timestamp order, one per millisecond. Money is decimal text.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SNAPSHOT_FORMAT  "libtxstats-snapshot"
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_MAX     ((uint64_t)1 << 32) /* refuse to read more than 4 GiB */

void txstats__snap_free(txstats_t *t, struct txstats__snap *sn)
{
    txstats__free(t, sn->cells);
    txstats__free(t, sn->amounts);
    sn->cells = NULL;
    sn->amounts = NULL;
}

/* Copy one shard's cells (active and future) under its lock, in timestamp order. */
static int copy_shard(txstats_t *t, struct txstats__shard *s, int64_t now, struct txstats__snap *sn,
                      uint64_t *bound)
{
    pthread_mutex_lock(&s->lock);
    if (bound) { /* what is copied now is exactly what older segments hold */
        int rc = txstats__journal_rotate(t, s);
        if (rc != TXSTATS_OK) {
            pthread_mutex_unlock(&s->lock);
            return rc;
        }
        *bound = s->jseg;
    }
    txstats__shard_advance(t, s, now);
    int64_t lo = s->now - t->cfg.window_ms + 1, hi = s->now + t->cfg.max_skew_ms;
    for (int64_t ts = txstats__next_used(t, s, 1, lo, hi); ts != INT64_MAX;
         ts = txstats__next_used(t, s, 1, ts + 1, hi)) {
        const struct txstats__cell *c = &s->cells[ts & t->mask];
        struct txstats__snap_cell *o = &sn->cells[sn->ncells++];
        o->ts = ts;
        o->agg = *c;
        o->off = sn->namounts;
        o->nkept = c->kept;
        if (c->tail) {
            const struct txstats__chunk *k = c->tail;
            do {
                k = k->next;
                memcpy(&sn->amounts[sn->namounts], k->amounts, k->n * sizeof(k->amounts[0]));
                sn->namounts += k->n;
            } while (k != c->tail);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return TXSTATS_OK;
}

static int cmp_cell(const void *a, const void *b)
{
    const struct txstats__snap_cell *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off; /* shard order within a millisecond */
}

static int take_snapshot(txstats_t *t, struct txstats__snap *sn, int64_t *now, uint64_t *bound)
{
    size_t quota = t->cfg.max_retained;
    memset(sn, 0, sizeof(*sn));
    sn->cells = txstats__calloc(t, (size_t)t->ring * t->nshards, sizeof(*sn->cells));
    sn->amounts = txstats__calloc(t, quota ? quota : 1, sizeof(*sn->amounts));
    if (!sn->cells || !sn->amounts) {
        txstats__snap_free(t, sn);
        return TXSTATS_ENOMEM;
    }
    *now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        int rc = copy_shard(t, &t->shards[i], *now, sn, bound ? &bound[i] : NULL);
        if (rc != TXSTATS_OK) {
            txstats__snap_free(t, sn);
            return rc;
        }
    }
    qsort(sn->cells, sn->ncells, sizeof(*sn->cells), cmp_cell);
    return TXSTATS_OK;
}

/* Merge the cells of one millisecond (consecutive after sorting) into `agg`; returns how many. */
static size_t merge_run(const struct txstats__snap *sn, size_t i, struct txstats__cell *agg)
{
    size_t j = i;
    memset(agg, 0, sizeof(*agg));
    for (; j < sn->ncells && sn->cells[j].ts == sn->cells[i].ts; j++) {
        const struct txstats__cell *c = &sn->cells[j].agg;
        agg->min = j == i || c->min < agg->min ? c->min : agg->min;
        agg->max = j == i || c->max > agg->max ? c->max : agg->max;
        agg->count += c->count;
        agg->sum += c->sum;
    }
    return j - i;
}

static void write_cell(FILE *f, const struct txstats__snap *sn, size_t i, size_t n,
                       const struct txstats__cell *agg, bool first)
{
    char a[48], b[48], c[48];
    txstats__format_micros(agg->sum, a);
    txstats__format_micros(agg->min, b);
    txstats__format_micros(agg->max, c);
    fprintf(f, "%s\n[%lld,%llu,\"%s\",\"%s\",\"%s\",[", first ? "" : ",",
            (long long)sn->cells[i].ts, (unsigned long long)agg->count, a, b, c);
    bool sep = false;
    for (size_t j = i; j < i + n; j++) {
        for (uint64_t k = 0; k < sn->cells[j].nkept; k++) {
            txstats__format_micros(sn->amounts[sn->cells[j].off + k], a);
            fprintf(f, "%s\"%s\"", sep ? "," : "", a);
            sep = true;
        }
    }
    fputs("]]", f);
}

static void write_document(FILE *f, const txstats_t *t, const struct txstats__snap *sn, int64_t now,
                           const uint64_t *bound)
{
    uint64_t count = 0;
    txstats__i128 sum = 0;
    char s[48];
    for (size_t i = 0; i < sn->ncells; i++) {
        count += sn->cells[i].agg.count;
        sum += sn->cells[i].agg.sum;
    }
    txstats__format_micros(sum, s);
    fprintf(f,
            "{\"format\":\"%s\",\"version\":%d,\"window_ms\":%lld,\"saved_at_ms\":%lld,"
            "\"count\":%llu,\"sum\":\"%s\"",
            SNAPSHOT_FORMAT, SNAPSHOT_VERSION, (long long)t->cfg.window_ms, (long long)now,
            (unsigned long long)count, s);
    if (bound) {
        fputs(",\"journal\":[", f);
        for (unsigned i = 0; i < t->nshards; i++)
            fprintf(f, "%s[%u,%llu]", i ? "," : "", i, (unsigned long long)bound[i]);
        fputs("]", f);
    }
    fputs(",\"cells\":[", f);
    bool first = true;
    for (size_t i = 0, n; i < sn->ncells; i += n, first = false) {
        struct txstats__cell agg;
        n = merge_run(sn, i, &agg);
        write_cell(f, sn, i, n, &agg, first);
    }
    fputs("\n]}\n", f);
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Write to a temporary file beside `path`, fsync, rename over `path`, fsync the directory. */
static int write_atomically(const char *path, const txstats_t *t, const struct txstats__snap *sn,
                            int64_t now, const uint64_t *bound)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return TXSTATS_ENOMEM;
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        errno = e;
        return TXSTATS_EIO;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    write_document(f, t, sn, now, bound);
    bool ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;
    e = ok ? e : errno;
    if (!ok)
        unlink(tmp);
    free(tmp);
    if (ok && fsync_dir_of(path) != 0)
        return TXSTATS_EIO;
    errno = e;
    return ok ? TXSTATS_OK : TXSTATS_EIO;
}

int txstats__snapshot_write(txstats_t *t, const char *path, uint64_t *bound)
{
    struct txstats__snap sn;
    int64_t now;
    int rc = take_snapshot(t, &sn, &now, bound);
    if (rc != TXSTATS_OK)
        return rc;
    rc = write_atomically(path, t, &sn, now, bound);
    txstats__snap_free(t, &sn);
    return rc;
}

int txstats_save(txstats_t *t, const char *path)
{
    if (!t || !path || !*path)
        return TXSTATS_EINVAL;
    return txstats__snapshot_write(t, path, NULL);
}

/* ---- load ---------------------------------------------------------------------------------- */

/* A whole regular file, `name` relative to `dirfd` (AT_FDCWD: the current directory), at most
 * `max` bytes: TXSTATS_OK, TXSTATS_EIO (errno), TXSTATS_ENOMEM, or TXSTATS_EFORMAT past `max`. */
int txstats__read_all(int dirfd, const char *name, uint64_t max, char **data, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return TXSTATS_EIO;
    int ok = fstat(fd, &st) == 0 ? 1 : 0;
    if (!ok || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        int e = !ok ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        errno = e;
        return ok && S_ISREG(st.st_mode) ? TXSTATS_EFORMAT : TXSTATS_EIO;
    }
    *data = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (*data && got < (size_t)st.st_size) {
        ssize_t r = read(fd, *data + got, (size_t)st.st_size - got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(*data);
            close(fd);
            errno = e;
            return TXSTATS_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return *data ? TXSTATS_OK : TXSTATS_ENOMEM;
}

/* A JSON number that is an integer in [lo, hi], exactly representable. */
static bool get_int(const cJSON *j, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
        return false;
    *out = (int64_t)j->valuedouble;
    return (double)*out == j->valuedouble;
}

static bool get_amount(const cJSON *j, txstats_amount_t *out)
{
    txstats__i128 v;
    if (!cJSON_IsString(j) || txstats__parse_micros(j->valuestring, &v) != 0 ||
        v <= -TXSTATS_AMOUNT_LIMIT || v >= TXSTATS_AMOUNT_LIMIT)
        return false;
    *out = (txstats_amount_t)v;
    return true;
}

/* Check the retained amounts of a cell against its aggregates and append them to sn. */
static bool parse_kept(const cJSON *arr, struct txstats__snap *sn, struct txstats__snap_cell *c)
{
    txstats__i128 sum = 0;
    txstats_amount_t lo = INT64_MAX, hi = INT64_MIN;
    if (!cJSON_IsArray(arr))
        return false;
    c->off = sn->namounts;
    c->nkept = (uint64_t)cJSON_GetArraySize(arr);
    if (c->nkept > c->agg.count)
        return false;
    for (const cJSON *a = arr->child; a; a = a->next) {
        txstats_amount_t v;
        if (!get_amount(a, &v) || v < c->agg.min || v > c->agg.max)
            return false;
        sn->amounts[sn->namounts++] = v;
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    return c->nkept < c->agg.count || (sum == c->agg.sum && lo == c->agg.min && hi == c->agg.max);
}

static bool parse_cell(const cJSON *j, struct txstats__snap *sn, int64_t prev_ts)
{
    struct txstats__snap_cell *c = &sn->cells[sn->ncells];
    int64_t n;
    const double lim = (double)(TXSTATS__CLOCK_LIMIT * 2);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 6)
        return false;
    const cJSON *f = j->child;
    memset(c, 0, sizeof(*c));
    if (!get_int(f, -lim, lim, &c->ts) || c->ts <= prev_ts || !get_int(f->next, 1, 9e15, &n) ||
        !cJSON_IsString(f->next->next) ||
        txstats__parse_micros(f->next->next->valuestring, &c->agg.sum) != 0 ||
        !get_amount(f->next->next->next, &c->agg.min) ||
        !get_amount(f->next->next->next->next, &c->agg.max) || c->agg.min > c->agg.max)
        return false;
    c->agg.count = (uint64_t)n;
    txstats__i128 cnt = (txstats__i128)n;
    if (c->agg.sum < cnt * c->agg.min || c->agg.sum > cnt * c->agg.max)
        return false;
    if (!parse_kept(f->next->next->next->next->next, sn, c))
        return false;
    sn->ncells++;
    return true;
}

static size_t count_amounts(const cJSON *cells)
{
    size_t n = 0;
    for (const cJSON *c = cells->child; c; c = c->next) {
        const cJSON *k = cJSON_GetArrayItem(c, 5);
        n += cJSON_IsArray(k) ? (size_t)cJSON_GetArraySize(k) : 0;
    }
    return n;
}

static int parse_header(const cJSON *root, int64_t *count, txstats__i128 *sum)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sum");
    int64_t version;
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, SNAPSHOT_FORMAT))
        return TXSTATS_EFORMAT;
    if (!get_int(cJSON_GetObjectItemCaseSensitive(root, "version"), 1, 1e9, &version) ||
        version != SNAPSHOT_VERSION)
        return TXSTATS_EFORMAT;
    if (!get_int(cJSON_GetObjectItemCaseSensitive(root, "count"), 0, 9e15, count) ||
        !cJSON_IsString(s) || txstats__parse_micros(s->valuestring, sum) != 0 ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "cells")))
        return TXSTATS_EFORMAT;
    return TXSTATS_OK;
}

/* Validate the whole document into `sn`; nothing of the instance is touched. */
/* Optional "journal": [[stream, first uncovered segment], ...]. */
static int parse_bounds(const cJSON *root, struct txstats__snap *sn)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "journal");
    if (!j)
        return TXSTATS_OK;
    if (!cJSON_IsArray(j))
        return TXSTATS_EFORMAT;
    for (const cJSON *e = j->child; e; e = e->next) {
        int64_t stream, seg;
        if (cJSON_GetArraySize(e) != 2 || !get_int(e->child, 0, TXSTATS__MAX_SHARDS - 1, &stream) ||
            !get_int(e->child->next, 0, 9e15, &seg))
            return TXSTATS_EFORMAT;
        sn->bound[stream] = (uint64_t)seg;
    }
    return TXSTATS_OK;
}

static int parse_snapshot(txstats_t *t, const cJSON *root, struct txstats__snap *sn)
{
    int64_t count;
    txstats__i128 sum, total = 0;
    uint64_t seen = 0;
    int rc = parse_header(root, &count, &sum);
    if (rc != TXSTATS_OK)
        return rc;
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(root, "cells");
    size_t ncells = (size_t)cJSON_GetArraySize(cells), namounts = count_amounts(cells);
    memset(sn, 0, sizeof(*sn));
    if (parse_bounds(root, sn) != TXSTATS_OK)
        return TXSTATS_EFORMAT;
    sn->cells = txstats__calloc(t, ncells ? ncells : 1, sizeof(*sn->cells));
    sn->amounts = txstats__calloc(t, namounts ? namounts : 1, sizeof(*sn->amounts));
    if (!sn->cells || !sn->amounts)
        return TXSTATS_ENOMEM;
    int64_t prev = INT64_MIN;
    for (const cJSON *c = cells->child; c; c = c->next) {
        if (!parse_cell(c, sn, prev))
            return TXSTATS_EFORMAT;
        prev = sn->cells[sn->ncells - 1].ts;
        seen += sn->cells[sn->ncells - 1].agg.count;
        total += sn->cells[sn->ncells - 1].agg.sum;
    }
    return seen == (uint64_t)count && total == sum ? TXSTATS_OK : TXSTATS_EFORMAT;
}

static void free_pool(txstats_t *t, struct txstats__chunk *pool)
{
    while (pool) {
        struct txstats__chunk *k = pool;
        pool = k->next;
        txstats__free(t, k);
    }
}

/* Enough chunks for every retained amount the snapshot holds, allocated before any change. */
static int make_pool(txstats_t *t, const struct txstats__snap *sn, struct txstats__chunk **pool)
{
    size_t need = 0;
    *pool = NULL;
    for (size_t i = 0; i < sn->ncells; i++)
        need += (size_t)((sn->cells[i].nkept + TXSTATS__CHUNK_CAP - 1) / TXSTATS__CHUNK_CAP);
    for (size_t i = 0; i < need; i++) {
        struct txstats__chunk *k = txstats__alloc(t, sizeof(*k));
        if (!k) {
            free_pool(t, *pool);
            *pool = NULL;
            return TXSTATS_ENOMEM;
        }
        k->next = *pool;
        *pool = k;
    }
    return TXSTATS_OK;
}

static void install(txstats_t *t, const struct txstats__snap *sn, struct txstats__chunk *pool)
{
    txstats__lock_all(t);
    int64_t now = txstats__now(t);
    for (unsigned i = 0; i < t->nshards; i++) {
        txstats__shard_advance(t, &t->shards[i], now);
        txstats__shard_reset(t, &t->shards[i]);
    }
    unsigned next = 0;
    for (size_t i = 0; i < sn->ncells; i++) {
        const struct txstats__snap_cell *c = &sn->cells[i];
        if (c->ts <= now - t->cfg.window_ms || c->ts > now + t->cfg.max_skew_ms)
            continue;
        struct txstats__shard *s = &t->shards[next++ % t->nshards];
        txstats__shard_put_cell(t, s, c->ts, &c->agg, &sn->amounts[c->off], c->nkept, &pool);
    }
    while (pool) {
        struct txstats__chunk *k = pool;
        pool = k->next;
        k->next = t->shards[0].free_chunks;
        t->shards[0].free_chunks = k;
    }
    txstats__unlock_all(t);
}

int txstats__snapshot_read(txstats_t *t, const char *path, struct txstats__snap *sn)
{
    char *data = NULL;
    size_t len = 0;
    memset(sn, 0, sizeof(*sn));
    int rc = txstats__read_all(AT_FDCWD, path, SNAPSHOT_MAX, &data, &len);
    if (rc != TXSTATS_OK)
        return rc;
    if (len == 0) {
        free(data);
        return TXSTATS_EFORMAT;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    bool trailing = false;
    for (; root && end < data + len; end++)
        trailing |= *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n';
    free(data);
    if (!root || trailing) {
        cJSON_Delete(root);
        return TXSTATS_EFORMAT;
    }
    rc = parse_snapshot(t, root, sn);
    cJSON_Delete(root);
    if (rc != TXSTATS_OK)
        txstats__snap_free(t, sn);
    return rc;
}

int txstats__snapshot_install(txstats_t *t, const struct txstats__snap *sn)
{
    struct txstats__chunk *pool = NULL;
    int rc = make_pool(t, sn, &pool);
    if (rc == TXSTATS_OK)
        install(t, sn, pool);
    return rc;
}

int txstats_load(txstats_t *t, const char *path)
{
    struct txstats__snap sn;
    if (!t || !path)
        return TXSTATS_EINVAL;
    int rc = txstats__snapshot_read(t, path, &sn);
    if (rc != TXSTATS_OK)
        return rc;
    rc = txstats__snapshot_install(t, &sn);
    txstats__snap_free(t, &sn);
    return rc;
}
