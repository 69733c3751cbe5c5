/*
 * ipbook.h — the per-IP book: open connections of each client IP (--max-connections-per-ip)
 * and its handshake token bucket (--handshake-rate). One book per process: with several
 * workers they share it (it locks itself). It knows nothing of hubs or connections: the
 * upgrade path asks it, the connection lifecycle counts into it.
 */
#ifndef WEFT_HUB_IPBOOK_H
#define WEFT_HUB_IPBOOK_H

#include <stddef.h>
#include <stdint.h>

struct ipbook;

/* Creates an empty book for a handshake rate (per second per IP, <= 0: off) and burst (<= 0:
 * twice the rate; at least 1). Returns it, or NULL (out of memory). */
struct ipbook *ipbook_new(double handshake_rate, double handshake_burst);
/* Frees the book and every entry (NULL: no-op). */
void ipbook_free(struct ipbook *b);
/* --handshake-rate: takes one token from ip's bucket. Returns 0 when the handshake may go on
 * (also when the rate is off, or out of memory), else the seconds until a token is back (at
 * least 1), for Retry-After. */
uint32_t ipbook_handshake_wait(struct ipbook *b, const char *ip);
/* Open connections from ip. */
uint32_t ipbook_count(struct ipbook *b, const char *ip);
/* Adds one connection for ip (not counted if out of memory). */
void ipbook_inc(struct ipbook *b, const char *ip);
/* Removes one connection for ip; frees its entry at zero unless its handshake bucket still
 * matters. */
void ipbook_dec(struct ipbook *b, const char *ip);
/* Frees the entries with no connection and a full (or no) handshake bucket. */
void ipbook_sweep(struct ipbook *b);
/* Copies the address part of "IP:PORT" / "[IP]:PORT" / "unix" (remote may be NULL: "?")
 * into out[0..cap). */
void ipbook_ip_of(const char *remote, char *out, size_t cap);

#endif
