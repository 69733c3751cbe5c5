/*
 * test_budget_lib.c — the process-wide memory budget of libweft (weft_memory_set_budget),
 * against an in-process echo server and raw clients on 127.0.0.1.
 *
 * The count is exact: a fragmented message or a frame split across reads is counted by the
 * capacity of its buffer (4096 doubled until it fits), and weft_memory_held() returns to 0
 * when the message is delivered, when its connection closes, and when the server is freed.
 * A message delivered whole from the receive buffer is never counted. Output the kernel
 * refused (a client that does not read) is counted while queued, and released when the
 * client reads it.
 *
 * Past the budget, with 1013: a message whose first frame announces more than fits is
 * refused before any of it is buffered; a message that grows past it has the largest holder
 * closed first (the smaller ones finish their messages); a client that floods without reading
 * is dropped when its queued echoes would exceed it. stats.closed_memory counts the closes.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

#define KIB 1024u
#define WAIT_MS 5000

struct fx {
    struct ts t;
    struct rc a, b, s;
    uint8_t *buf;
};

enum { BUF = 1024 * 1024 };

/* "/sub": subscribes to topic "t". "/pub": publishes each message to "t". */
static void sub_open(struct weft_conn *c)
{
    TS_CHECK(weft_subscribe(c, "t", 1) == WEFT_OK);
    ts_record_open(c);
}

static void pub_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_publish(weft_conn_server(c), "t", 1, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT,
                 NULL);
}

static const struct weft_ws_handlers sub_handlers = {
    .on_open = sub_open,
    .on_close = ts_record_close,
};
static const struct weft_ws_handlers pub_handlers = {
    .on_open = ts_record_open,
    .on_message = pub_message,
    .on_close = ts_record_close,
};

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/sub", &sub_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/pub", &pub_handlers, NULL) == WEFT_OK);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    rc_close(&f->a);
    rc_close(&f->b);
    rc_close(&f->s);
    ts_stop(&f->t);
    free(f->buf);
    free(f);
    weft_memory_set_budget(0);
    return 0;
}

/* Starts the echo server with the given budget (0 = none) and max_backpressure. */
static int start(void **state, uint64_t budget, size_t max_bp)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    *state = f;
    f->a.fd = f->b.fd = f->s.fd = -1;
    f->buf = malloc(BUF);
    weft_memory_set_budget(budget);
    f->t.cfg.max_backpressure = max_bp;
    f->t.cfg.close_timeout_ms = 500;
    f->t.setup = routes;
    if (!f->buf || ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static int setup_none(void **state)
{
    return start(state, 0, 0);
}

/* Waits until weft_memory_held() == want (up to WAIT_MS). Returns the last value seen. */
static uint64_t wait_held(uint64_t want)
{
    uint64_t deadline = rc_now_ms() + WAIT_MS, v;
    while ((v = weft_memory_held()) != want && rc_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return v;
}

/* Sends a frame of len pattern bytes (seed) with opcode and fin. */
static void frag(struct fx *f, struct rc *c, uint8_t opcode, bool fin, size_t len, uint32_t seed)
{
    rc_fill(f->buf, len, seed, false);
    assert_int_equal(rc_send_frame(c, opcode, fin, 0, f->buf, len), 0);
}

/* Writes the header of a binary frame announcing total bytes and only the first `sent` of
 * its payload (masked). */
static void partial_frame(struct fx *f, struct rc *c, size_t total, size_t sent)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    size_t h = weft_frame_header_write(hdr, WEFT_OP_BINARY, true, 0, total, key);
    assert_int_equal(rc_write(c, hdr, h, RC_TIMEOUT_MS), 0);
    memset(f->buf, 'x', sent);
    weft_mask(f->buf, sent, key, 0);
    assert_int_equal(rc_write(c, f->buf, sent, RC_TIMEOUT_MS), 0);
}

/* Expects the echo of a binary message of len bytes. */
static void expect_echo(struct rc *c, size_t len)
{
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.opcode, WEFT_OP_BINARY);
    assert_int_equal(c->last.len, len);
}

/* The server's statistics. */
static struct weft_server_stats stats(struct fx *f)
{
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    return st;
}

static void test_set_get(void **state)
{
    (void)state;
    assert_int_equal(weft_memory_budget(), 0);
    weft_memory_set_budget(123456);
    assert_int_equal(weft_memory_budget(), 123456);
    weft_memory_set_budget(0);
    assert_int_equal(weft_memory_budget(), 0);
    assert_int_equal(weft_memory_held(), 0);
}

/* A fragmented message is counted by its buffer's capacity, exactly, and released when it is
 * delivered; a whole message costs nothing. */
static void test_fragments_exact(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->a, f->t.port, "/echo"), 0);
    frag(f, &f->a, WEFT_OP_BINARY, true, 1000, 1); /* whole, straight from the read */
    expect_echo(&f->a, 1000);
    assert_int_equal(weft_memory_held(), 0);

    frag(f, &f->a, WEFT_OP_BINARY, false, 10000, 2);
    assert_int_equal(wait_held(16384), 16384); /* 4096 doubled twice */
    frag(f, &f->a, WEFT_OP_CONT, false, 10000, 3);
    assert_int_equal(wait_held(32768), 32768);
    assert_int_equal(stats(f).memory_held, 32768); /* the loop's share: all of it */
    frag(f, &f->a, WEFT_OP_CONT, true, 1, 4);
    expect_echo(&f->a, 20001);
    assert_int_equal(wait_held(0), 0);
    assert_int_equal(stats(f).memory_held, 0);
    assert_int_equal(stats(f).closed_memory, 0);
}

/* A frame split across reads is counted while partial and released when its connection
 * closes in the middle of it. */
static void test_partial_released_on_close(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->a, f->t.port, "/echo"), 0);
    partial_frame(f, &f->a, 100000, 50000);
    assert_int_equal(wait_held(65536), 65536);
    rc_close(&f->a);
    assert_true(ts_wait_closes(&f->t, 1, WAIT_MS));
    assert_int_equal(wait_held(0), 0);
}

static int setup_50k(void **state)
{
    return start(state, 50000, 0);
}

/* A message whose first frame announces more than the budget allows is refused with 1013
 * before it is buffered; one that fits is served. */
static void test_refused_before_buffered(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->a, f->t.port, "/echo"), 0);
    assert_int_equal(rc_open(&f->b, f->t.port, "/echo"), 0);
    partial_frame(f, &f->a, 100000, 1000);
    assert_int_equal(rc_expect_close(&f->a, RC_TIMEOUT_MS), WEFT_CLOSE_TRY_AGAIN);
    assert_int_equal(stats(f).closed_memory, 1);
    assert_int_equal(wait_held(0), 0);

    frag(f, &f->b, WEFT_OP_BINARY, false, 15000, 5); /* 16384 */
    frag(f, &f->b, WEFT_OP_CONT, true, 15000, 6);    /* 32768 <= 50000 */
    expect_echo(&f->b, 30000);
    assert_int_equal(stats(f).closed_memory, 1);
    assert_int_equal(wait_held(0), 0);
}

static int setup_200k(void **state)
{
    return start(state, 200000, 0);
}

/* Growth past the budget closes the largest holder (1013), not the one that grows nor the
 * smaller ones, which finish their messages. */
static void test_largest_closed_first(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->a, f->t.port, "/echo"), 0);
    assert_int_equal(rc_open(&f->b, f->t.port, "/echo"), 0);
    assert_int_equal(rc_open(&f->s, f->t.port, "/echo"), 0);
    frag(f, &f->a, WEFT_OP_BINARY, false, 60000, 7);
    frag(f, &f->a, WEFT_OP_CONT, false, 60000, 8);
    assert_int_equal(wait_held(131072), 131072);
    frag(f, &f->b, WEFT_OP_BINARY, false, 20000, 9);
    assert_int_equal(wait_held(163840), 163840);
    frag(f, &f->s, WEFT_OP_BINARY, false, 10000, 10);
    assert_int_equal(wait_held(180224), 180224);
    frag(f, &f->s, WEFT_OP_CONT, false, 20000, 11); /* 32768: 196608 in all, fits */
    assert_int_equal(wait_held(196608), 196608);
    assert_int_equal(stats(f).closed_memory, 0);
    /* 65536 for s would make 229376 > 200000: a (131072) is the largest, it goes */
    frag(f, &f->s, WEFT_OP_CONT, false, 20000, 12);
    assert_int_equal(rc_expect_close(&f->a, RC_TIMEOUT_MS), WEFT_CLOSE_TRY_AGAIN);
    assert_int_equal(wait_held(32768 + 65536), 32768 + 65536);
    frag(f, &f->b, WEFT_OP_CONT, true, 1, 13);
    expect_echo(&f->b, 20001);
    frag(f, &f->s, WEFT_OP_CONT, true, 1, 14);
    expect_echo(&f->s, 50001);
    assert_int_equal(stats(f).closed_memory, 1);
    assert_int_equal(wait_held(0), 0);
}

/* Writes len bytes of 64 KiB echo requests without reading, until the kernel accepts nothing
 * for 300 ms or the connection fails. Returns the bytes written. */
static size_t flood(struct fx *f, struct rc *c, size_t len)
{
    size_t frame = weft_frame_header_size(64 * KIB, true) + 64 * KIB;
    size_t n = BUF / frame;
    rc_fill(f->buf, 64 * KIB, 15, false);
    /* n masked frames in f->buf + ... built one after the other */
    uint8_t *out = malloc(n * frame);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        long w = weft_frame_encode(out + i * frame, frame, WEFT_ROLE_CLIENT, &c->rnd,
                                   WEFT_OP_BINARY, true, 0, f->buf, 64 * KIB);
        assert_int_equal(w, (long)frame);
    }
    size_t off = 0;
    while (off < len) {
        size_t at = off % (n * frame);
        size_t chunk = n * frame - at;
        if (chunk > len - off) chunk = len - off;
        ssize_t w = send(c->fd, out + at, chunk, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, 300) <= 0) break;
    }
    free(out);
    return off;
}

static int setup_out(void **state)
{
    return start(state, 0, 256 * KIB);
}

/* Echoes a client does not read are counted while queued and released once it reads them. */
static void test_output_counted(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_connect(&f->a, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->a, f->t.port, "/echo", NULL, RC_TIMEOUT_MS), 101);
    size_t frame = weft_frame_header_size(64 * KIB, true) + 64 * KIB;
    size_t sent = flood(f, &f->a, 64 * frame);
    assert_true(sent >= 8 * frame);
    /* More than one partial 64 KiB message (all reassembly can hold here): the queue the
     * kernel refused is counted. */
    uint64_t held, deadline = rc_now_ms() + WAIT_MS;
    while ((held = weft_memory_held()) <= 64 * KIB + 4 * KIB && rc_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(held > 64 * KIB + 4 * KIB);
    /* max_backpressure + one frame queued, and one partial message */
    assert_true(held <= 256 * KIB + (64 * KIB + 64) + 64 * KIB);
    /* Read every echo of the whole frames that were sent: the queue drains. */
    size_t whole = sent / frame;
    for (size_t i = 0; i < whole; i++) {
        enum rc_event e = rc_recv(&f->a, RC_TIMEOUT_MS);
        if (e != RC_MESSAGE) break; /* echoes refused while over max_backpressure */
        assert_int_equal(f->a.last.len, 64 * KIB);
    }
    assert_int_equal(wait_held(0), 0);
    assert_int_equal(stats(f).closed_memory, 0);
}

static int setup_out_budget(void **state)
{
    return start(state, 96 * KIB, 1024 * KIB);
}

/* A client flooding echoes without reading is dropped when its queue would exceed the budget;
 * on_close reports 1013, and another client is served. */
static void test_output_over_budget(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_connect(&f->a, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->a, f->t.port, "/echo", NULL, RC_TIMEOUT_MS), 101);
    uint64_t id = ts_last_open(&f->t);
    size_t frame = weft_frame_header_size(64 * KIB, true) + 64 * KIB;
    flood(f, &f->a, 64 * frame);
    struct ts_close cl;
    uint64_t deadline = rc_now_ms() + WAIT_MS;
    while (!ts_find_close(&f->t, id, &cl) && rc_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, WEFT_CLOSE_TRY_AGAIN);
    assert_false(cl.clean);
    assert_int_equal(rc_wait_eof(&f->a, RC_TIMEOUT_MS, NULL), 0);
    assert_int_equal(stats(f).closed_memory, 1);
    assert_int_equal(wait_held(0), 0);
    assert_int_equal(rc_open(&f->b, f->t.port, "/echo"), 0);
    frag(f, &f->b, WEFT_OP_BINARY, true, 1000, 16);
    expect_echo(&f->b, 1000);
}

/* Subscribers that never read, closed for the budget while a publish walks the topic: the
 * closes are reported after the publish (the subscriber array does not change under it), all
 * with 1013, and the topic is gone afterwards. */
static void test_publish_over_budget(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_connect(&f->a, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->a, f->t.port, "/sub", NULL, RC_TIMEOUT_MS), 101);
    assert_int_equal(rc_connect(&f->b, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->b, f->t.port, "/sub", NULL, RC_TIMEOUT_MS), 101);
    assert_int_equal(rc_open(&f->s, f->t.port, "/pub"), 0);
    rc_fill(f->buf, 64 * KIB, 17, false);
    /* more than the kernel's buffers take for the two of them */
    for (int i = 0; i < 160 && !ts_wait_closes(&f->t, 2, 0); i++)
        assert_int_equal(rc_send(&f->s, WEFT_OP_BINARY, f->buf, 64 * KIB), 0);
    assert_true(ts_wait_closes(&f->t, 2, WAIT_MS));
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(f->t.closes[i].code, WEFT_CLOSE_TRY_AGAIN);
        assert_false(f->t.closes[i].clean);
    }
    assert_int_equal(stats(f).closed_memory, 2);
    assert_int_equal(stats(f).topics, 0);
    assert_int_equal(wait_held(0), 0);
    /* the publisher itself was never held up */
    assert_int_equal(rc_send(&f->s, WEFT_OP_BINARY, f->buf, 100), 0);
    assert_int_equal(wait_held(0), 0);
}

/* A weft client with permessage-deflate on the server's loop: sends zsize zero bytes
 * (compressed about a thousandfold) when open, closes after the echo. Loop-thread state; the
 * results are atomics the test thread polls. */
static struct weft_client *zcl;
static size_t zsize;
static _Atomic unsigned zclose_code; /* 0 until on_close */
static _Atomic size_t zecho_len;     /* length of the echo, 0 if none */

static void z_open(struct weft_conn *c)
{
    uint8_t *m = calloc(1, zsize);
    TS_CHECK(m != NULL);
    weft_conn_send(c, m, zsize, WEFT_OP_BINARY);
    free(m);
}

static void z_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)data;
    (void)binary;
    zecho_len = len;
    weft_conn_close(c, WEFT_CLOSE_NORMAL, NULL);
}

static void z_close(struct weft_conn *c, uint16_t code, const char *reason, size_t rlen, bool clean)
{
    (void)c;
    (void)reason;
    (void)rlen;
    (void)clean;
    zclose_code = code;
}

static void z_end(struct weft_client *cl)
{
    weft_client_free(cl);
    zcl = NULL;
}

/* Starts the client (on the loop thread). */
static void z_start(struct ts *t, void *arg)
{
    (void)arg;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", (unsigned)t->port);
    struct weft_client_options o = {0};
    o.deflate.enabled = true;
    o.handlers.on_open = z_open;
    o.handlers.on_message = z_message;
    o.handlers.on_close = z_close;
    o.on_end = z_end;
    int err;
    zcl = weft_connect(t->loop, url, &o, &err);
    TS_CHECK(zcl != NULL);
}

/* Frees the client if it has not ended (on the loop thread). */
static void z_stop(struct ts *t, void *arg)
{
    (void)t;
    (void)arg;
    if (zcl) weft_client_free(zcl);
    zcl = NULL;
}

/* Nothing, on the loop thread: one more loop iteration. */
static void z_noop(struct ts *t, void *arg)
{
    (void)t;
    (void)arg;
}

/* Starts a deflate server with max_message 4 MiB and the budget, then the client sending
 * size bytes; waits for the client's on_close. peer_nct: the server imposes
 * client_no_context_takeover, so it inflates the client's messages whole with libdeflate
 * (else through the client's zlib stream). Returns the close code. */
static unsigned deflate_round(void **state, uint64_t budget, size_t size, bool peer_nct)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    f->a.fd = f->b.fd = f->s.fd = -1;
    f->t.cfg.deflate.enabled = true;
    f->t.cfg.deflate.peer_no_context_takeover = peer_nct;
    f->t.cfg.max_message = 4 * 1024 * KIB;
    f->t.setup = routes;
    weft_memory_set_budget(budget);
    assert_int_equal(ts_start(&f->t), 0);
    zsize = size;
    zclose_code = 0;
    zecho_len = 0;
    assert_int_equal(ts_call(&f->t, z_start, NULL), 0);
    uint64_t deadline = rc_now_ms() + WAIT_MS;
    while (!zclose_code && rc_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ts_call(&f->t, z_stop, NULL);
    /* A freed client is released by a timer of its loop (due at once, 8 ms resolution): let
     * the loop run a few iterations before the test frees it. */
    uint64_t settle = rc_now_ms() + 50;
    while (rc_now_ms() < settle)
        ts_call(&f->t, z_noop, NULL);
    return zclose_code;
}

/* 2 MiB of zeros, compressed to a few KiB, get through with no budget, and are refused with
 * 1013 under a 1 MiB budget; nothing stays counted either way. */
static void inflate_counted(void **state, bool peer_nct)
{
    assert_int_equal(deflate_round(state, 0, 2 * 1024 * KIB, peer_nct), WEFT_CLOSE_NORMAL);
    assert_int_equal(zecho_len, 2 * 1024 * KIB);
    assert_int_equal(wait_held(0), 0);
    teardown(state);

    assert_int_equal(deflate_round(state, 1024 * KIB, 2 * 1024 * KIB, peer_nct),
                     WEFT_CLOSE_TRY_AGAIN);
    assert_int_equal(zecho_len, 0);
    assert_int_equal(stats(*state).closed_memory, 1);
    assert_int_equal(wait_held(0), 0);
}

/* The inflated output of a compressed message beyond the 256 KiB scratch is counted, on the
 * zlib stream path (the client keeps its context). */
static void test_inflate_counted(void **state)
{
    inflate_counted(state, false);
}

/* The same on the libdeflate path (the client compresses without context takeover: the
 * message is inflated whole, the scratch grown until the output fits). */
static void test_inflate_counted_whole(void **state)
{
    inflate_counted(state, true);
}

/* Freeing the server with messages and queues held releases everything. */
static void test_server_free_releases(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->a, f->t.port, "/echo"), 0);
    assert_int_equal(rc_connect(&f->b, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->b, f->t.port, "/echo", NULL, RC_TIMEOUT_MS), 101);
    partial_frame(f, &f->a, 200000, 100000);
    assert_int_equal(wait_held(131072), 131072);
    size_t frame = weft_frame_header_size(64 * KIB, true) + 64 * KIB;
    flood(f, &f->b, 64 * frame);
    /* b's queued echoes beyond its own partial message */
    uint64_t deadline = rc_now_ms() + WAIT_MS;
    while (weft_memory_held() <= 131072 + 64 * KIB + 4 * KIB && rc_now_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(weft_memory_held() > 131072 + 64 * KIB + 4 * KIB);
    ts_stop(&f->t);
    assert_int_equal(weft_memory_held(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test_setup_teardown(test_fragments_exact, setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_partial_released_on_close, setup_none, teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_buffered, setup_50k, teardown),
        cmocka_unit_test_setup_teardown(test_largest_closed_first, setup_200k, teardown),
        cmocka_unit_test_setup_teardown(test_output_counted, setup_out, teardown),
        cmocka_unit_test_setup_teardown(test_output_over_budget, setup_out_budget, teardown),
        cmocka_unit_test_setup_teardown(test_server_free_releases, setup_out, teardown),
        cmocka_unit_test_setup_teardown(test_publish_over_budget, setup_out_budget, teardown),
        cmocka_unit_test_teardown(test_inflate_counted, teardown),
        cmocka_unit_test_teardown(test_inflate_counted_whole, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* the server writes to clients that reset */
    alarm(170);
    return cmocka_run_group_tests_name("integration.budget_lib", tests, NULL, NULL);
}
