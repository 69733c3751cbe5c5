/*
 * harness.h — runs a weft server in-process on its own thread for the integration tests.
 *
 * The loop, the server and the routes are created on the server thread (a loop is used only
 * from the thread that runs it); the test thread talks to it with weft_loop_stop and
 * weft_loop_defer only, through ts_call, which runs a function on the loop thread and waits
 * for it. Events the route callbacks record (closes, opens) go through a mutex-protected log
 * that the test thread can wait on with a timeout.
 */
#ifndef WEFT_TEST_HARNESS_H
#define WEFT_TEST_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

/* An assertion for code that runs on the loop thread (cmocka's asserts only work on the test
 * thread): prints and aborts, which fails the test run. */
#define TS_CHECK(expr)                                                                             \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: loop-thread check failed: %s\n", __FILE__, __LINE__, #expr);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A close as reported by on_close. */
struct ts_close {
    uint64_t conn_id;
    void *user;
    uint16_t code;
    bool clean;
    char reason[124];
    size_t reason_len;
};

#define TS_MAX_CLOSES 512

struct ts {
    struct weft_server_config cfg;
    void (*setup)(struct ts *t, struct weft_server *s); /* registers routes, on loop thread */
    void *user;                                         /* for the test */

    struct weft_loop *loop;
    struct weft_server *server;
    pthread_t thread;
    bool started;
    uint16_t port;
    int start_err;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    /* Recorded by the callbacks below (under mu). */
    unsigned opens;
    uint64_t open_ids[TS_MAX_CLOSES]; /* conn ids in the order on_open saw them */
    unsigned ncloses;
    struct ts_close closes[TS_MAX_CLOSES];
};

/* The running harness, for callbacks (one server per test process at a time). */
extern struct ts *ts_current;

/* Starts a server with t->cfg and t->setup on a new thread; waits until it listens. The host
 * is t->cfg.host if set (e.g. "::1"), 127.0.0.1 otherwise, on an ephemeral port (t->port);
 * with t->cfg.unix_path set it listens on that Unix socket instead (t->port stays 0). Returns
 * 0, or -1 (t->start_err = the weft error). */
int ts_start(struct ts *t);

/* Stops the loop, joins the thread; the server and loop are freed on their thread. Harmless
 * if not started. */
void ts_stop(struct ts *t);

/* Runs fn(arg) on the loop thread and waits (up to 10 s) for it to finish. Returns 0, or -1
 * on timeout. */
int ts_call(struct ts *t, void (*fn)(struct ts *t, void *arg), void *arg);

/* Server statistics, read on the loop thread. */
void ts_stats(struct ts *t, struct weft_server_stats *out);

/* Waits until at least n closes were recorded, up to timeout_ms. Returns true if so. */
bool ts_wait_closes(struct ts *t, unsigned n, int timeout_ms);

/* The id of the most recent connection on_open recorded (0 if none). A client's on_open runs
 * before its 101 is written, so after rc_open this is that client's id. */
uint64_t ts_last_open(struct ts *t);

/* Returns a copy of the close recorded for connection id, or false if none yet. */
bool ts_find_close(struct ts *t, uint64_t conn_id, struct ts_close *out);

/* Callbacks that record into the log; routes can call them from their own. */
void ts_record_open(struct weft_conn *c);
void ts_record_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean);

/* Route handlers of an echo endpoint: each message is sent back with its opcode; opens and
 * closes are recorded. */
extern const struct weft_ws_handlers ts_echo_handlers;

#endif
