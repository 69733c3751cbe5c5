/*
 * redis_hub.c — the /hub operations of the Redis broker (redis.c): publish, join, history and
 * presence as EVALSHA of the Lua scripts (redis/NAME.lua), the worker heartbeat and presence
 * registration, and the write-back of rooms after a reconnect. The scheme, the seq rule across
 * outages and the failure rules are described at the top of redis.c.
 */
#include "hub/brokers/redis_int.h"

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
void scripts_hash(struct rbroker *b)
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
void scripts_load(struct rbroker *b)
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
bool rb_hub_join(struct hconn *hc, const char *room, const json_t *id, bool has_since,
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
bool rb_hub_history(struct hconn *hc, const char *room, const json_t *id, uint64_t since,
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
bool rb_hub_presence(struct hconn *hc, const char *room, const json_t *id)
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
void rb_hub_leave(struct hconn *hc, const char *room)
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
void on_heartbeat(struct weft_timer *t)
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
void resync(struct rbroker *b)
{
    send_heartbeat(b, NULL);
    register_presence(b);
    for (size_t i = 0; i < b->h->rooms.nbuckets; i++)
        for (struct room *r = b->h->rooms.buckets[i]; r; r = r->next)
            b->written_back += writeback_room(b, r);
}

/* /hub publish through Redis; see internal.h. */
bool rb_hub_publish(struct hconn *hc, const char *room, const json_t *id, const json_t *data,
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
