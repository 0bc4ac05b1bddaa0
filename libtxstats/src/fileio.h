/* SPDX-License-Identifier: MIT */
/* Internal: file I/O through the instance's file layer (leaf: calls only the allocator). */
#ifndef TXSTATS_FILEIO_H
#define TXSTATS_FILEIO_H

#include <stdint.h>

#include "alloc.h"
#include "txstats/txstats.h"

/* Where encoders write: 0, or -1 with errno set (they stop at the first failure). */
typedef int (*txstats__emit_fn)(void *ctx, const void *data, size_t len);

/* All of `len` bytes, retrying short writes and EINTR: 0, or -1 with errno (ENOSPC for a write
 * that makes no progress). */
int txstats__io_write(const txstats_io_t *io, int fd, const void *buf, size_t len);
/* fdatasync through the layer: 0 or -1 with errno. */
int txstats__io_sync(const txstats_io_t *io, int fd);

/* A whole regular file, `name` relative to `dirfd` (AT_FDCWD: the current directory), at most
 * `max` bytes, into memory from `mem`: TXSTATS_OK, TXSTATS_EIO (errno), TXSTATS_ENOMEM, or
 * TXSTATS_EFORMAT past `max`. */
int txstats__read_all(const struct txstats__mem *mem, int dirfd, const char *name, uint64_t max,
                      char **data, size_t *len);

/* Write a file atomically: `produce` writes the contents through `emit` into a temporary file
 * beside `name`; then fsync, rename over `name`, fsync the directory. On failure nothing is
 * replaced and the temporary file is gone. `bytes` (may be NULL) receives the size written.
 * TXSTATS_OK, TXSTATS_EIO (errno) or TXSTATS_ENOMEM. */
typedef int (*txstats__produce_fn)(void *ctx, txstats__emit_fn emit, void *emit_ctx);
int txstats__write_atomic(const struct txstats__mem *mem, const txstats_io_t *io, int dirfd,
                          const char *name, txstats__produce_fn produce, void *ctx,
                          uint64_t *bytes);
/* The same for a path (its directory is opened for the rename). */
int txstats__write_atomic_path(const struct txstats__mem *mem, const txstats_io_t *io,
                               const char *path, txstats__produce_fn produce, void *ctx,
                               uint64_t *bytes);

#endif
