/*
 * buf.c — reference-counted shared buffers.
 */
#include <stdlib.h>

#include "net/net.h"

/* Allocates a buffer of len bytes holding one reference. Returns NULL on failure. */
struct weft_buf *buf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct weft_buf *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

/* Drops one reference and frees the buffer when it was the last. */
void buf_unref(struct weft_buf *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
