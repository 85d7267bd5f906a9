/* VMM processes: posix_spawn of the monitor in a new session, the monitor
 * itself (fork, exec, wait, record), pid files, /proc start times, pidfds and
 * log tails. */
#include "hostd/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/log.h"

#define PID_FD		 3
#define SPAWN_TIMEOUT_MS 5000
#define TAIL_BYTES	 8192
#define TAIL_LINE_MAX	 200

extern char **environ;

static void add_formatted(struct vmm_args *a, const char *fmt, va_list ap)
{
	char *s;

	if (a->va_count >= VMM_ARGS_MAX) {
		a->va_overflow = true;
		return;
	}
	if (vasprintf(&s, fmt, ap) < 0)
		a->va_overflow = true;
	else
		a->va_argv[a->va_count++] = s;
}

void vmm_args_add(struct vmm_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_formatted(a, fmt, ap);
	va_end(ap);
}

void vmm_args_opt(struct vmm_args *a, const char *option, const char *fmt, ...)
{
	va_list ap;

	vmm_args_add(a, "%s", option);
	va_start(ap, fmt);
	add_formatted(a, fmt, ap);
	va_end(ap);
}

void vmm_args_free(struct vmm_args *a)
{
	for (int i = 0; i < a->va_count; i++)
		free(a->va_argv[i]);
	a->va_count = 0;
}

/* From /proc/PID/stat: the process's state letter and its start time (field 22). */
static int read_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields restart after the
	 * last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	*state = p[2];
	p++;
	/* Field 3 (state) follows; the start time is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

static int read_start_time(pid_t pid, unsigned long long *start)
{
	char state;

	return read_stat(pid, &state, start);
}

bool vmm_alive(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	char state;

	if (pid <= 0 || read_stat(pid, &state, &now) < 0)
		return false;
	return now == start && state != 'Z' && state != 'X';
}

int vmm_watch(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	if (read_start_time(pid, &now) < 0 || now != start) {
		close(fd);
		return -ESRCH;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

bool vmm_ended(int pidfd)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

	return poll(&pfd, 1, 0) > 0;
}

int vmm_signal(pid_t pid, unsigned long long start, int sig)
{
	if (!vmm_alive(pid, start))
		return -ESRCH;
	return kill(pid, sig) < 0 ? -errno : 0;
}

/* A file of the run directory for reading as a stream; a symlink there is refused. NULL
 * with errno set. */
static FILE *open_run_file(const char *path)
{
	int fd = file_open_nofollow(path, O_RDONLY, 0);
	FILE *f;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return f;
}

int vmm_read_pidfile(const char *pid_path, struct vmm_proc *p)
{
	FILE *f = open_run_file(pid_path);
	unsigned uid = 0;
	int vmm, monitor, n;

	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	n = fscanf(f, "%d %llu %d %llu %u", &vmm, &p->vp_vmm_start, &monitor, &p->vp_monitor_start,
		   &uid);
	fclose(f);
	if (n < 4 || vmm <= 0 || monitor <= 0)
		return -EINVAL;
	p->vp_vmm = vmm;
	p->vp_monitor = monitor;
	p->vp_uid = (uid_t)uid;
	return 0;
}

int vmm_read_exit(const char *exit_path, int *status)
{
	FILE *f = open_run_file(exit_path);
	int n;

	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	n = fscanf(f, "%d", status);
	fclose(f);
	return n == 1 ? 0 : -EINVAL;
}

bool vmm_killed_by_sandbox(int status)
{
	return (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) ||
	       (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGSYS);
}

void vmm_describe_status(int status, char *buf, size_t len)
{
	if (vmm_killed_by_sandbox(status))
		snprintf(buf, len, "was killed by its sandbox (forbidden system call; %s %d)",
			 WIFSIGNALED(status) ? "signal" : "exit status",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status %#x", status);
}

/* Reads the VMM's pid from the monitor, waiting at most SPAWN_TIMEOUT_MS. */
static int read_pid(int fd, pid_t *pid)
{
	char buf[32];
	size_t len = 0;
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long waited;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= SPAWN_TIMEOUT_MS)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(SPAWN_TIMEOUT_MS - waited)) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len) || len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	*pid = (pid_t)atoi(buf);
	return *pid > 0 ? 0 : -ECHILD;
}

int vmm_spawn(const char *self, const struct vmm_args *a, const char *log_path,
	      const char *exit_path, const char *pid_path, struct vmm_proc *p)
{
	char *argv[VMM_ARGS_MAX + 7];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char pidline[128];
	int pipefd[2], argc = 0, logfd, r;

	if (a->va_overflow || a->va_count == 0)
		return -E2BIG;
	argv[argc++] = (char *)"vdi-hostd-monitor";
	argv[argc++] = (char *)"--monitor";
	argv[argc++] = (char *)exit_path;
	if (a->va_pid_namespace)
		argv[argc++] = (char *)"--pid-namespace";
	argv[argc++] = (char *)"--";
	for (int i = 0; i < a->va_count; i++)
		argv[argc++] = a->va_argv[i];
	argv[argc] = NULL;

	unlink(exit_path);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGCHLD);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	/* the log is opened here, a symlink there refused, and handed over as 1 and 2 */
	logfd = file_open_nofollow(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (logfd < 0) {
		log_warnx("vmm: cannot open %s: %s", log_path,
			  logfd == -ELOOP ? "a symbolic link: refused" : strerror(-logfd));
		close(pipefd[0]);
		close(pipefd[1]);
		return logfd;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], PID_FD);
	r = posix_spawn(&p->vp_monitor, self, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	close(logfd);
	if (r) {
		close(pipefd[0]);
		errno = r;
		log_warn("vmm: cannot start the monitor %s", self);
		return -r;
	}
	r = read_pid(pipefd[0], &p->vp_vmm);
	close(pipefd[0]);
	if (r < 0) {
		/* The monitor could not start the VMM; it reports why in the log. */
		log_warnx("vmm: %s did not start (see %s)", a->va_argv[0], log_path);
		kill(p->vp_monitor, SIGKILL);
		waitpid(p->vp_monitor, NULL, 0);
		return r;
	}
	if (read_start_time(p->vp_monitor, &p->vp_monitor_start) < 0 ||
	    read_start_time(p->vp_vmm, &p->vp_vmm_start) < 0) {
		/* Gone already: the caller sees it through the exit file. */
		p->vp_vmm_start = p->vp_monitor_start = 0;
	}
	p->vp_uid = a->va_uid;
	snprintf(pidline, sizeof(pidline), "%d %llu %d %llu %u\n", (int)p->vp_vmm, p->vp_vmm_start,
		 (int)p->vp_monitor, p->vp_monitor_start, (unsigned)p->vp_uid);
	r = file_write_atomic(pid_path, pidline, strlen(pidline));
	if (r < 0)
		log_warnx("vmm: cannot write %s: %s", pid_path, strerror(-r));
	return 0;
}

/* ---- the monitor ---- */

static void write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t w = write(fd, s, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		len -= (size_t)w;
	}
}

int vmm_monitor_main(int argc, char **argv)
{
	const char *exit_path;
	char line[64];
	pid_t vmm;
	int status = 0, first = 4;

	if (argc > 4 && !strcmp(argv[3], "--pid-namespace"))
		first = 5;
	if (argc <= first || strcmp(argv[1], "--monitor") || strcmp(argv[first - 1], "--")) {
		fputs("usage: vdi-hostd --monitor EXIT_PATH [--pid-namespace] -- VMM [ARGS...] "
		      "(internal)\n",
		      stderr);
		return 2;
	}
	exit_path = argv[2];
	/* A confined VMM is the first process of a PID namespace of its own: it sees no
	 * other process, and nothing it could start outlives it. */
	if (first == 5 && unshare(CLONE_NEWPID) < 0) {
		fprintf(stderr, "vdi-hostd monitor: cannot make a PID namespace: %s\n",
			strerror(errno));
		return 1;
	}
	/* Nothing of hostd's may leak into the VMM: keep stdio and the pid pipe only.
	 */
	syscall(SYS_close_range, PID_FD + 1, ~0U, 0);
	vmm = fork();
	if (vmm < 0) {
		perror("vdi-hostd monitor: fork");
		return 1;
	}
	if (vmm == 0) {
		close(PID_FD);
		execv(argv[first], argv + first);
		fprintf(stderr, "vdi-hostd monitor: cannot run %s: %s\n", argv[first],
			strerror(errno));
		_exit(127);
	}
	/* Only now: the VMM must not inherit ignored signals. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	snprintf(line, sizeof(line), "%d\n", (int)vmm);
	write_all(PID_FD, line, strlen(line));
	close(PID_FD);
	while (waitpid(vmm, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0x7f00; /* "exited with 127": cannot tell */
			break;
		}
	}
	snprintf(line, sizeof(line), "%d\n", status);
	if (file_write_atomic(exit_path, line, strlen(line)) < 0)
		fprintf(stderr, "vdi-hostd monitor: cannot write %s\n", exit_path);
	return 0;
}

/* ---- log tails ---- */

/* Copies text without terminal escape sequences and control characters, \n
 * kept. */
static size_t clean(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == 0x1b) {
			/* CSI: ESC [ params final-byte; other escapes: ESC and one byte. */
			if (i + 1 < n && in[i + 1] == '[') {
				i += 2;
				while (i < n && !((unsigned char)in[i] >= 0x40 &&
						  (unsigned char)in[i] <= 0x7e))
					i++;
			} else {
				i++;
			}
			continue;
		}
		if (ch >= 0x80)
			out[o++] = '?'; /* keeps the JSON strings valid UTF-8 */
		else if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
			out[o++] = ch == '\t' ? ' ' : (char)ch;
	}
	return o;
}

json_t *vmm_log_tail(const char *path, int max_lines)
{
	json_t *lines = json_array();
	char raw[TAIL_BYTES], text[TAIL_BYTES];
	const char *starts[256];
	int nstart = 0, fd;
	struct stat st;
	ssize_t n;
	size_t len;

	if (!lines)
		return NULL;
	fd = file_open_nofollow(path, O_RDONLY, 0);
	if (fd < 0)
		return lines;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return lines;
	}
	n = pread(fd, raw, sizeof(raw),
		  st.st_size > TAIL_BYTES ? (off_t)(st.st_size - TAIL_BYTES) : 0);
	close(fd);
	if (n <= 0)
		return lines;
	len = clean(raw, (size_t)n, text);
	if (max_lines > 256)
		max_lines = 256;
	/* Walk back over the last max_lines non-empty lines. */
	for (size_t end = len; end > 0 && nstart < max_lines;) {
		size_t start = end;

		while (start > 0 && text[start - 1] != '\n')
			start--;
		if (end > start) {
			bool blank = true;

			for (size_t i = start; i < end; i++)
				blank &= text[i] == ' ';
			if (!blank)
				starts[nstart++] = text + start;
		}
		end = start ? start - 1 : 0;
	}
	for (int i = nstart - 1; i >= 0; i--) {
		size_t l = strcspn(starts[i], "\n");

		if (starts[i] + l > text + len)
			l = (size_t)(text + len - starts[i]);
		if (l > TAIL_LINE_MAX)
			l = TAIL_LINE_MAX;
		json_array_append_new(lines, json_stringn(starts[i], l));
	}
	return lines;
}

int vmm_log_cap(const char *path, long long max)
{
	int fd = file_open_nofollow(path, O_WRONLY, 0), r = 0;
	struct stat st;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_size > max)
		r = ftruncate(fd, 0) < 0 ? -errno : 1;
	close(fd);
	return r;
}
