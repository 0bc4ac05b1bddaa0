/* SPDX-License-Identifier: MIT */
/* HTTP semantics at the socket, one rule per test, the exact bytes on the wire: HEAD and OPTIONS
 * (RFC 9110 §9.3.2, §9.3.7), Expect (§10.1.1), chunked bodies (RFC 9112 §7.1), closing when a
 * body was not read (RFC 9112 §9.6), the request timeout mid-body, streams that never starve
 * the workers. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

struct ctx {
    struct server s;
    char body[128]; /* a valid transaction, timestamped at setup */
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    const char *args[] = {"--request-timeout-ms", "1000", NULL};
    server_init(&c->s);
    if (server_start(&c->s, args) != 0)
        return -1;
    char ts[32];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    snprintf(c->body, sizeof(c->body), "{\"amount\":\"7\",\"timestamp\":\"%s\"}", ts);
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

/* One exchange on a fresh connection. */
static int exchange(struct ctx *c, const char *req, size_t len, int quiet_ms, char *out, size_t cap,
                    size_t *got)
{
    int fd = http_connect(c->s.port);
    assert_true(fd >= 0);
    int closed = raw_exchange(fd, req, len, quiet_ms, out, cap, got);
    close(fd);
    return closed;
}

static size_t head_len(const char *resp)
{
    const char *e = strstr(resp, "\r\n\r\n");
    return e ? (size_t)(e + 4 - resp) : 0;
}

/* HEAD: GET's status line and header fields, not one byte of content, and the connection goes
 * on (a stray body would be read as the next response). */
static void test_head(void **state)
{
    struct ctx *c = *state;
    static const char *paths[] = {
        "/statistics",   "/transactions/statistics", "/healthz", "/metrics", "/",
        "/transactions", "/statistics/stream"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char req[256], get[16384], head[16384];
        size_t gn, hn;
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        exchange(c, req, strlen(req), 300, get, sizeof(get), &gn);
        int fd = http_connect(c->s.port);
        snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        assert_int_equal(raw_exchange(fd, req, strlen(req), 300, head, sizeof(head), &hn), 0);
        size_t h = head_len(head);
        if (h == 0 || hn != h || strncmp(get, head, 15) != 0)
            fail_msg("HEAD %s: %zu bytes, head %zu: %s", paths[i], hn, h, head);
        if (!strstr(paths[i], "metrics") && !strstr(paths[i], "transactions")) /* no counters */
            assert_memory_equal(get, head, h);
        const char *again = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(raw_exchange(fd, again, strlen(again), 300, head, sizeof(head), &hn), 0);
        assert_string_equal(head, "HTTP/1.1 200 OK\r\nX-Content-Type-Options: "
                                  "nosniff\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}");
        close(fd);
    }
    char out[512];
    size_t n;
    const char *req = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(c, req, strlen(req), 300, out, sizeof(out), &n);
    assert_string_equal(
        out,
        "HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Type: application/json\r\n"
        "Content-Length: 15\r\n\r\n");
    req = "HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(c, req, strlen(req), 300, out, sizeof(out), &n);
    assert_int_equal(strncmp(out, "HTTP/1.1 404 ", 13), 0);
    assert_int_equal(n, head_len(out));
}

static void test_options_and_allow(void **state)
{
    struct ctx *c = *state;
    char out[512];
    size_t n;
    const char *req = "OPTIONS /transactions HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(exchange(c, req, strlen(req), 300, out, sizeof(out), &n), 0);
    assert_string_equal(out, "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\nAllow: "
                             "GET, HEAD, POST, DELETE, "
                             "OPTIONS\r\nContent-Length: 0\r\n\r\n");
    req = "OPTIONS /statistics HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(c, req, strlen(req), 300, out, sizeof(out), &n);
    assert_string_equal(out, "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\nAllow: "
                             "GET, HEAD, OPTIONS\r\n"
                             "Content-Length: 0\r\n\r\n");
    req = "PATCH /statistics HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(c, req, strlen(req), 300, out, sizeof(out), &n);
    assert_int_equal(strncmp(out, "HTTP/1.1 405 ", 13), 0);
    assert_non_null(strstr(out, "\r\nAllow: GET, HEAD, OPTIONS\r\n"));
}

static void test_expect(void **state)
{
    struct ctx *c = *state;
    char head[256], out[1024];
    size_t n;
    int len = snprintf(head, sizeof(head),
                       "POST /transactions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: %zu\r\n\r\n",
                       strlen(c->body));
    int fd = http_connect(c->s.port);
    int64_t t0 = now_ms();
    assert_int_equal(raw_exchange(fd, head, (size_t)len, 300, out, sizeof(out), &n), 0);
    assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n"); /* at once, before the body */
    assert_true(now_ms() - t0 < 900);
    assert_int_equal(raw_exchange(fd, c->body, strlen(c->body), 300, out, sizeof(out), &n), 0);
    assert_string_equal(
        out,
        "HTTP/1.1 201 Created\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n");
    close(fd);
    /* refused at once: the final status, no 100, and the unsent body never read */
    const char *big = "POST /transactions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                      "Content-Length: 70000\r\n\r\n";
    assert_int_equal(exchange(c, big, strlen(big), 2000, out, sizeof(out), &n), 1);
    assert_int_equal(strncmp(out, "HTTP/1.1 413 Content Too Large\r\n", 32), 0);
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    const char *odd = "POST /transactions HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    assert_int_equal(exchange(c, odd, strlen(odd), 2000, out, sizeof(out), &n), 1);
    assert_int_equal(strncmp(out, "HTTP/1.1 417 Expectation Failed\r\n", 33), 0);
}

static void test_chunked(void **state)
{
    struct ctx *c = *state;
    char req[512], out[1024];
    size_t n;
    int len = snprintf(req, sizeof(req),
                       "POST /transactions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n%zx\r\n%s\r\n0\r\n\r\n",
                       strlen(c->body), c->body);
    assert_int_equal(exchange(c, req, (size_t)len, 300, out, sizeof(out), &n), 0);
    assert_string_equal(
        out,
        "HTTP/1.1 201 Created\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n");
    /* A chunk extension (RFC 9112 §7.1.1) breaks civetweb 1.15's chunked reader, which the
     * handler cannot get around (the bytes it buffered are out of reach): 400, and the
     * connection closed since the body was not read. Through the nginx front it is 201. */
    len = snprintf(req, sizeof(req),
                   "POST /transactions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "\r\n%zx;x=1\r\n%s\r\n0\r\n\r\n",
                   strlen(c->body), c->body);
    assert_int_equal(exchange(c, req, (size_t)len, 2000, out, sizeof(out), &n), 1);
    assert_int_equal(strncmp(out, "HTTP/1.1 400 ", 13), 0);
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
}

/* A body not read to its end: the response, then the connection closed. */
static void test_unread_body_closes(void **state)
{
    struct ctx *c = *state;
    static char req[70200], out[2048];
    size_t n;
    int len = snprintf(req, sizeof(req),
                       "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n");
    memset(req + len, '[', 70000);
    int64_t t0 = now_ms();
    assert_int_equal(exchange(c, req, (size_t)len + 70000, 3000, out, sizeof(out), &n), 1);
    assert_true(now_ms() - t0 < 2500);
    assert_string_equal(out, "HTTP/1.1 413 Content Too Large\r\nX-Content-Type-Options: "
                             "nosniff\r\nContent-Type: application/json\r\n"
                             "Connection: close\r\nContent-Length: 51\r\n\r\n"
                             "{\"error\":\"request body is larger than 65536 bytes\"}");
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(exchange(c, get, strlen(get), 3000, out, sizeof(out), &n), 1);
    assert_string_equal(
        out,
        "HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}");
}

/* RFC 9112 §6.3: ambiguous framing is 400 and the connection closed, so a request smuggled
 * behind it is never served; a DELETE whose body is not read says Connection: close too. */
static void test_ambiguous_framing(void **state)
{
    struct ctx *c = *state;
    char out[2048];
    size_t n;
    const char *const cases[] = {
        "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 4\r\n"
        "\r\n{}{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /transactions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(exchange(c, cases[i], strlen(cases[i]), 1500, out, sizeof(out), &n), 1);
        assert_int_equal(strncmp(out, "HTTP/1.1 400 ", 13), 0);
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_null(strstr(out, "200 OK")); /* the smuggled GET was not served */
    }
    const char *del = "DELETE /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                      "0123456789GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(exchange(c, del, strlen(del), 1500, out, sizeof(out), &n), 1);
    assert_string_equal(
        out, "HTTP/1.1 204 No Content\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"
             "Content-Length: 0\r\n\r\n");
}

/* A client that stops mid-body is answered 408 and dropped at the request timeout (1 s). */
static void test_stalled_body(void **state)
{
    struct ctx *c = *state;
    char out[1024];
    size_t n;
    const char *req = "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"amo";
    int64_t t0 = now_ms();
    assert_int_equal(exchange(c, req, strlen(req), 5000, out, sizeof(out), &n), 1);
    int64_t took = now_ms() - t0;
    print_message("stalled body dropped after %lld ms (request timeout 1000 ms)\n",
                  (long long)took);
    assert_true(took >= 900 && took < 2500);
    assert_int_equal(strncmp(out, "HTTP/1.1 408 Request Timeout\r\n", 30), 0);
}

/* --threads 8: at most 4 streams; the rest get 503 at once and everything else is served. */
static void test_streams_reserve(void **state)
{
    struct server s;
    const char *refused[] = {"--threads", "8", "--max-streams", "8", NULL};
    server_init(&s);
    assert_int_equal(server_start(&s, refused), 2);
    server_cleanup(&s);
    const char *args[] = {"--threads", "8", NULL};
    server_init(&s);
    assert_int_equal(server_start(&s, args), 0);
    int fds[8], ok = 0, busy = 0;
    const char *req = "GET /statistics/stream HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 8; i++) {
        char out[1024];
        size_t n;
        fds[i] = http_connect(s.port);
        int64_t t0 = now_ms();
        raw_exchange(fds[i], req, strlen(req), 300, out, sizeof(out), &n);
        ok += strncmp(out, "HTTP/1.1 200 ", 13) == 0;
        if (strncmp(out, "HTTP/1.1 503 ", 13) == 0 && strstr(out, "\r\nRetry-After: ") &&
            now_ms() - t0 < 1000)
            busy++;
    }
    print_message("--threads 8: %d streams served, %d refused with 503\n", ok, busy);
    assert_int_equal(ok, 4);
    assert_int_equal(busy, 4);
    struct resp r;
    assert_int_equal(http(s.port, "GET", "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    assert_int_equal(server_stop(&s, SIGTERM), 0);
    server_cleanup(&s);
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    if (!server_bin)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_and_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_body_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_body, setup, teardown),
        cmocka_unit_test(test_streams_reserve),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
