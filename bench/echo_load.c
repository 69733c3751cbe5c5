/*
 * echo_load.c — a lean single-threaded epoll load generator for WebSocket echo servers (a
 * figure, not a test).
 *
 * Opens N connections to ws://HOST:PORT/PATH (handshakes checked with weft's proto
 * functions), keeps W messages of S bytes in flight on each (every echo received is answered
 * with a new message), runs a warm-up, then measures for D seconds: echoed messages per
 * second, and, given --server-pid, the server's CPU time per message from /proc/PID/stat
 * (utime + stime over the same window), plus this generator's own CPU %.
 *
 * The masked frame is encoded once with one random key and reused: a server cannot tell, and
 * the generator stays cheap. Received frames go through weft_msg_parse (client role), which
 * also checks that what comes back is valid WebSocket.
 *
 * usage: echo_load [options] URL          URL = ws://127.0.0.1:8080/echo or 127.0.0.1:8080/echo
 *   -c N            connections (100)       -w W   messages in flight per connection (8)
 *   -s S            payload bytes (64)      -d D   measured seconds (5)
 *   --warmup SEC    warm-up seconds (1)     --binary  send binary (default text)
 *   --server-pid P  report the server's CPU µs per message
 * The last line is machine-readable: RESULT msgs_per_s=... server_us_per_msg=... client_cpu_pct=...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

#define RBUF_SIZE (256 * 1024)

struct conn {
    int fd;
    struct weft_msg_parser mp;
    uint8_t *out; /* frames waiting for the kernel */
    size_t out_len, out_cap;
    bool dead;
};

static uint64_t messages; /* echoes received */
static unsigned errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds of CPU (user + system) this process used. */
static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Seconds of CPU (utime + stime) of pid from /proc/PID/stat, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p) return -1;
    /* Fields after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime(14) stime(15). */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Parses ws://host:port/path or host:port/path. Returns 0 or -1. */
static int parse_url(const char *url, char *host, size_t hcap, unsigned *port, char *path,
                     size_t pcap)
{
    if (!strncmp(url, "ws://", 5)) url += 5;
    const char *colon = strchr(url, ':');
    const char *slash = strchr(url, '/');
    if (!colon || (slash && slash < colon)) return -1;
    size_t hl = (size_t)(colon - url);
    if (hl == 0 || hl >= hcap) return -1;
    memcpy(host, url, hl);
    host[hl] = '\0';
    *port = (unsigned)strtoul(colon + 1, NULL, 10);
    snprintf(path, pcap, "%s", slash ? slash : "/");
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* Connects and completes the handshake (blocking, 5 s timeouts). Returns the fd or -1. */
static int ws_open(const char *host, unsigned port, const char *path, struct weft_random *rnd)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char key[25], hosthdr[300], req[1024], resp[2048];
    weft_handshake_key(rnd, key);
    snprintf(hosthdr, sizeof hosthdr, "%s:%u", host, port);
    struct weft_client_request cr = {.host = hosthdr, .path = path};
    int n = weft_handshake_request(req, sizeof req, &cr, key);
    if (n < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    struct weft_http_response hr;
    int hl = 0;
    while (hl == 0 && got < sizeof resp) {
        ssize_t r = recv(fd, resp + got, sizeof resp - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        hl = weft_http_parse_response(resp, got, sizeof resp, &hr);
    }
    struct weft_handshake_result res;
    if (hl <= 0 || hr.status != 101 || (size_t)hl != got ||
        weft_handshake_check_response(&hr, key, NULL, NULL, &res) != WEFT_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Appends k copies of the frame to c's output. */
static void queue_frames(struct conn *c, const uint8_t *frame, size_t flen, unsigned k)
{
    size_t need = c->out_len + flen * k;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            fprintf(stderr, "echo_load: out of memory\n");
            exit(1);
        }
        c->out = p;
        c->out_cap = cap;
    }
    for (unsigned i = 0; i < k; i++) {
        memcpy(c->out + c->out_len, frame, flen);
        c->out_len += flen;
    }
}

/* Writes what the kernel takes. */
static void flush(struct conn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->dead = true;
        errors++;
        break;
    }
    if (off) {
        memmove(c->out, c->out + off, c->out_len - off);
        c->out_len -= off;
    }
}

/* Reads everything available, counts complete messages, queues one new frame per echo. */
static void on_readable(struct conn *c, uint8_t *rbuf, const uint8_t *frame, size_t flen)
{
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, RBUF_SIZE, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            c->dead = true;
            errors++;
            return;
        }
        size_t off = 0;
        unsigned echoes = 0;
        while (off < (size_t)n) {
            struct weft_msg_event ev;
            size_t used;
            enum weft_msg_event_type t =
                weft_msg_parse(&c->mp, rbuf + off, (size_t)n - off, &used, &ev);
            off += used;
            if (t == WEFT_MSG_NEED_MORE) break;
            if (t == WEFT_MSG_ERROR || (t == WEFT_MSG_CONTROL && ev.opcode == WEFT_OP_CLOSE)) {
                c->dead = true;
                errors++;
                return;
            }
            if (t == WEFT_MSG_DATA && ev.fin) echoes++;
        }
        messages += echoes;
        if (echoes) queue_frames(c, frame, flen, echoes);
        if ((size_t)n < RBUF_SIZE) break;
    }
    flush(c);
}

int main(int argc, char **argv)
{
    long nconn = 100, inflight = 8, size = 64, server_pid = 0;
    double duration = 5, warmup = 1;
    bool binary = false;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-c") && has)
            nconn = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "-w") && has)
            inflight = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "-s") && has)
            size = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "-d") && has)
            duration = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--warmup") && has)
            warmup = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--server-pid") && has)
            server_pid = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--binary"))
            binary = true;
        else if (a[0] != '-' && !url)
            url = a;
        else {
            fprintf(stderr, "usage: echo_load [-c N] [-w W] [-s BYTES] [-d SEC] [--warmup SEC] "
                            "[--binary] [--server-pid PID] URL\n");
            return 2;
        }
    }
    char host[256], path[1024];
    unsigned port;
    if (!url || parse_url(url, host, sizeof host, &port, path, sizeof path) != 0 || nconn < 1 ||
        inflight < 1 || size < 0 || duration <= 0) {
        fprintf(stderr, "echo_load: bad arguments (URL like ws://127.0.0.1:8080/echo)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* The message, masked once. */
    struct weft_random rnd = {0};
    uint8_t *payload = malloc((size_t)size + 1);
    uint8_t *frame = malloc((size_t)size + WEFT_FRAME_HEADER_MAX);
    uint8_t *rbuf = malloc(RBUF_SIZE);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!payload || !frame || !rbuf || !conns) return 1;
    for (long i = 0; i < size; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    long flen =
        weft_frame_encode(frame, (size_t)size + WEFT_FRAME_HEADER_MAX, WEFT_ROLE_CLIENT, &rnd,
                          binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, true, 0, payload, (size_t)size);
    if (flen < 0) return 1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct weft_msg_limits lim = {.frame = {.role = WEFT_ROLE_CLIENT}, .validate_utf8 = false};
    for (long i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->fd = ws_open(host, port, path, &rnd);
        if (c->fd < 0) {
            fprintf(stderr, "echo_load: connection %ld to %s:%u%s failed: %s\n", i + 1, host, port,
                    path, strerror(errno));
            return 1;
        }
        struct timeval tv = {0};
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) return 1;
        weft_msg_parser_init(&c->mp, &lim);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    for (long i = 0; i < nconn; i++) {
        queue_frames(&conns[i], frame, (size_t)flen, (unsigned)inflight);
        flush(&conns[i]);
    }

    double start = now_s(), t_measure = start + warmup, t_end = t_measure + duration;
    bool measuring = false;
    uint64_t m0 = 0;
    double srv0 = 0, self0 = 0, w0 = 0;
    struct epoll_event evs[256];
    for (;;) {
        double now = now_s();
        if (!measuring && now >= t_measure) {
            measuring = true;
            m0 = messages;
            srv0 = server_pid ? proc_cpu_s(server_pid) : 0;
            self0 = self_cpu_s();
            w0 = now;
        }
        if (now >= t_end) break;
        int n = epoll_wait(ep, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->dead) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c, rbuf, frame, (size_t)flen);
            else if ((evs[i].events & EPOLLOUT) && c->out_len)
                flush(c);
        }
    }
    double w1 = now_s();
    uint64_t m1 = messages;
    double srv1 = server_pid ? proc_cpu_s(server_pid) : 0;
    double self1 = self_cpu_s();

    double msgs = (double)(m1 - m0), secs = w1 - w0;
    double rate = msgs / secs;
    double srv_us =
        server_pid && msgs > 0 && srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / msgs : -1;
    double self_pct = (self1 - self0) / secs * 100.0;
    printf("echo_load: %ld connections x %ld in flight, %ld-byte %s messages, %.1f s measured\n",
           nconn, inflight, size, binary ? "binary" : "text", secs);
    printf("  echoed messages: %.0f (%.0f msgs/s)\n", msgs, rate);
    if (srv_us >= 0) printf("  server CPU per message: %.3f us\n", srv_us);
    printf("  generator CPU: %.0f %%\n", self_pct);
    if (errors) printf("  errors: %u connections failed\n", errors);
    printf("RESULT msgs_per_s=%.0f server_us_per_msg=%.3f client_cpu_pct=%.0f errors=%u\n", rate,
           srv_us, self_pct, errors);

    for (long i = 0; i < nconn; i++) {
        close(conns[i].fd);
        free(conns[i].out);
    }
    close(ep);
    free(conns);
    free(rbuf);
    free(frame);
    free(payload);
    return errors ? 1 : 0;
}
