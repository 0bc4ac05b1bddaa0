/* SPDX-License-Identifier: MIT */
/* The HTTP edge (issue 22), table-driven: each row of tests/edge/cases.txt is sent at once on a
 * fresh connection. The answer has an HTTP/1.1 status line with the row's status (RFC 9112 §4),
 * X-Content-Type-Options: nosniff, a JSON error body {"error":...} for every status from 400,
 * "Connection: close" and a closed connection where the row says so (RFC 9112 §9.6), and the
 * access log gains one line with that status (civetweb's own refusals included).
 * usage: test_edge SERVER_BIN CASES_FILE */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static const char *cases_file;
static char log_path[160];

static int setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    server_init(s);
    snprintf(log_path, sizeof(log_path), "%s/access.log", s->dir);
    const char *args[] = {"--access-log", log_path, "--request-timeout-ms", "2000", NULL};
    if (server_start(s, args) != 0)
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct server *s = *state;
    int status = server_stop(s, SIGTERM);
    server_cleanup(s);
    free(s);
    return status == 0 ? 0 : -1;
}

/* One escape or placeholder at p (after '\\' or '{'); returns the characters consumed. */
static size_t expand_one(const char *p, int port, char *out, size_t *n, size_t cap)
{
    if (p[-1] == '\\') {
        if (*p == 'x') {
            out[(*n)++] = (char)strtol((char[]){p[1], p[2], 0}, NULL, 16);
            return 3;
        }
        out[(*n)++] = *p == 'r' ? '\r' : *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        return 1;
    }
    if (*p == 'P') {
        *n += (size_t)snprintf(out + *n, cap - *n, "%d", port);
        return 2;
    }
    int size = atoi(p + 2); /* {B:n}: "X-Big: aaa...\r\n", n bytes in all */
    *n += (size_t)snprintf(out + *n, cap - *n, "X-Big: ");
    for (int i = 9; i < size && *n + 3 < cap; i++)
        out[(*n)++] = 'a';
    *n += (size_t)snprintf(out + *n, cap - *n, "\r\n");
    return strcspn(p, "}") + 1;
}

static size_t expand(const char *row, int port, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = row; *p && *p != '\n' && n + 8 < cap; p++) {
        if ((*p == '\\' && p[1]) || !strncmp(p, "{P}", 3) || !strncmp(p, "{B:", 3))
            p += expand_one(p + 1, port, out, &n, cap);
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    return n;
}

/* The access log's line count, and its last line in `last`. */
static int log_lines(char *last, size_t cap)
{
    FILE *f = fopen(log_path, "r");
    int lines = 0;
    char line[4096];
    while (f && fgets(line, sizeof(line), f)) {
        lines++;
        snprintf(last, cap, "%s", line);
    }
    if (f)
        fclose(f);
    return lines;
}

/* One more line than `before` (waited for up to 2 s), with `status`. */
static bool logged(int before, int status)
{
    char last[4096] = "", want[16];
    snprintf(want, sizeof(want), "\" %d ", status);
    for (int i = 0; i < 40; i++, sleep_ms(50))
        if (log_lines(last, sizeof(last)) == before + 1)
            return strstr(last, want) != NULL;
    return false;
}

/* The answer's status line, headers and body are as the row says. */
static bool answer_ok(const char *out, int want, int close_want, int closed)
{
    const char *end = strstr(out, "\r\n\r\n");
    bool closes =
        strstr(out, "\r\nConnection: close\r\n") && end && strstr(out, "\r\nConnection") < end;
    bool json = want < 400 || (strstr(out, "\r\nContent-Type: application/json\r\n") && end &&
                               !strncmp(end + 4, "{\"error\":\"", 10));
    return !strncmp(out, "HTTP/1.1 ", 9) && atoi(out + 9) == want && json &&
           strstr(out, "\r\nX-Content-Type-Options: nosniff\r\n") &&
           (close_want ? closes && closed == 1 : !closes && closed == 0);
}

static int run_row(int port, const char *name, int want, int close_want, const char *row)
{
    static char req[32768], out[16384], last[4096];
    size_t len = expand(row, port, req, sizeof(req)), got = 0;
    int before = log_lines(last, sizeof(last));
    int fd = http_connect(port);
    int closed = raw_exchange(fd, req, len, close_want ? 3000 : 1000, out, sizeof(out), &got);
    close(fd);
    bool ok = answer_ok(out, want, close_want, closed);
    bool log_ok = logged(before, want);
    printf("%-22s %.12s closed=%d log=%d %s\n", name, out, closed, log_ok,
           ok && log_ok ? "ok" : "FAILED");
    if (!(ok && log_ok))
        printf("  sent %zu bytes; got: %.400s\n", len, out);
    return ok && log_ok ? 0 : 1;
}

static void test_table(void **state)
{
    struct server *s = *state;
    FILE *f = fopen(cases_file, "r");
    assert_non_null(f);
    char line[4096];
    int failed = 0, rows = 0;
    while (fgets(line, sizeof(line), f)) {
        char name[64];
        int want, close_want, skip = 0;
        if (line[0] == '#' ||
            sscanf(line, "%63[^|]|%d|%d|%n", name, &want, &close_want, &skip) != 3 || !skip)
            continue;
        failed += run_row(s->port, name, want, close_want, line + skip);
        rows++;
    }
    fclose(f);
    printf("%d rows, %d failed\n", rows, failed);
    assert_true(rows >= 30);
    assert_int_equal(failed, 0);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    cases_file = argc > 2 ? argv[2] : "tests/edge/cases.txt";
    if (!server_bin)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
