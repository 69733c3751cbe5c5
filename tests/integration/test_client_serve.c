/*
 * test_client_serve.c — the library client against the real `weft serve` program (spawned
 * with --host 127.0.0.1; its PID is the only one killed):
 *   echo:      text and a 1 MiB binary message come back intact
 *   rooms:     a message to /ws/r1 reaches the other member of r1, not r2, not the sender
 *   close:     client-initiated 4000 "bye" completes cleanly; server-initiated 1009 (message
 *              over --max-message) and 1001 (SIGTERM) reach the client as clean closes
 *   restart:   SIGKILL the server, start it again on the same port: the client reconnects,
 *              every announced delay within its jitter bound
 *   fragments: a raw client (rawclient.h) in the same room sends a text in three fragments
 *              with a ping between them: the library client receives it whole; then a 1 MiB
 *              binary message goes from the raw client to the library client and another
 *              one back, both intact
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clientkit.h"
#include "rawclient.h"

#ifndef WEFT_BIN
#error "WEFT_BIN must be defined"
#endif

struct srv {
    pid_t pid;
    uint16_t port;
    char log[64];
};

static volatile pid_t guard_pid;

static void on_alarm(int sig)
{
    (void)sig;
    if (guard_pid > 0)
        kill(guard_pid, SIGKILL);
    _exit(1);
}

/* Starts weft serve on port (0 = any) with extra flags; waits for "listening on". */
static bool srv_start(struct srv *s, uint16_t port, const char *const *extra)
{
    snprintf(s->log, sizeof s->log, "/tmp/weft-itest-cs-XXXXXX");
    int lfd = mkstemp(s->log);
    if (lfd < 0)
        return false;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    const char *argv[24] = {WEFT_BIN, "serve", "--host", "127.0.0.1", "--port", portstr,
                            "--shutdown-timeout", "2"};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 0);
        dup2(dn, 1);
        dup2(lfd, 2);
        execv(WEFT_BIN, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    s->pid = pid;
    guard_pid = pid;
    uint64_t dl = ck_now() + 10000;
    while (ck_now() < dl) {
        FILE *fp = fopen(s->log, "r");
        char line[512];
        while (fp && fgets(line, sizeof line, fp)) {
            const char *p = strstr(line, "listening on 127.0.0.1:");
            if (p) {
                s->port = (uint16_t)atoi(p + strlen("listening on 127.0.0.1:"));
                fclose(fp);
                return true;
            }
        }
        if (fp)
            fclose(fp);
        usleep(10000);
    }
    return false;
}

/* Kills (signal) and reaps the server. */
static void srv_kill(struct srv *s, int sig)
{
    if (s->pid > 0) {
        kill(s->pid, sig);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        guard_pid = 0;
    }
    if (s->log[0])
        unlink(s->log);
    s->log[0] = 0;
}

struct fx {
    struct weft_loop *loop;
    struct srv srv;
    struct ck k[3];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->loop = weft_loop_new();
    for (int i = 0; i < 3; i++)
        f->k[i].loop = f->loop;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        ck_free(&f->k[i]);
    srv_kill(&f->srv, SIGKILL);
    weft_loop_free(f->loop);
    free(f);
    return 0;
}

/* Connects recorder k to path on the server. */
static void open_client(struct fx *f, struct ck *k, const char *path, bool reconnect)
{
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u%s", f->srv.port, path);
    struct weft_client_options o;
    ck_options(&o, k);
    o.reconnect = reconnect;
    o.backoff_base_ms = 50;
    o.backoff_cap_ms = 400;
    k->cl = weft_connect(f->loop, url, &o, NULL);
    assert_non_null(k->cl);
    assert_true(CK_RUN(f->loop, k->opens == 1, 5000));
}

static void test_echo(void **state)
{
    struct fx *f = *state;
    assert_true(srv_start(&f->srv, 0, NULL));
    struct ck *k = &f->k[0];
    open_client(f, k, "/echo", false);
    assert_int_equal(weft_client_send(k->cl, "hello", 5, WEFT_OP_TEXT), WEFT_SEND_SENT);
    assert_true(CK_RUN(f->loop, k->messages == 1, 5000));
    assert_string_equal((char *)k->last, "hello");
    assert_false(k->last_binary);
    size_t n = 1 << 20;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 11));
    weft_client_send(k->cl, big, n, WEFT_OP_BINARY);
    assert_true(CK_RUN(f->loop, k->messages == 2, 10000));
    assert_int_equal(k->last_len, n);
    assert_true(k->last_binary);
    assert_memory_equal(k->last, big, n);
    free(big);
}

static void test_rooms(void **state)
{
    struct fx *f = *state;
    assert_true(srv_start(&f->srv, 0, NULL));
    open_client(f, &f->k[0], "/ws/r1", false);
    open_client(f, &f->k[1], "/ws/r1", false);
    open_client(f, &f->k[2], "/ws/r2", false);
    CK_RUN(f->loop, false, 100); /* let the joins settle */
    weft_client_send(f->k[0].cl, "to r1", 5, WEFT_OP_TEXT);
    assert_true(CK_RUN(f->loop, f->k[1].messages == 1, 5000));
    assert_string_equal((char *)f->k[1].last, "to r1");
    CK_RUN(f->loop, false, 200);
    assert_int_equal(f->k[0].messages, 0);
    assert_int_equal(f->k[2].messages, 0);
}

static void test_close_codes(void **state)
{
    struct fx *f = *state;
    static const char *const extra[] = {"--max-message", "1000", NULL};
    assert_true(srv_start(&f->srv, 0, extra));
    /* client-initiated */
    open_client(f, &f->k[0], "/echo", false);
    weft_client_close(f->k[0].cl, 4000, "bye");
    assert_true(CK_RUN(f->loop, f->k[0].ends == 1, 5000));
    assert_int_equal(f->k[0].close_code, 4000);
    assert_true(f->k[0].close_clean);
    /* server-initiated: too big */
    open_client(f, &f->k[1], "/echo", false);
    char big[1001];
    memset(big, 'a', sizeof big);
    weft_client_send(f->k[1].cl, big, sizeof big, WEFT_OP_TEXT);
    assert_true(CK_RUN(f->loop, f->k[1].ends == 1, 5000));
    assert_int_equal(f->k[1].close_code, WEFT_CLOSE_TOO_BIG);
    assert_true(f->k[1].close_clean);
    /* server-initiated: shutdown */
    open_client(f, &f->k[2], "/echo", false);
    kill(f->srv.pid, SIGTERM);
    assert_true(CK_RUN(f->loop, f->k[2].ends == 1, 5000));
    assert_int_equal(f->k[2].close_code, WEFT_CLOSE_GOING_AWAY);
    assert_true(f->k[2].close_clean);
    assert_int_equal(f->k[2].reconnects, 0);
}

static void test_kill_restart(void **state)
{
    struct fx *f = *state;
    assert_true(srv_start(&f->srv, 0, NULL));
    uint16_t port = f->srv.port;
    struct ck *k = &f->k[0];
    open_client(f, k, "/echo", true);
    srv_kill(&f->srv, SIGKILL);
    assert_true(CK_RUN(f->loop, k->closes == 1, 5000));
    assert_int_equal(k->close_code, WEFT_CLOSE_ABNORMAL);
    CK_RUN(f->loop, false, 500);
    assert_true(k->reconnects >= 1);
    assert_true(srv_start(&f->srv, port, NULL));
    assert_int_equal(f->srv.port, port);
    assert_true(CK_RUN(f->loop, k->opens == 2, 5000));
    weft_client_send(k->cl, "back", 4, WEFT_OP_TEXT);
    assert_true(CK_RUN(f->loop, k->messages == 1, 5000));
    assert_string_equal((char *)k->last, "back");
    for (unsigned i = 0; i < k->reconnects && i < CK_MAX; i++) {
        assert_int_equal(k->attempt[i], i + 1);
        assert_true(k->delay[i] <= weft_backoff_bound(50, 400, i + 1));
    }
}

/* Runs the loop for about ms (the library client's side while the raw client waits). */
static void spin(struct fx *f, int ms)
{
    CK_RUN(f->loop, false, ms);
}

/* Room /ws/big with the library client k[0] and a raw client: a fragmented text (3 fragments,
 * a ping between the first two, pauses between them) from the raw client reaches the library
 * client as one message and the ping is answered; a 1 MiB binary message goes raw -> library
 * (written in 64 KiB pieces while the loop runs) and another library -> raw. */
static void test_room_fragments_and_large(void **state)
{
    struct fx *f = *state;
    assert_true(srv_start(&f->srv, 0, NULL));
    struct ck *k = &f->k[0];
    open_client(f, k, "/ws/big", false);
    static struct rc rc;
    assert_int_equal(rc_open(&rc, f->srv.port, "/ws/big"), 0);
    spin(f, 100); /* let the joins settle */

    assert_int_equal(rc_send_frame(&rc, WEFT_OP_TEXT, false, 0, "frag", 4), 0);
    spin(f, 20);
    assert_int_equal(rc_send_frame(&rc, WEFT_OP_PING, true, 0, "p1", 2), 0);
    assert_int_equal(rc_send_frame(&rc, WEFT_OP_CONT, false, 0, "mented ", 7), 0);
    spin(f, 20);
    assert_int_equal(rc_send_frame(&rc, WEFT_OP_CONT, true, 0, "message", 7), 0);
    assert_true(CK_RUN(f->loop, k->messages == 1, 5000));
    assert_string_equal((char *)k->last, "fragmented message");
    assert_int_equal(k->last_len, strlen("fragmented message"));
    assert_false(k->last_binary);
    assert_int_equal(rc_recv(&rc, 5000), RC_PONG); /* the sender is not sent its own message */
    assert_int_equal(rc.last.len, 2);
    assert_memory_equal(rc.last.data, "p1", 2);

    size_t n = 1 << 20;
    uint8_t *up = malloc(n), *down = malloc(n);
    uint8_t *frame = malloc(n + WEFT_FRAME_HEADER_MAX);
    assert_non_null(up);
    assert_non_null(down);
    assert_non_null(frame);
    rc_fill(up, n, 7, false);
    rc_fill(down, n, 8, false);
    long flen = weft_frame_encode(frame, n + WEFT_FRAME_HEADER_MAX, WEFT_ROLE_CLIENT, &rc.rnd,
                                  WEFT_OP_BINARY, true, 0, up, n);
    assert_true(flen > (long)n);
    for (size_t off = 0; off < (size_t)flen; off += 65536) {
        size_t piece = (size_t)flen - off < 65536 ? (size_t)flen - off : 65536;
        assert_int_equal(rc_write(&rc, frame + off, piece, 5000), 0);
        weft_loop_poll(f->loop, 0);
    }
    assert_true(CK_RUN(f->loop, k->messages == 2, 10000));
    assert_true(k->last_binary);
    assert_int_equal(k->last_len, n);
    assert_memory_equal(k->last, up, n);

    enum weft_send_result r = weft_client_send(k->cl, down, n, WEFT_OP_BINARY);
    assert_true(r == WEFT_SEND_SENT || r == WEFT_SEND_QUEUED);
    enum rc_event ev = RC_TIMEOUT;
    uint64_t dl = ck_now() + 10000;
    while (ev == RC_TIMEOUT && ck_now() < dl) {
        weft_loop_poll(f->loop, 2);
        rc_read_once(&rc);
        ev = rc_recv_buffered(&rc);
    }
    assert_int_equal(ev, RC_MESSAGE);
    assert_int_equal(rc.last.opcode, WEFT_OP_BINARY);
    assert_int_equal(rc.last.len, n);
    assert_memory_equal(rc.last.data, down, n);
    free(up);
    free(down);
    free(frame);
    rc_close(&rc);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(170);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_fragments_and_large, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
