/*
 * clock.h — the hub's clocks: CLOCK_MONOTONIC (the same on every worker) for durations and
 * buckets, CLOCK_REALTIME for token times and history timestamps.
 */
#ifndef WEFT_HUB_CLOCK_H
#define WEFT_HUB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
static inline uint64_t hub_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static inline uint64_t hub_mono_ms(void)
{
    return hub_mono_ns() / 1000000u;
}

/* Seconds since the epoch. */
static inline int64_t hub_wall_s(void)
{
    return (int64_t)time(NULL);
}

/* Milliseconds since the epoch. */
static inline int64_t hub_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
