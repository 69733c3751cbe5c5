/*
 * serve.c — `weft serve`: the real-time WebSocket server, built only on the public API.
 *
 * Routes:
 *   /ws/<room>    join <room>: each message goes to every other member (text/binary kept)
 *   /ws           the room "lobby"
 *   /echo         echoes every message with its opcode
 *   GET /healthz  200 "ok\n"
 * Everything else gets the library's 404.
 *
 * Logs are plain text lines on stderr: "weft: <level>: <message>". At start it raises
 * RLIMIT_NOFILE to the hard limit, then prints one line containing "listening on ADDR:PORT"
 * (or "listening on unix:PATH"), which scripts wait for to learn an ephemeral port.
 * SIGINT/SIGTERM close every connection with 1001 and exit 0 once the close handshakes are
 * done (or the shutdown timeout passed); a second signal stops at once.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "weft.h"

/* Defaults, shown by --help. */
#define DEF_HOST "0.0.0.0"
#define DEF_PORT 8080
#define DEF_MAX_MESSAGE (16u * 1024 * 1024)
#define DEF_MAX_BACKPRESSURE (1u * 1024 * 1024)
#define DEF_IDLE_S 0.0
#define DEF_PING_S 0.0
#define DEF_HANDSHAKE_S 10.0
#define DEF_SHUTDOWN_S 5.0

/* Longest room name: topics are at most 255 bytes, "room:" included. */
#define ROOM_PREFIX "room:"
#define ROOM_MAX 250

/* File descriptors the process keeps for itself (stdio, epoll, eventfd, signalfd, listener,
 * a few spares); the rest of RLIMIT_NOFILE is available to connections. */
#define FD_RESERVE 16

struct serve {
    struct weft_loop *loop;
    struct weft_server *server;
    int log_level;          /* enum weft_log_level: lines below it are not printed */
    uint32_t shutdown_ms;
    bool shutting_down;
    bool shutdown_done;
};

/* A connection in a room: the topic it is subscribed to. */
struct room_conn {
    size_t topic_len;
    char topic[];
};

static const char *level_name(int level)
{
    switch (level) {
    case WEFT_LOG_DEBUG:
        return "debug";
    case WEFT_LOG_INFO:
        return "info";
    case WEFT_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

/* Prints "weft: <level>: <message>" on stderr when level is at or above the chosen one. */
static void logf_(const struct serve *sv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const struct serve *sv, int level, const char *fmt, ...)
{
    if (level < sv->log_level)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "weft: %s: %s\n", level_name(level), line);
}

/* The library's log sink. */
static void on_library_log(void *user, int level, const char *msg)
{
    const struct serve *sv = user;
    if (level < sv->log_level)
        return;
    fprintf(stderr, "weft: %s: %s\n", level_name(level), msg);
}

static struct serve *conn_serve(const struct weft_conn *c)
{
    return weft_conn_route_user(c);
}

/* Logs a send that did not go through (debug: it is the slow-consumer policy at work). */
static void note_send(const struct weft_conn *c, enum weft_send_result r)
{
    if (r == WEFT_SEND_DROPPED)
        logf_(conn_serve(c), WEFT_LOG_DEBUG, "conn %" PRIu64 ": message dropped (backpressure)",
              weft_conn_id(c));
}

/* ------------------------------------------------------------------ /echo */

static void echo_open(struct weft_conn *c)
{
    logf_(conn_serve(c), WEFT_LOG_DEBUG, "conn %" PRIu64 ": open /echo from %s",
          weft_conn_id(c), weft_conn_remote(c));
}

static void echo_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    note_send(c, weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT));
}

static void log_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                      bool clean)
{
    int rl = reason_len > 123 ? 123 : (int)reason_len;
    logf_(conn_serve(c), WEFT_LOG_DEBUG, "conn %" PRIu64 ": closed %u \"%.*s\"%s",
          weft_conn_id(c), code, rl, reason ? reason : "", clean ? "" : " (unclean)");
}

static void echo_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                       bool clean)
{
    log_close(c, code, reason, reason_len, clean);
}

/* ------------------------------------------------------------------ /ws, /ws/<room> */

/* Before the 101: the room is the path after "/ws/" ("lobby" when empty or for "/ws"). */
static void room_upgrade(struct weft_request *req, void *route_user)
{
    struct serve *sv = route_user;
    size_t plen = 0;
    const char *path = weft_request_path(req, &plen);
    const char *room = "lobby";
    size_t room_len = 5;
    if (path && plen > 4 && !memcmp(path, "/ws/", 4)) {
        room = path + 4;
        room_len = plen - 4;
    }
    if (room_len > ROOM_MAX) {
        logf_(sv, WEFT_LOG_INFO, "upgrade from %s refused: room name over %d bytes",
              weft_request_remote(req), ROOM_MAX);
        weft_request_reject(req, 414, NULL, "room name too long\n");
        return;
    }
    size_t plen_prefix = sizeof ROOM_PREFIX - 1;
    struct room_conn *rc = malloc(sizeof *rc + plen_prefix + room_len);
    if (!rc) {
        weft_request_reject(req, 503, NULL, "out of memory\n");
        return;
    }
    memcpy(rc->topic, ROOM_PREFIX, plen_prefix);
    memcpy(rc->topic + plen_prefix, room, room_len);
    rc->topic_len = plen_prefix + room_len;
    weft_request_accept(req, NULL, rc, NULL);
}

static void room_open(struct weft_conn *c)
{
    struct serve *sv = conn_serve(c);
    struct room_conn *rc = weft_conn_user(c);
    if (!rc) { /* accepted without our on_upgrade: cannot happen, but never crash */
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "no room");
        return;
    }
    int err = weft_subscribe(c, rc->topic, rc->topic_len);
    if (err != WEFT_OK) {
        logf_(sv, WEFT_LOG_WARN, "conn %" PRIu64 ": cannot join room: %s", weft_conn_id(c),
              weft_strerror(err));
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "cannot join room");
        return;
    }
    logf_(sv, WEFT_LOG_DEBUG, "conn %" PRIu64 ": %s joined %.*s", weft_conn_id(c),
          weft_conn_remote(c), (int)rc->topic_len, rc->topic);
}

static void room_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    struct room_conn *rc = weft_conn_user(c);
    if (!rc)
        return;
    weft_publish(weft_conn_server(c), rc->topic, rc->topic_len, data, len,
                 binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
}

static void room_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                       bool clean)
{
    log_close(c, code, reason, reason_len, clean);
    free(weft_conn_user(c));
    weft_conn_set_user(c, NULL);
}

/* ------------------------------------------------------------------ GET /healthz */

static void healthz(struct weft_request *req, void *route_user)
{
    (void)route_user;
    weft_request_respond(req, 200, "text/plain", NULL, "ok\n", 3);
}

/* ------------------------------------------------------------------ shutdown */

static void shutdown_done(void *arg)
{
    struct serve *sv = arg;
    sv->shutdown_done = true;
    weft_loop_stop(sv->loop);
}

static const char *signal_name(int signo)
{
    return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "signal";
}

/* SIGINT/SIGTERM: graceful shutdown; a second one stops at once. */
static void on_signal(int signo, void *arg)
{
    struct serve *sv = arg;
    if (sv->shutting_down) {
        logf_(sv, WEFT_LOG_WARN, "%s again: stopping now", signal_name(signo));
        weft_loop_stop(sv->loop);
        return;
    }
    sv->shutting_down = true;
    logf_(sv, WEFT_LOG_INFO, "%s: shutting down (closing connections with 1001, up to %u ms)",
          signal_name(signo), sv->shutdown_ms);
    weft_server_shutdown(sv->server, WEFT_CLOSE_GOING_AWAY, sv->shutdown_ms, shutdown_done, sv);
}

/* ------------------------------------------------------------------ start-up */

/* Raises the soft RLIMIT_NOFILE to the hard limit and logs how many connections fit. */
static void raise_nofile(const struct serve *sv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        logf_(sv, WEFT_LOG_WARN, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl = want;
        } else if (rl.rlim_max == RLIM_INFINITY) {
            /* The kernel caps descriptors at fs.nr_open: try that. */
            FILE *f = fopen("/proc/sys/fs/nr_open", "r");
            unsigned long long nr = 0;
            if (f) {
                if (fscanf(f, "%llu", &nr) != 1)
                    nr = 0;
                fclose(f);
            }
            want.rlim_cur = (rlim_t)nr;
            if (nr > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0)
                rl = want;
        }
        if (rl.rlim_cur != want.rlim_cur)
            logf_(sv, WEFT_LOG_WARN, "cannot raise RLIMIT_NOFILE: %s", strerror(errno));
    }
    unsigned long long n = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
    n = n > FD_RESERVE ? n - FD_RESERVE : 0;
    logf_(sv, WEFT_LOG_INFO, "open file limit %llu: can hold about %llu connections",
          (unsigned long long)rl.rlim_cur, n);
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: weft serve [options]\n"
            "\n"
            "Runs the real-time WebSocket server.\n"
            "  /ws/<room>  join <room>: each message goes to every other member (/ws = lobby)\n"
            "  /echo       echoes every message\n"
            "  /healthz    GET: 200 \"ok\"\n"
            "\n"
            "options (default in brackets):\n"
            "  --host H                 address to listen on [" DEF_HOST "] (\"::\" for IPv6)\n"
            "  --port P                 TCP port, 0 = any free port [%d]\n"
            "  --unix PATH              listen on a Unix domain socket instead of TCP [off]\n"
            "  --max-message BYTES      largest message, closed with 1009 beyond [%u]\n"
            "  --max-backpressure BYTES unsent bytes per connection before the slow-consumer\n"
            "                           policy applies [%u]\n"
            "  --slow-policy drop|close what to do with a slow consumer: drop new messages, or\n"
            "                           close it with 1008 [drop]\n"
            "  --idle-timeout S         close a connection after S seconds without traffic,\n"
            "                           0 = never [%g]\n"
            "  --ping-interval S        ping a peer silent for S seconds, 0 = never [%g]\n"
            "  --handshake-timeout S    drop clients that do not complete the HTTP handshake\n"
            "                           within S seconds [%g]\n"
            "  --shutdown-timeout S     on SIGINT/SIGTERM, wait up to S seconds for the close\n"
            "                           handshakes (1001) [%g]\n"
            "  --log-level LEVEL        debug|info|warn|error [info]\n"
            "  -h, --help               show this help\n"
            "\n"
            "BYTES accept a k, m or g suffix (KiB, MiB, GiB); S may be fractional (0.5).\n"
            "Logs go to stderr as \"weft: <level>: <message>\"; the line \"listening on\n"
            "ADDR:PORT\" is always printed once the server is listening.\n"
            "Exit status: 0 after a graceful shutdown, 1 on a runtime failure, 2 on bad usage.\n",
            DEF_PORT, DEF_MAX_MESSAGE, DEF_MAX_BACKPRESSURE, DEF_IDLE_S, DEF_PING_S,
            DEF_HANDSHAKE_S, DEF_SHUTDOWN_S);
}

/* Parses a byte count: decimal digits with an optional k/m/g suffix (binary units).
 * Returns false on anything else, zero or overflow. */
static bool parse_bytes(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return false;
        }
        if (end[1] && !((end[1] == 'b' || end[1] == 'B') && !end[2]))
            return false;
    }
    if (v == 0 || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* Parses seconds (a non-negative decimal, possibly fractional) into milliseconds. */
static bool parse_seconds(const char *s, uint32_t *ms)
{
    if (!((*s >= '0' && *s <= '9') || *s == '.'))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v * 1000.0 > (double)UINT32_MAX)
        return false;
    *ms = (uint32_t)llround(v * 1000.0);
    if (v > 0 && *ms == 0)
        *ms = 1;
    return true;
}

static bool parse_port(const char *s, uint16_t *port)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static int bad_value(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "weft serve: bad value '%s' for --%s: %s\n\n", value, flag, why);
    usage(stderr);
    return 2;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_UNIX,
    OPT_MAX_MESSAGE,
    OPT_MAX_BACKPRESSURE,
    OPT_SLOW_POLICY,
    OPT_IDLE_TIMEOUT,
    OPT_PING_INTERVAL,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-backpressure", required_argument, NULL, OPT_MAX_BACKPRESSURE},
    {"slow-policy", required_argument, NULL, OPT_SLOW_POLICY},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Options parsed from the command line. */
struct serve_options {
    struct weft_server_config cfg;
    int log_level;
    uint32_t shutdown_ms;
};

/* Fills o from argv. Returns -1 to go on, or an exit status (0 after --help, 2 on bad usage). */
static int parse_options(int argc, char **argv, struct serve_options *o)
{
    struct weft_server_config *cfg = &o->cfg;
    memset(o, 0, sizeof *o);
    cfg->host = DEF_HOST;
    cfg->port = DEF_PORT;
    cfg->max_message = DEF_MAX_MESSAGE;
    cfg->max_backpressure = DEF_MAX_BACKPRESSURE;
    cfg->slow_policy = WEFT_SLOW_DROP;
    cfg->handshake_timeout_ms = (uint32_t)(DEF_HANDSHAKE_S * 1000);
    o->shutdown_ms = (uint32_t)(DEF_SHUTDOWN_S * 1000);
    o->log_level = WEFT_LOG_INFO;

    optind = 1;
    opterr = 0; /* we name the unknown flag or the missing value ourselves */
    int opt;
    uint64_t bytes;
    uint32_t ms;
    while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            if (!*optarg)
                return bad_value("host", optarg, "empty");
            cfg->host = optarg;
            break;
        case OPT_PORT:
            if (!parse_port(optarg, &cfg->port))
                return bad_value("port", optarg, "expected a number from 0 to 65535");
            cfg->port_ephemeral = cfg->port == 0;
            break;
        case OPT_UNIX:
            if (!*optarg)
                return bad_value("unix", optarg, "empty path");
            cfg->unix_path = optarg;
            break;
        case OPT_MAX_MESSAGE:
            if (!parse_bytes(optarg, &bytes))
                return bad_value("max-message", optarg, "expected a positive byte count");
            cfg->max_message = bytes;
            break;
        case OPT_MAX_BACKPRESSURE:
            if (!parse_bytes(optarg, &bytes) || bytes > SIZE_MAX)
                return bad_value("max-backpressure", optarg, "expected a positive byte count");
            cfg->max_backpressure = (size_t)bytes;
            break;
        case OPT_SLOW_POLICY:
            if (!strcmp(optarg, "drop"))
                cfg->slow_policy = WEFT_SLOW_DROP;
            else if (!strcmp(optarg, "close"))
                cfg->slow_policy = WEFT_SLOW_CLOSE;
            else
                return bad_value("slow-policy", optarg, "expected drop or close");
            break;
        case OPT_IDLE_TIMEOUT:
            if (!parse_seconds(optarg, &ms))
                return bad_value("idle-timeout", optarg, "expected seconds (0 = never)");
            cfg->idle_timeout_ms = ms;
            break;
        case OPT_PING_INTERVAL:
            if (!parse_seconds(optarg, &ms))
                return bad_value("ping-interval", optarg, "expected seconds (0 = never)");
            cfg->ping_interval_ms = ms;
            break;
        case OPT_HANDSHAKE_TIMEOUT:
            if (!parse_seconds(optarg, &ms) || ms == 0)
                return bad_value("handshake-timeout", optarg, "expected seconds (> 0)");
            cfg->handshake_timeout_ms = ms;
            break;
        case OPT_SHUTDOWN_TIMEOUT:
            if (!parse_seconds(optarg, &ms))
                return bad_value("shutdown-timeout", optarg, "expected seconds");
            o->shutdown_ms = ms;
            break;
        case OPT_LOG_LEVEL:
            if (!strcmp(optarg, "debug"))
                o->log_level = WEFT_LOG_DEBUG;
            else if (!strcmp(optarg, "info"))
                o->log_level = WEFT_LOG_INFO;
            else if (!strcmp(optarg, "warn"))
                o->log_level = WEFT_LOG_WARN;
            else if (!strcmp(optarg, "error"))
                o->log_level = WEFT_LOG_ERROR;
            else
                return bad_value("log-level", optarg, "expected debug, info, warn or error");
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "weft serve: option '%s' needs a value\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default: /* '?': unknown option (optopt names a short one, 0 for a long one) */
            if (optopt > 0 && optopt < 256)
                fprintf(stderr, "weft serve: unknown option '-%c'\n\n", optopt);
            else
                fprintf(stderr, "weft serve: unknown option '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft serve: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Formats the address the server listens on: "127.0.0.1:8080", "[::1]:8080", "unix:PATH". */
static void listen_address(const struct weft_server_config *cfg, uint16_t port, char *out,
                           size_t cap)
{
    if (cfg->unix_path)
        snprintf(out, cap, "unix:%s", cfg->unix_path);
    else if (strchr(cfg->host, ':'))
        snprintf(out, cap, "[%s]:%u", cfg->host, port);
    else
        snprintf(out, cap, "%s:%u", cfg->host, port);
}

/* `weft serve`: see usage(). Returns the exit status. */
int cmd_serve(int argc, char **argv)
{
    struct serve_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;

    struct serve sv = {.log_level = o.log_level, .shutdown_ms = o.shutdown_ms};
    o.cfg.log = on_library_log;
    o.cfg.log_user = &sv;

    raise_nofile(&sv);

    sv.loop = weft_loop_new();
    if (!sv.loop) {
        logf_(&sv, WEFT_LOG_ERROR, "cannot create the event loop: %s", strerror(errno));
        return 1;
    }
    if (weft_loop_on_signal(sv.loop, SIGINT, on_signal, &sv) != WEFT_OK ||
        weft_loop_on_signal(sv.loop, SIGTERM, on_signal, &sv) != WEFT_OK) {
        logf_(&sv, WEFT_LOG_ERROR, "cannot watch SIGINT/SIGTERM: %s",
              strerror(errno));
        weft_loop_free(sv.loop);
        return 1;
    }

    int err = 0;
    sv.server = weft_server_new(sv.loop, &o.cfg, &err);
    if (!sv.server) {
        char addr[300];
        listen_address(&o.cfg, o.cfg.port, addr, sizeof addr);
        int saved = errno;
        logf_(&sv, WEFT_LOG_ERROR, "cannot listen on %s: %s%s%s", addr, weft_strerror(err),
              err == WEFT_ERR_IO ? ": " : "", err == WEFT_ERR_IO ? strerror(saved) : "");
        weft_loop_free(sv.loop);
        return 1;
    }

    static const struct weft_ws_handlers echo = {
        .on_open = echo_open,
        .on_message = echo_message,
        .on_close = echo_close,
    };
    static const struct weft_ws_handlers room = {
        .on_upgrade = room_upgrade,
        .on_open = room_open,
        .on_message = room_message,
        .on_close = room_close,
    };
    if (weft_server_ws(sv.server, "/echo", &echo, &sv) != WEFT_OK ||
        weft_server_ws(sv.server, "/ws", &room, &sv) != WEFT_OK ||
        weft_server_ws(sv.server, "/ws/*", &room, &sv) != WEFT_OK ||
        weft_server_http(sv.server, "GET", "/healthz", healthz, &sv) != WEFT_OK) {
        logf_(&sv, WEFT_LOG_ERROR, "cannot register the routes");
        weft_server_free(sv.server);
        weft_loop_free(sv.loop);
        return 1;
    }

    char addr[300];
    listen_address(&o.cfg, weft_server_port(sv.server), addr, sizeof addr);
    /* Always printed, whatever the log level: scripts wait for it. */
    fprintf(stderr, "weft: info: listening on %s\n", addr);
    fflush(stderr);

    rc = weft_loop_run(sv.loop);
    if (rc != WEFT_OK)
        logf_(&sv, WEFT_LOG_ERROR, "event loop failed: %s", weft_strerror(rc));

    struct weft_server_stats st;
    weft_server_stats(sv.server, &st);
    logf_(&sv, WEFT_LOG_INFO,
          "stopped%s: %" PRIu64 " connections accepted, %" PRIu64 " upgrades, %" PRIu64
          " messages in, %" PRIu64 " out",
          sv.shutdown_done ? "" : " (forced)", st.accepted_total, st.upgrades_total,
          st.messages_in, st.messages_out);

    weft_server_free(sv.server);
    weft_loop_free(sv.loop);
    return rc == WEFT_OK && sv.shutdown_done ? 0 : 1;
}
