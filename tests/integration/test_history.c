/*
 * test_history.c — the bounds of /hub history, end to end against the real `weft serve`
 * (--host 127.0.0.1 --port 0): history replies and join catch-ups are paged (at most 100
 * messages and 256 KiB of messages per page, "more"/"next" and the history_more notice let a
 * client page through everything, in order, none lost); a client that asks for history and
 * never reads gets no more than its --max-backpressure queued (the rest is the error
 * "backpressure"); a delivery over --history-max-message is delivered but not kept;
 * --history-memory evicts the oldest messages of the largest room first and keeps
 * weft_history_bytes within it; --max-total-rooms refuses the room beyond it (error
 * rooms_full on /hub, 503 on /ws/<room>). With --workers 1 (proto.c) and --workers 2 (the
 * room's owner pages for the origin) where the paths differ.
 *
 * Every path kills and reaps exactly the PID it started.
 */
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hubjson.h"
#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NC 4
#define PAGE_BYTES (256 * 1024)
#define BIG 60000 /* bytes of data in a large message: 4 fit in a page, 5 do not */

struct fx {
    struct sp sp;
    const char *workers;
    struct rc c[NC];
};

static char workers_1[] = "1", workers_2[] = "2";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->workers = *state ? *state : workers_1;
    for (int i = 0; i < NC; i++)
        f->c[i].fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NC; i++)
        rc_close(&f->c[i]);
    sp_kill(&f->sp);
    free(f);
    return 0;
}

/* Starts weft serve --workers f->workers with extra options (NULL-terminated). */
static void spawn(struct fx *f, const char *const *extra)
{
    const char *args[24] = {"--workers", f->workers};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    sp_start(&f->sp, WEFT_BIN, "history", args);
}

/* Stops the server (SIGTERM, exit 0, no sanitizer report). */
static void finish(struct fx *f)
{
    for (int i = 0; i < NC; i++)
        rc_close(&f->c[i]);
    sp_stop(&f->sp);
}

/* Joins room on c (asserts the joined reply). */
static void join(struct rc *c, const char *room)
{
    hj_sendf(c, "{\"type\":\"join\",\"room\":\"%s\"}", room);
    json_decref(hj_expect_type(c, "joined"));
}

/* Publishes data k as {"k":k,"pad":"xxx…"} (pad bytes of padding) to room; returns the seq. */
static long long publish_pad(struct rc *c, const char *room, int k, size_t pad)
{
    char *req = malloc(pad + 128);
    assert_non_null(req);
    int n =
        snprintf(req, pad + 128,
                 "{\"type\":\"publish\",\"room\":\"%s\",\"data\":{\"k\":%d,\"pad\":\"", room, k);
    memset(req + n, 'x', pad);
    strcpy(req + n + pad, "\"}}");
    hj_send(c, req);
    free(req);
    json_t *j = hj_expect_type(c, "published");
    long long seq = hj_int(j, "seq");
    json_decref(j);
    return seq;
}

/* The value of metric name, from a fresh GET /metrics. */
static double metric(struct fx *f, const char *name)
{
    static char body[1 << 17];
    assert_int_equal(sp_http_get(f->sp.port, "/metrics", body, sizeof body), 200);
    return sp_metric(body, name);
}

/* Checks the messages of a page are the deliveries *expect, *expect + 1, … (advancing it). */
static void check_seqs(const json_t *msgs, long long *expect)
{
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        assert_int_equal(json_integer_value(json_object_get(m, "seq")), *expect);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "data"), "k")),
                         *expect);
        (*expect)++;
    }
}

/* Pages through the history of room after since with `history` requests (limit 0: none
 * given): every reply at most one page (PAGE_BYTES of messages plus its head, at most
 * max_n messages), the seqs contiguous from since + 1 to last. Returns the number of pages. */
static int page_through(struct rc *c, const char *room, long long since, long long last, int limit,
                        size_t max_n)
{
    long long expect = since + 1;
    int pages = 0;
    for (;;) {
        if (limit)
            hj_sendf(c, "{\"type\":\"history\",\"room\":\"%s\",\"since\":%lld,\"limit\":%d}", room,
                     since, limit);
        else
            hj_sendf(c, "{\"type\":\"history\",\"room\":\"%s\",\"since\":%lld}", room, since);
        json_t *h = hj_expect_type(c, "history");
        size_t len = c->last.len;
        if (len > PAGE_BYTES + 512)
            fail_msg("a history reply of %zu bytes (page bound %d)", len, PAGE_BYTES);
        json_t *msgs = json_object_get(h, "messages");
        assert_true(json_array_size(msgs) >= 1);
        assert_true(json_array_size(msgs) <= max_n);
        assert_int_equal(hj_int(h, "seq"), last);
        check_seqs(msgs, &expect);
        pages++;
        bool more = json_is_true(json_object_get(h, "more"));
        if (more) {
            assert_int_equal(hj_int(h, "next"), expect - 1);
            since = expect - 1;
        } else {
            assert_null(json_object_get(h, "next"));
        }
        json_decref(h);
        if (!more) break;
        assert_true(pages < 1000);
    }
    assert_int_equal(expect, last + 1); /* nothing lost */
    return pages;
}

/* History replies and join catch-ups are paged by count and by bytes; a client pages through
 * them all, in order, nothing lost. */
static void test_history_pages(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--history-size", "300", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1], *c = &f->c[2];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    assert_int_equal(rc_open(b, f->sp.port, "/hub"), 0);
    assert_int_equal(rc_open(c, f->sp.port, "/hub"), 0);
    /* By count: 150 small messages, pages of 100 by default, of `limit` when given. */
    join(a, "small");
    for (int k = 1; k <= 150; k++)
        assert_int_equal(publish_pad(a, "small", k, 10), k);
    assert_int_equal(page_through(b, "small", 0, 150, 0, 100), 2);
    assert_int_equal(page_through(b, "small", 0, 150, 40, 40), 4);
    assert_int_equal(page_through(b, "small", 120, 150, 0, 100), 1);
    /* join with since: one page of catch-up, then history_more to continue from. */
    hj_sendf(c, "{\"type\":\"join\",\"room\":\"small\",\"since\":0,\"id\":9}");
    json_decref(hj_expect_type(c, "joined"));
    long long expect = 1;
    for (int i = 0; i < 100; i++) {
        json_t *m = hj_expect_type(c, "message");
        assert_int_equal(hj_int(m, "seq"), expect++);
        json_decref(m);
    }
    json_t *more = hj_expect_type(c, "history_more");
    assert_string_equal(hj_str(more, "room"), "small");
    assert_int_equal(hj_int(more, "next"), 100);
    assert_int_equal(hj_int(more, "seq"), 150);
    assert_int_equal(hj_int(more, "id"), 9);
    json_decref(more);
    assert_int_equal(page_through(c, "small", 100, 150, 0, 100), 1);

    /* By bytes: 100 messages of ~60 KB (6 MB kept): 4 per page. */
    join(a, "big");
    for (int k = 1; k <= 100; k++)
        assert_int_equal(publish_pad(a, "big", k, BIG), k);
    assert_int_equal(page_through(b, "big", 0, 100, 0, 4), 25);
    hj_sendf(b, "{\"type\":\"join\",\"room\":\"big\",\"since\":10}");
    json_decref(hj_expect_type(b, "joined"));
    for (long long s = 11; s <= 14; s++) {
        json_t *m = hj_expect_type(b, "message");
        assert_int_equal(hj_int(m, "seq"), s);
        json_decref(m);
    }
    more = hj_expect_type(b, "history_more");
    assert_int_equal(hj_int(more, "next"), 14);
    json_decref(more);
    assert_int_equal(page_through(b, "big", 14, 100, 0, 4), 22);
    /* A small history still comes whole, without a marker (as before). */
    hj_sendf(b, "{\"type\":\"history\",\"room\":\"small\",\"since\":148}");
    json_t *h = hj_expect_type(b, "history");
    assert_int_equal(json_array_size(json_object_get(h, "messages")), 2);
    assert_null(json_object_get(h, "more"));
    json_decref(h);
    finish(f);
}

/* The most the kernel may buffer for one socket (tcp_wmem's maximum), 4 MiB if unknown. */
static double kernel_sndbuf_max(void)
{
    FILE *fp = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    double lo, def, max = 4 * 1024 * 1024;
    if (fp) {
        if (fscanf(fp, "%lf %lf %lf", &lo, &def, &max) != 3) max = 4 * 1024 * 1024;
        fclose(fp);
    }
    return max;
}

/* A client that asks for a 12 MB history 20 times and never reads: what the server accepts
 * for it is its --max-backpressure queue, one page beyond, and what the kernel's send buffer
 * takes (at most tcp_wmem's maximum, 4 MiB here) — not one whole 12 MB reply, nor 20; what
 * does not fit is answered with the error "backpressure" (counted), not queued. */
static void test_history_slow_reader(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-backpressure", "256k", "--history-size", "200", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *slow = &f->c[1];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    join(a, "big");
    for (int k = 1; k <= 200; k++)
        assert_int_equal(publish_pad(a, "big", k, BIG), k);
    assert_int_equal(rc_connect(slow, f->sp.port, 4096, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(slow, f->sp.port, "/hub", NULL, RC_TIMEOUT_MS), 101);
    double sent0 = metric(f, "weft_sent_bytes_total");
    double req0 = metric(f, "weft_hub_requests_total");
    for (int i = 0; i < 20; i++)
        hj_send(slow, "{\"type\":\"history\",\"room\":\"big\",\"since\":0}");
    uint64_t deadline = rc_now_ms() + 10000;
    while (metric(f, "weft_hub_requests_total") < req0 + 20 && rc_now_ms() < deadline)
        usleep(50000);
    assert_true(metric(f, "weft_hub_requests_total") == req0 + 20);
    usleep(200000); /* replies forwarded between workers arrive */
    double accepted = metric(f, "weft_sent_bytes_total") - sent0;
    double bound = 2 * PAGE_BYTES + kernel_sndbuf_max();
    fprintf(stderr, "accepted for the slow reader: %.0f bytes (bound %.0f)\n", accepted, bound);
    assert_true(accepted >= BIG);
    assert_true(accepted <= bound);
    assert_true(metric(f, "weft_hub_errors_total{code=\"backpressure\"}") >= 1);
    finish(f);
}

/* A delivery over --history-max-message reaches the members but is not kept (counted). */
static void test_history_max_message(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--history-max-message", "1k", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    assert_int_equal(rc_open(b, f->sp.port, "/hub"), 0);
    join(a, "r");
    join(b, "r");
    assert_int_equal(publish_pad(a, "r", 1, 10), 1);
    assert_int_equal(publish_pad(a, "r", 2, 2000), 2);
    assert_int_equal(publish_pad(a, "r", 3, 10), 3);
    for (int k = 1; k <= 3; k++) {
        json_t *m = hj_expect_type(b, "message");
        assert_int_equal(hj_int(m, "seq"), k);
        json_decref(m);
    }
    hj_sendf(b, "{\"type\":\"history\",\"room\":\"r\",\"since\":0}");
    json_t *h = hj_expect_type(b, "history");
    json_t *msgs = json_object_get(h, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 0), "seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 1), "seq")), 3);
    json_decref(h);
    assert_int_equal(metric(f, "weft_history_skipped_total"), 1);
    assert_int_equal(metric(f, "weft_history_messages"), 2);
    finish(f);
}

/* The first seq still kept in room (1 + the highest since that is a history_gap). */
static long long first_kept(struct rc *c, const char *room, long long last)
{
    for (long long s = 0; s <= last; s++) {
        hj_sendf(c, "{\"type\":\"history\",\"room\":\"%s\",\"since\":%lld,\"limit\":1}", room, s);
        json_t *j = hj_recv_json(c);
        bool gap = !strcmp(hj_str(j, "type"), "error");
        if (gap) assert_string_equal(hj_str(j, "code"), "history_gap");
        json_decref(j);
        if (!gap) return s + 1;
    }
    return last + 1;
}

/* --history-memory 1m: 30 x 20 KB in one room, then 5 x 20 KB in each of 8 rooms. The
 * budget holds, evictions are counted, and they took the oldest messages of the largest
 * room: its newest and every small room are whole. With 2 workers each holds half. */
static void test_history_memory(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--history-memory", "1m", "--history-size", "1000", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *b = &f->c[1];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    assert_int_equal(rc_open(b, f->sp.port, "/hub"), 0);
    join(a, "large");
    bool one = !strcmp(f->workers, "1");
    for (int k = 1; k <= 30; k++)
        publish_pad(a, "large", k, 20000);
    if (one) /* 600 KB fit in 1 MiB (with 2 workers, not in the owner's half) */
        assert_int_equal(metric(f, "weft_history_evicted_total"), 0);
    for (int r = 0; r < 8; r++) {
        char room[16];
        snprintf(room, sizeof room, "small%d", r);
        join(a, room);
        for (int k = 1; k <= 5; k++)
            publish_pad(a, room, k, 20000);
    }
    double bytes = metric(f, "weft_history_bytes"),
           evicted = metric(f, "weft_history_evicted_total");
    fprintf(stderr, "history bytes %.0f, evicted %.0f\n", bytes, evicted);
    assert_true(bytes <= 1024 * 1024);
    assert_true(evicted >= 1);
    assert_int_equal(metric(f, "weft_history_messages"), 30 + 40 - evicted);
    if (one) {
        assert_true(bytes >= 1024 * 1024 - 2 * 20100); /* evicted no more than needed */
        /* All of it from the largest room, oldest first: it keeps a contiguous tail. */
        long long first = first_kept(b, "large", 30);
        assert_int_equal(first, 1 + (long long)evicted);
        for (int r = 0; r < 8; r++) {
            char room[16];
            snprintf(room, sizeof room, "small%d", r);
            assert_int_equal(first_kept(b, room, 5), 1);
        }
    }
    finish(f);
}

/* --max-total-rooms 3: /hub and raw rooms count; the 4th room is refused (rooms_full, 503)
 * until one goes away. */
static void test_max_total_rooms(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-total-rooms", "3", "--history-size", "0", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0], *r1 = &f->c[1], *r2 = &f->c[2], *r3 = &f->c[3];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    join(a, "one");
    join(a, "two");
    assert_int_equal(rc_open(r1, f->sp.port, "/ws/three"), 0);
    hj_sendf(a, "{\"type\":\"join\",\"room\":\"four\",\"id\":1}");
    json_t *e = hj_expect_type(a, "error");
    assert_string_equal(hj_str(e, "code"), "rooms_full");
    assert_int_equal(hj_int(e, "id"), 1);
    json_decref(e);
    struct rc_http resp;
    assert_int_equal(rc_connect(r2, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(r2, f->sp.port, "/ws/five", &resp, RC_TIMEOUT_MS), 503);
    rc_close(r2);
    assert_int_equal(rc_open(r2, f->sp.port, "/ws/three"), 0); /* an existing room */
    /* the connection is fine, and publishing to a joined room works */
    hj_sendf(a, "{\"type\":\"publish\",\"room\":\"one\",\"data\":1}");
    json_decref(hj_expect_type(a, "published"));
    /* leaving "two" (nothing kept) frees its place */
    hj_sendf(a, "{\"type\":\"leave\",\"room\":\"two\"}");
    json_decref(hj_expect_type(a, "left"));
    join(a, "four");
    assert_int_equal(rc_connect(r3, f->sp.port, 0, RC_TIMEOUT_MS), 0);
    assert_int_equal(rc_handshake(r3, f->sp.port, "/ws/five", &resp, RC_TIMEOUT_MS), 503);
    rc_close(r3);
    /* the raw room goes with its last member */
    rc_send_close(r1, 1000, NULL);
    rc_close(r1);
    rc_send_close(r2, 1000, NULL);
    rc_close(r2);
    uint64_t deadline = rc_now_ms() + 5000;
    int st;
    do {
        rc_close(r3);
        assert_int_equal(rc_connect(r3, f->sp.port, 0, RC_TIMEOUT_MS), 0);
        st = rc_handshake(r3, f->sp.port, "/ws/five", &resp, RC_TIMEOUT_MS);
    } while (st == 503 && rc_now_ms() < deadline && usleep(50000) == 0);
    assert_int_equal(st, 101);
    finish(f);
}

/* --workers 2 --max-total-rooms 1: a /hub room counts on the member's worker and on its
 * owner, so a join whose owner is the other worker is refused by the owner (rooms_full) and
 * undone on the member's worker: not joined, no room left behind. */
static void test_max_total_rooms_owner(void **state)
{
    struct fx *f = *state;
    static const char *const args[] = {"--max-total-rooms", "1", "--history-size", "0", NULL};
    spawn(f, args);
    struct rc *a = &f->c[0];
    assert_int_equal(rc_open(a, f->sp.port, "/hub"), 0);
    int refused = 0;
    for (int i = 0; i < 16 && !refused; i++) {
        hj_sendf(a, "{\"type\":\"join\",\"room\":\"r%d\"}", i);
        json_t *j = hj_recv_json(a);
        if (!strcmp(hj_str(j, "type"), "joined")) { /* owned by this worker: leave it */
            hj_sendf(a, "{\"type\":\"leave\",\"room\":\"r%d\"}", i);
            json_decref(hj_expect_type(a, "left"));
        } else {
            assert_string_equal(hj_str(j, "code"), "rooms_full");
            refused = 1;
            hj_sendf(a, "{\"type\":\"publish\",\"room\":\"r%d\",\"data\":1}", i);
            json_t *e = hj_expect_type(a, "error");
            assert_string_equal(hj_str(e, "code"), "not_joined");
            json_decref(e);
        }
        json_decref(j);
        uint64_t deadline = rc_now_ms() + 5000;
        while (metric(f, "weft_rooms") != 0 && rc_now_ms() < deadline)
            usleep(20000);
        assert_int_equal(metric(f, "weft_rooms"), 0);
    }
    assert_true(refused); /* 16 rooms all owned by one worker: 1 in 65536 */
    finish(f);
}

#define WORKERS_TEST(fn, n)                                                                        \
    {                                                                                              \
#fn " --workers " #n, fn, setup, teardown, (void *)workers_##n                             \
    }

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    hj_timeout_ms = RC_TIMEOUT_MS;
    sp_guard("history", "weft serve", 170);
    const struct CMUnitTest tests[] = {
        WORKERS_TEST(test_history_pages, 1),       WORKERS_TEST(test_history_pages, 2),
        WORKERS_TEST(test_history_slow_reader, 1), WORKERS_TEST(test_history_slow_reader, 2),
        WORKERS_TEST(test_history_max_message, 1), WORKERS_TEST(test_history_max_message, 2),
        WORKERS_TEST(test_history_memory, 1),      WORKERS_TEST(test_history_memory, 2),
        WORKERS_TEST(test_max_total_rooms, 1),     WORKERS_TEST(test_max_total_rooms_owner, 2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
