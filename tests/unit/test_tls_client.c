/*
 * test_tls_client.c — the client side of net/tls.c (tls_client_new, tls_attach_client,
 * tls_error_text) against a weft TLS server on the same loop: a verified handshake by name and
 * by IP address, a chain through an intermediate CA, and a clear reason for each failure —
 * hostname mismatch, expired, self-signed, unknown CA, a plain server, a refused connection —
 * plus --insecure. Certificates are made at start by tests/integration/tls_certs.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/net.h"

static char certdir[256];

/* certdir/name */
static const char *cpath(const char *name)
{
    static char buf[32][512];
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", certdir, name);
    return buf[k];
}

/* A client socket and what happened to it. */
struct cl {
    struct weft_sock sock; /* first */
    char data[8192];
    size_t len;
    bool established_at_data; /* tls_established when the first bytes came */
    bool eof, freed;
    int err;
    char why[300];
};

static void cl_data(struct weft_sock *s, uint8_t *data, size_t len)
{
    struct cl *c = (struct cl *)s;
    if (c->len == 0) c->established_at_data = tls_established(s);
    size_t n = len < sizeof c->data - 1 - c->len ? len : sizeof c->data - 1 - c->len;
    memcpy(c->data + c->len, data, n);
    c->len += n;
    c->data[c->len] = '\0';
}

static void cl_eof(struct weft_sock *s, int err)
{
    struct cl *c = (struct cl *)s;
    c->eof = true;
    c->err = err;
    tls_error_text(s, err, c->why, sizeof c->why);
    sock_close(s);
}

static void cl_free(struct weft_sock *s)
{
    ((struct cl *)s)->freed = true;
}

static const struct sock_ops cl_ops = {.on_data = cl_data, .on_eof = cl_eof, .on_free = cl_free};

static void hz(struct weft_request *r, void *user)
{
    (void)user;
    weft_request_respond(r, 200, "text/plain", NULL, "ok\n", 3);
}

/* Runs one exchange: a server with cert/key (plain if cert is NULL) on a fresh loop, a client
 * with opts connecting as `host` and asking GET /hz; fills *c when the client is done. */
static void exchange(const char *cert, const char *key, const struct tls_client_opts *opts,
                     const char *host, bool refused, struct cl *c)
{
    memset(c, 0, sizeof *c);
    struct weft_loop *loop = weft_loop_new();
    assert_non_null(loop);
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    if (cert) {
        cfg.tls_cert_file = cpath(cert);
        cfg.tls_key_file = cpath(key);
    }
    int err = 0;
    struct weft_server *srv = weft_server_new(loop, &cfg, &err);
    if (!srv) fail_msg("server: %s %s", weft_strerror(err), weft_tls_last_error());
    assert_int_equal(weft_server_http(srv, "GET", "/hz", hz, NULL), WEFT_OK);
    uint16_t port = weft_server_port(srv);
    if (refused) { /* nobody listens there any more */
        weft_server_free(srv);
        srv = NULL;
    }

    char why[300];
    struct ssl_ctx_st *ctx = tls_client_new(opts, why, sizeof why);
    if (!ctx) fail_msg("tls_client_new: %s", why);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(r == 0 || errno == EINPROGRESS);
    assert_int_equal(sock_attach(loop, &c->sock, fd, &cl_ops), WEFT_OK);
    assert_int_equal(tls_attach_client(&c->sock, ctx, host), WEFT_OK);
    tls_ctx_free(ctx); /* the connection keeps its own reference */
    assert_false(tls_established(&c->sock));
    const char *req = "GET /hz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_int_equal(sock_write(&c->sock, req, strlen(req)), WEFT_OK);
    for (int i = 0; i < 500 && !c->freed; i++)
        weft_loop_poll(loop, 10);
    assert_true(c->freed);
    weft_server_free(srv);
    weft_loop_poll(loop, 0);
    weft_loop_free(loop);
}

/* Expects a completed exchange: the handshake verified, the response read, a clean end. */
static void expect_ok(const struct cl *c)
{
    if (!strstr(c->data, "HTTP/1.1 200") || c->err)
        fail_msg("expected a 200, got err %d (%s), data '%s'", c->err, c->why, c->data);
    assert_true(c->established_at_data);
    assert_non_null(strstr(c->data, "\r\n\r\nok\n"));
}

/* Expects a failure whose reason contains `what`. */
static void expect_fail(const struct cl *c, const char *what)
{
    assert_true(c->eof);
    assert_int_equal(c->len, 0);
    assert_true(c->err != 0);
    if (!strstr(c->why, what)) fail_msg("reason '%s' lacks '%s'", c->why, what);
    printf("    reason: %s\n", c->why);
}

static void test_verified(void **state)
{
    (void)state;
    struct tls_client_opts o = {.cacert_file = cpath("ca.pem")};
    struct cl c;
    exchange("server.pem", "server.key", &o, "localhost", false, &c);
    expect_ok(&c);
    exchange("server.pem", "server.key", &o, "127.0.0.1", false, &c); /* IP SAN */
    expect_ok(&c);
    exchange("server2.pem", "server2.key", &o, "localhost", false, &c); /* chain */
    expect_ok(&c);
}

static void test_hostname_mismatch(void **state)
{
    (void)state;
    struct tls_client_opts o = {.cacert_file = cpath("ca.pem")};
    struct cl c;
    exchange("wronghost.pem", "wronghost.key", &o, "localhost", false, &c);
    expect_fail(&c, "hostname mismatch");
    exchange("server.pem", "server.key", &o, "127.0.0.2", false, &c);
    expect_fail(&c, "hostname mismatch");
    exchange("server.pem", "server.key", &o, "other.localhost", false, &c);
    expect_fail(&c, "hostname mismatch");
}

static void test_expired(void **state)
{
    (void)state;
    struct tls_client_opts o = {.cacert_file = cpath("ca.pem")};
    struct cl c;
    exchange("expired.pem", "expired.key", &o, "localhost", false, &c);
    expect_fail(&c, "certificate expired");
}

static void test_unknown_ca(void **state)
{
    (void)state;
    struct tls_client_opts o = {.cacert_file = cpath("ca.pem")};
    struct cl c;
    exchange("selfsigned.pem", "selfsigned.key", &o, "localhost", false, &c);
    expect_fail(&c, "self-signed");
    struct tls_client_opts other = {.cacert_file = cpath("selfsigned.pem")};
    exchange("server.pem", "server.key", &other, "localhost", false, &c);
    expect_fail(&c, "unknown CA");
    exchange("server.pem", "server.key", NULL, "localhost", false, &c); /* system store */
    expect_fail(&c, "unknown CA");
}

static void test_insecure(void **state)
{
    (void)state;
    struct tls_client_opts o = {.insecure = true};
    struct cl c;
    exchange("selfsigned.pem", "selfsigned.key", &o, "localhost", false, &c);
    expect_ok(&c);
    exchange("expired.pem", "expired.key", &o, "wrong.name", false, &c);
    expect_ok(&c);
}

static void test_not_tls(void **state)
{
    (void)state;
    struct tls_client_opts o = {.insecure = true};
    struct cl c;
    exchange(NULL, NULL, &o, "localhost", false, &c); /* a plain server answers 400 */
    expect_fail(&c, "TLS handshake failed");
    exchange("server.pem", "server.key", &o, "localhost", true, &c);
    expect_fail(&c, "refused");
    assert_int_equal(c.err, ECONNREFUSED);
}

static void test_bad_options(void **state)
{
    (void)state;
    char why[300];
    struct tls_client_opts o = {.cacert_file = cpath("missing.pem")};
    assert_null(tls_client_new(&o, why, sizeof why));
    assert_non_null(strstr(why, "No such file"));
    o.cacert_file = cpath("garbage.pem");
    assert_null(tls_client_new(&o, why, sizeof why));
    assert_non_null(strstr(why, "garbage.pem"));
    struct ssl_ctx_st *ctx = tls_client_new(NULL, why, sizeof why);
    assert_non_null(ctx);
    struct weft_sock s;
    memset(&s, 0, sizeof s);
    s.io.fd = -1;
    assert_int_equal(tls_attach_client(&s, ctx, ""), WEFT_ERR_INVAL);
    assert_null(s.ssl);
    tls_ctx_free(ctx);
}

/* ----------------------------------------------------------------- weft_connect over wss */

struct wc {
    bool opened, ended, echoed;
    int err;
    char reason[320];
};

static void wc_open(struct weft_conn *c)
{
    weft_conn_send(c, "over wss", 8, WEFT_OP_TEXT);
}

static void wc_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)binary;
    struct wc *w = weft_client_user(weft_conn_client(c));
    w->echoed = len == 8 && memcmp(data, "over wss", 8) == 0;
    weft_client_close(weft_conn_client(c), 1000, NULL);
}

static void wc_error(struct weft_client *cl, int err, const char *reason, int status)
{
    (void)status;
    struct wc *w = weft_client_user(cl);
    if (!w->err) {
        w->err = err;
        snprintf(w->reason, sizeof w->reason, "%s", reason);
    }
}

static void wc_end(struct weft_client *cl)
{
    ((struct wc *)weft_client_user(cl))->ended = true;
}

static void echo_msg(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* The library client on wss://HOST:port/echo against a server with cert/key. */
static void wss_connect(const char *cert, const char *key, const char *host,
                        const char *cacert, bool insecure, struct wc *w)
{
    memset(w, 0, sizeof *w);
    struct weft_loop *loop = weft_loop_new();
    assert_non_null(loop);
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    cfg.tls_cert_file = cpath(cert);
    cfg.tls_key_file = cpath(key);
    int err = 0;
    struct weft_server *srv = weft_server_new(loop, &cfg, &err);
    assert_non_null(srv);
    static const struct weft_ws_handlers echo = {.on_message = echo_msg};
    assert_int_equal(weft_server_ws(srv, "/echo", &echo, NULL), WEFT_OK);
    char url[200];
    snprintf(url, sizeof url, "wss://%s:%u/echo", host, (unsigned)weft_server_port(srv));
    struct weft_client_options o = {
        .tls_cacert_file = cacert ? cpath(cacert) : NULL,
        .tls_insecure = insecure,
        .handlers = {.on_open = wc_open, .on_message = wc_message},
        .user = w,
        .on_error = wc_error,
        .on_end = wc_end,
    };
    struct weft_client *cl = weft_connect(loop, url, &o, &err);
    if (!cl) fail_msg("weft_connect: %s %s", weft_strerror(err), weft_tls_last_error());
    for (int i = 0; i < 500 && !w->ended; i++)
        weft_loop_poll(loop, 10);
    assert_true(w->ended);
    weft_client_free(cl);
    weft_server_free(srv);
    for (int i = 0; i < 5; i++) /* deferred frees (the client's connect watchers) */
        weft_loop_poll(loop, 10);
    weft_loop_free(loop);
    if (w->err) printf("    on_error %s: %s\n", weft_strerror(w->err), w->reason);
}

static void test_weft_connect_wss(void **state)
{
    (void)state;
    struct wc w;
    wss_connect("server.pem", "server.key", "localhost", "ca.pem", false, &w);
    assert_true(w.echoed);
    assert_int_equal(w.err, 0);
    wss_connect("server2.pem", "server2.key", "127.0.0.1", "ca.pem", false, &w);
    assert_true(w.echoed);
    wss_connect("selfsigned.pem", "selfsigned.key", "localhost", NULL, true, &w);
    assert_true(w.echoed);

    wss_connect("wronghost.pem", "wronghost.key", "localhost", "ca.pem", false, &w);
    assert_false(w.echoed);
    assert_int_equal(w.err, WEFT_ERR_TLS);
    assert_non_null(strstr(w.reason, "hostname mismatch"));
    wss_connect("expired.pem", "expired.key", "localhost", "ca.pem", false, &w);
    assert_int_equal(w.err, WEFT_ERR_TLS);
    assert_non_null(strstr(w.reason, "expired"));
    wss_connect("selfsigned.pem", "selfsigned.key", "localhost", "ca.pem", false, &w);
    assert_int_equal(w.err, WEFT_ERR_TLS);
    assert_non_null(strstr(w.reason, "self-signed"));
    wss_connect("server.pem", "server.key", "localhost", NULL, false, &w); /* system store */
    assert_int_equal(w.err, WEFT_ERR_TLS);
    assert_non_null(strstr(w.reason, "unknown CA"));

    int err = 0;
    struct weft_client_options o = {.tls_cacert_file = cpath("missing.pem")};
    struct weft_loop *loop = weft_loop_new();
    assert_null(weft_connect(loop, "wss://localhost:1/", &o, &err));
    assert_int_equal(err, WEFT_ERR_TLS);
    assert_non_null(strstr(weft_tls_last_error(), "No such file"));
    weft_loop_free(loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(certdir, sizeof certdir, "/tmp/weft-tlsc-XXXXXX");
    if (!mkdtemp(certdir)) {
        perror("mkdtemp");
        return 1;
    }
    char src[512], cmd[1200];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(cmd, sizeof cmd, "sh '%s/../integration/tls_certs.sh' '%s'", dirname(src),
             certdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the test certificates with: %s\n", cmd);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified),     cmocka_unit_test(test_hostname_mismatch),
        cmocka_unit_test(test_expired),      cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_insecure),     cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_bad_options), cmocka_unit_test(test_weft_connect_wss),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", certdir);
    return failed;
}
