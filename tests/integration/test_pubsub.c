/*
 * test_pubsub.c — pub/sub through the public API: a route "/room/<name>" whose on_upgrade
 * picks the topic (or rejects unknown rooms), whose on_open subscribes and whose on_message
 * publishes to the room excluding the sender. 100 raw clients in one room: each receives every
 * other member's messages exactly once, in each sender's order, and never its own. Rooms are
 * isolated; subscriptions end with unsubscribe and on close.
 */
#include <poll.h>
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

#define NCLIENTS 100
#define NMSGS 5 /* messages each client sends */

static const char *const rooms[] = {"r", "a", "b"};

/* Publish results seen by on_message (loop thread; read through ts_call). */
static size_t pub_min = SIZE_MAX, pub_max;
static unsigned pub_calls;

static void on_upgrade(struct weft_request *req, void *route_user)
{
    (void)route_user;
    size_t len;
    const char *path = weft_request_path(req, &len);
    TS_CHECK(path && len >= 6 && memcmp(path, "/room/", 6) == 0);
    for (size_t i = 0; i < sizeof rooms / sizeof rooms[0]; i++) {
        if (len - 6 == strlen(rooms[i]) && memcmp(path + 6, rooms[i], len - 6) == 0) {
            weft_request_accept(req, NULL, (void *)rooms[i], NULL);
            return;
        }
    }
    weft_request_reject(req, 404, NULL, "no such room\n");
}

static void on_open(struct weft_conn *c)
{
    const char *topic = weft_conn_user(c);
    TS_CHECK(topic != NULL);
    TS_CHECK(weft_subscribe(c, topic, strlen(topic)) == WEFT_OK);
    ts_record_open(c);
}

static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    const char *topic = weft_conn_user(c);
    if (len == 6 && memcmp(data, "!leave", 6) == 0) {
        bool was = weft_unsubscribe(c, topic, strlen(topic));
        weft_conn_send(c, was ? "left" : "not subscribed", was ? 4 : 14, WEFT_OP_TEXT);
        return;
    }
    size_t n = weft_publish(weft_conn_server(c), topic, strlen(topic), data, len,
                            binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
    if (n < pub_min) pub_min = n;
    if (n > pub_max) pub_max = n;
    pub_calls++;
}

static const struct weft_ws_handlers room_handlers = {
    .on_upgrade = on_upgrade,
    .on_open = on_open,
    .on_message = on_message,
    .on_close = ts_record_close,
};

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/room/*", &room_handlers, NULL) == WEFT_OK);
}

struct fx {
    struct ts t;
    struct rc c[NCLIENTS];
};

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < NCLIENTS; i++)
        rc_close(&f->c[i]);
    ts_stop(&f->t);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < NCLIENTS; i++)
        f->c[i].fd = -1;
    f->t.setup = routes;
    pub_min = SIZE_MAX;
    pub_max = 0;
    pub_calls = 0;
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

struct topic_query {
    const char *topic;
    size_t count;
};

static void query_topic(struct ts *t, void *arg)
{
    struct topic_query *q = arg;
    q->count = weft_topic_count(t->server, q->topic, strlen(q->topic));
}

static size_t topic_count(struct fx *f, const char *topic)
{
    struct topic_query q = {topic, 0};
    ts_call(&f->t, query_topic, &q);
    return q.count;
}

struct pub_seen {
    size_t min, max;
    unsigned calls;
};

static void query_pub(struct ts *t, void *arg)
{
    (void)t;
    struct pub_seen *p = arg;
    p->min = pub_min;
    p->max = pub_max;
    p->calls = pub_calls;
}

/* 100 clients in one room; every one of them sends 5 messages "sender:seq", interleaved with
 * the others'. Every member receives each other member's 5 messages exactly once and in order
 * (the full 100 x 99 matrix), and none of its own; nothing more arrives afterwards. Server
 * counters agree. */
static void test_room_100(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCLIENTS; i++)
        assert_int_equal(rc_open(&f->c[i], f->t.port, "/room/r"), 0);
    assert_int_equal(topic_count(f, "r"), NCLIENTS);

    /* Round by round: every client sends its seq-th message. */
    for (int seq = 0; seq < NMSGS; seq++) {
        for (int k = 0; k < NCLIENTS; k++) {
            char m[32];
            int ml = snprintf(m, sizeof m, "%d:%d", k, seq);
            assert_int_equal(rc_send(&f->c[k], WEFT_OP_TEXT, m, (size_t)ml), 0);
        }
    }

    static int next[NCLIENTS][NCLIENTS]; /* next[receiver][sender] = next expected seq */
    memset(next, 0, sizeof next);
    const unsigned expected = NCLIENTS * NMSGS * (NCLIENTS - 1);
    unsigned got = 0;
    struct pollfd pfd[NCLIENTS];
    uint64_t deadline = rc_now_ms() + 20000;
    bool settle = false; /* after everything arrived: watch 300 ms for extras */
    while (rc_now_ms() < deadline) {
        for (int i = 0; i < NCLIENTS; i++)
            pfd[i] = (struct pollfd){.fd = f->c[i].fd, .events = POLLIN};
        int r = poll(pfd, NCLIENTS, settle ? 300 : 1000);
        assert_true(r >= 0);
        if (r == 0 && settle) break;
        for (int i = 0; i < NCLIENTS; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            long n = rc_read_once(&f->c[i]);
            assert_true(n > 0 || n == -1); /* no EOF, no error */
            enum rc_event e;
            while ((e = rc_recv_buffered(&f->c[i])) == RC_MESSAGE) {
                int from = -1, seq = -1;
                char m[32];
                assert_true(f->c[i].last.len < sizeof m);
                assert_int_equal(f->c[i].last.opcode, WEFT_OP_TEXT);
                memcpy(m, f->c[i].last.data, f->c[i].last.len);
                m[f->c[i].last.len] = '\0';
                assert_int_equal(sscanf(m, "%d:%d", &from, &seq), 2);
                char back[32]; /* exactly the text that was sent, nothing appended */
                snprintf(back, sizeof back, "%d:%d", from, seq);
                assert_string_equal(m, back);
                assert_true(from >= 0 && from < NCLIENTS);
                assert_int_not_equal(from, i);        /* never one's own message */
                assert_int_equal(seq, next[i][from]); /* exactly once, in order */
                next[i][from]++;
                got++;
            }
            assert_int_equal(e, RC_TIMEOUT); /* nothing but messages */
        }
        if (got == expected) settle = true;
    }
    assert_int_equal(got, expected);
    for (int i = 0; i < NCLIENTS; i++)
        for (int from = 0; from < NCLIENTS; from++)
            assert_int_equal(next[i][from], from == i ? 0 : NMSGS);

    struct pub_seen p;
    ts_call(&f->t, query_pub, &p);
    assert_int_equal(p.calls, NCLIENTS * NMSGS);
    assert_int_equal(p.min, NCLIENTS - 1);
    assert_int_equal(p.max, NCLIENTS - 1);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.publishes, NCLIENTS * NMSGS);
    assert_int_equal(st.deliveries, expected);
    assert_int_equal(st.topics, 1);
    assert_int_equal(st.connections, NCLIENTS);
}

/* Expects that client c receives nothing within ms. */
static void assert_silent(struct rc *c, int ms)
{
    assert_int_equal(rc_recv(c, ms), RC_TIMEOUT);
}

/* Rooms a and b: a message in one reaches the other members of that room only, text and
 * binary kept; unknown rooms are rejected by on_upgrade with 404; unsubscribe and close end
 * subscriptions. */
static void test_rooms_isolated(void **state)
{
    struct fx *f = *state;
    struct rc *a = &f->c[0], *b = &f->c[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rc_open(&a[i], f->t.port, "/room/a"), 0);
        assert_int_equal(rc_open(&b[i], f->t.port, "/room/b"), 0);
    }
    assert_int_equal(topic_count(f, "a"), 3);
    assert_int_equal(topic_count(f, "b"), 3);

    assert_int_equal(rc_send(&a[0], WEFT_OP_TEXT, "hello a", 7), 0);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(rc_recv(&a[i], RC_TIMEOUT_MS), RC_MESSAGE);
        assert_int_equal(a[i].last.opcode, WEFT_OP_TEXT);
        assert_int_equal(a[i].last.len, 7);
        assert_memory_equal(a[i].last.data, "hello a", 7);
    }
    uint8_t bin[300];
    rc_fill(bin, sizeof bin, 42, false);
    assert_int_equal(rc_send(&b[2], WEFT_OP_BINARY, bin, sizeof bin), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rc_recv(&b[i], RC_TIMEOUT_MS), RC_MESSAGE);
        assert_int_equal(b[i].last.opcode, WEFT_OP_BINARY);
        assert_int_equal(b[i].last.len, sizeof bin);
        assert_memory_equal(b[i].last.data, bin, sizeof bin);
    }
    /* Nobody else got anything. */
    assert_silent(&a[0], 200);
    for (int i = 0; i < 3; i++)
        assert_silent(&b[i], 50);
    for (int i = 1; i < 3; i++)
        assert_silent(&a[i], 50);

    /* Unknown room: on_upgrade rejects. */
    struct rc_http r;
    assert_int_equal(rc_connect(&f->c[6], f->t.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(&f->c[6], f->t.port, "/room/zzz", &r, RC_TIMEOUT_MS), 404);
    assert_string_equal(r.body, "no such room\n");

    /* a[1] leaves: it gets no more room messages; a second leave reports not subscribed. */
    assert_int_equal(rc_send(&a[1], WEFT_OP_TEXT, "!leave", 6), 0);
    assert_int_equal(rc_recv(&a[1], RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(a[1].last.data, "left", 4);
    assert_int_equal(topic_count(f, "a"), 2);
    assert_int_equal(rc_send(&a[1], WEFT_OP_TEXT, "!leave", 6), 0);
    assert_int_equal(rc_recv(&a[1], RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(a[1].last.len, 14);
    assert_int_equal(rc_send(&a[0], WEFT_OP_TEXT, "second", 6), 0);
    assert_int_equal(rc_recv(&a[2], RC_TIMEOUT_MS), RC_MESSAGE);
    assert_memory_equal(a[2].last.data, "second", 6);
    assert_silent(&a[1], 200);

    /* a[2] closes: its subscription ends with the connection. */
    assert_int_equal(rc_send_close(&a[2], 1000, NULL), 0);
    assert_int_equal(rc_recv(&a[2], RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(rc_wait_eof(&a[2], 2000, NULL), 0);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    assert_int_equal(topic_count(f, "a"), 1);
    assert_int_equal(topic_count(f, "b"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_room_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rooms_isolated, setup, teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.pubsub", tests, NULL, NULL);
}
