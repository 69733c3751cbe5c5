/*
 * test_loop_backend.c — choosing the loop's I/O backend: the configuration, the
 * WEFT_IO_BACKEND environment variable, the fallback to epoll when the kernel refuses
 * io_uring (a seccomp filter makes io_uring_setup fail in a child process), and the generic
 * watchers, timers and deferred calls on each backend.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "weft.h"

/* Whether this kernel lets the process set up an io_uring at all. */
static bool kernel_has_uring(void)
{
    struct {
        uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd,
            resv[3];
        uint8_t offsets[80];
    } p;
    memset(&p, 0, sizeof p);
    long fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0) return false;
    close((int)fd);
    return true;
}

/* The backend a loop created with cfg's backend b (and the environment as it is) uses. */
static enum weft_io_backend backend_for(enum weft_io_backend b, int *err)
{
    struct weft_loop_config cfg;
    weft_loop_config_init(&cfg);
    cfg.io_backend = b;
    struct weft_loop *loop = weft_loop_new_config(&cfg);
    assert_non_null(loop);
    enum weft_io_backend got = weft_loop_backend(loop);
    *err = weft_loop_backend_error(loop);
    weft_loop_free(loop);
    return got;
}

static void test_names(void **state)
{
    (void)state;
    enum weft_io_backend b = WEFT_IO_DEFAULT;
    assert_int_equal(weft_io_backend_parse("uring", &b), WEFT_OK);
    assert_int_equal(b, WEFT_IO_URING);
    assert_int_equal(weft_io_backend_parse("epoll", &b), WEFT_OK);
    assert_int_equal(b, WEFT_IO_EPOLL);
    assert_int_equal(weft_io_backend_parse("kqueue", &b), WEFT_ERR_INVAL);
    assert_int_equal(weft_io_backend_parse(NULL, &b), WEFT_ERR_INVAL);
    assert_string_equal(weft_io_backend_name(WEFT_IO_URING), "uring");
    assert_string_equal(weft_io_backend_name(WEFT_IO_EPOLL), "epoll");
}

/* The default is epoll; WEFT_IO_BACKEND chooses when the configuration does not. */
static void test_default_and_environment(void **state)
{
    (void)state;
    int err;
    unsetenv("WEFT_IO_BACKEND");
    assert_int_equal(backend_for(WEFT_IO_DEFAULT, &err), WEFT_IO_EPOLL);
    assert_int_equal(err, 0);
    setenv("WEFT_IO_BACKEND", "bogus", 1);
    assert_int_equal(backend_for(WEFT_IO_DEFAULT, &err), WEFT_IO_EPOLL);
    setenv("WEFT_IO_BACKEND", "uring", 1);
    enum weft_io_backend got = backend_for(WEFT_IO_DEFAULT, &err);
    if (kernel_has_uring() && err != ENOTSUP) {
        assert_int_equal(got, WEFT_IO_URING);
        assert_int_equal(err, 0);
    } else {
        assert_int_equal(got, WEFT_IO_EPOLL);
        assert_int_not_equal(err, 0);
    }
    /* The configuration wins over the environment. */
    assert_int_equal(backend_for(WEFT_IO_EPOLL, &err), WEFT_IO_EPOLL);
    assert_int_equal(err, 0);
    unsetenv("WEFT_IO_BACKEND");
}

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

/* In a child: io_uring_setup fails with errno_value (seccomp); a loop asked for io_uring runs
 * on epoll, says why, and works. Exit status 0 when all of that holds. */
static int child_refused(int errno_value)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errno_value & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 10;
    struct weft_loop_config cfg;
    weft_loop_config_init(&cfg);
    cfg.io_backend = WEFT_IO_URING;
    struct weft_loop *loop = weft_loop_new_config(&cfg);
    if (!loop) return 11;
    int rc = 0;
    if (weft_loop_backend(loop) != WEFT_IO_EPOLL)
        rc = 12;
    else if (weft_loop_backend_error(loop) != errno_value &&
             weft_loop_backend_error(loop) != ENOTSUP) /* built without io_uring */
        rc = 13;
    int calls = 0;
    if (!rc && weft_loop_defer(loop, count_call, &calls) != WEFT_OK) rc = 14;
    if (!rc && (weft_loop_poll(loop, 1000) < 0 || calls != 1)) rc = 15;
    weft_loop_free(loop);
    return rc;
}

/* Runs child_refused in a child process and returns its exit status. */
static int run_refused(int errno_value)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_refused(errno_value));
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_fallback_when_forbidden(void **state)
{
    (void)state;
    assert_int_equal(run_refused(EPERM), 0);
    assert_int_equal(run_refused(ENOSYS), 0);
}

/* Watch callback: counts readiness reports. */
static void on_watch(struct weft_watch *w, int fd, unsigned events, void *arg)
{
    (void)w;
    (void)fd;
    if (events & WEFT_WATCH_READ) (*(int *)arg)++;
}

static int fired;

static void on_timer(struct weft_timer *t)
{
    (void)t;
    fired++;
}

/* Polls until *counter reaches want or 2 s pass. */
static void poll_until(struct weft_loop *loop, const int *counter, int want)
{
    for (int i = 0; i < 200 && *counter < want; i++)
        assert_true(weft_loop_poll(loop, 10) >= 0);
}

/* Watchers are level-triggered, timers fire and deferred calls run, on backend b. */
static void check_backend(enum weft_io_backend b)
{
    struct weft_loop_config cfg;
    weft_loop_config_init(&cfg);
    cfg.io_backend = b;
    struct weft_loop *loop = weft_loop_new_config(&cfg);
    assert_non_null(loop);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int reports = 0, err = 0;
    struct weft_watch *w =
        weft_loop_watch_fd(loop, p[0], WEFT_WATCH_READ, on_watch, &reports, &err);
    assert_non_null(w);
    for (int i = 0; i < 3; i++)
        assert_true(weft_loop_poll(loop, 0) >= 0);
    assert_int_equal(reports, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    poll_until(loop, &reports, 1);
    assert_int_equal(reports, 1);
    /* Not read: still ready, reported again (level-triggered). */
    poll_until(loop, &reports, 3);
    assert_true(reports >= 3);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    weft_loop_poll(loop, 0); /* a report already fetched may still arrive */
    int before = reports;
    for (int i = 0; i < 3; i++)
        assert_true(weft_loop_poll(loop, 0) >= 0);
    assert_int_equal(reports, before);
    weft_watch_free(w);

    fired = 0;
    struct weft_timer t = {.cb = on_timer};
    weft_timer_start(loop, &t, 20);
    poll_until(loop, &fired, 1);
    assert_int_equal(fired, 1);

    int calls = 0;
    assert_int_equal(weft_loop_defer(loop, count_call, &calls), WEFT_OK);
    poll_until(loop, &calls, 1);
    assert_int_equal(calls, 1);
    for (int i = 0; i < 3; i++)
        weft_loop_poll(loop, 0); /* the reaper of the freed watch */
    weft_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void test_epoll_basics(void **state)
{
    (void)state;
    check_backend(WEFT_IO_EPOLL);
}

static void test_uring_basics(void **state)
{
    (void)state;
    check_backend(WEFT_IO_URING); /* epoll where io_uring is unavailable */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_default_and_environment),
        cmocka_unit_test(test_fallback_when_forbidden),
        cmocka_unit_test(test_epoll_basics),
        cmocka_unit_test(test_uring_basics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
