/*
 * net.h — internal interface of the net layer: I/O watchers, sockets with corked output
 * queues, listeners and shared buffers. Knows nothing of WebSocket. Used by src/ws/.
 *
 * Layout. net/ is the bottom of libweft: everything that touches file descriptors, the
 * kernel's readiness interface and the wire. loop.c runs timers, deferred calls and the
 * readiness backend; sock.c (with outq.h) the sockets and their output queues, tls.c the
 * same over OpenSSL; listen.c the listeners and address formatting; dns.c (dns.h) name
 * resolution over c-ares; connect.c (connect.h) outgoing TCP connects with happy eyeballs;
 * watch.c file watches; memory.c the memory budget counter; buf.c shared buffers. Readiness
 * constants (EPOLL*) appear only here: ws/ above asks for connects, sockets and timers, never
 * for raw events. net/ calls nothing above it; its users hand it callbacks (sock_ops,
 * accept_cb, dns_cb, net_connect_cb).
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "weft.h"

/* ----------------------------------------------------------------- shared buffers */

/* A reference-counted immutable byte buffer (e.g. one encoded frame sent to many sockets). */
struct weft_buf {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
};

/* Allocates a buffer of len bytes with one reference. NULL on allocation failure. */
struct weft_buf *buf_new(size_t len);
static inline void buf_ref(struct weft_buf *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}
/* Drops a reference; frees the buffer with the last one. */
void buf_unref(struct weft_buf *b);

/* ----------------------------------------------------------------- I/O watchers */

struct weft_io;
typedef void (*io_cb)(struct weft_io *io, uint32_t events);

/* A file descriptor registered with the loop's backend (epoll semantics: events are EPOLL*
 * bits, EPOLLET asks for edge-triggered reports). */
struct weft_io {
    int fd;
    uint32_t be; /* io_uring backend: 1 + index of this descriptor's state, 0 if none */
    io_cb cb;
};

int io_add(struct weft_loop *loop, struct weft_io *io, uint32_t events);
int io_mod(struct weft_loop *loop, struct weft_io *io, uint32_t events);
void io_del(struct weft_loop *loop, struct weft_io *io);

/* ----------------------------------------------------------------- sockets */

struct weft_sock;
struct oq_block;

/* What a socket reports to its owner. All run on the loop's thread. */
struct sock_ops {
    /* Bytes arrived in the loop's shared receive buffer (valid during the call only; may be
     * modified in place). */
    void (*on_data)(struct weft_sock *s, uint8_t *data, size_t len);
    /* The output queue became empty after the kernel had refused data. */
    void (*on_drain)(struct weft_sock *s);
    /* The peer closed (err 0) or the socket failed (errno). Reading stops; the owner decides
     * when to sock_close. */
    void (*on_eof)(struct weft_sock *s, int err);
    /* The socket was closed and the loop is done with it: release the memory. */
    void (*on_free)(struct weft_sock *s);
};

enum {
    SOCK_DIRTY = 1 << 0,      /* on the loop's flush list */
    SOCK_BLOCKED = 1 << 1,    /* the kernel refused data; waiting for EPOLLOUT */
    SOCK_PAUSED = 1 << 2,     /* owner paused reading */
    SOCK_SHUT_AFTER = 1 << 3, /* shutdown(SHUT_WR) once the queue is empty */
    SOCK_CLOSED = 1 << 4,     /* fd closed, waiting to be freed */
    SOCK_EOF = 1 << 5,        /* peer closed or error: no more reads */
    SOCK_READ_MORE = 1 << 6,  /* on the loop's read-again list */
    SOCK_WR_SHUT = 1 << 7,    /* shutdown(SHUT_WR) done */
    /* TLS sockets only (see tls.c) */
    SOCK_TLS_HS = 1 << 8,       /* handshake in progress */
    SOCK_TLS_WANT_RD = 1 << 9,  /* SSL_write (or close_notify) needs the socket readable */
    SOCK_TLS_WANT_WR = 1 << 10, /* SSL_read needs the socket writable */
    SOCK_TLS_FAILED = 1 << 11,  /* fatal TLS error: no close_notify may be sent */
    /* The queue is counted in the memory budget (memory.c): a flush left bytes the kernel
     * refused. While set, every byte queued or consumed is counted at once; the flush that
     * empties the queue clears it. */
    SOCK_HELD = 1 << 12,
};

struct ssl_st;     /* OpenSSL's SSL */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* A connected stream socket with a corked output queue. Embed it first in the owner's
 * struct. */
struct weft_sock {
    struct weft_io io;
    uint16_t flags;
    uint32_t tls_err; /* TLS: OpenSSL error code of a fatal failure, 0 if none */
    struct weft_loop *loop;
    const struct sock_ops *ops;
    struct oq_block *qhead, *qtail; /* output queue */
    size_t queued;                  /* bytes in the output queue */
    struct weft_sock *list_next;    /* dirty / read-again / closed lists */
    struct weft_sock *read_next;
    struct ssl_st *ssl; /* NULL for a plain socket */
};

/* Attaches an accepted, non-blocking fd to the loop (edge-triggered in + out). */
int sock_attach(struct weft_loop *loop, struct weft_sock *s, int fd, const struct sock_ops *ops);
/* Appends a copy of data to the output queue (sent at the end of the iteration). */
int sock_write(struct weft_sock *s, const void *data, size_t len);
/* Appends a copy of a + b (e.g. a frame header and its payload) contiguously. */
int sock_write2(struct weft_sock *s, const void *a, size_t alen, const void *b, size_t blen);
/* Reserves len bytes at the end of the output queue and returns where the caller must write
 * them (before anything else is queued on s). NULL when closed or out of memory. */
uint8_t *sock_reserve(struct weft_sock *s, size_t len);
/* Appends a reference to b->data[off..off+len) (takes a new reference). */
int sock_write_buf(struct weft_sock *s, struct weft_buf *b, size_t off, size_t len);
/* Writes the queue now (normally done by the loop at the end of the iteration). */
void sock_flush(struct weft_sock *s);
/* Counts the queue in the memory budget as it stands now (after a flush outside sock_flush:
 * TLS). */
void sock_account(struct weft_sock *s);
/* Drops everything queued. */
void sock_discard(struct weft_sock *s);
/* Half-closes (SHUT_WR) once everything queued has been written. */
void sock_shutdown_after_flush(struct weft_sock *s);
/* Closes the fd now (queued data is dropped); on_free follows at the end of the iteration. */
void sock_close(struct weft_sock *s);
void sock_pause(struct weft_sock *s);
void sock_resume(struct weft_sock *s);
static inline size_t sock_queued(const struct weft_sock *s)
{
    return s->queued;
}
/* Bytes of the queue counted in the memory budget (all of it, or none). */
static inline size_t sock_held(const struct weft_sock *s)
{
    return (s->flags & SOCK_HELD) ? s->queued : 0;
}
static inline bool sock_blocked(const struct weft_sock *s)
{
    return (s->flags & SOCK_BLOCKED) != 0;
}

/* ----------------------------------------------------------------- memory budget */

/* Counts n more bytes held on loop (process-wide and in the loop's share). Unless force,
 * fails without counting when that would exceed weft_memory_budget. Returns true when
 * counted. Any thread, for its own loop. */
bool mem_charge(struct weft_loop *loop, size_t n, bool force);
/* Releases n bytes counted on loop by mem_charge. */
void mem_release(struct weft_loop *loop, size_t n);
/* True when n more bytes fit in the budget (always, without a budget). */
bool mem_fits(size_t n);
/* True when the process holds more than its budget. */
static inline bool mem_over(void)
{
    return !mem_fits(0);
}
/* The loop's share of the held bytes (loop thread only). */
size_t *loop_mem_held(struct weft_loop *loop);

/* ----------------------------------------------------------------- listeners */

struct weft_listener;
typedef void (*accept_cb)(struct weft_listener *l, int fd, const struct sockaddr *addr,
                          socklen_t addrlen);

struct weft_listener {
    struct weft_io io;
    struct weft_loop *loop;
    accept_cb on_accept;
    void *user;
    bool is_unix;
    struct weft_timer retry; /* re-arm after EMFILE */
    char *unix_path;
};

/* Listens on host:port (TCP, IPv4 or IPv6). port 0 binds an ephemeral port. Returns WEFT_OK,
 * WEFT_ERR_ADDRESS or WEFT_ERR_IO (errno kept). */
int listener_tcp(struct weft_loop *loop, struct weft_listener *l, const char *host, uint16_t port,
                 int backlog, bool reuse_port);
/* Listens on a Unix domain socket at path (an existing socket file is replaced). */
int listener_unix(struct weft_loop *loop, struct weft_listener *l, const char *path, int backlog);
/* The bound TCP port, 0 for Unix sockets. */
uint16_t listener_port(const struct weft_listener *l);
/* Stops listening and closes the socket (and unlinks a Unix socket path). */
void listener_close(struct weft_listener *l);

/* Hands a connection accepted on l to its owner (sets TCP_NODELAY first). */
void listener_accepted(struct weft_listener *l, int fd, const struct sockaddr *addr,
                       socklen_t addrlen);
/* Handles a failed accept (errno err): out of descriptors pauses accepting for a moment. */
void listener_accept_failed(struct weft_listener *l, int err);
/* Starts accepting on l's bound, listening fd: a level-triggered watch calling l->io.cb with
 * epoll, a multishot accept with io_uring. Returns 0 or -1 (errno). */
int loop_listen(struct weft_loop *loop, struct weft_listener *l);

/* Formats a socket address as "1.2.3.4:5", "[::1]:5" or "unix". */
void addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* ----------------------------------------------------------------- loop internals */

/* Size of the loop's shared receive buffer. */
#define LOOP_RBUF_SIZE (512 * 1024)

/* Marks a socket as having queued output to flush at the end of the iteration. */
void loop_mark_dirty(struct weft_loop *loop, struct weft_sock *s);
/* Queues a socket for another read attempt next iteration (edge-triggered fairness). */
void loop_mark_read(struct weft_loop *loop, struct weft_sock *s);
/* Backend hooks of sockets (sock.c calls them; loop.c passes them to the backend). */
int loop_sock_attach(struct weft_loop *loop, struct weft_sock *s);
void loop_sock_closing(struct weft_sock *s);
void loop_sock_blocked(struct weft_sock *s);
void loop_sock_paused(struct weft_sock *s);
/* io_uring backend: delivers data held while s was paused and re-arms its receive (sock.c
 * calls it instead of read() when s->io.be is set on a plain socket). */
void loop_sock_read(struct weft_sock *s);
/* Describes the first segments of s's output queue in iov (at most max). Returns how many,
 * with their byte count in *total. */
int sock_fill_iov(const struct weft_sock *s, struct iovec *iov, int max, size_t *total);
/* Records the result of writing `total` queued bytes of s: w bytes taken (w < 0: the write
 * failed with err). Consumes what was written, marks the socket blocked when the kernel took
 * less, shuts down after the last byte when asked, reports errors with on_eof. Returns true
 * when the whole queue went out. */
bool sock_wrote(struct weft_sock *s, ssize_t w, size_t total, int err);

/* Queues a closed socket to be freed at the end of the iteration. */
void loop_mark_closed(struct weft_loop *loop, struct weft_sock *s);
/* Removes a socket from every end-of-iteration list (used when its owner frees it at once). */
void loop_forget(struct weft_loop *loop, struct weft_sock *s);
/* The loop polled last on the calling thread (weft_loop_poll sets it), NULL if none. */
struct weft_loop *loop_current(void);
/* The shared receive buffer. */
uint8_t *loop_rbuf(struct weft_loop *loop);
/* Output queue blocks are recycled per loop. */
struct oq_block *loop_block_get(struct weft_loop *loop);
void loop_block_put(struct weft_loop *loop, struct oq_block *b);

/* ----------------------------------------------------------------- TLS (tls.c) */

/*
 * TLS is a layer under the same socket API: a weft_sock with an SSL object reads through
 * SSL_read into the loop's shared buffer and writes its output queue with SSL_write; the
 * owner's sock_ops and the sock_write / sock_flush / sock_close calls are the same. The
 * handshake is driven by the socket's epoll events; bytes queued before it completes are sent
 * after it. A handshake or TLS failure reaches the owner as on_eof(s, EPROTO) (or the errno of
 * a failed system call); tls_error_text then says why. TLS 1.2 and 1.3 only, renegotiation
 * disabled, ALPN "http/1.1". Contexts are OpenSSL SSL_CTXs, reference-counted by OpenSSL:
 * each connection keeps its own reference, so freeing or replacing a context never affects
 * open connections.
 */

/* Creates a server context from PEM files: cert_file holds the certificate followed by its
 * chain, key_file the private key (which must match). Returns NULL on failure with a
 * one-line reason in err (e.g. "cannot read certificate file 'x.pem': No such file or
 * directory", "private key 'k.pem' does not match the certificate"). */
struct ssl_ctx_st *tls_server_new(const char *cert_file, const char *key_file, char *err,
                                  size_t errcap);

/* Options of a client context. */
struct tls_client_opts {
    const char *cacert_file; /* PEM bundle of trusted CAs instead of the system store; NULL =
                                the system store (OpenSSL's default paths) */
    bool insecure;           /* no certificate or hostname verification at all */
};

/* Creates a client context: peers are verified against the system CA store (or
 * opts->cacert_file) unless opts->insecure; ALPN "http/1.1" is offered. Returns NULL on
 * failure with a reason in err. opts may be NULL (defaults). */
struct ssl_ctx_st *tls_client_new(const struct tls_client_opts *opts, char *err, size_t errcap);

/* Drops the caller's reference to a context (connections keep theirs). NULL is harmless. */
void tls_ctx_free(struct ssl_ctx_st *ctx);

/* Makes s, just attached with sock_attach (accepted fd), the server side of a TLS connection
 * using ctx. The handshake starts with the first socket event. Returns WEFT_OK or
 * WEFT_ERR_NOMEM (then s is still plain; the caller closes it). */
int tls_attach_server(struct weft_sock *s, struct ssl_ctx_st *ctx);

/* Makes s, just attached with sock_attach (a non-blocking fd whose connect() may still be in
 * progress), the client side of a TLS connection. host is the server's name as the user gave
 * it: sent as SNI (unless it is an IP address) and checked against the certificate (DNS name
 * or IP address) unless the context is insecure. The handshake starts when the socket first
 * reports an event (connect completion); data written meanwhile waits for it. Returns
 * WEFT_OK, WEFT_ERR_NOMEM or WEFT_ERR_INVAL (host unusable). */
int tls_attach_client(struct weft_sock *s, struct ssl_ctx_st *ctx, const char *host);

/* True once the TLS handshake of s is complete (always false for a plain socket). */
bool tls_established(const struct weft_sock *s);

/* Writes a one-line reason for the TLS failure of s into out, for an on_eof(s, err):
 * "certificate verify failed: unknown CA (unable to get local issuer certificate)",
 * "certificate verify failed: hostname mismatch", "... certificate has expired",
 * "handshake failed: <OpenSSL reason>", or strerror(err) when TLS was not at fault. */
void tls_error_text(const struct weft_sock *s, int err, char *out, size_t cap);

/* Records msg as the calling thread's weft_tls_last_error (for WEFT_ERR_TLS failures). */
void tls_set_last_error(const char *msg);

/* Internal to net/: the TLS versions of sock_flush and sock_close (called by sock.c). */
void tls_flush(struct weft_sock *s);
void tls_close(struct weft_sock *s);
/* The loop's 16 KiB scratch buffer where small queued segments are merged into one record. */
uint8_t *loop_tls_buf(struct weft_loop *loop);
#define TLS_RECORD_MAX 16384

#endif
