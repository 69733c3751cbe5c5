/*
 * test_client_write_fail.c — a handshake write that cannot be queued (out of memory) is an
 * error, not a silent success. The fault is injected by wrapping the library's internal
 * sock_write at link time (-Wl,--wrap=sock_write, see CMakeLists.txt): the next write that
 * starts with a chosen prefix fails with WEFT_ERR_NOMEM; every other write goes through.
 * Server and client run on one loop in this thread.
 *   - the server's 101: the connection is not opened (no on_open, no open connection), it is
 *     closed and counted as refused (rejected_total, rejected_503); the client sees the server
 *     close during the handshake;
 *   - the client's upgrade request: the attempt fails at once with WEFT_ERR_NOMEM (not a
 *     handshake timeout later), nothing reaches the server, the client ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clientkit.h"

struct weft_sock;
int __real_sock_write(struct weft_sock *s, const void *data, size_t len);
int __wrap_sock_write(struct weft_sock *s, const void *data, size_t len);

static const char *fail_prefix; /* the next write starting with this fails; NULL: none */
static unsigned failed_writes;

/* The wrapped sock_write: fails the armed write with WEFT_ERR_NOMEM, passes the others on. */
int __wrap_sock_write(struct weft_sock *s, const void *data, size_t len)
{
    size_t n = fail_prefix ? strlen(fail_prefix) : 0;
    if (fail_prefix && len >= n && memcmp(data, fail_prefix, n) == 0) {
        fail_prefix = NULL;
        failed_writes++;
        return WEFT_ERR_NOMEM;
    }
    return __real_sock_write(s, data, len);
}

static unsigned server_opens, server_closes;

/* Server route callbacks: count opens and closes. */
static void srv_open(struct weft_conn *c)
{
    (void)c;
    server_opens++;
}

static void srv_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                      bool clean)
{
    (void)c, (void)code, (void)reason, (void)reason_len, (void)clean;
    server_closes++;
}

struct env {
    struct weft_loop *loop;
    struct weft_server *server;
    char url[64];
};

/* Creates a loop with a WebSocket server on 127.0.0.1 (ephemeral port) at "/". */
static void env_start(struct env *e)
{
    server_opens = server_closes = 0;
    failed_writes = 0;
    e->loop = weft_loop_new();
    assert_non_null(e->loop);
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    int err;
    e->server = weft_server_new(e->loop, &cfg, &err);
    assert_non_null(e->server);
    static const struct weft_ws_handlers h = {.on_open = srv_open, .on_close = srv_close};
    assert_int_equal(weft_server_ws(e->server, "/", &h, NULL), WEFT_OK);
    snprintf(e->url, sizeof e->url, "ws://127.0.0.1:%u/", (unsigned)weft_server_port(e->server));
}

/* Frees the server and the loop. */
static void env_stop(struct env *e)
{
    weft_server_free(e->server);
    for (int i = 0; i < 3; i++)
        weft_loop_poll(e->loop, 10);
    weft_loop_free(e->loop);
    fail_prefix = NULL;
}

/* The server cannot queue its 101: the connection is closed unopened and counted. */
static void test_server_101_write_fails(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    struct ck k = {.loop = e.loop};
    struct weft_client_options o;
    ck_options(&o, &k);
    o.handshake_timeout_ms = 3000;
    fail_prefix = "HTTP/1.1 101";
    int err;
    k.cl = weft_connect(e.loop, e.url, &o, &err);
    assert_non_null(k.cl);
    assert_true(CK_RUN(e.loop, k.ends == 1, 10000));
    assert_int_equal(failed_writes, 1);
    assert_int_equal(server_opens, 0);
    assert_int_equal(server_closes, 0);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.errors, 1);
    assert_int_equal(k.errs[0], WEFT_ERR_PROTO); /* the server closed during the handshake */
    struct weft_server_stats st;
    weft_server_stats(e.server, &st);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.upgrades_total, 0);
    assert_int_equal(st.rejected_total, 1);
    assert_int_equal(st.rejected_503, 1);
    ck_free(&k);
    env_stop(&e);
}

/* The client cannot queue its upgrade request: the attempt fails at once with the error. */
static void test_client_request_write_fails(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    struct ck k = {.loop = e.loop};
    struct weft_client_options o;
    ck_options(&o, &k);
    o.handshake_timeout_ms = 3000;
    fail_prefix = "GET ";
    int err;
    k.cl = weft_connect(e.loop, e.url, &o, &err);
    assert_non_null(k.cl);
    assert_true(CK_RUN(e.loop, k.ends == 1, 10000));
    assert_int_equal(failed_writes, 1);
    assert_int_equal(k.opens, 0);
    assert_int_equal(k.errors, 1);
    assert_int_equal(k.errs[0], WEFT_ERR_NOMEM);
    assert_non_null(strstr(k.error, "upgrade request"));
    struct weft_server_stats st;
    weft_server_stats(e.server, &st);
    assert_int_equal(st.upgrades_total, 0);
    assert_int_equal(server_opens, 0);
    /* The next connect writes normally and opens. */
    struct ck k2 = {.loop = e.loop};
    ck_options(&o, &k2);
    k2.cl = weft_connect(e.loop, e.url, &o, &err);
    assert_non_null(k2.cl);
    assert_true(CK_RUN(e.loop, k2.opens == 1 && server_opens == 1, 10000));
    ck_free(&k2);
    ck_free(&k);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_101_write_fails),
        cmocka_unit_test(test_client_request_write_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
