/*
 * group_workers.c — one process, several worker threads, one room. Each worker runs its own
 * loop and its own server on the same port (SO_REUSEPORT: the kernel spreads the
 * connections), and the servers form a weft_group: a message published on any worker reaches
 * the room's subscribers on every worker. The frame is encoded once; other workers get a
 * reference to it through their loop's inbox.
 *
 *   ./group_workers [PORT [WORKERS]]     PORT 0 (the default) picks any free port; 2 workers
 *
 * A WebSocket to ws://127.0.0.1:PORT/room first receives "worker N" (the worker it landed
 * on), then every message the other members send, from whichever worker. Prints
 * "listening on 127.0.0.1:PORT (N workers)". Ctrl-C or SIGTERM stops it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

#define MAX_WORKERS 16

struct worker {
    int id;
    uint16_t port;  /* 0 for the first worker when any free port is wanted */
    uint16_t bound; /* the port its server listens on */
    struct weft_group *group;
    struct weft_loop *loop;
    struct weft_server *server;
    int err;    /* why the server could not start, else WEFT_OK */
    bool ready; /* err and bound are set (under started_lock) */
};

/* A worker tells main that its server listens (or could not start). */
static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cond = PTHREAD_COND_INITIALIZER;

/* A new member: tell it which worker serves it, and subscribe it to the room. */
static void on_open(struct weft_conn *c)
{
    struct worker *w = weft_conn_route_user(c);
    char hello[32];
    int n = snprintf(hello, sizeof hello, "worker %d", w->id);
    weft_conn_send(c, hello, (size_t)n, WEFT_OP_TEXT);
    weft_subscribe(c, "room", 4);
}

/* A message from a member: to every other member, on every worker (thread-safe). */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    struct worker *w = weft_conn_route_user(c);
    weft_group_publish(w->group, "room", 4, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
}

/* One worker thread: its own loop and server, a member of the group while it runs. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->loop = weft_loop_new();
    struct weft_server_config cfg = {
        .host = "127.0.0.1",
        .port = w->port,
        .port_ephemeral = w->port == 0,
        .reuse_port = true,
    };
    w->err = WEFT_ERR_NOMEM;
    if (w->loop) w->server = weft_server_new(w->loop, &cfg, &w->err);
    if (w->server) {
        struct weft_ws_handlers room = {.on_open = on_open, .on_message = on_message};
        weft_server_ws(w->server, "/room", &room, w);
        w->err = weft_group_add(w->group, w->server);
        w->bound = weft_server_port(w->server);
    }
    pthread_mutex_lock(&started_lock); /* main reads w->err and w->bound after this */
    w->ready = true;
    pthread_cond_signal(&started_cond);
    pthread_mutex_unlock(&started_lock);
    if (w->err == WEFT_OK) weft_loop_run(w->loop); /* until main defers stop_loop to it */

    if (w->server) {
        weft_group_remove(w->group, w->server); /* before freeing the server */
        weft_server_free(w->server);
        weft_loop_poll(w->loop, 0); /* releases frames still in this loop's inbox */
    }
    if (w->loop) weft_loop_free(w->loop);
    return NULL;
}

/* Runs on a worker's own loop (through weft_loop_defer): leave weft_loop_run. A deferred call
 * made before the worker entered weft_loop_run still runs inside it, so no stop is lost. */
static void stop_loop(void *loop)
{
    weft_loop_stop(loop);
}

/* Starts worker w and waits until its server listens. Returns false if it could not. */
static bool start_worker(struct worker *w, pthread_t *thread)
{
    if (pthread_create(thread, NULL, worker_main, w) != 0) return false;
    pthread_mutex_lock(&started_lock);
    while (!w->ready)
        pthread_cond_wait(&started_cond, &started_lock);
    pthread_mutex_unlock(&started_lock);
    if (w->err != WEFT_OK) fprintf(stderr, "worker %d: %s\n", w->id, weft_strerror(w->err));
    return true;
}

/* Starts the workers, waits for SIGINT or SIGTERM, stops them. Returns the exit status. */
int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int n = argc > 2 ? atoi(argv[2]) : 2;
    if (n < 1 || n > MAX_WORKERS) {
        fprintf(stderr, "%s: WORKERS must be 1 to %d\n", argv[0], MAX_WORKERS);
        return 2;
    }
    /* Signals go to main's sigwait only: block them before any thread starts (threads
     * inherit the mask). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct weft_group *group = weft_group_new();
    struct worker workers[MAX_WORKERS] = {0};
    pthread_t threads[MAX_WORKERS];
    int started = 0, failed = 0;
    for (int i = 0; i < n && group && !failed; i++) {
        workers[i] = (struct worker){.id = i, .group = group, .port = (uint16_t)port};
        if (i > 0) /* the others join the port the first one got */
            workers[i].port = workers[0].bound;
        if (!start_worker(&workers[i], &threads[i])) break;
        started++;
        failed = workers[i].err != WEFT_OK;
    }
    if (started == n && !failed) {
        printf("listening on 127.0.0.1:%u (%d workers)\n", (unsigned)workers[0].bound, n);
        fflush(stdout);
        int signo;
        sigwait(&stop, &signo);
    }
    for (int i = 0; i < started; i++)
        if (workers[i].err == WEFT_OK &&
            weft_loop_defer(workers[i].loop, stop_loop, workers[i].loop) != WEFT_OK)
            weft_loop_stop(workers[i].loop); /* thread-safe too, but may come too early */
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (group) weft_group_free(group);
    return started == n && !failed ? 0 : 1;
}
