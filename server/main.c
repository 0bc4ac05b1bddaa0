/* SPDX-License-Identifier: MIT */
/* txstats-server: start-up (options, the backend, civetweb), graceful shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guard.h"
#include "history.h"
#include "kafka_conf.h"
#include "server.h"
#include "trim.h"

static int read_admin_token(struct srv *s)
{
    const char *env = getenv("TXSTATS_ADMIN_TOKEN");
    char buf[sizeof(s->admin_token)] = "";
    if (s->opt.admin_token_file[0]) {
        FILE *f = fopen(s->opt.admin_token_file, "r");
        if (!f || !fgets(buf, sizeof(buf), f)) {
            fprintf(stderr, "txstats-server: --admin-token-file %s: %s\n", s->opt.admin_token_file,
                    f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return 2;
        }
        fclose(f);
    } else if (env) {
        snprintf(buf, sizeof(buf), "%s", env);
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    if ((s->opt.admin_token_file[0] || env) && strlen(buf) < 8) {
        fprintf(stderr, "txstats-server: the admin token must have at least 8 characters\n");
        return 2;
    }
    memcpy(s->admin_token, buf, sizeof(buf));
    s->admin_token_len = strlen(buf);
    return 0;
}

/* Cluster mode: the librdkafka properties, checked before anything connects (exit 2). */
static int check_kafka(const struct srv_options *o)
{
    char why[1024];
    if (!o->kafka_brokers[0]) {
        if (o->kafka_property.n > 0 || o->kafka_properties_file[0])
            srv_log(LOG_WARN, "Kafka properties are ignored without --kafka-brokers");
        if (o->kafka_ack != KAFKA_ACK_KAFKA)
            srv_log(LOG_WARN, "--kafka-ack is ignored without --kafka-brokers");
        return 0;
    }
    if (srv_kafka_conf_check(o, why, sizeof(why)) != 0) {
        fprintf(stderr, "txstats-server: %s\n", why);
        return 2;
    }
    return 0;
}

static int connection_opened(const struct mg_connection *c, void **data)
{
    struct srv *s = mg_get_user_data(mg_get_context(c));
    atomic_fetch_add(&s->connections, 1);
    srv_edge_open();
    return srv_guard_open(c, data);
}

static void connection_closed(const struct mg_connection *c)
{
    struct srv *s = mg_get_user_data(mg_get_context(c));
    srv_guard_close(c);
    atomic_fetch_sub(&s->connections, 1);
}

static void request_ended(const struct mg_connection *c, int status)
{
    srv_edge_request_end(c);
    srv_guard_end(c, status);
}

static int log_civetweb(const struct mg_connection *c, const char *msg)
{
    (void)c;
    srv_log(LOG_WARN, "civetweb: %s", msg);
    return 1;
}

static struct mg_context *start_http(struct srv *s)
{
    char threads[16], req_to[24], ka_to[24];
    snprintf(threads, sizeof(threads), "%d", s->opt.threads);
    snprintf(req_to, sizeof(req_to), "%lld", (long long)s->opt.request_timeout_ms);
    snprintf(ka_to, sizeof(ka_to), "%lld", (long long)s->opt.keep_alive_timeout_ms);
    /* enable_auth_domain_check no: an absolute-form target naming this port is served whatever
     * its host (RFC 9112 §3.2.2: a server MUST accept the absolute form). */
    const char *options[] = {"listening_ports",
                             s->opt.listen,
                             "num_threads",
                             threads,
                             "request_timeout_ms",
                             req_to,
                             "keep_alive_timeout_ms",
                             ka_to,
                             "enable_keep_alive",
                             "yes",
                             "tcp_nodelay",
                             "1",
                             "decode_url",
                             "no",
                             "listen_backlog",
                             "1024",
                             "max_request_size",
                             "16384",
                             "enable_auth_domain_check",
                             "no",
                             NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.log_message = log_civetweb;
    cb.init_connection = connection_opened;
    cb.connection_close = connection_closed;
    cb.begin_request = srv_guard_begin;
    cb.end_request = request_ended;
    cb.http_error = srv_http_error;
    struct mg_context *ctx = mg_start(&cb, s, options);
    if (!ctx)
        return NULL;
    mg_set_request_handler(ctx, "/", srv_handle, s);
    return ctx;
}

static void write_port_file(struct srv *s, struct mg_context *ctx)
{
    struct mg_server_port ports[4];
    char spans[TXSTATS_MAX_SPANS * SRV_SPAN_NAME];
    int n = mg_get_server_ports(ctx, 4, ports);
    srv_spans_names(&s->opt.spans, spans, sizeof(spans));
    srv_log(LOG_INFO, "txstats-server %s listening on %s (port %d), %d threads, window%s %s",
            txstats_version(), s->opt.listen, n > 0 ? ports[0].port : -1, s->opt.threads,
            s->opt.spans.n > 1 ? "s" : "", spans);
    if (!s->opt.port_file[0] || n <= 0)
        return;
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->opt.port_file);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%d\n", ports[0].port);
        fclose(f);
        rename(tmp, s->opt.port_file);
    }
}

struct stopping {
    struct mg_context *ctx;
    atomic_bool done;
};

static void *stop_http(void *arg)
{
    struct stopping *st = arg;
    mg_stop(st->ctx); /* stops accepting and waits for the workers to finish */
    atomic_store(&st->done, true);
    return NULL;
}

/* civetweb's accept loop notices the stop flag only when its poll times out (up to about 2 s);
 * a connection to our own port wakes it at once. */
static void nudge(const struct mg_server_port *p)
{
    int fd = socket((p->protocol == 2) ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)p->port)};
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a6.sin6_addr = in6addr_loopback;
    if (fd >= 0) {
        if ((p->protocol == 2))
            connect(fd, (struct sockaddr *)&a6, sizeof(a6));
        else
            connect(fd, (struct sockaddr *)&a4, sizeof(a4));
        close(fd);
    }
}

static void stop_quickly(struct mg_context *ctx)
{
    struct mg_server_port port;
    int have_port = mg_get_server_ports(ctx, 1, &port) > 0;
    struct stopping st = {.ctx = ctx};
    pthread_t th;
    pthread_create(&th, NULL, stop_http, &st);
    for (int i = 0; i < 100 && have_port && !atomic_load(&st.done); i++) {
        struct timespec ms20 = {0, 20 * 1000000};
        nanosleep(&ms20, NULL);
        if (!atomic_load(&st.done))
            nudge(&port);
    }
    pthread_join(th, NULL);
}

static bool is_loopback(const char *listen)
{
    return !strncmp(listen, "127.", 4) || !strncmp(listen, "[::1]", 5) ||
           !strncmp(listen, "localhost:", 10);
}

static int run(struct srv *s)
{
    if (srv_history_start(s) != 0)
        srv_log(LOG_WARN, "no statistics history for the dashboard: out of memory");
    if (srv_trim_start() != 0)
        srv_log(LOG_WARN, "no memory trimming thread: RSS may stay at its highest");
    if (txstats_dist_create(&s->scrape_dist, NULL) != TXSTATS_OK)
        s->scrape_dist = NULL; /* every scrape makes its own */
    struct mg_context *ctx = srv_guard_start(s) == 0 ? start_http(s) : NULL;
    if (!ctx) {
        srv_trim_stop();
        srv_history_stop(s);
        txstats_dist_destroy(s->scrape_dist);
        s->scrape_dist = NULL;
        srv_log(LOG_ERROR, "cannot listen on %s (address in use, or not an address:port)",
                s->opt.listen);
        return 1;
    }
    if (s->admin_token_len == 0) /* on stderr, the log, unless --log-level error */
        srv_log(LOG_WARN,
                "no admin token (--admin-token-file or TXSTATS_ADMIN_TOKEN): anyone who can "
                "connect to %s%s may DELETE all transactions",
                s->opt.listen,
                is_loopback(s->opt.listen) ? " (any user or process on this machine)"
                                           : ", beyond loopback,");
    write_port_file(s, ctx);
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    srv_log(LOG_INFO, "%s: stopping (finishing requests in flight, then saving)", strsignal(sig));
    atomic_store(&s->stopping, true); /* streams end */
    if (s->backend.ops->stopping)
        s->backend.ops->stopping(s->backend.self);
    stop_quickly(ctx);
    srv_guard_stop(s);
    srv_history_stop(s);
    srv_trim_stop();
    int rc = s->backend.ops->stop(s->backend.self);
    txstats_dist_destroy(s->scrape_dist);
    s->scrape_dist = NULL;
    srv_log(rc ? LOG_ERROR : LOG_INFO, "stopped%s", rc ? ": the final checkpoint failed" : "");
    return rc;
}

/* glibc's malloc, bounded on purpose (README, "Memory of the server"). Measured on 2 cores,
 * POST/s does not change between 1 and 16 arenas (malloc is not what limits a POST),
 * while every arena may keep freed memory of its own; glibc's default is 8 per core (16 on 2
 * cores, 512 on 64). And a fixed mmap threshold: glibc raises it to the size of any large
 * block freed (up to 32 MiB), after which blocks of that size come from an arena and their
 * memory may stay there after free (likely the +27 MiB step of issue 23, when a checkpoint
 * still copied the whole window). Fixed, a block of 256 KiB or more is always mapped and
 * unmapped. MALLOC_ARENA_MAX,
 * MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES in the environment override either. */
#define SRV_ARENA_MAX      4
#define SRV_MMAP_THRESHOLD (256 * 1024)

static void bound_malloc(void)
{
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (!getenv("MALLOC_ARENA_MAX") && !(tunables && strstr(tunables, "arena_max")))
        mallopt(M_ARENA_MAX, SRV_ARENA_MAX);
    if (!getenv("MALLOC_MMAP_THRESHOLD_") && !(tunables && strstr(tunables, "mmap_threshold")))
        mallopt(M_MMAP_THRESHOLD, SRV_MMAP_THRESHOLD);
}

int main(int argc, char **argv)
{
    static struct srv s;
    bound_malloc();
    int rc = srv_parse_options(argc, argv, &s.opt);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (srv_guard_streams(&s.opt) != 0)
        return 2;
    if (read_admin_token(&s) != 0)
        return 2;
    srv_log_threshold = s.opt.log_level;
    if (check_kafka(&s.opt) != 0)
        return 2;
    if (s.opt.listen[0] == '[' && !mg_check_feature(8)) {
        fprintf(stderr,
                "txstats-server: --listen %s: this build of civetweb has no IPv6 support "
                "(Debian's libcivetweb is built without it); use an IPv4 address\n",
                s.opt.listen);
        return 2;
    }
    if (s.opt.access_log[0]) {
        s.access_log = !strcmp(s.opt.access_log, "-") ? stderr : fopen(s.opt.access_log, "a");
        if (!s.access_log) {
            fprintf(stderr, "txstats-server: --access-log %s: %s\n", s.opt.access_log,
                    strerror(errno));
            return 2;
        }
        setvbuf(s.access_log, NULL, _IOLBF, 0);
    }
    /* Signals are taken by sigwait in the main thread only; every other thread blocks them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.started_ms = srv_now_ms();
    mg_init_library(0);
    if (s.opt.kafka_brokers[0]) /* cluster mode: Kafka is the log */
        rc = srv_backend_kafka_start(&s.opt, &s.backend);
    else
        rc = srv_backend_local_start(&s.opt, &s.backend);
    rc = rc == 0 ? run(&s) : 1;
    mg_exit_library();
    return rc;
}
