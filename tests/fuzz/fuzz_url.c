/*
 * fuzz_url.c — libFuzzer target for weft_url_parse (the URLs of weft connect, weft bench and
 * weft_client_new).
 *
 * The input (up to its first NUL) is parsed as a URL. Properties checked:
 *  - a refusal is WEFT_ERR_INVAL with a non-empty explanation;
 *  - an accepted URL has a ws:// or wss:// scheme matching `tls`, a non-empty host and a
 *    target that are slices of the input, a port of 1..65535 (80 / 443 when not explicit), a
 *    target that is empty or starts with '/' or '?' and holds no space or control character;
 *  - the URL rebuilt from the parts (fragment dropped) parses back to the same parts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks the parts of an accepted URL u against its text url (of length n). */
static void check_parts(const char *url, size_t n, const struct weft_url *u)
{
    size_t skip = u->tls ? 6 : 5;
    if (n < skip || strncasecmp(url, u->tls ? "wss://" : "ws://", skip) != 0) abort();
    if (!u->host || u->host_len == 0 || u->host < url || u->host + u->host_len > url + n) abort();
    if (!u->target || u->target < url || u->target + u->target_len > url + n) abort();
    if (u->port == 0 || (!u->port_explicit && u->port != (u->tls ? 443 : 80))) abort();
    if (u->target_len && u->target[0] != '/' && u->target[0] != '?') abort();
    for (size_t i = 0; i < u->target_len; i++) {
        unsigned char ch = (unsigned char)u->target[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '#') abort();
    }
    bool v6 = memchr(u->host, ':', u->host_len) != NULL;
    for (size_t i = 0; i < u->host_len; i++) {
        char ch = u->host[i];
        if (ch == '/' || ch == '?' || ch == '#' || ch == '@' || ch == '[' || ch == ']' ||
            (unsigned char)ch <= 0x20)
            abort();
    }
    /* Rebuild and parse again. */
    size_t cap = n + 32;
    char *again = malloc(cap);
    if (!again) return;
    int k = snprintf(again, cap, "%s://%s%.*s%s", u->tls ? "wss" : "ws", v6 ? "[" : "",
                     (int)u->host_len, u->host, v6 ? "]" : "");
    if (u->port_explicit) k += snprintf(again + k, cap - (size_t)k, ":%u", u->port);
    snprintf(again + k, cap - (size_t)k, "%.*s", (int)u->target_len, u->target);
    struct weft_url b;
    const char *why = "unset";
    if (weft_url_parse(again, &b, &why) != WEFT_OK || why != NULL) abort();
    if (b.tls != u->tls || b.port != u->port || b.port_explicit != u->port_explicit ||
        b.host_len != u->host_len || memcmp(b.host, u->host, u->host_len) != 0 ||
        b.target_len != u->target_len ||
        (u->target_len && memcmp(b.target, u->target, u->target_len) != 0))
        abort();
    free(again);
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1); /* exactly sized string: overreads are caught */
    if (!url) return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    size_t n = strlen(url);
    struct weft_url u;
    const char *why = "unset";
    int r = weft_url_parse(url, &u, &why);
    if (r == WEFT_OK) {
        if (why != NULL) abort();
        check_parts(url, n, &u);
    } else if (r != WEFT_ERR_INVAL || why == NULL || why[0] == '\0' || !strcmp(why, "unset")) {
        abort();
    }
    free(url);
    return 0;
}
