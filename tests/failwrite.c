/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for the server's disk-error tests (test_ops.c): while the file named by
 * $TXSTATS_FAIL_WRITES exists, write() to a regular file fails with the errno its content names
 * ("ENOSPC", "EDQUOT", else EIO). Sockets, pipes and the terminal are left alone. No root, no
 * mount: the same on every machine.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The errno to fail with now, or 0. */
static int failing(int fd)
{
    const char *trigger = getenv("TXSTATS_FAIL_WRITES");
    struct stat st;
    if (!trigger || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    int t = open(trigger, O_RDONLY | O_CLOEXEC);
    if (t < 0)
        return 0;
    char name[16] = "";
    ssize_t n = read(t, name, sizeof(name) - 1);
    close(t);
    name[n > 0 ? n : 0] = '\0';
    return !strncmp(name, "ENOSPC", 6) ? ENOSPC : !strncmp(name, "EDQUOT", 6) ? EDQUOT : EIO;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    int e = failing(fd);
    if (e) {
        errno = e;
        return -1;
    }
    return real_write(fd, buf, len);
}
