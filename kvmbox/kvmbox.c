/* kvmbox: the KVM host in a box. Where a machine has no /dev/kvm, a small Linux
 * (Debian's kernel with kvm_amd, busybox, kvmbox-agent) runs under QEMU's software
 * emulation of an AMD CPU with SVM and nested paging, and has a real /dev/kvm.
 * `kvmbox run` runs a program in it as if locally: same argv, working directory and
 * files (the host's root over virtiofs), stdio streamed, signals forwarded, exit
 * status returned, and the unix and loopback TCP sockets it listens on bridged to the
 * same path or port on the host. The program is the unchanged binary a hardware host
 * runs. Not a sandbox: the box sees the host's files with the runner's rights. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostd/kvmprobe.h"
#include "kvmbox/proto.h"

extern char **environ;

#define DEFAULT_MEMORY_MIB 2048
#define DEFAULT_CPUS	   2
/* How long a box may take to boot to a working /dev/kvm (about 4 s here). */
#define BOOT_TIMEOUT_S 120
#define MAX_BRIDGES    64
/* Shares the host's root with the box (from Debian's qemu-system-common). */
#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"

static const char *progname = "kvmbox";

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void usage(void)
{
	fputs("usage: kvmbox start [--memory MIB] [--cpus N] DIR\n"
	      "       kvmbox stop DIR\n"
	      "       kvmbox status DIR\n"
	      "       kvmbox run [--box DIR] [--memory MIB] -- PROGRAM [ARG...]\n"
	      "       kvmbox probe\n"
	      "See kvmbox(1).\n",
	      stderr);
	exit(2);
}

/* --- the box directory: qemu.pid, port, token, console.log, qemu.log --- */

struct box {
	char bx_dir[PATH_MAX];
	pid_t bx_qemu;
	int bx_port;
	char bx_token[KB_TOKEN_LEN + 1];
};

static int read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return rename(tmp, path) < 0 ? -errno : 0;
}

/* Whether pid runs (a zombie does not: QEMU started by `kvmbox start` is reparented
 * to a PID 1 that may never reap it). */
static bool alive(pid_t pid)
{
	char path[64], stat[256], *rp;
	FILE *f;
	bool running = false;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return false;
	if (fgets(stat, sizeof(stat), f) && (rp = strrchr(stat, ')')))
		running = rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	fclose(f);
	return running;
}

/* Loads a box's files; returns 0 when its QEMU is running. */
static int box_load(struct box *b, const char *dir)
{
	char buf[128];

	memset(b, 0, sizeof(*b));
	if (!realpath(dir, b->bx_dir))
		return -errno;
	if (read_file(b->bx_dir, "qemu.pid", buf, sizeof(buf)) < 0)
		return -ESRCH;
	b->bx_qemu = (pid_t)atoi(buf);
	if (read_file(b->bx_dir, "port", buf, sizeof(buf)) < 0)
		return -ESRCH;
	b->bx_port = atoi(buf);
	if (read_file(b->bx_dir, "token", b->bx_token, sizeof(b->bx_token)) < 0)
		return -EACCES;
	return alive(b->bx_qemu) ? 0 : -ESRCH;
}

/* Opens an authenticated connection to the box's agent. Returns the socket or -errno;
 * err gets the agent's message when it refuses. */
static int box_connect(const struct box *b, char *err, size_t errlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)b->bx_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	enum kb_msg type;
	char *msg = NULL;
	size_t len;
	int s, one = 1, rc;

	if (err)
		snprintf(err, errlen, "cannot reach the box");
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	setsockopt(s, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    kb_send(s, KB_HELLO, b->bx_token, strlen(b->bx_token)) < 0) {
		rc = -errno;
		close(s);
		return rc;
	}
	rc = kb_recv(s, &type, &msg, &len);
	if (rc == 0 && type != KB_OK) {
		if (err)
			snprintf(err, errlen, "%s", msg);
		rc = -EACCES;
	}
	free(msg);
	if (rc < 0) {
		close(s);
		return rc;
	}
	return s;
}

/* Asks the agent for its state ("key=value" lines, malloc'd). */
static char *box_status(const struct box *b)
{
	enum kb_msg type;
	char *msg = NULL;
	size_t len;
	struct timeval deadline = {.tv_sec = 10};
	int s = box_connect(b, NULL, 0);

	if (s < 0)
		return NULL;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof(deadline));
	if (kb_send(s, KB_STATUS, NULL, 0) < 0 || kb_recv(s, &type, &msg, &len) < 0 ||
	    type != KB_STATUS) {
		free(msg);
		msg = NULL;
	}
	close(s);
	return msg;
}

/* The value of key in a status text, copied into buf. */
static const char *status_value(const char *status, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = status; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(buf, len, "%.*s", (int)strcspn(p + klen + 1, "\n"), p + klen + 1);
			return buf;
		}
	snprintf(buf, len, "?");
	return buf;
}

/* --- start, stop, status --- */

/* Whether the box's console log has printed text. */
static bool console_says(const char *dir, const char *text)
{
	char path[PATH_MAX + 32], buf[16384];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/console.log", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static const char *find_qemu(char *buf, size_t len)
{
	const char *env = getenv("KVMBOX_QEMU"), *path = getenv("PATH");

	if (env && *env)
		return access(env, X_OK) == 0 ? env : NULL;
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, len, "%.*s/qemu-system-x86_64", (int)n, p);
		if (n > 0 && access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return NULL;
}

/* The box's kernel and initramfs: $KVMBOX_IMAGE, else ../kvmbox beside bin/kvmbox. */
static void image_dir(char *buf, size_t len)
{
	const char *env = getenv("KVMBOX_IMAGE");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	*strrchr(exe[0] ? exe : strcpy(exe, "./x"), '/') = '\0';
	snprintf(buf, len, "%s/../kvmbox", exe);
}

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* Prints the last lines of a file of the box directory to stderr. */
static void show_tail(const char *dir, const char *name, int lines)
{
	char path[PATH_MAX + 32], buf[8192];
	ssize_t n;
	int fd, seen = 0;
	off_t size;
	char *p;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf + n; p > buf; p--)
		if (p[-1] == '\n' && p != buf + n && ++seen > lines)
			break;
	fprintf(stderr, "--- %s ---\n%s", path, p);
}

static void stop_qemu(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && alive(pid); i++) {
		waitpid(pid, NULL, WNOHANG);
		usleep(50 * 1000);
	}
	if (alive(pid))
		kill(pid, SIGKILL);
	waitpid(pid, NULL, WNOHANG);
}

static void remove_box_files(const char *dir)
{
	static const char *const names[] = {"qemu.pid", "port", "token", "virtiofsd.sock"};
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

/* Starts argv in its own session with its output in dir/logname; with private, it
 * is killed when we end. Returns its pid or -errno. */
static pid_t spawn(char **argv, const char *dir, const char *logname, bool private)
{
	char log[PATH_MAX + 32];
	pid_t parent = getpid(), pid;
	int fd;

	snprintf(log, sizeof(log), "%s/%s", dir, logname);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	setsid();
	if (private) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	dup2(fd, 1), dup2(fd, 2);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	dup2(fd, 0);
	execv(argv[0], argv);
	_exit(127);
}

static bool wait_for_file(const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++, usleep(10 * 1000))
		if (access(path, F_OK) == 0)
			return true;
	return false;
}

/* Boots a box in dir; returns when KVM works in it, or exits 2 saying why not.
 * private: QEMU dies with this process (a box for one run). */
static void box_start(struct box *b, const char *dir, int memory_mib, int cpus, bool private,
		      bool quiet)
{
	char qemu_buf[PATH_MAX], images[PATH_MAX], kernel[PATH_MAX + 16], initrd[PATH_MAX + 16];
	char append[PATH_MAX + 128], mem[32], smp[32], serial[PATH_MAX + 32], memdev[128];
	char vfs_sock[PATH_MAX + 32], vfs_sock_opt[PATH_MAX + 48], vfs_chardev[PATH_MAX + 64],
	    netdev[160], *status = NULL;
	char val[512], buf[32];
	const char *qemu = find_qemu(qemu_buf, sizeof(qemu_buf)), *virtiofsd = VIRTIOFSD;
	unsigned char raw[KB_TOKEN_LEN / 2];
	struct timespec t0, t1;
	double took;

	if (!qemu)
		die(2,
		    "qemu-system-x86_64 not found: install Debian's qemu-system-x86 (make deps)");
	if (access(virtiofsd, X_OK) < 0)
		die(2, "%s not found: install Debian's qemu-system-common (make deps)", virtiofsd);
	if (geteuid() != 0)
		die(2, "the box shares this machine's files through virtiofsd, which must run as "
		       "root");
	image_dir(images, sizeof(images));
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", images);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", images);
	if (access(kernel, R_OK) < 0 || access(initrd, R_OK) < 0)
		die(2,
		    "the box's kernel or modules are missing (%s/vmlinuz, initrd.img): run "
		    "`make kvmbox`",
		    images);
	if (box_load(b, dir) == 0) {
		if (!quiet)
			printf("kvmbox: a box is already running in %s (pid %d)\n", b->bx_dir,
			       (int)b->bx_qemu);
		return;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die(2, "cannot create %s: %s", dir, strerror(errno));
	if (!realpath(dir, b->bx_dir))
		die(2, "%s: %s", dir, strerror(errno));
	if (strpbrk(b->bx_dir, " \t\n"))
		die(2, "%s: the box directory's path must not contain spaces", b->bx_dir);
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		die(2, "getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(b->bx_token + 2 * i, "%02x", raw[i]);
	if (write_file(b->bx_dir, "token", b->bx_token, 0600) < 0)
		die(2, "cannot write %s/token: %s", b->bx_dir, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int attempt = 0;; attempt++) {
		b->bx_port = free_port();
		snprintf(mem, sizeof(mem), "%d", memory_mib);
		snprintf(smp, sizeof(smp), "%d", cpus);
		snprintf(serial, sizeof(serial), "file:%s/console.log", b->bx_dir);
		/* restrict=on: the box reaches nothing on the host or beyond; only
		 * the agent's port is forwarded in, from the host's loopback. */
		snprintf(netdev, sizeof(netdev),
			 "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-10.0.2.15:%d",
			 b->bx_port, KB_AGENT_PORT);
		snprintf(memdev, sizeof(memdev), "memory-backend-memfd,id=mem,size=%dM,share=on",
			 memory_mib);
		snprintf(vfs_sock, sizeof(vfs_sock), "%s/virtiofsd.sock", b->bx_dir);
		snprintf(vfs_sock_opt, sizeof(vfs_sock_opt), "--socket-path=%s", vfs_sock);
		snprintf(vfs_chardev, sizeof(vfs_chardev), "socket,id=vfs,path=%s", vfs_sock);
		snprintf(append, sizeof(append),
			 "console=ttyS0 quiet panic=-1 kvmbox.dir=%s "
			 "kvmbox.port=%d",
			 b->bx_dir, KB_AGENT_PORT);
		char *argv[] = {(char *)qemu, "-M", "pc", "-accel", "tcg",
				/* No XSAVE in the box: QEMU's emulated SVM does not
				 * intercept XSETBV, so a nested guest's XCR0 writes
				 * would bypass KVM ("XSAVE consistency problem" in
				 * the guest, then random crashes under load). */
				"-cpu", "max,-xsave", "-smp", smp, "-m", mem, "-nodefaults",
				"-no-user-config", "-display", "none", "-no-reboot", "-serial",
				serial, "-kernel", kernel, "-initrd", initrd, "-append", append,
				"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
				"-chardev", vfs_chardev, "-device",
				"vhost-user-fs-pci,chardev=vfs,tag=hostroot", "-object", memdev,
				"-numa", "node,memdev=mem", NULL};
		char *vfs_argv[] = {(char *)virtiofsd,
				    vfs_sock_opt,
				    "-o",
				    "source=/",
				    "-o",
				    "cache=auto",
				    "-o",
				    "sandbox=chroot",
				    "-o",
				    "flock",
				    "-o",
				    "posix_lock",
				    "-o",
				    "log_level=warn",
				    NULL};
		pid_t pid;

		/* virtiofsd serves one QEMU and ends when it does. */
		unlink(vfs_sock);
		if (spawn(vfs_argv, b->bx_dir, "virtiofsd.log", private) < 0 ||
		    !wait_for_file(vfs_sock, 5000))
			die(2, "virtiofsd did not start (see %s/virtiofsd.log)", b->bx_dir);
		pid = spawn(argv, b->bx_dir, "qemu.log", private);
		if (pid < 0)
			die(2, "cannot start %s: %s", qemu, strerror(-pid));
		b->bx_qemu = pid;
		snprintf(buf, sizeof(buf), "%d", b->bx_port);
		write_file(b->bx_dir, "port", buf, 0600);
		snprintf(buf, sizeof(buf), "%d", (int)pid);
		write_file(b->bx_dir, "qemu.pid", buf, 0600);
		/* Wait for the agent's ready line on the console (it listens once KVM
		 * is loaded), then ask it. Connecting earlier would stall: QEMU accepts
		 * at once and keeps retrying towards a box that is not listening yet. */
		while (!console_says(b->bx_dir, "kvmbox-agent: ready") ||
		       !(status = box_status(b))) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (waitpid(pid, NULL, WNOHANG) == pid || !alive(pid))
				break;
			if (t1.tv_sec - t0.tv_sec > BOOT_TIMEOUT_S) {
				stop_qemu(pid);
				show_tail(b->bx_dir, "console.log", 15);
				remove_box_files(b->bx_dir);
				die(2, "the box did not come up within %d s", BOOT_TIMEOUT_S);
			}
			usleep(100 * 1000);
		}
		if (status)
			break;
		if (attempt < 3 && read_file(b->bx_dir, "qemu.log", val, sizeof(val)) == 0 &&
		    strstr(val, "forward"))
			continue; /* the port was taken meanwhile */
		show_tail(b->bx_dir, "qemu.log", 10);
		show_tail(b->bx_dir, "console.log", 15);
		remove_box_files(b->bx_dir);
		die(2, "the box died while booting (QEMU exited)");
	}
	status_value(status, "kvm", val, sizeof(val));
	if (strcmp(val, "ok") != 0) {
		char mods[512];

		status_value(status, "modules_errors", mods, sizeof(mods));
		stop_qemu(b->bx_qemu);
		remove_box_files(b->bx_dir);
		if (strstr(mods, "kvm_amd") || strstr(mods, "kvm-amd"))
			die(2, "no SVM in the emulated CPU: kvm_amd did not load (%s)", mods);
		die(2, "no working KVM in the box: %s%s%s", val, mods[0] ? "; " : "", mods);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (!quiet)
		printf("kvmbox: box up in %s in %.1f s (QEMU pid %d, %s MiB, %d vCPUs, KVM "
		       "works)\n",
		       b->bx_dir, took, (int)b->bx_qemu, mem, cpus);
	free(status);
}

static int cmd_start(int argc, char **argv)
{
	int memory = DEFAULT_MEMORY_MIB, cpus = DEFAULT_CPUS, i;
	struct box b;

	for (i = 0; i < argc - 1; i += 2) {
		if (strcmp(argv[i], "--memory") == 0)
			memory = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--cpus") == 0)
			cpus = atoi(argv[i + 1]);
		else
			break;
	}
	if (i != argc - 1 || memory < 256 || memory > 1 << 20 || cpus < 1 || cpus > 64)
		usage();
	box_start(&b, argv[i], memory, cpus, false, false);
	return 0;
}

static int cmd_stop(int argc, char **argv)
{
	struct box b;

	if (argc != 1)
		usage();
	if (box_load(&b, argv[0]) == 0)
		stop_qemu(b.bx_qemu);
	if (b.bx_dir[0])
		remove_box_files(b.bx_dir);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	char kvm[256], total[32], avail[32], up[32];
	struct box b;
	char *status;

	if (argc != 1)
		usage();
	if (box_load(&b, argv[0]) < 0) {
		printf("kvmbox: no box running in %s\n", argv[0]);
		return 1;
	}
	if (!(status = box_status(&b))) {
		printf("kvmbox: the box in %s (QEMU pid %d) does not answer\n", b.bx_dir,
		       (int)b.bx_qemu);
		return 1;
	}
	printf("kvmbox: box running in %s: QEMU pid %d, up %s s, KVM %s, memory %ld of %ld MiB "
	       "available\n",
	       b.bx_dir, (int)b.bx_qemu, status_value(status, "uptime_s", up, sizeof(up)),
	       status_value(status, "kvm", kvm, sizeof(kvm)),
	       atol(status_value(status, "mem_available_kib", avail, sizeof(avail))) / 1024,
	       atol(status_value(status, "mem_total_kib", total, sizeof(total))) / 1024);
	free(status);
	return 0;
}

/* --- probe: direct or box --- */

/* Decides where KVM programs run: "direct" (hardware-speed /dev/kvm) or "box", with
 * the reason. VDI_KVM=direct|box forces either. */
static bool kvm_direct(char *why, size_t len)
{
	const char *force = getenv("VDI_KVM");
	double rate;

	if (force && strcmp(force, "direct") == 0) {
		snprintf(why, len, "VDI_KVM=direct");
		return true;
	}
	if (force && strcmp(force, "box") == 0) {
		snprintf(why, len, "VDI_KVM=box");
		return false;
	}
	if (force && *force && strcmp(force, "auto") != 0)
		die(2, "VDI_KVM=%s: want direct, box or auto", force);
	rate = kvmprobe_loops_per_second(2000);
	if (rate < 0) {
		snprintf(why, len, "no usable /dev/kvm: %s", strerror((int)-rate));
		return false;
	}
	if (rate < KVMPROBE_HARDWARE_LOOPS_PER_S) {
		snprintf(why, len, "/dev/kvm is emulated here (%.2f M guest loops/s)", rate / 1e6);
		return false;
	}
	snprintf(why, len, "hardware KVM (%.0f M guest loops/s)", rate / 1e6);
	return true;
}

static int cmd_probe(int argc, char **argv)
{
	char why[256];

	(void)argv;
	if (argc != 0)
		usage();
	printf("%s: %s\n", kvm_direct(why, sizeof(why)) ? "direct" : "box", why);
	return 0;
}

/* --- run --- */

/* A socket the program listens on in the box, listened on at the same place here. */
struct bridge {
	int br_fd;		/* our listener, or -1 */
	char br_target[4200];	/* the agent's name for it ("unix:PIN:PATH", "tcp:PORT") */
	char br_path[PATH_MAX]; /* unix: where we bound */
	dev_t br_dev;
	ino_t br_ino;
};

static struct box run_box;
static struct bridge bridges[MAX_BRIDGES];

struct bridged_conn {
	int bc_client;
	char bc_target[4200];
};

static void *bridge_thread(void *arg)
{
	struct bridged_conn *c = arg;
	enum kb_msg type;
	char err[256], *msg = NULL;
	size_t len;
	int s = box_connect(&run_box, err, sizeof(err));

	if (s >= 0 && kb_send(s, KB_CONNECT, c->bc_target, strlen(c->bc_target)) == 0 &&
	    kb_recv(s, &type, &msg, &len) == 0 && type == KB_OK)
		kb_splice(c->bc_client, s);
	else if (msg)
		fprintf(stderr, "%s: %s\n", progname, msg);
	free(msg);
	if (s >= 0)
		close(s);
	close(c->bc_client);
	free(c);
	return NULL;
}

/* Listens here where the program listens in the box. */
static void bridge_add(const char *target)
{
	struct bridge *br = NULL;
	int fd = -1, one = 1;

	for (int i = 0; i < MAX_BRIDGES && !br; i++)
		if (bridges[i].br_fd < 0)
			br = &bridges[i];
	if (!br)
		return;
	memset(br, 0, sizeof(*br));
	br->br_fd = -1;
	snprintf(br->br_target, sizeof(br->br_target), "%s", target);
	if (strncmp(target, "tcp:", 4) == 0) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)atoi(target + 4)),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fd, 64) < 0) {
			fprintf(stderr, "%s: cannot listen on 127.0.0.1:%s here for the box: %s\n",
				progname, target + 4, strerror(errno));
			if (fd >= 0)
				close(fd);
			return;
		}
	} else {
		/* "unix:PIN:PATH". The program's bind made a socket file at PATH (over
		 * virtiofs) that nothing on this side answers on: put ours in its place in
		 * one step (bind beside it, rename over it). */
		const char *path = strchr(target + 5, ':');
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		char tmp[PATH_MAX + 32], *slash;
		struct stat st;

		if (!path++)
			return;
		snprintf(br->br_path, sizeof(br->br_path), "%s", path);
		snprintf(tmp, sizeof(tmp), "%s", path);
		slash = strrchr(tmp, '/');
		snprintf(slash ? slash + 1 : tmp,
			 sizeof(tmp) - (size_t)(slash ? slash + 1 - tmp : 0), ".kvmbox.%d.%ld",
			 (int)getpid(), (long)(br - bridges));
		if (strlen(tmp) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(sa.sun_path)) {
			fprintf(stderr, "%s: %s: path too long for a unix socket\n", progname,
				path);
			return;
		}
		strcpy(sa.sun_path, tmp);
		unlink(tmp);
		/* Ours gets the owner and mode the program gave its socket. */
		if (stat(path, &st) < 0)
			st.st_mode = 0600, st.st_uid = getuid(), st.st_gid = getgid();
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    chmod(tmp, st.st_mode & 07777) < 0 ||
		    (geteuid() == 0 && chown(tmp, st.st_uid, st.st_gid) < 0) ||
		    listen(fd, 64) < 0 || rename(tmp, path) < 0 || stat(path, &st) < 0) {
			fprintf(stderr, "%s: cannot listen on %s here for the box: %s\n", progname,
				path, strerror(errno));
			unlink(tmp);
			if (fd >= 0)
				close(fd);
			return;
		}
		br->br_dev = st.st_dev, br->br_ino = st.st_ino;
	}
	br->br_fd = fd;
}

static void bridge_close(struct bridge *br)
{
	struct stat st;

	if (br->br_fd < 0)
		return;
	close(br->br_fd);
	br->br_fd = -1;
	/* Remove our socket file, unless something else has taken its place. */
	if (br->br_path[0] && stat(br->br_path, &st) == 0 && st.st_dev == br->br_dev &&
	    st.st_ino == br->br_ino)
		unlink(br->br_path);
}

static void bridge_remove(const char *target)
{
	for (int i = 0; i < MAX_BRIDGES; i++)
		if (bridges[i].br_fd >= 0 && strcmp(bridges[i].br_target, target) == 0)
			bridge_close(&bridges[i]);
}

static void bridge_accept(struct bridge *br)
{
	struct bridged_conn *c;
	pthread_t t;
	int fd = accept4(br->br_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = malloc(sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->bc_client = fd;
	snprintf(c->bc_target, sizeof(c->bc_target), "%s", br->br_target);
	if (pthread_create(&t, NULL, bridge_thread, c) != 0) {
		close(fd);
		free(c);
		return;
	}
	pthread_detach(t);
}

/* DIR/runs/PID (PID ours) holds the program's pid in the box while it runs, for
 * tools that look at it there (CPU time, memory); 0 removes it. */
static void note_box_pid(pid_t box_pid)
{
	char dir[PATH_MAX + 8], name[32], text[32];

	snprintf(dir, sizeof(dir), "%s/runs", run_box.bx_dir);
	snprintf(name, sizeof(name), "runs/%d", (int)getpid());
	if (box_pid == 0) {
		char path[PATH_MAX + 40];

		snprintf(path, sizeof(path), "%s/%s", run_box.bx_dir, name);
		unlink(path);
		return;
	}
	mkdir(dir, 0700);
	snprintf(text, sizeof(text), "%d\n", (int)box_pid);
	write_file(run_box.bx_dir, name, text, 0600);
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static void write_out(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* our reader went away: the program's output is dropped */
		buf += n, len -= (size_t)n;
	}
}

/* Runs argv in the box; returns the exit code. */
static int run_in_box(char **argv)
{
	static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	char cwd[PATH_MAX], err[512], *payload, *msg;
	struct kb_run req;
	struct timespec now;
	enum kb_msg type;
	size_t len;
	sigset_t set;
	bool stdin_open = true, oom = false;
	int conn, sfd, code = -1;

	if (!getcwd(cwd, sizeof(cwd)))
		die(2, "getcwd: %s", strerror(errno));
	for (int i = 0; i < MAX_BRIDGES; i++)
		bridges[i].br_fd = -1;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);

	conn = box_connect(&run_box, err, sizeof(err));
	if (conn < 0)
		die(1, "%s (box %s): %s", err, run_box.bx_dir, strerror(-conn));
	clock_gettime(CLOCK_REALTIME, &now);
	req = (struct kb_run){.kr_uid = getuid(),
			      .kr_gid = getgid(),
			      .kr_realtime_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec,
			      .kr_cwd = cwd,
			      .kr_argv = argv,
			      .kr_envp = environ};
	payload = kb_run_encode(&req, &len);
	if (!payload || kb_send(conn, KB_RUN, payload, len) < 0)
		die(1, "cannot send the run request to the box");
	free(payload);

	while (code < 0) {
		struct pollfd pfd[3 + MAX_BRIDGES];
		int nfds = 3, n;

		pfd[0] = (struct pollfd){.fd = conn, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = stdin_open ? 0 : -1, .events = POLLIN};
		for (int i = 0; i < MAX_BRIDGES; i++)
			pfd[nfds++] = (struct pollfd){.fd = bridges[i].br_fd, .events = POLLIN};
		n = poll(pfd, (nfds_t)nfds, 1000);
		if (n < 0 && errno != EINTR)
			die(1, "poll: %s", strerror(errno));
		if (n <= 0) {
			if (!alive(run_box.bx_qemu))
				break;
			continue;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				kb_send_u32(conn, KB_SIGNAL, si.ssi_signo);
		}
		if (pfd[2].revents) {
			char buf[64 * 1024];
			ssize_t r = read(0, buf, sizeof(buf));

			if (r > 0) {
				kb_send(conn, KB_STDIN, buf, (size_t)r);
			} else if (r == 0 || errno != EINTR) {
				kb_send(conn, KB_STDIN_EOF, NULL, 0);
				stdin_open = false;
			}
		}
		for (int i = 0; i < MAX_BRIDGES; i++)
			if (pfd[3 + i].revents & POLLIN)
				bridge_accept(&bridges[i]);
		if (!pfd[0].revents)
			continue;
		if (kb_recv(conn, &type, &msg, &len) < 0)
			break;
		switch (type) {
		case KB_STDOUT: write_out(1, msg, len); break;
		case KB_STDERR: write_out(2, msg, len); break;
		case KB_LISTEN: bridge_add(msg); break;
		case KB_UNLISTEN: bridge_remove(msg); break;
		case KB_OOM: oom = true; break;
		case KB_STARTED: note_box_pid((pid_t)kb_u32(msg, len)); break;
		case KB_EXIT: code = exit_code((int)kb_u32(msg, len)); break;
		case KB_ERROR:
			for (int i = 0; i < MAX_BRIDGES; i++)
				bridge_close(&bridges[i]);
			fprintf(stderr, "%s: %s\n", progname, msg);
			exit(strncmp(msg, "cannot run", 10) == 0 ? 127 : 2);
		default: break;
		}
		free(msg);
	}
	for (int i = 0; i < MAX_BRIDGES; i++)
		bridge_close(&bridges[i]);
	note_box_pid(0);
	if (code < 0) {
		fprintf(stderr,
			"%s: the box stopped or died while %s was running (box %s, its console "
			"in console.log there)\n",
			progname, argv[0], run_box.bx_dir);
		return 1;
	}
	if (oom) {
		fprintf(stderr,
			"%s: the box ran out of memory and killed %s (start the box with more "
			"--memory)\n",
			progname, argv[0]);
		return 2;
	}
	return code;
}

static void remove_tree(const char *dir)
{
	static const char *const names[] = {"console.log", "qemu.log", "virtiofsd.log", "runs"};
	char path[PATH_MAX + 32];

	remove_box_files(dir);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) < 0 && errno == EISDIR)
			rmdir(path);
	}
	rmdir(dir);
}

static int cmd_run(int argc, char **argv)
{
	const char *dir = getenv("KVMBOX_DIR"), *force = getenv("VDI_KVM");
	int memory = DEFAULT_MEMORY_MIB, i, code;
	char tmpl[PATH_MAX];

	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--box") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--memory") == 0)
			memory = atoi(argv[i + 1]);
		else
			usage();
	}
	if (i >= argc - 1)
		usage();
	argv += i + 1;
	if (force && strcmp(force, "direct") == 0) {
		execvp(argv[0], argv);
		die(127, "cannot run %s: %s", argv[0], strerror(errno));
	}
	if (dir && *dir) {
		if (box_load(&run_box, dir) < 0)
			die(1, "no box running in %s (kvmbox start %s)", dir, dir);
		return run_in_box(argv);
	}
	/* A private box for this run only. */
	snprintf(tmpl, sizeof(tmpl), "%s/kvmbox.XXXXXX",
		 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpl))
		die(2, "mkdtemp %s: %s", tmpl, strerror(errno));
	box_start(&run_box, tmpl, memory, DEFAULT_CPUS, true, true);
	code = run_in_box(argv);
	stop_qemu(run_box.bx_qemu);
	remove_tree(run_box.bx_dir);
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "start") == 0)
		return cmd_start(argc - 2, argv + 2);
	if (strcmp(argv[1], "stop") == 0)
		return cmd_stop(argc - 2, argv + 2);
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 2, argv + 2);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "probe") == 0)
		return cmd_probe(argc - 2, argv + 2);
	usage();
}
