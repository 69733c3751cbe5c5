/*
 * hash.h — the one FNV-1a (32-bit) of the hub: the per-IP table, the room table, the Redis
 * topic table and the choice of a room's owner worker all hash with it, so a room's owner
 * and its bucket come from the same function.
 */
#ifndef WEFT_HUB_HASH_H
#define WEFT_HUB_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of the bytes p[0..len). Returns the 32-bit hash. */
static inline uint32_t hub_fnv1a(const void *p, size_t len)
{
    const uint8_t *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* FNV-1a of the NUL-terminated string s (its bytes before the NUL). Returns the hash. */
static inline uint32_t hub_fnv1a_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

#endif
