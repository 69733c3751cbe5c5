/*
 * hubjson.c — JSON helpers for the /hub protocol tests (see hubjson.h).
 */
#include "hubjson.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serveproc.h"

int hj_timeout_ms = 10000;

/* Sends a text message. */
void hj_send(struct rc *c, const char *text)
{
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, text, strlen(text)), 0);
}

/* Sends a printf-built text message. */
void hj_sendf(struct rc *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof buf);
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, buf, (size_t)n), 0);
}

/* Receives one message and parses it as a JSON object. */
json_t *hj_recv_json_at(struct rc *c, int line)
{
    enum rc_event ev = rc_recv(c, hj_timeout_ms);
    if (ev != RC_MESSAGE) {
        sp_dump_all_logs();
        fail_msg("line %d: expected a message, got event %d (close code %u)", line, (int)ev,
                 (unsigned)c->last.error_code);
    }
    if (c->last.opcode != WEFT_OP_TEXT)
        fail_msg("line %d: expected a text message, got opcode %d", line, (int)c->last.opcode);
    json_error_t err;
    json_t *j = json_loadb((const char *)c->last.data, c->last.len, 0, &err);
    if (!j)
        fail_msg("line %d: not JSON: %.*s", line, (int)c->last.len, (const char *)c->last.data);
    if (!json_is_object(j)) {
        json_decref(j);
        fail_msg("line %d: not a JSON object: %.*s", line, (int)c->last.len,
                 (const char *)c->last.data);
    }
    return j;
}

/* Receives one message and checks its type. */
json_t *hj_expect_type_at(struct rc *c, const char *type, int line)
{
    json_t *j = hj_recv_json_at(c, line);
    const char *t = json_string_value(json_object_get(j, "type"));
    if (!t || strcmp(t, type)) {
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(stderr, "line %d: expected type %s, got %s\n", line, type, s ? s : "?");
        free(s);
        json_decref(j);
        fail_msg("line %d: wrong message type", line);
    }
    return j;
}

/* Integer field of a JSON object. */
long long hj_int(const json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    if (!json_is_integer(v)) fail_msg("field %s is not an integer", k);
    return (long long)json_integer_value(v);
}

/* String field of a JSON object. */
const char *hj_str(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}
