/*
 * test_tls.c — wss:// end to end: an in-process server with tls_cert_file/tls_key_file and
 * raw TLS clients (OpenSSL, verifying against the test CA with the hostname "localhost").
 * Certificates are made at start by tls_certs.sh (the openssl command) in a temporary
 * directory, removed at the end.
 *
 * Echo of every length class, many small messages at once (merged records), a slow reader
 * (SSL_write blocked, then drained), rooms, the close handshake ending with close_notify,
 * ALPN, the TLS version floor, a plain-text client on the TLS port, certificate reload seen by
 * a new connection while an old one stays open (served serials compared), and bad files at
 * start and at reload.
 */
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"
#include "rawclient.h"

#define MIB (1024u * 1024u)

static char certdir[256]; /* the temporary directory of the certificates */

/* certdir/name */
static const char *cpath(const char *name)
{
    static char buf[32][512];
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", certdir, name);
    return buf[k];
}

/* Copies certdir/from to certdir/to (the files the server serves, replaced for reloads). */
static void copy_file(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", cpath(from), cpath(to));
    assert_int_equal(system(cmd), 0);
}

struct fx {
    struct ts t;
    struct rc c[4];
    SSL_CTX *ctx; /* verifying client context */
    uint8_t *buf, *buf2;
};

/* "/room": every member gets what any member sends (except the sender). */
static void room_open(struct weft_conn *c)
{
    ts_record_open(c);
    TS_CHECK(weft_subscribe(c, "room", 4) == WEFT_OK);
}

static void room_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_publish(weft_conn_server(c), "room", 4, data, len,
                 binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
}

static const struct weft_ws_handlers room_handlers = {
    .on_open = room_open,
    .on_message = room_message,
    .on_close = ts_record_close,
};

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
    TS_CHECK(weft_server_ws(s, "/room", &room_handlers, NULL) == WEFT_OK);
}

/* A client context trusting only the test CA, checking the name "localhost". */
static SSL_CTX *client_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, cpath(ca), NULL), 1);
    X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), "localhost", 0);
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < 4; i++)
        rc_close(&f->c[i]);
    ts_stop(&f->t);
    SSL_CTX_free(f->ctx);
    free(f->buf);
    free(f->buf2);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (size_t i = 0; i < 4; i++)
        f->c[i].fd = -1;
    copy_file("server.pem", "served.pem");
    copy_file("server.key", "served.key");
    f->t.cfg.tls_cert_file = cpath("served.pem");
    f->t.cfg.tls_key_file = cpath("served.key");
    f->t.cfg.max_message = 16 * MIB + 4096;
    f->t.cfg.max_backpressure = 64 * MIB;
    f->t.setup = routes;
    f->ctx = client_ctx("ca.pem");
    *state = f;
    if (ts_start(&f->t) < 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* The serial number of the certificate the server presented on c. */
static long peer_serial(struct rc *c)
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    assert_non_null(x);
    long v = ASN1_INTEGER_get(X509_get0_serialNumber(x));
    X509_free(x);
    return v;
}

/* Sends a message and expects the same bytes back. */
static void echo_check(struct rc *c, uint8_t op, const uint8_t *data, size_t len)
{
    assert_int_equal(rc_send(c, op, data, len), 0);
    assert_int_equal(rc_recv(c, 30000), RC_MESSAGE);
    assert_int_equal(c->last.opcode, op);
    assert_int_equal(c->last.len, len);
    if (len) assert_memory_equal(c->last.data, data, len);
}

/* ----------------------------------------------------------------- tests */

/* Echo over wss of every length class, text and binary; verified certificate, ALPN http/1.1,
 * TLS 1.2 or 1.3. */
static void test_echo_sizes(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_tls_open(c, f->t.port, "/echo", f->ctx, "localhost"), 0);
    assert_int_equal(SSL_get_verify_result(c->ssl), X509_V_OK);
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    assert_int_equal(alen, 8);
    assert_memory_equal(alpn, "http/1.1", 8);
    assert_true(SSL_version(c->ssl) >= TLS1_2_VERSION);
    assert_int_equal(peer_serial(c), 1001);

    static const size_t sizes[] = {0, 1, 125, 126, 16383, 16384, 16385, 65535, 65536, MIB,
                                   4 * MIB + 7};
    f->buf = malloc(4 * MIB + 7);
    assert_non_null(f->buf);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        rc_fill(f->buf, sizes[i], (uint32_t)i, true);
        echo_check(c, WEFT_OP_TEXT, f->buf, sizes[i]);
        rc_fill(f->buf, sizes[i], (uint32_t)i + 100, false);
        echo_check(c, WEFT_OP_BINARY, f->buf, sizes[i]);
    }
}

/* 3000 small messages written at once come back complete and in order (the server merges
 * queued frames into records). */
static void test_many_small(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_tls_open(c, f->t.port, "/echo", f->ctx, "localhost"), 0);
    enum { N = 3000 };
    f->buf = malloc(N * 64);
    size_t off = 0;
    for (unsigned i = 0; i < N; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "m%u", i);
        long w = weft_frame_encode(f->buf + off, N * 64 - off, WEFT_ROLE_CLIENT, &c->rnd,
                                   WEFT_OP_TEXT, true, 0, msg, (size_t)n);
        assert_true(w > 0);
        off += (size_t)w;
    }
    assert_int_equal(rc_write(c, f->buf, off, 10000), 0);
    for (unsigned i = 0; i < N; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "m%u", i);
        assert_int_equal(rc_recv(c, 10000), RC_MESSAGE);
        assert_int_equal(c->last.len, (size_t)n);
        assert_memory_equal(c->last.data, msg, (size_t)n);
    }
}

/* A reader that does not read: the server's SSL_write blocks (WANT_WRITE), the queue grows,
 * and everything arrives intact once the client reads. */
static void test_slow_reader(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_connect(c, f->t.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_tls_handshake(c, f->ctx, "localhost", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(c, f->t.port, "/echo", NULL, RC_TIMEOUT_MS), 101);
    enum { N = 64, SZ = 128 * 1024 };
    f->buf = malloc(SZ);
    for (unsigned i = 0; i < N; i++) {
        rc_fill(f->buf, SZ, i, false);
        assert_int_equal(rc_send(c, WEFT_OP_BINARY, f->buf, SZ), 0);
    }
    usleep(200 * 1000);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.messages_in, N); /* the server read everything while blocked */
    for (unsigned i = 0; i < N; i++) {
        rc_fill(f->buf, SZ, i, false);
        assert_int_equal(rc_recv(c, 30000), RC_MESSAGE);
        assert_int_equal(c->last.len, SZ);
        assert_memory_equal(c->last.data, f->buf, SZ);
    }
}

/* Rooms over wss: what one member sends reaches the two others, not itself. */
static void test_rooms(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rc_tls_open(&f->c[i], f->t.port, "/room", f->ctx, "localhost"), 0);
    assert_int_equal(rc_send(&f->c[1], WEFT_OP_TEXT, "hello room", 10), 0);
    for (int i = 0; i < 3; i += 2) {
        assert_int_equal(rc_recv(&f->c[i], 5000), RC_MESSAGE);
        assert_int_equal(f->c[i].last.len, 10);
        assert_memory_equal(f->c[i].last.data, "hello room", 10);
    }
    assert_int_equal(rc_recv(&f->c[1], 300), RC_TIMEOUT);
}

/* The close handshake over TLS: close echoed, then close_notify before the FIN, and on_close
 * clean on the server. */
static void test_close_notify(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_tls_open(c, f->t.port, "/echo", f->ctx, "localhost"), 0);
    uint64_t id = ts_last_open(&f->t);
    assert_int_equal(rc_send_close(c, 1000, "bye"), 0);
    assert_int_equal(rc_recv(c, 5000), RC_CLOSE);
    assert_int_equal(c->last.close_code, 1000);
    assert_int_equal(rc_recv(c, 5000), RC_EOF);
    assert_true(c->tls_notify);
    assert_true(ts_wait_closes(&f->t, 1, 5000));
    struct ts_close cl;
    assert_true(ts_find_close(&f->t, id, &cl));
    assert_int_equal(cl.code, 1000);
    assert_true(cl.clean);
}

/* ALPN: a client offering only h2 gets no ALPN (and a working connection); TLS 1.2 alone
 * works; TLS 1.1 is refused. */
static void test_versions_alpn(void **state)
{
    struct fx *f = *state;
    SSL_CTX *h2 = client_ctx("ca.pem");
    static const unsigned char only_h2[] = "\x02h2";
    SSL_CTX_set_alpn_protos(h2, only_h2, sizeof only_h2 - 1);
    int r = rc_tls_open(&f->c[0], f->t.port, "/echo", h2, "localhost");
    SSL_CTX_free(h2);
    assert_int_equal(r, 0);
    const unsigned char *alpn = NULL;
    unsigned alen = 1;
    SSL_get0_alpn_selected(f->c[0].ssl, &alpn, &alen);
    assert_int_equal(alen, 0);
    echo_check(&f->c[0], WEFT_OP_TEXT, (const uint8_t *)"x", 1);

    SSL_CTX *v12 = client_ctx("ca.pem");
    SSL_CTX_set_max_proto_version(v12, TLS1_2_VERSION);
    r = rc_tls_open(&f->c[1], f->t.port, "/echo", v12, "localhost");
    SSL_CTX_free(v12);
    assert_int_equal(r, 0);
    assert_int_equal(SSL_version(f->c[1].ssl), TLS1_2_VERSION);
    echo_check(&f->c[1], WEFT_OP_TEXT, (const uint8_t *)"y", 1);

    SSL_CTX *v11 = client_ctx("ca.pem");
    SSL_CTX_set_security_level(v11, 0);
    SSL_CTX_set_cipher_list(v11, "ALL:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(v11, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(v11, TLS1_1_VERSION);
    assert_int_equal(rc_connect(&f->c[2], f->t.port, 0, RC_TIMEOUT_MS), 0);
    r = rc_tls_handshake(&f->c[2], v11, "localhost", RC_TIMEOUT_MS);
    SSL_CTX_free(v11);
    ERR_clear_error();
    assert_int_equal(r, -1);
}

/* A client speaking plain HTTP to the TLS port is dropped; the server carries on. */
static void test_plain_client(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_connect(c, f->t.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_write_str(c, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n\r\n", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_wait_eof(c, 5000, NULL), 0);
    /* A client that closes in the middle of its handshake. */
    assert_int_equal(rc_connect(&f->c[1], f->t.port, 0, RC_TIMEOUT_MS), 0);
    SSL *ssl = SSL_new(f->ctx);
    SSL_set_fd(ssl, f->c[1].fd);
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl); /* sends the ClientHello, does not wait */
    SSL_free(ssl);
    ERR_clear_error();
    rc_close(&f->c[1]);
    assert_int_equal(rc_tls_open(&f->c[2], f->t.port, "/echo", f->ctx, "localhost"), 0);
    echo_check(&f->c[2], WEFT_OP_TEXT, (const uint8_t *)"still here", 10);
    struct weft_server_stats st;
    ts_stats(&f->t, &st);
    assert_int_equal(st.upgrades_total, 1);
}

struct reload_call {
    int r;
    char why[320];
};

/* On the loop thread: weft_server_reload_tls, with the reason of a failure. */
static void do_reload(struct ts *t, void *arg)
{
    struct reload_call *rc = arg;
    rc->r = weft_server_reload_tls(t->server);
    snprintf(rc->why, sizeof rc->why, "%s", rc->r == WEFT_OK ? "" : weft_tls_last_error());
}

/* Certificate reload: a new connection gets the new certificate (a chain through an
 * intermediate CA), an open one keeps working on the old; a bad file at reload keeps the
 * current certificate and says why. */
static void test_reload(void **state)
{
    struct fx *f = *state;
    struct rc *old = &f->c[0];
    assert_int_equal(rc_tls_open(old, f->t.port, "/echo", f->ctx, "localhost"), 0);
    assert_int_equal(peer_serial(old), 1001);

    copy_file("server2.pem", "served.pem");
    copy_file("server2.key", "served.key");
    struct reload_call rl;
    assert_int_equal(ts_call(&f->t, do_reload, &rl), 0);
    assert_int_equal(rl.r, WEFT_OK);

    struct rc *fresh = &f->c[1];
    assert_int_equal(rc_tls_open(fresh, f->t.port, "/echo", f->ctx, "localhost"), 0);
    assert_int_equal(peer_serial(fresh), 1002);
    assert_int_equal(SSL_get_verify_result(fresh->ssl), X509_V_OK);
    echo_check(fresh, WEFT_OP_TEXT, (const uint8_t *)"new", 3);
    echo_check(old, WEFT_OP_TEXT, (const uint8_t *)"old", 3); /* still open */
    assert_int_equal(peer_serial(old), 1001);

    /* A broken certificate file: error, the current certificate stays. */
    copy_file("garbage.pem", "served.pem");
    assert_int_equal(ts_call(&f->t, do_reload, &rl), 0);
    assert_int_equal(rl.r, WEFT_ERR_TLS);
    assert_non_null(strstr(rl.why, "served.pem"));
    /* A key that does not match the certificate. */
    copy_file("server.pem", "served.pem");
    copy_file("other.key", "served.key");
    assert_int_equal(ts_call(&f->t, do_reload, &rl), 0);
    assert_int_equal(rl.r, WEFT_ERR_TLS);
    assert_non_null(strstr(rl.why, "does not match"));
    /* A missing file. */
    unlink(cpath("served.key"));
    assert_int_equal(ts_call(&f->t, do_reload, &rl), 0);
    assert_int_equal(rl.r, WEFT_ERR_TLS);
    assert_non_null(strstr(rl.why, "No such file"));

    assert_int_equal(rc_tls_open(&f->c[2], f->t.port, "/echo", f->ctx, "localhost"), 0);
    assert_int_equal(peer_serial(&f->c[2]), 1002);
    echo_check(&f->c[2], WEFT_OP_TEXT, (const uint8_t *)"kept", 4);
    echo_check(old, WEFT_OP_TEXT, (const uint8_t *)"old2", 4);
}

/* Bad files at start: weft_server_new fails with WEFT_ERR_TLS and a reason naming the
 * problem. */
static void test_bad_files_at_start(void **state)
{
    (void)state;
    struct weft_loop *loop = weft_loop_new();
    assert_non_null(loop);
    struct {
        const char *cert, *key, *expect;
    } cases[] = {
        {"missing.pem", "server.key", "No such file"},
        {"server.pem", "missing.key", "No such file"},
        {"garbage.pem", "server.key", "certificate"},
        {"server.pem", "garbage.pem", "private key"},
        {"server.pem", "other.key", "does not match"},
        {"server.pem", NULL, "both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
        cfg.tls_cert_file = cpath(cases[i].cert);
        cfg.tls_key_file = cases[i].key ? cpath(cases[i].key) : NULL;
        int err = 0;
        struct weft_server *s = weft_server_new(loop, &cfg, &err);
        if (s) weft_server_free(s);
        assert_null(s);
        assert_int_equal(err, WEFT_ERR_TLS);
        if (!strstr(weft_tls_last_error(), cases[i].expect))
            fail_msg("case %zu: '%s' lacks '%s'", i, weft_tls_last_error(), cases[i].expect);
    }
    assert_string_equal(weft_strerror(WEFT_ERR_TLS), "TLS error");
    weft_loop_free(loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(certdir, sizeof certdir, "/tmp/weft-tls-XXXXXX");
    if (!mkdtemp(certdir)) {
        perror("mkdtemp");
        return 1;
    }
    char src[512], cmd[1200];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(cmd, sizeof cmd, "sh '%s/tls_certs.sh' '%s'", dirname(src), certdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the test certificates with: %s\n", cmd);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_alpn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test(test_bad_files_at_start),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", certdir);
    return failed;
}
