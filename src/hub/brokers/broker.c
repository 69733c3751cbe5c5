/*
 * broker.c — the choice of a broker by its URL's scheme (broker.h).
 */
#include <stdio.h>
#include <string.h>

#include "hub/broker.h"
#include "hub/brokers/redis.h"

/* Creates the broker of url's scheme; see broker.h. */
struct broker *broker_new(struct hub *h, const char *url, char *err, size_t cap)
{
    if (!strncmp(url, "redis://", 8)) return redis_broker_new(h, url, err, cap);
    snprintf(err, cap, "--redis: expected redis://host[:port][/db], got \"%s\"", url);
    return NULL;
}

/* Checks a broker URL; see broker.h. */
int broker_check_url(const char *url, char *err, size_t cap)
{
    char host[256];
    int port, db;
    return redis_parse_url(url, host, sizeof host, &port, &db, err, cap);
}
