/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint images against the live instance, through the public API and file copies only.
 * The invariant: at any moment, the data directory's files (the checkpoint and the journal
 * segments it does not cover) recovered by txstats_open_dir() give exactly the live instance's
 * state: statistics, every bucket of the distribution, the listing (a multiset per millisecond:
 * the order within one depends on the shards), the idempotency keys. The listing is compared
 * exactly only where the retention budget never binds (see the tight profiles for why and what
 * is checked instead).
 *
 * What a copy proves. A crash leaves the files as of one instant; copying them one by one while
 * writers run is not such an instant (a segment copied before a record is appended, the
 * checkpoint after its rename: the copy is no state the process ever had), so the adders are
 * always stopped (joined) before a copy, and the copy is compared with the live instance once
 * nothing changes it (the clock is a fake one, frozen too). Two moments are copied:
 *  - in the middle of a checkpoint: cfg.io sees every block the checkpoint writes, between two
 *    holds of a shard's lock (or between two pieces of the key table), with no lock held; there
 *    the adders are told to stop and joined, the directory copied (old checkpoint, journal,
 *    the half-written temporary file), then the checkpoint goes on. This is a crash at an
 *    instant inside a checkpoint, exactly.
 *  - after the adders stopped by themselves at a random point, the checkpoint then running
 *    completing (no further one): the pieces written while adds went on, the cuts, the journal.
 * The writers run between the checkpoint's holds in both, and the same hook also adds, or moves
 * the clock, between two holds of one large cell, deterministically (cases 2 and 3).
 *
 * Cases: (1) rounds of 2 adders (adds, keyed adds, batches, key retries; clears in one variant)
 * with the fake clock moved by the adders, so cells expire while checkpoints run, against
 * txstats_checkpoint() in a loop; (2) a cell of 400,000 amounts at one millisecond (over three
 * holds' worth), through txstats_checkpoint(), txstats_save_bin() and txstats_save(), then with
 * adds to that millisecond between the holds and from a thread; (3) a cell larger than a hold at
 * the window's oldest millisecond that leaves the window between two holds; (4) 200,000 keyed
 * adds, the key table's sub-tables growing while checkpoints copy them (200,000 keys fit one
 * piece of each sub-table: the restart of a sub-table whose slots moved between two pieces needs
 * some 850,000 keys, too slow here).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* Sanitized builds (TXSTATS_SANITIZE) are several times slower: fewer operations a round. */
#ifdef TXSTATS_TEST_SANITIZED
#define SCALE 5
#else
#define SCALE 1
#endif
#define ROUNDS     24
#define ROUND_OPS  (40000 / SCALE) /* most operations of a round, over both adders */
#define GIANT      400000          /* amounts at one millisecond: 3.2 MB, a hold is 1 MiB */
#define KEYS       (200000 / SCALE)
#define STOP_WAIT  5000 /* ms the adders get to stop inside a checkpoint's hook */
#define BATCH_MAX  32
#define KEY_TTL_MS 3000000 /* no key expires during a test: key counts compare exactly */

/* ---- The fake clock, moved by the adders -------------------------------------------------- */

struct clock {
    _Atomic int64_t now;
};

static int64_t clock_read(void *ctx)
{
    return atomic_load(&((struct clock *)ctx)->now);
}

/* ---- Every block a checkpoint writes, seen between two holds ------------------------------ */

static _Thread_local bool checkpointing; /* this thread runs the checkpoints watched */
static _Thread_local bool in_hook;       /* the hook's own adds journal through here too */
static void (*on_image_write)(void *ctx);
static void *on_image_ctx;

/* A temporary file of fileio's atomic writes ("name.tmp.PID.N"): a checkpoint or snapshot. */
static bool is_image(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    return strstr(path, ".tmp.") != NULL;
}

static ssize_t hook_write(int fd, const void *buf, size_t len, void *ctx)
{
    if (checkpointing && !in_hook && on_image_write && is_image(fd)) {
        in_hook = true;
        on_image_write(on_image_ctx);
        in_hook = false;
    }
    return write(fd, buf, len);
}

static const txstats_io_t hook_io = {hook_write, NULL, NULL};

/* ---- Instances ---------------------------------------------------------------------------- */

struct setup {
    int64_t window_ms;
    unsigned shards;
    size_t max_retained;
};

static txstats_t *instance(const struct setup *s, struct clock *clk)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.window_ms = s->window_ms;
    cfg.shards = s->shards;
    cfg.max_retained = s->max_retained;
    cfg.key_ttl_ms = KEY_TTL_MS;
    cfg.clock_ms = clock_read;
    cfg.clock_ctx = clk;
    cfg.io = &hook_io;
    txstats_t *t = NULL;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    return t;
}

static void attach(txstats_t *t, const char *dir)
{
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_NEVER;
    d.checkpoint_interval_ms = 0;
    int rc = txstats_open_dir(t, dir, &d, NULL);
    if (rc != TXSTATS_OK)
        fail_msg("txstats_open_dir(%s): %s", dir, txstats_strerror(rc));
}

static void make_root(char *root, size_t n)
{
    snprintf(root, n, "/tmp/txstats-image-XXXXXX");
    assert_non_null(mkdtemp(root));
}

static void remove_root(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* Every regular file of `src` but the lock into a fresh `dst`. */
static void copy_dir(const char *src, const char *dst)
{
    assert_int_equal(mkdir(dst, 0700), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    static char buf[1 << 16];
    while ((e = readdir(d))) {
        char from[600], to[600];
        struct stat st;
        snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
        if (strcmp(e->d_name, "lock") == 0 || stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(to, sizeof(to), "%s/%s", dst, e->d_name);
        int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(in >= 0 && out >= 0);
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            assert_int_equal(write(out, buf, (size_t)n), n);
        assert_int_equal(n, 0);
        close(in);
        close(out);
    }
    closedir(d);
}

/* ---- What an instance answers ------------------------------------------------------------- */

struct bucket {
    txstats_amount_t lo, hi;
    uint64_t count;
};

struct answers {
    txstats_summary_t stats;
    txstats_list_info_t info;
    txstats_tx_t *list; /* sorted by timestamp, then amount */
    struct bucket *buckets;
    size_t nbuckets;
    uint64_t keys;
};

static int cmp_tx(const void *a, const void *b)
{
    const txstats_tx_t *x = a, *y = b;
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms < y->timestamp_ms ? -1 : 1;
    return (x->amount > y->amount) - (x->amount < y->amount);
}

static void record(txstats_t *t, struct answers *a)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(txstats_stats(t, &a->stats), TXSTATS_OK);
    int rc = txstats_get_ex(t, NULL, 0, &a->info);
    assert_true(rc == TXSTATS_OK || rc == TXSTATS_ENOBUFS);
    size_t cap = (size_t)a->info.retained + 1;
    a->list = calloc(cap, sizeof(*a->list));
    assert_non_null(a->list);
    assert_int_equal(txstats_get_ex(t, a->list, cap, &a->info), TXSTATS_OK);
    qsort(a->list, (size_t)a->info.written, sizeof(*a->list), cmp_tx);
    txstats_dist_t *d = NULL;
    assert_int_equal(txstats_dist_create(&d, NULL), TXSTATS_OK);
    assert_int_equal(txstats_dist_collect(t, d), TXSTATS_OK);
    size_t bcap = 256;
    a->buckets = malloc(bcap * sizeof(*a->buckets));
    assert_non_null(a->buckets);
    uint32_t cursor = 0;
    struct bucket b;
    while (txstats_dist_bucket_next(d, &cursor, &b.lo, &b.hi, &b.count)) {
        if (a->nbuckets == bcap) {
            bcap *= 2;
            a->buckets = realloc(a->buckets, bcap * sizeof(*a->buckets));
            assert_non_null(a->buckets);
        }
        a->buckets[a->nbuckets++] = b;
    }
    txstats_dist_destroy(d);
    assert_int_equal(txstats_key_count(t, &a->keys), TXSTATS_OK);
}

static void free_answers(struct answers *a)
{
    free(a->list);
    free(a->buckets);
    memset(a, 0, sizeof(*a));
}

/* Entries of one sorted listing missing from the other (multisets). */
static void list_diff(const struct answers *x, const struct answers *y, uint64_t *only_x,
                      uint64_t *only_y)
{
    uint64_t i = 0, j = 0;
    *only_x = *only_y = 0;
    while (i < x->info.written || j < y->info.written) {
        int c = i == x->info.written   ? 1
                : j == y->info.written ? -1
                                       : cmp_tx(&x->list[i], &y->list[j]);
        *only_x += c < 0;
        *only_y += c > 0;
        i += c <= 0;
        j += c >= 0;
    }
}

/* `got` (a recovery or a load) against `live`; every difference printed, then a failure. */
static void compare(const struct answers *live, const struct answers *got, const char *what,
                    bool keys, bool listing)
{
    int bad = 0;
    const txstats_summary_t *a = &live->stats, *b = &got->stats;
    if (a->count != b->count || a->min != b->min || a->max != b->max || a->sum_hi != b->sum_hi ||
        a->sum_lo != b->sum_lo || a->now_ms != b->now_ms) {
        bad++;
        print_error("%s: statistics: live count %llu min %lld max %lld sum %lld:%llu now %lld; "
                    "recovered count %llu min %lld max %lld sum %lld:%llu now %lld\n",
                    what, (unsigned long long)a->count, (long long)a->min, (long long)a->max,
                    (long long)a->sum_hi, (unsigned long long)a->sum_lo, (long long)a->now_ms,
                    (unsigned long long)b->count, (long long)b->min, (long long)b->max,
                    (long long)b->sum_hi, (unsigned long long)b->sum_lo, (long long)b->now_ms);
    }
    size_t i = 0;
    for (; i < live->nbuckets && i < got->nbuckets; i++)
        if (live->buckets[i].lo != got->buckets[i].lo ||
            live->buckets[i].hi != got->buckets[i].hi ||
            live->buckets[i].count != got->buckets[i].count)
            break;
    if (i < live->nbuckets || i < got->nbuckets) {
        bad++;
        print_error("%s: distribution differs from bucket %zu on (%zu buckets live, %zu "
                    "recovered)\n",
                    what, i, live->nbuckets, got->nbuckets);
    }
    uint64_t only_live, only_got;
    list_diff(live, got, &only_live, &only_got);
    if (live->info.in_window != got->info.in_window ||
        (listing && (live->info.retained != got->info.retained || only_live || only_got))) {
        bad++;
        print_error("%s: listing: live %llu in the window, %llu retained; recovered %llu and "
                    "%llu; %llu entries only live, %llu only recovered\n",
                    what, (unsigned long long)live->info.in_window,
                    (unsigned long long)live->info.retained,
                    (unsigned long long)got->info.in_window, (unsigned long long)got->info.retained,
                    (unsigned long long)only_live, (unsigned long long)only_got);
    }
    if (keys && live->keys != got->keys) {
        bad++;
        print_error("%s: %llu keys live, %llu recovered\n", what, (unsigned long long)live->keys,
                    (unsigned long long)got->keys);
    }
    if (bad)
        fail_msg("%s: %d answers differ from the live instance's", what, bad);
}

/* ---- Rounds: adders against checkpoints ----------------------------------------------------- */

struct key_log {
    uint64_t id;
    txstats_amount_t amount;
    int64_t ts;
};

enum mode { MID_CHECKPOINT, STOP_BETWEEN };

struct profile {
    const char *name;
    struct setup setup;
    unsigned keyed_pct;    /* of the operations; the rest: adds, batches, key retries */
    unsigned tick;         /* an operation in `tick` moves the clock 1 to 3 ms; 0: never */
    unsigned clear_one_in; /* adder 0 clears once in this many operations; 0: never */
    unsigned long ops;     /* most operations of a round */
    bool exact_listing;    /* the listing compared exactly (else: see the tight profiles) */
};

struct round;

struct adder {
    struct round *r;
    pthread_t th;
    unsigned id;
    uint64_t rng;
    struct key_log *keys;
    size_t nkeys, cap;
    uint64_t refused;     /* keyed adds refused (EXPIRED): their keys outlive no crash */
    txstats_tx_t *stored; /* every transaction stored (OK), for the listing of a tight budget */
    size_t nstored, scap;
    uint64_t clears;
    int error; /* an unexpected status */
};

struct round {
    const struct profile *p;
    txstats_t *t;
    struct clock clk;
    uint64_t rng;
    enum mode mode;
    _Atomic bool stop;
    _Atomic unsigned long ops;
    unsigned long stop_at; /* the adders stop by themselves once ops reach it */
    unsigned long pause_at;
    _Atomic int running;
    struct adder adders[2];
    char root[64], live[96], mid[96], end[96];
    bool copied_mid;
    unsigned hook_calls;
};

static uint64_t next(uint64_t *s)
{
    uint64_t x = (*s += UINT64_C(0x9e3779b97f4a7c15));
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* A wide mix: exact small amounts, cents, large ones, a few negative. */
static txstats_amount_t amount(uint64_t x)
{
    txstats_amount_t a;
    switch (x % 8) {
    case 0:
        a = (txstats_amount_t)(x >> 8) % 1024;
        break;
    case 1:
        a = (txstats_amount_t)((x >> 8) % 100000000000000) * 1000; /* up to 10^8 */
        break;
    default:
        a = (txstats_amount_t)((x >> 8) % 10000000 + 1) * 10000; /* 0.01 .. 100,000.00 */
    }
    return (x >> 62) == 0 && (x & 0x100) ? -a : a;
}

/* A timestamp: dense at the clock, spread over the window, a few already expired. */
static int64_t stamp(uint64_t x, int64_t now, int64_t window)
{
    if (x % 2)
        return now - (int64_t)((x >> 4) % 16);
    return now - (int64_t)((x >> 4) % (uint64_t)(window + window / 8));
}

static void key_text(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "idem-%016llx", (unsigned long long)id);
}

static void log_tx(struct adder *a, txstats_amount_t amount, int64_t ts)
{
    if (a->nstored == a->scap) {
        a->scap = a->scap ? 2 * a->scap : 65536;
        a->stored = realloc(a->stored, a->scap * sizeof(*a->stored));
        if (!a->stored) {
            a->error = TXSTATS_ENOMEM;
            a->nstored = a->scap = 0;
            return;
        }
    }
    a->stored[a->nstored++] = (txstats_tx_t){amount, ts};
}

static void keyed_add(struct adder *a, uint64_t x, int64_t now)
{
    struct round *r = a->r;
    if (a->nkeys == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4096;
        a->keys = realloc(a->keys, a->cap * sizeof(*a->keys));
        if (!a->keys) {
            a->error = TXSTATS_ENOMEM;
            return;
        }
    }
    /* Stamped at the clock or a little before: refused only if the clock passed a quarter of
     * the window meanwhile. */
    struct key_log k = {(uint64_t)a->id << 48 | a->nkeys, amount(x),
                        now - (int64_t)((x >> 5) % (uint64_t)(r->p->setup.window_ms / 4))};
    char key[40];
    key_text(k.id, key, sizeof(key));
    int rc = txstats_add_keyed(r->t, k.amount, k.ts, key, strlen(key), NULL);
    if (rc == TXSTATS_EXPIRED)
        a->refused++;
    else if (rc != TXSTATS_OK)
        a->error = rc;
    else
        log_tx(a, k.amount, k.ts);
    a->keys[a->nkeys++] = k;
}

/* A key asked again. Only a recent one: after a clear forgot it, an old one's retry would be
 * refused (EXPIRED) and remembered in memory only, which no crash keeps. */
static void retry_key(struct adder *a, uint64_t x, int64_t now)
{
    if (a->nkeys == 0)
        return;
    const struct key_log *k = &a->keys[(x >> 7) % a->nkeys];
    if (k->ts <= now - a->r->p->setup.window_ms / 2)
        return;
    char key[40];
    key_text(k->id, key, sizeof(key));
    int rc = txstats_add_keyed(a->r->t, k->amount, k->ts, key, strlen(key), NULL);
    /* OK again after a clear forgot the key (or it was refused and is judged afresh). */
    if (rc != TXSTATS_DUPLICATE && rc != TXSTATS_OK && rc != TXSTATS_EXPIRED)
        a->error = rc;
    a->refused += rc == TXSTATS_EXPIRED;
    if (rc == TXSTATS_OK)
        log_tx(a, k->amount, k->ts);
}

static void batch(struct adder *a, uint64_t x, int64_t now)
{
    txstats_tx_t tx[BATCH_MAX];
    int res[BATCH_MAX];
    size_t n = 1 + (size_t)(x >> 3) % BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t y = next(&a->rng);
        tx[i].amount = amount(y);
        tx[i].timestamp_ms = stamp(y >> 3, now, a->r->p->setup.window_ms);
    }
    int rc = txstats_add_batch(a->r->t, tx, n, res, NULL);
    for (size_t i = 0; i < n && rc == TXSTATS_OK; i++) {
        if (res[i] == TXSTATS_OK)
            log_tx(a, tx[i].amount, tx[i].timestamp_ms);
        else if (res[i] != TXSTATS_EXPIRED)
            rc = res[i];
    }
    if (rc != TXSTATS_OK)
        a->error = rc;
}

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    struct round *r = a->r;
    const struct profile *p = r->p;
    while (!atomic_load(&r->stop) && atomic_fetch_add(&r->ops, 1) < r->stop_at && !a->error) {
        uint64_t x = next(&a->rng);
        int64_t now = atomic_load(&r->clk.now);
        if (p->tick && x % p->tick == 0)
            now = atomic_fetch_add(&r->clk.now, 1 + (int64_t)(x >> 40) % 3);
        unsigned op = (unsigned)((x >> 16) % 100);
        if (p->clear_one_in && a->id == 0 && (x >> 20) % p->clear_one_in == 0) {
            if (txstats_clear_ex(r->t) != TXSTATS_OK)
                a->error = TXSTATS_EIO;
            a->clears++;
        } else if (op < p->keyed_pct) {
            keyed_add(a, x, now);
        } else if (op < p->keyed_pct + (100 - p->keyed_pct) / 2) {
            txstats_tx_t tx = {amount(x >> 3), stamp(x >> 5, now, p->setup.window_ms)};
            int rc = txstats_add(r->t, tx.amount, tx.timestamp_ms);
            if (rc == TXSTATS_OK)
                log_tx(a, tx.amount, tx.timestamp_ms);
            else if (rc != TXSTATS_EXPIRED)
                a->error = rc;
        } else if (op < 97) {
            batch(a, x, now);
        } else {
            retry_key(a, x, now);
        }
    }
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

static void start_adders(struct round *r)
{
    atomic_store(&r->running, 2);
    for (unsigned i = 0; i < 2; i++) {
        struct adder *a = &r->adders[i];
        a->r = r;
        a->id = i;
        a->rng = next(&r->rng);
        assert_int_equal(pthread_create(&a->th, NULL, adder_main, a), 0);
    }
}

static void join_adders(struct round *r)
{
    for (unsigned i = 0; i < 2; i++)
        pthread_join(r->adders[i].th, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Between two holds of a checkpoint (no lock held, unless the key table's piece flushes under a
 * sub-table lock after its slots kept moving: then an adder may wait on it, and after STOP_WAIT
 * the copy is given up): stop the adders and copy the directory, a crash at this instant. */
static void pause_and_copy(void *ctx)
{
    struct round *r = ctx;
    r->hook_calls++;
    if (r->copied_mid || atomic_load(&r->ops) < r->pause_at)
        return;
    atomic_store(&r->stop, true);
    for (int waited = 0; atomic_load(&r->running) > 0 && waited < STOP_WAIT; waited++)
        sleep_ms(1);
    if (atomic_load(&r->running) > 0) {
        print_message("  adders blocked inside the checkpoint: no copy there\n");
        r->copied_mid = true; /* not again */
        r->mid[0] = '\0';
        return;
    }
    copy_dir(r->live, r->mid);
    r->copied_mid = true;
}

/* Whether a listing lists only transactions stored and in the window (a multiset inclusion). */
static void assert_listing_sound(struct round *r, const struct answers *a, const char *what)
{
    int64_t now = atomic_load(&r->clk.now), lo = now - r->p->setup.window_ms;
    size_t n = 0;
    txstats_tx_t *all = malloc((r->adders[0].nstored + r->adders[1].nstored + 1) * sizeof(*all));
    assert_non_null(all);
    for (unsigned i = 0; i < 2; i++)
        for (size_t k = 0; k < r->adders[i].nstored; k++)
            if (r->adders[i].stored[k].timestamp_ms > lo)
                all[n++] = r->adders[i].stored[k];
    qsort(all, n, sizeof(*all), cmp_tx);
    size_t j = 0;
    for (uint64_t i = 0; i < a->info.written; i++) {
        while (j < n && cmp_tx(&all[j], &a->list[i]) < 0)
            j++;
        if (j == n || cmp_tx(&all[j], &a->list[i]) != 0)
            fail_msg("%s: listing entry %llu (%lld at now - %lld ms) was never stored, or is "
                     "listed more often than it was",
                     what, (unsigned long long)i, (long long)a->list[i].amount,
                     (long long)(now - a->list[i].timestamp_ms));
        j++;
    }
    assert_true(a->info.retained <= r->p->setup.max_retained);
    free(all);
}

/* The copy at `dir` recovered by a fresh instance on a clock frozen at the live one's. */
static void recover_and_compare(struct round *r, const char *dir, const struct answers *live,
                                const char *what)
{
    struct clock c;
    atomic_init(&c.now, atomic_load(&r->clk.now));
    txstats_t *x = instance(&r->p->setup, &c);
    attach(x, dir);
    struct answers got;
    record(x, &got);
    uint64_t refused = r->adders[0].refused + r->adders[1].refused;
    /* A refused keyed add's key is in memory (and a checkpoint) only: a crash may forget it. */
    compare(live, &got, what, refused == 0, r->p->exact_listing);
    if (!r->p->exact_listing) { /* see the tight profiles */
        assert_listing_sound(r, live, "live");
        assert_listing_sound(r, &got, what);
        uint64_t only_live, only_got;
        list_diff(live, &got, &only_live, &only_got);
        print_message("    %s: %llu retained live, %llu recovered; %llu listed only live, %llu "
                      "only recovered\n",
                      what, (unsigned long long)live->info.retained,
                      (unsigned long long)got.info.retained, (unsigned long long)only_live,
                      (unsigned long long)only_got);
    }
    if (refused)
        assert_true(got.keys <= live->keys && live->keys <= got.keys + refused);
    /* Every key asked again: the same answer from both; without clears, a duplicate. */
    for (unsigned i = 0; i < 2; i++) {
        const struct adder *a = &r->adders[i];
        for (size_t k = 0; k < a->nkeys; k++) {
            char key[40];
            int f1 = 0, f2 = 0;
            key_text(a->keys[k].id, key, sizeof(key));
            int rl =
                txstats_key_check(r->t, a->keys[k].amount, a->keys[k].ts, key, strlen(key), &f1);
            int rr = txstats_key_check(x, a->keys[k].amount, a->keys[k].ts, key, strlen(key), &f2);
            if (refused && (f1 == TXSTATS_EXPIRED || rl == TXSTATS_OK))
                continue;
            if (rl != rr || f1 != f2 || (!r->p->clear_one_in && rl != TXSTATS_DUPLICATE))
                fail_msg("%s: key %s: live %d (first %d), recovered %d (first %d)", what, key, rl,
                         f1, rr, f2);
        }
    }
    free_answers(&got);
    txstats_destroy(x);
}

static void run_round(const struct profile *p, uint64_t seed, enum mode mode)
{
    struct round *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->p = p;
    r->rng = seed;
    r->mode = mode;
    atomic_init(&r->clk.now, T0);
    make_root(r->root, sizeof(r->root));
    snprintf(r->live, sizeof(r->live), "%s/live", r->root);
    snprintf(r->mid, sizeof(r->mid), "%s/mid", r->root);
    snprintf(r->end, sizeof(r->end), "%s/end", r->root);
    unsigned long target = p->ops / 10 + next(&r->rng) % (p->ops - p->ops / 10);
    r->stop_at = mode == STOP_BETWEEN ? target : p->ops;
    r->pause_at = mode == MID_CHECKPOINT ? target : ULONG_MAX;
    r->t = instance(&p->setup, &r->clk);
    attach(r->t, r->live);
    on_image_write = pause_and_copy;
    on_image_ctx = r;
    start_adders(r);
    unsigned checkpoints = 0, voided = 0;
    checkpointing = true;
    while (atomic_load(&r->running) > 0) {
        int rc = txstats_checkpoint(r->t);
        /* A clear voids the checkpoint it meets; 16 of them in a row fail it (EAGAIN). */
        if (rc != TXSTATS_OK && !(p->clear_one_in && rc == TXSTATS_EIO && errno == EAGAIN))
            fail_msg("txstats_checkpoint: %s", txstats_strerror(rc));
        checkpoints += rc == TXSTATS_OK;
        voided += rc != TXSTATS_OK;
    }
    checkpointing = false;
    on_image_write = NULL;
    join_adders(r);
    for (unsigned i = 0; i < 2; i++)
        if (r->adders[i].error)
            fail_msg("adder %u: %s", i, txstats_strerror(r->adders[i].error));
    copy_dir(r->live, r->end);
    struct answers live;
    record(r->t, &live);
    print_message("  %s seed %llx: %lu ops, %u checkpoints (%u failed), clock +%lld ms, %llu in "
                  "the window, %llu retained, %llu keys%s\n",
                  p->name, (unsigned long long)seed, atomic_load(&r->ops), checkpoints, voided,
                  (long long)(atomic_load(&r->clk.now) - T0),
                  (unsigned long long)live.info.in_window, (unsigned long long)live.info.retained,
                  (unsigned long long)live.keys,
                  mode == MID_CHECKPOINT
                      ? (r->mid[0] && r->copied_mid ? ", copied mid-checkpoint" : ", no mid copy")
                      : "");
    if (mode == MID_CHECKPOINT && r->copied_mid && r->mid[0])
        recover_and_compare(r, r->mid, &live, "copy inside a checkpoint");
    recover_and_compare(r, r->end, &live, "copy after the adders stopped");
    free_answers(&live);
    txstats_destroy(r->t);
    for (unsigned i = 0; i < 2; i++) {
        free(r->adders[i].keys);
        free(r->adders[i].stored);
    }
    remove_root(r->root);
    free(r);
}

/*
 * Tight profiles: max_retained far below the window, so that some amounts are listable and most
 * are not, and the image carries both; roomy ones: the budget never binds. Everything is compared
 * exactly, the listing too: each journal record says whether the live window retained the add,
 * and replay retains exactly those (before that flag, replay judged each record again against
 * the budget left at the recovered clock and listed other amounts than the live instance).
 */
#define TIGHT_EXACT true
#define ROOMY       ((size_t)1 << 20)
static const struct profile profiles[] = {
    {"tight", {1000, 2, 3000}, 25, 8, 0, ROUND_OPS, TIGHT_EXACT},
    {"roomy", {1000, 2, ROOMY}, 25, 8, 0, ROUND_OPS, true},
    {"roomy+clears", {1000, 2, ROOMY}, 25, 8, 4000, ROUND_OPS, true},
    {"tight+clears", {1000, 2, 3000}, 25, 8, 4000, ROUND_OPS, TIGHT_EXACT},
};
static const struct profile keyed = {
    "keys", {60000, 2, 2000}, 100, 0, 0, KEYS, TIGHT_EXACT,
};

/* Case 1: ROUNDS rounds over the four profiles; half copied inside a checkpoint. */
static void test_rounds(void **state)
{
    for (unsigned i = 0; i < ROUNDS; i++)
        run_round(&profiles[i % 4], UINT64_C(0x5eed0000) + i,
                  (i / 4) % 2 ? STOP_BETWEEN : MID_CHECKPOINT);
}

/* Case 4: KEYS keyed adds (every one a new key), checkpoints copying the growing table. */
static void test_many_keys(void **state)
{
    run_round(&keyed, 0x6b657973, MID_CHECKPOINT);
    run_round(&keyed, 0x6b657974, STOP_BETWEEN);
}

/* ---- Large cells ---------------------------------------------------------------------------- */

struct giant {
    txstats_t *t;
    struct clock clk;
    struct setup setup;
    int64_t ts; /* the large cell's millisecond */
    unsigned writes;
    unsigned move_at; /* the image write before which the clock moves past `ts` (case 3) */
    uint64_t rng;
    _Atomic bool stop;
    uint64_t appended;
};

/* `n` amounts at `ts`, in batches. */
static void fill(txstats_t *t, uint64_t *rng, int64_t ts, size_t n)
{
    static txstats_tx_t tx[10000];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < 10000 ? n - done : 10000, stored = 0;
        for (size_t i = 0; i < k; i++)
            tx[i] = (txstats_tx_t){amount(next(rng)), ts};
        assert_int_equal(txstats_add_batch(t, tx, k, NULL, &stored), TXSTATS_OK);
        assert_int_equal(stored, k);
        done += k;
    }
}

static void load_and_compare(struct giant *g, const char *path, const struct answers *live,
                             const char *what)
{
    struct clock c;
    atomic_init(&c.now, atomic_load(&g->clk.now));
    txstats_t *x = instance(&g->setup, &c);
    int rc = txstats_load(x, path);
    if (rc != TXSTATS_OK)
        fail_msg("txstats_load(%s): %s", path, txstats_strerror(rc));
    struct answers got;
    record(x, &got);
    compare(live, &got, what, false, true);
    free_answers(&got);
    txstats_destroy(x);
}

static void recover_giant(struct giant *g, const char *dir, const struct answers *live,
                          const char *what)
{
    struct clock c;
    atomic_init(&c.now, atomic_load(&g->clk.now));
    txstats_t *x = instance(&g->setup, &c);
    attach(x, dir);
    struct answers got;
    record(x, &got);
    compare(live, &got, what, true, true);
    free_answers(&got);
    txstats_destroy(x);
}

/* Between two holds: a batch into the large cell, and one into a newer millisecond. */
static void append_between_holds(void *ctx)
{
    struct giant *g = ctx;
    txstats_tx_t tx[64];
    g->writes++;
    for (int i = 0; i < 64; i++)
        tx[i] = (txstats_tx_t){amount(next(&g->rng)), i < 48 ? g->ts : g->ts + 1 + i % 5};
    size_t stored = 0;
    assert_int_equal(txstats_add_batch(g->t, tx, 64, NULL, &stored), TXSTATS_OK);
    g->appended += stored;
}

static void *append_main(void *arg)
{
    struct giant *g = arg;
    uint64_t rng = 0xadd;
    while (!atomic_load(&g->stop)) {
        txstats_amount_t a = amount(next(&rng));
        int rc = next(&rng) % 4 ? txstats_add(g->t, a, g->ts)
                                : txstats_add_keyed(g->t, a, g->ts + 1, &rng, sizeof(rng), NULL);
        if (rc != TXSTATS_OK)
            break;
    }
    return NULL;
}

/* Case 2: GIANT amounts at one millisecond (over three holds: written across holds with a
 * cursor), every amount retained, through a checkpoint, txstats_save_bin() and txstats_save();
 * then adds to that millisecond between the holds (the cursor follows the growing chain) and
 * from a thread while checkpoints run. */
static void test_giant_cell(void **state)
{
    struct giant *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    char root[64], live[96], copy[96], copy2[96], bin[96], json[96];
    make_root(root, sizeof(root));
    snprintf(live, sizeof(live), "%s/live", root);
    snprintf(copy, sizeof(copy), "%s/copy", root);
    snprintf(copy2, sizeof(copy2), "%s/copy2", root);
    snprintf(bin, sizeof(bin), "%s/snapshot.bin", root);
    snprintf(json, sizeof(json), "%s/snapshot.json", root);
    g->setup = (struct setup){60000, 2, 2 * GIANT};
    g->rng = 0x61a47;
    atomic_init(&g->clk.now, T0);
    g->ts = T0 - 100;
    g->t = instance(&g->setup, &g->clk);
    attach(g->t, live);
    fill(g->t, &g->rng, g->ts, GIANT);
    for (int64_t ts = T0 - 3000; ts <= T0; ts += 7) /* other cells around it */
        fill(g->t, &g->rng, ts, 1 + (size_t)(next(&g->rng) % 20));
    assert_int_equal(txstats_checkpoint(g->t), TXSTATS_OK);
    copy_dir(live, copy);
    assert_int_equal(txstats_save_bin(g->t, bin), TXSTATS_OK);
    assert_int_equal(txstats_save(g->t, json), TXSTATS_OK);
    struct answers a;
    record(g->t, &a);
    assert_true(a.info.retained == a.info.in_window && a.info.in_window > GIANT);
    recover_giant(g, copy, &a, "large cell: checkpoint");
    load_and_compare(g, bin, &a, "large cell: txstats_save_bin");
    load_and_compare(g, json, &a, "large cell: txstats_save");
    free_answers(&a);

    /* Appends between the holds, and from a thread. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, append_main, g), 0);
    on_image_write = append_between_holds;
    on_image_ctx = g;
    checkpointing = true;
    for (int i = 0; i < 3; i++)
        assert_int_equal(txstats_checkpoint(g->t), TXSTATS_OK);
    checkpointing = false;
    on_image_write = NULL;
    atomic_store(&g->stop, true);
    pthread_join(th, NULL);
    assert_true(g->writes >= 3 * 4 && g->appended > 0);
    copy_dir(live, copy2);
    record(g->t, &a);
    print_message("  large cell: %llu transactions, %u image writes with appends\n",
                  (unsigned long long)a.info.in_window, g->writes);
    recover_giant(g, copy2, &a, "large cell grown while checkpointed");
    free_answers(&a);
    txstats_destroy(g->t);
    remove_root(root);
    free(g);
}

/* Before image write `move_at`: the clock moves one past the large cell, so that it leaves the
 * window between two of its holds; the newest millisecond gets a few adds. */
static void expire_between_holds(void *ctx)
{
    struct giant *g = ctx;
    if (++g->writes != g->move_at)
        return;
    int64_t now = atomic_fetch_add(&g->clk.now, 1) + 1;
    fill(g->t, &g->rng, now, 10);
}

/* Case 3: a cell larger than a hold at the oldest millisecond of the window, and the clock moved
 * past it at each image write in turn (the first is the file's magic, before any hold), with
 * one and two shards: it leaves the window while written ('X' record) or before. */
static void test_cell_leaves_window(void **state)
{
    for (unsigned shards = 1; shards <= 2; shards++) {
        for (unsigned move_at = 1; move_at <= 6; move_at++) {
            struct giant *g = calloc(1, sizeof(*g));
            assert_non_null(g);
            char root[64], live[96], copy[96];
            make_root(root, sizeof(root));
            snprintf(live, sizeof(live), "%s/live", root);
            snprintf(copy, sizeof(copy), "%s/copy", root);
            g->setup = (struct setup){1000, shards, GIANT}; /* retention never binds */
            g->rng = 0x7e57 + move_at;
            atomic_init(&g->clk.now, T0);
            g->ts = T0 - 999; /* the oldest millisecond in the window */
            g->move_at = move_at;
            g->t = instance(&g->setup, &g->clk);
            attach(g->t, live);
            fill(g->t, &g->rng, g->ts, GIANT / 2); /* 1.6 MB: more than a hold */
            for (int64_t ts = g->ts + 1; ts <= T0; ts += 13)
                fill(g->t, &g->rng, ts, 1 + (size_t)(next(&g->rng) % 300));
            on_image_write = expire_between_holds;
            on_image_ctx = g;
            checkpointing = true;
            assert_int_equal(txstats_checkpoint(g->t), TXSTATS_OK);
            checkpointing = false;
            on_image_write = NULL;
            bool moved = g->writes >= move_at;
            assert_int_equal(atomic_load(&g->clk.now), T0 + moved);
            if (!moved) { /* the checkpoint wrote fewer blocks */
                txstats_destroy(g->t);
                remove_root(root);
                free(g);
                break;
            }
            copy_dir(live, copy);
            struct answers a;
            record(g->t, &a);
            char what[80];
            snprintf(what, sizeof(what), "%u shards, cell expired before image write %u", shards,
                     move_at);
            recover_giant(g, copy, &a, what);
            free_answers(&a);
            txstats_destroy(g->t);
            remove_root(root);
            free(g);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds),
        cmocka_unit_test(test_giant_cell),
        cmocka_unit_test(test_cell_leaves_window),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
