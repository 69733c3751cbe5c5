/*
 * rooms.c — the /hub rooms: a hash table of rooms, each with its members (for presence) and
 * a ring of the last N deliveries with their sequence numbers (for history recovery).
 * Delivery itself goes through weft's pub/sub (topic "hub:<room>").
 *
 * Memory: a ring grows on demand up to --history-size entries; deliveries over
 * --history-max-message are not kept; the kept bytes of the table stay within its budget
 * (--history-memory, divided between workers) by evicting the oldest entries of the largest
 * rooms; and rooms are counted against --max-total-rooms.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/hash.h"
#include "hub/internal.h"

/* Initialises an empty table. Returns 0 or -1 (out of memory). */
int rooms_init(struct rooms *rs, uint32_t history_size, uint32_t history_age_ms)
{
    memset(rs, 0, sizeof *rs);
    rs->nbuckets = 64;
    rs->buckets = calloc(rs->nbuckets, sizeof *rs->buckets);
    rs->history_size = history_size;
    rs->history_age_ms = history_age_ms;
    rs->hist_max_message = UINT64_MAX;
    rs->hist_budget = UINT64_MAX;
    atomic_init(&rs->own_total, 0);
    rs->total = &rs->own_total;
    return rs->buckets ? 0 : -1;
}

/* Sets the history and room limits; see internal.h. */
void rooms_limits(struct rooms *rs, uint64_t hist_max_message, uint64_t hist_budget,
                  uint32_t max_total)
{
    rs->hist_max_message = hist_max_message;
    rs->hist_budget = hist_budget;
    rs->max_total = max_total;
}

/* Counts a room against --max-total-rooms (compare-and-swap: workers share the counter).
 * Returns false when the limit is reached. */
bool rooms_reserve(struct rooms *rs)
{
    uint_fast64_t cur = atomic_load(rs->total);
    do {
        if (rs->max_total && cur >= rs->max_total) return false;
    } while (!atomic_compare_exchange_weak(rs->total, &cur, cur + 1));
    return true;
}

/* Uncounts a room; see internal.h. */
void rooms_unreserve(struct rooms *rs)
{
    atomic_fetch_sub(rs->total, 1);
}

/* Frees one room and its kept messages. */
static void room_destroy(struct rooms *rs, struct room *r)
{
    for (uint32_t i = 0; i < r->hist_len; i++) {
        struct hist_entry *e = &r->hist[(r->hist_head + i) % r->hist_cap];
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
    rooms_unreserve(rs);
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
    struct room *r = rs->buckets[hub_fnv1a_str(name) & (rs->nbuckets - 1)];
    while (r && strcmp(r->name, name))
        r = r->next;
    return r;
}

/* Doubles the bucket array when the table is loaded (kept as is on allocation failure). */
static void grow(struct rooms *rs)
{
    size_t nb = rs->nbuckets * 2;
    struct room **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < rs->nbuckets; i++) {
        struct room *r = rs->buckets[i];
        while (r) {
            struct room *next = r->next;
            size_t k = hub_fnv1a_str(r->name) & (nb - 1);
            r->next = b[k];
            b[k] = r;
            r = next;
        }
    }
    free(rs->buckets);
    rs->buckets = b;
    rs->nbuckets = nb;
}

/* Finds or creates a room; see internal.h. The ring is allocated by the first room_keep. */
struct room *rooms_get(struct rooms *rs, const char *name, bool *full)
{
    if (full) *full = false;
    struct room *r = rooms_find(rs, name);
    if (r) return r;
    if (!rooms_reserve(rs)) {
        if (full) *full = true;
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (r) r->name = strdup(name);
    if (!r || !r->name) {
        free(r);
        rooms_unreserve(rs);
        return NULL;
    }
    if (rs->nrooms >= rs->nbuckets) grow(rs);
    size_t k = hub_fnv1a_str(name) & (rs->nbuckets - 1);
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
    struct room **pp = &rs->buckets[hub_fnv1a_str(r->name) & (rs->nbuckets - 1)];
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp) *pp = r->next;
    rs->nrooms--;
    if (r->mirror) rs->nmirrors--;
    room_destroy(rs, r);
}

/* Adds a member (no duplicate check: the caller knows). Returns 0 or -1. */
int room_add_member(struct rooms *rs, struct room *r, struct hconn *hc)
{
    (void)rs;
    if (r->nmembers == r->capmembers) {
        uint32_t cap = r->capmembers ? r->capmembers * 2 : 4;
        struct hconn **m = realloc(r->members, cap * sizeof *m);
        if (!m) return -1;
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
    if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0) room_delete(rs, r);
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
    r->hist_head = (r->hist_head + 1) % r->hist_cap;
    r->hist_len--;
}

/* Orders rooms by kept bytes, largest first (qsort). */
static int by_bytes_desc(const void *a, const void *b)
{
    size_t x = (*(struct room *const *)a)->hist_bytes, y = (*(struct room *const *)b)->hist_bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Evicts until len more bytes fit in the budget, down to 63/64 of it at once (so this runs
 * once per 1/64 of the budget, not per message). It takes the oldest entries of the largest
 * room, then of the largest two, and so on — as repeatedly evicting from whichever room is
 * the largest would — with one scan and a sort: the k largest rooms are brought down to the
 * level L at which they free enough, L never below the (k+1)-th room. */
static void make_room(struct rooms *rs, size_t len)
{
    if (rs->hist_bytes + len <= rs->hist_budget) return;
    uint64_t low = rs->hist_budget - rs->hist_budget / 64;
    if (low < len) low = len;
    uint64_t need = rs->hist_bytes + len - low;
    struct room **v = malloc(rs->nrooms * sizeof *v);
    size_t n = 0;
    for (size_t b = 0; v && b < rs->nbuckets; b++)
        for (struct room *r = rs->buckets[b]; r; r = r->next)
            if (r->hist_len) v[n++] = r;
    if (!v) { /* out of memory: the first room with anything kept pays */
        for (size_t b = 0; b < rs->nbuckets && rs->hist_bytes + len > low; b++)
            for (struct room *r = rs->buckets[b]; r && rs->hist_bytes + len > low; r = r->next)
                while (r->hist_len && rs->hist_bytes + len > low) {
                    drop_oldest(rs, r);
                    rs->hist_evicted++;
                }
        return;
    }
    qsort(v, n, sizeof *v, by_bytes_desc);
    uint64_t sum = 0, level = 0;
    size_t k = 0;
    while (k < n) {
        sum += v[k]->hist_bytes;
        k++;
        uint64_t next = k < n ? v[k]->hist_bytes : 0;
        if (sum - k * next >= need) { /* bringing the k largest down to next is enough */
            level = (sum - need) / k;
            break;
        }
    }
    for (size_t i = 0; i < k; i++)
        while (v[i]->hist_len && v[i]->hist_bytes > level) {
            drop_oldest(rs, v[i]);
            rs->hist_evicted++;
        }
    free(v);
}

/* Makes room in r's ring for one more entry: grows it (doubling, up to --history-size), or
 * drops the oldest entry when it is full or cannot grow. */
static void ring_slot(struct rooms *rs, struct room *r)
{
    if (r->hist_len < r->hist_cap) return;
    if (r->hist_cap < rs->history_size) {
        uint32_t cap = r->hist_cap ? r->hist_cap * 2 : 4;
        if (cap > rs->history_size) cap = rs->history_size;
        struct hist_entry *h = calloc(cap, sizeof *h);
        if (h) {
            for (uint32_t i = 0; i < r->hist_len; i++)
                h[i] = r->hist[(r->hist_head + i) % r->hist_cap];
            free(r->hist);
            r->hist = h;
            r->hist_cap = cap;
            r->hist_head = 0;
            return;
        }
    }
    if (r->hist_len) drop_oldest(rs, r);
}

/* Keeps a delivery in the room's ring (takes ownership of json); see internal.h. */
void room_keep(struct rooms *rs, struct room *r, uint64_t seq, uint64_t now_ms, char *json,
               size_t len)
{
    if (!rs->history_size) {
        free(json);
        return;
    }
    if (len > rs->hist_max_message || len > rs->hist_budget) {
        rs->hist_skipped++;
        free(json);
        return;
    }
    make_room(rs, len);
    ring_slot(rs, r);
    if (r->hist_len == r->hist_cap) { /* no ring at all (out of memory): not kept */
        rs->hist_skipped++;
        free(json);
        return;
    }
    struct hist_entry *e = &r->hist[(r->hist_head + r->hist_len) % r->hist_cap];
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
    if (!rs->history_age_ms) return;
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
            if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0) room_delete(rs, r);
            r = next;
        }
    }
}

/* Adds member (worker, key) with its display name to the owner's list of r unless it is
 * there already. Returns 0 or -1 (out of memory). */
int room_add_rmember(struct room *r, unsigned worker, const void *key, const char *name)
{
    for (uint32_t i = 0; i < r->nrmembers; i++)
        if (r->rmembers[i].worker == worker && r->rmembers[i].key == key) return 0;
    if (r->nrmembers == r->caprmembers) {
        uint32_t cap = r->caprmembers ? r->caprmembers * 2 : 4;
        struct rmember *m = realloc(r->rmembers, cap * sizeof *m);
        if (!m) return -1;
        r->rmembers = m;
        r->caprmembers = cap;
    }
    char *copy = strdup(name);
    if (!copy) return -1;
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
    if (r->nmembers == 0 && r->hist_len == 0 && r->nrmembers == 0) room_delete(rs, r);
}
