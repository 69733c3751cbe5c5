/*
 * test_hist.c — the log-linear latency histogram of `weft bench` (src/cli/bench/hist.c): bucket
 * boundaries, precision, percentiles against a sorted reference, merging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "cli/bench/hist.c"

/* Every value maps to a bucket whose [low, high] contains it, buckets are contiguous, and a
 * bucket is at most 1/HIST_SUB of its values wide. */
static void test_buckets(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 100000; v++) {
        unsigned i = hist_index(v);
        assert_true(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
    }
    for (unsigned i = 0; i + 1 < HIST_BUCKETS; i++)
        assert_int_equal(hist_bucket_high(i) + 1, hist_bucket_low(i + 1));
    for (unsigned i = 2 * HIST_SUB; i < HIST_BUCKETS; i++) {
        uint64_t w = hist_bucket_high(i) - hist_bucket_low(i) + 1;
        assert_true(w * HIST_SUB <= hist_bucket_low(i));
    }
    for (int b = 8; b < HIST_MAX_BITS; b++) {
        uint64_t v = ((uint64_t)1 << b) + 12345;
        unsigned i = hist_index(v);
        assert_true(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
    }
    assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
}

/* Compares two uint64_t for qsort. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles are within 1/HIST_SUB above the exact order statistic. */
static void test_percentiles(void **state)
{
    (void)state;
    enum { N = 20000 };
    static uint64_t v[N];
    static struct hist h;
    hist_reset(&h);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = 1000 + x % 5000000; /* 1 us .. 5 ms in ns */
        hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof v[0], cmp_u64);
    const double qs[] = {1, 50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t rank = (size_t)(qs[k] / 100.0 * N + 0.999999);
        uint64_t exact = v[rank - 1], got = hist_percentile(&h, qs[k]);
        assert_true(got >= exact);
        assert_true((double)(got - exact) <= (double)exact / HIST_SUB + 1);
    }
    assert_int_equal(hist_percentile(&h, 100), v[N - 1]);
    assert_int_equal(hist_percentile(&h, 0), v[0]);
    assert_int_equal(h.count, N);
    assert_true(hist_mean(&h) > 1000 && hist_mean(&h) < 5001000);
}

/* Empty histograms report zeros; merging adds counts and keeps the extremes. */
static void test_empty_and_merge(void **state)
{
    (void)state;
    static struct hist a, b;
    hist_reset(&a);
    hist_reset(&b);
    assert_int_equal(hist_percentile(&a, 50), 0);
    assert_true(hist_mean(&a) == 0.0);
    for (uint64_t i = 1; i <= 100; i++)
        hist_record(&a, i);
    hist_record(&b, 7);
    hist_record(&b, 1000000);
    hist_merge(&a, &b);
    assert_int_equal(a.count, 102);
    assert_int_equal(a.min, 1);
    assert_int_equal(a.max, 1000000);
    assert_int_equal(hist_percentile(&a, 50), 50);
    assert_int_equal(hist_percentile(&a, 100), 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_empty_and_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
