/* SPDX-License-Identifier: MIT */
/* civetweb's own ceiling for the benchmark: the same server options as txstats-server, a handler
 * that reads the body, parses it with cJSON and answers 201; GET answers a fixed JSON. One write
 * per response, as txstats-server does.
 * usage: bare_civetweb PORT THREADS */
#include <cjson/cJSON.h>
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int handler(struct mg_connection *c, void *cbdata)
{
    (void)cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!strcmp(ri->request_method, "POST")) {
        char body[4096];
        int n = 0, r;
        while (n < (int)sizeof(body) && (r = mg_read(c, body + n, sizeof(body) - (size_t)n)) > 0)
            n += r;
        cJSON *j = cJSON_ParseWithLength(body, (size_t)n);
        int ok = j && cJSON_IsObject(j);
        cJSON_Delete(j);
        static const char created[] = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        mg_write(c, ok ? created : bad, ok ? sizeof(created) - 1 : sizeof(bad) - 1);
        return ok ? 201 : 400;
    }
    static const char stats[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 65\r\n\r\n"
        "{\"sum\":\"12.43\",\"avg\":\"6.22\",\"max\":\"12.33\",\"min\":\"0.10\",\"count\":2}";
    mg_write(c, stats, sizeof(stats) - 1);
    return 200;
}

int main(int argc, char **argv)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argc > 1 ? argv[1] : "8091");
    const char *options[] = {"listening_ports",
                             listen,
                             "num_threads",
                             argc > 2 ? argv[2] : "128",
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             "2000",
                             "request_timeout_ms",
                             "10000",
                             "tcp_nodelay",
                             "1",
                             "listen_backlog",
                             "1024",
                             NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    mg_init_library(0);
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (!ctx)
        return 1;
    mg_set_request_handler(ctx, "/", handler, NULL);
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigwait(&set, &sig);
    mg_stop(ctx);
    return 0;
}
