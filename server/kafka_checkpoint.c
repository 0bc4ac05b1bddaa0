/* SPDX-License-Identifier: MIT */
/* Per-partition checkpoints of a cluster node: format and crash-safety in kafka_checkpoint.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "kafka_checkpoint.h"

#define META_MAX (16u << 20) /* a meta larger than this is not ours */

static int fail(char *err, size_t n, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, n, "checkpoint: %s %s: %s", what, path, strerror(e));
    errno = e;
    return -1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int srv_ckpt_open(const char *data_dir, const char *topic, char *dir, size_t dirn, int *lock_fd,
                  char *err, size_t errn)
{
    char base[1100], lock[1200];
    *lock_fd = -1;
    snprintf(base, sizeof(base), "%s/partitions", data_dir);
    if ((size_t)snprintf(dir, dirn, "%s/%s", base, topic) >= dirn) {
        snprintf(err, errn, "checkpoint: directory name too long");
        return -1;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return fail(err, errn, "cannot create", data_dir);
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        return fail(err, errn, "cannot create", base);
    snprintf(lock, sizeof(lock), "%s/lock", base);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errn, "cannot open", lock);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errn, "checkpoint: %s is in use by another process", base);
        close(fd);
        errno = EBUSY;
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        close(fd);
        return fail(err, errn, "cannot create", dir);
    }
    *lock_fd = fd;
    return 0;
}

void srv_ckpt_unlock(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd); /* releases the flock */
}

/* The meta's text, CRC line included, in a malloc'd buffer; NULL when out of memory. */
static char *meta_text(const struct srv_ckpt_meta *m, size_t *len)
{
    size_t cap = 512 + strlen(m->topic) + m->norigins * 48, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n,
                          "txstats-partition-checkpoint 1\ntopic %s\npartition %" PRId32
                          "\noffset %" PRId64 "\nwindow_ms %" PRId64 "\nsaved_ms %" PRId64
                          "\ntransactions %" PRIu64 "\nsnapshot %s\norigins %zu\n",
                          m->topic, m->partition, m->offset, m->window_ms, m->saved_ms,
                          m->transactions, m->snapshot, m->norigins);
    for (size_t i = 0; i < m->norigins; i++)
        n += (size_t)snprintf(s + n, cap - n, "%016" PRIx64 " %" PRIu64 "\n", m->origins[i].node,
                              m->origins[i].last);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)s, (uInt)n);
    n += (size_t)snprintf(s + n, cap - n, "crc %08" PRIx32 "\n", crc);
    *len = n;
    return s;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* `data` to dir/name through a temporary file, fsync, rename, fsync of the directory. */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len, char *err,
                        size_t errn)
{
    char tmp[1400], path[1400];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errn, "cannot create", tmp);
    bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    if (!ok || rename(tmp, path) != 0) {
        fail(err, errn, "cannot write", tmp);
        unlink(tmp);
        return -1;
    }
    return fsync_dir(dir) == 0 ? 0 : fail(err, errn, "cannot sync", dir);
}

/* Delete partition p's files other than its meta and the snapshot `keep` (older snapshots, and
 * temporary files a crash left). */
static void prune(const char *dir, int32_t p, const char *keep)
{
    char prefix[32], path[1400];
    int n = snprintf(prefix, sizeof(prefix), "p%" PRId32 "-", p);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)n) != 0 || strcmp(e->d_name, keep) == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

int srv_ckpt_write(const char *dir, txstats_t *w, struct srv_ckpt_meta *m, char *err, size_t errn)
{
    char path[1400], meta[32];
    snprintf(m->snapshot, sizeof(m->snapshot), "p%" PRId32 "-%" PRId64 ".bin", m->partition,
             m->offset);
    snprintf(path, sizeof(path), "%s/%s", dir, m->snapshot);
    m->saved_ms = wall_ms();
    int rc = txstats_save_bin(w, path); /* 4x faster to load than JSON */
    if (rc != TXSTATS_OK) {
        snprintf(err, errn, "checkpoint: cannot write %s: %s (%s)", path, txstats_strerror(rc),
                 strerror(errno));
        return -1;
    }
    size_t len;
    char *text = meta_text(m, &len);
    if (!text) {
        snprintf(err, errn, "checkpoint: out of memory");
        return -1;
    }
    snprintf(meta, sizeof(meta), "p%" PRId32 ".meta", m->partition);
    rc = write_atomic(dir, meta, text, len, err, errn);
    free(text);
    if (rc == 0)
        prune(dir, m->partition, m->snapshot);
    return rc;
}

/* The file at path, NUL-terminated, in a malloc'd buffer. Returns 0, 1 (no such file) or -1. */
static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    size_t size = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : META_MAX + 1;
    char *buf = size <= META_MAX ? malloc(size + 1) : NULL;
    size_t n = buf ? fread(buf, 1, size, f) : 0;
    int bad = !buf || ferror(f) || n != size;
    fclose(f);
    if (bad) {
        free(buf);
        errno = size > META_MAX ? EFBIG : EIO;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* The CRC line ends the text and matches what precedes it. */
static bool crc_ok(const char *s, size_t len)
{
    const char *last = len >= 13 ? s + len - 13 : NULL; /* "crc xxxxxxxx\n" */
    unsigned crc;
    char nl;
    if (!last || (last != s && last[-1] != '\n') || sscanf(last, "crc %8x%c", &crc, &nl) != 2 ||
        nl != '\n')
        return false;
    return crc == (uint32_t)crc32(0L, (const Bytef *)s, (uInt)(last - s));
}

/* The fixed lines; `at` receives where the origins begin. */
static bool parse_head(const char *s, struct srv_ckpt_meta *m, const char **at)
{
    int used = 0;
    if (sscanf(s,
               "txstats-partition-checkpoint 1\ntopic %255s\npartition %" SCNd32 "\noffset %" SCNd64
               "\nwindow_ms %" SCNd64 "\nsaved_ms %" SCNd64 "\ntransactions %" SCNu64
               "\nsnapshot %63s\norigins %zu\n%n",
               m->topic, &m->partition, &m->offset, &m->window_ms, &m->saved_ms, &m->transactions,
               m->snapshot, &m->norigins, &used) != 8 ||
        used == 0)
        return false;
    *at = s + used;
    return m->offset >= 0 && m->norigins < META_MAX / 16 && !strchr(m->snapshot, '/');
}

static bool parse_origins(const char *s, struct srv_ckpt_meta *m)
{
    m->origins = calloc(m->norigins ? m->norigins : 1, sizeof(*m->origins));
    if (!m->origins)
        return false;
    for (size_t i = 0; i < m->norigins; i++) {
        int used = 0;
        if (sscanf(s, "%16" SCNx64 " %" SCNu64 "\n%n", &m->origins[i].node, &m->origins[i].last,
                   &used) != 2 ||
            used == 0)
            return false;
        s += used;
    }
    return strncmp(s, "crc ", 4) == 0;
}

int srv_ckpt_read(const char *dir, int32_t p, struct srv_ckpt_meta *m, char *err, size_t errn)
{
    char path[1400], *text = NULL;
    size_t len = 0;
    const char *at;
    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "%s/p%" PRId32 ".meta", dir, p);
    int rc = slurp(path, &text, &len);
    if (rc != 0)
        return rc > 0 ? 1 : fail(err, errn, "cannot read", path);
    bool ok =
        crc_ok(text, len) && parse_head(text, m, &at) && m->partition == p && parse_origins(at, m);
    free(text);
    if (!ok) {
        srv_ckpt_meta_free(m);
        snprintf(err, errn, "checkpoint: %s is damaged (bad CRC or format)", path);
        return -1;
    }
    return 0;
}

int srv_ckpt_load(const char *dir, const struct srv_ckpt_meta *m, txstats_t *w,
                  uint64_t *approximate)
{
    char path[1400];
    txstats_load_info_t info = {0};
    snprintf(path, sizeof(path), "%s/%s", dir, m->snapshot);
    int rc = txstats_load_ex(w, path, &info); /* any format the library wrote */
    *approximate = rc == TXSTATS_OK ? info.approximate : 0;
    return rc;
}

void srv_ckpt_meta_free(struct srv_ckpt_meta *m)
{
    free(m->origins);
    m->origins = NULL;
    m->norigins = 0;
}
