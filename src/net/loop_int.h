/*
 * loop_int.h — the loop's private state and the interface between the backend-independent
 * part of the loop (loop.c: timers, lists, deferred calls, signals) and its I/O backends
 * (loop_epoll.c, loop_uring.c). Internal to net/.
 */
#ifndef WEFT_LOOP_INT_H
#define WEFT_LOOP_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "net/net.h"

#define WHEEL_SLOTS 1024u

struct deferred {
    void (*fn)(void *);
    void *arg;
};

/* What a backend does for the loop. Every function runs on the loop's thread. */
struct loop_backend {
    enum weft_io_backend id;
    /* Sets up the backend's state in loop->be. Returns 0 or a negative errno. */
    int (*init)(struct weft_loop *loop);
    /* Releases the backend's state. */
    void (*fini)(struct weft_loop *loop);
    /* Generic watchers (epoll semantics; EPOLLET asks for edge-triggered reports). */
    int (*io_add)(struct weft_loop *loop, struct weft_io *io, uint32_t events);
    int (*io_mod)(struct weft_loop *loop, struct weft_io *io, uint32_t events);
    void (*io_del)(struct weft_loop *loop, struct weft_io *io);
    /* Waits up to timeout_ms (-1 forever) for events. Returns how many are ready or a
     * negative enum weft_err. */
    int (*wait)(struct weft_loop *loop, int timeout_ms);
    /* Runs the callbacks of the events wait found. */
    void (*dispatch)(struct weft_loop *loop, int n);
    /* Writes every socket on loop->dirty (end of the iteration). */
    void (*flush_dirty)(struct weft_loop *loop);
    /* A connected socket joins the loop (sock_attach). Returns WEFT_OK or WEFT_ERR_IO. */
    int (*sock_attach)(struct weft_loop *loop, struct weft_sock *s);
    /* The socket's fd is about to be closed: stop everything in flight on it. */
    void (*sock_closing)(struct weft_loop *loop, struct weft_sock *s);
    /* The kernel refused output on a plain socket: report when it is writable again. */
    void (*sock_blocked)(struct weft_loop *loop, struct weft_sock *s);
    /* Starts accepting on a listener (NULL: a level-triggered io_add of l->io). */
    int (*listen)(struct weft_loop *loop, struct weft_listener *l);
    /* The owner paused reading a socket (NULL: nothing to do). */
    void (*sock_paused)(struct weft_loop *loop, struct weft_sock *s);
    /* Reads a socket whose io.be is set (the backend delivers its data itself). */
    void (*sock_read)(struct weft_loop *loop, struct weft_sock *s);
    /* The descriptor that is readable when the loop has work (weft_loop_fd). */
    int (*fd)(const struct weft_loop *loop);
};

extern const struct loop_backend loop_epoll_backend;
#ifdef WEFT_HAVE_URING
extern const struct loop_backend loop_uring_backend;
#endif

struct weft_loop {
    const struct loop_backend *be_ops;
    void *be;            /* the backend's state */
    int be_fallback_err; /* errno that made the loop fall back to epoll, 0 if none */
    struct weft_io wake; /* eventfd */
    struct weft_io sig;  /* signalfd, fd -1 until a handler is installed */
    sigset_t sigmask;
    struct {
        void (*fn)(int, void *);
        void *arg;
    } sighandlers[65];
    atomic_bool stop;
    uint64_t now;      /* ms, CLOCK_MONOTONIC, at the start of the iteration */
    bool in_iteration; /* weft_loop_poll is dispatching events (now is fresh enough) */

    /* timer wheel */
    struct weft_timer *slots[WHEEL_SLOTS];
    uint64_t occupied[WHEEL_SLOTS / 64]; /* bit per non-empty slot */
    uint64_t tick;                       /* next tick to process */

    /* end-of-iteration lists */
    struct weft_sock *dirty;
    struct weft_sock *read_again;
    struct weft_sock *closed;

    /* deferred calls from other threads */
    pthread_mutex_t defer_lock;
    struct deferred *deferred;
    size_t ndeferred, capdeferred;

    struct oq_block *pool;
    size_t npool;

    uint8_t *rbuf;
    uint8_t *tlsbuf; /* TLS_RECORD_MAX bytes, allocated on first use */
    size_t mem_held; /* this loop's share of weft_memory_held (memory.c) */
};

/* Takes the deferred calls queued by other threads and runs them (after the eventfd woke the
 * loop). */
void loop_run_deferred(struct weft_loop *loop);

#endif
