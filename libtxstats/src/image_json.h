/* SPDX-License-Identifier: MIT */
/*
 * Internal: the JSON form of an image, version 2 of txstats_save()'s readable format (leaf
 * codec: it knows no window; it reads image blocks and writes text, or reads text and builds an
 * image in memory). One JSON array per image record, in the image's order (image.h):
 *
 *   {"format":"libtxstats-snapshot","version":2,"records":[
 *    ["H",window_ms,saved_at_ms,sections,0],
 *    ["P","<32 hex digits of the entities' hash key>","<8192 hex digits: a section a bucket>"],
 *    ["S",section],
 *    ["N",index,"<the entity's key in hex>"],
 *    ["T",ts,[[index,"amount"],...]],
 *    ["A",ts,["amount",...]],                    amounts as decimal strings ("12.50")
 *    ["B",ts,[bucket,...]],
 *    ["C",ts,count,"sum","min","max",[[bucket,count],...]],
 *    ["X",ts],
 *    ["K",[["<32 hex digits of the key digest>","<16 hex fingerprint>",expires_ms,status],...]],
 *    ["E",cells,count,kept,keys]]}
 *
 * Version 1 (libtxstats 0.1: "count", "sum", "cells", "keys" members) is read by snapshot.c.
 */
#ifndef TXSTATS_IMAGE_JSON_H
#define TXSTATS_IMAGE_JSON_H

#include "fileio.h"
#include "image.h"

/* A writer of JSON text from an image's bytes. */
struct txstats__img_json {
    txstats__emit_fn emit;
    void *ctx;
    bool started; /* the image's magic was seen */
    bool any;     /* a record was written */
};

void txstats__img_json_start(struct txstats__img_json *j, txstats__emit_fn emit, void *ctx);
/* A txstats__emit_fn taking an image's bytes as the collector writes them: its 8-byte magic,
 * then whole sealed blocks, one per call. 0 or -1 with errno. */
int txstats__img_json_emit(void *json, const void *data, size_t len);
/* The closing text: 0 or -1 with errno. */
int txstats__img_json_finish(struct txstats__img_json *j);

/* A version 2 JSON snapshot into an image in memory (freed with `mem`): TXSTATS_OK,
 * TXSTATS_EFORMAT, TXSTATS_ENOMEM, or TXSTATS_EINVAL for a JSON snapshot of another version
 * (snapshot.c reads version 1). The image's own checks (install.h) come after. */
int txstats__img_from_json(const struct txstats__mem *mem, const char *data, size_t len,
                           uint8_t **image, size_t *image_len);

#endif
