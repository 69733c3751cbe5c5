/*
 * defaults.h — the library's defaults for servers and clients, in one place (include/weft.h
 * documents them next to each field of weft_server_config and weft_client_options). A zero
 * field means "the default"; server.c and client.c fill zeros from these values.
 */
#ifndef WEFT_WS_DEFAULTS_H
#define WEFT_WS_DEFAULTS_H

/* Servers and clients alike. */
#define WEFT_DEF_HANDSHAKE_TIMEOUT_MS 10000
#define WEFT_DEF_PONG_TIMEOUT_MS 10000
#define WEFT_DEF_CLOSE_TIMEOUT_MS 5000
#define WEFT_DEF_MAX_BACKPRESSURE (1024u * 1024)

/* Servers. */
#define WEFT_DEF_PORT 8080
#define WEFT_DEF_SERVER_MAX_MESSAGE (1u * 1024 * 1024)

/* Clients. */
#define WEFT_DEF_CLIENT_MAX_MESSAGE (16u * 1024 * 1024)
#define WEFT_DEF_CONNECT_TIMEOUT_MS 10000
#define WEFT_DEF_BACKOFF_BASE_MS 250
#define WEFT_DEF_BACKOFF_CAP_MS 30000
#define WEFT_DEF_RESET_AFTER_MS 5000
#define WEFT_DEF_TRY_AGAIN_MS 5000
#define WEFT_DEF_EYEBALL_DELAY_MS 250 /* happy eyeballs: the next address after this long */

#endif
