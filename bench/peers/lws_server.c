/*
 * lws_server.c — a libwebsockets peer for `make bench`: the same routes as `weft serve`.
 *
 *   /echo         echoes every message with its type (text/binary)
 *   /ws/<room>    each message goes to every other member of <room> (/ws alone: "lobby")
 *
 * Written the way the libwebsockets documentation prescribes: one service thread, messages
 * queued per connection and written one per LWS_CALLBACK_SERVER_WRITEABLE; a broadcast
 * message is allocated once (with LWS_PRE headroom) and shared by reference among the
 * members' queues. No UTF-8 validation option. Plain ws:// without compression unless asked:
 *
 * usage: lws_server [--cert FILE --key FILE] [--deflate] [PORT]   (0 or none = any free port)
 *   --cert, --key  serve wss:// with this PEM certificate and key (lws' OpenSSL backend:
 *                  ssl_cert_filepath, ssl_private_key_filepath and
 *                  LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT)
 *   --deflate      accept permessage-deflate (RFC 7692) through lws' own extension,
 *                  lws_extension_callback_pm_deflate, with its default parameters
 * Prints "lws <version>: listening on 127.0.0.1:PORT" on stderr when ready. Stopped by
 * SIGTERM (default action). Built by bench/run with cc and pkg-config libwebsockets.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUEUE 65536 /* messages waiting per connection before new ones are dropped */

/* A message shared by the queues of its recipients. */
struct msg {
    int refs;
    int binary;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct room;

/* Per-connection state (allocated by lws: protocols[0].per_session_data_size). */
struct pss {
    struct lws *wsi;
    struct room *room; /* NULL on /echo */
    struct pss *prev, *next;
    struct msg **q; /* ring of queued messages */
    size_t qhead, qlen, qcap;
    unsigned char *rx; /* a message arriving in fragments */
    size_t rxlen, rxcap;
};

struct room {
    struct room *next;
    struct pss *members;
    char name[300];
};

static struct room *rooms;

/* Drops one reference to m. */
static void msg_unref(struct msg *m)
{
    if (--m->refs == 0)
        free(m);
}

/* Returns a new message holding a copy of data with refs references. */
static struct msg *msg_new(const void *data, size_t len, int binary, int refs)
{
    struct msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return NULL;
    m->refs = refs;
    m->binary = binary;
    m->len = len;
    memcpy(m->buf + LWS_PRE, data, len);
    return m;
}

/* Appends m to p's queue and asks for a writeable callback. Returns 0, or -1 if dropped. */
static int enqueue(struct pss *p, struct msg *m)
{
    if (p->qlen == p->qcap) {
        if (p->qcap >= MAX_QUEUE)
            return -1;
        size_t cap = p->qcap ? p->qcap * 2 : 8;
        struct msg **q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < p->qlen; i++)
            q[i] = p->q[(p->qhead + i) % p->qcap];
        free(p->q);
        p->q = q;
        p->qhead = 0;
        p->qcap = cap;
    }
    p->q[(p->qhead + p->qlen) % p->qcap] = m;
    p->qlen++;
    lws_callback_on_writable(p->wsi);
    return 0;
}

/* Finds or creates the room called name. */
static struct room *room_get(const char *name)
{
    for (struct room *r = rooms; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    struct room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->next = rooms;
    rooms = r;
    return r;
}

/* A whole message from p: echo it, or share it with the other members of p's room. */
static void on_message(struct pss *p, const void *data, size_t len, int binary)
{
    if (!p->room) {
        struct msg *m = msg_new(data, len, binary, 1);
        if (m && enqueue(p, m) != 0)
            msg_unref(m);
        return;
    }
    int n = 0;
    for (struct pss *o = p->room->members; o; o = o->next)
        n += o != p;
    if (n == 0)
        return;
    struct msg *m = msg_new(data, len, binary, n);
    if (!m)
        return;
    for (struct pss *o = p->room->members; o; o = o->next)
        if (o != p && enqueue(o, m) != 0)
            msg_unref(m);
}

/* The protocol callback of every WebSocket connection (and lws' default HTTP handling). */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        char uri[300];
        memset(p, 0, sizeof *p);
        p->wsi = wsi;
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0)
            return -1;
        if (!strcmp(uri, "/echo"))
            return 0;
        const char *name = !strncmp(uri, "/ws/", 4) && uri[4] ? uri + 4
                           : !strcmp(uri, "/ws")              ? "lobby"
                                                              : NULL;
        if (!name)
            return -1;
        p->room = room_get(name);
        if (!p->room)
            return -1;
        p->next = p->room->members;
        if (p->next)
            p->next->prev = p;
        p->room->members = p;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
        int done = final && lws_remaining_packet_payload(wsi) == 0;
        if (first && done) { /* the common case: the whole message at once */
            on_message(p, in, len, lws_frame_is_binary(wsi));
            return 0;
        }
        if (first)
            p->rxlen = 0;
        if (p->rxlen + len > p->rxcap) {
            size_t cap = p->rxcap ? p->rxcap : 4096;
            while (cap < p->rxlen + len)
                cap *= 2;
            unsigned char *nb = realloc(p->rx, cap);
            if (!nb)
                return -1;
            p->rx = nb;
            p->rxcap = cap;
        }
        memcpy(p->rx + p->rxlen, in, len);
        p->rxlen += len;
        if (done)
            on_message(p, p->rx, p->rxlen, lws_frame_is_binary(wsi));
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (!p->qlen)
            return 0;
        struct msg *m = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
        int w = lws_write(wsi, m->buf + LWS_PRE, m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        msg_unref(m);
        if (w < 0)
            return -1;
        if (p->qlen)
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        if (p->room) {
            if (p->prev)
                p->prev->next = p->next;
            else
                p->room->members = p->next;
            if (p->next)
                p->next->prev = p->prev;
        }
        while (p->qlen) {
            msg_unref(p->q[p->qhead]);
            p->qhead = (p->qhead + 1) % p->qcap;
            p->qlen--;
        }
        free(p->q);
        free(p->rx);
        p->q = NULL;
        p->rx = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"weft-bench", callback, sizeof(struct pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* permessage-deflate as the libwebsockets examples declare it (offered by the server when the
 * client asks; lws' defaults for the window bits, memory level and context takeover). */
static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

/* Parses the options, starts the context on 127.0.0.1:PORT and services it until killed. */
int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    const char *cert = NULL, *key = NULL;
    int deflate = 0;
    memset(&info, 0, sizeof info);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cert") && i + 1 < argc)
            cert = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key = argv[++i];
        else if (!strcmp(argv[i], "--deflate"))
            deflate = 1;
        else if (argv[i][0] != '-')
            info.port = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: lws_server [--cert FILE --key FILE] [--deflate] [PORT]\n");
            return 2;
        }
    }
    if (!cert != !key) {
        fprintf(stderr, "lws_server: --cert and --key go together\n");
        return 2;
    }
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cert) {
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = key;
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    }
    if (deflate)
        info.extensions = extensions;
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_server: cannot create the context\n");
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
    int port = vh ? lws_get_vhost_listen_port(vh) : info.port;
    fprintf(stderr, "lws %s: listening on 127.0.0.1:%d\n", lws_get_library_version(), port);
    fflush(stderr);
    while (lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
