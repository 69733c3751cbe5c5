/*
 * test_echo_close_codes.c — what on_close reports, as weft.h states it, and both close codes
 * through weft_conn_close_sent / weft_conn_close_received during on_close:
 *   - the server closes with 4001 and the peer answers 4002: code 4002 (the peer's), clean,
 *     sent 4001, received 4002;
 *   - weft fails the connection (a reserved opcode: 1002): code 1002, not clean, reported at
 *     once; sent 1002, received 0 (the peer's answer comes later, after on_close).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rawclient.h"

struct seen {
    unsigned n;
    uint16_t code, sent, received;
    bool clean;
};
static struct seen seen; /* under ts_current->mu */

/* on_open of /close: the server begins the close handshake with 4001. */
static void close_on_open(struct weft_conn *c)
{
    weft_conn_close(c, 4001, "bye");
}

/* on_close: records the code, clean and both codes of the close handshake. */
static void record_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                         bool clean)
{
    (void)reason, (void)reason_len;
    pthread_mutex_lock(&ts_current->mu);
    seen.n++;
    seen.code = code;
    seen.clean = clean;
    seen.sent = weft_conn_close_sent(c);
    seen.received = weft_conn_close_received(c);
    pthread_cond_broadcast(&ts_current->cv);
    pthread_mutex_unlock(&ts_current->mu);
}

/* Registers /close and /plain. */
static void setup(struct ts *t, struct weft_server *s)
{
    (void)t;
    static const struct weft_ws_handlers hclose = {.on_open = close_on_open,
                                                   .on_close = record_close};
    static const struct weft_ws_handlers hplain = {.on_close = record_close};
    TS_CHECK(weft_server_ws(s, "/close", &hclose, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/plain", &hplain, NULL) == WEFT_OK);
}

/* Waits up to 5 s for the n-th on_close; returns a copy of what it saw. */
static struct seen wait_close(struct ts *t, unsigned n)
{
    uint64_t dl = rc_now_ms() + 5000;
    pthread_mutex_lock(&t->mu);
    while (seen.n < n && rc_now_ms() < dl) {
        pthread_mutex_unlock(&t->mu);
        usleep(2000);
        pthread_mutex_lock(&t->mu);
    }
    struct seen out = seen;
    pthread_mutex_unlock(&t->mu);
    assert_int_equal(out.n, n);
    return out;
}

static void test_close_codes(void **state)
{
    (void)state;
    struct ts t = {.setup = setup};
    memset(&seen, 0, sizeof seen);
    assert_int_equal(ts_start(&t), 0);

    /* The server begins with 4001, the peer answers 4002. */
    struct rc c;
    assert_int_equal(rc_open(&c, t.port, "/close"), 0);
    assert_int_equal(rc_recv(&c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c.last.close_code, 4001);
    assert_int_equal(rc_send_close(&c, 4002, "ok"), 0);
    struct seen s = wait_close(&t, 1);
    assert_int_equal(s.code, 4002);
    assert_true(s.clean);
    assert_int_equal(s.sent, 4001);
    assert_int_equal(s.received, 4002);
    rc_close(&c);

    /* weft fails the connection: reserved opcode 3 -> 1002, reported at once. */
    assert_int_equal(rc_open(&c, t.port, "/plain"), 0);
    assert_int_equal(rc_send_raw_frame(&c, 0x83, true, "x", 1), 0);
    s = wait_close(&t, 2);
    assert_int_equal(s.code, 1002);
    assert_false(s.clean);
    assert_int_equal(s.sent, 1002);
    assert_int_equal(s.received, 0);
    assert_int_equal(rc_recv(&c, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(c.last.close_code, 1002);
    rc_close(&c);
    ts_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_close_codes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
