/*
 * url.c — parsing of ws:// and wss:// URLs (weft_url_parse): pure parsing, no allocation, the
 * parts are slices of the input. Used by the client (src/ws/client.c) and the programs.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "weft.h"

/* True for the characters allowed in a host name (RFC 3986 reg-name, without escapes). */
static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

/* Parses a URL; see weft.h. Returns WEFT_OK or WEFT_ERR_INVAL with *why. */
int weft_url_parse(const char *url, struct weft_url *out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    memset(out, 0, sizeof *out);
    if (!url || !*url) {
        *why = "empty URL";
        return WEFT_ERR_INVAL;
    }
    const char *p;
    if (!strncasecmp(url, "ws://", 5)) {
        p = url + 5;
    } else if (!strncasecmp(url, "wss://", 6)) {
        p = url + 6;
        out->tls = true;
    } else {
        *why = strstr(url, "://") ? "unsupported scheme (use ws:// or wss://)"
                                  : "not a WebSocket URL (expected ws://host[:port]/path)";
        return WEFT_ERR_INVAL;
    }
    size_t alen = strcspn(p, "/?#");
    const char *auth = p, *aend = p + alen;
    if (memchr(auth, '@', alen)) {
        *why = "credentials in the URL (user@host) are not supported";
        return WEFT_ERR_INVAL;
    }
    const char *hend, *port = NULL;
    if (alen && auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb) {
            *why = "unterminated IPv6 literal (missing ']')";
            return WEFT_ERR_INVAL;
        }
        out->host = auth + 1;
        out->host_len = (size_t)(rb - auth - 1);
        for (size_t i = 0; i < out->host_len; i++) {
            char ch = out->host[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.')) {
                *why = "bad IPv6 literal";
                return WEFT_ERR_INVAL;
            }
        }
        if (!out->host_len || !memchr(out->host, ':', out->host_len)) {
            *why = "bad IPv6 literal";
            return WEFT_ERR_INVAL;
        }
        hend = rb + 1;
        if (hend < aend) {
            if (*hend != ':') {
                *why = "unexpected characters after the IPv6 literal";
                return WEFT_ERR_INVAL;
            }
            port = hend + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        hend = colon ? colon : aend;
        if (colon) port = colon + 1;
        out->host = auth;
        out->host_len = (size_t)(hend - auth);
        if (!out->host_len) {
            *why = "empty host";
            return WEFT_ERR_INVAL;
        }
        for (size_t i = 0; i < out->host_len; i++)
            if (!host_char(out->host[i])) {
                *why = "bad character in the host name";
                return WEFT_ERR_INVAL;
            }
    }
    out->port = out->tls ? 443 : 80;
    if (port) {
        unsigned long v = 0;
        if (port == aend) {
            *why = "empty port";
            return WEFT_ERR_INVAL;
        }
        for (const char *q = port; q < aend; q++) {
            if (*q < '0' || *q > '9' || v > 65535) {
                *why = "bad port (expected 1-65535)";
                return WEFT_ERR_INVAL;
            }
            v = v * 10 + (unsigned long)(*q - '0');
        }
        if (v == 0 || v > 65535) {
            *why = "bad port (expected 1-65535)";
            return WEFT_ERR_INVAL;
        }
        out->port = (uint16_t)v;
        out->port_explicit = true;
    }
    out->target = aend;
    out->target_len = strcspn(aend, "#");
    for (size_t i = 0; i < out->target_len; i++) {
        unsigned char ch = (unsigned char)out->target[i];
        if (ch <= 0x20 || ch == 0x7f) {
            *why = "space or control character in the path (percent-encode it)";
            return WEFT_ERR_INVAL;
        }
    }
    *why = NULL;
    return WEFT_OK;
}
