/* SPDX-License-Identifier: MIT */
/* The image format (image.h): blocks of records, built and read one block at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "image.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t txstats__img_word(const uint8_t *arr, uint64_t i)
{
    uint64_t v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, arr + 8 * i, 8);
#else
    v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | arr[8 * i + (uint64_t)k];
#endif
    return v;
}

/* ---- writing -------------------------------------------------------------------------------- */

int txstats__img_out_init(struct txstats__img_out *o, const struct txstats__mem *mem)
{
    o->n = 0;
    o->buf = txstats__alloc(mem, TXSTATS__IMG_FRAME + TXSTATS__IMG_BLOCK_MAX);
    return o->buf ? TXSTATS_OK : TXSTATS_ENOMEM;
}

void txstats__img_out_fini(struct txstats__img_out *o, const struct txstats__mem *mem)
{
    if (o->buf)
        txstats__free(mem, o->buf);
    o->buf = NULL;
}

void txstats__img_patch(struct txstats__img_out *o, size_t at, uint64_t v)
{
    uint8_t *p = o->buf + TXSTATS__IMG_FRAME + at;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}

void txstats__img_put(struct txstats__img_out *o, uint64_t v)
{
    txstats__img_patch(o, o->n, v);
    o->n += 8;
}

size_t txstats__img_seal(struct txstats__img_out *o)
{
    put32(o->buf, (uint32_t)o->n);
    put32(o->buf + 4, txstats__crc32c(o->buf + TXSTATS__IMG_FRAME, o->n));
    return TXSTATS__IMG_FRAME + o->n;
}

/* ---- in memory ------------------------------------------------------------------------------ */

static void mem_append(struct txstats__img_mem *m, const void *p, size_t n)
{
    if (m->rc != TXSTATS_OK)
        return;
    if (txstats__reserve(m->mem, (void **)&m->data, &m->cap, m->len + n, 1) != 0) {
        m->rc = TXSTATS_ENOMEM;
        return;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
}

void txstats__img_mem_init(struct txstats__img_mem *m, const struct txstats__mem *mem)
{
    memset(m, 0, sizeof(*m));
    m->mem = mem;
    m->rc = txstats__img_out_init(&m->out, mem);
    mem_append(m, TXSTATS__IMG_MAGIC, 8);
}

static void mem_seal(struct txstats__img_mem *m)
{
    if (m->rc == TXSTATS_OK && m->out.n) {
        size_t size = txstats__img_seal(&m->out);
        mem_append(m, m->out.buf, size);
    }
    m->out.n = 0;
}

void txstats__img_mem_need(struct txstats__img_mem *m, size_t bytes)
{
    if (m->rc == TXSTATS_OK && txstats__img_room(&m->out) < bytes)
        mem_seal(m);
}

void txstats__img_mem_put(struct txstats__img_mem *m, uint64_t v)
{
    if (m->rc == TXSTATS_OK && txstats__img_room(&m->out) >= 8)
        txstats__img_put(&m->out, v);
    else
        m->rc = m->rc == TXSTATS_OK ? TXSTATS_EFORMAT : m->rc;
}

void txstats__img_mem_patch(struct txstats__img_mem *m, size_t at, uint64_t v)
{
    if (m->rc == TXSTATS_OK)
        txstats__img_patch(&m->out, at, v);
}

int txstats__img_mem_finish(struct txstats__img_mem *m, uint8_t **data, size_t *len)
{
    mem_seal(m);
    txstats__img_out_fini(&m->out, m->mem);
    if (m->rc != TXSTATS_OK) {
        txstats__free(m->mem, m->data);
        return m->rc;
    }
    *data = m->data;
    *len = m->len;
    return TXSTATS_OK;
}

/* ---- records -------------------------------------------------------------------------------- */

/* Fixed words after the type, and words per array item (0: no array). */
static int shape(int type, unsigned *fixed, unsigned *item)
{
    static const struct {
        char type;
        unsigned char fixed, item;
    } shapes[] = {{TXSTATS__IMG_HEADER, 4, 0},
                  {TXSTATS__IMG_SECTION, 1, 0},
                  {TXSTATS__IMG_AMOUNTS, 1, 1},
                  {TXSTATS__IMG_BUCKETS, 1, 4}, /* item 4: n u16 in (n + 3) / 4 words */
                  {TXSTATS__IMG_CELL, 6, 1},
                  {TXSTATS__IMG_VANISH, 1, 0},
                  {TXSTATS__IMG_KEYS, 0, TXSTATS__IMG_KEY_WORDS},
                  {TXSTATS__IMG_JOURNAL, 2, TXSTATS__IMG_CUT_WORDS},
                  {TXSTATS__IMG_END, 4, 0},
                  {TXSTATS__IMG_PLACE, 2, 1},
                  {TXSTATS__IMG_NAME, 2, 1},
                  {TXSTATS__IMG_TAGS, 1, 2}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        if (shapes[i].type == type) {
            *fixed = shapes[i].fixed;
            *item = shapes[i].item;
            return 0;
        }
    }
    return -1;
}

int txstats__img_next(const uint8_t **pos, const uint8_t *end, struct txstats__img_rec *rec)
{
    const uint8_t *p = *pos;
    uint64_t words = (uint64_t)(end - p) / 8, type;
    unsigned fixed, item;
    if (p == end)
        return 0;
    if (words < 1 || (type = txstats__img_word(p, 0)) > 255 || shape((int)type, &fixed, &item))
        return -1;
    uint64_t head = 1 + fixed + (item ? 1 : 0); /* the type, the fields, the count */
    if (words < head)
        return -1;
    rec->type = (int)type;
    for (unsigned i = 0; i < fixed; i++)
        rec->f[i] = txstats__img_word(p, 1 + i);
    rec->n = item ? txstats__img_word(p, 1 + fixed) : 0;
    /* item 4 marks u16 items, four to a word; else `item` words an item */
    uint64_t need = item == 4 ? (rec->n + 3) / 4 : item ? rec->n * item : 0;
    if (item && (rec->n > (words - head) * 4 || need > words - head))
        return -1;
    rec->arr = p + 8 * head;
    *pos = rec->arr + 8 * need;
    return 1;
}

/* ---- reading -------------------------------------------------------------------------------- */

bool txstats__img_is(const void *data, size_t len)
{
    return len >= 8 && memcmp(data, TXSTATS__IMG_MAGIC, 8) == 0;
}

/* Exactly `len` bytes from the fd: 1, 0 at a clean end (nothing read), -1 (errno; EIO for a cut
 * short read, reported as a format error). */
static int read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got == 0 ? 0 : (errno = 0, -1);
        got += (size_t)r;
    }
    return 1;
}

int txstats__img_in_fd(struct txstats__img_in *in, const struct txstats__mem *mem, int fd)
{
    memset(in, 0, sizeof(*in));
    in->mem = mem;
    in->fd = fd;
    return txstats__img_rewind(in);
}

/* Room for a block of `len` bytes: the buffer grows to the largest block read, at most
 * TXSTATS__IMG_BLOCK_MAX (small snapshots stay small). */
static int room(struct txstats__img_in *in, size_t len)
{
    if (len <= in->cap)
        return TXSTATS_OK;
    size_t cap = len < 4096 ? 4096 : len;
    uint8_t *b = txstats__alloc(in->mem, cap);
    if (!b)
        return TXSTATS_ENOMEM;
    if (in->buf)
        txstats__free(in->mem, in->buf);
    in->buf = b;
    in->cap = cap;
    return TXSTATS_OK;
}

int txstats__img_in_mem(struct txstats__img_in *in, const uint8_t *data, size_t len)
{
    memset(in, 0, sizeof(*in));
    in->fd = -1;
    in->data = data;
    in->len = len;
    return txstats__img_rewind(in);
}

int txstats__img_rewind(struct txstats__img_in *in)
{
    char magic[8];
    if (in->fd < 0) {
        in->pos = 8;
        return txstats__img_is(in->data, in->len) ? TXSTATS_OK : TXSTATS_EFORMAT;
    }
    if (lseek(in->fd, 0, SEEK_SET) != 0)
        return TXSTATS_EIO;
    int r = read_exact(in->fd, magic, 8);
    if (r < 0 && errno)
        return TXSTATS_EIO;
    return r == 1 && txstats__img_is(magic, 8) ? TXSTATS_OK : TXSTATS_EFORMAT;
}

int txstats__img_block(struct txstats__img_in *in, const uint8_t **payload, size_t *len)
{
    uint8_t frame[TXSTATS__IMG_FRAME];
    if (in->fd < 0) {
        if (in->pos == in->len)
            return 0;
        if (in->len - in->pos < TXSTATS__IMG_FRAME)
            return TXSTATS_EFORMAT;
        memcpy(frame, in->data + in->pos, TXSTATS__IMG_FRAME);
    } else {
        int r = read_exact(in->fd, frame, TXSTATS__IMG_FRAME);
        if (r <= 0)
            return r == 0 ? 0 : errno ? TXSTATS_EIO : TXSTATS_EFORMAT;
    }
    *len = get32(frame);
    if (*len > TXSTATS__IMG_BLOCK_MAX || *len % 8)
        return TXSTATS_EFORMAT;
    if (in->fd < 0) {
        if (in->len - in->pos - TXSTATS__IMG_FRAME < *len)
            return TXSTATS_EFORMAT;
        *payload = in->data + in->pos + TXSTATS__IMG_FRAME;
        in->pos += TXSTATS__IMG_FRAME + *len;
    } else {
        if (room(in, *len ? *len : 1) != TXSTATS_OK) /* an empty block has a payload too */
            return TXSTATS_ENOMEM;
        int r = read_exact(in->fd, in->buf, *len);
        if (r <= 0 && *len)
            return r < 0 && errno ? TXSTATS_EIO : TXSTATS_EFORMAT;
        *payload = in->buf;
    }
    return txstats__crc32c(*payload, *len) == get32(frame + 4) ? 1 : TXSTATS_EFORMAT;
}

void txstats__img_in_fini(struct txstats__img_in *in)
{
    if (in->buf)
        txstats__free(in->mem, in->buf);
    in->buf = NULL;
}
