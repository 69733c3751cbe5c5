/*
 * sock.c — connected sockets: edge-triggered reads into the loop's shared buffer, and a corked
 * output queue written with one writev per socket per loop iteration.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "net/outq.h"

/* Largest copy put into a block's storage; bigger writes go into a weft_buf of their own. */
#define OQ_COPY_MAX 2048
/* Reads of a full buffer in a row before yielding to other sockets. */
#define READS_PER_EVENT 4
#define IOV_BATCH 64

static void sock_on_io(struct weft_io *io, uint32_t events);

/* Starts or stops counting the queue in the memory budget after a flush (see SOCK_HELD):
 * bytes left over are held until the peer reads. Costs one test when nothing was or is
 * held: a queue that the flush emptied was never counted. */
static inline void oq_account(struct weft_sock *s)
{
    if (s->queued && !(s->flags & SOCK_HELD)) {
        mem_charge(s->loop, s->queued, true);
        s->flags |= SOCK_HELD;
    } else if (!s->queued && (s->flags & SOCK_HELD)) {
        s->flags &= (uint16_t)~SOCK_HELD;
    }
}

/* Registers fd (non-blocking) with the loop's backend for input and output. */
int sock_attach(struct weft_loop *loop, struct weft_sock *s, int fd, const struct sock_ops *ops)
{
    memset(s, 0, sizeof *s);
    s->io.fd = fd;
    s->io.cb = sock_on_io;
    s->loop = loop;
    s->ops = ops;
    return loop_sock_attach(loop, s);
}

/* Reads until the kernel has nothing more (a short read, or with `hup` the end of the
 * stream: the peer's FIN came with the data and no new edge will report it), the owner
 * pauses or closes the socket, or the fairness budget is used up (then the loop comes back
 * next iteration). */
static void sock_read(struct weft_sock *s, bool hup)
{
    if (s->io.be) { /* io_uring: data arrives through the ring */
        loop_sock_read(s);
        return;
    }
    uint8_t *rbuf = loop_rbuf(s->loop);
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF)) return;
        ssize_t n = read(s->io.fd, rbuf, LOOP_RBUF_SIZE);
        if (n > 0) {
            s->ops->on_data(s, rbuf, (size_t)n);
            if ((size_t)n < LOOP_RBUF_SIZE && !hup) return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        s->flags |= SOCK_EOF;
        s->ops->on_eof(s, n == 0 ? 0 : errno);
        return;
    }
    loop_mark_read(s->loop, s);
}

/* epoll callback of a socket. */
static void sock_on_io(struct weft_io *io, uint32_t events)
{
    struct weft_sock *s = (struct weft_sock *)io;
    if (s->flags & SOCK_CLOSED) return;
    if ((events & EPOLLOUT) && (s->flags & SOCK_BLOCKED)) {
        s->flags &= (uint16_t)~SOCK_BLOCKED;
        sock_flush(s);
        if (s->flags & SOCK_CLOSED) return;
        if (!(s->flags & SOCK_BLOCKED) && s->ops->on_drain) s->ops->on_drain(s);
        if (s->flags & SOCK_CLOSED) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        sock_read(s, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
}

/* Returns a tail block with a free segment slot (and, if need_bytes, that much free storage),
 * appending a new block when needed. NULL on allocation failure. */
static struct oq_block *oq_tail(struct weft_sock *s, size_t need_bytes)
{
    struct oq_block *t = s->qtail;
    if (t && t->nseg < OQ_SEGS && t->used + need_bytes <= OQ_STORAGE) return t;
    struct oq_block *nb = loop_block_get(s->loop);
    if (!nb) return NULL;
    if (t)
        t->next = nb;
    else
        s->qhead = nb;
    s->qtail = nb;
    return nb;
}

/* Brings the socket's budget count up to date; see net.h. */
void sock_account(struct weft_sock *s)
{
    oq_account(s);
}

/* Appends a segment referencing ref's bytes p[0..len) (takes a reference). */
static int oq_push_ref(struct weft_sock *s, struct weft_buf *ref, const uint8_t *p, size_t len)
{
    struct oq_block *t = oq_tail(s, 0);
    if (!t) return WEFT_ERR_NOMEM;
    buf_ref(ref);
    t->seg[t->nseg++] = (struct oq_seg){.ref = ref, .p = p, .len = len};
    s->queued += len;
    if (s->flags & SOCK_HELD) mem_charge(s->loop, len, true);
    return WEFT_OK;
}

/* Reserves len contiguous bytes at the end of the queue and returns where to write them:
 * small reservations in the tail block's storage (merged with the previous segment when
 * contiguous), large ones in a shared buffer of their own. NULL on allocation failure. */
static uint8_t *oq_reserve(struct weft_sock *s, size_t len)
{
    if (len > OQ_COPY_MAX) {
        struct weft_buf *nb = buf_new(len);
        if (!nb) return NULL;
        int r = oq_push_ref(s, nb, nb->data, len);
        buf_unref(nb); /* the queue holds the only reference now */
        return r == WEFT_OK ? nb->data : NULL;
    }
    struct oq_block *t = s->qtail;
    uint8_t *dst;
    if (t && t->nseg > t->head && t->used + len <= OQ_STORAGE && !t->seg[t->nseg - 1].ref &&
        t->seg[t->nseg - 1].p + t->seg[t->nseg - 1].len == t->bytes + t->used) {
        dst = t->bytes + t->used;
        t->seg[t->nseg - 1].len += len;
    } else {
        t = oq_tail(s, len);
        if (!t) return NULL;
        dst = t->bytes + t->used;
        t->seg[t->nseg++] = (struct oq_seg){.ref = NULL, .p = dst, .len = len};
    }
    t->used += (uint32_t)len;
    s->queued += len;
    if (s->flags & SOCK_HELD) mem_charge(s->loop, len, true);
    return dst;
}

/* Reserves len bytes of output for the caller to fill at once; see net.h. */
uint8_t *sock_reserve(struct weft_sock *s, size_t len)
{
    if (s->flags & (SOCK_CLOSED | SOCK_WR_SHUT)) return NULL;
    uint8_t *p = oq_reserve(s, len);
    if (p && !(s->flags & SOCK_BLOCKED)) loop_mark_dirty(s->loop, s);
    return p;
}

int sock_write(struct weft_sock *s, const void *data, size_t len)
{
    return sock_write2(s, data, len, NULL, 0);
}

/* Queues a copy of a then b and marks the socket for flushing. */
int sock_write2(struct weft_sock *s, const void *a, size_t alen, const void *b, size_t blen)
{
    if (s->flags & (SOCK_CLOSED | SOCK_WR_SHUT)) return WEFT_ERR_CLOSED;
    if (alen + blen == 0) return WEFT_OK;
    uint8_t *dst = oq_reserve(s, alen + blen);
    if (!dst) return WEFT_ERR_NOMEM;
    memcpy(dst, a, alen);
    if (blen) memcpy(dst + alen, b, blen);
    if (!(s->flags & SOCK_BLOCKED)) loop_mark_dirty(s->loop, s);
    return WEFT_OK;
}

/* Queues a reference to part of a shared buffer and marks the socket for flushing. */
int sock_write_buf(struct weft_sock *s, struct weft_buf *b, size_t off, size_t len)
{
    if (s->flags & (SOCK_CLOSED | SOCK_WR_SHUT)) return WEFT_ERR_CLOSED;
    if (len == 0) return WEFT_OK;
    int r = oq_push_ref(s, b, b->data + off, len);
    if (r == WEFT_OK && !(s->flags & SOCK_BLOCKED)) loop_mark_dirty(s->loop, s);
    return r;
}

/* Releases the first n bytes of the queue after the kernel took them. */
void oq_consume(struct weft_sock *s, size_t n)
{
    s->queued -= n;
    if (s->flags & SOCK_HELD) mem_release(s->loop, n);
    while (s->qhead) {
        struct oq_block *b = s->qhead;
        while (b->head < b->nseg) {
            struct oq_seg *seg = &b->seg[b->head];
            if (n < seg->len) {
                seg->p += n;
                seg->len -= n;
                return;
            }
            n -= seg->len;
            if (seg->ref) buf_unref(seg->ref);
            b->head++;
        }
        if (b == s->qtail) {
            /* Empty: keep nothing (an idle socket owns no block). */
            s->qhead = s->qtail = NULL;
            loop_block_put(s->loop, b);
            return;
        }
        s->qhead = b->next;
        loop_block_put(s->loop, b);
    }
}

/* Drops all queued output. */
void sock_discard(struct weft_sock *s)
{
    oq_consume(s, s->queued);
    while (s->qhead) { /* blocks with no pending segments */
        struct oq_block *b = s->qhead;
        s->qhead = b->next;
        loop_block_put(s->loop, b);
    }
    s->qtail = NULL;
    s->queued = 0;
    s->flags &= (uint16_t)~SOCK_HELD;
}

static void flush_plain(struct weft_sock *s);

/* Describes the first segments of s's queue in iov (at most max). Returns how many, with
 * their byte count in *total. */
int sock_fill_iov(const struct weft_sock *s, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    *total = 0;
    for (struct oq_block *b = s->qhead; b && n < max; b = b->next)
        for (uint16_t i = b->head; i < b->nseg && n < max; i++) {
            iov[n].iov_base = (void *)b->seg[i].p;
            iov[n].iov_len = b->seg[i].len;
            *total += b->seg[i].len;
            n++;
        }
    return n;
}

/* Writes as much of the queue as the kernel takes. A queue the kernel had refused that is
 * empty afterwards is reported with on_drain, as on EPOLLOUT: that happens when an owner
 * flushed early in the iteration (the socket blocked) and the loop flushes it again at the
 * end of the iteration, when the peer may have read meanwhile. */
void sock_flush(struct weft_sock *s)
{
    if (s->flags & SOCK_CLOSED) return;
    bool was_blocked = (s->flags & SOCK_BLOCKED) != 0;
    if (s->ssl) /* the one test the plain path pays for TLS */
        tls_flush(s);
    else
        flush_plain(s);
    oq_account(s); /* what the kernel refused is held until EPOLLOUT */
    if (was_blocked && !(s->flags & (SOCK_BLOCKED | SOCK_CLOSED | SOCK_EOF)) && s->ops->on_drain)
        s->ops->on_drain(s);
}

/* Writes as much of a plain socket's queue as the kernel takes, in batches of IOV_BATCH
 * segments. */
static void flush_plain(struct weft_sock *s)
{
    while (s->queued > 0) {
        struct iovec iov[IOV_BATCH];
        size_t total;
        int n = sock_fill_iov(s, iov, IOV_BATCH, &total);
        ssize_t w = n == 1 ? send(s->io.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                           : writev(s->io.fd, iov, n);
        if (w < 0 && errno == EINTR) continue;
        if (!sock_wrote(s, w, total, w < 0 ? errno : 0)) return;
    }
    sock_wrote(s, 0, 0, 0);
}

/* Records the result of one write of a plain socket; see net.h. */
bool sock_wrote(struct weft_sock *s, ssize_t w, size_t total, int err)
{
    if (w < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            s->flags |= SOCK_BLOCKED;
            loop_sock_blocked(s);
            return false;
        }
        sock_discard(s);
        if (!(s->flags & SOCK_EOF)) {
            s->flags |= SOCK_EOF;
            s->ops->on_eof(s, err);
        }
        return false;
    }
    if (w > 0) oq_consume(s, (size_t)w);
    if ((size_t)w < total) {
        s->flags |= SOCK_BLOCKED;
        loop_sock_blocked(s);
        return false;
    }
    if (s->queued > 0) return true; /* more than one batch was queued */
    s->flags &= (uint16_t)~SOCK_BLOCKED;
    if ((s->flags & SOCK_SHUT_AFTER) && !(s->flags & SOCK_WR_SHUT)) {
        shutdown(s->io.fd, SHUT_WR);
        s->flags |= SOCK_WR_SHUT;
    }
    return true;
}

/* Half-closes the socket once the queue is empty. */
void sock_shutdown_after_flush(struct weft_sock *s)
{
    if (s->flags & (SOCK_CLOSED | SOCK_WR_SHUT)) return;
    s->flags |= SOCK_SHUT_AFTER;
    if (!(s->flags & SOCK_BLOCKED)) loop_mark_dirty(s->loop, s);
}

/* Closes the fd at once; the owner's on_free runs at the end of the iteration. */
void sock_close(struct weft_sock *s)
{
    if (s->flags & SOCK_CLOSED) return;
    sock_discard(s);
    if (s->ssl) tls_close(s); /* close_notify (best effort), SSL_free */
    loop_sock_closing(s);
    close(s->io.fd); /* also removes it from epoll */
    s->flags |= SOCK_CLOSED;
    loop_mark_closed(s->loop, s);
}

void sock_pause(struct weft_sock *s)
{
    if (!(s->flags & SOCK_PAUSED) && s->io.be) loop_sock_paused(s);
    s->flags |= SOCK_PAUSED;
}

/* Resumes reading; data that arrived meanwhile is read next iteration (edge-triggered). */
void sock_resume(struct weft_sock *s)
{
    if (!(s->flags & SOCK_PAUSED)) return;
    s->flags &= (uint16_t)~SOCK_PAUSED;
    loop_mark_read(s->loop, s);
}
