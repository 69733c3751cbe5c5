/*
 * harness.c — an in-process weft server on its own thread; see harness.h.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ts *ts_current;

/* Absolute CLOCK_REALTIME deadline timeout_ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *server_main(void *arg)
{
    struct ts *t = arg;
    int err = WEFT_OK;
    struct weft_loop *loop = weft_loop_new();
    struct weft_server *s = NULL;
    if (!loop) {
        err = WEFT_ERR_IO;
    } else {
        struct weft_server_config cfg = t->cfg;
        if (!cfg.host) cfg.host = "127.0.0.1";
        cfg.port_ephemeral = cfg.unix_path == NULL;
        cfg.port = 0;
        s = weft_server_new(loop, &cfg, &err);
        if (s && t->setup) t->setup(t, s);
    }
    pthread_mutex_lock(&t->mu);
    t->loop = loop;
    t->server = s;
    t->port = s ? weft_server_port(s) : 0;
    t->start_err = s ? WEFT_OK : (err ? err : WEFT_ERR_IO);
    t->ready = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (!s) {
        if (loop) weft_loop_free(loop);
        return NULL;
    }
    weft_loop_run(loop);
    weft_server_free(s);
    weft_loop_free(loop);
    return NULL;
}

int ts_start(struct ts *t)
{
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->ready = false;
    t->opens = t->ncloses = 0;
    ts_current = t;
    if (pthread_create(&t->thread, NULL, server_main, t) != 0) {
        t->start_err = WEFT_ERR_IO;
        return -1;
    }
    t->started = true;
    pthread_mutex_lock(&t->mu);
    struct timespec dl = deadline_in(10000);
    while (!t->ready)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT) break;
    bool ok = t->ready && t->server != NULL && (t->port != 0 || t->cfg.unix_path);
    pthread_mutex_unlock(&t->mu);
    if (!t->ready) {
        fprintf(stderr, "harness: server thread did not start in 10 s\n");
        abort();
    }
    if (!ok) {
        fprintf(stderr, "harness: server did not start: %s (port %u)\n",
                weft_strerror(t->start_err), (unsigned)t->port);
        return -1;
    }
    return 0;
}

void ts_stop(struct ts *t)
{
    if (!t->started) return;
    if (t->loop && t->server) weft_loop_stop(t->loop);
    pthread_join(t->thread, NULL);
    t->started = false;
    t->loop = NULL;
    t->server = NULL;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    if (ts_current == t) ts_current = NULL;
}

struct call {
    struct ts *t;
    void (*fn)(struct ts *t, void *arg);
    void *arg;
    bool done;
};

static void call_trampoline(void *arg)
{
    struct call *c = arg;
    c->fn(c->t, c->arg);
    pthread_mutex_lock(&c->t->mu);
    c->done = true;
    pthread_cond_broadcast(&c->t->cv);
    pthread_mutex_unlock(&c->t->mu);
}

int ts_call(struct ts *t, void (*fn)(struct ts *t, void *arg), void *arg)
{
    struct call c = {t, fn, arg, false};
    if (weft_loop_defer(t->loop, call_trampoline, &c) != WEFT_OK) return -1;
    pthread_mutex_lock(&t->mu);
    struct timespec dl = deadline_in(10000);
    while (!c.done)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT) break;
    bool done = c.done;
    pthread_mutex_unlock(&t->mu);
    if (!done) {
        /* The loop thread still holds &c: nothing safe is left to do. */
        fprintf(stderr, "harness: the loop did not run a deferred call within 10 s\n");
        abort();
    }
    return 0;
}

static void get_stats(struct ts *t, void *arg)
{
    weft_server_stats(t->server, arg);
}

void ts_stats(struct ts *t, struct weft_server_stats *out)
{
    memset(out, 0, sizeof *out);
    ts_call(t, get_stats, out);
}

bool ts_wait_closes(struct ts *t, unsigned n, int timeout_ms)
{
    pthread_mutex_lock(&t->mu);
    struct timespec dl = deadline_in(timeout_ms);
    while (t->ncloses < n)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT) break;
    bool ok = t->ncloses >= n;
    pthread_mutex_unlock(&t->mu);
    return ok;
}

bool ts_find_close(struct ts *t, uint64_t conn_id, struct ts_close *out)
{
    bool found = false;
    pthread_mutex_lock(&t->mu);
    for (unsigned i = 0; i < t->ncloses && i < TS_MAX_CLOSES; i++) {
        if (t->closes[i].conn_id == conn_id) {
            *out = t->closes[i];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}

uint64_t ts_last_open(struct ts *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t id = t->opens ? t->open_ids[(t->opens - 1) % TS_MAX_CLOSES] : 0;
    pthread_mutex_unlock(&t->mu);
    return id;
}

void ts_record_open(struct weft_conn *c)
{
    struct ts *t = ts_current;
    pthread_mutex_lock(&t->mu);
    t->open_ids[t->opens % TS_MAX_CLOSES] = weft_conn_id(c);
    t->opens++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void ts_record_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean)
{
    struct ts *t = ts_current;
    pthread_mutex_lock(&t->mu);
    if (t->ncloses < TS_MAX_CLOSES) {
        struct ts_close *r = &t->closes[t->ncloses];
        memset(r, 0, sizeof *r);
        r->conn_id = weft_conn_id(c);
        r->user = weft_conn_user(c);
        r->code = code;
        r->clean = clean;
        r->reason_len = reason_len < sizeof r->reason ? reason_len : sizeof r->reason - 1;
        if (r->reason_len) memcpy(r->reason, reason, r->reason_len);
    }
    t->ncloses++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void echo_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

const struct weft_ws_handlers ts_echo_handlers = {
    .on_open = ts_record_open,
    .on_message = echo_message,
    .on_close = ts_record_close,
};
