/*
 * test_budget.c — `weft serve --memory-budget` against hostile clients on 127.0.0.1 (the
 * defect of issue 12: --max-message × connections was unbounded).
 *
 * Reassembly: 40 clients each announce an 8 MiB message and send 4 MiB of it, never reading,
 * against --memory-budget 32m --max-message 16m on 2 workers. weft_memory_held_bytes stays
 * within the budget plus one read buffer, the clients that do not fit are closed with 1013
 * (counted by weft_memory_budget_closes_total and weft_connections_closed_total{code="1013"}),
 * a well-behaved client keeps getting its echoes, and the gauge returns to 0 once they are
 * gone.
 *
 * Output: clients flood /echo with 64 KiB messages and never read, against --memory-budget 8m
 * --max-backpressure 2m: the echoes queued for them are counted, the gauge stays within the
 * budget plus one connection's backpressure (what one flush can leave before the next check),
 * the largest holders are dropped (1013), another client is served, and the gauge returns
 * to 0.
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define MIB (1024u * 1024u)
#define KIB 1024u
#define NATT 40
#define READ_BUF (512u * KIB) /* the loop's receive buffer: slack of the reassembly bound */

struct fx {
    struct sp sp;
    struct rc att[NATT];
    struct rc good;
    uint8_t *buf;
    char *metrics;
};

enum { METRICS_CAP = 64 * 1024 };

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < NATT; i++)
        rc_close(&f->att[i]);
    rc_close(&f->good);
    sp_kill(&f->sp);
    free(f->buf);
    free(f->metrics);
    free(f);
    return 0;
}

/* Starts weft serve with the extra options. */
static int start(void **state, const char *const *extra)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    *state = f;
    for (size_t i = 0; i < NATT; i++)
        f->att[i].fd = -1;
    f->good.fd = -1;
    f->buf = malloc(8 * MIB);
    f->metrics = malloc(METRICS_CAP);
    if (!f->buf || !f->metrics || sp_try_start(&f->sp, WEFT_BIN, "budget", extra) != 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* A metric of GET /metrics (-1 when absent). */
static long long metric(struct fx *f, const char *name)
{
    assert_int_equal(sp_http_get(f->sp.port, "/metrics", f->metrics, METRICS_CAP), 200);
    return sp_metric_int(sp_http_body(f->metrics), name);
}

/* Waits up to 10 s for a metric to reach want; returns the last value. */
static long long wait_metric(struct fx *f, const char *name, long long want)
{
    uint64_t deadline = rc_now_ms() + 10000;
    long long v;
    while ((v = metric(f, name)) != want && rc_now_ms() < deadline) {
        struct pollfd none;
        poll(&none, 0, 20);
    }
    return v;
}

/* The well-behaved client: one echo, answered within the rawclient timeout. */
static void good_echo(struct fx *f, uint32_t i)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "still served %u", i);
    assert_int_equal(rc_send(&f->good, WEFT_OP_TEXT, msg, (size_t)n), 0);
    assert_int_equal(rc_recv(&f->good, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->good.last.len, (size_t)n);
    assert_memory_equal(f->good.last.data, msg, (size_t)n);
}

/* Writes without waiting long: all of buf, or until the kernel accepts nothing for 300 ms or
 * the connection fails. Returns the bytes written. */
static size_t write_some(struct rc *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, 300) <= 0) break;
    }
    return off;
}

static int setup_reassembly(void **state)
{
    static const char *const extra[] = {
        "--memory-budget", "32m", "--max-message", "16m", "--workers", "2", NULL};
    return start(state, extra);
}

/* The defect: many clients each holding most of a large message. */
static void test_reassembly_flood(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->good, f->sp.port, "/echo"), 0);
    static const uint8_t key[4] = {9, 8, 7, 6};
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    size_t h = weft_frame_header_write(hdr, WEFT_OP_BINARY, true, 0, 8 * MIB, key);
    memset(f->buf, 'z', 4 * MIB);
    weft_mask(f->buf, 4 * MIB, key, 0);
    long long peak = 0;
    for (uint32_t i = 0; i < NATT; i++) {
        assert_int_equal(rc_open(&f->att[i], f->sp.port, "/echo"), 0);
        if (write_some(&f->att[i], hdr, h) == h)
            write_some(&f->att[i], f->buf, 4 * MIB); /* fails once it is closed: fine */
        long long held = metric(f, "weft_memory_held_bytes");
        assert_true(held >= 0);
        if (held > peak) peak = held;
        assert_true(held <= 32 * (long long)MIB + READ_BUF);
        good_echo(f, i);
    }
    assert_true(peak >= 8 * (long long)MIB); /* the held messages are counted */
    assert_int_equal(metric(f, "weft_memory_budget_bytes"), 32 * (long long)MIB);

    /* At most 8 messages of 4 MiB fit in 32 MiB: the others were closed with 1013. */
    long long closes = metric(f, "weft_memory_budget_closes_total");
    assert_true(closes >= NATT - 8);
    assert_true(closes <= NATT);
    /* on_close (counted by code) follows from the connection's timer */
    assert_int_equal(wait_metric(f, "weft_connections_closed_total{code=\"1013\"}", closes),
                     closes);
    /* Each closed client got a close frame with 1013 (they had no output queued). */
    bool done[NATT] = {false};
    long long got = 0;
    uint64_t deadline = rc_now_ms() + 10000;
    while (got < closes && rc_now_ms() < deadline) {
        for (size_t i = 0; i < NATT; i++) {
            if (done[i]) continue;
            enum rc_event e = rc_recv(&f->att[i], 0);
            if (e == RC_TIMEOUT) continue;
            done[i] = true;
            assert_int_equal(e, RC_CLOSE);
            assert_int_equal(f->att[i].last.close_code, WEFT_CLOSE_TRY_AGAIN);
            got++;
        }
        struct pollfd none;
        poll(&none, 0, 10);
    }
    assert_int_equal(got, closes);
    print_message("reassembly: peak held %lld bytes, %lld of %d clients closed with 1013\n", peak,
                  closes, NATT);
    good_echo(f, NATT);

    for (size_t i = 0; i < NATT; i++)
        rc_close(&f->att[i]);
    assert_int_equal(wait_metric(f, "weft_memory_held_bytes", 0), 0);
    good_echo(f, NATT + 1);
    rc_close(&f->good);
    sp_stop(&f->sp);
}

static int setup_output(void **state)
{
    static const char *const extra[] = {
        "--memory-budget", "8m", "--max-backpressure", "2m", "--workers", "1", "--deflate",
        "false",           NULL};
    return start(state, extra);
}

#define NFLOOD 8

/* Clients that send and never read. */
static void test_output_flood(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->good, f->sp.port, "/echo"), 0);
    size_t payload = 64 * KIB, frame = weft_frame_header_size(payload, true) + payload;
    size_t n = (6 * MIB) / frame;
    uint8_t *p = malloc(payload);
    assert_non_null(p);
    rc_fill(p, payload, 3, false);
    long long peak = 0;
    for (uint32_t i = 0; i < NFLOOD; i++) {
        struct rc *c = &f->att[i];
        assert_int_equal(rc_connect(c, f->sp.port, 4096, RC_TIMEOUT_MS), 0);
        assert_int_equal(rc_handshake(c, f->sp.port, "/echo", NULL, RC_TIMEOUT_MS), 101);
        for (size_t k = 0; k < n; k++) {
            long w = weft_frame_encode(f->buf + k * frame, frame, WEFT_ROLE_CLIENT, &c->rnd,
                                       WEFT_OP_BINARY, true, 0, p, payload);
            assert_int_equal(w, (long)frame);
        }
        write_some(c, f->buf, n * frame);
        long long held = metric(f, "weft_memory_held_bytes");
        assert_true(held >= 0);
        if (held > peak) peak = held;
        assert_true(held <= 8 * (long long)MIB + 2 * (long long)MIB + (long long)frame);
        good_echo(f, i);
    }
    free(p);
    assert_true(peak >= 2 * (long long)MIB); /* queued echoes are counted */
    long long closes = metric(f, "weft_memory_budget_closes_total");
    assert_true(closes >= 1);
    /* on_close (counted by code) follows from the connection's timer */
    assert_int_equal(wait_metric(f, "weft_connections_closed_total{code=\"1013\"}", closes),
                     closes);
    print_message("output: peak held %lld bytes, %lld of %d flooders dropped (1013)\n", peak,
                  closes, NFLOOD);
    for (size_t i = 0; i < NFLOOD; i++)
        rc_close(&f->att[i]);
    assert_int_equal(wait_metric(f, "weft_memory_held_bytes", 0), 0);
    good_echo(f, NFLOOD);
    rc_close(&f->good);
    sp_stop(&f->sp);
}

int main(void)
{
    sp_guard("integration.budget", "weft serve", 170);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reassembly_flood, setup_reassembly, teardown),
        cmocka_unit_test_setup_teardown(test_output_flood, setup_output, teardown),
    };
    return cmocka_run_group_tests_name("integration.budget", tests, NULL, NULL);
}
