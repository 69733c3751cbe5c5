/*
 * echo_server.c — the smallest useful weft server: every message sent to ws://HOST:PORT/echo
 * comes back with its opcode (text stays text, binary stays binary).
 *
 *   ./echo_server [PORT]        PORT 0 (the default) picks any free port
 *
 * It prints "listening on 127.0.0.1:PORT" once it accepts connections. Ctrl-C (SIGINT) or
 * SIGTERM closes every connection with 1001 (going away) and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

/* on_message runs once per complete message; data is only valid during the call, and
 * weft_conn_send copies it. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

struct app {
    struct weft_loop *loop;
    struct weft_server *server;
};

/* Called when the graceful shutdown is over: leave weft_loop_run. */
static void shutdown_done(void *arg)
{
    struct app *app = arg;
    weft_loop_stop(app->loop);
}

/* SIGINT / SIGTERM, delivered on the loop's thread (not in a signal handler). */
static void on_signal(int signo, void *arg)
{
    (void)signo;
    struct app *app = arg;
    /* Send 1001 to everyone, wait up to 2 s for their close frames, then call done. */
    weft_server_shutdown(app->server, WEFT_CLOSE_GOING_AWAY, 2000, shutdown_done, app);
}

/* Starts the server and runs the loop until a signal stops it. Returns the exit status. */
int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;

    struct app app = {0};
    struct weft_loop *loop = app.loop = weft_loop_new();
    if (!loop) {
        perror("weft_loop_new");
        return 1;
    }

    /* Every numeric field left at zero takes its default (16 MiB messages, 1 MiB of
     * backpressure per connection, ...). */
    struct weft_server_config cfg = {
        .host = "127.0.0.1",
        .port = (uint16_t)port,
        .port_ephemeral = port == 0,
    };
    int err = 0;
    struct weft_server *server = app.server = weft_server_new(loop, &cfg, &err);
    if (!server) {
        fprintf(stderr, "cannot listen on port %d: %s\n", port, weft_strerror(err));
        weft_loop_free(loop);
        return 1;
    }

    struct weft_ws_handlers echo = {.on_message = on_message};
    weft_server_ws(server, "/echo", &echo, NULL);
    weft_loop_on_signal(loop, SIGINT, on_signal, &app);
    weft_loop_on_signal(loop, SIGTERM, on_signal, &app);

    printf("listening on 127.0.0.1:%u\n", (unsigned)weft_server_port(server));
    fflush(stdout);
    weft_loop_run(loop);

    weft_server_free(server);
    weft_loop_free(loop);
    return 0;
}
