/* SPDX-License-Identifier: MIT */
/* Add a few transactions, then print the statistics of the last 60 seconds. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <txstats/txstats.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    static const char *amounts[] = {"12.3343", "-5", "1E+3", "0.005", "200000.49"};
    txstats_t *t;
    int rc = txstats_create(&t, NULL); /* defaults: 60 s window */
    if (rc != TXSTATS_OK) {
        fprintf(stderr, "txstats_create: %s\n", txstats_strerror(rc));
        return 1;
    }
    int64_t now = now_ms();
    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        txstats_amount_t a;
        rc = txstats_amount_parse(amounts[i], strlen(amounts[i]), &a);
        if (rc == TXSTATS_OK)
            rc = txstats_add(t, a, now - (int64_t)i * 1000);
        printf("add %-10s -> %s\n", amounts[i], txstats_strerror(rc));
    }
    txstats_summary_t s;
    txstats_summary_text_t text;
    txstats_stats(t, &s);
    txstats_summary_text(&s, &text);
    printf("{\"sum\":\"%s\",\"avg\":\"%s\",\"max\":\"%s\",\"min\":\"%s\",\"count\":%llu}\n",
           text.sum, text.avg, text.max, text.min, (unsigned long long)text.count);
    txstats_destroy(t);
    return text.count == 5 ? 0 : 1;
}
