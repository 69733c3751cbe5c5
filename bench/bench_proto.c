/*
 * bench_proto.c — micro-benchmark of the proto/ hot loops: unmasking (weft_mask) and UTF-8
 * validation (weft_utf8_validate) of ASCII and of mixed Latin/CJK/emoji text, on 1 KiB,
 * 64 KiB and 1 MiB buffers, each next to memcpy of the same size measured in the same run.
 *
 * Method: every cell is timed with clock_gettime(CLOCK_MONOTONIC) over a batch of iterations
 * sized (by a calibration pass) to last at least 0.2 s; the best of 5 batches is reported, as
 * GB/s (10^9 bytes per second) and as a percentage of memcpy at the same size. Results feed a
 * volatile sink and pass through an empty asm barrier so the compiler cannot drop the work.
 * Not part of the test run. Usage: bench_proto [min_seconds_per_batch]
 */
#include "weft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEATS 5

/* What one benchmarked operation needs: two buffers of `size` bytes. */
struct bench_ctx {
    uint8_t *src;
    uint8_t *dst;
    size_t size;
};

typedef void (*bench_op)(struct bench_ctx *ctx);

static volatile uint64_t sink;

/* Tells the compiler that the memory at p may be read, so writes to it cannot be dropped. */
static inline void clobber(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Returns the monotonic clock in seconds. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* memcpy of src to dst: the baseline. */
static void op_memcpy(struct bench_ctx *ctx)
{
    memcpy(ctx->dst, ctx->src, ctx->size);
    clobber(ctx->dst);
}

/* Unmasks src in place (running it twice restores the data, so it stays the same). */
static void op_unmask(struct bench_ctx *ctx)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    sink += weft_mask(ctx->src, ctx->size, key, 1);
    clobber(ctx->src);
}

/* Validates src as one complete text. */
static void op_validate(struct bench_ctx *ctx)
{
    struct weft_utf8 u = {0};
    size_t bad = 0;
    sink += (uint64_t)(weft_utf8_validate(&u, ctx->src, ctx->size, &bad) + 2) + bad;
}

/* Runs op `iters` times and returns the elapsed seconds. */
static double time_batch(bench_op op, struct bench_ctx *ctx, uint64_t iters)
{
    double t0 = now_seconds();
    for (uint64_t i = 0; i < iters; i++)
        op(ctx);
    return now_seconds() - t0;
}

/* Measures op: calibrates a batch to last >= min_seconds, then returns the best throughput of
 * REPEATS batches in GB/s. */
static double measure(bench_op op, struct bench_ctx *ctx, double min_seconds)
{
    uint64_t iters = 1;
    for (;;) {
        double t = time_batch(op, ctx, iters);
        if (t >= min_seconds) break;
        double scale = t > 0 ? min_seconds * 1.2 / t : 16.0;
        if (scale > 16.0) scale = 16.0;
        if (scale < 2.0) scale = 2.0;
        iters = (uint64_t)((double)iters * scale) + 1;
    }
    double best = 1e30;
    for (int r = 0; r < REPEATS; r++) {
        double t = time_batch(op, ctx, iters);
        if (t < best) best = t;
    }
    return (double)ctx->size * (double)iters / best / 1e9;
}

/* Fills buf[0..size) with ASCII prose. */
static void fill_ascii(uint8_t *buf, size_t size)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog; 0123456789! ";
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)text[i % (sizeof text - 1)];
}

/* Fills buf[0..size) with mixed Latin (with accents), Greek, Cyrillic, CJK and emoji text,
 * cut at a code point boundary and padded with ASCII spaces. */
static void fill_mixed(uint8_t *buf, size_t size)
{
    static const char text[] = "Ça coûte 5 € — naïve façade, Straße, smørrebrød. "
                               "Καλημέρα κόσμε, Здравствуй мир. "
                               "日本語のテキストと中文文本，한국어 문장。"
                               "🎉😀🚀🌍 ok 👍🏽 ";
    const size_t tlen = sizeof text - 1;
    size_t i = 0;
    while (i < size) {
        size_t n = size - i < tlen ? size - i : tlen;
        memcpy(buf + i, text, n);
        i += n;
    }
    /* Back up to the last code point boundary and pad with spaces. */
    size_t end = size;
    while (end > 0 && (buf[end - 1] & 0xc0) == 0x80)
        end--;
    if (end > 0 && buf[end - 1] >= 0xc0) end--;
    memset(buf + end, ' ', size - end);
}

int main(int argc, char **argv)
{
    double min_seconds = argc > 1 ? atof(argv[1]) : 0.2;
    if (min_seconds <= 0) min_seconds = 0.2;
    static const size_t sizes[] = {1024, 64 * 1024, 1024 * 1024};
    static const char *const size_names[] = {"1 KiB", "64 KiB", "1 MiB"};
    enum { N_SIZES = 3, N_OPS = 4 };
    static const char *const op_names[N_OPS] = {"memcpy", "unmask", "UTF-8 ASCII", "UTF-8 mixed"};
    double gbps[N_OPS][N_SIZES];

    for (size_t s = 0; s < N_SIZES; s++) {
        size_t size = sizes[s];
        struct bench_ctx ctx = {aligned_alloc(64, size), aligned_alloc(64, size), size};
        if (!ctx.src || !ctx.dst) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        fill_ascii(ctx.src, size);
        memset(ctx.dst, 0, size);
        gbps[0][s] = measure(op_memcpy, &ctx, min_seconds);
        gbps[1][s] = measure(op_unmask, &ctx, min_seconds);
        fill_ascii(ctx.src, size); /* unmasking an odd number of times left it masked */
        if (!weft_utf8_valid(ctx.src, size)) {
            fprintf(stderr, "ASCII buffer does not validate\n");
            return 1;
        }
        gbps[2][s] = measure(op_validate, &ctx, min_seconds);
        fill_mixed(ctx.src, size);
        if (!weft_utf8_valid(ctx.src, size)) {
            fprintf(stderr, "mixed buffer does not validate\n");
            return 1;
        }
        gbps[3][s] = measure(op_validate, &ctx, min_seconds);
        free(ctx.src);
        free(ctx.dst);
    }

    printf("| operation |");
    for (size_t s = 0; s < N_SIZES; s++)
        printf(" %s GB/s | %s %% of memcpy |", size_names[s], size_names[s]);
    printf("\n|---|");
    for (size_t s = 0; s < N_SIZES; s++)
        printf("---:|---:|");
    printf("\n");
    for (int o = 0; o < N_OPS; o++) {
        printf("| %s |", op_names[o]);
        for (size_t s = 0; s < N_SIZES; s++)
            printf(" %.2f | %.0f %% |", gbps[o][s], 100.0 * gbps[o][s] / gbps[0][s]);
        printf("\n");
    }
    printf("\nRatios to memcpy of the same size:\n");
    for (int o = 1; o < N_OPS; o++) {
        printf("  %-12s", op_names[o]);
        for (size_t s = 0; s < N_SIZES; s++)
            printf("  %s: %.2fx", size_names[s], gbps[o][s] / gbps[0][s]);
        printf("\n");
    }
    printf("(best of %d batches of >= %.2f s each; GB/s = 10^9 bytes/s; sink %llu)\n", REPEATS,
           min_seconds, (unsigned long long)(sink & 1));
    return 0;
}
