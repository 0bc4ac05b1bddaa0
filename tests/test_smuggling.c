/* SPDX-License-Identifier: MIT */
/* Request smuggling (issue 26), table-driven: each row of tests/smuggling/cases.txt is sent at
 * once on a fresh connection with a complete POST /transactions hidden behind the first request.
 * The first request gets the row's status and the X-Content-Type-Options: nosniff header, the
 * server closes the connection with no second answer, and the statistics count does not move (the
 * hidden POST was never run). usage: test_smuggling SERVER_BIN CASES_FILE */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static const char *cases_file;

struct ctx {
    struct server s;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    const char *args[] = {"--request-timeout-ms", "2000", NULL};
    server_init(&c->s);
    if (server_start(&c->s, args) != 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    int status = server_stop(&c->s, SIGTERM);
    server_cleanup(&c->s);
    free(c);
    return status == 0 ? 0 : -1;
}

/* The smuggled request: a valid transaction of 50.00, timestamped a second ago. */
static size_t smuggled(char *out, size_t cap)
{
    char ts[32], body[96];
    txstats_timestamp_format(now_ms() - 1000, ts, sizeof(ts));
    int n = snprintf(body, sizeof(body), "{\"amount\":\"50.00\",\"timestamp\":\"%s\"}", ts);
    return (size_t)snprintf(
        out, cap, "POST /transactions HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", n,
        body);
}

/* One placeholder at `p` (after its '{') appended to out; returns the characters consumed. */
static size_t expand_one(const char *p, const char *smug, char *out, size_t *n, size_t cap)
{
    size_t sl = strlen(smug);
    if (!strncmp(p, "S}", 2))
        *n += (size_t)snprintf(out + *n, cap - *n, "%s", smug);
    else if (!strncmp(p, "L}", 2))
        *n += (size_t)snprintf(out + *n, cap - *n, "%zu", sl);
    else if (!strncmp(p, "C}", 2))
        *n += (size_t)snprintf(out + *n, cap - *n, "%zu", sl + 5);
    else if (!strncmp(p, "F:", 2)) {
        int count = atoi(p + 2);
        for (int i = 0; i < count && *n + 32 < cap; i++)
            *n += (size_t)snprintf(out + *n, cap - *n, "X-Filler-%d: %d\r\n", i, i);
        return strcspn(p, "}") + 1;
    } else
        fail_msg("unknown placeholder {%.8s", p);
    return 2;
}

/* The row's bytes: escapes and placeholders expanded. */
static size_t expand(const char *row, const char *smug, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = row; *p && *p != '\n' && n + 8 < cap; p++) {
        if (*p == '{') {
            p += expand_one(p + 1, smug, out, &n, cap);
        } else if (*p == '\\' && p[1]) {
            p++;
            out[n++] = *p == 'r' ? '\r' : *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return n;
}

static long long stat_count(int port)
{
    struct resp r;
    assert_int_equal(http(port, "GET", "/statistics", NULL, &r), 0);
    const char *k = strstr(r.body, "\"count\":");
    long long v = k ? atoll(k + 8) : -1;
    resp_free(&r);
    return v;
}

/* One row: 0 when it holds, else 1 after printing why. */
static int run_row(int port, const char *name, int want, const char *row)
{
    static char req[16384], out[16384];
    char smug[256];
    smuggled(smug, sizeof(smug));
    size_t len = expand(row, smug, req, sizeof(req)), got = 0;
    long long before = stat_count(port);
    int fd = http_connect(port);
    int closed = raw_exchange(fd, req, len, 3000, out, sizeof(out), &got);
    close(fd);
    long long after = stat_count(port);
    int status = strncmp(out, "HTTP/1.1 ", 9) == 0 ? atoi(out + 9) : -1;
    const char *second = strstr(out + 1, "HTTP/1.1 ");
    bool ok = status == want && closed == 1 && !second && after == before &&
              strstr(out, "\r\nX-Content-Type-Options: nosniff\r\n");
    printf("%-26s %3d closed=%d count %lld->%lld %s\n", name, status, closed, before, after,
           ok ? "ok" : "FAILED");
    if (!ok)
        printf("  sent %zu bytes; got: %.300s\n", len, out);
    return ok ? 0 : 1;
}

static void test_table(void **state)
{
    struct ctx *c = *state;
    FILE *f = fopen(cases_file, "r");
    assert_non_null(f);
    char line[4096];
    int failed = 0, rows = 0;
    while (fgets(line, sizeof(line), f)) {
        char name[64];
        int want, skip = 0;
        if (line[0] == '#' || sscanf(line, "%63[^|]|%d|%n", name, &want, &skip) != 2 || !skip)
            continue;
        failed += run_row(c->s.port, name, want, line + skip);
        rows++;
    }
    fclose(f);
    printf("%d rows, %d failed\n", rows, failed);
    assert_true(rows >= 50);
    assert_int_equal(failed, 0);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    cases_file = argc > 2 ? argv[2] : "tests/smuggling/cases.txt";
    if (!server_bin)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
