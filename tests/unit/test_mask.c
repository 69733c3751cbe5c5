/*
 * test_mask.c — weft_mask (RFC 6455 masking) against a naive byte-by-byte reference, for every
 * length 0..300, alignment 0..31 and phase 0..3, for payloads split in two calls at every
 * offset, and for each bulk routine (64-bit words, SSE2, AVX2) on its own; plus the random
 * byte pool (weft_random_bytes), with a fake getrandom(2) for the failure paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "weft.h"

/* mask.c compiled into this test under another name, so that its internal routines
 * (mask_with and each mask_bulk_*) can be tested one by one on any CPU that has them. */
#define weft_mask mask_c_weft_mask
#include "proto/mask.c"
#undef weft_mask

/* random.c compiled into this test under another name, with getrandom(2) replaced by
 * fake_getrandom below so that failures, EINTR and short reads can be simulated. */
#define getrandom fake_getrandom
#define weft_random_bytes random_c_weft_random_bytes
#include "proto/random.c"
#undef weft_random_bytes
#undef getrandom

/* How fake_getrandom behaves: fail with this errno (0: succeed), interrupt this many calls
 * with EINTR first, and return at most max_chunk bytes per call. Counts the calls. */
static int fake_errno;
static int fake_eintr_calls;
static size_t fake_max_chunk = SIZE_MAX;
static int fake_calls;

ssize_t fake_getrandom(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    fake_calls++;
    if (fake_eintr_calls > 0) {
        fake_eintr_calls--;
        errno = EINTR;
        return -1;
    }
    if (fake_errno != 0) {
        errno = fake_errno;
        return -1;
    }
    size_t n = len < fake_max_chunk ? len : fake_max_chunk;
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(0xa5 ^ (i * 7));
    return (ssize_t)n;
}

/* A masking implementation under test. */
typedef unsigned (*mask_impl_fn)(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase);

/* weft_mask with the portable 64-bit word routine. */
static unsigned mask_via_words(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    return mask_with(buf, len, mask, phase, mask_bulk_words);
}

#ifdef WEFT_MASK_X86
/* weft_mask with the SSE2 routine. */
static unsigned mask_via_sse2(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    return mask_with(buf, len, mask, phase, mask_bulk_sse2);
}

/* weft_mask with the AVX2 routine (only called when the CPU has AVX2). */
static unsigned mask_via_avx2(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    return mask_with(buf, len, mask, phase, mask_bulk_avx2);
}
#endif

struct mask_impl {
    const char *name;
    mask_impl_fn fn;
};

/* Fills impls[] with every implementation this CPU can run; returns how many. */
static size_t mask_impls(struct mask_impl impls[4])
{
    size_t n = 0;
    impls[n++] = (struct mask_impl){"weft_mask (library)", weft_mask};
    impls[n++] = (struct mask_impl){"words", mask_via_words};
#ifdef WEFT_MASK_X86
    impls[n++] = (struct mask_impl){"sse2", mask_via_sse2};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        impls[n++] = (struct mask_impl){"avx2", mask_via_avx2};
    else
        print_message("note: CPU without AVX2, AVX2 routine not tested\n");
#endif
    return n;
}

/* The obviously correct reference: byte i XORed with mask[(phase + i) % 4]. */
static unsigned mask_reference(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    for (size_t i = 0; i < len; i++)
        buf[i] ^= mask[(phase + i) % 4];
    return (unsigned)((phase + len) % 4);
}

/* Deterministic xorshift64* generator for test data. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1du;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t *seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rng_next(seed) >> 56);
}

/* Fails with a message if a and b differ, naming the first differing index. */
static void expect_same_bytes(const uint8_t *got, const uint8_t *want, size_t len, const char *what,
                              size_t a, size_t b, size_t c)
{
    for (size_t i = 0; i < len; i++) {
        if (got[i] != want[i])
            fail_msg("%s (%zu, %zu, %zu): byte %zu is %02x, expected %02x", what, a, b, c, i,
                     got[i], want[i]);
    }
}

/* RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58. */
static void test_mask_rfc_example(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t masked[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t buf[5];
    memcpy(buf, "Hello", 5);
    assert_int_equal(weft_mask(buf, 5, key, 0), 1);
    assert_memory_equal(buf, masked, 5);
    assert_int_equal(weft_mask(buf, 5, key, 0), 1);
    assert_memory_equal(buf, "Hello", 5);
}

/* Every implementation, every length 0..300, alignment 0..31 and phase 0..3, against the
 * reference; bytes around the range must stay untouched. */
static void test_mask_all_lengths_alignments_phases(void **state)
{
    (void)state;
    enum { GUARD = 40, MAX_LEN = 300, MAX_OFF = 32 };
    _Alignas(64) uint8_t orig[GUARD + MAX_OFF + MAX_LEN + GUARD];
    _Alignas(64) uint8_t got[sizeof orig];
    _Alignas(64) uint8_t want[sizeof orig];
    struct mask_impl impls[4];
    size_t n_impls = mask_impls(impls);
    uint64_t seed = 0x1234567887654321u;
    fill_random(orig, sizeof orig, &seed);

    for (size_t k = 0; k < n_impls; k++) {
        for (size_t len = 0; len <= MAX_LEN; len++) {
            for (size_t off = 0; off < MAX_OFF; off++) {
                for (unsigned phase = 0; phase < 4; phase++) {
                    uint8_t key[4];
                    fill_random(key, 4, &seed);
                    memcpy(got, orig, sizeof orig);
                    memcpy(want, orig, sizeof orig);
                    unsigned next = impls[k].fn(got + GUARD + off, len, key, phase);
                    unsigned want_next = mask_reference(want + GUARD + off, len, key, phase);
                    if (next != want_next)
                        fail_msg("%s len %zu off %zu phase %u: returned phase %u, expected %u",
                                 impls[k].name, len, off, phase, next, want_next);
                    expect_same_bytes(got, want, sizeof got, impls[k].name, len, off, phase);
                }
            }
        }
    }
}

/* A payload split at every offset into two calls, the second continuing with the phase the
 * first returned, gives the same bytes as the reference over the whole payload. */
static void test_mask_split_at_every_offset(void **state)
{
    (void)state;
    enum { MAX_LEN = 300 };
    _Alignas(64) uint8_t orig[MAX_LEN + 64];
    _Alignas(64) uint8_t got[sizeof orig];
    _Alignas(64) uint8_t want[sizeof orig];
    static const uint8_t key[4] = {0x01, 0x20, 0x44, 0x8f};
    uint64_t seed = 42;
    fill_random(orig, sizeof orig, &seed);

    for (size_t len = 0; len <= MAX_LEN; len++) {
        size_t off = len % 32; /* walk the alignments too */
        for (size_t split = 0; split <= len; split++) {
            for (unsigned phase = 0; phase < 4; phase++) {
                memcpy(got, orig, sizeof orig);
                memcpy(want, orig, sizeof orig);
                unsigned mid = weft_mask(got + off, split, key, phase);
                unsigned end = weft_mask(got + off + split, len - split, key, mid);
                unsigned want_end = mask_reference(want + off, len, key, phase);
                if (mid != (phase + split) % 4 || end != want_end)
                    fail_msg("len %zu split %zu phase %u: phases %u, %u; expected %zu, %u", len,
                             split, phase, mid, end, (phase + split) % 4, want_end);
                expect_same_bytes(got, want, sizeof got, "split", len, split, phase);
            }
        }
    }
}

/* Large buffers at odd alignments exercise the long SIMD loops; masking twice restores the
 * data. */
static void test_mask_large_buffers(void **state)
{
    (void)state;
    enum { LEN = (1 << 20) + 77, SLACK = 64 };
    static uint8_t orig[LEN + SLACK], got[LEN + SLACK], want[LEN + SLACK];
    static const size_t offsets[] = {0, 1, 5, 8, 13, 31, 32};
    struct mask_impl impls[4];
    size_t n_impls = mask_impls(impls);
    uint64_t seed = 7;
    fill_random(orig, sizeof orig, &seed);
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};

    for (size_t k = 0; k < n_impls; k++) {
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            size_t off = offsets[o];
            unsigned phase = (unsigned)(o % 4);
            memcpy(got, orig, sizeof orig);
            memcpy(want, orig, sizeof orig);
            unsigned next = impls[k].fn(got + off, LEN - o, key, phase);
            unsigned want_next = mask_reference(want + off, LEN - o, key, phase);
            assert_int_equal(next, want_next);
            expect_same_bytes(got, want, sizeof got, impls[k].name, off, phase, 0);
            impls[k].fn(got + off, LEN - o, key, phase);
            expect_same_bytes(got, orig, sizeof got, "round trip", off, phase, k);
        }
    }
}

/* An all-zero key leaves data unchanged; the phase still advances. */
static void test_mask_zero_key(void **state)
{
    (void)state;
    static const uint8_t zero[4] = {0, 0, 0, 0};
    uint8_t buf[100], copy[100];
    uint64_t seed = 99;
    fill_random(buf, sizeof buf, &seed);
    memcpy(copy, buf, sizeof buf);
    assert_int_equal(weft_mask(buf + 3, 97, zero, 2), 3);
    assert_memory_equal(buf, copy, sizeof buf);
}

/* Returns true if buf[0..len) is all zero. */
static bool all_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != 0) return false;
    }
    return true;
}

/* weft_random_bytes fills from the pool, wipes what it handed out, and two draws differ. */
static void test_random_pool(void **state)
{
    (void)state;
    struct weft_random r;
    memset(&r, 0, sizeof r);
    uint8_t a[16], b[16];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    assert_int_equal(weft_random_bytes(&r, a, sizeof a), WEFT_OK);
    assert_int_equal(r.filled, 1);
    assert_int_equal(r.pos, 16);
    assert_true(all_zero(r.pool, 16));        /* handed-out bytes are wiped */
    assert_false(all_zero(r.pool + 16, 240)); /* the rest is still there */
    assert_int_equal(weft_random_bytes(&r, b, sizeof b), WEFT_OK);
    assert_int_equal(r.pos, 32);
    assert_false(all_zero(a, sizeof a));
    assert_memory_not_equal(a, b, sizeof a);
}

/* Draws across the end of the pool refill it; zero-length draws do nothing. */
static void test_random_refill_and_sizes(void **state)
{
    (void)state;
    struct weft_random r;
    memset(&r, 0, sizeof r);
    uint8_t out[300];
    assert_int_equal(weft_random_bytes(&r, out, 0), WEFT_OK);
    assert_int_equal(r.filled, 0);

    /* 100 mask keys of 4 bytes: crosses the 256-byte pool once. */
    uint8_t keys[100][4];
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(weft_random_bytes(&r, keys[i], 4), WEFT_OK);
    assert_int_equal(r.pos, (100 * 4) % 256);
    size_t same = 0;
    for (size_t i = 1; i < 100; i++)
        same += memcmp(keys[i], keys[i - 1], 4) == 0;
    assert_true(same < 2);

    /* A draw straddling the end of the pool. */
    r.pos = 250;
    assert_int_equal(weft_random_bytes(&r, out, 10), WEFT_OK);
    assert_int_equal(r.pos, 4);

    /* A draw larger than the pool bypasses it. */
    uint16_t pos_before = r.pos;
    memset(out, 0, sizeof out);
    assert_int_equal(weft_random_bytes(&r, out, sizeof out), WEFT_OK);
    assert_int_equal(r.pos, pos_before);
    assert_false(all_zero(out + 250, 50));
}

/* The fake kernel: EINTR is retried, short reads are completed, and a refusal falls back to
 * the weak generator, returns WEFT_ERR_IO and leaves the pool empty so the kernel is asked
 * again next time. */
static void test_random_kernel_failures(void **state)
{
    (void)state;
    struct weft_random r;
    uint8_t out[300];

    /* EINTR twice, then 5 bytes per call: 256-byte refill takes 2 + 52 calls. */
    memset(&r, 0, sizeof r);
    fake_errno = 0, fake_eintr_calls = 2, fake_max_chunk = 5, fake_calls = 0;
    assert_int_equal(random_c_weft_random_bytes(&r, out, 16), WEFT_OK);
    assert_int_equal(fake_calls, 2 + (256 + 4) / 5);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(out[i], (uint8_t)(0xa5 ^ ((i % 5) * 7)));
    assert_int_equal(r.pos, 16);

    /* The kernel refuses: weak bytes, WEFT_ERR_IO, pool emptied. */
    fake_errno = ENOSYS, fake_eintr_calls = 0, fake_max_chunk = SIZE_MAX, fake_calls = 0;
    r.pos = 256; /* pool used up: the next draw must refill */
    memset(out, 0, sizeof out);
    assert_int_equal(random_c_weft_random_bytes(&r, out, 16), WEFT_ERR_IO);
    assert_int_equal(fake_calls, 1);
    assert_false(all_zero(out, 16));
    assert_int_equal(r.filled, 0);
    uint8_t again[16];
    assert_int_equal(random_c_weft_random_bytes(&r, again, 16), WEFT_ERR_IO);
    assert_memory_not_equal(out, again, 16); /* the fallback does not repeat itself */

    /* Large draws fall back the same way. */
    memset(out, 0, sizeof out);
    assert_int_equal(random_c_weft_random_bytes(&r, out, sizeof out), WEFT_ERR_IO);
    assert_false(all_zero(out + 280, 20));

    /* The kernel is back: the next draw refills the pool from it. */
    fake_errno = 0, fake_calls = 0;
    assert_int_equal(random_c_weft_random_bytes(&r, out, 4), WEFT_OK);
    assert_int_equal(fake_calls, 1);
    assert_int_equal(r.filled, 1);
    assert_int_equal(out[0], 0xa5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_rfc_example),
        cmocka_unit_test(test_mask_all_lengths_alignments_phases),
        cmocka_unit_test(test_mask_split_at_every_offset),
        cmocka_unit_test(test_mask_large_buffers),
        cmocka_unit_test(test_mask_zero_key),
        cmocka_unit_test(test_random_pool),
        cmocka_unit_test(test_random_refill_and_sizes),
        cmocka_unit_test(test_random_kernel_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
