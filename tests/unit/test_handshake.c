/*
 * test_handshake.c — the RFC 6455 opening handshake: accept computation, server-side request
 * checks and responses, client-side key, request and response checks, and full round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft.h"

/* ------------------------------------------------------------------ helpers */

static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/* Asserts that the slice s[0..n) equals z. */
static void assert_slice(const char *s, size_t n, const char *z)
{
    assert_non_null(s);
    assert_int_equal(n, strlen(z));
    if (n) assert_memory_equal(s, z, n);
}

/* Builds a request from a list of header lines (each without CRLF) after the request line
 * `line`, parses it (asserting it is a complete head) and returns check_request's verdict. */
static int check_lines(const char *line, const char *const *hdrs, size_t n, char *buf, size_t cap,
                       struct weft_http_request *req, struct weft_upgrade_info *info)
{
    size_t len = (size_t)snprintf(buf, cap, "%s\r\n", line);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\r\n", hdrs[i]);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    assert_true(len < cap);
    int r = weft_http_parse_request(buf, len, 0, req);
    assert_int_equal(r, (int)len);
    return weft_handshake_check_request(req, info);
}

/* The header lines of a valid upgrade request (RFC 6455 §1.3), in a fixed order; tests copy
 * them and change or drop one at a time. */
#define BASE_COUNT 7
static const char *const base_headers[BASE_COUNT] = {
    "Host: server.example.com",   "Upgrade: websocket",
    "Connection: Upgrade",        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
};
enum { H_HOST, H_UPGRADE, H_CONNECTION, H_KEY, H_ORIGIN, H_PROTOCOL, H_VERSION };

/* Runs check_request on the base request with header `idx` replaced by `repl` (NULL drops
 * it) and, if `add` is not NULL, one extra header line appended. */
static int check_variant(const char *line, int idx, const char *repl, const char *add)
{
    const char *hdrs[BASE_COUNT + 1];
    size_t n = 0;
    for (int i = 0; i < BASE_COUNT; i++) {
        if (i == idx && repl == NULL) continue;
        hdrs[n++] = i == idx ? repl : base_headers[i];
    }
    if (add != NULL) hdrs[n++] = add;
    static char buf[4096];
    static struct weft_http_request req;
    struct weft_upgrade_info info;
    return check_lines(line, hdrs, n, buf, sizeof buf, &req, &info);
}

/* Parses a response produced in out[0..len) and asserts it is one complete head. */
static void parse_response_exact(const char *out, int len, struct weft_http_response *resp)
{
    assert_true(len > 0);
    assert_int_equal(weft_http_parse_response(out, (size_t)len, 0, resp), len);
}

/* Builds the response text "HTTP/1.1 <status_line>\r\n" + lines + "\r\n" into buf, parses it,
 * and runs the client check with the RFC key and the given offers. */
static int client_check(const char *status_line, const char *const *lines, size_t n,
                        const char *protocols, const char *extensions,
                        struct weft_handshake_result *res)
{
    static char buf[4096];
    static struct weft_http_response resp;
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s\r\n", status_line);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\r\n", lines[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "\r\n");
    assert_int_equal(weft_http_parse_response(buf, len, 0, &resp), (int)len);
    return weft_handshake_check_response(&resp, rfc_key, protocols, extensions, res);
}

/* ------------------------------------------------------------------ accept and key */

static void test_accept_rfc_example(void **state)
{
    (void)state;
    char out[29];
    memset(out, 'X', sizeof out);
    weft_ws_accept(rfc_key, strlen(rfc_key), out);
    assert_string_equal(out, rfc_accept);
    /* A different key gives a different accept. */
    weft_ws_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    /* Only key_len bytes are hashed. */
    weft_ws_accept("dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out);
    assert_string_equal(out, rfc_accept);
    /* An over-long key yields the empty string rather than a wrong value. */
    char longkey[200];
    memset(longkey, 'A', sizeof longkey);
    weft_ws_accept(longkey, sizeof longkey, out);
    assert_string_equal(out, "");
}

static void test_handshake_key(void **state)
{
    (void)state;
    struct weft_random rnd;
    memset(&rnd, 0, sizeof rnd);
    char k1[25], k2[25];
    memset(k1, 'X', sizeof k1);
    weft_handshake_key(&rnd, k1);
    weft_handshake_key(&rnd, k2);
    assert_int_equal(strlen(k1), 24);
    assert_int_equal(strlen(k2), 24);
    uint8_t raw[16];
    assert_int_equal(weft_base64_decode(k1, 24, raw, sizeof raw), 16);
    assert_int_equal(weft_base64_decode(k2, 24, raw, sizeof raw), 16);
    assert_string_not_equal(k1, k2);
}

/* ------------------------------------------------------------------ server: request check */

static void test_check_request_valid(void **state)
{
    (void)state;
    char buf[2048];
    struct weft_http_request req;
    struct weft_upgrade_info info;
    int r =
        check_lines("GET /chat HTTP/1.1", base_headers, BASE_COUNT, buf, sizeof buf, &req, &info);
    assert_int_equal(r, 0);
    assert_slice(info.key, info.key_len, rfc_key);
    assert_slice(info.host, info.host_len, "server.example.com");
    assert_slice(info.origin, info.origin_len, "http://example.com");
    assert_slice(info.protocols, info.protocols_len, "chat, superchat");
    assert_null(info.extensions);
    assert_int_equal(info.extensions_len, 0);
}

static void test_check_request_optional_absent(void **state)
{
    (void)state;
    const char *hdrs[] = {"Host: h",
                          "Upgrade: websocket",
                          "Connection: Upgrade",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                          "Sec-WebSocket-Version: 13",
                          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"};
    char buf[2048];
    struct weft_http_request req;
    struct weft_upgrade_info info;
    memset(&info, 0x5a, sizeof info); /* must be fully overwritten */
    assert_int_equal(check_lines("GET / HTTP/1.1", hdrs, 6, buf, sizeof buf, &req, &info), 0);
    assert_null(info.origin);
    assert_int_equal(info.origin_len, 0);
    assert_null(info.protocols);
    assert_int_equal(info.protocols_len, 0);
    assert_slice(info.extensions, info.extensions_len,
                 "permessage-deflate; client_max_window_bits");
}

static void test_check_request_case_and_lists(void **state)
{
    (void)state;
    /* Connection as a list, with other tokens; case-insensitive names and tokens. */
    const char *hdrs[] = {
        "HOST: h", "upgrade: WebSocket", "connection: keep-alive, UPGRADE",
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "SEC-WEBSOCKET-VERSION: 13"};
    char buf[2048];
    struct weft_http_request req;
    struct weft_upgrade_info info;
    assert_int_equal(check_lines("GET / HTTP/1.1", hdrs, 5, buf, sizeof buf, &req, &info), 0);
    assert_slice(info.key, info.key_len, rfc_key);
    /* The token may come in a second Connection / Upgrade header (one list, RFC 9110 §5.3). */
    const char *split[] = {"Host: h",
                           "Upgrade: h2c",
                           "Upgrade: websocket",
                           "Connection: keep-alive",
                           "Connection: Upgrade",
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                           "Sec-WebSocket-Version: 13"};
    assert_int_equal(check_lines("GET / HTTP/1.1", split, 7, buf, sizeof buf, &req, &info), 0);
    /* HTTP/1.2 and later minors are accepted ("HTTP/1.1 or higher"). */
    assert_int_equal(check_variant("GET / HTTP/1.2", -1, NULL, NULL), 0);
}

static void test_check_request_405(void **state)
{
    (void)state;
    assert_int_equal(check_variant("POST / HTTP/1.1", -1, NULL, NULL), 405);
    assert_int_equal(check_variant("HEAD / HTTP/1.1", -1, NULL, NULL), 405);
    assert_int_equal(check_variant("get / HTTP/1.1", -1, NULL, NULL), 405); /* case-sensitive */
    assert_int_equal(check_variant("GETS / HTTP/1.1", -1, NULL, NULL), 405);
}

static void test_check_request_400(void **state)
{
    (void)state;
    const char *line = "GET / HTTP/1.1";
    /* Control: the unmodified request passes. */
    assert_int_equal(check_variant(line, -1, NULL, NULL), 0);
    assert_int_equal(check_variant("GET / HTTP/1.0", -1, NULL, NULL), 400);
    /* Host */
    assert_int_equal(check_variant(line, H_HOST, NULL, NULL), 400);
    assert_int_equal(check_variant(line, -1, NULL, "Host: other"), 400);
    /* Upgrade */
    assert_int_equal(check_variant(line, H_UPGRADE, NULL, NULL), 400);
    assert_int_equal(check_variant(line, H_UPGRADE, "Upgrade: h2c", NULL), 400);
    assert_int_equal(check_variant(line, H_UPGRADE, "Upgrade: websockets", NULL), 400);
    assert_int_equal(check_variant(line, H_UPGRADE, "Upgrade:", NULL), 400);
    /* Connection */
    assert_int_equal(check_variant(line, H_CONNECTION, NULL, NULL), 400);
    assert_int_equal(check_variant(line, H_CONNECTION, "Connection: keep-alive", NULL), 400);
    assert_int_equal(check_variant(line, H_CONNECTION, "Connection: upgrade-now", NULL), 400);
    /* Version missing (the RFC's "MUST include") */
    assert_int_equal(check_variant(line, H_VERSION, NULL, NULL), 400);
    /* Key */
    assert_int_equal(check_variant(line, H_KEY, NULL, NULL), 400);
    assert_int_equal(check_variant(line, H_KEY, "Sec-WebSocket-Key:", NULL), 400);
    assert_int_equal(check_variant(line, H_KEY, "Sec-WebSocket-Key: not base64!!", NULL), 400);
    assert_int_equal(check_variant(line, H_KEY, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ", NULL),
                     400); /* padding missing */
    /* 15 and 17 bytes */
    assert_int_equal(check_variant(line, H_KEY, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", NULL),
                     400);
    assert_int_equal(
        check_variant(line, H_KEY, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=", NULL), 400);
    /* Duplicate key, even with the same value */
    assert_int_equal(check_variant(line, -1, NULL, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
                     400);
    assert_int_equal(check_variant(line, -1, NULL, "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA=="),
                     400);
}

static void test_check_request_426(void **state)
{
    (void)state;
    const char *line = "GET / HTTP/1.1";
    assert_int_equal(check_variant(line, H_VERSION, "Sec-WebSocket-Version: 8", NULL), 426);
    assert_int_equal(check_variant(line, H_VERSION, "Sec-WebSocket-Version: 12", NULL), 426);
    assert_int_equal(check_variant(line, H_VERSION, "Sec-WebSocket-Version: 13, 8", NULL), 426);
    assert_int_equal(check_variant(line, H_VERSION, "Sec-WebSocket-Version: 013", NULL), 426);
    assert_int_equal(check_variant(line, H_VERSION, "Sec-WebSocket-Version:", NULL), 426);
    /* A second, different version header */
    assert_int_equal(check_variant(line, -1, NULL, "Sec-WebSocket-Version: 8"), 426);
}

static void test_check_request_first_protocol_header(void **state)
{
    (void)state;
    const char *hdrs[] = {"Host: h",
                          "Upgrade: websocket",
                          "Connection: Upgrade",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                          "Sec-WebSocket-Version: 13",
                          "Sec-WebSocket-Protocol: chat",
                          "Sec-WebSocket-Protocol: superchat",
                          "Origin: https://a.example",
                          "Origin: https://b.example"};
    char buf[2048];
    struct weft_http_request req;
    struct weft_upgrade_info info;
    assert_int_equal(check_lines("GET / HTTP/1.1", hdrs, 9, buf, sizeof buf, &req, &info), 0);
    assert_slice(info.protocols, info.protocols_len, "chat");
    assert_slice(info.origin, info.origin_len, "https://a.example");
}

/* ------------------------------------------------------------------ server: responses */

static void test_handshake_response_minimal(void **state)
{
    (void)state;
    char out[512];
    int n = weft_handshake_response(out, sizeof out, rfc_key, strlen(rfc_key), NULL, NULL, NULL);
    const char *expect = "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                         "\r\n";
    assert_int_equal(n, (int)strlen(expect));
    assert_memory_equal(out, expect, (size_t)n);

    struct weft_http_response resp;
    parse_response_exact(out, n, &resp);
    assert_int_equal(resp.status, 101);
    assert_int_equal(resp.num_headers, 3);
    assert_null(weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Protocol"));
    /* Empty protocol / extensions strings are omitted like NULL. */
    int n2 = weft_handshake_response(out, sizeof out, rfc_key, strlen(rfc_key), "", "", "");
    assert_int_equal(n2, n);
}

static void test_handshake_response_full(void **state)
{
    (void)state;
    char out[512];
    int n = weft_handshake_response(out, sizeof out, rfc_key, strlen(rfc_key), "chat",
                                    "permessage-deflate; server_no_context_takeover",
                                    "X-Server: weft\r\nSet-Cookie: a=b\r\n");
    struct weft_http_response resp;
    parse_response_exact(out, n, &resp);
    assert_int_equal(resp.status, 101);
    assert_slice(resp.reason, resp.reason_len, "Switching Protocols");
    assert_int_equal(resp.num_headers, 7);
    const struct weft_http_header *h;
    h = weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Accept");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, rfc_accept);
    h = weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Protocol");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "chat");
    h = weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Extensions");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "permessage-deflate; server_no_context_takeover");
    h = weft_http_find_header(resp.headers, resp.num_headers, "Set-Cookie");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "a=b");

    /* The client accepts it when it offered both. */
    struct weft_handshake_result res;
    assert_int_equal(weft_handshake_check_response(&resp, rfc_key, "superchat, chat",
                                                   "permessage-deflate", &res),
                     WEFT_OK);
    assert_null(res.error);
    assert_slice(res.protocol, res.protocol_len, "chat");
    assert_slice(res.extensions, res.extensions_len,
                 "permessage-deflate; server_no_context_takeover");

    /* Every capacity short of the length is WEFT_ERR_SPACE; the exact length suffices. */
    char small[512];
    for (int cap = 0; cap < n; cap++)
        assert_int_equal(weft_handshake_response(small, (size_t)cap, rfc_key, strlen(rfc_key),
                                                 "chat",
                                                 "permessage-deflate; server_no_context_takeover",
                                                 "X-Server: weft\r\nSet-Cookie: a=b\r\n"),
                         WEFT_ERR_SPACE);
    assert_int_equal(weft_handshake_response(small, (size_t)n, rfc_key, strlen(rfc_key), "chat",
                                             "permessage-deflate; server_no_context_takeover",
                                             "X-Server: weft\r\nSet-Cookie: a=b\r\n"),
                     n);
    assert_memory_equal(small, out, (size_t)n);
}

static void test_handshake_response_rejects_injection(void **state)
{
    (void)state;
    char out[512];
    size_t kl = strlen(rfc_key);
    assert_int_equal(
        weft_handshake_response(out, sizeof out, rfc_key, kl, "chat\r\nX: y", NULL, NULL),
        WEFT_ERR_INVAL);
    assert_int_equal(weft_handshake_response(out, sizeof out, rfc_key, kl, NULL, "a\nb", NULL),
                     WEFT_ERR_INVAL);
    assert_int_equal(weft_handshake_response(out, sizeof out, rfc_key, kl, NULL, NULL, "X: y"),
                     WEFT_ERR_INVAL); /* no CRLF */
    assert_int_equal(
        weft_handshake_response(out, sizeof out, rfc_key, kl, NULL, NULL, "X: y\r\n\r\nbody"),
        WEFT_ERR_INVAL);
    assert_int_equal(weft_handshake_response(out, sizeof out, rfc_key, kl, NULL, NULL, "X y\r\n"),
                     WEFT_ERR_INVAL);
    assert_int_equal(weft_handshake_response(out, sizeof out, NULL, 0, NULL, NULL, NULL),
                     WEFT_ERR_INVAL);
    /* Control: the same call with a well-formed extra header line works. */
    assert_true(weft_handshake_response(out, sizeof out, rfc_key, kl, NULL, NULL, "X: y\r\n") > 0);
}

static void test_error_response(void **state)
{
    (void)state;
    char out[512];
    int n = weft_http_error_response(out, sizeof out, 400, NULL, "bad handshake\n");
    struct weft_http_response resp;
    assert_true(n > 0);
    int head = weft_http_parse_response(out, (size_t)n, 0, &resp);
    assert_true(head > 0);
    assert_int_equal(resp.status, 400);
    assert_slice(resp.reason, resp.reason_len, "Bad Request");
    const struct weft_http_header *h;
    h = weft_http_find_header(resp.headers, resp.num_headers, "Content-Length");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "14");
    assert_int_equal(n - head, 14);
    assert_memory_equal(out + head, "bad handshake\n", 14);
    h = weft_http_find_header(resp.headers, resp.num_headers, "Connection");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "close");
    h = weft_http_find_header(resp.headers, resp.num_headers, "Content-Type");
    assert_non_null(h);
    assert_null(weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Version"));

    /* 426 carries Sec-WebSocket-Version: 13; extra headers are inserted. */
    n = weft_http_error_response(out, sizeof out, 426, "Retry-After: 1\r\n", NULL);
    head = weft_http_parse_response(out, (size_t)n, 0, &resp);
    assert_int_equal(head, n); /* NULL body: empty */
    assert_int_equal(resp.status, 426);
    h = weft_http_find_header(resp.headers, resp.num_headers, "Sec-WebSocket-Version");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "13");
    h = weft_http_find_header(resp.headers, resp.num_headers, "Retry-After");
    assert_non_null(h);
    h = weft_http_find_header(resp.headers, resp.num_headers, "Content-Length");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "0");

    /* Unknown status, space and invalid arguments. */
    n = weft_http_error_response(out, sizeof out, 599, NULL, "x");
    assert_true(weft_http_parse_response(out, (size_t)n, 0, &resp) > 0);
    assert_int_equal(resp.status, 599);
    assert_slice(resp.reason, resp.reason_len, "Unknown");
    for (size_t cap = 0; cap < (size_t)n; cap++)
        assert_int_equal(weft_http_error_response(out, cap, 599, NULL, "x"), WEFT_ERR_SPACE);
    assert_int_equal(weft_http_error_response(out, sizeof out, 99, NULL, NULL), WEFT_ERR_INVAL);
    assert_int_equal(weft_http_error_response(out, sizeof out, 1000, NULL, NULL), WEFT_ERR_INVAL);
    assert_int_equal(weft_http_error_response(out, sizeof out, 400, "Bad\r\n", NULL),
                     WEFT_ERR_INVAL);
}

/* ------------------------------------------------------------------ client: request */

static void test_handshake_request(void **state)
{
    (void)state;
    struct weft_client_request cr = {
        .host = "example.com:8080",
        .path = "/chat?x=1",
        .origin = "https://example.com",
        .protocols = "chat, superchat",
        .extensions = "permessage-deflate; client_max_window_bits",
        .extra_headers = "Authorization: Bearer t\r\n",
    };
    char out[1024];
    int n = weft_handshake_request(out, sizeof out, &cr, rfc_key);
    assert_true(n > 0);
    assert_memory_equal(out, "GET /chat?x=1 HTTP/1.1\r\n", 24);

    struct weft_http_request req;
    assert_int_equal(weft_http_parse_request(out, (size_t)n, 0, &req), n);
    assert_int_equal(req.minor_version, 1);
    struct weft_upgrade_info info;
    assert_int_equal(weft_handshake_check_request(&req, &info), 0);
    assert_slice(info.host, info.host_len, "example.com:8080");
    assert_slice(info.key, info.key_len, rfc_key);
    assert_slice(info.origin, info.origin_len, "https://example.com");
    assert_slice(info.protocols, info.protocols_len, "chat, superchat");
    assert_slice(info.extensions, info.extensions_len,
                 "permessage-deflate; client_max_window_bits");
    const struct weft_http_header *h =
        weft_http_find_header(req.headers, req.num_headers, "Authorization");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "Bearer t");
    h = weft_http_find_header(req.headers, req.num_headers, "Sec-WebSocket-Version");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "13");

    /* Minimal: path defaults to "/", optional headers absent. */
    struct weft_client_request min = {.host = "h"};
    n = weft_handshake_request(out, sizeof out, &min, rfc_key);
    assert_int_equal(weft_http_parse_request(out, (size_t)n, 0, &req), n);
    assert_slice(req.target, req.target_len, "/");
    assert_int_equal(req.num_headers, 5);
    assert_int_equal(weft_handshake_check_request(&req, &info), 0);
    assert_null(info.origin);
    assert_null(info.protocols);
    assert_null(info.extensions);

    for (size_t cap = 0; cap < (size_t)n; cap++)
        assert_int_equal(weft_handshake_request(out, cap, &min, rfc_key), WEFT_ERR_SPACE);

    /* Invalid input */
    struct weft_client_request bad = {.host = NULL};
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, rfc_key), WEFT_ERR_INVAL);
    bad.host = "h\r\nX: y";
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, rfc_key), WEFT_ERR_INVAL);
    bad.host = "h";
    bad.path = "/a b";
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, rfc_key), WEFT_ERR_INVAL);
    bad.path = "/";
    bad.protocols = "chat\n";
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, rfc_key), WEFT_ERR_INVAL);
    bad.protocols = NULL;
    const char short_key[25] = "short"; /* NUL-padded: a 5-character key */
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, short_key), WEFT_ERR_INVAL);
    bad.extra_headers = "NoColon\r\n";
    assert_int_equal(weft_handshake_request(out, sizeof out, &bad, rfc_key), WEFT_ERR_INVAL);
    bad.extra_headers = NULL;
    assert_true(weft_handshake_request(out, sizeof out, &bad, rfc_key) > 0); /* control */
}

/* ------------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
    (void)state;
    struct weft_random rnd;
    memset(&rnd, 0, sizeof rnd);
    char key[25];
    weft_handshake_key(&rnd, key);

    /* Client writes its request. */
    const char *offer_protocols = "v2.chat, v1.chat";
    const char *offer_ext = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame";
    struct weft_client_request cr = {.host = "localhost:9001",
                                     .path = "/hub",
                                     .protocols = offer_protocols,
                                     .extensions = offer_ext};
    char reqbuf[1024];
    int rn = weft_handshake_request(reqbuf, sizeof reqbuf, &cr, key);
    assert_true(rn > 0);

    /* Server parses and checks it, picks the second protocol and answers. */
    struct weft_http_request req;
    assert_int_equal(weft_http_parse_request(reqbuf, (size_t)rn, 0, &req), rn);
    struct weft_upgrade_info info;
    assert_int_equal(weft_handshake_check_request(&req, &info), 0);
    assert_slice(info.key, info.key_len, key);
    size_t pos = 0;
    const char *item;
    size_t item_len;
    char chosen[32];
    assert_true(weft_http_list_next(info.protocols, info.protocols_len, &pos, &item, &item_len));
    assert_true(weft_http_list_next(info.protocols, info.protocols_len, &pos, &item, &item_len));
    assert_true(item_len < sizeof chosen);
    memcpy(chosen, item, item_len);
    chosen[item_len] = '\0';
    assert_string_equal(chosen, "v1.chat");

    char respbuf[1024];
    int sn = weft_handshake_response(respbuf, sizeof respbuf, info.key, info.key_len, chosen,
                                     "permessage-deflate; client_max_window_bits=15", NULL);
    assert_true(sn > 0);

    /* Client parses and checks the response. */
    struct weft_http_response resp;
    assert_int_equal(weft_http_parse_response(respbuf, (size_t)sn, 0, &resp), sn);
    struct weft_handshake_result res;
    assert_int_equal(weft_handshake_check_response(&resp, key, offer_protocols, offer_ext, &res),
                     WEFT_OK);
    assert_null(res.error);
    assert_slice(res.protocol, res.protocol_len, "v1.chat");
    assert_slice(res.extensions, res.extensions_len,
                 "permessage-deflate; client_max_window_bits=15");

    /* With another client's key the same response fails. */
    char other[25];
    weft_handshake_key(&rnd, other);
    assert_int_equal(weft_handshake_check_response(&resp, other, offer_protocols, offer_ext, &res),
                     WEFT_ERR_PROTO);
    assert_non_null(res.error);
}

/* ------------------------------------------------------------------ client: response check */

static const char *const ok_lines[] = {
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
};

static void test_check_response_ok_forms(void **state)
{
    (void)state;
    struct weft_handshake_result res;
    assert_int_equal(
        client_check("HTTP/1.1 101 Switching Protocols", ok_lines, 3, NULL, NULL, &res), WEFT_OK);
    assert_null(res.protocol);
    assert_null(res.extensions);
    assert_null(res.error);
    /* Case-insensitive names and tokens, Connection as a list. */
    const char *lines[] = {"UPGRADE: WebSocket", "connection: keep-alive, upgrade",
                           "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="};
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 3, "chat", "permessage-deflate", &res),
                     WEFT_OK);
    assert_null(res.protocol); /* the server may decline both offers */
    assert_null(res.extensions);
}

static void test_check_response_failures(void **state)
{
    (void)state;
    struct weft_handshake_result res;
    const char *lines[5];

    /* Non-101 status */
    assert_int_equal(client_check("HTTP/1.1 403 Forbidden", ok_lines, 3, NULL, NULL, &res),
                     WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "status"));
    assert_int_equal(client_check("HTTP/1.1 200 OK", ok_lines, 3, NULL, NULL, &res),
                     WEFT_ERR_PROTO);

    /* Missing / wrong Upgrade */
    lines[0] = ok_lines[1];
    lines[1] = ok_lines[2];
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 2, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "Upgrade"));
    lines[2] = "Upgrade: h2c";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 3, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "Upgrade"));

    /* Missing / wrong Connection */
    lines[0] = ok_lines[0];
    lines[1] = ok_lines[2];
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 2, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "Connection"));
    lines[2] = "Connection: keep-alive";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 3, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "Connection"));

    /* Missing, wrong, repeated accept */
    lines[0] = ok_lines[0];
    lines[1] = ok_lines[1];
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 2, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "Accept"));
    lines[2] = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 3, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "does not match"));
    lines[2] = "Sec-WebSocket-Accept: S3PPLMBiTxaQ9kYGzzhZRbK+xOo="; /* case matters */
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 3, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "does not match"));
    lines[2] = ok_lines[2];
    lines[3] = ok_lines[2];
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "repeats"));

    /* Subprotocol not offered, and subprotocol when none was offered */
    lines[3] = "Sec-WebSocket-Protocol: superchat";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, "chat", NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "not offered"));
    assert_null(res.protocol);
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, "chat, superchat2", NULL, &res),
                     WEFT_ERR_PROTO);
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, "chat, SuperChat", NULL, &res),
                     WEFT_ERR_PROTO); /* subprotocols compare exactly */
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "none was offered"));
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, " , ", NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "none was offered"));
    /* Control: offered, it passes. */
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, "chat, superchat", NULL, &res),
                     WEFT_OK);
    assert_slice(res.protocol, res.protocol_len, "superchat");
    /* Two protocol headers */
    lines[4] = "Sec-WebSocket-Protocol: chat";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 5, "chat, superchat", NULL, &res),
                     WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "repeats"));

    /* Extensions not offered, and extensions when none were offered */
    lines[3] = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, NULL, &res), WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "none was offered"));
    assert_int_equal(
        client_check("HTTP/1.1 101 OK", lines, 4, NULL, "x-webkit-deflate-frame", &res),
        WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "not offered"));
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, "permessage", &res),
                     WEFT_ERR_PROTO);
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, "permessage-deflate-v2", &res),
                     WEFT_ERR_PROTO);
    /* Control: offered (with parameters on either side, case-insensitive name), it passes. */
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL,
                                  "Permessage-Deflate; client_max_window_bits", &res),
                     WEFT_OK);
    assert_slice(res.extensions, res.extensions_len,
                 "permessage-deflate; server_no_context_takeover");
    /* One accepted extension of two in the response was not offered */
    lines[3] = "Sec-WebSocket-Extensions: permessage-deflate, x-evil";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 4, NULL, "permessage-deflate", &res),
                     WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "not offered"));
    assert_null(res.extensions);
    /* Two extension headers */
    lines[3] = "Sec-WebSocket-Extensions: permessage-deflate";
    lines[4] = "Sec-WebSocket-Extensions: permessage-deflate";
    assert_int_equal(client_check("HTTP/1.1 101 OK", lines, 5, NULL, "permessage-deflate", &res),
                     WEFT_ERR_PROTO);
    assert_non_null(strstr(res.error, "repeats"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc_example),
        cmocka_unit_test(test_handshake_key),
        cmocka_unit_test(test_check_request_valid),
        cmocka_unit_test(test_check_request_optional_absent),
        cmocka_unit_test(test_check_request_case_and_lists),
        cmocka_unit_test(test_check_request_405),
        cmocka_unit_test(test_check_request_400),
        cmocka_unit_test(test_check_request_426),
        cmocka_unit_test(test_check_request_first_protocol_header),
        cmocka_unit_test(test_handshake_response_minimal),
        cmocka_unit_test(test_handshake_response_full),
        cmocka_unit_test(test_handshake_response_rejects_injection),
        cmocka_unit_test(test_error_response),
        cmocka_unit_test(test_handshake_request),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_check_response_ok_forms),
        cmocka_unit_test(test_check_response_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
