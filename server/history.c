/* SPDX-License-Identifier: MIT */
/* A ring of per-second statistics (of every span) filled by a sampler thread, and a ring of the
 * last accepted transactions, both fixed size and under one mutex. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "windows.h"

struct point {
    int64_t second_ms;                        /* the whole second sampled, epoch ms */
    txstats_summary_t sum[TXSTATS_MAX_SPANS]; /* per span of --window-ms */
};

struct srv_history {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    struct point points[SRV_HISTORY_POINTS];
    size_t npoints, next; /* next: the slot the next point goes to */
    txstats_tx_t recent[SRV_HISTORY_RECENT];
    size_t nrecent, next_recent;
    struct srv *s;
};

static void add_point(struct srv_history *h, int64_t second_ms)
{
    struct point p = {.second_ms = second_ms};
    for (unsigned i = 0; i < h->s->opt.spans.n; i++) /* the windows have their own locks */
        h->s->backend.ops->stats(h->s->backend.self, i, &p.sum[i]);
    pthread_mutex_lock(&h->lock);
    h->points[h->next] = p;
    h->next = (h->next + 1) % SRV_HISTORY_POINTS;
    if (h->npoints < SRV_HISTORY_POINTS)
        h->npoints++;
    pthread_mutex_unlock(&h->lock);
}

/* Wake at every whole second of the real clock, so points line up with the dashboard's axis. */
static void *sampler(void *arg)
{
    struct srv_history *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        int64_t next = (srv_now_ms() / 1000 + 1) * 1000;
        struct timespec until = {.tv_sec = next / 1000, .tv_nsec = 0};
        while (!h->stop && srv_now_ms() < next)
            pthread_cond_timedwait(&h->wake, &h->lock, &until);
        if (h->stop)
            break;
        pthread_mutex_unlock(&h->lock);
        add_point(h, next);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int srv_history_start(struct srv *s)
{
    struct srv_history *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    h->s = s;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->thread, NULL, sampler, h) != 0) {
        free(h);
        return -1;
    }
    s->history = h;
    return 0;
}

void srv_history_stop(struct srv *s)
{
    struct srv_history *h = s->history;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    s->history = NULL;
    free(h);
}

void srv_history_forget(struct srv *s)
{
    struct srv_history *h = s->history;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->nrecent = 0;
    h->next_recent = 0;
    pthread_mutex_unlock(&h->lock);
}

void srv_history_note(struct srv *s, txstats_amount_t amount, int64_t timestamp_ms)
{
    struct srv_history *h = s->history;
    /* A display of the latest few: under contention a note is skipped rather than making every
     * POST queue on one lock (at 50k POSTs a second the list turns over anyway). */
    if (!h || pthread_mutex_trylock(&h->lock) != 0)
        return;
    h->recent[h->next_recent] = (txstats_tx_t){.amount = amount, .timestamp_ms = timestamp_ms};
    h->next_recent = (h->next_recent + 1) % SRV_HISTORY_RECENT;
    if (h->nrecent < SRV_HISTORY_RECENT)
        h->nrecent++;
    pthread_mutex_unlock(&h->lock);
}

/* What snprintf wrote into `size` bytes, not what it would have written. */
static size_t written(size_t used, size_t size)
{
    return used < size ? used : size ? size - 1 : 0;
}

/* One span's point: what a request copies (not every span's, 8 times as much). */
struct span_point {
    int64_t second_ms;
    txstats_summary_t sum;
};

static size_t put_points(const struct span_point *p, size_t n, size_t first, char *buf, size_t size)
{
    size_t used = 0;
    for (size_t i = 0; i < n && used < size; i++) {
        const struct span_point *q = &p[(first + i) % SRV_HISTORY_POINTS];
        txstats_summary_text_t x;
        char ts[32];
        txstats_summary_text(&q->sum, &x);
        txstats_timestamp_format(q->second_ms, ts, sizeof(ts));
        used += (size_t)snprintf(buf + used, size - used,
                                 "%s{\"time\":\"%s\",\"count\":%llu,\"sum\":\"%s\",\"avg\":\"%s\","
                                 "\"max\":\"%s\",\"min\":\"%s\"}",
                                 i ? "," : "", ts, (unsigned long long)x.count, x.sum, x.avg, x.max,
                                 x.min);
    }
    return written(used, size);
}

static size_t put_recent(const txstats_tx_t *r, size_t n, size_t next, char *buf, size_t size)
{
    size_t used = 0;
    for (size_t i = 0; i < n && used < size; i++) { /* newest first */
        const txstats_tx_t *t = &r[(next + SRV_HISTORY_RECENT - 1 - i) % SRV_HISTORY_RECENT];
        char a[48], ts[32];
        txstats_amount_format(t->amount, a, sizeof(a));
        txstats_timestamp_format(t->timestamp_ms, ts, sizeof(ts));
        used += (size_t)snprintf(buf + used, size - used,
                                 "%s{\"amount\":\"%s\",\"timestamp\":\"%s\"}", i ? "," : "", a, ts);
    }
    return written(used, size);
}

struct copy {
    struct span_point points[SRV_HISTORY_POINTS];
    txstats_tx_t recent[SRV_HISTORY_RECENT];
    size_t npoints, first, nrecent, next_recent;
    char out[SRV_HISTORY_POINTS * 256 + SRV_HISTORY_RECENT * 128 + 256];
};

/* Copied under the lock (a POST waits for a memcpy at most), formatted without it, one write.
 * ?window= picks the span the points describe. */
int srv_history_get(struct srv *s, struct mg_connection *c)
{
    static const char *const params[] = {"window", NULL};
    char err[400];
    unsigned span;
    if (srv_window_of(s, mg_get_request_info(c)->query_string, params, &span, err, sizeof(err)))
        return srv_error(c, 400, NULL, "%s", err);
    struct srv_history *h = s->history;
    struct copy *k = h ? malloc(sizeof(*k)) : NULL;
    if (!k)
        return srv_error(c, 503, "Retry-After: 1\r\n", "the history is not available");
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < SRV_HISTORY_POINTS; i++)
        k->points[i] = (struct span_point){h->points[i].second_ms, h->points[i].sum[span]};
    memcpy(k->recent, h->recent, sizeof(k->recent));
    k->npoints = h->npoints;
    k->first = (h->next + SRV_HISTORY_POINTS - h->npoints) % SRV_HISTORY_POINTS;
    k->nrecent = h->nrecent;
    k->next_recent = h->next_recent;
    pthread_mutex_unlock(&h->lock);
    size_t size = sizeof(k->out), n = 0;
    n += (size_t)snprintf(k->out, size, "{\"interval_ms\":1000,\"points\":[");
    n += put_points(k->points, k->npoints, k->first, k->out + n, size - n);
    n += (size_t)snprintf(k->out + n, size - n, "],\"recent\":[");
    n += put_recent(k->recent, k->nrecent, k->next_recent, k->out + n, size - n);
    n += (size_t)snprintf(k->out + n, size - n, "]}");
    int st = srv_reply(c, 200, "Cache-Control: no-cache\r\n", k->out, n);
    free(k);
    return st;
}
