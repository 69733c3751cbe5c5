/*
 * test_connect.c — the `weft connect` program, against an in-process echo server:
 *   pipe:        lines from a pipe come back on stdout in order; exit 0 after the close
 *   binary:      --binary sends stdin's bytes as binary; the echo is summarised as hex, or
 *                written raw with --binary-out
 *   large line:  a reply over --max-message: 1009, exit 1, exactly one line on stderr
 *   pty:         stdin a terminal (forkpty, echo off): a typed line comes back; Ctrl-D closes
 *                and the exit status is 0
 *   failures:    refused (exit 1, one line), HTTP 404 (exit 1, "404"), bad usage (exit 2),
 *                wss:// to a plain server (exit 1, a TLS reason)
 *   insecure:    --insecure with wss:// prints its warning line (even with --quiet), not with
 *                ws://
 *   dns:         a name under the reserved .invalid TLD: exit 1, one line naming the host
 *   handshake:   --header, --origin and --subprotocol reach the server (a recording route);
 *                the subprotocol it chose is reported on stderr
 *   reconnect:   --reconnect against a dead port prints each attempt and its delay
 *   json:        --json pretty-prints a JSON reply (two-space indent), other text as is
 * Every child is killed and reaped by its PID; each run is bounded in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "clientkit.h"
#include "harness.h"

#ifndef WEFT_BIN
#error "WEFT_BIN must be defined"
#endif

static struct ts server;

/* What the /rec route saw of the last upgrade request (under server.mu). */
static struct {
    char test_hdr[64], other_hdr[64], origin[64], protocols[128];
    unsigned upgrades;
} seen;

/* Copies header `name` of r into out ("" if absent). */
static void copy_header(struct weft_request *r, const char *name, char *out, size_t cap)
{
    size_t n = 0;
    const char *v = weft_request_header(r, name, &n);
    snprintf(out, cap, "%.*s", v ? (int)n : 0, v ? v : "");
}

/* /rec: records the request's headers and offered subprotocols, accepts "weft.chat" when it
 * is offered (then echoes like /echo). */
static void rec_upgrade(struct weft_request *r, void *route_user)
{
    (void)route_user;
    pthread_mutex_lock(&server.mu);
    seen.upgrades++;
    copy_header(r, "X-Test", seen.test_hdr, sizeof seen.test_hdr);
    copy_header(r, "X-Other", seen.other_hdr, sizeof seen.other_hdr);
    copy_header(r, "Origin", seen.origin, sizeof seen.origin);
    size_t n = 0;
    const char *p = weft_request_protocols(r, &n);
    snprintf(seen.protocols, sizeof seen.protocols, "%.*s", p ? (int)n : 0, p ? p : "");
    bool chat = p && strstr(seen.protocols, "weft.chat");
    pthread_mutex_unlock(&server.mu);
    weft_request_accept(r, chat ? "weft.chat" : NULL, NULL, NULL);
}

static void setup_routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    weft_server_ws(s, "/echo", &ts_echo_handlers, NULL);
    struct weft_ws_handlers rec = ts_echo_handlers;
    rec.on_upgrade = rec_upgrade;
    weft_server_ws(s, "/rec", &rec, NULL);
}

/* Number of lines of text (each ends with '\n'; a last unterminated one counts too). */
static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        if (*p == '\n' || !p[1]) n++;
    return n;
}

struct run {
    int status; /* exit status, -1 if killed for time */
    char out[65536];
    size_t out_len;
    char err[8192];
    size_t err_len;
};

/* Runs weft connect with args, feeding `input` through a pipe (closed afterwards), collecting
 * stdout and stderr, for at most timeout_ms. */
static void run_pipe(struct run *r, const char *const *args, const void *input, size_t in_len,
                     int timeout_ms)
{
    memset(r, 0, sizeof *r);
    int in[2], out[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        const char *argv[32] = {WEFT_BIN, "connect"};
        int n = 2;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(WEFT_BIN, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    signal(SIGPIPE, SIG_IGN);
    size_t written = 0;
    if (in_len == 0) {
        close(in[1]);
        in[1] = -1;
    }
    fcntl(in[1] >= 0 ? in[1] : out[0], F_SETFL, O_NONBLOCK);
    uint64_t dl = ck_now() + (uint64_t)timeout_ms;
    bool out_open = true, err_open = true;
    while ((out_open || err_open) && ck_now() < dl) {
        struct pollfd p[3] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                              {.fd = err_open ? err[0] : -1, .events = POLLIN},
                              {.fd = in[1], .events = POLLOUT}};
        poll(p, 3, 50);
        if (p[2].revents & (POLLOUT | POLLERR)) {
            ssize_t w = write(in[1], (const char *)input + written, in_len - written);
            if (w > 0) written += (size_t)w;
            if (w < 0 && errno != EAGAIN) written = in_len;
            if (written == in_len) {
                close(in[1]);
                in[1] = -1;
            }
        }
        if (p[0].revents) {
            ssize_t n = read(out[0], r->out + r->out_len, sizeof r->out - 1 - r->out_len);
            if (n <= 0)
                out_open = false;
            else
                r->out_len += (size_t)n;
        }
        if (p[1].revents) {
            ssize_t n = read(err[0], r->err + r->err_len, sizeof r->err - 1 - r->err_len);
            if (n <= 0)
                err_open = false;
            else
                r->err_len += (size_t)n;
        }
    }
    if (in[1] >= 0) close(in[1]);
    close(out[0]);
    close(err[0]);
    int st;
    r->status = -1;
    while (ck_now() < dl + 2000) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            pid = 0;
            break;
        }
        usleep(10000);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (r->status != 0) fprintf(stderr, "weft connect exited %d; stderr:\n%s\n", r->status, r->err);
}

static char url[128];

static int group_setup(void **state)
{
    (void)state;
    server.setup = setup_routes;
    if (ts_start(&server) != 0) return -1;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", server.port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ts_stop(&server);
    return 0;
}

static void test_pipe_lines(void **state)
{
    (void)state;
    static struct run r;
    const char *args[] = {"--quiet", url, NULL};
    const char input[] = "one\ntwo\r\nthree"; /* a CRLF line and a last line without LF */
    run_pipe(&r, args, input, strlen(input), 10000);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "one\ntwo\nthree\n");
    assert_int_equal(r.err_len, 0); /* --quiet and no failure */
}

static void test_binary(void **state)
{
    (void)state;
    static struct run r;
    const char *args[] = {"--quiet", "--binary", url, NULL};
    const uint8_t in[] = {0x00, 0x01, 0xfe, 0xff};
    run_pipe(&r, args, in, sizeof in, 10000);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[binary, 4 bytes: 00 01 fe ff]\n");
    const char *args2[] = {"--quiet", "--binary", "--binary-out", url, NULL};
    run_pipe(&r, args2, in, sizeof in, 10000);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out_len, 4);
    assert_memory_equal(r.out, in, 4);
}

/* A 1 MiB line goes out as one message; with --max-message 1000 its echo is refused: the
 * client closes with 1009, reports it on stderr in exactly one line and exits 1. */
static void test_large_line(void **state)
{
    (void)state;
    static struct run r;
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'z', n);
    big[n] = '\n';
    const char *args[] = {"--quiet", "--max-message", "1000", url, NULL};
    run_pipe(&r, args, big, n + 1, 10000);
    free(big);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "1009"));
    assert_non_null(strstr(r.err, "too big"));
    if (count_lines(r.err) != 1) fail_msg("expected one line on stderr, got:\n%s", r.err);
    assert_int_equal(r.out_len, 0);
}

/* --insecure with a wss:// URL: the warning line comes first, even with --quiet (here the
 * server is plain, so the TLS failure is the second and last line). With a ws:// URL the flag
 * changes nothing: no warning, a quiet successful run prints nothing on stderr. */
static void test_insecure_warning(void **state)
{
    (void)state;
    static struct run r;
    static const char warning[] =
        "weft connect: warning: --insecure: the server's certificate and name are not "
        "verified\n";
    char tlsurl[128];
    snprintf(tlsurl, sizeof tlsurl, "wss://127.0.0.1:%u/echo", server.port);
    const char *wss[] = {"--quiet", "--insecure", tlsurl, NULL};
    run_pipe(&r, wss, NULL, 0, 10000);
    assert_int_equal(r.status, 1);
    assert_int_equal(strncmp(r.err, warning, strlen(warning)), 0);
    assert_non_null(strstr(r.err + strlen(warning), "TLS"));
    assert_int_equal(count_lines(r.err), 2);

    const char *ws[] = {"--quiet", "--insecure", url, NULL};
    run_pipe(&r, ws, "x\n", 2, 10000);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "x\n");
    assert_int_equal(r.err_len, 0);
}

/* A host under the reserved .invalid TLD (RFC 6761) never resolves: exit 1 with one line
 * naming the host (c-ares' "not found", or the connect timeout if no name server answers). */
static void test_dns_failure(void **state)
{
    (void)state;
    static struct run r;
    const char *args[] = {"--connect-timeout", "4", "ws://nonexistent.invalid/", NULL};
    uint64_t t0 = ck_now();
    run_pipe(&r, args, NULL, 0, 10000);
    assert_true(ck_now() - t0 < 9000);
    assert_int_equal(r.status, 1);
    if (!strstr(r.err, "weft connect: DNS lookup of nonexistent.invalid failed: ") &&
        !strstr(r.err, "weft connect: resolving nonexistent.invalid timed out"))
        fail_msg("no DNS failure line in:\n%s", r.err);
    assert_int_equal(count_lines(r.err), 1);
}

/* --header (twice), --origin and --subprotocol (twice) reach the server as sent; the server
 * picks "weft.chat", which weft connect reports ("connected to ... (subprotocol: weft.chat,
 * extensions: none)");
 * the connection works (a line comes back). */
static void test_handshake_options(void **state)
{
    (void)state;
    static struct run r;
    char rec[128];
    snprintf(rec, sizeof rec, "ws://127.0.0.1:%u/rec", server.port);
    pthread_mutex_lock(&server.mu);
    memset(&seen, 0, sizeof seen);
    pthread_mutex_unlock(&server.mu);
    const char *args[] = {"--header",      "X-Test: 42",  "--header",
                          "X-Other:b c",   "--origin",    "http://app.example",
                          "--subprotocol", "other.proto", "--subprotocol",
                          "weft.chat",     rec,           NULL};
    run_pipe(&r, args, "hi\n", 3, 10000);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "hi\n");
    char want[200];
    snprintf(want, sizeof want,
             "weft connect: connected to %s (subprotocol: weft.chat, extensions: none)\n", rec);
    assert_non_null(strstr(r.err, want));
    pthread_mutex_lock(&server.mu);
    unsigned upgrades = seen.upgrades;
    char test_hdr[64], other_hdr[64], origin[64], protocols[128];
    memcpy(test_hdr, seen.test_hdr, sizeof test_hdr);
    memcpy(other_hdr, seen.other_hdr, sizeof other_hdr);
    memcpy(origin, seen.origin, sizeof origin);
    memcpy(protocols, seen.protocols, sizeof protocols);
    pthread_mutex_unlock(&server.mu);
    assert_int_equal(upgrades, 1);
    assert_string_equal(test_hdr, "42");
    assert_string_equal(other_hdr, "b c");
    assert_string_equal(origin, "http://app.example");
    assert_string_equal(protocols, "other.proto, weft.chat");

    /* Without an acceptable offer the server chooses none: no subprotocol is reported. */
    const char *none[] = {"--subprotocol", "other.proto", rec, NULL};
    run_pipe(&r, none, "hi\n", 3, 10000);
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want,
             "weft connect: connected to %s (subprotocol: none, extensions: none)\n", rec);
    assert_non_null(strstr(r.err, want));
}

/* --json: a JSON object comes back pretty-printed (two-space indentation, keys in order), a
 * JSON scalar as JSON, a line that is not JSON exactly as received. */
static void test_json(void **state)
{
    (void)state;
    static struct run r;
    const char *args[] = {"--quiet", "--json", url, NULL};
    static const char in[] = "{\"b\":1,\"a\":[true,\"x\"]}\nnot {json\n\"s\"\n";
    run_pipe(&r, args, in, sizeof in - 1, 10000);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    \"x\"\n  ]\n}\n"
                               "not {json\n\"s\"\n");
}

static void test_failures(void **state)
{
    (void)state;
    static struct run r;
    const char *refused[] = {"ws://127.0.0.1:1/", NULL};
    run_pipe(&r, refused, NULL, 0, 10000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "Connection refused"));
    assert_int_equal(memchr(r.err, '\n', r.err_len) - (void *)r.err, (long)r.err_len - 1);

    char u404[128];
    snprintf(u404, sizeof u404, "ws://127.0.0.1:%u/nothing", server.port);
    const char *notfound[] = {u404, NULL};
    run_pipe(&r, notfound, NULL, 0, 10000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "HTTP status 404"));

    const char *usage[] = {"--bogus", url, NULL};
    run_pipe(&r, usage, NULL, 0, 10000);
    assert_int_equal(r.status, 2);
    /* one line: the error and a hint, not the whole usage */
    assert_string_equal(r.err,
                        "weft connect: unknown option '--bogus' (see weft connect --help)\n");
    const char *nourl[] = {NULL};
    run_pipe(&r, nourl, NULL, 0, 10000);
    assert_int_equal(r.status, 2);
    const char *badurl[] = {"http://x/", NULL};
    run_pipe(&r, badurl, NULL, 0, 10000);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unsupported scheme"));
    const char *wss[] = {"wss://127.0.0.1:1/", NULL};
    run_pipe(&r, wss, NULL, 0, 10000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "Connection refused"));
    /* TLS to a plain server: the handshake fails with a TLS reason */
    char tlsurl[128];
    snprintf(tlsurl, sizeof tlsurl, "wss://127.0.0.1:%u/echo", server.port);
    const char *wss2[] = {"--insecure", tlsurl, NULL};
    run_pipe(&r, wss2, NULL, 0, 10000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "TLS"));
    const char *help[] = {"--help", NULL};
    run_pipe(&r, help, NULL, 0, 10000);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--reconnect"));
}

/* --reconnect --max-attempts 3 against a dead port: three "attempt N in D ms" lines with
 * N = 1, 2, 3, then "giving up", exit 1. */
static void test_reconnect_lines(void **state)
{
    (void)state;
    static struct run r;
    const char *args[] = {"--reconnect", "--max-attempts", "3", "ws://127.0.0.1:1/", NULL};
    run_pipe(&r, args, NULL, 0, 20000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "reconnecting: attempt 1 in "));
    assert_non_null(strstr(r.err, "reconnecting: attempt 2 in "));
    assert_non_null(strstr(r.err, "reconnecting: attempt 3 in "));
    assert_null(strstr(r.err, "attempt 4"));
    assert_non_null(strstr(r.err, "giving up after 3"));
}

/* Reads from the pty master until `want` appears (or timeout); returns true if it did. */
static bool pty_expect(int mfd, const char *want, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    uint64_t dl = ck_now() + (uint64_t)timeout_ms;
    buf[0] = 0;
    while (ck_now() < dl) {
        struct pollfd p = {.fd = mfd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0) {
            ssize_t k = read(mfd, buf + n, cap - 1 - n);
            if (k <= 0) return strstr(buf, want) != NULL;
            n += (size_t)k;
            buf[n] = 0;
            if (strstr(buf, want)) return true;
        }
    }
    return false;
}

/* stdin a terminal (echo off, so everything read back comes from weft): after "connected",
 * a typed line comes back as a message; Ctrl-D (end of input) closes with 1000, exit 0. */
static void test_pty(void **state)
{
    (void)state;
    int mfd;
    struct termios tio;
    memset(&tio, 0, sizeof tio);
    cfmakeraw(&tio);
    tio.c_lflag = ICANON; /* line discipline with VEOF, no echo */
    tio.c_iflag = ICRNL;
    tio.c_oflag = OPOST | ONLCR;
    tio.c_cflag = CS8 | CREAD;
    tio.c_cc[VEOF] = 4;
    tio.c_cc[VMIN] = 1;
    pid_t pid = forkpty(&mfd, NULL, &tio, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(WEFT_BIN, WEFT_BIN, "connect", url, (char *)NULL);
        _exit(127);
    }
    char buf[4096];
    bool connected = pty_expect(mfd, "connected to", buf, sizeof buf, 10000);
    bool echoed = false, exited = false;
    int status = -1;
    if (connected) {
        ssize_t w = write(mfd, "typed line\n", 11);
        (void)w;
        echoed = pty_expect(mfd, "typed line", buf, sizeof buf, 10000);
        w = write(mfd, "\x04", 1);
        uint64_t dl = ck_now() + 10000;
        while (ck_now() < dl) {
            pty_expect(mfd, "\x01never", buf, sizeof buf, 50); /* drain */
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                exited = true;
                status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                break;
            }
        }
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    close(mfd);
    assert_true(connected);
    assert_true(echoed);
    assert_true(exited);
    assert_int_equal(status, 0);
}

int main(void)
{
    alarm(170); /* CTest's limit is 180 s: never hang past it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_lines),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_large_line),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_insecure_warning),
        cmocka_unit_test(test_dns_failure),
        cmocka_unit_test(test_handshake_options),
        cmocka_unit_test(test_reconnect_lines),
        cmocka_unit_test(test_pty),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
