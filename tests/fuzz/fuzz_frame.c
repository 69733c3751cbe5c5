/*
 * fuzz_frame.c — libFuzzer target for the frame parser + message assembler.
 *
 * The first input byte picks the role, the RSV bits an extension claimed and the limits; the
 * rest is parsed twice, whole and split at two points derived from the input, and the two
 * normalised event streams must be identical. Every event is checked for internal consistency.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

struct digest {
    uint64_t hash;     /* FNV-1a over the normalised events */
    uint64_t at_msg;   /* hash before the message in progress: a message cut short by an
                          error is discarded, since how much of it was delivered depends on
                          the split */
    bool in_msg;
    uint16_t error;
    size_t msgs;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        d->hash ^= b[i];
        d->hash *= UINT64_C(0x100000001b3);
    }
}

static void parse(const struct weft_msg_limits *lim, uint8_t *buf, size_t len, size_t c1,
                  size_t c2, struct digest *d)
{
    struct weft_msg_parser p;
    weft_msg_parser_init(&p, lim);
    memset(d, 0, sizeof *d);
    d->hash = d->at_msg = UINT64_C(0xcbf29ce484222325);
    size_t cuts[3] = {c1, c2, len};
    size_t start = 0;
    uint64_t msg_len = 0;
    for (int c = 0; c < 3 && !d->error; c++) {
        for (;;) {
            struct weft_msg_event ev;
            size_t used;
            enum weft_msg_event_type t = weft_msg_parse(&p, buf + start, cuts[c] - start, &used,
                                                        &ev);
            if (used > cuts[c] - start)
                abort();
            start += used;
            if (t == WEFT_MSG_NEED_MORE) {
                if (start != cuts[c])
                    abort();
                break;
            }
            if (t == WEFT_MSG_ERROR) {
                if (ev.close_code != 1002 && ev.close_code != 1007 && ev.close_code != 1009)
                    abort();
                d->error = ev.close_code;
                d->hash = d->at_msg;
                mix(d, &ev.close_code, sizeof ev.close_code);
                break;
            }
            uint8_t tag = (uint8_t)(t << 4 | ev.opcode);
            if (t == WEFT_MSG_CONTROL) {
                if (ev.len > 125)
                    abort();
                mix(d, &tag, 1);
                mix(d, ev.data, ev.len);
                if (ev.opcode == WEFT_OP_CLOSE && ev.close_code != 1005 &&
                    !weft_close_code_valid(ev.close_code))
                    abort();
                if (!d->in_msg)
                    d->at_msg = d->hash;
                continue;
            }
            if (ev.opcode != WEFT_OP_TEXT && ev.opcode != WEFT_OP_BINARY)
                abort();
            if (ev.first) {
                d->at_msg = d->hash;
                d->in_msg = true;
                mix(d, &tag, 1);
                msg_len = 0;
            }
            mix(d, ev.data, ev.len);
            msg_len += ev.len;
            if (lim->max_message && msg_len > lim->max_message)
                abort();
            if (ev.fin) {
                uint8_t end = 0xee;
                mix(d, &end, 1);
                d->msgs++;
                d->in_msg = false;
                d->at_msg = d->hash;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t cfg = data[0];
    data++;
    size--;
    struct weft_msg_limits lim = {
        .frame = {.role = (cfg & 1) ? WEFT_ROLE_CLIENT : WEFT_ROLE_SERVER,
                  .allowed_rsv = (cfg & 2) ? 4 : 0,
                  .max_frame = (cfg & 4) ? 1000 : 0},
        .max_message = (cfg & 8) ? 3000 : 0,
        .validate_utf8 = true,
    };
    uint8_t *a = malloc(size ? size : 1), *b = malloc(size ? size : 1);
    if (!a || !b)
        abort();
    memcpy(a, data, size);
    memcpy(b, data, size);
    size_t c1 = size ? (size_t)(cfg >> 4) * size / 16 : 0;
    size_t c2 = size ? c1 + (size - c1) / 2 : 0;
    struct digest whole, split;
    parse(&lim, a, size, size, size, &whole);
    parse(&lim, b, size, c1, c2, &split);
    if (whole.hash != split.hash || whole.error != split.error || whole.msgs != split.msgs)
        abort();
    free(a);
    free(b);
    return 0;
}
