/*
 * test_workers.c — `weft serve --workers N` end to end (the real program, spawned): raw rooms
 * and /hub rooms with members spread over 2 and 4 worker threads (SO_REUSEPORT). Asserts:
 * several workers got connections (per-worker /metrics labels); in a 200-client room every
 * message reaches every other member exactly once, in each sender's order; /hub messages get
 * one global seq order from the room's owner worker, presence and history see members and
 * messages of every worker; /metrics sums the workers; SIGTERM closes every connection on
 * every worker with 1001 and the process exits 0 with no sanitizer report.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubjson.h"
#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NC 200
#define NSEND 10
#define NMSG 20

struct fx {
    struct sp sp; /* the weft serve of the test */
    struct rc c[NC];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (int i = 0; i < NC; i++) f->c[i].fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (int i = 0; i < NC; i++) rc_close(&f->c[i]);
    sp_kill(&f->sp);
    free(f);
    return 0;
}

/* Starts weft serve with extra options (NULL-terminated) and waits for its port. */
static void spawn(struct fx *f, const char *const *extra)
{
    sp_start(&f->sp, WEFT_BIN, "workers", extra);
}

/* Ends a test: closes the clients, stops the server with SIGTERM and asserts it exited 0
 * with no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan) in its log. */
static void finish(struct fx *f)
{
    for (int i = 0; i < NC; i++) rc_close(&f->c[i]);
    sp_stop(&f->sp);
}

/* GET /metrics from the server into buf (asserts 200); returns the body. */
static const char *get_metrics(uint16_t port, char *buf, size_t cap)
{
    assert_int_equal(sp_http_get(port, "/metrics", buf, cap), 200);
    return sp_http_body(buf);
}

/* Number of workers with at least one open connection, from the per-worker labels. */
static int busy_workers(uint16_t port, int nworkers)
{
    static char buf[1 << 17];
    const char *body = get_metrics(port, buf, sizeof buf);
    assert_int_equal(sp_metric_int(body, "weft_workers"), nworkers);
    int busy = 0;
    for (int i = 0; i < nworkers; i++) {
        char name[64];
        snprintf(name, sizeof name, "weft_worker_connections{worker=\"%d\"}", i);
        long long v = sp_metric_int(body, name);
        assert_true(v >= 0);
        busy += v > 0;
    }
    return busy;
}

/* 200 raw-room clients over nworkers: every message once to every other member, in order. */
static void raw_room(void **state, const char *nworkers)
{
    struct fx *f = *state;
    const char *args[] = {"--workers", nworkers, "--log-level", "warn", NULL};
    spawn(f, args);
    int nw = atoi(nworkers);
    for (int i = 0; i < NC; i++)
        assert_int_equal(rc_open(&f->c[i], f->sp.port, "/ws/big"), 0);
    int busy = busy_workers(f->sp.port, nw);
    assert_true(busy >= 2);
    char body[4096];
    body[0] = '\0';
    sp_http_get(f->sp.port, "/metrics", body, sizeof body); /* smoke: answers while busy */
    static char big[1 << 17];
    const char *mb = get_metrics(f->sp.port, big, sizeof big);
    assert_int_equal(sp_metric_int(mb, "weft_connections"), NC);

    for (int m = 0; m < NMSG; m++)
        for (int s = 0; s < NSEND; s++) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "%d:%d", s, m);
            assert_int_equal(rc_send(&f->c[s * (NC / NSEND)], WEFT_OP_TEXT, msg, (size_t)n), 0);
        }
    for (int i = 0; i < NC; i++) {
        int next[NSEND] = {0};
        bool sender = i % (NC / NSEND) == 0;
        int want = sender ? (NSEND - 1) * NMSG : NSEND * NMSG;
        for (int got = 0; got < want; got++) {
            enum rc_event ev = rc_recv(&f->c[i], 10000);
            if (ev != RC_MESSAGE) {
                sp_dump_log(&f->sp);
                fail_msg("client %d: event %d after %d of %d messages", i, ev, got, want);
            }
            char tmp[64];
            size_t n = f->c[i].last.len < 63 ? f->c[i].last.len : 63;
            memcpy(tmp, f->c[i].last.data, n);
            tmp[n] = '\0';
            int s = -1, m = -1;
            assert_int_equal(sscanf(tmp, "%d:%d", &s, &m), 2);
            assert_true(s >= 0 && s < NSEND);
            assert_false(sender && s == i / (NC / NSEND)); /* never its own */
            if (m != next[s]) fail_msg("client %d: sender %d: got %d, expected %d", i, s, m, next[s]);
            next[s]++;
        }
        assert_int_equal(rc_recv(&f->c[i], i < 3 ? 100 : 0), RC_TIMEOUT); /* no duplicate */
    }
    /* SIGTERM: every client on every worker gets 1001. */
    assert_int_equal(kill(f->sp.pid, SIGTERM), 0);
    for (int i = 0; i < NC; i++) assert_int_equal(rc_expect_close(&f->c[i], 10000), 1001);
    finish(f);
}

static void test_raw_room_2_workers(void **state)
{
    raw_room(state, "2");
}

static void test_raw_room_4_workers(void **state)
{
    raw_room(state, "4");
}

#define HN 40
#define HSEND 4
#define HMSG 25

/* /hub rooms over 4 workers: one seq order, presence and history across workers. */
static void test_hub_rooms_4_workers(void **state)
{
    struct fx *f = *state;
    const char *args[] = {"--workers", "4", "--log-level", "warn", NULL};
    spawn(f, args);
    for (int i = 0; i < HN; i++) {
        assert_int_equal(rc_open(&f->c[i], f->sp.port, "/hub"), 0);
        hj_send(&f->c[i], "{\"type\":\"join\",\"room\":\"h\"}");
        json_t *j = hj_recv_json(&f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "joined");
        assert_int_equal(json_integer_value(json_object_get(j, "members")), i + 1);
        json_decref(j);
    }
    assert_true(busy_workers(f->sp.port, 4) >= 2);
    /* Senders 0..3 publish HMSG each, interleaved. */
    for (int m = 0; m < HMSG; m++)
        for (int s = 0; s < HSEND; s++) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "{\"type\":\"publish\",\"room\":\"h\",\"data\":{\"s\":%d,\"m\":%d}}", s, m);
            hj_send(&f->c[s], msg);
        }
    for (int i = 0; i < HN; i++) {
        int next[HSEND] = {0};
        long long last_seq = 0;
        int acks = 0;
        int want = i < HSEND ? (HSEND - 1) * HMSG : HSEND * HMSG;
        int got = 0;
        while (got < want || (i < HSEND && acks < HMSG)) {
            json_t *j = hj_recv_json(&f->c[i]);
            const char *type = json_string_value(json_object_get(j, "type"));
            assert_non_null(type);
            if (!strcmp(type, "published")) {
                acks++;
            } else {
                assert_string_equal(type, "message");
                long long seq = json_integer_value(json_object_get(j, "seq"));
                assert_true(seq > last_seq); /* one global order per room */
                last_seq = seq;
                json_t *d = json_object_get(j, "data");
                int s = (int)json_integer_value(json_object_get(d, "s"));
                int m = (int)json_integer_value(json_object_get(d, "m"));
                assert_true(s >= 0 && s < HSEND);
                assert_false(i < HSEND && s == i);
                if (m != next[s]) fail_msg("client %d: sender %d: got %d, expected %d", i, s, m, next[s]);
                next[s]++;
                got++;
            }
            json_decref(j);
        }
        assert_int_equal(rc_recv(&f->c[i], i < 3 ? 100 : 0), RC_TIMEOUT);
    }
    /* Presence and history from a client on every worker agree. */
    for (int i = HN - 8; i < HN; i++) {
        hj_send(&f->c[i], "{\"type\":\"presence\",\"room\":\"h\",\"id\":7}");
        json_t *j = hj_recv_json(&f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "presence");
        assert_int_equal(json_integer_value(json_object_get(j, "count")), HN);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
        json_decref(j);
        hj_send(&f->c[i], "{\"type\":\"history\",\"room\":\"h\",\"since\":90}");
        j = hj_recv_json(&f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "history");
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), HSEND * HMSG);
        json_t *msgs = json_object_get(j, "messages");
        assert_int_equal(json_array_size(msgs), HSEND * HMSG - 90);
        for (size_t k = 0; k < json_array_size(msgs); k++)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, k), "seq")),
                             91 + (long long)k);
        json_decref(j);
    }
    /* A member leaves (and one disconnects): presence follows on every worker. */
    hj_send(&f->c[HN - 1], "{\"type\":\"leave\",\"room\":\"h\"}");
    json_decref(hj_recv_json(&f->c[HN - 1]));
    rc_close(&f->c[HN - 2]);
    usleep(200000);
    hj_send(&f->c[5], "{\"type\":\"presence\",\"room\":\"h\"}");
    json_t *j = hj_recv_json(&f->c[5]);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), HN - 2);
    json_decref(j);
    /* A late joiner recovers the backlog with since. */
    struct rc late = {.fd = -1};
    assert_int_equal(rc_open(&late, f->sp.port, "/hub"), 0);
    hj_send(&late, "{\"type\":\"join\",\"room\":\"h\",\"since\":95}");
    j = hj_recv_json(&late);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "joined");
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), HSEND * HMSG);
    json_decref(j);
    for (int k = 96; k <= HSEND * HMSG; k++) {
        j = hj_recv_json(&late);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), k);
        json_decref(j);
    }
    rc_close(&late);
    static char big[1 << 17];
    const char *mb = get_metrics(f->sp.port, big, sizeof big);
    assert_int_equal(sp_metric_int(mb, "weft_hub_publishes_total"), HSEND * HMSG);
    finish(f);
}

int main(void)
{
    sp_guard("test_workers", "weft serve", 170);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_room_2_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_room_4_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_rooms_4_workers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
