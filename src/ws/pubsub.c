/*
 * pubsub.c — topics: subscribe, unsubscribe, publish. A published message is encoded once.
 * A frame larger than SHARE_MIN bytes is held in a reference-counted buffer that every
 * subscriber's output queue references; a smaller one is copied into each subscriber's queue
 * block (see SHARE_MIN for why). Either way all of one iteration's frames for a subscriber
 * leave in one writev.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

/* FNV-1a hash of a topic name. */
static uint32_t topic_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

/* Finds a topic, NULL if it has no subscribers. */
static struct topic *topic_find(const struct weft_server *s, const char *name, size_t len,
                                uint32_t h)
{
    if (!s->nbuckets)
        return NULL;
    for (struct topic *t = s->buckets[h & (s->nbuckets - 1)]; t; t = t->next)
        if (t->hash == h && t->len == len && memcmp(t->name, name, len) == 0)
            return t;
    return NULL;
}

/* Doubles the bucket array when the table is full. Returns false on allocation failure. */
static bool topics_grow(struct weft_server *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
    struct topic **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct topic *t = s->buckets[i];
        while (t) {
            struct topic *next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return true;
}

/* Removes an empty topic from the table and frees it. */
static void topic_drop(struct weft_server *s, struct topic *t)
{
    struct topic **pp = &s->buckets[t->hash & (s->nbuckets - 1)];
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    free(t->subs);
    free(t);
    s->ntopics--;
}

/* Subscribes c to a topic; see weft.h. */
int weft_subscribe(struct weft_conn *c, const char *name, size_t len)
{
    struct weft_server *s = conn_server(c);
    if (!s || len > 255 || c->state != CONN_OPEN)
        return WEFT_ERR_INVAL; /* client connections have no topics */
    uint32_t h = topic_hash(name, len);
    struct topic *t = topic_find(s, name, len, h);
    if (t) {
        for (uint16_t i = 0; i < c->nsubs; i++)
            if (c->subs[i].t == t)
                return WEFT_OK;
    }
    if (c->nsubs == c->capsubs) {
        if (c->capsubs == UINT16_MAX)
            return WEFT_ERR_INVAL;
        uint16_t cap = c->capsubs ? (uint16_t)(c->capsubs * 2 > UINT16_MAX ? UINT16_MAX
                                                                           : c->capsubs * 2)
                                  : 2;
        struct sub *ns = realloc(c->subs, cap * sizeof *ns);
        if (!ns)
            return WEFT_ERR_NOMEM;
        c->subs = ns;
        c->capsubs = cap;
    }
    if (!t) {
        if (s->ntopics >= s->nbuckets && !topics_grow(s))
            return WEFT_ERR_NOMEM;
        t = calloc(1, sizeof *t);
        if (!t)
            return WEFT_ERR_NOMEM;
        t->hash = h;
        t->len = (uint8_t)len;
        memcpy(t->name, name, len);
        size_t b = h & (s->nbuckets - 1);
        t->next = s->buckets[b];
        s->buckets[b] = t;
        s->ntopics++;
    }
    if (t->nsubs == t->capsubs) {
        uint32_t cap = t->capsubs ? t->capsubs * 2 : 4;
        struct weft_conn **ns = realloc(t->subs, cap * sizeof *ns);
        if (!ns) {
            if (!t->nsubs)
                topic_drop(s, t);
            return WEFT_ERR_NOMEM;
        }
        t->subs = ns;
        t->capsubs = cap;
    }
    t->subs[t->nsubs] = c;
    c->subs[c->nsubs++] = (struct sub){.t = t, .idx = t->nsubs};
    t->nsubs++;
    return WEFT_OK;
}

/* Removes c's membership number i (swap-remove on both sides). */
static void unsubscribe_at(struct weft_conn *c, uint16_t i)
{
    struct topic *t = c->subs[i].t;
    uint32_t idx = c->subs[i].idx;
    uint32_t last = t->nsubs - 1;
    if (idx != last) {
        struct weft_conn *moved = t->subs[last];
        t->subs[idx] = moved;
        for (uint16_t k = 0; k < moved->nsubs; k++)
            if (moved->subs[k].t == t) {
                moved->subs[k].idx = idx;
                break;
            }
    }
    t->nsubs--;
    c->subs[i] = c->subs[--c->nsubs];
    if (t->nsubs == 0)
        topic_drop(conn_server(c), t);
}

/* Unsubscribes; see weft.h. */
bool weft_unsubscribe(struct weft_conn *c, const char *name, size_t len)
{
    uint32_t h = topic_hash(name, len);
    for (uint16_t i = 0; i < c->nsubs; i++) {
        struct topic *t = c->subs[i].t;
        if (t->hash == h && t->len == len && memcmp(t->name, name, len) == 0) {
            unsubscribe_at(c, i);
            return true;
        }
    }
    return false;
}

/* Drops every subscription of a closing connection. */
void pubsub_conn_gone(struct weft_conn *c)
{
    while (c->nsubs)
        unsubscribe_at(c, (uint16_t)(c->nsubs - 1));
    free(c->subs);
    c->subs = NULL;
    c->capsubs = 0;
}

size_t weft_topic_count(const struct weft_server *s, const char *name, size_t len)
{
    struct topic *t = topic_find(s, name, len, topic_hash(name, len));
    return t ? t->nsubs : 0;
}

/* Delivers one encoded frame to the subscribers of t except exclude. frame (may be NULL for
 * small frames, which are then copied from hdr + data into each queue) holds hdr + data when
 * given. Returns the number of subscribers it was queued to. */
static size_t deliver(struct weft_server *s, struct topic *t, struct weft_buf *frame,
                      const uint8_t *hdr, size_t hlen, const void *data, size_t dlen,
                      enum weft_opcode opcode, const struct weft_conn *exclude)
{
    /* Compressed variants, built on first need: one per window size for subscribers whose
     * compressor keeps no context (NULL: that window does not shrink this message). */
    struct weft_buf *zframe[16] = {0};
    bool ztried[16] = {0};
    size_t n = 0;
    /* A callback cannot run during delivery (sends only queue), so the array is stable. */
    for (uint32_t i = 0; i < t->nsubs; i++) {
        struct weft_conn *c = t->subs[i];
        if (c == exclude)
            continue;
        enum weft_send_result r;
        if (c->pmd_on && dlen >= s->ep.cfg.deflate.threshold && c->state == CONN_OPEN) {
            if (!c->our_nct) {
                r = weft_conn_send(c, data, dlen, opcode); /* its own compression context */
            } else {
                unsigned b = c->our_bits & 15u;
                if (!ztried[b]) {
                    ztried[b] = true;
                    long zn = conn_deflate(c, data, dlen);
                    if (zn >= 0) {
                        uint8_t zh[WEFT_FRAME_HEADER_MAX];
                        size_t zl = weft_frame_header_write(zh, (uint8_t)opcode, true, 4,
                                                            (uint64_t)zn, NULL);
                        zframe[b] = buf_new(zl + (size_t)zn);
                        if (zframe[b]) {
                            memcpy(zframe[b]->data, zh, zl);
                            memcpy(zframe[b]->data + zl, s->ep.zout, (size_t)zn);
                        }
                    }
                }
                r = zframe[b] ? conn_send_frame(c, zframe[b], NULL, 0, data, dlen)
                              : conn_send_frame(c, frame, hdr, hlen, data, dlen);
            }
        } else {
            r = conn_send_frame(c, frame, hdr, hlen, data, dlen);
        }
        if (r == WEFT_SEND_SENT || r == WEFT_SEND_QUEUED)
            n++;
    }
    s->ep.stats.deliveries += n;
    for (size_t b = 0; b < 16; b++)
        if (zframe[b])
            buf_unref(zframe[b]);
    return n;
}

/* Frames up to this size (header included) are copied into each subscriber's queue block;
 * larger ones are shared by reference. A deliberate speed choice, against the general rule
 * that subscribers hold a reference: for a small frame the copy is one short memcpy into the
 * block the queue writes from anyway, and consecutive small frames merge into one segment
 * (one iovec for writev), whereas a reference costs allocating the shared buffer, an atomic
 * increment per subscriber now and a decrement when the kernel took the bytes, and a segment
 * and an iovec of its own. The price is memory only while a frame waits in a slow
 * subscriber's queue (up to SHARE_MIN bytes instead of a 24-byte segment), and those bytes
 * count against max_backpressure like any other. Above a few hundred bytes the copy costs
 * more than the bookkeeping, and sharing keeps one copy of a large frame however many
 * subscribers are slow. */
#define SHARE_MIN 256

/* Publishes; see weft.h. */
size_t weft_publish(struct weft_server *s, const char *name, size_t len, const void *data,
                    size_t dlen, enum weft_opcode opcode, const struct weft_conn *exclude)
{
    struct topic *t = topic_find(s, name, len, topic_hash(name, len));
    s->ep.stats.publishes++;
    if (!t || (opcode != WEFT_OP_TEXT && opcode != WEFT_OP_BINARY))
        return 0;
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    size_t hlen = weft_frame_header_write(hdr, (uint8_t)opcode, true, 0, dlen, NULL);
    /* Encode once. */
    struct weft_buf *frame = NULL;
    if (hlen + dlen > SHARE_MIN) {
        frame = buf_new(hlen + dlen);
        if (!frame)
            return 0;
        memcpy(frame->data, hdr, hlen);
        memcpy(frame->data + hlen, data, dlen);
    }
    size_t n = deliver(s, t, frame, hdr, hlen, data, dlen, opcode, exclude);
    if (frame)
        buf_unref(frame);
    return n;
}

/* Delivers a frame already encoded in frame (header of hlen bytes, then the payload) to the
 * subscribers of a topic of s; see ws.h. */
size_t pubsub_publish_frame(struct weft_server *s, const char *name, size_t len,
                            struct weft_buf *frame, size_t hlen, enum weft_opcode opcode,
                            const struct weft_conn *exclude)
{
    struct topic *t = topic_find(s, name, len, topic_hash(name, len));
    if (!t)
        return 0;
    return deliver(s, t, frame->len > SHARE_MIN ? frame : NULL, frame->data, hlen,
                   frame->data + hlen, frame->len - hlen, opcode, exclude);
}

/* Frees all topics of a server. */
void pubsub_free(struct weft_server *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct topic *t = s->buckets[i];
        while (t) {
            struct topic *next = t->next;
            free(t->subs);
            free(t);
            t = next;
        }
    }
    free(s->buckets);
    s->buckets = NULL;
    s->nbuckets = 0;
}
