/*
 * conn_inflate.c — receiving a compressed message (permessage-deflate): inflating it into the
 * endpoint's scratch buffer (counted in the memory budget beyond ZIN_KEEP), checking it and
 * delivering it. Moved out of conn.c unchanged.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ws/ws.h"

/* Hands a whole message to the application (on_message, or one chunk to on_fragment). */
static void deliver(struct weft_conn *c, const uint8_t *data, size_t len, bool binary)
{
    if (c->h->on_fragment)
        c->h->on_fragment(c, data, len, binary, true, true);
    else if (c->h->on_message)
        c->h->on_message(c, data, len, binary);
}

/* Returns the decompressor for c's next message: its own (peer keeps context) or the
 * endpoint's shared one. NULL on allocation failure. */
static struct weft_inflater *conn_inflater(struct weft_conn *c)
{
    if (!c->peer_nct) {
        struct conn_extra *x = conn_extra_get(c);
        if (!x) return NULL;
        if (!x->infl) x->infl = weft_inflater_new(c->peer_bits);
        if (!x->infl) conn_extra_trim(c);
        return x->infl;
    }
    if (!c->ep->shared_infl)
        c->ep->shared_infl = weft_inflater_new(15); /* a 15-bit window decodes any peer */
    return c->ep->shared_infl;
}

/* The inflate scratch kept by an endpoint between messages; only what a message makes it grow
 * beyond this counts in the memory budget (a fixed cost per loop, like the receive buffer). */
#define ZIN_KEEP (256u * 1024)

/* Budget bytes of an inflate scratch of cap bytes. */
static size_t zin_counted(size_t cap)
{
    return cap > ZIN_KEEP ? cap - ZIN_KEEP : 0;
}

/* Frees the inflate scratch when a message made it grow beyond ZIN_KEEP, releasing its
 * count. */
static void zin_trim(struct endpoint *ep)
{
    if (ep->zin_cap <= ZIN_KEEP) return;
    mem_release(ep->loop, zin_counted(ep->zin_cap));
    free(ep->zin);
    ep->zin = NULL;
    ep->zin_cap = 0;
}

/* Grows the endpoint's inflate scratch buffer to cap bytes for c's message, counting the
 * growth beyond ZIN_KEEP in the memory budget first. Returns true, or frees the scratch (its
 * count released), closes c (1013 when the budget refuses, 1011 out of memory) and returns
 * false. */
static bool zin_grow(struct weft_conn *c, size_t cap)
{
    struct endpoint *ep = c->ep;
    size_t more = zin_counted(cap) - zin_counted(ep->zin_cap);
    if (more && !conn_budget_room(c, more, true)) {
        zin_trim(ep);
        conn_budget_close(c);
        return false;
    }
    uint8_t *nb = realloc(ep->zin, cap);
    if (!nb) {
        mem_release(ep->loop, more);
        zin_trim(ep);
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "out of memory");
        return false;
    }
    ep->zin = nb;
    ep->zin_cap = cap;
    return true;
}

/* Inflates a message the peer compressed without context takeover in one call (libdeflate,
 * weft_inflate_message) into ep->zin, growing it up to max bytes when the output does not fit
 * (the growth beyond ZIN_KEEP counted in the memory budget, see zin_grow). Returns 0 with
 * *made set, or closes c (1009 beyond max, 1007 corrupt, 1013 over the budget) and returns
 * -1. */
static int inflate_whole(struct weft_conn *c, struct weft_inflater *inf, const uint8_t *data,
                         size_t len, size_t max, size_t *made)
{
    struct endpoint *ep = c->ep;
    size_t cap = ep->zin_cap;
    if (cap < 16384 || cap > max) {
        cap = 16384 < max ? 16384 : max;
        if (cap > ep->zin_cap && !zin_grow(c, cap)) return -1;
    }
    for (;;) {
        int r = weft_inflate_message(inf, data, len, ep->zin, cap, made);
        if (r == 0) return 0;
        if (r == WEFT_ERR_SPACE && cap >= max) {
            zin_trim(ep);
            conn_protocol_error(c, WEFT_CLOSE_TOO_BIG,
                                "message larger than the maximum size once "
                                "decompressed");
            return -1;
        }
        if (r == WEFT_ERR_SPACE) {
            cap = cap > max / 2 ? max : cap * 2;
            if (cap > ep->zin_cap && !zin_grow(c, cap)) return -1;
            continue;
        }
        zin_trim(ep);
        if (r == WEFT_ERR_NOMEM)
            weft_conn_close(c, WEFT_CLOSE_INTERNAL, "out of memory");
        else
            conn_protocol_error(c, WEFT_CLOSE_INVALID_DATA, "corrupt compressed message");
        return -1;
    }
}

/* Inflates a message the peer compressed with context takeover through its zlib stream into
 * ep->zin, never producing more than max bytes (a small message that inflates to gigabytes
 * stops there, 1009; growth of the scratch beyond ZIN_KEEP is counted in the memory budget,
 * 1013 past it). Returns 0 with *made set, or closes c and returns -1. */
static int inflate_stream(struct weft_conn *c, struct weft_inflater *inf, const uint8_t *data,
                          size_t len, size_t max, size_t *made_out)
{
    struct endpoint *ep = c->ep;
    size_t used_total = 0, made = 0;
    for (;;) {
        if (made == ep->zin_cap) {
            if (ep->zin_cap > max) {
                weft_inflater_reset(inf);
                zin_trim(ep);
                conn_protocol_error(c, WEFT_CLOSE_TOO_BIG,
                                    "message larger than the maximum size "
                                    "once decompressed");
                return -1;
            }
            size_t cap = ep->zin_cap ? ep->zin_cap * 2 : 16384;
            if (cap > max + 1) cap = max + 1;
            if (!zin_grow(c, cap)) {
                weft_inflater_reset(inf);
                return -1;
            }
        }
        size_t used, got;
        int r = weft_inflate(inf, data + used_total, len - used_total, true, c->peer_nct,
                             ep->zin + made, ep->zin_cap - made, &used, &got);
        used_total += used;
        made += got;
        if (r < 0) {
            zin_trim(ep);
            conn_protocol_error(c,
                                r == WEFT_ERR_NOMEM ? WEFT_CLOSE_INTERNAL : WEFT_CLOSE_INVALID_DATA,
                                "corrupt compressed message");
            return -1;
        }
        if (r == 0) break;
    }
    *made_out = made;
    return 0;
}

/* Inflates a whole compressed message into the endpoint's scratch buffer, never producing
 * more than max_message bytes (1009 beyond), checks text as UTF-8 and delivers it. Messages
 * the peer compressed without context takeover go through libdeflate in one call, the others
 * through the connection's zlib stream (src/proto/deflate.c says why). */
void conn_deliver_compressed(struct weft_conn *c, const uint8_t *data, size_t len, bool binary)
{
    struct endpoint *ep = c->ep;
    struct weft_inflater *inf = conn_inflater(c);
    size_t max = ep->cfg.max_message ? ep->cfg.max_message : SIZE_MAX / 2;
    if (!inf) {
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "out of memory");
        return;
    }
    size_t made = 0;
    int r = weft_pmd_inflate_engine(c->peer_bits, true, c->peer_nct) == WEFT_PMD_LIBDEFLATE
                ? inflate_whole(c, inf, data, len, max, &made)
                : inflate_stream(c, inf, data, len, max, &made);
    if (r < 0) return;
    if (made > max) {
        zin_trim(ep);
        conn_protocol_error(c, WEFT_CLOSE_TOO_BIG,
                            "message larger than the maximum size once "
                            "decompressed");
        return;
    }
    if (!binary && !weft_utf8_valid(ep->zin, made)) {
        zin_trim(ep);
        conn_protocol_error(c, WEFT_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
        return;
    }
    uint8_t *out = ep->zin;
    if (ep->zin_cap > ZIN_KEEP) {
        /* Keep the scratch buffer small between messages: take ownership of this one. */
        size_t counted = zin_counted(ep->zin_cap);
        ep->zin = NULL;
        ep->zin_cap = 0;
        deliver(c, out, made, binary);
        free(out);
        mem_release(ep->loop, counted);
        return;
    }
    deliver(c, out, made, binary);
}
