/*
 * test_memory.c — the server's heap per idle connection, gated (the figures the README
 * publishes under "Memory per connection", plus a small margin).
 *
 * An in-process server (harness.c) serves /echo; a child process, forked before the server
 * starts so its heap is its own, opens BASE connections, waits, then opens EXTRA more (plain,
 * TLS or permessage-deflate, each finishing its handshake) and holds them idle. The server's
 * heap is read twice, with BASE and with BASE + EXTRA connections open: the marginal bytes per
 * connection are the difference over EXTRA. Heap bytes come from mallinfo2() (uordblks: bytes
 * in use in every arena, chunk headers included), or, under AddressSanitizer or
 * ThreadSanitizer, which replace malloc, from the sanitizer's count of allocated bytes (the
 * requested sizes, no headers: never above glibc's figure). Not RSS: page faults and
 * fragmentation do not move it, so the figure repeats run to run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_SANITIZED_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_SANITIZED_MALLOC 1
#endif
#ifdef WEFT_SANITIZED_MALLOC
#include <sanitizer/allocator_interface.h>
#endif

/* The published marginal heap per idle connection, bytes (README, "Memory per connection"),
 * and the margin the gate allows above it. */
#define PUBLISHED_PLAIN 240
#define PUBLISHED_TLS 14500
#define PUBLISHED_DEFLATE 240
/* What the io_uring backend adds to each (its per-descriptor state and table slot; label
 * uring runs this test with WEFT_IO_BACKEND=uring). */
#define PUBLISHED_URING_EXTRA 80
#define MARGIN_PCT 10

/* The backend the last marginal() server ran on. */
static enum weft_io_backend server_backend = WEFT_IO_EPOLL;

#define BASE 100   /* connections open at the first reading (warms shared structures) */
#define EXTRA 1000 /* connections added before the second */

static char certdir[256];

enum variant { PLAIN, TLS, DEFLATE };

/* Heap bytes in use in this process. */
static size_t heap_bytes(void)
{
#ifdef WEFT_SANITIZED_MALLOC
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
#endif
}

static void routes(struct ts *t, struct weft_server *s)
{
    (void)t;
    TS_CHECK(weft_server_ws(s, "/echo", &ts_echo_handlers, NULL) == WEFT_OK);
}

/* ---------------------------------------------------------------- the client process */

/* Child: one connection through the WebSocket handshake; returns false on any failure. The
 * socket (and the TLS session) stay open until the child exits. */
static bool child_open(enum variant v, uint16_t port, SSL_CTX *ctx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return false;
    SSL *ssl = NULL;
    if (v == TLS) {
        ssl = SSL_new(ctx);
        if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1) return false;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     v == DEFLATE ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
    if ((ssl ? SSL_write(ssl, req, n) : (int)write(fd, req, (size_t)n)) != n) return false;
    char res[1024];
    size_t got = 0;
    while (got < sizeof res - 1) {
        int r = ssl ? SSL_read(ssl, res + got, (int)(sizeof res - 1 - got))
                    : (int)read(fd, res + got, sizeof res - 1 - got);
        if (r <= 0) return false;
        got += (size_t)r;
        res[got] = '\0';
        if (strstr(res, "\r\n\r\n")) break;
    }
    if (strncmp(res, "HTTP/1.1 101", 12) != 0) return false;
    if (v == DEFLATE && !strstr(res, "permessage-deflate")) return false;
    return true; /* ssl and fd are kept: the connection stays open and idle */
}

/* Child main: reads the port from `in`, opens BASE connections, writes 'a' to `out`, waits
 * for a byte, opens EXTRA more, writes 'b', waits for a byte (or EOF) and exits. 'x' on
 * failure. */
static void child_main(enum variant v, int in, int out)
{
    uint16_t port;
    if (read(in, &port, sizeof port) != sizeof port) _exit(1);
    SSL_CTX *ctx = NULL;
    if (v == TLS) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    char c;
    for (int stage = 0; stage < 2; stage++) {
        int n = stage ? EXTRA : BASE;
        for (int i = 0; i < n; i++) {
            if (!child_open(v, port, ctx)) {
                c = 'x';
                (void)!write(out, &c, 1);
                _exit(1);
            }
        }
        c = stage ? 'b' : 'a';
        if (write(out, &c, 1) != 1 || read(in, &c, 1) < 0) _exit(1);
    }
    _exit(0);
}

/* ---------------------------------------------------------------- the server process */

/* Waits (up to 30 s) until the server counts `want` open connections. */
static bool wait_open(struct ts *t, uint64_t want)
{
    for (int i = 0; i < 3000; i++) {
        struct weft_server_stats st;
        ts_stats(t, &st);
        if (st.connections == want) return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Runs one variant and returns the marginal heap bytes per connection. */
static double marginal(enum variant v)
{
    int down[2], up[2];
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        child_main(v, down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);

    struct ts t = {0};
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/server.pem", certdir);
    snprintf(key, sizeof key, "%s/server.key", certdir);
    if (v == TLS) {
        t.cfg.tls_cert_file = cert;
        t.cfg.tls_key_file = key;
    }
    t.cfg.deflate.enabled = v == DEFLATE;
    t.cfg.deflate.no_context_takeover = true; /* weft serve's default: lean */
    t.cfg.deflate.peer_no_context_takeover = true;
    t.setup = routes;
    assert_int_equal(ts_start(&t), 0);
    server_backend = weft_loop_backend(t.loop);
    uint16_t port = t.port;
    assert_int_equal(write(down[1], &port, sizeof port), (ssize_t)sizeof port);

    char c = 0;
    assert_int_equal(read(up[0], &c, 1), 1);
    assert_int_equal(c, 'a');
    assert_true(wait_open(&t, BASE));
    size_t h0 = heap_bytes();
    assert_int_equal(write(down[1], "g", 1), 1);
    assert_int_equal(read(up[0], &c, 1), 1);
    assert_int_equal(c, 'b');
    assert_true(wait_open(&t, BASE + EXTRA));
    size_t h1 = heap_bytes();

    close(down[1]); /* the child exits, closing everything */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(up[0]);
    assert_true(wait_open(&t, 0));
    ts_stop(&t);
    return ((double)h1 - (double)h0) / EXTRA;
}

/* Fails when `got` exceeds the published figure by more than MARGIN_PCT. */
static void gate(const char *what, double got, double published)
{
    if (server_backend == WEFT_IO_URING) published += PUBLISHED_URING_EXTRA;
    double limit = published * (100 + MARGIN_PCT) / 100.0;
    printf("memory: %s: %.0f bytes of heap per idle connection on %s (published %.0f, limit "
           "%.0f)%s\n",
           what, got, weft_io_backend_name(server_backend), published, limit,
#ifdef WEFT_SANITIZED_MALLOC
           " [sanitizer allocator: requested bytes]"
#else
           ""
#endif
    );
    assert_true(got > 0);
    assert_true(got <= limit);
}

static void test_plain(void **state)
{
    (void)state;
    gate("plain", marginal(PLAIN), PUBLISHED_PLAIN);
}

static void test_tls(void **state)
{
    (void)state;
    gate("TLS", marginal(TLS), PUBLISHED_TLS);
}

static void test_deflate(void **state)
{
    (void)state;
    gate("deflate", marginal(DEFLATE), PUBLISHED_DEFLATE);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* BASE + EXTRA descriptors on each side: raise the soft limit to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < BASE + EXTRA + 64) {
        printf("memory: skipped, RLIMIT_NOFILE %lu < %d\n", (unsigned long)rl.rlim_cur,
               BASE + EXTRA + 64);
        return 0;
    }
    snprintf(certdir, sizeof certdir, "/tmp/weft-mem-XXXXXX");
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
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_deflate),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", certdir);
    return failed;
}
