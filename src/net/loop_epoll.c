/*
 * loop_epoll.c — the epoll backend of the loop: sockets registered edge-triggered for input
 * and output once, level-triggered watchers for everything else, the eventfd as one of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "net/loop_int.h"
#include "net/net.h"

#define MAX_EVENTS 512

struct epoll_state {
    int epfd;
    struct epoll_event events[MAX_EVENTS];
};

/* The backend state of loop. */
static struct epoll_state *st(const struct weft_loop *loop)
{
    return loop->be;
}

/* Registers io for events. Returns 0 or -1 (errno). */
static int ep_io_add(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(st(loop)->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

/* Changes the events io is registered for. Returns 0 or -1 (errno). */
static int ep_io_mod(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(st(loop)->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

/* Unregisters io. */
static void ep_io_del(struct weft_loop *loop, struct weft_io *io)
{
    epoll_ctl(st(loop)->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* Creates the epoll instance and registers the eventfd. Returns 0 or a negative errno. */
static int ep_init(struct weft_loop *loop)
{
    struct epoll_state *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int err = errno;
        free(e);
        return -err;
    }
    loop->be = e;
    if (ep_io_add(loop, &loop->wake, EPOLLIN) != 0) {
        int err = errno;
        close(e->epfd);
        free(e);
        loop->be = NULL;
        return -err;
    }
    return 0;
}

/* Closes the epoll instance. */
static void ep_fini(struct weft_loop *loop)
{
    struct epoll_state *e = st(loop);
    if (!e) return;
    close(e->epfd);
    free(e);
    loop->be = NULL;
}

/* Waits for events. Returns how many or WEFT_ERR_IO. */
static int ep_wait(struct weft_loop *loop, int timeout_ms)
{
    struct epoll_state *e = st(loop);
    int n = epoll_wait(e->epfd, e->events, MAX_EVENTS, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : WEFT_ERR_IO;
    return n;
}

/* Calls the watchers of the n events found by ep_wait. */
static void ep_dispatch(struct weft_loop *loop, int n)
{
    struct epoll_state *e = st(loop);
    for (int i = 0; i < n; i++) {
        struct weft_io *io = e->events[i].data.ptr;
        io->cb(io, e->events[i].events);
    }
}

/* Writes every corked socket with its own writev. */
static void ep_flush_dirty(struct weft_loop *loop)
{
    while (loop->dirty) {
        struct weft_sock *s = loop->dirty;
        loop->dirty = s->list_next;
        s->flags &= (uint16_t)~SOCK_DIRTY;
        sock_flush(s);
    }
}

/* Registers a socket edge-triggered for input and output (one epoll_ctl per connection). */
static int ep_sock_attach(struct weft_loop *loop, struct weft_sock *s)
{
    return ep_io_add(loop, &s->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) == 0 ? WEFT_OK
                                                                                   : WEFT_ERR_IO;
}

/* Nothing to do: closing the fd removes it from epoll. */
static void ep_sock_closing(struct weft_loop *loop, struct weft_sock *s)
{
    (void)loop;
    (void)s;
}

/* The epoll descriptor. */
static int ep_fd(const struct weft_loop *loop)
{
    return st(loop)->epfd;
}

const struct loop_backend loop_epoll_backend = {
    .id = WEFT_IO_EPOLL,
    .init = ep_init,
    .fini = ep_fini,
    .io_add = ep_io_add,
    .io_mod = ep_io_mod,
    .io_del = ep_io_del,
    .wait = ep_wait,
    .dispatch = ep_dispatch,
    .flush_dirty = ep_flush_dirty,
    .sock_attach = ep_sock_attach,
    .sock_closing = ep_sock_closing,
    .sock_blocked = NULL, /* EPOLLOUT of the edge-triggered registration reports it */
    .fd = ep_fd,
};
