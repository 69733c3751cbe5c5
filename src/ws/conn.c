/*
 * conn.c — a WebSocket connection: the frame stream in (through proto's message assembler),
 * message delivery, sending with backpressure, ping/pong, the close handshake and timeouts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

/* An idle plain connection costs little heap (DESIGN.md, performance habits): what only rare
 * states need lives in struct conn_extra. 224 bytes on 64-bit systems; keep it there. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft_conn) <= 224,
               "struct weft_conn grew: move rarely used fields to struct conn_extra");

static inline struct weft_conn *to_conn(struct weft_sock *s)
{
    return (struct weft_conn *)s;
}

/* ----------------------------------------------------------------- receive state */

/* Frees the message being assembled in rx, if any, and releases its count in the memory
 * budget (a message buffer is counted by its capacity from allocation to free). */
static void rx_free_msg(struct endpoint *ep, struct conn_rx *rx)
{
    if (!rx->msg) return;
    free(rx->msg);
    mem_release(ep->loop, rx->msg_cap);
    rx->msg = NULL;
    rx->msg_len = rx->msg_cap = 0;
}

/* Frees a connection's saved receive state (partial frame, message being assembled); see
 * ws.h. */
void conn_drop_rx(struct weft_conn *c)
{
    if (!c->x || !c->x->rx) return;
    rx_free_msg(c->ep, c->x->rx);
    free(c->x->rx);
    c->x->rx = NULL;
    conn_extra_trim(c);
}

/* The side struct; see ws.h. */
struct conn_extra *conn_extra_get(struct weft_conn *c)
{
    if (!c->x) c->x = calloc(1, sizeof *c->x);
    return c->x;
}

/* Frees the side struct when unused; see ws.h. */
void conn_extra_trim(struct weft_conn *c)
{
    struct conn_extra *x = c->x;
    if (x && !x->rx && !x->head && !x->pong_owed && !x->protocol && !x->defl && !x->infl &&
        !c->eof_deferred) {
        free(x);
        c->x = NULL;
    }
}

/* Frees the stored head; see ws.h. */
void conn_head_free(struct weft_conn *c)
{
    if (!c->x || !c->x->head) return;
    free(c->x->head);
    c->x->head = NULL;
    conn_extra_trim(c);
}

/* Records the peer's address compactly; see ws.h. */
void conn_set_peer(struct weft_conn *c, const struct sockaddr *sa, socklen_t addrlen)
{
    memset(c->peer_addr, 0, sizeof c->peer_addr);
    c->peer_port = 0;
    if (sa->sa_family == AF_INET && addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        c->peer_family = AF_INET;
        c->peer_port = in->sin_port;
        memcpy(c->peer_addr, &in->sin_addr, sizeof in->sin_addr);
    } else if (sa->sa_family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        c->peer_family = AF_INET6;
        c->peer_port = in6->sin6_port;
        memcpy(c->peer_addr, &in6->sin6_addr, sizeof in6->sin6_addr);
    } else {
        c->peer_family = AF_UNIX;
    }
}

/* The 64-bit loop time of a 32-bit stamp t taken at most 49 days before now. */
static uint64_t conn_time64(uint64_t now, uint32_t t)
{
    return now - (uint32_t)((uint32_t)now - t);
}

/* The wire limit for a limit n (0 = none) on a permessage-deflate connection: an
 * incompressible message grows a little when deflated (zlib falls back to stored blocks), so the
 * compressed bytes get some slack; the inflated size is held to max_message while inflating. */
static uint64_t pmd_wire_limit(uint64_t n)
{
    return n && n < UINT64_MAX / 2 ? n + n / 8 + 64 : n;
}

/* Resets rx for a connection that starts (or resumes from idle) reading frames. */
static void rx_init(struct weft_conn *c, struct conn_rx *rx)
{
    struct weft_msg_limits lim = {
        .frame = {.role = c->ep->role,
                  .allowed_rsv = c->pmd_on ? 4 : 0,
                  .max_frame =
                      c->pmd_on ? pmd_wire_limit(c->ep->cfg.max_frame) : c->ep->cfg.max_frame},
        .max_message = c->pmd_on ? pmd_wire_limit(c->ep->cfg.max_message) : c->ep->cfg.max_message,
        .validate_utf8 = true,
    };
    weft_msg_parser_init(&rx->mp, &lim);
    rx->msg = NULL;
    rx->msg_len = rx->msg_cap = 0;
    rx->msg_binary = false;
}

/* The connection reads frames from now on; its parser is created when bytes arrive. */
void conn_start_frames(struct weft_conn *c)
{
    conn_drop_rx(c);
}

/* ----------------------------------------------------------------- timers */

static void on_timer(struct weft_timer *t);
static void report_budget(struct weft_conn *c);

/* Arms the connection's single timer for whatever its state waits for. */
void conn_arm_timer(struct weft_conn *c)
{
    const struct weft_server_config *cfg = &c->ep->cfg;
    struct weft_loop *loop = c->ep->loop;
    uint64_t now = weft_loop_now(loop), due = 0;
    uint64_t last_rx = conn_time64(now, c->last_rx);
    c->timer.cb = on_timer;
    if (c->eof_deferred || c->budget_due) { /* see conn_on_eof and conn_budget_close: report
                                               it first, as soon as possible */
        weft_timer_start(loop, &c->timer, 0);
        return;
    }
    switch (c->state) {
    case CONN_HTTP:
        due = last_rx + cfg->handshake_timeout_ms;
        /* the handshake deadline counts from accept, not from the last byte */
        break;
    case CONN_OPEN:
        if (cfg->idle_timeout_ms) due = last_rx + cfg->idle_timeout_ms;
        if (cfg->ping_interval_ms) {
            uint64_t p = c->ping_sent ? conn_time64(now, c->ping_sent) + cfg->pong_timeout_ms
                                      : last_rx + cfg->ping_interval_ms;
            if (!due || p < due) due = p;
        }
        break;
    case CONN_CLOSING:
    case CONN_DRAINING:
        due = now + cfg->close_timeout_ms;
        break;
    default:
        break;
    }
    if (!due) {
        weft_timer_stop(&c->timer);
        return;
    }
    weft_timer_start(loop, &c->timer, due > now ? due - now : 0);
}

/* The connection's timer fired: handshake, idle, keep-alive or close timeout. */
static void on_timer(struct weft_timer *t)
{
    struct weft_conn *c = (struct weft_conn *)((char *)t - offsetof(struct weft_conn, timer));
    const struct weft_server_config *cfg = &c->ep->cfg;
    uint64_t now = weft_loop_now(c->ep->loop);
    uint64_t last_rx = conn_time64(now, c->last_rx);
    if (c->eof_deferred) {
        int err = c->x ? c->x->eof_err : EIO; /* c->x is kept while eof_deferred */
        c->eof_deferred = false;
        conn_extra_trim(c);
        conn_on_eof(&c->sock, err);
        return;
    }
    if (c->budget_due) {
        report_budget(c);
        conn_arm_timer(c);
        return;
    }
    switch (c->state) {
    case CONN_HTTP:
        conn_log(c, WEFT_LOG_DEBUG, "conn %llu: handshake timeout", (unsigned long long)c->id);
        sock_close(&c->sock);
        c->state = CONN_DEAD;
        return;
    case CONN_OPEN:
        if (cfg->idle_timeout_ms && now >= last_rx + cfg->idle_timeout_ms) {
            weft_conn_close(c, WEFT_CLOSE_GOING_AWAY, "idle timeout");
            return;
        }
        if (cfg->ping_interval_ms) {
            if (c->ping_sent && now >= conn_time64(now, c->ping_sent) + cfg->pong_timeout_ms) {
                conn_log(c, WEFT_LOG_INFO, "conn %llu: no pong, dropping",
                         (unsigned long long)c->id);
                weft_conn_terminate(c);
                return;
            }
            if (!c->ping_sent && now >= last_rx + cfg->ping_interval_ms) {
                /* One at a time (the next waits for a pong or the deadline): not limited. */
                conn_send_ctl(c, WEFT_OP_PING, NULL, 0);
                c->ping_sent = (uint32_t)now ? (uint32_t)now : 1;
            }
        }
        conn_arm_timer(c);
        return;
    case CONN_CLOSING:
        /* The peer never answered our close frame: report the code we sent, unclean. */
        conn_finish(c, c->close_sent, NULL, 0, false);
        sock_close(&c->sock);
        c->state = CONN_DEAD;
        return;
    case CONN_DRAINING:
        sock_close(&c->sock);
        c->state = CONN_DEAD;
        return;
    default:
        return;
    }
}

/* ----------------------------------------------------------------- closing */

/* Reports the end of the connection to the application, once, and releases what an open
 * connection holds (subscriptions, a partial message). */
void conn_finish(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                 bool clean)
{
    if (c->close_reported) return;
    c->close_reported = true;
    /* The receive state is released by conn_feed_bytes or conn_free: it may be in use by the
     * caller right now. */
    if (!c->h) /* never opened */
        return;
    c->ep->stats.connections--;
    pubsub_conn_gone(c);
    if (c->h->on_close) c->h->on_close(c, code, reason, reason_len, clean);
}

/* Queues one whole frame: in the server role header + payload as they are, in the client
 * role with a fresh masking key and the payload masked in the queue. */
int conn_write_frame(struct weft_conn *c, uint8_t opcode, uint8_t rsv, const void *payload,
                     size_t len)
{
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    if (c->ep->role == WEFT_ROLE_SERVER) {
        size_t h = weft_frame_header_write(hdr, opcode, true, rsv, len, NULL);
        return sock_write2(&c->sock, hdr, h, payload, len);
    }
    uint8_t key[4];
    weft_random_bytes(&c->ep->rnd, key, sizeof key);
    size_t h = weft_frame_header_write(hdr, opcode, true, rsv, len, key);
    uint8_t *p = sock_reserve(&c->sock, h + len);
    if (!p) return WEFT_ERR_CLOSED;
    memcpy(p, hdr, h);
    if (len) {
        memcpy(p + h, payload, len);
        weft_mask(p + h, len, key, 0);
    }
    return WEFT_OK;
}

/* Queues a control frame, bypassing the backpressure limit: used for what is bounded by
 * the protocol itself (one close frame, one keep-alive ping per pong timeout). Pongs and
 * application pings go through send_pong / weft_conn_ping, which apply the limit. */
void conn_send_ctl(struct weft_conn *c, uint8_t opcode, const void *payload, size_t len)
{
    conn_write_frame(c, opcode, 0, payload, len);
}

/* True when queueing len more bytes would take c's unsent output over max_backpressure. A
 * frame larger than the limit on its own still goes into an empty queue (it could never be
 * sent otherwise), so the queue holds at most max_backpressure + one frame. Everything queued
 * counts, also what was queued in this loop iteration and not offered to the kernel yet: if
 * the socket is not known to be blocked, the queue is written now (instead of at the end of
 * the iteration) and only what the kernel refuses counts, so a burst to a peer that keeps up
 * is not refused. */
bool conn_queue_full(struct weft_conn *c, size_t len)
{
    size_t queued = sock_queued(&c->sock), max = c->ep->cfg.max_backpressure;
    if (queued + len <= max) /* the common case: one comparison (len is a frame size) */
        return false;
    if (queued == 0) return false;
    if (!sock_blocked(&c->sock)) {
        /* We may be inside an application callback (or delivering a publish): a failed write
         * must not call back now, so conn_on_eof defers its report to the timer. */
        c->flushing = true;
        sock_flush(&c->sock);
        c->flushing = false;
        queued = sock_queued(&c->sock);
        if (queued == 0 || queued + len <= max) return false;
    }
    return true;
}

/* Applies WEFT_SLOW_CLOSE to c: counts it and starts the close handshake with 1008. */
void conn_close_slow(struct weft_conn *c)
{
    c->ep->stats.closed_slow++;
    weft_conn_close(c, WEFT_CLOSE_POLICY, "slow consumer");
}

/* Answers a ping. Over the backpressure limit nothing is queued: under WEFT_SLOW_CLOSE the
 * connection is closed with 1008; under WEFT_SLOW_DROP the payload is kept in pong_owed and
 * sent once the backlog drains, replacing (and counting as dropped) the answer to any earlier
 * ping still owed: RFC 6455 §5.5.3 lets an endpoint answer only the most recent of several
 * pings. A peer that floods pings without reading thus costs at most one pong beyond the
 * limit. */
static void send_pong(struct weft_conn *c, const uint8_t *data, size_t len)
{
    if (!conn_queue_full(c, len + 2)) {
        if (c->x && c->x->pong_owed) { /* a later ping is answered now: the owed pong is
                                          superseded */
            c->ep->stats.dropped_backpressure++;
            free(c->x->pong_owed);
            c->x->pong_owed = NULL;
            conn_extra_trim(c);
        }
        conn_send_ctl(c, WEFT_OP_PONG, data, len);
        return;
    }
    c->out_full = true;
    if (c->ep->cfg.slow_policy == WEFT_SLOW_CLOSE) {
        conn_close_slow(c);
        return;
    }
    struct conn_extra *x = conn_extra_get(c);
    if (!x) return; /* the ping simply goes unanswered */
    if (x->pong_owed) {
        c->ep->stats.dropped_backpressure++;
    } else {
        x->pong_owed = malloc(1 + 125);
        if (!x->pong_owed) {
            conn_extra_trim(c);
            return; /* the ping simply goes unanswered */
        }
    }
    x->pong_owed[0] = (uint8_t)len;
    if (len) memcpy(x->pong_owed + 1, data, len);
}

/* Sends a close frame and stops accepting application sends. A code that may not appear on
 * the wire (1005, 1006, 1015, out of range: RFC 6455 §7.4.1) goes as an empty close. */
static void send_close(struct weft_conn *c, uint16_t code, const char *reason)
{
    uint8_t payload[125];
    if (!weft_close_code_valid(code)) code = WEFT_CLOSE_NO_STATUS;
    size_t n = weft_close_payload(payload, code == WEFT_CLOSE_NO_STATUS ? 0 : code, reason,
                                  reason ? strlen(reason) : 0);
    conn_send_ctl(c, WEFT_OP_CLOSE, payload, n);
    c->close_sent = code ? code : WEFT_CLOSE_NO_STATUS;
}

/* Starts the close handshake; see weft.h. */
void weft_conn_close(struct weft_conn *c, uint16_t code, const char *reason)
{
    if (c->state != CONN_OPEN) return;
    send_close(c, code ? code : WEFT_CLOSE_NORMAL, reason);
    c->state = CONN_CLOSING;
    conn_arm_timer(c);
}

/* Drops the connection without a close handshake; see weft.h. */
void weft_conn_terminate(struct weft_conn *c)
{
    if (c->state == CONN_DEAD) return;
    report_budget(c);
    /* After our close frame went unanswered, on_close reports the code we sent. */
    conn_finish(c, c->state == CONN_CLOSING ? c->close_sent : WEFT_CLOSE_ABNORMAL, NULL, 0, false);
    sock_close(&c->sock);
    c->state = CONN_DEAD;
}

/* The peer broke the protocol: close with `code`, report it, and stop reading; see ws.h. */
void conn_protocol_error(struct weft_conn *c, uint16_t code, const char *why)
{
    c->ep->stats.protocol_errors++;
    conn_log(c, WEFT_LOG_DEBUG, "conn %llu: protocol error %u: %s", (unsigned long long)c->id, code,
             why ? why : "");
    if (c->state == CONN_OPEN) send_close(c, code, why);
    c->state = CONN_DRAINING;
    sock_shutdown_after_flush(&c->sock);
    conn_arm_timer(c);
    conn_finish(c, code, why, why ? strlen(why) : 0, false);
}

#define BUDGET_REASON "memory budget exceeded"

/* Closes c for the memory budget; see ws.h. What c holds is released now; the report
 * (on_close, leaving its topics) waits for c's timer, due at once: this may run inside a
 * send to another connection, or a publish walking a topic's subscribers, where no callback
 * may run and no subscriber array may change. */
void conn_budget_close(struct weft_conn *c)
{
    if (c->state == CONN_DEAD || c->budget_due) return;
    c->ep->stats.closed_memory++;
    conn_log(c, WEFT_LOG_INFO,
             "conn %llu: closing (1013): over the memory budget, holding %zu bytes",
             (unsigned long long)c->id, conn_held(c));
    if (sock_held(&c->sock))
        sock_discard(&c->sock); /* it does not read: a close frame could not reach it (and the
                                   frame being written is cut short), only the FIN */
    else if (c->state == CONN_OPEN)
        send_close(c, WEFT_CLOSE_TRY_AGAIN, BUDGET_REASON);
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING) c->budget_due = true;
    c->state = CONN_DRAINING; /* no more reading or sending; closed after close_timeout */
    sock_shutdown_after_flush(&c->sock);
    if (!c->feeding) conn_drop_rx(c); /* else conn_feed_bytes frees it when it returns */
    conn_arm_timer(c);
}

/* Reports a close for the memory budget still due (see conn_budget_close). */
static void report_budget(struct weft_conn *c)
{
    if (!c->budget_due) return;
    c->budget_due = false;
    conn_finish(c, WEFT_CLOSE_TRY_AGAIN, BUDGET_REASON, sizeof BUDGET_REASON - 1, false);
}

/* ----------------------------------------------------------------- receiving */

/* Grows the buffer of the message being assembled in rx to take the chunk of ev (doubling,
 * up to what the parser lets through), counted in the memory budget. A message that is not
 * buffered yet is refused (1013) before any of it is when what its first frame announces does
 * not fit in the budget; a message that grows past the budget has the loop's largest holders
 * closed first, or is closed itself when it is the largest (conn_budget_room). Returns false
 * when the connection was closed. */
static bool rx_grow(struct weft_conn *c, struct conn_rx *rx, const struct weft_msg_event *ev)
{
    struct endpoint *ep = c->ep;
    size_t need = rx->msg_len + ev->len;
    size_t cap = rx->msg_cap ? rx->msg_cap : 4096;
    while (cap < need)
        cap *= 2;
    uint64_t most = c->pmd_on ? pmd_wire_limit(ep->cfg.max_message)
                              : ep->cfg.max_message; /* what the parser lets through */
    if (most && cap > most) cap = (size_t)most;
    size_t more = cap - rx->msg_cap;
    bool fits;
    if (!rx->msg)
        fits = mem_fits((uint64_t)need + rx->mp.fp.remaining) && mem_charge(ep->loop, more, false);
    else
        fits = conn_budget_room(c, more, true);
    if (!fits) {
        conn_budget_close(c);
        return false;
    }
    uint8_t *m = realloc(rx->msg, cap);
    if (!m) {
        mem_release(ep->loop, more);
        weft_conn_close(c, WEFT_CLOSE_TRY_AGAIN, "out of memory");
        return false;
    }
    rx->msg = m;
    rx->msg_cap = cap;
    return true;
}

/* Delivers (part of) a data message to the application. */
static void on_data_event(struct weft_conn *c, struct conn_rx *rx, const struct weft_msg_event *ev)
{
    const struct weft_ws_handlers *h = c->h;
    struct weft_server_stats *st = &c->ep->stats;
    bool binary = ev->opcode == WEFT_OP_BINARY;
    /* After our close frame a server ignores data; a client still delivers what the server
     * sent before it saw our close (answers to requests in flight): RFC 6455 §1.4 makes only
     * the side that received a close discard what follows. */
    if (c->state != CONN_OPEN && (c->state != CONN_CLOSING || c->ep->role != WEFT_ROLE_CLIENT))
        return;
    st->bytes_in += ev->len;
    if (ev->fin) st->messages_in++;
    if (ev->compressed && ev->first && ev->fin) {
        conn_deliver_compressed(c, ev->data, ev->len, binary);
        return;
    }
    if (c->pmd_on && !ev->compressed &&
        (ev->first ? 0 : rx->msg_len) + ev->len > c->ep->cfg.max_message) {
        /* The parser's limits are widened for compressed frames: hold plain ones to the
         * real limit. */
        conn_protocol_error(c, WEFT_CLOSE_TOO_BIG, "message larger than the maximum message size");
        return;
    }
    if (h->on_fragment && !ev->compressed) {
        h->on_fragment(c, ev->data, ev->len, binary, ev->first, ev->fin);
        return;
    }
    if (ev->first && ev->fin) {
        /* The common case: a whole message straight from the receive buffer. */
        if (h->on_message) h->on_message(c, ev->data, ev->len, binary);
        return;
    }
    if (ev->first) {
        rx->msg_len = 0;
        rx->msg_binary = binary;
    }
    if (rx->msg_len + ev->len > rx->msg_cap && !rx_grow(c, rx, ev)) return;
    if (ev->len) memcpy(rx->msg + rx->msg_len, ev->data, ev->len);
    rx->msg_len += ev->len;
    if (!ev->fin) return;
    /* Take the buffer out of rx first: the callback may close the connection. It stays
     * counted in the memory budget until it is freed. */
    struct endpoint *ep = c->ep;
    uint8_t *msg = rx->msg;
    size_t msg_len = rx->msg_len, counted = rx->msg_cap;
    bool msg_binary = rx->msg_binary;
    rx->msg = NULL;
    rx->msg_len = rx->msg_cap = 0;
    if (ev->compressed)
        conn_deliver_compressed(c, msg, msg_len, msg_binary);
    else if (h->on_message)
        h->on_message(c, msg, msg_len, msg_binary);
    free(msg);
    mem_release(ep->loop, counted);
}

/* Handles a ping, pong or close frame from the peer. */
static void on_control_event(struct weft_conn *c, const struct weft_msg_event *ev)
{
    switch (ev->opcode) {
    case WEFT_OP_PING:
        if (c->state == CONN_OPEN) send_pong(c, ev->data, ev->len);
        return;
    case WEFT_OP_PONG:
        c->ping_sent = 0;
        if (c->state == CONN_OPEN && c->h->on_pong) c->h->on_pong(c, ev->data, ev->len);
        return;
    case WEFT_OP_CLOSE:
        if (c->state == CONN_OPEN) {
            /* Echo the peer's code (an empty close is answered with an empty close). */
            send_close(c, ev->close_code, NULL);
        }
        /* Close handshake complete: the server closes the TCP connection. */
        c->state = CONN_DRAINING;
        sock_shutdown_after_flush(&c->sock);
        conn_arm_timer(c);
        c->ep->close_rcvd = ev->close_code ? ev->close_code : WEFT_CLOSE_NO_STATUS;
        conn_finish(c, ev->close_code, ev->reason, ev->reason_len, true);
        c->ep->close_rcvd = 0;
        return;
    default:
        return;
    }
}

/* Runs frames in data[0..len) through the assembler and dispatches the events. A
 * connection between frames owns no parser: its bytes go through the endpoint's scratch
 * state, which is copied into an allocation of the connection's own only if the read ends
 * in the middle of a frame or message (and freed when a later read completes it). */
void conn_feed_bytes(struct weft_conn *c, uint8_t *data, size_t len)
{
    struct conn_rx *rx = c->x ? c->x->rx : NULL;
    bool scratch = rx == NULL, was_feeding = c->feeding;
    if (scratch) {
        rx = &c->ep->rx_scratch;
        rx_init(c, rx);
    }
    c->feeding = true; /* rx is in use: a budget close leaves it to us (conn_budget_close) */
    while (len > 0 && (c->state == CONN_OPEN || c->state == CONN_CLOSING)) {
        struct weft_msg_event ev;
        size_t used;
        enum weft_msg_event_type t = weft_msg_parse(&rx->mp, data, len, &used, &ev);
        data += used;
        len -= used;
        if (t == WEFT_MSG_NEED_MORE) break;
        if (t == WEFT_MSG_ERROR) {
            conn_protocol_error(c, ev.close_code, ev.reason);
            break;
        }
        if (t == WEFT_MSG_CONTROL)
            on_control_event(c, &ev);
        else
            on_data_event(c, rx, &ev);
    }
    c->feeding = was_feeding;
    bool reading = c->state == CONN_OPEN || c->state == CONN_CLOSING;
    bool idle = weft_msg_parser_idle(&rx->mp) && !rx->msg;
    if (scratch) {
        if (reading && !idle) {
            struct conn_extra *x = conn_extra_get(c);
            struct conn_rx *own = x ? malloc(sizeof *own) : NULL;
            if (!own) {
                rx_free_msg(c->ep, rx);
                conn_extra_trim(c);
                weft_conn_terminate(c);
                return;
            }
            *own = *rx;
            x->rx = own;
        } else {
            rx_free_msg(c->ep, rx);
        }
    } else if (!reading || idle) {
        conn_drop_rx(c);
    }
}

/* Sends the pong still owed from over the limit (see send_pong), if any. */
static void send_owed_pong(struct weft_conn *c)
{
    uint8_t *owed = c->x ? c->x->pong_owed : NULL;
    if (!owed) return;
    c->x->pong_owed = NULL;
    conn_extra_trim(c);
    if (c->state == CONN_OPEN) conn_send_ctl(c, WEFT_OP_PONG, owed + 1, owed[0]);
    free(owed);
}

/* Receive-side flow control, after a read left the output full (the limit refused something,
 * or the queue is over it): the kernel takes what it can now rather than at the end of the
 * iteration. If it took everything, the output is no longer full (and the owed pong goes).
 * Otherwise on_drain will follow, and until then the peer is not read at all: what it sends
 * produces no more output, and TCP pushes back on it. Runs outside any application callback,
 * so the flush may report an error (on_eof) safely. */
static void flow_control(struct weft_conn *c)
{
    struct weft_sock *s = &c->sock;
    if (!sock_blocked(s)) {
        sock_flush(s);
        if (c->state == CONN_DEAD) return; /* the write failed: on_eof closed the connection */
    }
    if (!sock_blocked(s)) {
        c->out_full = false;
        send_owed_pong(c);
        return;
    }
    if (!c->bp_paused) {
        c->bp_paused = true;
        sock_pause(s);
    }
}

/* Socket callback: bytes arrived. */
void conn_on_data(struct weft_sock *s, uint8_t *data, size_t len)
{
    struct weft_conn *c = to_conn(s);
    c->last_rx = conn_now32(c);
    switch (c->state) {
    case CONN_HTTP:
        c->ep->ops->on_head(c, data, len);
        return;
    case CONN_OPEN:
    case CONN_CLOSING:
        if (c->ping_sent) {
            /* Any traffic proves the peer alive. The timer still waits for the pong deadline:
             * re-arm it so the next ping follows ping_interval of silence, not the deadline. */
            c->ping_sent = 0;
            if (c->state == CONN_OPEN) conn_arm_timer(c);
        }
        conn_feed_bytes(c, data, len);
        if (c->out_full || sock_queued(s) > c->ep->cfg.max_backpressure) flow_control(c);
        if (mem_over()) /* output the kernel refused is counted at the flush: enforce here */
            conn_budget_enforce(c->ep);
        return;
    default:
        return; /* draining: discard */
    }
}

/* Socket callback: the backlog is gone. Sends the pong still owed, tells the application
 * (on_drain) and resumes reading if flow control had paused it. */
void conn_on_drain(struct weft_sock *s)
{
    struct weft_conn *c = to_conn(s);
    c->out_full = false;
    send_owed_pong(c);
    if (c->backpressured && c->state == CONN_OPEN) {
        c->backpressured = false;
        if (c->h->on_drain) c->h->on_drain(c);
    }
    if (c->bp_paused && c->state != CONN_DEAD) {
        c->bp_paused = false;
        if (!c->app_paused) sock_resume(s);
    }
}

/* Socket callback: the peer closed its side or the socket failed. During an early flush
 * from a send (see conn_queue_full) the report waits for the connection's timer, due at once: the
 * application must not see on_close from inside weft_conn_send. */
void conn_on_eof(struct weft_sock *s, int err)
{
    struct weft_conn *c = to_conn(s);
    if (c->flushing) {
        struct conn_extra *x = conn_extra_get(c);
        if (x) x->eof_err = err; /* without memory for it, on_timer reports EIO */
        c->eof_deferred = true;
        conn_arm_timer(c);
        return;
    }
    report_budget(c);
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
        conn_finish(c, WEFT_CLOSE_ABNORMAL, NULL, 0, false);
    if (sock_queued(s) && !err)
        sock_flush(s); /* a half-closed peer still reads: let the close echo out */
    sock_close(s);
    c->state = CONN_DEAD;
}

/* Releases a connection's memory (no callbacks). */
void conn_free(struct weft_conn *c)
{
    weft_timer_stop(&c->timer);
    struct conn_extra *x = c->x;
    if (x) {
        if (x->rx) rx_free_msg(c->ep, x->rx);
        free(x->rx);
        free(x->head);
        free(x->pong_owed);
        free(x->protocol);
        weft_deflater_free(x->defl);
        weft_inflater_free(x->infl);
        free(x);
    }
    free(c->subs);
    free(c);
}

/* Socket callback: the loop is done with the closed socket. */
void conn_on_free(struct weft_sock *s)
{
    struct weft_conn *c = to_conn(s);
    weft_timer_stop(&c->timer);
    struct endpoint *ep = c->ep;
    if (c->prev)
        c->prev->next = c->next;
    else
        ep->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    ep->nconns--;
    if (ep->ops->on_gone) ep->ops->on_gone(c);
    conn_free(c);
}
