/*
 * http.c — sans-I/O HTTP/1.1 head parsers (request and response) and token-list helpers for
 * the WebSocket opening handshake.
 *
 * The parsers are stateless: the caller accumulates bytes and calls again with the longer
 * buffer. Each call rescans the head line by line, left to right, and stops at the first
 * problem, so the answer for a prefix is always "need more" or the answer for the whole
 * input (errors are positional; "too big" is decided only after everything within max_head
 * was scanned). Every partial line is checked as far as it goes, so garbage is rejected
 * without waiting for the end of the line.
 *
 * Rescanning on every read would make a head dripped a byte at a time cost O(n^2), so a
 * caller that accumulates parses once on the first read and then only when
 * weft_http_head_end, which looks at the new bytes alone, finds the blank line (or the limit
 * is reached): O(n) in all.
 */
#include "weft.h"

#include <limits.h>
#include <string.h>

/* Internal results of the shared head parser (mapped to -400/-431 or -1 by the callers). */
enum head_result {
    HEAD_MORE = 0,     /* valid so far, incomplete */
    HEAD_BAD = -1,     /* malformed */
    HEAD_TOO_BIG = -2, /* longer than max_head or more than WEFT_HTTP_MAX_HEADERS headers */
};

/* Results of a line check: the line (or the part of it seen so far) is valid, or not. */
enum line_result {
    LINE_OK = 0,
    LINE_BAD = -1,
};

/* Parses the start line s[0..n) (without its line ending) into msg. `complete` is false when
 * the line is still incomplete: the function then only checks the bytes seen so far. */
typedef enum line_result (*start_line_fn)(const char *s, size_t n, bool complete, void *msg);

/* True for the tchar set of RFC 9110 §5.6.2 (characters of a token). */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* True for optional whitespace (SP / HTAB). */
static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* True for a byte allowed in a field value or reason phrase: HTAB, SP, VCHAR, obs-text. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* True for a byte allowed in a request-target: visible ASCII or obs-text (no SP, no CTL). */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c != 0x7F;
}

/* ASCII lower-casing, locale-independent. */
static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* True if s[0..n) equals the NUL-terminated z, ignoring ASCII case. */
static bool equal_nocase(const char *s, size_t n, const char *z)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (z[i] == '\0') return false;
        if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)z[i])) return false;
    }
    return z[i] == '\0';
}

/*
 * Matches "HTTP/1.<digit>" at the start of s[0..n). Returns 8 (its length) and sets *minor on
 * a match, 0 when s is a valid but incomplete prefix of it and `complete` is false, or -1.
 */
static int match_version(const char *s, size_t n, bool complete, int *minor)
{
    static const char prefix[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof prefix - 1; i++) {
        if (i == n) return complete ? -1 : 0;
        if (s[i] != prefix[i]) return -1;
    }
    if (n == sizeof prefix - 1) return complete ? -1 : 0;
    unsigned char d = (unsigned char)s[sizeof prefix - 1];
    if (d < '0' || d > '9') return -1;
    *minor = d - '0';
    return (int)sizeof prefix;
}

/* Checks a request line "METHOD SP request-target SP HTTP/1.x" and fills the request's
 * method, target and minor_version from it. See start_line_fn. */
static enum line_result parse_request_line(const char *s, size_t n, bool complete, void *msg)
{
    struct weft_http_request *req = msg;
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == n) return complete ? LINE_BAD : LINE_OK;
    if (s[i] != ' ' || i == 0) return LINE_BAD;
    req->method = s;
    req->method_len = i;

    size_t target = ++i;
    while (i < n && is_target_char((unsigned char)s[i]))
        i++;
    if (i == n) return complete ? LINE_BAD : LINE_OK;
    if (s[i] != ' ' || i == target) return LINE_BAD;
    req->target = s + target;
    req->target_len = i - target;
    i++;

    int v = match_version(s + i, n - i, complete, &req->minor_version);
    if (v < 0) return LINE_BAD;
    if (v == 0) return LINE_OK;
    return i + (size_t)v == n ? LINE_OK : LINE_BAD;
}

/* Checks a status line "HTTP/1.x SP 3DIGIT [SP reason-phrase]" and fills the response's
 * minor_version, status and reason. See start_line_fn. */
static enum line_result parse_status_line(const char *s, size_t n, bool complete, void *msg)
{
    struct weft_http_response *resp = msg;
    int v = match_version(s, n, complete, &resp->minor_version);
    if (v < 0) return LINE_BAD;
    if (v == 0) return LINE_OK;
    size_t i = (size_t)v;
    if (i == n) return complete ? LINE_BAD : LINE_OK;
    if (s[i++] != ' ') return LINE_BAD;

    int status = 0;
    for (int k = 0; k < 3; k++, i++) {
        if (i == n) return complete ? LINE_BAD : LINE_OK;
        unsigned char d = (unsigned char)s[i];
        if (d < '0' || d > '9') return LINE_BAD;
        status = status * 10 + (d - '0');
    }
    resp->status = status;
    resp->reason = s + i;
    resp->reason_len = 0;
    if (i == n) return LINE_OK; /* "HTTP/1.1 101" without a reason phrase is tolerated */
    if (s[i++] != ' ') return LINE_BAD;
    for (size_t k = i; k < n; k++)
        if (!is_value_char((unsigned char)s[k])) return LINE_BAD;
    resp->reason = s + i;
    resp->reason_len = n - i;
    return LINE_OK;
}

/*
 * Checks a header line "name: value" s[0..n) (n > 0) and fills *h. Rejects a name that is not
 * a token (which covers whitespace before the colon and obs-fold continuation lines starting
 * with SP/HTAB), an empty name, a line without a colon and control characters in the value.
 * The value is trimmed of OWS on both sides.
 */
static enum line_result parse_header_line(const char *s, size_t n, bool complete,
                                          struct weft_http_header *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == n) return complete ? LINE_BAD : LINE_OK;
    if (s[i] != ':' || i == 0) return LINE_BAD;
    h->name = s;
    h->name_len = i++;
    while (i < n && is_ows((unsigned char)s[i]))
        i++;
    size_t start = i;
    for (; i < n; i++)
        if (!is_value_char((unsigned char)s[i])) return LINE_BAD;
    size_t end = n;
    while (end > start && is_ows((unsigned char)s[end - 1]))
        end--;
    h->value = s + start;
    h->value_len = end - start;
    return LINE_OK;
}

/*
 * Shared head parser: start line (through `start`), header lines, blank line. Lines end with
 * CRLF or a bare LF; a CR anywhere else is a control character and rejected. Returns the head
 * length when the blank line was found within max_head bytes, or an enum head_result.
 */
static int parse_head(const char *buf, size_t len, size_t max_head, start_line_fn start, void *msg,
                      struct weft_http_header *headers, size_t *num_headers)
{
    *num_headers = 0;
    if (max_head == 0) max_head = WEFT_HTTP_MAX_HEAD;
    if (max_head > INT_MAX) max_head = INT_MAX;
    if (len == 0) return HEAD_MORE;
    size_t lim = len < max_head ? len : max_head;
    size_t pos = 0;
    bool first = true;

    for (;;) {
        const char *nl = pos < lim ? memchr(buf + pos, '\n', lim - pos) : NULL;
        bool complete = nl != NULL;
        size_t end = complete ? (size_t)(nl - buf) : lim;
        size_t next = complete ? end + 1 : lim;
        /* Drop the CR of CRLF (or, in a partial line, a final CR that may become one). */
        if (end > pos && buf[end - 1] == '\r') end--;
        const char *line = buf + pos;
        size_t n = end - pos;

        if (first) {
            if (start(line, n, complete, msg) != LINE_OK) return HEAD_BAD;
            first = false;
        } else if (n == 0) {
            if (complete) return (int)next; /* the blank line: head complete */
        } else {
            if (*num_headers == WEFT_HTTP_MAX_HEADERS) return HEAD_TOO_BIG;
            if (parse_header_line(line, n, complete, &headers[*num_headers]) != LINE_OK)
                return HEAD_BAD;
            if (complete) (*num_headers)++;
        }
        if (!complete) break;
        pos = next;
    }
    return len > max_head ? HEAD_TOO_BIG : HEAD_MORE;
}

/* Finds the blank line ending a head in buf[0..len), of which buf[0..from) was searched
 * before; see weft.h. A blank line is an LF followed by LF or CR LF (CRLF CRLF, or the bare LF
 * endings the parser accepts), so only the two bytes before `from` can start one that the
 * new bytes complete. Returns the head length through the blank line, or 0. */
size_t weft_http_head_end(const char *buf, size_t len, size_t from)
{
    size_t i = from > 2 ? from - 2 : 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) return 0;
        size_t p = (size_t)(nl - buf) + 1; /* just after this LF */
        if (p < len && buf[p] == '\n') return p + 1;
        if (p + 1 < len && buf[p] == '\r' && buf[p + 1] == '\n') return p + 2;
        i = p;
    }
    return 0;
}

/* Parses a request head; see weft.h. Returns the head length, 0, -400 or -431. */
int weft_http_parse_request(const char *buf, size_t len, size_t max_head,
                            struct weft_http_request *req)
{
    int r =
        parse_head(buf, len, max_head, parse_request_line, req, req->headers, &req->num_headers);
    if (r == HEAD_BAD) return -400;
    if (r == HEAD_TOO_BIG) return -431;
    return r;
}

/* Parses a response head; see weft.h. Returns the head length, 0, or -1. */
int weft_http_parse_response(const char *buf, size_t len, size_t max_head,
                             struct weft_http_response *resp)
{
    int r =
        parse_head(buf, len, max_head, parse_status_line, resp, resp->headers, &resp->num_headers);
    return r < 0 ? -1 : r;
}

/* Returns the first header in headers[0..n) whose name equals `name` ignoring case, or NULL. */
const struct weft_http_header *weft_http_find_header(const struct weft_http_header *headers,
                                                     size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (equal_nocase(headers[i].name, headers[i].name_len, name)) return &headers[i];
    return NULL;
}

/*
 * Returns the next non-empty element of the comma-separated list[0..len) from *pos, trimmed of
 * OWS, and advances *pos past it. Commas inside a quoted-string (with backslash escapes) do not
 * split elements, so extension parameters like a="x,y" stay in one element. Returns false at
 * the end of the list.
 */
bool weft_http_list_next(const char *list, size_t len, size_t *pos, const char **item,
                         size_t *item_len)
{
    size_t i = *pos;
    while (i < len && (is_ows((unsigned char)list[i]) || list[i] == ','))
        i++;
    if (i >= len) {
        *pos = i > len ? i : len;
        return false;
    }
    size_t start = i;
    bool quoted = false;
    for (; i < len; i++) {
        char c = list[i];
        if (quoted) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            break;
        }
    }
    size_t end = i;
    while (end > start && is_ows((unsigned char)list[end - 1]))
        end--;
    *item = list + start;
    *item_len = end - start;
    *pos = i < len ? i + 1 : len;
    return true;
}

/* True if the comma-separated list value[0..len) has an element equal to `token`, ignoring
 * ASCII case. */
bool weft_http_list_has(const char *value, size_t len, const char *token)
{
    size_t pos = 0;
    const char *item;
    size_t item_len;
    while (weft_http_list_next(value, len, &pos, &item, &item_len))
        if (equal_nocase(item, item_len, token)) return true;
    return false;
}

/* Standard reason phrases of the status codes a WebSocket server or client meets. */
static const struct {
    int status;
    const char *reason;
} http_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

/* Returns the standard reason phrase of an HTTP status code, or "Unknown". */
const char *weft_http_reason(int status)
{
    for (size_t i = 0; i < sizeof http_reasons / sizeof http_reasons[0]; i++)
        if (http_reasons[i].status == status) return http_reasons[i].reason;
    return "Unknown";
}
