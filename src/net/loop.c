/*
 * loop.c — the backend-independent part of the event loop: a hashed timer wheel, an eventfd
 * for cross-thread wake-ups and deferred calls, a signalfd, the end-of-iteration work
 * (flushing corked sockets, freeing closed ones) and the choice of I/O backend (epoll in
 * loop_epoll.c, io_uring in loop_uring.c). One loop per thread, no global state.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "net/loop_int.h"
#include "net/net.h"
#include "net/outq.h"

#define WHEEL_MASK (WHEEL_SLOTS - 1)
#define TICK_MS 8u
#define BLOCK_POOL_MAX 64

/* The loop whose iteration is running on this thread (set by weft_loop_poll), so that
 * thread-safe entries such as weft_group_publish can tell local from remote delivery. */
static _Thread_local struct weft_loop *tl_current;

/* The loop polled last on the calling thread, NULL if none (or it was freed). */
struct weft_loop *loop_current(void)
{
    return tl_current;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ----------------------------------------------------------------- backend dispatch */

/* Registers io for events. Returns 0 or -1 (errno). */
int io_add(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    return loop->be_ops->io_add(loop, io, events);
}

/* Changes the events io is registered for. Returns 0 or -1 (errno). */
int io_mod(struct weft_loop *loop, struct weft_io *io, uint32_t events)
{
    return loop->be_ops->io_mod(loop, io, events);
}

/* Unregisters io (harmless when it is not registered). */
void io_del(struct weft_loop *loop, struct weft_io *io)
{
    loop->be_ops->io_del(loop, io);
}

/* Registers a connected socket with the backend. Returns WEFT_OK or WEFT_ERR_IO. */
int loop_sock_attach(struct weft_loop *loop, struct weft_sock *s)
{
    return loop->be_ops->sock_attach(loop, s);
}

/* Tells the backend that s's fd is about to be closed. */
void loop_sock_closing(struct weft_sock *s)
{
    s->loop->be_ops->sock_closing(s->loop, s);
}

/* Starts accepting on l; see net.h. */
int loop_listen(struct weft_loop *loop, struct weft_listener *l)
{
    if (loop->be_ops->listen) return loop->be_ops->listen(loop, l);
    return io_add(loop, &l->io, EPOLLIN);
}

/* Tells the backend that the owner paused reading s. */
void loop_sock_paused(struct weft_sock *s)
{
    if (s->loop->be_ops->sock_paused) s->loop->be_ops->sock_paused(s->loop, s);
}

/* Lets the backend read s when it delivers data itself (io_uring's receive ring). */
void loop_sock_read(struct weft_sock *s)
{
    s->loop->be_ops->sock_read(s->loop, s);
}

/* Tells the backend that the kernel refused output on s. */
void loop_sock_blocked(struct weft_sock *s)
{
    if (s->loop->be_ops->sock_blocked) s->loop->be_ops->sock_blocked(s->loop, s);
}

/* ----------------------------------------------------------------- wake-ups and signals */

/* Runs the deferred calls queued by other threads (the eventfd was drained). */
void loop_run_deferred(struct weft_loop *loop)
{
    pthread_mutex_lock(&loop->defer_lock);
    struct deferred *list = loop->deferred;
    size_t n = loop->ndeferred;
    loop->deferred = NULL;
    loop->ndeferred = loop->capdeferred = 0;
    pthread_mutex_unlock(&loop->defer_lock);
    for (size_t i = 0; i < n; i++)
        list[i].fn(list[i].arg);
    free(list);
}

/* Drains the eventfd and runs the deferred calls (epoll backend; io_uring reads the eventfd
 * through the ring). */
static void on_wake(struct weft_io *io, uint32_t events)
{
    (void)events;
    struct weft_loop *loop = (struct weft_loop *)((char *)io - offsetof(struct weft_loop, wake));
    uint64_t v;
    while (read(io->fd, &v, sizeof v) > 0) {
    }
    loop_run_deferred(loop);
}

/* Reads pending signals from the signalfd and calls their handlers. */
static void on_signal(struct weft_io *io, uint32_t events)
{
    (void)events;
    struct weft_loop *loop = (struct weft_loop *)((char *)io - offsetof(struct weft_loop, sig));
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo < 65 && loop->sighandlers[si.ssi_signo].fn)
            loop->sighandlers[si.ssi_signo].fn((int)si.ssi_signo,
                                               loop->sighandlers[si.ssi_signo].arg);
    }
}

/* Installs fn for signo; see weft.h. */
int weft_loop_on_signal(struct weft_loop *loop, int signo, void (*fn)(int, void *), void *arg)
{
    if (signo <= 0 || signo >= 65) return WEFT_ERR_INVAL;
    sigaddset(&loop->sigmask, signo);
    if (pthread_sigmask(SIG_BLOCK, &loop->sigmask, NULL) != 0) return WEFT_ERR_IO;
    int fd = signalfd(loop->sig.fd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return WEFT_ERR_IO;
    if (loop->sig.fd < 0) {
        loop->sig.fd = fd;
        if (io_add(loop, &loop->sig, EPOLLIN) != 0) return WEFT_ERR_IO;
    }
    loop->sighandlers[signo].fn = fn;
    loop->sighandlers[signo].arg = arg;
    return WEFT_OK;
}

/* Queues fn(arg) for the loop's thread and wakes the loop; see weft.h. */
int weft_loop_defer(struct weft_loop *loop, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&loop->defer_lock);
    if (loop->ndeferred == loop->capdeferred) {
        size_t cap = loop->capdeferred ? loop->capdeferred * 2 : 16;
        struct deferred *d = realloc(loop->deferred, cap * sizeof *d);
        if (!d) {
            pthread_mutex_unlock(&loop->defer_lock);
            return WEFT_ERR_NOMEM;
        }
        loop->deferred = d;
        loop->capdeferred = cap;
    }
    loop->deferred[loop->ndeferred].fn = fn;
    loop->deferred[loop->ndeferred].arg = arg;
    loop->ndeferred++;
    pthread_mutex_unlock(&loop->defer_lock);
    uint64_t one = 1;
    ssize_t r = write(loop->wake.fd, &one, sizeof one);
    (void)r;
    return WEFT_OK;
}

/* Makes weft_loop_run return; safe from any thread. */
void weft_loop_stop(struct weft_loop *loop)
{
    atomic_store(&loop->stop, true);
    uint64_t one = 1;
    ssize_t r = write(loop->wake.fd, &one, sizeof one);
    (void)r;
}

/* ----------------------------------------------------------------- lifecycle */

/* Fills a loop configuration with the defaults; see weft.h. */
void weft_loop_config_init(struct weft_loop_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->io_backend = WEFT_IO_DEFAULT;
}

/* Backend names; see weft.h. */
const char *weft_io_backend_name(enum weft_io_backend b)
{
    switch (b) {
    case WEFT_IO_EPOLL:
        return "epoll";
    case WEFT_IO_URING:
        return "uring";
    default:
        return "default";
    }
}

/* Whether a backend was built in; see weft.h. */
bool weft_io_backend_built(enum weft_io_backend b)
{
#ifdef WEFT_HAVE_URING
    if (b == WEFT_IO_URING) return true;
#endif
    return b == WEFT_IO_EPOLL;
}

/* Parses a backend name; see weft.h. */
int weft_io_backend_parse(const char *name, enum weft_io_backend *out)
{
    if (name && strcmp(name, "epoll") == 0)
        *out = WEFT_IO_EPOLL;
    else if (name && (strcmp(name, "uring") == 0 || strcmp(name, "io_uring") == 0))
        *out = WEFT_IO_URING;
    else
        return WEFT_ERR_INVAL;
    return WEFT_OK;
}

/* The backend asked for: cfg's, else WEFT_IO_BACKEND from the environment, else epoll. */
static enum weft_io_backend wanted_backend(const struct weft_loop_config *cfg)
{
    enum weft_io_backend b = cfg ? cfg->io_backend : WEFT_IO_DEFAULT;
    if (b == WEFT_IO_DEFAULT) {
        const char *env = getenv("WEFT_IO_BACKEND");
        if (!env || !*env || weft_io_backend_parse(env, &b) != WEFT_OK) b = WEFT_IO_EPOLL;
    }
    return b;
}

/* Sets up the backend asked for, falling back to epoll (the reason kept in
 * be_fallback_err). Returns 0 or a negative errno. */
static int backend_init(struct weft_loop *loop, enum weft_io_backend want)
{
    if (want == WEFT_IO_URING) {
#ifdef WEFT_HAVE_URING
        loop->be_ops = &loop_uring_backend;
        int r = loop->be_ops->init(loop);
        if (r == 0) return 0;
        loop->be_fallback_err = -r;
#else
        loop->be_fallback_err = ENOTSUP;
#endif
    }
    loop->be_ops = &loop_epoll_backend;
    return loop->be_ops->init(loop);
}

/* Creates a loop; see weft.h. */
struct weft_loop *weft_loop_new_config(const struct weft_loop_config *cfg)
{
    struct weft_loop *loop = calloc(1, sizeof *loop);
    if (!loop) return NULL;
    loop->rbuf = malloc(LOOP_RBUF_SIZE);
    loop->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->wake.cb = on_wake;
    loop->sig.fd = -1;
    loop->sig.cb = on_signal;
    sigemptyset(&loop->sigmask);
    pthread_mutex_init(&loop->defer_lock, NULL);
    if (!loop->rbuf || loop->wake.fd < 0) {
        weft_loop_free(loop);
        return NULL;
    }
    int r = backend_init(loop, wanted_backend(cfg));
    if (r != 0) {
        loop->be_ops = NULL;
        weft_loop_free(loop);
        errno = -r;
        return NULL;
    }
    loop->now = clock_ms();
    loop->tick = loop->now / TICK_MS;
    return loop;
}

/* Creates a loop with the defaults; see weft.h. */
struct weft_loop *weft_loop_new(void)
{
    return weft_loop_new_config(NULL);
}

/* The backend in use; see weft.h. */
enum weft_io_backend weft_loop_backend(const struct weft_loop *loop)
{
    return loop->be_ops->id;
}

/* Why the loop fell back to epoll; see weft.h. */
int weft_loop_backend_error(const struct weft_loop *loop)
{
    return loop->be_fallback_err;
}

/* Frees a loop; see weft.h. */
void weft_loop_free(struct weft_loop *loop)
{
    if (!loop) return;
    if (tl_current == loop) tl_current = NULL;
    if (loop->be_ops) loop->be_ops->fini(loop);
    if (loop->wake.fd >= 0) close(loop->wake.fd);
    if (loop->sig.fd >= 0) close(loop->sig.fd);
    while (loop->pool) {
        struct oq_block *b = loop->pool;
        loop->pool = b->next;
        free(b);
    }
    pthread_mutex_destroy(&loop->defer_lock);
    free(loop->deferred);
    free(loop->rbuf);
    free(loop->tlsbuf);
    free(loop);
}

int weft_loop_fd(const struct weft_loop *loop)
{
    return loop->be_ops->fd(loop);
}

uint64_t weft_loop_now(const struct weft_loop *loop)
{
    return loop->now;
}

/* The loop's share of the bytes held for the memory budget; see net.h. */
size_t *loop_mem_held(struct weft_loop *loop)
{
    return &loop->mem_held;
}

uint8_t *loop_rbuf(struct weft_loop *loop)
{
    return loop->rbuf;
}

/* The scratch buffer where tls.c merges small segments into one record; allocated the first
 * time a TLS socket writes. NULL if that allocation fails (tls.c then writes segments one by
 * one). */
uint8_t *loop_tls_buf(struct weft_loop *loop)
{
    if (!loop->tlsbuf) loop->tlsbuf = malloc(TLS_RECORD_MAX);
    return loop->tlsbuf;
}

/* ----------------------------------------------------------------- output blocks pool */

/* Takes an output-queue block from the pool or the allocator. NULL on allocation failure. */
struct oq_block *loop_block_get(struct weft_loop *loop)
{
    struct oq_block *b = loop->pool;
    if (b) {
        loop->pool = b->next;
        loop->npool--;
    } else {
        b = malloc(sizeof *b);
        if (!b) return NULL;
    }
    b->next = NULL;
    b->head = b->nseg = 0;
    b->used = 0;
    return b;
}

/* Returns a block to the pool (bounded) or frees it. */
void loop_block_put(struct weft_loop *loop, struct oq_block *b)
{
    if (loop->npool >= BLOCK_POOL_MAX) {
        free(b);
        return;
    }
    b->next = loop->pool;
    loop->pool = b;
    loop->npool++;
}

/* ----------------------------------------------------------------- socket lists */

void loop_mark_dirty(struct weft_loop *loop, struct weft_sock *s)
{
    if (s->flags & (SOCK_DIRTY | SOCK_CLOSED)) return;
    s->flags |= SOCK_DIRTY;
    s->list_next = loop->dirty;
    loop->dirty = s;
}

void loop_mark_read(struct weft_loop *loop, struct weft_sock *s)
{
    if (s->flags & (SOCK_READ_MORE | SOCK_CLOSED)) return;
    s->flags |= SOCK_READ_MORE;
    s->read_next = loop->read_again;
    loop->read_again = s;
}

/* Unlinks s from list (linked through the field at offset `off`). */
static void list_remove(struct weft_sock **list, struct weft_sock *s, size_t off)
{
    for (struct weft_sock **pp = list; *pp; pp = (struct weft_sock **)((char *)*pp + off)) {
        if (*pp == s) {
            *pp = *(struct weft_sock **)((char *)s + off);
            return;
        }
    }
}

/* Removes s from the dirty, read-again and closed lists. */
void loop_forget(struct weft_loop *loop, struct weft_sock *s)
{
    if (s->flags & SOCK_DIRTY) list_remove(&loop->dirty, s, offsetof(struct weft_sock, list_next));
    if (s->flags & SOCK_READ_MORE)
        list_remove(&loop->read_again, s, offsetof(struct weft_sock, read_next));
    if (s->flags & SOCK_CLOSED)
        list_remove(&loop->closed, s, offsetof(struct weft_sock, list_next));
    s->flags &= (uint16_t) ~(SOCK_DIRTY | SOCK_READ_MORE);
}

/* Called by sock_close: the socket leaves the flush and read lists and is freed (on_free)
 * once the iteration is over. */
void loop_mark_closed(struct weft_loop *loop, struct weft_sock *s)
{
    if (s->flags & SOCK_DIRTY) list_remove(&loop->dirty, s, offsetof(struct weft_sock, list_next));
    if (s->flags & SOCK_READ_MORE)
        list_remove(&loop->read_again, s, offsetof(struct weft_sock, read_next));
    s->flags &= (uint16_t) ~(SOCK_DIRTY | SOCK_READ_MORE);
    s->list_next = loop->closed;
    loop->closed = s;
}

/* ----------------------------------------------------------------- timers */

static void slot_set(struct weft_loop *loop, size_t i, bool on)
{
    uint64_t bit = UINT64_C(1) << (i & 63);
    if (on)
        loop->occupied[i >> 6] |= bit;
    else
        loop->occupied[i >> 6] &= ~bit;
}

/* Links t into the slot of its expiry. */
static void wheel_insert(struct weft_loop *loop, struct weft_timer *t)
{
    uint64_t tick = t->expires / TICK_MS;
    if (tick < loop->tick) tick = loop->tick;
    size_t i = (size_t)(tick & WHEEL_MASK);
    t->next = loop->slots[i];
    if (t->next) t->next->pprev = &t->next;
    t->pprev = &loop->slots[i];
    loop->slots[i] = t;
    slot_set(loop, i, true);
}

/* Starts (or restarts) a timer; see weft.h. */
void weft_timer_start(struct weft_loop *loop, struct weft_timer *t, uint64_t ms)
{
    if (weft_timer_active(t)) weft_timer_stop(t);
    /* Outside an iteration the cached clock may be arbitrarily old (the application blocked
     * between two polls): read it again so the timer is due ms from now. */
    if (!loop->in_iteration) loop->now = clock_ms();
    t->expires = loop->now + ms;
    wheel_insert(loop, t);
}

/* Unlinks t from whatever list it is on. The slot bit is cleared lazily by the wheel. */
static void timer_unlink(struct weft_timer *t)
{
    *t->pprev = t->next;
    if (t->next) t->next->pprev = t->pprev;
    t->next = NULL;
    t->pprev = NULL;
}

/* Stops a timer; see weft.h. The slot's occupied bit is cleared lazily by the wheel. */
void weft_timer_stop(struct weft_timer *t)
{
    if (!weft_timer_active(t)) return;
    timer_unlink(t);
}

/* Fires the timers of every wheel slot whose time span has fully elapsed by loop->now. Timers
 * of a later round found in such a slot are put back. */
static void run_timers(struct weft_loop *loop)
{
    uint64_t now_tick = loop->now / TICK_MS;
    if (now_tick <= loop->tick) return;
    uint64_t end = now_tick;
    if (end - loop->tick > WHEEL_SLOTS)
        end = loop->tick + WHEEL_SLOTS; /* a long stall: visit every slot once */
    while (loop->tick < end) {
        size_t i = (size_t)(loop->tick & WHEEL_MASK);
        loop->tick++; /* timers started by callbacks land in a later slot */
        slot_set(loop, i, false);
        if (!loop->slots[i]) continue;
        /* Detach the slot into a local list so callbacks may start/stop timers freely. */
        struct weft_timer *pending = loop->slots[i];
        loop->slots[i] = NULL;
        pending->pprev = &pending;
        while (pending) {
            struct weft_timer *t = pending;
            timer_unlink(t);
            if (t->expires <= loop->now)
                t->cb(t);
            else
                wheel_insert(loop, t);
        }
    }
    loop->tick = now_tick;
}

/* Milliseconds until the end of the next occupied wheel slot, or -1 when no slot is. */
static int next_timeout(struct weft_loop *loop)
{
    const size_t words = WHEEL_SLOTS / 64;
    size_t start = (size_t)(loop->tick & WHEEL_MASK);
    for (size_t k = 0; k <= words; k++) {
        size_t w = ((start >> 6) + k) % words;
        uint64_t bits = loop->occupied[w];
        if (k == 0)
            bits &= ~UINT64_C(0) << (start & 63);
        else if (k == words)
            bits &= (UINT64_C(1) << (start & 63)) - 1;
        if (!bits) continue;
        size_t slot = w * 64 + (size_t)__builtin_ctzll(bits);
        uint64_t tick = loop->tick + ((slot - start) & WHEEL_MASK);
        uint64_t at = (tick + 1) * TICK_MS;
        return at <= loop->now ? 0 : (int)(at - loop->now);
    }
    return -1;
}

/* ----------------------------------------------------------------- iteration */

/* Flushes every socket with corked output (through the backend), then frees sockets closed
 * in this iteration. */
static void end_of_iteration(struct weft_loop *loop)
{
    if (loop->dirty) loop->be_ops->flush_dirty(loop);
    while (loop->closed) {
        struct weft_sock *s = loop->closed;
        loop->closed = s->list_next;
        s->ops->on_free(s);
    }
}

/* Reads again from sockets whose last read filled the buffer (edge-triggered epoll will not
 * report them again) or that were resumed. */
static void run_read_again(struct weft_loop *loop)
{
    struct weft_sock *list = loop->read_again;
    loop->read_again = NULL;
    while (list) {
        struct weft_sock *s = list;
        list = s->read_next;
        s->flags &= (uint16_t)~SOCK_READ_MORE;
        if (!(s->flags & SOCK_CLOSED)) s->io.cb(&s->io, EPOLLIN | EPOLLRDHUP);
    }
}

/* One iteration; see weft.h. */
int weft_loop_poll(struct weft_loop *loop, int timeout_ms)
{
    tl_current = loop;
    int timeout = timeout_ms;
    if (loop->read_again || loop->dirty || loop->closed)
        timeout = 0;
    else {
        int t = next_timeout(loop);
        if (t >= 0 && (timeout < 0 || t < timeout)) timeout = t;
    }
    int n = loop->be_ops->wait(loop, timeout);
    if (n < 0) return n;
    loop->now = clock_ms();
    loop->in_iteration = true;
    run_read_again(loop);
    loop->be_ops->dispatch(loop, n);
    run_timers(loop);
    end_of_iteration(loop);
    loop->in_iteration = false;
    return n;
}

/* Runs until stopped; see weft.h. */
int weft_loop_run(struct weft_loop *loop)
{
    atomic_store(&loop->stop, false);
    while (!atomic_load(&loop->stop)) {
        int r = weft_loop_poll(loop, -1);
        if (r < 0) return r;
    }
    return WEFT_OK;
}
