/*
 * dns.h — asynchronous name resolution with c-ares on the weft loop (internal to libweft).
 * The loop never blocks: c-ares's sockets are watched with the loop's epoll and its
 * retransmission timeouts run on a loop timer.
 */
#ifndef WEFT_DNS_H
#define WEFT_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/net.h"

#define DNS_MAX_ADDRS 16

/* One resolved address, port included. */
struct dns_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
};

struct dns_query;

/* Result of a query: err WEFT_OK with addrs[0..n) (n ≥ 1, families interleaved starting with
 * the first one returned, for happy eyeballs), or WEFT_ERR_ADDRESS / WEFT_ERR_TIMEOUT /
 * WEFT_ERR_NOMEM with `why` (a line of text). Runs on the loop's thread, never inside
 * dns_resolve; the query is over (and freed) once this is called. */
typedef void (*dns_cb)(void *arg, int err, const char *why, const struct dns_addr *addrs,
                       size_t n);

/* Starts resolving host (A and AAAA) for port, giving up after timeout_ms. Returns the query,
 * or NULL with *err (WEFT_ERR_NOMEM, WEFT_ERR_IO when c-ares cannot start). */
struct dns_query *dns_resolve(struct weft_loop *loop, const char *host, uint16_t port,
                              uint32_t timeout_ms, dns_cb cb, void *arg, int *err);

/* Abandons a query: its callback will not run. */
void dns_cancel(struct dns_query *q);

/* Parses a numeric IPv4 or IPv6 address (no brackets) into out with port. Returns true if
 * host is numeric. */
bool dns_numeric(const char *host, uint16_t port, struct dns_addr *out);

#endif
