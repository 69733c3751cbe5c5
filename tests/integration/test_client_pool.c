/*
 * test_client_pool.c — connection pools against an in-process echo server (harness thread);
 * the pool runs on the test thread's loop. The server side counts connections: it never sees
 * more than the pool's bound.
 *   bound_timeout: N = 2, three acquisitions: two connections, the third times out
 *   handoff:       N = 1, a waiter gets the connection released by the first holder
 *   replace:       N = 1, a broken connection is replaced by a new one on the next acquire
 *   bad_options:   a connection that cannot be started (bad header) fails the acquisition
 *                  at once with its error instead of letting it time out
 *   wss:           a pool over wss:// (a TLS server with certificates made by tls_certs.sh):
 *                  connections verified against the test CA echo; without that CA the
 *                  acquisition fails with WEFT_ERR_TLS, with tls_insecure it succeeds; an
 *                  unreadable CA file fails weft_pool_new with WEFT_ERR_TLS
 */
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clientkit.h"
#include "harness.h"

static void setup_routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    weft_server_ws(s, "/echo", &ts_echo_handlers, NULL);
}

/* One acquisition's result. */
struct got {
    bool done;
    struct weft_conn *c;
    int err;
    uint64_t at;
};

static void on_acquired(struct weft_pool *p, struct weft_conn *c, int err, void *arg)
{
    (void)p;
    struct got *g = arg;
    g->done = true;
    g->c = c;
    g->err = err;
    g->at = ck_now();
}

struct fx {
    struct ts ts;
    struct weft_loop *loop;
    struct weft_pool *pool;
    uint64_t max_server_conns; /* largest count the server reported while sampled */
    char url[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->ts.setup = setup_routes;
    if (ts_start(&f->ts) != 0)
        return -1;
    f->loop = weft_loop_new();
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/echo", f->ts.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    weft_pool_free(f->pool);
    for (int i = 0; i < 3; i++)
        weft_loop_poll(f->loop, 10);
    weft_loop_free(f->loop);
    ts_stop(&f->ts);
    free(f);
    return 0;
}

/* Runs the loop for ms while sampling the server's connection count. */
static void run_sampling(struct fx *f, bool *cond, int ms)
{
    uint64_t dl = ck_now() + (uint64_t)ms;
    while (ck_now() < dl && !(cond && *cond)) {
        weft_loop_poll(f->loop, 5);
        struct weft_server_stats st;
        ts_stats(&f->ts, &st);
        if (st.connections > f->max_server_conns)
            f->max_server_conns = st.connections;
    }
}

static struct weft_pool *new_pool(struct fx *f, unsigned n)
{
    struct weft_client_options o;
    memset(&o, 0, sizeof o);
    int err;
    struct weft_pool *p = weft_pool_new(f->loop, f->url, &o, n, &err);
    assert_non_null(p);
    return p;
}

/* N = 2 and three acquisitions with a 300 ms timeout: two distinct open connections, the third
 * times out (WEFT_ERR_TIMEOUT, after about 300 ms); the server saw 2 opens and never more
 * than 2 connections at once. */
static void test_bound_timeout(void **state)
{
    struct fx *f = *state;
    f->pool = new_pool(f, 2);
    struct got g[3];
    memset(g, 0, sizeof g);
    uint64_t t0 = ck_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_pool_acquire(f->pool, 300, on_acquired, &g[i]), WEFT_OK);
    assert_false(g[0].done); /* never inside acquire */
    run_sampling(f, &g[2].done, 3000);
    assert_true(g[0].done && g[1].done && g[2].done);
    assert_int_equal(g[0].err, WEFT_OK);
    assert_int_equal(g[1].err, WEFT_OK);
    assert_non_null(g[0].c);
    assert_non_null(g[1].c);
    assert_ptr_not_equal(g[0].c, g[1].c);
    assert_int_equal(g[2].err, WEFT_ERR_TIMEOUT);
    assert_null(g[2].c);
    assert_true(g[2].at - t0 >= 290);
    run_sampling(f, NULL, 100);
    assert_int_equal(weft_pool_size(f->pool), 2);
    assert_int_equal(weft_pool_idle(f->pool), 0);
    assert_int_equal(f->max_server_conns, 2);
    assert_int_equal(f->ts.opens, 2);
}

/* N = 1: B waits while A holds the connection; A releases after 150 ms and B gets the very
 * same connection (no new connection opened); it still echoes. */
static void test_handoff(void **state)
{
    struct fx *f = *state;
    f->pool = new_pool(f, 1);
    struct got a = {0}, b = {0};
    weft_pool_acquire(f->pool, 0, on_acquired, &a);
    run_sampling(f, &a.done, 3000);
    assert_int_equal(a.err, WEFT_OK);
    weft_pool_acquire(f->pool, 3000, on_acquired, &b);
    run_sampling(f, NULL, 150);
    assert_false(b.done);
    weft_pool_release(f->pool, a.c);
    run_sampling(f, &b.done, 3000);
    assert_true(b.done);
    assert_int_equal(b.err, WEFT_OK);
    assert_ptr_equal(b.c, a.c);
    assert_int_equal(f->ts.opens, 1);
    assert_int_equal(f->max_server_conns, 1);
    assert_int_equal(weft_conn_send(b.c, "x", 1, WEFT_OP_TEXT), WEFT_SEND_SENT);
}

/* N = 1: the held connection breaks (terminated); after release the next acquire gets a new
 * connection (the server sees a second open), and the bound held throughout. */
static void test_replace_broken(void **state)
{
    struct fx *f = *state;
    f->pool = new_pool(f, 1);
    struct got a = {0}, b = {0};
    weft_pool_acquire(f->pool, 2000, on_acquired, &a);
    run_sampling(f, &a.done, 3000);
    assert_int_equal(a.err, WEFT_OK);
    weft_conn_terminate(a.c);
    weft_pool_release(f->pool, a.c);
    run_sampling(f, NULL, 50);
    weft_pool_acquire(f->pool, 2000, on_acquired, &b);
    run_sampling(f, &b.done, 3000);
    assert_int_equal(b.err, WEFT_OK);
    assert_non_null(b.c);
    assert_int_equal(f->ts.opens, 2);
    assert_true(ts_wait_closes(&f->ts, 1, 2000));
    assert_int_equal(f->max_server_conns, 1);
    assert_int_equal(weft_pool_size(f->pool), 1);
}

/* N = 1 with a header line the handshake request cannot carry: the acquisition fails with
 * WEFT_ERR_INVAL right away (not after its 3 s timeout); nothing reached the server. */
static void test_bad_options(void **state)
{
    struct fx *f = *state;
    struct weft_client_options o;
    memset(&o, 0, sizeof o);
    o.headers = "no colon and no line end";
    int err;
    f->pool = weft_pool_new(f->loop, f->url, &o, 1, &err);
    assert_non_null(f->pool);
    struct got g = {0};
    uint64_t t0 = ck_now();
    assert_int_equal(weft_pool_acquire(f->pool, 3000, on_acquired, &g), WEFT_OK);
    run_sampling(f, &g.done, 5000);
    assert_true(g.done);
    assert_int_equal(g.err, WEFT_ERR_INVAL);
    assert_null(g.c);
    assert_true(g.at - t0 < 1000);
    assert_int_equal(weft_pool_size(f->pool), 0);
    assert_int_equal(f->ts.opens, 0);
}

static char certdir[64]; /* the temporary directory of the wss test's certificates */

/* certdir/name, in one of a few rotating buffers. */
static const char *cpath(const char *name)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", certdir, name);
    return buf[k];
}

/* As setup, with a TLS server (server.pem: 127.0.0.1 and localhost, by the test CA). */
static int setup_tls(void **state)
{
    snprintf(certdir, sizeof certdir, "/tmp/weft-pool-tls-XXXXXX");
    if (!mkdtemp(certdir))
        return -1;
    char src[512], cmd[1024];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(cmd, sizeof cmd, "sh '%s/tls_certs.sh' '%s'", dirname(src), certdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the test certificates with: %s\n", cmd);
        return -1;
    }
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    static char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s", cpath("server.pem"));
    snprintf(key, sizeof key, "%s", cpath("server.key"));
    f->ts.cfg.tls_cert_file = cert;
    f->ts.cfg.tls_key_file = key;
    f->ts.setup = setup_routes;
    if (ts_start(&f->ts) != 0) {
        free(f);
        return -1;
    }
    f->loop = weft_loop_new();
    snprintf(f->url, sizeof f->url, "wss://127.0.0.1:%u/echo", f->ts.port);
    *state = f;
    return 0;
}

/* teardown, then the certificates go. */
static int teardown_tls(void **state)
{
    teardown(state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", certdir);
    return 0;
}

/* Acquires one connection from a new pool on f->url with o (N = 2); returns the result. */
static struct got acquire_one(struct fx *f, const struct weft_client_options *o)
{
    int err;
    f->pool = weft_pool_new(f->loop, f->url, o, 2, &err);
    assert_non_null(f->pool);
    struct got g = {0};
    assert_int_equal(weft_pool_acquire(f->pool, 5000, on_acquired, &g), WEFT_OK);
    run_sampling(f, &g.done, 6000);
    assert_true(g.done);
    return g;
}

/* wss:// pools: verified against the test CA, two connections at once, each echoes through
 * TLS; without the test CA (system store only) the server is not trusted: WEFT_ERR_TLS; with
 * tls_insecure it is accepted; an unreadable CA file fails at weft_pool_new. */
static void test_wss(void **state)
{
    struct fx *f = *state;
    struct ck k = {.loop = f->loop};
    struct weft_client_options o;
    memset(&o, 0, sizeof o);
    o.handlers.on_message = ck_on_message;
    o.user = &k;
    o.tls_cacert_file = cpath("ca.pem");
    int err;
    f->pool = weft_pool_new(f->loop, f->url, &o, 2, &err);
    assert_non_null(f->pool);
    struct got g[2];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 2; i++)
        assert_int_equal(weft_pool_acquire(f->pool, 5000, on_acquired, &g[i]), WEFT_OK);
    run_sampling(f, &g[1].done, 6000);
    assert_true(g[0].done && g[1].done);
    assert_int_equal(g[0].err, WEFT_OK);
    assert_int_equal(g[1].err, WEFT_OK);
    assert_ptr_not_equal(g[0].c, g[1].c);
    assert_int_equal(weft_conn_send(g[0].c, "over tls", 8, WEFT_OP_TEXT), WEFT_SEND_SENT);
    assert_int_equal(weft_conn_send(g[1].c, "twice", 5, WEFT_OP_TEXT), WEFT_SEND_SENT);
    uint64_t dl = ck_now() + 5000;
    while (k.messages < 2 && ck_now() < dl)
        weft_loop_poll(f->loop, 5);
    assert_int_equal(k.messages, 2);
    assert_int_equal(f->ts.opens, 2);
    weft_pool_free(f->pool);
    f->pool = NULL;
    free(k.last);

    memset(&o, 0, sizeof o); /* the system store does not know the test CA */
    struct got bad = acquire_one(f, &o);
    assert_int_equal(bad.err, WEFT_ERR_TLS);
    assert_null(bad.c);
    weft_pool_free(f->pool);
    f->pool = NULL;

    o.tls_insecure = true;
    struct got ok = acquire_one(f, &o);
    assert_int_equal(ok.err, WEFT_OK);
    assert_non_null(ok.c);
    weft_pool_free(f->pool);
    f->pool = NULL;

    o.tls_insecure = false;
    o.tls_cacert_file = "/nonexistent/ca.pem";
    err = 0;
    assert_null(weft_pool_new(f->loop, f->url, &o, 2, &err));
    assert_int_equal(err, WEFT_ERR_TLS);
    assert_non_null(strstr(weft_tls_last_error(), "/nonexistent/ca.pem"));
    err = 0;
    assert_null(weft_pool_new(f->loop, f->url, &o, 0, &err)); /* max_conns 0 */
    assert_int_equal(err, WEFT_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bound_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wss, setup_tls, teardown_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
