/* SPDX-License-Identifier: MIT */
/* The connection guard: which worker waits for what, and a watchdog that frees workers held by
 * the slowest clients when the pool runs low (see guard.h). */
#define _GNU_SOURCE
#include "guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* `used`, `dropped`, `tid` and `fd` change under the guard's lock; `phase` and `since_ms` change
 * on every request, so they are atomics the worker sets without the lock. */
struct slot {
    bool used, dropped;
    pid_t tid; /* the worker thread that serves the connection */
    int fd;    /* its socket, once known; -1 before */
    _Atomic int phase;
    _Atomic int64_t since_ms; /* when the current phase began */
};

struct srv_guard {
    pthread_mutex_t lock;
    struct slot *slots;
    int cap, used, reserve;
    int64_t body_timeout_ms; /* --request-timeout-ms */
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t dropped;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct srv_guard *guard_of(const struct mg_connection *c)
{
    struct srv *s = mg_get_user_data(mg_get_context(c));
    return s ? s->guard : NULL;
}

static struct slot *slot_of(const struct mg_connection *c)
{
    return mg_get_user_connection_data(c);
}

/* The accepted socket whose peer is the connection's client: civetweb 1.15 does not expose it,
 * but the (client address, client port, server port) triple names it among our open sockets. */
static int find_fd(const struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct in_addr want;
    if (!ri || ri->remote_port <= 0 || inet_pton(AF_INET, ri->remote_addr, &want) != 1)
        return -1;
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    for (struct dirent *e; d && found < 0 && (e = readdir(d));) {
        int fd = atoi(e->d_name);
        struct sockaddr_in peer, self;
        socklen_t pl = sizeof(peer), sl = sizeof(self);
        if (fd <= 2 || fd == dirfd(d) || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != ri->remote_port ||
            peer.sin_addr.s_addr != want.s_addr ||
            getsockname(fd, (struct sockaddr *)&self, &sl) != 0 ||
            ntohs(self.sin_port) != ri->server_port)
            continue;
        found = fd;
    }
    if (d)
        closedir(d);
    return found;
}

/* The socket a worker thread is blocked on, read from /proc/self/task/TID/syscall: civetweb waits
 * for request bytes in poll(2) on the one client socket (or in recvfrom/read on it). At init
 * time civetweb 1.15 tells nothing about the connection (mg_get_request_info is NULL), so this
 * is how the watchdog learns which socket a worker stuck in the header phase holds. */
static int blocked_fd(pid_t tid)
{
    char path[64];
    unsigned long nr = 0, arg0 = 0, arg1 = 0;
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    int n = f ? fscanf(f, "%lu %lx %lx", &nr, &arg0, &arg1) : 0;
    if (f)
        fclose(f);
    if (n != 3)
        return -1;
    int fd = -1;
    if (nr == SYS_poll && arg1 == 1) { /* poll(struct pollfd *fds, 1, timeout) */
        struct pollfd p;
        struct iovec local = {&p, sizeof(p)}, remote = {(void *)arg0, sizeof(p)};
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof(p))
            fd = p.fd;
    } else if (nr == SYS_recvfrom || nr == SYS_read) {
        fd = (int)arg0;
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    if (fd <= 2 || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0)
        return -1; /* not a connected socket: not a client's */
    return fd;
}

static void set_phase(const struct mg_connection *c, enum srv_phase phase)
{
    struct slot *sl = slot_of(c);
    if (!sl)
        return;
    atomic_store_explicit(&sl->since_ms, mono_ms(), memory_order_relaxed);
    atomic_store_explicit(&sl->phase, (int)phase, memory_order_release);
}

int srv_guard_open(const struct mg_connection *c, void **conn_data)
{
    struct srv_guard *g = guard_of(c);
    *conn_data = NULL;
    if (!g)
        return 0;
    pid_t tid = (pid_t)syscall(SYS_gettid); /* civetweb calls this in the connection's worker */
    pthread_mutex_lock(&g->lock);
    for (int i = 0; i < g->cap; i++) {
        if (g->slots[i].used)
            continue;
        struct slot *sl = &g->slots[i];
        sl->used = true;
        sl->dropped = false;
        sl->tid = tid;
        sl->fd = -1;
        atomic_store(&sl->phase, PHASE_HEADER);
        atomic_store(&sl->since_ms, mono_ms());
        g->used++;
        *conn_data = &g->slots[i];
        break;
    }
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* Called by civetweb before it closes the socket: after this the fd is never touched again. */
void srv_guard_close(const struct mg_connection *c)
{
    struct srv_guard *g = guard_of(c);
    struct slot *sl = slot_of(c);
    if (!g || !sl)
        return;
    pthread_mutex_lock(&g->lock);
    sl->used = false;
    g->used--;
    pthread_mutex_unlock(&g->lock);
}

int srv_guard_begin(struct mg_connection *c)
{
    set_phase(c, PHASE_BUSY);
    return 0; /* civetweb goes on with the request */
}

void srv_guard_end(const struct mg_connection *c, int status)
{
    (void)status;
    set_phase(c, PHASE_HEADER); /* keep-alive: waiting for the next request head */
}

void srv_guard_body(const struct mg_connection *c, bool reading)
{
    set_phase(c, reading ? PHASE_BODY : PHASE_BUSY);
}

int srv_guard_fd(const struct mg_connection *c)
{
    struct srv_guard *g = guard_of(c);
    struct slot *sl = slot_of(c);
    int fd = -1;
    if (g && sl) {
        pthread_mutex_lock(&g->lock);
        fd = sl->fd;
        pthread_mutex_unlock(&g->lock);
    }
    return fd >= 0 ? fd : find_fd(c);
}

uint64_t srv_guard_dropped(const struct srv *s)
{
    return s->guard ? atomic_load(&s->guard->dropped) : 0;
}

/* The connection waiting longest for its head or body, at least SRV_GUARD_MIN_AGE_MS. The phase
 * is read without the lock: a head completed in that very instant may still be dropped, which
 * only happens while the pool is exhausted. */
static struct slot *longest_waiting(struct srv_guard *g, int64_t now)
{
    struct slot *best = NULL;
    for (int i = 0; i < g->cap; i++) {
        struct slot *sl = &g->slots[i];
        if (!sl->used || sl->dropped || atomic_load(&sl->phase) == PHASE_BUSY ||
            now - atomic_load(&sl->since_ms) < SRV_GUARD_MIN_AGE_MS)
            continue;
        if (sl->fd < 0)
            sl->fd = blocked_fd(sl->tid);
        if (sl->fd < 0)
            continue;
        if (!best || atomic_load(&sl->since_ms) < atomic_load(&best->since_ms))
            best = sl;
    }
    return best;
}

/* A client that stops sending its body is dropped at the request timeout: civetweb restarts its
 * timeout at every read, so a body trickled or stalled after a first part would hold on longer.
 * Only the reading side is shut down: the handler still answers 408. */
static void end_stalled_bodies(struct srv_guard *g, int64_t now)
{
    for (int i = 0; i < g->cap; i++) {
        struct slot *sl = &g->slots[i];
        if (!sl->used || sl->dropped || atomic_load(&sl->phase) != PHASE_BODY ||
            now - atomic_load(&sl->since_ms) < g->body_timeout_ms)
            continue;
        if (sl->fd < 0)
            sl->fd = blocked_fd(sl->tid);
        if (sl->fd >= 0 && shutdown(sl->fd, SHUT_RD) == 0)
            sl->dropped = true;
    }
}

/* Free workers up to the reserve by dropping the connections that wait longest. */
static void free_workers(struct srv_guard *g)
{
    pthread_mutex_lock(&g->lock);
    int64_t now = mono_ms();
    end_stalled_bodies(g, now);
    for (int missing = g->reserve - (g->cap - g->used); missing > 0; missing--) {
        struct slot *sl = longest_waiting(g, now);
        if (!sl)
            break;
        shutdown(sl->fd, SHUT_RDWR); /* its worker sees the end of the stream and closes */
        sl->dropped = true;
        atomic_fetch_add(&g->dropped, 1);
    }
    pthread_mutex_unlock(&g->lock);
}

static void *watchdog(void *arg)
{
    struct srv_guard *g = arg;
    uint64_t reported = 0;
    int64_t last_report = mono_ms();
    while (!atomic_load(&g->stop)) {
        struct timespec tick = {0, 20 * 1000000L};
        nanosleep(&tick, NULL);
        free_workers(g);
        uint64_t dropped = atomic_load(&g->dropped);
        if (dropped != reported && mono_ms() - last_report >= 10000) { /* at most every 10 s */
            srv_log(LOG_WARN,
                    "worker pool low: dropped %llu connections that waited longest for their "
                    "request head or body",
                    (unsigned long long)(dropped - reported));
            reported = dropped;
            last_report = mono_ms();
        }
    }
    return NULL;
}

int srv_guard_start(struct srv *s)
{
    struct srv_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->cap = s->opt.threads;
    g->body_timeout_ms = s->opt.request_timeout_ms;
    g->reserve = s->opt.threads / 8 > 2 ? s->opt.threads / 8 : 2;
    g->slots = calloc((size_t)g->cap, sizeof(*g->slots));
    pthread_mutex_init(&g->lock, NULL);
    if (!g->slots || pthread_create(&g->thread, NULL, watchdog, g) != 0) {
        free(g->slots);
        free(g);
        return -1;
    }
    s->guard = g;
    return 0;
}

void srv_guard_stop(struct srv *s)
{
    struct srv_guard *g = s->guard;
    if (!g)
        return;
    atomic_store(&g->stop, true);
    pthread_join(g->thread, NULL);
    s->guard = NULL; /* civetweb has stopped: no callback comes any more */
    pthread_mutex_destroy(&g->lock);
    free(g->slots);
    free(g);
}

int srv_guard_streams(struct srv_options *o)
{
    int most = o->threads / 2;
    if (o->max_streams < 0) {
        o->max_streams = most < 16 ? most : 16;
        return 0;
    }
    if (o->max_streams <= most)
        return 0;
    fprintf(stderr,
            "txstats-server: --max-streams %d leaves too few of the %d worker threads for other "
            "requests (streams hold theirs): at most %d (half of --threads)\n",
            o->max_streams, o->threads, most);
    return 2;
}
