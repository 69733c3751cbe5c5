/*
 * serveproc.c — spawning, stopping and checking `weft serve` for the integration tests (see
 * serveproc.h).
 */
#include "serveproc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"

#define MAX_TRACKED 16
#define MAX_LIVE 8
#define LISTENING "listening on "

/* PIDs the SIGALRM guard kills (0: free slot). */
static volatile pid_t tracked[MAX_TRACKED];
/* The guard's message, built before the alarm is armed. */
static char guard_msg[160];
static size_t guard_len;
/* Processes started and not yet torn down, for sp_dump_all_logs. */
static const struct sp *live[MAX_LIVE];

/* SIGALRM: the whole run took too long; kill what we started and fail. */
static void on_alarm(int sig)
{
    (void)sig;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0) kill(tracked[i], SIGKILL);
    ssize_t w = write(2, guard_msg, guard_len);
    (void)w;
    _exit(1);
}

/* Installs and arms the guard. */
void sp_guard(const char *name, const char *what, unsigned seconds)
{
    int n = snprintf(guard_msg, sizeof guard_msg, "%s: time limit reached, killing %s\n", name,
                     what);
    guard_len = n < 0 ? 0 : (size_t)n < sizeof guard_msg ? (size_t)n : sizeof guard_msg - 1;
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* Adds pid to the guard's list. */
void sp_track(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
}

/* Removes pid from the guard's list. */
void sp_untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid) tracked[i] = 0;
}

/* Remembers s for sp_dump_all_logs. */
static void live_add(const struct sp *s)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i] || live[i] == s) {
            live[i] = s;
            return;
        }
}

/* Forgets s. */
static void live_remove(const struct sp *s)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == s) live[i] = NULL;
}

/* Prints the log to stderr. */
void sp_dump_log(const struct sp *s)
{
    if (!s->log[0]) return;
    FILE *fp = fopen(s->log, "r");
    if (!fp) return;
    char line[2048];
    fprintf(stderr, "--- weft serve log (%s) ---\n", s->log);
    while (fgets(line, sizeof line, fp))
        fputs(line, stderr);
    fprintf(stderr, "--- end of log ---\n");
    fclose(fp);
}

/* Prints every live process's log. */
void sp_dump_all_logs(void)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i]) sp_dump_log(live[i]);
}

/* Number of log lines containing needle. */
int sp_log_count(const struct sp *s, const char *needle)
{
    FILE *fp = fopen(s->log, "r");
    if (!fp) return 0;
    char line[4096];
    int k = 0;
    while (fgets(line, sizeof line, fp))
        k += strstr(line, needle) != NULL;
    fclose(fp);
    return k;
}

/* Finds "listening on ADDR:PORT" ("[V6]:PORT", or "unix:PATH") in the log at path. Returns
 * the port (0 for a Unix socket), or -1 if there is no such line yet. */
static long find_port(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    char line[2048];
    long port = -1;
    while (port < 0 && fgets(line, sizeof line, fp)) {
        const char *p = strstr(line, LISTENING);
        if (!p) continue;
        p += strlen(LISTENING);
        if (!strncmp(p, "unix:", 5)) {
            port = 0;
            continue;
        }
        /* The address ends at a quote (JSON log) or white space; the port after its last ':'. */
        size_t n = strcspn(p, "\" \t\r\n");
        const char *colon = NULL;
        for (const char *q = p; q < p + n; q++)
            if (*q == ':') colon = q;
        unsigned long v = colon ? strtoul(colon + 1, NULL, 10) : 0;
        if (v > 0 && v <= 65535) port = (long)v;
    }
    fclose(fp);
    return port;
}

/* Waits up to ms for the process to exit; reaps it and returns its status, or -1. */
int sp_wait(struct sp *s, int ms)
{
    if (s->pid <= 0) return -1;
    uint64_t deadline = rc_now_ms() + (uint64_t)(ms > 0 ? ms : 0);
    for (;;) {
        int status = 0;
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            sp_untrack(s->pid);
            s->pid = 0;
            return status;
        }
        if (r < 0 || rc_now_ms() >= deadline) return -1;
        usleep(10000);
    }
}

/* Spawns weft serve and waits for its port. */
int sp_try_start(struct sp *s, const char *bin, const char *tag, const char *const *extra)
{
    snprintf(s->log, sizeof s->log, "/tmp/weft-itest-%s-XXXXXX", tag);
    int lfd = mkstemp(s->log);
    if (lfd < 0) {
        s->log[0] = '\0';
        return -1;
    }
    live_add(s);
    const char *argv[48] = {bin, "serve", "--host", s->host ? s->host : "127.0.0.1", "--port", "0"};
    size_t argc = 6;
    for (size_t i = 0; extra && extra[i] && argc < 47; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(lfd, 2);
        struct rlimit rl;
        if (s->nofile && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = (rlim_t)s->nofile;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    s->pid = pid;
    sp_track(pid);
    uint64_t deadline = rc_now_ms() + 15000;
    while (rc_now_ms() < deadline) {
        long port = find_port(s->log);
        if (port >= 0) {
            s->port = (uint16_t)port;
            return 0;
        }
        if (sp_wait(s, 0) != -1) break; /* died */
        usleep(10000);
    }
    fprintf(stderr, "weft serve did not report its port\n");
    sp_dump_log(s);
    return -1;
}

/* sp_try_start or fail the test. */
void sp_start(struct sp *s, const char *bin, const char *tag, const char *const *extra)
{
    if (sp_try_start(s, bin, tag, extra) != 0) fail_msg("weft serve did not report its port");
}

/* Asserts a clean exit (status from sp_wait) and a log free of sanitizer reports. */
void sp_expect_clean_exit(const struct sp *s, int status)
{
    FILE *fp = fopen(s->log, "r");
    assert_non_null(fp);
    char line[4096];
    bool dirty = false;
    while (fgets(line, sizeof line, fp))
        dirty |= strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error") != NULL;
    fclose(fp);
    bool reaped = status != -1 && s->pid == 0;
    if (dirty || !reaped || !WIFEXITED(status) || WEXITSTATUS(status) != 0) sp_dump_log(s);
    assert_int_equal(s->pid, 0);
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_false(dirty);
}

/* SIGTERM, wait, and check the exit. */
void sp_stop(struct sp *s)
{
    assert_true(s->pid > 0);
    assert_int_equal(kill(s->pid, SIGTERM), 0);
    int status = sp_wait(s, 10000);
    sp_expect_clean_exit(s, status);
}

/* SIGKILL and reap if running; remove the log. */
void sp_kill(struct sp *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        sp_untrack(s->pid);
        s->pid = 0;
    }
    live_remove(s);
    if (s->log[0]) unlink(s->log);
    s->log[0] = '\0';
}

/* A plain GET on a fresh socket; the whole response into out. */
int sp_http_get(uint16_t port, const char *path, char *out, size_t cap)
{
    if (cap == 0) return -1;
    out[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    uint64_t deadline = rc_now_ms() + RC_TIMEOUT_MS;
    while (len < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - rc_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t r = read(fd, out + len, cap - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    out[len] = '\0';
    int status = -1;
    if (sscanf(out, "HTTP/1.1 %d", &status) != 1) return -1;
    return status;
}

/* The body after the blank line. */
const char *sp_http_body(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* The text after "name " at the start of a line of text, NULL if absent. */
static const char *metric_value(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, nl) && p[nl] == ' ') return p + nl + 1;
    return NULL;
}

/* A metric's value as a double, -1 if absent. */
double sp_metric(const char *text, const char *name)
{
    const char *v = metric_value(text, name);
    return v ? strtod(v, NULL) : -1;
}

/* A metric's value as an integer, -1 if absent. */
long long sp_metric_int(const char *text, const char *name)
{
    const char *v = metric_value(text, name);
    return v ? strtoll(v, NULL, 10) : -1;
}
