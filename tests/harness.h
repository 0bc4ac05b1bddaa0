/* SPDX-License-Identifier: MIT */
/* Integration tests: run the real txstats-server, talk real HTTP over loopback. */
#ifndef TXSTATS_TEST_HARNESS_H
#define TXSTATS_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct server {
    pid_t pid;
    int port;
    char dir[64];      /* scratch directory of the test, removed by server_cleanup */
    char data_dir[96]; /* dir/data unless set before server_start */
};

struct resp {
    int status;
    char headers[4096];
    char *body; /* NUL-terminated, malloc'd; free with resp_free */
    size_t len;
    int closed; /* the server closed the connection after this response */
};

/* Path of the txstats-server binary (argv[1] of the test, or TXSTATS_SERVER_BIN). */
extern const char *server_bin;

void server_init(struct server *s); /* scratch dir */
/* Start with --listen 127.0.0.1:0 and the given extra arguments (NULL-terminated); wait until it
 * listens. Returns 0, or the exit status if it exited instead (e.g. refused a snapshot). */
int server_start(struct server *s, const char *const *args);
int server_stop(struct server *s, int sig); /* the exit status */
void server_cleanup(struct server *s);
/* cmocka setup and teardown: a fresh, not yet started server in *state; teardown stops it if it
 * runs (SIGKILL) and removes its scratch directory. */
int server_test_setup(void **state);
int server_test_teardown(void **state);

int http_connect(int port);
/* One request on an open connection; -1 on a socket error. */
int http_request(int fd, const char *method, const char *path, const char *headers,
                 const char *body, size_t blen, struct resp *r);
/* Connect, request, close. */
int http(int port, const char *method, const char *path, const char *body, struct resp *r);
const char *resp_header(const struct resp *r, const char *name); /* value or NULL */
/* Raw bytes: send `req` on fd, then collect what arrives until the server closes (returns 1) or
 * nothing came for `quiet_ms` (returns 0); -1 on a send error. `out` is NUL-terminated. */
int raw_exchange(int fd, const char *req, size_t len, int quiet_ms, char *out, size_t cap,
                 size_t *got);

int64_t now_ms(void);      /* CLOCK_REALTIME in ms since the epoch */
void sleep_ms(int64_t ms); /* ms <= 0: no sleep */
long rss_kib(pid_t pid);   /* VmRSS of a process, or -1 */
void resp_free(struct resp *r);

#endif
