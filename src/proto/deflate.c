/*
 * deflate.c — permessage-deflate (RFC 7692): negotiation of the four parameters in both
 * roles, and message compression / decompression with zlib (raw deflate, the 0x00 0x00 0xff
 * 0xff tail stripped and restored). No I/O; zlib allocates the codec state.
 */
#include <stdlib.h>
#include <string.h>
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
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != z[i])
            return false;
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
    if (n == 1 && (v[0] == '8' || v[0] == '9'))
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
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
        if (i < n && e[i] == '"')
            in_quote = !in_quote;
        if (i < n && (e[i] != ';' || in_quote))
            continue;
        size_t plen = i - start;
        const char *param = trim(e + start, &plen);
        start = i + 1;
        if (first) {
            first = false;
            if (!eq_nocase(param, plen, PMD_NAME))
                return 0;
            continue;
        }
        const char *eqs = memchr(param, '=', plen);
        size_t nlen = eqs ? (size_t)(eqs - param) : plen;
        const char *name = trim(param, &nlen);
        size_t vlen = eqs ? plen - (size_t)(eqs - param) - 1 : 0;
        const char *val = eqs ? trim(eqs + 1, &vlen) : NULL;
        if (eq_nocase(name, nlen, "server_no_context_takeover")) {
            if (val || p->server_no_context_takeover)
                return -1;
            p->server_no_context_takeover = true;
        } else if (eq_nocase(name, nlen, "client_no_context_takeover")) {
            if (val || p->client_no_context_takeover)
                return -1;
            p->client_no_context_takeover = true;
        } else if (eq_nocase(name, nlen, "server_max_window_bits")) {
            int b = val ? parse_bits(val, vlen) : 0;
            if (!b || seen_smwb)
                return -1;
            seen_smwb = true;
            p->server_max_window_bits = (uint8_t)b;
        } else if (eq_nocase(name, nlen, "client_max_window_bits")) {
            if (p->client_max_window_bits_set)
                return -1;
            p->client_max_window_bits_set = true;
            if (val) {
                int b = parse_bits(val, vlen);
                if (!b)
                    return -1;
                p->client_max_window_bits = (uint8_t)b;
            }
        } else {
            return -1; /* unknown parameter */
        }
    }
    if (in_quote)
        return -1;
    return 1;
}

/* Appends z to out at *len (bounded by cap). Returns false when it does not fit. */
static bool put(char *out, size_t cap, size_t *len, const char *z)
{
    size_t n = strlen(z);
    if (*len + n + 1 > cap)
        return false;
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
    if (bits == 0)
        return 15;
    return bits < lo ? lo : bits > 15 ? 15 : bits;
}

/* Server negotiation; see weft.h. */
int weft_pmd_negotiate(const char *offers, size_t len, const struct weft_pmd_config *cfg,
                       struct weft_pmd_params *agreed, char *out, size_t cap)
{
    if (!cfg->enabled || !offers)
        return 0;
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
        if (!ok)
            return WEFT_ERR_SPACE;
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
    if (cap)
        out[0] = '\0';
    bool ok = put(out, cap, &n, PMD_NAME);
    if (cfg->no_context_takeover)
        ok = ok && put(out, cap, &n, "; client_no_context_takeover");
    if (cfg->peer_no_context_takeover)
        ok = ok && put(out, cap, &n, "; server_no_context_takeover");
    if (peer < 15)
        ok = ok && put_bits(out, cap, &n, "server_max_window_bits", peer);
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
    if (!found)
        return WEFT_ERR_PROTO;
    int ours = window_or_default(cfg->max_window_bits, 9);
    int peer = window_or_default(cfg->peer_max_window_bits, 8);
    if (cfg->peer_no_context_takeover && !r.server_no_context_takeover)
        return WEFT_ERR_PROTO; /* we asked for it: the server must accept or decline */
    if (r.server_max_window_bits > peer)
        return WEFT_ERR_PROTO;
    struct weft_pmd_params a = r;
    a.client_no_context_takeover = r.client_no_context_takeover || cfg->no_context_takeover;
    if (a.client_max_window_bits > ours)
        a.client_max_window_bits = (uint8_t)ours;
    *agreed = a;
    return 0;
}

/* ----------------------------------------------------------------- codecs */

struct weft_deflater {
    z_stream z;
};

struct weft_inflater {
    z_stream z;
    uint8_t tail_fed; /* bytes of the 4-byte tail already given to zlib */
};

/* Creates a raw-deflate compressor; see weft.h. */
struct weft_deflater *weft_deflater_new(int window_bits, int mem_level, int level)
{
    struct weft_deflater *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (window_bits < 9)
        window_bits = 9;
    if (window_bits > 15)
        window_bits = 15;
    if (mem_level < 1 || mem_level > 9)
        mem_level = 8;
    if (level < 0 || level > 9)
        level = Z_DEFAULT_COMPRESSION; /* 6 */
    if (deflateInit2(&d->z, level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void weft_deflater_free(struct weft_deflater *d)
{
    if (!d)
        return;
    deflateEnd(&d->z);
    free(d);
}

/* Stored blocks are the worst case: 5 bytes per block; with memLevel 1 blocks can be as
 * short as 128 bytes, hence the len/16 margin. */
size_t weft_deflate_bound(size_t len)
{
    return len + len / 16 + 64;
}

/* Compresses a whole message; see weft.h. */
long weft_deflate_message(struct weft_deflater *d, const uint8_t *in, size_t len, uint8_t *out,
                          size_t cap, bool reset)
{
    z_stream *z = &d->z;
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
        if (r == Z_STREAM_ERROR)
            return WEFT_ERR_INVAL;
        if (out_left == 0 && (in_left || z->avail_out == 0)) {
            deflateReset(z);
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
        return WEFT_ERR_PROTO;
    }
    n -= 4;
    if (reset)
        deflateReset(z);
    return (long)n;
}

/* Creates a raw-inflate decompressor; see weft.h. */
struct weft_inflater *weft_inflater_new(int window_bits)
{
    struct weft_inflater *i = calloc(1, sizeof *i);
    if (!i)
        return NULL;
    if (window_bits < 8 || window_bits > 15)
        window_bits = 15;
    if (inflateInit2(&i->z, -window_bits) != Z_OK) {
        free(i);
        return NULL;
    }
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
    if (!i)
        return;
    inflateEnd(&i->z);
    free(i);
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
            if (feeding_tail && src)
                i->tail_fed = 4;
            continue;
        }
        if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_STREAM_ERROR) {
            inflateReset(z);
            i->tail_fed = 0;
            return WEFT_ERR_PROTO;
        }
        if (r == Z_MEM_ERROR)
            return WEFT_ERR_NOMEM;
        /* Z_OK or Z_BUF_ERROR (no progress possible). Done when all input (and, at the end
         * of the message, the tail) is in and zlib left output space unused. */
        bool input_done = used == len && (!fin || i->tail_fed == 4);
        if (input_done && z->avail_out > 0) {
            *in_used = used;
            *out_made = made;
            if (fin) {
                i->tail_fed = 0;
                if (reset)
                    inflateReset(z);
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
