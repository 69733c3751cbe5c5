/*
 * redis.h — the Redis broker (redis.c) behind broker.h: `weft serve --redis
 * redis://host[:port][/db]`.
 */
#ifndef WEFT_HUB_BROKERS_REDIS_H
#define WEFT_HUB_BROKERS_REDIS_H

#include <stddef.h>

struct broker;
struct hub;

/* Parses a redis:// URL into host[0..hcap), *port and *db. Returns 0, or -1 with err filled. */
int redis_parse_url(const char *url, char *host, size_t hcap, int *port, int *db, char *err,
                    size_t cap);
/* Creates h's Redis broker for url (h->broker) and starts connecting (in the background, with
 * retries). Returns it, or NULL with err filled (bad URL, out of memory). */
struct broker *redis_broker_new(struct hub *h, const char *url, char *err, size_t cap);

#endif
