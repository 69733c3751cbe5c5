/*
 * outq.h — the blocks of a socket's output queue (internal to net/).
 *
 * A queue is a chain of 4 KiB blocks. Each block holds up to OQ_SEGS segments in order; a
 * segment is either bytes copied into the block's own storage or a reference to a shared
 * weft_buf. Small frames are copied (cheaper than a reference and merge into one iovec),
 * large ones are referenced. Blocks are recycled through the loop's pool.
 */
#ifndef WEFT_OUTQ_H
#define WEFT_OUTQ_H

#include "net/net.h"

#define OQ_SEGS 24
#define OQ_BLOCK_BYTES 4096

struct oq_seg {
    struct weft_buf *ref; /* NULL: bytes live in the block */
    const uint8_t *p;
    size_t len;
};

struct oq_block_head {
    struct oq_block *next;
    uint16_t head, nseg; /* segments [head, nseg) are pending */
    uint32_t used;       /* bytes of storage used */
    struct oq_seg seg[OQ_SEGS];
};

#define OQ_STORAGE (OQ_BLOCK_BYTES - sizeof(struct oq_block_head))

struct oq_block {
    struct oq_block *next;
    uint16_t head, nseg;
    uint32_t used;
    struct oq_seg seg[OQ_SEGS];
    uint8_t bytes[OQ_STORAGE];
};

/* Releases the first n bytes of s's queue once they were written (sock.c). */
void oq_consume(struct weft_sock *s, size_t n);

#endif
