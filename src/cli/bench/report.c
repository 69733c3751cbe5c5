/*
 * report.c — the summary of `weft bench`: the text form, the one-line JSON object (jansson;
 * keys documented in --help, read by bench/run, bench/soak and bench/cross_check), and the
 * readings behind them (this process's CPU from getrusage, the server's CPU and RSS from
 * /proc/PID).
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/bench/bench.h"

const char *const mode_names[] = {"echo", "room", "connect", "idle", "hub"};
const char *const phase_names[] = {"ramp", "settle", "warm-up", "measure", "drain", "done"};
const char *const err_names[] = {"connect", "handshake",   "timeout", "protocol", "closed",
                                 "io",      "bad_message", "lost",    "backlog"};

/* Sum of every error kind. */
uint64_t errors_total(const struct bench *b)
{
    uint64_t t = 0;
    for (int i = 0; i < E__N; i++)
        t += b->errors[i];
    return t;
}

/* Seconds of CPU (user + system) this process has used. */
double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Seconds of CPU (utime + stime, all threads) of pid from /proc/PID/stat, or -1. */
double proc_cpu_s(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces and ')' */
    if (!p || !p[1]) return -1;
    /* After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime. */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in KiB from /proc/PID/status, or -1. */
long proc_rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* Prints the summary as text. */
void report_text(const struct bench *b)
{
    const struct options *o = &b->o;
    double secs = (double)(b->m_t1 - b->m_t0) / 1e9;
    double rate = secs > 0 ? (double)b->c.msgs / secs : 0;
    double mbs = secs > 0 ? (double)b->c.bytes / secs / 1e6 : 0;
    double self = secs > 0 ? (b->self_cpu1 - b->self_cpu0) / secs * 100.0 : 0;
    printf("weft bench: %s %s\n", mode_names[o->mode], o->url);
    printf("  setup      %ld connections", o->conns);
    if (o->mode == MODE_ROOM) printf(" (%ld senders)", b->nsenders);
    if (o->mode == MODE_HUB)
        printf(" (%ld senders, %ld joined room \"%s\")", b->nsenders, b->members_start, o->room);
    if (o->mode == MODE_ECHO || room_like(b)) {
        if (o->rate > 0)
            printf(", open loop %.0f msgs/s", o->rate);
        else
            printf(", %ld in flight", o->window);
        if (o->mode == MODE_HUB)
            printf(", %ld-byte \"data\"", o->size);
        else
            printf(", %ld-byte %s messages", o->size, o->binary ? "binary" : "text");
    }
    printf(", %.1f s measured", secs);
    if (o->mode != MODE_IDLE) printf(" after %.1f s warm-up", o->warmup);
    printf("; %ld opened (peak %ld open)\n", b->opened_total, b->peak_open);
    if (o->deflate)
        printf("  transport  %s, offered \"%s\": negotiated on %ld connections\n",
               o->tls ? "TLS" : "plain", b->pmd_offer, b->pmd_conns);
    else if (o->tls)
        printf("  transport  TLS\n");
    if (o->read_rate > 0)
        printf("  reading    at most %.0f bytes/s per connection (slow readers)\n", o->read_rate);
    if (o->history_rate > 0)
        printf("  history    %" PRIu64 " requests (history, join with since), %" PRIu64
               " answered, %" PRIu64 " kept messages replayed\n",
               b->hist_reqs, b->hist_replies, b->replayed);
    if (o->mode == MODE_ECHO || room_like(b)) {
        printf("  %-10s %" PRIu64 " (%.0f msgs/s, %.2f MB/s)\n",
               room_like(b) ? "deliveries" : "messages", b->c.msgs, rate, mbs);
    } else if (o->mode == MODE_CONNECT) {
        printf("  cycles     %" PRIu64 " open + close (%.0f handshakes/s)\n", b->c.msgs, rate);
    }
    if (o->mode != MODE_IDLE) {
        const struct hist *h = &b->lat;
        if (h->count) {
            printf("  latency    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us"
                   " (%s)\n",
                   (double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 90) / 1e3,
                   (double)hist_percentile(h, 99) / 1e3, (double)hist_percentile(h, 99.9) / 1e3,
                   (double)h->max / 1e3, hist_mean(h) / 1e3,
                   o->mode == MODE_CONNECT ? "connect to 101"
                   : o->rate > 0           ? "from the intended send time"
                                           : "closed loop, from the send");
        } else {
            printf("  latency    none measured%s\n",
                   o->size < TS_BYTES && o->mode == MODE_ECHO ? " (needs -s 8 or more)" : "");
        }
    }
    printf("  errors     ");
    if (!errors_total(b)) {
        printf("none\n");
    } else {
        const char *sep = "";
        for (int i = 0; i < E__N; i++)
            if (b->errors[i]) {
                printf("%s%s %" PRIu64, sep, err_names[i], b->errors[i]);
                sep = ", ";
            }
        printf("\n");
    }
    printf("  generator  %.0f %% of a core\n", self);
    if (o->server_pid) {
        double scpu = b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0 ? b->srv_cpu1 - b->srv_cpu0 : -1;
        printf("  server     pid %ld:", o->server_pid);
        if (scpu >= 0 && secs > 0) printf(" %.0f %% of a core", scpu / secs * 100.0);
        if (scpu >= 0 && b->c.msgs)
            printf(", %.3f us CPU per %s", scpu * 1e6 / (double)b->c.msgs,
                   room_like(b)              ? "delivery"
                   : o->mode == MODE_CONNECT ? "open+close"
                                             : "message");
        if (b->rss_after >= 0) printf(", RSS %ld KiB", b->rss_after);
        if (o->mode == MODE_IDLE && b->rss_before >= 0 && b->rss_after >= 0 && b->peak_open > 0)
            printf(" (%.2f KiB per connection over %ld KiB before)",
                   (double)(b->rss_after - b->rss_before) / (double)b->peak_open, b->rss_before);
        printf("\n");
    }
    if (self > 90.0)
        printf("WARNING: the generator used %.0f %% of a core: it, not the server, may be the "
               "bottleneck; the throughput is a lower bound\n",
               self);
}

/* A real rounded to `decimals` places (the precision the summary has always printed). */
static json_t *real(double v, int decimals)
{
    double m = pow(10, decimals);
    return json_real(round(v * m) / m);
}

/* A whole number of a double printed without decimals. */
static json_t *whole(double v)
{
    return json_integer((json_int_t)llround(v));
}

/* The latency histogram in microseconds. */
static json_t *latency_json(const struct hist *h)
{
    return json_pack(
        "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "count", (json_int_t)h->count, "min",
        real(h->count ? (double)h->min / 1e3 : 0.0, 3), "mean", real(hist_mean(h) / 1e3, 3), "p50",
        real((double)hist_percentile(h, 50) / 1e3, 3), "p90",
        real((double)hist_percentile(h, 90) / 1e3, 3), "p99",
        real((double)hist_percentile(h, 99) / 1e3, 3), "p999",
        real((double)hist_percentile(h, 99.9) / 1e3, 3), "max", real((double)h->max / 1e3, 3));
}

/* The server's readings (--server-pid), or JSON null without it. */
static json_t *server_json(const struct bench *b, double secs)
{
    const struct options *o = &b->o;
    if (!o->server_pid) return json_null();
    double scpu = b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0 ? b->srv_cpu1 - b->srv_cpu0 : -1;
    json_t *s = json_object();
    json_object_set_new(s, "pid", json_integer(o->server_pid));
    json_object_set_new(s, "cpu_pct",
                        scpu >= 0 && secs > 0 ? real(scpu / secs * 100.0, 1) : json_null());
    json_object_set_new(s, "cpu_us_per_msg",
                        scpu >= 0 && b->c.msgs ? real(scpu * 1e6 / (double)b->c.msgs, 4)
                                               : json_null());
    json_object_set_new(s, "rss_before_kib", json_integer(b->rss_before));
    json_object_set_new(s, "rss_kib", json_integer(b->rss_after));
    json_object_set_new(s, "rss_per_conn_kib",
                        b->rss_before >= 0 && b->rss_after >= 0 && b->peak_open > 0
                            ? real((double)(b->rss_after - b->rss_before) / (double)b->peak_open, 3)
                            : json_null());
    return s;
}

/* Prints the summary as one JSON object on one line (keys documented in --help). Returns 0,
 * or -1 when out of memory (message printed). */
int report_json(const struct bench *b)
{
    const struct options *o = &b->o;
    double secs = (double)(b->m_t1 - b->m_t0) / 1e9;
    double self = secs > 0 ? (b->self_cpu1 - b->self_cpu0) / secs * 100.0 : 0;
    json_t *j = json_object();
    json_t *errs = json_object();
    if (!j || !errs) {
        json_decref(j);
        json_decref(errs);
        fputs("weft bench: out of memory\n", stderr);
        return -1;
    }
#define SET(k, v) json_object_set_new(j, k, v)
    SET("mode", json_string(mode_names[o->mode]));
    SET("url", json_string(o->url));
    SET("connections", json_integer(o->conns));
    SET("opened", json_integer(b->opened_total));
    SET("peak_open", json_integer(b->peak_open));
    SET("senders", json_integer(room_like(b) ? b->nsenders : 0));
    SET("members", json_integer(b->members_start));
    SET("size", json_integer(o->size));
    SET("window", json_integer(o->window));
    SET("rate", whole(o->rate));
    SET("binary", json_boolean(o->binary));
    SET("warmup_s", real(o->warmup, 3));
    SET("duration_s", real(secs, 3));
    SET("tls", json_boolean(o->tls));
    SET("deflate_conns", json_integer(b->pmd_conns));
    SET("read_rate", whole(o->read_rate));
    SET("history_requests", json_integer((json_int_t)b->hist_reqs));
    SET("history_replies", json_integer((json_int_t)b->hist_replies));
    SET("replayed", json_integer((json_int_t)b->replayed));
    SET("messages", json_integer((json_int_t)b->c.msgs));
    SET("sent", json_integer((json_int_t)b->c.sent));
    SET("msgs_per_s", real(secs > 0 ? (double)b->c.msgs / secs : 0.0, 1));
    SET("mb_per_s", real(secs > 0 ? (double)b->c.bytes / secs / 1e6 : 0.0, 3));
    SET("latency_us", latency_json(&b->lat));
    json_object_set_new(errs, "total", json_integer((json_int_t)errors_total(b)));
    for (int i = 0; i < E__N; i++)
        json_object_set_new(errs, err_names[i], json_integer((json_int_t)b->errors[i]));
    SET("errors", errs);
    SET("client_cpu_pct", real(self, 1));
    SET("generator_bound", json_boolean(self > 90.0));
    SET("server", server_json(b, secs));
#undef SET
    char *text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(j);
    if (!text) {
        fputs("weft bench: out of memory\n", stderr);
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}
