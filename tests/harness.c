/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *server_bin;

void server_init(struct server *s)
{
    memset(s, 0, sizeof(*s));
    strcpy(s->dir, "/tmp/txstats-it-XXXXXX");
    if (!mkdtemp(s->dir))
        abort();
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", s->dir);
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

int server_start(struct server *s, const char *const *args)
{
    char portfile[128];
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    unlink(portfile);
    const char *argv[64] = {server_bin,   "--listen",  "127.0.0.1:0", "--port-file", portfile,
                            "--data-dir", s->data_dir, "--log-level", "warn"};
    int n = 9;
    for (; args && *args && n < 62; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* up to 10 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    return -1;
}

int server_stop(struct server *s, int sig)
{
    int status = 0;
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void server_cleanup(struct server *s)
{
    char cmd[128];
    if (s->pid > 0)
        server_stop(s, SIGKILL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

int server_test_setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    server_init(s);
    *state = s;
    return 0;
}

int server_test_teardown(void **state)
{
    server_cleanup(*state);
    free(*state);
    return 0;
}

int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A growing buffer of what was received on the connection. */
struct rbuf {
    char *p;
    size_t len, cap, pos;
    int eof;
};

static int fill(int fd, struct rbuf *b, size_t need)
{
    while (b->len - b->pos < need) {
        if (b->len == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 65536;
            b->p = realloc(b->p, b->cap + 1);
        }
        ssize_t r = recv(fd, b->p + b->len, b->cap - b->len, 0);
        if (r <= 0) {
            b->eof = 1;
            return -1;
        }
        b->len += (size_t)r;
    }
    return 0;
}

/* Position just past the next "\r\n" (or "\r\n\r\n" when `blank`), reading as needed. */
static char *find_line(int fd, struct rbuf *b, const char *sep)
{
    for (;;) {
        if (b->p) {
            b->p[b->len] = '\0';
            char *e = memmem(b->p + b->pos, b->len - b->pos, sep, strlen(sep));
            if (e)
                return e + strlen(sep);
        }
        if (fill(fd, b, b->len - b->pos + 1) != 0)
            return NULL;
    }
}

static int read_chunked(int fd, struct rbuf *b, struct resp *r)
{
    size_t cap = 4096;
    r->body = malloc(cap);
    for (;;) {
        char *eol = find_line(fd, b, "\r\n");
        if (!eol)
            return -1;
        size_t n = strtoul(b->p + b->pos, NULL, 16);
        b->pos = (size_t)(eol - b->p);
        if (fill(fd, b, n + 2) != 0)
            return -1;
        if (r->len + n + 1 > cap) {
            cap = (r->len + n + 1) * 2;
            r->body = realloc(r->body, cap);
        }
        memcpy(r->body + r->len, b->p + b->pos, n);
        r->len += n;
        b->pos += n + 2;
        if (n == 0)
            break;
    }
    r->body[r->len] = '\0';
    return 0;
}

static int read_response(int fd, struct resp *r, int head_only)
{
    static __thread struct rbuf b; /* connection buffers are per thread, one connection at once */
    memset(&b, 0, sizeof(b));
    char *end = find_line(fd, &b, "\r\n\r\n");
    if (!end) {
        free(b.p);
        return -1;
    }
    size_t hlen = (size_t)(end - b.p);
    snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hlen, b.p);
    r->status = atoi(b.p + 9);
    b.pos = hlen;
    const char *cl = resp_header(r, "Content-Length");
    const char *te = resp_header(r, "Transfer-Encoding");
    int rc = 0;
    if (te && strncasecmp(te, "chunked", 7) == 0) {
        rc = read_chunked(fd, &b, r);
    } else {
        size_t n = cl && !head_only ? strtoul(cl, NULL, 10) : 0;
        rc = fill(fd, &b, n);
        r->body = malloc(n + 1);
        memcpy(r->body, b.p + b.pos, rc == 0 ? n : 0);
        r->len = rc == 0 ? n : 0;
        r->body[r->len] = '\0';
    }
    const char *conn = resp_header(r, "Connection");
    r->closed = conn && strncasecmp(conn, "close", 5) == 0;
    free(b.p);
    return rc;
}

int http_request(int fd, const char *method, const char *path, const char *headers,
                 const char *body, size_t blen, struct resp *r)
{
    char head[2048];
    memset(r, 0, sizeof(*r));
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path,
                     headers ? headers : "");
    if (body)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (send_all(fd, head, (size_t)n) != 0 || (body && send_all(fd, body, blen) != 0))
        return -1;
    return read_response(fd, r, !strcmp(method, "HEAD"));
}

int http(int port, const char *method, const char *path, const char *body, struct resp *r)
{
    memset(r, 0, sizeof(*r)); /* resp_free() is safe after a failed connect too */
    int fd = http_connect(port);
    if (fd < 0)
        return -1;
    int rc = http_request(fd, method, path, NULL, body, body ? strlen(body) : 0, r);
    close(fd);
    return rc;
}

const char *resp_header(const struct resp *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->headers, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            return v;
        }
    }
    return NULL;
}

void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

int raw_exchange(int fd, const char *req, size_t len, int quiet_ms, char *out, size_t cap,
                 size_t *got)
{
    *got = 0;
    out[0] = '\0';
    if (len > 0 && send_all(fd, req, len) != 0)
        return -1;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, quiet_ms) <= 0)
            return 0;
        ssize_t n = recv(fd, out + *got, cap - 1 - *got, 0);
        if (n <= 0)
            return 1;
        *got += (size_t)n;
        out[*got] = '\0';
        if (*got == cap - 1)
            return 0;
    }
}
