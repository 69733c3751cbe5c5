/*
 * test_client_bad.c — the client against a raw test server (a thread with a plain socket)
 * that misbehaves on purpose. Each case must end with the right error reported to the
 * application, never a crash:
 *   wrong Sec-WebSocket-Accept, a non-101 status, an unoffered subprotocol, the server closing
 *   during the handshake, no answer (handshake timeout), a masked server frame, a bad close
 *   code; and well-behaved cases: a fragmented text with a ping in the middle arrives whole
 *   and the ping is answered with a masked pong; every frame the client sends is masked, each
 *   with a fresh key. Also the connect timeout, against a loopback listener whose accept queue
 *   is full (it never accepts, so the kernel drops the client's SYN).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clientkit.h"

enum scenario { S_BAD_ACCEPT, S_STATUS_500, S_UNOFFERED_PROTO, S_EOF, S_SILENT, S_MASKED,
                S_BAD_CLOSE, S_FRAGMENTED, S_RECORD };

#define RAW_FRAMES 8

struct raw {
    int lfd;
    uint16_t port;
    enum scenario sc;
    pthread_t th;
    bool got_pong;      /* S_FRAGMENTED: a masked pong with our payload came back */
    bool got_close;     /* a close frame came from the client */
    /* Headers of the frames the client sent, in order (the parser, in the server role,
     * refuses unmasked ones), and the unmasked payload of the data frames. */
    unsigned nframes;
    struct weft_frame_header frames[RAW_FRAMES];
    char payload[RAW_FRAMES][16];
};

/* Reads the request head; returns its length or -1. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return (int)n;
    }
    return -1;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* Reads client frames until EOF (or 3 s), noting pongs and closes. */
static void read_frames(struct raw *r, int fd)
{
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct weft_frame_parser p;
    struct weft_frame_limits lim = {.role = WEFT_ROLE_SERVER};
    weft_frame_parser_init(&p, &lim);
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        size_t off = 0;
        while (off < (size_t)n) {
            struct weft_frame_event ev;
            size_t used;
            enum weft_frame_event_type t = weft_frame_parse(&p, buf + off, (size_t)n - off, &used, &ev);
            off += used;
            if (t == WEFT_FRAME_ERROR || t == WEFT_FRAME_NEED_MORE)
                break;
            if (t == WEFT_FRAME_HEADER && r->nframes < RAW_FRAMES)
                r->frames[r->nframes++] = ev.header;
            if (t == WEFT_FRAME_DATA && r->nframes && r->nframes <= RAW_FRAMES) {
                char *pl = r->payload[r->nframes - 1];
                size_t have = strlen(pl);
                size_t k = ev.len < sizeof r->payload[0] - 1 - have ? ev.len
                                                                     : sizeof r->payload[0] - 1 - have;
                memcpy(pl + have, ev.data, k);
                pl[have + k] = 0;
            }
            if (t == WEFT_FRAME_DATA && ev.header.opcode == WEFT_OP_PONG && ev.len == 2 &&
                memcmp(ev.data, "p1", 2) == 0)
                r->got_pong = true;
            if (t == WEFT_FRAME_HEADER && ev.header.opcode == WEFT_OP_CLOSE) {
                r->got_close = true;
                /* answer the close so the client completes its handshake */
                uint8_t cl[4] = {0x88, 0x02, 0x03, 0xe8};
                write_all(fd, cl, sizeof cl);
            }
        }
    }
}

static void *raw_main(void *arg)
{
    struct raw *r = arg;
    int fd = accept(r->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char head[8192];
    if (read_head(fd, head, sizeof head) < 0) {
        close(fd);
        return NULL;
    }
    char key[64] = "";
    const char *k = strcasestr(head, "Sec-WebSocket-Key:");
    if (k)
        sscanf(k + 18, " %63s", key);
    char accept_[29];
    weft_ws_accept(key, strlen(key), accept_);
    char resp[512];
    const char *fmt101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n";
    switch (r->sc) {
    case S_BAD_ACCEPT:
        snprintf(resp, sizeof resp, fmt101, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "");
        break;
    case S_STATUS_500:
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
        break;
    case S_UNOFFERED_PROTO:
        snprintf(resp, sizeof resp, fmt101, accept_, "Sec-WebSocket-Protocol: other\r\n");
        break;
    case S_EOF:
        close(fd);
        return NULL;
    case S_SILENT:
        read_frames(r, fd);
        close(fd);
        return NULL;
    default:
        snprintf(resp, sizeof resp, fmt101, accept_, "");
        break;
    }
    write_all(fd, resp, strlen(resp));
    if (r->sc == S_MASKED) {
        uint8_t f[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
        write_all(fd, f, sizeof f);
    } else if (r->sc == S_BAD_CLOSE) {
        uint8_t f[] = {0x88, 0x02, 0x03, 0xe7}; /* 999 */
        write_all(fd, f, sizeof f);
    } else if (r->sc == S_FRAGMENTED) {
        uint8_t f1[] = {0x01, 0x06, 'h', 'e', 'l', 'l', 'o', ' '};
        uint8_t ping[] = {0x89, 0x02, 'p', '1'};
        uint8_t f2[] = {0x00, 0x03, 'w', 'o', 'r'};
        uint8_t f3[] = {0x80, 0x02, 'l', 'd'};
        write_all(fd, f1, sizeof f1);
        write_all(fd, ping, sizeof ping);
        usleep(20000); /* split across reads too */
        write_all(fd, f2, sizeof f2);
        write_all(fd, f3, sizeof f3);
    }
    read_frames(r, fd);
    close(fd);
    return NULL;
}

struct fx {
    struct weft_loop *loop;
    struct raw raw;
    struct ck k;
    char url[128];
};

/* Starts the raw server thread for scenario sc and a client with the recorder. */
static void start(struct fx *f, enum scenario sc, const char *protocols, uint32_t hs_timeout)
{
    f->raw.sc = sc;
    f->raw.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->raw.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->raw.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->raw.lfd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(f->raw.lfd, (struct sockaddr *)&sa, &sl);
    f->raw.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->raw.th, NULL, raw_main, &f->raw), 0);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/x", f->raw.port);
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.protocols = protocols;
    o.handshake_timeout_ms = hs_timeout;
    o.close_timeout_ms = 1000;
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_non_null(f->k.cl);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->loop = weft_loop_new();
    f->k.loop = f->loop;
    f->raw.lfd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ck_free(&f->k);
    if (f->raw.lfd >= 0) {
        shutdown(f->raw.lfd, SHUT_RDWR);
        pthread_join(f->raw.th, NULL);
        close(f->raw.lfd);
    }
    weft_loop_free(f->loop);
    free(f);
    return 0;
}

/* Runs until the client ends; asserts one error of kind err containing `text`, no open. */
static void expect_failure(struct fx *f, int err, const char *text, int status)
{
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    assert_int_equal(f->k.errors, 1);
    assert_int_equal(f->k.err, err);
    assert_int_equal(f->k.http_status, status);
    if (!strstr(f->k.error, text)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", f->k.error, text);
        fail();
    }
    assert_int_equal(f->k.opens, 0);
    assert_null(weft_client_conn(f->k.cl));
}

static void test_bad_accept(void **state)
{
    struct fx *f = *state;
    start(f, S_BAD_ACCEPT, NULL, 0);
    expect_failure(f, WEFT_ERR_PROTO, "Sec-WebSocket-Accept does not match", 0);
}

static void test_status_500(void **state)
{
    struct fx *f = *state;
    start(f, S_STATUS_500, NULL, 0);
    expect_failure(f, WEFT_ERR_PROTO, "HTTP status 500", 500);
}

static void test_unoffered_protocol(void **state)
{
    struct fx *f = *state;
    start(f, S_UNOFFERED_PROTO, "chat, json", 0);
    expect_failure(f, WEFT_ERR_PROTO, "subprotocol that was not offered", 0);
}

static void test_eof_in_handshake(void **state)
{
    struct fx *f = *state;
    start(f, S_EOF, NULL, 0);
    expect_failure(f, WEFT_ERR_PROTO, "closed the connection during the handshake", 0);
}

static void test_handshake_timeout(void **state)
{
    struct fx *f = *state;
    uint64_t t0 = ck_now();
    start(f, S_SILENT, NULL, 300);
    expect_failure(f, WEFT_ERR_TIMEOUT, "no handshake response within 300 ms", 0);
    assert_true(ck_now() - t0 >= 290);
}

/* A masked frame from the server: the client fails the connection with 1002, reports the
 * protocol error through on_error and on_close; the text is never delivered. */
static void test_masked_server_frame(void **state)
{
    struct fx *f = *state;
    start(f, S_MASKED, NULL, 0);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    assert_int_equal(f->k.opens, 1);
    assert_int_equal(f->k.messages, 0);
    assert_int_equal(f->k.close_code, WEFT_CLOSE_PROTOCOL);
    assert_false(f->k.close_clean);
    assert_int_equal(f->k.errors, 1);
    assert_int_equal(f->k.err, WEFT_ERR_PROTO);
    assert_non_null(strstr(f->k.error, "masked frame from a server"));
}

/* A close frame with code 999: 1002 and a protocol error. */
static void test_bad_close_code(void **state)
{
    struct fx *f = *state;
    start(f, S_BAD_CLOSE, NULL, 0);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    assert_int_equal(f->k.opens, 1);
    assert_int_equal(f->k.close_code, WEFT_CLOSE_PROTOCOL);
    assert_int_equal(f->k.errors, 1);
    assert_int_equal(f->k.err, WEFT_ERR_PROTO);
}

/* Two text messages and the close from the client, as the raw server reads them: every frame
 * is masked, no two consecutive frames share a mask key (a fixed or reused key would), none
 * is all zero, and each payload unmasks to what was sent. */
static void test_fresh_mask_keys(void **state)
{
    struct fx *f = *state;
    start(f, S_RECORD, NULL, 0);
    assert_true(CK_RUN(f->loop, f->k.opens == 1, 5000));
    assert_int_equal(weft_client_send(f->k.cl, "first", 5, WEFT_OP_TEXT), WEFT_SEND_SENT);
    assert_int_equal(weft_client_send(f->k.cl, "second", 6, WEFT_OP_TEXT), WEFT_SEND_SENT);
    weft_client_close(f->k.cl, 1000, NULL);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    shutdown(f->raw.lfd, SHUT_RDWR);
    pthread_join(f->raw.th, NULL);
    close(f->raw.lfd);
    f->raw.lfd = -1;
    assert_int_equal(f->raw.nframes, 3);
    assert_int_equal(f->raw.frames[0].opcode, WEFT_OP_TEXT);
    assert_int_equal(f->raw.frames[1].opcode, WEFT_OP_TEXT);
    assert_int_equal(f->raw.frames[2].opcode, WEFT_OP_CLOSE);
    assert_string_equal(f->raw.payload[0], "first");
    assert_string_equal(f->raw.payload[1], "second");
    static const uint8_t zero[4];
    for (unsigned i = 0; i < 3; i++) {
        assert_true(f->raw.frames[i].masked);
        assert_memory_not_equal(f->raw.frames[i].mask, zero, 4);
        if (i > 0)
            assert_memory_not_equal(f->raw.frames[i].mask, f->raw.frames[i - 1].mask, 4);
    }
}

/* connect_timeout_ms 300 against a listener (backlog 0, never accepting) whose accept queue
 * is already full of our own connects: the kernel drops the client's SYN, the connect hangs
 * and the attempt fails after about 300 ms with WEFT_ERR_TIMEOUT "connecting to ... timed
 * out" (the kernel's own SYN retries would take minutes). */
static void test_connect_timeout(void **state)
{
    struct fx *f = *state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    /* Fill the accept queue: connect until one connect stays pending. */
    int fill[8];
    int nfill = 0;
    bool full = false;
    while (!full && nfill < 8) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        fill[nfill++] = fd;
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        assert_true(rc == 0 || errno == EINPROGRESS);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (rc != 0 && poll(&p, 1, 300) == 0)
            full = true;
    }
    assert_true(full);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%u/x", ntohs(sa.sin_port));
    struct weft_client_options o;
    ck_options(&o, &f->k);
    o.connect_timeout_ms = 300;
    /* Timers count from the loop's clock, read at the start of an iteration: refresh it after
     * the filling above, as an application calling weft_connect from a callback would have. */
    weft_loop_poll(f->loop, 0);
    uint64_t t0 = ck_now();
    f->k.cl = weft_connect(f->loop, f->url, &o, NULL);
    assert_non_null(f->k.cl);
    char want[80];
    snprintf(want, sizeof want, "connecting to 127.0.0.1:%u timed out after 300 ms",
             ntohs(sa.sin_port));
    expect_failure(f, WEFT_ERR_TIMEOUT, want, 0);
    uint64_t took = ck_now() - t0;
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    if (took < 290 || took > 2000)
        fail_msg("the attempt failed after %llu ms, expected about 300", (unsigned long long)took);
}

/* Fragmented text with a ping between the fragments (and a pause inside): one whole message
 * "hello world"; the ping is answered with a masked pong carrying its payload; then the
 * client's close 1000 is answered and the close is clean. */
static void test_fragmented_with_ping(void **state)
{
    struct fx *f = *state;
    start(f, S_FRAGMENTED, NULL, 0);
    assert_true(CK_RUN(f->loop, f->k.messages == 1, 5000));
    assert_string_equal((char *)f->k.last, "hello world");
    assert_false(f->k.last_binary);
    weft_client_close(f->k.cl, 1000, NULL);
    assert_true(CK_RUN(f->loop, f->k.ends == 1, 5000));
    assert_true(f->k.close_clean);
    assert_int_equal(f->k.close_code, 1000);
    assert_int_equal(f->k.errors, 0);
    shutdown(f->raw.lfd, SHUT_RDWR);
    pthread_join(f->raw.th, NULL);
    close(f->raw.lfd);
    f->raw.lfd = -1;
    assert_true(f->raw.got_pong);
    assert_true(f->raw.got_close);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unoffered_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_in_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_server_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_close_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fragmented_with_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_mask_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
