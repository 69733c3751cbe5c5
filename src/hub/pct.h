/*
 * pct.h — the one percent-decoder of the hub (strict): the web files' paths, the ?name= of
 * /hub and the ?token= of every upgrade decode with it.
 */
#ifndef WEFT_HUB_PCT_H
#define WEFT_HUB_PCT_H

#include <stdbool.h>
#include <stddef.h>

/* Percent-decodes s[0..len) into out[0..cap) (NUL-terminated; '+' becomes a space when
 * plus_space). Returns the decoded length, or -1 for a '%' not followed by two hex digits
 * (no sign, no space, no cut escape), a decoded NUL, or no room. Pure: no I/O. */
long hub_pct_decode(const char *s, size_t len, char *out, size_t cap, bool plus_space);

#endif
