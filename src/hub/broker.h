/*
 * broker.h — the interface every message broker of the hub implements, so rooms can span
 * nodes: topic subscriptions (reference counted: the first local member subscribes, the last
 * one's leave unsubscribes), raw and /hub publishes, seq and history, presence, and its
 * up/down state. A broker is a struct broker (its ops) at the start of its own opaque state;
 * its up/down transitions are logged and counted by the broker itself (weft_broker_up and
 * weft_broker_reconnects_total read them through up()).
 *
 * Without a broker (h->broker NULL) the hub is on its own: the in-process path of proto.c
 * (one worker) or workers.c (several) answers. A broker's /hub operation returns false when it
 * cannot take the request now (down, out of memory): the caller then takes that in-process
 * path, as if there were no broker. The brokers live in src/hub/brokers/ (redis.c today); a
 * new one is one file with its ops plus, if its client library needs one, a loop adapter
 * (as redis_loop.c), and a line in broker.c's broker_new.
 */
#ifndef WEFT_HUB_BROKER_H
#define WEFT_HUB_BROKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct hconn;
struct hub;

/* What a broker does. Every member is required. */
struct broker_ops {
    const char *name; /* "redis" */
    /* True when the broker reaches the other nodes. */
    bool (*up)(const struct broker *b);
    /* delta = +1 / -1 local member of weft topic ("room:R" or "hub:R"). */
    void (*ref)(struct broker *b, const char *topic, size_t len, int delta);
    /* A raw room message, already delivered on this node: to the other nodes (or counted as
     * dropped while down). */
    void (*publish_raw)(struct broker *b, const char *topic, size_t topic_len, const void *data,
                        size_t len, bool binary);
    /* /hub requests of hc (same replies as proto.c's handlers); false: take the in-process
     * path. */
    bool (*hub_publish)(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                        const json_t *data, uint64_t t0);
    bool (*hub_join)(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                     bool has_since, uint64_t since);
    bool (*hub_history)(struct broker *b, struct hconn *hc, const char *room, const json_t *id,
                        uint64_t since, uint64_t limit);
    bool (*hub_presence)(struct broker *b, struct hconn *hc, const char *room, const json_t *id);
    /* hc left room: its presence entry is removed (best effort). */
    void (*hub_leave)(struct broker *b, struct hconn *hc, const char *room);
    /* Flushes what is queued, closes, frees. Called after the hub's connections are closed. */
    void (*free)(struct broker *b);
};

struct broker {
    const struct broker_ops *ops;
};

/* Creates the broker of url for hub h (which then holds it in h->broker) and starts it
 * (connecting in the background). Returns it, or NULL with err filled (unknown scheme, bad
 * URL, out of memory). */
struct broker *broker_new(struct hub *h, const char *url, char *err, size_t cap);
/* Checks a broker URL without connecting (the configuration check). Returns 0, or -1 with err
 * filled. */
int broker_check_url(const char *url, char *err, size_t cap);

/* The calls of the rest of the hub: each accepts a NULL broker (no broker: no-op, false). */

/* Frees b (NULL: no-op). */
static inline void broker_free(struct broker *b)
{
    if (b) b->ops->free(b);
}

/* True when b is up (false for NULL). */
static inline bool broker_up(const struct broker *b)
{
    return b && b->ops->up(b);
}

/* Counts delta local members of topic in b's subscriptions. */
static inline void broker_ref(struct broker *b, const char *topic, size_t len, int delta)
{
    if (b) b->ops->ref(b, topic, len, delta);
}

/* Publishes a raw room message to the other nodes. */
static inline void broker_publish_raw(struct broker *b, const char *topic, size_t topic_len,
                                      const void *data, size_t len, bool binary)
{
    if (b) b->ops->publish_raw(b, topic, topic_len, data, len, binary);
}

/* /hub publish through b. Returns false: take the in-process path. */
static inline bool broker_hub_publish(struct broker *b, struct hconn *hc, const char *room,
                                      const json_t *id, const json_t *data, uint64_t t0)
{
    return b && b->ops->hub_publish(b, hc, room, id, data, t0);
}

/* /hub join through b. Returns false: take the in-process path. */
static inline bool broker_hub_join(struct broker *b, struct hconn *hc, const char *room,
                                   const json_t *id, bool has_since, uint64_t since)
{
    return b && b->ops->hub_join(b, hc, room, id, has_since, since);
}

/* /hub history through b. Returns false: take the in-process path. */
static inline bool broker_hub_history(struct broker *b, struct hconn *hc, const char *room,
                                      const json_t *id, uint64_t since, uint64_t limit)
{
    return b && b->ops->hub_history(b, hc, room, id, since, limit);
}

/* /hub presence through b. Returns false: take the in-process path. */
static inline bool broker_hub_presence(struct broker *b, struct hconn *hc, const char *room,
                                       const json_t *id)
{
    return b && b->ops->hub_presence(b, hc, room, id);
}

/* hc left room: tells b (presence). */
static inline void broker_hub_leave(struct broker *b, struct hconn *hc, const char *room)
{
    if (b) b->ops->hub_leave(b, hc, room);
}

#endif
