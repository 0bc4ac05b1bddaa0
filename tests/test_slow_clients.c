/* SPDX-License-Identifier: MIT */
/* Slow headers: max(300, threads + 10) connections each trickle one header byte a second and
 * reconnect as soon as the server drops them, while a normal client asks GET /healthz every
 * 250 ms. The bound: every probe answered within 2 s, with the default options.
 * With "body", each connection sends a whole POST head at once, then trickles its body instead.
 * usage: test_slow_clients SERVER [SECONDS] [headers|body] [extra server arguments...] */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define MAX_CONN       8192
#define PROBE_BOUND_MS 2000

struct attack {
    bool body; /* trickle the body of a POST, not the head of a GET */
    int port, n, fds[MAX_CONN];
    size_t sent[MAX_CONN];
    long reconnects;
};

static atomic_bool stop;

/* The next byte of an endless request head: a request line, then header lines forever. */
static char head_byte(size_t i)
{
    static const char line[] = "GET /statistics HTTP/1.1\r\n";
    static const char header[] = "X-Slow: 1\r\n";
    if (i < sizeof(line) - 1)
        return line[i];
    return header[(i - (sizeof(line) - 1)) % (sizeof(header) - 1)];
}

static int worker_threads(pid_t pid)
{
    char path[64], line[256];
    int n = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* A new attacking connection; in body mode its POST head is sent whole. */
static int open_conn(const struct attack *a)
{
    static const char post[] = "POST /transactions HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 60000\r\n\r\n";
    int fd = http_connect(a->port);
    if (fd >= 0 && a->body && send(fd, post, sizeof(post) - 1, MSG_NOSIGNAL) != sizeof(post) - 1) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One round: a byte on every connection; a connection the server dropped is opened again. */
static void trickle(struct attack *a)
{
    for (int i = 0; i < a->n; i++) {
        struct pollfd p = {a->fds[i], POLLIN, 0};
        char junk[512];
        bool dropped = a->fds[i] < 0 || (poll(&p, 1, 0) > 0 &&
                                         recv(a->fds[i], junk, sizeof(junk), MSG_DONTWAIT) <= 0);
        char b = a->body ? '[' : head_byte(a->sent[i]);
        if (!dropped && send(a->fds[i], &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
            dropped = true;
        if (dropped) {
            if (a->fds[i] >= 0)
                close(a->fds[i]);
            a->fds[i] = open_conn(a);
            a->sent[i] = 0;
            a->reconnects++;
            continue;
        }
        a->sent[i]++;
    }
}

static void *attacker(void *arg)
{
    struct attack *a = arg;
    for (int i = 0; i < a->n; i++)
        a->fds[i] = open_conn(a);
    while (!atomic_load(&stop)) {
        int64_t t0 = now_ms();
        trickle(a);
        sleep_ms(1000 - (now_ms() - t0));
    }
    for (int i = 0; i < a->n; i++)
        if (a->fds[i] >= 0)
            close(a->fds[i]);
    return NULL;
}

struct probes {
    int count, late, failed;
    int64_t worst_ms;
    long rss_peak;
};

/* A normal client: GET /healthz every 250 ms for `seconds`, each on a new connection. */
static struct probes probe(const struct server *s, int seconds)
{
    struct probes pr = {0, 0, 0, 0, 0};
    int64_t end = now_ms() + seconds * 1000LL;
    while (now_ms() < end) {
        struct resp r;
        memset(&r, 0, sizeof(r)); /* http() leaves it untouched when it cannot connect */
        int64_t t0 = now_ms();
        int rc = http(s->port, "GET", "/healthz", NULL, &r);
        int64_t took = now_ms() - t0;
        pr.failed += rc != 0 || r.status != 200;
        resp_free(&r);
        pr.worst_ms = took > pr.worst_ms ? took : pr.worst_ms;
        pr.late += took >= PROBE_BOUND_MS;
        pr.count++;
        long rss = rss_kib(s->pid);
        pr.rss_peak = rss > pr.rss_peak ? rss : pr.rss_peak;
        sleep_ms(250);
    }
    return pr;
}

int main(int argc, char **argv)
{
    server_bin = argc > 1 ? argv[1] : getenv("TXSTATS_SERVER_BIN");
    int seconds = argc > 2 ? atoi(argv[2]) : 25;
    if (!server_bin || seconds <= 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* room for the connections here and in the server we start */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 16384 ? rl.rlim_max : 16384;
    setrlimit(RLIMIT_NOFILE, &rl);
    static struct attack a;
    a.body = argc > 3 && !strcmp(argv[3], "body");
    int first_arg = argc > 3 && (a.body || !strcmp(argv[3], "headers")) ? 4 : 3;
    struct server s;
    server_init(&s);
    if (server_start(&s, (const char *const *)(argc > first_arg ? argv + first_arg : NULL)) != 0)
        return 1;
    long rss_idle = rss_kib(s.pid);
    int threads = worker_threads(s.pid);
    a.port = s.port;
    a.n = threads + 10 > 300 ? threads + 10 : 300;
    if (a.n > MAX_CONN)
        a.n = MAX_CONN;
    pthread_t th;
    pthread_create(&th, NULL, attacker, &a);
    sleep_ms(1500); /* every connection open and holding */
    struct probes pr = probe(&s, seconds);
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    printf("slow %s: %d connections, %ld reconnects; server threads %d; RSS idle %ld KiB, "
           "peak %ld KiB\nprobes: %d over %d s, worst %lld ms, %d at or over %d ms, %d failed\n",
           a.body ? "bodies" : "headers", a.n, a.reconnects, threads, rss_idle, pr.rss_peak,
           pr.count, seconds, (long long)pr.worst_ms, pr.late, PROBE_BOUND_MS, pr.failed);
    int status = server_stop(&s, SIGTERM);
    server_cleanup(&s);
    return pr.late == 0 && pr.failed == 0 && status == 0 ? 0 : 1;
}
