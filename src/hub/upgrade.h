/*
 * upgrade.h — the upgrade path of the hub's WebSocket routes: every check a handshake passes
 * (per-IP handshake rate and connection limits, Origin, the bearer token, the room limit)
 * before it is accepted with a new struct hconn, or refused with a status, a log line and a
 * counter. The route_user of each handler is the struct hub.
 */
#ifndef WEFT_HUB_UPGRADE_H
#define WEFT_HUB_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include <weft.h>

/* on_upgrade of /hub. */
void upgrade_hub(struct weft_request *req, void *route_user);
/* on_upgrade of /ws and /ws/<room>. */
void upgrade_room(struct weft_request *req, void *route_user);
/* on_upgrade of /echo. */
void upgrade_echo(struct weft_request *req, void *route_user);
/* Finds the first non-empty "token=" value of the query string q[0..len) (q may be NULL) and
 * percent-decodes it (pct.h, '+' a space) into out[0..cap) (NUL-terminated). Returns false
 * when there is none or it does not decode. Pure (no request): the fuzz target
 * tests/fuzz/fuzz_decode.c calls it. */
bool hub_query_token(const char *q, size_t len, char *out, size_t cap);

#endif
