/*
 * workers.c — `weft serve --workers N` (N > 1): N threads, each with its own weft loop and its
 * own hub (server on the shared port with SO_REUSEPORT), joined in one weft_group.
 *
 * Nothing is shared on the hot path: a connection lives and dies on the worker that accepted
 * it. What crosses threads goes through the receiving loop's inbox (weft_loop_defer):
 *   - raw rooms (/ws/<room>): weft_group_publish (one encoded frame, shared by reference);
 *   - /hub rooms: each room has ONE owner worker, FNV-1a(name) mod N. The owner assigns the
 *     sequence numbers, keeps the history and the list of members on every worker. A member's
 *     worker forwards publish / join / leave / presence / history to the owner, which answers
 *     through the origin's inbox; a publish is fanned out by the owner with
 *     weft_group_publish, so every member on every worker sees a room's messages in the
 *     owner's (seq) order, and a sender's messages in the order it sent them (one FIFO inbox
 *     from its worker to the owner, one from the owner to each worker);
 *   - /metrics: every worker is asked for a snapshot of its counters; the sums are rendered;
 *   - the per-IP connection table (mutex) and the connection count (atomic), checked at the
 *     handshake only.
 * A connection with requests in flight is kept (hconn refs) until their replies return.
 *
 * Shutdown: the first SIGINT/SIGTERM (delivered to worker 0's loop) asks every worker to drain
 * (close 1001, --shutdown-timeout); a second stops every loop at once. Then, in lockstep
 * (barriers): the inboxes are drained while every hub still exists, each worker frees its
 * hub, the inboxes are drained again (requests to a freed hub bounce back to free their
 * connection), and the loops are freed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hash.h"
#include "hub/internal.h"
#include "hub/ipbook.h"

#define DRAIN_ROUNDS 3

/* One worker: its loop and hub. h is written and read only on the worker's own thread once
 * the threads run (NULL after hub_free). */
struct wslot {
    struct hub_workers *sh;
    unsigned idx;
    /* latest counters published by this worker's stats stream (under stats_lock) */
    struct weft_server_stats stats;
    size_t nconns, nrooms;
    struct weft_loop *loop;
    struct hub *h;
    pthread_t thread;
    bool drained; /* the graceful shutdown completed */
};

struct hub_workers {
    size_t n;
    struct wslot *slots;
    struct weft_group *group;
    pthread_mutex_t stats_lock; /* the wslot stats fields */
    struct ipbook *ips;         /* the per-IP book shared by every hub (ipbook.h) */
    atomic_uint_fast64_t conns_all;
    atomic_uint_fast64_t rooms_all; /* rooms of every worker (--max-total-rooms) */
    pthread_barrier_t barrier;
    /* The start gate: threads 1..n-1 wait on it until every one of them was created (gate 1)
     * or one could not be (gate -1: they return without running, worker_run fails). */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_cond;
    int gate;
    bool stopping; /* worker 0's thread only (signals) */
};

/* What one worker asks another. */
enum wop {
    W_JOIN,
    W_LEAVE,
    W_PUBLISH,
    W_PRESENCE,
    W_HISTORY,
    W_REPLY,
    W_SNAP,
    W_SNAP_REPLY,
    W_SHUTDOWN,
    W_RELOAD_TLS
};

/* Snapshots of every worker's counters for one /metrics request. */
struct collect {
    struct weft_deferred *d;
    size_t pending;
    struct metrics_snap snaps[];
};

/* A message between workers (allocated by the sender, freed by the last receiver). */
struct wmsg {
    enum wop op;
    unsigned from, to;
    struct hconn *hc;                /* requests with a reply: the origin connection (ref) */
    const void *key;                 /* member identity at the owner */
    const struct weft_conn *exclude; /* publish: the sender, not sent its own message */
    char *name;                      /* join: display name; publish: "from" */
    char *id;                        /* the request's "id" as JSON text, NULL if none */
    char *data;                      /* publish: "data" as JSON text */
    bool has_since;
    uint64_t since, limit, t0;
    enum wop req_op;           /* the request a reply answers */
    struct hist_budget budget; /* join with since, history: the origin's room for a page */
    char **outs;               /* reply: texts to send, in order */
    size_t nouts;
    const char *errcode; /* reply: an error reply among outs (metrics) */
    bool published;      /* reply to a publish (latency sample) */
    struct collect *mc;  /* W_SNAP / W_SNAP_REPLY */
    char room[HUB_ROOM_MAX + 1];
};

static void dispatch(void *arg);

/* The running workers (one `weft serve` per process). */
static struct hub_workers *workers_current;

/* ------------------------------------------------------------------ helpers */

/* The worker that owns a room: FNV-1a of its name modulo the number of workers. */
static unsigned room_owner(const struct hub_workers *sh, const char *room)
{
    return (unsigned)(hub_fnv1a_str(room) % sh->n);
}

/* True if this worker owns room (always without several workers); see internal.h. */
bool workers_is_owner(const struct hub *h, const char *room)
{
    return !h->sh || room_owner(h->sh, room) == h->worker;
}

/* Frees a message and what it owns. */
static void wmsg_free(struct wmsg *m)
{
    for (size_t i = 0; i < m->nouts; i++)
        free(m->outs[i]);
    free(m->outs);
    free(m->name);
    free(m->id);
    free(m->data);
    free(m);
}

/* Hands m to worker `to`: at once when that is the calling worker, else through its inbox. */
static void post(struct hub_workers *sh, unsigned to, struct wmsg *m)
{
    m->to = to;
    if (to == m->from) {
        dispatch(m);
        return;
    }
    if (weft_loop_defer(sh->slots[to].loop, dispatch, m) != WEFT_OK) {
        if (m->hc && m->op != W_REPLY) /* still on the origin's thread: drop the ref */
            m->hc->refs--;
        wmsg_free(m);
    }
}

/* A new request from hc's worker to the owner of room. NULL when out of memory. */
static struct wmsg *request(struct hconn *hc, enum wop op, const char *room, const json_t *id,
                            bool want_reply)
{
    struct wmsg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->op = op;
    m->req_op = op;
    m->from = hc->h->worker;
    m->key = hc;
    snprintf(m->room, sizeof m->room, "%s", room);
    if (id) m->id = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    if (want_reply) {
        m->hc = hc;
        hc->refs++;
    }
    return m;
}

/* Appends a reply text (taken over). */
static void add_out(struct wmsg *m, char *text)
{
    if (!text) return;
    char **o = realloc(m->outs, (m->nouts + 1) * sizeof *o);
    if (!o) {
        free(text);
        return;
    }
    m->outs = o;
    m->outs[m->nouts++] = text;
}

/* Serialises obj (consumed) with the request's id (JSON text, may be NULL) added. */
static char *dump_with_id(json_t *obj, const char *id)
{
    if (!obj) return NULL;
    if (id) {
        json_t *v = json_loads(id, JSON_DECODE_ANY, NULL);
        if (v) json_object_set_new(obj, "id", v);
    }
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return s;
}

/* Adds an error reply {"type":"error","code","reason"[,"id"]} to m. */
static void add_error(struct wmsg *m, const char *code, const char *reason)
{
    m->errcode = code;
    add_out(
        m, dump_with_id(json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "reason", reason),
                        m->id));
}

/* Turns request m into its reply and sends it back to the origin worker. */
static void reply_back(struct hub_workers *sh, struct wmsg *m)
{
    unsigned origin = m->from;
    m->op = W_REPLY;
    m->from = m->to;
    post(sh, origin, m);
}

/* ------------------------------------------------------------------ the owner's side */

/* The error of a room that cannot be created (--max-total-rooms) or out of memory. */
static void add_get_error(struct hub *h, struct wmsg *m, bool full)
{
    char why[96];
    snprintf(why, sizeof why, "the server holds --max-total-rooms rooms (%u)",
             h->cfg.max_total_rooms);
    add_error(m, full ? "rooms_full" : "internal", full ? why : "out of memory");
}

/* emit of hist_local_catchup: appends a copy of text to the reply. */
static bool emit_out(void *ctx, const char *text, size_t len)
{
    struct wmsg *m = ctx;
    size_t before = m->nouts;
    add_out(m, strndup(text, len));
    return m->nouts > before;
}

/* join: registers the member and answers joined (seq, members) and one page of backlog. */
static void owner_join(struct hub *h, struct wmsg *m)
{
    bool full;
    struct room *r = rooms_get(&h->rooms, m->room, &full);
    if (!r) {
        add_get_error(h, m, full);
        return;
    }
    if (room_add_rmember(r, m->from, m->key, m->name ? m->name : "?") < 0) {
        add_error(m, "internal", "out of memory");
        return;
    }
    add_out(m, dump_with_id(json_pack("{s:s,s:s,s:I,s:I}", "type", "joined", "room", m->room, "seq",
                                      (json_int_t)r->seq, "members", (json_int_t)r->nrmembers),
                            m->id));
    if (!m->has_since) return;
    json_t *id = m->id ? json_loads(m->id, JSON_DECODE_ANY, NULL) : NULL;
    const char *code;
    char why[256];
    if (hist_local_catchup(&h->rooms, r, m->room, id, m->since, m->budget, weft_loop_now(h->loop),
                           emit_out, m, &code, why, sizeof why) < 0)
        add_error(m, code, why);
    json_decref(id);
}

/* publish: assigns the next seq, fans the delivery out to every worker, keeps it, and
 * answers published. */
static void owner_publish(struct hub_workers *sh, struct hub *h, struct wmsg *m)
{
    bool full;
    struct room *r = rooms_get(&h->rooms, m->room, &full);
    if (!r) {
        add_get_error(h, m, full);
        return;
    }
    json_t *data = m->data ? json_loads(m->data, JSON_DECODE_ANY, NULL) : NULL;
    if (!data) {
        add_error(m, "internal", "out of memory");
        return;
    }
    if (r->seq < m->since) /* --redis outage: continue after the last seq the sender saw */
        r->seq = m->since;
    uint64_t seq = r->seq + 1;
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:o,s:I}", "type", "message", "room", m->room, "seq",
                          (json_int_t)seq, "from", m->name ? m->name : "?", "data", data, "ts",
                          (json_int_t)hub_wall_ms());
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        add_error(m, "internal", "out of memory");
        return;
    }
    r->seq = seq;
    size_t len = strlen(s);
    char topic[HUB_ROOM_MAX + 8];
    int tl = snprintf(topic, sizeof topic, "hub:%s", m->room);
    weft_group_publish(sh->group, topic, (size_t)tl, s, len, WEFT_OP_TEXT, m->exclude);
    h->m.publishes++;
    /* Copies queued: every member but the sender (the workers deliver them; a copy refused
     * by a slow consumer's drop policy is counted by weft_backpressure_drops_total). */
    h->m.deliveries += r->nrmembers ? r->nrmembers - 1 : 0;
    room_keep(&h->rooms, r, seq, weft_loop_now(h->loop), s, len);
    m->published = true;
    add_out(m, dump_with_id(json_pack("{s:s,s:s,s:I}", "type", "published", "room", m->room, "seq",
                                      (json_int_t)seq),
                            m->id));
}

/* presence: the members on every worker. */
static void owner_presence(struct hub *h, struct wmsg *m)
{
    struct room *r = rooms_find(&h->rooms, m->room);
    uint32_t n = r ? r->nrmembers : 0;
    json_t *ids = json_array();
    for (uint32_t i = 0; r && i < n && i < 1000; i++)
        json_array_append_new(ids, json_string(r->rmembers[i].name));
    json_t *o = json_pack("{s:s,s:s,s:I,s:o}", "type", "presence", "room", m->room, "count",
                          (json_int_t)n, "members", ids);
    if (o && n > 1000) json_object_set_new(o, "truncated", json_true());
    add_out(m, dump_with_id(o, m->id));
}

/* history: one page of the kept messages after since. */
static void owner_history(struct hub *h, struct wmsg *m)
{
    json_t *id = m->id ? json_loads(m->id, JSON_DECODE_ANY, NULL) : NULL;
    size_t len;
    const char *code;
    char why[256];
    char *text =
        hist_local_reply(&h->rooms, rooms_find(&h->rooms, m->room), m->room, id, m->since, m->limit,
                         m->budget, weft_loop_now(h->loop), &len, &code, why, sizeof why);
    json_decref(id);
    if (text)
        add_out(m, text);
    else
        add_error(m, code, why);
}

/* ------------------------------------------------------------------ the origin's side */

/* A reply arrived: send its texts to the connection if it is still there, then drop the
 * request's reference. A history page or catch-up message refused by backpressure stops the
 * reply (the rest would leave a hole) and is answered with the error "backpressure"; a join
 * the owner refused with rooms_full is undone here too. */
static void origin_reply(struct hub *h, struct wmsg *m)
{
    struct hconn *hc = m->hc;
    if (h && !hc->gone) {
        bool paged = m->req_op == W_HISTORY || (m->req_op == W_JOIN && m->has_since);
        for (size_t i = 0; i < m->nouts; i++)
            if (hub_send(hc, m->outs[i], strlen(m->outs[i])) == WEFT_SEND_DROPPED && paged) {
                char why[160];
                hist_blocked_reason(why, sizeof why);
                json_t *id = m->id ? json_loads(m->id, JSON_DECODE_ANY, NULL) : NULL;
                proto_error(hc, id, "backpressure", "%s", why);
                json_decref(id);
                break;
            }
        if (m->errcode) metrics_error(&h->m, m->errcode);
        if (m->req_op == W_JOIN && m->errcode && !strcmp(m->errcode, "rooms_full"))
            proto_unjoin(hc, m->room);
        if (m->published && !m->errcode) hub_latency_start(h, m->t0);
    }
    hc->refs--;
    if (hc->gone && !hc->refs) hub_conn_release(hc);
}

/* The graceful shutdown of one worker is over: its loop stops. */
static void worker_drained(void *arg)
{
    struct wslot *w = arg;
    w->drained = true;
    weft_loop_stop(w->loop);
}

/* Runs a message on the receiving worker's thread. */
static void dispatch(void *arg)
{
    struct wmsg *m = arg;
    /* The slot array is immutable while the threads run. */
    struct hub_workers *sh = workers_current;
    struct wslot *w = &sh->slots[m->to];
    struct hub *h = w->h;
    switch (m->op) {
    case W_REPLY:
        origin_reply(h, m);
        wmsg_free(m);
        return;
    case W_LEAVE:
        if (h) {
            struct room *r = rooms_find(&h->rooms, m->room);
            if (r) room_remove_rmember(&h->rooms, r, m->from, m->key);
        }
        wmsg_free(m);
        return;
    case W_SNAP:
        if (h) metrics_snapshot(h, &m->mc->snaps[m->to]);
        {
            unsigned origin = m->from;
            m->op = W_SNAP_REPLY;
            m->from = m->to;
            post(sh, origin, m);
        }
        return;
    case W_SNAP_REPLY:
        if (--m->mc->pending == 0) {
            if (h) metrics_respond_deferred(m->mc->d, m->mc->snaps, sh->n);
            free(m->mc);
        }
        wmsg_free(m);
        return;
    case W_SHUTDOWN:
        if (h) hub_shutdown(h, WEFT_CLOSE_GOING_AWAY, worker_drained, w);
        wmsg_free(m);
        return;
    case W_RELOAD_TLS:
        if (h && weft_server_reload_tls(h->server) == WEFT_OK)
            hlog(&h->log, WEFT_LOG_INFO, NULL,
                 json_pack("{s:s,s:i}", "event", "tls_reload", "worker", (int)m->to),
                 "SIGHUP: TLS certificate reloaded from %s (worker %u)", h->cfg.tls_cert_file,
                 m->to);
        else if (h)
            hlog(&h->log, WEFT_LOG_ERROR, NULL,
                 json_pack("{s:s,s:i}", "event", "tls_reload_failed", "worker", (int)m->to),
                 "SIGHUP: TLS reload failed, keeping the old certificate: %s",
                 weft_tls_last_error());
        wmsg_free(m);
        return;
    case W_JOIN:
    case W_PUBLISH:
    case W_PRESENCE:
    case W_HISTORY:
        break;
    }
    if (h) {
        if (m->op == W_JOIN)
            owner_join(h, m);
        else if (m->op == W_PUBLISH)
            owner_publish(sh, h, m);
        else if (m->op == W_PRESENCE)
            owner_presence(h, m);
        else
            owner_history(h, m);
    }
    reply_back(sh, m); /* a freed owner bounces the request, freeing the origin's ref */
}

/* ------------------------------------------------------------------ entries from hub/proto */

/* Forwards a join to the room's owner; see internal.h. */
void workers_join(struct hconn *hc, const char *room, const json_t *id, bool has_since,
                  uint64_t since)
{
    struct wmsg *m = request(hc, W_JOIN, room, id, true);
    if (!m) {
        proto_error(hc, id, "internal", "out of memory");
        return;
    }
    m->name = strdup(hc->user ? hc->user : hc->id);
    m->has_since = has_since;
    m->since = since;
    m->budget = hist_budget_of(hc);
    post(hc->h->sh, room_owner(hc->h->sh, room), m);
}

/* Tells the room's owner that hc left; see internal.h. */
void workers_leave(struct hconn *hc, const char *room)
{
    struct wmsg *m = request(hc, W_LEAVE, room, NULL, false);
    if (m) post(hc->h->sh, room_owner(hc->h->sh, room), m);
}

/* Forwards a publish to the room's owner; see internal.h. */
void workers_publish(struct hconn *hc, const char *room, const json_t *id, const json_t *data,
                     uint64_t t0)
{
    struct wmsg *m = request(hc, W_PUBLISH, room, id, true);
    if (!m) {
        proto_error(hc, id, "internal", "out of memory");
        return;
    }
    m->name = strdup(hc->user ? hc->user : hc->id);
    m->data = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);
    m->exclude = hc->c;
    m->t0 = t0;
    struct room *r = rooms_find(&hc->h->rooms, room); /* its seq follows Redis (--redis) */
    m->since = r ? r->seq : 0;
    post(hc->h->sh, room_owner(hc->h->sh, room), m);
}

/* Asks the room's owner for its members; see internal.h. */
void workers_presence(struct hconn *hc, const char *room, const json_t *id)
{
    struct wmsg *m = request(hc, W_PRESENCE, room, id, true);
    if (!m) {
        proto_error(hc, id, "internal", "out of memory");
        return;
    }
    post(hc->h->sh, room_owner(hc->h->sh, room), m);
}

/* Asks the room's owner for its history; see internal.h. */
void workers_history(struct hconn *hc, const char *room, const json_t *id, uint64_t since,
                     uint64_t limit)
{
    struct wmsg *m = request(hc, W_HISTORY, room, id, true);
    if (!m) {
        proto_error(hc, id, "internal", "out of memory");
        return;
    }
    m->since = since;
    m->limit = limit;
    m->budget = hist_budget_of(hc);
    post(hc->h->sh, room_owner(hc->h->sh, room), m);
}

/* Publishes a raw room message on every worker; see internal.h. */
size_t workers_publish_raw(struct hub *h, const char *topic, size_t topic_len, const void *data,
                           size_t len, enum weft_opcode op, const struct weft_conn *exclude)
{
    return weft_group_publish(h->sh->group, topic, topic_len, data, len, op, exclude);
}

/* GET /metrics: snapshots from every worker, summed; see internal.h. */
void workers_metrics(struct weft_request *req, struct hub *h)
{
    struct hub_workers *sh = h->sh;
    struct collect *mc = calloc(1, sizeof *mc + sh->n * sizeof mc->snaps[0]);
    struct weft_deferred *d = mc ? weft_request_defer(req) : NULL;
    if (!d) {
        free(mc);
        weft_request_respond(req, 503, NULL, NULL, "out of memory\n", 14);
        return;
    }
    mc->d = d;
    mc->pending = sh->n;
    for (unsigned i = 0; i < sh->n; i++) {
        struct wmsg *m = calloc(1, sizeof *m);
        if (!m) { /* counts as answered, with zeros */
            if (--mc->pending == 0) {
                metrics_respond_deferred(d, mc->snaps, sh->n);
                free(mc);
            }
            continue;
        }
        m->op = W_SNAP;
        m->from = h->worker;
        m->mc = mc;
        post(sh, i, m);
    }
}

/* Connections counted against --max-connections; see internal.h. */
uint64_t hub_conns_all(const struct hub *h)
{
    return h->sh ? (uint64_t)atomic_load(&h->sh->conns_all) : h->nconns_all;
}

/* Adds to the count across workers; see internal.h. */
void workers_count(struct hub *h, int delta)
{
    if (!h->sh) return;
    if (delta > 0)
        atomic_fetch_add(&h->sh->conns_all, (uint_fast64_t)delta);
    else
        atomic_fetch_sub(&h->sh->conns_all, (uint_fast64_t)-delta);
}

/* Publishes this worker's counters and returns the sums over every worker (each as of its
 * own last stats tick, at most a second old); see internal.h. */
void workers_stats_sum(struct hub *h, struct weft_server_stats *cur, size_t *nconns, size_t *nrooms)
{
    if (!h->sh) return;
    struct hub_workers *sh = h->sh;
    struct weft_server_stats sum = {0};
    size_t conns = 0, rooms = 0;
    pthread_mutex_lock(&sh->stats_lock);
    struct wslot *me = &sh->slots[h->worker];
    me->stats = *cur;
    me->nconns = *nconns;
    me->nrooms = *nrooms;
    for (size_t i = 0; i < sh->n; i++) {
        const struct weft_server_stats *w = &sh->slots[i].stats;
        sum.connections += w->connections;
        sum.messages_in += w->messages_in;
        sum.messages_out += w->messages_out;
        sum.bytes_in += w->bytes_in;
        sum.bytes_out += w->bytes_out;
        sum.dropped_backpressure += w->dropped_backpressure;
        sum.publishes += w->publishes;
        sum.deliveries += w->deliveries;
        conns += sh->slots[i].nconns;
        rooms += sh->slots[i].nrooms; /* each /hub room lives on one owner worker */
    }
    pthread_mutex_unlock(&sh->stats_lock);
    *cur = sum;
    *nconns = conns;
    *nrooms = rooms;
}

/* ------------------------------------------------------------------ running */

/* SIGINT/SIGTERM on worker 0: the first asks every worker to drain, a second stops all. */
static void on_signal(int signo, void *arg)
{
    struct hub_workers *sh = arg;
    struct hub *h0 = sh->slots[0].h;
    if (sh->stopping) {
        if (h0) hlog(&h0->log, WEFT_LOG_WARN, NULL, NULL, "signal %d again: stopping now", signo);
        for (size_t i = 0; i < sh->n; i++)
            weft_loop_stop(sh->slots[i].loop);
        return;
    }
    sh->stopping = true;
    if (h0)
        hlog(&h0->log, WEFT_LOG_INFO, NULL,
             json_pack("{s:s,s:i,s:I}", "event", "shutdown", "signal", signo, "workers",
                       (json_int_t)sh->n),
             "%s: shutting down %zu workers (closing connections with 1001, up to %u ms)",
             strsignal(signo), sh->n, h0->cfg.shutdown_ms);
    for (unsigned i = 0; i < sh->n; i++) {
        struct wmsg *m = calloc(1, sizeof *m);
        if (!m) {
            weft_loop_stop(sh->slots[i].loop);
            continue;
        }
        m->op = W_SHUTDOWN;
        m->from = 0;
        post(sh, i, m);
    }
}

/* SIGHUP on worker 0: every worker reloads its TLS certificate and key. */
static void on_sighup(int signo, void *arg)
{
    (void)signo;
    struct hub_workers *sh = arg;
    for (unsigned i = 0; i < sh->n; i++) {
        struct wmsg *m = calloc(1, sizeof *m);
        if (!m) continue;
        m->op = W_RELOAD_TLS;
        m->from = 0;
        post(sh, i, m);
    }
}

/* Polls a loop for about ms milliseconds (deferred work of other workers). */
static void poll_for(struct weft_loop *loop, uint64_t ms)
{
    uint64_t end = hub_mono_ns() + ms * 1000000u;
    do
        weft_loop_poll(loop, 5);
    while (hub_mono_ns() < end);
}

/* One worker: runs its loop until shutdown, then the lockstep teardown (see the top). */
static void *worker_main(void *arg)
{
    struct wslot *w = arg;
    struct hub_workers *sh = w->sh;
    int rc = weft_loop_run(w->loop);
    if (rc != WEFT_OK && w->h)
        hlog(&w->h->log, WEFT_LOG_ERROR, NULL, NULL, "worker %u: event loop failed: %s", w->idx,
             weft_strerror(rc));
    pthread_barrier_wait(&sh->barrier); /* every loop has stopped */
    for (int i = 0; i < DRAIN_ROUNDS; i++) {
        poll_for(w->loop, 10);
        pthread_barrier_wait(&sh->barrier);
    }
    weft_group_remove(sh->group, w->h->server);
    hub_free(w->h);
    w->h = NULL;
    pthread_barrier_wait(&sh->barrier); /* every hub is freed */
    for (int i = 0; i < DRAIN_ROUNDS; i++) {
        poll_for(w->loop, 20);
        pthread_barrier_wait(&sh->barrier);
    }
    return NULL;
}

/* Thread entry of workers 1..n-1: waits at the start gate, then runs worker_main unless the
 * start was called off. Returns NULL. */
static void *worker_thread(void *arg)
{
    struct wslot *w = arg;
    struct hub_workers *sh = w->sh;
    pthread_mutex_lock(&sh->gate_lock);
    while (sh->gate == 0)
        pthread_cond_wait(&sh->gate_cond, &sh->gate_lock);
    int gate = sh->gate;
    pthread_mutex_unlock(&sh->gate_lock);
    return gate > 0 ? worker_main(arg) : NULL;
}

/* Opens the start gate (go > 0) or calls the start off (go < 0). */
static void open_gate(struct hub_workers *sh, int go)
{
    pthread_mutex_lock(&sh->gate_lock);
    sh->gate = go;
    pthread_cond_broadcast(&sh->gate_cond);
    pthread_mutex_unlock(&sh->gate_lock);
}

/* Runs `weft serve` with several workers; see internal.h. */
int workers_run(const struct hub_config *cfg0)
{
    struct hub_log lg = {.out = stderr, .level = cfg0->log_level, .format = cfg0->log_format};
    struct hub_config cfg;
    if (hub_config_copy(&cfg, cfg0) < 0) {
        hub_config_free(&cfg);
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "out of memory");
        return 1;
    }
    cfg.reuse_port = true;
    size_t n = cfg.workers;
    struct hub_workers *sh = calloc(1, sizeof *sh);
    struct wslot *slots = calloc(n, sizeof *slots);
    struct ipbook *ipb = ipbook_new(cfg.handshake_rate, cfg.handshake_burst);
    struct weft_group *g = weft_group_new();
    int status = 1;
    size_t created = 0;
    if (!sh || !slots || !ipb || !g) {
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "out of memory");
        goto out;
    }
    sh->n = n;
    sh->slots = slots;
    sh->group = g;
    sh->ips = ipb;
    atomic_init(&sh->conns_all, 0);
    atomic_init(&sh->rooms_all, 0);
    pthread_mutex_init(&sh->stats_lock, NULL);
    pthread_mutex_init(&sh->gate_lock, NULL);
    pthread_cond_init(&sh->gate_cond, NULL);
    workers_current = sh;
    for (size_t i = 0; i < n; i++) {
        slots[i].sh = sh;
        slots[i].idx = (unsigned)i;
        slots[i].loop = hub_loop_new(&cfg, &lg, i == 0);
        if (!slots[i].loop) {
            hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "cannot create an event loop: %s",
                 strerror(errno));
            goto out;
        }
    }
    /* Signals first, so the worker threads inherit the blocked mask. */
    if (weft_loop_on_signal(slots[0].loop, SIGINT, on_signal, sh) != WEFT_OK ||
        weft_loop_on_signal(slots[0].loop, SIGTERM, on_signal, sh) != WEFT_OK) {
        hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "cannot watch SIGINT/SIGTERM: %s", strerror(errno));
        goto out;
    }
    if (cfg.tls_cert_file && weft_loop_on_signal(slots[0].loop, SIGHUP, on_sighup, sh) != WEFT_OK)
        hlog(&lg, WEFT_LOG_WARN, NULL, NULL, "cannot watch SIGHUP: TLS reload disabled");
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        char err[512];
        struct hub *h = hub_new(slots[i].loop, &cfg, stderr, err, sizeof err);
        if (!h) {
            hub_start_error(err);
            goto out;
        }
        h->sh = sh;
        h->worker = (unsigned)i;
        /* One self-check nonce for all: the kernel may hand /readyz's own connection to any
         * worker, which must know it (exempt from the per-IP limit, Origin and auth). */
        if (i > 0) memcpy(h->self_nonce, slots[0].h->self_nonce, sizeof h->self_nonce);
        /* --history-memory is divided between the workers (rooms spread by hash); the room
         * count is shared. */
        rooms_limits(&h->rooms, cfg.history_max_message, cfg.history_memory / n,
                     cfg.max_total_rooms);
        h->rooms.total = &sh->rooms_all;
        ipbook_free(h->ips);
        h->ips = ipb;
        slots[i].h = h;
        created++;
        if (weft_group_add(g, h->server) != WEFT_OK) {
            hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "out of memory");
            goto out;
        }
        if (i == 0) /* the others bind the port the first one got (--port 0) */
            cfg.port = hub_port(h);
    }
    for (size_t i = 0; i < n; i++)
        slots[i].h->started = true;
    hub_raise_nofile(&lg); /* once the setup succeeded: a bad file is the only line on stderr */
    hlog(&lg, WEFT_LOG_INFO, NULL,
         json_pack("{s:s,s:I}", "event", "workers", "count", (json_int_t)n),
         "%zu workers, one event loop each, sharing the port (SO_REUSEPORT)", n);
    hub_log_listening(slots[0].h);
    pthread_barrier_init(&sh->barrier, NULL, (unsigned)n);
    for (size_t i = 1; i < n; i++) {
        /* pthread_create returns its error (errno is not set). */
        int rc = pthread_create(&slots[i].thread, NULL, worker_thread, &slots[i]);
        if (rc != 0) {
            hlog(&lg, WEFT_LOG_ERROR, NULL, NULL, "cannot start worker %zu: %s", i, strerror(rc));
            open_gate(sh, -1); /* the threads created return at once */
            for (size_t j = 1; j < i; j++)
                pthread_join(slots[j].thread, NULL);
            pthread_barrier_destroy(&sh->barrier);
            goto out;
        }
    }
    open_gate(sh, 1);
    worker_main(&slots[0]);
    for (size_t i = 1; i < n; i++)
        pthread_join(slots[i].thread, NULL);
    pthread_barrier_destroy(&sh->barrier);
    created = 0; /* every hub was freed by its worker */
    status = 0;
    for (size_t i = 0; i < n; i++)
        if (!slots[i].drained) status = 1;
out:
    for (size_t i = 0; slots && i < n; i++) {
        if (i < created && slots[i].h) {
            weft_group_remove(g, slots[i].h->server);
            hub_free(slots[i].h);
        }
        if (slots[i].loop) {
            poll_for(slots[i].loop, 10);
            weft_loop_free(slots[i].loop);
        }
    }
    if (sh) {
        pthread_mutex_destroy(&sh->stats_lock);
        pthread_mutex_destroy(&sh->gate_lock);
        pthread_cond_destroy(&sh->gate_cond);
    }
    weft_group_free(g);
    ipbook_free(ipb);
    free(slots);
    free(sh);
    workers_current = NULL;
    hub_config_free(&cfg);
    return status;
}
