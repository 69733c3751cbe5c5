/*
 * test_serve.c — the real `weft serve` program, spawned with --host 127.0.0.1 --port 0: its
 * stderr goes to a temporary file that is read for "listening on 127.0.0.1:PORT". /echo
 * echoes, /ws/<room> rooms are isolated and /ws is the room "lobby", GET /healthz answers
 * 200, and SIGTERM closes every client with 1001 and exits 0 (also when a client never
 * answers, after --shutdown-timeout). Started with a soft RLIMIT_NOFILE below the hard one, it
 * raises it and logs the hard limit. --host ::1 (IPv6; skipped, saying so, without it) and
 * --unix PATH serve the same echo. Every path (teardown, SIGALRM guard) kills and reaps
 * exactly the PID it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NCLIENTS 6

struct fx {
    struct sp sp; /* the weft serve we started */
    struct rc c[NCLIENTS];
    bool skipped;  /* setup found nothing to test on this machine (the test says why) */
    char sock[96]; /* the --unix socket path, "" if none */
};

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (size_t i = 0; i < NCLIENTS; i++)
        rc_close(&f->c[i]);
    sp_kill(&f->sp);
    if (f->sock[0]) unlink(f->sock);
    free(f);
    return 0;
}

/* A new fixture, its clients closed. */
static struct fx *fx_new(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    *state = f;
    for (size_t i = 0; i < NCLIENTS; i++)
        f->c[i].fd = -1;
    return f;
}

/* Starts weft serve (f->sp as prepared by the caller) with the given extra options
 * (NULL-terminated) and waits for its port. */
static int spawn_fx(void **state, struct fx *f, const char *const *extra)
{
    if (sp_try_start(&f->sp, WEFT_BIN, "serve", extra) != 0) {
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* Starts weft serve with the given extra options (NULL-terminated) and waits for its port. */
static int spawn(void **state, const char *const *extra)
{
    struct fx *f = fx_new(state);
    return f ? spawn_fx(state, f, extra) : -1;
}

static const char *const default_extra[] = {"--shutdown-timeout", "2", NULL};

static int setup_default(void **state)
{
    return spawn(state, default_extra);
}

/* The soft RLIMIT_NOFILE the server is started with, below the hard limit it must raise to. */
#define LOW_NOFILE 1024

/* weft serve started with a soft RLIMIT_NOFILE of LOW_NOFILE (skipped if the hard limit is not
 * above it: there would be nothing to raise). */
static int setup_low_nofile(void **state)
{
    struct fx *f = fx_new(state);
    if (!f) return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= LOW_NOFILE) {
        f->skipped = true;
        return 0;
    }
    f->sp.nofile = LOW_NOFILE;
    return spawn_fx(state, f, default_extra);
}

/* weft serve --host ::1 (skipped if the machine has no IPv6 loopback). */
static int setup_ip6(void **state)
{
    struct fx *f = fx_new(state);
    if (!f) return -1;
    if (!rc_ip6_available()) {
        f->skipped = true;
        return 0;
    }
    f->sp.host = "::1";
    return spawn_fx(state, f, default_extra);
}

/* weft serve --unix PATH, PATH unique to this test. */
static int setup_unix(void **state)
{
    struct fx *f = fx_new(state);
    if (!f) return -1;
    rc_unix_path(f->sock, sizeof f->sock, "serve");
    const char *const extra[] = {"--unix", f->sock, "--shutdown-timeout", "2", NULL};
    return spawn_fx(state, f, extra);
}

static int setup_limits(void **state)
{
    static const char *const extra[] = {
        "--max-message", "1000", "--idle-timeout", "0.5", "--handshake-timeout", "0.5", NULL};
    return spawn(state, extra);
}

/* The limit flags reach the server: --max-message 1000 → a 1001-byte message is closed with
 * 1009 (1000 bytes echo); --idle-timeout 0.5 → close 1001 after about 0.5 s of silence;
 * --handshake-timeout 0.5 → half a head is cut after about 0.5 s. */
static void test_serve_limits(void **state)
{
    struct fx *f = *state;
    uint8_t buf[1001];
    rc_fill(buf, sizeof buf, 1, false);
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->sp.port, "/echo"), 0);
    assert_int_equal(rc_send(c, WEFT_OP_BINARY, buf, 1000), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.len, 1000);
    assert_int_equal(rc_send(c, WEFT_OP_BINARY, buf, 1001), 0);
    assert_int_equal(rc_expect_close(c, RC_TIMEOUT_MS), 1009);

    struct rc *idle = &f->c[1];
    assert_int_equal(rc_open(idle, f->sp.port, "/ws/quiet"), 0);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(rc_recv(idle, 500 + 2000), RC_CLOSE);
    assert_int_equal(idle->last.close_code, 1001);
    assert_true(rc_now_ms() - t0 + 50 >= 500);

    struct rc *half = &f->c[2];
    assert_int_equal(rc_connect(half, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    t0 = rc_now_ms();
    assert_int_equal(rc_write_str(half, "GET /echo HTTP/1.1\r\nHo", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_wait_eof(half, 500 + 2000, NULL), 0);
    uint64_t el = rc_now_ms() - t0;
    assert_true(el + 50 >= 500);
    assert_true(el <= 500 + 2000);
}

static int setup_level0(void **state)
{
    static const char *const extra[] = {"--deflate-level", "0", "--shutdown-timeout", "2", NULL};
    return spawn(state, extra);
}

/* Negotiates permessage-deflate on /echo, sends 2000 'a' uncompressed and returns the payload
 * length of the echo's first frame as read off the wire; *rsv1 says whether it was sent
 * compressed. */
static size_t wire_echo_len(struct fx *f, bool *rsv1)
{
    struct rc *c = &f->c[0];
    struct rc_http resp;
    assert_int_equal(rc_connect(c, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_write_str(c,
                                  "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                                  RC_TIMEOUT_MS),
                     0);
    assert_int_equal(rc_read_http(c, &resp, RC_TIMEOUT_MS), 101);
    char ext[256];
    assert_true(rc_http_header(&resp, "Sec-WebSocket-Extensions", ext, sizeof ext));
    assert_non_null(strstr(ext, "permessage-deflate"));
    char msg[2000];
    memset(msg, 'a', sizeof msg);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, msg, sizeof msg), 0);
    uint64_t t0 = rc_now_ms();
    while (c->in_len - c->in_off < 4 && rc_now_ms() - t0 < RC_TIMEOUT_MS)
        if (rc_read_once(c) == -1)
            usleep(1000);
    assert_true(c->in_len - c->in_off >= 4);
    const uint8_t *h = c->in + c->in_off;
    assert_int_equal(h[0] & 0xBF, 0x81); /* FIN, text */
    *rsv1 = (h[0] & 0x40) != 0;
    size_t len = h[1] & 0x7f;
    return len == 126 ? (size_t)h[2] << 8 | h[3] : len;
}

/* --deflate-level: the default (1) compresses 2000 'a' to a few bytes; level 0 makes stored
 * blocks, no smaller than the message, so the server sends the echo uncompressed. */
static void test_serve_deflate_level(void **state)
{
    struct fx *f = *state;
    bool rsv1 = false;
    assert_true(wire_echo_len(f, &rsv1) < 64);
    assert_true(rsv1);
}

static void test_serve_deflate_level0(void **state)
{
    struct fx *f = *state;
    bool rsv1 = true;
    assert_int_equal(wire_echo_len(f, &rsv1), 2000);
    assert_false(rsv1);
}

static void test_serve_echo(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    assert_int_equal(rc_open(c, f->sp.port, "/echo"), 0);
    static const size_t sizes[] = {0, 126, 70000};
    uint8_t *buf = malloc(70000);
    assert_non_null(buf);
    for (size_t i = 0; i < 3; i++) {
        for (int op = WEFT_OP_TEXT; op <= WEFT_OP_BINARY; op++) {
            rc_fill(buf, sizes[i], (uint32_t)(i * 2 + (size_t)op), op == WEFT_OP_TEXT);
            if (rc_send(c, (uint8_t)op, buf, sizes[i]) != 0 ||
                rc_recv(c, RC_TIMEOUT_MS) != RC_MESSAGE || c->last.opcode != op ||
                c->last.len != sizes[i] || (sizes[i] && memcmp(c->last.data, buf, sizes[i]))) {
                free(buf);
                sp_dump_log(&f->sp);
                fail_msg("echo of %zu bytes (opcode %d) failed", sizes[i], op);
            }
        }
    }
    free(buf);
    assert_int_equal(rc_send(c, WEFT_OP_PING, "pp", 2), 0);
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_PONG);
    assert_memory_equal(c->last.data, "pp", 2);
}

/* Receives one message on c and asserts it is (op, data). */
static void expect_msg(struct rc *c, uint8_t op, const char *data)
{
    assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(c->last.opcode, op);
    assert_int_equal(c->last.len, strlen(data));
    assert_memory_equal(c->last.data, data, strlen(data));
}

/* /ws/a, /ws/b, /ws and /ws/lobby: messages go to the other members of the sender's room
 * only; /ws and /ws/lobby are the same room; text and binary are kept. */
static void test_serve_rooms(void **state)
{
    struct fx *f = *state;
    struct rc *a1 = &f->c[0], *a2 = &f->c[1], *b1 = &f->c[2], *l1 = &f->c[3], *l2 = &f->c[4];
    assert_int_equal(rc_open(a1, f->sp.port, "/ws/a"), 0);
    assert_int_equal(rc_open(a2, f->sp.port, "/ws/a"), 0);
    assert_int_equal(rc_open(b1, f->sp.port, "/ws/b"), 0);
    assert_int_equal(rc_open(l1, f->sp.port, "/ws"), 0);
    assert_int_equal(rc_open(l2, f->sp.port, "/ws/lobby"), 0);

    assert_int_equal(rc_send(a1, WEFT_OP_TEXT, "to a", 4), 0);
    expect_msg(a2, WEFT_OP_TEXT, "to a");
    assert_int_equal(rc_send(b1, WEFT_OP_BINARY, "to b", 4), 0); /* alone in b */
    assert_int_equal(rc_send(l1, WEFT_OP_BINARY, "\x00lobby", 6), 0);
    assert_int_equal(rc_recv(l2, RC_TIMEOUT_MS), RC_MESSAGE);
    assert_int_equal(l2->last.opcode, WEFT_OP_BINARY);
    assert_int_equal(l2->last.len, 6);
    assert_memory_equal(l2->last.data, "\x00lobby", 6);
    assert_int_equal(rc_send(l2, WEFT_OP_TEXT, "back", 4), 0);
    expect_msg(l1, WEFT_OP_TEXT, "back");
    assert_int_equal(rc_send(a2, WEFT_OP_TEXT, "reply", 5), 0);
    expect_msg(a1, WEFT_OP_TEXT, "reply");

    /* Nobody received anything else: not their own messages, not other rooms'. */
    assert_int_equal(rc_recv(a1, 200), RC_TIMEOUT);
    for (int i = 1; i < 5; i++)
        assert_int_equal(rc_recv(&f->c[i], 50), RC_TIMEOUT);
}

static void test_serve_healthz(void **state)
{
    struct fx *f = *state;
    struct rc *c = &f->c[0];
    struct rc_http r;
    assert_int_equal(rc_connect(c, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(
        rc_write_str(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_read_http(c, &r, RC_TIMEOUT_MS), 200);
    struct rc *d = &f->c[1];
    assert_int_equal(rc_connect(d, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(
        rc_write_str(d, "GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_read_http(d, &r, RC_TIMEOUT_MS), 404);
}

/* Started with a soft RLIMIT_NOFILE of 1024 (below the hard limit), the server raised it to
 * the hard limit: it says so in the log with how many connections it can hold, and its
 * /proc/PID/limits shows the soft limit equal to the hard one. */
static void test_serve_nofile_logged(void **state)
{
    struct fx *f = *state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (f->skipped) {
        print_message("hard RLIMIT_NOFILE %llu is not above %d: no raise to test, skipped\n",
                      (unsigned long long)rl.rlim_max, LOW_NOFILE);
        skip();
    }
    FILE *fp = fopen(f->sp.log, "r");
    assert_non_null(fp);
    char line[512], want[64];
    snprintf(want, sizeof want, "open file limit %llu: can hold about",
             (unsigned long long)rl.rlim_max);
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        found = strstr(line, want) != NULL;
    fclose(fp);
    if (!found) {
        sp_dump_log(&f->sp);
        fail_msg("started with a soft limit of %d, no \"%s N connections\" line in the log",
                 LOW_NOFILE, want);
    }

    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/limits", (long)f->sp.pid);
    fp = fopen(path, "r");
    assert_non_null(fp);
    unsigned long long soft = 0, hard = 0;
    bool seen = false;
    while (!seen && fgets(line, sizeof line, fp))
        seen = sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2;
    fclose(fp);
    assert_true(seen);
    assert_int_equal(hard, (unsigned long long)rl.rlim_max);
    assert_int_equal(soft, hard);
}

/* Asserts the log has a line containing needle. */
static void expect_log(struct fx *f, const char *needle)
{
    if (sp_log_count(&f->sp, needle) < 1) {
        sp_dump_log(&f->sp);
        fail_msg("no \"%s\" in the log", needle);
    }
}

/* Over a connection c open on /echo: text and binary echo; over h, connected on the same
 * transport, GET /healthz answers 200. Then SIGTERM: c gets close 1001 and the process exits
 * 0. */
static void echo_then_stop(struct fx *f, struct rc *c, struct rc *h)
{
    uint8_t buf[300];
    for (int op = WEFT_OP_TEXT; op <= WEFT_OP_BINARY; op++) {
        rc_fill(buf, sizeof buf, (uint32_t)op, op == WEFT_OP_TEXT);
        assert_int_equal(rc_send(c, (uint8_t)op, buf, sizeof buf), 0);
        assert_int_equal(rc_recv(c, RC_TIMEOUT_MS), RC_MESSAGE);
        assert_int_equal(c->last.opcode, op);
        assert_int_equal(c->last.len, sizeof buf);
        assert_memory_equal(c->last.data, buf, sizeof buf);
    }
    struct rc_http r;
    assert_int_equal(
        rc_write_str(h, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_read_http(h, &r, RC_TIMEOUT_MS), 200);

    assert_int_equal(kill(f->sp.pid, SIGTERM), 0);
    assert_int_equal(rc_expect_close(c, RC_TIMEOUT_MS), 1001);
    rc_close(c);
    rc_close(h);
    sp_expect_clean_exit(&f->sp, sp_wait(&f->sp, 10000));
}

/* weft serve --host ::1: it reports [::1]:PORT, echoes to a client over IPv6 and answers
 * /healthz there; SIGTERM ends it cleanly. Skipped (and said so) without an IPv6 loopback. */
static void test_serve_ip6(void **state)
{
    struct fx *f = *state;
    if (f->skipped) {
        print_message("no IPv6 loopback (::1) on this machine: test_serve_ip6 skipped\n");
        skip();
    }
    char want[64];
    snprintf(want, sizeof want, "listening on [::1]:%u", (unsigned)f->sp.port);
    expect_log(f, want);
    assert_int_equal(rc_open_ip6(&f->c[0], f->sp.port, "/echo"), 0);
    assert_int_equal(rc_connect_ip6(&f->c[1], f->sp.port, RC_TIMEOUT_MS), 0);
    echo_then_stop(f, &f->c[0], &f->c[1]);
}

/* weft serve --unix PATH: it reports unix:PATH, the socket file exists, a client over it gets
 * echoes and /healthz; after SIGTERM the process exits 0 and the socket file is gone. */
static void test_serve_unix(void **state)
{
    struct fx *f = *state;
    char want[160];
    snprintf(want, sizeof want, "listening on unix:%s", f->sock);
    expect_log(f, want);
    struct stat st;
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(rc_open_unix(&f->c[0], f->sock, "/echo"), 0);
    assert_int_equal(rc_connect_unix(&f->c[1], f->sock, RC_TIMEOUT_MS), 0);
    echo_then_stop(f, &f->c[0], &f->c[1]);
    if (stat(f->sock, &st) == 0) fail_msg("weft serve left its socket file %s behind", f->sock);
    assert_int_equal(errno, ENOENT);
}

/* SIGTERM: every client (echo and room) gets close 1001; after they answer and close, the
 * process exits 0 promptly. */
static void test_serve_sigterm(void **state)
{
    struct fx *f = *state;
    static const char *const paths[NCLIENTS] = {"/echo", "/echo", "/echo", "/ws/x", "/ws/x", "/ws"};
    for (int i = 0; i < NCLIENTS; i++)
        assert_int_equal(rc_open(&f->c[i], f->sp.port, paths[i]), 0);
    assert_int_equal(rc_send(&f->c[0], WEFT_OP_TEXT, "x", 1), 0);
    expect_msg(&f->c[0], WEFT_OP_TEXT, "x");

    uint64_t t0 = rc_now_ms();
    assert_int_equal(kill(f->sp.pid, SIGTERM), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        int code = rc_expect_close(&f->c[i], RC_TIMEOUT_MS);
        if (code != 1001) sp_dump_log(&f->sp);
        assert_int_equal(code, 1001);
        rc_close(&f->c[i]);
    }
    sp_expect_clean_exit(&f->sp, sp_wait(&f->sp, 10000));
    /* All answered: no need to wait for the 2 s shutdown timeout (1.5 s of slack for the
     * sanitizers' exit work). */
    assert_true(rc_now_ms() - t0 < 3500);
}

/* SIGTERM with a client that never answers: it gets close 1001 and is dropped at the
 * shutdown timeout (2 s); the process still exits 0. */
static void test_serve_sigterm_silent_client(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rc_open(&f->c[0], f->sp.port, "/echo"), 0);
    assert_int_equal(rc_open(&f->c[1], f->sp.port, "/ws/y"), 0);
    uint64_t t0 = rc_now_ms();
    assert_int_equal(kill(f->sp.pid, SIGTERM), 0);
    assert_int_equal(rc_expect_close(&f->c[0], RC_TIMEOUT_MS), 1001);
    rc_close(&f->c[0]);
    assert_int_equal(rc_recv(&f->c[1], RC_TIMEOUT_MS), RC_CLOSE);
    assert_int_equal(f->c[1].last.close_code, 1001);
    assert_int_equal(rc_wait_eof(&f->c[1], 5000, NULL), 0);
    sp_expect_clean_exit(&f->sp, sp_wait(&f->sp, 10000));
    uint64_t el = rc_now_ms() - t0;
    assert_true(el + 100 >= 2000); /* it did wait for the silent one */
    assert_true(el < 2000 + 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serve_echo, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_serve_deflate_level, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_serve_deflate_level0, setup_level0, teardown),
        cmocka_unit_test_setup_teardown(test_serve_rooms, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_serve_healthz, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_serve_nofile_logged, setup_low_nofile, teardown),
        cmocka_unit_test_setup_teardown(test_serve_ip6, setup_ip6, teardown),
        cmocka_unit_test_setup_teardown(test_serve_unix, setup_unix, teardown),
        cmocka_unit_test_setup_teardown(test_serve_limits, setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_serve_sigterm, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_serve_sigterm_silent_client, setup_default, teardown),
    };
    sp_guard("test_serve", "weft serve", 170);
    return cmocka_run_group_tests_name("integration.serve", tests, NULL, NULL);
}
