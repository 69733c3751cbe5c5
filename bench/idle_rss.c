/*
 * idle_rss.c — memory per idle WebSocket connection of `weft serve` (a figure, not a test).
 *
 * Spawns `weft serve --host 127.0.0.1 --port 0` (its stderr to a temporary file, read for
 * "listening on 127.0.0.1:PORT"), reads the server's VmRSS from /proc/PID/status, opens N
 * WebSocket connections (handshake completed and checked with weft's proto functions) that then
 * stay idle, waits 1 s, reads VmRSS again and prints the difference per connection, with the
 * kernel's TCP socket memory (/proc/net/sockstat) beside it. Then closes everything and stops
 * the server (SIGTERM, SIGKILL after 10 s), reaping exactly the PID it started.
 *
 * usage: idle_rss [-n N] [--weft PATH] [--path /echo] [-- extra weft serve options]
 *   -n N        connections (default 10000); RLIMIT_NOFILE is raised to its hard limit
 *   --weft P    the weft program (default: "weft" next to this program)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static pid_t server_pid;
static char log_path[64];

/* Milliseconds of CLOCK_MONOTONIC. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Stops the server we started: SIGTERM, then SIGKILL if it has not exited in 10 s. */
static void stop_server(void)
{
    if (server_pid <= 0) return;
    kill(server_pid, SIGTERM);
    uint64_t deadline = now_ms() + 10000;
    for (;;) {
        pid_t r = waitpid(server_pid, NULL, WNOHANG);
        if (r == server_pid || r < 0) break;
        if (now_ms() >= deadline) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, NULL, 0);
            break;
        }
        usleep(10000);
    }
    server_pid = 0;
    if (log_path[0]) unlink(log_path);
}

static void die(const char *what)
{
    fprintf(stderr, "idle_rss: %s\n", what);
    stop_server();
    exit(1);
}

/* Returns VmRSS of pid in KiB, or -1. */
static long vmrss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* Returns the kernel's TCP socket buffer memory in pages (/proc/net/sockstat "mem"), or -1. */
static long tcp_mem_pages(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f) return -1;
    char line[256];
    long pages = -1;
    while (fgets(line, sizeof line, f)) {
        const char *m = strncmp(line, "TCP:", 4) == 0 ? strstr(line, " mem ") : NULL;
        if (m) pages = strtol(m + 5, NULL, 10);
    }
    fclose(f);
    return pages;
}

/* Spawns weft serve; returns its port. */
static unsigned spawn_server(const char *weft, char **extra, int nextra)
{
    snprintf(log_path, sizeof log_path, "/tmp/weft-idle-rss-XXXXXX");
    int lfd = mkstemp(log_path);
    if (lfd < 0) die("mkstemp failed");
    const char *argv[64] = {weft,     "serve", "--host",      "127.0.0.1",
                            "--port", "0",     "--log-level", "warn"};
    int argc = 8;
    for (int i = 0; i < nextra && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(lfd, 2);
        execv(weft, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    server_pid = pid;
    uint64_t deadline = now_ms() + 15000;
    while (now_ms() < deadline) {
        FILE *f = fopen(log_path, "r");
        char line[512];
        unsigned port = 0;
        while (f && !port && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "listening on 127.0.0.1:");
            if (p) port = (unsigned)strtoul(p + strlen("listening on 127.0.0.1:"), NULL, 10);
        }
        if (f) fclose(f);
        if (port) return port;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            server_pid = 0;
            die("weft serve exited before listening (see its log)");
        }
        usleep(10000);
    }
    die("weft serve did not report its port in 15 s");
    return 0;
}

/* Opens one WebSocket connection to 127.0.0.1:port/path and completes the handshake.
 * Returns the fd, or -1. */
static int ws_open(unsigned port, const char *path, struct weft_random *rnd)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char key[25], host[32], req[512], resp[2048];
    weft_handshake_key(rnd, key);
    snprintf(host, sizeof host, "127.0.0.1:%u", port);
    struct weft_client_request cr = {.host = host, .path = path};
    int n = weft_handshake_request(req, sizeof req, &cr, key);
    if (n < 0 || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    struct weft_http_response hr;
    int hl = 0;
    while (hl == 0 && got < sizeof resp) {
        ssize_t r = recv(fd, resp + got, sizeof resp - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        hl = weft_http_parse_response(resp, got, sizeof resp, &hr);
    }
    struct weft_handshake_result res;
    if (hl <= 0 || hr.status != 101 ||
        weft_handshake_check_response(&hr, key, NULL, NULL, &res) != WEFT_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    long n = 10000;
    const char *path = "/echo";
    char weft_default[4096];
    snprintf(weft_default, sizeof weft_default, "%s", argv[0]);
    char *dir = dirname(weft_default);
    char weft_buf[4200];
    snprintf(weft_buf, sizeof weft_buf, "%s/weft", dir);
    const char *weft = weft_buf;
    int extra_at = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--weft") && i + 1 < argc)
            weft = argv[++i];
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--")) {
            extra_at = i + 1;
            break;
        } else {
            fprintf(stderr, "usage: idle_rss [-n N] [--weft PATH] [--path P] [-- serve opts]\n");
            return 2;
        }
    }
    if (n <= 0) n = 1;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 64 > rl.rlim_cur) {
            n = (long)rl.rlim_cur - 64;
            fprintf(stderr, "idle_rss: open file limit %llu: using %ld connections\n",
                    (unsigned long long)rl.rlim_cur, n);
        }
    }
    signal(SIGPIPE, SIG_IGN);

    unsigned port = spawn_server(weft, argv + extra_at, argc - extra_at);
    usleep(300000);
    long rss0 = vmrss_kib(server_pid);
    long mem0 = tcp_mem_pages();
    if (rss0 < 0) die("cannot read the server's VmRSS");

    int *fds = malloc((size_t)n * sizeof *fds);
    if (!fds) die("out of memory");
    struct weft_random rnd = {0};
    uint64_t t0 = now_ms();
    long opened = 0;
    for (; opened < n; opened++) {
        fds[opened] = ws_open(port, path, &rnd);
        if (fds[opened] < 0) {
            fprintf(stderr, "idle_rss: connection %ld failed: %s\n", opened + 1, strerror(errno));
            break;
        }
    }
    uint64_t t1 = now_ms();
    sleep(1);
    long rss1 = vmrss_kib(server_pid);
    long mem1 = tcp_mem_pages();
    long page = sysconf(_SC_PAGESIZE);

    printf("weft serve idle connections: %ld (opened in %.2f s)\n", opened,
           (double)(t1 - t0) / 1000.0);
    printf("server VmRSS before: %ld KiB, after: %ld KiB\n", rss0, rss1);
    if (opened > 0) {
        double per = (double)(rss1 - rss0) * 1024.0 / (double)opened;
        printf("server RSS per idle connection: %.0f bytes (%.2f KiB)\n", per, per / 1024.0);
        if (mem0 >= 0 && mem1 >= 0)
            printf("kernel TCP buffer memory per connection (both ends, /proc/net/sockstat): "
                   "%.0f bytes\n",
                   (double)(mem1 - mem0) * (double)page / (double)opened);
        printf("RESULT connections=%ld rss_before_kib=%ld rss_after_kib=%ld "
               "bytes_per_conn=%.0f\n",
               opened, rss0, rss1, per);
    }
    for (long i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    stop_server();
    return opened == n ? 0 : 1;
}
