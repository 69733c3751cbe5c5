/*
 * embed_poll.c — weft inside an application that already has its own poll() loop. The
 * application owns the loop; weft's whole event loop is one descriptor in it
 * (weft_loop_fd), and weft_loop_poll(loop, 0) does weft's work without blocking.
 *
 * The application here reads lines from its standard input and broadcasts each one to every
 * WebSocket connected to ws://127.0.0.1:PORT/feed, which also echoes what its clients send.
 * The line "quit" (or the end of the input) stops it.
 *
 *   ./embed_poll [PORT]        PORT 0 (the default) picks any free port
 *
 * Timers: weft keeps its timers (handshake and close timeouts, keep-alive pings) on a wheel
 * with an 8 ms tick, which does not wake the descriptor. So the application's poll() waits
 * at most TICK_MS and calls weft_loop_poll after every wake-up, whether weft's descriptor
 * was readable or not.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#define TICK_MS 10

/* Echo: what a client sends comes back to it. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* A new client: subscribe it to the "feed" topic the application publishes to. */
static void on_open(struct weft_conn *c)
{
    weft_subscribe(c, "feed", 4);
}

/* Reads what is available on stdin and publishes each complete line. Returns false on "quit"
 * or at the end of the input. */
static bool read_input(struct weft_server *server, char *line, size_t cap, size_t *used)
{
    ssize_t n = read(STDIN_FILENO, line + *used, cap - *used);
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) return false;
    *used += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', *used)) != NULL) {
        size_t len = (size_t)(nl - line);
        if (len == 4 && memcmp(line, "quit", 4) == 0) return false;
        size_t sent = weft_publish(server, "feed", 4, line, len, WEFT_OP_TEXT, NULL);
        printf("published \"%.*s\" to %zu client(s)\n", (int)len, line, sent);
        fflush(stdout);
        *used -= len + 1;
        memmove(line, nl + 1, *used);
    }
    if (*used == cap) /* a line longer than the buffer: drop it */
        *used = 0;
    return true;
}

/* Runs the application's loop. Returns the exit status. */
int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct weft_loop *loop = weft_loop_new();
    if (!loop) {
        perror("weft_loop_new");
        return 1;
    }
    struct weft_server_config cfg = {
        .host = "127.0.0.1",
        .port = (uint16_t)port,
        .port_ephemeral = port == 0,
    };
    int err = 0;
    struct weft_server *server = weft_server_new(loop, &cfg, &err);
    if (!server) {
        fprintf(stderr, "cannot listen on port %d: %s\n", port, weft_strerror(err));
        weft_loop_free(loop);
        return 1;
    }
    struct weft_ws_handlers feed = {.on_open = on_open, .on_message = on_message};
    weft_server_ws(server, "/feed", &feed, NULL);
    printf("listening on 127.0.0.1:%u\n", (unsigned)weft_server_port(server));
    fflush(stdout);

    /* The application's own loop: its descriptor (stdin) and weft's, side by side. */
    struct pollfd fds[2] = {
        {.fd = STDIN_FILENO, .events = POLLIN},
        {.fd = weft_loop_fd(loop), .events = POLLIN},
    };
    char line[4096];
    size_t used = 0;
    bool running = true;
    while (running) {
        if (poll(fds, 2, TICK_MS) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
            running = read_input(server, line, sizeof line, &used);
        /* weft's work: events, due timers, and the output corked during this round (the
         * publish above included) goes out here. Never blocks with a timeout of 0. */
        if (weft_loop_poll(loop, 0) < 0) {
            perror("weft_loop_poll");
            break;
        }
    }

    weft_server_free(server);
    weft_loop_free(loop);
    printf("bye\n");
    return 0;
}
