/*
 * fuzz_request.c — libFuzzer target for the server side of the opening handshake.
 *
 * The input is parsed as a request head (default limit). Properties checked:
 *  - the result is 0, -400, -431 or a head length within the input and the limit;
 *  - prefix consistency: the prefix of length n/2 gives 0 or the same answer as the whole
 *    input (a head that fits in the prefix is found there with the same length and fields);
 *  - a complete head goes through weft_handshake_check_request; a refusal must be one of
 *    400/405/426 and its error response must parse back with that status; an acceptance
 *    must produce a 101 response (echoing the first offered subprotocol and the extension
 *    offer) that the response parser reads back whole and that weft_handshake_check_response
 *    accepts for the request's key and offers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies s[0..n) into a NUL-terminated buffer of cap bytes; false if it does not fit. */
static bool copy_z(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) return false;
    if (n) memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* True if the two parsed requests have the same start line and headers (as slices of the
 * same buffer). */
static bool same_request(const struct weft_http_request *a, const struct weft_http_request *b)
{
    if (a->method != b->method || a->method_len != b->method_len || a->target != b->target ||
        a->target_len != b->target_len || a->minor_version != b->minor_version ||
        a->num_headers != b->num_headers)
        return false;
    for (size_t i = 0; i < a->num_headers; i++)
        if (memcmp(&a->headers[i], &b->headers[i], sizeof a->headers[i]) != 0) return false;
    return true;
}

/* Builds the error response for status and checks that it parses back with that status. */
static void check_error_response(int status)
{
    char out[1024];
    int n = weft_http_error_response(out, sizeof out, status, NULL, "refused\n");
    if (n <= 0) abort();
    static struct weft_http_response resp;
    int h = weft_http_parse_response(out, (size_t)n, 0, &resp);
    if (h <= 0 || n - h != 8 || resp.status != status) abort();
    bool has_version =
        weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Version") != NULL;
    if (has_version != (status == 426)) abort();
}

/* Answers an accepted upgrade and checks the answer from the client's side. */
static void check_accept_path(const struct weft_upgrade_info *info)
{
    static char key[25], protocol[WEFT_HTTP_MAX_HEAD], offered[WEFT_HTTP_MAX_HEAD],
        extensions[WEFT_HTTP_MAX_HEAD];
    if (!copy_z(key, sizeof key, info->key, info->key_len) || strlen(key) != 24) abort();

    /* The server picks the first offered subprotocol, if any. */
    const char *chosen = NULL;
    const char *offer = NULL;
    if (info->protocols != NULL) {
        if (!copy_z(offered, sizeof offered, info->protocols, info->protocols_len)) abort();
        offer = offered;
        size_t pos = 0;
        const char *item;
        size_t item_len;
        if (weft_http_list_next(info->protocols, info->protocols_len, &pos, &item, &item_len)) {
            if (!copy_z(protocol, sizeof protocol, item, item_len)) abort();
            chosen = protocol;
        }
    }
    /* ... and accepts the extension offer verbatim (every name is then one offered). */
    const char *ext = NULL;
    if (info->extensions != NULL) {
        if (!copy_z(extensions, sizeof extensions, info->extensions, info->extensions_len)) abort();
        ext = extensions;
    }

    static char out[3 * WEFT_HTTP_MAX_HEAD];
    int n = weft_handshake_response(out, sizeof out, info->key, info->key_len, chosen, ext, NULL);
    if (n <= 0) abort();

    static struct weft_http_response resp;
    if (weft_http_parse_response(out, (size_t)n, sizeof out, &resp) != n) abort();
    if (resp.status != 101) abort();
    struct weft_handshake_result res;
    if (weft_handshake_check_response(&resp, key, offer, ext, &res) != WEFT_OK) abort();
    if ((res.protocol != NULL) != (chosen != NULL && chosen[0] != '\0')) abort();
    if (res.protocol != NULL &&
        (res.protocol_len != strlen(chosen) || memcmp(res.protocol, chosen, res.protocol_len)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exactly-sized copy, so reading past len is caught by ASan. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) return 0;
    if (size) memcpy(buf, data, size);

    static struct weft_http_request req, half;
    int r = weft_http_parse_request(buf, size, 0, &req);
    if (!(r == 0 || r == -400 || r == -431 ||
          (r > 0 && (size_t)r <= size && r <= WEFT_HTTP_MAX_HEAD)))
        abort();

    /* Prefix consistency. */
    size_t hn = size / 2;
    int rh = weft_http_parse_request(buf, hn, 0, &half);
    if (r > 0 && (size_t)r <= hn) {
        if (rh != r || !same_request(&req, &half)) abort();
    } else if (rh != 0 && rh != r) {
        abort();
    }
    if (r > 0 && (size_t)r > hn && rh != 0) abort();

    if (r > 0) {
        /* The head alone parses to the same result. */
        if (weft_http_parse_request(buf, (size_t)r, 0, &half) != r || !same_request(&req, &half))
            abort();
        struct weft_upgrade_info info;
        int status = weft_handshake_check_request(&req, &info);
        if (status == 0)
            check_accept_path(&info);
        else if (status == 400 || status == 405 || status == 426)
            check_error_response(status);
        else
            abort();
    }
    free(buf);
    return 0;
}
