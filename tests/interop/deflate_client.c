/*
 * deflate_client.c — the weft client (libweft, weft_connect) with permessage-deflate
 * configured from the command line, for the client-side deflate interop tests against
 * Python websockets and Node ws servers:
 *
 *   deflate_client URL [--off] [--nct] [--peer-nct] [--bits N] [--peer-bits N] [--mem N]
 *                      [--level N] [--threshold N] [--max BYTES] [--room K] [--expect-fail]
 *                      [--cacert FILE]
 *
 * Echo (default): sends, one at a time, a compressible JSON-like text message and a random
 * binary message of each size in 0, 1, 125, 126, 1000, 65535, 65536, 200000, 1 MiB, 16 MiB
 * (up to --max, default 64 KiB) and checks that each echo is byte-identical; then closes 1000.
 * --room K: K clients on URL; when all are open each sends one text and one binary message;
 * every client must receive all 2K messages (the server broadcasts to every member).
 * --expect-fail: the handshake must fail with WEFT_ERR_PROTO (bad deflate answer) and no
 * connection may open. --cacert: for wss:// URLs, trust the CAs in FILE (PEM).
 * Prints one line ("ok ..." or "FAIL ...") and exits 0 or 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

#define MAX_ROOM 16

struct msg {
    uint8_t *data;
    size_t len;
    bool binary;
};

static struct weft_loop *loop;
static struct weft_client *clients[MAX_ROOM];
static size_t nclients = 1, nopen, nended;
static struct msg *msgs;
static size_t nmsgs, next_msg; /* echo: the message whose echo is awaited */
static size_t got[MAX_ROOM];   /* room: messages received per client */
static bool room_mode, expect_fail, failed, opened, proto_error;
static char why[400];

/* Records the first failure. */
static void fail(const char *fmt, const char *detail)
{
    if (!failed)
        snprintf(why, sizeof why, fmt, detail ? detail : "");
    failed = true;
}

/* A deterministic pseudo-random byte stream (xorshift64). */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Fills a message of len bytes: JSON-like text (compressible) or random bytes. */
static void make_msg(struct msg *m, size_t len, bool binary, uint64_t seed)
{
    m->data = malloc(len ? len : 1);
    m->len = len;
    m->binary = binary;
    if (!m->data) {
        fputs("FAIL out of memory\n", stdout);
        exit(1);
    }
    uint64_t s = seed * 2654435761u + 88172645463325252ull;
    if (binary) {
        for (size_t i = 0; i < len; i++)
            m->data[i] = (uint8_t)(rng_next(&s) >> 24);
        return;
    }
    size_t i = 0;
    while (i < len) {
        char rec[160];
        int n = snprintf(rec, sizeof rec,
                         "{\"id\":%" PRIu64 ",\"user\":\"user%u\",\"text\":\"hello weft\","
                         "\"ts\":%" PRIu64 "},",
                         seed + i, (unsigned)(rng_next(&s) % 50), 1700000000u + i / 64);
        size_t k = (size_t)n < len - i ? (size_t)n : len - i;
        memcpy(m->data + i, rec, k);
        i += k;
    }
}

/* Sends message i of the echo sequence on client 0. */
static void send_msg(size_t i)
{
    weft_client_send(clients[0], msgs[i].data, msgs[i].len,
                     msgs[i].binary ? WEFT_OP_BINARY : WEFT_OP_TEXT);
}

/* Index of a client in clients[]. */
static size_t client_index(struct weft_client *cl)
{
    for (size_t i = 0; i < nclients; i++)
        if (clients[i] == cl)
            return i;
    return 0;
}

/* Connection callback: open. Echo starts sending; rooms wait for every member. */
static void on_open(struct weft_conn *c)
{
    (void)c;
    opened = true;
    if (expect_fail) {
        fail("the connection opened although the server's answer was invalid%s", NULL);
        for (size_t i = 0; i < nclients; i++)
            weft_client_close(clients[i], 1000, NULL);
        return;
    }
    if (!room_mode) {
        send_msg(0);
        return;
    }
    if (++nopen < nclients)
        return;
    for (size_t i = 0; i < nclients; i++) {
        weft_client_send(clients[i], msgs[2 * i].data, msgs[2 * i].len, WEFT_OP_TEXT);
        weft_client_send(clients[i], msgs[2 * i + 1].data, msgs[2 * i + 1].len, WEFT_OP_BINARY);
    }
}

/* Closes every client. */
static void close_all(void)
{
    for (size_t i = 0; i < nclients; i++)
        weft_client_close(clients[i], 1000, "done");
}

/* Connection callback: a message. Checks it against what is expected. */
static void on_message(struct weft_conn *c, const void *data, size_t len, bool binary)
{
    if (!room_mode) {
        const struct msg *m = &msgs[next_msg];
        if (m->len != len || m->binary != binary || (len && memcmp(m->data, data, len))) {
            char d[96];
            snprintf(d, sizeof d, "#%zu (%zu bytes %s): got %zu bytes %s", next_msg, m->len,
                     m->binary ? "binary" : "text", len, binary ? "binary" : "text");
            fail("echo differs: %s", d);
            close_all();
            return;
        }
        if (++next_msg == nmsgs)
            close_all();
        else
            send_msg(next_msg);
        return;
    }
    size_t me = client_index(weft_conn_client(c));
    bool found = false;
    for (size_t i = 0; i < nmsgs && !found; i++)
        found = msgs[i].len == len && msgs[i].binary == binary && !memcmp(msgs[i].data, data, len);
    if (!found)
        fail("room: a delivery matches no message sent%s", NULL);
    if (++got[me] == nmsgs) {
        bool all = true;
        for (size_t i = 0; i < nclients; i++)
            all = all && got[i] == nmsgs;
        if (all)
            close_all();
    }
}

/* Client callback: an error. Expected only with --expect-fail (as WEFT_ERR_PROTO). */
static void on_error(struct weft_client *cl, int err, const char *reason, int status)
{
    (void)cl;
    (void)status;
    if (expect_fail && err == WEFT_ERR_PROTO && !opened) {
        proto_error = true;
        snprintf(why, sizeof why, "%s", reason);
        return;
    }
    fail("client error: %s", reason);
}

/* Client callback: ended. The loop stops once every client has. */
static void on_end(struct weft_client *cl)
{
    (void)cl;
    if (++nended == nclients)
        weft_loop_stop(loop);
}

/* Parses the options, runs the scenario, prints the outcome. */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: deflate_client URL [options]\n", stderr);
        return 2;
    }
    struct weft_client_options o;
    memset(&o, 0, sizeof o);
    o.deflate.enabled = true;
    o.max_message = 17u << 20; /* 16 MiB payloads plus incompressible overhead */
    size_t max = 65536;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--off"))
            o.deflate.enabled = false;
        else if (!strcmp(a, "--nct"))
            o.deflate.no_context_takeover = true;
        else if (!strcmp(a, "--peer-nct"))
            o.deflate.peer_no_context_takeover = true;
        else if (!strcmp(a, "--expect-fail"))
            expect_fail = true;
        else if (!strcmp(a, "--bits") && ++i)
            o.deflate.max_window_bits = (uint8_t)atoi(v);
        else if (!strcmp(a, "--peer-bits") && ++i)
            o.deflate.peer_max_window_bits = (uint8_t)atoi(v);
        else if (!strcmp(a, "--mem") && ++i)
            o.deflate.mem_level = atoi(v);
        else if (!strcmp(a, "--level") && ++i)
            o.deflate.level = atoi(v);
        else if (!strcmp(a, "--threshold") && ++i)
            o.deflate.threshold = (size_t)atol(v);
        else if (!strcmp(a, "--cacert") && ++i)
            o.tls_cacert_file = v;
        else if (!strcmp(a, "--max") && ++i)
            max = (size_t)atol(v);
        else if (!strcmp(a, "--room") && ++i) {
            room_mode = true;
            nclients = (size_t)atoi(v);
            if (nclients < 1 || nclients > MAX_ROOM)
                nclients = 2;
        } else {
            fprintf(stderr, "deflate_client: unknown option %s\n", a);
            return 2;
        }
    }
    static const size_t sizes[] = {0,      1,      125,           126,      1000,
                                   65535,  65536,  200000,        1u << 20, 16u << 20};
    size_t nsizes = sizeof sizes / sizeof sizes[0];
    msgs = calloc(2 * (room_mode ? nclients : nsizes), sizeof *msgs);
    if (!msgs)
        return 1;
    if (room_mode) {
        for (size_t i = 0; i < nclients; i++) {
            make_msg(&msgs[nmsgs++], 2000 + i, false, i);
            make_msg(&msgs[nmsgs++], 3000 + i, true, i);
        }
    } else {
        for (size_t i = 0; i < nsizes && sizes[i] <= max; i++) {
            make_msg(&msgs[nmsgs++], sizes[i], false, i);
            make_msg(&msgs[nmsgs++], sizes[i], true, i);
        }
    }
    alarm(120); /* a hang ends the test (killed by SIGALRM, a failure) */
    loop = weft_loop_new();
    o.handlers.on_open = on_open;
    o.handlers.on_message = on_message;
    o.on_error = on_error;
    o.on_end = on_end;
    for (size_t i = 0; i < nclients; i++) {
        int err;
        clients[i] = weft_connect(loop, argv[1], &o, &err);
        if (!clients[i]) {
            printf("FAIL weft_connect: %s\n", weft_strerror(err));
            return 1;
        }
    }
    weft_loop_run(loop);
    for (size_t i = 0; i < nclients; i++)
        weft_client_free(clients[i]);
    for (int i = 0; i < 3; i++)
        weft_loop_poll(loop, 10);
    weft_loop_free(loop);
    for (size_t i = 0; i < nmsgs; i++)
        free(msgs[i].data);
    free(msgs);
    if (expect_fail && !failed && !proto_error)
        fail("the client did not report WEFT_ERR_PROTO%s", NULL);
    if (!failed && !expect_fail && !room_mode && next_msg != nmsgs)
        fail("the connection ended before every echo came back%s", NULL);
    if (!failed && room_mode)
        for (size_t i = 0; i < nclients; i++)
            if (got[i] != nmsgs)
                fail("room: a member missed deliveries%s", NULL);
    if (failed) {
        printf("FAIL %s\n", why);
        return 1;
    }
    printf("ok %s\n", expect_fail ? why : room_mode ? "room" : "echo");
    return 0;
}
