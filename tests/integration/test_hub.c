/*
 * test_hub.c — the production server of `weft serve` end to end: the real program is spawned
 * (--host 127.0.0.1 --port 0, JSON logs to a temporary file read for "listening on
 * 127.0.0.1:PORT") and driven with raw clients over loopback.
 *
 * Covered: the /hub protocol with several clients (join/leave/publish/presence/ping), history
 * recovery after a disconnect (in order, none twice), every bad input answered with its
 * documented error code while the connection stays open — these three with --workers 1 (the
 * in-process paths) and --workers 2 (rooms owned by one worker) — Origin (403), JWT (valid in
 * each carrier, expired, wrong signature, malformed, room claim, expiry close, revoked after a
 * file change: 401 and 1008), per-IP and global limits (503 + Retry-After), the rate limit
 * (1008), the handshake rate per IP (429 + Retry-After, on 1 and 2 workers), /metrics against
 * generated traffic (exact counts in and out, history bytes, 400/403/414/426 handshakes), slow
 * consumers (drops, or a close, counted), /readyz (200, 503 at the limit), a log line per
 * connection event carrying the X-Request-Id of the 101 or of the refusal (414 too), library
 * lines about a connection carrying it as well, and the configuration precedence
 * (flag > WEFT_* > file) through --print-config.
 *
 * Every path kills and reaps exactly the PID it started (teardown, SIGALRM guard).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubjson.h"
#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NC 8
#define SECRET "test-secret-0123456789abcdef"

struct fx {
    struct sp sp;        /* the weft serve of the test */
    char tmp[64];        /* a scratch file (revocation list, config), "" if none */
    const char *workers; /* --workers given to every spawn, NULL: the default (one per core) */
    struct rc c[NC];
};

/* The fixture. A test registered with WORKERS_TEST gets its --workers value as the initial
 * state (a string), so the same test runs on one worker (the in-process /hub paths of
 * proto.c) and on two (rooms owned by one worker, requests forwarded between threads). */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->workers = *state;
    for (int i = 0; i < NC; i++)
        f->c[i].fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (int i = 0; i < NC; i++)
        rc_close(&f->c[i]);
    sp_kill(&f->sp);
    if (f->tmp[0]) unlink(f->tmp);
    free(f);
    return 0;
}

/* Starts weft serve with extra options (NULL-terminated) and --workers f->workers (if set),
 * and waits for its port. */
static void spawn(struct fx *f, const char *const *extra)
{
    const char *args[32];
    size_t n = 0;
    if (f->workers) {
        args[n++] = "--workers";
        args[n++] = f->workers;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n < sizeof args / sizeof args[0] - 1);
        args[n++] = extra[i];
    }
    args[n] = NULL;
    sp_start(&f->sp, WEFT_BIN, "hub", args);
}

/* Ends a test: closes the clients, stops the server with SIGTERM and asserts it exited 0
 * with no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan) in its log. */
static void finish(struct fx *f)
{
    for (int i = 0; i < NC; i++)
        rc_close(&f->c[i]);
    sp_stop(&f->sp);
}

/* Opens c on path with extra headers / protocols; returns the HTTP status (101 = open). */
static int open_ex(struct fx *f, struct rc *c, const char *path, const char *headers,
                   const char *protocols, struct rc_http *resp)
{
    if (rc_connect(c, f->sp.port, 0, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake_ex(c, f->sp.port, path, headers, protocols, resp, RC_TIMEOUT_MS);
}

/* Opens a /hub connection and returns its id (the X-Request-Id of the 101) in id. */
static void hub_open(struct fx *f, struct rc *c, char *id, size_t cap)
{
    struct rc_http r;
    int st = open_ex(f, c, "/hub", NULL, NULL, &r);
    if (st != 101) sp_dump_log(&f->sp);
    assert_int_equal(st, 101);
    char tmp[128];
    assert_true(rc_http_header(&r, "X-Request-Id", id ? id : tmp, id ? cap : sizeof tmp));
}

/* Sends a request and expects an error reply with code; checks the id echo when given. */
static void expect_error(struct rc *c, const char *request, const char *code)
{
    hj_send(c, request);
    json_t *j = hj_expect_type(c, "error");
    const char *got = json_string_value(json_object_get(j, "code"));
    if (!got || strcmp(got, code))
        fail_msg("for %s: expected error %s, got %s", request, code, got ? got : "(none)");
    assert_true(json_is_string(json_object_get(j, "reason")));
    assert_true(strlen(json_string_value(json_object_get(j, "reason"))) > 0);
    json_decref(j);
}

/* Mints an HS256 token. exp_delta: seconds from now (0: no exp); jti/rooms may be NULL. */
static char *mint(const char *secret, const char *sub, long exp_delta, const char *jti,
                  const char *rooms_json)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    if (sub) jwt_add_grant(jwt, "sub", sub);
    if (exp_delta) jwt_add_grant_int(jwt, "exp", (long)time(NULL) + exp_delta);
    if (jti) jwt_add_grant(jwt, "jti", jti);
    if (rooms_json) {
        char buf[256];
        snprintf(buf, sizeof buf, "{\"rooms\":%s}", rooms_json);
        assert_int_equal(jwt_add_grants_json(jwt, buf), 0);
    }
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* ------------------------------------------------------------------ /hub protocol */

/* join/leave/publish/presence/ping with three clients in two rooms. */
static void test_hub_rooms(void **state)
{
    struct fx *f = *state;
    spawn(f, NULL);
    struct rc *a = &f->c[0], *b = &f->c[1], *c = &f->c[2];
    char ida[80], idb[80], idc[80];
    hub_open(f, a, ida, sizeof ida);
    hub_open(f, b, idb, sizeof idb);
    hub_open(f, c, idc, sizeof idc);
    assert_string_not_equal(ida, idb);

    hj_send(a, "{\"type\":\"join\",\"room\":\"r1\",\"id\":1}");
    json_t *j = hj_expect_type(a, "joined");
    assert_string_equal(hj_str(j, "room"), "r1");
    assert_int_equal(hj_int(j, "seq"), 0);
    assert_int_equal(hj_int(j, "members"), 1);
    assert_int_equal(hj_int(j, "id"), 1);
    json_decref(j);
    hj_send(b, "{\"type\":\"join\",\"room\":\"r1\",\"id\":\"b\"}");
    j = hj_expect_type(b, "joined");
    assert_int_equal(hj_int(j, "members"), 2);
    assert_string_equal(hj_str(j, "id"), "b");
    json_decref(j);
    hj_send(c, "{\"type\":\"join\",\"room\":\"r2\"}");
    json_decref(hj_expect_type(c, "joined"));

    hj_send(a, "{\"type\":\"publish\",\"room\":\"r1\",\"data\":{\"x\":[1,\"two\"]},\"id\":7}");
    j = hj_expect_type(a, "published");
    assert_int_equal(hj_int(j, "seq"), 1);
    assert_int_equal(hj_int(j, "id"), 7);
    json_decref(j);
    j = hj_expect_type(b, "message");
    assert_string_equal(hj_str(j, "room"), "r1");
    assert_int_equal(hj_int(j, "seq"), 1);
    assert_string_equal(hj_str(j, "from"), ida);
    json_t *want = json_loads("{\"x\":[1,\"two\"]}", 0, NULL);
    assert_true(json_equal(json_object_get(j, "data"), want));
    json_decref(want);
    json_decref(j);
    assert_int_equal(rc_recv(c, 200), RC_TIMEOUT); /* other room */
    assert_int_equal(rc_recv(a, 50), RC_TIMEOUT);  /* not to the sender */

    hj_send(c, "{\"type\":\"presence\",\"room\":\"r1\"}");
    j = hj_expect_type(c, "presence");
    assert_int_equal(hj_int(j, "count"), 2);
    json_t *m = json_object_get(j, "members");
    assert_int_equal(json_array_size(m), 2);
    bool sa = false, sb = false;
    for (size_t i = 0; i < 2; i++) {
        const char *s = json_string_value(json_array_get(m, i));
        sa |= s && !strcmp(s, ida);
        sb |= s && !strcmp(s, idb);
    }
    assert_true(sa && sb);
    json_decref(j);

    hj_send(b, "{\"type\":\"leave\",\"room\":\"r1\"}");
    json_decref(hj_expect_type(b, "left"));
    hj_send(a, "{\"type\":\"publish\",\"room\":\"r1\",\"data\":\"after\"}");
    j = hj_expect_type(a, "published");
    assert_int_equal(hj_int(j, "seq"), 2);
    json_decref(j);
    assert_int_equal(rc_recv(b, 200), RC_TIMEOUT);

    hj_send(c, "{\"type\":\"ping\",\"id\":[1]}");
    j = hj_expect_type(c, "pong");
    assert_true(json_is_array(json_object_get(j, "id")));
    json_decref(j);
    finish(f);
}

/* A client misses messages while disconnected and recovers them, in order, none twice: by
 * join with "since", and by a history request; a too old "since" is a history_gap. */
static void test_hub_history_recovery(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--history-size", "5", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1];
    hub_open(f, a, NULL, 0);
    hub_open(f, b, NULL, 0);
    hj_send(a, "{\"type\":\"join\",\"room\":\"h\"}");
    json_decref(hj_expect_type(a, "joined"));
    hj_send(b, "{\"type\":\"join\",\"room\":\"h\"}");
    json_decref(hj_expect_type(b, "joined"));
    char msg[128];
    for (int i = 1; i <= 3; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"room\":\"h\",\"data\":%d}", i);
        hj_send(a, msg);
        json_decref(hj_expect_type(a, "published"));
        json_t *j = hj_expect_type(b, "message");
        assert_int_equal(hj_int(j, "seq"), i);
        json_decref(j);
    }
    uint64_t last_seen = 3;
    rc_send_close(b, 1000, NULL);
    rc_close(b);
    for (int i = 4; i <= 7; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"room\":\"h\",\"data\":%d}", i);
        hj_send(a, msg);
        json_decref(hj_expect_type(a, "published"));
    }
    hub_open(f, b, NULL, 0);
    snprintf(msg, sizeof msg, "{\"type\":\"join\",\"room\":\"h\",\"since\":%llu}",
             (unsigned long long)last_seen);
    hj_send(b, msg);
    json_t *j = hj_expect_type(b, "joined");
    assert_int_equal(hj_int(j, "seq"), 7);
    json_decref(j);
    for (int i = 4; i <= 7; i++) {
        j = hj_expect_type(b, "message");
        assert_int_equal(hj_int(j, "seq"), i);
        assert_int_equal(json_integer_value(json_object_get(j, "data")), i);
        json_decref(j);
    }
    assert_int_equal(rc_recv(b, 300), RC_TIMEOUT); /* none twice */
    /* Live delivery continues after the recovery. */
    hj_send(a, "{\"type\":\"publish\",\"room\":\"h\",\"data\":8}");
    json_decref(hj_expect_type(a, "published"));
    j = hj_expect_type(b, "message");
    assert_int_equal(hj_int(j, "seq"), 8);
    json_decref(j);

    /* history since 5: 6, 7, 8 in order (kept: 4..8). */
    hj_send(b, "{\"type\":\"history\",\"room\":\"h\",\"since\":5,\"id\":\"h1\"}");
    j = hj_expect_type(b, "history");
    assert_string_equal(hj_str(j, "id"), "h1");
    assert_int_equal(hj_int(j, "seq"), 8);
    json_t *ms = json_object_get(j, "messages");
    assert_int_equal(json_array_size(ms), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(ms, i), "seq")),
                         6 + (int)i);
    json_decref(j);
    /* since 2: message 3 is gone (only 5 kept) */
    expect_error(b, "{\"type\":\"history\",\"room\":\"h\",\"since\":2}", "history_gap");
    expect_error(b, "{\"type\":\"history\",\"room\":\"h\",\"since\":99}", "history_gap");
    hj_send(b, "{\"type\":\"history\",\"room\":\"h\",\"since\":3}");
    j = hj_expect_type(b, "history");
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 5);
    json_decref(j);
    /* join with a too old "since" (already a member): joined, then history_gap, no message */
    hj_send(b, "{\"type\":\"join\",\"room\":\"h\",\"since\":1,\"id\":4}");
    j = hj_expect_type(b, "joined");
    assert_int_equal(hj_int(j, "seq"), 8);
    json_decref(j);
    j = hj_expect_type(b, "error");
    assert_string_equal(hj_str(j, "code"), "history_gap");
    assert_int_equal(hj_int(j, "id"), 4);
    json_decref(j);
    assert_int_equal(rc_recv(b, 200), RC_TIMEOUT);
    finish(f);
}

/* Every bad input gets its documented error and the connection stays open. */
static void test_hub_bad_input(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-rooms", "2", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0];
    hub_open(f, a, NULL, 0);
    char longroom[200] = "{\"type\":\"join\",\"room\":\"";
    size_t n = strlen(longroom);
    memset(longroom + n, 'x', 129);
    strcpy(longroom + n + 129, "\"}");
    struct {
        const char *in, *code;
    } cases[] = {
        {"not json", "bad_json"},
        {"{\"type\":\"join\",", "bad_json"},
        {"[1,2]", "not_object"},
        {"\"join\"", "not_object"},
        {"{}", "bad_field"},
        {"{\"type\":5}", "bad_field"},
        {"{\"type\":\"nope\"}", "unknown_type"},
        {"{\"type\":\"join\"}", "bad_field"},
        {"{\"type\":\"join\",\"room\":5}", "bad_field"},
        {longroom, "bad_room"},
        {"{\"type\":\"join\",\"room\":\"a b\"}", "bad_room"},
        {"{\"type\":\"join\",\"room\":\"\"}", "bad_room"},
        {"{\"type\":\"join\",\"room\":\"x\",\"since\":-1}", "bad_field"},
        {"{\"type\":\"publish\",\"room\":\"x\"}", "bad_field"},
        {"{\"type\":\"publish\",\"room\":\"x\",\"data\":1}", "not_joined"},
        {"{\"type\":\"leave\",\"room\":\"x\"}", "not_joined"},
        {"{\"type\":\"history\",\"room\":\"x\"}", "bad_field"},
        {"{\"type\":\"history\",\"room\":\"x\",\"since\":\"1\"}", "bad_field"},
        {"{\"type\":\"auth\"}", "bad_field"},
        {"{\"type\":\"auth\",\"token\":\"x\"}", "bad_token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(a, cases[i].in, cases[i].code);
    /* The id of a bad request is echoed. */
    hj_send(a, "{\"type\":\"nope\",\"id\":\"q1\"}");
    json_t *j = hj_expect_type(a, "error");
    assert_string_equal(hj_str(j, "code"), "unknown_type");
    assert_string_equal(hj_str(j, "id"), "q1");
    json_decref(j);
    /* A binary message is not JSON text. */
    assert_int_equal(rc_send(a, WEFT_OP_BINARY, "{}", 2), 0);
    j = hj_expect_type(a, "error");
    assert_string_equal(hj_str(j, "code"), "bad_json");
    json_decref(j);
    /* Too many rooms (--max-rooms 2). */
    hj_send(a, "{\"type\":\"join\",\"room\":\"r1\"}");
    json_decref(hj_expect_type(a, "joined"));
    hj_send(a, "{\"type\":\"join\",\"room\":\"r2\"}");
    json_decref(hj_expect_type(a, "joined"));
    expect_error(a, "{\"type\":\"join\",\"room\":\"r3\"}", "too_many_rooms");
    /* Still open and working. */
    hj_send(a, "{\"type\":\"ping\"}");
    json_decref(hj_expect_type(a, "pong"));
    finish(f);
}

/* ------------------------------------------------------------------ security */

static void test_hub_origin(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--allow-origin", "https://good.example", "--allow-origin",
                                       "*.trusted.example", NULL};
    spawn(f, args);
    struct rc_http r;
    assert_int_equal(open_ex(f, &f->c[0], "/hub", "Origin: https://good.example\r\n", NULL, &r),
                     101);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", "Origin: https://evil.example\r\n", NULL, &r),
                     403);
    assert_int_equal(open_ex(f, &f->c[2], "/echo", "Origin: http://good.example\r\n", NULL, &r),
                     403);
    assert_int_equal(
        open_ex(f, &f->c[3], "/hub", "Origin: https://app.trusted.example:8443\r\n", NULL, &r),
        101);
    assert_int_equal(open_ex(f, &f->c[4], "/hub", "Origin: https://trusted.example\r\n", NULL, &r),
                     403);
    assert_int_equal(open_ex(f, &f->c[5], "/hub", NULL, NULL, &r),
                     101); /* no Origin: not a browser */
    finish(f);
}

/* Waits until a handshake with `headers` gets `status`, up to ms. Returns the last status. */
static int wait_status(struct fx *f, struct rc *c, const char *headers, int status, int ms)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)ms;
    int st;
    do {
        rc_close(c);
        st = open_ex(f, c, "/hub", headers, NULL, NULL);
        if (st == status) return st;
        usleep(50000);
    } while (rc_now_ms() < deadline);
    return st;
}

static void test_hub_jwt(void **state)
{
    struct fx *f = *state;
    snprintf(f->tmp, sizeof f->tmp, "/tmp/weft-itest-revoked-XXXXXX");
    int fd = mkstemp(f->tmp);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "# none yet\n", 11), 11);
    close(fd);
    const char *args[] = {"--auth-secret",       SECRET, "--revoked", f->tmp,
                          "--auth-allow-no-exp", NULL};
    spawn(f, args);
    char hdr[2048], proto[2048];
    struct rc_http r;

    assert_int_equal(open_ex(f, &f->c[0], "/hub", NULL, NULL, &r), 401);
    char *good = mint(SECRET, "alice", 3600, "j1", NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", good);
    rc_close(&f->c[0]);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", hdr, NULL, &r), 101);
    /* sub is the id in deliveries and presence */
    hj_send(&f->c[0], "{\"type\":\"join\",\"room\":\"z\"}");
    json_decref(hj_expect_type(&f->c[0], "joined"));
    hj_send(&f->c[0], "{\"type\":\"presence\",\"room\":\"z\"}");
    json_t *j = hj_expect_type(&f->c[0], "presence");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "members"), 0)),
                        "alice");
    json_decref(j);

    /* ?token= */
    char path[2048];
    char *t2 = mint(SECRET, "bob", 3600, NULL, NULL);
    snprintf(path, sizeof path, "/hub?x=1&token=%s", t2);
    assert_int_equal(open_ex(f, &f->c[1], path, NULL, NULL, &r), 101);
    /* subprotocol entry, with weft.hub offered: weft.hub is chosen */
    snprintf(proto, sizeof proto, "weft.hub, bearer.%s", t2);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", NULL, proto, &r), 101);
    char chosen[2048];
    assert_true(rc_http_header(&r, "Sec-WebSocket-Protocol", chosen, sizeof chosen));
    assert_string_equal(chosen, "weft.hub");
    /* only the token entry: it is echoed (the only choice a browser accepts) */
    snprintf(proto, sizeof proto, "bearer.%s", t2);
    assert_int_equal(open_ex(f, &f->c[3], "/hub", NULL, proto, &r), 101);
    assert_true(rc_http_header(&r, "Sec-WebSocket-Protocol", chosen, sizeof chosen));
    assert_string_equal(chosen, proto);
    rc_close(&f->c[1]);
    rc_close(&f->c[2]);
    rc_close(&f->c[3]);

    /* expired, wrong signature, malformed, alg none */
    char *expired = mint(SECRET, "carol", -10, NULL, NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", expired);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", hdr, NULL, &r), 401);
    assert_non_null(strstr(r.body, "expired"));
    char *forged = mint("another-secret-0123456789", "carol", 3600, NULL, NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", forged);
    rc_close(&f->c[1]);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", hdr, NULL, &r), 401);
    rc_close(&f->c[1]);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", "Authorization: Bearer not.a.jwt\r\n", NULL, &r),
                     401);
    rc_close(&f->c[1]);
    /* header {"alg":"none","typ":"JWT"}, payload {"sub":"x"}, no signature */
    assert_int_equal(
        open_ex(f, &f->c[1], "/hub",
                "Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.\r\n",
                NULL, &r),
        401);
    rc_close(&f->c[1]);

    /* a rooms claim restricts join */
    char *limited = mint(SECRET, "dave", 3600, NULL, "[\"team-*\",\"lobby\"]");
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", limited);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", hdr, NULL, &r), 101);
    expect_error(&f->c[1], "{\"type\":\"join\",\"room\":\"other\"}", "forbidden");
    hj_send(&f->c[1], "{\"type\":\"join\",\"room\":\"team-a\"}");
    json_decref(hj_expect_type(&f->c[1], "joined"));
    hj_send(&f->c[1], "{\"type\":\"join\",\"room\":\"lobby\"}");
    json_decref(hj_expect_type(&f->c[1], "joined"));

    /* a token expiring in 2 s closes its connection with 1008 */
    char *shortlived = mint(SECRET, "erin", 2, NULL, NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", shortlived);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", hdr, NULL, &r), 101);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(rc_expect_close(&f->c[2], 5000), 1008);
    assert_true(rc_now_ms() - t0 >= 900);
    /* ... unless refreshed in-band with a token of the same sub */
    rc_close(&f->c[2]);
    char *short2 = mint(SECRET, "erin", 2, NULL, NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", short2);
    free(short2);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", hdr, NULL, &r), 101);
    char *fresh = mint(SECRET, "erin", 3600, NULL, NULL);
    char *other = mint(SECRET, "mallory", 3600, NULL, NULL);
    char req[1024];
    snprintf(req, sizeof req, "{\"type\":\"auth\",\"token\":\"%s\"}", other);
    expect_error(&f->c[2], req, "bad_token");
    snprintf(req, sizeof req, "{\"type\":\"auth\",\"token\":\"%s\",\"id\":3}", fresh);
    hj_send(&f->c[2], req);
    j = hj_expect_type(&f->c[2], "authed");
    assert_true(hj_int(j, "exp") > (long long)time(NULL) + 3000);
    json_decref(j);
    assert_int_equal(rc_recv(&f->c[2], 3500), RC_TIMEOUT); /* past the old expiry: still open */
    hj_send(&f->c[2], "{\"type\":\"ping\"}");
    json_decref(hj_expect_type(&f->c[2], "pong"));
    free(fresh);
    free(other);
    /* a token with a sub only (the hub keeps no auth state for it) refreshed in-band with a
     * 2 s token: the new expiry closes the connection (1008) */
    char *subonly = mint(SECRET, "frank", 0, NULL, NULL);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", subonly);
    free(subonly);
    assert_int_equal(open_ex(f, &f->c[4], "/hub", hdr, NULL, &r), 101);
    char *short3 = mint(SECRET, "frank", 2, "j4", NULL);
    snprintf(req, sizeof req, "{\"type\":\"auth\",\"token\":\"%s\"}", short3);
    free(short3);
    hj_send(&f->c[4], req);
    j = hj_expect_type(&f->c[4], "authed");
    assert_true(hj_int(j, "exp") <= (long long)time(NULL) + 2);
    json_decref(j);
    assert_int_equal(rc_expect_close(&f->c[4], 5000), 1008);

    /* revocation: j1 is listed → the open connection is closed (1008), new ones get 401 */
    FILE *rf = fopen(f->tmp, "w");
    assert_non_null(rf);
    fprintf(rf, "# revoked\nj0\nj1\n");
    fclose(rf);
    assert_int_equal(rc_expect_close(&f->c[0], 5000), 1008);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", good);
    assert_int_equal(wait_status(f, &f->c[3], hdr, 401, 3000), 401);
    /* an unrevoked token still works */
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", t2);
    rc_close(&f->c[3]);
    assert_int_equal(open_ex(f, &f->c[3], "/hub", hdr, NULL, &r), 101);

    free(good);
    free(t2);
    free(expired);
    free(forged);
    free(limited);
    free(shortlived);
    finish(f);
}

/* Per-IP limit: the third connection from 127.0.0.1 gets 503 with Retry-After; after one
 * closes, a new one is accepted. */
static void test_hub_limit_per_ip(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-connections-per-ip", "2", "--retry-after", "7", NULL};
    spawn(f, args);
    struct rc_http r;
    assert_int_equal(open_ex(f, &f->c[0], "/hub", NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[1], "/echo", NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", NULL, NULL, &r), 503);
    char v[32];
    assert_true(rc_http_header(&r, "Retry-After", v, sizeof v));
    assert_string_equal(v, "7");
    assert_int_equal(rc_send_close(&f->c[0], 1000, NULL), 0);
    assert_int_equal(rc_recv(&f->c[0], RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(wait_status(f, &f->c[3], NULL, 101, 3000), 101);
    finish(f);
}

/* Global limit: 503 + Retry-After beyond it, and /readyz turns 503 at the limit. */
static void test_hub_limit_global_readyz(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-connections", "2", NULL};
    spawn(f, args);
    char body[8192];
    assert_int_equal(sp_http_get(f->sp.port, "/healthz", body, sizeof body), 200);
    int st = sp_http_get(f->sp.port, "/readyz", body, sizeof body);
    if (st != 200) fprintf(stderr, "%s\n", body);
    assert_int_equal(st, 200);
    assert_non_null(strstr(body, "handshake ok"));
    struct rc_http r;
    /* The /readyz probe's own connection counts against the limit until its close handshake
     * ends, which a loaded machine may delay: a 503 then is retried, up to 3 s. */
    const char *paths[2] = {"/hub", "/ws/x"};
    for (int i = 0; i < 2; i++) {
        uint64_t until = rc_now_ms() + 3000;
        while ((st = open_ex(f, &f->c[i], paths[i], NULL, NULL, &r)) == 503 &&
               rc_now_ms() < until) {
            rc_close(&f->c[i]);
            usleep(50000);
        }
        assert_int_equal(st, 101);
    }
    assert_int_equal(open_ex(f, &f->c[2], "/echo", NULL, NULL, &r), 503);
    char v[32];
    assert_true(rc_http_header(&r, "Retry-After", v, sizeof v));
    assert_int_equal(sp_http_get(f->sp.port, "/readyz", body, sizeof body), 503);
    assert_non_null(strstr(body, "connection limit"));
    assert_non_null(strstr(body, "Retry-After"));
    rc_send_close(&f->c[1], 1000, NULL);
    assert_int_equal(rc_recv(&f->c[1], RC_TIMEOUT_MS), RC_CLOSE);
    uint64_t deadline = rc_now_ms() + 3000;
    do {
        st = sp_http_get(f->sp.port, "/readyz", body, sizeof body);
    } while (st != 200 && rc_now_ms() < deadline && usleep(50000) == 0);
    assert_int_equal(st, 200);
    finish(f);
}

/* The message rate: a client within it stays open; a burst beyond it is closed with 1008. */
static void test_hub_rate_limit(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--rate", "20", "--burst", "5", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1];
    hub_open(f, a, NULL, 0);
    hub_open(f, b, NULL, 0);
    for (int i = 0; i < 6; i++) { /* 10 per second: under 20 */
        hj_send(a, "{\"type\":\"ping\"}");
        json_decref(hj_expect_type(a, "pong"));
        usleep(100000);
    }
    for (int i = 0; i < 30; i++)
        if (rc_send(b, WEFT_OP_TEXT, "{\"type\":\"ping\"}", 15) != 0) break;
    int pongs = 0;
    enum rc_event e;
    while ((e = rc_recv(b, RC_TIMEOUT_MS)) == RC_MESSAGE)
        pongs++;
    assert_int_equal(e, RC_CLOSE);
    assert_int_equal(b->last.close_code, 1008);
    assert_true(pongs >= 5 && pongs < 30);
    hj_send(a, "{\"type\":\"ping\"}");
    json_decref(hj_expect_type(a, "pong"));
    finish(f);
}

/* --handshake-rate 1 --handshake-burst 2: two upgrades from 127.0.0.1 at once (any route),
 * the third gets 429 with Retry-After 1 and its X-Request-Id, counted; a second later the
 * bucket has a token again. Other HTTP requests are not limited. */
static void test_hub_handshake_rate(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--handshake-rate", "1", "--handshake-burst", "2", NULL};
    spawn(f, args);
    struct rc_http r;
    assert_int_equal(open_ex(f, &f->c[0], "/hub", NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[1], "/echo", NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[2], "/ws/x", "X-Request-Id: too-fast.1\r\n", NULL, &r), 429);
    char v[80];
    assert_true(rc_http_header(&r, "Retry-After", v, sizeof v));
    assert_string_equal(v, "1");
    assert_true(rc_http_header(&r, "X-Request-Id", v, sizeof v));
    assert_string_equal(v, "too-fast.1");
    static char body[65536];
    for (int i = 0; i < 3; i++) /* plain HTTP is not rate limited */
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
    assert_int_equal(sp_metric_int(body, "weft_handshakes_total{result=\"429\"}"), 1);
    assert_int_equal(sp_metric_int(body, "weft_handshakes_total{result=\"ok\"}"), 2);
    assert_int_equal(sp_log_count(&f->sp, "\"conn\":\"too-fast.1\""), 1);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(wait_status(f, &f->c[3], NULL, 101, 3000), 101);
    assert_true(rc_now_ms() - t0 >= 500); /* the bucket refills at 1 per second */
    /* the open connections still work */
    hj_send(&f->c[0], "{\"type\":\"ping\"}");
    json_decref(hj_expect_type(&f->c[0], "pong"));
    finish(f);
}

/* ------------------------------------------------------------------ observability */

/* What the server sent that the test received: data messages and their payload bytes. */
struct tally {
    unsigned msgs;
    size_t bytes;
};

/* hj_expect_type that adds the message to t (and its payload length to *kept if not NULL:
 * a delivery the room's history keeps). */
static void expect_counted(struct rc *c, const char *type, struct tally *t, size_t *kept)
{
    json_decref(hj_expect_type(c, type));
    t->msgs++;
    t->bytes += c->last.len;
    if (kept) *kept += c->last.len;
}

/* Writes a raw HTTP request on a new connection c and returns the response status. */
static int raw_request(struct fx *f, struct rc *c, const char *head, struct rc_http *r)
{
    assert_int_equal(rc_connect(c, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_write_str(c, head, RC_TIMEOUT_MS), 0);
    return rc_read_http(c, r, RC_TIMEOUT_MS);
}

/* GETs /metrics into body until metric `name` has value v (up to 5 s); returns its value. */
static double wait_metric(struct fx *f, char *body, size_t cap, const char *name, double v)
{
    uint64_t deadline = rc_now_ms() + 5000;
    double got;
    do {
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, cap), 200);
        got = sp_metric(body, name);
    } while (got != v && rc_now_ms() < deadline && usleep(50000) == 0);
    return got;
}

/* /metrics against traffic generated here: exact counts, including what the server sent
 * (every message the clients received, byte for byte), what the room history keeps, and the
 * handshakes refused by the library (400, 426) and by the hub (403, 414). */
static void test_hub_metrics(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--allow-origin", "https://ok.example", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1];
    struct tally out = {0};
    size_t kept = 0;
    hub_open(f, a, NULL, 0);
    hub_open(f, b, NULL, 0);
    struct rc_http r;
    assert_int_equal(open_ex(f, &f->c[2], "/hub", "Origin: https://bad.example\r\n", NULL, &r),
                     403);
    /* version 12 → 426 */
    assert_int_equal(
        raw_request(f, &f->c[3],
                    "GET /hub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 12\r\n\r\n",
                    &r),
        426);
    /* no Sec-WebSocket-Key → 400 */
    assert_int_equal(raw_request(f, &f->c[4],
                                 "GET /hub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 &r),
                     400);
    /* a raw room name over 250 bytes → 414 */
    char path[300] = "/ws/";
    memset(path + 4, 'r', 251);
    path[255] = '\0';
    assert_int_equal(open_ex(f, &f->c[5], path, NULL, NULL, &r), 414);
    hj_send(a, "{\"type\":\"join\",\"room\":\"m\"}");
    expect_counted(a, "joined", &out, NULL);
    hj_send(b, "{\"type\":\"join\",\"room\":\"m\"}");
    expect_counted(b, "joined", &out, NULL);
    for (int i = 0; i < 3; i++) {
        hj_send(a, "{\"type\":\"publish\",\"room\":\"m\",\"data\":\"hello\"}");
        expect_counted(a, "published", &out, NULL);
        expect_counted(b, "message", &out, &kept);
    }
    hj_send(a, "oops");
    expect_counted(a, "error", &out, NULL);
    assert_int_equal(out.msgs, 9);
    rc_send_close(b, 1000, NULL);
    assert_int_equal(rc_recv(b, RC_TIMEOUT_MS), RC_CLOSE);
    rc_send_close(a, 4000, "bye");
    assert_int_equal(rc_recv(a, RC_TIMEOUT_MS), RC_CLOSE);

    static char body[65536];
    uint64_t deadline = rc_now_ms() + 3000;
    do {
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
    } while (sp_metric(body, "weft_connections") != 0 && rc_now_ms() < deadline &&
             usleep(50000) == 0);
    assert_non_null(strstr(body, "Content-Type: text/plain; version=0.0.4"));
    struct {
        const char *name;
        double v;
    } want[] = {
        {"weft_connections", 0},
        {"weft_connections_total", 2},
        {"weft_connections_closed_total{code=\"1000\"}", 1},
        {"weft_connections_closed_total{code=\"4000\"}", 1},
        {"weft_handshakes_total{result=\"ok\"}", 2},
        {"weft_handshakes_total{result=\"400\"}", 1},
        {"weft_handshakes_total{result=\"403\"}", 1},
        {"weft_handshakes_total{result=\"414\"}", 1},
        {"weft_handshakes_total{result=\"426\"}", 1},
        {"weft_handshakes_total{result=\"401\"}", 0},
        {"weft_handshakes_total{result=\"429\"}", 0},
        {"weft_handshakes_total{result=\"503\"}", 0},
        {"weft_messages_received_total", 6},
        {"weft_received_bytes_total", 2 * 26 + 3 * 44 + 4},
        {"weft_messages_sent_total", out.msgs},
        {"weft_sent_bytes_total", (double)out.bytes},
        {"weft_history_bytes", (double)kept},
        {"weft_backpressure_drops_total", 0},
        {"weft_slow_consumer_closes_total", 0},
        {"weft_hub_requests_total", 6},
        {"weft_hub_publishes_total", 3},
        {"weft_hub_deliveries_total", 3},
        {"weft_hub_errors_total{code=\"bad_json\"}", 1},
        {"weft_rooms", 1},
        {"weft_history_messages", 3},
        {"weft_publish_delivery_seconds_count", 3},
        {"weft_publish_delivery_seconds_bucket{le=\"+Inf\"}", 3},
        {"weft_broker_up{broker=\"local\"}", 1},
        {"weft_rate_limited_total", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double got = sp_metric(body, want[i].name);
        if (got != want[i].v) {
            fprintf(stderr, "%s\n", body);
            fail_msg("%s: expected %g, got %g", want[i].name, want[i].v, got);
        }
    }
    assert_true(sp_metric(body, "process_resident_memory_bytes") > 1e5);
    assert_true(sp_metric(body, "process_cpu_seconds_total") >= 0);
    assert_true(sp_metric(body, "weft_publish_delivery_seconds_sum") > 0);
    assert_non_null(strstr(body, "weft_build_info{version=\"" WEFT_VERSION "\""));
    assert_non_null(strstr(body, "# TYPE weft_publish_delivery_seconds histogram"));
    /* Buckets are cumulative (never decrease). */
    double prev = 0;
    int nb = 0;
    for (const char *p = strstr(body, "weft_publish_delivery_seconds_bucket{"); p;
         p = strstr(p + 1, "weft_publish_delivery_seconds_bucket{")) {
        double v = strtod(strchr(p, ' ') + 1, NULL);
        assert_true(v >= prev);
        prev = v;
        nb++;
    }
    assert_int_equal(nb, 15);
    finish(f);
}

#define SLOW_MSG (256 * 1024)
#define SLOW_MAX 96 /* messages published at most (24 MiB) */

/* A raw-room member that never reads (4 KiB receive buffer) and a publisher sending 256 KiB
 * messages to its room, with --max-backpressure 64k and --slow-policy `policy`: publishes
 * until /metrics shows the policy at work. Returns the number of messages published. */
static int flood_slow_reader(struct fx *f, const char *policy, const char *metric)
{
    static const char *const drop[] = {"--max-backpressure", "64k", "--slow-policy", "drop", NULL};
    static const char *const closing[] = {"--max-backpressure", "64k", "--slow-policy", "close",
                                          NULL};
    spawn(f, strcmp(policy, "drop") ? closing : drop);
    struct rc *slow = &f->c[0], *pub = &f->c[1];
    assert_int_equal(rc_connect(slow, f->sp.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(slow, f->sp.port, "/ws/slow", NULL, RC_TIMEOUT_MS), 101);
    assert_int_equal(rc_open(pub, f->sp.port, "/ws/slow"), 0);
    uint8_t *msg = malloc(SLOW_MSG);
    assert_non_null(msg);
    rc_fill(msg, SLOW_MSG, 7, false);
    static char body[65536];
    int sent = 0;
    while (sent < SLOW_MAX) {
        for (int i = 0; i < 8; i++, sent++)
            assert_int_equal(rc_send(pub, WEFT_OP_BINARY, msg, SLOW_MSG), 0);
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
        if (sp_metric(body, metric) > 0) break;
    }
    free(msg);
    return sent;
}

/* Slow consumers under --slow-policy drop: every message published to the slow reader is
 * either sent (written or queued) or dropped, and the drops show in /metrics; under
 * --slow-policy close the reader is closed once, counted. */
static void test_hub_slow_consumer(void **state)
{
    struct fx *f = *state;
    static char body[65536];
    int n = flood_slow_reader(f, "drop", "weft_backpressure_drops_total");
    /* The publisher gets nothing back (a sender is excluded from its room's deliveries), so
     * every message sent is one to the slow reader. */
    uint64_t deadline = rc_now_ms() + 5000;
    double sent, drops;
    do {
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
        sent = sp_metric(body, "weft_messages_sent_total");
        drops = sp_metric(body, "weft_backpressure_drops_total");
    } while (sent + drops != n && rc_now_ms() < deadline && usleep(50000) == 0);
    if (sent + drops != n) fprintf(stderr, "%s\n", body);
    assert_true(drops >= 1);
    assert_true(sent >= 1);
    assert_true(sent + drops == n);
    assert_int_equal(sp_metric_int(body, "weft_messages_received_total"), n);
    assert_int_equal(sp_metric_int(body, "weft_slow_consumer_closes_total"), 0);
    assert_int_equal(sp_metric_int(body, "weft_connections"), 2); /* dropping, not closing */
    finish(f);
    sp_kill(&f->sp);

    flood_slow_reader(f, "close", "weft_slow_consumer_closes_total");
    /* The reader gets what was queued before, then the close (1008). */
    enum rc_event e;
    while ((e = rc_recv(&f->c[0], RC_TIMEOUT_MS)) == RC_MESSAGE)
        assert_int_equal(f->c[0].last.len, SLOW_MSG);
    assert_int_equal(e, RC_CLOSE);
    assert_int_equal(f->c[0].last.close_code, 1008);
    assert_int_equal(wait_metric(f, body, sizeof body, "weft_connections", 1), 1);
    assert_int_equal(sp_metric_int(body, "weft_slow_consumer_closes_total"), 1);
    assert_int_equal(sp_metric_int(body, "weft_backpressure_drops_total"), 0);
    finish(f);
}

/* Each connection event has a JSON log line with the id the client got in X-Request-Id. */
static void test_hub_logs(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--allow-origin", "https://ok.example", "--log-level",
                                       "debug", NULL};
    spawn(f, args);
    struct rc_http r;
    char given[80], made[80], refused[80], toolong[80];
    assert_int_equal(open_ex(f, &f->c[0], "/hub", "X-Request-Id: client-id.42\r\n", NULL, &r), 101);
    assert_true(rc_http_header(&r, "X-Request-Id", given, sizeof given));
    assert_string_equal(given, "client-id.42");
    assert_int_equal(open_ex(f, &f->c[1], "/hub", "X-Request-Id: bad id with spaces\r\n", NULL, &r),
                     101);
    assert_true(rc_http_header(&r, "X-Request-Id", made, sizeof made));
    assert_string_not_equal(made, "bad id with spaces");
    assert_int_equal(strlen(made), 16);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", "Origin: https://no.example\r\n", NULL, &r), 403);
    assert_true(rc_http_header(&r, "X-Request-Id", refused, sizeof refused));
    /* a raw room name too long: 414 from the hub, with its id */
    char path[300] = "/ws/";
    memset(path + 4, 'r', 260);
    path[264] = '\0';
    assert_int_equal(open_ex(f, &f->c[3], path, NULL, NULL, &r), 414);
    assert_true(rc_http_header(&r, "X-Request-Id", toolong, sizeof toolong));
    /* a protocol error (reserved opcode 3): the library's line carries the connection's id */
    assert_int_equal(open_ex(f, &f->c[4], "/hub", "X-Request-Id: proto-err.7\r\n", NULL, &r), 101);
    assert_int_equal(rc_send_raw_frame(&f->c[4], 0x83, true, "x", 1), 0);
    assert_int_equal(rc_expect_close(&f->c[4], RC_TIMEOUT_MS), 1002);
    rc_send_close(&f->c[0], 1000, NULL);
    assert_int_equal(rc_recv(&f->c[0], RC_TIMEOUT_MS), RC_CLOSE);
    rc_send_close(&f->c[1], 1001, NULL);
    assert_int_equal(rc_recv(&f->c[1], RC_TIMEOUT_MS), RC_CLOSE);

    struct {
        const char *id, *event;
        bool found;
    } want[] = {
        {given, "open", false},
        {given, "close", false},
        {made, "open", false},
        {made, "close", false},
        {refused, "rejected", false},
        {toolong, "rejected", false},
        {"proto-err.7", "library", false},
        {"proto-err.7", "close", false},
    };
    uint64_t deadline = rc_now_ms() + 3000;
    bool all = false;
    while (!all && rc_now_ms() < deadline) {
        FILE *fp = fopen(f->sp.log, "r");
        assert_non_null(fp);
        char line[4096];
        while (fgets(line, sizeof line, fp)) {
            json_t *j = json_loads(line, 0, NULL);
            if (!j) fail_msg("log line is not JSON: %s", line);
            assert_true(json_is_string(json_object_get(j, "ts")));
            assert_true(json_is_string(json_object_get(j, "level")));
            assert_true(json_is_string(json_object_get(j, "msg")));
            for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
                if (!strcmp(hj_str(j, "conn"), want[i].id) &&
                    !strcmp(hj_str(j, "event"), want[i].event))
                    want[i].found = true;
            json_decref(j);
        }
        fclose(fp);
        all = true;
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            all &= want[i].found;
        if (!all) usleep(50000);
    }
    if (!all) sp_dump_log(&f->sp);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!want[i].found) fail_msg("no %s log line for %s", want[i].event, want[i].id);
    finish(f);
}

/* True once the server's log has a JSON line with "conn": id and "event": event (polls up
 * to 3 s). */
static bool log_has(struct fx *f, const char *id, const char *event)
{
    uint64_t deadline = rc_now_ms() + 3000;
    do {
        FILE *fp = fopen(f->sp.log, "r");
        assert_non_null(fp);
        char line[4096];
        bool found = false;
        while (!found && fgets(line, sizeof line, fp)) {
            json_t *j = json_loads(line, 0, NULL);
            found = j && !strcmp(hj_str(j, "conn"), id) && !strcmp(hj_str(j, "event"), event);
            json_decref(j);
        }
        fclose(fp);
        if (found) return true;
        usleep(50000);
    } while (rc_now_ms() < deadline);
    return false;
}

/* Client X-Request-Ids longer than a generated one (16 hex digits) up to the limit of 64:
 * echoed in the 101, used as the name in deliveries and presence and in the open/close log
 * lines, on /hub and /ws; 65 characters get a generated id. A connection closed with a
 * request in flight (to the room's owner with two workers) is freed by the reply. */
static void test_hub_long_ids(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--log-format", "json", NULL};
    spawn(f, args);
    struct rc_http r;
    char hdr[160], got[128];
    const char *id64 = "a234567890.b234567890_c234567890:d234567890-e234567890ABCDEFGHIJ";
    const char *id17 = "seventeen-chars.x";
    assert_int_equal(strlen(id64), 64);
    assert_int_equal(strlen(id17), 17);
    snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", id64);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", hdr, NULL, &r), 101);
    assert_true(rc_http_header(&r, "X-Request-Id", got, sizeof got));
    assert_string_equal(got, id64);
    snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", id17);
    assert_int_equal(open_ex(f, &f->c[1], "/hub", hdr, NULL, &r), 101);
    assert_true(rc_http_header(&r, "X-Request-Id", got, sizeof got));
    assert_string_equal(got, id17);
    snprintf(hdr, sizeof hdr, "X-Request-Id: %sK\r\n", id64); /* 65: replaced */
    assert_int_equal(open_ex(f, &f->c[2], "/hub", hdr, NULL, &r), 101);
    char made[128];
    assert_true(rc_http_header(&r, "X-Request-Id", made, sizeof made));
    assert_int_equal(strlen(made), 16);
    snprintf(hdr, sizeof hdr, "X-Request-Id: %s.ws\r\n", id17);
    assert_int_equal(open_ex(f, &f->c[3], "/ws/x", hdr, NULL, &r), 101);
    assert_true(rc_http_header(&r, "X-Request-Id", got, sizeof got));
    assert_string_equal(got, "seventeen-chars.x.ws");

    for (int i = 0; i < 3; i++) {
        hj_send(&f->c[i], "{\"type\":\"join\",\"room\":\"lid\"}");
        json_decref(hj_expect_type(&f->c[i], "joined"));
    }
    hj_send(&f->c[0], "{\"type\":\"publish\",\"room\":\"lid\",\"data\":1}");
    json_decref(hj_expect_type(&f->c[0], "published"));
    json_t *j = hj_expect_type(&f->c[1], "message");
    assert_string_equal(hj_str(j, "from"), id64);
    json_decref(j);
    json_decref(hj_expect_type(&f->c[2], "message"));
    hj_send(&f->c[1], "{\"type\":\"publish\",\"room\":\"lid\",\"data\":2}");
    json_decref(hj_expect_type(&f->c[1], "published"));
    j = hj_expect_type(&f->c[0], "message");
    assert_string_equal(hj_str(j, "from"), id17);
    json_decref(j);
    json_decref(hj_expect_type(&f->c[2], "message"));
    hj_send(&f->c[2], "{\"type\":\"presence\",\"room\":\"lid\"}");
    j = hj_expect_type(&f->c[2], "presence");
    json_t *m = json_object_get(j, "members");
    assert_int_equal(json_array_size(m), 3);
    bool s64 = false, s17 = false, smade = false;
    for (size_t i = 0; i < 3; i++) {
        const char *s = json_string_value(json_array_get(m, i));
        s64 |= !strcmp(s, id64);
        s17 |= !strcmp(s, id17);
        smade |= !strcmp(s, made);
    }
    assert_true(s64 && s17 && smade);
    json_decref(j);

    /* closed with requests in flight: no leak, no use after free (sanitizers, finish) */
    hj_send(&f->c[0], "{\"type\":\"presence\",\"room\":\"lid\"}");
    hj_send(&f->c[0], "{\"type\":\"publish\",\"room\":\"lid\",\"data\":3}");
    rc_close(&f->c[0]);
    rc_send_close(&f->c[1], 1000, NULL);
    int e;
    while ((e = rc_recv(&f->c[1], RC_TIMEOUT_MS)) == RC_MESSAGE) /* the delivery of data 3 */
        ;
    assert_int_equal(e, RC_CLOSE);
    rc_close(&f->c[3]);
    assert_true(log_has(f, id64, "open"));
    assert_true(log_has(f, id64, "close"));
    assert_true(log_has(f, id17, "open"));
    assert_true(log_has(f, id17, "close"));
    assert_true(log_has(f, "seventeen-chars.x.ws", "open"));
    assert_true(log_has(f, "seventeen-chars.x.ws", "close"));
    finish(f);
}

/* Runs `sh -c cmd` and returns its stdout (static buffer). */
static const char *run_capture(const char *cmd)
{
    static char out[8192];
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("'%s' failed: %s", cmd, out);
    return out;
}

/* Precedence: flag > WEFT_* > config file > default, shown by --print-config. */
static void test_hub_config(void **state)
{
    struct fx *f = *state;
    snprintf(f->tmp, sizeof f->tmp, "/tmp/weft-itest-conf-XXXXXX");
    int fd = mkstemp(f->tmp);
    assert_true(fd >= 0);
    static const char conf[] = "# test\nmax-rooms = 1\nhistory_size = 7\nrate = 3\n";
    assert_int_equal(write(fd, conf, sizeof conf - 1), (ssize_t)(sizeof conf - 1));
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "WEFT_MAX_ROOMS=2 WEFT_RATE=4 %s serve --config %s --rate 5 --print-config", WEFT_BIN,
             f->tmp);
    const char *out = run_capture(cmd);
    assert_non_null(strstr(out, "\nmax-rooms = 2\n"));
    assert_non_null(strstr(out, "\nhistory-size = 7\n"));
    assert_non_null(strstr(out, "\nrate = 5\n"));
    assert_non_null(strstr(out, "\nhistory-age = 3600\n"));
    assert_non_null(strstr(out, "\nhandshake-rate = 0\n")); /* off by default */
    snprintf(cmd, sizeof cmd, "%s serve --config %s --print-config", WEFT_BIN, f->tmp);
    out = run_capture(cmd);
    assert_non_null(strstr(out, "\nmax-rooms = 1\n"));
    snprintf(cmd, sizeof cmd, "WEFT_HANDSHAKE_RATE=2.5 %s serve --handshake-burst 9 --print-config",
             WEFT_BIN);
    out = run_capture(cmd);
    assert_non_null(strstr(out, "\nhandshake-rate = 2.5\n"));
    assert_non_null(strstr(out, "\nhandshake-burst = 9\n"));
    snprintf(cmd, sizeof cmd, "%s serve --handshake-rate -1 --print-config 2>&1; echo status=$?",
             WEFT_BIN);
    out = run_capture(cmd);
    assert_non_null(strstr(out, "handshake-rate"));
    assert_non_null(strstr(out, "expected a non-negative number"));
    assert_non_null(strstr(out, "status=2"));
    /* an unknown key in the file is an error naming the line */
    fd = open(f->tmp, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "bogus = 1\n", 10), 10);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s serve --config %s --print-config 2>&1; echo status=$?", WEFT_BIN,
             f->tmp);
    out = run_capture(cmd);
    assert_non_null(strstr(out, ":5: unknown key 'bogus'"));
    assert_non_null(strstr(out, "status=2"));
    /* with several bad lines, the message is the first one's (the line inih reports) */
    fd = open(f->tmp, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "max-rooms = x\nbogus = 1\n", 24), 24);
    close(fd);
    out = run_capture(cmd);
    assert_non_null(strstr(out, ":1: bad value 'x' for max-rooms"));
    /* a line longer than the file format holds is refused as such, with its number */
    fd = open(f->tmp, O_WRONLY | O_TRUNC);
    char longline[320];
    int ln =
        snprintf(longline, sizeof longline, "rate = 1\nallow-origin = https://%0250d.example\n", 0);
    assert_int_equal(write(fd, longline, (size_t)ln), ln);
    close(fd);
    out = run_capture(cmd);
    assert_non_null(strstr(out, ":2: line longer than 198 bytes"));
    /* --print-config output loads back with --config (unset options are printed empty) and
     * prints the same configuration again (found by fuzz_config) */
    char printed[96];
    snprintf(printed, sizeof printed, "%s.printed", f->tmp);
    snprintf(cmd, sizeof cmd,
             "%s serve --rate 5 --allow-origin https://a.example --print-config >%s", WEFT_BIN,
             printed);
    run_capture(cmd);
    snprintf(cmd, sizeof cmd, "%s serve --config %s --print-config | tail -n +2", WEFT_BIN,
             printed);
    char *again = strdup(run_capture(cmd));
    snprintf(cmd, sizeof cmd, "tail -n +2 %s", printed);
    out = run_capture(cmd);
    assert_non_null(strstr(out, "\ntls-cert = \n"));
    assert_string_equal(out, again);
    free(again);
    unlink(printed);
}

/* A test run once per --workers value (see setup). */
#define WORKERS_TEST(fn, n)                                                                        \
    {                                                                                              \
#fn " --workers " #n, fn, setup, teardown, (void *)workers_##n                             \
    }
static char workers_1[] = "1", workers_2[] = "2";

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    hj_timeout_ms = RC_TIMEOUT_MS; /* as before the helpers were shared */
    const struct CMUnitTest tests[] = {
        WORKERS_TEST(test_hub_rooms, 1),
        WORKERS_TEST(test_hub_rooms, 2),
        WORKERS_TEST(test_hub_history_recovery, 1),
        WORKERS_TEST(test_hub_history_recovery, 2),
        WORKERS_TEST(test_hub_bad_input, 1),
        WORKERS_TEST(test_hub_bad_input, 2),
        cmocka_unit_test_setup_teardown(test_hub_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_jwt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_limit_per_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_limit_global_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_rate_limit, setup, teardown),
        WORKERS_TEST(test_hub_handshake_rate, 1),
        WORKERS_TEST(test_hub_handshake_rate, 2),
        cmocka_unit_test_setup_teardown(test_hub_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_slow_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_logs, setup, teardown),
        WORKERS_TEST(test_hub_long_ids, 1),
        WORKERS_TEST(test_hub_long_ids, 2),
        cmocka_unit_test_setup_teardown(test_hub_config, setup, teardown),
    };
    sp_guard("test_hub", "weft serve", 170);
    return cmocka_run_group_tests_name("integration.hub", tests, NULL, NULL);
}
