/*
 * redis_loop.c — the hiredis adapter onto weft's loop (redis_loop.h).
 */
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "hub/brokers/redis_loop.h"
#include "hub/clock.h"

/* The adapter's state of one context (ac->ev.data), freed with the context. */
struct rloop {
    redisAsyncContext *ac; /* NULL once hiredis freed the context */
    struct weft_loop *loop;
    struct weft_watch *w; /* created with the first non-empty event mask */
    unsigned mask;
    bool in_io; /* inside on_io: the context may go under it */
    void (*on_gone)(void *arg);
    void *arg;
};

/* Socket events: hands them to hiredis, which may free the context (then rl is freed here,
 * once hiredis returned). */
static void on_io(struct weft_watch *w, int fd, unsigned events, void *arg)
{
    (void)w;
    (void)fd;
    struct rloop *rl = arg;
    rl->in_io = true;
    if ((events & WEFT_WATCH_READ) && rl->ac) redisAsyncHandleRead(rl->ac);
    if ((events & WEFT_WATCH_WRITE) && rl->ac) redisAsyncHandleWrite(rl->ac);
    rl->in_io = false;
    if (!rl->ac) free(rl);
}

/* Applies a new event mask to the context's watch (created on first use). */
static void set_mask(struct rloop *rl, unsigned mask)
{
    if (mask == rl->mask || !rl->ac) return;
    rl->mask = mask;
    if (!rl->w) {
        int e = 0;
        rl->w = weft_loop_watch_fd(rl->loop, rl->ac->c.fd, mask, on_io, rl, &e);
        return;
    }
    weft_watch_set(rl->w, mask);
}

/* hiredis hook: start reading. */
static void ev_add_read(void *p)
{
    struct rloop *rl = p;
    set_mask(rl, rl->mask | WEFT_WATCH_READ);
}

/* hiredis hook: stop reading. */
static void ev_del_read(void *p)
{
    struct rloop *rl = p;
    set_mask(rl, rl->mask & ~(unsigned)WEFT_WATCH_READ);
}

/* hiredis hook: start writing. */
static void ev_add_write(void *p)
{
    struct rloop *rl = p;
    set_mask(rl, rl->mask | WEFT_WATCH_WRITE);
}

/* hiredis hook: stop writing. */
static void ev_del_write(void *p)
{
    struct rloop *rl = p;
    set_mask(rl, rl->mask & ~(unsigned)WEFT_WATCH_WRITE);
}

/* hiredis hook: the context is being freed. Drops the watch (hiredis closes the fd
 * afterwards), tells the owner, and frees the state unless on_io still runs. */
static void ev_cleanup(void *p)
{
    struct rloop *rl = p;
    if (rl->w) weft_watch_free(rl->w);
    rl->w = NULL;
    rl->mask = 0;
    rl->ac = NULL;
    if (rl->on_gone) rl->on_gone(rl->arg);
    if (!rl->in_io) free(rl);
}

/* Attaches ac to loop; see redis_loop.h. */
int redis_loop_attach(redisAsyncContext *ac, struct weft_loop *loop, void (*on_gone)(void *arg),
                      void *arg)
{
    struct rloop *rl = calloc(1, sizeof *rl);
    if (!rl) return -1;
    rl->ac = ac;
    rl->loop = loop;
    rl->on_gone = on_gone;
    rl->arg = arg;
    ac->ev.data = rl;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* Writes what ac holds, for at most timeout_ms; see redis_loop.h. */
void redis_loop_flush(redisAsyncContext *ac, uint64_t timeout_ms)
{
    uint64_t end = hub_mono_ms() + timeout_ms;
    int done = 0;
    while (!done && hub_mono_ms() < end) {
        if (redisBufferWrite(&ac->c, &done) == REDIS_ERR) return;
        if (!done) {
            struct pollfd pfd = {.fd = ac->c.fd, .events = POLLOUT};
            poll(&pfd, 1, 50);
        }
    }
}
