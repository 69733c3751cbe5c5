/*
 * test_echo.c — an in-process server with an echo route, driven by raw clients: messages of
 * every length class, fragmented input with pings in between, ping/pong, and the close
 * handshake as seen by both sides (close frame, TCP EOF, on_close code/reason/clean). The
 * same echo over the IPv6 loopback ::1 (skipped, saying so, if the machine has none) and over
 * a Unix domain socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

#define MIB (1024u * 1024u)

struct fx {
    struct ts t;
    struct rc c[4];
    uint8_t *buf; /* scratch, freed in teardown */
    uint8_t *buf2;
    bool skipped;  /* setup found no IPv6 loopback: the test must skip */
    char sock[96]; /* the Unix socket path of the unix tests, "" otherwise */
};

/* "/closer": the application ends the connection: "close" → weft_conn_close(4000, "app
 * close"), "drop" → weft_conn_terminate. */
static void closer_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)binary;
    if (len == 5 && memcmp(data, "close", 5) == 0)
        weft_conn_close(c, 4000, "app close");
    else if (len == 4 && memcmp(data, "drop", 4) == 0)
        weft_conn_terminate(c);
    else if (len == 9 && memcmp(data, "close1006", 9) == 0)
        weft_conn_close(c, WEFT_CLOSE_ABNORMAL, "never on the wire");
}

static const struct weft_ws_handlers closer_handlers = {
    .on_open = ts_record_open,
    .on_message = closer_message,
    .on_close = ts_record_close,
};

/* "/remote": answers with the peer address as the server sees it. */
static void remote_http(struct weft_request *req, void *user)
{
    (void)user;
    const char *r = weft_request_remote(req);
    weft_request_respond(req, 200, "text/plain", NULL, r, strlen(r));
}

/* "/bighead": an HTTP handler whose response head does not fit the server's head buffer. */
static void bighead_http(struct weft_request *req, void *user)
{
    (void)user;
    static char extra[6000];
    if (!extra[0]) {
        memcpy(extra, "X-Big: ", 7);
        memset(extra + 7, 'a', sizeof extra - 10);
        memcpy(extra + sizeof extra - 3, "\r\n", 3);
    }
    weft_request_respond(req, 200, "text/plain", extra, "ok", 2);
}

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_http(s, "GET", "/bighead", bighead_http, NULL) == WEFT_OK);
    TS_CHECK(weft_server_http(s, "GET", "/remote", remote_http, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/closer", &closer_handlers, NULL) == WEFT_OK);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < 4; i++)
        rc_close(&f->c[i]);
    ts_stop(&f->t);
    free(f->buf);
    free(f->buf2);
    if (f->sock[0]) unlink(f->sock);
    free(f);
    return 0;
}

/* The server listens on host (NULL: 127.0.0.1), or on the Unix socket path if unix_tag is set;
 * with host "::1" and no IPv6 loopback it does not start and f->skipped is set. */
static int setup_at(void **state, const char *host, const char *unix_tag)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < 4; i++)
        f->c[i].fd = -1;
    f->t.cfg.max_message = 16 * MIB + 4096;
    f->t.cfg.max_backpressure = 64 * MIB; /* this file is about echo, not the slow policy */
    f->t.cfg.close_timeout_ms = 5000;
    f->t.cfg.host = host;
    if (unix_tag) {
        rc_unix_path(f->sock, sizeof f->sock, unix_tag);
        f->t.cfg.unix_path = f->sock;
    }
    f->t.setup = routes;
    *state = f;
    if (host && strchr(host, ':') && !rc_ip6_available()) {
        f->skipped = true;
        return 0;
    }
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    return setup_at(state, NULL, NULL);
}

static int setup_ip6(void **state)
{
    return setup_at(state, "::1", NULL);
}

static int setup_unix(void **state)
{
    return setup_at(state, NULL, "echo");
}

/* Sends one message of len bytes and asserts the echo is identical, opcode included. */
static void echo_one(struct fx *f, struct rc *c, uint8_t op, size_t len, uint32_t seed)
{
    free(f->buf);
    f->buf = malloc(len ? len : 1);
    assert_non_null(f->buf);
    rc_fill(f->buf, len, seed, op == WEFT_OP_TEXT);
    assert_int_equal(rc_send(c, op, f->buf, len), 0);
    enum rc_event e = rc_recv(c, 30000);
    assert_int_equal(e, RC_MESSAGE);
    assert_int_equal(c->last.opcode, op);
    assert_int_equal(c->last.len, len);
    assert_true(len == 0 || memcmp(c->last.data, f->buf, len) == 0);
}

/* Echo of text and binary at the boundaries of the 7/16/64-bit length encodings, up to the
 * 16 MiB default maximum, on one connection. */
static void test_echo_sizes(void **state)
{
    struct fx *f = *state;
    static const size_t sizes[] = {0, 125, 126, 65535, 65536, MIB, 16 * MIB};
    assert_int_equal(rc_open(&f->c[0], f->t.port, "/echo"), 0);
    uint32_t seed = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        echo_one(f, &f->c[0], WEFT_OP_TEXT, sizes[i], seed++);
        echo_one(f, &f->c[0], WEFT_OP_BINARY, sizes[i], seed++);
    }
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.messages_in, 14);
    assert_int_equal(st.messages_out, 14);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.upgrades_total, 1);
}

/* Many messages sent back to back in one write: every echo comes back, in order. */
static void test_echo_pipelined(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    enum { N = 500 };
    f->buf = malloc(N * 64);
    assert_non_null(f->buf);
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        char m[32];
        int ml = snprintf(m, sizeof m, "msg-%d", i);
        long fl = weft_frame_encode(f->buf + n, N * 64 - n, WEFT_ROLE_CLIENT, &c->rnd, WEFT_OP_TEXT,
                                    true, 0, m, (size_t)ml);
        assert_true(fl > 0);
        n += (size_t)fl;
    }
    assert_int_equal(rc_write(c, f->buf, n, RC_TIMEOUT_MS), 0);
    for (int i = 0; i < N; i++) {
        char m[32];
        int ml = snprintf(m, sizeof m, "msg-%d", i);
        assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
        assert_int_equal(c->last.len, (size_t)ml);
        assert_memory_equal(c->last.data, m, (size_t)ml);
    }
}

/* Appends one masked frame to f->buf2 at *n (capacity cap). */
static void put_frame(struct rc *c, uint8_t *out, size_t cap, size_t *n, uint8_t op, bool fin,
                      const uint8_t *data, size_t len)
{
    long fl =
        weft_frame_encode(out + *n, cap - *n, WEFT_ROLE_CLIENT, &c->rnd, op, fin, 0, data, len);
    assert_true(fl > 0);
    *n += (size_t)fl;
}

/* Writes buf[0..n) in small irregular pieces (the first bytes one at a time) so the server
 * sees headers and code points split across reads. */
static void write_trickle(struct rc *c, const uint8_t *buf, size_t n)
{
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = off < 64 ? 1 : step;
        if (k > n - off) k = n - off;
        assert_int_equal(rc_write(c, buf + off, k, RC_TIMEOUT_MS), 0);
        off += k;
        step = step * 7 % 4093 + 1;
        if (off < 64) usleep(200);
    }
}

/* A text message in many frames of irregular sizes (splitting UTF-8 sequences), with an empty
 * continuation and a ping in the middle: the pong comes first with the ping's payload, then
 * the echo, whole. Then a binary message in 3 frames with 2 pings between them. */
static void test_fragmented(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    const size_t len = 100000;
    f->buf = malloc(len);
    assert_non_null(f->buf);
    rc_fill(f->buf, len, 77, true);
    size_t cap = len + 4096;
    f->buf2 = malloc(cap);
    assert_non_null(f->buf2);

    static const size_t pieces[] = {1, 2, 3, 5, 125, 126, 127, 1000, 4099, 65535};
    size_t n = 0, off = 0, frames = 0;
    for (size_t i = 0; off < len; i++) {
        size_t k = i < sizeof pieces / sizeof pieces[0] ? pieces[i] : len - off;
        if (k > len - off) k = len - off;
        put_frame(c, f->buf2, cap, &n, frames == 0 ? WEFT_OP_TEXT : WEFT_OP_CONT, off + k == len,
                  f->buf + off, k);
        frames++;
        off += k;
        if (i == 2) put_frame(c, f->buf2, cap, &n, WEFT_OP_PING, true, (const uint8_t *)"mid", 3);
        if (i == 4) put_frame(c, f->buf2, cap, &n, WEFT_OP_CONT, false, NULL, 0);
    }
    assert_true(frames > 5);
    write_trickle(c, f->buf2, n);

    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
    assert_int_equal(c->last.len, 3);
    assert_memory_equal(c->last.data, "mid", 3);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.opcode, WEFT_OP_TEXT);
    assert_int_equal(c->last.len, len);
    assert_true(memcmp(c->last.data, f->buf, len) == 0);

    /* Binary: 3 frames, pings "p1" and "p2" between them. */
    rc_fill(f->buf, 3000, 78, false);
    n = 0;
    put_frame(c, f->buf2, cap, &n, WEFT_OP_BINARY, false, f->buf, 1000);
    put_frame(c, f->buf2, cap, &n, WEFT_OP_PING, true, (const uint8_t *)"p1", 2);
    put_frame(c, f->buf2, cap, &n, WEFT_OP_CONT, false, f->buf + 1000, 1000);
    put_frame(c, f->buf2, cap, &n, WEFT_OP_PING, true, (const uint8_t *)"p2", 2);
    put_frame(c, f->buf2, cap, &n, WEFT_OP_CONT, true, f->buf + 2000, 1000);
    write_trickle(c, f->buf2, n);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
    assert_memory_equal(c->last.data, "p1", 2);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
    assert_memory_equal(c->last.data, "p2", 2);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.opcode, WEFT_OP_BINARY);
    assert_int_equal(c->last.len, 3000);
    assert_memory_equal(c->last.data, f->buf, 3000);
}

/* Pings of 0, 5 and 125 bytes are answered with pongs carrying the same payload; an
 * unsolicited pong gets no answer (the next thing received is the echo of a message). */
static void test_ping_pong(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint8_t big[125];
    rc_fill(big, sizeof big, 5, false);
    const struct {
        const void *p;
        size_t n;
    } pings[] = {{"", 0}, {"hello", 5}, {big, sizeof big}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(rc_send(c, WEFT_OP_PING, pings[i].p, pings[i].n), 0);
        assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
        assert_int_equal(c->last.len, pings[i].n);
        if (pings[i].n) assert_memory_equal(c->last.data, pings[i].p, pings[i].n);
    }
    assert_int_equal(rc_send(c, WEFT_OP_PONG, "unasked", 7), 0);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, "after", 5), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.len, 5);
    assert_memory_equal(c->last.data, "after", 5);
}

/* Client-initiated close 1000 "bye": the server answers with close 1000, then closes TCP
 * promptly (well before the 5 s close timeout); on_close reports 1000, "bye", clean. */
static void test_client_close_normal(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id = ts_last_open(&f->t);
    assert_true(id != 0);
    assert_int_equal(rc_send_close(c, 1000, "bye"), 0);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, 1000);
    size_t extra = 99;
    assert_int_equal(rc_wait_eof(c, 2000, &extra), 0);
    assert_int_equal(extra, 0);
    assert_true(rc_now_ms() - t0 < 1500);

    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1000);
    assert_true(cl.clean);
    assert_int_equal(cl.reason_len, 3);
    assert_memory_equal(cl.reason, "bye", 3);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.connections, 0);
}

/* Client-initiated close with an application code (4001) and a UTF-8 reason: on_close sees
 * exactly them; the server's answer is a valid close; an empty close reports 1005. */
static void test_client_close_codes(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id1 = ts_last_open(&f->t);
    assert_int_equal(rc_send_close(c, 4001, "d\xC3\xA9j\xC3\xA0 vu"), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_true(weft_close_code_valid(c->last.close_code));
    assert_int_equal(rc_wait_eof(c, 2000, NULL), 0);

    struct rc *d = &f->c[1];
    assert_int_equal(rc_open(d, f->t.port, "/echo"), 0);
    uint64_t id2 = ts_last_open(&f->t);
    assert_true(id2 != id1);
    assert_int_equal(rc_send_frame(d, WEFT_OP_CLOSE, true, 0, NULL, 0), 0);
    assert_int_equal(rc_recv(d, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(rc_wait_eof(d, 2000, NULL), 0);

    assert_true(ts_wait_closes(&f->t, 2, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id1, &cl));
    assert_int_equal(cl.code, 4001);
    assert_true(cl.clean);
    assert_int_equal(cl.reason_len, strlen("d\xC3\xA9j\xC3\xA0 vu"));
    assert_memory_equal(cl.reason, "d\xC3\xA9j\xC3\xA0 vu", cl.reason_len);
    assert_true(ts_find_close(&f->t, id2, &cl));
    assert_int_equal(cl.code, 1005);
    assert_true(cl.clean);
}

/* A client that drops TCP without a close frame: on_close reports 1006, not clean; the
 * server keeps serving. */
static void test_abrupt_disconnect(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id = ts_last_open(&f->t);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, "x", 1), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    rc_close(c);
    assert_true(ts_wait_closes(&f->t, 1, 3000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1006);
    assert_false(cl.clean);

    assert_int_equal(rc_open(&f->c[1], f->t.port, "/echo"), 0);
    echo_one(f, &f->c[1], WEFT_OP_TEXT, 10, 3);
}

/* Server-initiated close by the application: the client gets close 4000 "app close"; after
 * its answer the server ends TCP; on_close reports the peer's answer (4000), clean. A
 * terminate sends no close frame: plain EOF, on_close 1006 not clean. */
static void test_server_close(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/closer"), 0);
    uint64_t id = ts_last_open(&f->t);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, "close", 5), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, 4000);
    assert_int_equal(c->last.len, 9);
    assert_memory_equal(c->last.data, "app close", 9);
    assert_int_equal(rc_send_close(c, 4000, NULL), 0);
    size_t extra = 1;
    assert_int_equal(rc_wait_eof(c, 2000, &extra), 0);
    assert_int_equal(extra, 0);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 4000);
    assert_true(cl.clean);

    struct rc *d = &f->c[1];
    assert_int_equal(rc_open(d, f->t.port, "/closer"), 0);
    id = ts_last_open(&f->t);
    assert_int_equal(rc_send(d, WEFT_OP_TEXT, "drop", 4), 0);
    extra = 1;
    assert_int_equal(rc_wait_eof(d, 2000, &extra), 0);
    assert_int_equal(extra, 0); /* no close frame */
    assert_true(ts_wait_closes(&f->t, 2, 2000));
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1006);
    assert_false(cl.clean);
}

/* weft_conn_close with a code reserved for reports (1006) must not put it on the wire: the
 * peer gets a close frame its parser accepts (an empty one, read as 1005), never 1006. */
static void test_server_close_reserved_code(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/closer"), 0);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, "close1006", 9), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, WEFT_CLOSE_NO_STATUS);
    assert_int_equal(c->last.len, 0);
}

/* A response head too large to build is replaced by one 500, not followed by a second
 * "handler sent no response" 500 on the same connection. */
static void test_http_head_too_large(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    struct rc_http r;
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_write_str(c, "GET /bighead HTTP/1.1\r\nHost: x\r\n\r\n", RC_TIMEOUT_MS),
                     0);
    assert_int_equal(rc_read_http(c, &r, RC_TIMEOUT_MS), 500);
    size_t extra = 1;
    assert_int_equal(rc_wait_eof(c, 2000, &extra), 0);
    assert_int_equal(extra, 0);
}

/* Plain HTTP on a WebSocket-only server: an upgrade to an unknown path gets 404; the server
 * keeps serving. */
static void test_unknown_path(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    struct rc_http r;
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(c, f->t.port, "/nope", &r, RC_TIMEOUT_MS), 404);
    assert_int_equal(rc_open(&f->c[1], f->t.port, "/echo"), 0);
    echo_one(f, &f->c[1], WEFT_OP_BINARY, 300, 9);
}

/* Over a connection c already open on /echo (whatever its transport): text and binary echo at
 * each length encoding, a ping answered, and a clean close handshake that on_close reports;
 * h, connected on the same transport, asks GET /remote and the server's view of the peer
 * must start with remote_prefix. */
static void echo_transport(struct fx *f, struct rc *c, struct rc *h, const char *remote_prefix)
{
    uint64_t id = ts_last_open(&f->t);
    assert_true(id != 0);
    static const size_t sizes[] = {0, 125, 126, 65536, MIB};
    uint32_t seed = 11;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        echo_one(f, c, WEFT_OP_TEXT, sizes[i], seed++);
        echo_one(f, c, WEFT_OP_BINARY, sizes[i], seed++);
    }
    assert_int_equal(rc_send(c, WEFT_OP_PING, "p6", 2), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
    assert_int_equal(c->last.len, 2);
    assert_memory_equal(c->last.data, "p6", 2);

    struct rc_http r;
    assert_int_equal(
        rc_write_str(h, "GET /remote HTTP/1.1\r\nHost: localhost\r\n\r\n", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_read_http(h, &r, RC_TIMEOUT_MS), 200);
    if (strncmp(r.body, remote_prefix, strlen(remote_prefix)) != 0)
        fail_msg("the server saw the peer as \"%s\", expected \"%s...\"", r.body, remote_prefix);

    assert_int_equal(rc_send_close(c, 1000, "done"), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, 1000);
    assert_int_equal(rc_wait_eof(c, 2000, NULL), 0);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1000);
    assert_true(cl.clean);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.upgrades_total, 1);
    assert_int_equal(st.messages_in, 10);
    assert_int_equal(st.messages_out, 10);
}

/* The server listening on the IPv6 loopback [::1]:port: a client over ::1 gets its echoes and
 * the server sees it as [::1]:PORT. Skipped (and said so) when the machine has no ::1. */
static void test_echo_ip6(void **state)
{
    struct fx *f = *state;
    if (f->skipped) {
        print_message("no IPv6 loopback (::1) on this machine: test_echo_ip6 skipped\n");
        skip();
    }
    assert_int_equal(rc_open_ip6(&f->c[0], f->t.port, "/echo"), 0);
    assert_int_equal(rc_connect_ip6(&f->c[1], f->t.port, RC_TIMEOUT_MS), 0);
    echo_transport(f, &f->c[0], &f->c[1], "[::1]:");
}

/* The server listening on a Unix domain socket (a per-test path): the socket file exists while
 * it runs, a client over it gets its echoes and is seen as "unix", and stopping the server
 * removes the socket file. */
static void test_echo_unix(void **state)
{
    struct fx *f = *state;
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(f->t.port, 0);
    assert_int_equal(rc_open_unix(&f->c[0], f->sock, "/echo"), 0);
    assert_int_equal(rc_connect_unix(&f->c[1], f->sock, RC_TIMEOUT_MS), 0);
    echo_transport(f, &f->c[0], &f->c[1], "unix");
    ts_stop(&f->t);
    assert_int_not_equal(stat(f->sock, &st), 0);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fragmented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_pong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_normal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abrupt_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close_reserved_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_head_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_ip6, setup_ip6, teardown),
        cmocka_unit_test_setup_teardown(test_echo_unix, setup_unix, teardown),
    };
    alarm(170); /* last-resort guard under ctest's 180 s */
    return cmocka_run_group_tests_name("integration.echo", tests, NULL, NULL);
}
