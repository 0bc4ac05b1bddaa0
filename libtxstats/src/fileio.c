/* SPDX-License-Identifier: MIT */
/* File I/O through the instance's file layer (txstats_io_t): whole writes, atomic replacement,
 * whole reads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

int txstats__io_write(const txstats_io_t *io, int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = io && io->write ? io->write(fd, p, len, io->ctx) : write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int txstats__io_sync(const txstats_io_t *io, int fd)
{
    return io && io->sync ? io->sync(fd, io->ctx) : fdatasync(fd);
}

static int read_fd(const struct txstats__mem *mem, int fd, size_t size, char **data)
{
    *data = txstats__alloc(mem, size ? size : 1);
    if (!*data)
        return TXSTATS_ENOMEM;
    for (size_t got = 0; got < size;) {
        ssize_t r = read(fd, *data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            txstats__free(mem, *data);
            errno = e;
            return TXSTATS_EIO;
        }
        got += (size_t)r;
    }
    return TXSTATS_OK;
}

int txstats__read_all(const struct txstats__mem *mem, int dirfd, const char *name, uint64_t max,
                      char **data, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return TXSTATS_EIO;
    int rc = TXSTATS_OK;
    if (fstat(fd, &st) != 0)
        rc = TXSTATS_EIO;
    else if (!S_ISREG(st.st_mode))
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL, rc = TXSTATS_EIO;
    else if ((uint64_t)st.st_size > max)
        errno = EFBIG, rc = TXSTATS_EFORMAT;
    else
        rc = read_fd(mem, fd, (size_t)st.st_size, data);
    int e = errno;
    close(fd);
    errno = e;
    if (rc == TXSTATS_OK)
        *len = (size_t)st.st_size;
    return rc;
}

/* Buffered output to a file descriptor. */
struct out {
    const txstats_io_t *io;
    int fd;
    size_t n;
    uint64_t bytes;
    char buf[1 << 16];
};

static int flush_out(struct out *o)
{
    if (o->n && txstats__io_write(o->io, o->fd, o->buf, o->n) != 0)
        return -1;
    o->bytes += o->n;
    o->n = 0;
    return 0;
}

static int emit_out(void *ctx, const void *data, size_t len)
{
    struct out *o = ctx;
    if (o->n + len > sizeof(o->buf) && flush_out(o) != 0)
        return -1;
    if (len > sizeof(o->buf)) {
        if (txstats__io_write(o->io, o->fd, data, len) != 0)
            return -1;
        o->bytes += len;
        return 0;
    }
    memcpy(o->buf + o->n, data, len);
    o->n += len;
    return 0;
}

static int fill(const txstats_io_t *io, int fd, txstats__produce_fn produce, void *ctx,
                struct out *o)
{
    o->io = io;
    o->fd = fd;
    o->n = 0;
    o->bytes = 0;
    if (produce(ctx, emit_out, o) != 0 || flush_out(o) != 0 || txstats__io_sync(io, fd) != 0)
        return -1;
    return 0;
}

int txstats__write_atomic(const struct txstats__mem *mem, const txstats_io_t *io, int dirfd,
                          const char *name, txstats__produce_fn produce, void *ctx, uint64_t *bytes)
{
    static _Atomic unsigned serial;
    char tmp[300];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", name, (long)getpid(),
                 atomic_fetch_add(&serial, 1)) >= (int)sizeof(tmp))
        return errno = ENAMETOOLONG, TXSTATS_EIO;
    struct out *o = txstats__alloc(mem, sizeof(*o));
    if (!o)
        return TXSTATS_ENOMEM;
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fill(io, fd, produce, ctx, o) == 0;
    int e = errno;
    ok = (fd < 0 || close(fd) == 0) && ok;
    ok = ok && renameat(dirfd, tmp, dirfd, name) == 0;
    ok = ok && txstats__io_sync(io, dirfd) == 0; /* the new name must survive a crash */
    e = ok ? e : errno ? errno : e;
    if (!ok && fd >= 0)
        unlinkat(dirfd, tmp, 0);
    if (ok && bytes)
        *bytes = o->bytes;
    txstats__free(mem, o);
    errno = e;
    return ok ? TXSTATS_OK : TXSTATS_EIO;
}

int txstats__write_atomic_path(const struct txstats__mem *mem, const txstats_io_t *io,
                               const char *path, txstats__produce_fn produce, void *ctx,
                               uint64_t *bytes)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if ((size_t)(slash - path) >= sizeof(dir))
        return errno = ENAMETOOLONG, TXSTATS_EIO;
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (slash && !slash[1])
        return errno = EISDIR, TXSTATS_EIO;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return TXSTATS_EIO;
    int rc = txstats__write_atomic(mem, io, dirfd, slash ? slash + 1 : path, produce, ctx, bytes);
    int e = errno;
    close(dirfd);
    errno = e;
    return rc;
}
