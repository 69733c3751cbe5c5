/*
 * fuzz_response.c — libFuzzer target for the client side of the opening handshake.
 *
 * The input is parsed as a response head. Properties checked:
 *  - the result is 0, -1 or a head length within the input and the default limit;
 *  - prefix consistency: the prefix of length n/2 gives 0 or the same answer as the whole
 *    input (with identical fields when the head fits in the prefix);
 *  - a complete head goes through weft_handshake_check_response against the RFC 6455 §1.3
 *    key and a fixed offer. An accepted response must really be a 101 with the expected
 *    accept value, a subprotocol from the offer (or none) and extensions named in the offer;
 *    a refused one must carry a static error text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Case-insensitive comparison of s[0..n) with the NUL-terminated lower-case z. */
static bool equal_nocase(const char *s, size_t n, const char *z)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != z[i] || z[i] == 0)
            return false;
    }
    return z[n] == 0;
}

static const char fuzz_key[25] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char fuzz_protocols[] = "chat, superchat";
static const char fuzz_extensions[] =
    "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame";

/* True if the two parsed responses have the same status line and headers. */
static bool same_response(const struct weft_http_response *a, const struct weft_http_response *b)
{
    if (a->status != b->status || a->minor_version != b->minor_version || a->reason != b->reason ||
        a->reason_len != b->reason_len || a->num_headers != b->num_headers)
        return false;
    for (size_t i = 0; i < a->num_headers; i++)
        if (memcmp(&a->headers[i], &b->headers[i], sizeof a->headers[i]) != 0) return false;
    return true;
}

/* Re-checks, independently of the implementation's code path, what an accepted response
 * must satisfy; aborts if it does not. */
static void verify_accepted(const struct weft_http_response *resp,
                            const struct weft_handshake_result *res)
{
    if (resp->status != 101 || res->error != NULL) abort();
    const struct weft_http_header *h =
        weft_http_find_header(resp->headers, resp->num_headers, "sec-websocket-accept");
    if (h == NULL || h->value_len != 28 || memcmp(h->value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28))
        abort();
    if (res->protocol != NULL) {
        bool ok = (res->protocol_len == 4 && memcmp(res->protocol, "chat", 4) == 0) ||
                  (res->protocol_len == 9 && memcmp(res->protocol, "superchat", 9) == 0);
        if (!ok) abort();
    }
    if (res->extensions != NULL) {
        size_t pos = 0;
        const char *item;
        size_t item_len;
        while (weft_http_list_next(res->extensions, res->extensions_len, &pos, &item, &item_len)) {
            size_t n = 0;
            while (n < item_len && item[n] != ';')
                n++;
            while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
                n--;
            bool ok = (n == 18 && equal_nocase(item, n, "permessage-deflate")) ||
                      (n == 22 && equal_nocase(item, n, "x-webkit-deflate-frame"));
            if (!ok) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) return 0;
    if (size) memcpy(buf, data, size);

    static struct weft_http_response resp, half;
    int r = weft_http_parse_response(buf, size, 0, &resp);
    if (!(r == 0 || r == -1 || (r > 0 && (size_t)r <= size && r <= WEFT_HTTP_MAX_HEAD))) abort();

    size_t hn = size / 2;
    int rh = weft_http_parse_response(buf, hn, 0, &half);
    if (r > 0 && (size_t)r <= hn) {
        if (rh != r || !same_response(&resp, &half)) abort();
    } else if (rh != 0 && rh != r) {
        abort();
    }

    if (r > 0) {
        struct weft_handshake_result res;
        int c =
            weft_handshake_check_response(&resp, fuzz_key, fuzz_protocols, fuzz_extensions, &res);
        if (c == WEFT_OK) {
            verify_accepted(&resp, &res);
        } else {
            if (c != WEFT_ERR_PROTO || res.error == NULL || res.error[0] == '\0') abort();
            if (res.protocol != NULL || res.extensions != NULL) abort();
        }
        /* Without offers, any response naming a subprotocol or extension is refused. */
        c = weft_handshake_check_response(&resp, fuzz_key, NULL, NULL, &res);
        if (c == WEFT_OK && (res.protocol != NULL || res.extensions != NULL)) abort();
    }
    free(buf);
    return 0;
}
