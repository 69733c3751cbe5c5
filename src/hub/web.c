/*
 * web.c — the web page of `weft serve`: static files (GET / and everything no other route
 * takes) from the web root, with a Content-Type per extension, ETag / Last-Modified and
 * Cache-Control: no-cache (the browser revalidates and gets a cheap 304), and 404 for
 * anything else, including every path that would leave the root:
 *   - the path is percent-decoded once; a NUL, a backslash, a bad escape, a "." or ".."
 *     segment or a hidden (dot) file is refused before the file system is touched;
 *   - the joined name is resolved with realpath(3) and must still lie under the root's own
 *     realpath, so a symlink that points outside the root is refused too.
 * The web root is --web-root, else the web/ directory shipped with weft: <prefix>/share/weft/web
 * relative to the executable (an installed weft), else the source tree's web/ (WEFT_WEB_DIR,
 * set by CMake).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/internal.h"
#include "hub/pct.h"

#ifndef WEFT_WEB_DIR
#define WEFT_WEB_DIR "web"
#endif

#define WEB_PATH_MAX 1024
#define WEB_FILE_MAX (8u * 1024 * 1024)
#define NAME_MAX_BYTES 32

struct hub_web {
    char *root; /* realpath of the web root, NULL when there is none */
    size_t root_len;
};

/* Headers of every file response: no MIME sniffing, a strict content security policy (the
 * page loads only its own files and opens WebSockets to its own origin), no referrer. */
#define SECURITY_HEADERS                                                                           \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "                   \
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"        \
    "Referrer-Policy: no-referrer\r\n"

/* Content types by file extension (lower case, without the dot). */
static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"wasm", "application/wasm"},
    {"webmanifest", "application/manifest+json"},
};

/* The Content-Type of a file name (application/octet-stream when the extension is unknown). */
static const char *content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* True if the decoded request path is acceptable: absolute, no backslash, and no segment
 * that is ".", ".." or starts with a dot (hidden files, ".git"). */
static bool path_safe(const char *p)
{
    if (p[0] != '/' || strchr(p, '\\')) return false;
    for (const char *seg = p + 1; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n > 0 && seg[0] == '.') return false;
        seg += n;
        if (*seg == '/') seg++;
    }
    return true;
}

/* True if the resolved name lies under the root (or is the root itself). */
static bool under_root(const struct hub_web *w, const char *real)
{
    return !strncmp(real, w->root, w->root_len) &&
           (real[w->root_len] == '/' || real[w->root_len] == '\0');
}

/* Resolves a directory candidate; stores its realpath in w on success. */
static bool try_root(struct hub_web *w, const char *dir)
{
    char *real = realpath(dir, NULL);
    struct stat st;
    if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(real);
        return false;
    }
    w->root = real;
    w->root_len = strlen(real);
    if (w->root_len == 1) /* "/" as the root: under_root compares against an empty prefix */
        w->root_len = 0;
    return true;
}

/* Resolves the web root; see internal.h. */
int web_init(struct hub *h, char *err, size_t errcap)
{
    struct hub_web *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    h->web = w;
    if (h->cfg.web_root) {
        if (!try_root(w, h->cfg.web_root)) {
            snprintf(err, errcap, "--web-root %s: not a readable directory: %s", h->cfg.web_root,
                     strerror(errno ? errno : ENOTDIR));
            return -1;
        }
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char dir[PATH_MAX + 32];
            snprintf(dir, sizeof dir, "%s/../share/weft/web", exe);
            if (try_root(w, dir)) return 0;
        }
    }
    if (!try_root(w, WEFT_WEB_DIR))
        hlog(&h->log, WEFT_LOG_WARN, NULL, json_pack("{s:s}", "event", "no_web_root"),
             "no web root found (tried share/weft/web and %s): GET / answers 404; use --web-root",
             WEFT_WEB_DIR);
    return 0;
}

/* Frees the web root; see internal.h. */
void web_free(struct hub *h)
{
    if (!h->web) return;
    free(h->web->root);
    free(h->web);
    h->web = NULL;
}

/* Responds 404 with a short body. */
static void not_found(struct weft_request *req)
{
    static const char body[] = "not found\n";
    weft_request_respond(req, 404, "text/plain; charset=utf-8",
                         "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n", body,
                         sizeof body - 1);
}

/* True if an If-None-Match value lists etag (or is "*"). */
static bool etag_matches(const char *v, size_t len, const char *etag)
{
    size_t el = strlen(etag), pos = 0, ilen;
    const char *item;
    while (weft_http_list_next(v, len, &pos, &item, &ilen)) {
        if (ilen > 2 && item[0] == 'W' && item[1] == '/') { /* weak comparison */
            item += 2;
            ilen -= 2;
        }
        if ((ilen == 1 && item[0] == '*') || (ilen == el && !memcmp(item, etag, el))) return true;
    }
    return false;
}

/* True if path[0..len) is one of the hub's WebSocket routes (a plain GET there gets 426, as
 * the library answers when no HTTP route takes such a path). */
static bool ws_path(const char *path, size_t len)
{
    return (len == 4 && !memcmp(path, "/hub", 4)) || (len == 5 && !memcmp(path, "/echo", 5)) ||
           (len == 3 && !memcmp(path, "/ws", 3)) || (len > 4 && !memcmp(path, "/ws/", 4));
}

/* Serves a static file; see internal.h. */
void web_http(struct weft_request *req, void *route_user)
{
    struct hub *h = route_user;
    struct hub_web *w = h->web;
    size_t plen;
    const char *raw = weft_request_path(req, &plen);
    if (ws_path(raw, plen)) {
        static const char body[] = "this path is a WebSocket endpoint\n";
        weft_request_respond(req, 426, NULL, "Upgrade: websocket\r\n", body, sizeof body - 1);
        return;
    }
    char path[WEB_PATH_MAX];
    if (!w || !w->root || !web_path_decode(raw, plen, path, sizeof path)) {
        not_found(req);
        return;
    }
    char full[PATH_MAX + WEB_PATH_MAX + 16];
    size_t dl = strlen(path);
    snprintf(full, sizeof full, "%s%s%s", w->root, path, path[dl - 1] == '/' ? "index.html" : "");
    char *real = realpath(full, NULL);
    struct stat st;
    if (real && under_root(w, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* a directory without the trailing slash: its index.html */
        snprintf(full, sizeof full, "%s/index.html", real);
        free(real);
        real = realpath(full, NULL);
    }
    if (!real || !under_root(w, real)) {
        free(real);
        not_found(req);
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    const char *ctype = content_type(real);
    free(real);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > WEB_FILE_MAX) {
        if (fd >= 0) close(fd);
        not_found(req);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    char date[64];
    struct tm tm;
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char headers[1024];
    snprintf(headers, sizeof headers,
             "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n" SECURITY_HEADERS, etag,
             date);
    size_t vl;
    const char *inm = weft_request_header(req, "If-None-Match", &vl);
    const char *ims = inm ? NULL : weft_request_header(req, "If-Modified-Since", &vl);
    if ((inm && etag_matches(inm, vl, etag)) ||
        (ims && vl == strlen(date) && !memcmp(ims, date, vl))) {
        close(fd);
        weft_request_respond(req, 304, ctype, headers, "", 0);
        return;
    }
    size_t size = (size_t)st.st_size;
    char *body = malloc(size ? size : 1);
    size_t got = 0;
    while (body && got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!body || got != size) {
        free(body);
        static const char oops[] = "cannot read the file\n";
        weft_request_respond(req, 500, NULL, NULL, oops, sizeof oops - 1);
        return;
    }
    weft_request_respond(req, 200, ctype, headers, body, size);
    free(body);
}

/* Decodes a request path and checks it; see internal.h. */
bool web_path_decode(const char *raw, size_t len, char *out, size_t cap)
{
    return hub_pct_decode(raw, len, out, cap, false) >= 0 && path_safe(out);
}

/* The display name of "?name="; see internal.h. */
char *web_query_name(struct weft_request *req)
{
    size_t len;
    const char *q = weft_request_query(req, &len);
    return web_name_from_query(q, len);
}

/* The display name in a query string; see internal.h. */
char *web_name_from_query(const char *q, size_t len)
{
    size_t pos = 0;
    while (q && pos < len) {
        const char *amp = memchr(q + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - q) : len;
        if (end - pos > 5 && !memcmp(q + pos, "name=", 5)) {
            char name[NAME_MAX_BYTES * 3 + 1];
            long n = hub_pct_decode(q + pos + 5, end - pos - 5, name, sizeof name, true);
            if (n <= 0 || n > NAME_MAX_BYTES || !weft_utf8_valid((const uint8_t *)name, (size_t)n))
                return NULL;
            for (long i = 0; i < n; i++)
                if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return NULL;
            return strdup(name);
        }
        pos = end + 1;
    }
    return NULL;
}
