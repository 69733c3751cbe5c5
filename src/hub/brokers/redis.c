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
#include "hub/brokers/redis_int.h"

/* The node id of this process (shared by its workers), set by the first broker_new. */
char node_id[NODE_ID_LEN + 1];

static void rconn_start(struct rconn *rc);
static const struct broker_ops redis_ops;

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
uint64_t delivery_seq(const char *s, size_t len)
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
void seen_seq(struct hub *h, const char *name, size_t len, uint64_t seq)
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
