/*
 * server.c — the WebSocket server: listening, accepting, the HTTP request head, routing,
 * the opening handshake, plain HTTP responses, graceful shutdown and statistics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ws/defaults.h"
#include "ws/ws.h"

#define RESPONSE_MAX 4096

static const struct sock_ops conn_ops = {
    .on_data = conn_on_data,
    .on_drain = conn_on_drain,
    .on_eof = conn_on_eof,
    .on_free = conn_on_free,
};

/* Formats a line and passes it with c (NULL: about no connection) to the endpoint's log
 * callback, if any. */
static void ep_vlog(struct endpoint *ep, struct weft_conn *c, int level, const char *fmt,
                    va_list ap)
{
    if (!ep->cfg.log) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ep->cfg.log(ep->cfg.log_user, level, c, msg);
}

/* Sends a line about no particular connection to the endpoint's log callback at level. */
void ep_log(struct endpoint *ep, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ep_vlog(ep, NULL, level, fmt, ap);
    va_end(ap);
}

/* Sends a line about connection c to its endpoint's log callback at level. */
void conn_log(struct weft_conn *c, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ep_vlog(c->ep, c, level, fmt, ap);
    va_end(ap);
}

/* Frees what an endpoint holds besides its connections: shared codecs and scratch. */
void endpoint_release(struct endpoint *ep)
{
    for (size_t i = 0; i < 16; i++)
        weft_deflater_free(ep->shared_defl[i]);
    weft_inflater_free(ep->shared_infl);
    free(ep->zin);
    free(ep->zout);
    memset(ep->shared_defl, 0, sizeof ep->shared_defl);
    ep->shared_infl = NULL;
    ep->zin = ep->zout = NULL;
    ep->zin_cap = ep->zout_cap = 0;
}

/* Links a new connection into its endpoint's list and gives it an id. */
void conn_link(struct endpoint *ep, struct weft_conn *c)
{
    c->ep = ep;
    c->id = ep->next_id++;
    c->last_rx = (uint32_t)weft_loop_now(ep->loop);
    c->prev = NULL;
    c->next = ep->conns;
    if (ep->conns) ep->conns->prev = c;
    ep->conns = c;
    ep->nconns++;
}

/* ----------------------------------------------------------------- accepting */

/* A new TCP (or Unix) connection: allocate its conn and wait for the request head. */
static void on_accept(struct weft_listener *l, int fd, const struct sockaddr *addr,
                      socklen_t addrlen)
{
    struct weft_server *s = l->user;
    struct weft_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        ep_log(&s->ep, WEFT_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    if (sock_attach(s->ep.loop, &c->sock, fd, &conn_ops) != WEFT_OK) {
        close(fd);
        free(c);
        return;
    }
    if (s->tls && tls_attach_server(&c->sock, s->tls) != WEFT_OK) {
        close(fd); /* also leaves the epoll set */
        free(c);
        ep_log(&s->ep, WEFT_LOG_ERROR, "out of memory starting TLS on a connection");
        return;
    }
    conn_link(&s->ep, c);
    c->state = CONN_HTTP;
    conn_set_peer(c, addr, addrlen);
    s->ep.stats.accepted_total++;
    conn_arm_timer(c);
}

static void server_handle_head(struct weft_conn *c, uint8_t *data, size_t len);
static void server_conn_gone(struct weft_conn *c);

/* The route user of an open server connection: its handlers are its route's. */
static void *server_route_user(const struct weft_conn *c)
{
    return ((const struct route *)((const char *)c->h - offsetof(struct route, ws)))->user;
}

static const struct endpoint_ops server_ep_ops = {
    .on_head = server_handle_head,
    .on_gone = server_conn_gone,
    .route_user = server_route_user,
};

/* Releases the server's TLS context and file names (connections keep their own reference to
 * the context they were accepted with). */
static void server_tls_free(struct weft_server *s)
{
    tls_ctx_free(s->tls);
    s->tls = NULL;
    free(s->tls_cert_file);
    free(s->tls_key_file);
    s->tls_cert_file = s->tls_key_file = NULL;
}

/* Builds a TLS context from cert/key and makes it the one new connections use, keeping the
 * paths for reloads. On failure nothing changes and the reason goes to weft_tls_last_error:
 * returns WEFT_ERR_TLS (or WEFT_ERR_NOMEM). */
static int server_tls_load(struct weft_server *s, const char *cert, const char *key)
{
    char why[300];
    struct ssl_ctx_st *ctx = tls_server_new(cert, key, why, sizeof why);
    if (!ctx) {
        tls_set_last_error(why);
        return WEFT_ERR_TLS;
    }
    if (cert != s->tls_cert_file) {
        char *c = strdup(cert), *k = strdup(key);
        if (!c || !k) {
            free(c);
            free(k);
            tls_ctx_free(ctx);
            return WEFT_ERR_NOMEM;
        }
        free(s->tls_cert_file);
        free(s->tls_key_file);
        s->tls_cert_file = c;
        s->tls_key_file = k;
    }
    tls_ctx_free(s->tls); /* open connections hold their own references */
    s->tls = ctx;
    return WEFT_OK;
}

/* Reloads the certificate and key for new connections; see weft.h. */
int weft_server_reload_tls(struct weft_server *s)
{
    if (!s->tls) {
        tls_set_last_error("the server was not started with TLS");
        return WEFT_ERR_INVAL;
    }
    int r = server_tls_load(s, s->tls_cert_file, s->tls_key_file);
    if (r == WEFT_OK)
        ep_log(&s->ep, WEFT_LOG_INFO, "TLS certificate reloaded from %s", s->tls_cert_file);
    return r;
}

/* Creates a server and starts listening; see weft.h. */
struct weft_server *weft_server_new(struct weft_loop *loop, const struct weft_server_config *cfg,
                                    int *err)
{
    int dummy;
    if (!err) err = &dummy;
    struct weft_server *s = calloc(1, sizeof *s);
    if (!s) {
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    s->ep.loop = loop;
    s->ep.role = WEFT_ROLE_SERVER;
    s->ep.cfg = *cfg;
    s->ep.ops = &server_ep_ops;
    struct weft_server_config *c = &s->ep.cfg;
    if (!c->port && !c->port_ephemeral) c->port = WEFT_DEF_PORT;
    if (!c->max_message) c->max_message = WEFT_DEF_SERVER_MAX_MESSAGE;
    if (!c->max_frame) c->max_frame = c->max_message;
    if (!c->max_head) c->max_head = WEFT_HTTP_MAX_HEAD;
    if (!c->handshake_timeout_ms) c->handshake_timeout_ms = WEFT_DEF_HANDSHAKE_TIMEOUT_MS;
    if (!c->pong_timeout_ms) c->pong_timeout_ms = WEFT_DEF_PONG_TIMEOUT_MS;
    if (!c->close_timeout_ms) c->close_timeout_ms = WEFT_DEF_CLOSE_TIMEOUT_MS;
    if (!c->max_backpressure) c->max_backpressure = WEFT_DEF_MAX_BACKPRESSURE;
    if (c->tls_cert_file || c->tls_key_file) {
        int r = server_tls_load(s, c->tls_cert_file, c->tls_key_file);
        if (r != WEFT_OK) {
            server_tls_free(s);
            free(s);
            *err = r;
            return NULL;
        }
    }
    s->ep.next_id = 1;
    s->listener.user = s;
    s->listener.on_accept = on_accept;
    s->listener.io.fd = -1;
    int r = c->unix_path ? listener_unix(loop, &s->listener, c->unix_path, c->backlog)
                         : listener_tcp(loop, &s->listener, c->host,
                                        c->port_ephemeral ? 0 : c->port, c->backlog, c->reuse_port);
    if (r != WEFT_OK) {
        int e = errno;
        server_tls_free(s);
        free(s);
        errno = e;
        *err = r;
        return NULL;
    }
    s->listening = true;
    *err = WEFT_OK;
    return s;
}

uint16_t weft_server_port(const struct weft_server *s)
{
    return listener_port(&s->listener);
}

void weft_server_stats(const struct weft_server *s, struct weft_server_stats *out)
{
    *out = s->ep.stats;
    out->topics = s->ntopics;
    out->memory_held = *loop_mem_held(s->ep.loop);
}

/* ----------------------------------------------------------------- routes */

/* Adds a route to the table. */
static int add_route(struct weft_server *s, const char *pattern, struct route *r)
{
    if (!pattern || pattern[0] == '\0') return WEFT_ERR_INVAL;
    struct route *nr = realloc(s->routes, (s->nroutes + 1) * sizeof *nr);
    if (!nr) return WEFT_ERR_NOMEM;
    s->routes = nr;
    r->pattern = strdup(pattern);
    if (!r->pattern) return WEFT_ERR_NOMEM;
    r->len = strlen(pattern);
    r->prefix = pattern[r->len - 1] == '*';
    if (r->prefix) r->len--;
    s->routes[s->nroutes++] = *r;
    return WEFT_OK;
}

int weft_server_ws(struct weft_server *s, const char *pattern, const struct weft_ws_handlers *h,
                   void *route_user)
{
    struct route r = {.is_ws = true, .user = route_user};
    if (h) r.ws = *h;
    return add_route(s, pattern, &r);
}

int weft_server_http(struct weft_server *s, const char *method, const char *pattern,
                     weft_http_handler fn, void *route_user)
{
    if (!fn) return WEFT_ERR_INVAL;
    struct route r = {.is_ws = false, .http = fn, .user = route_user, .method = method};
    return add_route(s, pattern, &r);
}

/* Finds the first route of the wanted kind matching path (and method for HTTP routes). */
static const struct route *find_route(const struct weft_server *s, bool ws, const char *path,
                                      size_t len, const char *method, size_t mlen)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *r = &s->routes[i];
        if (r->is_ws != ws) continue;
        if (r->prefix ? (len < r->len || memcmp(path, r->pattern, r->len) != 0)
                      : (len != r->len || memcmp(path, r->pattern, len) != 0))
            continue;
        if (!ws && r->method && (strlen(r->method) != mlen || memcmp(r->method, method, mlen)))
            continue;
        return r;
    }
    return NULL;
}

/* ----------------------------------------------------------------- responses */

/* Ends an HTTP exchange: half-close once the response is out, then wait for the peer's FIN
 * (bounded by the close timeout) so the response is not cut by a reset. */
static void conn_drain(struct weft_conn *c)
{
    c->state = CONN_DRAINING;
    conn_head_free(c);
    sock_shutdown_after_flush(&c->sock);
    conn_arm_timer(c);
}

/* Answers the request with an HTTP error and ends the exchange. */
static void respond_error(struct weft_conn *c, int status, const char *extra, const char *body)
{
    char out[RESPONSE_MAX];
    int n = weft_http_error_response(out, sizeof out, status, extra, body);
    if (n < 0) n = weft_http_error_response(out, sizeof out, status, NULL, NULL);
    if (n > 0) sock_write(&c->sock, out, (size_t)n);
    c->ep->stats.rejected_total++;
    if (status == 400 || status == 405 || status == 431)
        c->ep->stats.rejected_400++;
    else if (status == 426)
        c->ep->stats.rejected_426++;
    else if (status == 503)
        c->ep->stats.rejected_503++;
    conn_log(c, WEFT_LOG_DEBUG, "conn %llu: answered HTTP %d", (unsigned long long)c->id, status);
    conn_drain(c);
}

/* Answers an HTTP request with status, headers and body (no body for HEAD) and ends the
 * exchange; a head too large for RESPONSE_MAX is answered with 500 instead. */
static void send_response(struct weft_conn *c, int status, const char *content_type,
                          const char *extra_headers, const void *body, size_t body_len,
                          bool head_only)
{
    char head[RESPONSE_MAX];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, weft_http_reason(status), content_type ? content_type : "text/plain",
                     body_len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head) {
        respond_error(c, 500, NULL, NULL);
        return;
    }
    sock_write2(&c->sock, head, (size_t)n, body, head_only ? 0 : body_len);
    c->ep->stats.http_requests++;
    conn_drain(c);
}

/* ----------------------------------------------------------------- request API */

const char *weft_request_method(const struct weft_request *r, size_t *len)
{
    *len = r->http->method_len;
    return r->http->method;
}

const char *weft_request_path(const struct weft_request *r, size_t *len)
{
    *len = r->path_len;
    return r->path;
}

const char *weft_request_query(const struct weft_request *r, size_t *len)
{
    *len = r->query_len;
    return r->query;
}

const char *weft_request_header(const struct weft_request *r, const char *name, size_t *len)
{
    const struct weft_http_header *h =
        weft_http_find_header(r->http->headers, r->http->num_headers, name);
    if (!h) return NULL;
    if (len) *len = h->value_len;
    return h->value;
}

bool weft_request_header_at(const struct weft_request *r, size_t i, const char **name,
                            size_t *name_len, const char **value, size_t *value_len)
{
    if (i >= r->http->num_headers) return false;
    *name = r->http->headers[i].name;
    *name_len = r->http->headers[i].name_len;
    *value = r->http->headers[i].value;
    *value_len = r->http->headers[i].value_len;
    return true;
}

const char *weft_request_remote(const struct weft_request *r)
{
    return weft_conn_remote(r->c);
}

const char *weft_request_protocols(const struct weft_request *r, size_t *len)
{
    if (!r->up || !r->up->protocols) return NULL;
    *len = r->up->protocols_len;
    return r->up->protocols;
}

/* Accepts the upgrade; see weft.h. A protocol the client did not offer is ignored (and
 * logged) rather than sent, since the client would fail the handshake. */
void weft_request_accept(struct weft_request *r, const char *protocol, void *user,
                         const char *extra_headers)
{
    if (!r->up || r->decision) return;
    r->decision = 1;
    r->user = user;
    if (protocol && r->up->protocols) {
        size_t pos = 0, ilen;
        const char *item;
        while (weft_http_list_next(r->up->protocols, r->up->protocols_len, &pos, &item, &ilen))
            if (ilen == strlen(protocol) && memcmp(item, protocol, ilen) == 0) {
                r->protocol = strdup(protocol);
                break;
            }
    }
    if (protocol && !r->protocol)
        conn_log(r->c, WEFT_LOG_WARN, "conn %llu: subprotocol '%s' was not offered",
                 (unsigned long long)r->c->id, protocol);
    if (extra_headers) r->extra = strdup(extra_headers);
}

void weft_request_reject(struct weft_request *r, int status, const char *extra_headers,
                         const char *body)
{
    if (r->decision) return;
    r->decision = 2;
    respond_error(r->c, status, extra_headers, body);
}

void weft_request_respond(struct weft_request *r, int status, const char *content_type,
                          const char *extra_headers, const void *body, size_t body_len)
{
    if (r->decision) return;
    r->decision = 2;
    bool head_only = r->http->method_len == 4 && memcmp(r->http->method, "HEAD", 4) == 0;
    send_response(r->c, status, content_type, extra_headers, body, body_len, head_only);
}

/* A response promised by weft_request_defer: the connection is found again by id, so a
 * connection that went away meanwhile is simply not found. */
struct weft_deferred {
    struct weft_server *s;
    uint64_t conn_id;
    bool head_only;
};

/* Suspends the HTTP exchange (reading paused, handshake timeout still running); see weft.h. */
struct weft_deferred *weft_request_defer(struct weft_request *r)
{
    if (r->decision || r->up) return NULL;
    struct weft_deferred *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->s = conn_server(r->c);
    d->conn_id = r->c->id;
    d->head_only = r->http->method_len == 4 && memcmp(r->http->method, "HEAD", 4) == 0;
    r->decision = 3;
    conn_head_free(r->c);
    sock_pause(&r->c->sock);
    return d;
}

/* Completes a deferred exchange (or just frees d if the client is gone); see weft.h. */
void weft_deferred_respond(struct weft_deferred *d, int status, const char *content_type,
                           const char *extra_headers, const void *body, size_t body_len)
{
    if (!d) return;
    struct weft_conn *c = d->s->ep.conns;
    while (c && c->id != d->conn_id)
        c = c->next;
    bool head_only = d->head_only;
    free(d);
    if (!c || c->state != CONN_HTTP) return;
    sock_resume(&c->sock);
    send_response(c, status, content_type, extra_headers, body, body_len, head_only);
}

/* ----------------------------------------------------------------- the request head */

/* Completes the opening handshake: 101, state OPEN, on_open. */
static void upgrade(struct weft_conn *c, struct weft_request *req)
{
    struct weft_server *s = conn_server(c);
    char out[RESPONSE_MAX];
    char ext[160];
    struct weft_pmd_params pmd;
    bool deflate =
        req->up->extensions && weft_pmd_negotiate(req->up->extensions, req->up->extensions_len,
                                                  &s->ep.cfg.deflate, &pmd, ext, sizeof ext) == 1;
    int n = weft_handshake_response(out, sizeof out, req->up->key, req->up->key_len, req->protocol,
                                    deflate ? ext : NULL, req->extra);
    free(req->extra);
    req->extra = NULL;
    if (n < 0 || (req->protocol && !conn_extra_get(c))) {
        free(req->protocol);
        respond_error(c, 500, NULL, NULL);
        return;
    }
    if (sock_write(&c->sock, out, (size_t)n) != WEFT_OK) {
        /* The 101 could not be queued (out of memory): no answer can go out either, so the
         * connection is closed unopened and counted as refused for lack of memory. */
        free(req->protocol);
        s->ep.stats.rejected_total++;
        s->ep.stats.rejected_503++;
        conn_log(c, WEFT_LOG_INFO, "conn %llu: cannot queue the 101; closed",
                 (unsigned long long)c->id);
        conn_head_free(c);
        sock_close(&c->sock);
        c->state = CONN_DEAD;
        return;
    }
    if (req->protocol) c->x->protocol = req->protocol; /* allocated above */
    conn_head_free(c);
    c->user = req->user;
    c->h = &req->route->ws; /* weft_conn_route_user: req->route->user */
    c->state = CONN_OPEN;
    if (deflate) conn_enable_deflate(c, &pmd);
    conn_start_frames(c);
    s->ep.stats.upgrades_total++;
    s->ep.stats.connections++;
    conn_arm_timer(c);
    if (c->h->on_open) c->h->on_open(c);
}

/* Routes a complete request head: an HTTP answer, or the upgrade to a WebSocket. */
static void handle_request(struct weft_conn *c, const struct weft_http_request *http)
{
    struct weft_server *s = conn_server(c);
    struct weft_request req = {.c = c, .http = http};
    const char *target = http->target;
    const char *q = memchr(target, '?', http->target_len);
    req.path = target;
    req.path_len = q ? (size_t)(q - target) : http->target_len;
    if (q) {
        req.query = q + 1;
        req.query_len = http->target_len - req.path_len - 1;
    }
    if (s->shutting_down) {
        respond_error(c, 503, "Retry-After: 1\r\n", "shutting down\n");
        return;
    }

    const struct weft_http_header *uh =
        weft_http_find_header(http->headers, http->num_headers, "Upgrade");
    bool wants_ws = uh && weft_http_list_has(uh->value, uh->value_len, "websocket");
    if (!wants_ws) {
        const struct route *r =
            find_route(s, false, req.path, req.path_len, http->method, http->method_len);
        if (!r) {
            respond_error(c, find_route(s, true, req.path, req.path_len, NULL, 0) ? 426 : 404, NULL,
                          NULL);
            return;
        }
        r->http(&req, r->user);
        if (!req.decision) respond_error(c, 500, NULL, "handler sent no response\n");
        return;
    }

    const struct route *r = find_route(s, true, req.path, req.path_len, NULL, 0);
    if (!r) {
        respond_error(c, 404, NULL, NULL);
        return;
    }
    struct weft_upgrade_info up;
    int status = weft_handshake_check_request(http, &up);
    if (status) {
        respond_error(c, status, NULL, NULL);
        return;
    }
    req.up = &up;
    req.route = r;
    if (r->ws.on_upgrade) r->ws.on_upgrade(&req, r->user);
    if (req.decision == 2) {
        free(req.protocol);
        free(req.extra);
        return;
    }
    upgrade(c, &req);
}

/* Consumes bytes while the request head is being read: parses in place when the whole head
 * came in one read (no allocation), otherwise accumulates up to max_head bytes and parses once
 * the blank line is in (or the limit is reached), so a dripped head costs O(n). */
static void server_handle_head(struct weft_conn *c, uint8_t *data, size_t len)
{
    struct weft_server *s = conn_server(c);
    size_t max = s->ep.cfg.max_head;
    /* On the stack (about 3 KiB): a heap block per handshake would only fragment the heap
     * between the long-lived connection objects. */
    struct weft_http_request http;
    struct head_in in;
    conn_head_begin(c, data, len, max, &in);
    if (!in.ready) return; /* stored; the head is not complete yet */
    int r = weft_http_parse_request(in.buf, in.len, max, &http);
    if (r == 0 && in.len >= max) r = -431;
    if (r < 0) {
        respond_error(c, -r, NULL, NULL);
        return;
    }
    if (r == 0) {
        if (!conn_head_keep(c, data, len, max)) respond_error(c, 503, NULL, NULL);
        return;
    }
    /* Complete: frames may follow the head in the same bytes. */
    char *stored = conn_head_detach(c);
    handle_request(c, &http);
    conn_head_rest(c, stored, &in, (size_t)r, data, len);
}

/* ----------------------------------------------------------------- connections list */

/* A connection is being freed: completes a graceful shutdown when it was the last. */
static void server_conn_gone(struct weft_conn *c)
{
    struct weft_server *s = conn_server(c);
    if (s->shutting_down && s->ep.nconns == 0 && s->shutdown_done) {
        weft_timer_stop(&s->shutdown_timer);
        void (*done)(void *) = s->shutdown_done;
        s->shutdown_done = NULL;
        done(s->shutdown_arg);
    }
}

/* The shutdown deadline passed: drop whatever is left. */
static void on_shutdown_deadline(struct weft_timer *t)
{
    struct weft_server *s =
        (struct weft_server *)((char *)t - offsetof(struct weft_server, shutdown_timer));
    for (struct weft_conn *c = s->ep.conns; c; c = c->next)
        if (c->state != CONN_DEAD) weft_conn_terminate(c);
}

/* Graceful shutdown; see weft.h. */
void weft_server_shutdown(struct weft_server *s, uint16_t code, uint32_t deadline_ms,
                          void (*done)(void *), void *arg)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    s->shutdown_done = done;
    s->shutdown_arg = arg;
    if (s->listening) {
        listener_close(&s->listener);
        s->listening = false;
    }
    for (struct weft_conn *c = s->ep.conns; c; c = c->next) {
        if (c->state == CONN_OPEN)
            weft_conn_close(c, code ? code : WEFT_CLOSE_GOING_AWAY, "server shutting down");
        else if (c->state == CONN_HTTP)
            weft_conn_terminate(c);
    }
    if (s->ep.nconns == 0) {
        s->shutdown_done = NULL;
        if (done) done(arg);
        return;
    }
    s->shutdown_timer.cb = on_shutdown_deadline;
    weft_timer_start(s->ep.loop, &s->shutdown_timer, deadline_ms ? deadline_ms : 5000);
}

/* Frees a server and drops its connections at once; see weft.h. */
void weft_server_free(struct weft_server *s)
{
    if (!s) return;
    if (s->listening) listener_close(&s->listener);
    weft_timer_stop(&s->shutdown_timer);
    s->shutdown_done = NULL;
    while (s->ep.conns) {
        struct weft_conn *c = s->ep.conns;
        if (c->state != CONN_DEAD) weft_conn_terminate(c);
        loop_forget(s->ep.loop, &c->sock);
        s->ep.conns = c->next;
        conn_free(c);
    }
    pubsub_free(s);
    server_tls_free(s);
    endpoint_release(&s->ep);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].pattern);
    free(s->routes);
    free(s);
}
