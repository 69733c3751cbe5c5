/*
 * conn.c — the life of a hub connection after its upgrade (conn.h): open (counted, the
 * token's expiry armed), messages (the rate limit, then the route's work), close (rooms left,
 * uncounted, logged, freed), and the helpers every part uses to send on or close one.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/conn.h"
#include "hub/internal.h"
#include "hub/ipbook.h"

/* (Re)starts hc's expiry timer for its token's exp (at most an hour ahead: it re-arms). */
void hub_arm_expiry(struct hconn *hc)
{
    int64_t left = hc->auth->exp - hub_wall_s();
    if (left > 3600) left = 3600;
    weft_timer_start(hc->h->loop, &hc->auth->exp_timer, left > 0 ? (uint64_t)left * 1000 : 0);
}

/* The token of hc expired: close 1008. */
static void on_token_expired(struct weft_timer *t)
{
    struct hconn_auth *a =
        (struct hconn_auth *)((char *)t - offsetof(struct hconn_auth, exp_timer));
    struct hconn *hc = a->hc;
    if (hub_wall_s() < a->exp) { /* refreshed meanwhile, capped, or the timer ran early */
        hub_arm_expiry(hc);
        return;
    }
    hc->h->m.auth_expired++;
    hub_conn_close(hc, WEFT_CLOSE_POLICY, "token expired");
}

/* Gives hc an empty struct hconn_auth; see internal.h. */
struct hconn_auth *hconn_auth_new(struct hconn *hc)
{
    if (hc->auth) return hc->auth;
    struct hconn_auth *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->hc = hc;
    a->exp_timer.cb = on_token_expired;
    hc->auth = a;
    return a;
}

/* The client IP of c (the address part of weft_conn_remote, as upgrade_common saw it). */
static void conn_ip(const struct weft_conn *c, char *out, size_t cap)
{
    ipbook_ip_of(weft_conn_remote(c), out, cap);
}

/* The connection is open: count it, start the expiry timer, log; see conn.h. */
void conn_on_open(struct weft_conn *c)
{
    struct hconn *hc = weft_conn_user(c);
    struct hub *h = weft_conn_route_user(c);
    if (!hc) {
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "no state");
        return;
    }
    hc->c = c;
    hc->open = true;
    hc->bucket_ms = weft_loop_now(h->loop);
    hc->next = h->conns;
    if (h->conns) h->conns->prev = hc;
    h->conns = hc;
    if (!hc->self_check) {
        h->nconns++;
        h->m.conns_total++;
        h->m.hs_ok++;
        char ip[64];
        conn_ip(c, ip, sizeof ip);
        ipbook_inc(h->ips, ip);
    }
    if (hc->auth && hc->auth->exp) hub_arm_expiry(hc);
    static const char *const kinds[] = {"/hub", "/ws", "/echo"};
    json_t *f = json_pack("{s:s,s:s,s:s}", "event", "open", "remote", weft_conn_remote(c), "route",
                          kinds[hc->kind]);
    if (f && hc->user) json_object_set_new(f, "user", json_string(hc->user));
    if (f && *weft_conn_protocol(c))
        json_object_set_new(f, "protocol", json_string(weft_conn_protocol(c)));
    hlog(&h->log, hc->self_check ? WEFT_LOG_DEBUG : WEFT_LOG_INFO, hc->id, f, "open %s from %s",
         kinds[hc->kind], weft_conn_remote(c));
    if (hc->kind == HC_ROOM) {
        /* The first member of a raw room on this worker counts the room (a race with
         * another worker past the upgrade's check closes with 1013). */
        bool first = hc->topic && weft_topic_count(h->server, hc->topic, hc->topic_len) == 0;
        if (first && !rooms_reserve(&h->rooms)) {
            hub_conn_close(hc, WEFT_CLOSE_TRY_AGAIN, "room limit reached");
        } else if (!hc->topic || weft_subscribe(c, hc->topic, hc->topic_len) != WEFT_OK) {
            if (first) rooms_unreserve(&h->rooms);
            hub_conn_close(hc, WEFT_CLOSE_INTERNAL, "cannot join room");
        } else {
            hc->raw_sub = true;
            if (h->broker) {
                hc->broker_ref = true;
                broker_ref(h->broker, hc->topic, hc->topic_len, 1);
            }
        }
    }
}

/* Takes one token from hc's bucket. Returns false when the rate is exceeded. */
static bool rate_ok(struct hconn *hc)
{
    const struct hub_config *cfg = &hc->h->cfg;
    if (cfg->rate <= 0) return true;
    double burst = cfg->burst > 0 ? cfg->burst : 2 * cfg->rate;
    if (burst < 1) burst = 1;
    uint64_t now = weft_loop_now(hc->h->loop);
    hc->tokens += (double)(now - hc->bucket_ms) / 1000.0 * cfg->rate;
    hc->bucket_ms = now;
    if (hc->tokens > burst) hc->tokens = burst;
    if (hc->tokens < 1) return false;
    hc->tokens -= 1;
    return true;
}

/* A message on any route: rate limit, then the route's work; see conn.h. */
void conn_on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    uint64_t t0 = hub_mono_ns();
    struct hconn *hc = weft_conn_user(c);
    if (!hc) return;
    if (!rate_ok(hc)) {
        hc->h->m.rate_limited++;
        hub_conn_close(hc, WEFT_CLOSE_POLICY, "message rate exceeded");
        return;
    }
    switch ((enum hconn_kind)hc->kind) {
    case HC_HUB:
        proto_message(hc, data, len, binary, t0);
        break;
    case HC_ROOM:
        if (hc->h->sh)
            workers_publish_raw(hc->h, hc->topic, hc->topic_len, data, len,
                                binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
        else
            weft_publish(weft_conn_server(c), hc->topic, hc->topic_len, data, len,
                         binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
        if (hc->h->broker) /* the other nodes (this one delivered above) */
            broker_publish_raw(hc->h->broker, hc->topic, hc->topic_len, data, len, binary);
        break;
    case HC_ECHO:
        weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
        break;
    }
}

/* The connection is gone: leave rooms, uncount, log, free; see conn.h. */
void conn_on_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                   bool clean)
{
    struct hconn *hc = weft_conn_user(c);
    struct hub *h = weft_conn_route_user(c);
    if (!hc) return;
    weft_conn_set_user(c, NULL);
    if (hc->auth) weft_timer_stop(&hc->auth->exp_timer);
    if (hc->kind == HC_HUB) proto_conn_gone(hc);
    if (hc->broker_ref && h->broker) broker_ref(h->broker, hc->topic, hc->topic_len, -1);
    hc->broker_ref = false;
    /* The library dropped c's subscriptions already: the last member uncounts the room. */
    if (hc->raw_sub && weft_topic_count(h->server, hc->topic, hc->topic_len) == 0)
        rooms_unreserve(&h->rooms);
    hc->raw_sub = false;
    if (hc->open) {
        if (hc->prev)
            hc->prev->next = hc->next;
        else
            h->conns = hc->next;
        if (hc->next) hc->next->prev = hc->prev;
        if (!hc->self_check) {
            h->nconns--;
            char ip[64];
            conn_ip(c, ip, sizeof ip);
            ipbook_dec(h->ips, ip);
            metrics_close(&h->m, code);
        }
    }
    h->nconns_all--;
    workers_count(h, -1);
    int rl = reason_len > 123 ? 123 : (int)reason_len;
    char rs[124];
    snprintf(rs, sizeof rs, "%.*s", rl, reason ? reason : "");
    for (char *p = rs; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80) *p = '?';
    hlog(&h->log, hc->self_check ? WEFT_LOG_DEBUG : WEFT_LOG_INFO, hc->id,
         json_pack("{s:s,s:i,s:s,s:b}", "event", "close", "code", code, "reason", rs, "clean",
                   clean),
         "closed %u%s%s%s", code, rs[0] ? " \"" : "", rs, rs[0] ? "\"" : "");
    hub_conn_release(hc);
}

/* Frees hc, or (with requests in flight to other workers) marks it gone for the last reply
 * to free; see internal.h. */
void hub_conn_release(struct hconn *hc)
{
    if (hc->refs) {
        hc->gone = true;
        hc->c = NULL;
        return;
    }
    free(hc->user);
    if (hc->auth) {
        free(hc->auth->jti);
        json_decref(hc->auth->rooms_claim);
        free(hc->auth);
    }
    if (hc->id != hc->id_inline) free(hc->id);
    free(hc->topic);
    free(hc);
}

/* Closes hc with code and reason, logging why; see internal.h. */
void hub_conn_close(struct hconn *hc, uint16_t code, const char *reason)
{
    hlog(&hc->h->log, WEFT_LOG_WARN, hc->id,
         json_pack("{s:s,s:i,s:s}", "event", "closing", "code", code, "reason", reason),
         "closing with %u: %s", code, reason);
    weft_conn_close(hc->c, code, reason);
}

/* Sends text on hc; see internal.h. */
enum weft_send_result hub_send(struct hconn *hc, const char *text, size_t len)
{
    if (hc->gone) return WEFT_SEND_CLOSED;
    enum weft_send_result r = weft_conn_send(hc->c, text, len, WEFT_OP_TEXT);
    if (r == WEFT_SEND_DROPPED)
        hlog(&hc->h->log, WEFT_LOG_DEBUG, hc->id, NULL, "message dropped (backpressure)");
    return r;
}
