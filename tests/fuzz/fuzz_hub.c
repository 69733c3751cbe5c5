/*
 * fuzz_hub.c — libFuzzer target for the /hub JSON protocol through its request handler
 * (proto_message in src/hub/proto.c: JSON parsing, type dispatch, field validation, rooms,
 * history, presence, in-band auth, the stats stream), on a real hub with a real connection
 * (hub_fixture.h).
 *
 * The input is a sequence of requests separated by '\n', each given to proto_message as one
 * text message of the fixture connection, so sequences (join, publish, history with since and
 * limit, leave) are reached. Byte 0 of a request that starts with 0x01 marks it binary. After
 * each input the connection leaves its rooms, the rooms and their history are dropped, the
 * token's claims are restored and the stats stream is left: every input starts from the same
 * state. Crashes, leaks and sanitizer reports are the findings; each request must also leave
 * the connection open and the room bookkeeping consistent (every joined room lists the
 * connection as a member).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks that hc's joined rooms and their member lists agree. */
static void check_rooms(const struct hconn *hc)
{
    if (hc->nrooms > fx.h->cfg.max_rooms) abort();
    for (uint32_t i = 0; i < hc->nrooms; i++) {
        const struct room *r = hc->rooms[i];
        bool member = false;
        for (uint32_t k = 0; k < r->nmembers; k++)
            if (r->members[k] == hc) member = true;
        if (!member || rooms_find(&fx.h->rooms, r->name) != r) abort();
        if (r->hist_len > fx.h->cfg.history_size) abort();
    }
}

/* Puts hc back into its state after the upgrade. */
static void reset(struct hconn *hc)
{
    for (uint32_t i = 0; i < hc->nrooms; i++) {
        char topic[HUB_ROOM_MAX + 8];
        int n = snprintf(topic, sizeof topic, "hub:%s", hc->rooms[i]->name);
        weft_unsubscribe(hc->c, topic, (size_t)n);
    }
    proto_conn_gone(hc);
    weft_unsubscribe(hc->c, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1);
    rooms_free(&fx.h->rooms);
    if (rooms_init(&fx.h->rooms, fx.h->cfg.history_size, fx.h->cfg.history_age_ms) != 0) abort();
    struct hconn_auth *a = hc->auth;
    if (a) {
        free(a->jti);
        a->jti = NULL;
        json_decref(a->rooms_claim);
        a->rooms_claim = NULL;
        a->exp = FIXTURE_EXP;
        weft_timer_stop(&a->exp_timer);
        hub_arm_expiry(hc);
    }
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hconn *hc = fixture_conn();
    size_t i = 0;
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - data) : size;
        bool binary = end > i && data[i] == 0x01;
        size_t start = binary ? i + 1 : i;
        char *msg = malloc(end - start + 1); /* exactly sized: overreads are caught */
        if (!msg) abort();
        memcpy(msg, data + start, end - start);
        proto_message(hc, msg, end - start, binary, hub_mono_ns());
        free(msg);
        if (fx.h->conns != hc || !hc->open || hc->gone) abort(); /* a request never closes */
        check_rooms(hc);
        i = end + 1;
    }
    fixture_drain();
    reset(hc);
    fixture_drain();
    return 0;
}
