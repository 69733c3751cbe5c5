/*
 * loop_uring.c — the io_uring backend of the loop. Plain sockets receive through one
 * multishot receive each into a ring of provided buffers (no read() per message); the sends
 * of one iteration go out in one submission (MSG_DONTWAIT, so they complete inline and the
 * output queues are consumed before anything else runs); the eventfd is read through the
 * ring; timeouts are passed to the wait itself. TLS sockets and every other descriptor
 * (listeners, watchers, resolver sockets, the signalfd) use ring polls with epoll semantics
 * (multishot for edge-triggered registrations, re-armed one-shots for level-triggered ones).
 *
 * Every registered descriptor has a small state (io->be) that the ring's requests point at;
 * it outlives its owner until the last request on it has completed, so a completion can
 * never reach freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net/loop_int.h"
#include "net/net.h"

#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 16384u
#define BUF_COUNT 256u  /* provided receive buffers (power of two) */
#define BUF_SIZE 16384u /* bytes each */
#define BUF_GROUP 0
#define SEND_BATCH 256 /* sends per submission */
#define SEND_IOV 32    /* segments per send */

/* What a request's user_data points at (low 3 bits; states are 8-byte aligned). */
enum { U_POLL = 1, U_RECV = 2, U_SEND = 3, U_POUT = 4, U_WAKE = 5, U_IGNORE = 6, U_ACCEPT = 7 };
#define TAG_MASK 7u

/* Requests in flight on a state. */
enum { A_POLL = 1, A_RECV = 2, A_POUT = 4, A_ACCEPT = 8 };

/* Kinds of state. */
enum { K_PENDING, K_POLL, K_SOCK, K_ACCEPT };

/* The backend's state of one descriptor (weft_io.be). */
struct ustate {
    struct weft_io *io; /* NULL once the owner let go (closed, io_del) */
    uint32_t events;    /* K_POLL: the epoll events asked for */
    uint8_t kind;       /* K_* */
    uint8_t armed;      /* A_* */
    bool on_arm_list;   /* waits for its requests to be prepared */
    bool busy;          /* a completion of it is being handled: do not free yet */
    bool held_eof;      /* K_SOCK: the end of the stream came while paused */
    int held_err;       /* K_SOCK: an error came while paused */
    uint32_t idx;       /* 1 + slot in the loop's table while the owner holds it */
    uint8_t *held;      /* K_SOCK: bytes received while paused */
    size_t held_len;
    struct ustate *arm_next;
    struct ustate *prev, *next; /* every state of the loop (freed with it) */
};

/* A completion kept aside while the sends of a batch are reaped. */
struct stashed {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

/* One send of a batch. */
struct usend {
    struct weft_sock *s;
    size_t total;
    int32_t res;
    bool done;
    struct msghdr mh;
    struct iovec iov[SEND_IOV];
};

struct uring_state {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    size_t br_size;
    uint8_t *bufs;
    struct ustate *arm_head;
    struct ustate *all;
    struct ustate **table;               /* weft_io.be - 1 -> state */
    uint32_t ntable, captable, free_idx; /* free_idx: 1 + first free slot, 0 if none */
    uint64_t wakeval;
    struct stashed *stash;
    size_t nstash, stash_off;
    struct usend *sends;
};

/* The backend state of loop. */
static struct uring_state *ust(const struct weft_loop *loop)
{
    return loop->be;
}

/* A submission queue entry, submitting what is queued when the ring is full. NULL only when
 * the kernel refuses the submission. */
static struct io_uring_sqe *get_sqe(struct uring_state *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* Tags a state pointer as a request's user_data. */
static uint64_t tag(struct ustate *st, unsigned t)
{
    return (uint64_t)(uintptr_t)st | t;
}

/* The state of io, NULL if it has none. */
static struct ustate *state_of(struct uring_state *u, const struct weft_io *io)
{
    return io->be ? u->table[io->be - 1] : NULL;
}

/* Takes io's state away from it (the state lives on until its requests completed). */
static void state_detach(struct uring_state *u, struct ustate *st)
{
    if (st->io) st->io->be = 0;
    st->io = NULL;
    uint32_t i = st->idx - 1;
    u->table[i] = (struct ustate *)(uintptr_t)(((uintptr_t)u->free_idx << 3) | 1u);
    u->free_idx = st->idx;
    st->idx = 0;
}

/* A new state for io, linked into the loop's list. NULL when out of memory. */
static struct ustate *state_new(struct uring_state *u, struct weft_io *io, uint8_t kind)
{
    uint32_t slot;
    if (u->free_idx) {
        slot = u->free_idx - 1;
        u->free_idx = (uint32_t)((uintptr_t)u->table[slot] >> 3);
    } else {
        if (u->ntable == u->captable) {
            uint32_t cap = u->captable ? u->captable * 2 : 1024;
            struct ustate **t = realloc(u->table, cap * sizeof *t);
            if (!t) return NULL;
            u->table = t;
            u->captable = cap;
        }
        slot = u->ntable++;
    }
    struct ustate *st = calloc(1, sizeof *st);
    if (!st) {
        u->table[slot] = (struct ustate *)(uintptr_t)(((uintptr_t)u->free_idx << 3) | 1u);
        u->free_idx = slot + 1;
        return NULL;
    }
    u->table[slot] = st;
    st->idx = slot + 1;
    io->be = st->idx;
    st->io = io;
    st->kind = kind;
    st->next = u->all;
    if (u->all) u->all->prev = st;
    u->all = st;
    return st;
}

/* Unlinks and frees a state. */
static void state_free(struct uring_state *u, struct ustate *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        u->all = st->next;
    if (st->next) st->next->prev = st->prev;
    free(st->held);
    free(st);
}

/* Frees st when nothing refers to it any more. */
static void maybe_free(struct uring_state *u, struct ustate *st)
{
    if (!st->io && !st->armed && !st->on_arm_list && !st->busy) state_free(u, st);
}

/* Queues st for its requests to be prepared before the next submission. */
static void arm_later(struct uring_state *u, struct ustate *st)
{
    if (st->on_arm_list) return;
    st->on_arm_list = true;
    st->arm_next = u->arm_head;
    u->arm_head = st;
}

/* Cancels the request with user_data ud (its completion says -ECANCELED). */
static void cancel(struct uring_state *u, uint64_t ud, bool poll)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) return;
    if (poll)
        io_uring_prep_poll_remove(sqe, ud);
    else
        io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, U_IGNORE);
}

/* Prepares the requests st needs: a poll (multishot when edge-triggered) or a multishot
 * receive. */
static void arm(struct uring_state *u, struct ustate *st)
{
    struct weft_io *io = st->io;
    if (io->fd < 0) { /* closed without io_del: nothing left to watch */
        state_detach(u, st);
        return;
    }
    if (st->kind == K_PENDING) {
        struct weft_sock *s = (struct weft_sock *)io;
        if (s->ssl) { /* TLS reads through OpenSSL: readiness, as with epoll */
            st->kind = K_POLL;
            st->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        } else {
            st->kind = K_SOCK;
        }
    }
    if (st->kind == K_POLL && !(st->armed & A_POLL)) {
        struct io_uring_sqe *sqe = get_sqe(u);
        if (!sqe) return;
        unsigned mask = st->events & ~(unsigned)(EPOLLET | EPOLLONESHOT);
        if (st->events & EPOLLET)
            io_uring_prep_poll_multishot(sqe, io->fd, mask);
        else
            io_uring_prep_poll_add(sqe, io->fd, mask);
        io_uring_sqe_set_data64(sqe, tag(st, U_POLL));
        st->armed |= A_POLL;
    } else if (st->kind == K_ACCEPT && !(st->armed & A_ACCEPT)) {
        struct io_uring_sqe *sqe = get_sqe(u);
        if (!sqe) return;
        io_uring_prep_multishot_accept(sqe, io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, tag(st, U_ACCEPT));
        st->armed |= A_ACCEPT;
    } else if (st->kind == K_SOCK && !(st->armed & A_RECV)) {
        struct weft_sock *s = (struct weft_sock *)io;
        if (s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF)) return;
        struct io_uring_sqe *sqe = get_sqe(u);
        if (!sqe) return;
        io_uring_prep_recv_multishot(sqe, io->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BUF_GROUP;
        io_uring_sqe_set_data64(sqe, tag(st, U_RECV));
        st->armed |= A_RECV;
    }
}

/* Prepares the requests of every state waiting for them. */
static void arm_pending(struct uring_state *u)
{
    while (u->arm_head) {
        struct ustate *st = u->arm_head;
        u->arm_head = st->arm_next;
        st->on_arm_list = false;
        if (st->io) arm(u, st);
        maybe_free(u, st);
    }
}

/* ----------------------------------------------------------------- generic watchers */

/* Registers io for events through ring polls. Returns 0 or -1 (errno). */
static int u_io_add(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    struct ustate *st = state_new(ust(loop), io, K_POLL);
    if (!st) {
        errno = ENOMEM;
        return -1;
    }
    st->events = events;
    arm_later(ust(loop), st);
    return 0;
}

/* Changes the events of io: the poll in flight is removed and re-armed with them. */
static int u_io_mod(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    struct ustate *st = state_of(ust(loop), io);
    if (!st) return u_io_add(loop, io, events);
    st->events = events;
    if (st->armed & A_POLL)
        cancel(ust(loop), tag(st, U_POLL), true); /* re-armed when its completion comes */
    else
        arm_later(ust(loop), st);
    return 0;
}

/* Unregisters io; its state goes when the poll in flight has completed. */
static void u_io_del(struct weft_loop *loop, struct weft_io *io)
{
    struct ustate *st = state_of(ust(loop), io);
    if (!st) return;
    state_detach(ust(loop), st);
    if (st->armed & A_ACCEPT) cancel(ust(loop), tag(st, U_ACCEPT), false);
    if (st->armed & A_POLL) cancel(ust(loop), tag(st, U_POLL), true);
    maybe_free(ust(loop), st);
}

/* ----------------------------------------------------------------- sockets */

/* A socket joins the ring: its receive (or poll, for TLS) is prepared before the next
 * submission, once tls_attach_* had its chance to make it a TLS socket. */
static int u_sock_attach(struct weft_loop *loop, struct weft_sock *s)
{
    struct ustate *st = state_new(ust(loop), &s->io, K_PENDING);
    if (!st) return WEFT_ERR_NOMEM;
    arm_later(ust(loop), st);
    return WEFT_OK;
}

/* The socket's fd is being closed: its requests are cancelled (the kernel keeps the socket
 * until they complete) and its state outlives it until then. */
static void u_sock_closing(struct weft_loop *loop, struct weft_sock *s)
{
    struct uring_state *u = ust(loop);
    struct ustate *st = state_of(u, &s->io);
    if (!st) return;
    state_detach(u, st);
    if (st->armed & A_POLL) cancel(u, tag(st, U_POLL), true);
    if (st->armed & A_RECV) cancel(u, tag(st, U_RECV), false);
    if (st->armed & A_POUT) cancel(u, tag(st, U_POUT), true);
    maybe_free(u, st);
}

/* The kernel refused output: one poll for writability. */
static void u_sock_blocked(struct weft_loop *loop, struct weft_sock *s)
{
    struct ustate *st = state_of(ust(loop), &s->io);
    if (!st || st->kind != K_SOCK || (st->armed & A_POUT)) return;
    struct io_uring_sqe *sqe = get_sqe(ust(loop));
    if (!sqe) return;
    io_uring_prep_poll_add(sqe, s->io.fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, tag(st, U_POUT));
    st->armed |= A_POUT;
}

/* Delivers what was held while the socket was paused and re-arms its receive. */
static void u_sock_read(struct weft_loop *loop, struct weft_sock *s)
{
    struct ustate *st = state_of(ust(loop), &s->io);
    if (!st || (s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF))) return;
    if (st->held) {
        uint8_t *held = st->held;
        size_t len = st->held_len;
        st->held = NULL;
        st->held_len = 0;
        s->ops->on_data(s, held, len);
        free(held);
        st = state_of(ust(loop), &s->io);
        if (!st || (s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF))) return;
    }
    if (st->held_eof || st->held_err) {
        s->flags |= SOCK_EOF;
        s->ops->on_eof(s, st->held_err);
        return;
    }
    if (!(st->armed & A_RECV)) arm_later(ust(loop), st);
}

/* Stops receiving for a paused socket (what is still in flight is held). */
static void pause_recv(struct uring_state *u, struct ustate *st)
{
    if (st->armed & A_RECV) cancel(u, tag(st, U_RECV), false);
}

/* Appends bytes received while paused. Returns false when out of memory. */
static bool hold(struct ustate *st, const uint8_t *p, size_t n)
{
    uint8_t *nb = realloc(st->held, st->held_len + n);
    if (!nb) return false;
    memcpy(nb + st->held_len, p, n);
    st->held = nb;
    st->held_len += n;
    return true;
}

/* A completion of a socket's multishot receive (handle() frees the state if it is done). */
static void on_recv(struct uring_state *u, struct ustate *st, int32_t res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE)) st->armed &= (uint8_t)~A_RECV;
    uint8_t *data = NULL;
    unsigned bid = 0;
    if (flags & IORING_CQE_F_BUFFER) {
        bid = flags >> IORING_CQE_BUFFER_SHIFT;
        data = u->bufs + (size_t)bid * BUF_SIZE;
    }
    struct weft_sock *s = st->io ? (struct weft_sock *)st->io : NULL;
    bool live = s && !(s->flags & (SOCK_CLOSED | SOCK_EOF));
    if (res > 0 && live && data) {
        if ((s->flags & SOCK_PAUSED) || st->held) {
            if (!hold(st, data, (size_t)res)) st->held_err = ENOMEM;
            pause_recv(u, st);
        } else {
            s->ops->on_data(s, data, (size_t)res);
        }
    } else if (res == 0 && live) {
        if ((s->flags & SOCK_PAUSED) || st->held) {
            st->held_eof = true;
        } else {
            s->flags |= SOCK_EOF;
            s->ops->on_eof(s, 0);
        }
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED && live) {
        if ((s->flags & SOCK_PAUSED) || st->held) {
            st->held_err = -res;
        } else {
            s->flags |= SOCK_EOF;
            s->ops->on_eof(s, -res);
        }
    }
    if (data) {
        io_uring_buf_ring_add(u->br, data, BUF_SIZE, (unsigned short)bid,
                              io_uring_buf_ring_mask(BUF_COUNT), 0);
        io_uring_buf_ring_advance(u->br, 1);
    }
    /* A receive that ended (no buffer left, or the kernel stopped it) starts again. */
    if (st->io && !(st->armed & A_RECV) && res != 0 && !st->held_eof && !st->held_err) {
        s = (struct weft_sock *)st->io;
        if (!(s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF))) arm_later(u, st);
    }
}

/* A completion of a poll: the watcher's callback with the events (epoll bits). */
static void on_poll(struct uring_state *u, struct ustate *st, int32_t res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE)) st->armed &= (uint8_t)~A_POLL;
    if (st->io && res > 0)
        st->io->cb(st->io, (uint32_t)res);
    else if (st->io && res < 0 && res != -ECANCELED)
        st->io->cb(st->io, EPOLLERR);
    if (st->io && !(st->armed & A_POLL))
        arm_later(u, st); /* level-triggered: poll again (reports at once if still ready) */
}

/* A completion of the writability poll of a blocked socket. */
static void on_pollout(struct ustate *st, int32_t res)
{
    st->armed &= (uint8_t)~A_POUT;
    if (st->io && res != -ECANCELED) st->io->cb(st->io, EPOLLOUT);
}

/* Starts a multishot accept on a listener. Returns 0 or -1 (errno). */
static int u_listen(struct weft_loop *loop, struct weft_listener *l)
{
    struct ustate *st = state_new(ust(loop), &l->io, K_ACCEPT);
    if (!st) {
        errno = ENOMEM;
        return -1;
    }
    arm_later(ust(loop), st);
    return 0;
}

/* A completion of a listener's multishot accept: a new connection or an error. The accept
 * has no room for each peer's address, so getpeername fetches it. */
static void on_accept(struct uring_state *u, struct ustate *st, int32_t res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE)) st->armed &= (uint8_t)~A_ACCEPT;
    struct weft_listener *l = st->io ? (struct weft_listener *)st->io : NULL;
    if (res >= 0) {
        if (!l) {
            close(res);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(res, (struct sockaddr *)&ss, &sl) != 0) {
            close(res); /* already reset by the peer */
        } else {
            listener_accepted(l, res, (struct sockaddr *)&ss, sl);
        }
    } else if (l && res != -ECANCELED && res != -EINTR && res != -ECONNABORTED) {
        listener_accept_failed(l, -res);
    }
    if (st->io && !(st->armed & A_ACCEPT)) arm_later(u, st);
}

/* Arms the read of the eventfd through the ring. */
static void arm_wake(struct weft_loop *loop)
{
    struct uring_state *u = ust(loop);
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) return;
    io_uring_prep_read(sqe, loop->wake.fd, &u->wakeval, sizeof u->wakeval, 0);
    io_uring_sqe_set_data64(sqe, U_WAKE);
}

/* Handles one completion. */
static void handle(struct weft_loop *loop, uint64_t ud, int32_t res, uint32_t flags)
{
    struct uring_state *u = ust(loop);
    struct ustate *st = (struct ustate *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);
    unsigned t = (unsigned)(ud & TAG_MASK);
    if (t == U_RECV || t == U_POLL || t == U_POUT || t == U_ACCEPT)
        st->busy = true; /* callbacks may close its owner */
    switch (t) {
    case U_RECV:
        on_recv(u, st, res, flags);
        break;
    case U_POLL:
        on_poll(u, st, res, flags);
        break;
    case U_POUT:
        on_pollout(st, res);
        break;
    case U_ACCEPT:
        on_accept(u, st, res, flags);
        break;
    case U_WAKE:
        arm_wake(loop);
        loop_run_deferred(loop);
        break;
    default:
        break;
    }
    if (t == U_RECV || t == U_POLL || t == U_POUT || t == U_ACCEPT) {
        st->busy = false;
        maybe_free(u, st);
    }
}

/* ----------------------------------------------------------------- the loop */

/* Submits what is prepared and waits up to timeout_ms for a completion. Returns how many
 * completions are ready or WEFT_ERR_IO. */
static int u_wait(struct weft_loop *loop, int timeout_ms)
{
    struct uring_state *u = ust(loop);
    arm_pending(u);
    if (u->nstash > u->stash_off) timeout_ms = 0;
    int r;
    if (timeout_ms == 0) {
        r = io_uring_sq_ready(&u->ring) ? io_uring_submit(&u->ring) : 0;
    } else {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, timeout_ms > 0 ? &ts : NULL, NULL);
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) return WEFT_ERR_IO;
    return (int)(io_uring_cq_ready(&u->ring) + (u->nstash - u->stash_off));
}

/* Handles the completions kept aside during the last flush, then those in the ring. */
static void u_dispatch(struct weft_loop *loop, int n)
{
    (void)n;
    struct uring_state *u = ust(loop);
    while (u->stash_off < u->nstash) {
        struct stashed c = u->stash[u->stash_off++];
        handle(loop, c.user_data, c.res, c.flags);
    }
    u->nstash = u->stash_off = 0;
    unsigned budget = CQ_ENTRIES;
    struct io_uring_cqe *cqe;
    while (budget-- && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        uint32_t flags = cqe->flags;
        io_uring_cqe_seen(&u->ring, cqe);
        handle(loop, ud, res, flags);
    }
}

/* Prepares the send of s's queue as entry i of the batch. Returns false when s needs no
 * batched send. */
static bool prep_send(struct uring_state *u, int i, struct weft_sock *s)
{
    struct usend *x = &u->sends[i];
    int n = sock_fill_iov(s, x->iov, SEND_IOV, &x->total);
    if (n == 0) return false;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe) return false;
    memset(&x->mh, 0, sizeof x->mh);
    x->mh.msg_iov = x->iov;
    x->mh.msg_iovlen = (size_t)n;
    x->s = s;
    x->done = false;
    if (n == 1)
        io_uring_prep_send(sqe, s->io.fd, x->iov[0].iov_base, x->iov[0].iov_len,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    else
        io_uring_prep_sendmsg(sqe, s->io.fd, &x->mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, ((uint64_t)i << 3) | U_SEND);
    return true;
}

/* Submits n prepared sends and waits until all have completed (non-blocking sends complete
 * during the submission); other completions are kept aside for the next dispatch. */
static void reap_sends(struct uring_state *u, int n)
{
    int left = n;
    bool cancelled = false;
    io_uring_submit(&u->ring);
    while (left > 0) {
        struct io_uring_cqe *cqe;
        if (io_uring_peek_cqe(&u->ring, &cqe) != 0) {
            if (!cancelled) {
                /* A send the kernel parked (waiting for room) instead of failing with EAGAIN:
                 * cancel it (nothing of it was sent) rather than wait for the peer. */
                for (int i = 0; i < n; i++)
                    if (!u->sends[i].done) cancel(u, ((uint64_t)i << 3) | U_SEND, false);
                io_uring_submit(&u->ring);
                cancelled = true;
                continue;
            }
            int r = io_uring_wait_cqe(&u->ring, &cqe);
            if (r < 0 && r != -EINTR) break;
            if (r < 0) continue;
        }
        uint64_t ud = cqe->user_data;
        if ((ud & TAG_MASK) == U_SEND && (ud >> 3) < (uint64_t)n) {
            struct usend *x = &u->sends[ud >> 3];
            x->res = cqe->res == -ECANCELED ? -EAGAIN : cqe->res;
            x->done = true;
            left--;
        } else {
            if (u->nstash == CQ_ENTRIES * 2) /* cannot happen: the CQ holds fewer */
                break;
            u->stash[u->nstash++] =
                (struct stashed){.user_data = ud, .res = cqe->res, .flags = cqe->flags};
        }
        io_uring_cqe_seen(&u->ring, cqe);
    }
}

/* Writes every corked socket: plain sockets' sends in one submission per batch, TLS and
 * blocked sockets directly. */
static void u_flush_dirty(struct weft_loop *loop)
{
    struct uring_state *u = ust(loop);
    arm_pending(u); /* receives of new sockets ride along with the sends */
    while (loop->dirty) {
        int n = 0;
        while (loop->dirty && n < SEND_BATCH) {
            struct weft_sock *s = loop->dirty;
            loop->dirty = s->list_next;
            s->flags &= (uint16_t)~SOCK_DIRTY;
            if (s->flags & SOCK_CLOSED) continue;
            if (s->ssl || (s->flags & SOCK_BLOCKED) || !s->io.be || !prep_send(u, n, s)) {
                sock_flush(s);
                continue;
            }
            n++;
        }
        if (n == 0) continue;
        reap_sends(u, n);
        for (int i = 0; i < n; i++) {
            struct usend *x = &u->sends[i];
            struct weft_sock *s = x->s;
            if (!x->done || (s->flags & SOCK_CLOSED)) continue;
            bool all = sock_wrote(s, x->res < 0 ? -1 : x->res, x->total, x->res < 0 ? -x->res : 0);
            if (!(s->flags & SOCK_CLOSED))
                sock_account(s); /* what the kernel refused is held (memory budget) */
            if (all && s->queued > 0)
                loop_mark_dirty(loop, s); /* more segments than one send takes */
        }
    }
}

/* Sets up the ring, the provided buffers and the eventfd read. Returns 0 or a negative
 * errno (the loop then falls back to epoll). */
static int u_init(struct weft_loop *loop)
{
    struct uring_state *u = calloc(1, sizeof *u);
    if (!u) return -ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = CQ_ENTRIES;
    int r = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
    if (r < 0) {
        free(u);
        return r;
    }
    /* Multishot receive needs Linux 6.0; IORING_OP_SEND_ZC came with it. */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
              (p.features & IORING_FEAT_EXT_ARG);
    io_uring_free_probe(probe);
    if (!ok) {
        io_uring_queue_exit(&u->ring);
        free(u);
        return -ENOSYS;
    }
    u->br_size = BUF_COUNT * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, u->br_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    u->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    u->stash = malloc(sizeof *u->stash * CQ_ENTRIES * 2);
    u->sends = malloc(sizeof *u->sends * SEND_BATCH);
    r = -ENOMEM;
    if (br != MAP_FAILED && u->bufs && u->stash && u->sends) {
        u->br = br;
        struct io_uring_buf_reg reg = {
            .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
        r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    }
    if (r < 0) {
        if (br != MAP_FAILED) munmap(br, u->br_size);
        free(u->bufs);
        free(u->stash);
        free(u->sends);
        io_uring_queue_exit(&u->ring);
        free(u);
        return r;
    }
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(u->br, BUF_COUNT);
    loop->be = u;
    /* The ring waits for the eventfd itself: a blocking read that completes on a write. */
    int fl = fcntl(loop->wake.fd, F_GETFL);
    if (fl >= 0) fcntl(loop->wake.fd, F_SETFL, fl & ~O_NONBLOCK);
    arm_wake(loop);
    return 0;
}

/* Frees the ring (cancelling everything in it) and every state still held. */
static void u_fini(struct weft_loop *loop)
{
    struct uring_state *u = ust(loop);
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    /* The owners are gone (weft_loop_free requires it); states whose requests were still in
     * flight go with the ring. */
    while (u->all)
        state_free(u, u->all);
    munmap(u->br, u->br_size);
    free(u->bufs);
    free(u->stash);
    free(u->sends);
    free(u->table);
    free(u);
    loop->be = NULL;
}

/* The ring's descriptor (readable when completions are waiting). */
static int u_fd(const struct weft_loop *loop)
{
    return ust(loop)->ring.ring_fd;
}

/* Stops the receive of a paused plain socket. */
static void u_sock_paused(struct weft_loop *loop, struct weft_sock *s)
{
    struct ustate *st = state_of(ust(loop), &s->io);
    if (st && st->kind == K_SOCK) pause_recv(ust(loop), st);
}

const struct loop_backend loop_uring_backend = {
    .id = WEFT_IO_URING,
    .init = u_init,
    .fini = u_fini,
    .io_add = u_io_add,
    .io_mod = u_io_mod,
    .io_del = u_io_del,
    .wait = u_wait,
    .dispatch = u_dispatch,
    .flush_dirty = u_flush_dirty,
    .sock_attach = u_sock_attach,
    .sock_closing = u_sock_closing,
    .sock_blocked = u_sock_blocked,
    .listen = u_listen,
    .sock_paused = u_sock_paused,
    .sock_read = u_sock_read,
    .fd = u_fd,
};
