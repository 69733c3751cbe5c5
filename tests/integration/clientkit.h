/*
 * clientkit.h — helpers for the client tests: a recorder of every client callback and a way
 * to run a loop until a condition holds or a deadline passes. Header-only (static inline).
 */
#ifndef WEFT_TEST_CLIENTKIT_H
#define WEFT_TEST_CLIENTKIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"

#define CK_MAX 64

/* Everything one client reported. */
struct ck {
    struct weft_client *cl;
    struct weft_loop *loop;
    unsigned opens, closes, errors, reconnects, ends, messages, pongs;
    uint16_t close_code;
    bool close_clean;
    char close_reason[128];
    int err;                    /* last on_error */
    int http_status;
    char error[320];
    int errs[CK_MAX];           /* err of each on_error */
    uint64_t error_at[CK_MAX];  /* when each on_error ran */
    unsigned attempt[CK_MAX];   /* on_reconnecting arguments, in order */
    uint32_t delay[CK_MAX];
    uint64_t reconnect_at[CK_MAX];
    uint8_t *last;              /* last message */
    size_t last_len;
    bool last_binary;
    char protocol[64];          /* subprotocol at the last open */
    bool close_on_open;         /* close with 1000 as soon as the connection opens */
};

static inline uint64_t ck_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline struct ck *ck_of_conn(struct weft_conn *c)
{
    return weft_conn_route_user(c);
}

static inline void ck_on_open(struct weft_conn *c)
{
    struct ck *k = ck_of_conn(c);
    k->opens++;
    snprintf(k->protocol, sizeof k->protocol, "%s", weft_conn_protocol(c));
    if (k->close_on_open)
        weft_conn_close(c, 1000, NULL);
}

static inline void ck_on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    struct ck *k = ck_of_conn(c);
    free(k->last);
    k->last = malloc(len + 1);
    if (!k->last)
        abort();
    memcpy(k->last, data, len);
    k->last[len] = 0;
    k->last_len = len;
    k->last_binary = binary;
    k->messages++;
}

static inline void ck_on_pong(struct weft_conn *c, const void *data, size_t len)
{
    (void)data;
    (void)len;
    ck_of_conn(c)->pongs++;
}

static inline void ck_on_close(struct weft_conn *c, uint16_t code, const char *reason,
                               size_t reason_len, bool clean)
{
    struct ck *k = ck_of_conn(c);
    k->closes++;
    k->close_code = code;
    k->close_clean = clean;
    snprintf(k->close_reason, sizeof k->close_reason, "%.*s", (int)reason_len,
             reason ? reason : "");
}

static inline void ck_on_error(struct weft_client *cl, int err, const char *reason, int status)
{
    struct ck *k = weft_client_user(cl);
    if (k->errors < CK_MAX) {
        k->errs[k->errors] = err;
        k->error_at[k->errors] = ck_now();
    }
    k->errors++;
    k->err = err;
    k->http_status = status;
    snprintf(k->error, sizeof k->error, "%s", reason);
}

static inline void ck_on_reconnecting(struct weft_client *cl, unsigned attempt, uint32_t delay)
{
    struct ck *k = weft_client_user(cl);
    if (k->reconnects < CK_MAX) {
        k->attempt[k->reconnects] = attempt;
        k->delay[k->reconnects] = delay;
        k->reconnect_at[k->reconnects] = ck_now();
    }
    k->reconnects++;
}

static inline void ck_on_end(struct weft_client *cl)
{
    struct ck *k = weft_client_user(cl);
    k->ends++;
}

/* Options wired to the recorder k. */
static inline void ck_options(struct weft_client_options *o, struct ck *k)
{
    memset(o, 0, sizeof *o);
    o->handlers.on_open = ck_on_open;
    o->handlers.on_message = ck_on_message;
    o->handlers.on_pong = ck_on_pong;
    o->handlers.on_close = ck_on_close;
    o->on_error = ck_on_error;
    o->on_reconnecting = ck_on_reconnecting;
    o->on_end = ck_on_end;
    o->user = k;
}

/* Runs `loop` until `cond` holds or timeout_ms pass; the value of cond at the end. */
#define CK_RUN(loop, cond, timeout_ms)                                                             \
    ({                                                                                             \
        uint64_t ck_dl_ = ck_now() + (uint64_t)(timeout_ms);                                       \
        while (!(cond) && ck_now() < ck_dl_)                                                       \
            weft_loop_poll((loop), 5);                                                             \
        (bool)(cond);                                                                              \
    })

/* Frees a client and lets the loop release what it kept. */
static inline void ck_free(struct ck *k)
{
    if (k->cl)
        weft_client_free(k->cl);
    k->cl = NULL;
    free(k->last);
    k->last = NULL;
    if (k->loop)
        for (int i = 0; i < 3; i++)
            weft_loop_poll(k->loop, 10);
}

#endif
