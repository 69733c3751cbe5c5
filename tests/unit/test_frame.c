/*
 * test_frame.c — frame parser, message assembler, frame encoder and close frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft.h"

/* ------------------------------------------------------------------ helpers */

/* A normalised log of message events: consecutive DATA chunks of one message are merged, so
 * the same input split differently must produce an identical log. */
struct log {
    char text[1 << 22];
    size_t msg_start;    /* log offset where the message in progress began */
    bool in_msg;
    size_t len;
    uint16_t error;      /* close code of the error, 0 if none */
    size_t chunks;       /* DATA events seen (not normalised) */
    size_t zero_copy;    /* DATA events with first && fin pointing into the input buffer */
};

static void log_add(struct log *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->text + l->len, sizeof l->text - l->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof l->text - l->len);
    l->len += (size_t)n;
}

static void log_bytes(struct log *l, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        log_add(l, "%02x", p[i]);
}

/* Feeds buf (copied, since parsing unmasks in place) to a fresh assembler in pieces ending at
 * the offsets in cuts[] (ascending, last == len), logging every event. */
static void run(const struct weft_msg_limits *lim, const uint8_t *input, size_t len,
                const size_t *cuts, size_t ncuts, struct log *l)
{
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, input, len);
    struct weft_msg_parser p;
    weft_msg_parser_init(&p, lim);
    l->len = l->chunks = l->zero_copy = l->msg_start = 0;
    l->error = 0;
    l->in_msg = false;
    l->text[0] = '\0';
    size_t start = 0;
    for (size_t c = 0; c < ncuts && !l->error; c++) {
        size_t end = cuts[c];
        while (!l->error) {
            struct weft_msg_event ev;
            size_t used;
            enum weft_msg_event_type t = weft_msg_parse(&p, buf + start, end - start, &used, &ev);
            assert_true(used <= end - start);
            start += used;
            if (t == WEFT_MSG_NEED_MORE) {
                assert_int_equal(start, end);
                break;
            }
            if (t == WEFT_MSG_ERROR) {
                /* A message cut short by an error is discarded whatever part of it was
                 * delivered before (how much depends on the split). */
                l->error = ev.close_code;
                l->len = l->msg_start;
                log_add(l, "E%u;", ev.close_code);
                break;
            }
            if (t == WEFT_MSG_CONTROL) {
                log_add(l, "C%u:", ev.opcode);
                log_bytes(l, ev.data, ev.len);
                if (ev.opcode == WEFT_OP_CLOSE)
                    log_add(l, "/%u/%.*s", ev.close_code, (int)ev.reason_len,
                            ev.reason ? ev.reason : "");
                log_add(l, ";");
                if (!l->in_msg)
                    l->msg_start = l->len;
                continue;
            }
            /* DATA */
            l->chunks++;
            if (ev.first && ev.fin && ev.data >= buf && ev.data < buf + len)
                l->zero_copy++;
            if (ev.first) {
                l->msg_start = l->len;
                l->in_msg = true;
                log_add(l, "M%u%s:", ev.opcode, ev.compressed ? "z" : "");
            }
            log_bytes(l, ev.data, ev.len);
            if (ev.fin) {
                log_add(l, ";");
                l->msg_start = l->len;
                l->in_msg = false;
            }
        }
    }
    free(buf);
}

static void run_whole(const struct weft_msg_limits *lim, const uint8_t *in, size_t len,
                      struct log *l)
{
    size_t cut = len;
    run(lim, in, len, &cut, 1, l);
}

static struct weft_msg_limits limits(enum weft_role role)
{
    struct weft_msg_limits lim = {
        .frame = {.role = role, .allowed_rsv = 0, .max_frame = 0},
        .max_message = 0,
        .validate_utf8 = true,
    };
    return lim;
}

/* Asserts that feeding `in` whole, split into two at every offset, split into three at
 * every pair of offsets (for short inputs) and byte by byte gives the same log. */
static void assert_split_invariant(const struct weft_msg_limits *lim, const uint8_t *in,
                                   size_t len)
{
    static struct log whole, split;
    run_whole(lim, in, len, &whole);
    for (size_t i = 0; i <= len; i++) {
        size_t cuts[2] = {i, len};
        run(lim, in, len, cuts, 2, &split);
        assert_string_equal(whole.text, split.text);
    }
    if (len <= 80) {
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                size_t cuts[3] = {i, j, len};
                run(lim, in, len, cuts, 3, &split);
                assert_string_equal(whole.text, split.text);
            }
    }
    size_t *bytes = malloc((len + 1) * sizeof *bytes);
    assert_non_null(bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = i + 1;
    run(lim, in, len, bytes, len ? len : 1, &split);
    free(bytes);
    assert_string_equal(whole.text, split.text);
}

/* ------------------------------------------------------------------ RFC 6455 §5.7 examples */

static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t hel_lo[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
static const uint8_t ping_hello[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t pong_hello_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                            0x7f, 0x9f, 0x4d, 0x51, 0x58};

static void test_rfc_hello_unmasked(void **state)
{
    (void)state;
    struct weft_msg_limits lim = limits(WEFT_ROLE_CLIENT);
    static struct log l;
    run_whole(&lim, hello_unmasked, sizeof hello_unmasked, &l);
    assert_string_equal(l.text, "M1:48656c6c6f;");
    assert_int_equal(l.zero_copy, 1);
    assert_split_invariant(&lim, hello_unmasked, sizeof hello_unmasked);

    /* Encoder produces the same bytes. */
    uint8_t out[32];
    long n = weft_frame_encode(out, sizeof out, WEFT_ROLE_SERVER, NULL, WEFT_OP_TEXT, true, 0,
                               "Hello", 5);
    assert_int_equal(n, sizeof hello_unmasked);
    assert_memory_equal(out, hello_unmasked, sizeof hello_unmasked);
}

static void test_rfc_hello_masked(void **state)
{
    (void)state;
    struct weft_msg_limits lim = limits(WEFT_ROLE_SERVER);
    static struct log l;
    run_whole(&lim, hello_masked, sizeof hello_masked, &l);
    assert_string_equal(l.text, "M1:48656c6c6f;");
    assert_split_invariant(&lim, hello_masked, sizeof hello_masked);

    /* Header writer + mask reproduce the example with its key. */
    uint8_t out[32];
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = weft_frame_header_write(out, WEFT_OP_TEXT, true, 0, 5, key);
    assert_int_equal(h, 6);
    memcpy(out + h, "Hello", 5);
    weft_mask(out + h, 5, key, 0);
    assert_memory_equal(out, hello_masked, sizeof hello_masked);
}

static void test_rfc_fragmented(void **state)
{
    (void)state;
    struct weft_msg_limits lim = limits(WEFT_ROLE_CLIENT);
    static struct log l;
    run_whole(&lim, hel_lo, sizeof hel_lo, &l);
    assert_string_equal(l.text, "M1:48656c6c6f;");
    assert_int_equal(l.chunks, 2);
    assert_int_equal(l.zero_copy, 0);
    assert_split_invariant(&lim, hel_lo, sizeof hel_lo);
}

static void test_rfc_ping_pong(void **state)
{
    (void)state;
    struct weft_msg_limits client = limits(WEFT_ROLE_CLIENT);
    struct weft_msg_limits server = limits(WEFT_ROLE_SERVER);
    static struct log l;
    run_whole(&client, ping_hello, sizeof ping_hello, &l);
    assert_string_equal(l.text, "C9:48656c6c6f;");
    assert_split_invariant(&client, ping_hello, sizeof ping_hello);
    run_whole(&server, pong_hello_masked, sizeof pong_hello_masked, &l);
    assert_string_equal(l.text, "C10:48656c6c6f;");
    assert_split_invariant(&server, pong_hello_masked, sizeof pong_hello_masked);
}

static void test_rfc_length_forms(void **state)
{
    (void)state;
    uint8_t h[WEFT_FRAME_HEADER_MAX];
    /* 256 bytes binary in a single unmasked frame: 0x82 0x7E 0x01 0x00 */
    size_t n = weft_frame_header_write(h, WEFT_OP_BINARY, true, 0, 256, NULL);
    assert_int_equal(n, 4);
    const uint8_t e256[] = {0x82, 0x7e, 0x01, 0x00};
    assert_memory_equal(h, e256, 4);
    /* 64 KiB: 0x82 0x7F 0x0000000000010000 */
    n = weft_frame_header_write(h, WEFT_OP_BINARY, true, 0, 65536, NULL);
    assert_int_equal(n, 10);
    const uint8_t e64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_memory_equal(h, e64k, 10);
    assert_int_equal(weft_frame_header_size(125, false), 2);
    assert_int_equal(weft_frame_header_size(126, false), 4);
    assert_int_equal(weft_frame_header_size(65535, false), 4);
    assert_int_equal(weft_frame_header_size(65536, true), 14);

    /* Both parse back with the declared payload. */
    for (int which = 0; which < 2; which++) {
        size_t plen = which ? 65536 : 256;
        uint8_t *frame = malloc(plen + 10);
        assert_non_null(frame);
        memcpy(frame, which ? e64k : e256, which ? 10 : 4);
        for (size_t i = 0; i < plen; i++)
            frame[(which ? 10 : 4) + i] = (uint8_t)(i * 7);
        struct weft_frame_parser fp;
        struct weft_frame_limits fl = {.role = WEFT_ROLE_CLIENT};
        weft_frame_parser_init(&fp, &fl);
        struct weft_frame_event ev;
        size_t used;
        assert_int_equal(weft_frame_parse(&fp, frame, plen + 10, &used, &ev), WEFT_FRAME_HEADER);
        assert_int_equal(ev.header.length, plen);
        assert_int_equal(ev.header.opcode, WEFT_OP_BINARY);
        assert_true(ev.header.fin);
        size_t off = used;
        assert_int_equal(weft_frame_parse(&fp, frame + off, plen + 10 - off, &used, &ev),
                         WEFT_FRAME_DATA);
        assert_int_equal(ev.len, plen);
        assert_true(ev.frame_end);
        assert_int_equal(ev.data[255], (uint8_t)(255 * 7));
        free(frame);
    }
}

/* ------------------------------------------------------------------ sequences */

/* Builds a frame into out (server-to-client unless mask given). Returns its length. */
static size_t frame(uint8_t *out, uint8_t op, bool fin, uint8_t rsv, const void *payload,
                    size_t len, const uint8_t *mask)
{
    size_t h = weft_frame_header_write(out, op, fin, rsv, len, mask);
    if (len)
        memcpy(out + h, payload, len);
    if (mask)
        weft_mask(out + h, len, mask, 0);
    return h + len;
}

static void test_interleaved_control(void **state)
{
    (void)state;
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t buf[512];
    size_t n = 0;
    n += frame(buf + n, WEFT_OP_TEXT, false, 0, "Hel", 3, key);
    n += frame(buf + n, WEFT_OP_PING, true, 0, "p", 1, key);
    n += frame(buf + n, WEFT_OP_CONT, false, 0, "", 0, key);
    n += frame(buf + n, WEFT_OP_PONG, true, 0, "", 0, key);
    n += frame(buf + n, WEFT_OP_CONT, true, 0, "lo", 2, key);
    n += frame(buf + n, WEFT_OP_BINARY, true, 0, "\x00\xff", 2, key);
    n += frame(buf + n, WEFT_OP_TEXT, true, 0, "", 0, key);
    const uint8_t close[] = {0x03, 0xe8, 'b', 'y', 'e'};
    n += frame(buf + n, WEFT_OP_CLOSE, true, 0, close, sizeof close, key);
    struct weft_msg_limits lim = limits(WEFT_ROLE_SERVER);
    static struct log l;
    run_whole(&lim, buf, n, &l);
    assert_string_equal(l.text, "M1:48656c"
                                "C9:70;"
                                "C10:;"
                                "6c6f;"
                                "M2:00ff;"
                                "M1:;"
                                "C8:03e8627965/1000/bye;");
    assert_split_invariant(&lim, buf, n);
}

static void test_control_payload_split(void **state)
{
    (void)state;
    /* A 125-byte ping split across reads is collected and delivered whole. */
    static const uint8_t key[4] = {9, 8, 7, 6};
    uint8_t payload[125], buf[200];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    size_t n = frame(buf, WEFT_OP_PING, true, 0, payload, sizeof payload, key);
    struct weft_msg_limits lim = limits(WEFT_ROLE_SERVER);
    size_t cuts[3] = {3, 60, n};
    static struct log l, w;
    run(&lim, buf, n, cuts, 3, &l);
    run_whole(&lim, buf, n, &w);
    assert_string_equal(l.text, w.text);
    assert_int_equal(strncmp(l.text, "C9:0001020304", 13), 0);
}

/* ------------------------------------------------------------------ errors */

/* Runs a whole input and asserts the error code, also for every split of the input. */
static void expect_error(const struct weft_msg_limits *lim, const uint8_t *in, size_t len,
                         uint16_t code)
{
    static struct log l;
    run_whole(lim, in, len, &l);
    if (l.error != code)
        fail_msg("expected close %u, got %u (log %s)", code, l.error, l.text);
    assert_split_invariant(lim, in, len);
}

static void test_errors_header(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0xaa, 0xbb, 0xcc, 0xdd};
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    struct weft_msg_limits cli = limits(WEFT_ROLE_CLIENT);
    uint8_t b[64];
    size_t n;

    /* RSV bits without an extension: each bit alone. */
    for (uint8_t rsv = 1; rsv <= 4; rsv <<= 1) {
        n = frame(b, WEFT_OP_TEXT, true, rsv, "a", 1, key);
        expect_error(&srv, b, n, 1002);
    }
    /* RSV1 claimed by an extension: accepted on the first frame, flagged compressed. */
    struct weft_msg_limits deflate = srv;
    deflate.frame.allowed_rsv = 4;
    n = frame(b, WEFT_OP_BINARY, true, 4, "z", 1, key);
    static struct log l;
    run_whole(&deflate, b, n, &l);
    assert_string_equal(l.text, "M2z:7a;");
    /* ... but not RSV2, not on a continuation frame, not on a control frame. */
    n = frame(b, WEFT_OP_TEXT, true, 2, "a", 1, key);
    expect_error(&deflate, b, n, 1002);
    n = frame(b, WEFT_OP_BINARY, false, 4, "a", 1, key);
    n += frame(b + n, WEFT_OP_CONT, true, 4, "b", 1, key);
    expect_error(&deflate, b, n, 1002);
    n = frame(b, WEFT_OP_PING, true, 4, "", 0, key);
    expect_error(&deflate, b, n, 1002);

    /* Unknown opcodes. */
    const uint8_t bad_ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof bad_ops; i++) {
        n = frame(b, bad_ops[i], true, 0, "", 0, key);
        expect_error(&srv, b, n, 1002);
    }

    /* Control frames: 126-byte payload, and FIN clear. */
    uint8_t big[140] = {0};
    uint8_t bigframe[160];
    n = weft_frame_header_write(bigframe, WEFT_OP_PING, true, 0, 126, key);
    memcpy(bigframe + n, big, 126);
    expect_error(&srv, bigframe, n + 126, 1002);
    n = frame(b, WEFT_OP_PING, false, 0, "x", 1, key);
    expect_error(&srv, b, n, 1002);
    n = frame(b, WEFT_OP_CLOSE, false, 0, "", 0, key);
    expect_error(&srv, b, n, 1002);

    /* 64-bit length with the top bit set. */
    const uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    expect_error(&srv, huge, sizeof huge, 1002);

    /* Masking: required from clients, forbidden from servers. */
    n = frame(b, WEFT_OP_TEXT, true, 0, "a", 1, NULL);
    expect_error(&srv, b, n, 1002);
    n = frame(b, WEFT_OP_TEXT, true, 0, "a", 1, key);
    expect_error(&cli, b, n, 1002);
    n = frame(b, WEFT_OP_TEXT, true, 0, "a", 1, NULL);
    run_whole(&cli, b, n, &l);
    assert_int_equal(l.error, 0);

    /* Max frame size: 1009 as soon as the header is read, before any payload. */
    struct weft_msg_limits small = srv;
    small.frame.max_frame = 10;
    n = frame(b, WEFT_OP_BINARY, true, 0, "0123456789", 10, key);
    run_whole(&small, b, n, &l);
    assert_int_equal(l.error, 0);
    n = frame(b, WEFT_OP_BINARY, true, 0, "0123456789a", 11, key);
    expect_error(&small, b, 6, 1009); /* header only */
    expect_error(&small, b, n, 1009);
}

static void test_errors_sequence(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    uint8_t b[256];
    size_t n;

    /* Continuation with nothing to continue. */
    n = frame(b, WEFT_OP_CONT, true, 0, "x", 1, key);
    expect_error(&srv, b, n, 1002);
    /* ... also right after a complete message. */
    n = frame(b, WEFT_OP_TEXT, true, 0, "a", 1, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "b", 1, key);
    expect_error(&srv, b, n, 1002);
    /* New data frame inside a fragmented message. */
    n = frame(b, WEFT_OP_TEXT, false, 0, "a", 1, key);
    n += frame(b + n, WEFT_OP_BINARY, true, 0, "b", 1, key);
    expect_error(&srv, b, n, 1002);
    n = frame(b, WEFT_OP_BINARY, false, 0, "a", 1, key);
    n += frame(b + n, WEFT_OP_TEXT, false, 0, "b", 1, key);
    expect_error(&srv, b, n, 1002);

    /* Max message size across fragments: 1009 at the header of the frame that crosses it. */
    struct weft_msg_limits lim = srv;
    lim.max_message = 8;
    n = frame(b, WEFT_OP_BINARY, false, 0, "1234", 4, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "5678", 4, key);
    static struct log l;
    run_whole(&lim, b, n, &l);
    assert_int_equal(l.error, 0);
    n = frame(b, WEFT_OP_BINARY, false, 0, "1234", 4, key);
    n += frame(b + n, WEFT_OP_CONT, false, 0, "5678", 4, key);
    size_t before = n;
    n += frame(b + n, WEFT_OP_CONT, true, 0, "9", 1, key);
    expect_error(&lim, b, before + 6, 1009);
    expect_error(&lim, b, n, 1009);
    /* A control frame in between does not count. */
    n = frame(b, WEFT_OP_BINARY, false, 0, "1234", 4, key);
    n += frame(b + n, WEFT_OP_PING, true, 0, "12345678", 8, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "5678", 4, key);
    run_whole(&lim, b, n, &l);
    assert_int_equal(l.error, 0);
}

static void test_errors_utf8(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0x5a, 0xa5, 0x0f, 0xf0};
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    uint8_t b[256];
    size_t n;

    /* Invalid byte inside one frame. */
    n = frame(b, WEFT_OP_TEXT, true, 0, "ab\xff" "cd", 5, key);
    expect_error(&srv, b, n, 1007);
    /* Fail fast: a 100-byte frame whose 3rd byte is invalid fails before the rest arrives. */
    uint8_t text[100];
    memset(text, 'x', sizeof text);
    text[2] = 0xc0;
    n = frame(b, WEFT_OP_TEXT, true, 0, text, sizeof text, key);
    static struct log l;
    run_whole(&srv, b, 6 + 3, &l);
    assert_int_equal(l.error, 1007);
    /* ... and nothing of the invalid chunk was delivered before the error. */
    assert_string_equal(l.text, "E1007;");
    /* Invalid sequence across two fragments: E2 82 | 28. */
    n = frame(b, WEFT_OP_TEXT, false, 0, "\xe2\x82", 2, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "\x28", 1, key);
    expect_error(&srv, b, n, 1007);
    /* Valid sequence across fragments: E2 82 | AC (euro sign). */
    n = frame(b, WEFT_OP_TEXT, false, 0, "\xe2\x82", 2, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "\xac", 1, key);
    run_whole(&srv, b, n, &l);
    assert_string_equal(l.text, "M1:e282ac;");
    /* Message ending inside a sequence. */
    n = frame(b, WEFT_OP_TEXT, true, 0, "a\xe2\x82", 3, key);
    expect_error(&srv, b, n, 1007);
    /* Binary messages are not validated. */
    n = frame(b, WEFT_OP_BINARY, true, 0, "\xff\xfe", 2, key);
    run_whole(&srv, b, n, &l);
    assert_int_equal(l.error, 0);
    /* Surrogates, overlongs, above U+10FFFF. */
    const char *bad[] = {"\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80",
                         "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = frame(b, WEFT_OP_TEXT, true, 0, bad[i], strlen(bad[i]), key);
        expect_error(&srv, b, n, 1007);
    }
}

static void test_close_codes(void **state)
{
    (void)state;
    static const uint8_t key[4] = {0x01, 0x80, 0x7f, 0xfe};
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    uint8_t b[256], p[130];
    size_t n;
    static struct log l;

    const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        assert_true(weft_close_code_valid(valid[i]));
        p[0] = (uint8_t)(valid[i] >> 8);
        p[1] = (uint8_t)valid[i];
        n = frame(b, WEFT_OP_CLOSE, true, 0, p, 2, key);
        run_whole(&srv, b, n, &l);
        assert_int_equal(l.error, 0);
        char want[64];
        snprintf(want, sizeof want, "C8:%02x%02x/%u/;", p[0], p[1], valid[i]);
        assert_string_equal(l.text, want);
    }
    const unsigned invalid[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                                2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        assert_false(weft_close_code_valid(invalid[i]));
        p[0] = (uint8_t)(invalid[i] >> 8);
        p[1] = (uint8_t)invalid[i];
        n = frame(b, WEFT_OP_CLOSE, true, 0, p, 2, key);
        expect_error(&srv, b, n, 1002);
    }
    /* Empty close: code 1005 reported, not an error. */
    n = frame(b, WEFT_OP_CLOSE, true, 0, "", 0, key);
    run_whole(&srv, b, n, &l);
    assert_string_equal(l.text, "C8:/1005/;");
    /* One-byte payload. */
    n = frame(b, WEFT_OP_CLOSE, true, 0, "\x03", 1, key);
    expect_error(&srv, b, n, 1002);
    /* Reason not UTF-8. */
    n = frame(b, WEFT_OP_CLOSE, true, 0, "\x03\xe8\xce\xba\xff", 5, key);
    expect_error(&srv, b, n, 1007);
    /* Reason valid UTF-8 (kappa). */
    n = frame(b, WEFT_OP_CLOSE, true, 0, "\x03\xe8\xce\xba", 4, key);
    run_whole(&srv, b, n, &l);
    assert_int_equal(l.error, 0);

    /* Building: code + reason, truncation to 123 bytes at a UTF-8 boundary. */
    uint8_t out[125];
    assert_int_equal(weft_close_payload(out, 0, "x", 1), 0);
    assert_int_equal(weft_close_payload(out, 1001, NULL, 0), 2);
    assert_int_equal(out[0], 0x03);
    assert_int_equal(out[1], 0xe9);
    char reason[200];
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xce\xba\xce\xba", 4); /* kappa straddles byte 123 */
    size_t plen = weft_close_payload(out, 1000, reason, 126);
    assert_int_equal(plen, 2 + 122);
    uint16_t code;
    const char *r;
    size_t rl;
    assert_int_equal(weft_close_parse(out, plen, &code, &r, &rl), 0);
    assert_int_equal(code, 1000);
    assert_int_equal(rl, 122);
    memset(reason, 'b', 200);
    plen = weft_close_payload(out, 4000, reason, 200);
    assert_int_equal(plen, 125);
}

static void test_parser_idle(void **state)
{
    (void)state;
    static const uint8_t key[4] = {3, 1, 4, 1};
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    struct weft_msg_parser p;
    weft_msg_parser_init(&p, &srv);
    assert_true(weft_msg_parser_idle(&p));
    uint8_t b[64];
    size_t n = frame(b, WEFT_OP_TEXT, false, 0, "ab", 2, key);
    n += frame(b + n, WEFT_OP_CONT, true, 0, "cd", 2, key);
    size_t first = 8; /* header (6) + "ab" */
    struct weft_msg_event ev;
    size_t used, off = 0;
    /* Part of a header: not idle. */
    assert_int_equal(weft_msg_parse(&p, b, 1, &used, &ev), WEFT_MSG_NEED_MORE);
    assert_false(weft_msg_parser_idle(&p));
    off = used;
    /* A whole first fragment: the message is still open. */
    while (off < first) {
        weft_msg_parse(&p, b + off, first - off, &used, &ev);
        off += used;
    }
    assert_false(weft_msg_parser_idle(&p));
    /* The last fragment completes it. */
    while (off < n) {
        weft_msg_parse(&p, b + off, n - off, &used, &ev);
        off += used;
    }
    assert_int_equal(weft_msg_parse(&p, b + off, 0, &used, &ev), WEFT_MSG_NEED_MORE);
    assert_true(weft_msg_parser_idle(&p));
    /* Half of a ping's payload: not idle. */
    n = frame(b, WEFT_OP_PING, true, 0, "xyz", 3, key);
    assert_int_equal(weft_msg_parse(&p, b, n - 1, &used, &ev), WEFT_MSG_NEED_MORE);
    assert_false(weft_msg_parser_idle(&p));
    /* An error is never idle. */
    weft_msg_parser_init(&p, &srv);
    uint8_t bad[] = {0x81, 0x01, 'x'};
    assert_int_equal(weft_msg_parse(&p, bad, sizeof bad, &used, &ev), WEFT_MSG_ERROR);
    assert_false(weft_msg_parser_idle(&p));
}

static void test_sticky_error(void **state)
{
    (void)state;
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    struct weft_msg_parser p;
    weft_msg_parser_init(&p, &srv);
    uint8_t bad[] = {0x81, 0x01, 'x'}; /* unmasked */
    struct weft_msg_event ev;
    size_t used;
    assert_int_equal(weft_msg_parse(&p, bad, sizeof bad, &used, &ev), WEFT_MSG_ERROR);
    assert_int_equal(ev.close_code, 1002);
    assert_non_null(ev.reason);
    uint8_t good[] = {0x81, 0x80, 0, 0, 0, 0};
    assert_int_equal(weft_msg_parse(&p, good, sizeof good, &used, &ev), WEFT_MSG_ERROR);
    assert_int_equal(ev.close_code, 1002);
}

/* ------------------------------------------------------------------ encoder */

static void test_encoder_roundtrip(void **state)
{
    (void)state;
    struct weft_random rnd = {0};
    const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    uint8_t *payload = malloc(70000);
    uint8_t *out = malloc(70000 + 14);
    assert_non_null(payload);
    assert_non_null(out);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int role = 0; role < 2; role++) {
            size_t len = sizes[s];
            long n = weft_frame_encode(out, len + 14, (enum weft_role)role, &rnd, WEFT_OP_BINARY,
                                       true, 0, payload, len);
            assert_int_equal(n, (long)(weft_frame_header_size(len, role == 1) + len));
            /* The peer (opposite role) parses it back. */
            struct weft_msg_limits lim = limits(role ? WEFT_ROLE_SERVER : WEFT_ROLE_CLIENT);
            struct weft_msg_parser p;
            weft_msg_parser_init(&p, &lim);
            struct weft_msg_event ev;
            size_t used;
            assert_int_equal(weft_msg_parse(&p, out, (size_t)n, &used, &ev), WEFT_MSG_DATA);
            assert_int_equal(used, (size_t)n);
            assert_true(ev.first && ev.fin);
            assert_int_equal(ev.len, len);
            if (len)
                assert_memory_equal(ev.data, payload, len);
        }
    }
    /* Client frames use fresh keys: two encodings of the same payload differ in the key. */
    uint8_t a[32], b[32];
    weft_frame_encode(a, sizeof a, WEFT_ROLE_CLIENT, &rnd, WEFT_OP_TEXT, true, 0, "hi", 2);
    weft_frame_encode(b, sizeof b, WEFT_ROLE_CLIENT, &rnd, WEFT_OP_TEXT, true, 0, "hi", 2);
    assert_true(a[1] & 0x80);
    assert_memory_not_equal(a + 2, b + 2, 4);
    /* Errors. */
    assert_int_equal(weft_frame_encode(out, 200, WEFT_ROLE_SERVER, NULL, WEFT_OP_PING, true, 0,
                                       payload, 126),
                     WEFT_ERR_INVAL);
    assert_int_equal(weft_frame_encode(out, 200, WEFT_ROLE_SERVER, NULL, WEFT_OP_PING, false, 0,
                                       payload, 1),
                     WEFT_ERR_INVAL);
    assert_int_equal(weft_frame_encode(out, 10, WEFT_ROLE_SERVER, NULL, WEFT_OP_TEXT, true, 0,
                                       payload, 9),
                     WEFT_ERR_SPACE);
    assert_int_equal(weft_frame_encode(out, 10, WEFT_ROLE_CLIENT, NULL, WEFT_OP_TEXT, true, 0,
                                       payload, 1),
                     WEFT_ERR_INVAL);
    free(payload);
    free(out);
}

/* Deterministic 15-bit pseudo-random numbers. */
static unsigned lcg(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

/* A long random stream of valid frames (fragmented, interleaved control, all length forms)
 * gives the same log whatever the split. */
static void test_random_stream_splits(void **state)
{
    (void)state;
    uint32_t seed = 12345;
#define RND() lcg(&seed)
    static uint8_t buf[2000000];
    uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    size_t n = 0;
    bool in_msg = false;
    for (int f = 0; f < 60; f++) {
        uint8_t key[4];
        for (int i = 0; i < 4; i++)
            key[i] = (uint8_t)RND();
        unsigned k = RND() % 10;
        if (k < 2) {
            n += frame(buf + n, k ? WEFT_OP_PING : WEFT_OP_PONG, true, 0, payload, RND() % 126,
                       key);
            continue;
        }
        size_t len = (k == 9) ? 65536 + RND() % 100 : (k == 8) ? 126 + RND() % 1000 : RND() % 126;
        bool fin = RND() % 2;
        uint8_t op = in_msg ? WEFT_OP_CONT : (RND() % 2 ? WEFT_OP_TEXT : WEFT_OP_BINARY);
        n += frame(buf + n, op, fin, 0, payload, len, key);
        in_msg = !fin;
    }
    struct weft_msg_limits srv = limits(WEFT_ROLE_SERVER);
    static struct log whole, split;
    run_whole(&srv, buf, n, &whole);
    assert_int_equal(whole.error, 0);
    for (int t = 0; t < 200; t++) {
        size_t cuts[6];
        for (int c = 0; c < 5; c++)
            {
                uint64_t hi = RND();
                cuts[c] = (size_t)((hi << 15 | RND()) % (n + 1));
            }
        /* sort */
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++)
                if (cuts[j] < cuts[i]) {
                    size_t tmp = cuts[i];
                    cuts[i] = cuts[j];
                    cuts[j] = tmp;
                }
        cuts[5] = n;
        run(&srv, buf, n, cuts, 6, &split);
        assert_string_equal(whole.text, split.text);
    }
#undef RND
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_hello_unmasked),
        cmocka_unit_test(test_rfc_hello_masked),
        cmocka_unit_test(test_rfc_fragmented),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_length_forms),
        cmocka_unit_test(test_interleaved_control),
        cmocka_unit_test(test_control_payload_split),
        cmocka_unit_test(test_errors_header),
        cmocka_unit_test(test_errors_sequence),
        cmocka_unit_test(test_errors_utf8),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_parser_idle),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_encoder_roundtrip),
        cmocka_unit_test(test_random_stream_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
