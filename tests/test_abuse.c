/* SPDX-License-Identifier: MIT */
/* A hostile world: oversized, slow, malformed and numerous requests against the real server.
 * After each case: /healthz answers, rejected requests changed nothing, memory stays bounded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static const char BASELINE[] =
    "{\"sum\":\"7.00\",\"avg\":\"7.00\",\"max\":\"7.00\",\"min\":\"7.00\",\"count\":1}";

struct ctx {
    struct server s;
    long rss0;
};

static int setup_with(void **state, const char *const *args)
{
    struct ctx *c = calloc(1, sizeof(*c));
    server_init(&c->s);
    if (server_start(&c->s, args) != 0)
        return -1;
    char ts[32], body[128];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    snprintf(body, sizeof(body), "{\"amount\":\"7\",\"timestamp\":\"%s\"}", ts);
    struct resp r;
    if (http(c->s.port, "POST", "/transactions", body, &r) != 0 || r.status != 201)
        return -1;
    resp_free(&r);
    c->rss0 = rss_kib(c->s.pid);
    *state = c;
    return 0;
}

static int setup(void **state)
{
    const char *args[] = {"--request-timeout-ms", "1500", NULL};
    return setup_with(state, args);
}

static int setup_few_threads(void **state)
{
    const char *args[] = {"--threads", "4", "--request-timeout-ms", "1000", NULL};
    return setup_with(state, args);
}

/* The server is alive, unchanged, and its memory did not run away. */
static int teardown(void **state)
{
    struct ctx *c = *state;
    struct resp r;
    int ok = http(c->s.port, "GET", "/healthz", NULL, &r) == 0 && r.status == 200;
    resp_free(&r);
    ok = ok && http(c->s.port, "GET", "/statistics", NULL, &r) == 0 && r.status == 200 &&
         strcmp(r.body, BASELINE) == 0;
    if (!ok)
        fprintf(stderr, "after the case: server unhealthy or statistics changed: %s\n", r.body);
    resp_free(&r);
    long rss = rss_kib(c->s.pid);
    if (rss > c->rss0 + 64 * 1024) {
        fprintf(stderr, "RSS grew from %ld to %ld KiB\n", c->rss0, rss);
        ok = 0;
    }
    int status = server_stop(&c->s, SIGTERM);
    server_cleanup(&c->s);
    free(c);
    return ok && status == 0 ? 0 : -1;
}

static int send_raw(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Status of the first response on fd (0: closed without one), waiting up to `ms`. */
static int read_status(int fd, int ms)
{
    char buf[256];
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strncmp(buf, "HTTP/1.", 7) == 0 ? atoi(buf + 9) : -2;
}

static void test_huge_bodies(void **state)
{
    struct ctx *c = *state;
    static const long sizes[] = {1L << 20, 100L << 20};
    for (int i = 0; i < 2; i++) {
        int fd = http_connect(c->s.port);
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: %ld\r\n\r\n",
                         sizes[i]);
        int64_t t0 = now_ms();
        assert_int_equal(send_raw(fd, head, (size_t)n), 0);
        char chunk[65536];
        memset(chunk, '[', sizeof(chunk));
        send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT); /* some of the body */
        assert_int_equal(read_status(fd, 5000), 413);
        assert_true(now_ms() - t0 < 2000); /* answered at once, not after reading it all */
        close(fd);
    }
}

static void test_body_never_sent(void **state)
{
    struct ctx *c = *state;
    int fd = http_connect(c->s.port);
    const char *req = "POST /transactions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"amo";
    assert_int_equal(send_raw(fd, req, strlen(req)), 0);
    /* Others are served meanwhile. */
    struct resp r;
    assert_int_equal(http(c->s.port, "GET", "/healthz", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* The stalled request is given up on (400 or a closed connection) within the timeouts. */
    int st = read_status(fd, 15000);
    assert_true(st == 0 || st == 400 || st == 408);
    close(fd);
}

struct slow {
    int port;
    int seconds;
};

static void *slowloris(void *arg)
{
    struct slow *s = arg;
    int fd = http_connect(s->port);
    const char *req = "GET /statistics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa\r\n";
    for (int i = 0; fd >= 0 && req[i] && i < s->seconds * 5; i++) {
        if (send(fd, &req[i], 1, MSG_NOSIGNAL) != 1)
            break;
        struct timespec t = {0, 200 * 1000000L};
        nanosleep(&t, NULL);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_slowloris(void **state)
{
    struct ctx *c = *state;
    enum { CLIENTS = 12 }; /* three times --threads */
    pthread_t th[CLIENTS];
    struct slow s = {c->s.port, 8};
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&th[i], NULL, slowloris, &s);
    struct timespec t = {0, 300 * 1000000L};
    nanosleep(&t, NULL);
    /* A normal client still gets answers: the request timeout frees the trickling ones. */
    for (int k = 0; k < 3; k++) {
        int64_t t0 = now_ms();
        struct resp r;
        assert_int_equal(http(c->s.port, "GET", "/healthz", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        resp_free(&r);
        int64_t waited = now_ms() - t0;
        print_message("normal client answered after %lld ms\n", (long long)waited);
        assert_true(waited < 10000);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
}

static void test_many_connections(void **state)
{
    struct ctx *c = *state;
    enum { N = 2000 };
    static int fds[N];
    static int done[N];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int opened = 0, answered = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        done[i] = 0;
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0 &&
            send_raw(fds[i], req, strlen(req)) == 0)
            opened++;
    }
    assert_int_equal(opened, N);
    int64_t deadline = now_ms() + 60000;
    static struct pollfd p[N];
    while (answered < N && now_ms() < deadline) {
        int n = 0;
        for (int i = 0; i < N; i++)
            if (!done[i])
                p[n++] = (struct pollfd){fds[i], POLLIN, 0};
        if (poll(p, (nfds_t)n, 1000) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (int i = 0; i < N; i++)
                if (fds[i] == p[k].fd) {
                    char buf[256];
                    ssize_t r = recv(fds[i], buf, sizeof(buf) - 1, 0);
                    done[i] = 1;
                    answered += r > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0;
                    break;
                }
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    print_message("%d of %d concurrent connections answered 200\n", answered, N);
    assert_int_equal(answered, N);
}

static void test_garbage_json(void **state)
{
    struct ctx *c = *state;
    char ts[32];
    txstats_timestamp_format(now_ms(), ts, sizeof(ts));
    size_t big = 100000 + 64;
    char *deep = malloc(big);
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    struct resp r;
    assert_int_equal(http(c->s.port, "POST", "/transactions", deep, &r), 0);
    assert_int_equal(r.status, 413); /* larger than --max-body-bytes (64 KiB) */
    resp_free(&r);
    deep[60000] = '\0'; /* within the size limit: refused for its depth, before parsing */
    assert_int_equal(http(c->s.port, "POST", "/transactions", deep, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "nested too deeply"));
    resp_free(&r);
    char ts2[64], nested[512];
    txstats_timestamp_format(now_ms() - 120000, ts2, sizeof(ts2)); /* 30 levels: parsed fine */
    int k = snprintf(nested, sizeof(nested), "{\"amount\":\"0\",\"timestamp\":\"%s\",\"x\":", ts2);
    for (int i = 0; i < 30; i++)
        nested[k++] = '[';
    for (int i = 0; i < 30; i++)
        nested[k++] = ']';
    nested[k++] = '}';
    nested[k] = '\0';
    assert_int_equal(http(c->s.port, "POST", "/transactions", nested, &r), 0);
    assert_int_equal(r.status, 204); /* valid, expired: fully parsed, nothing counted */
    resp_free(&r);
    free(deep);
    char *body = malloc(20100);
    static const struct {
        const char *amount; /* printf'd into the body */
        int status;
    } cases[] = {
        {"1e400", 422},       {"-1e400", 422},           {"NaN", 400},       {"\"NaN\"", 422},
        {"\"\\u0000\"", 422}, {"\"\xff\xfe\"", 400},     {"\"1\xc3\"", 400}, {"Infinity", 400},
        {"0x10", 400},        {"\"1e2147483648\"", 422},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, 20100, "{\"amount\":%s,\"timestamp\":\"%s\"}", cases[i].amount, ts);
        assert_int_equal(http(c->s.port, "POST", "/transactions", body, &r), 0);
        if (r.status != cases[i].status)
            fail_msg("amount %s: %d, want %d (%s)", cases[i].amount, r.status, cases[i].status,
                     r.body);
        resp_free(&r);
    }
    /* 10,000 digits: out of range as a number and as a string */
    int n = snprintf(body, 20100, "{\"amount\":\"");
    memset(body + n, '9', 10000);
    snprintf(body + n + 10000, 100, "\",\"timestamp\":\"%s\"}", ts);
    assert_int_equal(http(c->s.port, "POST", "/transactions", body, &r), 0);
    assert_int_equal(r.status, 422);
    resp_free(&r);
    body[n - 1] = ' '; /* the same digits as a JSON number */
    memmove(body + n - 1, body + n, strlen(body + n) + 1);
    char *q = strchr(body + n, '"');
    memmove(q, q + 1, strlen(q + 1) + 1);
    assert_int_equal(http(c->s.port, "POST", "/transactions", body, &r), 0);
    assert_int_equal(r.status, 422);
    resp_free(&r);
    free(body);
    /* Invalid UTF-8 as a key (RFC 8259 §8.1: 400); duplicated keys with a bad first value. */
    char dup[256];
    snprintf(dup, sizeof(dup),
             "{\"\xff\":1,\"amount\":\"x\",\"amount\":\"1\",\"timestamp\":\"%s\"}", ts);
    assert_int_equal(http(c->s.port, "POST", "/transactions", dup, &r), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    snprintf(dup, sizeof(dup),
             "{\"\xc3\xa9\":1,\"amount\":\"x\",\"amount\":\"1\",\"timestamp\":\"%s\"}", ts);
    assert_int_equal(http(c->s.port, "POST", "/transactions", dup, &r), 0);
    assert_int_equal(r.status, 422); /* the first 'amount' wins, and "x" is no amount */
    resp_free(&r);
}

static void test_headers(void **state)
{
    struct ctx *c = *state;
    /* 200 headers, beyond civetweb's table of 64: refused (431) rather than served with the
     * fields past the 64th dropped, which could hide a Content-Length (RFC 6585 §5) */
    char *req = malloc(200 * 32 + 128);
    int n = sprintf(req, "GET /statistics HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 200; i++)
        n += sprintf(req + n, "X-Flood-%d: %d\r\n", i, i);
    n += sprintf(req + n, "\r\n");
    int fd = http_connect(c->s.port);
    assert_int_equal(send_raw(fd, req, (size_t)n), 0);
    assert_int_equal(read_status(fd, 5000), 431);
    close(fd);
    free(req);
    /* a 64 KiB header line, past max_request_size (16 KiB): 431 (RFC 6585 §5; edge.c) */
    req = malloc(70000);
    n = sprintf(req, "GET /statistics HTTP/1.1\r\nHost: x\r\nX-Long: ");
    memset(req + n, 'a', 65536);
    n += 65536;
    n += sprintf(req + n, "\r\n\r\n");
    fd = http_connect(c->s.port);
    send(fd, req, (size_t)n, MSG_NOSIGNAL);
    int st = read_status(fd, 5000);
    assert_true(st == 431 || st == 0); /* 0: it closed before we finished sending (a reset) */
    close(fd);
    free(req);
}

static void test_http10_and_pipelining(void **state)
{
    struct ctx *c = *state;
    int fd = http_connect(c->s.port);
    const char *req10 = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_int_equal(send_raw(fd, req10, strlen(req10)), 0);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) /* until the server closes */
        got += (size_t)n;
    buf[got] = '\0';
    assert_non_null(strstr(buf, " 200 "));
    assert_non_null(strstr(buf, "{\"status\":\"ok\"}"));
    close(fd);
    /* three requests in one write: three answers, in order */
    fd = http_connect(c->s.port);
    const char *pipe3 = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /statistics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send_raw(fd, pipe3, strlen(pipe3)), 0);
    got = 0;
    while ((n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    char *a = strstr(buf, "HTTP/1.1 200"), *b = strstr(buf, "HTTP/1.1 404"),
         *d = strstr(b ? b : buf, "HTTP/1.1 200");
    assert_true(a && b && d && a < b && b < d);
    assert_non_null(strstr(d, BASELINE));
    close(fd);
}

static void test_hostile_paths(void **state)
{
    struct ctx *c = *state;
    static const char *paths[] = {"/../../etc/passwd",  "/transactions/..",
                                  "/%2e%2e/statistics", "/statistics%00",
                                  "/transactions%00/x", "//statistics",
                                  "/STATISTICS",        "/transactions?limit=1&limit=2"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct resp r;
        assert_int_equal(http(c->s.port, "GET", paths[i], NULL, &r), 0);
        if (r.status != 404 && r.status != 400)
            fail_msg("%s: %d", paths[i], r.status);
        resp_free(&r);
    }
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    if (!server_bin)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* room for 2,000 connections here and in the server we start */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_huge_bodies),
        T(test_body_never_sent),
        cmocka_unit_test_setup_teardown(test_slowloris, setup_few_threads, teardown),
        T(test_many_connections),
        T(test_garbage_json),
        T(test_headers),
        T(test_http10_and_pipelining),
        T(test_hostile_paths),
    };
    return cmocka_run_group_tests_name("abuse", tests, NULL, NULL);
}
