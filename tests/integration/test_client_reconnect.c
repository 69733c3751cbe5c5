/*
 * test_client_reconnect.c — the client's reconnection policy, against weft servers running on
 * the same loop as the client (one thread, so "killing" a server is weft_server_free and
 * restarting it is weft_server_new on the same port).
 *
 *   backoff:     every delay lies in [0, min(cap, base·2^(n-1))], delays grow with the bound,
 *                the measured wait matches the announced delay, max_attempts is honoured
 *   restart:     the server goes away and comes back on the same port: the client reconnects
 *   reject_4xx:  a 401 or a 403 is not retried with no_retry_4xx, and is retried without it
 *   retry_after: an HTTP 503 with Retry-After: 1 delays the next attempt by at least 1 s
 *   close_hints: 1012 resets the attempt count, 1013 waits at least try_again_ms
 *   reset_after: a connection that stayed open reset_after_ms resets the attempt count, one
 *                closed at once does not
 *   queue:       sends while disconnected are queued (up to queue_max) or refused
 *   app_close:   no reconnection after weft_client_close
 *   urls:        bad URLs are refused by weft_connect with WEFT_ERR_INVAL, a wss:// URL with
 *                an unreadable CA file with WEFT_ERR_TLS
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clientkit.h"

/* ----------------------------------------------------------------- servers on the loop */

struct srv_opts {
    int reject_status;       /* on_upgrade rejects with this status when non-zero */
    const char *reject_headers;
    uint16_t close_on_open;  /* the server closes every new connection with this code */
    unsigned upgrades;       /* upgrade requests seen */
    struct weft_conn *last;  /* the last connection opened (NULL once it closed) */
};

static void srv_upgrade(struct weft_request *req, void *route_user)
{
    struct srv_opts *so = route_user;
    so->upgrades++;
    if (so->reject_status)
        weft_request_reject(req, so->reject_status, so->reject_headers, NULL);
}

static void srv_open(struct weft_conn *c)
{
    struct srv_opts *so = weft_conn_route_user(c);
    so->last = c;
    if (so->close_on_open)
        weft_conn_close(c, so->close_on_open, "hint");
}

static void srv_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                      bool clean)
{
    (void)code;
    (void)reason;
    (void)reason_len;
    (void)clean;
    struct srv_opts *so = weft_conn_route_user(c);
    if (so->last == c)
        so->last = NULL;
}

static void srv_echo(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* A server on loop at port (0 = any), with the echo route /echo driven by so. */
static struct weft_server *srv_start(struct weft_loop *loop, uint16_t port, struct srv_opts *so)
{
    struct weft_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.port = port;
    cfg.port_ephemeral = port == 0;
    cfg.close_timeout_ms = 1000;
    int err;
    struct weft_server *s = weft_server_new(loop, &cfg, &err);
    if (!s)
        return NULL;
    struct weft_ws_handlers h = {.on_upgrade = srv_upgrade, .on_open = srv_open,
                                 .on_message = srv_echo, .on_close = srv_close};
    if (weft_server_ws(s, "/echo", &h, so) != WEFT_OK) {
        weft_server_free(s);
        return NULL;
    }
    return s;
}

/* A port nobody listens on: bind one, free it. */
static uint16_t dead_port(struct weft_loop *loop)
{
    struct srv_opts so = {0};
    struct weft_server *s = srv_start(loop, 0, &so);
    if (!s)
        return 0;
    uint16_t p = weft_server_port(s);
    weft_server_free(s);
    weft_loop_poll(loop, 0);
    return p;
}

struct fx {
    struct weft_loop *loop;
    struct weft_server *srv;
    struct srv_opts so;
    struct ck k;
    char url[128];
};

/* Starts the test server with f->so on an ephemeral port and points f->url at its /echo. */
static void serve_echo(struct fx *f)
{
    f->srv = srv_start(f->loop, 0, &f->so);
    assert_non_null(f->srv);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/echo", weft_server_port(f->srv));
}

/* Client options recording into k, reconnecting with a 10 ms base and cap. */
static void fast_reconnect(struct weft_client_options *o, struct ck *k)
{
    ck_options(o, k);
    o->reconnect = true;
    o->backoff_base_ms = 10;
    o->backoff_cap_ms = 10;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->loop = weft_loop_new();
    if (!f->loop) {
        free(f);
        return -1;
    }
    f->k.loop = f->loop;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ck_free(&f->k);
    if (f->srv)
        weft_server_free(f->srv);
    for (int i = 0; i < 3; i++)
        weft_loop_poll(f->loop, 10);
    weft_loop_free(f->loop);
    free(f);
    return 0;
}

/* ----------------------------------------------------------------- tests */

/* 12 reconnections to a closed port with base 8 ms, cap 200 ms: each announced delay is within
 * its bound; the time actually waited matches it; the 12 attempts end with "giving up"
 * (WEFT_ERR_CLOSED) and on_end, after exactly 13 refused connects. The delays drawn under the
 * 200 ms cap add up to more than the three first bounds together (8+16+32): that fails if the
 * bound stops growing (probability of a false failure about 3e-8). */
static void test_backoff_bounds(void **state)
{
    struct fx *f = *state;
    uint16_t port = dead_port(f->loop);
    assert_true(port != 0);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/echo", port);
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.reconnect = true;
    o.backoff_base_ms = 8;
    o.backoff_cap_ms = 200;
    o.max_attempts = 12;
    int err;
    f->k.cl = weft_connect(f->loop, f->url, &o, &err);
    assert_non_null(f->k.cl);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 15000));
    assert_int_equal(f->k.reconnects, 12);
    assert_int_equal(f->k.errors, 14); /* 13 refused + "giving up" */
    for (unsigned i = 0; i < 13; i++)
        assert_int_equal(f->k.errs[i], WEFT_ERR_IO);
    assert_int_equal(f->k.errs[13], WEFT_ERR_CLOSED);
    assert_non_null(strstr(f->k.error, "giving up after 12"));
    assert_int_equal(f->k.opens, 0);
    uint32_t late = 0;
    for (unsigned i = 0; i < 12; i++) {
        uint32_t bound = weft_backoff_bound(8, 200, i + 1);
        assert_int_equal(f->k.attempt[i], i + 1);
        assert_true(f->k.delay[i] <= bound);
        /* The next refused connect comes after the delay (timer resolution ~8 ms). */
        uint64_t waited = f->k.error_at[i + 1] - f->k.reconnect_at[i];
        if (waited + 10 < f->k.delay[i] || waited > f->k.delay[i] + 150) {
            fprintf(stderr, "attempt %u: announced %u ms, waited %llu ms\n", i + 1,
                    f->k.delay[i], (unsigned long long)waited);
            fail();
        }
        if (i >= 5)
            late += f->k.delay[i];
    }
    assert_int_equal(weft_backoff_bound(8, 200, 1), 8);
    assert_int_equal(weft_backoff_bound(8, 200, 4), 64);
    assert_int_equal(weft_backoff_bound(8, 200, 6), 200);
    assert_int_equal(weft_backoff_bound(8, 200, 60), 200);
    assert_true(late > 8 + 16 + 32);
}

/* The server goes away (connections dropped without a close frame) and a new one comes back
 * on the same port 300 ms later: the client reports 1006, announces reconnections, and opens
 * again; the new connection echoes. */
static void test_restart_same_port(void **state)
{
    struct fx *f = *state;
    f->srv = srv_start(f->loop, 0, &f->so);
    assert_non_null(f->srv);
    uint16_t port = weft_server_port(f->srv);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/echo", port);
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.reconnect = true;
    o.backoff_base_ms = 20;
    o.backoff_cap_ms = 100;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_non_null(f->k.cl);
    assert_true(CK_RUN(f->loop, f->k.opens == 1, 5000));
    weft_server_free(f->srv);
    f->srv = NULL;
    assert_true(CK_RUN(f->loop, f->k.closes == 1, 5000));
    assert_int_equal(f->k.close_code, WEFT_CLOSE_ABNORMAL);
    assert_false(f->k.close_clean);
    assert_null(weft_client_conn(f->k.cl));
    uint64_t until = ck_now() + 300;
    CK_RUN(f->loop, false, until - ck_now());
    assert_true(f->k.reconnects >= 1);
    assert_int_equal(f->k.opens, 1);
    f->srv = srv_start(f->loop, port, &f->so);
    assert_non_null(f->srv);
    assert_true(CK_RUN(f->loop, f->k.opens == 2, 5000));
    assert_non_null(weft_client_conn(f->k.cl));
    assert_int_equal(weft_client_send(f->k.cl, "again", 5, WEFT_OP_TEXT), WEFT_SEND_SENT);
    assert_true(CK_RUN(f->loop, f->k.messages == 1, 5000));
    assert_string_equal((char *)f->k.last, "again");
    for (unsigned i = 0; i < f->k.reconnects && i < CK_MAX; i++)
        assert_true(f->k.delay[i] <= weft_backoff_bound(20, 100, f->k.attempt[i]));
}

/* A server answering 401, then one answering 403: with no_retry_4xx one error (that status)
 * and the end, no reconnection; without it, max_attempts (2) reconnections happen. */
static void test_reject_4xx(void **state)
{
    struct fx *f = *state;
    static const int statuses[] = {401, 403};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        int status = statuses[i];
        char text[8];
        snprintf(text, sizeof text, "%d", status);
        memset(&f->so, 0, sizeof f->so);
        f->so.reject_status = status;
        if (!f->srv)
            f->srv = srv_start(f->loop, 0, &f->so);
        assert_non_null(f->srv);
        snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/echo", weft_server_port(f->srv));
        struct weft_client_options o;
        struct ck k1 = {.loop = f->loop};
        ck_options(&o, &k1);
        o.reconnect = true;
        o.backoff_base_ms = 10;
        o.no_retry_4xx = true;
        o.max_attempts = 2;
        k1.cl = weft_connect(f->loop, f->url, &o, NULL);
        assert_true(CK_RUN(f->loop, k1.ends == 1, 5000));
        CK_RUN(f->loop, false, 200);
        assert_int_equal(k1.errors, 1);
        assert_int_equal(k1.http_status, status);
        assert_int_equal(k1.err, WEFT_ERR_PROTO);
        assert_non_null(strstr(k1.error, text));
        assert_int_equal(k1.reconnects, 0);
        assert_int_equal(f->so.upgrades, 1);
        ck_free(&k1);

        struct ck k2 = {.loop = f->loop};
        ck_options(&o, &k2);
        o.reconnect = true;
        o.backoff_base_ms = 10;
        o.max_attempts = 2;
        k2.cl = weft_connect(f->loop, f->url, &o, NULL);
        assert_true(CK_RUN(f->loop, k2.ends == 1, 5000));
        assert_int_equal(k2.reconnects, 2);
        assert_int_equal(f->so.upgrades, 1 + 3);
        assert_int_equal(k2.errs[0], WEFT_ERR_PROTO);
        assert_int_equal(k2.http_status, 0); /* last error: giving up */
        ck_free(&k2);
    }
}

/* 503 with Retry-After: 1: the next attempt waits at least 1 s although the backoff bound is
 * 10 ms. */
static void test_retry_after(void **state)
{
    struct fx *f = *state;
    f->so.reject_status = 503;
    f->so.reject_headers = "Retry-After: 1\r\n";
    serve_echo(f);
    struct weft_client_options o;
    fast_reconnect(&o, &f->k);
    o.max_attempts = 1;
    o.no_retry_4xx = true; /* 503 is not a 4xx: still retried */
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 8000));
    assert_int_equal(f->k.reconnects, 1);
    assert_true(f->k.delay[0] >= 1000);
    assert_int_equal(f->so.upgrades, 2);
    assert_true(f->k.error_at[1] - f->k.reconnect_at[0] >= 990);
}

/* A server that closes every connection with 1012 (restart): each reconnection is attempt 1
 * (the count resets). With 1011 instead, the count grows. With 1013, each delay is at least
 * try_again_ms (150) although the bound is 10 ms. */
static void test_close_hints(void **state)
{
    struct fx *f = *state;
    f->so.close_on_open = WEFT_CLOSE_RESTART;
    serve_echo(f);
    struct weft_client_options o;
    fast_reconnect(&o, &f->k);
    o.try_again_ms = 150;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_true(CK_RUN(f->loop, f->k.reconnects >= 3, 5000));
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(f->k.attempt[i], 1);
    assert_int_equal(f->k.close_code, WEFT_CLOSE_RESTART);
    ck_free(&f->k);

    f->so.close_on_open = WEFT_CLOSE_INTERNAL;
    struct ck k2 = {.loop = f->loop};
    fast_reconnect(&o, &k2);
    k2.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_true(CK_RUN(f->loop, k2.reconnects >= 3, 5000));
    assert_int_equal(k2.attempt[0], 1);
    assert_int_equal(k2.attempt[1], 2);
    assert_int_equal(k2.attempt[2], 3);
    ck_free(&k2);

    f->so.close_on_open = WEFT_CLOSE_TRY_AGAIN;
    struct ck k3 = {.loop = f->loop};
    fast_reconnect(&o, &k3);
    o.try_again_ms = 150;
    k3.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_true(CK_RUN(f->loop, k3.reconnects >= 2, 5000));
    assert_true(k3.delay[0] >= 150);
    assert_true(k3.delay[1] >= 150);
    ck_free(&k3);
}

/* reset_after_ms 300: a server that closes each connection at once (1011) makes the attempt
 * count grow (1, 2, 3); then a connection that stays open 600 ms before the server closes it
 * resets the count: the next reconnection is attempt 1 again, not 4. */
static void test_reset_after(void **state)
{
    struct fx *f = *state;
    f->so.close_on_open = WEFT_CLOSE_INTERNAL;
    serve_echo(f);
    struct weft_client_options o;
    fast_reconnect(&o, &f->k);
    o.reset_after_ms = 300;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_non_null(f->k.cl);
    assert_true(CK_RUN(f->loop, f->k.reconnects >= 3, 5000));
    f->so.close_on_open = 0; /* the next connection stays open */
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(f->k.attempt[i], i + 1);
    unsigned opens = f->k.opens;
    assert_true(CK_RUN(f->loop, f->k.opens == opens + 1 && f->so.last, 5000));
    unsigned reconnects = f->k.reconnects;
    CK_RUN(f->loop, false, 600);
    assert_int_equal(f->k.reconnects, reconnects); /* still open */
    assert_non_null(weft_client_conn(f->k.cl));
    weft_conn_close(f->so.last, WEFT_CLOSE_INTERNAL, "after a while");
    assert_true(CK_RUN(f->loop, f->k.reconnects == reconnects + 1, 5000));
    assert_int_equal(f->k.close_code, WEFT_CLOSE_INTERNAL);
    assert_int_equal(f->k.attempt[reconnects], 1);
    assert_true(reconnects >= 3 && f->k.attempt[reconnects - 1] >= 3);
}

/* queue_max 10: two 4-byte sends before the open are queued, a third is dropped (12 > 10);
 * after the open both arrive (echoed back in order). Without queue_max a send while connecting
 * is refused. */
static void test_queue_while_disconnected(void **state)
{
    struct fx *f = *state;
    serve_echo(f);
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.queue_max = 10;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_non_null(f->k.cl);
    assert_int_equal(weft_client_send(f->k.cl, "aaaa", 4, WEFT_OP_TEXT), WEFT_SEND_QUEUED);
    assert_int_equal(weft_client_send(f->k.cl, "bbbb", 4, WEFT_OP_TEXT), WEFT_SEND_QUEUED);
    assert_int_equal(weft_client_send(f->k.cl, "cccc", 4, WEFT_OP_TEXT), WEFT_SEND_DROPPED);
    assert_true(CK_RUN(f->loop, f->k.messages == 2, 5000));
    assert_string_equal((char *)f->k.last, "bbbb");
    CK_RUN(f->loop, false, 100);
    assert_int_equal(f->k.messages, 2);
    ck_free(&f->k);

    struct ck k2 = {.loop = f->loop};
    ck_options(&o, &k2);
    k2.cl = weft_connect(f->loop, f->url, &o, NULL);
    o.queue_max = 0;
    ck_free(&k2);
    k2.loop = f->loop;
    ck_options(&o, &k2);
    k2.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_int_equal(weft_client_send(k2.cl, "x", 1, WEFT_OP_TEXT), WEFT_SEND_CLOSED);
    assert_true(CK_RUN(f->loop, k2.opens == 1, 5000));
    assert_int_equal(weft_client_send(k2.cl, "x", 1, WEFT_OP_TEXT), WEFT_SEND_SENT);
    ck_free(&k2);
}

/* weft_client_close with reconnect on: close 4000 reaches the server and comes back (clean),
 * on_end follows, and no reconnection is attempted. Also through "localhost" (DNS). */
static void test_app_close(void **state)
{
    struct fx *f = *state;
    f->srv = srv_start(f->loop, 0, &f->so);
    assert_non_null(f->srv);
    snprintf(f->url, sizeof f->url, "ws://localhost:%u/echo?x=1", weft_server_port(f->srv));
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.reconnect = true;
    o.backoff_base_ms = 10;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_true(CK_RUN(f->loop, f->k.opens == 1, 5000));
    weft_client_close(f->k.cl, 4000, "bye");
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    assert_int_equal(f->k.close_code, 4000);
    assert_true(f->k.close_clean);
    CK_RUN(f->loop, false, 150);
    assert_int_equal(f->k.reconnects, 0);
    assert_int_equal(f->so.upgrades, 1);
    assert_int_equal(weft_client_send(f->k.cl, "x", 1, WEFT_OP_TEXT), WEFT_SEND_CLOSED);
}

/* URL parsing: good forms are taken apart; bad ones and wss:// are refused with a reason. */
static void test_urls(void **state)
{
    struct fx *f = *state;
    struct weft_url u;
    const char *why;
    assert_int_equal(weft_url_parse("ws://[::1]:9000/a/b?c=d#frag", &u, &why), WEFT_OK);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.host, "::1", 3);
    assert_int_equal(u.port, 9000);
    assert_int_equal(u.target_len, strlen("/a/b?c=d"));
    assert_int_equal(weft_url_parse("WS://example.com", &u, &why), WEFT_OK);
    assert_int_equal(u.port, 80);
    assert_int_equal(u.target_len, 0);
    assert_int_equal(weft_url_parse("wss://example.com/x", &u, &why), WEFT_OK);
    assert_true(u.tls);
    assert_int_equal(u.port, 443);
    static const char *const bad[] = {
        "http://x/", "ws://", "ws://:80/", "ws://host:0/", "ws://host:65536/", "ws://host:12a/",
        "ws://[::1/", "ws://[zz]/", "ws://ho st/", "ws://host/a b", "ws://u@host/", "host:80",
        "ws://host:/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (weft_url_parse(bad[i], &u, &why) != WEFT_ERR_INVAL || !why) {
            fprintf(stderr, "accepted bad URL %s\n", bad[i]);
            fail();
        }
        int err = 0;
        assert_null(weft_connect(f->loop, bad[i], NULL, &err));
        assert_int_equal(err, WEFT_ERR_INVAL);
    }
    int err = 0;
    /* wss:// is supported (src/net/tls.c): an unreadable CA file fails it with WEFT_ERR_TLS. */
    struct weft_client_options tlso = {.tls_cacert_file = "/nonexistent/ca.pem"};
    assert_null(weft_connect(f->loop, "wss://127.0.0.1:1/", &tlso, &err));
    assert_int_equal(err, WEFT_ERR_TLS);
    struct weft_client_options o = {.headers = "Bad header without colon and CRLF"};
    assert_null(weft_connect(f->loop, "ws://127.0.0.1:1/", &o, &err));
    assert_int_equal(err, WEFT_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backoff_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_same_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_4xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_hints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_while_disconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
