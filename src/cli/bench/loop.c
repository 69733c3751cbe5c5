/*
 * loop.c — the run of `weft bench`: one thread, one epoll set (edge-triggered). Phases:
 * ramp (connections opened at --ramp per second), settle, warm-up (traffic, not counted),
 * measure (-d), drain (close handshakes, at most 2 s); SIGINT ends the current phase early.
 * Each iteration advances the phases, sends what the open loop or --history-rate has due,
 * scans for timeouts, waits in epoll_pwait2 until the next deadline and dispatches events.
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/epoll.h>

#include "cli/bench/bench.h"

static volatile sig_atomic_t interrupted;

static int loop(struct bench *b);

/* SIGINT: finish the current phase early and report what was measured. */
static void on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

/* Opens connections as the ramp allows (all of them for connect mode's slots). */
static void ramp_step(struct bench *b, uint64_t now)
{
    long target = b->nconns;
    if (b->o.ramp > 0) {
        double t = (double)(now - b->t0) / 1e9;
        long allowed = (long)(t * b->o.ramp) + 1;
        if (allowed < target) target = allowed;
    }
    while (b->started < target && b->pending < MAX_PENDING)
        conn_start(b, &b->conns[b->started], now);
}

/* Connect mode: restarts finished slots while traffic runs. */
static void connect_step(struct bench *b, uint64_t now)
{
    if (!sending(b)) return;
    for (long i = 0; i < b->nconns && b->pending < MAX_PENDING; i++) {
        struct bconn *c = &b->conns[i];
        if (c->state == C_DONE || c->state == C_FREE) conn_start(b, c, now);
    }
}

/* Fails connections whose handshake takes more than 10 s. */
static void timeout_scan(struct bench *b, uint64_t now)
{
    if (b->pending == 0) return;
    for (long i = 0; i < b->nconns; i++) {
        struct bconn *c = &b->conns[i];
        if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE) &&
            now - c->t_start > HANDSHAKE_TIMEOUT_NS)
            conn_fail(b, c, E_TIMEOUT);
    }
}

/* --read-rate: reads on the throttled connections whose time has come. */
static void read_scan(struct bench *b, uint64_t now)
{
    for (long i = 0; i < b->nconns; i++) {
        struct bconn *c = &b->conns[i];
        if (c->fd >= 0 && c->read_pending && now >= c->read_at) {
            c->read_pending = false;
            conn_readable(b, c);
        }
    }
}

/* Begins the measured window: resets the counters, samples the CPU clocks. */
static void start_measure(struct bench *b, uint64_t now)
{
    memset(&b->c, 0, sizeof b->c);
    hist_reset(&b->lat);
    b->m_t0 = now;
    b->self_cpu0 = self_cpu_s();
    b->srv_cpu0 = b->o.server_pid ? proc_cpu_s(b->o.server_pid) : -1;
}

/* Ends the measured window. */
static void end_measure(struct bench *b, uint64_t now)
{
    b->m_t1 = now;
    b->self_cpu1 = self_cpu_s();
    b->srv_cpu1 = b->o.server_pid ? proc_cpu_s(b->o.server_pid) : -1;
    if (b->o.server_pid) b->rss_after = proc_rss_kib(b->o.server_pid);
}

/* Moves to the drain phase: close handshakes everywhere (or, for connect mode, lets the
 * cycles in progress finish). */
static void start_drain(struct bench *b, uint64_t now)
{
    b->phase = PH_DRAIN;
    b->phase_end = now + DRAIN_NS;
    for (long i = 0; i < b->nconns; i++) {
        struct bconn *c = &b->conns[i];
        if (c->state == C_OPEN) start_close(b, c);
    }
}

/* Hub: fails the connections whose join is still unanswered (timeout). */
static void fail_unjoined(struct bench *b)
{
    for (long i = 0; i < b->nconns && b->join_pending > 0; i++)
        if (b->conns[i].hub == HUB_JOINING) conn_fail(b, &b->conns[i], E_TIMEOUT);
}

/* Advances the phase machine. Returns true when the run is over. */
static bool phase_step(struct bench *b, uint64_t now)
{
    if (interrupted && b->phase < PH_DRAIN) {
        interrupted = 0;
        if (b->phase == PH_MEASURE)
            end_measure(b, now);
        else if (b->phase < PH_MEASURE) {
            start_measure(b, now);
            end_measure(b, now);
        }
        start_drain(b, now);
        return false;
    }
    switch (b->phase) {
    case PH_RAMP:
        if (b->started >= b->nconns && b->pending == 0) {
            /* everything opened (or failed): let servers that subscribe after the 101 catch up
             * (hub: until every join is answered) */
            b->phase = PH_SETTLE;
            b->phase_end = now + (b->o.mode == MODE_IDLE  ? NS_PER_S
                                  : b->o.mode == MODE_HUB ? HUB_JOIN_NS
                                                          : NS_PER_S / 5);
        }
        return false;
    case PH_SETTLE:
        if (now < b->phase_end && !(b->o.mode == MODE_HUB && b->join_pending == 0)) return false;
        if (b->o.mode == MODE_HUB) fail_unjoined(b);
        if (b->open == 0) {
            start_measure(b, now);
            end_measure(b, now);
            start_drain(b, now);
        } else if (b->o.mode == MODE_IDLE) {
            b->phase = PH_MEASURE;
            start_measure(b, now);
            b->phase_end = now + (uint64_t)(b->o.duration * 1e9);
        } else {
            b->phase = PH_WARMUP;
            b->phase_end = now + (uint64_t)(b->o.warmup * 1e9);
            start_traffic(b, now);
        }
        return false;
    case PH_WARMUP:
        if (now >= b->phase_end) {
            b->phase = PH_MEASURE;
            b->phase_end = now + (uint64_t)(b->o.duration * 1e9);
            start_measure(b, now);
        }
        return false;
    case PH_MEASURE:
        if (now >= b->phase_end) {
            end_measure(b, now);
            start_drain(b, now);
        }
        return false;
    case PH_DRAIN:
        if (now >= b->phase_end || (b->open == 0 && b->pending == 0)) {
            for (long i = 0; i < b->nconns; i++)
                if (b->conns[i].fd >= 0) conn_release(b, &b->conns[i]);
            b->phase = PH_DONE;
            return true;
        }
        return false;
    case PH_DONE:
        return true;
    }
    return true;
}

/* Prints the live progress line on stderr (only on a terminal). */
static void progress(struct bench *b, uint64_t now)
{
    static uint64_t last_msgs, last_t;
    uint64_t msgs = b->c.msgs;
    double dt = last_t ? (double)(now - last_t) / 1e9 : 0;
    double rate = dt > 0 && msgs >= last_msgs ? (double)(msgs - last_msgs) / dt : 0;
    last_msgs = msgs;
    last_t = now;
    fprintf(stderr, "\r\033[Kweft bench: %-7s %6.1fs  conns %ld/%ld  %s %.0f/s  errors %" PRIu64,
            phase_names[b->phase], (double)(now - b->t0) / 1e9, b->open, b->nconns,
            b->o.mode == MODE_CONNECT ? "cycles" : "msgs", b->phase == PH_MEASURE ? rate : 0.0,
            errors_total(b));
    fflush(stderr);
}

/* The event loop: runs the phases to the end (SIGINT ends the current one early). Returns
 * 0, or 1 if epoll failed. */
int bench_run(struct bench *b)
{
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    int rc = loop(b);
    signal(SIGINT, SIG_DFL);
    return rc;
}

/* Runs the phases to the end. Returns 0, or 1 if epoll failed. */
static int loop(struct bench *b)
{
    struct epoll_event evs[512];
    b->t0 = now_ns();
    b->phase = b->o.mode == MODE_CONNECT ? PH_WARMUP : PH_RAMP;
    if (b->o.mode == MODE_CONNECT) {
        b->phase_end = b->t0 + (uint64_t)(b->o.warmup * 1e9);
        if (b->o.warmup <= 0) {
            b->phase = PH_MEASURE;
            b->phase_end = b->t0 + (uint64_t)(b->o.duration * 1e9);
            start_measure(b, b->t0);
        }
    }
    b->next_progress = b->t0 + NS_PER_S;
    b->next_scan = b->t0 + NS_PER_S / 4;
    for (;;) {
        uint64_t now = now_ns();
        if (phase_step(b, now)) break;
        if (b->phase == PH_RAMP) ramp_step(b, now);
        if (b->o.mode == MODE_CONNECT) connect_step(b, now);
        uint64_t wait = 250 * 1000 * 1000ull;
        if (b->o.rate > 0 && sending(b)) {
            uint64_t w = open_loop_step(b, now);
            if (w < wait) wait = w;
        }
        if (b->o.history_rate > 0 && sending(b)) {
            uint64_t w = history_step(b, now);
            if (w < wait) wait = w;
        }
        if (b->o.read_rate > 0) {
            if (now >= b->next_read) {
                b->next_read = now + READ_TICK_NS;
                read_scan(b, now);
            }
            if (READ_TICK_NS < wait) wait = READ_TICK_NS;
        }
        if (now >= b->next_scan) {
            b->next_scan = now + NS_PER_S / 4;
            timeout_scan(b, now);
            if (room_like(b) && b->o.rate <= 0) room_scan(b, now);
        }
        if (b->tty && now >= b->next_progress) {
            b->next_progress = now + NS_PER_S;
            progress(b, now);
        }
        flush_dirty(b);
        if (b->phase == PH_RAMP && b->started < b->nconns && b->o.ramp > 0 &&
            b->pending < MAX_PENDING) {
            uint64_t w = (uint64_t)(1e9 / b->o.ramp);
            if (w < wait) wait = w;
        }
        if (b->phase_end > now && b->phase_end - now < wait) wait = b->phase_end - now;
        struct timespec ts = {.tv_sec = (time_t)(wait / NS_PER_S),
                              .tv_nsec = (long)(wait % NS_PER_S)};
        int n = epoll_pwait2(b->ep, evs, 512, &ts, NULL);
        if (n < 0 && errno == ENOSYS) { /* kernels before 5.11: millisecond resolution */
            int ms = (int)((wait + 999999) / 1000000);
            n = epoll_wait(b->ep, evs, 512, ms);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("weft bench: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++)
            on_event(b, evs[i].data.ptr, evs[i].events);
        flush_dirty(b);
    }
    if (b->tty) fputs("\r\033[K", stderr);
    return 0;
}
