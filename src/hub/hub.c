/*
 * hub.c — the wiring of the hub: creates its parts (the per-IP book, auth, rooms, the web
 * files, the stats stream, the broker), one weft server with the routes that lead to them
 * (upgrade.c, conn.c, health.c, metrics.c, web.c), the 250 ms tick (revocations, history
 * expiry, the per-IP book), the graceful shutdown, and `weft serve`'s run with its signals.
 * What each part does is in its own file; see README.md.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "hub/conn.h"
#include "hub/internal.h"
#include "hub/ipbook.h"
#include "hub/upgrade.h"

/* Descriptors the process keeps for itself; the rest of RLIMIT_NOFILE is for connections. */
#define FD_RESERVE 16
#define TICK_MS 250

/* ------------------------------------------------------------------ periodic work */

/* Every TICK_MS: reload the revocation list (closing revoked connections) and expire old
 * history. */
static void on_tick(struct weft_timer *t)
{
    struct hub *h = (struct hub *)((char *)t - offsetof(struct hub, tick));
    size_t n;
    int r = h->auth ? auth_reload(h->auth, &n) : 0;
    if (r < 0)
        hlog(&h->log, WEFT_LOG_WARN, NULL, NULL, "cannot read %s: %s", h->cfg.revoked_file,
             strerror(errno));
    if (r == 1)
        hlog(&h->log, WEFT_LOG_INFO, NULL,
             json_pack("{s:s,s:I}", "event", "revocations_loaded", "count", (json_int_t)n),
             "revocation list reloaded: %zu ids", n);
    if (h->auth) { /* also covers a reload done by a handshake since the last tick */
        for (struct hconn *hc = h->conns; hc; hc = hc->next)
            if (hc->auth && hc->auth->jti && auth_revoked(h->auth, hc->auth->jti) &&
                !hc->self_check) {
                h->m.revoked_closes++;
                free(hc->auth->jti);
                hc->auth->jti = NULL;
                hub_conn_close(hc, WEFT_CLOSE_POLICY, "token revoked");
            }
    }
    rooms_sweep(&h->rooms, weft_loop_now(h->loop));
    if (h->cfg.handshake_rate > 0) ipbook_sweep(h->ips);
    weft_timer_start(h->loop, &h->tick, TICK_MS);
}

/* ------------------------------------------------------------------ life cycle */

/* The library's log sink: a line about one of the hub's open WebSocket connections carries
 * its correlation id. */
static void on_library_log(void *user, int level, struct weft_conn *c, const char *msg)
{
    struct hub *h = user;
    const struct hconn *hc = c && weft_conn_route_user(c) == h ? weft_conn_user(c) : NULL;
    hlog(&h->log, level, hc ? hc->id : NULL, json_pack("{s:s}", "event", "library"), "%s", msg);
}

/* Creates the hub; see hub.h. */
struct hub *hub_new(struct weft_loop *loop, const struct hub_config *cfg, FILE *log, char *err,
                    size_t errcap)
{
    struct hub *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->lat = calloc(1, sizeof *h->lat);
    h->ips = ipbook_new(cfg->handshake_rate, cfg->handshake_burst);
    if (hub_config_copy(&h->cfg, cfg) < 0 || !h->lat || !h->ips ||
        rooms_init(&h->rooms, cfg->history_size, cfg->history_age_ms) < 0) {
        snprintf(err, errcap, "out of memory");
        hub_free(h);
        return NULL;
    }
    /* One worker holds the whole budget; workers_run divides it between N. */
    rooms_limits(&h->rooms, cfg->history_max_message, cfg->history_memory, cfg->max_total_rooms);
    h->lat->h = h;
    h->log.out = log;
    h->log.level = cfg->log_level;
    h->log.format = cfg->log_format;
    h->m.start_time = (double)hub_wall_ms() / 1000.0;
    uint8_t nonce[16];
    weft_random_bytes(&h->rnd, nonce, sizeof nonce);
    for (size_t i = 0; i < sizeof nonce; i++)
        snprintf(h->self_nonce + 2 * i, 3, "%02x", nonce[i]);
    if (cfg->auth_secret || cfg->revoked_file) {
        h->auth = auth_new(cfg->auth_secret, cfg->revoked_file, err, errcap);
        if (!h->auth) {
            hub_free(h);
            return NULL;
        }
        auth_allow_no_exp(h->auth, cfg->auth_allow_no_exp);
    }

    weft_memory_set_budget(cfg->memory_budget); /* process-wide: every worker sets the same */
    struct weft_server_config sc = {
        .host = cfg->host,
        .port = cfg->port,
        .port_ephemeral = cfg->port == 0,
        .unix_path = cfg->unix_path,
        .reuse_port = cfg->reuse_port,
        .max_message = cfg->max_message,
        .max_backpressure = (size_t)cfg->max_backpressure,
        .slow_policy = (enum weft_slow_policy)cfg->slow_policy,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .ping_interval_ms = cfg->ping_interval_ms,
        .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .tls_cert_file = cfg->tls_cert_file,
        .tls_key_file = cfg->tls_key_file,
        .deflate = {.enabled = cfg->deflate,
                    .no_context_takeover = !cfg->deflate_context_takeover,
                    .peer_no_context_takeover = !cfg->deflate_context_takeover,
                    .max_window_bits = (uint8_t)cfg->deflate_window_bits,
                    .peer_max_window_bits = (uint8_t)cfg->deflate_window_bits,
                    .mem_level = (int)cfg->deflate_mem_level,
                    /* weft_pmd_config: 0 means zlib's default, -1 level 0 */
                    .level = cfg->deflate_level ? (int)cfg->deflate_level : -1,
                    .threshold = cfg->deflate_threshold},
        .log = on_library_log,
        .log_user = h,
    };
    int e = 0;
    h->server = weft_server_new(loop, &sc, &e);
    if (!h->server && e == WEFT_ERR_TLS) {
        snprintf(err, errcap, "TLS: %s", weft_tls_last_error());
        hub_free(h);
        return NULL;
    }
    if (!h->server) {
        int saved = errno;
        snprintf(err, errcap, "cannot listen on %s%s%u: %s%s%s",
                 cfg->unix_path ? "unix:" : cfg->host, cfg->unix_path ? cfg->unix_path : ":",
                 cfg->unix_path ? 0u : cfg->port, weft_strerror(e), e == WEFT_ERR_IO ? ": " : "",
                 e == WEFT_ERR_IO ? strerror(saved) : "");
        hub_free(h);
        return NULL;
    }
    static const struct weft_ws_handlers hub_h = {.on_upgrade = upgrade_hub,
                                                  .on_open = conn_on_open,
                                                  .on_message = conn_on_message,
                                                  .on_close = conn_on_close};
    static const struct weft_ws_handlers room_h = {.on_upgrade = upgrade_room,
                                                   .on_open = conn_on_open,
                                                   .on_message = conn_on_message,
                                                   .on_close = conn_on_close};
    static const struct weft_ws_handlers echo_h = {.on_upgrade = upgrade_echo,
                                                   .on_open = conn_on_open,
                                                   .on_message = conn_on_message,
                                                   .on_close = conn_on_close};
    if (weft_server_ws(h->server, "/hub", &hub_h, h) != WEFT_OK ||
        weft_server_ws(h->server, "/echo", &echo_h, h) != WEFT_OK ||
        weft_server_ws(h->server, "/ws", &room_h, h) != WEFT_OK ||
        weft_server_ws(h->server, "/ws/*", &room_h, h) != WEFT_OK ||
        weft_server_http(h->server, "GET", "/healthz", health_healthz, h) != WEFT_OK ||
        weft_server_http(h->server, "GET", "/readyz", health_readyz, h) != WEFT_OK ||
        weft_server_http(h->server, "GET", "/metrics", metrics_http, h) != WEFT_OK ||
        weft_server_http(h->server, "GET", "/*", web_http, h) != WEFT_OK || /* last */
        weft_server_http(h->server, "HEAD", "/*", web_http, h) != WEFT_OK) {
        snprintf(err, errcap, "cannot register the routes");
        hub_free(h);
        return NULL;
    }
    if (web_init(h, err, errcap) < 0) {
        hub_free(h);
        return NULL;
    }
    if (stats_init(h) < 0) {
        snprintf(err, errcap, "out of memory");
        hub_free(h);
        return NULL;
    }
    if (cfg->redis && !broker_new(h, cfg->redis, err, errcap)) {
        hub_free(h);
        return NULL;
    }
    h->tick.cb = on_tick;
    weft_timer_start(loop, &h->tick, TICK_MS);
    return h;
}

/* The bound port. */
uint16_t hub_port(const struct hub *h)
{
    return weft_server_port(h->server);
}

/* Logs "listening on ADDR:PORT" whatever the level (scripts wait for it). */
void hub_log_listening(struct hub *h)
{
    char addr[300];
    if (h->cfg.unix_path)
        snprintf(addr, sizeof addr, "unix:%s", h->cfg.unix_path);
    else if (strchr(h->cfg.host, ':'))
        snprintf(addr, sizeof addr, "[%s]:%u", h->cfg.host, hub_port(h));
    else
        snprintf(addr, sizeof addr, "%s:%u", h->cfg.host, hub_port(h));
    hlog_always(
        &h->log, WEFT_LOG_INFO, NULL,
        json_pack("{s:s,s:s,s:s}", "event", "listening", "address", addr, "version", WEFT_VERSION),
        "listening on %s", addr);
}

/* Graceful shutdown; see hub.h. */
void hub_shutdown(struct hub *h, uint16_t code, void (*done)(void *arg), void *arg)
{
    h->draining = true;
    health_cancel_all(h);
    weft_timer_stop(&h->tick);
    stats_stop(h);
    weft_server_shutdown(h->server, code, h->cfg.shutdown_ms, done, arg);
}

/* Frees the hub; see hub.h. */
void hub_free(struct hub *h)
{
    if (!h) return;
    weft_timer_stop(&h->tick);
    health_cancel_all(h);
    if (h->server) {
        struct weft_server_stats st;
        weft_server_stats(h->server, &st);
        if (h->started) /* not after a failed start: its error is the only line */
            hlog(&h->log, WEFT_LOG_INFO, NULL,
                 json_pack("{s:s,s:I,s:I,s:I,s:I}", "event", "stopped", "accepted",
                           (json_int_t)st.accepted_total, "upgrades", (json_int_t)st.upgrades_total,
                           "messages_in", (json_int_t)st.messages_in, "messages_out",
                           (json_int_t)st.messages_out),
                 "stopped: %llu connections accepted, %llu upgrades, %llu messages in, %llu out",
                 (unsigned long long)st.accepted_total, (unsigned long long)st.upgrades_total,
                 (unsigned long long)st.messages_in, (unsigned long long)st.messages_out);
        weft_server_free(h->server); /* on_close runs for the connections left */
    }
    broker_free(h->broker); /* after the connections: their presence removals are flushed */
    if (!h->sh)             /* a book shared by the workers is freed by workers.c */
        ipbook_free(h->ips);
    if (h->lat) {
        if (h->lat->scheduled) {
            h->lat->h = NULL;
        } else {
            free(h->lat->t0);
            free(h->lat);
        }
    }
    stats_free(h);
    web_free(h);
    rooms_free(&h->rooms);
    auth_free(h->auth);
    hub_config_free(&h->cfg);
    free(h);
}

/* ------------------------------------------------------------------ hub_run */

/* Raises the soft RLIMIT_NOFILE to the hard limit; logs how many connections fit. */
void hub_raise_nofile(const struct hub_log *lg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl = want;
        } else if (rl.rlim_max == RLIM_INFINITY) {
            FILE *f = fopen("/proc/sys/fs/nr_open", "r");
            unsigned long long nr = 0;
            if (f) {
                if (fscanf(f, "%llu", &nr) != 1) nr = 0;
                fclose(f);
            }
            want.rlim_cur = (rlim_t)nr;
            if (nr > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
        }
    }
    unsigned long long n = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
    n = n > FD_RESERVE ? n - FD_RESERVE : 0;
    hlog(lg, WEFT_LOG_INFO, NULL,
         json_pack("{s:s,s:I,s:I}", "event", "nofile", "limit", (json_int_t)rl.rlim_cur,
                   "connections", (json_int_t)n),
         "open file limit %llu: can hold about %llu connections", (unsigned long long)rl.rlim_cur,
         n);
}

/* State of hub_run. */
struct run {
    struct weft_loop *loop;
    struct hub *hub;
    bool stopping, done;
};

/* The graceful shutdown finished. */
static void run_done(void *arg)
{
    struct run *r = arg;
    r->done = true;
    weft_loop_stop(r->loop);
}

/* SIGINT/SIGTERM: graceful shutdown (1001); a second signal stops at once. */
static void run_signal(int signo, void *arg)
{
    struct run *r = arg;
    struct hub *h = r->hub;
    if (!h) /* the hub is already freed: the process is exiting */
        return;
    if (r->stopping) {
        hlog(&h->log, WEFT_LOG_WARN, NULL, NULL, "signal %d again: stopping now", signo);
        weft_loop_stop(r->loop);
        return;
    }
    r->stopping = true;
    hlog(&h->log, WEFT_LOG_INFO, NULL, json_pack("{s:s,s:i}", "event", "shutdown", "signal", signo),
         "%s: shutting down (closing connections with 1001, up to %u ms)", strsignal(signo),
         h->cfg.shutdown_ms);
    hub_shutdown(h, WEFT_CLOSE_GOING_AWAY, run_done, r);
}

/* SIGHUP: reloads the TLS certificate and key for new connections; open connections keep
 * theirs, and a bad file keeps the old certificate (logged). */
static void run_sighup(int signo, void *arg)
{
    (void)signo;
    struct hub *h = ((struct run *)arg)->hub;
    if (weft_server_reload_tls(h->server) == WEFT_OK)
        hlog(&h->log, WEFT_LOG_INFO, NULL, json_pack("{s:s}", "event", "tls_reload"),
             "SIGHUP: TLS certificate reloaded from %s", h->cfg.tls_cert_file);
    else
        hlog(&h->log, WEFT_LOG_ERROR, NULL, json_pack("{s:s}", "event", "tls_reload_failed"),
             "SIGHUP: TLS reload failed, keeping the old certificate: %s", weft_tls_last_error());
}

/* Reports a failed start (a bad --web-root or TLS file, a port in use): one plain line on
 * stderr, "weft serve: REASON", whatever the log format. */
void hub_start_error(const char *reason)
{
    fprintf(stderr, "weft serve: %s\n", reason);
    fflush(stderr);
}

/* Runs the server until a signal; see hub.h. */
int hub_run(const struct hub_config *cfg)
{
    struct hub_log lg = {.out = stderr, .level = cfg->log_level, .format = cfg->log_format};
    if (cfg->workers > 1 && !cfg->unix_path) return workers_run(cfg);
    struct run r = {0};
    r.loop = hub_loop_new(cfg, &lg, true);
    if (!r.loop) {
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "cannot create the event loop: %s", strerror(errno));
        return 1;
    }
    if (weft_loop_on_signal(r.loop, SIGINT, run_signal, &r) != WEFT_OK ||
        weft_loop_on_signal(r.loop, SIGTERM, run_signal, &r) != WEFT_OK) {
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "cannot watch SIGINT/SIGTERM: %s", strerror(errno));
        weft_loop_free(r.loop);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    r.hub = hub_new(r.loop, cfg, stderr, err, sizeof err);
    if (!r.hub) {
        hub_start_error(err);
        weft_loop_free(r.loop);
        return 1;
    }
    r.hub->started = true;
    hub_raise_nofile(&lg); /* once the setup succeeded: a bad file is the only line on stderr */
    if (cfg->tls_cert_file && weft_loop_on_signal(r.loop, SIGHUP, run_sighup, &r) != WEFT_OK)
        hlog(&lg, WEFT_LOG_WARN, NULL, NULL, "cannot watch SIGHUP: TLS reload disabled");
    hub_log_listening(r.hub);
    int rc = weft_loop_run(r.loop);
    if (rc != WEFT_OK)
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "event loop failed: %s", weft_strerror(rc));
    hub_free(r.hub);
    r.hub = NULL;
    /* Deferred frees (watches, latency samples) complete at later iterations. */
    uint64_t end = hub_mono_ns() + 50u * 1000000u;
    while (hub_mono_ns() < end)
        weft_loop_poll(r.loop, 10);
    weft_loop_free(r.loop);
    return rc == WEFT_OK && r.done ? 0 : 1;
}
