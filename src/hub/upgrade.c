/*
 * upgrade.c — the upgrade path of every WebSocket route (/hub, /ws[/<room>], /echo): the
 * correlation id, the self-check probe, the handshake rate and connection limits (ipbook.h),
 * Origin (origin.h), the bearer token (auth), the room limit; then the accept with a new
 * struct hconn, whose life conn.c follows.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/internal.h"
#include "hub/ipbook.h"
#include "hub/origin.h"
#include "hub/pct.h"
#include "hub/upgrade.h"

#define ID_MAX 64
#define SELF_CHECK_HEADER "X-Weft-Self-Check"

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

/* The "token=" value of a query string; see upgrade.h. */
bool hub_query_token(const char *q, size_t len, char *out, size_t cap)
{
    size_t pos = 0;
    while (q && pos < len) {
        const char *amp = memchr(q + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end - pos > 6 && !memcmp(q + pos, "token=", 6) &&
            hub_pct_decode(q + pos + 6, end - pos - 6, out, cap, true) > 0)
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
static enum token_src find_token(struct weft_request *req, char *out, size_t cap, char *proto_entry,
                                 size_t pcap)
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
    if (hub_query_token(q, len, out, cap)) return TOK_QUERY;
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
        if (ilen == strlen(name) && !memcmp(item, name, ilen)) return true;
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
    if (len >= sizeof name) return false;
    memcpy(name, room, len);
    name[len] = '\0';
    return auth_room_allowed(rooms, name);
}

/* True if raw room (name[0..len)) does not exist on this worker and the process already
 * holds --max-total-rooms rooms. */
static bool room_full(struct hub *h, const char *name, size_t len)
{
    if (!h->cfg.max_total_rooms) return false;
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
    bool self = sc && len == strlen(h->self_nonce) && !strncasecmp(sc, h->self_nonce, len);
    char ip[64];
    ipbook_ip_of(weft_request_remote(req), ip, sizeof ip);

    if (!self) {
        uint32_t wait = ipbook_handshake_wait(h->ips, ip);
        if (wait) {
            reject_retry(h, req, id, 429, "handshake rate per IP exceeded", false, wait);
            return;
        }
        const char *origin = weft_request_header(req, "Origin", &len);
        if (!origin_allowed(&h->cfg, req, origin, len)) {
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
        ipbook_count(h->ips, ip) >= h->cfg.max_connections_per_ip) {
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
        int r = ts == TOK_NONE
                    ? -1
                    : auth_verify(h->auth, tok, strlen(tok), hub_wall_s(), &cl, why, sizeof why);
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
    if (hc) hc->h = h;
    if (!hc || (long_id && !ext_id) || ((cl.jti || cl.exp || cl.rooms) && !hconn_auth_new(hc))) {
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

/* on_upgrade of /hub; see upgrade.h. */
void upgrade_hub(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_HUB);
}

/* on_upgrade of /ws and /ws/<room>; see upgrade.h. */
void upgrade_room(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_ROOM);
}

/* on_upgrade of /echo; see upgrade.h. */
void upgrade_echo(struct weft_request *req, void *route_user)
{
    upgrade_common(req, route_user, HC_ECHO);
}
