/*
 * fuzz_redis.c — libFuzzer target for the Redis reply handling of the broker
 * (src/hub/brokers/redis.c and redis_hub.c, `weft serve --redis`): replies built from fuzz input
 * by hiredis' own parser (redisReader) are given to the broker's reply callbacks, as hiredis'
 * async API would.
 *
 * redis.c and redis_hub.c are included here (their callbacks are static; the files are
 * compiled unchanged) and
 * run with a broker that has no connection, on the real hub of hub_fixture.h (so deliveries,
 * replies and the room's seq go through the real code). Byte 0 picks the first callback; the
 * rest is RESP2/RESP3 text; reply k goes to callback (byte 0 + k) mod 9:
 *   0 on_sub_reply (pub/sub message: cross-node delivery, seq learnt from the payload)
 *   1 publish, 2 join, 3 join with since, 4 history, 5 presence (on_hub_reply of a pending
 *     /hub request of the fixture connection)
 *   6 on_heartbeat_reply, 7 on_writeback_reply
 *   8 on_hub_reply of a publish with no reply (connection lost)
 * Crashes, leaks and sanitizer reports are the findings; the room's seq must never go
 * backwards and the connection must stay open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/brokers/redis.c"
#include "hub/brokers/redis_hub.c"
#include "hub_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROOM "fuzz"

static struct rbroker fb; /* no connections: pub and sub stay "down" */

/* A pending /hub request of hc for ROOM, as broker_hub_* would queue it. */
static struct pending *pending_for(struct hconn *hc, int op, bool has_since)
{
    json_t *id = json_integer(7);
    struct pending *p = pending_new(hc, op, ROOM, id);
    json_decref(id);
    if (!p) abort();
    p->has_since = has_since;
    p->since = 1;
    p->limit = op == P_HISTORY ? 2 : 0;
    p->t0 = hub_mono_ns();
    if (op == P_PUBLISH) {
        p->prefix = strdup("{\"type\":\"message\",\"room\":\"" ROOM "\",\"seq\":");
        p->suffix = strdup(",\"from\":\"fuzzer\",\"data\":1,\"ts\":1}");
        if (!p->prefix || !p->suffix) abort();
    }
    return p;
}

/* Gives reply rep (NULL: none) to callback k. */
static void dispatch(struct hconn *hc, unsigned k, redisReply *rep)
{
    switch (k % 9) {
    case 0:
        if (rep) on_sub_reply(NULL, rep, &fb);
        break;
    case 1:
        on_hub_reply(NULL, rep, pending_for(hc, P_PUBLISH, false));
        break;
    case 2:
        on_hub_reply(NULL, rep, pending_for(hc, P_JOIN, false));
        break;
    case 3:
        on_hub_reply(NULL, rep, pending_for(hc, P_JOIN, true));
        break;
    case 4:
        on_hub_reply(NULL, rep, pending_for(hc, P_HISTORY, true));
        break;
    case 5:
        on_hub_reply(NULL, rep, pending_for(hc, P_PRESENCE, false));
        break;
    case 6:
        on_heartbeat_reply(NULL, rep, &fb);
        break;
    case 7: {
        struct writeback *wb = calloc(1, sizeof *wb);
        if (!wb) abort();
        wb->b = &fb;
        wb->last = 3;
        snprintf(wb->room, sizeof wb->room, "%s", ROOM);
        on_writeback_reply(NULL, rep, wb);
        break;
    }
    case 8:
        on_hub_reply(NULL, NULL, pending_for(hc, P_PUBLISH, false));
        break;
    }
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hconn *hc = fixture_conn();
    struct room *room = rooms_find(&fx.h->rooms, ROOM);
    if (!fb.h) {
        memcpy(node_id, "0123456789abcdef", NODE_ID_LEN + 1); /* our own payloads' tag */
        scripts_hash(&fb);
        fb.h = fx.h;
        fb.pub.b = fb.sub.b = &fb;
        fb.base.ops = &redis_ops;
        fx.h->broker = &fb.base;
        /* the fixture connection is a member of ROOM and subscribed to its topics, so
         * deliveries and replies are really sent */
        bool full = false;
        room = rooms_get(&fx.h->rooms, ROOM, &full);
        if (!room || room_add_member(&fx.h->rooms, room, hc) < 0) abort();
        weft_subscribe(hc->c, "hub:" ROOM, 8);
        weft_subscribe(hc->c, "room:" ROOM, 9);
    }
    if (size < 1) return 0;
    redisReader *r = redisReaderCreate();
    if (!r) abort();
    if (redisReaderFeed(r, (const char *)data + 1, size - 1) != REDIS_OK) abort();
    unsigned k = data[0];
    uint64_t seq = room->seq;
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r, &rep) != REDIS_OK || !rep) break;
        dispatch(hc, k++, rep);
        freeReplyObject(rep);
        if (room->seq < seq || !hc->open || hc->gone) abort();
        seq = room->seq;
    }
    redisReaderFree(r);
    room->seq = 0; /* every input starts from the same seq */
    room->synced = 0;
    fixture_drain();
    return 0;
}
