/*
 * test_group.c — multi-core pub/sub through the public API (struct weft_group): 4 worker
 * threads, each with its own loop and server (each on its own ephemeral port, so the test
 * knows where every client is), all in one group. Subscribers on every worker; messages are
 * published with weft_group_publish from every worker's loop thread (a client's message is
 * re-published to the topic) and from a plain thread that runs no loop. Every subscriber
 * receives every message exactly once, in each publisher's order, with payloads intact (small
 * frames copied into queues and large ones shared by reference both cross threads). Built a
 * second time under ThreadSanitizer by `make test` (build/tsan, WEFT_TSAN=ON).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"

#define NWORKERS 4
#define SUBS_PER_WORKER 4
#define NMSGS 150      /* per publisher */
#define BIG_EVERY 10   /* every 10th message is large (shared by reference) */
#define BIG_LEN 1500
#define NPUB (NWORKERS + 1) /* one client per worker + the external thread */

struct worker {
    int idx;
    struct weft_loop *loop;
    struct weft_server *server;
    pthread_t thread;
    uint16_t port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* 0 starting, 1 ready, -1 failed */
};

static struct weft_group *group;
static struct worker workers[NWORKERS];

/* Subscribes every connection to "t" (before its 101 reaches the client). */
static void on_open(struct weft_conn *c)
{
    if (weft_subscribe(c, "t", 1) != WEFT_OK)
        abort();
}

/* A client's message is published to "t" on every worker (the sender included). */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)c;
    weft_group_publish(group, "t", 1, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, NULL);
}

/* Leaves the group and frees the server on the worker's own thread, then stops the loop. */
static void worker_teardown(void *arg)
{
    struct worker *w = arg;
    weft_group_remove(group, w->server);
    weft_server_free(w->server);
    w->server = NULL;
    weft_loop_stop(w->loop);
}

/* A worker thread: loop + server, joins the group, runs until torn down. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->loop = weft_loop_new();
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    int err = 0;
    w->server = w->loop ? weft_server_new(w->loop, &cfg, &err) : NULL;
    static const struct weft_ws_handlers h = {.on_open = on_open, .on_message = on_message};
    bool ok = w->server && weft_server_ws(w->server, "/t", &h, NULL) == WEFT_OK &&
              weft_group_add(group, w->server) == WEFT_OK;
    pthread_mutex_lock(&w->mu);
    w->port = ok ? weft_server_port(w->server) : 0;
    w->state = ok ? 1 : -1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        return NULL;
    weft_loop_run(w->loop);
    /* Frames queued to this loop before it left the group are released here. */
    for (int i = 0; i < 5; i++)
        weft_loop_poll(w->loop, 0);
    weft_loop_free(w->loop);
    return NULL;
}

/* Builds message i of publisher p: "p:i:" then filler (BIG_LEN bytes for every 10th). */
static size_t make_msg(char *out, size_t cap, int p, int i)
{
    int n = snprintf(out, cap, "%d:%d:", p, i);
    size_t len = (size_t)n;
    if (i % BIG_EVERY == 0) {
        while (len < BIG_LEN && len < cap)
            out[len] = (char)('a' + (len % 26)), len++;
    }
    return len;
}

/* The publisher that runs no loop: weft_group_publish from a plain thread. */
static void *external_main(void *arg)
{
    (void)arg;
    char buf[BIG_LEN + 32];
    for (int i = 0; i < NMSGS; i++) {
        size_t len = make_msg(buf, sizeof buf, NWORKERS, i);
        weft_group_publish(group, "t", 1, buf, len, WEFT_OP_TEXT, NULL);
        if (i % 16 == 0)
            usleep(1000);
    }
    return NULL;
}

static void test_group_publish_across_threads(void **state)
{
    (void)state;
    group = weft_group_new();
    assert_non_null(group);
    for (int i = 0; i < NWORKERS; i++) {
        struct worker *w = &workers[i];
        memset(w, 0, sizeof *w);
        w->idx = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        assert_int_equal(pthread_create(&w->thread, NULL, worker_main, w), 0);
        pthread_mutex_lock(&w->mu);
        while (w->state == 0)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        assert_int_equal(w->state, 1);
    }
    assert_int_equal(weft_group_size(group), NWORKERS);

    /* Subscribers on every worker; the first of each worker also publishes. */
    static struct rc subs[NWORKERS * SUBS_PER_WORKER];
    for (int i = 0; i < NWORKERS * SUBS_PER_WORKER; i++)
        assert_int_equal(rc_open(&subs[i], workers[i / SUBS_PER_WORKER].port, "/t"), 0);

    pthread_t ext;
    assert_int_equal(pthread_create(&ext, NULL, external_main, NULL), 0);
    char buf[BIG_LEN + 32];
    for (int i = 0; i < NMSGS; i++)
        for (int p = 0; p < NWORKERS; p++) {
            size_t len = make_msg(buf, sizeof buf, p, i);
            assert_int_equal(rc_send(&subs[p * SUBS_PER_WORKER], WEFT_OP_TEXT, buf, len), 0);
        }

    /* Every subscriber: every message of every publisher exactly once, in order. */
    for (int s = 0; s < NWORKERS * SUBS_PER_WORKER; s++) {
        int next[NPUB] = {0};
        int total = 0;
        while (total < NPUB * NMSGS) {
            enum rc_event ev = rc_recv(&subs[s], 10000);
            if (ev != RC_MESSAGE)
                fail_msg("subscriber %d: event %d after %d messages", s, ev, total);
            int p = -1, i = -1;
            char tmp[32];
            size_t n = subs[s].last.len < sizeof tmp - 1 ? subs[s].last.len : sizeof tmp - 1;
            memcpy(tmp, subs[s].last.data, n);
            tmp[n] = '\0';
            if (sscanf(tmp, "%d:%d:", &p, &i) != 2 || p < 0 || p >= NPUB)
                fail_msg("subscriber %d: bad message '%s'", s, tmp);
            if (i != next[p])
                fail_msg("subscriber %d: publisher %d: got %d, expected %d", s, p, i, next[p]);
            size_t want = make_msg(buf, sizeof buf, p, i);
            assert_int_equal(subs[s].last.len, want);
            assert_memory_equal(subs[s].last.data, buf, want);
            next[p]++;
            total++;
        }
        /* Nothing more: no duplicates. */
        assert_int_equal(rc_recv(&subs[s], 50), RC_TIMEOUT);
    }
    pthread_join(ext, NULL);

    for (int i = 0; i < NWORKERS * SUBS_PER_WORKER; i++)
        rc_close(&subs[i]);
    for (int i = 0; i < NWORKERS; i++) {
        assert_int_equal(weft_loop_defer(workers[i].loop, worker_teardown, &workers[i]), WEFT_OK);
        pthread_join(workers[i].thread, NULL);
        pthread_mutex_destroy(&workers[i].mu);
        pthread_cond_destroy(&workers[i].cv);
    }
    assert_int_equal(weft_group_size(group), 0);
    weft_group_free(group);
    group = NULL;
}

/* Publishing with no member and with a bad opcode reaches nobody. */
static void test_group_edge_cases(void **state)
{
    (void)state;
    struct weft_group *g = weft_group_new();
    assert_non_null(g);
    assert_int_equal(weft_group_publish(g, "t", 1, "x", 1, WEFT_OP_TEXT, NULL), 0);
    assert_int_equal(weft_group_publish(g, "t", 1, "x", 1, WEFT_OP_PING, NULL), 0);
    weft_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_edge_cases),
        cmocka_unit_test(test_group_publish_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
