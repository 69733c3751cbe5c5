/*
 * watch.c — application file descriptors (stdin, pipes) served by the loop: a level-triggered
 * epoll registration with a callback. See weft_loop_watch_fd in weft.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "net/net.h"

struct weft_watch {
    struct weft_io io; /* first: the loop hands us back this pointer */
    struct weft_loop *loop;
    unsigned events;
    bool registered;
    weft_watch_cb cb;
    void *arg;
    struct weft_timer reaper; /* frees a watch after the iteration that freed it */
};

/* Translates weft watch events to epoll events. */
static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & WEFT_WATCH_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & WEFT_WATCH_WRITE)
        e |= EPOLLOUT;
    return e;
}

/* epoll callback: reports readiness to the application in weft terms. */
static void watch_on_io(struct weft_io *io, uint32_t ev)
{
    struct weft_watch *w = (struct weft_watch *)io;
    unsigned events = 0;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        events |= WEFT_WATCH_READ;
    if (ev & (EPOLLOUT | EPOLLERR))
        events |= WEFT_WATCH_WRITE;
    events &= w->events | (ev & (EPOLLHUP | EPOLLERR) ? WEFT_WATCH_READ : 0u);
    if (events && w->cb)
        w->cb(w, io->fd, events, w->arg);
}

/* A callback for a freed watch whose event was already fetched in this iteration. */
static void watch_on_io_dead(struct weft_io *io, uint32_t ev)
{
    (void)io;
    (void)ev;
}

/* Creates a watch; see weft.h. Returns the watch or NULL with *err. */
struct weft_watch *weft_loop_watch_fd(struct weft_loop *loop, int fd, unsigned events,
                                      weft_watch_cb cb, void *arg, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!loop || fd < 0 || !cb || !(events & (WEFT_WATCH_READ | WEFT_WATCH_WRITE))) {
        *err = WEFT_ERR_INVAL;
        return NULL;
    }
    struct weft_watch *w = calloc(1, sizeof *w);
    if (!w) {
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    w->io.fd = fd;
    w->io.cb = watch_on_io;
    w->loop = loop;
    w->events = events;
    w->cb = cb;
    w->arg = arg;
    if (io_add(loop, &w->io, to_epoll(events)) != 0) {
        *err = errno == EPERM ? WEFT_ERR_INVAL : WEFT_ERR_IO;
        free(w);
        return NULL;
    }
    w->registered = true;
    *err = WEFT_OK;
    return w;
}

/* Changes the watched events; 0 unregisters until events are set again. Returns WEFT_OK or
 * WEFT_ERR_IO. */
int weft_watch_set(struct weft_watch *w, unsigned events)
{
    events &= WEFT_WATCH_READ | WEFT_WATCH_WRITE;
    if (events == w->events && (w->registered || !events))
        return WEFT_OK;
    w->events = events;
    if (!events) {
        if (w->registered)
            io_del(w->loop, &w->io);
        w->registered = false;
        return WEFT_OK;
    }
    int r = w->registered ? io_mod(w->loop, &w->io, to_epoll(events))
                          : io_add(w->loop, &w->io, to_epoll(events));
    if (r != 0)
        return WEFT_ERR_IO;
    w->registered = true;
    return WEFT_OK;
}

/* Timer callback: releases a freed watch (no event for it can be pending any more). */
static void watch_reap(struct weft_timer *t)
{
    free((char *)t - offsetof(struct weft_watch, reaper));
}

/* Frees a watch; the memory goes in a later iteration because an event for it may still be
 * pending in the current one (timers started now never fire in the current iteration). */
void weft_watch_free(struct weft_watch *w)
{
    if (!w)
        return;
    if (w->registered)
        io_del(w->loop, &w->io);
    w->registered = false;
    w->cb = NULL;
    w->io.cb = watch_on_io_dead;
    w->reaper.cb = watch_reap;
    weft_timer_start(w->loop, &w->reaper, 0);
}
