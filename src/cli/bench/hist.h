/*
 * hist.h — a log-linear latency histogram in the manner of HdrHistogram, for `weft bench`.
 *
 * Values (nanoseconds, or any unsigned unit) below 2 * HIST_SUB are counted exactly; above,
 * each power-of-two range [2^k, 2^(k+1)) is split into HIST_SUB equal buckets, so a reported
 * value is within 1 / HIST_SUB (0.8 %) of the true one. Values of 2^HIST_MAX_BITS and over are
 * counted in the last bucket (the exact maximum is kept beside). Fixed size, no allocation:
 * recording is a count-leading-zeros, a shift and an increment.
 */
#ifndef WEFT_CLI_BENCH_HIST_H
#define WEFT_CLI_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 44 /* 2^44 ns is about 4.9 hours */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    double sum;        /* for the mean */
    uint64_t buckets[HIST_BUCKETS];
};

/* Empties h. */
void hist_reset(struct hist *h);

/* Counts one value. */
void hist_record(struct hist *h, uint64_t v);

/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at percentile q (0..100): the highest value equivalent to the bucket holding the
 * ceil(q% * count)-th smallest value, capped at the exact maximum (q = 100 gives the maximum,
 * q = 0 the minimum). 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double q);

/* The mean, 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket index of v, and the lowest / highest value counted in bucket i (exposed for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);

#endif
