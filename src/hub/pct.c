/*
 * pct.c — the strict percent-decoder shared by web.c and the upgrade path (pct.h).
 */
#include "hub/pct.h"

/* Value of a hex digit, -1 if ch is not one. */
static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX (and '+' when plus_space); see pct.h. */
long hub_pct_decode(const char *s, size_t len, char *out, size_t cap, bool plus_space)
{
    if (cap == 0) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 1 >= cap) return -1;
        char ch = s[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0) return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (ch == '\0') return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (long)n;
}
