/*
 * errors.c — names of enum weft_err values.
 */
#include "weft.h"

/* Returns a static description of err. */
const char *weft_strerror(int err)
{
    switch (err) {
    case WEFT_OK: return "success";
    case WEFT_ERR_NOMEM: return "out of memory";
    case WEFT_ERR_INVAL: return "invalid argument";
    case WEFT_ERR_SPACE: return "buffer too small";
    case WEFT_ERR_PROTO: return "protocol error";
    case WEFT_ERR_IO: return "I/O error";
    case WEFT_ERR_CLOSED: return "connection closed";
    case WEFT_ERR_TIMEOUT: return "timed out";
    case WEFT_ERR_ADDRESS: return "bad address";
    case WEFT_ERR_TLS: return "TLS error";
    default: return "unknown error";
    }
}
