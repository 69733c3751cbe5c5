/*
 * hubjson.h — JSON helpers for the /hub protocol tests: send a JSON text, receive one and
 * parse it (a text message holding a JSON object, or the test fails with the line of the
 * call and the logs of the running `weft serve` processes), check its "type", read fields.
 */
#ifndef WEFT_TEST_HUBJSON_H
#define WEFT_TEST_HUBJSON_H

#include <jansson.h>

#include "rawclient.h"

/* How long hj_recv_json waits for a message, in ms (10000 unless a test sets it). */
extern int hj_timeout_ms;

/* Sends text as a text message (asserts it was sent). */
void hj_send(struct rc *c, const char *text);

/* Sends a text message built with printf (at most 511 bytes). */
void hj_sendf(struct rc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Receives one message: it must be a text message holding a JSON object. Caller decrefs. */
#define hj_recv_json(c) hj_recv_json_at(c, __LINE__)
json_t *hj_recv_json_at(struct rc *c, int line);

/* hj_recv_json and checks its "type" is type. Caller decrefs. */
#define hj_expect_type(c, type) hj_expect_type_at(c, type, __LINE__)
json_t *hj_expect_type_at(struct rc *c, const char *type, int line);

/* Integer field k of j (fails the test if it is not an integer). */
long long hj_int(const json_t *j, const char *k);

/* String field k of j, "" if absent. */
const char *hj_str(const json_t *j, const char *k);

#endif
