/* SPDX-License-Identifier: MIT */
/*
 * The local backend: one txstats_t journaled in --data-dir. The library recovers it at start,
 * journals every add and clear, and checkpoints every --save-interval-ms while the journal
 * grows; stopping writes a last checkpoint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "log.h"
#include "options.h"
#include "refusals.h"

struct local {
    txstats_t *t;
    char dir[1024];
    txstats_recovery_t recovery;
    atomic_uint_fast64_t checkpoints_ok, checkpoints_failed;
    struct srv_refusals refused; /* writes the journal did not take */
};

static int mkdirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *q = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static void on_checkpoint(int status, int error, void *ctx)
{
    struct local *l = ctx;
    if (status == TXSTATS_OK) {
        atomic_fetch_add(&l->checkpoints_ok, 1);
        return;
    }
    atomic_fetch_add(&l->checkpoints_failed, 1);
    srv_log(LOG_ERROR, "cannot write a checkpoint in %s: %s; the journal still has everything",
            l->dir, status == TXSTATS_EIO ? srv_os_reason(error) : txstats_strerror(status));
}

static void log_recovery(const struct local *l)
{
    const txstats_recovery_t *r = &l->recovery;
    txstats_summary_t sum;
    txstats_stats_span(l->t, 0, &sum); /* the default span */
    srv_log(LOG_INFO,
            "recovered %s in %lld ms: %llu from the checkpoint, %llu journal records replayed, "
            "%llu expired, %llu torn bytes cut, %llu damaged records skipped%s; %llu in the window",
            l->dir, (long long)r->duration_ms, (unsigned long long)r->snapshot_transactions,
            (unsigned long long)r->replayed, (unsigned long long)r->expired,
            (unsigned long long)r->torn_bytes, (unsigned long long)r->corrupt_records,
            r->cleared ? ", a journaled DELETE applied" : "", (unsigned long long)sum.count);
    if (r->approximate)
        srv_log(LOG_WARN,
                "the checkpoint was written by an older version that kept neither the amounts "
                "nor the buckets of %llu transaction(s): quantiles count them at their "
                "millisecond's mean until they leave the window",
                (unsigned long long)r->approximate);
    if (r->torn_bytes >= 32) /* more than a partly written record: a crash mid-batch, or damage */
        srv_log(LOG_WARN,
                "%llu bytes at the end of journal segments could not be read and were cut: "
                "whole records among them (a crash in the middle of a batch, or damage)",
                (unsigned long long)r->torn_bytes);
    if (r->missing_checkpoint)
        srv_log(LOG_WARN,
                "no checkpoint in %s: rebuilt from the journal alone "
                "(--recover skip-corrupt); what the missing checkpoint held is lost",
                l->dir);
    if (r->corrupt_records)
        srv_log(LOG_WARN, "%llu damaged journal records were skipped (--recover skip-corrupt)",
                (unsigned long long)r->corrupt_records);
}

static void log_open_error(const struct local *l, int rc)
{
    if (rc == TXSTATS_EBUSY)
        srv_log(LOG_ERROR, "data directory %s is in use by another txstats-server", l->dir);
    else if (rc == TXSTATS_EFORMAT && errno == ENOENT)
        srv_log(LOG_ERROR,
                "cannot recover %s: its journal holds transactions but there is no checkpoint.bin, "
                "so the checkpoint they follow was removed. Nothing was changed. Put it back, or "
                "start with --recover skip-corrupt to rebuild from the journal alone (what the "
                "checkpoint held is then lost)",
                l->dir);
    else if (rc == TXSTATS_EFORMAT)
        srv_log(LOG_ERROR,
                "cannot recover %s: the checkpoint or a journal record in the middle of a segment "
                "is damaged. Nothing was changed. Restore a good copy, or start with --recover "
                "skip-corrupt to skip damaged journal records (a damaged checkpoint must be "
                "moved away)",
                l->dir);
    else
        srv_log(LOG_ERROR, "cannot open data directory %s: %s", l->dir,
                rc == TXSTATS_EIO ? srv_os_reason(errno) : txstats_strerror(rc));
}

/* The data directory: checkpoint + journal recovered, then journaled from here on. */
static int open_data_dir(struct local *l, const struct srv_options *o)
{
    if (mkdirs(l->dir) != 0) {
        srv_log(LOG_ERROR, "cannot create data directory %s: %s", l->dir, srv_os_reason(errno));
        return -1;
    }
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = (txstats_fsync_t)o->fsync;
    d.fsync_interval_ms = o->fsync_interval_ms;
    d.skip_corrupt = o->recover == 1;
    d.checkpoint_interval_ms = o->save_interval_ms;
    d.on_checkpoint = on_checkpoint;
    d.on_checkpoint_ctx = l;
    int rc = txstats_open_dir(l->t, l->dir, &d, &l->recovery);
    if (rc != TXSTATS_OK) {
        log_open_error(l, rc);
        return -1;
    }
    log_recovery(l);
    return 0;
}

/* `writes` refused: the journal write failed with `e`. */
static void journal_refused(struct local *l, int e, uint64_t writes, char *err, size_t n)
{
    srv_refused(&l->refused, e, writes);
    snprintf(err, n, "it could not be written to the journal (%s)", strerror(e));
}

static int local_add(void *self, const txstats_input_t *in, int *first, char *err, size_t n)
{
    struct local *l = self;
    int rc = txstats_add_ex(l->t, in, first);
    if (rc == TXSTATS_EIO)
        journal_refused(l, errno, 1, err, n);
    else if (rc < 0)
        snprintf(err, n, "%s", txstats_strerror(rc));
    return rc;
}

static int local_add_batch(void *self, const txstats_input_t *in, size_t n, int *results,
                           int *firsts, char *err, size_t errn)
{
    struct local *l = self;
    int rc = txstats_add_batch_ex(l->t, in, n, results, firsts, NULL);
    int e = errno;
    for (size_t i = 0; rc != TXSTATS_OK && i < n; i++)
        results[i] = rc; /* the batch's scratch memory: nothing stored */
    if (rc != TXSTATS_OK)
        snprintf(err, errn, "%s", txstats_strerror(rc));
    uint64_t refused = 0;
    for (size_t i = 0; rc == TXSTATS_OK && i < n; i++)
        refused += results[i] == TXSTATS_EIO;
    if (refused)
        journal_refused(l, e, refused, err, errn);
    return TXSTATS_OK;
}

static int local_clear(void *self, char *err, size_t n)
{
    struct local *l = self;
    int rc = txstats_clear_ex(l->t);
    int e = errno;
    if (rc == TXSTATS_EIO)
        srv_refused(&l->refused, e, 1);
    if (rc != TXSTATS_OK)
        snprintf(err, n, "nothing deleted: the clear could not be written to the journal (%s)",
                 strerror(e));
    return rc;
}

static int local_stats(void *self, unsigned span, txstats_summary_t *out)
{
    return txstats_stats_span(((struct local *)self)->t, span, out);
}

static int local_dist(void *self, unsigned span, txstats_dist_t *out)
{
    return txstats_dist_collect_span(((struct local *)self)->t, span, out);
}

static int local_list(void *self, unsigned span, txstats_tx_t *buf, size_t cap,
                      txstats_list_info_t *info)
{
    return txstats_get_span(((struct local *)self)->t, span, buf, cap, info);
}

static int local_key_stats(void *self, unsigned span, const void *key, size_t len,
                           txstats_summary_t *out)
{
    return txstats_entity_stats_span(((struct local *)self)->t, span, key, len, out);
}

static int local_top(void *self, unsigned span, txstats_top_by_t by, txstats_top_entry_t *buf,
                     size_t cap, size_t *n)
{
    return txstats_top_span(((struct local *)self)->t, span, by, buf, cap, n);
}

static void local_key_info(void *self, txstats_entity_info_t *out)
{
    txstats_entity_info(((struct local *)self)->t, out);
}

static bool local_ready(void *self)
{
    (void)self;
    return true;
}

static void local_metrics(void *self, struct srv_text *t)
{
    struct local *l = self;
    txstats_journal_stats_t js;
    txstats_journal_stats(l->t, &js);
    srv_text_family(t, "txstats_snapshots_total", "counter", "Checkpoints written, by result.");
    srv_text_put(t, "txstats_snapshots_total{result=\"ok\"} %llu\n",
                 (unsigned long long)js.checkpoints);
    srv_text_put(t, "txstats_snapshots_total{result=\"error\"} %llu\n",
                 (unsigned long long)atomic_load(&l->checkpoints_failed));
    srv_text_family(t, "txstats_journal_records_total", "counter", "Journal records written.");
    srv_text_put(t, "txstats_journal_records_total %llu\n", (unsigned long long)js.records);
    srv_text_family(t, "txstats_journal_written_bytes_total", "counter", "Journal bytes written.");
    srv_text_put(t, "txstats_journal_written_bytes_total %llu\n", (unsigned long long)js.bytes);
    srv_text_family(t, "txstats_journal_syncs_total", "counter", "Journal fdatasync calls.");
    srv_text_put(t, "txstats_journal_syncs_total %llu\n", (unsigned long long)js.syncs);
    srv_text_family(t, "txstats_journal_write_errors_total", "counter",
                    "Journal writes that failed (the request got a 503).");
    srv_text_put(t, "txstats_journal_write_errors_total %llu\n",
                 (unsigned long long)js.write_errors);
    srv_refusals_metrics(&l->refused, t);
    srv_text_family(t, "txstats_journal_segments", "gauge", "Live journal segment files.");
    srv_text_put(t, "txstats_journal_segments %llu\n", (unsigned long long)js.segments);
    uint64_t keys = 0;
    txstats_key_count(l->t, &keys);
    srv_text_family(t, "txstats_idempotency_keys", "gauge",
                    "Idempotency keys held (live, and expired ones not yet reclaimed).");
    srv_text_put(t, "txstats_idempotency_keys %llu\n", (unsigned long long)keys);
    srv_text_family(t, "txstats_recovery_duration_seconds", "gauge",
                    "Time the start-up recovery took.");
    srv_text_put(t, "txstats_recovery_duration_seconds %.3f\n",
                 (double)l->recovery.duration_ms / 1000);
}

/* The last checkpoint, then everything is freed. */
static int local_stop(void *self)
{
    struct local *l = self;
    int rc = txstats_checkpoint(l->t);
    if (rc != TXSTATS_OK)
        srv_log(LOG_ERROR,
                "cannot write the final checkpoint in %s: %s; the journal still has "
                "everything",
                l->dir, rc == TXSTATS_EIO ? srv_os_reason(errno) : txstats_strerror(rc));
    txstats_destroy(l->t);
    free(l);
    return rc == TXSTATS_OK ? 0 : 1;
}

static const struct srv_backend_ops local_ops = {
    .name = "local",
    .add = local_add,
    .add_batch = local_add_batch,
    .clear = local_clear,
    .stats = local_stats,
    .list = local_list,
    .ready = local_ready,
    .metrics = local_metrics,
    .stop = local_stop,
    .dist = local_dist,
    .key_stats = local_key_stats,
    .top = local_top,
    .key_info = local_key_info,
};

int srv_backend_local_start(const struct srv_options *o, struct srv_backend *out)
{
    struct local *l = calloc(1, sizeof(*l));
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.spans_ms = o->spans.ms; /* spans.ms[0] the default */
    cfg.nspans = o->spans.n;
    cfg.max_skew_ms = o->max_skew_ms;
    cfg.max_retained = (size_t)o->max_retained;
    cfg.max_keys = (size_t)o->max_idempotency_keys;
    cfg.key_ttl_ms = o->idempotency_ttl_ms;
    cfg.max_entities = (size_t)o->max_active_keys;
    int rc = l ? txstats_create(&l->t, &cfg) : TXSTATS_ENOMEM;
    if (rc != TXSTATS_OK) {
        srv_log(LOG_ERROR, "cannot create the window: %s", txstats_strerror(rc));
        free(l);
        return -1;
    }
    snprintf(l->dir, sizeof(l->dir), "%s", o->data_dir);
    if (open_data_dir(l, o) != 0) {
        txstats_destroy(l->t);
        free(l);
        return -1;
    }
    *out = (struct srv_backend){&local_ops, l};
    return 0;
}
