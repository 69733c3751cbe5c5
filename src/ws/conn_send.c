/*
 * conn_send.c — sending on a WebSocket connection: frames with backpressure and the
 * slow-consumer policy, permessage-deflate on the way out, and the connection accessors of
 * weft.h. The receiving side and the close handshake are in conn.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

/* ----------------------------------------------------------------- sending */

/* Applies the slow-consumer policy if queueing len bytes would take the connection over its
 * backpressure limit (see conn_queue_full). Returns true when the frame must not be queued. */
static bool over_limit(struct weft_conn *c, size_t len, enum weft_send_result *res)
{
    if (!conn_queue_full(c, len)) return false;
    c->out_full = true;
    if (c->ep->cfg.slow_policy == WEFT_SLOW_CLOSE) {
        conn_close_slow(c);
        *res = WEFT_SEND_CLOSED;
    } else {
        c->ep->stats.dropped_backpressure++;
        *res = WEFT_SEND_DROPPED;
    }
    return true;
}

/* Queues one frame: header + payload copied, or a reference to a shared encoded frame. */
enum weft_send_result conn_send_frame(struct weft_conn *c, struct weft_buf *shared,
                                      const uint8_t *hdr, size_t hlen, const void *payload,
                                      size_t len)
{
    enum weft_send_result res;
    if (c->state != CONN_OPEN) return WEFT_SEND_CLOSED;
    size_t total = shared ? shared->len : hlen + len;
    if (over_limit(c, total, &res)) return res;
    /* Output for a blocked socket is held until the peer reads: within the memory budget,
     * making room by closing larger holders, or this connection is closed. */
    if (sock_blocked(&c->sock) && !mem_fits(total) && !conn_budget_room(c, total, false)) {
        conn_budget_close(c);
        return WEFT_SEND_CLOSED;
    }
    int r;
    if (c->ep->role == WEFT_ROLE_CLIENT) /* clients mask: nothing can be shared */
        r = conn_write_frame(c, hdr[0] & 0x0fu, (uint8_t)((hdr[0] >> 4) & 7u), payload, len);
    else if (shared)
        r = sock_write_buf(&c->sock, shared, 0, shared->len);
    else
        r = sock_write2(&c->sock, hdr, hlen, payload, len);
    if (r != WEFT_OK) return WEFT_SEND_CLOSED;
    c->ep->stats.messages_out++;
    c->ep->stats.bytes_out += len;
    if (sock_blocked(&c->sock)) {
        c->backpressured = true;
        return WEFT_SEND_QUEUED;
    }
    return WEFT_SEND_SENT;
}

/* Turns on permessage-deflate for a connection with the agreed parameters, from our side's
 * point of view (the server compresses with the server_* parameters, a client with the
 * client_* ones). */
void conn_enable_deflate(struct weft_conn *c, const struct weft_pmd_params *a)
{
    bool server = c->ep->role == WEFT_ROLE_SERVER;
    c->pmd_on = true;
    c->our_nct = server ? a->server_no_context_takeover : a->client_no_context_takeover;
    c->peer_nct = server ? a->client_no_context_takeover : a->server_no_context_takeover;
    uint8_t our_bits = server ? a->server_max_window_bits : a->client_max_window_bits;
    uint8_t peer_bits = server ? a->client_max_window_bits : a->server_max_window_bits;
    uint8_t limit = c->ep->cfg.deflate.max_window_bits;
    if (limit >= 9 && limit < our_bits) our_bits = limit;
    c->our_bits = our_bits & 15u; /* 8..15 */
    c->peer_bits = peer_bits & 15u;
}

/* Compresses a message for c into ep->zout; see ws.h. */
long conn_deflate(struct weft_conn *c, const void *data, size_t len)
{
    struct endpoint *ep = c->ep;
    const struct weft_pmd_config *cfg = &ep->cfg.deflate;
    struct weft_deflater **slot;
    if (c->our_nct) {
        slot = &ep->shared_defl[c->our_bits & 15];
    } else {
        struct conn_extra *x = conn_extra_get(c);
        if (!x) return -1;
        slot = &x->defl;
    }
    if (!*slot) {
        /* weft_pmd_config: 0 = zlib's default, -1 = level 0; weft_deflater_new: -1 = default */
        int level = cfg->level == 0 ? -1 : cfg->level < 0 ? 0 : cfg->level;
        *slot = weft_deflater_new(c->our_bits, cfg->mem_level, level);
        if (!*slot) {
            conn_extra_trim(c);
            return -1;
        }
    }
    size_t bound = weft_deflate_bound(len);
    if (bound > ep->zout_cap) {
        uint8_t *nb = realloc(ep->zout, bound);
        if (!nb) return -1;
        ep->zout = nb;
        ep->zout_cap = bound;
    }
    long n = weft_deflate_message(*slot, data, len, ep->zout, bound, c->our_nct);
    /* Without context takeover a message that does not shrink can go as it is; with it, the
     * peer's window must see every byte we compressed, so it is sent compressed anyway. */
    if (n < 0 || (c->our_nct && (size_t)n >= len)) return -1;
    return n;
}

/* Sends a message; see weft.h. */
enum weft_send_result weft_conn_send(struct weft_conn *c, const void *data, size_t len,
                                     enum weft_opcode opcode)
{
    if (opcode != WEFT_OP_TEXT && opcode != WEFT_OP_BINARY) return WEFT_SEND_CLOSED;
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    if (c->pmd_on && len >= c->ep->cfg.deflate.threshold && c->state == CONN_OPEN) {
        long n = conn_deflate(c, data, len);
        if (n >= 0) {
            size_t h = weft_frame_header_write(hdr, (uint8_t)opcode, true, 4, (uint64_t)n, NULL);
            enum weft_send_result r = conn_send_frame(c, NULL, hdr, h, c->ep->zout, (size_t)n);
            return r;
        }
    }
    size_t h = weft_frame_header_write(hdr, (uint8_t)opcode, true, 0, len, NULL);
    return conn_send_frame(c, NULL, hdr, h, data, len);
}

/* Sends a ping, under the backpressure limit like a message; see weft.h. */
enum weft_send_result weft_conn_ping(struct weft_conn *c, const void *data, size_t len)
{
    enum weft_send_result res;
    if (c->state != CONN_OPEN) return WEFT_SEND_CLOSED;
    if (len > 125) len = 125;
    if (over_limit(c, len + 2, &res)) return res;
    conn_send_ctl(c, WEFT_OP_PING, data, len);
    return sock_blocked(&c->sock) ? WEFT_SEND_QUEUED : WEFT_SEND_SENT;
}

size_t weft_conn_buffered_amount(const struct weft_conn *c)
{
    return sock_queued(&c->sock);
}

/* Stops reading from the peer until weft_conn_resume. */
void weft_conn_pause(struct weft_conn *c)
{
    c->app_paused = true;
    sock_pause(&c->sock);
}

/* Reads from the peer again, unless flow control holds reading until the backlog drains
 * (it resumes then). */
void weft_conn_resume(struct weft_conn *c)
{
    c->app_paused = false;
    if (!c->bp_paused) sock_resume(&c->sock);
}

void *weft_conn_user(const struct weft_conn *c)
{
    return c->user;
}

void weft_conn_set_user(struct weft_conn *c, void *user)
{
    c->user = user;
}

void *weft_conn_route_user(const struct weft_conn *c)
{
    if (!c->h) return NULL;
    return c->ep->ops->route_user(c);
}

struct weft_server *weft_conn_server(const struct weft_conn *c)
{
    return conn_server(c);
}

const char *weft_conn_protocol(const struct weft_conn *c)
{
    return c->x && c->x->protocol ? c->x->protocol : "";
}

/* The negotiated extensions as a header value; see weft.h. */
size_t weft_conn_extensions(const struct weft_conn *c, char *out, size_t cap)
{
    if (!cap) return 0;
    out[0] = '\0';
    if (!c->pmd_on) return 0;
    bool server = c->ep->role == WEFT_ROLE_SERVER;
    bool snct = server ? c->our_nct : c->peer_nct, cnct = server ? c->peer_nct : c->our_nct;
    unsigned sbits = server ? c->our_bits : c->peer_bits;
    unsigned cbits = server ? c->peer_bits : c->our_bits;
    int n = snprintf(out, cap,
                     "permessage-deflate%s%s; server_max_window_bits=%u; "
                     "client_max_window_bits=%u",
                     snct ? "; server_no_context_takeover" : "",
                     cnct ? "; client_no_context_takeover" : "", sbits, cbits);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

uint64_t weft_conn_id(const struct weft_conn *c)
{
    return c->id;
}

/* The peer address, formatted into the server's scratch buffer (valid until the next call). */
const char *weft_conn_remote(const struct weft_conn *c)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } a;
    memset(&a, 0, sizeof a);
    a.sa.sa_family = c->peer_family;
    if (c->peer_family == AF_INET) {
        a.in.sin_port = c->peer_port;
        memcpy(&a.in.sin_addr, c->peer_addr, sizeof a.in.sin_addr);
    } else if (c->peer_family == AF_INET6) {
        a.in6.sin6_port = c->peer_port;
        memcpy(&a.in6.sin6_addr, c->peer_addr, sizeof a.in6.sin6_addr);
    }
    addr_format(&a.sa, c->ep->addrbuf, sizeof c->ep->addrbuf);
    return c->ep->addrbuf;
}

/* The code of the close frame weft sent on c (0 if none); see weft.h. */
uint16_t weft_conn_close_sent(const struct weft_conn *c)
{
    return c->close_sent;
}

/* The code of the peer's close frame, during the on_close it caused (0 otherwise); see
 * weft.h. */
uint16_t weft_conn_close_received(const struct weft_conn *c)
{
    return c->close_reported ? c->ep->close_rcvd : 0;
}
