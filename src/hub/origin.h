/*
 * origin.h — the Origin rules of every WebSocket upgrade (--allow-origin). Pure: reads the
 * request's headers and the configuration, nothing else.
 */
#ifndef WEFT_HUB_ORIGIN_H
#define WEFT_HUB_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#include <weft.h>

#include "hub/hub.h"

/* True if the request's Origin origin[0..len) is allowed: no Origin header (origin NULL:
 * non-browser clients send none), the same origin as the Host header (the web page weft
 * serves), or one matching an --allow-origin pattern of cfg ('*': any). */
bool origin_allowed(const struct hub_config *cfg, struct weft_request *req, const char *origin,
                    size_t len);

#endif
