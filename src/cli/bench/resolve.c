/*
 * resolve.c — the server's address for `weft bench`, found once before the load loop starts
 * (the loop itself never resolves): an IPv4 or IPv6 literal at once, a name with c-ares as
 * libweft does (its resolver is internal to the library), driven here by poll with a 10 s
 * deadline. When a name has both, IPv4 is preferred (as the generator always did), since
 * every connection goes to the one address.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>

#include "cli/bench/bench.h"

#define RESOLVE_TIMEOUT_NS (10 * NS_PER_S)

/* The result of one lookup. */
struct lookup {
    bool done;
    int status;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* c-ares callback: keeps the first IPv4 address, else the first IPv6 one. */
static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct lookup *l = arg;
    l->done = true;
    l->status = status;
    if (status != ARES_SUCCESS || !res) return;
    const struct ares_addrinfo_node *pick = NULL;
    for (const struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
        if ((n->ai_family == AF_INET && (!pick || pick->ai_family != AF_INET)) ||
            (n->ai_family == AF_INET6 && !pick))
            pick = n;
    if (pick && (size_t)pick->ai_addrlen <= sizeof l->addr) {
        memcpy(&l->addr, pick->ai_addr, (size_t)pick->ai_addrlen);
        l->addrlen = (socklen_t)pick->ai_addrlen;
    } else {
        l->status = ARES_ENODATA;
    }
    ares_freeaddrinfo(res);
}

/* Runs the c-ares channel until the lookup is done or the deadline passes. Returns true if
 * it finished. */
static bool drive(ares_channel ch, struct lookup *l, uint64_t deadline)
{
    while (!l->done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            /* ares_getsock's bits, read unsigned: its WRITABLE macro shifts a signed 1 by 31 */
            unsigned ubits = (unsigned)bits;
            short ev = (short)((ubits & (1u << i) ? POLLIN : 0) |
                               (ubits & (1u << (i + ARES_GETSOCK_MAXNUM)) ? POLLOUT : 0));
            if (ev) pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
        }
        uint64_t now = now_ns();
        if (now >= deadline) return false;
        struct timeval max = {.tv_sec = 0, .tv_usec = 100000}, tv;
        struct timeval *t = ares_timeout(ch, &max, &tv);
        int ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
        if ((uint64_t)ms * 1000000 > deadline - now) ms = (int)((deadline - now) / 1000000) + 1;
        int r = poll(pfd, n, ms);
        if (r < 0) continue; /* EINTR: recheck the deadline */
        for (nfds_t i = 0; i < n; i++)
            ares_process_fd(
                ch, pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
        if (r == 0) ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    }
    return true;
}

/* Resolves b->host into b->addr; see bench.h. Returns 0 or -1 (reason printed). */
int bench_resolve(struct bench *b)
{
    if (b->addrlen) return 0;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&b->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&b->addr;
    memset(&b->addr, 0, sizeof b->addr);
    if (inet_pton(AF_INET, b->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(b->port);
        b->addrlen = sizeof *v4;
        b->host_numeric = true;
        return 0;
    }
    if (inet_pton(AF_INET6, b->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(b->port);
        b->addrlen = sizeof *v6;
        b->host_numeric = true;
        return 0;
    }
    struct lookup l = {0};
    ares_channel ch;
    int st = ares_library_init(ARES_LIB_INIT_ALL);
    if (st == ARES_SUCCESS && (st = ares_init(&ch)) != ARES_SUCCESS) ares_library_cleanup();
    if (st != ARES_SUCCESS) {
        fprintf(stderr, "weft bench: cannot resolve '%s': %s\n", b->host, ares_strerror(st));
        return -1;
    }
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ares_getaddrinfo(ch, b->host, NULL, &hints, on_addrinfo, &l);
    bool finished = drive(ch, &l, now_ns() + RESOLVE_TIMEOUT_NS);
    ares_destroy(ch); /* a lookup still running ends here (its callback runs: l is alive) */
    ares_library_cleanup();
    if (!finished || l.status != ARES_SUCCESS) {
        fprintf(stderr, "weft bench: cannot resolve '%s': %s\n", b->host,
                finished ? ares_strerror(l.status) : "timed out");
        return -1;
    }
    memcpy(&b->addr, &l.addr, l.addrlen);
    if (b->addr.ss_family == AF_INET)
        v4->sin_port = htons(b->port);
    else
        v6->sin6_port = htons(b->port);
    b->addrlen = l.addrlen;
    return 0;
}
