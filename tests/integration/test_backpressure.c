/*
 * test_backpressure.c — a client that never reads while the server pushes to it.
 *
 * Routes: "/slow" subscribes to topic "flood" and is remembered as the slow connection;
 * "/flood" publishes each message it receives to "flood" and answers the sender with the
 * number of subscribers it was queued to; "/direct" sends each message straight to the slow
 * connection with weft_conn_send and answers with the send result; "/echo" echoes.
 *
 * DROP: refused sends are counted (stats and publish results agree), the slow connection's
 * buffered amount never exceeds max_backpressure + one message, the slow reader later receives
 * exactly the messages that were accepted, intact and in order, then on_drain fires; CLOSE:
 * the slow connection is closed with 1008 and disconnected. In both, another client's echoes
 * stay prompt throughout.
 */
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
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
}

struct fx {
    struct ts t;
    struct rc slow, flood, echo;
    uint8_t *msg;
    int *acks;
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
    *state = f;
    f->msg = malloc(MSG);
    f->acks = calloc(NFLOOD, sizeof *f->acks);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop_publish, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_drop_direct, setup_drop, teardown),
        cmocka_unit_test_setup_teardown(test_close_policy, setup_close, teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.backpressure", tests, NULL, NULL);
}
