/*
 * auth.c — bearer tokens: HS256 JWTs checked with libjwt (signature and algorithm), with
 * exp/nbf honoured here, and a revocation list of token ids (jti) read from a file that is
 * re-read whenever it changes.
 */
#include <errno.h>
#include <jwt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub/internal.h"

/* Longest token accepted (bytes). */
#define TOKEN_MAX 8192

struct hub_auth {
    unsigned char *secret;
    size_t secret_len;
    char *revoked_path;
    char **jtis; /* sorted, for bsearch */
    size_t njtis;
    struct stat st; /* of the file when last read (st_ino 0: never read) */
    bool have_st;
    bool allow_no_exp; /* accept tokens without exp (auth_allow_no_exp) */
};

/* strcmp for qsort/bsearch over char *. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Frees a list of strings. */
static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Reads the revocation file: one jti per line, blank lines and '#' comments ignored.
 * Returns 0 and replaces the list, or -1 (errno) keeping the old one. */
static int read_revoked(struct hub_auth *a)
{
    FILE *f = fopen(a->revoked_path, "r");
    if (!f) {
        if (errno == ENOENT) { /* no file: nothing is revoked */
            free_list(a->jtis, a->njtis);
            a->jtis = NULL;
            a->njtis = 0;
            return 0;
        }
        return -1;
    }
    char **l = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL; /* a whole line, however long (a cut one would leave its end read as
                          an id of its own) */
    size_t linecap = 0;
    while (getline(&line, &linecap, f) >= 0) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        s[strcspn(s, " \t\r\n#")] = '\0';
        if (!*s) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nl = realloc(l, cap * sizeof *nl);
            if (!nl) goto oom;
            l = nl;
        }
        if (!(l[n] = strdup(s))) goto oom;
        n++;
    }
    free(line);
    fclose(f);
    if (n) qsort(l, n, sizeof *l, cmp_str);
    free_list(a->jtis, a->njtis);
    a->jtis = l;
    a->njtis = n;
    return 0;
oom:
    free(line);
    fclose(f);
    free_list(l, n);
    errno = ENOMEM;
    return -1;
}

/* Creates the verifier. revoked_path may be NULL. Returns NULL with err on failure. */
struct hub_auth *auth_new(const char *secret, const char *revoked_path, char *err, size_t cap)
{
    struct hub_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (secret) {
        a->secret_len = strlen(secret);
        a->secret = (unsigned char *)strdup(secret);
    }
    if (revoked_path) {
        a->revoked_path = strdup(revoked_path);
        size_t n;
        if (!a->revoked_path || auth_reload(a, &n) < 0) {
            snprintf(err, cap, "cannot read --revoked %s: %s", revoked_path, strerror(errno));
            auth_free(a);
            return NULL;
        }
    }
    return a;
}

/* Frees the verifier. */
void auth_free(struct hub_auth *a)
{
    if (!a) return;
    if (a->secret) {
        memset(a->secret, 0, a->secret_len);
        free(a->secret);
    }
    free(a->revoked_path);
    free_list(a->jtis, a->njtis);
    free(a);
}

/* Re-reads the revocation file when its identity, size or mtime changed; see internal.h. */
int auth_reload(struct hub_auth *a, size_t *n)
{
    *n = a->njtis;
    if (!a->revoked_path) return 0;
    struct stat st;
    bool exists = stat(a->revoked_path, &st) == 0;
    if (!exists) memset(&st, 0, sizeof st);
    if (a->have_st && st.st_ino == a->st.st_ino && st.st_size == a->st.st_size &&
        st.st_mtim.tv_sec == a->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == a->st.st_mtim.tv_nsec)
        return 0;
    if (read_revoked(a) < 0) return -1;
    a->st = st;
    a->have_st = true;
    *n = a->njtis;
    return 1;
}

/* True if jti is revoked. */
bool auth_revoked(const struct hub_auth *a, const char *jti)
{
    if (!jti || !a->njtis) return false;
    return bsearch(&jti, a->jtis, a->njtis, sizeof *a->jtis, cmp_str) != NULL;
}

/* Writes a reason and returns -1. */
static int why_fail(char *why, size_t cap, const char *text)
{
    snprintf(why, cap, "%s", text);
    return -1;
}

/* Verifies a token; see internal.h. */
int auth_verify(struct hub_auth *a, const char *token, size_t len, int64_t now_s,
                struct auth_claims *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!a->secret) return why_fail(why, cap, "auth is not configured");
    if (len == 0 || len > TOKEN_MAX) return why_fail(why, cap, "malformed token");
    char *tok = strndup(token, len);
    if (!tok) return why_fail(why, cap, "out of memory");
    jwt_t *jwt = NULL;
    int r = jwt_decode(&jwt, tok, a->secret, (int)a->secret_len);
    free(tok);
    if (r != 0 || !jwt) {
        jwt_free(jwt);
        return why_fail(why, cap,
                        r == EINVAL ? "bad signature or malformed token" : "malformed token");
    }
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        jwt_free(jwt);
        return why_fail(why, cap, "algorithm must be HS256");
    }
    char *claims_text = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    json_t *claims = claims_text ? json_loads(claims_text, 0, NULL) : NULL;
    free(claims_text);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return why_fail(why, cap, "malformed claims");
    }
    int ret = -1;
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *sub = json_object_get(claims, "sub");
    json_t *jti = json_object_get(claims, "jti");
    json_t *rooms = json_object_get(claims, "rooms");
    if (!exp && !a->allow_no_exp) {
        why_fail(why, cap, "token without exp");
    } else if (exp && !json_is_number(exp)) {
        why_fail(why, cap, "exp is not a number");
    } else if (exp && json_number_value(exp) >= 9223372036854775807.0) {
        /* beyond int64_t (out->exp): converting it would be undefined (found by fuzz_auth) */
        why_fail(why, cap, "exp out of range");
    } else if (exp && json_number_value(exp) <= (double)now_s) {
        why_fail(why, cap, "token expired");
    } else if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)now_s)) {
        why_fail(why, cap, "token not yet valid");
    } else if ((sub && !json_is_string(sub)) || (jti && !json_is_string(jti))) {
        why_fail(why, cap, "sub and jti must be strings");
    } else if (rooms && !json_is_array(rooms)) {
        why_fail(why, cap, "rooms must be an array of strings");
    } else if (jti && auth_revoked(a, json_string_value(jti))) {
        why_fail(why, cap, "token revoked");
    } else {
        size_t i;
        json_t *v;
        ret = 0;
        if (rooms) json_array_foreach(rooms, i, v) if (!json_is_string(v)) ret = -1;
        if (ret < 0) {
            why_fail(why, cap, "rooms must be an array of strings");
        } else {
            out->sub = sub ? strdup(json_string_value(sub)) : NULL;
            out->jti = jti ? strdup(json_string_value(jti)) : NULL;
            out->exp = exp ? (int64_t)json_number_value(exp) : 0;
            out->rooms = rooms ? json_incref(rooms) : NULL;
        }
    }
    json_decref(claims);
    return ret;
}

/* Frees the strings of claims. */
void auth_claims_free(struct auth_claims *c)
{
    free(c->sub);
    free(c->jti);
    json_decref(c->rooms);
    memset(c, 0, sizeof *c);
}

/* Sets whether tokens without exp are accepted; see internal.h. */
void auth_allow_no_exp(struct hub_auth *a, bool allow)
{
    a->allow_no_exp = allow;
}

/* Matches a room against the patterns of a "rooms" claim. */
bool auth_room_allowed(const json_t *rooms, const char *room)
{
    if (!rooms) return true;
    size_t i;
    json_t *v;
    json_array_foreach(rooms, i, v)
    {
        const char *p = json_string_value(v);
        size_t pl = strlen(p);
        if (pl && p[pl - 1] == '*') {
            if (!strncmp(room, p, pl - 1)) return true;
        } else if (!strcmp(room, p)) {
            return true;
        }
    }
    return false;
}
