/*
 * conn.h — the life of a hub connection (struct hconn, internal.h) after its upgrade: the
 * weft_ws_handlers every route uses, and what the other parts do to a connection (send,
 * close, release, the token's expiry). Below it: the per-IP book, rooms, the /hub protocol
 * and the broker it hands messages and ends to.
 */
#ifndef WEFT_HUB_CONN_H
#define WEFT_HUB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft.h>

struct hconn;
struct hconn_auth;

/* on_open of every route: links and counts the connection, arms its token's expiry, logs,
 * and subscribes a raw room member to its topic. */
void conn_on_open(struct weft_conn *c);
/* on_message of every route: the message rate, then the route's work (the /hub protocol,
 * the raw room's fan-out, the echo). */
void conn_on_message(struct weft_conn *c, const void *data, size_t len, bool binary);
/* on_close of every route: leaves rooms and topics, uncounts, logs, releases. */
void conn_on_close(struct weft_conn *c, uint16_t code, const char *reason, size_t reason_len,
                   bool clean);
/* (Re)starts the token expiry timer of hc (hc->auth->exp must be set). */
void hub_arm_expiry(struct hconn *hc);
/* Gives hc an (empty) struct hconn_auth if it has none. Returns it, or NULL (out of memory). */
struct hconn_auth *hconn_auth_new(struct hconn *hc);
/* Closes a connection with a policy code and logs why. */
void hub_conn_close(struct hconn *hc, uint16_t code, const char *reason);
/* Sends a text message on hc; logs a refused send. Returns weft_conn_send's result
 * (WEFT_SEND_CLOSED when hc is gone). */
enum weft_send_result hub_send(struct hconn *hc, const char *text, size_t len);
/* Frees an hconn now, or marks it gone until its last in-flight request returns. */
void hub_conn_release(struct hconn *hc);

#endif
