/*
 * chat_rooms.c — chat rooms with weft's pub/sub: a WebSocket to ws://HOST:PORT/chat/ROOM joins
 * ROOM; every message a member sends goes to the other members of that room (text stays text,
 * binary stays binary). Rooms need no bookkeeping: a room is a pub/sub topic, and a
 * connection's subscriptions end when it closes.
 *
 *   ./chat_rooms [PORT]        PORT 0 (the default) picks any free port
 *
 * Prints "listening on 127.0.0.1:PORT". Stop it with Ctrl-C.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define ROOM_MAX 64

/* Before the 101: take the room from the path, refuse a bad one, and attach a copy of the
 * name to the new connection (weft_conn_user gives it back). */
static void on_upgrade(struct weft_request *req, void *route_user)
{
    (void)route_user;
    size_t len;
    const char *path = weft_request_path(req, &len); /* "/chat/ROOM", not NUL-terminated */
    const size_t prefix = strlen("/chat/");
    if (len <= prefix || len - prefix > ROOM_MAX) {
        weft_request_reject(req, 404, NULL, "use /chat/ROOM (1 to 64 bytes)\n");
        return;
    }
    char *room = strndup(path + prefix, len - prefix);
    if (!room) {
        weft_request_reject(req, 503, NULL, NULL);
        return;
    }
    weft_request_accept(req, NULL, room, NULL);
}

/* The connection is open: join the room (subscribe to its topic). */
static void on_open(struct weft_conn *c)
{
    const char *room = weft_conn_user(c);
    if (weft_subscribe(c, room, strlen(room)) != WEFT_OK)
        weft_conn_close(c, WEFT_CLOSE_INTERNAL, "cannot join");
}

/* A message from a member: publish it to the room, except to its sender. The frame is
 * encoded once for all members. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    const char *room = weft_conn_user(c);
    weft_publish(weft_conn_server(c), room, strlen(room), data, len,
                 binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
}

/* The connection is gone (its subscription with it): free the room name. */
static void on_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean)
{
    (void)code, (void)reason, (void)reason_len, (void)clean;
    free(weft_conn_user(c));
}

/* SIGINT / SIGTERM: stop the loop. */
static void on_signal(int signo, void *loop)
{
    (void)signo;
    weft_loop_stop(loop);
}

/* Starts the server and runs the loop until a signal. Returns the exit status. */
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
    struct weft_ws_handlers chat = {
        .on_upgrade = on_upgrade,
        .on_open = on_open,
        .on_message = on_message,
        .on_close = on_close,
    };
    weft_server_ws(server, "/chat/*", &chat, NULL);
    weft_loop_on_signal(loop, SIGINT, on_signal, loop);
    weft_loop_on_signal(loop, SIGTERM, on_signal, loop);

    printf("listening on 127.0.0.1:%u\n", (unsigned)weft_server_port(server));
    fflush(stdout);
    weft_loop_run(loop);

    weft_server_free(server); /* on_close runs for every connection still open */
    weft_loop_free(loop);
    return 0;
}
