/*
 * units.h — the one grammar of sizes, durations, counts and booleans shared by `weft serve`
 * (its flags, WEFT_* variables and config file, through config.c), `weft connect` and
 * `weft bench`. Pure functions: no allocation, no I/O, no locale.
 *
 *   size      DIGITS [SUFFIX]: k, m, g (any case), each optionally followed by "b" or "ib":
 *             64k = 64K = 64KB = 64KiB = 65536. Every multiple is a power of 1024. "B" alone
 *             means bytes. No sign, no fraction, no spaces.
 *   duration  DIGITS [. DIGITS] [UNIT]: ms, s, m (minutes) or h; no unit means seconds
 *             (1.5 = 1500 ms). Rounded to the nearest millisecond, except that a non-zero
 *             duration never rounds to 0: anything above 0 and below 1.5 ms is 1 ms. At most
 *             UNITS_DURATION_MAX_MS.
 *   count     DIGITS, plain decimal.
 *   boolean   true/false, yes/no, on/off, 1/0 (any case).
 * Each parser also takes the option's own bounds; a value outside them is UNITS_RANGE.
 */
#ifndef WEFT_HUB_UNITS_H
#define WEFT_HUB_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* The largest duration of every option: 2^32 - 1 ms, about 49.7 days. */
#define UNITS_DURATION_MAX_MS UINT32_MAX

/* What a parse returns. */
enum units_err {
    UNITS_OK = 0,
    UNITS_EMPTY,    /* "" */
    UNITS_NEGATIVE, /* starts with '-' */
    UNITS_JUNK,     /* not of the grammar (unknown suffix, spaces, sign, exponent, ...) */
    UNITS_RANGE,    /* overflows, or outside the option's bounds */
};

/* Parses a size in bytes into *out if it lies in [min, max]. Returns an enum units_err. */
int units_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a duration into milliseconds (*out) if it lies in [min_ms, max_ms]
 * (max_ms <= UNITS_DURATION_MAX_MS). Returns an enum units_err. */
int units_duration_ms(const char *s, uint32_t min_ms, uint32_t max_ms, uint32_t *out);

/* Parses a plain decimal count into *out if it lies in [min, max]. Returns an enum units_err. */
int units_count(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a boolean into *out. Returns UNITS_OK, UNITS_EMPTY or UNITS_JUNK. */
int units_bool(const char *s, bool *out);

/* A static explanation of e ("not a number", ...) for error messages. */
const char *units_strerror(int e);

#endif
