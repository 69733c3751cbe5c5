/*
 * test_utf8.c — weft_utf8_validate / weft_utf8_valid.
 *
 * 1. Table-driven cases: Markus Kuhn's UTF-8 decoder stress test (sections 1-5) and the
 *    categories of Autobahn TestSuite section 6, each with its expected verdict (OK, PARTIAL,
 *    or INVALID at a byte offset worked out by hand from Unicode table 3-7).
 * 2. Every case is also fed split at every position into two chunks, byte by byte, behind
 *    ASCII and multi-byte prefixes of many lengths (to move it across the fast paths' block
 *    boundaries) and followed by ASCII; every chunk's result and offset are checked.
 * 3. A slow reference decoder (decodes code points and checks ranges; no byte tables) that
 *    the table cases are checked against, then used for exhaustive short strings and 240k
 *    random strings, whole and split at random points.
 * 4. Autobahn 6.4 fail-fast with the exact chunking the suite uses.
 *
 * Every check runs on the library build (SSE2 fast path on x86_64) and on utf8.c compiled
 * into this test with WEFT_NO_SIMD (the portable 8-byte-word fast path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "weft.h"

/* utf8.c compiled again without SIMD, under other names. */
#define WEFT_NO_SIMD 1
#define weft_utf8_validate portable_utf8_validate
#define weft_utf8_valid portable_utf8_valid
#include "proto/utf8.c"
#undef weft_utf8_validate
#undef weft_utf8_valid

typedef enum weft_utf8_result (*validate_fn)(struct weft_utf8 *u, const uint8_t *buf, size_t len,
                                             size_t *bad_offset);
typedef bool (*valid_fn)(const uint8_t *buf, size_t len);

static const struct validator {
    const char *name;
    validate_fn validate;
    valid_fn valid;
} validators[] = {
    {"library", weft_utf8_validate, weft_utf8_valid},
    {"portable", portable_utf8_validate, portable_utf8_valid},
};
#define N_VALIDATORS (sizeof validators / sizeof validators[0])

/* A verdict on a whole text: result and, for INVALID, the absolute offset of the bad byte. */
struct verdict {
    enum weft_utf8_result result;
    size_t bad;
};

/* ------------------------------------------------------------------ reference decoder */

/* True if some code point encoded in n bytes (n = 1..4) has the k leading bytes whose payload
 * bits are `bits`: the completions form the range [bits << 6r, that | (2^6r - 1)] with r = n - k
 * continuation bytes left, and that range must meet the code points that take exactly n bytes
 * (shortest form), minus the surrogates U+D800..U+DFFF. */
static bool ref_completable(uint32_t bits, size_t k, size_t n)
{
    static const uint32_t lowest[5] = {0, 0x0, 0x80, 0x800, 0x10000};
    static const uint32_t highest[5] = {0, 0x7f, 0x7ff, 0xffff, 0x10ffff};
    unsigned rest = (unsigned)(6 * (n - k));
    uint32_t lo = bits << rest;
    uint32_t hi = lo | ((1u << rest) - 1);
    if (lo < lowest[n]) lo = lowest[n];
    if (hi > highest[n]) hi = highest[n];
    if (lo > hi) return false;
    if (lo >= 0xd800 && hi <= 0xdfff) return false;
    return true;
}

/* The reference: decodes s[0..len) code point by code point. Returns OK, PARTIAL (valid
 * prefix of a code point at the end) or INVALID at the first byte after which no continuation
 * could give valid UTF-8. */
static struct verdict ref_validate(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t lead = s[i];
        size_t n;
        uint32_t bits;
        if (lead < 0x80) {
            i++;
            continue;
        } else if ((lead & 0xe0) == 0xc0) {
            n = 2, bits = lead & 0x1f;
        } else if ((lead & 0xf0) == 0xe0) {
            n = 3, bits = lead & 0x0f;
        } else if ((lead & 0xf8) == 0xf0) {
            n = 4, bits = lead & 0x07;
        } else {
            return (struct verdict){WEFT_UTF8_INVALID, i}; /* 80..BF or F8..FF */
        }
        for (size_t k = 1; k <= n; k++) {
            if (k > 1) {
                if (i + k - 1 >= len) return (struct verdict){WEFT_UTF8_PARTIAL, 0};
                uint8_t c = s[i + k - 1];
                if ((c & 0xc0) != 0x80) return (struct verdict){WEFT_UTF8_INVALID, i + k - 1};
                bits = (bits << 6) | (c & 0x3f);
            }
            if (!ref_completable(bits, k, n)) return (struct verdict){WEFT_UTF8_INVALID, i + k - 1};
        }
        i += n;
    }
    return (struct verdict){WEFT_UTF8_OK, 0};
}

/* Encodes code point cp (not checked) into out; returns the length 1..4. */
static size_t encode_utf8(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static const char *result_name(int r)
{
    return r == WEFT_UTF8_OK ? "OK" : r == WEFT_UTF8_PARTIAL ? "PARTIAL" : "INVALID";
}

/* ------------------------------------------------------------------ chunked checking */

#define UNTOUCHED ((size_t)0xdeadbeef)

/*
 * Feeds s[0..len) to v in chunks ending at cuts[0..ncuts) (ascending, each <= len) and then
 * at len. After every chunk the result must equal the reference verdict on the prefix read so
 * far (so OK / PARTIAL are checked at every cut), and the first INVALID must come in the chunk
 * holding the bad byte, at its offset within that chunk. `what` names the case in failures.
 * prefix[end], if not NULL, holds the reference verdict on s[0..end) for every end.
 */
static void expect_chunked_memo(const struct validator *v, const uint8_t *s, size_t len,
                                const size_t *cuts, size_t ncuts, const struct verdict *prefix,
                                const char *what)
{
    struct weft_utf8 u;
    weft_utf8_reset(&u);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        struct verdict want = prefix ? prefix[end] : ref_validate(s, end);
        size_t bad = UNTOUCHED;
        enum weft_utf8_result got = v->validate(&u, s + start, end - start, &bad);
        if (want.result == WEFT_UTF8_INVALID) {
            if (got != WEFT_UTF8_INVALID || bad != want.bad - start)
                fail_msg("%s [%s] chunk %zu..%zu of %zu: got %s bad %zu, expected INVALID at "
                         "%zu",
                         what, v->name, start, end, len, result_name(got),
                         bad == UNTOUCHED ? (size_t)0 : bad, want.bad - start);
            return;
        }
        if (got != want.result || bad != UNTOUCHED)
            fail_msg("%s [%s] chunk %zu..%zu of %zu: got %s (bad_offset %s), expected %s", what,
                     v->name, start, end, len, result_name(got),
                     bad == UNTOUCHED ? "untouched" : "written", result_name(want.result));
        start = end;
    }
}

/* expect_chunked_memo computing the reference verdicts as it goes. */
static void expect_chunked(const struct validator *v, const uint8_t *s, size_t len,
                           const size_t *cuts, size_t ncuts, const char *what)
{
    expect_chunked_memo(v, s, len, cuts, ncuts, NULL, what);
}

/* Checks s[0..len) whole, split into two at every position, and byte by byte, on every
 * validator; also checks weft_utf8_valid and that bad_offset may be NULL. */
static void expect_all_splits(const uint8_t *s, size_t len, const char *what)
{
    static size_t cuts[1024];
    static struct verdict prefix[1025];
    assert_true(len <= sizeof cuts / sizeof cuts[0]);
    for (size_t end = 0; end <= len; end++)
        prefix[end] = ref_validate(s, end);
    struct verdict want = prefix[len];
    for (size_t k = 0; k < N_VALIDATORS; k++) {
        const struct validator *v = &validators[k];
        expect_chunked_memo(v, s, len, NULL, 0, prefix, what);
        for (size_t at = 0; at <= len; at++) {
            cuts[0] = at;
            expect_chunked_memo(v, s, len, cuts, 1, prefix, what);
        }
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        expect_chunked_memo(v, s, len, cuts, len, prefix, what);

        if (v->valid(s, len) != (want.result == WEFT_UTF8_OK))
            fail_msg("%s [%s]: valid() disagrees", what, v->name);
        struct weft_utf8 u = {0};
        if (v->validate(&u, s, len, NULL) != want.result)
            fail_msg("%s [%s]: result differs with bad_offset NULL", what, v->name);
    }
}

/* ------------------------------------------------------------------ the cases */

struct utf8_case {
    const char *name;
    const char *bytes;
    size_t len;
    enum weft_utf8_result result;
    size_t bad; /* for INVALID: offset of the first offending byte */
};

/* clang-format off */
#define VALID(name, s) {name, s, sizeof(s) - 1, WEFT_UTF8_OK, 0}
#define PARTIAL(name, s) {name, s, sizeof(s) - 1, WEFT_UTF8_PARTIAL, 0}
#define BAD(name, s, at) {name, s, sizeof(s) - 1, WEFT_UTF8_INVALID, at}
/* clang-format on */

/* "κόσμε": CE BA | E1 BD B9 | CF 83 | CE BC | CE B5 (11 bytes). */
#define KOSME "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

static const struct utf8_case kuhn_cases[] = {
    /* 1  Some correct UTF-8 text */
    VALID("kuhn 1 kosme", KOSME),
    /* 2.1  First possible sequence of a certain length */
    VALID("kuhn 2.1.1 U+0000", "\x00"),
    VALID("kuhn 2.1.2 U+0080", "\xc2\x80"),
    VALID("kuhn 2.1.3 U+0800", "\xe0\xa0\x80"),
    VALID("kuhn 2.1.4 U+10000", "\xf0\x90\x80\x80"),
    BAD("kuhn 2.1.5 5 bytes U+200000", "\xf8\x88\x80\x80\x80", 0),
    BAD("kuhn 2.1.6 6 bytes U+4000000", "\xfc\x84\x80\x80\x80\x80", 0),
    /* 2.2  Last possible sequence of a certain length */
    VALID("kuhn 2.2.1 U+007F", "\x7f"),
    VALID("kuhn 2.2.2 U+07FF", "\xdf\xbf"),
    VALID("kuhn 2.2.3 U+FFFF", "\xef\xbf\xbf"),
    BAD("kuhn 2.2.4 U+1FFFFF", "\xf7\xbf\xbf\xbf", 0),
    BAD("kuhn 2.2.5 U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", 0),
    BAD("kuhn 2.2.6 U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* 2.3  Other boundary conditions */
    VALID("kuhn 2.3.1 U+D7FF", "\xed\x9f\xbf"),
    VALID("kuhn 2.3.2 U+E000", "\xee\x80\x80"),
    VALID("kuhn 2.3.3 U+FFFD", "\xef\xbf\xbd"),
    VALID("kuhn 2.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    BAD("kuhn 2.3.5 U+110000", "\xf4\x90\x80\x80", 1),
    /* 3.1  Unexpected continuation bytes */
    BAD("kuhn 3.1.1 80", "\x80", 0),
    BAD("kuhn 3.1.2 bf", "\xbf", 0),
    BAD("kuhn 3.1.3 2 cont", "\x80\xbf", 0),
    BAD("kuhn 3.1.4 3 cont", "\x80\xbf\x80", 0),
    BAD("kuhn 3.1.5 4 cont", "\x80\xbf\x80\xbf", 0),
    BAD("kuhn 3.1.6 5 cont", "\x80\xbf\x80\xbf\x80", 0),
    BAD("kuhn 3.1.7 6 cont", "\x80\xbf\x80\xbf\x80\xbf", 0),
    BAD("kuhn 3.1.8 7 cont", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    BAD("kuhn 3.1 cont after ASCII", "a\x80", 1),
    BAD("kuhn 3.1 cont after 2-byte", "\xc3\xa9\xa9", 2),
    BAD("kuhn 3.1 cont after kosme", KOSME "\x80", 11),
    BAD("kuhn 3.1 cont after 4-byte", "\xf0\x9f\x98\x80\x80", 4),
    /* 3.3  Sequences with last continuation byte missing, alone and before a '"' */
    BAD("kuhn 3.3.1 c0", "\xc0", 0),
    BAD("kuhn 3.3.2 e0 80", "\xe0\x80", 1),
    BAD("kuhn 3.3.3 f0 80 80", "\xf0\x80\x80", 1),
    BAD("kuhn 3.3.4 f8 80 80 80", "\xf8\x80\x80\x80", 0),
    BAD("kuhn 3.3.5 fc 80 80 80 80", "\xfc\x80\x80\x80\x80", 0),
    PARTIAL("kuhn 3.3.6 df", "\xdf"),
    PARTIAL("kuhn 3.3.7 ef bf", "\xef\xbf"),
    BAD("kuhn 3.3.8 f7 bf bf", "\xf7\xbf\xbf", 0),
    BAD("kuhn 3.3.9 fb bf bf bf", "\xfb\xbf\xbf\xbf", 0),
    BAD("kuhn 3.3.10 fd bf bf bf bf", "\xfd\xbf\xbf\xbf\xbf", 0),
    PARTIAL("kuhn 3.3 c2", "\xc2"),
    PARTIAL("kuhn 3.3 e0 a0", "\xe0\xa0"),
    PARTIAL("kuhn 3.3 e1", "\xe1"),
    PARTIAL("kuhn 3.3 ed 9f", "\xed\x9f"),
    PARTIAL("kuhn 3.3 f0 90 80", "\xf0\x90\x80"),
    PARTIAL("kuhn 3.3 f1 80", "\xf1\x80"),
    PARTIAL("kuhn 3.3 f4 8f bf", "\xf4\x8f\xbf"),
    BAD("kuhn 3.3 df quote", "\xdf\"", 1),
    BAD("kuhn 3.3 ef bf quote", "\xef\xbf\"", 2),
    BAD("kuhn 3.3 f4 8f bf quote", "\xf4\x8f\xbf\"", 3),
    BAD("kuhn 3.3 e1 then lead", "\xe1\x80\xe1\x80\x80", 2),
    BAD("kuhn 3.3 f3 bf bf then c3", "\xf3\xbf\xbf\xc3\xa9", 3),
    /* 3.4  Concatenation of incomplete sequences */
    BAD("kuhn 3.4 all incomplete",
        "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
        0),
    BAD("kuhn 3.4 valid-prefix incompletes", "\xdf\xef\xbf\xf4\x8f\xbf", 1),
    /* 3.5  Impossible bytes */
    BAD("kuhn 3.5.1 fe", "\xfe", 0),
    BAD("kuhn 3.5.2 ff", "\xff", 0),
    BAD("kuhn 3.5.3 fe fe ff ff", "\xfe\xfe\xff\xff", 0),
    BAD("kuhn 3.5 fe after text", "ab" KOSME "\xfe", 13),
    /* 4.1  Overlong ASCII '/' */
    BAD("kuhn 4.1.1 c0 af", "\xc0\xaf", 0),
    BAD("kuhn 4.1.2 e0 80 af", "\xe0\x80\xaf", 1),
    BAD("kuhn 4.1.3 f0 80 80 af", "\xf0\x80\x80\xaf", 1),
    BAD("kuhn 4.1.4 f8 80 80 80 af", "\xf8\x80\x80\x80\xaf", 0),
    BAD("kuhn 4.1.5 fc 80 80 80 80 af", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 4.2  Maximum overlong sequences */
    BAD("kuhn 4.2.1 c1 bf", "\xc1\xbf", 0),
    BAD("kuhn 4.2.2 e0 9f bf", "\xe0\x9f\xbf", 1),
    BAD("kuhn 4.2.3 f0 8f bf bf", "\xf0\x8f\xbf\xbf", 1),
    BAD("kuhn 4.2.4 f8 87 bf bf bf", "\xf8\x87\xbf\xbf\xbf", 0),
    BAD("kuhn 4.2.5 fc 83 bf bf bf bf", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    /* 4.3  Overlong NUL */
    BAD("kuhn 4.3.1 c0 80", "\xc0\x80", 0),
    BAD("kuhn 4.3.2 e0 80 80", "\xe0\x80\x80", 1),
    BAD("kuhn 4.3.3 f0 80 80 80", "\xf0\x80\x80\x80", 1),
    BAD("kuhn 4.3.4 f8 80 80 80 80", "\xf8\x80\x80\x80\x80", 0),
    BAD("kuhn 4.3.5 fc 80 80 80 80 80", "\xfc\x80\x80\x80\x80\x80", 0),
    /* 5.1  Single UTF-16 surrogates */
    BAD("kuhn 5.1.1 U+D800", "\xed\xa0\x80", 1),
    BAD("kuhn 5.1.2 U+DB7F", "\xed\xad\xbf", 1),
    BAD("kuhn 5.1.3 U+DB80", "\xed\xae\x80", 1),
    BAD("kuhn 5.1.4 U+DBFF", "\xed\xaf\xbf", 1),
    BAD("kuhn 5.1.5 U+DC00", "\xed\xb0\x80", 1),
    BAD("kuhn 5.1.6 U+DF80", "\xed\xbe\x80", 1),
    BAD("kuhn 5.1.7 U+DFFF", "\xed\xbf\xbf", 1),
    /* 5.2  Paired UTF-16 surrogates */
    BAD("kuhn 5.2.1 D800 DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("kuhn 5.2.2 D800 DFFF", "\xed\xa0\x80\xed\xbf\xbf", 1),
    BAD("kuhn 5.2.3 DB7F DC00", "\xed\xad\xbf\xed\xb0\x80", 1),
    BAD("kuhn 5.2.4 DB7F DFFF", "\xed\xad\xbf\xed\xbf\xbf", 1),
    BAD("kuhn 5.2.5 DB80 DC00", "\xed\xae\x80\xed\xb0\x80", 1),
    BAD("kuhn 5.2.6 DB80 DFFF", "\xed\xae\x80\xed\xbf\xbf", 1),
    BAD("kuhn 5.2.7 DBFF DC00", "\xed\xaf\xbf\xed\xb0\x80", 1),
    BAD("kuhn 5.2.8 DBFF DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    BAD("kuhn 5.2 surrogate after text", "abc\xed\xb0\x80", 4),
    /* 5.3  Noncharacters are valid UTF-8 */
    VALID("kuhn 5.3.1 U+FFFE", "\xef\xbf\xbe"),
    VALID("kuhn 5.3.2 U+FFFF", "\xef\xbf\xbf"),
    VALID("kuhn 5.3.3 U+FDD0", "\xef\xb7\x90"),
    VALID("kuhn 5.3.3 U+FDEF", "\xef\xb7\xaf"),
    VALID("kuhn 5.3.4 U+1FFFE", "\xf0\x9f\xbf\xbe"),
    VALID("kuhn 5.3.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    /* Second-byte boundaries of the restricted leads (table 3-7) */
    BAD("E0 9F (overlong)", "\xe0\x9f\x80", 1),
    VALID("E0 A0", "\xe0\xa0\x80"),
    VALID("E0 BF", "\xe0\xbf\xbf"),
    VALID("E1 80", "\xe1\x80\x80"),
    VALID("EC BF", "\xec\xbf\xbf"),
    VALID("ED 80", "\xed\x80\x80"),
    BAD("ED A0 (surrogate)", "\xed\xa0\x80", 1),
    VALID("EE 80", "\xee\x80\x80"),
    BAD("F0 8F (overlong)", "\xf0\x8f\x80\x80", 1),
    VALID("F0 90", "\xf0\x90\x80\x80"),
    VALID("F0 BF", "\xf0\xbf\xbf\xbf"),
    VALID("F1 80", "\xf1\x80\x80\x80"),
    VALID("F3 BF", "\xf3\xbf\xbf\xbf"),
    VALID("F4 80", "\xf4\x80\x80\x80"),
    BAD("F4 90 (> U+10FFFF)", "\xf4\x90\x80\x80", 1),
    BAD("F4 BF (> U+10FFFF)", "\xf4\xbf\xbf\xbf", 1),
    BAD("F5", "\xf5\x80\x80\x80", 0),
    BAD("third byte not continuation", "\xe1\x80\x41", 2),
    BAD("fourth byte not continuation", "\xf1\x80\x80\xc2\x80", 3),
    BAD("fourth byte C0", "\xf1\x80\x80\xc0", 3),
};

/* Autobahn "Hello-µ@ßöäüàá-UTF-8!!" (6.2.x). */
#define HELLO_MU                                                                                   \
    "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1"                              \
    "-UTF-8!!"

static const struct utf8_case autobahn_cases[] = {
    /* 6.1  Empty text */
    VALID("6.1 empty", ""),
    /* 6.2  Valid UTF-8 (split at every position below, as in 6.2.2-6.2.4) */
    VALID("6.2.1 Hello-mu", HELLO_MU),
    /* 6.3  Invalid UTF-8: kosme, surrogate ED A0 80 inserted, "edited" */
    BAD("6.3.1 kosme surrogate edited",
        KOSME "\xed\xa0\x80"
              "edited",
        12),
    /* 6.4  Fail-fast (chunked versions in test_autobahn_6_4_fail_fast) */
    BAD("6.4.1 kosme f4 90 80 80 edited",
        KOSME "\xf4\x90\x80\x80"
              "edited",
        12),
    BAD("6.4.2 kosme f4 90 80 80", KOSME "\xf4\x90\x80\x80", 12),
    /* 6.5  Valid UTF-8 */
    VALID("6.5.1 kosme", KOSME),
    VALID("6.5.2 7f", "\x7f"),
    VALID("6.5.3 df bf", "\xdf\xbf"),
    VALID("6.5.4 ef bf bf", "\xef\xbf\xbf"),
    VALID("6.5.5 f4 8f bf bf", "\xf4\x8f\xbf\xbf"),
    /* 6.6  kosme cut after every byte: complete code points OK, cut ones PARTIAL */
    PARTIAL("6.6.1", "\xce"),
    VALID("6.6.2", "\xce\xba"),
    PARTIAL("6.6.3", "\xce\xba\xe1"),
    PARTIAL("6.6.4", "\xce\xba\xe1\xbd"),
    VALID("6.6.5", "\xce\xba\xe1\xbd\xb9"),
    PARTIAL("6.6.6", "\xce\xba\xe1\xbd\xb9\xcf"),
    VALID("6.6.7", "\xce\xba\xe1\xbd\xb9\xcf\x83"),
    PARTIAL("6.6.8", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce"),
    VALID("6.6.9", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"),
    PARTIAL("6.6.10", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"),
    VALID("6.6.11", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    /* 6.7  First possible sequence of a certain length */
    VALID("6.7.1 U+0000", "\x00"),
    VALID("6.7.2 U+0080", "\xc2\x80"),
    VALID("6.7.3 U+0800", "\xe0\xa0\x80"),
    VALID("6.7.4 U+10000", "\xf0\x90\x80\x80"),
    /* 6.8  First possible sequence length 5/6 (invalid codepoints) */
    BAD("6.8.1 f8 88 80 80 80", "\xf8\x88\x80\x80\x80", 0),
    BAD("6.8.2 fc 84 80 80 80 80", "\xfc\x84\x80\x80\x80\x80", 0),
    /* 6.9  Last possible sequence of a certain length */
    VALID("6.9.1 U+007F", "\x7f"),
    VALID("6.9.2 U+07FF", "\xdf\xbf"),
    VALID("6.9.3 U+FFFF", "\xef\xbf\xbf"),
    VALID("6.9.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    /* 6.10  Last possible sequence length 4/5/6 (invalid codepoints) */
    BAD("6.10.1 f7 bf bf bf", "\xf7\xbf\xbf\xbf", 0),
    BAD("6.10.2 fb bf bf bf bf", "\xfb\xbf\xbf\xbf\xbf", 0),
    BAD("6.10.3 fd bf bf bf bf bf", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* 6.11  Other boundary conditions */
    VALID("6.11.1 U+D7FF", "\xed\x9f\xbf"),
    VALID("6.11.2 U+E000", "\xee\x80\x80"),
    VALID("6.11.3 U+FFFD", "\xef\xbf\xbd"),
    VALID("6.11.4 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    BAD("6.11.5 U+110000", "\xf4\x90\x80\x80", 1),
    /* 6.12  Unexpected continuation bytes (6.12.8 all 64: test_continuation_bytes) */
    BAD("6.12.1 80", "\x80", 0),
    BAD("6.12.2 bf", "\xbf", 0),
    BAD("6.12.3", "\x80\xbf", 0),
    BAD("6.12.4", "\x80\xbf\x80", 0),
    BAD("6.12.5", "\x80\xbf\x80\xbf", 0),
    BAD("6.12.6", "\x80\xbf\x80\xbf\x80", 0),
    BAD("6.12.7", "\x80\xbf\x80\xbf\x80\xbf", 0),
    /* 6.13  Lonely start characters (generated in test_lonely_start_bytes) */
    /* 6.14  Sequences with last continuation byte missing */
    BAD("6.14.1 c0", "\xc0", 0),
    BAD("6.14.2 e0 80", "\xe0\x80", 1),
    BAD("6.14.3 f0 80 80", "\xf0\x80\x80", 1),
    BAD("6.14.4 f8 80 80 80", "\xf8\x80\x80\x80", 0),
    BAD("6.14.5 fc 80 80 80 80", "\xfc\x80\x80\x80\x80", 0),
    PARTIAL("6.14.6 df", "\xdf"),
    PARTIAL("6.14.7 ef bf", "\xef\xbf"),
    BAD("6.14.8 f7 bf bf", "\xf7\xbf\xbf", 0),
    BAD("6.14.9 fb bf bf bf", "\xfb\xbf\xbf\xbf", 0),
    BAD("6.14.10 fd bf bf bf bf", "\xfd\xbf\xbf\xbf\xbf", 0),
    /* 6.15  Concatenation of incomplete sequences */
    BAD("6.15.1",
        "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
        0),
    /* 6.16  Impossible bytes */
    BAD("6.16.1 fe", "\xfe", 0),
    BAD("6.16.2 ff", "\xff", 0),
    BAD("6.16.3 fe fe ff ff", "\xfe\xfe\xff\xff", 0),
    /* 6.17  Overlong ASCII '/' */
    BAD("6.17.1", "\xc0\xaf", 0),
    BAD("6.17.2", "\xe0\x80\xaf", 1),
    BAD("6.17.3", "\xf0\x80\x80\xaf", 1),
    BAD("6.17.4", "\xf8\x80\x80\x80\xaf", 0),
    BAD("6.17.5", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 6.18  Maximum overlong sequences */
    BAD("6.18.1", "\xc1\xbf", 0),
    BAD("6.18.2", "\xe0\x9f\xbf", 1),
    BAD("6.18.3", "\xf0\x8f\xbf\xbf", 1),
    BAD("6.18.4", "\xf8\x87\xbf\xbf\xbf", 0),
    BAD("6.18.5", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    /* 6.19  Overlong representation of NUL */
    BAD("6.19.1", "\xc0\x80", 0),
    BAD("6.19.2", "\xe0\x80\x80", 1),
    BAD("6.19.3", "\xf0\x80\x80\x80", 1),
    BAD("6.19.4", "\xf8\x80\x80\x80\x80", 0),
    BAD("6.19.5", "\xfc\x80\x80\x80\x80\x80", 0),
    /* 6.20  Single UTF-16 surrogates */
    BAD("6.20.1 U+D800", "\xed\xa0\x80", 1),
    BAD("6.20.2 U+DB7F", "\xed\xad\xbf", 1),
    BAD("6.20.3 U+DB80", "\xed\xae\x80", 1),
    BAD("6.20.4 U+DBFF", "\xed\xaf\xbf", 1),
    BAD("6.20.5 U+DC00", "\xed\xb0\x80", 1),
    BAD("6.20.6 U+DF80", "\xed\xbe\x80", 1),
    BAD("6.20.7 U+DFFF", "\xed\xbf\xbf", 1),
    /* 6.21  Paired UTF-16 surrogates */
    BAD("6.21.1", "\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("6.21.2", "\xed\xa0\x80\xed\xbf\xbf", 1),
    BAD("6.21.3", "\xed\xad\xbf\xed\xb0\x80", 1),
    BAD("6.21.4", "\xed\xad\xbf\xed\xbf\xbf", 1),
    BAD("6.21.5", "\xed\xae\x80\xed\xb0\x80", 1),
    BAD("6.21.6", "\xed\xae\x80\xed\xbf\xbf", 1),
    BAD("6.21.7", "\xed\xaf\xbf\xed\xb0\x80", 1),
    BAD("6.21.8", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    /* 6.22  Noncharacters (valid; all 34 in test_noncharacters) */
    VALID("6.22.1 U+FFFE", "\xef\xbf\xbe"),
    VALID("6.22.34 U+10FFFF", "\xf4\x8f\xbf\xbf"),
    /* 6.23  Miscellaneous: replacement character, BOM, text around them */
    VALID("6.23.1 U+FFFD", "\xef\xbf\xbd"),
    VALID("6.23.2 BOM", "\xef\xbb\xbf"),
    VALID("6.23.3 mixed", "a\xef\xbf\xbd"
                          "b\xef\xbb\xbf"
                          "c\xf0\x9f\x98\x80"),
};

/* Fails unless the reference decoder agrees with a hand-written expectation. */
static void expect_reference(const uint8_t *s, size_t len, enum weft_utf8_result result, size_t bad,
                             const char *what)
{
    struct verdict ref = ref_validate(s, len);
    if (ref.result != result || (result == WEFT_UTF8_INVALID && ref.bad != bad))
        fail_msg("%s: reference says %s at %zu, table says %s at %zu", what,
                 result_name(ref.result), ref.bad, result_name(result), bad);
}

/* Checks one table case: the expected verdict (via the reference decoder, which must agree
 * with the table), then whole / every 2-split / byte-by-byte on every validator, then behind
 * ASCII and multi-byte prefixes of many lengths and followed by ASCII. */
static void check_case(const struct utf8_case *c)
{
    const uint8_t *s = (const uint8_t *)c->bytes;
    expect_reference(s, c->len, c->result, c->bad, c->name);

    /* Whole, with the exact expectation written in the table. */
    for (size_t k = 0; k < N_VALIDATORS; k++) {
        struct weft_utf8 u = {0};
        size_t bad = UNTOUCHED;
        enum weft_utf8_result r = validators[k].validate(&u, s, c->len, &bad);
        if (r != c->result || (r == WEFT_UTF8_INVALID && bad != c->bad))
            fail_msg("%s [%s]: got %s at %zu, expected %s at %zu", c->name, validators[k].name,
                     result_name(r), bad, result_name(c->result), c->bad);
    }
    expect_all_splits(s, c->len, c->name);

    /* Behind prefixes: ASCII of many lengths (crossing the 8/16/64-byte fast-path blocks)
     * and runs of mixed 2/3/4-byte code points (crossing the DFA blocks); and followed by
     * ASCII, which turns PARTIAL into INVALID at the ASCII byte. */
    static const uint32_t prefix_cps[] = {0xe9, 0x4e2d, 0x1f600, 'a', 0x3b1, 0xffff};
    static const size_t ascii_lens[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100};
    uint8_t buf[512];
    char what[160];
    for (size_t p = 0; p < sizeof ascii_lens / sizeof ascii_lens[0] + 12; p++) {
        size_t plen = 0;
        if (p < sizeof ascii_lens / sizeof ascii_lens[0]) {
            plen = ascii_lens[p];
            for (size_t i = 0; i < plen; i++)
                buf[i] = (uint8_t)('A' + i % 26);
        } else {
            size_t ncps = 1 + 5 * (p - sizeof ascii_lens / sizeof ascii_lens[0]);
            for (size_t i = 0; i < ncps; i++)
                plen += encode_utf8(prefix_cps[i % 6], buf + plen);
        }
        memcpy(buf + plen, s, c->len);
        size_t total = plen + c->len;
        snprintf(what, sizeof what, "%s behind %zu-byte prefix", c->name, plen);
        expect_reference(buf, total, c->result, plen + c->bad, what);
        expect_all_splits(buf, total, what);

        memset(buf + total, 'x', 40);
        snprintf(what, sizeof what, "%s behind %zu-byte prefix + ASCII", c->name, plen);
        if (c->result == WEFT_UTF8_INVALID)
            expect_reference(buf, total + 40, WEFT_UTF8_INVALID, plen + c->bad, what);
        else if (c->result == WEFT_UTF8_PARTIAL)
            expect_reference(buf, total + 40, WEFT_UTF8_INVALID, total, what);
        else
            expect_reference(buf, total + 40, WEFT_UTF8_OK, 0, what);
        expect_all_splits(buf, total + 40, what);
    }
}

static void test_kuhn_stress_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kuhn_cases / sizeof kuhn_cases[0]; i++)
        check_case(&kuhn_cases[i]);
}

static void test_autobahn_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof autobahn_cases / sizeof autobahn_cases[0]; i++)
        check_case(&autobahn_cases[i]);
}

/* Kuhn 3.1.9 / Autobahn 6.12.8: each of the 64 continuation bytes alone is invalid at 0, as
 * is their concatenation; after a complete character they are invalid at their offset. */
static void test_continuation_bytes(void **state)
{
    (void)state;
    uint8_t all[64];
    for (unsigned b = 0x80; b <= 0xbf; b++) {
        uint8_t one[3] = {(uint8_t)b, 0, 0};
        all[b - 0x80] = (uint8_t)b;
        expect_reference(one, 1, WEFT_UTF8_INVALID, 0, "lone continuation");
        expect_all_splits(one, 1, "lone continuation");
        uint8_t after[3] = {0xc3, 0xa9, (uint8_t)b};
        expect_reference(after, 3, WEFT_UTF8_INVALID, 2, "continuation after U+00E9");
        expect_all_splits(after, 3, "continuation after U+00E9");
    }
    expect_reference(all, sizeof all, WEFT_UTF8_INVALID, 0, "6.12.8 all continuations");
    expect_all_splits(all, sizeof all, "6.12.8 all continuations");
}

/* Kuhn 3.2 / Autobahn 6.13: every lead byte followed by a space. C0, C1 and F5..FF fail at
 * the lead itself; the others at the space. Also the concatenated 6.13.x strings. */
static void test_lonely_start_bytes(void **state)
{
    (void)state;
    for (unsigned b = 0xc0; b <= 0xff; b++) {
        uint8_t s[2] = {(uint8_t)b, ' '};
        size_t at = (b <= 0xc1 || b >= 0xf5) ? 0 : 1;
        expect_reference(s, 2, WEFT_UTF8_INVALID, at, "lonely start byte");
        for (size_t k = 0; k < N_VALIDATORS; k++) {
            struct weft_utf8 u = {0};
            size_t bad = UNTOUCHED;
            assert_int_equal(validators[k].validate(&u, s, 2, &bad), WEFT_UTF8_INVALID);
            if (bad != at)
                fail_msg("lead %02x + space [%s]: bad %zu, expected %zu", b, validators[k].name,
                         bad, at);
        }
        expect_all_splits(s, 2, "lonely start byte");
    }
    /* 6.13.1 C0..DF, 6.13.2 E0..EF, 6.13.3 F0..F7, 6.13.4 F8..FB, 6.13.5 FC..FD, each byte
     * followed by a space; and Kuhn's C2..DF run, which fails at the first space. */
    static const struct {
        unsigned first, last;
        size_t bad;
    } runs[] = {{0xc0, 0xdf, 0}, {0xe0, 0xef, 1}, {0xf0, 0xf7, 1},
                {0xf8, 0xfb, 0}, {0xfc, 0xfd, 0}, {0xc2, 0xdf, 1}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        uint8_t s[64];
        size_t n = 0;
        for (unsigned b = runs[r].first; b <= runs[r].last; b++) {
            s[n++] = (uint8_t)b;
            s[n++] = ' ';
        }
        expect_reference(s, n, WEFT_UTF8_INVALID, runs[r].bad, "6.13 run");
        struct weft_utf8 u = {0};
        size_t bad = UNTOUCHED;
        assert_int_equal(weft_utf8_validate(&u, s, n, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, runs[r].bad);
        expect_all_splits(s, n, "6.13 run");
    }
}

/* Autobahn 6.22: the 66 noncharacters U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of every plane are
 * valid UTF-8; so are the first and last code points around the surrogate gap. */
static void test_noncharacters(void **state)
{
    (void)state;
    uint8_t all[300];
    size_t n = 0;
    for (uint32_t plane = 0; plane <= 0x10; plane++) {
        n += encode_utf8((plane << 16) | 0xfffe, all + n);
        n += encode_utf8((plane << 16) | 0xffff, all + n);
    }
    for (uint32_t cp = 0xfdd0; cp <= 0xfdef; cp++)
        n += encode_utf8(cp, all + n);
    n += encode_utf8(0xd7ff, all + n);
    n += encode_utf8(0xe000, all + n);
    assert_true(n <= sizeof all);
    expect_reference(all, n, WEFT_UTF8_OK, 0, "noncharacters");
    for (size_t k = 0; k < N_VALIDATORS; k++)
        assert_true(validators[k].valid(all, n));
    expect_all_splits(all, n, "noncharacters");
}

/* Every code point U+0000..U+10FFFF except the surrogates encodes to valid UTF-8, and every
 * surrogate's 3-byte form is invalid at its second byte. */
static void test_every_code_point(void **state)
{
    (void)state;
    uint8_t buf[4096 + 4];
    for (size_t k = 0; k < N_VALIDATORS; k++) {
        size_t n = 0;
        for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
            if (cp >= 0xd800 && cp <= 0xdfff) {
                uint8_t s[4];
                assert_int_equal(encode_utf8(cp, s), 3);
                struct weft_utf8 u = {0};
                size_t bad = UNTOUCHED;
                assert_int_equal(validators[k].validate(&u, s, 3, &bad), WEFT_UTF8_INVALID);
                assert_int_equal(bad, 1);
                continue;
            }
            n += encode_utf8(cp, buf + n);
            if (n >= 4096 || cp == 0x10ffff) {
                if (!validators[k].valid(buf, n))
                    fail_msg("[%s] block ending at U+%04X rejected", validators[k].name,
                             (unsigned)cp);
                n = 0;
            }
        }
    }
}

/* All 65536 two-byte strings, and all three-byte strings with a non-ASCII first byte and a
 * third byte from the interesting classes, against the reference (whole and split). */
static void test_exhaustive_short_strings(void **state)
{
    (void)state;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
            static const size_t cut1[1] = {1};
            for (size_t k = 0; k < N_VALIDATORS; k++) {
                expect_chunked(&validators[k], s, 2, NULL, 0, "2-byte exhaustive");
                expect_chunked(&validators[k], s, 2, cut1, 1, "2-byte exhaustive");
            }
        }
    }
    static const uint8_t thirds[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                     0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xf5};
    for (unsigned a = 0x80; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (size_t t = 0; t < sizeof thirds; t++) {
                uint8_t s[3] = {(uint8_t)a, (uint8_t)b, thirds[t]};
                static const size_t cut2[1] = {2};
                for (size_t k = 0; k < N_VALIDATORS; k++) {
                    expect_chunked(&validators[k], s, 3, NULL, 0, "3-byte exhaustive");
                    expect_chunked(&validators[k], s, 3, cut2, 1, "3-byte exhaustive");
                }
            }
        }
    }
}

/* Autobahn 6.4.1-6.4.4: the fail-fast cases with the suite's own fragmentation. The INVALID
 * must come in the chunk holding 0x90, at its offset in that chunk; no earlier chunk may
 * fail. */
static void test_autobahn_6_4_fail_fast(void **state)
{
    (void)state;
    static const uint8_t kosme[] = KOSME;
    static const uint8_t bad4[] = {0xf4, 0x90, 0x80, 0x80};
    static const uint8_t edited[] = "edited";
    for (size_t k = 0; k < N_VALIDATORS; k++) {
        validate_fn validate = validators[k].validate;
        struct weft_utf8 u;
        size_t bad;

        /* 6.4.1: [kosme] [f4 90 80 80] [edited]: fails in fragment 2 at offset 1. */
        weft_utf8_reset(&u);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, kosme, 11, &bad), WEFT_UTF8_OK);
        assert_int_equal(validate(&u, bad4, 4, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 1);

        /* 6.4.2: [kosme f4] [90 80 80] [edited]: fragment 1 PARTIAL, fragment 2 fails at 0. */
        uint8_t frag1[12];
        memcpy(frag1, kosme, 11);
        frag1[11] = 0xf4;
        weft_utf8_reset(&u);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, frag1, 12, &bad), WEFT_UTF8_PARTIAL);
        assert_int_equal(bad, UNTOUCHED);
        assert_int_equal(validate(&u, bad4 + 1, 3, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 0);

        /* 6.4.3: [kosme] then [f4 90 80 80] delivered byte by byte: fails on the 0x90. */
        weft_utf8_reset(&u);
        assert_int_equal(validate(&u, kosme, 11, &bad), WEFT_UTF8_OK);
        assert_int_equal(validate(&u, bad4, 1, &bad), WEFT_UTF8_PARTIAL);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, bad4 + 1, 1, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 0);

        /* 6.4.4: [kosme f4] then [90 80 80] byte by byte: fails on the 0x90. */
        weft_utf8_reset(&u);
        assert_int_equal(validate(&u, frag1, 12, &bad), WEFT_UTF8_PARTIAL);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, bad4 + 1, 1, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 0);

        /* Whole message in one chunk: fails at 11 + 1, not at the end of the message. */
        uint8_t whole[21];
        memcpy(whole, kosme, 11);
        memcpy(whole + 11, bad4, 4);
        memcpy(whole + 15, edited, 6);
        weft_utf8_reset(&u);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, whole, sizeof whole, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 12);
    }
}

/* Empty chunks leave the state alone (Autobahn 6.1.2/6.1.3 send empty fragments), an
 * INVALID is sticky until reset, and weft_utf8_reset starts a new text. */
static void test_state_across_calls(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_VALIDATORS; k++) {
        validate_fn validate = validators[k].validate;
        struct weft_utf8 u = {0};
        size_t bad = UNTOUCHED;
        static const uint8_t e_acute[2] = {0xc3, 0xa9};
        static const uint8_t stray[1] = {0x80};

        assert_int_equal(validate(&u, NULL, 0, &bad), WEFT_UTF8_OK);
        assert_int_equal(validate(&u, e_acute, 1, &bad), WEFT_UTF8_PARTIAL);
        assert_int_equal(validate(&u, e_acute, 0, &bad), WEFT_UTF8_PARTIAL);
        assert_int_not_equal(u.state, 0);
        assert_int_equal(validate(&u, e_acute + 1, 1, &bad), WEFT_UTF8_OK);
        assert_int_equal(u.state, 0);
        assert_int_equal(bad, UNTOUCHED);

        assert_int_equal(validate(&u, stray, 1, &bad), WEFT_UTF8_INVALID);
        assert_int_equal(bad, 0);
        bad = UNTOUCHED;
        assert_int_equal(validate(&u, e_acute, 2, &bad), WEFT_UTF8_INVALID); /* sticky */
        assert_int_equal(bad, 0);
        assert_int_equal(validate(&u, e_acute, 0, NULL), WEFT_UTF8_INVALID);

        weft_utf8_reset(&u);
        assert_int_equal(validate(&u, e_acute, 2, &bad), WEFT_UTF8_OK);

        /* A state value the validator never stores is treated as failed, not trusted. */
        u.state = 7;
        assert_int_equal(validate(&u, e_acute, 2, &bad), WEFT_UTF8_INVALID);
        u.state = 0xffffffffu;
        assert_int_equal(validate(&u, e_acute, 2, &bad), WEFT_UTF8_INVALID);
    }
}

/* ------------------------------------------------------------------ differential */

/* Deterministic xorshift64* generator. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1du;
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return n ? (size_t)(rng_next(s) % n) : 0;
}

/* A byte biased toward the ones that matter to UTF-8: ASCII, continuations (split by the
 * 80/90/A0 boundaries), every kind of lead byte, and the never-valid bytes. */
static uint8_t biased_byte(uint64_t *s)
{
    static const uint8_t edges[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
                                    0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
                                    0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff};
    size_t pick = rng_below(s, 100);
    if (pick < 25) return (uint8_t)rng_below(s, 0x80);
    if (pick < 55) return (uint8_t)(0x80 + rng_below(s, 0x40));
    if (pick < 80) return (uint8_t)(0xc0 + rng_below(s, 0x40));
    if (pick < 95) return edges[rng_below(s, sizeof edges)];
    return (uint8_t)rng_below(s, 256);
}

/* A random code point: mostly ASCII, Latin, CJK and emoji, with the range boundaries. */
static uint32_t random_code_point(uint64_t *s)
{
    static const uint32_t edges[] = {0x0,     0x7f,    0x80,    0x7ff,    0x800,   0xfff,
                                     0x1000,  0xd7ff,  0xe000,  0xfffd,   0xffff,  0x10000,
                                     0x3ffff, 0x40000, 0xfffff, 0x100000, 0x10ffff};
    switch (rng_below(s, 6)) {
    case 0:
    case 1:
        return (uint32_t)(0x20 + rng_below(s, 0x5f));
    case 2:
        return (uint32_t)(0x80 + rng_below(s, 0x780));
    case 3: {
        uint32_t cp = (uint32_t)(0x800 + rng_below(s, 0xf800));
        return (cp >= 0xd800 && cp <= 0xdfff) ? cp - 0x800 : cp;
    }
    case 4:
        return (uint32_t)(0x10000 + rng_below(s, 0x100000));
    default:
        return edges[rng_below(s, sizeof edges / sizeof edges[0])];
    }
}

/* Builds a random test string into buf (capacity cap) and returns its length. Three kinds:
 * short strings of biased bytes; valid text of random code points with a few mutations
 * (byte replaced, inserted, deleted, or the text truncated); long ASCII runs with a few
 * biased bytes dropped in (for the fast paths). */
static size_t random_string(uint64_t *s, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    switch (rng_below(s, 3)) {
    case 0:
        len = rng_below(s, 24);
        for (size_t i = 0; i < len; i++)
            buf[i] = biased_byte(s);
        return len;
    case 1: {
        size_t want = rng_below(s, 200);
        while (len + 4 <= cap && len < want)
            len += encode_utf8(random_code_point(s), buf + len);
        size_t mutations = rng_below(s, 4);
        for (size_t m = 0; m < mutations && len > 0; m++) {
            size_t at = rng_below(s, len);
            switch (rng_below(s, 4)) {
            case 0:
                buf[at] = biased_byte(s);
                break;
            case 1:
                if (len < cap) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = biased_byte(s);
                    len++;
                }
                break;
            case 2:
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default:
                len = at;
                break;
            }
        }
        return len;
    }
    default:
        len = rng_below(s, cap);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)('a' + i % 26);
        size_t drops = rng_below(s, 3);
        for (size_t d = 0; d < drops && len > 0; d++)
            buf[rng_below(s, len)] = biased_byte(s);
        return len;
    }
}

/* 240k random strings against the reference: whole, split in two and in three at random
 * points, on every validator, plus weft_utf8_valid. */
static void test_differential_random(void **state)
{
    (void)state;
    enum { CASES = 240000, CAP = 320 };
    uint8_t buf[CAP];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    size_t verdicts[3] = {0, 0, 0};
    for (size_t n = 0; n < CASES; n++) {
        size_t len = random_string(&seed, buf, CAP);
        struct verdict want = ref_validate(buf, len);
        verdicts[want.result + 1]++;
        size_t cuts[2] = {rng_below(&seed, len + 1), rng_below(&seed, len + 1)};
        if (cuts[0] > cuts[1]) {
            size_t t = cuts[0];
            cuts[0] = cuts[1];
            cuts[1] = t;
        }
        for (size_t k = 0; k < N_VALIDATORS; k++) {
            const struct validator *v = &validators[k];
            expect_chunked(v, buf, len, NULL, 0, "random");
            expect_chunked(v, buf, len, cuts + 1, 1, "random split in 2");
            expect_chunked(v, buf, len, cuts, 2, "random split in 3");
            if (v->valid(buf, len) != (want.result == WEFT_UTF8_OK))
                fail_msg("random #%zu [%s]: valid() disagrees with the reference", n, v->name);
        }
    }
    /* The generator must really produce all three verdicts in bulk. */
    print_message("random strings: %zu invalid, %zu valid, %zu partial\n", verdicts[0], verdicts[1],
                  verdicts[2]);
    assert_true(verdicts[0] > CASES / 10);
    assert_true(verdicts[1] > CASES / 10);
    assert_true(verdicts[2] > CASES / 100);
}

/* Long texts (up to 64 KiB) of random code points with one corrupted byte at a random place:
 * the offset must be exact far from the start and across many fast-path blocks. */
static void test_long_texts_one_error(void **state)
{
    (void)state;
    enum { CAP = 65536 };
    static uint8_t buf[CAP];
    uint64_t seed = 12345;
    for (size_t n = 0; n < 300; n++) {
        size_t len = 0;
        bool ascii_heavy = n % 2 == 0;
        size_t want_len = rng_below(&seed, CAP - 4);
        while (len < want_len) {
            uint32_t cp = ascii_heavy && rng_below(&seed, 50) ? 'a' + (uint32_t)(len % 26)
                                                              : random_code_point(&seed);
            len += encode_utf8(cp, buf + len);
        }
        if (n % 3 != 0 && len > 0) buf[rng_below(&seed, len)] = biased_byte(&seed);
        struct verdict want = ref_validate(buf, len);
        size_t cut[1] = {rng_below(&seed, len + 1)};
        for (size_t k = 0; k < N_VALIDATORS; k++) {
            expect_chunked(&validators[k], buf, len, NULL, 0, "long text");
            expect_chunked(&validators[k], buf, len, cut, 1, "long text split");
            assert_int_equal(validators[k].valid(buf, len), want.result == WEFT_UTF8_OK);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kuhn_stress_cases),
        cmocka_unit_test(test_autobahn_cases),
        cmocka_unit_test(test_continuation_bytes),
        cmocka_unit_test(test_lonely_start_bytes),
        cmocka_unit_test(test_noncharacters),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_exhaustive_short_strings),
        cmocka_unit_test(test_autobahn_6_4_fail_fast),
        cmocka_unit_test(test_state_across_calls),
        cmocka_unit_test(test_differential_random),
        cmocka_unit_test(test_long_texts_one_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
