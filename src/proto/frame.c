/*
 * frame.c — incremental RFC 6455 frame parser and frame header encoder (sans-I/O).
 *
 * The parser consumes bytes split at any point: a partial header is kept in the parser (at
 * most 14 bytes), payload bytes are unmasked in place in the caller's buffer and handed back
 * as chunks. Nothing is allocated.
 */
#include <string.h>

#include "weft.h"

enum { ST_HEADER = 0, ST_PAYLOAD = 1, ST_ERROR = 2 };

#define MAX_LEN_63 UINT64_C(0x7fffffffffffffff)

/* Records a protocol error in the parser and the event. Returns WEFT_FRAME_ERROR. */
static enum weft_frame_event_type fail(struct weft_frame_parser *p, struct weft_frame_event *ev,
                                       uint16_t code, const char *reason)
{
    p->state = ST_ERROR;
    p->error_code = code;
    p->error_reason = reason;
    ev->type = WEFT_FRAME_ERROR;
    ev->close_code = code;
    ev->reason = reason;
    return WEFT_FRAME_ERROR;
}

/* Initialises a parser with the given limits (copied). */
void weft_frame_parser_init(struct weft_frame_parser *p, const struct weft_frame_limits *limits)
{
    memset(p, 0, sizeof *p);
    p->limits = *limits;
    if (p->limits.max_frame == 0 || p->limits.max_frame > MAX_LEN_63)
        p->limits.max_frame = MAX_LEN_63;
    p->state = ST_HEADER;
}

/* Header length implied by the first two bytes: 2, +2 or +8 for the extended length, +4 for
 * the mask. */
static unsigned header_length(uint8_t b1)
{
    unsigned n = 2;
    unsigned len7 = b1 & 0x7fu;
    if (len7 == 126)
        n += 2;
    else if (len7 == 127)
        n += 8;
    if (b1 & 0x80u)
        n += 4;
    return n;
}

/* Checks the rules that the first two bytes decide. Returns 0 or a close code, with *why. */
static uint16_t check_first_bytes(const struct weft_frame_limits *lim, uint8_t b0, uint8_t b1,
                                  const char **why)
{
    uint8_t rsv = (uint8_t)((b0 >> 4) & 7u);
    uint8_t op = b0 & 0x0fu;
    bool control = (op & 0x8u) != 0;

    if (rsv & ~lim->allowed_rsv) {
        *why = "reserved bits set without a negotiated extension";
        return WEFT_CLOSE_PROTOCOL;
    }
    if (!(op <= WEFT_OP_BINARY || (op >= WEFT_OP_CLOSE && op <= WEFT_OP_PONG))) {
        *why = "unknown opcode";
        return WEFT_CLOSE_PROTOCOL;
    }
    if (control && !(b0 & 0x80u)) {
        *why = "fragmented control frame";
        return WEFT_CLOSE_PROTOCOL;
    }
    if (control && (b1 & 0x7fu) > 125) {
        *why = "control frame payload over 125 bytes";
        return WEFT_CLOSE_PROTOCOL;
    }
    bool masked = (b1 & 0x80u) != 0;
    if (lim->role == WEFT_ROLE_SERVER && !masked) {
        *why = "unmasked frame from a client";
        return WEFT_CLOSE_PROTOCOL;
    }
    if (lim->role == WEFT_ROLE_CLIENT && masked) {
        *why = "masked frame from a server";
        return WEFT_CLOSE_PROTOCOL;
    }
    return 0;
}

/* Decodes a complete header at h (header_length(h[1]) bytes) into p->header and validates
 * the length. Returns 0 or a close code with *why. */
static uint16_t decode_header(struct weft_frame_parser *p, const uint8_t *h, const char **why)
{
    struct weft_frame_header *fh = &p->header;
    fh->fin = (h[0] & 0x80u) != 0;
    fh->rsv = (uint8_t)((h[0] >> 4) & 7u);
    fh->opcode = h[0] & 0x0fu;
    fh->masked = (h[1] & 0x80u) != 0;

    unsigned len7 = h[1] & 0x7fu;
    const uint8_t *q = h + 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)q[0] << 8 | q[1];
        q += 2;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | q[i];
        q += 8;
        if (len > MAX_LEN_63) {
            *why = "64-bit payload length with the most significant bit set";
            return WEFT_CLOSE_PROTOCOL;
        }
    }
    fh->length = len;
    if (fh->masked)
        memcpy(fh->mask, q, 4);
    else
        memset(fh->mask, 0, 4);
    if (len > p->limits.max_frame) {
        *why = "frame larger than the maximum frame size";
        return WEFT_CLOSE_TOO_BIG;
    }
    return 0;
}

/* Parses one event from data[0..len); see weft.h. */
enum weft_frame_event_type weft_frame_parse(struct weft_frame_parser *p, uint8_t *data,
                                            size_t len, size_t *consumed,
                                            struct weft_frame_event *ev)
{
    *consumed = 0;
    ev->data = NULL;
    ev->len = 0;
    ev->frame_end = false;

    if (p->state == ST_ERROR) {
        ev->type = WEFT_FRAME_ERROR;
        ev->close_code = p->error_code;
        ev->reason = p->error_reason;
        return WEFT_FRAME_ERROR;
    }

    if (p->state == ST_PAYLOAD) {
        ev->header = p->header;
        if (p->remaining > 0 && len == 0) {
            ev->type = WEFT_FRAME_NEED_MORE;
            return WEFT_FRAME_NEED_MORE;
        }
        size_t n = p->remaining < len ? (size_t)p->remaining : len;
        if (p->header.masked && n > 0)
            p->phase = (uint8_t)weft_mask(data, n, p->header.mask, p->phase);
        p->remaining -= n;
        *consumed = n;
        ev->type = WEFT_FRAME_DATA;
        ev->data = data;
        ev->len = n;
        ev->frame_end = p->remaining == 0;
        if (ev->frame_end)
            p->state = ST_HEADER;
        return WEFT_FRAME_DATA;
    }

    /* ST_HEADER: fast path when the whole header is in the input and nothing is buffered. */
    const uint8_t *h;
    size_t used;
    const char *why = NULL;
    uint16_t code;
    if (p->hlen == 0 && len >= 2 && len >= header_length(data[1])) {
        code = check_first_bytes(&p->limits, data[0], data[1], &why);
        if (code)
            return fail(p, ev, code, why);
        h = data;
        used = header_length(data[1]);
    } else {
        /* Slow path: accumulate header bytes in hbuf. */
        size_t in = 0;
        while (p->hlen < 2 && in < len)
            p->hbuf[p->hlen++] = data[in++];
        if (p->hlen < 2) {
            *consumed = in;
            ev->type = WEFT_FRAME_NEED_MORE;
            return WEFT_FRAME_NEED_MORE;
        }
        code = check_first_bytes(&p->limits, p->hbuf[0], p->hbuf[1], &why);
        if (code) {
            *consumed = in;
            return fail(p, ev, code, why);
        }
        unsigned need = header_length(p->hbuf[1]);
        size_t take = need - p->hlen;
        if (take > len - in)
            take = len - in;
        memcpy(p->hbuf + p->hlen, data + in, take);
        p->hlen = (uint8_t)(p->hlen + take);
        in += take;
        *consumed = in;
        if (p->hlen < need) {
            ev->type = WEFT_FRAME_NEED_MORE;
            return WEFT_FRAME_NEED_MORE;
        }
        h = p->hbuf;
        used = in;
    }

    code = decode_header(p, h, &why);
    p->hlen = 0;
    *consumed = used;
    if (code)
        return fail(p, ev, code, why);
    p->remaining = p->header.length;
    p->phase = 0;
    p->state = ST_PAYLOAD;
    ev->type = WEFT_FRAME_HEADER;
    ev->header = p->header;
    return WEFT_FRAME_HEADER;
}

/* Returns the header size for a payload of payload_len bytes. */
size_t weft_frame_header_size(uint64_t payload_len, bool masked)
{
    size_t n = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;
    return masked ? n + 4 : n;
}

/* Writes a frame header; see weft.h. Returns its length. */
size_t weft_frame_header_write(uint8_t *out, uint8_t opcode, bool fin, uint8_t rsv,
                               uint64_t payload_len, const uint8_t *mask)
{
    size_t n;
    uint8_t maskbit = mask ? 0x80u : 0;
    out[0] = (uint8_t)((fin ? 0x80u : 0) | (unsigned)(rsv & 7u) << 4 | (opcode & 0x0fu));
    if (payload_len < 126) {
        out[1] = (uint8_t)(maskbit | payload_len);
        n = 2;
    } else if (payload_len <= 0xffff) {
        out[1] = (uint8_t)(maskbit | 126u);
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = (uint8_t)(maskbit | 127u);
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* Encodes a whole frame into out; see weft.h. Returns its length or a negative weft_err. */
long weft_frame_encode(uint8_t *out, size_t cap, enum weft_role role, struct weft_random *rnd,
                       uint8_t opcode, bool fin, uint8_t rsv, const void *payload, size_t len)
{
    bool masked = role == WEFT_ROLE_CLIENT;
    if ((opcode & 0x8u) && (len > 125 || !fin))
        return WEFT_ERR_INVAL;
    if (masked && !rnd)
        return WEFT_ERR_INVAL;
    size_t hl = weft_frame_header_size(len, masked);
    if (cap < hl || cap - hl < len)
        return WEFT_ERR_SPACE;
    uint8_t key[4];
    if (masked)
        weft_random_bytes(rnd, key, sizeof key);
    size_t n = weft_frame_header_write(out, opcode, fin, rsv, len, masked ? key : NULL);
    if (len)
        memcpy(out + n, payload, len);
    if (masked)
        weft_mask(out + n, len, key, 0);
    return (long)(n + len);
}
