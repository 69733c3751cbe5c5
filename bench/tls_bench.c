/*
 * tls_bench.c — TLS figures for the closing note (a figure, not a test).
 *
 *   tls_bench handshakes CERT KEY [SECONDS] [CLIENT_THREADS]
 *       A weft TLS server on one thread (one core); client threads do full handshakes
 *       (TLS 1.3, no resumption) back to back. Prints handshakes/s and the server thread's CPU
 *       per handshake, i.e. handshakes per second of one core.
 *   tls_bench echo CERT KEY [SECONDS] [CONNS] [INFLIGHT] [SIZE]
 *       The same server with an /echo route, plain then TLS: each client thread keeps INFLIGHT
 *       messages of SIZE bytes in flight on its connection. Prints echoed msgs/s and server CPU
 *       µs per message for both.
 *
 * The server runs in-process on its own thread so its CPU time is measured exactly
 * (CLOCK_THREAD_CPUTIME_ID); clients use blocking OpenSSL and weft's proto functions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "weft.h"

struct server {
    const char *cert, *key; /* NULL: plain */
    struct weft_loop *loop;
    struct weft_server *srv;
    pthread_t thread;
    clockid_t cpu;
    uint16_t port;
    atomic_int ready;
};

static atomic_bool stop_clients;
static atomic_ullong done_count;

/* Echo route. */
static void echo_msg(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* The server thread: creates the server on its loop and runs it. */
static void *server_main(void *arg)
{
    struct server *s = arg;
    s->loop = weft_loop_new();
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true,
                                     .tls_cert_file = s->cert, .tls_key_file = s->key,
                                     .max_backpressure = 64u << 20};
    int err = 0;
    s->srv = s->loop ? weft_server_new(s->loop, &cfg, &err) : NULL;
    if (!s->srv) {
        fprintf(stderr, "server: %s %s\n", weft_strerror(err), weft_tls_last_error());
        exit(1);
    }
    static const struct weft_ws_handlers echo = {.on_message = echo_msg};
    weft_server_ws(s->srv, "/echo", &echo, NULL);
    s->port = weft_server_port(s->srv);
    pthread_getcpuclockid(pthread_self(), &s->cpu);
    atomic_store(&s->ready, 1);
    weft_loop_run(s->loop);
    weft_server_free(s->srv);
    weft_loop_free(s->loop);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A blocking TCP connection to 127.0.0.1:port. */
static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct client {
    uint16_t port;
    SSL_CTX *ctx; /* NULL: plain */
    size_t inflight, size;
    pthread_t thread;
};

/* Handshake loop: connect, full TLS handshake, close. */
static void *hs_client(void *arg)
{
    struct client *c = arg;
    while (!atomic_load(&stop_clients)) {
        int fd = dial(c->port);
        if (fd < 0)
            continue;
        SSL *ssl = SSL_new(c->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1) {
            atomic_fetch_add(&done_count, 1);
            SSL_shutdown(ssl);
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* I/O through TLS or the plain socket. */
static int xwrite(SSL *ssl, int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w;
        if (ssl) {
            size_t k = 0;
            w = SSL_write_ex(ssl, b, n, &k) ? (ssize_t)k : -1;
        } else {
            w = send(fd, b, n, MSG_NOSIGNAL);
        }
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t xread(SSL *ssl, int fd, void *p, size_t n)
{
    if (ssl) {
        size_t k = 0;
        return SSL_read_ex(ssl, p, n, &k) ? (ssize_t)k : -1;
    }
    return recv(fd, p, n, 0);
}

/* Echo loop: one connection, `inflight` messages kept in flight. */
static void *echo_client(void *arg)
{
    struct client *c = arg;
    int fd = dial(c->port);
    SSL *ssl = NULL;
    if (fd < 0)
        return NULL;
    if (c->ctx) {
        ssl = SSL_new(c->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1)
            return NULL;
    }
    struct weft_random rnd = {0};
    char key[25], req[512];
    weft_handshake_key(&rnd, key);
    struct weft_client_request cr = {.host = "127.0.0.1", .path = "/echo"};
    int n = weft_handshake_request(req, sizeof req, &cr, key);
    xwrite(ssl, fd, req, (size_t)n);
    static __thread uint8_t in[1 << 20];
    size_t have = 0;
    for (;;) { /* the 101 head */
        ssize_t r = xread(ssl, fd, in + have, sizeof in - have);
        if (r <= 0)
            return NULL;
        have += (size_t)r;
        uint8_t *e = memmem(in, have, "\r\n\r\n", 4);
        if (e) {
            size_t hl = (size_t)(e + 4 - in);
            memmove(in, in + hl, have - hl);
            have -= hl;
            break;
        }
    }
    uint8_t *payload = calloc(1, c->size), *frame = malloc(c->size + 14);
    memset(payload, 'x', c->size);
    long fl = weft_frame_encode(frame, c->size + 14, WEFT_ROLE_CLIENT, &rnd, WEFT_OP_BINARY,
                                true, 0, payload, c->size);
    struct weft_msg_parser mp;
    struct weft_msg_limits lim = {.frame = {.role = WEFT_ROLE_CLIENT}, .max_message = 0};
    weft_msg_parser_init(&mp, &lim);
    for (size_t i = 0; i < c->inflight; i++)
        xwrite(ssl, fd, frame, (size_t)fl);
    while (!atomic_load(&stop_clients)) {
        size_t off = 0, got = 0;
        for (;;) {
            struct weft_msg_event ev;
            size_t used = 0;
            enum weft_msg_event_type t = weft_msg_parse(&mp, in + off, have - off, &used, &ev);
            off += used;
            if (t == WEFT_MSG_NEED_MORE)
                break;
            if (t == WEFT_MSG_DATA && ev.fin)
                got++;
        }
        memmove(in, in + off, have - off);
        have -= off;
        for (size_t i = 0; i < got; i++)
            xwrite(ssl, fd, frame, (size_t)fl);
        atomic_fetch_add(&done_count, got);
        ssize_t r = xread(ssl, fd, in + have, sizeof in - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    free(payload);
    free(frame);
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return NULL;
}

/* Starts a server thread and waits until it listens. */
static void server_start(struct server *s)
{
    pthread_create(&s->thread, NULL, server_main, s);
    while (!atomic_load(&s->ready))
        usleep(1000);
}

/* Runs nthreads clients of fn for secs; returns completions and the server CPU seconds. */
static void measure(struct server *s, void *(*fn)(void *), struct client *proto, int nthreads,
                    double secs, double *count, double *cpu, double *wall)
{
    struct client cl[64];
    atomic_store(&stop_clients, false);
    for (int i = 0; i < nthreads; i++) {
        cl[i] = *proto;
        pthread_create(&cl[i].thread, NULL, fn, &cl[i]);
    }
    usleep(300 * 1000); /* warm-up */
    unsigned long long c0 = atomic_load(&done_count);
    double t0 = now_s(), u0 = cpu_s(s->cpu);
    usleep((useconds_t)(secs * 1e6));
    unsigned long long c1 = atomic_load(&done_count);
    double t1 = now_s(), u1 = cpu_s(s->cpu);
    atomic_store(&stop_clients, true);
    weft_loop_stop(s->loop); /* unblocks echo clients: the server closes */
    for (int i = 0; i < nthreads; i++)
        pthread_join(cl[i].thread, NULL);
    *count = (double)(c1 - c0);
    *cpu = u1 - u0;
    *wall = t1 - t0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tls_bench handshakes|echo CERT KEY [SECONDS] [...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    double secs = argc > 4 ? atof(argv[4]) : 5;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    double count, cpu, wall;
    if (!strcmp(argv[1], "handshakes")) {
        int threads = argc > 5 ? atoi(argv[5]) : 2;
        struct server s = {.cert = argv[2], .key = argv[3]};
        server_start(&s);
        struct client proto = {.port = s.port, .ctx = ctx};
        measure(&s, hs_client, &proto, threads, secs, &count, &cpu, &wall);
        pthread_join(s.thread, NULL);
        printf("handshakes: %.0f/s wall (%d client threads), server CPU %.1f us each = %.0f "
               "handshakes/s per core\n",
               count / wall, threads, cpu / count * 1e6, count / cpu);
        printf("RESULT handshakes_per_s=%.0f per_core=%.0f\n", count / wall, count / cpu);
    } else {
        int conns = argc > 5 ? atoi(argv[5]) : 1;
        size_t inflight = argc > 6 ? (size_t)atoi(argv[6]) : 16;
        size_t size = argc > 7 ? (size_t)atoi(argv[7]) : 64;
        for (int tls = 0; tls < 2; tls++) {
            struct server s = {.cert = tls ? argv[2] : NULL, .key = tls ? argv[3] : NULL};
            server_start(&s);
            struct client proto = {.port = s.port, .ctx = tls ? ctx : NULL,
                                   .inflight = inflight, .size = size};
            measure(&s, echo_client, &proto, conns, secs, &count, &cpu, &wall);
            pthread_join(s.thread, NULL);
            printf("echo %-5s %d conns x %zu in flight x %zu B: %.0f msgs/s, server CPU %.2f us/msg\n",
                   tls ? "tls" : "plain", conns, inflight, size, count / wall, cpu / count * 1e6);
            printf("RESULT %s msgs_per_s=%.0f server_us_per_msg=%.3f\n", tls ? "tls" : "plain",
                   count / wall, cpu / count * 1e6);
        }
    }
    SSL_CTX_free(ctx);
    return 0;
}
