/**
 * @file weft.h
 * @brief The public API of libweft, a WebSocket stack (RFC 6455, RFC 7692) in C11.
 *
 * weft.h — the public API of libweft, a WebSocket stack (RFC 6455, RFC 7692) in C11.
 *
 * Layers exposed here:
 *   1. proto: sans-I/O protocol primitives (frames, masking, UTF-8, close, handshake).
 *      No I/O, no allocation; every buffer belongs to the caller. Thread-safe in the sense
 *      that distinct objects may be used from distinct threads; one object is never shared.
 *   2. net + ws (declared further below): the event loop, connections, server and pub/sub.
 *
 * Conventions: every public symbol starts with weft_ / WEFT_. Functions that can fail return
 * an enum weft_err or a negative value documented at the declaration. The library never prints
 * and never exits.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The library version, "MAJOR.MINOR.PATCH" (libweft.so.MAJOR is the SONAME). */
#define WEFT_VERSION "0.1.0"

/** Marks a declaration as part of the library's ABI: libweft is built with
 * -fvisibility=hidden, so only what carries WEFT_API is exported. */
#if defined(__GNUC__) || defined(__clang__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* ======================================================================================== */
/* Errors                                                                                    */
/* ======================================================================================== */

/** Generic result codes of library calls. */
enum weft_err {
    WEFT_OK = 0,
    WEFT_ERR_NOMEM = -1,   /**< allocation failed */
    WEFT_ERR_INVAL = -2,   /**< invalid argument */
    WEFT_ERR_SPACE = -3,   /**< caller buffer too small */
    WEFT_ERR_PROTO = -4,   /**< peer violated the protocol */
    WEFT_ERR_IO = -5,      /**< a system call failed (errno is kept where meaningful) */
    WEFT_ERR_CLOSED = -6,  /**< the connection is closed or closing */
    WEFT_ERR_TIMEOUT = -7, /**< a deadline passed */
    WEFT_ERR_ADDRESS = -8, /**< address could not be parsed or bound */
    WEFT_ERR_TLS = -9,     /**< TLS failed: setup (certificate, key or CA file; see
                              weft_tls_last_error) or a client's handshake (on_error) */
};

/** Returns a static, human-readable name for an enum weft_err value. Never NULL. */
WEFT_API const char *weft_strerror(int err);

/** After a call on this thread returned WEFT_ERR_TLS (weft_server_new,
 * weft_server_reload_tls): one line saying why, with OpenSSL's reason, e.g. "cannot read
 * certificate file 'cert.pem': No such file or directory" or "the private key in 'k.pem' does
 * not match the certificate in 'c.pem'". Per thread (like errno), valid until the next such
 * failure on the thread; "" if none. Never NULL. */
WEFT_API const char *weft_tls_last_error(void);

/* ======================================================================================== */
/* proto: opcodes and close codes                                                            */
/* ======================================================================================== */

/** Frame opcodes (RFC 6455 §5.2). */
enum weft_opcode {
    WEFT_OP_CONT = 0x0,
    WEFT_OP_TEXT = 0x1,
    WEFT_OP_BINARY = 0x2,
    WEFT_OP_CLOSE = 0x8,
    WEFT_OP_PING = 0x9,
    WEFT_OP_PONG = 0xA,
};

/** Close status codes of RFC 6455 §7.4.1 that the library itself sends. */
enum weft_close_code {
    WEFT_CLOSE_NORMAL = 1000,
    WEFT_CLOSE_GOING_AWAY = 1001,
    WEFT_CLOSE_PROTOCOL = 1002,
    WEFT_CLOSE_UNSUPPORTED = 1003,
    WEFT_CLOSE_NO_STATUS = 1005, /**< never on the wire: "the close frame had no code" */
    WEFT_CLOSE_ABNORMAL = 1006,  /**< never on the wire: "no close frame was received" */
    WEFT_CLOSE_INVALID_DATA = 1007,
    WEFT_CLOSE_POLICY = 1008,
    WEFT_CLOSE_TOO_BIG = 1009,
    WEFT_CLOSE_EXTENSION = 1010,
    WEFT_CLOSE_INTERNAL = 1011,
    WEFT_CLOSE_RESTART = 1012,
    WEFT_CLOSE_TRY_AGAIN = 1013,
};

/** Role of an endpoint: servers require masked input and send unmasked frames; clients the
 * reverse. */
enum weft_role {
    WEFT_ROLE_SERVER = 0,
    WEFT_ROLE_CLIENT = 1,
};

/* ======================================================================================== */
/* proto: masking                                                                            */
/* ======================================================================================== */

/**
 * XORs buf[0..len) in place with the 4-byte mask, starting at mask phase `phase` (0..3): the
 * byte buf[i] is XORed with mask[(phase + i) % 4]. Returns the phase that the next byte of the
 * same payload would use, so a payload split across reads is unmasked by calling it again with
 * the returned phase. Works at any alignment; uses 8-byte words or SSE2/AVX2 where available.
 */
WEFT_API unsigned weft_mask(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase);

/** A small pool of random bytes for client masking keys and handshake nonces, refilled with
 * getrandom(2) a few hundred bytes at a time. Zero-initialise before first use. Not
 * thread-safe: one per thread or per connection. */
struct weft_random {
    uint8_t pool[256]; /**< random bytes not yet handed out start at pos */
    uint16_t pos;      /**< bytes of pool already used; 0 in a zeroed struct means "empty" */
    uint8_t filled;    /**< internal: the pool has been filled once */
};

/** Fills out[0..len) with random bytes. Returns WEFT_OK, or WEFT_ERR_IO if the kernel refused
 * (out is then still filled from a weaker fallback so the caller can proceed). */
WEFT_API int weft_random_bytes(struct weft_random *r, void *out, size_t len);

/* ======================================================================================== */
/* proto: UTF-8 validation                                                                   */
/* ======================================================================================== */

/** Incremental UTF-8 validator state. Zero-initialise (or weft_utf8_reset) before a message. */
struct weft_utf8 {
    uint32_t state; /**< 0 = between code points (accept); otherwise inside a sequence */
};

/** Result of weft_utf8_validate. */
enum weft_utf8_result {
    WEFT_UTF8_OK = 0,       /**< all bytes valid and the text ends on a code-point boundary */
    WEFT_UTF8_PARTIAL = 1,  /**< all bytes valid so far, but a sequence is still open */
    WEFT_UTF8_INVALID = -1, /**< an invalid byte was found */
};

/** Resets a validator to the start of a new text. */
static inline void weft_utf8_reset(struct weft_utf8 *u)
{
    u->state = 0;
}

/**
 * Validates the next chunk of a text. Fail-fast: returns WEFT_UTF8_INVALID as soon as a byte
 * makes the text invalid whatever follows (overlongs, surrogates, > U+10FFFF, stray
 * continuation bytes, truncated sequences followed by a non-continuation). If bad_offset is not
 * NULL it receives the offset in buf of the first offending byte. WEFT_UTF8_PARTIAL means
 * "valid so far, a code point is still open": at the end of a message that is an error (1007),
 * mid-message it means "need more". ASCII runs are checked a word at a time.
 */
WEFT_API enum weft_utf8_result weft_utf8_validate(struct weft_utf8 *u, const uint8_t *buf,
                                                  size_t len, size_t *bad_offset);

/** Validates a complete string in one call. Returns true if it is entirely valid UTF-8. */
WEFT_API bool weft_utf8_valid(const uint8_t *buf, size_t len);

/* ======================================================================================== */
/* proto: frame parser                                                                       */
/* ======================================================================================== */

/** A parsed frame header. */
struct weft_frame_header {
    bool fin;        /**< the FIN bit: last frame of its message */
    uint8_t rsv;     /**< the three RSV bits as 0bRRR (RSV1 = 4, RSV2 = 2, RSV3 = 1) */
    uint8_t opcode;  /**< enum weft_opcode */
    bool masked;     /**< the MASK bit */
    uint8_t mask[4]; /**< the masking key, when masked */
    uint64_t length; /**< payload length */
};

/** Configuration of a frame parser. */
struct weft_frame_limits {
    enum weft_role role; /**< our role: a server requires masked frames, a client forbids them */
    uint8_t allowed_rsv; /**< RSV bits an extension claimed (e.g. 4 for permessage-deflate) */
    uint64_t max_frame;  /**< largest accepted payload of one frame; 0 = no limit (2^63-1) */
};

/** What weft_frame_parse found. */
enum weft_frame_event_type {
    WEFT_FRAME_NEED_MORE = 0, /**< all input consumed; call again with more bytes */
    WEFT_FRAME_HEADER,        /**< a frame header was read: ev->header */
    WEFT_FRAME_DATA,          /**< a chunk of payload, already unmasked in place */
    WEFT_FRAME_ERROR,         /**< protocol error: ev->close_code says what to close with */
};

/** One event of weft_frame_parse. */
struct weft_frame_event {
    enum weft_frame_event_type type; /**< what happened; the other fields depend on it */
    struct weft_frame_header header; /**< for HEADER (and kept valid through the frame's DATA) */
    uint8_t *data;                   /**< for DATA: points into the caller's input buffer */
    size_t len;                      /**< for DATA: bytes at data (may be 0 for an empty frame) */
    bool frame_end;                  /**< for DATA: this chunk ends the frame's payload */
    uint16_t close_code;             /**< for ERROR */
    const char *reason;              /**< for ERROR: static text naming the violation */
};

/** Incremental frame parser. Initialise with weft_frame_parser_init. Holds at most the 14 bytes
 * of a partial header; payload is never copied. */
struct weft_frame_parser {
    struct weft_frame_limits limits; /**< as given to weft_frame_parser_init */
    struct weft_frame_header header; /**< the current frame's header */
    uint64_t remaining;              /**< payload bytes of the current frame not yet returned */
    uint8_t hbuf[14];                /**< partial header bytes */
    uint8_t hlen;                    /**< bytes in hbuf */
    uint8_t state;                   /**< internal */
    uint8_t phase;                   /**< mask phase of the next payload byte */
    uint16_t error_code;             /**< sticky error: once set, every call returns it */
    const char *error_reason;        /**< static text of the sticky error */
};

/** Initialises a frame parser with its limits (copied). */
WEFT_API void weft_frame_parser_init(struct weft_frame_parser *p,
                                     const struct weft_frame_limits *limits);

/**
 * Parses bytes at data[0..len). Consumes some prefix, reports how many bytes through *consumed
 * and fills *ev with one event. Payload bytes are unmasked in place in `data` (which is why it
 * is not const). Every frame yields exactly one HEADER event followed by one or more DATA
 * events, the last with frame_end set (an empty frame yields one DATA of length 0). Input may
 * be split at any byte. Returns ev->type. After ERROR the parser stays in error.
 */
WEFT_API enum weft_frame_event_type weft_frame_parse(struct weft_frame_parser *p, uint8_t *data,
                                                     size_t len, size_t *consumed,
                                                     struct weft_frame_event *ev);

/* ======================================================================================== */
/* proto: message assembler                                                                  */
/* ======================================================================================== */

/** What weft_msg_parse found. */
enum weft_msg_event_type {
    WEFT_MSG_NEED_MORE = 0, /**< all input consumed */
    WEFT_MSG_DATA,          /**< a chunk of a text or binary message */
    WEFT_MSG_CONTROL,       /**< a complete ping, pong or close frame */
    WEFT_MSG_ERROR,         /**< protocol error; close with ev->close_code */
};

/** One event of weft_msg_parse. */
struct weft_msg_event {
    enum weft_msg_event_type type; /**< what happened; the other fields depend on it */
    uint8_t opcode;      /**< DATA: WEFT_OP_TEXT or WEFT_OP_BINARY; CONTROL: ping/pong/close */
    bool first;          /**< DATA: first chunk of the message */
    bool fin;            /**< DATA: last chunk of the message (the message is complete) */
    bool compressed;     /**< DATA: RSV1 was set on the first frame (permessage-deflate) */
    const uint8_t *data; /**< DATA: points into the input; CONTROL: into input or parser buffer */
    size_t len;          /**< DATA, CONTROL: bytes at data */
    uint16_t
        close_code;     /**< ERROR: code to close with; CONTROL close: peer's code (1005 if none) */
    const char *reason; /**< ERROR: static text; CONTROL close: peer's reason (not terminated) */
    size_t reason_len;  /**< CONTROL close */
};

/** Configuration of a message assembler. */
struct weft_msg_limits {
    struct weft_frame_limits frame; /**< limits of each frame (role, allowed RSV bits, size) */
    uint64_t max_message; /**< largest accepted message (sum of its frames); 0 = no limit */
    bool validate_utf8;   /**< validate text messages (true unless the caller does it) */
};

/** Message assembler: frame parser + sequencing rules + UTF-8 of text + close payload checks. */
struct weft_msg_parser {
    struct weft_frame_parser fp; /**< the frame parser underneath */
    uint64_t max_message;        /**< from the limits */
    uint64_t msg_len;            /**< bytes of the current data message so far */
    struct weft_utf8 utf8;       /**< validator of the text message in progress */
    uint8_t msg_opcode;          /**< opcode of the data message in progress, 0 when none */
    bool msg_compressed;         /**< the message in progress is compressed */
    bool validate_utf8;          /**< from the limits */
    bool in_frame_first;         /**< next DATA of the current frame is the first of its message */
    bool ctrl_active;            /**< current frame is a control frame */
    uint8_t ctrl_len;            /**< bytes in ctrl_buf */
    uint8_t ctrl_buf[125];       /**< a control frame's payload split across reads */
    uint16_t error_code;         /**< sticky error: once set, every call returns it */
    const char *error_reason;    /**< static text of the sticky error */
};

/** Initialises a message assembler with its limits (copied). */
WEFT_API void weft_msg_parser_init(struct weft_msg_parser *p, const struct weft_msg_limits *limits);

/** True when the assembler holds nothing between two calls: no partial frame header or
 * payload, no fragmented message in progress, no error. A parser in this state can be
 * discarded and re-initialised later with the same limits without losing anything (servers
 * use this to keep no parser at all for idle connections). */
WEFT_API bool weft_msg_parser_idle(const struct weft_msg_parser *p);

/**
 * Parses data[0..len) (unmasked in place), consumes a prefix (*consumed) and fills *ev with
 * one event. A text/binary message arrives as one or more DATA events, `first` on the first
 * and `fin` on the last; a whole single-frame message read in one go arrives as one DATA event
 * with both set, pointing straight into the caller's buffer. Control frames interleaved in a
 * fragmented message are reported whole as CONTROL events. For compressed messages UTF-8 is
 * not checked here (the inflater must check the inflated text). Returns ev->type.
 */
WEFT_API enum weft_msg_event_type weft_msg_parse(struct weft_msg_parser *p, uint8_t *data,
                                                 size_t len, size_t *consumed,
                                                 struct weft_msg_event *ev);

/* ======================================================================================== */
/* proto: frame encoder                                                                      */
/* ======================================================================================== */

/** Largest frame header: 2 + 8 (length) + 4 (mask). */
#define WEFT_FRAME_HEADER_MAX 14

/** Size of the header weft_frame_header_write would produce. */
WEFT_API size_t weft_frame_header_size(uint64_t payload_len, bool masked);

/**
 * Writes a frame header into out (at least WEFT_FRAME_HEADER_MAX bytes, or
 * weft_frame_header_size) and returns its length. `rsv` is the RSV bits as in
 * struct weft_frame_header. If mask is not NULL the MASK bit and key are written; the caller
 * must then mask the payload with weft_mask(payload, len, mask, 0).
 */
WEFT_API size_t weft_frame_header_write(uint8_t *out, uint8_t opcode, bool fin, uint8_t rsv,
                                        uint64_t payload_len, const uint8_t *mask);

/**
 * Encodes a whole frame (header + payload) into out[0..cap). In the client role a fresh mask
 * key is drawn from rnd (required then) and the payload is masked in the copy. Returns the
 * frame length, or WEFT_ERR_SPACE if cap is too small, WEFT_ERR_INVAL for a control payload
 * over 125 bytes.
 */
WEFT_API long weft_frame_encode(uint8_t *out, size_t cap, enum weft_role role,
                                struct weft_random *rnd, uint8_t opcode, bool fin, uint8_t rsv,
                                const void *payload, size_t len);

/* ======================================================================================== */
/* proto: close frames                                                                       */
/* ======================================================================================== */

/** True if `code` may appear in a close frame on the wire: 1000-1003, 1007-1011, the later
 * IANA registrations 1012-1014 (service restart, try again later, bad gateway), 3000-4999. */
WEFT_API bool weft_close_code_valid(unsigned code);

/**
 * Parses and validates a close frame payload. On success returns 0 and sets *code (1005 when
 * the payload is empty) and *reason / *reason_len (pointing into payload). On failure returns
 * the close code to answer with: 1002 for a 1-byte payload or an invalid code, 1007 for a
 * reason that is not UTF-8.
 */
WEFT_API uint16_t weft_close_parse(const uint8_t *payload, size_t len, uint16_t *code,
                                   const char **reason, size_t *reason_len);

/** Writes a close payload (2-byte code + reason truncated to 123 bytes at a UTF-8 boundary)
 * into out[125]. code 0 writes an empty payload. Returns the payload length. */
WEFT_API size_t weft_close_payload(uint8_t out[125], uint16_t code, const char *reason,
                                   size_t reason_len);

/* ======================================================================================== */
/* proto: HTTP/1.1 opening handshake                                                         */
/* ======================================================================================== */

/** Most headers a request or response head may carry (431 beyond). */
#define WEFT_HTTP_MAX_HEADERS 100
/** Default limit of an HTTP head in bytes (431 beyond). */
#define WEFT_HTTP_MAX_HEAD 8192

/** A header as a slice of the caller's buffer (not NUL-terminated). */
struct weft_http_header {
    const char *name;  /**< the header name as sent */
    size_t name_len;   /**< bytes at name */
    const char *value; /**< leading and trailing whitespace trimmed */
    size_t value_len;  /**< bytes at value */
};

/** A parsed request head: slices of the caller's buffer (not NUL-terminated). */
struct weft_http_request {
    const char *method;                                     /**< "GET", ... */
    size_t method_len;                                      /**< bytes at method */
    const char *target;                                     /**< request-target: path and query */
    size_t target_len;                                      /**< bytes at target */
    int minor_version;                                      /**< HTTP/1.x */
    size_t num_headers;                                     /**< headers used in headers[] */
    struct weft_http_header headers[WEFT_HTTP_MAX_HEADERS]; /**< in the order received */
};

/** A parsed response head: slices of the caller's buffer (not NUL-terminated). */
struct weft_http_response {
    int status;                                             /**< the status code, e.g. 101 */
    int minor_version;                                      /**< HTTP/1.x */
    const char *reason;                                     /**< the reason phrase */
    size_t reason_len;                                      /**< bytes at reason */
    size_t num_headers;                                     /**< headers used in headers[] */
    struct weft_http_header headers[WEFT_HTTP_MAX_HEADERS]; /**< in the order received */
};

/**
 * Parses an HTTP/1.1 request head from buf[0..len) (the caller accumulates bytes as they
 * arrive). Returns the length of the head (through the blank line) when complete, 0 when more
 * bytes are needed, or a negative HTTP status: -400 for a malformed head, -431 when the head
 * exceeds max_head bytes (0 = WEFT_HTTP_MAX_HEAD) or has more than WEFT_HTTP_MAX_HEADERS
 * headers. `req` points into buf and is valid while buf is.
 */
WEFT_API int weft_http_parse_request(const char *buf, size_t len, size_t max_head,
                                     struct weft_http_request *req);

/** As weft_http_parse_request, for a response head (client side); errors return -1. */
WEFT_API int weft_http_parse_response(const char *buf, size_t len, size_t max_head,
                                      struct weft_http_response *resp);

/** Looks for the blank line that ends an HTTP head (CRLF CRLF, or the bare-LF forms LF LF and
 * LF CRLF that the parsers also accept) in buf[0..len), knowing that buf[0..from) was already
 * searched without finding one: only buf[from - 2 .. len) is examined, so a caller that
 * accumulates a head read by read can call this on every read and the parser only once the
 * head is complete, in O(n) in all instead of O(n^2). Returns the length of the head through
 * the blank line, or 0 if it has not arrived yet. from = 0 searches the whole buffer. */
WEFT_API size_t weft_http_head_end(const char *buf, size_t len, size_t from);

/** Finds a header by case-insensitive name. Returns the first match or NULL. */
WEFT_API const struct weft_http_header *
weft_http_find_header(const struct weft_http_header *headers, size_t n, const char *name);

/** True if the comma-separated token list in value[0..len) contains `token`
 * (case-insensitive, optional whitespace around elements). */
WEFT_API bool weft_http_list_has(const char *value, size_t len, const char *token);

/** Computes Sec-WebSocket-Accept for a key (as sent, base64 of 16 bytes): base64(SHA-1(key +
 * GUID)). Writes 28 characters and a NUL into out; a key longer than 128 bytes (a valid one has
 * 24) yields the empty string, which matches no accept value. */
WEFT_API void weft_ws_accept(const char *key, size_t key_len, char out[29]);

/** What a valid upgrade request asks for, as slices into the request buffer. */
struct weft_upgrade_info {
    const char *key;        /**< Sec-WebSocket-Key */
    size_t key_len;         /**< bytes at key */
    const char *host;       /**< Host */
    size_t host_len;        /**< bytes at host */
    const char *origin;     /**< NULL if absent */
    size_t origin_len;      /**< bytes at origin */
    const char *protocols;  /**< first Sec-WebSocket-Protocol header, NULL if absent (later
                               ones are ignored: slices cannot be joined without copying);
                               use weft_http_list_next to walk it */
    size_t protocols_len;   /**< bytes at protocols */
    const char *extensions; /**< first Sec-WebSocket-Extensions header, NULL if absent */
    size_t extensions_len;  /**< bytes at extensions */
};

/**
 * Checks that a parsed request is a valid WebSocket upgrade (RFC 6455 §4.2.1): method GET,
 * HTTP/1.1 or later, Host present, Upgrade: websocket, Connection containing "upgrade", version
 * 13, a key that base64-decodes to 16 bytes. Returns 0 and fills *info, or the HTTP status to
 * answer with: 400 (malformed or missing field, Sec-WebSocket-Version missing, Host or
 * Sec-WebSocket-Key repeated), 426 (a version other than exactly "13"; answer with
 * weft_http_error_response and the header Sec-WebSocket-Version: 13), 405 for a method other
 * than GET.
 */
WEFT_API int weft_handshake_check_request(const struct weft_http_request *req,
                                          struct weft_upgrade_info *info);

/**
 * Iterates a comma-separated list: on each call returns the next trimmed element of
 * list[0..len) starting at *pos (initially 0) through *item / *item_len and advances *pos.
 * Returns false when the list is exhausted. Empty elements are skipped.
 */
WEFT_API bool weft_http_list_next(const char *list, size_t len, size_t *pos, const char **item,
                                  size_t *item_len);

/**
 * Writes the 101 Switching Protocols response for `key` into out[0..cap). protocol and
 * extensions may be NULL; extra_headers (may be NULL) is inserted verbatim and must consist of
 * complete "Name: value\r\n" lines. Returns the length written (no NUL is added),
 * WEFT_ERR_SPACE, or WEFT_ERR_INVAL if a field contains CR, LF or another control character,
 * extra_headers is not complete lines, or the key is longer than 128 bytes.
 */
WEFT_API int weft_handshake_response(char *out, size_t cap, const char *key, size_t key_len,
                                     const char *protocol, const char *extensions,
                                     const char *extra_headers);

/** Writes an HTTP error response (status line, Content-Type text/plain, Content-Length,
 * Connection: close, extra_headers lines, body) into out. status 426 adds
 * Sec-WebSocket-Version: 13. body NULL means empty. Returns the length, WEFT_ERR_SPACE, or
 * WEFT_ERR_INVAL for a status outside 100..999 or extra_headers that are not complete lines. */
WEFT_API int weft_http_error_response(char *out, size_t cap, int status, const char *extra_headers,
                                      const char *body);

/** Standard reason phrase of an HTTP status ("Bad Request"), "Unknown" if not known. */
WEFT_API const char *weft_http_reason(int status);

/** Client side: what to put in the opening request. */
struct weft_client_request {
    const char *host;          /**< Host header value, including ":port" when not default */
    const char *path;          /**< request target, "/" if NULL */
    const char *origin;        /**< may be NULL */
    const char *protocols;     /**< comma-separated subprotocols to offer, may be NULL */
    const char *extensions;    /**< Sec-WebSocket-Extensions offer, may be NULL */
    const char *extra_headers; /**< complete "Name: value\r\n" lines, may be NULL */
};

/** Generates a fresh Sec-WebSocket-Key (base64 of 16 random bytes) into key[25]. */
WEFT_API void weft_handshake_key(struct weft_random *rnd, char key[25]);

/** Writes the client's upgrade request with `key` into out. Returns the length, WEFT_ERR_SPACE,
 * or WEFT_ERR_INVAL (host missing, key not 24 characters, path with SP or control characters,
 * a field with CR, LF or control characters, extra_headers not complete lines). */
WEFT_API int weft_handshake_request(char *out, size_t cap, const struct weft_client_request *cr,
                                    const char key[25]);

/** Result of checking the server's response. */
struct weft_handshake_result {
    const char *protocol;   /**< chosen subprotocol (slice of the response), NULL if none */
    size_t protocol_len;    /**< bytes at protocol */
    const char *extensions; /**< accepted extensions, NULL if none */
    size_t extensions_len;  /**< bytes at extensions */
    const char *error;      /**< static text describing why the check failed */
};

/**
 * Checks a parsed response against the request we sent: status 101, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Accept matching key, a subprotocol we offered (if any) and
 * extensions whose names we offered. Sec-WebSocket-Accept, -Protocol and -Extensions may each
 * appear at most once. Returns WEFT_OK or WEFT_ERR_PROTO with res->error set (for a status
 * other than 101 the text is generic: read resp->status).
 */
WEFT_API int weft_handshake_check_response(const struct weft_http_response *resp,
                                           const char key[25], const char *offered_protocols,
                                           const char *offered_extensions,
                                           struct weft_handshake_result *res);

/** Base64 (standard alphabet, padded): encodes in[0..n) into out, NUL-terminated. Returns the
 * length written (4*ceil(n/3)); out needs one more byte. */
WEFT_API size_t weft_base64_encode(const uint8_t *in, size_t n, char *out);
/** Decodes base64 in[0..n) into out[0..cap). Returns the decoded length, or -1 for invalid
 * input or too small a buffer. */
WEFT_API long weft_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* ======================================================================================== */
/* proto: permessage-deflate (RFC 7692)                                                      */
/* ======================================================================================== */

/** Parameters of permessage-deflate, as offered or agreed. Window bits are 8..15. */
struct weft_pmd_params {
    bool server_no_context_takeover; /**< the server compressor forgets its window per message */
    bool client_no_context_takeover; /**< the client compressor forgets its window per message */
    uint8_t server_max_window_bits;  /**< 15 when absent */
    uint8_t client_max_window_bits;  /**< 15 when absent */
    bool client_max_window_bits_set; /**< the parameter appeared (with or without a value) */
};

/** What an endpoint wants from the negotiation. */
struct weft_pmd_config {
    bool enabled; /**< offer (client) or accept (server) permessage-deflate */
    /** Ask for / impose no context takeover on our side's compressor (the server sends
     * server_no_context_takeover; the client offers client_no_context_takeover). With it a
     * connection holds no compressor state between messages. */
    bool no_context_takeover;
    /** Impose no context takeover on the peer's compressor (the server sends
     * client_no_context_takeover, which clients must obey; the client offers
     * server_no_context_takeover). With it no inflater state is kept between messages. */
    bool peer_no_context_takeover;
    uint8_t max_window_bits;      /**< our compressor's window, 9..15 (0 = 15) */
    uint8_t peer_max_window_bits; /**< the window we ask the peer to use, 8..15 (0 = 15) */
    int mem_level;                /**< zlib memLevel 1..9 (0 = 8) */
    int level;                    /**< zlib level 0..9 (0 = default 6; use -1 for 0) */
    size_t threshold;             /**< messages shorter than this go uncompressed */
};

/**
 * Server side: walks the offers in a Sec-WebSocket-Extensions value (several offers,
 * comma-separated, possibly spread over several headers joined by the caller) and takes the
 * first permessage-deflate offer that is valid and acceptable under cfg. Invalid offers
 * (unknown or duplicate parameters, bad values) are declined as RFC 7692 §5 requires. On
 * success returns 1, fills *agreed and writes the response extension (e.g.
 * "permessage-deflate; server_no_context_takeover") into out; returns 0 when nothing is
 * accepted, WEFT_ERR_SPACE when out is too small.
 */
WEFT_API int weft_pmd_negotiate(const char *offers, size_t len, const struct weft_pmd_config *cfg,
                                struct weft_pmd_params *agreed, char *out, size_t cap);

/** Client side: writes our offer into out. Returns its length or WEFT_ERR_SPACE. */
WEFT_API int weft_pmd_offer(const struct weft_pmd_config *cfg, char *out, size_t cap);

/** Client side: checks the server's accepted extension against what we offered. Returns 0 and
 * fills *agreed, or WEFT_ERR_PROTO (the connection must be failed): unknown or duplicate
 * parameters, bad values, client_max_window_bits we did not offer, a window above ours. */
WEFT_API int weft_pmd_accept(const char *response, size_t len, const struct weft_pmd_config *cfg,
                             struct weft_pmd_params *agreed);

/** The codec that handles a message (see src/proto/deflate.c): libdeflate for whole messages
 * without context takeover (and, compressing, a 15-bit window), zlib for the rest. */
enum weft_pmd_engine {
    WEFT_PMD_ZLIB,      /**< zlib (deflate/inflate streams) */
    WEFT_PMD_LIBDEFLATE /**< libdeflate (one call per whole message) */
};

/** Compressor engine for a message compressed with window_bits (8..15, 0 = 15), zlib level
 * (0 = store: zlib) and no_context_takeover (the window is forgotten after the message). */
WEFT_API enum weft_pmd_engine weft_pmd_deflate_engine(int window_bits, int level,
                                                      bool no_context_takeover);
/** Decompressor engine for a message the peer compressed with window_bits (any: libdeflate's
 * 32 KiB window decodes every smaller one), whole (all frames assembled) and with
 * no_context_takeover on the peer's side. */
WEFT_API enum weft_pmd_engine weft_pmd_inflate_engine(int window_bits, bool whole_message,
                                                      bool no_context_takeover);

/** A compressor or decompressor for one direction. Allocated (the codec libraries allocate
 * their state on first use), not thread-safe. */
struct weft_deflater;
struct weft_inflater;

/** Creates a compressor with the window the peer allows (8 is raised to 9: zlib cannot
 * compress with 8, and a 9-bit window never emits distances over 250, which an 8-bit window
 * decodes), zlib memLevel (1..9, else 8) and level (0..9, -1 = zlib's default 6). NULL on
 * allocation failure. */
WEFT_API struct weft_deflater *weft_deflater_new(int window_bits, int mem_level, int level);
/** Frees a compressor (NULL is harmless). */
WEFT_API void weft_deflater_free(struct weft_deflater *d);

/** Engine that compressed the last message (WEFT_PMD_ZLIB before the first). */
WEFT_API enum weft_pmd_engine weft_deflater_engine(const struct weft_deflater *d);

/** Upper bound of the compressed size of a len-byte message. */
WEFT_API size_t weft_deflate_bound(size_t len);

/**
 * Compresses a whole message into out (at least weft_deflate_bound(len) bytes), without the
 * trailing 0x00 0x00 0xff 0xff (RFC 7692 §7.2.1). reset: forget the window afterwards (no
 * context takeover). Returns the compressed length or a negative weft_err.
 */
WEFT_API long weft_deflate_message(struct weft_deflater *d, const uint8_t *in, size_t len,
                                   uint8_t *out, size_t cap, bool reset);

/** Creates a decompressor for a peer window of window_bits (8..15). */
WEFT_API struct weft_inflater *weft_inflater_new(int window_bits);
/** Forgets a message in progress and the window (after an aborted message). */
WEFT_API void weft_inflater_reset(struct weft_inflater *i);
/** Frees a decompressor (NULL is harmless). */
WEFT_API void weft_inflater_free(struct weft_inflater *i);

/**
 * Decompresses the next piece of a compressed message. in[0..len) is the next part of the
 * payload; fin says it is the last part (the 0x00 0x00 0xff 0xff tail is then appended
 * internally). Output goes to out[0..cap); *in_used / *out_made report progress. Returns 1
 * when it must be called again (output full, or input left), 0 when everything given was
 * consumed (and, with fin, the message is complete), WEFT_ERR_PROTO for a corrupt stream.
 * reset (with fin): forget the window after the message (peer has no context takeover).
 */
WEFT_API int weft_inflate(struct weft_inflater *i, const uint8_t *in, size_t len, bool fin,
                          bool reset, uint8_t *out, size_t cap, size_t *in_used, size_t *out_made);

/**
 * Decompresses a whole message the peer compressed without context takeover (the window is
 * not used before nor kept after), with libdeflate (zlib for input libdeflate rejects). Never
 * writes more than cap bytes: returns 0 and sets *out_made, WEFT_ERR_SPACE when the message
 * inflates to more than cap (the caller grows out up to its limit, or closes 1009),
 * WEFT_ERR_PROTO for a corrupt stream, WEFT_ERR_NOMEM.
 */
WEFT_API int weft_inflate_message(struct weft_inflater *i, const uint8_t *in, size_t len,
                                  uint8_t *out, size_t cap, size_t *out_made);
/** Engine of the last weft_inflate_message (WEFT_PMD_ZLIB before the first). */
WEFT_API enum weft_pmd_engine weft_inflater_engine(const struct weft_inflater *i);

/* ======================================================================================== */
/* net: the event loop                                                                       */
/* ======================================================================================== */

/**
 * An event loop: epoll (edge-triggered), a timer wheel, an eventfd for wake-ups and a signalfd.
 * One loop per thread; a loop and everything attached to it (servers, connections, timers) is
 * used only from the thread that runs it.
 *
 * Thread safety: the ONLY entries that may be called from any thread are weft_loop_defer,
 * weft_loop_stop, weft_group_publish (multi-core pub/sub, below) and the weft_memory_* calls
 * (the memory budget, below). Everything else belongs
 * to the loop's own thread; hand work to it with weft_loop_defer.
 */
struct weft_loop;

/** The I/O backend a loop uses. epoll is always built; io_uring when libweft was built with
 * liburing (CMake option WEFT_URING). */
enum weft_io_backend {
    WEFT_IO_DEFAULT = 0, /**< the environment variable WEFT_IO_BACKEND ("epoll" or "uring") if
                            set, else epoll */
    WEFT_IO_EPOLL,       /**< edge-triggered epoll, one read and one writev per socket */
    WEFT_IO_URING,       /**< io_uring: multishot accept, multishot receive into a
                            provided-buffer ring, the sends of one iteration in one submission
                            (TLS sockets and application descriptors use ring polls) */
};

/** Options of weft_loop_new_config; fill with weft_loop_config_init. */
struct weft_loop_config {
    enum weft_io_backend io_backend; /**< default WEFT_IO_DEFAULT */
};

/** Fills cfg with the defaults. */
WEFT_API void weft_loop_config_init(struct weft_loop_config *cfg);

/** Creates a loop with the given options (NULL = defaults). When io_uring is asked for but is
 * not built in, or the kernel refuses it (io_uring_setup failing with ENOSYS, EPERM under a
 * seccomp filter or io_uring_disabled, ENOMEM...), the loop uses epoll instead: check with
 * weft_loop_backend and weft_loop_backend_error (the library does not log). Returns NULL on
 * failure (errno set). */
WEFT_API struct weft_loop *weft_loop_new_config(const struct weft_loop_config *cfg);

/** Creates a loop with the default options (weft_loop_new_config(NULL)). Returns NULL on
 * failure (errno set). */
WEFT_API struct weft_loop *weft_loop_new(void);

/** The backend the loop runs on (WEFT_IO_EPOLL or WEFT_IO_URING, never WEFT_IO_DEFAULT). */
WEFT_API enum weft_io_backend weft_loop_backend(const struct weft_loop *loop);

/** Why the loop fell back to epoll: the errno of the failed io_uring set-up (ENOSYS, EPERM,
 * ...), ENOTSUP when io_uring is not built in, 0 when the loop runs the backend asked for. */
WEFT_API int weft_loop_backend_error(const struct weft_loop *loop);

/** True when libweft was built with backend b (epoll always; io_uring with liburing). Says
 * nothing about whether the running kernel allows it. */
WEFT_API bool weft_io_backend_built(enum weft_io_backend b);

/** "epoll", "uring" or "default". */
WEFT_API const char *weft_io_backend_name(enum weft_io_backend b);

/** Parses "epoll" or "uring" (as in WEFT_IO_BACKEND and --io-backend) into *out. Returns
 * WEFT_OK or WEFT_ERR_INVAL. */
WEFT_API int weft_io_backend_parse(const char *name, enum weft_io_backend *out);

/** Frees a loop. Everything attached to it must have been closed first. */
WEFT_API void weft_loop_free(struct weft_loop *loop);

/** Runs the loop until weft_loop_stop. Returns WEFT_OK or WEFT_ERR_IO. */
WEFT_API int weft_loop_run(struct weft_loop *loop);

/** Runs one iteration, waiting at most timeout_ms (-1 = until an event, 0 = do not wait).
 * For applications that embed weft in their own loop (see weft_loop_fd). Returns the number
 * of events handled or WEFT_ERR_IO. */
WEFT_API int weft_loop_poll(struct weft_loop *loop, int timeout_ms);

/** The epoll descriptor (or io_uring descriptor): readable when weft_loop_poll has work. For
 * embedding. */
WEFT_API int weft_loop_fd(const struct weft_loop *loop);

/** Makes weft_loop_run return after the current iteration. Thread-safe. */
WEFT_API void weft_loop_stop(struct weft_loop *loop);

/** Milliseconds of CLOCK_MONOTONIC as of the start of the current iteration. */
WEFT_API uint64_t weft_loop_now(const struct weft_loop *loop);

/** Runs fn(arg) on the loop's thread at its next iteration. Thread-safe (wakes the loop through
 * its eventfd); calls deferred from one thread to one loop run in the order they were made.
 * Calls still pending when the loop is freed are dropped (run the loop once more first).
 * Returns WEFT_OK or WEFT_ERR_NOMEM. */
WEFT_API int weft_loop_defer(struct weft_loop *loop, void (*fn)(void *arg), void *arg);

/** Calls fn(signo, arg) on the loop's thread when the process receives signo (the signal is
 * blocked in the calling thread and delivered through a signalfd; call this before starting
 * other threads so they inherit the mask). One handler per signal. Returns WEFT_OK or
 * WEFT_ERR_IO. */
WEFT_API int weft_loop_on_signal(struct weft_loop *loop, int signo,
                                 void (*fn)(int signo, void *arg), void *arg);

/* Application file descriptors served by the loop: see weft_loop_watch_fd below (section
 * "net: watching a file descriptor"); there is one such API. */

/** A one-shot timer owned by the caller (embed it in your own struct). Zero-initialise. */
struct weft_timer {
    struct weft_timer *next;          /**< internal: wheel slot link */
    struct weft_timer **pprev;        /**< internal: wheel slot link, NULL when stopped */
    uint64_t expires;                 /**< internal */
    void (*cb)(struct weft_timer *t); /**< called once on the loop's thread when due */
};

/** (Re)starts a timer due in `ms` milliseconds (resolution about 8 ms), counted from the current
 * iteration's clock inside a callback, and from the actual time when called between polls. */
WEFT_API void weft_timer_start(struct weft_loop *loop, struct weft_timer *t, uint64_t ms);
/** Stops a timer; harmless if it is not running. */
WEFT_API void weft_timer_stop(struct weft_timer *t);
/** True while the timer is started and has not fired or been stopped. */
static inline bool weft_timer_active(const struct weft_timer *t)
{
    return t->pprev != NULL;
}

/* ======================================================================================== */
/* ws: servers and connections                                                               */
/* ======================================================================================== */

struct weft_server;
struct weft_conn;
struct weft_request;

/** What happens to output for a connection whose unsent data (backpressure) would exceed
 * max_backpressure: see max_backpressure in struct weft_server_config. */
enum weft_slow_policy {
    WEFT_SLOW_DROP = 0, /**< refuse new messages and pings (WEFT_SEND_DROPPED) and count them;
                           pongs are owed and coalesced */
    WEFT_SLOW_CLOSE,    /**< close the connection with 1008 (policy violation) */
};

/** Result of a send. */
enum weft_send_result {
    WEFT_SEND_SENT = 0, /**< accepted; goes out at the end of this loop iteration (corked) */
    WEFT_SEND_QUEUED,   /**< accepted, but the peer is slow: data is waiting for the kernel */
    WEFT_SEND_DROPPED,  /**< refused: over max_backpressure (slow-consumer policy) */
    WEFT_SEND_CLOSED,   /**< refused: the connection is closing or closed */
};

/** Callbacks of a WebSocket route. All are optional and run on the loop's thread. The
 * route_user pointer given at registration is available as weft_conn_route_user. */
struct weft_ws_handlers {
    /** Before the 101: inspect the request and call weft_request_accept (optionally with a
     * subprotocol and user data) or weft_request_reject. If the callback does neither, or is
     * NULL, the upgrade is accepted with no subprotocol and NULL user data. */
    void (*on_upgrade)(struct weft_request *req, void *route_user);
    /** After the 101 was queued: the connection is open. */
    void (*on_open)(struct weft_conn *c);
    /** A whole message. `data` is valid only during the call (it may point into the loop's
     * receive buffer). Text is valid UTF-8. */
    void (*on_message)(struct weft_conn *c, const void *data, size_t len, bool binary);
    /** Streaming alternative for large messages: if set, messages arrive as chunks instead of
     * whole (on_message is not called); `fin` marks the last chunk. */
    void (*on_fragment)(struct weft_conn *c, const void *data, size_t len, bool binary, bool first,
                        bool fin);
    /** The backlog of unsent data has drained completely after a WEFT_SEND_QUEUED. */
    void (*on_drain)(struct weft_conn *c);
    /** A pong arrived (payload valid during the call). Pings are answered automatically. */
    void (*on_pong)(struct weft_conn *c, const void *data, size_t len);
    /** The connection is gone. With `clean` true the close handshake completed and code/reason
     * are the peer's close frame's (whichever side began). With `clean` false they are the
     * close weft sent: the code of weft_conn_close when the peer never answered, or the code
     * with which weft itself failed the connection (1002, 1007, 1009, 1008, 1013, ...),
     * reported at once without waiting for the peer's answer; 1006 if no close frame was
     * exchanged. During this call weft_conn_close_sent and weft_conn_close_received give both
     * codes. The conn pointer is invalid after this returns. */
    void (*on_close)(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean);
};

/** A plain HTTP handler: answer with weft_request_respond before returning. */
typedef void (*weft_http_handler)(struct weft_request *req, void *route_user);

/** Server configuration. Zero means "the default" for every numeric field. */
struct weft_server_config {
    const char *host;      /**< address to listen on (default "0.0.0.0"; "::" for IPv6) */
    uint16_t port;         /**< default 8080; listens only if unix_path is NULL */
    bool port_ephemeral;   /**< bind port 0 (any free port; see weft_server_port) */
    const char *unix_path; /**< listen on a Unix domain socket instead */
    bool reuse_port;       /**< SO_REUSEPORT, for several processes/threads on one port */
    int backlog;           /**< listen backlog (default 1024) */

    uint64_t max_message;          /**< default 1 MiB (close 1009 beyond) */
    uint64_t max_frame;            /**< default = max_message */
    uint32_t max_head;             /**< HTTP request head limit, default 8 KiB (431 beyond) */
    uint32_t handshake_timeout_ms; /**< default 10 s */
    uint32_t idle_timeout_ms;      /**< close 1001 after no traffic at all; default 0 = never */
    uint32_t ping_interval_ms;     /**< send a ping after this much silence; 0 = never */
    uint32_t pong_timeout_ms;      /**< close a peer that does not answer a ping (default 10 s) */
    uint32_t close_timeout_ms;     /**< wait for the peer's close frame / FIN (default 5 s) */
    /** Unsent bytes per connection (default 1 MiB): every kind of output we originate counts,
     * whether the kernel has refused data yet or not (so sends within one loop iteration
     * count too). weft_conn_send, weft_publish and weft_conn_ping refuse (WEFT_SLOW_DROP) or
     * close with 1008 (WEFT_SLOW_CLOSE) what would take the queue over it; a message larger
     * than the limit on its own is still accepted into an empty queue. Automatic pongs obey
     * the same limit: under WEFT_SLOW_CLOSE a ping that cannot be answered within it closes
     * the connection; under WEFT_SLOW_DROP only the answer to the latest such ping is kept
     * and sent once the queue drains (RFC 6455 §5.5.3), the others count as dropped. The
     * close frame and the keep-alive ping (one per pong timeout) are bounded on their own.
     * Receive-side flow control: while the output is over the limit and the kernel refuses
     * more, the connection is not read at all (what the peer sends waits in the kernel and
     * TCP pushes back on it) until the output has drained; the idle and keep-alive timeouts
     * keep running meanwhile. So a peer that sends (pings, or messages the application
     * answers) but never reads costs at most max_backpressure + one frame of output. */
    size_t max_backpressure;
    enum weft_slow_policy slow_policy; /**< what happens over max_backpressure */

    /** permessage-deflate (off unless deflate.enabled). With no_context_takeover and
     * peer_no_context_takeover (the lean setting weft serve uses) a connection keeps no zlib
     * state between messages: one compressor and one decompressor per loop serve all of
     * them, and a published message is compressed once per window size. With context
     * takeover each connection owns its zlib streams (max_window_bits and mem_level bound
     * their memory). The decompressed size counts against max_message as it is inflated. */
    struct weft_pmd_config deflate;

    /** TLS (wss://): both set = every connection is TLS 1.2/1.3 (OpenSSL 3), ALPN http/1.1.
     * PEM files: the certificate followed by its chain, and the private key. Read by
     * weft_server_new (a bad, missing or mismatched file fails it with WEFT_ERR_TLS) and again
     * by weft_server_reload_tls (the paths are copied). NULL = plain TCP. */
    const char *tls_cert_file;
    const char *tls_key_file; /**< see tls_cert_file */

    /** Log sink for library events (accept errors, protocol errors). NULL = silent. c is the
     * connection the line is about (valid during the call only; weft_conn_user and
     * weft_conn_route_user may be read), NULL for a line about no connection. */
    void (*log)(void *log_user, int level, struct weft_conn *c, const char *msg);
    void *log_user; /**< passed to log */
};

/** Log levels passed to the log callback. */
enum weft_log_level { WEFT_LOG_DEBUG = 0, WEFT_LOG_INFO, WEFT_LOG_WARN, WEFT_LOG_ERROR };

/** Creates a server on loop and starts listening. On failure returns NULL and sets *err
 * (WEFT_ERR_ADDRESS for an unusable address, WEFT_ERR_IO with errno for bind/listen). */
WEFT_API struct weft_server *weft_server_new(struct weft_loop *loop,
                                             const struct weft_server_config *cfg, int *err);

/** Registers a WebSocket route. pattern is an exact path ("/echo") or a prefix ending in a
 * star ("/ws/" + star matches "/ws/anything"; a lone star matches everything). Routes are
 * matched in registration order against the path (without the query). handlers is copied.
 * Returns WEFT_OK, WEFT_ERR_INVAL or WEFT_ERR_NOMEM. */
WEFT_API int weft_server_ws(struct weft_server *s, const char *pattern,
                            const struct weft_ws_handlers *h, void *route_user);

/** Registers a plain HTTP route for method ("GET", or NULL for any) and pattern. A request
 * that matches no route gets 404; a WebSocket upgrade to an HTTP-only path gets 404 too. */
WEFT_API int weft_server_http(struct weft_server *s, const char *method, const char *pattern,
                              weft_http_handler fn, void *route_user);

/** The TCP port actually bound (useful when cfg.port_ephemeral asked for any free port);
 * 0 for a Unix socket. */
WEFT_API uint16_t weft_server_port(const struct weft_server *s);

/** Graceful shutdown: stop accepting, send close 1001 (or `code`) to every connection, wait
 * for the close handshakes up to deadline_ms, then drop what remains and call done(arg).
 * Calling it twice is harmless. */
WEFT_API void weft_server_shutdown(struct weft_server *s, uint16_t code, uint32_t deadline_ms,
                                   void (*done)(void *arg), void *arg);

/** Frees a server; all its connections are dropped without a close handshake (on_close reports
 * 1006). Call it between iterations (after weft_loop_run returned, or between two
 * weft_loop_poll calls), not from a callback: connections it frees may still have events
 * pending in the current iteration. Deferred HTTP responses must have been answered. */
WEFT_API void weft_server_free(struct weft_server *s);

/** Reads the server's TLS certificate and key files again (e.g. on SIGHUP, after renewal) and
 * uses them for connections accepted from now on; open connections keep the certificate they
 * were established with (each holds a reference to its context). On failure (bad, missing or
 * mismatched file) the server keeps the previous certificate and returns WEFT_ERR_TLS
 * (weft_tls_last_error says why); WEFT_ERR_INVAL if the server was not started with TLS.
 * Loop thread only. */
WEFT_API int weft_server_reload_tls(struct weft_server *s);

/** Statistics of a server (monotonic counters and gauges). */
struct weft_server_stats {
    uint64_t connections;          /**< open WebSocket connections now */
    uint64_t accepted_total;       /**< TCP connections accepted */
    uint64_t upgrades_total;       /**< successful handshakes */
    uint64_t rejected_total;       /**< handshakes answered with an HTTP error */
    uint64_t http_requests;        /**< plain HTTP requests served */
    uint64_t messages_in;          /**< messages received */
    uint64_t messages_out;         /**< messages sent */
    uint64_t bytes_in;             /**< payload bytes received */
    uint64_t bytes_out;            /**< payload bytes sent */
    uint64_t dropped_backpressure; /**< sends refused by WEFT_SLOW_DROP, and pongs not
                                      sent under it (see max_backpressure) */
    uint64_t closed_slow;          /**< connections closed by WEFT_SLOW_CLOSE */
    uint64_t protocol_errors;      /**< connections closed for a peer protocol error */
    uint64_t publishes;            /**< publishes made on this server's loop thread
                                      (weft_publish, weft_group_publish) */
    uint64_t deliveries;           /**< subscribers the publishes were queued to */
    uint64_t topics;               /**< topics with at least one subscriber */
    /** Of rejected_total, by status: 400 (also 405 and 431: malformed request or upgrade),
     * 426 (unsupported WebSocket version, or a plain request to a WebSocket-only path) and
     * 503 (shutting down, out of memory, or weft_request_reject with 503; also a 101 that
     * could not be queued for lack of memory: that connection is closed without an answer). */
    uint64_t rejected_400;
    uint64_t rejected_426; /**< see rejected_400 */
    uint64_t rejected_503; /**< see rejected_400 */
    /** The memory budget (weft_memory_set_budget): bytes held now by the connections of
     * this server's loop (its share of weft_memory_held; client connections on the same loop
     * count too). */
    uint64_t memory_held;
    /** Connections this server closed with 1013 for the memory budget (refused messages
     * included). */
    uint64_t closed_memory;
};
/** Fills *out with the server's statistics now. */
WEFT_API void weft_server_stats(const struct weft_server *s, struct weft_server_stats *out);

/* --- the process-wide memory budget ------------------------------------------------- */

/*
 * One budget for the bytes that remote peers can make the process hold, across every loop,
 * server, client and worker thread of the process (one relaxed atomic counter; no lock).
 * What counts, exactly (counted when allocated or grown, released when freed, so the count
 * is 0 again once the connections are gone):
 *   - a message being reassembled (fragmented, or a frame split across reads), by the
 *     capacity of its buffer. A message delivered whole from the receive buffer (the common
 *     case) is never copied and costs nothing;
 *   - the output of a compressed message being inflated, beyond the loop's 256 KiB scratch;
 *   - output queued for a connection that the kernel refused (a slow or stalled reader): a
 *     queue the end-of-iteration flush empties is never counted. A published frame shared by
 *     several queues counts once per queue.
 * Past the budget, all with close code 1013 (try again later: the message is within
 * max_message, the server is short of memory for now; weft's client backs off on 1013):
 *   - a message that is not buffered yet is refused before any of it is, when what its
 *     first frame announces does not fit;
 *   - a buffer or queue that would grow past the budget has the largest holders of the same
 *     server closed first, largest first, until it fits; when the connection that grows is
 *     the largest, it is the one closed. What a closed connection held is released at
 *     once: one closed for its queued output loses that output and gets only a FIN (it does
 *     not read, so no close frame could reach it); others get the close frame. Neither is
 *     read any more, and on_close (1013, not clean) follows from the loop, never from inside
 *     the send or publish that made room.
 * Each loop closes only its own connections: when other loops hold the memory, the
 * connection that asks is closed. Counted in weft_server_stats (memory_held,
 * closed_memory).
 */

/** Sets the budget in bytes; 0 (the default) means none. Thread-safe, any time: it applies
 * to the next allocation or growth (nothing already held is closed for a lowered budget until
 * something grows). */
WEFT_API void weft_memory_set_budget(uint64_t bytes);
/** The budget in bytes, 0 if none. Thread-safe. */
WEFT_API uint64_t weft_memory_budget(void);
/** Bytes held now, process-wide (see above). Thread-safe; relaxed, so a value read while
 * other threads allocate is approximate at that instant. */
WEFT_API uint64_t weft_memory_held(void);

/* --- the HTTP request, during on_upgrade and HTTP handlers --------------------------- */

/** Request line parts (not NUL-terminated; valid during the callback only). */
WEFT_API const char *weft_request_method(const struct weft_request *r, size_t *len);
WEFT_API const char *weft_request_path(const struct weft_request *r,
                                       size_t *len); /**< without query */
WEFT_API const char *weft_request_query(const struct weft_request *r,
                                        size_t *len); /**< after '?', or NULL */
/** A header value by case-insensitive name, NULL if absent. */
WEFT_API const char *weft_request_header(const struct weft_request *r, const char *name,
                                         size_t *len);
/** Iterates headers: returns false past the last. */
WEFT_API bool weft_request_header_at(const struct weft_request *r, size_t i, const char **name,
                                     size_t *name_len, const char **value, size_t *value_len);
/** The peer address as text ("127.0.0.1:5000", "[::1]:5000", "unix"). */
WEFT_API const char *weft_request_remote(const struct weft_request *r);
/** The subprotocols the client offered (comma list), NULL if none. */
WEFT_API const char *weft_request_protocols(const struct weft_request *r, size_t *len);

/** In on_upgrade: accept, choosing `protocol` (must be one the client offered, or NULL) and
 * attaching user data to the new connection. extra_headers: complete "Name: v\r\n" lines
 * added to the 101, or NULL. */
WEFT_API void weft_request_accept(struct weft_request *r, const char *protocol, void *user,
                                  const char *extra_headers);
/** In on_upgrade: refuse with an HTTP status (e.g. 401, 403, 503), optional extra header lines
 * and body. */
WEFT_API void weft_request_reject(struct weft_request *r, int status, const char *extra_headers,
                                  const char *body);
/** In an HTTP handler: send a complete response. content_type may be NULL (text/plain). */
WEFT_API void weft_request_respond(struct weft_request *r, int status, const char *content_type,
                                   const char *extra_headers, const void *body, size_t body_len);

/** A plain HTTP response the handler gives later (for example after asynchronous work on the
 * loop, such as a readiness probe). Opaque. */
struct weft_deferred;

/** In an HTTP handler (not on_upgrade): promises a response later instead of answering before
 * returning. Reading from the client is paused meanwhile; the handshake timeout still applies
 * (the client is dropped if the response has not been given by then). Returns the handle to
 * pass to weft_deferred_respond exactly once, or NULL (out of memory, already answered, or
 * called in on_upgrade): then answer at once with weft_request_respond. */
WEFT_API struct weft_deferred *weft_request_defer(struct weft_request *r);

/** Gives a deferred response (same arguments as weft_request_respond) and frees d. If the
 * client went away meanwhile, only frees d. Call on the loop's thread, before the server is
 * freed. */
WEFT_API void weft_deferred_respond(struct weft_deferred *d, int status, const char *content_type,
                                    const char *extra_headers, const void *body, size_t body_len);

/* --- connections -------------------------------------------------------------------- */

/** Sends a message (opcode WEFT_OP_TEXT or WEFT_OP_BINARY; text must be valid UTF-8, which is
 * not re-checked). The data is copied; it goes out corked at the end of the iteration. */
WEFT_API enum weft_send_result weft_conn_send(struct weft_conn *c, const void *data, size_t len,
                                              enum weft_opcode opcode);
/** Sends a ping (payload ≤ 125 bytes). */
WEFT_API enum weft_send_result weft_conn_ping(struct weft_conn *c, const void *data, size_t len);
/** Bytes accepted by send but not yet taken by the kernel. */
WEFT_API size_t weft_conn_buffered_amount(const struct weft_conn *c);
/** Starts the close handshake with code (1000 if 0) and reason (≤ 123 bytes). on_close follows
 * when the peer answers or the close timeout passes. */
WEFT_API void weft_conn_close(struct weft_conn *c, uint16_t code, const char *reason);
/** Drops the TCP connection at once (no close frame); on_close reports 1006. */
WEFT_API void weft_conn_terminate(struct weft_conn *c);
/** Stops reading from the peer (receive-side flow control) until weft_conn_resume. */
WEFT_API void weft_conn_pause(struct weft_conn *c);
/** Restarts reading after weft_conn_pause. While the library itself holds reading because of
 * backpressure (see max_backpressure), reading restarts only when that ends. */
WEFT_API void weft_conn_resume(struct weft_conn *c);
/** The connection's user data (given to weft_request_accept, or set by weft_conn_set_user). */
WEFT_API void *weft_conn_user(const struct weft_conn *c);
/** Replaces the connection's user data. */
WEFT_API void weft_conn_set_user(struct weft_conn *c, void *user);
/** The route_user pointer of the route the connection came through (weft_server_ws), or the
 * client options' user for a client-side connection. */
WEFT_API void *weft_conn_route_user(const struct weft_conn *c);
/** The server a server-side connection belongs to; NULL for a client-side connection. */
WEFT_API struct weft_server *weft_conn_server(const struct weft_conn *c);
WEFT_API const char *weft_conn_protocol(const struct weft_conn *c); /**< "" if none */
/** Writes the negotiated extensions into out as a Sec-WebSocket-Extensions value, e.g.
 * "permessage-deflate; client_no_context_takeover; server_max_window_bits=15;
 * client_max_window_bits=15" ("" if none; truncated to cap). Returns the length written. */
WEFT_API size_t weft_conn_extensions(const struct weft_conn *c, char *out, size_t cap);
/** The peer address as text ("127.0.0.1:5000", "[::1]:5000", "unix"), formatted into a buffer
 * of the connection's server (or client) that the next call for any of its connections
 * overwrites: copy it to keep it. */
WEFT_API const char *weft_conn_remote(const struct weft_conn *c);
WEFT_API uint64_t weft_conn_id(const struct weft_conn *c); /**< unique per server, starts at 1 */
/** The code of the close frame weft sent on c (1005 for an empty one), 0 if none was sent. */
WEFT_API uint16_t weft_conn_close_sent(const struct weft_conn *c);
/** During on_close: the code of the peer's close frame when it caused this on_close (1005 for
 * an empty one); 0 when on_close came from anything else (weft failed the connection, a
 * timeout, a lost connection). 0 outside on_close. */
WEFT_API uint16_t weft_conn_close_received(const struct weft_conn *c);

/* --- pub/sub ------------------------------------------------------------------------ */

/** Subscribes c to topic (any bytes, up to 255). Returns WEFT_OK (also when already
 * subscribed), WEFT_ERR_INVAL or WEFT_ERR_NOMEM. Subscriptions end when c closes. */
WEFT_API int weft_subscribe(struct weft_conn *c, const char *topic, size_t topic_len);
/** Unsubscribes; returns true if c was subscribed. */
WEFT_API bool weft_unsubscribe(struct weft_conn *c, const char *topic, size_t topic_len);
/** Number of subscribers of a topic. */
WEFT_API size_t weft_topic_count(const struct weft_server *s, const char *topic, size_t topic_len);
/** Publishes a message to every subscriber of topic except `exclude` (may be NULL). The frame
 * is encoded once. A frame larger than 256 bytes (header included) is shared by reference by
 * all subscribers' output queues; a smaller one is copied into each subscriber's queue, which
 * is cheaper than a reference for so few bytes (and merges with neighbouring small frames
 * into one write). With permessage-deflate, subscribers whose compressor keeps no context
 * share one compressed frame per window size; a subscriber with context takeover compresses
 * its own copy. Each subscriber's backpressure limit applies as for weft_conn_send. Returns
 * the number of subscribers it was queued to (subscribers refusing it under WEFT_SLOW_DROP
 * are not counted). */
WEFT_API size_t weft_publish(struct weft_server *s, const char *topic, size_t topic_len,
                             const void *data, size_t len, enum weft_opcode opcode,
                             const struct weft_conn *exclude);

/* --- multi-core pub/sub: a group of servers on several loops (one per thread) ------------- */

/**
 * N worker threads, each running its own loop and its own server (typically all listening on
 * one port with reuse_port), form a group. weft_group_publish, callable from ANY thread,
 * reaches the topic's subscribers on every member: the frame is encoded once into a
 * reference-counted buffer; the member whose loop runs on the calling thread delivers it at
 * once (exactly as weft_publish), every other member receives a reference to the same buffer
 * through its loop's inbox (weft_loop_defer: a mutex-protected batch and an eventfd wake-up)
 * and delivers it on its own thread. Nothing is copied per subscriber or per thread. Messages
 * published from one thread reach each member in the order they were published.
 *
 * Setup and teardown: create the group and add every member before the worker threads start
 * publishing (weft_group_add is thread-safe, but a member only receives what is published
 * after it was added). On a member's own thread, weft_group_remove it before freeing its
 * server, then run its loop once more (frames already in its inbox are then released without
 * delivery). Free the group after every member was removed.
 */
struct weft_group;

/** Creates an empty group. NULL when out of memory. */
WEFT_API struct weft_group *weft_group_new(void);
/** Adds server s (which runs on the loop it was created on). Thread-safe. Returns WEFT_OK,
 * WEFT_ERR_INVAL (already a member) or WEFT_ERR_NOMEM. */
WEFT_API int weft_group_add(struct weft_group *g, struct weft_server *s);
/** Removes s; call on s's loop thread, before weft_server_free(s). Thread-safe with respect
 * to publishers on other threads. */
WEFT_API void weft_group_remove(struct weft_group *g, struct weft_server *s);
/** Number of members. Thread-safe. */
WEFT_API size_t weft_group_size(struct weft_group *g);
/** Publishes to topic on every member (see above). Thread-safe: from a member's loop thread
 * (local delivery is immediate) or from any other thread. exclude (may be NULL) is skipped on
 * the member it belongs to. Returns the number of local subscribers reached (as weft_publish)
 * plus the number of other members the frame was handed to; 0 for an opcode other than text
 * or binary or when out of memory. */
WEFT_API size_t weft_group_publish(struct weft_group *g, const char *topic, size_t topic_len,
                                   const void *data, size_t len, enum weft_opcode opcode,
                                   const struct weft_conn *exclude);
/** Frees an empty group (every member removed). */
WEFT_API void weft_group_free(struct weft_group *g);

/* ======================================================================================== */
/* net: watching a file descriptor                                                           */
/* ======================================================================================== */

/** For applications that need their own descriptors (stdin, a pipe) served by the loop. */
struct weft_watch;

/** Events a watched descriptor can be ready for (a mask). */
enum weft_watch_events {
    WEFT_WATCH_READ = 1,  /**< readable (or end of file / hang-up: a read returns 0 or fails) */
    WEFT_WATCH_WRITE = 2, /**< writable */
};

/** Called on the loop's thread while the descriptor is ready (level-triggered); `events` is a
 * mask of enum weft_watch_events. */
typedef void (*weft_watch_cb)(struct weft_watch *w, int fd, unsigned events, void *arg);

/** Watches fd (not taken over: the caller still owns and closes it) for `events`. Returns the
 * watch, or NULL with *err = WEFT_ERR_INVAL (events 0, or a descriptor epoll cannot watch,
 * such as a regular file or /dev/null: read those directly, they never block), WEFT_ERR_IO
 * or WEFT_ERR_NOMEM. Loop thread only. */
WEFT_API struct weft_watch *weft_loop_watch_fd(struct weft_loop *loop, int fd, unsigned events,
                                               weft_watch_cb cb, void *arg, int *err);
/** Changes the watched events (0 = pause). Returns WEFT_OK or WEFT_ERR_IO. */
WEFT_API int weft_watch_set(struct weft_watch *w, unsigned events);
/** Stops watching (safe inside the watch's own callback); the fd is left open. The memory is
 * released in a later loop iteration (run the loop once more before weft_loop_free). */
WEFT_API void weft_watch_free(struct weft_watch *w);

/* ======================================================================================== */
/* ws: clients                                                                               */
/* ======================================================================================== */

/**
 * A WebSocket client: weft_connect resolves the host (asynchronously, c-ares; numeric
 * addresses skip DNS), connects (trying the next address when one fails or has not answered
 * within 250 ms, happy-eyeballs style), performs the opening handshake and hands over an
 * ordinary struct weft_conn: weft_conn_send, weft_conn_ping, weft_conn_close and the callbacks
 * of struct weft_ws_handlers work exactly as on the server side (frames are masked with a
 * fresh key each). The struct weft_client handle survives reconnections; its connection does
 * not (a new struct weft_conn per connection). Everything runs on the loop's thread: a client
 * and its connections are used only from that thread.
 *
 * Callback order for one connection attempt: on_error (the attempt failed, with the reason) or
 * on_open ... on_close; then either on_reconnecting (another attempt is scheduled) or on_end
 * (the client has stopped for good). A client without `reconnect` makes exactly one attempt.
 */
struct weft_client;

/** A parsed ws:// or wss:// URL: slices of the string given to weft_url_parse. */
struct weft_url {
    bool tls;           /**< wss:// */
    const char *host;   /**< without the brackets of an IPv6 literal */
    size_t host_len;    /**< bytes at host */
    uint16_t port;      /**< explicit, or 80 / 443 */
    bool port_explicit; /**< the URL named the port */
    const char *target; /**< path and query ("/" + ... ); "" when the URL has none (= "/") */
    size_t target_len;  /**< bytes at target */
};

/**
 * Parses `ws://host[:port][/path][?query]` (also `wss://`, IPv6 literals as `[::1]`). A
 * fragment (#...) is dropped. Returns WEFT_OK, or WEFT_ERR_INVAL with *why (if not NULL) set to
 * a static explanation: unsupported scheme, empty host, bad port, bad IPv6 literal, spaces or
 * control characters.
 */
WEFT_API int weft_url_parse(const char *url, struct weft_url *out, const char **why);

/** The upper bound of the delay before the n-th consecutive reconnection, n counted from 1 as
 * on_reconnecting reports it: min(cap_ms, base_ms * 2^(n-1)). That is the usual
 * min(cap, base * 2^attempt) with a 0-based attempt (attempt = n - 1: the first retry's bound
 * is base_ms, the second's 2 * base_ms, ...). The delay itself is drawn uniformly in
 * [0, bound] ("full jitter"), then raised to the server's hints (1013, Retry-After) if any. */
WEFT_API uint32_t weft_backoff_bound(uint32_t base_ms, uint32_t cap_ms, unsigned n);

/** Options of weft_connect. Zero-initialise; zero means "the default" for every field. Strings
 * are copied by weft_connect. */
struct weft_client_options {
    /* --- the opening handshake */
    const char *headers;   /**< extra request headers: complete "Name: value\r\n" lines */
    const char *origin;    /**< Origin header, NULL for none */
    const char *protocols; /**< subprotocols offered, comma-separated (NULL: none); the
                              chosen one is weft_conn_protocol */

    /* --- limits and timeouts of each connection (defaults as for servers) */
    uint64_t max_message;              /**< 16 MiB (the connection is closed with 1009 beyond) */
    uint32_t connect_timeout_ms;       /**< DNS + TCP connect of one attempt, 10 s (on_error:
                                          WEFT_ERR_TIMEOUT) */
    uint32_t handshake_timeout_ms;     /**< connected to 101 received, 10 s */
    uint32_t ping_interval_ms;         /**< keep-alive ping after this much silence, 0 = never */
    uint32_t pong_timeout_ms;          /**< 10 s */
    uint32_t idle_timeout_ms;          /**< 0 = never */
    uint32_t close_timeout_ms;         /**< 5 s */
    size_t max_backpressure;           /**< 1 MiB; as in weft_server_config */
    enum weft_slow_policy slow_policy; /**< as in weft_server_config */

    /* --- callbacks (all optional, all on the loop's thread) */
    /** The connection callbacks (on_upgrade is not used). weft_conn_client(conn) gives the
     * client back; weft_conn_route_user(conn) is `user`. */
    struct weft_ws_handlers handlers;
    void *user; /**< weft_client_user */
    /** Another attempt starts in delay_ms; attempt counts consecutive reconnections from 1
     * (delay_ms is at most weft_backoff_bound(backoff_base_ms, backoff_cap_ms, attempt) unless
     * a server hint asks for more). */
    void (*on_reconnecting)(struct weft_client *cl, unsigned attempt, uint32_t delay_ms);
    /** An attempt failed, or an open connection was failed for a protocol violation by the
     * server. err: WEFT_ERR_ADDRESS (DNS), WEFT_ERR_IO (connect refused / unreachable),
     * WEFT_ERR_TIMEOUT (connect or handshake timeout), WEFT_ERR_PROTO (handshake rejected or
     * invalid, or a protocol error after the open), WEFT_ERR_CLOSED (no more attempts: the
     * maximum was reached). reason: one line of text, valid during the call. http_status:
     * the server's status when it answered the upgrade with something other than 101, else
     * 0. */
    void (*on_error)(struct weft_client *cl, int err, const char *reason, int http_status);
    /** The client stopped for good: after weft_client_close, after a failure or a close when
     * reconnection is off or not allowed, or when max_attempts is reached. Nothing follows;
     * weft_client_free may be called here (and only here among the callbacks). */
    void (*on_end)(struct weft_client *cl);

    /* --- reconnection */
    bool reconnect;           /**< reconnect after a failure or a lost connection */
    uint32_t backoff_base_ms; /**< 250 */
    uint32_t backoff_cap_ms;  /**< 30 s */
    unsigned max_attempts;    /**< consecutive reconnections before giving up; 0 = no limit */
    uint32_t reset_after_ms;  /**< a connection that stayed open this long resets the
                                 attempt count: the reconnection after it is attempt 1
                                 again (default 5 s) */
    bool no_retry_4xx;        /**< no retry after an HTTP 4xx answer (except 408 and 429) */
    uint32_t try_again_ms;    /**< least delay after a close with 1013 (try again later),
                                 default 5 s. 1012 (service restart) resets the attempt
                                 count; an HTTP Retry-After (seconds) sets the least
                                 delay of the next attempt (up to 1 hour). */

    /* --- weft_client_send while not connected */
    size_t queue_max; /**< bytes queued and sent on the next open; 0 = refuse */

    /** --- wss:// (TLS 1.2/1.3, SNI, ALPN http/1.1). The server's certificate is verified
     * against the system CA store and its name (or IP address) checked against the URL's
     * host, unless tls_insecure. A TLS failure is reported to on_error as WEFT_ERR_TLS with
     * a one-line reason ("TLS certificate verify failed: hostname mismatch", "... certificate
     * expired", "... unknown CA (...)", "TLS handshake failed: ..."). */
    const char *tls_cacert_file; /**< PEM bundle to trust instead of the system store */
    bool tls_insecure;           /**< no verification at all (self-signed test servers) */

    /** --- permessage-deflate (RFC 7692), offered when deflate.enabled. From the client's
     * point of view: no_context_takeover offers client_no_context_takeover (our compressor
     * forgets its window after each message), peer_no_context_takeover offers
     * server_no_context_takeover, max_window_bits is our compressor's window (offered as
     * client_max_window_bits), peer_max_window_bits is offered as server_max_window_bits;
     * mem_level, level and threshold apply to what we send. A server that accepts with
     * parameters we did not offer (or invalid ones) fails the handshake: on_error gets
     * WEFT_ERR_PROTO. A server that declines gives an ordinary uncompressed connection. */
    struct weft_pmd_config deflate;

    /** Log sink, as for servers (NULL = silent). */
    void (*log)(void *log_user, int level, struct weft_conn *c, const char *msg);
    void *log_user; /**< passed to log */
};

/**
 * Starts a client for `url` on loop (loop thread only). The first attempt starts at once.
 * Returns the client, or NULL with *err (may be NULL): WEFT_ERR_INVAL for a bad URL or bad
 * options (weft_url_parse explains a bad URL); WEFT_ERR_TLS when the wss:// context cannot be
 * set up (weft_tls_last_error says why); WEFT_ERR_NOMEM. Failures after the start (DNS, refused,
 * handshake) are reported through on_error, never here. The caller owns the client:
 * weft_client_free.
 */
WEFT_API struct weft_client *weft_connect(struct weft_loop *loop, const char *url,
                                          const struct weft_client_options *opts, int *err);

/** The open connection, or NULL while connecting, waiting to reconnect, closing or ended. */
WEFT_API struct weft_conn *weft_client_conn(const struct weft_client *cl);

/** Sends a message on the open connection (as weft_conn_send). While not connected the message
 * is queued (WEFT_SEND_QUEUED) if queue_max allows, WEFT_SEND_DROPPED when the queue is full,
 * WEFT_SEND_CLOSED when queueing is off or the client has ended or is closing. Queued
 * messages are sent on the next open, before on_open. */
WEFT_API enum weft_send_result weft_client_send(struct weft_client *cl, const void *data,
                                                size_t len, enum weft_opcode opcode);

/** Application close: starts the close handshake of the open connection with code (1000 if 0)
 * and reason, or abandons the attempt in progress; no reconnection follows. on_close (if a
 * connection was open) and then on_end follow. Queued messages are dropped. */
WEFT_API void weft_client_close(struct weft_client *cl, uint16_t code, const char *reason);

/** Frees the client at once: an open connection is dropped without a close handshake and
 * without callbacks. Not from inside the client's callbacks except on_end. Part of the memory
 * is released at the loop's next iteration (run the loop once more before weft_loop_free). */
WEFT_API void weft_client_free(struct weft_client *cl);

/** The options' user pointer. */
WEFT_API void *weft_client_user(const struct weft_client *cl);
/** Replaces that pointer (e.g. to detach an owner that goes away before on_end). */
WEFT_API void weft_client_set_user(struct weft_client *cl, void *user);

/** The client that owns a client-side connection, NULL for a server-side connection. */
WEFT_API struct weft_client *weft_conn_client(const struct weft_conn *c);

/* ======================================================================================== */
/* ws: connection pools                                                                      */
/* ======================================================================================== */

/**
 * At most max_conns open (or opening) connections to one URL. weft_pool_acquire hands out an
 * idle connection, or opens a new one when fewer than max_conns exist, or waits (FIFO, with a
 * timeout) until one is released. A connection that closes is removed from the pool and
 * replaced when someone waits. Loop thread only. The pool's connections use the callbacks of
 * opts->handlers (on_reconnecting, on_end and reconnect are ignored: the pool replaces).
 * wss:// URLs work as for weft_connect (tls_cacert_file, tls_insecure); the connections share
 * one TLS context, made by weft_pool_new.
 */
struct weft_pool;

/** Called once per weft_pool_acquire: with an open connection (err WEFT_OK) that the caller
 * holds until weft_pool_release, or with NULL and err WEFT_ERR_TIMEOUT (nothing became free in
 * time) or the error of the connection attempt made for this caller (as on_error reports, or
 * as weft_connect would return when the connection could not even be started, e.g.
 * WEFT_ERR_INVAL for a bad header in opts). */
typedef void (*weft_pool_cb)(struct weft_pool *p, struct weft_conn *c, int err, void *arg);

/** Creates a pool (no connection is opened yet); url is ws:// or wss://. Returns NULL with
 * *err (may be NULL): WEFT_ERR_INVAL (bad URL, max_conns 0), WEFT_ERR_TLS (wss:// and the TLS
 * context cannot be set up, e.g. an unreadable tls_cacert_file: weft_tls_last_error says
 * why), WEFT_ERR_NOMEM. */
WEFT_API struct weft_pool *weft_pool_new(struct weft_loop *loop, const char *url,
                                         const struct weft_client_options *opts, unsigned max_conns,
                                         int *err);

/** Asks for a connection; cb runs later (never inside this call), after at most timeout_ms
 * (0 = wait without limit). Returns WEFT_OK or WEFT_ERR_NOMEM. */
WEFT_API int weft_pool_acquire(struct weft_pool *p, uint32_t timeout_ms, weft_pool_cb cb,
                               void *arg);

/** Gives back a connection obtained from weft_pool_acquire. A connection that has closed
 * meanwhile may be released too (it is simply forgotten). */
WEFT_API void weft_pool_release(struct weft_pool *p, struct weft_conn *c);

/** Connections in the pool (open or opening), and of those the open ones not handed out. */
WEFT_API size_t weft_pool_size(const struct weft_pool *p);
/** Open connections of the pool not handed out (see weft_pool_size). */
WEFT_API size_t weft_pool_idle(const struct weft_pool *p);

/** Frees the pool and drops its connections without a close handshake; pending acquisitions
 * are dropped without their callback. Not from inside a pool callback. As for clients, run
 * the loop once more before weft_loop_free. */
WEFT_API void weft_pool_free(struct weft_pool *p);

#ifdef __cplusplus
}
#endif
#endif /**< WEFT_H */
