/* SPDX-License-Identifier: MIT */
/*
 * Bytes libtxstats allocates per retained transaction, counted exactly through the config's
 * allocator hooks (not RSS) on a fake clock, for several densities of transactions per
 * millisecond. usage: bench_memory
 */
#include <stdio.h>
#include <stdlib.h>

#include <txstats/txstats.h>

#define HEADER 16 /* keeps the caller's pointer 16-byte aligned */

static size_t live;
static int64_t now_ms;

static void *count_alloc(size_t n, void *ud)
{
    (void)ud;
    size_t *p = malloc(n + HEADER);
    if (!p)
        return NULL;
    *p = n;
    live += n;
    return (char *)p + HEADER;
}

static void count_free(void *q, void *ud)
{
    (void)ud;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - HEADER);
    live -= *p;
    free(p);
}

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

/* `n` transactions spread evenly over the last `spread_ms` milliseconds of a 60 s window. */
static int measure(const char *what, long n, long spread_ms)
{
    txstats_config_t cfg;
    txstats_config_init(&cfg);
    cfg.alloc = count_alloc;
    cfg.free = count_free;
    cfg.clock_ms = fake_clock;
    cfg.max_retained = (size_t)n;
    live = 0;
    now_ms = INT64_C(1700000000000);
    txstats_t *t;
    if (txstats_create(&t, &cfg) != TXSTATS_OK)
        return 1;
    size_t empty = live;
    for (long i = 0; i < n; i++)
        if (txstats_add(t, 1000 + i, now_ms - spread_ms + 1 + (i * spread_ms) / n) != TXSTATS_OK)
            return 1;
    txstats_list_info_t info;
    txstats_get_ex(t, NULL, 0, &info);
    printf("%-40s %5.2f MiB empty, +%10zu B for %8llu retained: %6.1f B each\n", what,
           (double)empty / 1048576.0, live - empty, (unsigned long long)info.retained,
           (double)(live - empty) / (double)info.retained);
    txstats_destroy(t);
    return 0;
}

/* Bytes per idempotency key: `n` keyed adds (max_retained 0, so only the window and the keys
 * take memory) against the same adds without keys. */
static int measure_keys(long n)
{
    size_t with[2];
    for (int keyed = 0; keyed < 2; keyed++) {
        txstats_config_t cfg;
        txstats_config_init(&cfg);
        cfg.alloc = count_alloc;
        cfg.free = count_free;
        cfg.clock_ms = fake_clock;
        cfg.max_retained = 0;
        cfg.max_keys = (size_t)(n + n / 4); /* the cap is per sixteenth: room for the unevenness */
        live = 0;
        now_ms = INT64_C(1700000000000);
        txstats_t *t;
        if (txstats_create(&t, &cfg) != TXSTATS_OK)
            return 1;
        for (long i = 0; i < n; i++) {
            char key[40];
            int len = snprintf(key, sizeof(key), "7f3c2a9e-1b4d-4e8f-9a6b-%012ld", i);
            int rc =
                keyed ? txstats_add_keyed(t, 1000 + i, now_ms - i % 60000, key, (size_t)len, NULL)
                      : txstats_add(t, 1000 + i, now_ms - i % 60000);
            if (rc != TXSTATS_OK)
                return 1;
        }
        with[keyed] = live;
        txstats_destroy(t);
    }
    printf("%-40s +%10zu B for %8ld keys: %6.1f B each\n", "idempotency keys (UUID-like)",
           with[1] - with[0], n, (double)(with[1] - with[0]) / (double)n);
    return 0;
}

int main(void)
{
    int rc = 0;
    rc |= measure("100,000 in one millisecond", 100000, 1);
    rc |= measure("1,000,000 over 59,999 ms (16.7 per ms)", 1000000, 59999);
    rc |= measure("1,048,576 over 60,000 ms (17.5 per ms)", 1048576, 60000);
    rc |= measure("120,000 over 60,000 ms (2 per ms)", 120000, 60000);
    rc |= measure("60,000 over 60,000 ms (1 per ms)", 60000, 60000);
    rc |= measure_keys(100000);
    rc |= measure_keys(1000000);
    return rc;
}
