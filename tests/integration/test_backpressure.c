/*
 * test_backpressure.c — a client that never reads while the server pushes to it.
 *
 * Routes: "/slow" subscribes to topic "flood" and is remembered as the slow connection;
 * "/flood" publishes each message it receives to "flood" and answers the sender with the
 * number of subscribers it was queued to; "/direct" sends each message straight to the slow
 * connection with weft_conn_send and answers with the send result; "/burst" sends as many
 * messages to the slow connection in one callback as the number it receives says, and
 * answers with how many were accepted; "/echo" echoes;
 * "/watched" echoes too, and its connection's buffered amount is watched.
 *
 * DROP: refused sends are counted (stats and publish results agree), the slow connection's
 * buffered amount never exceeds max_backpressure + one message, the slow reader later receives
 * exactly the messages that were accepted, intact and in order, then on_drain fires; CLOSE:
 * the slow connection is closed with 1008 and disconnected. In both, another client's echoes
 * stay prompt throughout.
 *
 * Floods that make the server produce output by themselves: a client that sends pings (which
 * are answered automatically), or messages that "/watched" echoes, and never reads. The
 * server's queue for it stays within max_backpressure + one frame however much is sent (also
 * within one loop iteration), and it stops reading the flooder meanwhile (few echoes are
 * dropped, TCP pushes back). DROP: the connection survives; reading at last, the client gets
 * every answer the server did not count as dropped (pongs to pings overtaken while over the
 * limit, echoes refused), then works normally. CLOSE: it is closed with 1008. Another client
 * is served promptly throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

#define KIB 1024u
#define MAX_BP (256u * KIB)
#define MSG (64u * KIB)
#define NFLOOD 400
/* An echo round trip slower than this while the flood runs means the slow reader is slowing
 * the others down (generous: sanitizer builds on a 2-core machine). */
#define PROMPT_MS 1000u

/* Loop-thread state, read by the test thread only through ts_call. */
static struct weft_conn *slow_conn;
static uint64_t slow_id;
static size_t max_buffered;
static unsigned drains;

static void slow_open(struct weft_conn *c)
{
    TS_CHECK(weft_subscribe(c, "flood", 5) == WEFT_OK);
    slow_conn = c;
    slow_id = weft_conn_id(c);
    ts_record_open(c);
}

static void slow_drain(struct weft_conn *c)
{
    if (c == slow_conn) drains++;
}

static void slow_close(struct weft_conn *c, uint16_t code, const char *reason, size_t rlen,
                       bool clean)
{
    if (c == slow_conn) slow_conn = NULL;
    ts_record_close(c, code, reason, rlen, clean);
}

/* The "/watched" connection (flood tests). */
static struct weft_conn *watched_conn;
static uint64_t watched_id;
static size_t watched_max;

/* Records the largest buffered amount of the watched connection seen so far. */
static void sample_watched(void)
{
    if (!watched_conn) return;
    size_t b = weft_conn_buffered_amount(watched_conn);
    if (b > watched_max) watched_max = b;
}

/* on_open of "/watched": remembers the connection. */
static void watched_open(struct weft_conn *c)
{
    watched_conn = c;
    watched_id = weft_conn_id(c);
    ts_record_open(c);
}

/* Echoes, then samples the buffered amount (within the loop iteration, before the flush). */
static void watched_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
    sample_watched();
}

/* on_close of "/watched": forgets the connection and records the close. */
static void watched_close(struct weft_conn *c, uint16_t code, const char *reason, size_t rlen,
                          bool clean)
{
    if (c == watched_conn) watched_conn = NULL;
    ts_record_close(c, code, reason, rlen, clean);
}

static const struct weft_ws_handlers watched_handlers = {
    .on_open = watched_open,
    .on_message = watched_message,
    .on_close = watched_close,
};

static void sample_buffered(void)
{
    if (!slow_conn) return;
    size_t b = weft_conn_buffered_amount(slow_conn);
    if (b > max_buffered) max_buffered = b;
}

static void flood_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    size_t n = weft_publish(weft_conn_server(c), "flood", 5, data, len,
                            binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
    sample_buffered();
    char ack[32];
    int al = snprintf(ack, sizeof ack, "%zu", n);
    weft_conn_send(c, ack, (size_t)al, WEFT_OP_TEXT);
}

static void direct_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    int r = -1;
    if (slow_conn)
        r = (int)weft_conn_send(slow_conn, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
    sample_buffered();
    char ack[32];
    int al = snprintf(ack, sizeof ack, "%d", r);
    weft_conn_send(c, ack, (size_t)al, WEFT_OP_TEXT);
}

/* Builds flood message i: 4-byte big-endian sequence number, then a pattern seeded by i. */
static void make_msg(uint8_t *m, uint32_t i);

/* Results of the "/burst" sends, for the test thread (read through ts_call). */
static int burst_res[NFLOOD];
static uint8_t *burst_buf;

/* Sends messages 0..n-1 to the slow connection within this one callback, sampling its
 * buffered amount after each, and answers with the number accepted. */
static void burst_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)binary;
    char num[16];
    TS_CHECK(len < sizeof num);
    memcpy(num, data, len);
    num[len] = '\0';
    int n = atoi(num), accepted = 0;
    TS_CHECK(n > 0 && n <= NFLOOD && slow_conn);
    for (int i = 0; i < n; i++) {
        make_msg(burst_buf, (uint32_t)i);
        burst_res[i] = (int)weft_conn_send(slow_conn, burst_buf, MSG, WEFT_OP_BINARY);
        accepted += burst_res[i] == WEFT_SEND_SENT || burst_res[i] == WEFT_SEND_QUEUED;
        sample_buffered();
    }
    char ack[32];
    int al = snprintf(ack, sizeof ack, "%d", accepted);
    weft_conn_send(c, ack, (size_t)al, WEFT_OP_TEXT);
}

static const struct weft_ws_handlers slow_handlers = {
    .on_open = slow_open,
    .on_drain = slow_drain,
    .on_close = slow_close,
};
static const struct weft_ws_handlers flood_handlers = {
    .on_open = ts_record_open,
    .on_message = flood_message,
    .on_close = ts_record_close,
};
static const struct weft_ws_handlers burst_handlers = {
    .on_open = ts_record_open,
    .on_message = burst_message,
    .on_close = ts_record_close,
};
static const struct weft_ws_handlers direct_handlers = {
    .on_open = ts_record_open,
    .on_message = direct_message,
    .on_close = ts_record_close,
};

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/slow", &slow_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/flood", &flood_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/direct", &direct_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/burst", &burst_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/watched", &watched_handlers, NULL) == WEFT_OK);
}

struct fx {
    struct ts t;
    struct rc slow, flood, echo;
    uint8_t *msg;
    int *acks;
    uint8_t *chunk, *emsg; /* flood tests: frames being written, one echo payload */
};

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    rc_close(&f->slow);
    rc_close(&f->flood);
    rc_close(&f->echo);
    ts_stop(&f->t);
    free(f->msg);
    free(f->acks);
    free(f->chunk);
    free(f->emsg);
    free(f);
    return 0;
}

static int start(void **state, enum weft_slow_policy policy)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->slow.fd = f->flood.fd = f->echo.fd = -1;
    f->t.cfg.max_backpressure = MAX_BP;
    f->t.cfg.slow_policy = policy;
    f->t.cfg.close_timeout_ms = 500;
    f->t.setup = routes;
    slow_conn = NULL;
    slow_id = 0;
    max_buffered = 0;
    drains = 0;
    watched_conn = NULL;
    watched_id = 0;
    watched_max = 0;
    *state = f;
    f->msg = malloc(MSG);
    f->acks = calloc(NFLOOD, sizeof *f->acks);
    burst_buf = f->msg; /* only the loop thread uses it in the burst test */
    if (!f->msg || !f->acks || ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static int setup_drop(void **state)
{
    return start(state, WEFT_SLOW_DROP);
}

static int setup_close(void **state)
{
    return start(state, WEFT_SLOW_CLOSE);
}

struct observed {
    size_t max_buffered;
    unsigned drains;
    bool slow_open;
    uint64_t slow_id;
};

static void observe(struct ts *t, void *arg)
{
    (void)t;
    struct observed *o = arg;
    o->max_buffered = max_buffered;
    o->drains = drains;
    o->slow_open = slow_conn != NULL;
    o->slow_id = slow_id;
}

/* Builds flood message i: 4-byte big-endian sequence number, then a pattern seeded by i. */
static void make_msg(uint8_t *m, uint32_t i)
{
    rc_fill(m, MSG, i + 1000, false);
    m[0] = (uint8_t)(i >> 24);
    m[1] = (uint8_t)(i >> 16);
    m[2] = (uint8_t)(i >> 8);
    m[3] = (uint8_t)i;
}

/* Opens the three clients: the slow one with a tiny receive buffer, reading nothing more. */
static void open_clients(struct fx *f, const char *flood_path)
{
    assert_int_equal(rc_connect(&f->slow, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->slow, f->t.port, "/slow", NULL, RC_TIMEOUT_MS), 101);
    assert_int_equal(rc_open(&f->flood, f->t.port, flood_path), 0);
    assert_int_equal(rc_open(&f->echo, f->t.port, "/echo"), 0);
}

/* Sends flood message i and returns the integer the server acknowledged it with. Every 10
 * messages, measures an echo round trip on the third client; returns the worst in *worst. */
static int flood_one(struct fx *f, uint32_t i, uint64_t *worst)
{
    make_msg(f->msg, i);
    assert_int_equal(rc_send(&f->flood, WEFT_OP_BINARY, f->msg, MSG), 0);
    assert_int_equal(rc_recv(&f->flood, RC_TIMEOUT_MS), RC_MESSAGE);
    char ack[32];
    assert_true(f->flood.last.len < sizeof ack);
    memcpy(ack, f->flood.last.data, f->flood.last.len);
    ack[f->flood.last.len] = '\0';
    if (i % 10 == 0) {
        char m[32];
        int ml = snprintf(m, sizeof m, "echo-%u", (unsigned)i);
        uint64_t t0 = rc_now_ms();
        assert_int_equal(rc_send(&f->echo, WEFT_OP_TEXT, m, (size_t)ml), 0);
        assert_int_equal(rc_recv(&f->echo, (int)PROMPT_MS * 3), RC_MESSAGE);
        uint64_t rtt = rc_now_ms() - t0;
        assert_int_equal(f->echo.last.len, (size_t)ml);
        assert_memory_equal(f->echo.last.data, m, (size_t)ml);
        if (rtt > *worst) *worst = rtt;
    }
    return atoi(ack);
}

/* The slow reader now reads: it must receive exactly the messages whose ack says "accepted",
 * whole and in order, and nothing else. */
static void drain_slow(struct fx *f, int accepted_value)
{
    uint8_t *want = malloc(MSG);
    assert_non_null(want);
    unsigned got = 0, expected = 0;
    for (uint32_t i = 0; i < NFLOOD; i++) {
        if (f->acks[i] != accepted_value) continue;
        expected++;
        enum rc_event e = rc_recv(&f->slow, RC_TIMEOUT_MS);
        if (e != RC_MESSAGE) break;
        make_msg(want, i);
        if (f->slow.last.opcode != WEFT_OP_BINARY || f->slow.last.len != MSG ||
            memcmp(f->slow.last.data, want, MSG) != 0)
            break;
        got++;
    }
    free(want);
    assert_int_equal(got, expected);
    assert_int_equal(rc_recv(&f->slow, 300), RC_TIMEOUT);
}

/* DROP via publish: drops happen, are counted exactly, the slow connection's queue stays
 * bounded, the echo client stays prompt, the slow connection survives and later receives
 * exactly the accepted messages; on_drain fires once its queue empties. */
static void test_drop_publish(void **state)
{
    struct fx *f = *state;
    open_clients(f, "/flood");
    uint64_t worst = 0;
    unsigned dropped = 0;
    for (uint32_t i = 0; i < NFLOOD; i++) {
        f->acks[i] = flood_one(f, i, &worst);
        assert_true(f->acks[i] == 0 || f->acks[i] == 1);
        if (f->acks[i] == 0) dropped++;
    }
    assert_true(dropped > 0);
    assert_true(dropped < NFLOOD);
    assert_true(worst < PROMPT_MS);

    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.dropped_backpressure, dropped);
    assert_int_equal(st.closed_slow, 0);
    assert_int_equal(st.connections, 3);
    assert_int_equal(st.publishes, NFLOOD);
    assert_int_equal(st.deliveries, NFLOOD - dropped);
    struct observed o;
    ts_call(&f->t, observe, &o);
    assert_true(o.slow_open);
    assert_true(o.max_buffered > 0);
    assert_true(o.max_buffered <= MAX_BP + MSG + WEFT_FRAME_HEADER_MAX);

    drain_slow(f, 1);
    ts_call(&f->t, observe, &o);
    assert_true(o.drains >= 1);
    /* The drained connection works normally: the flood reaches it again. */
    make_msg(f->msg, 7);
    assert_int_equal(rc_send(&f->flood, WEFT_OP_BINARY, f->msg, MSG), 0);
    assert_int_equal(rc_recv(&f->flood, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(f->flood.last.data, "1", 1);
    assert_int_equal(rc_recv(&f->slow, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->slow.last.len, MSG);
    assert_memory_equal(f->slow.last.data, f->msg, MSG);
}

/* DROP via weft_conn_send: results go SENT ... QUEUED ... DROPPED (never DROPPED before
 * QUEUED), every DROPPED is counted, and the slow reader gets exactly the non-dropped ones. */
static void test_drop_direct(void **state)
{
    struct fx *f = *state;
    open_clients(f, "/direct");
    uint64_t worst = 0;
    unsigned dropped = 0, queued = 0;
    int first_queued = -1, first_dropped = -1;
    for (uint32_t i = 0; i < NFLOOD; i++) {
        int r = flood_one(f, i, &worst);
        assert_true(r == WEFT_SEND_SENT || r == WEFT_SEND_QUEUED || r == WEFT_SEND_DROPPED);
        f->acks[i] = r == WEFT_SEND_DROPPED ? 0 : 1;
        if (r == WEFT_SEND_QUEUED && first_queued < 0) first_queued = (int)i;
        if (r == WEFT_SEND_DROPPED && first_dropped < 0) first_dropped = (int)i;
        dropped += r == WEFT_SEND_DROPPED;
        queued += r == WEFT_SEND_QUEUED;
    }
    assert_true(queued > 0);
    assert_true(dropped > 0);
    assert_true(first_queued >= 0 && first_queued < first_dropped);
    assert_true(worst < PROMPT_MS);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.dropped_backpressure, dropped);
    struct observed o;
    ts_call(&f->t, observe, &o);
    assert_true(o.max_buffered <= MAX_BP + MSG + WEFT_FRAME_HEADER_MAX);
    drain_slow(f, 1);
    ts_call(&f->t, observe, &o);
    assert_true(o.drains >= 1);
}

/* Loop thread: copies the results of the last burst. */
static void read_burst(struct ts *t, void *arg)
{
    (void)t;
    memcpy(arg, burst_res, sizeof burst_res);
}

/* DROP, many sends within one callback (one loop iteration): the limit holds there too (old
 * code: it applied only once the kernel had refused data, which is only known after the
 * iteration's flush, so all of them were queued: 200 x 64 KiB against a 256 KiB limit). The
 * kernel still takes what it can first (no drops while the peer's buffers have room), results
 * go SENT ... QUEUED ... DROPPED, and the slow reader receives exactly the accepted ones. */
static void test_burst_drop(void **state)
{
    struct fx *f = *state;
    const int n = 200;
    open_clients(f, "/burst");
    assert_int_equal(rc_send(&f->flood, WEFT_OP_TEXT, "200", 3), 0);
    assert_int_equal(rc_recv(&f->flood, RC_TIMEOUT_MS), RC_MESSAGE);
    char ack[32];
    assert_true(f->flood.last.len < sizeof ack);
    memcpy(ack, f->flood.last.data, f->flood.last.len);
    ack[f->flood.last.len] = '\0';
    int accepted = atoi(ack);
    int res[NFLOOD];
    assert_int_equal(ts_call(&f->t, read_burst, res), 0);
    int last = WEFT_SEND_SENT, dropped = 0;
    for (int i = 0; i < n; i++) {
        assert_true(res[i] == WEFT_SEND_SENT || res[i] == WEFT_SEND_QUEUED ||
                    res[i] == WEFT_SEND_DROPPED);
        if (res[i] == WEFT_SEND_SENT) assert_int_equal(last, WEFT_SEND_SENT);
        if (res[i] != WEFT_SEND_DROPPED) assert_int_not_equal(last, WEFT_SEND_DROPPED);
        last = res[i];
        f->acks[i] = res[i] == WEFT_SEND_DROPPED ? 0 : 1;
        dropped += !f->acks[i];
    }
    assert_int_equal(accepted, n - dropped);
    assert_true(dropped > 0);
    printf("burst: %d of %d accepted\n", accepted, n);
    assert_true(accepted >= (int)(MAX_BP / MSG)); /* the limit itself holds that many */
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.dropped_backpressure, (uint64_t)dropped);
    struct observed o;
    ts_call(&f->t, observe, &o);
    assert_true(o.max_buffered > 0);
    assert_true(o.max_buffered <= MAX_BP + MSG + WEFT_FRAME_HEADER_MAX);
    for (int i = n; i < NFLOOD; i++)
        f->acks[i] = -1;
    drain_slow(f, 1);
    ts_call(&f->t, observe, &o);
    assert_true(o.drains >= 1);
}

/* CLOSE: once over the limit the slow connection is closed with 1008: it leaves the topic
 * (publish results fall to 0), closed_slow counts it, on_close reports 1008, and the slow
 * client, reading at last, finds at most a close 1008 after its data, then the end of the
 * connection. The echo client stays prompt throughout and afterwards. */
static void test_close_policy(void **state)
{
    struct fx *f = *state;
    open_clients(f, "/flood");
    uint64_t worst = 0;
    int first_zero = -1;
    for (uint32_t i = 0; i < NFLOOD; i++) {
        f->acks[i] = flood_one(f, i, &worst);
        assert_true(f->acks[i] == 0 || f->acks[i] == 1);
        if (f->acks[i] == 0 && first_zero < 0) first_zero = (int)i;
        if (first_zero >= 0) assert_int_equal(f->acks[i], 0); /* never comes back */
    }
    assert_true(first_zero > 0);
    assert_true(worst < PROMPT_MS);

    struct observed o;
    ts_call(&f->t, observe, &o);
    assert_true(o.max_buffered <= MAX_BP + MSG + WEFT_FRAME_HEADER_MAX);
    assert_true(ts_wait_closes(&f->t, 1, 3000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, o.slow_id, &cl));
    assert_int_equal(cl.code, 1008);
    assert_false(cl.clean);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.closed_slow, 1);
    assert_int_equal(st.connections, 2);
    assert_int_equal(st.dropped_backpressure, 0);

    /* The slow client reads what reached it: data, maybe a close 1008, then EOF/reset. */
    unsigned data = 0;
    int close_code = -1;
    uint64_t deadline = rc_now_ms() + 10000;
    for (;;) {
        assert_true(rc_now_ms() < deadline);
        enum rc_event e = rc_recv(&f->slow, RC_TIMEOUT_MS);
        if (e == RC_MESSAGE) {
            assert_int_equal(close_code, -1);
            data++;
            continue;
        }
        if (e == RC_CLOSE) {
            assert_int_equal(close_code, -1);
            close_code = f->slow.last.close_code;
            continue;
        }
        assert_true(e == RC_EOF || e == RC_ERR_IO);
        break;
    }
    assert_true(data <= (unsigned)first_zero);
    if (close_code != -1) assert_int_equal(close_code, 1008);

    assert_int_equal(rc_send(&f->echo, WEFT_OP_TEXT, "after", 5), 0);
    assert_int_equal(rc_recv(&f->echo, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(f->echo.last.data, "after", 5);
}

/* ------------------------------------------------------------------ floods without reading */

#define FLOOD_BYTES (32u * 1024 * KIB) /* far more than loopback's socket buffers hold */
#define FLOOD_CHUNK (1024u * KIB)      /* more than one server read: bursts within an iteration */
#define STALL_MS 1000                  /* no byte accepted for this long: the server stopped */
#define PING_LEN 125
#define ECHO_MSG (16u * KIB)
/* Largest frame the flooder can cause besides: a pong, or an echo of ECHO_MSG bytes. */
#define PONG_FRAME (2u + PING_LEN)
#define ECHO_FRAME (ECHO_MSG + WEFT_FRAME_HEADER_MAX)

/* What one flood did, and what the server made of it. */
struct flood_result {
    size_t written;  /* bytes the kernel accepted from the flooder */
    size_t frames;   /* complete frames among them */
    size_t cut;      /* where in f->chunk the writing stopped (the rest of a cut frame) */
    size_t max_seen; /* the flooder connection's largest buffered amount */
    uint64_t worst;  /* slowest echo round trip of the other client, ms */
    struct weft_server_stats st;
};

/* Loop thread: samples the watched connection once more and returns the largest amount. */
static void read_watched(struct ts *t, void *arg)
{
    (void)t;
    sample_watched();
    *(size_t *)arg = watched_max;
}

/* Loop thread: returns the watched connection's id. */
static void read_watched_id(struct ts *t, void *arg)
{
    (void)t;
    *(uint64_t *)arg = watched_id;
}

/* Writes buf[0..len) without reading anything, until all is written or the kernel accepts no
 * byte for STALL_MS (or the connection fails). Returns the bytes written. */
static size_t write_until_stall(struct rc *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break; /* reset: closed */
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, STALL_MS) <= 0) break;
    }
    return off;
}

/* The payload of echo flood message i: its 4-byte sequence number, then a pattern. */
static void make_echo(uint8_t *m, uint32_t i)
{
    rc_fill(m, ECHO_MSG, i + 7, false);
    m[0] = (uint8_t)(i >> 24);
    m[1] = (uint8_t)(i >> 16);
    m[2] = (uint8_t)(i >> 8);
    m[3] = (uint8_t)i;
}

/* Size of one flood frame as the client sends it (masked). */
static size_t flood_frame(bool pings)
{
    size_t len = pings ? PING_LEN : ECHO_MSG;
    return weft_frame_header_size(len, true) + len;
}

/* The payload of every flood ping (printable, PING_LEN bytes). */
static const uint8_t *ping_payload(void)
{
    static uint8_t p[PING_LEN];
    if (!p[0]) rc_fill(p, PING_LEN, 99, true);
    return p;
}

/* Opens the flooder on "/watched" (tiny receive buffer, never reads) and the echo client, then
 * floods pings (pings = true) or messages to be echoed, up to FLOOD_BYTES or until the server
 * stops reading, sampling the flooder's buffered amount and the echo client's round trip
 * after every chunk. */
static void flood(struct fx *f, bool pings, struct flood_result *out)
{
    memset(out, 0, sizeof *out);
    assert_int_equal(rc_connect(&f->slow, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->slow, f->t.port, "/watched", NULL, RC_TIMEOUT_MS), 101);
    assert_int_equal(rc_open(&f->echo, f->t.port, "/echo"), 0);
    size_t frame = flood_frame(pings);
    size_t per_chunk = FLOOD_CHUNK / frame + 1;
    uint8_t *chunk = f->chunk = malloc(per_chunk * frame), *m = f->emsg = malloc(ECHO_MSG);
    assert_non_null(chunk);
    assert_non_null(m);
    uint32_t seq = 0;
    while (out->written < FLOOD_BYTES) {
        size_t n = 0;
        for (size_t k = 0; k < per_chunk; k++) {
            long l;
            if (pings) {
                l = weft_frame_encode(chunk + n, frame, WEFT_ROLE_CLIENT, &f->slow.rnd,
                                      WEFT_OP_PING, true, 0, ping_payload(), PING_LEN);
            } else {
                make_echo(m, seq++);
                l = weft_frame_encode(chunk + n, frame, WEFT_ROLE_CLIENT, &f->slow.rnd,
                                      WEFT_OP_BINARY, true, 0, m, ECHO_MSG);
            }
            assert_int_equal(l, (long)frame);
            n += frame;
        }
        size_t w = write_until_stall(&f->slow, chunk, n);
        out->written += w;
        out->cut = w;
        size_t seen;
        assert_int_equal(ts_call(&f->t, read_watched, &seen), 0);
        uint64_t t0 = rc_now_ms();
        assert_int_equal(rc_send(&f->echo, WEFT_OP_TEXT, "still there?", 12), 0);
        assert_int_equal(rc_recv(&f->echo, (int)PROMPT_MS * 3), RC_MESSAGE);
        assert_int_equal(f->echo.last.len, 12);
        uint64_t rtt = rc_now_ms() - t0;
        if (rtt > out->worst) out->worst = rtt;
        if (w < n) break; /* the server stopped reading (or dropped the connection) */
    }
    out->frames = out->written / frame;
    assert_int_equal(ts_call(&f->t, read_watched, &out->max_seen), 0);
    ts_stats(&f->t, &out->st);
    printf("flood of %s: %zu bytes (%zu frames) written, max buffered %zu, dropped %llu, "
           "closed_slow %llu, worst echo %llu ms\n",
           pings ? "pings" : "messages", out->written, out->frames, out->max_seen,
           (unsigned long long)out->st.dropped_backpressure,
           (unsigned long long)out->st.closed_slow, (unsigned long long)out->worst);
}

/* DROP: the flooder now reads. Every complete frame it sent was answered or counted as
 * dropped: it receives exactly frames - dropped answers, intact (echoes in order), then
 * nothing more; then the connection works normally. */
static void drain_flooder(struct fx *f, bool pings, const struct flood_result *r)
{
    uint8_t *want = f->emsg; /* the flood's buffer, freed by teardown */
    size_t got = 0;
    long last_seq = -1;
    struct weft_server_stats st = r->st;
    uint64_t deadline = rc_now_ms() + 30000;
    while (got + st.dropped_backpressure < r->frames) {
        if (rc_now_ms() >= deadline)
            fail_msg("%zu answers + %llu dropped of %zu frames", got,
                     (unsigned long long)st.dropped_backpressure, r->frames);
        enum rc_event e = rc_recv(&f->slow, 200);
        if (e == RC_TIMEOUT) {
            ts_stats(&f->t, &st);
            continue;
        }
        if (pings) {
            assert_int_equal(e, RC_PONG);
            assert_int_equal(f->slow.last.len, PING_LEN);
            assert_memory_equal(f->slow.last.data, ping_payload(), PING_LEN);
        } else {
            assert_int_equal(e, RC_MESSAGE);
            assert_int_equal(f->slow.last.len, ECHO_MSG);
            const uint8_t *d = f->slow.last.data;
            long seq =
                (long)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
            assert_true(seq > last_seq && seq < (long)r->frames);
            make_echo(want, (uint32_t)seq);
            assert_memory_equal(d, want, ECHO_MSG);
            last_seq = seq;
        }
        got++;
    }
    assert_int_equal(got + st.dropped_backpressure, r->frames);
    assert_int_equal(rc_recv(&f->slow, 300), RC_TIMEOUT);
    assert_int_equal(st.closed_slow, 0);
    /* Still open and served. (The flood may have stopped inside a frame: complete it.) */
    size_t frame = flood_frame(pings);
    size_t partial = r->written % frame;
    if (partial) {
        assert_int_equal(rc_write(&f->slow, f->chunk + r->cut, frame - partial, RC_TIMEOUT_MS), 0);
        enum rc_event e = rc_recv(&f->slow, RC_TIMEOUT_MS); /* its answer, whatever it is */
        assert_true(e == (pings ? RC_PONG : RC_MESSAGE));
    }
    assert_int_equal(rc_send_frame(&f->slow, WEFT_OP_PING, true, 0, "after", 5), 0);
    assert_int_equal(rc_recv(&f->slow, RC_TIMEOUT_MS), RC_PONG);
    assert_int_equal(f->slow.last.len, 5);
    assert_memory_equal(f->slow.last.data, "after", 5);
    assert_int_equal(rc_send(&f->slow, WEFT_OP_TEXT, "after", 5), 0);
    assert_int_equal(rc_recv(&f->slow, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(f->slow.last.data, "after", 5);
}

/* DROP, pings: the pongs never take the queue past the limit (old code: every ping answered
 * at once, so the queue grew by a pong per ping: tens of MiB), reading stops, the other client
 * is served, pongs to pings overtaken while over the limit are counted as dropped, and the
 * flooder gets all the others once it reads. */
static void test_ping_flood_drop(void **state)
{
    struct fx *f = *state;
    struct flood_result r;
    flood(f, true, &r);
    assert_true(r.max_seen > 0);
    assert_true(r.max_seen <= MAX_BP + PONG_FRAME);
    assert_true(r.worst < PROMPT_MS);
    assert_true(r.st.dropped_backpressure > 0);
    assert_int_equal(r.st.closed_slow, 0);
    assert_int_equal(r.st.connections, 2);
    drain_flooder(f, true, &r);
}

/* DROP, messages echoed: the queue stays within the limit + one echo, even within one loop
 * iteration (old code: only checked once the kernel had refused data, so a read's worth of
 * echoes went past it), and reading the flooder stops while it is over: only the echoes of
 * about one read are dropped, not those of everything sent (old code: read on, and dropped
 * nearly all). */
static void test_echo_flood_drop(void **state)
{
    struct fx *f = *state;
    struct flood_result r;
    flood(f, false, &r);
    assert_true(r.max_seen > 0);
    assert_true(r.max_seen <= MAX_BP + ECHO_FRAME);
    assert_true(r.worst < PROMPT_MS);
    assert_true(r.st.dropped_backpressure * ECHO_MSG <= 4u * 1024 * KIB);
    assert_int_equal(r.st.closed_slow, 0);
    drain_flooder(f, false, &r);
}

/* CLOSE: a flooder (pings or echoed messages) is closed with 1008 once its answers would go
 * past the limit, and its connection ends; the queue stayed bounded and the other client was
 * served throughout and afterwards. */
static void close_flood(struct fx *f, bool pings)
{
    struct flood_result r;
    flood(f, pings, &r);
    assert_true(r.max_seen <= MAX_BP + (pings ? PONG_FRAME : ECHO_FRAME));
    assert_true(r.worst < PROMPT_MS);
    assert_true(ts_wait_closes(&f->t, 1, 5000));
    struct ts_close cl;
    uint64_t id;
    assert_int_equal(ts_call(&f->t, read_watched_id, &id), 0);
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1008);
    assert_false(cl.clean);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.closed_slow, 1);
    assert_int_equal(st.dropped_backpressure, 0);
    assert_int_equal(st.connections, 1);
    assert_int_equal(rc_wait_eof(&f->slow, 10000, NULL), 0);
    assert_int_equal(rc_send(&f->echo, WEFT_OP_TEXT, "after", 5), 0);
    assert_int_equal(rc_recv(&f->echo, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(f->echo.last.data, "after", 5);
}

/* CLOSE, pings. */
static void test_ping_flood_close(void **state)
{
    close_flood(*state, true);
}

/* CLOSE, messages echoed. */
static void test_echo_flood_close(void **state)
{
    close_flood(*state, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop_publish, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_drop_direct, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_close_policy, setup_close, teardown),
        cmocka_unit_test_setup_teardown(test_burst_drop, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_ping_flood_drop, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_echo_flood_drop, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_ping_flood_close, setup_close, teardown),
        cmocka_unit_test_setup_teardown(test_echo_flood_close, setup_close, teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.backpressure", tests, NULL, NULL);
}
