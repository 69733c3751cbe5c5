/*
 * test_defaults.c — the safe defaults of `weft serve` (issue 12), end to end against the real
 * program with raw clients over 127.0.0.1:
 *   - the JWT "rooms" claim on raw rooms: 403 at the upgrade of /ws/<room> (and /ws, the
 *     lobby) when the claim does not allow the room, 101 when it does;
 *   - Origin: same-origin and Origin-less requests only, unless --allow-origin;
 *   - tokens without exp: refused unless --auth-allow-no-exp;
 *   - /readyz: its own connection is exempt from --max-connections-per-ip;
 *   - /echo: echoes the first offered subprotocol;
 *   - weft_rooms counts each room once with --workers 2.
 *
 * Every path kills and reaps exactly the PID it started (teardown, SIGALRM guard).
 */
#include <jwt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    struct sp sp; /* the weft serve of the test */
    struct rc c[NC];
};

/* Allocates the fixture (every client closed). Returns 0. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (int i = 0; i < NC; i++)
        f->c[i].fd = -1;
    *state = f;
    return 0;
}

/* Closes the clients, kills and reaps the server if still running. Returns 0. */
static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NC; i++)
        rc_close(&f->c[i]);
    sp_kill(&f->sp);
    free(f);
    return 0;
}

/* Closes the clients and stops the server, asserting a clean exit. */
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
    rc_close(c);
    if (rc_connect(c, f->sp.port, 0, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake_ex(c, f->sp.port, path, headers, protocols, resp, RC_TIMEOUT_MS);
}

/* Mints an HS256 token for SECRET. exp_delta: seconds from now (0: no exp); rooms_json may be
 * NULL. Returns a malloc'd string. */
static char *mint(const char *sub, long exp_delta, const char *rooms_json)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "sub", sub);
    if (exp_delta) jwt_add_grant_int(jwt, "exp", (long)time(NULL) + exp_delta);
    if (rooms_json) {
        char buf[256];
        snprintf(buf, sizeof buf, "{\"rooms\":%s}", rooms_json);
        assert_int_equal(jwt_add_grants_json(jwt, buf), 0);
    }
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* Fills hdr with an "Authorization: Bearer" line for tok. Returns hdr. */
static const char *bearer(char *hdr, size_t cap, const char *tok)
{
    snprintf(hdr, cap, "Authorization: Bearer %s\r\n", tok);
    return hdr;
}

/* ------------------------------------------------------------------ rooms claim */

/* A token limited to ["x"] opens /ws/x but gets 403 on /ws/secret and on /ws (the lobby);
 * with "team-*" a prefix is allowed; a token without the claim opens any room. A member of
 * "secret" receives nothing from a refused client. */
static void test_rooms_claim_raw(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--auth-secret", SECRET, NULL};
    sp_start(&f->sp, WEFT_BIN, "defaults", args);
    char hdr[2048];
    struct rc_http r;
    char *x = mint("dave", 3600, "[\"x\"]");
    char *team = mint("erin", 3600, "[\"team-*\"]");
    char *any = mint("frank", 3600, NULL);

    assert_int_equal(open_ex(f, &f->c[0], "/ws/secret", bearer(hdr, sizeof hdr, any), NULL, &r),
                     101);
    assert_int_equal(open_ex(f, &f->c[1], "/ws/secret", bearer(hdr, sizeof hdr, x), NULL, &r), 403);
    assert_non_null(strstr(r.body, "room not allowed"));
    assert_int_equal(open_ex(f, &f->c[1], "/ws", bearer(hdr, sizeof hdr, x), NULL, &r), 403);
    assert_int_equal(open_ex(f, &f->c[1], "/ws/x", bearer(hdr, sizeof hdr, x), NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[2], "/ws/team-a", bearer(hdr, sizeof hdr, team), NULL, &r),
                     101);
    assert_int_equal(open_ex(f, &f->c[3], "/ws/teamb", bearer(hdr, sizeof hdr, team), NULL, &r),
                     403);
    /* the token in the query string is checked the same way */
    char path[2048];
    snprintf(path, sizeof path, "/ws/secret?token=%s", x);
    assert_int_equal(open_ex(f, &f->c[3], path, NULL, NULL, &r), 403);
    /* the allowed member of x exchanges messages with another member of x */
    assert_int_equal(open_ex(f, &f->c[4], "/ws/x", bearer(hdr, sizeof hdr, any), NULL, &r), 101);
    assert_int_equal(rc_send(&f->c[4], 1, "hi", 2), 0);
    assert_int_equal(rc_recv(&f->c[1], RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->c[1].last.len, 2);
    free(x);
    free(team);
    free(any);
    finish(f);
}

/* ------------------------------------------------------------------ tokens without exp */

/* By default a token without exp gets 401 ("token without exp") on every carrier while one
 * with exp is accepted; with --auth-allow-no-exp the same token gets 101. */
static void test_no_exp(void **state)
{
    struct fx *f = *state;
    static const char *const strict[] = {"--auth-secret", SECRET, NULL};
    static const char *const lax[] = {"--auth-secret", SECRET, "--auth-allow-no-exp", NULL};
    char hdr[2048], path[2048];
    struct rc_http r;
    char *forever = mint("gina", 0, NULL);
    char *hour = mint("gina", 3600, NULL);
    snprintf(path, sizeof path, "/echo?token=%s", forever);

    sp_start(&f->sp, WEFT_BIN, "defaults", strict);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", bearer(hdr, sizeof hdr, forever), NULL, &r), 401);
    assert_non_null(strstr(r.body, "token without exp"));
    assert_int_equal(open_ex(f, &f->c[0], path, NULL, NULL, &r), 401);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", bearer(hdr, sizeof hdr, hour), NULL, &r), 101);
    finish(f);
    sp_kill(&f->sp); /* removes its log: the next start makes a new one */

    sp_start(&f->sp, WEFT_BIN, "defaults", lax);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", bearer(hdr, sizeof hdr, forever), NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[1], path, NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[2], "/hub", bearer(hdr, sizeof hdr, hour), NULL, &r), 101);
    free(forever);
    free(hour);
    finish(f);
}

/* ------------------------------------------------------------------ /readyz */

/* --max-connections-per-ip 1 on 2 workers: one client from 127.0.0.1 holds its connection,
 * and /readyz (whose own probe also comes from 127.0.0.1 and may land on either worker)
 * still answers 200, every time; a second client from the same IP gets 503. */
static void test_readyz_per_ip(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--workers", "2", "--max-connections-per-ip", "1", NULL};
    sp_start(&f->sp, WEFT_BIN, "defaults", args);
    struct rc_http r;
    assert_int_equal(open_ex(f, &f->c[0], "/echo", NULL, NULL, &r), 101);
    char body[8192];
    for (int i = 0; i < 12; i++) {
        int st = sp_http_get(f->sp.port, "/readyz", body, sizeof body);
        if (st != 200) fprintf(stderr, "probe %d: %s\n", i, body);
        assert_int_equal(st, 200);
    }
    assert_int_equal(open_ex(f, &f->c[1], "/echo", NULL, NULL, &r), 503);
    finish(f);
}

/* ------------------------------------------------------------------ /echo subprotocol */

/* /echo answers with the first subprotocol offered (and still echoes); none offered: no
 * Sec-WebSocket-Protocol in the 101. */
static void test_echo_subprotocol(void **state)
{
    struct fx *f = *state;
    sp_start(&f->sp, WEFT_BIN, "defaults", NULL);
    struct rc_http r;
    char chosen[256];
    assert_int_equal(open_ex(f, &f->c[0], "/echo", NULL, "chat.v2, chat.v1", &r), 101);
    assert_true(rc_http_header(&r, "Sec-WebSocket-Protocol", chosen, sizeof chosen));
    assert_string_equal(chosen, "chat.v2");
    assert_int_equal(rc_send(&f->c[0], 1, "ping?", 5), 0);
    assert_int_equal(rc_recv(&f->c[0], RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(f->c[0].last.len, 5);
    assert_int_equal(open_ex(f, &f->c[1], "/echo", NULL, "mqtt", &r), 101);
    assert_true(rc_http_header(&r, "Sec-WebSocket-Protocol", chosen, sizeof chosen));
    assert_string_equal(chosen, "mqtt");
    assert_int_equal(open_ex(f, &f->c[2], "/echo", NULL, NULL, &r), 101);
    assert_false(rc_http_header(&r, "Sec-WebSocket-Protocol", chosen, sizeof chosen));
    finish(f);
}

/* ------------------------------------------------------------------ Origin */

/* Without --allow-origin: an Origin naming the Host header (127.0.0.1:PORT; any case; the
 * scheme's default port when Host has none) and no Origin are accepted; another host, another
 * port and "null" get 403, on every route. With --allow-origin '*' every Origin is accepted. */
static void test_origin_default(void **state)
{
    struct fx *f = *state;
    static const char *const any[] = {"--allow-origin", "*", NULL};
    char same[128], other_port[128];
    struct rc_http r;

    sp_start(&f->sp, WEFT_BIN, "defaults", NULL);
    snprintf(same, sizeof same, "Origin: http://127.0.0.1:%u\r\n", f->sp.port);
    snprintf(other_port, sizeof other_port, "Origin: http://127.0.0.1:%u\r\n",
             f->sp.port == 1 ? 2u : f->sp.port - 1u);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", same, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[1], "/echo", same, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[2], "/ws/a", NULL, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[3], "/hub", "Origin: https://evil.example\r\n", NULL, &r),
                     403);
    assert_non_null(strstr(r.body, "origin not allowed"));
    assert_int_equal(open_ex(f, &f->c[3], "/ws/a", "Origin: http://evil.example\r\n", NULL, &r),
                     403);
    assert_int_equal(open_ex(f, &f->c[3], "/echo", other_port, NULL, &r), 403);
    assert_int_equal(open_ex(f, &f->c[3], "/echo", "Origin: null\r\n", NULL, &r), 403);
    /* a Host without a port (a proxy in front) matches the scheme's default port only; the
     * raw client sends its own Host first, so these requests are written by hand */
    assert_int_equal(rc_connect(&f->c[4], f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_true(
        rc_write_str(&f->c[4],
                     "GET /echo HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://EXAMPLE.com\r\n\r\n",
                     RC_TIMEOUT_MS) >= 0);
    assert_int_equal(rc_read_http(&f->c[4], &r, RC_TIMEOUT_MS), 101);
    rc_close(&f->c[4]);
    assert_int_equal(rc_connect(&f->c[4], f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_true(
        rc_write_str(&f->c[4],
                     "GET /echo HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: https://example.com:8443\r\n\r\n",
                     RC_TIMEOUT_MS) >= 0);
    assert_int_equal(rc_read_http(&f->c[4], &r, RC_TIMEOUT_MS), 403);
    finish(f);
    sp_kill(&f->sp);

    sp_start(&f->sp, WEFT_BIN, "defaults", any);
    assert_int_equal(open_ex(f, &f->c[0], "/hub", "Origin: https://evil.example\r\n", NULL, &r),
                     101);
    assert_int_equal(open_ex(f, &f->c[1], "/echo", "Origin: null\r\n", NULL, &r), 101);
    snprintf(same, sizeof same, "Origin: http://127.0.0.1:%u\r\n", f->sp.port);
    assert_int_equal(open_ex(f, &f->c[2], "/ws/a", same, NULL, &r), 101);
    assert_int_equal(open_ex(f, &f->c[3], "/ws/a", NULL, NULL, &r), 101);
    finish(f);
}

/* ------------------------------------------------------------------ room count */

/* GETs /metrics until weft_rooms equals want (up to 5 s: each worker publishes its count
 * once a second). Returns the last value. */
static long long wait_rooms_metric(struct fx *f, long long want)
{
    static char body[65536];
    uint64_t deadline = rc_now_ms() + 5000;
    long long got;
    do {
        assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
        got = sp_metric_int(body, "weft_rooms");
    } while (got != want && rc_now_ms() < deadline && usleep(50000) == 0);
    return got;
}

/* Reads the stats stream of c until a snapshot says "rooms": want (up to 5 s). Returns the
 * last count seen. */
static long long wait_rooms_stats(struct rc *c, long long want)
{
    uint64_t deadline = rc_now_ms() + 5000;
    long long got = -1;
    while (got != want && rc_now_ms() < deadline) {
        json_t *j = hj_recv_json(c);
        if (!strcmp(hj_str(j, "type"), "stats")) got = hj_int(j, "rooms");
        json_decref(j);
    }
    return got;
}

/* --workers 2: 8 /hub clients (spread over both workers by the kernel) each join 25 rooms,
 * 200 in all, so most rooms have a member on a worker that does not own them. weft_rooms and
 * the stats stream's "rooms" (the page's count) say 200, not 200 + the local copies. */
static void test_rooms_counted_once(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--workers", "2", NULL};
    sp_start(&f->sp, WEFT_BIN, "defaults", args);
    for (int k = 0; k < NC; k++) {
        assert_int_equal(open_ex(f, &f->c[k], "/hub", NULL, NULL, NULL), 101);
        for (int j = 0; j < 25; j++) {
            hj_sendf(&f->c[k], "{\"type\":\"join\",\"room\":\"r%d\"}", k * 25 + j);
            json_decref(hj_expect_type(&f->c[k], "joined"));
        }
    }
    assert_int_equal(wait_rooms_metric(f, 200), 200);
    hj_send(&f->c[0], "{\"type\":\"subscribe_stats\"}");
    assert_int_equal(wait_rooms_stats(&f->c[0], 200), 200);
    /* every member leaves: no room is left anywhere */
    for (int k = 0; k < NC; k++)
        rc_close(&f->c[k]);
    assert_int_equal(wait_rooms_metric(f, 0), 0);
    finish(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rooms_claim_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_exp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_per_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_subprotocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rooms_counted_once, setup, teardown),
    };
    sp_guard("test_defaults", "weft serve", 170);
    return cmocka_run_group_tests_name("integration.defaults", tests, NULL, NULL);
}
