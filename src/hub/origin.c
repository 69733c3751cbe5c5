/*
 * origin.c — the Origin rules of every upgrade (origin.h): same origin as Host, or an
 * --allow-origin pattern.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "hub/origin.h"

/* Case-insensitive comparison of a[0..n) with the NUL-terminated b. */
static bool eq_nocase(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Does origin[0..len) match one pattern? Exact (case-insensitive), a lone star (anything),
 * star-dot-suffix such as "*.example.com" (any scheme and port, a subdomain of example.com),
 * or the same after a scheme ("https:" + "//" + "*.example.com": that scheme only). */
static bool origin_match(const char *pat, const char *origin, size_t len)
{
    if (!strcmp(pat, "*")) return true;
    const char *star = strstr(pat, "*.");
    if (!star) return eq_nocase(origin, len, pat);
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < len; i++)
        if (origin[i] == ':' && origin[i + 1] == '/' && origin[i + 2] == '/') {
            sep = origin + i;
            break;
        }
    if (!sep) return false;
    if (star != pat) { /* a scheme before the star must match */
        size_t sl = (size_t)(star - pat);
        if ((size_t)(sep + 3 - origin) != sl || strncasecmp(origin, pat, sl)) return false;
    }
    const char *host = sep + 3;
    size_t hl = len - (size_t)(host - origin);
    const char *colon = memchr(host, ':', hl);
    if (colon) hl = (size_t)(colon - host);
    const char *suffix = star + 1; /* ".example.com" */
    size_t sfl = strlen(suffix);
    return hl > sfl && strncasecmp(host + hl - sfl, suffix, sfl) == 0;
}

/* Splits an authority "host[:port]" or "[v6]:port" of len bytes: *hl receives the host's
 * length, *port the port (def_port when absent). Returns false if the port is not a number
 * from 1 to 65535. */
static bool split_authority(const char *a, size_t len, size_t *hl, unsigned *port,
                            unsigned def_port)
{
    size_t end = len;
    if (len && a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (!rb) return false;
        end = (size_t)(rb - a) + 1;
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon) end = (size_t)(colon - a);
    }
    *hl = end;
    *port = def_port;
    if (end == len) return end > 0;
    if (a[end] != ':' || end + 1 == len || len - end - 1 > 5) return false;
    unsigned v = 0;
    for (size_t i = end + 1; i < len; i++) {
        if (a[i] < '0' || a[i] > '9') return false;
        v = v * 10 + (unsigned)(a[i] - '0');
    }
    *port = v;
    return end > 0 && v > 0 && v <= 65535;
}

/* True if origin[0..len) ("http://host[:port]" or "https://...") names the host and port of
 * the request's Host header (case-insensitive host; a missing port is the scheme's default,
 * 80 or 443, on both sides: a TLS proxy in front keeps Host and Origin alike). */
static bool same_origin(struct weft_request *req, const char *origin, size_t len)
{
    unsigned def;
    size_t skip;
    if (len > 7 && !strncasecmp(origin, "http://", 7))
        def = 80, skip = 7;
    else if (len > 8 && !strncasecmp(origin, "https://", 8))
        def = 443, skip = 8;
    else
        return false;
    size_t hlen;
    const char *host = weft_request_header(req, "Host", &hlen);
    size_t ohl, hhl;
    unsigned oport, hport;
    return host && split_authority(origin + skip, len - skip, &ohl, &oport, def) &&
           split_authority(host, hlen, &hhl, &hport, def) && ohl == hhl && oport == hport &&
           !strncasecmp(origin + skip, host, ohl);
}

/* True if the request's Origin is allowed: no Origin header (non-browser clients send
 * none), the same origin as the Host header (the web page weft serves), or one matching an
 * --allow-origin pattern ('*': any); see origin.h. */
bool origin_allowed(const struct hub_config *cfg, struct weft_request *req, const char *origin,
                    size_t len)
{
    if (!origin || same_origin(req, origin, len)) return true;
    for (size_t i = 0; i < cfg->norigins; i++)
        if (origin_match(cfg->origins[i], origin, len)) return true;
    return false;
}
