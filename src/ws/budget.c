/*
 * budget.c — the process-wide memory budget (weft_memory_set_budget) at the connection
 * level: what a connection holds, and making room by closing the largest holders of an
 * endpoint (the close itself, 1013, is conn_budget_close in conn.c).
 *
 * Enforcement is local: a loop closes only its own connections (other loops run on other
 * threads). When what the other loops hold leaves no room, the connection that asks is the
 * one closed.
 */
#include "ws/ws.h"

/* Bytes c holds in the budget; see ws.h. While c's bytes are being parsed without a receive
 * state of its own, its message is in the endpoint's scratch state. */
size_t conn_held(const struct weft_conn *c)
{
    size_t n = sock_held(&c->sock);
    const struct conn_rx *rx = c->x ? c->x->rx : NULL;
    if (!rx && c->feeding) rx = &c->ep->rx_scratch;
    if (rx) n += rx->msg_cap;
    return n;
}

/* The connection of ep (other than skip) holding the most, with what it holds in *held;
 * NULL when none holds anything. Connections being parsed right now are not candidates:
 * their receive state is in use up the stack. */
static struct weft_conn *largest(struct endpoint *ep, const struct weft_conn *skip, size_t *held)
{
    struct weft_conn *best = NULL;
    size_t most = 0;
    for (struct weft_conn *c = ep->conns; c; c = c->next) {
        if (c == skip || c->state == CONN_DEAD || c->feeding) continue;
        size_t h = conn_held(c);
        if (h > most) {
            most = h;
            best = c;
        }
    }
    *held = most;
    return best;
}

/* Makes room for n bytes for c; see ws.h. Each round closes one connection, which releases
 * what it held, so the rounds are bounded by the number of connections. */
bool conn_budget_room(struct weft_conn *c, size_t n, bool charge)
{
    size_t mine = conn_held(c) + n;
    for (size_t round = 0; round <= c->ep->nconns; round++) {
        if (charge ? mem_charge(c->ep->loop, n, false) : mem_fits(n)) return true;
        size_t held;
        struct weft_conn *v = largest(c->ep, c, &held);
        if (!v || held < mine) return false;
        conn_budget_close(v);
    }
    return false;
}

/* Closes the largest holders while over budget; see ws.h. */
void conn_budget_enforce(struct endpoint *ep)
{
    for (size_t round = 0; round <= ep->nconns && mem_over(); round++) {
        size_t held;
        struct weft_conn *v = largest(ep, NULL, &held);
        if (!v) return;
        conn_budget_close(v);
    }
}
