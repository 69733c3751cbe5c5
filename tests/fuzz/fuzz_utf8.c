/*
 * fuzz_utf8.c — libFuzzer target for weft_utf8_validate / weft_utf8_valid.
 *
 * Differential: every input is checked against a slow reference decoder of this file (decode
 * each code point, check its range; no byte tables), whole and chunked; abort() on mismatch.
 * The first input byte chooses a split point and a chunk size; the rest is the text.
 *   1. whole text in one call: same verdict (OK / PARTIAL / INVALID) and the same offset of
 *      the first invalid byte; weft_utf8_valid agrees;
 *   2. split in two at a point derived from the first byte;
 *   3. fed in chunks of 1..16 bytes (size from the first byte).
 * After every chunk the result must be the reference verdict on the prefix read so far
 * (derived from the whole-text verdict and the code point boundaries; for short inputs that
 * shortcut is itself checked against decoding every prefix from scratch).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref_verdict {
    int result; /* enum weft_utf8_result */
    size_t bad; /* offset of the first invalid byte when INVALID */
};

/* True if a code point of exactly n UTF-8 bytes can start with k bytes whose payload bits are
 * `bits`: the possible completions [bits << 6r, ... | ones] (r = n - k) must meet the n-byte
 * range of table 3-7 outside the surrogates. */
static bool ref_can_complete(uint32_t bits, size_t k, size_t n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[5] = {0, 0x7f, 0x7ff, 0xffff, 0x10ffff};
    unsigned shift = (unsigned)(6 * (n - k));
    uint32_t lo = bits << shift;
    uint32_t hi = lo | ((1u << shift) - 1u);
    lo = lo < min_cp[n] ? min_cp[n] : lo;
    hi = hi > max_cp[n] ? max_cp[n] : hi;
    return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);
}

/* Reference validator for s[0..len): the verdict with the fail-fast offset. If boundary is
 * not NULL (len + 1 zeroed bytes), boundary[e] is set to 1 for every e at which a code point
 * starts or the text ends, up to the first invalid byte. */
static struct ref_verdict ref_validate(const uint8_t *s, size_t len, uint8_t *boundary)
{
    size_t i = 0;
    while (i < len) {
        if (boundary) boundary[i] = 1;
        uint8_t lead = s[i];
        size_t n = lead < 0x80             ? 1
                   : (lead & 0xe0) == 0xc0 ? 2
                   : (lead & 0xf0) == 0xe0 ? 3
                   : (lead & 0xf8) == 0xf0 ? 4
                                           : 0;
        if (n == 0) return (struct ref_verdict){WEFT_UTF8_INVALID, i};
        uint32_t bits = n == 1 ? lead : lead & (0x7fu >> n);
        for (size_t k = 1; k <= n; k++) {
            if (k > 1) {
                if (i + k - 1 >= len) return (struct ref_verdict){WEFT_UTF8_PARTIAL, 0};
                if ((s[i + k - 1] & 0xc0) != 0x80)
                    return (struct ref_verdict){WEFT_UTF8_INVALID, i + k - 1};
                bits = (bits << 6) | (s[i + k - 1] & 0x3fu);
            }
            if (!ref_can_complete(bits, k, n))
                return (struct ref_verdict){WEFT_UTF8_INVALID, i + k - 1};
        }
        i += n;
    }
    if (boundary) boundary[len] = 1;
    return (struct ref_verdict){WEFT_UTF8_OK, 0};
}

/* The reference verdict on the prefix text[0..end), from the verdict on the whole text and
 * its code point boundaries (fail-fast: a prefix fails only where the whole text fails). */
static struct ref_verdict prefix_verdict(struct ref_verdict whole, const uint8_t *boundary,
                                         size_t end)
{
    if (whole.result == WEFT_UTF8_INVALID && end > whole.bad) return whole;
    return (struct ref_verdict){boundary[end] ? WEFT_UTF8_OK : WEFT_UTF8_PARTIAL, 0};
}

/* Feeds text[0..len) in chunks: first a chunk of `first` bytes, then chunks of `step` bytes.
 * Aborts unless every chunk's result matches the reference verdict on the prefix so far. */
static void check_chunked(const uint8_t *text, size_t len, struct ref_verdict whole,
                          const uint8_t *boundary, size_t first, size_t step)
{
    struct weft_utf8 u = {0};
    size_t start = 0;
    size_t end = first < len ? first : len;
    for (;;) {
        struct ref_verdict want = prefix_verdict(whole, boundary, end);
        size_t bad = (size_t)-1;
        enum weft_utf8_result got = weft_utf8_validate(&u, text + start, end - start, &bad);
        if (want.result == WEFT_UTF8_INVALID) {
            if (got != WEFT_UTF8_INVALID || bad != want.bad - start) abort();
            return;
        }
        if ((int)got != want.result || bad != (size_t)-1) abort();
        if (end == len) return;
        start = end;
        end = len - end < step ? len : end + step;
    }
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t control = data[0];
    const uint8_t *text = data + 1;
    size_t len = size - 1;

    uint8_t *boundary = calloc(len + 1, 1);
    if (!boundary) return 0;
    struct ref_verdict whole = ref_validate(text, len, boundary);

    /* The prefix shortcut must agree with decoding each prefix from scratch. */
    if (len <= 64) {
        for (size_t end = 0; end <= len; end++) {
            struct ref_verdict direct = ref_validate(text, end, NULL);
            struct ref_verdict derived = prefix_verdict(whole, boundary, end);
            if (direct.result != derived.result || direct.bad != derived.bad) abort();
        }
    }

    if (weft_utf8_valid(text, len) != (whole.result == WEFT_UTF8_OK)) abort();
    check_chunked(text, len, whole, boundary, len, 1); /* whole */
    check_chunked(text, len, whole, boundary, (size_t)control * (len + 1) / 256, len + 1);
    check_chunked(text, len, whole, boundary, 0, (size_t)(control % 16) + 1);
    free(boundary);
    return 0;
}
