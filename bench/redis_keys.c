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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Transactions [from, to) of n into Redis through hiredis, PIPELINE at a time; seconds. */
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

/* Transactions [from, to) of n, formatted (outside any timing). */
static struct tx *slice_tx(long from, long to, long n, long n_keys)
{
    struct tx *x = malloc((size_t)(to - from) * sizeof(*x));
    if (!x)
        die("out of memory");
    for (long i = from; i < to; i++)
        x[i - from] = tx_of(i, n, n_keys);
    return x;
}

/* The same transactions into libtxstats; seconds. */
static double lib_ingest(txstats_t *t, const struct tx *x, long m)
{
    double t0 = now_ns();
    for (long i = 0; i < m; i++)
        if (txstats_add_entity(t, x[i].key, KEY_LEN, x[i].cents * 10000, x[i].ts) != TXSTATS_OK)
            die("txstats_add_entity");
    return (now_ns() - t0) / 1e9;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            die("out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* One command in RESP, as a client library would send it. */
static void resp(struct buf *b, int argc, const char *const *argv)
{
    char head[32];
    put(b, head, (size_t)snprintf(head, sizeof(head), "*%d\r\n", argc));
    for (int k = 0; k < argc; k++) {
        size_t n = strlen(argv[k]);
        put(b, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", n));
        put(b, argv[k], n);
        put(b, "\r\n", 2);
    }
}

/* ZADD and the trim of each transaction, seq from seq0. */
static struct buf resp_slice(const struct tx *x, long m, long seq0)
{
    struct buf b = {NULL, 0, 0};
    for (long i = 0; i < m; i++) {
        char member[64], score[24], cut[24];
        snprintf(member, sizeof(member), "%" PRId64 ":%ld:%ld.%02ld", x[i].ts, seq0 + i,
                 x[i].cents / 100, x[i].cents % 100);
        snprintf(score, sizeof(score), "%" PRId64, x[i].ts);
        snprintf(cut, sizeof(cut), "%" PRId64, x[i].ts - WINDOW);
        const char *zadd[] = {"ZADD", x[i].key, score, member};
        const char *trim[] = {"ZREMRANGEBYSCORE", x[i].key, "-inf", cut};
        resp(&b, 4, zadd);
        resp(&b, 4, trim);
    }
    return b;
}

struct sender {
    int fd;
    const struct buf *b;
};

static void *send_all(void *arg)
{
    const struct sender *s = arg;
    for (size_t off = 0; off < s->b->len;) {
        ssize_t w = write(s->fd, s->b->p + off, s->b->len - off);
        if (w <= 0)
            die("write to redis");
        off += (size_t)w;
    }
    return NULL;
}

/* Streams the commands from one thread while this one counts the replies (integers, one line
 * each), as redis-cli --pipe does; seconds from the first byte sent to the last reply. */
static double redis_stream(int fd, const struct buf *b, long replies)
{
    static char in[65536];
    struct sender s = {fd, b};
    pthread_t th;
    int line_start = 1;
    double t0 = now_ns();
    pthread_create(&th, NULL, send_all, &s);
    while (replies > 0) {
        ssize_t r = read(fd, in, sizeof(in));
        if (r <= 0)
            die("read from redis");
        for (ssize_t k = 0; k < r; k++) {
            if (line_start && in[k] != ':')
                die("a reply that is not an integer");
            line_start = in[k] == '\n';
            replies -= line_start;
        }
    }
    double sec = (now_ns() - t0) / 1e9;
    pthread_join(th, NULL);
    return sec;
}

static int raw_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static long used_memory(redisContext *c, const char *field)
{
    redisReply *r = cmd(c, "INFO memory");
    const char *p = strstr(r->str, field);
    long v = p ? atol(p + strlen(field)) : -1;
    freeReplyObject(r);
    return v;
}

/* Seconds of CPU the redis-server process has used (INFO cpu: user + system, main thread and
 * others). */
static double redis_cpu(redisContext *c)
{
    redisReply *r = cmd(c, "INFO cpu");
    const char *u = strstr(r->str, "used_cpu_user:"), *y = strstr(r->str, "used_cpu_sys:");
    double v = (u ? atof(u + 14) : 0) + (y ? atof(y + 13) : 0);
    freeReplyObject(r);
    return v;
}

struct side {
    redisContext *c; /* queries, INFO */
    int fd;          /* the ingest stream */
    txstats_t *t;
    double wall, cpu; /* Redis: seconds of ingest, of its CPU during them */
};

/* Transactions [from, to) of n into both, in the given order; their seconds in *tl, *tr. */
static void slice(struct side *g, long from, long to, long n, long n_keys, int redis_first,
                  double *tl, double *tr)
{
    struct tx *x = slice_tx(from, to, n, n_keys);
    struct buf b = resp_slice(x, to - from, from);
    for (int k = 0; k < 2; k++) {
        if ((k == 0) == (redis_first != 0)) {
            double cpu0 = redis_cpu(g->c);
            *tr = redis_stream(g->fd, &b, 2 * (to - from));
            g->wall += *tr;
            g->cpu += redis_cpu(g->c) - cpu0;
        } else {
            *tl = lib_ingest(g->t, x, to - from);
        }
    }
    free(x);
    free(b.p);
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
static void ingest(struct side *g, long n, long n_keys, int slices)
{
    double lib_rate[64], redis_rate[64], ratio[64], tl, tr;
    for (int s = 0; s < slices; s++) {
        long from = n * s / slices, to = n * (s + 1) / slices;
        slice(g, from, to, n, n_keys, s % 2, &tl, &tr);
        lib_rate[s] = (double)(to - from) / tl;
        redis_rate[s] = (double)(to - from) / tr;
        ratio[s] = lib_rate[s] / redis_rate[s];
        printf("  slice %2d: libtxstats %10.0f tx/s, Redis %9.0f tx/s\n", s + 1, lib_rate[s],
               redis_rate[s]);
        fflush(stdout);
    }
    printf("ingest, median of %d slices: libtxstats (library, 1 thread, txstats_add_entity) %.0f "
           "tx/s; Redis (1 connection, commands streamed as redis-cli --pipe does) %.0f tx/s; "
           "ratio %.1f\n",
           slices, median(lib_rate, slices), median(redis_rate, slices), median(ratio, slices));
    printf("  redis-server's CPU during its slices: %.0f%% of one core (INFO cpu)\n",
           100 * g->cpu / g->wall);
    slice(g, 0, BIG_N, BIG_N, 0, 0, &tl, &tr); /* the key of 100,000, untimed */
}

/* A client that formats and pipelines itself (hiredis, PIPELINE transactions a round trip):
 * the first slice again, into database 1, then emptied. */
static void hiredis_ingest(redisContext *c, long n, long n_keys, int slices)
{
    freeReplyObject(cmd(c, "SELECT 1"));
    double cpu0 = redis_cpu(c), sec = redis_ingest(c, 0, n / slices, n, n_keys);
    double cpu = redis_cpu(c) - cpu0;
    freeReplyObject(cmd(c, "FLUSHDB"));
    freeReplyObject(cmd(c, "SELECT 0"));
    printf("  the first slice again through hiredis, %d transactions a round trip (formatting "
           "included): %.0f tx/s, redis-server's CPU %.0f%% of one core\n",
           PIPELINE, (double)(n / slices) / sec, 100 * cpu / sec);
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
    struct side g = {c, raw_connect(atoi(argv[1])), t, 0, 0};
    ingest(&g, n, n_keys, slices);
    memory(c, used0, rss0, empty, lib_rss0, n, n_keys);
    hiredis_ingest(c, n, n_keys, slices);
    queries(c, t, n / n_keys, n_keys);
    txstats_destroy(t);
    close(g.fd);
    redisFree(c);
    return 0;
}
