/*
 * client.c — WebSocket clients: name resolution (c-ares through net/dns.c), connects
 * (net/connect.c), the opening handshake, reconnection with exponential backoff and
 * full jitter, and a queue for messages sent while disconnected. Once the 101 is in, the
 * connection is an ordinary struct weft_conn driven by conn.c in the client role.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ws/client.h"
#include "ws/defaults.h"

#define MAX_HINT_MS (3600u * 1000u)
#define REQUEST_MAX (WEFT_HTTP_MAX_HEAD + 1024)

static void client_on_eof(struct weft_sock *s, int err);

static const struct sock_ops client_conn_ops = {
    .on_data = conn_on_data,
    .on_drain = conn_on_drain,
    .on_eof = client_on_eof,
    .on_free = conn_on_free,
};

static void start_attempt(struct weft_client *cl);
static void client_on_head(struct weft_conn *c, uint8_t *data, size_t len);
static void client_conn_gone(struct weft_conn *c);

/* The route user of a client connection: the client's user pointer (weft_client_set_user
 * replaces it for the open connection too). */
static void *client_route_user(const struct weft_conn *c)
{
    return ((const struct weft_client *)c->ep)->opt.user;
}

static const struct endpoint_ops client_ep_ops = {
    .on_head = client_on_head,
    .on_gone = client_conn_gone,
    .route_user = client_route_user,
};
static void attempt_failed(struct weft_client *cl);

/* The backoff bound of the n-th consecutive reconnection (n from 1, as on_reconnecting
 * reports it): min(cap_ms, base_ms * 2^(n-1)), i.e. min(cap, base * 2^attempt) with a 0-based
 * attempt; see weft.h. Returns the bound in milliseconds. */
uint32_t weft_backoff_bound(uint32_t base_ms, uint32_t cap_ms, unsigned n)
{
    uint64_t b = base_ms;
    for (unsigned i = 1; i < n && b < cap_ms; i++)
        b *= 2;
    return b < cap_ms ? (uint32_t)b : cap_ms;
}

/* ----------------------------------------------------------------- helpers */

static struct weft_client *from_timer(struct weft_timer *t, size_t off)
{
    return (struct weft_client *)((char *)t - off);
}

/* A uniformly random number in [0, bound]. */
static uint32_t random_upto(struct weft_client *cl, uint32_t bound)
{
    uint32_t r;
    weft_random_bytes(&cl->ep.rnd, &r, sizeof r);
    if (bound == UINT32_MAX) return r;
    return (uint32_t)((uint64_t)r % ((uint64_t)bound + 1));
}

/* Reports an error of the current attempt to the application (and to its owner, e.g. the pool). */
static void report_error(struct weft_client *cl, int err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_error(struct weft_client *cl, int err, int status, const char *fmt, ...)
{
    char reason[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    cl->failed = true;
    ep_log(&cl->ep, WEFT_LOG_INFO, "client %s: %s", cl->hosthdr, reason);
    if (cl->owner) cl->owner->error(cl->owner_arg, cl, err);
    if (cl->opt.on_error) cl->opt.on_error(cl, err, reason, status);
}

/* Drops the queued messages. */
static void queue_clear(struct weft_client *cl)
{
    while (cl->qhead) {
        struct qmsg *m = cl->qhead;
        cl->qhead = m->next;
        free(m);
    }
    cl->qtail = NULL;
    cl->qbytes = 0;
}

/* Closes every TCP connect in flight. */
static void drop_attempts(struct weft_client *cl)
{
    net_connector_stop(cl->nc);
}

/* Timer callback: reports the end to the application (last thing a client does on its own). */
static void on_end_timer(struct weft_timer *t)
{
    struct weft_client *cl = from_timer(t, offsetof(struct weft_client, end_timer));
    if (cl->end_reported) return;
    cl->end_reported = true;
    if (cl->owner) {
        cl->owner->ended(cl->owner_arg, cl); /* frees cl */
        return;
    }
    if (cl->opt.on_end) cl->opt.on_end(cl); /* may free cl */
}

/* Stops for good: no more attempts; on_end follows from a timer. */
static void client_end(struct weft_client *cl)
{
    if (cl->state == CL_ENDED) return;
    cl->state = CL_ENDED;
    if (cl->dns) {
        dns_cancel(cl->dns);
        cl->dns = NULL;
    }
    drop_attempts(cl);
    weft_timer_stop(&cl->connect_timer);
    weft_timer_stop(&cl->retry_timer);
    queue_clear(cl);
    weft_timer_start(cl->ep.loop, &cl->end_timer, 0);
}

/* ----------------------------------------------------------------- reconnection */

/* After a failed attempt or a lost connection: schedules the next attempt under the policy,
 * or ends the client. */
static void schedule_retry(struct weft_client *cl)
{
    const struct weft_client_options *o = &cl->opt;
    if (cl->app_closed || !o->reconnect || cl->no_retry) {
        client_end(cl);
        return;
    }
    if (o->max_attempts && cl->attempt >= o->max_attempts) {
        report_error(cl, WEFT_ERR_CLOSED, 0, "giving up after %u reconnection attempts",
                     cl->attempt);
        client_end(cl);
        return;
    }
    if (cl->close_code == WEFT_CLOSE_RESTART)
        cl->attempt = 0; /* the server restarts: not a failure of ours */
    cl->attempt++;
    uint32_t bound = weft_backoff_bound(o->backoff_base_ms, o->backoff_cap_ms, cl->attempt);
    uint64_t delay = random_upto(cl, bound);
    if (cl->close_code == WEFT_CLOSE_TRY_AGAIN && delay < o->try_again_ms) delay = o->try_again_ms;
    if (cl->hint_ms >= 0 && delay < (uint64_t)cl->hint_ms) delay = (uint64_t)cl->hint_ms;
    cl->state = CL_WAITING;
    weft_timer_start(cl->ep.loop, &cl->retry_timer, delay);
    if (o->on_reconnecting) o->on_reconnecting(cl, cl->attempt, (uint32_t)delay);
}

/* Timer callback: the backoff delay is over. */
static void on_retry_timer(struct weft_timer *t)
{
    struct weft_client *cl = from_timer(t, offsetof(struct weft_client, retry_timer));
    if (cl->state == CL_WAITING) start_attempt(cl);
}

/* The current attempt failed before a connection opened (the error was reported). */
static void attempt_failed(struct weft_client *cl)
{
    if (cl->dns) {
        dns_cancel(cl->dns);
        cl->dns = NULL;
    }
    drop_attempts(cl);
    weft_timer_stop(&cl->connect_timer);
    schedule_retry(cl);
}

/* ----------------------------------------------------------------- connection callbacks */

/* Connection callback: the connection opened (after the 101). */
static void client_on_open(struct weft_conn *c)
{
    struct weft_client *cl = (struct weft_client *)c->ep;
    if (cl->opt.handlers.on_open) cl->opt.handlers.on_open(c);
}

/* Connection callback: the connection is over. Reports a protocol violation by the server as
 * an error, remembers the server's hints, then tells the application. */
static void client_on_close(struct weft_conn *c, uint16_t code, const char *reason,
                            size_t reason_len, bool clean)
{
    struct weft_client *cl = (struct weft_client *)c->ep;
    cl->close_code = code;
    if (cl->state == CL_OPEN && cl->ep.stats.protocol_errors > cl->proto_errors_at_open)
        report_error(cl, WEFT_ERR_PROTO, 0, "%s (closed with %u): %.*s",
                     code == WEFT_CLOSE_TOO_BIG ? "message from the server too big"
                                                : "protocol error by the server",
                     code, (int)reason_len, reason ? reason : "");
    if (cl->opt.handlers.on_close) cl->opt.handlers.on_close(c, code, reason, reason_len, clean);
}

/* Socket callback: end of stream. During the handshake that is a failure to report. */
static void client_on_eof(struct weft_sock *s, int err)
{
    struct weft_conn *c = (struct weft_conn *)s;
    struct weft_client *cl = (struct weft_client *)c->ep;
    if (c->state == CONN_HTTP && cl->conn == c && !cl->failed) {
        char why[320];
        if (s->tls_err || (s->flags & SOCK_TLS_HS)) { /* the TLS handshake failed */
            tls_error_text(s, err, why, sizeof why);
            report_error(cl, WEFT_ERR_TLS, 0, "%s", why);
        } else if (err)
            report_error(cl, WEFT_ERR_IO, 0, "connection lost during the handshake: %s",
                         strerror(err));
        else
            report_error(cl, WEFT_ERR_PROTO, 0,
                         "the server closed the connection during the handshake");
    }
    conn_on_eof(s, err);
}

/* Endpoint hook: a connection is being freed. Decides what comes next. */
static void client_conn_gone(struct weft_conn *c)
{
    struct weft_client *cl = (struct weft_client *)c->ep;
    if (cl->conn != c) return;
    cl->conn = NULL;
    if (cl->state == CL_ENDED) return;
    if (cl->app_closed) {
        client_end(cl);
        return;
    }
    if (!cl->had_open) {
        if (!cl->failed)
            report_error(cl, WEFT_ERR_TIMEOUT, 0, "no handshake response within %u ms",
                         cl->ep.cfg.handshake_timeout_ms);
        attempt_failed(cl);
        return;
    }
    uint64_t now = weft_loop_now(cl->ep.loop);
    if (now - cl->opened_at >= cl->opt.reset_after_ms) cl->attempt = 0;
    schedule_retry(cl);
}

/* ----------------------------------------------------------------- the handshake */

/* Parses Retry-After (delay in seconds; HTTP dates are not honoured) into cl->hint_ms. */
static void take_retry_after(struct weft_client *cl, const struct weft_http_response *resp)
{
    const struct weft_http_header *h =
        weft_http_find_header(resp->headers, resp->num_headers, "Retry-After");
    if (!h || !h->value_len) return;
    uint64_t v = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        char ch = h->value[i];
        if (ch < '0' || ch > '9') return;
        v = v * 10 + (uint64_t)(ch - '0');
        if (v * 1000 > MAX_HINT_MS) {
            v = MAX_HINT_MS / 1000;
            break;
        }
    }
    cl->hint_ms = (int64_t)(v * 1000);
}

/* Fails the handshake: the socket is closed; client_conn_gone continues. */
static void handshake_fail(struct weft_conn *c)
{
    conn_head_free(c);
    sock_close(&c->sock);
    c->state = CONN_DEAD;
}

/* The 101 checked out: the connection opens. */
static void handshake_done(struct weft_client *cl, struct weft_conn *c,
                           const struct weft_handshake_result *res)
{
    if (res->protocol) {
        struct conn_extra *x = conn_extra_get(c);
        if (x) x->protocol = strndup(res->protocol, res->protocol_len);
        if (!x || !x->protocol) {
            report_error(cl, WEFT_ERR_NOMEM, 0, "out of memory");
            handshake_fail(c);
            return;
        }
    }
    if (cl->pmd_agreed) conn_enable_deflate(c, &cl->pmd);
    conn_start_frames(c);
    c->h = &cl->h; /* weft_conn_route_user: cl->opt.user (client_route_user) */
    c->state = CONN_OPEN;
    cl->state = CL_OPEN;
    cl->had_open = true;
    cl->opened_at = weft_loop_now(cl->ep.loop);
    cl->proto_errors_at_open = cl->ep.stats.protocol_errors;
    cl->ep.stats.upgrades_total++;
    cl->ep.stats.connections++;
    conn_arm_timer(c);
    while (cl->qhead && c->state == CONN_OPEN) {
        struct qmsg *m = cl->qhead;
        cl->qhead = m->next;
        cl->qbytes -= m->len;
        weft_conn_send(c, m->data, m->len, (enum weft_opcode)m->opcode);
        free(m);
    }
    if (!cl->qhead) cl->qtail = NULL;
    if (cl->owner) cl->owner->opened(cl->owner_arg, cl);
    if (c->state == CONN_OPEN && c->h->on_open) c->h->on_open(c);
}

/* Checks a complete response head. Returns true when the connection is now open. */
static bool handle_response(struct weft_client *cl, struct weft_conn *c,
                            const struct weft_http_response *resp)
{
    if (resp->status != 101) {
        take_retry_after(cl, resp);
        if (cl->opt.no_retry_4xx && resp->status >= 400 && resp->status < 500 &&
            resp->status != 408 && resp->status != 429)
            cl->no_retry = true;
        report_error(cl, WEFT_ERR_PROTO, resp->status,
                     "handshake rejected with HTTP status %d %.*s", resp->status,
                     (int)resp->reason_len, resp->reason ? resp->reason : "");
        handshake_fail(c);
        return false;
    }
    struct weft_handshake_result res;
    memset(&res, 0, sizeof res);
    const char *offer = cl->pmd_offer[0] ? cl->pmd_offer : NULL;
    if (weft_handshake_check_response(resp, cl->key, cl->opt.protocols, offer, &res) != WEFT_OK) {
        report_error(cl, WEFT_ERR_PROTO, 0, "bad handshake response: %s",
                     res.error ? res.error : "invalid");
        handshake_fail(c);
        return false;
    }
    cl->pmd_agreed = false;
    if (res.extensions && res.extensions_len) {
        if (!offer ||
            weft_pmd_accept(res.extensions, res.extensions_len, &cl->opt.deflate, &cl->pmd) != 0) {
            report_error(cl, WEFT_ERR_PROTO, 0,
                         "bad handshake response: unacceptable extension answer '%.*s'",
                         (int)(res.extensions_len > 200 ? 200 : res.extensions_len),
                         res.extensions);
            handshake_fail(c);
            return false;
        }
        cl->pmd_agreed = true;
    }
    handshake_done(cl, c, &res);
    return c->state == CONN_OPEN || c->state == CONN_CLOSING;
}

/* Endpoint hook: bytes of the response head. Parses in place when the head came in one
 * read, otherwise accumulates up to max_head bytes; bytes after the head are frames. */
static void client_on_head(struct weft_conn *c, uint8_t *data, size_t len)
{
    struct weft_client *cl = (struct weft_client *)c->ep;
    size_t max = cl->ep.cfg.max_head;
    struct head_in in;
    conn_head_begin(c, data, len, max, &in);
    if (!in.ready) return; /* stored; the head is not complete yet */
    struct weft_http_response *resp = malloc(sizeof *resp);
    if (!resp) {
        report_error(cl, WEFT_ERR_NOMEM, 0, "out of memory");
        handshake_fail(c);
        return;
    }
    int r = weft_http_parse_response(in.buf, in.len, max, resp);
    if (r < 0 || (r == 0 && in.len >= max)) {
        free(resp);
        report_error(cl, WEFT_ERR_PROTO, 0, "%s",
                     r < 0 ? "malformed HTTP response to the upgrade"
                           : "HTTP response head too large");
        handshake_fail(c);
        return;
    }
    if (r == 0) {
        free(resp);
        if (!conn_head_keep(c, data, len, max)) {
            report_error(cl, WEFT_ERR_NOMEM, 0, "out of memory");
            handshake_fail(c);
        }
        return;
    }
    /* Complete: frames may follow the head in the same bytes. */
    char *stored = conn_head_detach(c);
    handle_response(cl, c, resp);
    free(resp);
    conn_head_rest(c, stored, &in, (size_t)r, data, len);
}

/* ----------------------------------------------------------------- connecting */

/* A TCP connect succeeded on fd: wraps it in a connection and sends the upgrade request. */
static void connected(struct weft_client *cl, int fd, const struct dns_addr *addr)
{
    struct weft_conn *c = calloc(1, sizeof *c);
    char req[REQUEST_MAX];
    int n = -1;
    if (c) {
        weft_handshake_key(&cl->ep.rnd, cl->key);
        struct weft_client_request cr = {
            .host = cl->hosthdr,
            .path = cl->target,
            .origin = cl->opt.origin,
            .protocols = cl->opt.protocols,
            .extensions = cl->pmd_offer[0] ? cl->pmd_offer : NULL,
            .extra_headers = cl->opt.headers,
        };
        n = weft_handshake_request(req, sizeof req, &cr, cl->key);
    }
    if (!c || n < 0 || sock_attach(cl->ep.loop, &c->sock, fd, &client_conn_ops) != WEFT_OK ||
        (cl->tls && tls_attach_client(&c->sock, cl->tls, cl->host) != WEFT_OK)) {
        if (c && c->sock.ssl) tls_close(&c->sock);
        close(fd);
        free(c);
        report_error(cl, n == WEFT_ERR_SPACE ? WEFT_ERR_INVAL : WEFT_ERR_NOMEM, 0,
                     "cannot build the upgrade request");
        attempt_failed(cl);
        return;
    }
    conn_link(&cl->ep, c);
    c->state = CONN_HTTP;
    conn_set_peer(c, &addr->u.sa, addr->len);
    cl->conn = c;
    cl->state = CL_HANDSHAKE;
    int r = sock_write(&c->sock, req, (size_t)n);
    if (r != WEFT_OK) { /* client_conn_gone fails the attempt once the connection is freed */
        report_error(cl, r, 0, "cannot queue the upgrade request: %s", weft_strerror(r));
        handshake_fail(c);
        return;
    }
    conn_arm_timer(c);
}

/* Connector callback: a TCP connect won (fd >= 0) or every address failed. */
static void on_connected(void *arg, int fd, const struct dns_addr *addr, int err)
{
    struct weft_client *cl = arg;
    if (fd >= 0) {
        weft_timer_stop(&cl->connect_timer);
        connected(cl, fd, addr);
        return;
    }
    char text[64];
    const char *what = cl->hosthdr;
    if (addr && cl->naddrs <= 1) {
        addr_format(&addr->u.sa, text, sizeof text);
        what = text;
    }
    report_error(cl, WEFT_ERR_IO, 0, "cannot connect to %s: %s", what, strerror(err));
    attempt_failed(cl);
}

/* Timer callback: DNS + connect took longer than connect_timeout_ms. */
static void on_connect_timer(struct weft_timer *t)
{
    struct weft_client *cl = from_timer(t, offsetof(struct weft_client, connect_timer));
    if (cl->state != CL_RESOLVING && cl->state != CL_CONNECTING) return;
    report_error(cl, WEFT_ERR_TIMEOUT, 0, "%s %s timed out after %u ms",
                 cl->state == CL_RESOLVING ? "resolving" : "connecting to", cl->hosthdr,
                 cl->opt.connect_timeout_ms);
    attempt_failed(cl);
}

/* DNS callback: addresses (or an error) for the host. */
static void on_resolved(void *arg, int err, const char *why, const struct dns_addr *addrs, size_t n)
{
    struct weft_client *cl = arg;
    cl->dns = NULL;
    if (err != WEFT_OK) {
        report_error(cl, err == WEFT_ERR_TIMEOUT ? WEFT_ERR_TIMEOUT : WEFT_ERR_ADDRESS, 0,
                     "DNS lookup of %s failed: %s", cl->host, why);
        attempt_failed(cl);
        return;
    }
    memcpy(cl->addrs, addrs, n * sizeof addrs[0]);
    cl->naddrs = n;
    cl->state = CL_CONNECTING;
    net_connector_start(cl->nc, cl->addrs, cl->naddrs, WEFT_DEF_EYEBALL_DELAY_MS);
}

/* Starts one attempt: resolve (unless numeric), then connect. */
static void start_attempt(struct weft_client *cl)
{
    cl->failed = cl->had_open = cl->no_retry = false;
    cl->hint_ms = -1;
    cl->close_code = 0;
    weft_timer_start(cl->ep.loop, &cl->connect_timer, cl->opt.connect_timeout_ms);
    if (cl->numeric) {
        cl->state = CL_CONNECTING;
        net_connector_start(cl->nc, cl->addrs, cl->naddrs, WEFT_DEF_EYEBALL_DELAY_MS);
        return;
    }
    int err;
    cl->state = CL_RESOLVING;
    cl->dns = dns_resolve(cl->ep.loop, cl->host, cl->port, cl->opt.connect_timeout_ms, on_resolved,
                          cl, &err);
    if (!cl->dns) {
        report_error(cl, err, 0, "cannot start the DNS lookup of %s", cl->host);
        attempt_failed(cl);
    }
}

/* ----------------------------------------------------------------- the API */

/* Duplicates an optional string into *dst. Returns false on allocation failure. */
static bool dup_opt(const char **dst)
{
    if (!*dst) return true;
    *dst = strdup(*dst);
    return *dst != NULL;
}

/* Frees what client_new allocated (no callbacks). */
static void client_release(struct weft_client *cl)
{
    if (!cl->tls_shared) tls_ctx_free(cl->tls); /* connections keep their own reference */
    net_connector_free(cl->nc);                 /* its memory goes at the next loop turn */
    cl->tls = NULL;
    endpoint_release(&cl->ep); /* shared deflate codecs and scratch buffers */
    free(cl->host);
    free(cl->hosthdr);
    free(cl->target);
    free((char *)cl->opt.headers);
    free((char *)cl->opt.origin);
    free((char *)cl->opt.protocols);
    queue_clear(cl);
    free(cl);
}

/* The TLS client context for o; see client.h. */
struct ssl_ctx_st *client_tls_new(const struct weft_client_options *o)
{
    struct tls_client_opts to = {.cacert_file = o ? o->tls_cacert_file : NULL,
                                 .insecure = o && o->tls_insecure};
    char why[300];
    struct ssl_ctx_st *ctx = tls_client_new(&to, why, sizeof why);
    if (!ctx) tls_set_last_error(why);
    return ctx;
}

/* Creates a client and starts its first attempt; see client.h and weft_connect. */
struct weft_client *client_new(struct weft_loop *loop, const char *url,
                               const struct weft_client_options *opts, struct ssl_ctx_st *tls,
                               const struct client_owner_ops *owner, void *owner_arg, int *err)
{
    struct weft_url u;
    if (!loop || weft_url_parse(url, &u, NULL) != WEFT_OK) {
        *err = WEFT_ERR_INVAL;
        return NULL;
    }
    struct weft_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    if (opts) cl->opt = *opts;
    struct weft_client_options *o = &cl->opt;
    bool ok = dup_opt(&o->headers) + dup_opt(&o->origin) + dup_opt(&o->protocols) == 3;
    cl->host = strndup(u.host, u.host_len);
    bool v6 = memchr(u.host, ':', u.host_len) != NULL;
    bool dflt = u.port == (u.tls ? 443 : 80);
    size_t hcap = u.host_len + 16;
    cl->hosthdr = malloc(hcap);
    if (cl->hosthdr) {
        int k = snprintf(cl->hosthdr, hcap, "%s%.*s%s", v6 ? "[" : "", (int)u.host_len, u.host,
                         v6 ? "]" : "");
        if (!dflt && k > 0) snprintf(cl->hosthdr + k, hcap - (size_t)k, ":%u", (unsigned)u.port);
    }
    cl->target = malloc(u.target_len + 2);
    if (cl->target) {
        size_t k = 0;
        if (!u.target_len || u.target[0] != '/') cl->target[k++] = '/';
        memcpy(cl->target + k, u.target, u.target_len);
        cl->target[k + u.target_len] = '\0';
    }
    if (!ok || !cl->host || !cl->hosthdr || !cl->target) {
        client_release(cl);
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    cl->port = u.port;
    cl->owner = owner;
    cl->owner_arg = owner_arg;

    if (!o->max_message) o->max_message = WEFT_DEF_CLIENT_MAX_MESSAGE;
    if (!o->connect_timeout_ms) o->connect_timeout_ms = WEFT_DEF_CONNECT_TIMEOUT_MS;
    if (!o->handshake_timeout_ms) o->handshake_timeout_ms = WEFT_DEF_HANDSHAKE_TIMEOUT_MS;
    if (!o->pong_timeout_ms) o->pong_timeout_ms = WEFT_DEF_PONG_TIMEOUT_MS;
    if (!o->close_timeout_ms) o->close_timeout_ms = WEFT_DEF_CLOSE_TIMEOUT_MS;
    if (!o->max_backpressure) o->max_backpressure = WEFT_DEF_MAX_BACKPRESSURE;
    if (!o->backoff_base_ms) o->backoff_base_ms = WEFT_DEF_BACKOFF_BASE_MS;
    if (!o->backoff_cap_ms) o->backoff_cap_ms = WEFT_DEF_BACKOFF_CAP_MS;
    if (o->backoff_cap_ms < o->backoff_base_ms) o->backoff_cap_ms = o->backoff_base_ms;
    if (!o->reset_after_ms) o->reset_after_ms = WEFT_DEF_RESET_AFTER_MS;
    if (!o->try_again_ms) o->try_again_ms = WEFT_DEF_TRY_AGAIN_MS;

    if (o->deflate.enabled &&
        weft_pmd_offer(&o->deflate, cl->pmd_offer, sizeof cl->pmd_offer) < 0) {
        client_release(cl);
        *err = WEFT_ERR_INVAL;
        return NULL;
    }
    /* The request is checked once here so bad headers fail weft_connect, not each attempt. */
    char req[REQUEST_MAX];
    static const char probe_key[25] = "dGhlIHNhbXBsZSBub25jZQ==";
    struct weft_client_request cr = {.host = cl->hosthdr,
                                     .path = cl->target,
                                     .origin = o->origin,
                                     .protocols = o->protocols,
                                     .extra_headers = o->headers};
    if (weft_handshake_request(req, sizeof req, &cr, probe_key) < 0) {
        client_release(cl);
        *err = WEFT_ERR_INVAL;
        return NULL;
    }
    if (u.tls && tls) { /* the pool's context */
        cl->tls = tls;
        cl->tls_shared = true;
    } else if (u.tls) { /* one context per client, shared by its attempts */
        cl->tls = client_tls_new(o);
        if (!cl->tls) {
            client_release(cl);
            *err = WEFT_ERR_TLS;
            return NULL;
        }
    }

    /* Last: once created, the connector is freed through the loop (net_connector_free). */
    cl->nc = net_connector_new(loop, on_connected, cl);
    if (!cl->nc) {
        client_release(cl);
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    struct endpoint *ep = &cl->ep;
    ep->loop = loop;
    ep->role = WEFT_ROLE_CLIENT;
    ep->cfg.max_message = o->max_message;
    ep->cfg.max_frame = o->max_message;
    ep->cfg.max_head = WEFT_HTTP_MAX_HEAD;
    ep->cfg.handshake_timeout_ms = o->handshake_timeout_ms;
    ep->cfg.idle_timeout_ms = o->idle_timeout_ms;
    ep->cfg.ping_interval_ms = o->ping_interval_ms;
    ep->cfg.pong_timeout_ms = o->pong_timeout_ms;
    ep->cfg.close_timeout_ms = o->close_timeout_ms;
    ep->cfg.max_backpressure = o->max_backpressure;
    ep->cfg.slow_policy = o->slow_policy;
    ep->cfg.log = o->log;
    ep->cfg.log_user = o->log_user;
    ep->cfg.deflate = o->deflate;
    ep->next_id = 1;
    ep->ops = &client_ep_ops;

    cl->h = o->handlers;
    cl->h.on_upgrade = NULL;
    cl->h.on_open = client_on_open;
    cl->h.on_close = client_on_close;
    cl->connect_timer.cb = on_connect_timer;
    cl->retry_timer.cb = on_retry_timer;
    cl->end_timer.cb = on_end_timer;
    cl->numeric = dns_numeric(cl->host, cl->port, &cl->addrs[0]);
    if (cl->numeric) cl->naddrs = 1;
    *err = WEFT_OK;
    start_attempt(cl);
    return cl;
}

/* Starts a client; see weft.h. */
struct weft_client *weft_connect(struct weft_loop *loop, const char *url,
                                 const struct weft_client_options *opts, int *err)
{
    int dummy;
    return client_new(loop, url, opts, NULL, NULL, NULL, err ? err : &dummy);
}

/* The open connection; see weft.h. */
struct weft_conn *weft_client_conn(const struct weft_client *cl)
{
    return cl->conn && cl->conn->state == CONN_OPEN ? cl->conn : NULL;
}

/* Sends or queues; see weft.h. */
enum weft_send_result weft_client_send(struct weft_client *cl, const void *data, size_t len,
                                       enum weft_opcode opcode)
{
    if (opcode != WEFT_OP_TEXT && opcode != WEFT_OP_BINARY) return WEFT_SEND_CLOSED;
    struct weft_conn *c = weft_client_conn(cl);
    if (c) return weft_conn_send(c, data, len, opcode);
    if (cl->app_closed || cl->state == CL_ENDED || !cl->opt.queue_max) return WEFT_SEND_CLOSED;
    if (len > cl->opt.queue_max || cl->qbytes > cl->opt.queue_max - len) return WEFT_SEND_DROPPED;
    struct qmsg *m = malloc(sizeof *m + len);
    if (!m) return WEFT_SEND_DROPPED;
    m->next = NULL;
    m->len = len;
    m->opcode = (uint8_t)opcode;
    if (len) memcpy(m->data, data, len);
    if (cl->qtail)
        cl->qtail->next = m;
    else
        cl->qhead = m;
    cl->qtail = m;
    cl->qbytes += len;
    return WEFT_SEND_QUEUED;
}

/* Application close; see weft.h. */
void weft_client_close(struct weft_client *cl, uint16_t code, const char *reason)
{
    if (cl->app_closed) return;
    cl->app_closed = true;
    queue_clear(cl);
    if (cl->conn) {
        struct weft_conn *c = cl->conn;
        if (c->state == CONN_OPEN)
            weft_conn_close(c, code, reason);
        else if (c->state == CONN_HTTP)
            handshake_fail(c);
        return; /* client_conn_gone ends the client once the connection is freed */
    }
    client_end(cl);
}

/* Frees a client at once; see weft.h. */
void weft_client_free(struct weft_client *cl)
{
    if (!cl) return;
    cl->state = CL_ENDED;
    cl->end_reported = true;
    if (cl->dns) dns_cancel(cl->dns);
    cl->dns = NULL;
    drop_attempts(cl);
    weft_timer_stop(&cl->connect_timer);
    weft_timer_stop(&cl->retry_timer);
    weft_timer_stop(&cl->end_timer);
    while (cl->ep.conns) {
        struct weft_conn *c = cl->ep.conns;
        cl->ep.conns = c->next;
        c->h = NULL; /* no callbacks */
        if (c->state != CONN_DEAD) weft_conn_terminate(c);
        loop_forget(cl->ep.loop, &c->sock);
        conn_free(c);
    }
    client_release(cl);
}

void *weft_client_user(const struct weft_client *cl)
{
    return cl->opt.user;
}

/* Replaces the user pointer, also as the route user of the open connection (its
 * weft_conn_route_user reads it from the client: client_route_user). */
void weft_client_set_user(struct weft_client *cl, void *user)
{
    cl->opt.user = user;
}

/* The owner argument of cl if its owner's hooks are ops; see client.h. */
void *client_owner_arg(const struct weft_client *cl, const struct client_owner_ops *ops)
{
    return cl->owner == ops ? cl->owner_arg : NULL;
}

/* The client owning a connection; see weft.h. */
struct weft_client *weft_conn_client(const struct weft_conn *c)
{
    return c->ep->role == WEFT_ROLE_CLIENT ? (struct weft_client *)c->ep : NULL;
}
