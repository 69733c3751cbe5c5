/*
 * mask.c — RFC 6455 §5.3 payload masking: XOR with a repeating 4-byte key.
 *
 * Layout of the work: a scalar head until the pointer is 8-byte aligned, then a "bulk" routine
 * that XORs whole 8-byte words (and 16/32-byte vectors on x86_64) with the key replicated,
 * then a scalar tail. The bulk routine only ever processes multiples of 8 bytes, so the mask
 * phase at its end equals the phase at its start.
 *
 * On x86_64 the bulk routine is SSE2 (always present there) or AVX2, chosen once at run time
 * with __builtin_cpu_supports; elsewhere it is plain 64-bit words. Defining WEFT_NO_SIMD at
 * compile time forces the portable word routine (the unit test builds this file that way too).
 * All unaligned accesses go through memcpy or the *_loadu/_storeu intrinsics (UBSan clean).
 */
#include "weft.h"

#include <string.h>

#if defined(__x86_64__) && !defined(WEFT_NO_SIMD)
#define WEFT_MASK_X86 1
#include <immintrin.h>
#include <stdatomic.h>
#endif

/* A bulk routine: XORs the longest multiple-of-8 prefix of buf[0..len) with key4 (the four
 * key bytes in memory order, already rotated to the current phase) and returns its length. */
typedef size_t (*mask_bulk_fn)(uint8_t *buf, size_t len, uint32_t key4);

/* Replicates the 4 key bytes (as laid out in memory) into an 8-byte word. Since both halves
 * are equal the result has the right memory layout on either byte order. */
static inline uint64_t key_word(uint32_t key4)
{
    return ((uint64_t)key4 << 32) | key4;
}

/* XORs one 8-byte word at p (any alignment) with key8. */
static inline void xor_word(uint8_t *p, uint64_t key8)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    w ^= key8;
    memcpy(p, &w, sizeof w);
}

/* Portable bulk routine: 64-bit words, four per iteration. Returns the bytes processed. */
static size_t mask_bulk_words(uint8_t *buf, size_t len, uint32_t key4)
{
    const uint64_t key8 = key_word(key4);
    size_t done = 0;
    for (; len - done >= 32; done += 32) {
        xor_word(buf + done, key8);
        xor_word(buf + done + 8, key8);
        xor_word(buf + done + 16, key8);
        xor_word(buf + done + 24, key8);
    }
    for (; len - done >= 8; done += 8)
        xor_word(buf + done, key8);
    return done;
}

#ifdef WEFT_MASK_X86
/* SSE2 bulk routine: 64 bytes per iteration, then 16, then 8-byte words. Returns the bytes
 * processed. */
static size_t mask_bulk_sse2(uint8_t *buf, size_t len, uint32_t key4)
{
    const __m128i key = _mm_set1_epi32((int)key4);
    size_t done = 0;
    for (; len - done >= 64; done += 64) {
        __m128i *p = (__m128i *)(void *)(buf + done);
        __m128i a = _mm_loadu_si128(p);
        __m128i b = _mm_loadu_si128(p + 1);
        __m128i c = _mm_loadu_si128(p + 2);
        __m128i d = _mm_loadu_si128(p + 3);
        _mm_storeu_si128(p, _mm_xor_si128(a, key));
        _mm_storeu_si128(p + 1, _mm_xor_si128(b, key));
        _mm_storeu_si128(p + 2, _mm_xor_si128(c, key));
        _mm_storeu_si128(p + 3, _mm_xor_si128(d, key));
    }
    for (; len - done >= 16; done += 16) {
        __m128i *p = (__m128i *)(void *)(buf + done);
        _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), key));
    }
    return done + mask_bulk_words(buf + done, len - done, key4);
}

/* AVX2 bulk routine: 8-byte words until the pointer is 32-byte aligned (when it was 8-byte
 * aligned on entry), then 128 bytes per iteration, then 32, then 8-byte words. Only called
 * when the CPU supports AVX2. Returns the bytes processed. */
__attribute__((target("avx2"))) static size_t mask_bulk_avx2(uint8_t *buf, size_t len,
                                                             uint32_t key4)
{
    const __m256i key = _mm256_set1_epi32((int)key4);
    const uint64_t key8 = key_word(key4);
    size_t done = 0;
    size_t lead = (size_t)(-(uintptr_t)buf & 31u) & ~(size_t)7;
    if (len >= 64 + lead) {
        for (; done < lead; done += 8)
            xor_word(buf + done, key8);
    }
    for (; len - done >= 128; done += 128) {
        __m256i *p = (__m256i *)(void *)(buf + done);
        __m256i a = _mm256_loadu_si256(p);
        __m256i b = _mm256_loadu_si256(p + 1);
        __m256i c = _mm256_loadu_si256(p + 2);
        __m256i d = _mm256_loadu_si256(p + 3);
        _mm256_storeu_si256(p, _mm256_xor_si256(a, key));
        _mm256_storeu_si256(p + 1, _mm256_xor_si256(b, key));
        _mm256_storeu_si256(p + 2, _mm256_xor_si256(c, key));
        _mm256_storeu_si256(p + 3, _mm256_xor_si256(d, key));
    }
    for (; len - done >= 32; done += 32) {
        __m256i *p = (__m256i *)(void *)(buf + done);
        _mm256_storeu_si256(p, _mm256_xor_si256(_mm256_loadu_si256(p), key));
    }
    return done + mask_bulk_words(buf + done, len - done, key4);
}

/* Returns the bulk routine for this CPU: AVX2 if supported, else SSE2. The CPU check runs
 * once; the answer is cached in an atomic flag (0 = not yet known, 1 = SSE2, 2 = AVX2). */
static mask_bulk_fn mask_select_bulk(void)
{
    static atomic_int cpu_level;
    int level = atomic_load_explicit(&cpu_level, memory_order_relaxed);
    if (level == 0) {
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx2") ? 2 : 1;
        atomic_store_explicit(&cpu_level, level, memory_order_relaxed);
    }
    return level == 2 ? mask_bulk_avx2 : mask_bulk_sse2;
}
#else
/* Returns the portable bulk routine (no SIMD on this target or WEFT_NO_SIMD defined). */
static mask_bulk_fn mask_select_bulk(void)
{
    return mask_bulk_words;
}
#endif

/* XORs buf[0..len) byte by byte with mask starting at `phase`; returns the next phase. */
static unsigned mask_bytes(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= mask[phase];
        phase = (phase + 1) & 3u;
    }
    return phase;
}

/* weft_mask with an explicit bulk routine: scalar head to 8-byte alignment, bulk, scalar
 * tail. Returns the phase of the byte after buf[len - 1]. */
static unsigned mask_with(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase,
                          mask_bulk_fn bulk)
{
    phase &= 3u;
    if (len < 16) return mask_bytes(buf, len, mask, phase);
    if (len < 128) {
        /* Short payloads (the common chat/ticker message): unaligned 8-byte words, no
         * alignment head and no dispatch to a bulk routine. */
        uint8_t r[8];
        for (unsigned i = 0; i < 8; i++)
            r[i] = mask[(phase + i) & 3u];
        uint64_t key8;
        memcpy(&key8, r, sizeof key8);
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, sizeof w);
            w ^= key8;
            memcpy(buf + i, &w, sizeof w);
        }
        return mask_bytes(buf + i, len - i, mask, phase); /* 8-byte steps keep the phase */
    }

    size_t head = (size_t)(-(uintptr_t)buf & 7u);
    phase = mask_bytes(buf, head, mask, phase);
    buf += head;
    len -= head;

    uint8_t rotated[4] = {mask[phase], mask[(phase + 1) & 3u], mask[(phase + 2) & 3u],
                          mask[(phase + 3) & 3u]};
    uint32_t key4;
    memcpy(&key4, rotated, sizeof key4);
    size_t done = bulk(buf, len, key4); /* a multiple of 8: the phase is unchanged */

    return mask_bytes(buf + done, len - done, mask, phase);
}

/* Unmasks (or masks) buf[0..len) in place, byte i with mask[(phase + i) % 4]; returns the
 * phase for the byte that would follow. See weft.h. */
unsigned weft_mask(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    return mask_with(buf, len, mask, phase, mask_select_bulk());
}
