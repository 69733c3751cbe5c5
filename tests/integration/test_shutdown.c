/*
 * test_shutdown.c — graceful shutdown through the API: weft_server_shutdown(s, 1001, ...)
 * sends close 1001 to every connection, stops accepting, completes the close handshakes of
 * peers that answer (on_close clean, 1001), drops those that do not at the deadline, and then
 * calls done exactly once. With no connections, done comes at once.
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

#define NCLIENTS 5
#define DEADLINE_MS 1500u
#define LATE_MS 2000u

/* Set on the loop thread under t->mu. */
static unsigned done_calls;
static uint64_t done_at;

static void on_done(void *arg)
{
    struct ts *t = arg;
    pthread_mutex_lock(&t->mu);
    done_calls++;
    done_at = rc_now_ms();
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
}

struct fx {
    struct ts t;
    struct rc c[NCLIENTS + 1];
};

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < NCLIENTS + 1; i++)
        rc_close(&f->c[i]);
    ts_stop(&f->t);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < NCLIENTS + 1; i++)
        f->c[i].fd = -1;
    f->t.cfg.close_timeout_ms = 10000; /* longer than the deadline: the deadline must rule */
    f->t.setup = routes;
    done_calls = 0;
    done_at = 0;
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

static void start_shutdown(struct ts *t, void *arg)
{
    (void)arg;
    weft_server_shutdown(t->server, 1001, DEADLINE_MS, on_done, t);
    weft_server_shutdown(t->server, 1001, DEADLINE_MS, on_done, t); /* twice: harmless */
}

/* Waits up to ms for done; returns the number of calls seen, and when the first came in
 * *at (if not NULL). */
static unsigned wait_done(struct ts *t, int ms, uint64_t *at)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)ms;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        unsigned n = done_calls;
        if (at) *at = done_at;
        pthread_mutex_unlock(&t->mu);
        if (n || rc_now_ms() >= deadline) return n;
        usleep(5000);
    }
}

/* Four clients answer the close, one stays silent: all five get close 1001; the four see
 * TCP EOF right after answering; the silent one is dropped at the deadline; new connections
 * are refused; done is called once, by the deadline; on_close is clean 1001 for the four. */
static void test_graceful_shutdown(void **state)
{
    struct fx *f = *state;
    uint64_t ids[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(rc_open(&f->c[i], f->t.port, "/echo"), 0);
        ids[i] = ts_last_open(&f->t);
        assert_int_equal(rc_send(&f->c[i], WEFT_OP_TEXT, "hi", 2), 0);
        assert_int_equal(rc_recv(&f->c[i], RC_TIMEOUT_MS), RC_MESSAGE);
    }
    uint64_t t0 = rc_now_ms();
    assert_int_equal(ts_call(&f->t, start_shutdown, NULL), 0);

    for (int i = 0; i < NCLIENTS - 1; i++) {
        assert_int_equal(rc_expect_close(&f->c[i], RC_TIMEOUT_MS), 1001);
        rc_close(&f->c[i]);
    }
    struct rc *silent = &f->c[NCLIENTS - 1];
    assert_int_equal(rc_recv(silent, RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(silent->last.close_code, 1001);

    /* No longer accepting: a new client cannot open a WebSocket. */
    assert_int_not_equal(rc_open(&f->c[NCLIENTS], f->t.port, "/echo"), 0);

    size_t extra = 1;
    assert_int_equal(rc_wait_eof(silent, (int)(DEADLINE_MS + LATE_MS), &extra), 0);
    assert_int_equal(extra, 0);
    uint64_t at = 0;
    assert_int_equal(wait_done(&f->t, (int)(DEADLINE_MS + LATE_MS), &at), 1);
    assert_true(at - t0 <= DEADLINE_MS + LATE_MS);
    usleep(100000);
    assert_int_equal(wait_done(&f->t, 0, NULL), 1); /* exactly once */

    assert_true(ts_wait_closes(&f->t, NCLIENTS, 1000));
    struct ts_close cl;
    for (int i = 0; i < NCLIENTS - 1; i++) {
        assert_true(ts_find_close(&f->t, ids[i], &cl));
        assert_int_equal(cl.code, 1001); /* the peer's answer */
        assert_true(cl.clean);
    }
    /* The silent one: weft.h says on_close reports "the one we sent if the peer never
     * answered". */
    assert_true(ts_find_close(&f->t, ids[NCLIENTS - 1], &cl));
    assert_false(cl.clean);
    assert_int_equal(cl.code, 1001);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.connections, 0);
}

/* All clients answer: done comes as soon as the last handshake completes, well before the
 * deadline. */
static void test_shutdown_fast_when_all_answer(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCLIENTS; i++)
        assert_int_equal(rc_open(&f->c[i], f->t.port, "/echo"), 0);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(ts_call(&f->t, start_shutdown, NULL), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(rc_expect_close(&f->c[i], RC_TIMEOUT_MS), 1001);
        rc_close(&f->c[i]); /* as a real client does after the server's FIN */
    }
    uint64_t at = 0;
    assert_int_equal(wait_done(&f->t, (int)(DEADLINE_MS + LATE_MS), &at), 1);
    assert_true(at - t0 < DEADLINE_MS);
}

/* No connections: done is called promptly. */
static void test_shutdown_idle_server(void **state)
{
    struct fx *f = *state;
    uint64_t t0 = rc_now_ms();
    assert_int_equal(ts_call(&f->t, start_shutdown, NULL), 0);
    uint64_t at = 0;
    assert_int_equal(wait_done(&f->t, (int)(DEADLINE_MS + LATE_MS), &at), 1);
    assert_true(at - t0 < DEADLINE_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_graceful_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_fast_when_all_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_idle_server, setup, teardown),
    };
    alarm(170);
    return cmocka_run_group_tests_name("integration.shutdown", tests, NULL, NULL);
}
