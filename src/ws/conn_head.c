/*
 * conn_head.c — reading an HTTP head (a server's request, a client's response) that may
 * arrive over several reads, for server.c and client.c (struct head_in in ws.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

/* ----------------------------------------------------------------- HTTP head */

/* Parses in place when nothing is stored (the whole head usually comes in one read);
 * otherwise appends the read to the stored head, up to max bytes, and asks for a parse only
 * when the new bytes complete the blank line or the limit is reached (see ws.h). */
void conn_head_begin(struct weft_conn *c, uint8_t *data, size_t len, size_t max, struct head_in *in)
{
    in->taken = len;
    in->ready = true;
    struct conn_extra *x = c->x;
    if (!x || !x->head) {
        in->buf = (const char *)data;
        in->len = len;
        return;
    }
    size_t searched = x->head_len;
    in->taken = max - x->head_len < len ? max - x->head_len : len;
    memcpy(x->head + x->head_len, data, in->taken);
    x->head_len += (uint32_t)in->taken;
    in->buf = x->head;
    in->len = x->head_len;
    in->ready = in->len >= max || weft_http_head_end(x->head, in->len, searched) != 0;
}

/* Keeps an incomplete head that was parsed in place; see ws.h. */
bool conn_head_keep(struct weft_conn *c, const uint8_t *data, size_t len, size_t max)
{
    if (c->x && c->x->head) return true; /* already stored by conn_head_begin */
    struct conn_extra *x = conn_extra_get(c);
    if (!x) return false;
    x->head = malloc(max);
    if (!x->head) {
        conn_extra_trim(c);
        return false;
    }
    memcpy(x->head, data, len);
    x->head_len = (uint32_t)len;
    return true;
}

char *conn_head_detach(struct weft_conn *c)
{
    if (!c->x) return NULL;
    char *stored = c->x->head;
    c->x->head = NULL;
    conn_extra_trim(c);
    return stored;
}

/* Feeds the frames that came right after a complete head: the rest of in->buf after
 * head_len and, when the head was stored, the part of the read not appended to it. */
void conn_head_rest(struct weft_conn *c, char *stored, const struct head_in *in, size_t head_len,
                    uint8_t *data, size_t len)
{
    if ((c->state == CONN_OPEN || c->state == CONN_CLOSING) && head_len < in->len)
        conn_feed_bytes(c, (uint8_t *)in->buf + head_len, in->len - head_len);
    if (stored && in->taken < len && (c->state == CONN_OPEN || c->state == CONN_CLOSING))
        conn_feed_bytes(c, data + in->taken, len - in->taken);
    free(stored);
}
