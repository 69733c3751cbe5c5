/*
 * conn.c — one connection of `weft bench`: the non-blocking connect (bound to the next
 * --local-addr if given), the opening handshake with weft's sans-I/O functions
 * (weft_handshake_request, weft_http_parse_response, weft_handshake_check_response), masked
 * frames out (weft_frame_encode, a fresh key each; permessage-deflate when negotiated) and
 * frames in (weft_msg_parse, client role; inflated when compressed), edge-triggered reads
 * (throttled with --read-rate), and the output queue flushed once per loop iteration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cli/bench/bench.h"

/* Makes room for n more bytes in c's output buffer. Returns a pointer to them or NULL. */
static uint8_t *out_reserve(struct bconn *c, size_t n)
{
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) { /* compact before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 1024;
            while (cap < c->out_len + n)
                cap *= 2;
            uint8_t *p = realloc(c->out, cap);
            if (!p) return NULL;
            c->out = p;
            c->out_cap = cap;
        }
    }
    uint8_t *at = c->out + c->out_len;
    c->out_len += n;
    return at;
}

/* Closes c's socket and frees its buffers; the slot becomes C_DONE. */
void conn_release(struct bench *b, struct bconn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    weft_deflater_free(c->defl);
    weft_inflater_free(c->infl);
    c->defl = NULL;
    c->infl = NULL;
    c->pmd = false;
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) b->pending--;
    if (c->state == C_OPEN || c->state == C_CLOSING) b->open--;
    if (c->hub == HUB_JOINING)
        b->join_pending--;
    else if (c->hub == HUB_MEMBER)
        b->members--;
    c->hub = HUB_NONE;
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    c->state = C_DONE;
    b->closed++;
}

/* Fails c with an error of kind k. */
void conn_fail(struct bench *b, struct bconn *c, enum err_kind k)
{
    count_error(b, k);
    conn_release(b, c);
}

/* Compresses a message for c into b->zbuf. Returns the compressed length, or -1 (send it
 * uncompressed: out of memory, or it would not shrink and no window has to see it). */
static long deflate_payload(struct bench *b, struct bconn *c, const void *payload, size_t len)
{
    struct weft_deflater **slot = c->our_nct ? &b->shared_defl[c->our_bits & 15] : &c->defl;
    if (!*slot && !(*slot = weft_deflater_new(c->our_bits, b->pmd.mem_level, -1))) return -1;
    size_t bound = weft_deflate_bound(len);
    if (bound > b->zbuf_cap) {
        uint8_t *nb = realloc(b->zbuf, bound);
        if (!nb) return -1;
        b->zbuf = nb;
        b->zbuf_cap = bound;
    }
    long n = weft_deflate_message(*slot, payload, len, b->zbuf, bound, c->our_nct);
    if (n < 0 || (c->our_nct && (size_t)n >= len)) return -1;
    return n;
}

/* Queues one masked frame on c (fresh masking key from weft_frame_encode), data compressed
 * when deflate was negotiated. Returns false if out of memory. */
bool queue_frame(struct bench *b, struct bconn *c, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t rsv = 0;
    if (c->pmd && (opcode == WEFT_OP_TEXT || opcode == WEFT_OP_BINARY)) {
        long z = deflate_payload(b, c, payload, len);
        if (z >= 0) {
            payload = b->zbuf;
            len = (size_t)z;
            rsv = 4;
        }
    }
    size_t cap = len + WEFT_FRAME_HEADER_MAX;
    uint8_t *at = out_reserve(c, cap);
    if (!at) return false;
    long n = weft_frame_encode(at, cap, WEFT_ROLE_CLIENT, &b->rnd, opcode, true, rsv, payload, len);
    if (n < 0) {
        c->out_len -= cap;
        return false;
    }
    c->out_len -= cap - (size_t)n;
    mark_dirty(b, c);
    return true;
}

/* send() or SSL_write() of c's bytes. */
static ssize_t conn_send(struct bench *b, struct bconn *c, const uint8_t *p, size_t n)
{
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    ssize_t w = tls_result(b, c, SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n));
    if (w == 0) {
        errno = EPIPE;
        return -1;
    }
    return w;
}

/* Writes what the kernel takes of c's output. Returns false if c failed. */
bool conn_flush(struct bench *b, struct bconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = conn_send(b, c, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;           /* EPOLLOUT (edge) tells when there is room again */
        if (c->state == C_CLOSING) /* the close was under way: nothing lost */
            conn_release(b, c);
        else
            conn_fail(b, c, c->state == C_HANDSHAKE && c->ssl ? E_HANDSHAKE : E_IO);
        return false;
    }
    c->out_off = c->out_len = 0;
    return true;
}

/* Flushes every connection that queued output during this iteration. */
void flush_dirty(struct bench *b)
{
    while (b->dirty) {
        struct bconn *c = b->dirty;
        b->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        if (c->fd >= 0) conn_flush(b, c);
    }
}

/* Starts a non-blocking connect for slot c (bound to the next --local-addr if given).
 * Returns false (error counted) on failure. */
bool conn_start(struct bench *b, struct bconn *c, uint64_t now)
{
    memset(&c->mp, 0, sizeof c->mp);
    c->state = C_FREE;
    c->out_off = c->out_len = 0;
    c->in_len = 0;
    c->in_hdr_len = 0;
    c->t_start = now;
    c->read_at = 0;
    c->read_pending = false;
    c->last_seq = 0;
    b->started++;
    int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (b->o.read_rate > 0) { /* a slow reader: let the server's queue, not ours, fill up */
        int rcv = SLOW_RCVBUF;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    if (b->o.local_lo) {
        uint32_t span = b->o.local_hi - b->o.local_lo + 1;
        struct sockaddr_in la = {.sin_family = AF_INET};
        la.sin_addr.s_addr = htonl(b->o.local_lo + b->local_next++ % span);
        /* Pick the port at connect time, per destination, so each source address has its own
         * range of ephemeral ports. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&la, sizeof la) != 0) {
            close(fd);
            count_error(b, E_CONNECT);
            c->state = C_DONE;
            return false;
        }
    }
    if (connect(fd, (struct sockaddr *)&b->addr, b->addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    b->pending++;
    return true;
}

/* The TCP connection is up: sends the upgrade request. */
static void conn_connected(struct bench *b, struct bconn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        conn_fail(b, c, E_CONNECT);
        return;
    }
    if (b->ssl_ctx) {
        c->ssl = SSL_new(b->ssl_ctx);
        bool numeric = b->host_numeric;
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
            (!numeric && !SSL_set_tlsext_host_name(c->ssl, b->host)) ||
            (!b->o.insecure && !numeric && !SSL_set1_host(c->ssl, b->host)) ||
            (!b->o.insecure && numeric &&
             !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), b->host))) {
            conn_fail(b, c, E_HANDSHAKE);
            return;
        }
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_connect_state(c->ssl); /* the first SSL_write runs the TLS handshake */
    }
    char req[2048];
    weft_handshake_key(&b->rnd, c->key);
    struct weft_client_request cr = {
        .host = b->hosthdr, .path = b->path, .extensions = b->o.deflate ? b->pmd_offer : NULL};
    int n = weft_handshake_request(req, sizeof req, &cr, c->key);
    if (n < 0) {
        conn_fail(b, c, E_HANDSHAKE);
        return;
    }
    uint8_t *at = out_reserve(c, (size_t)n);
    if (!at) {
        conn_fail(b, c, E_IO);
        return;
    }
    memcpy(at, req, (size_t)n);
    c->state = C_HANDSHAKE;
    conn_flush(b, c);
}

static void process_frames(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                           uint64_t now);

/* Accumulates the handshake response; on a complete valid 101 the connection opens and any
 * bytes after the head are parsed as frames. */
static void handshake_input(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                            uint64_t now)
{
    if (!c->hs) {
        c->hs = malloc(HS_CAP);
        if (!c->hs) {
            conn_fail(b, c, E_IO);
            return;
        }
    }
    size_t take = len < HS_CAP - c->hs_len ? len : HS_CAP - c->hs_len;
    memcpy(c->hs + c->hs_len, data, take);
    c->hs_len += take;
    struct weft_http_response resp;
    int hl = weft_http_parse_response(c->hs, c->hs_len, HS_CAP, &resp);
    if (hl == 0 && c->hs_len < HS_CAP) return; /* need more */
    struct weft_handshake_result res;
    const char *offer = b->o.deflate ? b->pmd_offer : NULL;
    if (hl <= 0 || resp.status != 101 ||
        weft_handshake_check_response(&resp, c->key, NULL, offer, &res) != WEFT_OK) {
        conn_fail(b, c, E_HANDSHAKE);
        return;
    }
    c->pmd = false;
    if (res.extensions && res.extensions_len) {
        struct weft_pmd_params a;
        if (weft_pmd_accept(res.extensions, res.extensions_len, &b->pmd, &a) != 0) {
            conn_fail(b, c, E_HANDSHAKE);
            return;
        }
        c->pmd = true;
        c->our_nct = a.client_no_context_takeover;
        c->peer_nct = a.server_no_context_takeover;
        c->our_bits = a.client_max_window_bits;
        c->peer_bits = a.server_max_window_bits;
        b->pmd_conns++;
    }
    /* Bytes after the head (frames sent right after the 101) go to the frame parser: first
     * the rest of the head buffer, then what did not fit in it. */
    uint8_t *hs = (uint8_t *)c->hs;
    size_t hs_len = c->hs_len;
    c->hs = NULL;
    c->hs_len = 0;
    b->pending--;
    b->open++;
    b->opened_total++;
    if (b->open > b->peak_open) b->peak_open = b->open;
    c->state = C_OPEN;
    weft_msg_parser_init(&c->mp, &b->limits);
    on_open(b, c, now);
    if (hs_len > (size_t)hl && c->state == C_OPEN)
        process_frames(b, c, hs + hl, hs_len - (size_t)hl, now);
    if (len > take && c->state == C_OPEN) process_frames(b, c, data + take, len - take, now);
    free(hs);
}

/* Keeps the first bytes of a message being received (they carry the timestamp and the room
 * header; hub: the envelope and the "data" fields). */
static void keep_head(const struct bench *b, struct bconn *c, const uint8_t *data, size_t len)
{
    size_t cap = b->heads ? HUB_HEAD : ROOM_HDR;
    if (c->in_hdr_len < cap && len) {
        size_t k = cap - c->in_hdr_len;
        if (k > len) k = len;
        memcpy(conn_head(b, c) + c->in_hdr_len, data, k);
        c->in_hdr_len = (uint16_t)(c->in_hdr_len + k);
    }
}

/* Inflates the next piece of a compressed message (whole: first and fin; the shared codec
 * then serves when the server has no context takeover). Counts the inflated bytes and keeps
 * the first ones. Returns false for a corrupt stream or out of memory. */
static bool inflate_piece(struct bench *b, struct bconn *c, const uint8_t *data, size_t len,
                          bool whole, bool fin)
{
    struct weft_inflater **slot = whole && c->peer_nct ? &b->shared_infl : &c->infl;
    if (!*slot && !(*slot = weft_inflater_new(slot == &b->shared_infl ? 15 : c->peer_bits)))
        return false;
    size_t off = 0;
    for (;;) {
        size_t used = 0, made = 0;
        int r = weft_inflate(*slot, data + off, len - off, fin, c->peer_nct, b->zin, ZIN_CAP, &used,
                             &made);
        if (r < 0) {
            weft_inflater_reset(*slot);
            return false;
        }
        off += used;
        keep_head(b, c, b->zin, made);
        c->in_len += made;
        if (r == 0) return true;
    }
}

/* Parses received bytes as frames and dispatches the messages. */
static void process_frames(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                           uint64_t now)
{
    size_t off = 0;
    while (off < len && c->fd >= 0 && (c->state == C_OPEN || c->state == C_CLOSING)) {
        struct weft_msg_event ev;
        size_t used = 0;
        enum weft_msg_event_type t = weft_msg_parse(&c->mp, data + off, len - off, &used, &ev);
        off += used;
        switch (t) {
        case WEFT_MSG_NEED_MORE:
            return;
        case WEFT_MSG_DATA:
            if (ev.first) {
                c->in_len = 0;
                c->in_hdr_len = 0;
                c->in_z = ev.compressed;
            }
            if (c->in_z) {
                if (!inflate_piece(b, c, ev.data, ev.len, ev.first && ev.fin, ev.fin)) {
                    conn_fail(b, c, E_PROTOCOL);
                    return;
                }
            } else {
                keep_head(b, c, ev.data, ev.len);
                c->in_len += ev.len;
            }
            if (ev.fin && c->state == C_OPEN) on_message(b, c, now);
            break;
        case WEFT_MSG_CONTROL:
            on_control(b, c, &ev);
            break;
        case WEFT_MSG_ERROR:
            conn_fail(b, c, E_PROTOCOL);
            return;
        }
    }
}

/* --read-rate: bytes one throttled read may take (50 ms worth, at least 1). */
static size_t read_chunk(const struct bench *b)
{
    double n = b->o.read_rate / 20;
    return n < 1 ? 1 : n > RBUF_SIZE ? RBUF_SIZE : (size_t)n;
}

/* Reads everything c has (edge-triggered: until EAGAIN or a short read). With --read-rate an
 * open connection reads one chunk, then waits until the rate allows the next (read_scan
 * comes back to it). */
void conn_readable(struct bench *b, struct bconn *c)
{
    for (;;) {
        bool throttled = b->o.read_rate > 0 && c->state == C_OPEN;
        size_t cap = RBUF_SIZE;
        if (throttled) {
            if (now_ns() < c->read_at) {
                c->read_pending = true;
                return;
            }
            cap = read_chunk(b);
        }
        ssize_t n = c->ssl ? tls_result(b, c, SSL_read(c->ssl, b->rbuf, (int)cap))
                           : recv(c->fd, b->rbuf, cap, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->read_pending = false;
            return;
        }
        if (n <= 0) {
            if (c->state == C_CLOSING) { /* closing: EOF is as good as the close frame */
                if (b->o.mode == MODE_CONNECT && b->phase == PH_MEASURE) b->c.msgs++;
                conn_release(b, c);
            } else {
                conn_fail(b, c,
                          c->ssl && c->state == C_HANDSHAKE ? E_HANDSHAKE
                          : n == 0                          ? E_CLOSED
                                                            : E_IO);
            }
            return;
        }
        uint64_t now = now_ns();
        if (c->state == C_HANDSHAKE)
            handshake_input(b, c, b->rbuf, (size_t)n, now);
        else
            process_frames(b, c, b->rbuf, (size_t)n, now);
        if (throttled && c->fd >= 0) {
            c->read_at = now + (uint64_t)((double)n * 1e9 / b->o.read_rate);
            c->read_pending = true; /* maybe more: read_scan reads on when the time comes */
            return;
        }
        if (c->fd < 0 || (!c->ssl && (size_t)n < RBUF_SIZE))
            return; /* TLS reads one record at a time: read on until it wants more */
    }
}

/* Handles one epoll event. */
void on_event(struct bench *b, struct bconn *c, uint32_t events)
{
    if (c->fd < 0) return;
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_connected(b, c);
        return;
    }
    if (c->ssl) /* TLS may want to read to write or the reverse: try both on any event */
        events |= EPOLLIN | EPOLLOUT;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) conn_readable(b, c);
    if (c->fd >= 0 && (events & EPOLLOUT) && c->out_off < c->out_len) conn_flush(b, c);
}
