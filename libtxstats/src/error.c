/* SPDX-License-Identifier: MIT */
/* Status texts and the version string. */
#include "txstats/txstats.h"

#define STR2(x) #x
#define STR(x)  STR2(x)

const char *txstats_strerror(int code)
{
    switch (code) {
    case TXSTATS_OK:
        return "success";
    case TXSTATS_EXPIRED:
        return "transaction is older than the window: valid, not stored";
    case TXSTATS_EFUTURE:
        return "timestamp is in the future";
    case TXSTATS_ERANGE:
        return "value out of range";
    case TXSTATS_EINVAL:
        return "invalid argument";
    case TXSTATS_ENOMEM:
        return "out of memory";
    case TXSTATS_ENOBUFS:
        return "buffer too small";
    case TXSTATS_EIO:
        return "input/output error";
    case TXSTATS_EFORMAT:
        return "not a valid snapshot, checkpoint or journal (corrupt, truncated or unsupported "
               "version)";
    case TXSTATS_DUPLICATE:
        return "idempotency key already used for this transaction: not counted again";
    case TXSTATS_ECONFLICT:
        return "idempotency key already used for a different transaction";
    case TXSTATS_EFULL:
        return "too many idempotency keys are held; retry once some expire";
    case TXSTATS_ELIMIT:
        return "too many entities are active (max_entities); known entities still accept "
               "transactions";
    case TXSTATS_EBUSY:
        return "the data directory is in use by another instance or process";
    default:
        return "unknown status code";
    }
}

const char *txstats_version(void)
{
    return STR(TXSTATS_VERSION_MAJOR) "." STR(TXSTATS_VERSION_MINOR) "." STR(TXSTATS_VERSION_PATCH);
}
