/*
 * connect.h — the TCP connector: non-blocking connects to a list of addresses with happy
 * eyeballs (the next address is tried too when the one in flight has not answered within a
 * delay, or at once when it fails); the first to connect wins, the others are dropped. Knows
 * nothing of HTTP or WebSocket. Used by the client (src/ws/client.c).
 */
#ifndef WEFT_NET_CONNECT_H
#define WEFT_NET_CONNECT_H

#include "net/dns.h"
#include "net/net.h"

struct net_connector;

/* The outcome of a start, reported once. fd >= 0: the connected socket (TCP_NODELAY, not in
 * the loop any more; the callee owns it) and addr the address it reached. fd -1: every address
 * failed; err is the errno of the last failure, addr the address whose connect failed last
 * when that failure came from the network (NULL when no connect could even be started). The
 * callee may stop, restart or free the connector from inside. */
typedef void (*net_connect_cb)(void *arg, int fd, const struct dns_addr *addr, int err);

/* Creates an idle connector on loop reporting to cb(arg, ...). NULL on allocation failure. */
struct net_connector *net_connector_new(struct weft_loop *loop, net_connect_cb cb, void *arg);

/* Starts connecting to addrs[0..n) (n <= DNS_MAX_ADDRS, copied) in order, the next one after
 * eyeball_ms without an answer. Stops a previous start first. The outcome may be reported
 * from inside this call (when no connect can be started). */
void net_connector_start(struct net_connector *nc, const struct dns_addr *addrs, size_t n,
                         uint32_t eyeball_ms);

/* Drops every connect in flight; nothing is reported. */
void net_connector_stop(struct net_connector *nc);

/* Stops and frees the connector (the memory goes at the next loop turn, since the loop may
 * still hold an event for one of its sockets). NULL is ignored. */
void net_connector_free(struct net_connector *nc);

#endif
