/*
 * modes.c — what each mode of `weft bench` sends and counts:
 *   echo     N connections, each keeps W messages in flight (closed loop: every echo sends
 *            the next one), or an open-loop total rate (-r) spread over them.
 *   room     N members of one room (the URL's path); the first K send. Every delivery is
 *            counted at every member; a message leaves the sender's window once every other
 *            member has it.
 *   hub      room mode over the /hub JSON protocol: join, then publish; deliveries parsed with
 *            memmem and a digit loop, no JSON parser; --history-rate adds history / re-join
 *            requests.
 *   connect  handshakes per second (open, 101, close handshake, reopen).
 *   idle     open N connections and hold them.
 * Open-loop latency is measured from the intended send time (no coordinated omission).
 */
#include <inttypes.h>
#include <stdlib.h>

#include "cli/bench/bench.h"

/* Writes v in decimal at p. Returns the number of digits. */
static size_t put_dec(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Appends the literal s (a string constant) at p; evaluates to its length. */
#define PUT_LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), sizeof(s) - 1)

/* Builds a hub publish request in b->hub_buf (after its fixed prefix): "data" is
 * {"t":ts,"s":sender,"w":slot,"g":gen,"p":"<padding>"}, padded to -s bytes when the fields
 * leave room. Returns its length. */
static size_t hub_publish_text(struct bench *b, uint64_t ts, uint32_t sender, uint32_t slot,
                               uint8_t gen)
{
    char *p = b->hub_buf + b->hub_pre_len, *d = p;
    p += PUT_LIT(p, "{\"t\":");
    p += put_dec(p, ts);
    p += PUT_LIT(p, ",\"s\":");
    p += put_dec(p, sender);
    p += PUT_LIT(p, ",\"w\":");
    p += put_dec(p, slot);
    p += PUT_LIT(p, ",\"g\":");
    p += put_dec(p, gen);
    p += PUT_LIT(p, ",\"p\":\"");
    size_t used = (size_t)(p - d) + 2, size = (size_t)b->o.size;
    if (size > used) {
        memcpy(p, b->payload, size - used);
        p += size - used;
    }
    p += PUT_LIT(p, "\"}}");
    return (size_t)(p - b->hub_buf);
}

/* Queues one data message stamped with ts (ns since t0); room and hub messages also carry
 * sender, slot and generation. Returns false if it could not be queued (counted as an
 * error). */
static bool send_message(struct bench *b, struct bconn *c, uint64_t ts, uint32_t sender,
                         uint32_t slot, uint8_t gen)
{
    if (c->state != C_OPEN) return false;
    if (b->o.rate > 0 && c->out_len - c->out_off > MAX_BACKLOG) {
        count_error(b, E_BACKLOG);
        return false;
    }
    const uint8_t *msg = b->payload;
    size_t len = (size_t)b->o.size;
    if (b->o.mode == MODE_HUB) {
        len = hub_publish_text(b, ts, sender, slot, gen);
        msg = (const uint8_t *)b->hub_buf;
    } else if (len >= TS_BYTES) {
        put7(b->payload, ts, TS_BYTES);
    }
    if (b->o.mode == MODE_ROOM) {
        put7(b->payload + 8, sender, 3);
        put7(b->payload + 11, slot, 2);
        b->payload[13] = (uint8_t)(gen & 0x7f);
    }
    if (!queue_frame(b, c, b->o.binary ? WEFT_OP_BINARY : WEFT_OP_TEXT, msg, len)) {
        count_error(b, E_IO);
        return false;
    }
    if (b->phase == PH_MEASURE) b->c.sent++;
    return true;
}

/* Queues a close frame (1000) and moves c to C_CLOSING. */
void start_close(struct bench *b, struct bconn *c)
{
    uint8_t pl[125];
    size_t n = weft_close_payload(pl, WEFT_CLOSE_NORMAL, NULL, 0);
    queue_frame(b, c, WEFT_OP_CLOSE, pl, n);
    c->state = C_CLOSING;
}

/* Fills a room sender's free window slots with new messages. */
static void sender_fill(struct bench *b, struct sender *s, uint64_t now)
{
    int32_t expect = (int32_t)(room_members(b) - 1);
    if (expect <= 0 || !is_member(b, s->conn)) return;
    for (long j = 0; j < b->o.window; j++) {
        if (s->remaining[j] > 0) continue;
        s->gen[j] = (uint8_t)((s->gen[j] + 1) & 0x7f);
        s->remaining[j] = expect;
        s->sent_at[j] = now;
        if (!send_message(b, s->conn, now - b->t0, (uint32_t)(s - b->senders), (uint32_t)j,
                          s->gen[j]))
            s->remaining[j] = 0;
    }
}

/* A connection finished its handshake. */
void on_open(struct bench *b, struct bconn *c, uint64_t now)
{
    if (b->o.mode == MODE_CONNECT) {
        if (b->phase == PH_MEASURE) hist_record(&b->lat, now - c->t_start);
        start_close(b, c);
        return;
    }
    if (b->o.mode == MODE_HUB) { /* traffic starts once every join is answered */
        if (queue_frame(b, c, WEFT_OP_TEXT, b->hub_join, b->hub_join_len)) {
            c->hub = HUB_JOINING;
            b->join_pending++;
        } else {
            conn_fail(b, c, E_IO);
        }
        return;
    }
    if (b->o.mode == MODE_ECHO && sending(b) && b->o.rate <= 0)
        for (long i = 0; i < b->o.window; i++)
            send_message(b, c, now - b->t0, 0, 0, 0);
}

/* Counts a message received in the measured window: bytes, and the latency from ts (ns since
 * t0; UINT64_MAX when it carries none). */
static void count_received(struct bench *b, const struct bconn *c, uint64_t ts, uint64_t now)
{
    if (b->phase != PH_MEASURE) return;
    b->c.msgs++;
    b->c.bytes += c->in_len;
    if (ts != UINT64_MAX && now >= b->t0 + ts) hist_record(&b->lat, now - b->t0 - ts);
}

/* Room and hub, closed loop: sender si's message in window slot `slot` (generation gen) was
 * delivered to one more member; the slot is refilled once every other member has it. */
static void slot_delivered(struct bench *b, uint64_t si, uint64_t slot, uint64_t gen, uint64_t now)
{
    if (si >= (uint64_t)b->nsenders || slot >= (uint64_t)b->o.window) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    struct sender *s = &b->senders[si];
    if (s->gen[slot] != gen || s->remaining[slot] <= 0)
        return; /* a late delivery of a message already given up on */
    if (--s->remaining[slot] == 0 && sending(b)) sender_fill(b, s, now);
}

/* Finds key (e.g. "\"t\":") in [p, end) and reads the unsigned decimal after it. The number
 * must end before `end` (not cut by the kept head). Returns false if absent or malformed. */
static bool json_u64(const uint8_t *p, const uint8_t *end, const char *key, size_t klen,
                     uint64_t *out)
{
    const uint8_t *k = memmem(p, (size_t)(end - p), key, klen);
    if (!k) return false;
    const uint8_t *q = k + klen, *q0 = q;
    uint64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - q0 < 20)
        v = v * 10 + (uint64_t)(*q++ - '0');
    if (q == q0 || q == end || (*q >= '0' && *q <= '9')) return false;
    *out = v;
    return true;
}

/* True if [p, end) starts with the literal s. */
#define STARTS(p, end, s)                                                                          \
    ((size_t)((end) - (p)) >= sizeof(s) - 1 && !memcmp((p), (s), sizeof(s) - 1))

/* Hub: a whole message arrived on c (its first bytes kept in conn_head). A delivery
 * ("message") is counted and frees its window slot; "joined" makes c a member; "error" is a
 * protocol error (and, before "joined", a failed join); other replies ("published") pass. */
static void hub_message(struct bench *b, struct bconn *c, uint64_t now)
{
    const uint8_t *h = conn_head(b, c), *end = h + c->in_hdr_len;
    const uint8_t *ty = memmem(h, c->in_hdr_len, "\"type\":\"", 8);
    if (!ty) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    ty += 8;
    uint64_t seq = 0;
    bool has_seq = b->o.history_rate > 0 && json_u64(ty, end, "\"seq\":", 6, &seq);
    if (STARTS(ty, end, "message\"")) {
        if (b->o.history_rate > 0 && has_seq) { /* a kept message sent again: not counted */
            if (seq <= c->last_seq) {
                b->replayed++;
                return;
            }
            c->last_seq = seq;
        }
        const uint8_t *d = memmem(ty, (size_t)(end - ty), "\"data\":{", 8);
        uint64_t ts, si, slot, gen;
        if (!d || !json_u64(d + 8, end, "\"t\":", 4, &ts) ||
            !json_u64(d + 8, end, "\"s\":", 4, &si) || !json_u64(d + 8, end, "\"w\":", 4, &slot) ||
            !json_u64(d + 8, end, "\"g\":", 4, &gen)) {
            count_error(b, E_BAD_MESSAGE);
            return;
        }
        count_received(b, c, ts, now);
        if (b->o.rate <= 0) slot_delivered(b, si, slot, gen, now);
    } else if (STARTS(ty, end, "joined\"")) {
        if (has_seq && seq > c->last_seq) c->last_seq = seq;
        if (c->hub == HUB_MEMBER) b->hist_replies++; /* a --history-rate re-join */
        if (c->hub == HUB_JOINING) {
            c->hub = HUB_MEMBER;
            b->join_pending--;
            b->members++;
        }
    } else if (STARTS(ty, end, "history\"")) {
        b->hist_replies++;
    } else if (STARTS(ty, end, "error\"")) {
        count_error(b, E_PROTOCOL);
        if (c->hub == HUB_JOINING) { /* the join was refused: c stays out of the room */
            c->hub = HUB_NONE;
            b->join_pending--;
        }
    }
}

/* A whole data message arrived on c (its first bytes are in c->in_hdr, or for hub mode in
 * conn_head). */
void on_message(struct bench *b, struct bconn *c, uint64_t now)
{
    if (b->o.mode == MODE_HUB) {
        hub_message(b, c, now);
        return;
    }
    if (c->in_len != (uint64_t)b->o.size) {
        count_error(b, E_BAD_MESSAGE);
        return;
    }
    uint64_t ts = UINT64_MAX;
    if (c->in_hdr_len >= TS_BYTES) ts = get7(c->in_hdr, TS_BYTES);
    count_received(b, c, ts, now);
    if (b->o.mode == MODE_ECHO) {
        if (b->o.rate <= 0 && sending(b)) send_message(b, c, now - b->t0, 0, 0, 0);
        return;
    }
    if (b->o.mode != MODE_ROOM || b->o.rate > 0) return;
    slot_delivered(b, get7(c->in_hdr + 8, 3), get7(c->in_hdr + 11, 2), c->in_hdr[13], now);
}

/* A control frame arrived on c. */
void on_control(struct bench *b, struct bconn *c, const struct weft_msg_event *ev)
{
    if (ev->opcode == WEFT_OP_PING) {
        queue_frame(b, c, WEFT_OP_PONG, ev->data, ev->len);
        return;
    }
    if (ev->opcode != WEFT_OP_CLOSE) return;
    if (c->state == C_CLOSING) { /* the answer to our close: done */
        if (b->o.mode == MODE_CONNECT && b->phase == PH_MEASURE) b->c.msgs++;
        conn_release(b, c);
        return;
    }
    /* The server closes: answer and count it. */
    uint8_t pl[125];
    size_t n = weft_close_payload(pl, ev->close_code == WEFT_CLOSE_NO_STATUS ? 0 : ev->close_code,
                                  NULL, 0);
    queue_frame(b, c, WEFT_OP_CLOSE, pl, n);
    conn_flush(b, c);
    if (c->fd >= 0) conn_fail(b, c, E_CLOSED);
}

/* Open loop: sends every message whose intended time has come, round-robin over the open
 * connections (echo) or the senders (room), each stamped with its intended time. Returns the
 * ns until the next one is due. */
uint64_t open_loop_step(struct bench *b, uint64_t now)
{
    double interval = 1e9 / b->o.rate;
    long budget = 20000; /* bounded work per iteration: the loop must keep reading */
    for (;;) {
        uint64_t due = b->send_start + (uint64_t)((double)b->next_k * interval);
        if (due > now) return due - now;
        if (budget-- == 0) return 0;
        struct bconn *c = NULL;
        uint32_t si = 0;
        bool room = room_like(b);
        long tries = room ? b->nsenders : b->nconns;
        while (tries-- > 0) {
            long i = b->rr++;
            if (room) {
                si = (uint32_t)(i % b->nsenders);
                c = b->senders[si].conn;
            } else {
                c = &b->conns[i % b->nconns];
            }
            if (is_member(b, c)) break;
            c = NULL;
        }
        b->next_k++;
        if (c) send_message(b, c, due - b->t0, si, 0, 0);
    }
}

/* Room closed loop: gives up on window slots whose deliveries did not all arrive in time
 * (counting the missing ones as lost) and refills them. */
void room_scan(struct bench *b, uint64_t now)
{
    uint64_t limit = 2 * NS_PER_S;
    for (long i = 0; i < b->nsenders; i++) {
        struct sender *s = &b->senders[i];
        bool refill = false;
        for (long j = 0; j < b->o.window; j++)
            if (s->remaining[j] > 0 && now - s->sent_at[j] > limit) {
                b->errors[E_LOST] += (uint64_t)s->remaining[j];
                s->remaining[j] = 0;
                refill = true;
            }
        if (refill && sending(b)) sender_fill(b, s, now);
    }
}

/* Hub --history-rate: sends the requests that are due, each from the next member in turn,
 * alternating {"type":"history","since":S} and a re-join {"type":"join","since":S} (S: the
 * member's last seen seq minus HIST_BACK). Returns the ns until the next one is due. */
uint64_t history_step(struct bench *b, uint64_t now)
{
    uint64_t interval = (uint64_t)(1e9 / b->o.history_rate);
    if (interval == 0) interval = 1;
    for (long budget = 1000; b->hist_next <= now && budget > 0; budget--) {
        b->hist_next += interval;
        struct bconn *c = NULL;
        for (long tries = b->nconns; tries > 0 && !c; tries--) {
            struct bconn *x = &b->conns[b->hist_rr++ % b->nconns];
            if (is_member(b, x)) c = x;
        }
        if (!c) continue;
        uint64_t since = c->last_seq > HIST_BACK ? c->last_seq - HIST_BACK : 0;
        char req[256];
        int n = snprintf(req, sizeof req, "{\"type\":\"%s\",\"room\":\"%s\",\"since\":%" PRIu64 "}",
                         b->hist_reqs & 1 ? "join" : "history", b->o.room, since);
        if (n > 0 && (size_t)n < sizeof req && queue_frame(b, c, WEFT_OP_TEXT, req, (size_t)n))
            b->hist_reqs++;
    }
    return b->hist_next > now ? b->hist_next - now : 0;
}

/* Starts traffic: room and hub senders fill their windows, echo connections theirs. */
void start_traffic(struct bench *b, uint64_t now)
{
    b->send_start = now;
    b->next_k = 0;
    b->hist_next = now;
    b->members_start = room_like(b) ? room_members(b) : 0;
    if (b->o.rate > 0) return;
    if (b->o.mode == MODE_ECHO) {
        for (long i = 0; i < b->nconns; i++)
            if (b->conns[i].state == C_OPEN) on_open(b, &b->conns[i], now);
    } else if (room_like(b)) {
        for (long i = 0; i < b->nsenders; i++)
            sender_fill(b, &b->senders[i], now);
    }
}

/* Fills the message template: an a-z pattern, JSON-like records or random printable
 * bytes (all valid UTF-8, so --text works with each). */
void fill_payload(struct bench *b)
{
    uint8_t *p = b->payload;
    size_t n = (size_t)b->o.size;
    if (b->o.payload == 1) {
        size_t i = 0;
        for (unsigned k = 0; i < n; k++) {
            char rec[128];
            int w = snprintf(rec, sizeof rec,
                             "{\"id\":%u,\"user\":\"user%u\",\"room\":\"lobby\",\"text\":"
                             "\"hello %u\",\"ts\":%u},",
                             1000 + k * 7, k % 13, k * 31, 1700000000u + k);
            size_t m = w > 0 ? (size_t)w : 0;
            if (m > n - i) m = n - i;
            memcpy(p + i, rec, m);
            i += m;
        }
        return;
    }
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        if (b->o.payload == 2) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            p[i] = (uint8_t)(' ' + (r >> 32) % 95);
        } else {
            p[i] = (uint8_t)('a' + i % 26);
        }
    }
}

/* Hub mode: the join request, the publish buffer with its fixed prefix, the kept heads;
 * the padding made safe inside a JSON string. Returns false when out of memory. */
bool hub_setup(struct bench *b)
{
    const char *room = b->o.room;
    size_t rl = strlen(room);
    b->hub_join = malloc(rl + 64);
    b->hub_buf_cap = rl + 128 + (size_t)b->o.size;
    b->hub_buf = malloc(b->hub_buf_cap);
    b->heads = malloc((size_t)b->nconns * HUB_HEAD);
    if (!b->hub_join || !b->hub_buf || !b->heads) return false;
    b->hub_join_len = (size_t)snprintf(b->hub_join, rl + 64,
                                       "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"join\"}", room);
    b->hub_pre_len = (size_t)snprintf(b->hub_buf, b->hub_buf_cap,
                                      "{\"type\":\"publish\",\"room\":\"%s\",\"data\":", room);
    for (long i = 0; i < b->o.size; i++) /* printable ASCII already; no quote, no backslash */
        if (b->payload[i] == '"')
            b->payload[i] = '\'';
        else if (b->payload[i] == '\\')
            b->payload[i] = '/';
    return true;
}
