/*
 * proto.c — the /hub JSON protocol: one connection, many rooms.
 *
 * Every request is a JSON object with a "type"; a table maps each type to its handler, so a
 * new type is one function and one row. A request may carry an "id" (any JSON value) that
 * the reply, or the error, echoes. Bad input is answered with
 * {"type":"error","code":…,"reason":…} and the connection stays open.
 *
 * Rooms are weft pub/sub topics "hub:<room>"; each room keeps its last deliveries with
 * sequence numbers (rooms.c) for "history" and for "join" with "since".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"

#define TOPIC_PREFIX "hub:"
#define PRESENCE_MAX 1000

/* One request being handled. */
struct req {
    struct hconn *hc;
    struct hub *h;
    json_t *msg;      /* the request object */
    const json_t *id; /* its "id", NULL if none */
    uint64_t t0;      /* arrival time, ns */
};

/* Sends obj (consumed) with the request's id added. */
static void reply(struct req *x, json_t *obj)
{
    if (!obj) return;
    if (x->id) json_object_set(obj, "id", (json_t *)x->id);
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (s) {
        hub_send(x->hc, s, strlen(s));
        free(s);
    }
}

/* Sends an error reply; see internal.h. */
void proto_error(struct hconn *hc, const json_t *id, const char *code, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (char *p = reason; *p; p++) /* our texts are ASCII; a cut echo must not break UTF-8 */
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) *p = '?';
    metrics_error(&hc->h->m, code);
    hlog(&hc->h->log, WEFT_LOG_DEBUG, hc->id,
         json_pack("{s:s,s:s}", "event", "error", "code", code), "error reply: %s", reason);
    json_t *o = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "reason", reason);
    if (!o) return;
    if (id) json_object_set(o, "id", (json_t *)id);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s) {
        hub_send(hc, s, strlen(s));
        free(s);
    }
}

/* True if name is a valid room name; see internal.h. */
bool proto_room_valid(const char *name, size_t len, const char **why)
{
    if (len == 0) {
        *why = "room name is empty";
        return false;
    }
    if (len > HUB_ROOM_MAX) {
        *why = "room name is longer than 128 bytes";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.' || ch == ':' || ch == '@')) {
            *why = "room name has a character outside A-Z a-z 0-9 _ - . : @";
            return false;
        }
    }
    return true;
}

/* Reads and checks the "room" field. Returns the name, or NULL after an error reply. */
static const char *get_room(struct req *x)
{
    json_t *v = json_object_get(x->msg, "room");
    if (!v) {
        proto_error(x->hc, x->id, "bad_field", "missing \"room\"");
        return NULL;
    }
    if (!json_is_string(v)) {
        proto_error(x->hc, x->id, "bad_field", "\"room\" must be a string");
        return NULL;
    }
    const char *why;
    if (!proto_room_valid(json_string_value(v), json_string_length(v), &why) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        proto_error(x->hc, x->id, "bad_room", "%s", why ? why : "room name contains NUL");
        return NULL;
    }
    return json_string_value(v);
}

/* Reads an optional non-negative integer field. Returns 1 if present (in *out), 0 if
 * absent, -1 after an error reply. */
static int get_uint(struct req *x, const char *field, uint64_t *out)
{
    json_t *v = json_object_get(x->msg, field);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        proto_error(x->hc, x->id, "bad_field", "\"%s\" must be a non-negative integer", field);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* The index of room r in hc's joined rooms, -1 if not joined. */
static int joined_index(const struct hconn *hc, const struct room *r)
{
    for (uint32_t i = 0; i < hc->nrooms; i++)
        if (hc->rooms[i] == r) return (int)i;
    return -1;
}

/* Writes "hub:<room>" into topic[HUB_ROOM_MAX + 8] and returns its length. */
static size_t topic_of(const char *room, char *topic)
{
    size_t n = strlen(room);
    memcpy(topic, TOPIC_PREFIX, sizeof TOPIC_PREFIX - 1);
    memcpy(topic + sizeof TOPIC_PREFIX - 1, room, n);
    return n + sizeof TOPIC_PREFIX - 1;
}

/* Checks the token's room restriction. Returns true, or false after an error reply. */
static bool allowed(struct req *x, const char *room)
{
    if (auth_room_allowed(hconn_rooms_claim(x->hc), room)) return true;
    proto_error(x->hc, x->id, "forbidden", "the token does not allow room \"%s\"", room);
    return false;
}

/* emit of hist_local_catchup: sends one text on the request's connection; false when it
 * was refused (backpressure) or the connection is closing. */
static bool emit_send(void *ctx, const char *text, size_t len)
{
    enum weft_send_result r = hub_send(ctx, text, len);
    return r == WEFT_SEND_SENT || r == WEFT_SEND_QUEUED;
}

/* Sends one page of the kept messages of r after seq `since` as deliveries (then a
 * history_more notice if some were left out), or a history_gap / backpressure error. */
static void send_backlog(struct req *x, struct room *r, uint64_t since)
{
    const char *code;
    char why[256];
    if (hist_local_catchup(&x->h->rooms, r, r->name, x->id, since, hist_budget_of(x->hc),
                           weft_loop_now(x->h->loop), emit_send, x->hc, &code, why, sizeof why) < 0)
        proto_error(x->hc, x->id, code, "%s", why);
}

/* {"type":"join","room":"r"[,"since":N]} → {"type":"joined","room":"r","seq":L,"members":M},
 * then (with since) one page of the kept messages after N, in order, and a history_more
 * notice when the page left some out. */
static void h_join(struct req *x)
{
    const char *name = get_room(x);
    uint64_t since = 0;
    int has_since = name ? get_uint(x, "since", &since) : -1;
    if (!name || has_since < 0 || !allowed(x, name)) return;
    struct hconn *hc = x->hc;
    struct room *r = rooms_find(&x->h->rooms, name);
    if (!r || joined_index(hc, r) < 0) {
        if (hc->nrooms >= x->h->cfg.max_rooms) {
            proto_error(hc, x->id, "too_many_rooms", "at most %u rooms per connection",
                        x->h->cfg.max_rooms);
            return;
        }
        if (!hc->rooms) {
            hc->rooms = calloc(x->h->cfg.max_rooms, sizeof *hc->rooms);
            if (!hc->rooms) {
                proto_error(hc, x->id, "internal", "out of memory");
                return;
            }
        }
        bool full;
        r = rooms_get(&x->h->rooms, name, &full);
        if (full) {
            proto_error(hc, x->id, "rooms_full", "the server holds --max-total-rooms rooms (%u)",
                        x->h->cfg.max_total_rooms);
            return;
        }
        if (r && x->h->sh && !x->h->broker && !workers_is_owner(x->h, name))
            room_set_mirror(&x->h->rooms, r); /* counted on its owner only */
        char topic[HUB_ROOM_MAX + 8];
        size_t tl = topic_of(name, topic);
        if (!r || room_add_member(&x->h->rooms, r, hc) < 0) {
            proto_error(hc, x->id, "internal", "out of memory");
            return;
        }
        if (weft_subscribe(hc->c, topic, tl) != WEFT_OK) {
            room_remove_member(&x->h->rooms, r, hc);
            proto_error(hc, x->id, "internal", "cannot subscribe");
            return;
        }
        hc->rooms[hc->nrooms++] = r;
        broker_ref(x->h->broker, topic, tl, 1);
        hlog(&x->h->log, WEFT_LOG_DEBUG, hc->id,
             json_pack("{s:s,s:s}", "event", "join", "room", name), "joined %s", name);
    }
    if (broker_hub_join(x->h->broker, hc, name, x->id, has_since == 1, since))
        return;     /* Redis answers (seq, members, backlog across nodes) */
    if (x->h->sh) { /* the owner worker answers (seq, members, backlog) */
        workers_join(hc, name, x->id, has_since == 1, since);
        return;
    }
    reply(x, json_pack("{s:s,s:s,s:I,s:I}", "type", "joined", "room", name, "seq",
                       (json_int_t)r->seq, "members", (json_int_t)r->nmembers));
    if (has_since == 1) send_backlog(x, r, since);
}

/* {"type":"leave","room":"r"} → {"type":"left","room":"r"}. */
static void h_leave(struct req *x)
{
    const char *name = get_room(x);
    if (!name) return;
    struct hconn *hc = x->hc;
    struct room *r = rooms_find(&x->h->rooms, name);
    int i = r ? joined_index(hc, r) : -1;
    if (i < 0) {
        proto_error(hc, x->id, "not_joined", "not in room \"%s\"", name);
        return;
    }
    char topic[HUB_ROOM_MAX + 8];
    size_t tl = topic_of(name, topic);
    weft_unsubscribe(hc->c, topic, tl);
    hc->rooms[i] = hc->rooms[--hc->nrooms];
    room_remove_member(&x->h->rooms, r, hc);
    broker_ref(x->h->broker, topic, tl, -1);
    broker_hub_leave(x->h->broker, hc, name);
    if (x->h->sh) workers_leave(hc, name);
    reply(x, json_pack("{s:s,s:s}", "type", "left", "room", name));
}

/* {"type":"publish","room":"r","data":V} → every other member gets
 * {"type":"message","room":"r","seq":N,"from":ID,"data":V,"ts":MS}; the sender gets
 * {"type":"published","room":"r","seq":N}. */
static void h_publish(struct req *x)
{
    const char *name = get_room(x);
    if (!name) return;
    json_t *data = json_object_get(x->msg, "data");
    if (!data) {
        proto_error(x->hc, x->id, "bad_field", "missing \"data\"");
        return;
    }
    struct hconn *hc = x->hc;
    struct hub *h = x->h;
    struct room *r = rooms_find(&h->rooms, name);
    if (!r || joined_index(hc, r) < 0) {
        proto_error(hc, x->id, "not_joined", "join room \"%s\" before publishing to it", name);
        return;
    }
    if (broker_hub_publish(h->broker, hc, name, x->id, data, x->t0))
        return;  /* Redis assigns the seq; delivered here and on the other nodes */
    if (h->sh) { /* the owner worker assigns the seq and fans out */
        workers_publish(hc, name, x->id, data, x->t0);
        return;
    }
    uint64_t seq = r->seq + 1;
    json_t *m = json_pack("{s:s,s:s,s:I,s:s,s:O,s:I}", "type", "message", "room", name, "seq",
                          (json_int_t)seq, "from", hc->user ? hc->user : hc->id, "data", data, "ts",
                          (json_int_t)hub_wall_ms());
    char *s = m ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(m);
    if (!s) {
        proto_error(hc, x->id, "internal", "out of memory");
        return;
    }
    r->seq = seq;
    size_t len = strlen(s);
    char topic[HUB_ROOM_MAX + 8];
    size_t tl = topic_of(name, topic);
    size_t n = weft_publish(h->server, topic, tl, s, len, WEFT_OP_TEXT, hc->c);
    h->m.publishes++;
    h->m.deliveries += n;
    if (n) hub_latency_start(h, x->t0);
    room_keep(&h->rooms, r, seq, weft_loop_now(h->loop), s, len);
    reply(x, json_pack("{s:s,s:s,s:I}", "type", "published", "room", name, "seq", (json_int_t)seq));
}

/* {"type":"presence","room":"r"} → {"type":"presence","room":"r","count":N,"members":[ids]}
 * (at most 1000 ids, "truncated":true beyond). */
static void h_presence(struct req *x)
{
    const char *name = get_room(x);
    if (!name || !allowed(x, name)) return;
    if (broker_hub_presence(x->h->broker, x->hc, name, x->id)) return;
    if (x->h->sh) {
        workers_presence(x->hc, name, x->id);
        return;
    }
    struct room *r = rooms_find(&x->h->rooms, name);
    json_t *ids = json_array();
    uint32_t n = r ? r->nmembers : 0;
    for (uint32_t i = 0; r && i < n && i < PRESENCE_MAX; i++) {
        const struct hconn *m = r->members[i];
        json_array_append_new(ids, json_string(m->user ? m->user : m->id));
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "type", "presence", "room", name, "count",
                          (json_int_t)n, "members", ids);
    if (o && n > PRESENCE_MAX) json_object_set_new(o, "truncated", json_true());
    reply(x, o);
}

/* {"type":"history","room":"r","since":N[,"limit":K]} →
 * {"type":"history","room":"r","seq":L,"messages":[deliveries after N, oldest first]}: one
 * page (history.c), with "more":true,"next":S when it left some out; or the error
 * history_gap when messages after N were already dropped, backpressure when the output queue
 * has no room. */
static void h_history(struct req *x)
{
    const char *name = get_room(x);
    if (!name) return;
    uint64_t since = 0, limit = 0;
    int hs = get_uint(x, "since", &since);
    if (hs < 0 || get_uint(x, "limit", &limit) < 0 || !allowed(x, name)) return;
    if (hs == 0) {
        proto_error(x->hc, x->id, "bad_field", "missing \"since\"");
        return;
    }
    if (broker_hub_history(x->h->broker, x->hc, name, x->id, since, limit)) return;
    if (x->h->sh) {
        workers_history(x->hc, name, x->id, since, limit);
        return;
    }
    struct room *r = rooms_find(&x->h->rooms, name);
    size_t n;
    const char *code;
    char why[256];
    char *out = hist_local_reply(&x->h->rooms, r, name, x->id, since, limit, hist_budget_of(x->hc),
                                 weft_loop_now(x->h->loop), &n, &code, why, sizeof why);
    if (!out) {
        proto_error(x->hc, x->id, code, "%s", why);
        return;
    }
    if (hub_send(x->hc, out, n) == WEFT_SEND_DROPPED) {
        hist_blocked_reason(why, sizeof why);
        proto_error(x->hc, x->id, "backpressure", "%s", why);
    }
    free(out);
}

/* {"type":"ping"} → {"type":"pong","ts":MS}. */
static void h_ping(struct req *x)
{
    reply(x, json_pack("{s:s,s:I}", "type", "pong", "ts", (json_int_t)hub_wall_ms()));
}

/* {"type":"auth","token":T} refreshes the connection's token in-band (same "sub" required):
 * → {"type":"authed","exp":S}. */
static void h_auth(struct req *x)
{
    struct hconn *hc = x->hc;
    json_t *t = json_object_get(x->msg, "token");
    if (!json_is_string(t)) {
        proto_error(hc, x->id, "bad_field", "\"token\" must be a string");
        return;
    }
    if (!x->h->cfg.auth_secret) {
        proto_error(hc, x->id, "bad_token", "authentication is not enabled on this server");
        return;
    }
    struct auth_claims cl;
    char why[128];
    if (auth_verify(x->h->auth, json_string_value(t), json_string_length(t), hub_wall_s(), &cl, why,
                    sizeof why) < 0) {
        proto_error(hc, x->id, "bad_token", "%s", why);
        return;
    }
    bool same = (!cl.sub && !hc->user) || (cl.sub && hc->user && !strcmp(cl.sub, hc->user));
    if (!same) {
        auth_claims_free(&cl);
        proto_error(hc, x->id, "bad_token", "the new token is for another subject");
        return;
    }
    struct hconn_auth *a = hc->auth;
    if (!a && (cl.jti || cl.exp || cl.rooms) && !(a = hconn_auth_new(hc))) {
        auth_claims_free(&cl);
        proto_error(hc, x->id, "internal", "out of memory");
        return;
    }
    int64_t exp = cl.exp;
    if (a) {
        free(a->jti);
        a->jti = cl.jti;
        cl.jti = NULL;
        json_decref(a->rooms_claim);
        a->rooms_claim = cl.rooms;
        cl.rooms = NULL;
        a->exp = cl.exp;
        weft_timer_stop(&a->exp_timer);
        if (a->exp) hub_arm_expiry(hc);
    }
    auth_claims_free(&cl);
    hlog(&x->h->log, WEFT_LOG_INFO, hc->id,
         json_pack("{s:s,s:I}", "event", "auth_refresh", "exp", (json_int_t)exp),
         "token refreshed");
    reply(x, json_pack("{s:s,s:I}", "type", "authed", "exp", (json_int_t)exp));
}

/* {"type":"subscribe_stats"} → {"type":"stats_subscribed"}, then a stats snapshot every
 * second (stats.c); {"type":"unsubscribe_stats"} → {"type":"stats_unsubscribed"}. */
static void h_subscribe_stats(struct req *x)
{
    stats_subscribe(x->hc, x->id, true);
}

static void h_unsubscribe_stats(struct req *x)
{
    stats_subscribe(x->hc, x->id, false);
}

/* The router: one row per message type. */
static const struct {
    const char *type;
    void (*fn)(struct req *x);
} routes[] = {
    {"join", h_join},
    {"leave", h_leave},
    {"publish", h_publish},
    {"presence", h_presence},
    {"history", h_history},
    {"ping", h_ping},
    {"auth", h_auth},
    {"subscribe_stats", h_subscribe_stats},
    {"unsubscribe_stats", h_unsubscribe_stats},
};

/* A message on /hub: parse, check, dispatch by type; see internal.h. */
void proto_message(struct hconn *hc, const char *data, size_t len, bool binary, uint64_t t0)
{
    hc->h->m.hub_requests++;
    if (binary) {
        proto_error(hc, NULL, "bad_json", "binary messages are not accepted: send JSON text");
        return;
    }
    json_error_t err;
    json_t *msg = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!msg) {
        proto_error(hc, NULL, "bad_json", "not JSON: %s at byte %d", err.text, err.position);
        return;
    }
    struct req x = {.hc = hc, .h = hc->h, .msg = msg, .t0 = t0};
    if (!json_is_object(msg)) {
        proto_error(hc, NULL, "not_object", "a request must be a JSON object");
        json_decref(msg);
        return;
    }
    x.id = json_object_get(msg, "id");
    json_t *type = json_object_get(msg, "type");
    if (!type) {
        proto_error(hc, x.id, "bad_field", "missing \"type\"");
    } else if (!json_is_string(type)) {
        proto_error(hc, x.id, "bad_field", "\"type\" must be a string");
    } else {
        const char *t = json_string_value(type);
        size_t i = 0;
        while (i < sizeof routes / sizeof routes[0] && strcmp(routes[i].type, t))
            i++;
        if (i < sizeof routes / sizeof routes[0])
            routes[i].fn(&x);
        else
            proto_error(hc, x.id, "unknown_type", "unknown type \"%.64s\"", t);
    }
    json_decref(msg);
}

/* Undoes hc's membership of room; see internal.h. */
void proto_unjoin(struct hconn *hc, const char *room)
{
    struct room *r = rooms_find(&hc->h->rooms, room);
    int i = r ? joined_index(hc, r) : -1;
    if (i < 0) return;
    char topic[HUB_ROOM_MAX + 8];
    size_t tl = topic_of(room, topic);
    if (hc->c) weft_unsubscribe(hc->c, topic, tl);
    hc->rooms[i] = hc->rooms[--hc->nrooms];
    broker_ref(hc->h->broker, topic, tl, -1);
    room_remove_member(&hc->h->rooms, r, hc);
}

/* Leaves every room of a closing connection. */
void proto_conn_gone(struct hconn *hc)
{
    for (uint32_t i = 0; i < hc->nrooms; i++) {
        if (hc->h->broker) {
            char topic[HUB_ROOM_MAX + 8];
            size_t tl = topic_of(hc->rooms[i]->name, topic);
            broker_ref(hc->h->broker, topic, tl, -1);
            broker_hub_leave(hc->h->broker, hc, hc->rooms[i]->name);
        }
        if (hc->h->sh) workers_leave(hc, hc->rooms[i]->name);
        room_remove_member(&hc->h->rooms, hc->rooms[i], hc);
    }
    hc->nrooms = 0;
    free(hc->rooms);
    hc->rooms = NULL;
}
