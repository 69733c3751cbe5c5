/*
 * listen.c — listening sockets (TCP over IPv4/IPv6, Unix domain) and address formatting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net.h"

/* Milliseconds to stop accepting after running out of file descriptors. */
#define EMFILE_PAUSE_MS 100

/* Hands a connection accepted on l to its owner (TCP_NODELAY set first); see net.h. */
void listener_accepted(struct weft_listener *l, int fd, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    if (!l->is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    l->on_accept(l, fd, addr, addrlen);
}

/* Handles a failed accept with errno err; see net.h. */
void listener_accept_failed(struct weft_listener *l, int err)
{
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* Out of descriptors: stop listening for a moment instead of spinning. */
        io_del(l->loop, &l->io);
        weft_timer_start(l->loop, &l->retry, EMFILE_PAUSE_MS);
    }
}

/* Accepts every pending connection (epoll: the listener is level-triggered). */
static void on_listen_io(struct weft_io *io, uint32_t events)
{
    (void)events;
    struct weft_listener *l = (struct weft_listener *)io;
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            listener_accept_failed(l, errno);
            return;
        }
        listener_accepted(l, fd, (struct sockaddr *)&ss, sl);
    }
}

/* Re-registers the listener after an EMFILE pause. */
static void on_retry(struct weft_timer *t)
{
    struct weft_listener *l =
        (struct weft_listener *)((char *)t - offsetof(struct weft_listener, retry));
    if (l->io.fd >= 0) loop_listen(l->loop, l);
}

/* Finishes setting up a bound socket: listen and register. */
static int start_listening(struct weft_loop *loop, struct weft_listener *l, int fd, int backlog)
{
    if (listen(fd, backlog > 0 ? backlog : 1024) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return WEFT_ERR_IO;
    }
    l->io.fd = fd;
    l->io.cb = on_listen_io;
    l->loop = loop;
    l->retry.cb = on_retry;
    if (loop_listen(loop, l) != 0) {
        int e = errno;
        close(fd);
        l->io.fd = -1;
        errno = e;
        return WEFT_ERR_IO;
    }
    return WEFT_OK;
}

/* Listens on host:port; see net.h. */
int listener_tcp(struct weft_loop *loop, struct weft_listener *l, const char *host, uint16_t port,
                 int backlog, bool reuse_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    struct addrinfo *ai = NULL;
    /* Numeric addresses only: the loop must never block on DNS. */
    hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(host && *host ? host : "0.0.0.0", service, &hints, &ai) != 0 || !ai)
        return WEFT_ERR_ADDRESS;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return WEFT_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int e = errno;
        close(fd);
        freeaddrinfo(ai);
        errno = e;
        return WEFT_ERR_IO;
    }
    freeaddrinfo(ai);
    l->is_unix = false;
    l->unix_path = NULL;
    return start_listening(loop, l, fd, backlog);
}

/* Listens on a Unix domain socket; see net.h. */
int listener_unix(struct weft_loop *loop, struct weft_listener *l, const char *path, int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof sun.sun_path) return WEFT_ERR_ADDRESS;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return WEFT_ERR_IO;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return WEFT_ERR_IO;
    }
    l->is_unix = true;
    l->unix_path = strdup(path);
    int r = start_listening(loop, l, fd, backlog);
    if (r != WEFT_OK) {
        unlink(path);
        free(l->unix_path);
        l->unix_path = NULL;
    }
    return r;
}

/* The bound port of a TCP listener, 0 otherwise. */
uint16_t listener_port(const struct weft_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (l->is_unix || getsockname(l->io.fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Stops listening; see net.h. */
void listener_close(struct weft_listener *l)
{
    if (l->io.fd < 0) return;
    weft_timer_stop(&l->retry);
    io_del(l->loop, &l->io);
    close(l->io.fd);
    l->io.fd = -1;
    if (l->unix_path) {
        unlink(l->unix_path);
        free(l->unix_path);
        l->unix_path = NULL;
    }
}

/* Formats an address for logs; see net.h. */
void addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}
