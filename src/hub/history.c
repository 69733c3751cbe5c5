/*
 * history.c — paging of what /hub sends from a room's history: the "history" reply and the
 * catch-up that follows a "join" with "since", on the in-process rooms (one worker, or the
 * room's owner worker) and on what Redis returned.
 *
 * A page holds at most HIST_PAGE_COUNT messages (a history "limit" up to HIST_LIMIT_MAX) and
 * at most hist_page_bytes (min(256 KiB, --max-message / 2)) of messages, and never more than
 * the room left in the connection's output queue (--max-backpressure minus what is unsent,
 * minus HIST_RESERVE for the small replies around it). The first message goes in alone even
 * if it is larger when the queue is empty (as weft accepts a frame larger than the limit into
 * an empty queue); when it does not fit in a queue that is not empty, nothing is sent but the
 * error "backpressure". A page that leaves messages out says so: "more":true and "next":S
 * (the seq of its last message, the "since" of the next request) in a history reply, and a
 * {"type":"history_more",…} notice after a catch-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"

#define HIST_PAGE_BYTES (256u * 1024)
#define HIST_RESERVE 1024u

/* The byte bound of a page: min(256 KiB, --max-message / 2), at least 1 KiB. */
size_t hist_page_bytes(const struct hub_config *cfg)
{
    uint64_t b = cfg->max_message / 2;
    if (b > HIST_PAGE_BYTES) b = HIST_PAGE_BYTES;
    return b < 1024 ? 1024 : (size_t)b;
}

/* The room for a page on hc now; see internal.h. */
struct hist_budget hist_budget_of(const struct hconn *hc)
{
    struct hist_budget b = {.bytes = hist_page_bytes(&hc->h->cfg), .empty = true};
    size_t queued = hc->c && !hc->gone ? weft_conn_buffered_amount(hc->c) : 0;
    size_t max = (size_t)hc->h->cfg.max_backpressure;
    size_t avail = queued + HIST_RESERVE < max ? max - queued - HIST_RESERVE : 0;
    if (avail < b.bytes) b.bytes = avail;
    b.empty = queued == 0;
    return b;
}

/* The message count of a page for a request's limit (0: the default); see internal.h. */
uint64_t hist_count(uint64_t limit)
{
    if (!limit) return HIST_PAGE_COUNT;
    return limit > HIST_LIMIT_MAX ? HIST_LIMIT_MAX : limit;
}

/* Picks a page among n candidate messages (in seq order, all after since); see internal.h. */
void hist_pick(size_t n, const size_t *lens, const uint64_t *seqs, uint64_t since, uint64_t limit,
               struct hist_budget b, struct hist_page *pg)
{
    uint64_t count = hist_count(limit);
    size_t k = 0, bytes = 0;
    while (k < n && k < count) {
        size_t l = lens[k] + 1; /* the comma */
        if (bytes + l > b.bytes) {
            if (k == 0 && b.empty) k = 1; /* alone, into an empty queue */
            break;
        }
        bytes += l;
        k++;
    }
    pg->n = k;
    pg->more = k < n;
    pg->blocked = k == 0 && n > 0;
    pg->next = k ? seqs[k - 1] : since;
}

/* Adds a copy of id (may be NULL) to o (may be NULL) and serialises o (consumed). */
static char *dump_id(json_t *o, const json_t *id)
{
    if (!o) return NULL;
    if (id) json_object_set(o, "id", (json_t *)id);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* The history reply around serialised deliveries; see internal.h. */
char *hist_reply_text(const char *room, const json_t *id, uint64_t seq, const char *const *msgs,
                      const size_t *lens, size_t n, bool more, uint64_t next, size_t *len)
{
    json_t *o = json_pack("{s:s,s:s,s:I}", "type", "history", "room", room, "seq", (json_int_t)seq);
    if (o && more) {
        json_object_set_new(o, "more", json_true());
        json_object_set_new(o, "next", json_integer((json_int_t)next));
    }
    char *head = dump_id(o, id);
    if (!head) return NULL;
    /* The deliveries are already serialised: splice them in as the "messages" array. */
    size_t hl = strlen(head) - 1; /* without the closing brace */
    size_t total = hl + 16;
    for (size_t i = 0; i < n; i++)
        total += lens[i] + 1;
    char *out = malloc(total);
    if (!out) {
        free(head);
        return NULL;
    }
    memcpy(out, head, hl);
    free(head);
    size_t k = hl;
    memcpy(out + k, ",\"messages\":[", 13);
    k += 13;
    for (size_t i = 0; i < n; i++) {
        if (i) out[k++] = ',';
        memcpy(out + k, msgs[i], lens[i]);
        k += lens[i];
    }
    out[k++] = ']';
    out[k++] = '}';
    out[k] = '\0';
    *len = k;
    return out;
}

/* The notice after a catch-up page that left messages out; see internal.h. */
char *hist_more_text(const char *room, const json_t *id, uint64_t seq, uint64_t next)
{
    return dump_id(json_pack("{s:s,s:s,s:I,s:I}", "type", "history_more", "room", room, "seq",
                             (json_int_t)seq, "next", (json_int_t)next),
                   id);
}

/* Formats the reason of a "backpressure" error into buf. */
void hist_blocked_reason(char *buf, size_t cap)
{
    snprintf(buf, cap,
             "the connection's output queue is full: read what was sent, then ask "
             "again (history since the last seq received)");
}

/* The kept entries of r after since as arrays (pointers into the ring, not copies), after
 * the gap check. Returns the count, or -1 with a history_gap error filled. */
static long local_candidates(struct rooms *rs, struct room *r, uint64_t since, uint64_t now_ms,
                             uint64_t max, const char **texts, size_t *lens, uint64_t *seqs,
                             const char **errcode, char *errbuf, size_t errcap)
{
    uint64_t last = r ? r->seq : 0;
    if (r) room_expire(rs, r, now_ms);
    uint64_t first = r ? room_first_seq(r) : 1;
    if (since > last || since + 1 < first) {
        *errcode = "history_gap";
        snprintf(errbuf, errcap,
                 "messages after seq %llu are no longer all kept (kept: %llu..%llu)",
                 (unsigned long long)since, (unsigned long long)first, (unsigned long long)last);
        return -1;
    }
    long n = 0;
    for (uint32_t i = 0; r && i < r->hist_len && (uint64_t)n < max; i++) {
        const struct hist_entry *e = room_entry(r, i);
        if (e->seq <= since) continue;
        texts[n] = e->json;
        lens[n] = e->len;
        seqs[n] = e->seq;
        n++;
    }
    return n;
}

/* Candidate arrays for one page (HIST_LIMIT_MAX + 1 entries). */
struct cand {
    const char *texts[HIST_LIMIT_MAX + 1];
    size_t lens[HIST_LIMIT_MAX + 1];
    uint64_t seqs[HIST_LIMIT_MAX + 1];
};

/* The history reply of an in-process room; see internal.h. */
char *hist_local_reply(struct rooms *rs, struct room *r, const char *name, const json_t *id,
                       uint64_t since, uint64_t limit, struct hist_budget b, uint64_t now_ms,
                       size_t *len, const char **errcode, char *errbuf, size_t errcap)
{
    struct cand *c = malloc(sizeof *c);
    if (!c) {
        *errcode = "internal";
        snprintf(errbuf, errcap, "out of memory");
        return NULL;
    }
    long n = local_candidates(rs, r, since, now_ms, hist_count(limit) + 1, c->texts, c->lens,
                              c->seqs, errcode, errbuf, errcap);
    char *out = NULL;
    if (n >= 0) {
        struct hist_page pg;
        hist_pick((size_t)n, c->lens, c->seqs, since, limit, b, &pg);
        if (pg.blocked) {
            *errcode = "backpressure";
            hist_blocked_reason(errbuf, errcap);
        } else {
            out = hist_reply_text(name, id, r ? r->seq : 0, c->texts, c->lens, pg.n, pg.more,
                                  pg.next, len);
            *errcode = "internal";
            snprintf(errbuf, errcap, "out of memory");
        }
    }
    free(c);
    return out;
}

/* The catch-up of a join on an in-process room; see internal.h. */
int hist_local_catchup(struct rooms *rs, struct room *r, const char *name, const json_t *id,
                       uint64_t since, struct hist_budget b, uint64_t now_ms,
                       bool (*emit)(void *ctx, const char *text, size_t len), void *ctx,
                       const char **errcode, char *errbuf, size_t errcap)
{
    struct cand *c = malloc(sizeof *c);
    if (!c) {
        *errcode = "internal";
        snprintf(errbuf, errcap, "out of memory");
        return -1;
    }
    long n = local_candidates(rs, r, since, now_ms, HIST_PAGE_COUNT + 1, c->texts, c->lens, c->seqs,
                              errcode, errbuf, errcap);
    int rc = n < 0 ? -1 : 0;
    if (n >= 0) {
        struct hist_page pg;
        hist_pick((size_t)n, c->lens, c->seqs, since, 0, b, &pg);
        for (size_t i = 0; i < pg.n && rc == 0; i++)
            if (!emit(ctx, c->texts[i], c->lens[i])) rc = -1;
        if (rc == 0 && pg.more && !pg.blocked) {
            char *t = hist_more_text(name, id, r->seq, pg.next);
            if (!t || !emit(ctx, t, strlen(t))) rc = -1;
            free(t);
        }
        if (rc < 0 || pg.blocked) {
            rc = -1;
            *errcode = "backpressure";
            hist_blocked_reason(errbuf, errcap);
        }
    }
    free(c);
    return rc;
}
