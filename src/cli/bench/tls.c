/*
 * tls.c — wss:// for `weft bench`: OpenSSL directly on the generator's non-blocking sockets
 * (SSL_write / SSL_read, the TLS handshake driven by the first write). The client context
 * (TLS 1.2+, ALPN http/1.1, verification against the system store or --cacert unless
 * --insecure), the mapping of SSL results onto send/recv's, and the first failure's report.
 * The plain path only pays a branch on a NULL SSL pointer.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli/bench/bench.h"

/* Prints the first TLS failure of the run (later ones are only counted). */
static void tls_report(struct bench *b, struct bconn *c)
{
    if (b->tls_err_shown) return;
    b->tls_err_shown = true;
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (v != X509_V_OK)
        fprintf(stderr, "weft bench: TLS certificate verify failed: %s\n",
                X509_verify_cert_error_string(v));
    else if (e)
        fprintf(stderr, "weft bench: TLS error: %s\n", buf);
    ERR_clear_error();
}

/* SSL_write/SSL_read result as send/recv would give it: > 0 bytes, 0 for the peer's clean
 * end, or -1 with errno EAGAIN (TLS wants the socket readable or writable: the next epoll
 * event of either kind retries) or EIO. */
ssize_t tls_result(struct bench *b, struct bconn *c, int r)
{
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
        return 0; /* close_notify, or an EOF without it (fine for a benchmark) */
    if (c->state == C_HANDSHAKE) tls_report(b, c);
    ERR_clear_error();
    errno = EIO;
    return -1;
}

/* The TLS client context: TLS 1.2+, ALPN http/1.1, verification against the system store or
 * --cacert unless --insecure. Returns false (message printed) on failure. */
bool tls_setup(struct bench *b)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    b->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!b->ssl_ctx) return false;
    SSL_CTX_set_min_proto_version(b->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_protos(b->ssl_ctx, alpn, sizeof alpn - 1);
    if (b->o.insecure) {
        SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_NONE, NULL);
        return true;
    }
    SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = b->o.cacert ? SSL_CTX_load_verify_locations(b->ssl_ctx, b->o.cacert, NULL)
                         : SSL_CTX_set_default_verify_paths(b->ssl_ctx);
    if (ok != 1) {
        fprintf(stderr, "weft bench: cannot load CA certificates%s%s\n",
                b->o.cacert ? " from " : "", b->o.cacert ? b->o.cacert : "");
        return false;
    }
    return true;
}
