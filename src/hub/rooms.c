/*
 * rooms.c — the /hub rooms: a hash table of rooms, each with its members (for presence) and
 * a ring of the last N deliveries with their sequence numbers (for history recovery).
 * Delivery itself goes through weft's pub/sub (topic "hub:<room>").
 */
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"

/* FNV-1a hash of a NUL-terminated name. */
static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Initialises an empty table. Returns 0 or -1 (out of memory). */
int rooms_init(struct rooms *rs, uint32_t history_size, uint32_t history_age_ms)
{
    memset(rs, 0, sizeof *rs);
    rs->nbuckets = 64;
    rs->buckets = calloc(rs->nbuckets, sizeof *rs->buckets);
    rs->history_size = history_size;
    rs->history_age_ms = history_age_ms;
    return rs->buckets ? 0 : -1;
}

/* Frees one room and its kept messages. */
static void room_destroy(struct rooms *rs, struct room *r)
{
    for (uint32_t i = 0; i < r->hist_len; i++) {
        struct hist_entry *e = &r->hist[(r->hist_head + i) % rs->history_size];
        free(e->json);
    }
    rs->hist_msgs -= r->hist_len;
    rs->hist_bytes -= r->hist_bytes;
    free(r->hist);
    for (uint32_t i = 0; i < r->nrmembers; i++)
        free(r->rmembers[i].name);
    free(r->rmembers);
    free(r->members);
    free(r->name);
    free(r);
}

/* Frees every room. */
void rooms_free(struct rooms *rs)
{
    for (size_t b = 0; b < rs->nbuckets; b++) {
        struct room *r = rs->buckets[b];
        while (r) {
            struct room *next = r->next;
            room_destroy(rs, r);
            r = next;
        }
    }
    free(rs->buckets);
    rs->buckets = NULL;
    rs->nrooms = 0;
    rs->nmirrors = 0;
}

/* Finds a room by name, NULL if it does not exist. */
struct room *rooms_find(struct rooms *rs, const char *name)
{
    struct room *r = rs->buckets[hash_name(name) & (rs->nbuckets - 1)];
    while (r && strcmp(r->name, name))
        r = r->next;
    return r;
}

/* Doubles the bucket array when the table is loaded (kept as is on allocation failure). */
static void grow(struct rooms *rs)
{
    size_t nb = rs->nbuckets * 2;
    struct room **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < rs->nbuckets; i++) {
        struct room *r = rs->buckets[i];
        while (r) {
            struct room *next = r->next;
            size_t k = hash_name(r->name) & (nb - 1);
            r->next = b[k];
            b[k] = r;
            r = next;
        }
    }
    free(rs->buckets);
    rs->buckets = b;
    rs->nbuckets = nb;
}

/* Finds or creates a room. NULL on allocation failure. */
struct room *rooms_get(struct rooms *rs, const char *name)
{
    struct room *r = rooms_find(rs, name);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->name = strdup(name);
    r->hist_cap = rs->history_size;
    if (rs->history_size)
        r->hist = calloc(rs->history_size, sizeof *r->hist);
    if (!r->name || (rs->history_size && !r->hist)) {
        free(r->name);
        free(r->hist);
        free(r);
        return NULL;
    }
    if (rs->nrooms >= rs->nbuckets)
        grow(rs);
    size_t k = hash_name(name) & (rs->nbuckets - 1);
    r->next = rs->buckets[k];
    rs->buckets[k] = r;
    rs->nrooms++;
    return r;
}

/* Marks r as a mirror of a room owned by another worker; see internal.h. */
void room_set_mirror(struct rooms *rs, struct room *r)
{
    if (!r->mirror) {
        r->mirror = true;
        rs->nmirrors++;
    }
}

/* The rooms counted by this worker (not the mirrors); see internal.h. */
size_t rooms_count(const struct rooms *rs)
{
    return rs->nrooms - rs->nmirrors;
}

/* Unlinks and frees a room. */
static void room_delete(struct rooms *rs, struct room *r)
{
    struct room **pp = &rs->buckets[hash_name(r->name) & (rs->nbuckets - 1)];
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    rs->nrooms--;
    if (r->mirror)
        rs->nmirrors--;
    room_destroy(rs, r);
}

/* Adds a member (no duplicate check: the caller knows). Returns 0 or -1. */
int room_add_member(struct rooms *rs, struct room *r, struct hconn *hc)
{
    (void)rs;
    if (r->nmembers == r->capmembers) {
        uint32_t cap = r->capmembers ? r->capmembers * 2 : 4;
        struct hconn **m = realloc(r->members, cap * sizeof *m);
        if (!m)
            return -1;
        r->members = m;
        r->capmembers = cap;
    }
    r->members[r->nmembers++] = hc;
    return 0;
}

/* Removes a member (order is not kept); deletes the room when it has neither members nor
 * kept messages. */
void room_remove_member(struct rooms *rs, struct room *r, struct hconn *hc)
{
    for (uint32_t i = 0; i < r->nmembers; i++)
        if (r->members[i] == hc) {
            r->members[i] = r->members[--r->nmembers];
            break;
        }
    if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0)
        room_delete(rs, r);
}

/* Drops the oldest kept entry. */
static void drop_oldest(struct rooms *rs, struct room *r)
{
    struct hist_entry *e = &r->hist[r->hist_head];
    r->hist_bytes -= e->len;
    rs->hist_bytes -= e->len;
    rs->hist_msgs--;
    free(e->json);
    e->json = NULL;
    r->hist_head = (r->hist_head + 1) % rs->history_size;
    r->hist_len--;
}

/* Keeps a delivery in the room's ring (takes ownership of json). */
void room_keep(struct rooms *rs, struct room *r, uint64_t seq, uint64_t now_ms, char *json,
               size_t len)
{
    if (!rs->history_size) {
        free(json);
        return;
    }
    if (r->hist_len == rs->history_size)
        drop_oldest(rs, r);
    struct hist_entry *e = &r->hist[(r->hist_head + r->hist_len) % rs->history_size];
    e->seq = seq;
    e->ts_ms = now_ms;
    e->json = json;
    e->len = len;
    r->hist_len++;
    r->hist_bytes += len;
    rs->hist_bytes += len;
    rs->hist_msgs++;
}

/* Drops kept entries older than the max age. */
void room_expire(struct rooms *rs, struct room *r, uint64_t now_ms)
{
    if (!rs->history_age_ms)
        return;
    while (r->hist_len && r->hist[r->hist_head].ts_ms + rs->history_age_ms < now_ms)
        drop_oldest(rs, r);
}

/* The oldest kept sequence number (seq + 1 when nothing is kept). */
uint64_t room_first_seq(const struct room *r)
{
    return r->hist_len ? r->hist[r->hist_head].seq : r->seq + 1;
}

/* The i-th kept entry, oldest first. */
const struct hist_entry *room_entry(const struct room *r, uint32_t i)
{
    return &r->hist[(r->hist_head + i) % r->hist_cap];
}

/* Expires every room and deletes rooms left with neither members nor messages. */
void rooms_sweep(struct rooms *rs, uint64_t now_ms)
{
    for (size_t b = 0; b < rs->nbuckets; b++) {
        struct room *r = rs->buckets[b];
        while (r) {
            struct room *next = r->next;
            room_expire(rs, r, now_ms);
            if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0)
                room_delete(rs, r);
            r = next;
        }
    }
}

/* Adds member (worker, key) with its display name to the owner's list of r unless it is
 * there already. Returns 0 or -1 (out of memory). */
int room_add_rmember(struct room *r, unsigned worker, const void *key, const char *name)
{
    for (uint32_t i = 0; i < r->nrmembers; i++)
        if (r->rmembers[i].worker == worker && r->rmembers[i].key == key)
            return 0;
    if (r->nrmembers == r->caprmembers) {
        uint32_t cap = r->caprmembers ? r->caprmembers * 2 : 4;
        struct rmember *m = realloc(r->rmembers, cap * sizeof *m);
        if (!m)
            return -1;
        r->rmembers = m;
        r->caprmembers = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    r->rmembers[r->nrmembers++] = (struct rmember){.worker = worker, .key = key, .name = copy};
    return 0;
}

/* Removes member (worker, key) from the owner's list of r; deletes the room when nothing is
 * left in it. */
void room_remove_rmember(struct rooms *rs, struct room *r, unsigned worker, const void *key)
{
    for (uint32_t i = 0; i < r->nrmembers; i++)
        if (r->rmembers[i].worker == worker && r->rmembers[i].key == key) {
            free(r->rmembers[i].name);
            r->rmembers[i] = r->rmembers[--r->nrmembers];
            break;
        }
    if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0)
        room_delete(rs, r);
}
