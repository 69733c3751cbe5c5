/*
 * test_http.c — base64, the HTTP/1.1 request and response head parsers, and the token-list
 * helpers used by the opening handshake.
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

/* Parses the NUL-terminated head s as a request with the default limit. */
static int parse_req(const char *s, struct weft_http_request *req)
{
    return weft_http_parse_request(s, strlen(s), 0, req);
}

/* Asserts that header i of req is name: value (exactly, name case included). */
static void assert_header(const struct weft_http_header *h, const char *name, const char *value)
{
    assert_int_equal(h->name_len, strlen(name));
    assert_memory_equal(h->name, name, h->name_len);
    assert_int_equal(h->value_len, strlen(value));
    if (h->value_len) assert_memory_equal(h->value, value, h->value_len);
}

/* Asserts that the slice s[0..n) equals z. */
static void assert_slice(const char *s, size_t n, const char *z)
{
    assert_int_equal(n, strlen(z));
    if (n) assert_memory_equal(s, z, n);
}

/* Builds in buf a request head with `count` headers "X-H<i>: v" after a Host header (so
 * count + 1 headers in all), terminated by CRLF CRLF. Returns its length. */
static size_t build_many_headers(char *buf, size_t cap, int count)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    assert_true(n < cap);
    return n;
}

static const char valid_request[] = "GET /chat?room=1 HTTP/1.1\r\n"
                                    "Host: server.example.com:8080\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: keep-alive, Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Origin:http://example.com\r\n"
                                    "Sec-WebSocket-Protocol: \t chat, superchat \t\r\n"
                                    "Sec-WebSocket-Version: 13\r\n"
                                    "X-Empty:\r\n"
                                    "X-Utf8: caf\xc3\xa9\r\n"
                                    "\r\n";

/* Asserts every field of the parsed valid_request. */
static void assert_valid_request_fields(const struct weft_http_request *req)
{
    assert_slice(req->method, req->method_len, "GET");
    assert_slice(req->target, req->target_len, "/chat?room=1");
    assert_int_equal(req->minor_version, 1);
    assert_int_equal(req->num_headers, 9);
    assert_header(&req->headers[0], "Host", "server.example.com:8080");
    assert_header(&req->headers[1], "Upgrade", "websocket");
    assert_header(&req->headers[2], "Connection", "keep-alive, Upgrade");
    assert_header(&req->headers[3], "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    assert_header(&req->headers[4], "Origin", "http://example.com");
    assert_header(&req->headers[5], "Sec-WebSocket-Protocol", "chat, superchat");
    assert_header(&req->headers[6], "Sec-WebSocket-Version", "13");
    assert_header(&req->headers[7], "X-Empty", "");
    assert_header(&req->headers[8], "X-Utf8", "caf\xc3\xa9");
}

/* ------------------------------------------------------------------ base64 */

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 §10 test vectors. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        memset(out, 'X', sizeof out);
        size_t n = weft_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        assert_int_equal(n, strlen(coded[i]));
        assert_string_equal(out, coded[i]);

        uint8_t dec[16];
        long d = weft_base64_decode(coded[i], strlen(coded[i]), dec, sizeof dec);
        assert_int_equal(d, (long)strlen(plain[i]));
        if (d) assert_memory_equal(dec, plain[i], (size_t)d);
    }
}

static void test_base64_roundtrip(void **state)
{
    (void)state;
    uint8_t in[100], dec[100];
    char enc[140];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t e = weft_base64_encode(in, n, enc);
        assert_int_equal(e, (n + 2) / 3 * 4);
        assert_int_equal(strlen(enc), e);
        long d = weft_base64_decode(enc, e, dec, sizeof dec);
        assert_int_equal(d, (long)n);
        if (n) assert_memory_equal(dec, in, n);
        /* Exactly enough room works; one byte less is refused. */
        assert_int_equal(weft_base64_decode(enc, e, dec, n), (long)n);
        if (n) assert_int_equal(weft_base64_decode(enc, e, dec, n - 1), -1);
    }
    /* All 256 byte values survive. */
    uint8_t all[256], back[256];
    char all_enc[400];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    size_t e = weft_base64_encode(all, sizeof all, all_enc);
    assert_int_equal(weft_base64_decode(all_enc, e, back, sizeof back), 256);
    assert_memory_equal(all, back, 256);
}

static void test_base64_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Zg",       /* padding missing */
        "Zg=",      /* length not a multiple of 4 */
        "Zm9vY",    /* length not a multiple of 4 */
        "Zm9vZg",   /* length not a multiple of 4 */
        "Zm9vZm8",  /* length not a multiple of 4 */
        "Zg==Zg==", /* padding in the middle */
        "Z===",     /* three padding characters */
        "====",     /* padding only */
        "=Zm9",     /* padding first */
        "Zm=v",     /* padding inside a quantum */
        "Zm9*",     /* character outside the alphabet */
        "Zm9-",     /* base64url alphabet is not accepted */
        "Zm9_",     /* base64url alphabet is not accepted */
        "Zm 9",     /* whitespace */
        "Zh==",     /* non-zero bits under "==" (non-canonical) */
        "Zm9=",     /* non-zero bits under "=" (non-canonical) */
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* An exactly-sized, unterminated copy: ASan catches a read past n. */
        size_t n = strlen(bad[i]);
        char *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, bad[i], n);
        long r = weft_base64_decode(copy, n, out, sizeof out);
        free(copy);
        if (r != -1) fail_msg("\"%s\" decoded to %ld bytes", bad[i], r);
    }
    /* An embedded NUL is a bad character, not a terminator. */
    assert_int_equal(weft_base64_decode("Zm\0v", 4, out, sizeof out), -1);
    /* Canonical neighbours of the rejected ones decode. */
    assert_int_equal(weft_base64_decode("Zg==", 4, out, sizeof out), 1);
    assert_int_equal(weft_base64_decode("Zm8=", 4, out, sizeof out), 2);
}

/* ------------------------------------------------------------------ request parser */

static void test_request_valid(void **state)
{
    (void)state;
    struct weft_http_request req;
    int r = parse_req(valid_request, &req);
    assert_int_equal(r, (int)strlen(valid_request));
    assert_valid_request_fields(&req);
}

static void test_request_body_not_consumed(void **state)
{
    (void)state;
    /* Bytes after the head (a first frame sent eagerly) are not part of the head. */
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "%s\x81\x85"
                     "abcd",
                     valid_request);
    struct weft_http_request req;
    assert_int_equal(weft_http_parse_request(buf, (size_t)n, 0, &req), (int)strlen(valid_request));
    assert_valid_request_fields(&req);
}

static void test_request_every_split(void **state)
{
    (void)state;
    size_t full = strlen(valid_request);
    /* A copy in an exactly-sized heap block, so ASan catches any read past len. */
    for (size_t k = 0; k <= full; k++) {
        char *buf = malloc(k ? k : 1);
        assert_non_null(buf);
        memcpy(buf, valid_request, k);
        struct weft_http_request req;
        int r = weft_http_parse_request(buf, k, 0, &req);
        if (k < full) {
            if (r != 0) fail_msg("prefix of %zu bytes returned %d", k, r);
        } else {
            assert_int_equal(r, (int)full);
            assert_valid_request_fields(&req);
        }
        free(buf);
    }
}

static void test_request_bare_lf(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\nHost: a\nUpgrade: websocket\r\nX: y\n\n";
    struct weft_http_request req;
    assert_int_equal(parse_req(s, &req), (int)strlen(s));
    assert_int_equal(req.num_headers, 3);
    assert_header(&req.headers[0], "Host", "a");
    assert_header(&req.headers[1], "Upgrade", "websocket");
    assert_header(&req.headers[2], "X", "y");
    /* A blank line written as CR LF after LF-terminated headers also ends the head. */
    const char *mixed = "GET / HTTP/1.1\nHost: a\n\r\nrest";
    assert_int_equal(parse_req(mixed, &req), (int)strlen(mixed) - 4);
    /* HTTP/1.0 parses (the handshake check rejects it later). */
    assert_int_equal(parse_req("GET / HTTP/1.0\r\n\r\n", &req), 18);
    assert_int_equal(req.minor_version, 0);
}

static void test_request_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\r\n\r\n",                              /* empty request line */
        "GET\r\nHost: a\r\n\r\n",                /* no target, no version */
        "GET /\r\nHost: a\r\n\r\n",              /* no version */
        "GET  / HTTP/1.1\r\n\r\n",               /* two spaces */
        "GET / HTTP/1.1 \r\n\r\n",               /* trailing space */
        " GET / HTTP/1.1\r\n\r\n",               /* empty method */
        "GE(T / HTTP/1.1\r\n\r\n",               /* method not a token */
        "G\xc3\x89T / HTTP/1.1\r\n\r\n",         /* method not ASCII */
        "GET / http/1.1\r\n\r\n",                /* version case */
        "GET / HTTP/2.0\r\n\r\n",                /* not HTTP/1.x */
        "GET / HTTP/1.\r\n\r\n",                 /* minor version missing */
        "GET / HTTP/1.x\r\n\r\n",                /* minor version not a digit */
        "GET / HTTP/1.11\r\n\r\n",               /* two-digit minor */
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",      /* header without colon */
        "GET / HTTP/1.1\r\nX-No-Colon\r\n\r\n",  /* header without colon */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",    /* whitespace before colon */
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",   /* tab before colon */
        "GET / HTTP/1.1\r\n: a\r\n\r\n",         /* empty header name */
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",    /* name not a token */
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  /* obs-fold (space) */
        "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", /* obs-fold (tab) */
        "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",   /* control character in value */
        "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",    /* DEL in value */
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",     /* bare CR in value */
        "GET / HTTP/1.1\rHost: a\r\n\r\n",       /* bare CR ending a line */
        "GET / HTTP/1.1\r\n\r\r\n",              /* CR CR LF as blank line */
        "GET /a\x01 HTTP/1.1\r\n\r\n",           /* control character in target */
        "GET /\x7f HTTP/1.1\r\n\r\n",            /* DEL in target */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct weft_http_request req;
        int r = parse_req(bad[i], &req);
        if (r != -400) fail_msg("case %zu (%s) returned %d", i, bad[i], r);
    }
    /* A NUL byte (not representable in the table above). */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    struct weft_http_request req;
    assert_int_equal(weft_http_parse_request(nul, sizeof nul - 1, 0, &req), -400);
}

static void test_request_malformed_early(void **state)
{
    (void)state;
    /* Errors are reported as soon as the offending byte arrives, without the line end. */
    static const char *bad[] = {
        "GE(",
        "GET /\x01",
        "GET / HTTP/2",
        "GET / HTTP/1.1x",
        "GET / HTTP/1.1\r\nHost :",
        "GET / HTTP/1.1\r\n a",
        "GET / HTTP/1.1\r\nX: \x01",
        "GET / HTTP/1.1\r\nX: a\rb",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct weft_http_request req;
        int r = parse_req(bad[i], &req);
        if (r != -400) fail_msg("case %zu returned %d", i, r);
    }
    /* Valid prefixes of the same lines are "need more". */
    static const char *more[] = {"GE",
                                 "GET /",
                                 "GET / HTTP/1",
                                 "GET / HTTP/1.1\r",
                                 "GET / HTTP/1.1\r\nHost",
                                 "GET / HTTP/1.1\r\nX: a\r"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        struct weft_http_request req;
        int r = parse_req(more[i], &req);
        if (r != 0) fail_msg("prefix %zu returned %d", i, r);
    }
}

static void test_request_too_big(void **state)
{
    (void)state;
    static char buf[20000];
    struct weft_http_request req;
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t sl = strlen(start);

    /* A head of exactly 8192 bytes is accepted; 8193 bytes is 431. */
    for (size_t total = 8190; total <= 8194; total++) {
        memcpy(buf, start, sl);
        memset(buf + sl, 'a', total - sl - 4);
        memcpy(buf + total - 4, "\r\n\r\n", 4);
        int r = weft_http_parse_request(buf, total, 0, &req);
        if (total <= WEFT_HTTP_MAX_HEAD)
            assert_int_equal(r, (int)total);
        else
            assert_int_equal(r, -431);
        /* With a larger limit the same head is fine. */
        assert_int_equal(weft_http_parse_request(buf, total, 9000, &req), (int)total);
    }

    /* Without a complete head, -431 as soon as len exceeds max_head, 0 up to it. */
    memcpy(buf, start, sl);
    memset(buf + sl, 'a', sizeof buf - sl);
    assert_int_equal(weft_http_parse_request(buf, WEFT_HTTP_MAX_HEAD, 0, &req), 0);
    assert_int_equal(weft_http_parse_request(buf, WEFT_HTTP_MAX_HEAD + 1, 0, &req), -431);
    assert_int_equal(weft_http_parse_request(buf, sizeof buf, 0, &req), -431);

    /* A custom small limit. */
    const char *small = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 bytes */
    assert_int_equal(weft_http_parse_request(small, 27, 27, &req), 27);
    assert_int_equal(weft_http_parse_request(small, 27, 26, &req), -431);
    assert_int_equal(weft_http_parse_request(small, 20, 20, &req), 0);
    assert_int_equal(weft_http_parse_request(small, 21, 20, &req), -431);

    /* A complete head within the limit followed by more bytes than the limit is fine. */
    memcpy(buf, small, 27);
    memset(buf + 27, 'z', 100);
    assert_int_equal(weft_http_parse_request(buf, 127, 50, &req), 27);

    /* A malformed byte before the limit wins over the size. */
    memcpy(buf, "GET / HTTP/1.1\r\nX: \x01", 20);
    assert_int_equal(weft_http_parse_request(buf, sizeof buf, 0, &req), -400);
}

static void test_request_header_count(void **state)
{
    (void)state;
    static char buf[4096];
    struct weft_http_request req;

    size_t n = build_many_headers(buf, sizeof buf, WEFT_HTTP_MAX_HEADERS - 1);
    assert_int_equal(weft_http_parse_request(buf, n, 0, &req), (int)n);
    assert_int_equal(req.num_headers, WEFT_HTTP_MAX_HEADERS);
    assert_header(&req.headers[WEFT_HTTP_MAX_HEADERS - 1], "X-H98", "v");

    n = build_many_headers(buf, sizeof buf, WEFT_HTTP_MAX_HEADERS);
    assert_int_equal(weft_http_parse_request(buf, n, 0, &req), -431);
    /* Detected as soon as the 101st header starts, before the head is complete. */
    const char *h101 = strstr(buf, "X-H99:");
    assert_non_null(h101);
    size_t upto = (size_t)(h101 - buf);
    assert_int_equal(weft_http_parse_request(buf, upto, 0, &req), 0);
    assert_int_equal(weft_http_parse_request(buf, upto + 1, 0, &req), -431);
}

/* ------------------------------------------------------------------ response parser */

static const char valid_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                     "Sec-WebSocket-Protocol:  chat \r\n"
                                     "\r\n";

static void assert_valid_response_fields(const struct weft_http_response *resp)
{
    assert_int_equal(resp->status, 101);
    assert_int_equal(resp->minor_version, 1);
    assert_slice(resp->reason, resp->reason_len, "Switching Protocols");
    assert_int_equal(resp->num_headers, 4);
    assert_header(&resp->headers[0], "Upgrade", "websocket");
    assert_header(&resp->headers[1], "Connection", "Upgrade");
    assert_header(&resp->headers[2], "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_header(&resp->headers[3], "Sec-WebSocket-Protocol", "chat");
}

static void test_response_valid_every_split(void **state)
{
    (void)state;
    size_t full = strlen(valid_response);
    for (size_t k = 0; k <= full; k++) {
        char *buf = malloc(k ? k : 1);
        assert_non_null(buf);
        memcpy(buf, valid_response, k);
        struct weft_http_response resp;
        int r = weft_http_parse_response(buf, k, 0, &resp);
        if (k < full) {
            if (r != 0) fail_msg("prefix of %zu bytes returned %d", k, r);
        } else {
            assert_int_equal(r, (int)full);
            assert_valid_response_fields(&resp);
        }
        free(buf);
    }
}

static void test_response_forms(void **state)
{
    (void)state;
    struct weft_http_response resp;
    const char *s = "HTTP/1.0 403 \r\n\r\n"; /* empty reason */
    assert_int_equal(weft_http_parse_response(s, strlen(s), 0, &resp), (int)strlen(s));
    assert_int_equal(resp.status, 403);
    assert_int_equal(resp.minor_version, 0);
    assert_int_equal(resp.reason_len, 0);
    assert_int_equal(resp.num_headers, 0);

    s = "HTTP/1.1 404\nContent-Length: 0\n\n"; /* no reason, bare LF */
    assert_int_equal(weft_http_parse_response(s, strlen(s), 0, &resp), (int)strlen(s));
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.reason_len, 0);
    assert_int_equal(resp.num_headers, 1);
    assert_header(&resp.headers[0], "Content-Length", "0");

    s = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\nbody";
    assert_int_equal(weft_http_parse_response(s, strlen(s), 0, &resp), (int)strlen(s) - 4);
    assert_int_equal(resp.status, 426);
    assert_slice(resp.reason, resp.reason_len, "Upgrade Required");
}

static void test_response_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "HTTP/1.1101 OK\r\n\r\n",                       /* no space */
        "HTTP/1.1  101 OK\r\n\r\n",                     /* two spaces */
        "HTTP/1.1 10 OK\r\n\r\n",                       /* two digits */
        "HTTP/1.1 1011 OK\r\n\r\n",                     /* four digits */
        "HTTP/1.1 1x1 OK\r\n\r\n",                      /* not a number */
        "HTTP/2 101 OK\r\n\r\n",                        /* not HTTP/1.x */
        "HTTP/1.1\r\n\r\n",                             /* no status */
        "ICY 200 OK\r\n\r\n",                           /* not HTTP */
        "HTTP/1.1 101 OK\x01\r\n\r\n",                  /* control character in reason */
        "HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n", /* header without colon */
        "HTTP/1.1 101 OK\r\nUpgrade : x\r\n\r\n",       /* whitespace before colon */
        "HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n",        /* obs-fold */
        "HTTP/1.1 101 OK\r\nA: b\x1f\r\n\r\n",          /* control character in value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct weft_http_response resp;
        int r = weft_http_parse_response(bad[i], strlen(bad[i]), 0, &resp);
        if (r != -1) fail_msg("case %zu (%s) returned %d", i, bad[i], r);
    }
    /* Too big (size and count) is -1 too. */
    static char buf[9000];
    struct weft_http_response resp;
    memcpy(buf, "HTTP/1.1 101 OK\r\nX: ", 20);
    memset(buf + 20, 'a', sizeof buf - 20);
    assert_int_equal(weft_http_parse_response(buf, WEFT_HTTP_MAX_HEAD, 0, &resp), 0);
    assert_int_equal(weft_http_parse_response(buf, sizeof buf, 0, &resp), -1);
    size_t n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 101 OK\r\n");
    for (int i = 0; i <= WEFT_HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "A%d: b\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    assert_int_equal(weft_http_parse_response(buf, n, 0, &resp), -1);
}

/* ------------------------------------------------------------------ header helpers */

/* ------------------------------------------------------------------ end-of-head search */

/* The reference answer: the end of the first blank line (LF LF or LF CR LF) in s[0..n), or 0. */
static size_t head_end_reference(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n') continue;
        if (i + 1 < n && s[i + 1] == '\n') return i + 2;
        if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
    }
    return 0;
}

/* Feeds s[0..n) to weft_http_head_end in reads of the given sizes (cycled), each call
 * searching from where the previous one stopped, as the connection code does; each read is a
 * copy in an exactly-sized heap block, so ASan catches any read past len. Asserts that the
 * search says "not yet" until the read that completes the blank line and then returns
 * `want`. */
static void feed_head_end(const char *s, size_t n, const size_t *reads, size_t nreads, size_t want)
{
    size_t len = 0, k = 0, got = 0;
    while (len < n && !got) {
        size_t from = len;
        len += reads[k++ % nreads];
        if (len > n) len = n;
        char *buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, s, len);
        got = weft_http_head_end(buf, len, from);
        free(buf);
        if (!got && want && len >= want)
            fail_msg("blank line at %zu missed (read ending at %zu, from %zu)", want, len, from);
        if (got && (got != want || len < want))
            fail_msg("returned %zu after %zu bytes, want %zu", got, len, want);
    }
    assert_int_equal(got, want);
}

static void test_head_end_every_split(void **state)
{
    (void)state;
    static const char *const heads[] = {
        valid_request,
        valid_response,
        "GET / HTTP/1.1\nHost: a\nUpgrade: websocket\r\nX: y\n\nframes",
        "GET / HTTP/1.1\nHost: a\n\r\nrest",
        "GET / HTTP/1.1\r\n\r\n\r\n\r\n", /* only the first blank line counts */
        "GET / HTTP/1.1\r\nX: a\r\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n", /* incomplete: never found */
        "\n\n",
        "\r\n\r\n",
    };
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        const char *s = heads[h];
        size_t n = strlen(s), want = head_end_reference(s, n);
        /* The whole buffer at once, and agreement with the parser on valid heads. */
        assert_int_equal(weft_http_head_end(s, n, 0), want);
        struct weft_http_request req;
        struct weft_http_response resp;
        int r = strncmp(s, "HTTP/", 5) == 0 ? weft_http_parse_response(s, n, 0, &resp)
                                            : weft_http_parse_request(s, n, 0, &req);
        if (r >= 0) assert_int_equal((size_t)r, want);
        /* Two reads split at every byte. */
        for (size_t k = 1; k < n; k++) {
            size_t reads[2] = {k, n - k};
            feed_head_end(s, n, reads, 2, want);
        }
        /* Dripped in reads of 1 to 5 bytes. */
        for (size_t step = 1; step <= 5; step++)
            feed_head_end(s, n, &step, 1, want);
    }
}

/* Random buffers over {CR, LF, 'a'} in random reads agree with the reference. */
static void test_head_end_random(void **state)
{
    (void)state;
    uint32_t x = 12345;
    char s[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + (x = x * 1103515245u + 12345u) % sizeof s;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            s[i] = "\r\na"[(x >> 16) % 3];
        }
        size_t reads[4];
        for (size_t i = 0; i < 4; i++) {
            x = x * 1103515245u + 12345u;
            reads[i] = 1 + (x >> 16) % 4;
        }
        feed_head_end(s, n, reads, 4, head_end_reference(s, n));
    }
}

/* The search is incremental: it never looks further back than the two bytes before `from`
 * (those can start a blank line that the new bytes complete). A blank line planted in the
 * part the caller says was searched already is not found again, which proves the bytes before
 * from - 2 are not rescanned; one that starts within the two bytes is found. */
static void test_head_end_incremental(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\n\r\nHost: a\r\n";
    size_t n = strlen(s);
    assert_int_equal(weft_http_head_end(s, n, 0), 18);
    assert_int_equal(weft_http_head_end(s, n, 16), 18); /* "\r\n" of the previous read */
    assert_int_equal(weft_http_head_end(s, n, 17), 18);
    assert_int_equal(weft_http_head_end(s, n, 18), 0); /* LF CR LF starts at 15 < 18 - 2 */
    assert_int_equal(weft_http_head_end(s, n, 19), 0);
    /* Nothing new: nothing found, and no read before buf + from - 2. */
    assert_int_equal(weft_http_head_end(s + 20, 0, 0), 0);
    assert_int_equal(weft_http_head_end("\n", 1, 1), 0);
    assert_int_equal(weft_http_head_end("\n\n", 2, 1), 2);
    assert_int_equal(weft_http_head_end("\n\r\n", 3, 2), 3);
    assert_int_equal(weft_http_head_end("x\n\r\n", 4, 4), 0); /* all of it searched before */
    /* A head near the default limit, dripped a byte at a time (8 K calls, each looking at
     * three bytes), is found at its last byte, where the parser agrees. */
    static char big[WEFT_HTTP_MAX_HEAD];
    size_t bl = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
    while (bl + 100 + 2 <= sizeof big) {
        memcpy(big + bl, "X-Pad: ", 7);
        memset(big + bl + 7, 'a', 91);
        memcpy(big + bl + 98, "\r\n", 2);
        bl += 100;
    }
    memcpy(big + bl, "\r\n", 2);
    bl += 2;
    size_t found = 0;
    for (size_t len = 1; len <= bl && !found; len++)
        found = weft_http_head_end(big, len, len - 1);
    assert_int_equal(found, bl);
    struct weft_http_request req;
    assert_int_equal(weft_http_parse_request(big, bl, 0, &req), (int)bl);
}

static void test_find_header(void **state)
{
    (void)state;
    struct weft_http_request req;
    const char *s = "GET / HTTP/1.1\r\nhost: a\r\nSEC-WEBSOCKET-KEY: k1\r\n"
                    "sec-websocket-key: k2\r\n\r\n";
    assert_int_equal(parse_req(s, &req), (int)strlen(s));
    const struct weft_http_header *h = weft_http_find_header(req.headers, req.num_headers, "Host");
    assert_non_null(h);
    assert_slice(h->value, h->value_len, "a");
    h = weft_http_find_header(req.headers, req.num_headers, "Sec-WebSocket-Key");
    assert_ptr_equal(h, &req.headers[1]); /* the first of two */
    assert_null(weft_http_find_header(req.headers, req.num_headers, "Hos"));
    assert_null(weft_http_find_header(req.headers, req.num_headers, "Hostt"));
    assert_null(weft_http_find_header(req.headers, req.num_headers, "Origin"));
    assert_null(weft_http_find_header(NULL, 0, "Host"));
}

static void test_list_has(void **state)
{
    (void)state;
    const char *v = "keep-alive, Upgrade";
    assert_true(weft_http_list_has(v, strlen(v), "upgrade"));
    assert_true(weft_http_list_has(v, strlen(v), "KEEP-ALIVE"));
    assert_false(weft_http_list_has(v, strlen(v), "close"));
    assert_false(weft_http_list_has(v, strlen(v), "upgrad"));
    assert_false(weft_http_list_has(v, strlen(v), "keep"));
    v = " ,\tUPGRADE\t,, ";
    assert_true(weft_http_list_has(v, strlen(v), "upgrade"));
    v = "upgrade-x, xupgrade";
    assert_false(weft_http_list_has(v, strlen(v), "upgrade"));
    assert_false(weft_http_list_has("", 0, "upgrade"));
    /* Only the first len bytes count. */
    assert_false(weft_http_list_has("Upgrade", 6, "upgrade"));
}

static void test_list_next(void **state)
{
    (void)state;
    const char *v = " a ,, b\t;x=1 ,c=\"1,2\" ,\t, d";
    const char *expect[] = {"a", "b\t;x=1", "c=\"1,2\"", "d"};
    size_t pos = 0, i = 0;
    const char *item;
    size_t item_len;
    while (weft_http_list_next(v, strlen(v), &pos, &item, &item_len)) {
        assert_true(i < 4);
        assert_slice(item, item_len, expect[i]);
        i++;
    }
    assert_int_equal(i, 4);
    assert_int_equal(pos, strlen(v));
    /* Exhausted stays exhausted. */
    assert_false(weft_http_list_next(v, strlen(v), &pos, &item, &item_len));
    /* Only separators: no element. */
    pos = 0;
    assert_false(weft_http_list_next(" , ,\t", 5, &pos, &item, &item_len));
    /* An escaped quote inside a quoted string does not end it. */
    const char *q = "x=\"a\\\",b\", y";
    pos = 0;
    assert_true(weft_http_list_next(q, strlen(q), &pos, &item, &item_len));
    assert_slice(item, item_len, "x=\"a\\\",b\"");
    assert_true(weft_http_list_next(q, strlen(q), &pos, &item, &item_len));
    assert_slice(item, item_len, "y");
    assert_false(weft_http_list_next(q, strlen(q), &pos, &item, &item_len));
}

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(weft_http_reason(101), "Switching Protocols");
    assert_string_equal(weft_http_reason(400), "Bad Request");
    assert_string_equal(weft_http_reason(403), "Forbidden");
    assert_string_equal(weft_http_reason(405), "Method Not Allowed");
    assert_string_equal(weft_http_reason(426), "Upgrade Required");
    assert_string_equal(weft_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(weft_http_reason(503), "Service Unavailable");
    assert_string_equal(weft_http_reason(299), "Unknown");
    assert_string_equal(weft_http_reason(-1), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_request_valid),
        cmocka_unit_test(test_request_body_not_consumed),
        cmocka_unit_test(test_request_every_split),
        cmocka_unit_test(test_request_bare_lf),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_malformed_early),
        cmocka_unit_test(test_request_too_big),
        cmocka_unit_test(test_request_header_count),
        cmocka_unit_test(test_response_valid_every_split),
        cmocka_unit_test(test_response_forms),
        cmocka_unit_test(test_response_malformed),
        cmocka_unit_test(test_head_end_every_split),
        cmocka_unit_test(test_head_end_random),
        cmocka_unit_test(test_head_end_incremental),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_list_next),
        cmocka_unit_test(test_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
