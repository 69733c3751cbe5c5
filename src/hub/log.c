/*
 * log.c — structured logs: one JSON object per line on the log stream (default), or plain
 * text ("weft: info: [conn-id] message key=value") with --log-format text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hub/internal.h"

/* Name of a weft log level. */
static const char *level_name(int level)
{
    switch (level) {
    case WEFT_LOG_DEBUG: return "debug";
    case WEFT_LOG_INFO: return "info";
    case WEFT_LOG_WARN: return "warn";
    default: return "error";
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
            json_object_foreach(fields, key, v) {
                char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                const char *txt = json_is_string(v) ? json_string_value(v) : (s ? s : "?");
                int w = snprintf(extra + n, sizeof extra - n, " %s=%s", key, txt);
                free(s);
                if (w < 0 || (size_t)w >= sizeof extra - n)
                    break;
                n += (size_t)w;
            }
        }
        fprintf(out, "weft: %s: %s%s%s%s%s\n", level_name(level), conn ? "[" : "",
                conn ? conn : "", conn ? "] " : "", msg, extra);
    } else {
        char ts[32];
        timestamp(ts);
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "ts", json_string(ts));
            json_object_set_new(o, "level", json_string(level_name(level)));
            json_object_set_new(o, "msg", json_string(msg));
            if (conn)
                json_object_set_new(o, "conn", json_string(conn));
            if (fields && json_is_object(fields))
                json_object_update(o, fields);
            char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (line) {
                fputs(line, out);
                fputc('\n', out);
                free(line);
            }
            json_decref(o);
        }
    }
    fflush(out);
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
