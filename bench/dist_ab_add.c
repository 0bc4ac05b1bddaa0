/* SPDX-License-Identifier: MIT */
/*
 * The add of two builds of libtxstats in one process, alternating run by run, so that both see
 * the same machine noise (bench/dist_ab.sh). The workload is bench_dist's add: a fresh instance
 * with a fixed clock, 2,000,000 adds per thread of amounts spread over 1.00 ... 1,000,000.00 at
 * the last 50,000 milliseconds. Each round runs A then B, or B then A (every other round), on 1
 * thread and on 2; the medians over the rounds of B/A and of each side's 2-thread speed-up. On
 * one thread also the thread's CPU time (what preemption by other work does not add) and the
 * fastest run of each side (what other work slowed least).
 * usage: dist_ab_add LIB_A.so LIB_B.so [ROUNDS]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <txstats/txstats.h>

#include "bench_util.h"

#define PER        2000000
#define MAX_ROUNDS 99

struct lib {
    void (*config_init)(txstats_config_t *);
    int (*create)(txstats_t **, const txstats_config_t *);
    int (*add)(txstats_t *, txstats_amount_t, int64_t);
    void (*destroy)(txstats_t *);
};

static int64_t fixed_ms;
static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return fixed_ms;
}

static int load(const char *path, struct lib *l)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return -1;
    }
    *(void **)&l->config_init = dlsym(h, "txstats_config_init");
    *(void **)&l->create = dlsym(h, "txstats_create");
    *(void **)&l->add = dlsym(h, "txstats_add");
    *(void **)&l->destroy = dlsym(h, "txstats_destroy");
    return l->config_init && l->create && l->add && l->destroy ? 0 : -1;
}

struct job {
    const struct lib *l;
    txstats_t *t;
    double cpu_ns; /* the thread's CPU time, per add (one thread) */
};

static double cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *adder(void *arg)
{
    struct job *j = arg;
    double t0 = cpu_now_ns();
    for (long i = 0; i < PER; i++) /* bench_dist.c's amount_of() */
        j->l->add(j->t, 1000000 + (txstats_amount_t)((uint64_t)i * 2654435761u % 1000000000000u),
                  fixed_ms - i % 50000);
    j->cpu_ns = (cpu_now_ns() - t0) / PER;
    return NULL;
}

static double run(const struct lib *l, int threads, double *cpu_ns)
{
    txstats_config_t cfg;
    struct job j = {l, NULL, 0};
    l->config_init(&cfg);
    cfg.clock_ms = fixed_clock;
    if (getenv("BENCH_MAX_RETAINED")) /* as in bench_dist.c */
        cfg.max_retained = (size_t)atoll(getenv("BENCH_MAX_RETAINED"));
    if (l->create(&j.t, &cfg) != TXSTATS_OK)
        exit(1);
    double ns = run_threads(threads, adder, &j, PER);
    l->destroy(j.t);
    if (cpu_ns)
        *cpu_ns = j.cpu_ns;
    return ns;
}

int main(int argc, char **argv)
{
    struct lib lib[2];
    if (argc < 3 || load(argv[1], &lib[0]) || load(argv[2], &lib[1])) {
        fprintf(stderr, "usage: dist_ab_add LIB_A.so LIB_B.so [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 11;
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    fixed_ms = (int64_t)time(NULL) * 1000;
    double one[2][MAX_ROUNDS], two[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], up[2][MAX_ROUNDS];
    double ratio[MAX_ROUNDS], cratio[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int s = r % 2 ? 1 - k : k; /* ABAB..., then BABA... */
            one[s][r] = run(&lib[s], 1, &cpu[s][r]);
            two[s][r] = run(&lib[s], 2, NULL);
        }
        ratio[r] = one[1][r] / one[0][r];
        cratio[r] = cpu[1][r] / cpu[0][r];
        up[0][r] = one[0][r] / two[0][r];
        up[1][r] = one[1][r] / two[1][r];
        printf("round %2d: 1 thread %5.1f -> %5.1f ns (x%.3f; CPU x%.3f); 2 threads %5.1f -> %5.1f "
               "wall ns; speed-up %.2fx -> %.2fx\n",
               r + 1, one[0][r], one[1][r], ratio[r], cratio[r], two[0][r], two[1][r], up[0][r],
               up[1][r]);
    }
    printf("median over %d rounds: 1 thread %.1f -> %.1f ns, B/A %.3f (CPU time %.3f); 2-thread "
           "speed-up %.2fx -> %.2fx\n",
           rounds, median(one[0], rounds), median(one[1], rounds), median(ratio, rounds),
           median(cratio, rounds), median(up[0], rounds), median(up[1], rounds));
    printf("fastest of %d runs, 1 thread: %.1f -> %.1f ns, B/A %.3f\n", rounds, one[0][0],
           one[1][0], one[1][0] / one[0][0]); /* median() sorted them */
    return 0;
}
