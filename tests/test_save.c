/* SPDX-License-Identifier: MIT */
/* Snapshots: round trip, atomic save, all-or-nothing load of damaged files. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/txstats-test-save-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/snapshot.json", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *p, const char *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* 3 shards, skew, a capped listing, values at the range limits. */
static txstats_t *populated(struct fake_clock *clk, size_t max_retained)
{
    txstats_config_t cfg;
    txstats_t *t;
    txstats_config_init(&cfg);
    clk->now = T0;
    cfg.clock_ms = fake_clock_read;
    cfg.clock_ctx = clk;
    cfg.max_skew_ms = 50;
    cfg.shards = 3;
    cfg.max_retained = max_retained;
    assert_int_equal(txstats_create(&t, &cfg), TXSTATS_OK);
    for (int i = 0; i < 1500; i++)
        assert_int_equal(txstats_add(t, (i * 7919) % 2000001 - 1000000, T0 - (i * 37) % 60000),
                         TXSTATS_OK);
    assert_int_equal(txstats_add(t, TXSTATS_AMOUNT_LIMIT - 1, T0 - 3), TXSTATS_OK);
    assert_int_equal(txstats_add(t, -TXSTATS_AMOUNT_LIMIT + 1, T0 - 3), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("0.000001"), T0 + 50), TXSTATS_OK); /* ahead, skew */
    return t;
}

static void test_round_trip(void **state)
{
    static const size_t caps[] = {TXSTATS_DEFAULT_MAX_RETAINED, 100};
    for (size_t k = 0; k < 2; k++) {
        struct fake_clock c1, c2;
        txstats_t *a = populated(&c1, caps[k]);
        assert_int_equal(txstats_save(a, path), TXSTATS_OK);
        txstats_t *b = make_instance(&c2, T0, 60000, 50, 2);
        assert_int_equal(txstats_add(b, 123, T0), TXSTATS_OK); /* replaced by the load */
        assert_int_equal(txstats_load(b, path), TXSTATS_OK);
        assert_same_window(a, b);
        c1.now = c2.now = T0 + 50; /* the future entry becomes active in both */
        assert_same_window(a, b);
        c1.now = c2.now = T0 + 30000;
        assert_same_window(a, b);
        txstats_destroy(a);
        txstats_destroy(b);
    }
    /* No temporary file is left behind. */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
}

static void test_load_drops_expired(void **state)
{
    struct fake_clock c1, c2;
    txstats_t *a = make_instance(&c1, T0, 60000, 0, 2);
    assert_int_equal(txstats_add(a, amt("1"), T0 - 50000), TXSTATS_OK);
    assert_int_equal(txstats_add(a, amt("2"), T0 - 100), TXSTATS_OK);
    assert_int_equal(txstats_save(a, path), TXSTATS_OK);
    txstats_t *b = make_instance(&c2, T0 + 20000, 60000, 0, 2); /* 20 s later */
    assert_int_equal(txstats_load(b, path), TXSTATS_OK);
    assert_stats(b, "2.00", "2.00", "2.00", "2.00", 1);
    txstats_tx_t buf[4];
    size_t n;
    assert_int_equal(txstats_get(b, buf, 4, &n), TXSTATS_OK);
    assert_int_equal(n, 1);
    txstats_destroy(a);
    txstats_destroy(b);
}

/* A loaded-into instance that must stay exactly as it was. */
static void assert_load_fails(const char *p, int want)
{
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_add(t, amt("4.20"), T0 - 1), TXSTATS_OK);
    int rc = txstats_load(t, p);
    if (rc != want)
        fail_msg("load: %d (%s), want %d", rc, txstats_strerror(rc), want);
    assert_stats(t, "4.20", "4.20", "4.20", "4.20", 1);
    txstats_destroy(t);
}

static void test_truncated_everywhere(void **state)
{
    struct fake_clock clk;
    txstats_t *a = make_instance(&clk, T0, 60000, 0, 2);
    for (int i = 0; i < 40; i++)
        assert_int_equal(txstats_add(a, i * 1000001, T0 - i * 3), TXSTATS_OK);
    assert_int_equal(txstats_save(a, path), TXSTATS_OK);
    txstats_destroy(a);
    size_t len;
    char *doc = read_all(path, &len);
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/cut.json", dir);
    /* Every prefix that drops part of the JSON value; the last bytes are only "\n" after "}". */
    for (size_t cut = 0; cut + 2 < len; cut++) {
        write_file(bad, doc, cut);
        assert_load_fails(bad, TXSTATS_EFORMAT);
    }
    free(doc);
}

/* txstats_save_bin: txstats_load reads it back exactly; every truncation or flipped byte is
 * refused (its CRC-32C) and leaves the instance as it was. */
static void test_binary(void **state)
{
    struct fake_clock c1, c2;
    txstats_t *a = populated(&c1, 100);
    assert_int_equal(txstats_save_bin(a, path), TXSTATS_OK);
    txstats_t *b = make_instance(&c2, T0, 60000, 50, 2);
    assert_int_equal(txstats_load(b, path), TXSTATS_OK);
    assert_same_window(a, b);
    c1.now = c2.now = T0 + 30000;
    assert_same_window(a, b);
    txstats_destroy(a);
    txstats_destroy(b);
    size_t len;
    char *doc = read_all(path, &len), bad[160];
    snprintf(bad, sizeof(bad), "%s/cut.bin", dir);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
        write_file(bad, doc, cut);
        assert_load_fails(bad, TXSTATS_EFORMAT);
    }
    for (size_t at = 0; at < len; at += 1 + at / 32) {
        doc[at] ^= 0x10;
        write_file(bad, doc, len);
        assert_load_fails(bad, TXSTATS_EFORMAT);
        doc[at] ^= 0x10;
    }
    free(doc);
}

static void test_corrupt(void **state)
{
    static const char *docs[] = {
        "not json",
        "[]",
        "{\"format\":\"libtxstats-snapshot\",\"version\":2,\"count\":0,\"sum\":\"0.00\",\"cells\":["
        "]}",
        "{\"format\":\"other\",\"version\":1,\"count\":0,\"sum\":\"0.00\",\"cells\":[]}",
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":0,\"sum\":\"0.00\"}",
        /* the count does not match the cells */
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":2,\"sum\":\"1.00\","
        "\"cells\":[[1531821591311,1,\"1.00\",\"1.00\",\"1.00\",[\"1.00\"]]]}",
        /* a digit changed in a retained amount: the cell's sum disagrees */
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":1,\"sum\":\"1.00\","
        "\"cells\":[[1531821591311,1,\"1.00\",\"1.00\",\"1.00\",[\"7.00\"]]]}",
        /* min above max */
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":2,\"sum\":\"3.00\","
        "\"cells\":[[1531821591311,2,\"3.00\",\"2.00\",\"1.00\",[]]]}",
        /* cells out of order */
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":2,\"sum\":\"2.00\","
        "\"cells\":[[1531821591311,1,\"1.00\",\"1.00\",\"1.00\",[]],"
        "[1531821591310,1,\"1.00\",\"1.00\",\"1.00\",[]]]}",
        /* an amount out of range, a fractional timestamp, trailing garbage */
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":1,\"sum\":\"1000000000000."
        "00\","
        "\"cells\":[[1531821591311,1,\"1000000000000.00\",\"1000000000000.00\","
        "\"1000000000000.00\",[]]]}",
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":1,\"sum\":\"1.00\","
        "\"cells\":[[1531821591311.5,1,\"1.00\",\"1.00\",\"1.00\",[]]]}",
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":0,\"sum\":\"0.00\","
        "\"cells\":[]} x",
    };
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/bad.json", dir);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        write_file(bad, docs[i], strlen(docs[i]));
        assert_load_fails(bad, TXSTATS_EFORMAT);
    }
    write_file(bad, "", 0);
    assert_load_fails(bad, TXSTATS_EFORMAT);
    /* The same good document loads. */
    const char *good =
        "{\"format\":\"libtxstats-snapshot\",\"version\":1,\"count\":1,\"sum\":\"1.00\","
        "\"cells\":[[1531821591311,1,\"1.00\",\"1.00\",\"1.00\",[\"1.00\"]]]}";
    write_file(bad, good, strlen(good));
    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_load(t, bad), TXSTATS_OK);
    assert_stats(t, "1.00", "1.00", "1.00", "1.00", 1);
    txstats_destroy(t);
}

static void test_io_errors(void **state)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/missing.json", dir);
    assert_load_fails(p, TXSTATS_EIO);
    assert_load_fails(dir, TXSTATS_EIO); /* a directory */

    struct fake_clock clk;
    txstats_t *t = make_instance(&clk, T0, 60000, 0, 2);
    assert_int_equal(txstats_add(t, 1, T0), TXSTATS_OK);
    snprintf(p, sizeof(p), "%s/no/such/dir/s.json", dir);
    errno = 0;
    assert_int_equal(txstats_save(t, p), TXSTATS_EIO);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(txstats_save(t, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_load(t, NULL), TXSTATS_EINVAL);
    assert_int_equal(txstats_save(NULL, path), TXSTATS_EINVAL);
    if (geteuid() != 0) { /* root ignores permissions */
        char ro[96];
        snprintf(ro, sizeof(ro), "%s/ro", dir);
        assert_int_equal(mkdir(ro, 0500), 0);
        snprintf(p, sizeof(p), "%s/s.json", ro);
        assert_int_equal(txstats_save(t, p), TXSTATS_EIO);
    }
    txstats_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_drops_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
    };
    return cmocka_run_group_tests_name("save", tests, NULL, NULL);
}
