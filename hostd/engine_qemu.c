/* The QEMU engine: a full PC (machine `pc`; microvm hangs under TCG) with KVM
 * where it runs at hardware speed and TCG elsewhere, a qcow2 overlay on the raw
 * base made by qemu-img, QMP on a unix socket, VNC on a unix socket with a
 * password set per ticket, std VGA, the serial console in a file (appended to, and
 * emptied by hostd's tick past VMM_SERIAL_MAX), direct kernel boot when the template
 * has a kernel. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostd/engine.h"
#include "hostd/kvmprobe.h"
#include "hostd/qmp.h"
#include "lib/log.h"

#define TOOL_TIMEOUT_MS 60000
#define PROBE_MS	300

extern char **environ;

static bool use_kvm;
static char accel_why[160];
/* Why QEMU desktops cannot start here; NULL when they can. */
static const char *unavailable;
static char unavailable_buf[512];

/* Runs a short tool (qemu-img) and waits; its output, trimmed, lands in err on
 * failure. */
static int run_tool(char *const argv[], char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char out[1024];
	size_t len = 0;
	int pipefd[2], status = 0, r;
	struct timespec t0, now;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r) {
		close(pipefd[0]);
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(r));
		return -r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		long waited;
		ssize_t n;
		char scratch[256];

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited > TOOL_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		n = read(pipefd[0], len < sizeof(out) - 1 ? out + len : scratch,
			 len < sizeof(out) - 1 ? sizeof(out) - 1 - len : sizeof(scratch));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < sizeof(out) - 1)
			len += (size_t)n;
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	out[len] = '\0';
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\n')
			out[i] = ' ';
	snprintf(err, errlen, "%s failed: %.300s", argv[0], len ? out : "no output");
	return -EIO;
}

/* Whether QEMU can run here: both programs executable and `qemu -version` answering. */
static void check_programs(const struct conf *c)
{
	char *version[] = {c->qemu_binary, (char *)"-version", NULL};
	const char *missing = access(c->qemu_binary, X_OK) < 0 ? c->qemu_binary
			      : access(c->qemu_img, X_OK) < 0  ? c->qemu_img
							       : NULL;
	char err[400];

	unavailable = NULL;
	if (missing) {
		snprintf(unavailable_buf, sizeof(unavailable_buf), "%s is not executable: %s",
			 missing, strerror(errno));
		unavailable = unavailable_buf;
	} else if (run_tool(version, err, sizeof(err)) < 0) {
		snprintf(unavailable_buf, sizeof(unavailable_buf), "%s", err);
		unavailable = unavailable_buf;
	}
	if (unavailable)
		log_warnx("qemu: %s; qemu desktops will not start", unavailable);
}

static void qemu_init(const struct conf *c)
{
	double rate;

	check_programs(c);
	switch (c->qemu_accel) {
	case CONF_ACCEL_KVM:
		use_kvm = true;
		snprintf(accel_why, sizeof(accel_why), "configured");
		break;
	case CONF_ACCEL_TCG:
		use_kvm = false;
		snprintf(accel_why, sizeof(accel_why), "configured");
		break;
	default:
		rate = kvmprobe_loops_per_second(PROBE_MS);
		use_kvm = rate >= KVMPROBE_HARDWARE_LOOPS_PER_S;
		if (rate < 0)
			snprintf(accel_why, sizeof(accel_why), "KVM unusable: %s",
				 strerror((int)-rate));
		else if (rate == 0)
			snprintf(accel_why, sizeof(accel_why),
				 "KVM too slow: a 5 M loop did not finish in %d ms (hardware "
				 "speed is > %.0f M loops/s)",
				 PROBE_MS, KVMPROBE_HARDWARE_LOOPS_PER_S / 1e6);
		else
			snprintf(accel_why, sizeof(accel_why), "KVM measured at %.1f M loops/s",
				 rate / 1e6);
	}
	log_info("qemu: accel=%s (%s)", use_kvm ? "kvm" : "tcg", accel_why);
}

static const char *qemu_unavailable(void)
{
	return unavailable;
}

static json_t *qemu_describe(void)
{
	json_t *j = json_pack("{s:b, s:s, s:s}", "available", unavailable == NULL, "accel",
			      use_kvm ? "kvm" : "tcg", "accel_reason", accel_why);

	if (j && unavailable)
		json_object_set_new(j, "reason", json_string(unavailable));
	return j;
}

static int qemu_create_disk(const struct conf *c, const struct desktop *d, char *err, size_t errlen)
{
	char disk[4200];
	char *argv[] = {
	    c->qemu_img,  (char *)"create", (char *)"-q", (char *)"-f",	 (char *)"qcow2",
	    (char *)"-b", d->d_base,	    (char *)"-F", (char *)"raw", disk,
	    NULL};

	if (desktop_path(c, d, DESKTOP_FILE_DISK, disk, sizeof(disk)) < 0)
		return -ENAMETOOLONG;
	unlink(disk); /* left over from a desktop of the same id whose removal failed */
	return run_tool(argv, err, errlen);
}

static int qemu_command(const struct conf *c, const struct desktop *d, struct vmm_args *a)
{
	struct vm_paths p;

	if (desktop_vm_paths(c, d, &p) < 0)
		return -ENAMETOOLONG;
	vmm_args_add(a, "%s", c->qemu_binary);
	vmm_args_opt(a, "-name", "guest=%s,debug-threads=on", d->d_id);
	vmm_args_opt(a, "-nodefaults", "-no-user-config");
	vmm_args_opt(a, "-machine", "%s", c->qemu_machine);
	vmm_args_opt(a, "-accel", "%s", use_kvm ? "kvm" : "tcg");
	if (use_kvm) {
		vmm_args_opt(a, "-cpu", "host");
	}
	vmm_args_opt(a, "-m", "%d", d->d_memory_mib);
	vmm_args_opt(a, "-smp", "%d", d->d_vcpus);
	vmm_args_opt(a, "-display", "none");
	vmm_args_opt(a, "-vga", "std");
	vmm_args_opt(a, "-vnc", "unix:%s,password=on", p.vp_vnc);
	vmm_args_opt(a, "-qmp", "unix:%s,server=on,wait=off", p.vp_control);
	/* append=on: when hostd empties an overgrown log (vmm_log_cap()), QEMU writes at
	 * the new end instead of leaving a hole as large as what it wrote before */
	vmm_args_opt(a, "-chardev", "file,id=serial0,path=%s,append=on", p.vp_serial);
	vmm_args_opt(a, "-serial", "chardev:serial0");
	if (d->d_kernel) {
		vmm_args_opt(a, "-kernel", "%s", d->d_kernel);
		if (d->d_initrd) {
			vmm_args_opt(a, "-initrd", "%s", d->d_initrd);
		}
		if (d->d_cmdline) {
			vmm_args_opt(a, "-append", "%s", d->d_cmdline);
		}
	}
	vmm_args_opt(a, "-drive", "file=%s,if=virtio,format=qcow2", p.vp_disk);
	vmm_args_opt(a, "-sandbox",
		     "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
		     "resourcecontrol=deny");
	return a->va_overflow ? -E2BIG : 0;
}

static bool qemu_has_vnc(void)
{
	return true;
}

static json_t *run(const struct conf *c, const struct desktop *d, const char *cmd, json_t *args,
		   char *err, size_t errlen)
{
	char control[256];

	if (desktop_path(c, d, DESKTOP_FILE_CONTROL, control, sizeof(control)) < 0) {
		snprintf(err, errlen, "socket path too long");
		return NULL;
	}
	return qmp_execute(control, cmd, args, ENGINE_CALL_TIMEOUT_MS, err, errlen);
}

static int qemu_probe(const struct conf *c, const struct desktop *d)
{
	char err[256];
	json_t *ret = run(c, d, "query-status", NULL, err, sizeof(err));
	const char *status = json_string_value(json_object_get(ret, "status"));
	int r =
	    status && (!strcmp(status, "running") || !strcmp(status, "prelaunch")) ? 0 : -EAGAIN;

	json_decref(ret);
	return r;
}

static int simple(const struct conf *c, const struct desktop *d, const char *cmd, char *err,
		  size_t errlen)
{
	json_t *ret = run(c, d, cmd, NULL, err, errlen);

	if (!ret)
		return -EIO;
	json_decref(ret);
	return 0;
}

static int qemu_powerdown(const struct conf *c, const struct desktop *d, char *err, size_t errlen)
{
	return simple(c, d, "system_powerdown", err, errlen);
}

static int qemu_quit(const struct conf *c, const struct desktop *d)
{
	char err[256];

	return simple(c, d, "quit", err, sizeof(err));
}

/* One of QMP's VNC password commands: {"protocol": "vnc", key: value}. */
static int vnc_password_command(const struct conf *c, const struct desktop *d, const char *cmd,
				const char *key, const char *value, char *err, size_t errlen)
{
	json_t *args = json_pack("{s:s, s:s}", "protocol", "vnc", key, value), *ret;

	if (!args)
		return -ENOMEM;
	ret = run(c, d, cmd, args, err, errlen);
	json_decref(args);
	if (!ret)
		return -EIO;
	json_decref(ret);
	return 0;
}

static int qemu_set_ticket(const struct conf *c, const struct desktop *d, const char *password,
			   long long expires, bool view_only, char *err, size_t errlen)
{
	char when[32];
	int r;

	(void)view_only; /* QEMU's VNC has no view-only password: the relay enforces
			    it */
	snprintf(when, sizeof(when), "%lld", expires);
	r = vnc_password_command(c, d, "set_password", "password", password, err, errlen);
	if (r == 0)
		r = vnc_password_command(c, d, "expire_password", "time", when, err, errlen);
	return r;
}

const struct engine engine_qemu = {
    .en_name = "qemu",
    .en_init = qemu_init,
    .en_unavailable = qemu_unavailable,
    .en_describe = qemu_describe,
    .en_create_disk = qemu_create_disk,
    .en_command = qemu_command,
    .en_has_vnc = qemu_has_vnc,
    .en_probe = qemu_probe,
    .en_powerdown = qemu_powerdown,
    .en_quit = qemu_quit,
    .en_set_ticket = qemu_set_ticket,
};
