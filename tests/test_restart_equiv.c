/* SPDX-License-Identifier: MIT */
/*
 * Restart equivalence (issue 28): a window filled far beyond --max-retained, every answer about
 * it recorded, the server restarted, and every answer asked again. /statistics, the histogram,
 * the window lines of /metrics and the listing must be byte for byte what they were; so must the
 * quantiles, since a checkpoint is to carry the buckets the live window has.
 *
 * Standalone (`test_restart_equiv SERVER`): after SIGTERM; after kill -9 with a checkpoint on
 * disk and later posts only in the journal; and kill -9 landing in the middle of a checkpoint's
 * write (inotify on the data directory sees `checkpoint.bin.tmp.PID.N` created), many times.
 * Cluster (`test_restart_equiv SERVER KAFKA_MOCK kafka`): one node on the mock Kafka cluster
 * (3 partitions), restarted from its per-partition checkpoints after SIGTERM and after kill -9.
 *
 * Real clock: the window (300 s) outlasts the test and every timestamp is from the last 40 s, so
 * nothing expires between a recording and the comparison. Mismatches are all printed, then the
 * case fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "kafka_harness.h"

#define WINDOW "300000"
#ifndef RETAINED /* -DRETAINED='"1000000"' (every amount retained): the test passes on main */
#define RETAINED "2000"
#endif
#define QUANTILES   "0,0.01,0.1,0.25,0.5,0.75,0.9,0.99,1"
#define FILL        30000  /* transactions of the SIGTERM, kill -9 and cluster cases */
#define EXTRA       3000   /* posted after the checkpoint, before kill -9 */
#define BIG_FILL    200000 /* the window of the mid-checkpoint case */
#define CYCLES      15
#define CYCLE_POSTS 1000
#define SAVE_MS     1000 /* --save-interval-ms of the standalone cases */
#define KAFKA_CKPT  "300"
#define BATCH       10000

static const char *mock_bin;

/* cmocka's print_message cuts long lines (a histogram): plain stdout, flushed. */
#define say(...) (printf(__VA_ARGS__), fflush(stdout))
/* compare()'s details: off for the later cycles of the mid-checkpoint case. */
static int quiet;
#define detail(...) (quiet ? 0 : say(__VA_ARGS__))

/* ---- amounts: a wide, skewed mix, deterministic ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double unit(void)
{
    return (double)((next_u64() >> 11) + 1) / 9007199254740993.0; /* (0, 1) */
}

/* In cents: half uniform in 0.01..100,000.00, a third log-normal (median about 20, up to about
 * 10^7), the rest refunds in -5,000.00..-0.01. */
static int64_t amount_cents(void)
{
    uint64_t kind = next_u64() % 6;
    if (kind < 3)
        return 1 + (int64_t)(next_u64() % 10000000);
    if (kind < 5) {
        double n = sqrt(-2 * log(unit())) * cos(2 * M_PI * unit());
        double c = exp(7.6 + 2.2 * n);
        return c < 1 ? 1 : c > 1e9 ? 1000000000 : (int64_t)c;
    }
    return -1 - (int64_t)(next_u64() % 500000);
}

/* ---- requests ---- */

static struct resp get(const struct server *s, const char *path)
{
    struct resp r;
    if (http(s->port, "GET", path, NULL, &r) != 0 || r.status != 200)
        fail_msg("GET %s: status %d, body %s", path, r.status, r.body ? r.body : "");
    return r;
}

/* What the test knows it had acknowledged: count and sum in cents. */
struct acked {
    long long count, cents;
};

/* `n` transactions in batches, timestamps in the last `spread_ms` (at most `cells` distinct
 * milliseconds, so that many share one); every line must be stored. */
static void post_batches(const struct server *s, int n, int64_t spread_ms, int cells,
                         struct acked *a)
{
    size_t cap = (size_t)BATCH * 96;
    char *body = malloc(cap);
    int64_t now = now_ms();
    for (int done = 0; done < n;) {
        int k = n - done < BATCH ? n - done : BATCH;
        size_t len = 0;
        for (int i = 0; i < k; i++) {
            int64_t c = amount_cents(), ac = c < 0 ? -c : c;
            int64_t ts = now - 1 - (int64_t)(next_u64() % (uint64_t)cells) * (spread_ms / cells);
            len += (size_t)snprintf(
                body + len, cap - len, "{\"amount\":\"%s%lld.%02lld\",\"timestamp\":%lld}\n",
                c < 0 ? "-" : "", (long long)(ac / 100), (long long)(ac % 100), (long long)ts);
            a->count++;
            a->cents += c;
        }
        struct resp r;
        if (http(s->port, "POST", "/transactions/batch", body, &r) != 0 || r.status != 200)
            fail_msg("POST /transactions/batch: status %d, %s", r.status, r.body ? r.body : "");
        char want[64];
        snprintf(want, sizeof(want), "{\"stored\":%d,", k);
        if (strncmp(r.body, want, strlen(want)) != 0)
            fail_msg("POST /transactions/batch of %d: %s", k, r.body);
        resp_free(&r);
        done += k;
    }
    free(body);
}

/* The /statistics "sum" the acknowledged transactions make. */
static void acked_sum(const struct acked *a, char *out, size_t n)
{
    long long c = a->cents < 0 ? -a->cents : a->cents;
    snprintf(out, n, "%s%lld.%02lld", a->cents < 0 ? "-" : "", c / 100, c % 100);
}

/* ---- answers ---- */

struct answers {
    char *stats, *dist, *metrics, *list;
};

static void answers_free(struct answers *a)
{
    free(a->stats);
    free(a->dist);
    free(a->metrics);
    free(a->list);
    memset(a, 0, sizeof(*a));
}

/* The lines of /metrics about the window (count, sum, avg, min, max, quantiles). */
static char *window_metrics(const char *body)
{
    size_t n = strlen(body), o = 0;
    char *out = malloc(n + 1);
    for (const char *p = body; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        if (!strncmp(p, "txstats_window_", 15)) {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = '\0';
    return out;
}

static void record(const struct server *s, struct answers *a, int with_list)
{
    struct resp r = get(s, "/statistics");
    a->stats = strdup(r.body);
    resp_free(&r);
    r = get(s, "/statistics/distribution?q=" QUANTILES);
    a->dist = strdup(r.body);
    resp_free(&r);
    r = get(s, "/metrics");
    a->metrics = window_metrics(r.body);
    resp_free(&r);
    a->list = NULL;
    if (with_list) {
        r = get(s, "/transactions");
        a->list = strdup(r.body);
        resp_free(&r);
    }
}

/* The text of `key`'s value in `json` (a quoted string or a number), or "?". */
static void value_of(const char *json, const char *key, char *out, size_t n)
{
    const char *p = strstr(json, key);
    if (!p) {
        snprintf(out, n, "?");
        return;
    }
    p += strlen(key);
    if (*p == '"')
        p++;
    size_t len = strcspn(p, "\",}");
    snprintf(out, n, "%.*s", (int)len, p);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The listing's entries ({...} objects), sorted; *n of them. */
static char **entries(const char *list, size_t *n)
{
    size_t cap = 1024;
    char **v = malloc(cap * sizeof(*v));
    *n = 0;
    for (const char *p = strstr(list, "{\"amount\""); p; p = strstr(p + 1, "{\"amount\"")) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        v[(*n)++] = strndup(p, (size_t)(e - p + 1));
    }
    qsort(v, *n, sizeof(*v), cmp_str);
    return v;
}

/* Entries in one listing and not the other (as multisets). */
static void list_diff(const char *b, const char *a, long *only_b, long *only_a)
{
    size_t nb, na, i = 0, k = 0;
    char **vb = entries(b, &nb), **va = entries(a, &na);
    while (i < nb || k < na) {
        int c = i == nb ? 1 : k == na ? -1 : strcmp(vb[i], va[k]);
        if (c < 0)
            ++*only_b, i++;
        else if (c > 0)
            ++*only_a, k++;
        else
            i++, k++;
    }
    for (i = 0; i < nb; i++)
        free(vb[i]);
    for (k = 0; k < na; k++)
        free(va[k]);
    free(vb);
    free(va);
}

struct mismatches {
    int stats, quantiles, histogram, metrics, list;
};

/* Every difference printed; the counts by kind returned in *m. */
static void compare(const char *when, const struct answers *b, const struct answers *a,
                    struct mismatches *m)
{
    memset(m, 0, sizeof(*m));
    if (strcmp(b->stats, a->stats) != 0) {
        m->stats++;
        detail("%s: /statistics\n  before %s\n  after  %s\n", when, b->stats, a->stats);
    }
    char qs[] = QUANTILES;
    for (char *q = strtok(qs, ","); q; q = strtok(NULL, ",")) {
        char key[32], vb[64], va[64];
        snprintf(key, sizeof(key), "\"%s\":", q);
        value_of(strstr(b->dist, "\"quantiles\""), key, vb, sizeof(vb));
        value_of(strstr(a->dist, "\"quantiles\""), key, va, sizeof(va));
        if (strcmp(vb, va) != 0) {
            m->quantiles++;
            double x = atof(vb), y = atof(va);
            detail("%s: quantile %-4s before %14s after %14s (%+.3f %%)\n", when, q, vb, va,
                   x != 0 ? (y - x) / fabs(x) * 100 : 0.0);
        }
    }
    const char *hb = strstr(b->dist, "\"histogram\""), *ha = strstr(a->dist, "\"histogram\"");
    char cb[32], ca[32];
    value_of(b->dist, "\"count\":", cb, sizeof(cb));
    value_of(a->dist, "\"count\":", ca, sizeof(ca));
    if (!hb || !ha || strcmp(hb, ha) != 0 || strcmp(cb, ca) != 0) {
        m->histogram++;
        detail("%s: distribution count %s -> %s, histogram\n  before %s\n  after  %s\n", when, cb,
               ca, hb ? hb : "?", ha ? ha : "?");
    }
    if (strcmp(b->metrics, a->metrics) != 0) {
        char *lb = strdup(b->metrics), *la = strdup(a->metrics), *sb, *sa;
        char *x = strtok_r(lb, "\n", &sb), *y = strtok_r(la, "\n", &sa);
        for (; x || y; x = strtok_r(NULL, "\n", &sb), y = strtok_r(NULL, "\n", &sa)) {
            if (x && y && !strcmp(x, y))
                continue;
            m->metrics++;
            detail("%s: /metrics\n  before %s\n  after  %s\n", when, x ? x : "-", y ? y : "-");
        }
        free(lb);
        free(la);
    }
    if (b->list && a->list && strcmp(b->list, a->list) != 0) {
        m->list++;
        size_t i = 0;
        while (b->list[i] && b->list[i] == a->list[i])
            i++;
        size_t from = i > 80 ? i - 80 : 0;
        long only_b = 0, only_a = 0;
        list_diff(b->list, a->list, &only_b, &only_a);
        detail("%s: GET /transactions: %ld entries listed before and not after, %ld after and "
               "not before\n",
               when, only_b, only_a);
        detail("%s: GET /transactions differs at byte %zu of %zu / %zu\n  before ...%.160s\n"
               "  after  ...%.160s\n",
               when, i, strlen(b->list), strlen(a->list), b->list + from, a->list + from);
    }
}

static void report(const char *when, const struct mismatches *m)
{
    say("%s: mismatches: statistics %d, quantiles %d, histogram %d, /metrics lines %d, "
        "listing %d\n",
        when, m->stats, m->quantiles, m->histogram, m->metrics, m->list);
}

static int total(const struct mismatches *m)
{
    return m->stats + m->quantiles + m->histogram + m->metrics + m->list;
}

/* Every answer before against after, reported and freed: the number of mismatches. */
static int settle(const char *when, struct answers *before, struct answers *after)
{
    struct mismatches m;
    compare(when, before, after, &m);
    report(when, &m);
    answers_free(before);
    answers_free(after);
    return total(&m);
}

/* The value of a /metrics line (labels included in `name`), or -1. */
static double metric(const struct server *s, const char *name)
{
    return node_metric(s, name);
}

/* Wait until `counter` has moved past `from` and then stayed still for `still_ms`: the last
 * checkpoint holds everything posted before `from` was read. */
static double wait_checkpointed(const struct server *s, const char *counter, double from,
                                int still_ms)
{
    double v = metric(s, counter), last = v;
    int64_t since = now_ms(), until = now_ms() + 60000;
    while (now_ms() < until) {
        sleep_ms(50);
        v = metric(s, counter);
        if (v != last) {
            last = v;
            since = now_ms();
        } else if (v > from && now_ms() - since >= still_ms) {
            return v;
        }
    }
    fail_msg("%s stayed at %.0f (from %.0f): no checkpoint written", counter, v, from);
    return v;
}

/* ---- standalone ---- */

#define SNAPSHOTS "txstats_snapshots_total{result=\"ok\"}"

static void start_standalone(struct server *s, const char *save_ms)
{
    const char *args[] = {"--window-ms", WINDOW, "--max-retained", RETAINED, "--save-interval-ms",
                          save_ms,       NULL};
    assert_int_equal(server_start(s, args), 0);
}

static void assert_acked(const char *when, const struct server *s, const struct acked *a)
{
    struct resp r = get(s, "/statistics");
    char count[32], sum[64], want[64];
    value_of(r.body, "\"count\":", count, sizeof(count));
    value_of(r.body, "\"sum\":", sum, sizeof(sum));
    acked_sum(a, want, sizeof(want));
    if (atoll(count) != a->count || strcmp(sum, want) != 0)
        fail_msg("%s: count %s sum %s, acknowledged %lld, %s", when, count, sum, a->count, want);
    resp_free(&r);
}

static void test_sigterm(void **state)
{
    struct server *s = *state;
    struct acked a = {0, 0};
    char save[16];
    snprintf(save, sizeof(save), "%d", SAVE_MS);
    start_standalone(s, save);
    double c0 = metric(s, SNAPSHOTS);
    post_batches(s, FILL, 20000, 4000, &a);
    wait_checkpointed(s, SNAPSHOTS, c0, 2 * SAVE_MS + 500);
    assert_acked("before", s, &a);
    struct answers before, after;
    record(s, &before, 1);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    start_standalone(s, save);
    assert_acked("after SIGTERM", s, &a);
    record(s, &after, 1);
    assert_int_equal(settle("SIGTERM", &before, &after), 0);
}

static void test_sigkill_journal(void **state)
{
    struct server *s = *state;
    struct acked a = {0, 0};
    char save[16];
    snprintf(save, sizeof(save), "%d", SAVE_MS);
    start_standalone(s, save);
    double c0 = metric(s, SNAPSHOTS);
    post_batches(s, FILL, 20000, 4000, &a);
    double c1 = wait_checkpointed(s, SNAPSHOTS, c0, 2 * SAVE_MS + 500);
    post_batches(s, EXTRA, 20000, 4000, &a); /* in the journal only, unless a checkpoint ran */
    struct answers before, after;
    record(s, &before, 1);
    double c2 = metric(s, SNAPSHOTS);
    assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
    say("kill -9: %lld acknowledged; checkpoints %.0f after the fill, %.0f at the kill "
        "(%s)\n",
        a.count, c1, c2,
        c2 == c1 ? "the last posts only in the journal" : "a checkpoint ran since");
    start_standalone(s, save);
    assert_acked("after kill -9", s, &a);
    record(s, &after, 1);
    assert_int_equal(settle("kill -9", &before, &after), 0);
}

/* The name of a checkpoint being written by process `pid` (fileio.c: NAME.tmp.PID.N). */
static int is_tmp(const char *name, pid_t pid)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "checkpoint.bin.tmp.%d.", (int)pid);
    return !strncmp(name, prefix, strlen(prefix));
}

static int tmp_exists(const char *dir, pid_t pid, long long *size)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (is_tmp(e->d_name, pid)) {
            char path[512];
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            *size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
            found = 1;
        }
    if (d)
        closedir(d);
    return found;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wait for an inotify event on a checkpoint temporary file of `pid`: IN_CREATE (1) or
 * IN_MOVED_FROM (2, the write done); 0 after `ms` without one. */
static int wait_tmp_event(int fd, pid_t pid, int ms, int64_t *at_us)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int64_t until = now_ms() + ms;
    for (;;) {
        int64_t left = until - now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left < 0 ? 0 : (int)left) <= 0)
            return 0;
        ssize_t n = read(fd, buf, sizeof(buf));
        *at_us = mono_us();
        for (char *q = buf; n > 0 && q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)(void *)q;
            q += sizeof(*e) + e->len;
            if (e->len && is_tmp(e->name, pid))
                return e->mask & IN_CREATE ? 1 : 2;
        }
    }
}

static void drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, 0) > 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
}

static int watch(const struct server *s)
{
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    assert_true(fd >= 0);
    assert_true(inotify_add_watch(fd, s->data_dir, IN_CREATE | IN_MOVED_FROM) >= 0);
    return fd;
}

/* Post a batch and record the answers such that a checkpoint begins after the recording (one
 * that ran meanwhile already holds everything: post again). 1 and *t_create once one began. */
static int post_record_until_checkpoint(struct server *s, int fd, struct acked *a,
                                        struct answers *before, int64_t *t_create)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        drain(fd);
        answers_free(before);
        post_batches(s, CYCLE_POSTS, 20000, 4000, a);
        record(s, before, 0);
        int64_t ignored;
        if (wait_tmp_event(fd, s->pid, 0, &ignored) != 0)
            continue; /* began during the recording */
        if (wait_tmp_event(fd, s->pid, 2 * SAVE_MS + 3000, t_create) == 1)
            return 1;
    }
    return 0;
}

static void test_kill_mid_checkpoint(void **state)
{
    struct server *s = *state;
    struct acked a = {0, 0};
    char save[16];
    snprintf(save, sizeof(save), "%d", SAVE_MS);
    start_standalone(s, save);
    double c0 = metric(s, SNAPSHOTS);
    post_batches(s, BIG_FILL, 40000, 40000, &a);
    wait_checkpointed(s, SNAPSHOTS, c0, SAVE_MS + 500);
    /* How long one checkpoint's write takes (temporary file created to renamed, watched in a
     * tight loop): the kills are spread over it. */
    int64_t write_us = 0, t0 = 0;
    struct answers before = {0}, after = {0};
    int fd = watch(s);
    long long size = -1;
    if (post_record_until_checkpoint(s, fd, &a, &before, &t0)) {
        while (tmp_exists(s->data_dir, s->pid, &size) && mono_us() - t0 < 10000000)
            ;
        write_us = mono_us() - t0;
    }
    close(fd);
    answers_free(&before);
    say("a checkpoint of %lld transactions: its temporary file lives about %lld us\n", a.count,
        (long long)write_us);
    if (write_us < 1000)
        write_us = 1000;
    unsigned seed = (unsigned)now_ms();
    int mid = 0, after_write = 0, missed = 0, stats_bad = 0, moved = 0, other = 0;
    for (int cycle = 1; cycle <= CYCLES; cycle++) {
        fd = watch(s);
        int64_t t_create = 0;
        int began = post_record_until_checkpoint(s, fd, &a, &before, &t_create);
        if (began) /* somewhere within the write */
            for (int64_t until = t_create + (write_us > 0 ? rand_r(&seed) % write_us : 0);
                 mono_us() < until;)
                ;
        pid_t pid = s->pid;
        assert_int_equal(server_stop(s, SIGKILL), 128 + SIGKILL);
        close(fd);
        size = -1;
        int landed = began && tmp_exists(s->data_dir, pid, &size);
        mid += landed;
        after_write += began && !landed;
        missed += !began;
        start_standalone(s, save);
        char count[32], sum[64], want[64];
        struct resp r = get(s, "/statistics");
        value_of(r.body, "\"count\":", count, sizeof(count));
        value_of(r.body, "\"sum\":", sum, sizeof(sum));
        resp_free(&r);
        acked_sum(&a, want, sizeof(want));
        record(s, &after, 0);
        char when[64];
        snprintf(when, sizeof(when), "cycle %d", cycle);
        struct mismatches m;
        quiet = cycle > 2; /* the first two in detail, then one line a cycle */
        compare(when, &before, &after, &m);
        quiet = 0;
        int ok = atoll(count) == a.count && !strcmp(sum, want);
        stats_bad += !ok;
        moved += m.quantiles > 0;
        other += m.stats + m.histogram + m.metrics;
        say("cycle %2d: kill -9 %s (temporary file: %lld bytes); count %s sum %s, "
            "acknowledged %lld %s: %s; quantiles differing: %d\n",
            cycle,
            landed  ? "mid-checkpoint"
            : began ? "after the checkpoint's write"
                    : "with no checkpoint begun",
            size, count, sum, a.count, want, ok ? "equal" : "DIFFERENT", m.quantiles);
        answers_free(&before);
        answers_free(&after);
    }
    say("%d cycles: kill -9 mid-checkpoint %d, after the write %d, no checkpoint %d; "
        "count or sum wrong in %d; quantiles moved in %d; other answers differ %d\n",
        CYCLES, mid, after_write, missed, stats_bad, moved, other);
    assert_int_equal(stats_bad, 0);
    assert_true(mid >= 3);
    assert_int_equal(moved + other, 0);
}

/* ---- cluster ---- */

static struct kmock mock;

static void start_node(struct server *s)
{
    const char *args[] = {"--kafka-brokers",
                          mock.brokers,
                          "--window-ms",
                          WINDOW,
                          "--max-retained",
                          RETAINED,
                          "--kafka-checkpoint-interval-ms",
                          KAFKA_CKPT,
                          NULL};
    int st = server_start(s, args);
    if (st > 0) /* the mock's metadata not answered in time once: again */
        st = server_start(s, args);
    assert_int_equal(st, 0);
    for (int k = 0; k < 600 && !node_healthy(s); k++)
        sleep_ms(50);
    assert_true(node_healthy(s));
}

/* The node counts `want` transactions (it reads them back from Kafka). */
static void wait_count(const struct server *s, long long want)
{
    for (int k = 0; k < 600; k++) {
        if (node_count(s) == want)
            return;
        sleep_ms(50);
    }
    fail_msg("the node counts %lld, want %lld", node_count(s), want);
}

#define KCKPTS "txstats_kafka_checkpoints_total{result=\"written\"}"

/* Partitions with a checkpoint on disk. Unkeyed records go to partitions the way librdkafka's
 * sticky partitioner picks (a whole batch to one), so a partition may have had no record. */
static int checkpointed_partitions(const struct server *s)
{
    char pattern[600];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/partitions/*/p*.meta", s->data_dir);
    int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    if (n)
        globfree(&g);
    return n;
}

static void kafka_case(void **state, int sig)
{
    struct server *s = *state;
    struct acked a = {0, 0};
    const char *when = sig == SIGTERM ? "cluster node, SIGTERM" : "cluster node, kill -9";
    assert_int_equal(kmock_start(&mock, mock_bin, "3"), 0);
    start_node(s);
    double c0 = metric(s, KCKPTS);
    post_batches(s, FILL, 20000, 4000, &a);
    wait_count(s, a.count);
    double c1 = wait_checkpointed(s, KCKPTS, c0, 3 * atoi(KAFKA_CKPT) + 300);
    if (sig == SIGKILL) { /* some only in Kafka, not in a checkpoint */
        post_batches(s, EXTRA, 20000, 4000, &a);
        wait_count(s, a.count);
    }
    assert_acked(when, s, &a);
    struct answers before, after;
    record(s, &before, 1);
    double c2 = metric(s, KCKPTS);
    assert_int_equal(server_stop(s, sig), sig == SIGTERM ? 0 : 128 + sig);
    int on_disk = checkpointed_partitions(s);
    start_node(s);
    wait_count(s, a.count);
    double restored = metric(s, "txstats_kafka_checkpoint_restored_partitions");
    say("%s: %lld transactions; checkpoints written %.0f after the fill, %.0f at the "
        "stop; %.0f of %d checkpointed partitions (of 3) restored from checkpoints\n",
        when, a.count, c1, c2, restored, on_disk);
    assert_acked(when, s, &a);
    record(s, &after, 1);
    int mismatched = settle(when, &before, &after);
    assert_int_equal(server_stop(s, SIGTERM), 0);
    kmock_stop(&mock);
    assert_true(on_disk >= 1);
    assert_int_equal(restored, on_disk); /* else it read Kafka, which proves nothing */
    assert_int_equal(mismatched, 0);
}

static void test_kafka_sigterm(void **state)
{
    kafka_case(state, SIGTERM);
}

static void test_kafka_sigkill(void **state)
{
    kafka_case(state, SIGKILL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-txstats-server [PATH-TO-kafka_mock kafka]\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    if (argc > 3 && !strcmp(argv[3], "kafka")) {
        mock_bin = argv[2];
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_kafka_sigterm, server_test_setup,
                                            server_test_teardown),
            cmocka_unit_test_setup_teardown(test_kafka_sigkill, server_test_setup,
                                            server_test_teardown),
        };
        return cmocka_run_group_tests_name("kafka_restart_equivalence", tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm, server_test_setup, server_test_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_journal, server_test_setup,
                                        server_test_teardown),
        cmocka_unit_test_setup_teardown(test_kill_mid_checkpoint, server_test_setup,
                                        server_test_teardown),
    };
    return cmocka_run_group_tests_name("server_restart_equivalence", tests, NULL, NULL);
}
