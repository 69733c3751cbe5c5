/*
 * stats.c — the stats stream: every second the hub samples weft_server_stats and the
 * process's resident memory, turns the counters into per-second rates, and publishes one
 * JSON snapshot to the pub/sub topic "$stats". A /hub connection subscribes with
 * {"type":"subscribe_stats"} (and gets the latest snapshot at once) and stops with
 * {"type":"unsubscribe_stats"}. The web page draws its chart from these snapshots; nothing
 * polls. The snapshot is encoded once per second and shared by every subscriber (one frame).
 *
 * {"type":"stats","ts":MS,"instance":"PID-TICKS","interval_ms":N,"uptime_s":S,"connections":N,"rooms":N,
 *  "subscribers":N,"totals":{"messages_in":…,"messages_out":…,"bytes_in":…,"bytes_out":…,
 *  "dropped":…,"publishes":…},"rate":{"messages_in":…,"messages_out":…,"bytes_in":…,
 *  "bytes_out":…,"dropped":…},"rss_bytes":N}
 *
 * "instance" identifies the server process (its pid and start time in clock ticks, the same
 * for every worker): a restarted hub numbers every room's messages from 1 again, so a client
 * recovering history needs to know. With --workers N > 1 the numbers are summed over every
 * worker of the process (workers_stats_sum), whichever worker the subscriber is on.
 * "connections" counts the hub's open WebSocket connections (every route, without the
 * /readyz self-check). The snapshots themselves are messages out (one per subscriber per
 * second).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/internal.h"

#define STATS_INTERVAL_MS 1000

struct hub_stats {
    struct hub *h;
    struct weft_timer timer;
    struct weft_server_stats prev;
    uint64_t prev_ms;
    bool have_prev;
    char *last;        /* the latest snapshot (sent at once to a new subscriber) */
    char instance[48]; /* "PID-STARTTICKS" of the process */
    size_t last_len;
};

/* Resident memory of this process in bytes (0 if /proc is unreadable). */
static uint64_t rss_bytes(void)
{
    uint64_t rss = 0;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long size, res;
        if (fscanf(f, "%llu %llu", &size, &res) == 2 && page > 0) rss = res * (uint64_t)page;
        fclose(f);
    }
    return rss;
}

/* Writes "PID-STARTTICKS" (field 22 of /proc/self/stat: the same for every thread, new for a
 * restarted process) into out. */
static void process_instance(char *out, size_t cap)
{
    unsigned long long ticks = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        const char *p = strrchr(buf, ')'); /* after the command name, fields 3.. follow */
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p) ticks = strtoull(p + 1, NULL, 10);
    }
    snprintf(out, cap, "%ld-%llu", (long)getpid(), ticks);
}

/* Per-second rate of a counter between two samples dt_ms apart. */
static double rate(uint64_t now, uint64_t before, uint64_t dt_ms)
{
    if (dt_ms == 0 || now < before) return 0;
    return (double)(now - before) * 1000.0 / (double)dt_ms;
}

/* Builds the snapshot of now into st->last. */
static void sample(struct hub_stats *s)
{
    struct hub *h = s->h;
    struct weft_server_stats cur;
    weft_server_stats(h->server, &cur);
    size_t nconns = h->nconns, nrooms = rooms_count(&h->rooms);
    workers_stats_sum(h, &cur, &nconns, &nrooms); /* the whole process, every worker */
    uint64_t now = weft_loop_now(h->loop);
    uint64_t dt = s->have_prev ? now - s->prev_ms : 0;
    const struct weft_server_stats *p = s->have_prev ? &s->prev : &cur;
    size_t subs = weft_topic_count(h->server, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1);
    double up = (double)hub_wall_ms() / 1000.0 - h->m.start_time;
    json_t *o = json_pack(
        "{s:s,s:I,s:s,s:I,s:f,s:I,s:I,s:I,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:f,s:f,s:f,s:f,s:f},s:I}",
        "type", "stats", "ts", (json_int_t)hub_wall_ms(), "instance", s->instance, "interval_ms",
        (json_int_t)dt, "uptime_s", up < 0 ? 0.0 : up, "connections", (json_int_t)nconns, "rooms",
        (json_int_t)nrooms, "subscribers", (json_int_t)subs, "totals", "messages_in",
        (json_int_t)cur.messages_in, "messages_out", (json_int_t)cur.messages_out, "bytes_in",
        (json_int_t)cur.bytes_in, "bytes_out", (json_int_t)cur.bytes_out, "dropped",
        (json_int_t)cur.dropped_backpressure, "publishes", (json_int_t)cur.publishes, "rate",
        "messages_in", rate(cur.messages_in, p->messages_in, dt), "messages_out",
        rate(cur.messages_out, p->messages_out, dt), "bytes_in",
        rate(cur.bytes_in, p->bytes_in, dt), "bytes_out", rate(cur.bytes_out, p->bytes_out, dt),
        "dropped", rate(cur.dropped_backpressure, p->dropped_backpressure, dt), "rss_bytes",
        (json_int_t)rss_bytes());
    char *text =
        o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (text) {
        free(s->last);
        s->last = text;
        s->last_len = strlen(text);
    }
    s->prev = cur;
    s->prev_ms = now;
    s->have_prev = true;
}

/* Every second: sample, and publish to the subscribers (if any). */
static void on_stats_tick(struct weft_timer *t)
{
    struct hub_stats *s = (struct hub_stats *)((char *)t - offsetof(struct hub_stats, timer));
    sample(s);
    if (s->last && weft_topic_count(s->h->server, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1) > 0)
        weft_publish(s->h->server, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1, s->last,
                     s->last_len, WEFT_OP_TEXT, NULL);
    weft_timer_start(s->h->loop, &s->timer, STATS_INTERVAL_MS);
}

/* Starts the sampler; see internal.h. */
int stats_init(struct hub *h)
{
    struct hub_stats *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->h = h;
    s->timer.cb = on_stats_tick;
    process_instance(s->instance, sizeof s->instance);
    h->stats = s;
    sample(s); /* the baseline of the first rates */
    weft_timer_start(h->loop, &s->timer, STATS_INTERVAL_MS);
    return 0;
}

/* Stops publishing (shutdown); see internal.h. */
void stats_stop(struct hub *h)
{
    if (h->stats) weft_timer_stop(&h->stats->timer);
}

/* Frees the sampler; see internal.h. */
void stats_free(struct hub *h)
{
    if (!h->stats) return;
    weft_timer_stop(&h->stats->timer);
    free(h->stats->last);
    free(h->stats);
    h->stats = NULL;
}

/* (Un)subscribes a /hub connection; see internal.h. */
void stats_subscribe(struct hconn *hc, const json_t *id, bool on)
{
    struct hub_stats *s = hc->h->stats;
    if (!s) {
        proto_error(hc, id, "internal", "the stats stream is not running");
        return;
    }
    if (on && weft_subscribe(hc->c, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1) != WEFT_OK) {
        proto_error(hc, id, "internal", "cannot subscribe");
        return;
    }
    if (!on) weft_unsubscribe(hc->c, HUB_STATS_TOPIC, sizeof HUB_STATS_TOPIC - 1);
    json_t *o = json_pack("{s:s,s:I}", "type", on ? "stats_subscribed" : "stats_unsubscribed",
                          "interval_ms", (json_int_t)STATS_INTERVAL_MS);
    if (o && id) json_object_set(o, "id", (json_t *)id);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text) {
        hub_send(hc, text, strlen(text));
        free(text);
    }
    if (on && s->last) hub_send(hc, s->last, s->last_len);
}
