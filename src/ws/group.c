/*
 * group.c — multi-core pub/sub: servers on several loops (one per thread) that share topics.
 * A publish encodes the frame once into a reference-counted buffer; the member running on the
 * calling thread delivers it at once, every other member gets a reference through its loop's
 * inbox (weft_loop_defer: a mutex-protected batch drained after an eventfd wake-up) and
 * delivers it on its own thread. The member list is guarded by a read-write lock taken only
 * by publishers on other threads' behalf and by add/remove; the delivery itself touches only
 * the receiving loop's own state.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

/* One server of the group. Allocated once and kept until the group is freed, so frames in
 * flight can always find it (s is NULL once removed). */
struct member {
    struct weft_server *s;   /* written under the write lock, on s's own thread */
    struct weft_loop *loop;
};

struct weft_group {
    pthread_rwlock_t lock;
    struct member **members; /* all members ever added; active ones have s != NULL */
    size_t n, cap;
    size_t active;
};

/* A frame on its way to one member's loop. */
struct inbox_item {
    struct member *m;
    struct weft_buf *frame; /* one reference held by this item */
    const struct weft_conn *exclude;
    uint32_t hlen;
    uint8_t opcode;
    uint8_t topic_len;
    char topic[];
};

/* Creates an empty group; see weft.h. */
struct weft_group *weft_group_new(void)
{
    struct weft_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (pthread_rwlock_init(&g->lock, NULL) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

/* Adds a member; see weft.h. */
int weft_group_add(struct weft_group *g, struct weft_server *s)
{
    pthread_rwlock_wrlock(&g->lock);
    int rc = WEFT_OK;
    for (size_t i = 0; i < g->n; i++)
        if (g->members[i]->s == s)
            rc = WEFT_ERR_INVAL;
    if (rc == WEFT_OK && g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct member **nm = realloc(g->members, cap * sizeof *nm);
        if (nm) {
            g->members = nm;
            g->cap = cap;
        } else {
            rc = WEFT_ERR_NOMEM;
        }
    }
    struct member *m = rc == WEFT_OK ? calloc(1, sizeof *m) : NULL;
    if (rc == WEFT_OK && !m)
        rc = WEFT_ERR_NOMEM;
    if (m) {
        m->s = s;
        m->loop = s->ep.loop;
        g->members[g->n++] = m;
        g->active++;
    }
    pthread_rwlock_unlock(&g->lock);
    return rc;
}

/* Removes a member; see weft.h. */
void weft_group_remove(struct weft_group *g, struct weft_server *s)
{
    pthread_rwlock_wrlock(&g->lock);
    for (size_t i = 0; i < g->n; i++)
        if (g->members[i]->s == s) {
            g->members[i]->s = NULL;
            g->active--;
        }
    pthread_rwlock_unlock(&g->lock);
}

/* Number of active members; see weft.h. */
size_t weft_group_size(struct weft_group *g)
{
    pthread_rwlock_rdlock(&g->lock);
    size_t n = g->active;
    pthread_rwlock_unlock(&g->lock);
    return n;
}

/* Runs on the receiving member's loop: delivers the frame (unless the member left
 * meanwhile) and drops the item's reference. */
static void inbox_deliver(void *arg)
{
    struct inbox_item *it = arg;
    /* m->s is written only on this same thread (weft_group_remove), so reading it here
     * without the lock is safe. */
    struct weft_server *s = it->m->s;
    if (s)
        pubsub_publish_frame(s, it->topic, it->topic_len, it->frame, it->hlen,
                             (enum weft_opcode)it->opcode, it->exclude);
    buf_unref(it->frame);
    free(it);
}

/* Publishes to every member; see weft.h. */
size_t weft_group_publish(struct weft_group *g, const char *topic, size_t topic_len,
                          const void *data, size_t len, enum weft_opcode opcode,
                          const struct weft_conn *exclude)
{
    if ((opcode != WEFT_OP_TEXT && opcode != WEFT_OP_BINARY) || topic_len > 255)
        return 0;
    uint8_t hdr[WEFT_FRAME_HEADER_MAX];
    size_t hlen = weft_frame_header_write(hdr, (uint8_t)opcode, true, 0, len, NULL);
    /* Encode once: every member shares this buffer. */
    struct weft_buf *frame = buf_new(hlen + len);
    if (!frame)
        return 0;
    memcpy(frame->data, hdr, hlen);
    if (len)
        memcpy(frame->data + hlen, data, len);
    struct weft_loop *here = loop_current();
    struct weft_server *local = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&g->lock);
    for (size_t i = 0; i < g->n; i++) {
        struct member *m = g->members[i];
        if (m->loop == here) {
            local = m->s; /* delivered below, after the lock is released */
            continue;
        }
        if (!m->s)
            continue;
        struct inbox_item *it = malloc(sizeof *it + topic_len);
        if (!it)
            continue;
        it->m = m;
        it->frame = frame;
        it->exclude = exclude;
        it->hlen = (uint32_t)hlen;
        it->opcode = (uint8_t)opcode;
        it->topic_len = (uint8_t)topic_len;
        memcpy(it->topic, topic, topic_len);
        buf_ref(frame);
        if (weft_loop_defer(m->loop, inbox_deliver, it) != WEFT_OK) {
            buf_unref(frame);
            free(it);
            continue;
        }
        n++;
    }
    pthread_rwlock_unlock(&g->lock);
    if (local) {
        local->ep.stats.publishes++;
        n += pubsub_publish_frame(local, topic, topic_len, frame, hlen, opcode, exclude);
    }
    buf_unref(frame);
    return n;
}

/* Frees the group; see weft.h. */
void weft_group_free(struct weft_group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->members[i]);
    free(g->members);
    pthread_rwlock_destroy(&g->lock);
    free(g);
}
