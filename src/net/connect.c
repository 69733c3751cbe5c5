/*
 * connect.c — the TCP connector (connect.h): non-blocking connects with happy eyeballs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/connect.h"

/* One TCP connect in flight. */
struct attempt {
    struct weft_io io; /* first; fd -1 when unused */
    struct net_connector *nc;
};

struct net_connector {
    struct weft_loop *loop;
    net_connect_cb cb;
    void *arg;
    struct attempt a[DNS_MAX_ADDRS];
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t naddrs, next_addr;
    unsigned inflight; /* connects in flight */
    uint32_t eyeball_ms;
    int last_errno; /* of the latest failed connect */
    bool running;   /* started, outcome not reported yet */
    struct weft_timer eyeball_timer, reaper;
};

static void try_next_address(struct net_connector *nc);

/* Reports the outcome (once per start). */
static void report(struct net_connector *nc, int fd, const struct dns_addr *addr, int err)
{
    nc->running = false;
    nc->cb(nc->arg, fd, addr, err);
}

/* Drops every connect in flight; see connect.h. */
void net_connector_stop(struct net_connector *nc)
{
    weft_timer_stop(&nc->eyeball_timer);
    for (size_t i = 0; i < DNS_MAX_ADDRS; i++) {
        struct attempt *a = &nc->a[i];
        if (a->io.fd >= 0) {
            io_del(nc->loop, &a->io); /* an io_uring poll would keep the socket alive */
            close(a->io.fd);
            a->io.fd = -1;
        }
    }
    nc->inflight = 0;
    nc->running = false;
}

/* Loop callback of a connect in flight: it completed, one way or the other. */
static void on_attempt_io(struct weft_io *io, uint32_t events)
{
    struct attempt *a = (struct attempt *)io;
    struct net_connector *nc = a->nc;
    if (io->fd < 0 || !nc->running) return;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
    if (soerr == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    size_t idx = (size_t)(a - nc->a);
    if (soerr) {
        io_del(nc->loop, io);
        close(io->fd);
        io->fd = -1;
        nc->inflight--;
        nc->last_errno = soerr;
        if (nc->next_addr < nc->naddrs) {
            weft_timer_stop(&nc->eyeball_timer);
            try_next_address(nc);
        } else if (nc->inflight == 0) {
            report(nc, -1, &nc->addrs[idx], soerr);
        }
        return;
    }
    /* The winner: the other connects are abandoned. */
    int fd = io->fd;
    io_del(nc->loop, io);
    io->fd = -1;
    net_connector_stop(nc);
    report(nc, fd, &nc->addrs[idx], 0);
}

/* Starts connects to the next addresses until one is in flight; reports the failure when none
 * is left and nothing is in flight. */
static void try_next_address(struct net_connector *nc)
{
    while (nc->next_addr < nc->naddrs) {
        size_t i = nc->next_addr++;
        const struct dns_addr *addr = &nc->addrs[i];
        int fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            nc->last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, &addr->u.sa, addr->len) != 0 && errno != EINPROGRESS) {
            nc->last_errno = errno;
            close(fd);
            continue;
        }
        struct attempt *a = &nc->a[i];
        a->io.fd = fd;
        a->io.cb = on_attempt_io;
        a->nc = nc;
        if (io_add(nc->loop, &a->io, EPOLLOUT | EPOLLERR | EPOLLHUP) != 0) {
            nc->last_errno = errno;
            close(fd);
            a->io.fd = -1;
            continue;
        }
        nc->inflight++;
        if (nc->next_addr < nc->naddrs)
            weft_timer_start(nc->loop, &nc->eyeball_timer, nc->eyeball_ms);
        return;
    }
    if (nc->inflight == 0) report(nc, -1, NULL, nc->last_errno ? nc->last_errno : ECONNREFUSED);
}

/* Timer callback: the connect in flight has not answered in time: start the next one too. */
static void on_eyeball_timer(struct weft_timer *t)
{
    struct net_connector *nc =
        (struct net_connector *)((char *)t - offsetof(struct net_connector, eyeball_timer));
    if (nc->running) try_next_address(nc);
}

/* Timer callback: frees a freed connector's memory. */
static void on_reaper(struct weft_timer *t)
{
    free((char *)t - offsetof(struct net_connector, reaper));
}

/* Creates a connector; see connect.h. */
struct net_connector *net_connector_new(struct weft_loop *loop, net_connect_cb cb, void *arg)
{
    struct net_connector *nc = calloc(1, sizeof *nc);
    if (!nc) return NULL;
    nc->loop = loop;
    nc->cb = cb;
    nc->arg = arg;
    for (size_t i = 0; i < DNS_MAX_ADDRS; i++)
        nc->a[i].io.fd = -1;
    nc->eyeball_timer.cb = on_eyeball_timer;
    nc->reaper.cb = on_reaper;
    return nc;
}

/* Starts connecting; see connect.h. */
void net_connector_start(struct net_connector *nc, const struct dns_addr *addrs, size_t n,
                         uint32_t eyeball_ms)
{
    net_connector_stop(nc);
    if (n > DNS_MAX_ADDRS) n = DNS_MAX_ADDRS;
    memcpy(nc->addrs, addrs, n * sizeof addrs[0]);
    nc->naddrs = n;
    nc->next_addr = 0;
    nc->last_errno = 0;
    nc->eyeball_ms = eyeball_ms;
    nc->running = true;
    try_next_address(nc);
}

/* Stops and frees; see connect.h. */
void net_connector_free(struct net_connector *nc)
{
    if (!nc) return;
    net_connector_stop(nc);
    weft_timer_start(nc->loop, &nc->reaper, 0);
}
