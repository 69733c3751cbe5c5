/*
 * bench.c — `weft bench URL`: a WebSocket load generator on its own lean event loop.
 *
 * One thread, one epoll set (edge-triggered), one shared receive buffer, and weft's sans-I/O
 * protocol functions for everything on the wire: the opening handshake (weft_handshake_key,
 * weft_handshake_request, weft_http_parse_response, weft_handshake_check_response), frames
 * in the client role with a fresh masking key each (weft_frame_encode), and received messages
 * (weft_msg_parse, client role). It uses only weft.h, like any outside application.
 *
 * Modes:
 *   echo     N connections, each keeps W messages of S bytes in flight (closed loop: every
 *            echo sends the next one), or an open-loop total rate (-r) spread over them.
 *   room     N members of one room (the URL's path, e.g. /ws/bench); the first K are senders.
 *            Every delivery is counted at every member. Closed loop: a sender keeps W messages
 *            in flight, a message leaving the window once every other member has it.
 *   hub      room mode over the /hub JSON protocol (the URL's path, e.g. /hub): every
 *            connection sends {"type":"join","room":R} and traffic starts once every join is
 *            answered ("joined"); senders send {"type":"publish","room":R,"data":{...}}, the
 *            server delivers {"type":"message",...,"data":{...}} to every other member (the
 *            publisher gets only "published"). "data" carries the timestamp, the sender, the
 *            window slot and the generation as numbers, padded to -s bytes; deliveries are
 *            parsed with memmem and a digit loop, no JSON parser. Error replies count as
 *            protocol errors.
 *   connect  handshakes per second: C concurrent open → 101 → close handshake → reopen.
 *   idle     open N connections and hold them; with --server-pid, the server's RSS per
 *            connection.
 *
 * Latency: each message carries the time it was (closed loop) or should have been (open loop,
 * -r) sent in its first 8 bytes, in 7-bit groups so that a text payload stays valid UTF-8.
 * Open-loop latency is measured from the intended send time, so a stalled server cannot hide
 * its stall by slowing the generator down (no coordinated omission). Room messages also carry
 * the sender, the window slot and a generation in bytes 8..13.
 *
 * Phases: ramp (connections opened at --ramp per second), warm-up (traffic, not counted),
 * measure (-d seconds), drain (close handshakes, at most 2 s). The server's CPU time comes
 * from /proc/PID/stat (utime + stime) over the measured window, its RSS from
 * /proc/PID/status.
 *
 * --deflate offers permessage-deflate and, when the server accepts, compresses every data
 * message it sends (weft_deflate_message; codecs shared across connections without context
 * takeover, per connection with it) and inflates what it receives (weft_inflate, counting
 * inflated bytes). wss:// (or --tls) runs TLS with OpenSSL directly on the same non-blocking
 * sockets (SSL_write/SSL_read; the TLS handshake is driven by the first write). The plain path
 * only pays a branch on a NULL SSL pointer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "hist.h"
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
static const char *const mode_names[] = {"echo", "room", "connect", "idle", "hub"};

enum phase { PH_RAMP, PH_SETTLE, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };
static const char *const phase_names[] = {"ramp", "settle", "warm-up", "measure", "drain", "done"};

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
static const char *const err_names[] = {"connect", "handshake",   "timeout", "protocol", "closed",
                                        "io",      "bad_message", "lost",    "backlog"};

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
    struct sockaddr_in addr;
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

static volatile sig_atomic_t interrupted;

/* SIGINT: finish the current phase early and report what was measured. */
static void on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

/* Nanoseconds of CLOCK_MONOTONIC. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Seconds of CPU (user + system) this process has used. */
static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Seconds of CPU (utime + stime, all threads) of pid from /proc/PID/stat, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces and ')' */
    if (!p || !p[1]) return -1;
    /* After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime. */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in KiB from /proc/PID/status, or -1. */
static long proc_rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ------------------------------------------------------------------ payload header */

/* Writes v (< 2^(7n)) into p[0..n) as n 7-bit groups, least significant first. */
static void put7(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)((v >> (7 * i)) & 0x7f);
}

/* Reads n 7-bit groups written by put7; returns UINT64_MAX if a byte has its top bit set. */
static uint64_t get7(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (p[i] & 0x80) return UINT64_MAX;
        v |= (uint64_t)p[i] << (7 * i);
    }
    return v;
}

/* ------------------------------------------------------------------ errors and output */

/* Counts an error of the given kind. */
static void count_error(struct bench *b, enum err_kind k)
{
    b->errors[k]++;
}

/* Sum of every error kind. */
static uint64_t errors_total(const struct bench *b)
{
    uint64_t t = 0;
    for (int i = 0; i < E__N; i++)
        t += b->errors[i];
    return t;
}

/* Puts c on the list of connections flushed at the end of the loop iteration. */
static void mark_dirty(struct bench *b, struct bconn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = b->dirty;
        b->dirty = c;
    }
}

/* Makes room for n more bytes in c's output buffer. Returns a pointer to them or NULL. */
static uint8_t *out_reserve(struct bconn *c, size_t n)
{
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) { /* compact before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 1024;
            while (cap < c->out_len + n)
                cap *= 2;
            uint8_t *p = realloc(c->out, cap);
            if (!p) return NULL;
            c->out = p;
            c->out_cap = cap;
        }
    }
    uint8_t *at = c->out + c->out_len;
    c->out_len += n;
    return at;
}

/* Closes c's socket and frees its buffers; the slot becomes C_DONE. */
static void conn_release(struct bench *b, struct bconn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    weft_deflater_free(c->defl);
    weft_inflater_free(c->infl);
    c->defl = NULL;
    c->infl = NULL;
    c->pmd = false;
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) b->pending--;
    if (c->state == C_OPEN || c->state == C_CLOSING) b->open--;
    if (c->hub == HUB_JOINING)
        b->join_pending--;
    else if (c->hub == HUB_MEMBER)
        b->members--;
    c->hub = HUB_NONE;
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    c->state = C_DONE;
    b->closed++;
}

/* Fails c with an error of kind k. */
static void conn_fail(struct bench *b, struct bconn *c, enum err_kind k)
{
    count_error(b, k);
    conn_release(b, c);
}

/* Compresses a message for c into b->zbuf. Returns the compressed length, or -1 (send it
 * uncompressed: out of memory, or it would not shrink and no window has to see it). */
static long deflate_payload(struct bench *b, struct bconn *c, const void *payload, size_t len)
{
    struct weft_deflater **slot = c->our_nct ? &b->shared_defl[c->our_bits & 15] : &c->defl;
    if (!*slot && !(*slot = weft_deflater_new(c->our_bits, b->pmd.mem_level, -1))) return -1;
    size_t bound = weft_deflate_bound(len);
    if (bound > b->zbuf_cap) {
        uint8_t *nb = realloc(b->zbuf, bound);
        if (!nb) return -1;
        b->zbuf = nb;
        b->zbuf_cap = bound;
    }
    long n = weft_deflate_message(*slot, payload, len, b->zbuf, bound, c->our_nct);
    if (n < 0 || (c->our_nct && (size_t)n >= len)) return -1;
    return n;
}

/* Queues one masked frame on c (fresh masking key from weft_frame_encode), data compressed
 * when deflate was negotiated. Returns false if out of memory. */
static bool queue_frame(struct bench *b, struct bconn *c, uint8_t opcode, const void *payload,
                        size_t len)
{
    uint8_t rsv = 0;
    if (c->pmd && (opcode == WEFT_OP_TEXT || opcode == WEFT_OP_BINARY)) {
        long z = deflate_payload(b, c, payload, len);
        if (z >= 0) {
            payload = b->zbuf;
            len = (size_t)z;
            rsv = 4;
        }
    }
    size_t cap = len + WEFT_FRAME_HEADER_MAX;
    uint8_t *at = out_reserve(c, cap);
    if (!at) return false;
    long n = weft_frame_encode(at, cap, WEFT_ROLE_CLIENT, &b->rnd, opcode, true, rsv, payload, len);
    if (n < 0) {
        c->out_len -= cap;
        return false;
    }
    c->out_len -= cap - (size_t)n;
    mark_dirty(b, c);
    return true;
}

/* Writes v in decimal at p. Returns the number of digits. */
static size_t put_dec(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Appends the literal s (a string constant) at p; evaluates to its length. */
#define PUT_LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), sizeof(s) - 1)

/* Builds a hub publish request in b->hub_buf (after its fixed prefix): "data" is
 * {"t":ts,"s":sender,"w":slot,"g":gen,"p":"<padding>"}, padded to -s bytes when the fields
 * leave room. Returns its length. */
static size_t hub_publish_text(struct bench *b, uint64_t ts, uint32_t sender, uint32_t slot,
                               uint8_t gen)
{
    char *p = b->hub_buf + b->hub_pre_len, *d = p;
    p += PUT_LIT(p, "{\"t\":");
    p += put_dec(p, ts);
    p += PUT_LIT(p, ",\"s\":");
    p += put_dec(p, sender);
    p += PUT_LIT(p, ",\"w\":");
    p += put_dec(p, slot);
    p += PUT_LIT(p, ",\"g\":");
    p += put_dec(p, gen);
    p += PUT_LIT(p, ",\"p\":\"");
    size_t used = (size_t)(p - d) + 2, size = (size_t)b->o.size;
    if (size > used) {
        memcpy(p, b->payload, size - used);
        p += size - used;
    }
    p += PUT_LIT(p, "\"}}");
    return (size_t)(p - b->hub_buf);
}

/* Queues one data message stamped with ts (ns since t0); room and hub messages also carry
 * sender, slot and generation. Returns false if it could not be queued (counted as an
 * error). */
static bool send_message(struct bench *b, struct bconn *c, uint64_t ts, uint32_t sender,
                         uint32_t slot, uint8_t gen)
{
    if (c->state != C_OPEN) return false;
    if (b->o.rate > 0 && c->out_len - c->out_off > MAX_BACKLOG) {
        count_error(b, E_BACKLOG);
        return false;
    }
    const uint8_t *msg = b->payload;
    size_t len = (size_t)b->o.size;
    if (b->o.mode == MODE_HUB) {
        len = hub_publish_text(b, ts, sender, slot, gen);
        msg = (const uint8_t *)b->hub_buf;
    } else if (len >= TS_BYTES) {
        put7(b->payload, ts, TS_BYTES);
    }
    if (b->o.mode == MODE_ROOM) {
        put7(b->payload + 8, sender, 3);
        put7(b->payload + 11, slot, 2);
        b->payload[13] = (uint8_t)(gen & 0x7f);
    }
    if (!queue_frame(b, c, b->o.binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, msg, len)) {
        count_error(b, E_IO);
        return false;
    }
    if (b->phase == PH_MEASURE) b->c.sent++;
    return true;
}

/* Queues a close frame (1000) and moves c to C_CLOSING. */
static void start_close(struct bench *b, struct bconn *c)
{
    uint8_t pl[125];
    size_t n = weft_close_payload(pl, WEFT_CLOSE_NORMAL, NULL, 0);
    queue_frame(b, c, WEFT_OP_CLOSE, pl, n);
    c->state = C_CLOSING;
}

/* Prints the first TLS failure of the run (later ones are only counted). */
static void tls_report(struct bench *b, struct bconn *c)
{
    if (b->tls_err_shown) return;
    b->tls_err_shown = true;
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (v != X509_V_OK)
        fprintf(stderr, "weft bench: TLS certificate verify failed: %s\n",
                X509_verify_cert_error_string(v));
    else if (e)
        fprintf(stderr, "weft bench: TLS error: %s\n", buf);
    ERR_clear_error();
}

/* SSL_write/SSL_read result as send/recv would give it: > 0 bytes, 0 for the peer's clean
 * end, or -1 with errno EAGAIN (TLS wants the socket readable or writable: the next epoll
 * event of either kind retries) or EIO. */
static ssize_t tls_result(struct bench *b, struct bconn *c, int r)
{
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
        return 0; /* close_notify, or an EOF without it (fine for a benchmark) */
    if (c->state == C_HANDSHAKE) tls_report(b, c);
    ERR_clear_error();
    errno = EIO;
    return -1;
}

/* send() or SSL_write() of c's bytes. */
static ssize_t conn_send(struct bench *b, struct bconn *c, const uint8_t *p, size_t n)
{
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    ssize_t w = tls_result(b, c, SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n));
    if (w == 0) {
        errno = EPIPE;
        return -1;
    }
    return w;
}

/* Writes what the kernel takes of c's output. Returns false if c failed. */
static bool conn_flush(struct bench *b, struct bconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = conn_send(b, c, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;           /* EPOLLOUT (edge) tells when there is room again */
        if (c->state == C_CLOSING) /* the close was under way: nothing lost */
            conn_release(b, c);
        else
            conn_fail(b, c, c->state == C_HANDSHAKE && c->ssl ? E_HANDSHAKE : E_IO);
        return false;
    }
    c->out_off = c->out_len = 0;
    return true;
}

/* Flushes every connection that queued output during this iteration. */
static void flush_dirty(struct bench *b)
{
    while (b->dirty) {
        struct bconn *c = b->dirty;
        b->dirty = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        if (c->fd >= 0) conn_flush(b, c);
    }
}

/* ------------------------------------------------------------------ opening */

/* Starts a non-blocking connect for slot c (bound to the next --local-addr if given).
 * Returns false (error counted) on failure. */
static bool conn_start(struct bench *b, struct bconn *c, uint64_t now)
{
    memset(&c->mp, 0, sizeof c->mp);
    c->state = C_FREE;
    c->out_off = c->out_len = 0;
    c->in_len = 0;
    c->in_hdr_len = 0;
    c->t_start = now;
    c->read_at = 0;
    c->read_pending = false;
    c->last_seq = 0;
    b->started++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (b->o.read_rate > 0) { /* a slow reader: let the server's queue, not ours, fill up */
        int rcv = SLOW_RCVBUF;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    if (b->o.local_lo) {
        uint32_t span = b->o.local_hi - b->o.local_lo + 1;
        struct sockaddr_in la = {.sin_family = AF_INET};
        la.sin_addr.s_addr = htonl(b->o.local_lo + b->local_next++ % span);
        /* Pick the port at connect time, per destination, so each source address has its own
         * range of ephemeral ports. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&la, sizeof la) != 0) {
            close(fd);
            count_error(b, E_CONNECT);
            c->state = C_DONE;
            return false;
        }
    }
    if (connect(fd, (struct sockaddr *)&b->addr, sizeof b->addr) != 0 && errno != EINPROGRESS) {
        close(fd);
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        count_error(b, E_CONNECT);
        c->state = C_DONE;
        return false;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    b->pending++;
    return true;
}

/* The TCP connection is up: sends the upgrade request. */
static void conn_connected(struct bench *b, struct bconn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        conn_fail(b, c, E_CONNECT);
        return;
    }
    if (b->ssl_ctx) {
        c->ssl = SSL_new(b->ssl_ctx);
        struct in_addr ip;
        bool numeric = inet_pton(AF_INET, b->host, &ip) == 1;
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
            (!numeric && !SSL_set_tlsext_host_name(c->ssl, b->host)) ||
            (!b->o.insecure && !numeric && !SSL_set1_host(c->ssl, b->host)) ||
            (!b->o.insecure && numeric &&
             !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), b->host))) {
            conn_fail(b, c, E_HANDSHAKE);
            return;
        }
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_connect_state(c->ssl); /* the first SSL_write runs the TLS handshake */
    }
    char req[2048];
    weft_handshake_key(&b->rnd, c->key);
    struct weft_client_request cr = {
        .host = b->hosthdr, .path = b->path, .extensions = b->o.deflate ? b->pmd_offer : NULL};
    int n = weft_handshake_request(req, sizeof req, &cr, c->key);
    if (n < 0) {
        conn_fail(b, c, E_HANDSHAKE);
        return;
    }
    uint8_t *at = out_reserve(c, (size_t)n);
    if (!at) {
        conn_fail(b, c, E_IO);
        return;
    }
    memcpy(at, req, (size_t)n);
    c->state = C_HANDSHAKE;
    conn_flush(b, c);
}

static void on_open(struct bench *b, struct bconn *c, uint64_t now);
static void process_frames(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                           uint64_t now);

/* Accumulates the handshake response; on a complete valid 101 the connection opens and any
 * bytes after the head are parsed as frames. */
static void handshake_input(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                            uint64_t now)
{
    if (!c->hs) {
        c->hs = malloc(HS_CAP);
        if (!c->hs) {
            conn_fail(b, c, E_IO);
            return;
        }
    }
    size_t take = len < HS_CAP - c->hs_len ? len : HS_CAP - c->hs_len;
    memcpy(c->hs + c->hs_len, data, take);
    c->hs_len += take;
    struct weft_http_response resp;
    int hl = weft_http_parse_response(c->hs, c->hs_len, HS_CAP, &resp);
    if (hl == 0 && c->hs_len < HS_CAP) return; /* need more */
    struct weft_handshake_result res;
    const char *offer = b->o.deflate ? b->pmd_offer : NULL;
    if (hl <= 0 || resp.status != 101 ||
        weft_handshake_check_response(&resp, c->key, NULL, offer, &res) != WEFT_OK) {
        conn_fail(b, c, E_HANDSHAKE);
        return;
    }
    c->pmd = false;
    if (res.extensions && res.extensions_len) {
        struct weft_pmd_params a;
        if (weft_pmd_accept(res.extensions, res.extensions_len, &b->pmd, &a) != 0) {
            conn_fail(b, c, E_HANDSHAKE);
            return;
        }
        c->pmd = true;
        c->our_nct = a.client_no_context_takeover;
        c->peer_nct = a.server_no_context_takeover;
        c->our_bits = a.client_max_window_bits;
        c->peer_bits = a.server_max_window_bits;
        b->pmd_conns++;
    }
    /* Bytes after the head (frames sent right after the 101) go to the frame parser: first
     * the rest of the head buffer, then what did not fit in it. */
    uint8_t *hs = (uint8_t *)c->hs;
    size_t hs_len = c->hs_len;
    c->hs = NULL;
    c->hs_len = 0;
    b->pending--;
    b->open++;
    b->opened_total++;
    if (b->open > b->peak_open) b->peak_open = b->open;
    c->state = C_OPEN;
    weft_msg_parser_init(&c->mp, &b->limits);
    on_open(b, c, now);
    if (hs_len > (size_t)hl && c->state == C_OPEN)
        process_frames(b, c, hs + hl, hs_len - (size_t)hl, now);
    if (len > take && c->state == C_OPEN) process_frames(b, c, data + take, len - take, now);
    free(hs);
}

/* ------------------------------------------------------------------ traffic */

/* True while messages are being sent (warm-up and measure). */
static bool sending(const struct bench *b)
{
    return b->phase == PH_WARMUP || b->phase == PH_MEASURE;
}

/* True for the modes where senders publish to a room of members (room, hub). */
static bool room_like(const struct bench *b)
{
    return b->o.mode == MODE_ROOM || b->o.mode == MODE_HUB;
}

/* True if c is a member of the room: open, and (hub) its join answered. */
static bool is_member(const struct bench *b, const struct bconn *c)
{
    return c->state == C_OPEN && (b->o.mode != MODE_HUB || c->hub == HUB_MEMBER);
}

/* The members a message goes to, its sender included (room: open connections, hub: joined
 * ones); every one but the sender gets it. */
static long room_members(const struct bench *b)
{
    return b->o.mode == MODE_HUB ? b->members : b->open;
}

/* Fills a room sender's free window slots with new messages. */
static void sender_fill(struct bench *b, struct sender *s, uint64_t now)
{
    int32_t expect = (int32_t)(room_members(b) - 1);
    if (expect <= 0 || !is_member(b, s->conn)) return;
    for (long j = 0; j < b->o.window; j++) {
        if (s->remaining[j] > 0) continue;
        s->gen[j] = (uint8_t)((s->gen[j] + 1) & 0x7f);
        s->remaining[j] = expect;
        s->sent_at[j] = now;
        if (!send_message(b, s->conn, now - b->t0, (uint32_t)(s - b->senders), (uint32_t)j,
                          s->gen[j]))
            s->remaining[j] = 0;
    }
}

/* A connection finished its handshake. */
static void on_open(struct bench *b, struct bconn *c, uint64_t now)
{
    if (b->o.mode == MODE_CONNECT) {
        if (b->phase == PH_MEASURE) hist_record(&b->lat, now - c->t_start);
        start_close(b, c);
        return;
    }
    if (b->o.mode == MODE_HUB) { /* traffic starts once every join is answered */
        if (queue_frame(b, c, WEFT_OP_TEXT, b->hub_join, b->hub_join_len)) {
            c->hub = HUB_JOINING;
            b->join_pending++;
        } else {
            conn_fail(b, c, E_IO);
        }
        return;
    }
    if (b->o.mode == MODE_ECHO && sending(b) && b->o.rate <= 0)
        for (long i = 0; i < b->o.window; i++)
            send_message(b, c, now - b->t0, 0, 0, 0);
}

/* The first bytes kept of the message being received on c. */
static uint8_t *conn_head(const struct bench *b, struct bconn *c)
{
    return b->heads ? b->heads + (size_t)c->idx * HUB_HEAD : c->in_hdr;
}

/* Counts a message received in the measured window: bytes, and the latency from ts (ns since
 * t0; UINT64_MAX when it carries none). */
static void count_received(struct bench *b, const struct bconn *c, uint64_t ts, uint64_t now)
{
    if (b->phase != PH_MEASURE) return;
    b->c.msgs++;
    b->c.bytes += c->in_len;
    if (ts != UINT64_MAX && now >= b->t0 + ts) hist_record(&b->lat, now - b->t0 - ts);
}

/* Room and hub, closed loop: sender si's message in window slot `slot` (generation gen) was
 * delivered to one more member; the slot is refilled once every other member has it. */
static void slot_delivered(struct bench *b, uint64_t si, uint64_t slot, uint64_t gen, uint64_t now)
{
    if (si >= (uint64_t)b->nsenders || slot >= (uint64_t)b->o.window) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    struct sender *s = &b->senders[si];
    if (s->gen[slot] != gen || s->remaining[slot] <= 0)
        return; /* a late delivery of a message already given up on */
    if (--s->remaining[slot] == 0 && sending(b)) sender_fill(b, s, now);
}

/* Finds key (e.g. "\"t\":") in [p, end) and reads the unsigned decimal after it. The number
 * must end before `end` (not cut by the kept head). Returns false if absent or malformed. */
static bool json_u64(const uint8_t *p, const uint8_t *end, const char *key, size_t klen,
                     uint64_t *out)
{
    const uint8_t *k = memmem(p, (size_t)(end - p), key, klen);
    if (!k) return false;
    const uint8_t *q = k + klen, *q0 = q;
    uint64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - q0 < 20)
        v = v * 10 + (uint64_t)(*q++ - '0');
    if (q == q0 || q == end || (*q >= '0' && *q <= '9')) return false;
    *out = v;
    return true;
}

/* True if [p, end) starts with the literal s. */
#define STARTS(p, end, s)                                                                          \
    ((size_t)((end) - (p)) >= sizeof(s) - 1 && !memcmp((p), (s), sizeof(s) - 1))

/* Hub: a whole message arrived on c (its first bytes kept in conn_head). A delivery
 * ("message") is counted and frees its window slot; "joined" makes c a member; "error" is a
 * protocol error (and, before "joined", a failed join); other replies ("published") pass. */
static void hub_message(struct bench *b, struct bconn *c, uint64_t now)
{
    const uint8_t *h = conn_head(b, c), *end = h + c->in_hdr_len;
    const uint8_t *ty = memmem(h, c->in_hdr_len, "\"type\":\"", 8);
    if (!ty) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    ty += 8;
    uint64_t seq = 0;
    bool has_seq = b->o.history_rate > 0 && json_u64(ty, end, "\"seq\":", 6, &seq);
    if (STARTS(ty, end, "message\"")) {
        if (b->o.history_rate > 0 && has_seq) { /* a kept message sent again: not counted */
            if (seq <= c->last_seq) {
                b->replayed++;
                return;
            }
            c->last_seq = seq;
        }
        const uint8_t *d = memmem(ty, (size_t)(end - ty), "\"data\":{", 8);
        uint64_t ts, si, slot, gen;
        if (!d || !json_u64(d + 8, end, "\"t\":", 4, &ts) ||
            !json_u64(d + 8, end, "\"s\":", 4, &si) || !json_u64(d + 8, end, "\"w\":", 4, &slot) ||
            !json_u64(d + 8, end, "\"g\":", 4, &gen)) {
            count_error(b, E_BAD_MESSAGE);
            return;
        }
        count_received(b, c, ts, now);
        if (b->o.rate <= 0) slot_delivered(b, si, slot, gen, now);
    } else if (STARTS(ty, end, "joined\"")) {
        if (has_seq && seq > c->last_seq) c->last_seq = seq;
        if (c->hub == HUB_MEMBER) b->hist_replies++; /* a --history-rate re-join */
        if (c->hub == HUB_JOINING) {
            c->hub = HUB_MEMBER;
            b->join_pending--;
            b->members++;
        }
    } else if (STARTS(ty, end, "history\"")) {
        b->hist_replies++;
    } else if (STARTS(ty, end, "error\"")) {
        count_error(b, E_PROTOCOL);
        if (c->hub == HUB_JOINING) { /* the join was refused: c stays out of the room */
            c->hub = HUB_NONE;
            b->join_pending--;
        }
    }
}

/* A whole data message arrived on c (its first bytes are in c->in_hdr, or for hub mode in
 * conn_head). */
static void on_message(struct bench *b, struct bconn *c, uint64_t now)
{
    if (b->o.mode == MODE_HUB) {
        hub_message(b, c, now);
        return;
    }
    if (c->in_len != (uint64_t)b->o.size) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    uint64_t ts = UINT64_MAX;
    if (c->in_hdr_len >= TS_BYTES) ts = get7(c->in_hdr, TS_BYTES);
    count_received(b, c, ts, now);
    if (b->o.mode == MODE_ECHO) {
        if (b->o.rate <= 0 && sending(b)) send_message(b, c, now - b->t0, 0, 0, 0);
        return;
    }
    if (b->o.mode != MODE_ROOM || b->o.rate > 0) return;
    slot_delivered(b, get7(c->in_hdr + 8, 3), get7(c->in_hdr + 11, 2), c->in_hdr[13], now);
}

/* A control frame arrived on c. */
static void on_control(struct bench *b, struct bconn *c, const struct weft_msg_event *ev)
{
    if (ev->opcode == WEFT_OP_PING) {
        queue_frame(b, c, WEFT_OP_PONG, ev->data, ev->len);
        return;
    }
    if (ev->opcode != WEFT_OP_CLOSE) return;
    if (c->state == C_CLOSING) { /* the answer to our close: done */
        if (b->o.mode == MODE_CONNECT && b->phase == PH_MEASURE) b->c.msgs++;
        conn_release(b, c);
        return;
    }
    /* The server closes: answer and count it. */
    uint8_t pl[125];
    size_t n = weft_close_payload(pl, ev->close_code == WEFT_CLOSE_NO_STATUS ? 0 : ev->close_code,
                                  NULL, 0);
    queue_frame(b, c, WEFT_OP_CLOSE, pl, n);
    conn_flush(b, c);
    if (c->fd >= 0) conn_fail(b, c, E_CLOSED);
}

/* Keeps the first bytes of a message being received (they carry the timestamp and the room
 * header; hub: the envelope and the "data" fields). */
static void keep_head(const struct bench *b, struct bconn *c, const uint8_t *data, size_t len)
{
    size_t cap = b->heads ? HUB_HEAD : ROOM_HDR;
    if (c->in_hdr_len < cap && len) {
        size_t k = cap - c->in_hdr_len;
        if (k > len) k = len;
        memcpy(conn_head(b, c) + c->in_hdr_len, data, k);
        c->in_hdr_len = (uint16_t)(c->in_hdr_len + k);
    }
}

/* Inflates the next piece of a compressed message (whole: first and fin; the shared codec
 * then serves when the server has no context takeover). Counts the inflated bytes and keeps
 * the first ones. Returns false for a corrupt stream or out of memory. */
static bool inflate_piece(struct bench *b, struct bconn *c, const uint8_t *data, size_t len,
                          bool whole, bool fin)
{
    struct weft_inflater **slot = whole && c->peer_nct ? &b->shared_infl : &c->infl;
    if (!*slot && !(*slot = weft_inflater_new(slot == &b->shared_infl ? 15 : c->peer_bits)))
        return false;
    size_t off = 0;
    for (;;) {
        size_t used = 0, made = 0;
        int r = weft_inflate(*slot, data + off, len - off, fin, c->peer_nct, b->zin, ZIN_CAP, &used,
                             &made);
        if (r < 0) {
            weft_inflater_reset(*slot);
            return false;
        }
        off += used;
        keep_head(b, c, b->zin, made);
        c->in_len += made;
        if (r == 0) return true;
    }
}

/* Parses received bytes as frames and dispatches the messages. */
static void process_frames(struct bench *b, struct bconn *c, uint8_t *data, size_t len,
                           uint64_t now)
{
    size_t off = 0;
    while (off < len && c->fd >= 0 && (c->state == C_OPEN || c->state == C_CLOSING)) {
        struct weft_msg_event ev;
        size_t used = 0;
        enum weft_msg_event_type t = weft_msg_parse(&c->mp, data + off, len - off, &used, &ev);
        off += used;
        switch (t) {
        case WEFT_MSG_NEED_MORE:
            return;
        case WEFT_MSG_DATA:
            if (ev.first) {
                c->in_len = 0;
                c->in_hdr_len = 0;
                c->in_z = ev.compressed;
            }
            if (c->in_z) {
                if (!inflate_piece(b, c, ev.data, ev.len, ev.first && ev.fin, ev.fin)) {
                    conn_fail(b, c, E_PROTOCOL);
                    return;
                }
            } else {
                keep_head(b, c, ev.data, ev.len);
                c->in_len += ev.len;
            }
            if (ev.fin && c->state == C_OPEN) on_message(b, c, now);
            break;
        case WEFT_MSG_CONTROL:
            on_control(b, c, &ev);
            break;
        case WEFT_MSG_ERROR:
            conn_fail(b, c, E_PROTOCOL);
            return;
        }
    }
}

/* --read-rate: bytes one throttled read may take (50 ms worth, at least 1). */
static size_t read_chunk(const struct bench *b)
{
    double n = b->o.read_rate / 20;
    return n < 1 ? 1 : n > RBUF_SIZE ? RBUF_SIZE : (size_t)n;
}

/* Reads everything c has (edge-triggered: until EAGAIN or a short read). With --read-rate an
 * open connection reads one chunk, then waits until the rate allows the next (read_scan
 * comes back to it). */
static void conn_readable(struct bench *b, struct bconn *c)
{
    for (;;) {
        bool throttled = b->o.read_rate > 0 && c->state == C_OPEN;
        size_t cap = RBUF_SIZE;
        if (throttled) {
            if (now_ns() < c->read_at) {
                c->read_pending = true;
                return;
            }
            cap = read_chunk(b);
        }
        ssize_t n = c->ssl ? tls_result(b, c, SSL_read(c->ssl, b->rbuf, (int)cap))
                           : recv(c->fd, b->rbuf, cap, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->read_pending = false;
            return;
        }
        if (n <= 0) {
            if (c->state == C_CLOSING) { /* closing: EOF is as good as the close frame */
                if (b->o.mode == MODE_CONNECT && b->phase == PH_MEASURE) b->c.msgs++;
                conn_release(b, c);
            } else {
                conn_fail(b, c,
                          c->ssl && c->state == C_HANDSHAKE ? E_HANDSHAKE
                          : n == 0                          ? E_CLOSED
                                                            : E_IO);
            }
            return;
        }
        uint64_t now = now_ns();
        if (c->state == C_HANDSHAKE)
            handshake_input(b, c, b->rbuf, (size_t)n, now);
        else
            process_frames(b, c, b->rbuf, (size_t)n, now);
        if (throttled && c->fd >= 0) {
            c->read_at = now + (uint64_t)((double)n * 1e9 / b->o.read_rate);
            c->read_pending = true; /* maybe more: read_scan reads on when the time comes */
            return;
        }
        if (c->fd < 0 || (!c->ssl && (size_t)n < RBUF_SIZE))
            return; /* TLS reads one record at a time: read on until it wants more */
    }
}

/* Handles one epoll event. */
static void on_event(struct bench *b, struct bconn *c, uint32_t events)
{
    if (c->fd < 0) return;
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_connected(b, c);
        return;
    }
    if (c->ssl) /* TLS may want to read to write or the reverse: try both on any event */
        events |= EPOLLIN | EPOLLOUT;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) conn_readable(b, c);
    if (c->fd >= 0 && (events & EPOLLOUT) && c->out_off < c->out_len) conn_flush(b, c);
}

/* ------------------------------------------------------------------ scheduling */

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

/* Open loop: sends every message whose intended time has come, round-robin over the open
 * connections (echo) or the senders (room), each stamped with its intended time. Returns the
 * ns until the next one is due. */
static uint64_t open_loop_step(struct bench *b, uint64_t now)
{
    double interval = 1e9 / b->o.rate;
    long budget = 20000; /* bounded work per iteration: the loop must keep reading */
    for (;;) {
        uint64_t due = b->send_start + (uint64_t)((double)b->next_k * interval);
        if (due > now) return due - now;
        if (budget-- == 0) return 0;
        struct bconn *c = NULL;
        uint32_t si = 0;
        bool room = room_like(b);
        long tries = room ? b->nsenders : b->nconns;
        while (tries-- > 0) {
            long i = b->rr++;
            if (room) {
                si = (uint32_t)(i % b->nsenders);
                c = b->senders[si].conn;
            } else {
                c = &b->conns[i % b->nconns];
            }
            if (is_member(b, c)) break;
            c = NULL;
        }
        b->next_k++;
        if (c) send_message(b, c, due - b->t0, si, 0, 0);
    }
}

/* Room closed loop: gives up on window slots whose deliveries did not all arrive in time
 * (counting the missing ones as lost) and refills them. */
static void room_scan(struct bench *b, uint64_t now)
{
    uint64_t limit = 2 * NS_PER_S;
    for (long i = 0; i < b->nsenders; i++) {
        struct sender *s = &b->senders[i];
        bool refill = false;
        for (long j = 0; j < b->o.window; j++)
            if (s->remaining[j] > 0 && now - s->sent_at[j] > limit) {
                b->errors[E_LOST] += (uint64_t)s->remaining[j];
                s->remaining[j] = 0;
                refill = true;
            }
        if (refill && sending(b)) sender_fill(b, s, now);
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

/* Hub --history-rate: sends the requests that are due, each from the next member in turn,
 * alternating {"type":"history","since":S} and a re-join {"type":"join","since":S} (S: the
 * member's last seen seq minus HIST_BACK). Returns the ns until the next one is due. */
static uint64_t history_step(struct bench *b, uint64_t now)
{
    uint64_t interval = (uint64_t)(1e9 / b->o.history_rate);
    if (interval == 0) interval = 1;
    for (long budget = 1000; b->hist_next <= now && budget > 0; budget--) {
        b->hist_next += interval;
        struct bconn *c = NULL;
        for (long tries = b->nconns; tries > 0 && !c; tries--) {
            struct bconn *x = &b->conns[b->hist_rr++ % b->nconns];
            if (is_member(b, x)) c = x;
        }
        if (!c) continue;
        uint64_t since = c->last_seq > HIST_BACK ? c->last_seq - HIST_BACK : 0;
        char req[256];
        int n = snprintf(req, sizeof req, "{\"type\":\"%s\",\"room\":\"%s\",\"since\":%" PRIu64 "}",
                         b->hist_reqs & 1 ? "join" : "history", b->o.room, since);
        if (n > 0 && (size_t)n < sizeof req && queue_frame(b, c, WEFT_OP_TEXT, req, (size_t)n))
            b->hist_reqs++;
    }
    return b->hist_next > now ? b->hist_next - now : 0;
}

/* Starts traffic: room and hub senders fill their windows, echo connections theirs. */
static void start_traffic(struct bench *b, uint64_t now)
{
    b->send_start = now;
    b->next_k = 0;
    b->hist_next = now;
    b->members_start = room_like(b) ? room_members(b) : 0;
    if (b->o.rate > 0) return;
    if (b->o.mode == MODE_ECHO) {
        for (long i = 0; i < b->nconns; i++)
            if (b->conns[i].state == C_OPEN) on_open(b, &b->conns[i], now);
    } else if (room_like(b)) {
        for (long i = 0; i < b->nsenders; i++)
            sender_fill(b, &b->senders[i], now);
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

/* The event loop: runs the phases to the end. Returns 0, or 1 if epoll failed. */
static int run(struct bench *b)
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

/* ------------------------------------------------------------------ report */

/* Prints the summary as text. */
static void report_text(const struct bench *b)
{
    const struct options *o = &b->o;
    double secs = (double)(b->m_t1 - b->m_t0) / 1e9;
    double rate = secs > 0 ? (double)b->c.msgs / secs : 0;
    double mbs = secs > 0 ? (double)b->c.bytes / secs / 1e6 : 0;
    double self = secs > 0 ? (b->self_cpu1 - b->self_cpu0) / secs * 100.0 : 0;
    printf("weft bench: %s %s\n", mode_names[o->mode], o->url);
    printf("  setup      %ld connections", o->conns);
    if (o->mode == MODE_ROOM) printf(" (%ld senders)", b->nsenders);
    if (o->mode == MODE_HUB)
        printf(" (%ld senders, %ld joined room \"%s\")", b->nsenders, b->members_start, o->room);
    if (o->mode == MODE_ECHO || room_like(b)) {
        if (o->rate > 0)
            printf(", open loop %.0f msgs/s", o->rate);
        else
            printf(", %ld in flight", o->window);
        if (o->mode == MODE_HUB)
            printf(", %ld-byte \"data\"", o->size);
        else
            printf(", %ld-byte %s messages", o->size, o->binary ? "binary" : "text");
    }
    printf(", %.1f s measured", secs);
    if (o->mode != MODE_IDLE) printf(" after %.1f s warm-up", o->warmup);
    printf("; %ld opened (peak %ld open)\n", b->opened_total, b->peak_open);
    if (o->deflate)
        printf("  transport  %s, offered \"%s\": negotiated on %ld connections\n",
               o->tls ? "TLS" : "plain", b->pmd_offer, b->pmd_conns);
    else if (o->tls)
        printf("  transport  TLS\n");
    if (o->read_rate > 0)
        printf("  reading    at most %.0f bytes/s per connection (slow readers)\n", o->read_rate);
    if (o->history_rate > 0)
        printf("  history    %" PRIu64 " requests (history, join with since), %" PRIu64
               " answered, %" PRIu64 " kept messages replayed\n",
               b->hist_reqs, b->hist_replies, b->replayed);
    if (o->mode == MODE_ECHO || room_like(b)) {
        printf("  %-10s %" PRIu64 " (%.0f msgs/s, %.2f MB/s)\n",
               room_like(b) ? "deliveries" : "messages", b->c.msgs, rate, mbs);
    } else if (o->mode == MODE_CONNECT) {
        printf("  cycles     %" PRIu64 " open + close (%.0f handshakes/s)\n", b->c.msgs, rate);
    }
    if (o->mode != MODE_IDLE) {
        const struct hist *h = &b->lat;
        if (h->count) {
            printf("  latency    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us"
                   " (%s)\n",
                   (double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 90) / 1e3,
                   (double)hist_percentile(h, 99) / 1e3, (double)hist_percentile(h, 99.9) / 1e3,
                   (double)h->max / 1e3, hist_mean(h) / 1e3,
                   o->mode == MODE_CONNECT ? "connect to 101"
                   : o->rate > 0           ? "from the intended send time"
                                           : "closed loop, from the send");
        } else {
            printf("  latency    none measured%s\n",
                   o->size < TS_BYTES && o->mode == MODE_ECHO ? " (needs -s 8 or more)" : "");
        }
    }
    printf("  errors     ");
    if (!errors_total(b)) {
        printf("none\n");
    } else {
        const char *sep = "";
        for (int i = 0; i < E__N; i++)
            if (b->errors[i]) {
                printf("%s%s %" PRIu64, sep, err_names[i], b->errors[i]);
                sep = ", ";
            }
        printf("\n");
    }
    printf("  generator  %.0f %% of a core\n", self);
    if (o->server_pid) {
        double scpu = b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0 ? b->srv_cpu1 - b->srv_cpu0 : -1;
        printf("  server     pid %ld:", o->server_pid);
        if (scpu >= 0 && secs > 0) printf(" %.0f %% of a core", scpu / secs * 100.0);
        if (scpu >= 0 && b->c.msgs)
            printf(", %.3f us CPU per %s", scpu * 1e6 / (double)b->c.msgs,
                   room_like(b)              ? "delivery"
                   : o->mode == MODE_CONNECT ? "open+close"
                                             : "message");
        if (b->rss_after >= 0) printf(", RSS %ld KiB", b->rss_after);
        if (o->mode == MODE_IDLE && b->rss_before >= 0 && b->rss_after >= 0 && b->peak_open > 0)
            printf(" (%.2f KiB per connection over %ld KiB before)",
                   (double)(b->rss_after - b->rss_before) / (double)b->peak_open, b->rss_before);
        printf("\n");
    }
    if (self > 90.0)
        printf("WARNING: the generator used %.0f %% of a core: it, not the server, may be the "
               "bottleneck; the throughput is a lower bound\n",
               self);
}

/* Prints the summary as one JSON object (keys documented in usage()). */
static void report_json(const struct bench *b)
{
    const struct options *o = &b->o;
    const struct hist *h = &b->lat;
    double secs = (double)(b->m_t1 - b->m_t0) / 1e9;
    double self = secs > 0 ? (b->self_cpu1 - b->self_cpu0) / secs * 100.0 : 0;
    printf("{\"mode\": \"%s\", \"url\": \"", mode_names[o->mode]);
    for (const char *p = o->url; *p; p++) /* escape for JSON */
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    printf("\", \"connections\": %ld, \"opened\": %ld, \"peak_open\": %ld, \"senders\": %ld, "
           "\"members\": %ld, \"size\": %ld, \"window\": %ld, \"rate\": %.0f, \"binary\": %s, "
           "\"warmup_s\": %.3f, \"duration_s\": %.3f, ",
           o->conns, b->opened_total, b->peak_open, room_like(b) ? b->nsenders : 0,
           b->members_start, o->size, o->window, o->rate, o->binary ? "true" : "false", o->warmup,
           secs);
    printf("\"tls\": %s, \"deflate_conns\": %ld, ", o->tls ? "true" : "false", b->pmd_conns);
    printf("\"read_rate\": %.0f, \"history_requests\": %" PRIu64 ", \"history_replies\": %" PRIu64
           ", \"replayed\": %" PRIu64 ", ",
           o->read_rate, b->hist_reqs, b->hist_replies, b->replayed);
    printf("\"messages\": %" PRIu64 ", \"sent\": %" PRIu64 ", \"msgs_per_s\": %.1f, "
           "\"mb_per_s\": %.3f, ",
           b->c.msgs, b->c.sent, secs > 0 ? (double)b->c.msgs / secs : 0.0,
           secs > 0 ? (double)b->c.bytes / secs / 1e6 : 0.0);
    printf("\"latency_us\": {\"count\": %" PRIu64 ", \"min\": %.3f, \"mean\": %.3f, "
           "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}, ",
           h->count, h->count ? (double)h->min / 1e3 : 0.0, hist_mean(h) / 1e3,
           (double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 90) / 1e3,
           (double)hist_percentile(h, 99) / 1e3, (double)hist_percentile(h, 99.9) / 1e3,
           (double)h->max / 1e3);
    printf("\"errors\": {\"total\": %" PRIu64, errors_total(b));
    for (int i = 0; i < E__N; i++)
        printf(", \"%s\": %" PRIu64, err_names[i], b->errors[i]);
    printf("}, \"client_cpu_pct\": %.1f, \"generator_bound\": %s, ", self,
           self > 90.0 ? "true" : "false");
    double scpu =
        o->server_pid && b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0 ? b->srv_cpu1 - b->srv_cpu0 : -1;
    if (!o->server_pid) {
        printf("\"server\": null}\n");
        return;
    }
    printf("\"server\": {\"pid\": %ld, ", o->server_pid);
    if (scpu >= 0 && secs > 0)
        printf("\"cpu_pct\": %.1f, ", scpu / secs * 100.0);
    else
        printf("\"cpu_pct\": null, ");
    if (scpu >= 0 && b->c.msgs)
        printf("\"cpu_us_per_msg\": %.4f, ", scpu * 1e6 / (double)b->c.msgs);
    else
        printf("\"cpu_us_per_msg\": null, ");
    printf("\"rss_before_kib\": %ld, \"rss_kib\": %ld, ", b->rss_before, b->rss_after);
    if (b->rss_before >= 0 && b->rss_after >= 0 && b->peak_open > 0)
        printf("\"rss_per_conn_kib\": %.3f}}\n",
               (double)(b->rss_after - b->rss_before) / (double)b->peak_open);
    else
        printf("\"rss_per_conn_kib\": null}}\n");
}

/* ------------------------------------------------------------------ options */

/* Prints the usage text. */
static void usage(FILE *f)
{
    fputs("usage: weft bench [options] URL        URL: ws://HOST:PORT/PATH (HOST an IPv4 address\n"
          "                                       or a name; e.g. ws://127.0.0.1:8080/echo)\n"
          "\n"
          "A WebSocket load generator (one thread, its own epoll loop).\n"
          "\n"
          "modes (--mode, default echo):\n"
          "  echo       every connection keeps -w messages in flight (or -r: open loop)\n"
          "  room       all connections join the URL's room (/ws/NAME); the first --senders send,\n"
          "             every delivery is counted at every member; -w messages in flight per\n"
          "             sender, a message leaving the window when all other members have it\n"
          "  hub        room over the /hub JSON protocol (URL path /hub, the default): every\n"
          "             connection joins --room, traffic starts once every join is answered;\n"
          "             the first --senders publish "
          "{\"t\":..,\"s\":..,\"w\":..,\"g\":..,\"p\":\"..\"}\n"
          "             as \"data\" (text), every other member's delivery is counted (the\n"
          "             publisher gets none: the server excludes it); -w as in room mode;\n"
          "             error replies count as protocol errors\n"
          "  connect    -c concurrent open / 101 / close-handshake cycles: handshakes per second\n"
          "  idle       open -c connections and hold them -d seconds; with --server-pid the\n"
          "             server's RSS per connection\n"
          "\n"
          "options:\n"
          "  -c, --connections N   connections (default 100; connect mode: concurrent cycles, 10)\n"
          "  -s, --size BYTES      payload size (default 64; room needs 14 or more; latency 8;\n"
          "                        hub: size of \"data\", at least its fields, about 45 bytes)\n"
          "  -w, --window W        messages in flight per connection / sender (default 8; room\n"
          "                        and hub 1)\n"
          "  -r, --rate R          open loop: R messages/s in total (latency from the intended\n"
          "                        send time); 0 = closed loop (default)\n"
          "  -k, --senders K       room, hub: members that send (default 1)\n"
          "      --room NAME       hub: the room joined (default bench)\n"
          "      --history-rate R  hub: R requests/s in total, from the members in turn,\n"
          "                        alternating \"history\" and a re-join (\"join\"), both\n"
          "                        with \"since\" = the member's last seen seq - 50; the kept\n"
          "                        messages sent again are counted apart (replayed)\n"
          "      --read-rate B     slow readers: each open connection reads at most B\n"
          "                        bytes/s (16 KiB receive buffer), so the server's queue\n"
          "                        fills; 0 = read everything (default)\n"
          "  -d, --duration SEC    measured seconds (default 5)\n"
          "      --warmup SEC      traffic before measuring (default 1)\n"
          "      --ramp N          open N connections per second (default 0 = as fast as\n"
          "                        possible, at most 256 handshakes at once)\n"
          "      --text            send text messages\n"
          "      --binary          send binary messages (default)\n"
          "      --local-addr A[-B]  bind source addresses A..B round-robin (e.g.\n"
          "                        127.0.0.1-127.0.0.50), for more than ~28k connections\n"
          "      --server-pid PID  report the server's CPU per message (/proc/PID/stat, utime +\n"
          "                        stime over the measured window) and its RSS\n"
          "      --json            print one JSON object on stdout instead of the text summary\n"
          "      --payload KIND    abc (a-z pattern, default), json (JSON-like records) or\n"
          "                        random (random printable bytes)\n"
          "      --deflate         offer permessage-deflate; when accepted, every data message\n"
          "                        is sent compressed and received ones are inflated\n"
          "      --tls             TLS (as with a wss:// URL)\n"
          "      --cacert FILE     TLS: trust the CAs in FILE (PEM) instead of the system's\n"
          "      --insecure        TLS: no certificate verification (self-signed servers)\n"
          "  -h, --help            this text\n"
          "\n"
          "JSON keys: mode url connections opened peak_open senders members size window rate\n"
          "  binary tls deflate_conns warmup_s duration_s messages sent msgs_per_s mb_per_s\n"
          "  latency_us{count min mean p50\n"
          "  p90 p99 p999 max} errors{total connect handshake timeout protocol closed io\n"
          "  bad_message lost backlog} read_rate history_requests history_replies replayed\n"
          "  client_cpu_pct generator_bound server (null without\n"
          "  --server-pid, else {pid cpu_pct cpu_us_per_msg rss_before_kib rss_kib\n"
          "  rss_per_conn_kib}).\n"
          "messages = echoes (echo), deliveries (room, hub), open+close cycles (connect), 0\n"
          "  (idle); members = room / hub members when traffic started (hub: joins answered).\n"
          "  In hub mode sent counts publishes and mb_per_s the whole deliveries (JSON).\n"
          "A live progress line goes to stderr on a terminal. Exit status: 0 done (errors are\n"
          "reported, not fatal), 1 nothing could be measured, 2 bad usage.\n",
          f);
}

/* Reports a usage error (one line with a hint to --help) and returns 2. */
#define usage_error(...) cli_usage_error("bench", __VA_ARGS__)

/* Reports a bad option value and returns 2. */
static int bad_value(const char *opt, const char *val, const char *why)
{
    return usage_error("bad value '%s' for --%s: %s", val, opt, why);
}

/* Parses a whole decimal integer in [lo, hi]. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Parses a finite number in [lo, hi]. */
static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* True if s is a /hub room name: 1 to 128 bytes of A-Z a-z 0-9 _ - . : @ (JSON-safe). */
static bool room_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("_-.:@", s[i]) && !(s[i] >= 'a' && s[i] <= 'z') &&
            !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
            return false;
    return true;
}

/* Parses "A" or "A-B" (IPv4, A <= B, at most 65536 addresses). */
static bool parse_local(const char *s, uint32_t *lo, uint32_t *hi)
{
    char a[64], bb[64];
    const char *dash = strchr(s, '-');
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    if (al == 0 || al >= sizeof a) return false;
    memcpy(a, s, al);
    a[al] = '\0';
    snprintf(bb, sizeof bb, "%s", dash ? dash + 1 : a);
    struct in_addr x, y;
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, bb, &y) != 1) return false;
    *lo = ntohl(x.s_addr);
    *hi = ntohl(y.s_addr);
    return *lo != 0 && *lo <= *hi && *hi - *lo < 65536;
}

/* Splits ws://HOST[:PORT][/PATH] and resolves HOST (IPv4). Returns 0, 1 for a resolution
 * failure, or 2 for a malformed URL (message printed). */
static int parse_url(struct bench *b, const char *url)
{
    bool wss = !strncmp(url, "wss://", 6);
    if (wss)
        b->o.tls = true;
    else if (strncmp(url, "ws://", 5)) {
        return usage_error("URL must start with ws:// or wss:// (got '%s')", url);
    }
    const char *h = url + (wss ? 6 : 5);
    const char *slash = strchr(h, '/');
    size_t hostport_len = slash ? (size_t)(slash - h) : strlen(h);
    char hostport[256], host[256];
    if (hostport_len == 0 || hostport_len >= sizeof hostport) {
        return usage_error("bad host in '%s'", url);
    }
    memcpy(hostport, h, hostport_len);
    hostport[hostport_len] = '\0';
    long port = b->o.tls ? 443 : 80;
    char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[') {
        return usage_error("IPv6 addresses are not supported yet");
    }
    if (colon) {
        if (!parse_long(colon + 1, 1, 65535, &port)) {
            return usage_error("bad port in '%s'", url);
        }
        *colon = '\0';
    }
    snprintf(host, sizeof host, "%s", hostport);
    if (!host[0]) {
        return usage_error("bad host in '%s'", url);
    }
    snprintf(b->path, sizeof b->path, "%s", slash ? slash : b->o.mode == MODE_HUB ? "/hub" : "/");
    snprintf(b->host, sizeof b->host, "%s", host);
    if (port == (b->o.tls ? 443 : 80))
        snprintf(b->hosthdr, sizeof b->hosthdr, "%s", host);
    else
        snprintf(b->hosthdr, sizeof b->hosthdr, "%s:%ld", host, port);
    b->addr.sin_family = AF_INET;
    b->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &b->addr.sin_addr) == 1) return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "weft bench: cannot resolve '%s': %s\n", host, gai_strerror(rc));
        return 1;
    }
    b->addr.sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

enum {
    OPT_WARMUP = 256,
    OPT_RAMP,
    OPT_TEXT,
    OPT_BINARY,
    OPT_LOCAL,
    OPT_SERVER_PID,
    OPT_JSON,
    OPT_DEFLATE,
    OPT_TLS,
    OPT_MODE,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_PAYLOAD,
    OPT_ROOM,
    OPT_READ_RATE,
    OPT_HISTORY_RATE,
};

/* Parses the command line into b->o. Returns -1 to go on, or an exit status. */
static int parse_options(struct bench *b, int argc, char **argv)
{
    static const struct option longs[] = {
        {"mode", required_argument, NULL, OPT_MODE},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"senders", required_argument, NULL, 'k'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"text", no_argument, NULL, OPT_TEXT},
        {"binary", no_argument, NULL, OPT_BINARY},
        {"local-addr", required_argument, NULL, OPT_LOCAL},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"json", no_argument, NULL, OPT_JSON},
        {"deflate", no_argument, NULL, OPT_DEFLATE},
        {"tls", no_argument, NULL, OPT_TLS},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"room", required_argument, NULL, OPT_ROOM},
        {"read-rate", required_argument, NULL, OPT_READ_RATE},
        {"history-rate", required_argument, NULL, OPT_HISTORY_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options *o = &b->o;
    *o = (struct options){.mode = MODE_ECHO,
                          .conns = -1,
                          .size = 64,
                          .window = -1,
                          .senders = 1,
                          .duration = 5,
                          .warmup = 1,
                          .binary = true};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":c:s:w:r:k:d:h", longs, NULL)) != -1) {
        switch (ch) {
        case OPT_MODE:
            if (!strcmp(optarg, "echo"))
                o->mode = MODE_ECHO;
            else if (!strcmp(optarg, "room"))
                o->mode = MODE_ROOM;
            else if (!strcmp(optarg, "connect"))
                o->mode = MODE_CONNECT;
            else if (!strcmp(optarg, "idle"))
                o->mode = MODE_IDLE;
            else if (!strcmp(optarg, "hub"))
                o->mode = MODE_HUB;
            else
                return bad_value("mode", optarg, "expected echo, room, hub, connect or idle");
            break;
        case 'c':
            if (!parse_long(optarg, 1, 10000000, &o->conns))
                return bad_value("connections", optarg, "expected 1 or more");
            break;
        case 's':
            if (!parse_long(optarg, 0, MAX_SIZE, &o->size))
                return bad_value("size", optarg, "expected 0 to 16777216 bytes");
            break;
        case 'w':
            if (!parse_long(optarg, 1, MAX_WINDOW, &o->window))
                return bad_value("window", optarg, "expected 1 to 16383");
            break;
        case 'r':
            if (!parse_double(optarg, 0, 1e9, &o->rate))
                return bad_value("rate", optarg, "expected messages per second (0 = closed loop)");
            break;
        case 'k':
            if (!parse_long(optarg, 1, MAX_SENDERS, &o->senders))
                return bad_value("senders", optarg, "expected 1 or more");
            break;
        case 'd':
            if (!parse_double(optarg, 0.001, 1e6, &o->duration))
                return bad_value("duration", optarg, "expected seconds (> 0)");
            break;
        case OPT_WARMUP:
            if (!parse_double(optarg, 0, 1e6, &o->warmup))
                return bad_value("warmup", optarg, "expected seconds");
            break;
        case OPT_RAMP:
            if (!parse_double(optarg, 0, 1e9, &o->ramp))
                return bad_value("ramp", optarg, "expected connections per second (0 = no ramp)");
            break;
        case OPT_TEXT:
            o->binary = false;
            break;
        case OPT_BINARY:
            o->binary = true;
            o->binary_given = true;
            break;
        case OPT_LOCAL:
            if (!parse_local(optarg, &o->local_lo, &o->local_hi))
                return bad_value("local-addr", optarg, "expected IPv4 A or A-B (A <= B)");
            break;
        case OPT_SERVER_PID:
            if (!parse_long(optarg, 1, 0x7fffffff, &o->server_pid))
                return bad_value("server-pid", optarg, "expected a process id");
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_DEFLATE:
            o->deflate = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_CACERT:
            o->cacert = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_PAYLOAD:
            if (!strcmp(optarg, "abc"))
                o->payload = 0;
            else if (!strcmp(optarg, "json"))
                o->payload = 1;
            else if (!strcmp(optarg, "random"))
                o->payload = 2;
            else
                return bad_value("payload", optarg, "expected abc, json or random");
            break;
        case OPT_ROOM:
            if (!room_name_ok(optarg))
                return bad_value("room", optarg,
                                 "expected 1 to 128 bytes of A-Z a-z 0-9 _ - . : @");
            o->room = optarg;
            break;
        case OPT_READ_RATE:
            if (!parse_double(optarg, 0, 1e12, &o->read_rate))
                return bad_value("read-rate", optarg, "expected bytes per second (0 = no limit)");
            break;
        case OPT_HISTORY_RATE:
            if (!parse_double(optarg, 0, 1e6, &o->history_rate))
                return bad_value("history-rate", optarg, "expected requests per second");
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256)
                return usage_error("unknown option '-%c'", optopt);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "missing URL" : "more than one URL");
    o->url = argv[optind];
    if (o->conns < 0) o->conns = o->mode == MODE_CONNECT ? 10 : 100;
    if (o->window < 0) o->window = o->mode == MODE_ROOM || o->mode == MODE_HUB ? 1 : 8;
    if (o->history_rate > 0 && o->mode != MODE_HUB) {
        return usage_error("--history-rate is for --mode hub");
    }
    if (o->room && o->mode != MODE_HUB) {
        return usage_error("--room is for --mode hub (room mode: the URL's path)");
    }
    if (o->mode == MODE_HUB) {
        if (o->binary_given) {
            return usage_error("hub mode sends JSON text: --binary does not apply");
        }
        o->binary = false;
        if (!o->room) o->room = "bench";
    }
    if (o->mode == MODE_ROOM || o->mode == MODE_HUB) {
        if (o->mode == MODE_ROOM && o->size < ROOM_HDR) {
            return usage_error("room mode needs -s %d or more (the payload carries a "
                               "timestamp, the sender and the window slot)",
                               ROOM_HDR);
        }
        if (o->conns < 2) {
            return usage_error("%s mode needs at least 2 connections",
                    mode_names[o->mode]);
        }
        if (o->senders > o->conns) {
            return usage_error("--senders %ld is more than -c %ld", o->senders,
                    o->conns);
        }
    }
    return -1;
}

/* Raises RLIMIT_NOFILE to the hard limit; warns if it cannot fit n connections. */
static void raise_nofile(long n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 16 > rl.rlim_cur)
        fprintf(stderr,
                "weft bench: warning: the open-file limit (%llu) is below %ld connections; "
                "the rest will fail\n",
                (unsigned long long)rl.rlim_cur, n);
}

/* Fills the message template: an a-z pattern, JSON-like records or random printable
 * bytes (all valid UTF-8, so --text works with each). */
static void fill_payload(struct bench *b)
{
    uint8_t *p = b->payload;
    size_t n = (size_t)b->o.size;
    if (b->o.payload == 1) {
        size_t i = 0;
        for (unsigned k = 0; i < n; k++) {
            char rec[128];
            int w = snprintf(rec, sizeof rec,
                             "{\"id\":%u,\"user\":\"user%u\",\"room\":\"lobby\",\"text\":"
                             "\"hello %u\",\"ts\":%u},",
                             1000 + k * 7, k % 13, k * 31, 1700000000u + k);
            size_t m = w > 0 ? (size_t)w : 0;
            if (m > n - i) m = n - i;
            memcpy(p + i, rec, m);
            i += m;
        }
        return;
    }
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        if (b->o.payload == 2) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            p[i] = (uint8_t)(' ' + (r >> 32) % 95);
        } else {
            p[i] = (uint8_t)('a' + i % 26);
        }
    }
}

/* The TLS client context: TLS 1.2+, ALPN http/1.1, verification against the system store or
 * --cacert unless --insecure. Returns false (message printed) on failure. */
static bool tls_setup(struct bench *b)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    b->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!b->ssl_ctx) return false;
    SSL_CTX_set_min_proto_version(b->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_protos(b->ssl_ctx, alpn, sizeof alpn - 1);
    if (b->o.insecure) {
        SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_NONE, NULL);
        return true;
    }
    SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = b->o.cacert ? SSL_CTX_load_verify_locations(b->ssl_ctx, b->o.cacert, NULL)
                         : SSL_CTX_set_default_verify_paths(b->ssl_ctx);
    if (ok != 1) {
        fprintf(stderr, "weft bench: cannot load CA certificates%s%s\n",
                b->o.cacert ? " from " : "", b->o.cacert ? b->o.cacert : "");
        return false;
    }
    return true;
}

/* Hub mode: the join request, the publish buffer with its fixed prefix, the kept heads;
 * the padding made safe inside a JSON string. Returns false when out of memory. */
static bool hub_setup(struct bench *b)
{
    const char *room = b->o.room;
    size_t rl = strlen(room);
    b->hub_join = malloc(rl + 64);
    b->hub_buf_cap = rl + 128 + (size_t)b->o.size;
    b->hub_buf = malloc(b->hub_buf_cap);
    b->heads = malloc((size_t)b->nconns * HUB_HEAD);
    if (!b->hub_join || !b->hub_buf || !b->heads) return false;
    b->hub_join_len = (size_t)snprintf(b->hub_join, rl + 64,
                                       "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"join\"}", room);
    b->hub_pre_len = (size_t)snprintf(b->hub_buf, b->hub_buf_cap,
                                      "{\"type\":\"publish\",\"room\":\"%s\",\"data\":", room);
    for (long i = 0; i < b->o.size; i++) /* printable ASCII already; no quote, no backslash */
        if (b->payload[i] == '"')
            b->payload[i] = '\'';
        else if (b->payload[i] == '\\')
            b->payload[i] = '/';
    return true;
}

/* Allocates the connections, senders and buffers. Returns false when out of memory. */
static bool setup(struct bench *b)
{
    if (b->o.tls && b->o.insecure && !b->o.json)
        fputs("weft bench: warning: --insecure: the server's certificate is not verified\n",
              stderr);
    b->nconns = b->o.conns;
    b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
    b->rbuf = malloc(RBUF_SIZE);
    b->payload = malloc((size_t)b->o.size + 1);
    if (!b->conns || !b->rbuf || !b->payload) return false;
    for (long i = 0; i < b->nconns; i++) {
        b->conns[i].fd = -1;
        b->conns[i].idx = (uint32_t)i;
    }
    fill_payload(b);
    b->limits =
        (struct weft_msg_limits){.frame = {.role = WEFT_ROLE_CLIENT}, .validate_utf8 = false};
    if (b->o.deflate) {
        b->pmd.enabled = true; /* the server decides on context takeover and windows */
        b->zin = malloc(ZIN_CAP);
        if (!b->zin || weft_pmd_offer(&b->pmd, b->pmd_offer, sizeof b->pmd_offer) < 0) return false;
        b->limits.frame.allowed_rsv = 4;
    }
    if (b->o.tls && !tls_setup(b)) return false;
    if (b->o.mode == MODE_HUB && !hub_setup(b)) return false;
    if (room_like(b)) {
        b->nsenders = b->o.senders;
        b->senders = calloc((size_t)b->nsenders, sizeof *b->senders);
        if (!b->senders) return false;
        for (long i = 0; i < b->nsenders; i++) {
            struct sender *s = &b->senders[i];
            s->conn = &b->conns[i];
            s->conn->sender = true;
            s->conn->sender_idx = (uint32_t)i;
            s->remaining = calloc((size_t)b->o.window, sizeof *s->remaining);
            s->gen = calloc((size_t)b->o.window, sizeof *s->gen);
            s->sent_at = calloc((size_t)b->o.window, sizeof *s->sent_at);
            if (!s->remaining || !s->gen || !s->sent_at) return false;
        }
    }
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    return b->ep >= 0;
}

/* Frees everything setup() allocated. */
static void teardown(struct bench *b)
{
    if (b->conns)
        for (long i = 0; i < b->nconns; i++) {
            SSL_free(b->conns[i].ssl);
            weft_deflater_free(b->conns[i].defl);
            weft_inflater_free(b->conns[i].infl);
            if (b->conns[i].fd >= 0) close(b->conns[i].fd);
            free(b->conns[i].out);
            free(b->conns[i].hs);
        }
    for (size_t i = 0; i < 16; i++)
        weft_deflater_free(b->shared_defl[i]);
    weft_inflater_free(b->shared_infl);
    free(b->zbuf);
    free(b->zin);
    SSL_CTX_free(b->ssl_ctx);
    for (long i = 0; b->senders && i < b->nsenders; i++) {
        free(b->senders[i].remaining);
        free(b->senders[i].gen);
        free(b->senders[i].sent_at);
    }
    free(b->senders);
    free(b->heads);
    free(b->hub_join);
    free(b->hub_buf);
    free(b->conns);
    free(b->rbuf);
    free(b->payload);
    if (b->ep >= 0) close(b->ep);
}

/* `weft bench`: see usage(). Returns the exit status. */
int cmd_bench(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (!b) {
        fputs("weft bench: out of memory\n", stderr);
        return 1;
    }
    b->ep = -1;
    int rc = parse_options(b, argc, argv);
    if (rc < 0)
        rc = parse_url(b, b->o.url);
    else
        goto out;
    if (rc != 0) goto out;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(b->o.conns);
    if (!setup(b)) {
        fputs("weft bench: out of memory\n", stderr);
        rc = 1;
        goto out;
    }
    b->tty = isatty(2);
    b->rss_before = b->o.server_pid ? proc_rss_kib(b->o.server_pid) : -1;
    b->rss_after = -1;
    if (b->o.server_pid && (b->rss_before < 0 || proc_cpu_s(b->o.server_pid) < 0)) {
        fprintf(stderr, "weft bench: cannot read /proc/%ld: no such process?\n", b->o.server_pid);
        rc = 1;
        goto out;
    }
    hist_reset(&b->lat);
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    rc = run(b);
    signal(SIGINT, SIG_DFL);
    if (rc == 0) {
        if (b->o.json)
            report_json(b);
        else
            report_text(b);
        fflush(stdout);
        bool measured = b->o.mode == MODE_IDLE ? b->peak_open > 0 : b->c.msgs > 0;
        if (!measured) {
            fprintf(stderr, "weft bench: nothing was measured (%s)\n",
                    b->peak_open ? "no messages came back" : "no connection could be opened");
            rc = 1;
        }
    }
out:
    teardown(b);
    free(b);
    return rc;
}
