/*
 * fuzz_decode.c — libFuzzer target for the percent-decoding of the hub: the display name of
 * /hub?name= (web_name_from_query, split out of web_query_name), the static-file path of
 * GET / (web_path_decode) and the ?token= of an upgrade (hub_query_token, split out of the
 * upgrade handler).
 *
 * Byte 0 sets the output room of the path and token decoders (1..256 bytes); the rest is
 * given to all three, which are checked against a reference decoder written here from the
 * rules: "%" must be followed by two hex digits, a decoded NUL is refused, '+' is a space in
 * query values (not in paths); the name is the first "name=" field, 1..32 bytes of UTF-8
 * without control characters; a path is absolute, with no backslash and no segment starting
 * with '.'; the token is the first "token=" field that decodes to something non-empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"
#include "hub/upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Value of a hex digit, -1 if not one. */
static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Reference decoding of s[0..n) into a malloc'd string (length in *len), or NULL. */
static char *ref_decode(const char *s, size_t n, bool plus, size_t *len)
{
    char *out = malloc(n + 1);
    if (!out) abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i < 3 || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) goto bad;
            c = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0') goto bad;
        out[k++] = c;
    }
    out[k] = '\0';
    *len = k;
    return out;
bad:
    free(out);
    return NULL;
}

/* The value of the first field "key=..." of query q[0..n) for which accept() holds (decoded
 * by the reference), as a malloc'd string, or NULL. first_only: stop at the first field with
 * the key whatever its value. */
static char *ref_field(const char *q, size_t n, const char *key, bool first_only, size_t *len)
{
    size_t kl = strlen(key), pos = 0;
    while (pos < n) {
        const char *amp = memchr(q + pos, '&', n - pos);
        size_t end = amp ? (size_t)(amp - q) : n;
        if (end - pos > kl && !memcmp(q + pos, key, kl)) {
            char *v = ref_decode(q + pos + kl, end - pos - kl, true, len);
            if (v && *len > 0) return v;
            free(v);
            if (first_only) return NULL;
        }
        pos = end + 1;
    }
    return NULL;
}

/* The reference display name of a query. */
static char *ref_name(const char *q, size_t n)
{
    size_t len;
    char *v = ref_field(q, n, "name=", true, &len);
    if (!v) return NULL;
    bool ok = len <= 32 && weft_utf8_valid((const uint8_t *)v, len);
    for (size_t i = 0; ok && i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ok = false;
    if (!ok) {
        free(v);
        return NULL;
    }
    return v;
}

/* True if the decoded path p is one GET / may serve. */
static bool ref_path_ok(const char *p)
{
    if (p[0] != '/' || strchr(p, '\\')) return false;
    for (const char *s = p; (s = strchr(s, '/')) != NULL; s++)
        if (s[1] == '.') return false;
    return true;
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cap = (size_t)data[0] + 1;
    size_t n = size - 1;
    char *q = malloc(n ? n : 1); /* exactly sized: overreads are caught */
    if (!q) return 0;
    memcpy(q, data + 1, n);

    /* ?name= */
    char *got = web_name_from_query(q, n), *want = ref_name(q, n);
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) abort();
    free(got);
    free(want);
    if (web_name_from_query(NULL, 0) != NULL) abort();

    /* GET / path, decoded into cap bytes */
    char *out = malloc(cap);
    if (!out) abort();
    size_t len;
    want = ref_decode(q, n, false, &len);
    bool ok = want && len + 1 <= cap && ref_path_ok(want);
    if (web_path_decode(q, n, out, cap) != ok) abort();
    if (ok && strcmp(out, want) != 0) abort();
    free(want);

    /* ?token=, decoded into cap bytes (a value that does not fit is skipped) */
    size_t kl = 6, pos = 0;
    want = NULL;
    while (pos < n && !want) {
        const char *amp = memchr(q + pos, '&', n - pos);
        size_t end = amp ? (size_t)(amp - q) : n;
        if (end - pos > kl && !memcmp(q + pos, "token=", kl)) {
            want = ref_decode(q + pos + kl, end - pos - kl, true, &len);
            if (want && (len == 0 || len + 1 > cap)) {
                free(want);
                want = NULL;
            }
        }
        pos = end + 1;
    }
    bool found = hub_query_token(q, n, out, cap);
    if (found != (want != NULL) || (found && strcmp(out, want) != 0)) abort();
    if (hub_query_token(NULL, 0, out, cap)) abort();
    free(want);
    free(out);
    free(q);
    return 0;
}
