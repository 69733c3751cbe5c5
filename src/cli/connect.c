/*
 * connect.c — `weft connect URL`: a command-line WebSocket client (like websocat / wscat),
 * built only on the public API.
 *
 * stdin is read through the loop (a weft_watch). When it is a terminal each line is sent as a
 * text message; when it is a pipe its lines (or with --binary its bytes) are sent. At its end
 * the client keeps reading until the server has been quiet for --linger (replies to the last
 * lines still arrive from servers that stop sending once they get a Close), then closes with
 * 1000 and exits once the close is done. Received messages are printed by connect_out.c.
 * The open line on stderr names the negotiated subprotocol and extensions. Exit status: 0 after a
 * normal close (1000, 1001 or no code, handshake completed), 1 when the connection failed or closed
 * otherwise, 2 for bad usage. Every failure is one line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "weft.h"

#define READ_CHUNK 65536
#define HEADERS_MAX 8192
#define LINGER_DEFAULT_MS 1000

static const char connect_usage[] =
    "usage: weft connect [options] URL\n"
    "\n"
    "Connects to a WebSocket server (ws://host[:port]/path). Each line of stdin is sent as a\n"
    "text message and each message received is printed on stdout. When stdin is a pipe or a\n"
    "file, the connection is closed (1000) at its end, once the server has been quiet for\n"
    "--linger, and weft exits after the close. The line \"connected to URL (subprotocol: P,\n"
    "extensions: E)\" on stderr says what the server agreed to.\n"
    "\n"
    "options:\n"
    "  --header 'K: V'        add a request header (repeatable)\n"
    "  --subprotocol P        offer subprotocol P (repeatable)\n"
    "  --origin O             send Origin: O\n"
    "  --binary               send stdin's bytes as binary messages (one per read)\n"
    "  --binary-out           write received binary messages raw (default: a hex summary)\n"
    "  --json                 pretty-print received JSON messages (others are printed as is)\n"
    "  --linger SECS          at the end of stdin, close once the server has been quiet for\n"
    "                         SECS (its replies to the last lines still arrive) [1]\n"
    "  --reconnect            reconnect with backoff and jitter (each attempt shown on stderr)\n"
    "  --max-attempts N       with --reconnect: give up after N attempts in a row [unlimited]\n"
    "  --ping-interval SECS   send a ping after SECS of silence [off]\n"
    "  --max-message BYTES    largest message accepted [16m]\n"
    "  --connect-timeout SECS DNS + connect + handshake limit [10]\n"
    "  --cacert FILE          wss://: trust the CAs in FILE (PEM) instead of the system's\n"
    "  --insecure             wss://: accept any certificate (self-signed test servers;\n"
    "                         a warning is printed)\n"
    "  --deflate              offer permessage-deflate (RFC 7692, context takeover both ways)\n"
    "  --quiet                no informational lines on stderr (errors still are)\n"
    "  --help                 this text\n"
    "\n"
    "BYTES: 512, 64k, 1m or 1MiB (powers of 1024). SECS: seconds (1.5) or 500ms, 2s, 1m;\n"
    "a non-zero duration below 1 ms is 1 ms. weft serve and weft bench read the same forms.\n"
    "\n"
    "exit status: 0 after a normal close, 1 when the connection failed or closed\n"
    "abnormally, 2 for bad usage.\n";

struct cx {
    struct weft_loop *loop;
    struct weft_client *cl;
    struct weft_watch *in;
    const char *url;
    bool tty, binary_in, binary_out, quiet, reconnect, json;
    uint32_t linger_ms;       /* --linger: quiet time before the close at the end of stdin */
    struct weft_timer linger; /* running between the end of stdin and the close */
    bool stdin_eof;
    bool stdin_file; /* regular file or /dev/null: read directly (epoll refuses them) */
    bool paused;     /* stdin not read: backpressure or not connected */
    bool opened;     /* a connection opened at least once */
    bool closed_seen;
    uint16_t close_code;
    bool close_clean;
    bool failed; /* the last attempt failed (its one error line is printed) */
    int signals;
    char *line; /* partial line from stdin */
    size_t line_len, line_cap;
};

/* Prints an informational line on stderr unless --quiet. */
static void info(const struct cx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info(const struct cx *x, const char *fmt, ...)
{
    if (x->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("weft connect: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Sends one message, pausing stdin when the connection pushes back. */
static void send_msg(struct cx *x, const void *data, size_t len, bool binary)
{
    enum weft_opcode op = binary ? WEFT_OP_BINARY : WEFT_OP_TEXT;
    if (!binary && !weft_utf8_valid(data, len))
        op = WEFT_OP_BINARY; /* not text: keep the bytes, send them as binary */
    enum weft_send_result r = weft_client_send(x->cl, data, len, op);
    if (r == WEFT_SEND_QUEUED && x->in) {
        x->paused = true;
        weft_watch_set(x->in, 0);
    } else if (r == WEFT_SEND_DROPPED || r == WEFT_SEND_CLOSED) {
        fprintf(stderr, "weft connect: a message of %zu bytes could not be sent (%s)\n", len,
                r == WEFT_SEND_DROPPED ? "backlog full" : "connection closed");
    }
}

/* Sends the complete lines of data[0..n) and keeps the last partial line. */
static void take_lines(struct cx *x, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t)(nl - data) : n;
        if (x->line_len + k > x->line_cap) {
            size_t cap = x->line_cap ? x->line_cap : 256;
            while (cap < x->line_len + k)
                cap *= 2;
            char *p = realloc(x->line, cap);
            if (!p) {
                fputs("weft connect: out of memory\n", stderr);
                exit(1);
            }
            x->line = p;
            x->line_cap = cap;
        }
        memcpy(x->line + x->line_len, data, k);
        x->line_len += k;
        if (!nl) return;
        size_t len = x->line_len;
        if (len && x->line[len - 1] == '\r') len--;
        send_msg(x, x->line, len, false);
        x->line_len = 0;
        data += k + 1;
        n -= k + 1;
    }
}

/* The linger timer fired: the server has been quiet for --linger; close normally. */
static void on_linger(struct weft_timer *t)
{
    struct cx *x = (struct cx *)((char *)t - offsetof(struct cx, linger));
    weft_client_close(x->cl, WEFT_CLOSE_NORMAL, NULL);
}

/* stdin is over: send what is left, then close normally once the server has been quiet for
 * --linger (at once with --linger 0). */
static void stdin_ended(struct cx *x)
{
    x->stdin_eof = true;
    if (x->in) {
        weft_watch_free(x->in);
        x->in = NULL;
    }
    if (x->line_len && !x->binary_in) send_msg(x, x->line, x->line_len, false);
    x->line_len = 0;
    if (x->linger_ms) {
        x->linger.cb = on_linger;
        weft_timer_start(x->loop, &x->linger, x->linger_ms);
    } else {
        weft_client_close(x->cl, WEFT_CLOSE_NORMAL, NULL);
    }
}

/* Reads what stdin has (one chunk); returns false at its end or on an error. */
static bool read_stdin_once(struct cx *x)
{
    char buf[READ_CHUNK];
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n <= 0) {
        if (n < 0) fprintf(stderr, "weft connect: reading stdin: %s\n", strerror(errno));
        stdin_ended(x);
        return false;
    }
    if (x->binary_in)
        send_msg(x, buf, (size_t)n, true);
    else
        take_lines(x, buf, (size_t)n);
    return true;
}

/* Watch callback: stdin is readable. */
static void on_stdin(struct weft_watch *w, int fd, unsigned events, void *arg)
{
    (void)w;
    (void)fd;
    (void)events;
    struct cx *x = arg;
    if (!weft_client_conn(x->cl)) return;
    read_stdin_once(x);
}

/* Starts (or resumes) reading stdin once the connection is open. */
static void stdin_start(struct cx *x)
{
    if (x->stdin_eof) return;
    if (x->stdin_file) {
        while (!x->stdin_eof && weft_client_conn(x->cl) && read_stdin_once(x)) {
        }
        return;
    }
    x->paused = false;
    if (x->in) {
        weft_watch_set(x->in, WEFT_WATCH_READ);
        return;
    }
    int err;
    x->in = weft_loop_watch_fd(x->loop, 0, WEFT_WATCH_READ, on_stdin, x, &err);
    if (!x->in && err == WEFT_ERR_INVAL) {
        x->stdin_file = true; /* a regular file or /dev/null never blocks */
        stdin_start(x);
    } else if (!x->in) {
        fprintf(stderr, "weft connect: cannot watch stdin: %s\n", weft_strerror(err));
        stdin_ended(x);
    }
}

/* Connection callback: open. */
static void on_open(struct weft_conn *c)
{
    struct cx *x = weft_conn_route_user(c);
    x->opened = true;
    x->failed = false;
    const char *proto = weft_conn_protocol(c);
    char ext[256];
    weft_conn_extensions(c, ext, sizeof ext);
    info(x, "connected to %s (subprotocol: %s, extensions: %s)", x->url, *proto ? proto : "none",
         ext[0] ? ext : "none");
    stdin_start(x);
}

/* Connection callback: a message. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    struct cx *x = weft_conn_route_user(c);
    connect_print_message(data, len, binary, x->binary_out, x->json);
    if (weft_timer_active(&x->linger)) /* still lingering: the quiet period starts again */
        weft_timer_start(x->loop, &x->linger, x->linger_ms);
}

/* Connection callback: the backlog drained; read stdin again. */
static void on_drain(struct weft_conn *c)
{
    struct cx *x = weft_conn_route_user(c);
    if (x->paused && x->in && !x->stdin_eof) {
        x->paused = false;
        weft_watch_set(x->in, WEFT_WATCH_READ);
    }
}

/* True for the closes that count as normal. */
static bool normal_close(uint16_t code, bool clean)
{
    return clean && (code == WEFT_CLOSE_NORMAL || code == WEFT_CLOSE_GOING_AWAY ||
                     code == WEFT_CLOSE_NO_STATUS);
}

/* Connection callback: closed. */
static void on_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean)
{
    struct cx *x = weft_conn_route_user(c);
    x->closed_seen = true;
    weft_timer_stop(&x->linger);
    x->close_code = code;
    x->close_clean = clean;
    if (x->in && !x->stdin_eof) weft_watch_set(x->in, 0);
    if (x->failed)
        return; /* on_error already said why (a protocol error by the server): one line */
    if (normal_close(code, clean))
        info(x, "closed (%u%s%.*s)", code, reason_len ? " " : "", (int)reason_len,
             reason ? reason : "");
    else if (!clean && code == WEFT_CLOSE_ABNORMAL)
        fprintf(stderr, "weft connect: connection lost (no close frame)\n");
    else
        fprintf(stderr, "weft connect: connection closed with %u%s%.*s%s\n", code,
                reason_len ? " " : "", (int)reason_len, reason ? reason : "",
                clean ? "" : " (close handshake not completed)");
}

/* Client callback: an attempt failed, or the server broke the protocol after the open (then
 * on_close follows and prints nothing more). */
static void on_error(struct weft_client *cl, int err, const char *reason, int status)
{
    (void)err;
    (void)status;
    struct cx *x = weft_client_user(cl);
    x->failed = true;
    fprintf(stderr, "weft connect: %s\n", reason);
}

/* Client callback: another attempt is coming. */
static void on_reconnecting(struct weft_client *cl, unsigned attempt, uint32_t delay_ms)
{
    struct cx *x = weft_client_user(cl);
    x->failed = false;
    x->closed_seen = false;
    info(x, "reconnecting: attempt %u in %u ms", attempt, delay_ms);
}

/* Client callback: no more attempts. */
static void on_end(struct weft_client *cl)
{
    struct cx *x = weft_client_user(cl);
    weft_loop_stop(x->loop);
}

/* Signal handler (on the loop): first SIGINT/SIGTERM closes normally, the second stops. */
static void on_signal(int signo, void *arg)
{
    (void)signo;
    struct cx *x = arg;
    if (x->signals++ == 0)
        weft_client_close(x->cl, WEFT_CLOSE_NORMAL, NULL);
    else
        weft_loop_stop(x->loop);
}

/* Appends src to a comma-separated list in buf. Returns false if it does not fit. */
static bool list_add(char *buf, size_t cap, const char *src)
{
    size_t n = strlen(buf);
    int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", src);
    return w >= 0 && (size_t)w < cap - n;
}

/* Reports a usage error (one line with a hint to --help) and returns 2. */
#define usage_error(...) cli_usage_error("connect", __VA_ARGS__)

/* Entry point of `weft connect`; returns the exit status. */
int cmd_connect(int argc, char **argv)
{
    enum {
        O_HEADER = 1,
        O_SUBPROTO,
        O_ORIGIN,
        O_BINARY,
        O_BINARY_OUT,
        O_RECONNECT,
        O_MAX_ATTEMPTS,
        O_PING,
        O_MAX_MESSAGE,
        O_CONNECT_TIMEOUT,
        O_QUIET,
        O_HELP,
        O_CACERT,
        O_INSECURE,
        O_DEFLATE,
        O_JSON,
        O_LINGER
    };
    static const struct option longopts[] = {
        {"header", required_argument, NULL, O_HEADER},
        {"subprotocol", required_argument, NULL, O_SUBPROTO},
        {"origin", required_argument, NULL, O_ORIGIN},
        {"binary", no_argument, NULL, O_BINARY},
        {"binary-out", no_argument, NULL, O_BINARY_OUT},
        {"reconnect", no_argument, NULL, O_RECONNECT},
        {"max-attempts", required_argument, NULL, O_MAX_ATTEMPTS},
        {"ping-interval", required_argument, NULL, O_PING},
        {"max-message", required_argument, NULL, O_MAX_MESSAGE},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
        {"quiet", no_argument, NULL, O_QUIET},
        {"cacert", required_argument, NULL, O_CACERT},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"deflate", no_argument, NULL, O_DEFLATE},
        {"json", no_argument, NULL, O_JSON},
        {"linger", required_argument, NULL, O_LINGER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    static char headers[HEADERS_MAX], protocols[1024];
    headers[0] = protocols[0] = '\0';
    struct cx x;
    memset(&x, 0, sizeof x);
    x.linger_ms = LINGER_DEFAULT_MS;
    struct weft_client_options o;
    memset(&o, 0, sizeof o);
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
        switch (opt) {
        case O_HEADER: {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg)
                return usage_error("--header needs 'Name: value', got '%s'", optarg);
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strlen(headers);
            int w = snprintf(headers + n, sizeof headers - n, "%.*s: %s\r\n", (int)(colon - optarg),
                             optarg, v);
            if (w < 0 || (size_t)w >= sizeof headers - n)
                return usage_error("too many headers (at '%s')", optarg);
            break;
        }
        case O_SUBPROTO:
            if (!*optarg || !list_add(protocols, sizeof protocols, optarg))
                return usage_error("bad --subprotocol '%s'", optarg);
            break;
        case O_ORIGIN:
            o.origin = optarg;
            break;
        case O_BINARY:
            x.binary_in = true;
            break;
        case O_BINARY_OUT:
            x.binary_out = true;
            break;
        case O_RECONNECT:
            x.reconnect = true;
            break;
        case O_MAX_ATTEMPTS: {
            uint64_t v;
            if (cli_arg_count("connect", "max-attempts", optarg, 1, 1000000, &v)) return 2;
            o.max_attempts = (unsigned)v;
            break;
        }
        case O_PING:
            if (cli_arg_duration("connect", "ping-interval", optarg, 0, &o.ping_interval_ms))
                return 2;
            break;
        case O_MAX_MESSAGE:
            if (cli_arg_size("connect", "max-message", optarg, 1, UINT64_MAX, &o.max_message))
                return 2;
            break;
        case O_CONNECT_TIMEOUT:
            if (cli_arg_duration("connect", "connect-timeout", optarg, 1, &o.connect_timeout_ms))
                return 2;
            o.handshake_timeout_ms = o.connect_timeout_ms;
            break;
        case O_CACERT:
            o.tls_cacert_file = optarg;
            break;
        case O_INSECURE:
            o.tls_insecure = true;
            break;
        case O_DEFLATE:
            o.deflate.enabled = true;
            break;
        case O_JSON:
            x.json = true;
            break;
        case O_LINGER:
            if (cli_arg_duration("connect", "linger", optarg, 0, &x.linger_ms)) return 2;
            break;
        case 'q':
        case O_QUIET:
            x.quiet = true;
            break;
        case 'h':
        case O_HELP:
            fputs(connect_usage, stdout);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "missing URL" : "more than one URL");
    x.url = argv[optind];
    struct weft_url u;
    const char *why;
    if (weft_url_parse(x.url, &u, &why) != WEFT_OK) return usage_error("bad URL: %s", why);
    if (u.tls && o.tls_insecure) /* even with --quiet: the connection is not authenticated */
        fputs("weft connect: warning: --insecure: the server's certificate and name are not "
              "verified\n",
              stderr);

    x.tty = isatty(0);
    o.headers = headers[0] ? headers : NULL;
    o.protocols = protocols[0] ? protocols : NULL;
    o.handlers.on_open = on_open;
    o.handlers.on_message = on_message;
    o.handlers.on_drain = on_drain;
    o.handlers.on_close = on_close;
    o.user = &x;
    o.on_error = on_error;
    o.on_reconnecting = on_reconnecting;
    o.on_end = on_end;
    o.reconnect = x.reconnect;

    signal(SIGPIPE, SIG_IGN);
    x.loop = weft_loop_new();
    if (!x.loop) {
        fprintf(stderr, "weft connect: cannot create the event loop: %s\n", strerror(errno));
        return 1;
    }
    weft_loop_on_signal(x.loop, SIGINT, on_signal, &x);
    weft_loop_on_signal(x.loop, SIGTERM, on_signal, &x);
    int err;
    x.cl = weft_connect(x.loop, x.url, &o, &err);
    if (!x.cl) {
        fprintf(stderr, "weft connect: %s\n",
                err == WEFT_ERR_INVAL ? "bad header, origin or subprotocol"
                : err == WEFT_ERR_TLS ? weft_tls_last_error()
                                      : weft_strerror(err));
        weft_loop_free(x.loop);
        return err == WEFT_ERR_INVAL ? 2 : 1;
    }
    weft_loop_run(x.loop);
    weft_timer_stop(&x.linger);
    int status = x.opened && x.closed_seen && normal_close(x.close_code, x.close_clean) ? 0 : 1;
    if (x.in) weft_watch_free(x.in);
    weft_client_free(x.cl);
    for (int i = 0; i < 3; i++) /* release what the watch and the client left to the loop */
        weft_loop_poll(x.loop, 10);
    weft_loop_free(x.loop);
    free(x.line);
    return status;
}
