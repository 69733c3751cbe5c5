/*
 * dns.c — c-ares resolution integrated on the weft loop: one c-ares channel per query, its
 * sockets registered (level-triggered) with the loop's epoll, its timeouts on a loop timer,
 * and completion reported from a timer so the caller is never called back re-entrantly.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "net/dns.h"

#define DNS_MAX_SOCKS 8
#define DNS_TRY_MS 2000 /* per-server try: c-ares's default (5 s) is too long for a client */

struct dns_watch {
    struct weft_io io; /* first */
    struct dns_query *q;
    bool used;
};

/* The part of a query the loop may still reference during the iteration that ends it. */
struct dns_socks {
    struct dns_watch w[DNS_MAX_SOCKS];
    struct weft_timer reaper;
};

struct dns_query {
    struct weft_loop *loop;
    ares_channel ch;
    bool ch_ok;
    struct dns_socks *socks;
    struct weft_timer ares_timer; /* c-ares retransmissions */
    struct weft_timer deadline;   /* overall timeout */
    struct weft_timer done;       /* reports the result outside c-ares and dns_resolve */
    uint16_t port;
    bool finished;                /* the result is in; waiting for `done` */
    bool in_ares;                 /* inside a c-ares call: do not destroy the channel */
    dns_cb cb;
    void *arg;
    int err;
    char why[160];
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t naddrs;
    char host[];
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status;

/* Initialises c-ares once per process. */
static void ares_global_init(void)
{
    ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* Parses a numeric address; see dns.h. */
bool dns_numeric(const char *host, uint16_t port, struct dns_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_port = htons(port);
        out->len = sizeof out->u.in;
        return true;
    }
    if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        out->len = sizeof out->u.in6;
        return true;
    }
    return false;
}

/* Timer callback: frees the socket watchers of a finished query. */
static void socks_reap(struct weft_timer *t)
{
    free((char *)t - offsetof(struct dns_socks, reaper));
}

/* Unregisters every c-ares socket still watched. */
static void unwatch_all(struct dns_query *q)
{
    for (size_t i = 0; i < DNS_MAX_SOCKS; i++) {
        struct dns_watch *w = &q->socks->w[i];
        if (w->used) {
            io_del(q->loop, &w->io);
            w->used = false;
        }
    }
}

/* Releases a query: c-ares channel, timers, watchers (freed in a later iteration, since an
 * event for them may be pending in this one). */
static void query_free(struct dns_query *q)
{
    weft_timer_stop(&q->ares_timer);
    weft_timer_stop(&q->deadline);
    weft_timer_stop(&q->done);
    if (q->ch_ok) {
        q->in_ares = true;
        ares_destroy(q->ch); /* may call on_addrinfo with ARES_EDESTRUCTION: ignored */
        q->ch_ok = false;
    }
    if (q->socks) {
        unwatch_all(q);
        for (size_t i = 0; i < DNS_MAX_SOCKS; i++)
            q->socks->w[i].q = NULL;
        q->socks->reaper.cb = socks_reap;
        weft_timer_start(q->loop, &q->socks->reaper, 0);
    }
    free(q);
}

/* Re-arms the c-ares timer from ares_timeout. */
static void arm_ares_timer(struct dns_query *q)
{
    if (q->finished || !q->ch_ok)
        return;
    struct timeval max = {.tv_sec = 60}, tv;
    struct timeval *r = ares_timeout(q->ch, &max, &tv);
    uint64_t ms = (uint64_t)r->tv_sec * 1000u + (uint64_t)r->tv_usec / 1000u;
    weft_timer_start(q->loop, &q->ares_timer, ms ? ms : 1);
}

/* Records the result and schedules its report. */
static void finish(struct dns_query *q, int err, const char *why)
{
    if (q->finished)
        return;
    q->finished = true;
    q->err = err;
    if (why)
        snprintf(q->why, sizeof q->why, "%s", why);
    weft_timer_stop(&q->ares_timer);
    weft_timer_stop(&q->deadline);
    weft_timer_start(q->loop, &q->done, 0);
}

/* Timer callback: reports the result and frees the query. */
static void on_done(struct weft_timer *t)
{
    struct dns_query *q = (struct dns_query *)((char *)t - offsetof(struct dns_query, done));
    dns_cb cb = q->cb;
    void *arg = q->arg;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t n = q->naddrs;
    int err = q->err;
    char why[sizeof q->why];
    memcpy(addrs, q->addrs, n * sizeof addrs[0]);
    memcpy(why, q->why, sizeof why);
    query_free(q);
    cb(arg, err, why, addrs, n);
}

/* Appends the addresses of one family from a c-ares result to q, in order. */
static void take_family(struct dns_query *q, const struct ares_addrinfo_node *n, int family)
{
    for (; n && q->naddrs < DNS_MAX_ADDRS; n = n->ai_next) {
        if (n->ai_family != family)
            continue;
        struct dns_addr *a = &q->addrs[q->naddrs];
        memset(a, 0, sizeof *a);
        if (family == AF_INET && n->ai_addrlen >= sizeof a->u.in) {
            memcpy(&a->u.in, n->ai_addr, sizeof a->u.in);
            a->u.in.sin_port = htons(q->port);
            a->len = sizeof a->u.in;
        } else if (family == AF_INET6 && n->ai_addrlen >= sizeof a->u.in6) {
            memcpy(&a->u.in6, n->ai_addr, sizeof a->u.in6);
            a->u.in6.sin6_port = htons(q->port);
            a->len = sizeof a->u.in6;
        } else {
            continue;
        }
        q->naddrs++;
    }
}

/* Orders the addresses: families alternate, starting with the family of the first one
 * (RFC 8305 §4), so a broken family costs at most one attempt delay. */
static void interleave(struct dns_query *q)
{
    struct dns_addr v[DNS_MAX_ADDRS];
    size_t n = q->naddrs, a = 0, b = 0, out = 0;
    int first = q->addrs[0].u.sa.sa_family;
    memcpy(v, q->addrs, n * sizeof v[0]);
    while (out < n) {
        while (a < n && v[a].u.sa.sa_family != first)
            a++;
        if (a < n)
            q->addrs[out++] = v[a++];
        while (b < n && v[b].u.sa.sa_family == first)
            b++;
        if (b < n)
            q->addrs[out++] = v[b++];
    }
}

/* c-ares callback: the lookup completed (or the channel is being destroyed). */
static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct dns_query *q = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || q->finished) {
        if (res)
            ares_freeaddrinfo(res);
        return;
    }
    if (status != ARES_SUCCESS || !res) {
        char why[160];
        snprintf(why, sizeof why, "%s", ares_strerror(status));
        finish(q, status == ARES_ENOMEM ? WEFT_ERR_NOMEM
                  : status == ARES_ETIMEOUT ? WEFT_ERR_TIMEOUT : WEFT_ERR_ADDRESS, why);
        if (res)
            ares_freeaddrinfo(res);
        return;
    }
    /* Keep c-ares's order (RFC 6724 sorted) for each family, then interleave. */
    int first = res->nodes && res->nodes->ai_family == AF_INET6 ? AF_INET6 : AF_INET;
    take_family(q, res->nodes, first);
    take_family(q, res->nodes, first == AF_INET6 ? AF_INET : AF_INET6);
    ares_freeaddrinfo(res);
    if (q->naddrs == 0) {
        finish(q, WEFT_ERR_ADDRESS, "no IPv4 or IPv6 address");
        return;
    }
    interleave(q);
    finish(q, WEFT_OK, NULL);
}

/* epoll callback of a c-ares socket. */
static void on_sock(struct weft_io *io, uint32_t events)
{
    struct dns_watch *w = (struct dns_watch *)io;
    struct dns_query *q = w->q;
    if (!q || !w->used || q->finished)
        return;
    ares_socket_t rfd = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? io->fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (events & (EPOLLOUT | EPOLLERR)) ? io->fd : ARES_SOCKET_BAD;
    q->in_ares = true;
    ares_process_fd(q->ch, rfd, wfd);
    q->in_ares = false;
    arm_ares_timer(q);
}

/* c-ares callback: start, change or stop watching one of its sockets. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_query *q = data;
    struct dns_watch *w = NULL, *free_slot = NULL;
    for (size_t i = 0; i < DNS_MAX_SOCKS; i++) {
        if (q->socks->w[i].used && q->socks->w[i].io.fd == fd)
            w = &q->socks->w[i];
        else if (!q->socks->w[i].used && !free_slot)
            free_slot = &q->socks->w[i];
    }
    uint32_t ev = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    if (!ev) {
        if (w) {
            io_del(q->loop, &w->io);
            w->used = false;
        }
        return;
    }
    if (w) {
        io_mod(q->loop, &w->io, ev);
        return;
    }
    if (!free_slot)
        return; /* more sockets than servers we expect; c-ares's timeouts still run */
    free_slot->io.fd = fd;
    free_slot->io.cb = on_sock;
    free_slot->q = q;
    if (io_add(q->loop, &free_slot->io, ev) == 0)
        free_slot->used = true;
}

/* Timer callback: lets c-ares handle retransmissions and server timeouts. */
static void on_ares_timer(struct weft_timer *t)
{
    struct dns_query *q =
        (struct dns_query *)((char *)t - offsetof(struct dns_query, ares_timer));
    q->in_ares = true;
    ares_process_fd(q->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    q->in_ares = false;
    arm_ares_timer(q);
}

/* Timer callback: the overall deadline passed. */
static void on_deadline(struct weft_timer *t)
{
    struct dns_query *q = (struct dns_query *)((char *)t - offsetof(struct dns_query, deadline));
    finish(q, WEFT_ERR_TIMEOUT, "no answer from the DNS servers in time");
}

/* Starts a lookup; see dns.h. */
struct dns_query *dns_resolve(struct weft_loop *loop, const char *host, uint16_t port,
                              uint32_t timeout_ms, dns_cb cb, void *arg, int *err)
{
    pthread_once(&ares_once, ares_global_init);
    if (ares_init_status != ARES_SUCCESS) {
        *err = WEFT_ERR_IO;
        return NULL;
    }
    size_t hlen = strlen(host);
    struct dns_query *q = calloc(1, sizeof *q + hlen + 1);
    if (!q) {
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    q->socks = calloc(1, sizeof *q->socks);
    if (!q->socks) {
        free(q);
        *err = WEFT_ERR_NOMEM;
        return NULL;
    }
    memcpy(q->host, host, hlen + 1);
    q->loop = loop;
    q->port = port;
    q->cb = cb;
    q->arg = arg;
    q->ares_timer.cb = on_ares_timer;
    q->deadline.cb = on_deadline;
    q->done.cb = on_done;

    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = q;
    o.timeout = DNS_TRY_MS;
    o.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (ares_init_options(&q->ch, &o, mask) != ARES_SUCCESS) {
        free(q->socks);
        free(q);
        *err = WEFT_ERR_IO;
        return NULL;
    }
    q->ch_ok = true;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    q->in_ares = true;
    ares_getaddrinfo(q->ch, q->host, NULL, &hints, on_addrinfo, q);
    q->in_ares = false;
    if (!q->finished) {
        weft_timer_start(loop, &q->deadline, timeout_ms ? timeout_ms : 10000);
        arm_ares_timer(q);
    }
    *err = WEFT_OK;
    return q;
}

/* Abandons a query; see dns.h. */
void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    q->finished = true; /* on_addrinfo ignores what ares_destroy reports */
    query_free(q);
}
