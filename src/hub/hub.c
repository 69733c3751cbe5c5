/*
 * hub.c — the hub: one weft server, its routes, and the life of every connection:
 * correlation ids (X-Request-Id), Origin checks, JWT auth, global and per-IP connection
 * limits, the per-connection message rate (token bucket), token expiry and revocation,
 * logs and counters. The /hub protocol itself is in proto.c.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "hub/internal.h"

/* Descriptors the process keeps for itself; the rest of RLIMIT_NOFILE is for connections. */
#define FD_RESERVE 16
#define ID_MAX 64
#define TICK_MS 250
#define SELF_CHECK_HEADER "X-Weft-Self-Check"

/* Open connections of one client IP, and its handshake token bucket (--handshake-rate). An
 * entry lives while the IP has connections or its bucket is not full again. */
struct ipcount {
    struct ipcount *next;
    uint32_t n;
    double tokens;   /* handshakes the IP may start now */
    uint64_t tok_ms; /* when tokens was last refilled (monotonic ms) */
    char ip[];
};

/* ------------------------------------------------------------------ clocks */

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t hub_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds of CLOCK_MONOTONIC (the same clock on every worker). */
static uint64_t mono_ms(void)
{
    return hub_mono_ns() / 1000000u;
}

/* Seconds since the epoch. */
int64_t hub_wall_s(void)
{
    return (int64_t)time(NULL);
}

/* Milliseconds since the epoch. */
int64_t hub_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ per-IP counts */

/* FNV-1a of a string. */
static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The count slot of ip (NULL if none), with the link that points to it in *pp. */
static struct ipcount *ip_find(struct hub *h, const char *ip, struct ipcount ***pp)
{
    struct ipcount **p = &h->ip_buckets[hash_str(ip) & (h->ip_nbuckets - 1)];
    while (*p && strcmp((*p)->ip, ip))
        p = &(*p)->next;
    if (pp)
        *pp = p;
    return *p;
}

/* The handshake bucket size: --handshake-burst, else 2 x --handshake-rate, at least 1. */
static double handshake_burst(const struct hub_config *cfg)
{
    double b = cfg->handshake_burst > 0 ? cfg->handshake_burst : 2 * cfg->handshake_rate;
    return b < 1 ? 1 : b;
}

/* Refills e's handshake bucket up to now_ms (no-op without --handshake-rate). */
static void ip_refill(const struct hub *h, struct ipcount *e, uint64_t now_ms)
{
    double rate = h->cfg.handshake_rate;
    if (rate <= 0 || now_ms <= e->tok_ms)
        return;
    e->tokens += (double)(now_ms - e->tok_ms) / 1000.0 * rate;
    e->tok_ms = now_ms;
    double burst = handshake_burst(&h->cfg);
    if (e->tokens > burst)
        e->tokens = burst;
}

/* True if entry e may be freed: no connection, and no handshake bucket or a full one
 * (forgetting it then changes nothing). Refills the bucket. */
static bool ip_idle(const struct hub *h, struct ipcount *e, uint64_t now_ms)
{
    if (e->n)
        return false;
    if (h->cfg.handshake_rate <= 0)
        return true;
    ip_refill(h, e, now_ms);
    return e->tokens >= handshake_burst(&h->cfg);
}

/* Creates the entry of ip at *pp with a full bucket. Returns it, or NULL (out of memory). */
static struct ipcount *ip_new(const struct hub *h, struct ipcount **pp, const char *ip)
{
    size_t n = strlen(ip) + 1;
    struct ipcount *e = calloc(1, sizeof *e + n);
    if (!e)
        return NULL;
    memcpy(e->ip, ip, n);
    e->tokens = handshake_burst(&h->cfg);
    e->tok_ms = mono_ms();
    *pp = e;
    return e;
}

/* --handshake-rate: takes one token from ip's bucket. Returns 0 when the handshake may go on
 * (also when the rate is off, or out of memory), else the seconds until a token is back (at
 * least 1), for Retry-After. */
static uint32_t handshake_wait(struct hub *h, const char *ip)
{
    double rate = h->cfg.handshake_rate;
    if (rate <= 0)
        return 0;
    uint32_t wait = 0;
    workers_ip_lock(h);
    struct ipcount **pp;
    struct ipcount *e = ip_find(h, ip, &pp);
    if (!e)
        e = ip_new(h, pp, ip);
    if (e) {
        ip_refill(h, e, mono_ms());
        if (e->tokens >= 1) {
            e->tokens -= 1;
        } else {
            double s = ceil((1 - e->tokens) / rate);
            wait = s < 1 ? 1 : s > 86400 ? 86400 : (uint32_t)s;
        }
    }
    workers_ip_unlock(h);
    return wait;
}

/* Frees the entries that ip_idle allows (every tick with --handshake-rate), or with
 * forget every entry without connections (when the hub is freed: the loops have stopped and
 * this hub's connections are gone, so the last worker to go leaves nothing behind). */
static void ip_sweep(struct hub *h, bool forget)
{
    uint64_t now = mono_ms();
    workers_ip_lock(h);
    for (size_t i = 0; h->ip_buckets && i < h->ip_nbuckets; i++)
        for (struct ipcount **pp = &h->ip_buckets[i]; *pp;) {
            struct ipcount *e = *pp;
            if (forget ? !e->n : ip_idle(h, e, now)) {
                *pp = e->next;
                free(e);
            } else {
                pp = &e->next;
            }
        }
    workers_ip_unlock(h);
}

/* Open connections from ip. */
static uint32_t ip_count(struct hub *h, const char *ip)
{
    workers_ip_lock(h);
    struct ipcount *e = ip_find(h, ip, NULL);
    uint32_t n = e ? e->n : 0;
    workers_ip_unlock(h);
    return n;
}

static void ip_inc_locked(struct hub *h, const char *ip);
static void ip_dec_locked(struct hub *h, const char *ip);

/* Adds one connection for ip (not counted if out of memory). */
static void ip_inc(struct hub *h, const char *ip)
{
    workers_ip_lock(h);
    ip_inc_locked(h, ip);
    workers_ip_unlock(h);
}

/* ip_inc with the table locked. */
static void ip_inc_locked(struct hub *h, const char *ip)
{
    struct ipcount **pp;
    struct ipcount *e = ip_find(h, ip, &pp);
    if (!e && !(e = ip_new(h, pp, ip)))
        return;
    e->n++;
}

/* Removes one connection for ip; frees the slot at zero unless its handshake bucket still
 * matters (ip_idle). */
static void ip_dec(struct hub *h, const char *ip)
{
    workers_ip_lock(h);
    ip_dec_locked(h, ip);
    workers_ip_unlock(h);
}

/* ip_dec with the table locked. */
static void ip_dec_locked(struct hub *h, const char *ip)
{
    struct ipcount **pp;
    struct ipcount *e = ip_find(h, ip, &pp);
    if (!e || !e->n)
        return;
    e->n--;
    if (ip_idle(h, e, mono_ms())) {
        *pp = e->next;
        free(e);
    }
}

/* Copies the address part of "IP:PORT" / "[IP]:PORT" / "unix" into out. */
static void ip_of(const char *remote, char *out, size_t cap)
{
    const char *s = remote ? remote : "?";
    size_t n;
    if (*s == '[') {
        s++;
        n = strcspn(s, "]");
    } else {
        const char *colon = strrchr(s, ':');
        n = colon ? (size_t)(colon - s) : strlen(s);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* ------------------------------------------------------------------ request helpers */

/* Case-insensitive comparison of a[0..n) with the NUL-terminated b. */
static bool eq_nocase(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Does origin[0..len) match one pattern? Exact (case-insensitive), a lone star (anything),
 * star-dot-suffix such as "*.example.com" (any scheme and port, a subdomain of example.com),
 * or the same after a scheme ("https:" + "//" + "*.example.com": that scheme only). */
static bool origin_match(const char *pat, const char *origin, size_t len)
{
    if (!strcmp(pat, "*"))
        return true;
    const char *star = strstr(pat, "*.");
    if (!star)
        return eq_nocase(origin, len, pat);
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < len; i++)
        if (origin[i] == ':' && origin[i + 1] == '/' && origin[i + 2] == '/') {
            sep = origin + i;
            break;
        }
    if (!sep)
        return false;
    if (star != pat) { /* a scheme before the star must match */
        size_t sl = (size_t)(star - pat);
        if ((size_t)(sep + 3 - origin) != sl || strncasecmp(origin, pat, sl))
            return false;
    }
    const char *host = sep + 3;
    size_t hl = len - (size_t)(host - origin);
    const char *colon = memchr(host, ':', hl);
    if (colon)
        hl = (size_t)(colon - host);
    const char *suffix = star + 1; /* ".example.com" */
    size_t sfl = strlen(suffix);
    return hl > sfl && strncasecmp(host + hl - sfl, suffix, sfl) == 0;
}

/* Splits an authority "host[:port]" or "[v6]:port" of len bytes: *hl receives the host's
 * length, *port the port (def_port when absent). Returns false if the port is not a number
 * from 1 to 65535. */
static bool split_authority(const char *a, size_t len, size_t *hl, unsigned *port,
                            unsigned def_port)
{
    size_t end = len;
    if (len && a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (!rb)
            return false;
        end = (size_t)(rb - a) + 1;
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon)
            end = (size_t)(colon - a);
    }
    *hl = end;
    *port = def_port;
    if (end == len)
        return end > 0;
    if (a[end] != ':' || end + 1 == len || len - end - 1 > 5)
        return false;
    unsigned v = 0;
    for (size_t i = end + 1; i < len; i++) {
        if (a[i] < '0' || a[i] > '9')
            return false;
        v = v * 10 + (unsigned)(a[i] - '0');
    }
    *port = v;
    return end > 0 && v > 0 && v <= 65535;
}

/* True if origin[0..len) ("http://host[:port]" or "https://...") names the host and port of
 * the request's Host header (case-insensitive host; a missing port is the scheme's default,
 * 80 or 443, on both sides: a TLS proxy in front keeps Host and Origin alike). */
static bool same_origin(struct weft_request *req, const char *origin, size_t len)
{
    unsigned def;
    size_t skip;
    if (len > 7 && !strncasecmp(origin, "http://", 7))
        def = 80, skip = 7;
    else if (len > 8 && !strncasecmp(origin, "https://", 8))
        def = 443, skip = 8;
    else
        return false;
    size_t hlen;
    const char *host = weft_request_header(req, "Host", &hlen);
    size_t ohl, hhl;
    unsigned oport, hport;
    return host && split_authority(origin + skip, len - skip, &ohl, &oport, def) &&
           split_authority(host, hlen, &hhl, &hport, def) && ohl == hhl && oport == hport &&
           !strncasecmp(origin + skip, host, ohl);
}

/* True if the request's Origin is allowed: no Origin header (non-browser clients send
 * none), the same origin as the Host header (the web page weft serves), or one matching an
 * --allow-origin pattern ('*': any). */
static bool origin_allowed(const struct hub *h, struct weft_request *req, const char *origin,
                           size_t len)
{
    if (!origin || same_origin(req, origin, len))
        return true;
    for (size_t i = 0; i < h->cfg.norigins; i++)
        if (origin_match(h->cfg.origins[i], origin, len))
            return true;
    return false;
}

/* Takes the client's X-Request-Id if well-formed (1..64 of [A-Za-z0-9._:-]), otherwise
 * makes a random one (16 hex digits). */
static void correlation_id(struct hub *h, struct weft_request *req, char out[ID_MAX + 1])
{
    size_t len = 0;
    const char *v = weft_request_header(req, "X-Request-Id", &len);
    bool ok = v && len > 0 && len <= ID_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = v[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == ':' || ch == '-';
    }
    if (ok) {
        memcpy(out, v, len);
        out[len] = '\0';
        return;
    }
    uint8_t rnd[8];
    weft_random_bytes(&h->rnd, rnd, sizeof rnd);
    for (size_t i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

/* Value of a hex digit, -1 if ch is not one. */
static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' of a query value into out (NUL-terminated). Returns its length, or -1
 * for a '%' not followed by two hex digits, a decoded NUL or no room. (strtol used to take
 * "%-1" or "% 1" as escapes and a cut "%4" literally: found by fuzz_decode.) */
static long url_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 1 >= cap)
            return -1;
        char ch = s[i];
        if (ch == '%') {
            int hi = len - i >= 3 ? hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
            if (lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == '\0')
            return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (long)n;
}

/* The "token=" value of a query string; see internal.h. */
bool hub_query_token(const char *q, size_t len, char *out, size_t cap)
{
    size_t pos = 0;
    while (q && pos < len) {
        const char *amp = memchr(q + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end - pos > 6 && !memcmp(q + pos, "token=", 6) &&
            url_decode(q + pos + 6, end - pos - 6, out, cap) > 0)
            return true;
        pos = end + 1;
    }
    return false;
}

/* Where the bearer token was found. */
enum token_src { TOK_NONE = 0, TOK_HEADER, TOK_QUERY, TOK_PROTOCOL };

/* Finds the bearer token: "Authorization: Bearer T", "?token=T", or a subprotocol entry
 * "bearer.T". Copies it into out. Returns where it came from; *proto_entry receives the
 * whole subprotocol entry for TOK_PROTOCOL (to echo it when it is the only one offered). */
static enum token_src find_token(struct weft_request *req, char *out, size_t cap,
                                 char *proto_entry, size_t pcap)
{
    size_t len;
    const char *v = weft_request_header(req, "Authorization", &len);
    if (v && len > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7;
        len -= 7;
        while (len && *v == ' ')
            v++, len--;
        if (len < cap) {
            memcpy(out, v, len);
            out[len] = '\0';
            return TOK_HEADER;
        }
    }
    const char *q = weft_request_query(req, &len);
    if (hub_query_token(q, len, out, cap))
        return TOK_QUERY;
    const char *p = weft_request_protocols(req, &len);
    const char *item;
    size_t ilen;
    size_t pos = 0;
    while (p && weft_http_list_next(p, len, &pos, &item, &ilen)) {
        if (ilen > 7 && !strncmp(item, "bearer.", 7) && ilen - 7 < cap && ilen < pcap) {
            memcpy(out, item + 7, ilen - 7);
            out[ilen - 7] = '\0';
            memcpy(proto_entry, item, ilen);
            proto_entry[ilen] = '\0';
            return TOK_PROTOCOL;
        }
    }
    return TOK_NONE;
}

/* True if the client offered subprotocol name. */
static bool offered(struct weft_request *req, const char *name)
{
    size_t len, pos = 0, ilen;
    const char *p = weft_request_protocols(req, &len);
    const char *item;
    while (p && weft_http_list_next(p, len, &pos, &item, &ilen))
        if (ilen == strlen(name) && !memcmp(item, name, ilen))
            return true;
    return false;
}

/* Copies the first subprotocol the client offered into out (NUL-terminated). Returns false
 * if none was offered or it does not fit. */
static bool first_offered(struct weft_request *req, char *out, size_t cap)
{
    size_t len, pos = 0, ilen;
    const char *p = weft_request_protocols(req, &len);
    const char *item;
    if (!p || !weft_http_list_next(p, len, &pos, &item, &ilen) || !ilen || ilen >= cap)
        return false;
    memcpy(out, item, ilen);
    out[ilen] = '\0';
    return true;
}

/* ------------------------------------------------------------------ upgrade */

/* Refuses an upgrade with status, an X-Request-Id and (503, 429) Retry-After: retry_s
 * seconds, and logs and counts it. */
static void reject_retry(struct hub *h, struct weft_request *req, const char *id, int status,
                         const char *why, bool self, uint32_t retry_s)
{
    char extra[256];
    int n = snprintf(extra, sizeof extra, "X-Request-Id: %s\r\n", id);
    if (status == 503 || status == 429)
        snprintf(extra + n, sizeof extra - (size_t)n, "Retry-After: %u\r\n", retry_s);
    else if (status == 401)
        snprintf(extra + n, sizeof extra - (size_t)n, "WWW-Authenticate: Bearer\r\n");
    char body[160];
    snprintf(body, sizeof body, "%s\n", why);
    if (status == 401)
        h->m.hs_401++;
    else if (status == 403)
        h->m.hs_403++;
    else if (status == 414)
        h->m.hs_414++;
    else if (status == 429)
        h->m.hs_429++;
    size_t plen;
    const char *path = weft_request_path(req, &plen);
    hlog(&h->log, self ? WEFT_LOG_DEBUG : WEFT_LOG_INFO, id,
         json_pack("{s:s,s:i,s:s,s:s#,s:s}", "event", "rejected", "status", status, "remote",
                   weft_request_remote(req), "path", path, (int)plen, "reason", why),
         "handshake refused: %d %s", status, why);
    weft_request_reject(req, status, extra, body);
}

/* reject_retry with Retry-After: --retry-after (for 503). */
static void reject(struct hub *h, struct weft_request *req, const char *id, int status,
                   const char *why, bool self)
{
    reject_retry(h, req, id, status, why, self, h->cfg.retry_after_s);
}

/* The room of a /ws or /ws/<room> request (/ws is "lobby") and its length in *len. */
static const char *raw_room(struct weft_request *req, size_t *len)
{
    size_t plen;
    const char *path = weft_request_path(req, &plen);
    if (plen > 4 && !memcmp(path, "/ws/", 4)) {
        *len = plen - 4;
        return path + 4;
    }
    *len = 5;
    return "lobby";
}

/* True if the token's rooms claim (NULL: no claim) allows the raw room room[0..len). */
static bool room_claim_allows(const json_t *rooms, const char *room, size_t len)
{
    char name[256];
    if (len >= sizeof name)
        return false;
    memcpy(name, room, len);
    name[len] = '\0';
    return auth_room_allowed(rooms, name);
}

/* True if raw room (name[0..len)) does not exist on this worker and the process already
 * holds --max-total-rooms rooms. */
static bool room_full(struct hub *h, const char *name, size_t len)
{
    if (!h->cfg.max_total_rooms)
        return false;
    char topic[260];
    memcpy(topic, "room:", 5);
    memcpy(topic + 5, name, len);
    return weft_topic_count(h->server, topic, len + 5) == 0 &&
           atomic_load(h->rooms.total) >= h->cfg.max_total_rooms;
}

/* The checks of every WebSocket route, then accept with a new struct hconn. */
static void upgrade_common(struct weft_request *req, struct hub *h, enum hconn_kind kind)
{
    char id[ID_MAX + 1];
    correlation_id(h, req, id);
    size_t len;
    const char *sc = weft_request_header(req, SELF_CHECK_HEADER, &len);
    bool self = sc && eq_nocase(sc, len, h->self_nonce);
    char ip[64];
    ip_of(weft_request_remote(req), ip, sizeof ip);

    if (!self) {
        uint32_t wait = handshake_wait(h, ip);
        if (wait) {
            reject_retry(h, req, id, 429, "handshake rate per IP exceeded", false, wait);
            return;
        }
        const char *origin = weft_request_header(req, "Origin", &len);
        if (!origin_allowed(h, req, origin, len)) {
            reject(h, req, id, 403, "origin not allowed", false);
            return;
        }
    }
    size_t room_len = 0;
    const char *room = kind == HC_ROOM ? raw_room(req, &room_len) : NULL;
    if (room_len > 250) {
        reject(h, req, id, 414, "room name too long", self);
        return;
    }
    if (room && room_full(h, room, room_len)) {
        reject(h, req, id, 503, "room limit reached", self);
        return;
    }
    if (h->cfg.max_connections && hub_conns_all(h) >= h->cfg.max_connections) {
        reject(h, req, id, 503, "connection limit reached", self);
        return;
    }
    if (!self && h->cfg.max_connections_per_ip &&
        ip_count(h, ip) >= h->cfg.max_connections_per_ip) {
        reject(h, req, id, 503, "connection limit per IP reached", false);
        return;
    }
    struct auth_claims cl = {0};
    char proto_entry[256] = "";
    enum token_src ts = TOK_NONE;
    if (h->cfg.auth_secret && !self) {
        char *tok = malloc(8200);
        if (!tok) {
            reject(h, req, id, 503, "out of memory", false);
            return;
        }
        ts = find_token(req, tok, 8200, proto_entry, sizeof proto_entry);
        char why[128];
        size_t n;
        if (auth_reload(h->auth, &n) == 1)
            hlog(&h->log, WEFT_LOG_INFO, NULL,
                 json_pack("{s:s,s:I}", "event", "revocations_loaded", "count", (json_int_t)n),
                 "revocation list reloaded: %zu ids", n);
        int r = ts == TOK_NONE ? -1
                               : auth_verify(h->auth, tok, strlen(tok), hub_wall_s(), &cl, why,
                                             sizeof why);
        free(tok);
        if (r < 0) {
            reject(h, req, id, 401, ts == TOK_NONE ? "missing bearer token" : why, false);
            return;
        }
        if (room && !room_claim_allows(cl.rooms, room, room_len)) {
            auth_claims_free(&cl);
            reject(h, req, id, 403, "room not allowed by the token", false);
            return;
        }
    }
    /* The hconn, a client id too long to be inline, the token's state: all or nothing. */
    size_t idlen = strlen(id);
    bool long_id = idlen > HCONN_ID_INLINE;
    struct hconn *hc = calloc(1, sizeof *hc);
    char *ext_id = hc && long_id ? malloc(idlen + 1) : NULL;
    if (hc)
        hc->h = h;
    if (!hc || (long_id && !ext_id) ||
        ((cl.jti || cl.exp || cl.rooms) && !hconn_auth_new(hc))) {
        free(ext_id);
        free(hc);
        auth_claims_free(&cl);
        reject(h, req, id, 503, "out of memory", self);
        return;
    }
    hc->id = long_id ? ext_id : hc->id_inline;
    memcpy(hc->id, id, idlen + 1);
    hc->kind = (uint8_t)kind;
    hc->self_check = self;
    hc->user = cl.sub;
    if (hc->auth) {
        hc->auth->jti = cl.jti;
        hc->auth->exp = cl.exp;
        hc->auth->rooms_claim = cl.rooms;
    }
    if (!h->cfg.auth_secret && kind == HC_HUB)
        hc->user = web_query_name(req); /* a chosen display name (web.c), without auth only */
    double burst = h->cfg.burst > 0 ? h->cfg.burst : 2 * h->cfg.rate;
    hc->tokens = burst < 1 ? 1 : burst;
    if (kind == HC_ROOM) {
        hc->topic = malloc(room_len + 5);
        if (hc->topic) {
            memcpy(hc->topic, "room:", 5);
            memcpy(hc->topic + 5, room, room_len);
            hc->topic_len = (uint32_t)room_len + 5;
        }
    }
    const char *protocol = NULL;
    char first[256];
    if (kind == HC_HUB && offered(req, "weft.hub"))
        protocol = "weft.hub";
    else if (kind == HC_ECHO && first_offered(req, first, sizeof first))
        protocol = first; /* /echo speaks whatever the client wants */
    else if (ts == TOK_PROTOCOL)
        protocol = proto_entry; /* the only way a browser client that offered just the token
                                   entry accepts the 101 */
    char extra[128];
    snprintf(extra, sizeof extra, "X-Request-Id: %s\r\n", id);
    h->nconns_all++; /* until on_open: accept → on_open is synchronous */
    workers_count(h, 1);
    weft_request_accept(req, protocol, hc, extra);
}

/* on_upgrade of /hub. */
static void hub_upgrade(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_HUB);
}

/* on_upgrade of /ws and /ws/<room>. */
static void room_upgrade(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_ROOM);
}

/* on_upgrade of /echo. */
static void echo_upgrade(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_ECHO);
}

/* ------------------------------------------------------------------ connections */

/* (Re)starts hc's expiry timer for its token's exp (at most an hour ahead: it re-arms). */
void hub_arm_expiry(struct hconn *hc)
{
    int64_t left = hc->auth->exp - hub_wall_s();
    if (left > 3600)
        left = 3600;
    weft_timer_start(hc->h->loop, &hc->auth->exp_timer, left > 0 ? (uint64_t)left * 1000 : 0);
}

/* The token of hc expired: close 1008. */
static void on_token_expired(struct weft_timer *t)
{
    struct hconn_auth *a =
        (struct hconn_auth *)((char *)t - offsetof(struct hconn_auth, exp_timer));
    struct hconn *hc = a->hc;
    if (hub_wall_s() < a->exp) { /* refreshed meanwhile, capped, or the timer ran early */
        hub_arm_expiry(hc);
        return;
    }
    hc->h->m.auth_expired++;
    hub_conn_close(hc, WEFT_CLOSE_POLICY, "token expired");
}

/* Gives hc an empty struct hconn_auth; see internal.h. */
struct hconn_auth *hconn_auth_new(struct hconn *hc)
{
    if (hc->auth)
        return hc->auth;
    struct hconn_auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->hc = hc;
    a->exp_timer.cb = on_token_expired;
    hc->auth = a;
    return a;
}

/* The client IP of c (the address part of weft_conn_remote, as upgrade_common saw it). */
static void conn_ip(const struct weft_conn *c, char *out, size_t cap)
{
    ip_of(weft_conn_remote(c), out, cap);
}

/* The connection is open: count it, start the expiry timer, log. */
static void conn_open(struct weft_conn *c)
{
    struct hconn *hc = weft_conn_user(c);
    struct hub *h = weft_conn_route_user(c);
    if (!hc) {
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "no state");
        return;
    }
    hc->c = c;
    hc->open = true;
    hc->bucket_ms = weft_loop_now(h->loop);
    hc->next = h->conns;
    if (h->conns)
        h->conns->prev = hc;
    h->conns = hc;
    if (!hc->self_check) {
        h->nconns++;
        h->m.conns_total++;
        h->m.hs_ok++;
        char ip[64];
        conn_ip(c, ip, sizeof ip);
        ip_inc(h, ip);
    }
    if (hc->auth && hc->auth->exp)
        hub_arm_expiry(hc);
    static const char *const kinds[] = {"/hub", "/ws", "/echo"};
    json_t *f = json_pack("{s:s,s:s,s:s}", "event", "open", "remote", weft_conn_remote(c),
                          "route", kinds[hc->kind]);
    if (f && hc->user)
        json_object_set_new(f, "user", json_string(hc->user));
    if (f && *weft_conn_protocol(c))
        json_object_set_new(f, "protocol", json_string(weft_conn_protocol(c)));
    hlog(&h->log, hc->self_check ? WEFT_LOG_DEBUG : WEFT_LOG_INFO, hc->id, f, "open %s from %s",
         kinds[hc->kind], weft_conn_remote(c));
    if (hc->kind == HC_ROOM) {
        /* The first member of a raw room on this worker counts the room (a race with
         * another worker past the upgrade's check closes with 1013). */
        bool first = hc->topic && weft_topic_count(h->server, hc->topic, hc->topic_len) == 0;
        if (first && !rooms_reserve(&h->rooms)) {
            hub_conn_close(hc, WEFT_CLOSE_TRY_AGAIN, "room limit reached");
        } else if (!hc->topic || weft_subscribe(c, hc->topic, hc->topic_len) != WEFT_OK) {
            if (first)
                rooms_unreserve(&h->rooms);
            hub_conn_close(hc, WEFT_CLOSE_INTERNAL, "cannot join room");
        } else {
            hc->raw_sub = true;
            if (h->broker) {
                hc->broker_ref = true;
                broker_ref(h->broker, hc->topic, hc->topic_len, 1);
            }
        }
    }
}

/* Takes one token from hc's bucket. Returns false when the rate is exceeded. */
static bool rate_ok(struct hconn *hc)
{
    const struct hub_config *cfg = &hc->h->cfg;
    if (cfg->rate <= 0)
        return true;
    double burst = cfg->burst > 0 ? cfg->burst : 2 * cfg->rate;
    if (burst < 1)
        burst = 1;
    uint64_t now = weft_loop_now(hc->h->loop);
    hc->tokens += (double)(now - hc->bucket_ms) / 1000.0 * cfg->rate;
    hc->bucket_ms = now;
    if (hc->tokens > burst)
        hc->tokens = burst;
    if (hc->tokens < 1)
        return false;
    hc->tokens -= 1;
    return true;
}

/* A message on any route: rate limit, then the route's work. */
static void conn_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    uint64_t t0 = hub_mono_ns();
    struct hconn *hc = weft_conn_user(c);
    if (!hc)
        return;
    if (!rate_ok(hc)) {
        hc->h->m.rate_limited++;
        hub_conn_close(hc, WEFT_CLOSE_POLICY, "message rate exceeded");
        return;
    }
    switch ((enum hconn_kind)hc->kind) {
    case HC_HUB:
        proto_message(hc, data, len, binary, t0);
        break;
    case HC_ROOM:
        if (hc->h->sh)
            workers_publish_raw(hc->h, hc->topic, hc->topic_len, data, len,
                                binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
        else
            weft_publish(weft_conn_server(c), hc->topic, hc->topic_len, data, len,
                         binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
        if (hc->h->broker) /* the other nodes (this one delivered above) */
            broker_publish_raw(hc->h->broker, hc->topic, hc->topic_len, data, len, binary);
        break;
    case HC_ECHO:
        weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
        break;
    }
}

/* The connection is gone: leave rooms, uncount, log, free. */
static void conn_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                       bool clean)
{
    struct hconn *hc = weft_conn_user(c);
    struct hub *h = weft_conn_route_user(c);
    if (!hc)
        return;
    weft_conn_set_user(c, NULL);
    if (hc->auth)
        weft_timer_stop(&hc->auth->exp_timer);
    if (hc->kind == HC_HUB)
        proto_conn_gone(hc);
    if (hc->broker_ref && h->broker)
        broker_ref(h->broker, hc->topic, hc->topic_len, -1);
    hc->broker_ref = false;
    /* The library dropped c's subscriptions already: the last member uncounts the room. */
    if (hc->raw_sub && weft_topic_count(h->server, hc->topic, hc->topic_len) == 0)
        rooms_unreserve(&h->rooms);
    hc->raw_sub = false;
    if (hc->open) {
        if (hc->prev)
            hc->prev->next = hc->next;
        else
            h->conns = hc->next;
        if (hc->next)
            hc->next->prev = hc->prev;
        if (!hc->self_check) {
            h->nconns--;
            char ip[64];
            conn_ip(c, ip, sizeof ip);
            ip_dec(h, ip);
            metrics_close(&h->m, code);
        }
    }
    h->nconns_all--;
    workers_count(h, -1);
    int rl = reason_len > 123 ? 123 : (int)reason_len;
    char rs[124];
    snprintf(rs, sizeof rs, "%.*s", rl, reason ? reason : "");
    for (char *p = rs; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80)
            *p = '?';
    hlog(&h->log, hc->self_check ? WEFT_LOG_DEBUG : WEFT_LOG_INFO, hc->id,
         json_pack("{s:s,s:i,s:s,s:b}", "event", "close", "code", code, "reason", rs, "clean",
                   clean),
         "closed %u%s%s%s", code, rs[0] ? " \"" : "", rs, rs[0] ? "\"" : "");
    hub_conn_release(hc);
}

/* Frees hc, or (with requests in flight to other workers) marks it gone for the last reply
 * to free; see internal.h. */
void hub_conn_release(struct hconn *hc)
{
    if (hc->refs) {
        hc->gone = true;
        hc->c = NULL;
        return;
    }
    free(hc->user);
    if (hc->auth) {
        free(hc->auth->jti);
        json_decref(hc->auth->rooms_claim);
        free(hc->auth);
    }
    if (hc->id != hc->id_inline)
        free(hc->id);
    free(hc->topic);
    free(hc);
}

/* Closes hc with code and reason, logging why; see internal.h. */
void hub_conn_close(struct hconn *hc, uint16_t code, const char *reason)
{
    hlog(&hc->h->log, WEFT_LOG_WARN, hc->id,
         json_pack("{s:s,s:i,s:s}", "event", "closing", "code", code, "reason", reason),
         "closing with %u: %s", code, reason);
    weft_conn_close(hc->c, code, reason);
}

/* Sends text on hc; see internal.h. */
enum weft_send_result hub_send(struct hconn *hc, const char *text, size_t len)
{
    if (hc->gone)
        return WEFT_SEND_CLOSED;
    enum weft_send_result r = weft_conn_send(hc->c, text, len, WEFT_OP_TEXT);
    if (r == WEFT_SEND_DROPPED)
        hlog(&hc->h->log, WEFT_LOG_DEBUG, hc->id, NULL, "message dropped (backpressure)");
    return r;
}

/* ------------------------------------------------------------------ latency */

/* Runs at the loop iteration after publishes, once their deliveries were written: records
 * the publish-to-deliver samples. */
static void latency_flush(void *arg)
{
    struct lat_pending *lp = arg;
    if (!lp->h) {
        free(lp->t0);
        free(lp);
        return;
    }
    uint64_t now = hub_mono_ns();
    for (size_t i = 0; i < lp->n; i++)
        metrics_latency(&lp->h->m, (double)(now - lp->t0[i]) / 1e9);
    lp->n = 0;
    lp->scheduled = false;
}

/* Starts a publish-to-deliver sample; see internal.h. */
void hub_latency_start(struct hub *h, uint64_t t0_ns)
{
    struct lat_pending *lp = h->lat;
    if (lp->n == lp->cap) {
        size_t cap = lp->cap ? lp->cap * 2 : 64;
        uint64_t *t = realloc(lp->t0, cap * sizeof *t);
        if (!t)
            return;
        lp->t0 = t;
        lp->cap = cap;
    }
    lp->t0[lp->n++] = t0_ns;
    if (!lp->scheduled && weft_loop_defer(h->loop, latency_flush, lp) == WEFT_OK)
        lp->scheduled = true;
}

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
    if (h->cfg.handshake_rate > 0)
        ip_sweep(h, false);
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
    h->ip_nbuckets = 1024;
    h->ip_buckets = calloc(h->ip_nbuckets, sizeof *h->ip_buckets);
    if (hub_config_copy(&h->cfg, cfg) < 0 || !h->lat || !h->ip_buckets ||
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
    static const struct weft_ws_handlers hub_h = {.on_upgrade = hub_upgrade,
                                                  .on_open = conn_open,
                                                  .on_message = conn_message,
                                                  .on_close = conn_close};
    static const struct weft_ws_handlers room_h = {.on_upgrade = room_upgrade,
                                                   .on_open = conn_open,
                                                   .on_message = conn_message,
                                                   .on_close = conn_close};
    static const struct weft_ws_handlers echo_h = {.on_upgrade = echo_upgrade,
                                                   .on_open = conn_open,
                                                   .on_message = conn_message,
                                                   .on_close = conn_close};
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
    if (cfg->redis && !broker_new(h, err, errcap)) {
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
    hlog_always(&h->log, WEFT_LOG_INFO, NULL,
                json_pack("{s:s,s:s,s:s}", "event", "listening", "address", addr, "version",
                          WEFT_VERSION),
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
    if (!h)
        return;
    weft_timer_stop(&h->tick);
    health_cancel_all(h);
    if (h->server) {
        struct weft_server_stats st;
        weft_server_stats(h->server, &st);
        if (h->started) /* not after a failed start: its error is the only line */
            hlog(&h->log, WEFT_LOG_INFO, NULL,
                 json_pack("{s:s,s:I,s:I,s:I,s:I}", "event", "stopped", "accepted",
                           (json_int_t)st.accepted_total, "upgrades",
                           (json_int_t)st.upgrades_total, "messages_in",
                           (json_int_t)st.messages_in, "messages_out",
                           (json_int_t)st.messages_out),
                 "stopped: %llu connections accepted, %llu upgrades, %llu messages in, %llu out",
                 (unsigned long long)st.accepted_total, (unsigned long long)st.upgrades_total,
                 (unsigned long long)st.messages_in, (unsigned long long)st.messages_out);
        weft_server_free(h->server); /* on_close runs for the connections left */
    }
    broker_free(h->broker); /* after the connections: their presence removals are flushed */
    /* This hub's connections are gone: free the entries they kept (in a shared table too). */
    ip_sweep(h, true);
    if (h->sh) /* the table is shared by the workers (workers.c frees it) */
        h->ip_buckets = NULL;
    for (size_t i = 0; h->ip_buckets && i < h->ip_nbuckets; i++)
        while (h->ip_buckets[i]) {
            struct ipcount *e = h->ip_buckets[i];
            h->ip_buckets[i] = e->next;
            free(e);
        }
    free(h->ip_buckets);
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
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl = want;
        } else if (rl.rlim_max == RLIM_INFINITY) {
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
    }
    unsigned long long n = rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
    n = n > FD_RESERVE ? n - FD_RESERVE : 0;
    hlog(lg, WEFT_LOG_INFO, NULL,
         json_pack("{s:s,s:I,s:I}", "event", "nofile", "limit", (json_int_t)rl.rlim_cur,
                   "connections", (json_int_t)n),
         "open file limit %llu: can hold about %llu connections",
         (unsigned long long)rl.rlim_cur, n);
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
             "SIGHUP: TLS reload failed, keeping the old certificate: %s",
             weft_tls_last_error());
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
    if (cfg->workers > 1 && !cfg->unix_path)
        return workers_run(cfg);
    struct run r = {0};
    r.loop = weft_loop_new();
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
