/*
 * serveproc.h — drives the real `weft serve` program for the integration tests: spawns it on
 * 127.0.0.1 (or another address) with an ephemeral port (--port 0) and extra options, its
 * stderr in a temporary log file read for "listening on ADDR:PORT"; stops it by PID (SIGTERM, then
 * SIGKILL in teardown) and reaps it; checks it exited 0 with no sanitizer report in its log; dumps
 * the log on failure. A SIGALRM guard kills every process still tracked when the run hangs.
 *
 * Also the plain HTTP GET and the Prometheus text lookup the tests use on /metrics, /readyz.
 */
#ifndef WEFT_TEST_SERVEPROC_H
#define WEFT_TEST_SERVEPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One spawned `weft serve`. Zero-initialize before use; host and nofile may be set before
 * sp_start. */
struct sp {
    pid_t pid;     /* the process we started, 0 once reaped */
    char log[64];  /* its stderr (a temporary file), "" if none */
    uint16_t port; /* the port it reported (0 when it listens on a Unix socket) */
    /* Set before starting (zero = the default): */
    const char *host;     /* --host (an IPv4 or IPv6 address); NULL = 127.0.0.1 */
    unsigned long nofile; /* the child's soft RLIMIT_NOFILE before exec; 0 = inherited */
};

/* Installs the SIGALRM guard and arms it: after seconds, every tracked PID gets SIGKILL and
 * the test program exits 1 with "<name>: time limit reached, killing <what>". */
void sp_guard(const char *name, const char *what, unsigned seconds);

/* Adds / removes a PID the guard must kill (sp_start and the reaping calls do it for weft
 * serve; other children, e.g. redis-server, are added by hand). */
void sp_track(pid_t pid);
void sp_untrack(pid_t pid);

/* Starts bin serve --host HOST --port 0 extra... (HOST = s->host or 127.0.0.1; extra
 * NULL-terminated, may be NULL; with "--unix", PATH among them it listens there instead), the
 * log named /tmp/weft-itest-<tag>-XXXXXX, and waits up to 15 s for its "listening on" line
 * (s->port: the port, 0 for a Unix socket). Returns 0, or -1 (log dumped, the process reaped)
 * if it never reported one. No cmocka assertion: usable from a setup function. */
int sp_try_start(struct sp *s, const char *bin, const char *tag, const char *const *extra);

/* sp_try_start that fails the test ("weft serve did not report its port"). */
void sp_start(struct sp *s, const char *bin, const char *tag, const char *const *extra);

/* Waits up to ms for the process to exit and reaps it. Returns its wait status, or -1 if it
 * is still running. */
int sp_wait(struct sp *s, int ms);

/* Asserts the process was reaped with status (from sp_wait), exited 0 and left no sanitizer
 * report (AddressSanitizer, LeakSanitizer, UBSan) in its log; dumps the log otherwise. */
void sp_expect_clean_exit(const struct sp *s, int status);

/* Stops the process with SIGTERM, waits up to 10 s and asserts sp_expect_clean_exit. */
void sp_stop(struct sp *s);

/* Teardown: SIGKILL and reap the process if still running, remove the log. Never fails. */
void sp_kill(struct sp *s);

/* Prints the log to stderr. */
void sp_dump_log(const struct sp *s);

/* Prints the logs of every process started and not yet torn down (sp_kill). */
void sp_dump_all_logs(void);

/* Number of lines of the log containing needle. */
int sp_log_count(const struct sp *s, const char *needle);

/* GET path on 127.0.0.1:port (Connection: close); reads the whole response (status line,
 * headers and body, until the server closes, at most cap - 1 bytes, 5 s) into out,
 * NUL-terminated. Returns the status or -1. */
int sp_http_get(uint16_t port, const char *path, char *out, size_t cap);

/* The body of a response read by sp_http_get (after the blank line), "" if there is none. */
const char *sp_http_body(const char *resp);

/* The value of a metric line "name value" (name includes labels) in /metrics text, -1 if
 * absent. sp_metric_int parses it as an integer. */
double sp_metric(const char *text, const char *name);
long long sp_metric_int(const char *text, const char *name);

#endif
