/*
 * config.c — the options of `weft serve`: one table from which flags (getopt_long), WEFT_*
 * environment variables, the key = value config file (inih), --print-config and --help are
 * all generated, so an option is added in exactly one place.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/internal.h"
#include "hub/units.h"

/* How an option's text is parsed and printed. */
enum opt_type {
    T_STR,         /* char * (owned) */
    T_PORT,        /* uint16_t */
    T_BOOL,        /* bool: true/false/yes/no/on/off/1/0 */
    T_FLAG,        /* bool, a flag without a value (true); BOOL text in the env and the file */
    T_BYTES,       /* uint64_t, k/m/g suffixes, > 0 */
    T_BYTES0,      /* as T_BYTES, or 0 = off */
    T_SECONDS,     /* uint32_t milliseconds from (fractional) seconds */
    T_SECONDS_POS, /* as T_SECONDS, but > 0 */
    T_U32,         /* uint32_t */
    T_SIZE32,      /* uint32_t, a size (k/m/g suffixes), 0 allowed */
    T_DOUBLE,      /* double >= 0 */
    T_POLICY,      /* int: drop|close */
    T_LEVEL,       /* int: debug|info|warn|error */
    T_FORMAT,      /* enum hub_log_format: json|text */
    T_ORIGINS,     /* repeatable; comma-separated in the environment and the file */
};

struct opt {
    const char *name; /* flag without "--"; env WEFT_<NAME>; file key */
    enum opt_type type;
    size_t off;      /* offset in struct hub_config */
    const char *arg; /* placeholder in --help */
    const char *help;
};

#define OFF(f) offsetof(struct hub_config, f)

static const struct opt opts[] = {
    {"host", T_STR, OFF(host), "H", "address to listen on (\"::\" for IPv6)"},
    {"port", T_PORT, OFF(port), "P", "TCP port, 0 = any free port"},
    {"unix", T_STR, OFF(unix_path), "PATH", "listen on a Unix domain socket instead of TCP"},
    {"workers", T_U32, OFF(workers), "N",
     "worker threads, each with its own event loop and listener on the port\n"
     "(SO_REUSEPORT; one worker with --unix); default: the number of cores"},
    {"io-backend", T_STR, OFF(io_backend), "NAME",
     "the event loops' I/O backend: epoll or uring (io_uring; where the kernel refuses\n"
     "it, epoll with a warning in the log)"},
    {"redis", T_STR, OFF(redis), "URL",
     "redis://host[:port][/db]: share rooms with other nodes through Redis pub/sub\n"
     "(seq, history and presence kept in Redis); default: in-process only"},
    {"reuse-port", T_BOOL, OFF(reuse_port), "BOOL",
     "SO_REUSEPORT, so a new process can bind the port while this one drains"},
    {"tls-cert", T_STR, OFF(tls_cert_file), "FILE",
     "serve wss:// (TLS 1.2/1.3) with this PEM certificate (+ chain); SIGHUP reloads it"},
    {"tls-key", T_STR, OFF(tls_key_file), "FILE", "the PEM private key of --tls-cert"},
    {"deflate-context-takeover", T_BOOL, OFF(deflate_context_takeover), "BOOL",
     "keep the compression window between messages (better ratio, about\n"
     "2^(window+2) + 2^(mem-level+9) bytes per direction per connection)"},
    {"deflate-window-bits", T_U32, OFF(deflate_window_bits), "N",
     "LZ77 window of both directions, 9..15 (9 + --deflate-mem-level 1 = memory-lean)"},
    {"deflate-mem-level", T_U32, OFF(deflate_mem_level), "N",
     "zlib memLevel of our compressor, 1..9"},
    {"deflate-level", T_U32, OFF(deflate_level), "N",
     "zlib compression level of what we send, 0..9 (1: fastest, 6: zlib's default, 9: smallest)"},
    {"deflate-threshold", T_SIZE32, OFF(deflate_threshold), "BYTES",
     "messages shorter than this are sent uncompressed"},
    {"max-message", T_BYTES, OFF(max_message), "BYTES", "largest message, closed with 1009 beyond"},
    {"memory-budget", T_BYTES0, OFF(memory_budget), "BYTES",
     "bytes peers can make the process hold in all: messages being reassembled and\n"
     "output queued for slow readers; past it new messages are refused and the largest\n"
     "holders closed, with 1013 (try again later); 0 = no budget"},
    {"max-backpressure", T_BYTES, OFF(max_backpressure), "BYTES",
     "unsent bytes per connection before the slow-consumer policy applies"},
    {"slow-policy", T_POLICY, OFF(slow_policy), "drop|close",
     "what to do with a slow consumer: drop new messages, or close it with 1008"},
    {"idle-timeout", T_SECONDS, OFF(idle_timeout_ms), "S",
     "close a connection after S seconds without traffic, 0 = never"},
    {"ping-interval", T_SECONDS, OFF(ping_interval_ms), "S",
     "ping a peer silent for S seconds, 0 = never"},
    {"handshake-timeout", T_SECONDS_POS, OFF(handshake_timeout_ms), "S",
     "drop clients that do not complete the HTTP handshake within S seconds"},
    {"shutdown-timeout", T_SECONDS, OFF(shutdown_ms), "S",
     "on SIGINT/SIGTERM, wait up to S seconds for the close handshakes (1001)"},
    {"log-level", T_LEVEL, OFF(log_level), "LEVEL", "debug|info|warn|error"},
    {"log-format", T_FORMAT, OFF(log_format), "FMT",
     "json (one object per line) or text (\"weft: LEVEL: [ID] message\")"},
    {"allow-origin", T_ORIGINS, OFF(origins), "ORIGIN",
     "allowed Origin (repeatable; exact, or *.example.com / https://*.example.com;\n"
     "'*' allows any); the same origin as Host and no Origin are always allowed,\n"
     "others get 403"},
    {"auth-secret", T_STR, OFF(auth_secret), "SECRET",
     "require an HS256 JWT signed with SECRET (Authorization: Bearer, ?token=,\n"
     "or a \"bearer.TOKEN\" subprotocol); others get 401"},
    {"auth-allow-no-exp", T_FLAG, OFF(auth_allow_no_exp), "",
     "accept tokens without an exp claim (they never expire); by default they get 401"},
    {"auth-secret-file", T_STR, OFF(auth_secret_file), "FILE",
     "read the JWT secret from FILE (first line)"},
    {"revoked", T_STR, OFF(revoked_file), "FILE",
     "revoked token ids (jti), one per line; reloaded when the file changes"},
    {"max-connections", T_U32, OFF(max_connections), "N",
     "open WebSocket connections in all, 0 = unlimited (503 beyond)"},
    {"max-connections-per-ip", T_U32, OFF(max_connections_per_ip), "N",
     "open connections per client IP, 0 = unlimited (503 beyond)"},
    {"retry-after", T_U32, OFF(retry_after_s), "S", "Retry-After seconds sent with 503"},
    {"rate", T_DOUBLE, OFF(rate), "N",
     "messages per second per connection (token bucket), 0 = unlimited;\n"
     "exceeding it closes with 1008"},
    {"burst", T_DOUBLE, OFF(burst), "N", "token bucket size, 0 = 2 x rate"},
    {"handshake-rate", T_DOUBLE, OFF(handshake_rate), "N",
     "new WebSocket upgrades per second per client IP (token bucket), 0 = unlimited;\n"
     "beyond it: 429 with Retry-After (the seconds until the next is allowed)"},
    {"handshake-burst", T_DOUBLE, OFF(handshake_burst), "N",
     "handshakes one IP may start at once, 0 = 2 x handshake-rate"},
    {"max-rooms", T_U32, OFF(max_rooms), "N", "rooms one /hub connection may join"},
    {"history-size", T_U32, OFF(history_size), "N", "messages kept per /hub room for recovery"},
    {"history-age", T_SECONDS, OFF(history_age_ms), "S",
     "drop kept messages older than S seconds, 0 = never"},
    {"history-max-message", T_BYTES, OFF(history_max_message), "BYTES",
     "a /hub delivery larger than this is delivered but not kept in the history"},
    {"history-memory", T_BYTES, OFF(history_memory), "BYTES",
     "bytes kept in all /hub histories of the process (each of N workers gets 1/N);\n"
     "beyond it the oldest messages of the largest rooms are evicted"},
    {"max-total-rooms", T_U32, OFF(max_total_rooms), "N",
     "rooms (/hub and /ws/<room>) the process holds, 0 = unlimited; a join or publish\n"
     "creating one more gets the error rooms_full, a raw room 503"},
    {"web-root", T_STR, OFF(web_root), "DIR",
     "serve the web page (GET /) from DIR; default: the web/ directory shipped with weft\n"
     "(<prefix>/share/weft/web next to the binary, else the source tree's web/)"},
    {"deflate", T_BOOL, OFF(deflate), "BOOL",
     "permessage-deflate (RFC 7692); lean by default: no context takeover in either\n"
     "direction (see --deflate-context-takeover)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

/* Getopt ids of the table entries start here (the CLI uses lower values for its own). */
#define OPT_BASE 512

/* Sets every field of cfg to its default. */
void hub_config_defaults(struct hub_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = strdup("0.0.0.0");
    cfg->port = 8080;
    /* epoll until io_uring passes every interop test (README, The library) */
    cfg->io_backend = strdup("epoll");
    cfg->max_message = 1u * 1024 * 1024;
    cfg->memory_budget = 512u * 1024 * 1024;
    cfg->max_backpressure = 1u * 1024 * 1024;
    cfg->slow_policy = WEFT_SLOW_DROP;
    cfg->deflate_window_bits = 15;
    cfg->deflate_mem_level = 8;
    cfg->deflate_level = 1;
    cfg->deflate_threshold = 64;
    cfg->handshake_timeout_ms = 10000;
    cfg->shutdown_ms = 5000;
    cfg->log_level = WEFT_LOG_INFO;
    cfg->log_format = HUB_LOG_JSON;
    cfg->retry_after_s = 1;
    cfg->max_rooms = 64;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = ncpu < 1 ? 1u : ncpu > 256 ? 256u : (uint32_t)ncpu;
    cfg->history_size = 100;
    cfg->history_age_ms = 3600u * 1000;
    cfg->history_max_message = 64u * 1024;
    cfg->history_memory = 256u * 1024 * 1024;
    cfg->max_total_rooms = 100000;
    cfg->deflate = true;
}

/* Deep copy; see hub.h. */
int hub_config_copy(struct hub_config *dst, const struct hub_config *src)
{
    *dst = *src;
    int rc = 0;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == T_STR) {
            char **p = (char **)((char *)dst + opts[i].off);
            if (*p && !(*p = strdup(*p))) rc = -1;
        }
    for (size_t i = 0; i < src->norigins; i++)
        if (!(dst->origins[i] = strdup(src->origins[i]))) rc = -1;
    if (src->config_file && !(dst->config_file = strdup(src->config_file))) rc = -1;
    return rc;
}

/* Frees the strings of cfg. */
void hub_config_free(struct hub_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == T_STR) {
            char **p = (char **)((char *)cfg + opts[i].off);
            free(*p);
            *p = NULL;
        }
    for (size_t i = 0; i < cfg->norigins; i++)
        free(cfg->origins[i]);
    cfg->norigins = 0;
    free(cfg->config_file);
    cfg->config_file = NULL;
}

/* Sizes, durations, counts and booleans follow the grammar shared with `weft connect` and
 * `weft bench` (units.h). */

/* Parses a byte count (units_size, > 0). */
static bool parse_bytes(const char *s, uint64_t *out)
{
    return units_size(s, 1, UINT64_MAX, out) == UNITS_OK;
}

/* Parses a duration (units_duration_ms: seconds by default, ms/s/m/h) into milliseconds. */
static bool parse_seconds(const char *s, uint32_t *ms)
{
    return units_duration_ms(s, 0, UNITS_DURATION_MAX_MS, ms) == UNITS_OK;
}

/* Parses an unsigned decimal up to max (units_count). */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    uint64_t v;
    if (units_count(s, 0, max, &v) != UNITS_OK) return false;
    *out = (unsigned long)v;
    return true;
}

/* Looks an option up by name ('_' matches '-'). */
static const struct opt *find_opt(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *a = opts[i].name, *b = key;
        while (*a && (*a == *b || (*a == '-' && *b == '_')))
            a++, b++;
        if (!*a && !*b) return &opts[i];
    }
    return NULL;
}

/* Formats an error message into err. Returns -1. */
static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends one origin pattern (trimmed). Returns 0 or -1. */
static int add_origin(struct hub_config *cfg, const char *s, size_t len, char *err, size_t cap)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len) return 0;
    if (cfg->norigins == HUB_MAX_ORIGINS)
        return fail(err, cap, "at most %d origins", HUB_MAX_ORIGINS);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == ',')
            return fail(err, cap, "an origin has no spaces or commas");
    cfg->origins[cfg->norigins] = strndup(s, len);
    if (!cfg->origins[cfg->norigins]) return fail(err, cap, "out of memory");
    cfg->norigins++;
    return 0;
}

/* Sets an option from text; see hub.h. Returns 0, 1 (unknown key) or -1 (bad value). */
int hub_config_set(struct hub_config *cfg, const char *key, const char *value, char *err,
                   size_t cap)
{
    const struct opt *o = find_opt(key);
    if (!o) return 1;
    void *p = (char *)cfg + o->off;
    unsigned long ul;
    uint64_t u64;
    uint32_t ms;
    switch (o->type) {
    case T_STR:
        /* Empty = unset (the default), as --print-config prints an unset option; only the
         * listening address must be given. */
        if (!*value && !strcmp(o->name, "host")) return fail(err, cap, "empty");
        free(*(char **)p);
        *(char **)p = *value ? strdup(value) : NULL;
        return 0;
    case T_PORT:
        if (!parse_uint(value, 65535, &ul))
            return fail(err, cap, "expected a number from 0 to 65535");
        *(uint16_t *)p = (uint16_t)ul;
        return 0;
    case T_BOOL:
    case T_FLAG:
        if (units_bool(value, (bool *)p) != UNITS_OK)
            return fail(err, cap, "expected true or false");
        return 0;
    case T_BYTES0:
        if (!strcmp(value, "0")) {
            *(uint64_t *)p = 0;
            return 0;
        }
        if (!parse_bytes(value, &u64)) return fail(err, cap, "expected a byte count (0 = off)");
        *(uint64_t *)p = u64;
        return 0;
    case T_BYTES:
        if (!parse_bytes(value, &u64) || (!strcmp(o->name, "max-backpressure") && u64 > SIZE_MAX))
            return fail(err, cap, "expected a positive byte count");
        *(uint64_t *)p = u64;
        return 0;
    case T_SECONDS:
    case T_SECONDS_POS:
        if (!parse_seconds(value, &ms) || (o->type == T_SECONDS_POS && ms == 0))
            return fail(err, cap,
                        o->type == T_SECONDS_POS ? "expected seconds (> 0)"
                                                 : "expected seconds (0 = never)");
        *(uint32_t *)p = ms;
        return 0;
    case T_U32:
        if (!parse_uint(value, UINT32_MAX, &ul))
            return fail(err, cap, "expected a non-negative integer");
        *(uint32_t *)p = (uint32_t)ul;
        return 0;
    case T_SIZE32:
        if (units_size(value, 0, UINT32_MAX, &u64) != UNITS_OK)
            return fail(err, cap, "expected a byte count (64, 1k, 1KiB; at most 4g - 1)");
        *(uint32_t *)p = (uint32_t)u64;
        return 0;
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(d) || d < 0 || d > 1e9)
            return fail(err, cap, "expected a non-negative number");
        *(double *)p = d;
        return 0;
    }
    case T_POLICY:
        if (!strcmp(value, "drop"))
            *(int *)p = WEFT_SLOW_DROP;
        else if (!strcmp(value, "close"))
            *(int *)p = WEFT_SLOW_CLOSE;
        else
            return fail(err, cap, "expected drop or close");
        return 0;
    case T_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(value, names[i])) {
                *(int *)p = i;
                return 0;
            }
        return fail(err, cap, "expected debug, info, warn or error");
    }
    case T_FORMAT:
        if (!strcmp(value, "json"))
            *(enum hub_log_format *)p = HUB_LOG_JSON;
        else if (!strcmp(value, "text"))
            *(enum hub_log_format *)p = HUB_LOG_TEXT;
        else
            return fail(err, cap, "expected json or text");
        return 0;
    case T_ORIGINS: {
        const char *s = value;
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (add_origin(cfg, s, len, err, cap) < 0) return -1;
            if (!comma) break;
            s = comma + 1;
        }
        return 0;
    }
    }
    return fail(err, cap, "unsupported option");
}

/* State of a config file load (inih callback). */
struct file_ctx {
    struct hub_config *cfg;
    char *err;
    size_t cap;
    int failed;
};

/* inih callback: one key = value. Returns 1 to go on, 0 to stop with an error. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *fc = user;
    if (fc->failed) /* inih goes on after an error and reports the first one's line: keep the
                       first message too */
        return 0;
    if (section && *section && strcmp(section, "serve")) {
        fail(fc->err, fc->cap, "unknown section [%s] (keys go at the top or under [serve])",
             section);
        fc->failed = 1;
        return 0;
    }
    char why[200];
    int r = hub_config_set(fc->cfg, name, value, why, sizeof why);
    if (r == 1) {
        fail(fc->err, fc->cap, "unknown key '%s'", name);
        fc->failed = 1;
        return 0;
    }
    if (r < 0) {
        fail(fc->err, fc->cap, "bad value '%s' for %s: %s", value, name, why);
        fc->failed = 1;
        return 0;
    }
    return 1;
}

/* Longest line inih reads whole (its fgets buffer holds the newline and the NUL too). */
#define LINE_MAX_BYTES (INI_MAX_LINE - 2)

/* Scans the file at path for what inih would misread: a NUL byte (it silently cuts the line
 * there, dropping what follows) or a line longer than it reads whole (it would cut it and read
 * the rest as a line of its own: "syntax error" on a line that is not there; found by
 * fuzz_config). Returns the number of the first such line (*nul tells which), or 0 (none, or
 * the file cannot be read: ini_parse says why). */
static int bad_line(const char *path, bool *nul)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int line = 1, found = 0, ch;
    size_t len = 0;
    while (!found && (ch = getc(f)) != EOF) {
        if (ch == '\n') {
            line++;
            len = 0;
        } else if (ch == '\0') {
            found = line;
            *nul = true;
        } else if (++len > LINE_MAX_BYTES) {
            found = line;
        }
    }
    fclose(f);
    return found;
}

/* Loads a key = value file; see hub.h. */
int hub_config_load_file(struct hub_config *cfg, const char *path, char *err, size_t cap)
{
    bool nul = false;
    int bad = bad_line(path, &nul);
    if (bad && nul) return fail(err, cap, "%s:%d: a NUL byte in the line", path, bad);
    if (bad) return fail(err, cap, "%s:%d: line longer than %d bytes", path, bad, LINE_MAX_BYTES);
    /* --allow-origin in a file replaces nothing: values accumulate like repeated flags. */
    struct file_ctx fc = {.cfg = cfg, .err = err, .cap = cap};
    char inner[300] = "";
    fc.err = inner;
    fc.cap = sizeof inner;
    int r = ini_parse(path, on_ini, &fc);
    if (r == -1) return fail(err, cap, "%s: %s", path, strerror(errno ? errno : ENOENT));
    if (r == -2) return fail(err, cap, "%s: out of memory", path);
    if (r > 0) return fail(err, cap, "%s:%d: %s", path, r, fc.failed ? inner : "syntax error");
    free(cfg->config_file);
    cfg->config_file = strdup(path);
    return 0;
}

/* Applies WEFT_* variables; see hub.h. */
int hub_config_load_env(struct hub_config *cfg, char *err, size_t cap)
{
    for (size_t i = 0; i < NOPTS; i++) {
        char var[64] = "WEFT_";
        size_t n = 5;
        for (const char *s = opts[i].name; *s && n < sizeof var - 1; s++)
            var[n++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
        var[n] = '\0';
        const char *v = getenv(var);
        if (!v) continue;
        if (opts[i].type == T_ORIGINS) { /* the environment replaces the file's list */
            for (size_t k = 0; k < cfg->norigins; k++)
                free(cfg->origins[k]);
            cfg->norigins = 0;
        }
        char why[200];
        if (hub_config_set(cfg, opts[i].name, v, why, sizeof why) < 0)
            return fail(err, cap, "bad value '%s' for %s: %s", v, var, why);
    }
    return 0;
}

/* Checks the configuration and reads the secret file; see hub.h. */
int hub_config_finish(struct hub_config *cfg, char *err, size_t cap)
{
    if (!cfg->auth_secret && cfg->auth_secret_file) {
        FILE *f = fopen(cfg->auth_secret_file, "r");
        if (!f)
            return fail(err, cap, "cannot read --auth-secret-file %s: %s", cfg->auth_secret_file,
                        strerror(errno));
        char line[1024];
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        if (ok) line[strcspn(line, "\r\n")] = '\0';
        if (!ok || !line[0])
            return fail(err, cap, "--auth-secret-file %s: empty", cfg->auth_secret_file);
        cfg->auth_secret = strdup(line);
        memset(line, 0, sizeof line);
    }
    if (cfg->auth_secret && strlen(cfg->auth_secret) < 16)
        return fail(err, cap, "--auth-secret: use at least 16 characters");
    if (!cfg->tls_cert_file != !cfg->tls_key_file)
        return fail(err, cap, "--tls-cert and --tls-key go together");
    if (cfg->deflate_window_bits < 9 || cfg->deflate_window_bits > 15)
        return fail(err, cap, "--deflate-window-bits: expected 9..15");
    if (cfg->deflate_mem_level < 1 || cfg->deflate_mem_level > 9)
        return fail(err, cap, "--deflate-mem-level: expected 1..9");
    if (cfg->deflate_level > 9) return fail(err, cap, "--deflate-level: expected 0..9");
    if (cfg->history_size > 100000) return fail(err, cap, "--history-size: at most 100000");
    if (cfg->workers == 0 || cfg->workers > 256)
        return fail(err, cap, "--workers: expected 1..256");
    enum weft_io_backend iob;
    if (cfg->io_backend && *cfg->io_backend &&
        weft_io_backend_parse(cfg->io_backend, &iob) != WEFT_OK)
        return fail(err, cap, "--io-backend: expected epoll or uring");
    if (cfg->max_rooms == 0) return fail(err, cap, "--max-rooms: at least 1");
    if (cfg->redis && !*cfg->redis) {
        free(cfg->redis);
        cfg->redis = NULL;
    }
    if (cfg->redis && broker_check_url(cfg->redis, err, cap) < 0) return -1;
    return 0;
}

/* Prints one option's current value into out (no newline). */
static void format_value(const struct hub_config *cfg, const struct opt *o, char *out, size_t cap)
{
    const void *p = (const char *)cfg + o->off;
    switch (o->type) {
    case T_STR: {
        const char *s = *(char *const *)p;
        if (s && !strcmp(o->name, "auth-secret")) s = "(set)";
        snprintf(out, cap, "%s", s ? s : "");
        break;
    }
    case T_PORT:
        snprintf(out, cap, "%u", *(const uint16_t *)p);
        break;
    case T_BOOL:
    case T_FLAG:
        snprintf(out, cap, "%s", *(const bool *)p ? "true" : "false");
        break;
    case T_BYTES:
    case T_BYTES0:
        snprintf(out, cap, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case T_SECONDS:
    case T_SECONDS_POS:
        snprintf(out, cap, "%g", *(const uint32_t *)p / 1000.0);
        break;
    case T_U32:
    case T_SIZE32:
        snprintf(out, cap, "%u", *(const uint32_t *)p);
        break;
    case T_DOUBLE:
        snprintf(out, cap, "%g", *(const double *)p);
        break;
    case T_POLICY:
        snprintf(out, cap, "%s", *(const int *)p == WEFT_SLOW_CLOSE ? "close" : "drop");
        break;
    case T_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        int l = *(const int *)p;
        snprintf(out, cap, "%s", names[l >= 0 && l < 4 ? l : 1]);
        break;
    }
    case T_FORMAT:
        snprintf(out, cap, "%s", *(const enum hub_log_format *)p == HUB_LOG_TEXT ? "text" : "json");
        break;
    case T_ORIGINS: {
        size_t n = 0;
        out[0] = '\0';
        for (size_t i = 0; i < cfg->norigins && n < cap; i++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "", cfg->origins[i]);
        break;
    }
    }
}

/* Prints the effective configuration; see hub.h. */
void hub_config_print(const struct hub_config *cfg, FILE *out)
{
    fprintf(out, "# weft serve: effective configuration (flags > WEFT_* > --config %s)\n",
            cfg->config_file ? cfg->config_file : "(none)");
    for (size_t i = 0; i < NOPTS; i++) {
        char v[2048];
        format_value(cfg, &opts[i], v, sizeof v);
        fprintf(out, "%s = %s\n", opts[i].name, v);
    }
}

/* Prints the option list of --help with defaults and environment variables; see hub.h. */
void hub_config_usage(FILE *out)
{
    struct hub_config d;
    hub_config_defaults(&d);
    for (size_t i = 0; i < NOPTS; i++) {
        char flag[64], v[256], env[64] = "WEFT_";
        snprintf(flag, sizeof flag, "--%s %s", opts[i].name, opts[i].arg);
        format_value(&d, &opts[i], v, sizeof v);
        size_t n = 5;
        for (const char *s = opts[i].name; *s && n < sizeof env - 1; s++)
            env[n++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
        env[n] = '\0';
        fprintf(out, "  %-28s ", flag);
        for (const char *h = opts[i].help; *h; h++) {
            fputc(*h, out);
            if (*h == '\n') fprintf(out, "  %-28s ", "");
        }
        fprintf(out, " [%s] (%s)\n", v[0] ? v : "off", env);
    }
    hub_config_free(&d);
}

/* The getopt table of the options (built once). */
const struct option *hub_config_options(size_t *n)
{
    static struct option table[NOPTS + 1];
    for (size_t i = 0; i < NOPTS; i++) {
        table[i].name = opts[i].name;
        table[i].has_arg = opts[i].type == T_FLAG ? no_argument : required_argument;
        table[i].flag = NULL;
        table[i].val = OPT_BASE + (int)i;
    }
    *n = NOPTS;
    return table;
}

/* The option name of a getopt value from hub_config_options. */
const char *hub_config_option_name(int val)
{
    if (val < OPT_BASE || val >= OPT_BASE + (int)NOPTS) return NULL;
    return opts[val - OPT_BASE].name;
}

/* Creates an event loop on the backend cfg asks for; a fallback to epoll is logged (warning)
 * when log_fallback. Returns NULL on failure (errno set). */
struct weft_loop *hub_loop_new(const struct hub_config *cfg, const struct hub_log *lg,
                               bool log_fallback)
{
    struct weft_loop_config lc;
    weft_loop_config_init(&lc);
    if (cfg->io_backend && *cfg->io_backend) weft_io_backend_parse(cfg->io_backend, &lc.io_backend);
    struct weft_loop *loop = weft_loop_new_config(&lc);
    if (loop && log_fallback && weft_loop_backend_error(loop))
        hlog(lg, WEFT_LOG_WARN, NULL, NULL, "io_uring unavailable (%s): using epoll",
             strerror(weft_loop_backend_error(loop)));
    return loop;
}
