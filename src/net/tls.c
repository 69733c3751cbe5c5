/*
 * tls.c — TLS (OpenSSL 3) as a layer under the socket API of sock.c.
 *
 * A TLS socket is a weft_sock with an SSL object and its own epoll callback (tls_on_io), so
 * the plain read path has no TLS test at all and the plain write path one (s->ssl in
 * sock_flush). The SSL object talks to the fd through a minimal BIO (recv / send with
 * MSG_NOSIGNAL: no SIGPIPE, no signal disposition changed by the library).
 *
 * Reading: SSL_read into the loop's shared receive buffer, record after record, until OpenSSL
 * wants more bytes from the kernel (the edge-triggered "drained" condition) or the buffer is
 * full; then one on_data for the whole batch.
 *
 * Writing: the output queue is written with SSL_write at the end of the iteration. Segments of
 * 16 KiB or more are written in place; smaller ones are merged, in queue order, into the
 * loop's 16 KiB scratch buffer so many small frames become one record (one syscall) instead of
 * one record each. Partial writes are enabled and the write buffer may move, so after
 * WANT_WRITE the retry passes the same queue prefix again, from wherever it is rebuilt.
 *
 * WANT_* both ways: SSL_write needing a read sets SOCK_TLS_WANT_RD (retried on the next input
 * event, before and after reading); SSL_read needing a write sets SOCK_TLS_WANT_WR (reading
 * resumes on the next output event). The handshake runs from the socket's events until done;
 * bytes queued meanwhile (a client's HTTP request) are flushed right after it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/net.h"
#include "net/outq.h"

/* Full shared buffers read in a row before yielding to other sockets (as in sock.c). */
#define READS_PER_EVENT 4

/* ALPN wire format: one length-prefixed protocol. */
static const unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

/* ----------------------------------------------------------------- the socket BIO */

static BIO_METHOD *sock_bio_method;
static pthread_once_t sock_bio_once = PTHREAD_ONCE_INIT;

/* BIO write: send() without SIGPIPE; EAGAIN becomes a retry. */
static int sock_bio_write(BIO *b, const char *data, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
    return (int)n;
}

/* BIO read: recv(); EAGAIN becomes a retry, 0 marks the end of the stream. */
static int sock_bio_read(BIO *b, char *data, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = recv(fd, data, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    else if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return (int)n;
}

/* BIO control: flush is a no-op (nothing is buffered), EOF is what recv saw. */
static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

/* Creates the BIO method once per process (immutable afterwards). */
static void sock_bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft socket");
    if (!m) return;
    if (!BIO_meth_set_write(m, sock_bio_write) || !BIO_meth_set_read(m, sock_bio_read) ||
        !BIO_meth_set_ctrl(m, sock_bio_ctrl)) {
        BIO_meth_free(m);
        return;
    }
    sock_bio_method = m;
}

/* A BIO reading and writing fd (which it does not own). NULL on allocation failure. */
static BIO *sock_bio_new(int fd)
{
    pthread_once(&sock_bio_once, sock_bio_init);
    if (!sock_bio_method) return NULL;
    BIO *b = BIO_new(sock_bio_method);
    if (!b) return NULL;
    BIO_set_data(b, (void *)(intptr_t)fd);
    BIO_set_init(b, 1);
    return b;
}

/* ----------------------------------------------------------------- error texts */

/* Describes one OpenSSL error code ("no start line", "No such file or directory"). */
static void reason_text(unsigned long e, char *out, size_t cap)
{
    if (e == 0) {
        snprintf(out, cap, "unknown error");
        return;
    }
    if (ERR_SYSTEM_ERROR(e)) {
        snprintf(out, cap, "%s", strerror(ERR_GET_REASON(e)));
        return;
    }
    const char *r = ERR_reason_error_string(e);
    if (r)
        snprintf(out, cap, "%s", r);
    else
        ERR_error_string_n(e, out, cap);
}

/* The first error of the thread's OpenSSL queue, described, then the queue cleared. */
static void take_reason(char *out, size_t cap)
{
    reason_text(ERR_peek_error(), out, cap);
    ERR_clear_error();
}

/* Checks that path can be opened for reading; else fills err. */
static bool readable(const char *what, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "cannot read %s '%s': %s", what, path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Short name of a certificate verification failure, for the cases a user meets. */
static const char *verify_short(long v)
{
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "unknown CA";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return "self-signed certificate (unknown CA)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "hostname mismatch";
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate not yet valid";
    default:
        return "invalid certificate";
    }
}

/* Describes the TLS failure of s; see net.h. */
void tls_error_text(const struct weft_sock *s, int err, char *out, size_t cap)
{
    unsigned long e = s->tls_err;
    char why[160];
    if (e && ERR_GET_LIB(e) == ERR_LIB_USER) { /* a verification result, see tls_fail */
        long v = (long)ERR_GET_REASON(e);
        const char *brief = verify_short(v), *full = X509_verify_cert_error_string(v);
        bool same = strstr(brief, full) != NULL; /* no "hostname mismatch (hostname mismatch)" */
        snprintf(out, cap, "TLS certificate verify failed: %s%s%s%s", brief, same ? "" : " (",
                 same ? "" : full, same ? "" : ")");
        return;
    }
    if (e) {
        reason_text(e, why, sizeof why);
        snprintf(out, cap, "TLS %s failed: %s",
                 (s->flags & SOCK_TLS_HS) ? "handshake" : "connection", why);
        return;
    }
    if (err)
        snprintf(out, cap, "%s%s", (s->flags & SOCK_TLS_HS) ? "TLS handshake failed: " : "",
                 strerror(err));
    else if (s->flags & SOCK_TLS_HS)
        snprintf(out, cap, "TLS handshake failed: connection closed by the peer");
    else
        snprintf(out, cap, "connection closed");
}

/* ----------------------------------------------------------------- contexts */

/* Settings shared by server and client contexts. */
static void ctx_common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes + moving buffer: see the file comment. Release buffers: an idle
     * connection keeps no 16 KiB read/write buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
}

/* Server ALPN: picks "http/1.1" if the client offers it, else goes on without ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == alpn_http11[0] && memcmp(in + i + 1, alpn_http11 + 1, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Creates a server context from PEM files; see net.h. */
struct ssl_ctx_st *tls_server_new(const char *cert_file, const char *key_file, char *err,
                                  size_t errcap)
{
    char why[160];
    if (!cert_file || !key_file || !*cert_file || !*key_file) {
        snprintf(err, errcap, "TLS needs both a certificate file and a key file");
        return NULL;
    }
    if (!readable("certificate file", cert_file, err, errcap) ||
        !readable("key file", key_file, err, errcap))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        take_reason(why, sizeof why);
        snprintf(err, errcap, "cannot create a TLS context: %s", why);
        return NULL;
    }
    ctx_common(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.3 and 1.2 tickets are stateless: no session cache to grow or share. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        take_reason(why, sizeof why);
        snprintf(err, errcap, "cannot load the certificate chain from '%s': %s", cert_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        take_reason(why, sizeof why);
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errcap,
                     "the private key in '%s' does not match the certificate in "
                     "'%s'",
                     key_file, cert_file);
        else
            snprintf(err, errcap, "cannot load the private key from '%s': %s", key_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "the private key in '%s' does not match the certificate in '%s'",
                 key_file, cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Creates a client context; see net.h. */
struct ssl_ctx_st *tls_client_new(const struct tls_client_opts *opts, char *err, size_t errcap)
{
    static const struct tls_client_opts defaults = {0};
    char why[160];
    if (!opts) opts = &defaults;
    if (!opts->insecure && opts->cacert_file &&
        !readable("CA file", opts->cacert_file, err, errcap))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        take_reason(why, sizeof why);
        snprintf(err, errcap, "cannot create a TLS context: %s", why);
        return NULL;
    }
    ctx_common(ctx);
    if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof alpn_http11) != 0) { /* 0 = ok */
        take_reason(why, sizeof why);
        snprintf(err, errcap, "cannot set ALPN: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (opts->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (opts->cacert_file) {
        if (SSL_CTX_load_verify_locations(ctx, opts->cacert_file, NULL) != 1) {
            take_reason(why, sizeof why);
            snprintf(err, errcap, "cannot load CA certificates from '%s': %s", opts->cacert_file,
                     why);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        take_reason(why, sizeof why);
        snprintf(err, errcap, "cannot load the system CA store: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Drops a reference to ctx. */
void tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

/* ----------------------------------------------------------------- failures */

/* A fatal TLS (or socket) error: remembers why for tls_error_text, drops the output, and
 * reports the end of the stream once. No close_notify may follow. */
static void tls_fail(struct weft_sock *s, int sslerr, int saved_errno)
{
    int err = EPROTO;
    unsigned long e = ERR_peek_error();
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK && (s->flags & SOCK_TLS_HS))
        e = ERR_PACK(ERR_LIB_USER, 0, v);
    else if (sslerr == SSL_ERROR_SYSCALL && e == 0) {
        int so = 0;
        socklen_t sl = sizeof so;
        if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so)
            err = so;
        else
            err = saved_errno ? saved_errno : ECONNRESET;
    }
    ERR_clear_error();
    s->tls_err = (uint32_t)e;
    s->flags |= SOCK_TLS_FAILED;
    sock_discard(s);
    if (!(s->flags & SOCK_EOF)) {
        s->flags |= SOCK_EOF;
        s->ops->on_eof(s, err);
    }
}

/* ----------------------------------------------------------------- handshake */

/* Advances the handshake. Returns 1 when complete, 0 when waiting for the socket, -1 after a
 * failure (already reported with on_eof). */
static int tls_handshake(struct weft_sock *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->flags &= (uint16_t)~SOCK_TLS_HS;
        return 1;
    }
    int saved = errno;
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    tls_fail(s, e, saved);
    return -1;
}

/* ----------------------------------------------------------------- reading */

/* Reads and decrypts until OpenSSL needs more bytes than the kernel has (the edge-triggered
 * "drained" point), delivering each full shared buffer with one on_data; stops when the owner
 * pauses or closes, and yields after READS_PER_EVENT full buffers (the loop comes back). */
static void tls_read(struct weft_sock *s)
{
    uint8_t *rbuf = loop_rbuf(s->loop);
    s->flags &= (uint16_t)~SOCK_TLS_WANT_WR;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (s->flags & (SOCK_PAUSED | SOCK_CLOSED | SOCK_EOF)) return;
        size_t fill = 0;
        int e = SSL_ERROR_NONE, saved = 0;
        while (fill < LOOP_RBUF_SIZE) {
            size_t n = 0;
            if (SSL_read_ex(s->ssl, rbuf + fill, LOOP_RBUF_SIZE - fill, &n)) {
                fill += n;
                continue;
            }
            saved = errno;
            e = SSL_get_error(s->ssl, 0);
            break;
        }
        if (e == SSL_ERROR_WANT_WRITE) s->flags |= SOCK_TLS_WANT_WR;
        if (fill) {
            s->ops->on_data(s, rbuf, fill);
            if (s->flags & (SOCK_CLOSED | SOCK_EOF)) return;
        }
        switch (e) {
        case SSL_ERROR_NONE: /* the buffer is full: more may be waiting */
            continue;
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return;
        case SSL_ERROR_ZERO_RETURN: /* close_notify, or the TCP FIN (IGNORE_UNEXPECTED_EOF) */
            ERR_clear_error();
            s->flags |= SOCK_EOF;
            s->ops->on_eof(s, 0);
            return;
        default:
            tls_fail(s, e, saved);
            return;
        }
    }
    loop_mark_read(s->loop, s);
}

/* ----------------------------------------------------------------- writing */

/* Writes the output queue with SSL_write; see the file comment. Sets SOCK_BLOCKED (and
 * SOCK_TLS_WANT_RD) when OpenSSL must wait for the socket, sends close_notify + FIN once the
 * queue is empty after sock_shutdown_after_flush. */
void tls_flush(struct weft_sock *s)
{
    if (s->flags & SOCK_TLS_FAILED) {
        sock_discard(s);
        return;
    }
    if (s->flags & SOCK_TLS_HS) return; /* sent when the handshake completes (tls_on_io) */
    ERR_clear_error();
    while (s->queued > 0) {
        const struct oq_block *b = s->qhead;
        const struct oq_seg *first = &b->seg[b->head];
        const uint8_t *p = first->p;
        size_t len = first->len;
        uint8_t *rec;
        if (len < TLS_RECORD_MAX && (rec = loop_tls_buf(s->loop)) != NULL) {
            /* Merge the queue's first bytes, up to one full record. The queue only grows at
             * its tail, so a retry rebuilds the same prefix (and maybe more). */
            len = 0;
            for (const struct oq_block *k = b; k && len < TLS_RECORD_MAX; k = k->next)
                for (uint16_t i = k->head; i < k->nseg && len < TLS_RECORD_MAX; i++) {
                    size_t take = k->seg[i].len;
                    if (take > TLS_RECORD_MAX - len) take = TLS_RECORD_MAX - len;
                    memcpy(rec + len, k->seg[i].p, take);
                    len += take;
                }
            p = rec;
        }
        if (len == 0) { /* an empty segment */
            oq_consume(s, 0);
            continue;
        }
        size_t w = 0;
        if (SSL_write_ex(s->ssl, p, len, &w)) {
            oq_consume(s, w);
            continue;
        }
        int saved = errno;
        int e = SSL_get_error(s->ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE) {
            s->flags |= SOCK_BLOCKED;
            return;
        }
        if (e == SSL_ERROR_WANT_READ) {
            s->flags |= SOCK_BLOCKED | SOCK_TLS_WANT_RD;
            return;
        }
        tls_fail(s, e, saved);
        return;
    }
    s->flags &= (uint16_t)~SOCK_BLOCKED;
    if ((s->flags & SOCK_SHUT_AFTER) && !(s->flags & SOCK_WR_SHUT)) {
        int r = SSL_shutdown(s->ssl);
        if (r < 0) {
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                s->flags |= SOCK_BLOCKED | (e == SSL_ERROR_WANT_READ ? SOCK_TLS_WANT_RD : 0);
                return;
            }
            ERR_clear_error(); /* no close_notify then: the FIN still ends the stream */
        }
        shutdown(s->io.fd, SHUT_WR);
        s->flags |= SOCK_WR_SHUT;
    }
}

/* Flushes a blocked queue again; tells the owner when it has drained (as sock.c does). */
static void tls_unblock(struct weft_sock *s)
{
    s->flags &= (uint16_t) ~(SOCK_BLOCKED | SOCK_TLS_WANT_RD);
    tls_flush(s);
    sock_account(s);
    if (s->flags & SOCK_CLOSED) return;
    if (!(s->flags & SOCK_BLOCKED) && s->ops->on_drain) s->ops->on_drain(s);
}

/* epoll callback of a TLS socket: handshake, then blocked output, then input. */
static void tls_on_io(struct weft_io *io, uint32_t events)
{
    struct weft_sock *s = (struct weft_sock *)io;
    if (s->flags & (SOCK_CLOSED | SOCK_TLS_FAILED)) return;
    if (s->flags & SOCK_TLS_HS) {
        if (tls_handshake(s) <= 0) return;
        if (s->queued) { /* written before the handshake completed */
            tls_flush(s);
            sock_account(s);
        }
        if (s->flags & SOCK_CLOSED) return;
        events |= EPOLLIN; /* application data may have come with the last flight */
    }
    const uint32_t in = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    if ((s->flags & SOCK_BLOCKED) &&
        ((events & EPOLLOUT) || ((events & in) && (s->flags & SOCK_TLS_WANT_RD)))) {
        tls_unblock(s);
        if (s->flags & SOCK_CLOSED) return;
    }
    if ((events & in) || ((events & EPOLLOUT) && (s->flags & SOCK_TLS_WANT_WR))) {
        tls_read(s);
        if (s->flags & SOCK_CLOSED) return;
        /* Reading may have processed what a blocked SSL_write was waiting for. */
        if ((s->flags & (SOCK_BLOCKED | SOCK_TLS_WANT_RD)) == (SOCK_BLOCKED | SOCK_TLS_WANT_RD))
            tls_unblock(s);
    }
}

/* ----------------------------------------------------------------- attaching, closing */

/* Creates s's SSL object over its fd and switches s to the TLS callbacks. */
static int tls_attach(struct weft_sock *s, SSL_CTX *ctx, SSL **out)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl ? sock_bio_new(s->io.fd) : NULL;
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return WEFT_ERR_NOMEM;
    }
    SSL_set_bio(ssl, bio, bio);
    *out = ssl;
    return WEFT_OK;
}

/* Server side; see net.h. */
int tls_attach_server(struct weft_sock *s, struct ssl_ctx_st *ctx)
{
    SSL *ssl;
    int r = tls_attach(s, ctx, &ssl);
    if (r != WEFT_OK) return r;
    SSL_set_accept_state(ssl);
    s->ssl = ssl;
    s->io.cb = tls_on_io;
    s->flags |= SOCK_TLS_HS;
    return WEFT_OK;
}

/* Client side; see net.h. */
int tls_attach_client(struct weft_sock *s, struct ssl_ctx_st *ctx, const char *host)
{
    char name[256];
    size_t n = host ? strlen(host) : 0;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* "[::1]" */
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof name) return WEFT_ERR_INVAL;
    memcpy(name, host, n);
    name[n] = '\0';
    struct in6_addr a6;
    bool is_ip = inet_pton(AF_INET, name, &a6) == 1 || inet_pton(AF_INET6, name, &a6) == 1;

    SSL *ssl;
    int r = tls_attach(s, ctx, &ssl);
    if (r != WEFT_OK) return r;
    bool ok = true;
    if (!is_ip) /* SNI carries host names only (RFC 6066 §3) */
        ok = SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (is_ip)
            ok = X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1;
        else {
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = X509_VERIFY_PARAM_set1_host(vp, name, n) == 1;
        }
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return WEFT_ERR_INVAL;
    }
    SSL_set_connect_state(ssl);
    s->ssl = ssl;
    s->io.cb = tls_on_io;
    s->flags |= SOCK_TLS_HS;
    return WEFT_OK;
}

/* True once the handshake of s is complete. */
bool tls_established(const struct weft_sock *s)
{
    return s->ssl && !(s->flags & (SOCK_TLS_HS | SOCK_TLS_FAILED));
}

/* Called by sock_close before the fd is closed: one non-blocking close_notify attempt on an
 * established, healthy connection, then the SSL object is freed. */
void tls_close(struct weft_sock *s)
{
    SSL *ssl = s->ssl;
    s->ssl = NULL;
    if (!(s->flags & (SOCK_TLS_HS | SOCK_TLS_FAILED)) &&
        !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
}

/* ----------------------------------------------------------------- configuration errors */

/* The last TLS configuration error of this thread (errno-like; see weft.h). */
static _Thread_local char tls_last_error[320];

/* Records msg as this thread's last TLS configuration error. */
void tls_set_last_error(const char *msg)
{
    snprintf(tls_last_error, sizeof tls_last_error, "%s", msg);
}

/* See weft.h. */
const char *weft_tls_last_error(void)
{
    return tls_last_error;
}
