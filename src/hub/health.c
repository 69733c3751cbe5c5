/*
 * health.c — GET /healthz (the process is alive) and GET /readyz: 200 only if the server
 * completes a real WebSocket handshake with itself right now. Each /readyz request opens a
 * non-blocking client socket to the server's own listener (watched by the same loop with
 * weft_loop_watch_fd), sends an upgrade to /hub marked with a per-process nonce (so the probe is
 * neither counted nor subject to Origin/auth/per-IP checks, but is to the global limit),
 * checks the 101 with weft's handshake functions and answers the deferred request. With TLS
 * the probe is the library client over wss:// instead (the certificate is not verified: the
 * peer is our own listener). Draining or a full server answers 503 at once, with the reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hub/internal.h"

#define CHECK_TIMEOUT_MS 2000

/* One probe in flight. */
struct readyz_check {
    struct readyz_check *next;
    struct hub *h;
    struct weft_deferred *d;
    int fd;
    struct weft_watch *w;
    struct weft_timer timer;
    uint64_t t0_ns;
    struct weft_client *cl; /* TLS: the probe is a library client */
    bool sent;
    char key[25];
    char buf[4096];
    size_t len;
};

/* GET /healthz: 200 while the process runs. */
void health_healthz(struct weft_request *req, void *route_user)
{
    (void)route_user;
    weft_request_respond(req, 200, "text/plain", NULL, "ok\n", 3);
}

/* Answers the probe's request, stops watching, closes the socket and frees the probe. */
static void finish(struct readyz_check *k, int status, const char *body)
{
    struct hub *h = k->h;
    for (struct readyz_check **pp = &h->checks; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    weft_deferred_respond(k->d, status, "text/plain", status == 503 ? "Retry-After: 1\r\n" : NULL,
                          body, strlen(body));
    weft_timer_stop(&k->timer);
    if (k->cl) {
        /* Closed here, freed by its on_end (never from inside its own callbacks). */
        weft_client_set_user(k->cl, NULL);
        weft_client_close(k->cl, WEFT_CLOSE_NORMAL, NULL);
        k->cl = NULL;
    }
    weft_watch_free(k->w);
    if (k->fd >= 0)
        close(k->fd);
    if (status != 200)
        hlog(&h->log, WEFT_LOG_WARN, NULL, json_pack("{s:s,s:i}", "event", "readyz", "status", status),
             "readiness probe: %.*s", (int)strcspn(body, "\n"), body);
    free(k);
}

/* The probe took too long. */
static void on_timeout(struct weft_timer *t)
{
    struct readyz_check *k = (struct readyz_check *)((char *)t - offsetof(struct readyz_check, timer));
    finish(k, 503, "not ready: the WebSocket self-check timed out\n");
}

/* Sends the upgrade request once connected. Returns 0 or -1. */
static int send_request(struct readyz_check *k)
{
    struct hub *h = k->h;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
        return -1;
    char host[80], extra[96], req[1024];
    snprintf(host, sizeof host, "localhost:%u", hub_port(h));
    snprintf(extra, sizeof extra, "X-Weft-Self-Check: %s\r\n", h->self_nonce);
    weft_handshake_key(&h->rnd, k->key);
    struct weft_client_request cr = {.host = host, .path = "/hub", .extra_headers = extra};
    int n = weft_handshake_request(req, sizeof req, &cr, k->key);
    if (n < 0)
        return -1;
    /* A request this small fits the empty socket buffer of a fresh connection. */
    if (write(k->fd, req, (size_t)n) != n)
        return -1;
    k->sent = true;
    return weft_watch_set(k->w, WEFT_WATCH_READ) == WEFT_OK ? 0 : -1;
}

/* Reads the response; finishes when it is complete. */
static void read_response(struct readyz_check *k)
{
    for (;;) {
        ssize_t r = read(k->fd, k->buf + k->len, sizeof k->buf - k->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            finish(k, 503, "not ready: the server closed the self-check connection\n");
            return;
        }
        k->len += (size_t)r;
        struct weft_http_response resp;
        int hl = weft_http_parse_response(k->buf, k->len, sizeof k->buf, &resp);
        if (hl == 0 && k->len < sizeof k->buf)
            continue;
        if (hl <= 0) {
            finish(k, 503, "not ready: bad response to the self-check\n");
            return;
        }
        char body[160];
        if (resp.status != 101) {
            snprintf(body, sizeof body, "not ready: the self-check handshake got HTTP %d%s\n",
                     resp.status, resp.status == 503 ? " (at the connection limit)" : "");
            finish(k, 503, body);
            return;
        }
        struct weft_handshake_result res;
        if (weft_handshake_check_response(&resp, k->key, NULL, NULL, &res) != WEFT_OK) {
            snprintf(body, sizeof body, "not ready: invalid 101 to the self-check: %s\n",
                     res.error ? res.error : "?");
            finish(k, 503, body);
            return;
        }
        /* Close politely: a masked close frame 1000, then the socket. */
        uint8_t frame[32], payload[125];
        size_t pl = weft_close_payload(payload, WEFT_CLOSE_NORMAL, NULL, 0);
        long fl = weft_frame_encode(frame, sizeof frame, WEFT_ROLE_CLIENT, &k->h->rnd,
                                    WEFT_OP_CLOSE, true, 0, payload, pl);
        if (fl > 0 && write(k->fd, frame, (size_t)fl) < 0) {
            /* nothing to do: the server notices the closed socket */
        }
        snprintf(body, sizeof body,
                 "ready\nwebsocket: handshake ok in %.3f ms\nbroker: %s\n",
                 (double)(hub_mono_ns() - k->t0_ns) / 1e6, k->h->cfg.redis ? "redis" : "local");
        finish(k, 200, body);
        return;
    }
}

/* Socket events of the probe. */
static void on_io(struct weft_watch *w, int fd, unsigned revents, void *arg)
{
    (void)w;
    (void)fd;
    struct readyz_check *k = arg;
    if (!k->sent) {
        if (revents & (WEFT_WATCH_WRITE | WEFT_WATCH_READ)) {
            if (send_request(k) < 0)
                finish(k, 503, "not ready: cannot connect to the server's own listener\n");
        }
        return;
    }
    read_response(k);
}

/* Opens the non-blocking socket to our own listener. Returns the fd or -1. */
static int connect_self(const struct hub *h)
{
    const struct hub_config *cfg = &h->cfg;
    int fd;
    if (cfg->unix_path) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        if (strlen(cfg->unix_path) >= sizeof un.sun_path)
            return -1;
        strcpy(un.sun_path, cfg->unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&un, sizeof un) != 0 && errno != EINPROGRESS &&
            errno != EAGAIN) {
            close(fd);
            return -1;
        }
        return fd;
    }
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(hub_port(h))};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(hub_port(h))};
    bool v6 = false;
    if (!strcmp(cfg->host, "::")) {
        v6 = true;
        in6.sin6_addr = in6addr_loopback;
    } else if (inet_pton(AF_INET6, cfg->host, &in6.sin6_addr) == 1) {
        v6 = true;
    } else if (!strcmp(cfg->host, "0.0.0.0") || inet_pton(AF_INET, cfg->host, &in4.sin_addr) != 1) {
        in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = v6 ? connect(fd, (struct sockaddr *)&in6, sizeof in6)
               : connect(fd, (struct sockaddr *)&in4, sizeof in4);
    if (r != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* TLS probe: the handshake (TLS and WebSocket) completed. */
static void probe_open(struct weft_conn *c)
{
    struct readyz_check *k = weft_client_user(weft_conn_client(c));
    if (!k)
        return;
    char body[160];
    snprintf(body, sizeof body, "ready\nwebsocket: TLS handshake ok in %.3f ms\nbroker: %s\n",
             (double)(hub_mono_ns() - k->t0_ns) / 1e6, k->h->cfg.redis ? "redis" : "local");
    finish(k, 200, body);
}

/* TLS probe: the attempt failed (TLS, HTTP status, timeout...). */
static void probe_error(struct weft_client *cl, int err, const char *reason, int http_status)
{
    (void)err;
    struct readyz_check *k = weft_client_user(cl);
    if (!k)
        return;
    char body[256];
    snprintf(body, sizeof body, "not ready: the self-check failed: %s%s\n", reason,
             http_status == 503 ? " (at the connection limit)" : "");
    finish(k, 503, body);
}

/* TLS probe: the client is done; release it. */
static void probe_end(struct weft_client *cl)
{
    struct readyz_check *k = weft_client_user(cl);
    if (k) {
        k->cl = NULL; /* ended without open or error: answer before freeing */
        finish(k, 503, "not ready: the self-check connection ended\n");
    }
    weft_client_free(cl);
}

/* Starts the probe through the library client over wss://. Returns false on failure. */
static bool start_tls_probe(struct readyz_check *k)
{
    struct hub *h = k->h;
    char url[96], extra[96];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/hub", hub_port(h));
    snprintf(extra, sizeof extra, "X-Weft-Self-Check: %s\r\n", h->self_nonce);
    struct weft_client_options o = {
        .headers = extra,
        .handshake_timeout_ms = CHECK_TIMEOUT_MS,
        .connect_timeout_ms = CHECK_TIMEOUT_MS,
        .handlers = {.on_open = probe_open},
        .user = k,
        .on_error = probe_error,
        .on_end = probe_end,
        .tls_insecure = true,
    };
    int err;
    k->cl = weft_connect(h->loop, url, &o, &err);
    return k->cl != NULL;
}

/* GET /readyz. */
void health_readyz(struct weft_request *req, void *route_user)
{
    struct hub *h = route_user;
    static const char retry[] = "Retry-After: 1\r\n";
    if (h->draining) {
        weft_request_respond(req, 503, "text/plain", retry, "not ready: draining\n", 20);
        return;
    }
    if (h->cfg.max_connections && hub_conns_all(h) >= h->cfg.max_connections) {
        static const char b[] = "not ready: at the connection limit\n";
        weft_request_respond(req, 503, "text/plain", retry, b, sizeof b - 1);
        return;
    }
    if (h->cfg.redis && !broker_up(h->broker)) {
        static const char b[] = "not ready: broker unavailable (redis)\n";
        weft_request_respond(req, 503, "text/plain", retry, b, sizeof b - 1);
        return;
    }
    struct readyz_check *k = calloc(1, sizeof *k);
    if (!k) {
        weft_request_respond(req, 503, "text/plain", retry, "not ready: out of memory\n", 25);
        return;
    }
    k->h = h;
    k->t0_ns = hub_mono_ns();
    k->fd = -1;
    if (h->cfg.tls_cert_file) {
        if (!start_tls_probe(k)) {
            free(k);
            static const char b[] = "not ready: cannot start the TLS self-check\n";
            weft_request_respond(req, 503, "text/plain", retry, b, sizeof b - 1);
            return;
        }
    } else {
        k->fd = connect_self(h);
        if (k->fd >= 0)
            k->w = weft_loop_watch_fd(h->loop, k->fd, WEFT_WATCH_WRITE, on_io, k, NULL);
    }
    if (!k->w && !k->cl) {
        if (k->fd >= 0)
            close(k->fd);
        free(k);
        static const char b[] = "not ready: cannot connect to the server's own listener\n";
        weft_request_respond(req, 503, "text/plain", retry, b, sizeof b - 1);
        return;
    }
    k->d = weft_request_defer(req);
    if (!k->d) {
        if (k->cl) {
            weft_client_set_user(k->cl, NULL);
            weft_client_close(k->cl, WEFT_CLOSE_NORMAL, NULL);
        }
        weft_watch_free(k->w);
        if (k->fd >= 0)
            close(k->fd);
        free(k);
        weft_request_respond(req, 503, "text/plain", retry, "not ready: out of memory\n", 25);
        return;
    }
    k->timer.cb = on_timeout;
    weft_timer_start(h->loop, &k->timer, CHECK_TIMEOUT_MS);
    k->next = h->checks;
    h->checks = k;
}

/* Answers every probe in flight with 503; see internal.h. */
void health_cancel_all(struct hub *h)
{
    while (h->checks)
        finish(h->checks, 503, "not ready: shutting down\n");
}
