/*
 * metrics.c — counters of the hub and GET /metrics in the Prometheus text format 0.0.4:
 * connections, handshakes by result, close codes, messages and bytes, publishes and
 * deliveries, errors, backpressure, rooms and history, the publish-to-deliver latency
 * histogram, process memory and CPU (/proc/self) and build info.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/internal.h"

/* Upper bounds (seconds) of the publish-to-deliver histogram buckets. */
const double hub_lat_bounds[HUB_LAT_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

/* Counts a close code (codes beyond the table's size are counted as 0, "other"). */
void metrics_close(struct hub_metrics *m, uint16_t code)
{
    for (size_t i = 0; i < m->ncloses; i++)
        if (m->closes[i].code == code) {
            m->closes[i].n++;
            return;
        }
    if (m->ncloses == HUB_MAX_CLOSE_CODES - 1) {
        code = 0;
        for (size_t i = 0; i < m->ncloses; i++)
            if (m->closes[i].code == 0) {
                m->closes[i].n++;
                return;
            }
    }
    m->closes[m->ncloses].code = code;
    m->closes[m->ncloses].n = 1;
    m->ncloses++;
}

/* Counts an error reply by its code (a static string). */
void metrics_error(struct hub_metrics *m, const char *code)
{
    for (size_t i = 0; i < m->nerrors; i++)
        if (!strcmp(m->errors[i].code, code)) {
            m->errors[i].n++;
            return;
        }
    if (m->nerrors < HUB_MAX_ERROR_CODES) {
        m->errors[m->nerrors].code = code;
        m->errors[m->nerrors].n = 1;
        m->nerrors++;
    }
}

/* Adds one publish-to-deliver sample (seconds). Buckets are stored non-cumulative. */
void metrics_latency(struct hub_metrics *m, double seconds)
{
    size_t i = 0;
    while (i < HUB_LAT_BUCKETS && seconds > hub_lat_bounds[i])
        i++;
    m->lat_buckets[i]++;
    m->lat_sum += seconds;
    m->lat_count++;
}

/* A growing text buffer. */
struct out {
    char *p;
    size_t len, cap;
    bool failed;
};

/* Appends formatted text. */
static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->failed) return;
    if (!o->p) {
        o->cap = 16384;
        o->p = malloc(o->cap);
        if (!o->p) {
            o->failed = true;
            return;
        }
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

/* Writes the HELP and TYPE lines of a metric. */
static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with a single unlabelled value. */
static void single(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    head(o, name, type, help);
    put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* Reads resident memory (bytes) and CPU time (seconds) of this process from /proc/self. */
static void proc_self(uint64_t *rss, double *cpu)
{
    *rss = 0;
    *cpu = 0;
    long page = sysconf(_SC_PAGESIZE);
    long tck = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long size, res;
        if (fscanf(f, "%llu %llu", &size, &res) == 2 && page > 0) *rss = res * (uint64_t)page;
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* Fields after the ")" that ends the command name: state is field 3, utime 14,
         * stime 15. */
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2 &&
            tck > 0)
            *cpu = (double)(ut + st) / (double)tck;
    }
}

/* One worker's counters; see internal.h. */
void metrics_snapshot(const struct hub *h, struct metrics_snap *out)
{
    out->m = h->m;
    weft_server_stats(h->server, &out->st);
    out->nconns = h->nconns;
    out->nrooms = rooms_count(&h->rooms);
    out->hist_msgs = h->rooms.hist_msgs;
    out->hist_bytes = h->rooms.hist_bytes;
    out->hist_skipped = h->rooms.hist_skipped;
    out->hist_evicted = h->rooms.hist_evicted;
    out->draining = h->draining;
    out->redis = h->cfg.redis != NULL;
    out->broker_down = out->redis && !broker_up(h->broker) ? 1 : 0;
}

/* Adds the counters of b into a (close and error codes merged by code). */
static void snap_add(struct metrics_snap *a, const struct metrics_snap *b)
{
    const uint64_t *bs = (const uint64_t *)&b->st;
    uint64_t *as = (uint64_t *)&a->st; /* struct weft_server_stats is all uint64_t */
    for (size_t i = 0; i < sizeof a->st / sizeof(uint64_t); i++)
        as[i] += bs[i];
    struct hub_metrics *m = &a->m;
    const struct hub_metrics *n = &b->m;
    m->conns_total += n->conns_total;
    m->hs_ok += n->hs_ok;
    m->hs_401 += n->hs_401;
    m->hs_403 += n->hs_403;
    m->hs_414 += n->hs_414;
    m->hs_429 += n->hs_429;
    for (size_t i = 0; i < n->ncloses; i++)
        for (uint64_t k = 0; k < n->closes[i].n; k++)
            metrics_close(m, n->closes[i].code);
    for (size_t i = 0; i < n->nerrors; i++)
        for (uint64_t k = 0; k < n->errors[i].n; k++)
            metrics_error(m, n->errors[i].code);
    m->hub_requests += n->hub_requests;
    m->publishes += n->publishes;
    m->deliveries += n->deliveries;
    m->rate_limited += n->rate_limited;
    m->auth_expired += n->auth_expired;
    m->revoked_closes += n->revoked_closes;
    m->broker_reconnects += n->broker_reconnects;
    m->broker_dropped += n->broker_dropped;
    a->redis |= b->redis;
    a->broker_down += b->broker_down;
    for (size_t i = 0; i <= HUB_LAT_BUCKETS; i++)
        m->lat_buckets[i] += n->lat_buckets[i];
    m->lat_sum += n->lat_sum;
    m->lat_count += n->lat_count;
    if (n->start_time < m->start_time) m->start_time = n->start_time;
    a->nconns += b->nconns;
    a->nrooms += b->nrooms;
    a->hist_msgs += b->hist_msgs;
    a->hist_bytes += b->hist_bytes;
    a->hist_skipped += b->hist_skipped;
    a->hist_evicted += b->hist_evicted;
    a->draining = a->draining || b->draining;
}

/* Renders every metric of a snapshot (one worker's, or the sum of all) into o. */
static void render(const struct metrics_snap *sn, struct out *o)
{
    const struct weft_server_stats st = sn->st;
    const struct hub_metrics *m = &sn->m;

    single(o, "weft_connections", "gauge", "Open WebSocket connections.", sn->nconns);
    single(o, "weft_connections_total", "counter", "WebSocket connections opened.", m->conns_total);
    head(o, "weft_connections_closed_total", "counter",
         "WebSocket connections closed, by close code (1006: no close frame).");
    for (size_t i = 0; i < m->ncloses; i++)
        put(o, "weft_connections_closed_total{code=\"%u\"} %llu\n", m->closes[i].code,
            (unsigned long long)m->closes[i].n);

    head(o, "weft_handshakes_total", "counter", "WebSocket opening handshakes by result.");
    struct {
        const char *r;
        uint64_t n;
    } hs[] = {
        {"ok", m->hs_ok},   {"400", st.rejected_400}, {"401", m->hs_401}, {"403", m->hs_403},
        {"414", m->hs_414}, {"426", st.rejected_426}, {"429", m->hs_429}, {"503", st.rejected_503},
    };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        put(o, "weft_handshakes_total{result=\"%s\"} %llu\n", hs[i].r, (unsigned long long)hs[i].n);

    single(o, "weft_messages_received_total", "counter", "WebSocket messages received.",
           st.messages_in);
    single(o, "weft_messages_sent_total", "counter", "WebSocket messages sent.", st.messages_out);
    single(o, "weft_received_bytes_total", "counter", "Payload bytes received.", st.bytes_in);
    single(o, "weft_sent_bytes_total", "counter", "Payload bytes sent.", st.bytes_out);
    single(o, "weft_http_requests_total", "counter", "Plain HTTP requests served.",
           st.http_requests);
    single(o, "weft_hub_requests_total", "counter", "Messages received on /hub.", m->hub_requests);
    single(o, "weft_hub_publishes_total", "counter", "Messages published to /hub rooms.",
           m->publishes);
    single(o, "weft_hub_deliveries_total", "counter",
           "Copies of /hub publishes queued to room members.", m->deliveries);
    head(o, "weft_hub_errors_total", "counter", "Error replies sent on /hub, by code.");
    for (size_t i = 0; i < m->nerrors; i++)
        put(o, "weft_hub_errors_total{code=\"%s\"} %llu\n", m->errors[i].code,
            (unsigned long long)m->errors[i].n);
    single(o, "weft_protocol_errors_total", "counter",
           "Connections closed for a WebSocket protocol error.", st.protocol_errors);
    single(o, "weft_rate_limited_total", "counter",
           "Connections closed (1008) for exceeding the message rate.", m->rate_limited);
    single(o, "weft_auth_expired_total", "counter",
           "Connections closed (1008) because their token expired.", m->auth_expired);
    single(o, "weft_auth_revoked_total", "counter",
           "Connections closed (1008) because their token was revoked.", m->revoked_closes);
    single(o, "weft_backpressure_drops_total", "counter",
           "Messages dropped for a slow consumer (slow-policy drop).", st.dropped_backpressure);
    single(o, "weft_slow_consumer_closes_total", "counter",
           "Connections closed for a slow consumer (slow-policy close).", st.closed_slow);
    single(o, "weft_memory_held_bytes", "gauge",
           "Bytes peers make the process hold: messages being reassembled, inflate output, "
           "output queued for slow readers (see --memory-budget).",
           weft_memory_held());
    single(o, "weft_memory_budget_bytes", "gauge", "The --memory-budget (0: none).",
           weft_memory_budget());
    single(o, "weft_memory_budget_closes_total", "counter",
           "Connections closed (1013) for the memory budget, refused messages included.",
           st.closed_memory);
    single(o, "weft_rooms", "gauge", "Rooms of /hub (with members or kept messages).", sn->nrooms);
    single(o, "weft_history_messages", "gauge", "Messages kept in room histories.", sn->hist_msgs);
    single(o, "weft_history_bytes", "gauge", "Bytes of messages kept in room histories.",
           sn->hist_bytes);
    single(o, "weft_history_skipped_total", "counter",
           "Deliveries not kept in a history (over --history-max-message).", sn->hist_skipped);
    single(o, "weft_history_evicted_total", "counter",
           "Kept messages evicted to stay within --history-memory.", sn->hist_evicted);
    head(o, "weft_broker_up", "gauge", "1 when the message broker is reachable.");
    if (sn->redis)
        put(o, "weft_broker_up{broker=\"redis\"} %d\n", sn->broker_down ? 0 : 1);
    else
        put(o, "weft_broker_up{broker=\"local\"} 1\n");
    single(o, "weft_broker_reconnects_total", "counter",
           "Connections to the broker (Redis) re-established after a loss.", m->broker_reconnects);
    single(o, "weft_broker_dropped_total", "counter",
           "Messages delivered on this node only because the broker was down.", m->broker_dropped);
    single(o, "weft_draining", "gauge", "1 while the server drains for a shutdown.",
           sn->draining ? 1 : 0);

    head(o, "weft_publish_delivery_seconds", "histogram",
         "Time from receiving a /hub publish to its deliveries being written to the sockets.");
    uint64_t cum = 0;
    for (size_t i = 0; i < HUB_LAT_BUCKETS; i++) {
        cum += m->lat_buckets[i];
        put(o, "weft_publish_delivery_seconds_bucket{le=\"%g\"} %llu\n", hub_lat_bounds[i],
            (unsigned long long)cum);
    }
    cum += m->lat_buckets[HUB_LAT_BUCKETS];
    put(o, "weft_publish_delivery_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    put(o, "weft_publish_delivery_seconds_sum %.9f\n", m->lat_sum);
    put(o, "weft_publish_delivery_seconds_count %llu\n", (unsigned long long)m->lat_count);

    uint64_t rss;
    double cpu;
    proc_self(&rss, &cpu);
    single(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    head(o, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
    put(o, "process_cpu_seconds_total %.2f\n", cpu);
    head(o, "process_start_time_seconds", "gauge", "Start time since the epoch in seconds.");
    put(o, "process_start_time_seconds %.3f\n", m->start_time);
    head(o, "weft_build_info", "gauge", "Build information (always 1).");
    put(o, "weft_build_info{version=\"%s\",compiler=\"%s\"} 1\n", WEFT_VERSION,
#if defined(__clang__)
        "clang " __clang_version__
#elif defined(__GNUC__)
        "gcc " __VERSION__
#else
        "unknown"
#endif
    );
}

/* GET /metrics. */
void metrics_http(struct weft_request *req, void *route_user)
{
    struct hub *h = route_user;
    if (h->sh) {
        workers_metrics(req, h);
        return;
    }
    struct metrics_snap sn;
    metrics_snapshot(h, &sn);
    struct out o = {0};
    render(&sn, &o);
    if (o.failed) {
        free(o.p);
        weft_request_respond(req, 500, NULL, NULL, "out of memory\n", 14);
        return;
    }
    weft_request_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, o.p, o.len);
    free(o.p);
}

/* Renders the sum of n workers' snapshots, then per-worker gauges labelled worker="i".
 * Returns false when out of memory. */
static bool render_workers(const struct metrics_snap *snaps, size_t n, struct out *o)
{
    struct metrics_snap *sum = calloc(1, sizeof *sum);
    if (!sum) return false;
    sum->m.start_time = snaps[0].m.start_time;
    for (size_t i = 0; i < n; i++)
        snap_add(sum, &snaps[i]);
    render(sum, o);
    free(sum);
    head(o, "weft_workers", "gauge", "Worker threads (each with its own event loop).");
    put(o, "weft_workers %zu\n", n);
    head(o, "weft_worker_connections", "gauge", "Open WebSocket connections per worker.");
    for (size_t i = 0; i < n; i++)
        put(o, "weft_worker_connections{worker=\"%zu\"} %llu\n", i,
            (unsigned long long)snaps[i].nconns);
    head(o, "weft_worker_accepted_total", "counter", "TCP connections accepted per worker.");
    for (size_t i = 0; i < n; i++)
        put(o, "weft_worker_accepted_total{worker=\"%zu\"} %llu\n", i,
            (unsigned long long)snaps[i].st.accepted_total);
    head(o, "weft_worker_messages_received_total", "counter",
         "WebSocket messages received per worker.");
    for (size_t i = 0; i < n; i++)
        put(o, "weft_worker_messages_received_total{worker=\"%zu\"} %llu\n", i,
            (unsigned long long)snaps[i].st.messages_in);
    return !o->failed;
}

/* Answers a deferred /metrics request with the sum of n workers; see internal.h. */
void metrics_respond_deferred(struct weft_deferred *d, const struct metrics_snap *snaps, size_t n)
{
    struct out o = {0};
    if (!render_workers(snaps, n, &o)) {
        free(o.p);
        weft_deferred_respond(d, 500, NULL, NULL, "out of memory\n", 14);
        return;
    }
    weft_deferred_respond(d, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, o.p, o.len);
    free(o.p);
}

/* ------------------------------------------------------------------ publish latency */

/* Runs at the loop iteration after publishes, once their deliveries were written: records
 * the publish-to-deliver samples. */
static void latency_flush(void *arg)
{
    struct lat_pending *lp = arg;
    if (!lp->h) {
        free(lp->t0);
        free(lp);
        return;
    }
    uint64_t now = hub_mono_ns();
    for (size_t i = 0; i < lp->n; i++)
        metrics_latency(&lp->h->m, (double)(now - lp->t0[i]) / 1e9);
    lp->n = 0;
    lp->scheduled = false;
}

/* Starts a publish-to-deliver sample; see internal.h. */
void hub_latency_start(struct hub *h, uint64_t t0_ns)
{
    struct lat_pending *lp = h->lat;
    if (lp->n == lp->cap) {
        size_t cap = lp->cap ? lp->cap * 2 : 64;
        uint64_t *t = realloc(lp->t0, cap * sizeof *t);
        if (!t) return;
        lp->t0 = t;
        lp->cap = cap;
    }
    lp->t0[lp->n++] = t0_ns;
    if (!lp->scheduled && weft_loop_defer(h->loop, latency_flush, lp) == WEFT_OK)
        lp->scheduled = true;
}
