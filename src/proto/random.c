/*
 * random.c — random bytes for client masking keys and handshake nonces.
 *
 * A struct weft_random keeps a 256-byte pool filled by getrandom(2), the one system call that
 * proto/ makes. Small requests (4-byte mask keys, 16-byte nonces) are served from the pool, so
 * a client sending many frames makes one system call per 64 frames. Bytes handed out are wiped
 * from the pool at once, so a later leak of the struct does not reveal keys already used.
 * Requests larger than the pool bypass it and go straight to getrandom.
 *
 * Fallback: if getrandom fails (ENOSYS on a pre-3.17 kernel, EPERM under a seccomp filter,
 * ...) the bytes are produced by a SplitMix64 generator seeded from the clock, the CPU cycle
 * counter where there is one, and the addresses of the struct, the output and the stack (all
 * varying with ASLR). That is unpredictable enough for RFC 6455 masking to defeat cache
 * poisoning by naive intermediaries, but it is NOT cryptographically strong, so the call then
 * returns WEFT_ERR_IO and leaves the pool empty so that the next call tries the kernel again.
 */
#include "weft.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Asks the kernel for len random bytes into out, retrying on EINTR and short reads.
 * Returns true if all len bytes came from getrandom(2). */
static bool kernel_random(uint8_t *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* One step of SplitMix64: advances *state and returns the next 64-bit output. */
static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Weak fallback used only when getrandom(2) fails: fills out[0..len) from SplitMix64 seeded
 * with the time, the cycle counter and a few addresses (see the comment at the top). */
static void fallback_random(struct weft_random *r, uint8_t *out, size_t len)
{
    struct timespec ts = {0, 0};
    (void)timespec_get(&ts, TIME_UTC);
    uint64_t state = (uint64_t)ts.tv_sec * 1000000007u + (uint64_t)ts.tv_nsec;
    state ^= (uint64_t)(uintptr_t)r * 0x2545f4914f6cdd1du;
    state ^= (uint64_t)(uintptr_t)out << 17;
    state ^= (uint64_t)(uintptr_t)&state >> 3;
#if defined(__x86_64__) || defined(__i386__)
    state ^= __builtin_ia32_rdtsc() * 0x9e3779b97f4a7c15u;
#endif
    for (size_t i = 0; i < sizeof r->pool; i++) /* whatever the pool still holds */
        state = (state ^ r->pool[i]) * 0x100000001b3u;

    size_t i = 0;
    while (i < len) {
        uint64_t word = splitmix64_next(&state);
        size_t n = len - i < sizeof word ? len - i : sizeof word;
        memcpy(out + i, &word, n);
        i += n;
    }
}

/* Fills out[0..len) with random bytes from the pool, refilling it from getrandom(2) as needed.
 * Returns WEFT_OK, or WEFT_ERR_IO when the kernel refused (out is then filled by the weak
 * fallback generator). */
int weft_random_bytes(struct weft_random *r, void *out, size_t len)
{
    uint8_t *dst = out;
    if (len == 0) return WEFT_OK;

    if (len > sizeof r->pool) {
        if (kernel_random(dst, len)) return WEFT_OK;
        fallback_random(r, dst, len);
        return WEFT_ERR_IO;
    }

    while (len > 0) {
        if (!r->filled || r->pos >= sizeof r->pool) {
            if (!kernel_random(r->pool, sizeof r->pool)) {
                r->filled = 0;
                r->pos = 0;
                fallback_random(r, dst, len);
                return WEFT_ERR_IO;
            }
            r->filled = 1;
            r->pos = 0;
        }
        size_t avail = sizeof r->pool - r->pos;
        size_t n = len < avail ? len : avail;
        memcpy(dst, r->pool + r->pos, n);
        memset(r->pool + r->pos, 0, n); /* forget bytes once they are handed out */
        r->pos = (uint16_t)(r->pos + n);
        dst += n;
        len -= n;
    }
    return WEFT_OK;
}
