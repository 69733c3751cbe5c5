/*
 * deflate_server.c — a test server on libweft with permessage-deflate configured from the
 * command line, for the deflate interop tests (Python websockets, Node ws):
 *
 *   deflate_server [--context-takeover] [--window BITS] [--peer-window BITS]
 *                  [--mem-level N] [--threshold BYTES] [--max-message BYTES] [--off]
 *
 * Routes: /echo echoes (recompressing as negotiated), /room/<name> broadcasts to the other
 * members (compressed once per window size). It prints "listening on 127.0.0.1:PORT" on
 * stderr and exits on SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static void on_echo(struct weft_conn *c, const void *d, size_t n, bool bin)
{
    weft_conn_send(c, d, n, bin ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

static void on_room_open(struct weft_conn *c)
{
    weft_subscribe(c, "room", 4);
}

static void on_room(struct weft_conn *c, const void *d, size_t n, bool bin)
{
    weft_publish(weft_conn_server(c), "room", 4, d, n, bin ? WEFT_OP_BINARY : WEFT_OP_TEXT, c);
}

static void on_term(int signo, void *arg)
{
    (void)signo;
    weft_loop_stop(arg);
}

int main(int argc, char **argv)
{
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    cfg.deflate.enabled = true;
    cfg.deflate.no_context_takeover = true;
    cfg.deflate.peer_no_context_takeover = true;
    cfg.max_message = 17u << 20; /* 16 MiB payloads plus the overhead of incompressible data */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--context-takeover")) {
            cfg.deflate.no_context_takeover = cfg.deflate.peer_no_context_takeover = false;
        } else if (!strcmp(a, "--off")) {
            cfg.deflate.enabled = false;
        } else if (!strcmp(a, "--window")) {
            cfg.deflate.max_window_bits = (uint8_t)atoi(v);
            i++;
        } else if (!strcmp(a, "--peer-window")) {
            cfg.deflate.peer_max_window_bits = (uint8_t)atoi(v);
            i++;
        } else if (!strcmp(a, "--mem-level")) {
            cfg.deflate.mem_level = atoi(v);
            i++;
        } else if (!strcmp(a, "--threshold")) {
            cfg.deflate.threshold = (size_t)atol(v);
            i++;
        } else if (!strcmp(a, "--max-message")) {
            cfg.max_message = (uint64_t)atoll(v);
            i++;
        } else {
            fprintf(stderr, "deflate_server: unknown option %s\n", a);
            return 2;
        }
    }
    struct weft_loop *loop = weft_loop_new();
    int err;
    struct weft_server *s = weft_server_new(loop, &cfg, &err);
    if (!s) {
        fprintf(stderr, "deflate_server: %s\n", weft_strerror(err));
        return 1;
    }
    struct weft_ws_handlers echo = {.on_message = on_echo};
    struct weft_ws_handlers room = {.on_open = on_room_open, .on_message = on_room};
    weft_server_ws(s, "/echo", &echo, NULL);
    weft_server_ws(s, "/room/*", &room, NULL);
    weft_loop_on_signal(loop, SIGTERM, on_term, loop);
    weft_loop_on_signal(loop, SIGINT, on_term, loop);
    fprintf(stderr, "listening on 127.0.0.1:%u\n", weft_server_port(s));
    int r = weft_loop_run(loop);
    weft_server_free(s);
    weft_loop_free(loop);
    return r == WEFT_OK ? 0 : 1;
}
