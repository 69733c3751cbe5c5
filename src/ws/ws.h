/*
 * ws.h — internal structures of the ws layer: servers, connections, routes, topics.
 *
 * Layout. ws/ is the WebSocket layer of libweft, between proto/ (pure parsing and encoding:
 * frames, HTTP heads, handshakes, URLs, deflate; no I/O) and net/ (the loop, sockets, TLS,
 * listeners, DNS and the TCP connector; nothing of WebSocket). Calls go down (ws -> proto,
 * ws -> net) or sideways through the interfaces below, never back up:
 *   - conn.c, conn_send.c, conn_head.c: one connection, whoever owns it. The owner is an
 *     endpoint (struct endpoint, embedded first in a server or a client) and conn.c reaches it
 *     only through the endpoint's ops table (struct endpoint_ops: the HTTP head, a connection
 *     gone, the route user), so conn.c never calls into server.c or client.c.
 *   - server.c: listening, routes, the request head and the 101; pubsub.c and group.c its
 *     topics (in-process and across threads); budget.c the process-wide memory budget.
 *   - client.c: one client (DNS, then net/connect.c, the handshake, reconnection); it tells an
 *     owner about itself through struct client_owner_ops (client.h) given at creation.
 *   - pool.c: an ordinary user of the client: it creates member clients with its owner hooks
 *     and the application's callbacks; client.c never calls into pool.c.
 *   - defaults.h: the library's defaults for servers and clients, in one place.
 */
#ifndef WEFT_WS_H
#define WEFT_WS_H

#include <netinet/in.h>

#include "net/net.h"
#include "weft.h"

/* Connection states. */
enum conn_state {
    CONN_HTTP = 0, /* reading the request head */
    CONN_OPEN,     /* WebSocket open */
    CONN_CLOSING,  /* we sent a close frame, waiting for the peer's */
    CONN_DRAINING, /* close handshake over (or HTTP answered): waiting for the peer's FIN */
    CONN_DEAD,     /* socket closed, waiting to be freed */
};

struct route {
    char *pattern;
    size_t len;  /* length without the trailing star */
    bool prefix; /* pattern ended with a star */
    bool is_ws;
    const char *method; /* HTTP routes: NULL = any */
    struct weft_ws_handlers ws;
    weft_http_handler http;
    void *user;
};

struct topic;

/* A connection's membership in a topic: the topic and this conn's index in its array. */
struct sub {
    struct topic *t;
    uint32_t idx;
};

struct topic {
    struct topic *next; /* hash chain */
    uint32_t hash;
    uint8_t len;
    char name[256];
    struct weft_conn **subs;
    uint32_t nsubs, capsubs;
};

/* What a connection needs to resume reading in the middle of a frame or message. Idle
 * connections have none: their bytes are parsed with the endpoint's scratch copy. */
struct conn_rx {
    struct weft_msg_parser mp;
    uint8_t *msg; /* a message being assembled from several frames or reads */
    size_t msg_len, msg_cap;
    bool msg_binary;
};

/* What connections need from whoever owns them, a server or a client: the loop, limits and
 * timeouts, counters, and two hooks. Embedded first in struct weft_server. */
/* What an owner (a server or a client) does for its connections: conn.c calls only these,
 * never into server.c or client.c. One constant table per role. */
struct endpoint_ops {
    /* Bytes received while a connection is in CONN_HTTP (server: request head; client:
     * response head). */
    void (*on_head)(struct weft_conn *c, uint8_t *data, size_t len);
    /* A connection is about to be freed (already unlinked from conns); may be NULL. */
    void (*on_gone)(struct weft_conn *c);
    /* The user pointer of an open connection's route (weft_conn_route_user). */
    void *(*route_user)(const struct weft_conn *c);
};

struct endpoint {
    struct weft_loop *loop;
    enum weft_role role;
    struct weft_server_config cfg; /* limits and timeouts; clients fill the same fields */
    struct weft_server_stats stats;
    struct weft_random rnd;  /* masking keys (client role) */
    char addrbuf[64];        /* scratch for weft_conn_remote */
    struct weft_conn *conns; /* all connections, any state */
    size_t nconns;
    uint64_t next_id;
    const struct endpoint_ops *ops; /* the owner's hooks */

    /* permessage-deflate codecs shared by connections without context takeover, and the
     * scratch buffers for one message in (inflated) and one out (deflated). */
    struct weft_deflater *shared_defl[16]; /* by window bits */
    struct weft_inflater *shared_infl;
    uint8_t *zin, *zout;
    size_t zin_cap, zout_cap;

    struct conn_rx rx_scratch; /* the receive state of a connection that has none */
    /* During an on_close that the peer's close frame caused: its code (WEFT_CLOSE_NO_STATUS
     * for an empty one); 0 otherwise (weft_conn_close_received). */
    uint16_t close_rcvd;
};

/* What a connection holds only in rare states, allocated on first need (conn_extra_get) and
 * freed as soon as nothing in it is in use (conn_extra_trim), so that an idle plain connection
 * has none. */
struct conn_extra {
    /* receive state, only while a frame or message is split across reads */
    struct conn_rx *rx;
    /* reading the HTTP head when it did not arrive in one read */
    char *head;
    uint32_t head_len;
    int eof_err; /* the error of an on_eof deferred during an early flush (eof_deferred) */
    /* The answer to the latest ping that came while the output was over max_backpressure
     * (WEFT_SLOW_DROP): pong_owed[0] is the payload length, the payload follows. Allocated
     * only then; sent and freed when the backlog drains. */
    uint8_t *pong_owed;
    char *protocol;             /* chosen subprotocol, NULL if none */
    struct weft_deflater *defl; /* permessage-deflate: own codecs, only with context takeover */
    struct weft_inflater *infl;
};

/* A connection. The fields a message touches (sock, ep, h, user, state and flags) come first;
 * what only rare states need is in struct conn_extra. */
struct weft_conn {
    struct weft_sock sock; /* first: the socket layer hands us back this pointer */
    struct endpoint *ep;
    struct weft_conn *prev, *next;    /* endpoint's list of connections */
    const struct weft_ws_handlers *h; /* NULL until the connection is open; the route user
                                         follows from it (weft_conn_route_user) */
    void *user;
    uint64_t id;
    struct weft_timer timer;
    struct sub *subs;
    struct conn_extra *x; /* NULL unless a rare state needs it */
    uint32_t last_rx;     /* loop time of the last bytes received (low 32 bits, conn_now) */
    uint32_t ping_sent;   /* loop time of an unanswered keep-alive ping, 0 if none (ditto) */
    uint8_t state;
    bool close_reported : 1; /* on_close has been called */
    bool backpressured : 1;  /* a send returned QUEUED: on_drain is due */
    bool in_callback : 1;
    bool app_paused : 1;   /* the application paused reading (weft_conn_pause) */
    bool bp_paused : 1;    /* reading paused until the output backlog drains (flow control) */
    bool out_full : 1;     /* the backpressure limit refused output since the queue was empty */
    bool flushing : 1;     /* in an early flush from a send: on_eof must wait (eof_deferred) */
    bool eof_deferred : 1; /* on_eof came during that flush: reported from the timer */
    bool feeding : 1;      /* inside conn_feed_bytes: its receive state is in use */
    bool budget_due : 1;   /* closed for the memory budget: on_close (1013) is due from the
                              timer (conn_budget_close) */
    /* permessage-deflate, when negotiated */
    bool pmd_on : 1;
    bool our_nct : 1, peer_nct : 1;       /* no context takeover: our compressor / the peer's */
    unsigned our_bits : 4, peer_bits : 4; /* window bits, 8..15 */
    uint16_t close_sent;                  /* code of the close frame we sent, 0 if none */
    uint16_t nsubs, capsubs;
    /* the peer's address, for weft_conn_remote: AF_INET (4 bytes of addr), AF_INET6 or
     * AF_UNIX (anything else) */
    sa_family_t peer_family;
    uint16_t peer_port; /* network byte order */
    uint8_t peer_addr[16];
};

struct weft_server {
    struct endpoint ep; /* first */
    struct weft_listener listener;
    bool listening;
    struct route *routes;
    size_t nroutes;

    struct topic **buckets;
    size_t nbuckets, ntopics;

    /* graceful shutdown */
    bool shutting_down;
    struct weft_timer shutdown_timer;
    void (*shutdown_done)(void *);
    void *shutdown_arg;

    /* TLS: the context new connections use (NULL = plain), and the files it came from */
    struct ssl_ctx_st *tls;
    char *tls_cert_file, *tls_key_file;
};

/* The request being handled (on the stack during on_upgrade / HTTP handlers). */
struct weft_request {
    struct weft_conn *c;
    const struct route *route; /* WebSocket route being upgraded to */
    const struct weft_http_request *http;
    const struct weft_upgrade_info *up; /* NULL for plain HTTP */
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    int decision; /* 0 undecided, 1 accepted, 2 rejected/responded */
    char *protocol;
    void *user;
    char *extra; /* extra headers for the 101 */
};

/* conn.c (receiving, closing, timers), conn_inflate.c (compressed messages in), conn_send.c
 * (sending, accessors), conn_head.c (HTTP heads) */
void conn_on_data(struct weft_sock *s, uint8_t *data, size_t len);
void conn_on_drain(struct weft_sock *s);
void conn_on_eof(struct weft_sock *s, int err);
void conn_on_free(struct weft_sock *s);
void conn_feed_bytes(struct weft_conn *c, uint8_t *data, size_t len);
/* The peer broke the protocol: closes c with code (reason why), reports it (on_close) and
 * stops reading. */
void conn_protocol_error(struct weft_conn *c, uint16_t code, const char *why);
/* conn_inflate.c: inflates a whole compressed message (at most max_message bytes, 1009
 * beyond), checks text as UTF-8 and delivers it; on failure closes c (1007, 1009, 1011 or
 * 1013). Returns nothing. */
void conn_deliver_compressed(struct weft_conn *c, const uint8_t *data, size_t len, bool binary);
/* Reading an HTTP head (request or response) that may arrive over several reads. */
struct head_in {
    const char *buf; /* what to parse: the read itself, or the stored head extended by it */
    size_t len;
    size_t taken; /* bytes of the read appended to a stored head */
    bool ready;   /* worth parsing now; false: still incomplete, already stored */
};
/* Starts parsing a head: see struct head_in. max: the head size limit. A read that extends a
 * stored head is only searched for the blank line ending the head (the new bytes and the two
 * before them), so a head dripped in small reads costs O(n) in all: in->ready says whether
 * the head parser should run now (a head in one read, a blank line found, or max reached). */
void conn_head_begin(struct weft_conn *c, uint8_t *data, size_t len, size_t max,
                     struct head_in *in);
/* The head is still incomplete: stores the read when it was parsed in place. Returns false
 * on allocation failure. */
bool conn_head_keep(struct weft_conn *c, const uint8_t *data, size_t len, size_t max);
/* Detaches the stored head (if any) before the complete head is handled; pass the result to
 * conn_head_rest, which feeds the bytes that followed the head and frees it. */
char *conn_head_detach(struct weft_conn *c);
void conn_head_rest(struct weft_conn *c, char *stored, const struct head_in *in, size_t head_len,
                    uint8_t *data, size_t len);
/* Marks a connection open for frames (after the 101): the parser is created on first use. */
void conn_start_frames(struct weft_conn *c);
void conn_free(struct weft_conn *c);
/* Frees c's saved receive state (a partial frame or message) and its budget count. */
void conn_drop_rx(struct weft_conn *c);
void conn_finish(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                 bool clean);
void conn_arm_timer(struct weft_conn *c);
enum weft_send_result conn_send_frame(struct weft_conn *c, struct weft_buf *shared,
                                      const uint8_t *hdr, size_t hlen, const void *payload,
                                      size_t len);

void conn_link(struct endpoint *ep, struct weft_conn *c);
/* c's side struct, allocated (zeroed) if it has none. NULL on allocation failure. */
struct conn_extra *conn_extra_get(struct weft_conn *c);
/* Frees c's side struct if nothing in it is in use any more. */
void conn_extra_trim(struct weft_conn *c);
/* Frees the stored partial HTTP head, if any. */
void conn_head_free(struct weft_conn *c);
/* Records the peer's address (addrlen bytes at sa). */
void conn_set_peer(struct weft_conn *c, const struct sockaddr *sa, socklen_t addrlen);
/* The loop time in the 32 bits kept in last_rx and ping_sent: differences between two such
 * values (conn_ms_since) are right for up to 49 days. */
static inline uint32_t conn_now32(const struct weft_conn *c)
{
    return (uint32_t)weft_loop_now(c->ep->loop);
}
void conn_enable_deflate(struct weft_conn *c, const struct weft_pmd_params *agreed);
void endpoint_release(struct endpoint *ep);
/* Compresses a message for c (shared compressor or its own). Returns the compressed length
 * in ep->zout, or -1 when the message should go uncompressed. */
long conn_deflate(struct weft_conn *c, const void *data, size_t len);
/* conn.c, for conn_send.c: queues one whole frame (masked in the client role); returns
 * WEFT_OK or an error of sock_write. */
int conn_write_frame(struct weft_conn *c, uint8_t opcode, uint8_t rsv, const void *payload,
                     size_t len);
/* Queues a control frame, bypassing the backpressure limit (close, keep-alive ping). */
void conn_send_ctl(struct weft_conn *c, uint8_t opcode, const void *payload, size_t len);
/* True when queueing len more bytes would take c over its backpressure limit. */
bool conn_queue_full(struct weft_conn *c, size_t len);
/* Applies WEFT_SLOW_CLOSE to c: counts it and starts the close handshake with 1008. */
void conn_close_slow(struct weft_conn *c);
void ep_log(struct endpoint *ep, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As ep_log, for a line about connection c (passed to the log callback). */
void conn_log(struct weft_conn *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The server owning a server-role connection, NULL for a client connection. */
static inline struct weft_server *conn_server(const struct weft_conn *c)
{
    return c->ep->role == WEFT_ROLE_SERVER ? (struct weft_server *)c->ep : NULL;
}

/* budget.c: the process-wide memory budget (weft_memory_set_budget) for connections. */
/* Bytes c holds in the budget: its message being assembled and its counted output. */
size_t conn_held(const struct weft_conn *c);
/* Makes room for n more bytes for c: while they do not fit, closes the largest holder of c's
 * endpoint if it holds at least what c would (its own bytes + n), largest first. With
 * charge, the n bytes are counted on success. Returns false when c is the largest (the caller
 * closes c with conn_budget_close). */
bool conn_budget_room(struct weft_conn *c, size_t n, bool charge);
/* conn.c: closes c for the budget with 1013 and counts it (stats.closed_memory). What c holds
 * is released now: a connection whose output is held loses its queue and gets only a FIN (it
 * does not read, a close frame could not reach it), others get the close frame; c is no
 * longer read (DRAINING). on_close (1013, not clean) follows from c's timer, never from
 * inside this call, so it is safe in a send or a publish. */
void conn_budget_close(struct weft_conn *c);
/* While the process is over its budget, closes the endpoint's largest holders. */
void conn_budget_enforce(struct endpoint *ep);

/* pubsub.c */
void pubsub_conn_gone(struct weft_conn *c);
void pubsub_free(struct weft_server *s);
/* Delivers an already encoded frame (hlen header bytes, then the payload) to the subscribers
 * of a topic of s, except exclude: large frames by reference, small ones copied into the
 * queues. Does not count a publish. Returns the number of subscribers reached. */
size_t pubsub_publish_frame(struct weft_server *s, const char *name, size_t len,
                            struct weft_buf *frame, size_t hlen, enum weft_opcode opcode,
                            const struct weft_conn *exclude);

#endif
