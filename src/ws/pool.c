/*
 * pool.c — a bounded pool of client connections to one URL: acquire hands out an idle one,
 * opens a new one below the bound, or queues the caller (FIFO, with a timeout); release gives
 * it back; connections that close are removed and replaced on demand. Every member is a
 * struct weft_client without reconnection; for wss:// they share the pool's TLS context.
 */
#include <stdlib.h>
#include <string.h>

#include "ws/client.h"

struct pool_member {
    struct pool_member *next;
    struct weft_pool *p;
    struct weft_client *cl;
    bool open; /* the connection is open */
    bool busy; /* handed out */
    int err;   /* error of a failed attempt */
};

struct pool_waiter {
    struct pool_waiter *next;
    struct weft_pool *p;
    struct weft_timer timer;
    weft_pool_cb cb;
    void *arg;
};

struct weft_pool {
    struct weft_loop *loop;
    char *url;
    struct weft_client_options opt;
    struct ssl_ctx_st *tls; /* wss://: the members' TLS client context, NULL for ws:// */
    unsigned max;
    struct pool_member *members;
    size_t nmembers;
    struct pool_waiter *whead, *wtail;
    size_t nwaiters;
    struct weft_timer dispatch_timer;
};

/* Removes w from the waiting list (it must be on it). */
static void waiter_unlink(struct weft_pool *p, struct pool_waiter *w)
{
    struct pool_waiter **pp = &p->whead, *prev = NULL;
    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = w->next;
    if (p->wtail == w) p->wtail = prev;
    p->nwaiters--;
    weft_timer_stop(&w->timer);
}

/* Schedules a dispatch (waiters are always answered from a timer, never re-entrantly). */
static void schedule_dispatch(struct weft_pool *p)
{
    if (!weft_timer_active(&p->dispatch_timer)) weft_timer_start(p->loop, &p->dispatch_timer, 0);
}

static const struct client_owner_ops member_ops;

/* Opens one more member connection. Returns WEFT_OK, or the error of client_new
 * (WEFT_ERR_NOMEM, WEFT_ERR_INVAL for options it refuses) if it could not be started. */
static int spawn_member(struct weft_pool *p)
{
    struct pool_member *m = calloc(1, sizeof *m);
    if (!m) return WEFT_ERR_NOMEM;
    m->p = p;
    int err;
    struct weft_client *cl = client_new(p->loop, p->url, &p->opt, p->tls, &member_ops, m, &err);
    if (!cl) {
        free(m);
        return err;
    }
    m->cl = cl;
    m->next = p->members;
    p->members = m;
    p->nmembers++;
    return WEFT_OK;
}

/* Removes waiter w and fails it with err (its callback runs now). */
static void waiter_fail(struct weft_pool *p, struct pool_waiter *w, int err)
{
    waiter_unlink(p, w);
    weft_pool_cb cb = w->cb;
    void *arg = w->arg;
    free(w);
    cb(p, NULL, err, arg);
}

/* Fails the oldest waiter with err (its callback runs now). */
static void fail_oldest_waiter(struct weft_pool *p, int err)
{
    waiter_fail(p, p->whead, err);
}

/* Members that are still connecting (not open, not gone). */
static size_t connecting(const struct weft_pool *p)
{
    size_t n = 0;
    for (const struct pool_member *m = p->members; m; m = m->next)
        if (!m->open) n++;
    return n;
}

/* Hands idle connections to waiters in order, then opens connections for the waiters left
 * (within the bound); a connection that cannot even be started fails the oldest waiter. */
static void dispatch(struct weft_pool *p)
{
    while (p->whead) {
        struct pool_member *idle = NULL;
        for (struct pool_member *m = p->members; m; m = m->next)
            if (m->open && !m->busy && weft_client_conn(m->cl)) {
                idle = m;
                break;
            }
        if (!idle) break;
        struct pool_waiter *w = p->whead;
        waiter_unlink(p, w);
        idle->busy = true;
        weft_pool_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(p, weft_client_conn(idle->cl), WEFT_OK, arg);
    }
    size_t opening = connecting(p);
    /* Counted once: a failed waiter's callback may queue another (a later dispatch's job). */
    size_t want = p->nwaiters > opening ? p->nwaiters - opening : 0;
    while (want > 0 && p->whead && p->nmembers < p->max) {
        want--;
        int err = spawn_member(p);
        if (err != WEFT_OK) fail_oldest_waiter(p, err);
    }
}

/* Timer callback: runs a scheduled dispatch. */
static void on_dispatch_timer(struct weft_timer *t)
{
    dispatch((struct weft_pool *)((char *)t - offsetof(struct weft_pool, dispatch_timer)));
}

/* Timer callback: a waiter's timeout passed. */
static void on_waiter_timeout(struct weft_timer *t)
{
    struct pool_waiter *w = (struct pool_waiter *)((char *)t - offsetof(struct pool_waiter, timer));
    waiter_fail(w->p, w, WEFT_ERR_TIMEOUT);
}

/* Client hook: a member's connection opened. */
static void member_opened(void *arg, struct weft_client *cl)
{
    (void)cl;
    struct pool_member *m = arg;
    m->open = true;
    schedule_dispatch(m->p);
}

/* Client hook: a member reported an error (an attempt failed, or the server broke the
 * protocol). */
static void member_error(void *arg, struct weft_client *cl, int err)
{
    (void)cl;
    ((struct pool_member *)arg)->err = err;
}

/* Client hook: a member ended (its connection closed, or it never opened): it leaves the pool
 * and is freed; a member that never opened fails the oldest waiter with its error. */
static void member_ended(void *arg, struct weft_client *cl)
{
    struct pool_member *m = arg;
    struct weft_pool *p = m->p;
    for (struct pool_member **pp = &p->members; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    p->nmembers--;
    bool never_opened = !m->open;
    int err = m->err ? m->err : WEFT_ERR_IO;
    free(m);
    weft_client_free(cl);
    if (never_opened && p->whead) fail_oldest_waiter(p, err);
    schedule_dispatch(p);
}

/* What member clients tell the pool. */
static const struct client_owner_ops member_ops = {
    .opened = member_opened,
    .error = member_error,
    .ended = member_ended,
};

/* Creates a pool; see weft.h. */
struct weft_pool *weft_pool_new(struct weft_loop *loop, const char *url,
                                const struct weft_client_options *opts, unsigned max_conns,
                                int *err)
{
    int dummy;
    if (!err) err = &dummy;
    struct weft_url u;
    if (!loop || !max_conns || weft_url_parse(url, &u, NULL) != WEFT_OK) {
        *err = WEFT_ERR_INVAL;
        return NULL;
    }
    struct weft_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(url))) {
        free(p);
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    if (u.tls) { /* one context for every member, so a bad CA file fails here */
        p->tls = client_tls_new(opts);
        if (!p->tls) {
            free(p->url);
            free(p);
            *err = WEFT_ERR_TLS;
            return NULL;
        }
    }
    p->loop = loop;
    p->max = max_conns;
    if (opts) p->opt = *opts;
    p->opt.reconnect = false;
    p->opt.on_reconnecting = NULL;
    p->opt.on_end = NULL;
    p->opt.queue_max = 0;
    p->dispatch_timer.cb = on_dispatch_timer;
    *err = WEFT_OK;
    return p;
}

/* Queues a request for a connection; see weft.h. */
int weft_pool_acquire(struct weft_pool *p, uint32_t timeout_ms, weft_pool_cb cb, void *arg)
{
    if (!cb) return WEFT_ERR_INVAL;
    struct pool_waiter *w = calloc(1, sizeof *w);
    if (!w) return WEFT_ERR_NOMEM;
    w->p = p;
    w->cb = cb;
    w->arg = arg;
    w->timer.cb = on_waiter_timeout;
    if (p->wtail)
        p->wtail->next = w;
    else
        p->whead = w;
    p->wtail = w;
    p->nwaiters++;
    if (timeout_ms) weft_timer_start(p->loop, &w->timer, timeout_ms);
    schedule_dispatch(p);
    return WEFT_OK;
}

/* Gives a connection back; see weft.h. */
void weft_pool_release(struct weft_pool *p, struct weft_conn *c)
{
    if (!c) return;
    struct weft_client *cl = weft_conn_client(c);
    struct pool_member *m = cl ? client_owner_arg(cl, &member_ops) : NULL;
    if (!m || m->p != p) return;
    m->busy = false;
    schedule_dispatch(p);
}

size_t weft_pool_size(const struct weft_pool *p)
{
    return p->nmembers;
}

size_t weft_pool_idle(const struct weft_pool *p)
{
    size_t n = 0;
    for (const struct pool_member *m = p->members; m; m = m->next)
        if (m->open && !m->busy && weft_client_conn(m->cl)) n++;
    return n;
}

/* Frees the pool; see weft.h. */
void weft_pool_free(struct weft_pool *p)
{
    if (!p) return;
    while (p->members) {
        struct pool_member *m = p->members;
        p->members = m->next;
        weft_client_free(m->cl);
        free(m);
    }
    while (p->whead) {
        struct pool_waiter *w = p->whead;
        p->whead = w->next;
        weft_timer_stop(&w->timer);
        free(w);
    }
    weft_timer_stop(&p->dispatch_timer);
    tls_ctx_free(p->tls); /* members' connections kept their own references */
    free(p->url);
    free(p);
}
