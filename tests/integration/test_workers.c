/*
 * test_workers.c — `weft serve --workers N` end to end (the real program, spawned): raw rooms
 * and /hub rooms with members spread over 2 and 4 worker threads (SO_REUSEPORT). Asserts:
 * several workers got connections (per-worker /metrics labels); in a 200-client room every
 * message reaches every other member exactly once, in each sender's order; /hub messages get
 * one global seq order from the room's owner worker, presence and history see members and
 * messages of every worker; /metrics sums the workers; SIGTERM closes every connection on
 * every worker with 1001 and the process exits 0 with no sanitizer report.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NC 200
#define NSEND 10
#define NMSG 20

struct fx {
    pid_t pid;
    char log[64];
    char tmp[64]; /* a scratch file (revocation list, config), "" if none */
    uint16_t port;
    struct rc c[NC];
};

static volatile pid_t guard_pid;

/* SIGALRM: the whole run took too long; kill our server and fail. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_workers: time limit reached, killing weft serve\n";
    if (guard_pid > 0) kill(guard_pid, SIGKILL);
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Prints the server's log (for failures). */
static void dump_log(const struct fx *f)
{
    FILE *fp = fopen(f->log, "r");
    if (!fp) return;
    char line[2048];
    fprintf(stderr, "--- weft serve log ---\n");
    while (fgets(line, sizeof line, fp))
        fputs(line, stderr);
    fprintf(stderr, "--- end of log ---\n");
    fclose(fp);
}

/* Finds "listening on 127.0.0.1:PORT" in the log; returns the port or 0. */
static uint16_t find_port(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    char line[2048];
    unsigned port = 0;
    while (!port && fgets(line, sizeof line, fp)) {
        const char *p = strstr(line, "listening on 127.0.0.1:");
        if (p) port = (unsigned)strtoul(p + strlen("listening on 127.0.0.1:"), NULL, 10);
    }
    fclose(fp);
    return port <= 65535 ? (uint16_t)port : 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (int i = 0; i < NC; i++) f->c[i].fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    for (int i = 0; i < NC; i++) rc_close(&f->c[i]);
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        guard_pid = 0;
    }
    if (f->log[0]) unlink(f->log);
    if (f->tmp[0]) unlink(f->tmp);
    free(f);
    return 0;
}

/* Starts weft serve with extra options (NULL-terminated) and waits for its port. */
static void spawn(struct fx *f, const char *const *extra)
{
    snprintf(f->log, sizeof f->log, "/tmp/weft-itest-workers-XXXXXX");
    int lfd = mkstemp(f->log);
    assert_true(lfd >= 0);
    const char *argv[48] = {WEFT_BIN, "serve", "--host", "127.0.0.1", "--port", "0"};
    size_t argc = 6;
    for (size_t i = 0; extra && extra[i] && argc < 47; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(lfd, 2);
        execv(WEFT_BIN, (char *const *)argv);
        _exit(127);
    }
    close(lfd);
    f->pid = pid;
    guard_pid = pid;
    uint64_t deadline = rc_now_ms() + 15000;
    while (rc_now_ms() < deadline) {
        f->port = find_port(f->log);
        if (f->port) return;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->pid = 0;
            break;
        }
        usleep(10000);
    }
    dump_log(f);
    fail_msg("weft serve did not report its port");
}

/* Ends a test: closes the clients, stops the server with SIGTERM and asserts it exited 0
 * with no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan) in its log. */
static void finish(struct fx *f)
{
    for (int i = 0; i < NC; i++) rc_close(&f->c[i]);
    assert_true(f->pid > 0);
    assert_int_equal(kill(f->pid, SIGTERM), 0);
    int status = -1;
    uint64_t deadline = rc_now_ms() + 10000;
    while (rc_now_ms() < deadline) {
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            f->pid = 0;
            guard_pid = 0;
            break;
        }
        usleep(10000);
    }
    FILE *fp = fopen(f->log, "r");
    assert_non_null(fp);
    char line[4096];
    bool dirty = false;
    while (fgets(line, sizeof line, fp))
        dirty |= strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error") != NULL;
    fclose(fp);
    if (dirty || f->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) dump_log(f);
    assert_int_equal(f->pid, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_false(dirty);
}

/* GET path from the server into buf (the whole response, NUL-terminated). Returns the body
 * (after the blank line) or NULL. */
static char *http_get(uint16_t port, const char *path, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        if (len == cap - 1) break;
    }
    close(fd);
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    return body ? body + 4 : NULL;
}

/* The value of a metric line "name value" (name may include labels), or -1. */
static long long metric(const char *body, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, nl) && p[nl] == ' ') return strtoll(p + nl + 1, NULL, 10);
    return -1;
}

/* Number of workers with at least one open connection, from the per-worker labels. */
static int busy_workers(uint16_t port, int nworkers)
{
    static char buf[1 << 17];
    char *body = http_get(port, "/metrics", buf, sizeof buf);
    assert_non_null(body);
    assert_int_equal(metric(body, "weft_workers"), nworkers);
    int busy = 0;
    for (int i = 0; i < nworkers; i++) {
        char name[64];
        snprintf(name, sizeof name, "weft_worker_connections{worker=\"%d\"}", i);
        long long v = metric(body, name);
        assert_true(v >= 0);
        busy += v > 0;
    }
    return busy;
}

/* 200 raw-room clients over nworkers: every message once to every other member, in order. */
static void raw_room(void **state, const char *nworkers)
{
    struct fx *f = *state;
    const char *args[] = {"--workers", nworkers, "--log-level", "warn", NULL};
    spawn(f, args);
    int nw = atoi(nworkers);
    for (int i = 0; i < NC; i++)
        assert_int_equal(rc_open(&f->c[i], f->port, "/ws/big"), 0);
    int busy = busy_workers(f->port, nw);
    assert_true(busy >= 2);
    char body[4096];
    body[0] = '\0';
    http_get(f->port, "/metrics", body, sizeof body); /* smoke: answers while busy */
    static char big[1 << 17];
    char *mb = http_get(f->port, "/metrics", big, sizeof big);
    assert_non_null(mb);
    assert_int_equal(metric(mb, "weft_connections"), NC);

    for (int m = 0; m < NMSG; m++)
        for (int s = 0; s < NSEND; s++) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "%d:%d", s, m);
            assert_int_equal(rc_send(&f->c[s * (NC / NSEND)], WEFT_OP_TEXT, msg, (size_t)n), 0);
        }
    for (int i = 0; i < NC; i++) {
        int next[NSEND] = {0};
        bool sender = i % (NC / NSEND) == 0;
        int want = sender ? (NSEND - 1) * NMSG : NSEND * NMSG;
        for (int got = 0; got < want; got++) {
            enum rc_event ev = rc_recv(&f->c[i], 10000);
            if (ev != RC_MESSAGE) {
                dump_log(f);
                fail_msg("client %d: event %d after %d of %d messages", i, ev, got, want);
            }
            char tmp[64];
            size_t n = f->c[i].last.len < 63 ? f->c[i].last.len : 63;
            memcpy(tmp, f->c[i].last.data, n);
            tmp[n] = '\0';
            int s = -1, m = -1;
            assert_int_equal(sscanf(tmp, "%d:%d", &s, &m), 2);
            assert_true(s >= 0 && s < NSEND);
            assert_false(sender && s == i / (NC / NSEND)); /* never its own */
            if (m != next[s]) fail_msg("client %d: sender %d: got %d, expected %d", i, s, m, next[s]);
            next[s]++;
        }
        assert_int_equal(rc_recv(&f->c[i], i < 3 ? 100 : 0), RC_TIMEOUT); /* no duplicate */
    }
    /* SIGTERM: every client on every worker gets 1001. */
    assert_int_equal(kill(f->pid, SIGTERM), 0);
    for (int i = 0; i < NC; i++) assert_int_equal(rc_expect_close(&f->c[i], 10000), 1001);
    finish(f);
}

static void test_raw_room_2_workers(void **state)
{
    raw_room(state, "2");
}

static void test_raw_room_4_workers(void **state)
{
    raw_room(state, "4");
}

/* Receives the next JSON message on c (fails the test otherwise). Caller decrefs. */
#define recv_json(f, c) recv_json_at(f, c, __LINE__)
static json_t *recv_json_at(struct fx *f, struct rc *c, int line)
{
    enum rc_event ev = rc_recv(c, 10000);
    if (ev != RC_MESSAGE) {
        dump_log(f);
        fail_msg("line %d: expected a message, got event %d (close code %u)", line, ev,
                 c->last.error_code);
    }
    json_error_t e;
    json_t *j = json_loadb((const char *)c->last.data, c->last.len, 0, &e);
    if (!j) fail_msg("bad JSON: %.*s", (int)c->last.len, (const char *)c->last.data);
    return j;
}

/* Sends a JSON text. */
static void send_text(struct rc *c, const char *s)
{
    assert_int_equal(rc_send(c, WEFT_OP_TEXT, s, strlen(s)), 0);
}

#define HN 40
#define HSEND 4
#define HMSG 25

/* /hub rooms over 4 workers: one seq order, presence and history across workers. */
static void test_hub_rooms_4_workers(void **state)
{
    struct fx *f = *state;
    const char *args[] = {"--workers", "4", "--log-level", "warn", NULL};
    spawn(f, args);
    for (int i = 0; i < HN; i++) {
        assert_int_equal(rc_open(&f->c[i], f->port, "/hub"), 0);
        send_text(&f->c[i], "{\"type\":\"join\",\"room\":\"h\"}");
        json_t *j = recv_json(f, &f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "joined");
        assert_int_equal(json_integer_value(json_object_get(j, "members")), i + 1);
        json_decref(j);
    }
    assert_true(busy_workers(f->port, 4) >= 2);
    /* Senders 0..3 publish HMSG each, interleaved. */
    for (int m = 0; m < HMSG; m++)
        for (int s = 0; s < HSEND; s++) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "{\"type\":\"publish\",\"room\":\"h\",\"data\":{\"s\":%d,\"m\":%d}}", s, m);
            send_text(&f->c[s], msg);
        }
    for (int i = 0; i < HN; i++) {
        int next[HSEND] = {0};
        long long last_seq = 0;
        int acks = 0;
        int want = i < HSEND ? (HSEND - 1) * HMSG : HSEND * HMSG;
        int got = 0;
        while (got < want || (i < HSEND && acks < HMSG)) {
            json_t *j = recv_json(f, &f->c[i]);
            const char *type = json_string_value(json_object_get(j, "type"));
            assert_non_null(type);
            if (!strcmp(type, "published")) {
                acks++;
            } else {
                assert_string_equal(type, "message");
                long long seq = json_integer_value(json_object_get(j, "seq"));
                assert_true(seq > last_seq); /* one global order per room */
                last_seq = seq;
                json_t *d = json_object_get(j, "data");
                int s = (int)json_integer_value(json_object_get(d, "s"));
                int m = (int)json_integer_value(json_object_get(d, "m"));
                assert_true(s >= 0 && s < HSEND);
                assert_false(i < HSEND && s == i);
                if (m != next[s]) fail_msg("client %d: sender %d: got %d, expected %d", i, s, m, next[s]);
                next[s]++;
                got++;
            }
            json_decref(j);
        }
        assert_int_equal(rc_recv(&f->c[i], i < 3 ? 100 : 0), RC_TIMEOUT);
    }
    /* Presence and history from a client on every worker agree. */
    for (int i = HN - 8; i < HN; i++) {
        send_text(&f->c[i], "{\"type\":\"presence\",\"room\":\"h\",\"id\":7}");
        json_t *j = recv_json(f, &f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "presence");
        assert_int_equal(json_integer_value(json_object_get(j, "count")), HN);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
        json_decref(j);
        send_text(&f->c[i], "{\"type\":\"history\",\"room\":\"h\",\"since\":90}");
        j = recv_json(f, &f->c[i]);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "history");
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), HSEND * HMSG);
        json_t *msgs = json_object_get(j, "messages");
        assert_int_equal(json_array_size(msgs), HSEND * HMSG - 90);
        for (size_t k = 0; k < json_array_size(msgs); k++)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, k), "seq")),
                             91 + (long long)k);
        json_decref(j);
    }
    /* A member leaves (and one disconnects): presence follows on every worker. */
    send_text(&f->c[HN - 1], "{\"type\":\"leave\",\"room\":\"h\"}");
    json_decref(recv_json(f, &f->c[HN - 1]));
    rc_close(&f->c[HN - 2]);
    usleep(200000);
    send_text(&f->c[5], "{\"type\":\"presence\",\"room\":\"h\"}");
    json_t *j = recv_json(f, &f->c[5]);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), HN - 2);
    json_decref(j);
    /* A late joiner recovers the backlog with since. */
    struct rc late = {.fd = -1};
    assert_int_equal(rc_open(&late, f->port, "/hub"), 0);
    send_text(&late, "{\"type\":\"join\",\"room\":\"h\",\"since\":95}");
    j = recv_json(f, &late);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "joined");
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), HSEND * HMSG);
    json_decref(j);
    for (int k = 96; k <= HSEND * HMSG; k++) {
        j = recv_json(f, &late);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), k);
        json_decref(j);
    }
    rc_close(&late);
    static char big[1 << 17];
    char *mb = http_get(f->port, "/metrics", big, sizeof big);
    assert_non_null(mb);
    assert_int_equal(metric(mb, "weft_hub_publishes_total"), HSEND * HMSG);
    finish(f);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(170);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_room_2_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_room_4_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_rooms_4_workers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
