/*
 * bench.h — the parts of `weft bench` (a WebSocket load generator on its own lean event
 * loop) and what they share: the run's state (struct bench), one connection (struct bconn),
 * the options, and the small helpers every part inlines on the hot path.
 *
 * The parts: options.c (the command line), resolve.c (the server's address, c-ares, before
 * the loop starts), loop.c (the phases and the epoll loop), conn.c (one connection: connect,
 * upgrade, frames in and out), tls.c (OpenSSL on the same sockets), modes.c (what echo, room,
 * hub, connect and idle send and count), report.c (the text and JSON summaries, /proc
 * readings), bench.c (setup, teardown, cmd_bench). See README.md for why the generator keeps
 * its own loop and TLS client instead of libweft's.
 *
 * Wire format (modes.c): each message carries the time it was (closed loop) or should have
 * been (open loop, -r) sent in its first 8 bytes, in 7-bit groups so that a text payload stays
 * valid UTF-8; room messages also carry the sender, the window slot and a generation in bytes
 * 8..13; hub messages carry them as JSON numbers in "data".
 */
#ifndef WEFT_CLI_BENCH_H
#define WEFT_CLI_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cli/bench/hist.h"
#include "weft.h"

#define RBUF_SIZE (256u * 1024u)
#define HS_CAP 4096u                      /* handshake response head */
#define MAX_PENDING 256                   /* connects + handshakes in progress at once */
#define MAX_SIZE (16u * 1024u * 1024u)    /* largest -s */
#define MAX_BACKLOG (16u * 1024u * 1024u) /* open loop: unsent bytes per connection */
#define HANDSHAKE_TIMEOUT_NS (10 * NS_PER_S)
#define DRAIN_NS (2 * NS_PER_S)
#define NS_PER_S 1000000000ull
#define TS_BYTES 8       /* timestamp: 8 x 7 bits = 56 bits of ns (2.2 years) */
#define ROOM_HDR 14      /* timestamp + sender (3 x 7 bits) + slot (2 x 7 bits) + generation */
#define MAX_WINDOW 16383 /* slots fit in 14 bits */
#define MAX_SENDERS 2097151
#define ZIN_CAP (64u * 1024u) /* inflate scratch: only the first bytes are kept */
#define HUB_HEAD 512          /* hub: first bytes of a message kept (envelope + data fields) */
#define HUB_JOIN_NS (10 * NS_PER_S)        /* hub: joins not answered by then fail (timeout) */
#define HIST_BACK 50                       /* hub --history-rate: ask from this many seqs back */
#define SLOW_RCVBUF 16384                  /* --read-rate: the socket's receive buffer */
#define READ_TICK_NS (20 * 1000 * 1000ull) /* --read-rate: throttled sockets re-read this often */

enum mode { MODE_ECHO, MODE_ROOM, MODE_CONNECT, MODE_IDLE, MODE_HUB };
extern const char *const mode_names[]; /* by enum mode */

enum phase { PH_RAMP, PH_SETTLE, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };
extern const char *const phase_names[]; /* by enum phase */

/* Kinds of error, counted over the whole run (not only the measured window). */
enum err_kind {
    E_CONNECT,     /* socket/bind/connect failed */
    E_HANDSHAKE,   /* the response was not a valid 101 */
    E_TIMEOUT,     /* no 101 within 10 s */
    E_PROTOCOL,    /* the server sent an invalid frame or message */
    E_CLOSED,      /* the server closed the connection (close frame or EOF) unasked */
    E_IO,          /* send/recv failed (reset, ...) */
    E_BAD_MESSAGE, /* a message of the wrong size or with a header we did not send */
    E_LOST,        /* room: deliveries that never arrived (a window slot timed out) */
    E_BACKLOG,     /* open loop: a message not sent because the connection had 16 MiB queued */
    E__N
};
extern const char *const err_names[]; /* by enum err_kind */

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING, C_DONE };

/* Hub mode: where a connection is with its join. */
enum hub_state { HUB_NONE, HUB_JOINING, HUB_MEMBER };

/* One client connection. */
struct bconn {
    int fd;
    uint8_t state;       /* enum cstate */
    bool dirty;          /* on the flush list */
    bool sender;         /* room: this member sends */
    uint8_t hub;         /* enum hub_state */
    uint16_t in_hdr_len; /* first bytes kept: in in_hdr, or (hub) in the shared heads array */
    uint32_t idx;        /* position in the connection array */
    uint32_t sender_idx;
    uint64_t t_start; /* ns: when connect() was called */
    struct weft_msg_parser mp;
    char key[25];
    char *hs; /* handshake response bytes (only while in C_HANDSHAKE) */
    size_t hs_len;
    uint8_t *out; /* bytes waiting for the kernel: out[out_off .. out_len) */
    size_t out_off, out_len, out_cap;
    uint64_t in_len; /* bytes of the message being received */
    uint8_t in_hdr[ROOM_HDR];
    struct bconn *next_dirty;
    SSL *ssl; /* wss://: the TLS session, NULL for plain connections */
    /* permessage-deflate, when the server accepted it */
    bool pmd, in_z; /* negotiated; the message being received is compressed */
    bool our_nct, peer_nct;
    uint8_t our_bits, peer_bits;
    struct weft_deflater *defl; /* own codecs, only with context takeover */
    struct weft_inflater *infl;
    uint64_t read_at;  /* --read-rate: ns before which c is not read (0 = now) */
    bool read_pending; /* --read-rate: c may hold unread bytes (re-read by read_scan) */
    uint64_t last_seq; /* hub: highest "seq" seen in a "joined" or "message" */
};

/* Room: the window of one sender. */
struct sender {
    struct bconn *conn;
    int32_t *remaining; /* per slot: deliveries still expected, 0 = slot free */
    uint8_t *gen;       /* per slot: generation of the message in it */
    uint64_t *sent_at;  /* per slot: ns of the send */
};

struct options {
    const char *url;
    enum mode mode;
    long conns, size, window, senders;
    double rate, duration, warmup, ramp;
    bool binary, json;
    bool deflate, tls, insecure;
    bool accept_masked; /* the raw-byte echo peer sends our masked frames back */
    const char *cacert;
    const char *room;  /* hub: the room joined (default "bench") */
    bool binary_given; /* --binary on the command line */
    int payload;       /* 0 = abc pattern, 1 = JSON-like text, 2 = random printable */
    long server_pid;
    uint32_t local_lo, local_hi; /* host byte order; 0 = none */
    double read_rate;            /* slow reader: bytes/s each connection reads, 0 = all */
    double history_rate;         /* hub: history / re-join requests per second in total */
};

/* Counters of the measured window. */
struct counters {
    uint64_t msgs;  /* echoes / deliveries / completed open-close cycles */
    uint64_t bytes; /* payload bytes received */
    uint64_t sent;  /* messages sent */
};

struct bench {
    struct options o;
    int ep;
    struct sockaddr_storage addr; /* the server (resolve.c) */
    socklen_t addrlen;
    uint16_t port;
    bool host_numeric; /* host is an IP literal: no SNI, the certificate is checked by IP */
    char hosthdr[300];
    char path[1024];
    struct weft_random rnd;
    struct weft_msg_limits limits;
    struct bconn *conns;
    long nconns;
    struct sender *senders;
    long nsenders;
    uint8_t *rbuf;
    uint8_t *payload; /* the message template (pattern), timestamp patched per send */
    uint8_t *frame;   /* scratch for one encoded frame */
    size_t frame_cap;
    struct bconn *dirty;

    enum phase phase;
    uint64_t t0;         /* ns: start of the run (timestamps are relative to it) */
    uint64_t phase_end;  /* ns: when the current timed phase ends */
    uint64_t send_start; /* ns: open loop: intended time of message 0 */
    uint64_t next_k;     /* open loop: next message number */
    long rr;             /* open loop: round-robin cursor */
    long started, open, pending, closed, opened_total;
    uint32_t local_next;
    uint64_t next_progress, next_scan, next_read;
    bool tty;

    /* TLS and permessage-deflate */
    SSL_CTX *ssl_ctx;
    char host[256]; /* for SNI and the certificate check */
    bool tls_err_shown;
    char pmd_offer[160];
    struct weft_pmd_config pmd;
    struct weft_deflater *shared_defl[16]; /* by window bits, no context takeover */
    struct weft_inflater *shared_infl;     /* whole messages without context takeover */
    uint8_t *zbuf, *zin;
    size_t zbuf_cap;
    long pmd_conns; /* connections that negotiated deflate */

    /* hub mode */
    uint8_t *heads; /* HUB_HEAD bytes per connection: the start of the message */
    char *hub_join; /* the join request */
    size_t hub_join_len;
    char *hub_buf; /* a publish request being built; starts with its fixed prefix */
    size_t hub_pre_len, hub_buf_cap;
    long members;       /* connections whose join was answered (and still open) */
    long join_pending;  /* joins sent, not answered yet */
    long members_start; /* room / hub members when traffic started */
    uint64_t hist_next; /* hub --history-rate: ns when the next request is due */
    long hist_rr;       /* hub --history-rate: round-robin cursor over the connections */
    uint64_t hist_reqs, hist_replies, replayed; /* requests sent, answers, replayed messages */

    struct counters c;
    uint64_t errors[E__N];
    struct hist lat;

    /* the measured window */
    uint64_t m_t0, m_t1;
    double self_cpu0, self_cpu1, srv_cpu0, srv_cpu1;
    long rss_before, rss_after;
    long peak_open;
};

/* Nanoseconds of CLOCK_MONOTONIC. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Writes v (< 2^(7n)) into p[0..n) as n 7-bit groups, least significant first. */
static inline void put7(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)((v >> (7 * i)) & 0x7f);
}

/* Reads n 7-bit groups written by put7; returns UINT64_MAX if a byte has its top bit set. */
static inline uint64_t get7(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (p[i] & 0x80) return UINT64_MAX;
        v |= (uint64_t)p[i] << (7 * i);
    }
    return v;
}

/* Counts an error of the given kind. */
static inline void count_error(struct bench *b, enum err_kind k)
{
    b->errors[k]++;
}

/* Puts c on the list of connections flushed at the end of the loop iteration. */
static inline void mark_dirty(struct bench *b, struct bconn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = b->dirty;
        b->dirty = c;
    }
}

/* True while messages are being sent (warm-up and measure). */
static inline bool sending(const struct bench *b)
{
    return b->phase == PH_WARMUP || b->phase == PH_MEASURE;
}

/* True for the modes where senders publish to a room of members (room, hub). */
static inline bool room_like(const struct bench *b)
{
    return b->o.mode == MODE_ROOM || b->o.mode == MODE_HUB;
}

/* True if c is a member of the room: open, and (hub) its join answered. */
static inline bool is_member(const struct bench *b, const struct bconn *c)
{
    return c->state == C_OPEN && (b->o.mode != MODE_HUB || c->hub == HUB_MEMBER);
}

/* The members a message goes to, its sender included (room: open connections, hub: joined
 * ones); every one but the sender gets it. */
static inline long room_members(const struct bench *b)
{
    return b->o.mode == MODE_HUB ? b->members : b->open;
}

/* The first bytes kept of the message being received on c. */
static inline uint8_t *conn_head(const struct bench *b, struct bconn *c)
{
    return b->heads ? b->heads + (size_t)c->idx * HUB_HEAD : c->in_hdr;
}

/* ---- conn.c */

/* Closes c's socket and frees its buffers; the slot becomes C_DONE. */
void conn_release(struct bench *b, struct bconn *c);

/* Fails c with an error of kind k. */
void conn_fail(struct bench *b, struct bconn *c, enum err_kind k);

/* Queues one masked frame on c (fresh masking key from weft_frame_encode), data compressed
 * when deflate was negotiated. Returns false if out of memory. */
bool queue_frame(struct bench *b, struct bconn *c, uint8_t opcode, const void *payload, size_t len);

/* Writes what the kernel takes of c's output. Returns false if c failed. */
bool conn_flush(struct bench *b, struct bconn *c);

/* Flushes every connection that queued output during this iteration. */
void flush_dirty(struct bench *b);

/* Starts a non-blocking connect for slot c (bound to the next --local-addr if given).
 * Returns false (error counted) on failure. */
bool conn_start(struct bench *b, struct bconn *c, uint64_t now);

/* Reads everything c has (edge-triggered: until EAGAIN or a short read). With --read-rate an
 * open connection reads one chunk, then waits until the rate allows the next (read_scan
 * comes back to it). */
void conn_readable(struct bench *b, struct bconn *c);

/* Handles one epoll event. */
void on_event(struct bench *b, struct bconn *c, uint32_t events);

/* ---- tls.c */

/* SSL_write/SSL_read result as send/recv would give it: > 0 bytes, 0 for the peer's clean
 * end, or -1 with errno EAGAIN (TLS wants the socket readable or writable: the next epoll
 * event of either kind retries) or EIO. */
ssize_t tls_result(struct bench *b, struct bconn *c, int r);

/* The TLS client context: TLS 1.2+, ALPN http/1.1, verification against the system store or
 * --cacert unless --insecure. Returns false (message printed) on failure. */
bool tls_setup(struct bench *b);

/* ---- modes.c */

/* Queues a close frame (1000) and moves c to C_CLOSING. */
void start_close(struct bench *b, struct bconn *c);

/* A connection finished its handshake. */
void on_open(struct bench *b, struct bconn *c, uint64_t now);

/* A whole data message arrived on c (its first bytes are in c->in_hdr, or for hub mode in
 * conn_head). */
void on_message(struct bench *b, struct bconn *c, uint64_t now);

/* A control frame arrived on c. */
void on_control(struct bench *b, struct bconn *c, const struct weft_msg_event *ev);

/* Open loop: sends every message whose intended time has come, round-robin over the open
 * connections (echo) or the senders (room), each stamped with its intended time. Returns the
 * ns until the next one is due. */
uint64_t open_loop_step(struct bench *b, uint64_t now);

/* Room closed loop: gives up on window slots whose deliveries did not all arrive in time
 * (counting the missing ones as lost) and refills them. */
void room_scan(struct bench *b, uint64_t now);

/* Hub --history-rate: sends the requests that are due, each from the next member in turn,
 * alternating {"type":"history","since":S} and a re-join {"type":"join","since":S} (S: the
 * member's last seen seq minus HIST_BACK). Returns the ns until the next one is due. */
uint64_t history_step(struct bench *b, uint64_t now);

/* Starts traffic: room and hub senders fill their windows, echo connections theirs. */
void start_traffic(struct bench *b, uint64_t now);

/* Fills the message template: an a-z pattern, JSON-like records or random printable
 * bytes (all valid UTF-8, so --text works with each). */
void fill_payload(struct bench *b);

/* Hub mode: the join request, the publish buffer with its fixed prefix, the kept heads;
 * the padding made safe inside a JSON string. Returns false when out of memory. */
bool hub_setup(struct bench *b);

/* ---- loop.c */

/* The event loop: runs the phases to the end. Returns 0, or 1 if epoll failed. */
int bench_run(struct bench *b);

/* ---- report.c */

/* Sum of every error kind. */
uint64_t errors_total(const struct bench *b);

/* Seconds of CPU (user + system) this process has used. */
double self_cpu_s(void);

/* Seconds of CPU (utime + stime, all threads) of pid from /proc/PID/stat, or -1. */
double proc_cpu_s(long pid);

/* VmRSS of pid in KiB from /proc/PID/status, or -1. */
long proc_rss_kib(long pid);

/* Prints the summary as text. */
void report_text(const struct bench *b);

/* Prints the summary as one JSON object on one line. Returns 0, or -1 when out of memory. */
int report_json(const struct bench *b);

/* ---- options.c */

/* Splits ws://HOST[:PORT][/PATH] and resolves HOST (IPv4). Returns 0, 1 for a resolution
 * failure, or 2 for a malformed URL (message printed). */
int parse_url(struct bench *b, const char *url);

/* Parses the command line into b->o. Returns -1 to go on, or an exit status. */
int parse_options(struct bench *b, int argc, char **argv);

/* ---- resolve.c */

/* Resolves b->host (an IP literal at once, else c-ares with a 10 s deadline, before the loop
 * starts; IPv4 preferred when a name has both) into b->addr. Idempotent. Returns 0, or -1
 * with the reason printed. */
int bench_resolve(struct bench *b);

#endif
