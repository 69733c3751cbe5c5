/*
 * rawclient.c — a small blocking WebSocket test client over a non-blocking socket and poll(2).
 * See rawclient.h.
 */
#include "rawclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Bytes asked of the kernel per read. */
#define READ_CHUNK 65536

uint64_t rc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline (0 if passed), as an int for poll. */
static int left_ms(uint64_t deadline)
{
    uint64_t now = rc_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Waits for `events` on c->fd until deadline. Returns 1 when ready, 0 on timeout, -1 on
 * error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        return r;
    }
}

static void reset_parser(struct rc *c)
{
    struct weft_msg_limits lim = {
        .frame = {.role = WEFT_ROLE_CLIENT, .allowed_rsv = 0, .max_frame = 0},
        .max_message = 0,
        .validate_utf8 = true,
    };
    weft_msg_parser_init(&c->mp, &lim);
}

/* Makes room for at least `need` more bytes at the end of the input buffer. */
static int in_reserve(struct rc *c, size_t need)
{
    if (c->in_off > 0 && c->in_off == c->in_len) c->in_off = c->in_len = 0;
    if (c->in_cap - c->in_len >= need) return 0;
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
        if (c->in_cap - c->in_len >= need) return 0;
    }
    size_t cap = c->in_cap ? c->in_cap : READ_CHUNK;
    while (cap - c->in_len < need)
        cap *= 2;
    uint8_t *n = realloc(c->in, cap);
    if (!n) return -1;
    c->in = n;
    c->in_cap = cap;
    return 0;
}

/* Connects c to the address sa (family AF_INET, AF_INET6 or AF_UNIX); see rc_connect. */
static int connect_sa(struct rc *c, const struct sockaddr *sa, socklen_t salen, int rcvbuf,
                      int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->family = sa->sa_family;
    reset_parser(c);
    if (in_reserve(c, READ_CHUNK) < 0) return -1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    c->fd = fd;
    int one = 1;
    if (sa->sa_family != AF_UNIX) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, sa, salen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EAGAIN) return -1;
    if (wait_fd(fd, POLLOUT, rc_now_ms() + (uint64_t)timeout_ms) <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int rc_connect(struct rc *c, uint16_t port, int rcvbuf, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect_sa(c, (struct sockaddr *)&sa, sizeof sa, rcvbuf, timeout_ms);
}

int rc_connect_ip6(struct rc *c, uint16_t port, int timeout_ms)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    sa.sin6_addr = in6addr_loopback;
    return connect_sa(c, (struct sockaddr *)&sa, sizeof sa, 0, timeout_ms);
}

int rc_connect_unix(struct rc *c, const char *sock_path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) {
        memset(c, 0, sizeof *c);
        c->fd = -1;
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    return connect_sa(c, (struct sockaddr *)&sa, sizeof sa, 0, timeout_ms);
}

void rc_close(struct rc *c)
{
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->msg);
    c->in = c->msg = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
    c->msg_len = c->msg_cap = 0;
}

int rc_write(struct rc *c, const void *buf, size_t len, int timeout_ms)
{
    const uint8_t *p = buf;
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    while (len > 0 && c->ssl) {
        size_t w = 0;
        if (SSL_write_ex(c->ssl, p, len, &w)) {
            p += w;
            len -= w;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            if (errno == 0) errno = EPIPE;
            return -1;
        }
        int r = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (r < 0) return -1;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        int r = wait_fd(c->fd, POLLOUT, deadline);
        if (r < 0) return -1;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

int rc_write_str(struct rc *c, const char *s, int timeout_ms)
{
    return rc_write(c, s, strlen(s), timeout_ms);
}

long rc_read_once(struct rc *c)
{
    if (c->eof) return 0;
    if (in_reserve(c, READ_CHUNK) < 0) return -2;
    if (c->ssl) {
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(c->ssl, c->in + c->in_len, c->in_cap - c->in_len, &n)) {
            c->in_len += n;
            return (long)n;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->tls_notify = true;
            c->eof = true;
            return 0;
        }
        unsigned long le = ERR_peek_error();
        if (e == SSL_ERROR_SSL && ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            c->eof = true; /* a bare FIN, without close_notify */
            return 0;
        }
        ERR_clear_error();
        if (errno == 0) errno = ECONNRESET;
        return -2;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            return (long)n;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        return -2;
    }
}

/* Appends data to the message being assembled. */
static int msg_append(struct rc *c, const uint8_t *data, size_t len)
{
    if (c->msg_cap - c->msg_len < len) {
        size_t cap = c->msg_cap ? c->msg_cap : 4096;
        while (cap - c->msg_len < len)
            cap *= 2;
        uint8_t *n = realloc(c->msg, cap);
        if (!n) return -1;
        c->msg = n;
        c->msg_cap = cap;
    }
    if (len) memcpy(c->msg + c->msg_len, data, len);
    c->msg_len += len;
    return 0;
}

enum rc_event rc_recv_buffered(struct rc *c)
{
    for (;;) {
        struct weft_msg_event ev;
        size_t used = 0;
        enum weft_msg_event_type t =
            weft_msg_parse(&c->mp, c->in + c->in_off, c->in_len - c->in_off, &used, &ev);
        c->in_off += used;
        switch (t) {
        case WEFT_MSG_NEED_MORE:
            return RC_TIMEOUT;
        case WEFT_MSG_ERROR:
            c->last.error_code = ev.close_code;
            return RC_ERR_PROTO;
        case WEFT_MSG_DATA:
            if (ev.first) {
                c->msg_len = 0;
                c->msg_opcode = ev.opcode;
            }
            if (msg_append(c, ev.data, ev.len) < 0) return RC_ERR_IO;
            if (!ev.fin) continue;
            c->last.opcode = c->msg_opcode;
            c->last.data = c->msg;
            c->last.len = c->msg_len;
            c->last.close_code = 0;
            return RC_MESSAGE;
        case WEFT_MSG_CONTROL:
            c->last.opcode = ev.opcode;
            c->last.close_code = 0;
            if (ev.opcode == WEFT_OP_CLOSE) {
                memcpy(c->ctrl, ev.reason ? ev.reason : "", ev.reason_len);
                c->last.len = ev.reason_len;
                c->last.close_code = ev.close_code;
            } else {
                memcpy(c->ctrl, ev.data, ev.len);
                c->last.len = ev.len;
            }
            c->last.data = c->ctrl;
            return ev.opcode == WEFT_OP_PING   ? RC_PING
                   : ev.opcode == WEFT_OP_PONG ? RC_PONG
                                               : RC_CLOSE;
        }
    }
}

enum rc_event rc_recv(struct rc *c, int timeout_ms)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        enum rc_event e = rc_recv_buffered(c);
        if (e != RC_TIMEOUT) return e;
        if (c->eof) return RC_EOF;
        long n = rc_read_once(c);
        if (n > 0) continue;
        if (n == 0) return RC_EOF;
        if (n == -2) return RC_ERR_IO;
        int r = wait_fd(c->fd, POLLIN, deadline);
        if (r < 0) return RC_ERR_IO;
        if (r == 0) return RC_TIMEOUT;
    }
}

int rc_wait_eof(struct rc *c, int timeout_ms, size_t *extra)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    size_t got = c->in_len - c->in_off;
    c->in_off = c->in_len = 0;
    int ret = -1;
    for (;;) {
        long n = rc_read_once(c);
        if (n > 0) {
            got += (size_t)n;
            c->in_off = c->in_len = 0;
            continue;
        }
        if (n == 0 || (n == -2 && (errno == ECONNRESET || errno == EPIPE))) {
            ret = 0;
            break;
        }
        if (n == -2) break;
        int r = wait_fd(c->fd, POLLIN, deadline);
        if (r <= 0) break;
    }
    if (extra) *extra = got;
    return ret;
}

int rc_read_http(struct rc *c, struct rc_http *resp, int timeout_ms)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    memset(resp, 0, sizeof *resp);
    resp->status = -1;
    struct weft_http_response hr;
    int hl;
    for (;;) {
        hl = weft_http_parse_response((const char *)c->in + c->in_off, c->in_len - c->in_off,
                                      sizeof resp->head - 1, &hr);
        if (hl < 0) return -1;
        if (hl > 0) break;
        if (c->eof) return -1;
        long n = rc_read_once(c);
        if (n > 0) continue;
        if (n == 0 || n == -2) return -1;
        if (wait_fd(c->fd, POLLIN, deadline) <= 0) return -1;
    }
    memcpy(resp->head, c->in + c->in_off, (size_t)hl);
    resp->head[hl] = '\0';
    resp->head_len = (size_t)hl;
    resp->status = hr.status;
    c->in_off += (size_t)hl;

    char cl[32];
    if (rc_http_header(resp, "Content-Length", cl, sizeof cl)) {
        size_t want = (size_t)strtoul(cl, NULL, 10);
        while (c->in_len - c->in_off < want) {
            if (c->eof) return -1;
            long n = rc_read_once(c);
            if (n > 0) continue;
            if (n == 0 || n == -2) return -1;
            if (wait_fd(c->fd, POLLIN, deadline) <= 0) return -1;
        }
        size_t keep = want < sizeof resp->body - 1 ? want : sizeof resp->body - 1;
        memcpy(resp->body, c->in + c->in_off, keep);
        resp->body[keep] = '\0';
        resp->body_len = keep;
        c->in_off += want;
    }
    return resp->status;
}

bool rc_http_header(const struct rc_http *resp, const char *name, char *out, size_t cap)
{
    struct weft_http_response hr;
    if (resp->head_len == 0 ||
        weft_http_parse_response(resp->head, resp->head_len, sizeof resp->head, &hr) <= 0)
        return false;
    const struct weft_http_header *h = weft_http_find_header(hr.headers, hr.num_headers, name);
    if (!h) return false;
    size_t n = h->value_len < cap - 1 ? h->value_len : cap - 1;
    memcpy(out, h->value, n);
    out[n] = '\0';
    return true;
}

int rc_handshake_ex(struct rc *c, uint16_t port, const char *path, const char *extra_headers,
                    const char *protocols, struct rc_http *resp, int timeout_ms)
{
    char key[25], host[32], req[1024];
    weft_handshake_key(&c->rnd, key);
    if (c->family == AF_UNIX)
        snprintf(host, sizeof host, "localhost");
    else
        snprintf(host, sizeof host, c->family == AF_INET6 ? "[::1]:%u" : "127.0.0.1:%u",
                 (unsigned)port);
    struct weft_client_request cr = {
        .host = host, .path = path, .protocols = protocols, .extra_headers = extra_headers};
    int n = weft_handshake_request(req, sizeof req, &cr, key);
    if (n < 0) return -1;
    if (rc_write(c, req, (size_t)n, timeout_ms) < 0) return -1;

    struct rc_http local;
    struct rc_http *r = resp ? resp : &local;
    int status = rc_read_http(c, r, timeout_ms);
    if (status != 101) return status;
    struct weft_http_response hr;
    if (weft_http_parse_response(r->head, r->head_len, sizeof r->head, &hr) <= 0) return -1;
    struct weft_handshake_result res;
    if (weft_handshake_check_response(&hr, key, protocols, NULL, &res) != WEFT_OK) {
        fprintf(stderr, "rawclient: bad 101: %s\n", res.error ? res.error : "?");
        return -1;
    }
    reset_parser(c);
    return 101;
}

int rc_tls_handshake(struct rc *c, struct ssl_ctx_st *ctx, const char *sni, int timeout_ms)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)timeout_ms;
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) return -1;
    if (sni && !SSL_set_tlsext_host_name(c->ssl, sni)) return -1;
    SSL_set_connect_state(c->ssl);
    for (;;) {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return -1;
        if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) <= 0)
            return -1;
    }
}

int rc_tls_open(struct rc *c, uint16_t port, const char *path, struct ssl_ctx_st *ctx,
                const char *sni)
{
    if (rc_connect(c, port, 0, RC_TIMEOUT_MS) < 0) return -1;
    if (rc_tls_handshake(c, ctx, sni, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake(c, port, path, NULL, RC_TIMEOUT_MS) == 101 ? 0 : -1;
}

int rc_handshake(struct rc *c, uint16_t port, const char *path, struct rc_http *resp,
                 int timeout_ms)
{
    return rc_handshake_ex(c, port, path, NULL, NULL, resp, timeout_ms);
}

int rc_open(struct rc *c, uint16_t port, const char *path)
{
    if (rc_connect(c, port, 0, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake(c, port, path, NULL, RC_TIMEOUT_MS) == 101 ? 0 : -1;
}

int rc_send_frame(struct rc *c, uint8_t opcode, bool fin, uint8_t rsv, const void *data, size_t len)
{
    size_t cap = len + WEFT_FRAME_HEADER_MAX;
    uint8_t small[256];
    uint8_t *buf = cap <= sizeof small ? small : malloc(cap);
    if (!buf) return -1;
    long n = weft_frame_encode(buf, cap, WEFT_ROLE_CLIENT, &c->rnd, opcode, fin, rsv, data, len);
    int ret = n < 0 ? -1 : rc_write(c, buf, (size_t)n, 30000);
    if (buf != small) free(buf);
    return ret;
}

int rc_send(struct rc *c, uint8_t opcode, const void *data, size_t len)
{
    return rc_send_frame(c, opcode, true, 0, data, len);
}

int rc_send_raw_frame(struct rc *c, uint8_t b0, bool masked, const void *data, size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *buf = malloc(len + 14);
    if (!buf) return -1;
    size_t n = 0;
    buf[n++] = b0;
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        buf[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        buf[n++] = (uint8_t)(mbit | 126);
        buf[n++] = (uint8_t)(len >> 8);
        buf[n++] = (uint8_t)len;
    } else {
        buf[n++] = (uint8_t)(mbit | 127);
        for (int i = 7; i >= 0; i--)
            buf[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked) {
        memcpy(buf + n, key, 4);
        n += 4;
    }
    const uint8_t *src = data;
    for (size_t i = 0; i < len; i++)
        buf[n + i] = masked ? (uint8_t)(src[i] ^ key[i % 4]) : src[i];
    int r = rc_write(c, buf, n + len, RC_TIMEOUT_MS);
    free(buf);
    return r;
}

int rc_send_close(struct rc *c, uint16_t code, const char *reason)
{
    uint8_t payload[125];
    size_t n = weft_close_payload(payload, code, reason, reason ? strlen(reason) : 0);
    return rc_send_frame(c, WEFT_OP_CLOSE, true, 0, payload, n);
}

int rc_expect_close(struct rc *c, int timeout_ms)
{
    enum rc_event e = rc_recv(c, timeout_ms);
    if (e != RC_CLOSE) {
        fprintf(stderr, "rawclient: expected a close frame, got event %d\n", (int)e);
        return -1;
    }
    int code = c->last.close_code;
    /* Echo the code (a close without status is answered with an empty close). */
    rc_send_close(c, code == WEFT_CLOSE_NO_STATUS ? 0 : (uint16_t)code, NULL);
    size_t extra = 0;
    if (rc_wait_eof(c, timeout_ms, &extra) < 0) {
        fprintf(stderr, "rawclient: no EOF after the close handshake\n");
        return -1;
    }
    if (extra) {
        fprintf(stderr, "rawclient: %zu bytes after the server's close frame\n", extra);
        return -1;
    }
    return code;
}

void rc_fill(uint8_t *buf, size_t len, uint32_t seed, bool text)
{
    /* Text mixes ASCII with 2-, 3- and 4-byte sequences (é, €, U+1F600) so that validators
     * see every length, and code points straddle frame and read boundaries. */
    static const uint8_t multi[3][4] = {{0xC3, 0xA9}, {0xE2, 0x82, 0xAC}, {0xF0, 0x9F, 0x98, 0x80}};
    uint32_t x = seed * 2654435761u + 1u;
    size_t i = 0;
    while (i < len) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (!text) {
            buf[i++] = (uint8_t)(x >> 11);
            continue;
        }
        unsigned pick = (x >> 3) % 16u;
        if (pick < 3 && len - i >= pick + 2u) {
            memcpy(buf + i, multi[pick], pick + 2u);
            i += pick + 2u;
        } else {
            buf[i++] = (uint8_t)(' ' + (x >> 8) % 95u);
        }
    }
}

int rc_open_ip6(struct rc *c, uint16_t port, const char *path)
{
    if (rc_connect_ip6(c, port, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake(c, port, path, NULL, RC_TIMEOUT_MS) == 101 ? 0 : -1;
}

int rc_open_unix(struct rc *c, const char *sock_path, const char *path)
{
    if (rc_connect_unix(c, sock_path, RC_TIMEOUT_MS) < 0) return -1;
    return rc_handshake(c, 0, path, NULL, RC_TIMEOUT_MS) == 101 ? 0 : -1;
}

bool rc_ip6_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    sa.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

void rc_unix_path(char *out, size_t cap, const char *tag)
{
    static unsigned n;
    snprintf(out, cap, "/tmp/weft-itest-%s-%ld-%u.sock", tag, (long)getpid(), n++);
}
