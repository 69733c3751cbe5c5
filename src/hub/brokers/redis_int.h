/*
 * redis_int.h — what the two files of the Redis broker share: redis.c (connections,
 * subscriptions, raw rooms, life cycle) and redis_hub.c (the /hub operations through Redis:
 * scripts, publish, join, history, presence, heartbeat and write-back). Internal to them (and
 * to tests/fuzz/fuzz_redis.c, which includes both .c files).
 */
#ifndef WEFT_HUB_BROKERS_REDIS_INT_H
#define WEFT_HUB_BROKERS_REDIS_INT_H

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

/* The node id of this process (shared by its workers), set by the first broker_new (redis.c). */
extern char node_id[NODE_ID_LEN + 1];

/* The Redis broker behind a struct broker of redis_ops (NULL stays NULL). */
static inline struct rbroker *rb_of(struct broker *b)
{
    return (struct rbroker *)b;
}

/* True when both connections are up. */
static inline bool rb_up(const struct rbroker *b)
{
    return b && b->pub.connected && b->sub.connected;
}

/* redis.c */

/* The "seq" of a delivery {"type":"message","room":"R","seq":N,…}; returns it (0 if none). */
uint64_t delivery_seq(const char *s, size_t len);
/* A seq of room (name[0..len)) learnt from Redis: the local room's seq becomes at least that.
 * Returns nothing. */
void seen_seq(struct hub *h, const char *name, size_t len, uint64_t seq);

/* redis_hub.c */

/* Computes the SHA-1 (hex) of every script into b->sha. Returns nothing. */
void scripts_hash(struct rbroker *b);
/* Sends SCRIPT LOAD for every script on the command connection. Returns nothing. */
void scripts_load(struct rbroker *b);
/* After the command connection (re)connects: heartbeat, presence, rooms written back.
 * Returns nothing. */
void resync(struct rbroker *b);
/* The heartbeat timer: refreshes this worker's liveness key and restarts. Returns nothing. */
void on_heartbeat(struct weft_timer *t);
/* The /hub operations through Redis (broker_ops.hub_*): each returns true if the request was
 * sent (its reply comes later), false to take the in-process path; leave returns nothing. */
bool rb_hub_publish(struct hconn *hc, const char *room, const json_t *id, const json_t *data,
                    uint64_t t0);
bool rb_hub_join(struct hconn *hc, const char *room, const json_t *id, bool has_since,
                 uint64_t since);
bool rb_hub_history(struct hconn *hc, const char *room, const json_t *id, uint64_t since,
                    uint64_t limit);
bool rb_hub_presence(struct hconn *hc, const char *room, const json_t *id);
void rb_hub_leave(struct hconn *hc, const char *room);

#endif
