/*
 * close.c — close frame payloads (RFC 6455 §5.5.1, §7.4): validation and construction.
 */
#include <string.h>

#include "weft.h"

/* True if code may be sent in a close frame: RFC 6455's 1000-1003 and 1007-1011, the codes
 * IANA registered since (1012 service restart, 1013 try again later, 1014 bad gateway: weft's
 * own server sends 1012 when it drains and its client obeys 1012/1013 as reconnect hints, as
 * Node ws and Python websockets do), and the application/library ranges 3000-4999. Everything
 * else (0-999, 1004-1006, 1015, 1016-2999, >= 5000) is invalid on the wire. */
bool weft_close_code_valid(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    if (code >= 3000 && code <= 4999)
        return true;
    return false;
}

/* Parses a close payload; see weft.h. Returns 0 or the close code to answer with. */
uint16_t weft_close_parse(const uint8_t *payload, size_t len, uint16_t *code, const char **reason,
                          size_t *reason_len)
{
    *reason = NULL;
    *reason_len = 0;
    if (len == 0) {
        *code = WEFT_CLOSE_NO_STATUS;
        return 0;
    }
    if (len == 1)
        return WEFT_CLOSE_PROTOCOL;
    unsigned c = (unsigned)payload[0] << 8 | payload[1];
    if (!weft_close_code_valid(c))
        return WEFT_CLOSE_PROTOCOL;
    if (!weft_utf8_valid(payload + 2, len - 2))
        return WEFT_CLOSE_INVALID_DATA;
    *code = (uint16_t)c;
    *reason = (const char *)payload + 2;
    *reason_len = len - 2;
    return 0;
}

/* Builds a close payload; see weft.h. Returns its length. */
size_t weft_close_payload(uint8_t out[125], uint16_t code, const char *reason, size_t reason_len)
{
    if (code == 0)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (!reason)
        reason_len = 0;
    if (reason_len > 123) {
        reason_len = 123;
        /* Do not cut a UTF-8 sequence in half: back up over continuation bytes. */
        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xc0u) == 0x80u)
            reason_len--;
    }
    if (reason_len)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}
