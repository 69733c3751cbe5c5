/*
 * handshake.c — the RFC 6455 §4 opening handshake, both sides, sans-I/O.
 *
 * Server: weft_handshake_check_request validates a parsed request, weft_handshake_response and
 * weft_http_error_response write the answer. Client: weft_handshake_key and
 * weft_handshake_request write the request, weft_handshake_check_response validates the
 * parsed answer. Everything works on caller-owned buffers; nothing is allocated.
 */
#include "weft.h"

#include <limits.h>
#include <string.h>

#include <openssl/sha.h>

/* The GUID of RFC 6455 §1.3 appended to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Longest key weft_ws_accept hashes (a valid key is 24 characters). */
#define WS_KEY_MAX 128

/* Length of a Sec-WebSocket-Key: base64 of 16 bytes. */
#define WS_KEY_LEN 24

/* Length of a Sec-WebSocket-Accept: base64 of a 20-byte SHA-1. */
#define WS_ACCEPT_LEN 28

/* An output buffer being filled; `full` is sticky once something did not fit. */
struct writer {
    char *out;
    size_t cap;
    size_t len;
    bool full;
};

/* Appends s[0..n) to w, or marks w full if it does not fit. */
static void put(struct writer *w, const char *s, size_t n)
{
    if (w->full || n == 0) return;
    if (n > w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

/* Appends the NUL-terminated string z to w. */
static void put_str(struct writer *w, const char *z)
{
    put(w, z, strlen(z));
}

/* Appends the decimal representation of v to w. */
static void put_uint(struct writer *w, size_t v)
{
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, digits + i, sizeof digits - i);
}

/* Appends the header line "name: value\r\n" to w. */
static void put_header(struct writer *w, const char *name, const char *value)
{
    put_str(w, name);
    put(w, ": ", 2);
    put_str(w, value);
    put(w, "\r\n", 2);
}

/* Returns the length written to w, or WEFT_ERR_SPACE if anything did not fit. */
static int finish(const struct writer *w)
{
    if (w->full || w->len > INT_MAX) return WEFT_ERR_SPACE;
    return (int)w->len;
}

/* True for a token character (RFC 9110 §5.6.2). */
static bool hs_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* True for a byte allowed in a header value we write: HTAB, SP, VCHAR, obs-text. */
static bool hs_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* True if the NUL-terminated z may be written as a header value without enabling header
 * injection: no CR, LF or other control characters. */
static bool value_ok(const char *z)
{
    for (; *z != '\0'; z++)
        if (!hs_value_char((unsigned char)*z)) return false;
    return true;
}

/* True if z is a non-empty request-target: visible ASCII or obs-text, no SP, no CTL. */
static bool target_ok(const char *z)
{
    if (*z == '\0') return false;
    for (; *z != '\0'; z++)
        if ((unsigned char)*z <= 0x20 || (unsigned char)*z == 0x7F) return false;
    return true;
}

/* True if z is a sequence of complete "Name: value\r\n" lines (possibly none). */
static bool lines_ok(const char *z)
{
    while (*z != '\0') {
        const char *name = z;
        while (hs_token_char((unsigned char)*z))
            z++;
        if (z == name || *z != ':') return false;
        z++;
        while (hs_value_char((unsigned char)*z))
            z++;
        if (z[0] != '\r' || z[1] != '\n') return false;
        z += 2;
    }
    return true;
}

/* True if s[0..n) equals the NUL-terminated z exactly (case-sensitive). */
static bool equal_exact(const char *s, size_t n, const char *z)
{
    return strlen(z) == n && (n == 0 || memcmp(s, z, n) == 0);
}

/* Counts the headers named `name` (case-insensitive) in h[0..n); *first receives the first
 * one (NULL if none). */
static size_t count_headers(const struct weft_http_header *h, size_t n, const char *name,
                            const struct weft_http_header **first)
{
    *first = weft_http_find_header(h, n, name);
    if (*first == NULL) return 0;
    size_t count = 0;
    size_t from = (size_t)(*first - h);
    for (size_t i = from; i < n; i++)
        if (weft_http_find_header(&h[i], 1, name) != NULL) count++;
    return count;
}

/* True if any header named `name` in h[0..n) is a token list containing `token` (both
 * case-insensitive); repeated headers form one list, as in RFC 9110 §5.3. */
static bool any_list_has(const struct weft_http_header *h, size_t n, const char *name,
                         const char *token)
{
    for (size_t i = 0; i < n; i++)
        if (weft_http_find_header(&h[i], 1, name) != NULL &&
            weft_http_list_has(h[i].value, h[i].value_len, token))
            return true;
    return false;
}

/* Computes Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) into out (28 characters + NUL).
 * Writes the empty string if key_len exceeds WS_KEY_MAX or SHA-1 is unavailable. */
void weft_ws_accept(const char *key, size_t key_len, char out[29])
{
    unsigned char input[WS_KEY_MAX + sizeof ws_guid - 1];
    unsigned char digest[SHA_DIGEST_LENGTH];
    out[0] = '\0';
    if (key_len > WS_KEY_MAX || (key == NULL && key_len != 0)) return;
    if (key_len != 0) memcpy(input, key, key_len);
    memcpy(input + key_len, ws_guid, sizeof ws_guid - 1);
    if (SHA1(input, key_len + sizeof ws_guid - 1, digest) == NULL) return;
    weft_base64_encode(digest, sizeof digest, out);
}

/*
 * Validates a parsed upgrade request (RFC 6455 §4.2.1) and fills *info with slices of it.
 * Returns 0, 405 (method not GET), 426 (Sec-WebSocket-Version present but not exactly "13"),
 * or 400: HTTP/1.0, Host missing or repeated, Upgrade without "websocket", Connection without
 * "upgrade", Sec-WebSocket-Version missing, Sec-WebSocket-Key missing, repeated or not the
 * base64 of 16 bytes. Of repeated Origin, Sec-WebSocket-Protocol and Sec-WebSocket-Extensions
 * headers only the first is reported.
 */
int weft_handshake_check_request(const struct weft_http_request *req,
                                 struct weft_upgrade_info *info)
{
    const struct weft_http_header *h = req->headers;
    size_t n = req->num_headers;
    const struct weft_http_header *first;

    memset(info, 0, sizeof *info);
    if (!equal_exact(req->method, req->method_len, "GET")) return 405;
    if (req->minor_version < 1) return 400;

    if (count_headers(h, n, "Host", &first) != 1) return 400;
    info->host = first->value;
    info->host_len = first->value_len;

    if (!any_list_has(h, n, "Upgrade", "websocket")) return 400;
    if (!any_list_has(h, n, "Connection", "upgrade")) return 400;

    if (count_headers(h, n, "Sec-WebSocket-Version", &first) == 0) return 400;
    for (size_t i = 0; i < n; i++)
        if (weft_http_find_header(&h[i], 1, "Sec-WebSocket-Version") != NULL &&
            !equal_exact(h[i].value, h[i].value_len, "13"))
            return 426;

    if (count_headers(h, n, "Sec-WebSocket-Key", &first) != 1) return 400;
    uint8_t nonce[16];
    if (weft_base64_decode(first->value, first->value_len, nonce, sizeof nonce) !=
        (long)sizeof nonce)
        return 400;
    info->key = first->value;
    info->key_len = first->value_len;

    if ((first = weft_http_find_header(h, n, "Origin")) != NULL) {
        info->origin = first->value;
        info->origin_len = first->value_len;
    }
    if ((first = weft_http_find_header(h, n, "Sec-WebSocket-Protocol")) != NULL) {
        info->protocols = first->value;
        info->protocols_len = first->value_len;
    }
    if ((first = weft_http_find_header(h, n, "Sec-WebSocket-Extensions")) != NULL) {
        info->extensions = first->value;
        info->extensions_len = first->value_len;
    }
    return 0;
}

/*
 * Writes "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection, Sec-WebSocket-Accept,
 * the optional Sec-WebSocket-Protocol / -Extensions (omitted when NULL or empty) and
 * extra_headers. Returns the length, WEFT_ERR_SPACE, or WEFT_ERR_INVAL for a field containing
 * control characters, malformed extra_headers, or a key too long to hash.
 */
int weft_handshake_response(char *out, size_t cap, const char *key, size_t key_len,
                            const char *protocol, const char *extensions, const char *extra_headers)
{
    char accept[WS_ACCEPT_LEN + 1];
    if (key == NULL) return WEFT_ERR_INVAL;
    if (protocol != NULL && !value_ok(protocol)) return WEFT_ERR_INVAL;
    if (extensions != NULL && !value_ok(extensions)) return WEFT_ERR_INVAL;
    if (extra_headers != NULL && !lines_ok(extra_headers)) return WEFT_ERR_INVAL;
    weft_ws_accept(key, key_len, accept);
    if (accept[0] == '\0') return WEFT_ERR_INVAL;

    struct writer w = {out, cap, 0, false};
    put_str(&w, "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n");
    put_header(&w, "Sec-WebSocket-Accept", accept);
    if (protocol != NULL && protocol[0] != '\0') put_header(&w, "Sec-WebSocket-Protocol", protocol);
    if (extensions != NULL && extensions[0] != '\0')
        put_header(&w, "Sec-WebSocket-Extensions", extensions);
    if (extra_headers != NULL) put_str(&w, extra_headers);
    put(&w, "\r\n", 2);
    return finish(&w);
}

/*
 * Writes an HTTP/1.1 error response: status line, Content-Type: text/plain, Content-Length,
 * Connection: close, Sec-WebSocket-Version: 13 for 426, extra_headers, blank line, body (NULL
 * means empty). Returns the length, WEFT_ERR_SPACE, or WEFT_ERR_INVAL for a status outside
 * 100..999 or malformed extra_headers.
 */
int weft_http_error_response(char *out, size_t cap, int status, const char *extra_headers,
                             const char *body)
{
    if (status < 100 || status > 999) return WEFT_ERR_INVAL;
    if (extra_headers != NULL && !lines_ok(extra_headers)) return WEFT_ERR_INVAL;
    if (body == NULL) body = "";
    size_t body_len = strlen(body);

    struct writer w = {out, cap, 0, false};
    put_str(&w, "HTTP/1.1 ");
    put_uint(&w, (size_t)status);
    put(&w, " ", 1);
    put_str(&w, weft_http_reason(status));
    put_str(&w, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    put_uint(&w, body_len);
    put_str(&w, "\r\nConnection: close\r\n");
    if (status == 426) put_str(&w, "Sec-WebSocket-Version: 13\r\n");
    if (extra_headers != NULL) put_str(&w, extra_headers);
    put(&w, "\r\n", 2);
    put(&w, body, body_len);
    return finish(&w);
}

/* Draws 16 random bytes from rnd and writes their base64 (24 characters + NUL) into key. */
void weft_handshake_key(struct weft_random *rnd, char key[25])
{
    uint8_t nonce[16];
    /* On WEFT_ERR_IO the bytes still come from the documented fallback: usable as a nonce. */
    (void)weft_random_bytes(rnd, nonce, sizeof nonce);
    weft_base64_encode(nonce, sizeof nonce, key);
}

/*
 * Writes the client's upgrade request: "GET path HTTP/1.1", Host, Upgrade, Connection,
 * Sec-WebSocket-Key, Sec-WebSocket-Version: 13, then Origin, Sec-WebSocket-Protocol and
 * Sec-WebSocket-Extensions when given (non-empty) and extra_headers. Returns the length,
 * WEFT_ERR_SPACE, or WEFT_ERR_INVAL (no host, a key that is not 24 characters, a path with
 * spaces or control characters, a field with control characters, malformed extra_headers).
 */
int weft_handshake_request(char *out, size_t cap, const struct weft_client_request *cr,
                           const char key[25])
{
    if (cr == NULL || key == NULL || cr->host == NULL || cr->host[0] == '\0') return WEFT_ERR_INVAL;
    const char *path = cr->path != NULL ? cr->path : "/";
    if (!target_ok(path) || !value_ok(cr->host)) return WEFT_ERR_INVAL;
    if (strnlen(key, WS_KEY_LEN + 1) != WS_KEY_LEN || !value_ok(key)) return WEFT_ERR_INVAL;
    if ((cr->origin != NULL && !value_ok(cr->origin)) ||
        (cr->protocols != NULL && !value_ok(cr->protocols)) ||
        (cr->extensions != NULL && !value_ok(cr->extensions)) ||
        (cr->extra_headers != NULL && !lines_ok(cr->extra_headers)))
        return WEFT_ERR_INVAL;

    struct writer w = {out, cap, 0, false};
    put_str(&w, "GET ");
    put_str(&w, path);
    put_str(&w, " HTTP/1.1\r\n");
    put_header(&w, "Host", cr->host);
    put_str(&w, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    put_header(&w, "Sec-WebSocket-Key", key);
    put_str(&w, "Sec-WebSocket-Version: 13\r\n");
    if (cr->origin != NULL && cr->origin[0] != '\0') put_header(&w, "Origin", cr->origin);
    if (cr->protocols != NULL && cr->protocols[0] != '\0')
        put_header(&w, "Sec-WebSocket-Protocol", cr->protocols);
    if (cr->extensions != NULL && cr->extensions[0] != '\0')
        put_header(&w, "Sec-WebSocket-Extensions", cr->extensions);
    if (cr->extra_headers != NULL) put_str(&w, cr->extra_headers);
    put(&w, "\r\n", 2);
    return finish(&w);
}

/* True if s[0..n) equals t[0..n) ignoring ASCII case. */
static bool equal_nocase_n(const char *s, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)t[i];
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + ('a' - 'A'));
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + ('a' - 'A'));
        if (a != b) return false;
    }
    return true;
}

/* Returns the length of the extension name at the start of the list element item[0..len):
 * the text before the first ';', without trailing whitespace. */
static size_t extension_name_len(const char *item, size_t len)
{
    const char *semi = memchr(item, ';', len);
    size_t n = semi != NULL ? (size_t)(semi - item) : len;
    while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
        n--;
    return n;
}

/* True if the NUL-terminated list `offered` (may be NULL) has an element equal to s[0..n)
 * (exactly). With `extension_names`, the extension names of the offered elements are compared
 * instead, ignoring ASCII case. */
static bool offered_has(const char *offered, const char *s, size_t n, bool extension_names)
{
    if (offered == NULL) return false;
    size_t len = strlen(offered);
    size_t pos = 0;
    const char *item;
    size_t item_len;
    while (weft_http_list_next(offered, len, &pos, &item, &item_len)) {
        if (extension_names) {
            item_len = extension_name_len(item, item_len);
            if (item_len == n && equal_nocase_n(item, s, n)) return true;
        } else if (item_len == n && memcmp(item, s, n) == 0) {
            return true;
        }
    }
    return false;
}

/* True if the NUL-terminated list z is NULL or has no elements. */
static bool list_is_empty(const char *z)
{
    size_t pos = 0;
    const char *item;
    size_t item_len;
    return z == NULL || !weft_http_list_next(z, strlen(z), &pos, &item, &item_len);
}

/* Records the failure text in res and returns WEFT_ERR_PROTO. */
static int fail(struct weft_handshake_result *res, const char *error)
{
    res->protocol = NULL;
    res->protocol_len = 0;
    res->extensions = NULL;
    res->extensions_len = 0;
    res->error = error;
    return WEFT_ERR_PROTO;
}

/*
 * Checks the server's response against our request (RFC 6455 §4.1): status 101, Upgrade
 * containing "websocket", Connection containing "upgrade", exactly one Sec-WebSocket-Accept
 * equal to the expected value, at most one Sec-WebSocket-Protocol naming a subprotocol we
 * offered (compared exactly), at most one Sec-WebSocket-Extensions header whose extension
 * names (the token before ';', case-insensitive) were all in our offer. Returns WEFT_OK with
 * res filled, or WEFT_ERR_PROTO with res->error set; on a wrong status the caller reads
 * resp->status.
 */
int weft_handshake_check_response(const struct weft_http_response *resp, const char key[25],
                                  const char *offered_protocols, const char *offered_extensions,
                                  struct weft_handshake_result *res)
{
    const struct weft_http_header *h = resp->headers;
    size_t n = resp->num_headers;
    const struct weft_http_header *first;

    memset(res, 0, sizeof *res);
    if (resp->status != 101) return fail(res, "unexpected HTTP status (expected 101)");
    if (!any_list_has(h, n, "Upgrade", "websocket"))
        return fail(res, "response lacks \"Upgrade: websocket\"");
    if (!any_list_has(h, n, "Connection", "upgrade"))
        return fail(res, "response lacks \"Connection: upgrade\"");

    size_t count = count_headers(h, n, "Sec-WebSocket-Accept", &first);
    if (count == 0) return fail(res, "response lacks Sec-WebSocket-Accept");
    if (count > 1) return fail(res, "response repeats Sec-WebSocket-Accept");
    char expected[WS_ACCEPT_LEN + 1];
    weft_ws_accept(key, strnlen(key, WS_KEY_LEN + 1), expected);
    if (expected[0] == '\0') return fail(res, "cannot compute Sec-WebSocket-Accept for the key");
    if (!equal_exact(first->value, first->value_len, expected))
        return fail(res, "Sec-WebSocket-Accept does not match the key");

    count = count_headers(h, n, "Sec-WebSocket-Protocol", &first);
    if (count > 1) return fail(res, "response repeats Sec-WebSocket-Protocol");
    if (count == 1) {
        if (list_is_empty(offered_protocols))
            return fail(res, "server selected a subprotocol but none was offered");
        if (!offered_has(offered_protocols, first->value, first->value_len, false))
            return fail(res, "server selected a subprotocol that was not offered");
        res->protocol = first->value;
        res->protocol_len = first->value_len;
    }

    count = count_headers(h, n, "Sec-WebSocket-Extensions", &first);
    if (count > 1) return fail(res, "response repeats Sec-WebSocket-Extensions");
    if (count == 1) {
        size_t pos = 0;
        const char *item;
        size_t item_len;
        bool any = false;
        while (weft_http_list_next(first->value, first->value_len, &pos, &item, &item_len)) {
            if (list_is_empty(offered_extensions))
                return fail(res, "server accepted an extension but none was offered");
            if (!offered_has(offered_extensions, item, extension_name_len(item, item_len), true))
                return fail(res, "server accepted an extension that was not offered");
            any = true;
        }
        if (any) {
            res->extensions = first->value;
            res->extensions_len = first->value_len;
        }
    }
    return WEFT_OK;
}
