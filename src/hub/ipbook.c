/*
 * ipbook.c — the per-IP book (ipbook.h): a hash table of client IPs under one mutex (the
 * workers share it; with one worker the lock is never contended).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hub/clock.h"
#include "hub/hash.h"
#include "hub/ipbook.h"

#define IP_BUCKETS 1024 /* a power of two */

/* Open connections of one client IP, and its handshake token bucket (--handshake-rate). An
 * entry lives while the IP has connections or its bucket is not full again. */
struct ipcount {
    struct ipcount *next;
    uint32_t n;
    double tokens;   /* handshakes the IP may start now */
    uint64_t tok_ms; /* when tokens was last refilled (monotonic ms) */
    char ip[];
};

struct ipbook {
    pthread_mutex_t lock;
    double rate;  /* handshakes per second per IP, <= 0: off */
    double burst; /* the bucket size */
    struct ipcount *buckets[IP_BUCKETS];
};

/* Creates an empty book; see ipbook.h. */
struct ipbook *ipbook_new(double handshake_rate, double handshake_burst)
{
    struct ipbook *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->lock, NULL);
    b->rate = handshake_rate;
    double burst = handshake_burst > 0 ? handshake_burst : 2 * handshake_rate;
    b->burst = burst < 1 ? 1 : burst;
    return b;
}

/* Frees the book and its entries; see ipbook.h. */
void ipbook_free(struct ipbook *b)
{
    if (!b) return;
    for (size_t i = 0; i < IP_BUCKETS; i++)
        while (b->buckets[i]) {
            struct ipcount *e = b->buckets[i];
            b->buckets[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* The entry of ip (NULL if none), with the link that points to it in *pp. Locked. */
static struct ipcount *ip_find(struct ipbook *b, const char *ip, struct ipcount ***pp)
{
    struct ipcount **p = &b->buckets[hub_fnv1a_str(ip) & (IP_BUCKETS - 1)];
    while (*p && strcmp((*p)->ip, ip))
        p = &(*p)->next;
    if (pp) *pp = p;
    return *p;
}

/* Refills e's handshake bucket up to now_ms (no-op without a handshake rate). */
static void ip_refill(const struct ipbook *b, struct ipcount *e, uint64_t now_ms)
{
    if (b->rate <= 0 || now_ms <= e->tok_ms) return;
    e->tokens += (double)(now_ms - e->tok_ms) / 1000.0 * b->rate;
    e->tok_ms = now_ms;
    if (e->tokens > b->burst) e->tokens = b->burst;
}

/* True if entry e may be freed: no connection, and no handshake bucket or a full one
 * (forgetting it then changes nothing). Refills the bucket. */
static bool ip_idle(const struct ipbook *b, struct ipcount *e, uint64_t now_ms)
{
    if (e->n) return false;
    if (b->rate <= 0) return true;
    ip_refill(b, e, now_ms);
    return e->tokens >= b->burst;
}

/* Creates the entry of ip at *pp with a full bucket. Returns it, or NULL (out of memory). */
static struct ipcount *ip_new(const struct ipbook *b, struct ipcount **pp, const char *ip)
{
    size_t n = strlen(ip) + 1;
    struct ipcount *e = calloc(1, sizeof *e + n);
    if (!e) return NULL;
    memcpy(e->ip, ip, n);
    e->tokens = b->burst;
    e->tok_ms = hub_mono_ms();
    *pp = e;
    return e;
}

/* Takes a handshake token; see ipbook.h. */
uint32_t ipbook_handshake_wait(struct ipbook *b, const char *ip)
{
    if (b->rate <= 0) return 0;
    uint32_t wait = 0;
    pthread_mutex_lock(&b->lock);
    struct ipcount **pp;
    struct ipcount *e = ip_find(b, ip, &pp);
    if (!e) e = ip_new(b, pp, ip);
    if (e) {
        ip_refill(b, e, hub_mono_ms());
        if (e->tokens >= 1) {
            e->tokens -= 1;
        } else {
            double s = ceil((1 - e->tokens) / b->rate);
            wait = s < 1 ? 1 : s > 86400 ? 86400 : (uint32_t)s;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return wait;
}

/* Frees the idle entries; see ipbook.h. */
void ipbook_sweep(struct ipbook *b)
{
    uint64_t now = hub_mono_ms();
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < IP_BUCKETS; i++)
        for (struct ipcount **pp = &b->buckets[i]; *pp;) {
            struct ipcount *e = *pp;
            if (ip_idle(b, e, now)) {
                *pp = e->next;
                free(e);
            } else {
                pp = &e->next;
            }
        }
    pthread_mutex_unlock(&b->lock);
}

/* Open connections from ip; see ipbook.h. */
uint32_t ipbook_count(struct ipbook *b, const char *ip)
{
    pthread_mutex_lock(&b->lock);
    struct ipcount *e = ip_find(b, ip, NULL);
    uint32_t n = e ? e->n : 0;
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* Adds one connection for ip; see ipbook.h. */
void ipbook_inc(struct ipbook *b, const char *ip)
{
    pthread_mutex_lock(&b->lock);
    struct ipcount **pp;
    struct ipcount *e = ip_find(b, ip, &pp);
    if (e || (e = ip_new(b, pp, ip))) e->n++;
    pthread_mutex_unlock(&b->lock);
}

/* Removes one connection for ip; see ipbook.h. */
void ipbook_dec(struct ipbook *b, const char *ip)
{
    pthread_mutex_lock(&b->lock);
    struct ipcount **pp;
    struct ipcount *e = ip_find(b, ip, &pp);
    if (e && e->n) {
        e->n--;
        if (ip_idle(b, e, hub_mono_ms())) {
            *pp = e->next;
            free(e);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

/* The address part of a remote; see ipbook.h. */
void ipbook_ip_of(const char *remote, char *out, size_t cap)
{
    const char *s = remote ? remote : "?";
    size_t n;
    if (*s == '[') {
        s++;
        n = strcspn(s, "]");
    } else {
        const char *colon = strrchr(s, ':');
        n = colon ? (size_t)(colon - s) : strlen(s);
    }
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}
