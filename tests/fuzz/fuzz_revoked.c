/*
 * fuzz_revoked.c — libFuzzer target for the revocation list of the hub (--revoked FILE, read
 * by auth_new and re-read by auth_reload when the file changes; src/hub/auth.c).
 *
 * Byte 0 picks where the rest is cut in two: the first part is the file auth_new reads, the
 * second replaces it before auth_reload; then the file is removed and reloaded once more
 * (no file: nothing revoked). After each read the list is checked against a reference
 * reading of the format ("one jti per line, blank lines and '#' comments ignored": per line,
 * up to a NUL, leading blanks skipped, the id ends at a blank, CR or '#'): the entry count
 * auth_reload reports, every id revoked, and the id with a byte appended not revoked unless
 * it is itself an id.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ids of a file's text, by the reference reading. */
struct ids {
    char **v;
    size_t n;
};

static struct ids reference(const uint8_t *text, size_t len)
{
    struct ids r = {calloc(len + 1, sizeof(char *)), 0};
    if (!r.v) abort();
    size_t i = 0;
    while (i < len) {
        const uint8_t *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t k = i;
        while (k < end && (text[k] == ' ' || text[k] == '\t'))
            k++;
        size_t s = k;
        while (k < end && text[k] && !strchr(" \t\r#", text[k]))
            k++;
        if (k > s && !(r.v[r.n++] = strndup((const char *)text + s, k - s))) abort();
        i = end + 1;
    }
    return r;
}

static void ids_free(struct ids *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
}

/* True if s is one of the reference ids. */
static bool listed(const struct ids *r, const char *s)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i], s)) return true;
    return false;
}

/* Checks the verifier's list (n entries as reported) against the reference of text. */
static void check(const struct hub_auth *a, size_t n, const uint8_t *text, size_t len)
{
    struct ids r = reference(text, len);
    if (n != r.n) abort();
    for (size_t i = 0; i < r.n; i++) {
        if (!auth_revoked(a, r.v[i])) abort();
        size_t l = strlen(r.v[i]);
        char *more = malloc(l + 2);
        if (!more) abort();
        memcpy(more, r.v[i], l);
        more[l] = 'x';
        more[l + 1] = '\0';
        if (auth_revoked(a, more) != listed(&r, more)) abort();
        free(more);
    }
    if (auth_revoked(a, NULL)) abort();
    ids_free(&r);
}

/* Replaces the file at path with text[0..len). */
static void write_file(const char *path, const uint8_t *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(text, 1, len, f) != len) || fclose(f) != 0) abort();
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/weft-fuzz-revoked-%d", (int)getpid());
    if (size < 1) return 0;
    size_t cut = (size_t)data[0] * (size - 1) / 255;
    const uint8_t *t1 = data + 1, *t2 = data + 1 + cut;
    size_t l1 = cut, l2 = size - 1 - cut;

    write_file(path, t1, l1);
    char err[256];
    struct hub_auth *a = auth_new("fuzz-secret-0123456789abcdef", path, err, sizeof err);
    if (!a) abort();
    size_t n;
    if (auth_reload(a, &n) != 0) abort(); /* unchanged since auth_new read it */
    check(a, n, t1, l1);

    write_file(path, t2, l2);
    int r = auth_reload(a, &n);
    if (r == 1)
        check(a, n, t2, l2);
    else if (r == 0) /* same size within the same mtime tick: not seen as changed */
        check(a, n, t1, l1);
    else
        abort();

    unlink(path);
    if (auth_reload(a, &n) != 1 || n != 0) abort();
    auth_free(a);
    return 0;
}
