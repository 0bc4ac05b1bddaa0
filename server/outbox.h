/* SPDX-License-Identifier: MIT */
/*
 * The outbox of a cluster node in `--kafka-ack local` mode (outbox.c): an append-only journal of
 * the records this node accepted, in sequence order, that a shipper sends to Kafka and then marks
 * acknowledged. It is as durable as a standalone node's journal: a record is written (and, by the
 * fsync mode, synced) before append returns, and recovery after a crash or power loss keeps every
 * whole record and cuts a torn tail.
 *
 * Files in DIR: `outbox-<first seq, 20 digits>.log` segments of records (each `u32 length`,
 * `u32 CRC-32` of the payload (zlib's, ISO 3309), payload: seq, timestamp ms, amount micros,
 * accepted-at ms, origin as little-endian 64-bit integers, a kind byte, a key length byte, the
 * key; kind 2, an add naming a key of its own, then that key's length byte and bytes), `acked` (the
 * highest sequence Kafka acknowledged, as text; may lag: shipping again what was acknowledged is
 * harmless, as consumers apply each (origin, seq) once), `lock` (flock against a second process).
 * The origin is the identity of the run that appended the record (random, new at every open):
 * records keep it when a later run ships them again, and two processes started from copies of one
 * directory never share one.
 *
 * Thread-safety: append from any thread; read/acked from one shipper thread.
 */
#ifndef TXSTATS_SERVER_OUTBOX_H
#define TXSTATS_SERVER_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <txstats/txstats.h>

/* OUTBOX_ADD_KEYED is what append writes for an OUTBOX_ADD naming a key (entity_len > 0); read
 * gives it back as OUTBOX_ADD. */
enum srv_outbox_kind { OUTBOX_ADD = 0, OUTBOX_CLEAR = 1, OUTBOX_ADD_KEYED = 2 };

/* One record; `key` points into the caller's memory on append, into the outbox's on read
 * (valid until the next read). */
struct srv_outbox_rec {
    uint64_t seq; /* assigned by append: 1, 2, ... never reused */
    int64_t timestamp_ms;
    txstats_amount_t amount;
    int64_t accepted_ms; /* when this node accepted it (replication lag is measured from it) */
    uint64_t origin;     /* the run that appended it (set by append) */
    int kind;            /* enum srv_outbox_kind */
    txstats_key_t key;   /* idempotency key, or {NULL, 0} */
    const void *entity;  /* the key of the per-key window it counts in (as `key` points) */
    size_t entity_len;   /* 0: none */
};

struct srv_outbox_stats {
    uint64_t next_seq; /* the sequence the next append gets */
    uint64_t acked;    /* every record up to this one is acknowledged */
    uint64_t segments; /* segment files on disk */
    uint64_t bytes;    /* bytes of those files */
    uint64_t syncs;    /* fdatasync calls */
    uint64_t torn;     /* bytes cut from a torn tail at open */
    uint64_t origin;   /* this run's identity, in the records it appends */
};

struct srv_outbox;

struct srv_outbox_config {
    int fsync;                 /* txstats_fsync_t: ALWAYS syncs before append returns (appends are
                                  serialised), INTERVAL leaves it to srv_outbox_sync() every
                                  fsync_interval_ms, NEVER to the OS */
    int64_t fsync_interval_ms; /* also how often `acked` is written */
    uint64_t segment_bytes;    /* a segment is closed past this size; 0: 64 MiB */
};

/*
 * Open (creating it if missing) the outbox in `dir`: recover the segments, cut a torn or damaged
 * tail of the last one, read `acked`. 0, or -1 with `err` (n bytes) saying why (errno kept; EBUSY:
 * another process has it). Damage before the last segment's tail refuses to open.
 */
int srv_outbox_open(struct srv_outbox **out, const char *dir, const struct srv_outbox_config *c,
                    char *err, size_t n);
void srv_outbox_close(struct srv_outbox *o);

/* Append `n` records as one write (a batch is one write); their seqs are *first_seq, +1, ... 0, or
 * -1 (errno: ENOSPC, EIO...) with nothing appended, except with fsync ALWAYS when the write
 * succeeded and the fdatasync failed: then *first_seq is set, the records are in the outbox (and
 * will be shipped) but not known to be on stable storage. */
int srv_outbox_append(struct srv_outbox *o, struct srv_outbox_rec *r, size_t n,
                      uint64_t *first_seq);

/* Up to `max` records with seq >= `from`, in order, into r; the count (0: none yet). Keys point
 * into the outbox's read buffer, valid until the next call. Shipper thread only. */
size_t srv_outbox_read(struct srv_outbox *o, uint64_t from, struct srv_outbox_rec *r, size_t max);

/* When no record with seq >= from exists yet: sleep `ms` (appends wake no one: under load the
 * shipper finds records at once and takes them in bulk). */
void srv_outbox_wait(struct srv_outbox *o, uint64_t from, int ms);

/* Every record up to `seq` is acknowledged: remembered in `acked` (written at most every
 * fsync_interval_ms, and at close), and segments entirely acknowledged are deleted. */
void srv_outbox_acked(struct srv_outbox *o, uint64_t seq);

/* With fsync INTERVAL: sync if the interval has passed since the last sync and there are new
 * records. Call it often (the shipper does). */
void srv_outbox_sync(struct srv_outbox *o);

void srv_outbox_stats(struct srv_outbox *o, struct srv_outbox_stats *s);

#endif
