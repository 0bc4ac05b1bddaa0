/* SPDX-License-Identifier: MIT */
/* The strict RFC 8259 validator (server/json_check.c) against cJSON's verdict: whatever cJSON
 * rejects, the validator must reject too (it is the stricter of the two), and it never crashes. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "json.h"
#include "json_check.h"

/* cJSON's own verdict: one value, then only what it takes for whitespace (bytes up to 0x20). */
static int cjson_accepts(const char *text, size_t size)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root)
        return 0;
    cJSON_Delete(root);
    for (const char *p = end; p < text + size; p++)
        if ((unsigned char)*p > 0x20)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *text = (const char *)data;
    struct json_check_error e = {0, NULL};
    int v = json_check(text, size, SRV_MAX_NESTING, &e);
    if (v == JSON_INVALID || v == JSON_TOO_DEEP) {
        if (!e.what || e.offset > size)
            abort();
        return 0;
    }
    if (v != JSON_VALID)
        abort();
    if (!cjson_accepts(text, size)) /* the validator let through what cJSON refuses */
        abort();
    return 0;
}
