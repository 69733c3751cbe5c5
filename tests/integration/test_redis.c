/*
 * test_redis.c — `weft serve --redis` end to end: a private redis-server on a free loopback
 * port (no persistence, its own temp dir) and two or three `weft serve` nodes on ephemeral
 * ports, driven with raw clients. Asserts: raw rooms and /hub rooms cross nodes exactly once,
 * in each sender's order; /hub seq, history and `join since` work from any node; presence
 * counts members of every node; Redis killed (SIGKILL) and restarted on the same port: /readyz
 * 503 "broker unavailable" then 200, weft_broker_up / reconnects / dropped in /metrics, local
 * delivery during the gap, cross-node delivery and history recovery afterwards; Redis absent
 * at start: the node serves local rooms, /readyz 503, then 200 once Redis runs. Every process
 * is torn down by PID; each node exits 0 on SIGTERM with no sanitizer report. A missing
 * redis-server FAILS the test (scripts/setup installs it).
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hubjson.h"
#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

#define NNODES 3
#define NCL 8

struct fx {
    pid_t redis;
    uint16_t rport;
    char dir[64];
    char url[64];
    struct sp n[NNODES]; /* the weft serve nodes */
    struct rc c[NCL];
};

/* Finds redis-server in PATH (or /usr/bin, /usr/sbin). Returns a static path or NULL. */
static const char *redis_bin(void)
{
    static char path[512];
    const char *env = getenv("PATH");
    char dirs[2048];
    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/usr/local/bin", env ? env : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/redis-server", d);
        if (access(path, X_OK) == 0) return path;
    }
    return NULL;
}

/* A free loopback TCP port (bound then released). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* True if something accepts TCP connections on 127.0.0.1:port. */
static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts redis-server on f->rport (no persistence, f->dir) and waits until it accepts. */
static void redis_start(struct fx *f)
{
    const char *bin = redis_bin();
    if (!bin) fail_msg("redis-server not found: run scripts/setup (it installs redis-server)");
    char port[16];
    snprintf(port, sizeof port, "%u", f->rport);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(bin, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--dir", f->dir, (char *)NULL);
        _exit(127);
    }
    f->redis = pid;
    sp_track(pid);
    uint64_t deadline = rc_now_ms() + 10000;
    while (rc_now_ms() < deadline) {
        if (port_open(f->rport)) return;
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
        usleep(20000);
    }
    fail_msg("redis-server did not start on port %u", f->rport);
}

/* Kills redis-server (SIGKILL, by PID) and reaps it. */
static void redis_kill(struct fx *f)
{
    if (f->redis <= 0) return;
    kill(f->redis, SIGKILL);
    waitpid(f->redis, NULL, 0);
    sp_untrack(f->redis);
    f->redis = 0;
}

/* Starts node i: weft serve --redis URL --workers W --history-age AGE (seconds) on an
 * ephemeral port. */
static void node_start_aged(struct fx *f, int i, const char *workers, const char *age)
{
    const char *const extra[] = {
        "--workers", workers,         "--redis", f->url, "--log-format", "text", "--history-size",
        "50",        "--history-age", age,       NULL};
    if (sp_try_start(&f->n[i], WEFT_BIN, "redis", extra) != 0)
        fail_msg("node %d did not report its port", i);
}

/* Starts node i with the default history age (one hour). */
static void node_start(struct fx *f, int i, const char *workers)
{
    node_start_aged(f, i, workers, "3600");
}

/* Sends one command (words separated by single spaces) to the test's redis-server and
 * returns the first line of the reply in out (e.g. "+OK", ":1"). */
static void redis_cmd(struct fx *f, const char *cmd, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->rport)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512], words[256];
    snprintf(words, sizeof words, "%s", cmd);
    int nw = 1, n = 0;
    for (const char *c = words; *c; c++)
        nw += *c == ' ';
    n += snprintf(req + n, sizeof req - (size_t)n, "*%d\r\n", nw);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        n += snprintf(req + n, sizeof req - (size_t)n, "$%zu\r\n%s\r\n", strlen(w), w);
    assert_true(n < (int)sizeof req);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (got + 1 < cap && !memchr(out, '\n', got) && poll(&pfd, 1, 5000) == 1) {
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    out[got] = '\0';
    close(fd);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    for (int i = 0; i < NCL; i++)
        f->c[i].fd = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/weft-itest-redisdir-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    f->rport = free_port();
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%u", f->rport);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < NNODES; i++)
        sp_kill(&f->n[i]);
    redis_kill(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0) { /* best effort */
    }
    free(f);
    return 0;
}

/* The value of metric line `name` on node port, or -1. */
static long long metric(uint16_t port, const char *name)
{
    static char buf[1 << 17];
    if (sp_http_get(port, "/metrics", buf, sizeof buf) < 0) return -1;
    return sp_metric_int(buf, name);
}

/* Polls /readyz of node port until it answers `want` (within ms). Returns the last status;
 * the last response is in resp. */
static int wait_ready(uint16_t port, int want, int ms, char *resp, size_t cap)
{
    uint64_t deadline = rc_now_ms() + (uint64_t)ms;
    int st;
    do {
        st = sp_http_get(port, "/readyz", resp, cap);
        if (st == want) return st;
        usleep(50000);
    } while (rc_now_ms() < deadline);
    return st;
}

/* Joins room on /hub and returns the joined reply's seq. */
static long long join(struct rc *c, const char *room)
{
    hj_sendf(c, "{\"type\":\"join\",\"room\":\"%s\"}", room);
    json_t *j = hj_expect_type(c, "joined");
    long long seq = hj_int(j, "seq");
    json_decref(j);
    return seq;
}

/* Publishes {"n":k} to room; returns the published seq. */
static long long publish(struct rc *c, const char *room, int k)
{
    hj_sendf(c, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":{\"n\":%d}}", room, k);
    json_t *j = hj_expect_type(c, "published");
    long long seq = hj_int(j, "seq");
    json_decref(j);
    return seq;
}

/* Expects a delivery of room with data.n == k; returns its seq. */
#define expect_msg(c, k) expect_msg_at(c, k, __LINE__)
static long long expect_msg_at(struct rc *c, int k, int line)
{
    json_t *j = hj_expect_type_at(c, "message", line);
    long long n = hj_int(json_object_get(j, "data"), "n");
    long long seq = hj_int(j, "seq");
    json_decref(j);
    if (n != k) fail_msg("line %d: expected message %d, got %lld", line, k, n);
    return seq;
}

/* The "count" of a presence request for room on c (deliveries before the reply skipped). */
static long long presence_count(struct rc *c, const char *room)
{
    hj_sendf(c, "{\"type\":\"presence\",\"room\":\"%s\"}", room);
    for (;;) {
        json_t *x = hj_recv_json(c);
        bool is_p = !strcmp(hj_str(x, "type"), "presence");
        long long n = is_p ? hj_int(x, "count") : -1;
        json_decref(x);
        if (is_p) return n;
    }
}

/* Reads deliveries on c until the one with data.n == k, asserting that the seqs only
 * increase (each above *last, which is updated). Returns how many deliveries came before
 * it; the data.n of the first of them goes to *first_n (if any). */
#define read_until(c, k, last, first_n) read_until_at(c, k, last, first_n, __LINE__)
static int read_until_at(struct rc *c, int k, long long *last, long long *first_n, int line)
{
    for (int before = 0;; before++) {
        json_t *j = hj_expect_type_at(c, "message", line);
        long long n = hj_int(json_object_get(j, "data"), "n"), seq = hj_int(j, "seq");
        json_decref(j);
        if (seq <= *last) fail_msg("line %d: seq %lld after seq %lld", line, seq, *last);
        *last = seq;
        if (n == k) return before;
        if (before == 0 && first_n) *first_n = n;
    }
}

/* Gives fresh subscriptions time to reach Redis (SUBSCRIBE is asynchronous). */
static void settle(void)
{
    usleep(300000);
}

/* Raw rooms and /hub rooms across three nodes (1, 2 and 1 workers): exactly once, in order;
 * seq, history, join since and presence from any node. */
static void test_cross_node(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start(f, 0, "1");
    node_start(f, 1, "2");
    node_start(f, 2, "1");
    char body[4096];
    for (int i = 0; i < NNODES; i++) {
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
        assert_non_null(strstr(sp_http_body(body), "broker: redis"));
    }
    /* raw room: 2 clients per node; the first client of node 0 and of node 1 send. */
    for (int i = 0; i < 6; i++)
        assert_int_equal(rc_open(&f->c[i], f->n[i / 2].port, "/ws/x"), 0);
    settle();
    enum { NR = 100 };
    for (int m = 0; m < NR; m++) {
        char a[32], b[32];
        int la = snprintf(a, sizeof a, "0:%d", m), lb = snprintf(b, sizeof b, "1:%d", m);
        assert_int_equal(rc_send(&f->c[0], WEFT_OP_TEXT, a, (size_t)la), 0);
        assert_int_equal(rc_send(&f->c[2], WEFT_OP_BINARY, b, (size_t)lb), 0);
    }
    for (int i = 0; i < 6; i++) {
        int next[2] = {0, 0};
        int want = (i == 0 || i == 2) ? NR : 2 * NR;
        for (int got = 0; got < want; got++) {
            enum rc_event ev = rc_recv(&f->c[i], 10000);
            if (ev != RC_MESSAGE)
                fail_msg("raw client %d: event %d after %d of %d", i, ev, got, want);
            char tmp[32];
            size_t n = f->c[i].last.len < 31 ? f->c[i].last.len : 31;
            memcpy(tmp, f->c[i].last.data, n);
            tmp[n] = '\0';
            int s = -1, m = -1;
            assert_int_equal(sscanf(tmp, "%d:%d", &s, &m), 2);
            assert_true(s == 0 || s == 1);
            assert_int_equal(f->c[i].last.opcode, s == 0 ? WEFT_OP_TEXT : WEFT_OP_BINARY);
            assert_false((i == 0 && s == 0) || (i == 2 && s == 1)); /* never its own */
            if (m != next[s])
                fail_msg("raw client %d: sender %d: got %d, expected %d", i, s, m, next[s]);
            next[s]++;
        }
        assert_int_equal(rc_recv(&f->c[i], i == 5 ? 300 : 0), RC_TIMEOUT); /* no duplicate */
    }
    for (int i = 0; i < 6; i++)
        rc_close(&f->c[i]);

    /* /hub: one member per node. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(rc_open(&f->c[i], f->n[i].port, "/hub"), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(join(&f->c[i], "h"), 0);
    settle();
    hj_sendf(&f->c[2], "{\"type\":\"presence\",\"room\":\"h\"}");
    json_t *p = hj_expect_type(&f->c[2], "presence");
    assert_int_equal(hj_int(p, "count"), 3);
    json_decref(p);
    enum { NH = 20 };
    for (int k = 1; k <= NH; k++)
        assert_int_equal(publish(&f->c[0], "h", k), k);
    for (int i = 1; i < 3; i++)
        for (int k = 1; k <= NH; k++)
            assert_int_equal(expect_msg(&f->c[i], k), k);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rc_recv(&f->c[i], i == 2 ? 300 : 0), RC_TIMEOUT);
    /* a publish from node 1 continues the same sequence */
    assert_int_equal(publish(&f->c[1], "h", 100), NH + 1);
    assert_int_equal(expect_msg(&f->c[0], 100), NH + 1);
    assert_int_equal(expect_msg(&f->c[2], 100), NH + 1);
    /* history from node 2 */
    hj_sendf(&f->c[2], "{\"type\":\"history\",\"room\":\"h\",\"since\":15,\"id\":7}");
    json_t *h = hj_expect_type(&f->c[2], "history");
    assert_int_equal(hj_int(h, "seq"), NH + 1);
    assert_int_equal(hj_int(h, "id"), 7);
    json_t *msgs = json_object_get(h, "messages");
    assert_int_equal(json_array_size(msgs), NH + 1 - 15);
    for (size_t i = 0; i < json_array_size(msgs); i++)
        assert_int_equal(hj_int(json_array_get(msgs, i), "seq"), 16 + (long long)i);
    json_decref(h);
    /* recovery: node 1's member goes away; node 0 publishes; it comes back on node 2 */
    rc_close(&f->c[1]);
    for (int k = 1; k <= 5; k++)
        assert_int_equal(publish(&f->c[0], "h", 200 + k), NH + 1 + k);
    assert_int_equal(rc_open(&f->c[1], f->n[2].port, "/hub"), 0);
    hj_sendf(&f->c[1], "{\"type\":\"join\",\"room\":\"h\",\"since\":%d}", NH + 1);
    json_t *jn = hj_expect_type(&f->c[1], "joined");
    assert_int_equal(hj_int(jn, "seq"), NH + 6);
    json_decref(jn);
    for (int k = 1; k <= 5; k++)
        assert_int_equal(expect_msg(&f->c[1], 200 + k), NH + 1 + k);
    /* a since older than the kept history (50) is a gap */
    for (int k = 0; k < 40; k++)
        publish(&f->c[0], "h", 300 + k);
    hj_sendf(&f->c[1], "{\"type\":\"history\",\"room\":\"h\",\"since\":1}");
    json_t *e = hj_recv_json(&f->c[1]);
    while (!strcmp(json_string_value(json_object_get(e, "type")), "message")) {
        json_decref(e);
        e = hj_recv_json(&f->c[1]);
    }
    assert_string_equal(json_string_value(json_object_get(e, "code")), "history_gap");
    json_decref(e);
    /* presence after a leave: the closed member is gone from the count */
    rc_close(&f->c[2]);
    usleep(200000);
    hj_sendf(&f->c[0], "{\"type\":\"presence\",\"room\":\"h\"}");
    for (;;) {
        json_t *x = hj_recv_json(&f->c[0]);
        bool is_p = !strcmp(json_string_value(json_object_get(x, "type")), "presence");
        if (is_p) assert_int_equal(hj_int(x, "count"), 2);
        json_decref(x);
        if (is_p) break;
    }
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < NNODES; i++)
        sp_stop(&f->n[i]);
}

/* Redis killed and restarted on the same port: 503 then 200, metrics, local delivery during
 * the gap, cross-node delivery and history recovery afterwards. */
static void test_redis_restart(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start(f, 0, "1");
    node_start(f, 1, "2");
    char body[4096];
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
    /* c0, c1 on node 0 and c2 on node 1 in /hub room "r"; c3, c4 raw on node 0, c5 raw on 1 */
    assert_int_equal(rc_open(&f->c[0], f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[1], f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[2], f->n[1].port, "/hub"), 0);
    for (int i = 0; i < 3; i++)
        join(&f->c[i], "r");
    assert_int_equal(rc_open(&f->c[3], f->n[0].port, "/ws/q"), 0);
    assert_int_equal(rc_open(&f->c[4], f->n[0].port, "/ws/q"), 0);
    assert_int_equal(rc_open(&f->c[5], f->n[1].port, "/ws/q"), 0);
    settle();
    assert_int_equal(metric(f->n[0].port, "weft_broker_up{broker=\"redis\"}"), 1);
    /* two messages through Redis: seq 1 and 2 everywhere */
    long long last1 = 0, last2 = 0;
    for (int k = 101; k <= 102; k++)
        assert_int_equal(publish(&f->c[0], "r", k), k - 100);
    for (int k = 101; k <= 102; k++) {
        assert_int_equal(read_until(&f->c[1], k, &last1, NULL), 0);
        assert_int_equal(read_until(&f->c[2], k, &last2, NULL), 0);
    }

    redis_kill(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wait_ready(f->n[i].port, 503, 10000, body, sizeof body), 503);
        assert_non_null(strstr(sp_http_body(body), "broker unavailable"));
    }
    assert_int_equal(metric(f->n[1].port, "weft_broker_up{broker=\"redis\"}"), 0);
    /* local delivery continues: raw and /hub on node 0 */
    assert_int_equal(rc_send(&f->c[3], WEFT_OP_TEXT, "gap", 3), 0);
    assert_int_equal(rc_recv(&f->c[4], 5000), RC_MESSAGE);
    assert_memory_equal(f->c[4].last.data, "gap", 3);
    /* the outage continues after the last seq the node knew, not at 1 */
    long long sgap = publish(&f->c[0], "r", 1);
    assert_int_equal(sgap, 3);
    assert_int_equal(read_until(&f->c[1], 1, &last1, NULL), 0);
    assert_true(metric(f->n[0].port, "weft_broker_dropped_total") >= 2);

    redis_start(f); /* same port, empty */
    for (int i = 0; i < 2; i++) {
        int st = wait_ready(f->n[i].port, 200, 15000, body, sizeof body);
        if (st != 200) sp_dump_log(&f->n[i]);
        assert_int_equal(st, 200);
    }
    assert_true(metric(f->n[0].port, "weft_broker_reconnects_total") >= 1);
    assert_int_equal(metric(f->n[0].port, "weft_broker_up{broker=\"redis\"}"), 1);
    assert_true(sp_log_count(&f->n[0], "redis back after") >= 1);
    assert_true(sp_log_count(&f->n[0], "connection attempt") >= 1);
    settle();
    /* resubscribed: raw and /hub cross nodes again */
    assert_int_equal(rc_send(&f->c[5], WEFT_OP_TEXT, "back", 4), 0);
    for (int i = 3; i < 5; i++) {
        assert_int_equal(rc_recv(&f->c[i], 5000), RC_MESSAGE);
        assert_memory_equal(f->c[i].last.data, "back", 4);
    }
    /* the empty Redis continues after the outage's seq (written back on reconnect) */
    long long s1 = publish(&f->c[0], "r", 2);
    assert_int_equal(s1, sgap + 1);
    assert_int_equal(read_until(&f->c[1], 2, &last1, NULL), 0);
    /* node 1's member: the outage message (written back) arrives before, or not at all if
     * node 1 subscribed again after the write-back; seqs only increase either way */
    long long firstn = 0;
    int before = read_until(&f->c[2], 2, &last2, &firstn);
    assert_true(before == 0 || (before == 1 && firstn == 1));
    assert_int_equal(last2, s1);
    /* ... and it recovers the outage message through history from node 1 */
    hj_sendf(&f->c[2], "{\"type\":\"history\",\"room\":\"r\",\"since\":2}");
    json_t *hg = hj_expect_type(&f->c[2], "history");
    json_t *gm = json_object_get(hg, "messages");
    assert_int_equal(json_array_size(gm), 2);
    assert_int_equal(hj_int(json_array_get(gm, 0), "seq"), sgap);
    assert_int_equal(hj_int(json_object_get(json_array_get(gm, 0), "data"), "n"), 1);
    assert_int_equal(hj_int(json_array_get(gm, 1), "seq"), s1);
    json_decref(hg);
    /* presence was registered again on the restarted Redis */
    hj_sendf(&f->c[2], "{\"type\":\"presence\",\"room\":\"r\"}");
    json_t *p = hj_expect_type(&f->c[2], "presence");
    assert_int_equal(hj_int(p, "count"), 3);
    json_decref(p);
    /* recovery: the node-1 member leaves, misses 3 messages, recovers them via history */
    rc_close(&f->c[2]);
    for (int k = 0; k < 3; k++)
        publish(&f->c[0], "r", 10 + k);
    for (int k = 0; k < 3; k++)
        expect_msg(&f->c[1], 10 + k);
    assert_int_equal(rc_open(&f->c[2], f->n[1].port, "/hub"), 0);
    hj_sendf(&f->c[2], "{\"type\":\"history\",\"room\":\"r\",\"since\":%lld}", s1);
    json_t *h = hj_expect_type(&f->c[2], "history");
    json_t *msgs = json_object_get(h, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(hj_int(json_object_get(json_array_get(msgs, i), "data"), "n"),
                         10 + (int)i);
    json_decref(h);
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < 2; i++)
        sp_stop(&f->n[i]);
}

/* Redis killed and restarted with its data (SAVE before SIGKILL): the seq goes on after the
 * outage's messages (written back, not INCR'd from the saved value), node 1's member gets or
 * recovers them, the members who left during the outage are gone from presence, and the
 * members of a node killed with SIGKILL disappear once its heartbeat key expires. */
static void test_redis_outage_kept(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start(f, 0, "1");
    node_start(f, 1, "2");
    char body[4096], line[256];
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
    /* c0, c1, c3, c4 on node 0 and c2 on node 1 in room "p" */
    int nodes[5] = {0, 0, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rc_open(&f->c[i], f->n[nodes[i]].port, "/hub"), 0);
        assert_int_equal(join(&f->c[i], "p"), 0);
    }
    settle();
    long long last1 = 0, last2 = 0;
    for (int k = 1; k <= 3; k++)
        assert_int_equal(publish(&f->c[0], "p", k), k);
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(read_until(&f->c[1], k, &last1, NULL), 0);
        assert_int_equal(read_until(&f->c[2], k, &last2, NULL), 0);
        expect_msg(&f->c[3], k);
        expect_msg(&f->c[4], k);
    }
    assert_int_equal(presence_count(&f->c[2], "p"), 5);
    /* room "q": c6 on node 0 publishes, c5 on node 1 (two workers) only receives */
    assert_int_equal(rc_open(&f->c[5], f->n[1].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[6], f->n[0].port, "/hub"), 0);
    join(&f->c[5], "q");
    join(&f->c[6], "q");
    settle();
    for (int k = 1; k <= 2; k++)
        assert_int_equal(publish(&f->c[6], "q", k), k);
    for (int k = 1; k <= 2; k++)
        assert_int_equal(expect_msg(&f->c[5], k), k);
    redis_cmd(f, "SAVE", line, sizeof line);
    assert_true(!strncmp(line, "+OK", 3));
    redis_kill(f);
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 503, 10000, body, sizeof body), 503);
    /* during the outage: c3 leaves, c4 disconnects, c0 publishes 4 and 5 */
    hj_sendf(&f->c[3], "{\"type\":\"leave\",\"room\":\"p\"}");
    json_decref(hj_expect_type(&f->c[3], "left"));
    rc_close(&f->c[4]);
    assert_int_equal(publish(&f->c[0], "p", 4), 4);
    assert_int_equal(publish(&f->c[0], "p", 5), 5);
    assert_int_equal(read_until(&f->c[1], 5, &last1, NULL), 1);
    /* node 1 learnt q's seq from the deliveries it received: its outage goes on at 3 */
    assert_int_equal(publish(&f->c[5], "q", 3), 3);

    redis_start(f); /* loads the saved seq 3, history 1..3 and the five presence fields */
    for (int i = 0; i < 2; i++) {
        int st = wait_ready(f->n[i].port, 200, 15000, body, sizeof body);
        if (st != 200) sp_dump_log(&f->n[i]);
        assert_int_equal(st, 200);
    }
    settle();
    assert_int_equal(publish(&f->c[0], "p", 6), 6); /* not 4: the outage was written back */
    assert_int_equal(read_until(&f->c[1], 6, &last1, NULL), 0);
    long long firstn = 0;
    int before = read_until(&f->c[2], 6, &last2, &firstn);
    assert_true(before == 0 || (before == 2 && firstn == 4));
    hj_sendf(&f->c[2], "{\"type\":\"history\",\"room\":\"p\",\"since\":3}");
    json_t *h = hj_expect_type(&f->c[2], "history");
    json_t *msgs = json_object_get(h, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(hj_int(json_array_get(msgs, i), "seq"), 4 + (long long)i);
        assert_int_equal(hj_int(json_object_get(json_array_get(msgs, i), "data"), "n"),
                         4 + (long long)i);
    }
    json_decref(h);
    /* q: node 1's outage message reached node 0 (live or through history), then seq 4 */
    hj_sendf(&f->c[6], "{\"type\":\"history\",\"room\":\"q\",\"since\":2}");
    json_t *x = hj_recv_json(&f->c[6]);
    if (!strcmp(hj_str(x, "type"), "message")) { /* the write-back, received live */
        assert_int_equal(hj_int(x, "seq"), 3);
        json_decref(x);
        x = hj_recv_json(&f->c[6]);
    }
    assert_string_equal(hj_str(x, "type"), "history");
    msgs = json_object_get(x, "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_int_equal(hj_int(json_array_get(msgs, 0), "seq"), 3);
    assert_int_equal(hj_int(json_object_get(json_array_get(msgs, 0), "data"), "n"), 3);
    json_decref(x);
    assert_int_equal(publish(&f->c[6], "q", 4), 4);
    assert_int_equal(expect_msg(&f->c[5], 4), 4);
    /* c3 (left) and c4 (gone) were removed during the outage: c0, c1, c2 remain */
    assert_int_equal(presence_count(&f->c[2], "p"), 3);
    assert_int_equal(presence_count(&f->c[0], "p"), 3);
    /* a node that dies without a word: its member counts until its heartbeat key expires */
    sp_kill(&f->n[1]);
    assert_int_equal(presence_count(&f->c[0], "p"), 3);
    uint64_t t0 = rc_now_ms();
    long long n = 3;
    while (n != 2 && rc_now_ms() - t0 < 20000) {
        usleep(500000);
        n = presence_count(&f->c[0], "p");
    }
    assert_int_equal(n, 2);
    assert_true(rc_now_ms() - t0 >= 5000); /* the TTL, not the connection, removed it */
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    sp_stop(&f->n[0]);
}

/* --history-age applies to the Redis history: deliveries older than the age are dropped (by
 * the next publish and by history reads), so an old since is a gap. */
static void test_redis_history_age(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start_aged(f, 0, "1", "1");
    node_start_aged(f, 1, "1", "1");
    char body[4096];
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
    assert_int_equal(rc_open(&f->c[0], f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[1], f->n[1].port, "/hub"), 0);
    join(&f->c[0], "a");
    join(&f->c[1], "a");
    settle();
    for (int k = 1; k <= 3; k++)
        assert_int_equal(publish(&f->c[0], "a", k), k);
    for (int k = 1; k <= 3; k++)
        assert_int_equal(expect_msg(&f->c[1], k), k);
    hj_sendf(&f->c[1], "{\"type\":\"history\",\"room\":\"a\",\"since\":0}");
    json_t *h = hj_expect_type(&f->c[1], "history");
    assert_int_equal(json_array_size(json_object_get(h, "messages")), 3);
    json_decref(h);
    char line[64];
    redis_cmd(f, "ZCARD weft:hist:a", line, sizeof line);
    assert_string_equal(line, ":3\r\n");
    usleep(1600000);
    /* the publish script drops the three (older than 1 s) and keeps the new one */
    assert_int_equal(publish(&f->c[0], "a", 4), 4);
    expect_msg(&f->c[1], 4);
    redis_cmd(f, "ZCARD weft:hist:a", line, sizeof line);
    assert_string_equal(line, ":1\r\n");
    hj_sendf(&f->c[1], "{\"type\":\"history\",\"room\":\"a\",\"since\":0}");
    json_t *e = hj_expect_type(&f->c[1], "error");
    assert_string_equal(hj_str(e, "code"), "history_gap");
    json_decref(e);
    hj_sendf(&f->c[1], "{\"type\":\"join\",\"room\":\"a\",\"since\":3}");
    json_t *jn = hj_expect_type(&f->c[1], "joined");
    assert_int_equal(hj_int(jn, "seq"), 4);
    json_decref(jn);
    assert_int_equal(expect_msg(&f->c[1], 4), 4);
    /* history reads drop them too: 1.6 s later, with no publish, nothing is kept */
    usleep(1600000);
    hj_sendf(&f->c[1], "{\"type\":\"history\",\"room\":\"a\",\"since\":3}");
    e = hj_expect_type(&f->c[1], "error");
    assert_string_equal(hj_str(e, "code"), "history_gap");
    json_decref(e);
    hj_sendf(&f->c[1], "{\"type\":\"history\",\"room\":\"a\",\"since\":4}");
    h = hj_expect_type(&f->c[1], "history");
    assert_int_equal(hj_int(h, "seq"), 4);
    assert_int_equal(json_array_size(json_object_get(h, "messages")), 0);
    json_decref(h);
    redis_cmd(f, "ZCARD weft:hist:a", line, sizeof line);
    assert_string_equal(line, ":0\r\n");
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < 2; i++)
        sp_stop(&f->n[i]);
}

/* Publishes {"n":k,"pad":"xx…"} (pad bytes) to room; returns the published seq. */
static long long publish_pad(struct rc *c, const char *room, int k, size_t pad)
{
    char *req = malloc(pad + 128);
    assert_non_null(req);
    int n =
        snprintf(req, pad + 128,
                 "{\"type\":\"publish\",\"room\":\"%s\",\"data\":{\"n\":%d,\"pad\":\"", room, k);
    memset(req + n, 'x', pad);
    strcpy(req + n + pad, "\"}}");
    hj_send(c, req);
    free(req);
    json_t *j = hj_expect_type(c, "published");
    long long seq = hj_int(j, "seq");
    json_decref(j);
    return seq;
}

/* One history request through Redis: asserts the page holds seqs since + 1 .. since + n (at
 * most 256 KiB of messages) and its "more"/"next" marker; returns the next since. */
static long long history_page(struct rc *c, const char *room, long long since, size_t n, bool more)
{
    hj_sendf(c, "{\"type\":\"history\",\"room\":\"%s\",\"since\":%lld}", room, since);
    json_t *h = hj_expect_type(c, "history");
    assert_true(c->last.len <= 256 * 1024 + 512);
    json_t *ms = json_object_get(h, "messages");
    assert_int_equal(json_array_size(ms), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(ms, i), "seq")),
                         since + 1 + (long long)i);
    assert_int_equal(json_is_true(json_object_get(h, "more")), more);
    if (more) assert_int_equal(hj_int(h, "next"), since + (long long)n);
    json_decref(h);
    return since + (long long)n;
}

/* Through Redis, history replies and join catch-ups are paged like in-process ones (100
 * messages, 256 KiB), and a delivery over --history-max-message is not kept in Redis. */
static void test_redis_history_pages(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start_aged(f, 0, "1", "3600");
    const char *const extra[] = {"--workers",      "2",   "--redis", f->url,
                                 "--history-size", "200", NULL};
    if (sp_try_start(&f->n[1], WEFT_BIN, "redis", extra) != 0) fail_msg("node 1 did not start");
    char body[4096];
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
    struct rc *a = &f->c[0], *b = &f->c[1], *c = &f->c[2];
    assert_int_equal(rc_open(a, f->n[1].port, "/hub"), 0);
    assert_int_equal(rc_open(b, f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(c, f->n[0].port, "/hub"), 0);
    join(a, "p");
    for (int k = 1; k <= 150; k++)
        assert_int_equal(publish_pad(a, "p", k, 10), k);
    long long s = history_page(b, "p", 0, 100, true);
    history_page(b, "p", s, 50, false);
    hj_sendf(c, "{\"type\":\"join\",\"room\":\"p\",\"since\":0}");
    json_decref(hj_expect_type(c, "joined"));
    for (long long k = 1; k <= 100; k++) {
        json_t *m = hj_expect_type(c, "message");
        assert_int_equal(hj_int(m, "seq"), k);
        json_decref(m);
    }
    json_t *more = hj_expect_type(c, "history_more");
    assert_int_equal(hj_int(more, "next"), 100);
    assert_int_equal(hj_int(more, "seq"), 150);
    json_decref(more);
    /* by bytes: 10 x 60 KB, 4 per page */
    join(a, "big");
    for (int k = 1; k <= 10; k++)
        assert_int_equal(publish_pad(a, "big", k, 60000), k);
    s = history_page(b, "big", 0, 4, true);
    s = history_page(b, "big", s, 4, true);
    history_page(b, "big", s, 2, false);
    /* over --history-max-message (64 KiB by default): delivered, not kept */
    join(b, "big");
    settle();
    assert_int_equal(publish_pad(a, "big", 11, 70000), 11);
    json_t *m = hj_expect_type(b, "message");
    assert_int_equal(hj_int(m, "seq"), 11);
    json_decref(m);
    char line[64];
    redis_cmd(f, "ZCARD weft:hist:big", line, sizeof line);
    assert_string_equal(line, ":10\r\n");
    assert_int_equal(metric(f->n[1].port, "weft_history_skipped_total"), 1);
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < 2; i++)
        sp_stop(&f->n[i]);
}

/* The scripts run by SHA-1 (EVALSHA): after SCRIPT FLUSH the next publish fails with
 * "unavailable" naming NOSCRIPT (with plain EVAL it would succeed, so this shows the SHA path
 * is taken) and makes the node load them again: the publish after it gets the next seq and
 * crosses to the other node. */
static void test_redis_script_flush(void **state)
{
    struct fx *f = *state;
    redis_start(f);
    node_start(f, 0, "1");
    node_start(f, 1, "1");
    char body[4096];
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_ready(f->n[i].port, 200, 10000, body, sizeof body), 200);
    assert_int_equal(rc_open(&f->c[0], f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[1], f->n[1].port, "/hub"), 0);
    join(&f->c[0], "sf");
    join(&f->c[1], "sf");
    settle();
    assert_int_equal(publish(&f->c[0], "sf", 1), 1);
    assert_int_equal(expect_msg(&f->c[1], 1), 1);
    char line[64];
    redis_cmd(f, "SCRIPT FLUSH", line, sizeof line);
    assert_non_null(strstr(line, "+OK"));
    hj_sendf(&f->c[0], "{\"type\":\"publish\",\"room\":\"sf\",\"data\":{\"n\":2}}");
    json_t *e = hj_expect_type(&f->c[0], "error");
    assert_string_equal(hj_str(e, "code"), "unavailable");
    assert_non_null(strstr(hj_str(e, "reason"), "NOSCRIPT"));
    json_decref(e);
    assert_int_equal(publish(&f->c[0], "sf", 3), 2);
    assert_int_equal(expect_msg(&f->c[1], 3), 2);
}

/* Redis absent at start: the node serves local rooms, /readyz 503 and logs its attempts; it
 * becomes ready once Redis runs. */
static void test_redis_absent_at_start(void **state)
{
    struct fx *f = *state;
    if (!redis_bin())
        fail_msg("redis-server not found: run scripts/setup (it installs redis-server)");
    node_start(f, 0, "1");
    char body[4096];
    assert_int_equal(sp_http_get(f->n[0].port, "/readyz", body, sizeof body), 503);
    assert_non_null(strstr(sp_http_body(body), "broker unavailable"));
    assert_int_equal(rc_open(&f->c[0], f->n[0].port, "/ws/local"), 0);
    assert_int_equal(rc_open(&f->c[1], f->n[0].port, "/ws/local"), 0);
    assert_int_equal(rc_send(&f->c[0], WEFT_OP_TEXT, "hi", 2), 0);
    assert_int_equal(rc_recv(&f->c[1], 5000), RC_MESSAGE);
    assert_int_equal(rc_open(&f->c[2], f->n[0].port, "/hub"), 0);
    assert_int_equal(rc_open(&f->c[3], f->n[0].port, "/hub"), 0);
    join(&f->c[2], "solo");
    join(&f->c[3], "solo");
    assert_int_equal(publish(&f->c[2], "solo", 1), 1); /* in-process path */
    expect_msg(&f->c[3], 1);
    usleep(400000);
    assert_true(sp_log_count(&f->n[0], "connection attempt") >= 2);
    redis_start(f);
    int st = wait_ready(f->n[0].port, 200, 15000, body, sizeof body);
    if (st != 200) sp_dump_log(&f->n[0]);
    assert_int_equal(st, 200);
    /* now through Redis: a second node sees the room */
    node_start(f, 1, "1");
    assert_int_equal(wait_ready(f->n[1].port, 200, 10000, body, sizeof body), 200);
    assert_int_equal(rc_open(&f->c[4], f->n[1].port, "/ws/local"), 0);
    settle();
    assert_int_equal(rc_send(&f->c[0], WEFT_OP_TEXT, "x", 1), 0);
    assert_int_equal(rc_recv(&f->c[4], 5000), RC_MESSAGE);
    for (int i = 0; i < NCL; i++)
        rc_close(&f->c[i]);
    for (int i = 0; i < 2; i++)
        sp_stop(&f->n[i]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    sp_guard("test_redis", "the processes", 170);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cross_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_outage_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_history_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_history_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_script_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_absent_at_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
