/*
 * bench.c — `weft bench URL`: sets a run up (connections, senders, buffers, TLS, deflate,
 * hub requests), resolves the server, runs the loop, prints the report and frees everything.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"

#include "cli/bench/bench.h"

/* Raises RLIMIT_NOFILE to the hard limit; warns if it cannot fit n connections. */
static void raise_nofile(long n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 16 > rl.rlim_cur)
        fprintf(stderr,
                "weft bench: warning: the open-file limit (%llu) is below %ld connections; "
                "the rest will fail\n",
                (unsigned long long)rl.rlim_cur, n);
}

/* Allocates the connections, senders and buffers. Returns false when out of memory. */
static bool setup(struct bench *b)
{
    if (b->o.tls && b->o.insecure && !b->o.json)
        fputs("weft bench: warning: --insecure: the server's certificate is not verified\n",
              stderr);
    b->nconns = b->o.conns;
    b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
    b->rbuf = malloc(RBUF_SIZE);
    b->payload = malloc((size_t)b->o.size + 1);
    if (!b->conns || !b->rbuf || !b->payload) return false;
    for (long i = 0; i < b->nconns; i++) {
        b->conns[i].fd = -1;
        b->conns[i].idx = (uint32_t)i;
    }
    fill_payload(b);
    b->limits =
        (struct weft_msg_limits){.frame = {.role = WEFT_ROLE_CLIENT}, .validate_utf8 = false};
    if (b->o.accept_masked)
        b->limits.frame.role = (enum weft_role)2; /* neither role's mask rule: unmasked as sent */
    if (b->o.deflate) {
        b->pmd.enabled = true; /* the server decides on context takeover and windows */
        b->zin = malloc(ZIN_CAP);
        if (!b->zin || weft_pmd_offer(&b->pmd, b->pmd_offer, sizeof b->pmd_offer) < 0) return false;
        b->limits.frame.allowed_rsv = 4;
    }
    if (b->o.tls && !tls_setup(b)) return false;
    if (b->o.mode == MODE_HUB && !hub_setup(b)) return false;
    if (room_like(b)) {
        b->nsenders = b->o.senders;
        b->senders = calloc((size_t)b->nsenders, sizeof *b->senders);
        if (!b->senders) return false;
        for (long i = 0; i < b->nsenders; i++) {
            struct sender *s = &b->senders[i];
            s->conn = &b->conns[i];
            s->conn->sender = true;
            s->conn->sender_idx = (uint32_t)i;
            s->remaining = calloc((size_t)b->o.window, sizeof *s->remaining);
            s->gen = calloc((size_t)b->o.window, sizeof *s->gen);
            s->sent_at = calloc((size_t)b->o.window, sizeof *s->sent_at);
            if (!s->remaining || !s->gen || !s->sent_at) return false;
        }
    }
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    return b->ep >= 0;
}

/* Frees everything setup() allocated. */
static void teardown(struct bench *b)
{
    if (b->conns)
        for (long i = 0; i < b->nconns; i++) {
            SSL_free(b->conns[i].ssl);
            weft_deflater_free(b->conns[i].defl);
            weft_inflater_free(b->conns[i].infl);
            if (b->conns[i].fd >= 0) close(b->conns[i].fd);
            free(b->conns[i].out);
            free(b->conns[i].hs);
        }
    for (size_t i = 0; i < 16; i++)
        weft_deflater_free(b->shared_defl[i]);
    weft_inflater_free(b->shared_infl);
    free(b->zbuf);
    free(b->zin);
    SSL_CTX_free(b->ssl_ctx);
    for (long i = 0; b->senders && i < b->nsenders; i++) {
        free(b->senders[i].remaining);
        free(b->senders[i].gen);
        free(b->senders[i].sent_at);
    }
    free(b->senders);
    free(b->heads);
    free(b->hub_join);
    free(b->hub_buf);
    free(b->conns);
    free(b->rbuf);
    free(b->payload);
    if (b->ep >= 0) close(b->ep);
}

/* `weft bench`: see usage(). Returns the exit status. */
int cmd_bench(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (!b) {
        fputs("weft bench: out of memory\n", stderr);
        return 1;
    }
    b->ep = -1;
    int rc = parse_options(b, argc, argv);
    if (rc < 0)
        rc = parse_url(b, b->o.url);
    else
        goto out;
    if (rc != 0) goto out;
    if (bench_resolve(b) != 0) {
        rc = 1;
        goto out;
    }
    if (b->o.local_lo && b->addr.ss_family != AF_INET) {
        rc = cli_usage_error("bench", "--local-addr is IPv4, the server's address is not");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(b->o.conns);
    if (!setup(b)) {
        fputs("weft bench: out of memory\n", stderr);
        rc = 1;
        goto out;
    }
    b->tty = isatty(2);
    b->rss_before = b->o.server_pid ? proc_rss_kib(b->o.server_pid) : -1;
    b->rss_after = -1;
    if (b->o.server_pid && (b->rss_before < 0 || proc_cpu_s(b->o.server_pid) < 0)) {
        fprintf(stderr, "weft bench: cannot read /proc/%ld: no such process?\n", b->o.server_pid);
        rc = 1;
        goto out;
    }
    hist_reset(&b->lat);
    rc = bench_run(b);
    if (rc == 0) {
        if (b->o.json && report_json(b) < 0)
            rc = 1;
        else if (!b->o.json)
            report_text(b);
        fflush(stdout);
        bool measured = b->o.mode == MODE_IDLE ? b->peak_open > 0 : b->c.msgs > 0;
        if (!measured) {
            fprintf(stderr, "weft bench: nothing was measured (%s)\n",
                    b->peak_open ? "no messages came back" : "no connection could be opened");
            rc = 1;
        }
    }
out:
    teardown(b);
    free(b);
    return rc;
}
