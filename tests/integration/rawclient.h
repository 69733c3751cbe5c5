/*
 * rawclient.h — a small blocking WebSocket test client for the integration tests.
 *
 * It speaks to 127.0.0.1 (or ::1, or a Unix domain socket) only, over a non-blocking socket
 * driven with poll(2), so every read and write is bounded by a timeout and no test can hang. The
 * protocol work is done by weft's own sans-I/O proto functions (handshake request/response, frame
 * encoder, message parser in the client role); raw bytes can be written too, to send deliberately
 * bad input.
 *
 * Return conventions: functions returning int give 0 on success and -1 on failure unless
 * documented otherwise; rc_recv returns an enum rc_event.
 */
#ifndef WEFT_TEST_RAWCLIENT_H
#define WEFT_TEST_RAWCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"

struct ssl_st;
struct ssl_ctx_st;

/* Default timeout of rawclient operations in tests, milliseconds. */
#define RC_TIMEOUT_MS 5000

/* What rc_recv returned. */
enum rc_event {
    RC_MESSAGE = 1, /* a whole text or binary message: msg.opcode, msg.data, msg.len */
    RC_PING,        /* a ping frame: msg.data / msg.len is its payload */
    RC_PONG,        /* a pong frame: msg.data / msg.len is its payload */
    RC_CLOSE,       /* a close frame: msg.close_code (1005 if empty), msg.data = reason */
    RC_EOF = 0,     /* the server closed the TCP connection (read returned 0) */
    RC_TIMEOUT = -1,
    RC_ERR_IO = -2,    /* read failed (errno kept, e.g. ECONNRESET) */
    RC_ERR_PROTO = -3, /* the server sent bytes that are not valid WebSocket frames */
};

/* The last message or control frame received. data is owned by the client and valid until
 * the next rc_recv. */
struct rc_msg {
    uint8_t opcode;
    uint8_t *data;
    size_t len;
    uint16_t close_code; /* RC_CLOSE: the code, 1005 if the frame had none */
    uint16_t error_code; /* RC_ERR_PROTO: close code the parser asked for */
};

/* A parsed HTTP response head (and its body, if Content-Length was given). */
struct rc_http {
    int status;       /* HTTP status, or -1 if no complete head arrived */
    char head[16384]; /* the head, NUL-terminated */
    size_t head_len;
    char body[4096]; /* the body (truncated to fit), NUL-terminated */
    size_t body_len;
};

struct rc {
    int fd;
    struct weft_random rnd;
    struct weft_msg_parser mp;
    uint8_t *in; /* received bytes not yet parsed: in[in_off..in_len) */
    size_t in_off, in_len, in_cap;
    uint8_t *msg; /* the data message being assembled */
    size_t msg_len, msg_cap;
    uint8_t msg_opcode;
    uint8_t ctrl[125];  /* payload of the last control frame */
    struct rc_msg last; /* what rc_recv returned */
    bool eof;           /* read returned 0 */
    struct ssl_st *ssl; /* TLS (rc_tls_handshake): all I/O goes through it; NULL = plain */
    bool tls_notify;    /* TLS: the EOF was the peer's close_notify (not a bare TCP FIN) */
    int family;         /* AF_INET, AF_INET6 or AF_UNIX: the Host header the handshake sends */
};

/* Connects to 127.0.0.1:port (bounded by timeout_ms), with TCP_NODELAY. If rcvbuf > 0 the
 * socket's SO_RCVBUF is set before connecting (to make a slow reader quickly). Returns 0 or
 * -1 (errno kept). c is ready for rc_close either way. */
int rc_connect(struct rc *c, uint16_t port, int rcvbuf, int timeout_ms);

/* rc_connect to [::1]:port (no SO_RCVBUF). Returns 0 or -1 (errno kept, e.g. EADDRNOTAVAIL
 * when the machine has no IPv6 loopback). */
int rc_connect_ip6(struct rc *c, uint16_t port, int timeout_ms);

/* rc_connect to the Unix domain socket at sock_path. Returns 0 or -1 (errno kept). */
int rc_connect_unix(struct rc *c, const char *sock_path, int timeout_ms);

/* Closes the socket (if open) and frees every buffer. Harmless on a closed client. */
void rc_close(struct rc *c);

/* Writes all of buf[0..len), waiting for writability up to timeout_ms in all. Returns 0, or
 * -1 on timeout (errno ETIMEDOUT) or error (errno kept, e.g. EPIPE / ECONNRESET). */
int rc_write(struct rc *c, const void *buf, size_t len, int timeout_ms);

/* rc_write of a NUL-terminated string. */
int rc_write_str(struct rc *c, const char *s, int timeout_ms);

/* Reads an HTTP response head (and a Content-Length body) into *resp. Bytes after the head
 * and body stay buffered for rc_recv. Returns the status, or -1 on EOF / timeout / garbage. */
int rc_read_http(struct rc *c, struct rc_http *resp, int timeout_ms);

/* Finds header `name` (case-insensitive) in a response read by rc_read_http; copies its value
 * into out (NUL-terminated). Returns true if present. */
bool rc_http_header(const struct rc_http *resp, const char *name, char *out, size_t cap);

/* Performs the client opening handshake for `path` with weft's proto functions (Host:
 * 127.0.0.1:port, [::1]:port, or localhost on a Unix socket), checks the 101 with
 * weft_handshake_check_response and prepares the frame parser. Returns 101 on
 * success, the HTTP status the server answered with otherwise (resp filled if not NULL), or
 * -1 on I/O failure / invalid 101. */
int rc_handshake(struct rc *c, uint16_t port, const char *path, struct rc_http *resp,
                 int timeout_ms);

/* rc_handshake with extra request headers (complete "Name: value\r\n" lines, may be NULL)
 * and offered subprotocols (comma list, may be NULL; the 101 must choose one of them or none). */
int rc_handshake_ex(struct rc *c, uint16_t port, const char *path, const char *extra_headers,
                    const char *protocols, struct rc_http *resp, int timeout_ms);

/* rc_connect + rc_handshake. Returns 0 when the connection is open, -1 otherwise. */
int rc_open(struct rc *c, uint16_t port, const char *path);

/* rc_connect_ip6 / rc_connect_unix + rc_handshake. Return 0 when the connection is open. */
int rc_open_ip6(struct rc *c, uint16_t port, const char *path);
int rc_open_unix(struct rc *c, const char *sock_path, const char *path);

/* Encodes one masked frame with weft_frame_encode and writes it. */
int rc_send_frame(struct rc *c, uint8_t opcode, bool fin, uint8_t rsv, const void *data,
                  size_t len);

/* Sends a whole message as one masked frame. */
int rc_send(struct rc *c, uint8_t opcode, const void *data, size_t len);

/* Hand-builds a frame without weft's encoder, for bad input: b0 is the first byte verbatim
 * (FIN, RSV bits, opcode), the length uses the shortest encoding, and the payload is masked
 * with a fixed key if `masked`. Writes it. */
int rc_send_raw_frame(struct rc *c, uint8_t b0, bool masked, const void *data, size_t len);

/* Sends a close frame with code (0 = no payload) and reason. */
int rc_send_close(struct rc *c, uint16_t code, const char *reason);

/* Receives the next message or control frame, waiting up to timeout_ms. */
enum rc_event rc_recv(struct rc *c, int timeout_ms);

/* Parses what is already buffered, without reading. Returns RC_TIMEOUT if nothing complete
 * is buffered (for callers that poll many clients themselves). */
enum rc_event rc_recv_buffered(struct rc *c);

/* Reads once from the socket without waiting. Returns bytes read (> 0), 0 on EOF (also
 * remembered in c->eof), -1 when nothing is available, -2 on error. */
long rc_read_once(struct rc *c);

/* Waits until the server closes the TCP connection, discarding anything received meanwhile.
 * Returns 0 on EOF (or a connection reset), -1 on timeout. *extra (if not NULL) receives the
 * number of bytes that arrived before EOF. */
int rc_wait_eof(struct rc *c, int timeout_ms, size_t *extra);

/* Completes a close started by the server: expects RC_CLOSE as the next event (skipping
 * nothing), answers with a close echoing its code and waits for EOF. Returns the server's
 * close code, or -1 if no close frame came or the TCP connection did not end. */
int rc_expect_close(struct rc *c, int timeout_ms);

/* TLS: after rc_connect, runs a client handshake with a new SSL from ctx (an SSL_CTX *),
 * sending sni (NULL: none); from then on every read and write goes through TLS and rc_close
 * frees the SSL. Returns 0, or -1 (handshake failed or timed out; OpenSSL's error queue says
 * why). */
int rc_tls_handshake(struct rc *c, struct ssl_ctx_st *ctx, const char *sni, int timeout_ms);

/* rc_connect + rc_tls_handshake + rc_handshake. Returns 0 when the connection is open. */
int rc_tls_open(struct rc *c, uint16_t port, const char *path, struct ssl_ctx_st *ctx,
                const char *sni);

/* True if a TCP socket can be bound to the IPv6 loopback ::1 on this machine. */
bool rc_ip6_available(void);

/* A Unix socket path unique to this process and call: /tmp/weft-itest-<tag>-<pid>-<n>.sock
 * (not created). */
void rc_unix_path(char *out, size_t cap, const char *tag);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t rc_now_ms(void);

/* Fills buf[0..len) with a deterministic pseudo-random pattern from seed; if text, with
 * printable ASCII (valid UTF-8). */
void rc_fill(uint8_t *buf, size_t len, uint32_t seed, bool text);

#endif
