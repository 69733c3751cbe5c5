/*
 * hist.c — the log-linear latency histogram of hist.h.
 */
#include "hist.h"

#include <string.h>

/* Empties h: no counts, min at its sentinel. */
void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* Bucket of v: exact below 2 * HIST_SUB, then HIST_SUB buckets per power of two. */
unsigned hist_index(uint64_t v)
{
    if (v < 2u * HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= HIST_MAX_BITS) return HIST_BUCKETS - 1;
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1u) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* Lowest value that maps to bucket i. */
uint64_t hist_bucket_low(unsigned i)
{
    if (i < 2u * HIST_SUB) return i;
    unsigned shift = i / HIST_SUB - 1u;
    return ((uint64_t)(i % HIST_SUB) + HIST_SUB) << shift;
}

/* Highest value that maps to bucket i. */
uint64_t hist_bucket_high(unsigned i)
{
    if (i < 2u * HIST_SUB) return i;
    unsigned shift = i / HIST_SUB - 1u;
    return hist_bucket_low(i) + ((uint64_t)1 << shift) - 1u;
}

/* Counts v in its bucket and in the exact min / max / sum. */
void hist_record(struct hist *h, uint64_t v)
{
    h->buckets[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

/* Adds src's counts to dst. */
void hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

/* Walks the buckets to the one holding the rank-th value (rank = ceil(q% of count)) and
 * returns its highest equivalent value, kept within [min, max]. */
uint64_t hist_percentile(const struct hist *h, double q)
{
    if (h->count == 0) return 0;
    if (q <= 0) return h->min;
    if (q >= 100) return h->max;
    double want = q / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

/* The arithmetic mean of the recorded values. */
double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
