/*
 * options.c — the command line of `weft bench`: usage, flags into struct options (sizes,
 * durations and counts in the grammar shared with serve and connect: cli/args.c), the URL
 * (weft_url_parse: ws:// or wss://, IPv6 literals in brackets) and the checks between flags.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

#include "cli/cli.h"

#include "cli/bench/bench.h"

/* Prints the usage text. */
static void usage(FILE *f)
{
    fputs("usage: weft bench [options] URL        URL: ws://HOST:PORT/PATH or wss://... (HOST a\n"
          "                                       name, an IPv4 address or [IPv6]; e.g.\n"
          "                                       ws://127.0.0.1:8080/echo, ws://[::1]:8080/echo)\n"
          "\n"
          "A WebSocket load generator (one thread, its own epoll loop).\n"
          "\n"
          "modes (--mode, default echo):\n"
          "  echo       every connection keeps -w messages in flight (or -r: open loop)\n"
          "  room       all connections join the URL's room (/ws/NAME); the first --senders send,\n"
          "             every delivery is counted at every member; -w messages in flight per\n"
          "             sender, a message leaving the window when all other members have it\n"
          "  hub        room over the /hub JSON protocol (URL path /hub, the default): every\n"
          "             connection joins --room, traffic starts once every join is answered;\n"
          "             the first --senders publish "
          "{\"t\":..,\"s\":..,\"w\":..,\"g\":..,\"p\":\"..\"}\n"
          "             as \"data\" (text), every other member's delivery is counted (the\n"
          "             publisher gets none: the server excludes it); -w as in room mode;\n"
          "             error replies count as protocol errors\n"
          "  connect    -c concurrent open / 101 / close-handshake cycles: handshakes per second\n"
          "  idle       open -c connections and hold them -d seconds; with --server-pid the\n"
          "             server's RSS per connection\n"
          "\n"
          "options:\n"
          "  -c, --connections N   connections (default 100; connect mode: concurrent cycles, 10)\n"
          "  -s, --size BYTES      payload size (default 64; room needs 14 or more; latency 8;\n"
          "                        hub: size of \"data\", at least its fields, about 45 bytes)\n"
          "  -w, --window W        messages in flight per connection / sender (default 8; room\n"
          "                        and hub 1)\n"
          "  -r, --rate R          open loop: R messages/s in total (latency from the intended\n"
          "                        send time); 0 = closed loop (default)\n"
          "  -k, --senders K       room, hub: members that send (default 1)\n"
          "      --room NAME       hub: the room joined (default bench)\n"
          "      --history-rate R  hub: R requests/s in total, from the members in turn,\n"
          "                        alternating \"history\" and a re-join (\"join\"), both\n"
          "                        with \"since\" = the member's last seen seq - 50; the kept\n"
          "                        messages sent again are counted apart (replayed)\n"
          "      --read-rate BYTES slow readers: each open connection reads at most BYTES\n"
          "                        bytes/s (16 KiB receive buffer), so the server's queue\n"
          "                        fills; 0 = read everything (default)\n"
          "  -d, --duration SEC    measured seconds (default 5)\n"
          "      --warmup SEC      traffic before measuring (default 1)\n"
          "      --ramp N          open N connections per second (default 0 = as fast as\n"
          "                        possible, at most 256 handshakes at once)\n"
          "      --text            send text messages\n"
          "      --binary          send binary messages (default)\n"
          "      --local-addr A[-B]  bind source addresses A..B round-robin (e.g.\n"
          "                        127.0.0.1-127.0.0.50), for more than ~28k connections\n"
          "      --server-pid PID  report the server's CPU per message (/proc/PID/stat, utime +\n"
          "                        stime over the measured window) and its RSS\n"
          "      --json            print one JSON object on stdout instead of the text summary\n"
          "      --payload KIND    abc (a-z pattern, default), json (JSON-like records) or\n"
          "                        random (random printable bytes)\n"
          "      --deflate         offer permessage-deflate; when accepted, every data message\n"
          "                        is sent compressed and received ones are inflated\n"
          "      --accept-masked   accept masked frames from the server (bench/peers/raw_echo\n"
          "                        echoes the client's frames as they are)\n"
          "      --tls             TLS (as with a wss:// URL)\n"
          "      --cacert FILE     TLS: trust the CAs in FILE (PEM) instead of the system's\n"
          "      --insecure        TLS: no certificate verification (self-signed servers)\n"
          "  -h, --help            this text\n"
          "\n"
          "JSON keys: mode url connections opened peak_open senders members size window rate\n"
          "  binary tls deflate_conns warmup_s duration_s messages sent msgs_per_s mb_per_s\n"
          "  latency_us{count min mean p50\n"
          "  p90 p99 p999 max} errors{total connect handshake timeout protocol closed io\n"
          "  bad_message lost backlog} read_rate history_requests history_replies replayed\n"
          "  client_cpu_pct generator_bound server (null without\n"
          "  --server-pid, else {pid cpu_pct cpu_us_per_msg rss_before_kib rss_kib\n"
          "  rss_per_conn_kib}).\n"
          "messages = echoes (echo), deliveries (room, hub), open+close cycles (connect), 0\n"
          "  (idle); members = room / hub members when traffic started (hub: joins answered).\n"
          "  In hub mode sent counts publishes and mb_per_s the whole deliveries (JSON).\n"
          "BYTES: 512, 64k, 1m or 1MiB (powers of 1024); SEC: seconds (1.5) or 500ms, 2s, 1m;\n"
          "  a non-zero duration below 1 ms is 1 ms (the forms of weft serve and connect).\n"
          "A live progress line goes to stderr on a terminal. Exit status: 0 done (errors are\n"
          "reported, not fatal), 1 nothing could be measured, 2 bad usage.\n",
          f);
}

/* Reports a usage error (one line with a hint to --help) and returns 2. */
#define usage_error(...) cli_usage_error("bench", __VA_ARGS__)

/* Reports a bad option value and returns 2. */
static int bad_value(const char *opt, const char *val, const char *why)
{
    return usage_error("bad value '%s' for --%s: %s", val, opt, why);
}

/* Parses a finite number in [lo, hi]. */
static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* True if s is a /hub room name: 1 to 128 bytes of A-Z a-z 0-9 _ - . : @ (JSON-safe). */
static bool room_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("_-.:@", s[i]) && !(s[i] >= 'a' && s[i] <= 'z') &&
            !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    return true;
}

/* Parses "A" or "A-B" (IPv4, A <= B, at most 65536 addresses). */
static bool parse_local(const char *s, uint32_t *lo, uint32_t *hi)
{
    char a[64], bb[64];
    const char *dash = strchr(s, '-');
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    if (al == 0 || al >= sizeof a) return false;
    memcpy(a, s, al);
    a[al] = '\0';
    snprintf(bb, sizeof bb, "%s", dash ? dash + 1 : a);
    struct in_addr x, y;
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, bb, &y) != 1) return false;
    *lo = ntohl(x.s_addr);
    *hi = ntohl(y.s_addr);
    return *lo != 0 && *lo <= *hi && *hi - *lo < 65536;
}

/* Splits the URL with weft_url_parse (ws:// or wss://, IPv6 literals in brackets) into
 * b->host, b->port, b->path (the mode's default when the URL has none) and the Host header.
 * The address is resolved later (resolve.c). Returns 0, or 2 for a malformed URL (message
 * printed). */
int parse_url(struct bench *b, const char *url)
{
    struct weft_url u;
    const char *why = NULL;
    if (weft_url_parse(url, &u, &why) != WEFT_OK)
        return usage_error("bad URL '%s': %s", url, why ? why : "malformed");
    if (u.host_len == 0 || u.host_len >= sizeof b->host)
        return usage_error("bad host in '%s'", url);
    if (u.tls) b->o.tls = true;
    memcpy(b->host, u.host, u.host_len);
    b->host[u.host_len] = '\0';
    b->port = u.port;
    if (u.target_len >= sizeof b->path) return usage_error("path too long in '%s'", url);
    if (u.target_len) {
        memcpy(b->path, u.target, u.target_len);
        b->path[u.target_len] = '\0';
    } else {
        snprintf(b->path, sizeof b->path, "%s", b->o.mode == MODE_HUB ? "/hub" : "/");
    }
    bool v6 = strchr(b->host, ':') != NULL;
    uint16_t dflt = b->o.tls ? 443 : 80;
    snprintf(b->hosthdr, sizeof b->hosthdr, v6 ? "[%s]" : "%s", b->host);
    if (b->port != dflt) {
        size_t n = strlen(b->hosthdr);
        snprintf(b->hosthdr + n, sizeof b->hosthdr - n, ":%u", b->port);
    }
    return 0;
}

enum {
    OPT_WARMUP = 256,
    OPT_RAMP,
    OPT_TEXT,
    OPT_BINARY,
    OPT_LOCAL,
    OPT_SERVER_PID,
    OPT_JSON,
    OPT_DEFLATE,
    OPT_ACCEPT_MASKED,
    OPT_TLS,
    OPT_MODE,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_PAYLOAD,
    OPT_ROOM,
    OPT_READ_RATE,
    OPT_HISTORY_RATE,
};

/* Parses the command line into b->o. Returns -1 to go on, or an exit status. */
int parse_options(struct bench *b, int argc, char **argv)
{
    static const struct option longs[] = {
        {"mode", required_argument, NULL, OPT_MODE},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"senders", required_argument, NULL, 'k'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"text", no_argument, NULL, OPT_TEXT},
        {"binary", no_argument, NULL, OPT_BINARY},
        {"local-addr", required_argument, NULL, OPT_LOCAL},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"json", no_argument, NULL, OPT_JSON},
        {"deflate", no_argument, NULL, OPT_DEFLATE},
        {"accept-masked", no_argument, NULL, OPT_ACCEPT_MASKED},
        {"tls", no_argument, NULL, OPT_TLS},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"room", required_argument, NULL, OPT_ROOM},
        {"read-rate", required_argument, NULL, OPT_READ_RATE},
        {"history-rate", required_argument, NULL, OPT_HISTORY_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options *o = &b->o;
    *o = (struct options){.mode = MODE_ECHO,
                          .conns = -1,
                          .size = 64,
                          .window = -1,
                          .senders = 1,
                          .duration = 5,
                          .warmup = 1,
                          .binary = true};
    optind = 1;
    opterr = 0;
    int ch;
    uint64_t u;
    uint32_t ms;
    while ((ch = getopt_long(argc, argv, ":c:s:w:r:k:d:h", longs, NULL)) != -1) {
        switch (ch) {
        case OPT_MODE:
            if (!strcmp(optarg, "echo"))
                o->mode = MODE_ECHO;
            else if (!strcmp(optarg, "room"))
                o->mode = MODE_ROOM;
            else if (!strcmp(optarg, "connect"))
                o->mode = MODE_CONNECT;
            else if (!strcmp(optarg, "idle"))
                o->mode = MODE_IDLE;
            else if (!strcmp(optarg, "hub"))
                o->mode = MODE_HUB;
            else
                return bad_value("mode", optarg, "expected echo, room, hub, connect or idle");
            break;
        case 'c':
            if (cli_arg_count("bench", "connections", optarg, 1, 10000000, &u)) return 2;
            o->conns = (long)u;
            break;
        case 's':
            if (cli_arg_size("bench", "size", optarg, 0, MAX_SIZE, &u)) return 2;
            o->size = (long)u;
            break;
        case 'w':
            if (cli_arg_count("bench", "window", optarg, 1, MAX_WINDOW, &u)) return 2;
            o->window = (long)u;
            break;
        case 'r':
            if (!parse_double(optarg, 0, 1e9, &o->rate))
                return bad_value("rate", optarg, "expected messages per second (0 = closed loop)");
            break;
        case 'k':
            if (cli_arg_count("bench", "senders", optarg, 1, MAX_SENDERS, &u)) return 2;
            o->senders = (long)u;
            break;
        case 'd':
            if (cli_arg_duration("bench", "duration", optarg, 1, &ms)) return 2;
            o->duration = ms / 1000.0;
            break;
        case OPT_WARMUP:
            if (cli_arg_duration("bench", "warmup", optarg, 0, &ms)) return 2;
            o->warmup = ms / 1000.0;
            break;
        case OPT_RAMP:
            if (!parse_double(optarg, 0, 1e9, &o->ramp))
                return bad_value("ramp", optarg, "expected connections per second (0 = no ramp)");
            break;
        case OPT_TEXT:
            o->binary = false;
            break;
        case OPT_BINARY:
            o->binary = true;
            o->binary_given = true;
            break;
        case OPT_LOCAL:
            if (!parse_local(optarg, &o->local_lo, &o->local_hi))
                return bad_value("local-addr", optarg, "expected IPv4 A or A-B (A <= B)");
            break;
        case OPT_SERVER_PID:
            if (cli_arg_count("bench", "server-pid", optarg, 1, 0x7fffffff, &u)) return 2;
            o->server_pid = (long)u;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_DEFLATE:
            o->deflate = true;
            break;
        case OPT_ACCEPT_MASKED:
            o->accept_masked = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_CACERT:
            o->cacert = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_PAYLOAD:
            if (!strcmp(optarg, "abc"))
                o->payload = 0;
            else if (!strcmp(optarg, "json"))
                o->payload = 1;
            else if (!strcmp(optarg, "random"))
                o->payload = 2;
            else
                return bad_value("payload", optarg, "expected abc, json or random");
            break;
        case OPT_ROOM:
            if (!room_name_ok(optarg))
                return bad_value("room", optarg,
                                 "expected 1 to 128 bytes of A-Z a-z 0-9 _ - . : @");
            o->room = optarg;
            break;
        case OPT_READ_RATE:
            if (cli_arg_size("bench", "read-rate", optarg, 0, (uint64_t)1e12, &u)) return 2;
            o->read_rate = (double)u;
            break;
        case OPT_HISTORY_RATE:
            if (!parse_double(optarg, 0, 1e6, &o->history_rate))
                return bad_value("history-rate", optarg, "expected requests per second");
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256) return usage_error("unknown option '-%c'", optopt);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "missing URL" : "more than one URL");
    o->url = argv[optind];
    if (o->conns < 0) o->conns = o->mode == MODE_CONNECT ? 10 : 100;
    if (o->window < 0) o->window = o->mode == MODE_ROOM || o->mode == MODE_HUB ? 1 : 8;
    if (o->history_rate > 0 && o->mode != MODE_HUB) {
        return usage_error("--history-rate is for --mode hub");
    }
    if (o->room && o->mode != MODE_HUB) {
        return usage_error("--room is for --mode hub (room mode: the URL's path)");
    }
    if (o->mode == MODE_HUB) {
        if (o->binary_given) {
            return usage_error("hub mode sends JSON text: --binary does not apply");
        }
        o->binary = false;
        if (!o->room) o->room = "bench";
    }
    if (o->mode == MODE_ROOM || o->mode == MODE_HUB) {
        if (o->mode == MODE_ROOM && o->size < ROOM_HDR) {
            return usage_error("room mode needs -s %d or more (the payload carries a "
                               "timestamp, the sender and the window slot)",
                               ROOM_HDR);
        }
        if (o->conns < 2) {
            return usage_error("%s mode needs at least 2 connections", mode_names[o->mode]);
        }
        if (o->senders > o->conns) {
            return usage_error("--senders %ld is more than -c %ld", o->senders, o->conns);
        }
    }
    return -1;
}
