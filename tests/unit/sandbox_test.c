/* Unit tests for hv/sandbox: vdi-hv's allow-list, installed in a forked child. The calls
 * the running VMM needs pass (read, write, futex, a thread, anonymous memory, an ioctl
 * on the list); opening a file, executing a program, connecting or making a socket,
 * forking, mapping executable memory and an ioctl off the list kill the child with SIGSYS;
 * no_new_privs and the filter show in the child's /proc/PID/status; the limits hold. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/sandbox.h"

/* What a child does once sandboxed; returns its exit status (0: all went as hoped). */
typedef int (*child_fn)(void);

/* A pipe made before the filter, as vdi-hv's descriptors are. */
static int pipe_fds[2];

/* Runs fn in a sandboxed child; returns its wait status. The child leaves with _exit()
 * so that nothing of the parent's (cmocka, sanitizers) runs there after the filter. */
static int run_sandboxed(child_fn fn)
{
	int status;
	pid_t pid;

	assert_int_equal(pipe(pipe_fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_limit_resources() < 0 || sandbox_enter() < 0 || !sandbox_active())
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	return status;
}

static void assert_killed_by_sandbox(child_fn fn)
{
	int status = run_sandboxed(fn);

	if (WIFEXITED(status))
		fail_msg("child exited with status %d instead of being killed",
			 WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void assert_passes(child_fn fn)
{
	int status = run_sandboxed(fn);

	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- allowed ---- */

static void *thread_main(void *arg)
{
	return arg;
}

static int do_allowed(void)
{
	int word = 0;
	char c = 0;
	void *mem, *ret = NULL;
	pthread_t t;
	struct timespec ts;

	if (write(pipe_fds[1], "x", 1) != 1 || read(pipe_fds[0], &c, 1) != 1 || c != 'x')
		return 1;
	/* FUTEX_WAKE with nobody waiting: none woken. */
	if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0)
		return 2;
	mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || munmap(mem, 1 << 20) < 0)
		return 3;
	/* A thread: clone3 is refused with ENOSYS, glibc falls back to clone(CLONE_THREAD). */
	if (pthread_create(&t, NULL, thread_main, &word) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != &word)
		return 4;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || close(pipe_fds[0]) < 0)
		return 5;
	/* Refused, not fatal: vdi-hv's sockets stay behind it. */
	if (unlink("/nonexistent/sandbox-test") == 0 || errno != EPERM)
		return 6;
	return 0;
}

static void test_needed_calls_pass(void **state)
{
	(void)state;
	assert_passes(do_allowed);
}

static int do_limits(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > 256 || rl.rlim_max > 256)
		return 1;
	if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur || rl.rlim_max)
		return 2;
	return 0;
}

static void test_resource_limits(void **state)
{
	(void)state;
	/* prlimit64 is what getrlimit() calls: read in a child not sandboxed. */
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(sandbox_limit_resources() < 0 ? 100 : do_limits());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- forbidden: each kills the child ---- */

static int do_openat(void)
{
	return syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY) >= 0 ? 0 : 1;
}

static int do_open(void)
{
	return syscall(SYS_open, "/dev/null", O_RDONLY) >= 0 ? 0 : 1;
}

static int do_execve(void)
{
	char *argv[] = {"/bin/true", NULL};

	execve("/bin/true", argv, environ);
	return 1;
}

static int do_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	/* pipe_fds[1] is no socket: the kernel would say ENOTSOCK, if it were asked. */
	return syscall(SYS_connect, pipe_fds[1], &sa, sizeof(sa)) == 0 ? 0 : 1;
}

static int do_socket(void)
{
	return socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1;
}

static int do_fork(void)
{
	/* glibc's fork() is clone without CLONE_THREAD. */
	return fork() >= 0 ? 0 : 1;
}

static int do_exec_memory(void)
{
	return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		       MAP_FAILED
		   ? 1
		   : 0;
}

static int do_make_executable(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 1;
	return mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0 ? 0 : 1;
}

static int do_other_ioctl(void)
{
	int n;

	return ioctl(pipe_fds[0], FIONREAD, &n) == 0 ? 0 : 1;
}

static int do_kill_other(void)
{
	/* tgkill is for this process's own threads. */
	return syscall(SYS_tgkill, 1, 1, 0) == 0 ? 0 : 1;
}

static void test_forbidden_calls_kill(void **state)
{
	const child_fn forbidden[] = {
	    do_openat, do_open,	       do_execve,	   do_connect,	   do_socket,
	    do_fork,   do_exec_memory, do_make_executable, do_other_ioctl, do_kill_other};

	(void)state;
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		print_message("forbidden call %zu\n", i);
		assert_killed_by_sandbox(forbidden[i]);
	}
}

/* ---- a vCPU thread's narrower list ---- */

/* What a vCPU thread does in a test child: narrows its sandbox, does what vCPUs do
 * (write, futex, time), then, when probe is set, a call only other threads make. */
static int (*vcpu_probe)(void);

static void *vcpu_main(void *arg)
{
	struct timespec ts;
	int word = 0;

	(void)arg;
	if (sandbox_enter_vcpu() != 0)
		return (void *)1;
	if (write(pipe_fds[1], "v", 1) != 1 ||
	    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0 ||
	    clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return (void *)2;
	if (vcpu_probe && vcpu_probe() != 0)
		return (void *)3;
	return NULL;
}

/* A vCPU thread runs vcpu_main(); the main thread then still uses a socket call the
 * vCPU may not (the display and control threads do). */
static int sock_fds[2]; /* made before the filter, as vdi-hv's sockets are */

static int do_vcpu(void)
{
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);
	void *ret = (void *)9;
	pthread_t t;

	if (pthread_create(&t, NULL, vcpu_main, NULL) != 0 || pthread_join(t, &ret) != 0)
		return 11;
	if (ret)
		return (int)(intptr_t)ret;
	return getsockname(sock_fds[0], (struct sockaddr *)&addr, &len) == 0 ? 0 : 12;
}

static int vcpu_getsockname(void)
{
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);

	return getsockname(sock_fds[0], (struct sockaddr *)&addr, &len) == 0 ? 0 : 1;
}

static int vcpu_thread_create(void)
{
	pthread_t t;

	return pthread_create(&t, NULL, thread_main, NULL) == 0 ? 0 : 1;
}

static int vcpu_poll(void)
{
	return poll(NULL, 0, 0) == 0 ? 0 : 1;
}

static void test_vcpu_thread_narrows(void **state)
{
	int (*const forbidden[])(void) = {vcpu_getsockname, vcpu_thread_create, vcpu_poll};

	(void)state;
	assert_int_equal(sandbox_enter_vcpu(), 1); /* no sandbox here: nothing to narrow */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fds), 0);
	vcpu_probe = NULL;
	assert_passes(do_vcpu);
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		print_message("forbidden in a vCPU thread %zu\n", i);
		vcpu_probe = forbidden[i];
		assert_killed_by_sandbox(do_vcpu);
	}
	close(sock_fds[0]);
	close(sock_fds[1]);
}

/* ---- what /proc shows of it ---- */

/* The child enters the sandbox and waits on a pipe; its status is read meanwhile. */
static void test_status_shows_filter(void **state)
{
	char path[64], buf[8192] = "";
	int p[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		if (sandbox_enter() < 0)
			_exit(100);
		_exit(read(p[0], buf, 1) == 0 ? 0 : 1); /* EOF once the parent has looked */
	}
	close(p[0]);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	for (int tries = 0; tries < 500 && !strstr(buf, "Seccomp:\t2"); tries++) {
		int fd = open(path, O_RDONLY);
		ssize_t n, got = 0;

		assert_true(fd >= 0);
		while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
			got += n;
		close(fd);
		buf[got] = '\0';
		if (!strstr(buf, "Seccomp:\t2"))
			usleep(10000);
	}
	assert_non_null(strstr(buf, "Seccomp:\t2"));
	assert_non_null(strstr(buf, "NoNewPrivs:\t1"));
	close(p[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
#ifdef __SANITIZE_ADDRESS__
	/* As in vdi-hv: LeakSanitizer's exit check (a clone reading /proc) cannot run under
	 * the filter, so sanitizer builds (SAN=1) test the code, not the sandbox. */
	puts("sandbox: not tested in this sanitizer build (vdi-hv runs it off there too)");
	return 0;
#endif
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_needed_calls_pass),	cmocka_unit_test(test_forbidden_calls_kill),
	    cmocka_unit_test(test_resource_limits),	cmocka_unit_test(test_vcpu_thread_narrows),
	    cmocka_unit_test(test_status_shows_filter),
	};

	return cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
}
