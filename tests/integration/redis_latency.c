/*
 * redis_latency.c — cross-node delivery latency through Redis (`weft serve --redis`): a raw
 * client on node A publishes to /ws/lat at a fixed rate, a raw client on node B receives;
 * each message carries its send time (CLOCK_MONOTONIC, same host), and the receiver's
 * latencies give p50 / p99 / max. Not part of the build; compile against a build tree:
 *   cc -O2 -Iinclude -Itests/integration tests/integration/redis_latency.c \
 *      BUILD/tests/integration/libweft_itest.a BUILD/libweft.a -lssl -lcrypto -lz -lcares \
 *      -lpthread -o /tmp/redis_latency
 * usage: redis_latency PORT_A PORT_B RATE SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rawclient.h"

/* Nanoseconds of CLOCK_MONOTONIC. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* qsort order of uint64_t. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Drains what node B's client has received, recording latencies. */
static void drain(struct rc *b, uint64_t *lat, size_t *n, size_t cap)
{
    while (rc_read_once(b) > 0) {
    }
    while (rc_recv_buffered(b) == RC_MESSAGE && *n < cap) {
        char tmp[32];
        size_t l = b->last.len < 31 ? b->last.len : 31;
        memcpy(tmp, b->last.data, l);
        tmp[l] = '\0';
        lat[(*n)++] = now_ns() - strtoull(tmp, NULL, 10);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT_A PORT_B RATE SECONDS\n", argv[0]);
        return 2;
    }
    uint16_t pa = (uint16_t)atoi(argv[1]), pb = (uint16_t)atoi(argv[2]);
    double rate = atof(argv[3]), secs = atof(argv[4]);
    struct rc a = {.fd = -1}, b = {.fd = -1};
    if (rc_open(&b, pb, "/ws/lat") || rc_open(&a, pa, "/ws/lat")) {
        fprintf(stderr, "cannot connect\n");
        return 1;
    }
    struct timespec pause = {0, 300000000};
    nanosleep(&pause, NULL); /* the subscriptions reach Redis */
    size_t total = (size_t)(rate * secs), n = 0;
    uint64_t *lat = calloc(total, sizeof *lat);
    uint64_t t0 = now_ns(), step = (uint64_t)(1e9 / rate);
    for (size_t i = 0; i < total; i++) {
        uint64_t due = t0 + i * step;
        while (now_ns() < due)
            drain(&b, lat, &n, total);
        char msg[32];
        int l = snprintf(msg, sizeof msg, "%llu", (unsigned long long)now_ns());
        if (rc_send(&a, WEFT_OP_TEXT, msg, (size_t)l))
            return 1;
    }
    uint64_t end = now_ns() + 2000000000u;
    while (n < total && now_ns() < end)
        drain(&b, lat, &n, total);
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("sent %zu at %.0f msg/s, received %zu: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           total, rate, n, n ? (double)lat[n / 2] / 1e6 : 0, n ? (double)lat[n * 99 / 100] / 1e6 : 0,
           n ? (double)lat[n - 1] / 1e6 : 0);
    free(lat);
    rc_close(&a);
    rc_close(&b);
    return n == total ? 0 : 1;
}
