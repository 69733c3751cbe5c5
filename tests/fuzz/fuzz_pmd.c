/*
 * fuzz_pmd.c — libFuzzer target for permessage-deflate negotiation (RFC 7692): the server
 * reading a client's Sec-WebSocket-Extensions offer (weft_pmd_negotiate) and the client
 * reading the server's answer (weft_pmd_accept).
 *
 * Input: byte 0 = flags of the configuration, byte 1 = window bits (low nibble ours, high
 * nibble the peer's), byte 2 = the size of the answer buffer; the rest is the header value,
 * given to both sides. Properties checked:
 *  - the server accepts at most within its configuration: agreed windows 8..15 and not above
 *    what it allows, no context takeover where it imposes it; its answer fits the buffer and
 *    a client that offered everything accepts it back with the same parameters;
 *  - the client never accepts a server window above the one it asked for, nor an answer
 *    without server_no_context_takeover when it asked for it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The window a configuration value stands for (0 = 15, clamped to lo..15). */
static int window_of(int bits, int lo)
{
    return bits == 0 ? 15 : bits < lo ? lo : bits > 15 ? 15 : bits;
}

/* Server side: negotiate, then check the answer from a permissive client. */
static void check_server(const char *text, size_t len, const struct weft_pmd_config *cfg,
                         size_t cap)
{
    char out[512];
    struct weft_pmd_params agreed;
    memset(&agreed, 0xa5, sizeof agreed);
    int r = weft_pmd_negotiate(text, len, cfg, &agreed, out, cap);
    if (r != 0 && r != 1 && r != WEFT_ERR_SPACE) abort();
    if (!cfg->enabled && r != 0) abort();
    if (r != 1) return;
    size_t n = strlen(out);
    if (n + 1 > cap || strncmp(out, "permessage-deflate", 18) != 0) abort();
    int ours = window_of(cfg->max_window_bits, 9), peer = window_of(cfg->peer_max_window_bits, 8);
    if (agreed.server_max_window_bits < 8 || agreed.server_max_window_bits > ours) abort();
    if (agreed.client_max_window_bits < 8 || agreed.client_max_window_bits > 15) abort();
    if (agreed.client_max_window_bits_set && agreed.client_max_window_bits > peer) abort();
    if (cfg->no_context_takeover && !agreed.server_no_context_takeover) abort();
    if (cfg->peer_no_context_takeover && !agreed.client_no_context_takeover) abort();
    /* A client that offered every parameter with the widest windows accepts the answer. */
    struct weft_pmd_config client = {
        .enabled = true, .max_window_bits = 15, .peer_max_window_bits = 15};
    struct weft_pmd_params back;
    if (weft_pmd_accept(out, n, &client, &back) != 0) abort();
    if (back.server_no_context_takeover != agreed.server_no_context_takeover ||
        back.client_no_context_takeover != agreed.client_no_context_takeover ||
        back.server_max_window_bits != agreed.server_max_window_bits ||
        (agreed.client_max_window_bits_set && agreed.client_max_window_bits < 15 &&
         back.client_max_window_bits != agreed.client_max_window_bits))
        abort();
}

/* Client side: accept the answer and check it against what was asked. */
static void check_client(const char *text, size_t len, const struct weft_pmd_config *cfg)
{
    struct weft_pmd_params agreed;
    int r = weft_pmd_accept(text, len, cfg, &agreed);
    if (r != 0 && r != WEFT_ERR_PROTO) abort();
    if (r != 0) return;
    int ours = window_of(cfg->max_window_bits, 9), peer = window_of(cfg->peer_max_window_bits, 8);
    if (agreed.server_max_window_bits < 8 || agreed.server_max_window_bits > peer) abort();
    if (agreed.client_max_window_bits < 8 || agreed.client_max_window_bits > ours) abort();
    if (cfg->peer_no_context_takeover && !agreed.server_no_context_takeover) abort();
    if (cfg->no_context_takeover && !agreed.client_no_context_takeover) abort();
    /* Our own offer is well formed and its parameters are what a server reads back. */
    char offer[256];
    int n = weft_pmd_offer(cfg, offer, sizeof offer);
    if (n <= 0) abort();
    struct weft_pmd_config server = {.enabled = true};
    struct weft_pmd_params got;
    char answer[256];
    if (weft_pmd_negotiate(offer, (size_t)n, &server, &got, answer, sizeof answer) != 1) abort();
    if (got.server_no_context_takeover != cfg->peer_no_context_takeover ||
        got.client_no_context_takeover != cfg->no_context_takeover)
        abort();
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    struct weft_pmd_config cfg = {
        .enabled = (data[0] & 1) == 0,
        .no_context_takeover = (data[0] & 2) != 0,
        .peer_no_context_takeover = (data[0] & 4) != 0,
        .max_window_bits = (uint8_t)(data[1] & 15),
        .peer_max_window_bits = (uint8_t)(data[1] >> 4),
    };
    size_t cap = (size_t)data[2] + 1;
    if (cap > 512) cap = 512;
    size_t len = size - 3;
    char *text = malloc(len ? len : 1); /* exactly sized: reads past the end are caught */
    if (!text) return 0;
    memcpy(text, data + 3, len);
    check_server(text, len, &cfg, cap);
    check_client(text, len, &cfg);
    free(text);
    return 0;
}
