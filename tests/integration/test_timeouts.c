/*
 * test_timeouts.c — the server's timers seen from a raw client: the idle timeout (close 1001,
 * then TCP EOF; reset by traffic; the close timeout when the peer never answers) and the
 * handshake timeout (half a head, a head dripped byte by byte, no bytes at all), and that a
 * completed handshake is not cut by the handshake timer.
 */
#include <errno.h>
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

#define IDLE_MS 400u
#define HANDSHAKE_MS 600u
#define CLOSE_MS 1000u
/* Slack for the timer wheel's resolution (about 8 ms) and scheduling on a busy machine. */
#define EARLY_MS 50u
#define LATE_MS 2000u

struct fx {
    struct ts t;
    struct rc c[2];
};

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < 2; i++)
        rc_close(&f->c[i]);
    ts_stop(&f->t);
    free(f);
    return 0;
}

static int start(void **state, uint32_t idle_ms, uint32_t handshake_ms)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < 2; i++)
        f->c[i].fd = -1;
    f->t.cfg.idle_timeout_ms = idle_ms;
    f->t.cfg.handshake_timeout_ms = handshake_ms;
    f->t.cfg.close_timeout_ms = CLOSE_MS;
    f->t.setup = routes;
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static int setup_timeouts(void **state)
{
    return start(state, IDLE_MS, HANDSHAKE_MS);
}

static int setup_keepalive(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < 2; i++)
        f->c[i].fd = -1;
    f->t.cfg.ping_interval_ms = 300;
    f->t.cfg.pong_timeout_ms = 400;
    f->t.cfg.close_timeout_ms = CLOSE_MS;
    f->t.setup = routes;
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static int setup_no_idle(void **state)
{
    return start(state, 0, 300);
}

/* Reads until EOF or reset (returns 0) or timeout (-1), keeping up to cap-1 bytes in out. */
static int read_to_eof(struct rc *c, int timeout_ms, char *out, size_t cap, size_t *len)
{
    *len = 0;
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        long n = rc_read_once(c);
        if (n > 0) {
            size_t avail = c->in_len - c->in_off;
            size_t k = avail < cap - 1 - *len ? avail : cap - 1 - *len;
            memcpy(out + *len, c->in + c->in_off, k);
            *len += k;
            c->in_off = c->in_len;
            continue;
        }
        if (n == 0 || (n == -2 && errno == ECONNRESET)) break;
        if (n == -2) return -1;
        uint64_t now = rc_now_ms();
        if (now >= deadline) return -1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) return -1;
    }
    out[*len] = '\0';
    return 0;
}

/* Asserts that whatever the server sent before closing a timed-out handshake is nothing or
 * an HTTP 408 response. */
static void assert_nothing_or_408(const char *buf, size_t len)
{
    if (len == 0) return;
    assert_true(len >= 12);
    assert_memory_equal(buf, "HTTP/1.1 408", 12);
}

/* An open connection with no traffic gets close 1001 after about the idle timeout; after the
 * client answers, the server closes TCP; on_close reports a clean 1001. */
static void test_idle_timeout(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id = ts_last_open(&f->t);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(rc_recv(c, IDLE_MS + LATE_MS), RC_CLOSE);
    uint64_t el = rc_now_ms() - t0;
    assert_int_equal(c->last.close_code, 1001);
    assert_true(el + EARLY_MS >= IDLE_MS);
    assert_true(el <= IDLE_MS + LATE_MS);
    assert_int_equal(rc_send_close(c, 1001, NULL), 0);
    size_t extra = 1;
    assert_int_equal(rc_wait_eof(c, 1000, &extra), 0);
    assert_int_equal(extra, 0);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1001);
    assert_true(cl.clean);
}

/* A peer that never answers the idle close is dropped after the close timeout: TCP EOF about
 * CLOSE_MS after the close frame, and on_close reports not clean, with the code we sent. */
static void test_idle_no_answer_close_timeout(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id = ts_last_open(&f->t);
    assert_int_equal(rc_recv(c, IDLE_MS + LATE_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, 1001);
    uint64_t t0 = rc_now_ms();
    size_t extra = 1;
    assert_int_equal(rc_wait_eof(c, CLOSE_MS + LATE_MS, &extra), 0);
    uint64_t el = rc_now_ms() - t0;
    assert_int_equal(extra, 0);
    assert_true(el + EARLY_MS >= CLOSE_MS);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_false(cl.clean);
    /* weft.h: on_close reports "the one we sent if the peer never answered". */
    assert_int_equal(cl.code, 1001);
}

/* Traffic resets the idle timer: pings and messages every IDLE_MS/3 for 3 idle periods keep
 * the connection open (every ping answered, no close); then silence brings the close. */
static void test_idle_reset_by_traffic(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t t0 = rc_now_ms(), t1 = t0;
    int i = 0;
    while (rc_now_ms() - t0 < 3 * IDLE_MS) {
        if (i++ % 2) {
            assert_int_equal(rc_send(c, WEFT_OP_PING, "k", 1), 0);
            assert_int_equal(rc_recv(c, 1000), RC_PONG);
        } else {
            assert_int_equal(rc_send(c, WEFT_OP_TEXT, "k", 1), 0);
            assert_int_equal(rc_recv(c, 1000), RC_MESSAGE);
        }
        t1 = rc_now_ms(); /* the last traffic */
        /* Nothing else may arrive (in particular no close) before the next round. */
        assert_int_equal(rc_recv(c, (int)IDLE_MS / 3), RC_TIMEOUT);
    }
    assert_int_equal(rc_recv(c, IDLE_MS + LATE_MS), RC_CLOSE);
    assert_int_equal(c->last.close_code, 1001);
    assert_true(rc_now_ms() - t1 + EARLY_MS >= IDLE_MS);
    assert_int_equal(rc_send_close(c, 1001, NULL), 0);
    assert_int_equal(rc_wait_eof(c, 1000, NULL), 0);
}

/* Half a request head, then nothing: the server closes the TCP connection about the
 * handshake timeout later (no earlier, and within the timeout + 2 s). */
static void test_handshake_timeout_half_head(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(
        rc_write_str(c, "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr", RC_TIMEOUT_MS), 0);
    char buf[1024];
    size_t len;
    assert_int_equal(read_to_eof(c, HANDSHAKE_MS + LATE_MS + 500, buf, sizeof buf, &len), 0);
    uint64_t el = rc_now_ms() - t0;
    assert_true(el + EARLY_MS >= HANDSHAKE_MS);
    assert_true(el <= HANDSHAKE_MS + LATE_MS);
    assert_nothing_or_408(buf, len);

    /* The server still serves. */
    assert_int_equal(rc_open(&f->c[1], f->t.port, "/echo"), 0);
    assert_int_equal(rc_send(&f->c[1], WEFT_OP_TEXT, "ok", 2), 0);
    assert_int_equal(rc_recv(&f->c[1], RC_TIMEOUT_MS), RC_MESSAGE);
}

/* Slowloris: a head dripped one byte every 50 ms never completes within the handshake
 * timeout; the deadline is for the whole head, so the server closes despite the traffic. */
static void test_handshake_timeout_slow_head(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    static const char head[] = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    uint64_t t0 = rc_now_ms();
    bool closed = false;
    for (size_t i = 0; i < sizeof head - 1 && rc_now_ms() - t0 < HANDSHAKE_MS + LATE_MS; i++) {
        if (rc_write(c, head + i, 1, 1000) < 0) {
            closed = true; /* EPIPE / ECONNRESET: the server has closed */
            break;
        }
        long n = rc_read_once(c);
        if (n == 0 || n == -2) {
            closed = true;
            break;
        }
        if (n > 0) {
            char buf[1024];
            size_t len;
            assert_int_equal(read_to_eof(c, 1000, buf, sizeof buf, &len), 0);
            closed = true;
            break;
        }
        usleep(50000);
    }
    uint64_t el = rc_now_ms() - t0;
    assert_true(closed);
    assert_true(el + EARLY_MS >= HANDSHAKE_MS);
    assert_true(el <= HANDSHAKE_MS + LATE_MS);
    assert_int_equal(rc_open(&f->c[1], f->t.port, "/echo"), 0);
}

/* A connection that sends nothing at all is closed after the handshake timeout too. */
static void test_handshake_timeout_silent(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    uint64_t t0 = rc_now_ms();
    char buf[1024];
    size_t len;
    assert_int_equal(read_to_eof(c, HANDSHAKE_MS + LATE_MS + 500, buf, sizeof buf, &len), 0);
    uint64_t el = rc_now_ms() - t0;
    assert_true(el + EARLY_MS >= HANDSHAKE_MS);
    assert_true(el <= HANDSHAKE_MS + LATE_MS);
    assert_nothing_or_408(buf, len);
}

/* With no idle timeout, an upgraded connection outlives the (300 ms) handshake timeout by far:
 * the handshake timer stops at the upgrade. */
static void test_handshake_timer_stops_after_upgrade(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    assert_int_equal(rc_recv(c, 1200), RC_TIMEOUT); /* 4x the handshake timeout: no close */
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, "still here", 10), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.len, 10);
    assert_memory_equal(c->last.data, "still here", 10);
}

/* Keep-alive: after 300 ms of silence the server pings; a pong keeps the connection (another
 * ping follows after the next silence); a peer that stops answering is dropped after the
 * 400 ms pong timeout (EOF, on_close not clean). */
static void test_keepalive_ping(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->t.port, "/echo"), 0);
    uint64_t id = ts_last_open(&f->t);
    for (int i = 0; i < 2; i++) {
        uint64_t t0 = rc_now_ms();
        assert_int_equal(rc_recv(c, 300 + LATE_MS), RC_PING);
        assert_true(rc_now_ms() - t0 + EARLY_MS >= 300);
        assert_int_equal(rc_send(c, WEFT_OP_PONG, c->last.data, c->last.len), 0);
    }
    assert_int_equal(rc_recv(c, 300 + LATE_MS), RC_PING); /* not answered */
    uint64_t t1 = rc_now_ms();
    size_t extra = 0;
    assert_int_equal(rc_wait_eof(c, 400 + LATE_MS, &extra), 0);
    assert_true(rc_now_ms() - t1 + EARLY_MS >= 400);
    assert_true(ts_wait_closes(&f->t, 1, 2000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_false(cl.clean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_timeouts, teardown),
        cmocka_unit_test_setup_teardown(test_idle_no_answer_close_timeout, setup_timeouts,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_reset_by_traffic, setup_timeouts, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout_half_head, setup_timeouts, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout_slow_head, setup_timeouts, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout_silent, setup_timeouts, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_ping, setup_keepalive, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timer_stops_after_upgrade, setup_no_idle,
                                        teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.timeouts", tests, NULL, NULL);
}
