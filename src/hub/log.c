/*
 * log.c — structured logs: one JSON object per line on the log stream (default), or plain
 * text ("weft: info: [conn-id] message key=value") with --log-format text. Each line is built
 * in memory and written with one write(2), so the lines of several workers never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/internal.h"

/* Name of a weft log level. */
static const char *level_name(int level)
{
    switch (level) {
    case WEFT_LOG_DEBUG:
        return "debug";
    case WEFT_LOG_INFO:
        return "info";
    case WEFT_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

/* Writes an RFC 3339 UTC timestamp with milliseconds into out[32]. */
static void timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Writes line[0..len) (ending in '\n') to out's file descriptor with one write(2), looping
 * only on a partial write or EINTR; anything already buffered in out goes first. A failed
 * write drops the line (logging never stops the server). */
static void write_line(FILE *out, const char *line, size_t len)
{
    fflush(out);
    int fd = fileno(out);
    while (len > 0 && fd >= 0) {
        ssize_t w = write(fd, line, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        line += w;
        len -= (size_t)w;
    }
}

/* Writes one line (the level check is done by the callers). Consumes fields. */
static void emit(const struct hub_log *lg, int level, const char *conn, json_t *fields,
                 const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    FILE *out = lg->out ? lg->out : stderr;
    if (lg->format == HUB_LOG_TEXT) {
        char extra[1024] = "";
        size_t n = 0;
        const char *key;
        json_t *v;
        if (fields && json_is_object(fields)) {
            json_object_foreach(fields, key, v)
            {
                char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                const char *txt = json_is_string(v) ? json_string_value(v) : (s ? s : "?");
                int w = snprintf(extra + n, sizeof extra - n, " %s=%s", key, txt);
                free(s);
                if (w < 0 || (size_t)w >= sizeof extra - n) break;
                n += (size_t)w;
            }
        }
        char line[2400];
        int w = snprintf(line, sizeof line, "weft: %s: %s%s%s%s%s\n", level_name(level),
                         conn ? "[" : "", conn ? conn : "", conn ? "] " : "", msg, extra);
        if (w > 0) {
            size_t len = (size_t)w < sizeof line ? (size_t)w : sizeof line - 1;
            line[len - 1] = '\n'; /* a truncated line still ends its line */
            write_line(out, line, len);
        }
    } else {
        char ts[32];
        timestamp(ts);
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "ts", json_string(ts));
            json_object_set_new(o, "level", json_string(level_name(level)));
            json_object_set_new(o, "msg", json_string(msg));
            if (conn) json_object_set_new(o, "conn", json_string(conn));
            if (fields && json_is_object(fields)) json_object_update(o, fields);
            char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            size_t len = line ? strlen(line) : 0;
            char *whole = line ? realloc(line, len + 2) : NULL;
            if (whole) {
                whole[len] = '\n';
                write_line(out, whole, len + 1);
                free(whole);
            } else {
                free(line);
            }
            json_decref(o);
        }
    }
    json_decref(fields);
}

/* Logs a line if level is enabled; see internal.h. */
void hlog(const struct hub_log *lg, int level, const char *conn, json_t *fields, const char *fmt,
          ...)
{
    if (level < lg->level) {
        json_decref(fields);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    emit(lg, level, conn, fields, fmt, ap);
    va_end(ap);
}

/* Logs a line whatever the level; see internal.h. */
void hlog_always(const struct hub_log *lg, int level, const char *conn, json_t *fields,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(lg, level, conn, fields, fmt, ap);
    va_end(ap);
}
