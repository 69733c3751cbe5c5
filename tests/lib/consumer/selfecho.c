/*
 * selfecho.c — a program built outside the source tree against an installed libweft
 * (tests/lib/install.sh): it opens a loop, serves /echo on 127.0.0.1 (any free port),
 * connects a client to itself, sends one message and checks that it comes back.
 * Exits 0 on success, 1 with one line on stderr otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <weft.h>

static const char greeting[] = "hello from an installed libweft";

struct state {
    struct weft_loop *loop;
    struct weft_timer deadline;
    struct weft_client *client; /* until on_end */
    int echoed;                 /* 1 once the echo came back intact */
};

static struct state st;

/* Server side: sends every message back with its opcode. */
static void echo_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    weft_conn_send(c, data, len, binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* Client side: the connection is open; send the greeting. */
static void client_open(struct weft_conn *c)
{
    weft_conn_send(c, greeting, strlen(greeting), WEFT_OP_TEXT);
}

/* Client side: the echo; check it and close. */
static void client_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    st.echoed = !binary && len == strlen(greeting) && memcmp(data, greeting, len) == 0;
    weft_client_close(weft_conn_client(c), WEFT_CLOSE_NORMAL, "done");
}

/* The client has stopped: free it and stop the loop. */
static void client_end(struct weft_client *cl)
{
    weft_client_free(cl);
    st.client = NULL;
    weft_loop_stop(st.loop);
}

/* Something went wrong with the connection attempt. */
static void client_error(struct weft_client *cl, int err, const char *reason, int status)
{
    (void)cl;
    fprintf(stderr, "selfecho: client: %s: %s (HTTP %d)\n", weft_strerror(err), reason, status);
}

/* Ten seconds without an answer: give up. */
static void too_late(struct weft_timer *t)
{
    (void)t;
    fprintf(stderr, "selfecho: no echo within 10 s\n");
    weft_loop_stop(st.loop);
}

/* Runs the self-echo; returns the process exit status. */
int main(void)
{
    struct weft_url u;
    const char *why = NULL;
    if (weft_url_parse("ws://127.0.0.1:8080/echo?x=1", &u, &why) != WEFT_OK || u.port != 8080 ||
        u.host_len != 9 || memcmp(u.host, "127.0.0.1", 9) != 0) {
        fprintf(stderr, "selfecho: weft_url_parse failed: %s\n", why ? why : "wrong fields");
        return 1;
    }

    st.loop = weft_loop_new();
    if (!st.loop) {
        perror("selfecho: weft_loop_new");
        return 1;
    }
    int err = 0;
    struct weft_server_config cfg = {.host = "127.0.0.1", .port_ephemeral = true};
    struct weft_server *srv = weft_server_new(st.loop, &cfg, &err);
    if (!srv) {
        fprintf(stderr, "selfecho: weft_server_new: %s\n", weft_strerror(err));
        weft_loop_free(st.loop);
        return 1;
    }
    struct weft_ws_handlers echo = {.on_message = echo_message};
    weft_server_ws(srv, "/echo", &echo, NULL);

    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/echo", (unsigned)weft_server_port(srv));
    struct weft_client_options opts = {
        .handlers = {.on_open = client_open, .on_message = client_message},
        .on_error = client_error,
        .on_end = client_end,
    };
    st.client = weft_connect(st.loop, url, &opts, &err);
    if (!st.client) {
        fprintf(stderr, "selfecho: weft_connect: %s\n", weft_strerror(err));
    } else {
        st.deadline.cb = too_late;
        weft_timer_start(st.loop, &st.deadline, 10000);
        weft_loop_run(st.loop);
        weft_timer_stop(&st.deadline);
        if (st.client) /* the deadline passed: drop the client */
            weft_client_free(st.client);
    }
    weft_server_free(srv);
    /* A freed client releases the rest of its memory on a timer due at the loop's next tick
     * (ticks are 8 ms): run the loop for two more ticks before freeing it. */
    uint64_t until = weft_loop_now(st.loop) + 20;
    while (weft_loop_now(st.loop) < until)
        weft_loop_poll(st.loop, 10);
    weft_loop_free(st.loop);
    if (!st.echoed) {
        fprintf(stderr, "selfecho: the echo did not come back intact\n");
        return 1;
    }
    printf("selfecho: ok (%s)\n", url);
    return 0;
}
