/*
 * internal.h — what the files of src/hub share: the hub, its connections, rooms, logger,
 * metrics, auth and the /hub protocol entry points. Not installed; users include hub.h.
 */
#ifndef WEFT_HUB_INTERNAL_H
#define WEFT_HUB_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hub/clock.h"
#include "hub/hub.h"

/* ------------------------------------------------------------------ logs (log.c) */

struct hub_log {
    FILE *out;
    int level;
    enum hub_log_format format;
};

/*
 * Writes one log line if level is enabled: JSON {"ts","level","msg"[,"conn"][,fields…]} or
 * text "weft: LEVEL: [conn] msg k=v…". conn is the correlation id (NULL for lines about no
 * connection); fields (may be NULL) is an object whose members are added, and is consumed
 * (its reference is stolen).
 */
/* Creates an event loop on cfg's --io-backend, logging a fallback to epoll (config.c). */
struct weft_loop *hub_loop_new(const struct hub_config *cfg, const struct hub_log *lg,
                               bool log_fallback);
void hlog(const struct hub_log *lg, int level, const char *conn, json_t *fields, const char *fmt,
          ...) __attribute__((format(printf, 5, 6)));
/* As hlog, but always written whatever the level (the "listening on" line). */
void hlog_always(const struct hub_log *lg, int level, const char *conn, json_t *fields,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------------ metrics (metrics.c) */

#define HUB_LAT_BUCKETS 14
#define HUB_MAX_CLOSE_CODES 32
#define HUB_MAX_ERROR_CODES 24

struct hub_metrics {
    uint64_t conns_total;                           /* WebSocket connections opened (all routes) */
    uint64_t hs_ok, hs_401, hs_403, hs_414, hs_429; /* handshakes by result (ours) */
    struct {
        uint16_t code;
        uint64_t n;
    } closes[HUB_MAX_CLOSE_CODES];
    size_t ncloses;
    struct {
        const char *code;
        uint64_t n;
    } errors[HUB_MAX_ERROR_CODES]; /* static strings */
    size_t nerrors;
    uint64_t hub_requests;          /* /hub messages received */
    uint64_t publishes, deliveries; /* /hub publishes and the copies they queued */
    uint64_t rate_limited;          /* connections closed for the message rate */
    uint64_t auth_expired;          /* connections closed when their token expired */
    uint64_t revoked_closes;        /* connections closed when their token was revoked */
    uint64_t broker_reconnects;     /* --redis: connections to Redis re-established */
    uint64_t broker_dropped;        /* --redis: messages not sent to other nodes (broker down) */
    uint64_t lat_buckets[HUB_LAT_BUCKETS + 1]; /* cumulative at render time; +Inf last */
    double lat_sum;
    uint64_t lat_count;
    double start_time; /* process start, seconds since the epoch */
};

extern const double hub_lat_bounds[HUB_LAT_BUCKETS];

void metrics_close(struct hub_metrics *m, uint16_t code);
void metrics_error(struct hub_metrics *m, const char *code);
void metrics_latency(struct hub_metrics *m, double seconds);

/* ------------------------------------------------------------------ auth (auth.c) */

struct hub_auth;

/* Claims of a valid token. Strings are owned (auth_claims_free). */
struct auth_claims {
    char *sub;     /* NULL if absent */
    char *jti;     /* NULL if absent */
    int64_t exp;   /* seconds since the epoch, 0 if absent */
    json_t *rooms; /* the "rooms" claim (array of patterns), NULL if absent */
};

struct hub_auth *auth_new(const char *secret, const char *revoked_path, char *err, size_t cap);
void auth_free(struct hub_auth *a);
/* Verifies an HS256 token: signature, alg, exp/nbf against now_s, revocation. Returns 0 and
 * fills *out, or -1 with a short reason in why. */
int auth_verify(struct hub_auth *a, const char *token, size_t len, int64_t now_s,
                struct auth_claims *out, char *why, size_t cap);
void auth_claims_free(struct auth_claims *c);
/* Accept (allow true) or refuse (the default) tokens without an exp claim. */
void auth_allow_no_exp(struct hub_auth *a, bool allow);
/* True if jti is in the revocation list. */
bool auth_revoked(const struct hub_auth *a, const char *jti);
/* Re-reads the revocation file if it changed (inode, size or mtime). Returns 1 if reloaded,
 * 0 if unchanged, -1 on a read error (the old list stays). n receives the entry count. */
int auth_reload(struct hub_auth *a, size_t *n);
/* True if a room name matches one of the patterns of a "rooms" claim (exact, or a prefix
 * ending in '*'). A NULL claim allows every room. */
bool auth_room_allowed(const json_t *rooms, const char *room);

/* ------------------------------------------------------------------ rooms (rooms.c) */

struct hconn;

/* One kept message: the delivery as sent, its sequence number and time. */
struct hist_entry {
    uint64_t seq;
    uint64_t ts_ms;
    char *json; /* {"type":"message",…} */
    size_t len;
};

struct room {
    struct room *next; /* hash chain */
    char *name;
    uint64_t seq;            /* last sequence number given (with --redis: or learnt from Redis) */
    uint64_t synced;         /* --redis: kept entries up to this seq are in Redis (written back) */
    struct hist_entry *hist; /* ring of hist_cap entries, grown up to history_size */
    uint32_t hist_head, hist_len, hist_cap;
    size_t hist_bytes;
    struct hconn **members;
    uint32_t nmembers, capmembers;
    /* With several workers (workers.c), on the room's owner only: every member on every
     * worker, for presence (the owner assigns seq and keeps the history). */
    struct rmember *rmembers;
    uint32_t nrmembers, caprmembers;
    /* With several workers and no --redis, on a worker that is not the owner: only the local
     * members of a room counted on its owner (not counted again, see rooms_count). */
    bool mirror;
};

/* A member as the owner of a room knows it: its worker, an identity (the origin's hconn
 * address, never dereferenced by the owner) and its display name. */
struct rmember {
    unsigned worker;
    const void *key;
    char *name;
};

struct rooms {
    struct room **buckets;
    size_t nbuckets, nrooms;
    size_t nmirrors; /* rooms marked with room_set_mirror */
    uint32_t history_size;
    uint32_t history_age_ms;
    uint64_t hist_msgs, hist_bytes; /* totals over all rooms */
    uint64_t hist_max_message;      /* --history-max-message: larger deliveries are not kept */
    uint64_t hist_budget;           /* this table's share of --history-memory */
    uint64_t hist_skipped;          /* deliveries not kept (too large for the limits above) */
    uint64_t hist_evicted;          /* kept entries dropped to stay within hist_budget */
    uint32_t max_total;             /* --max-total-rooms, 0 = unlimited */
    /* Rooms of the process (/hub rooms in every worker's table, raw rooms per worker): own
     * with one worker, the workers' shared counter with several. */
    atomic_uint_fast64_t *total;
    atomic_uint_fast64_t own_total;
};

int rooms_init(struct rooms *rs, uint32_t history_size, uint32_t history_age_ms);
/* Sets the limits of --history-max-message, this table's byte budget and --max-total-rooms. */
void rooms_limits(struct rooms *rs, uint64_t hist_max_message, uint64_t hist_budget,
                  uint32_t max_total);
/* Counts one more room against --max-total-rooms. Returns false (nothing counted) when the
 * limit is reached. */
bool rooms_reserve(struct rooms *rs);
/* Uncounts a room counted by rooms_reserve. */
void rooms_unreserve(struct rooms *rs);
void rooms_free(struct rooms *rs);
struct room *rooms_find(struct rooms *rs, const char *name);
/* Finds or creates a room. NULL on allocation failure, or (with *full set to true when full
 * is not NULL) when creating it would exceed --max-total-rooms. */
struct room *rooms_get(struct rooms *rs, const char *name, bool *full);
/* Adds / removes a member; a room with no member and no history is deleted on removal. */
int room_add_member(struct rooms *rs, struct room *r, struct hconn *hc);
void room_remove_member(struct rooms *rs, struct room *r, struct hconn *hc);
/* Keeps a delivery (json owned by the room afterwards) with its seq. A delivery larger than
 * --history-max-message or the whole budget is freed and counted as skipped; otherwise the
 * oldest entries of the largest rooms are evicted (counted) until it fits in the budget. */
void room_keep(struct rooms *rs, struct room *r, uint64_t seq, uint64_t now_ms, char *json,
               size_t len);
/* The owner's member list (several workers): add (no duplicate) / remove (the room is
 * deleted when left empty). */
int room_add_rmember(struct room *r, unsigned worker, const void *key, const char *name);
void room_remove_rmember(struct rooms *rs, struct room *r, unsigned worker, const void *key);
/* Marks r as a mirror of a room owned by another worker (once). */
void room_set_mirror(struct rooms *rs, struct room *r);
/* The rooms this worker counts: all of them but the mirrors (each room once per process). */
size_t rooms_count(const struct rooms *rs);
/* Drops entries older than the max age. */
void room_expire(struct rooms *rs, struct room *r, uint64_t now_ms);
/* The oldest kept seq (r->seq + 1 when nothing is kept). */
uint64_t room_first_seq(const struct room *r);
/* The i-th kept entry, oldest first. */
const struct hist_entry *room_entry(const struct room *r, uint32_t i);
/* Expires old entries in every room and deletes empty rooms. */
void rooms_sweep(struct rooms *rs, uint64_t now_ms);

/* ------------------------------------------------------------------ the hub (hub.c) */

enum hconn_kind { HC_HUB = 0, HC_ROOM, HC_ECHO };

/* Generated correlation ids are 16 hex digits: they (and client ids as short) live inline. */
#define HCONN_ID_INLINE 16

/* What a connection's token said beyond its subject, allocated only when the token had a
 * jti, an exp or a rooms claim (auth_of / hconn_auth_new). */
struct hconn_auth {
    struct hconn *hc;    /* back to the connection (for exp_timer's callback) */
    char *jti;           /* NULL if absent (or revoked and closing) */
    int64_t exp;         /* 0 if absent */
    json_t *rooms_claim; /* NULL: every room */
    struct weft_timer exp_timer;
};

/* A connection of the hub (the weft_conn user data). Kept small: one per idle connection. The
 * client IP is not stored: it is formatted again from weft_conn_remote when needed. */
struct hconn {
    struct hub *h;
    struct weft_conn *c;
    struct hconn *prev, *next; /* all connections */
    char *id;                  /* correlation id = X-Request-Id: id_inline, or malloc'd when
                                  longer than HCONN_ID_INLINE */
    char *user;                /* JWT sub (NULL without auth), or /hub's ?name= without auth */
    struct hconn_auth *auth;   /* NULL without a jti, exp or rooms claim */
    double tokens;             /* rate-limit bucket */
    uint64_t bucket_ms;
    char *topic;         /* HC_ROOM: "room:<name>" */
    struct room **rooms; /* HC_HUB: rooms joined */
    uint32_t topic_len;
    uint32_t nrooms;
    uint32_t refs;       /* requests in flight to other workers (workers.c) */
    uint8_t kind;        /* enum hconn_kind */
    bool self_check : 1; /* the /readyz probe: not counted, not logged at info */
    bool open : 1;       /* on_open ran */
    bool gone : 1;       /* closed while refs > 0: freed by the last reply */
    bool broker_ref : 1; /* HC_ROOM: counted in the broker's subscription of topic */
    bool raw_sub : 1;    /* HC_ROOM: subscribed to topic, a room counted in the
                            process's rooms (--max-total-rooms) while it has members */
    char id_inline[HCONN_ID_INLINE + 1];
};

/* The rooms claim of hc's token (NULL: every room allowed). */
static inline const json_t *hconn_rooms_claim(const struct hconn *hc)
{
    return hc->auth ? hc->auth->rooms_claim : NULL;
}

/* The pending publish-to-deliver samples of this loop iteration. */
struct lat_pending {
    struct hub *h; /* NULL once the hub is freed (the deferred flush then frees this) */
    uint64_t *t0;
    size_t n, cap;
    bool scheduled;
};

struct readyz_check;

struct hub {
    struct hub_config cfg;
    struct weft_loop *loop;
    struct weft_server *server;
    struct hub_log log;
    struct hub_metrics m;
    struct hub_auth *auth;
    struct rooms rooms;
    struct hconn *conns;
    uint64_t nconns;     /* open connections of the hub (without the probe) */
    uint64_t nconns_all; /* with the probe */
    struct ipbook *ips;  /* the per-IP book (ipbook.h), shared by the workers */
    struct weft_random rnd;
    struct weft_timer tick; /* 1 s: revocation file, history expiry */
    struct lat_pending *lat;
    char self_nonce[33]; /* X-Weft-Self-Check value of the probe */
    bool started;        /* every hub of the process was set up: hub_free logs "stopped" */
    struct readyz_check *checks;
    bool draining;
    struct hub_web *web;     /* the web page's static files (web.c) */
    struct hub_stats *stats; /* the 1 s stats stream (stats.c) */
    struct hub_workers *sh;  /* several workers (--workers N > 1), NULL with one */
    struct broker *broker;   /* --redis (broker.h), NULL: in-process only */
    unsigned worker;         /* this hub's worker index */
};

/* The publish-to-deliver clock started at t0_ns for a publish that queued deliveries. */
void hub_latency_start(struct hub *h, uint64_t t0_ns);
#include "hub/conn.h"

/* ------------------------------------------------------------------ workers (workers.c) */

/*
 * --workers N > 1: N threads, each with its own loop and hub (its own server on the shared
 * port, SO_REUSEPORT), forming one weft_group. Each /hub room has one owner worker (FNV-1a of
 * its name mod N) that assigns sequence numbers, keeps the history and the member list;
 * publish, join, leave, presence and history are forwarded to the owner through its loop's
 * inbox (weft_loop_defer), and the owner fans deliveries out with weft_group_publish. With
 * one worker none of this runs: the hub works on its own loop as before.
 */
struct hub_workers;

/* Open connections counted against --max-connections (across workers). */
uint64_t hub_conns_all(const struct hub *h);
/* Stats stream: stores this worker's counters (cur, connections, rooms) and replaces them with
 * the sums over every worker (no-op with one worker). */
void workers_stats_sum(struct hub *h, struct weft_server_stats *cur, size_t *nconns,
                       size_t *nrooms);
/* One plain "weft serve: REASON" line on stderr for a failed start (hub.c). */
void hub_start_error(const char *reason);
/* Raises RLIMIT_NOFILE to its hard limit and logs what it allows (hub.c). */
void hub_raise_nofile(const struct hub_log *lg);
/* True if this worker owns /hub room (FNV-1a of the name mod the workers; true without
 * several workers). */
bool workers_is_owner(const struct hub *h, const char *room);
/* Adds delta to the count across workers (no-op with one worker). */
void workers_count(struct hub *h, int delta);
/* /hub requests on a hub with several workers (same contracts as proto.c's handlers). */
void workers_join(struct hconn *hc, const char *room, const json_t *id, bool has_since,
                  uint64_t since);
void workers_leave(struct hconn *hc, const char *room);
void workers_publish(struct hconn *hc, const char *room, const json_t *id, const json_t *data,
                     uint64_t t0);
void workers_presence(struct hconn *hc, const char *room, const json_t *id);
void workers_history(struct hconn *hc, const char *room, const json_t *id, uint64_t since,
                     uint64_t limit);
/* Raw rooms (/ws/<room>): publishes to the topic on every worker. */
size_t workers_publish_raw(struct hub *h, const char *topic, size_t topic_len, const void *data,
                           size_t len, enum weft_opcode op, const struct weft_conn *exclude);
/* GET /metrics with several workers: collects every worker's counters (asynchronously) and
 * renders their sums. */
void workers_metrics(struct weft_request *req, struct hub *h);
/* Runs `weft serve` with cfg->workers threads; see hub_run. */
int workers_run(const struct hub_config *cfg);

/* ------------------------------------------------------------------ history pages (history.c) */

#define HIST_PAGE_COUNT 100 /* messages of a page by default (history without limit, join) */
#define HIST_LIMIT_MAX 1000 /* a history "limit" above this is lowered to it */

/* The room for one page on a connection: bytes of messages, and whether its output queue
 * is empty (then a first message larger than bytes still goes, alone). */
struct hist_budget {
    size_t bytes;
    bool empty;
};

/* The page chosen among candidate messages. */
struct hist_page {
    size_t n;      /* the first n candidates */
    uint64_t next; /* seq of the last of them (since, when none): the next "since" */
    bool more;     /* candidates were left out */
    bool blocked;  /* not even one fits (queue not empty): answer "backpressure" */
};

/* min(256 KiB, --max-message / 2), at least 1 KiB: the byte bound of a page. */
size_t hist_page_bytes(const struct hub_config *cfg);
/* The budget of a page on hc now: the page bound, within what --max-backpressure leaves of
 * its output queue (minus a reserve for the replies around it). Call on hc's thread. */
struct hist_budget hist_budget_of(const struct hconn *hc);
/* Messages in a page for a history "limit" (0: HIST_PAGE_COUNT, at most HIST_LIMIT_MAX). */
uint64_t hist_count(uint64_t limit);
/* Picks the page among n candidates (their lengths and seqs, in order, all after since):
 * at most hist_count(limit) of them within b. */
void hist_pick(size_t n, const size_t *lens, const uint64_t *seqs, uint64_t since, uint64_t limit,
               struct hist_budget b, struct hist_page *pg);
/* {"type":"history","room":room,"seq":seq[,"more":true,"next":next][,"id"],"messages":[…]}
 * around n serialised deliveries. Returns a malloc'd NUL-terminated text (length in *len)
 * or NULL (out of memory). */
char *hist_reply_text(const char *room, const json_t *id, uint64_t seq, const char *const *msgs,
                      const size_t *lens, size_t n, bool more, uint64_t next, size_t *len);
/* {"type":"history_more","room":room,"seq":seq,"next":next[,"id"]}: sent after a catch-up
 * page that left messages out. malloc'd, or NULL. */
char *hist_more_text(const char *room, const json_t *id, uint64_t seq, uint64_t next);
/* The reason text of the "backpressure" error. */
void hist_blocked_reason(char *buf, size_t cap);
/* The "history" reply of in-process room r (NULL: no such room) after seq since: one page
 * within limit and b. Returns a malloc'd text (length in *len), or NULL with *errcode
 * ("history_gap", "backpressure" or "internal") and a reason in errbuf. */
char *hist_local_reply(struct rooms *rs, struct room *r, const char *name, const json_t *id,
                       uint64_t since, uint64_t limit, struct hist_budget b, uint64_t now_ms,
                       size_t *len, const char **errcode, char *errbuf, size_t errcap);
/* The catch-up of a join with since on in-process room r: one page of its kept messages
 * after since, each passed to emit (false: refused, stop), then the history_more notice if
 * messages were left out. Returns 0, or -1 with *errcode ("history_gap", "backpressure" —
 * also when emit refused — or "internal") and a reason in errbuf. */
int hist_local_catchup(struct rooms *rs, struct room *r, const char *name, const json_t *id,
                       uint64_t since, struct hist_budget b, uint64_t now_ms,
                       bool (*emit)(void *ctx, const char *text, size_t len), void *ctx,
                       const char **errcode, char *errbuf, size_t errcap);

/* metrics.c: one worker's counters, and the rendering of a sum over workers. */
struct metrics_snap {
    struct hub_metrics m;
    struct weft_server_stats st;
    uint64_t nconns, nrooms, hist_msgs, hist_bytes, hist_skipped, hist_evicted;
    bool draining;
    bool redis;           /* --redis is set */
    uint32_t broker_down; /* workers whose Redis connections are not both up */
};
void metrics_snapshot(const struct hub *h, struct metrics_snap *out);
/* Answers the deferred /metrics response d with the metrics of n workers' snapshots (summed,
 * plus per-worker gauges). */
void metrics_respond_deferred(struct weft_deferred *d, const struct metrics_snap *snaps, size_t n);

#include "hub/broker.h"

/* ------------------------------------------------------------------ /hub protocol (proto.c) */

/* A text message arrived on a /hub connection. t0 is when it arrived (hub_mono_ns). */
void proto_message(struct hconn *hc, const char *data, size_t len, bool binary, uint64_t t0);
/* The connection is closing: leaves every room. */
void proto_conn_gone(struct hconn *hc);
/* Undoes hc's membership of room without a reply (a join the room's owner refused). */
void proto_unjoin(struct hconn *hc, const char *room);
/* Sends an error reply. code is a static string. id (may be NULL) is echoed. */
void proto_error(struct hconn *hc, const json_t *id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* True if name is a valid room name (1..HUB_ROOM_MAX of [A-Za-z0-9_.:@-]); else why. */
bool proto_room_valid(const char *name, size_t len, const char **why);
#define HUB_ROOM_MAX 128

/* ------------------------------------------------------------------ HTTP endpoints */

/* metrics.c: GET /metrics */
void metrics_http(struct weft_request *req, void *route_user);
/* health.c: GET /healthz, GET /readyz */
void health_healthz(struct weft_request *req, void *route_user);
void health_readyz(struct weft_request *req, void *route_user);
/* Cancels the probes in flight (their requests are answered 503). */
void health_cancel_all(struct hub *h);

/* ------------------------------------------------------------------ the web page (web.c) */

/* Resolves the web root (cfg.web_root, else the shipped web/ directory) with realpath. Returns
 * 0, or -1 with err filled (a --web-root that is not a directory). Without --web-root a
 * missing default directory is not an error: GET / then answers 404. */
int web_init(struct hub *h, char *err, size_t errcap);
void web_free(struct hub *h);
/* GET/HEAD of any path no other route took: a file under the web root (index.html for a
 * directory) with its Content-Type, ETag, Last-Modified and Cache-Control; 304 for a matching
 * If-None-Match; 404 otherwise (also for paths that would leave the root). */
void web_http(struct weft_request *req, void *route_user);
/* The display name a browser chose with "?name=" on /hub (1..32 bytes of UTF-8, no control
 * characters), as a malloc'd string, or NULL. Used only when auth is off. */
char *web_query_name(struct weft_request *req);
/* The same from the query string q[0..len) (q may be NULL): split out of web_query_name, with
 * no request, so the fuzz target tests/fuzz/fuzz_decode.c reaches it without I/O. */
char *web_name_from_query(const char *q, size_t len);
/* Percent-decodes the request path raw[0..len) into out (NUL-terminated) as GET / does.
 * Returns false for a bad escape, a decoded NUL, no room, or an unsafe path (not absolute, a
 * backslash, a segment starting with '.'). */
bool web_path_decode(const char *raw, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------------ stats stream (stats.c) */

/* The topic the snapshots are published on (not a valid room name, so no clash). */
#define HUB_STATS_TOPIC "$stats"
/* Starts the 1 s sampler. Returns 0 or -1 (out of memory). */
int stats_init(struct hub *h);
void stats_stop(struct hub *h);
void stats_free(struct hub *h);
/* {"type":"subscribe_stats"} / {"type":"unsubscribe_stats"} on /hub: (un)subscribes hc to the
 * stats topic and replies; a subscription gets the latest snapshot at once. */
void stats_subscribe(struct hconn *hc, const json_t *id, bool on);

#endif
