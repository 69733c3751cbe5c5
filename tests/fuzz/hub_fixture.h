/*
 * hub_fixture.h — a real hub for the fuzz targets that need one (fuzz_hub, fuzz_redis): one
 * loop, a hub listening on 127.0.0.1 (any free port, one worker, auth on with a fixed secret)
 * and one /hub WebSocket connection to it from a plain socket of this process. Targets then
 * call the hub's handlers directly with the server side of that connection (its struct
 * hconn); what the hub sends is read from the socket and discarded by fixture_drain.
 * Everything is created once per process and lives until it exits.
 */
#ifndef WEFT_FUZZ_HUB_FIXTURE_H
#define WEFT_FUZZ_HUB_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/internal.h"

#define FIXTURE_SECRET "fuzz-secret-0123456789abcdef"
/* exp of the fixture connection's token (2100-01-01): far enough never to expire. */
#define FIXTURE_EXP INT64_C(4102444800)

struct fixture {
    struct weft_loop *loop;
    struct hub *h;
    int fd; /* the client end of the /hub connection */
};

static struct fixture fx;

/* Reads and discards everything the hub sent; runs the loop once without waiting. */
static void fixture_drain(void)
{
    weft_loop_poll(fx.loop, 0);
    char buf[65536];
    while (read(fx.fd, buf, sizeof buf) > 0) {
    }
}

/* An HS256 token for sub signed with FIXTURE_SECRET, expiring at FIXTURE_EXP. Returns a
 * malloc'd string or NULL. */
static char *fixture_mint(const char *sub)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "sub", sub) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)FIXTURE_EXP) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)FIXTURE_SECRET,
                    (int)strlen(FIXTURE_SECRET)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/* Opens the /hub connection (a token for "fuzzer" in the Authorization header) and waits
 * (up to 10 s) until the hub has it open. Returns its hconn; aborts on failure. */
static struct hconn *fixture_connect(void)
{
    if (fx.fd > 0) close(fx.fd);
    fx.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(hub_port(fx.h))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fx.fd < 0 || connect(fx.fd, (struct sockaddr *)&sa, sizeof sa) != 0) abort();
    char *tok = fixture_mint("fuzzer");
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /hub HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
                     tok ? tok : "");
    free(tok);
    if (n <= 0 || write(fx.fd, req, (size_t)n) != n) abort();
    fcntl(fx.fd, F_SETFL, fcntl(fx.fd, F_GETFL) | O_NONBLOCK);
    uint64_t end = hub_mono_ns() + UINT64_C(10000000000);
    while (!(fx.h->conns && fx.h->conns->open)) {
        if (hub_mono_ns() > end) abort();
        weft_loop_poll(fx.loop, 10);
    }
    fixture_drain();
    return fx.h->conns;
}

/* The hub's end of the /hub connection, (re)connecting when there is none. */
static struct hconn *fixture_conn(void)
{
    if (!fx.h) {
        signal(SIGPIPE, SIG_IGN);
        fx.loop = weft_loop_new();
        struct hub_config cfg;
        hub_config_defaults(&cfg);
        free(cfg.host);
        cfg.host = strdup("127.0.0.1");
        cfg.port = 0;
        cfg.workers = 1;
        cfg.auth_secret = strdup(FIXTURE_SECRET);
        cfg.log_level = WEFT_LOG_ERROR;
        cfg.history_size = 8;
        cfg.max_rooms = 8;
        FILE *log = fopen("/dev/null", "w");
        char err[256];
        if (!fx.loop || !log) abort();
        fx.h = hub_new(fx.loop, &cfg, log, err, sizeof err);
        if (!fx.h) {
            fprintf(stderr, "hub_new: %s\n", err);
            abort();
        }
        hub_config_free(&cfg);
    }
    if (!(fx.h->conns && fx.h->conns->open)) return fixture_connect();
    return fx.h->conns;
}

#endif
