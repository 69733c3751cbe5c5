/*
 * test_badinput.c — bad input over a raw socket, each with its exact answer, and after each
 * both a client connected before any bad input and a fresh one still get their echoes.
 *
 * Handshakes: wrong version → 426 with Sec-WebSocket-Version: 13; missing or malformed key →
 * 400; head over 8 KiB or over 100 headers → 431; malformed request line → 400; unknown path
 * → 404. Frames: unmasked → 1002; RSV bits → 1002; reserved opcodes → 1002; oversized control
 * or fragmented control → 1002; bad continuation sequences → 1002; oversized message (one
 * frame or fragments) → 1009; invalid UTF-8 (one frame, across fragments, truncated at the
 * end) → 1007; bad close codes (1005, 1006, 999, 1015, 2000) and a 1-byte close → 1002; a
 * close reason that is not UTF-8 → 1007.
 * (The slow head is in test_timeouts.c.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

#define MAX_MESSAGE 65536u

struct fx {
    struct ts t;
    struct rc bad, good;
    struct rc veteran;  /* an /echo client opened in setup, before any bad input */
    unsigned veteran_n; /* messages the veteran has had echoed */
    char *big;
    struct weft_server_stats before; /* taken by open_bad */
};

static void plain(struct weft_request *req, void *route_user)
{
    (void)route_user;
    weft_request_respond(req, 200, NULL, NULL, "plain\n", 6);
}

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_http(s, "GET", "/plain", plain, NULL) == WEFT_OK);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    rc_close(&f->bad);
    rc_close(&f->good);
    rc_close(&f->veteran);
    ts_stop(&f->t);
    free(f->big);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->bad.fd = f->good.fd = f->veteran.fd = -1;
    f->t.cfg.max_message = MAX_MESSAGE;
    f->t.cfg.handshake_timeout_ms = 3000;
    f->t.cfg.close_timeout_ms = 1000;
    f->t.setup = routes;
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    if (rc_open(&f->veteran, f->t.port, "/echo") != 0) {
        fprintf(stderr, "setup: the veteran client could not open /echo\n");
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* The server survived whatever came before: the veteran client, connected since setup, still
 * gets the echo of a new message (and nothing else first), and a fresh client opens /echo and
 * gets an echo too. */
static void assert_still_serving(struct fx *f)
{
    char m[32];
    int n = snprintf(m, sizeof m, "veteran %u", ++f->veteran_n);
    assert_int_equal(rc_send(&f->veteran, WEFT_OP_TEXT, m, (size_t)n), 0);
    assert_int_equal(rc_recv(&f->veteran, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->veteran.last.opcode, WEFT_OP_TEXT);
    assert_int_equal(f->veteran.last.len, (size_t)n);
    assert_memory_equal(f->veteran.last.data, m, (size_t)n);

    rc_close(&f->good);
    assert_int_equal(rc_open(&f->good, f->t.port, "/echo"), 0);
    assert_int_equal(rc_send(&f->good, WEFT_OP_TEXT, "alive?", 6), 0);
    assert_int_equal(rc_recv(&f->good, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->good.last.len, 6);
    assert_memory_equal(f->good.last.data, "alive?", 6);
    rc_close(&f->good);
}

/* Sends a raw request head on a new connection; returns the status of the answer, and
 * asserts the server then ends the connection. */
static int raw_request(struct fx *f, const char *head, size_t len, struct rc_http *r)
{
    rc_close(&f->bad);
    assert_int_equal(rc_connect(&f->bad, f->t.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_write(&f->bad, head, len, RC_TIMEOUT_MS), 0);
    int status = rc_read_http(&f->bad, r, RC_TIMEOUT_MS);
    return status;
}

static const char *const good_key = "dGhlIHNhbXBsZSBub25jZQ==";

static void test_wrong_version(void **state)
{
    struct fx *f = *state;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 8\r\n\r\n",
                     good_key);
    struct rc_http r;
    assert_int_equal(raw_request(f, head, (size_t)n, &r), 426);
    char v[32];
    assert_true(rc_http_header(&r, "Sec-WebSocket-Version", v, sizeof v));
    assert_string_equal(v, "13");
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.rejected_total, 1);
    assert_int_equal(st.upgrades_total, 1); /* the veteran's */
    assert_still_serving(f);
}

static void test_missing_key(void **state)
{
    struct fx *f = *state;
    static const char head[] = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    struct rc_http r;
    assert_int_equal(raw_request(f, head, sizeof head - 1, &r), 400);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);

    /* A key that does not decode to 16 bytes. */
    static const char head2[] = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(raw_request(f, head2, sizeof head2 - 1, &r), 400);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);
}

static void test_malformed_request_line(void **state)
{
    struct fx *f = *state;
    static const char head[] = "GET/echo HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n";
    struct rc_http r;
    assert_int_equal(raw_request(f, head, sizeof head - 1, &r), 400);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);
}

/* A head over the 8 KiB default limit → 431, whether or not it is complete yet. */
static void test_oversized_head(void **state)
{
    struct fx *f = *state;
    const size_t fill = 9000;
    f->big = malloc(fill + 512);
    assert_non_null(f->big);
    int n = snprintf(f->big, 512,
                     "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nX-Big: ",
                     good_key);
    memset(f->big + n, 'a', fill);
    memcpy(f->big + n + fill, "\r\n\r\n", 4);
    struct rc_http r;
    assert_int_equal(raw_request(f, f->big, (size_t)n + fill + 4, &r), 431);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);

    /* Incomplete, but already too long. */
    assert_int_equal(raw_request(f, f->big, (size_t)n + fill, &r), 431);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);
}

static void test_too_many_headers(void **state)
{
    struct fx *f = *state;
    f->big = malloc(4096);
    assert_non_null(f->big);
    size_t n = (size_t)snprintf(f->big, 4096,
                                "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                "Sec-WebSocket-Version: 13\r\n",
                                good_key);
    for (int i = 0; i < 120; i++)
        n += (size_t)snprintf(f->big + n, 4096 - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(f->big + n, 4096 - n, "\r\n");
    assert_true(n < 4000);
    struct rc_http r;
    assert_int_equal(raw_request(f, f->big, n, &r), 431);
    assert_int_equal(rc_wait_eof(&f->bad, 2000, NULL), 0);
    assert_still_serving(f);
}

/* Plain HTTP beside WebSocket routes: a GET route answers 200 with its body; an unknown path
 * gets 404; both keep the server serving. */
static void test_http_routes(void **state)
{
    struct fx *f = *state;
    static const char get[] = "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct rc_http r;
    assert_int_equal(raw_request(f, get, sizeof get - 1, &r), 200);
    assert_int_equal(r.body_len, 6);
    assert_string_equal(r.body, "plain\n");
    static const char nope[] = "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(raw_request(f, nope, sizeof nope - 1, &r), 404);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_true(st.http_requests >= 1);
    assert_still_serving(f);
}

/* Opens f->bad as a WebSocket client of /echo. */
static void open_bad(struct fx *f)
{
    rc_close(&f->bad);
    assert_int_equal(rc_open(&f->bad, f->t.port, "/echo"), 0);
    ts_stats(&f->t, &f->before);
}

/* The server must answer what was just sent with a close frame `code` (nothing before it:
 * rc_expect_close fails on any other event), end the TCP connection after our answer, count
 * exactly one protocol error, and keep serving. */
static void expect_proto_close(struct fx *f, uint16_t code)
{
    assert_int_equal(rc_expect_close(&f->bad, RC_TIMEOUT_MS), code);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.protocol_errors, f->before.protocol_errors + 1);
    assert_still_serving(f);
}

/* Opens a client, sends one hand-built frame, expects close `code`. */
static void one_frame(struct fx *f, uint8_t b0, bool masked, const void *p, size_t n, uint16_t code)
{
    open_bad(f);
    assert_int_equal(rc_send_raw_frame(&f->bad, b0, masked, p, n), 0);
    expect_proto_close(f, code);
}

static void test_unmasked_frame(void **state)
{
    struct fx *f = *state;
    /* Hand-built bytes: FIN + text, length 5, no mask bit. */
    open_bad(f);
    static const uint8_t raw[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(rc_write(&f->bad, raw, sizeof raw, RC_TIMEOUT_MS), 0);
    expect_proto_close(f, 1002);
    one_frame(f, 0x82, false, "\x01\x02", 2, 1002);
    one_frame(f, 0x89, false, "", 0, 1002); /* an unmasked ping too */
}

static void test_reserved_bits(void **state)
{
    struct fx *f = *state;
    one_frame(f, 0x80 | 0x40 | 0x1, true, "hello", 5, 1002); /* RSV1 without deflate */
    one_frame(f, 0x80 | 0x20 | 0x1, true, "hello", 5, 1002); /* RSV2 */
    one_frame(f, 0x80 | 0x10 | 0x2, true, "hello", 5, 1002); /* RSV3 */
    one_frame(f, 0x80 | 0x40 | 0x9, true, "", 0, 1002);      /* RSV1 on a ping */
}

static void test_reserved_opcodes(void **state)
{
    struct fx *f = *state;
    one_frame(f, 0x83, true, "x", 1, 1002);
    one_frame(f, 0x87, true, "x", 1, 1002);
    one_frame(f, 0x8B, true, "x", 1, 1002);
    one_frame(f, 0x8F, true, "", 0, 1002);
}

static void test_bad_control_frames(void **state)
{
    struct fx *f = *state;
    uint8_t p[126];
    memset(p, 'p', sizeof p);
    one_frame(f, 0x89, true, p, 126, 1002);  /* ping over 125 bytes */
    one_frame(f, 0x09, true, "ab", 2, 1002); /* fragmented ping (FIN clear) */
    one_frame(f, 0x8A, true, p, 126, 1002);  /* pong over 125 */
}

static void test_bad_continuations(void **state)
{
    struct fx *f = *state;
    one_frame(f, 0x80, true, "x", 1, 1002); /* continuation with nothing to continue */
    /* A new text frame while a fragmented message is open. */
    open_bad(f);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_TEXT, false, 0, "first", 5), 0);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_TEXT, true, 0, "second", 6), 0);
    expect_proto_close(f, 1002);
}

static void test_oversized_message(void **state)
{
    struct fx *f = *state;
    /* One frame declaring MAX_MESSAGE + 1 bytes: closed on the header, before the payload. */
    open_bad(f);
    uint8_t hdr[WEFT_FRAME_HEADER_MAX + 100];
    static const uint8_t key[4] = {1, 2, 3, 4};
    size_t h = weft_frame_header_write(hdr, WEFT_OP_BINARY, true, 0, MAX_MESSAGE + 1, key);
    memset(hdr + h, 0, 100);
    assert_int_equal(rc_write(&f->bad, hdr, h + 100, RC_TIMEOUT_MS), 0);
    expect_proto_close(f, 1009);

    /* Exactly MAX_MESSAGE is fine. */
    open_bad(f);
    f->big = malloc(MAX_MESSAGE + 1);
    assert_non_null(f->big);
    rc_fill((uint8_t *)f->big, MAX_MESSAGE + 1, 3, false);
    assert_int_equal(rc_send(&f->bad, WEFT_OP_BINARY, f->big, MAX_MESSAGE), 0);
    assert_int_equal(rc_recv(&f->bad, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->bad.last.len, MAX_MESSAGE);

    /* Fragments that each fit but add up to more: 1009 once the sum passes the limit. */
    open_bad(f);
    const size_t piece = MAX_MESSAGE / 4;
    for (int i = 0; i < 4; i++)
        assert_int_equal(rc_send_frame(&f->bad, i ? WEFT_OP_CONT : WEFT_OP_BINARY, false, 0,
                                       f->big + (size_t)i * piece, piece),
                         0);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_CONT, true, 0, f->big, 1), 0);
    expect_proto_close(f, 1009);
}

static void test_invalid_utf8(void **state)
{
    struct fx *f = *state;
    one_frame(f, 0x81, true, "abc\xFF", 4, 1007);
    one_frame(f, 0x81, true, "\xC0\xAF", 2, 1007);     /* overlong '/' */
    one_frame(f, 0x81, true, "\xED\xA0\x80", 3, 1007); /* surrogate U+D800 */
    one_frame(f, 0x81, true, "ok\xE2\x82", 4, 1007);   /* ends inside a sequence */
    /* Across fragments: a lead byte at the end of one, a non-continuation next. */
    open_bad(f);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_TEXT, false, 0, "caf\xC3", 4), 0);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_CONT, true, 0, "e", 1), 0);
    expect_proto_close(f, 1007);
    /* Fail fast: the invalid byte closes the connection before the message is complete. */
    open_bad(f);
    assert_int_equal(rc_send_frame(&f->bad, WEFT_OP_TEXT, false, 0, "bad\xF8", 4), 0);
    expect_proto_close(f, 1007);
}

static void test_bad_close_frames(void **state)
{
    struct fx *f = *state;
    static const uint16_t bad_codes[] = {1005, 1006, 999, 1015, 2000, 1004};
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        uint8_t p[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        one_frame(f, 0x88, true, p, 2, 1002);
    }
    one_frame(f, 0x88, true, "\x03", 1, 1002);             /* 1-byte payload */
    one_frame(f, 0x88, true, "\x03\xE8\xFF\xFE", 4, 1007); /* reason not UTF-8 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmasked_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_opcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_control_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_continuations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_close_frames, setup, teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.badinput", tests, NULL, NULL);
}
