/* SPDX-License-Identifier: MIT */
/*
 * Per-key windows side by side (issue 20): libtxstats entities against the Redis per-key sorted
 * set that users build (one ZSET per key scored by timestamp, a member per transaction
 * "ts:seq:amount"; ingest ZADD + ZREMRANGEBYSCORE, pipelined; query a Lua script, by EVALSHA,
 * that trims and sums the key). Same transactions, same order, one run; bench/redis_keys.sh
 * starts and stops the redis-server.
 *
 *   redis_keys PORT [N_TX] [N_KEYS] [SLICES]
 *
 * N_TX (10,000,000) transactions spread over a 60 s window round-robin over N_KEYS (1,000,000)
 * keys "card-%011ld", plus one key of 100,000. Ingest goes in SLICES (10) slices, libtxstats and
 * Redis alternating (ABAB, then BABA): medians of the per-slice rates. libtxstats adds on one
 * thread in this process, on a simulated clock; Redis gets one connection, 1,000 transactions
 * (2,000 commands) per pipelined round trip.
 */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define KEY_LEN  16
#define WINDOW   60000
#define PIPELINE 1000
#define BIG_N    100000

static const int64_t now_ms = INT64_C(1700000000000);
static const char big_key[] = "card-big-0000000";
static size_t live;

static const char query_lua[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
    "local m = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')\n"
    "local s, mn, mx = 0, nil, nil\n"
    "for i = 1, #m do\n"
    "  local a = tonumber(string.match(m[i], '[^:]+$'))\n"
    "  s = s + a\n"
    "  if mn == nil or a < mn then mn = a end\n"
    "  if mx == nil or a > mx then mx = a end\n"
    "end\n"
    "return {#m, tostring(s), tostring(mn), tostring(mx)}\n";

static int64_t sim_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static void *count_alloc(size_t n, void *ud)
{
    (void)ud;
    void *p = malloc(n);
    if (p)
        live += malloc_usable_size(p);
    return p;
}

static void count_free(void *p, void *ud)
{
    (void)ud;
    if (p)
        live -= malloc_usable_size(p);
    free(p);
}

static void die(const char *what)
{
    fprintf(stderr, "redis_keys: %s\n", what);
    exit(1);
}

/* The i-th of n transactions: its key, timestamp, amount in cents. */
struct tx {
    char key[KEY_LEN + 1];
    int64_t ts;
    long cents;
};

/* "card-%011ld" in KEY_LEN bytes and a NUL. */
static void key_of(char *out, long i)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "card-%011ld", i);
    memcpy(out, tmp, KEY_LEN);
    out[KEY_LEN] = 0;
}

/* n_keys 0: the key of 100,000. */
static struct tx tx_of(long i, long n, long n_keys)
{
    struct tx t;
    if (n_keys)
        key_of(t.key, i % n_keys);
    else
        memcpy(t.key, big_key, sizeof(t.key));
    t.ts = now_ms - (WINDOW - 1) + (int64_t)((i * (long)WINDOW) / n);
    t.cents = 100 + (i * 7919) % 10000;
    return t;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR)
        die(r ? r->str : c->errstr);
    return r;
}

/* One transaction for Redis: ZADD and the trim, appended to the pipeline. */
static void redis_append(redisContext *c, const struct tx *t, long seq)
{
    char member[64], score[24], cut[24];
    snprintf(member, sizeof(member), "%" PRId64 ":%ld:%ld.%02ld", t->ts, seq, t->cents / 100,
             t->cents % 100);
    snprintf(score, sizeof(score), "%" PRId64, t->ts);
    snprintf(cut, sizeof(cut), "%" PRId64, t->ts - WINDOW);
    redisAppendCommand(c, "ZADD %s %s %s", t->key, score, member);
    redisAppendCommand(c, "ZREMRANGEBYSCORE %s -inf %s", t->key, cut);
}

static void redis_drain(redisContext *c, long commands)
{
    for (long k = 0; k < commands; k++) {
        void *reply;
        if (redisGetReply(c, &reply) != REDIS_OK)
            die(c->errstr);
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
            die(((redisReply *)reply)->str);
        freeReplyObject(reply);
    }
}

/* Transactions [from, to) of n into Redis; seconds. */
static double redis_ingest(redisContext *c, long from, long to, long n, long n_keys)
{
    double t0 = now_ns();
    long pending = 0;
    for (long i = from; i < to; i++) {
        struct tx t = tx_of(i, n, n_keys);
        redis_append(c, &t, i);
        if (++pending == PIPELINE) {
            redis_drain(c, 2 * pending);
            pending = 0;
        }
    }
    redis_drain(c, 2 * pending);
    return (now_ns() - t0) / 1e9;
}

/* The same transactions into libtxstats; seconds. */
static double lib_ingest(txstats_t *t, long from, long to, long n, long n_keys)
{
    double t0 = now_ns();
    for (long i = from; i < to; i++) {
        struct tx x = tx_of(i, n, n_keys);
        if (txstats_add_entity(t, x.key, KEY_LEN, x.cents * 10000, x.ts) != TXSTATS_OK)
            die("txstats_add_entity");
    }
    return (now_ns() - t0) / 1e9;
}

static long used_memory(redisContext *c, const char *field)
{
    redisReply *r = cmd(c, "INFO memory");
    const char *p = strstr(r->str, field);
    long v = p ? atol(p + strlen(field)) : -1;
    freeReplyObject(r);
    return v;
}

static txstats_t *make(void)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    cfg.clock_ms = sim_clock;
    cfg.max_entities = 2000000;
    cfg.alloc = count_alloc;
    cfg.free = count_free;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        die("txstats_create");
    return t;
}

/* Ingest in slices, alternating; prints the medians of the per-slice rates. */
static void ingest(redisContext *c, txstats_t *t, long n, long n_keys, int slices)
{
    double lib_rate[64], redis_rate[64], ratio[64];
    for (int s = 0; s < slices; s++) {
        long from = n * s / slices, to = n * (s + 1) / slices;
        double tl, tr;
        if (s % 2) {
            tr = redis_ingest(c, from, to, n, n_keys);
            tl = lib_ingest(t, from, to, n, n_keys);
        } else {
            tl = lib_ingest(t, from, to, n, n_keys);
            tr = redis_ingest(c, from, to, n, n_keys);
        }
        lib_rate[s] = (double)(to - from) / tl;
        redis_rate[s] = (double)(to - from) / tr;
        ratio[s] = lib_rate[s] / redis_rate[s];
        printf("  slice %2d: libtxstats %10.0f tx/s, Redis %9.0f tx/s\n", s + 1, lib_rate[s],
               redis_rate[s]);
        fflush(stdout);
    }
    printf("ingest, median of %d slices: libtxstats (library, 1 thread) %.0f tx/s; Redis "
           "(1 connection, pipelined by %d) %.0f tx/s; ratio %.1f\n",
           slices, median(lib_rate, slices), PIPELINE, median(redis_rate, slices),
           median(ratio, slices));
    /* the key of 100,000, outside the timed slices */
    redis_ingest(c, 0, BIG_N, BIG_N, 0);
    lib_ingest(t, 0, BIG_N, BIG_N, 0);
}

static void lat_line(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    printf("  %-50s median %12.1f us   p99 %12.1f us   (%d calls)\n", what, v[n / 2] / 1e3,
           v[(int)((double)n * 0.99)] / 1e3, n);
}

/* One EVALSHA of the query script; checks the count. */
static double redis_query(redisContext *c, const char *sha, const char *key, long count,
                          double *sum)
{
    char cut[24];
    snprintf(cut, sizeof(cut), "%" PRId64, now_ms - WINDOW);
    double t0 = now_ns();
    redisReply *r = cmd(c, "EVALSHA %s 1 %s %s", sha, key, cut);
    double ns = now_ns() - t0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->integer != count)
        die("unexpected query reply");
    *sum = atof(r->element[1]->str);
    freeReplyObject(r);
    return ns;
}

static double lib_query(txstats_t *t, const char *key, long count, txstats_summary_t *s)
{
    double t0 = now_ns();
    txstats_entity_stats(t, key, strlen(key), s);
    double ns = now_ns() - t0;
    if ((long)s->count != count)
        die("unexpected entity count");
    return ns;
}

static void print_sums(const txstats_summary_t *s, double redis_sum)
{
    txstats_summary_text_t text;
    txstats_summary_text(s, &text);
    printf("  sum of the key of %d: libtxstats %s (exact), Redis Lua %.6f (double)\n", BIG_N,
           text.sum, redis_sum);
}

static char *load_script(redisContext *c)
{
    redisReply *r = cmd(c, "SCRIPT LOAD %s", query_lua);
    char *sha = strdup(r->str);
    freeReplyObject(r);
    return sha;
}

/* Per-key query latency, alternating Redis and libtxstats call by call; and PING. */
static void queries(redisContext *c, txstats_t *t, long per_key, long n_keys)
{
    enum { SMALL = 5000, BIG = 41 };
    static double rs[SMALL], ls[SMALL], ping[SMALL], rb[BIG], lb[BIG];
    char *sha = load_script(c), key[KEY_LEN + 1];
    txstats_summary_t s;
    double sum;
    uint64_t x = 88172645463325252u;
    for (int k = 0; k < SMALL; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        key_of(key, (long)(x % (uint64_t)n_keys));
        rs[k] = redis_query(c, sha, key, per_key, &sum);
        ls[k] = lib_query(t, key, per_key, &s);
        double t0 = now_ns();
        freeReplyObject(cmd(c, "PING"));
        ping[k] = now_ns() - t0;
    }
    for (int k = 0; k < BIG; k++) {
        rb[k] = redis_query(c, sha, big_key, BIG_N, &sum);
        lb[k] = lib_query(t, big_key, BIG_N, &s);
    }
    printf("per-key query latency (calls alternated; Redis: EVALSHA round trip on loopback):\n");
    lat_line("Redis, a random key of 10", rs, SMALL);
    lat_line("libtxstats library, a random key of 10", ls, SMALL);
    lat_line("Redis, the key of 100,000", rb, BIG);
    lat_line("libtxstats library, the key of 100,000", lb, BIG);
    lat_line("Redis PING round trip (the network floor)", ping, SMALL);
    print_sums(&s, sum);
    free(sha);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void memory(redisContext *c, long used0, long rss0, size_t empty, long lib_rss0, long n,
                   long n_keys)
{
    double redis = (double)(used_memory(c, "used_memory:") - used0);
    double redis_rss = (double)(used_memory(c, "used_memory_rss:") - rss0);
    double lib = (double)(live - empty), lib_rss = (double)(rss_kib() - lib_rss0) * 1024;
    double tx = (double)(n + BIG_N);
    printf("memory for %ld transactions over %ld keys + 1 key of %d:\n", n, n_keys, BIG_N);
    printf("  Redis used_memory      +%8.1f MiB (%6.1f B per transaction); used_memory_rss "
           "+%8.1f MiB\n",
           redis / 1048576, redis / tx, redis_rss / 1048576);
    printf("  libtxstats allocator   +%8.1f MiB (%6.1f B per transaction); process RSS "
           "+%8.1f MiB\n",
           lib / 1048576, lib / tx, lib_rss / 1048576);
    printf("  Redis / libtxstats: %.2f (allocator), %.2f (RSS)\n", redis / lib,
           redis_rss / lib_rss);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: redis_keys PORT [N_TX] [N_KEYS] [SLICES]");
    long n = argc > 2 ? atol(argv[2]) : 10000000, n_keys = argc > 3 ? atol(argv[3]) : 1000000;
    int slices = argc > 4 ? atoi(argv[4]) : 10;
    if (n <= 0 || n_keys <= 0 || n % n_keys || slices < 1 || slices > 64)
        die("N_TX must be a multiple of N_KEYS; 1 <= SLICES <= 64");
    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err)
        die(c ? c->errstr : "connect");
    freeReplyObject(cmd(c, "FLUSHALL"));
    long used0 = used_memory(c, "used_memory:"), rss0 = used_memory(c, "used_memory_rss:");
    long lib_rss0 = rss_kib();
    txstats_t *t = make();
    size_t empty = live;
    printf("libtxstats %s vs Redis: %ld transactions over 60 s, %ld keys of %d bytes, + 1 key of "
           "%d\n",
           txstats_version(), n, n_keys, KEY_LEN, BIG_N);
    ingest(c, t, n, n_keys, slices);
    memory(c, used0, rss0, empty, lib_rss0, n, n_keys);
    queries(c, t, n / n_keys, n_keys);
    txstats_destroy(t);
    redisFree(c);
    return 0;
}
