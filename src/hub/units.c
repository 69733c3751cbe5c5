/*
 * units.c — the shared grammar of sizes, durations, counts and booleans (see units.h):
 * hand-written digit loops instead of strtoull/strtod, so that signs, spaces, exponents,
 * "inf", hex and locale never slip through, and every overflow is caught exactly.
 */
#include <stddef.h>
#include <strings.h>

#include "hub/units.h"

/* Reads the digits at *p into *v (advancing *p). Returns UNITS_OK, UNITS_JUNK when there is
 * no digit, or UNITS_RANGE when the number does not fit in 64 bits. */
static int digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    if (*s < '0' || *s > '9') return UNITS_JUNK;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10) return UNITS_RANGE;
        n = n * 10 + d;
    }
    *p = s;
    *v = n;
    return UNITS_OK;
}

/* The error of a string that does not start with a digit: empty, negative or junk. */
static int start_error(const char *s)
{
    return !*s ? UNITS_EMPTY : *s == '-' ? UNITS_NEGATIVE : UNITS_JUNK;
}

/* Parses a size; see units.h. Returns an enum units_err. */
int units_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *p = s;
    uint64_t v;
    int e = digits(&p, &v);
    if (e == UNITS_JUNK) return start_error(s);
    if (e) return e;
    unsigned shift = 0;
    switch (*p) {
    case 'k':
    case 'K':
        shift = 10;
        p++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        p++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        p++;
        break;
    default:
        break;
    }
    if (shift && (*p == 'i' || *p == 'I') && (p[1] == 'b' || p[1] == 'B'))
        p += 2;
    else if (*p == 'b' || *p == 'B')
        p++;
    if (*p) return UNITS_JUNK;
    if (v > (UINT64_MAX >> shift)) return UNITS_RANGE;
    v <<= shift;
    if (v < min || v > max) return UNITS_RANGE;
    *out = v;
    return UNITS_OK;
}

/* Parses a duration; see units.h. Returns an enum units_err. */
int units_duration_ms(const char *s, uint32_t min_ms, uint32_t max_ms, uint32_t *out)
{
    const char *p = s;
    uint64_t whole = 0, frac = 0; /* frac: the fraction in units of 1e-9 */
    bool nonzero_frac = false;
    int e = *p == '.' ? UNITS_OK : digits(&p, &whole);
    if (e == UNITS_JUNK) return start_error(s);
    if (e) return e;
    if (*p == '.') {
        p++;
        if ((*p < '0' || *p > '9') && p - 1 == s) return UNITS_JUNK; /* "." alone */
        uint64_t scale = 100000000;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (*p != '0') nonzero_frac = true;
            frac += (uint64_t)(*p - '0') * scale;
            scale /= 10;
        }
    }
    uint64_t mult;
    if (!*p || !strcasecmp(p, "s"))
        mult = 1000;
    else if (!strcasecmp(p, "ms"))
        mult = 1;
    else if (!strcasecmp(p, "m"))
        mult = 60000;
    else if (!strcasecmp(p, "h"))
        mult = 3600000;
    else
        return UNITS_JUNK;
    if (whole > UNITS_DURATION_MAX_MS / mult + 1) return UNITS_RANGE;
    /* frac < 1e9 and mult <= 3.6e6: the product fits in 64 bits. Round half up. */
    uint64_t ms = whole * mult + (frac * mult + 500000000) / 1000000000;
    if (ms == 0 && (whole || nonzero_frac)) ms = 1;
    if (ms > UNITS_DURATION_MAX_MS || ms < min_ms || ms > max_ms) return UNITS_RANGE;
    *out = (uint32_t)ms;
    return UNITS_OK;
}

/* Parses a plain count; see units.h. Returns an enum units_err. */
int units_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *p = s;
    uint64_t v;
    int e = digits(&p, &v);
    if (e == UNITS_JUNK) return start_error(s);
    if (e) return e;
    if (*p) return UNITS_JUNK;
    if (v < min || v > max) return UNITS_RANGE;
    *out = v;
    return UNITS_OK;
}

/* Parses a boolean; see units.h. Returns an enum units_err. */
int units_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (!*s) return UNITS_EMPTY;
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return UNITS_OK;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return UNITS_OK;
        }
    }
    return UNITS_JUNK;
}

/* A static explanation of an enum units_err. */
const char *units_strerror(int e)
{
    switch (e) {
    case UNITS_OK:
        return "ok";
    case UNITS_EMPTY:
        return "empty";
    case UNITS_NEGATIVE:
        return "negative";
    case UNITS_JUNK:
        return "not of the form";
    case UNITS_RANGE:
        return "out of range";
    default:
        return "invalid";
    }
}
