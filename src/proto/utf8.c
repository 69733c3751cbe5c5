/*
 * utf8.c — incremental, fail-fast UTF-8 validation (RFC 3629; Unicode 15 §3.9, table 3-7).
 *
 * Well-formed byte sequences (table 3-7):
 *
 *     code points         byte 1  byte 2  byte 3  byte 4
 *     U+0000..U+007F      00..7F
 *     U+0080..U+07FF      C2..DF  80..BF
 *     U+0800..U+0FFF      E0      A0..BF  80..BF
 *     U+1000..U+CFFF      E1..EC  80..BF  80..BF
 *     U+D000..U+D7FF      ED      80..9F  80..BF
 *     U+E000..U+FFFF      EE..EF  80..BF  80..BF
 *     U+10000..U+3FFFF    F0      90..BF  80..BF  80..BF
 *     U+40000..U+FFFFF    F1..F3  80..BF  80..BF  80..BF
 *     U+100000..U+10FFFF  F4      80..8F  80..BF  80..BF
 *
 * The table is a DFA with nine states: ACCEPT (between code points), ERROR (absorbing), TAIL1..3
 * (1..3 bytes of 80..BF still due) and four states for the restricted second byte after E0, ED,
 * F0 and F4. The DFA enters ERROR at exactly the first byte that no continuation could make
 * valid, which is the fail-fast offset weft.h promises.
 *
 * Encoding ("shift DFA"): each state is a multiple of 6 (its bit offset), and for every byte b
 * transitions[b] packs, at bit offset s, the 6-bit next state for current state s. One step is
 * then `state = transitions[b] >> (state & 63)`: one load that does not depend on the state
 * and one shift, so the loop-carried dependency is a single shift per byte. Bits above the low
 * six are garbage from other states' fields and are ignored (x86 masks shift counts to six bits
 * anyway, so the `& 63` costs nothing).
 *
 * Fast path: while between code points, ASCII is skipped 64 bytes at a time with SSE2 (8-byte
 * words with WEFT_NO_SIMD or off x86), landing exactly on the first non-ASCII byte. The DFA
 * then runs over blocks of up to DFA_BLOCK bytes without testing for ERROR inside the block
 * (ERROR is absorbing); only a block that ends in ERROR is walked again byte by byte to find
 * the offending byte.
 */
#include "weft.h"

#include <string.h>

#if defined(__SSE2__) && !defined(WEFT_NO_SIMD)
#define WEFT_UTF8_SSE2 1
#include <emmintrin.h>
#endif

/* DFA states, as bit offsets into a transition row. */
enum {
    S_ACCEPT = 0,
    S_ERROR = 6,
    S_TAIL1 = 12, /* one more 80..BF, then ACCEPT */
    S_TAIL2 = 18, /* two more 80..BF */
    S_TAIL3 = 24, /* three more 80..BF */
    S_E0 = 30,    /* after E0: A0..BF, then TAIL1 */
    S_ED = 36,    /* after ED: 80..9F, then TAIL1 */
    S_F0 = 42,    /* after F0: 90..BF, then TAIL2 */
    S_F4 = 48,    /* after F4: 80..8F, then TAIL2 */
    S_LAST = S_F4,
};

/* clang-format off */
/* The row of a byte class: the next state for each current state. ERROR always stays ERROR. */
#define NEXT(from, to) ((uint64_t)(to) << (from))
#define ROW(accept, tail1, tail2, tail3, e0, ed, f0, f4)                                      \
    (NEXT(S_ACCEPT, accept) | NEXT(S_ERROR, S_ERROR) | NEXT(S_TAIL1, tail1) |                  \
     NEXT(S_TAIL2, tail2) | NEXT(S_TAIL3, tail3) | NEXT(S_E0, e0) | NEXT(S_ED, ed) |           \
     NEXT(S_F0, f0) | NEXT(S_F4, f4))

#define E S_ERROR
/* from state:         ACCEPT    TAIL1     TAIL2    TAIL3    E0       ED       F0       F4 */
#define R_ASCII    ROW(S_ACCEPT, E,        E,       E,       E,       E,       E,       E)
#define R_CONT_80  ROW(E,        S_ACCEPT, S_TAIL1, S_TAIL2, E,       S_TAIL1, E,       S_TAIL2)
#define R_CONT_90  ROW(E,        S_ACCEPT, S_TAIL1, S_TAIL2, E,       S_TAIL1, S_TAIL2, E)
#define R_CONT_A0  ROW(E,        S_ACCEPT, S_TAIL1, S_TAIL2, S_TAIL1, E,       S_TAIL2, E)
#define R_NEVER    ROW(E,        E,        E,       E,       E,       E,       E,       E)
#define R_LEAD2    ROW(S_TAIL1,  E,        E,       E,       E,       E,       E,       E)
#define R_LEAD_E0  ROW(S_E0,     E,        E,       E,       E,       E,       E,       E)
#define R_LEAD3    ROW(S_TAIL2,  E,        E,       E,       E,       E,       E,       E)
#define R_LEAD_ED  ROW(S_ED,     E,        E,       E,       E,       E,       E,       E)
#define R_LEAD_F0  ROW(S_F0,     E,        E,       E,       E,       E,       E,       E)
#define R_LEAD4    ROW(S_TAIL3,  E,        E,       E,       E,       E,       E,       E)
#define R_LEAD_F4  ROW(S_F4,     E,        E,       E,       E,       E,       E,       E)

#define X2(r) r, r
#define X4(r) X2(r), X2(r)
#define X8(r) X4(r), X4(r)
#define X16(r) X8(r), X8(r)
#define X32(r) X16(r), X16(r)
#define X64(r) X32(r), X32(r)

/* transitions[b]: the packed next states for byte b (see the top of the file). */
static const uint64_t transitions[] = {
    X64(R_ASCII), X64(R_ASCII),                 /* 00..7F */
    X16(R_CONT_80),                             /* 80..8F */
    X16(R_CONT_90),                             /* 90..9F */
    X32(R_CONT_A0),                             /* A0..BF */
    X2(R_NEVER),                                /* C0..C1: overlong 2-byte leads */
    X16(R_LEAD2), X8(R_LEAD2), X4(R_LEAD2), X2(R_LEAD2), /* C2..DF */
    R_LEAD_E0,                                  /* E0 */
    X8(R_LEAD3), X4(R_LEAD3),                   /* E1..EC */
    R_LEAD_ED,                                  /* ED */
    X2(R_LEAD3),                                /* EE..EF */
    R_LEAD_F0,                                  /* F0 */
    R_LEAD4, R_LEAD4, R_LEAD4,                  /* F1..F3 */
    R_LEAD_F4,                                  /* F4 */
    X8(R_NEVER), X2(R_NEVER), R_NEVER,          /* F5..FF: beyond U+10FFFF or never used */
};
_Static_assert(sizeof transitions == 256 * sizeof(uint64_t), "one row per byte value");
_Static_assert(S_LAST + 6 <= 64, "states fit in a 64-bit row");

#undef E
#undef NEXT
#undef ROW
#undef X2
#undef X4
#undef X8
#undef X16
#undef X32
#undef X64
#undef R_ASCII
#undef R_CONT_80
#undef R_CONT_90
#undef R_CONT_A0
#undef R_NEVER
#undef R_LEAD2
#undef R_LEAD_E0
#undef R_LEAD3
#undef R_LEAD_ED
#undef R_LEAD_F0
#undef R_LEAD4
#undef R_LEAD_F4
/* clang-format on */

/* Bytes the DFA consumes between two checks for ERROR (and for a return to ASCII). */
#define DFA_BLOCK 32

/* Runs the DFA from `state` over p[0..n). Returns the raw state (only the low 6 bits are
 * meaningful). */
static inline uint64_t dfa_run(uint64_t state, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; n - i >= 4; i += 4) {
        state = transitions[p[i]] >> (state & 63);
        state = transitions[p[i + 1]] >> (state & 63);
        state = transitions[p[i + 2]] >> (state & 63);
        state = transitions[p[i + 3]] >> (state & 63);
    }
    for (; i < n; i++)
        state = transitions[p[i]] >> (state & 63);
    return state;
}

/* Runs the DFA from `state` over p[0..n), which is known to reach ERROR, and returns the
 * offset of the byte that made it do so. */
static size_t dfa_find_error(uint64_t state, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        state = (transitions[p[i]] >> (state & 63)) & 63;
        if (state == S_ERROR) return i;
    }
    return n; /* not reached when the precondition holds */
}

/* Returns the index of the first byte in buf[i..len) that is not ASCII, or len. */
static size_t skip_ascii(const uint8_t *buf, size_t i, size_t len)
{
#ifdef WEFT_UTF8_SSE2
    while (len - i >= 64) {
        const __m128i *p = (const __m128i *)(const void *)(buf + i);
        __m128i a = _mm_loadu_si128(p);
        __m128i b = _mm_loadu_si128(p + 1);
        __m128i c = _mm_loadu_si128(p + 2);
        __m128i d = _mm_loadu_si128(p + 3);
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))) != 0) break;
        i += 64;
    }
    while (len - i >= 16) {
        int high = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(buf + i)));
        if (high != 0) return i + (size_t)__builtin_ctz((unsigned)high);
        i += 16;
    }
#else
    const uint64_t high_bits = 0x8080808080808080u;
    while (len - i >= 32) {
        uint64_t w[4];
        memcpy(w, buf + i, sizeof w);
        if (((w[0] | w[1] | w[2] | w[3]) & high_bits) != 0) break;
        i += 32;
    }
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, buf + i, sizeof w);
        w &= high_bits;
        if (w != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            return i + (size_t)(__builtin_clzll(w) / 8);
#else
            return i + (size_t)(__builtin_ctzll(w) / 8);
#endif
        }
        i += 8;
    }
#endif
    while (i < len && buf[i] < 0x80)
        i++;
    return i;
}

/* Validates the next chunk of a text, continuing from u->state. Returns OK (complete code
 * points so far), PARTIAL (valid so far, a sequence is open) or INVALID, in which case
 * *bad_offset (if not NULL) gets the offset in buf of the first byte that made the text
 * invalid; *bad_offset is not written otherwise. After INVALID the state stays invalid and
 * later calls return INVALID with offset 0 until weft_utf8_reset. */
enum weft_utf8_result weft_utf8_validate(struct weft_utf8 *u, const uint8_t *buf, size_t len,
                                         size_t *bad_offset)
{
    uint64_t state = u->state;
    if (state > S_LAST || state % 6 != 0)
        state = S_ERROR; /* not a state we ever store: treat as already failed */
    if (state == S_ERROR) {
        u->state = S_ERROR;
        if (bad_offset) *bad_offset = 0;
        return WEFT_UTF8_INVALID;
    }

    size_t i = 0;
    while (i < len) {
        if (state == S_ACCEPT) {
            i = skip_ascii(buf, i, len);
            if (i == len) break;
        }
        size_t n = len - i < DFA_BLOCK ? len - i : DFA_BLOCK;
        uint64_t next = dfa_run(state, buf + i, n) & 63;
        if (next == S_ERROR) {
            u->state = S_ERROR;
            if (bad_offset) *bad_offset = i + dfa_find_error(state, buf + i, n);
            return WEFT_UTF8_INVALID;
        }
        state = next;
        i += n;
    }
    u->state = (uint32_t)state;
    return state == S_ACCEPT ? WEFT_UTF8_OK : WEFT_UTF8_PARTIAL;
}

/* Validates a whole string. Returns true if buf[0..len) is entirely valid UTF-8 and ends on a
 * code point boundary. */
bool weft_utf8_valid(const uint8_t *buf, size_t len)
{
    struct weft_utf8 u = {0};
    return weft_utf8_validate(&u, buf, len, NULL) == WEFT_UTF8_OK;
}
