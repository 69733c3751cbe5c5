/*
 * raw_echo.c — the physical limit of an echo cell: an epoll (edge-triggered) server that reads
 * what arrives and writes it back, with no WebSocket work at all. It answers the opening
 * handshake (one request, 101 with the accept key: SHA-1 and base64 from OpenSSL's libcrypto)
 * so `weft bench` can connect, then echoes bytes as they are: the client's masked frames go
 * back masked (`weft bench --accept-masked` takes them). What cannot be written at once is
 * kept and sent on EPOLLOUT, and reading pauses until it is.
 *
 * usage: raw_echo [PORT]   (0 or none: an ephemeral port; prints "raw_echo: listening on
 *                          127.0.0.1:PORT" on stderr; SIGTERM or SIGINT ends it)
 *
 * Build: cc -O2 -o raw_echo bench/peers/raw_echo.c -lcrypto (bench/run does).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define HEAD_MAX 4096

struct conn {
    int fd;
    bool open;       /* handshake answered */
    size_t head_len; /* request bytes read so far (before the handshake) */
    char *head;      /* the request, until answered */
    char *pend;      /* bytes not yet written */
    size_t pend_len, pend_off;
};

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Writes the 101 answer for the request in c->head into out; returns its length, 0 if the
 * request has no Sec-WebSocket-Key. */
static size_t answer(struct conn *c, char *out, size_t cap)
{
    char *k = strcasestr(c->head, "\r\nSec-WebSocket-Key:");
    if (!k) return 0;
    k += 20;
    while (*k == ' ')
        k++;
    char *e = strstr(k, "\r\n");
    if (!e || e - k > 64) return 0;
    char cat[128];
    int n = snprintf(cat, sizeof cat, "%.*s%s", (int)(e - k), k, GUID);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, (size_t)n, sha);
    char b64[40];
    EVP_EncodeBlock((unsigned char *)b64, sha, SHA_DIGEST_LENGTH);
    return (size_t)snprintf(out, cap,
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                            b64);
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->head);
    free(c->pend);
    free(c);
}

/* Writes data (after anything pending); keeps what the socket does not take. Returns false
 * when the connection failed. */
static bool send_all(int ep, struct conn *c, const char *data, size_t len)
{
    if (c->pend_len == c->pend_off) {
        while (len) {
            ssize_t w = write(c->fd, data, len);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) break;
            if (w <= 0) return false;
            data += w;
            len -= (size_t)w;
        }
        if (!len) return true;
        free(c->pend);
        c->pend = NULL;
        c->pend_len = c->pend_off = 0;
    }
    char *np = realloc(c->pend, c->pend_len + len);
    if (!np) return false;
    memcpy(np + c->pend_len, data, len);
    c->pend = np;
    c->pend_len += len;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return true;
}

/* Flushes what is pending; returns false when the connection failed. */
static bool flush(int ep, struct conn *c)
{
    while (c->pend_off < c->pend_len) {
        ssize_t w = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return true;
        if (w <= 0) return false;
        c->pend_off += (size_t)w;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return true;
}

/* Reads until EAGAIN (or while nothing is pending), answering the handshake first, then
 * echoing. Returns false when the connection ended. */
static bool on_read(int ep, struct conn *c, char *buf)
{
    for (;;) {
        if (c->pend_off < c->pend_len)
            return true; /* the peer reads slower than it writes: wait for EPOLLOUT */
        ssize_t r = read(c->fd, buf, BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return true;
        if (r <= 0) return false;
        size_t n = (size_t)r;
        if (!c->open) {
            size_t take = n < HEAD_MAX - c->head_len ? n : HEAD_MAX - c->head_len;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len += take;
            c->head[c->head_len] = '\0';
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) return c->head_len < HEAD_MAX;
            char res[256];
            size_t rl = answer(c, res, sizeof res);
            if (!rl || !send_all(ep, c, res, rl)) return false;
            c->open = true;
            /* bytes after the request head: frames already sent, echoed */
            size_t used = (size_t)(end + 4 - c->head);
            size_t before = c->head_len - take; /* head bytes from earlier reads */
            size_t rest = n - (used - before);
            free(c->head);
            c->head = NULL;
            if (rest && !send_all(ep, c, buf + (n - rest), rest)) return false;
            continue;
        }
        if (!send_all(ep, c, buf, n)) return false;
    }
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&a, &al)) {
        perror("raw_echo");
        return 1;
    }
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    fprintf(stderr, "raw_echo: listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    static char buf[BUF];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &sfd) return 0;
            if (!evs[i].data.ptr) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (c) c->head = malloc(HEAD_MAX + 1);
                    if (!c || !c->head) {
                        close(fd);
                        if (c) free(c);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLET, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            bool ok = true;
            if (evs[i].events & EPOLLOUT) ok = flush(ep, c);
            if (ok) /* after EPOLLOUT too: reading may have paused with bytes left */
                ok = on_read(ep, c, buf);
            if (!ok) drop(ep, c);
        }
    }
}
