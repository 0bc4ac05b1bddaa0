/* SPDX-License-Identifier: MIT */
#include "trim.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#define TRIM_EVERY_S 5

static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static bool running, stop;

static void *trimmer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += TRIM_EVERY_S;
        while (!stop && pthread_cond_timedwait(&wake, &lock, &until) == 0)
            ;
        if (stop)
            break;
        pthread_mutex_unlock(&lock);
        malloc_trim(0); /* every arena: free pages released (madvise), not only the heap's top */
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int srv_trim_start(void)
{
    stop = false;
    running = pthread_create(&thread, NULL, trimmer, NULL) == 0;
    return running ? 0 : -1;
}

void srv_trim_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stop = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = false;
}
