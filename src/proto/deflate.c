/*
 * deflate.c — permessage-deflate (RFC 7692): negotiation of the four parameters in both
 * roles, and message compression / decompression (raw deflate, the 0x00 0x00 0xff 0xff tail
 * stripped and restored) with libdeflate for whole messages without context takeover and zlib
 * for the rest (see "codecs" below). No I/O; the codec libraries allocate their state.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

#include "weft.h"

#define PMD_NAME "permessage-deflate"

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ----------------------------------------------------------------- parsing offers */

/* True if the ASCII strings s[0..n) and lower-case z are equal ignoring case. */
static bool eq_nocase(const char *s, size_t n, const char *z)
{
    size_t i = 0;
    for (; i < n && z[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + ('a' - 'A'));
        if (c != z[i]) return false;
    }
    return i == n && z[i] == '\0';
}

/* Trims spaces and tabs on both sides of s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

/* Parses a window-bits value ("8".."15", optionally quoted, no leading zero). Returns 8..15,
 * or 0 if invalid. */
static int parse_bits(const char *v, size_t n)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 1 && (v[0] == '8' || v[0] == '9')) return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return 0;
}

/* Parses one extension element "permessage-deflate; p1; p2=v" into *p. Returns 1 when it is
 * a valid permessage-deflate element, 0 when it is another extension, -1 when it is an
 * invalid permessage-deflate element. */
static int parse_element(const char *e, size_t n, struct weft_pmd_params *p)
{
    memset(p, 0, sizeof *p);
    p->server_max_window_bits = 15;
    p->client_max_window_bits = 15;
    bool seen_smwb = false;
    size_t i = 0, start = 0;
    bool first = true, in_quote = false;
    for (i = 0; i <= n; i++) {
        if (i < n && e[i] == '"') in_quote = !in_quote;
        if (i < n && (e[i] != ';' || in_quote)) continue;
        size_t plen = i - start;
        const char *param = trim(e + start, &plen);
        start = i + 1;
        if (first) {
            first = false;
            if (!eq_nocase(param, plen, PMD_NAME)) return 0;
            continue;
        }
        const char *eqs = memchr(param, '=', plen);
        size_t nlen = eqs ? (size_t)(eqs - param) : plen;
        const char *name = trim(param, &nlen);
        size_t vlen = eqs ? plen - (size_t)(eqs - param) - 1 : 0;
        const char *val = eqs ? trim(eqs + 1, &vlen) : NULL;
        if (eq_nocase(name, nlen, "server_no_context_takeover")) {
            if (val || p->server_no_context_takeover) return -1;
            p->server_no_context_takeover = true;
        } else if (eq_nocase(name, nlen, "client_no_context_takeover")) {
            if (val || p->client_no_context_takeover) return -1;
            p->client_no_context_takeover = true;
        } else if (eq_nocase(name, nlen, "server_max_window_bits")) {
            int b = val ? parse_bits(val, vlen) : 0;
            if (!b || seen_smwb) return -1;
            seen_smwb = true;
            p->server_max_window_bits = (uint8_t)b;
        } else if (eq_nocase(name, nlen, "client_max_window_bits")) {
            if (p->client_max_window_bits_set) return -1;
            p->client_max_window_bits_set = true;
            if (val) {
                int b = parse_bits(val, vlen);
                if (!b) return -1;
                p->client_max_window_bits = (uint8_t)b;
            }
        } else {
            return -1; /* unknown parameter */
        }
    }
    if (in_quote) return -1;
    return 1;
}

/* Appends z to out at *len (bounded by cap). Returns false when it does not fit. */
static bool put(char *out, size_t cap, size_t *len, const char *z)
{
    size_t n = strlen(z);
    if (*len + n + 1 > cap) return false;
    memcpy(out + *len, z, n + 1);
    *len += n;
    return true;
}

static bool put_bits(char *out, size_t cap, size_t *len, const char *name, int bits)
{
    char v[4] = {0};
    if (bits >= 10) {
        v[0] = '1';
        v[1] = (char)('0' + bits - 10);
    } else {
        v[0] = (char)('0' + bits);
    }
    return put(out, cap, len, "; ") && put(out, cap, len, name) && put(out, cap, len, "=") &&
           put(out, cap, len, v);
}

static int window_or_default(int bits, int lo)
{
    if (bits == 0) return 15;
    return bits < lo ? lo : bits > 15 ? 15 : bits;
}

/* Server negotiation; see weft.h. */
int weft_pmd_negotiate(const char *offers, size_t len, const struct weft_pmd_config *cfg,
                       struct weft_pmd_params *agreed, char *out, size_t cap)
{
    if (!cfg->enabled || !offers) return 0;
    size_t pos = 0, elen;
    const char *e;
    while (weft_http_list_next(offers, len, &pos, &e, &elen)) {
        struct weft_pmd_params o;
        if (parse_element(e, elen, &o) != 1)
            continue; /* other extension, or an invalid offer: declined */
        struct weft_pmd_params a = {0};
        int ours = window_or_default(cfg->max_window_bits, 9);
        int peer = window_or_default(cfg->peer_max_window_bits, 8);
        a.server_no_context_takeover = o.server_no_context_takeover || cfg->no_context_takeover;
        a.client_no_context_takeover =
            o.client_no_context_takeover || cfg->peer_no_context_takeover;
        a.server_max_window_bits =
            (uint8_t)(o.server_max_window_bits < ours ? o.server_max_window_bits : ours);
        a.client_max_window_bits = 15;
        if (o.client_max_window_bits_set) {
            a.client_max_window_bits_set = true;
            a.client_max_window_bits =
                (uint8_t)(o.client_max_window_bits < peer ? o.client_max_window_bits : peer);
        }
        size_t n = 0;
        out[0] = '\0';
        bool ok = put(out, cap, &n, PMD_NAME);
        if (a.server_no_context_takeover)
            ok = ok && put(out, cap, &n, "; server_no_context_takeover");
        if (a.client_no_context_takeover)
            ok = ok && put(out, cap, &n, "; client_no_context_takeover");
        if (a.server_max_window_bits < 15)
            ok = ok && put_bits(out, cap, &n, "server_max_window_bits", a.server_max_window_bits);
        if (a.client_max_window_bits_set && a.client_max_window_bits < 15)
            ok = ok && put_bits(out, cap, &n, "client_max_window_bits", a.client_max_window_bits);
        if (!ok) return WEFT_ERR_SPACE;
        *agreed = a;
        return 1;
    }
    return 0;
}

/* Client offer; see weft.h. */
int weft_pmd_offer(const struct weft_pmd_config *cfg, char *out, size_t cap)
{
    size_t n = 0;
    int ours = window_or_default(cfg->max_window_bits, 9);
    int peer = window_or_default(cfg->peer_max_window_bits, 8);
    if (cap) out[0] = '\0';
    bool ok = put(out, cap, &n, PMD_NAME);
    if (cfg->no_context_takeover) ok = ok && put(out, cap, &n, "; client_no_context_takeover");
    if (cfg->peer_no_context_takeover) ok = ok && put(out, cap, &n, "; server_no_context_takeover");
    if (peer < 15) ok = ok && put_bits(out, cap, &n, "server_max_window_bits", peer);
    if (ours < 15)
        ok = ok && put_bits(out, cap, &n, "client_max_window_bits", ours);
    else
        ok = ok && put(out, cap, &n, "; client_max_window_bits");
    return ok ? (int)n : WEFT_ERR_SPACE;
}

/* Client check of the server's answer; see weft.h. */
int weft_pmd_accept(const char *response, size_t len, const struct weft_pmd_config *cfg,
                    struct weft_pmd_params *agreed)
{
    size_t pos = 0, elen, n = 0;
    const char *e;
    struct weft_pmd_params r;
    bool found = false;
    while (weft_http_list_next(response, len, &pos, &e, &elen)) {
        int k = parse_element(e, elen, &r);
        if (k != 1 || found || n++)
            return WEFT_ERR_PROTO; /* invalid, another extension, or two answers */
        found = true;
    }
    if (!found) return WEFT_ERR_PROTO;
    int ours = window_or_default(cfg->max_window_bits, 9);
    int peer = window_or_default(cfg->peer_max_window_bits, 8);
    if (cfg->peer_no_context_takeover && !r.server_no_context_takeover)
        return WEFT_ERR_PROTO; /* we asked for it: the server must accept or decline */
    if (r.server_max_window_bits > peer) return WEFT_ERR_PROTO;
    struct weft_pmd_params a = r;
    a.client_no_context_takeover = r.client_no_context_takeover || cfg->no_context_takeover;
    if (a.client_max_window_bits > ours) a.client_max_window_bits = (uint8_t)ours;
    *agreed = a;
    return 0;
}

/* ----------------------------------------------------------------- codecs */

/*
 * Two engines (weft_pmd_deflate_engine / weft_pmd_inflate_engine decide, per message):
 *
 * - libdeflate compresses or decompresses a whole buffer in one call, several times faster
 *   than zlib's streaming API for WebSocket-sized messages, but it keeps no state between
 *   calls and always uses a 32 KiB (15-bit) window.
 * - zlib streams, keeps the window between messages and honours smaller windows.
 *
 * Compression uses libdeflate only when the message is compressed without context takeover
 * (reset), with a 15-bit window and a level of 1 or more: a 32 KiB window is then what the
 * peer's inflater has (server_max_window_bits / client_max_window_bits = 15), while a peer
 * that negotiated a smaller window could not decode distances beyond it. Everything else
 * (context takeover, windows 8..14, level 0) goes through zlib.
 *
 * Decompression uses libdeflate for every whole message the peer compressed without context
 * takeover, whatever window the peer uses: a compressor with a window of 2^w bytes never
 * emits a distance beyond 2^w <= 32 KiB, which a 32 KiB decompressor always decodes. With the
 * peer's context takeover the window must survive the message, so zlib streams.
 *
 * libdeflate writes a final block (BFINAL = 1); RFC 7692 §7.2.3.4 allows it and asks for one
 * more 0x00 octet (the header of an empty stored block), which weft appends. Receiving, the
 * message is copied with the 0x00 0x00 0xff 0xff tail and an empty final stored block, so a
 * zlib-style message (ending in a sync flush, no final block) is a complete stream for
 * libdeflate. Input libdeflate rejects is decoded again by zlib, so both engines accept
 * exactly the same messages (zlib is the reference).
 */

struct weft_deflater {
    z_stream z;
    bool z_ready; /* deflateInit2 done (lazily: a libdeflate-only compressor never needs it) */
    bool z_dirty; /* zlib's window holds earlier messages */
    int bits, mem_level, level;
    struct libdeflate_compressor *ld;
    enum weft_pmd_engine last; /* engine of the last message (tests, statistics) */
};

struct weft_inflater {
    z_stream z;
    uint8_t tail_fed; /* bytes of the 4-byte tail already given to zlib */
    int bits;
    struct libdeflate_decompressor *ld;
    uint8_t *copy; /* message + tail + empty final block, for libdeflate */
    size_t copy_cap;
    enum weft_pmd_engine last;
};

/* Which compressor a message uses; see weft.h. */
enum weft_pmd_engine weft_pmd_deflate_engine(int window_bits, int level, bool no_context_takeover)
{
    if (no_context_takeover && (window_bits == 15 || window_bits == 0) && level != 0)
        return WEFT_PMD_LIBDEFLATE;
    return WEFT_PMD_ZLIB;
}

/* Which decompressor a message uses; see weft.h. */
enum weft_pmd_engine weft_pmd_inflate_engine(int window_bits, bool whole_message,
                                             bool no_context_takeover)
{
    (void)window_bits; /* any window of 8..15 bits fits libdeflate's 32 KiB */
    return whole_message && no_context_takeover ? WEFT_PMD_LIBDEFLATE : WEFT_PMD_ZLIB;
}

/* Creates a raw-deflate compressor; see weft.h. The codec state is allocated on first use. */
struct weft_deflater *weft_deflater_new(int window_bits, int mem_level, int level)
{
    struct weft_deflater *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (window_bits < 9) window_bits = 9;
    if (window_bits > 15) window_bits = 15;
    if (mem_level < 1 || mem_level > 9) mem_level = 8;
    if (level < 0 || level > 9) level = Z_DEFAULT_COMPRESSION; /* 6 */
    d->bits = window_bits;
    d->mem_level = mem_level;
    d->level = level;
    return d;
}

void weft_deflater_free(struct weft_deflater *d)
{
    if (!d) return;
    if (d->z_ready) deflateEnd(&d->z);
    if (d->ld) libdeflate_free_compressor(d->ld);
    free(d);
}

/* Engine of the last message compressed with d; see weft.h. */
enum weft_pmd_engine weft_deflater_engine(const struct weft_deflater *d)
{
    return d->last;
}

/* Stored blocks are the worst case: 5 bytes per block; with memLevel 1 blocks can be as
 * short as 128 bytes, hence the len/16 margin. */
size_t weft_deflate_bound(size_t len)
{
    return len + len / 16 + 64;
}

/* Compresses a whole message with libdeflate (final block + one 0x00 octet, RFC 7692
 * §7.2.3.4). Returns its length, 0 when it does not fit (the caller uses zlib), or
 * WEFT_ERR_NOMEM. */
static long ld_deflate(struct weft_deflater *d, const uint8_t *in, size_t len, uint8_t *out,
                       size_t cap)
{
    if (!d->ld) {
        int lvl = d->level == Z_DEFAULT_COMPRESSION ? 6 : d->level;
        d->ld = libdeflate_alloc_compressor(lvl);
        if (!d->ld) return WEFT_ERR_NOMEM;
    }
    if (cap < 2) return 0;
    size_t n = libdeflate_deflate_compress(d->ld, in, len, out, cap - 1);
    if (n == 0 || n > LONG_MAX - 1) return 0;
    out[n] = 0x00;
    return (long)n + 1;
}

/* Compresses a whole message with zlib's stream; see weft_deflate_message. */
static long z_deflate(struct weft_deflater *d, const uint8_t *in, size_t len, uint8_t *out,
                      size_t cap, bool reset)
{
    z_stream *z = &d->z;
    if (!d->z_ready) {
        if (deflateInit2(z, d->level, Z_DEFLATED, -d->bits, d->mem_level, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            return WEFT_ERR_NOMEM;
        d->z_ready = true;
    }
    d->last = WEFT_PMD_ZLIB;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->next_out = out;
    size_t in_left = len, out_left = cap;
    int r;
    do {
        /* zlib counts in uInt: feed huge buffers in slices */
        uInt ain = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
        uInt aout = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
        z->avail_in = ain;
        z->avail_out = aout;
        r = deflate(z, in_left > ain ? Z_NO_FLUSH : Z_SYNC_FLUSH);
        in_left -= ain - z->avail_in;
        out_left -= aout - z->avail_out;
        if (r == Z_STREAM_ERROR) return WEFT_ERR_INVAL;
        if (out_left == 0 && (in_left || z->avail_out == 0)) {
            deflateReset(z);
            d->z_dirty = false;
            return WEFT_ERR_SPACE;
        }
    } while (in_left > 0 || z->avail_out == 0);
    size_t n = cap - out_left;
    if (n == 0 && len == 0 && cap > 0) {
        /* Nothing pending after an earlier flush: an empty message is the single byte 0x00
         * (an empty stored block header without its tail, RFC 7692 §7.2.3.6). */
        out[0] = 0x00;
        return 1;
    }
    if (n < 4 || memcmp(out + n - 4, tail, 4) != 0) {
        deflateReset(z);
        d->z_dirty = false;
        return WEFT_ERR_PROTO;
    }
    n -= 4;
    d->z_dirty = !reset;
    if (reset) deflateReset(z);
    return (long)n;
}

/* Compresses a whole message; see weft.h. */
long weft_deflate_message(struct weft_deflater *d, const uint8_t *in, size_t len, uint8_t *out,
                          size_t cap, bool reset)
{
    if (weft_pmd_deflate_engine(d->bits, d->level, reset) == WEFT_PMD_LIBDEFLATE) {
        if (d->z_dirty) {
            /* zlib's window must not keep what the peer will not see in its window */
            deflateReset(&d->z);
            d->z_dirty = false;
        }
        if (len == 0 && cap > 0) {
            out[0] = 0x00; /* RFC 7692 §7.2.3.6 */
            d->last = WEFT_PMD_LIBDEFLATE;
            return 1;
        }
        long n = ld_deflate(d, in, len, out, cap);
        if (n != 0) {
            if (n > 0) d->last = WEFT_PMD_LIBDEFLATE;
            return n;
        }
        /* did not fit: zlib's stored blocks may still fit in cap */
    }
    return z_deflate(d, in, len, out, cap, reset);
}

/* Creates a raw-inflate decompressor; see weft.h. */
struct weft_inflater *weft_inflater_new(int window_bits)
{
    struct weft_inflater *i = calloc(1, sizeof *i);
    if (!i) return NULL;
    if (window_bits < 8 || window_bits > 15) window_bits = 15;
    if (inflateInit2(&i->z, -window_bits) != Z_OK) {
        free(i);
        return NULL;
    }
    i->bits = window_bits;
    return i;
}

/* Drops any partial message and the window. */
void weft_inflater_reset(struct weft_inflater *i)
{
    inflateReset(&i->z);
    i->tail_fed = 0;
}

void weft_inflater_free(struct weft_inflater *i)
{
    if (!i) return;
    inflateEnd(&i->z);
    if (i->ld) libdeflate_free_decompressor(i->ld);
    free(i->copy);
    free(i);
}

/* Engine of the last whole message decompressed with i; see weft.h. */
enum weft_pmd_engine weft_inflater_engine(const struct weft_inflater *i)
{
    return i->last;
}

/* The zlib path of weft_inflate_message: 0, WEFT_ERR_SPACE when the output exceeds cap, or a
 * negative weft_err. */
static int z_inflate_whole(struct weft_inflater *i, const uint8_t *in, size_t len, uint8_t *out,
                           size_t cap, size_t *out_made)
{
    size_t used, made, off = 0, total = 0;
    i->last = WEFT_PMD_ZLIB;
    weft_inflater_reset(i);
    for (;;) {
        int r = weft_inflate(i, in + off, len - off, true, true, out + total, cap - total, &used,
                             &made);
        off += used;
        total += made;
        if (r < 0) return r;
        if (r == 0) break;
        /* output full: one more byte means the message does not fit */
        uint8_t probe;
        r = weft_inflate(i, in + off, len - off, true, true, &probe, 1, &used, &made);
        if (r < 0) return r;
        if (made) {
            weft_inflater_reset(i);
            return WEFT_ERR_SPACE;
        }
        if (r == 0) break;
        off += used;
    }
    *out_made = total;
    return 0;
}

/* Decompresses a whole message; see weft.h. */
int weft_inflate_message(struct weft_inflater *i, const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap, size_t *out_made)
{
    /* the sync-flush tail, then an empty final stored block (BFINAL = 1, LEN 0) */
    static const uint8_t end[9] = {0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff};
    *out_made = 0;
    if (!i->ld && !(i->ld = libdeflate_alloc_decompressor())) return WEFT_ERR_NOMEM;
    if (len > SIZE_MAX - sizeof end) return WEFT_ERR_SPACE;
    size_t total = len + sizeof end;
    if (total > i->copy_cap) {
        size_t ncap = total < 4096 ? 4096 : total;
        uint8_t *nb = realloc(i->copy, ncap);
        if (!nb) return WEFT_ERR_NOMEM;
        i->copy = nb;
        i->copy_cap = ncap;
    }
    if (len) memcpy(i->copy, in, len);
    memcpy(i->copy + len, end, sizeof end);
    i->last = WEFT_PMD_LIBDEFLATE;
    size_t off = 0, made = 0;
    int ret = 0;
    /* One or more deflate streams (a peer may end a stream with BFINAL = 1 and start
     * another, RFC 7692 §7.2.3.4); done once the peer's bytes are consumed. */
    while (off < len) {
        size_t took = 0, got = 0;
        enum libdeflate_result r = libdeflate_deflate_decompress_ex(
            i->ld, i->copy + off, total - off, out + made, cap - made, &took, &got);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            ret = WEFT_ERR_SPACE;
            break;
        }
        if (r != LIBDEFLATE_SUCCESS || took == 0) {
            /* not a complete stream to libdeflate: zlib decides (it is the reference) */
            ret = z_inflate_whole(i, in, len, out, cap, &made);
            break;
        }
        off += took;
        made += got;
    }
    if (i->copy_cap > 256 * 1024) {
        /* do not keep a large message's copy between messages */
        free(i->copy);
        i->copy = NULL;
        i->copy_cap = 0;
    }
    if (ret == 0) *out_made = made;
    return ret;
}

/* Decompresses the next part of a message; see weft.h. */
int weft_inflate(struct weft_inflater *i, const uint8_t *in, size_t len, bool fin, bool reset,
                 uint8_t *out, size_t cap, size_t *in_used, size_t *out_made)
{
    z_stream *z = &i->z;
    size_t used = 0, made = 0;
    *in_used = *out_made = 0;
    for (;;) {
        const uint8_t *src;
        size_t avail;
        bool feeding_tail = used == len;
        if (!feeding_tail) {
            src = in + used;
            avail = len - used;
        } else if (fin && i->tail_fed < 4) {
            src = tail + i->tail_fed;
            avail = 4u - i->tail_fed;
        } else {
            src = NULL;
            avail = 0;
        }
        if (made == cap) {
            *in_used = used;
            *out_made = made;
            return 1; /* output full: call again */
        }
        uInt ain = avail > UINT32_MAX ? UINT32_MAX : (uInt)avail;
        uInt aout = cap - made > UINT32_MAX ? UINT32_MAX : (uInt)(cap - made);
        z->next_in = (Bytef *)(uintptr_t)src;
        z->avail_in = ain;
        z->next_out = out + made;
        z->avail_out = aout;
        int r = inflate(z, Z_SYNC_FLUSH);
        size_t took = ain - z->avail_in, gave = aout - z->avail_out;
        if (feeding_tail && src)
            i->tail_fed = (uint8_t)(i->tail_fed + took);
        else
            used += took;
        made += gave;
        if (r == Z_STREAM_END) {
            /* The peer ended the deflate stream (BFINAL): the next message starts anew. */
            inflateReset(z);
            /* The rest of the tail is dropped when the stream ended inside it; a stream that
             * ended on a frame boundary before the last frame (nothing fed, src NULL) still
             * gets the whole tail with the last frame. */
            if (feeding_tail && src) i->tail_fed = 4;
            continue;
        }
        if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_STREAM_ERROR) {
            inflateReset(z);
            i->tail_fed = 0;
            return WEFT_ERR_PROTO;
        }
        if (r == Z_MEM_ERROR) return WEFT_ERR_NOMEM;
        /* Z_OK or Z_BUF_ERROR (no progress possible). Done when all input (and, at the end
         * of the message, the tail) is in and zlib left output space unused. */
        bool input_done = used == len && (!fin || i->tail_fed == 4);
        if (input_done && z->avail_out > 0) {
            *in_used = used;
            *out_made = made;
            if (fin) {
                i->tail_fed = 0;
                if (reset) inflateReset(z);
            }
            return 0;
        }
        if (took == 0 && gave == 0 && z->avail_out > 0) {
            /* zlib cannot progress though input remains: corrupt */
            inflateReset(z);
            i->tail_fed = 0;
            return WEFT_ERR_PROTO;
        }
    }
}
