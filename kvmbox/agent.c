/* kvmbox-agent: PID 1's worker inside the KVM host in a box. Listens on the box's
 * TCP port that QEMU forwards from the host, and for each connection that knows the
 * box token runs a program (chrooted into the host's files, as the runner's user,
 * stdio streamed, listening sockets announced), bridges a byte stream to a socket a
 * program listens on, or reports the box's state. Static, no libraries: it lives in
 * the box's initramfs. Not a general remote-execution service: one box, one host. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/kvm.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvmbox/proto.h"

extern char **environ;

static const char *root = "/host";
static const char *modules_errors_file;
static char token[KB_TOKEN_LEN + 1];

/* Below this much available memory a new program is refused as "out of memory". */
#define MIN_AVAILABLE_KIB (24 * 1024)
/* How many sockets one run may listen on at once. */
#define MAX_LISTENERS 32

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("kvmbox-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void send_error(int conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_error(int conn, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kb_send(conn, KB_ERROR, msg, strlen(msg));
}

/* Reads /proc/meminfo's value for key (kiB), or -1. */
static long meminfo_kib(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Whether the kernel log says it killed pid for lack of memory. */
static bool killed_for_memory(pid_t pid)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, needle[64];
	bool found = false;
	int n;

	if (size <= 0 || !(buf = malloc((size_t)size + 1)))
		return false;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n > 0) {
		buf[n] = '\0';
		snprintf(needle, sizeof(needle), "Killed process %d ", (int)pid);
		found = strstr(buf, needle) != NULL;
	}
	free(buf);
	return found;
}

/* --- STATUS --- */

/* Checks that KVM works: the API version and a VM can be created. */
static int kvm_check(char *why, size_t whylen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, v;

	if (fd < 0) {
		snprintf(why, whylen, "no /dev/kvm in the box: %s", strerror(errno));
		return -1;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	vm = ioctl(fd, KVM_CREATE_VM, 0);
	if (v != KVM_API_VERSION || vm < 0) {
		snprintf(why, whylen, "/dev/kvm does not work (API %d, create VM: %s)", v,
			 vm < 0 ? strerror(errno) : "ok");
		if (vm >= 0)
			close(vm);
		close(fd);
		return -1;
	}
	close(vm);
	close(fd);
	return 0;
}

/* Keeps one empty VM open for the box's life. The kernel patches its scheduler's
 * code whenever the first VM appears or the last one ends (the preempt notifier
 * static key); QEMU's multi-threaded emulation has been seen to go on running the old
 * code after such a patch and spin forever. With a VM always open the key never
 * flips again. */
static void hold_kvm_vm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, KVM_CREATE_VM, 0) < 0)
		say("cannot hold a KVM VM open: %s", strerror(errno));
	/* Both descriptors stay open (close-on-exec) until the box stops. */
}

static void do_status(int conn)
{
	char text[2048], why[256], mods[512] = "";
	struct timespec up;
	FILE *f;
	size_t n = 0;
	int len;

	if (modules_errors_file && (f = fopen(modules_errors_file, "r"))) {
		n = fread(mods, 1, sizeof(mods) - 1, f);
		fclose(f);
	}
	mods[n] = '\0';
	for (char *p = mods; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? ';' : '\0';
	clock_gettime(CLOCK_BOOTTIME, &up);
	len = snprintf(text, sizeof(text),
		       "kvm=%s\nmodules_errors=%s\nmem_total_kib=%ld\nmem_available_kib=%ld\n"
		       "uptime_s=%ld\ncpus=%ld\n",
		       kvm_check(why, sizeof(why)) == 0 ? "ok" : why, mods, meminfo_kib("MemTotal"),
		       meminfo_kib("MemAvailable"), (long)up.tv_sec, sysconf(_SC_NPROCESSORS_ONLN));
	kb_send(conn, KB_STATUS, text, (size_t)len);
}

/* --- CONNECT --- */

static void do_connect(int conn, const char *target)
{
	int s = -1;

	if (strncmp(target, "unix:", 5) == 0) {
		/* "unix:PIN:PATH": PIN is /proc/PID/fd/N, an O_PATH descriptor the run
		 * holds on the socket it saw bound, so the host's copy of PATH (the
		 * runner's listener, seen through virtiofs) is never what we reach. */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		const char *pin = target + 5, *colon = strchr(pin, ':');

		if (!colon || (size_t)(colon - pin) >= sizeof(sa.sun_path)) {
			send_error(conn, "bad target");
			return;
		}
		memcpy(sa.sun_path, pin, (size_t)(colon - pin));
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			send_error(conn, "cannot connect to %s in the box: %s", colon + 1,
				   strerror(errno));
			close(s);
			return;
		}
	} else if (strncmp(target, "tcp:", 4) == 0) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		long port = strtol(target + 4, NULL, 10);

		if (port <= 0 || port > 65535) {
			send_error(conn, "bad target");
			return;
		}
		sa.sin_port = htons((uint16_t)port);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			send_error(conn, "cannot connect to port %ld in the box: %s", port,
				   strerror(errno));
			close(s);
			return;
		}
	} else {
		send_error(conn, "bad target");
		return;
	}
	if (s < 0) {
		send_error(conn, "socket: %s", strerror(errno));
		return;
	}
	if (kb_send(conn, KB_OK, NULL, 0) == 0)
		kb_splice(conn, s);
	close(s);
}

/* --- RUN: listening sockets of a run --- */

struct listener {
	unsigned long li_inode;
	int li_pin;	      /* O_PATH descriptor on a unix socket's path, or -1 */
	char li_target[4200]; /* as announced in KB_LISTEN */
	bool li_seen;	      /* still listening in this scan */
};

struct run {
	pid_t ru_pid; /* the program, leader of its own session */
	int ru_conn;
	struct listener ru_listeners[MAX_LISTENERS];
	unsigned long ru_ignored[256]; /* listening inodes that are not ours */
	size_t ru_nignored;
};

/* Fills inodes with the socket inodes held by processes in session sid. */
static size_t session_sockets(pid_t sid, unsigned long *inodes, size_t max)
{
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *p, *fd;
	size_t n = 0;

	if (!proc)
		return 0;
	while ((p = readdir(proc))) {
		char path[300], stat[512], link[64], *rp;
		long session = -1;
		FILE *f;

		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", p->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(stat, sizeof(stat), f) && (rp = strrchr(stat, ')')))
			sscanf(rp + 1, " %*c %*d %*d %ld", &session);
		fclose(f);
		if (session != sid)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		if (!(fds = opendir(path)))
			continue;
		while ((fd = readdir(fds)) && n < max) {
			char fdpath[600];
			ssize_t l;

			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, fd->d_name);
			l = readlink(fdpath, link, sizeof(link) - 1);
			if (l > 0) {
				link[l] = '\0';
				if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1)
					n++;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}

static struct listener *find_listener(struct run *r, unsigned long inode)
{
	for (int i = 0; i < MAX_LISTENERS; i++)
		if (r->ru_listeners[i].li_inode == inode)
			return &r->ru_listeners[i];
	return NULL;
}

static bool ignored(struct run *r, unsigned long inode)
{
	for (size_t i = 0; i < r->ru_nignored; i++)
		if (r->ru_ignored[i] == inode)
			return true;
	return false;
}

/* A listening socket seen in /proc/net: unix (path) or TCP (port). */
struct candidate {
	unsigned long inode;
	char path[4096]; /* unix: as bound; empty for TCP */
	unsigned port;
};

/* Announces a new listener of the run if inode is held by the run's processes. */
static void consider(struct run *r, const struct candidate *c, unsigned long *owned, size_t *nowned,
		     bool *scanned)
{
	struct listener *l;
	bool ours = false;

	if ((l = find_listener(r, c->inode))) {
		l->li_seen = true;
		return;
	}
	if (ignored(r, c->inode))
		return;
	if (!*scanned) {
		*nowned = session_sockets(r->ru_pid, owned, 4096);
		*scanned = true;
	}
	for (size_t i = 0; i < *nowned; i++)
		ours |= owned[i] == c->inode;
	if (!ours) {
		if (r->ru_nignored < sizeof(r->ru_ignored) / sizeof(r->ru_ignored[0]))
			r->ru_ignored[r->ru_nignored++] = c->inode;
		return;
	}
	if (!(l = find_listener(r, 0)))
		return; /* more than MAX_LISTENERS: the rest are not bridged */
	l->li_pin = -1;
	if (c->path[0]) {
		char full[4200];

		/* Bound relative to the program's root (the host's files) or its cwd. */
		if (c->path[0] == '/')
			snprintf(full, sizeof(full), "%s%s", root, c->path);
		else
			snprintf(full, sizeof(full), "/proc/%d/cwd/%s", (int)r->ru_pid, c->path);
		l->li_pin = open(full, O_PATH | O_CLOEXEC);
		if (l->li_pin < 0)
			return;
		snprintf(l->li_target, sizeof(l->li_target), "unix:/proc/%d/fd/%d:%s",
			 (int)getpid(), l->li_pin, c->path);
	} else {
		snprintf(l->li_target, sizeof(l->li_target), "tcp:%u", c->port);
	}
	l->li_inode = c->inode;
	l->li_seen = true;
	kb_send(r->ru_conn, KB_LISTEN, l->li_target, strlen(l->li_target));
}

static int by_inode(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Parses /proc/net/unix and /proc/net/tcp{,6} for listening sockets and announces the
 * run's new ones in the order they were created (socket inodes only grow), so a
 * program that opens its sockets in order (vdi-hv: display, then control) is reachable
 * through them on the host in that order. */
static void scan_listeners(struct run *r)
{
	static unsigned long owned[4096];
	static struct candidate found[64];
	size_t nowned = 0, nfound = 0;
	bool scanned = false;
	char line[4400];
	FILE *f;

	for (int i = 0; i < MAX_LISTENERS; i++)
		r->ru_listeners[i].li_seen = false;
	if ((f = fopen("/proc/net/unix", "r"))) {
		while (fgets(line, sizeof(line), f) && nfound < 64) {
			struct candidate *c = &found[nfound];
			unsigned long flags, type, st;
			int off = 0;

			c->path[0] = '\0';
			c->port = 0;
			if (sscanf(line, "%*x: %*x %*x %lx %lx %lx %lu %n", &flags, &type, &st,
				   &c->inode, &off) < 4 ||
			    off == 0)
				continue;
			/* __SO_ACCEPTCON, unconnected, bound to a path (not abstract) */
			if (!(flags & 0x10000) || st != 1 || line[off] == '@' ||
			    line[off] == '\n' || line[off] == '\0')
				continue;
			snprintf(c->path, sizeof(c->path), "%s", line + off);
			c->path[strcspn(c->path, "\n")] = '\0';
			nfound++;
		}
		fclose(f);
	}
	for (int v6 = 0; v6 < 2; v6++) {
		if (!(f = fopen(v6 ? "/proc/net/tcp6" : "/proc/net/tcp", "r")))
			continue;
		while (fgets(line, sizeof(line), f) && nfound < 64) {
			struct candidate *c = &found[nfound];
			char addr[40];
			unsigned st;

			c->path[0] = '\0';
			if (sscanf(line,
				   " %*d: %39[0-9A-Fa-f]:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u "
				   "%lu",
				   addr, &c->port, &st, &c->inode) != 4 ||
			    st != 0x0A)
				continue;
			/* 127.0.0.1 or any address; ::1 or :: */
			if (strcmp(addr, "0100007F") && strcmp(addr, "00000000") &&
			    strcmp(addr, "00000000000000000000000001000000") &&
			    strcmp(addr, "00000000000000000000000000000000"))
				continue;
			nfound++;
		}
		fclose(f);
	}
	qsort(found, nfound, sizeof(found[0]), by_inode);
	for (size_t i = 0; i < nfound; i++)
		consider(r, &found[i], owned, &nowned, &scanned);
	for (int i = 0; i < MAX_LISTENERS; i++) {
		struct listener *l = &r->ru_listeners[i];

		if (l->li_inode && !l->li_seen) {
			kb_send(r->ru_conn, KB_UNLISTEN, l->li_target, strlen(l->li_target));
			if (l->li_pin >= 0)
				close(l->li_pin);
			memset(l, 0, sizeof(*l));
		}
	}
}

/* --- RUN --- */

/* In the child: becomes the program, or writes errno to errfd and exits 127. */
static void exec_program(const struct kb_run *req, int in, int out, int err, int errfd)
{
	sigset_t none;
	gid_t gid = req->kr_gid;
	int e;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	if (chroot(root) < 0)
		goto fail;
	if (chdir(req->kr_cwd) < 0) {
		e = errno;
		if (write(errfd, "c", 1) < 0 || write(errfd, &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	if (setgroups(1, &gid) < 0 || setgid(req->kr_gid) < 0 || setuid(req->kr_uid) < 0)
		goto fail;
	environ = req->kr_envp;
	execvp(req->kr_argv[0], req->kr_argv);
fail:
	e = errno;
	if (write(errfd, "x", 1) < 0 || write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Sends what a pipe holds now, without waiting for more. Returns false at its end. */
static bool forward_output(int conn, int fd, enum kb_msg type)
{
	char buf[64 * 1024];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	kb_send(conn, type, buf, (size_t)n);
	return true;
}

/* Sets the box's clock to the host's when they differ by more than 20 ms: programs
 * in the box and on the host compare times (ticket expiry), and the box starts from
 * the emulated RTC's whole second and drifts under emulation. */
static void follow_host_clock(long long host_ns)
{
	struct timespec now;
	long long box_ns, diff;

	if (host_ns <= 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
		return;
	box_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	diff = box_ns - host_ns;
	if (diff > -20000000LL && diff < 20000000LL)
		return;
	now.tv_sec = (time_t)(host_ns / 1000000000LL);
	now.tv_nsec = (long)(host_ns % 1000000000LL);
	clock_settime(CLOCK_REALTIME, &now);
}

static void do_run(int conn, char *payload, size_t len)
{
	int in[2], out[2], err[2], errpipe[2], pidfd, status = 0;
	struct kb_run req;
	struct run r = {.ru_conn = conn};
	long avail = meminfo_kib("MemAvailable");
	bool killed = false, stdin_open = true;
	long interval_ms = 20, elapsed_ms = 0;
	char what;
	int e;

	if (kb_run_decode(payload, len, &req) < 0) {
		send_error(conn, "malformed run request");
		return;
	}
	follow_host_clock(req.kr_realtime_ns);
	if (avail >= 0 && avail < MIN_AVAILABLE_KIB) {
		send_error(conn,
			   "box out of memory: %ld MiB available (start the box with more "
			   "--memory)",
			   avail / 1024);
		kb_run_free(&req);
		return;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(errpipe, O_CLOEXEC) < 0) {
		send_error(conn, "pipe: %s", strerror(errno));
		return;
	}
	signal(SIGCHLD, SIG_DFL);
	r.ru_pid = fork();
	if (r.ru_pid < 0) {
		send_error(conn, "fork: %s", strerror(errno));
		return;
	}
	if (r.ru_pid == 0)
		exec_program(&req, in[0], out[1], err[1], errpipe[1]);
	close(in[0]), close(out[1]), close(err[1]), close(errpipe[1]);
	if (read(errpipe[0], &what, 1) == 1 && read(errpipe[0], &e, sizeof(e)) == sizeof(e)) {
		if (what == 'c')
			send_error(conn, "cannot change to %s in the box: %s", req.kr_cwd,
				   strerror(e));
		else
			send_error(conn, "cannot run %s: %s", req.kr_argv[0], strerror(e));
		waitpid(r.ru_pid, NULL, 0);
		kb_run_free(&req);
		return;
	}
	close(errpipe[0]);
	kb_run_free(&req);
	kb_send_u32(conn, KB_STARTED, (uint32_t)r.ru_pid);
	pidfd = (int)syscall(SYS_pidfd_open, r.ru_pid, 0);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd pfd[4] = {{.fd = conn, .events = POLLIN},
					{.fd = out[0], .events = POLLIN},
					{.fd = err[0], .events = POLLIN},
					{.fd = pidfd, .events = POLLIN}};
		int n = poll(pfd, 4, (int)interval_ms);

		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0) {
			scan_listeners(&r);
			elapsed_ms += interval_ms;
			if (elapsed_ms > 2000)
				interval_ms = 100;
			continue;
		}
		if (pfd[1].revents && !forward_output(conn, out[0], KB_STDOUT))
			pfd[1].fd = out[0] = (close(out[0]), -1);
		if (pfd[2].revents) {
			/* A log line may say the program listens now: bridge first. */
			scan_listeners(&r);
			if (!forward_output(conn, err[0], KB_STDERR))
				pfd[2].fd = err[0] = (close(err[0]), -1);
		}
		if (pfd[3].revents)
			break;
		if (pfd[0].revents) {
			enum kb_msg type;
			char *msg;
			size_t mlen;

			if (kb_recv(conn, &type, &msg, &mlen) < 0) {
				/* The runner is gone (killed, or its box connection lost):
				 * the program goes with it. */
				kill(-r.ru_pid, SIGKILL);
				kill(r.ru_pid, SIGKILL);
				waitpid(r.ru_pid, NULL, 0);
				_exit(0);
			}
			if (type == KB_STDIN && stdin_open) {
				const char *p = msg;

				while (mlen > 0) {
					ssize_t w = write(in[1], p, mlen);

					if (w < 0 && errno == EINTR)
						continue;
					if (w <= 0)
						break;
					p += w, mlen -= (size_t)w;
				}
			} else if (type == KB_STDIN_EOF && stdin_open) {
				close(in[1]);
				stdin_open = false;
			} else if (type == KB_SIGNAL) {
				int sig = (int)kb_u32(msg, mlen);

				killed |= sig == SIGKILL;
				if (sig > 0 && sig < NSIG)
					kill(r.ru_pid, sig);
			}
			free(msg);
		}
	}
	while (waitpid(r.ru_pid, &status, 0) < 0 && errno == EINTR)
		;
	/* What the program wrote before it ended; descendants that keep the pipes
	 * open are not waited for, as a shell does not wait for them either. */
	while (out[0] >= 0 && forward_output(conn, out[0], KB_STDOUT))
		if (errno == EAGAIN)
			break;
	while (err[0] >= 0 && forward_output(conn, err[0], KB_STDERR))
		if (errno == EAGAIN)
			break;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !killed &&
	    killed_for_memory(r.ru_pid))
		kb_send(conn, KB_OOM, NULL, 0);
	kb_send_u32(conn, KB_EXIT, (uint32_t)status);
}

/* --- connections --- */

static bool token_matches(const char *given, size_t len)
{
	unsigned char diff = len != KB_TOKEN_LEN;

	for (size_t i = 0; i < KB_TOKEN_LEN; i++)
		diff |= (unsigned char)(token[i] ^ (i < len ? given[i] : 0));
	return diff == 0;
}

static void serve(int conn)
{
	struct timeval hello_deadline = {.tv_sec = 10}, none = {0};
	enum kb_msg type;
	char *msg;
	size_t len;

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &hello_deadline, sizeof(hello_deadline));
	if (kb_recv(conn, &type, &msg, &len) < 0)
		return;
	if (type != KB_HELLO || !token_matches(msg, len)) {
		send_error(conn, "wrong box token");
		return;
	}
	free(msg);
	kb_send(conn, KB_OK, NULL, 0);
	if (kb_recv(conn, &type, &msg, &len) < 0)
		return;
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	switch (type) {
	case KB_RUN: do_run(conn, msg, len); break;
	case KB_CONNECT: do_connect(conn, msg); break;
	case KB_STATUS: do_status(conn); break;
	default: send_error(conn, "unexpected message %d", (int)type); break;
	}
	free(msg);
}

static int read_token(const char *path)
{
	ssize_t n = -1;
	int fd;

	/* The host writes the token before QEMU starts; allow the share a moment. */
	for (int i = 0; i < 50 && n != KB_TOKEN_LEN; i++) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			n = read(fd, token, KB_TOKEN_LEN);
			close(fd);
		}
		if (n != KB_TOKEN_LEN)
			usleep(100 * 1000);
	}
	token[KB_TOKEN_LEN] = '\0';
	return n == KB_TOKEN_LEN ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"root", required_argument, NULL, 'r'},
					     {"port", required_argument, NULL, 'p'},
					     {"token-file", required_argument, NULL, 't'},
					     {"modules-errors", required_argument, NULL, 'm'},
					     {NULL, 0, NULL, 0}};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	const char *token_file = NULL;
	int port = KB_AGENT_PORT, ls, one = 1, c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': root = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': token_file = optarg; break;
		case 'm': modules_errors_file = optarg; break;
		default: return 2;
		}
	}
	if (!token_file || read_token(token_file) < 0) {
		say("cannot read the box token from %s", token_file ? token_file : "(none)");
		return 1;
	}
	/* Connection handlers are reaped by the kernel; so are orphans (we are PID 1). */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_port = htons((uint16_t)port);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 128) < 0) {
		say("cannot listen on port %d: %s", port, strerror(errno));
		return 1;
	}
	hold_kvm_vm();
	say("ready on port %d", port);
	for (;;) {
		int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (conn < 0)
			continue;
		setsockopt(conn, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
		pid = fork();
		if (pid == 0) {
			close(ls);
			serve(conn);
			_exit(0);
		}
		close(conn);
	}
}
