/*
 * client.h — internal structures of WebSocket clients and pools (src/ws/client.c, pool.c).
 */
#ifndef WEFT_WS_CLIENT_H
#define WEFT_WS_CLIENT_H

#include "net/connect.h"
#include "net/dns.h"
#include "ws/ws.h"

#define CLIENT_MAX_ADDRS DNS_MAX_ADDRS

/* Where a client stands. */
enum client_state {
    CL_RESOLVING = 0, /* DNS lookup in progress */
    CL_CONNECTING,    /* TCP connects in flight */
    CL_HANDSHAKE,     /* connected, waiting for the 101 */
    CL_OPEN,          /* connection open (or closing) */
    CL_WAITING,       /* backoff before the next attempt */
    CL_ENDED,         /* stopped for good; on_end is due or done */
};

/* A message sent while disconnected. */
struct qmsg {
    struct qmsg *next;
    size_t len;
    uint8_t opcode;
    uint8_t data[];
};

/* What a client's owner (the pool, src/ws/pool.c) is told about it, besides the application's
 * callbacks: the client calls these, it never calls into its owner's file. */
struct client_owner_ops {
    void (*opened)(void *arg, struct weft_client *cl);         /* the connection opened */
    void (*error)(void *arg, struct weft_client *cl, int err); /* an error was reported */
    void (*ended)(void *arg, struct weft_client *cl);          /* last call: the owner frees cl */
};

struct weft_client {
    struct endpoint ep;             /* first: connections point at it */
    struct weft_client_options opt; /* strings below replace the caller's */
    struct weft_ws_handlers h;      /* what connections call: the caller's, on_open/on_close
                                       wrapped */
    char *host;                     /* NUL-terminated, no brackets */
    char *hosthdr;                  /* Host header value */
    char *target;                   /* request target, starts with '/' */
    uint16_t port;
    struct ssl_ctx_st *tls; /* wss://: the TLS client context (net/tls.c); NULL for ws:// */
    bool tls_shared;        /* tls belongs to the pool (not freed with the client) */
    enum client_state state;

    struct dns_query *dns;
    struct dns_addr addrs[CLIENT_MAX_ADDRS];
    size_t naddrs;
    bool numeric;             /* addrs[0] came from the URL, no DNS */
    struct net_connector *nc; /* the TCP connects of an attempt (net/connect.c) */
    struct weft_timer connect_timer, retry_timer, end_timer;

    struct weft_conn *conn; /* the connection of this attempt, NULL if none */
    char key[25];
    char pmd_offer[160];        /* our Sec-WebSocket-Extensions offer, "" when off */
    struct weft_pmd_params pmd; /* what the server accepted in this attempt */
    bool pmd_agreed;
    uint64_t opened_at;
    uint64_t proto_errors_at_open;

    unsigned attempt; /* consecutive reconnections so far */
    bool app_closed;  /* weft_client_close was called */
    bool end_reported;

    /* outcome of the current attempt */
    bool failed; /* an error was reported for this attempt */
    bool had_open;
    bool no_retry;
    int64_t hint_ms; /* least delay asked by the server, -1 if none */
    uint16_t close_code;

    struct qmsg *qhead, *qtail;
    size_t qbytes;

    const struct client_owner_ops *owner; /* NULL for a client of the application */
    void *owner_arg;
};

/* client.c: the TLS client context for options o (NULL = defaults): the system CAs or
 * o->tls_cacert_file, no verification with o->tls_insecure. NULL on failure, with the reason
 * recorded for weft_tls_last_error. */
struct ssl_ctx_st *client_tls_new(const struct weft_client_options *o);

/* client.c: creates a client and starts its first attempt (weft_connect). tls: for wss://, a
 * TLS client context to use instead of making one (a pool's, shared by its members and freed
 * by the pool), or NULL. owner, owner_arg: the owner's hooks (NULL for none); with an owner,
 * opts->on_end is not called: owner->ended is. Returns the client, or NULL with *err as
 * weft_connect. */
struct weft_client *client_new(struct weft_loop *loop, const char *url,
                               const struct weft_client_options *opts, struct ssl_ctx_st *tls,
                               const struct client_owner_ops *owner, void *owner_arg, int *err);

/* client.c: the owner argument of cl when its owner's hooks are ops, else NULL. */
void *client_owner_arg(const struct weft_client *cl, const struct client_owner_ops *ops);

#endif
