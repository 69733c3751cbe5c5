/*
 * test_io_backend.c — `weft serve --io-backend`: where the kernel refuses io_uring (here a
 * seccomp filter, inherited by the spawned server, makes io_uring_setup fail with EPERM) the
 * server says so in its log, runs on epoll and serves; a bad name exits 2 with one line.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rawclient.h"
#include "serveproc.h"

#ifndef WEFT_BIN
#error "WEFT_BIN (path of the weft program) must be defined"
#endif

/* Makes io_uring_setup fail with EPERM in this process and every child it starts. */
static void forbid_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    assert_int_equal(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    assert_int_equal(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/* True when the file at path has a line containing needle. */
static bool log_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

static void test_refused_falls_back_to_epoll(void **state)
{
    (void)state;
    forbid_io_uring();
    struct sp s = {0};
    const char *extra[] = {"--io-backend", "uring", "--workers", "2", NULL};
    sp_start(&s, WEFT_BIN, "iobackend", extra);
    assert_true(log_has(s.log, "io_uring unavailable (Operation not permitted): using epoll"));
    struct rc c;
    assert_int_equal(rc_open(&c, s.port, "/echo"), 0);
    assert_int_equal(rc_send(&c, WEFT_OP_TEXT, "hello", 5), 0);
    assert_int_equal(rc_recv(&c, 10000), RC_MESSAGE);
    assert_int_equal(c.last.len, 5);
    assert_memory_equal(c.last.data, "hello", 5);
    rc_close(&c);
    sp_stop(&s);
    sp_kill(&s);
}

static void test_bad_name(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(WEFT_BIN, WEFT_BIN, "serve", "--io-backend", "kqueue", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
}

int main(void)
{
    sp_guard("test_io_backend", "weft serve", 120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_refused_falls_back_to_epoll), /* last: the filter stays */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
