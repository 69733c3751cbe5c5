/*
 * redis.c — the multi-node broker of `weft serve --redis redis://host:port[/db]`: the room
 * scheme on Redis (hiredis' async API runs on weft's loop through redis_loop.c; the Lua
 * scripts are redis/NAME.lua, embedded at build time).
 *
 * Each hub (one per worker) has its own pair of connections: "pub" for commands and
 * PUBLISH, "sub" for SUBSCRIBE. Scheme (room R):
 *   channel  weft:room:R   raw rooms (/ws/R)          payload NODEID + 't'|'b' + bytes
 *   channel  weft:hub:R    /hub rooms                 payload NODEID + 't' + delivery JSON
 *   key      weft:seq:R    INCR'd per /hub publish (the seq)
 *   key      weft:hist:R   sorted set of the last --history-size deliveries, score = seq;
 *                          each delivery ends with its "ts" (ms), which --history-age reads
 *   key      weft:presence:R  hash NODEID:WORKER:CONN -> display name
 *   key      weft:node:NODEID:WORKER        liveness of one worker (PX 10 s, heartbeat 3 s):
 *                          presence readers ignore (and delete) fields of a worker without it
 *   key      weft:node:NODEID:WORKER:rooms  set of rooms where that worker registered members
 * A /hub publish is one script run (INCR, ZADD, trim, PUBLISH) so the seq, the history and the
 * cross-node fan-out are atomic and in seq order on every other node. The scripts are loaded
 * once per connection (SCRIPT LOAD) and run by their SHA-1 (EVALSHA); a NOSCRIPT reply (the
 * cache flushed under us) fails that one request as "unavailable" and loads them again.
 *
 * Seq across outages: the local room's seq follows Redis (max of the publish replies, of the
 * joins and of every delivery received), so a publish during an outage (in-process path)
 * continues after the last seq this node knew. When the command connection comes back, before
 * anything else, each room is written back: weft:seq:R raised to at least the local seq, and
 * the deliveries numbered during the outage (the local history: with --redis it holds nothing
 * else) ZADDed with their seqs and PUBLISHed; a node receiving a delivery whose seq it has
 * passed delivers it all the same (its members may lack it) and keeps its own seq.
 *
 * Delivery rule: a message is delivered to this node's members at once (in-process, as
 * without Redis) and published to Redis tagged with this process's node id; a node skips
 * payloads carrying its own id, so each member gets each message exactly once.
 * Subscriptions are reference counted per channel: SUBSCRIBE on the first local member,
 * UNSUBSCRIBE after the last; all of them again after a reconnect.
 *
 * Failures: while either connection is down the broker is "down" (/readyz 503, metric
 * weft_broker_up 0), hub requests take the in-process path (node-local seq and history,
 * written back on reconnect, see above), raw and /hub messages are delivered locally only and
 * counted in weft_broker_dropped_total;
 * each connection retries with exponential backoff (100 ms doubling to 2 s), logging each
 * attempt.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "hub/broker.h"
#include "hub/brokers/redis.h"
#include "hub/brokers/redis_loop.h"
#include "hub/hash.h"
#include "hub/internal.h"
#include "hub/redis_scripts.h"

#define NODE_ID_LEN 16
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define SUB_BUCKETS 256
#define FLUSH_MS 500
#define NODE_TTL_MS 10000 /* presence of a worker whose heartbeat stopped is ignored after */
#define HEARTBEAT_MS 3000

/* One subscribed channel and its local members. */
struct sub {
    struct sub *next;
    uint32_t refs;
    size_t len;
    char topic[]; /* weft topic, "room:R" or "hub:R"; the channel is "weft:" + topic */
};

/* One hiredis connection on the loop. */
struct rconn {
    struct rbroker *b;
    redisAsyncContext *ac; /* NULL while disconnected */
    bool connected;
    bool is_sub;
    bool ever_up; /* connected once (later connects are reconnects) */
    uint32_t backoff_ms;
    uint64_t attempts;
    struct weft_timer retry;
};

/* The Lua scripts (redis/NAME.lua), sent once per connection with SCRIPT LOAD and run with EVALSHA,
 * so a publish does not carry a kilobyte of script text for Redis to hash every time. */
enum script { S_PUBLISH, S_STATE, S_PRESENCE, S_WRITEBACK, S_PRESENCE_RESET, S_HEARTBEAT, S_COUNT };

struct rbroker {
    struct broker base; /* first: a struct broker * of this broker is its rbroker */
    struct hub *h;
    char host[256];
    int port;
    int db;
    struct rconn pub, sub;
    struct sub *subs[SUB_BUCKETS];
    bool closing;
    bool was_up;
    uint64_t down_since_ms;
    uint64_t dropped_gap;  /* messages not sent to Redis during the current gap */
    uint64_t written_back; /* /hub messages of the gap written back to Redis */
    struct weft_timer heartbeat;
    char sha[S_COUNT][2 * SHA_DIGEST_LENGTH + 1]; /* SHA-1 of each script, hex */
};

/* One room's write-back after a reconnect, waiting for its EVAL reply. */
struct writeback {
    struct rbroker *b;
    uint64_t last; /* the highest seq written */
    char room[HUB_ROOM_MAX + 1];
};

/* A /hub request waiting for its EVAL reply. */
struct pending {
    struct hconn *hc; /* reference held (hc->refs) */
    enum { P_PUBLISH, P_JOIN, P_HISTORY, P_PRESENCE } op;
    char *id;              /* the request's "id" as JSON text, NULL if none */
    char *prefix, *suffix; /* publish: the delivery around its seq */
    bool has_since;
    uint64_t since, t0, limit;
    char room[HUB_ROOM_MAX + 1];
};

/* The node id of this process (shared by its workers), set by the first broker_new. */
static char node_id[NODE_ID_LEN + 1];

static void rconn_start(struct rconn *rc);
static const struct broker_ops redis_ops;

/* The Redis broker behind a struct broker of redis_ops (NULL stays NULL). */
static struct rbroker *rb_of(struct broker *b)
{
    return (struct rbroker *)b;
}

/* ------------------------------------------------------------------ URL */

/* Parses redis://host[:port][/db] into host/port/db. Returns 0 or -1 with err filled. */
int redis_parse_url(const char *url, char *host, size_t hcap, int *port, int *db, char *err,
                    size_t cap)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1)) {
        snprintf(err, cap, "--redis: expected redis://host[:port][/db], got \"%s\"", url);
        return -1;
    }
    const char *p = url + sizeof scheme - 1;
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= hcap) {
        snprintf(err, cap, "--redis: missing or too long host in \"%s\"", url);
        return -1;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    *port = 6379;
    *db = 0;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535 || (*end && *end != '/')) {
            snprintf(err, cap, "--redis: bad port in \"%s\"", url);
            return -1;
        }
        *port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (*end || v < 0 || v > 1000000) {
            snprintf(err, cap, "--redis: bad database number in \"%s\"", url);
            return -1;
        }
        *db = (int)v;
    } else if (*p && strcmp(p, "/")) {
        snprintf(err, cap, "--redis: unexpected \"%s\" in \"%s\"", p, url);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ state and retries */

/* True when both connections are up. */
static bool rb_up(const struct rbroker *b)
{
    return b && b->pub.connected && b->sub.connected;
}

/* Records an up/down transition of the pair: logs the gap and counts the reconnect. */
static void update_state(struct rbroker *b)
{
    struct hub *h = b->h;
    bool up = rb_up(b);
    if (up == b->was_up) return;
    b->was_up = up;
    uint64_t now = weft_loop_now(h->loop);
    if (!up) {
        b->down_since_ms = now;
        b->dropped_gap = 0;
        b->written_back = 0;
        hlog(&h->log, WEFT_LOG_WARN, NULL,
             json_pack("{s:s,s:s,s:i}", "event", "broker_lost", "host", b->host, "port", b->port),
             "redis %s:%d lost: local delivery continues, messages of this gap do not reach "
             "other nodes",
             b->host, b->port);
        return;
    }
    if (b->pub.ever_up && b->down_since_ms) {
        h->m.broker_reconnects++;
        hlog(&h->log, WEFT_LOG_WARN, NULL,
             json_pack("{s:s,s:I,s:I,s:I}", "event", "broker_recovered", "gap_ms",
                       (json_int_t)(now - b->down_since_ms), "dropped", (json_int_t)b->dropped_gap,
                       "written_back", (json_int_t)b->written_back),
             "redis back after %llu ms; %llu messages of the gap were delivered locally only, "
             "%llu /hub messages of the gap written back to Redis (history, other nodes)",
             (unsigned long long)(now - b->down_since_ms), (unsigned long long)b->dropped_gap,
             (unsigned long long)b->written_back);
    } else {
        hlog(&h->log, WEFT_LOG_INFO, NULL,
             json_pack("{s:s,s:s,s:i,s:s}", "event", "broker_up", "host", b->host, "port", b->port,
                       "node", node_id),
             "redis %s:%d connected (node %s)", b->host, b->port, node_id);
    }
    b->down_since_ms = 0;
}

/* Retry timer: connect again. */
static void on_retry(struct weft_timer *t)
{
    struct rconn *rc = (struct rconn *)((char *)t - offsetof(struct rconn, retry));
    rconn_start(rc);
}

/* Schedules the next connection attempt with exponential backoff. */
static void schedule_retry(struct rconn *rc)
{
    if (rc->b->closing) return;
    rc->backoff_ms = rc->backoff_ms ? rc->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (rc->backoff_ms > BACKOFF_MAX_MS) rc->backoff_ms = BACKOFF_MAX_MS;
    weft_timer_start(rc->b->h->loop, &rc->retry, rc->backoff_ms);
}

static void resubscribe_all(struct rbroker *b);
static void resync(struct rbroker *b);
static void scripts_load(struct rbroker *b);

/* hiredis: the connection attempt finished. */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *rc = ac->data;
    struct rbroker *b = rc->b;
    if (status != REDIS_OK) {
        hlog(&b->h->log, WEFT_LOG_WARN, NULL,
             json_pack("{s:s,s:s,s:I,s:s}", "event", "broker_connect_failed", "conn",
                       rc->is_sub ? "sub" : "pub", "attempt", (json_int_t)rc->attempts, "error",
                       ac->errstr),
             "redis %s:%d (%s) attempt %llu failed: %s; retrying in %u ms", b->host, b->port,
             rc->is_sub ? "sub" : "pub", (unsigned long long)rc->attempts, ac->errstr,
             rc->backoff_ms
                 ? (rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2)
                 : BACKOFF_MIN_MS);
        rc->ac = NULL; /* hiredis frees the context after this callback */
        schedule_retry(rc);
        update_state(b);
        return;
    }
    rc->connected = true;
    rc->backoff_ms = 0;
    if (rc->is_sub)
        resubscribe_all(b);
    else {
        scripts_load(b); /* first on the connection, then the write-back: before any publish */
        resync(b);
    }
    update_state(b);
    rc->ever_up = true;
}

/* hiredis: an established connection ended. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *rc = ac->data;
    struct rbroker *b = rc->b;
    (void)status;
    rc->ac = NULL;
    rc->connected = false;
    if (b->closing) return;
    hlog(&b->h->log, WEFT_LOG_WARN, NULL,
         json_pack("{s:s,s:s,s:s}", "event", "broker_disconnected", "conn",
                   rc->is_sub ? "sub" : "pub", "error", ac->errstr[0] ? ac->errstr : "closed"),
         "redis (%s) disconnected: %s", rc->is_sub ? "sub" : "pub",
         ac->errstr[0] ? ac->errstr : "closed by the server");
    update_state(b);
    schedule_retry(rc);
}

/* redis_loop: hiredis freed rc's context (the fd is closed). */
static void on_gone(void *arg)
{
    struct rconn *rc = arg;
    rc->ac = NULL;
    rc->connected = false;
}

/* Starts one connection attempt (logged). */
static void rconn_start(struct rconn *rc)
{
    struct rbroker *b = rc->b;
    rc->attempts++;
    hlog(&b->h->log, rc->attempts > 1 ? WEFT_LOG_INFO : WEFT_LOG_DEBUG, NULL,
         json_pack("{s:s,s:s,s:I}", "event", "broker_connecting", "conn",
                   rc->is_sub ? "sub" : "pub", "attempt", (json_int_t)rc->attempts),
         "redis %s:%d (%s): connection attempt %llu", b->host, b->port, rc->is_sub ? "sub" : "pub",
         (unsigned long long)rc->attempts);
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    if (!ac || ac->err) {
        hlog(&b->h->log, WEFT_LOG_WARN, NULL,
             json_pack("{s:s,s:I}", "event", "broker_connect_failed", "attempt",
                       (json_int_t)rc->attempts),
             "redis %s:%d: attempt %llu failed: %s", b->host, b->port,
             (unsigned long long)rc->attempts, ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_retry(rc);
        return;
    }
    if (redis_loop_attach(ac, b->h->loop, on_gone, rc) < 0) {
        hlog(&b->h->log, WEFT_LOG_WARN, NULL, NULL, "redis %s:%d: attempt %llu failed: %s", b->host,
             b->port, (unsigned long long)rc->attempts, "out of memory");
        redisAsyncFree(ac);
        schedule_retry(rc);
        return;
    }
    rc->ac = ac;
    ac->data = rc;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisAsyncSetConnectCallback(ac, on_connect); /* arms the first write event */
    if (b->db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", b->db);
}

/* ------------------------------------------------------------------ subscriptions */

/* The "seq" of a delivery {"type":"message","room":"R","seq":N,…} (0 if none). The room
 * name cannot hold a quote, so the first "seq": is the delivery's own. */
static uint64_t delivery_seq(const char *s, size_t len)
{
    static const char key[] = "\"seq\":";
    size_t kl = sizeof key - 1, end = len < HUB_ROOM_MAX + 64 ? len : HUB_ROOM_MAX + 64;
    for (size_t i = 0; i + kl < end; i++) {
        if (memcmp(s + i, key, kl)) continue;
        uint64_t v = 0;
        for (size_t j = i + kl; j < len && s[j] >= '0' && s[j] <= '9'; j++)
            v = v * 10 + (uint64_t)(s[j] - '0');
        return v;
    }
    return 0;
}

/* A seq of room (name[0..len)) learnt from Redis: the local room's seq becomes at least that
 * (so an outage continues after it). No-op for a room this hub does not hold. */
static void seen_seq(struct hub *h, const char *name, size_t len, uint64_t seq)
{
    char room[HUB_ROOM_MAX + 1];
    if (!seq || len > HUB_ROOM_MAX) return;
    memcpy(room, name, len);
    room[len] = '\0';
    struct room *r = rooms_find(&h->rooms, room);
    if (r && r->seq < seq) r->seq = seq;
}

/* A message on the sub connection: deliver payloads of other nodes to local subscribers. A
 * /hub delivery also moves the local room's seq forward (even one of this process, sent by
 * another worker); one whose seq this node has passed (written back by a node after an
 * outage) is delivered all the same: members that lack it take it, the others have it. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rbroker *b = priv;
    redisReply *rep = r;
    if (!rep || b->closing || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) return;
    redisReply *kind = rep->element[0], *ch = rep->element[1], *pl = rep->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") ||
        ch->type != REDIS_REPLY_STRING || pl->type != REDIS_REPLY_STRING || ch->len <= 5 ||
        pl->len < NODE_ID_LEN + 1)
        return;
    const char *topic = ch->str + 5; /* "weft:" */
    bool hub = !strncmp(topic, "hub:", 4);
    if (hub)
        seen_seq(b->h, topic + 4, ch->len - 9,
                 delivery_seq(pl->str + NODE_ID_LEN + 1, pl->len - NODE_ID_LEN - 1));
    if (!memcmp(pl->str, node_id, NODE_ID_LEN)) /* our own: delivered locally already */
        return;
    enum weft_opcode op = pl->str[NODE_ID_LEN] == 'b' ? WEFT_OP_BINARY : WEFT_OP_TEXT;
    size_t n = weft_publish(b->h->server, topic, ch->len - 5, pl->str + NODE_ID_LEN + 1,
                            pl->len - NODE_ID_LEN - 1, op, NULL);
    if (hub) b->h->m.deliveries += n;
}

/* Sends SUBSCRIBE or UNSUBSCRIBE for one topic's channel (if the sub connection is up). */
static void sub_command(struct rbroker *b, const char *verb, const char *topic, size_t len)
{
    if (!b->sub.connected || !b->sub.ac) return;
    if (verb[0] == 'S')
        redisAsyncCommand(b->sub.ac, on_sub_reply, b, "SUBSCRIBE weft:%b", topic, len);
    else
        redisAsyncCommand(b->sub.ac, on_sub_reply, b, "UNSUBSCRIBE weft:%b", topic, len);
}

/* Subscribes again to every channel with local members (after the sub connection came
 * back). */
static void resubscribe_all(struct rbroker *b)
{
    for (size_t i = 0; i < SUB_BUCKETS; i++)
        for (struct sub *s = b->subs[i]; s; s = s->next)
            sub_command(b, "SUBSCRIBE", s->topic, s->len);
}

/* Adds delta (+1 / -1) local members to topic ("room:R" or "hub:R"); subscribes on the first,
 * unsubscribes after the last. */
static void rb_ref(struct rbroker *b, const char *topic, size_t len, int delta)
{
    if (!b) return;
    struct sub **pp = &b->subs[hub_fnv1a(topic, len) % SUB_BUCKETS];
    while (*pp && ((*pp)->len != len || memcmp((*pp)->topic, topic, len)))
        pp = &(*pp)->next;
    struct sub *s = *pp;
    if (delta > 0) {
        if (!s) {
            s = calloc(1, sizeof *s + len + 1);
            if (!s) return;
            memcpy(s->topic, topic, len);
            s->len = len;
            *pp = s;
            sub_command(b, "SUBSCRIBE", topic, len);
        }
        s->refs++;
        return;
    }
    if (!s) return;
    if (--s->refs == 0) {
        *pp = s->next;
        sub_command(b, "UNSUBSCRIBE", topic, len);
        free(s);
    }
}

/* ------------------------------------------------------------------ raw rooms */

/* Publishes a raw room message (already delivered locally) to the other nodes; see
 * internal.h. */
static void rb_publish_raw(struct rbroker *b, const char *topic, size_t topic_len, const void *data,
                           size_t len, bool binary)
{
    if (!rb_up(b)) {
        b->h->m.broker_dropped++;
        b->dropped_gap++;
        return;
    }
    char head[NODE_ID_LEN + 1];
    memcpy(head, node_id, NODE_ID_LEN);
    head[NODE_ID_LEN] = binary ? 'b' : 't';
    redisAsyncCommand(b->pub.ac, NULL, NULL, "PUBLISH weft:%b %b%b", topic, topic_len, head,
                      (size_t)sizeof head, data, len);
}

/* ------------------------------------------------------------------ /hub rooms */

/* The scripts, from the files src/hub/brokers/redis/NAME.lua (embedded at build time, see
 * redis_scripts.h):
 * helpers.lua (trim, live) is prepended to those that use it. What each one takes and
 * returns is written at the top of its file. */
static const char lua_publish[] = WEFT_LUA_HELPERS WEFT_LUA_PUBLISH;
static const char lua_state[] = WEFT_LUA_HELPERS WEFT_LUA_STATE;
static const char lua_presence[] = WEFT_LUA_HELPERS WEFT_LUA_PRESENCE;
static const char lua_writeback[] = WEFT_LUA_HELPERS WEFT_LUA_WRITEBACK;
static const char lua_presence_reset[] = WEFT_LUA_PRESENCE_RESET;
static const char lua_heartbeat[] = WEFT_LUA_HEARTBEAT;

static const char *const scripts[S_COUNT] = {
    [S_PUBLISH] = lua_publish,
    [S_STATE] = lua_state,
    [S_PRESENCE] = lua_presence,
    [S_WRITEBACK] = lua_writeback,
    [S_PRESENCE_RESET] = lua_presence_reset,
    [S_HEARTBEAT] = lua_heartbeat,
};

/* Computes the SHA-1 (hex) of every script into b->sha: the names EVALSHA runs them by. */
static void scripts_hash(struct rbroker *b)
{
    for (size_t i = 0; i < S_COUNT; i++) {
        unsigned char d[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)scripts[i], strlen(scripts[i]), d);
        for (size_t k = 0; k < SHA_DIGEST_LENGTH; k++)
            snprintf(b->sha[i] + 2 * k, 3, "%02x", d[k]);
    }
}

/* Sends SCRIPT LOAD for every script on the command connection: first thing after it comes
 * up (Redis runs a connection's commands in order, so the EVALSHAs behind find them), and
 * again when a reply says NOSCRIPT (the script cache was flushed under us). */
static void scripts_load(struct rbroker *b)
{
    for (size_t i = 0; i < S_COUNT; i++)
        redisAsyncCommand(b->pub.ac, NULL, NULL, "SCRIPT LOAD %s", scripts[i]);
}

/* True (after asking for the scripts again) if rep is Redis's NOSCRIPT error. */
static bool scripts_missing(struct rbroker *b, const redisReply *rep)
{
    if (!rep || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOSCRIPT", 8) != 0)
        return false;
    if (b->pub.connected && b->pub.ac) scripts_load(b);
    return true;
}

/* Frees a pending request and drops its connection reference. */
static void pending_done(struct pending *p)
{
    struct hconn *hc = p->hc;
    hc->refs--;
    if (hc->gone && !hc->refs) hub_conn_release(hc);
    free(p->id);
    free(p->prefix);
    free(p->suffix);
    free(p);
}

/* A new pending request for hc (reference taken). NULL when out of memory. */
static struct pending *pending_new(struct hconn *hc, int op, const char *room, const json_t *id)
{
    struct pending *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->hc = hc;
    p->op = op;
    snprintf(p->room, sizeof p->room, "%s", room);
    if (id && !(p->id = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT))) {
        free(p);
        return NULL;
    }
    hc->refs++;
    return p;
}

/* Sends obj (consumed) to p's connection with the request id added. */
static void pending_reply(struct pending *p, json_t *obj)
{
    if (!obj) return;
    if (p->id) {
        json_t *v = json_loads(p->id, JSON_DECODE_ANY, NULL);
        if (v) json_object_set_new(obj, "id", v);
    }
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (s) {
        hub_send(p->hc, s, strlen(s));
        free(s);
    }
}

/* Sends an error reply for p. */
static void pending_error(struct pending *p, const char *code, const char *reason)
{
    metrics_error(&p->hc->h->m, code);
    pending_reply(p, json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "reason", reason));
}

/* Integer value of a reply element (0 if not an integer). */
static uint64_t reply_uint(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
}

/* The EVAL of a publish returned: deliver locally, answer "published". */
static void publish_done(struct pending *p, const redisReply *rep)
{
    struct hconn *hc = p->hc;
    struct hub *h = hc->h;
    uint64_t seq = reply_uint(rep);
    seen_seq(h, p->room, strlen(p->room), seq);
    char num[24];
    int nl = snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    size_t pl = strlen(p->prefix), sl = strlen(p->suffix);
    char *msg = malloc(pl + (size_t)nl + sl + 1);
    if (!msg) {
        pending_error(p, "internal", "out of memory");
        return;
    }
    memcpy(msg, p->prefix, pl);
    memcpy(msg + pl, num, (size_t)nl);
    memcpy(msg + pl + (size_t)nl, p->suffix, sl + 1);
    size_t len = pl + (size_t)nl + sl;
    char topic[HUB_ROOM_MAX + 8];
    int tl = snprintf(topic, sizeof topic, "hub:%s", p->room);
    const struct weft_conn *ex = hc->gone ? NULL : hc->c;
    size_t n = h->sh ? workers_publish_raw(h, topic, (size_t)tl, msg, len, WEFT_OP_TEXT, ex)
                     : weft_publish(h->server, topic, (size_t)tl, msg, len, WEFT_OP_TEXT, ex);
    free(msg);
    h->m.publishes++;
    h->m.deliveries += n;
    if (hc->gone) return;
    if (n) hub_latency_start(h, p->t0);
    pending_reply(p, json_pack("{s:s,s:s,s:I}", "type", "published", "room", p->room, "seq",
                               (json_int_t)seq));
}

/* Sends the page of a join's catch-up or of a history reply chosen among the nm deliveries
 * Redis returned (it returns one more than a page holds, so a full page knows there are
 * more): see history.c. */
static void page_done(struct pending *p, const redisReply *msgs, size_t nm, uint64_t seq)
{
    const char **texts = calloc(nm + 1, sizeof *texts);
    size_t *lens = calloc(nm + 1, sizeof *lens);
    uint64_t *seqs = calloc(nm + 1, sizeof *seqs);
    json_t *id = p->id ? json_loads(p->id, JSON_DECODE_ANY, NULL) : NULL;
    char why[200];
    if (!texts || !lens || !seqs) {
        pending_error(p, "internal", "out of memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < nm; i++)
        if (msgs->element[i]->type == REDIS_REPLY_STRING) {
            texts[n] = msgs->element[i]->str;
            lens[n] = msgs->element[i]->len;
            seqs[n] = delivery_seq(texts[n], lens[n]);
            n++;
        }
    struct hist_page pg;
    hist_pick(n, lens, seqs, p->since, p->op == P_JOIN ? 0 : p->limit, hist_budget_of(p->hc), &pg);
    if (pg.blocked) {
        hist_blocked_reason(why, sizeof why);
        pending_error(p, "backpressure", why);
        goto out;
    }
    if (p->op == P_JOIN) {
        for (size_t i = 0; i < pg.n; i++) {
            enum weft_send_result r = hub_send(p->hc, texts[i], lens[i]);
            if (r == WEFT_SEND_DROPPED) {
                hist_blocked_reason(why, sizeof why);
                pending_error(p, "backpressure", why);
                goto out;
            }
        }
        char *t = pg.more ? hist_more_text(p->room, id, seq, pg.next) : NULL;
        if (t) hub_send(p->hc, t, strlen(t));
        free(t);
        goto out;
    }
    size_t len;
    char *out = hist_reply_text(p->room, id, seq, texts, lens, pg.n, pg.more, pg.next, &len);
    if (!out) {
        pending_error(p, "internal", "out of memory");
        goto out;
    }
    if (hub_send(p->hc, out, len) == WEFT_SEND_DROPPED) {
        hist_blocked_reason(why, sizeof why);
        pending_error(p, "backpressure", why);
    }
    free(out);
out:
    json_decref(id);
    free(texts);
    free(lens);
    free(seqs);
}

/* The EVAL of a join or history returned: answer from the room's state. */
static void state_done(struct pending *p, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
        pending_error(p, "internal", "unexpected broker reply");
        return;
    }
    uint64_t seq = reply_uint(rep->element[0]), members = reply_uint(rep->element[1]);
    uint64_t first = reply_uint(rep->element[2]);
    bool gap = reply_uint(rep->element[3]) != 0;
    seen_seq(p->hc->h, p->room, strlen(p->room), seq);
    const redisReply *msgs = rep->element[4];
    if (p->op == P_JOIN)
        pending_reply(p, json_pack("{s:s,s:s,s:I,s:I}", "type", "joined", "room", p->room, "seq",
                                   (json_int_t)seq, "members", (json_int_t)members));
    if (p->op == P_JOIN && !p->has_since) return;
    if (gap) {
        char why[200];
        snprintf(why, sizeof why,
                 "messages after seq %llu are no longer all kept (kept: %llu..%llu)",
                 (unsigned long long)p->since, (unsigned long long)first, (unsigned long long)seq);
        pending_error(p, "history_gap", why);
        return;
    }
    size_t nm = msgs->type == REDIS_REPLY_ARRAY ? msgs->elements : 0;
    page_done(p, msgs, nm, seq);
}

/* The live members of a presence returned. */
static void presence_done(struct pending *p, const redisReply *rep)
{
    json_t *ids = json_array();
    size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
    for (size_t i = 0; i < n && i < 1000; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            json_array_append_new(ids, json_stringn(rep->element[i]->str, rep->element[i]->len));
    json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "type", "presence", "room", p->room, "count",
                          (json_int_t)n, "members", ids);
    if (o && n > 1000) json_object_set_new(o, "truncated", json_true());
    pending_reply(p, o);
}

/* A reply to a /hub request: answer the connection (if still there), then release it. */
static void on_hub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct pending *p = priv;
    redisReply *rep = r;
    struct hconn *hc = p->hc;
    bool closing = hc->h->broker == NULL || rb_of(hc->h->broker)->closing;
    if (!closing && (!rep || rep->type == REDIS_REPLY_ERROR)) {
        scripts_missing(rb_of(hc->h->broker), rep); /* this request fails; the next finds them */
        if (p->op == P_PUBLISH) hc->h->m.broker_dropped++;
        if (!hc->gone) {
            char why[200];
            snprintf(why, sizeof why, "broker: %s; retry", rep ? rep->str : "connection lost");
            pending_error(p, "unavailable", why);
        }
    } else if (!closing && !hc->gone) {
        if (p->op == P_PUBLISH)
            publish_done(p, rep);
        else if (p->op == P_PRESENCE)
            presence_done(p, rep);
        else
            state_done(p, rep);
    } else if (!closing && p->op == P_PUBLISH) {
        publish_done(p, rep); /* the sender left: its message still reaches the room */
    }
    pending_done(p);
}

/* The presence field of hc: NODEID:WORKER:CONN. */
static void member_field(const struct hconn *hc, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%u:%p", node_id, hc->h->worker, (const void *)hc);
}

/* The keys of this worker: its liveness key weft:node:NODEID:WORKER (live) and its room set
 * (that + ":rooms"). */
static void worker_keys(const struct hub *h, char *live, size_t lcap, char *set, size_t scap)
{
    snprintf(live, lcap, "weft:node:%s:%u", node_id, h->worker);
    snprintf(set, scap, "weft:node:%s:%u:rooms", node_id, h->worker);
}

/* The history age and the wall clock as script arguments (milliseconds). */
static void age_args(const struct hub *h, char *age, size_t acap, char *now, size_t ncap)
{
    snprintf(age, acap, "%u", h->cfg.history_age_ms);
    snprintf(now, ncap, "%lld", (long long)hub_wall_ms());
}

/* Runs the state script for p (join registers hc). Returns false if not sent. */
static bool send_state(struct rbroker *b, struct pending *p, bool register_member, uint64_t limit)
{
    char kseq[HUB_ROOM_MAX + 16], khist[HUB_ROOM_MAX + 16], kpres[HUB_ROOM_MAX + 20];
    snprintf(kseq, sizeof kseq, "weft:seq:%s", p->room);
    snprintf(khist, sizeof khist, "weft:hist:%s", p->room);
    snprintf(kpres, sizeof kpres, "weft:presence:%s", p->room);
    char field[96] = "", since[24] = "-1", lim[24], live[64], set[72], age[16], now[24];
    const char *name = "";
    if (register_member) {
        member_field(p->hc, field, sizeof field);
        name = p->hc->user ? p->hc->user : p->hc->id;
    }
    if (p->has_since) snprintf(since, sizeof since, "%llu", (unsigned long long)p->since);
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)limit);
    worker_keys(b->h, live, sizeof live, set, sizeof set);
    age_args(b->h, age, sizeof age, now, sizeof now);
    return redisAsyncCommand(b->pub.ac, on_hub_reply, p,
                             "EVALSHA %s 4 %s %s %s %s %s %s %s %s %s %s %s", b->sha[S_STATE], kseq,
                             khist, kpres, set, field, name, since, lim, p->room, age,
                             now) == REDIS_OK;
}

/* /hub join through Redis; see internal.h. */
static bool rb_hub_join(struct hconn *hc, const char *room, const json_t *id, bool has_since,
                        uint64_t since)
{
    struct rbroker *b = rb_of(hc->h->broker);
    if (!rb_up(b)) return false;
    struct pending *p = pending_new(hc, P_JOIN, room, id);
    if (!p) return false;
    p->has_since = has_since;
    p->since = since;
    if (!send_state(b, p, true, HIST_PAGE_COUNT + 1)) {
        pending_done(p);
        return false;
    }
    return true;
}

/* /hub history through Redis; see internal.h. */
static bool rb_hub_history(struct hconn *hc, const char *room, const json_t *id, uint64_t since,
                           uint64_t limit)
{
    struct rbroker *b = rb_of(hc->h->broker);
    if (!rb_up(b)) return false;
    struct pending *p = pending_new(hc, P_HISTORY, room, id);
    if (!p) return false;
    p->has_since = true;
    p->since = since;
    p->limit = limit;
    if (!send_state(b, p, false, hist_count(limit) + 1)) {
        pending_done(p);
        return false;
    }
    return true;
}

/* /hub presence through Redis; see internal.h. */
static bool rb_hub_presence(struct hconn *hc, const char *room, const json_t *id)
{
    struct rbroker *b = rb_of(hc->h->broker);
    if (!rb_up(b)) return false;
    struct pending *p = pending_new(hc, P_PRESENCE, room, id);
    if (!p) return false;
    if (redisAsyncCommand(b->pub.ac, on_hub_reply, p, "EVALSHA %s 1 weft:presence:%s",
                          b->sha[S_PRESENCE], room) != REDIS_OK) {
        pending_done(p);
        return false;
    }
    return true;
}

/* Removes hc from the room's presence hash (best effort: while Redis is down nothing is sent,
 * and the reconnect clears this worker's fields before registering its members again); see
 * internal.h. */
static void rb_hub_leave(struct hconn *hc, const char *room)
{
    struct rbroker *b = rb_of(hc->h->broker);
    if (!b || !b->pub.connected || !b->pub.ac) return;
    char field[96];
    member_field(hc, field, sizeof field);
    redisAsyncCommand(b->pub.ac, NULL, NULL, "HDEL weft:presence:%s %s", room, field);
}

/* Registers this worker's presence from scratch: removes every field it may have left in
 * Redis (members who left while it was cut off), then HSETs each local /hub member again and
 * lists the room in the worker's set. Sent after the heartbeat, so readers see it live. */
static void register_presence(struct rbroker *b)
{
    char live[64], set[72], prefix[NODE_ID_LEN + 16];
    worker_keys(b->h, live, sizeof live, set, sizeof set);
    snprintf(prefix, sizeof prefix, "%s:%u:", node_id, b->h->worker);
    redisAsyncCommand(b->pub.ac, NULL, NULL, "EVALSHA %s 1 %s %s", b->sha[S_PRESENCE_RESET], set,
                      prefix);
    for (struct hconn *hc = b->h->conns; hc; hc = hc->next) {
        if (hc->kind != HC_HUB || hc->self_check) continue;
        char field[96];
        member_field(hc, field, sizeof field);
        for (uint32_t i = 0; i < hc->nrooms; i++) {
            redisAsyncCommand(b->pub.ac, NULL, NULL, "HSET weft:presence:%s %s %s",
                              hc->rooms[i]->name, field, hc->user ? hc->user : hc->id);
            redisAsyncCommand(b->pub.ac, NULL, NULL, "SADD %s %s", set, hc->rooms[i]->name);
        }
    }
}

/* The heartbeat's reply: if the liveness key had expired while connected (a stalled loop),
 * readers may have deleted this worker's fields: register them again. */
static void on_heartbeat_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rbroker *b = priv;
    redisReply *rep = r;
    if (!b->closing && scripts_missing(b, rep)) return;
    if (!rep || b->closing || rep->type != REDIS_REPLY_INTEGER || rep->integer != 0 ||
        !b->pub.connected)
        return;
    hlog(&b->h->log, WEFT_LOG_WARN, NULL, json_pack("{s:s}", "event", "presence_expired"),
         "redis: this worker's presence had expired (heartbeat late); registering it again");
    register_presence(b);
}

/* Sends the heartbeat (liveness key and room set refreshed for NODE_TTL_MS); cb gets the
 * reply (NULL: none wanted). */
static void send_heartbeat(struct rbroker *b, redisCallbackFn *cb)
{
    char live[64], set[72], ttl[16];
    worker_keys(b->h, live, sizeof live, set, sizeof set);
    snprintf(ttl, sizeof ttl, "%d", NODE_TTL_MS);
    redisAsyncCommand(b->pub.ac, cb, b, "EVALSHA %s 2 %s %s %s", b->sha[S_HEARTBEAT], live, set,
                      ttl);
}

/* Heartbeat timer (every HEARTBEAT_MS while the broker exists). */
static void on_heartbeat(struct weft_timer *t)
{
    struct rbroker *b = (struct rbroker *)((char *)t - offsetof(struct rbroker, heartbeat));
    if (b->pub.connected && b->pub.ac) send_heartbeat(b, on_heartbeat_reply);
    weft_timer_start(b->h->loop, &b->heartbeat, HEARTBEAT_MS);
}

/* A room's write-back returned: its deliveries up to wb->last are in Redis now (on an error
 * or a lost connection they are written again at the next reconnect). */
static void on_writeback_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct writeback *wb = priv;
    redisReply *rep = r;
    if (rep && rep->type != REDIS_REPLY_ERROR && !wb->b->closing) {
        struct room *room = rooms_find(&wb->b->h->rooms, wb->room);
        if (room && room->synced < wb->last) room->synced = wb->last;
    } else if (rep && !wb->b->closing) {
        scripts_missing(wb->b, rep);
        hlog(&wb->b->h->log, WEFT_LOG_WARN, NULL,
             json_pack("{s:s,s:s,s:s}", "event", "writeback_failed", "room", wb->room, "error",
                       rep->str),
             "redis: write-back of room %s failed: %s", wb->room, rep->str);
    }
    free(wb);
}

/* Writes room r back to Redis (see lua_writeback): its seq, and the kept deliveries newer
 * than r->synced, which were numbered here during the outage. Returns the number of
 * deliveries sent (0 also when out of memory). */
static size_t writeback_room(struct rbroker *b, struct room *r)
{
    struct hub *h = b->h;
    room_expire(&h->rooms, r, weft_loop_now(h->loop));
    if (!r->seq) return 0;
    uint32_t first = 0;
    while (first < r->hist_len && room_entry(r, first)->seq <= r->synced)
        first++;
    size_t nmsg = r->hist_len - first, argc = 11 + 2 * nmsg;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    char(*nums)[24] = malloc((nmsg + 1) * sizeof *nums);
    struct writeback *wb = calloc(1, sizeof *wb);
    if (!argv || !lens || !nums || !wb) {
        free(argv);
        free(lens);
        free(nums);
        free(wb);
        return 0;
    }
    char kseq[HUB_ROOM_MAX + 16], khist[HUB_ROOM_MAX + 16], chan[HUB_ROOM_MAX + 16];
    char nsize[16], age[16], now[24], tag[NODE_ID_LEN + 2];
    snprintf(kseq, sizeof kseq, "weft:seq:%s", r->name);
    snprintf(khist, sizeof khist, "weft:hist:%s", r->name);
    snprintf(chan, sizeof chan, "weft:hub:%s", r->name);
    snprintf(nsize, sizeof nsize, "%u", h->cfg.history_size);
    age_args(h, age, sizeof age, now, sizeof now);
    snprintf(tag, sizeof tag, "%st", node_id);
    snprintf(nums[nmsg], sizeof nums[nmsg], "%llu", (unsigned long long)r->seq);
    const char *fixed[11] = {
        "EVALSHA", b->sha[S_WRITEBACK], "2", kseq, khist, nums[nmsg], nsize, age, now, chan, tag};
    for (size_t i = 0; i < 11; i++) {
        argv[i] = fixed[i];
        lens[i] = strlen(fixed[i]);
    }
    wb->b = b;
    snprintf(wb->room, sizeof wb->room, "%s", r->name);
    for (size_t i = 0; i < nmsg; i++) {
        const struct hist_entry *e = room_entry(r, first + (uint32_t)i);
        snprintf(nums[i], sizeof nums[i], "%llu", (unsigned long long)e->seq);
        argv[11 + 2 * i] = nums[i];
        lens[11 + 2 * i] = strlen(nums[i]);
        argv[12 + 2 * i] = e->json;
        lens[12 + 2 * i] = e->len;
        wb->last = e->seq;
    }
    int rc = redisAsyncCommandArgv(b->pub.ac, on_writeback_reply, wb, (int)argc, argv, lens);
    free(argv);
    free(lens);
    free(nums);
    if (rc != REDIS_OK) {
        free(wb);
        return 0;
    }
    return nmsg;
}

/* After the command connection came (back) up, before anything else goes through it: the
 * heartbeat, this worker's presence from scratch, and every room it holds written back. */
static void resync(struct rbroker *b)
{
    send_heartbeat(b, NULL);
    register_presence(b);
    for (size_t i = 0; i < b->h->rooms.nbuckets; i++)
        for (struct room *r = b->h->rooms.buckets[i]; r; r = r->next)
            b->written_back += writeback_room(b, r);
}

/* /hub publish through Redis; see internal.h. */
static bool rb_hub_publish(struct hconn *hc, const char *room, const json_t *id, const json_t *data,
                           uint64_t t0)
{
    struct hub *h = hc->h;
    struct rbroker *b = rb_of(h->broker);
    if (!b) return false;
    if (!rb_up(b)) {
        h->m.broker_dropped++;
        b->dropped_gap++;
        return false;
    }
    struct pending *p = pending_new(hc, P_PUBLISH, room, id);
    if (!p) return false;
    p->t0 = t0;
    json_t *from = json_string(hc->user ? hc->user : hc->id);
    char *fs = from ? json_dumps(from, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *ds = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(from);
    int a = asprintf(&p->prefix, "{\"type\":\"message\",\"room\":\"%s\",\"seq\":", room);
    int c = fs && ds ? asprintf(&p->suffix, ",\"from\":%s,\"data\":%s,\"ts\":%lld}", fs, ds,
                                (long long)hub_wall_ms())
                     : -1;
    free(fs);
    free(ds);
    if (a < 0 || c < 0) {
        if (a < 0) p->prefix = NULL;
        if (c < 0) p->suffix = NULL;
        pending_done(p);
        return false;
    }
    char kseq[HUB_ROOM_MAX + 16], khist[HUB_ROOM_MAX + 16], chan[HUB_ROOM_MAX + 16];
    char nsize[16], tag[NODE_ID_LEN + 2], age[16], now[24];
    snprintf(kseq, sizeof kseq, "weft:seq:%s", room);
    snprintf(khist, sizeof khist, "weft:hist:%s", room);
    snprintf(chan, sizeof chan, "weft:hub:%s", room);
    /* A delivery over --history-max-message is published but not kept (history size 0). */
    size_t dlen = strlen(p->prefix) + 20 + strlen(p->suffix);
    bool keep = dlen <= h->cfg.history_max_message;
    if (!keep && h->cfg.history_size) h->rooms.hist_skipped++;
    snprintf(nsize, sizeof nsize, "%u", keep ? h->cfg.history_size : 0u);
    snprintf(tag, sizeof tag, "%st", node_id);
    age_args(h, age, sizeof age, now, sizeof now);
    if (redisAsyncCommand(b->pub.ac, on_hub_reply, p, "EVALSHA %s 2 %s %s %s %s %s %s %s %s %s",
                          b->sha[S_PUBLISH], kseq, khist, p->prefix, p->suffix, nsize, chan, tag,
                          age, now) != REDIS_OK) {
        pending_done(p);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ life cycle */

/* Creates the broker of hub h and starts connecting; see internal.h. */
struct broker *redis_broker_new(struct hub *h, const char *url, char *err, size_t cap)
{
    struct rbroker *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    scripts_hash(b);
    if (redis_parse_url(url, b->host, sizeof b->host, &b->port, &b->db, err, cap) < 0) {
        free(b);
        return NULL;
    }
    if (!node_id[0]) {
        uint8_t r[NODE_ID_LEN / 2];
        weft_random_bytes(&h->rnd, r, sizeof r);
        for (size_t i = 0; i < sizeof r; i++)
            snprintf(node_id + 2 * i, 3, "%02x", r[i]);
    }
    b->h = h;
    b->pub.b = b;
    b->sub.b = b;
    b->sub.is_sub = true;
    b->pub.retry.cb = on_retry;
    b->sub.retry.cb = on_retry;
    b->down_since_ms = 0;
    b->heartbeat.cb = on_heartbeat;
    b->base.ops = &redis_ops;
    h->broker = &b->base;
    rconn_start(&b->pub);
    rconn_start(&b->sub);
    weft_timer_start(h->loop, &b->heartbeat, HEARTBEAT_MS);
    return &b->base;
}

/* Closes both connections and frees the broker; see internal.h. */
static void rb_free(struct rbroker *b)
{
    if (!b) return;
    b->closing = true;
    weft_timer_stop(&b->heartbeat);
    struct rconn *rcs[2] = {&b->pub, &b->sub};
    for (int i = 0; i < 2; i++) {
        struct rconn *rc = rcs[i];
        weft_timer_stop(&rc->retry);
        if (rc->ac && rc->connected) /* presence removals of the last connections */
            redis_loop_flush(rc->ac, FLUSH_MS);
        if (rc->ac) redisAsyncFree(rc->ac); /* pending callbacks run with a NULL reply */
    }
    for (size_t i = 0; i < SUB_BUCKETS; i++)
        while (b->subs[i]) {
            struct sub *s = b->subs[i];
            b->subs[i] = s->next;
            free(s);
        }
    b->h->broker = NULL;
    free(b);
}

/* ------------------------------------------------------------------ broker.h */

/* broker_ops.up: both connections up. */
static bool op_up(const struct broker *b)
{
    return rb_up((const struct rbroker *)b);
}

/* broker_ops.ref. */
static void op_ref(struct broker *b, const char *topic, size_t len, int delta)
{
    rb_ref(rb_of(b), topic, len, delta);
}

/* broker_ops.publish_raw. */
static void op_publish_raw(struct broker *b, const char *topic, size_t topic_len, const void *data,
                           size_t len, bool binary)
{
    rb_publish_raw(rb_of(b), topic, topic_len, data, len, binary);
}

/* broker_ops.hub_publish (b is hc's hub's broker). */
static bool op_hub_publish(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                           const json_t *data, uint64_t t0)
{
    (void)b;
    return rb_hub_publish(hc, room, id, data, t0);
}

/* broker_ops.hub_join. */
static bool op_hub_join(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                        bool has_since, uint64_t since)
{
    (void)b;
    return rb_hub_join(hc, room, id, has_since, since);
}

/* broker_ops.hub_history. */
static bool op_hub_history(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                           uint64_t since, uint64_t limit)
{
    (void)b;
    return rb_hub_history(hc, room, id, since, limit);
}

/* broker_ops.hub_presence. */
static bool op_hub_presence(struct broker *b, struct hconn *hc, const char *room, const json_t *id)
{
    (void)b;
    return rb_hub_presence(hc, room, id);
}

/* broker_ops.hub_leave. */
static void op_hub_leave(struct broker *b, struct hconn *hc, const char *room)
{
    (void)b;
    rb_hub_leave(hc, room);
}

/* broker_ops.free. */
static void op_free(struct broker *b)
{
    rb_free(rb_of(b));
}

static const struct broker_ops redis_ops = {
    .name = "redis",
    .up = op_up,
    .ref = op_ref,
    .publish_raw = op_publish_raw,
    .hub_publish = op_hub_publish,
    .hub_join = op_hub_join,
    .hub_history = op_hub_history,
    .hub_presence = op_hub_presence,
    .hub_leave = op_hub_leave,
    .free = op_free,
};
