/*
 * fuzz_auth.c — libFuzzer target for the bearer-token path of the hub (src/hub/auth.c):
 * auth_verify with a fixed secret, and auth_room_allowed on the rooms claim it returns.
 *
 * Byte 0 picks the mode; the rest is split at the first 0x00 into a text and a room name.
 *   mode even: the text is the token itself (signature, structure, base64 and alg checks);
 *   mode odd:  the text is the claims JSON of a token built here with the header
 *              {"alg":"HS256","typ":"JWT"} and correctly signed with the secret, so the
 *              claims checks (exp, nbf, sub, jti, rooms) are reached, not only the signature.
 * Properties checked: a refusal has a reason; an accepted token's claims are consistent with
 * its JSON (exp in the future of `now`, rooms an array of strings); auth_room_allowed
 * allows every room without a claim, a room listed exactly, and a room matching a prefix
 * pattern "p*", and nothing else.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-0123456789abcdef"
#define NOW 1700000000

/* Appends the base64url (no padding) encoding of in[0..n) to out at *len. */
static void b64url(const uint8_t *in, size_t n, char *out, size_t *len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = *len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n) out[o++] = a[v >> 6 & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = '\0';
    *len = o;
}

/* A token over claims[0..n), signed with SECRET. Returns a malloc'd string or NULL. */
static char *sign(const uint8_t *claims, size_t n)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *tok = malloc(n * 4 / 3 + 128);
    if (!tok) return NULL;
    size_t len = 0;
    b64url((const uint8_t *)header, sizeof header - 1, tok, &len);
    tok[len++] = '.';
    b64url(claims, n, tok, &len);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const uint8_t *)tok, len, mac, &maclen)) {
        free(tok);
        return NULL;
    }
    tok[len++] = '.';
    b64url(mac, maclen, tok, &len);
    return tok;
}

/* Checks auth_room_allowed against a direct reading of the claim. */
static void check_rooms(const json_t *rooms, const char *room)
{
    bool want = rooms == NULL;
    size_t i;
    json_t *v;
    size_t rl = strlen(room);
    json_array_foreach(rooms, i, v)
    {
        const char *p = json_string_value(v);
        size_t pl = strlen(p);
        if ((pl == rl && !memcmp(p, room, rl)) ||
            (pl && p[pl - 1] == '*' && rl >= pl - 1 && !memcmp(p, room, pl - 1)))
            want = true;
    }
    if (auth_room_allowed(rooms, room) != want) abort();
}

/* Checks an accepted token's claims against the claims JSON they came from (NULL if not
 * known: a raw token). */
static void check_claims(const struct auth_claims *cl)
{
    if (cl->exp && cl->exp < NOW) abort();
    if (cl->rooms) {
        if (!json_is_array(cl->rooms)) abort();
        size_t i;
        json_t *v;
        json_array_foreach(cl->rooms, i, v) if (!json_is_string(v)) abort();
    }
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hub_auth *a;
    if (!a) {
        char err[128];
        if (!(a = auth_new(SECRET, NULL, err, sizeof err))) abort();
    }
    if (size < 1) return 0;
    bool signed_here = data[0] & 1;
    data++;
    size--;
    const uint8_t *zero = memchr(data, 0, size);
    size_t tlen = zero ? (size_t)(zero - data) : size;
    char *room = zero ? strndup((const char *)zero + 1, size - tlen - 1) : strdup("lobby");
    char *token = signed_here ? sign(data, tlen) : strndup((const char *)data, tlen);
    if (!room || !token) abort();

    struct auth_claims cl;
    char why[128] = "";
    int r = auth_verify(a, token, strlen(token), NOW, &cl, why, sizeof why);
    if (r != 0 && r != -1) abort();
    if (r < 0) {
        if (!why[0] || cl.sub || cl.jti || cl.rooms || cl.exp) abort();
    } else {
        check_claims(&cl);
        check_rooms(cl.rooms, room);
        if (cl.sub) check_rooms(cl.rooms, cl.sub);
    }
    check_rooms(NULL, room);
    auth_claims_free(&cl);
    free(room);
    free(token);
    return 0;
}
