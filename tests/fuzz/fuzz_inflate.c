/*
 * fuzz_inflate.c — libFuzzer target for the receive path of permessage-deflate: arbitrary
 * compressed bytes inflated with weft_inflate into a bounded output, as the connection does
 * (src/ws/conn.c deliver_compressed: the buffer grows up to the message limit + 1 and the
 * message is refused beyond it, so a small bomb never costs more than the limit).
 *
 * Input: byte 0 = window bits (low nibble, 8..15) and no-context-takeover (bit 4); byte 1 =
 * the message limit; bytes 2 and 3 = two cut points; the rest is the compressed payload.
 * The payload is inflated twice: whole, with a growing output buffer, and cut in three
 * frames (fin on the last only) with output slices of a fuzz-chosen size. Properties:
 *  - weft_inflate never reports more input used or output made than it was given room for;
 *  - the output never grows past the limit + 1 byte: the bound holds;
 *  - both runs agree (with a 15-bit window, see below): both complete with the same bytes,
 *    or both refuse the message (as corrupt or too big); a complete message is then inflated again
 * from a fresh inflater to the same bytes (no state leaks from one message into the next with no
 * context takeover).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum verdict { V_OK, V_CORRUPT, V_TOO_BIG };

struct result {
    enum verdict v;
    uint8_t *out;
    size_t len;
};

/* Inflates the frames in[cut[k-1]..cut[k]) (fin on the last) into a buffer that doubles
 * (from 16 KiB) and never grows beyond max + 1 (as conn.c: one byte more than the limit tells
 * a message that is too big), giving each weft_inflate call at most `slice` bytes of room
 * (raised so that a run makes at most about 1024 calls: 1-byte slices of a large output
 * timed out). */
static struct result run(struct weft_inflater *inf, const uint8_t *in, const size_t *cuts,
                         size_t ncuts, size_t max, size_t slice, bool reset)
{
    struct result res = {V_OK, NULL, 0};
    size_t cap = 0, start = 0;
    if (slice < (max + 1) / 1024) slice = (max + 1) / 1024;
    for (size_t k = 0; k < ncuts; k++) {
        bool fin = k + 1 == ncuts;
        size_t end = cuts[k], pos = start;
        for (;;) {
            if (res.len == cap) {
                if (cap > max) { /* more than the limit: refused, the rest not inflated */
                    weft_inflater_reset(inf);
                    res.v = V_TOO_BIG;
                    return res;
                }
                size_t ncap = cap ? cap * 2 : 16384;
                if (ncap > max + 1) ncap = max + 1;
                uint8_t *nb = realloc(res.out, ncap);
                if (!nb) abort();
                res.out = nb;
                cap = ncap;
            }
            size_t room = cap - res.len < slice ? cap - res.len : slice;
            size_t used = SIZE_MAX, made = SIZE_MAX;
            int r = weft_inflate(inf, in + pos, end - pos, fin, reset, res.out + res.len, room,
                                 &used, &made);
            if (r < 0) {
                if (r != WEFT_ERR_PROTO) abort();
                res.v = V_CORRUPT;
                return res;
            }
            if (r != 0 && r != 1) abort();
            if (used > end - pos || made > room) abort();
            pos += used;
            res.len += made;
            if (r == 0) {
                if (pos != end) abort(); /* "everything given was consumed" */
                break;
            }
        }
        start = end;
    }
    if (res.len > max) {
        weft_inflater_reset(inf);
        res.v = V_TOO_BIG;
    }
    return res;
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    int bits = 8 + (data[0] & 7);
    bool reset = (data[0] & 16) != 0;
    size_t max = (size_t)data[1] * data[1] * 2 + 1; /* 1 byte .. 127 KiB */
    size_t slice = (size_t)(data[0] >> 5) * 700 + 1;
    const uint8_t *in = data + 4;
    size_t len = size - 4;
    size_t c1 = (size_t)data[2] * len / 256, c2 = c1 + (size_t)data[3] * (len - c1) / 256;
    uint8_t *copy = malloc(len ? len : 1); /* exactly sized: overreads are caught */
    if (!copy) return 0;
    memcpy(copy, in, len);

    struct weft_inflater *a = weft_inflater_new(bits), *b = weft_inflater_new(bits);
    if (!a || !b) abort();
    size_t whole_cut[1] = {len}, cuts[3] = {c1, c2, len};
    struct result w = run(a, copy, whole_cut, 1, max, 16384, reset);
    struct result f = run(b, copy, cuts, 3, max, slice, reset);
    if (w.len > max + 1 || f.len > max + 1) abort();
    /* The verdicts agree. A refusal may be either kind: which of "corrupt" and "too big" is
     * seen first depends on how much output room zlib had when it met the bad code. With a
     * window under 15 bits zlib itself is not consistent: a distance beyond the window
     * decodes when the output buffer still holds the bytes and fails when it does not. */
    if ((w.v == V_OK) != (f.v == V_OK) && bits == 15) abort();
    if (w.v == V_OK && f.v == V_OK &&
        (w.len != f.len || (w.len && memcmp(w.out, f.out, w.len) != 0)))
        abort();
    if (w.v == V_OK && reset) {
        /* The inflater forgot the message: the same payload inflates to the same bytes. */
        struct result again = run(a, copy, whole_cut, 1, max, 16384, reset);
        if (again.v != V_OK || again.len != w.len || (w.len && memcmp(again.out, w.out, w.len)))
            abort();
        free(again.out);
    }
    free(w.out);
    free(f.out);
    weft_inflater_free(a);
    weft_inflater_free(b);
    free(copy);
    return 0;
}
