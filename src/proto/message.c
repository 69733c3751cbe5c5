/*
 * message.c — the message assembler: RFC 6455 sequencing rules on top of the frame parser.
 *
 * It checks continuation/fragmentation order, the maximum message size, UTF-8 of text
 * messages (incrementally, fail-fast, across frames) and close payloads, and collects control
 * frames whose payload arrives in pieces into a 125-byte buffer. Data is never copied: chunks
 * point into the caller's buffer.
 */
#include <string.h>

#include "weft.h"

#define NO_LIMIT UINT64_C(0x7fffffffffffffff)

/* Initialises an assembler with the given limits. */
void weft_msg_parser_init(struct weft_msg_parser *p, const struct weft_msg_limits *limits)
{
    memset(p, 0, sizeof *p);
    weft_frame_parser_init(&p->fp, &limits->frame);
    p->max_message = limits->max_message ? limits->max_message : NO_LIMIT;
    p->validate_utf8 = limits->validate_utf8;
}

/* True when nothing is pending between calls; see weft.h. The frame parser is between frames
 * when it waits for a header and holds no byte of it. */
bool weft_msg_parser_idle(const struct weft_msg_parser *p)
{
    return p->error_code == 0 && p->msg_opcode == 0 && !p->ctrl_active && p->fp.hlen == 0 &&
           p->fp.state == 0 /* ST_HEADER */;
}

/* Puts the assembler in its sticky error state and fills ev. Returns WEFT_MSG_ERROR. */
static enum weft_msg_event_type fail(struct weft_msg_parser *p, struct weft_msg_event *ev,
                                     uint16_t code, const char *reason)
{
    if (!p->error_code) {
        p->error_code = code;
        p->error_reason = reason;
    }
    ev->type = WEFT_MSG_ERROR;
    ev->close_code = p->error_code;
    ev->reason = p->error_reason;
    return WEFT_MSG_ERROR;
}

/* Handles the header of a new frame. Returns 0 or a close code with *why. */
static uint16_t on_header(struct weft_msg_parser *p, const struct weft_frame_header *h,
                          const char **why)
{
    if (h->opcode & 0x8u) {
        if (h->rsv) {
            *why = "reserved bits set on a control frame";
            return WEFT_CLOSE_PROTOCOL;
        }
        p->ctrl_active = true;
        p->ctrl_len = 0;
        return 0;
    }
    if (h->opcode == WEFT_OP_CONT) {
        if (!p->msg_opcode) {
            *why = "continuation frame with nothing to continue";
            return WEFT_CLOSE_PROTOCOL;
        }
        if (h->rsv) {
            *why = "reserved bits set on a continuation frame";
            return WEFT_CLOSE_PROTOCOL;
        }
    } else {
        if (p->msg_opcode) {
            *why = "new data frame inside a fragmented message";
            return WEFT_CLOSE_PROTOCOL;
        }
        p->msg_opcode = h->opcode;
        p->msg_compressed = (h->rsv & 4u) != 0;
        p->msg_len = 0;
        p->in_frame_first = true;
        weft_utf8_reset(&p->utf8);
    }
    if (h->length > p->max_message - p->msg_len) {
        *why = "message larger than the maximum message size";
        return WEFT_CLOSE_TOO_BIG;
    }
    p->msg_len += h->length;
    return 0;
}

/* Completes a control frame whose payload is at data[0..len). Fills ev; returns its type. */
static enum weft_msg_event_type on_control(struct weft_msg_parser *p, struct weft_msg_event *ev,
                                           uint8_t opcode, const uint8_t *data, size_t len)
{
    p->ctrl_active = false;
    ev->type = WEFT_MSG_CONTROL;
    ev->opcode = opcode;
    ev->data = data;
    ev->len = len;
    if (opcode == WEFT_OP_CLOSE) {
        uint16_t code;
        const char *reason;
        size_t rlen;
        uint16_t err = weft_close_parse(data, len, &code, &reason, &rlen);
        if (err)
            return fail(p, ev, err,
                        err == WEFT_CLOSE_INVALID_DATA ? "close reason is not valid UTF-8"
                                                       : "invalid close frame");
        ev->close_code = code;
        ev->reason = reason;
        ev->reason_len = rlen;
    }
    return WEFT_MSG_CONTROL;
}

/* Parses one message-level event; see weft.h. */
enum weft_msg_event_type weft_msg_parse(struct weft_msg_parser *p, uint8_t *data, size_t len,
                                        size_t *consumed, struct weft_msg_event *ev)
{
    size_t off = 0;
    memset(ev, 0, sizeof *ev);
    *consumed = 0;
    if (p->error_code)
        return fail(p, ev, p->error_code, p->error_reason);

    for (;;) {
        struct weft_frame_event fe;
        size_t used;
        enum weft_frame_event_type t = weft_frame_parse(&p->fp, data + off, len - off, &used, &fe);
        off += used;
        *consumed = off;

        switch (t) {
        case WEFT_FRAME_NEED_MORE:
            ev->type = WEFT_MSG_NEED_MORE;
            return WEFT_MSG_NEED_MORE;

        case WEFT_FRAME_ERROR:
            return fail(p, ev, fe.close_code, fe.reason);

        case WEFT_FRAME_HEADER: {
            const char *why = NULL;
            uint16_t code = on_header(p, &fe.header, &why);
            if (code)
                return fail(p, ev, code, why);
            continue;
        }

        case WEFT_FRAME_DATA:
            break;
        }

        if (p->ctrl_active) {
            /* Whole control payload in this chunk: hand it out in place; else collect. */
            if (fe.frame_end && p->ctrl_len == 0)
                return on_control(p, ev, fe.header.opcode, fe.data, fe.len);
            memcpy(p->ctrl_buf + p->ctrl_len, fe.data, fe.len);
            p->ctrl_len = (uint8_t)(p->ctrl_len + fe.len);
            if (fe.frame_end)
                return on_control(p, ev, fe.header.opcode, p->ctrl_buf, p->ctrl_len);
            continue;
        }

        bool fin = fe.frame_end && fe.header.fin;
        if (p->msg_opcode == WEFT_OP_TEXT && p->validate_utf8 && !p->msg_compressed) {
            size_t bad;
            enum weft_utf8_result r = weft_utf8_validate(&p->utf8, fe.data, fe.len, &bad);
            if (r == WEFT_UTF8_INVALID) {
                *consumed = off - fe.len + bad + 1;
                return fail(p, ev, WEFT_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
            }
            if (fin && r == WEFT_UTF8_PARTIAL)
                return fail(p, ev, WEFT_CLOSE_INVALID_DATA,
                            "text message ends inside a UTF-8 sequence");
        }
        /* Empty chunks in the middle of a message carry nothing: skip them. */
        if (fe.len == 0 && !fin)
            continue;
        ev->type = WEFT_MSG_DATA;
        ev->opcode = p->msg_opcode;
        ev->first = p->in_frame_first;
        ev->fin = fin;
        ev->compressed = p->msg_compressed;
        ev->data = fe.data;
        ev->len = fe.len;
        p->in_frame_first = false;
        if (fin)
            p->msg_opcode = 0;
        return WEFT_MSG_DATA;
    }
}
