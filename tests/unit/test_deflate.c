/*
 * test_deflate.c — permessage-deflate: negotiation (RFC 7692 §5, §7.1) and the codec
 * (§7.2, including the §7.2.3 examples).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft.h"

static const struct weft_pmd_config defaults = {.enabled = true};

static int negotiate(const char *offer, const struct weft_pmd_config *cfg,
                     struct weft_pmd_params *a, char *out)
{
    return weft_pmd_negotiate(offer, strlen(offer), cfg, a, out, 256);
}

static void test_negotiate_basic(void **state)
{
    (void)state;
    struct weft_pmd_params a;
    char out[256];
    assert_int_equal(negotiate("permessage-deflate", &defaults, &a, out), 1);
    assert_string_equal(out, "permessage-deflate");
    assert_false(a.server_no_context_takeover);
    assert_int_equal(a.server_max_window_bits, 15);
    assert_int_equal(a.client_max_window_bits, 15);

    /* The browser's offer. */
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits", &defaults, &a, out),
                     1);
    assert_string_equal(out, "permessage-deflate");
    assert_true(a.client_max_window_bits_set);

    /* Parameters echoed / honoured, case-insensitive names, quoted values. */
    assert_int_equal(negotiate("Permessage-Deflate; server_no_context_takeover; "
                               "client_no_context_takeover; server_max_window_bits=10; "
                               "client_max_window_bits=\"12\"",
                               &defaults, &a, out),
                     1);
    assert_string_equal(out, "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=10; "
                             "client_max_window_bits=12");
    assert_true(a.server_no_context_takeover && a.client_no_context_takeover);
    assert_int_equal(a.server_max_window_bits, 10);
    assert_int_equal(a.client_max_window_bits, 12);

    /* Server-side configuration imposes its own limits. */
    struct weft_pmd_config lean = {.enabled = true,
                                   .no_context_takeover = true,
                                   .peer_no_context_takeover = true,
                                   .max_window_bits = 9,
                                   .peer_max_window_bits = 10};
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits", &lean, &a, out), 1);
    assert_string_equal(out, "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=9; "
                             "client_max_window_bits=10");
    /* Without client_max_window_bits in the offer the server must not send it. */
    assert_int_equal(negotiate("permessage-deflate", &lean, &a, out), 1);
    assert_null(strstr(out, "client_max_window_bits"));
    assert_int_equal(a.client_max_window_bits, 15);

    /* Disabled: nothing. Other extensions: ignored. */
    struct weft_pmd_config off = {0};
    assert_int_equal(negotiate("permessage-deflate", &off, &a, out), 0);
    assert_int_equal(negotiate("x-webkit-deflate-frame", &defaults, &a, out), 0);
}

static void test_negotiate_invalid_offers_declined(void **state)
{
    (void)state;
    struct weft_pmd_params a;
    char out[256];
    const char *bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (negotiate(bad[i], &defaults, &a, out) != 0) fail_msg("offer accepted: %s", bad[i]);
    }
    /* The first acceptable offer of several is taken. */
    assert_int_equal(negotiate("permessage-deflate; foo=1, x-other, "
                               "permessage-deflate; server_max_window_bits=11, "
                               "permessage-deflate",
                               &defaults, &a, out),
                     1);
    assert_int_equal(a.server_max_window_bits, 11);
    assert_string_equal(out, "permessage-deflate; server_max_window_bits=11");
}

static void test_client_side(void **state)
{
    (void)state;
    char offer[256];
    struct weft_pmd_config cfg = {.enabled = true};
    assert_true(weft_pmd_offer(&cfg, offer, sizeof offer) > 0);
    assert_string_equal(offer, "permessage-deflate; client_max_window_bits");
    struct weft_pmd_config lean = {.enabled = true,
                                   .no_context_takeover = true,
                                   .peer_no_context_takeover = true,
                                   .max_window_bits = 10,
                                   .peer_max_window_bits = 9};
    assert_true(weft_pmd_offer(&lean, offer, sizeof offer) > 0);
    assert_string_equal(offer, "permessage-deflate; client_no_context_takeover; "
                               "server_no_context_takeover; server_max_window_bits=9; "
                               "client_max_window_bits=10");
    char small[10];
    assert_int_equal(weft_pmd_offer(&lean, small, sizeof small), WEFT_ERR_SPACE);

    /* Server and client agree through the two halves. */
    struct weft_pmd_params sa, ca;
    char resp[256];
    assert_int_equal(weft_pmd_negotiate(offer, strlen(offer), &defaults, &sa, resp, sizeof resp),
                     1);
    assert_int_equal(weft_pmd_accept(resp, strlen(resp), &lean, &ca), 0);
    assert_int_equal(ca.server_max_window_bits, 9);
    assert_int_equal(sa.server_max_window_bits, 9);
    assert_int_equal(ca.client_max_window_bits, 10);
    assert_true(ca.server_no_context_takeover && ca.client_no_context_takeover);

    /* Bad answers fail the connection. */
    const char *bad[] = {
        "permessage-deflate; bogus",
        "x-webkit-deflate-frame",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; server_max_window_bits=12", /* above the 9 we asked for */
        "permessage-deflate; server_max_window_bits=9",  /* without server_no_context_takeover */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (weft_pmd_accept(bad[i], strlen(bad[i]), &lean, &ca) == 0)
            fail_msg("answer accepted: %s", bad[i]);
    const char *ok = "permessage-deflate; server_no_context_takeover; server_max_window_bits=9";
    assert_int_equal(weft_pmd_accept(ok, strlen(ok), &lean, &ca), 0);
}

/* Inflates a whole compressed message into out, feeding it in pieces of `step` bytes and
 * draining output in pieces of `ostep`. Returns the length or a negative error. */
static long inflate_all(struct weft_inflater *inf, const uint8_t *in, size_t len, size_t step,
                        uint8_t *out, size_t cap, size_t ostep, bool reset)
{
    size_t off = 0, made = 0;
    do {
        size_t n = len - off < step ? len - off : step;
        bool fin = off + n == len;
        size_t used_total = 0;
        for (;;) {
            size_t used, got, room = cap - made < ostep ? cap - made : ostep;
            int r = weft_inflate(inf, in + off + used_total, n - used_total, fin, reset, out + made,
                                 room, &used, &got);
            if (r < 0) return r;
            used_total += used;
            made += got;
            if (r == 0) break;
            if (made == cap) return WEFT_ERR_SPACE;
        }
        off += n;
    } while (off < len);
    return (long)made;
}

static void test_rfc_examples(void **state)
{
    (void)state;
    /* §7.2.3.1: "Hello" compressed. */
    const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    struct weft_deflater *d = weft_deflater_new(15, 8, -1);
    uint8_t out[64];
    long n = weft_deflate_message(d, (const uint8_t *)"Hello", 5, out, sizeof out, false);
    assert_int_equal(n, sizeof hello);
    assert_memory_equal(out, hello, sizeof hello);
    /* §7.2.3.2: the same message again, with context takeover, refers back to the first. */
    const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    n = weft_deflate_message(d, (const uint8_t *)"Hello", 5, out, sizeof out, false);
    assert_int_equal(n, sizeof again);
    assert_memory_equal(out, again, sizeof again);
    weft_deflater_free(d);

    struct weft_inflater *inf = weft_inflater_new(15);
    uint8_t text[64];
    assert_int_equal(inflate_all(inf, hello, sizeof hello, 100, text, sizeof text, 64, false), 5);
    assert_memory_equal(text, "Hello", 5);
    assert_int_equal(inflate_all(inf, again, sizeof again, 1, text, sizeof text, 1, false), 5);
    assert_memory_equal(text, "Hello", 5);
    /* §7.2.3.3: an uncompressed (stored) block: 0x00 0x05 0x00 0xfa 0xff "Hello" 0x00. */
    const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00};
    assert_int_equal(inflate_all(inf, stored, sizeof stored, 3, text, sizeof text, 2, true), 5);
    assert_memory_equal(text, "Hello", 5);
    /* §7.2.3.5: two deflate blocks in one message. */
    const uint8_t two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                           0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    struct weft_inflater *fresh = weft_inflater_new(15);
    assert_int_equal(inflate_all(fresh, two, sizeof two, 5, text, sizeof text, 64, true), 5);
    assert_memory_equal(text, "Hello", 5);
    weft_inflater_free(fresh);
    weft_inflater_free(inf);
}

static void test_roundtrip_sizes_and_windows(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 100, 4096, 65536, 1 << 20};
    uint32_t seed = 7;
    uint8_t *text = malloc(1 << 20), *noise = malloc(1 << 20);
    uint8_t *comp = malloc(weft_deflate_bound(1 << 20)), *back = malloc((1 << 20) + 1);
    for (size_t i = 0; i < (1 << 20); i++) {
        text[i] = (uint8_t)("{\"type\":\"message\",\"room\":\"lobby\",\"data\":42}"[i % 44]);
        seed = seed * 1103515245u + 12345u;
        noise[i] = (uint8_t)(seed >> 16);
    }
    for (int w = 8; w <= 15; w++) {
        for (int takeover = 0; takeover < 2; takeover++) {
            struct weft_deflater *d = weft_deflater_new(w, w < 10 ? 1 : 8, -1);
            struct weft_inflater *inf = weft_inflater_new(w);
            assert_non_null(d);
            assert_non_null(inf);
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                for (int which = 0; which < 2; which++) {
                    const uint8_t *src = which ? noise : text;
                    size_t len = sizes[k];
                    long n =
                        weft_deflate_message(d, src, len, comp, weft_deflate_bound(len), !takeover);
                    assert_true(n >= 0);
                    assert_true((size_t)n <= weft_deflate_bound(len));
                    if (!which && len >= 4096)
                        assert_true((size_t)n < len / 4); /* text compresses well */
                    long m = inflate_all(inf, comp, (size_t)n, 1000, back, (1 << 20) + 1, 777,
                                         !takeover);
                    assert_int_equal(m, (long)len);
                    if (len) assert_memory_equal(back, src, len);
                }
            }
            weft_deflater_free(d);
            weft_inflater_free(inf);
        }
    }
    free(text);
    free(noise);
    free(comp);
    free(back);
}

static void test_bomb_and_corrupt(void **state)
{
    (void)state;
    /* 16 MiB of zeros compress to a few KiB; the inflater hands out at most `cap` bytes per
     * call, so the caller can stop at its limit after bounded work. */
    size_t big = 16u << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *comp = malloc(weft_deflate_bound(big));
    struct weft_deflater *d = weft_deflater_new(15, 8, 9);
    long n = weft_deflate_message(d, zeros, big, comp, weft_deflate_bound(big), true);
    assert_true(n > 0 && n < 40000);
    struct weft_inflater *inf = weft_inflater_new(15);
    uint8_t out[1024];
    size_t used, made;
    int r = weft_inflate(inf, comp, (size_t)n, true, true, out, sizeof out, &used, &made);
    assert_int_equal(r, 1);
    assert_int_equal(made, sizeof out);
    weft_inflater_free(inf);

    /* Corrupt input: an invalid block type (BTYPE = 11). */
    inf = weft_inflater_new(15);
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    r = weft_inflate(inf, bad, sizeof bad, true, true, out, sizeof out, &used, &made);
    assert_int_equal(r, WEFT_ERR_PROTO);
    /* After an error the inflater is usable again for the next message. */
    const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    r = weft_inflate(inf, hello, sizeof hello, true, true, out, sizeof out, &used, &made);
    assert_int_equal(r, 0);
    assert_int_equal(made, 5);
    weft_inflater_free(inf);
    weft_deflater_free(d);
    free(zeros);
    free(comp);
}

/* Each window size and takeover mode picks its engine: libdeflate compresses only without
 * context takeover and with a 15-bit window (the peer's inflater then has 32 KiB), zlib the
 * rest; what either produced decodes with a zlib inflater of exactly that window. */
static void test_engine_choice_per_window_and_takeover(void **state)
{
    (void)state;
    size_t len = 200000; /* repeats at distances beyond every window below 15 bits */
    uint8_t *src = malloc(len), *comp = malloc(weft_deflate_bound(len)), *back = malloc(len + 1);
    uint32_t seed = 3;
    for (size_t i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        src[i] = (uint8_t)('a' + (seed >> 16) % 16);
    }
    for (size_t i = 20000; i < len; i++)
        src[i] = src[i - 20000];
    for (int w = 8; w <= 15; w++) {
        for (int takeover = 0; takeover < 2; takeover++) {
            enum weft_pmd_engine want = !takeover && w == 15 ? WEFT_PMD_LIBDEFLATE : WEFT_PMD_ZLIB;
            assert_int_equal(weft_pmd_deflate_engine(w, 1, !takeover), want);
            struct weft_deflater *d = weft_deflater_new(w, 8, 1);
            struct weft_inflater *inf = weft_inflater_new(w);
            for (int k = 0; k < 2; k++) {
                long n =
                    weft_deflate_message(d, src, len, comp, weft_deflate_bound(len), !takeover);
                assert_true(n > 0);
                assert_int_equal(weft_deflater_engine(d), want);
                assert_int_equal(
                    inflate_all(inf, comp, (size_t)n, 4096, back, len + 1, 65536, !takeover),
                    (long)len);
                assert_memory_equal(back, src, len);
            }
            weft_deflater_free(d);
            weft_inflater_free(inf);
            /* level 0 (stored) stays with zlib */
            assert_int_equal(weft_pmd_deflate_engine(w, 0, !takeover), WEFT_PMD_ZLIB);
            /* decompression: libdeflate for whole messages without takeover, any window */
            assert_int_equal(weft_pmd_inflate_engine(w, true, !takeover),
                             takeover ? WEFT_PMD_ZLIB : WEFT_PMD_LIBDEFLATE);
            assert_int_equal(weft_pmd_inflate_engine(w, false, !takeover), WEFT_PMD_ZLIB);
        }
        /* A message zlib compressed with a w-bit window decodes whole through libdeflate. */
        struct weft_deflater *d = weft_deflater_new(w, 8, 6);
        long n = weft_deflate_message(d, src, len, comp, weft_deflate_bound(len), true);
        assert_int_equal(weft_deflater_engine(d), w == 15 ? WEFT_PMD_LIBDEFLATE : WEFT_PMD_ZLIB);
        struct weft_inflater *inf = weft_inflater_new(15);
        size_t made = 0;
        assert_int_equal(weft_inflate_message(inf, comp, (size_t)n, back, len, &made), 0);
        assert_int_equal(made, len);
        assert_memory_equal(back, src, len);
        assert_int_equal(weft_inflater_engine(inf), WEFT_PMD_LIBDEFLATE);
        weft_inflater_free(inf);
        weft_deflater_free(d);
    }
    free(src);
    free(comp);
    free(back);
}

/* A compressor that switches from context takeover to none forgets its zlib window, so the
 * next zlib message refers to nothing the peer lacks. */
static void test_takeover_then_reset(void **state)
{
    (void)state;
    struct weft_deflater *d = weft_deflater_new(15, 8, 6);
    struct weft_inflater *inf = weft_inflater_new(15);
    uint8_t out[64], text[64];
    long n = weft_deflate_message(d, (const uint8_t *)"Hello", 5, out, sizeof out, false);
    assert_int_equal(inflate_all(inf, out, (size_t)n, 64, text, sizeof text, 64, false), 5);
    n = weft_deflate_message(d, (const uint8_t *)"Hello", 5, out, sizeof out, true);
    assert_int_equal(weft_deflater_engine(d), WEFT_PMD_LIBDEFLATE);
    weft_inflater_reset(inf);
    assert_int_equal(inflate_all(inf, out, (size_t)n, 64, text, sizeof text, 64, true), 5);
    n = weft_deflate_message(d, (const uint8_t *)"Hello", 5, out, sizeof out, false);
    assert_int_equal(weft_deflater_engine(d), WEFT_PMD_ZLIB);
    assert_int_equal(n, 7); /* §7.2.3.1 again, not the back-reference of §7.2.3.2 */
    assert_int_equal(inflate_all(inf, out, (size_t)n, 64, text, sizeof text, 64, false), 5);
    assert_memory_equal(text, "Hello", 5);
    weft_inflater_free(inf);
    weft_deflater_free(d);
}

/* weft_inflate_message on the RFC 7692 §7.2.3 payloads, the BFINAL forms and bad input. */
static void test_inflate_message_forms(void **state)
{
    (void)state;
    struct weft_inflater *inf = weft_inflater_new(15);
    uint8_t text[64];
    size_t made;
    struct {
        uint8_t b[20];
        size_t n;
        size_t want;
    } ok[] = {
        {{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, 7, 5},                     /* §7.2.3.1 */
        {{0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00}, 11, 5}, /* §7.2.3.3 */
        {{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, 8, 5}, /* §7.2.3.4, BFINAL */
        {{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, 7, 5},       /* BFINAL without the 0x00 */
        {{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00},
         13,
         5},            /* §7.2.3.5 */
        {{0x00}, 1, 0}, /* §7.2.3.6, empty */
        {{0}, 0, 0},    /* no payload at all */
        {{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00},
         15,
         10}, /* two streams, each ending with BFINAL */
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        assert_int_equal(weft_inflate_message(inf, ok[k].b, ok[k].n, text, sizeof text, &made), 0);
        assert_int_equal(made, ok[k].want);
        if (made == 5) assert_memory_equal(text, "Hello", 5);
        if (made == 2) assert_memory_equal(text, "HH", 2);
    }
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(weft_inflate_message(inf, bad, sizeof bad, text, sizeof text, &made),
                     WEFT_ERR_PROTO);
    /* still usable after the error */
    assert_int_equal(weft_inflate_message(inf, ok[0].b, ok[0].n, text, sizeof text, &made), 0);
    assert_int_equal(made, 5);
    assert_int_equal(weft_inflater_engine(inf), WEFT_PMD_LIBDEFLATE);
    weft_inflater_free(inf);
}

/* A zip bomb through the libdeflate path: 16 MiB of zeros from a few KiB never write past the
 * caller's bound (WEFT_ERR_SPACE), and fit exactly when the bound is their size. */
static void test_bomb_libdeflate(void **state)
{
    (void)state;
    size_t big = 16u << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *comp = malloc(weft_deflate_bound(big));
    struct weft_deflater *d = weft_deflater_new(15, 8, 9);
    long n = weft_deflate_message(d, zeros, big, comp, weft_deflate_bound(big), true);
    assert_int_equal(weft_deflater_engine(d), WEFT_PMD_LIBDEFLATE);
    assert_true(n > 0 && n < 40000);
    struct weft_inflater *inf = weft_inflater_new(15);
    /* a guard byte after the bound shows nothing is written beyond it */
    uint8_t *out = malloc(big + 1);
    size_t made = 1234;
    out[1 << 20] = 0xa5;
    assert_int_equal(weft_inflate_message(inf, comp, (size_t)n, out, 1 << 20, &made),
                     WEFT_ERR_SPACE);
    assert_int_equal(out[1 << 20], 0xa5);
    assert_int_equal(made, 0);
    assert_int_equal(weft_inflater_engine(inf), WEFT_PMD_LIBDEFLATE);
    assert_int_equal(weft_inflate_message(inf, comp, (size_t)n, out, big - 1, &made),
                     WEFT_ERR_SPACE);
    assert_int_equal(weft_inflate_message(inf, comp, (size_t)n, out, big, &made), 0);
    assert_int_equal(made, big);
    assert_memory_equal(out, zeros, big);
    /* a zlib-compressed bomb (sync flush, no final block) too */
    struct weft_deflater *z = weft_deflater_new(14, 8, 9);
    n = weft_deflate_message(z, zeros, big, comp, weft_deflate_bound(big), true);
    assert_int_equal(weft_deflater_engine(z), WEFT_PMD_ZLIB);
    assert_int_equal(weft_inflate_message(inf, comp, (size_t)n, out, 1 << 20, &made),
                     WEFT_ERR_SPACE);
    assert_int_equal(weft_inflater_engine(inf), WEFT_PMD_LIBDEFLATE);
    weft_deflater_free(z);
    weft_inflater_free(inf);
    weft_deflater_free(d);
    free(out);
    free(zeros);
    free(comp);
}

/* Inflates in[0..len) cut into frames at cuts[] (fin on the last), one output byte per call.
 * Returns the last weft_inflate result and the bytes made in *made_total. */
static int inflate_frames(struct weft_inflater *inf, const uint8_t *in, const size_t *cuts,
                          size_t ncuts, size_t *made_total)
{
    size_t start = 0;
    *made_total = 0;
    for (size_t k = 0; k < ncuts; k++) {
        size_t pos = start;
        for (;;) {
            uint8_t out[1];
            size_t used, made;
            int r = weft_inflate(inf, in + pos, cuts[k] - pos, k + 1 == ncuts, false, out,
                                 sizeof out, &used, &made);
            if (r < 0) return r;
            pos += used;
            *made_total += made;
            if (r == 0) break;
        }
        start = cuts[k];
    }
    return 0;
}

static void test_stream_end_at_frame_boundary(void **state)
{
    (void)state;
    /* A deflate stream with BFINAL ("rH" + 32 x "g", 6 bytes) whose end zlib reports only
     * after the frame boundary, then 00 00 | 00 00: with the appended tail a stored block
     * with LEN 0000 and NLEN 00ff, corrupt. Fragmented delivery must see the tail as the
     * whole message does (the tail was skipped: found by fuzz_inflate). */
    const uint8_t msg[] = {0x2b, 0xf2, 0x48, 0x27, 0x00, 0x00, 0x00, 0x00};
    struct weft_inflater *inf = weft_inflater_new(15);
    size_t whole_cut[] = {sizeof msg}, cuts[] = {4, 6, sizeof msg}, made;
    assert_int_equal(inflate_frames(inf, msg, whole_cut, 1, &made), WEFT_ERR_PROTO);
    weft_inflater_reset(inf);
    assert_int_equal(inflate_frames(inf, msg, cuts, 3, &made), WEFT_ERR_PROTO);
    weft_inflater_free(inf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate_basic),
        cmocka_unit_test(test_negotiate_invalid_offers_declined),
        cmocka_unit_test(test_client_side),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_roundtrip_sizes_and_windows),
        cmocka_unit_test(test_bomb_and_corrupt),
        cmocka_unit_test(test_engine_choice_per_window_and_takeover),
        cmocka_unit_test(test_takeover_then_reset),
        cmocka_unit_test(test_inflate_message_forms),
        cmocka_unit_test(test_bomb_libdeflate),
        cmocka_unit_test(test_stream_end_at_frame_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
