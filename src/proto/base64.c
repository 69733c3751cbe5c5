/*
 * base64.c — RFC 4648 base64 (standard alphabet, padded), strict decoding.
 *
 * Used for Sec-WebSocket-Key / Sec-WebSocket-Accept. Sans-I/O: caller-owned buffers only.
 */
#include "weft.h"

#include <limits.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns the 6-bit value of base64 character c, or -1 if c is not in the alphabet ('=' is not
 * in the alphabet). */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Encodes in[0..n) into out (at least 4*ceil(n/3)+1 bytes), NUL-terminates it and returns the
 * number of characters written (without the NUL). */
size_t weft_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[w >> 18 & 63];
        out[o++] = b64_alphabet[w >> 12 & 63];
        out[o++] = b64_alphabet[w >> 6 & 63];
        out[o++] = b64_alphabet[w & 63];
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[w >> 18 & 63];
        out[o++] = b64_alphabet[w >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[w >> 18 & 63];
        out[o++] = b64_alphabet[w >> 12 & 63];
        out[o++] = b64_alphabet[w >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/*
 * Decodes in[0..n) into out[0..cap). Strict: the length must be a multiple of 4, padding is
 * required, '=' may only appear as the last one or two characters, every other character must
 * be in the standard alphabet, and the unused bits before the padding must be zero (canonical
 * encoding only). Returns the decoded length, or -1 for invalid input or when the decoded
 * data would not fit in cap bytes (out may then hold a partial result).
 */
long weft_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0) return -1;
    if (n == 0) return 0;
    size_t pad = 0;
    if (in[n - 1] == '=') pad = in[n - 2] == '=' ? 2 : 1;
    size_t out_len = n / 4 * 3 - pad;
    if (out_len > cap || out_len > (size_t)LONG_MAX) return -1;

    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        size_t real = (i + 4 == n) ? 4 - pad : 4; /* characters of this quantum that carry data */
        uint32_t w = 0;
        for (size_t k = 0; k < 4; k++) {
            int v = 0;
            if (k < real) {
                v = b64_value((unsigned char)in[i + k]);
                if (v < 0) return -1;
            }
            w = w << 6 | (uint32_t)v;
        }
        if (real == 2 && (w & 0xFFFF) != 0) return -1; /* non-zero bits under "==" */
        if (real == 3 && (w & 0xFF) != 0) return -1;   /* non-zero bits under "=" */
        out[o++] = (uint8_t)(w >> 16);
        if (real >= 3) out[o++] = (uint8_t)(w >> 8);
        if (real == 4) out[o++] = (uint8_t)w;
    }
    return (long)o;
}
