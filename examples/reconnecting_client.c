/*
 * reconnecting_client.c — a client that survives its server: it connects to an echo server
 * (for example ./echo_server), retrying with exponential backoff until the server is there,
 * sends COUNT numbered messages of SIZE bytes as fast as the connection takes them, and
 * stops once every one has come back.
 *
 *   ./reconnecting_client ws://127.0.0.1:PORT/echo [COUNT [SIZE]]    (default 1000 x 16 KiB)
 *
 * Backpressure, at two levels. weft_client_send says what happened to each message. SENT: go
 * on. QUEUED: accepted, but the kernel is not taking data as fast as we produce it; stop and
 * continue in on_drain. DROPPED: refused (over max_backpressure); try the same message again
 * shortly. And the application keeps at most WINDOW bytes in flight (sent, not yet
 * echoed; at least one message): without that limit, a client that only sends fills its output,
 * stops being read (weft does not read a connection whose output is full), the echo server's output
 * to it fills too, the server stops reading it, and neither side moves again. A lost connection
 * loses what was in flight: after a reconnection the client resends from the first message not yet
 * echoed. Exits 0 when all COUNT came back, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define WINDOW (512 * 1024) /* bytes in flight at most (but always one message) */

static struct {
    struct weft_loop *loop;
    struct weft_client *client;
    struct weft_timer retry; /* after a DROPPED send */
    unsigned count, size;
    unsigned next;  /* number of the next message to send (from 1) */
    unsigned acked; /* messages echoed back, in order */
    char *buf;      /* one message: "NUMBER " then filler */
    unsigned reconnections, drains, drops;
} app;

/* Sends messages until one is not simply SENT, the window is full or all are out. */
static void pump(void)
{
    for (;;) {
        unsigned in_flight = app.next - 1 - app.acked;
        if (app.next > app.count || (in_flight > 0 && (in_flight + 1) * app.size > WINDOW)) return;
        int n = snprintf(app.buf, app.size, "%u ", app.next);
        memset(app.buf + n, 'x', app.size - (unsigned)n);
        enum weft_send_result r = weft_client_send(app.client, app.buf, app.size, WEFT_OP_TEXT);
        if (r == WEFT_SEND_SENT) {
            app.next++;
        } else if (r == WEFT_SEND_QUEUED) { /* accepted: wait for on_drain */
            app.next++;
            app.drains++;
            return;
        } else if (r == WEFT_SEND_DROPPED) { /* refused: the same message again in 10 ms */
            app.drops++;
            weft_timer_start(app.loop, &app.retry, 10);
            return;
        } else { /* WEFT_SEND_CLOSED: on_open starts again */
            return;
        }
    }
}

/* The retry timer after a DROPPED send. */
static void on_retry(struct weft_timer *t)
{
    (void)t;
    pump();
}

/* Connected (the first time or again): resend from the first message not echoed. */
static void on_open(struct weft_conn *c)
{
    (void)c;
    printf("open (after %u reconnections)\n", app.reconnections);
    fflush(stdout);
    app.next = app.acked + 1;
    pump();
}

/* Everything queued has reached the kernel: go on sending. */
static void on_drain(struct weft_conn *c)
{
    (void)c;
    pump();
}

/* An echo: count it if it is the next one expected; close when all are back. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    (void)c, (void)binary;
    if (len == app.size && strtoul(data, NULL, 10) == app.acked + 1) app.acked++;
    if (app.acked == app.count)
        weft_client_close(app.client, WEFT_CLOSE_NORMAL, "done");
    else if (!weft_timer_active(&app.retry)) /* room in the window again */
        pump();
}

/* The connection closed; the client reconnects by itself. */
static void on_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                     bool clean)
{
    (void)c, (void)clean;
    printf("closed: %u %.*s\n", code, (int)reason_len, reason);
    weft_timer_stop(&app.retry);
}

/* An attempt failed (refused, DNS, timeout, handshake): say why. */
static void on_error(struct weft_client *cl, int err, const char *reason, int http_status)
{
    (void)cl, (void)http_status;
    printf("attempt failed: %s (%s)\n", reason, weft_strerror(err));
}

/* Another attempt comes after delay_ms (exponential backoff with jitter). */
static void on_reconnecting(struct weft_client *cl, unsigned attempt, uint32_t delay_ms)
{
    (void)cl;
    app.reconnections++;
    printf("reconnecting in %u ms (attempt %u)\n", delay_ms, attempt);
    fflush(stdout);
}

/* The client stopped for good (after weft_client_close, or giving up): leave the loop. */
static void on_end(struct weft_client *cl)
{
    weft_client_free(cl);
    app.client = NULL;
    weft_loop_stop(app.loop);
}

/* Parses the arguments, runs the client, reports. Returns the exit status. */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ws://HOST:PORT/PATH [COUNT [SIZE]]\n", argv[0]);
        return 2;
    }
    app.count = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
    app.size = argc > 3 ? (unsigned)atoi(argv[3]) : 16384;
    if (app.count == 0 || app.size < 16) {
        fprintf(stderr, "%s: COUNT must be > 0 and SIZE >= 16\n", argv[0]);
        return 2;
    }
    app.buf = malloc(app.size);
    app.loop = weft_loop_new();
    if (!app.buf || !app.loop) {
        perror(argv[0]);
        return 1;
    }
    app.retry.cb = on_retry;

    struct weft_client_options opts = {
        .handlers = {.on_open = on_open,
                     .on_message = on_message,
                     .on_drain = on_drain,
                     .on_close = on_close},
        .on_error = on_error,
        .on_reconnecting = on_reconnecting,
        .on_end = on_end,
        .reconnect = true,
        .backoff_base_ms = 100, /* first retry within 100 ms, doubling up to 2 s */
        .backoff_cap_ms = 2000,
        .max_attempts = 50,             /* then give up: on_end */
        .max_backpressure = 256 * 1024, /* unsent bytes before sends are refused */
        .max_message = 64 * 1024 * 1024,
    };
    int err = 0;
    app.client = weft_connect(app.loop, argv[1], &opts, &err);
    if (!app.client) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], weft_strerror(err));
        return 1;
    }
    weft_loop_run(app.loop);
    weft_timer_stop(&app.retry);
    /* A freed client releases the rest of its memory on a timer due at the loop's next tick
     * (ticks are 8 ms): run the loop for two more ticks before freeing it. */
    uint64_t until = weft_loop_now(app.loop) + 20;
    while (weft_loop_now(app.loop) < until)
        weft_loop_poll(app.loop, 10);
    weft_loop_free(app.loop);
    free(app.buf);

    printf("%u of %u messages echoed; %u reconnections, %u waits for on_drain, %u drops\n",
           app.acked, app.count, app.reconnections, app.drains, app.drops);
    return app.acked == app.count ? 0 : 1;
}
